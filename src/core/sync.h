/*
 * sync.h — the replication stream protocol (DESIGN §4.5): anti-entropy
 * sync sessions between two feed stores, and blob transfer frames.
 *
 * Every message is the payload of one STREAM_FRAME_SYNC frame
 * (runtime/stream.h), at most SHOAL_SYNC_MSG_BYTES_MAX bytes:
 *
 *   msg        = version(u8 = 1) | type(u8) | body
 *   ROOT       root(16)
 *   DIGEST     buckets(u16 = 256) | 256 × digest(16)
 *   DATA       flags(u8) | heads_count(u16) | heads_count × head
 *                        | wants_count(u16) | wants_count × want
 *                        | records_count(u16) | records_count × (len(u16) | record)
 *   BLOB_REQ   hash(32) | offset(u64) | len(u32)       1 ≤ len ≤ SHOAL_BLOB_CHUNK_BYTES_MAX
 *   BLOB_CHUNK hash(32) | offset(u64) | total(u64) | len(u32) | data(len)
 *   BLOB_NONE  hash(32)
 *
 *   head   = author(32) | seq_min(u64) | seq_max(u64) | count(u64) | head_hash(32)
 *            (1 ≤ seq_min ≤ seq_max, 1 ≤ count ≤ seq_max - seq_min + 1)
 *   want   = author(32) | from_seq(u64) | count(u32)
 *            (from_seq ≥ 1, 1 ≤ count ≤ SHOAL_SYNC_RANGE_COUNT_MAX)
 *   digest = BLAKE2b-128 over the bucket's heads (author-sorted, encoded as
 *            above), each head of a feed with holes followed by its gaps
 *            (first(u64) | last(u64) each, in order, as far as
 *            SHOAL_SYNC_DIGEST_GAP_CALLS_MAX store calls reach); all zeros
 *            for an empty bucket. Bucket = author[0].
 *   root   = BLAKE2b-128 of "shoal/sync-root/v1" | the 256 digests in
 *            bucket order: equal roots mean equal digests.
 *   flags  = HEADS_DONE 1 | WANTS_DONE 2 | FIN 4; FIN needs both others.
 *   chunk  = len ≤ SHOAL_BLOB_CHUNK_BYTES_MAX, offset + len ≤ total ≤
 *            SHOAL_BLOB_BYTES_MAX, len = 0 only at offset = total.
 *
 * A sync session is half-duplex: the sides take turns, one message each.
 * Most sessions between idle nodes find nothing to do, so the first turn is
 * the 18-byte ROOT: only when the roots differ do the 4 KiB digests follow.
 * A responder also accepts a DIGEST as the first message (an initiator
 * that skips the ROOT turn).
 *
 *   initiator → ROOT;    responder → ROOT     (equal roots: both done)
 *   initiator → DIGEST;  responder → DIGEST   (equal digests: both done)
 *   then DATA turns, initiator first. Each side, in its turns:
 *     sends its heads of the differing buckets (paged), then HEADS_DONE;
 *     once it has the peer's HEADS_DONE: computes the ranges it lacks
 *       (within the peer's [seq_min, seq_max], above its own retention
 *       point, skipping seqs it holds) and sends them (paged), WANTS_DONE;
 *     serves the peer's wants with records, in order, as many per message
 *       as fit;
 *     sets FIN when it has nothing left to send.
 *   A side that receives FIN after its own last message carried FIN is
 *   done and sends nothing; a side that answers FIN with FIN is done after
 *   sending it. So exactly one side talks at a time and both know when the
 *   session is over.
 *
 * Received records go to the local store (signature and link checks there);
 * a record outside what this side asked for, a peer that breaks the turn
 * rules, lists heads out of order or outside the differing buckets, or
 * serves a record with a bad signature, fails the session. Every list and
 * loop is bounded (SHOAL_SYNC_* in limits.h); a session with more to fetch
 * than one session's bounds takes what fits, the next session the rest.
 *
 * A blob stream is request/response: the client sends BLOB_REQ, the
 * server answers BLOB_CHUNK with exactly min(len, total - offset) bytes of
 * a blob it holds complete, or BLOB_NONE; the client repeats or closes.
 * core/blobdl.h decides which peer to ask for what.
 */
#ifndef SHOAL_CORE_SYNC_H
#define SHOAL_CORE_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "core/replication.h"
#include "shoal/bytes.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define SYNC_VERSION 1
#define SYNC_BLOB_HASH_BYTES 32

enum sync_type {
	SYNC_DIGEST = 1,
	SYNC_DATA = 2,
	SYNC_BLOB_REQ = 3,
	SYNC_BLOB_CHUNK = 4,
	SYNC_BLOB_NONE = 5,
	SYNC_ROOT = 6,
};

/* "digest", "data", "blob_req", "blob_chunk", "blob_none", "root";
 * "unknown". */
const char *sync_type_name(int type);

enum sync_flags {
	SYNC_F_HEADS_DONE = 1,
	SYNC_F_WANTS_DONE = 2,
	SYNC_F_FIN = 4,
};

#define SYNC_HEADER_BYTES 2
#define SYNC_HEAD_BYTES (SHOAL_NODE_ID_BYTES + 8 + 8 + 8 + RECORD_HASH_BYTES)
#define SYNC_WANT_BYTES (SHOAL_NODE_ID_BYTES + 8 + 4)
#define SYNC_DATA_OVERHEAD_BYTES (SYNC_HEADER_BYTES + 1 + 3 * 2)
#define SYNC_DIGEST_MSG_BYTES \
	(SYNC_HEADER_BYTES + 2 + SHOAL_SYNC_BUCKETS * SHOAL_SYNC_DIGEST_BYTES)
#define SYNC_ROOT_MSG_BYTES (SYNC_HEADER_BYTES + SHOAL_SYNC_DIGEST_BYTES)
#define SYNC_BLOB_CHUNK_OVERHEAD_BYTES (SYNC_HEADER_BYTES + 32 + 8 + 8 + 4)
/* Most records one DATA message can carry (smallest records). */
#define SYNC_RECORDS_PER_MSG_MAX                                        \
	((SHOAL_SYNC_MSG_BYTES_MAX - SYNC_DATA_OVERHEAD_BYTES) /             \
	 (2 + SHOAL_RECORD_HEADER_BYTES + SHOAL_RECORD_SIG_BYTES))

struct sync_head {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq_min;
	uint64_t seq_max;
	uint64_t count;
	uint8_t hash[RECORD_HASH_BYTES];
};

struct sync_want {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t from_seq;
	uint32_t count;
};

/* A decoded message. Pointers and readers point into the decoded buffer. */
struct sync_msg {
	uint8_t type;                 /* enum sync_type */
	/* DIGEST: SHOAL_SYNC_BUCKETS × SHOAL_SYNC_DIGEST_BYTES */
	const uint8_t *digest;
	/* ROOT: SHOAL_SYNC_DIGEST_BYTES */
	const uint8_t *root;
	/* DATA: sections, every entry already validated; walk them with
	 * sync_next_head / sync_next_want / sync_next_record. */
	uint8_t flags;
	uint16_t heads_count, wants_count, records_count;
	struct rd heads, wants, records;
	/* BLOB_REQ (len = requested), BLOB_CHUNK (len = data length), BLOB_NONE */
	uint8_t hash[SYNC_BLOB_HASH_BYTES];
	uint64_t offset;
	uint64_t total;
	uint32_t len;
	const uint8_t *data;
};

/* Decodes and validates one whole message (every entry of a DATA message,
 * records included, structure only). Returns 0, SHOAL_ETOOBIG (over
 * SHOAL_SYNC_MSG_BYTES_MAX), SHOAL_ETRUNC, SHOAL_EVERSION, SHOAL_EPROTO
 * (unknown type, a bound or field rule above), SHOAL_ETRAILING. */
int sync_decode(const uint8_t *p, size_t len, struct sync_msg *m) SHOAL_MUST_CHECK;

/* The next entry of a decoded DATA message; false after the last. */
bool sync_next_head(struct sync_msg *m, struct sync_head *h);
bool sync_next_want(struct sync_msg *m, struct sync_want *w);
bool sync_next_record(struct sync_msg *m, struct record *r);

/* True if h satisfies the field rules above. */
bool sync_head_valid(const struct sync_head *h);
bool sync_want_valid(const struct sync_want *w);

/* Encoders append to w (its error flag is set if it does not fit). */
void sync_put_digest(struct wr *w,
		     const uint8_t digest[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES]);
void sync_put_root(struct wr *w, const uint8_t root[SHOAL_SYNC_DIGEST_BYTES]);
/* The root of a set of bucket digests (the ROOT message's field). */
void sync_root_of(const uint8_t digest[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES],
		  uint8_t root[SHOAL_SYNC_DIGEST_BYTES]);
void sync_put_blob_req(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES],
		       uint64_t offset, uint32_t len);
void sync_put_blob_chunk(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES],
			 uint64_t offset, uint64_t total, const uint8_t *data,
			 uint32_t len);
void sync_put_blob_none(struct wr *w, const uint8_t hash[SYNC_BLOB_HASH_BYTES]);

/* DATA builder: sections in order (heads, then wants, then records); an
 * add returns false, writing nothing, when the entry does not fit in cap
 * together with the counts still to come. */
struct sync_data_wr {
	struct wr w;
	size_t count_at;   /* offset of the open section's count */
	uint8_t section;   /* 0 heads, 1 wants, 2 records */
	uint16_t n;        /* entries in the open section */
};

void sync_data_begin(struct sync_data_wr *b, uint8_t *buf, size_t cap);
bool sync_data_add_head(struct sync_data_wr *b, const struct sync_head *h);
bool sync_data_add_want(struct sync_data_wr *b, const struct sync_want *w);
bool sync_data_add_record(struct sync_data_wr *b, const struct record *r);
/* Closes the message with flags; returns its length. */
size_t sync_data_end(struct sync_data_wr *b, uint8_t flags);

/* Bytes a blob server sends for a request: min(len, total - offset), or 0
 * past the end. */
uint32_t sync_blob_chunk_len(uint64_t total, uint64_t offset, uint32_t len);

/* --- the session ----------------------------------------------------------- */

enum sync_role {
	SYNC_INITIATOR = 1,
	SYNC_RESPONDER = 2,
};

struct sync_stats {
	uint64_t msgs_sent, msgs_received;
	uint64_t bytes_sent, bytes_received;
	uint64_t buckets_differing;
	uint64_t heads_sent, heads_received;
	uint64_t wants_sent, wants_received;
	uint64_t records_wanted;      /* seqs we asked for (upper bound) */
	uint64_t records_sent, records_received;
	uint64_t records_new;         /* NEW + NEW_GAP */
	uint64_t records_dup;
	uint64_t records_equivocation;
	uint64_t records_stale;
	uint64_t records_refused;     /* store said SHOAL_EFULL */
};

struct sync_session;

/* A session over one local store (borrowed; on the caller's thread).
 * Returns NULL on ENOMEM. */
struct sync_session *sync_session_new(enum sync_role role,
				      const struct repl_store_ops *ops, void *store);
void sync_session_free(struct sync_session *s);

/* Initiator: takes the snapshot of local heads and gives the first message
 * (*out valid until the next call on s). SHOAL_ESTATE for a responder or a
 * second call; a store error (then the session is failed). */
int sync_session_start(struct sync_session *s, const uint8_t **out,
		       size_t *out_len) SHOAL_MUST_CHECK;

/* Called with each message received from the peer (a responder's first
 * call gets the initiator's ROOT, or a DIGEST). On 0, *out_len is the length of the
 * reply to send (0: send nothing); after sending it, stop if
 * sync_session_done(). Errors: the decoder's, SHOAL_EPROTO (peer broke the
 * protocol), SHOAL_EBADSIG (peer served a forged record; nothing of it was
 * stored), SHOAL_ETOOBIG (a session bound), SHOAL_ESTATE (called when done
 * or failed), a store error. After an error the session is failed: send an
 * ERROR frame and close. Records stored before the error stay stored. */
int sync_session_recv(struct sync_session *s, const uint8_t *msg, size_t len,
		      const uint8_t **out, size_t *out_len) SHOAL_MUST_CHECK;

bool sync_session_done(const struct sync_session *s);
bool sync_session_failed(const struct sync_session *s);

/* Pops the next event produced by the last sync_session_recv (records newly
 * stored, equivocations refused); their from_gid is REPL_NONE and their
 * source REPL_SRC_SYNC. Events not popped before the next recv are lost. */
bool sync_session_poll(struct sync_session *s, struct repl_event *ev);

const struct sync_stats *sync_session_stats(const struct sync_session *s);

/* Runs a whole session between two local stores in this thread (tests and
 * the simulator: no stream, messages handed over directly). Each side's
 * events go to on_event (may be NULL) as they happen. Returns 0 when both
 * sides finished, or the first error of either side. stats_a/stats_b may
 * be NULL. a is the initiator. */
typedef void (*sync_event_fn)(void *arg, enum sync_role side, const struct repl_event *ev);
int sync_run_local(const struct repl_store_ops *ops_a, void *store_a,
		   const struct repl_store_ops *ops_b, void *store_b,
		   sync_event_fn on_event, void *arg, struct sync_stats *stats_a,
		   struct sync_stats *stats_b) SHOAL_MUST_CHECK;

#endif
