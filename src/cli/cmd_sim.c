/*
 * cmd_sim.c — `shoal sim`: run a seeded membership scenario in one process
 * and print what it measured (a table, or one JSON object), optionally
 * checking the scenario's properties. Every failure prints the seed and the
 * command that replays it.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "shoal/error.h"
#include "shoal/limits.h"
#include "sim/sim.h"

extern const struct cli_command cmd_sim;

static double wall_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s || *s == '-')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
	if (!s || !*s)
		return false;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

struct sim_opts {
	struct sim_params p;
	bool json, check;
	bool loss_set, dup_set;
	const char *trace_path;
};

/* Prints the command that replays this run exactly. */
static void print_replay(FILE *f, const struct sim_opts *o)
{
	const struct sim_params *p = &o->p;
	fprintf(f, "replay: shoal sim --scenario %s --nodes %" PRIu32 " --seed %" PRIu64,
		sim_scenario_name(p->scenario), p->nodes, p->seed);
	if (p->seconds)
		fprintf(f, " --seconds %" PRIu32, p->seconds);
	if (o->loss_set)
		fprintf(f, " --loss %g", p->loss);
	if (o->dup_set)
		fprintf(f, " --dup %g", p->dup);
	fprintf(f, " --latency-ms %g", p->latency_ms);
	if (p->scenario == SIM_SCENARIO_CRASH || p->scenario == SIM_SCENARIO_RECORD)
		fprintf(f, " --crash-fraction %g", p->crash_fraction);
	if (p->scenario == SIM_SCENARIO_CHURN)
		fprintf(f, " --churn-fraction %g", p->churn_fraction);
	if (p->warm)
		fprintf(f, " --warm");
	if (p->wire_ids)
		fprintf(f, " --wire-ids");
	fprintf(f, " --check\n");
}

static json_t *opt_ms(bool have, uint64_t v)
{
	return have ? json_integer((json_int_t)v) : json_null();
}

/* The record scenario's figures: one JSON object. Rates are per live node
 * per second of the window from the publication to the end. */
static json_t *record_json(const struct sim_record_report *x)
{
	double node_s = (double)x->live_nodes * ((double)x->window_ms / 1000.0);
	json_t *j = json_pack(
		"{s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
		"published", x->published,
		"publisher", (json_int_t)x->publisher,
		"publish_ms", (json_int_t)x->publish_ms,
		"window_ms", (json_int_t)x->window_ms,
		"live_nodes", (json_int_t)x->live_nodes,
		"holders", (json_int_t)x->holders,
		"via_push", (json_int_t)x->via_push,
		"via_sync", (json_int_t)x->via_sync,
		"t50_ms", opt_ms(x->reached_50, x->t50_ms),
		"t99_ms", opt_ms(x->reached_99, x->t99_ms),
		"t100_ms", opt_ms(x->reached_100, x->t100_ms),
		"rounds_50", opt_ms(x->reached_50, x->rounds_50),
		"rounds_99", opt_ms(x->reached_99, x->rounds_99),
		"rounds_100", opt_ms(x->reached_100, x->rounds_100));
	if (!j)
		return NULL;
	struct {
		const char *k;
		uint64_t v;
	} ints[] = {
		{"gossip_interval_ms", x->gossip_interval_ms},
		{"push_packets", x->push_packets},
		{"push_bytes", x->push_bytes},
		{"push_records_sent", x->push_records_sent},
		{"push_lost", x->push_lost},
		{"push_to_down", x->push_to_down},
		{"push_dups", x->push_dups},
		{"queue_dropped", x->queue_dropped},
		{"syncs_started", x->syncs_started},
		{"syncs_ok", x->syncs_ok},
		{"syncs_failed", x->syncs_failed},
		{"syncs_error", x->syncs_error},
		{"sync_msgs", x->sync_msgs},
		{"sync_bytes", x->sync_bytes},
		{"sync_records", x->sync_records},
		{"sig_verifies", x->sig_verifies},
		{"bad_sig", x->bad_sig},
		{"equivocations", x->equivocations},
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		json_object_set_new(j, ints[i].k, json_integer((json_int_t)ints[i].v));
	double rates[4] = {0, 0, 0, 0};
	if (node_s > 0) {
		rates[0] = (double)x->push_packets / node_s;
		rates[1] = (double)x->push_bytes / node_s;
		rates[2] = (double)x->sync_msgs / node_s;
		rates[3] = (double)x->sync_bytes / node_s;
	}
	json_object_set_new(j, "push_msgs_per_node_s", json_real(rates[0]));
	json_object_set_new(j, "push_bytes_per_node_s", json_real(rates[1]));
	json_object_set_new(j, "sync_msgs_per_node_s", json_real(rates[2]));
	json_object_set_new(j, "sync_bytes_per_node_s", json_real(rates[3]));
	return j;
}

static int print_json(const struct sim_opts *o, const struct sim_report *r, double wall_s,
		      double rss_mb, bool checked, bool ok, const char *why)
{
	const struct sim_metrics *m = &r->m;
	const struct sim_params *p = &o->p;
	char hash[17];
	snprintf(hash, sizeof(hash), "%016" PRIx64, m->trace_hash);
	double node_s = (double)p->nodes * ((double)m->now_ms / 1000.0);
	bool have_det = m->detected_pairs > 0;
	json_t *det = json_pack("{s:o,s:o,s:o}",
				"p50", opt_ms(have_det, m->detection_p50_ms),
				"p99", opt_ms(have_det, m->detection_p99_ms),
				"max", opt_ms(have_det, m->detection_max_ms));
	json_t *j = json_pack(
		"{s:s,s:I,s:s,s:I,s:I,s:b,s:f,s:f,s:f,s:b,s:o,s:b}",
		"scenario", sim_scenario_name(p->scenario),
		"seed", (json_int_t)p->seed,
		"trace_hash", hash,
		"nodes", (json_int_t)p->nodes,
		"sim_ms", (json_int_t)m->now_ms,
		"warm", p->warm,
		"loss", r->effective_loss,
		"latency_ms", p->latency_ms,
		"dup", r->effective_dup,
		"converged", m->converged,
		"convergence_ms", opt_ms(m->converged, m->converged_at_ms - r->convergence_base_ms),
		"converged_at_end", m->converged_now);
	if (!j || !det) {
		json_decref(j);
		json_decref(det);
		return cli_fail("sim", "out of memory");
	}
	json_object_set_new(j, "detection_ms", det);
	struct {
		const char *k;
		uint64_t v;
	} ints[] = {
		{"live_nodes", m->live_nodes},
		{"crashes", m->crashes},
		{"restarts", m->restarts},
		{"detected_pairs", m->detected_pairs},
		{"judged_pairs", m->judged_pairs},
		{"undetected", m->undetected},
		{"crashes_pending", m->crashes_pending},
		{"detect_grace_ms", r->detect_grace_ms},
		{"payload_bytes_max", r->payload_bytes_max},
		{"false_dead", m->false_dead},
		{"partition_dead", m->partition_dead},
		{"live_view_dead", m->live_view_dead},
		{"events", m->events},
		{"member_events", m->member_events},
		{"packets_sent", m->packets_sent},
		{"packet_bytes_sent", m->packet_bytes_sent},
		{"packets_lost", m->packets_lost},
		{"packets_duplicated", m->packets_duplicated},
		{"packets_to_down", m->packets_to_down},
		{"packets_partitioned", m->packets_partitioned},
		{"pushpulls_ok", m->pushpulls_ok},
		{"pushpulls_failed", m->pushpulls_failed},
		{"pushpull_bytes", m->pushpull_bytes},
		{"pushpulls_rejected", m->pushpulls_rejected},
		{"suspects_raised", m->suspects_raised},
		{"refutations", m->refutations},
		{"refutations_direct", m->refutations_direct},
		{"suspects_told", m->suspects_told},
		{"stale_answers", m->stale_answers},
		{"suspicions_rechecked", m->suspicions_rechecked},
		{"stream_pings_sent", m->stream_pings_sent},
		{"probes_stream_only", m->probes_stream_only},
		{"deaths_declared", m->deaths_declared},
		{"outbox_dropped", m->outbox_dropped},
		{"broadcasts_dropped", m->broadcasts_dropped},
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		json_object_set_new(j, ints[i].k, json_integer((json_int_t)ints[i].v));
	json_object_set_new(j, "msgs_per_node_s",
			    json_real(node_s > 0 ? (double)m->packets_sent / node_s : 0));
	json_object_set_new(j, "bytes_per_node_s",
			    json_real(node_s > 0 ? (double)m->packet_bytes_sent / node_s : 0));
	if (p->scenario == SIM_SCENARIO_RECORD) {
		json_t *rec = record_json(&r->rec);
		if (!rec) {
			json_decref(j);
			return cli_fail("sim", "out of memory");
		}
		json_object_set_new(j, "record", rec);
	}
	json_object_set_new(j, "peak_rss_mb", json_real(rss_mb));
	json_object_set_new(j, "wall_s", json_real(wall_s));
	if (checked) {
		json_object_set_new(j, "check", json_boolean(ok));
		if (!ok)
			json_object_set_new(j, "failed", json_string(why));
	}
	char *txt = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(j);
	if (!txt)
		return cli_fail("sim", "out of memory");
	puts(txt);
	free(txt);
	return 0;
}

static void print_reach(const char *label, bool reached, uint64_t ms, uint64_t rounds)
{
	if (reached)
		printf("%-14s%.3f s, %" PRIu64 " gossip rounds after the publication\n", label,
		       (double)ms / 1000.0, rounds);
	else
		printf("%-14snot reached\n", label);
}

static void print_record(const struct sim_record_report *x)
{
	if (!x->published) {
		printf("record        not published\n");
		return;
	}
	double node_s = (double)x->live_nodes * ((double)x->window_ms / 1000.0);
	printf("record        published by n%" PRIu32 " at %.3f s; %" PRIu32 " of %" PRIu32
	       " live nodes hold it (%" PRIu32 " via push, %" PRIu32 " via sync)\n",
	       x->publisher, (double)x->publish_ms / 1000.0, x->holders, x->live_nodes,
	       x->via_push, x->via_sync);
	print_reach("  50% hold", x->reached_50, x->t50_ms, x->rounds_50);
	print_reach("  99% hold", x->reached_99, x->t99_ms, x->rounds_99);
	print_reach("  100% hold", x->reached_100, x->t100_ms, x->rounds_100);
	printf("  push        %" PRIu64 " payloads (%.2f/live node/s, %.0f bytes/live node/s), %" PRIu64
	       " lost, %" PRIu64 " to crashed nodes, %" PRIu64 " duplicate copies\n",
	       x->push_packets, node_s > 0 ? (double)x->push_packets / node_s : 0,
	       node_s > 0 ? (double)x->push_bytes / node_s : 0, x->push_lost, x->push_to_down,
	       x->push_dups);
	printf("  sync        %" PRIu64 " sessions (%" PRIu64 " ok, %" PRIu64 " lost to a crashed end, %" PRIu64
	       " errors), %" PRIu64 " messages (%.0f bytes/live node/s), %" PRIu64 " records moved\n",
	       x->syncs_started, x->syncs_ok, x->syncs_failed, x->syncs_error, x->sync_msgs,
	       node_s > 0 ? (double)x->sync_bytes / node_s : 0, x->sync_records);
	printf("  signatures  %" PRIu64 " Ed25519 verifications, %" PRIu64 " bad, %" PRIu64
	       " equivocations (window %.3f s)\n",
	       x->sig_verifies, x->bad_sig, x->equivocations, (double)x->window_ms / 1000.0);
}

static void print_table(const struct sim_opts *o, const struct sim_report *r, double wall_s,
			double rss_mb)
{
	const struct sim_metrics *m = &r->m;
	const struct sim_params *p = &o->p;
	double node_s = (double)p->nodes * ((double)m->now_ms / 1000.0);
	printf("scenario      %s (seed %" PRIu64 ", %" PRIu32 " nodes, %.1f s simulated%s)\n",
	       sim_scenario_name(p->scenario), p->seed, p->nodes, (double)m->now_ms / 1000.0,
	       p->warm ? ", warm start" : "");
	printf("network       loss %.3f, duplicates %.3f, mean latency %.1f ms\n",
	       r->effective_loss, r->effective_dup, p->latency_ms);
	if (m->converged)
		printf("convergence   %" PRIu64 " ms%s\n", m->converged_at_ms - r->convergence_base_ms,
		       m->converged_now ? "" : " (not converged at the end)");
	else
		printf("convergence   never\n");
	printf("live nodes    %" PRIu32 " (crashes %" PRIu64 ", restarts %" PRIu64 ")\n",
	       m->live_nodes, m->crashes, m->restarts);
	if (m->detected_pairs)
		printf("detection     p50 %" PRIu64 " ms, p99 %" PRIu64 " ms, max %" PRIu64
		       " ms over %" PRIu64 " pairs\n",
		       m->detection_p50_ms, m->detection_p99_ms, m->detection_max_ms,
		       m->detected_pairs);
	if (m->crashes)
		printf("undetected    %" PRIu64 " of %" PRIu64 " judged pairs (%" PRIu64
		       " crashes too recent to judge)\n",
		       m->undetected, m->judged_pairs, m->crashes_pending);
	printf("false dead    %" PRIu64 " (during or just after a partition: %" PRIu64 ")\n", m->false_dead,
	       m->partition_dead);
	printf("traffic       %.1f msgs/node/s, %.0f bytes/node/s, %" PRIu64 " push-pulls\n",
	       node_s > 0 ? (double)m->packets_sent / node_s : 0,
	       node_s > 0 ? (double)m->packet_bytes_sent / node_s : 0, m->pushpulls_ok);
	if (p->scenario == SIM_SCENARIO_RECORD)
		print_record(&r->rec);
	printf("cost          %" PRIu64 " events, %.2f s wall, %.0f MB peak RSS\n", m->events,
	       wall_s, rss_mb);
	printf("trace_hash    %016" PRIx64 "\n", m->trace_hash);
}

static int parse_opts(int argc, char **argv, struct sim_opts *o)
{
	/* The scenario decides the defaults, so find it first. */
	enum sim_scenario sc = SIM_SCENARIO_JOIN;
	for (int i = 1; i + 1 < argc; i++) {
		if (strcmp(argv[i], "--scenario") == 0 && sim_scenario_parse(argv[i + 1], &sc) != 0)
			return cli_usage(&cmd_sim, "unknown scenario '%s'", argv[i + 1]);
	}
	memset(o, 0, sizeof(*o));
	sim_params_default(&o->p, sc);
	struct sim_params *p = &o->p;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t u;
		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--check") == 0) {
			o->check = true;
			continue;
		}
		if (strcmp(a, "--warm") == 0) {
			p->warm = true;
			continue;
		}
		if (strcmp(a, "--wire-ids") == 0) {
			p->wire_ids = true;
			continue;
		}
		if (!v)
			return cli_usage(&cmd_sim, "unknown option or missing value: %s", a);
		i++;
		if (strcmp(a, "--scenario") == 0) {
			/* parsed above */
		} else if (strcmp(a, "--nodes") == 0) {
			uint64_t max = SHOAL_SIM_NODES_MAX < SHOAL_MEMBERS_MAX ? SHOAL_SIM_NODES_MAX
									      : SHOAL_MEMBERS_MAX;
			if (!parse_u64(v, max, &u) || u < 2)
				return cli_usage(&cmd_sim, "--nodes: want 2..%" PRIu64, max);
			p->nodes = (uint32_t)u;
		} else if (strcmp(a, "--seconds") == 0) {
			if (!parse_u64(v, SHOAL_SIM_SECONDS_MAX, &u) || u < 1)
				return cli_usage(&cmd_sim, "--seconds: want 1..%d", SHOAL_SIM_SECONDS_MAX);
			p->seconds = (uint32_t)u;
		} else if (strcmp(a, "--seed") == 0) {
			if (!parse_u64(v, INT64_MAX, &u))
				return cli_usage(&cmd_sim, "--seed: want 0..%" PRId64, INT64_MAX);
			p->seed = u;
		} else if (strcmp(a, "--loss") == 0) {
			if (!parse_double(v, 0, 1, &p->loss))
				return cli_usage(&cmd_sim, "--loss: want 0..1");
			o->loss_set = true;
		} else if (strcmp(a, "--dup") == 0) {
			if (!parse_double(v, 0, 1, &p->dup))
				return cli_usage(&cmd_sim, "--dup: want 0..1");
			o->dup_set = true;
		} else if (strcmp(a, "--latency-ms") == 0) {
			if (!parse_double(v, 0, 10000, &p->latency_ms))
				return cli_usage(&cmd_sim, "--latency-ms: want 0..10000");
		} else if (strcmp(a, "--crash-fraction") == 0) {
			if (!parse_double(v, 0, 0.5, &p->crash_fraction))
				return cli_usage(&cmd_sim, "--crash-fraction: want 0..0.5");
		} else if (strcmp(a, "--churn-fraction") == 0) {
			if (!parse_double(v, 0, 0.5, &p->churn_fraction))
				return cli_usage(&cmd_sim, "--churn-fraction: want 0..0.5");
		} else if (strcmp(a, "--trace") == 0) {
			o->trace_path = v;
		} else {
			return cli_usage(&cmd_sim, "unknown option: %s", a);
		}
	}
	return 0;
}

/* Puts the heap on transparent huge pages. A 10,000-node run keeps about
 * a gigabyte of small allocations (the cores, their broadcast queues and
 * suspicions) that every event reads at random; on 4 KiB pages nearly each
 * of those reads also missed the TLB (10-15% of the run's CPU time).
 * The heap is grown once by `bytes` (address space; pages are only used
 * when touched) and that mapping is advised; what the heap needs beyond it
 * is on 4 KiB pages. The effect of GLIBC_TUNABLES=glibc.malloc.hugetlb=1,
 * which would have to be set before the process starts. Only a hint: if
 * refused, nothing else changes. */
static void heap_hugepages(size_t bytes)
{
	/* Never trimmed back below the pad, or what grows later is new,
	 * unadvised mapping. */
	mallopt(M_TRIM_THRESHOLD, INT32_MAX);
	size_t pad_max = (size_t)INT32_MAX - (256u << 20);
	mallopt(M_TOP_PAD, (int)(bytes < pad_max ? bytes : pad_max));
	/* Past the top, so the heap grows by the pad (volatile and touched:
	 * the compiler may drop an unused malloc/free pair). */
	char *volatile grow = malloc(1 << 20);
	if (grow)
		grow[0] = 1;
	free(grow);
	mallopt(M_TOP_PAD, 128 * 1024); /* glibc's default (mallopt(3)) */
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (strstr(line, "[heap]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
	}
	if (f)
		fclose(f);
}

static int run_sim(int argc, char **argv)
{
	struct sim_opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc != 0)
		return rc;
	FILE *trace = NULL;
	if (o.trace_path) {
		trace = fopen(o.trace_path, "w");
		if (!trace)
			return cli_fail("sim", "fopen(%s): %s", o.trace_path, strerror(errno));
		o.p.trace = trace;
	}
	/* Serve the run's allocations from the heap, which keeps what is
	 * freed (the kernel's page faults for fresh mappings were a tenth of
	 * a 10,000-node run), and put that heap on huge pages: about 12 bytes
	 * per (node, node) pair at the crash wave's peak (1.2 GB at 10,000
	 * nodes), and a little room. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	heap_hugepages((size_t)o.p.nodes * o.p.nodes * 14);
	struct sim_report r;
	double t0 = wall_now_s();
	rc = sim_scenario_run(&o.p, &r);
	double wall_s = wall_now_s() - t0;
	if (trace && fclose(trace) != 0 && rc == 0)
		rc = SHOAL_EIO;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double rss_mb = (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is KiB on Linux */

	if (rc != 0) {
		fprintf(stderr, "shoal sim: run failed: %s%s; seed=%" PRIu64 "\n",
			shoal_strerror(rc),
			rc == SHOAL_EINVAL ? " (is --seconds long enough for the scenario?)" : "",
			o.p.seed);
		print_replay(stderr, &o);
		return 1;
	}
	char why[256] = "";
	bool ok = true;
	if (o.check)
		ok = sim_scenario_check(&o.p, &r, why, sizeof(why));
	if (o.json) {
		rc = print_json(&o, &r, wall_s, rss_mb, o.check, ok, why);
		if (rc != 0)
			return rc;
	} else {
		print_table(&o, &r, wall_s, rss_mb);
	}
	if (!ok) {
		fprintf(stderr, "shoal sim: property failed: %s; seed=%" PRIu64 "\n", why,
			o.p.seed);
		print_replay(stderr, &o);
		return 1;
	}
	return 0;
}

const struct cli_command cmd_sim = {
	"sim", "run a seeded membership simulation",
	"NAME\n"
	"    shoal sim - run a seeded, deterministic membership (and record\n"
	"    dissemination) simulation\n\n"
	"SYNOPSIS\n"
	"    shoal sim [--scenario NAME] [--nodes N] [--seconds S] [--seed X]\n"
	"              [--loss P] [--dup P] [--latency-ms M] [--warm] [--wire-ids]\n"
	"              [--crash-fraction F] [--churn-fraction F] [--trace FILE]\n"
	"              [--json] [--check]\n\n"
	"DESCRIPTION\n"
	"    Runs N membership cores (SWIM with Lifeguard, the same code the agent\n"
	"    runs) in one process on a virtual clock, over a simulated network with\n"
	"    latency, loss, duplication, reordering, partitions, crashes and\n"
	"    restarts. Nothing touches a real network or clock: every choice comes\n"
	"    from the seed, so the same command prints the same trace_hash.\n\n"
	"    Scenarios:\n"
	"      join       cold start; node i joins through up to 3 earlier nodes at\n"
	"                 staggered times in the first seconds.\n"
	"      crash      converge, then crash --crash-fraction (0.15) of the nodes.\n"
	"      loss       warm start under --loss (0.2) datagram loss, 1% duplicates.\n"
	"      partition  converge, split into two random halves for 30 s, heal.\n"
	"      churn      converge, then keep about --churn-fraction (0.03) of the\n"
	"                 nodes down, restarting most after 2-38 s with the same id\n"
	"                 and a higher incarnation, then let the cluster settle.\n"
	"      record     warm start under --loss (0.2); at 5 s crash --crash-fraction\n"
	"                 (0.15) of the nodes at once, then a random live node\n"
	"                 publishes one signed record (Ed25519). Every node also runs\n"
	"                 the replication core: eager push over the lossy datagrams\n"
	"                 and anti-entropy sync sessions (modelled TCP: reliable,\n"
	"                 with latency, lost if either end is down) with random\n"
	"                 peers from its own membership view. Runs until every live\n"
	"                 node holds the record (at most 120 s), or for --seconds.\n\n"
	"    Measured: convergence (every live node sees every live node alive;\n"
	"    from the start, or from the heal / end of churn), detection time per\n"
	"    (observer, crashed node) pair, crashes still seen alive or suspect once\n"
	"    older than the worst-case Lifeguard timeout (undetected), false deaths\n"
	"    (a node declared dead while up; those during a partition or within\n"
	"    the worst-case timeout after its heal are counted apart, as\n"
	"    partition_dead), messages and bytes per node per second, push-pulls,\n"
	"    events, peak RSS, wall time and trace_hash (a 64-bit hash chained\n"
	"    over every membership event: time, node, kind, subject, incarnation;\n"
	"    in the record scenario also every record event and sync session).\n"
	"    The record scenario adds the time and gossip rounds (200 ms) until\n"
	"    50%, 99% and 100% of the live nodes hold the record, how many got it\n"
	"    by push and by sync, and push and sync traffic per live node per\n"
	"    second from the publication on.\n\n"
	"OPTIONS\n"
	"    --scenario NAME     join, crash, loss, partition, churn or record\n"
	"                        (join).\n"
	"    --nodes N           number of nodes, 2..16384 (100).\n"
	"    --seconds S         simulated seconds (default: long enough for the\n"
	"                        scenario's properties to be judged).\n"
	"    --seed X            the seed, 0..2^63-1 (1).\n"
	"    --loss P            datagram loss probability 0..1.\n"
	"    --dup P             datagram duplication probability 0..1.\n"
	"    --latency-ms M      mean one-way latency: 1 ms plus exponential\n"
	"                        jitter of mean M-1 (2).\n"
	"    --warm              start with every node knowing every other alive,\n"
	"                        instead of joining (always on for loss, record).\n"
	"    --wire-ids          membership packets in the wire's form, accusations\n"
	"                        naming node ids, instead of the simulator's, which\n"
	"                        names the cores' shared directory indexes: the same\n"
	"                        run and trace_hash, slower.\n"
	"    --crash-fraction F  crash, record: share of nodes crashed at once (0.15).\n"
	"    --churn-fraction F  churn: share of nodes down at a time (0.03).\n"
	"    --trace FILE        write every membership event, one line each\n"
	"                        (record: also record events and sync sessions).\n"
	"    --json              print one JSON object instead of a table.\n"
	"    --check             check the scenario's properties: convergence,\n"
	"                        every crash seen dead by every live node, no false\n"
	"                        death at loss <= 0.1, one view at the end;\n"
	"                        record: every live node holds the record.\n\n"
	"EXIT STATUS\n"
	"    0 if the run completed (and, with --check, its properties held);\n"
	"    1 if a property failed or the run could not complete: the message\n"
	"    names the property, prints seed=X and the command that replays it;\n"
	"    2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal sim --scenario join --nodes 1000 --seed 7\n"
	"    shoal sim --scenario crash --nodes 10000 --warm --seconds 600 --json\n"
	"    shoal sim --scenario loss --loss 0.1 --nodes 1000 --check\n"
	"    shoal sim --scenario record --nodes 1000 --seed 3 --check\n",
	run_sim,
};
