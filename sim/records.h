/*
 * records.h — the simulator's record-dissemination layer: beside every
 * membership core, a feed store (core/memfeed.h) and a replication core
 * (core/replication.h), the same sans-IO code the agent runs, driven
 * through sim_hooks on the sim's clock and network.
 *
 *   peers      each replication core's peers are the nodes its own
 *              membership core lists alive or suspect (as the agent's
 *              replica_set_peers), refreshed before a tick when that view
 *              changed; crashed nodes stay peers until the view drops them.
 *   push       'R' payloads are datagrams through the sim's network model
 *              (loss, duplication, latency, partitions).
 *   sync       a REPL_OUT_SYNC opens a modelled TCP/TLS session: it
 *              connects after two round trips (four latency draws), then
 *              the two real sync sessions (core/sync.h) take turns, each
 *              message one latency draw later, reliable and in order; the
 *              session is lost if either end is down (or partitioned away)
 *              when the connection opens or a message arrives.
 *
 * Replication ids are node indices (the core treats them as opaque).
 * Everything draws from the sim's rng, so the seed replays the layer too;
 * its events are chained into the sim's trace_hash.
 */
#ifndef SHOAL_SIM_RECORDS_H
#define SHOAL_SIM_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/replication.h"
#include "sim/sim.h"

struct sim_records;

/* Attaches the layer to s: a store and a replication core for every node
 * that is up, each core's view taken from its membership core. Installs
 * the sim's hooks (one layer per sim). trace (may be NULL) gets one line
 * per record event and per sync session. NULL on ENOMEM. */
struct sim_records *sim_records_new(struct sim *s, const struct repl_config *cfg,
				    FILE *trace);
/* Removes the hooks and frees every store, core and session. */
void sim_records_free(struct sim_records *r);

/* Crashes node idx: its membership core (sim_node_crash), replication core
 * and store go; its open sync sessions fail at their next step. */
int sim_records_crash(struct sim_records *r, uint32_t idx);

/* Node idx appends a record to its own feed (signed with sk, whose public
 * half is the author) and publishes it. This is the record the report
 * follows; one per layer. SHOAL_ESTATE if one was published or idx is down. */
int sim_records_publish(struct sim_records *r, uint32_t idx, const uint8_t sk[64],
			uint8_t kind, const void *body, size_t len);

/* True once every live node holds the published record. */
bool sim_records_complete(const struct sim_records *r);

/* Fills out (traffic counts since the publication). */
void sim_records_report(const struct sim_records *r, struct sim_record_report *out);

/* Self-check for tests: live nodes whose store disagrees with the layer's
 * bookkeeping about holding the record, plus views that disagree with the
 * membership cores. 0 when consistent. O(N^2) lookups. */
uint64_t sim_records_verify(const struct sim_records *r);

/* The record scenario after the nodes are up: at publish_ms crash
 * p->crash_fraction of the nodes at once, then a random live node publishes
 * one signed record; run to *end_ms, or, when *end_ms is 0, until every
 * live node holds it (at most SIM_RECORD_WAIT_MS after the publication;
 * *end_ms gets the end). */
#define SIM_RECORD_WAIT_MS 120000u
int sim_records_scenario(struct sim *s, const struct sim_params *p, uint64_t publish_ms,
			 uint64_t *end_ms, struct sim_record_report *out);

#endif
