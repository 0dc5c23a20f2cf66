/*
 * test_sync.c — the replication stream protocol: sync message codecs (round
 * trip and every rejection), sync sessions between two in-memory feed
 * stores (gaps, retention, equivocation, forged records, peers that break
 * the protocol, more than one message of everything), the in-memory store's
 * put semantics, and the blob download tracker (bad peers, resume).
 */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blobdl.h"
#include "core/memfeed.h"
#include "core/record.h"
#include "core/sync.h"

/* --- fixtures: authors and their feeds ------------------------------------- */

struct chain {
	uint8_t pk[32];
	uint8_t sk[64];
	struct record *recs; /* recs[i] has seq i + 1 */
	size_t n;
};

static void keypair(unsigned id, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32] = {0};
	seed[0] = (uint8_t)id;
	seed[1] = (uint8_t)(id >> 8);
	seed[2] = 0x5c;
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* A correctly linked, signed feed of n records with small bodies. */
static void chain_make(struct chain *c, unsigned id, size_t n)
{
	keypair(id, c->pk, c->sk);
	c->recs = calloc(n ? n : 1, sizeof(*c->recs));
	assert_non_null(c->recs);
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		struct record *r = &c->recs[i];
		record_next(r, c->pk, i ? &c->recs[i - 1] : NULL);
		r->kind = (uint8_t)(1 + i % RECORD_KIND_MAX_);
		r->time_ms = 1000 + i;
		r->body_len = (uint32_t)snprintf((char *)r->body, sizeof(r->body),
						 "author %u record %zu", id, i + 1);
		record_sign(r, c->sk);
	}
}

static void chain_free(struct chain *c) { free(c->recs); }

/* Puts seqs [first, last] of c into m, expecting them stored. */
static void give(struct memfeed *m, const struct chain *c, uint64_t first, uint64_t last)
{
	for (uint64_t s = first; s <= last; s++) {
		enum repl_put res;
		assert_int_equal(memfeed_put(m, &c->recs[s - 1], &res), 0);
		assert_true(res == REPL_PUT_NEW || res == REPL_PUT_NEW_GAP);
	}
}

static bool holds(const struct memfeed *m, const struct chain *c, uint64_t seq)
{
	struct record r;
	if (memfeed_get(m, c->pk, seq, &r) != 0)
		return false;
	uint8_t h1[RECORD_HASH_BYTES], h2[RECORD_HASH_BYTES];
	record_hash(&r, h1);
	record_hash(&c->recs[seq - 1], h2);
	assert_memory_equal(h1, h2, sizeof(h1)); /* the very record, not a fork */
	return true;
}

/* Seqs of c held by m, as a string like "1-5,11-25" (for messages). */
static const char *held_str(const struct memfeed *m, const struct chain *c)
{
	static char buf[512];
	size_t len = 0;
	buf[0] = '\0';
	for (uint64_t s = 1; s <= c->n; s++) {
		if (!holds(m, c, s))
			continue;
		uint64_t e = s;
		while (e + 1 <= c->n && holds(m, c, e + 1))
			e++;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%llu-%llu",
					len ? "," : "", (unsigned long long)s,
					(unsigned long long)e);
		s = e;
	}
	return buf;
}

struct evlog {
	size_t records[3];      /* by side (index 1 initiator, 2 responder) */
	size_t equivocations[3];
};

static void on_event(void *arg, enum sync_role side, const struct repl_event *ev)
{
	struct evlog *log = arg;
	assert_int_equal(ev->source, REPL_SRC_SYNC);
	assert_int_equal(ev->from_gid, REPL_NONE);
	if (ev->kind == REPL_EV_RECORD)
		log->records[side]++;
	else
		log->equivocations[side]++;
}

static int run(struct memfeed *a, struct memfeed *b, struct evlog *log,
	       struct sync_stats *sa, struct sync_stats *sb)
{
	return sync_run_local(&memfeed_ops, a, &memfeed_ops, b, on_event, log, sa, sb);
}

/* --- codecs -------------------------------------------------------------------- */

static size_t enc_digest(uint8_t *buf, size_t cap, uint8_t fill)
{
	static uint8_t d[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES];
	memset(d, fill, sizeof(d));
	d[7][3] = 0x77;
	struct wr w = wr_init(buf, cap);
	sync_put_digest(&w, d);
	assert_true(wr_ok(&w));
	return w.len;
}

static void codec_round_trips(void **state)
{
	(void)state;
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX];
	struct sync_msg m;

	size_t n = enc_digest(buf, sizeof(buf), 0xab);
	assert_int_equal(n, SYNC_DIGEST_MSG_BYTES);
	assert_int_equal(sync_decode(buf, n, &m), 0);
	assert_int_equal(m.type, SYNC_DIGEST);
	assert_int_equal(m.digest[0], 0xab);
	assert_int_equal(m.digest[7 * SHOAL_SYNC_DIGEST_BYTES + 3], 0x77);

	/* ROOT: 18 bytes; the root changes with any digest byte. */
	uint8_t root[SHOAL_SYNC_DIGEST_BYTES], root2[SHOAL_SYNC_DIGEST_BYTES];
	static uint8_t d[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES];
	sync_root_of((const uint8_t(*)[SHOAL_SYNC_DIGEST_BYTES])d, root);
	d[255][15] = 1;
	sync_root_of((const uint8_t(*)[SHOAL_SYNC_DIGEST_BYTES])d, root2);
	assert_memory_not_equal(root, root2, sizeof(root));
	struct wr rw = wr_init(buf, sizeof(buf));
	sync_put_root(&rw, root);
	assert_true(wr_ok(&rw));
	assert_int_equal(rw.len, SYNC_ROOT_MSG_BYTES);
	assert_int_equal(rw.len, 18);
	assert_int_equal(sync_decode(buf, rw.len, &m), 0);
	assert_int_equal(m.type, SYNC_ROOT);
	assert_memory_equal(m.root, root, sizeof(root));
	assert_int_equal(sync_decode(buf, rw.len - 1, &m), SHOAL_ETRUNC);
	assert_int_equal(sync_decode(buf, rw.len + 1, &m), SHOAL_ETRAILING);

	/* DATA with all three sections */
	struct chain c;
	chain_make(&c, 1, 3);
	struct sync_data_wr b;
	sync_data_begin(&b, buf, sizeof(buf));
	struct sync_head h = {.seq_min = 2, .seq_max = 9, .count = 5};
	memcpy(h.author, c.pk, 32);
	memset(h.hash, 0x11, 32);
	assert_true(sync_data_add_head(&b, &h));
	struct sync_want wt = {.from_seq = 4, .count = SHOAL_SYNC_RANGE_COUNT_MAX};
	memcpy(wt.author, c.pk, 32);
	assert_true(sync_data_add_want(&b, &wt));
	for (size_t i = 0; i < c.n; i++)
		assert_true(sync_data_add_record(&b, &c.recs[i]));
	n = sync_data_end(&b, SYNC_F_HEADS_DONE);
	assert_int_equal(n, SYNC_DATA_OVERHEAD_BYTES + SYNC_HEAD_BYTES + SYNC_WANT_BYTES +
				    3 * 2 + record_size(&c.recs[0]) + record_size(&c.recs[1]) +
				    record_size(&c.recs[2]));
	assert_int_equal(sync_decode(buf, n, &m), 0);
	assert_int_equal(m.type, SYNC_DATA);
	assert_int_equal(m.flags, SYNC_F_HEADS_DONE);
	assert_int_equal(m.heads_count, 1);
	assert_int_equal(m.wants_count, 1);
	assert_int_equal(m.records_count, 3);
	struct sync_head h2;
	assert_true(sync_next_head(&m, &h2));
	assert_memory_equal(&h, &h2, sizeof(h));
	assert_false(sync_next_head(&m, &h2));
	struct sync_want w2;
	assert_true(sync_next_want(&m, &w2));
	assert_memory_equal(w2.author, wt.author, 32);
	assert_int_equal(w2.from_seq, 4);
	assert_int_equal(w2.count, SHOAL_SYNC_RANGE_COUNT_MAX);
	struct record r;
	for (size_t i = 0; i < 3; i++) {
		assert_true(sync_next_record(&m, &r));
		assert_int_equal(r.seq, i + 1);
		assert_int_equal(record_verify(&r), 0);
	}
	assert_false(sync_next_record(&m, &r));

	/* Sections may be skipped: records only, and an empty message. */
	sync_data_begin(&b, buf, sizeof(buf));
	assert_true(sync_data_add_record(&b, &c.recs[0]));
	n = sync_data_end(&b, SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE | SYNC_F_FIN);
	assert_int_equal(sync_decode(buf, n, &m), 0);
	assert_int_equal(m.heads_count + m.wants_count, 0);
	assert_int_equal(m.records_count, 1);
	sync_data_begin(&b, buf, sizeof(buf));
	n = sync_data_end(&b, 0);
	assert_int_equal(n, SYNC_DATA_OVERHEAD_BYTES);
	assert_int_equal(sync_decode(buf, n, &m), 0);

	/* The builder stops at the message bound and the result decodes. */
	sync_data_begin(&b, buf, sizeof(buf));
	size_t heads = 0;
	while (sync_data_add_head(&b, &h))
		heads++;
	size_t wants = 0;
	while (sync_data_add_want(&b, &wt))
		wants++;
	assert_false(sync_data_add_record(&b, &c.recs[0]));
	n = sync_data_end(&b, 0);
	assert_true(n <= SHOAL_SYNC_MSG_BYTES_MAX);
	assert_true(n + SYNC_WANT_BYTES > SHOAL_SYNC_MSG_BYTES_MAX);
	assert_int_equal(sync_decode(buf, n, &m), 0);
	assert_int_equal(m.heads_count, heads);
	assert_int_equal(m.wants_count, wants);
	assert_int_equal(heads, (SHOAL_SYNC_MSG_BYTES_MAX - SYNC_DATA_OVERHEAD_BYTES) / SYNC_HEAD_BYTES);

	/* Blob messages */
	uint8_t hash[32];
	memset(hash, 0x42, sizeof(hash));
	static uint8_t data[SHOAL_BLOB_CHUNK_BYTES_MAX];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	struct wr w = wr_init(buf, sizeof(buf));
	sync_put_blob_req(&w, hash, 123456, SHOAL_BLOB_CHUNK_BYTES_MAX);
	assert_int_equal(sync_decode(buf, w.len, &m), 0);
	assert_int_equal(m.type, SYNC_BLOB_REQ);
	assert_memory_equal(m.hash, hash, 32);
	assert_int_equal(m.offset, 123456);
	assert_int_equal(m.len, SHOAL_BLOB_CHUNK_BYTES_MAX);
	w = wr_init(buf, sizeof(buf));
	sync_put_blob_chunk(&w, hash, 1000, 1000 + sizeof(data), data, sizeof(data));
	assert_int_equal(w.len, SYNC_BLOB_CHUNK_OVERHEAD_BYTES + sizeof(data));
	assert_int_equal(sync_decode(buf, w.len, &m), 0);
	assert_int_equal(m.type, SYNC_BLOB_CHUNK);
	assert_int_equal(m.offset, 1000);
	assert_int_equal(m.total, 1000 + sizeof(data));
	assert_int_equal(m.len, sizeof(data));
	assert_memory_equal(m.data, data, sizeof(data));
	w = wr_init(buf, sizeof(buf));
	sync_put_blob_chunk(&w, hash, 77, 77, NULL, 0); /* "you are at the end" */
	assert_int_equal(sync_decode(buf, w.len, &m), 0);
	assert_int_equal(m.len, 0);
	w = wr_init(buf, sizeof(buf));
	sync_put_blob_none(&w, hash);
	assert_int_equal(sync_decode(buf, w.len, &m), 0);
	assert_int_equal(m.type, SYNC_BLOB_NONE);
	assert_memory_equal(m.hash, hash, 32);

	assert_int_equal(sync_blob_chunk_len(100, 0, 60), 60);
	assert_int_equal(sync_blob_chunk_len(100, 60, 60), 40);
	assert_int_equal(sync_blob_chunk_len(100, 100, 60), 0);
	assert_int_equal(sync_blob_chunk_len(100, 101, 60), 0);
	assert_string_equal(sync_type_name(SYNC_BLOB_CHUNK), "blob_chunk");
	assert_string_equal(sync_type_name(99), "unknown");
	chain_free(&c);
}

/* Writes a DATA message by hand (the builder refuses invalid entries). */
struct raw {
	uint8_t buf[4096];
	struct wr w;
};

static void raw_begin(struct raw *x, uint8_t flags)
{
	x->w = wr_init(x->buf, sizeof(x->buf));
	wr_u8(&x->w, SYNC_VERSION);
	wr_u8(&x->w, SYNC_DATA);
	wr_u8(&x->w, flags);
}

static void raw_head(struct wr *w, uint8_t a0, uint64_t lo, uint64_t hi, uint64_t count)
{
	uint8_t author[32] = {a0};
	wr_bytes(w, author, 32);
	wr_u64(w, lo);
	wr_u64(w, hi);
	wr_u64(w, count);
	uint8_t hash[32] = {0};
	wr_bytes(w, hash, 32);
}

static void raw_want(struct wr *w, uint8_t a0, uint64_t from, uint32_t count)
{
	uint8_t author[32] = {a0};
	wr_bytes(w, author, 32);
	wr_u64(w, from);
	wr_u32(w, count);
}

static int decode_raw(struct raw *x)
{
	struct sync_msg m;
	assert_true(wr_ok(&x->w));
	return sync_decode(x->buf, x->w.len, &m);
}

static void codec_rejections(void **state)
{
	(void)state;
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX + 16];
	struct sync_msg m;
	struct raw x;

	assert_int_equal(sync_decode(buf, SHOAL_SYNC_MSG_BYTES_MAX + 1, &m), SHOAL_ETOOBIG);
	assert_int_equal(sync_decode(buf, 0, &m), SHOAL_ETRUNC);
	size_t n = enc_digest(buf, sizeof(buf), 1);
	buf[0] = 2;
	assert_int_equal(sync_decode(buf, n, &m), SHOAL_EVERSION);
	buf[0] = SYNC_VERSION;
	assert_int_equal(sync_decode(buf, 1, &m), SHOAL_ETRUNC);
	buf[1] = 9;
	assert_int_equal(sync_decode(buf, n, &m), SHOAL_EPROTO); /* unknown type */
	buf[1] = 0;
	assert_int_equal(sync_decode(buf, n, &m), SHOAL_EPROTO);
	buf[1] = SYNC_DIGEST;
	assert_int_equal(sync_decode(buf, n - 1, &m), SHOAL_ETRUNC);
	assert_int_equal(sync_decode(buf, 3, &m), SHOAL_ETRUNC);
	buf[n] = 0;
	assert_int_equal(sync_decode(buf, n + 1, &m), SHOAL_ETRAILING);
	buf[3] = 128; /* bucket count 128, not 256 */
	assert_int_equal(sync_decode(buf, n, &m), SHOAL_EPROTO);

	/* DATA flags */
	raw_begin(&x, 8);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	raw_begin(&x, SYNC_F_FIN | SYNC_F_HEADS_DONE);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	raw_begin(&x, SYNC_F_FIN | SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), 0);
	raw_begin(&x, 0);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), SHOAL_ETRUNC); /* records count missing */
	raw_begin(&x, 0);
	assert_int_equal(decode_raw(&x), SHOAL_ETRUNC);

	/* heads: each field rule */
	static const uint64_t bad_heads[][3] = {
		{0, 5, 1},     /* seq_min 0 */
		{6, 5, 1},     /* min > max */
		{1, 5, 0},     /* count 0 */
		{1, 5, 6},     /* count over span */
		{2, UINT64_MAX, UINT64_MAX}, /* count one over a span near the top */
	};
	for (size_t i = 0; i < sizeof(bad_heads) / sizeof(bad_heads[0]); i++) {
		raw_begin(&x, 0);
		wr_u16(&x.w, 1);
		raw_head(&x.w, 1, bad_heads[i][0], bad_heads[i][1], bad_heads[i][2]);
		wr_u16(&x.w, 0); wr_u16(&x.w, 0);
		assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	}
	raw_begin(&x, 0);
	wr_u16(&x.w, 1);
	raw_head(&x.w, 1, 1, UINT64_MAX, UINT64_MAX); /* the whole seq space, full */
	wr_u16(&x.w, 0); wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), 0);
	raw_begin(&x, 0);
	wr_u16(&x.w, 2); /* says two, has one */
	raw_head(&x.w, 1, 1, 5, 5);
	assert_int_equal(decode_raw(&x), SHOAL_ETRUNC);

	/* wants */
	static const uint64_t bad_wants[][2] = {
		{0, 1},                                 /* from 0 */
		{1, 0},                                 /* count 0 */
		{1, SHOAL_SYNC_RANGE_COUNT_MAX + 1},    /* over the range bound */
		{UINT64_MAX, 2},                        /* runs past the seq space */
	};
	for (size_t i = 0; i < sizeof(bad_wants) / sizeof(bad_wants[0]); i++) {
		raw_begin(&x, 0);
		wr_u16(&x.w, 0);
		wr_u16(&x.w, 1);
		raw_want(&x.w, 1, bad_wants[i][0], (uint32_t)bad_wants[i][1]);
		wr_u16(&x.w, 0);
		assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	}
	raw_begin(&x, 0);
	wr_u16(&x.w, 0);
	wr_u16(&x.w, 1);
	raw_want(&x.w, 1, UINT64_MAX, 1);
	wr_u16(&x.w, 0);
	assert_int_equal(decode_raw(&x), 0);

	/* records: a length prefix that does not match the record */
	struct chain c;
	chain_make(&c, 2, 1);
	uint8_t rec[SHOAL_RECORD_BYTES_MAX + 1];
	struct wr rw = wr_init(rec, sizeof(rec));
	record_encode(&rw, &c.recs[0]);
	size_t rlen = rw.len;
	for (int delta = -1; delta <= 1; delta += 2) {
		raw_begin(&x, 0);
		wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 1);
		wr_u16(&x.w, (uint16_t)(rlen + (size_t)delta));
		wr_bytes(&x.w, rec, rlen);
		if (delta > 0)
			wr_u8(&x.w, 0);
		assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	}
	raw_begin(&x, 0);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 1);
	wr_u16(&x.w, (uint16_t)rlen);
	wr_bytes(&x.w, rec, rlen - 1); /* message ends inside the record */
	assert_int_equal(decode_raw(&x), SHOAL_ETRUNC);
	rec[32 + 8 + 32] = 0; /* kind 0 */
	raw_begin(&x, 0);
	wr_u16(&x.w, 0); wr_u16(&x.w, 0); wr_u16(&x.w, 1);
	wr_u16(&x.w, (uint16_t)rlen);
	wr_bytes(&x.w, rec, rlen);
	assert_int_equal(decode_raw(&x), SHOAL_EPROTO);
	chain_free(&c);

	/* blob messages */
	uint8_t hash[32] = {9};
	struct {
		uint8_t type;
		uint64_t offset, total;
		uint32_t len;
		int want;
	} blob[] = {
		{SYNC_BLOB_REQ, 0, 0, 0, SHOAL_EPROTO},
		{SYNC_BLOB_REQ, 0, 0, SHOAL_BLOB_CHUNK_BYTES_MAX + 1, SHOAL_EPROTO},
		{SYNC_BLOB_REQ, (uint64_t)SHOAL_BLOB_BYTES_MAX + 1, 0, 1, SHOAL_EPROTO},
		{SYNC_BLOB_REQ, SHOAL_BLOB_BYTES_MAX, 0, 1, 0},
		{SYNC_BLOB_CHUNK, 0, (uint64_t)SHOAL_BLOB_BYTES_MAX + 1, 0, SHOAL_EPROTO},
		{SYNC_BLOB_CHUNK, 0, 10, 11, SHOAL_EPROTO},          /* past the total */
		{SYNC_BLOB_CHUNK, 11, 10, 0, SHOAL_EPROTO},          /* offset past total */
		{SYNC_BLOB_CHUNK, 5, 10, 6, SHOAL_EPROTO},
		{SYNC_BLOB_CHUNK, 5, 10, 0, SHOAL_EPROTO},           /* empty, not at the end */
		{SYNC_BLOB_CHUNK, 0, (uint64_t)SHOAL_BLOB_CHUNK_BYTES_MAX * 2,
		 SHOAL_BLOB_CHUNK_BYTES_MAX + 1, SHOAL_EPROTO},
		{SYNC_BLOB_CHUNK, 5, 10, 5, 0},
	};
	static uint8_t zeros[SHOAL_BLOB_CHUNK_BYTES_MAX + 1];
	for (size_t i = 0; i < sizeof(blob) / sizeof(blob[0]); i++) {
		struct wr w = wr_init(buf, sizeof(buf));
		wr_u8(&w, SYNC_VERSION);
		wr_u8(&w, blob[i].type);
		wr_bytes(&w, hash, 32);
		wr_u64(&w, blob[i].offset);
		if (blob[i].type == SYNC_BLOB_CHUNK)
			wr_u64(&w, blob[i].total);
		wr_u32(&w, blob[i].len);
		if (blob[i].type == SYNC_BLOB_CHUNK && blob[i].len <= sizeof(zeros))
			wr_bytes(&w, zeros, blob[i].len);
		assert_true(wr_ok(&w));
		int rc = sync_decode(buf, w.len, &m);
		if (rc != blob[i].want)
			fail_msg("blob case %zu: got %d want %d", i, rc, blob[i].want);
	}
	struct wr w = wr_init(buf, sizeof(buf));
	sync_put_blob_chunk(&w, hash, 0, 10, zeros, 10);
	assert_int_equal(sync_decode(buf, w.len - 1, &m), SHOAL_ETRUNC); /* data cut */
	w = wr_init(buf, sizeof(buf));
	sync_put_blob_none(&w, hash);
	assert_int_equal(sync_decode(buf, w.len - 1, &m), SHOAL_ETRUNC);
	buf[w.len] = 1;
	assert_int_equal(sync_decode(buf, w.len + 1, &m), SHOAL_ETRAILING);
	w = wr_init(buf, sizeof(buf));
	sync_put_blob_req(&w, hash, 0, 1);
	assert_int_equal(sync_decode(buf, w.len - 1, &m), SHOAL_ETRUNC);
}

/* --- the in-memory store ------------------------------------------------------ */

static void memfeed_put_semantics(void **state)
{
	(void)state;
	struct chain c, fork;
	chain_make(&c, 3, 6);
	struct memfeed *m = memfeed_new(0);
	assert_non_null(m);
	enum repl_put res;

	/* out of order: a gap, then the hole filled links both ways */
	assert_int_equal(memfeed_put(m, &c.recs[2], &res), 0);
	assert_int_equal(res, REPL_PUT_NEW_GAP);
	assert_int_equal(memfeed_put(m, &c.recs[0], &res), 0);
	assert_int_equal(res, REPL_PUT_NEW);
	assert_int_equal(memfeed_put(m, &c.recs[1], &res), 0);
	assert_int_equal(res, REPL_PUT_NEW);
	assert_int_equal(memfeed_put(m, &c.recs[1], &res), 0);
	assert_int_equal(res, REPL_PUT_DUP);

	/* a tampered copy of a held record: bad signature, not a dup */
	struct record t = c.recs[1];
	t.body[0] ^= 1;
	assert_int_equal(memfeed_put(m, &t, &res), SHOAL_EBADSIG);
	/* a tampered new record: refused, nothing stored */
	t = c.recs[3];
	t.time_ms++;
	assert_int_equal(memfeed_put(m, &t, &res), SHOAL_EBADSIG);
	assert_false(memfeed_has(m, c.pk, 4));

	/* same seq, other content, signed by the author: equivocation */
	struct record e = c.recs[3];
	e.body[0] = 'X';
	record_sign(&e, c.sk);
	assert_int_equal(memfeed_put(m, &c.recs[3], &res), 0);
	assert_int_equal(memfeed_put(m, &e, &res), 0);
	assert_int_equal(res, REPL_PUT_EQUIVOCATION);
	/* a record whose prev does not match the held seq-1: broken link */
	fork.recs = NULL;
	struct record l = c.recs[4];
	memset(l.prev, 0x33, 32);
	record_sign(&l, c.sk);
	assert_int_equal(memfeed_put(m, &l, &res), 0);
	assert_int_equal(res, REPL_PUT_EQUIVOCATION);
	assert_false(memfeed_has(m, c.pk, 5));
	/* ... and one that the held seq+1 does not link to */
	struct memfeed *m2 = memfeed_new(0);
	give(m2, &c, 6, 6);
	assert_int_equal(memfeed_put(m2, &l, &res), 0);
	assert_int_equal(res, REPL_PUT_EQUIVOCATION);
	assert_int_equal(memfeed_stats(m)->put_equivocation, 2);

	/* structure */
	struct record s = c.recs[0];
	s.prev[0] = 1; /* seq 1 must have a zero prev */
	assert_int_equal(memfeed_put(m, &s, &res), SHOAL_EPROTO);
	s = c.recs[1];
	s.seq = (uint64_t)INT64_MAX + 1;
	assert_int_equal(memfeed_put(m, &s, &res), SHOAL_ETOOBIG);

	/* retention: the head stays; pruned seqs are stale */
	assert_int_equal(memfeed_prune(m, c.pk, 3), 2);
	assert_false(memfeed_has(m, c.pk, 1));
	assert_int_equal(memfeed_put(m, &c.recs[0], &res), 0);
	assert_int_equal(res, REPL_PUT_STALE);
	struct repl_head h;
	assert_int_equal(memfeed_head(m, c.pk, &h), 0);
	assert_int_equal(h.seq_min, 3);
	assert_int_equal(h.seq_max, 4);
	assert_int_equal(h.count, 2);
	assert_int_equal(h.pruned_through, 2);
	assert_int_equal(memfeed_prune(m, c.pk, 100), 1); /* keeps head 4 */
	assert_int_equal(memfeed_head(m, c.pk, &h), 0);
	assert_int_equal(h.seq_min, 4);
	assert_int_equal(h.pruned_through, 3);
	/* seq 5 links to held 4 and is new (not a gap) */
	assert_int_equal(memfeed_put(m, &c.recs[4], &res), 0);
	assert_int_equal(res, REPL_PUT_NEW);

	/* the records bound */
	struct memfeed *small = memfeed_new(2);
	give(small, &c, 1, 2);
	assert_int_equal(memfeed_put(small, &c.recs[2], &res), SHOAL_EFULL);

	/* gaps op: missing ranges inside the held span */
	struct memfeed *g = memfeed_new(0);
	give(g, &c, 1, 1);
	give(g, &c, 3, 3);
	give(g, &c, 6, 6);
	struct repl_gap gaps[REPL_GAPS_BATCH];
	size_t n;
	assert_int_equal(memfeed_ops.gaps(g, c.pk, 1, REPL_GAPS_BATCH, gaps, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(gaps[0].first, 2);
	assert_int_equal(gaps[0].last, 2);
	assert_int_equal(gaps[1].first, 4);
	assert_int_equal(gaps[1].last, 5);
	assert_int_equal(memfeed_ops.gaps(g, c.pk, 5, REPL_GAPS_BATCH, gaps, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(gaps[0].first, 5);
	assert_int_equal(gaps[0].last, 5);
	assert_int_equal(memfeed_ops.gaps(g, c.pk, 1, 1, gaps, &n), 0);
	assert_int_equal(n, 1);
	struct record out[REPL_RANGE_BATCH];
	assert_int_equal(memfeed_ops.range(g, c.pk, 2, 2, out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].seq, 3);
	assert_int_equal(out[1].seq, 6);

	/* a clone holds the same and lives on its own */
	struct memfeed *cl = memfeed_clone(g);
	assert_non_null(cl);
	assert_int_equal(memfeed_records(cl), 3);
	assert_true(memfeed_has(cl, c.pk, 6));
	give(cl, &c, 2, 2);
	assert_false(memfeed_has(g, c.pk, 2));
	assert_int_equal(memfeed_put(cl, &c.recs[5], &res), 0);
	assert_int_equal(res, REPL_PUT_DUP);
	memfeed_free(cl);
	cl = memfeed_clone(m); /* with a pruned feed */
	assert_int_equal(memfeed_put(cl, &c.recs[0], &res), 0);
	assert_int_equal(res, REPL_PUT_STALE);
	memfeed_free(cl);

	/* append continues the feed and signs */
	struct record a;
	struct memfeed *own = memfeed_new(0);
	assert_int_equal(memfeed_append(own, c.sk, RECORD_ALERT, 5, "x", 1, &a), 0);
	assert_int_equal(a.seq, 1);
	assert_int_equal(memfeed_append(own, c.sk, RECORD_ALERT, 6, "y", 1, &a), 0);
	assert_int_equal(a.seq, 2);
	assert_int_equal(record_verify(&a), 0);

	memfeed_free(own);
	memfeed_free(g);
	memfeed_free(small);
	memfeed_free(m2);
	memfeed_free(m);
	chain_free(&c);
	(void)fork;
}

/* --- sessions ------------------------------------------------------------------ */

static void session_in_sync_is_two_messages(void **state)
{
	(void)state;
	struct chain c;
	chain_make(&c, 4, 5);
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0);
	give(a, &c, 1, 5);
	give(b, &c, 1, 5);
	struct sync_stats sa, sb;
	struct evlog log = {0};
	assert_int_equal(run(a, b, &log, &sa, &sb), 0);
	assert_int_equal(sa.msgs_sent, 1);
	assert_int_equal(sb.msgs_sent, 1);
	/* Idle nodes mostly find each other in sync: that costs one ROOT
	 * each way, not the 4 KiB digests. */
	assert_int_equal(sa.bytes_sent, SYNC_ROOT_MSG_BYTES);
	assert_int_equal(sb.bytes_sent, SYNC_ROOT_MSG_BYTES);
	assert_int_equal(sa.buckets_differing, 0);
	/* Two empty stores too. */
	struct memfeed *e1 = memfeed_new(0), *e2 = memfeed_new(0);
	assert_int_equal(run(e1, e2, &log, &sa, &sb), 0);
	assert_int_equal(sa.msgs_sent + sb.msgs_sent, 2);
	memfeed_free(e1);
	memfeed_free(e2);
	memfeed_free(a);
	memfeed_free(b);
	chain_free(&c);
}

/* Roots that differ lead to the digest exchange and the usual DATA turns;
 * a responder that answered a differing ROOT takes only a DIGEST next, and
 * an initiator takes only a ROOT first. */
static void session_root_then_digests(void **state)
{
	(void)state;
	struct chain c;
	chain_make(&c, 2, 6);
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0);
	give(a, &c, 1, 6);
	give(b, &c, 1, 3);
	struct sync_stats sa, sb;
	struct evlog log = {0};
	assert_int_equal(run(a, b, &log, &sa, &sb), 0);
	assert_true(memfeed_has(b, c.pk, 6));
	/* ROOT, DIGEST, then DATA from the initiator; ROOT, DIGEST from b. */
	assert_true(sa.msgs_sent >= 3 && sb.msgs_sent >= 2);
	assert_true(sa.buckets_differing >= 1);
	assert_true(sb.bytes_sent >= SYNC_ROOT_MSG_BYTES + SYNC_DIGEST_MSG_BYTES);
	/* Now in sync: two ROOTs and nothing else. */
	assert_int_equal(run(b, a, &log, &sa, &sb), 0);
	assert_int_equal(sa.bytes_sent + sb.bytes_sent, 2 * SYNC_ROOT_MSG_BYTES);

	/* By hand: a responder over a, sent a ROOT of zeros. */
	uint8_t buf[SYNC_DIGEST_MSG_BYTES + 64];
	uint8_t zero[SHOAL_SYNC_DIGEST_BYTES] = {0};
	const uint8_t *reply;
	size_t reply_len;
	struct sync_msg m;
	struct wr w = wr_init(buf, sizeof(buf));
	sync_put_root(&w, zero);
	struct sync_session *r = sync_session_new(SYNC_RESPONDER, &memfeed_ops, a);
	assert_non_null(r);
	assert_int_equal(sync_session_recv(r, buf, w.len, &reply, &reply_len), 0);
	assert_int_equal(sync_decode(reply, reply_len, &m), 0);
	assert_int_equal(m.type, SYNC_ROOT);
	assert_false(sync_session_done(r));
	/* A second ROOT instead of the DIGEST breaks the turn rules. */
	assert_int_equal(sync_session_recv(r, buf, w.len, &reply, &reply_len), SHOAL_EPROTO);
	assert_true(sync_session_failed(r));
	sync_session_free(r);

	/* An initiator whose peer skips the ROOT and sends a DIGEST. */
	struct sync_session *i = sync_session_new(SYNC_INITIATOR, &memfeed_ops, a);
	assert_non_null(i);
	assert_int_equal(sync_session_start(i, &reply, &reply_len), 0);
	assert_int_equal(reply_len, SYNC_ROOT_MSG_BYTES);
	size_t n = enc_digest(buf, sizeof(buf), 0);
	assert_int_equal(sync_session_recv(i, buf, n, &reply, &reply_len), SHOAL_EPROTO);
	sync_session_free(i);

	memfeed_free(a);
	memfeed_free(b);
	chain_free(&c);
}

/* Two stores with different holes in the same feeds, plus feeds only one
 * side has, converge in one session, both ways. */
static void session_converges_stores_with_gaps(void **state)
{
	(void)state;
	enum { AUTHORS = 40 };
	struct chain c[AUTHORS];
	for (unsigned i = 0; i < AUTHORS; i++)
		chain_make(&c[i], 100 + i, 25);
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0);
	/* c[0]: A 1-10,15-20; B 1-5,11-25 */
	give(a, &c[0], 1, 10);
	give(a, &c[0], 15, 20);
	give(b, &c[0], 1, 5);
	give(b, &c[0], 11, 25);
	/* c[1]: both hold 1-25 but with one hole each, different (equal counts) */
	give(a, &c[1], 1, 6);
	give(a, &c[1], 8, 25);
	give(b, &c[1], 1, 11);
	give(b, &c[1], 13, 25);
	/* c[2]: only A; c[3]: only B; c[4]: A holds a middle slice, B a tail */
	give(a, &c[2], 1, 25);
	give(b, &c[3], 1, 25);
	give(a, &c[4], 9, 12);
	give(b, &c[4], 20, 22);
	/* the rest: a mix so many buckets differ */
	for (unsigned i = 5; i < AUTHORS; i++) {
		give(a, &c[i], 1, 3 + i % 7);
		give(b, &c[i], 1, 3 + i % 5);
	}
	size_t total_a = memfeed_records(a), total_b = memfeed_records(b);
	struct sync_stats sa, sb;
	struct evlog log = {0};
	assert_int_equal(run(a, b, &log, &sa, &sb), 0);
	for (unsigned i = 0; i < AUTHORS; i++)
		if (strcmp(held_str(a, &c[i]), held_str(b, &c[i])) != 0) {
			char ha[512];
			snprintf(ha, sizeof(ha), "%s", held_str(a, &c[i]));
			fail_msg("author %u: A holds %s, B holds %s", i, ha, held_str(b, &c[i]));
		}
	assert_string_equal(held_str(a, &c[0]), "1-25");
	assert_string_equal(held_str(a, &c[1]), "1-25");
	assert_string_equal(held_str(a, &c[3]), "1-25");
	assert_string_equal(held_str(b, &c[2]), "1-25");
	/* c[4]: the union, with the hole nobody has */
	assert_string_equal(held_str(a, &c[4]), "9-12,20-22");
	/* Every new record was reported once, on the side that stored it. */
	assert_int_equal(log.records[SYNC_INITIATOR], memfeed_records(a) - total_a);
	assert_int_equal(log.records[SYNC_RESPONDER], memfeed_records(b) - total_b);
	assert_int_equal(sa.records_new, memfeed_records(a) - total_a);
	assert_int_equal(sb.records_new, memfeed_records(b) - total_b);
	assert_int_equal(sa.records_received, sb.records_sent);
	assert_int_equal(sb.records_received, sa.records_sent);
	assert_int_equal(sa.records_dup + sb.records_dup, 0);
	/* A second session finds nothing to do. */
	assert_int_equal(run(b, a, &log, &sa, &sb), 0);
	assert_int_equal(sa.buckets_differing, 0);
	for (unsigned i = 0; i < AUTHORS; i++)
		chain_free(&c[i]);
	memfeed_free(a);
	memfeed_free(b);
}

/* Retention: a side does not fetch back what it pruned; the other side
 * still gets what it lacks; a fresh node takes what each peer still has. */
static void session_respects_retention(void **state)
{
	(void)state;
	struct chain c;
	chain_make(&c, 7, 20);
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0), *fresh = memfeed_new(0);
	give(a, &c, 1, 15);
	assert_int_equal(memfeed_prune(a, c.pk, 10), 9); /* A: 10-15, pruned through 9 */
	give(b, &c, 1, 20);
	struct sync_stats sa, sb;
	struct evlog log = {0};
	assert_int_equal(run(a, b, &log, &sa, &sb), 0);
	assert_string_equal(held_str(a, &c), "10-20");
	assert_int_equal(sa.records_stale, 0); /* never asked for 1-9 */
	assert_int_equal(sa.records_new, 5);
	/* Both directions: again, still nothing fetched back, and done. */
	assert_int_equal(run(b, a, &log, &sa, &sb), 0);
	assert_string_equal(held_str(a, &c), "10-20");
	assert_int_equal(sa.records_received + sb.records_received, 0);
	/* A fresh node gets 10-20 from A, then 1-9 from B (older seqs first
	 * missing is not a reason to stop). */
	assert_int_equal(run(fresh, a, &log, &sa, &sb), 0);
	assert_string_equal(held_str(fresh, &c), "10-20");
	assert_int_equal(run(fresh, b, &log, &sa, &sb), 0);
	assert_string_equal(held_str(fresh, &c), "1-20");
	memfeed_free(a);
	memfeed_free(b);
	memfeed_free(fresh);
	chain_free(&c);
}

/* More heads than one message holds, a feed longer than one range, more
 * records than one message holds: everything pages. */
static void session_pages_everything(void **state)
{
	(void)state;
	enum { AUTHORS = 900, LONG = SHOAL_SYNC_RANGE_COUNT_MAX + 300 };
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0);
	static struct chain c[AUTHORS];
	for (unsigned i = 0; i < AUTHORS; i++) {
		chain_make(&c[i], 1000 + i, 1);
		give(i % 2 ? a : b, &c[i], 1, 1);
	}
	struct chain lng;
	chain_make(&lng, 5000, LONG);
	give(b, &lng, 1, LONG);
	struct sync_stats sa, sb;
	struct evlog log = {0};
	assert_int_equal(run(a, b, &log, &sa, &sb), 0);
	assert_int_equal(memfeed_records(a), memfeed_records(b));
	assert_int_equal(memfeed_records(a), AUTHORS + LONG);
	assert_int_equal(sa.heads_sent, AUTHORS / 2);
	assert_int_equal(sb.heads_sent, AUTHORS / 2 + 1);
	assert_true(sa.wants_sent >= 2 + AUTHORS / 2); /* the long feed took two ranges */
	assert_true(sb.msgs_sent > 5);
	assert_int_equal(sa.records_new, AUTHORS / 2 + LONG);
	for (unsigned i = 0; i < AUTHORS; i++)
		chain_free(&c[i]);
	chain_free(&lng);
	memfeed_free(a);
	memfeed_free(b);
}

/* An author that signed two histories: sessions between holders of each
 * fork end, report it, store nothing wrong, and do so every time. */
static void session_with_equivocation_terminates(void **state)
{
	(void)state;
	struct chain c;
	chain_make(&c, 9, 6);
	/* a fork from seq 4: 4', 5', 6' */
	struct record fork[3];
	for (int i = 0; i < 3; i++) {
		record_next(&fork[i], c.pk, i ? &fork[i - 1] : &c.recs[2]);
		fork[i].kind = RECORD_HEALTH;
		fork[i].body_len = 4;
		memcpy(fork[i].body, "fork", 4);
		record_sign(&fork[i], c.sk);
	}
	struct memfeed *a = memfeed_new(0), *b = memfeed_new(0);
	give(a, &c, 1, 5);
	give(b, &c, 1, 3);
	enum repl_put res;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(memfeed_put(b, &fork[i], &res), 0);
		assert_int_equal(res, REPL_PUT_NEW);
	}
	for (int round = 0; round < 3; round++) {
		struct sync_stats sa, sb;
		struct evlog log = {0};
		assert_int_equal(run(round % 2 ? b : a, round % 2 ? a : b, &log, &sa, &sb), 0);
		/* A asked for 6 and got 6', which does not link to its 5. */
		assert_int_equal(sa.records_equivocation + sb.records_equivocation, 1);
		assert_int_equal(log.equivocations[1] + log.equivocations[2], 1);
		assert_int_equal(sa.records_new + sb.records_new, 0);
		assert_true(sa.msgs_sent + sb.msgs_sent <= 8);
		assert_false(memfeed_has(a, c.pk, 6));
		struct record r;
		assert_int_equal(memfeed_get(b, c.pk, 4, &r), 0);
		assert_memory_equal(r.body, "fork", 4);
	}
	memfeed_free(a);
	memfeed_free(b);
	chain_free(&c);
}

/* --- sessions against a hand-played peer ---------------------------------------- */

/* Plays the initiator by hand against a real responder over store b. */
struct hand {
	struct sync_session *s;
	const uint8_t *reply;
	size_t reply_len;
	struct sync_msg msg;
};

static int hand_send(struct hand *h, const uint8_t *p, size_t len)
{
	int rc = sync_session_recv(h->s, p, len, &h->reply, &h->reply_len);
	if (rc == 0 && h->reply_len)
		assert_int_equal(sync_decode(h->reply, h->reply_len, &h->msg), 0);
	return rc;
}

/* Opens a responder over b with an initiator DIGEST whose every byte is
 * `fill`: 0 is an empty store's digest (the buckets in which b holds
 * something differ), 0xff differs from b's in every bucket. */
static void hand_open(struct hand *h, struct memfeed *b, uint8_t fill)
{
	h->s = sync_session_new(SYNC_RESPONDER, &memfeed_ops, b);
	assert_non_null(h->s);
	uint8_t buf[SYNC_DIGEST_MSG_BYTES];
	size_t n = enc_digest(buf, sizeof(buf), fill);
	buf[SYNC_HEADER_BYTES + 2 + 7 * SHOAL_SYNC_DIGEST_BYTES + 3] = fill;
	assert_int_equal(hand_send(h, buf, n), 0);
	assert_int_equal(h->msg.type, SYNC_DIGEST);
}

/* Our first DATA: heads done, listing one head of author c (bucket must
 * differ), and whether to want seqs. */
static size_t data_msg(uint8_t *buf, size_t cap, uint8_t flags, const struct sync_head *heads,
		       size_t nh, const struct sync_want *wants, size_t nw,
		       const struct record *recs, size_t nr)
{
	struct sync_data_wr b;
	sync_data_begin(&b, buf, cap);
	for (size_t i = 0; i < nh; i++)
		assert_true(sync_data_add_head(&b, &heads[i]));
	for (size_t i = 0; i < nw; i++)
		assert_true(sync_data_add_want(&b, &wants[i]));
	for (size_t i = 0; i < nr; i++)
		assert_true(sync_data_add_record(&b, &recs[i]));
	return sync_data_end(&b, flags);
}

static void head_of(const struct chain *c, uint64_t lo, uint64_t hi, struct sync_head *h)
{
	memcpy(h->author, c->pk, 32);
	h->seq_min = lo;
	h->seq_max = hi;
	h->count = hi - lo + 1;
	record_hash(&c->recs[hi - 1], h->hash);
}

static void session_refuses_forged_and_unasked_records(void **state)
{
	(void)state;
	struct chain c, other;
	chain_make(&c, 11, 3);
	chain_make(&other, 12, 3);
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX];
	struct sync_head h;
	head_of(&c, 1, 3, &h);

	/* b holds `other` (so its digest is not all zero) and not c. */
	for (int variant = 0; variant < 3; variant++) {
		struct memfeed *b = memfeed_new(0);
		give(b, &other, 1, 1);
		struct hand x;
		hand_open(&x, b, 0xff); /* every bucket differs: c's too */
		/* We list c 1-3. */
		size_t n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, &h, 1, NULL, 0, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), 0);
		/* b answered with its heads and its wants: c 1-3 */
		assert_true(x.msg.flags & SYNC_F_HEADS_DONE);
		assert_true(x.msg.flags & SYNC_F_WANTS_DONE);
		assert_int_equal(x.msg.wants_count, 1);
		struct sync_want w;
		assert_true(sync_next_want(&x.msg, &w));
		assert_memory_equal(w.author, c.pk, 32);
		assert_int_equal(w.from_seq, 1);
		assert_int_equal(w.count, 3);
		struct record r = c.recs[0];
		int want;
		if (variant == 0) {
			r.body[0] ^= 0x20; /* forged: the signature no longer holds */
			want = SHOAL_EBADSIG;
		} else if (variant == 1) {
			r = other.recs[1]; /* validly signed but not asked for */
			want = SHOAL_EPROTO;
		} else {
			want = 0;
		}
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE, NULL, 0,
			     NULL, 0, &r, 1);
		assert_int_equal(hand_send(&x, buf, n), want);
		if (want) {
			assert_true(sync_session_failed(x.s));
			assert_false(memfeed_has(b, c.pk, 1));
			assert_false(memfeed_has(b, other.pk, 2));
			struct repl_event ev;
			assert_false(sync_session_poll(x.s, &ev));
			assert_int_equal(hand_send(&x, buf, n), SHOAL_ESTATE);
		} else {
			assert_true(memfeed_has(b, c.pk, 1));
			struct repl_event ev;
			assert_true(sync_session_poll(x.s, &ev));
			assert_int_equal(ev.kind, REPL_EV_RECORD);
			assert_int_equal(ev.seq, 1);
			assert_false(sync_session_poll(x.s, &ev));
			/* the same record again is still inside the range: a dup */
			n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE,
				     NULL, 0, NULL, 0, &c.recs[0], 1);
			assert_int_equal(hand_send(&x, buf, n), 0);
			assert_int_equal(sync_session_stats(x.s)->records_dup, 1);
		}
		sync_session_free(x.s);
		memfeed_free(b);
	}
	chain_free(&c);
	chain_free(&other);
}

static void session_refuses_protocol_violations(void **state)
{
	(void)state;
	struct chain c, d;
	chain_make(&c, 21, 2);
	chain_make(&d, 22, 2);
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX];
	struct sync_head hc, hd;
	head_of(&c, 1, 2, &hc);
	head_of(&d, 1, 2, &hd);
	const struct sync_head *lo = memcmp(hc.author, hd.author, 32) < 0 ? &hc : &hd;
	const struct sync_head *hi = lo == &hc ? &hd : &hc;
	struct sync_want w = {.from_seq = 1, .count = 1};
	memcpy(w.author, c.pk, 32);
	size_t n;
	int cases = 0;

	for (int k = 0; k < 7; k++) {
		struct memfeed *b = memfeed_new(0);
		give(b, &c, 1, 2);
		give(b, &d, 1, 2);
		struct hand x;
		hand_open(&x, b, 0);
		int want = SHOAL_EPROTO;
		switch (k) {
		case 0: /* DIGEST again instead of DATA */
			n = enc_digest(buf, sizeof(buf), 0);
			break;
		case 1: { /* heads out of order */
			struct sync_head two[2] = {*hi, *lo};
			n = data_msg(buf, sizeof(buf), 0, two, 2, NULL, 0, NULL, 0);
			break;
		}
		case 2: { /* the same head twice */
			struct sync_head two[2] = {*lo, *lo};
			n = data_msg(buf, sizeof(buf), 0, two, 2, NULL, 0, NULL, 0);
			break;
		}
		case 3: /* wants before the responder's heads were complete */
			n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE,
				     NULL, 0, &w, 1, NULL, 0);
			break;
		case 4: /* a record nobody asked for */
			n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, NULL, 0,
				     &c.recs[0], 1);
			break;
		case 5: /* a blob message inside a sync session */
		{
			struct wr ww = wr_init(buf, sizeof(buf));
			sync_put_blob_none(&ww, c.pk);
			n = ww.len;
			break;
		}
		case 6: /* not even a message */
			buf[0] = 7;
			n = 1;
			want = SHOAL_EVERSION;
			break;
		}
		assert_int_equal(hand_send(&x, buf, n), want);
		assert_true(sync_session_failed(x.s));
		cases++;
		sync_session_free(x.s);
		memfeed_free(b);
	}

	/* Flags that go down, and a head in a bucket both sides agreed on. */
	{
		struct memfeed *b = memfeed_new(0);
		give(b, &c, 1, 2);
		struct hand x;
		hand_open(&x, b, 0);
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, NULL, 0, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), 0);
		n = data_msg(buf, sizeof(buf), 0, NULL, 0, NULL, 0, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), SHOAL_EPROTO);
		sync_session_free(x.s);

		/* the responder's store has c only; a zero digest differs in c's
		 * bucket alone (unless d shares it) */
		if (c.pk[0] != d.pk[0]) {
			hand_open(&x, b, 0);
			n = data_msg(buf, sizeof(buf), 0, &hd, 1, NULL, 0, NULL, 0);
			assert_int_equal(hand_send(&x, buf, n), SHOAL_EPROTO);
			sync_session_free(x.s);
		}
		/* wants over the session bound */
		hand_open(&x, b, 0);
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, NULL, 0, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), 0);
		struct sync_want many[SHOAL_SYNC_RECORDS_MAX / SHOAL_SYNC_RANGE_COUNT_MAX + 1];
		for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
			memcpy(many[i].author, c.pk, 32);
			many[i].from_seq = 1 + i * SHOAL_SYNC_RANGE_COUNT_MAX;
			many[i].count = SHOAL_SYNC_RANGE_COUNT_MAX;
		}
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, many,
			     sizeof(many) / sizeof(many[0]), NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), SHOAL_ETOOBIG);
		sync_session_free(x.s);
		/* overlapping wants */
		hand_open(&x, b, 0);
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, NULL, 0, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), 0);
		struct sync_want ov[2] = {w, w};
		ov[1].from_seq = 1;
		n = data_msg(buf, sizeof(buf), SYNC_F_HEADS_DONE, NULL, 0, ov, 2, NULL, 0);
		assert_int_equal(hand_send(&x, buf, n), SHOAL_EPROTO);
		sync_session_free(x.s);
		memfeed_free(b);
	}

	/* A session used out of turn. */
	struct memfeed *e = memfeed_new(0);
	struct sync_session *s = sync_session_new(SYNC_RESPONDER, &memfeed_ops, e);
	const uint8_t *out;
	size_t out_len;
	assert_int_equal(sync_session_start(s, &out, &out_len), SHOAL_ESTATE);
	sync_session_free(s);
	s = sync_session_new(SYNC_INITIATOR, &memfeed_ops, e);
	n = enc_digest(buf, sizeof(buf), 0);
	assert_int_equal(sync_session_recv(s, buf, n, &out, &out_len), SHOAL_ESTATE);
	sync_session_free(s);
	memfeed_free(e);
	assert_int_equal(cases, 7);
	chain_free(&c);
	chain_free(&d);
}

/* A peer that never finishes is cut off by the message bound. */
static void session_message_bound(void **state)
{
	(void)state;
	struct chain c;
	chain_make(&c, 31, 1);
	struct memfeed *b = memfeed_new(0);
	give(b, &c, 1, 1);
	struct hand x;
	hand_open(&x, b, 0);
	static uint8_t buf[64];
	size_t n = data_msg(buf, sizeof(buf), 0, NULL, 0, NULL, 0, NULL, 0);
	int rc = 0;
	unsigned sent = 1;
	while (rc == 0 && sent < 3 * SHOAL_SYNC_FRAMES_MAX) {
		rc = hand_send(&x, buf, n);
		sent++;
	}
	assert_int_equal(rc, SHOAL_ETOOBIG);
	assert_true(sent <= SHOAL_SYNC_FRAMES_MAX / 2 + 2);
	sync_session_free(x.s);
	memfeed_free(b);
	chain_free(&c);
}

/* --- blob download tracker ------------------------------------------------------- */

enum { BEHAVE_GOOD, BEHAVE_GARBAGE, BEHAVE_WRONG_TOTAL, BEHAVE_SHORT, BEHAVE_NONE,
       BEHAVE_DOWN };

struct blob_peer {
	uint32_t gid;
	int behave;
	unsigned asked;
};

/* Runs a download to the end against simulated peers; *out holds the data.
 * Returns the final status. */
static enum blob_dl_status blob_run(struct blob_dl *d, struct blob_peer *peers, size_t np,
				    const uint8_t *blob, size_t blob_len, uint8_t *out,
				    unsigned *verify_failures)
{
	for (unsigned steps = 0; steps < 10000; steps++) {
		struct blob_dl_req req;
		enum blob_dl_status st = blob_dl_next(d, &req);
		if (st == BLOB_DL_STALLED)
			return st;
		if (st == BLOB_DL_COMPLETE) {
			uint8_t want[32], got[32];
			crypto_hash_sha256(want, blob, blob_len);
			crypto_hash_sha256(got, out, d->offset);
			if (d->offset == blob_len && memcmp(want, got, 32) == 0)
				return st;
			(*verify_failures)++;
			blob_dl_verify_failed(d);
			continue;
		}
		struct blob_peer *p = NULL;
		for (size_t i = 0; i < np; i++)
			if (peers[i].gid == req.peer)
				p = &peers[i];
		assert_non_null(p);
		p->asked++;
		assert_true(req.len >= 1 && req.len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
		if (p->behave == BEHAVE_NONE) {
			blob_dl_on_none(d, p->gid);
			continue;
		}
		if (p->behave == BEHAVE_DOWN) {
			blob_dl_on_error(d, p->gid);
			continue;
		}
		uint64_t total = blob_len + (p->behave == BEHAVE_WRONG_TOTAL ? 1 : 0);
		uint32_t len = sync_blob_chunk_len(total, req.offset, req.len);
		if (p->behave == BEHAVE_SHORT && len > 1)
			len--;
		uint8_t hash[32];
		memcpy(hash, d->hash, 32);
		int rc = blob_dl_on_chunk(d, p->gid, hash, req.offset, total, len);
		if (rc == 0) {
			for (uint32_t i = 0; i < len; i++)
				out[req.offset + i] =
					p->behave == BEHAVE_GARBAGE ? (uint8_t)~blob[req.offset + i]
								     : blob[req.offset + i];
		} else {
			assert_int_equal(rc, SHOAL_EPROTO);
		}
	}
	fail_msg("download did not end");
	return BLOB_DL_STALLED;
}

static void blob_tracker_routes_around_bad_peers(void **state)
{
	(void)state;
	size_t blob_len = 3 * SHOAL_BLOB_CHUNK_BYTES_MAX + 1234;
	uint8_t *blob = malloc(blob_len), *out = calloc(1, blob_len);
	for (size_t i = 0; i < blob_len; i++)
		blob[i] = (uint8_t)(i * 31 + 7);
	uint8_t hash[32];
	crypto_hash_sha256(hash, blob, blob_len);

	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct blob_peer peers[] = {
			{10, BEHAVE_GARBAGE, 0}, {11, BEHAVE_WRONG_TOTAL, 0},
			{12, BEHAVE_SHORT, 0},   {13, BEHAVE_NONE, 0},
			{14, BEHAVE_DOWN, 0},    {15, BEHAVE_GOOD, 0},
		};
		size_t np = sizeof(peers) / sizeof(peers[0]);
		struct blob_dl d;
		assert_int_equal(blob_dl_init(&d, hash, blob_len, true, 0, seed), 0);
		for (size_t i = 0; i < np; i++)
			assert_int_equal(blob_dl_add_peer(&d, peers[i].gid), 0);
		memset(out, 0, blob_len);
		unsigned vf = 0;
		assert_int_equal(blob_run(&d, peers, np, blob, blob_len, out, &vf),
				 BLOB_DL_COMPLETE);
		assert_memory_equal(out, blob, blob_len);
		/* The garbage peer is caught only by the whole-blob hash, at most
		 * once; header liars at their first chunk. */
		assert_true(vf <= 1);
		int st = blob_dl_peer_state(&d, 10);
		assert_true(st == BLOB_PEER_BAD || (st == BLOB_PEER_UNTRIED && peers[0].asked == 0));
		assert_true(peers[1].asked <= 1 && peers[2].asked <= 1 && peers[3].asked <= 1);
		assert_true(peers[4].asked <= SHOAL_BLOB_PEER_FAILURES_MAX);
		if (peers[1].asked)
			assert_int_equal(blob_dl_peer_state(&d, 11), BLOB_PEER_BAD);
		if (peers[2].asked)
			assert_int_equal(blob_dl_peer_state(&d, 12), BLOB_PEER_BAD);
		if (peers[3].asked)
			assert_int_equal(blob_dl_peer_state(&d, 13), BLOB_PEER_NONE);
		assert_int_equal(blob_dl_peer_state(&d, 15), BLOB_PEER_OK);
		/* Once a peer serves, the tracker stays with it. */
		assert_int_equal(peers[5].asked, (blob_len + SHOAL_BLOB_CHUNK_BYTES_MAX - 1) /
							 SHOAL_BLOB_CHUNK_BYTES_MAX);
	}

	/* Nobody good: stalls with every peer excluded, and a stalled
	 * download goes on when a peer that said NONE is added again. */
	struct blob_peer bad[] = {{1, BEHAVE_GARBAGE, 0}, {2, BEHAVE_NONE, 0}, {3, BEHAVE_DOWN, 0}};
	struct blob_dl d;
	assert_int_equal(blob_dl_init(&d, hash, blob_len, true, 0, 5), 0);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(blob_dl_add_peer(&d, bad[i].gid), 0);
	unsigned vf = 0;
	assert_int_equal(blob_run(&d, bad, 3, blob, blob_len, out, &vf), BLOB_DL_STALLED);
	assert_int_equal(vf, 1);
	assert_int_equal(blob_dl_peer_state(&d, 1), BLOB_PEER_BAD);
	assert_int_equal(blob_dl_peer_state(&d, 2), BLOB_PEER_NONE);
	assert_int_equal(blob_dl_peer_state(&d, 3), BLOB_PEER_FAILED);
	assert_int_equal(bad[2].asked, SHOAL_BLOB_PEER_FAILURES_MAX);
	bad[1].behave = BEHAVE_GOOD; /* it fetched the blob meanwhile */
	assert_int_equal(blob_dl_add_peer(&d, 2), 0);
	assert_int_equal(blob_dl_add_peer(&d, 1), 0); /* bad stays bad */
	assert_int_equal(blob_dl_peer_state(&d, 1), BLOB_PEER_BAD);
	assert_int_equal(blob_run(&d, bad, 3, blob, blob_len, out, &vf), BLOB_DL_COMPLETE);
	assert_memory_equal(out, blob, blob_len);

	/* At most SHOAL_BLOB_PEERS_TRIED_MAX distinct peers per download. */
	struct blob_peer none[SHOAL_BLOB_PEERS_TRIED_MAX + 4];
	assert_int_equal(blob_dl_init(&d, hash, blob_len, true, 0, 6), 0);
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		none[i] = (struct blob_peer){(uint32_t)(100 + i), BEHAVE_NONE, 0};
		assert_int_equal(blob_dl_add_peer(&d, none[i].gid), 0);
	}
	assert_int_equal(blob_run(&d, none, sizeof(none) / sizeof(none[0]), blob, blob_len, out,
				  &vf),
			 BLOB_DL_STALLED);
	unsigned asked = 0;
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		asked += none[i].asked;
	assert_int_equal(asked, SHOAL_BLOB_PEERS_TRIED_MAX);

	/* Bounds and misuse. */
	assert_int_equal(blob_dl_init(&d, hash, (uint64_t)SHOAL_BLOB_BYTES_MAX + 1, true, 0, 1),
			 SHOAL_EINVAL);
	assert_int_equal(blob_dl_init(&d, hash, 10, true, 11, 1), SHOAL_EINVAL);
	assert_int_equal(blob_dl_init(&d, hash, 10, true, 0, 1), 0);
	assert_int_equal(blob_dl_on_chunk(&d, 1, hash, 0, 10, 10), SHOAL_ESTATE);
	for (uint32_t i = 0; i < SHOAL_BLOB_PEERS_MAX; i++)
		assert_int_equal(blob_dl_add_peer(&d, i), 0);
	assert_int_equal(blob_dl_add_peer(&d, 9999), SHOAL_EFULL);
	assert_int_equal(blob_dl_add_peer(&d, 3), 0); /* known: fine */
	struct blob_dl_req req;
	assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_ASK);
	uint8_t other[32] = {1};
	assert_int_equal(blob_dl_on_chunk(&d, req.peer == 0 ? 1 : 0, hash, 0, 10, 10),
			 SHOAL_ESTATE); /* not the peer asked */
	struct blob_dl_req again;
	assert_int_equal(blob_dl_next(&d, &again), BLOB_DL_ASK); /* still outstanding */
	assert_memory_equal(&again, &req, sizeof(req));
	assert_int_equal(blob_dl_on_chunk(&d, req.peer, other, 0, 10, 10), SHOAL_EPROTO);
	assert_int_equal(blob_dl_peer_state(&d, req.peer), BLOB_PEER_BAD);
	assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_ASK);
	assert_int_equal(blob_dl_on_chunk(&d, req.peer, hash, 1, 10, 9), SHOAL_EPROTO); /* offset */

	/* A preferred peer (the announcer) is asked first. */
	for (uint64_t seed = 1; seed <= 8; seed++) {
		assert_int_equal(blob_dl_init(&d, hash, 10, true, 0, seed), 0);
		for (uint32_t g = 1; g <= 5; g++)
			assert_int_equal(blob_dl_add_peer(&d, g), 0);
		assert_int_equal(blob_dl_prefer(&d, 4), 0);
		assert_int_equal(blob_dl_prefer(&d, 77), SHOAL_ENOTFOUND);
		assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_ASK);
		assert_int_equal(req.peer, 4);
		assert_int_equal(blob_dl_prefer(&d, 2), SHOAL_ESTATE); /* 4 is being asked */
		blob_dl_on_none(&d, 4);
		assert_int_equal(blob_dl_prefer(&d, 4), SHOAL_ESTATE); /* said NONE */
	}

	/* An empty blob is complete at once. */
	assert_int_equal(blob_dl_init(&d, hash, 0, true, 0, 1), 0);
	assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_COMPLETE);
	free(blob);
	free(out);
}

static void blob_tracker_resumes(void **state)
{
	(void)state;
	size_t blob_len = 4 * SHOAL_BLOB_CHUNK_BYTES_MAX;
	uint8_t *blob = malloc(blob_len), *out = calloc(1, blob_len);
	for (size_t i = 0; i < blob_len; i++)
		blob[i] = (uint8_t)(i ^ (i >> 9));
	uint8_t hash[32];
	crypto_hash_sha256(hash, blob, blob_len);
	struct blob_peer good[] = {{1, BEHAVE_GOOD, 0}};

	/* Resume with two chunks held: only the rest is asked for. */
	uint64_t held = 2 * SHOAL_BLOB_CHUNK_BYTES_MAX + 17;
	memcpy(out, blob, held);
	struct blob_dl d;
	assert_int_equal(blob_dl_init(&d, hash, blob_len, true, held, 3), 0);
	assert_int_equal(blob_dl_add_peer(&d, 1), 0);
	struct blob_dl_req req;
	assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_ASK);
	assert_int_equal(req.offset, held);
	assert_int_equal(req.len, SHOAL_BLOB_CHUNK_BYTES_MAX);
	unsigned vf = 0;
	assert_int_equal(blob_run(&d, good, 1, blob, blob_len, out, &vf), BLOB_DL_COMPLETE);
	assert_int_equal(vf, 0);
	assert_memory_equal(out, blob, blob_len);
	assert_int_equal(d.stats.bytes, blob_len - held);
	assert_int_equal(good[0].asked, 2);

	/* Resumed bytes that were corrupt: the hash fails, nobody is blamed
	 * (the good peer served only the tail), and the retry from 0 passes. */
	memset(out, 0xee, held);
	good[0].asked = 0;
	assert_int_equal(blob_dl_init(&d, hash, blob_len, true, held, 3), 0);
	assert_int_equal(blob_dl_add_peer(&d, 1), 0);
	assert_int_equal(blob_run(&d, good, 1, blob, blob_len, out, &vf), BLOB_DL_COMPLETE);
	assert_int_equal(vf, 1);
	assert_int_equal(blob_dl_peer_state(&d, 1), BLOB_PEER_OK);
	assert_memory_equal(out, blob, blob_len);
	assert_int_equal(d.stats.restarts, 1);

	/* Length known only as a bound: the first chunk fixes it; a peer that
	 * claims more than the bound is excluded. */
	size_t small = SHOAL_BLOB_CHUNK_BYTES_MAX + 10;
	uint8_t shash[32];
	crypto_hash_sha256(shash, blob, small);
	struct blob_peer two[] = {{1, BEHAVE_GOOD, 0}, {2, BEHAVE_GOOD, 0}};
	assert_int_equal(blob_dl_init(&d, shash, small + 100, false, 0, 9), 0);
	assert_int_equal(blob_dl_add_peer(&d, 1), 0);
	assert_int_equal(blob_dl_add_peer(&d, 2), 0);
	assert_int_equal(blob_dl_next(&d, &req), BLOB_DL_ASK);
	assert_int_equal(blob_dl_on_chunk(&d, req.peer, shash, 0, small + 101,
					  SHOAL_BLOB_CHUNK_BYTES_MAX),
			 SHOAL_EPROTO);
	memset(out, 0, blob_len);
	assert_int_equal(blob_run(&d, two, 2, blob, small, out, &vf), BLOB_DL_COMPLETE);
	assert_int_equal(d.total, small);
	assert_memory_equal(out, blob, small);
	free(blob);
	free(out);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(codec_round_trips),
		cmocka_unit_test(codec_rejections),
		cmocka_unit_test(memfeed_put_semantics),
		cmocka_unit_test(session_in_sync_is_two_messages),
		cmocka_unit_test(session_root_then_digests),
		cmocka_unit_test(session_converges_stores_with_gaps),
		cmocka_unit_test(session_respects_retention),
		cmocka_unit_test(session_pages_everything),
		cmocka_unit_test(session_with_equivocation_terminates),
		cmocka_unit_test(session_refuses_forged_and_unasked_records),
		cmocka_unit_test(session_refuses_protocol_violations),
		cmocka_unit_test(session_message_bound),
		cmocka_unit_test(blob_tracker_routes_around_bad_peers),
		cmocka_unit_test(blob_tracker_resumes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
