/*
 * record.h — signed feed records (DESIGN §4.4).
 *
 * Everything the fleet shares durably is a record in its author's
 * append-only feed:
 *
 *   record = author(32) | seq(u64) | prev(32) | kind(u8) | time_ms(u64)
 *          | body_len(u32) | body | sig(64)
 *
 * Integers are big-endian. seq starts at 1; the first record's prev is all
 * zeros, every later record's prev is record_hash() of the record before it
 * in the same feed. sig is Ed25519 by the author's node key over
 * "shoal/record/v1" || the encoding up to the end of body, so a record
 * signature can never be replayed as another kind of shoal statement.
 *
 * This file is pure (no clock, no I/O): decoding checks structure only;
 * record_verify() checks the signature. Callers verify before they act.
 */
#ifndef SHOAL_CORE_RECORD_H
#define SHOAL_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/bytes.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define RECORD_HASH_BYTES 32
#define RECORD_SIG_DOMAIN "shoal/record/v1"

enum record_kind {
	RECORD_HEALTH = 1,   /* release, state, detail */
	RECORD_ALERT = 2,    /* rule, sha256, path, severity, action */
	RECORD_HALT = 3,     /* by publishers */
	RECORD_RESUME = 4,   /* by publishers */
	RECORD_ANNOUNCE = 5, /* a TUF metadata version is available */
	RECORD_KIND_MAX_ = RECORD_ANNOUNCE,
};

/* "health", "alert", ...; "unknown" for other values. */
const char *record_kind_name(uint8_t kind);
/* Parses a kind name; returns 0 if unknown. */
uint8_t record_kind_from_name(const char *name);

struct record {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq;
	uint8_t prev[RECORD_HASH_BYTES];
	uint8_t kind;
	uint64_t time_ms;
	uint32_t body_len;
	uint8_t body[SHOAL_RECORD_BODY_MAX];
	uint8_t sig[SHOAL_RECORD_SIG_BYTES];
};

/* Bytes record_encode writes for r. */
size_t record_size(const struct record *r);

/* Appends r's encoding (signature included) to w; w's error flag is set if
 * it does not fit. */
void record_encode(struct wr *w, const struct record *r);

/* Reads one record from r (structure only: known kind, seq >= 1, body
 * within SHOAL_RECORD_BODY_MAX, seq 1 has a zero prev). Returns 0,
 * SHOAL_ETRUNC (short input) or SHOAL_EPROTO; on error *out is unspecified
 * and the reader's position is unspecified. */
int record_decode(struct rd *r, struct record *out) SHOAL_MUST_CHECK;

/* Decodes exactly one record filling buf (trailing bytes: SHOAL_ETRAILING). */
int record_decode_buf(const uint8_t *buf, size_t len, struct record *out) SHOAL_MUST_CHECK;

/* Signs r in place with the author's Ed25519 secret key (64 bytes, as
 * libsodium makes them); r->author must be its public half. */
void record_sign(struct record *r, const uint8_t sk[64]);

/* Returns 0 if r->sig is a valid signature by r->author, else SHOAL_EBADSIG. */
int record_verify(const struct record *r) SHOAL_MUST_CHECK;

/* SHA-256 of the whole encoding (signature included): the value the next
 * record's prev carries, and the record's identity in digests. */
void record_hash(const struct record *r, uint8_t out[RECORD_HASH_BYTES]);

/* Fills the header of the record that follows `head` in the same feed
 * (head NULL: the feed's first record): author, seq, prev. */
void record_next(struct record *r, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 const struct record *head);

#endif
