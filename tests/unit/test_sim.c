/* test_sim.c — the simulator replays a seed exactly, tells seeds apart, and
 * every scenario holds its properties: at 50 nodes, and at 1,000 nodes as
 * the issue asks of CI ("1,000 nodes for each scenario"); the primitives
 * (crash, restart, partition) do what the scenarios rely on.
 *
 * `make test` runs the unit tests on the optimised build, then every test
 * again on the Debug+ASan build, which is about 30 times slower: there the
 * 1,000-node tests run the same scenarios and seeds at SCALE_NODES. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "shoal/error.h"
#include "sim/sim.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifdef SANITIZED
#define SCALE_NODES 150u
#else
#define SCALE_NODES 1000u
#endif

static void run_ok(const struct sim_params *p, struct sim_report *r)
{
	int rc = sim_scenario_run(p, r);
	if (rc != 0)
		fail_msg("scenario %s seed=%llu: %s", sim_scenario_name(p->scenario),
			 (unsigned long long)p->seed, shoal_strerror(rc));
}

static void params(struct sim_params *p, enum sim_scenario sc, uint32_t nodes, uint64_t seed)
{
	sim_params_default(p, sc);
	p->nodes = nodes;
	p->seed = seed;
}

static void same_seed_same_trace(void **state)
{
	(void)state;
	/* Loss, duplicates and jitter draw from the rng on every packet: the
	 * widest use of randomness. */
	struct sim_params p;
	params(&p, SIM_SCENARIO_LOSS, 40, 42);
	p.seconds = 30;
	struct sim_report a, b;
	run_ok(&p, &a);
	run_ok(&p, &b);
	assert_true(a.m.member_events > 0);
	assert_int_equal(a.m.trace_hash, b.m.trace_hash);
	assert_int_equal(a.m.events, b.m.events);
	assert_int_equal(a.m.packets_sent, b.m.packets_sent);
	assert_int_equal(a.m.packets_lost, b.m.packets_lost);

	/* Crashes and restarts too. */
	params(&p, SIM_SCENARIO_CHURN, 40, 9);
	p.churn_fraction = 0.1;
	run_ok(&p, &a);
	run_ok(&p, &b);
	assert_true(a.m.restarts > 0);
	assert_int_equal(a.m.trace_hash, b.m.trace_hash);
	assert_int_equal(a.m.detected_pairs, b.m.detected_pairs);
}

static void different_seed_different_trace(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_JOIN, 40, 1);
	p.seconds = 20;
	struct sim_report a, b;
	run_ok(&p, &a);
	p.seed = 2;
	run_ok(&p, &b);
	assert_int_not_equal(a.m.trace_hash, b.m.trace_hash);
}

static void check_scenario(enum sim_scenario sc, uint64_t seed)
{
	struct sim_params p;
	params(&p, sc, 50, seed);
	struct sim_report r;
	run_ok(&p, &r);
	char why[256];
	if (!sim_scenario_check(&p, &r, why, sizeof(why)))
		fail_msg("scenario %s seed=%llu: %s", sim_scenario_name(sc),
			 (unsigned long long)seed, why);
}

static void small_join_converges(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_JOIN, 50, 3);
	struct sim_report r;
	run_ok(&p, &r);
	assert_true(r.m.converged);
	/* Nodes start over the first second; nobody can see everyone before the
	 * last one starts. */
	assert_true(r.m.converged_at_ms >= 50 * 20 * 49 / 50);
	assert_int_equal(r.m.live_nodes, 50);
	check_scenario(SIM_SCENARIO_JOIN, 3);
}

static void small_crash_detected(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_CRASH, 50, 5);
	struct sim_report r;
	run_ok(&p, &r);
	assert_int_equal(r.m.crashes, 8); /* 15% of 50, rounded */
	assert_int_equal(r.m.live_nodes, 42);
	/* every live node saw every crash: 42 observers x 8 crashes */
	assert_int_equal(r.m.judged_pairs, 42 * 8);
	assert_int_equal(r.m.undetected, 0);
	assert_int_equal(r.m.detected_pairs, 42 * 8);
	assert_true(r.m.detection_p50_ms > 0);
	assert_true(r.m.detection_p50_ms <= r.m.detection_p99_ms);
	assert_true(r.m.detection_p99_ms <= r.m.detection_max_ms);
	assert_true(r.m.detection_max_ms <= r.detect_grace_ms);
	check_scenario(SIM_SCENARIO_CRASH, 5);
}

static void small_loss_partition_churn_hold(void **state)
{
	(void)state;
	check_scenario(SIM_SCENARIO_PARTITION, 11);
	check_scenario(SIM_SCENARIO_CHURN, 13);
	/* At 10% loss no node may be declared dead. */
	struct sim_params p;
	params(&p, SIM_SCENARIO_LOSS, 50, 17);
	p.loss = 0.1;
	struct sim_report r;
	run_ok(&p, &r);
	assert_true(r.m.packets_lost > 0);
	assert_true(r.m.packets_duplicated > 0);
	char why[256];
	if (!sim_scenario_check(&p, &r, why, sizeof(why)))
		fail_msg("loss 0.1 seed=17: %s", why);
	assert_int_equal(r.m.false_dead, 0);
}

static void check_fails_when_too_short(void **state)
{
	(void)state;
	/* A crash 5 s into a 20 s run cannot be judged: --check must say so
	 * rather than pass. */
	struct sim_params p;
	params(&p, SIM_SCENARIO_CRASH, 30, 1);
	p.warm = true;
	p.seconds = 20;
	struct sim_report r;
	run_ok(&p, &r);
	assert_true(r.m.crashes_pending > 0);
	char why[256];
	assert_false(sim_scenario_check(&p, &r, why, sizeof(why)));
	assert_non_null(strstr(why, "detection"));
}

static struct sim *new_sim(uint32_t n, uint64_t seed)
{
	struct sim_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nodes = n;
	cfg.seed = seed;
	member_config_default(&cfg.member);
	cfg.net.latency_base_ms = 1;
	cfg.net.latency_jitter_ms = 1;
	cfg.detect_grace_ms = sim_detect_grace_ms(&cfg.member, n);
	struct sim *s = sim_new(&cfg);
	assert_non_null(s);
	return s;
}

static void restart_has_higher_incarnation(void **state)
{
	(void)state;
	struct sim *s = new_sim(20, 7);
	assert_int_equal(sim_warm_start(s), 0);
	assert_int_equal(sim_run_until(s, 5000), 0);
	assert_int_equal(sim_node_crash(s, 3), 0);
	assert_null(sim_core(s, 3));
	assert_int_equal(sim_node_crash(s, 3), SHOAL_ESTATE);
	assert_int_equal(sim_run_until(s, 65000), 0);
	uint32_t gid3 = 0;
	for (uint32_t i = 0; i < 20; i++) {
		if (i == 3)
			continue;
		struct member_info info;
		const struct member_core *c = sim_core(s, i);
		size_t count = member_core_count(c);
		bool found = false;
		for (size_t k = 0; k < count; k++) {
			assert_int_equal(member_core_get(c, k, &info), 0);
			if (info.ident && strcmp(info.ident->name, "n3") == 0) {
				assert_int_equal(info.state, MEMBER_DEAD);
				gid3 = info.gid;
				found = true;
			}
		}
		assert_true(found);
	}
	assert_int_equal(sim_node_restart(s, 3), 0);
	assert_int_equal(member_core_incarnation(sim_core(s, 3)), 1);
	assert_int_equal(sim_run_until(s, 95000), 0);
	for (uint32_t i = 0; i < 20; i++) {
		struct member_info info;
		assert_int_equal(member_core_lookup(sim_core(s, i), gid3, &info), 0);
		assert_int_equal(info.state, MEMBER_ALIVE);
		assert_int_equal(info.incarnation, 1);
	}
	struct sim_metrics m;
	sim_metrics(s, &m);
	assert_int_equal(sim_verify_views(s), 0);
	assert_true(m.converged_now);
	assert_int_equal(m.false_dead, 0);
	assert_int_equal(m.restarts, 1);
	sim_free(s);
}

static void partition_cuts_traffic(void **state)
{
	(void)state;
	struct sim *s = new_sim(10, 3);
	assert_int_equal(sim_warm_start(s), 0);
	assert_int_equal(sim_run_until(s, 2000), 0);
	uint8_t side[10] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
	sim_partition(s, side);
	assert_int_equal(sim_run_until(s, 32000), 0);
	struct sim_metrics m;
	sim_metrics(s, &m);
	assert_true(m.packets_partitioned > 0);
	assert_true(m.partition_dead > 0);
	assert_false(m.converged_now);
	/* Each side sees only itself alive. */
	const struct member_core *c0 = sim_core(s, 0);
	assert_int_equal(member_core_live_count(c0), 5);
	/* After the heal nothing more is cut, and the halves, which each
	 * declared the other dead, merge into one view again. */
	uint64_t cut = m.packets_partitioned;
	sim_heal(s);
	sim_convergence_from_now(s);
	assert_int_equal(sim_run_until(s, 32000 + 90000), 0);
	sim_metrics(s, &m);
	assert_int_equal(m.packets_partitioned, cut);
	assert_true(m.converged);
	assert_true(m.converged_now);
	assert_int_equal(m.live_view_dead, 0);
	assert_int_equal(m.false_dead, 0);
	assert_int_equal(sim_verify_views(s), 0);
	sim_free(s);
}

static void bookkeeping_matches_cores(void **state)
{
	(void)state;
	/* Cold joins, loss, duplicates, crashes, restarts and a partition: at
	 * every step the sim's view bits and convergence counters must agree
	 * with what each core reports. */
	struct sim_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nodes = 30;
	cfg.seed = 99;
	member_config_default(&cfg.member);
	cfg.net.latency_base_ms = 1;
	cfg.net.latency_jitter_ms = 3;
	cfg.net.loss = 0.15;
	cfg.net.dup = 0.05;
	cfg.detect_grace_ms = sim_detect_grace_ms(&cfg.member, cfg.nodes);
	struct sim *s = sim_new(&cfg);
	assert_non_null(s);
	assert_int_equal(sim_node_start(s, 0, NULL, 0), 0);
	for (uint32_t i = 1; i < 30; i++) {
		uint32_t seed = i / 2;
		assert_int_equal(sim_run_until(s, 50 * i), 0);
		assert_int_equal(sim_node_start(s, i, &seed, 1), 0);
		assert_int_equal(sim_verify_views(s), 0);
	}
	uint8_t side[30];
	for (uint32_t i = 0; i < 30; i++)
		side[i] = i % 3 == 0;
	for (uint64_t t = 2000; t <= 120000; t += 2000) {
		assert_int_equal(sim_run_until(s, t), 0);
		if (t == 20000 || t == 22000)
			assert_int_equal(sim_node_crash(s, (uint32_t)(t / 2000)), 0);
		if (t == 40000)
			assert_int_equal(sim_node_restart(s, 10), 0);
		if (t == 50000)
			sim_partition(s, side);
		if (t == 70000)
			sim_heal(s);
		if (sim_verify_views(s) != 0)
			fail_msg("bookkeeping differs from the cores at t=%llu seed=99",
				 (unsigned long long)t);
	}
	assert_false(sim_node_up(s, 11));
	assert_true(sim_node_up(s, 10));
	assert_int_equal(sim_live_count(s), 29);
	sim_free(s);
}

/* Runs of one scenario each, for the tests that run each twice, with one
 * option changed, and want the same run. */
static const struct same_run {
	enum sim_scenario sc;
	bool warm;
	uint32_t seconds;
} same_runs[] = {
	{SIM_SCENARIO_JOIN, false, 40},    /* cold joins: states with members the receiver lacks */
	{SIM_SCENARIO_CRASH, true, 60},
	{SIM_SCENARIO_LOSS, true, 30},     /* loss and duplicates */
	{SIM_SCENARIO_PARTITION, false, 0},/* dead members in the states, reconnects */
	{SIM_SCENARIO_CHURN, false, 100},  /* restarts at higher incarnations */
};

/* Runs same_runs[i] as is into *a and with `change` applied into *b, and
 * checks they are the same run: every membership event (trace_hash),
 * packet, byte and push-pull alike. */
static void same_run_both_ways(size_t i, uint32_t nodes, void (*change)(struct sim_params *),
			       const char *what, struct sim_report *a, struct sim_report *b)
{
	struct sim_params p;
	params(&p, same_runs[i].sc, nodes, 31 + i);
	p.warm = same_runs[i].warm;
	p.seconds = same_runs[i].seconds;
	run_ok(&p, a);
	change(&p);
	run_ok(&p, b);
	assert_true(a->m.packets_sent > 0);
	if (a->m.trace_hash != b->m.trace_hash)
		fail_msg("%s seed=%llu: the trace differs with %s", sim_scenario_name(p.scenario),
			 (unsigned long long)p.seed, what);
	assert_int_equal(a->m.member_events, b->m.member_events);
	assert_int_equal(a->m.events, b->m.events);
	assert_int_equal(a->m.packets_sent, b->m.packets_sent);
	assert_int_equal(a->m.packet_bytes_sent, b->m.packet_bytes_sent);
	assert_int_equal(a->m.packets_delivered, b->m.packets_delivered);
	assert_int_equal(a->m.pushpulls_ok, b->m.pushpulls_ok);
	assert_int_equal(a->m.pushpull_bytes, b->m.pushpull_bytes);
}

static void encode_states(struct sim_params *p) { p->encode_states = true; }
static void wire_ids(struct sim_params *p) { p->wire_ids = true; }

/* The simulator hands push-pull states over by gid; with encode_states they
 * go through the real codec instead. Both must be the same run. */
static void pushpull_by_gid_equals_codec(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(same_runs) / sizeof(same_runs[0]); i++) {
		if (same_runs[i].sc == SIM_SCENARIO_CRASH)
			continue; /* no push-pull in 60 s of a warm crash run */
		struct sim_report a, b;
		same_run_both_ways(i, 120, encode_states, "encode_states", &a, &b);
		assert_true(a.m.pushpulls_ok > 0);
		assert_int_equal(a.m.pushpulls_rejected, 0);
	}
}

/* The cores exchange packets in the simulator's form (accusations name
 * gids); with wire_ids in the wire's (ids), through the same codec an agent
 * uses. Both must be the same run, in every scenario. */
static void sim_form_equals_wire_ids(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(same_runs) / sizeof(same_runs[0]); i++) {
		struct sim_report a, b;
		same_run_both_ways(i, 150, wire_ids, "--wire-ids", &a, &b);
	}
}

/* --- every scenario at scale (the seeds of tests/sim/sim_scenarios.sh) --- */

static void scale_run(struct sim_params *p, struct sim_report *r)
{
	run_ok(p, r);
	char why[256];
	if (!sim_scenario_check(p, r, why, sizeof(why)))
		fail_msg("%s at %u nodes, seed=%llu: %s (replay: shoal sim --scenario %s "
			 "--nodes %u --seed %llu%s --check)",
			 sim_scenario_name(p->scenario), p->nodes, (unsigned long long)p->seed, why,
			 sim_scenario_name(p->scenario), p->nodes, (unsigned long long)p->seed,
			 p->warm ? " --warm" : "");
	assert_int_equal(r->m.outbox_dropped, 0);
	assert_int_equal(r->m.broadcasts_dropped, 0);
	assert_int_equal(r->m.pushpulls_rejected, 0);
}

static void scale_join_converges(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_JOIN, SCALE_NODES, 101);
	struct sim_report r;
	scale_run(&p, &r);
	assert_true(r.m.converged);
	assert_true(r.m.converged_now);
	assert_int_equal(r.m.live_nodes, SCALE_NODES);
	assert_int_equal(r.m.live_view_dead, 0);
	assert_int_equal(r.m.false_dead, 0);
}

static void scale_crash_detected_everywhere(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_CRASH, SCALE_NODES, 202);
	p.warm = true;
	struct sim_report r;
	scale_run(&p, &r);
	uint32_t crashed = (uint32_t)lround(0.15 * SCALE_NODES);
	assert_int_equal(r.m.crashes, crashed);
	assert_int_equal(r.m.live_nodes, SCALE_NODES - crashed);
	/* every live node saw every crash dead, within the Lifeguard bound */
	assert_int_equal(r.m.judged_pairs, (uint64_t)(SCALE_NODES - crashed) * crashed);
	assert_int_equal(r.m.detected_pairs, r.m.judged_pairs);
	assert_int_equal(r.m.undetected, 0);
	assert_true(r.m.detection_max_ms <= r.detect_grace_ms);
	assert_int_equal(r.m.false_dead, 0);
}

static void scale_loss_10_declares_nobody_dead(void **state)
{
	(void)state;
	/* At 10% loss an observer now and then starts suspecting in the
	 * middle of a refutation's wave and loses every copy of it; before
	 * members answered stale accusations about others, its suspicion
	 * timed out (one isolated false death: 3 runs of seeds 1-60 at 1,000
	 * nodes x 65 s; memberlist's gossip has the same tail). Now none in
	 * 60; tests/sim/sim_scenarios.sh replays three of those seeds. See
	 * docs/simulator.md. */
	struct sim_params p;
	params(&p, SIM_SCENARIO_LOSS, SCALE_NODES, 304);
	p.loss = 0.1;
	struct sim_report r;
	scale_run(&p, &r);
	assert_true(r.m.packets_lost > 0);
	assert_true(r.m.suspects_raised > 0); /* loss did cause suspicions... */
	assert_true(r.m.refutations > 0);     /* ...which were refuted */
	assert_int_equal(r.m.false_dead, 0);
	assert_int_equal(r.m.live_view_dead, 0);
}

static void scale_partition_heals(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_PARTITION, SCALE_NODES, 404);
	p.warm = true;
	p.seconds = 110;
	struct sim_report r;
	scale_run(&p, &r);
	assert_true(r.m.packets_partitioned > 0);
	assert_true(r.m.partition_dead > 0); /* each half declared the other dead */
	assert_int_equal(r.m.false_dead, 0);
	assert_true(r.m.converged);
	assert_true(r.m.converged_now);
	assert_int_equal(r.m.live_view_dead, 0);
}

static void scale_churn_detected_no_false_death(void **state)
{
	(void)state;
	struct sim_params p;
	params(&p, SIM_SCENARIO_CHURN, SCALE_NODES, 505);
	p.warm = true;
	struct sim_report r;
	scale_run(&p, &r);
	assert_true(r.m.crashes > 0);
	assert_true(r.m.restarts > 0);
	assert_int_equal(r.m.undetected, 0);
	assert_int_equal(r.m.false_dead, 0);
	assert_true(r.m.converged_now);
}

static void scale_same_seed_same_trace(void **state)
{
	(void)state;
	/* At 20% loss every packet draws loss, jitter and duplication, and
	 * suspicions, refutations and deaths interleave across the cores. */
	struct sim_params p;
	params(&p, SIM_SCENARIO_LOSS, SCALE_NODES, 7);
	p.loss = 0.2;
	p.seconds = 20;
	struct sim_report a, b;
	run_ok(&p, &a);
	run_ok(&p, &b);
	assert_true(a.m.member_events > 0);
	assert_int_equal(a.m.trace_hash, b.m.trace_hash);
	assert_int_equal(a.m.events, b.m.events);
	assert_int_equal(a.m.packets_lost, b.m.packets_lost);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_seed_same_trace),
		cmocka_unit_test(different_seed_different_trace),
		cmocka_unit_test(small_join_converges),
		cmocka_unit_test(small_crash_detected),
		cmocka_unit_test(small_loss_partition_churn_hold),
		cmocka_unit_test(check_fails_when_too_short),
		cmocka_unit_test(restart_has_higher_incarnation),
		cmocka_unit_test(partition_cuts_traffic),
		cmocka_unit_test(bookkeeping_matches_cores),
		cmocka_unit_test(pushpull_by_gid_equals_codec),
		cmocka_unit_test(sim_form_equals_wire_ids),
		cmocka_unit_test(scale_join_converges),
		cmocka_unit_test(scale_crash_detected_everywhere),
		cmocka_unit_test(scale_loss_10_declares_nobody_dead),
		cmocka_unit_test(scale_partition_heals),
		cmocka_unit_test(scale_churn_detected_no_false_death),
		cmocka_unit_test(scale_same_seed_same_trace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
