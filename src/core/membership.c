/*
 * membership.c — SWIM + Lifeguard membership as a sans-IO state machine.
 *
 * See membership.h for the protocol outline. Semantics follow
 * hashicorp/memberlist (state.go) so that behaviour and timings can be
 * compared with Serf:
 *
 *   alive(inc)   accepted if inc > known, or if the subject is unknown;
 *                about ourselves: refute unless identical
 *   suspect(inc) accepted if inc >= known and the member is alive; starts a
 *                Lifeguard suspicion timer; further suspects from distinct
 *                members are confirmations that shorten it
 *   dead(inc)    accepted if inc >= known and not already dead/left;
 *                about ourselves: refute (unless we are leaving)
 *
 * Member storage is an array in probe order (shuffled each round, new
 * members inserted at a random position), a small open-addressing index from
 * gid to array slot, a bucketed broadcast queue ordered by transmit count,
 * and a lazy min-heap of suspicion deadlines. Everything is deterministic
 * given the seed.
 */
#include "core/membership.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "shoal/error.h"
#include "shoal/rng.h"

#define NONE16 0xffffu
#define NONE32 UINT32_MAX
#define TIME_NEVER UINT64_MAX
#define CONFIRMERS_MAX 8 /* distinct confirmations kept per suspicion */

/* --- identity directory ---------------------------------------------------- */

struct member_dir {
	struct member_identity *idents;
	size_t count, cap;
	uint32_t *index; /* open addressing, gid or NONE32 */
	size_t index_cap;
};

static uint64_t id_hash(const uint8_t id[SHOAL_NODE_ID_BYTES])
{
	/* FNV-1a over the id; ids are public keys, and the table is bounded. */
	uint64_t h = 0xcbf29ce484222325ull;
	for (int i = 0; i < SHOAL_NODE_ID_BYTES; i++) {
		h ^= id[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

struct member_dir *member_dir_new(void)
{
	return calloc(1, sizeof(struct member_dir));
}

void member_dir_free(struct member_dir *d)
{
	if (!d)
		return;
	free(d->idents);
	free(d->index);
	free(d);
}

static int dir_grow_index(struct member_dir *d)
{
	size_t cap = d->index_cap ? d->index_cap * 2 : 64;
	uint32_t *idx = malloc(cap * sizeof(*idx));
	if (!idx)
		return SHOAL_ENOMEM;
	memset(idx, 0xff, cap * sizeof(*idx));
	for (size_t g = 0; g < d->count; g++) {
		size_t s = id_hash(d->idents[g].id) & (cap - 1);
		while (idx[s] != NONE32)
			s = (s + 1) & (cap - 1);
		idx[s] = (uint32_t)g;
	}
	free(d->index);
	d->index = idx;
	d->index_cap = cap;
	return 0;
}

uint32_t member_dir_find(const struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES])
{
	if (!d->index_cap)
		return NONE32;
	size_t s = id_hash(id) & (d->index_cap - 1);
	while (d->index[s] != NONE32) {
		if (memcmp(d->idents[d->index[s]].id, id, SHOAL_NODE_ID_BYTES) == 0)
			return d->index[s];
		s = (s + 1) & (d->index_cap - 1);
	}
	return NONE32;
}

uint32_t member_dir_intern(struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES])
{
	uint32_t g = member_dir_find(d, id);
	if (g != NONE32)
		return g;
	if (d->count >= SHOAL_SIM_NODES_MAX + SHOAL_MEMBERS_MAX)
		return NONE32;
	if ((d->count + 1) * 2 > d->index_cap && dir_grow_index(d))
		return NONE32;
	if (d->count == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct member_identity *n = realloc(d->idents, cap * sizeof(*n));
		if (!n)
			return NONE32;
		d->idents = n;
		d->cap = cap;
	}
	g = (uint32_t)d->count++;
	memset(&d->idents[g], 0, sizeof(d->idents[g]));
	memcpy(d->idents[g].id, id, SHOAL_NODE_ID_BYTES);
	size_t s = id_hash(id) & (d->index_cap - 1);
	while (d->index[s] != NONE32)
		s = (s + 1) & (d->index_cap - 1);
	d->index[s] = g;
	return g;
}

const struct member_identity *member_dir_get(const struct member_dir *d, uint32_t gid)
{
	return gid < d->count ? &d->idents[gid] : NULL;
}

size_t member_dir_count(const struct member_dir *d) { return d->count; }

/* --- names ------------------------------------------------------------------- */

const char *member_state_name(enum member_state s)
{
	switch (s) {
	case MEMBER_ALIVE: return "alive";
	case MEMBER_SUSPECT: return "suspect";
	case MEMBER_DEAD: return "dead";
	case MEMBER_LEFT: return "left";
	}
	return "unknown";
}

const char *member_event_name(enum member_event_kind k)
{
	switch (k) {
	case MEMBER_EV_JOIN: return "member_join";
	case MEMBER_EV_ALIVE: return "member_alive";
	case MEMBER_EV_SUSPECT: return "member_suspect";
	case MEMBER_EV_DEAD: return "member_dead";
	case MEMBER_EV_LEFT: return "member_left";
	case MEMBER_EV_UPDATE: return "member_update";
	}
	return "member_unknown";
}

void member_config_default(struct member_config *c)
{
	c->probe_interval_ms = 1000;
	c->probe_timeout_ms = 500;
	c->indirect_checks = 3;
	c->suspicion_mult = 4;
	c->suspicion_max_timeout_mult = 6;
	c->awareness_max_multiplier = 8;
	c->gossip_interval_ms = 200;
	c->gossip_nodes = 3;
	c->gossip_to_the_dead_ms = 30000;
	c->retransmit_mult = 4;
	c->push_pull_interval_ms = 30000;
	c->dead_reclaim_ms = 0;
	c->reconnect_interval_ms = 30000;
	c->payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_MAX;
}

/* --- per-core state -------------------------------------------------------- */

struct member {
	uint64_t state_change_ms;
	uint32_t gid;
	uint32_t incarnation;
	uint16_t bcast; /* broadcast slot or NONE16 */
	uint16_t susp;  /* suspicion slot or NONE16 */
	uint8_t state;
};

struct suspicion {
	uint32_t gid;
	uint32_t k;           /* confirmations expected */
	uint32_t n;           /* confirmations received */
	uint64_t start_ms;
	uint64_t min_ms, max_ms;
	uint64_t deadline_ms;
	uint32_t confirmers[CONFIRMERS_MAX + 1]; /* [0] is the first suspector */
	uint16_t next_free;
	bool used;
};

struct susp_heap_item {
	uint64_t deadline_ms;
	uint16_t slot;
};

enum bcast_kind { BC_ALIVE = WIRE_ALIVE, BC_SUSPECT = WIRE_SUSPECT, BC_DEAD = WIRE_DEAD };

struct bcast {
	uint32_t gid;
	uint32_t incarnation;
	uint32_t from_gid;
	uint16_t prev, next; /* doubly linked within its transmit bucket */
	uint8_t kind;
	uint8_t transmits;
	bool used;
};

enum probe_stage { PROBE_IDLE, PROBE_DIRECT, PROBE_INDIRECT };

/* An indirect probe we relay. Lifeguard: the NACK goes out at 80% of the
 * probe timeout, so that it reaches the prober before its own deadline
 * (which is one probe timeout after it sent PING_REQ); a late ACK is still
 * relayed until the full timeout. */
#define NACK_PERCENT 80

struct relay {
	uint64_t nack_ms;
	uint64_t deadline_ms;
	bool nacked;
	uint32_t local_seq, orig_seq;
	uint32_t requester_gid;
	struct shoal_addr requester;
	bool want_nack;
};

struct out_item {
	enum member_out_kind kind;
	struct shoal_addr to;
	uint32_t to_gid;
	bool join;
	size_t off, len;
	struct member_event ev;
};

#define BUCKETS_MAX 256

struct member_core {
	struct member_config cfg;
	struct member_dir *dir;
	struct rng rng;
	uint32_t self_gid;
	uint32_t self_slot_gid; /* == self_gid; kept for clarity in asserts */
	uint32_t incarnation;
	bool leaving;
	int health; /* Lifeguard local health score */

	struct member *members;
	size_t count, cap;
	uint16_t *index; /* gid hash -> member slot, NONE16 empty */
	size_t index_cap;
	size_t probe_pos;

	struct suspicion *susp;
	size_t susp_cap;
	uint16_t susp_free;
	size_t susp_active;
	struct susp_heap_item *sheap;
	size_t sheap_len, sheap_cap;

	struct bcast *bc;
	size_t bc_cap;
	uint16_t bc_free;
	size_t bc_count;
	uint16_t bucket_head[BUCKETS_MAX];

	/* the probe in flight */
	enum probe_stage stage;
	uint32_t probe_gid;
	uint32_t probe_seq;
	uint64_t probe_indirect_ms, probe_end_ms;
	bool probe_acked;
	uint32_t nacks_expected, nacks_got;
	uint32_t seq;

	struct relay relays[SHOAL_PENDING_PROBES_MAX];
	size_t relays_count;

	uint64_t next_probe_ms, next_gossip_ms, next_pushpull_ms, next_reconnect_ms;
	uint64_t gossip_origin_ms; /* gossip ticks fall on origin + k * interval */

	struct out_item *outq;
	size_t outq_len, outq_head, outq_cap;
	uint8_t *arena;
	size_t arena_len, arena_cap;

	struct member_stats stats;
};

/* --- member table -------------------------------------------------------------- */

static size_t slot_hash(uint32_t gid, size_t cap)
{
	return (size_t)((gid * 2654435761u) & (cap - 1));
}

static void index_rebuild(struct member_core *c)
{
	memset(c->index, 0xff, c->index_cap * sizeof(*c->index));
	for (size_t i = 0; i < c->count; i++) {
		size_t s = slot_hash(c->members[i].gid, c->index_cap);
		while (c->index[s] != NONE16)
			s = (s + 1) & (c->index_cap - 1);
		c->index[s] = (uint16_t)i;
	}
}

static struct member *find(const struct member_core *c, uint32_t gid)
{
	if (gid == NONE32)
		return NULL;
	size_t s = slot_hash(gid, c->index_cap);
	while (c->index[s] != NONE16) {
		struct member *m = &c->members[c->index[s]];
		if (m->gid == gid)
			return m;
		s = (s + 1) & (c->index_cap - 1);
	}
	return NULL;
}

/* Position in the index of member gid's entry; the member must be indexed. */
static size_t index_pos(const struct member_core *c, uint32_t gid)
{
	size_t s = slot_hash(gid, c->index_cap);
	while (c->members[c->index[s]].gid != gid) {
		s = (s + 1) & (c->index_cap - 1);
		assert(c->index[s] != NONE16);
	}
	return s;
}

/* Inserts a new entry for a member not yet indexed. */
static void index_insert(struct member_core *c, uint32_t gid, size_t slot)
{
	size_t s = slot_hash(gid, c->index_cap);
	while (c->index[s] != NONE16)
		s = (s + 1) & (c->index_cap - 1);
	c->index[s] = (uint16_t)slot;
}

/* Adds a member at a random position of the probe order (as memberlist
 * does, so a new member is probed soon but not predictably). */
static struct member *member_add(struct member_core *c, uint32_t gid,
				 uint32_t incarnation, uint8_t state, uint64_t now)
{
	assert(find(c, gid) == NULL);
	if (c->count >= SHOAL_MEMBERS_MAX)
		return NULL;
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap + c->cap / 2 + 8 : 16;
		if (cap > SHOAL_MEMBERS_MAX)
			cap = SHOAL_MEMBERS_MAX;
		struct member *n = realloc(c->members, cap * sizeof(*n));
		if (!n)
			return NULL;
		c->members = n;
		c->cap = cap;
	}
	if ((c->count + 1) * 5 > c->index_cap * 4) {
		size_t cap = c->index_cap * 2;
		uint16_t *idx = malloc(cap * sizeof(*idx));
		if (!idx)
			return NULL;
		free(c->index);
		c->index = idx;
		c->index_cap = cap;
		index_rebuild(c);
	}
	size_t at = c->count++;
	struct member *m = &c->members[at];
	memset(m, 0, sizeof(*m));
	m->gid = gid;
	m->incarnation = incarnation;
	m->state = state;
	m->state_change_ms = now;
	m->bcast = NONE16;
	m->susp = NONE16;
	/* swap into a random slot */
	size_t r = (size_t)rng_below(&c->rng, c->count);
	if (r != at) {
		size_t moved = index_pos(c, c->members[r].gid);
		struct member tmp = c->members[r];
		c->members[r] = *m;
		c->members[at] = tmp;
		c->index[moved] = (uint16_t)at;
	}
	index_insert(c, gid, r);
	return &c->members[r];
}

static void shuffle_members(struct member_core *c)
{
	for (size_t i = c->count; i > 1; i--) {
		size_t j = (size_t)rng_below(&c->rng, i);
		struct member tmp = c->members[i - 1];
		c->members[i - 1] = c->members[j];
		c->members[j] = tmp;
	}
	index_rebuild(c);
}

static size_t count_in_state(const struct member_core *c, bool live_only)
{
	size_t n = 0;
	for (size_t i = 0; i < c->count; i++) {
		uint8_t s = c->members[i].state;
		if (!live_only || s == MEMBER_ALIVE || s == MEMBER_SUSPECT)
			n++;
	}
	return n;
}

/* --- output queue ----------------------------------------------------------- */

static struct out_item *out_push(struct member_core *c, enum member_out_kind kind)
{
	if (c->outq_len - c->outq_head >= SHOAL_OUTBOX_COUNT_MAX) {
		c->stats.outbox_dropped++;
		return NULL;
	}
	if (c->outq_len == c->outq_cap) {
		size_t cap = c->outq_cap ? c->outq_cap * 2 : 16;
		struct out_item *n = realloc(c->outq, cap * sizeof(*n));
		if (!n) {
			c->stats.outbox_dropped++;
			return NULL;
		}
		c->outq = n;
		c->outq_cap = cap;
	}
	struct out_item *o = &c->outq[c->outq_len++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->to_gid = NONE32;
	return o;
}

/* Called on entry to every input: drops outputs already polled. */
static void out_compact(struct member_core *c)
{
	if (c->outq_head == c->outq_len) {
		c->outq_head = c->outq_len = 0;
		c->arena_len = 0;
	}
}

static uint8_t *arena_alloc(struct member_core *c, size_t n, size_t *off)
{
	if (c->arena_cap - c->arena_len < n) {
		size_t cap = c->arena_cap ? c->arena_cap * 2 : 4096;
		while (cap - c->arena_len < n)
			cap *= 2;
		uint8_t *a = realloc(c->arena, cap);
		if (!a)
			return NULL;
		c->arena = a;
		c->arena_cap = cap;
	}
	*off = c->arena_len;
	c->arena_len += n;
	return c->arena + *off;
}

static void emit_event(struct member_core *c, enum member_event_kind kind,
		       const struct member *m, uint8_t prev)
{
	struct out_item *o = out_push(c, MEMBER_OUT_EVENT);
	if (!o)
		return;
	o->ev.kind = kind;
	o->ev.gid = m->gid;
	o->ev.incarnation = m->incarnation;
	o->ev.prev_state = (enum member_state)prev;
}

/* --- broadcasts (memberlist's TransmitLimitedQueue) ------------------------ */

static uint32_t retransmit_limit(const struct member_core *c)
{
	/* retransmit_mult * ceil(log10(n + 1)) */
	size_t n = c->count + 1;
	uint32_t digits = 0;
	while (n > 0) {
		digits++;
		n /= 10;
	}
	uint32_t limit = c->cfg.retransmit_mult * digits;
	return limit < BUCKETS_MAX - 1 ? limit : BUCKETS_MAX - 1;
}

static void bucket_unlink(struct member_core *c, uint16_t i)
{
	struct bcast *b = &c->bc[i];
	if (b->prev != NONE16)
		c->bc[b->prev].next = b->next;
	else
		c->bucket_head[b->transmits] = b->next;
	if (b->next != NONE16)
		c->bc[b->next].prev = b->prev;
	b->prev = b->next = NONE16;
}

static void bucket_push(struct member_core *c, uint16_t i)
{
	struct bcast *b = &c->bc[i];
	b->prev = NONE16;
	b->next = c->bucket_head[b->transmits];
	if (b->next != NONE16)
		c->bc[b->next].prev = i;
	c->bucket_head[b->transmits] = i;
}

static void bcast_release(struct member_core *c, uint16_t i)
{
	struct bcast *b = &c->bc[i];
	assert(b->used);
	bucket_unlink(c, i);
	struct member *m = find(c, b->gid);
	if (m && m->bcast == i)
		m->bcast = NONE16;
	b->used = false;
	b->next = c->bc_free;
	c->bc_free = i;
	c->bc_count--;
}

/* Queues a broadcast about m, replacing any older one about the same member. */
static void broadcast(struct member_core *c, struct member *m, uint8_t kind,
		      uint32_t incarnation, uint32_t from_gid, uint64_t now)
{
	if (m->bcast != NONE16)
		bcast_release(c, m->bcast);
	if (c->bc_free == NONE16) {
		size_t cap = c->bc_cap ? c->bc_cap * 2 : 32;
		if (cap > SHOAL_BROADCASTS_MAX)
			cap = SHOAL_BROADCASTS_MAX;
		if (cap <= c->bc_cap) {
			c->stats.broadcasts_dropped++;
			return;
		}
		struct bcast *n = realloc(c->bc, cap * sizeof(*n));
		if (!n) {
			c->stats.broadcasts_dropped++;
			return;
		}
		c->bc = n;
		for (size_t i = cap; i > c->bc_cap; i--) {
			c->bc[i - 1].used = false;
			c->bc[i - 1].next = c->bc_free;
			c->bc_free = (uint16_t)(i - 1);
		}
		c->bc_cap = cap;
	}
	uint16_t i = c->bc_free;
	struct bcast *b = &c->bc[i];
	c->bc_free = b->next;
	memset(b, 0, sizeof(*b));
	b->gid = m->gid;
	b->incarnation = incarnation;
	b->from_gid = from_gid;
	b->kind = kind;
	b->used = true;
	bucket_push(c, i);
	m->bcast = i;
	c->bc_count++;
	if (c->next_gossip_ms == TIME_NEVER) {
		/* Keep a free-running phase, as memberlist's ticker does: a new
		 * broadcast waits half an interval on average, not a whole one. */
		uint64_t iv = c->cfg.gossip_interval_ms;
		c->next_gossip_ms = now + iv - (now - c->gossip_origin_ms) % iv;
	}
}

static void fill_node_msg(const struct member_core *c, uint32_t gid, struct wire_msg *w)
{
	const struct member_identity *id = member_dir_get(c->dir, gid);
	assert(id);
	memcpy(w->id, id->id, SHOAL_NODE_ID_BYTES);
	w->addr = id->addr;
	memcpy(w->name, id->name, sizeof(w->name));
	w->tags_count = id->tags_count;
	memcpy(w->tags, id->tags, sizeof(w->tags));
}

static void bcast_to_msg(const struct member_core *c, const struct bcast *b,
			 struct wire_msg *w)
{
	memset(w, 0, sizeof(*w));
	w->type = b->kind;
	w->incarnation = b->incarnation;
	if (b->kind == BC_ALIVE) {
		fill_node_msg(c, b->gid, w);
	} else {
		memcpy(w->id, member_dir_get(c->dir, b->gid)->id, SHOAL_NODE_ID_BYTES);
		memcpy(w->from_id, member_dir_get(c->dir, b->from_gid)->id,
		       SHOAL_NODE_ID_BYTES);
	}
}

/* Appends queued broadcasts that fit into w, fewest transmits first and
 * newest first within a count; returns how many were added. */
static unsigned add_broadcasts(struct member_core *c, struct wr *w, unsigned room_msgs)
{
	uint32_t limit = retransmit_limit(c);
	unsigned added = 0;
	uint16_t moved[SHOAL_MSGS_PER_PACKET_MAX];
	unsigned moved_n = 0, misfits = 0;
	enum { MISFITS_MAX = 8 };
	for (uint32_t t = 0; t < limit && added < room_msgs; t++) {
		uint16_t i = c->bucket_head[t];
		while (i != NONE16 && added < room_msgs) {
			uint16_t next = c->bc[i].next;
			struct wire_msg m;
			bcast_to_msg(c, &c->bc[i], &m);
			if (w->len + wire_msg_size(&m) <= w->cap) {
				wire_put_msg(w, &m);
				added++;
				moved[moved_n++] = i;
			} else if (++misfits >= MISFITS_MAX || w->cap - w->len < 3 + 4 + 32) {
				/* The packet is as good as full: stop walking the queue
				 * (it may hold thousands of broadcasts). */
				goto done;
			}
			i = next;
		}
	}
done:
	/* Bump transmit counts after the walk so an item is sent once per packet. */
	for (unsigned k = 0; k < moved_n; k++) {
		uint16_t i = moved[k];
		bucket_unlink(c, i);
		c->bc[i].transmits++;
		if (c->bc[i].transmits >= limit) {
			c->bc[i].transmits--; /* unlinked from this bucket already */
			bucket_push(c, i);
			bcast_release(c, i);
		} else {
			bucket_push(c, i);
		}
	}
	return added;
}

/* --- sending --------------------------------------------------------------- */

/* Sends msgs (n of them) to `to`, filling the rest of the payload with
 * piggybacked broadcasts. */
static void send_msgs(struct member_core *c, const struct shoal_addr *to,
		      uint32_t to_gid, const struct wire_msg *msgs, unsigned n)
{
	size_t off;
	uint8_t *buf = arena_alloc(c, c->cfg.payload_bytes_max, &off);
	if (!buf) {
		c->stats.outbox_dropped++;
		return;
	}
	struct wr w = wr_init(buf, c->cfg.payload_bytes_max);
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 0); /* count, patched below */
	for (unsigned i = 0; i < n; i++)
		wire_put_msg(&w, &msgs[i]);
	assert(wr_ok(&w));
	unsigned total = n + add_broadcasts(c, &w, SHOAL_MSGS_PER_PACKET_MAX - n);
	if (total == 0) {
		c->arena_len = off; /* nothing to send; give the space back */
		return;
	}
	buf[1] = (uint8_t)total;
	/* Shrink the arena reservation to what was written. */
	c->arena_len = off + w.len;
	struct out_item *o = out_push(c, MEMBER_OUT_PACKET);
	if (!o)
		return;
	o->to = *to;
	o->to_gid = to_gid;
	o->off = off;
	o->len = w.len;
	c->stats.packets_sent++;
	c->stats.packet_bytes_sent += w.len;
}

static void send_one(struct member_core *c, uint32_t to_gid, const struct shoal_addr *to,
		     const struct wire_msg *m)
{
	send_msgs(c, to, to_gid, m, 1);
}

static const struct shoal_addr *addr_of(const struct member_core *c, uint32_t gid)
{
	return &member_dir_get(c->dir, gid)->addr;
}

/* --- Lifeguard local health ---------------------------------------------------- */

static void health_apply(struct member_core *c, int delta)
{
	int h = c->health + delta;
	int max = (int)c->cfg.awareness_max_multiplier - 1;
	if (h < 0)
		h = 0;
	if (h > max)
		h = max;
	c->health = h;
}

static uint64_t health_scale(const struct member_core *c, uint64_t t)
{
	return t * (uint64_t)(c->health + 1);
}

/* --- suspicion (Lifeguard dynamic timeouts) ---------------------------------- */

static void sheap_push(struct member_core *c, uint64_t deadline, uint16_t slot)
{
	if (c->sheap_len == c->sheap_cap) {
		size_t cap = c->sheap_cap ? c->sheap_cap * 2 : 16;
		struct susp_heap_item *n = realloc(c->sheap, cap * sizeof(*n));
		if (!n)
			abort(); /* cannot keep the timer: stop rather than lose it */
		c->sheap = n;
		c->sheap_cap = cap;
	}
	size_t i = c->sheap_len++;
	c->sheap[i].deadline_ms = deadline;
	c->sheap[i].slot = slot;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (c->sheap[p].deadline_ms <= c->sheap[i].deadline_ms)
			break;
		struct susp_heap_item t = c->sheap[p];
		c->sheap[p] = c->sheap[i];
		c->sheap[i] = t;
		i = p;
	}
}

static void sheap_pop(struct member_core *c)
{
	assert(c->sheap_len > 0);
	c->sheap[0] = c->sheap[--c->sheap_len];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->sheap_len && c->sheap[l].deadline_ms < c->sheap[m].deadline_ms)
			m = l;
		if (r < c->sheap_len && c->sheap[r].deadline_ms < c->sheap[m].deadline_ms)
			m = r;
		if (m == i)
			break;
		struct susp_heap_item t = c->sheap[m];
		c->sheap[m] = c->sheap[i];
		c->sheap[i] = t;
		i = m;
	}
}

/* A heap entry is current if its slot is in use with the same deadline. */
static bool sheap_top_current(const struct member_core *c)
{
	const struct susp_heap_item *t = &c->sheap[0];
	const struct suspicion *s = &c->susp[t->slot];
	return s->used && s->deadline_ms == t->deadline_ms;
}

static uint64_t suspicion_timeout(const struct suspicion *s)
{
	/* Lifeguard: timeout = max - (max - min) * log(n + 1) / log(k + 1) */
	if (s->k < 1)
		return s->min_ms;
	double frac = log((double)s->n + 1.0) / log((double)s->k + 1.0);
	double raw = (double)s->max_ms - frac * (double)(s->max_ms - s->min_ms);
	uint64_t t = (uint64_t)floor(raw);
	return t < s->min_ms ? s->min_ms : t;
}

static void suspicion_start(struct member_core *c, struct member *m,
			    uint32_t from_gid, uint64_t now)
{
	assert(m->susp == NONE16);
	if (c->susp_free == NONE16) {
		size_t cap = c->susp_cap ? c->susp_cap * 2 : 8;
		if (cap > SHOAL_SUSPICIONS_MAX)
			cap = SHOAL_SUSPICIONS_MAX;
		if (cap <= c->susp_cap)
			return; /* full: the member stays suspect until refuted or reported dead */
		struct suspicion *n = realloc(c->susp, cap * sizeof(*n));
		if (!n)
			return;
		c->susp = n;
		for (size_t i = cap; i > c->susp_cap; i--) {
			c->susp[i - 1].used = false;
			c->susp[i - 1].next_free = c->susp_free;
			c->susp_free = (uint16_t)(i - 1);
		}
		c->susp_cap = cap;
	}
	uint16_t slot = c->susp_free;
	struct suspicion *s = &c->susp[slot];
	c->susp_free = s->next_free;
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->gid = m->gid;
	s->confirmers[0] = from_gid;
	s->start_ms = now;

	size_t n = c->count;
	uint32_t k = c->cfg.suspicion_mult >= 2 ? c->cfg.suspicion_mult - 2 : 0;
	if (n < 2 || n - 2 < k)
		k = 0;
	if (k > CONFIRMERS_MAX)
		k = CONFIRMERS_MAX;
	double scale = log10((double)(n > 1 ? n : 1));
	if (scale < 1.0)
		scale = 1.0;
	s->k = k;
	s->min_ms = (uint64_t)(c->cfg.suspicion_mult * scale * c->cfg.probe_interval_ms);
	s->max_ms = (uint64_t)c->cfg.suspicion_max_timeout_mult * s->min_ms;
	s->deadline_ms = now + suspicion_timeout(s);
	m->susp = slot;
	c->susp_active++;
	sheap_push(c, s->deadline_ms, slot);
}

/* Returns true if from_gid is a new independent confirmation. */
static bool suspicion_confirm(struct member_core *c, struct member *m, uint32_t from_gid)
{
	struct suspicion *s = &c->susp[m->susp];
	assert(s->used && s->gid == m->gid);
	if (s->n >= s->k)
		return false;
	for (uint32_t i = 0; i <= s->n; i++)
		if (s->confirmers[i] == from_gid)
			return false;
	s->n++;
	s->confirmers[s->n] = from_gid;
	uint64_t deadline = s->start_ms + suspicion_timeout(s);
	if (deadline < s->deadline_ms) {
		s->deadline_ms = deadline;
		sheap_push(c, deadline, m->susp);
	}
	return true;
}

static void suspicion_cancel(struct member_core *c, struct member *m)
{
	if (m->susp == NONE16)
		return;
	struct suspicion *s = &c->susp[m->susp];
	assert(s->used);
	s->used = false;
	s->next_free = c->susp_free;
	c->susp_free = m->susp;
	m->susp = NONE16;
	c->susp_active--;
}

/* --- state transitions ----------------------------------------------------- */

static bool identity_differs(const struct member_identity *a, const struct wire_msg *w)
{
	if (!addr_equal(&a->addr, &w->addr) || strcmp(a->name, w->name) != 0 ||
	    a->tags_count != w->tags_count)
		return true;
	for (uint8_t i = 0; i < a->tags_count; i++)
		if (strcmp(a->tags[i], w->tags[i]) != 0)
			return true;
	return false;
}

static void identity_store(struct member_core *c, uint32_t gid, const struct wire_msg *w)
{
	struct member_identity *id = (struct member_identity *)member_dir_get(c->dir, gid);
	id->addr = w->addr;
	memcpy(id->name, w->name, sizeof(id->name));
	id->tags_count = w->tags_count;
	memcpy(id->tags, w->tags, sizeof(id->tags));
}

static void refute(struct member_core *c, uint32_t accused_inc, uint64_t now)
{
	uint32_t inc = c->incarnation + 1;
	if (accused_inc >= inc)
		inc = accused_inc + 1;
	c->incarnation = inc;
	struct member *self = find(c, c->self_gid);
	assert(self);
	self->incarnation = inc;
	health_apply(c, 1);
	c->stats.refutations++;
	broadcast(c, self, BC_ALIVE, inc, c->self_gid, now);
}

static void on_alive(struct member_core *c, const struct wire_msg *a, uint64_t now)
{
	uint32_t gid = member_dir_intern(c->dir, a->id);
	if (gid == NONE32) {
		c->stats.msgs_ignored++;
		return;
	}
	struct member *m = find(c, gid);
	if (gid == c->self_gid) {
		if (c->leaving)
			return;
		const struct member_identity *me = member_dir_get(c->dir, gid);
		if (a->incarnation < c->incarnation ||
		    (a->incarnation == c->incarnation && !identity_differs(me, a)))
			return;
		refute(c, a->incarnation, now);
		return;
	}
	if (!m) {
		identity_store(c, gid, a);
		m = member_add(c, gid, a->incarnation, MEMBER_ALIVE, now);
		if (!m) {
			c->stats.msgs_ignored++;
			return;
		}
		broadcast(c, m, BC_ALIVE, a->incarnation, gid, now);
		emit_event(c, MEMBER_EV_JOIN, m, MEMBER_ALIVE);
		return;
	}
	const struct member_identity *id = member_dir_get(c->dir, gid);
	bool changed = identity_differs(id, a);
	bool revives_at_new_addr = changed && (m->state == MEMBER_DEAD || m->state == MEMBER_LEFT);
	if (a->incarnation <= m->incarnation && !revives_at_new_addr) {
		c->stats.msgs_ignored++;
		return;
	}
	suspicion_cancel(c, m);
	broadcast(c, m, BC_ALIVE, a->incarnation, gid, now);
	uint8_t prev = m->state;
	m->incarnation = a->incarnation;
	if (changed) {
		identity_store(c, gid, a);
		emit_event(c, MEMBER_EV_UPDATE, m, prev);
	}
	if (m->state != MEMBER_ALIVE) {
		m->state = MEMBER_ALIVE;
		m->state_change_ms = now;
		emit_event(c, MEMBER_EV_ALIVE, m, prev);
	}
}

static void on_suspect(struct member_core *c, uint32_t gid, uint32_t inc,
		       uint32_t from_gid, uint64_t now)
{
	struct member *m = find(c, gid);
	if (!m || inc < m->incarnation) {
		c->stats.msgs_ignored++;
		return;
	}
	if (m->susp != NONE16) {
		if (suspicion_confirm(c, m, from_gid))
			broadcast(c, m, BC_SUSPECT, inc, from_gid, now);
		return;
	}
	if (m->state != MEMBER_ALIVE) {
		c->stats.msgs_ignored++;
		return;
	}
	if (gid == c->self_gid) {
		if (!c->leaving)
			refute(c, inc, now);
		return;
	}
	broadcast(c, m, BC_SUSPECT, inc, from_gid, now);
	uint8_t prev = m->state;
	m->incarnation = inc;
	m->state = MEMBER_SUSPECT;
	m->state_change_ms = now;
	emit_event(c, MEMBER_EV_SUSPECT, m, prev);
	suspicion_start(c, m, from_gid, now);
}

static void on_dead(struct member_core *c, uint32_t gid, uint32_t inc,
		    uint32_t from_gid, uint64_t now)
{
	struct member *m = find(c, gid);
	if (!m || inc < m->incarnation) {
		c->stats.msgs_ignored++;
		return;
	}
	if (m->state == MEMBER_DEAD || m->state == MEMBER_LEFT) {
		c->stats.msgs_ignored++;
		return;
	}
	if (gid == c->self_gid && !c->leaving) {
		refute(c, inc, now);
		return;
	}
	suspicion_cancel(c, m);
	broadcast(c, m, BC_DEAD, inc, from_gid, now);
	uint8_t prev = m->state;
	m->incarnation = inc;
	m->state = from_gid == gid ? MEMBER_LEFT : MEMBER_DEAD;
	m->state_change_ms = now;
	if (from_gid == c->self_gid && gid != c->self_gid)
		c->stats.deaths_declared++;
	emit_event(c, m->state == MEMBER_LEFT ? MEMBER_EV_LEFT : MEMBER_EV_DEAD, m, prev);
}

/* --- probing ----------------------------------------------------------------- */

static bool probe_candidate(const struct member_core *c, const struct member *m)
{
	return m->gid != c->self_gid &&
	       (m->state == MEMBER_ALIVE || m->state == MEMBER_SUSPECT);
}

/* Picks up to k distinct random live members other than self and `exclude`;
 * bounded at 3 * count tries (as memberlist's kRandomNodes). */
static unsigned random_members(struct member_core *c, unsigned k, uint32_t exclude,
			       bool with_recent_dead, uint64_t now, uint32_t *out)
{
	unsigned got = 0;
	size_t tries = 3 * c->count;
	for (size_t t = 0; t < tries && got < k; t++) {
		const struct member *m = &c->members[rng_below(&c->rng, c->count)];
		if (m->gid == c->self_gid || m->gid == exclude)
			continue;
		bool ok = m->state == MEMBER_ALIVE || m->state == MEMBER_SUSPECT;
		if (!ok && with_recent_dead && m->state == MEMBER_DEAD &&
		    now - m->state_change_ms <= c->cfg.gossip_to_the_dead_ms)
			ok = true;
		if (!ok)
			continue;
		bool dup = false;
		for (unsigned i = 0; i < got; i++)
			dup |= out[i] == m->gid;
		if (!dup)
			out[got++] = m->gid;
	}
	return got;
}

static void probe_start(struct member_core *c, uint64_t now)
{
	c->stage = PROBE_IDLE;
	c->next_probe_ms = now + c->cfg.probe_interval_ms;
	if (c->leaving)
		return;
	const struct member *target = NULL;
	for (size_t checked = 0; checked < c->count; checked++) {
		if (c->probe_pos >= c->count) {
			c->probe_pos = 0;
			shuffle_members(c);
		}
		const struct member *m = &c->members[c->probe_pos++];
		if (probe_candidate(c, m)) {
			target = m;
			break;
		}
	}
	if (!target)
		return;
	uint64_t interval = health_scale(c, c->cfg.probe_interval_ms);
	c->stage = PROBE_DIRECT;
	c->probe_gid = target->gid;
	c->probe_seq = ++c->seq;
	c->probe_acked = false;
	c->nacks_expected = c->nacks_got = 0;
	c->probe_indirect_ms = now + c->cfg.probe_timeout_ms;
	c->probe_end_ms = now + interval;
	c->next_probe_ms = c->probe_end_ms;

	struct wire_msg msgs[2];
	unsigned n = 1;
	memset(msgs, 0, sizeof(msgs));
	msgs[0].type = WIRE_PING;
	msgs[0].seq = c->probe_seq;
	memcpy(msgs[0].id, member_dir_get(c->dir, target->gid)->id, SHOAL_NODE_ID_BYTES);
	if (target->state == MEMBER_SUSPECT) {
		/* Lifeguard buddy system: tell a suspect it is suspected. */
		msgs[1].type = WIRE_SUSPECT;
		msgs[1].incarnation = target->incarnation;
		memcpy(msgs[1].id, msgs[0].id, SHOAL_NODE_ID_BYTES);
		memcpy(msgs[1].from_id, member_dir_get(c->dir, c->self_gid)->id,
		       SHOAL_NODE_ID_BYTES);
		n = 2;
	}
	c->stats.probes_sent++;
	send_msgs(c, addr_of(c, target->gid), target->gid, msgs, n);
}

static void probe_indirect(struct member_core *c, uint64_t now)
{
	assert(c->stage == PROBE_DIRECT);
	c->stage = PROBE_INDIRECT;
	uint32_t peers[16];
	unsigned k = c->cfg.indirect_checks < 16 ? c->cfg.indirect_checks : 16;
	unsigned got = random_members(c, k, c->probe_gid, false, now, peers);
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = WIRE_PING_REQ;
	m.seq = c->probe_seq;
	memcpy(m.id, member_dir_get(c->dir, c->probe_gid)->id, SHOAL_NODE_ID_BYTES);
	m.addr = *addr_of(c, c->probe_gid);
	m.want_nack = true;
	for (unsigned i = 0; i < got; i++) {
		c->stats.indirect_probes_sent++;
		send_one(c, peers[i], addr_of(c, peers[i]), &m);
	}
	c->nacks_expected = got;
}

static void probe_end(struct member_core *c, uint64_t now)
{
	assert(c->stage != PROBE_IDLE);
	c->stage = PROBE_IDLE;
	if (c->probe_acked)
		return;
	int delta = 0;
	if (c->nacks_expected > 0) {
		if (c->nacks_got < c->nacks_expected)
			delta = (int)(c->nacks_expected - c->nacks_got);
	} else {
		delta = 1;
	}
	health_apply(c, delta);
	c->stats.probes_failed++;
	struct member *m = find(c, c->probe_gid);
	if (m && m->state == MEMBER_ALIVE)
		c->stats.suspects_raised++;
	if (m)
		on_suspect(c, m->gid, m->incarnation, c->self_gid, now);
}

static void on_ack(struct member_core *c, uint32_t seq, uint64_t now)
{
	if (c->stage != PROBE_IDLE && seq == c->probe_seq && !c->probe_acked) {
		c->probe_acked = true;
		if (c->stage == PROBE_DIRECT)
			health_apply(c, -1);
		/* The probe is complete; the next one starts on schedule. */
		c->stage = PROBE_IDLE;
		return;
	}
	for (size_t i = 0; i < c->relays_count; i++) {
		struct relay *r = &c->relays[i];
		if (r->local_seq != seq)
			continue;
		struct wire_msg m;
		memset(&m, 0, sizeof(m));
		m.type = WIRE_ACK;
		m.seq = r->orig_seq;
		send_one(c, r->requester_gid, &r->requester, &m);
		c->relays[i] = c->relays[--c->relays_count];
		return;
	}
	(void)now;
	c->stats.msgs_ignored++;
}

static void on_ping_req(struct member_core *c, uint32_t from_gid,
			const struct shoal_addr *from, const struct wire_msg *req,
			uint64_t now)
{
	if (c->relays_count >= SHOAL_PENDING_PROBES_MAX) {
		c->stats.msgs_ignored++;
		return;
	}
	struct relay *r = &c->relays[c->relays_count++];
	r->local_seq = ++c->seq;
	r->orig_seq = req->seq;
	r->requester_gid = from_gid;
	r->requester = *from;
	r->want_nack = req->want_nack;
	r->nacked = false;
	r->nack_ms = now + (uint64_t)c->cfg.probe_timeout_ms * NACK_PERCENT / 100;
	r->deadline_ms = now + c->cfg.probe_timeout_ms;
	struct wire_msg ping;
	memset(&ping, 0, sizeof(ping));
	ping.type = WIRE_PING;
	ping.seq = r->local_seq;
	memcpy(ping.id, req->id, SHOAL_NODE_ID_BYTES);
	send_one(c, member_dir_find(c->dir, req->id), &req->addr, &ping);
}

/* --- gossip and push-pull -------------------------------------------------- */

static void gossip(struct member_core *c, uint64_t now)
{
	c->next_gossip_ms = c->bc_count ? now + c->cfg.gossip_interval_ms : TIME_NEVER;
	if (!c->bc_count)
		return;
	uint32_t peers[16];
	unsigned k = c->cfg.gossip_nodes < 16 ? c->cfg.gossip_nodes : 16;
	unsigned got = random_members(c, k, NONE32, true, now, peers);
	for (unsigned i = 0; i < got && c->bc_count; i++)
		send_msgs(c, addr_of(c, peers[i]), peers[i], NULL, 0);
	if (!c->bc_count)
		c->next_gossip_ms = TIME_NEVER;
}

static uint64_t pushpull_interval(const struct member_core *c)
{
	/* memberlist's pushPullScale: slower past 32 members, log2 growth. */
	uint64_t base = c->cfg.push_pull_interval_ms;
	size_t n = c->count;
	if (n <= 32)
		return base;
	double mult = ceil(log2((double)n) - log2(32.0)) + 1.0;
	return (uint64_t)(mult * (double)base);
}

static void pushpull(struct member_core *c, uint64_t now)
{
	c->next_pushpull_ms = now + pushpull_interval(c);
	if (c->leaving)
		return;
	uint32_t peer;
	if (random_members(c, 1, NONE32, false, now, &peer) != 1)
		return;
	struct out_item *o = out_push(c, MEMBER_OUT_PUSHPULL);
	if (!o)
		return;
	o->to = *addr_of(c, peer);
	o->to_gid = peer;
	c->stats.pushpulls_started++;
}

/* Serf's reconnect: with probability dead/live (capped at 1), push-pull with
 * one random member we hold dead. A member that is really gone costs one
 * failed connection per interval; one that was behind a partition learns it
 * was declared dead, refutes, and both sides merge their views. */
static void reconnect(struct member_core *c, uint64_t now)
{
	c->next_reconnect_ms = now + c->cfg.reconnect_interval_ms;
	if (c->leaving)
		return;
	size_t dead = 0, live = 0;
	for (size_t i = 0; i < c->count; i++) {
		uint8_t s = c->members[i].state;
		dead += s == MEMBER_DEAD;
		live += s == MEMBER_ALIVE || s == MEMBER_SUSPECT;
	}
	if (dead == 0 || (dead < live && rng_below(&c->rng, live) >= dead))
		return;
	size_t pick = (size_t)rng_below(&c->rng, dead);
	for (size_t i = 0; i < c->count; i++) {
		const struct member *m = &c->members[i];
		if (m->state != MEMBER_DEAD || pick-- != 0)
			continue;
		struct out_item *o = out_push(c, MEMBER_OUT_PUSHPULL);
		if (!o)
			return;
		o->to = *addr_of(c, m->gid);
		o->to_gid = m->gid;
		c->stats.reconnects_started++;
		return;
	}
}

static void reclaim(struct member_core *c, uint64_t now)
{
	if (!c->cfg.dead_reclaim_ms)
		return;
	bool removed = false;
	for (size_t i = 0; i < c->count;) {
		struct member *m = &c->members[i];
		if ((m->state == MEMBER_DEAD || m->state == MEMBER_LEFT) &&
		    m->gid != c->self_gid && now - m->state_change_ms > c->cfg.dead_reclaim_ms) {
			if (m->bcast != NONE16)
				bcast_release(c, m->bcast);
			suspicion_cancel(c, m);
			c->members[i] = c->members[--c->count];
			removed = true;
			continue;
		}
		i++;
	}
	if (removed)
		index_rebuild(c);
}

/* --- public API ------------------------------------------------------------ */

struct member_core *member_core_new(const struct member_config *cfg,
				    struct member_dir *dir,
				    const struct member_identity *self,
				    uint32_t incarnation, uint64_t seed,
				    uint64_t now_ms)
{
	assert(cfg->payload_bytes_max <= SHOAL_UDP_PAYLOAD_BYTES_MAX);
	assert(cfg->probe_timeout_ms < cfg->probe_interval_ms);
	struct member_core *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	if (c->cfg.awareness_max_multiplier < 1)
		c->cfg.awareness_max_multiplier = 1;
	c->dir = dir;
	rng_seed(&c->rng, seed);
	c->incarnation = incarnation;
	c->susp_free = NONE16;
	c->bc_free = NONE16;
	memset(c->bucket_head, 0xff, sizeof(c->bucket_head));
	c->index_cap = 16;
	c->index = malloc(c->index_cap * sizeof(*c->index));
	c->self_gid = member_dir_intern(dir, self->id);
	if (!c->index || c->self_gid == NONE32) {
		member_core_free(c);
		return NULL;
	}
	memset(c->index, 0xff, c->index_cap * sizeof(*c->index));
	struct member_identity *me = (struct member_identity *)member_dir_get(dir, c->self_gid);
	*me = *self;
	c->self_slot_gid = c->self_gid;
	struct member *m = member_add(c, c->self_gid, incarnation, MEMBER_ALIVE, now_ms);
	if (!m) {
		member_core_free(c);
		return NULL;
	}
	c->next_gossip_ms = TIME_NEVER;
	c->gossip_origin_ms = now_ms - rng_below(&c->rng, cfg->gossip_interval_ms);
	broadcast(c, m, BC_ALIVE, incarnation, c->self_gid, now_ms);
	/* Spread the first probe and push-pull over the interval so that nodes
	 * started together do not probe in lockstep. */
	c->next_probe_ms = now_ms + rng_below(&c->rng, cfg->probe_interval_ms);
	c->next_pushpull_ms = cfg->push_pull_interval_ms
		? now_ms + cfg->push_pull_interval_ms / 2 +
		  rng_below(&c->rng, cfg->push_pull_interval_ms)
		: TIME_NEVER;
	c->next_reconnect_ms = cfg->reconnect_interval_ms
		? now_ms + cfg->reconnect_interval_ms / 2 +
		  rng_below(&c->rng, cfg->reconnect_interval_ms)
		: TIME_NEVER;
	return c;
}

void member_core_free(struct member_core *c)
{
	if (!c)
		return;
	free(c->members);
	free(c->index);
	free(c->susp);
	free(c->sheap);
	free(c->bc);
	free(c->outq);
	free(c->arena);
	free(c);
}

int member_core_join(struct member_core *c, const struct shoal_addr *seeds,
		     size_t n, uint64_t now_ms)
{
	out_compact(c);
	if (n > SHOAL_SEEDS_MAX)
		return SHOAL_ETOOBIG;
	(void)now_ms;
	for (size_t i = 0; i < n; i++) {
		struct out_item *o = out_push(c, MEMBER_OUT_PUSHPULL);
		if (!o)
			return SHOAL_EFULL;
		o->to = seeds[i];
		o->join = true;
		c->stats.pushpulls_started++;
	}
	return 0;
}

int member_core_leave(struct member_core *c, uint64_t now_ms)
{
	out_compact(c);
	if (c->leaving)
		return SHOAL_ESTATE;
	c->leaving = true;
	c->stage = PROBE_IDLE;
	struct member *self = find(c, c->self_gid);
	assert(self);
	c->incarnation++;
	on_dead(c, c->self_gid, c->incarnation, c->self_gid, now_ms);
	/* Push the news out now rather than at the next gossip tick. */
	gossip(c, now_ms);
	return 0;
}

int member_core_recv_packet(struct member_core *c,
			    const uint8_t from_id[SHOAL_NODE_ID_BYTES],
			    const struct shoal_addr *from,
			    const uint8_t *payload, size_t len, uint64_t now_ms)
{
	static _Thread_local struct wire_msg msgs[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n = 0;
	out_compact(c);
	int err = wire_decode_payload(payload, len, msgs, &n);
	if (err) {
		c->stats.packets_malformed++;
		return err;
	}
	c->stats.packets_received++;
	uint32_t from_gid = member_dir_intern(c->dir, from_id);
	if (from_gid == NONE32 || from_gid == c->self_gid) {
		c->stats.msgs_ignored++;
		return 0;
	}
	/* A member we hold dead is talking to us: tell it, so it refutes. */
	struct member *sender = find(c, from_gid);
	if (sender && sender->state == MEMBER_DEAD && !c->leaving) {
		struct wire_msg d;
		memset(&d, 0, sizeof(d));
		d.type = WIRE_DEAD;
		d.incarnation = sender->incarnation;
		memcpy(d.id, from_id, SHOAL_NODE_ID_BYTES);
		memcpy(d.from_id, member_dir_get(c->dir, c->self_gid)->id, SHOAL_NODE_ID_BYTES);
		send_one(c, from_gid, from, &d);
	}
	const uint8_t *self_id = member_dir_get(c->dir, c->self_gid)->id;
	for (size_t i = 0; i < n; i++) {
		const struct wire_msg *m = &msgs[i];
		switch (m->type) {
		case WIRE_PING: {
			if (memcmp(m->id, self_id, SHOAL_NODE_ID_BYTES) != 0) {
				c->stats.msgs_ignored++;
				break;
			}
			struct wire_msg ack;
			memset(&ack, 0, sizeof(ack));
			ack.type = WIRE_ACK;
			ack.seq = m->seq;
			send_one(c, from_gid, from, &ack);
			break;
		}
		case WIRE_PING_REQ:
			if (memcmp(m->id, self_id, SHOAL_NODE_ID_BYTES) == 0) {
				c->stats.msgs_ignored++;
				break;
			}
			on_ping_req(c, from_gid, from, m, now_ms);
			break;
		case WIRE_ACK:
			on_ack(c, m->seq, now_ms);
			break;
		case WIRE_NACK:
			if (c->stage == PROBE_INDIRECT && m->seq == c->probe_seq &&
			    c->nacks_got < c->nacks_expected)
				c->nacks_got++;
			else
				c->stats.msgs_ignored++;
			break;
		case WIRE_ALIVE:
			on_alive(c, m, now_ms);
			break;
		case WIRE_SUSPECT:
		case WIRE_DEAD: {
			uint32_t gid = member_dir_find(c->dir, m->id);
			uint32_t by = member_dir_intern(c->dir, m->from_id);
			if (gid == NONE32 || by == NONE32) {
				c->stats.msgs_ignored++;
				break;
			}
			if (m->type == WIRE_SUSPECT)
				on_suspect(c, gid, m->incarnation, by, now_ms);
			else
				on_dead(c, gid, m->incarnation, by, now_ms);
			break;
		}
		default:
			c->stats.msgs_ignored++;
			break;
		}
	}
	return 0;
}

int member_core_encode_state(struct member_core *c, bool join, uint8_t **out,
			     size_t *out_len)
{
	/* Worst case per entry: id + v6 addr + name + tags + inc + state. */
	size_t per = 32 + 19 + 1 + SHOAL_NAME_BYTES_MAX + 1 +
		     SHOAL_TAGS_COUNT_MAX * (1 + SHOAL_TAG_BYTES_MAX) + 4 + 1;
	size_t cap = 6 + c->count * per;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return SHOAL_ENOMEM;
	struct wr w = wr_init(buf, cap);
	wire_put_state_header(&w, join, (uint32_t)c->count);
	for (size_t i = 0; i < c->count; i++) {
		const struct member *m = &c->members[i];
		const struct member_identity *id = member_dir_get(c->dir, m->gid);
		struct wire_state_entry e;
		memcpy(e.node.id, id->id, SHOAL_NODE_ID_BYTES);
		e.node.addr = id->addr;
		memcpy(e.node.name, id->name, sizeof(e.node.name));
		e.node.tags_count = id->tags_count;
		memcpy(e.node.tags, id->tags, sizeof(e.node.tags));
		e.incarnation = m->gid == c->self_gid ? c->incarnation : m->incarnation;
		e.state = m->state;
		wire_put_state_entry(&w, &e);
	}
	if (!wr_ok(&w)) {
		free(buf);
		return SHOAL_ETOOBIG;
	}
	*out = buf;
	*out_len = w.len;
	return 0;
}

int member_core_recv_state(struct member_core *c, const uint8_t *state,
			   size_t len, uint64_t now_ms)
{
	struct wire_state_entry *es = NULL;
	size_t n = 0;
	bool join = false;
	out_compact(c);
	int err = wire_decode_state(state, len, &join, &es, &n);
	if (err) {
		c->stats.packets_malformed++;
		return err;
	}
	c->stats.pushpulls_merged++;
	for (size_t i = 0; i < n; i++) {
		const struct wire_state_entry *e = &es[i];
		struct wire_msg a;
		memset(&a, 0, sizeof(a));
		a.type = WIRE_ALIVE;
		a.incarnation = e->incarnation;
		memcpy(a.id, e->node.id, SHOAL_NODE_ID_BYTES);
		a.addr = e->node.addr;
		memcpy(a.name, e->node.name, sizeof(a.name));
		a.tags_count = e->node.tags_count;
		memcpy(a.tags, e->node.tags, sizeof(a.tags));
		uint32_t gid = member_dir_find(c->dir, e->node.id);
		switch (e->state) {
		case MEMBER_ALIVE:
			on_alive(c, &a, now_ms);
			break;
		case MEMBER_LEFT:
			/* Learn the member first if new, then record the leave. */
			if (gid == NONE32 || !find(c, gid)) {
				on_alive(c, &a, now_ms);
				gid = member_dir_find(c->dir, e->node.id);
			}
			on_dead(c, gid, e->incarnation, gid, now_ms);
			break;
		case MEMBER_DEAD:
		case MEMBER_SUSPECT:
			/* memberlist prefers suspicion over trusting a remote
			 * death verdict: the member gets a chance to refute. */
			if (gid == NONE32 || !find(c, gid)) {
				on_alive(c, &a, now_ms);
				gid = member_dir_find(c->dir, e->node.id);
			}
			on_suspect(c, gid, e->incarnation, c->self_gid, now_ms);
			break;
		}
	}
	free(es);
	return 0;
}

void member_core_tick(struct member_core *c, uint64_t now)
{
	out_compact(c);
	/* suspicion timeouts */
	while (c->sheap_len && c->sheap[0].deadline_ms <= now) {
		if (!sheap_top_current(c)) {
			sheap_pop(c);
			continue;
		}
		uint16_t slot = c->sheap[0].slot;
		sheap_pop(c);
		struct suspicion *s = &c->susp[slot];
		struct member *m = find(c, s->gid);
		assert(m && m->susp == slot);
		uint32_t inc = m->incarnation;
		suspicion_cancel(c, m);
		on_dead(c, m->gid, inc, c->self_gid, now);
	}
	/* relayed probes that timed out */
	for (size_t i = 0; i < c->relays_count;) {
		struct relay *r = &c->relays[i];
		if (r->want_nack && !r->nacked && r->nack_ms <= now) {
			struct wire_msg m;
			memset(&m, 0, sizeof(m));
			m.type = WIRE_NACK;
			m.seq = r->orig_seq;
			send_one(c, r->requester_gid, &r->requester, &m);
			r->nacked = true;
		}
		if (r->deadline_ms > now) {
			i++;
			continue;
		}
		c->relays[i] = c->relays[--c->relays_count];
	}
	/* the probe in flight, then the next probe */
	if (c->stage == PROBE_DIRECT && now >= c->probe_indirect_ms)
		probe_indirect(c, now);
	if (c->stage != PROBE_IDLE && now >= c->probe_end_ms)
		probe_end(c, now);
	if (now >= c->next_probe_ms) {
		if (c->probe_pos >= c->count)
			reclaim(c, now);
		probe_start(c, now);
	}
	if (now >= c->next_gossip_ms)
		gossip(c, now);
	if (now >= c->next_pushpull_ms)
		pushpull(c, now);
	if (now >= c->next_reconnect_ms)
		reconnect(c, now);
}

uint64_t member_core_next_deadline(const struct member_core *c)
{
	uint64_t t = c->next_probe_ms;
	if (c->stage == PROBE_DIRECT && c->probe_indirect_ms < t)
		t = c->probe_indirect_ms;
	if (c->stage != PROBE_IDLE && c->probe_end_ms < t)
		t = c->probe_end_ms;
	if (c->next_gossip_ms < t)
		t = c->next_gossip_ms;
	if (c->next_pushpull_ms < t)
		t = c->next_pushpull_ms;
	if (c->next_reconnect_ms < t)
		t = c->next_reconnect_ms;
	if (c->sheap_len && c->sheap[0].deadline_ms < t)
		t = c->sheap[0].deadline_ms;
	for (size_t i = 0; i < c->relays_count; i++) {
		const struct relay *r = &c->relays[i];
		uint64_t due = r->want_nack && !r->nacked ? r->nack_ms : r->deadline_ms;
		if (due < t)
			t = due;
	}
	return t;
}

bool member_core_poll(struct member_core *c, struct member_out *out)
{
	if (c->outq_head == c->outq_len)
		return false;
	const struct out_item *o = &c->outq[c->outq_head++];
	memset(out, 0, sizeof(*out));
	out->kind = o->kind;
	out->to = o->to;
	out->to_gid = o->to_gid;
	out->join = o->join;
	out->ev = o->ev;
	if (o->kind == MEMBER_OUT_PACKET) {
		out->data = c->arena + o->off;
		out->len = o->len;
	}
	return true;
}

int member_core_add_alive(struct member_core *c, uint32_t gid,
			  uint32_t incarnation, uint64_t now_ms)
{
	if (gid == c->self_gid || !member_dir_get(c->dir, gid))
		return SHOAL_EINVAL;
	if (find(c, gid))
		return SHOAL_EEXIST;
	return member_add(c, gid, incarnation, MEMBER_ALIVE, now_ms) ? 0 : SHOAL_EFULL;
}

size_t member_core_count(const struct member_core *c) { return c->count; }

size_t member_core_live_count(const struct member_core *c)
{
	return count_in_state(c, true);
}

static void fill_info(const struct member_core *c, const struct member *m,
		      struct member_info *out)
{
	out->ident = member_dir_get(c->dir, m->gid);
	out->gid = m->gid;
	out->state = (enum member_state)m->state;
	out->incarnation = m->gid == c->self_gid ? c->incarnation : m->incarnation;
	out->state_change_ms = m->state_change_ms;
	out->is_self = m->gid == c->self_gid;
}

int member_core_get(const struct member_core *c, size_t index, struct member_info *out)
{
	if (index >= c->count)
		return SHOAL_ENOTFOUND;
	fill_info(c, &c->members[index], out);
	return 0;
}

int member_core_lookup(const struct member_core *c, uint32_t gid, struct member_info *out)
{
	const struct member *m = find(c, gid);
	if (!m)
		return SHOAL_ENOTFOUND;
	fill_info(c, m, out);
	return 0;
}

uint32_t member_core_incarnation(const struct member_core *c) { return c->incarnation; }
uint32_t member_core_self_gid(const struct member_core *c) { return c->self_gid; }
int member_core_health(const struct member_core *c) { return c->health; }
const struct member_stats *member_core_stats(const struct member_core *c) { return &c->stats; }
bool member_core_has_left(const struct member_core *c) { return c->leaving; }
