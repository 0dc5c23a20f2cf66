/*
 * cmd_init.c — `shoal init`: create a node's data dir with a fresh Ed25519
 * key and an admission certificate signed by the fleet's admission keys,
 * and (with --root) the fleet's trusted TUF root (src/trust/anchor.c).
 */
#define _XOPEN_SOURCE 700 /* nftw, to undo a half-made data dir */
#include "cli/cli.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shoal/hex.h"
#include "trust/anchor.h"
#include "trust/identity.h"

#define EXPIRES_DAYS_DEFAULT 365
#define EXPIRES_DAYS_MAX 3650
#define DAY_MS 86400000ull

extern const struct cli_command cmd_init;

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads the --root file, at most SHOAL_TUF_ROOT_BYTES_MAX bytes. */
static int read_root(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(err, errlen, "--root: open(%s): %s", path, strerror(errno));
		return -1;
	}
	uint8_t *buf = malloc(SHOAL_TUF_ROOT_BYTES_MAX + 1);
	size_t n = buf ? fread(buf, 1, SHOAL_TUF_ROOT_BYTES_MAX + 1, f) : 0;
	bool bad = !buf || ferror(f);
	fclose(f);
	if (bad || n > SHOAL_TUF_ROOT_BYTES_MAX) {
		free(buf);
		snprintf(err, errlen, "--root: read(%s): %s", path,
			 bad ? "I/O error" : "larger than the root size bound");
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	return ftw->level > 0 ? remove(path) : 0;
}

static int run_init(int argc, char **argv)
{
	struct node_init_params p;
	struct admission_cert cert;
	const char *v;
	unsigned long days = EXPIRES_DAYS_DEFAULT;
	char err[1024] = "", hex[2 * SHOAL_NODE_ID_BYTES + 1], when[32];
	const char *root_path = NULL;
	uint8_t *root = NULL;
	size_t root_len = 0;

	memset(&p, 0, sizeof p);
	for (int i = 1; i < argc; i++) {
		if (cli_opt_value(argc, argv, &i, "--data", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--data needs a directory");
			p.data_dir = v;
		} else if (cli_opt_value(argc, argv, &i, "--fleet", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--fleet needs a directory");
			p.fleet_dir = v;
		} else if (cli_opt_value(argc, argv, &i, "--name", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--name needs a value");
			p.name = v;
		} else if (cli_opt_value(argc, argv, &i, "--tag", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--tag needs a value");
			if (p.tags_count >= SHOAL_TAGS_COUNT_MAX)
				return cli_usage(&cmd_init, "at most %d tags", SHOAL_TAGS_COUNT_MAX);
			if (!identity_valid_name(v, SHOAL_TAG_BYTES_MAX))
				return cli_usage(&cmd_init,
						 "invalid tag '%s': use 1..%d characters of A-Z a-z 0-9 . _ -",
						 v, SHOAL_TAG_BYTES_MAX);
			p.tags[p.tags_count++] = v;
		} else if (cli_opt_value(argc, argv, &i, "--admission-key", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--admission-key needs a file");
			if (p.admission_key_paths_count >= SHOAL_ADMISSION_KEYS_MAX)
				return cli_usage(&cmd_init, "at most %d admission keys",
						 SHOAL_ADMISSION_KEYS_MAX);
			p.admission_key_paths[p.admission_key_paths_count++] = v;
		} else if (cli_opt_value(argc, argv, &i, "--root", &v)) {
			if (!v)
				return cli_usage(&cmd_init, "--root needs a root.json file");
			root_path = v;
		} else if (cli_opt_value(argc, argv, &i, "--expires-days", &v)) {
			char *end = NULL;
			if (!v || *v < '0' || *v > '9')
				return cli_usage(&cmd_init, "--expires-days needs a number of days");
			days = strtoul(v, &end, 10);
			if (*end != '\0' || days < 1 || days > EXPIRES_DAYS_MAX)
				return cli_usage(&cmd_init, "--expires-days must be 1..%d, got '%s'",
						 EXPIRES_DAYS_MAX, v);
		} else {
			return cli_usage(&cmd_init, "unknown argument '%s'", argv[i]);
		}
	}
	if (!p.data_dir || !p.fleet_dir || !p.name)
		return cli_usage(&cmd_init, "--data, --fleet and --name are required");
	if (!identity_valid_name(p.name, SHOAL_NAME_BYTES_MAX))
		return cli_usage(&cmd_init,
				 "invalid name '%s': use 1..%d characters of A-Z a-z 0-9 . _ -",
				 p.name, SHOAL_NAME_BYTES_MAX);
	p.now_ms = wall_ms();
	p.expires_ms = p.now_ms + (uint64_t)days * DAY_MS;

	/* The root is checked before anything is made, and installed after the
	 * node: if that fails, the node is removed again (DIR was absent or
	 * empty, or node_init would have refused it). */
	if (root_path) {
		if (read_root(root_path, &root, &root_len, err, sizeof err) != 0)
			return cli_fail("init", "%s", err);
		if (anchor_check_root(root, root_len, err, sizeof err) != 0) {
			free(root);
			return cli_fail("init", "--root %s: %s", root_path, err);
		}
	}
	struct stat st;
	bool existed = stat(p.data_dir, &st) == 0;
	int rc = node_init(&p, &cert, err, sizeof err);
	if (rc != 0) {
		free(root);
		return cli_fail("init", "%s", err[0] ? err : shoal_strerror(rc));
	}
	if (root) {
		rc = anchor_init(p.data_dir, root, root_len, err, sizeof err);
		free(root);
		if (rc != 0) {
			nftw(p.data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
			if (!existed)
				rmdir(p.data_dir);
			return cli_fail("init", "--root %s: %s (nothing was created)", root_path, err);
		}
	}

	time_t exp = (time_t)(cert.expires_ms / 1000);
	struct tm tm;
	gmtime_r(&exp, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	hex_encode(cert.node_id, sizeof cert.node_id, hex);
	printf("node_id=%s\n", hex);
	printf("name=%s\n", cert.name);
	printf("tags=");
	for (size_t i = 0; i < cert.tags_count; i++)
		printf("%s%s", i ? "," : "", cert.tags[i]);
	printf("\ndata=%s\n", p.data_dir);
	printf("signatures=%u expires=%s\n", (unsigned)cert.sigs_count, when);
	if (root_path) {
		struct tuf_md md;
		if (anchor_load(p.data_dir, &md, NULL, NULL, err, sizeof err) == 0) {
			printf("trusted_root=%lld\n", (long long)md.version);
			tuf_md_clear(&md);
		}
	}
	return 0;
}

const struct cli_command cmd_init = {
	"init", "create a node's data dir, key and admission certificate",
	"NAME\n"
	"    shoal init - create a node identity admitted to a fleet\n"
	"\n"
	"SYNOPSIS\n"
	"    shoal init --data DIR --fleet FLEETDIR --name NAME [--tag TAG]...\n"
	"               [--expires-days D] [--admission-key FILE]... [--root FILE]\n"
	"\n"
	"DESCRIPTION\n"
	"    Creates the data dir DIR (mode 0700) for one node:\n"
	"        DIR/keys/node.key   a fresh Ed25519 secret key (mode 0600); the\n"
	"                            public key is the node id\n"
	"        DIR/node.cert       the admission certificate: node id, name, tags,\n"
	"                            expiry, signed by the fleet's admission keys\n"
	"        DIR/fleet/          copies of fleet.id, admission.pub and\n"
	"                            gossip.keys (mode 0600)\n"
	"        DIR/trust/root.json with --root: the fleet's trusted TUF root, which\n"
	"                            every release is verified against; also\n"
	"                            copied to DIR/trust/metadata/ for the TUF\n"
	"                            client (see shoal trust)\n"
	"    The certificate is signed by every admission key given with\n"
	"    --admission-key, or, by default, by every FLEETDIR/admission/N.key\n"
	"    present (at most 3). At least the fleet's threshold of distinct keys\n"
	"    must sign. An agent started on DIR joins the fleet with this identity;\n"
	"    peers ignore nodes without a valid certificate.\n"
	"    init never overwrites an existing node: DIR must be absent or empty.\n"
	"    Nothing is written if any step fails.\n"
	"    The tag 'canary' puts a node in the first wave of every rollout.\n"
	"    The --root file must be a TUF root signed by a threshold of its own\n"
	"    root keys (e.g. 1.root.json of 'shoal release init'); it is checked\n"
	"    before anything is created. Get it from your publishers out of band.\n"
	"    On success it prints node_id=HEX, name=NAME, tags, data and expiry\n"
	"    (and trusted_root=VERSION with --root).\n"
	"\n"
	"OPTIONS\n"
	"    --data DIR            node data dir to create\n"
	"    --fleet FLEETDIR      fleet made by 'shoal fleet create'\n"
	"    --name NAME           node name, 1..32 of A-Z a-z 0-9 . _ -\n"
	"    --tag TAG             a tag, 1..16 of the same characters (up to 4)\n"
	"    --expires-days D      certificate lifetime in days, 1..3650 (default 365)\n"
	"    --admission-key FILE  admission secret key to sign with (repeatable)\n"
	"    --root FILE           the fleet's trusted TUF root.json to install\n"
	"\n"
	"EXIT STATUS\n"
	"    0 on success, 1 if the node could not be created (DIR already holds a\n"
	"    node, unreadable or too-open key file, too few admission keys, a --root\n"
	"    that is not a self-signed TUF root), 2 on a usage error.\n"
	"\n"
	"EXAMPLES\n"
	"    shoal init --data /var/lib/shoal --fleet /secure/fleet --name web-01\n"
	"    shoal init --data ./n1 --fleet ./fleet --name n1 --tag canary \\\n"
	"        --admission-key ./fleet/admission/0.key \\\n"
	"        --admission-key ./fleet/admission/2.key\n"
	"    shoal init --data ./n2 --fleet ./fleet --name n2 \\\n"
	"        --root /srv/rel/metadata/1.root.json\n",
	run_init,
};
