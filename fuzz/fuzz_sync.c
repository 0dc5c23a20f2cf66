/*
 * fuzz_sync.c — the sync message decoder (sync_decode) and the sync session
 * state machine (sync_session_recv) on arbitrary input.
 *
 * Input: mode(u8) | frames, frame = len(u16) | message.
 *   The first frame is also decoded on its own (properties below).
 *   mode bit 0 = 0: the frames go to a responder session over the fixture
 *                   store, one by one;
 *   mode bit 0 = 1: to an initiator session after sync_session_start.
 *   A trailing piece shorter than its length prefix is one last message.
 *
 * Properties checked:
 *   - a message that decodes re-encodes byte for byte (ROOT, DIGEST, DATA through
 *     the builder with the same flags, every blob message): the encoding
 *     is canonical, and every DATA entry the decoder accepted is one the
 *     builder accepts;
 *   - a session never crashes or leaks; each reply decodes and fits
 *     SHOAL_SYNC_MSG_BYTES_MAX; after an error the session is failed and
 *     refuses more input with SHOAL_ESTATE; a done session sends nothing
 *     more; events per message are at most the records it carried;
 *   - the store keeps its guarantees: every record in it verifies.
 *
 * The fixture is rebuilt for every input (deterministic keys), so runs
 * replay. SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_sync writes DIR/sync/: each
 * message type alone, and the initiator's side of real sessions against
 * the fixture (gaps, a fork, fresh records), which drive the responder
 * through every phase.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/memfeed.h"
#include "core/record.h"
#include "core/sync.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

#define FX_AUTHORS 4
#define FX_LEN 8 /* records per author chain */

struct fixture {
	uint8_t pk[FX_AUTHORS][32];
	uint8_t sk[FX_AUTHORS][64];
	struct record chain[FX_AUTHORS][FX_LEN];
	struct record fork[FX_LEN]; /* author 0, forked after seq 3 */
};

static struct fixture fx;

static void fx_build(void)
{
	static bool built;
	if (built)
		return;
	CHECK(sodium_init() >= 0);
	for (int a = 0; a < FX_AUTHORS; a++) {
		uint8_t seed[32] = {0x51, (uint8_t)a};
		crypto_sign_seed_keypair(fx.pk[a], fx.sk[a], seed);
		for (int i = 0; i < FX_LEN; i++) {
			struct record *r = &fx.chain[a][i];
			record_next(r, fx.pk[a], i ? &fx.chain[a][i - 1] : NULL);
			r->kind = (uint8_t)(1 + (a + i) % RECORD_KIND_MAX_);
			r->time_ms = (uint64_t)i;
			r->body_len = (uint32_t)(8 + 16 * a);
			memset(r->body, 'a' + a, r->body_len);
			record_sign(r, fx.sk[a]);
		}
	}
	for (int i = 3; i < FX_LEN; i++) {
		struct record *r = &fx.fork[i];
		record_next(r, fx.pk[0], i == 3 ? &fx.chain[0][2] : &fx.fork[i - 1]);
		r->kind = RECORD_HEALTH;
		r->body_len = 4;
		memcpy(r->body, "fork", 4);
		record_sign(r, fx.sk[0]);
	}
	built = true;
}

static void give(struct memfeed *m, const struct record *recs, int first, int last)
{
	for (int s = first; s <= last; s++) {
		enum repl_put res;
		CHECK(memfeed_put(m, &recs[s - 1], &res) == 0);
	}
}

/* The store under test: author 0 with a gap (1-3, 6-8), author 1 complete,
 * author 2 pruned below 5, author 3 absent. Built once, cloned per input. */
static struct memfeed *fx_build_store(void)
{
	struct memfeed *m = memfeed_new(0);
	CHECK(m != NULL);
	give(m, fx.chain[0], 1, 3);
	give(m, fx.chain[0], 6, 8);
	give(m, fx.chain[1], 1, FX_LEN);
	give(m, fx.chain[2], 1, FX_LEN);
	CHECK(memfeed_prune(m, fx.pk[2], 5) == 4);
	return m;
}

static struct memfeed *pristine;

static struct memfeed *fx_store(void)
{
	if (!pristine)
		pristine = fx_build_store();
	struct memfeed *m = memfeed_clone(pristine);
	CHECK(m != NULL);
	return m;
}

/* --- decoder properties ---------------------------------------------------------- */

static void check_reencode(const uint8_t *p, size_t len)
{
	struct sync_msg m;
	if (sync_decode(p, len, &m) != 0)
		return;
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX];
	struct wr w = wr_init(buf, sizeof(buf));
	size_t n = 0;
	switch (m.type) {
	case SYNC_DIGEST:
		sync_put_digest(&w, (const uint8_t(*)[SHOAL_SYNC_DIGEST_BYTES])m.digest);
		n = w.len;
		break;
	case SYNC_ROOT:
		sync_put_root(&w, m.root);
		n = w.len;
		break;
	case SYNC_DATA: {
		struct sync_data_wr b;
		sync_data_begin(&b, buf, sizeof(buf));
		struct sync_head h;
		struct sync_want wt;
		struct record r;
		unsigned heads = 0, wants = 0, recs = 0;
		while (sync_next_head(&m, &h)) {
			CHECK(sync_data_add_head(&b, &h));
			heads++;
		}
		while (sync_next_want(&m, &wt)) {
			CHECK(sync_data_add_want(&b, &wt));
			wants++;
		}
		while (sync_next_record(&m, &r)) {
			CHECK(sync_data_add_record(&b, &r));
			recs++;
		}
		CHECK(heads == m.heads_count && wants == m.wants_count && recs == m.records_count);
		n = sync_data_end(&b, m.flags);
		break;
	}
	case SYNC_BLOB_REQ:
		sync_put_blob_req(&w, m.hash, m.offset, m.len);
		n = w.len;
		break;
	case SYNC_BLOB_CHUNK:
		sync_put_blob_chunk(&w, m.hash, m.offset, m.total, m.data, m.len);
		n = w.len;
		break;
	case SYNC_BLOB_NONE:
		sync_put_blob_none(&w, m.hash);
		n = w.len;
		break;
	default:
		abort();
	}
	CHECK(wr_ok(&w));
	CHECK(n == len);
	CHECK(memcmp(buf, p, len) == 0);
}

/* --- session properties ---------------------------------------------------------- */

/* Records the session added verify (the pristine ones were checked when the
 * fixture was built). */
static void check_store(struct memfeed *m)
{
	for (int a = 0; a < FX_AUTHORS; a++)
		for (uint64_t s = 1; s <= FX_LEN; s++) {
			struct record r;
			if (memfeed_get(m, fx.pk[a], s, &r) == 0 &&
			    !memfeed_has(pristine, fx.pk[a], s))
				CHECK(record_verify(&r) == 0);
		}
}

static void check_reply(const uint8_t *out, size_t out_len)
{
	if (out_len == 0)
		return;
	CHECK(out_len <= SHOAL_SYNC_MSG_BYTES_MAX);
	struct sync_msg m;
	CHECK(sync_decode(out, out_len, &m) == 0);
	CHECK(m.type == SYNC_ROOT || m.type == SYNC_DIGEST || m.type == SYNC_DATA);
}

static void run_session(const uint8_t *data, size_t size)
{
	if (size < 1)
		return;
	bool initiator = data[0] & 1;
	struct memfeed *store = fx_store();
	struct sync_session *s = sync_session_new(initiator ? SYNC_INITIATOR : SYNC_RESPONDER,
						  &memfeed_ops, store);
	CHECK(s != NULL);
	const uint8_t *out;
	size_t out_len;
	if (initiator) {
		CHECK(sync_session_start(s, &out, &out_len) == 0);
		check_reply(out, out_len);
	}
	size_t off = 1;
	while (off < size) {
		size_t len = size - off;
		const uint8_t *msg = data + off;
		if (len >= 2) {
			size_t want = (size_t)data[off] << 8 | data[off + 1];
			msg += 2;
			len -= 2;
			if (want < len)
				len = want;
		}
		off = (size_t)(msg - data) + len;
		bool was_done = sync_session_done(s), was_failed = sync_session_failed(s);
		struct sync_msg peek;
		uint16_t recs = sync_decode(msg, len, &peek) == 0 && peek.type == SYNC_DATA
					? peek.records_count : 0;
		int rc = sync_session_recv(s, msg, len, &out, &out_len);
		if (was_done || was_failed) {
			CHECK(rc == SHOAL_ESTATE && out_len == 0);
			continue;
		}
		if (rc) {
			CHECK(rc < 0 && sync_session_failed(s) && out_len == 0);
			CHECK(sync_session_recv(s, msg, len, &out, &out_len) == SHOAL_ESTATE);
			continue;
		}
		check_reply(out, out_len);
		struct repl_event ev;
		unsigned events = 0;
		while (sync_session_poll(s, &ev)) {
			CHECK(ev.source == REPL_SRC_SYNC && ev.from_gid == REPL_NONE);
			CHECK(ev.kind == REPL_EV_RECORD || ev.kind == REPL_EV_EQUIVOCATION);
			events++;
		}
		CHECK(events <= recs);
	}
	/* Every received record was classified, but the one a session failed
	 * on (a forged signature) when it failed. */
	const struct sync_stats *st = sync_session_stats(s);
	uint64_t classified = st->records_new + st->records_dup + st->records_equivocation +
			      st->records_stale + st->records_refused;
	CHECK(classified == st->records_received ||
	      (sync_session_failed(s) && classified + 1 == st->records_received));
	check_store(store);
	sync_session_free(s);
	memfeed_free(store);
}

/* --- seed corpus ------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

struct seq {
	uint8_t buf[1 << 20];
	size_t len;
};

static void seq_add(struct seq *q, const uint8_t *p, size_t n)
{
	CHECK(n <= 0xffff && q->len + 2 + n <= sizeof(q->buf));
	q->buf[q->len++] = (uint8_t)(n >> 8);
	q->buf[q->len++] = (uint8_t)n;
	memcpy(q->buf + q->len, p, n);
	q->len += n;
}

/* Plays a session between `peer` (as the initiator, or responder when
 * peer_initiates is false) and a fresh fixture store, recording the peer's
 * messages as a corpus entry for the fixture's side. */
static void record_session(const char *dir, const char *name, struct memfeed *peer,
			   bool peer_initiates)
{
	static struct seq q;
	q.len = 0;
	q.buf[q.len++] = peer_initiates ? 0 : 1; /* fixture side's mode */
	struct memfeed *mine = fx_store();
	struct sync_session *ps = sync_session_new(peer_initiates ? SYNC_INITIATOR : SYNC_RESPONDER,
						   &memfeed_ops, peer);
	struct sync_session *ms = sync_session_new(peer_initiates ? SYNC_RESPONDER : SYNC_INITIATOR,
						   &memfeed_ops, mine);
	const uint8_t *msg;
	size_t len;
	struct sync_session *to;
	if (peer_initiates) {
		CHECK(sync_session_start(ps, &msg, &len) == 0);
		seq_add(&q, msg, len);
		to = ms;
	} else {
		CHECK(sync_session_start(ms, &msg, &len) == 0);
		to = ps;
	}
	for (int i = 0; i < 1000; i++) {
		const uint8_t *reply;
		size_t rlen;
		CHECK(sync_session_recv(to, msg, len, &reply, &rlen) == 0);
		if (rlen == 0)
			break;
		if (to == ms) {
			to = ps;
		} else {
			seq_add(&q, reply, rlen);
			to = ms;
		}
		msg = reply;
		len = rlen;
	}
	CHECK(sync_session_done(ps) && sync_session_done(ms));
	write_file(dir, name, q.buf, q.len);
	sync_session_free(ps);
	sync_session_free(ms);
	memfeed_free(mine);
}

/* Peers the corpus sessions run against (fresh each time: a session
 * changes both stores). */
static struct memfeed *make_peer(int kind)
{
	if (kind == 3)
		return fx_store(); /* in sync at once */
	struct memfeed *peer = memfeed_new(0);
	CHECK(peer != NULL);
	if (kind == 1) {
		give(peer, fx.chain[0], 1, 5);      /* fills 4-5 for the fixture */
		give(peer, fx.chain[2], 1, FX_LEN); /* the fixture pruned 1-4 */
		give(peer, fx.chain[3], 2, 6);      /* a feed the fixture lacks, gap first */
	} else if (kind == 2) {
		give(peer, fx.chain[0], 1, 3);
		give(peer, fx.fork, 4, FX_LEN);     /* author 0 forked after 3 */
		give(peer, fx.chain[1], 1, 4);
	}
	return peer;
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/sync", root);
	mkdir(dir, 0755);
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX + 3];
	struct wr w;

	/* Each type alone, as a responder's first message (mode 0). */
	static uint8_t d[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES];
	memset(d, 0x3c, sizeof(d));
	buf[0] = 0;
	w = wr_init(buf + 3, sizeof(buf) - 3);
	sync_put_digest(&w, d);
	buf[1] = (uint8_t)(w.len >> 8);
	buf[2] = (uint8_t)w.len;
	write_file(dir, "digest", buf, 3 + w.len);

	uint8_t rt[SHOAL_SYNC_DIGEST_BYTES];
	sync_root_of((const uint8_t(*)[SHOAL_SYNC_DIGEST_BYTES])d, rt);
	w = wr_init(buf + 3, sizeof(buf) - 3);
	sync_put_root(&w, rt);
	buf[1] = (uint8_t)(w.len >> 8);
	buf[2] = (uint8_t)w.len;
	write_file(dir, "root", buf, 3 + w.len);

	struct sync_data_wr b;
	sync_data_begin(&b, buf + 3, SHOAL_SYNC_MSG_BYTES_MAX);
	struct sync_head h = {.seq_min = 1, .seq_max = 8, .count = 6};
	memcpy(h.author, fx.pk[0], 32);
	record_hash(&fx.chain[0][7], h.hash);
	CHECK(sync_data_add_head(&b, &h));
	struct sync_want wt = {.from_seq = 4, .count = 2};
	memcpy(wt.author, fx.pk[0], 32);
	CHECK(sync_data_add_want(&b, &wt));
	CHECK(sync_data_add_record(&b, &fx.chain[0][3]));
	size_t n = sync_data_end(&b, SYNC_F_HEADS_DONE | SYNC_F_WANTS_DONE);
	buf[1] = (uint8_t)(n >> 8);
	buf[2] = (uint8_t)n;
	write_file(dir, "data-all-sections", buf, 3 + n);

	uint8_t hash[32];
	crypto_hash_sha256(hash, (const uint8_t *)"blob", 4);
	w = wr_init(buf + 3, 200);
	sync_put_blob_req(&w, hash, 0, 4);
	buf[1] = 0;
	buf[2] = (uint8_t)w.len;
	write_file(dir, "blob-req", buf, 3 + w.len);
	w = wr_init(buf + 3, 200);
	sync_put_blob_chunk(&w, hash, 0, 4, (const uint8_t *)"blob", 4);
	buf[2] = (uint8_t)w.len;
	write_file(dir, "blob-chunk", buf, 3 + w.len);
	w = wr_init(buf + 3, 200);
	sync_put_blob_none(&w, hash);
	buf[2] = (uint8_t)w.len;
	write_file(dir, "blob-none", buf, 3 + w.len);

	/* Whole sessions against the fixture store, from both ends. */
	static const char *names[] = {"empty-peer", "gaps", "fork", "in-sync"};
	for (int kind = 0; kind < 4; kind++)
		for (int initiates = 1; initiates >= 0; initiates--) {
			struct memfeed *peer = make_peer(kind);
			char name[64];
			snprintf(name, sizeof(name), "session-%s%s", names[kind],
				 initiates ? "" : "-fixture-initiates");
			record_session(dir, name, peer, initiates);
			memfeed_free(peer);
		}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fx_build();
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fx_build();
	/* The first frame alone, through the decoder. */
	if (size >= 3) {
		size_t len = (size_t)data[1] << 8 | data[2];
		if (len > size - 3)
			len = size - 3;
		check_reencode(data + 3, len);
	}
	check_reencode(data, size);
	run_session(data, size);
	return 0;
}
