/*
 * replication.h — dissemination of feed records (DESIGN §4.5), sans-IO.
 *
 * Two mechanisms, as in epidemic broadcast with anti-entropy repair
 * (Demers et al. 1987; memberlist's gossip + push-pull):
 *
 *   eager push   a record new to this node (published here, or first
 *                received from a peer) is queued and sent in UDP payloads
 *                to `fanout` random peers per gossip round, several records
 *                per payload, fewest-sent first, until each was sent
 *                retransmit_mult × ceil(log10(N + 1)) times (memberlist's
 *                retransmit limit). The first round runs at once. A record
 *                the store already holds (DUP) is not forwarded again, so
 *                a record crosses each link a bounded number of times.
 *   anti-entropy every sync_interval_ms (uniform in [0.5, 1.5) × the
 *                interval, from the seeded rng) the core asks for a sync
 *                session with one random peer (REPL_OUT_SYNC). The session
 *                itself (core/sync.h) runs wherever the caller has a stream
 *                and a store handle: it compares bucketed digests of feed
 *                heads, exchanges heads of differing buckets, and each side
 *                pulls the ranges it lacks. A pushed record that leaves a
 *                gap before it (REPL_PUT_NEW_GAP) brings the next sync
 *                forward to gap_sync_delay_ms, with the sender.
 *                An idle node slows down: each session it started that
 *                found both stores equal (repl_note_sync_result) doubles
 *                its interval, up to sync_backoff_max × sync_interval_ms;
 *                anything new (a record published or learned, an
 *                equivocation, a session that found a difference, a peer
 *                joining) brings it back to sync_interval_ms at once.
 *
 * UDP payload (sealed by the transport like membership payloads; the agent
 * dispatches on the first byte: membership payloads start with their
 * version byte 1, replication payloads with 'R'):
 *
 *   payload = magic(u8 = 0x52 'R') | version(u8 = 1) | count(u8)
 *           | count × (len(u16) | record)          (record: core/record.h)
 *   1 ≤ count ≤ SHOAL_REPL_RECORDS_PER_PACKET_MAX, whole payload ≤
 *   SHOAL_UDP_PAYLOAD_BYTES_MAX; each record fills exactly its len.
 *
 * A payload that fails to decode is refused whole. Every record in a good
 * payload goes to the store, which checks its signature and links; only
 * records the store newly accepted are forwarded or reported.
 *
 * The core reaches records only through struct repl_store_ops (the agent
 * backs it with store/feed.h, tests and the simulator with core/memfeed.h).
 * It never reads a clock, socket, random source or database of its own:
 * inputs are calls with now_ms, outputs are polled with repl_poll().
 *
 * Driving it (agent or simulator):
 *   - repl_core_new() once; repl_set_peers() with the live members (alive
 *     or suspect, self excluded) after every membership change;
 *   - repl_recv_packet() for every authenticated UDP payload whose first
 *     byte is REPL_MAGIC (repl_is_payload());
 *   - repl_publish() after a record of this node's own feed was stored
 *     durably (feed_append), so it is never announced and then lost;
 *   - repl_tick() whenever now_ms >= repl_next_deadline() (the deadline can
 *     become `now` after an input: a new record is pushed at once);
 *   - after every call, drain repl_poll(): PACKET → seal and send to the
 *     member's address; SYNC → run a sync session (core/sync.h) with that
 *     member over a stream, on a thread with its own store handle, and hand
 *     each of its events back with repl_note_synced(); EVENT → act on it
 *     (announce records, logs, the CLI).
 */
#ifndef SHOAL_CORE_REPLICATION_H
#define SHOAL_CORE_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define REPL_MAGIC 0x52   /* 'R': first byte of every replication payload */
#define REPL_VERSION 1
#define REPL_PAYLOAD_HEADER_BYTES 3
#define REPL_NONE UINT32_MAX /* "no peer" in gid fields */

/* --- the store interface ------------------------------------------------- */

/* What the store did with a record (store/feed.h's feed_put_result). */
enum repl_put {
	REPL_PUT_NEW = 1,      /* stored; seq-1 held, or seq 1, or seq-1 pruned */
	REPL_PUT_NEW_GAP,      /* stored; seq-1 not held yet */
	REPL_PUT_DUP,          /* already held, same content */
	REPL_PUT_EQUIVOCATION, /* contradicts a held record (same seq, other
				* content, or a broken hash link): not stored;
				* the store keeps the evidence */
	REPL_PUT_STALE,        /* at or below what retention pruned: not stored */
};

/* "new", "new_gap", "dup", "equivocation", "stale"; "unknown" otherwise. */
const char *repl_put_name(int put);

/* One author's feed as held by a store (store/feed.h's struct feed_head). */
struct repl_head {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq_min;        /* lowest seq held */
	uint64_t seq_max;        /* highest seq held: the head */
	uint64_t count;          /* records held, 1 .. seq_max - seq_min + 1 */
	uint8_t hash[RECORD_HASH_BYTES]; /* record_hash of the head */
	uint64_t pruned_through; /* retention dropped seqs <= this (0: none) */
};

/* A missing range [first, last] inside an author's held seqs. */
struct repl_gap {
	uint64_t first;
	uint64_t last;
};

/* How many records the core asks range() for at once. */
#define REPL_RANGE_BATCH 16
/* How many gaps the core asks gaps() for at once. */
#define REPL_GAPS_BATCH 32

/*
 * The store, as the core and the sync session need it. Every function
 * returns 0 or a negative SHOAL_E* code. An implementation must give these
 * guarantees (store/feed.h and core/memfeed.h do):
 *
 * put      checks the record before storing it: the signature
 *          (SHOAL_EBADSIG, nothing stored), then same (author, seq) held
 *          (REPL_PUT_DUP or REPL_PUT_EQUIVOCATION), pruned (REPL_PUT_STALE),
 *          links with held seq-1 and seq+1 (REPL_PUT_EQUIVOCATION for a
 *          broken link — return 0 with that, not an error), bounds
 *          (SHOAL_EFULL, nothing stored); then stores it (NEW or NEW_GAP).
 *          A record is durable when put returns.
 * heads    one entry per author held, in a malloc'd array (NULL if none;
 *          the caller frees it), at most SHOAL_SYNC_FEEDS_MAX entries.
 * range    up to max (<= REPL_RANGE_BATCH) held records of author with
 *          seq >= from_seq, in seq order, skipping gaps, into out[0..*n).
 * gaps     up to max (<= REPL_GAPS_BATCH) missing ranges between the
 *          author's lowest and highest held seq, starting at from_seq, in
 *          order; *n is 0 when that part is contiguous (or nothing held).
 */
struct repl_store_ops {
	int (*put)(void *store, const struct record *r, enum repl_put *res);
	int (*heads)(void *store, struct repl_head **out, size_t *n);
	int (*range)(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES],
		     uint64_t from_seq, size_t max, struct record *out, size_t *n);
	int (*gaps)(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES],
		    uint64_t from_seq, size_t max, struct repl_gap *out, size_t *n);
};

/* --- events ----------------------------------------------------------------- */

enum repl_event_kind {
	REPL_EV_RECORD = 1,       /* a record was newly stored */
	REPL_EV_EQUIVOCATION = 2, /* a record contradicting a held one was refused
				   * (the store kept the evidence) */
};

enum repl_source {
	REPL_SRC_LOCAL = 1, /* repl_publish: this node's own feed */
	REPL_SRC_PUSH = 2,  /* an eager-push payload from from_gid */
	REPL_SRC_SYNC = 3,  /* a sync session with from_gid (if known) */
};

/* "record", "equivocation"; "local", "push", "sync". */
const char *repl_event_name(enum repl_event_kind k);
const char *repl_source_name(enum repl_source s);

struct repl_event {
	enum repl_event_kind kind;
	enum repl_source source;
	enum repl_put put;       /* NEW or NEW_GAP; EQUIVOCATION */
	uint8_t record_kind;     /* enum record_kind */
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq;
	uint32_t from_gid;       /* sender / sync peer; REPL_NONE when unknown */
};

/* --- the core ----------------------------------------------------------------- */

struct repl_config {
	uint32_t fanout;             /* 3: peers per push round (<= SHOAL_REPL_FANOUT_MAX) */
	uint32_t gossip_interval_ms; /* 200: between push rounds */
	uint32_t retransmit_mult;    /* 4: sends per record = mult × ceil(log10(N+1)) */
	uint32_t sync_interval_ms;   /* 10000: mean time between syncs; 0 disables */
	uint32_t sync_backoff_max;   /* 4: idle, the interval grows to this × the above (1: never) */
	uint32_t gap_sync_delay_ms;  /* 2000: a gap brings the next sync this close */
	uint32_t payload_bytes_max;  /* default SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT; the agent: seal_payload_max */
};

void repl_config_default(struct repl_config *c);

enum repl_out_kind {
	REPL_OUT_PACKET = 1, /* send data (len bytes) by UDP to member to_gid */
	REPL_OUT_SYNC,       /* start a sync session with member to_gid */
	REPL_OUT_EVENT,      /* a record was accepted (or refused as equivocation) */
};

struct repl_out {
	enum repl_out_kind kind;
	uint32_t to_gid;
	const uint8_t *data;     /* PACKET; valid until the next call into the core */
	size_t len;
	struct repl_event ev;    /* EVENT */
};

struct repl_stats {
	uint64_t packets_sent;
	uint64_t packet_bytes_sent;
	uint64_t packets_received;
	uint64_t packets_malformed;   /* refused whole */
	uint64_t records_received;    /* in well-formed payloads */
	uint64_t records_new;         /* NEW + NEW_GAP from pushes */
	uint64_t records_gap;         /* of which NEW_GAP */
	uint64_t records_dup;
	uint64_t records_equivocation;
	uint64_t records_stale;
	uint64_t records_bad_sig;     /* SHOAL_EBADSIG from the store */
	uint64_t records_refused;     /* other store errors (SHOAL_EFULL, ...) */
	uint64_t records_published;   /* repl_publish */
	uint64_t records_synced;      /* repl_note_synced with a new record */
	uint64_t records_sent;        /* record copies in sent payloads */
	uint64_t queue_dropped;       /* push queue full: oldest dropped */
	uint64_t outbox_dropped;      /* output queue full */
	uint64_t syncs_started;
	uint64_t syncs_gap_triggered; /* syncs brought forward by a gap */
	uint64_t sync_backoffs;       /* interval doublings after in-sync sessions */
};

struct repl_core;

/* Creates a core. ops/store are borrowed and must outlive it; self_gid is
 * this node's gid (never a push target). Returns NULL on ENOMEM. */
struct repl_core *repl_core_new(const struct repl_config *cfg,
				const struct repl_store_ops *ops, void *store,
				uint32_t self_gid, uint64_t seed, uint64_t now_ms);
void repl_core_free(struct repl_core *r);

/* Replaces the set of peers (live members; self is skipped if present).
 * SHOAL_ETOOBIG over SHOAL_REPL_PEERS_MAX, SHOAL_ENOMEM; on error the old
 * set is kept. */
int repl_set_peers(struct repl_core *r, const uint32_t *gids, size_t n) SHOAL_MUST_CHECK;
size_t repl_peer_count(const struct repl_core *r);

/* True if a UDP payload is for this core (first byte REPL_MAGIC). */
bool repl_is_payload(const uint8_t *p, size_t len);

/* Called after a record of this node's own feed was stored durably: queues
 * it for eager push and emits an EVENT (source LOCAL). SHOAL_EINVAL if the
 * record is not structurally valid. */
int repl_publish(struct repl_core *r, const struct record *rec, uint64_t now_ms) SHOAL_MUST_CHECK;

/* Called after an authenticated UDP payload from member from_gid arrived.
 * Returns 0, or the decoder's error (SHOAL_ETOOBIG, SHOAL_ETRUNC,
 * SHOAL_EVERSION, SHOAL_EPROTO, SHOAL_ETRAILING); then nothing was stored
 * and only packets_malformed changed. Records the store refuses are
 * counted, not errors. */
int repl_recv_packet(struct repl_core *r, uint32_t from_gid, const uint8_t *p,
		     size_t len, uint64_t now_ms);

/* Called with each event a sync session with peer_gid produced (see
 * sync_session_poll): emits it as an EVENT with source SYNC. Records
 * learned by anti-entropy are repairs and are not pushed again. */
void repl_note_synced(struct repl_core *r, uint32_t peer_gid,
		      const struct repl_event *ev, uint64_t now_ms);

/* Called when a sync session this node asked for (REPL_OUT_SYNC) with
 * peer_gid completed; in_sync: both stores were already equal (no bucket
 * differed). Equal doubles the sync interval (up to sync_backoff_max × it)
 * and moves the pending sync out accordingly; not equal brings it back to
 * sync_interval_ms. Failed sessions are not reported. */
void repl_note_sync_result(struct repl_core *r, uint32_t peer_gid, bool in_sync,
			   uint64_t now_ms);
/* The current mean sync interval (ms). */
uint64_t repl_sync_interval_now(const struct repl_core *r);

/* Runs every timer due at now_ms: a push round, a sync request. */
void repl_tick(struct repl_core *r, uint64_t now_ms);
/* The next time repl_tick must be called (UINT64_MAX: never). */
uint64_t repl_next_deadline(const struct repl_core *r);

/* Pops the next output; false when none. */
bool repl_poll(struct repl_core *r, struct repl_out *out);

/* Records waiting in the push queue. */
size_t repl_queue_count(const struct repl_core *r);
const struct repl_stats *repl_core_stats(const struct repl_core *r);

/* --- payload codec (exposed for tests and fuzzing) --------------------------- */

/* Decodes a whole payload: on 0, recs[0..*count) are the records (at most
 * SHOAL_REPL_RECORDS_PER_PACKET_MAX). Structure only, no signatures. */
int repl_decode_payload(const uint8_t *p, size_t len, struct record *recs,
			size_t *count) SHOAL_MUST_CHECK;
/* Encodes recs[0..n) as one payload into out (cap bytes): SHOAL_ETOOBIG if
 * it does not fit or n is out of 1..SHOAL_REPL_RECORDS_PER_PACKET_MAX. */
int repl_encode_payload(const struct record *recs, size_t n, uint8_t *out,
			size_t cap, size_t *len) SHOAL_MUST_CHECK;

#endif
