/*
 * sim.h — the deterministic simulator: N membership cores in one process.
 *
 * Shape of a run:
 *
 *   one seed ──> struct rng ──> node ids, core seeds, latencies, losses,
 *                               duplicates, crash choices, partition sides
 *   virtual clock (ms) + one event queue in (time, seq) order (a timing
 *   wheel of 1-ms buckets, a heap for events more than 4 s out)
 *     TICK      call member_core_tick at the core's own deadline
 *     PACKET    deliver a copied payload to the node owning the address
 *     PUSHPULL  after ~2 RTT: take both states, then merge both ways
 *   after every call into a core, its outputs are drained: packets go through
 *   the network model, push-pulls are scheduled, events feed the trace hash
 *   and the bookkeeping for convergence, detection and false deaths.
 *
 * The cores share one member_dir. Addresses are 10.x.y.z:7946 from the node
 * index and never touch a real network. Nothing reads a wall clock or an OS
 * random source, so the same seed replays the same run and the same
 * trace_hash (a 64-bit hash chained over every membership event).
 *
 * A layer above membership (sim/records.c: replication) rides on the same
 * clock, network and rng through sim_hooks: DATAGRAM and TIMER events, and
 * the cores' membership events.
 *
 * Scenario drivers (sim_scenario_*) build on the primitives below and are what
 * `shoal sim` and the tests call.
 */
#ifndef SHOAL_SIM_H
#define SHOAL_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/membership.h"
#include "shoal/rng.h"

#define SIM_PORT 7946

/* The network model. Every draw comes from the sim's seeded rng. */
struct sim_net {
	uint32_t latency_base_ms;  /* fixed part of the one-way latency */
	double latency_jitter_ms;  /* mean of the exponential part; reorders packets */
	double loss;               /* probability a datagram is dropped, 0..1 */
	double dup;                /* probability a datagram arrives twice, 0..1 */
};

struct sim_config {
	uint32_t nodes;            /* 1..SHOAL_SIM_NODES_MAX */
	uint64_t seed;
	struct sim_net net;
	struct member_config member;
	/* A crash is judged (does every live observer see it dead?) only once the
	 * node has been down this long; younger crashes are "pending". */
	uint64_t detect_grace_ms;
	FILE *trace;               /* optional: one line per membership event */
	/* Push-pull states go through the real codec (encoded to bytes,
	 * decoded, merged) instead of core to core (member_core_pair_begin,
	 * member_core_pair_merge): the same merges, the same trace_hash, far
	 * more work at 10,000 nodes. For the tests that check exactly that. */
	bool encode_states;
	/* Membership packets in the wire's form, accusations naming ids,
	 * instead of the simulator's (member_config.sim_gids, which sim_new
	 * sets otherwise): the same run, the same trace_hash, ~15% slower at
	 * 10,000 nodes. */
	bool wire_ids;
};

/* What a run measured. Times are virtual ms. */
struct sim_metrics {
	uint64_t now_ms;
	uint64_t events;              /* simulator events processed */
	uint64_t trace_hash;          /* 64-bit hash chained over every membership event */
	uint64_t member_events;       /* membership events emitted by all cores */
	uint32_t live_nodes;
	/* convergence: every live node sees every live node alive */
	bool converged;               /* reached at or after the reference time */
	uint64_t converged_at_ms;     /* first such time; valid if converged */
	bool converged_now;           /* holds at now_ms */
	/* detection: (observer, crashed) pairs */
	uint64_t crashes;
	uint64_t restarts;
	uint64_t detected_pairs;      /* pairs with a DEAD event after the crash */
	uint64_t detection_p50_ms, detection_p99_ms, detection_max_ms;
	uint64_t judged_pairs;        /* pairs old enough to judge */
	uint64_t undetected;          /* judged pairs where the observer still sees alive/suspect */
	uint64_t crashes_pending;     /* crashes younger than detect_grace_ms at now */
	/* false deaths: a node declared dead (at its current life's incarnation)
	 * while it was up */
	uint64_t false_dead;          /* outside any partition window */
	uint64_t partition_dead;      /* during a partition or within grace after its heal */
	uint64_t live_view_dead;      /* at now: (live observer, live node) pairs seen dead or unknown */
	/* traffic, summed over every core that ever ran */
	uint64_t packets_sent, packet_bytes_sent;
	uint64_t packets_delivered, packets_lost, packets_duplicated;
	uint64_t packets_to_down, packets_partitioned, packets_unroutable;
	uint64_t pushpulls_ok, pushpulls_failed, pushpull_bytes;
	uint64_t pushpulls_rejected;  /* states a core refused to merge */
	uint64_t suspects_raised, refutations, deaths_declared;
	uint64_t refutations_direct;  /* current ALIVE sent straight to an accuser */
	uint64_t suspects_told;       /* SUSPECT sent to a suspect that talked to a core */
	uint64_t stale_answers;       /* a third member's current ALIVE sent to its stale accuser */
	uint64_t suspicions_rechecked; /* unconfirmed suspicions put to the member at expiry */
	uint64_t stream_pings_sent;   /* probes that also asked over a stream (memberlist's TCP ping) */
	uint64_t probes_stream_only;  /* probes only the stream answered: no suspicion */
	uint64_t outbox_dropped, broadcasts_dropped;
	uint64_t tick_overdue;        /* core asked to be ticked again at once */
};

struct sim;

/* Creates a sim with no node started. Returns NULL on bad config or no memory. */
struct sim *sim_new(const struct sim_config *cfg);
void sim_free(struct sim *s);

uint64_t sim_now(const struct sim *s);
uint32_t sim_nodes(const struct sim *s);
struct rng *sim_rng(struct sim *s);
bool sim_node_up(const struct sim *s, uint32_t idx);
uint32_t sim_live_count(const struct sim *s);
/* The node's core, NULL while it is down. */
const struct member_core *sim_core(const struct sim *s, uint32_t idx);
/* The address of node idx: 10.a.b.c:7946 with a.b.c = idx + 1. */
void sim_node_addr(uint32_t idx, struct shoal_addr *out);

/* Cold start of node idx: a fresh core that joins through the given nodes
 * (none: it waits to be joined). Returns 0, SHOAL_ESTATE if already up,
 * SHOAL_ENOMEM. */
int sim_node_start(struct sim *s, uint32_t idx, const uint32_t *seeds, size_t n);
/* Starts every node knowing every other alive (member_core_add_alive), so a
 * large run does not spend its time joining. All nodes must be down. */
int sim_warm_start(struct sim *s);
/* Crashes node idx: its core is freed, packets to it are dropped. */
int sim_node_crash(struct sim *s, uint32_t idx);
/* Restarts a crashed node like an agent starting from its data dir: same
 * identity, incarnation one above its last, joining through a random live
 * node. */
int sim_node_restart(struct sim *s, uint32_t idx);

/* side[i] in {0,1}: packets and push-pulls between sides are dropped. */
void sim_partition(struct sim *s, const uint8_t *side);
void sim_heal(struct sim *s);

/* Processes every event due up to and including t_ms; the clock ends at t_ms.
 * Returns 0 or SHOAL_EFULL if the event queue hit SHOAL_SIM_EVENTS_MAX. */
int sim_run_until(struct sim *s, uint64_t t_ms);

/* Convergence is measured from now: sim_metrics reports the first time at or
 * after this call when every live node saw every live node alive. */
void sim_convergence_from_now(struct sim *s);

/* Fills m; judges open crashes older than detect_grace_ms against now. */
void sim_metrics(struct sim *s, struct sim_metrics *m);

/* Self-check of the bookkeeping, O(N^2) lookups: counts (observer, node)
 * pairs where the sim's alive bit disagrees with the core, plus counters
 * that disagree with the bits. 0 when consistent. For tests. */
uint64_t sim_verify_views(const struct sim *s);

/* The payload bound of a simulated node: what a sealed datagram leaves
 * beside the certificate of the longest-named of nodes nodes. */
uint32_t sim_payload_bytes(uint32_t nodes);

/* The worst-case time for every live node to see a crash, from the Lifeguard
 * parameters: max suspicion timeout plus probe and gossip slack. */
uint64_t sim_detect_grace_ms(const struct member_config *mc, uint32_t nodes);

/* --- layers above membership ----------------------------------------------
 * A layer that runs beside the membership cores (sim/records.c: the
 * replication cores) follows the cores' views, sends its own datagrams
 * through the same network model and keeps its own timers on the same
 * clock. Its callbacks run inside sim_run_until, in event order, and may
 * call the functions below. */
struct sim_hooks {
	void *arg;
	/* Called after node observer's core emitted membership event ev about
	 * node subject (a sim node other than the observer). */
	void (*member_event)(void *arg, uint32_t observer, uint32_t subject,
			     const struct member_event *ev);
	/* Called when a datagram from sim_send_datagram arrives at node to,
	 * up or not (sim_node_up tells). data is valid until the hook sends. */
	void (*datagram)(void *arg, uint32_t to, uint32_t from, const uint8_t *data,
			 size_t len);
	/* Called when a timer from sim_schedule fires. */
	void (*timer)(void *arg, uint32_t node, uint32_t a, uint32_t b);
};

/* Installs h (copied; NULL removes the hooks). */
void sim_set_hooks(struct sim *s, const struct sim_hooks *h);
/* Sends len bytes (1..payload_bytes_max) from node from to node to through
 * the network model: partition, loss, duplication, a latency per copy.
 * Returns the copies queued (0: lost or partitioned), or SHOAL_EINVAL. */
int sim_send_datagram(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data,
		      size_t len);
/* Calls hooks.timer(node, a, b) at at_ms (>= now). */
void sim_schedule(struct sim *s, uint64_t at_ms, uint32_t node, uint32_t a, uint32_t b);
/* One one-way latency draw of the network model (uses the sim's rng). */
uint64_t sim_draw_latency(struct sim *s);
/* False while a partition separates a and b. */
bool sim_reachable(const struct sim *s, uint32_t a, uint32_t b);
/* True if o's core sees node g ALIVE (the bookkeeping bit; no lookup). */
bool sim_sees_alive(const struct sim *s, uint32_t o, uint32_t g);
/* Chains w into the trace hash, so a layer's events are replay-checked too. */
void sim_trace_mix(struct sim *s, uint64_t w);

/* --- scenarios ------------------------------------------------------------ */
enum sim_scenario {
	SIM_SCENARIO_JOIN = 0,
	SIM_SCENARIO_CRASH,
	SIM_SCENARIO_LOSS,
	SIM_SCENARIO_PARTITION,
	SIM_SCENARIO_CHURN,
	SIM_SCENARIO_RECORD,
};

/* Returns 0 or SHOAL_EINVAL. */
int sim_scenario_parse(const char *name, enum sim_scenario *out);
const char *sim_scenario_name(enum sim_scenario sc);

struct sim_params {
	enum sim_scenario scenario;
	uint32_t nodes;
	uint32_t seconds;          /* virtual run length */
	uint64_t seed;
	double loss;               /* negative: the scenario's default */
	double latency_ms;         /* mean one-way latency */
	double dup;
	bool warm;                 /* start everyone knowing everyone */
	double crash_fraction;     /* crash: share crashed at once */
	double churn_fraction;     /* churn: share down at a time, on average */
	FILE *trace;
	bool encode_states;        /* sim_config.encode_states */
	bool wire_ids;             /* sim_config.wire_ids */
};

/* Fills the defaults for a scenario (seconds, loss, ...). */
void sim_params_default(struct sim_params *p, enum sim_scenario sc);

/* The record scenario (sim/records.c): how one signed record spread. Times
 * are virtual ms after the publication; rounds are gossip intervals
 * (200 ms), ceil(time / interval). Traffic counts run from the publication
 * to the end of the run (window_ms). */
struct sim_record_report {
	bool published;
	uint32_t publisher;
	uint64_t publish_ms;          /* virtual time of the publication */
	uint64_t window_ms;           /* publication -> end of the run */
	uint32_t gossip_interval_ms;
	uint32_t live_nodes;          /* up at the end */
	uint32_t holders;             /* live nodes holding the record at the end */
	uint32_t via_push, via_sync;  /* holders other than the publisher, by first arrival */
	bool reached_50, reached_99, reached_100;
	uint64_t t50_ms, t99_ms, t100_ms;
	uint64_t rounds_50, rounds_99, rounds_100;
	/* eager push (UDP), summed over every replication core */
	uint64_t push_packets, push_bytes, push_records_sent;
	uint64_t push_lost;           /* dropped by the network model */
	uint64_t push_to_down;        /* arrived at a crashed node */
	uint64_t push_dups;           /* copies of records already held */
	uint64_t queue_dropped;       /* push queue overflow (should stay 0) */
	/* anti-entropy (modelled TCP/TLS sessions) */
	uint64_t syncs_started, syncs_ok;
	uint64_t syncs_failed;        /* an end crashed, or a partition */
	uint64_t syncs_error;         /* a session broke the protocol (should stay 0) */
	uint64_t sync_msgs, sync_bytes, sync_records;
	/* the stores */
	uint64_t sig_verifies;        /* Ed25519 verifications (one per new record stored) */
	uint64_t bad_sig, equivocations;
};

struct sim_report {
	struct sim_metrics m;
	uint64_t convergence_base_ms; /* convergence is reported relative to this */
	uint64_t disrupt_ms;          /* crash, partition start; 0 if none */
	uint64_t heal_ms;             /* partition heal; 0 if none */
	uint64_t churn_end_ms;        /* churn: last crash or restart allowed */
	uint64_t detect_grace_ms;
	uint32_t payload_bytes_max;   /* the cores' (sim_payload_bytes) */
	double effective_loss;
	double effective_dup;
	struct sim_record_report rec; /* record scenario only */
};

/* Runs a scenario to the end. Returns 0, SHOAL_EINVAL, SHOAL_ENOMEM or
 * SHOAL_EFULL. */
int sim_scenario_run(const struct sim_params *p, struct sim_report *r);

/* Checks the scenario's properties. Returns true if they hold; otherwise
 * writes the failed property and its figures into why. */
bool sim_scenario_check(const struct sim_params *p, const struct sim_report *r,
			char *why, size_t why_size);

#endif
