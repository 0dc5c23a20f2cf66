/*
 * sim.c — the deterministic simulator: virtual clock, event heap, network
 * model, crashes, restarts and partitions around N membership cores.
 *
 * Event queue: a timing wheel of 1-ms buckets covering the next WHEEL_MS,
 * each bucket a FIFO of events in chunks, plus a binary min-heap for events
 * further out. Events run in (time, seq) order, seq counting pushes: within
 * a bucket FIFO order is seq order, and an event that went to the heap was
 * pushed before any event that went to its bucket (it was pushed at least
 * WHEEL_MS earlier), so at each time the heap's events go first. Pushing and
 * popping are O(1) for the wheel, and the events after the current one are
 * known, so their cores can be loaded ahead (prefetch_ahead). Packet
 * payloads live in a slab of fixed-size slots with a free list: no malloc
 * per event once warm.
 *
 * A layer above membership (sim_hooks) gets its own event kinds: DATAGRAM
 * (through the same network model as membership packets) and TIMER.
 *
 * Bookkeeping, all driven by the cores' own events:
 *  - seen[o] is a bitset over nodes: o's view of g is ALIVE. alive_seen[o]
 *    counts the set bits whose node is up. `deficit` sums, over live
 *    observers, how many live nodes each does not see alive; the cluster has
 *    converged exactly when it is 0. Crash and restart adjust it in O(N).
 *  - every crash opens a record; an observer's first DEAD event for that node
 *    adds a detection sample (crash -> dead, ms) to a 1-ms histogram.
 *  - a DEAD event about a node that is up, at or above the incarnation its
 *    current life began with, is a false death.
 */
#include "sim/sim.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "shoal/error.h"
#include "shoal/limits.h"
#include "trust/identity.h"

#define SEQ_BITS 36
#define SEQ_MAX ((UINT64_C(1) << SEQ_BITS) - 1)
#define TIME_MAX_MS ((UINT64_C(1) << (64 - SEQ_BITS)) - 1)
#define NO_TICK UINT64_MAX
#define NO_CRASH UINT32_MAX
/* Subject and accuser hints kept with a packet (member_out.hints): one
 * 32-bit hint per message. */
#define SIM_HINTS_MAX SHOAL_MSGS_PER_PACKET_MAX
/* Broadcast vectors the shared directory keeps for reuse, per node: the
 * cores' tiers grow and shrink in turn as a wave of broadcasts passes, and
 * handing vectors from one core to the next saves the malloc and free. */
#define SIM_SPARE_BYTES_PER_NODE 2048
_Static_assert(SIM_HINTS_MAX <= UINT8_MAX, "an event counts its hints in a byte");

/* A sim time bound must fit the heap key. */
_Static_assert((uint64_t)SHOAL_SIM_SECONDS_MAX * 1000 * 2 < TIME_MAX_MS,
	       "SHOAL_SIM_SECONDS_MAX does not fit the event key");

enum ev_kind {
	EV_TICK = 1,
	EV_PACKET,
	EV_PUSHPULL,
	EV_DATAGRAM,    /* a layer's datagram (sim_send_datagram) */
	EV_TIMER,       /* a layer's timer (sim_schedule) */
	EV_STREAM_PING, /* a stream ping's answer reaches the prober */
};

/* 24 bytes; queues move these around, so keep them small. */
struct sim_ev {
	uint64_t key;   /* (time << SEQ_BITS) | seq */
	uint32_t node;  /* tick: node; packet: receiver; push-pull, stream ping: initiator */
	uint32_t a;     /* tick: node epoch; packet: sender; push-pull, stream ping: peer */
	uint32_t b;     /* push-pull: initiator epoch; packet: payload slot; stream ping: seq */
	uint16_t c;     /* packet: length; push-pull: join flag; stream ping: the
			 * initiator's epoch, low 16 bits */
	uint8_t kind;
	uint8_t h;      /* packet: subject hints stored after the payload */
};
_Static_assert(sizeof(struct sim_ev) == 24, "queues move events around: keep them small");

/* The timing wheel's buckets hold their events in chunks from a free list. */
#define WHEEL_BITS 12
#define WHEEL_MS (UINT64_C(1) << WHEEL_BITS) /* 4.1 s: every tick and packet */
#define WHEEL_MASK (WHEEL_MS - 1)
#define CHUNK_EVS 10                           /* 248-byte chunks */
#define BLOCK_CHUNKS 256

struct ev_chunk {
	struct sim_ev ev[CHUNK_EVS];
	struct ev_chunk *next;
};

struct ev_block {
	struct ev_chunk chunks[BLOCK_CHUNKS];
	struct ev_block *next;
};

/* A FIFO of the events at one time: head_pos is the next to pop in head,
 * tail_pos the next free place in tail. Empty: head == tail == NULL. */
struct bucket {
	struct ev_chunk *head, *tail;
	uint32_t head_pos, tail_pos;
};

/* 96 bytes, 32-aligned (in a 64-aligned array), so that what every event
 * reads (the first 32 bytes) and the id a packet's receiver reads (the
 * next 32) each sit in one cache line. */
struct sim_node {
	_Alignas(32) struct member_core *core; /* NULL while down */
	uint32_t epoch;             /* bumped on crash/restart: stale events drop */
	uint32_t gid;
	uint8_t up;
	uint8_t started;            /* has ever run */
	uint8_t side;
	uint8_t pad[13];
	uint8_t id[SHOAL_NODE_ID_BYTES];
	uint64_t up_since_ms;
	uint32_t life_inc;          /* incarnation this life started with */
	uint32_t last_inc;          /* incarnation when it last crashed */
	uint32_t open_crash;        /* index into crashes, NO_CRASH if none */
	uint32_t alive_seen;        /* live nodes this node sees alive */
};
_Static_assert(sizeof(struct sim_node) == 96 && offsetof(struct sim_node, id) == 32,
	       "sim_node's hot fields and id must each stay in one line");

/* Per node, densely (24 bytes; 240 kB at 10,000 nodes, which stay in
 * cache): whether an event will call its core is known without a miss. */
struct sim_hot {
	struct member_core *core;   /* nodes[i].core again */
	uint64_t deadline;          /* the core's next deadline after its last call */
	uint64_t tick_at;           /* the one pending tick, NO_TICK if none */
};

struct crash_rec {
	uint32_t node;
	uint64_t at_ms;
	uint64_t *detected;         /* bitset over observers */
	bool judged;
};

struct sim {
	struct sim_config cfg;
	struct rng rng;
	uint64_t now;
	uint64_t seq;
	uint64_t trace_hash;

	struct member_dir *dir;
	struct sim_node *nodes;     /* 64-aligned */
	struct sim_hot *hot;
	uint32_t n;
	uint32_t live;
	uint32_t *gid_node;         /* gid -> node index */
	size_t gid_cap;

	/* Every core's member table, node i's at tables + i * table_bytes, in
	 * one mapping advised for transparent huge pages: 10,000 tables of
	 * 10,000 members are 1.8 GB read at random, and with 4 KiB pages
	 * nearly every access missed the TLB. NULL: each core allocates its
	 * own. */
	uint8_t *tables;
	size_t table_bytes;
	void *tables_map;
	size_t tables_map_len;

	/* The event queue (see the top of this file). */
	struct bucket *wheel;       /* WHEEL_MS buckets, bucket t & WHEEL_MASK */
	size_t wheel_count;         /* events in the wheel */
	struct ev_chunk *chunk_free;
	struct ev_block *blocks;    /* every chunk ever allocated, to free them */
	struct sim_ev *heap;        /* events WHEEL_MS or more ahead */
	size_t heap_len, heap_cap;
	bool heap_full;             /* the queue hit its bound: the run stops */

	uint8_t *slots;             /* payload slab: a payload, then its hints */
	uint32_t slot_bytes;        /* payload bound */
	uint32_t hints_off;         /* where a slot's hints start */
	uint32_t slot_stride;       /* payload bound and hints, in whole lines */
	uint32_t slots_cap;
	uint32_t *slot_free;
	uint32_t slot_free_len;

	uint64_t *seen;             /* n rows of words_per_row */
	size_t words_per_row;
	int64_t deficit;
	bool conv_armed;            /* waiting for the first convergence */
	bool conv_reached;
	uint64_t conv_at;

	bool partitioned;
	bool had_partition;
	uint64_t heal_at;

	struct crash_rec *crashes;
	size_t crashes_len, crashes_cap;
	uint32_t *hist;             /* detection times, 1 ms buckets */
	size_t hist_len;
	uint64_t hist_count;

	/* One push-pull core to core (member_core_pair_begin, _merge): room
	 * for every gid (a core knows at most the n nodes, whose gids are
	 * below n). */
	struct member_pair pair;
	/* The output space every core shares (member_core_share_outputs):
	 * each call's outputs are drained before the next core is called, so
	 * packets are written into the same few cache-hot lines. */
	void *outspace;
	size_t outspace_bytes;

	struct sim_metrics m;       /* running counters */
	struct sim_hooks hooks;     /* a layer above membership; zeroed: none */
};

/* --- small helpers -------------------------------------------------------- */

/* Chains one 64-bit word into the trace hash (a multiply-xorshift step:
 * three of these per event instead of FNV's 21 dependent byte steps). */
static void hash_word(uint64_t *h, uint64_t w)
{
	uint64_t x = (*h ^ w) * 0x9e3779b97f4a7c15ull;
	*h = x ^ (x >> 29);
}

static bool bit_get(const uint64_t *w, size_t i) { return (w[i >> 6] >> (i & 63)) & 1; }
static void bit_set(uint64_t *w, size_t i) { w[i >> 6] |= UINT64_C(1) << (i & 63); }
static void bit_clear(uint64_t *w, size_t i) { w[i >> 6] &= ~(UINT64_C(1) << (i & 63)); }

static uint64_t *seen_row(struct sim *s, uint32_t o)
{
	assert(o < s->n);
	return s->seen + (size_t)o * s->words_per_row;
}

void sim_node_addr(uint32_t idx, struct shoal_addr *out)
{
	assert(idx < SHOAL_SIM_NODES_MAX);
	uint32_t v = idx + 1;
	memset(out, 0, sizeof(*out));
	out->family = SHOAL_AF_INET;
	out->ip[0] = 10;
	out->ip[1] = (uint8_t)(v >> 16);
	out->ip[2] = (uint8_t)(v >> 8);
	out->ip[3] = (uint8_t)v;
	out->port = SIM_PORT;
}

/* Returns the node owning addr, or UINT32_MAX when it is not a sim address. */
static uint32_t addr_node(const struct sim *s, const struct shoal_addr *a)
{
	if (a->family != SHOAL_AF_INET || a->ip[0] != 10 || a->port != SIM_PORT)
		return UINT32_MAX;
	uint32_t v = ((uint32_t)a->ip[1] << 16) | ((uint32_t)a->ip[2] << 8) | a->ip[3];
	if (v == 0 || v > s->n)
		return UINT32_MAX;
	return v - 1;
}

static uint32_t gid_to_node(const struct sim *s, uint32_t gid)
{
	if (gid >= s->gid_cap)
		return UINT32_MAX;
	return s->gid_node[gid];
}

static int gid_map(struct sim *s, uint32_t gid, uint32_t idx)
{
	assert(idx < s->n);
	if (gid >= s->gid_cap) {
		size_t cap = s->gid_cap ? s->gid_cap : 64;
		while (cap <= gid)
			cap *= 2;
		uint32_t *p = realloc(s->gid_node, cap * sizeof(*p));
		if (!p)
			return SHOAL_ENOMEM;
		for (size_t i = s->gid_cap; i < cap; i++)
			p[i] = UINT32_MAX;
		s->gid_node = p;
		s->gid_cap = cap;
	}
	s->gid_node[gid] = idx;
	return 0;
}

/* --- event queue ---------------------------------------------------------- */

static uint64_t ev_time(const struct sim_ev *ev) { return ev->key >> SEQ_BITS; }

/* Pushes ev onto the far-events heap. */
static void far_push(struct sim *s, const struct sim_ev *ev)
{
	if (s->heap_len == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 4096;
		if (cap > SHOAL_SIM_EVENTS_MAX)
			cap = SHOAL_SIM_EVENTS_MAX;
		struct sim_ev *h = cap > s->heap_len ? realloc(s->heap, cap * sizeof(*h)) : NULL;
		if (!h) {
			/* Over the bound or out of memory: the run stops with EFULL. */
			s->heap_full = true;
			return;
		}
		s->heap = h;
		s->heap_cap = cap;
	}
	size_t i = s->heap_len++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (s->heap[parent].key <= ev->key)
			break;
		s->heap[i] = s->heap[parent];
		i = parent;
	}
	s->heap[i] = *ev;
}

static struct sim_ev far_pop(struct sim *s)
{
	assert(s->heap_len > 0);
	struct sim_ev top = s->heap[0];
	struct sim_ev last = s->heap[--s->heap_len];
	size_t n = s->heap_len, i = 0;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= n)
			break;
		size_t m = (l + 1 < n && s->heap[l + 1].key < s->heap[l].key) ? l + 1 : l;
		if (last.key <= s->heap[m].key)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (n > 0)
		s->heap[i] = last;
	return top;
}

/* Takes a chunk off the free list, allocating a block of them if empty. */
static struct ev_chunk *chunk_take(struct sim *s)
{
	if (!s->chunk_free) {
		struct ev_block *blk = malloc(sizeof(*blk));
		if (!blk)
			return NULL;
		blk->next = s->blocks;
		s->blocks = blk;
		for (size_t i = BLOCK_CHUNKS; i-- > 0;) {
			blk->chunks[i].next = s->chunk_free;
			s->chunk_free = &blk->chunks[i];
		}
	}
	struct ev_chunk *ch = s->chunk_free;
	s->chunk_free = ch->next;
	ch->next = NULL;
	return ch;
}

static void chunk_give(struct sim *s, struct ev_chunk *ch)
{
	ch->next = s->chunk_free;
	s->chunk_free = ch;
}

/* Queues an event at time `at` (>= now): in its bucket if within WHEEL_MS,
 * else on the far heap. On overflow of the bound the run stops with EFULL. */
static void heap_push(struct sim *s, uint64_t at, uint8_t kind, uint32_t node,
		      uint32_t a, uint32_t b, uint16_t c, uint8_t h)
{
	assert(at >= s->now);
	assert(at <= TIME_MAX_MS);
	if (s->seq > SEQ_MAX || s->wheel_count + s->heap_len >= SHOAL_SIM_EVENTS_MAX) {
		s->heap_full = true;
		return;
	}
	struct sim_ev ev = {.key = (at << SEQ_BITS) | s->seq++, .node = node,
			    .a = a, .b = b, .c = c, .kind = kind, .h = h};
	if (at - s->now >= WHEEL_MS) {
		far_push(s, &ev);
		return;
	}
	struct bucket *bk = &s->wheel[at & WHEEL_MASK];
	if (!bk->tail || bk->tail_pos == CHUNK_EVS) {
		struct ev_chunk *ch = chunk_take(s);
		if (!ch) {
			s->heap_full = true;
			return;
		}
		if (bk->tail)
			bk->tail->next = ch;
		else
			bk->head = ch;
		bk->tail = ch;
		bk->tail_pos = 0;
	}
	bk->tail->ev[bk->tail_pos++] = ev;
	s->wheel_count++;
}

/* Pops the first event of bucket bk (not empty). */
static struct sim_ev bucket_pop(struct sim *s, struct bucket *bk)
{
	assert(bk->head);
	struct ev_chunk *ch = bk->head;
	struct sim_ev ev = ch->ev[bk->head_pos++];
	if (ch == bk->tail && bk->head_pos == bk->tail_pos) {
		chunk_give(s, ch);
		bk->head = bk->tail = NULL;
		bk->head_pos = bk->tail_pos = 0;
	} else if (bk->head_pos == CHUNK_EVS) {
		bk->head = ch->next;
		bk->head_pos = 0;
		chunk_give(s, ch);
	}
	assert(s->wheel_count > 0);
	s->wheel_count--;
	return ev;
}

/* Takes the next event due at or before t_ms into *ev, moving the clock to
 * its time; false when there is none. */
static bool queue_next(struct sim *s, uint64_t t_ms, struct sim_ev *ev)
{
	for (;;) {
		if (s->heap_len > 0 && ev_time(&s->heap[0]) == s->now) {
			*ev = far_pop(s);
			return true;
		}
		struct bucket *bk = &s->wheel[s->now & WHEEL_MASK];
		if (bk->head) {
			*ev = bucket_pop(s, bk);
			assert(ev_time(ev) == s->now);
			return true;
		}
		if (s->now >= t_ms)
			return false;
		if (s->wheel_count > 0) {
			s->now++;
			continue;
		}
		/* Nothing within the wheel: jump to the far heap's first event. */
		if (s->heap_len == 0 || ev_time(&s->heap[0]) > t_ms)
			return false;
		s->now = ev_time(&s->heap[0]);
	}
}

/* Walks the events after the one just popped, in order, through the
 * current bucket and the next few; ends (NULL) past those. A far-heap event
 * can come between: this is for prefetching only. */
struct peek {
	uint64_t t;
	const struct ev_chunk *ch;
	unsigned pos;
};

enum { PEEK_BUCKETS = 8 };

static const struct sim_ev *peek_next(const struct sim *s, struct peek *it)
{
	for (;;) {
		if (it->ch) {
			const struct bucket *bk = &s->wheel[it->t & WHEEL_MASK];
			unsigned end = it->ch == bk->tail ? bk->tail_pos : CHUNK_EVS;
			if (it->pos < end)
				return &it->ch->ev[it->pos++];
			it->ch = it->ch == bk->tail ? NULL : it->ch->next;
			it->pos = 0;
			if (it->ch)
				continue;
			it->t++;
		}
		if (it->t >= s->now + PEEK_BUCKETS)
			return NULL;
		const struct bucket *bk = &s->wheel[it->t & WHEEL_MASK];
		it->ch = bk->head;
		it->pos = bk->head_pos;
		if (!it->ch)
			it->t++;
	}
}

/* --- payload slab --------------------------------------------------------- */

/* Slot i's payload, and the subject hints stored after it. */
static uint8_t *slot_data(const struct sim *s, uint32_t i)
{
	return s->slots + (size_t)i * s->slot_stride;
}

static const uint32_t *slot_hints(const struct sim *s, uint32_t i)
{
	return (const uint32_t *)(const void *)(slot_data(s, i) + s->hints_off);
}

static int slot_alloc(struct sim *s, uint32_t *out)
{
	if (s->slot_free_len == 0) {
		uint32_t cap = s->slots_cap ? s->slots_cap * 2 : 1024;
		uint8_t *p = realloc(s->slots, (size_t)cap * s->slot_stride);
		if (!p)
			return SHOAL_ENOMEM;
		s->slots = p;
		uint32_t *f = realloc(s->slot_free, (size_t)cap * sizeof(*f));
		if (!f)
			return SHOAL_ENOMEM;
		s->slot_free = f;
		/* Pushed in reverse so low slots are used first. */
		for (uint32_t i = cap; i > s->slots_cap; i--)
			s->slot_free[s->slot_free_len++] = i - 1;
		s->slots_cap = cap;
	}
	*out = s->slot_free[--s->slot_free_len];
	assert(*out < s->slots_cap);
	return 0;
}

static void slot_release(struct sim *s, uint32_t slot)
{
	assert(slot < s->slots_cap);
	assert(s->slot_free_len < s->slots_cap);
	s->slot_free[s->slot_free_len++] = slot;
}

/* --- network model -------------------------------------------------------- */

static uint64_t draw_latency(struct sim *s)
{
	const struct sim_net *net = &s->cfg.net;
	uint64_t ms = net->latency_base_ms;
	if (net->latency_jitter_ms > 0) {
		double u = rng_unit(&s->rng);
		ms += (uint64_t)(-log1p(-u) * net->latency_jitter_ms + 0.5);
	}
	return ms;
}

static bool reachable(const struct sim *s, uint32_t a, uint32_t b)
{
	return !s->partitioned || s->nodes[a].side == s->nodes[b].side;
}

/* --- bookkeeping ---------------------------------------------------------- */

static void hist_add(struct sim *s, uint64_t ms)
{
	if (ms >= s->hist_len) {
		size_t len = s->hist_len ? s->hist_len : 4096;
		while (len <= ms)
			len *= 2;
		uint32_t *h = realloc(s->hist, len * sizeof(*h));
		if (!h)
			return; /* the sample is lost, nothing else */
		memset(h + s->hist_len, 0, (len - s->hist_len) * sizeof(*h));
		s->hist = h;
		s->hist_len = len;
	}
	s->hist[ms]++;
	s->hist_count++;
	if (ms > s->m.detection_max_ms)
		s->m.detection_max_ms = ms;
}

static void conv_update(struct sim *s)
{
	assert(s->deficit >= 0);
	if (s->deficit == 0 && s->conv_armed && !s->conv_reached) {
		s->conv_reached = true;
		s->conv_at = s->now;
	}
}

/* Sets bit (o, g) to alive and keeps alive_seen and deficit in step. */
static void seen_set(struct sim *s, uint32_t o, uint32_t g, bool alive)
{
	assert(s->nodes[o].up);
	uint64_t *row = seen_row(s, o);
	if (bit_get(row, g) == alive)
		return;
	if (alive)
		bit_set(row, g);
	else
		bit_clear(row, g);
	if (!s->nodes[g].up)
		return;
	if (alive) {
		s->nodes[o].alive_seen++;
		s->deficit--;
		conv_update(s);
	} else {
		s->nodes[o].alive_seen--;
		s->deficit++;
	}
}

static bool view_live(const struct member_core *c, uint32_t gid)
{
	struct member_info info;
	if (member_core_lookup(c, gid, &info) != 0)
		return false;
	return info.state == MEMBER_ALIVE || info.state == MEMBER_SUSPECT;
}

/* Judges crash record r at now: every observer up since before the crash must
 * no longer see the node alive or suspect. */
static void judge_crash(struct sim *s, struct crash_rec *r)
{
	assert(!r->judged);
	r->judged = true;
	uint32_t gid = s->nodes[r->node].gid;
	for (uint32_t o = 0; o < s->n; o++) {
		const struct sim_node *on = &s->nodes[o];
		if (o == r->node || !on->up || on->up_since_ms > r->at_ms)
			continue;
		s->m.judged_pairs++;
		if (view_live(on->core, gid))
			s->m.undetected++;
	}
}

static void on_member_event(struct sim *s, uint32_t o, const struct member_event *ev)
{
	struct sim_node *on = &s->nodes[o];
	s->m.member_events++;
	/* The trace hash covers time, observer, kind, subject gid and
	 * incarnation as integers (no memory layout), so it is the same on
	 * every build of the same code. */
	uint64_t t = s->now;
	hash_word(&s->trace_hash, t);
	hash_word(&s->trace_hash, ((uint64_t)o << 8) | (uint8_t)ev->kind);
	hash_word(&s->trace_hash, ((uint64_t)ev->gid << 32) | ev->incarnation);

	uint32_t g = gid_to_node(s, ev->gid);
	if (s->cfg.trace) {
		fprintf(s->cfg.trace, "t=%llu node=n%u event=%s subject=n%d gid=%u inc=%u\n",
			(unsigned long long)t, o, member_event_name(ev->kind),
			g == UINT32_MAX ? -1 : (int)g, ev->gid, ev->incarnation);
	}
	if (g == UINT32_MAX || g == o)
		return;
	if (s->hooks.member_event)
		s->hooks.member_event(s->hooks.arg, o, g, ev);

	/* Every state change comes with an event, so the kind says the new
	 * state without a lookup (sim_verify_views checks this in the tests). */
	switch (ev->kind) {
	case MEMBER_EV_JOIN:
	case MEMBER_EV_ALIVE:
		seen_set(s, o, g, true);
		break;
	case MEMBER_EV_SUSPECT:
	case MEMBER_EV_DEAD:
	case MEMBER_EV_LEFT:
		seen_set(s, o, g, false);
		break;
	case MEMBER_EV_UPDATE:
		break; /* identity only; an ALIVE follows if the state changed */
	default:
		assert(!"unknown member event kind");
		break;
	}

	if (ev->kind != MEMBER_EV_DEAD)
		return;
	const struct sim_node *gn = &s->nodes[g];
	if (!gn->up) {
		if (gn->open_crash == NO_CRASH)
			return;
		struct crash_rec *r = &s->crashes[gn->open_crash];
		if (on->up_since_ms > r->at_ms || bit_get(r->detected, o))
			return;
		bit_set(r->detected, o);
		s->m.detected_pairs++;
		hist_add(s, s->now - r->at_ms);
		return;
	}
	if (ev->incarnation < gn->life_inc)
		return; /* about its previous life: a late but true death */
	/* A death declared across a partition spreads by gossip to the subject's
	 * own side too, and events do not say who declared it; so every death
	 * of a live node while partitioned, or until a grace period after the
	 * heal, is put down to the partition. */
	bool across = s->had_partition &&
		      (s->partitioned || s->now < s->heal_at + s->cfg.detect_grace_ms);
	if (across)
		s->m.partition_dead++;
	else
		s->m.false_dead++;
	if (s->cfg.trace)
		fprintf(s->cfg.trace, "t=%llu node=n%u note=%s subject=n%u side=%u/%u\n",
			(unsigned long long)t, o, across ? "partition_dead" : "false_dead", g,
			on->side, gn->side);
}

/* --- driving a core ------------------------------------------------------- */

/* The datagram network model, for membership packets and a layer's alike:
 * partition, loss, duplication, then a latency per copy. Returns the copies
 * queued: 0 (partitioned or lost), 1 or 2. */
static int net_send(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data,
		    size_t len, const uint32_t *hints, size_t n_hints, uint8_t kind)
{
	assert(to < s->n && len > 0 && len <= s->slot_bytes);
	if (!reachable(s, from, to)) {
		s->m.packets_partitioned += kind == EV_PACKET;
		return 0;
	}
	if (s->cfg.net.loss > 0 && rng_unit(&s->rng) < s->cfg.net.loss) {
		s->m.packets_lost += kind == EV_PACKET;
		return 0;
	}
	int copies = 1;
	if (s->cfg.net.dup > 0 && rng_unit(&s->rng) < s->cfg.net.dup) {
		copies = 2;
		s->m.packets_duplicated += kind == EV_PACKET;
	}
	for (int i = 0; i < copies; i++) {
		uint32_t slot;
		if (slot_alloc(s, &slot) != 0) {
			s->heap_full = true;
			return i;
		}
		uint8_t *p = slot_data(s, slot);
		memcpy(p, data, len);
		if (n_hints)
			memcpy(p + s->hints_off, hints, n_hints * sizeof(*hints));
		heap_push(s, s->now + draw_latency(s), kind, to, from, slot, (uint16_t)len,
			  (uint8_t)n_hints);
	}
	return copies;
}

static void send_packet(struct sim *s, uint32_t from, const struct member_out *o)
{
	uint32_t to = addr_node(s, &o->to);
	if (to == UINT32_MAX || o->len == 0 || o->len > s->slot_bytes) {
		s->m.packets_unroutable++;
		return;
	}
	/* The subjects' gids ride along (not on the wire: the receiver
	 * checks each against the payload's ids, and skips a lookup). */
	size_t n_hints = o->hints && o->hints_count <= SIM_HINTS_MAX ? o->hints_count : 0;
	(void)net_send(s, from, to, o->data, o->len, o->hints, n_hints, EV_PACKET);
}

static void start_pushpull(struct sim *s, uint32_t from, const struct member_out *o)
{
	uint32_t to = addr_node(s, &o->to);
	if (to == UINT32_MAX || to == from) {
		s->m.pushpulls_failed++;
		return;
	}
	/* Connect, send, receive: about two round trips of the datagram latency. */
	uint64_t rtt = draw_latency(s) + draw_latency(s);
	heap_push(s, s->now + 2 * rtt, EV_PUSHPULL, from, to, s->nodes[from].epoch,
		  o->join ? 1 : 0, 0);
}

/* memberlist's TCP fallback over the modelled stream: the connection (SYN,
 * SYN-ACK), the handshake's three messages, the ping and its answer, seven
 * segments one way or the other. Each is lost with the datagram loss
 * probability and then sent again after TCP's retransmission timeout (1 s
 * for the connection's two, 200 ms, TCP's minimum, for the rest). An answer
 * that would arrive after the probe's deadline is of no use, and a member
 * that is down or across a partition never answers: neither is queued (a
 * failed stream ping needs no call into the core). */
static void start_stream_ping(struct sim *s, uint32_t from, const struct member_out *o)
{
	uint32_t to = addr_node(s, &o->to);
	if (to == UINT32_MAX || to == from || !s->nodes[to].up || !reachable(s, from, to))
		return;
	uint64_t t = s->now;
	for (unsigned seg = 0; seg < 7 && t < o->deadline_ms; seg++) {
		while (s->cfg.net.loss > 0 && t < o->deadline_ms &&
		       rng_unit(&s->rng) < s->cfg.net.loss)
			t += seg < 2 ? 1000 : 200;
		t += draw_latency(s);
	}
	if (t >= o->deadline_ms)
		return;
	heap_push(s, t, EV_STREAM_PING, from, to, o->seq, (uint16_t)s->nodes[from].epoch, 0);
}

/* Drains every output of node idx and schedules its next tick. `ticked` says
 * the core was just ticked at now: a deadline still due is pushed 1 ms out so
 * a core that never settles cannot spin the simulator. */
static void drain(struct sim *s, uint32_t idx, bool ticked)
{
	struct sim_node *nd = &s->nodes[idx];
	assert(nd->up && nd->core);
	/* Outputs are polled a few ahead of their handling (they stay valid
	 * until the next call into a core), and an event's bookkeeping lines
	 * (the observer's seen word and the subject's node) start loading
	 * when it is polled: a packet that brings news brings a dozen events,
	 * each about a random node. */
	enum { AHEAD = 8 };
	struct member_out outs[AHEAD];
	size_t head = 0, len = 0;
	bool more = true;
	uint64_t *row = seen_row(s, idx);
	for (;;) {
		while (more && len < AHEAD) {
			struct member_out *o = &outs[(head + len) % AHEAD];
			if (!member_core_poll(nd->core, o)) {
				more = false;
				break;
			}
			len++;
			if (o->kind == MEMBER_OUT_EVENT) {
				uint32_t g = gid_to_node(s, o->ev.gid);
				if (g < s->n) {
					__builtin_prefetch(&row[g >> 6], 1);
					__builtin_prefetch(&s->nodes[g].open_crash);
				}
			}
		}
		if (len == 0)
			break;
		const struct member_out *o = &outs[head];
		head = (head + 1) % AHEAD;
		len--;
		switch (o->kind) {
		case MEMBER_OUT_PACKET:
			send_packet(s, idx, o);
			break;
		case MEMBER_OUT_PUSHPULL:
			start_pushpull(s, idx, o);
			break;
		case MEMBER_OUT_STREAM_PING:
			start_stream_ping(s, idx, o);
			break;
		case MEMBER_OUT_EVENT:
			on_member_event(s, idx, &o->ev);
			break;
		default:
			assert(!"unknown member_out kind");
			break;
		}
	}
	uint64_t d = member_core_next_deadline(nd->core);
	s->hot[idx].deadline = d;
	if (d == UINT64_MAX)
		return;
	if (d <= s->now) {
		if (ticked) {
			s->m.tick_overdue++;
			d = s->now + 1;
		} else {
			d = s->now;
		}
	}
	if (d < s->hot[idx].tick_at) {
		s->hot[idx].tick_at = d;
		heap_push(s, d, EV_TICK, idx, nd->epoch, 0, 0, 0);
	}
}

/* The push-pull through the real codec (sim_config.encode_states). */
static void pushpull_encoded(struct sim *s, uint32_t a, uint32_t b, bool join)
{
	struct sim_node *na = &s->nodes[a], *nb = &s->nodes[b];
	uint8_t *sa = NULL, *sb = NULL;
	size_t la = 0, lb = 0;
	if (member_core_encode_state(na->core, join, &sa, &la) != 0 ||
	    member_core_encode_state(nb->core, false, &sb, &lb) != 0) {
		free(sa);
		s->m.pushpulls_failed++;
		return;
	}
	s->m.pushpulls_ok++;
	s->m.pushpull_bytes += la + lb;
	/* Both states were encoded before either merge, as over a real stream.
	 * A rejected state is counted; the core has left itself unchanged. */
	if (member_core_recv_state(nb->core, sa, la, s->now) != 0)
		s->m.pushpulls_rejected++;
	drain(s, b, false);
	if (member_core_recv_state(na->core, sb, lb, s->now) != 0)
		s->m.pushpulls_rejected++;
	drain(s, a, false);
	free(sa);
	free(sb);
}

static void do_pushpull(struct sim *s, const struct sim_ev *ev)
{
	uint32_t a = ev->node, b = ev->a;
	struct sim_node *na = &s->nodes[a], *nb = &s->nodes[b];
	if (!na->up || na->epoch != ev->b || !nb->up || !reachable(s, a, b)) {
		s->m.pushpulls_failed++;
		return;
	}
	if (s->cfg.encode_states) {
		pushpull_encoded(s, a, b, ev->c != 0);
		return;
	}
	/* Core to core: the cores share the directory, whose identities are
	 * what the encoder would send. Both states are taken before either
	 * merge, as over a real stream; pushpull_bytes counts what the
	 * encodings would have been. */
	if (member_core_pair_begin(na->core, nb->core, &s->pair) != 0) {
		s->m.pushpulls_failed++;
		return;
	}
	s->m.pushpulls_ok++;
	s->m.pushpull_bytes += s->pair.encoded_bytes[0] + s->pair.encoded_bytes[1];
	if (member_core_pair_merge(&s->pair, 0, s->now) != 0)
		s->m.pushpulls_rejected++;
	drain(s, b, false);
	if (member_core_pair_merge(&s->pair, 1, s->now) != 0)
		s->m.pushpulls_rejected++;
	drain(s, a, false);
}

static void dispatch(struct sim *s, const struct sim_ev *ev)
{
	struct sim_node *nd = &s->nodes[ev->node];
	struct sim_hot *h = &s->hot[ev->node];
	switch (ev->kind) {
	case EV_TICK:
		if (h->tick_at != s->now || !nd->up || nd->epoch != ev->a)
			return; /* stale: replaced by an earlier tick or a crash */
		h->tick_at = NO_TICK;
		uint64_t deadline = h->deadline;
		if (deadline > s->now) {
			/* Nothing is due any more (the probe's ack came before its
			 * indirect stage, say): member_core_tick would change
			 * nothing and queue nothing, so only do what drain would
			 * then do, without touching the (cold) core. */
			if (deadline != UINT64_MAX) {
				h->tick_at = deadline;
				heap_push(s, deadline, EV_TICK, ev->node, nd->epoch, 0, 0, 0);
			}
			return;
		}
		member_core_tick(nd->core, s->now);
		drain(s, ev->node, true);
		break;
	case EV_PACKET: {
		const uint8_t *data = slot_data(s, ev->b);
		if (!nd->up) {
			s->m.packets_to_down++;
		} else {
			struct shoal_addr from;
			sim_node_addr(ev->a, &from);
			s->m.packets_delivered++;
			(void)member_core_recv_packet_hinted(
				nd->core, s->nodes[ev->a].id, s->nodes[ev->a].gid, &from, data,
				ev->c, slot_hints(s, ev->b), ev->h,
				s->now);
			drain(s, ev->node, false);
		}
		slot_release(s, ev->b);
		break;
	}
	case EV_PUSHPULL:
		do_pushpull(s, ev);
		break;
	case EV_DATAGRAM:
		/* The hook may send, which can move the slab: it must be done
		 * with data first (see sim_hooks). */
		if (s->hooks.datagram)
			s->hooks.datagram(s->hooks.arg, ev->node, ev->a,
					  slot_data(s, ev->b), ev->c);
		slot_release(s, ev->b);
		break;
	case EV_STREAM_PING:
		/* The member answered if it is still up when its answer left
		 * (a restart keeps its key, which the handshake proves). */
		if (nd->up && (uint16_t)nd->epoch == ev->c && s->nodes[ev->a].up)
			member_core_stream_ping_done(nd->core, ev->b, s->now);
		break;
	case EV_TIMER:
		if (s->hooks.timer)
			s->hooks.timer(s->hooks.arg, ev->node, ev->a, ev->b);
		break;
	default:
		assert(!"unknown sim event");
	}
}

/* Whether event e calls into its core: not a stale tick, nor one with
 * nothing due (dispatch skips both without touching the core). */
static bool calls_core(const struct sim *s, const struct sim_ev *e)
{
	const struct sim_hot *h = &s->hot[e->node];
	if (!h->core)
		return false;
	if (e->kind != EV_TICK)
		return true;
	uint64_t t = ev_time(e);
	return h->tick_at == t && h->deadline <= t;
}

/* Starts loading what the next events will touch while this one runs, in
 * a pipeline (member_core_prefetch's stages): the seventh event ahead gets
 * its node's sim_hot entry loaded, which the fifth reads to decide whether
 * the event will call its core (at 10,000 nodes the 240 kB array is not
 * always in cache: a tenth of the samples in sim_run_until stood at that
 * read); the fifth event ahead gets its core's hot fields and its packet's
 * payload and hints loaded, the third what the core's fields point to and
 * the dead-or-left bits of the members its packet is about (or, for a tick
 * that will gossip, the probe order's slots of the members it will draw),
 * the second the table entries of those of its packet's subjects that are
 * not held dead or left, the next event one level further (the tiers'
 * newest items, what news about its packet's subjects would touch, or the
 * drawn members' entries and addresses). At
 * 10,000 cores every event's core is cold otherwise; two events' time per
 * level let the loads arrive (one was too little: about 8% more time at
 * 10,000 nodes, and four too much). Events that will not call their core
 * (stale ticks, ticks with nothing due) get nothing. */
static void prefetch_ahead(const struct sim *s)
{
	enum { STAGE2_AT = 1, PACKET1_AT = 2, STAGE1_AT = 3, STAGE0_AT = 5, HOT_AT = 7 };
	struct peek it = { .t = s->now, .ch = NULL, .pos = 0 };
	unsigned n = 0;
	const struct sim_ev *e;
	while (n < HOT_AT && (e = peek_next(s, &it))) {
		n++;
		if (n > STAGE0_AT) {
			if (n == HOT_AT)
				__builtin_prefetch(&s->hot[e->node]);
			continue;
		}
		if (!calls_core(s, e))
			continue;
		const struct member_core *c = s->hot[e->node].core;
		if (n == STAGE0_AT) {
			member_core_prefetch(c, 0, true);
			if (e->kind == EV_PACKET) {
				__builtin_prefetch(&s->nodes[e->a].gid); /* the sender's gid */
				__builtin_prefetch(s->nodes[e->a].id); /* and id */
				const uint8_t *data = slot_data(s, e->b);
				for (uint32_t off = 0; off < e->c; off += 64)
					__builtin_prefetch(data + off);
				for (uint32_t off = 0; off < 4u * e->h; off += 64)
					__builtin_prefetch(data + s->hints_off + off);
			}
			continue;
		}
		/* A packet whose first message is a broadcast (a probe's
		 * messages come first, with no hint) carries broadcasts only:
		 * its delivery answers nothing, and sends nothing. */
		bool sends = e->kind != EV_PACKET || e->h == 0 ||
			     slot_hints(s, e->b)[0] == MEMBER_HINTS_NONE;
		if (n == STAGE1_AT) {
			member_core_prefetch(c, 1, sends);
			__builtin_prefetch(&s->nodes[e->node]); /* dispatch's checks */
			if (e->kind == EV_PACKET)
				member_core_prefetch_packet(c, s->nodes[e->a].gid,
							    slot_hints(s, e->b), e->h, 0);
			else if (e->kind == EV_TICK)
				member_core_prefetch_tick(c, ev_time(e), 0);
		} else if (n == PACKET1_AT) {
			if (e->kind == EV_PACKET)
				member_core_prefetch_packet(c, s->nodes[e->a].gid,
							    slot_hints(s, e->b), e->h, 1);
		} else if (n == STAGE2_AT) {
			member_core_prefetch(c, 2, sends);
			if (e->kind == EV_PACKET)
				member_core_prefetch_packet(c, s->nodes[e->a].gid,
							    slot_hints(s, e->b), e->h, 2);
			else if (e->kind == EV_TICK)
				member_core_prefetch_tick(c, ev_time(e), 1);
		}
	}
}

int sim_run_until(struct sim *s, uint64_t t_ms)
{
	assert(t_ms >= s->now);
	assert(t_ms <= TIME_MAX_MS);
	struct sim_ev ev;
	while (!s->heap_full && queue_next(s, t_ms, &ev)) {
		s->m.events++;
		prefetch_ahead(s);
		dispatch(s, &ev);
	}
	if (s->heap_full)
		return SHOAL_EFULL;
	s->now = t_ms;
	return 0;
}

/* --- layers above membership (sim_hooks) ------------------------------------ */

void sim_set_hooks(struct sim *s, const struct sim_hooks *h)
{
	assert(s);
	if (h)
		s->hooks = *h;
	else
		memset(&s->hooks, 0, sizeof(s->hooks));
}

int sim_send_datagram(struct sim *s, uint32_t from, uint32_t to, const uint8_t *data,
		      size_t len)
{
	assert(from < s->n);
	if (to >= s->n || to == from || len == 0 || len > s->slot_bytes)
		return SHOAL_EINVAL;
	return net_send(s, from, to, data, len, NULL, 0, EV_DATAGRAM);
}

void sim_schedule(struct sim *s, uint64_t at_ms, uint32_t node, uint32_t a, uint32_t b)
{
	assert(node < s->n);
	assert(at_ms >= s->now);
	heap_push(s, at_ms, EV_TIMER, node, a, b, 0, 0);
}

uint64_t sim_draw_latency(struct sim *s) { return draw_latency(s); }

bool sim_reachable(const struct sim *s, uint32_t a, uint32_t b)
{
	assert(a < s->n && b < s->n);
	return reachable(s, a, b);
}

bool sim_sees_alive(const struct sim *s, uint32_t o, uint32_t g)
{
	assert(o < s->n && g < s->n);
	return bit_get(s->seen + (size_t)o * s->words_per_row, g);
}

void sim_trace_mix(struct sim *s, uint64_t w) { hash_word(&s->trace_hash, w); }

/* --- nodes ---------------------------------------------------------------- */

#define SIM_NAME_FORMAT "n%u"

uint32_t sim_payload_bytes(uint32_t nodes)
{
	/* The certificate of the node with the longest name: no tags, one
	 * signature (a fleet's default threshold, 1 of 1). Every core gets
	 * what that certificate leaves, as an agent gets what its own does. */
	assert(nodes >= 1);
	struct admission_cert c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), SIM_NAME_FORMAT, nodes - 1);
	c.issued_ms = 1;
	c.expires_ms = 2;
	c.sigs_count = 1;
	uint8_t buf[SHOAL_CERT_BYTES_MAX];
	size_t len = 0;
	int rc = cert_encode(&c, buf, sizeof(buf), &len);
	assert(rc == 0 && len >= SHOAL_CERT_BYTES_MIN);
	(void)rc;
	return (uint32_t)SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(len);
}

static void make_identity(const struct sim *s, uint32_t idx, struct member_identity *id)
{
	memset(id, 0, sizeof(*id));
	memcpy(id->id, s->nodes[idx].id, SHOAL_NODE_ID_BYTES);
	snprintf(id->name, sizeof(id->name), SIM_NAME_FORMAT, idx);
	sim_node_addr(idx, &id->addr);
}

/* Brings node idx up with a new core at incarnation inc. */
static int node_up(struct sim *s, uint32_t idx, uint32_t inc)
{
	struct sim_node *nd = &s->nodes[idx];
	assert(!nd->up);
	struct member_identity ident;
	make_identity(s, idx, &ident);
	uint64_t core_seed = rng_next(&s->rng);
	struct member_core *c = member_core_new(&s->cfg.member, s->dir, &ident, inc,
						core_seed, s->now);
	if (!c)
		return SHOAL_ENOMEM;
	/* Every core will know every node: size its tables once rather than
	 * growing 10,000 tables by reallocation. */
	int rc = s->tables ? member_core_reserve_in(c, s->n, s->tables + (size_t)idx * s->table_bytes,
						    s->table_bytes)
			   : member_core_reserve(c, s->n);
	if (rc == 0)
		rc = member_core_share_outputs(c, s->outspace, s->outspace_bytes);
	uint32_t gid = member_core_self_gid(c);
	if (rc == 0)
		rc = gid_map(s, gid, idx);
	if (rc != 0) {
		member_core_free(c);
		return rc;
	}
	nd->core = c;
	s->hot[idx].core = c;
	nd->gid = gid;
	nd->up = 1;
	nd->started = 1;
	nd->epoch++;
	s->hot[idx].tick_at = NO_TICK;
	s->hot[idx].deadline = 0; /* unknown until its first drain: call the core */
	nd->up_since_ms = s->now;
	nd->life_inc = inc;
	nd->alive_seen = 0;
	memset(seen_row(s, idx), 0, s->words_per_row * sizeof(uint64_t));
	/* Observers that already see this node alive now count it; it itself
	 * sees nobody yet. */
	s->live++;
	s->deficit += (int64_t)s->live - 1;
	for (uint32_t o = 0; o < s->n; o++) {
		if (o == idx || !s->nodes[o].up)
			continue;
		if (bit_get(seen_row(s, o), idx))
			s->nodes[o].alive_seen++;
		else
			s->deficit++;
	}
	return 0;
}

static int join_through(struct sim *s, uint32_t idx, const uint32_t *seeds, size_t n)
{
	struct shoal_addr addrs[SHOAL_SEEDS_MAX];
	size_t k = 0;
	for (size_t i = 0; i < n && k < SHOAL_SEEDS_MAX; i++) {
		assert(seeds[i] < s->n);
		sim_node_addr(seeds[i], &addrs[k++]);
	}
	int rc = 0;
	if (k > 0)
		rc = member_core_join(s->nodes[idx].core, addrs, k, s->now);
	drain(s, idx, false);
	conv_update(s);
	return rc;
}

int sim_node_start(struct sim *s, uint32_t idx, const uint32_t *seeds, size_t n)
{
	assert(idx < s->n);
	if (s->nodes[idx].up)
		return SHOAL_ESTATE;
	int rc = node_up(s, idx, 0);
	if (rc != 0)
		return rc;
	return join_through(s, idx, seeds, n);
}

int sim_warm_start(struct sim *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->nodes[i].up)
			return SHOAL_ESTATE;
	/* Every core first, so the shared directory holds every identity. */
	for (uint32_t i = 0; i < s->n; i++) {
		int rc = node_up(s, i, 0);
		if (rc != 0)
			return rc;
	}
	uint32_t *gids = malloc((size_t)s->n * sizeof(*gids));
	if (!gids)
		return SHOAL_ENOMEM;
	for (uint32_t i = 0; i < s->n; i++) {
		struct sim_node *nd = &s->nodes[i];
		uint32_t k = 0;
		for (uint32_t j = 0; j < s->n; j++)
			if (j != i)
				gids[k++] = s->nodes[j].gid;
		/* Adding members quietly emits nothing, so one drain per node
		 * suffices (10^8 adds at 10,000 nodes). */
		int rc = member_core_add_alive(nd->core, gids, k, 0, s->now);
		if (rc != 0) {
			free(gids);
			return rc;
		}
		/* It sees every other node alive: seen_set for each, a row at
		 * a time (every node is up). */
		uint64_t *row = seen_row(s, i);
		for (size_t w = 0; w < s->words_per_row; w++)
			row[w] = UINT64_MAX;
		if (s->n % 64)
			row[s->words_per_row - 1] = (UINT64_C(1) << (s->n % 64)) - 1;
		bit_clear(row, i);
		nd->alive_seen += k;
		s->deficit -= k;
		drain(s, i, false);
	}
	free(gids);
	conv_update(s);
	return 0;
}

/* Adds a core's traffic and protocol counters to the run's totals (a
 * crashed core's when it is dropped, the live ones' at report time). */
static void add_core_counters(struct sim_metrics *m, const struct member_stats *st)
{
	m->packets_sent += st->packets_sent;
	m->packet_bytes_sent += st->packet_bytes_sent;
	m->suspects_raised += st->suspects_raised;
	m->refutations += st->refutations;
	m->refutations_direct += st->refutations_direct;
	m->suspects_told += st->suspects_told;
	m->stale_answers += st->stale_answers;
	m->suspicions_rechecked += st->suspicions_rechecked;
	m->stream_pings_sent += st->stream_pings_sent;
	m->probes_stream_only += st->probes_stream_only;
	m->deaths_declared += st->deaths_declared;
	m->outbox_dropped += st->outbox_dropped;
	m->broadcasts_dropped += st->broadcasts_dropped;
}

int sim_node_crash(struct sim *s, uint32_t idx)
{
	assert(idx < s->n);
	struct sim_node *nd = &s->nodes[idx];
	if (!nd->up)
		return SHOAL_ESTATE;
	if (s->crashes_len == s->crashes_cap) {
		size_t cap = s->crashes_cap ? s->crashes_cap * 2 : 64;
		struct crash_rec *p = realloc(s->crashes, cap * sizeof(*p));
		if (!p)
			return SHOAL_ENOMEM;
		s->crashes = p;
		s->crashes_cap = cap;
	}
	uint64_t *bits = calloc(s->words_per_row, sizeof(uint64_t));
	if (!bits)
		return SHOAL_ENOMEM;
	struct crash_rec *r = &s->crashes[s->crashes_len];
	*r = (struct crash_rec){.node = idx, .at_ms = s->now, .detected = bits};
	nd->open_crash = (uint32_t)s->crashes_len++;
	s->m.crashes++;

	/* Keep its traffic in the totals, then drop the core. */
	add_core_counters(&s->m, member_core_stats(nd->core));
	nd->last_inc = member_core_incarnation(nd->core);
	member_core_free(nd->core);
	nd->core = NULL;
	s->hot[idx].core = NULL;
	nd->up = 0;
	nd->epoch++;
	s->hot[idx].tick_at = NO_TICK;

	/* It no longer counts as an observer, nor as someone to be seen. */
	s->deficit -= (int64_t)(s->live - 1) - (int64_t)nd->alive_seen;
	s->live--;
	for (uint32_t o = 0; o < s->n; o++) {
		if (o == idx || !s->nodes[o].up)
			continue;
		if (bit_get(seen_row(s, o), idx))
			s->nodes[o].alive_seen--;
		else
			s->deficit--;
	}
	assert(s->deficit >= 0);
	conv_update(s);
	return 0;
}

int sim_node_restart(struct sim *s, uint32_t idx)
{
	assert(idx < s->n);
	struct sim_node *nd = &s->nodes[idx];
	if (nd->up || !nd->started)
		return SHOAL_ESTATE;
	if (nd->open_crash != NO_CRASH) {
		struct crash_rec *r = &s->crashes[nd->open_crash];
		if (s->now - r->at_ms >= s->cfg.detect_grace_ms)
			judge_crash(s, r);
		else
			r->judged = true; /* back too soon to judge */
		free(r->detected);
		r->detected = NULL;
		nd->open_crash = NO_CRASH;
	}
	uint32_t seed = UINT32_MAX;
	if (s->live > 0) {
		/* A random live node: sample, then fall back to a scan. */
		for (int tries = 0; tries < 64 && seed == UINT32_MAX; tries++) {
			uint32_t c = (uint32_t)rng_below(&s->rng, s->n);
			if (c != idx && s->nodes[c].up)
				seed = c;
		}
		for (uint32_t c = 0; c < s->n && seed == UINT32_MAX; c++)
			if (c != idx && s->nodes[c].up)
				seed = c;
	}
	int rc = node_up(s, idx, nd->last_inc + 1);
	if (rc != 0)
		return rc;
	s->m.restarts++;
	return join_through(s, idx, &seed, seed == UINT32_MAX ? 0 : 1);
}

void sim_partition(struct sim *s, const uint8_t *side)
{
	for (uint32_t i = 0; i < s->n; i++)
		s->nodes[i].side = side[i] ? 1 : 0;
	s->partitioned = true;
	s->had_partition = true;
}

void sim_heal(struct sim *s)
{
	assert(s->had_partition);
	s->partitioned = false;
	s->heal_at = s->now;
}

void sim_convergence_from_now(struct sim *s)
{
	s->conv_armed = true;
	s->conv_reached = false;
	conv_update(s);
}

/* --- lifecycle and results ------------------------------------------------ */

uint64_t sim_detect_grace_ms(const struct member_config *mc, uint32_t nodes)
{
	assert(mc->probe_interval_ms > 0);
	/* Lifeguard: max = max_mult * min */
	uint64_t max_ms = member_suspicion_min_ms(mc, nodes) *
			  (mc->suspicion_max_timeout_mult ? mc->suspicion_max_timeout_mult : 1);
	/* Slack: a few probe periods for the first suspicion (local health can
	 * slow probing) and gossip rounds for the DEAD to reach everyone. */
	return max_ms + 10u * mc->probe_interval_ms +
	       20u * mc->gossip_interval_ms;
}

#define HUGE_PAGE_BYTES (2u << 20)

/* Maps the region for the cores' tables; on failure the cores allocate
 * their own, which only costs speed. */
static void tables_map(struct sim *s)
{
	size_t per = (member_core_tables_bytes(s->n) + 63) & ~(size_t)63;
	size_t len = per * s->n + HUGE_PAGE_BYTES;
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return;
	uintptr_t base = ((uintptr_t)map + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
	(void)madvise((void *)base, per * s->n, MADV_HUGEPAGE); /* a hint: may be refused */
	s->tables_map = map;
	s->tables_map_len = len;
	s->tables = (uint8_t *)base;
	s->table_bytes = per;
}

struct sim *sim_new(const struct sim_config *cfg)
{
	if (cfg->nodes == 0 || cfg->nodes > SHOAL_SIM_NODES_MAX ||
	    cfg->nodes > SHOAL_MEMBERS_MAX || cfg->net.loss < 0 || cfg->net.loss > 1 ||
	    cfg->net.dup < 0 || cfg->net.dup > 1 || cfg->net.latency_jitter_ms < 0 ||
	    cfg->member.payload_bytes_max == 0 || cfg->member.payload_bytes_max > UINT16_MAX)
		return NULL;
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	/* Every core shares the directory: packets may name gids. */
	s->cfg.member.sim_gids = !cfg->wire_ids;
	s->n = cfg->nodes;
	rng_seed(&s->rng, cfg->seed);
	s->trace_hash = 0xcbf29ce484222325ull;
	s->slot_bytes = cfg->member.payload_bytes_max;
	s->hints_off = (s->slot_bytes + 3) & ~3u; /* 4-aligned */
	s->slot_stride = (s->hints_off + SIM_HINTS_MAX * sizeof(uint32_t) + 63) & ~63u;
	s->words_per_row = (s->n + 63) / 64;
	s->dir = member_dir_new();
	if (s->dir)
		member_dir_keep_spares(s->dir, (size_t)s->n * SIM_SPARE_BYTES_PER_NODE);
	size_t nodes_bytes = ((size_t)s->n * sizeof(*s->nodes) + 63) & ~(size_t)63;
	s->nodes = aligned_alloc(64, nodes_bytes);
	if (s->nodes)
		memset(s->nodes, 0, nodes_bytes);
	s->hot = calloc(s->n, sizeof(*s->hot));
	s->seen = calloc((size_t)s->n * s->words_per_row, sizeof(uint64_t));
	s->pair.gids = s->n;
	bool pair_ok = true;
	for (int k = 0; k < 2; k++) {
		s->pair.order[k] = malloc(s->n * sizeof(*s->pair.order[k]));
		s->pair.inc[k] = malloc(s->n * sizeof(*s->pair.inc[k]));
		s->pair.state[k] = malloc(s->n);
		s->pair.news[k] = malloc((s->n / 64 + 1) * sizeof(*s->pair.news[k]));
		pair_ok = pair_ok && s->pair.order[k] && s->pair.inc[k] && s->pair.state[k] &&
			  s->pair.news[k];
	}
	s->wheel = calloc(WHEEL_MS, sizeof(*s->wheel));
	s->outspace_bytes = member_core_shared_outputs_bytes(&cfg->member);
	s->outspace = aligned_alloc(64, s->outspace_bytes);
	if (!s->dir || !s->nodes || !s->hot || !s->seen || !pair_ok || !s->wheel ||
	    !s->outspace ||
	    member_dir_reserve(s->dir, s->n) != 0) {
		sim_free(s);
		return NULL;
	}
	tables_map(s);
	for (uint32_t i = 0; i < s->n; i++) {
		struct sim_node *nd = &s->nodes[i];
		s->hot[i].tick_at = NO_TICK;
		nd->open_crash = NO_CRASH;
		for (size_t k = 0; k < SHOAL_NODE_ID_BYTES; k += 8) {
			uint64_t x = rng_next(&s->rng);
			memcpy(nd->id + k, &x, 8);
		}
	}
	return s;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	if (s->nodes)
		for (uint32_t i = 0; i < s->n; i++)
			member_core_free(s->nodes[i].core);
	for (size_t i = 0; i < s->crashes_len; i++)
		free(s->crashes[i].detected);
	free(s->crashes);
	free(s->hist);
	free(s->heap);
	free(s->wheel);
	free(s->outspace);
	while (s->blocks) {
		struct ev_block *next = s->blocks->next;
		free(s->blocks);
		s->blocks = next;
	}
	free(s->slots);
	free(s->slot_free);
	free(s->seen);
	for (int k = 0; k < 2; k++) {
		free(s->pair.order[k]);
		free(s->pair.inc[k]);
		free(s->pair.state[k]);
		free(s->pair.news[k]);
	}
	free(s->gid_node);
	free(s->nodes);
	free(s->hot);
	if (s->tables_map)
		munmap(s->tables_map, s->tables_map_len);
	if (s->dir)
		member_dir_free(s->dir);
	free(s);
}

uint64_t sim_now(const struct sim *s) { return s->now; }
uint32_t sim_nodes(const struct sim *s) { return s->n; }
struct rng *sim_rng(struct sim *s) { return &s->rng; }
uint32_t sim_live_count(const struct sim *s) { return s->live; }

bool sim_node_up(const struct sim *s, uint32_t idx)
{
	assert(idx < s->n);
	return s->nodes[idx].up != 0;
}

const struct member_core *sim_core(const struct sim *s, uint32_t idx)
{
	assert(idx < s->n);
	return s->nodes[idx].core;
}

static uint64_t hist_quantile(const struct sim *s, double q)
{
	if (s->hist_count == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)s->hist_count);
	if (want == 0)
		want = 1;
	uint64_t cum = 0;
	for (size_t i = 0; i < s->hist_len; i++) {
		cum += s->hist[i];
		if (cum >= want)
			return i;
	}
	return s->hist_len - 1;
}

/* Counts (live o, live g) pairs where o sees g dead, left or not at all.
 * Only pairs whose seen bit is clear need a lookup: O(N^2 / 64) words. */
static uint64_t live_view_dead(const struct sim *s)
{
	uint64_t count = 0;
	for (uint32_t o = 0; o < s->n; o++) {
		const struct sim_node *on = &s->nodes[o];
		if (!on->up || on->alive_seen + 1 == s->live)
			continue;
		const uint64_t *row = s->seen + (size_t)o * s->words_per_row;
		for (uint32_t g = 0; g < s->n; g++) {
			if ((g & 63) == 0 && row[g >> 6] == UINT64_MAX) {
				g += 63;
				continue;
			}
			if (g == o || !s->nodes[g].up || bit_get(row, g))
				continue;
			if (!view_live(on->core, s->nodes[g].gid))
				count++;
		}
	}
	return count;
}

uint64_t sim_verify_views(const struct sim *s)
{
	uint64_t bad = 0;
	for (uint32_t o = 0; o < s->n; o++) {
		const struct sim_node *on = &s->nodes[o];
		if (!on->up)
			continue;
		const uint64_t *row = s->seen + (size_t)o * s->words_per_row;
		uint32_t counted = 0;
		for (uint32_t g = 0; g < s->n; g++) {
			if (g == o || !s->nodes[g].started)
				continue;
			struct member_info info;
			bool alive = member_core_lookup(on->core, s->nodes[g].gid, &info) == 0 &&
				     info.state == MEMBER_ALIVE;
			if (alive != bit_get(row, g))
				bad++;
			if (alive && s->nodes[g].up)
				counted++;
		}
		if (counted != on->alive_seen)
			bad++;
	}
	int64_t deficit = 0;
	for (uint32_t o = 0; o < s->n; o++)
		if (s->nodes[o].up)
			deficit += (int64_t)s->live - 1 - (int64_t)s->nodes[o].alive_seen;
	if (deficit != s->deficit)
		bad++;
	return bad;
}

void sim_metrics(struct sim *s, struct sim_metrics *m)
{
	/* Judge the crashes old enough; the rest are pending. Judging is final. */
	uint64_t pending = 0;
	for (size_t i = 0; i < s->crashes_len; i++) {
		struct crash_rec *r = &s->crashes[i];
		if (r->judged)
			continue;
		if (s->now - r->at_ms >= s->cfg.detect_grace_ms)
			judge_crash(s, r);
		else
			pending++;
	}
	*m = s->m;
	m->crashes_pending = pending;
	m->now_ms = s->now;
	m->trace_hash = s->trace_hash;
	m->live_nodes = s->live;
	m->converged = s->conv_reached;
	m->converged_at_ms = s->conv_at;
	m->converged_now = s->deficit == 0;
	m->live_view_dead = live_view_dead(s);
	m->detection_p50_ms = hist_quantile(s, 0.50);
	m->detection_p99_ms = hist_quantile(s, 0.99);
	for (uint32_t i = 0; i < s->n; i++) {
		if (!s->nodes[i].up)
			continue;
		add_core_counters(m, member_core_stats(s->nodes[i].core));
	}
}
