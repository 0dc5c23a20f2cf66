/*
 * cmd_fleet.c — `shoal fleet create`: make a fleet's trust material (fleet
 * id, gossip keyring, admission key pairs) in a new directory. The admission
 * secret keys in DIR/admission/ are what admits nodes; keep them offline.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/hex.h"
#include "trust/identity.h"

extern const struct cli_command cmd_fleet;

/* Parses a decimal in [lo, hi]; returns 0 or -1. */
static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end = NULL;
	if (!s || *s < '0' || *s > '9')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int fleet_create_cmd(int argc, char **argv)
{
	const char *out = NULL, *v;
	unsigned keys = 1, threshold = 1;
	char err[1024] = "", hex[2 * SHOAL_FLEET_ID_BYTES + 1];
	struct fleet_public f;

	for (int i = 2; i < argc; i++) {
		if (cli_opt_value(argc, argv, &i, "--out", &v)) {
			if (!v)
				return cli_usage(&cmd_fleet, "--out needs a directory");
			out = v;
		} else if (cli_opt_value(argc, argv, &i, "--admission-keys", &v)) {
			if (parse_uint(v, 1, SHOAL_ADMISSION_KEYS_MAX, &keys) != 0)
				return cli_usage(&cmd_fleet, "--admission-keys must be 1..%d",
						 SHOAL_ADMISSION_KEYS_MAX);
		} else if (cli_opt_value(argc, argv, &i, "--threshold", &v)) {
			if (parse_uint(v, 1, SHOAL_ADMISSION_SIGS_MAX, &threshold) != 0)
				return cli_usage(&cmd_fleet, "--threshold must be 1..%d",
						 SHOAL_ADMISSION_SIGS_MAX);
		} else {
			return cli_usage(&cmd_fleet, "unknown argument '%s'", argv[i]);
		}
	}
	if (!out)
		return cli_usage(&cmd_fleet, "create needs --out DIR");
	if (threshold > keys)
		return cli_usage(&cmd_fleet, "--threshold %u is more than the %u admission keys",
				 threshold, keys);
	int rc = fleet_create(out, keys, threshold, &f, err, sizeof err);
	if (rc != 0)
		return cli_fail("fleet create", "%s", err[0] ? err : shoal_strerror(rc));
	hex_encode(f.fleet_id, sizeof f.fleet_id, hex);
	printf("fleet_id=%s\n", hex);
	printf("dir=%s\n", out);
	printf("admission_keys=%u threshold=%u\n", keys, threshold);
	fprintf(stderr,
		"Created fleet %s in %s.\n"
		"Admission secret keys are in %s/admission/ (mode 0600): they admit nodes,\n"
		"so keep them offline. Add nodes with: shoal init --data DIR --fleet %s --name NAME\n",
		hex, out, out, out);
	return 0;
}

static int run_fleet(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage(&cmd_fleet, "missing subcommand (create)");
	if (strcmp(argv[1], "create") == 0)
		return fleet_create_cmd(argc, argv);
	return cli_usage(&cmd_fleet, "unknown subcommand '%s' (expected create)", argv[1]);
}

const struct cli_command cmd_fleet = {
	"fleet", "create a fleet (ids, gossip key, admission keys)",
	"NAME\n"
	"    shoal fleet - create a fleet's trust material\n"
	"\n"
	"SYNOPSIS\n"
	"    shoal fleet create --out DIR [--admission-keys N] [--threshold M]\n"
	"\n"
	"DESCRIPTION\n"
	"    A fleet is the set of nodes that admit each other. `fleet create` makes,\n"
	"    in a new (absent or empty) directory DIR:\n"
	"        DIR/fleet.id          16-byte random fleet id, hex\n"
	"        DIR/gossip.keys       the gossip encryption keyring (mode 0600)\n"
	"        DIR/admission.pub     'threshold M' and the N admission public keys\n"
	"        DIR/admission/K.key   admission secret key K (mode 0600)\n"
	"    DIR and DIR/admission are mode 0700. A node is admitted by a certificate\n"
	"    signed by at least M of the N admission keys (see shoal init). Keep the\n"
	"    admission secret keys offline; nodes only need the public parts and the\n"
	"    gossip keyring, which shoal init copies into each node's data dir.\n"
	"    Nothing is written if any step fails.\n"
	"\n"
	"OPTIONS\n"
	"    --out DIR             directory to create (must be absent or empty)\n"
	"    --admission-keys N    number of admission key pairs, 1..8 (default 1)\n"
	"    --threshold M         signatures needed to admit a node, 1..3 and <= N\n"
	"                          (default 1)\n"
	"\n"
	"EXIT STATUS\n"
	"    0 on success, 1 if the fleet could not be created (DIR not empty, I/O\n"
	"    error), 2 on a usage error.\n"
	"\n"
	"EXAMPLES\n"
	"    shoal fleet create --out /secure/fleet\n"
	"    shoal fleet create --out ./fleet --admission-keys 3 --threshold 2\n",
	run_fleet,
};
