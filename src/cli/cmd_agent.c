/*
 * cmd_agent.c — `shoal agent` (run the agent) and `shoal leave` (ask a
 * running agent to leave the mesh gracefully and exit).
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/agent.h"
#include "runtime/control.h"
#include "shoal/config.h"

extern const struct cli_command cmd_agent;
extern const struct cli_command cmd_leave;

/* `--key VALUE` or `--key=VALUE`: splits into key (without dashes) and value. */
static int split_flag(int argc, char **argv, int *i, char *key, size_t keylen,
		      const char **value)
{
	const char *arg = argv[*i];
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
		return -1;
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
	if (n + 1 > keylen)
		return -1;
	memcpy(key, arg + 2, n);
	key[n] = '\0';
	if (eq) {
		*value = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return -2;
	*value = argv[++*i];
	return 0;
}

static int run_agent(int argc, char **argv)
{
	struct shoal_config cfg;
	char err[1024];
	const char *config_path = NULL;
	config_defaults(&cfg);

	/* First pass: the config file, so that flags override it. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_path = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_path = argv[i] + 9;
	}
	if (config_path) {
		if (config_load_file(&cfg, config_path, err, sizeof(err)) != 0)
			return cli_fail("agent", "%s", err);
	} else if (access(SHOAL_DEFAULT_CONFIG, F_OK) == 0) {
		if (config_load_file(&cfg, SHOAL_DEFAULT_CONFIG, err, sizeof(err)) != 0)
			return cli_fail("agent", "%s", err);
	}
	for (int i = 1; i < argc; i++) {
		char key[64];
		const char *value;
		int rc = split_flag(argc, argv, &i, key, sizeof(key), &value);
		if (rc == -1)
			return cli_usage(&cmd_agent, "unexpected argument '%s'", argv[i]);
		if (rc == -2)
			return cli_usage(&cmd_agent, "%s needs a value", argv[i]);
		if (strcmp(key, "config") == 0)
			continue;
		if (!config_is_flag(key))
			return cli_usage(&cmd_agent, "unknown option '--%s'", key);
		if (config_apply_flag(&cfg, key, value, err, sizeof(err)) != 0)
			return cli_usage(&cmd_agent, "%s", err);
	}
	if (config_validate(&cfg, err, sizeof(err)) != 0)
		return cli_fail("agent", "%s", err);
	/* Outgoing push-pulls run on libuv's pool: two threads rather than
	 * libuv's default four (each keeps ~16 KiB of stack resident). One
	 * push-pull per interval needs one; a second lets a join's seeds or a
	 * slow peer overlap. An operator's UV_THREADPOOL_SIZE wins. Set here,
	 * while the process has one thread. */
	(void)setenv("UV_THREADPOOL_SIZE", "2", 0);
	return agent_run(&cfg);
}

const struct cli_command cmd_agent = {
	"agent", "run the agent: join the mesh and serve the CLI",
	"NAME\n"
	"    shoal agent - run the shoal agent on this host\n\n"
	"SYNOPSIS\n"
	"    shoal agent [--config FILE] [--data DIR] [--bind HOST:PORT]\n"
	"                [--join HOST:PORT]... [--KEY VALUE]...\n\n"
	"DESCRIPTION\n"
	"    Runs in the foreground until SIGTERM, SIGINT or `shoal leave`. The agent\n"
	"    loads its identity from DIR (made by `shoal init`), bumps its incarnation\n"
	"    durably in DIR/state.db, and joins the mesh through the --join seeds and\n"
	"    through every member it knew before a restart. Membership is SWIM with\n"
	"    Lifeguard: UDP packets sealed with the fleet gossip key and signed by\n"
	"    the node key on HOST:PORT, and push-pull state exchange on the same TCP\n"
	"    port over Noise XX streams, both ends proven to hold admitted node keys.\n"
	"    A probe that fails over UDP also asks the member over such a stream\n"
	"    (memberlist's TCP ping); if the stream answers, no suspicion is raised\n"
	"    (--stream-pings 0 turns this off).\n\n"
	"    Every event is logged as one key=value line on stderr (member_join,\n"
	"    member_suspect, member_dead, member_left, member_alive, ...). The CLI\n"
	"    talks to the agent through DIR/control.sock (mode 0600).\n\n"
	"    On SIGTERM or SIGINT the agent leaves gracefully: it gossips that it\n"
	"    left for about a second, then exits 0. A second signal stops it at once.\n\n"
	"OPTIONS\n"
	"    --config FILE   INI file to read first (default /etc/shoal/shoal.conf\n"
	"                    when it exists). Every key below is also a flag, with\n"
	"                    dashes for underscores; flags override the file.\n"
	"    --data DIR      the node's data dir (default /var/lib/shoal)\n"
	"    --bind HOST:PORT  UDP and TCP address (default 0.0.0.0:7946; with a\n"
	"                    wildcard the first non-loopback IPv4 is advertised)\n"
	"    --join HOST:PORT  a seed member; repeatable\n"
	"    --log-level L   debug, info, warn or error\n"
	"    --http HOST:PORT  serve the read-only HTTP API on a loopback address:\n"
	"                    /api/status, /api/members (JSON), /metrics\n"
	"                    (Prometheus) and a dashboard at /; off by default\n"
	"    --probe-interval-ms, --probe-timeout-ms, --indirect-checks,\n"
	"    --suspicion-mult, --suspicion-max-timeout-mult,\n"
	"    --awareness-max-multiplier, --gossip-interval-ms, --gossip-nodes,\n"
	"    --gossip-to-the-dead-ms, --retransmit-mult, --push-pull-interval-ms,\n"
	"    --dead-reclaim-ms, --reconnect-interval-ms, --stream-pings\n"
	"                    SWIM/Lifeguard tuning;\n"
	"                    defaults are memberlist's LAN profile\n"
	"                    (see docs/configuration.md)\n"
	"    --sync-interval-ms MS   mean time between anti-entropy syncs of the\n"
	"                    signed feeds with a random member (default 10000)\n"
	"    --feed-retention-s S   prune received records older than S seconds;\n"
	"                    each feed's head is always kept (default 604800)\n"
	"    --upstream URL  pull releases from the HTTP(S) TUF repository at URL\n"
	"                    (URL/metadata/ and URL/targets/): every interval the\n"
	"                    agent runs the TUF client workflow from its trusted\n"
	"                    root, and when the timestamp advanced it downloads\n"
	"                    the targets and announces the verified release to the\n"
	"                    mesh as if published here. Nothing that fails\n"
	"                    verification is announced; `shoal status` shows the\n"
	"                    last attempt, success, injected version and error\n"
	"                    (default empty: off)\n"
	"    --upstream-interval-ms MS   time between pulls (1000..86400000,\n"
	"                    default 60000)\n\n"
	"ENVIRONMENT\n"
	"    UV_THREADPOOL_SIZE  threads running outgoing push-pulls (default 2)\n\n"
	"EXIT STATUS\n"
	"    0 after a graceful leave; 1 if the agent could not start (the message\n"
	"    names the file, key or address at fault); 2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal agent --data /var/lib/shoal --bind 10.0.0.5:7946 --join 10.0.0.1:7946\n"
	"    shoal agent --config /etc/shoal/shoal.conf --log-level debug\n"
	"    shoal agent --data /var/lib/shoal --join 10.0.0.1:7946 \\\n"
	"        --upstream https://releases.example.org/shoal\n",
	run_agent,
};

static int run_leave(int argc, char **argv)
{
	const char *data = SHOAL_DEFAULT_DATA_DIR;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
			data = argv[++i];
		else if (strncmp(argv[i], "--data=", 7) == 0)
			data = argv[i] + 7;
		else
			return cli_usage(&cmd_leave, "unexpected argument '%s'", argv[i]);
	}
	char err[512];
	json_t *req = json_pack("{s:s}", "cmd", "leave"), *resp = NULL;
	int rc = control_request(data, req, &resp, err, sizeof(err));
	json_decref(req);
	if (rc)
		return cli_fail("leave", "%s", err);
	const char *e = json_string_value(json_object_get(resp, "error"));
	if (e) {
		json_decref(resp);
		return cli_fail("leave", "agent refused: %s", e);
	}
	json_decref(resp);
	printf("agent at %s is leaving the mesh\n", data);
	return 0;
}

const struct cli_command cmd_leave = {
	"leave", "ask the running agent to leave the mesh and exit",
	"NAME\n"
	"    shoal leave - graceful leave of the running agent\n\n"
	"SYNOPSIS\n"
	"    shoal leave [--data DIR]\n\n"
	"DESCRIPTION\n"
	"    Tells the agent of DIR (default /var/lib/shoal) to announce that it\n"
	"    left, at a new incarnation, and to exit about a second later. Other\n"
	"    members then show it as `left`, not `dead`.\n\n"
	"EXIT STATUS\n"
	"    0 if the agent accepted; 1 if no agent runs there or it refused.\n\n"
	"EXAMPLES\n"
	"    shoal leave --data /var/lib/shoal\n",
	run_leave,
};
