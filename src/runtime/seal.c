/*
 * seal.c — seals and opens shoal's UDP packets; see seal.h for the wire form.
 *
 * Opening runs the checks cheapest-first (size, version, key id, AEAD, syntax)
 * so that an outsider without the gossip key costs one Poly1305 at most.
 * Admission certificates are verified once and kept in a small
 * set-associative cache keyed by BLAKE2b-256 of their bytes (expiry is
 * re-checked on every hit); the sender's Ed25519 signature is checked on
 * every packet. Replay windows live in an open-addressing table keyed by
 * node id (SipHash with a per-process key, so ids cannot be chosen to
 * collide).
 *
 * Both structures grow with the senders actually heard (cache sets are
 * allocated on first use, the replay table doubles up to its bound): an
 * agent in a mesh of 20 keeps ~40 KiB of them resident instead of touching
 * one page per sender across 2.7 MiB of tables sized for 16,384.
 *
 * Nothing in ctx changes unless a packet passes every check, except the drop
 * counter and the scratch plaintext buffer.
 */
#include "runtime/seal.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "shoal/bytes.h"

_Static_assert(SEAL_OVERHEAD_BYTES == SHOAL_UDP_SEAL_OVERHEAD_BYTES,
	       "limits.h sizes payloads by this envelope");
_Static_assert(SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT >= 800,
	       "the largest cert leaves room for a payload");
_Static_assert(SEAL_HEADER_BYTES == 29, "header is version|key_id|nonce");
_Static_assert(SEAL_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
	       "XChaCha20 nonce");
_Static_assert(SEAL_MAC_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "Poly1305 tag");
_Static_assert(SHOAL_REPLAY_WINDOW_BITS == 64, "window is one u64 bitmap");
_Static_assert(SHOAL_CERT_BYTES_MAX <= UINT16_MAX, "cert_len is a u16");
_Static_assert(SHOAL_UDP_PAYLOAD_BYTES_MAX <= UINT16_MAX, "payload_len is u16");

/* --- verified-certificate cache ----------------------------------------- */

struct cache_entry {
	uint8_t hash[crypto_generichash_BYTES];
	bool used;
	uint64_t last_use; /* ctx-wide tick; the least recent way is evicted */
	struct admission_cert cert;
};

struct seal_cache {
	uint64_t tick;
	struct cache_entry *set[SEAL_CACHE_SETS]; /* SEAL_CACHE_WAYS each, or NULL */
};

_Static_assert(SEAL_CACHE_SETS == 256, "set index is one hash byte");

static struct cache_entry *cache_find(struct seal_cache *c, const uint8_t *hash)
{
	struct cache_entry *set = c->set[hash[0]];
	if (set == NULL)
		return NULL;
	for (size_t w = 0; w < SEAL_CACHE_WAYS; w++)
		if (set[w].used && memcmp(set[w].hash, hash, sizeof(set[w].hash)) == 0)
			return &set[w];
	return NULL;
}

static void cache_touch(struct seal_cache *c, struct cache_entry *e)
{
	assert(e->used);
	e->last_use = ++c->tick;
}

static void cache_insert(struct seal_cache *c, const uint8_t *hash,
			 const struct admission_cert *cert)
{
	struct cache_entry *set = c->set[hash[0]];
	if (set == NULL) {
		/* Out of memory: not cached, the next packet verifies again. */
		set = calloc(SEAL_CACHE_WAYS, sizeof(*set));
		if (set == NULL)
			return;
		c->set[hash[0]] = set;
	}
	struct cache_entry *victim = &set[0];
	for (size_t w = 0; w < SEAL_CACHE_WAYS; w++) {
		if (!set[w].used) {
			victim = &set[w];
			break;
		}
		if (set[w].last_use < victim->last_use)
			victim = &set[w];
	}
	memcpy(victim->hash, hash, sizeof(victim->hash));
	victim->cert = *cert;
	victim->used = true;
	cache_touch(c, victim);
}

/* --- replay windows ------------------------------------------------------ */

struct replay_entry {
	uint8_t node_id[SHOAL_NODE_ID_BYTES];
	uint64_t hash;
	uint64_t highest;  /* highest seq accepted */
	uint64_t bitmap;   /* bit i: seq highest - i was accepted */
	uint64_t last_ms;  /* when it last accepted a packet */
	bool used;
};

/* Open addressing with linear probing; slots is a power of two and count
 * stays at most 3/4 of it, so probes stay short and a free slot always
 * exists. The table starts small and doubles as senders come, up to the
 * slots senders_max needs. */
struct seal_replay {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	size_t count;
	size_t senders_max;
	size_t slots;
	struct replay_entry e[];
};

#define REPLAY_SENDERS_INITIAL 48 /* 64 slots, 3 KiB */

/* The smallest power of two whose 3/4 holds n. */
static size_t replay_slots_for(size_t n)
{
	size_t slots = 2;
	while (slots * 3 / 4 < n)
		slots *= 2;
	return slots;
}

static struct seal_replay *replay_alloc(size_t senders_max, size_t slots,
					const uint8_t *hash_key)
{
	assert(senders_max >= 1 && senders_max <= SHOAL_REPLAY_SENDERS_MAX);
	assert((slots & (slots - 1)) == 0 && slots <= replay_slots_for(senders_max));
	struct seal_replay *r = calloc(1, sizeof(*r) + slots * sizeof(r->e[0]));
	if (r == NULL)
		return NULL;
	r->senders_max = senders_max;
	r->slots = slots;
	if (hash_key)
		memcpy(r->hash_key, hash_key, sizeof(r->hash_key));
	else
		randombytes_buf(r->hash_key, sizeof(r->hash_key));
	return r;
}

static struct seal_replay *replay_new(size_t senders_max)
{
	size_t n = senders_max < REPLAY_SENDERS_INITIAL ? senders_max : REPLAY_SENDERS_INITIAL;
	return replay_alloc(senders_max, replay_slots_for(n), NULL);
}

static uint64_t replay_hash(const struct seal_replay *r, const uint8_t *id)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, id, SHOAL_NODE_ID_BYTES, r->hash_key);
	uint64_t v = 0;
	for (size_t i = 0; i < sizeof(h); i++)
		v = (v << 8) | h[i];
	return v;
}

/* Returns the entry for id, or NULL; *slot is where it is or would go. */
static struct replay_entry *replay_find(struct seal_replay *r, const uint8_t *id,
					uint64_t hash, size_t *slot)
{
	size_t mask = r->slots - 1;
	size_t i = (size_t)hash & mask;
	/* Terminates: the load factor bound leaves free slots. */
	for (;;) {
		struct replay_entry *e = &r->e[i];
		if (!e->used) {
			*slot = i;
			return NULL;
		}
		if (e->hash == hash && memcmp(e->node_id, id, SHOAL_NODE_ID_BYTES) == 0) {
			*slot = i;
			return e;
		}
		i = (i + 1) & mask;
	}
}

/* Deletes slot i by shifting later members of its probe run back
 * (linear-probing deletion without tombstones). */
static void replay_delete(struct seal_replay *r, size_t i)
{
	size_t mask = r->slots - 1;
	assert(r->e[i].used);
	assert(r->count > 0);
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!r->e[j].used)
			break;
		size_t k = (size_t)r->e[j].hash & mask;
		/* Entry j may stay if its home k lies cyclically in (i, j]. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		r->e[i] = r->e[j];
		i = j;
	}
	memset(&r->e[i], 0, sizeof(r->e[i]));
	r->count--;
}

/* Evicts the sender heard from least recently. O(slots), only when the table
 * is full, i.e. with more live senders than SHOAL_REPLAY_SENDERS_MAX; an
 * evicted sender's old packets could then be replayed once. */
static void replay_evict_oldest(struct seal_replay *r)
{
	size_t oldest = r->slots;
	for (size_t i = 0; i < r->slots; i++)
		if (r->e[i].used &&
		    (oldest == r->slots || r->e[i].last_ms < r->e[oldest].last_ms))
			oldest = i;
	assert(oldest < r->slots);
	replay_delete(r, oldest);
}

/* 0 if seq from e would be fresh; SHOAL_EREPLAY if seen or too old. */
static int window_check(const struct replay_entry *e, uint64_t seq)
{
	if (e == NULL || seq > e->highest)
		return 0;
	uint64_t back = e->highest - seq;
	if (back >= SHOAL_REPLAY_WINDOW_BITS)
		return SHOAL_EREPLAY;
	if (e->bitmap & ((uint64_t)1 << back))
		return SHOAL_EREPLAY;
	return 0;
}

static void window_update(struct replay_entry *e, uint64_t seq)
{
	assert(window_check(e, seq) == 0);
	if (seq > e->highest) {
		uint64_t shift = seq - e->highest;
		e->bitmap = shift >= SHOAL_REPLAY_WINDOW_BITS ? 0 : e->bitmap << shift;
		e->bitmap |= 1;
		e->highest = seq;
	} else {
		e->bitmap |= (uint64_t)1 << (e->highest - seq);
	}
	assert(e->bitmap & 1);
}

/* Doubles the table (same hash key, every entry moved). False when it is
 * already as big as senders_max needs, or out of memory. */
static bool replay_grow(struct seal_replay **rp)
{
	struct seal_replay *r = *rp;
	if (r->slots >= replay_slots_for(r->senders_max))
		return false;
	struct seal_replay *n = replay_alloc(r->senders_max, r->slots * 2, r->hash_key);
	if (n == NULL)
		return false;
	for (size_t i = 0; i < r->slots; i++) {
		if (!r->e[i].used)
			continue;
		size_t slot;
		struct replay_entry *dup = replay_find(n, r->e[i].node_id, r->e[i].hash, &slot);
		assert(dup == NULL);
		(void)dup;
		n->e[slot] = r->e[i];
		n->count++;
	}
	assert(n->count == r->count);
	free(r);
	*rp = n;
	return true;
}

/* Records seq as accepted from id (fresh per window_check). */
static void replay_accept(struct seal_replay **rp, const uint8_t *id, uint64_t seq,
			  uint64_t now_ms)
{
	struct seal_replay *r = *rp;
	uint64_t hash = replay_hash(r, id);
	size_t slot;
	struct replay_entry *e = replay_find(r, id, hash, &slot);
	if (e == NULL) {
		if (r->count + 1 > r->slots * 3 / 4) {
			/* Full at this size: grow, or at the bound (or out of
			 * memory) evict the sender heard from least recently. */
			if (r->count < r->senders_max && replay_grow(rp))
				r = *rp;
			else
				replay_evict_oldest(r);
			e = replay_find(r, id, hash, &slot);
			assert(e == NULL);
		}
		e = &r->e[slot];
		memcpy(e->node_id, id, SHOAL_NODE_ID_BYTES);
		e->hash = hash;
		e->highest = seq;
		e->bitmap = 1;
		e->used = true;
		r->count++;
	} else {
		window_update(e, seq);
	}
	e->last_ms = now_ms;
	assert(r->count <= r->senders_max && r->count <= r->slots * 3 / 4);
}

/* --- context ------------------------------------------------------------- */

static void key_id_of(const uint8_t key[32], uint8_t id[SEAL_KEY_ID_BYTES])
{
	uint8_t h[32];
	crypto_generichash(h, sizeof(h), key, 32, NULL, 0);
	memcpy(id, h, SEAL_KEY_ID_BYTES);
}

int seal_ctx_set_keyring(struct seal_ctx *ctx, const struct gossip_keyring *ring)
{
	assert(ctx != NULL);
	assert(ring != NULL);
	if (ring->count < 1 || ring->count > SHOAL_GOSSIP_KEYS_MAX)
		return SHOAL_EINVAL;
	sodium_memzero(&ctx->ring, sizeof(ctx->ring));
	ctx->ring = *ring;
	for (size_t i = 0; i < ring->count; i++)
		key_id_of(ring->keys[i], ctx->key_ids[i]);
	return 0;
}

int seal_ctx_init(struct seal_ctx *ctx, const struct node_identity *self,
		  uint64_t initial_seq)
{
	assert(ctx != NULL);
	assert(self != NULL);
	if (sodium_init() < 0)
		return SHOAL_ECRYPTO;
	memset(ctx, 0, sizeof(*ctx));
	ctx->self = self;
	ctx->next_seq = initial_seq;
	int rc = seal_ctx_set_keyring(ctx, &self->ring);
	if (rc != 0)
		return rc;
	ctx->cache = calloc(1, sizeof(*ctx->cache));
	ctx->replay = replay_new(SHOAL_REPLAY_SENDERS_MAX);
	if (ctx->cache == NULL || ctx->replay == NULL) {
		seal_ctx_free(ctx);
		return SHOAL_ENOMEM;
	}
	return 0;
}

int seal_ctx_set_replay_senders_max(struct seal_ctx *ctx, size_t senders_max)
{
	assert(ctx->replay != NULL);
	if (senders_max < 1 || senders_max > SHOAL_REPLAY_SENDERS_MAX)
		return SHOAL_EINVAL;
	if (ctx->replay->count > 0)
		return SHOAL_ESTATE;
	struct seal_replay *r = replay_new(senders_max);
	if (r == NULL)
		return SHOAL_ENOMEM;
	free(ctx->replay);
	ctx->replay = r;
	return 0;
}

void seal_ctx_free(struct seal_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->cache != NULL)
		for (size_t i = 0; i < SEAL_CACHE_SETS; i++)
			free(ctx->cache->set[i]);
	free(ctx->cache);
	free(ctx->replay);
	ctx->cache = NULL;
	ctx->replay = NULL;
	sodium_memzero(&ctx->ring, sizeof(ctx->ring));
	sodium_memzero(ctx->plain, sizeof(ctx->plain));
}

size_t seal_replay_count(const struct seal_ctx *ctx)
{
	assert(ctx->replay != NULL);
	return ctx->replay->count;
}

/* --- sealing ------------------------------------------------------------- */

/* Builds "shoal/packet/v1" || fleet_id || body in ctx->signed_msg. */
static size_t signed_message(struct seal_ctx *ctx, const uint8_t *body, size_t len)
{
	struct wr w = wr_init(ctx->signed_msg, sizeof(ctx->signed_msg));
	wr_bytes(&w, SEAL_DOMAIN, sizeof(SEAL_DOMAIN) - 1);
	wr_bytes(&w, ctx->self->fleet.fleet_id, SHOAL_FLEET_ID_BYTES);
	wr_bytes(&w, body, len);
	assert(wr_ok(&w)); /* body ≤ SEAL_PLAIN_BYTES_MAX by the callers' bounds */
	return w.len;
}

size_t seal_payload_max(const struct node_identity *self)
{
	size_t cert_len = self->cert_len;
	assert(cert_len <= SHOAL_CERT_BYTES_MAX);
	/* A certificate shorter than any that verifies (no signature) gets no
	 * more than the decoders accept. */
	if (cert_len < SHOAL_CERT_BYTES_MIN)
		cert_len = SHOAL_CERT_BYTES_MIN;
	return SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(cert_len);
}

int seal_packet(struct seal_ctx *ctx, const uint8_t *payload, size_t len,
		uint8_t *out, size_t cap, size_t *out_len)
{
	assert(ctx != NULL && ctx->cache != NULL);
	assert(ctx->self->cert_len <= SHOAL_CERT_BYTES_MAX);
	if (len > seal_payload_max(ctx->self))
		return SHOAL_ETOOBIG;
	if (ctx->next_seq == UINT64_MAX)
		return SHOAL_EFULL;
	const struct node_identity *self = ctx->self;
	size_t plain_len = SEAL_PLAIN_FIXED_BYTES + self->cert_len + len;
	size_t total = SEAL_HEADER_BYTES + SEAL_MAC_BYTES + plain_len;
	if (total > cap || total > SHOAL_UDP_PACKET_BYTES_MAX)
		return SHOAL_ETOOBIG;

	uint8_t plain[SEAL_PLAIN_BYTES_MAX];
	struct wr w = wr_init(plain, sizeof(plain));
	wr_u64(&w, ctx->next_seq);
	wr_u16(&w, (uint16_t)self->cert_len);
	wr_bytes(&w, self->cert_bytes, self->cert_len);
	wr_u16(&w, (uint16_t)len);
	wr_bytes(&w, payload, len);
	size_t msg_len = signed_message(ctx, plain, w.len);
	uint8_t sig[SEAL_SIG_BYTES];
	crypto_sign_ed25519_detached(sig, NULL, ctx->signed_msg, msg_len,
				     self->kp.sk);
	wr_bytes(&w, sig, sizeof(sig));
	assert(wr_ok(&w) && w.len == plain_len);

	struct wr h = wr_init(out, cap);
	wr_u8(&h, SEAL_VERSION);
	wr_bytes(&h, ctx->key_ids[0], SEAL_KEY_ID_BYTES);
	uint8_t nonce[SEAL_NONCE_BYTES];
	randombytes_buf(nonce, sizeof(nonce));
	wr_bytes(&h, nonce, sizeof(nonce));
	assert(wr_ok(&h) && h.len == SEAL_HEADER_BYTES);
	unsigned long long clen = 0;
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		out + SEAL_HEADER_BYTES, &clen, plain, plain_len, out,
		SEAL_HEADER_BYTES, NULL, nonce, ctx->ring.keys[0]);
	sodium_memzero(plain, sizeof(plain));
	assert(SEAL_HEADER_BYTES + clen == total);
	*out_len = total;
	ctx->next_seq++;
	ctx->stats.sent++;
	return 0;
}

/* --- opening ------------------------------------------------------------- */

int seal_decode_plain(const uint8_t *plain, size_t len, struct seal_plain *out)
{
	assert(plain != NULL || len == 0);
	assert(out != NULL);
	struct rd r = rd_init(plain, len);
	struct seal_plain p;
	uint16_t n;
	if (!rd_u64(&r, &p.seq) || !rd_u16(&r, &n))
		return SHOAL_ETRUNC;
	if (n > SHOAL_CERT_BYTES_MAX)
		return SHOAL_ETOOBIG;
	p.cert_len = n;
	if (!rd_bytes(&r, p.cert_len, &p.cert) || !rd_u16(&r, &n))
		return SHOAL_ETRUNC;
	if (n > SHOAL_UDP_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	p.payload_len = n;
	if (!rd_bytes(&r, p.payload_len, &p.payload))
		return SHOAL_ETRUNC;
	p.signed_len = len - rd_left(&r);
	if (!rd_bytes(&r, SEAL_SIG_BYTES, &p.sig))
		return SHOAL_ETRUNC;
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	*out = p;
	return 0;
}

/* Counts a drop and returns its code. */
static int drop(uint64_t *counter, int err)
{
	assert(err < 0);
	(*counter)++;
	return err;
}

/* Finds the sender's verified certificate: from the cache (expiry
 * re-checked) or by decoding and verifying it. *hit says which; the caller
 * inserts or touches only once the whole packet has passed. */
static int sender_cert(struct seal_ctx *ctx, const struct seal_plain *p,
		       uint64_t now_ms, uint8_t hash[crypto_generichash_BYTES],
		       struct admission_cert *cert, struct cache_entry **hit)
{
	crypto_generichash(hash, crypto_generichash_BYTES, p->cert, p->cert_len,
			   NULL, 0);
	*hit = cache_find(ctx->cache, hash);
	if (*hit != NULL) {
		*cert = (*hit)->cert;
		if (now_ms >= cert->expires_ms)
			return drop(&ctx->stats.expired, SHOAL_EEXPIRED);
		return 0;
	}
	if (cert_decode(p->cert, p->cert_len, cert) != 0)
		return drop(&ctx->stats.malformed, SHOAL_EPROTO);
	switch (cert_verify(cert, &ctx->self->fleet, now_ms)) {
	case 0:
		return 0;
	case SHOAL_EFLEET:
		return drop(&ctx->stats.fleet, SHOAL_EFLEET);
	case SHOAL_EEXPIRED:
		return drop(&ctx->stats.expired, SHOAL_EEXPIRED);
	default:
		/* A bad admission signature or too few signers: either way the
		 * sender is not admitted (EBADSIG is kept for the packet's own
		 * signature). */
		return drop(&ctx->stats.unadmitted, SHOAL_EUNADMITTED);
	}
}

int seal_open(struct seal_ctx *ctx, const uint8_t *pkt, size_t len,
	      uint64_t now_ms, struct seal_sender *sender,
	      const uint8_t **payload, size_t *payload_len)
{
	assert(ctx != NULL && ctx->cache != NULL && ctx->replay != NULL);
	assert(pkt != NULL || len == 0);
	struct seal_stats *st = &ctx->stats;

	if (len > SHOAL_UDP_PACKET_BYTES_MAX)
		return drop(&st->too_big, SHOAL_ETOOBIG);
	if (len < SEAL_HEADER_BYTES + SEAL_MAC_BYTES)
		return drop(&st->truncated, SHOAL_ETRUNC);
	struct rd r = rd_init(pkt, len);
	uint8_t version;
	const uint8_t *key_id, *nonce;
	if (!rd_u8(&r, &version) || !rd_bytes(&r, SEAL_KEY_ID_BYTES, &key_id) ||
	    !rd_bytes(&r, SEAL_NONCE_BYTES, &nonce))
		return drop(&st->truncated, SHOAL_ETRUNC);
	if (version != SEAL_VERSION)
		return drop(&st->version, SHOAL_EVERSION);

	/* Try each ring key whose id matches (ids are 32 bits, so two keys
	 * could share one). */
	const uint8_t *ct = pkt + SEAL_HEADER_BYTES;
	size_t ct_len = rd_left(&r);
	bool known = false, opened = false;
	unsigned long long plain_len = 0;
	for (size_t i = 0; i < ctx->ring.count && !opened; i++) {
		if (memcmp(ctx->key_ids[i], key_id, SEAL_KEY_ID_BYTES) != 0)
			continue;
		known = true;
		opened = crypto_aead_xchacha20poly1305_ietf_decrypt(
				 ctx->plain, &plain_len, NULL, ct, ct_len, pkt,
				 SEAL_HEADER_BYTES, nonce, ctx->ring.keys[i]) == 0;
	}
	if (!known)
		return drop(&st->unknown_key, SHOAL_EBADMAC);
	if (!opened)
		return drop(&st->bad_mac, SHOAL_EBADMAC);
	assert(plain_len <= sizeof(ctx->plain));

	struct seal_plain p;
	if (seal_decode_plain(ctx->plain, (size_t)plain_len, &p) != 0)
		return drop(&st->malformed, SHOAL_EPROTO);

	uint8_t hash[crypto_generichash_BYTES];
	struct admission_cert cert;
	struct cache_entry *hit;
	int rc = sender_cert(ctx, &p, now_ms, hash, &cert, &hit);
	if (rc != 0)
		return rc;

	size_t msg_len = signed_message(ctx, ctx->plain, p.signed_len);
	if (crypto_sign_ed25519_verify_detached(p.sig, ctx->signed_msg, msg_len,
						cert.node_id) != 0)
		return drop(&st->bad_sig, SHOAL_EBADSIG);
	if (sodium_memcmp(cert.node_id, ctx->self->kp.pk, SHOAL_NODE_ID_BYTES) == 0)
		return drop(&st->self, SHOAL_EREPLAY);

	uint64_t h = replay_hash(ctx->replay, cert.node_id);
	size_t slot;
	struct replay_entry *e = replay_find(ctx->replay, cert.node_id, h, &slot);
	if (window_check(e, p.seq) != 0)
		return drop(&st->replay, SHOAL_EREPLAY);

	/* Everything passed: now, and only now, change state. */
	replay_accept(&ctx->replay, cert.node_id, p.seq, now_ms);
	if (hit != NULL)
		cache_touch(ctx->cache, hit);
	else
		cache_insert(ctx->cache, hash, &cert);
	st->accepted++;

	memset(sender, 0, sizeof(*sender));
	memcpy(sender->node_id, cert.node_id, SHOAL_NODE_ID_BYTES);
	memcpy(sender->name, cert.name, sizeof(sender->name));
	sender->tags_count = cert.tags_count;
	memcpy(sender->tags, cert.tags, sizeof(sender->tags));
	sender->cert_expires_ms = cert.expires_ms;
	sender->seq = p.seq;
	*payload = p.payload;
	*payload_len = p.payload_len;
	return 0;
}

/* --- stats --------------------------------------------------------------- */

#define SEAL_STATS_FIELDS(X) \
	X(sent) X(accepted) X(too_big) X(truncated) X(version) X(unknown_key) \
	X(bad_mac) X(malformed) X(fleet) X(unadmitted) X(expired) X(bad_sig) \
	X(self) X(replay)

size_t seal_stats_format(const struct seal_stats *s, char *out, size_t cap)
{
	assert(s != NULL);
	assert(out != NULL || cap == 0);
	size_t need = 0;
#define X(f)                                                                   \
	{                                                                      \
		int n = snprintf(need < cap ? out + need : NULL,               \
				 need < cap ? cap - need : 0, "%s" #f "=%llu",   \
				 need ? " " : "", (unsigned long long)s->f);   \
		assert(n > 0);                                                 \
		need += (size_t)n;                                             \
	}
	SEAL_STATS_FIELDS(X)
#undef X
	if (cap > 0 && need >= cap)
		out[cap - 1] = '\0';
	return need;
}

json_t *seal_stats_json(const struct seal_stats *s)
{
	assert(s != NULL);
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
#define X(f)                                                                  \
	if (json_object_set_new(o, #f, json_integer((json_int_t)s->f)) != 0) { \
		json_decref(o);                                               \
		return NULL;                                                  \
	}
	SEAL_STATS_FIELDS(X)
#undef X
	return o;
}
