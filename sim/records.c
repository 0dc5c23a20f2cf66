/*
 * records.c — the simulator's record-dissemination layer (see records.h):
 * a memfeed store and a replication core per node, pushed over the sim's
 * datagrams, repaired by modelled sync sessions, and the `record` scenario.
 *
 * Per node: its store, its core, its one pending tick (like the sim's
 * membership ticks, an earlier deadline supersedes a later one and the
 * later event is dropped as stale), whether and how it got the record, and
 * a bitset row of the nodes its membership view lists alive or suspect.
 * The row changes with the membership events the sim hands over; the core
 * gets the row as its peer list just before a tick, only if it changed
 * (10,000 rows of 10,000 would otherwise be rebuilt on every event).
 *
 * A sync session is a slot holding the two sessions and the one message in
 * flight (half-duplex: the sender's buffer stays valid until the sender is
 * called again, which is after the message arrives). Exactly one timer
 * event is pending per slot, so a slot is only freed by its own event.
 */
#include "sim/records.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/memfeed.h"
#include "core/sync.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define NO_TIMER UINT64_MAX
#define CONNECT_DRAWS 4 /* TCP + TLS 1.3: two round trips before the first message */

enum timer_kind {
	T_TICK = 1,   /* the node's replication core is due */
	T_CONNECT,    /* b: session slot; the stream is up */
	T_MSG,        /* b: session slot; its message arrives */
};

enum sess_end {
	SESS_OK = 1,
	SESS_LOST,    /* an end crashed or was partitioned away */
	SESS_ERROR,   /* a session refused the other (protocol, store) */
};

struct rnode {
	struct memfeed *feed;       /* NULL while down */
	struct repl_core *core;     /* NULL while down */
	uint64_t tick_at;           /* the pending tick, NO_TIMER if none */
	uint64_t got_ms;            /* when it stored the record */
	uint8_t got_via;            /* 0: not held; enum repl_source */
	uint8_t view_dirty;         /* the view row changed since the core got it */
};

struct rsess {
	uint32_t node[2];           /* initiator, responder */
	struct sync_session *side[2];
	const uint8_t *msg;         /* in flight, in the sender's buffer */
	size_t len;
	uint8_t to;                 /* the side the message is for */
	uint8_t used;
	uint32_t msgs;
	uint64_t bytes;
	uint32_t records;           /* new records either side stored */
};

struct sim_records {
	struct sim *s;
	struct repl_config cfg;
	FILE *trace;
	uint32_t n;
	struct rnode *nodes;
	uint64_t *view;             /* n rows of words */
	uint32_t *gid;              /* node -> membership gid (UINT32_MAX: never up) */
	size_t words;
	uint32_t *peer_buf;         /* one row's peers, rebuilt per refresh */

	struct rsess *sess;
	size_t sess_cap;
	uint32_t *sess_free;
	size_t sess_free_n;

	/* The record followed. */
	bool published;
	uint32_t publisher;
	uint64_t publish_ms;
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq;
	uint32_t holders;           /* live nodes holding it */
	uint32_t via_push, via_sync;
	bool reached[3];            /* 50%, 99%, 100% */
	uint64_t reached_ms[3];

	/* Totals of cores and stores already freed by crashes. */
	struct repl_stats gone_repl;
	struct memfeed_stats gone_feed;
	/* Counted here, since the publication. */
	uint64_t push_lost, push_to_down;
	uint64_t syncs_started, syncs_ok, syncs_failed, syncs_error;
	uint64_t sync_msgs, sync_bytes, sync_records;
};

static const double reach_q[3] = {0.50, 0.99, 1.00};

static uint64_t *view_row(const struct sim_records *r, uint32_t o)
{
	assert(o < r->n);
	return r->view + (size_t)o * r->words;
}

static bool bit_get(const uint64_t *w, size_t i) { return (w[i >> 6] >> (i & 63)) & 1; }

static bool node_live(const struct sim_records *r, uint32_t i)
{
	return i < r->n && r->nodes[i].core != NULL && sim_node_up(r->s, i);
}

/* --- the record's spread ---------------------------------------------------- */

static void check_reached(struct sim_records *r)
{
	uint32_t live = sim_live_count(r->s);
	for (int k = 0; k < 3; k++) {
		/* holders >= ceil(q * live), in integers */
		uint64_t need = (uint64_t)(reach_q[k] * 100 + 0.5) * live;
		if (!r->reached[k] && live > 0 && (uint64_t)r->holders * 100 >= need) {
			r->reached[k] = true;
			r->reached_ms[k] = sim_now(r->s);
		}
	}
}

static void on_event(struct sim_records *r, uint32_t idx, const struct repl_event *ev)
{
	uint64_t now = sim_now(r->s);
	sim_trace_mix(r->s, now);
	sim_trace_mix(r->s, ((uint64_t)idx << 32) | ((uint64_t)ev->kind << 16) |
				    ((uint64_t)ev->source << 8) | (uint8_t)ev->put);
	sim_trace_mix(r->s, (ev->seq << 32) ^ ev->from_gid);
	if (r->trace) {
		char from[16] = "none";
		if (ev->from_gid != REPL_NONE)
			snprintf(from, sizeof(from), "n%u", ev->from_gid);
		fprintf(r->trace, "t=%llu node=n%u event=%s source=%s from=%s seq=%llu put=%s\n",
			(unsigned long long)now, idx, repl_event_name(ev->kind),
			repl_source_name(ev->source), from, (unsigned long long)ev->seq,
			repl_put_name(ev->put));
	}
	if (ev->kind != REPL_EV_RECORD || !r->published || ev->seq != r->seq ||
	    memcmp(ev->author, r->author, SHOAL_NODE_ID_BYTES) != 0)
		return;
	struct rnode *rn = &r->nodes[idx];
	assert(rn->got_via == 0); /* the store reports a record new once */
	rn->got_via = (uint8_t)ev->source;
	rn->got_ms = now;
	r->holders++;
	if (ev->source == REPL_SRC_PUSH)
		r->via_push++;
	else if (ev->source == REPL_SRC_SYNC)
		r->via_sync++;
	check_reached(r);
}

/* --- driving a replication core --------------------------------------------- */

static void start_sync(struct sim_records *r, uint32_t a, uint32_t b);

/* Drains node idx's outputs and schedules its next tick; `ticked`: it was
 * just ticked, so a deadline still due goes 1 ms out (no spinning). */
static void drain(struct sim_records *r, uint32_t idx, bool ticked)
{
	struct rnode *rn = &r->nodes[idx];
	assert(rn->core);
	struct repl_out o;
	while (repl_poll(rn->core, &o)) {
		switch (o.kind) {
		case REPL_OUT_PACKET: {
			int copies = sim_send_datagram(r->s, idx, o.to_gid, o.data, o.len);
			assert(copies >= 0); /* peers are sim nodes, payloads fit */
			if (copies == 0)
				r->push_lost++;
			break;
		}
		case REPL_OUT_SYNC:
			start_sync(r, idx, o.to_gid);
			break;
		case REPL_OUT_EVENT:
			on_event(r, idx, &o.ev);
			break;
		default:
			assert(!"unknown repl_out kind");
			break;
		}
	}
	uint64_t now = sim_now(r->s);
	uint64_t d = repl_next_deadline(rn->core);
	if (d == UINT64_MAX)
		return;
	if (d <= now)
		d = ticked ? now + 1 : now;
	if (d < rn->tick_at) {
		rn->tick_at = d;
		sim_schedule(r->s, d, idx, T_TICK, 0);
	}
}

/* Gives the core its view as peers if the view changed. */
static void refresh_peers(struct sim_records *r, uint32_t idx)
{
	struct rnode *rn = &r->nodes[idx];
	if (!rn->view_dirty)
		return;
	const uint64_t *row = view_row(r, idx);
	size_t k = 0;
	for (size_t w = 0; w < r->words; w++) {
		uint64_t bits = row[w];
		while (bits) {
			r->peer_buf[k++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
			bits &= bits - 1;
		}
	}
	assert(k < r->n);
	if (repl_set_peers(rn->core, r->peer_buf, k) == 0)
		rn->view_dirty = 0; /* on ENOMEM the old set stays; retried next tick */
}

static void on_tick(struct sim_records *r, uint32_t idx)
{
	struct rnode *rn = &r->nodes[idx];
	uint64_t now = sim_now(r->s);
	if (!rn->core || rn->tick_at != now)
		return; /* stale: superseded by an earlier tick, or crashed */
	rn->tick_at = NO_TIMER;
	refresh_peers(r, idx);
	repl_tick(rn->core, now);
	drain(r, idx, true);
}

/* --- hooks -------------------------------------------------------------------- */

static void hook_member_event(void *arg, uint32_t o, uint32_t g, const struct member_event *ev)
{
	struct sim_records *r = arg;
	assert(o < r->n && g < r->n && o != g);
	bool live;
	switch (ev->kind) {
	case MEMBER_EV_JOIN:
	case MEMBER_EV_ALIVE:
	case MEMBER_EV_SUSPECT:
		live = true;
		break;
	case MEMBER_EV_DEAD:
	case MEMBER_EV_LEFT:
		live = false;
		break;
	default:
		return; /* UPDATE: identity only */
	}
	uint64_t *row = view_row(r, o);
	uint64_t bit = UINT64_C(1) << (g & 63);
	if (((row[g >> 6] & bit) != 0) == live)
		return;
	row[g >> 6] ^= bit;
	r->nodes[o].view_dirty = 1;
}

static void hook_datagram(void *arg, uint32_t to, uint32_t from, const uint8_t *data, size_t len)
{
	struct sim_records *r = arg;
	if (!node_live(r, to)) {
		r->push_to_down++;
		return;
	}
	/* A payload the core refuses is counted in its stats (malformed). */
	(void)repl_recv_packet(r->nodes[to].core, from, data, len, sim_now(r->s));
	drain(r, to, false);
}

/* --- sync sessions ----------------------------------------------------------- */

static void sess_send(struct sim_records *r, uint32_t sid);

static void start_sync(struct sim_records *r, uint32_t a, uint32_t b)
{
	r->syncs_started++;
	if (b >= r->n || b == a) {
		r->syncs_failed++;
		return;
	}
	if (r->sess_free_n == 0) {
		size_t cap = r->sess_cap ? r->sess_cap * 2 : 64;
		struct rsess *ns = realloc(r->sess, cap * sizeof(*ns));
		uint32_t *nf = ns ? realloc(r->sess_free, cap * sizeof(*nf)) : NULL;
		if (ns)
			r->sess = ns;
		if (!nf) {
			r->syncs_failed++; /* out of memory: as a failed connect */
			return;
		}
		r->sess_free = nf;
		for (size_t i = cap; i > r->sess_cap; i--) {
			r->sess[i - 1].used = 0;
			r->sess_free[r->sess_free_n++] = (uint32_t)(i - 1);
		}
		r->sess_cap = cap;
	}
	uint32_t sid = r->sess_free[--r->sess_free_n];
	struct rsess *x = &r->sess[sid];
	assert(!x->used);
	memset(x, 0, sizeof(*x));
	x->used = 1;
	x->node[0] = a;
	x->node[1] = b;
	uint64_t at = sim_now(r->s);
	for (int i = 0; i < CONNECT_DRAWS; i++)
		at += sim_draw_latency(r->s);
	sim_schedule(r->s, at, a, T_CONNECT, sid);
}

static void sess_end(struct sim_records *r, uint32_t sid, enum sess_end how)
{
	struct rsess *x = &r->sess[sid];
	assert(x->used);
	switch (how) {
	case SESS_OK: r->syncs_ok++; break;
	case SESS_LOST: r->syncs_failed++; break;
	case SESS_ERROR: r->syncs_error++; break;
	}
	sim_trace_mix(r->s, sim_now(r->s));
	sim_trace_mix(r->s, ((uint64_t)x->node[0] << 32) | x->node[1]);
	sim_trace_mix(r->s, ((uint64_t)how << 32) | x->msgs);
	if (r->trace)
		fprintf(r->trace, "t=%llu node=n%u event=sync peer=n%u result=%s msgs=%u bytes=%llu records=%u\n",
			(unsigned long long)sim_now(r->s), x->node[0], x->node[1],
			how == SESS_OK ? "ok" : how == SESS_LOST ? "lost" : "error", x->msgs,
			(unsigned long long)x->bytes, x->records);
	sync_session_free(x->side[0]);
	sync_session_free(x->side[1]);
	x->side[0] = x->side[1] = NULL;
	x->used = 0;
	r->sess_free[r->sess_free_n++] = sid;
}

static bool sess_ends_up(const struct sim_records *r, const struct rsess *x)
{
	return node_live(r, x->node[0]) && node_live(r, x->node[1]) &&
	       sim_reachable(r->s, x->node[0], x->node[1]);
}

/* The stream is up: both sessions exist from now, the initiator speaks. */
static void on_connect(struct sim_records *r, uint32_t sid)
{
	struct rsess *x = &r->sess[sid];
	assert(x->used && x->msgs == 0);
	if (!sess_ends_up(r, x)) {
		sess_end(r, sid, SESS_LOST);
		return;
	}
	for (int k = 0; k < 2; k++) {
		struct rnode *rn = &r->nodes[x->node[k]];
		x->side[k] = sync_session_new(k == 0 ? SYNC_INITIATOR : SYNC_RESPONDER,
					      &memfeed_ops, rn->feed);
	}
	if (!x->side[0] || !x->side[1] || sync_session_start(x->side[0], &x->msg, &x->len) != 0) {
		sess_end(r, sid, SESS_ERROR);
		return;
	}
	x->to = 1;
	sess_send(r, sid);
}

static void sess_send(struct sim_records *r, uint32_t sid)
{
	struct rsess *x = &r->sess[sid];
	assert(x->used && x->len > 0);
	x->msgs++;
	x->bytes += x->len;
	r->sync_msgs++;
	r->sync_bytes += x->len;
	sim_schedule(r->s, sim_now(r->s) + sim_draw_latency(r->s), x->node[x->to], T_MSG, sid);
}

static void on_msg(struct sim_records *r, uint32_t sid)
{
	struct rsess *x = &r->sess[sid];
	assert(x->used);
	if (!sess_ends_up(r, x)) {
		sess_end(r, sid, SESS_LOST);
		return;
	}
	uint8_t to = x->to;
	uint32_t me = x->node[to], peer = x->node[to ^ 1];
	const uint8_t *reply = NULL;
	size_t reply_len = 0;
	int rc = sync_session_recv(x->side[to], x->msg, x->len, &reply, &reply_len);
	struct repl_event ev;
	uint32_t got = 0;
	while (sync_session_poll(x->side[to], &ev)) {
		repl_note_synced(r->nodes[me].core, peer, &ev, sim_now(r->s));
		got += ev.kind == REPL_EV_RECORD;
	}
	x->records += got;
	r->sync_records += got;
	/* drain can open another session and move r->sess: index again after. */
	drain(r, me, false);
	x = &r->sess[sid];
	if (rc != 0) {
		sess_end(r, sid, SESS_ERROR);
		return;
	}
	if (reply_len == 0) {
		bool done = sync_session_done(x->side[0]) && sync_session_done(x->side[1]);
		sess_end(r, sid, done ? SESS_OK : SESS_ERROR);
		return;
	}
	x->msg = reply;
	x->len = reply_len;
	x->to = to ^ 1;
	sess_send(r, sid);
}

static void hook_timer(void *arg, uint32_t node, uint32_t a, uint32_t b)
{
	struct sim_records *r = arg;
	switch (a) {
	case T_TICK:
		on_tick(r, node);
		break;
	case T_CONNECT:
		assert(b < r->sess_cap);
		on_connect(r, b);
		break;
	case T_MSG:
		assert(b < r->sess_cap);
		on_msg(r, b);
		break;
	default:
		assert(!"unknown records timer");
		break;
	}
}

/* --- lifecycle --------------------------------------------------------------- */

/* Does o's membership core list g alive or suspect? The sim's bit answers
 * ALIVE without a lookup; only the rest need one. */
static bool view_has(const struct sim_records *r, uint32_t o, uint32_t g)
{
	if (sim_sees_alive(r->s, o, g))
		return true;
	struct member_info info;
	return r->gid[g] != UINT32_MAX &&
	       member_core_lookup(sim_core(r->s, o), r->gid[g], &info) == 0 &&
	       info.state == MEMBER_SUSPECT;
}

struct sim_records *sim_records_new(struct sim *s, const struct repl_config *cfg, FILE *trace)
{
	assert(s && cfg);
	struct sim_records *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->s = s;
	r->cfg = *cfg;
	r->trace = trace;
	r->n = sim_nodes(s);
	r->words = (r->n + 63) / 64;
	r->nodes = calloc(r->n, sizeof(*r->nodes));
	r->view = calloc((size_t)r->n * r->words, sizeof(uint64_t));
	r->peer_buf = malloc((size_t)r->n * sizeof(uint32_t));
	r->gid = malloc((size_t)r->n * sizeof(uint32_t));
	if (!r->nodes || !r->view || !r->peer_buf || !r->gid)
		goto fail;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct member_core *c = sim_core(s, i);
		r->gid[i] = c ? member_core_self_gid(c) : UINT32_MAX;
	}
	struct rng *rng = sim_rng(s);
	for (uint32_t i = 0; i < r->n; i++) {
		struct rnode *rn = &r->nodes[i];
		rn->tick_at = NO_TIMER;
		if (!sim_node_up(s, i))
			continue;
		rn->feed = memfeed_new(0);
		rn->core = rn->feed ? repl_core_new(cfg, &memfeed_ops, rn->feed, i, rng_next(rng),
						    sim_now(s))
				    : NULL;
		if (!rn->core)
			goto fail;
		uint64_t *row = view_row(r, i);
		for (uint32_t g = 0; g < r->n; g++)
			if (g != i && view_has(r, i, g))
				row[g >> 6] |= UINT64_C(1) << (g & 63);
		rn->view_dirty = 1;
	}
	struct sim_hooks h = {
		.arg = r,
		.member_event = hook_member_event,
		.datagram = hook_datagram,
		.timer = hook_timer,
	};
	sim_set_hooks(s, &h);
	/* First ticks: the cores' sync timers. */
	for (uint32_t i = 0; i < r->n; i++)
		if (r->nodes[i].core)
			drain(r, i, false);
	return r;
fail:
	sim_records_free(r);
	return NULL;
}

void sim_records_free(struct sim_records *r)
{
	if (!r)
		return;
	sim_set_hooks(r->s, NULL);
	for (size_t i = 0; i < r->sess_cap; i++) {
		if (r->sess[i].used) {
			sync_session_free(r->sess[i].side[0]);
			sync_session_free(r->sess[i].side[1]);
		}
	}
	if (r->nodes) {
		for (uint32_t i = 0; i < r->n; i++) {
			repl_core_free(r->nodes[i].core);
			memfeed_free(r->nodes[i].feed);
		}
	}
	free(r->sess);
	free(r->sess_free);
	free(r->nodes);
	free(r->view);
	free(r->peer_buf);
	free(r->gid);
	free(r);
}

static void add_repl_stats(struct repl_stats *t, const struct repl_stats *x)
{
	t->packets_sent += x->packets_sent;
	t->packet_bytes_sent += x->packet_bytes_sent;
	t->records_sent += x->records_sent;
	t->records_dup += x->records_dup;
	t->queue_dropped += x->queue_dropped;
	t->packets_malformed += x->packets_malformed;
}

static void add_feed_stats(struct memfeed_stats *t, const struct memfeed_stats *x)
{
	t->put_new += x->put_new;
	t->put_gap += x->put_gap;
	t->put_bad_sig += x->put_bad_sig;
	t->put_equivocation += x->put_equivocation;
}

int sim_records_crash(struct sim_records *r, uint32_t idx)
{
	assert(r && idx < r->n);
	struct rnode *rn = &r->nodes[idx];
	if (!rn->core)
		return SHOAL_ESTATE;
	int rc = sim_node_crash(r->s, idx);
	if (rc != 0)
		return rc;
	add_repl_stats(&r->gone_repl, repl_core_stats(rn->core));
	add_feed_stats(&r->gone_feed, memfeed_stats(rn->feed));
	repl_core_free(rn->core);
	memfeed_free(rn->feed);
	rn->core = NULL;
	rn->feed = NULL;
	rn->tick_at = NO_TIMER;
	if (rn->got_via) {
		r->holders--;
		rn->got_via = 0;
	}
	check_reached(r); /* fewer live nodes can complete the spread */
	return 0;
}

int sim_records_publish(struct sim_records *r, uint32_t idx, const uint8_t sk[64],
			uint8_t kind, const void *body, size_t len)
{
	assert(r && sk);
	if (r->published || !node_live(r, idx))
		return SHOAL_ESTATE;
	struct rnode *rn = &r->nodes[idx];
	struct record rec;
	uint64_t now = sim_now(r->s);
	int rc = memfeed_append(rn->feed, sk, kind, now, body, len, &rec);
	if (rc != 0)
		return rc;
	r->published = true;
	r->publisher = idx;
	r->publish_ms = now;
	memcpy(r->author, rec.author, SHOAL_NODE_ID_BYTES);
	r->seq = rec.seq;
	/* Traffic is counted from here on. */
	r->push_lost = r->push_to_down = 0;
	r->syncs_started = r->syncs_ok = r->syncs_failed = r->syncs_error = 0;
	r->sync_msgs = r->sync_bytes = r->sync_records = 0;
	rc = repl_publish(rn->core, &rec, now);
	drain(r, idx, false);
	return rc;
}

bool sim_records_complete(const struct sim_records *r)
{
	return r->published && r->reached[2] && r->holders == sim_live_count(r->s);
}

static uint64_t rounds(uint64_t ms, uint32_t interval)
{
	return (ms + interval - 1) / interval;
}

void sim_records_report(const struct sim_records *r, struct sim_record_report *out)
{
	assert(r && out);
	memset(out, 0, sizeof(*out));
	out->published = r->published;
	out->publisher = r->publisher;
	out->publish_ms = r->publish_ms;
	out->window_ms = r->published ? sim_now(r->s) - r->publish_ms : 0;
	out->gossip_interval_ms = r->cfg.gossip_interval_ms;
	out->live_nodes = sim_live_count(r->s);
	out->holders = r->holders;
	out->via_push = r->via_push;
	out->via_sync = r->via_sync;
	bool *reached[3] = {&out->reached_50, &out->reached_99, &out->reached_100};
	uint64_t *t[3] = {&out->t50_ms, &out->t99_ms, &out->t100_ms};
	uint64_t *rd[3] = {&out->rounds_50, &out->rounds_99, &out->rounds_100};
	for (int k = 0; k < 3; k++) {
		*reached[k] = r->reached[k];
		if (r->reached[k]) {
			*t[k] = r->reached_ms[k] - r->publish_ms;
			*rd[k] = rounds(*t[k], r->cfg.gossip_interval_ms);
		}
	}
	struct repl_stats rs = r->gone_repl;
	struct memfeed_stats fs = r->gone_feed;
	for (uint32_t i = 0; i < r->n; i++) {
		if (!r->nodes[i].core)
			continue;
		add_repl_stats(&rs, repl_core_stats(r->nodes[i].core));
		add_feed_stats(&fs, memfeed_stats(r->nodes[i].feed));
	}
	/* No record exists before the publication, so push counts start there. */
	out->push_packets = rs.packets_sent;
	out->push_bytes = rs.packet_bytes_sent;
	out->push_records_sent = rs.records_sent;
	out->push_dups = rs.records_dup;
	out->queue_dropped = rs.queue_dropped;
	out->push_lost = r->push_lost;
	out->push_to_down = r->push_to_down;
	out->syncs_started = r->syncs_started;
	out->syncs_ok = r->syncs_ok;
	out->syncs_failed = r->syncs_failed;
	out->syncs_error = r->syncs_error + rs.packets_malformed;
	out->sync_msgs = r->sync_msgs;
	out->sync_bytes = r->sync_bytes;
	out->sync_records = r->sync_records;
	out->sig_verifies = fs.put_new + fs.put_gap + fs.put_bad_sig + fs.put_equivocation;
	out->bad_sig = fs.put_bad_sig;
	out->equivocations = fs.put_equivocation;
}

uint64_t sim_records_verify(const struct sim_records *r)
{
	uint64_t bad = 0;
	uint32_t holders = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct rnode *rn = &r->nodes[i];
		if (!node_live(r, i))
			continue;
		bool has = r->published && memfeed_has(rn->feed, r->author, r->seq);
		if (has != (rn->got_via != 0))
			bad++;
		holders += has;
		const uint64_t *row = view_row(r, i);
		size_t set = 0;
		for (uint32_t g = 0; g < r->n; g++) {
			set += bit_get(row, g);
			if (g != i && bit_get(row, g) != view_has(r, i, g))
				bad++;
		}
		/* The core has the row as its peers unless the row changed since. */
		if (!rn->view_dirty && repl_peer_count(rn->core) != set)
			bad++;
	}
	if (holders != r->holders)
		bad++;
	return bad;
}

/* --- the record scenario ----------------------------------------------------- */

/* An alert as the agent would publish one: about 150 bytes of body. */
static const char alert_body[] =
	"rule=ransom_note_dropper sha256=9f2c1e7a4b8d3f60a1c5e9b7d2f4a8c6e0b3d5f7a9c1e3b5d7f9a2c4e6b8d0f1 "
	"path=/home/build/README_DECRYPT.txt severity=high action=quarantined";

int sim_records_scenario(struct sim *s, const struct sim_params *p, uint64_t publish_ms,
			 uint64_t *end_ms, struct sim_record_report *out)
{
	assert(s && p && end_ms && out);
	if (*end_ms && *end_ms <= publish_ms)
		return SHOAL_EINVAL;
	if (sodium_init() < 0)
		return SHOAL_ECRYPTO;
	struct repl_config cfg;
	repl_config_default(&cfg);
	struct sim_records *r = sim_records_new(s, &cfg, p->trace);
	if (!r)
		return SHOAL_ENOMEM;
	uint32_t n = sim_nodes(s);
	uint32_t *order = malloc((size_t)n * sizeof(*order));
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t kseed[crypto_sign_SEEDBYTES];
	int rc = order ? sim_run_until(s, publish_ms) : SHOAL_ENOMEM;
	if (rc != 0)
		goto out;
	/* Crash a share of the live nodes at once (a partial Fisher-Yates),
	 * then a random survivor publishes: every view still lists the crashed
	 * nodes, so pushes and syncs aimed at them are lost until membership
	 * declares them dead (the hard case for push). */
	struct rng *rng = sim_rng(s);
	uint32_t live = 0;
	for (uint32_t i = 0; i < n; i++)
		if (sim_node_up(s, i))
			order[live++] = i;
	if (live < 2) {
		rc = SHOAL_EINVAL; /* nobody to publish or to reach */
		goto out;
	}
	uint32_t want = (uint32_t)(p->crash_fraction * n + 0.5);
	if (want >= live)
		want = live - 1; /* someone must publish */
	for (uint32_t i = 0; i < want; i++) {
		uint32_t j = i + (uint32_t)rng_below(rng, live - i);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t i = 0; i < want && rc == 0; i++)
		rc = sim_records_crash(r, order[i]);
	if (rc != 0)
		goto out;
	uint32_t publisher = order[want + (uint32_t)rng_below(rng, live - want)];
	/* The publisher's feed key, from the seed: a real Ed25519 key pair, so
	 * every store verifies the real signature once. */
	for (size_t k = 0; k < sizeof(kseed); k += 8) {
		uint64_t x = rng_next(rng);
		memcpy(kseed + k, &x, 8);
	}
	crypto_sign_seed_keypair(pk, sk, kseed);
	rc = sim_records_publish(r, publisher, sk, RECORD_ALERT, alert_body,
				 sizeof(alert_body) - 1);
	if (rc != 0)
		goto out;
	if (*end_ms) {
		rc = sim_run_until(s, *end_ms);
	} else {
		/* Until every live node holds it, in gossip-interval steps (the
		 * steps do not change the run: events keep their order). */
		uint64_t limit = publish_ms + SIM_RECORD_WAIT_MS;
		while (rc == 0 && !sim_records_complete(r) && sim_now(s) < limit)
			rc = sim_run_until(s, sim_now(s) + cfg.gossip_interval_ms);
		*end_ms = sim_now(s);
	}
out:
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(kseed, sizeof(kseed));
	if (r)
		sim_records_report(r, out);
	free(order);
	sim_records_free(r);
	return rc;
}
