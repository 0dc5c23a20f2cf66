/*
 * bytes.h — the one bounded reader and writer for every codec in shoal.
 *
 * A reader is a cursor over (ptr, len). Every get checks what is left and
 * fails closed: on failure it returns false and the cursor is unchanged.
 * Integers are big-endian. Modelled on BoringSSL's CBS/CBB.
 *
 * A writer appends into a caller-owned buffer of fixed capacity. Its error
 * is sticky: after the first overflow every put is a no-op and wr_ok() is
 * false, so an encoder can put everything and check once.
 */
#ifndef SHOAL_BYTES_H
#define SHOAL_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

struct rd {
	const uint8_t *p;
	size_t len;
};

static inline struct rd rd_init(const void *p, size_t len)
{
	struct rd r = {(const uint8_t *)p, len};
	return r;
}
static inline size_t rd_left(const struct rd *r) { return r->len; }
static inline bool rd_empty(const struct rd *r) { return r->len == 0; }

bool rd_u8(struct rd *r, uint8_t *out) SHOAL_MUST_CHECK;
bool rd_u16(struct rd *r, uint16_t *out) SHOAL_MUST_CHECK;
bool rd_u32(struct rd *r, uint32_t *out) SHOAL_MUST_CHECK;
bool rd_u64(struct rd *r, uint64_t *out) SHOAL_MUST_CHECK;
/* Points *out at the next n bytes (no copy). */
bool rd_bytes(struct rd *r, size_t n, const uint8_t **out) SHOAL_MUST_CHECK;
/* Copies the next n bytes into out. */
bool rd_copy(struct rd *r, void *out, size_t n) SHOAL_MUST_CHECK;
/* Skips n bytes. */
bool rd_skip(struct rd *r, size_t n) SHOAL_MUST_CHECK;
/* Reads a u8/u16/u32 length prefix, then a sub-reader over that many bytes. */
bool rd_len8(struct rd *r, struct rd *sub) SHOAL_MUST_CHECK;
bool rd_len16(struct rd *r, struct rd *sub) SHOAL_MUST_CHECK;
bool rd_len32(struct rd *r, struct rd *sub) SHOAL_MUST_CHECK;
/* Reads a u8-length-prefixed string of at most max bytes with no NUL or
 * control bytes into out (NUL-terminated; out must hold max + 1). */
bool rd_str8(struct rd *r, char *out, size_t max) SHOAL_MUST_CHECK;

struct wr {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool err;
};

static inline struct wr wr_init(void *buf, size_t cap)
{
	struct wr w = {(uint8_t *)buf, cap, 0, false};
	return w;
}
static inline bool wr_ok(const struct wr *w) { return !w->err; }

void wr_u8(struct wr *w, uint8_t v);
void wr_u16(struct wr *w, uint16_t v);
void wr_u32(struct wr *w, uint32_t v);
void wr_u64(struct wr *w, uint64_t v);
void wr_bytes(struct wr *w, const void *p, size_t n);
/* Writes strlen(s) as u8 then s; sets the error if longer than max. */
void wr_str8(struct wr *w, const char *s, size_t max);
/* Reserves a u16 length prefix; wr_end16 fills it with the bytes since. */
size_t wr_begin16(struct wr *w);
void wr_end16(struct wr *w, size_t mark);

#endif
