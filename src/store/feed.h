/*
 * feed.h — the feed store: every author's signed, hash-linked feed of
 * records (DESIGN §4.4) in DATA/state.db, with the evidence of authors who
 * signed contradicting records.
 *
 * One `struct feed` is one SQLite connection of its own (WAL) and one mutex:
 * it may be shared by several threads (the agent's loop, sync threads). The
 * CLI opens the same file read-only with feed_open_readonly() while the
 * agent runs.
 *
 * What the store guarantees, whatever order records arrive in:
 *   - every stored record carries a valid signature by its author;
 *   - at most one record per (author, seq): the first seen stays;
 *   - any two held records at seq s and s+1 of one author are linked
 *     (prev of s+1 == record_hash of s): a record that would break a link
 *     is refused. A record whose neighbours are not held yet is stored and
 *     links when they arrive; a gap never blocks a later record;
 *   - a record that contradicts a held one (same seq, other content; or a
 *     broken link) is signed by its author, so it is kept as evidence and
 *     the author is marked equivocating;
 *   - counts are bounded (struct feed_limits, at most the limits.h bounds).
 *
 * Durability: feed_append() (the node's own feed) commits with
 * synchronous=FULL, so a record it returns survives power loss and may be
 * announced. Received records (feed_put) commit with synchronous=NORMAL: a
 * process crash loses nothing, power loss may lose the last few commits,
 * never a half-written one, and anti-entropy fetches them again.
 *
 * Errors: functions return 0 or a negative SHOAL_E* code; on error nothing
 * is changed. feed_errmsg() gives the calling thread's last message, which
 * names the database path and what failed.
 *
 * Tables (schema versioned in feed_meta, independently of store.c's
 * user_version, so the two modules migrate the shared file on their own):
 *   feed_records   author, seq, hash, prev, kind, time_ms, body, sig,
 *                  received_ms
 *   feed_authors   per author: lowest and highest seq held, count, head
 *                  hash, pruned_through, equivocating flag
 *   feed_evidence  id, kind, author, seq, held record, offending record
 *                  (both encoded and signed), received_ms
 *   feed_meta      schema version and total counters
 */
#ifndef SHOAL_STORE_FEED_H
#define SHOAL_STORE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define FEED_ERR_BYTES 512 /* a good size for the err buffers below */

/* The largest seq the store keeps (SQLite integers are signed 64-bit);
 * a record above it is refused with SHOAL_ETOOBIG. */
#define FEED_SEQ_MAX ((uint64_t)INT64_MAX)

struct feed;

/* What feed_put did with a record. */
enum feed_put_result {
	FEED_NEW = 1,      /* stored; seq-1 is held (or seq is 1, or seq-1 was pruned) */
	FEED_NEW_GAP,      /* stored; seq-1 is not held yet: fetch it (feed_gaps) */
	FEED_DUP,          /* already held (same content): nothing changed */
	FEED_EQUIVOCATION, /* another record with this (author, seq) is held: not
			    * stored; both kept as evidence, author marked */
	FEED_BROKEN_LINK,  /* (returned with SHOAL_EPROTO) does not link with a
			    * held neighbour: not stored; both kept as evidence,
			    * author marked */
	FEED_STALE,        /* seq at or below what retention pruned for this author
			    * and not held: not stored (it would be pruned again) */
};
/* "new", "new_gap", "dup", "equivocation", "broken_link", "stale". */
const char *feed_put_result_name(enum feed_put_result r);

enum feed_evidence_kind {
	FEED_EVIDENCE_EQUIVOCATION = 1, /* two records with one (author, seq) */
	FEED_EVIDENCE_BROKEN_LINK = 2,  /* two records of adjacent seqs that do not link */
};
/* "equivocation", "broken_link"; "unknown" otherwise. */
const char *feed_evidence_kind_name(int kind);

/* Bounds a store enforces. Defaults are the limits.h maxima; a caller may
 * lower them (configuration, tests), never raise them. */
struct feed_limits {
	uint64_t records_max;            /* <= SHOAL_FEED_RECORDS_MAX */
	uint64_t records_per_author_max; /* <= SHOAL_FEED_RECORDS_PER_AUTHOR_MAX */
	uint64_t evidence_max;           /* <= SHOAL_FEED_EVIDENCE_MAX */
	uint64_t evidence_per_author_max;/* <= SHOAL_FEED_EVIDENCE_PER_AUTHOR_MAX */
	uint64_t authors_max;            /* <= SHOAL_FEED_AUTHORS_MAX */
};

/* One author's feed as held here: what anti-entropy digests are built on. */
struct feed_head {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq_min;        /* lowest seq held */
	uint64_t seq_max;        /* highest seq held: the head */
	uint64_t count;          /* records held; < seq_max - seq_min + 1 means gaps */
	uint8_t hash[RECORD_HASH_BYTES]; /* record_hash of the head */
	uint64_t pruned_through; /* retention pruned seqs <= this (0: none) */
	bool equivocating;       /* evidence against this author is held */
};

/* One stored record with what the store knows about it. */
struct feed_entry {
	struct record rec;
	uint8_t hash[RECORD_HASH_BYTES];
	uint64_t received_ms; /* when this node stored it (its own clock) */
};

/* A missing range [first, last] inside an author's held seqs. */
struct feed_gap {
	uint64_t first;
	uint64_t last;
};

/* Filter and cursor for feed_list. Zero it, then set what you need. */
struct feed_filter {
	bool by_author;
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint8_t kind; /* 0: any kind */
	/* Cursor: list entries after (after_author, after_seq) in (author,
	 * seq) order; set has_cursor false for the first page and copy the
	 * last entry's author and seq to get the next one. */
	bool has_cursor;
	uint8_t after_author[SHOAL_NODE_ID_BYTES];
	uint64_t after_seq;
};

/* One piece of evidence: two records signed by one author that cannot both
 * belong to an honest feed. */
struct feed_evidence {
	int64_t id; /* grows with each new row; cursor for feed_evidence_list */
	enum feed_evidence_kind kind;
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq;            /* seq of the offending record */
	struct record held;      /* the record held when it arrived (same seq,
				  * or the neighbour it does not link with) */
	struct record offending; /* the record that was refused */
	uint64_t received_ms;
};

struct feed_stats {
	/* What is stored now. */
	uint64_t records;
	uint64_t authors;
	uint64_t evidence;
	uint64_t equivocating_authors;
	/* What this struct feed did since it was opened. */
	uint64_t put_new;           /* FEED_NEW */
	uint64_t put_gap;           /* FEED_NEW_GAP */
	uint64_t put_dup;
	uint64_t put_equivocation;
	uint64_t put_broken_link;
	uint64_t put_stale;
	uint64_t put_bad_sig;       /* SHOAL_EBADSIG */
	uint64_t put_invalid;       /* SHOAL_EPROTO / SHOAL_ETOOBIG before the signature */
	uint64_t put_full;          /* SHOAL_EFULL */
	uint64_t evidence_dropped;  /* evidence not kept: evidence bounds reached */
	uint64_t appended;          /* feed_append */
	uint64_t pruned;            /* rows deleted by feed_prune */
};

/* Totals of one feed_verify run. */
struct feed_verify_result {
	uint64_t records;  /* rows checked */
	uint64_t authors;
	uint64_t evidence; /* evidence rows checked */
	uint64_t equivocating_authors;
	uint64_t faults;   /* problems reported through the callback */
};

/* Called by feed_verify for each fault: the author and seq concerned (seq 0
 * when the fault is about the author as a whole) and what is wrong, e.g.
 * "signature does not verify". Runs with the store locked: it must not call
 * into the same struct feed. */
typedef void (*feed_fault_fn)(void *ctx, const uint8_t author[SHOAL_NODE_ID_BYTES],
			      uint64_t seq, const char *what);

/* --- opening ------------------------------------------------------------- */

/* Opens (creating if needed) DATA/state.db for reading and writing: creates
 * DATA (mode 0700) and the file (mode 0600) if missing, WAL, creates or
 * migrates the feed tables. Returns 0 and *out, or SHOAL_EDB /
 * SHOAL_EVERSION (feed schema newer than this binary) / SHOAL_ENOMEM /
 * SHOAL_EINVAL with err set. Limits start at the limits.h maxima. */
int feed_open(const char *data_dir, struct feed **out, char *err,
	      size_t errlen) SHOAL_MUST_CHECK;

/* Opens DATA/state.db read-only, creating nothing: for `shoal log`, also
 * while an agent writes it. SHOAL_ENOTFOUND if the file does not exist or
 * holds no feed tables yet (err says which); writes on such a handle fail
 * with SHOAL_ESTATE. */
int feed_open_readonly(const char *data_dir, struct feed **out, char *err,
		       size_t errlen) SHOAL_MUST_CHECK;

/* Closes the store; NULL is a no-op. No other thread may be using it. */
void feed_close(struct feed *f);

/* The database file's path (for messages). */
const char *feed_path(const struct feed *f);

/* The last error message set by a failing feed_* call in this thread ("" if
 * none). */
const char *feed_errmsg(void);

/* Fills l with the limits.h maxima. */
void feed_limits_default(struct feed_limits *l);
/* Lowers the bounds f enforces. SHOAL_EINVAL if a value is 0 or above its
 * limits.h maximum (nothing changed then). Rows already stored are kept. */
int feed_set_limits(struct feed *f, const struct feed_limits *l) SHOAL_MUST_CHECK;

/* --- writing ------------------------------------------------------------- */

/* Stores a record received from anyone, after checking it. In order:
 *   structure (kind known, seq >= 1, seq 1 has a zero prev, body bound):
 *     SHOAL_EPROTO; seq > FEED_SEQ_MAX: SHOAL_ETOOBIG;
 *   signature: SHOAL_EBADSIG, nothing stored;
 *   same (author, seq) held: FEED_DUP, or FEED_EQUIVOCATION (returns 0);
 *   seq pruned by retention and not held: FEED_STALE (returns 0);
 *   links with held seq-1 and seq+1: else SHOAL_EPROTO with
 *     *res = FEED_BROKEN_LINK, evidence kept, author marked;
 *   bounds: SHOAL_EFULL (per-author or total records, or a new author
 *     beyond authors_max), nothing stored;
 *   then stored: FEED_NEW or FEED_NEW_GAP.
 * now_ms is this node's wall clock, recorded as received_ms (retention is
 * by received time, so an author's clock cannot keep its records alive).
 * *res is set whenever the record was examined past its signature. The
 * caller is responsible for whether the author is an admitted node. */
int feed_put(struct feed *f, const struct record *r, uint64_t now_ms,
	     enum feed_put_result *res) SHOAL_MUST_CHECK;

/* Appends to the node's own feed (author = sk's public half): seq = head +
 * 1 (1 for a new feed), prev = head hash, signed with sk, committed with
 * synchronous=FULL before it returns. *out (if not NULL) gets the record as
 * stored. SHOAL_EINVAL for an unknown kind or len > SHOAL_RECORD_BODY_MAX,
 * SHOAL_EFULL at a bound, SHOAL_ETOOBIG if the seq would pass FEED_SEQ_MAX.
 * time_ms is informational (the author's clock). */
int feed_append(struct feed *f, const uint8_t sk[64], uint8_t kind, uint64_t time_ms,
		const void *body, size_t len, struct record *out) SHOAL_MUST_CHECK;

/* Deletes records received before now_ms - retention_ms, except each
 * author's head (its highest seq), which is always kept; evidence is kept.
 * Works in transactions of SHOAL_FEED_PRUNE_BATCH_MAX rows, releasing the
 * lock between them, so other threads are not held up. *pruned (if not
 * NULL) gets the number of records deleted. */
int feed_prune(struct feed *f, uint64_t now_ms, uint64_t retention_ms,
	       uint64_t *pruned) SHOAL_MUST_CHECK;

/* --- reading ------------------------------------------------------------- */

/* Reads (author, seq): 0, or SHOAL_ENOTFOUND. out may be NULL to test
 * presence. */
int feed_get(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t seq,
	     struct feed_entry *out) SHOAL_MUST_CHECK;

/* An author's head: highest seq held and its hash; SHOAL_ENOTFOUND if no
 * record of the author is held. hash may be NULL. */
int feed_head(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t *seq,
	      uint8_t hash[RECORD_HASH_BYTES]) SHOAL_MUST_CHECK;

/* One struct feed_head per author held, ordered by author id, in a malloc'd
 * array the caller frees (NULL when *n is 0). Reads one row per author, not
 * the records. */
int feed_heads(struct feed *f, struct feed_head **out, size_t *n) SHOAL_MUST_CHECK;

/* Up to max (<= SHOAL_FEED_RANGE_MAX) held records of author with seq >=
 * from_seq, in seq order, skipping gaps, into out[0..*n). SHOAL_EINVAL for
 * max above the bound. */
int feed_range(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES],
	       uint64_t from_seq, size_t max, struct feed_entry *out,
	       size_t *n) SHOAL_MUST_CHECK;

/* Missing ranges of author's feed between its lowest and highest held seq,
 * starting at from_seq, up to max (<= SHOAL_FEED_GAPS_MAX) ranges, in
 * order. *n is 0 when the held part is contiguous. O(records held from
 * from_seq). */
int feed_gaps(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES],
	      uint64_t from_seq, size_t max, struct feed_gap *out,
	      size_t *n) SHOAL_MUST_CHECK;

/* One page of records matching flt, in (author, seq) order, up to max (<=
 * SHOAL_FEED_RANGE_MAX) into out[0..*n); *n < max means the last page. */
int feed_list(struct feed *f, const struct feed_filter *flt, size_t max,
	      struct feed_entry *out, size_t *n) SHOAL_MUST_CHECK;

/* One page of evidence with id > after_id (0 for the first page), by id,
 * up to max (<= SHOAL_FEED_RANGE_MAX); by_author NULL for all authors. A
 * row that does not decode is SHOAL_EDB (feed_verify reports it). */
int feed_evidence_list(struct feed *f, const uint8_t *by_author, int64_t after_id,
		       size_t max, struct feed_evidence *out, size_t *n) SHOAL_MUST_CHECK;

/* Counts what is stored and what f did since it was opened. */
int feed_stats(struct feed *f, struct feed_stats *out) SHOAL_MUST_CHECK;

/* Checks every stored row from scratch: each record decodes within bounds,
 * its signature verifies, its stored hash is its record_hash, seq 1 has a
 * zero prev, each pair of held seqs s, s+1 links; each author's summary
 * (lowest, highest, count, head hash) matches its records; each evidence
 * row holds two records signed by its author that really conflict. Calls
 * fault (may be NULL) once per problem; returns 0 whether or not faults
 * were found (see out->faults), or an error if the database cannot be
 * read. Reads the whole store under the lock: an audit, not a hot path. */
int feed_verify(struct feed *f, feed_fault_fn fault, void *ctx,
		struct feed_verify_result *out) SHOAL_MUST_CHECK;

/* The name of a node from the membership snapshot in the same file
 * (store.h's members table) into name (SHOAL_NAME_BYTES_MAX + 1 bytes):
 * 0, or SHOAL_ENOTFOUND if the node or the table is absent. */
int feed_author_name(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES],
		     char name[SHOAL_NAME_BYTES_MAX + 1]) SHOAL_MUST_CHECK;

#endif
