/*
 * cmd_releases.c — `shoal releases`: the releases the running agent has
 * seen announced, and what became of each (DESIGN §4.6).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "runtime/control.h"
#include "shoal/limits.h"

extern const struct cli_command cmd_releases;

#define REASON_CHARS_MAX 200 /* a reason printed in the table */

/* Control bytes in agent-supplied text are printed as '?'. */
static void put_clean(const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, stdout);
	}
}

static int print_table(const json_t *list)
{
	printf("%-8s %-10s %-8s %-8s %-16s %s\n", "VERSION", "STATE", "HOLDERS", "TARGETS",
	       "ANNOUNCED-BY", "REASON / TARGET NAMES");
	size_t i;
	const json_t *row;
	json_array_foreach(list, i, row)
	{
		const json_t *targets = json_object_get(row, "targets");
		const char *by = json_string_value(json_object_get(row, "announced_by"));
		printf("%-8lld %-10.10s %-8lld %-8zu %-16.16s ",
		       (long long)json_integer_value(json_object_get(row, "version")),
		       json_string_value(json_object_get(row, "state"))
			       ? json_string_value(json_object_get(row, "state"))
			       : "?",
		       (long long)json_integer_value(json_object_get(row, "holders")),
		       json_array_size(targets), by ? by : "");
		const char *reason = json_string_value(json_object_get(row, "reason"));
		if (reason && reason[0]) {
			put_clean(reason, REASON_CHARS_MAX);
		} else {
			size_t k;
			const json_t *t;
			json_array_foreach(targets, k, t)
			{
				if (k)
					fputs(", ", stdout);
				put_clean(json_string_value(json_object_get(t, "name")), 80);
			}
		}
		fputc('\n', stdout);
	}
	return 0;
}

static int run_releases(int argc, char **argv)
{
	const char *data_dir = SHOAL_DEFAULT_DATA_DIR;
	bool as_json = false;
	for (int i = 1; i < argc; i++) {
		const char *v;
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (cli_opt_value(argc, argv, &i, "--data", &v)) {
			if (!v || !v[0])
				return cli_usage(&cmd_releases, "--data needs a directory");
			data_dir = v;
		} else {
			return cli_usage(&cmd_releases, "unknown argument '%s'", argv[i]);
		}
	}
	json_t *req = json_pack("{s:s}", "cmd", "releases");
	json_t *resp = NULL;
	char err[1024];
	int rc = req ? control_request(data_dir, req, &resp, err, sizeof(err)) : SHOAL_ENOMEM;
	json_decref(req);
	if (rc)
		return cli_fail(cmd_releases.name, "%s", rc == SHOAL_ENOMEM ? "out of memory" : err);
	const json_t *e = json_object_get(resp, "error");
	const json_t *list = json_object_get(resp, "releases");
	int out = 0;
	if (e) {
		out = cli_fail(cmd_releases.name, "the agent replied: %s",
			       json_is_string(e) ? json_string_value(e) : "(error)");
	} else if (!json_is_array(list) || json_array_size(list) > SHOAL_RELEASES_KEPT_MAX) {
		out = cli_fail(cmd_releases.name, "unexpected reply from the agent");
	} else if (as_json) {
		json_dumpf(resp, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		out = print_table(list);
	}
	json_decref(resp);
	return out;
}

const struct cli_command cmd_releases = {
	"releases", "list announced releases and their verification state",
	"NAME\n"
	"    shoal releases - list announced releases and their verification state\n\n"
	"SYNOPSIS\n"
	"    shoal releases [--data DIR] [--json]\n\n"
	"DESCRIPTION\n"
	"    Asks the agent serving DIR which releases it has seen announced in\n"
	"    the fleet's feeds, newest first. Each announce lists TUF metadata\n"
	"    files by hash; the agent fetched them from peers (untrusted\n"
	"    mirrors), ran the TUF client workflow against its trusted root, and\n"
	"    fetched and checked every target. One line per announce:\n"
	"      VERSION       the targets metadata version\n"
	"      STATE         announced, fetching, verified, or rejected\n"
	"      HOLDERS       members whose health records say they hold it\n"
	"      TARGETS       number of target files\n"
	"      ANNOUNCED-BY  node id (hex prefix) of the announcing agent\n"
	"      REASON        for a rejected release, the TUF step that failed\n"
	"                    (e.g. a signature threshold not met, a rollback);\n"
	"                    otherwise the target names\n\n"
	"    Verified targets live in DIR/releases/VERSION/.\n\n"
	"OPTIONS\n"
	"    --data DIR   the agent's data dir (default " SHOAL_DEFAULT_DATA_DIR ")\n"
	"    --json       print the agent's reply as JSON (full ids, hashes)\n\n"
	"EXIT STATUS\n"
	"    0 on success; 1 if no agent runs on DIR or it replied with an error;\n"
	"    2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal releases\n"
	"    shoal releases --json | jq '.releases[] | select(.state == \"rejected\")'\n",
	run_releases,
};
