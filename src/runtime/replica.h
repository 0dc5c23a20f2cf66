/*
 * replica.h — the agent's replication driver (DESIGN §4.4–4.6): feeds,
 * eager push, anti-entropy, blob transfer and releases, on top of the
 * sans-IO replication core (core/replication.h, core/sync.h,
 * core/blobdl.h).
 *
 * Threads:
 *   loop thread    owns the replication core: UDP payloads in, packets and
 *                  events out (replica_on_packet, replica_tick, the control
 *                  commands). The agent calls replica_set_peers after every
 *                  membership change.
 *   sync thread    runs the anti-entropy sessions the core asks for, one at
 *                  a time, over Noise streams, against the SQLite feed store.
 *   release thread processes announce records one at a time: fetches the
 *                  announced TUF metadata and the targets as blobs from
 *                  peers (chunked, resumable, a peer serving bad bytes is
 *                  excluded), verifies with the TUF client, installs, and
 *                  appends a `health` record (state fetched) to this node's
 *                  feed.
 *   conn threads   (the agent's) hand streams whose first frame is SYNC to
 *                  replica_serve: sync responder or blob server.
 *   upstream       with cfg->upstream_url set: pulls that HTTP(S) TUF
 *                  repository and announces what verified, as `publish`
 *                  does (runtime/upstream.h).
 * Records produced or learned off the loop thread are handed to it through
 * a queue and the agent's wake callback.
 */
#ifndef SHOAL_RUNTIME_REPLICA_H
#define SHOAL_RUNTIME_REPLICA_H

#include <jansson.h>
#include <stdint.h>

#include "runtime/stream.h"
#include "shoal/addr.h"
#include "shoal/error.h"
#include "trust/identity.h"

/* A live member other threads may contact. */
struct replica_peer {
	uint32_t gid;
	uint8_t id[SHOAL_NODE_ID_BYTES];
	struct shoal_addr addr;
};

struct replica_hooks {
	void *arg;
	/* Loop thread: seal and send a UDP payload to addr. */
	void (*send)(void *arg, const struct shoal_addr *to, const uint8_t *p, size_t n);
	/* Any thread: make the loop call replica_loop_work soon. */
	void (*wake)(void *arg);
};

struct replica_config {
	uint32_t sync_interval_ms;   /* anti-entropy mean interval */
	uint32_t gossip_interval_ms; /* push rounds */
	uint32_t retention_ms;       /* feed retention (received time) */
	const char *upstream_url;    /* NULL or "": no upstream (runtime/upstream.h) */
	uint32_t upstream_interval_ms;
};

struct replica;

/* Opens the feed store, blob store and release manager in data_dir.
 * self_gid is this node's gid in the membership directory. self and
 * stream are borrowed and must outlive the replica. */
int replica_open(const char *data_dir, const struct node_identity *self, uint32_t self_gid,
		 struct stream_ctx *stream, const struct replica_config *cfg,
		 const struct replica_hooks *hooks, uint64_t now_ms, struct replica **out,
		 char *err, size_t errlen) SHOAL_MUST_CHECK;
/* Tells the worker threads and served streams to wind down (each stops at
 * its next message or chunk, within SHOAL_TCP_TIMEOUT_MS); NULL is a no-op. */
void replica_stop(struct replica *r);
/* Stops, joins the worker threads and frees; NULL is a no-op. */
void replica_close(struct replica *r);

/* Loop thread: the live members (self excluded). */
void replica_set_peers(struct replica *r, const struct replica_peer *peers, size_t n);
/* Loop thread: an authenticated UDP payload (first byte REPL_MAGIC) from
 * member from_gid. */
void replica_on_packet(struct replica *r, uint32_t from_gid, const uint8_t *p, size_t len,
		       uint64_t now_ms);
/* Loop thread: timers due, records queued by other threads, outputs. */
void replica_loop_work(struct replica *r, uint64_t now_ms);
/* Loop thread: when replica_loop_work must run next (UINT64_MAX: never). */
uint64_t replica_next_deadline(const struct replica *r);

/* Conn thread: serves a stream whose first frame (type SYNC) the agent
 * read; closes c. */
void replica_serve(struct replica *r, struct stream_conn *c, const struct stream_frame *first,
		   const struct stream_peer *peer);

/* Loop thread, control commands: {"cmd":"publish","repo":DIR} and
 * {"cmd":"releases"}; returns the reply. */
json_t *replica_publish(struct replica *r, const char *repo_dir, uint64_t now_ms);
json_t *replica_releases(struct replica *r);
/* Counters for `shoal status`. */
json_t *replica_status(struct replica *r);

#endif
