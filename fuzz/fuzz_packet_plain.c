/*
 * fuzz_packet_plain.c — the packet checks behind the MAC.
 *
 * A fuzzer cannot forge a Poly1305 tag, so fuzz_packet rarely gets past
 * decryption. Here the input is a plaintext: it goes to seal_decode_plain,
 * and is then sealed under the fixture's gossip key (which we hold) and
 * opened by node B, so the certificate cache, cert_decode/cert_verify, the
 * sender signature check and the replay window all see fuzzed input.
 * Seed corpus: valid plaintexts (written by fuzz_packet, see there).
 */
#define FUZZ_PACKET_FIXTURE_ONLY
#include "fuzz_packet.c"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fx_make(&fx);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seal_plain p;
	if (seal_decode_plain(data, size, &p) == 0) {
		if (p.signed_len + SEAL_SIG_BYTES != size ||
		    p.cert_len > SHOAL_CERT_BYTES_MAX ||
		    p.payload_len > SHOAL_UDP_PAYLOAD_BYTES_MAX)
			abort();
	}
	if (size > SHOAL_UDP_PACKET_BYTES_MAX - SEAL_HEADER_BYTES - SEAL_MAC_BYTES)
		return 0;

	/* Seal the input as-is under the primary key, with a fixed nonce. */
	uint8_t pkt[SHOAL_UDP_PACKET_BYTES_MAX];
	uint8_t key_id[32];
	crypto_generichash(key_id, sizeof(key_id), fx.ring.keys[0], 32, NULL, 0);
	pkt[0] = SEAL_VERSION;
	memcpy(pkt + 1, key_id, SEAL_KEY_ID_BYTES);
	memset(pkt + 1 + SEAL_KEY_ID_BYTES, 0x5a, SEAL_NONCE_BYTES);
	unsigned long long clen;
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		pkt + SEAL_HEADER_BYTES, &clen, data, size, pkt, SEAL_HEADER_BYTES,
		NULL, pkt + 1 + SEAL_KEY_ID_BYTES, fx.ring.keys[0]);

	struct seal_ctx c;
	if (seal_ctx_init(&c, &fx.b, 1) != 0)
		abort();
	struct seal_sender s;
	const uint8_t *pl;
	size_t pl_len;
	size_t len = SEAL_HEADER_BYTES + (size_t)clen;
	int rc = seal_open(&c, pkt, len, FX_NOW_MS, &s, &pl, &pl_len);
	if (rc == 0) {
		/* Only A holds a key whose signature passes. */
		if (memcmp(s.node_id, fx.a.kp.pk, 32) != 0 || pl != c.plain + 12 + p.cert_len)
			abort();
		if (seal_open(&c, pkt, len, FX_NOW_MS, &s, &pl, &pl_len) != SHOAL_EREPLAY)
			abort();
	} else if (rc == SHOAL_EBADMAC || rc == SHOAL_ETRUNC || rc == SHOAL_ETOOBIG) {
		abort(); /* the MAC is ours, so opening must get past it */
	}
	seal_ctx_free(&c);
	return 0;
}
