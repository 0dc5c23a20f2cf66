/*
 * releases.h — the node's release manager (DESIGN §4.5, §4.6).
 *
 * A release reaches a node as an `announce` record: a list of TUF metadata
 * files by hash (core/announce.h). The manager fetches those files as
 * content-addressed blobs (from any peer, through a callback the agent
 * provides), runs the TUF client workflow over them against the node's
 * trusted metadata (DATA/trust/metadata: root rotation chain, thresholds,
 * rollback, expiry, snapshot consistency, length and hash bounds), then
 * fetches every target of the verified top-level targets metadata by its
 * signed SHA-256 and length, checks it, and only then writes it under
 * DATA/releases/<targets version>/. Every announce ends in one state:
 *
 *   announced → fetching → verified | rejected (with the TUF step that failed)
 *
 * recorded in SQLite (table releases in state.db). A rejected announce
 * changes nothing in the trusted metadata or under DATA/releases, and does
 * not stop the next good one. Holders are counted from health records.
 *
 * All functions block (file and network I/O) and are meant for one worker
 * thread at a time, except relmgr_list and relmgr_note_health which are
 * safe from any thread (the manager holds a mutex).
 */
#ifndef SHOAL_RUNTIME_RELEASES_H
#define SHOAL_RUNTIME_RELEASES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/announce.h"
#include "core/record.h"
#include "shoal/error.h"
#include "store/blobs.h"

struct relmgr;

/* Makes sure the blob `hash` (exactly `length` bytes) is in the blob store, fetching it from peers (the announcer first)
 * when missing. 0, or a SHOAL_E* with err set. */
typedef int (*relmgr_blob_fn)(void *arg, const uint8_t hash[32], uint64_t length,
			      const uint8_t announcer[SHOAL_NODE_ID_BYTES], char *err,
			      size_t errlen);

int relmgr_open(const char *data_dir, struct blobs *blobs, struct relmgr **out, char *err,
		size_t errlen) SHOAL_MUST_CHECK;
void relmgr_close(struct relmgr *m);

/* Reads a signed repository in repo_dir (metadata/ and targets/, as
 * `shoal release publish` leaves it), copies its current metadata files
 * (timestamp, snapshot, top-level targets, and root versions 2..N) and
 * targets into the blob store, and fills *out for an announce record. It
 * verifies nothing (the node verifies the announce like any other). */
int relmgr_ingest_repo(struct relmgr *m, const char *repo_dir, struct announce *out,
		       char *err, size_t errlen) SHOAL_MUST_CHECK;

/* True if this announce record was already processed (any final state). */
bool relmgr_seen(struct relmgr *m, const struct record *announce);

/* Lists an announce as `announced` (queued, not yet processed) unless it
 * already has a state. */
void relmgr_note_announced(struct relmgr *m, const struct record *announce);

/* Processes one announce record end to end (see above). Returns 0 when the
 * release was verified and stored (*targets_version set), SHOAL_EBADSIG /
 * SHOAL_EREPLAY / SHOAL_EEXPIRED / ... when it was rejected (reason in
 * err, and recorded), or another SHOAL_E* for a local failure. When a blob
 * could not be fetched (no peer had it yet) and final is false, the
 * announce stays in state fetching and SHOAL_ECONN is returned: try again
 * later; with final true that is a rejection too. */
int relmgr_process(struct relmgr *m, const struct record *announce, int64_t now_s,
		   bool final, relmgr_blob_fn fetch, void *fetch_arg, int64_t *targets_version,
		   char *err, size_t errlen) SHOAL_MUST_CHECK;

/* True if author's health records say it holds release `version`. */
bool relmgr_holds(struct relmgr *m, const uint8_t author[SHOAL_NODE_ID_BYTES], int64_t version);

/* Notes a health record's claim (author holds release `version` in
 * `state`), for the holder counts. */
void relmgr_note_health(struct relmgr *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
			int64_t version, const char *state);

/* {"releases":[{"version","timestamp_version","state","reason","targets":[
 * {"name","length","sha256"}],"announced_by","announce_seq","updated_ms",
 * "holders"}]} newest first, or NULL on ENOMEM. */
json_t *relmgr_list(struct relmgr *m);

/* Health record bodies: {"release":V,"state":"fetched","detail":"..."}. */
int relmgr_health_body(int64_t version, const char *state, const char *detail,
		       uint8_t *out, size_t cap, size_t *len) SHOAL_MUST_CHECK;
int relmgr_parse_health(const uint8_t *body, size_t len, int64_t *version, char *state,
			size_t state_cap) SHOAL_MUST_CHECK;

#endif
