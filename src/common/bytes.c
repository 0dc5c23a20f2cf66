/* bytes.c — bounded big-endian reader and sticky-error writer (see bytes.h). */
#include "shoal/bytes.h"

#include <assert.h>
#include <string.h>

static bool take(struct rd *r, size_t n, const uint8_t **out)
{
	if (r->len < n)
		return false;
	*out = r->p;
	r->p += n;
	r->len -= n;
	return true;
}

bool rd_u8(struct rd *r, uint8_t *out)
{
	const uint8_t *p;
	if (!take(r, 1, &p))
		return false;
	*out = p[0];
	return true;
}

bool rd_u16(struct rd *r, uint16_t *out)
{
	const uint8_t *p;
	if (!take(r, 2, &p))
		return false;
	*out = (uint16_t)((p[0] << 8) | p[1]);
	return true;
}

bool rd_u32(struct rd *r, uint32_t *out)
{
	const uint8_t *p;
	if (!take(r, 4, &p))
		return false;
	*out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
	return true;
}

bool rd_u64(struct rd *r, uint64_t *out)
{
	const uint8_t *p;
	if (!take(r, 8, &p))
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	*out = v;
	return true;
}

bool rd_bytes(struct rd *r, size_t n, const uint8_t **out)
{
	return take(r, n, out);
}

bool rd_copy(struct rd *r, void *out, size_t n)
{
	const uint8_t *p;
	if (!take(r, n, &p))
		return false;
	if (n)
		memcpy(out, p, n);
	return true;
}

bool rd_skip(struct rd *r, size_t n)
{
	const uint8_t *p;
	return take(r, n, &p);
}

static bool len_prefixed(struct rd *r, size_t n, struct rd *sub)
{
	struct rd save = *r;
	if (!take(r, n, &sub->p)) {
		*r = save;
		return false;
	}
	sub->len = n;
	return true;
}

bool rd_len8(struct rd *r, struct rd *sub)
{
	struct rd save = *r;
	uint8_t n;
	if (!rd_u8(r, &n) || !len_prefixed(r, n, sub)) {
		*r = save;
		return false;
	}
	return true;
}

bool rd_len16(struct rd *r, struct rd *sub)
{
	struct rd save = *r;
	uint16_t n;
	if (!rd_u16(r, &n) || !len_prefixed(r, n, sub)) {
		*r = save;
		return false;
	}
	return true;
}

bool rd_len32(struct rd *r, struct rd *sub)
{
	struct rd save = *r;
	uint32_t n;
	if (!rd_u32(r, &n) || !len_prefixed(r, n, sub)) {
		*r = save;
		return false;
	}
	return true;
}

bool rd_str8(struct rd *r, char *out, size_t max)
{
	struct rd save = *r, sub;
	if (!rd_len8(r, &sub) || sub.len > max)
		goto fail;
	for (size_t i = 0; i < sub.len; i++)
		if (sub.p[i] < 0x20 || sub.p[i] == 0x7f)
			goto fail;
	memcpy(out, sub.p, sub.len);
	out[sub.len] = '\0';
	return true;
fail:
	*r = save;
	return false;
}

static uint8_t *room(struct wr *w, size_t n)
{
	if (w->err || w->cap - w->len < n) {
		w->err = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void wr_u8(struct wr *w, uint8_t v)
{
	uint8_t *p = room(w, 1);
	if (p)
		p[0] = v;
}

void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t *p = room(w, 2);
	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t *p = room(w, 4);
	if (p)
		for (int i = 0; i < 4; i++)
			p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void wr_u64(struct wr *w, uint64_t v)
{
	uint8_t *p = room(w, 8);
	if (p)
		for (int i = 0; i < 8; i++)
			p[i] = (uint8_t)(v >> (56 - 8 * i));
}

void wr_bytes(struct wr *w, const void *src, size_t n)
{
	uint8_t *p = room(w, n);
	if (p && n)
		memcpy(p, src, n);
}

void wr_str8(struct wr *w, const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max || n > 255) {
		w->err = true;
		return;
	}
	wr_u8(w, (uint8_t)n);
	wr_bytes(w, s, n);
}

size_t wr_begin16(struct wr *w)
{
	size_t mark = w->len;
	wr_u16(w, 0);
	return mark;
}

void wr_end16(struct wr *w, size_t mark)
{
	if (w->err)
		return;
	assert(mark + 2 <= w->len);
	size_t n = w->len - mark - 2;
	if (n > 0xffff) {
		w->err = true;
		return;
	}
	w->buf[mark] = (uint8_t)(n >> 8);
	w->buf[mark + 1] = (uint8_t)n;
}
