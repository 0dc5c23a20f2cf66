/*
 * fuzz_record.c — record_decode_buf on arbitrary bytes. Whatever decodes
 * must re-encode to exactly the input (the encoding is canonical: the
 * signature and the hash cover these bytes, so a second encoding of one
 * record would give it a second identity) and must satisfy the decoder's
 * structural rules; record_verify and record_hash must run without
 * crashing. The input is also read as a stream of records with
 * record_decode, which must consume exactly the bytes it claims.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_record
 * writes DIR/record/ (valid records signed by a fixed-seed key, and
 * invalid ones: truncated, bad kind, seq 0, nonzero prev at seq 1,
 * oversized body length, trailing bytes) and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "core/record.h"
#include "shoal/bytes.h"

static uint8_t fx_pk[32], fx_sk[64];

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "fuzz_record: cannot write %s\n", path);
		exit(1);
	}
}

static size_t encode(const struct record *r, uint8_t *buf, size_t cap)
{
	struct wr w = wr_init(buf, cap);
	record_encode(&w, r);
	if (!wr_ok(&w))
		abort();
	return w.len;
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/record", root);
	mkdir(root, 0755);
	mkdir(dir, 0755);
	struct record r1, r2, big;
	uint8_t buf[SHOAL_RECORD_BYTES_MAX + 16];
	size_t n;

	record_next(&r1, fx_pk, NULL);
	r1.kind = RECORD_HEALTH;
	r1.time_ms = 1700000000000ull;
	record_sign(&r1, fx_sk); /* empty body */
	n = encode(&r1, buf, sizeof buf);
	write_file(dir, "valid-seq1-empty", buf, n);

	record_next(&r2, fx_pk, &r1);
	r2.kind = RECORD_ALERT;
	r2.time_ms = 1700000000500ull;
	r2.body_len = (uint32_t)strlen("rule=eicar sha256=275a021b path=/tmp/x severity=high");
	memcpy(r2.body, "rule=eicar sha256=275a021b path=/tmp/x severity=high", r2.body_len);
	record_sign(&r2, fx_sk);
	n = encode(&r2, buf, sizeof buf);
	write_file(dir, "valid-seq2-alert", buf, n);

	/* Two records back to back: record_decode_buf refuses the trailing
	 * bytes, the stream loop reads both. */
	uint8_t two[2 * SHOAL_RECORD_BYTES_MAX];
	size_t n1 = encode(&r1, two, sizeof two);
	size_t n2 = encode(&r2, two + n1, sizeof two - n1);
	write_file(dir, "stream-two", two, n1 + n2);

	record_next(&big, fx_pk, &r2);
	big.kind = RECORD_ANNOUNCE;
	big.time_ms = UINT64_MAX;
	big.body_len = SHOAL_RECORD_BODY_MAX;
	for (size_t i = 0; i < big.body_len; i++)
		big.body[i] = (uint8_t)(i * 7);
	record_sign(&big, fx_sk);
	n = encode(&big, buf, sizeof buf);
	write_file(dir, "valid-max-body", buf, n);

	/* Invalid shapes, each from the alert record. */
	n = encode(&r2, buf, sizeof buf);
	write_file(dir, "bad-truncated-header", buf, 60);
	write_file(dir, "bad-truncated-sig", buf, n - 10);
	uint8_t bad[sizeof buf];
	memcpy(bad, buf, n);
	bad[72] = 0; /* kind 0 */
	write_file(dir, "bad-kind0", bad, n);
	memcpy(bad, buf, n);
	bad[72] = RECORD_KIND_MAX_ + 1;
	write_file(dir, "bad-kind-unknown", bad, n);
	memcpy(bad, buf, n);
	memset(bad + 32, 0, 8); /* seq 0 */
	write_file(dir, "bad-seq0", bad, n);
	memcpy(bad, buf, n);
	bad[39] = 1; /* seq 1, but prev is r1's hash */
	write_file(dir, "bad-seq1-prev", bad, n);
	memcpy(bad, buf, n);
	bad[81] = 0;
	bad[82] = 0;
	bad[83] = 0x02;
	bad[84] = 0x01; /* body_len 513 */
	write_file(dir, "bad-body-len", bad, n);
	memcpy(bad, buf, n);
	bad[n] = 0x42;
	write_file(dir, "bad-trailing", bad, n + 1);
	memcpy(bad, buf, n);
	bad[n - 1] ^= 1; /* decodes; signature fails */
	write_file(dir, "bad-sig", bad, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	uint8_t seed[32];
	memset(seed, 0x33, sizeof seed);
	crypto_sign_seed_keypair(fx_pk, fx_sk, seed);
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct record r;
	static uint8_t again[SHOAL_RECORD_BYTES_MAX];
	if (record_decode_buf(data, size, &r) == 0) {
		if (r.kind == 0 || r.kind > RECORD_KIND_MAX_ || r.seq == 0 ||
		    r.body_len > SHOAL_RECORD_BODY_MAX ||
		    (r.seq == 1 && !sodium_is_zero(r.prev, sizeof r.prev))) {
			fprintf(stderr, "fuzz_record: decoder accepted a record breaking its rules\n");
			abort();
		}
		struct wr w = wr_init(again, sizeof again);
		record_encode(&w, &r);
		if (!wr_ok(&w) || w.len != size || record_size(&r) != size ||
		    memcmp(again, data, size) != 0) {
			fprintf(stderr, "fuzz_record: decoded record does not re-encode to its input\n");
			abort();
		}
		uint8_t h[RECORD_HASH_BYTES];
		record_hash(&r, h);
		int rc = record_verify(&r);
		if (rc != 0 && rc != SHOAL_EBADSIG)
			abort();
	}

	/* As a stream: each decoded record consumes exactly its size. */
	struct rd rd = rd_init(data, size);
	while (!rd_empty(&rd)) {
		size_t before = rd_left(&rd);
		if (record_decode(&rd, &r) != 0)
			break;
		if (before - rd_left(&rd) != record_size(&r))
			abort();
	}
	return 0;
}
