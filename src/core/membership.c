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
 * Storage is laid out for a simulator that runs 10,000 cores of 10,000
 * members each in one process (10^8 member entries), so per-core state per
 * member is 18 bytes and every lookup is O(1):
 *   - a table indexed by gid (the member_dir's dense identity number) of
 *     16-byte entries: state, incarnation, state-change time, and the slots
 *     of the member's broadcast and suspicion if it has one;
 *   - the probe order, an array of 16-bit gids (shuffled each round, new
 *     members inserted at a random position, as memberlist does);
 *   - broadcasts (memberlist's TransmitLimitedQueue) in one vector per
 *     transmit count, 12 bytes each, walked newest first, each found
 *     through a 4-byte slot its member's entry names (struct bslot);
 *   - suspicions in a pool of 64-item chunks (20 bytes each with the
 *     default suspicion_mult: susp_item_bytes), so they cost
 *     memory only while in use and never move, and their deadlines in a
 *     lazy min-heap of 8-byte keys (a confirmation pushes a new key; stale
 *     keys are skipped when they surface, and the heap is rebuilt when they
 *     outnumber the live ones), so no heap operation writes to a suspicion.
 * Identities (id, name, tags, address) live once in the member_dir.
 * Everything is deterministic given the seed.
 */
#include "core/membership.h"

#include <assert.h>
#include <stdlib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/wire.h"
#include "shoal/error.h"
#include "shoal/rng.h"

#define NONE16 0xffffu
#define NONE32 UINT32_MAX
#define TIME_NEVER UINT64_MAX
#define CONFIRMERS_MAX 8 /* distinct confirmations kept per suspicion */
#define JOIN_PUSHPULL_AGAIN_MS 2000 /* a second push-pull after joining (merge_done) */

/* The directory holds every identity a process meets: the members of the
 * largest simulation plus a full member table's worth. Inside a core gids
 * are kept in 16 bits. */
#define GIDS_MAX (SHOAL_SIM_NODES_MAX + SHOAL_MEMBERS_MAX)
_Static_assert(GIDS_MAX < NONE16, "gids must fit 16 bits with NONE16 to spare");
_Static_assert(SHOAL_BROADCASTS_MAX < NONE16, "broadcast slots are 16-bit");
_Static_assert(SHOAL_SUSPICIONS_MAX < NONE16, "suspicion slots are 16-bit");

/* --- arithmetic ----------------------------------------------------------- */

/* The core calls no libm function: an agent that maps libm.so.6 carries
 * ~0.5 MiB more VmRSS (its load runs IFUNC resolvers across the library),
 * and nothing else an agent runs needs it (src/common/libm.c). The three
 * logarithms memberlist's timings use are integer arithmetic or constants
 * here. */

/* ln(i) for i = 1 .. CONFIRMERS_MAX + 1, as libm's log() returns them (a
 * unit test compares): a suspicion timeout needs ln(n + 1) / ln(k + 1). */
static const double ln_small[CONFIRMERS_MAX + 2] = {
	0.0, /* (unused) */
	0.0,
	0.6931471805599453,
	1.0986122886681098,
	1.3862943611198906,
	1.6094379124341003,
	1.791759469228055,
	1.9459101490553132,
	2.0794415416798357,
	2.1972245773362196,
};

/* The high 64 bits of a * b; the low ones in *lo. */
static uint64_t mul64(uint64_t a, uint64_t b, uint64_t *lo)
{
	uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
	*lo = (mid << 32) | (uint32_t)p00;
	return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

#define LOG_FRAC_BITS 56

/* log2(n) for n >= 1 in fixed point with LOG_FRAC_BITS fraction bits, from
 * below: each squaring of the mantissa (kept to 62 bits) gives the next
 * bit, and the truncations add up to less than 2^-54. */
static uint64_t log2_fixed(uint64_t n)
{
	assert(n >= 1);
	unsigned e = 63u - (unsigned)__builtin_clzll((unsigned long long)n);
	uint64_t m = e <= 62 ? n << (62 - e) : n >> 1; /* [1, 2) in 2.62 */
	uint64_t r = (uint64_t)e << LOG_FRAC_BITS;
	for (int i = LOG_FRAC_BITS - 1; i >= 0; i--) {
		uint64_t lo, hi = mul64(m, m, &lo);
		m = (hi << 2) | (lo >> 62); /* m * m in 2.62: [1, 4) */
		if (m >> 63) {
			r |= UINT64_C(1) << i;
			m >>= 1;
		}
	}
	return r;
}

/* log10(2) in 0.64 fixed point, rounded down */
#define LOG10_2_Q64 UINT64_C(0x4d104d427de7fbcc)

uint64_t member_suspicion_min_ms(const struct member_config *cfg, size_t members)
{
	/* memberlist: mult * max(1, log10(n)) * probe interval, in ms rounded
	 * down */
	uint64_t a = (uint64_t)cfg->suspicion_mult * cfg->probe_interval_ms;
	if (members <= 10)
		return a;
	uint64_t lo, d = mul64(log2_fixed(members), LOG10_2_Q64, &lo); /* log10(n), 8.56 */
	/* Both factors were rounded down (by under 2^-54 in all): 2^-52 more
	 * makes a power of ten's logarithm whole again, and moves nothing else
	 * across a millisecond (a unit test compares with libm's log10 for
	 * every n up to 2^17). */
	d += UINT64_C(1) << (LOG_FRAC_BITS - 52);
	uint64_t hi = mul64(a, d, &lo);
	assert(hi >> LOG_FRAC_BITS == 0); /* (the shift below keeps every bit) */
	return (hi << (64 - LOG_FRAC_BITS)) | (lo >> LOG_FRAC_BITS);
}

/* --- identity directory ---------------------------------------------------- */

/* Size classes of spare broadcast vectors: TIER_KEEP << 0 .. 11 items covers
 * every capacity a tier takes (doubling from TIER_KEEP up to
 * SHOAL_BROADCASTS_MAX). */
#define SPARE_CLASSES 12
#define TIER_KEEP 8 /* a tier's first vector size, kept when the tier empties */
_Static_assert(((size_t)TIER_KEEP << (SPARE_CLASSES - 1)) == SHOAL_BROADCASTS_MAX,
	       "every tier capacity has a spare class");

/* A spare vector's first bytes link it into its class's list. */
struct spare_vec {
	struct spare_vec *next;
};

struct member_dir {
	uint8_t (*ids)[SHOAL_NODE_ID_BYTES]; /* compact copy: what lookups touch */
	struct member_identity *idents;
	/* The size of each identity's push-pull state entry, kept with the
	 * identity (dir_identity_changed) so that a state's size costs no
	 * pass over the identities. */
	uint8_t *entry_bytes;
	size_t count, cap;
	uint64_t *index; /* open addressing, at most half full: a slot holds the
			  * id hash's high half (a tag, compared before the id)
			  * and the gid, or SLOT_EMPTY */
	size_t index_cap;
	/* recv_packet's decoded ALIVE and PING_REQ messages (~13 kB): here, one
	 * per process, rather than on the stack or _Thread_local (glibc
	 * allocates and zeroes static TLS in every thread the agent starts). A
	 * core's calls never nest, and the cores sharing a dir run on one
	 * thread (member_dir_new). */
	struct wire_msg *scratch;
	/* Broadcast vectors the cores gave back, by size class (TIER_KEEP << k
	 * items), for the next core that grows or shrinks a tier: a wave of
	 * broadcasts makes every core's tiers grow and shrink in turn, and the
	 * sim's 10,000 cores spent ~4% of their time in malloc and free for
	 * them. At most spare_bytes_max bytes wait here; 0 (the default, the
	 * agent's one core) keeps none and leaves the vectors to realloc. */
	struct spare_vec *spare[SPARE_CLASSES];
	size_t spare_bytes, spare_bytes_max;
};

/* The hash of an id's prefix (SHOAL_NODE_ID_PREFIX_BYTES): an accusation
 * names members by prefix, and a whole id is found through its prefix. */
static uint64_t id_hash(const uint8_t id[SHOAL_NODE_ID_PREFIX_BYTES])
{
	/* Ids are Ed25519 public keys of admitted nodes, so already uniform;
	 * mixing both words keeps a crafted id from landing on a chosen slot
	 * cheaply, and the table is bounded (GIDS_MAX) and half empty. */
	uint64_t w[2];
	memcpy(w, id, sizeof(w));
	uint64_t h = (w[0] ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
	h = (h ^ (h >> 29) ^ w[1]) * 0x94d049bb133111ebull;
	h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 32);
}

/* Ids are compared on every lookup: word compares, no call (this is not a
 * secret comparison: ids are public keys). */
static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

_Static_assert(SHOAL_NODE_ID_PREFIX_BYTES == 16, "prefix_equal compares two words");
static inline bool prefix_equal(const uint8_t *a, const uint8_t *b)
{
	return ((load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8))) == 0;
}

static inline bool id_equal(const uint8_t a[SHOAL_NODE_ID_BYTES],
			    const uint8_t b[SHOAL_NODE_ID_BYTES])
{
	return ((load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8)) |
		(load64(a + 16) ^ load64(b + 16)) | (load64(a + 24) ^ load64(b + 24))) == 0;
}

struct member_dir *member_dir_new(void)
{
	struct member_dir *d = calloc(1, sizeof(struct member_dir));
	if (d)
		d->scratch = malloc(SHOAL_MSGS_PER_PACKET_MAX * sizeof(*d->scratch));
	if (d && !d->scratch) {
		free(d);
		return NULL;
	}
	return d;
}

void member_dir_free(struct member_dir *d)
{
	if (!d)
		return;
	free(d->ids);
	free(d->idents);
	free(d->entry_bytes);
	free(d->index);
	free(d->scratch);
	for (size_t k = 0; k < SPARE_CLASSES; k++) {
		while (d->spare[k]) {
			struct spare_vec *v = d->spare[k];
			d->spare[k] = v->next;
			free(v);
		}
	}
	free(d);
}

void member_dir_keep_spares(struct member_dir *d, size_t bytes)
{
	assert(d);
	assert(d->spare_bytes == 0); /* set once, before the cores run */
	d->spare_bytes_max = bytes;
}

/* The encoded size of one state entry for identity id (wire.h's entry:
 * id, addr, name, tags, incarnation, state), as wire_put_state_entry
 * writes it. */
static size_t state_entry_bytes(const struct member_identity *id)
{
	size_t n = SHOAL_NODE_ID_BYTES + (id->addr.family == SHOAL_AF_INET6 ? 19 : 7) + 1 +
		   strnlen(id->name, SHOAL_NAME_BYTES_MAX) + 1 + 4 + 1;
	for (uint8_t t = 0; t < id->tags_count; t++)
		n += 1 + strnlen(id->tags[t], SHOAL_TAG_BYTES_MAX);
	return n;
}

/* Every change of an identity in the directory ends here. */
static void dir_identity_changed(struct member_dir *d, uint32_t gid)
{
	assert(gid < d->count);
	size_t n = state_entry_bytes(&d->idents[gid]);
	assert(n <= UINT8_MAX);
	d->entry_bytes[gid] = (uint8_t)n;
}

#define SLOT_EMPTY UINT64_MAX

static uint64_t slot_of(uint64_t h, uint32_t gid)
{
	return (h & ~(uint64_t)UINT32_MAX) | gid;
}

static uint32_t slot_gid(uint64_t slot) { return (uint32_t)slot; }

/* Whether slot (not empty) may hold the id of hash h: the tags agree. */
static bool slot_tag_matches(uint64_t slot, uint64_t h)
{
	return ((slot ^ h) >> 32) == 0;
}

static int dir_grow_index(struct member_dir *d, size_t cap)
{
	assert((cap & (cap - 1)) == 0);
	assert(cap >= 2 * d->count);
	uint64_t *idx = malloc(cap * sizeof(*idx));
	if (!idx)
		return SHOAL_ENOMEM;
	memset(idx, 0xff, cap * sizeof(*idx));
	for (size_t g = 0; g < d->count; g++) {
		uint64_t h = id_hash(d->ids[g]);
		size_t s = h & (cap - 1);
		while (idx[s] != SLOT_EMPTY)
			s = (s + 1) & (cap - 1);
		idx[s] = slot_of(h, (uint32_t)g);
	}
	free(d->index);
	d->index = idx;
	d->index_cap = cap;
	return 0;
}

static int dir_grow(struct member_dir *d, size_t cap)
{
	assert(cap > d->cap);
	uint8_t(*ids)[SHOAL_NODE_ID_BYTES] = realloc(d->ids, cap * sizeof(*ids));
	if (!ids)
		return SHOAL_ENOMEM;
	d->ids = ids;
	struct member_identity *idents = realloc(d->idents, cap * sizeof(*idents));
	if (!idents)
		return SHOAL_ENOMEM;
	d->idents = idents;
	uint8_t *eb = realloc(d->entry_bytes, cap);
	if (!eb)
		return SHOAL_ENOMEM;
	d->entry_bytes = eb;
	d->cap = cap;
	return 0;
}

int member_dir_reserve(struct member_dir *d, size_t n)
{
	if (n > GIDS_MAX)
		return SHOAL_ETOOBIG;
	if (n > d->cap && dir_grow(d, n) != 0)
		return SHOAL_ENOMEM;
	size_t icap = d->index_cap ? d->index_cap : 64;
	while (icap < 2 * n)
		icap *= 2;
	if (icap > d->index_cap && dir_grow_index(d, icap) != 0)
		return SHOAL_ENOMEM;
	return 0;
}

/* The gid whose id starts with prefix (at most one does: dir_intern_h),
 * or NONE32. Lookups take the prefix's hash so that a caller holding
 * several ids can hash them all and start loading their index slots before
 * the first lookup. */
static uint32_t dir_find_prefix_h(const struct member_dir *d,
				  const uint8_t prefix[SHOAL_NODE_ID_PREFIX_BYTES], uint64_t h)
{
	if (!d->index_cap)
		return NONE32;
	size_t s = h & (d->index_cap - 1);
	for (uint64_t slot; (slot = d->index[s]) != SLOT_EMPTY; s = (s + 1) & (d->index_cap - 1)) {
		if (slot_tag_matches(slot, h) && prefix_equal(d->ids[slot_gid(slot)], prefix))
			return slot_gid(slot);
	}
	return NONE32;
}

static uint32_t dir_find_h(const struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES],
			   uint64_t h)
{
	uint32_t g = dir_find_prefix_h(d, id, h);
	return g != NONE32 && id_equal(d->ids[g], id) ? g : NONE32;
}

uint32_t member_dir_find(const struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES])
{
	return dir_find_h(d, id, id_hash(id));
}

uint32_t member_dir_find_prefix(const struct member_dir *d,
				const uint8_t prefix[SHOAL_NODE_ID_PREFIX_BYTES])
{
	return dir_find_prefix_h(d, prefix, id_hash(prefix));
}

static uint32_t dir_intern_h(struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES],
			     uint64_t h)
{
	uint32_t g = dir_find_prefix_h(d, id, h);
	if (g != NONE32) /* another id with this prefix is refused */
		return id_equal(d->ids[g], id) ? g : NONE32;
	if (d->count >= GIDS_MAX)
		return NONE32;
	if ((d->count + 1) * 2 > d->index_cap &&
	    dir_grow_index(d, d->index_cap ? d->index_cap * 2 : 64) != 0)
		return NONE32;
	if (d->count == d->cap && dir_grow(d, d->cap ? d->cap * 2 : 64) != 0)
		return NONE32;
	g = (uint32_t)d->count++;
	memset(&d->idents[g], 0, sizeof(d->idents[g]));
	memcpy(d->idents[g].id, id, SHOAL_NODE_ID_BYTES);
	dir_identity_changed(d, g);
	memcpy(d->ids[g], id, SHOAL_NODE_ID_BYTES);
	size_t s = h & (d->index_cap - 1);
	while (d->index[s] != SLOT_EMPTY)
		s = (s + 1) & (d->index_cap - 1);
	d->index[s] = slot_of(h, g);
	return g;
}

uint32_t member_dir_intern(struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES])
{
	return dir_intern_h(d, id, id_hash(id));
}

const struct member_identity *member_dir_get(const struct member_dir *d, uint32_t gid)
{
	return gid < d->count ? &d->idents[gid] : NULL;
}

size_t member_dir_count(const struct member_dir *d) { return d->count; }

static const uint8_t *dir_id(const struct member_dir *d, uint32_t gid)
{
	assert(gid < d->count);
	return d->ids[gid];
}

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
	c->payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT;
	c->stream_pings = true;
	c->sim_gids = false;
}

/* --- per-core state -------------------------------------------------------- */

#define ST_NONE 0xff /* table entry of a gid this core does not know */

/* 16 bytes: one per gid in the directory's range, known or not. */
struct member {
	uint32_t incarnation;
	uint32_t since_lo;  /* state-change time in ms: low 32 bits ... */
	uint16_t since_hi;  /* ... and the next 16 (48 bits: 8,900 years) */
	uint16_t bc_slot;   /* its queued broadcast's slot (struct bslot), or NONE16 */
	uint16_t susp;      /* suspicion slot or NONE16 */
	uint8_t state;      /* enum member_state, or ST_NONE */
	uint8_t pad;
};
_Static_assert(sizeof(struct member) == 16, "member entries must stay small");

static uint64_t since_get(const struct member *m)
{
	return ((uint64_t)m->since_hi << 32) | m->since_lo;
}

static void since_set(struct member *m, uint64_t ms)
{
	m->since_lo = (uint32_t)ms;
	m->since_hi = (uint16_t)(ms >> 32);
}

/* 32 bytes (was 40), of which a core keeps susp_item_bytes per item: the
 * confirmers its suspicion_mult can use (20 bytes with the default). */
struct suspicion {
	/* start + timeout(n): confirmations only shorten it. 48 bits, as a
	 * heap key keeps them (skey): low 32 ... */
	uint32_t deadline_lo;
	uint16_t deadline_hi; /* ... and the next 16 (8,900 years of ms) */
	uint16_t gid;         /* its member; the free link when free */
	uint32_t min_ms;      /* max is min * suspicion_max_timeout_mult */
	uint8_t k_used;       /* confirmations expected (low bits), SUSP_RECHECKED,
			       * SUSP_USED */
	uint8_t n;            /* confirmations received */
	uint16_t confirmers[CONFIRMERS_MAX + 1]; /* [0] is the first suspector */
};
_Static_assert(sizeof(struct suspicion) == 32, "suspicions must stay small");
#define SUSP_USED 0x80u
/* Run out unconfirmed and checked with the member itself (suspicion_expire) */
#define SUSP_RECHECKED 0x40u
#define SUSP_K_MASK (SUSP_RECHECKED - 1)
_Static_assert(CONFIRMERS_MAX <= SUSP_K_MASK, "k leaves the flag bits free");

/* The bytes a core keeps per suspicion: the confirmers array only as long
 * as the configured suspicion_mult can use (k = mult - 2 confirmations
 * after the first suspector: 3 of the 9 slots with the default 4), so 20
 * bytes instead of 32. Only confirmers[0 .. k] of an item are ever read
 * or written, and a suspicion's k never exceeds this one. */
static size_t susp_item_bytes(const struct member_config *cfg)
{
	uint32_t k = cfg->suspicion_mult >= 2 ? cfg->suspicion_mult - 2 : 0;
	if (k > CONFIRMERS_MAX)
		k = CONFIRMERS_MAX;
	size_t n = offsetof(struct suspicion, confirmers) + (k + 1) * sizeof(uint16_t);
	n = (n + _Alignof(struct suspicion) - 1) & ~(_Alignof(struct suspicion) - 1);
	return n;
}

static uint64_t susp_deadline(const struct suspicion *s)
{
	return ((uint64_t)s->deadline_hi << 32) | s->deadline_lo;
}

static void susp_set_deadline(struct suspicion *s, uint64_t ms)
{
	assert(ms < (UINT64_C(1) << 48)); /* as skey requires */
	s->deadline_lo = (uint32_t)ms;
	s->deadline_hi = (uint16_t)(ms >> 32);
}

static bool susp_used(const struct suspicion *s) { return (s->k_used & SUSP_USED) != 0; }
static uint32_t susp_k(const struct suspicion *s) { return s->k_used & SUSP_K_MASK; }

/* A heap key: the deadline in the high 48 bits, the slot in the low 16, so
 * equal deadlines pop in slot order and a comparison is one integer. */
#define SKEY_SHIFT 16
static uint64_t skey(uint64_t deadline_ms, uint16_t slot)
{
	assert(deadline_ms < (UINT64_C(1) << (64 - SKEY_SHIFT)));
	return (deadline_ms << SKEY_SHIFT) | slot;
}

enum bcast_kind { BC_ALIVE = WIRE_ALIVE, BC_SUSPECT = WIRE_SUSPECT, BC_DEAD = WIRE_DEAD };

/* One queued broadcast, stored in its tier's vector. */
struct bcast {
	uint32_t incarnation;
	uint16_t gid;
	uint16_t from_gid;
	uint8_t kind;        /* enum bcast_kind, 0 for a hole */
	uint8_t pad;
	uint16_t slot;       /* its struct bslot */
};
_Static_assert(sizeof(struct bcast) == 12, "broadcast entries must stay small");

/* Where a queued broadcast is: its tier (transmit count) and index there.
 * A member's entry names the slot, which stays put while its broadcast
 * moves up the tiers, so that sending a broadcast (which moves it) writes
 * this small array, not the member's entry: at 10,000 members that was a
 * random line of a 160 KB table for every message sent. A free slot's pos
 * links the next free one. */
struct bslot {
	uint16_t pos;
	uint8_t tier;
	uint8_t pad;
};

/* The broadcasts sent t times so far, oldest first. A released one leaves a
 * hole (kind 0) until the vector is compacted. Items are stored inline:
 * filling a packet walks a tier newest first, and with 10,000 cores a core's
 * queue is never in cache, so the walk must be sequential (a linked list
 * costs one memory latency per hop). */
struct tier {
	struct bcast *v;
	uint32_t len, cap, live;
};

/* A pool of fixed-size items in chunks of POOL_CHUNK: items never move and
 * memory follows the peak use, not a doubling capacity. */
#define POOL_SHIFT 6
#define POOL_CHUNK (1u << POOL_SHIFT)

struct pool {
	unsigned char **chunks;
	size_t chunks_count, chunks_cap;
	size_t item_bytes;
	size_t items_max;
};

static void *pool_at(const struct pool *p, uint16_t i)
{
	assert((size_t)(i >> POOL_SHIFT) < p->chunks_count);
	return p->chunks[i >> POOL_SHIFT] + (size_t)(i & (POOL_CHUNK - 1)) * p->item_bytes;
}

/* Adds a chunk; returns the first new slot, or NONE16 when full. */
static uint32_t pool_add_chunk(struct pool *p)
{
	size_t first = p->chunks_count * POOL_CHUNK;
	if (first + POOL_CHUNK > p->items_max)
		return NONE16;
	if (p->chunks_count == p->chunks_cap) {
		size_t cap = p->chunks_cap ? p->chunks_cap * 2 : 4;
		unsigned char **n = realloc(p->chunks, cap * sizeof(*n));
		if (!n)
			return NONE16;
		p->chunks = n;
		p->chunks_cap = cap;
	}
	unsigned char *chunk = calloc(POOL_CHUNK, p->item_bytes);
	if (!chunk)
		return NONE16;
	p->chunks[p->chunks_count++] = chunk;
	return (uint32_t)first;
}

static void pool_free(struct pool *p)
{
	for (size_t i = 0; i < p->chunks_count; i++)
		free(p->chunks[i]);
	free(p->chunks);
	memset(p, 0, sizeof(*p));
}

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

/* 64 bytes, one line: with 10,000 cores sharing one output space, an item
 * over two lines was ~5% more time in a 10,000-node run. */
struct out_item {
	enum member_out_kind kind;
	struct shoal_addr to;
	uint32_t to_gid;
	bool join;
	union {
		size_t off;           /* packet: its bytes in the arena */
		uint64_t deadline_ms; /* stream ping */
	};
	union {
		size_t len;           /* packet */
		uint32_t seq;         /* stream ping */
	};
	struct member_event ev;
};
_Static_assert(sizeof(struct out_item) == 64, "an output item must stay one line");

#define TIERS_MAX 256

/* Fields read on every call first, then the counters every packet bumps:
 * with 10,000 cores a core is cold each time it is called, and each cache
 * line touched is a memory latency (member_core_prefetch loads these). */
struct member_core {
	uint64_t next_probe_ms, next_gossip_ms, next_pushpull_ms, next_reconnect_ms;
	uint64_t probe_indirect_ms, probe_end_ms;
	enum probe_stage stage;
	uint32_t self_gid;
	struct member *tab;  /* indexed by gid */
	/* A bit per gid of tab: held dead or left. Most accusations a member
	 * hears at scale are about members it already holds dead (77% of the
	 * subjects of the 10,000-node crash run's packets); this answers them
	 * from 1,250 bytes instead of a random line of a 160 kB table each. */
	uint64_t *gone;
	uint64_t *sheap;     /* suspicion deadline keys, lazy min-heap */
	size_t sheap_len;
	size_t relays_count;
	size_t outq_len, outq_head;
	struct member_dir *dir;
	struct tier *tiers;
	size_t tiers_count;
	/* No tier below this one holds a broadcast (a lower bound: once a wave
	 * has passed, a core's broadcasts sit in its top tiers, and a packet's
	 * walk from tier 0 crossed a dozen empty ones). */
	uint32_t tiers_low;
	bool outputs_shared; /* outq and arena in a member_core_share_outputs space */
	bool sim_gids;       /* cfg.sim_gids, on a line every call reads: cfg's
			      * is the core's last, which the simulator's
			      * prefetch found missing (~4% of its time) */
	size_t bc_count;
	struct bslot *bslots; /* bslots_cap of them */
	struct out_item *outq;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	struct relay *relays;
	uint16_t *order;     /* known gids in probe order */
	size_t count;
	/* memberlist's estimate of the cluster's size (estNumNodes), which
	 * scales the suspicion timeout, the retransmit limit and the push-pull
	 * interval: every member but those that had been dead or left for
	 * longer than gossip_to_the_dead_ms when the last probe round ended
	 * (memberlist drops those from its list then), plus members added
	 * since. Dead members stay in the table here (reconnect, push-pull
	 * states, `shoal members`), so count would overstate it. */
	size_t est_nodes;
	size_t probe_pos;
	size_t tab_cap;
	/* (each confirmation a packet brings reads a suspicion through this) */
	struct pool susp_pool;
	struct member_stats stats;

	/* --- cold: read on some paths only --- */
	size_t sheap_cap;
	size_t outq_cap;
	size_t relays_cap;
	size_t order_cap;
	uint64_t est_at; /* when est_nodes was last recounted; TIME_NEVER before */
	uint64_t pushpull_resume_ms; /* the scheduled push-pull an extra one after
				      * a join came before (merge_done); TIME_NEVER */
	size_t live_count;   /* alive or suspect, self included */
	size_t dead_count;   /* dead (not left) */
	uint32_t incarnation;
	bool leaving;
	bool tab_owned, order_owned; /* false: in memory the caller lent */
	int health; /* Lifeguard local health score */
	uint32_t answers_in_window; /* see answers_window_ms (here, it fills a hole) */
	struct rng rng;

	uint16_t susp_free;
	uint16_t bslot_free;  /* first free broadcast slot, or NONE16 */
	uint32_t bslots_cap;
	size_t susp_active;

	/* the probe in flight */
	uint32_t probe_gid;
	uint32_t probe_seq;
	bool probe_acked;
	bool probe_stream_ok; /* its stream ping reached the member */
	uint32_t nacks_expected, nacks_got;
	uint32_t seq;

	uint64_t gossip_origin_ms; /* gossip ticks fall on origin + k * interval */

	/* answers to stale accusations about others (answer_stale_accusations):
	 * answers_in_window of them in the gossip interval that began here */
	uint64_t answers_window_ms;

	/* A suspicion's minimum timeout for susp_min_count members. */
	size_t susp_min_count;
	uint32_t susp_min_ms;

	struct member_config cfg;
};

/* member_core_prefetch loads every line of a core for an event: a core
 * that grew a thirteenth line (16 bytes of counters) cost ~5% more time at
 * 10,000 nodes. It has eleven since its logarithms became a shared table. */
_Static_assert(sizeof(struct member_core) <= 11 * 64, "a core must stay within 11 lines");

static struct suspicion *susp_at(const struct member_core *c, uint16_t i)
{
	return pool_at(&c->susp_pool, i);
}

/* --- member table -------------------------------------------------------------- */

static struct member *find(const struct member_core *c, uint32_t gid)
{
	if (gid >= c->tab_cap)
		return NULL;
	struct member *m = &c->tab[gid];
	return m->state == ST_NONE ? NULL : m;
}

static bool gone_state(uint8_t state)
{
	return state == MEMBER_DEAD || state == MEMBER_LEFT;
}

static bool gone_test(const struct member_core *c, uint32_t gid)
{
	return (c->gone[gid >> 6] >> (gid & 63)) & 1;
}

/* Keeps gid's bit in step with its entry's state (every write of a
 * state goes through here). */
static void gone_track(struct member_core *c, const struct member *m)
{
	size_t gid = (size_t)(m - c->tab);
	/* (a death cancels its suspicion first: accusation_gone relies on it) */
	assert(!gone_state(m->state) || m->susp == NONE16);
	uint64_t bit = UINT64_C(1) << (gid & 63);
	if (gone_state(m->state))
		c->gone[gid >> 6] |= bit;
	else
		c->gone[gid >> 6] &= ~bit;
}

/* Sizes the gone bits for a table of `gids` entries whose first `keep`
 * entries are kept (the rest are new, unknown: no bit). */
static int gone_resize(struct member_core *c, size_t gids, size_t keep)
{
	size_t words = (gids + 63) / 64, kept = (keep + 63) / 64;
	uint64_t *g = realloc(c->gone, (words ? words : 1) * sizeof(*g));
	if (!g)
		return SHOAL_ENOMEM;
	if (kept < words)
		memset(g + kept, 0, (words - kept) * sizeof(*g));
	if (keep % 64)
		g[kept - 1] &= (UINT64_C(1) << (keep % 64)) - 1;
	c->gone = g;
	return 0;
}

static void tab_init(struct member *t, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].bc_slot = NONE16;
		t[i].susp = NONE16;
		t[i].state = ST_NONE;
	}
}

/* Grows the table to cover gids below `gids` (into memory of its own if it
 * was in the caller's). */
static int tab_reserve(struct member_core *c, size_t gids)
{
	if (gids <= c->tab_cap)
		return 0;
	assert(gids <= GIDS_MAX);
	if (gone_resize(c, gids, c->tab_cap) != 0)
		return SHOAL_ENOMEM;
	struct member *t;
	if (c->tab_owned) {
		t = realloc(c->tab, gids * sizeof(*t));
	} else {
		t = malloc(gids * sizeof(*t));
		if (t && c->tab_cap)
			memcpy(t, c->tab, c->tab_cap * sizeof(*t));
	}
	if (!t)
		return SHOAL_ENOMEM;
	tab_init(t, c->tab_cap, gids);
	c->tab = t;
	c->tab_cap = gids;
	c->tab_owned = true;
	return 0;
}

static int order_reserve(struct member_core *c, size_t n)
{
	if (n <= c->order_cap)
		return 0;
	assert(n <= SHOAL_MEMBERS_MAX);
	uint16_t *o;
	if (c->order_owned) {
		o = realloc(c->order, n * sizeof(*o));
	} else {
		o = malloc(n * sizeof(*o));
		if (o && c->count)
			memcpy(o, c->order, c->count * sizeof(*o));
	}
	if (!o)
		return SHOAL_ENOMEM;
	c->order = o;
	c->order_cap = n;
	c->order_owned = true;
	return 0;
}

int member_core_reserve(struct member_core *c, size_t members)
{
	if (members > SHOAL_MEMBERS_MAX)
		return SHOAL_ETOOBIG;
	size_t gids = member_dir_count(c->dir);
	if (gids < members)
		gids = members;
	if (tab_reserve(c, gids) != 0 || order_reserve(c, members) != 0)
		return SHOAL_ENOMEM;
	return 0;
}

size_t member_core_tables_bytes(size_t members)
{
	return members * sizeof(struct member) + members * sizeof(uint16_t);
}

int member_core_reserve_in(struct member_core *c, size_t members, void *mem, size_t bytes)
{
	if (members > SHOAL_MEMBERS_MAX || members < c->count ||
	    bytes < member_core_tables_bytes(members))
		return SHOAL_ETOOBIG;
	for (size_t i = 0; i < c->count; i++)
		if (c->order[i] >= members)
			return SHOAL_ETOOBIG; /* a known gid would not fit */
	if ((uintptr_t)mem % 8 != 0)
		return SHOAL_EINVAL;
	struct member *t = mem;
	uint16_t *o = (uint16_t *)(t + members);
	size_t keep = c->tab_cap < members ? c->tab_cap : members;
	if (gone_resize(c, members, keep) != 0)
		return SHOAL_ENOMEM;
	memcpy(t, c->tab, keep * sizeof(*t));
	tab_init(t, keep, members);
	memcpy(o, c->order, c->count * sizeof(*o));
	if (c->tab_owned)
		free(c->tab);
	if (c->order_owned)
		free(c->order);
	c->tab = t;
	c->tab_cap = members;
	c->tab_owned = false;
	c->order = o;
	c->order_cap = members;
	c->order_owned = false;
	return 0;
}

/* Whether m was left out of est_nodes when it was last recounted: dead or
 * left, and for longer than gossip_to_the_dead_ms by then. */
static bool est_excluded(const struct member_core *c, const struct member *m)
{
	if (m->state != MEMBER_DEAD && m->state != MEMBER_LEFT)
		return false;
	uint64_t since = since_get(m);
	return c->est_at != TIME_NEVER && c->est_at >= since &&
	       c->est_at - since > c->cfg.gossip_to_the_dead_ms;
}

/* memberlist's resetNodes: at the end of a probe round, the estimate drops
 * the members dead or left for longer than gossip_to_the_dead_ms. */
static void est_recount(struct member_core *c, uint64_t now)
{
	c->est_at = now;
	size_t n = 0;
	for (size_t i = 0; i < c->count; i++)
		n += !est_excluded(c, &c->tab[c->order[i]]);
	c->est_nodes = n;
}

/* Moves the live/dead counters from state `from` to `to`. */
static void count_state(struct member_core *c, uint8_t from, uint8_t to)
{
	if (from == MEMBER_ALIVE || from == MEMBER_SUSPECT) {
		assert(c->live_count > 0);
		c->live_count--;
	} else if (from == MEMBER_DEAD) {
		assert(c->dead_count > 0);
		c->dead_count--;
	}
	if (to == MEMBER_ALIVE || to == MEMBER_SUSPECT)
		c->live_count++;
	else if (to == MEMBER_DEAD)
		c->dead_count++;
}

/* Every state change of a known member goes through here. */
static void set_state(struct member_core *c, struct member *m, uint8_t state, uint64_t now)
{
	assert(m->state != ST_NONE);
	assert(state <= MEMBER_LEFT);
	/* Back from the dead after the estimate left it out: memberlist would
	 * meet it as a new node. */
	if ((state == MEMBER_ALIVE || state == MEMBER_SUSPECT) && est_excluded(c, m))
		c->est_nodes++;
	count_state(c, m->state, state);
	m->state = state;
	gone_track(c, m);
	since_set(m, now);
}

/* Fills gid's entry and puts it at a random place of the probe order; the
 * caller has made room and keeps the counters. */
static struct member *member_place(struct member_core *c, uint32_t gid,
				   uint32_t incarnation, uint8_t state, uint64_t now)
{
	struct member *m = &c->tab[gid];
	m->incarnation = incarnation;
	m->bc_slot = NONE16;
	m->susp = NONE16;
	m->state = state;
	gone_track(c, m);
	since_set(m, now);
	size_t at = c->count++;
	c->order[at] = (uint16_t)gid;
	size_t r = (size_t)rng_below(&c->rng, c->count);
	c->order[at] = c->order[r];
	c->order[r] = (uint16_t)gid;
	return m;
}

/* Adds a member at a random position of the probe order (as memberlist
 * does, so a new member is probed soon but not predictably). */
static struct member *member_add(struct member_core *c, uint32_t gid,
				 uint32_t incarnation, uint8_t state, uint64_t now)
{
	assert(find(c, gid) == NULL);
	assert(gid < GIDS_MAX);
	if (c->count >= SHOAL_MEMBERS_MAX)
		return NULL;
	if (gid >= c->tab_cap) {
		size_t want = c->tab_cap + c->tab_cap / 2 + 16;
		if (want < (size_t)gid + 1)
			want = (size_t)gid + 1;
		if (want > GIDS_MAX)
			want = GIDS_MAX;
		if (tab_reserve(c, want) != 0)
			return NULL;
	}
	if (c->count == c->order_cap) {
		size_t want = c->order_cap + c->order_cap / 2 + 16;
		if (want > SHOAL_MEMBERS_MAX)
			want = SHOAL_MEMBERS_MAX;
		if (order_reserve(c, want) != 0)
			return NULL;
	}
	count_state(c, ST_NONE, state);
	c->est_nodes++;
	return member_place(c, gid, incarnation, state, now);
}

static void shuffle_members(struct member_core *c)
{
	for (size_t i = c->count; i > 1; i--) {
		size_t j = (size_t)rng_below(&c->rng, i);
		uint16_t tmp = c->order[i - 1];
		c->order[i - 1] = c->order[j];
		c->order[j] = tmp;
	}
}

/* --- output queue ----------------------------------------------------------- */

static struct out_item *out_push(struct member_core *c, enum member_out_kind kind)
{
	if (c->outq_len - c->outq_head >= SHOAL_OUTBOX_COUNT_MAX) {
		c->stats.outbox_dropped++;
		return NULL;
	}
	if (c->outq_len == c->outq_cap) {
		if (c->outputs_shared) {
			/* Sized so that the bound above comes first. */
			c->stats.outbox_dropped++;
			return NULL;
		}
		size_t cap = c->outq_cap ? c->outq_cap * 2 : 8;
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
		if (c->outputs_shared)
			return NULL; /* sized for every output a call may queue */
		/* Grow by half, in whole KiB: most calls emit one to four
		 * packets, and 10,000 cores each keep their arena. */
		size_t cap = c->arena_cap + c->arena_cap / 2;
		if (cap < c->arena_len + n)
			cap = c->arena_len + n;
		cap = (cap + 1023) & ~(size_t)1023;
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
		       uint32_t gid, const struct member *m, uint8_t prev)
{
	struct out_item *o = out_push(c, MEMBER_OUT_EVENT);
	if (!o)
		return;
	o->ev.kind = kind;
	o->ev.gid = gid;
	o->ev.incarnation = m->incarnation;
	o->ev.prev_state = (enum member_state)prev;
}

/* --- broadcasts (memberlist's TransmitLimitedQueue) ------------------------ */

static uint32_t retransmit_limit(const struct member_core *c)
{
	/* retransmit_mult * ceil(log10(n + 1)), which is n's number of
	 * digits */
	size_t n = c->est_nodes;
	uint32_t digits = 0;
	while (n > 0) {
		digits++;
		n /= 10;
	}
	uint32_t limit = c->cfg.retransmit_mult * digits;
	return limit < TIERS_MAX - 1 ? limit : TIERS_MAX - 1;
}

/* The spare class of a vector of cap items (TIER_KEEP << k). */
static unsigned spare_class(uint32_t cap)
{
	unsigned k = (unsigned)__builtin_ctz(cap / TIER_KEEP);
	assert(cap >= TIER_KEEP && (cap & (cap - 1)) == 0);
	assert(k < SPARE_CLASSES);
	return k;
}

/* A vector of cap items: a spare one if the directory keeps one. */
static struct bcast *tier_vec_take(struct member_dir *d, uint32_t cap)
{
	unsigned k = spare_class(cap);
	struct spare_vec *v = d->spare[k];
	if (!v)
		return malloc((size_t)cap * sizeof(struct bcast));
	d->spare[k] = v->next;
	d->spare_bytes -= (size_t)cap * sizeof(struct bcast);
	return (struct bcast *)(void *)v;
}

/* Gives back a vector of cap items: kept as a spare while the directory
 * has room for it, else freed. */
static void tier_vec_give(struct member_dir *d, struct bcast *v, uint32_t cap)
{
	if (!v)
		return;
	size_t bytes = (size_t)cap * sizeof(struct bcast);
	if (d->spare_bytes + bytes > d->spare_bytes_max) {
		free(v);
		return;
	}
	_Static_assert(TIER_KEEP * sizeof(struct bcast) >= sizeof(struct spare_vec),
		       "a spare vector holds its link");
	struct spare_vec *s = (struct spare_vec *)(void *)v;
	unsigned k = spare_class(cap);
	s->next = d->spare[k];
	d->spare[k] = s;
	d->spare_bytes += bytes;
}

/* Gives tier q a vector of cap items, keeping its len items: from the
 * directory's spares (the old one given back to them) when it keeps any,
 * else by realloc. Returns 0 or SHOAL_ENOMEM (q unchanged). */
static int tier_resize(struct member_core *c, struct tier *q, uint32_t cap)
{
	assert(q->len <= cap);
	if (c->dir->spare_bytes_max == 0) {
		struct bcast *v = realloc(q->v, (size_t)cap * sizeof(*v));
		if (!v)
			return SHOAL_ENOMEM;
		q->v = v;
		q->cap = cap;
		return 0;
	}
	struct bcast *v = tier_vec_take(c->dir, cap);
	if (!v)
		return SHOAL_ENOMEM;
	if (q->len)
		memcpy(v, q->v, (size_t)q->len * sizeof(*v));
	tier_vec_give(c->dir, q->v, q->cap);
	q->v = v;
	q->cap = cap;
	return 0;
}

/* Drops the holes of tier t, keeping the order. */
static void tier_compact(struct member_core *c, struct tier *q)
{
	uint32_t j = 0;
	for (uint32_t i = 0; i < q->len; i++) {
		if (q->v[i].kind == 0)
			continue;
		q->v[j] = q->v[i];
		c->bslots[q->v[j].slot].pos = (uint16_t)j;
		j++;
	}
	assert(j == q->live);
	q->len = j;
}

/* Makes room for one more broadcast in tier t (creating tiers up to t,
 * compacting or growing its vector). Returns 0 or SHOAL_ENOMEM. */
static int tier_make_room(struct member_core *c, uint32_t t)
{
	assert(t < TIERS_MAX);
	if (t >= c->tiers_count) {
		size_t count = (size_t)t + 1;
		struct tier *n = realloc(c->tiers, count * sizeof(*n));
		if (!n)
			return SHOAL_ENOMEM;
		memset(n + c->tiers_count, 0, (count - c->tiers_count) * sizeof(*n));
		c->tiers = n;
		c->tiers_count = count;
	}
	struct tier *q = &c->tiers[t];
	if (q->len == q->cap) {
		if (q->live * 2 <= q->len && q->len > 0) {
			tier_compact(c, q);
		} else {
			uint32_t cap = q->cap ? q->cap * 2 : TIER_KEEP;
			if (cap > SHOAL_BROADCASTS_MAX)
				cap = SHOAL_BROADCASTS_MAX;
			if (cap <= q->cap)
				return SHOAL_ENOMEM;
			return tier_resize(c, q, cap);
		}
	}
	return 0;
}

/* Appends b as the newest of tier t and points its slot at it. Returns 0
 * or SHOAL_ENOMEM. */
static inline int tier_append(struct member_core *c, uint32_t t, const struct bcast *b)
{
	assert(b->kind != 0 && b->slot < c->bslots_cap);
	if ((t >= c->tiers_count || c->tiers[t].len == c->tiers[t].cap) &&
	    tier_make_room(c, t) != 0)
		return SHOAL_ENOMEM;
	struct tier *q = &c->tiers[t];
	assert(q->len < q->cap);
	struct bslot *s = &c->bslots[b->slot];
	s->tier = (uint8_t)t;
	s->pos = (uint16_t)q->len;
	q->v[q->len++] = *b;
	q->live++;
	if (t < c->tiers_low)
		c->tiers_low = t;
	return 0;
}

/* After items of tier t became holes: drops trailing holes, and gives
 * memory back from a tier that is mostly empty: a wave of broadcasts passes
 * through every tier in turn, and 10,000 cores each keeping every tier at
 * its peak would hold the wave many times over. */
static void tier_settle(struct member_core *c, uint32_t t)
{
	struct tier *q = &c->tiers[t];
	while (q->len > 0 && q->v[q->len - 1].kind == 0)
		q->len--;
	if (q->live == 0) {
		assert(q->len == 0);
		/* A vector of the first size stays: single broadcasts pass
		 * through every tier in turn, and freeing and allocating it at
		 * each step was a malloc and a free per transmission. */
		if (q->cap > TIER_KEEP) {
			tier_vec_give(c->dir, q->v, q->cap);
			q->v = NULL;
			q->cap = 0;
		}
	} else if (q->live * 4 < q->cap && q->cap > 32) {
		/* Compacting rewrites each moved member's table entry (a
		 * random write each): only when the items do not fit the
		 * smaller vector as they are. */
		if (q->len > q->cap / 2)
			tier_compact(c, q);
		(void)tier_resize(c, q, q->cap / 2); /* on failure it stays larger */
	}
}

/* Takes the broadcast at (t, pos) out of its tier; its slot and its
 * member's link are the caller's to free and clear. */
static void tier_remove(struct member_core *c, uint32_t t, uint32_t pos)
{
	struct tier *q = &c->tiers[t];
	/* (The item itself is not checked: reading it waits for its line,
	 * where the write alone does not, and that wait was 3-5% of a
	 * 10,000-node run's time. tier_compact checks the live count.) */
	assert(pos < q->len);
	q->v[pos].kind = 0;
	q->live--;
	tier_settle(c, t);
}

/* A free broadcast slot, or NONE16 (none left, or no memory for more). */
static uint16_t bslot_take(struct member_core *c)
{
	if (c->bslot_free == NONE16) {
		uint32_t cap = c->bslots_cap ? c->bslots_cap * 2 : 16;
		if (cap > SHOAL_BROADCASTS_MAX)
			cap = SHOAL_BROADCASTS_MAX;
		if (cap <= c->bslots_cap)
			return NONE16;
		struct bslot *v = realloc(c->bslots, (size_t)cap * sizeof(*v));
		if (!v)
			return NONE16;
		/* the new ones, linked lowest first */
		for (uint32_t i = c->bslots_cap; i < cap; i++) {
			v[i].pos = (uint16_t)(i + 1 < cap ? i + 1 : NONE16);
			v[i].tier = 0;
			v[i].pad = 0;
		}
		c->bslot_free = (uint16_t)c->bslots_cap;
		c->bslots = v;
		c->bslots_cap = cap;
	}
	uint16_t s = c->bslot_free;
	c->bslot_free = c->bslots[s].pos;
	return s;
}

static void bslot_give(struct member_core *c, uint16_t s)
{
	assert(s < c->bslots_cap);
	c->bslots[s].pos = c->bslot_free;
	c->bslot_free = s;
}

/* Drops m's queued broadcast, if any. */
static void bcast_release(struct member_core *c, struct member *m)
{
	if (m->bc_slot == NONE16)
		return;
	const struct bslot *s = &c->bslots[m->bc_slot];
	tier_remove(c, s->tier, s->pos);
	bslot_give(c, m->bc_slot);
	m->bc_slot = NONE16;
	assert(c->bc_count > 0);
	c->bc_count--;
}

/* Starts loading the queued broadcast in slot `slot` (bcast_release will
 * write it), if the slot holds one. */
static void bcast_prefetch(const struct member_core *c, uint16_t slot)
{
	if (slot >= c->bslots_cap)
		return;
	const struct bslot *sl = &c->bslots[slot];
	if (sl->tier < c->tiers_count && sl->pos < c->tiers[sl->tier].len)
		__builtin_prefetch(&c->tiers[sl->tier].v[sl->pos], 1);
}

/* Queues a broadcast about m, replacing any older one about the same member. */
static void broadcast(struct member_core *c, uint32_t gid, struct member *m, uint8_t kind,
		      uint32_t incarnation, uint32_t from_gid, uint64_t now)
{
	assert(m == find(c, gid));
	bcast_release(c, m);
	if (c->bc_count >= SHOAL_BROADCASTS_MAX) {
		c->stats.broadcasts_dropped++;
		return;
	}
	struct bcast b;
	memset(&b, 0, sizeof(b));
	b.gid = (uint16_t)gid;
	b.incarnation = incarnation;
	b.from_gid = (uint16_t)from_gid;
	b.kind = kind;
	b.slot = bslot_take(c);
	if (b.slot == NONE16) {
		c->stats.broadcasts_dropped++;
		return;
	}
	if (tier_append(c, 0, &b) != 0) {
		bslot_give(c, b.slot);
		c->stats.broadcasts_dropped++;
		return;
	}
	m->bc_slot = b.slot;
	c->bc_count++;
	if (c->next_gossip_ms == TIME_NEVER) {
		/* Keep a free-running phase, as memberlist's ticker does: a new
		 * broadcast waits half an interval on average, not a whole one. */
		uint64_t iv = c->cfg.gossip_interval_ms;
		c->next_gossip_ms = now + iv - (now - c->gossip_origin_ms) % iv;
	}
}

static void copy_label(char *dst, const char *src, size_t max)
{
	size_t n = strnlen(src, max);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Fills the node fields of an ALIVE message (only what the encoder reads). */
static void fill_node_msg(const struct member_core *c, uint32_t gid, struct wire_msg *w)
{
	const struct member_identity *id = member_dir_get(c->dir, gid);
	assert(id);
	memcpy(w->id, id->id, SHOAL_NODE_ID_BYTES);
	w->addr = id->addr;
	copy_label(w->name, id->name, SHOAL_NAME_BYTES_MAX);
	w->tags_count = id->tags_count;
	for (uint8_t t = 0; t < id->tags_count; t++)
		copy_label(w->tags[t], id->tags[t], SHOAL_TAG_BYTES_MAX);
}

/* Appends accusation b (SUSPECT, DEAD) to w, straight from the directory's
 * ids (or, in the simulator's form, gids); false if it does not fit. Inline:
 * nearly every message a packet carries is one. */
static inline bool put_accusation(const struct member_core *c, const struct bcast *b,
				  struct wr *w, size_t *saved)
{
	if (w->len + *saved + WIRE_ACCUSATION_BYTES > w->cap)
		return false;
	if (c->sim_gids) {
		wire_put_sim_accusation(w, b->kind, b->incarnation, b->gid, b->from_gid);
		*saved += WIRE_SIM_SAVED;
	} else {
		wire_put_accusation(w, b->kind, b->incarnation, dir_id(c->dir, b->gid),
				    dir_id(c->dir, b->from_gid));
	}
	return true;
}

/* Appends ALIVE broadcast b to w, built in m; false if it does not fit
 * (sized before it is written). */
__attribute__((noinline))
static bool put_alive(const struct member_core *c, const struct bcast *b, struct wr *w,
		      size_t saved, struct wire_msg *m)
{
	assert(b->kind == BC_ALIVE);
	m->type = b->kind;
	m->incarnation = b->incarnation;
	fill_node_msg(c, b->gid, m);
	if (w->len + saved + wire_msg_size(m) > w->cap)
		return false;
	wire_put_msg(w, m);
	return true;
}

static inline bool bcast_encode(const struct member_core *c, const struct bcast *b,
				struct wr *w, size_t *saved, struct wire_msg *m)
{
	return b->kind != BC_ALIVE ? put_accusation(c, b, w, saved) : put_alive(c, b, w, *saved, m);
}

/* A broadcast's hint (member_out.hints): its subject's gid, and its
 * accuser's for an accusation (SUSPECT, DEAD carry one), so that the
 * receiver need not look the accuser's id up either. */
static uint32_t bcast_hint(const struct bcast *b)
{
	uint32_t by = b->kind != BC_ALIVE ? b->from_gid : MEMBER_HINT_NONE;
	return b->gid | by << 16;
}

/* Appends queued broadcasts that fit into w, fewest transmits first and
 * newest first within a count; returns how many were added. *saved: the
 * bytes the simulator's form has saved so far (sizes are the wire's).
 *
 * Our own broadcast (a refutation, a join announcement, a leave) goes
 * first, whatever its count: no one else can send it, and under load
 * (at 20% loss a node's queue fills faster than packets drain it) newer
 * news about others kept it waiting while the accusation it answers timed
 * out. memberlist orders its own the same as others'; this is the one
 * departure, and it changes what a packet carries, not what anyone
 * accepts. */
static unsigned add_broadcasts(struct member_core *c, struct wr *w, size_t *saved,
			       unsigned room_msgs, uint32_t *gids)
{
	if (!c->bc_count)
		return 0; /* (without reading the empty tiers) */
	uint32_t limit = retransmit_limit(c);
	unsigned added = 0;
	/* The sent ones, in the order sent, and the tier each came from. */
	struct bcast moved[SHOAL_MSGS_PER_PACKET_MAX];
	uint8_t from_tier[SHOAL_MSGS_PER_PACKET_MAX];
	/* The tiers they came from, each once. */
	uint8_t left[SHOAL_MSGS_PER_PACKET_MAX];
	unsigned left_count = 0;
	uint64_t listed[TIERS_MAX / 64] = {0};
	unsigned misfits = 0;
	enum { MISFITS_MAX = 8, AHEAD = 6 };
	struct wire_msg m;
	const struct member *me = &c->tab[c->self_gid];
	/* A sent broadcast becomes a hole where it was at once: the walk
	 * skips holes, and positions stay valid while nothing is appended. */
#define TAKE(q_, b_, t_)                                                      \
	do {                                                                  \
		gids[added] = bcast_hint(b_);                                 \
		from_tier[added] = (uint8_t)(t_);                             \
		moved[added++] = *(b_);                                       \
		(b_)->kind = 0;                                               \
		(q_)->live--;                                                 \
		if (!(listed[(t_) / 64] & (UINT64_C(1) << ((t_) % 64)))) {   \
			listed[(t_) / 64] |= UINT64_C(1) << ((t_) % 64);      \
			left[left_count++] = (uint8_t)(t_);                   \
		}                                                             \
	} while (0)
	if (me->bc_slot != NONE16 && room_msgs > 0) {
		const struct bslot *s = &c->bslots[me->bc_slot];
		struct tier *q = &c->tiers[s->tier];
		struct bcast *b = &q->v[s->pos];
		if (bcast_encode(c, b, w, saved, &m))
			TAKE(q, b, s->tier);
	}
	bool low_found = false;
	for (uint32_t t = c->tiers_low; t < limit && t < c->tiers_count && added < room_msgs; t++) {
		struct tier *q = &c->tiers[t];
		if (q->live == 0)
			continue;
		if (!low_found) {
			c->tiers_low = t; /* every tier below is empty */
			low_found = true;
		}
		/* The next tier's end: the items sent from this one are
		 * appended there, and the walk may go on to its newest. */
		if (t + 1 < c->tiers_count && c->tiers[t + 1].v) {
			const struct tier *nq = &c->tiers[t + 1];
			__builtin_prefetch(&nq->v[nq->len], 1);
			if (nq->len)
				__builtin_prefetch(&nq->v[nq->len - 1]);
		}
		/* The slots the moves will update, loaded a few items ahead
		 * of the walk (the first ones now). A hole's stale slot costs
		 * a useless prefetch, nothing else. */
		for (uint32_t p = q->len; p-- > 0 && p + AHEAD >= q->len;)
			__builtin_prefetch(&c->bslots[q->v[p].slot], 1);
		for (uint32_t p = q->len; p-- > 0 && added < room_msgs;) {
			struct bcast *b = &q->v[p];
			if (p >= AHEAD)
				__builtin_prefetch(&c->bslots[b[-AHEAD].slot], 1);
			if (b->kind == 0)
				continue;
			if (bcast_encode(c, b, w, saved, &m))
				TAKE(q, b, t);
			else if (++misfits >= MISFITS_MAX ||
				 w->cap - (w->len + *saved) < WIRE_ACCUSATION_BYTES)
				/* The packet is as good as full (not even an
				 * accusation, the smallest broadcast, fits): stop
				 * walking the queue (it may hold thousands). */
				goto done;
		}
	}
#undef TAKE
done:;
	/* Each sent one becomes the newest of the next tier, in the order
	 * sent (appending may compact a tier: the positions of the walk are
	 * no longer needed); one that has been sent `limit` times, or finds
	 * no room, is forgotten by its member. Runs from one tier go to the
	 * same tier: its length and capacity are kept in hand for a run. */
	for (unsigned k = 0; k < added;) {
		uint32_t t = (uint32_t)from_tier[k] + 1;
		unsigned end = k + 1;
		while (end < added && from_tier[end] == from_tier[k])
			end++;
		if (t < limit && t < c->tiers_count && c->tiers[t].v) {
			struct tier *q = &c->tiers[t];
			uint32_t len = q->len, cap = q->cap;
			struct bcast *v = q->v;
			/* (each moved item is a live broadcast taken by the
			 * walk, whose slot tier_append checked when it was
			 * queued: the hottest loop of a run does not check
			 * it again) */
			for (; k < end && len < cap; k++) {
				struct bslot *sl = &c->bslots[moved[k].slot];
				sl->tier = (uint8_t)t;
				sl->pos = (uint16_t)len;
				v[len++] = moved[k];
			}
			q->live += len - q->len;
			q->len = len;
		}
		for (; k < end; k++) {
			if (t >= limit || tier_append(c, t, &moved[k]) != 0) {
				bslot_give(c, moved[k].slot);
				c->tab[moved[k].gid].bc_slot = NONE16;
				c->bc_count--;
			}
		}
	}
	/* Each tier left, once. */
	for (unsigned i = 0; i < left_count; i++)
		tier_settle(c, left[i]);
	return added;
}

/* --- sending --------------------------------------------------------------- */

/* A shared output space: the output items, each packet's subject hints
 * (a row of SHOAL_MSGS_PER_PACKET_MAX per output item), then the packets'
 * bytes. */
static size_t share_items_bytes(void)
{
	size_t b = (size_t)SHOAL_OUTBOX_COUNT_MAX * sizeof(struct out_item);
	return (b + 63) & ~(size_t)63;
}

static size_t share_hints_bytes(void)
{
	size_t b = (size_t)SHOAL_OUTBOX_COUNT_MAX * SHOAL_MSGS_PER_PACKET_MAX * sizeof(uint32_t);
	return (b + 63) & ~(size_t)63;
}

/* The hints row of output item i (shared outputs only). */
static uint32_t *shared_hints(const struct member_core *c, size_t i)
{
	assert(c->outputs_shared && i < SHOAL_OUTBOX_COUNT_MAX);
	return (uint32_t *)(void *)((uint8_t *)c->outq + share_items_bytes()) +
	       i * SHOAL_MSGS_PER_PACKET_MAX;
}

/* Sends msgs (n of them) to `to`, with piggybacked broadcasts in the
 * rest of the payload if `piggyback`. */
static void send_packet(struct member_core *c, const struct shoal_addr *to,
			uint32_t to_gid, const struct wire_msg *msgs, unsigned n,
			bool piggyback)
{
	size_t off;
	uint8_t *buf = arena_alloc(c, c->cfg.payload_bytes_max, &off);
	if (!buf) {
		c->stats.outbox_dropped++;
		return;
	}
	struct wr w = wr_init(buf, c->cfg.payload_bytes_max);
	wr_u8(&w, c->sim_gids ? WIRE_VERSION_SIM : WIRE_VERSION);
	wr_u8(&w, 0); /* count, patched below */
	size_t saved = 0; /* by the simulator's form: every size is the wire's */
	for (unsigned i = 0; i < n; i++) {
		const struct wire_msg *m = &msgs[i];
		if (c->sim_gids && (m->type == WIRE_SUSPECT || m->type == WIRE_DEAD)) {
			/* (the callers take both ids from the directory) */
			uint32_t g = member_dir_find(c->dir, m->id);
			uint32_t by = member_dir_find(c->dir, m->from_id);
			assert(g <= UINT16_MAX && by <= UINT16_MAX);
			wire_put_sim_accusation(&w, m->type, m->incarnation, (uint16_t)g,
						(uint16_t)by);
			saved += WIRE_SIM_SAVED;
		} else {
			wire_put_msg(&w, m);
		}
	}
	assert(wr_ok(&w));
	uint32_t gids[SHOAL_MSGS_PER_PACKET_MAX];
	unsigned added = piggyback
		? add_broadcasts(c, &w, &saved, SHOAL_MSGS_PER_PACKET_MAX - n, gids) : 0;
	unsigned total = n + added;
	if (total == 0) {
		c->arena_len = off; /* nothing to send; give the space back */
		return;
	}
	if (c->outputs_shared && c->outq_len < SHOAL_OUTBOX_COUNT_MAX) {
		/* (outq_cap is that bound when shared; it is on a cold line.) */
		/* The subjects' gids, in the row of the output this packet
		 * becomes (out_push takes index outq_len). */
		uint32_t *row = shared_hints(c, c->outq_len);
		for (unsigned i = 0; i < n; i++)
			row[i] = MEMBER_HINTS_NONE;
		memcpy(row + n, gids, added * sizeof(*gids));
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
	c->stats.packet_bytes_sent += w.len + saved;
}

/* Sends msgs (n of them) to `to`, filling the rest of the payload with
 * piggybacked broadcasts. */
static void send_msgs(struct member_core *c, const struct shoal_addr *to,
		      uint32_t to_gid, const struct wire_msg *msgs, unsigned n)
{
	send_packet(c, to, to_gid, msgs, n, true);
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

/* Fills m with our accusation (SUSPECT or DEAD) of member gid at inc: what
 * we tell a member about itself (the buddy system, a dead or suspect
 * sender, an unconfirmed suspicion put to it). */
static void our_accusation(const struct member_core *c, struct wire_msg *m, uint8_t type,
			   uint32_t gid, uint32_t inc)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->incarnation = inc;
	memcpy(m->id, dir_id(c->dir, gid), SHOAL_NODE_ID_BYTES);
	memcpy(m->from_id, dir_id(c->dir, c->self_gid), SHOAL_NODE_ID_BYTES);
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

static void sheap_up(struct member_core *c, size_t i)
{
	uint64_t key = c->sheap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (c->sheap[p] <= key)
			break;
		c->sheap[i] = c->sheap[p];
		i = p;
	}
	c->sheap[i] = key;
}

static void sheap_down(struct member_core *c, size_t i)
{
	uint64_t key = c->sheap[i];
	size_t n = c->sheap_len;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= n)
			break;
		size_t m = (l + 1 < n && c->sheap[l + 1] < c->sheap[l]) ? l + 1 : l;
		if (key <= c->sheap[m])
			break;
		c->sheap[i] = c->sheap[m];
		i = m;
	}
	c->sheap[i] = key;
}

static void sheap_pop(struct member_core *c)
{
	assert(c->sheap_len > 0);
	c->sheap[0] = c->sheap[--c->sheap_len];
	if (c->sheap_len > 1)
		sheap_down(c, 0);
}

/* A key is current if its slot holds a suspicion with that deadline. (A
 * slot reused by a later suspicion has a later deadline.) */
static bool sheap_current(const struct member_core *c, uint64_t key)
{
	const struct suspicion *s = susp_at(c, (uint16_t)key);
	return susp_used(s) && susp_deadline(s) == key >> SKEY_SHIFT;
}

/* Rebuilds the heap from the live suspicions once stale keys outnumber
 * them, so the heap stays within about twice the suspicions in flight. */
static void sheap_rebuild_if_stale(struct member_core *c)
{
	if (c->sheap_len <= 2 * c->susp_active + 64)
		return;
	size_t n = 0;
	size_t slots = c->susp_pool.chunks_count * POOL_CHUNK;
	for (size_t i = 0; i < slots; i++) {
		const struct suspicion *s = susp_at(c, (uint16_t)i);
		if (susp_used(s))
			c->sheap[n++] = skey(susp_deadline(s), (uint16_t)i);
	}
	assert(n == c->susp_active);
	c->sheap_len = n;
	for (size_t i = n / 2; i-- > 0;)
		sheap_down(c, i);
}

/* Returns 0, or SHOAL_ENOMEM when the heap cannot grow (nothing changed). */
static int sheap_push(struct member_core *c, uint64_t key)
{
	if (c->sheap_len == c->sheap_cap) {
		size_t cap = c->sheap_cap ? c->sheap_cap * 2 : 16;
		uint64_t *n = realloc(c->sheap, cap * sizeof(*n));
		if (!n)
			return SHOAL_ENOMEM;
		c->sheap = n;
		c->sheap_cap = cap;
	}
	c->sheap[c->sheap_len++] = key;
	sheap_up(c, c->sheap_len - 1);
	return 0;
}

uint64_t member_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t n, uint32_t k)
{
	/* Lifeguard: timeout = max - (max - min) * log(n + 1) / log(k + 1) */
	if (k < 1 || max_ms <= min_ms)
		return min_ms;
	assert(n <= k && k <= CONFIRMERS_MAX);
	double frac = ln_small[n + 1] / ln_small[k + 1];
	double raw = (double)max_ms - frac * (double)(max_ms - min_ms);
	uint64_t t = (uint64_t)raw; /* floor: raw >= min_ms * (1 - 2^-52) > -1 */
	return t < min_ms ? min_ms : t;
}

/* The timeout after n confirmations; never grows with n. */
static uint64_t suspicion_timeout(const struct member_core *c, const struct suspicion *s,
				  uint32_t n)
{
	uint64_t min_ms = s->min_ms;
	uint64_t max_ms = (uint64_t)c->cfg.suspicion_max_timeout_mult * min_ms;
	return member_suspicion_timeout_ms(min_ms, max_ms, n, susp_k(s));
}

/* Takes a free suspicion slot, adding a chunk if needed; NONE16 if full. */
static uint16_t suspicion_take(struct member_core *c)
{
	if (c->susp_free == NONE16) {
		uint32_t first = pool_add_chunk(&c->susp_pool);
		if (first == NONE16)
			return NONE16;
		for (uint32_t i = first + POOL_CHUNK; i > first; i--) {
			struct suspicion *s = susp_at(c, (uint16_t)(i - 1));
			s->k_used = 0;
			s->gid = c->susp_free; /* the free link */
			c->susp_free = (uint16_t)(i - 1);
		}
	}
	uint16_t slot = c->susp_free;
	c->susp_free = susp_at(c, slot)->gid; /* the free link */
	return slot;
}

static void suspicion_start(struct member_core *c, uint32_t gid, struct member *m,
			    uint32_t from_gid, uint64_t now)
{
	assert(m->susp == NONE16);
	uint16_t slot = suspicion_take(c);
	if (slot == NONE16)
		return; /* full: the member stays suspect until refuted or reported dead */
	struct suspicion *s = susp_at(c, slot);
	memset(s, 0, c->susp_pool.item_bytes); /* (not sizeof: susp_item_bytes) */
	s->gid = (uint16_t)gid;
	s->confirmers[0] = (uint16_t)from_gid;

	size_t n = c->est_nodes;
	uint32_t k = c->cfg.suspicion_mult >= 2 ? c->cfg.suspicion_mult - 2 : 0;
	if (n < 2 || n - 2 < k)
		k = 0;
	if (k > CONFIRMERS_MAX)
		k = CONFIRMERS_MAX;
	if (c->susp_min_count != n) {
		/* Recomputed only when the member count has changed. */
		uint64_t min_ms = member_suspicion_min_ms(&c->cfg, n);
		c->susp_min_ms = min_ms < UINT32_MAX ? (uint32_t)min_ms : UINT32_MAX;
		c->susp_min_count = n;
	}
	s->k_used = (uint8_t)(k | SUSP_USED);
	s->min_ms = c->susp_min_ms;
	susp_set_deadline(s, now + suspicion_timeout(c, s, 0));
	if (sheap_push(c, skey(susp_deadline(s), slot)) != 0) {
		s->k_used = 0;
		s->gid = c->susp_free; /* the free link */
		c->susp_free = slot;
		return; /* as when full */
	}
	m->susp = slot;
	c->susp_active++;
	sheap_rebuild_if_stale(c);
}

/* Returns true if from_gid is a new independent confirmation. */
static bool suspicion_confirm(struct member_core *c, struct member *m, uint32_t from_gid)
{
	struct suspicion *s = susp_at(c, m->susp);
	assert(susp_used(s));
	assert(m == find(c, s->gid));
	if (s->n >= susp_k(s))
		return false;
	for (uint32_t i = 0; i <= s->n; i++)
		if (s->confirmers[i] == from_gid)
			return false;
	uint64_t old = susp_deadline(s);
	uint64_t start = old - suspicion_timeout(c, s, s->n);
	s->n++;
	s->confirmers[s->n] = (uint16_t)from_gid;
	uint64_t deadline = start + suspicion_timeout(c, s, s->n);
	assert(deadline <= old);
	if (deadline < old) {
		susp_set_deadline(s, deadline);
		if (sheap_push(c, skey(deadline, m->susp)) != 0)
			susp_set_deadline(s, old); /* keeps its current key */
		sheap_rebuild_if_stale(c);
	}
	return true;
}

static void suspicion_cancel(struct member_core *c, struct member *m)
{
	if (m->susp == NONE16)
		return;
	struct suspicion *s = susp_at(c, m->susp);
	assert(susp_used(s));
	assert(s->gid == (uint16_t)(m - c->tab));
	s->k_used = 0; /* its heap keys go stale */
	s->gid = c->susp_free; /* the free link */
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
	dir_identity_changed(c->dir, gid);
}

/* An extra push-pull JOIN_PUSHPULL_AGAIN_MS from now; the scheduled one
 * still comes (pushpull() returns to it). After a join (merge_done), and
 * when we learn that we were declared dead: we were cut off from the
 * members that declared it, and they from us, so both sides' news of that
 * time (a heal's refutations above all) spread while each held the other
 * dead and gossiped only to its own side. A member whose every copy of one
 * such refutation was lost holds a live member dead until a probe or a
 * scheduled push-pull reaches the two (minutes at scale): 40 of 1,000
 * simulated 150-node partitions (seeds 1-1000) still had one such pair 66 s
 * after the heal, none with this. memberlist has the same tail. Not on
 * refuting a suspicion: under loss that is common, and nobody was cut off.
 * (At most one extra is pending at a time.) */
static void pushpull_soon(struct member_core *c, uint64_t now)
{
	uint64_t soon = now + JOIN_PUSHPULL_AGAIN_MS;
	if (c->live_count > 1 && c->cfg.push_pull_interval_ms && !c->leaving &&
	    soon < c->next_pushpull_ms && c->pushpull_resume_ms == TIME_NEVER) {
		c->pushpull_resume_ms = c->next_pushpull_ms;
		c->next_pushpull_ms = soon;
	}
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
	broadcast(c, c->self_gid, self, BC_ALIVE, inc, c->self_gid, now);
}

/* `gid` is a->id's gid if the caller already looked it up, else NONE32. */
static void on_alive(struct member_core *c, uint32_t gid, const struct wire_msg *a,
		     uint64_t now)
{
	if (gid == NONE32)
		gid = member_dir_intern(c->dir, a->id);
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
		broadcast(c, gid, m, BC_ALIVE, a->incarnation, gid, now);
		emit_event(c, MEMBER_EV_JOIN, gid, m, MEMBER_ALIVE);
		return;
	}
	/* Not newer: only a dead or left member coming back at a new address
	 * counts (memberlist's updatesNode), so compare identities only then. */
	bool gone = m->state == MEMBER_DEAD || m->state == MEMBER_LEFT;
	if (a->incarnation <= m->incarnation && !gone) {
		c->stats.msgs_ignored++;
		return;
	}
	const struct member_identity *id = member_dir_get(c->dir, gid);
	bool changed = identity_differs(id, a);
	if (a->incarnation <= m->incarnation && !changed) {
		c->stats.msgs_ignored++;
		return;
	}
	suspicion_cancel(c, m);
	broadcast(c, gid, m, BC_ALIVE, a->incarnation, gid, now);
	uint8_t prev = m->state;
	m->incarnation = a->incarnation;
	if (changed) {
		identity_store(c, gid, a);
		emit_event(c, MEMBER_EV_UPDATE, gid, m, prev);
	}
	if (m->state != MEMBER_ALIVE) {
		set_state(c, m, MEMBER_ALIVE, now);
		emit_event(c, MEMBER_EV_ALIVE, gid, m, prev);
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
			broadcast(c, gid, m, BC_SUSPECT, inc, from_gid, now);
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
	broadcast(c, gid, m, BC_SUSPECT, inc, from_gid, now);
	uint8_t prev = m->state;
	m->incarnation = inc;
	set_state(c, m, MEMBER_SUSPECT, now);
	emit_event(c, MEMBER_EV_SUSPECT, gid, m, prev);
	suspicion_start(c, gid, m, from_gid, now);
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
		pushpull_soon(c, now); /* we were cut off: see pushpull_soon */
		return;
	}
	suspicion_cancel(c, m);
	broadcast(c, gid, m, BC_DEAD, inc, from_gid, now);
	uint8_t prev = m->state;
	m->incarnation = inc;
	set_state(c, m, from_gid == gid ? MEMBER_LEFT : MEMBER_DEAD, now);
	if (from_gid == c->self_gid && gid != c->self_gid)
		c->stats.deaths_declared++;
	emit_event(c, m->state == MEMBER_LEFT ? MEMBER_EV_LEFT : MEMBER_EV_DEAD, gid, m, prev);
}

/* --- probing ----------------------------------------------------------------- */

/* Whom random_members may pick, as memberlist's callers of kRandomNodes
 * filter: gossip goes to alive and suspect members and to those dead for
 * less than gossip_to_the_dead_ms; indirect probes and push-pulls only to
 * alive ones (a suspect, likely down, would waste a relay and its missing
 * NACK would count against our health). */
enum pick { PICK_ALIVE, PICK_GOSSIP };

enum { DRAWS_AHEAD = 6 };

/* The first draws random_members(c, k, ...) will make, from the generator
 * r (advanced; after[i], if not NULL, is its state after draw i): probe
 * order positions, into pos. Returns how many. */
static size_t draws_ahead(const struct member_core *c, unsigned k, struct rng *r,
			  uint32_t pos[DRAWS_AHEAD], struct rng after[DRAWS_AHEAD])
{
	size_t tries = 3 * c->count;
	size_t batch = (size_t)k + 3;
	if (batch > DRAWS_AHEAD)
		batch = DRAWS_AHEAD;
	if (batch > tries)
		batch = tries;
	for (size_t i = 0; i < batch; i++) {
		pos[i] = (uint32_t)rng_below(r, c->count);
		if (after)
			after[i] = *r;
	}
	return batch;
}

static unsigned gossip_nodes(const struct member_core *c)
{
	return c->cfg.gossip_nodes < 16 ? c->cfg.gossip_nodes : 16;
}

/* Picks up to k distinct random members other than self and `exclude`, of
 * those `pick` allows; bounded at 3 * count tries (as memberlist's
 * kRandomNodes). */
static unsigned random_members(struct member_core *c, unsigned k, uint32_t exclude,
			       enum pick pick, uint64_t now, uint32_t *out)
{
	/* The first few draws are made up front (keeping the generator's
	 * state after each), so that their probe-order slots and then their
	 * table entries load together rather than one after another; the
	 * loop below consumes exactly the draws it would have made. */
	size_t tries = 3 * c->count;
	uint32_t cand[DRAWS_AHEAD];
	struct rng after[DRAWS_AHEAD];
	struct rng r = c->rng;
	size_t batch = draws_ahead(c, k, &r, cand, after);
	for (size_t i = 0; i < batch; i++)
		__builtin_prefetch(&c->order[cand[i]]);
	for (size_t i = 0; i < batch; i++) {
		cand[i] = c->order[cand[i]];
		__builtin_prefetch(&c->tab[cand[i]]);
	}
	unsigned got = 0;
	for (size_t t = 0; t < tries && got < k; t++) {
		uint32_t gid;
		if (t < batch) {
			gid = cand[t];
			c->rng = after[t];
		} else {
			gid = c->order[rng_below(&c->rng, c->count)];
		}
		if (gid == c->self_gid || gid == exclude)
			continue;
		const struct member *m = &c->tab[gid];
		bool ok = m->state == MEMBER_ALIVE;
		if (!ok && pick == PICK_GOSSIP)
			ok = m->state == MEMBER_SUSPECT ||
			     (m->state == MEMBER_DEAD &&
			      now - since_get(m) <= c->cfg.gossip_to_the_dead_ms);
		if (!ok)
			continue;
		bool dup = false;
		for (unsigned i = 0; i < got; i++)
			dup |= out[i] == gid;
		if (!dup)
			out[got++] = gid;
	}
	return got;
}

static void probe_start(struct member_core *c, uint64_t now)
{
	c->stage = PROBE_IDLE;
	c->next_probe_ms = now + c->cfg.probe_interval_ms;
	if (c->leaving)
		return;
	uint32_t target = NONE32;
	for (size_t checked = 0; checked < c->count; checked++) {
		if (c->probe_pos >= c->count) {
			c->probe_pos = 0;
			est_recount(c, now);
			shuffle_members(c);
		}
		uint32_t gid = c->order[c->probe_pos++];
		uint8_t st = c->tab[gid].state;
		if (gid != c->self_gid && (st == MEMBER_ALIVE || st == MEMBER_SUSPECT)) {
			target = gid;
			break;
		}
	}
	if (target == NONE32)
		return;
	const struct member *tm = &c->tab[target];
	uint64_t interval = health_scale(c, c->cfg.probe_interval_ms);
	c->stage = PROBE_DIRECT;
	c->probe_gid = target;
	c->probe_seq = ++c->seq;
	c->probe_acked = false;
	c->probe_stream_ok = false;
	c->nacks_expected = c->nacks_got = 0;
	c->probe_indirect_ms = now + c->cfg.probe_timeout_ms;
	c->probe_end_ms = now + interval;
	c->next_probe_ms = c->probe_end_ms;

	struct wire_msg msgs[2];
	unsigned n = 1;
	memset(msgs, 0, sizeof(msgs));
	msgs[0].type = WIRE_PING;
	msgs[0].seq = c->probe_seq;
	memcpy(msgs[0].id, dir_id(c->dir, target), SHOAL_NODE_ID_BYTES);
	if (tm->state == MEMBER_SUSPECT) {
		/* Lifeguard buddy system: tell a suspect it is suspected. */
		our_accusation(c, &msgs[1], WIRE_SUSPECT, target, tm->incarnation);
		n = 2;
	}
	c->stats.probes_sent++;
	send_msgs(c, addr_of(c, target), target, msgs, n);
}

static void probe_indirect(struct member_core *c, uint64_t now)
{
	assert(c->stage == PROBE_DIRECT);
	c->stage = PROBE_INDIRECT;
	uint32_t peers[16];
	unsigned k = c->cfg.indirect_checks < 16 ? c->cfg.indirect_checks : 16;
	unsigned got = random_members(c, k, c->probe_gid, PICK_ALIVE, now, peers);
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = WIRE_PING_REQ;
	m.seq = c->probe_seq;
	memcpy(m.id, dir_id(c->dir, c->probe_gid), SHOAL_NODE_ID_BYTES);
	m.addr = *addr_of(c, c->probe_gid);
	m.want_nack = true;
	for (unsigned i = 0; i < got; i++) {
		c->stats.indirect_probes_sent++;
		send_one(c, peers[i], addr_of(c, peers[i]), &m);
	}
	c->nacks_expected = got;
	/* memberlist's fallback: ask the member itself over a stream too,
	 * by the probe's end. A member whose datagrams are being lost (a
	 * lossy path, a full socket buffer, a firewall that drops UDP) is
	 * then not suspected for it. (Not when the probe is already over: a
	 * clock that jumped past both stages, after a stall.) */
	if (c->cfg.stream_pings && now < c->probe_end_ms) {
		struct out_item *o = out_push(c, MEMBER_OUT_STREAM_PING);
		if (o) {
			o->to = *addr_of(c, c->probe_gid);
			o->to_gid = c->probe_gid;
			o->seq = c->probe_seq;
			o->deadline_ms = c->probe_end_ms;
			c->stats.stream_pings_sent++;
		}
	}
}

void member_core_stream_ping_done(struct member_core *c, uint32_t seq, uint64_t now_ms)
{
	if (c->stage == PROBE_INDIRECT && seq == c->probe_seq && now_ms < c->probe_end_ms)
		c->probe_stream_ok = true;
}

/* Sends member gid our SUSPECT of it at inc, in a packet of its own: it
 * answers with its current ALIVE if it is up. Alone: the member may well
 * be down, and a broadcast sent to it would count as sent. */
static void accuse_in_person(struct member_core *c, uint32_t gid, uint32_t inc)
{
	struct wire_msg a;
	our_accusation(c, &a, WIRE_SUSPECT, gid, inc);
	send_packet(c, addr_of(c, gid), gid, &a, 1, false);
}

static void probe_end(struct member_core *c, uint64_t now)
{
	assert(c->stage != PROBE_IDLE);
	c->stage = PROBE_IDLE;
	if (c->probe_acked)
		return;
	if (c->probe_stream_ok) {
		/* As memberlist: no suspicion. Unlike memberlist, the health
		 * score is left as it is (only a direct ack lowers it here: a
		 * probe that needed help says something about our own path). */
		c->stats.probes_stream_only++;
		return;
	}
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
	bool raised = m && m->state == MEMBER_ALIVE;
	if (raised)
		c->stats.suspects_raised++;
	if (m)
		on_suspect(c, c->probe_gid, m->incarnation, c->self_gid, now);
	/* Tell the member at once, in person: if it is up (our probes were
	 * lost), it refutes and answers us. Its gossip alone may not reach it
	 * for seconds: under heavy loss every queue is saturated and an
	 * accusation that has gone out once waits behind newer news (at 20%
	 * loss, 1,000 nodes, most false deaths were members that never heard
	 * they were suspected). Lifeguard's buddy system carries a suspicion on
	 * the next probe of the suspect, which at scale may be minutes away. */
	if (raised && m->state == MEMBER_SUSPECT && !c->leaving)
		accuse_in_person(c, c->probe_gid, m->incarnation);
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
	if (c->relays_count == c->relays_cap) {
		size_t cap = c->relays_cap ? c->relays_cap * 2 : 4;
		if (cap > SHOAL_PENDING_PROBES_MAX)
			cap = SHOAL_PENDING_PROBES_MAX;
		struct relay *n = realloc(c->relays, cap * sizeof(*n));
		if (!n) {
			c->stats.msgs_ignored++;
			return;
		}
		c->relays = n;
		c->relays_cap = cap;
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
	unsigned got = random_members(c, gossip_nodes(c), NONE32, PICK_GOSSIP, now, peers);
	for (unsigned i = 0; i < got; i++)
		__builtin_prefetch(addr_of(c, peers[i]));
	for (unsigned i = 0; i < got && c->bc_count; i++)
		send_msgs(c, addr_of(c, peers[i]), peers[i], NULL, 0);
	if (!c->bc_count)
		c->next_gossip_ms = TIME_NEVER;
}

uint64_t member_pushpull_interval_ms(const struct member_config *cfg, size_t members)
{
	/* memberlist's pushPullScale: slower past 32 members, log2 growth */
	uint64_t base = cfg->push_pull_interval_ms;
	if (members <= 32)
		return base;
	/* ceil(log2(n) - log2(32)) + 1 = ceil(log2(n)) - 4, and ceil(log2(n))
	 * is the bit length of n - 1 */
	uint64_t mult = (uint64_t)(64 - __builtin_clzll((unsigned long long)(members - 1))) - 4;
	return mult * base;
}

static void pushpull(struct member_core *c, uint64_t now)
{
	/* (after the extra one that follows a join, the one it came before) */
	c->next_pushpull_ms = c->pushpull_resume_ms != TIME_NEVER && c->pushpull_resume_ms > now
		? c->pushpull_resume_ms : now + member_pushpull_interval_ms(&c->cfg, c->est_nodes);
	c->pushpull_resume_ms = TIME_NEVER;
	if (c->leaving)
		return;
	uint32_t peer;
	if (random_members(c, 1, NONE32, PICK_ALIVE, now, &peer) != 1)
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
	size_t dead = c->dead_count, live = c->live_count;
	if (dead == 0 || (dead < live && rng_below(&c->rng, live) >= dead))
		return;
	size_t pick = (size_t)rng_below(&c->rng, dead);
	for (size_t i = 0; i < c->count; i++) {
		uint32_t gid = c->order[i];
		if (c->tab[gid].state != MEMBER_DEAD || pick-- != 0)
			continue;
		struct out_item *o = out_push(c, MEMBER_OUT_PUSHPULL);
		if (!o)
			return;
		o->to = *addr_of(c, gid);
		o->to_gid = gid;
		c->stats.reconnects_started++;
		return;
	}
	assert(!"dead_count disagrees with the table");
}

static void reclaim(struct member_core *c, uint64_t now)
{
	if (!c->cfg.dead_reclaim_ms)
		return;
	for (size_t i = 0; i < c->count;) {
		uint32_t gid = c->order[i];
		struct member *m = &c->tab[gid];
		if ((m->state == MEMBER_DEAD || m->state == MEMBER_LEFT) &&
		    gid != c->self_gid && now - since_get(m) > c->cfg.dead_reclaim_ms) {
			bcast_release(c, m);
			suspicion_cancel(c, m);
			if (!est_excluded(c, m))
				c->est_nodes--;
			count_state(c, m->state, ST_NONE);
			m->state = ST_NONE;
			gone_track(c, m);
			c->order[i] = c->order[--c->count];
			continue;
		}
		i++;
	}
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
	/* Line-aligned, so that the hot fields take as few lines as they can
	 * (member_core_prefetch). */
	size_t bytes = (sizeof(struct member_core) + 63) & ~(size_t)63;
	struct member_core *c = aligned_alloc(64, bytes);
	if (!c)
		return NULL;
	memset(c, 0, bytes);
	c->cfg = *cfg;
	c->sim_gids = cfg->sim_gids;
	if (c->cfg.awareness_max_multiplier < 1)
		c->cfg.awareness_max_multiplier = 1;
	c->dir = dir;
	rng_seed(&c->rng, seed);
	c->incarnation = incarnation;
	c->susp_free = NONE16;
	c->bslot_free = NONE16;
	c->est_at = TIME_NEVER;
	c->pushpull_resume_ms = TIME_NEVER;
	c->susp_pool.item_bytes = susp_item_bytes(&c->cfg);
	c->susp_pool.items_max = SHOAL_SUSPICIONS_MAX;
	c->self_gid = member_dir_intern(dir, self->id);
	if (c->self_gid == NONE32) {
		member_core_free(c);
		return NULL;
	}
	struct member_identity *me = (struct member_identity *)member_dir_get(dir, c->self_gid);
	*me = *self;
	dir_identity_changed(dir, c->self_gid);
	struct member *m = member_add(c, c->self_gid, incarnation, MEMBER_ALIVE, now_ms);
	if (!m) {
		member_core_free(c);
		return NULL;
	}
	c->next_gossip_ms = TIME_NEVER;
	c->gossip_origin_ms = now_ms - rng_below(&c->rng, cfg->gossip_interval_ms);
	broadcast(c, c->self_gid, m, BC_ALIVE, incarnation, c->self_gid, now_ms);
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
	if (c->tab_owned)
		free(c->tab);
	free(c->gone);
	if (c->order_owned)
		free(c->order);
	pool_free(&c->susp_pool);
	free(c->sheap);
	for (size_t t = 0; t < c->tiers_count; t++)
		free(c->tiers[t].v);
	free(c->tiers);
	free(c->bslots);
	free(c->relays);
	if (!c->outputs_shared) {
		free(c->outq);
		free(c->arena);
	}
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
	assert(find(c, c->self_gid));
	c->incarnation++;
	on_dead(c, c->self_gid, c->incarnation, c->self_gid, now_ms);
	/* Push the news out now rather than at the next gossip tick. */
	gossip(c, now_ms);
	return 0;
}

/* Whether a SUSPECT or DEAD about gid is ignored because we hold gid dead
 * or left, told from its gone bit alone, without its entry: what
 * accusation_ignored says for such a member (a dead or left member has no
 * suspicion), except about ourselves, whose ignored accusations recv looks
 * at further. */
static bool accusation_gone(const struct member_core *c, uint32_t gid)
{
	return gid < c->tab_cap && gid != c->self_gid && gone_test(c, gid);
}

/* Whether a SUSPECT or DEAD about m (NULL: unknown) at inc is ignored
 * whoever sent it: on_suspect's and on_dead's first checks, made before the
 * sender's id is looked up. */
static bool accusation_ignored(const struct member *m, uint8_t type, uint32_t inc)
{
	if (!m || inc < m->incarnation)
		return true;
	if (type == WIRE_DEAD)
		return m->state == MEMBER_DEAD || m->state == MEMBER_LEFT;
	return m->susp == NONE16 && m->state != MEMBER_ALIVE;
}

static bool item_names_subject(const struct wire_item *it)
{
	return it->type == WIRE_ALIVE || it->type == WIRE_SUSPECT || it->type == WIRE_DEAD;
}

static bool item_is_accusation(const struct wire_item *it)
{
	return it->type == WIRE_SUSPECT || it->type == WIRE_DEAD;
}

/* A gid the simulator's form names (WIRE_VERSION_SIM): the directory's, or
 * NONE32 past its end. */
static uint32_t sim_gid(const struct member_dir *d, uint32_t g)
{
	return g < d->count ? g : NONE32;
}

/* Whether a driver's hint (member_out.hints) names the member whose id
 * starts with prefix (prefixes are unique in the directory, so that is the
 * gid a lookup finds). */
static bool dir_hint_matches(const struct member_dir *d, uint32_t hint,
			     const uint8_t prefix[SHOAL_NODE_ID_PREFIX_BYTES])
{
	return hint < d->count && prefix_equal(d->ids[hint], prefix);
}

/* The gid of the member a message names (NONE32 if unknown): an ALIVE's by
 * its id (decoded into m), a SUSPECT's or DEAD's by its id prefix (read in
 * place); hint first, if the driver gave one. */
static uint32_t item_subject_gid(const struct member_dir *d, const struct wire_item *it,
				 const struct wire_msg *m, uint32_t hint)
{
	if (it->type == WIRE_ALIVE)
		return hint < d->count && id_equal(d->ids[hint], m->id) ? hint
								       : member_dir_find(d, m->id);
	const uint8_t *prefix = wire_item_id(it);
	return dir_hint_matches(d, hint, prefix) ? hint : member_dir_find_prefix(d, prefix);
}

int member_core_recv_packet(struct member_core *c,
			    const uint8_t from_id[SHOAL_NODE_ID_BYTES],
			    const struct shoal_addr *from,
			    const uint8_t *payload, size_t len, uint64_t now_ms)
{
	return member_core_recv_packet_hinted(c, from_id, NONE32, from, payload, len, NULL, 0,
					      now_ms);
}

/* Subjects one answer carries at most. */
#define STALE_ANSWERS_MAX 4

/* The sender accuses a third member at an incarnation older than the one
 * we hold alive: it missed that member's refutation. Gossip will not bring
 * the refutation again (everyone who has it has sent it its 4 x log10(n)
 * times), so without an answer its suspicion runs out and it declares a
 * live member dead: at 10% loss 11 of 400 simulated 200-node runs had one
 * such isolated false death (an observer that started suspecting in the
 * middle of the refutation's wave, then missed every copy). Answer with the current
 * ALIVE, as the accused itself does for an accusation about it: every
 * member the accuser gossips its suspicion to can now repair it. Only
 * about a new life we have known for a gossip interval: while the
 * refutation's own wave spreads, stale accusations are everywhere and
 * gossip is about to correct their senders anyway (answering those too
 * sent 6 times as many answers in 200-node runs at 10% loss). At most one
 * answer per gossip interval (a few subjects in it), so answers add at most
 * a third to the gossip packets a member sends. Seeds 1-400 at 200 nodes
 * and 10% loss: runs with a false death 11 -> 1, packets +0.5%; at 20% loss
 * (1,000 nodes) false deaths fall by a third for 10% more traffic.
 * memberlist ignores stale accusations silently. */
static void answer_stale_accusations(struct member_core *c, uint32_t to_gid,
				     const struct shoal_addr *to, const uint32_t *gids,
				     unsigned n, uint64_t now)
{
	if (c->leaving)
		return;
	if (now >= c->answers_window_ms + c->cfg.gossip_interval_ms) {
		c->answers_window_ms = now;
		c->answers_in_window = 0;
	}
	if (c->answers_in_window >= 1)
		return;
	struct wire_msg msgs[STALE_ANSWERS_MAX];
	size_t room = c->cfg.payload_bytes_max - 2; /* version, count */
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++) {
		memset(&msgs[k], 0, sizeof(msgs[k]));
		msgs[k].type = WIRE_ALIVE;
		msgs[k].incarnation = c->tab[gids[i]].incarnation;
		fill_node_msg(c, gids[i], &msgs[k]);
		size_t size = wire_msg_size(&msgs[k]);
		if (size > room)
			break;
		room -= size;
		k++;
	}
	if (k == 0)
		return;
	c->answers_in_window++;
	c->stats.stale_answers += k;
	send_msgs(c, to, to_gid, msgs, k);
}

int member_core_recv_packet_hinted(struct member_core *c,
				   const uint8_t from_id[SHOAL_NODE_ID_BYTES], uint32_t from_hint,
				   const struct shoal_addr *from, const uint8_t *payload,
				   size_t len, const uint32_t *hints, size_t n_hints,
				   uint64_t now_ms)
{
	/* The fixed-layout messages (nearly all) are read in place; only
	 * ALIVE and PING_REQ are decoded, into msgs. */
	struct wire_msg *msgs = c->dir->scratch;
	struct wire_item items[SHOAL_MSGS_PER_PACKET_MAX];
	uint32_t gids[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n = 0;
	bool sim_form = false; /* WIRE_VERSION_SIM: accusations name gids */
	out_compact(c);
	int err = wire_scan_payload_sim(payload, len, c->sim_gids, items, msgs, &n,
					&sim_form);
	if (err) {
		c->stats.packets_malformed++;
		return err;
	}
	c->stats.packets_received++;
	uint32_t from_gid = from_hint < c->dir->count && id_equal(c->dir->ids[from_hint], from_id)
		? from_hint : member_dir_intern(c->dir, from_id);
	if (from_gid == NONE32 || from_gid == c->self_gid) {
		c->stats.msgs_ignored++;
		return 0;
	}
	/* Look every subject up before acting on any, in stages that each
	 * start the loads the next one needs: with 10,000 cores nothing of a
	 * core is in cache when it is called, and the loads of one packet's
	 * messages can overlap instead of following one another. */
	const struct member_dir *d = c->dir;
	for (size_t i = 0; i < n; i++) {
		gids[i] = NONE32;
		if (!item_names_subject(&items[i]))
			continue;
		/* The directory (a few hundred KB at 10,000 nodes) stays in
		 * cache; the core's table entry is what misses. */
		if (sim_form && item_is_accusation(&items[i]))
			gids[i] = sim_gid(d, wire_item_gid(&items[i]));
		else
			gids[i] = item_subject_gid(d, &items[i], &msgs[i],
						   i < n_hints ? MEMBER_HINT_SUBJECT(hints[i])
							       : NONE32);
		if (gids[i] < c->tab_cap &&
		    !(item_is_accusation(&items[i]) && accusation_gone(c, gids[i])))
			__builtin_prefetch(&c->tab[gids[i]]);
	}
	/* The entries are (being) loaded: for the messages that will change
	 * something, start loading the suspicion and the queued broadcast
	 * they will touch. */
	for (size_t i = 0; i < n; i++) {
		if (item_is_accusation(&items[i]) && accusation_gone(c, gids[i]))
			continue;
		const struct member *sm = find(c, gids[i]);
		if (!sm || (items[i].type != WIRE_ALIVE &&
			    accusation_ignored(sm, items[i].type, wire_item_u32(&items[i]))))
			continue;
		if (sm->susp != NONE16)
			__builtin_prefetch(susp_at(c, sm->susp));
		/* the queued broadcast news replaces (its slot was loaded
		 * ahead: member_core_prefetch_packet) */
		bcast_prefetch(c, sm->bc_slot);
	}
	/* A member we hold dead is talking to us: tell it, so it refutes. */
	struct member *sender = find(c, from_gid);
	if (sender && sender->state == MEMBER_DEAD && !c->leaving) {
		struct wire_msg dm;
		our_accusation(c, &dm, WIRE_DEAD, from_gid, sender->incarnation);
		send_one(c, from_gid, from, &dm);
	}
	const uint8_t *self_id = dir_id(c->dir, c->self_gid);
	bool stale_about_me = false, answer_sender = false;
	uint32_t stale_gids[STALE_ANSWERS_MAX];
	unsigned stale_count = 0;
	for (size_t i = 0; i < n; i++) {
		const struct wire_item *it = &items[i];
		const struct wire_msg *m = &msgs[i]; /* ALIVE, PING_REQ only */
		/* An earlier ALIVE in this packet may have added the subject. */
		uint32_t gid = gids[i];
		if (gid == NONE32 && item_names_subject(it))
			gid = sim_form && item_is_accusation(it) ? sim_gid(d, wire_item_gid(it))
							     : item_subject_gid(d, it, m, NONE32);
		switch (it->type) {
		case WIRE_PING: {
			if (!id_equal(wire_item_id(it), self_id)) {
				c->stats.msgs_ignored++;
				break;
			}
			struct wire_msg ack;
			memset(&ack, 0, sizeof(ack));
			ack.type = WIRE_ACK;
			ack.seq = wire_item_u32(it);
			send_one(c, from_gid, from, &ack);
			break;
		}
		case WIRE_PING_REQ:
			if (id_equal(m->id, self_id)) {
				c->stats.msgs_ignored++;
				break;
			}
			on_ping_req(c, from_gid, from, m, now_ms);
			break;
		case WIRE_ACK:
			on_ack(c, wire_item_u32(it), now_ms);
			break;
		case WIRE_NACK:
			if (c->stage == PROBE_INDIRECT && wire_item_u32(it) == c->probe_seq &&
			    c->nacks_got < c->nacks_expected)
				c->nacks_got++;
			else
				c->stats.msgs_ignored++;
			break;
		case WIRE_ALIVE:
			on_alive(c, gid, m, now_ms);
			break;
		case WIRE_SUSPECT:
		case WIRE_DEAD: {
			uint32_t inc = wire_item_u32(it);
			/* Most accusations a node hears repeat what it knows; those
			 * need no lookup of their sender, and those about members
			 * held dead not even their entry. */
			if (accusation_gone(c, gid)) {
				c->stats.msgs_ignored++;
				break;
			}
			const struct member *sm = find(c, gid);
			if (accusation_ignored(sm, it->type, inc)) {
				if (gid == c->self_gid && inc < c->incarnation) {
					stale_about_me = true;
					/* declared dead before we refuted: cut off */
					if (it->type == WIRE_DEAD)
						pushpull_soon(c, now_ms);
				} else if (sm && inc < sm->incarnation && sm->state == MEMBER_ALIVE &&
					 now_ms >= since_get(sm) + c->cfg.gossip_interval_ms &&
					 stale_count < STALE_ANSWERS_MAX)
					stale_gids[stale_count++] = gid;
				c->stats.msgs_ignored++;
				break;
			}
			uint32_t by;
			if (sim_form) {
				by = sim_gid(d, wire_item_from_gid(it));
			} else {
				/* The accuser's hint, checked as a subject's is. */
				const uint8_t *by_prefix = wire_item_from(it);
				by = i < n_hints ? MEMBER_HINT_ACCUSER(hints[i]) : NONE32;
				if (!dir_hint_matches(d, by, by_prefix))
					by = member_dir_find_prefix(d, by_prefix);
			}
			/* An accuser this directory has never met (named by a
			 * prefix only, it cannot be learnt from the accusation):
			 * the accusation is ignored, but one about us is still
			 * refuted. */
			if (by == NONE32 && gid != c->self_gid) {
				c->stats.msgs_ignored++;
				break;
			}
			/* Our accuser tells us itself (probe_end, suspicion_expire):
			 * the refutation this leads to is answered to it directly. */
			if (gid == c->self_gid && by == from_gid)
				answer_sender = true;
			if (it->type == WIRE_SUSPECT)
				on_suspect(c, gid, inc, by, now_ms);
			else
				on_dead(c, gid, inc, by, now_ms);
			break;
		}
		default:
			c->stats.msgs_ignored++;
			break;
		}
	}
	/* A member we hold suspect is talking to us (after what it sent was
	 * applied: it may have refuted): tell it, as a probe of it would
	 * (Lifeguard's buddy system, probe_start), so that it refutes now. A
	 * probe may not come in time: after a partition heals, our local
	 * health slows probing to one in several seconds, and the accusations
	 * of the cut have been gossiped out on our side, so a member of the
	 * other side learnt it was suspected only when its suspicion ran out
	 * and it was declared dead. */
	sender = find(c, from_gid);
	if (sender && sender->state == MEMBER_SUSPECT && !c->leaving) {
		c->stats.suspects_told++;
		struct wire_msg sm;
		our_accusation(c, &sm, WIRE_SUSPECT, from_gid, sender->incarnation);
		send_one(c, from_gid, from, &sm);
	}
	/* The sender accuses us at an incarnation we have already refuted: it
	 * missed the refutation, and gossip will not bring it again (everyone
	 * else has it, so no one queues it). Tell the sender directly. Without
	 * this, a member that holds us dead — it told us so just now, that is
	 * what "a member we hold dead is talking to us" sends — kept us dead
	 * until its next push-pull, minutes at scale: after a 30 s partition of
	 * 200 nodes the last pair took 107 s to heal instead of 7 s. memberlist
	 * ignores such stale accusations silently. The same answer goes to an
	 * accuser that accused us itself, after we refuted. */
	if ((stale_about_me || answer_sender) && !c->leaving) {
		c->stats.refutations_direct++;
		const struct member *me = &c->tab[c->self_gid];
		if (me->bc_slot != NONE16) {
			/* Our refutation is still queued, and leads every packet:
			 * a packet of broadcasts carries it (once). */
			send_msgs(c, from, from_gid, NULL, 0);
		} else {
			struct wire_msg a;
			memset(&a, 0, sizeof(a));
			a.type = WIRE_ALIVE;
			a.incarnation = c->incarnation;
			fill_node_msg(c, c->self_gid, &a);
			send_one(c, from_gid, from, &a);
		}
	}
	if (stale_count > 0)
		answer_stale_accusations(c, from_gid, from, stale_gids, stale_count, now_ms);
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
	struct wire_state_entry e;
	enum { AHEAD = 8 };
	for (size_t i = 0; i < c->count; i++) {
		uint32_t gid = c->order[i];
		if (i + AHEAD < c->count) {
			/* Entries come in probe order, so their table entries and
			 * identities are scattered: start loading them early. */
			uint32_t ahead = c->order[i + AHEAD];
			__builtin_prefetch(&c->tab[ahead]);
			__builtin_prefetch(&c->dir->idents[ahead]);
			__builtin_prefetch((const char *)&c->dir->idents[ahead] + 64);
		}
		const struct member *m = &c->tab[gid];
		const struct member_identity *id = member_dir_get(c->dir, gid);
		/* Only what the encoder reads: NUL-terminated labels. */
		memcpy(e.node.id, id->id, SHOAL_NODE_ID_BYTES);
		e.node.addr = id->addr;
		copy_label(e.node.name, id->name, SHOAL_NAME_BYTES_MAX);
		e.node.tags_count = id->tags_count;
		for (uint8_t t = 0; t < id->tags_count; t++)
			copy_label(e.node.tags[t], id->tags[t], SHOAL_TAG_BYTES_MAX);
		e.incarnation = gid == c->self_gid ? c->incarnation : m->incarnation;
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

/* Whether a remote state's entry about gid (m: this core's entry, NULL if
 * unknown) at inc in state is news (memberlist's mergeState). Nothing is to
 * be done for what this core already knows at that incarnation or newer:
 * the common case of a push-pull between members that agree. */
static bool merge_is_news(const struct member_core *c, uint32_t gid, const struct member *m,
			  uint32_t inc, uint8_t state)
{
	if (!m || gid == c->self_gid || inc > m->incarnation)
		return true;
	/* (A dead or left member may still come back at a new address:
	 * on_alive compares identities for those.) */
	bool live = m->state == MEMBER_ALIVE || m->state == MEMBER_SUSPECT;
	if (state == MEMBER_ALIVE && live)
		return false;
	if ((state == MEMBER_DEAD || state == MEMBER_SUSPECT) && inc < m->incarnation)
		return false;
	/* A member we hold dead or left, without a suspicion, reported
	 * suspect, dead or left at an incarnation no newer: merge_apply's
	 * on_suspect or on_dead would only count it ignored, as the caller
	 * does. (After a wave of deaths every state carries each of them.) */
	if (state != MEMBER_ALIVE && (m->state == MEMBER_DEAD || m->state == MEMBER_LEFT) &&
	    m->susp == NONE16)
		return false;
	return true;
}

/* A member we never knew, reported dead by a remote state: recorded dead,
 * with no event and no broadcast. Suspecting it instead (what a remote DEAD
 * about a known member becomes) would start a suspicion nobody else will
 * confirm, after everyone else's DEAD has stopped spreading: it runs its
 * longest and the member is then put to itself, so this core held a member
 * that crashed before it ever heard of it "suspect" for 70-80 s, past
 * the crash scenario's detection bound (1,000 nodes, seed 1008, after a
 * cold start). memberlist ignores such an entry (suspectNode of an unknown
 * node); recording it keeps it for reconnect and `shoal members`. If it is
 * up after all, it refutes the first time it talks to us (a dead sender is
 * told), or its gossiped refutation reaches us. */
static void learn_dead(struct member_core *c, uint32_t gid, const struct wire_msg *a,
		       uint64_t now)
{
	if (gid == NONE32)
		gid = member_dir_intern(c->dir, a->id);
	if (gid == NONE32 || member_add(c, gid, a->incarnation, MEMBER_DEAD, now) == NULL) {
		c->stats.msgs_ignored++;
		return;
	}
	identity_store(c, gid, a);
}

/* Merges one entry that merge_is_news let through: a is the entry's
 * identity and incarnation as an ALIVE message, gid its gid (NONE32 if the
 * directory does not know it yet), m this core's entry or NULL. */
static void merge_apply(struct member_core *c, uint32_t gid, const struct member *m,
			const struct wire_msg *a, uint8_t state, uint64_t now)
{
	assert(a->type == WIRE_ALIVE);
	assert(state <= MEMBER_LEFT);
	switch (state) {
	case MEMBER_ALIVE:
		on_alive(c, gid, a, now);
		break;
	case MEMBER_LEFT:
		/* Learn the member first if new, then record the leave. */
		if (!m) {
			on_alive(c, gid, a, now);
			gid = member_dir_find(c->dir, a->id);
		}
		on_dead(c, gid, a->incarnation, gid, now);
		break;
	case MEMBER_DEAD:
		if (!m) {
			learn_dead(c, gid, a, now);
			break;
		}
		/* fall through */
	case MEMBER_SUSPECT:
		/* memberlist prefers suspicion over trusting a remote death
		 * verdict: the member gets a chance to refute. */
		if (!m) {
			on_alive(c, gid, a, now);
			gid = member_dir_find(c->dir, a->id);
		}
		on_suspect(c, gid, a->incarnation, c->self_gid, now);
		if (state == MEMBER_DEAD && gid == c->self_gid)
			pushpull_soon(c, now); /* we were cut off: see pushpull_soon */
		break;
	}
}

/* Merges one decoded entry of a remote state. */
static void merge_entry(struct member_core *c, const struct wire_state_entry *e, uint64_t now)
{
	uint32_t gid = member_dir_find(c->dir, e->node.id);
	const struct member *m = find(c, gid);
	if (!merge_is_news(c, gid, m, e->incarnation, e->state)) {
		c->stats.msgs_ignored++;
		return;
	}
	struct wire_msg a;
	a.type = WIRE_ALIVE;
	a.incarnation = e->incarnation;
	memcpy(a.id, e->node.id, SHOAL_NODE_ID_BYTES);
	a.addr = e->node.addr;
	memcpy(a.name, e->node.name, sizeof(a.name));
	a.tags_count = e->node.tags_count;
	memcpy(a.tags, e->node.tags, sizeof(a.tags));
	merge_apply(c, gid, m, &a, e->state, now);
}

/* What every merge of a remote state ends with. `was_alone`: this core
 * knew no other live member before the merge. */
static void merge_done(struct member_core *c, bool was_alone, uint64_t now)
{
	/* We just learned the mesh (a join, or a rejoin after isolation): every
	 * member learned is queued as a newer broadcast than our own ALIVE,
	 * which is the one news the others need; with ~16 ALIVEs per packet it
	 * would not leave in the first gossip round at 50 members. Queue it
	 * again, as the newest. */
	struct member *self = find(c, c->self_gid);
	if (was_alone && c->live_count > 1 && !c->leaving && self->bc_slot != NONE16)
		broadcast(c, c->self_gid, self, BC_ALIVE, c->incarnation, c->self_gid, now);
	/* Members that joined at the same time as we did are in no state we
	 * merged, and their ALIVEs may have gone out (4 times each in a small
	 * fleet) before anyone knew us: one of 30 cold starts of 8 agents left
	 * an agent without another for 25 s, until the first periodic
	 * push-pull (0.5-1.5 intervals after start). Push-pull again soon.
	 * An extra one: the scheduled one still comes (pushpull() returns to
	 * it), as the cold start's stragglers need it too. */
	if (was_alone)
		pushpull_soon(c, now);
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
	bool was_alone = c->live_count == 1;
	enum { AHEAD = 4 };
	for (size_t i = 0; i < n; i++) {
		if (i + AHEAD < n && c->dir->index_cap) {
			/* Start loading where the lookup a few entries on will go. */
			const struct member_dir *d = c->dir;
			size_t slot = id_hash(es[i + AHEAD].node.id) & (d->index_cap - 1);
			__builtin_prefetch(&d->index[slot]);
		}
		merge_entry(c, &es[i], now_ms);
	}
	free(es);
	merge_done(c, was_alone, now_ms);
	return 0;
}


/* Whether the sender src's entry m (the receiver holds its own entry for
 * that member in mine, or none) is news to `into`; if so keeps the sender's
 * incarnation and state in side k of p. */
static bool pair_entry_news(struct member_pair *p, unsigned k, const struct member_core *into,
			    const struct member_core *src, uint32_t g, const struct member *m,
			    const struct member *mine)
{
	uint32_t inc = g == src->self_gid ? src->incarnation : m->incarnation;
	if (!merge_is_news(into, g, mine, inc, m->state))
		return false;
	p->inc[k][g] = inc;
	p->state[k][g] = m->state;
	return true;
}

int member_core_pair_begin(struct member_core *a, struct member_core *b, struct member_pair *p)
{
	if (a == b || a->dir != b->dir)
		return SHOAL_EINVAL;
	const struct member_dir *d = a->dir;
	size_t gids = d->count;
	if (p->gids < gids)
		return SHOAL_ETOOBIG;
	/* Every member's gid is in the directory, so count <= gids. */
	assert(a->count <= gids);
	assert(b->count <= gids);
	/* One pass over both tables, by gid, in sequence. Whether an entry
	 * is news to the receiver depends only on the receiver's entry for
	 * that member and on its self, and merging one member's entry
	 * changes no other member's: deciding them all now, before either
	 * side merges, is deciding each just before its merge, as
	 * member_core_recv_state does. The news keep the sender's
	 * incarnation and state (the receiver's merge may come after the
	 * sender has merged). */
	struct member_core *const from[2] = {a, b}, *const into[2] = {b, a};
	size_t news[2] = {0, 0};
	/* (in locals: the stores to p's arrays may alias anything) */
	const struct member *const ta = a->tab, *const tb = b->tab;
	const size_t ca = a->tab_cap, cb = b->tab_cap;
	const uint32_t self_a = a->self_gid, self_b = b->self_gid;
	const uint8_t *const eb = d->entry_bytes;
	size_t bytes_a = 6, bytes_b = 6; /* version, join, count */
	size_t words = gids / 64 + 1;
	for (size_t w = 0; w < words; w++) {
		uint64_t news_a = 0, news_b = 0; /* a's news to b, b's to a */
		size_t end = (w + 1) * 64 < gids ? (w + 1) * 64 : gids;
		for (size_t g = w * 64; g < end; g++) {
			const struct member *x = g < ca && ta[g].state != ST_NONE ? &ta[g] : NULL;
			const struct member *y = g < cb && tb[g].state != ST_NONE ? &tb[g] : NULL;
			/* Nearly every entry: a member both hold alive, or dead
			 * with no suspicion, at one incarnation, neither side's
			 * self. merge_is_news is false both ways. */
			if (x && y && x->incarnation == y->incarnation && x->state == y->state &&
			    (x->state == MEMBER_ALIVE ||
			     (x->state == MEMBER_DEAD && x->susp == NONE16 && y->susp == NONE16)) &&
			    g != self_a && g != self_b) {
				bytes_a += eb[g];
				bytes_b += eb[g];
				continue;
			}
			if (x) {
				bytes_a += eb[g];
				news_a |= (uint64_t)pair_entry_news(p, 0, b, a, (uint32_t)g, x, y)
					  << (g % 64);
			}
			if (y) {
				bytes_b += eb[g];
				news_b |= (uint64_t)pair_entry_news(p, 1, a, b, (uint32_t)g, y, x)
					  << (g % 64);
			}
		}
		p->news[0][w] = news_a;
		p->news[1][w] = news_b;
		news[0] += (size_t)__builtin_popcountll(news_a);
		news[1] += (size_t)__builtin_popcountll(news_b);
	}
	const size_t bytes[2] = {bytes_a, bytes_b};
	for (unsigned k = 0; k < 2; k++) {
		memcpy(p->order[k], from[k]->order, from[k]->count * sizeof(*from[k]->order));
		p->into[k] = into[k];
		p->count[k] = from[k]->count;
		p->news_count[k] = news[k];
		p->encoded_bytes[k] = bytes[k];
		p->merged[k] = false;
	}
	return 0;
}

int member_core_pair_merge(struct member_pair *p, unsigned k, uint64_t now_ms)
{
	if (k > 1 || p->merged[k] || !p->into[k])
		return SHOAL_EINVAL;
	p->merged[k] = true;
	struct member_core *c = p->into[k];
	out_compact(c);
	c->stats.pushpulls_merged++;
	c->stats.msgs_ignored += p->count[k] - p->news_count[k];
	bool was_alone = c->live_count == 1;
	/* The news, in the order the encoding would have carried it. */
	size_t news = p->news_count[k];
	for (size_t i = 0; i < p->count[k] && news > 0; i++) {
		uint32_t gid = p->order[k][i];
		if (!(p->news[k][gid / 64] & (UINT64_C(1) << (gid % 64))))
			continue;
		const struct member *m = find(c, gid);
		/* The identity the encoding would have carried: the shared
		 * directory's, which the sender's encoder reads too.
		 * merge_apply reads only the incarnation of a SUSPECT, DEAD or
		 * LEFT entry about a member this core knows. */
		struct wire_msg a;
		a.type = WIRE_ALIVE;
		a.incarnation = p->inc[k][gid];
		if (p->state[k][gid] == MEMBER_ALIVE || !m)
			fill_node_msg(c, gid, &a);
		merge_apply(c, gid, m, &a, p->state[k][gid], now_ms);
		news--;
	}
	merge_done(c, was_alone, now_ms);
	return 0;
}

/* A suspicion has run out. One that no one confirmed rests on a single
 * accusation, which is how a false one looks: the accuser lost its probes,
 * or the member refuted and this core missed every copy of the refutation
 * (a refutation is gossiped for a second or two; at 10% loss one node in a
 * few hundred hears none of it, and nothing brings it later but a
 * push-pull, minutes away at scale). Before declaring such a member dead,
 * accuse it directly, once, and give it a probe timeout to answer: an
 * accused member answers its accuser with its current ALIVE (refuting
 * first if it must), which cancels the suspicion. A member that is down
 * does not answer and is declared dead that much later. memberlist
 * declares at once; a confirmed suspicion still does here. */
static void suspicion_expire(struct member_core *c, uint16_t slot, uint64_t now)
{
	struct suspicion *s = susp_at(c, slot);
	uint32_t gid = s->gid;
	struct member *m = find(c, gid);
	assert(m && m->susp == slot);
	uint32_t inc = m->incarnation;
	if (s->n == 0 && !(s->k_used & SUSP_RECHECKED) && !c->leaving) {
		uint64_t deadline = now + health_scale(c, c->cfg.probe_timeout_ms);
		assert(deadline > now); /* (suspicions_expire_due) */
		if (sheap_push(c, skey(deadline, slot)) == 0) {
			s->k_used |= SUSP_RECHECKED;
			susp_set_deadline(s, deadline);
			c->stats.suspicions_rechecked++;
			accuse_in_person(c, gid, inc);
			return;
		}
		/* (no room for the key: declared now, as before) */
	}
	suspicion_cancel(c, m);
	on_dead(c, gid, inc, c->self_gid, now);
}

/* Expires the suspicions due at now, up to a batch of them, in the heap's
 * order. In a wave a core has a dozen due at a tick, each a chain of cold
 * loads (suspicion, member entry, queued broadcast's slot, the broadcast);
 * popping a batch first lets the chains' loads overlap, level by level.
 * The same order and the same checks as one at a time: each key is judged
 * current when its turn comes, and nothing the expiry of one pushes is due
 * before a later tick (a recheck waits at least a probe timeout, and a key
 * a rebuild puts back for one that expired meanwhile is stale). */
static void suspicions_expire_due(struct member_core *c, uint64_t now)
{
	enum { BATCH = 16 };
	uint64_t due[BATCH];
	size_t n = 0;
	while (n < BATCH && c->sheap_len && (c->sheap[0] >> SKEY_SHIFT) <= now) {
		due[n++] = c->sheap[0];
		sheap_pop(c);
	}
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(susp_at(c, (uint16_t)due[i]));
	uint32_t gids[BATCH];
	for (size_t i = 0; i < n; i++) {
		const struct suspicion *s = susp_at(c, (uint16_t)due[i]);
		gids[i] = susp_used(s) ? s->gid : NONE32;
		if (gids[i] < c->tab_cap)
			__builtin_prefetch(&c->tab[gids[i]]);
	}
	uint16_t slots[BATCH];
	for (size_t i = 0; i < n; i++) {
		slots[i] = gids[i] < c->tab_cap ? c->tab[gids[i]].bc_slot : NONE16;
		if (slots[i] < c->bslots_cap)
			__builtin_prefetch(&c->bslots[slots[i]]);
	}
	for (size_t i = 0; i < n; i++)
		bcast_prefetch(c, slots[i]);
	for (size_t i = 0; i < n; i++) {
		if (sheap_current(c, due[i]))
			suspicion_expire(c, (uint16_t)due[i], now);
	}
}

void member_core_tick(struct member_core *c, uint64_t now)
{
	out_compact(c);
	/* suspicion timeouts */
	while (c->sheap_len && (c->sheap[0] >> SKEY_SHIFT) <= now)
		suspicions_expire_due(c, now);
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
	if (c->sheap_len && (c->sheap[0] >> SKEY_SHIFT) < t)
		t = c->sheap[0] >> SKEY_SHIFT;
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
	if (o->kind == MEMBER_OUT_STREAM_PING) {
		out->seq = o->seq;
		out->deadline_ms = o->deadline_ms;
	}
	if (o->kind == MEMBER_OUT_PACKET) {
		out->data = c->arena + o->off;
		out->len = o->len;
		if (c->outputs_shared) {
			out->hints = shared_hints(c, c->outq_head - 1);
			out->hints_count = out->data[1]; /* the payload's message count */
		}
	}
	return true;
}

size_t member_core_shared_outputs_bytes(const struct member_config *cfg)
{
	/* Every output a call may queue (the outbox bound), each packet
	 * reserved at the payload bound while it is filled, plus the one
	 * reservation that finds the outbox full. */
	size_t b = share_items_bytes() + share_hints_bytes() +
		   ((size_t)SHOAL_OUTBOX_COUNT_MAX + 1) * cfg->payload_bytes_max;
	return (b + 63) & ~(size_t)63; /* a size aligned_alloc(64, ...) takes */
}

int member_core_share_outputs(struct member_core *c, void *space, size_t bytes)
{
	if ((uintptr_t)space % 64 != 0)
		return SHOAL_EINVAL;
	if (bytes < member_core_shared_outputs_bytes(&c->cfg))
		return SHOAL_ETOOBIG;
	if (c->outq_head != c->outq_len)
		return SHOAL_ESTATE; /* outputs not yet polled */
	assert(!c->outputs_shared);
	free(c->outq);
	free(c->arena);
	c->outq = space;
	c->outq_cap = SHOAL_OUTBOX_COUNT_MAX;
	c->outq_len = c->outq_head = 0;
	c->arena = (uint8_t *)space + share_items_bytes() + share_hints_bytes();
	c->arena_cap = bytes - share_items_bytes() - share_hints_bytes();
	c->arena_len = 0;
	c->outputs_shared = true;
	return 0;
}

/* A mark for a gid seen earlier in the same member_core_add_alive call. */
#define ST_ADDING 0xfe
_Static_assert(ST_ADDING > MEMBER_LEFT && ST_ADDING != ST_NONE, "ST_ADDING is no state");

int member_core_add_alive(struct member_core *c, const uint32_t *gids, size_t n,
			  uint32_t incarnation, uint64_t now_ms)
{
	if (n > SHOAL_MEMBERS_MAX - c->count)
		return SHOAL_EFULL;
	/* Every gid checked (in the directory, then marked, which finds a
	 * repeat) before any is added, so an error adds none; the table grows
	 * only to gids the directory holds. */
	uint32_t top = 0;
	for (size_t i = 0; i < n; i++) {
		if (gids[i] == c->self_gid || !member_dir_get(c->dir, gids[i]))
			return SHOAL_EINVAL;
		if (gids[i] > top)
			top = gids[i];
	}
	if (n && (tab_reserve(c, (size_t)top + 1) != 0 || order_reserve(c, c->count + n) != 0))
		return SHOAL_ENOMEM;
	int err = 0;
	size_t marked = 0;
	for (; marked < n; marked++) {
		uint32_t g = gids[marked];
		if (c->tab[g].state != ST_NONE) {
			err = SHOAL_EEXIST;
			break;
		}
		c->tab[g].state = ST_ADDING;
	}
	for (size_t i = 0; i < marked; i++)
		c->tab[gids[i]].state = ST_NONE;
	if (err)
		return err;
	/* As member_add, without its checks and growth (the same draws: a bulk
	 * add leaves the core as one add per gid). */
	for (size_t i = 0; i < n; i++)
		member_place(c, gids[i], incarnation, MEMBER_ALIVE, now_ms);
	c->live_count += n;
	c->est_nodes += n;
	return 0;
}

size_t member_core_count(const struct member_core *c) { return c->count; }

size_t member_core_est_nodes(const struct member_core *c) { return c->est_nodes; }

size_t member_core_live_count(const struct member_core *c) { return c->live_count; }

static void fill_info(const struct member_core *c, uint32_t gid, const struct member *m,
		      struct member_info *out)
{
	out->ident = member_dir_get(c->dir, gid);
	out->gid = gid;
	out->state = (enum member_state)m->state;
	out->incarnation = gid == c->self_gid ? c->incarnation : m->incarnation;
	out->state_change_ms = since_get(m);
	out->is_self = gid == c->self_gid;
}

int member_core_get(const struct member_core *c, size_t index, struct member_info *out)
{
	if (index >= c->count)
		return SHOAL_ENOTFOUND;
	uint32_t gid = c->order[index];
	fill_info(c, gid, &c->tab[gid], out);
	return 0;
}

int member_core_lookup(const struct member_core *c, uint32_t gid, struct member_info *out)
{
	const struct member *m = find(c, gid);
	if (!m)
		return SHOAL_ENOTFOUND;
	fill_info(c, gid, m, out);
	return 0;
}

void member_core_prefetch(const struct member_core *c, unsigned stage, bool sends)
{
	const char *p = (const char *)c;
	if (stage == 0) {
		/* Every line (eleven): beyond the hot fields and the packet
		 * counters, a packet sent or a tick reads the generator, the
		 * probe's state, the sequence number and cfg, on four lines
		 * further on, and loading those with the rest measured faster
		 * than their misses later. */
		for (size_t off = 0; off < sizeof(*c); off += 64)
			__builtin_prefetch(p + off);
		return;
	}
	if (stage == 1) {
		/* What the likely paths read first, through pointers in the hot
		 * lines (which stage 0 has loaded): the tier and output
		 * vectors, the arena's first packet (written), the suspicion
		 * heap, the relays, our own entry and the probe order. */
		/* (every tier a packet may take from: a few lines; none
		 * while nothing is queued, as after a wave of news has passed,
		 * when a core's twenty empty tiers were a quarter of the lines
		 * it loaded for an event; only tier 0, where news goes, for a
		 * call that will not send) */
		size_t tiers_bytes = !c->bc_count ? 0
			: !sends ? sizeof(*c->tiers)
			: (c->tiers_count < 32 ? c->tiers_count : 32) * sizeof(*c->tiers);
		for (size_t off = 0; off < tiers_bytes; off += 64)
			__builtin_prefetch((const char *)c->tiers + off);
		if (c->outq && !c->outputs_shared) {
			__builtin_prefetch(c->outq);
			size_t first = c->arena_cap < 1024 ? c->arena_cap : 1024;
			for (size_t off = 0; off < first; off += 64)
				__builtin_prefetch(c->arena + off, 1);
		}
		if (c->sheap_len)
			__builtin_prefetch(c->sheap);
		if (c->relays_count)
			__builtin_prefetch(c->relays);
		/* the suspicion chunks' pointers: confirmations read them
		 * (an active suspicion has its deadline in the heap) */
		size_t chunk_bytes = !c->sheap_len ? 0
			: c->susp_pool.chunks_count * sizeof(*c->susp_pool.chunks);
		for (size_t off = 0; off < chunk_bytes && off < 256; off += 64)
			__builtin_prefetch((const char *)c->susp_pool.chunks + off);
		if (!sends)
			return;
		if (c->self_gid < c->tab_cap)
			__builtin_prefetch(&c->tab[c->self_gid]);
		if (c->probe_pos < c->count)
			__builtin_prefetch(&c->order[c->probe_pos]);
		return;
	}
	if (!sends)
		return;
	/* One level further (stage 1 loaded these pointers): the newest
	 * broadcasts of the first non-empty tiers, where a packet's filling
	 * starts (about a packet's worth), with the end of the tier after each,
	 * where they move; and the table entry of the next probe's target. */
	uint32_t items = 0;
	for (size_t t = c->tiers_low; c->bc_count && t < c->tiers_count && items < 12; t++) {
		const struct tier *q = &c->tiers[t];
		if (!q->live)
			continue;
		__builtin_prefetch(&q->v[q->len - 1]);
		if (q->len > 5)
			__builtin_prefetch(&q->v[q->len - 6]);
		if (q->len > 10)
			__builtin_prefetch(&q->v[q->len - 11]);
		if (t + 1 < c->tiers_count && c->tiers[t + 1].v)
			__builtin_prefetch(&c->tiers[t + 1].v[c->tiers[t + 1].len], 1);
		items += q->live;
	}
	if (c->probe_pos < c->count)
		__builtin_prefetch(&c->tab[c->order[c->probe_pos]]);
}

void member_core_prefetch_tick(const struct member_core *c, uint64_t now_ms, unsigned stage)
{
	/* (as member_core_tick decides to gossip, and gossip draws) */
	if (!c->bc_count || now_ms < c->next_gossip_ms || !c->count)
		return;
	uint32_t pos[DRAWS_AHEAD];
	struct rng r = c->rng;
	size_t n = draws_ahead(c, gossip_nodes(c), &r, pos, NULL);
	for (size_t i = 0; i < n; i++) {
		if (stage == 0) {
			__builtin_prefetch(&c->order[pos[i]]);
			continue;
		}
		uint32_t gid = c->order[pos[i]];
		if (gid < c->tab_cap) {
			__builtin_prefetch(&c->tab[gid]);
			__builtin_prefetch(addr_of(c, gid)); /* where it sends */
		}
	}
	if (stage == 0)
		return;
	/* The newest broadcasts of the lowest tiers, as many as the packets
	 * to gossip_nodes members may take (about one per 64 bytes of
	 * payload: member_core_prefetch's stage 2 loads the first few). */
	size_t want = (size_t)gossip_nodes(c) * (c->cfg.payload_bytes_max / 64);
	for (size_t t = c->tiers_low; t < c->tiers_count && want > 0; t++) {
		const struct tier *q = &c->tiers[t];
		if (!q->live)
			continue;
		size_t take = q->len < want ? q->len : want;
		const char *lo = (const char *)&q->v[q->len - take];
		size_t bytes = take * sizeof(*q->v);
		for (size_t off = 0; off < bytes; off += 64)
			__builtin_prefetch(lo + off);
		__builtin_prefetch(lo + bytes - 1);
		want -= take;
	}
}

void member_core_prefetch_packet(const struct member_core *c, uint32_t from_gid,
				 const uint32_t *hints, size_t n_hints, unsigned stage)
{
	const struct member_dir *d = c->dir;
	if (stage == 0) {
		/* The hints name the subjects without a lookup (looking them
		 * up ahead, a hash and a directory probe each, cost more than
		 * it saved: 6% at 10,000 nodes); recv checks each against its
		 * id. */
		if (from_gid < c->tab_cap) {
			__builtin_prefetch(&c->tab[from_gid]);
			__builtin_prefetch(d->ids[from_gid]);
		}
		for (size_t i = 0; i < n_hints; i++) {
			uint32_t g = MEMBER_HINT_SUBJECT(hints[i]);
			if (g < c->tab_cap && g < d->count) {
				__builtin_prefetch(&c->gone[g >> 6]);
				/* (the simulator's form names accusations'
				 * subjects by gid: their ids are not read) */
				if (!c->sim_gids) {
					__builtin_prefetch(d->ids[g]);
					__builtin_prefetch(d->ids[g] + SHOAL_NODE_ID_BYTES - 1);
				}
			}
		}
		return;
	}
	if (stage == 1) {
		/* The entries of the subjects not held dead or left (their
		 * gone bits have arrived): news about those is possible, and
		 * the accusations about the others are answered by their bits. */
		for (size_t i = 0; i < n_hints; i++) {
			uint32_t g = MEMBER_HINT_SUBJECT(hints[i]);
			if (g < c->tab_cap && !gone_test(c, g))
				__builtin_prefetch(&c->tab[g]);
		}
		return;
	}
	/* Stage 2 (the entries have arrived): for the subjects still alive or
	 * suspect here, what news about them touches, as recv's own second
	 * pass does a moment before its use: the suspicion and the queued
	 * broadcast's slot; and, if there is such a subject, the heads of
	 * the free lists a new suspicion and a new broadcast take from and
	 * the end of tier 0, where a new broadcast goes. (A subject held dead
	 * or left hears nothing new from a SUSPECT or DEAD.) */
	bool news = false;
	for (size_t i = 0; i < n_hints; i++) {
		uint32_t g = MEMBER_HINT_SUBJECT(hints[i]);
		if (g >= c->tab_cap || gone_test(c, g))
			continue;
		const struct member *m = &c->tab[g];
		if (m->state != MEMBER_ALIVE && m->state != MEMBER_SUSPECT)
			continue;
		news = true;
		if (m->susp != NONE16)
			__builtin_prefetch(susp_at(c, m->susp));
		if (m->bc_slot != NONE16)
			__builtin_prefetch(&c->bslots[m->bc_slot]);
	}
	if (!news)
		return;
	if (c->susp_free != NONE16)
		__builtin_prefetch(susp_at(c, c->susp_free));
	if (c->bslot_free != NONE16 && c->bslot_free < c->bslots_cap)
		__builtin_prefetch(&c->bslots[c->bslot_free]);
	if (c->tiers_count && c->tiers[0].v)
		__builtin_prefetch(&c->tiers[0].v[c->tiers[0].len], 1);
}

uint32_t member_core_incarnation(const struct member_core *c) { return c->incarnation; }
uint32_t member_core_self_gid(const struct member_core *c) { return c->self_gid; }
int member_core_health(const struct member_core *c) { return c->health; }
const struct member_stats *member_core_stats(const struct member_core *c) { return &c->stats; }
bool member_core_has_left(const struct member_core *c) { return c->leaving; }
