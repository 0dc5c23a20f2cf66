/* record.c — signed feed record codec, signing and hashing (see record.h). */
#include "core/record.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

static const char *const kind_names[] = {
	[RECORD_HEALTH] = "health", [RECORD_ALERT] = "alert",
	[RECORD_HALT] = "halt",     [RECORD_RESUME] = "resume",
	[RECORD_ANNOUNCE] = "announce",
};

const char *record_kind_name(uint8_t kind)
{
	if (kind == 0 || kind > RECORD_KIND_MAX_)
		return "unknown";
	return kind_names[kind];
}

uint8_t record_kind_from_name(const char *name)
{
	assert(name);
	for (uint8_t k = 1; k <= RECORD_KIND_MAX_; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return 0;
}

size_t record_size(const struct record *r)
{
	assert(r && r->body_len <= SHOAL_RECORD_BODY_MAX);
	return SHOAL_RECORD_HEADER_BYTES + r->body_len + SHOAL_RECORD_SIG_BYTES;
}

/* The signed part: everything up to the end of the body. */
static void put_signed(struct wr *w, const struct record *r)
{
	wr_bytes(w, r->author, sizeof(r->author));
	wr_u64(w, r->seq);
	wr_bytes(w, r->prev, sizeof(r->prev));
	wr_u8(w, r->kind);
	wr_u64(w, r->time_ms);
	wr_u32(w, r->body_len);
	wr_bytes(w, r->body, r->body_len);
}

void record_encode(struct wr *w, const struct record *r)
{
	assert(w && r);
	assert(r->body_len <= SHOAL_RECORD_BODY_MAX);
	put_signed(w, r);
	wr_bytes(w, r->sig, sizeof(r->sig));
}

static bool zero32(const uint8_t *p)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < RECORD_HASH_BYTES; i++)
		acc |= p[i];
	return acc == 0;
}

int record_decode(struct rd *r, struct record *out)
{
	assert(r && out);
	if (!rd_copy(r, out->author, sizeof(out->author)) || !rd_u64(r, &out->seq) ||
	    !rd_copy(r, out->prev, sizeof(out->prev)) || !rd_u8(r, &out->kind) ||
	    !rd_u64(r, &out->time_ms) || !rd_u32(r, &out->body_len))
		return SHOAL_ETRUNC;
	if (out->kind == 0 || out->kind > RECORD_KIND_MAX_ || out->seq == 0 ||
	    out->body_len > SHOAL_RECORD_BODY_MAX)
		return SHOAL_EPROTO;
	if (out->seq == 1 && !zero32(out->prev))
		return SHOAL_EPROTO;
	if (!rd_copy(r, out->body, out->body_len) || !rd_copy(r, out->sig, sizeof(out->sig)))
		return SHOAL_ETRUNC;
	return 0;
}

int record_decode_buf(const uint8_t *buf, size_t len, struct record *out)
{
	assert(buf || len == 0);
	struct rd r = rd_init(buf, len);
	int rc = record_decode(&r, out);
	if (rc == 0 && !rd_empty(&r))
		return SHOAL_ETRAILING;
	return rc;
}

/* domain || signed part, into buf (sized for the largest record). */
static size_t signed_message(const struct record *r, uint8_t *buf, size_t cap)
{
	struct wr w = wr_init(buf, cap);
	wr_bytes(&w, RECORD_SIG_DOMAIN, sizeof(RECORD_SIG_DOMAIN) - 1);
	put_signed(&w, r);
	assert(wr_ok(&w));
	return w.len;
}

void record_sign(struct record *r, const uint8_t sk[64])
{
	assert(r && sk);
	assert(sodium_memcmp(sk + 32, r->author, 32) == 0);
	uint8_t msg[sizeof(RECORD_SIG_DOMAIN) + SHOAL_RECORD_BYTES_MAX];
	size_t n = signed_message(r, msg, sizeof(msg));
	crypto_sign_detached(r->sig, NULL, msg, n, sk);
}

int record_verify(const struct record *r)
{
	assert(r);
	if (r->body_len > SHOAL_RECORD_BODY_MAX)
		return SHOAL_EPROTO;
	uint8_t msg[sizeof(RECORD_SIG_DOMAIN) + SHOAL_RECORD_BYTES_MAX];
	size_t n = signed_message(r, msg, sizeof(msg));
	if (crypto_sign_verify_detached(r->sig, msg, n, r->author) != 0)
		return SHOAL_EBADSIG;
	return 0;
}

void record_hash(const struct record *r, uint8_t out[RECORD_HASH_BYTES])
{
	assert(r && out);
	uint8_t buf[SHOAL_RECORD_BYTES_MAX];
	struct wr w = wr_init(buf, sizeof(buf));
	record_encode(&w, r);
	assert(wr_ok(&w));
	crypto_hash_sha256(out, buf, w.len);
}

void record_next(struct record *r, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 const struct record *head)
{
	assert(r && author);
	memset(r, 0, sizeof(*r));
	memcpy(r->author, author, SHOAL_NODE_ID_BYTES);
	if (head) {
		assert(memcmp(head->author, author, SHOAL_NODE_ID_BYTES) == 0);
		r->seq = head->seq + 1;
		record_hash(head, r->prev);
	} else {
		r->seq = 1;
	}
}
