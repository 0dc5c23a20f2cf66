/*
 * memfeed.h — an in-memory feed store with the semantics of store/feed.h,
 * behind struct repl_store_ops, for unit tests and the simulator (many
 * stores in one process, no SQLite).
 *
 * Same guarantees as the SQLite feed store: every stored record verifies;
 * at most one record per (author, seq), the first seen stays; held
 * neighbours seq, seq+1 always link; a contradicting record (same seq, or
 * a broken link) is refused as REPL_PUT_EQUIVOCATION and counted as
 * evidence; a record at or below what pruning dropped and not held is
 * REPL_PUT_STALE; bounds (records, records per author, authors:
 * SHOAL_FEED_*_MAX) give SHOAL_EFULL. A byte-identical copy of a held
 * record is REPL_PUT_DUP without a signature check (it is the verified
 * record), so duplicates are cheap.
 *
 * Not thread-safe: one thread per store (the simulator is single-threaded).
 */
#ifndef SHOAL_CORE_MEMFEED_H
#define SHOAL_CORE_MEMFEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/record.h"
#include "core/replication.h"
#include "shoal/error.h"

struct memfeed;

struct memfeed_stats {
	uint64_t put_new;
	uint64_t put_gap;
	uint64_t put_dup;
	uint64_t put_equivocation; /* same seq or broken link: evidence */
	uint64_t put_stale;
	uint64_t put_bad_sig;
	uint64_t put_invalid;      /* structure */
	uint64_t put_full;
	uint64_t pruned;
};

/* The store's ops; pass the struct memfeed * as the store argument. */
extern const struct repl_store_ops memfeed_ops;

/* records_max: total records held (0: SHOAL_FEED_RECORDS_MAX). */
struct memfeed *memfeed_new(uint64_t records_max);
void memfeed_free(struct memfeed *m);

/* A deep copy of m (records, retention points, stats), or NULL on ENOMEM:
 * a fixture built once (signatures checked once) and cloned per run. */
struct memfeed *memfeed_clone(const struct memfeed *m);

/* The same check-and-store as memfeed_ops.put. */
int memfeed_put(struct memfeed *m, const struct record *r, enum repl_put *res) SHOAL_MUST_CHECK;

/* Appends to the feed of sk's public half: seq = head + 1, prev = head
 * hash, signed. *out (may be NULL) gets the record. */
int memfeed_append(struct memfeed *m, const uint8_t sk[64], uint8_t kind,
		   uint64_t time_ms, const void *body, size_t len,
		   struct record *out) SHOAL_MUST_CHECK;

/* Retention: drops author's records with seq < below_seq, always keeping
 * the head; records pruned_through. Returns how many were dropped. */
size_t memfeed_prune(struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		     uint64_t below_seq);

/* 0 and *out (may be NULL), or SHOAL_ENOTFOUND. */
int memfeed_get(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		uint64_t seq, struct record *out);
bool memfeed_has(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 uint64_t seq);
/* The author's head entry; SHOAL_ENOTFOUND if nothing is held. */
int memfeed_head(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 struct repl_head *out);

size_t memfeed_records(const struct memfeed *m);
size_t memfeed_authors(const struct memfeed *m);
const struct memfeed_stats *memfeed_stats(const struct memfeed *m);

#endif
