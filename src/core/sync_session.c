/*
 * sync_session.c — the anti-entropy sync session (see sync.h for the
 * protocol): a pure state machine over one local store.
 *
 *   initiator:  NEW --start--> WAIT_ROOT --ROOT equal--> DONE
 *                              WAIT_ROOT --ROOT differs--> WAIT_DIGEST
 *                              WAIT_DIGEST --DIGEST--> DATA ... --> DONE
 *   responder:  WAIT_FIRST --ROOT equal--> DONE
 *               WAIT_FIRST --ROOT differs--> WAIT_PEER_DIGEST --DIGEST--> DATA
 *               WAIT_FIRST --DIGEST--> DATA ... --> DONE
 *   any error:  FAILED (every later call is refused)
 *
 * In DATA each received message is checked against what the peer may send
 * at that point (flags only ever go up; wants only after both head lists
 * are complete; records only inside the ranges we asked for), applied, and
 * answered with one message built from what is pending here: our heads of
 * differing buckets, then our wants, then records for the peer's wants.
 */
#include "core/sync.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum ss_state {
	SS_NEW = 0,       /* initiator before start */
	SS_WAIT_ROOT,     /* initiator sent ROOT */
	SS_WAIT_DIGEST,   /* initiator sent DIGEST */
	SS_WAIT_FIRST,    /* responder before the first message */
	SS_WAIT_PEER_DIGEST, /* responder answered a differing ROOT */
	SS_DATA,
	SS_DONE,
	SS_FAILED,
};

struct sync_session {
	enum sync_role role;
	enum ss_state state;
	const struct repl_store_ops *ops;
	void *store;

	/* Snapshot of our heads at the start, sorted by author, so buckets
	 * are contiguous runs. */
	struct repl_head *mine;
	size_t mine_n;
	uint8_t digest[SHOAL_SYNC_BUCKETS][SHOAL_SYNC_DIGEST_BYTES];
	uint8_t root[SHOAL_SYNC_DIGEST_BYTES];
	bool differ[SHOAL_SYNC_BUCKETS];

	/* Our heads going out. */
	size_t heads_next;
	bool heads_done_sent;
	/* The peer's heads, as they arrive (ascending authors). */
	struct sync_head *theirs;
	size_t theirs_n, theirs_cap;
	bool peer_heads_done;

	/* What we ask for: sorted by (author, from_seq), disjoint. */
	struct sync_want *wants;
	size_t wants_n, wants_cap, wants_next;
	bool wants_ready, wants_done_sent;
	uint64_t wanted_total, got_total;

	/* What the peer asks for, and our serving cursor in it. */
	struct sync_want *serve;
	size_t serve_n, serve_cap;
	uint64_t serve_total;
	bool peer_wants_done;
	size_t serve_idx;
	uint64_t serve_seq;  /* next seq to serve in serve[serve_idx]; 0: its start */
	struct record batch[REPL_RANGE_BATCH];
	size_t batch_n, batch_pos;

	bool last_sent_fin, peer_fin;
	uint32_t msgs;
	struct sync_stats stats;

	struct repl_event ev[SYNC_RECORDS_PER_MSG_MAX];
	size_t ev_n, ev_next;

	struct sync_msg msg;
	uint8_t out[SHOAL_SYNC_MSG_BYTES_MAX];
};

struct sync_session *sync_session_new(enum sync_role role,
				      const struct repl_store_ops *ops, void *store)
{
	assert(role == SYNC_INITIATOR || role == SYNC_RESPONDER);
	assert(ops && ops->put && ops->heads && ops->range && ops->gaps);
	struct sync_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->role = role;
	s->state = role == SYNC_INITIATOR ? SS_NEW : SS_WAIT_FIRST;
	s->ops = ops;
	s->store = store;
	return s;
}

void sync_session_free(struct sync_session *s)
{
	if (!s)
		return;
	free(s->mine);
	free(s->theirs);
	free(s->wants);
	free(s->serve);
	free(s);
}

bool sync_session_done(const struct sync_session *s) { return s->state == SS_DONE; }
bool sync_session_failed(const struct sync_session *s) { return s->state == SS_FAILED; }
const struct sync_stats *sync_session_stats(const struct sync_session *s) { return &s->stats; }

bool sync_session_poll(struct sync_session *s, struct repl_event *ev)
{
	assert(s && ev);
	if (s->ev_next >= s->ev_n)
		return false;
	*ev = s->ev[s->ev_next++];
	return true;
}

static int fail(struct sync_session *s, int rc)
{
	assert(rc < 0);
	s->state = SS_FAILED;
	return rc;
}

/* Grows *arr (elements of size sz) to hold one more; bounded by max. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz, size_t max)
{
	if (n < *cap)
		return 0;
	if (n >= max)
		return SHOAL_ETOOBIG;
	size_t c = *cap ? *cap * 2 : 64;
	if (c > max)
		c = max;
	void *p = realloc(*arr, c * sz);
	if (!p)
		return SHOAL_ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* --- snapshot and digests ----------------------------------------------------- */

static int cmp_head(const void *a, const void *b)
{
	return memcmp(((const struct repl_head *)a)->author,
		      ((const struct repl_head *)b)->author, SHOAL_NODE_ID_BYTES);
}

static void to_wire(const struct repl_head *h, struct sync_head *w)
{
	memcpy(w->author, h->author, SHOAL_NODE_ID_BYTES);
	w->seq_min = h->seq_min;
	w->seq_max = h->seq_max;
	w->count = h->count;
	memcpy(w->hash, h->hash, RECORD_HASH_BYTES);
}

static void encode_head(const struct sync_head *h, uint8_t buf[SYNC_HEAD_BYTES])
{
	struct wr w = wr_init(buf, SYNC_HEAD_BYTES);
	wr_bytes(&w, h->author, sizeof(h->author));
	wr_u64(&w, h->seq_min);
	wr_u64(&w, h->seq_max);
	wr_u64(&w, h->count);
	wr_bytes(&w, h->hash, sizeof(h->hash));
	assert(wr_ok(&w) && w.len == SYNC_HEAD_BYTES);
}

/* Two stores can hold the same head and count with different holes
 * (1-6,8-25 and 1-11,13-25): the heads alone would digest equal and
 * neither would fill the other's hole. So a feed with holes also digests
 * its gap list, as far as SHOAL_SYNC_DIGEST_GAP_CALLS_MAX store calls per
 * digest reach (past that, such feeds digest by head only and are repaired
 * by peers whose heads differ). */
static int digest_holes(struct sync_session *s, const struct repl_head *h,
			crypto_generichash_state *st, unsigned *calls)
{
	if (h->count - 1 >= h->seq_max - h->seq_min)
		return 0; /* contiguous */
	struct repl_gap g[REPL_GAPS_BATCH];
	uint64_t from = h->seq_min;
	while (*calls < SHOAL_SYNC_DIGEST_GAP_CALLS_MAX) {
		size_t n = 0;
		(*calls)++;
		int rc = s->ops->gaps(s->store, h->author, from, REPL_GAPS_BATCH, g, &n);
		if (rc)
			return rc;
		if (n > REPL_GAPS_BATCH)
			return SHOAL_EINVAL;
		for (size_t k = 0; k < n; k++) {
			if (g[k].first > g[k].last || g[k].first < from || g[k].last >= h->seq_max)
				return SHOAL_EINVAL; /* gaps lie inside the held span, in order */
			uint8_t enc[16];
			struct wr w = wr_init(enc, sizeof(enc));
			wr_u64(&w, g[k].first);
			wr_u64(&w, g[k].last);
			crypto_generichash_update(st, enc, sizeof(enc));
			from = g[k].last + 1;
		}
		if (n < REPL_GAPS_BATCH)
			break;
	}
	return 0;
}

/* Takes our heads from the store and digests them per bucket. */
static int snapshot(struct sync_session *s)
{
	assert(s->mine == NULL);
	int rc = s->ops->heads(s->store, &s->mine, &s->mine_n);
	if (rc)
		return rc;
	if (s->mine_n > SHOAL_SYNC_FEEDS_MAX)
		return SHOAL_ETOOBIG;
	if (s->mine_n > 1)
		qsort(s->mine, s->mine_n, sizeof(*s->mine), cmp_head);
	for (size_t i = 0; i < s->mine_n; i++) {
		struct sync_head w;
		to_wire(&s->mine[i], &w);
		/* A store that lists a feed twice or out of its own rules would
		 * make us lie to the peer: refuse to run on it. */
		if (!sync_head_valid(&w) ||
		    (i > 0 && cmp_head(&s->mine[i - 1], &s->mine[i]) == 0))
			return SHOAL_EINVAL;
	}
	memset(s->digest, 0, sizeof(s->digest));
	unsigned gap_calls = 0;
	size_t i = 0;
	while (i < s->mine_n) {
		uint8_t b = s->mine[i].author[0];
		crypto_generichash_state st;
		crypto_generichash_init(&st, NULL, 0, SHOAL_SYNC_DIGEST_BYTES);
		for (; i < s->mine_n && s->mine[i].author[0] == b; i++) {
			struct sync_head w;
			uint8_t enc[SYNC_HEAD_BYTES];
			to_wire(&s->mine[i], &w);
			encode_head(&w, enc);
			crypto_generichash_update(&st, enc, sizeof(enc));
			rc = digest_holes(s, &s->mine[i], &st, &gap_calls);
			if (rc)
				return rc;
		}
		crypto_generichash_final(&st, s->digest[b], SHOAL_SYNC_DIGEST_BYTES);
	}
	sync_root_of((const uint8_t(*)[SHOAL_SYNC_DIGEST_BYTES])s->digest, s->root);
	return 0;
}

/* Marks the buckets whose digests differ; returns how many. */
static size_t compare_digests(struct sync_session *s, const uint8_t *theirs)
{
	size_t n = 0;
	for (size_t b = 0; b < SHOAL_SYNC_BUCKETS; b++) {
		s->differ[b] = memcmp(s->digest[b], theirs + b * SHOAL_SYNC_DIGEST_BYTES,
				      SHOAL_SYNC_DIGEST_BYTES) != 0;
		n += s->differ[b];
	}
	s->stats.buckets_differing = n;
	return n;
}

static int send_root(struct sync_session *s, const uint8_t **out, size_t *out_len)
{
	struct wr w = wr_init(s->out, sizeof(s->out));
	sync_put_root(&w, s->root);
	assert(wr_ok(&w) && w.len == SYNC_ROOT_MSG_BYTES);
	*out = s->out;
	*out_len = w.len;
	return 0;
}

static bool roots_equal(const struct sync_session *s, const uint8_t *theirs)
{
	return memcmp(s->root, theirs, SHOAL_SYNC_DIGEST_BYTES) == 0;
}

static int send_digest(struct sync_session *s, const uint8_t **out, size_t *out_len)
{
	struct wr w = wr_init(s->out, sizeof(s->out));
	sync_put_digest(&w, s->digest);
	assert(wr_ok(&w));
	*out = s->out;
	*out_len = w.len;
	return 0;
}

/* --- wants: what we lack of what the peer holds --------------------------- */

static const struct repl_head *find_mine(const struct sync_session *s, const uint8_t *author)
{
	size_t lo = 0, hi = s->mine_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->mine[mid].author, author, SHOAL_NODE_ID_BYTES);
		if (c == 0)
			return &s->mine[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Adds [first, last] as ranges of at most SHOAL_SYNC_RANGE_COUNT_MAX, within
 * the session's bounds. Returns 1 if everything was added, 0 when the
 * bounds were reached (stop asking), or an error. */
static int want_run(struct sync_session *s, const uint8_t *author, uint64_t first,
		    uint64_t last)
{
	assert(first >= 1 && first <= last);
	while (first <= last) {
		if (s->wanted_total >= SHOAL_SYNC_RECORDS_MAX || s->wants_n >= SHOAL_SYNC_WANTS_MAX)
			return 0;
		uint64_t n = last - first + 1;
		if (n > SHOAL_SYNC_RANGE_COUNT_MAX)
			n = SHOAL_SYNC_RANGE_COUNT_MAX;
		if (n > SHOAL_SYNC_RECORDS_MAX - s->wanted_total)
			n = SHOAL_SYNC_RECORDS_MAX - s->wanted_total;
		int rc = grow((void **)&s->wants, &s->wants_cap, s->wants_n,
			      sizeof(*s->wants), SHOAL_SYNC_WANTS_MAX);
		if (rc)
			return rc;
		struct sync_want *w = &s->wants[s->wants_n++];
		memcpy(w->author, author, SHOAL_NODE_ID_BYTES);
		w->from_seq = first;
		w->count = (uint32_t)n;
		assert(sync_want_valid(w));
		s->wanted_total += n;
		if (last - first + 1 == n)
			break;
		first += n;
	}
	return 1;
}

/* Our holes of author inside [a, b] (a >= m->seq_min, b <= m->seq_max),
 * asked of the store in batches. */
static int want_holes(struct sync_session *s, const struct repl_head *m, uint64_t a,
		      uint64_t b)
{
	struct repl_gap g[REPL_GAPS_BATCH];
	uint64_t from = a;
	while (from <= b) {
		size_t n = 0;
		int rc = s->ops->gaps(s->store, m->author, from, REPL_GAPS_BATCH, g, &n);
		if (rc)
			return rc;
		if (n > REPL_GAPS_BATCH)
			return SHOAL_EINVAL;
		for (size_t i = 0; i < n; i++) {
			/* Gaps must come in order, each past the last. */
			if (g[i].first > g[i].last || g[i].last < from)
				return SHOAL_EINVAL;
			uint64_t first = g[i].first > from ? g[i].first : from;
			if (first > b)
				return 1;
			uint64_t last = g[i].last < b ? g[i].last : b;
			rc = want_run(s, m->author, first, last);
			if (rc <= 0)
				return rc;
			if (g[i].last >= b)
				return 1;
			from = g[i].last + 1;
		}
		if (n < REPL_GAPS_BATCH)
			break;
	}
	return 1;
}

/* For one feed the peer holds: the seqs in its span we neither hold nor
 * pruned ourselves (retention would drop them again). */
static int want_feed(struct sync_session *s, const struct sync_head *p)
{
	const struct repl_head *m = find_mine(s, p->author);
	uint64_t floor = m ? m->pruned_through + 1 : 1;
	uint64_t a = p->seq_min > floor ? p->seq_min : floor;
	uint64_t b = p->seq_max;
	if (floor == 0 || a > b)
		return 1; /* floor 0: pruned through UINT64_MAX */
	if (!m)
		return want_run(s, p->author, a, b);
	int rc = 1;
	if (a < m->seq_min)
		rc = want_run(s, p->author, a, b < m->seq_min - 1 ? b : m->seq_min - 1);
	if (rc == 1 && m->count - 1 < m->seq_max - m->seq_min) { /* we have holes */
		uint64_t ha = a > m->seq_min ? a : m->seq_min;
		uint64_t hb = b < m->seq_max ? b : m->seq_max;
		if (ha <= hb)
			rc = want_holes(s, m, ha, hb);
	}
	if (rc == 1 && b > m->seq_max)
		rc = want_run(s, p->author, a > m->seq_max + 1 ? a : m->seq_max + 1, b);
	return rc;
}

static int compute_wants(struct sync_session *s)
{
	assert(!s->wants_ready && s->peer_heads_done);
	for (size_t i = 0; i < s->theirs_n; i++) {
		int rc = want_feed(s, &s->theirs[i]);
		if (rc < 0)
			return rc;
		if (rc == 0)
			break; /* session bounds reached: the next session goes on */
	}
	s->wants_ready = true;
	s->stats.records_wanted = s->wanted_total;
	return 0;
}

/* Index of our want holding (author, seq) among those sent, or -1. */
static long find_want(const struct sync_session *s, const uint8_t *author, uint64_t seq)
{
	size_t lo = 0, hi = s->wants_next;
	while (lo < hi) { /* last want with (author, from) <= (author, seq) */
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->wants[mid].author, author, SHOAL_NODE_ID_BYTES);
		if (c < 0 || (c == 0 && s->wants[mid].from_seq <= seq))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	const struct sync_want *w = &s->wants[lo - 1];
	if (memcmp(w->author, author, SHOAL_NODE_ID_BYTES) != 0 ||
	    seq - w->from_seq >= w->count)
		return -1;
	return (long)(lo - 1);
}

/* --- applying a received DATA message ------------------------------------- */

static int take_heads(struct sync_session *s, struct sync_msg *m)
{
	struct sync_head h;
	while (sync_next_head(m, &h)) {
		if (!s->differ[h.author[0]])
			return SHOAL_EPROTO; /* bucket we agreed on */
		if (s->theirs_n > 0 &&
		    memcmp(s->theirs[s->theirs_n - 1].author, h.author, SHOAL_NODE_ID_BYTES) >= 0)
			return SHOAL_EPROTO; /* out of order or repeated */
		int rc = grow((void **)&s->theirs, &s->theirs_cap, s->theirs_n,
			      sizeof(*s->theirs), SHOAL_SYNC_FEEDS_MAX);
		if (rc)
			return rc;
		s->theirs[s->theirs_n++] = h;
		s->stats.heads_received++;
	}
	return 0;
}

static int take_wants(struct sync_session *s, struct sync_msg *m)
{
	struct sync_want w;
	while (sync_next_want(m, &w)) {
		if (s->serve_n > 0) {
			const struct sync_want *p = &s->serve[s->serve_n - 1];
			int c = memcmp(p->author, w.author, SHOAL_NODE_ID_BYTES);
			/* Ascending and disjoint, so a peer cannot make us serve a
			 * record twice: the previous range ends before this one. */
			bool after = c < 0 || (c == 0 && w.from_seq > p->from_seq &&
					       w.from_seq - p->from_seq >= p->count);
			if (!after)
				return SHOAL_EPROTO;
		}
		if (w.count > SHOAL_SYNC_RECORDS_MAX - s->serve_total)
			return SHOAL_ETOOBIG;
		int rc = grow((void **)&s->serve, &s->serve_cap, s->serve_n,
			      sizeof(*s->serve), SHOAL_SYNC_WANTS_MAX);
		if (rc)
			return rc;
		s->serve[s->serve_n++] = w;
		s->serve_total += w.count;
		s->stats.wants_received++;
	}
	return 0;
}

static void add_event(struct sync_session *s, enum repl_event_kind kind,
		      enum repl_put put, const struct record *r)
{
	assert(s->ev_n < SYNC_RECORDS_PER_MSG_MAX);
	struct repl_event *e = &s->ev[s->ev_n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->source = REPL_SRC_SYNC;
	e->put = put;
	e->record_kind = r->kind;
	memcpy(e->author, r->author, SHOAL_NODE_ID_BYTES);
	e->seq = r->seq;
	e->from_gid = REPL_NONE;
}

static int take_records(struct sync_session *s, struct sync_msg *m)
{
	struct record r;
	while (sync_next_record(m, &r)) {
		if (find_want(s, r.author, r.seq) < 0 || s->got_total >= s->wanted_total)
			return SHOAL_EPROTO; /* not asked for */
		s->got_total++;
		s->stats.records_received++;
		enum repl_put res = 0;
		int rc = s->ops->put(s->store, &r, &res);
		if (rc == SHOAL_EBADSIG)
			return rc; /* a forged record: this peer is not honest */
		if (rc == SHOAL_EFULL || rc == SHOAL_ETOOBIG || rc == SHOAL_EPROTO) {
			s->stats.records_refused++;
			continue;
		}
		if (rc)
			return rc;
		switch (res) {
		case REPL_PUT_NEW:
		case REPL_PUT_NEW_GAP:
			s->stats.records_new++;
			add_event(s, REPL_EV_RECORD, res, &r);
			break;
		case REPL_PUT_DUP:
			s->stats.records_dup++;
			break;
		case REPL_PUT_EQUIVOCATION:
			s->stats.records_equivocation++;
			add_event(s, REPL_EV_EQUIVOCATION, res, &r);
			break;
		case REPL_PUT_STALE:
			s->stats.records_stale++;
			break;
		default:
			return SHOAL_EINVAL; /* the store broke its contract */
		}
	}
	return 0;
}

static int on_data(struct sync_session *s, struct sync_msg *m)
{
	bool hd = m->flags & SYNC_F_HEADS_DONE;
	bool wd = m->flags & SYNC_F_WANTS_DONE;
	bool fin = m->flags & SYNC_F_FIN;
	/* Flags only go up, and a finished part stays empty. */
	if (s->peer_heads_done && (!hd || m->heads_count))
		return SHOAL_EPROTO;
	if (s->peer_wants_done && (!wd || m->wants_count))
		return SHOAL_EPROTO;
	if (s->peer_fin && (!fin || m->records_count))
		return SHOAL_EPROTO;
	/* Wants are computed from our complete heads, after its own. */
	if ((m->wants_count || wd) && (!hd || !s->heads_done_sent))
		return SHOAL_EPROTO;
	int rc = take_heads(s, m);
	if (rc)
		return rc;
	if (hd && !s->peer_heads_done) {
		s->peer_heads_done = true;
		rc = compute_wants(s);
		if (rc)
			return rc;
	}
	rc = take_wants(s, m);
	if (rc)
		return rc;
	s->peer_wants_done = wd;
	rc = take_records(s, m);
	if (rc)
		return rc;
	s->peer_fin = fin;
	return 0;
}

/* --- building our next DATA message ----------------------------------------- */

static void serve_next_want(struct sync_session *s)
{
	s->serve_idx++;
	s->serve_seq = 0;
	s->batch_n = s->batch_pos = 0;
}

/* Fills b with records for the peer's wants until the message is full or
 * everything asked so far was served. */
static int serve_records(struct sync_session *s, struct sync_data_wr *b)
{
	while (s->serve_idx < s->serve_n) {
		const struct sync_want *w = &s->serve[s->serve_idx];
		uint64_t last = w->from_seq + (w->count - 1);
		if (s->serve_seq < w->from_seq)
			s->serve_seq = w->from_seq;
		if (s->batch_pos == s->batch_n) {
			if (s->serve_seq > last) {
				serve_next_want(s);
				continue;
			}
			uint64_t left = last - s->serve_seq + 1;
			size_t max = left < REPL_RANGE_BATCH ? (size_t)left : REPL_RANGE_BATCH;
			size_t n = 0;
			int rc = s->ops->range(s->store, w->author, s->serve_seq, max, s->batch, &n);
			if (rc)
				return rc;
			if (n > max)
				return SHOAL_EINVAL;
			for (size_t i = 0; i < n; i++)
				if (memcmp(s->batch[i].author, w->author, SHOAL_NODE_ID_BYTES) != 0 ||
				    s->batch[i].seq < s->serve_seq ||
				    (i > 0 && s->batch[i].seq <= s->batch[i - 1].seq))
					return SHOAL_EINVAL;
			s->batch_n = n;
			s->batch_pos = 0;
			if (n == 0) {
				serve_next_want(s);
				continue;
			}
		}
		const struct record *r = &s->batch[s->batch_pos];
		if (r->seq > last) {
			serve_next_want(s);
			continue;
		}
		if (!sync_data_add_record(b, r))
			return 0; /* full: the rest goes in our next turn */
		s->batch_pos++;
		s->serve_seq = r->seq + 1;
		s->stats.records_sent++;
	}
	return 0;
}

static int build_data(struct sync_session *s, const uint8_t **out, size_t *out_len)
{
	struct sync_data_wr b;
	sync_data_begin(&b, s->out, sizeof(s->out));
	if (!s->heads_done_sent) {
		while (s->heads_next < s->mine_n) {
			const struct repl_head *h = &s->mine[s->heads_next];
			if (s->differ[h->author[0]]) {
				struct sync_head w;
				to_wire(h, &w);
				if (!sync_data_add_head(&b, &w))
					break;
				s->stats.heads_sent++;
			}
			s->heads_next++;
		}
	}
	bool heads_done = s->heads_next == s->mine_n;
	bool wants_done = s->wants_done_sent;
	if (heads_done && s->wants_ready && !wants_done) {
		while (s->wants_next < s->wants_n &&
		       sync_data_add_want(&b, &s->wants[s->wants_next])) {
			s->wants_next++;
			s->stats.wants_sent++;
		}
		wants_done = s->wants_next == s->wants_n;
	}
	int rc = serve_records(s, &b);
	if (rc)
		return rc;
	bool served = s->peer_wants_done && s->serve_idx == s->serve_n;
	bool fin = heads_done && wants_done && served;
	uint8_t flags = (heads_done ? SYNC_F_HEADS_DONE : 0) |
			(wants_done ? SYNC_F_WANTS_DONE : 0) | (fin ? SYNC_F_FIN : 0);
	*out_len = sync_data_end(&b, flags);
	*out = s->out;
	s->heads_done_sent = heads_done;
	s->wants_done_sent = wants_done;
	s->last_sent_fin = fin;
	return 0;
}

/* --- entry points ------------------------------------------------------------- */

static int count_msg(struct sync_session *s)
{
	if (++s->msgs > SHOAL_SYNC_FRAMES_MAX)
		return SHOAL_ETOOBIG;
	return 0;
}

static int sent(struct sync_session *s, size_t len)
{
	s->stats.msgs_sent++;
	s->stats.bytes_sent += len;
	return count_msg(s);
}

int sync_session_start(struct sync_session *s, const uint8_t **out, size_t *out_len)
{
	assert(s && out && out_len);
	*out_len = 0;
	if (s->role != SYNC_INITIATOR || s->state != SS_NEW)
		return s->state == SS_FAILED ? SHOAL_ESTATE : fail(s, SHOAL_ESTATE);
	int rc = snapshot(s);
	if (rc)
		return fail(s, rc);
	send_root(s, out, out_len);
	rc = sent(s, *out_len);
	if (rc)
		return fail(s, rc);
	s->state = SS_WAIT_ROOT;
	return 0;
}

int sync_session_recv(struct sync_session *s, const uint8_t *msg, size_t len,
		      const uint8_t **out, size_t *out_len)
{
	assert(s && (msg || len == 0) && out && out_len);
	*out_len = 0;
	*out = NULL;
	s->ev_n = s->ev_next = 0;
	if (s->state == SS_NEW || s->state == SS_DONE || s->state == SS_FAILED)
		return s->state == SS_FAILED ? SHOAL_ESTATE : fail(s, SHOAL_ESTATE);
	s->stats.msgs_received++;
	s->stats.bytes_received += len;
	int rc = count_msg(s);
	if (rc)
		return fail(s, rc);
	rc = sync_decode(msg, len, &s->msg);
	if (rc)
		return fail(s, rc);
	struct sync_msg *m = &s->msg;
	size_t differing;
	switch (s->state) {
	case SS_WAIT_FIRST:
		if (m->type != SYNC_DIGEST && m->type != SYNC_ROOT)
			return fail(s, SHOAL_EPROTO);
		rc = snapshot(s);
		if (rc)
			return fail(s, rc);
		if (m->type == SYNC_ROOT) {
			/* Our root either way: equal ends the session on both
			 * sides, a different one asks for the digests. */
			send_root(s, out, out_len);
			s->state = roots_equal(s, m->root) ? SS_DONE : SS_WAIT_PEER_DIGEST;
			break;
		}
		differing = compare_digests(s, m->digest);
		send_digest(s, out, out_len);
		s->state = differing ? SS_DATA : SS_DONE;
		break;
	case SS_WAIT_PEER_DIGEST:
		if (m->type != SYNC_DIGEST)
			return fail(s, SHOAL_EPROTO);
		/* The snapshot taken for the ROOT answer: the root we sent
		 * and the digests we send now describe the same heads. */
		differing = compare_digests(s, m->digest);
		send_digest(s, out, out_len);
		s->state = differing ? SS_DATA : SS_DONE;
		break;
	case SS_WAIT_ROOT:
		if (m->type != SYNC_ROOT)
			return fail(s, SHOAL_EPROTO);
		if (roots_equal(s, m->root)) {
			s->state = SS_DONE; /* in sync: nothing to say */
			return 0;
		}
		send_digest(s, out, out_len);
		s->state = SS_WAIT_DIGEST;
		break;
	case SS_WAIT_DIGEST:
		if (m->type != SYNC_DIGEST)
			return fail(s, SHOAL_EPROTO);
		if (compare_digests(s, m->digest) == 0) {
			s->state = SS_DONE; /* in sync: nothing to say */
			return 0;
		}
		s->state = SS_DATA;
		rc = build_data(s, out, out_len);
		break;
	case SS_DATA:
		if (m->type != SYNC_DATA)
			return fail(s, SHOAL_EPROTO);
		rc = on_data(s, m);
		if (rc)
			return fail(s, rc);
		if (s->peer_fin && s->last_sent_fin) {
			s->state = SS_DONE; /* both said FIN, ours first */
			return 0;
		}
		rc = build_data(s, out, out_len);
		if (rc == 0 && s->last_sent_fin && s->peer_fin)
			s->state = SS_DONE; /* our FIN answers theirs: last word */
		break;
	default:
		assert(!"unreachable session state");
		return fail(s, SHOAL_ESTATE);
	}
	if (rc)
		return fail(s, rc);
	rc = sent(s, *out_len);
	if (rc)
		return fail(s, rc);
	return 0;
}

int sync_run_local(const struct repl_store_ops *ops_a, void *store_a,
		   const struct repl_store_ops *ops_b, void *store_b,
		   sync_event_fn on_event, void *arg, struct sync_stats *stats_a,
		   struct sync_stats *stats_b)
{
	struct sync_session *side[2] = {
		sync_session_new(SYNC_INITIATOR, ops_a, store_a),
		sync_session_new(SYNC_RESPONDER, ops_b, store_b),
	};
	int rc = SHOAL_ENOMEM;
	if (!side[0] || !side[1])
		goto out;
	const uint8_t *msg;
	size_t len;
	rc = sync_session_start(side[0], &msg, &len);
	int to = 1;
	/* Each recv is bounded by SHOAL_SYNC_FRAMES_MAX inside the sessions. */
	while (rc == 0) {
		const uint8_t *reply;
		size_t reply_len;
		rc = sync_session_recv(side[to], msg, len, &reply, &reply_len);
		struct repl_event ev;
		while (sync_session_poll(side[to], &ev))
			if (on_event)
				on_event(arg, to == 0 ? SYNC_INITIATOR : SYNC_RESPONDER, &ev);
		if (rc || reply_len == 0)
			break;
		msg = reply;
		len = reply_len;
		to ^= 1;
	}
	if (rc == 0) {
		/* The side that sent nothing is done; so is the other, whose
		 * last message was the final one. */
		assert(sync_session_done(side[0]) && sync_session_done(side[1]));
	}
out:
	if (stats_a && side[0])
		*stats_a = side[0]->stats;
	if (stats_b && side[1])
		*stats_b = side[1]->stats;
	sync_session_free(side[0]);
	sync_session_free(side[1]);
	return rc;
}
