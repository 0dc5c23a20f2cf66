/* test_sim_records.c — the simulator's record scenario (sim/records.c): at
 * 1,000 nodes with 15% crashed and 20% datagram loss a signed record reaches
 * every live node, within a bound; a seed replays the run; a record
 * published inside a partition crosses it after the heal by anti-entropy
 * alone; the layer's bookkeeping agrees with the stores and the cores.
 *
 * `make test` runs the unit tests on the optimised build, then again on the
 * Debug+ASan build (~30x slower), where the 1,000-node test runs the same
 * seed at SCALE_NODES, as tests/unit/test_sim.c does. */
#include "testutil.h"

#include <sodium.h>
#include <string.h>

#include "core/replication.h"
#include "shoal/error.h"
#include "sim/records.h"
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

static void run_record(uint32_t nodes, uint64_t seed, struct sim_report *r)
{
	struct sim_params p;
	sim_params_default(&p, SIM_SCENARIO_RECORD);
	p.nodes = nodes;
	p.seed = seed;
	int rc = sim_scenario_run(&p, r);
	if (rc != 0)
		fail_msg("record seed=%llu nodes=%u: %s\nreplay: shoal sim --scenario record "
			 "--nodes %u --seed %llu --check",
			 (unsigned long long)seed, nodes, shoal_strerror(rc), nodes,
			 (unsigned long long)seed);
	char why[256];
	if (!sim_scenario_check(&p, r, why, sizeof(why)))
		fail_msg("record seed=%llu nodes=%u: %s\nreplay: shoal sim --scenario record "
			 "--nodes %u --seed %llu --check",
			 (unsigned long long)seed, nodes, why, nodes, (unsigned long long)seed);
}

/* The property. Bounds, for 20% loss and 15% of the view crashed
 * (still listed as peers: membership has not noticed yet):
 *  - 99% within 10 gossip rounds (2 s). The first push round is eager, so
 *    the first wave moves at network speed; every holder then sends the
 *    record to 3 random peers a round, 4 x ceil(log10(N+1)) = 16 times at
 *    1,000 nodes. A send reaches a live node with probability
 *    0.8 x 0.85 = 0.68, so a node misses all ~16 x 0.68 copies meant for it
 *    with probability ~e^-10.9 = 2e-5: push alone covers 99% in a few
 *    rounds (3-4 measured over seeds 1-12).
 *  - 100% within 60 s. A node push missed syncs every 5-15 s (uniform) with
 *    a random peer of its view, which is crashed with probability ~0.15
 *    and lacks the record with probability < 0.01: 60 s holds at least 4
 *    attempts, all failing with probability < 0.16^4 = 7e-4 (measured:
 *    0.4-8.2 s over seeds 1-12). */
static void scale_record_reaches_every_live_node(void **state)
{
	(void)state;
	struct sim_report r;
	run_record(SCALE_NODES, 3, &r);
	const struct sim_record_report *x = &r.rec;
	uint32_t crashed = (uint32_t)(0.15 * SCALE_NODES + 0.5);
	assert_true(x->published);
	assert_int_equal(r.m.crashes, crashed);
	assert_int_equal(x->live_nodes, SCALE_NODES - crashed);
	assert_int_equal(x->holders, x->live_nodes);
	assert_true(x->reached_50 && x->reached_99 && x->reached_100);
	assert_true(x->t50_ms <= x->t99_ms && x->t99_ms <= x->t100_ms);
	assert_true(x->rounds_99 <= 10);
	assert_true(x->t100_ms <= 60000);
	assert_int_equal(x->rounds_100, (x->t100_ms + 199) / 200);
	/* Everyone but the publisher got it by push or by sync; push did
	 * nearly all of it. */
	assert_int_equal(x->via_push + x->via_sync + 1, x->holders);
	assert_true((uint64_t)x->via_push * 100 >= (uint64_t)x->holders * 95);
	/* The losses were real: datagrams dropped, pushes and syncs aimed at
	 * crashed nodes. */
	assert_true(x->push_lost > 0);
	assert_true(x->push_to_down > 0);
	assert_true(x->syncs_failed > 0);
	assert_true(x->syncs_ok > 0);
	/* One Ed25519 verification per node: copies of a held record are
	 * recognised before the signature is checked. */
	assert_int_equal(x->sig_verifies, x->live_nodes);
	assert_true(x->push_dups > 0);
	assert_int_equal(x->bad_sig, 0);
	assert_int_equal(x->equivocations, 0);
	assert_int_equal(x->syncs_error, 0);
	assert_int_equal(x->queue_dropped, 0);
	/* The run stops once every live node holds it (in 200 ms steps). */
	assert_true(x->window_ms >= x->t100_ms && x->window_ms < x->t100_ms + 200);
}

static void record_same_seed_same_trace(void **state)
{
	(void)state;
	struct sim_report a, b, c;
	run_record(200, 8, &a);
	run_record(200, 8, &b);
	assert_int_equal(a.m.trace_hash, b.m.trace_hash);
	assert_int_equal(a.m.events, b.m.events);
	assert_int_equal(a.rec.publisher, b.rec.publisher);
	assert_int_equal(a.rec.t100_ms, b.rec.t100_ms);
	assert_int_equal(a.rec.via_sync, b.rec.via_sync);
	assert_int_equal(a.rec.push_packets, b.rec.push_packets);
	assert_int_equal(a.rec.sync_bytes, b.rec.sync_bytes);
	run_record(200, 9, &c);
	assert_int_not_equal(a.m.trace_hash, c.m.trace_hash);
}

static struct sim *new_sim(uint32_t nodes, uint64_t seed, double loss)
{
	struct sim_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nodes = nodes;
	cfg.seed = seed;
	member_config_default(&cfg.member);
	cfg.net.latency_base_ms = 1;
	cfg.net.latency_jitter_ms = 1;
	cfg.net.loss = loss;
	cfg.detect_grace_ms = sim_detect_grace_ms(&cfg.member, nodes);
	struct sim *s = sim_new(&cfg);
	assert_non_null(s);
	assert_int_equal(sim_warm_start(s), 0);
	return s;
}

static void keypair(uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32];
	memset(seed, 7, sizeof(seed));
	assert_true(sodium_init() >= 0);
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* A record published on one side of a partition fills that side by push;
 * the pushes across are cut and run out (a record is sent a bounded number
 * of times), so after the heal only anti-entropy can carry it over — and
 * it does, to every node of the other side. */
static void record_crosses_healed_partition_by_sync(void **state)
{
	(void)state;
	enum { N = 100 };
	struct sim *s = new_sim(N, 21, 0.0);
	struct repl_config rc;
	repl_config_default(&rc);
	struct sim_records *r = sim_records_new(s, &rc, NULL);
	assert_non_null(r);
	assert_int_equal(sim_run_until(s, 2000), 0);
	uint8_t side[N];
	for (int i = 0; i < N; i++)
		side[i] = i >= N / 2;
	sim_partition(s, side);
	uint8_t pk[32], sk[64];
	keypair(pk, sk);
	assert_int_equal(sim_records_publish(r, 3, sk, RECORD_ALERT, "x", 1), 0);
	assert_int_equal(sim_records_publish(r, 4, sk, RECORD_ALERT, "y", 1), SHOAL_ESTATE);
	/* 4 s cut: shorter than the suspicion timeout, so nobody is declared
	 * dead and the other side stays in every view (as suspects). */
	assert_int_equal(sim_run_until(s, 6000), 0);
	struct sim_record_report x;
	sim_records_report(r, &x);
	assert_int_equal(x.holders, N / 2);
	assert_int_equal(x.via_sync + x.via_push + 1, N / 2);
	assert_false(x.reached_99);
	sim_heal(s);
	while (!sim_records_complete(r) && sim_now(s) < 6000 + 60000)
		assert_int_equal(sim_run_until(s, sim_now(s) + 200), 0);
	sim_records_report(r, &x);
	assert_true(x.reached_100);
	assert_int_equal(x.holders, N);
	assert_true(x.via_sync >= N / 2);
	assert_true(x.sync_records >= N / 2);
	assert_int_equal(x.syncs_error, 0);
	assert_int_equal(sim_records_verify(r), 0);
	struct sim_metrics m;
	sim_metrics(s, &m);
	assert_int_equal(m.false_dead + m.partition_dead, 0);
	sim_records_free(r);
	sim_free(s);
}

/* Crashes, loss and false suspicions: the layer's view rows follow the
 * membership cores (alive or suspect) and its holders follow the stores. */
static void record_bookkeeping_matches_stores_and_cores(void **state)
{
	(void)state;
	struct sim *s = new_sim(60, 5, 0.2);
	struct repl_config rc;
	repl_config_default(&rc);
	struct sim_records *r = sim_records_new(s, &rc, NULL);
	assert_non_null(r);
	assert_int_equal(sim_records_verify(r), 0);
	assert_int_equal(sim_run_until(s, 3000), 0);
	for (uint32_t i = 50; i < 60; i++)
		assert_int_equal(sim_records_crash(r, i), 0);
	assert_int_equal(sim_records_crash(r, 55), SHOAL_ESTATE);
	uint8_t pk[32], sk[64];
	keypair(pk, sk);
	assert_int_equal(sim_records_publish(r, 50, sk, RECORD_ALERT, "x", 1), SHOAL_ESTATE);
	assert_int_equal(sim_records_publish(r, 0, sk, RECORD_ALERT, "x", 1), 0);
	for (uint64_t t = 3010; t <= 43000; t += 4000) {
		assert_int_equal(sim_run_until(s, t), 0);
		assert_int_equal(sim_records_verify(r), 0);
	}
	assert_true(sim_records_complete(r));
	/* A holder crashing leaves the spread complete among the rest. */
	assert_int_equal(sim_records_crash(r, 1), 0);
	assert_true(sim_records_complete(r));
	struct sim_record_report x;
	sim_records_report(r, &x);
	assert_int_equal(x.live_nodes, 49);
	assert_int_equal(x.holders, 49);
	sim_records_free(r);
	sim_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_same_seed_same_trace),
		cmocka_unit_test(record_crosses_healed_partition_by_sync),
		cmocka_unit_test(record_bookkeeping_matches_stores_and_cores),
		cmocka_unit_test(scale_record_reaches_every_live_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
