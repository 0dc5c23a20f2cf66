/* test_record.c — the signed record codec (core/record.c): encodings round
 * trip exactly, every structural rule of the decoder refuses, signatures
 * cover every signed byte under the record domain, and hashes link. */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/record.h"
#include "shoal/bytes.h"
#include "shoal/error.h"

/* Offsets in the encoding (record.h). */
#define OFF_SEQ 32
#define OFF_PREV 40
#define OFF_KIND 72
#define OFF_TIME 73
#define OFF_LEN 81
#define OFF_BODY 85

static uint8_t pk[32], sk[64];

static int setup(void **state)
{
	(void)state;
	uint8_t seed[32];
	memset(seed, 7, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	return 0;
}

static void make(struct record *r, const struct record *head, uint8_t kind, const char *body)
{
	record_next(r, pk, head);
	r->kind = kind;
	r->time_ms = 1700000000123ull;
	r->body_len = (uint32_t)strlen(body);
	memcpy(r->body, body, r->body_len);
	record_sign(r, sk);
}

static size_t enc(const struct record *r, uint8_t *buf, size_t cap)
{
	struct wr w = wr_init(buf, cap);
	record_encode(&w, r);
	assert_true(wr_ok(&w));
	return w.len;
}

static void assert_same(const struct record *a, const struct record *b)
{
	assert_memory_equal(a->author, b->author, 32);
	assert_true(a->seq == b->seq);
	assert_memory_equal(a->prev, b->prev, 32);
	assert_int_equal(a->kind, b->kind);
	assert_true(a->time_ms == b->time_ms);
	assert_int_equal(a->body_len, b->body_len);
	assert_memory_equal(a->body, b->body, a->body_len);
	assert_memory_equal(a->sig, b->sig, 64);
}

static void round_trip(void **state)
{
	(void)state;
	struct record r1, r2, back;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX];
	make(&r1, NULL, RECORD_HEALTH, "release=r1 state=active");
	size_t n = enc(&r1, buf, sizeof(buf));
	assert_int_equal(n, record_size(&r1));
	assert_int_equal(n, SHOAL_RECORD_HEADER_BYTES + r1.body_len + SHOAL_RECORD_SIG_BYTES);
	assert_int_equal(record_decode_buf(buf, n, &back), 0);
	assert_same(&r1, &back);
	assert_int_equal(record_verify(&back), 0);

	/* Field placement is what record.h documents (big-endian). */
	assert_memory_equal(buf, pk, 32);
	assert_int_equal(buf[OFF_SEQ + 7], 1);
	assert_int_equal(buf[OFF_KIND], RECORD_HEALTH);
	assert_int_equal(buf[OFF_LEN + 3], r1.body_len);

	/* Empty body and the largest body both round trip. */
	make(&r2, &r1, RECORD_ALERT, "");
	n = enc(&r2, buf, sizeof(buf));
	assert_int_equal(record_decode_buf(buf, n, &back), 0);
	assert_same(&r2, &back);
	record_next(&r2, pk, &r1);
	r2.kind = RECORD_ANNOUNCE;
	r2.time_ms = UINT64_MAX;
	r2.body_len = SHOAL_RECORD_BODY_MAX;
	for (size_t i = 0; i < SHOAL_RECORD_BODY_MAX; i++)
		r2.body[i] = (uint8_t)i;
	record_sign(&r2, sk);
	n = enc(&r2, buf, sizeof(buf));
	assert_int_equal(n, SHOAL_RECORD_BYTES_MAX);
	assert_int_equal(record_decode_buf(buf, n, &back), 0);
	assert_same(&r2, &back);
	assert_int_equal(record_verify(&back), 0);

	/* A writer too small for the record reports it. */
	struct wr w = wr_init(buf, n - 1);
	record_encode(&w, &r2);
	assert_false(wr_ok(&w));

	/* Two records in a row decode one after the other. */
	uint8_t two[2 * SHOAL_RECORD_BYTES_MAX];
	size_t n1 = enc(&r1, two, sizeof(two));
	size_t n2 = enc(&r2, two + n1, sizeof(two) - n1);
	struct rd rd = rd_init(two, n1 + n2);
	assert_int_equal(record_decode(&rd, &back), 0);
	assert_same(&r1, &back);
	assert_int_equal(record_decode(&rd, &back), 0);
	assert_same(&r2, &back);
	assert_true(rd_empty(&rd));
}

static void decoder_rejections(void **state)
{
	(void)state;
	struct record r, back;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX + 8], bad[sizeof(buf)];
	make(&r, NULL, RECORD_ALERT, "rule=x sha256=00 path=/tmp/a");
	size_t n = enc(&r, buf, sizeof(buf));

	/* Every truncation. */
	for (size_t len = 0; len < n; len++)
		assert_int_equal(record_decode_buf(buf, len, &back), SHOAL_ETRUNC);
	assert_int_equal(record_decode_buf(NULL, 0, &back), SHOAL_ETRUNC);

	/* Trailing bytes. */
	memcpy(bad, buf, n);
	bad[n] = 0;
	assert_int_equal(record_decode_buf(bad, n + 1, &back), SHOAL_ETRAILING);

	/* Kind 0 and the first unknown kind. */
	memcpy(bad, buf, n);
	bad[OFF_KIND] = 0;
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);
	bad[OFF_KIND] = RECORD_KIND_MAX_ + 1;
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);
	bad[OFF_KIND] = 0xff;
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);

	/* seq 0. */
	memcpy(bad, buf, n);
	bad[OFF_SEQ + 7] = 0;
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);

	/* seq 1 with a nonzero prev (any byte of it). */
	for (size_t i = 0; i < 32; i++) {
		memcpy(bad, buf, n);
		bad[OFF_PREV + i] = 1;
		assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);
	}
	/* ... while seq 2 with that prev is structurally fine. */
	memcpy(bad, buf, n);
	bad[OFF_SEQ + 7] = 2;
	bad[OFF_PREV] = 1;
	assert_int_equal(record_decode_buf(bad, n, &back), 0);

	/* Oversized body lengths, including one that would wrap a size. */
	static const uint32_t lens[] = {SHOAL_RECORD_BODY_MAX + 1, 0x10000, 0xffffffffu};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memcpy(bad, buf, n);
		bad[OFF_LEN] = (uint8_t)(lens[i] >> 24);
		bad[OFF_LEN + 1] = (uint8_t)(lens[i] >> 16);
		bad[OFF_LEN + 2] = (uint8_t)(lens[i] >> 8);
		bad[OFF_LEN + 3] = (uint8_t)lens[i];
		assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_EPROTO);
	}
	/* A body length longer than what follows is a truncation; a shorter
	 * one leaves trailing bytes. */
	memcpy(bad, buf, n);
	bad[OFF_LEN + 3] = (uint8_t)(r.body_len + 1);
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_ETRUNC);
	bad[OFF_LEN + 3] = (uint8_t)(r.body_len - 1);
	assert_int_equal(record_decode_buf(bad, n, &back), SHOAL_ETRAILING);
}

/* Flipping any bit anywhere in a record makes it refused: either it no
 * longer decodes, or its signature no longer verifies. */
static void every_byte_is_signed(void **state)
{
	(void)state;
	struct record r1, r, back;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX], bad[SHOAL_RECORD_BYTES_MAX];
	make(&r1, NULL, RECORD_HEALTH, "a");
	make(&r, &r1, RECORD_HEALTH, "release=r7 state=healthy detail=ok");
	size_t n = enc(&r, buf, sizeof(buf));
	int decoded = 0;
	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(bad, buf, n);
			bad[i] ^= (uint8_t)(1u << bit);
			if (record_decode_buf(bad, n, &back) != 0)
				continue;
			decoded++;
			if (record_verify(&back) != SHOAL_EBADSIG)
				fail_msg("flipping bit %d of byte %zu still verifies", bit, i);
		}
	}
	assert_true(decoded > (int)n * 6); /* most flips still decode: the check above ran */

	/* Another key's signature over the same fields. */
	uint8_t pk2[32], sk2[64];
	crypto_sign_keypair(pk2, sk2);
	back = r;
	memcpy(back.author, pk2, 32);
	assert_int_equal(record_verify(&back), SHOAL_EBADSIG);
	record_sign(&back, sk2);
	assert_int_equal(record_verify(&back), 0);
	memcpy(back.author, pk, 32);
	assert_int_equal(record_verify(&back), SHOAL_EBADSIG);

	/* A struct with a body length over the bound is refused, not read. */
	back = r;
	back.body_len = SHOAL_RECORD_BODY_MAX + 1;
	assert_int_equal(record_verify(&back), SHOAL_EPROTO);
}

/* The signature covers "shoal/record/v1" || fields: a signature by the
 * same key over the bare fields (or another domain) does not verify. */
static void domain_separation(void **state)
{
	(void)state;
	struct record r;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX + 64];
	make(&r, NULL, RECORD_HALT, "release=r1");
	size_t n = enc(&r, buf, sizeof(buf));
	size_t signed_len = n - SHOAL_RECORD_SIG_BYTES;
	crypto_sign_detached(r.sig, NULL, buf, signed_len, sk);
	assert_int_equal(record_verify(&r), SHOAL_EBADSIG);

	uint8_t msg[sizeof(buf) + 32];
	const char *other = "shoal/admission/v1";
	memcpy(msg, other, strlen(other));
	memcpy(msg + strlen(other), buf, signed_len);
	crypto_sign_detached(r.sig, NULL, msg, strlen(other) + signed_len, sk);
	assert_int_equal(record_verify(&r), SHOAL_EBADSIG);

	memcpy(msg, RECORD_SIG_DOMAIN, strlen(RECORD_SIG_DOMAIN));
	memcpy(msg + strlen(RECORD_SIG_DOMAIN), buf, signed_len);
	crypto_sign_detached(r.sig, NULL, msg, strlen(RECORD_SIG_DOMAIN) + signed_len, sk);
	assert_int_equal(record_verify(&r), 0);
}

static void hash_and_links(void **state)
{
	(void)state;
	struct record r1, r2, r3;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX], h[32], want[32];
	make(&r1, NULL, RECORD_HEALTH, "one");
	make(&r2, &r1, RECORD_HEALTH, "two");
	make(&r3, &r2, RECORD_ALERT, "three");
	assert_true(r1.seq == 1 && r2.seq == 2 && r3.seq == 3);
	assert_true(sodium_is_zero(r1.prev, 32));

	/* The hash is SHA-256 of the whole encoding, signature included. */
	size_t n = enc(&r2, buf, sizeof(buf));
	crypto_hash_sha256(want, buf, n);
	record_hash(&r2, h);
	assert_memory_equal(h, want, 32);
	assert_memory_equal(r3.prev, h, 32);
	record_hash(&r1, h);
	assert_memory_equal(r2.prev, h, 32);

	/* A different signature is a different record identity. */
	struct record x = r2;
	x.sig[0] ^= 1;
	record_hash(&x, want);
	record_hash(&r2, h);
	assert_memory_not_equal(h, want, 32);
}

static void kind_names(void **state)
{
	(void)state;
	for (uint8_t k = 1; k <= RECORD_KIND_MAX_; k++) {
		const char *name = record_kind_name(k);
		assert_string_not_equal(name, "unknown");
		assert_int_equal(record_kind_from_name(name), k);
	}
	assert_string_equal(record_kind_name(0), "unknown");
	assert_string_equal(record_kind_name(RECORD_KIND_MAX_ + 1), "unknown");
	assert_string_equal(record_kind_name(RECORD_ALERT), "alert");
	assert_int_equal(record_kind_from_name("nope"), 0);
	assert_int_equal(record_kind_from_name(""), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(decoder_rejections),
		cmocka_unit_test(every_byte_is_signed),
		cmocka_unit_test(domain_separation),
		cmocka_unit_test(hash_and_links),
		cmocka_unit_test(kind_names),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
