/*
 * scenario.c — the named simulator scenarios behind `shoal sim` and the
 * tests, and the properties each must hold.
 *
 *   join       cold start: node 0 first, node i at a staggered time in the
 *              first seconds, joining through up to 3 random earlier nodes.
 *              Property: every live node sees every live node alive.
 *   crash      converge, then crash a share (15%) of the nodes at once.
 *              Property: every live node sees every crash dead.
 *   loss       everyone knows everyone (warm start), then 20% datagram loss
 *              and 1% duplication. Property, at loss <= 10% only: no false
 *              death, and at the end no live node sees another live node dead.
 *   partition  converge, split into two random halves for 30 s, heal.
 *              Property: after the heal, one view again.
 *   churn      converge, then crash nodes at a steady rate so a few % are down
 *              at a time, restarting most after 2-38 s (from their data dir:
 *              same id, higher incarnation). Property: crashes that stay down
 *              are seen dead by all; no false death; one view after churn.
 *   record     warm, 20% loss; at 5 s crash 15% at once, then a random live
 *              node publishes one signed record, spread by the replication
 *              cores (push + anti-entropy, sim/records.c) until every live
 *              node holds it. Property: every live node holds the record.
 *
 * Every scenario except loss starts cold unless warm is set. All choices come
 * from the sim's one rng, so the seed replays the run.
 */
#include "sim/sim.h"
#include "sim/records.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/error.h"
#include "shoal/limits.h"

#define JOIN_SPREAD_MS_MAX 5000u   /* cold starts spread over this */
#define JOIN_SEEDS 3u              /* seeds per cold join */
#define SETTLE_MS 15000u           /* after joining, before a disruption */
#define JOIN_SETTLE_MS 50000u      /* join: run this long after the last start */
#define WARM_SETTLE_MS 5000u
#define PARTITION_MS 30000u
#define CHURN_WINDOW_MS 60000u     /* default length of the churn phase */
#define CHURN_DOWN_MS_MIN 2000u
#define CHURN_DOWN_MS_MAX 38000u
#define CHURN_RESTARTS_MAX 4096u   /* nodes waiting to restart at once */
#define CHURN_STEP_MS 1000u

static const char *const scenario_names[] = {
	[SIM_SCENARIO_JOIN] = "join",
	[SIM_SCENARIO_CRASH] = "crash",
	[SIM_SCENARIO_LOSS] = "loss",
	[SIM_SCENARIO_PARTITION] = "partition",
	[SIM_SCENARIO_CHURN] = "churn",
	[SIM_SCENARIO_RECORD] = "record",
};

int sim_scenario_parse(const char *name, enum sim_scenario *out)
{
	for (size_t i = 0; i < sizeof(scenario_names) / sizeof(scenario_names[0]); i++) {
		if (strcmp(name, scenario_names[i]) == 0) {
			*out = (enum sim_scenario)i;
			return 0;
		}
	}
	return SHOAL_EINVAL;
}

const char *sim_scenario_name(enum sim_scenario sc)
{
	assert((size_t)sc < sizeof(scenario_names) / sizeof(scenario_names[0]));
	return scenario_names[sc];
}

void sim_params_default(struct sim_params *p, enum sim_scenario sc)
{
	memset(p, 0, sizeof(*p));
	p->scenario = sc;
	p->nodes = 100;
	p->seconds = 0; /* 0: long enough for the scenario's properties */
	p->seed = 1;
	p->loss = -1;
	p->latency_ms = 2.0;
	p->dup = -1;
	p->crash_fraction = 0.15;
	p->churn_fraction = 0.03;
	p->warm = sc == SIM_SCENARIO_LOSS || sc == SIM_SCENARIO_RECORD;
}

static uint32_t join_spread_ms(uint32_t n)
{
	uint64_t ms = (uint64_t)n * 20;
	return ms > JOIN_SPREAD_MS_MAX ? JOIN_SPREAD_MS_MAX : (uint32_t)ms;
}

/* Starts every node: warm, or cold with staggered joins. Returns when all
 * are up; the clock is then at the last start. */
static int start_all(struct sim *s, bool warm)
{
	if (warm)
		return sim_warm_start(s);
	uint32_t n = sim_nodes(s);
	uint32_t spread = join_spread_ms(n);
	struct rng *r = sim_rng(s);
	int rc = sim_node_start(s, 0, NULL, 0);
	for (uint32_t i = 1; i < n && rc == 0; i++) {
		uint64_t at = 1 + (uint64_t)i * spread / n;
		rc = sim_run_until(s, at);
		if (rc != 0)
			break;
		uint32_t seeds[JOIN_SEEDS];
		size_t k = 0;
		for (uint32_t tries = 0; tries < 2 * JOIN_SEEDS && k < JOIN_SEEDS && k < i; tries++) {
			uint32_t c = (uint32_t)rng_below(r, i);
			bool dup = false;
			for (size_t j = 0; j < k; j++)
				dup |= seeds[j] == c;
			if (!dup)
				seeds[k++] = c;
		}
		assert(k > 0);
		rc = sim_node_start(s, i, seeds, k);
	}
	return rc;
}

/* Picks `want` distinct live nodes at random (partial Fisher-Yates). */
static uint32_t pick_live(struct sim *s, uint32_t want, uint32_t *out)
{
	uint32_t n = sim_nodes(s), k = 0;
	uint32_t *idx = malloc((size_t)n * sizeof(*idx));
	if (!idx)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (sim_node_up(s, i))
			idx[k++] = i;
	if (want > k)
		want = k;
	for (uint32_t i = 0; i < want; i++) {
		uint32_t j = i + (uint32_t)rng_below(sim_rng(s), k - i);
		uint32_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
		out[i] = idx[i];
	}
	free(idx);
	return want;
}

struct pending_restart {
	uint64_t at_ms;
	uint32_t node;
};

/* The churn phase from now to end_ms: crashes at a rate that keeps about
 * `fraction` of the nodes down, each restarting 2-38 s later unless that
 * falls after end_ms (then it stays down and is judged at the end). */
static int churn(struct sim *s, double fraction, uint64_t end_ms)
{
	struct pending_restart *wait = calloc(CHURN_RESTARTS_MAX, sizeof(*wait));
	if (!wait)
		return SHOAL_ENOMEM;
	size_t waiting = 0;
	double mean_down_s = (CHURN_DOWN_MS_MIN + CHURN_DOWN_MS_MAX) / 2000.0;
	double per_step = fraction * sim_nodes(s) / mean_down_s * (CHURN_STEP_MS / 1000.0);
	uint64_t next_step = sim_now(s);
	int rc = 0;
	for (;;) {
		/* The next action: a churn step or the earliest restart. */
		uint64_t next = next_step;
		size_t who = SIZE_MAX;
		for (size_t i = 0; i < waiting; i++) {
			if (wait[i].at_ms < next) {
				next = wait[i].at_ms;
				who = i;
			}
		}
		if (next >= end_ms)
			break;
		rc = sim_run_until(s, next);
		if (rc != 0)
			break;
		if (who != SIZE_MAX) {
			rc = sim_node_restart(s, wait[who].node);
			wait[who] = wait[--waiting];
			if (rc != 0)
				break;
			continue;
		}
		next_step += CHURN_STEP_MS;
		struct rng *r = sim_rng(s);
		uint32_t count = (uint32_t)per_step;
		if (rng_unit(r) < per_step - count)
			count++;
		if (count == 0)
			continue;
		uint32_t victims[64];
		if (count > 64)
			count = 64;
		uint32_t got = pick_live(s, count, victims);
		/* Keep at least half the nodes up whatever the rate. */
		for (uint32_t i = 0; i < got && sim_live_count(s) > sim_nodes(s) / 2; i++) {
			if (waiting == CHURN_RESTARTS_MAX)
				break;
			rc = sim_node_crash(s, victims[i]);
			if (rc != 0)
				break;
			uint64_t down = CHURN_DOWN_MS_MIN +
					rng_below(r, CHURN_DOWN_MS_MAX - CHURN_DOWN_MS_MIN + 1);
			if (sim_now(s) + down < end_ms)
				wait[waiting++] = (struct pending_restart){sim_now(s) + down, victims[i]};
		}
		if (rc != 0)
			break;
	}
	free(wait);
	if (rc == 0)
		rc = sim_run_until(s, end_ms);
	return rc;
}

static int run_body(struct sim *s, const struct sim_params *p, struct sim_report *r,
		    uint64_t *end_ms)
{
	int rc = start_all(s, p->warm);
	if (rc != 0)
		return rc;
	uint64_t started = sim_now(s);
	sim_convergence_from_now(s);
	r->convergence_base_ms = 0;
	uint64_t settle = p->warm ? WARM_SETTLE_MS : started + SETTLE_MS;
	uint64_t grace = r->detect_grace_ms;
	uint32_t n = sim_nodes(s);

	switch (p->scenario) {
	case SIM_SCENARIO_JOIN:
	case SIM_SCENARIO_LOSS:
		/* Gossip leaves a few pairs unknown in a large cold join; the first
		 * push-pulls (15-45 s after start) close them. */
		if (!*end_ms)
			*end_ms = p->scenario == SIM_SCENARIO_LOSS ? settle + 60000u
								  : started + JOIN_SETTLE_MS;
		break;
	case SIM_SCENARIO_CRASH: {
		r->disrupt_ms = settle;
		if (!*end_ms)
			*end_ms = settle + grace;
		if (settle >= *end_ms)
			break;
		rc = sim_run_until(s, settle);
		if (rc != 0)
			return rc;
		uint32_t want = (uint32_t)(p->crash_fraction * n + 0.5);
		uint32_t *victims = malloc(((size_t)want + 1) * sizeof(*victims));
		if (!victims)
			return SHOAL_ENOMEM;
		uint32_t got = pick_live(s, want, victims);
		for (uint32_t i = 0; i < got && rc == 0; i++)
			rc = sim_node_crash(s, victims[i]);
		free(victims);
		break;
	}
	case SIM_SCENARIO_PARTITION: {
		r->disrupt_ms = settle;
		r->heal_ms = settle + PARTITION_MS;
		if (!*end_ms)
			*end_ms = r->heal_ms + grace;
		if (r->heal_ms >= *end_ms)
			return SHOAL_EINVAL;
		rc = sim_run_until(s, settle);
		if (rc != 0)
			return rc;
		uint8_t *side = calloc(n, 1);
		uint32_t *order = malloc((size_t)n * sizeof(*order));
		if (!side || !order) {
			free(side);
			free(order);
			return SHOAL_ENOMEM;
		}
		uint32_t got = pick_live(s, n, order); /* a random permutation */
		for (uint32_t i = 0; i < got / 2; i++)
			side[order[i]] = 1;
		sim_partition(s, side);
		free(side);
		free(order);
		rc = sim_run_until(s, r->heal_ms);
		if (rc != 0)
			return rc;
		sim_heal(s);
		sim_convergence_from_now(s);
		r->convergence_base_ms = r->heal_ms;
		break;
	}
	case SIM_SCENARIO_CHURN: {
		r->disrupt_ms = settle;
		uint64_t settle_after = grace + 10000u;
		if (!*end_ms)
			*end_ms = settle + CHURN_WINDOW_MS + settle_after;
		if (*end_ms <= settle + settle_after)
			return SHOAL_EINVAL;
		r->churn_end_ms = *end_ms - settle_after;
		rc = sim_run_until(s, settle);
		if (rc != 0)
			return rc;
		rc = churn(s, p->churn_fraction, r->churn_end_ms);
		if (rc != 0)
			return rc;
		sim_convergence_from_now(s);
		r->convergence_base_ms = r->churn_end_ms;
		break;
	}
	case SIM_SCENARIO_RECORD:
		/* Crash and publication at the settle time; by default the run
		 * ends when every live node holds the record. */
		r->disrupt_ms = settle;
		return sim_records_scenario(s, p, settle, end_ms, &r->rec);
	}
	if (rc != 0)
		return rc;
	if (*end_ms < sim_now(s))
		*end_ms = sim_now(s);
	return sim_run_until(s, *end_ms);
}

int sim_scenario_run(const struct sim_params *p, struct sim_report *r)
{
	memset(r, 0, sizeof(*r));
	if (p->nodes < 2 || p->nodes > SHOAL_SIM_NODES_MAX || p->nodes > SHOAL_MEMBERS_MAX ||
	    p->seconds > SHOAL_SIM_SECONDS_MAX || p->latency_ms < 0 || p->loss > 1 ||
	    p->dup > 1 || p->crash_fraction < 0 || p->crash_fraction > 0.5 ||
	    p->churn_fraction < 0 || p->churn_fraction > 0.5)
		return SHOAL_EINVAL;

	struct sim_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.nodes = p->nodes;
	cfg.seed = p->seed;
	member_config_default(&cfg.member);
	cfg.member.payload_bytes_max = sim_payload_bytes(p->nodes);
	bool lossy = p->scenario == SIM_SCENARIO_LOSS || p->scenario == SIM_SCENARIO_RECORD;
	double loss = p->loss >= 0 ? p->loss : (lossy ? 0.2 : 0.0);
	double dup = p->dup >= 0 ? p->dup : (p->scenario == SIM_SCENARIO_LOSS ? 0.01 : 0.0);
	/* Mean one-way latency = base + jitter mean; base at most 1 ms. */
	cfg.net.latency_base_ms = p->latency_ms >= 1.0 ? 1u : 0u;
	cfg.net.latency_jitter_ms = p->latency_ms - cfg.net.latency_base_ms;
	cfg.net.loss = loss;
	cfg.net.dup = dup;
	cfg.detect_grace_ms = sim_detect_grace_ms(&cfg.member, p->nodes);
	cfg.trace = p->trace;
	cfg.encode_states = p->encode_states;
	cfg.wire_ids = p->wire_ids;
	r->detect_grace_ms = cfg.detect_grace_ms;
	r->payload_bytes_max = cfg.member.payload_bytes_max;
	r->effective_loss = loss;
	r->effective_dup = dup;

	struct sim *s = sim_new(&cfg);
	if (!s)
		return SHOAL_ENOMEM;
	uint64_t end_ms = (uint64_t)p->seconds * 1000;
	int rc = run_body(s, p, r, &end_ms);
	sim_metrics(s, &r->m);
	sim_free(s);
	return rc;
}

bool sim_scenario_check(const struct sim_params *p, const struct sim_report *r,
			char *why, size_t why_size)
{
	const struct sim_metrics *m = &r->m;
	assert(why_size > 0);
	why[0] = 0;
	bool strict_loss = r->effective_loss <= 0.10;
	bool want_converged = p->scenario != SIM_SCENARIO_LOSS;
	bool want_detect = p->scenario == SIM_SCENARIO_CRASH || p->scenario == SIM_SCENARIO_CHURN;

	if (p->scenario == SIM_SCENARIO_RECORD) {
		/* The property: the record reaches every live node. The
		 * membership properties are another scenario's business (at 20%
		 * loss some false deaths are expected; see docs/simulator.md). */
		const struct sim_record_report *x = &r->rec;
		if (!x->published) {
			snprintf(why, why_size, "record: never published (run too short?)");
			return false;
		}
		if (!x->reached_100 || x->holders != x->live_nodes) {
			snprintf(why, why_size,
				 "record: %u of %u live nodes hold the record %llu ms after its publication (%u via push, %u via sync)",
				 x->holders, x->live_nodes, (unsigned long long)x->window_ms,
				 x->via_push, x->via_sync);
			return false;
		}
		if (x->syncs_error > 0 || x->bad_sig > 0 || x->equivocations > 0) {
			snprintf(why, why_size,
				 "record: %llu sync sessions failed on a protocol error, %llu bad signatures, %llu equivocations",
				 (unsigned long long)x->syncs_error, (unsigned long long)x->bad_sig,
				 (unsigned long long)x->equivocations);
			return false;
		}
		return true;
	}

	if (want_converged && !m->converged) {
		snprintf(why, why_size,
			 "convergence: live nodes never all saw each other alive after t=%llu ms",
			 (unsigned long long)r->convergence_base_ms);
		return false;
	}
	if (p->scenario == SIM_SCENARIO_CRASH && m->crashes_pending > 0) {
		snprintf(why, why_size,
			 "detection: run too short to judge %llu crashes (needs %llu ms after the crash)",
			 (unsigned long long)m->crashes_pending,
			 (unsigned long long)r->detect_grace_ms);
		return false;
	}
	if (want_detect && m->undetected > 0) {
		snprintf(why, why_size,
			 "detection: %llu of %llu (observer, crashed) pairs still see the crashed node alive or suspect",
			 (unsigned long long)m->undetected, (unsigned long long)m->judged_pairs);
		return false;
	}
	if (strict_loss && m->false_dead > 0) {
		snprintf(why, why_size, "false dead: %llu nodes declared dead while up (loss %.2f)",
			 (unsigned long long)m->false_dead, r->effective_loss);
		return false;
	}
	/* Above 10% loss suspicions are always in flight and some may end in a
	 * death before the refutation spreads: reported, not required. */
	if (strict_loss && m->live_view_dead > 0) {
		snprintf(why, why_size,
			 "one view: at the end %llu (observer, live node) pairs see a live node dead",
			 (unsigned long long)m->live_view_dead);
		return false;
	}
	return true;
}
