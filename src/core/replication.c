/*
 * replication.c — the eager-push core and anti-entropy scheduling (see
 * replication.h for the protocol and the payload format).
 *
 * The push queue is memberlist's TransmitLimitedQueue in miniature: each
 * queued record carries how often it was sent; a round sends every target
 * one payload of the least-sent records (newest first among equals) and
 * drops those that reached the retransmit limit. The queue is bounded
 * (SHOAL_REPL_QUEUE_COUNT_MAX); when full, the most-sent, oldest record
 * makes room, since a fresh record is the one that has not spread yet.
 * Rounds sort the queue: O(q log q) per round with q <= 1024.
 */
#include "core/replication.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/bytes.h"
#include "shoal/rng.h"

#define TIME_NEVER UINT64_MAX
#define MISFITS_MAX 8 /* records that did not fit before a payload counts as full */

_Static_assert(REPL_PAYLOAD_HEADER_BYTES + 2 + SHOAL_RECORD_BYTES_MAX <=
		       SHOAL_UDP_PAYLOAD_BYTES_MAX,
	       "a largest record fits one push payload");
_Static_assert(REPL_PAYLOAD_HEADER_BYTES +
		       (SHOAL_REPL_RECORDS_PER_PACKET_MAX + 1) *
			       (2 + SHOAL_RECORD_HEADER_BYTES + SHOAL_RECORD_SIG_BYTES) >
		       SHOAL_UDP_PAYLOAD_BYTES_MAX,
	       "the count bound never cuts a payload short");
_Static_assert(SHOAL_REPL_QUEUE_COUNT_MAX <= UINT16_MAX, "queue indices fit u16");

struct pq_entry {
	uint8_t buf[SHOAL_RECORD_BYTES_MAX]; /* the encoded record */
	uint16_t len;
	uint16_t transmits;
	uint32_t from_gid;  /* not sent back to its sender */
	uint64_t order;     /* insertion order: newer is larger */
};

struct out_item {
	enum repl_out_kind kind;
	uint32_t to_gid;
	size_t off, len;    /* PACKET: bytes in the arena */
	struct repl_event ev;
};

struct repl_core {
	struct repl_config cfg;
	const struct repl_store_ops *ops;
	void *store;
	uint32_t self_gid;
	struct rng rng;

	uint32_t *peers;
	size_t peers_n, peers_cap;

	struct pq_entry *q;
	size_t q_n, q_cap;
	uint64_t q_order;

	uint64_t next_gossip_ms;
	uint64_t next_sync_ms;
	uint64_t last_sync_ms;
	uint32_t sync_mult; /* the interval now: sync_mult × sync_interval_ms */
	uint32_t gap_peer;  /* sender of the last gap, the next sync's target */

	struct out_item *outq;
	size_t outq_head, outq_len, outq_cap;
	uint8_t *arena;
	size_t arena_len, arena_cap;

	struct repl_stats stats;
	struct record scratch[SHOAL_REPL_RECORDS_PER_PACKET_MAX];
};

const char *repl_put_name(int put)
{
	switch (put) {
	case REPL_PUT_NEW: return "new";
	case REPL_PUT_NEW_GAP: return "new_gap";
	case REPL_PUT_DUP: return "dup";
	case REPL_PUT_EQUIVOCATION: return "equivocation";
	case REPL_PUT_STALE: return "stale";
	default: return "unknown";
	}
}

const char *repl_event_name(enum repl_event_kind k)
{
	switch (k) {
	case REPL_EV_RECORD: return "record";
	case REPL_EV_EQUIVOCATION: return "equivocation";
	default: return "unknown";
	}
}

const char *repl_source_name(enum repl_source s)
{
	switch (s) {
	case REPL_SRC_LOCAL: return "local";
	case REPL_SRC_PUSH: return "push";
	case REPL_SRC_SYNC: return "sync";
	default: return "unknown";
	}
}

void repl_config_default(struct repl_config *c)
{
	assert(c);
	c->fanout = 3;
	c->gossip_interval_ms = 200;
	c->retransmit_mult = 4;
	c->sync_interval_ms = 10000;
	c->sync_backoff_max = 4;
	c->gap_sync_delay_ms = 2000;
	c->payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT;
}

bool repl_is_payload(const uint8_t *p, size_t len)
{
	return len >= 1 && p[0] == REPL_MAGIC;
}

/* --- payload codec ------------------------------------------------------------- */

int repl_decode_payload(const uint8_t *p, size_t len, struct record *recs, size_t *count)
{
	assert((p || len == 0) && recs && count);
	if (len > SHOAL_UDP_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	struct rd r = rd_init(p, len);
	uint8_t magic, version, n;
	if (!rd_u8(&r, &magic))
		return SHOAL_ETRUNC;
	if (magic != REPL_MAGIC)
		return SHOAL_EPROTO;
	if (!rd_u8(&r, &version))
		return SHOAL_ETRUNC;
	if (version != REPL_VERSION)
		return SHOAL_EVERSION;
	if (!rd_u8(&r, &n))
		return SHOAL_ETRUNC;
	if (n == 0 || n > SHOAL_REPL_RECORDS_PER_PACKET_MAX)
		return SHOAL_EPROTO;
	for (uint8_t i = 0; i < n; i++) {
		struct rd body;
		if (!rd_len16(&r, &body))
			return SHOAL_ETRUNC;
		if (record_decode_buf(body.p, body.len, &recs[i]) != 0)
			return SHOAL_EPROTO; /* bad record, or its length prefix lied */
	}
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	*count = n;
	return 0;
}

int repl_encode_payload(const struct record *recs, size_t n, uint8_t *out, size_t cap,
			size_t *len)
{
	assert(recs && out && len);
	if (n == 0 || n > SHOAL_REPL_RECORDS_PER_PACKET_MAX || cap > SHOAL_UDP_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	struct wr w = wr_init(out, cap);
	wr_u8(&w, REPL_MAGIC);
	wr_u8(&w, REPL_VERSION);
	wr_u8(&w, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t mark = wr_begin16(&w);
		record_encode(&w, &recs[i]);
		wr_end16(&w, mark);
	}
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	*len = w.len;
	return 0;
}

/* --- lifecycle and peers ---------------------------------------------------- */

static uint64_t sync_delay(struct repl_core *r)
{
	/* Uniform in [0.5, 1.5) × interval: syncs of many nodes spread out. */
	uint64_t iv = (uint64_t)r->cfg.sync_interval_ms * r->sync_mult;
	assert(iv > 0);
	return iv / 2 + rng_below(&r->rng, iv);
}

struct repl_core *repl_core_new(const struct repl_config *cfg,
				const struct repl_store_ops *ops, void *store,
				uint32_t self_gid, uint64_t seed, uint64_t now_ms)
{
	assert(cfg && ops && ops->put);
	assert(cfg->fanout >= 1 && cfg->fanout <= SHOAL_REPL_FANOUT_MAX);
	assert(cfg->gossip_interval_ms > 0 && cfg->retransmit_mult > 0);
	assert(cfg->payload_bytes_max >= REPL_PAYLOAD_HEADER_BYTES + 2 + SHOAL_RECORD_BYTES_MAX &&
	       cfg->payload_bytes_max <= SHOAL_UDP_PAYLOAD_BYTES_MAX);
	struct repl_core *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->cfg = *cfg;
	r->ops = ops;
	r->store = store;
	r->self_gid = self_gid;
	rng_seed(&r->rng, seed);
	if (r->cfg.sync_backoff_max < 1)
		r->cfg.sync_backoff_max = 1;
	r->sync_mult = 1;
	r->next_gossip_ms = TIME_NEVER;
	r->next_sync_ms = cfg->sync_interval_ms ? now_ms + sync_delay(r) : TIME_NEVER;
	r->last_sync_ms = now_ms;
	r->gap_peer = REPL_NONE;
	return r;
}

void repl_core_free(struct repl_core *r)
{
	if (!r)
		return;
	free(r->peers);
	free(r->q);
	free(r->outq);
	free(r->arena);
	free(r);
}

int repl_set_peers(struct repl_core *r, const uint32_t *gids, size_t n)
{
	assert(r && (gids || n == 0));
	if (n > SHOAL_REPL_PEERS_MAX)
		return SHOAL_ETOOBIG;
	if (n > r->peers_cap) {
		uint32_t *p = realloc(r->peers, n * sizeof(*p));
		if (!p)
			return SHOAL_ENOMEM;
		r->peers = p;
		r->peers_cap = n;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (gids[i] != r->self_gid && gids[i] != REPL_NONE)
			r->peers[k++] = gids[i];
	/* A member joined or came back: it may hold what we lack (or lack
	 * what we hold), so an idle node's syncs come at the full rate again.
	 * (Only growth is noticed: a leave and a join at once are not.) */
	bool grew = k > r->peers_n;
	r->peers_n = k;
	if (grew && r->sync_mult > 1) {
		r->sync_mult = 1;
		uint64_t soon = r->last_sync_ms + sync_delay(r);
		if (soon < r->next_sync_ms)
			r->next_sync_ms = soon;
	}
	if (k > 0 && r->q_n > 0 && r->next_gossip_ms == TIME_NEVER)
		r->next_gossip_ms = 0; /* queued records waited for peers: due now */
	return 0;
}

size_t repl_peer_count(const struct repl_core *r) { return r->peers_n; }
size_t repl_queue_count(const struct repl_core *r) { return r->q_n; }
const struct repl_stats *repl_core_stats(const struct repl_core *r) { return &r->stats; }

/* --- outputs -------------------------------------------------------------------- */

static struct out_item *out_push(struct repl_core *r, enum repl_out_kind kind)
{
	if (r->outq_len - r->outq_head >= SHOAL_OUTBOX_COUNT_MAX) {
		r->stats.outbox_dropped++;
		return NULL;
	}
	if (r->outq_len == r->outq_cap) {
		size_t cap = r->outq_cap ? r->outq_cap * 2 : 16;
		struct out_item *n = realloc(r->outq, cap * sizeof(*n));
		if (!n) {
			r->stats.outbox_dropped++;
			return NULL;
		}
		r->outq = n;
		r->outq_cap = cap;
	}
	struct out_item *o = &r->outq[r->outq_len++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->to_gid = REPL_NONE;
	return o;
}

/* Called on entry to every input: forgets outputs already polled. */
static void out_compact(struct repl_core *r)
{
	if (r->outq_head == r->outq_len) {
		r->outq_head = r->outq_len = 0;
		r->arena_len = 0;
	}
}

static uint8_t *arena_alloc(struct repl_core *r, size_t n, size_t *off)
{
	if (r->arena_cap - r->arena_len < n) {
		size_t cap = r->arena_cap ? r->arena_cap * 2 : 4096;
		while (cap - r->arena_len < n)
			cap *= 2;
		uint8_t *a = realloc(r->arena, cap);
		if (!a)
			return NULL;
		r->arena = a;
		r->arena_cap = cap;
	}
	*off = r->arena_len;
	r->arena_len += n;
	return r->arena + *off;
}

/* Something new happened (a record learned or published, an
 * equivocation): syncs come at the full rate again. */
static void sync_hurry(struct repl_core *r, uint64_t now)
{
	if (r->cfg.sync_interval_ms == 0 || r->sync_mult == 1)
		return;
	r->sync_mult = 1;
	uint64_t soon = now + sync_delay(r);
	if (soon < r->next_sync_ms)
		r->next_sync_ms = soon;
}

static void emit_event(struct repl_core *r, const struct repl_event *ev)
{
	struct out_item *o = out_push(r, REPL_OUT_EVENT);
	if (o)
		o->ev = *ev;
}

static void record_event(struct repl_core *r, enum repl_event_kind kind,
			 enum repl_source src, enum repl_put put,
			 const struct record *rec, uint32_t from_gid)
{
	struct repl_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.source = src;
	ev.put = put;
	ev.record_kind = rec->kind;
	memcpy(ev.author, rec->author, SHOAL_NODE_ID_BYTES);
	ev.seq = rec->seq;
	ev.from_gid = from_gid;
	emit_event(r, &ev);
}

bool repl_poll(struct repl_core *r, struct repl_out *out)
{
	assert(r && out);
	if (r->outq_head == r->outq_len)
		return false;
	const struct out_item *o = &r->outq[r->outq_head++];
	memset(out, 0, sizeof(*out));
	out->kind = o->kind;
	out->to_gid = o->to_gid;
	if (o->kind == REPL_OUT_PACKET) {
		out->data = r->arena + o->off;
		out->len = o->len;
	}
	out->ev = o->ev;
	return true;
}

/* --- the push queue ------------------------------------------------------------- */

static uint32_t retransmit_limit(const struct repl_core *r)
{
	/* mult × ceil(log10(N + 1)), N nodes (peers and self); ceil(log10(N+1))
	 * is the number of decimal digits of N. */
	size_t n = r->peers_n + 1;
	uint32_t digits = 0;
	while (n > 0) {
		digits++;
		n /= 10;
	}
	uint32_t limit = r->cfg.retransmit_mult * digits;
	return limit < UINT16_MAX ? limit : UINT16_MAX - 1;
}

static void queue_remove(struct repl_core *r, size_t i)
{
	assert(i < r->q_n);
	r->q[i] = r->q[--r->q_n];
}

static void enqueue(struct repl_core *r, const struct record *rec, uint32_t from_gid,
		    uint64_t now)
{
	if (r->q_n >= SHOAL_REPL_QUEUE_COUNT_MAX) {
		size_t victim = 0;
		for (size_t i = 1; i < r->q_n; i++) {
			const struct pq_entry *a = &r->q[i], *v = &r->q[victim];
			if (a->transmits > v->transmits ||
			    (a->transmits == v->transmits && a->order < v->order))
				victim = i;
		}
		queue_remove(r, victim);
		r->stats.queue_dropped++;
	}
	if (r->q_n == r->q_cap) {
		size_t cap = r->q_cap ? r->q_cap * 2 : 16;
		if (cap > SHOAL_REPL_QUEUE_COUNT_MAX)
			cap = SHOAL_REPL_QUEUE_COUNT_MAX;
		struct pq_entry *n = realloc(r->q, cap * sizeof(*n));
		if (!n) {
			r->stats.queue_dropped++;
			return;
		}
		r->q = n;
		r->q_cap = cap;
	}
	struct pq_entry *e = &r->q[r->q_n];
	struct wr w = wr_init(e->buf, sizeof(e->buf));
	record_encode(&w, rec);
	assert(wr_ok(&w));
	e->len = (uint16_t)w.len;
	e->transmits = 0;
	e->from_gid = from_gid;
	e->order = ++r->q_order;
	r->q_n++;
	/* Eager: the first round runs at once. */
	if (r->next_gossip_ms > now)
		r->next_gossip_ms = now;
}

/* Sort key of a queue entry: fewest transmits first, newest first. */
struct qkey {
	uint64_t order;
	uint16_t transmits;
	uint16_t idx;
};

static int cmp_qkey(const void *a, const void *b)
{
	const struct qkey *x = a, *y = b;
	if (x->transmits != y->transmits)
		return x->transmits < y->transmits ? -1 : 1;
	return x->order > y->order ? -1 : (x->order < y->order ? 1 : 0);
}

/* One payload for target of the least-sent records; returns how many. */
static unsigned fill_payload(struct repl_core *r, uint32_t target, const struct qkey *order,
			     uint32_t limit)
{
	size_t off;
	size_t cap = r->cfg.payload_bytes_max;
	uint8_t *buf = arena_alloc(r, cap, &off);
	if (!buf) {
		r->stats.outbox_dropped++;
		return 0;
	}
	struct wr w = wr_init(buf, cap);
	wr_u8(&w, REPL_MAGIC);
	wr_u8(&w, REPL_VERSION);
	wr_u8(&w, 0); /* count, patched below */
	unsigned count = 0, misfits = 0;
	for (size_t k = 0; k < r->q_n && count < SHOAL_REPL_RECORDS_PER_PACKET_MAX; k++) {
		struct pq_entry *e = &r->q[order[k].idx];
		if (e->transmits >= limit || e->from_gid == target)
			continue;
		if (w.len + 2 + e->len > cap) {
			if (++misfits >= MISFITS_MAX)
				break;
			continue;
		}
		wr_u16(&w, e->len);
		wr_bytes(&w, e->buf, e->len);
		e->transmits++;
		count++;
	}
	assert(wr_ok(&w));
	if (count == 0) {
		r->arena_len = off; /* nothing for this target: give the space back */
		return 0;
	}
	buf[2] = (uint8_t)count;
	r->arena_len = off + w.len;
	struct out_item *o = out_push(r, REPL_OUT_PACKET);
	if (!o)
		return 0;
	o->to_gid = target;
	o->off = off;
	o->len = w.len;
	r->stats.packets_sent++;
	r->stats.packet_bytes_sent += w.len;
	r->stats.records_sent += count;
	return count;
}

static void push_round(struct repl_core *r, uint64_t now)
{
	r->next_gossip_ms = r->q_n ? now + r->cfg.gossip_interval_ms : TIME_NEVER;
	if (r->peers_n == 0)
		r->next_gossip_ms = TIME_NEVER; /* records wait: repl_set_peers rearms */
	if (r->q_n == 0 || r->peers_n == 0)
		return;
	uint32_t limit = retransmit_limit(r);
	/* fanout distinct random peers: a partial Fisher-Yates on our copy */
	size_t k = r->cfg.fanout < r->peers_n ? r->cfg.fanout : r->peers_n;
	for (size_t i = 0; i < k; i++) {
		size_t j = i + (size_t)rng_below(&r->rng, r->peers_n - i);
		uint32_t t = r->peers[i];
		r->peers[i] = r->peers[j];
		r->peers[j] = t;
	}
	struct qkey order[SHOAL_REPL_QUEUE_COUNT_MAX];
	for (size_t i = 0; i < r->q_n; i++)
		order[i] = (struct qkey){r->q[i].order, r->q[i].transmits, (uint16_t)i};
	qsort(order, r->q_n, sizeof(order[0]), cmp_qkey);
	for (size_t i = 0; i < k; i++)
		fill_payload(r, r->peers[i], order, limit);
	/* Drop what reached the limit, and what only its own sender could
	 * receive (it is our one peer): nobody else is there to tell. */
	for (size_t i = r->q_n; i > 0; i--)
		if (r->q[i - 1].transmits >= limit ||
		    (r->peers_n == 1 && r->q[i - 1].from_gid == r->peers[0]))
			queue_remove(r, i - 1);
	r->next_gossip_ms = r->q_n ? now + r->cfg.gossip_interval_ms : TIME_NEVER;
}

/* --- anti-entropy scheduling --------------------------------------------------- */

static bool is_peer(const struct repl_core *r, uint32_t gid)
{
	for (size_t i = 0; i < r->peers_n; i++)
		if (r->peers[i] == gid)
			return true;
	return false;
}

static void start_sync(struct repl_core *r, uint64_t now)
{
	r->last_sync_ms = now;
	r->next_sync_ms = now + sync_delay(r);
	uint32_t target = r->gap_peer;
	r->gap_peer = REPL_NONE;
	if (r->peers_n == 0)
		return;
	if (target == REPL_NONE || !is_peer(r, target))
		target = r->peers[rng_below(&r->rng, r->peers_n)];
	struct out_item *o = out_push(r, REPL_OUT_SYNC);
	if (!o)
		return;
	o->to_gid = target;
	r->stats.syncs_started++;
}

/* A pushed record arrived with its predecessor missing: the sender likely
 * holds it; sync with it soon (at most once per gap_sync_delay_ms). */
static void gap_seen(struct repl_core *r, uint32_t from_gid, uint64_t now)
{
	if (r->cfg.sync_interval_ms == 0 || from_gid == REPL_NONE)
		return;
	uint64_t at = now + r->cfg.gap_sync_delay_ms;
	uint64_t spaced = r->last_sync_ms + r->cfg.gap_sync_delay_ms;
	if (at < spaced)
		at = spaced;
	if (at < r->next_sync_ms) {
		r->next_sync_ms = at;
		r->gap_peer = from_gid;
		r->stats.syncs_gap_triggered++;
	}
}

/* --- inputs --------------------------------------------------------------------- */

int repl_publish(struct repl_core *r, const struct record *rec, uint64_t now_ms)
{
	assert(r && rec);
	out_compact(r);
	if (rec->kind == 0 || rec->kind > RECORD_KIND_MAX_ || rec->seq == 0 ||
	    rec->body_len > SHOAL_RECORD_BODY_MAX)
		return SHOAL_EINVAL;
	enqueue(r, rec, REPL_NONE, now_ms);
	sync_hurry(r, now_ms);
	r->stats.records_published++;
	record_event(r, REPL_EV_RECORD, REPL_SRC_LOCAL, REPL_PUT_NEW, rec, REPL_NONE);
	return 0;
}

int repl_recv_packet(struct repl_core *r, uint32_t from_gid, const uint8_t *p, size_t len,
		     uint64_t now_ms)
{
	assert(r && (p || len == 0));
	out_compact(r);
	r->stats.packets_received++;
	size_t n = 0;
	int rc = repl_decode_payload(p, len, r->scratch, &n);
	if (rc) {
		r->stats.packets_malformed++;
		return rc;
	}
	assert(n >= 1 && n <= SHOAL_REPL_RECORDS_PER_PACKET_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct record *rec = &r->scratch[i];
		r->stats.records_received++;
		enum repl_put res = 0;
		rc = r->ops->put(r->store, rec, &res);
		if (rc == SHOAL_EBADSIG) {
			r->stats.records_bad_sig++;
			continue;
		}
		if (rc) {
			r->stats.records_refused++;
			continue;
		}
		switch (res) {
		case REPL_PUT_NEW_GAP:
		case REPL_PUT_NEW:
			/* Stored either way, so it spreads like any new record. */
			if (res == REPL_PUT_NEW_GAP) {
				r->stats.records_gap++;
				gap_seen(r, from_gid, now_ms);
			}
			r->stats.records_new++;
			enqueue(r, rec, from_gid, now_ms);
			sync_hurry(r, now_ms);
			record_event(r, REPL_EV_RECORD, REPL_SRC_PUSH, res, rec, from_gid);
			break;
		case REPL_PUT_DUP:
			r->stats.records_dup++;
			break;
		case REPL_PUT_EQUIVOCATION:
			r->stats.records_equivocation++;
			sync_hurry(r, now_ms);
			record_event(r, REPL_EV_EQUIVOCATION, REPL_SRC_PUSH, res, rec, from_gid);
			break;
		case REPL_PUT_STALE:
			r->stats.records_stale++;
			break;
		default:
			r->stats.records_refused++; /* the store broke its contract */
			break;
		}
	}
	return 0;
}

void repl_note_synced(struct repl_core *r, uint32_t peer_gid, const struct repl_event *ev,
		      uint64_t now_ms)
{
	assert(r && ev);
	out_compact(r);
	sync_hurry(r, now_ms);
	struct repl_event e = *ev;
	e.source = REPL_SRC_SYNC;
	e.from_gid = peer_gid;
	if (e.kind == REPL_EV_RECORD)
		r->stats.records_synced++;
	emit_event(r, &e);
}

void repl_note_sync_result(struct repl_core *r, uint32_t peer_gid, bool in_sync,
			   uint64_t now_ms)
{
	assert(r);
	(void)peer_gid;
	if (r->cfg.sync_interval_ms == 0)
		return;
	if (!in_sync) {
		sync_hurry(r, now_ms);
		return;
	}
	if (r->sync_mult * 2 > r->cfg.sync_backoff_max)
		return;
	/* The pending sync was drawn at the old rate: draw it again. */
	r->sync_mult *= 2;
	r->stats.sync_backoffs++;
	uint64_t later = r->last_sync_ms + sync_delay(r);
	if (later > r->next_sync_ms)
		r->next_sync_ms = later;
}

uint64_t repl_sync_interval_now(const struct repl_core *r)
{
	assert(r);
	return (uint64_t)r->cfg.sync_interval_ms * r->sync_mult;
}

void repl_tick(struct repl_core *r, uint64_t now_ms)
{
	assert(r);
	out_compact(r);
	if (now_ms >= r->next_gossip_ms)
		push_round(r, now_ms);
	if (now_ms >= r->next_sync_ms)
		start_sync(r, now_ms);
}

uint64_t repl_next_deadline(const struct repl_core *r)
{
	assert(r);
	uint64_t t = r->q_n ? r->next_gossip_ms : TIME_NEVER;
	return r->next_sync_ms < t ? r->next_sync_ms : t;
}
