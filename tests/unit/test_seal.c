/* test_seal.c — sealed UDP packets: round trip, every drop reason, replay
 * windows, key rotation; every drop leaves the replay window as it was. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "runtime/seal.h"
#include "trust/identity.h"

#define NOW 1000000u
#define LATER 9000000000u

struct fleet_fx {
	struct fleet_public pub;
	struct shoal_keypair adm[SHOAL_ADMISSION_KEYS_MAX];
	struct gossip_keyring ring;
};

static void fleet_make(struct fleet_fx *f, unsigned count, unsigned threshold)
{
	memset(f, 0, sizeof(*f));
	randombytes_buf(f->pub.fleet_id, sizeof(f->pub.fleet_id));
	f->pub.admission_count = (uint8_t)count;
	f->pub.threshold = (uint8_t)threshold;
	for (unsigned i = 0; i < count; i++) {
		keys_generate(&f->adm[i]);
		memcpy(f->pub.admission_pks[i], f->adm[i].pk, 32);
	}
	f->ring.count = 1;
	randombytes_buf(f->ring.keys[0], 32);
}

/* Signs c with admission keys [0, signers) of f and stores it in n. */
static void node_set_cert(struct node_identity *n, const struct fleet_fx *f,
			  struct admission_cert *c, unsigned signers)
{
	for (unsigned i = 0; i < signers; i++)
		assert_int_equal(cert_sign(c, (uint8_t)i, f->adm[i].sk), 0);
	n->cert = *c;
	assert_int_equal(cert_encode(c, n->cert_bytes, sizeof(n->cert_bytes),
				     &n->cert_len), 0);
}

static void node_make(struct node_identity *n, const struct fleet_fx *f,
		      const char *name, uint64_t expires_ms, unsigned signers)
{
	memset(n, 0, sizeof(*n));
	keys_generate(&n->kp);
	struct admission_cert c;
	memset(&c, 0, sizeof(c));
	memcpy(c.fleet_id, f->pub.fleet_id, sizeof(c.fleet_id));
	memcpy(c.node_id, n->kp.pk, 32);
	snprintf(c.name, sizeof(c.name), "%s", name);
	c.tags_count = 1;
	snprintf(c.tags[0], sizeof(c.tags[0]), "canary");
	c.issued_ms = 1;
	c.expires_ms = expires_ms;
	node_set_cert(n, f, &c, signers);
	n->fleet = f->pub;
	n->ring = f->ring;
}

/* A fleet of threshold 2 of 3 with nodes a and b, and their seal contexts. */
struct fx {
	struct fleet_fx fleet;
	struct node_identity a, b;
	struct seal_ctx ca, cb;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	fleet_make(&x->fleet, 3, 2);
	node_make(&x->a, &x->fleet, "node-a", LATER, 2);
	node_make(&x->b, &x->fleet, "node-b", LATER, 2);
	assert_int_equal(seal_ctx_init(&x->ca, &x->a, 100), 0);
	assert_int_equal(seal_ctx_init(&x->cb, &x->b, 500), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	seal_ctx_free(&x->ca);
	seal_ctx_free(&x->cb);
	free(x);
	return 0;
}

struct pkt {
	uint8_t b[SHOAL_UDP_PACKET_BYTES_MAX];
	size_t len;
};

static void seal_str(struct seal_ctx *c, const char *s, struct pkt *p)
{
	assert_int_equal(seal_packet(c, (const uint8_t *)s, strlen(s), p->b,
				     sizeof(p->b), &p->len), 0);
}

/* Opens p at b and returns the result code; on success checks the payload. */
static int open_at(struct seal_ctx *c, const struct pkt *p, uint64_t now,
		   const char *expect)
{
	struct seal_sender s;
	const uint8_t *pl = NULL;
	size_t pl_len = 0;
	int rc = seal_open(c, p->b, p->len, now, &s, &pl, &pl_len);
	if (rc == 0 && expect != NULL) {
		assert_int_equal(pl_len, strlen(expect));
		assert_memory_equal(pl, expect, pl_len);
	}
	return rc;
}

static void round_trip(void **state)
{
	struct fx *x = *state;
	struct pkt p;
	seal_str(&x->ca, "hello", &p);
	struct seal_sender s;
	const uint8_t *pl;
	size_t pl_len;
	assert_int_equal(seal_open(&x->cb, p.b, p.len, NOW, &s, &pl, &pl_len), 0);
	assert_int_equal(pl_len, 5);
	assert_memory_equal(pl, "hello", 5);
	assert_memory_equal(s.node_id, x->a.kp.pk, 32);
	assert_string_equal(s.name, "node-a");
	assert_int_equal(s.tags_count, 1);
	assert_string_equal(s.tags[0], "canary");
	assert_int_equal(s.seq, 100);
	assert_int_equal(s.cert_expires_ms, LATER);
	assert_int_equal(x->cb.stats.accepted, 1);
	assert_int_equal(x->ca.stats.sent, 1);
	assert_int_equal(seal_replay_count(&x->cb), 1);

	/* The largest payload a's certificate leaves fills one packet
	 * exactly; one more byte does not fit. */
	size_t max = seal_payload_max(&x->a);
	assert_int_equal(max, SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(x->a.cert_len));
	static uint8_t big[SHOAL_UDP_PAYLOAD_BYTES_MAX + 1];
	memset(big, 'x', sizeof(big));
	assert_int_equal(seal_packet(&x->ca, big, max + 1, p.b, sizeof(p.b), &p.len),
			 SHOAL_ETOOBIG);
	assert_int_equal(seal_packet(&x->ca, big, max, p.b, sizeof(p.b), &p.len), 0);
	assert_int_equal(p.len, SHOAL_UDP_PACKET_BYTES_MAX);
	assert_int_equal(seal_open(&x->cb, p.b, p.len, NOW, &s, &pl, &pl_len), 0);
	assert_int_equal(pl_len, max);
	/* An output buffer too small is refused, not overrun. */
	assert_int_equal(seal_packet(&x->ca, big, 10, p.b, 100, &p.len), SHOAL_ETOOBIG);
}

/* The payload gets what the sender's certificate leaves: the smallest
 * certificate that verifies is SHOAL_CERT_BYTES_MIN and leaves the largest
 * payload any packet carries; the largest certificate leaves
 * SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT, the cores' default; and a packet with
 * the smallest certificate and the largest payload opens. */
static void payload_bound_follows_cert(void **state)
{
	(void)state;
	struct fleet_fx f;
	fleet_make(&f, SHOAL_ADMISSION_SIGS_MAX, 1);
	static struct node_identity small, large, peer;
	node_make(&peer, &f, "peer", LATER, 1);

	node_make(&small, &f, "s", LATER, 1);
	struct admission_cert c = small.cert;
	c.tags_count = 0;
	c.sigs_count = 0;
	node_set_cert(&small, &f, &c, 1);
	assert_int_equal(small.cert_len, SHOAL_CERT_BYTES_MIN);
	assert_int_equal(seal_payload_max(&small), SHOAL_UDP_PAYLOAD_BYTES_MAX);
	assert_int_equal(cert_verify(&small.cert, &f.pub, NOW), 0);

	/* Longest name, every tag at its longest, every signature. */
	node_make(&large, &f, "x", LATER, 1);
	c = large.cert;
	memset(c.name, 'n', SHOAL_NAME_BYTES_MAX);
	c.name[SHOAL_NAME_BYTES_MAX] = '\0';
	c.tags_count = SHOAL_TAGS_COUNT_MAX;
	for (size_t i = 0; i < SHOAL_TAGS_COUNT_MAX; i++) {
		memset(c.tags[i], 't', SHOAL_TAG_BYTES_MAX);
		c.tags[i][SHOAL_TAG_BYTES_MAX] = '\0';
	}
	c.sigs_count = 0;
	node_set_cert(&large, &f, &c, SHOAL_ADMISSION_SIGS_MAX);
	assert_true(large.cert_len <= SHOAL_CERT_BYTES_MAX);
	assert_true(seal_payload_max(&large) >= SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT);
	assert_true(seal_payload_max(&large) < seal_payload_max(&peer));

	/* The smallest certificate's largest payload goes through. */
	struct seal_ctx cs, cp;
	assert_int_equal(seal_ctx_init(&cs, &small, 1), 0);
	assert_int_equal(seal_ctx_init(&cp, &peer, 1), 0);
	static uint8_t big[SHOAL_UDP_PAYLOAD_BYTES_MAX + 1];
	memset(big, 'y', sizeof(big));
	struct pkt p;
	assert_int_equal(seal_packet(&cs, big, sizeof(big), p.b, sizeof(p.b), &p.len),
			 SHOAL_ETOOBIG);
	assert_int_equal(seal_packet(&cs, big, sizeof(big) - 1, p.b, sizeof(p.b), &p.len), 0);
	assert_int_equal(p.len, SHOAL_UDP_PACKET_BYTES_MAX);
	struct seal_sender s;
	const uint8_t *pl;
	size_t pl_len;
	assert_int_equal(seal_open(&cp, p.b, p.len, NOW, &s, &pl, &pl_len), 0);
	assert_int_equal(pl_len, SHOAL_UDP_PAYLOAD_BYTES_MAX);
	seal_ctx_free(&cs);
	seal_ctx_free(&cp);
}

/* After a drop, the genuine packet with the same seq is still accepted. */
static void assert_window_untouched(struct fx *x, const struct pkt *genuine,
				    size_t senders_before)
{
	assert_int_equal(seal_replay_count(&x->cb), senders_before);
	assert_int_equal(open_at(&x->cb, genuine, NOW, NULL), 0);
}

static void bad_mac(void **state)
{
	struct fx *x = *state;
	struct pkt p, bad;
	seal_str(&x->ca, "payload", &p);
	bad = p;
	bad.b[SEAL_HEADER_BYTES + 3] ^= 0x01;
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_EBADMAC);
	bad = p;
	bad.b[5] ^= 0x80; /* the nonce is authenticated as AD */
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_EBADMAC);
	bad = p;
	bad.len--; /* a cut tag fails the MAC */
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_EBADMAC);
	assert_int_equal(x->cb.stats.bad_mac, 3);
	assert_int_equal(x->cb.stats.accepted, 0);
	assert_window_untouched(x, &p, 0);
}

static void version_truncated_oversized(void **state)
{
	struct fx *x = *state;
	struct pkt p, bad;
	seal_str(&x->ca, "payload", &p);
	bad = p;
	bad.b[0] = 2;
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_EVERSION);
	bad = p;
	bad.len = SEAL_HEADER_BYTES + SEAL_MAC_BYTES - 1;
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_ETRUNC);
	bad.len = 0;
	assert_int_equal(open_at(&x->cb, &bad, NOW, NULL), SHOAL_ETRUNC);
	static uint8_t huge[SHOAL_UDP_PACKET_BYTES_MAX + 1];
	memcpy(huge, p.b, p.len);
	struct seal_sender s;
	const uint8_t *pl;
	size_t pl_len;
	assert_int_equal(seal_open(&x->cb, huge, sizeof(huge), NOW, &s, &pl, &pl_len),
			 SHOAL_ETOOBIG);
	assert_int_equal(x->cb.stats.version, 1);
	assert_int_equal(x->cb.stats.truncated, 2);
	assert_int_equal(x->cb.stats.too_big, 1);
	assert_window_untouched(x, &p, 0);
}

/* A packet under the right key whose plaintext is not a valid plaintext. */
static void malformed_plaintext(void **state)
{
	struct fx *x = *state;
	struct pkt p;
	uint8_t plain[40];
	memset(plain, 0xff, sizeof(plain)); /* cert_len 0xffff */
	uint8_t key_id[32];
	crypto_generichash(key_id, 32, x->fleet.ring.keys[0], 32, NULL, 0);
	p.b[0] = SEAL_VERSION;
	memcpy(p.b + 1, key_id, SEAL_KEY_ID_BYTES);
	randombytes_buf(p.b + 5, SEAL_NONCE_BYTES);
	unsigned long long clen;
	crypto_aead_xchacha20poly1305_ietf_encrypt(p.b + SEAL_HEADER_BYTES, &clen, plain,
						   sizeof(plain), p.b, SEAL_HEADER_BYTES,
						   NULL, p.b + 5, x->fleet.ring.keys[0]);
	p.len = SEAL_HEADER_BYTES + clen;
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EPROTO);
	assert_int_equal(x->cb.stats.malformed, 1);
}

static void wrong_fleet(void **state)
{
	struct fx *x = *state;
	struct fleet_fx other;
	fleet_make(&other, 3, 2);
	other.ring = x->fleet.ring; /* same gossip key, other admission keys */
	struct node_identity *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	node_make(c, &other, "stranger", LATER, 2);
	struct seal_ctx cc;
	assert_int_equal(seal_ctx_init(&cc, c, 100), 0);
	struct pkt p;
	seal_str(&cc, "hi", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EFLEET);
	assert_int_equal(x->cb.stats.fleet, 1);
	assert_int_equal(seal_replay_count(&x->cb), 0);
	seal_ctx_free(&cc);
	free(c);
}

static void unknown_key_and_rotation(void **state)
{
	struct fx *x = *state;
	struct gossip_keyring fresh = {.count = 1};
	randombytes_buf(fresh.keys[0], 32);
	assert_int_equal(seal_ctx_set_keyring(&x->ca, &fresh), 0);
	struct pkt p;
	seal_str(&x->ca, "new key", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EBADMAC);
	assert_int_equal(x->cb.stats.unknown_key, 1);
	assert_int_equal(x->cb.stats.bad_mac, 0);

	/* Rotation: b accepts the new key as a secondary while a already seals
	 * with it as primary; and a still accepts b's packets under the old. */
	struct gossip_keyring both = {.count = 2};
	memcpy(both.keys[0], x->fleet.ring.keys[0], 32);
	memcpy(both.keys[1], fresh.keys[0], 32);
	assert_int_equal(seal_ctx_set_keyring(&x->cb, &both), 0);
	assert_int_equal(open_at(&x->cb, &p, NOW, "new key"), 0);
	struct gossip_keyring both_a = {.count = 2};
	memcpy(both_a.keys[0], fresh.keys[0], 32);
	memcpy(both_a.keys[1], x->fleet.ring.keys[0], 32);
	assert_int_equal(seal_ctx_set_keyring(&x->ca, &both_a), 0);
	struct pkt q;
	seal_str(&x->cb, "old key", &q);
	assert_int_equal(open_at(&x->ca, &q, NOW, "old key"), 0);

	/* An invalid ring is refused and the old one stays. */
	struct gossip_keyring empty = {.count = 0};
	assert_int_equal(seal_ctx_set_keyring(&x->cb, &empty), SHOAL_EINVAL);
	seal_str(&x->ca, "still", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, "still"), 0);
}

static void replay_window(void **state)
{
	struct fx *x = *state;
	struct pkt p[70];
	for (size_t i = 0; i < 70; i++)
		seal_str(&x->ca, "r", &p[i]); /* seq 100 .. 169 */

	assert_int_equal(open_at(&x->cb, &p[2], NOW, "r"), 0);
	assert_int_equal(open_at(&x->cb, &p[2], NOW, NULL), SHOAL_EREPLAY);
	/* Out of order within the window: accepted once. */
	assert_int_equal(open_at(&x->cb, &p[0], NOW, "r"), 0);
	assert_int_equal(open_at(&x->cb, &p[0], NOW, NULL), SHOAL_EREPLAY);
	assert_int_equal(open_at(&x->cb, &p[1], NOW, "r"), 0);
	/* Jump ahead: seq 169; 169 - 63 = 106 is the oldest still in window. */
	assert_int_equal(open_at(&x->cb, &p[69], NOW, "r"), 0);
	assert_int_equal(open_at(&x->cb, &p[5], NOW, NULL), SHOAL_EREPLAY);
	assert_int_equal(open_at(&x->cb, &p[6], NOW, "r"), 0);
	assert_int_equal(open_at(&x->cb, &p[6], NOW, NULL), SHOAL_EREPLAY);
	assert_int_equal(open_at(&x->cb, &p[68], NOW, "r"), 0);
	assert_int_equal(open_at(&x->cb, &p[69], NOW, NULL), SHOAL_EREPLAY);
	assert_int_equal(x->cb.stats.replay, 5);
	assert_int_equal(x->cb.stats.accepted, 6);
	assert_int_equal(seal_replay_count(&x->cb), 1);
}

static void own_packet_dropped(void **state)
{
	struct fx *x = *state;
	struct pkt p;
	seal_str(&x->ca, "me", &p);
	assert_int_equal(open_at(&x->ca, &p, NOW, NULL), SHOAL_EREPLAY);
	assert_int_equal(x->ca.stats.self, 1);
	assert_int_equal(x->ca.stats.replay, 0);
	assert_int_equal(seal_replay_count(&x->ca), 0);
}

static void unadmitted(void **state)
{
	struct fx *x = *state;
	struct node_identity *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	/* Below threshold: one signature where two are needed. */
	node_make(m, &x->fleet, "lonely", LATER, 1);
	struct seal_ctx cm;
	assert_int_equal(seal_ctx_init(&cm, m, 100), 0);
	struct pkt p;
	seal_str(&cm, "x", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EUNADMITTED);
	seal_ctx_free(&cm);

	/* Signed by two keys that are not the fleet's admission keys. */
	struct fleet_fx rogue = x->fleet;
	keys_generate(&rogue.adm[0]);
	keys_generate(&rogue.adm[1]);
	node_make(m, &rogue, "rogue", LATER, 2);
	m->fleet = x->fleet.pub;
	assert_int_equal(seal_ctx_init(&cm, m, 100), 0);
	seal_str(&cm, "x", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EUNADMITTED);
	assert_int_equal(x->cb.stats.unadmitted, 2);
	assert_int_equal(seal_replay_count(&x->cb), 0);
	seal_ctx_free(&cm);
	free(m);
}

static void expired(void **state)
{
	struct fx *x = *state;
	struct node_identity *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	node_make(e, &x->fleet, "shortlived", NOW + 10, 2);
	struct seal_ctx ce;
	assert_int_equal(seal_ctx_init(&ce, e, 100), 0);
	struct pkt p1, p2;
	seal_str(&ce, "one", &p1);
	seal_str(&ce, "two", &p2);
	/* Expired on first sight. */
	assert_int_equal(open_at(&x->cb, &p1, NOW + 10, NULL), SHOAL_EEXPIRED);
	/* Valid now, so its certificate is cached ... */
	assert_int_equal(open_at(&x->cb, &p1, NOW, "one"), 0);
	/* ... and the cache still checks expiry. */
	assert_int_equal(open_at(&x->cb, &p2, NOW + 11, NULL), SHOAL_EEXPIRED);
	assert_int_equal(x->cb.stats.expired, 2);
	assert_int_equal(open_at(&x->cb, &p2, NOW + 9, "two"), 0);
	seal_ctx_free(&ce);
	free(e);
}

/* A node that holds a's certificate but not a's key cannot speak for a;
 * its forged seq N does not burn a's genuine seq N. */
static void forged_sender(void **state)
{
	struct fx *x = *state;
	struct node_identity *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*f = x->a;
	keys_generate(&f->kp); /* someone else's key, a's cert */
	struct seal_ctx cf;
	assert_int_equal(seal_ctx_init(&cf, f, 100), 0);
	struct pkt forged, genuine;
	seal_str(&cf, "evil", &forged);
	seal_str(&x->ca, "good", &genuine); /* both seq 100 */
	assert_int_equal(open_at(&x->cb, &forged, NOW, NULL), SHOAL_EBADSIG);
	assert_int_equal(x->cb.stats.bad_sig, 1);
	assert_window_untouched(x, &genuine, 0);
	/* Replaying the forged packet still fails on its signature. */
	assert_int_equal(open_at(&x->cb, &forged, NOW, NULL), SHOAL_EBADSIG);
	seal_ctx_free(&cf);
	free(f);
}

/* With more senders than the table holds, the one heard from least
 * recently is evicted and every other sender's window survives (the
 * table's deletion must not lose entries that shared its probe run). */
static void replay_table_eviction(void **state)
{
	struct fx *x = *state;
	enum { MAX = 48, EXTRA = 20, N = MAX + EXTRA };
	assert_int_equal(seal_ctx_set_replay_senders_max(&x->cb, MAX), 0);
	struct fleet_fx *f = calloc(1, sizeof(*f));
	struct node_identity *id = calloc(1, sizeof(*id));
	struct pkt *p = calloc(N, sizeof(*p));
	assert_non_null(f);
	assert_non_null(id);
	assert_non_null(p);
	fleet_make(f, 1, 1); /* one signature per cert keeps this fast */
	x->b.fleet = f->pub;
	x->b.ring = f->ring;
	assert_int_equal(seal_ctx_set_keyring(&x->cb, &f->ring), 0);
	struct seal_ctx cs;
	node_make(id, f, "sender", LATER, 1);
	assert_int_equal(seal_ctx_init(&cs, id, 7), 0);
	for (size_t i = 0; i < N; i++) {
		node_make(id, f, "sender", LATER, 1);
		cs.next_seq = 7;
		seal_str(&cs, "e", &p[i]);
		assert_int_equal(open_at(&x->cb, &p[i], NOW + i, "e"), 0);
		assert_true(seal_replay_count(&x->cb) <= MAX);
	}
	assert_int_equal(seal_replay_count(&x->cb), MAX);
	for (size_t i = EXTRA; i < N; i++)
		assert_int_equal(open_at(&x->cb, &p[i], NOW + N, NULL), SHOAL_EREPLAY);
	/* The known cost: an evicted sender's old packet is accepted again. */
	assert_int_equal(open_at(&x->cb, &p[0], NOW + N, "e"), 0);
	assert_int_equal(seal_ctx_set_replay_senders_max(&x->cb, 10), SHOAL_ESTATE);
	assert_int_equal(seal_ctx_set_replay_senders_max(&x->cb, 0), SHOAL_EINVAL);
	seal_ctx_free(&cs);
	free(p);
	free(id);
	free(f);
}

/* The replay table starts small and doubles as senders come: every
 * sender's window survives the moves (a replay is still caught) and no
 * one is evicted below the bound. */
static void replay_table_grows_keeping_windows(void **state)
{
	struct fx *x = *state;
	enum { N = 200 }; /* 64 slots at first: three doublings */
	struct fleet_fx *f = calloc(1, sizeof(*f));
	struct node_identity *id = calloc(1, sizeof(*id));
	struct pkt *p = calloc(N, sizeof(*p));
	assert_non_null(f);
	assert_non_null(id);
	assert_non_null(p);
	fleet_make(f, 1, 1);
	x->b.fleet = f->pub;
	x->b.ring = f->ring;
	assert_int_equal(seal_ctx_set_keyring(&x->cb, &f->ring), 0);
	struct seal_ctx cs;
	node_make(id, f, "sender", LATER, 1);
	assert_int_equal(seal_ctx_init(&cs, id, 7), 0);
	for (size_t i = 0; i < N; i++) {
		node_make(id, f, "sender", LATER, 1);
		cs.next_seq = 7;
		seal_str(&cs, "g", &p[i]);
		assert_int_equal(open_at(&x->cb, &p[i], NOW + i, "g"), 0);
		assert_int_equal(seal_replay_count(&x->cb), i + 1);
	}
	for (size_t i = 0; i < N; i++)
		assert_int_equal(open_at(&x->cb, &p[i], NOW + N, NULL), SHOAL_EREPLAY);
	assert_int_equal(seal_replay_count(&x->cb), N);
	seal_ctx_free(&cs);
	free(p);
	free(id);
	free(f);
}

static void decode_plain_bounds(void **state)
{
	(void)state;
	uint8_t buf[SHOAL_UDP_PACKET_BYTES_MAX];
	struct seal_plain p;
	memset(buf, 0, sizeof(buf));
	/* seq | cert_len 0 | payload_len 0 | sig */
	assert_int_equal(seal_decode_plain(buf, SEAL_PLAIN_FIXED_BYTES, &p), 0);
	assert_int_equal(p.signed_len, 12);
	assert_int_equal(seal_decode_plain(buf, SEAL_PLAIN_FIXED_BYTES - 1, &p),
			 SHOAL_ETRUNC);
	assert_int_equal(seal_decode_plain(buf, SEAL_PLAIN_FIXED_BYTES + 1, &p),
			 SHOAL_ETRAILING);
	buf[8] = (SHOAL_CERT_BYTES_MAX + 1) >> 8;
	buf[9] = (SHOAL_CERT_BYTES_MAX + 1) & 0xff;
	assert_int_equal(seal_decode_plain(buf, sizeof(buf), &p), SHOAL_ETOOBIG);
	buf[8] = 0;
	buf[9] = 0;
	buf[10] = (SHOAL_UDP_PAYLOAD_BYTES_MAX + 1) >> 8;
	buf[11] = (SHOAL_UDP_PAYLOAD_BYTES_MAX + 1) & 0xff;
	assert_int_equal(seal_decode_plain(buf, sizeof(buf), &p), SHOAL_ETOOBIG);
	assert_int_equal(seal_decode_plain(NULL, 0, &p), SHOAL_ETRUNC);
}

static void stats_output(void **state)
{
	struct fx *x = *state;
	struct pkt p;
	seal_str(&x->ca, "s", &p);
	assert_int_equal(open_at(&x->cb, &p, NOW, "s"), 0);
	assert_int_equal(open_at(&x->cb, &p, NOW, NULL), SHOAL_EREPLAY);
	char line[512];
	size_t n = seal_stats_format(&x->cb.stats, line, sizeof(line));
	assert_int_equal(n, strlen(line));
	assert_non_null(strstr(line, "accepted=1 "));
	assert_non_null(strstr(line, " replay=1"));
	assert_non_null(strstr(line, "bad_mac=0"));
	char small[10];
	assert_int_equal(seal_stats_format(&x->cb.stats, small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	json_t *j = seal_stats_json(&x->cb.stats);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "accepted")), 1);
	assert_int_equal(json_integer_value(json_object_get(j, "replay")), 1);
	assert_int_equal(json_object_size(j), 14);
	json_decref(j);
}

int main(void)
{
	assert_int_equal(sodium_init() >= 0, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(version_truncated_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_plaintext, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_fleet, setup, teardown),
		cmocka_unit_test_setup_teardown(unknown_key_and_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(replay_window, setup, teardown),
		cmocka_unit_test_setup_teardown(own_packet_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(unadmitted, setup, teardown),
		cmocka_unit_test_setup_teardown(expired, setup, teardown),
		cmocka_unit_test_setup_teardown(forged_sender, setup, teardown),
		cmocka_unit_test_setup_teardown(replay_table_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(replay_table_grows_keeping_windows, setup, teardown),
		cmocka_unit_test(decode_plain_bounds),
		cmocka_unit_test(payload_bound_follows_cert),
		cmocka_unit_test_setup_teardown(stats_output, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
