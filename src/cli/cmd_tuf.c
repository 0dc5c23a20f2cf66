/*
 * cmd_tuf.c — `shoal tuf`, the standard TUF client command line (the shape
 * TUF conformance harnesses drive): init a metadata directory with a trusted
 * root, refresh metadata, download targets. Exit 0 on success, 1 on any
 * failure, usage errors included.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal/limits.h"
#include "shoal/log.h"
#include "trust/tuf.h"

static const char help[] =
	"NAME\n"
	"    shoal tuf - TUF 1.0 client: trust a root, refresh metadata, download targets\n\n"
	"SYNOPSIS\n"
	"    shoal tuf --metadata-dir DIR init TRUSTED_ROOT\n"
	"    shoal tuf --metadata-dir DIR --metadata-url URL refresh\n"
	"    shoal tuf --metadata-dir DIR --metadata-url URL --target-name NAME\n"
	"              [--target-name NAME]... --target-base-url URL --target-dir DIR download\n\n"
	"DESCRIPTION\n"
	"    Runs the TUF specification 1.0 client workflow against a repository at\n"
	"    URL (http://, https:// or file://). Every file is verified before it is\n"
	"    stored: root rotation chain, threshold signatures (ed25519,\n"
	"    ecdsa-sha2-nistp256, rsassa-pss-sha256), version rollback, expiry\n"
	"    against the time the command started, snapshot consistency, and length\n"
	"    and hash bounds on every download.\n\n"
	"    init      verifies TRUSTED_ROOT is a root signed by a threshold of its\n"
	"              own keys and stores it as DIR/root.json.\n"
	"    refresh   updates root, timestamp, snapshot and targets metadata.\n"
	"    download  refreshes, then finds each NAME in the targets delegation tree\n"
	"              and stores it in the target directory under NAME with every\n"
	"              byte outside [A-Za-z0-9._~-] (including '/') percent-encoded.\n"
	"              A target already there with the signed length and hashes is\n"
	"              not fetched again.\n\n"
	"    Metadata is kept in DIR exactly as received under unversioned names:\n"
	"    root.json, timestamp.json, snapshot.json, targets.json, and ROLE.json\n"
	"    for each delegated role. Options may come in any order, before or after\n"
	"    the command; --opt=VALUE also works.\n\n"
	"OPTIONS\n"
	"    --metadata-dir DIR      local trusted metadata directory (required)\n"
	"    --metadata-url URL      base URL of the repository's metadata\n"
	"    --target-name NAME      target path to download (repeatable, at most 64)\n"
	"    --target-base-url URL   base URL of the repository's targets\n"
	"    --target-dir DIR        where downloaded targets are written\n"
	"    -h, --help              show this page\n\n"
	"EXIT STATUS\n"
	"    0 on success; 1 on any failure (the message names the TUF step that\n"
	"    failed).\n\n"
	"EXAMPLES\n"
	"    shoal tuf --metadata-dir /var/lib/shoal/tuf init root.json\n"
	"    shoal tuf --metadata-dir /var/lib/shoal/tuf \\\n"
	"        --metadata-url https://releases.example.org/metadata/ refresh\n"
	"    shoal tuf --metadata-dir /var/lib/shoal/tuf \\\n"
	"        --metadata-url https://releases.example.org/metadata/ \\\n"
	"        --target-base-url https://releases.example.org/targets/ \\\n"
	"        --target-dir /tmp/out --target-name rules/base.yar download\n";

struct opts {
	const char *metadata_dir;
	const char *metadata_url;
	const char *target_base_url;
	const char *target_dir;
	const char *names[SHOAL_TUF_TARGETS_PER_DOWNLOAD_MAX];
	size_t names_count;
	const char *positional[2];
	size_t positional_count;
};

static int usage_fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "shoal tuf: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'shoal tuf --help'.\n");
	return 1;
}

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static int take(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*out = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*out = argv[++*i];
	return 1;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const char *const names[] = {"--metadata-dir", "--metadata-url",
					     "--target-base-url", "--target-dir", "--target-name"};
	for (int i = 1; i < argc; i++) {
		const char *val = NULL;
		int which = -1, r = 0;
		for (int k = 0; k < 5 && which < 0; k++) {
			r = take(argc, argv, &i, names[k], &val);
			if (r != 0)
				which = k;
		}
		if (r < 0)
			return usage_fail("%s needs a value", argv[i]);
		switch (which) {
		case 0: o->metadata_dir = val; break;
		case 1: o->metadata_url = val; break;
		case 2: o->target_base_url = val; break;
		case 3: o->target_dir = val; break;
		case 4:
			if (o->names_count == SHOAL_TUF_TARGETS_PER_DOWNLOAD_MAX)
				return usage_fail("too many --target-name (at most %s)", "64");
			o->names[o->names_count++] = val;
			break;
		default:
			if (argv[i][0] == '-' && argv[i][1] != '\0')
				return usage_fail("unknown option %s", argv[i]);
			if (o->positional_count == 2)
				return usage_fail("unexpected argument %s", argv[i]);
			o->positional[o->positional_count++] = argv[i];
		}
	}
	return 0;
}

static int do_init(const struct opts *o)
{
	if (o->positional_count != 2)
		return usage_fail("%s", "init needs TRUSTED_ROOT");
	FILE *f = fopen(o->positional[1], "rb");
	if (!f)
		return cli_fail("tuf", "open(%s): %s", o->positional[1], strerror(errno));
	uint8_t *buf = malloc(SHOAL_TUF_ROOT_BYTES_MAX + 1);
	if (!buf) {
		fclose(f);
		return cli_fail("tuf", "out of memory");
	}
	size_t len = fread(buf, 1, SHOAL_TUF_ROOT_BYTES_MAX + 1, f);
	bool read_err = ferror(f);
	fclose(f);
	if (read_err || len > SHOAL_TUF_ROOT_BYTES_MAX) {
		free(buf);
		return cli_fail("tuf", "read(%s): %s", o->positional[1],
				read_err ? "I/O error" : "larger than the root size bound");
	}
	char err[256];
	int rc = tuf_init_root(o->metadata_dir, buf, len, err, sizeof(err));
	free(buf);
	if (rc)
		return cli_fail("tuf", "init: %s", err);
	return 0;
}

static int run_tuf(int argc, char **argv)
{
	struct opts o = {0};
	if (parse(argc, argv, &o) != 0)
		return 1;
	if (o.positional_count == 0)
		return usage_fail("%s", "no command (init, refresh or download)");
	if (!o.metadata_dir)
		return usage_fail("%s", "--metadata-dir is required");
	const char *cmd = o.positional[0];
	if (strcmp(cmd, "init") == 0)
		return do_init(&o);
	bool download = strcmp(cmd, "download") == 0;
	if (!download && strcmp(cmd, "refresh") != 0)
		return usage_fail("unknown command %s", cmd);
	if (o.positional_count != 1)
		return usage_fail("unexpected argument %s", o.positional[1]);
	if (!o.metadata_url)
		return usage_fail("%s", "--metadata-url is required");
	if (download && (!o.target_base_url || !o.target_dir || o.names_count == 0))
		return usage_fail("%s", "download needs --target-name, --target-base-url and --target-dir");

	struct tuf_fetcher fetcher = {tuf_fetch_curl, NULL};
	struct tuf_client *c = NULL;
	if (tuf_client_new(o.metadata_dir, o.metadata_url, &fetcher, &c) != 0)
		return cli_fail("tuf", "bad --metadata-dir or --metadata-url");
	/* 5.1: the update start time, read once through libc (faketime works) */
	int64_t now = (int64_t)time(NULL);
	int status = 0;
	if (tuf_client_refresh(c, now) != 0) {
		status = cli_fail("tuf", "refresh: %s", tuf_client_error(c));
		goto out;
	}
	for (size_t i = 0; download && i < o.names_count; i++) {
		struct tuf_target t;
		bool fetched = false;
		if (tuf_client_find_target(c, o.names[i], &t) != 0) {
			status = cli_fail("tuf", "download: %s", tuf_client_error(c));
			goto out;
		}
		int rc = tuf_client_download_target(c, &t, o.target_base_url, o.target_dir, &fetched);
		tuf_target_clear(&t);
		if (rc != 0) {
			status = cli_fail("tuf", "download: %s", tuf_client_error(c));
			goto out;
		}
	}
out:
	tuf_client_free(c);
	return status;
}

const struct cli_command cmd_tuf = {
	"tuf", "TUF 1.0 client: init, refresh, download (conformance CLI)", help, run_tuf,
};
