/* test_feed.c — the feed store (store/feed.c) on real SQLite files: forged
 * records are never stored, broken links and equivocations are refused and
 * kept as evidence, records delivered in any order, many times, or across
 * a restart (or a kill) end up linked and verified, retention keeps heads,
 * bounds hold, several threads can share one store, and `shoal log verify`
 * finds a row edited behind the store's back. Shuffles use a seed printed
 * on failure (SHOAL_TEST_SEED=N replays one). */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/record.h"
#include "shoal/hex.h"
#include "store/feed.h"
#include "store/store.h"

#define T0 1700000000000ull

static unsigned long test_seed;

/* --- fixtures ------------------------------------------------------------- */

/* A deterministic feed of n records by the key made from seed_byte. */
struct chain {
	uint8_t pk[32], sk[64];
	size_t n;
	struct record *r; /* r[i] has seq i + 1 */
};

static void chain_make(struct chain *c, uint8_t seed_byte, size_t n)
{
	uint8_t seed[32];
	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(c->pk, c->sk, seed);
	c->n = n;
	c->r = calloc(n, sizeof(*c->r));
	assert_non_null(c->r);
	for (size_t i = 0; i < n; i++) {
		struct record *r = &c->r[i];
		record_next(r, c->pk, i ? &c->r[i - 1] : NULL);
		r->kind = (uint8_t)(i % 3 == 2 ? RECORD_ALERT : RECORD_HEALTH);
		r->time_ms = T0 + i;
		r->body_len = (uint32_t)snprintf((char *)r->body, sizeof(r->body),
						 "author=%u n=%zu", seed_byte, i + 1);
		record_sign(r, c->sk);
	}
}

static void chain_free(struct chain *c)
{
	free(c->r);
	c->r = NULL;
}

/* A record by c's key at seq with the given prev and body (signed). */
static struct record forge(const struct chain *c, uint64_t seq, const uint8_t prev[32],
			   const char *body)
{
	struct record r;
	memset(&r, 0, sizeof(r));
	memcpy(r.author, c->pk, 32);
	r.seq = seq;
	if (prev)
		memcpy(r.prev, prev, 32);
	r.kind = RECORD_HEALTH;
	r.time_ms = T0;
	r.body_len = (uint32_t)strlen(body);
	memcpy(r.body, body, r.body_len);
	record_sign(&r, c->sk);
	return r;
}

static struct feed *open_ok(const char *dir)
{
	struct feed *f = NULL;
	char err[FEED_ERR_BYTES];
	int rc = feed_open(dir, &f, err, sizeof(err));
	if (rc)
		fail_msg("feed_open: %s", err);
	assert_non_null(f);
	return f;
}

static enum feed_put_result put_ok(struct feed *f, const struct record *r, uint64_t now)
{
	enum feed_put_result res;
	int rc = feed_put(f, r, now, &res);
	if (rc)
		fail_msg("feed_put seq %llu: %s: %s", (unsigned long long)r->seq,
			 shoal_strerror(rc), feed_errmsg());
	return res;
}

static struct feed_verify_result verify(struct feed *f)
{
	struct feed_verify_result v;
	assert_int_equal(feed_verify(f, NULL, NULL, &v), 0);
	return v;
}

static void assert_verified(struct feed *f)
{
	struct feed_verify_result v = verify(f);
	if (v.faults)
		fail_msg("feed_verify found %llu faults", (unsigned long long)v.faults);
}

static struct feed_head one_head(struct feed *f, const uint8_t *author)
{
	struct feed_head *h = NULL;
	size_t n = 0;
	assert_int_equal(feed_heads(f, &h, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (memcmp(h[i].author, author, 32) == 0) {
			struct feed_head out = h[i];
			free(h);
			return out;
		}
	}
	free(h);
	fail_msg("no head for the author");
	struct feed_head none = {0};
	return none;
}

static size_t evidence_count(struct feed *f, const uint8_t *author)
{
	struct feed_evidence *e = calloc(SHOAL_FEED_RANGE_MAX, sizeof(*e));
	size_t n = 0;
	assert_int_equal(feed_evidence_list(f, author, 0, SHOAL_FEED_RANGE_MAX, e, &n), 0);
	free(e);
	return n;
}

/* Fisher-Yates with a seeded generator (xorshift), so a failure replays. */
static void shuffle(size_t *idx, size_t n, unsigned long *seed)
{
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	for (size_t i = n; i > 1; i--) {
		*seed ^= *seed << 13;
		*seed ^= *seed >> 7;
		*seed ^= *seed << 17;
		size_t j = (size_t)(*seed % i);
		size_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

static char *db_path(const char *dir)
{
	static char p[1200];
	snprintf(p, sizeof(p), "%s/state.db", dir);
	return p;
}

static void raw_exec(const char *dir, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path(dir), &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/* --- opening ---------------------------------------------------------------- */

static void open_creates_reopens_and_shares_state_db(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char sub[1100];
	snprintf(sub, sizeof(sub), "%s/data", dir);
	struct feed *f = open_ok(sub);
	struct stat sb;
	assert_int_equal(stat(db_path(sub), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(sub, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	feed_close(f);

	/* store.c's tables and ours live in one file, opened in either
	 * order, at the same time. */
	struct store *s = NULL;
	char err[STORE_ERR_BYTES];
	assert_int_equal(store_open(sub, &s, err, sizeof(err)), 0);
	f = open_ok(sub);
	uint32_t inc = 0;
	assert_int_equal(store_bump_incarnation(s, &inc), 0);
	struct chain c;
	chain_make(&c, 1, 2);
	assert_int_equal(put_ok(f, &c.r[0], T0), FEED_NEW);
	store_close(s);
	feed_close(f);
	assert_int_equal(store_open(sub, &s, err, sizeof(err)), 0);
	store_close(s);
	f = open_ok(sub);
	assert_int_equal(feed_get(f, c.pk, 1, NULL), 0);
	feed_close(f);

	/* A newer feed schema is refused, not misread. */
	raw_exec(sub, "UPDATE feed_meta SET value = 99 WHERE key = 'schema'");
	char ferr[FEED_ERR_BYTES];
	assert_int_equal(feed_open(sub, &f, ferr, sizeof(ferr)), SHOAL_EVERSION);
	assert_null(f);
	assert_non_null(strstr(ferr, "upgrade shoal"));

	/* A file that is not a database is refused with its path. */
	char junk[1100];
	snprintf(junk, sizeof(junk), "%s/junk", dir);
	mkdir(junk, 0700);
	const char *text = "this is not an SQLite database, only some text in a file\n";
	tu_write_file(db_path(junk), text, strlen(text), 0600);
	assert_int_equal(feed_open(junk, &f, ferr, sizeof(ferr)), SHOAL_EDB);
	assert_non_null(strstr(ferr, "state.db"));
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

static void readonly_open(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char sub[1100], err[FEED_ERR_BYTES];
	struct feed *f = NULL;
	snprintf(sub, sizeof(sub), "%s/none", dir);
	/* Missing: refused, and nothing is created. */
	assert_int_equal(feed_open_readonly(sub, &f, err, sizeof(err)), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, "--data"));
	struct stat sb;
	assert_int_equal(stat(sub, &sb), -1);

	/* A state.db without feed tables (agent never stored a record). */
	struct store *s = NULL;
	char serr[STORE_ERR_BYTES];
	assert_int_equal(store_open(dir, &s, serr, sizeof(serr)), 0);
	store_close(s);
	assert_int_equal(feed_open_readonly(dir, &f, err, sizeof(err)), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, "no feeds"));

	/* With feeds: reads work, writes are refused. */
	struct chain c;
	chain_make(&c, 2, 3);
	struct feed *w = open_ok(dir);
	assert_int_equal(feed_append(w, c.sk, RECORD_HEALTH, T0, "x", 1, NULL), 0);
	assert_int_equal(feed_open_readonly(dir, &f, err, sizeof(err)), 0);
	uint64_t seq = 0;
	assert_int_equal(feed_head(f, c.pk, &seq, NULL), 0);
	assert_int_equal(seq, 1);
	enum feed_put_result res;
	assert_int_equal(feed_put(f, &c.r[0], T0, &res), SHOAL_ESTATE);
	assert_int_equal(feed_append(f, c.sk, RECORD_HEALTH, T0, "x", 1, NULL), SHOAL_ESTATE);
	uint64_t pruned;
	assert_int_equal(feed_prune(f, T0, 0, &pruned), SHOAL_ESTATE);
	/* It sees what the writer commits later (WAL, separate connection). */
	assert_int_equal(feed_append(w, c.sk, RECORD_HEALTH, T0, "y", 1, NULL), 0);
	assert_int_equal(feed_head(f, c.pk, &seq, NULL), 0);
	assert_int_equal(seq, 2);
	feed_close(f);
	feed_close(w);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

/* --- own feed ------------------------------------------------------------- */

static void append_links_and_survives_restart(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain c;
	chain_make(&c, 3, 1);
	struct feed *f = open_ok(dir);
	struct record got[6];
	for (int i = 0; i < 5; i++) {
		char body[32];
		int len = snprintf(body, sizeof(body), "release=r%d state=active", i);
		assert_int_equal(feed_append(f, c.sk, RECORD_HEALTH, T0 + (uint64_t)i, body,
					     (size_t)len, &got[i]),
				 0);
		assert_int_equal(got[i].seq, (uint64_t)i + 1);
		assert_int_equal(record_verify(&got[i]), 0);
		assert_memory_equal(got[i].author, c.pk, 32);
	}
	assert_true(sodium_is_zero(got[0].prev, 32));
	uint8_t h[32];
	record_hash(&got[3], h);
	assert_memory_equal(got[4].prev, h, 32);
	feed_close(f);

	/* Reopened: same head, and the feed continues from it. */
	f = open_ok(dir);
	uint64_t seq = 0;
	uint8_t head[32];
	assert_int_equal(feed_head(f, c.pk, &seq, head), 0);
	assert_int_equal(seq, 5);
	record_hash(&got[4], h);
	assert_memory_equal(head, h, 32);
	assert_int_equal(feed_append(f, c.sk, RECORD_ALERT, T0, "", 0, &got[5]), 0);
	assert_int_equal(got[5].seq, 6);
	assert_memory_equal(got[5].prev, h, 32);
	struct feed_entry e;
	assert_int_equal(feed_get(f, c.pk, 6, &e), 0);
	assert_int_equal(e.rec.body_len, 0);
	assert_int_equal(e.rec.kind, RECORD_ALERT);

	/* The own feed's records are ordinary records to everyone else:
	 * another node stores them with feed_put. */
	char *dir2 = tu_tmpdir();
	struct feed *g = open_ok(dir2);
	for (int i = 5; i >= 0; i--)
		(void)put_ok(g, &got[i], T0);
	struct feed_head fh = one_head(g, c.pk);
	assert_int_equal(fh.count, 6);
	assert_memory_equal(fh.hash, one_head(f, c.pk).hash, 32);
	assert_verified(g);
	feed_close(g);

	/* Bad arguments change nothing. */
	uint8_t big[SHOAL_RECORD_BODY_MAX + 1] = {0};
	assert_int_equal(feed_append(f, c.sk, 0, T0, "", 0, NULL), SHOAL_EINVAL);
	assert_int_equal(feed_append(f, c.sk, RECORD_KIND_MAX_ + 1, T0, "", 0, NULL), SHOAL_EINVAL);
	assert_int_equal(feed_append(f, c.sk, RECORD_HEALTH, T0, big, sizeof(big), NULL),
			 SHOAL_EINVAL);
	assert_int_equal(feed_head(f, c.pk, &seq, NULL), 0);
	assert_int_equal(seq, 6);
	assert_verified(f);

	/* A damaged head row stops the own feed instead of forking it. */
	feed_close(f);
	raw_exec(dir, "UPDATE feed_records SET body = X'00' WHERE seq = 6");
	f = open_ok(dir);
	assert_int_equal(feed_append(f, c.sk, RECORD_HEALTH, T0, "z", 1, NULL), SHOAL_EDB);
	assert_non_null(strstr(feed_errmsg(), "shoal log verify"));
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	tu_rmtree(dir2);
	free(dir);
	free(dir2);
}

/* --- refusals ---------------------------------------------------------------- */

static void forged_records_are_never_stored(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain c, other;
	chain_make(&c, 4, 2);
	chain_make(&other, 5, 1);
	struct feed *f = open_ok(dir);
	enum feed_put_result res;
	struct record r;

	r = c.r[1];
	r.body[0] ^= 1;
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	r = c.r[1];
	r.sig[10] ^= 0x80;
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	r = c.r[1];
	r.author[31] ^= 1;
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	r = c.r[1];
	memcpy(r.author, other.pk, 32); /* someone else's name on it */
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	r = c.r[1];
	r.time_ms++;
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	r = c.r[1];
	r.prev[0] ^= 1;
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EBADSIG);
	assert_non_null(strstr(feed_errmsg(), "signature"));

	/* Structure is checked too, even when signed. */
	r = c.r[0];
	r.prev[0] = 1;
	record_sign(&r, c.sk);
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EPROTO);
	r = c.r[0];
	r.kind = 0;
	record_sign(&r, c.sk);
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_EPROTO);
	r = c.r[1];
	r.seq = FEED_SEQ_MAX + 1;
	record_sign(&r, c.sk);
	assert_int_equal(feed_put(f, &r, T0, &res), SHOAL_ETOOBIG);

	struct feed_head *heads = NULL;
	size_t n = 9;
	assert_int_equal(feed_heads(f, &heads, &n), 0);
	assert_int_equal(n, 0);
	assert_null(heads);
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.records, 0);
	assert_int_equal(st.put_bad_sig, 6);
	assert_int_equal(st.put_invalid, 3);
	assert_int_equal(st.evidence, 0);

	/* The real records still go in. */
	assert_int_equal(put_ok(f, &c.r[0], T0), FEED_NEW);
	assert_int_equal(put_ok(f, &c.r[1], T0), FEED_NEW);
	assert_verified(f);
	feed_close(f);
	chain_free(&c);
	chain_free(&other);
	tu_rmtree(dir);
	free(dir);
}

static void broken_links_are_refused_and_kept_as_evidence(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain c;
	chain_make(&c, 6, 3);
	struct feed *f = open_ok(dir);
	enum feed_put_result res;
	assert_int_equal(put_ok(f, &c.r[0], T0), FEED_NEW);
	assert_int_equal(put_ok(f, &c.r[2], T0), FEED_NEW_GAP);

	/* Seq 2 whose prev is not seq 1's hash. */
	uint8_t junk[32];
	memset(junk, 0xab, sizeof(junk));
	struct record bad_prev = forge(&c, 2, junk, "forked");
	assert_int_equal(feed_put(f, &bad_prev, T0 + 1, &res), SHOAL_EPROTO);
	assert_int_equal(res, FEED_BROKEN_LINK);
	assert_non_null(strstr(feed_errmsg(), "broken link"));
	assert_int_equal(feed_get(f, c.pk, 2, NULL), SHOAL_ENOTFOUND);

	/* Seq 2 that links to seq 1 but is not the record seq 3 links to. */
	uint8_t h1[32];
	record_hash(&c.r[0], h1);
	struct record bad_next = forge(&c, 2, h1, "another seq 2");
	assert_int_equal(feed_put(f, &bad_next, T0 + 2, &res), SHOAL_EPROTO);
	assert_int_equal(res, FEED_BROKEN_LINK);
	assert_int_equal(feed_get(f, c.pk, 2, NULL), SHOAL_ENOTFOUND);

	/* Both are evidence, each naming the held record it contradicts. */
	struct feed_evidence ev[4];
	size_t n = 0;
	assert_int_equal(feed_evidence_list(f, NULL, 0, 4, ev, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].kind, FEED_EVIDENCE_BROKEN_LINK);
	assert_int_equal(ev[0].seq, 2);
	assert_int_equal(ev[0].held.seq, 1);
	assert_memory_equal(ev[0].offending.body, "forked", 6);
	assert_int_equal(ev[1].held.seq, 3);
	assert_int_equal(ev[1].received_ms, T0 + 2);
	assert_true(ev[1].id > ev[0].id);
	assert_int_equal(record_verify(&ev[1].offending), 0);
	assert_true(one_head(f, c.pk).equivocating);

	/* The same bad record again: refused again, no second row. */
	assert_int_equal(feed_put(f, &bad_prev, T0 + 3, &res), SHOAL_EPROTO);
	assert_int_equal(evidence_count(f, c.pk), 2);

	/* The real seq 2 fills the gap. */
	assert_int_equal(put_ok(f, &c.r[1], T0), FEED_NEW);
	struct feed_head h = one_head(f, c.pk);
	assert_int_equal(h.count, 3);
	assert_int_equal(h.seq_max, 3);
	struct feed_verify_result v = verify(f);
	assert_int_equal(v.faults, 0);
	assert_int_equal(v.evidence, 2);
	assert_int_equal(v.equivocating_authors, 1);
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.put_broken_link, 3);
	assert_int_equal(st.equivocating_authors, 1);
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

static void equivocation_keeps_first_and_flags_author(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain c, honest;
	chain_make(&c, 7, 3);
	chain_make(&honest, 8, 2);
	struct feed *f = open_ok(dir);
	for (size_t i = 0; i < 3; i++)
		(void)put_ok(f, &c.r[i], T0);
	for (size_t i = 0; i < 2; i++)
		(void)put_ok(f, &honest.r[i], T0);
	struct feed_head before = one_head(f, c.pk);

	/* A second seq 3 that links to seq 2 just as well. */
	uint8_t h2[32];
	record_hash(&c.r[1], h2);
	struct record twin = forge(&c, 3, h2, "the other story");
	assert_int_equal(put_ok(f, &twin, T0 + 5), FEED_EQUIVOCATION);

	/* The first-seen record stays; the head did not move. */
	struct feed_entry e;
	assert_int_equal(feed_get(f, c.pk, 3, &e), 0);
	assert_memory_equal(e.rec.sig, c.r[2].sig, 64);
	struct feed_head after = one_head(f, c.pk);
	assert_memory_equal(after.hash, before.hash, 32);
	assert_int_equal(after.seq_max, 3);
	assert_int_equal(after.count, 3);
	assert_true(after.equivocating);
	assert_false(before.equivocating);
	assert_false(one_head(f, honest.pk).equivocating);

	/* Evidence: both records, both verifiable by anyone. */
	struct feed_evidence ev;
	size_t n = 0;
	assert_int_equal(feed_evidence_list(f, c.pk, 0, 1, &ev, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ev.kind, FEED_EVIDENCE_EQUIVOCATION);
	assert_int_equal(ev.seq, 3);
	assert_memory_equal(ev.held.sig, c.r[2].sig, 64);
	assert_memory_equal(ev.offending.sig, twin.sig, 64);
	assert_int_equal(record_verify(&ev.held), 0);
	assert_int_equal(record_verify(&ev.offending), 0);
	assert_int_equal(evidence_count(f, honest.pk), 0);

	/* Delivered again (gossip repeats): still one row. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(put_ok(f, &twin, T0 + 6), FEED_EQUIVOCATION);
	assert_int_equal(evidence_count(f, NULL), 1);

	/* A later record on the twin's branch does not link to the held
	 * seq 3: refused too. */
	uint8_t ht[32];
	record_hash(&twin, ht);
	struct record branch = forge(&c, 4, ht, "branch");
	enum feed_put_result res;
	assert_int_equal(feed_put(f, &branch, T0, &res), SHOAL_EPROTO);
	assert_int_equal(res, FEED_BROKEN_LINK);
	assert_int_equal(evidence_count(f, c.pk), 2);

	/* Evidence per author is bounded: more conflicts only count. */
	struct feed_limits lim;
	feed_limits_default(&lim);
	lim.evidence_per_author_max = 3;
	assert_int_equal(feed_set_limits(f, &lim), 0);
	for (int i = 0; i < 4; i++) {
		char body[32];
		snprintf(body, sizeof(body), "story %d", i);
		struct record x = forge(&c, 2, NULL, body);
		record_hash(&c.r[0], x.prev);
		record_sign(&x, c.sk);
		assert_int_equal(put_ok(f, &x, T0), FEED_EQUIVOCATION);
	}
	assert_int_equal(evidence_count(f, c.pk), 3);
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.evidence_dropped, 3);
	assert_int_equal(st.put_equivocation, 10);
	assert_int_equal(st.equivocating_authors, 1);
	assert_int_equal(st.records, 5);
	lim.evidence_per_author_max = SHOAL_FEED_EVIDENCE_PER_AUTHOR_MAX + 1;
	assert_int_equal(feed_set_limits(f, &lim), SHOAL_EINVAL);

	struct feed_verify_result v = verify(f);
	assert_int_equal(v.faults, 0);
	assert_int_equal(v.evidence, 3);
	feed_close(f);
	chain_free(&c);
	chain_free(&honest);
	tu_rmtree(dir);
	free(dir);
}

/* --- delivery order --------------------------------------------------------- */

static void reordered_delivery_links_up(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { N = 200 };
	struct chain a, b;
	chain_make(&a, 9, N);
	chain_make(&b, 10, N);
	struct feed *f = open_ok(dir);
	size_t idx[2 * N];
	unsigned long seed = test_seed;
	shuffle(idx, 2 * N, &seed);
	size_t gaps = 0;
	for (size_t i = 0; i < 2 * N; i++) {
		const struct record *r = idx[i] < N ? &a.r[idx[i]] : &b.r[idx[i] - N];
		enum feed_put_result res = put_ok(f, r, T0);
		if (res != FEED_NEW && res != FEED_NEW_GAP)
			fail_msg("seed %lu: record %zu gave %s", test_seed, idx[i],
				 feed_put_result_name(res));
		gaps += res == FEED_NEW_GAP;
		if (i == N) {
			/* Midway: the store reports what is still missing. */
			struct feed_gap g[SHOAL_FEED_GAPS_MAX];
			size_t ng = 0;
			assert_int_equal(feed_gaps(f, a.pk, 1, SHOAL_FEED_GAPS_MAX, g, &ng), 0);
			struct feed_head h = one_head(f, a.pk);
			uint64_t missing = 0;
			for (size_t k = 0; k < ng; k++) {
				assert_true(g[k].first >= h.seq_min && g[k].last < h.seq_max);
				assert_true(g[k].first <= g[k].last);
				missing += g[k].last - g[k].first + 1;
			}
			if (ng < SHOAL_FEED_GAPS_MAX)
				assert_int_equal(missing, h.seq_max - h.seq_min + 1 - h.count);
		}
	}
	assert_true(gaps > 0);
	struct chain *cs[2] = {&a, &b};
	for (int k = 0; k < 2; k++) {
		struct feed_head h = one_head(f, cs[k]->pk);
		assert_int_equal(h.seq_min, 1);
		assert_int_equal(h.seq_max, N);
		assert_int_equal(h.count, N);
		assert_false(h.equivocating);
		uint8_t want[32];
		record_hash(&cs[k]->r[N - 1], want);
		assert_memory_equal(h.hash, want, 32);
		struct feed_gap g[4];
		size_t ng = 9;
		assert_int_equal(feed_gaps(f, cs[k]->pk, 0, 4, g, &ng), 0);
		assert_int_equal(ng, 0);
	}
	struct feed_verify_result v = verify(f);
	assert_int_equal(v.faults, 0);
	assert_int_equal(v.records, 2 * N);
	assert_int_equal(v.authors, 2);

	/* feed_range pages through a feed in order. */
	struct feed_entry *e = calloc(64, sizeof(*e));
	uint64_t next = 1;
	size_t total = 0, n = 0;
	do {
		assert_int_equal(feed_range(f, a.pk, next, 64, e, &n), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(e[i].rec.seq, next + i);
			assert_memory_equal(e[i].rec.sig, a.r[next + i - 1].sig, 64);
		}
		total += n;
		next += n;
	} while (n == 64);
	assert_int_equal(total, N);
	assert_int_equal(feed_range(f, a.pk, 1, SHOAL_FEED_RANGE_MAX + 1, e, &n), SHOAL_EINVAL);

	/* feed_list: all alerts of every author, page by page. */
	struct feed_filter flt;
	memset(&flt, 0, sizeof(flt));
	flt.kind = RECORD_ALERT;
	total = 0;
	do {
		assert_int_equal(feed_list(f, &flt, 64, e, &n), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(e[i].rec.kind, RECORD_ALERT);
		total += n;
		if (n) {
			flt.has_cursor = true;
			memcpy(flt.after_author, e[n - 1].rec.author, 32);
			flt.after_seq = e[n - 1].rec.seq;
		}
	} while (n == 64);
	assert_int_equal(total, 2 * (N / 3));
	/* ... and one author's, with a cursor. */
	memset(&flt, 0, sizeof(flt));
	flt.by_author = true;
	memcpy(flt.author, b.pk, 32);
	flt.has_cursor = true;
	flt.after_seq = N - 10;
	assert_int_equal(feed_list(f, &flt, 64, e, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(e[0].rec.seq, N - 9);
	assert_memory_equal(e[0].rec.author, b.pk, 32);
	free(e);
	feed_close(f);
	chain_free(&a);
	chain_free(&b);
	tu_rmtree(dir);
	free(dir);
}

static void duplicates_are_stored_once(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain c;
	chain_make(&c, 11, 3);
	struct feed *f = open_ok(dir);
	assert_int_equal(put_ok(f, &c.r[1], T0), FEED_NEW_GAP);
	for (int i = 0; i < 50; i++)
		assert_int_equal(put_ok(f, &c.r[1], T0 + (uint64_t)i), FEED_DUP);
	struct feed_entry e;
	assert_int_equal(feed_get(f, c.pk, 2, &e), 0);
	assert_int_equal(e.received_ms, T0); /* a duplicate changes nothing */
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.records, 1);
	assert_int_equal(st.put_dup, 50);
	assert_int_equal(st.put_gap, 1);
	assert_int_equal(st.evidence, 0);
	assert_int_equal(one_head(f, c.pk).count, 1);
	assert_verified(f);
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

/* --- restart ------------------------------------------------------------------ */

static void restart_mid_sync_resumes(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { N = 100 };
	struct chain c;
	chain_make(&c, 12, N);
	struct feed *f = open_ok(dir);
	size_t idx[N / 2];
	unsigned long seed = test_seed + 1;
	shuffle(idx, N / 2, &seed);
	for (size_t i = 0; i < N / 2; i++)
		(void)put_ok(f, &c.r[idx[i]], T0);
	struct feed_head h1 = one_head(f, c.pk);
	feed_close(f);

	f = open_ok(dir);
	struct feed_head h2 = one_head(f, c.pk);
	assert_memory_equal(&h1, &h2, sizeof(h1));
	assert_int_equal(h2.seq_max, N / 2);
	assert_int_equal(h2.count, N / 2);
	/* The sender resumes a little before where it stopped. */
	for (size_t i = N / 2 - 10; i < N; i++) {
		enum feed_put_result res = put_ok(f, &c.r[i], T0);
		assert_int_equal(res, i < N / 2 ? FEED_DUP : FEED_NEW);
	}
	struct feed_head h3 = one_head(f, c.pk);
	assert_int_equal(h3.count, N);
	assert_int_equal(h3.seq_max, N);
	assert_verified(f);
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

/* A writer killed with SIGKILL at an arbitrary point leaves a store that
 * verifies, and delivery simply resumes. */
static void killed_writer_leaves_consistent_store(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { N = 400 };
	struct chain c;
	chain_make(&c, 13, N);
	size_t idx[N];
	unsigned long seed = test_seed + 2;
	shuffle(idx, N, &seed);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		struct feed *f = NULL;
		char err[FEED_ERR_BYTES];
		if (feed_open(dir, &f, err, sizeof(err)) != 0)
			_exit(3);
		for (size_t i = 0; i < N; i++) {
			enum feed_put_result res;
			if (feed_put(f, &c.r[idx[i]], T0, &res) != 0)
				_exit(4);
			char b = 1;
			if (write(fds[1], &b, 1) != 1)
				_exit(5);
		}
		_exit(0);
	}
	close(fds[1]);
	char buf[64];
	size_t got = 0;
	while (got < 100) {
		ssize_t r = read(fds[0], buf, sizeof(buf) < 100 - got ? sizeof(buf) : 100 - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	kill(pid, SIGKILL);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(fds[0]);

	struct feed *f = open_ok(dir);
	struct feed_verify_result v = verify(f);
	if (v.faults)
		fail_msg("seed %lu: %llu faults after the kill", test_seed,
			 (unsigned long long)v.faults);
	assert_true(v.records >= 100);
	for (size_t i = 0; i < N; i++) {
		enum feed_put_result res = put_ok(f, &c.r[idx[i]], T0);
		assert_true(res == FEED_NEW || res == FEED_NEW_GAP || res == FEED_DUP);
	}
	struct feed_head h = one_head(f, c.pk);
	assert_int_equal(h.count, N);
	assert_int_equal(h.seq_max, N);
	assert_verified(f);
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

/* --- retention and bounds --------------------------------------------------- */

static void retention_prunes_but_keeps_heads(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain a, b;
	chain_make(&a, 14, 20);
	chain_make(&b, 15, 3);
	struct feed *f = open_ok(dir);
	for (size_t i = 0; i < 10; i++)
		(void)put_ok(f, &a.r[i], 1000);
	for (size_t i = 10; i < 20; i++)
		(void)put_ok(f, &a.r[i], 5000);
	for (size_t i = 0; i < 3; i++)
		(void)put_ok(f, &b.r[i], 1000); /* all old, head included */

	uint64_t pruned = 0;
	assert_int_equal(feed_prune(f, 10000, 6000, &pruned), 0); /* cutoff 4000 */
	assert_int_equal(pruned, 12);
	struct feed_head ha = one_head(f, a.pk), hb = one_head(f, b.pk);
	assert_int_equal(ha.seq_min, 11);
	assert_int_equal(ha.seq_max, 20);
	assert_int_equal(ha.count, 10);
	assert_int_equal(ha.pruned_through, 10);
	assert_int_equal(hb.seq_min, 3);
	assert_int_equal(hb.count, 1);
	assert_int_equal(feed_get(f, b.pk, 3, NULL), 0);
	assert_int_equal(feed_get(f, a.pk, 10, NULL), SHOAL_ENOTFOUND);
	assert_verified(f);

	/* A pruned record delivered again is not stored again. */
	assert_int_equal(put_ok(f, &a.r[4], 11000), FEED_STALE);
	assert_int_equal(feed_get(f, a.pk, 5, NULL), SHOAL_ENOTFOUND);
	/* Nothing is missing above the pruned part. */
	struct feed_gap g[4];
	size_t ng = 9;
	assert_int_equal(feed_gaps(f, a.pk, 1, 4, g, &ng), 0);
	assert_int_equal(ng, 0);
	/* New records still link to the kept head. */
	struct chain b4;
	chain_make(&b4, 15, 4);
	assert_int_equal(put_ok(f, &b4.r[3], 12000), FEED_NEW);

	/* Retention 0: only the heads are left. */
	assert_int_equal(feed_prune(f, 20000, 0, &pruned), 0);
	assert_int_equal(pruned, 9 + 1);
	assert_int_equal(one_head(f, a.pk).count, 1);
	assert_int_equal(one_head(f, b.pk).seq_max, 4);
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.records, 2);
	assert_int_equal(st.pruned, 22);
	assert_verified(f);
	/* Retention longer than the clock: nothing to do. */
	assert_int_equal(feed_prune(f, 20000, 30000, &pruned), 0);
	assert_int_equal(pruned, 0);
	feed_close(f);
	chain_free(&a);
	chain_free(&b);
	chain_free(&b4);
	tu_rmtree(dir);
	free(dir);
}

/* More than one prune batch, with evidence that must survive. */
static void prune_in_batches(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { N = SHOAL_FEED_PRUNE_BATCH_MAX + 150 };
	struct chain c;
	chain_make(&c, 16, N);
	struct feed *f = open_ok(dir);
	for (size_t i = 0; i < N; i++)
		(void)put_ok(f, &c.r[i], 1000 + i);
	struct record twin = forge(&c, 5, NULL, "twin");
	record_hash(&c.r[3], twin.prev);
	record_sign(&twin, c.sk);
	assert_int_equal(put_ok(f, &twin, 1000), FEED_EQUIVOCATION);
	uint64_t pruned = 0;
	assert_int_equal(feed_prune(f, 100000, 1, &pruned), 0);
	assert_int_equal(pruned, N - 1);
	struct feed_head h = one_head(f, c.pk);
	assert_int_equal(h.count, 1);
	assert_int_equal(h.seq_min, N);
	assert_int_equal(h.pruned_through, N - 1);
	assert_true(h.equivocating);
	struct feed_verify_result v = verify(f);
	assert_int_equal(v.faults, 0);
	assert_int_equal(v.evidence, 1);
	feed_close(f);
	chain_free(&c);
	tu_rmtree(dir);
	free(dir);
}

static void bounds_refuse_with_efull(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct chain a, b, own;
	chain_make(&a, 17, 7);
	chain_make(&b, 18, 4);
	chain_make(&own, 19, 1);
	struct feed *f = open_ok(dir);
	struct feed_limits lim;
	feed_limits_default(&lim);
	assert_int_equal(lim.records_max, SHOAL_FEED_RECORDS_MAX);
	lim.records_per_author_max = 5;
	lim.records_max = 8;
	assert_int_equal(feed_set_limits(f, &lim), 0);
	enum feed_put_result res;
	for (size_t i = 0; i < 5; i++)
		(void)put_ok(f, &a.r[i], 1000);
	assert_int_equal(feed_put(f, &a.r[5], 1000, &res), SHOAL_EFULL);
	assert_non_null(strstr(feed_errmsg(), "bound"));
	for (size_t i = 0; i < 3; i++)
		(void)put_ok(f, &b.r[i], 1000);
	assert_int_equal(feed_put(f, &b.r[3], 1000, &res), SHOAL_EFULL); /* total */
	assert_int_equal(feed_append(f, own.sk, RECORD_HEALTH, T0, "x", 1, NULL), SHOAL_EFULL);
	assert_int_equal(feed_get(f, a.pk, 6, NULL), SHOAL_ENOTFOUND);
	assert_int_equal(feed_get(f, b.pk, 4, NULL), SHOAL_ENOTFOUND);
	struct feed_stats st;
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.records, 8);
	assert_int_equal(st.put_full, 3);
	/* A duplicate at the bound is still a duplicate, not an error. */
	assert_int_equal(put_ok(f, &a.r[0], 1000), FEED_DUP);
	/* Retention makes room. */
	uint64_t pruned = 0;
	assert_int_equal(feed_prune(f, 2000, 500, &pruned), 0);
	assert_int_equal(pruned, 6);
	assert_int_equal(put_ok(f, &a.r[5], 3000), FEED_NEW);
	assert_int_equal(put_ok(f, &b.r[3], 3000), FEED_NEW);
	assert_int_equal(feed_append(f, own.sk, RECORD_HEALTH, T0, "x", 1, NULL), 0);
	assert_verified(f);

	/* Authors are bounded too: a fourth author is refused, known ones
	 * still grow. */
	struct chain d;
	chain_make(&d, 22, 1);
	lim.records_max = SHOAL_FEED_RECORDS_MAX;
	lim.authors_max = 3;
	assert_int_equal(feed_set_limits(f, &lim), 0);
	assert_int_equal(feed_put(f, &d.r[0], 3000, &res), SHOAL_EFULL);
	assert_non_null(strstr(feed_errmsg(), "authors"));
	assert_int_equal(put_ok(f, &a.r[6], 3000), FEED_NEW);
	lim.authors_max = 0;
	assert_int_equal(feed_set_limits(f, &lim), SHOAL_EINVAL);
	assert_int_equal(feed_stats(f, &st), 0);
	assert_int_equal(st.authors, 3);
	chain_free(&d);
	feed_close(f);
	chain_free(&a);
	chain_free(&b);
	chain_free(&own);
	tu_rmtree(dir);
	free(dir);
}

/* --- threads --------------------------------------------------------------- */

struct worker {
	struct feed *f;
	struct chain c;
	bool append; /* own feed instead of received records */
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (size_t i = w->c.n; i-- > 0;) { /* backwards: maximal gaps */
		enum feed_put_result res;
		int rc = w->append ? feed_append(w->f, w->c.sk, RECORD_HEALTH, T0, "t", 1, NULL)
				   : feed_put(w->f, &w->c.r[i], T0, &res);
		if (rc)
			w->failures++;
		if (i % 16 == 0) {
			struct feed_head *h = NULL;
			size_t n = 0;
			if (feed_heads(w->f, &h, &n) != 0)
				w->failures++;
			free(h);
		}
	}
	return NULL;
}

static void threads_share_one_store(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { T = 4, N = 60 };
	struct feed *f = open_ok(dir);
	struct worker w[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		w[i].f = f;
		w[i].append = i == 0;
		w[i].failures = 0;
		chain_make(&w[i].c, (uint8_t)(40 + i), N);
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < T; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	for (int i = 0; i < T; i++) {
		struct feed_head h = one_head(f, w[i].c.pk);
		assert_int_equal(h.count, N);
		assert_int_equal(h.seq_max, N);
		chain_free(&w[i].c);
	}
	assert_verified(f);
	feed_close(f);
	tu_rmtree(dir);
	free(dir);
}

/* --- the CLI reads the same file ----------------------------------------- */

/* Runs $SHOAL_BIN with args; returns the exit status, stdout in out. */
static int run_shoal(char *out, size_t cap, const char *const *args)
{
	const char *bin = getenv("SHOAL_BIN");
	if (!bin)
		fail_msg("SHOAL_BIN is not set (run through ctest)");
	char tmpl[] = "/tmp/shoal-test-out-XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fd, 1);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		const char *argv[16] = {bin};
		size_t i = 0;
		for (; args[i] && i < 14; i++)
			argv[i + 1] = args[i];
		argv[i + 1] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	ssize_t n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void cli_verify_finds_a_tampered_row(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	static char out[1 << 16];
	struct chain c, peer;
	chain_make(&c, 20, 1);
	chain_make(&peer, 21, 4);
	/* The feed stays open for writing, as in a running agent. */
	struct feed *f = open_ok(dir);
	for (int i = 0; i < 3; i++)
		assert_int_equal(feed_append(f, c.sk, RECORD_HEALTH, T0, "release=r1 state=active", 23,
					     NULL),
				 0);
	for (size_t i = 0; i < 4; i++)
		(void)put_ok(f, &peer.r[i], T0);
	const char *verify_args[] = {"log", "verify", "--data", dir, NULL};
	assert_int_equal(run_shoal(out, sizeof(out), verify_args), 0);
	assert_non_null(strstr(out, "7 records"));

	/* The list names authors from the membership snapshot. */
	struct store *s = NULL;
	char serr[STORE_ERR_BYTES];
	assert_int_equal(store_open(dir, &s, serr, sizeof(serr)), 0);
	struct store_member m;
	memset(&m, 0, sizeof(m));
	memcpy(m.id, c.pk, 32);
	strcpy(m.name, "web-01");
	m.state = MEMBER_ALIVE;
	assert_int_equal(store_save_members(s, &m, 1, T0), 0);
	store_close(s);
	char name[SHOAL_NAME_BYTES_MAX + 1];
	assert_int_equal(feed_author_name(f, c.pk, name), 0);
	assert_string_equal(name, "web-01");
	assert_int_equal(feed_author_name(f, peer.pk, name), SHOAL_ENOTFOUND);
	const char *list_args[] = {"log", "--data", dir, "--author", "web", "--json", NULL};
	assert_int_equal(run_shoal(out, sizeof(out), list_args), 0);
	json_error_t jerr;
	json_t *j = json_loads(out, 0, &jerr);
	if (!j)
		fail_msg("shoal log --json: %s: %s", jerr.text, out);
	json_t *recs = json_object_get(j, "records");
	assert_int_equal(json_array_size(recs), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0), "name")),
			    "web-01");
	assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 2), "body")),
			    "release=r1 state=active");
	json_decref(j);

	/* Edit a body behind the store's back. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path(dir), &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db,
					    "UPDATE feed_records SET body = ?2 WHERE author = ?1 AND seq = 2",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, c.pk, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, "release=r1 state=failed", 23, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);

	assert_int_equal(run_shoal(out, sizeof(out), verify_args), 1);
	char hex[65];
	hex_encode(c.pk, 32, hex);
	assert_non_null(strstr(out, hex));
	assert_non_null(strstr(out, "seq=2"));
	assert_non_null(strstr(out, "signature does not verify"));
	/* The store itself sees it too. */
	assert_true(verify(f).faults > 0);

	/* JSON names the same fault. */
	const char *vj[] = {"log", "verify", "--data", dir, "--json", NULL};
	assert_int_equal(run_shoal(out, sizeof(out), vj), 1);
	j = json_loads(out, 0, &jerr);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "ok")));
	json_t *fault = json_array_get(json_object_get(j, "faults"), 0);
	assert_string_equal(json_string_value(json_object_get(fault, "author")), hex);
	assert_int_equal(json_integer_value(json_object_get(fault, "seq")), 2);
	json_decref(j);
	feed_close(f);

	/* A summary row edited to hide a record is found as well. */
	char *dir2 = tu_tmpdir();
	f = open_ok(dir2);
	for (size_t i = 0; i < 4; i++)
		(void)put_ok(f, &peer.r[i], T0);
	feed_close(f);
	const char *v2[] = {"log", "verify", "--data", dir2, NULL};
	assert_int_equal(run_shoal(out, sizeof(out), v2), 0);
	raw_exec(dir2, "UPDATE feed_authors SET count = 3");
	assert_int_equal(run_shoal(out, sizeof(out), v2), 1);
	assert_non_null(strstr(out, "summary"));
	raw_exec(dir2, "UPDATE feed_authors SET count = 4;"
		       "UPDATE feed_records SET hash = zeroblob(32) WHERE seq = 1");
	assert_int_equal(run_shoal(out, sizeof(out), v2), 1);
	assert_non_null(strstr(out, "stored hash"));
	chain_free(&c);
	chain_free(&peer);
	tu_rmtree(dir);
	tu_rmtree(dir2);
	free(dir);
	free(dir2);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const char *s = getenv("SHOAL_TEST_SEED");
	test_seed = s ? strtoul(s, NULL, 10) : (unsigned long)getpid() * 2654435761ul + 1;
	if (test_seed == 0)
		test_seed = 1;
	fprintf(stderr, "test_feed: seed %lu (SHOAL_TEST_SEED=%lu replays)\n", test_seed, test_seed);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_creates_reopens_and_shares_state_db),
		cmocka_unit_test(readonly_open),
		cmocka_unit_test(append_links_and_survives_restart),
		cmocka_unit_test(forged_records_are_never_stored),
		cmocka_unit_test(broken_links_are_refused_and_kept_as_evidence),
		cmocka_unit_test(equivocation_keeps_first_and_flags_author),
		cmocka_unit_test(reordered_delivery_links_up),
		cmocka_unit_test(duplicates_are_stored_once),
		cmocka_unit_test(restart_mid_sync_resumes),
		cmocka_unit_test(killed_writer_leaves_consistent_store),
		cmocka_unit_test(retention_prunes_but_keeps_heads),
		cmocka_unit_test(prune_in_batches),
		cmocka_unit_test(bounds_refuse_with_efull),
		cmocka_unit_test(threads_share_one_store),
		cmocka_unit_test(cli_verify_finds_a_tampered_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
