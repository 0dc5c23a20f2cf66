/*
 * cmd_trust.c — `shoal trust`: a node's trust anchor (src/trust/anchor.c),
 * the fleet's TUF root that every release is verified against. show prints
 * it; set-root replaces it, only along the root chain (each version signed
 * by a threshold of the previous root's keys and of its own).
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal/limits.h"
#include "trust/anchor.h"

extern const struct cli_command cmd_trust;

static const char *const roles[4] = {"root", "targets", "snapshot", "timestamp"};

/* Reads a root file (at most SHOAL_TUF_ROOT_BYTES_MAX bytes). */
static int read_root_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return cli_fail("trust", "open(%s): %s", path, strerror(errno));
	uint8_t *buf = malloc(SHOAL_TUF_ROOT_BYTES_MAX + 1);
	size_t n = buf ? fread(buf, 1, SHOAL_TUF_ROOT_BYTES_MAX + 1, f) : 0;
	bool bad = !buf || ferror(f);
	fclose(f);
	if (bad || n > SHOAL_TUF_ROOT_BYTES_MAX) {
		free(buf);
		return cli_fail("trust", "read(%s): %s", path,
				bad ? "I/O error" : "larger than the root size bound");
	}
	*out = buf;
	*len = n;
	return 0;
}

static void fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int do_show(const char *data, bool json)
{
	char err[1024], when[32], ap[SHOAL_PATH_BYTES_MAX], mdir[SHOAL_PATH_BYTES_MAX];
	struct tuf_md md;
	enum anchor_source src;
	int64_t av = 0;
	if (anchor_load(data, &md, &src, &av, err, sizeof(err)) != 0)
		return cli_fail("trust show", "%s", err);
	if (anchor_root_path(data, ap, sizeof(ap)) != 0 || anchor_metadata_dir(data, mdir, sizeof(mdir)) != 0) {
		tuf_md_clear(&md);
		return cli_fail("trust show", "%s: path too long", data);
	}
	const json_t *s = md.signed_obj;
	const json_t *keys = json_object_get(s, "keys");
	bool expired = md.expires_s <= (int64_t)time(NULL);
	fmt_time(md.expires_s, when);
	if (json) {
		json_t *jroles = json_object(), *jkeys = json_object();
		for (int i = 0; i < 4; i++) {
			const json_t *r = json_object_get(json_object_get(s, "roles"), roles[i]);
			json_object_set_new(jroles, roles[i], json_pack("{s:O,s:O}", "threshold",
						json_object_get(r, "threshold"), "keyids", json_object_get(r, "keyids")));
		}
		const char *id;
		json_t *k;
		json_object_foreach((json_t *)keys, id, k)
			json_object_set_new(jkeys, id, json_pack("{s:O,s:O}", "keytype", json_object_get(k, "keytype"),
								 "scheme", json_object_get(k, "scheme")));
		json_t *out = json_pack("{s:I,s:s,s:b,s:b,s:s,s:I,s:s,s:s,s:o,s:o}", "version",
					(json_int_t)md.version, "expires", when, "expired", expired,
					"consistent_snapshot", md.consistent_snapshot, "source",
					src == ANCHOR_SOURCE_METADATA ? "metadata" : "anchor", "anchor_version",
					(json_int_t)av, "anchor_path", ap, "metadata_dir", mdir, "roles", jroles,
					"keys", jkeys);
		char *txt = out ? json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
		if (txt)
			printf("%s\n", txt);
		free(txt);
		json_decref(out);
	} else {
		printf("trusted root version %" PRId64 "%s\n", md.version,
		       src == ANCHOR_SOURCE_METADATA ? " (followed by the TUF client)" : "");
		printf("expires %s%s\n", when, expired ? " (EXPIRED: no release will verify)" : "");
		printf("consistent_snapshot %s\n", md.consistent_snapshot ? "true" : "false");
		printf("anchor %s (version %" PRId64 ")\n", ap, av);
		printf("metadata %s\n", mdir);
		for (int i = 0; i < 4; i++) {
			const json_t *r = json_object_get(json_object_get(s, "roles"), roles[i]);
			const json_t *ids = json_object_get(r, "keyids");
			printf("%-10s threshold %" PRId64 " of %zu:", roles[i],
			       (int64_t)json_integer_value(json_object_get(r, "threshold")), json_array_size(ids));
			for (size_t k = 0; k < json_array_size(ids); k++) {
				const char *id = json_string_value(json_array_get(ids, k));
				const char *type = json_string_value(json_object_get(json_object_get(keys, id), "keytype"));
				printf(" %.16s(%s)", id ? id : "?", type ? type : "?");
			}
			printf("\n");
		}
	}
	tuf_md_clear(&md);
	return 0;
}

static int do_set_root(const char *data, bool initial, const char *const *files, size_t n)
{
	char err[1024];
	uint8_t **bufs = calloc(n, sizeof(*bufs));
	size_t *lens = calloc(n, sizeof(*lens));
	int status = bufs && lens ? 0 : cli_fail("trust set-root", "out of memory");
	for (size_t i = 0; i < n && !status; i++)
		status = read_root_file(files[i], &bufs[i], &lens[i]);
	if (status)
		goto out;
	if (initial) {
		if (n != 1) {
			status = cli_usage(&cmd_trust, "--initial takes exactly one root file");
		} else if (anchor_init(data, bufs[0], lens[0], err, sizeof(err)) != 0) {
			status = cli_fail("trust set-root", "%s", err);
		} else {
			struct tuf_md md;
			if (anchor_load(data, &md, NULL, NULL, err, sizeof(err)) == 0) {
				printf("installed trusted root version %" PRId64 " in %s\n", md.version, data);
				tuf_md_clear(&md);
			}
		}
		goto out;
	}
	struct anchor_change ch;
	if (anchor_set_root_chain(data, (const uint8_t *const *)bufs, lens, n, &ch, err, sizeof(err)) != 0) {
		status = cli_fail("trust set-root", "%s; the trusted root is %s", err,
				  ch.to_version > ch.from_version ? "replaced, its metadata copy is not"
								   : "unchanged");
		goto out;
	}
	if (ch.to_version == ch.from_version)
		printf("trusted root unchanged: version %" PRId64 " (nothing newer given)\n", ch.from_version);
	else
		printf("trusted root version %" PRId64 " replaced by version %" PRId64 "\n",
		       ch.from_version, ch.to_version);
	struct tuf_md md;
	if (anchor_load(data, &md, NULL, NULL, err, sizeof(err)) == 0) {
		if (md.expires_s <= (int64_t)time(NULL))
			fprintf(stderr, "shoal trust set-root: warning: root version %" PRId64
				" has expired; no release will verify until a newer root is set\n", md.version);
		tuf_md_clear(&md);
	}
out:
	for (size_t i = 0; bufs && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(lens);
	return status;
}

static int run_trust(int argc, char **argv)
{
	const char *data = SHOAL_DEFAULT_DATA_DIR, *v;
	const char *files[SHOAL_TUF_ROOT_ROTATIONS_MAX];
	size_t nfiles = 0;
	bool json = false, initial = false;
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage(&cmd_trust, "missing subcommand (show, set-root)");
	bool show = strcmp(argv[1], "show") == 0;
	if (!show && strcmp(argv[1], "set-root") != 0)
		return cli_usage(&cmd_trust, "unknown subcommand '%s' (show, set-root)", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (cli_opt_value(argc, argv, &i, "--data", &v)) {
			if (!v)
				return cli_usage(&cmd_trust, "--data needs a directory");
			data = v;
		} else if (strcmp(argv[i], "--json") == 0 && show) {
			json = true;
		} else if (strcmp(argv[i], "--initial") == 0 && !show) {
			initial = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return cli_usage(&cmd_trust, "unknown option '%s' for %s", argv[i], argv[1]);
		} else if (show) {
			return cli_usage(&cmd_trust, "unexpected argument '%s'", argv[i]);
		} else {
			if (nfiles == SHOAL_TUF_ROOT_ROTATIONS_MAX)
				return cli_usage(&cmd_trust, "at most %d root files", SHOAL_TUF_ROOT_ROTATIONS_MAX);
			files[nfiles++] = argv[i];
		}
	}
	if (show)
		return do_show(data, json);
	if (nfiles == 0)
		return cli_usage(&cmd_trust, "set-root needs a root file");
	return do_set_root(data, initial, files, nfiles);
}

const struct cli_command cmd_trust = {
	"trust", "show or replace the node's trusted TUF root",
	"NAME\n"
	"    shoal trust - the node's trust anchor: the fleet's TUF root\n"
	"\n"
	"SYNOPSIS\n"
	"    shoal trust show [--data DIR] [--json]\n"
	"    shoal trust set-root [--data DIR] ROOT.json [ROOT.json]...\n"
	"    shoal trust set-root [--data DIR] --initial ROOT.json\n"
	"\n"
	"DESCRIPTION\n"
	"    Every release a node accepts is verified with the TUF client workflow\n"
	"    against the fleet's root metadata: the keys and thresholds of the\n"
	"    root, targets (publishers), snapshot and timestamp roles. The node\n"
	"    keeps it in DIR/trust/root.json (the anchor, installed by 'shoal init\n"
	"    --root' or by set-root) and DIR/trust/metadata/ (the TUF client's\n"
	"    directory, whose root.json moves forward as the client follows root\n"
	"    rotations published by the fleet's repository).\n"
	"\n"
	"    show      prints the trusted root (the newer of the two): version,\n"
	"              expiry, and each role's threshold and key ids.\n"
	"    set-root  replaces the trusted root only along the root chain: each\n"
	"              file newer than the trusted root must be exactly the next\n"
	"              version and signed by a threshold of the previous root's\n"
	"              root keys and of its own (give every version in between,\n"
	"              in order, e.g. 2.root.json 3.root.json). Files older than\n"
	"              the trusted root are skipped; a file with the trusted\n"
	"              version must be the same root. Anything else is refused\n"
	"              with the reason, and the trusted root stays as it was.\n"
	"              --initial installs the first root of a node that has none\n"
	"              (it must be signed by a threshold of its own root keys):\n"
	"              check it came from your fleet's publishers out of band.\n"
	"\n"
	"OPTIONS\n"
	"    --data DIR   the node's data dir (default " SHOAL_DEFAULT_DATA_DIR ")\n"
	"    --json       show: machine-readable output\n"
	"    --initial    set-root: install the first trusted root\n"
	"\n"
	"EXIT STATUS\n"
	"    0 on success (also when nothing newer was given); 1 if the node has\n"
	"    no trusted root, a file cannot be read, or the chain does not verify;\n"
	"    2 on a usage error.\n"
	"\n"
	"EXAMPLES\n"
	"    shoal trust show --data /var/lib/shoal\n"
	"    shoal trust set-root --data /var/lib/shoal /srv/rel/metadata/2.root.json\n"
	"    shoal trust set-root --data ./n1 --initial ./root.json\n",
	run_trust,
};
