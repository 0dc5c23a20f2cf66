/* memfeed.c — in-memory feed store with store/feed.h's semantics, behind
 * struct repl_store_ops (see memfeed.h).
 *
 * Authors are a sorted array (binary search); each author's records a
 * sorted array by seq. Appends land at the end, so the common insert is
 * O(1); an out-of-order insert moves the tail (fine for tests and the
 * simulator's feed sizes). */
#include "core/memfeed.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/limits.h"

#define SEQ_MAX ((uint64_t)INT64_MAX) /* as store/feed.h: SQLite integers */

_Static_assert(SHOAL_FEED_AUTHORS_MAX <= SHOAL_SYNC_FEEDS_MAX,
	       "a sync session can list every feed a store holds");

struct mf_rec {
	uint64_t seq;
	uint8_t hash[RECORD_HASH_BYTES];
	struct record *rec;
};

struct mf_feed {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	struct mf_rec *recs;
	size_t n, cap;
	uint64_t pruned_through;
};

struct memfeed {
	struct mf_feed *feeds;
	size_t n, cap;
	size_t records;
	uint64_t records_max;
	struct memfeed_stats stats;
};

struct memfeed *memfeed_new(uint64_t records_max)
{
	assert(records_max <= SHOAL_FEED_RECORDS_MAX);
	struct memfeed *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->records_max = records_max ? records_max : SHOAL_FEED_RECORDS_MAX;
	return m;
}

void memfeed_free(struct memfeed *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		for (size_t k = 0; k < m->feeds[i].n; k++)
			free(m->feeds[i].recs[k].rec);
		free(m->feeds[i].recs);
	}
	free(m->feeds);
	free(m);
}

struct memfeed *memfeed_clone(const struct memfeed *m)
{
	assert(m);
	struct memfeed *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->records_max = m->records_max;
	c->stats = m->stats;
	c->feeds = calloc(m->n ? m->n : 1, sizeof(*c->feeds));
	if (!c->feeds)
		goto fail;
	c->cap = m->n;
	for (size_t i = 0; i < m->n; i++, c->n++) {
		const struct mf_feed *f = &m->feeds[i];
		struct mf_feed *g = &c->feeds[i];
		memcpy(g->author, f->author, SHOAL_NODE_ID_BYTES);
		g->pruned_through = f->pruned_through;
		g->recs = calloc(f->n ? f->n : 1, sizeof(*g->recs));
		if (!g->recs)
			goto fail;
		g->cap = f->n;
		for (size_t k = 0; k < f->n; k++, g->n++) {
			g->recs[k] = f->recs[k];
			g->recs[k].rec = malloc(sizeof(struct record));
			if (!g->recs[k].rec)
				goto fail;
			*g->recs[k].rec = *f->recs[k].rec;
		}
		c->records += g->n;
	}
	assert(c->records == m->records);
	return c;
fail:
	memfeed_free(c);
	return NULL;
}

/* Index of author's feed, or where it would go (*found false). */
static size_t feed_pos(const struct memfeed *m, const uint8_t *author, bool *found)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(m->feeds[mid].author, author, SHOAL_NODE_ID_BYTES);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct mf_feed *feed_find(const struct memfeed *m, const uint8_t *author)
{
	bool found;
	size_t i = feed_pos(m, author, &found);
	return found ? &m->feeds[i] : NULL;
}

/* Index of the first record with seq >= seq. */
static size_t rec_lower(const struct mf_feed *f, uint64_t seq)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (f->recs[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct mf_rec *rec_find(const struct mf_feed *f, uint64_t seq)
{
	size_t i = rec_lower(f, seq);
	return i < f->n && f->recs[i].seq == seq ? &f->recs[i] : NULL;
}

static bool valid_structure(const struct record *r)
{
	if (r->kind == 0 || r->kind > RECORD_KIND_MAX_ || r->seq == 0 ||
	    r->body_len > SHOAL_RECORD_BODY_MAX)
		return false;
	if (r->seq == 1) {
		static const uint8_t zero[RECORD_HASH_BYTES];
		return memcmp(r->prev, zero, RECORD_HASH_BYTES) == 0;
	}
	return true;
}

/* Inserts a verified, non-conflicting record into f (or a new feed). */
static int insert(struct memfeed *m, const struct record *r, const uint8_t hash[RECORD_HASH_BYTES])
{
	bool found;
	size_t fi = feed_pos(m, r->author, &found);
	if (!found) {
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 16;
			struct mf_feed *nf = realloc(m->feeds, cap * sizeof(*nf));
			if (!nf)
				return SHOAL_ENOMEM;
			m->feeds = nf;
			m->cap = cap;
		}
		memmove(&m->feeds[fi + 1], &m->feeds[fi], (m->n - fi) * sizeof(*m->feeds));
		memset(&m->feeds[fi], 0, sizeof(m->feeds[fi]));
		memcpy(m->feeds[fi].author, r->author, SHOAL_NODE_ID_BYTES);
		m->n++;
	}
	struct mf_feed *f = &m->feeds[fi];
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 8;
		struct mf_rec *nr = realloc(f->recs, cap * sizeof(*nr));
		if (!nr)
			return SHOAL_ENOMEM; /* an empty new feed stays: harmless */
		f->recs = nr;
		f->cap = cap;
	}
	struct record *copy = malloc(sizeof(*copy));
	if (!copy)
		return SHOAL_ENOMEM;
	*copy = *r;
	size_t at = rec_lower(f, r->seq);
	memmove(&f->recs[at + 1], &f->recs[at], (f->n - at) * sizeof(*f->recs));
	f->recs[at].seq = r->seq;
	memcpy(f->recs[at].hash, hash, RECORD_HASH_BYTES);
	f->recs[at].rec = copy;
	f->n++;
	m->records++;
	return 0;
}

int memfeed_put(struct memfeed *m, const struct record *r, enum repl_put *res)
{
	assert(m && r && res);
	if (!valid_structure(r)) {
		m->stats.put_invalid++;
		return SHOAL_EPROTO;
	}
	if (r->seq > SEQ_MAX) {
		m->stats.put_invalid++;
		return SHOAL_ETOOBIG;
	}
	uint8_t hash[RECORD_HASH_BYTES];
	record_hash(r, hash);
	const struct mf_feed *f = feed_find(m, r->author);
	const struct mf_rec *held = f ? rec_find(f, r->seq) : NULL;
	/* A byte-identical copy of a held record is that verified record. */
	if (held && memcmp(held->hash, hash, RECORD_HASH_BYTES) == 0) {
		m->stats.put_dup++;
		*res = REPL_PUT_DUP;
		return 0;
	}
	if (record_verify(r) != 0) {
		m->stats.put_bad_sig++;
		return SHOAL_EBADSIG;
	}
	if (held) {
		m->stats.put_equivocation++;
		*res = REPL_PUT_EQUIVOCATION;
		return 0;
	}
	if (f && r->seq <= f->pruned_through) {
		m->stats.put_stale++;
		*res = REPL_PUT_STALE;
		return 0;
	}
	const struct mf_rec *pred = f ? rec_find(f, r->seq - 1) : NULL;
	const struct mf_rec *succ = f && r->seq < SEQ_MAX ? rec_find(f, r->seq + 1) : NULL;
	if ((pred && memcmp(r->prev, pred->hash, RECORD_HASH_BYTES) != 0) ||
	    (succ && memcmp(succ->rec->prev, hash, RECORD_HASH_BYTES) != 0)) {
		m->stats.put_equivocation++; /* a broken link */
		*res = REPL_PUT_EQUIVOCATION;
		return 0;
	}
	if (m->records >= m->records_max ||
	    (f && f->n >= SHOAL_FEED_RECORDS_PER_AUTHOR_MAX) ||
	    (!f && m->n >= SHOAL_FEED_AUTHORS_MAX)) {
		m->stats.put_full++;
		return SHOAL_EFULL;
	}
	bool gap = r->seq > 1 && !pred && !(f && r->seq - 1 <= f->pruned_through);
	int rc = insert(m, r, hash);
	if (rc)
		return rc;
	if (gap) {
		m->stats.put_gap++;
		*res = REPL_PUT_NEW_GAP;
	} else {
		m->stats.put_new++;
		*res = REPL_PUT_NEW;
	}
	return 0;
}

int memfeed_append(struct memfeed *m, const uint8_t sk[64], uint8_t kind,
		   uint64_t time_ms, const void *body, size_t len, struct record *out)
{
	assert(m && sk && (body || len == 0));
	if (kind == 0 || kind > RECORD_KIND_MAX_ || len > SHOAL_RECORD_BODY_MAX)
		return SHOAL_EINVAL;
	const uint8_t *author = sk + 32;
	const struct mf_feed *f = feed_find(m, author);
	const struct record *head = f && f->n ? f->recs[f->n - 1].rec : NULL;
	struct record r;
	record_next(&r, author, head);
	if (head && head->seq >= SEQ_MAX)
		return SHOAL_ETOOBIG;
	r.kind = kind;
	r.time_ms = time_ms;
	r.body_len = (uint32_t)len;
	if (len)
		memcpy(r.body, body, len);
	record_sign(&r, sk);
	enum repl_put res;
	int rc = memfeed_put(m, &r, &res);
	if (rc)
		return rc;
	assert(res == REPL_PUT_NEW || res == REPL_PUT_NEW_GAP);
	if (out)
		*out = r;
	return 0;
}

size_t memfeed_prune(struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		     uint64_t below_seq)
{
	assert(m && author);
	struct mf_feed *f = feed_find(m, author);
	if (!f || f->n == 0 || below_seq <= 1)
		return 0;
	uint64_t head = f->recs[f->n - 1].seq;
	uint64_t limit = below_seq <= head ? below_seq : head; /* the head stays */
	size_t drop = rec_lower(f, limit);
	for (size_t i = 0; i < drop; i++)
		free(f->recs[i].rec);
	memmove(&f->recs[0], &f->recs[drop], (f->n - drop) * sizeof(*f->recs));
	f->n -= drop;
	m->records -= drop;
	m->stats.pruned += drop;
	if (limit - 1 > f->pruned_through)
		f->pruned_through = limit - 1;
	assert(f->n >= 1);
	return drop;
}

int memfeed_get(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		uint64_t seq, struct record *out)
{
	assert(m && author);
	const struct mf_feed *f = feed_find(m, author);
	const struct mf_rec *e = f ? rec_find(f, seq) : NULL;
	if (!e)
		return SHOAL_ENOTFOUND;
	if (out)
		*out = *e->rec;
	return 0;
}

bool memfeed_has(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 uint64_t seq)
{
	return memfeed_get(m, author, seq, NULL) == 0;
}

static void fill_head(const struct mf_feed *f, struct repl_head *h)
{
	assert(f->n >= 1);
	memcpy(h->author, f->author, SHOAL_NODE_ID_BYTES);
	h->seq_min = f->recs[0].seq;
	h->seq_max = f->recs[f->n - 1].seq;
	h->count = f->n;
	memcpy(h->hash, f->recs[f->n - 1].hash, RECORD_HASH_BYTES);
	h->pruned_through = f->pruned_through;
}

int memfeed_head(const struct memfeed *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
		 struct repl_head *out)
{
	assert(m && author && out);
	const struct mf_feed *f = feed_find(m, author);
	if (!f || f->n == 0)
		return SHOAL_ENOTFOUND;
	fill_head(f, out);
	return 0;
}

size_t memfeed_records(const struct memfeed *m) { return m->records; }

size_t memfeed_authors(const struct memfeed *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += m->feeds[i].n > 0;
	return n;
}

const struct memfeed_stats *memfeed_stats(const struct memfeed *m) { return &m->stats; }

/* --- repl_store_ops ---------------------------------------------------------- */

static int op_put(void *store, const struct record *r, enum repl_put *res)
{
	return memfeed_put(store, r, res);
}

static int op_heads(void *store, struct repl_head **out, size_t *n)
{
	const struct memfeed *m = store;
	assert(out && n);
	*out = NULL;
	*n = 0;
	size_t authors = memfeed_authors(m);
	if (authors == 0)
		return 0;
	if (authors > SHOAL_SYNC_FEEDS_MAX)
		return SHOAL_ETOOBIG;
	struct repl_head *h = malloc(authors * sizeof(*h));
	if (!h)
		return SHOAL_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->feeds[i].n > 0)
			fill_head(&m->feeds[i], &h[k++]);
	assert(k == authors);
	*out = h;
	*n = k;
	return 0;
}

static int op_range(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES],
		    uint64_t from_seq, size_t max, struct record *out, size_t *n)
{
	const struct memfeed *m = store;
	assert(author && out && n);
	if (max > REPL_RANGE_BATCH)
		return SHOAL_EINVAL;
	*n = 0;
	const struct mf_feed *f = feed_find(m, author);
	if (!f)
		return 0;
	for (size_t i = rec_lower(f, from_seq); i < f->n && *n < max; i++)
		out[(*n)++] = *f->recs[i].rec;
	return 0;
}

static int op_gaps(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES],
		   uint64_t from_seq, size_t max, struct repl_gap *out, size_t *n)
{
	const struct memfeed *m = store;
	assert(author && out && n);
	if (max > REPL_GAPS_BATCH)
		return SHOAL_EINVAL;
	*n = 0;
	const struct mf_feed *f = feed_find(m, author);
	if (!f || f->n == 0)
		return 0;
	/* Walk held records from the first at or after from_seq; a gap is
	 * between two consecutive held seqs, or between from_seq and the
	 * first held one when from_seq is inside the held span. */
	size_t i = rec_lower(f, from_seq);
	if (i == f->n)
		return 0;
	if (i > 0 && f->recs[i].seq > from_seq) {
		uint64_t first = from_seq > f->recs[i - 1].seq + 1 ? from_seq
								    : f->recs[i - 1].seq + 1;
		out[(*n)++] = (struct repl_gap){first, f->recs[i].seq - 1};
	}
	for (; i + 1 < f->n && *n < max; i++)
		if (f->recs[i + 1].seq > f->recs[i].seq + 1)
			out[(*n)++] = (struct repl_gap){f->recs[i].seq + 1,
							f->recs[i + 1].seq - 1};
	return 0;
}

const struct repl_store_ops memfeed_ops = {
	.put = op_put,
	.heads = op_heads,
	.range = op_range,
	.gaps = op_gaps,
};
