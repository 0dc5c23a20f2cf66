/* test_config.c — the INI configuration file and its flag overrides. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/membership.h"
#include "shoal/config.h"

static char *dir;

static int setup(void **state)
{
	(void)state;
	dir = tu_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(dir);
	free(dir);
	return 0;
}

/* Writes text to DIR/name and returns the path (static buffer). */
static const char *conf(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	tu_write_file(path, text, strlen(text), 0644);
	return path;
}

static void test_defaults(void **state)
{
	(void)state;
	struct shoal_config c;
	char err[256] = "";
	config_defaults(&c);
	assert_string_equal(c.data, "/var/lib/shoal");
	assert_string_equal(c.bind, "0.0.0.0:7946");
	assert_int_equal(c.join_count, 0);
	assert_int_equal(c.log_level, SHOAL_LOG_INFO);
	assert_string_equal(c.http, "");
	assert_int_equal(c.probe_interval_ms, 1000);
	assert_int_equal(c.probe_timeout_ms, 500);
	assert_int_equal(c.indirect_checks, 3);
	assert_int_equal(c.suspicion_mult, 4);
	assert_int_equal(c.suspicion_max_timeout_mult, 6);
	assert_int_equal(c.awareness_max_multiplier, 8);
	assert_int_equal(c.gossip_interval_ms, 200);
	assert_int_equal(c.gossip_nodes, 3);
	assert_int_equal(c.gossip_to_the_dead_ms, 30000);
	assert_int_equal(c.retransmit_mult, 4);
	assert_int_equal(c.push_pull_interval_ms, 30000);
	assert_int_equal(c.dead_reclaim_ms, 0);
	assert_string_equal(c.upstream, "");
	assert_int_equal(c.upstream_interval_ms, 60000);
	assert_int_equal(config_validate(&c, err, sizeof err), 0);
}

static void expect_error(const char *text, const char *needle1, const char *needle2);

/* [replication] upstream: an http(s) repository URL or empty, and its
 * interval; errors name file, line, section and key. */
static void test_upstream(void **state)
{
	(void)state;
	struct shoal_config c;
	char err[512] = "";
	const char *path = conf("up.conf", "[replication]\n"
					   "sync_interval_ms = 2000\n"
					   "upstream = https://releases.example.org/shoal/\n"
					   "upstream_interval_ms = 5000\n");
	config_defaults(&c);
	if (config_load_file(&c, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(c.upstream, "https://releases.example.org/shoal/");
	assert_int_equal(c.upstream_interval_ms, 5000);
	/* Flags override, and empty turns it off. */
	assert_int_equal(config_apply_flag(&c, "upstream", "http://127.0.0.1:8080", err, sizeof err), 0);
	assert_string_equal(c.upstream, "http://127.0.0.1:8080");
	assert_int_equal(config_apply_flag(&c, "upstream-interval-ms", "1000", err, sizeof err), 0);
	assert_int_equal(c.upstream_interval_ms, 1000);
	assert_int_equal(config_apply_flag(&c, "upstream", "", err, sizeof err), 0);
	assert_string_equal(c.upstream, "");

	char want[600];
	snprintf(want, sizeof want, "%s/bad.conf:3: [replication] upstream: expected an http:// or "
		 "https:// URL", dir);
	expect_error("[replication]\nsync_interval_ms = 2000\nupstream = ftp://x.example/\n", want,
		     "got 'ftp://x.example/'");
	expect_error("[replication]\nupstream = file:///srv/rel\n", "bad.conf:2: [replication] upstream",
		     "'file:///srv/rel'");
	expect_error("[replication]\nupstream = http://\n", "bad.conf:2:", "upstream");
	expect_error("[replication]\nupstream = https:///path\n", "bad.conf:2:", "upstream");
	expect_error("[replication]\nupstream = http://a.example/x?y=1\n", "upstream", "query");
	expect_error("[replication]\nupstream = http://a.example/x#f\n", "upstream", NULL);
	expect_error("[replication]\nupstream = http://a.example/a b\n", "upstream", "spaces");
	expect_error("[replication]\nupstream = HTTP://a.example/\n", "upstream", NULL);
	expect_error("[replication]\nupstream_interval_ms = 999\n",
		     "bad.conf:2: [replication] upstream_interval_ms", "1000..86400000, got '999'");
	expect_error("[replication]\nupstream_interval_ms = 86400001\n", "upstream_interval_ms", NULL);
	expect_error("[agent]\nupstream = http://a.example/\n", "bad.conf:2:", "belongs in [replication]");
	expect_error("[replication]\nupstream = http://a.example/\nupstream = http://b.example/\n",
		     "bad.conf:3: [replication] upstream", "more than once");

	/* The length bound: a flag may be longer than a file line, not than the bound. */
	char url[SHOAL_UPSTREAM_URL_BYTES_MAX + 16];
	strcpy(url, "https://a.example/");
	size_t n = strlen(url);
	memset(url + n, 'p', SHOAL_UPSTREAM_URL_BYTES_MAX - 1 - n);
	url[SHOAL_UPSTREAM_URL_BYTES_MAX - 1] = '\0';
	assert_int_equal(config_apply_flag(&c, "upstream", url, err, sizeof err), 0);
	assert_int_equal(strlen(c.upstream), SHOAL_UPSTREAM_URL_BYTES_MAX - 1);
	strcat(url, "p");
	assert_int_equal(config_apply_flag(&c, "upstream", url, err, sizeof err), SHOAL_ECONFIG);
	assert_non_null(strstr(err, "--upstream: expected"));
	assert_int_equal(strlen(c.upstream), SHOAL_UPSTREAM_URL_BYTES_MAX - 1); /* unchanged */
	assert_int_equal(config_apply_flag(&c, "upstream-interval-ms", "abc", err, sizeof err),
			 SHOAL_ECONFIG);
	assert_int_equal(c.upstream_interval_ms, 1000);
}

static void test_valid_file(void **state)
{
	(void)state;
	struct shoal_config c;
	char err[512] = "";
	const char *path = conf("ok.conf",
				"# shoal agent\n"
				"[agent]\n"
				"data = /srv/shoal\n"
				"bind = 10.0.0.5:7000\n"
				"join = 10.0.0.1:7946\n"
				"join = [::1]:7946\n"
				"log_level = debug\n"
				"http = 127.0.0.1:7947\n"
				"\n"
				"[membership]\n"
				"probe_interval_ms = 2000\n"
				"probe_timeout_ms = 700\n"
				"gossip_nodes = 5\n"
				"push_pull_interval_ms = 0\n"
				"dead_reclaim_ms = 60000\n"
				"stream_pings = 0\n");
	config_defaults(&c);
	int rc = config_load_file(&c, path, err, sizeof err);
	if (rc != 0)
		fail_msg("%s", err);
	assert_string_equal(c.data, "/srv/shoal");
	assert_string_equal(c.bind, "10.0.0.5:7000");
	assert_int_equal(c.join_count, 2);
	assert_string_equal(c.join[0], "10.0.0.1:7946");
	assert_string_equal(c.join[1], "[::1]:7946");
	assert_int_equal(c.log_level, SHOAL_LOG_DEBUG);
	assert_string_equal(c.http, "127.0.0.1:7947");
	assert_int_equal(c.probe_interval_ms, 2000);
	assert_int_equal(c.probe_timeout_ms, 700);
	assert_int_equal(c.gossip_nodes, 5);
	assert_int_equal(c.push_pull_interval_ms, 0);
	/* Untouched keys keep their defaults. */
	assert_int_equal(c.indirect_checks, 3);

	struct member_config m;
	memset(&m, 0xff, sizeof m);
	config_to_member(&c, &m);
	assert_int_equal(m.probe_interval_ms, 2000);
	assert_int_equal(m.probe_timeout_ms, 700);
	assert_int_equal(m.gossip_nodes, 5);
	assert_int_equal(m.push_pull_interval_ms, 0);
	assert_int_equal(m.dead_reclaim_ms, 60000);
	assert_int_equal(m.indirect_checks, 3);
	assert_false(m.sim_gids); /* an agent never reads the simulator's form */
	assert_int_equal(m.suspicion_max_timeout_mult, 6);
	assert_int_equal(m.payload_bytes_max, SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT);
	assert_false(m.stream_pings);
	/* On by default, as memberlist's TCP ping. */
	config_defaults(&c);
	assert_int_equal(c.stream_pings, 1);
	config_to_member(&c, &m);
	assert_true(m.stream_pings);
}

/* Loads text and expects an error containing each of the needles. */
static void expect_error(const char *text, const char *needle1, const char *needle2)
{
	struct shoal_config c;
	char err[512] = "";
	const char *path = conf("bad.conf", text);
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, path, err, sizeof err), SHOAL_ECONFIG);
	if (!strstr(err, needle1) || (needle2 && !strstr(err, needle2)))
		fail_msg("error '%s' lacks '%s' / '%s'", err, needle1, needle2 ? needle2 : "");
}

static void test_bad_values(void **state)
{
	(void)state;
	char want[600];
	snprintf(want, sizeof want,
		 "%s/bad.conf:7: [membership] probe_interval_ms: expected an integer 1..600000, "
		 "got 'abc'", dir);
	expect_error("[agent]\n"
		     "data = /x\n"
		     "\n"
		     "# comment\n"
		     "[membership]\n"
		     "gossip_nodes = 4\n"
		     "probe_interval_ms = abc\n",
		     want, NULL);
	expect_error("[membership]\nprobe_interval_ms = 0\n", "bad.conf:2:", "1..600000, got '0'");
	expect_error("[membership]\nprobe_interval_ms = 600001\n", "bad.conf:2:", "600001");
	expect_error("[membership]\nprobe_interval_ms = -5\n", "probe_interval_ms", "'-5'");
	expect_error("[membership]\nprobe_interval_ms = 99999999999999999999\n", ":2:", NULL);
	expect_error("[membership]\ngossip_nodes = 3x\n", "gossip_nodes", "'3x'");
	expect_error("[agent]\nlog_level = loud\n", "bad.conf:2: [agent] log_level",
		     "debug, info, warn or error");
	expect_error("[agent]\nbind = localhost\n", "[agent] bind", "IP:PORT");
	/* The HTTP API is loopback only. */
	expect_error("[agent]\nhttp = 0.0.0.0:8080\n", "[agent] http", "loopback");
	/* Relations between keys. */
	expect_error("[membership]\nprobe_interval_ms = 400\n", "probe_timeout_ms", "less than");
	/* Non-repeatable key given twice. */
	expect_error("[agent]\ndata = /a\ndata = /b\n", "bad.conf:3: [agent] data", "more than once");
}

static void test_unknown_keys_and_sections(void **state)
{
	(void)state;
	expect_error("[agent]\ndata = /x\nprobe_intervall_ms = 5\n", "bad.conf:3:",
		     "probe_intervall_ms: unknown key");
	expect_error("[agnet]\ndata = /x\n", "bad.conf:2:", "[agnet]: unknown section");
	expect_error("data = /x\n", "bad.conf:1:", "outside any section");
	/* A known key in the wrong section. */
	expect_error("[agent]\nprobe_interval_ms = 500\n", "bad.conf:2:", "belongs in [membership]");
	/* Syntax error. */
	expect_error("[agent]\ndata = /x\nthis is not ini\n", "bad.conf:3:", "syntax error");
	/* Over-long line. */
	char text[400];
	memset(text, 0, sizeof text);
	strcpy(text, "[agent]\ndata = /");
	memset(text + strlen(text), 'a', 250);
	strcat(text, "\n");
	expect_error(text, "bad.conf:2:", "line longer");
	/* Missing file. */
	struct shoal_config c;
	char err[512], path[600];
	snprintf(path, sizeof path, "%s/none.conf", dir);
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, path, err, sizeof err), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, "none.conf"));
}

static void test_flags_override(void **state)
{
	(void)state;
	struct shoal_config c;
	char err[512] = "";
	const char *path = conf("f.conf", "[agent]\njoin = 10.0.0.1:7946\njoin = 10.0.0.2:7946\n"
				"[membership]\nprobe_interval_ms = 2000\n");
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, path, err, sizeof err), 0);
	assert_int_equal(c.join_count, 2);
	assert_int_equal(config_apply_flag(&c, "probe-interval-ms", "500", err, sizeof err), 0);
	assert_int_equal(c.probe_interval_ms, 500);
	assert_int_equal(config_apply_flag(&c, "probe-timeout-ms", "100", err, sizeof err), 0);
	assert_int_equal(config_apply_flag(&c, "log-level", "debug", err, sizeof err), 0);
	assert_int_equal(c.log_level, SHOAL_LOG_DEBUG);
	assert_int_equal(config_apply_flag(&c, "data", "/tmp/x", err, sizeof err), 0);
	assert_string_equal(c.data, "/tmp/x");
	/* --join replaces the file's seeds, then repeats append. */
	assert_int_equal(config_apply_flag(&c, "join", "127.0.0.1:9001", err, sizeof err), 0);
	assert_int_equal(config_apply_flag(&c, "join", "127.0.0.1:9002", err, sizeof err), 0);
	assert_int_equal(c.join_count, 2);
	assert_string_equal(c.join[0], "127.0.0.1:9001");
	assert_string_equal(c.join[1], "127.0.0.1:9002");
	assert_int_equal(config_validate(&c, err, sizeof err), 0);

	/* Bad flag values name the flag and leave the config as it was. */
	assert_int_equal(config_apply_flag(&c, "probe-interval-ms", "fast", err, sizeof err),
			 SHOAL_ECONFIG);
	assert_non_null(strstr(err, "--probe-interval-ms"));
	assert_non_null(strstr(err, "'fast'"));
	assert_int_equal(c.probe_interval_ms, 500);
	assert_int_equal(config_apply_flag(&c, "no-such-key", "1", err, sizeof err), SHOAL_ECONFIG);
	assert_non_null(strstr(err, "unknown option"));
	/* Flags use dashes; the underscore spelling is not a flag. */
	assert_false(config_is_flag("probe_interval_ms"));
	assert_true(config_is_flag("probe-interval-ms"));
	/* config_set takes the key name. */
	assert_int_equal(config_set(&c, "gossip_nodes", "9", err, sizeof err), 0);
	assert_int_equal(c.gossip_nodes, 9);
	assert_int_equal(config_set(&c, "gossip_nodes", "65", err, sizeof err), SHOAL_ECONFIG);
	assert_non_null(strstr(err, "gossip_nodes: expected an integer 1..64"));
	assert_int_equal(config_apply_flag(&c, "stream-pings", "0", err, sizeof err), 0);
	assert_int_equal(c.stream_pings, 0);
	assert_int_equal(config_apply_flag(&c, "stream-pings", "2", err, sizeof err),
			 SHOAL_ECONFIG);
	assert_non_null(strstr(err, "stream-pings: expected an integer 0..1"));
	assert_int_equal(c.stream_pings, 0);
}

static void test_join_limit(void **state)
{
	(void)state;
	struct shoal_config c;
	char err[512] = "", text[2048] = "[agent]\n";
	for (int i = 0; i <= SHOAL_SEEDS_MAX; i++) {
		char line[64];
		snprintf(line, sizeof line, "join = 10.0.0.%d:7946\n", i + 1);
		strcat(text, line);
	}
	const char *path = conf("many.conf", text);
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, path, err, sizeof err), SHOAL_ECONFIG);
	char want[32];
	snprintf(want, sizeof want, ":%d: [agent] join", SHOAL_SEEDS_MAX + 2);
	assert_non_null(strstr(err, want));
}

static void test_print_roundtrip(void **state)
{
	(void)state;
	struct shoal_config c, d;
	char err[512] = "", path[600];
	config_defaults(&c);
	assert_int_equal(config_apply_flag(&c, "join", "127.0.0.1:1", err, sizeof err), 0);
	assert_int_equal(config_apply_flag(&c, "gossip-nodes", "7", err, sizeof err), 0);
	assert_int_equal(config_apply_flag(&c, "upstream", "https://r.example:8443/rel", err, sizeof err), 0);
	assert_int_equal(config_apply_flag(&c, "upstream-interval-ms", "30000", err, sizeof err), 0);
	snprintf(path, sizeof path, "%s/printed.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	config_print(&c, f);
	fclose(f);
	config_defaults(&d);
	if (config_load_file(&d, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_int_equal(d.gossip_nodes, 7);
	assert_int_equal(d.join_count, 1);
	assert_string_equal(d.join[0], "127.0.0.1:1");
	assert_string_equal(d.upstream, "https://r.example:8443/rel");
	assert_int_equal(d.upstream_interval_ms, 30000);
	/* Off (empty) prints and reads back as off. */
	assert_int_equal(config_apply_flag(&c, "upstream", "", err, sizeof err), 0);
	f = fopen(path, "w");
	assert_non_null(f);
	config_print(&c, f);
	fclose(f);
	config_defaults(&d);
	if (config_load_file(&d, path, err, sizeof err) != 0)
		fail_msg("%s", err);
	assert_string_equal(d.upstream, "");
	/* The --help key list names every key as a flag. */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	config_print_keys(m);
	fclose(m);
	assert_non_null(strstr(buf, "--probe-interval-ms N"));
	assert_non_null(strstr(buf, "--log-level LEVEL"));
	assert_non_null(strstr(buf, "--upstream URL"));
	assert_non_null(strstr(buf, "--upstream-interval-ms N"));
	assert_non_null(strstr(buf, "default 1000"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_valid_file),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_unknown_keys_and_sections),
		cmocka_unit_test(test_flags_override),
		cmocka_unit_test(test_join_limit),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_upstream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
