/*
 * fuzz_noise.c — the stream handshake's responder and the transport-message
 * decoder on arbitrary bytes.
 *
 * A fixed fleet, two admitted nodes (a responds, b initiates) and fixed
 * static and ephemeral keys make one genuine handshake, replayed in
 * LLVMFuzzerInitialize; the states it passes through are kept and each
 * input starts from a copy. The first input byte picks what the rest is:
 *
 *   0  msg 1 to a fresh responder (stream_hs_read), then its msg 2
 *   1  msg 3 to the responder that sent the genuine msg 2
 *   2  transport messages, u16 length | message ..., to the responder's
 *      receiving CipherState after the genuine handshake (stream_msg_open)
 *   3  a handshake payload checked against b's static key
 *      (stream_hs_payload_check)
 *
 * Never crash, and never accept garbage: an accepted msg 1 is exactly an
 * ephemeral key, an accepted msg 3 is the genuine one, an accepted
 * transport message is the genuine one for its nonce (and opens to its
 * plaintext), an accepted payload is b's; a refused message leaves the
 * nonce where it was. Forging any of these means forging a MAC or a
 * signature.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_noise writes
 * DIR/noise/ (real messages of the genuine run) and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "runtime/noise.h"
#include "runtime/stream.h"
#include "shoal/bytes.h"
#include "trust/identity.h"

#define NOW 1000000u
#define GENUINE_COUNT 4

static struct fleet_public fleet;
static struct node_identity node_a, node_b;
static struct stream_ctx *ctx_a, *ctx_b;
static struct noise_keypair static_b;
static struct noise_handshake resp_fresh;    /* a before msg 1 */
static struct noise_handshake resp_after_msg2; /* a waiting for msg 3 */
static struct noise_cipher resp_rx;          /* a's receiving side after Split */
static uint8_t msg1[SHOAL_STREAM_HS_MSG_BYTES_MAX], msg3[SHOAL_STREAM_HS_MSG_BYTES_MAX];
static size_t msg1_len, msg3_len, msg2_genuine_len;
static uint8_t payload_b[SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX];
static size_t payload_b_len;
/* What b sends after the handshake: sealed messages and their plaintexts. */
static uint8_t genuine[GENUINE_COUNT][2 + 64 + NOISE_TAG_BYTES];
static size_t genuine_len[GENUINE_COUNT]; /* without the u16 length */
static uint8_t plain[GENUINE_COUNT][64];
static size_t plain_len[GENUINE_COUNT];

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_noise: %s\n", what);
		abort();
	}
}

static void keypair_from_seed(struct shoal_keypair *kp, uint8_t seed_byte)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
}

static void noise_keys(struct noise_keypair *kp, uint8_t byte)
{
	uint8_t priv[NOISE_DH_BYTES];
	memset(priv, byte, sizeof(priv));
	noise_keypair_from_private(kp, priv);
}

static void node_make(struct node_identity *n, const struct shoal_keypair *adm,
		      uint8_t seed_byte, const char *name)
{
	memset(n, 0, sizeof(*n));
	keypair_from_seed(&n->kp, seed_byte);
	memcpy(n->cert.fleet_id, fleet.fleet_id, SHOAL_FLEET_ID_BYTES);
	memcpy(n->cert.node_id, n->kp.pk, SHOAL_NODE_ID_BYTES);
	snprintf(n->cert.name, sizeof(n->cert.name), "%s", name);
	n->cert.issued_ms = 1;
	n->cert.expires_ms = 2 * (uint64_t)NOW;
	check(cert_sign(&n->cert, 0, adm->sk) == 0, "cert_sign");
	check(cert_encode(&n->cert, n->cert_bytes, sizeof(n->cert_bytes), &n->cert_len) == 0,
	      "cert_encode");
	n->fleet = fleet;
	n->ring.count = 1;
}

/* The genuine run: b initiates, a responds; every state kept. */
static void genuine_run(void)
{
	struct shoal_keypair adm;
	keypair_from_seed(&adm, 0x01);
	memset(fleet.fleet_id, 0x5e, sizeof(fleet.fleet_id));
	fleet.admission_count = 1;
	fleet.threshold = 1;
	memcpy(fleet.admission_pks[0], adm.pk, 32);
	node_make(&node_a, &adm, 0x0a, "a");
	node_make(&node_b, &adm, 0x0b, "b");
	char err[256];
	ctx_a = stream_ctx_new(&node_a, err, sizeof(err));
	ctx_b = stream_ctx_new(&node_b, err, sizeof(err));
	check(ctx_a && ctx_b, "stream_ctx_new");
	struct noise_keypair static_a, e_a, e_b;
	noise_keys(&static_a, 0x2a);
	noise_keys(&static_b, 0x2b);
	noise_keys(&e_a, 0x3a);
	noise_keys(&e_b, 0x3b);
	stream_ctx_set_noise_static(ctx_a, &static_a);
	stream_ctx_set_noise_static(ctx_b, &static_b);
	check(stream_hs_payload_encode(&node_b, static_b.pub, payload_b, sizeof(payload_b),
				       &payload_b_len) == 0, "payload");

	struct noise_handshake ini, res;
	struct stream_peer peer;
	enum stream_reason why;
	uint8_t msg2[SHOAL_STREAM_HS_MSG_BYTES_MAX];
	size_t msg2_len;
	stream_hs_init(ctx_b, NOISE_INITIATOR, &e_b, &ini);
	stream_hs_init(ctx_a, NOISE_RESPONDER, &e_a, &res);
	resp_fresh = res;
	check(stream_hs_write(ctx_b, &ini, msg1, sizeof(msg1), &msg1_len) == 0, "msg 1");
	check(stream_hs_read(ctx_a, &res, msg1, msg1_len, NULL, NOW, &peer, &why) == 0, "read 1");
	check(stream_hs_write(ctx_a, &res, msg2, sizeof(msg2), &msg2_len) == 0, "msg 2");
	resp_after_msg2 = res;
	msg2_genuine_len = msg2_len;
	check(stream_hs_read(ctx_b, &ini, msg2, msg2_len, node_a.kp.pk, NOW, &peer, &why) == 0,
	      "read 2");
	check(stream_hs_write(ctx_b, &ini, msg3, sizeof(msg3), &msg3_len) == 0, "msg 3");
	check(stream_hs_read(ctx_a, &res, msg3, msg3_len, NULL, NOW, &peer, &why) == 0, "read 3");
	struct noise_cipher b_tx, b_rx, a_tx;
	check(noise_split(&ini, &b_tx, &b_rx, NULL) == 0, "split b");
	check(noise_split(&res, &a_tx, &resp_rx, NULL) == 0, "split a");
	/* Frames as the stream sends them: a chunk, an end, an error, a sync. */
	static const uint8_t frames[GENUINE_COUNT][16] = {
		{2, 0, 0, 0, 3, 's', 't', 'a'}, {3, 0, 0, 0, 0}, {4, 0, 0, 0, 2, 'n', 'o'},
		{5, 0, 0, 0, 1, 1},
	};
	static const size_t frame_lens[GENUINE_COUNT] = {8, 5, 7, 6};
	for (int i = 0; i < GENUINE_COUNT; i++) {
		memcpy(plain[i], frames[i], frame_lens[i]);
		plain_len[i] = frame_lens[i];
		check(stream_msg_seal(&b_tx, plain[i], plain_len[i], genuine[i]) == 0, "seal");
		genuine_len[i] = plain_len[i] + NOISE_TAG_BYTES;
	}
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
		       size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fputc(mode, f) == EOF || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/noise", root);
	mkdir(dir, 0755);
	write_seed(dir, "msg1", 0, msg1, msg1_len);
	write_seed(dir, "msg1-short", 0, msg1, msg1_len - 1);
	write_seed(dir, "msg3", 1, msg3, msg3_len);
	write_seed(dir, "payload", 3, payload_b, payload_b_len);
	uint8_t buf[GENUINE_COUNT * sizeof(genuine[0])];
	size_t len = 0;
	for (int i = 0; i < GENUINE_COUNT; i++) {
		memcpy(buf + len, genuine[i], 2 + genuine_len[i]);
		len += 2 + genuine_len[i];
	}
	write_seed(dir, "transport", 2, buf, len);
	/* The second message before the first. */
	memcpy(buf, genuine[1], 2 + genuine_len[1]);
	memcpy(buf + 2 + genuine_len[1], genuine[0], 2 + genuine_len[0]);
	write_seed(dir, "transport-reordered", 2, buf, 4 + genuine_len[0] + genuine_len[1]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	check(sodium_init() >= 0, "sodium_init");
	genuine_run();
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

static void fuzz_msg1(const uint8_t *p, size_t n)
{
	struct noise_handshake hs = resp_fresh;
	struct stream_peer peer;
	enum stream_reason why;
	int rc = stream_hs_read(ctx_a, &hs, p, n, NULL, NOW, &peer, &why);
	if (rc != 0) {
		check(hs.step == NOISE_STEP_FAILED && why == STREAM_R_HANDSHAKE, "msg 1 refusal");
		return;
	}
	check(n == NOISE_MSG1_OVERHEAD_BYTES, "accepted a msg 1 that is not just a key");
	check(hs.step == NOISE_STEP_MSG2, "msg 1 step");
	uint8_t out[SHOAL_STREAM_HS_MSG_BYTES_MAX];
	size_t len;
	if (stream_hs_write(ctx_a, &hs, out, sizeof(out), &len) == 0)
		check(len == msg2_genuine_len, "msg 2 length");
	noise_handshake_wipe(&hs);
}

static void fuzz_msg3(const uint8_t *p, size_t n)
{
	struct noise_handshake hs = resp_after_msg2;
	struct stream_peer peer;
	enum stream_reason why;
	int rc = stream_hs_read(ctx_a, &hs, p, n, NULL, NOW, &peer, &why);
	if (rc == 0) {
		check(n == msg3_len && memcmp(p, msg3, n) == 0, "accepted a forged msg 3");
		check(memcmp(peer.cert.node_id, node_b.kp.pk, SHOAL_NODE_ID_BYTES) == 0, "msg 3 peer");
	}
	noise_handshake_wipe(&hs);
}

static void fuzz_transport(const uint8_t *p, size_t n)
{
	struct noise_cipher rx = resp_rx;
	struct rd r = rd_init(p, n);
	uint8_t msg[SHOAL_NOISE_MSG_BYTES_MAX], copy[SHOAL_NOISE_MSG_BYTES_MAX];
	uint16_t len;
	const uint8_t *body;
	while (rd_u16(&r, &len) && rd_bytes(&r, len, &body)) {
		memcpy(msg, body, len);
		memcpy(copy, body, len);
		uint64_t n_before = rx.n;
		size_t got;
		if (stream_msg_open(&rx, msg, len, &got) != 0) {
			check(rx.n == n_before, "a refused message moved the nonce");
			continue;
		}
		check(n_before < GENUINE_COUNT, "accepted a message never sent");
		size_t j = (size_t)n_before;
		check(len == genuine_len[j] && memcmp(copy, genuine[j] + 2, len) == 0,
		      "accepted a forged transport message");
		check(got == plain_len[j] && memcmp(msg, plain[j], got) == 0, "wrong plaintext");
		check(rx.n == n_before + 1, "nonce");
	}
	noise_cipher_wipe(&rx);
}

static void fuzz_payload(const uint8_t *p, size_t n)
{
	struct admission_cert cert;
	enum stream_reason why;
	int rc = stream_hs_payload_check(p, n, static_b.pub, &fleet, NULL, NOW, &cert, &why);
	if (rc == 0)
		check(memcmp(cert.node_id, node_b.kp.pk, SHOAL_NODE_ID_BYTES) == 0,
		      "accepted a payload b did not sign");
	else
		check(why != STREAM_R_SERVED && why < STREAM_R_COUNT_, "refusal reason");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 4) {
	case 0:
		fuzz_msg1(p, n);
		break;
	case 1:
		fuzz_msg3(p, n);
		break;
	case 2:
		fuzz_transport(p, n);
		break;
	default:
		fuzz_payload(p, n);
		break;
	}
	return 0;
}
