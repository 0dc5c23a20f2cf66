/*
 * fuzz_packet.c — seal_open on arbitrary datagrams.
 *
 * A fixed fleet (2-of-2 admission, a two-key gossip ring) with node A as
 * sender and node B as receiver, all keys from fixed seeds, so the seed
 * corpus of valid sealed packets stays valid across runs. The receiver's
 * context is made fresh for every input, so a run is deterministic.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_packet
 * writes DIR/packet/ and DIR/packet_plain/ (the plaintexts of the same
 * packets, for fuzz_packet_plain) and exits.
 *
 * fuzz_packet_plain.c includes this file with FUZZ_PACKET_FIXTURE_ONLY for
 * the fixture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "runtime/seal.h"
#include "trust/identity.h"

#define FX_NOW_MS 1700000000000ull

struct fx {
	struct fleet_public fleet;
	struct gossip_keyring ring;
	struct node_identity a, b;
};

static void fx_keypair(struct shoal_keypair *kp, uint8_t seed_byte)
{
	uint8_t seed[32];
	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
}

static void fx_node(struct fx *x, struct node_identity *n, uint8_t seed_byte,
		    const char *name, const struct shoal_keypair adm[2])
{
	memset(n, 0, sizeof(*n));
	fx_keypair(&n->kp, seed_byte);
	struct admission_cert *c = &n->cert;
	memcpy(c->fleet_id, x->fleet.fleet_id, sizeof(c->fleet_id));
	memcpy(c->node_id, n->kp.pk, sizeof(c->node_id));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->tags_count = 2;
	snprintf(c->tags[0], sizeof(c->tags[0]), "canary");
	snprintf(c->tags[1], sizeof(c->tags[1]), "eu-west");
	c->issued_ms = 1;
	c->expires_ms = FX_NOW_MS * 2;
	if (cert_sign(c, 0, adm[0].sk) != 0 || cert_sign(c, 1, adm[1].sk) != 0 ||
	    cert_encode(c, n->cert_bytes, sizeof(n->cert_bytes), &n->cert_len) != 0)
		abort();
	n->fleet = x->fleet;
	n->ring = x->ring;
}

static void fx_make(struct fx *x)
{
	if (sodium_init() < 0)
		abort();
	memset(x, 0, sizeof(*x));
	memset(x->fleet.fleet_id, 0x11, sizeof(x->fleet.fleet_id));
	struct shoal_keypair adm[2];
	fx_keypair(&adm[0], 0xd0);
	fx_keypair(&adm[1], 0xd1);
	x->fleet.admission_count = 2;
	x->fleet.threshold = 2;
	memcpy(x->fleet.admission_pks[0], adm[0].pk, 32);
	memcpy(x->fleet.admission_pks[1], adm[1].pk, 32);
	x->ring.count = 2;
	memset(x->ring.keys[0], 0x22, 32);
	memset(x->ring.keys[1], 0x33, 32);
	fx_node(x, &x->a, 0xa0, "fuzz-a", adm);
	fx_node(x, &x->b, 0xb0, "fuzz-b", adm);
	sodium_memzero(adm, sizeof(adm));
}

static struct fx fx;

#ifndef FUZZ_PACKET_FIXTURE_ONLY

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Seals a few packets from A (payloads of several sizes, primary and
 * secondary key) and writes them and their plaintexts. */
static void write_corpus(const char *root)
{
	char dir_packet[4096], dir_plain[4096];
	snprintf(dir_packet, sizeof(dir_packet), "%s/packet", root);
	snprintf(dir_plain, sizeof(dir_plain), "%s/packet_plain", root);
	mkdir(dir_packet, 0755);
	mkdir(dir_plain, 0755);
	struct seal_ctx c;
	if (seal_ctx_init(&c, &fx.a, 1000) != 0)
		abort();
	static uint8_t payload[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	const size_t sizes[] = {0, 1, 5, 64, 300, SHOAL_UDP_PAYLOAD_BYTES_MAX};
	for (size_t i = 0; i < 2 * sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t size = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		int secondary = i >= sizeof(sizes) / sizeof(sizes[0]);
		struct gossip_keyring ring = fx.ring;
		if (secondary) {
			memcpy(ring.keys[0], fx.ring.keys[1], 32);
			memcpy(ring.keys[1], fx.ring.keys[0], 32);
		}
		if (seal_ctx_set_keyring(&c, &ring) != 0)
			abort();
		uint8_t pkt[SHOAL_UDP_PACKET_BYTES_MAX];
		size_t len;
		if (seal_packet(&c, payload, size, pkt, sizeof(pkt), &len) != 0)
			abort();
		uint8_t plain[SHOAL_UDP_PACKET_BYTES_MAX];
		unsigned long long plen;
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(
			    plain, &plen, NULL, pkt + SEAL_HEADER_BYTES,
			    len - SEAL_HEADER_BYTES, pkt, SEAL_HEADER_BYTES, pkt + 5,
			    ring.keys[0]) != 0)
			abort();
		char name[64];
		snprintf(name, sizeof(name), "valid-%zu-%s", size,
			 secondary ? "secondary" : "primary");
		write_file(dir_packet, name, pkt, len);
		write_file(dir_plain, name, plain, (size_t)plen);
	}
	seal_ctx_free(&c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fx_make(&fx);
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_ctx c;
	if (seal_ctx_init(&c, &fx.b, 1) != 0)
		abort();
	struct seal_sender s;
	const uint8_t *pl;
	size_t pl_len;
	int rc = seal_open(&c, data, size, FX_NOW_MS, &s, &pl, &pl_len);
	if (rc == 0) {
		/* Only A can produce a packet that opens. */
		if (memcmp(s.node_id, fx.a.kp.pk, 32) != 0 ||
		    pl_len > SHOAL_UDP_PAYLOAD_BYTES_MAX)
			abort();
		/* A second open of the same bytes is a replay. */
		if (seal_open(&c, data, size, FX_NOW_MS, &s, &pl, &pl_len) !=
		    SHOAL_EREPLAY)
			abort();
	}
	seal_ctx_free(&c);
	return 0;
}

#endif
