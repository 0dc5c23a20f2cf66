/*
 * noise.h — the Noise Protocol Framework (revision 34), one protocol:
 *
 *   Noise_XX_25519_ChaChaPoly_SHA256
 *
 *   XX:
 *     -> e
 *     <- e, ee, s, es
 *     -> s, se
 *
 *   DH      X25519 (crypto_scalarmult_curve25519; an all-zero result, from a
 *           low-order public key, is refused)
 *   cipher  ChaCha20-Poly1305 IETF, nonce = 4 zero bytes || n as u64 LE
 *   hash    SHA-256; HKDF from HMAC-SHA256 as the spec's section 4.3
 *
 * The objects are the spec's: a CipherState (k, n), a SymmetricState (ck, h
 * and a CipherState) and a HandshakeState (s, e, rs, re and the role), with
 * the spec's operations on them. This is the secure channel libp2p,
 * WireGuard (IKpsk2) and Lightning (XK) build on; the known-answer test in
 * tests/unit/test_stream.c checks it against the cacophony test vectors.
 *
 * Sans-IO: messages are written to and read from caller buffers; nothing
 * here touches a socket, a clock or the random source, except
 * noise_keypair_generate. Both key pairs, the ephemeral one too, are given
 * to noise_handshake_init, so a run can be replayed from fixed keys.
 *
 * Any failed read or write poisons the handshake (it is wiped and refuses
 * every further call): the spec's rule that a failed handshake is not
 * retried. Secrets are wiped with sodium_memzero by noise_split,
 * noise_handshake_wipe and noise_cipher_wipe.
 */
#ifndef SHOAL_RUNTIME_NOISE_H
#define SHOAL_RUNTIME_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

#define NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_SHA256"
#define NOISE_DH_BYTES 32
#define NOISE_HASH_BYTES 32
#define NOISE_KEY_BYTES 32
#define NOISE_TAG_BYTES 16
/* The spec's bound on every Noise message, handshake or transport. */
#define NOISE_MSG_BYTES_MAX 65535u
#define NOISE_PLAINTEXT_BYTES_MAX (NOISE_MSG_BYTES_MAX - NOISE_TAG_BYTES)
/* Handshake message sizes around their payloads. */
#define NOISE_MSG1_OVERHEAD_BYTES NOISE_DH_BYTES
#define NOISE_MSG2_OVERHEAD_BYTES (2 * NOISE_DH_BYTES + 2 * NOISE_TAG_BYTES)
#define NOISE_MSG3_OVERHEAD_BYTES (NOISE_DH_BYTES + 2 * NOISE_TAG_BYTES)

struct noise_keypair {
	uint8_t pub[NOISE_DH_BYTES];
	uint8_t priv[NOISE_DH_BYTES];
};

/* CipherState. n counts messages; 2^64 - 1 is reserved (refused). */
struct noise_cipher {
	uint8_t k[NOISE_KEY_BYTES];
	uint64_t n;
	bool has_key;
};

/* SymmetricState. */
struct noise_symmetric {
	struct noise_cipher cs;
	uint8_t ck[NOISE_HASH_BYTES];
	uint8_t h[NOISE_HASH_BYTES];
};

enum noise_role {
	NOISE_INITIATOR = 1,
	NOISE_RESPONDER = 2,
};

/* Where a handshake stands: the next message (written by the initiator for
 * MSG1 and MSG3, by the responder for MSG2), then SPLIT (all three done,
 * noise_split is next), DONE (split) or FAILED. */
enum noise_step {
	NOISE_STEP_MSG1 = 1, /* -> e */
	NOISE_STEP_MSG2,     /* <- e, ee, s, es */
	NOISE_STEP_MSG3,     /* -> s, se */
	NOISE_STEP_SPLIT,
	NOISE_STEP_DONE,
	NOISE_STEP_FAILED,
};

/* HandshakeState. rs is the peer's static key once its "s" token has been
 * read (initiator: after MSG2; responder: after MSG3), authenticated by the
 * DH that follows it. */
struct noise_handshake {
	enum noise_role role;
	enum noise_step step;
	struct noise_symmetric ss;
	struct noise_keypair s;
	struct noise_keypair e;
	uint8_t rs[NOISE_DH_BYTES];
	uint8_t re[NOISE_DH_BYTES];
	bool has_rs;
};

/* A fresh X25519 key pair from libsodium's random source. */
void noise_keypair_generate(struct noise_keypair *kp);
/* The key pair of a given private key (the spec's test vectors list only
 * private keys). */
void noise_keypair_from_private(struct noise_keypair *kp,
				const uint8_t priv[NOISE_DH_BYTES]);
void noise_keypair_wipe(struct noise_keypair *kp);

/* Initialize(XX, role, prologue, s, e): h = the protocol name (32 bytes, so
 * not hashed), ck = h, MixHash(prologue). s and e are copied. */
void noise_handshake_init(struct noise_handshake *hs, enum noise_role role,
			  const uint8_t *prologue, size_t prologue_len,
			  const struct noise_keypair *s, const struct noise_keypair *e);
/* WriteMessage(payload): the role's next message into out (cap bytes);
 * *out_len its length. SHOAL_ESTATE if it is not this side's turn,
 * SHOAL_ETOOBIG if the message would exceed out or NOISE_MSG_BYTES_MAX,
 * SHOAL_ECRYPTO if a DH gives zero. */
int noise_write_message(struct noise_handshake *hs, const uint8_t *payload,
			size_t payload_len, uint8_t *out, size_t cap,
			size_t *out_len) SHOAL_MUST_CHECK;
/* ReadMessage(msg): the peer's next message; its payload into payload (cap
 * bytes), *payload_len its length. SHOAL_ESTATE out of turn, SHOAL_ETRUNC
 * shorter than its tokens, SHOAL_ETOOBIG over NOISE_MSG_BYTES_MAX or cap,
 * SHOAL_EBADMAC a decryption failed (wrong prologue, tampered or replayed
 * message), SHOAL_ECRYPTO a DH gave zero. */
int noise_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len,
		       uint8_t *payload, size_t cap, size_t *payload_len) SHOAL_MUST_CHECK;
/* The peer's static key (authenticated) or NULL before it is known. */
const uint8_t *noise_remote_static(const struct noise_handshake *hs);
/* Split(): after the last message, the transport CipherStates of this side
 * (send: initiator→responder for the initiator, the other for the
 * responder) and, if hash is not NULL, the handshake hash h. Wipes hs.
 * SHOAL_ESTATE before the handshake is complete. */
int noise_split(struct noise_handshake *hs, struct noise_cipher *send,
		struct noise_cipher *recv, uint8_t *hash) SHOAL_MUST_CHECK;
void noise_handshake_wipe(struct noise_handshake *hs);

/* EncryptWithAd(ad, in[len]) into out[len + NOISE_TAG_BYTES]; out may be in
 * (in place). SHOAL_ESTATE without a key, SHOAL_ETOOBIG when n is
 * exhausted or len > NOISE_PLAINTEXT_BYTES_MAX. */
int noise_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out) SHOAL_MUST_CHECK;
/* DecryptWithAd(ad, in[len]) into out[len - NOISE_TAG_BYTES]; out may be in.
 * SHOAL_EBADMAC (n unchanged; libsodium zeroes out, so a message opened
 * in place is gone), SHOAL_ETRUNC below a tag,
 * SHOAL_ETOOBIG over NOISE_MSG_BYTES_MAX or n exhausted, SHOAL_ESTATE
 * without a key. */
int noise_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out) SHOAL_MUST_CHECK;
void noise_cipher_wipe(struct noise_cipher *c);

#endif
