/*
 * noise.c — Noise_XX_25519_ChaChaPoly_SHA256 (Noise Protocol Framework,
 * revision 34) on libsodium; see noise.h.
 *
 *   XX:
 *     -> e
 *     <- e, ee, s, es
 *     -> s, se
 *
 * Bottom up, as the spec's section 5: CipherState (cipher_*), the
 * SymmetricState (sym_*: MixKey, MixHash, EncryptAndHash, DecryptAndHash,
 * Split, with HKDF from HMAC-SHA256), then the HandshakeState, whose
 * message functions spell out the pattern's tokens in order.
 */
#include "runtime/noise.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

_Static_assert(sizeof(NOISE_PROTOCOL_NAME) - 1 == NOISE_HASH_BYTES,
	       "a 32-byte protocol name is h itself, not hashed (spec 5.2)");
_Static_assert(crypto_aead_chacha20poly1305_IETF_ABYTES == NOISE_TAG_BYTES, "tag");
_Static_assert(crypto_aead_chacha20poly1305_IETF_KEYBYTES == NOISE_KEY_BYTES, "key");
_Static_assert(crypto_aead_chacha20poly1305_IETF_NPUBBYTES == 12, "96-bit nonce");
_Static_assert(crypto_scalarmult_curve25519_BYTES == NOISE_DH_BYTES, "dh");
_Static_assert(crypto_hash_sha256_BYTES == NOISE_HASH_BYTES, "hash");
_Static_assert(crypto_auth_hmacsha256_BYTES == NOISE_HASH_BYTES, "hmac");

/* --- DH ------------------------------------------------------------------ */

void noise_keypair_from_private(struct noise_keypair *kp, const uint8_t priv[NOISE_DH_BYTES])
{
	assert(kp != NULL && priv != NULL);
	memmove(kp->priv, priv, NOISE_DH_BYTES);
	/* The base point never gives zero; libsodium clamps the scalar as
	 * RFC 7748 says, so unclamped test-vector keys give the same keys. */
	int rc = crypto_scalarmult_curve25519_base(kp->pub, kp->priv);
	assert(rc == 0);
	(void)rc;
}

void noise_keypair_generate(struct noise_keypair *kp)
{
	uint8_t priv[NOISE_DH_BYTES];
	randombytes_buf(priv, sizeof(priv));
	noise_keypair_from_private(kp, priv);
	sodium_memzero(priv, sizeof(priv));
}

void noise_keypair_wipe(struct noise_keypair *kp)
{
	sodium_memzero(kp, sizeof(*kp));
}

/* DH(priv, pub). libsodium refuses an all-zero result (the peer sent a
 * low-order point); the spec lets us refuse it and we do, so no handshake
 * runs on a key every attacker knows. */
static int dh(uint8_t out[NOISE_DH_BYTES], const struct noise_keypair *kp,
	      const uint8_t pub[NOISE_DH_BYTES])
{
	if (crypto_scalarmult_curve25519(out, kp->priv, pub) != 0) {
		sodium_memzero(out, NOISE_DH_BYTES);
		return SHOAL_ECRYPTO;
	}
	return 0;
}

/* --- CipherState --------------------------------------------------------- */

static void cipher_init_key(struct noise_cipher *c, const uint8_t k[NOISE_KEY_BYTES])
{
	memcpy(c->k, k, NOISE_KEY_BYTES);
	c->n = 0;
	c->has_key = true;
}

static void nonce_of(uint64_t n, uint8_t nonce[12])
{
	memset(nonce, 0, 4);
	for (unsigned i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i)); /* little-endian */
}

int noise_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out)
{
	assert(c != NULL && out != NULL);
	assert(in != NULL || len == 0);
	if (!c->has_key)
		return SHOAL_ESTATE;
	if (len > NOISE_PLAINTEXT_BYTES_MAX || c->n == UINT64_MAX)
		return SHOAL_ETOOBIG;
	uint8_t nonce[12];
	nonce_of(c->n, nonce);
	unsigned long long clen;
	/* In place (out == in) is supported and tested by libsodium. */
	if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, in, len, ad, ad_len, NULL,
						      nonce, c->k) != 0)
		return SHOAL_ECRYPTO;
	assert(clen == len + NOISE_TAG_BYTES);
	c->n++;
	return 0;
}

int noise_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t ad_len,
		  const uint8_t *in, size_t len, uint8_t *out)
{
	assert(c != NULL && out != NULL);
	assert(in != NULL || len == 0);
	if (!c->has_key)
		return SHOAL_ESTATE;
	if (len < NOISE_TAG_BYTES)
		return SHOAL_ETRUNC;
	if (len > NOISE_MSG_BYTES_MAX || c->n == UINT64_MAX)
		return SHOAL_ETOOBIG;
	uint8_t nonce[12];
	nonce_of(c->n, nonce);
	unsigned long long mlen;
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, in, len, ad, ad_len,
						      nonce, c->k) != 0)
		return SHOAL_EBADMAC; /* n stays: the spec's rule */
	assert(mlen == len - NOISE_TAG_BYTES);
	c->n++;
	return 0;
}

void noise_cipher_wipe(struct noise_cipher *c)
{
	sodium_memzero(c, sizeof(*c));
}

/* --- SymmetricState ------------------------------------------------------ */

static void hmac(uint8_t out[NOISE_HASH_BYTES], const uint8_t key[NOISE_HASH_BYTES],
		 const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, key, NOISE_HASH_BYTES);
	if (a_len > 0)
		crypto_auth_hmacsha256_update(&st, a, a_len);
	if (b_len > 0)
		crypto_auth_hmacsha256_update(&st, b, b_len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* HKDF(ck, ikm, 2) of spec 4.3: temp = HMAC(ck, ikm), out1 = HMAC(temp,
 * 0x01), out2 = HMAC(temp, out1 || 0x02). */
static void hkdf2(const uint8_t ck[NOISE_HASH_BYTES], const uint8_t *ikm, size_t ikm_len,
		  uint8_t out1[NOISE_HASH_BYTES], uint8_t out2[NOISE_HASH_BYTES])
{
	static const uint8_t one = 0x01, two = 0x02;
	uint8_t temp[NOISE_HASH_BYTES], o1[NOISE_HASH_BYTES];
	hmac(temp, ck, ikm, ikm_len, NULL, 0);
	hmac(o1, temp, &one, 1, NULL, 0);
	hmac(out2, temp, o1, sizeof(o1), &two, 1);
	memcpy(out1, o1, sizeof(o1)); /* out1 may alias ck */
	sodium_memzero(temp, sizeof(temp));
	sodium_memzero(o1, sizeof(o1));
}

static void sym_init(struct noise_symmetric *ss)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss->h, NOISE_PROTOCOL_NAME, NOISE_HASH_BYTES);
	memcpy(ss->ck, ss->h, NOISE_HASH_BYTES);
}

static void sym_mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, ss->h, NOISE_HASH_BYTES);
	if (len > 0)
		crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, ss->h);
}

static void sym_mix_key(struct noise_symmetric *ss, const uint8_t ikm[NOISE_DH_BYTES])
{
	uint8_t temp_k[NOISE_HASH_BYTES];
	hkdf2(ss->ck, ikm, NOISE_DH_BYTES, ss->ck, temp_k);
	cipher_init_key(&ss->cs, temp_k); /* HASHLEN = 32: no truncation */
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* DH then MixKey, the DH result wiped. */
static int sym_mix_dh(struct noise_symmetric *ss, const struct noise_keypair *kp,
		      const uint8_t pub[NOISE_DH_BYTES])
{
	uint8_t shared[NOISE_DH_BYTES];
	int rc = dh(shared, kp, pub);
	if (rc == 0)
		sym_mix_key(ss, shared);
	sodium_memzero(shared, sizeof(shared));
	return rc;
}

/* EncryptAndHash: out gets len (+ a tag once a key is set) bytes. */
static int sym_encrypt_and_hash(struct noise_symmetric *ss, const uint8_t *in, size_t len,
				uint8_t *out, size_t *out_len)
{
	if (ss->cs.has_key) {
		int rc = noise_encrypt(&ss->cs, ss->h, NOISE_HASH_BYTES, in, len, out);
		if (rc != 0)
			return rc;
		*out_len = len + NOISE_TAG_BYTES;
	} else {
		if (len > 0)
			memmove(out, in, len);
		*out_len = len;
	}
	sym_mix_hash(ss, out, *out_len);
	return 0;
}

/* DecryptAndHash of in[len] (ciphertext, or plaintext before any key). */
static int sym_decrypt_and_hash(struct noise_symmetric *ss, const uint8_t *in, size_t len,
				uint8_t *out)
{
	if (ss->cs.has_key) {
		int rc = noise_decrypt(&ss->cs, ss->h, NOISE_HASH_BYTES, in, len, out);
		if (rc != 0)
			return rc;
	} else if (len > 0) {
		memmove(out, in, len);
	}
	sym_mix_hash(ss, in, len); /* the ciphertext, as received */
	return 0;
}

/* --- HandshakeState ------------------------------------------------------ */

void noise_handshake_init(struct noise_handshake *hs, enum noise_role role,
			  const uint8_t *prologue, size_t prologue_len,
			  const struct noise_keypair *s, const struct noise_keypair *e)
{
	assert(hs != NULL && s != NULL && e != NULL);
	assert(role == NOISE_INITIATOR || role == NOISE_RESPONDER);
	assert(prologue != NULL || prologue_len == 0);
	memset(hs, 0, sizeof(*hs));
	hs->role = role;
	hs->step = NOISE_STEP_MSG1;
	hs->s = *s;
	hs->e = *e;
	sym_init(&hs->ss);
	sym_mix_hash(&hs->ss, prologue, prologue_len);
	/* XX has no pre-messages. */
}

void noise_handshake_wipe(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}

/* Any failure ends the handshake for good, its secrets gone. */
static int fail(struct noise_handshake *hs, int rc)
{
	assert(rc < 0);
	noise_handshake_wipe(hs);
	hs->step = NOISE_STEP_FAILED;
	return rc;
}

static bool writes(const struct noise_handshake *hs)
{
	return (hs->step == NOISE_STEP_MSG2) == (hs->role == NOISE_RESPONDER) &&
	       hs->step <= NOISE_STEP_MSG3;
}

int noise_write_message(struct noise_handshake *hs, const uint8_t *payload,
			size_t payload_len, uint8_t *out, size_t cap, size_t *out_len)
{
	assert(hs != NULL && out != NULL && out_len != NULL);
	assert(payload != NULL || payload_len == 0);
	if (hs->step == NOISE_STEP_FAILED || !writes(hs))
		return SHOAL_ESTATE;
	size_t overhead = hs->step == NOISE_STEP_MSG1   ? NOISE_MSG1_OVERHEAD_BYTES
			  : hs->step == NOISE_STEP_MSG2 ? NOISE_MSG2_OVERHEAD_BYTES
							: NOISE_MSG3_OVERHEAD_BYTES;
	size_t need = overhead + payload_len;
	if (payload_len > NOISE_MSG_BYTES_MAX - overhead || need > cap)
		return fail(hs, SHOAL_ETOOBIG);
	size_t off = 0, n;
	int rc = 0;
	switch (hs->step) {
	case NOISE_STEP_MSG1: /* -> e */
		memcpy(out, hs->e.pub, NOISE_DH_BYTES);
		sym_mix_hash(&hs->ss, hs->e.pub, NOISE_DH_BYTES);
		off = NOISE_DH_BYTES;
		break;
	case NOISE_STEP_MSG2: /* <- e, ee, s, es */
		memcpy(out, hs->e.pub, NOISE_DH_BYTES);
		sym_mix_hash(&hs->ss, hs->e.pub, NOISE_DH_BYTES);
		off = NOISE_DH_BYTES;
		if ((rc = sym_mix_dh(&hs->ss, &hs->e, hs->re)) != 0) /* ee */
			break;
		if ((rc = sym_encrypt_and_hash(&hs->ss, hs->s.pub, NOISE_DH_BYTES, out + off,
					       &n)) != 0) /* s */
			break;
		off += n;
		rc = sym_mix_dh(&hs->ss, &hs->s, hs->re); /* es, as the responder */
		break;
	default:
		assert(hs->step == NOISE_STEP_MSG3); /* -> s, se */
		if ((rc = sym_encrypt_and_hash(&hs->ss, hs->s.pub, NOISE_DH_BYTES, out, &n)) != 0)
			break;
		off = n;
		rc = sym_mix_dh(&hs->ss, &hs->s, hs->re); /* se, as the initiator */
		break;
	}
	if (rc == 0)
		rc = sym_encrypt_and_hash(&hs->ss, payload, payload_len, out + off, &n);
	if (rc != 0)
		return fail(hs, rc);
	*out_len = off + n;
	assert(*out_len == need);
	hs->step++;
	return 0;
}

int noise_read_message(struct noise_handshake *hs, const uint8_t *msg, size_t len,
		       uint8_t *payload, size_t cap, size_t *payload_len)
{
	assert(hs != NULL && payload_len != NULL);
	assert(msg != NULL || len == 0);
	assert(payload != NULL || cap == 0);
	if (hs->step == NOISE_STEP_FAILED || hs->step > NOISE_STEP_MSG3 || writes(hs))
		return SHOAL_ESTATE;
	size_t overhead = hs->step == NOISE_STEP_MSG1   ? NOISE_MSG1_OVERHEAD_BYTES
			  : hs->step == NOISE_STEP_MSG2 ? NOISE_MSG2_OVERHEAD_BYTES
							: NOISE_MSG3_OVERHEAD_BYTES;
	if (len > NOISE_MSG_BYTES_MAX)
		return fail(hs, SHOAL_ETOOBIG);
	if (len < overhead)
		return fail(hs, SHOAL_ETRUNC);
	if (len - overhead > cap)
		return fail(hs, SHOAL_ETOOBIG);
	const size_t s_len = NOISE_DH_BYTES + NOISE_TAG_BYTES; /* "s" under a key */
	size_t off = 0;
	int rc = 0;
	switch (hs->step) {
	case NOISE_STEP_MSG1: /* -> e */
		memcpy(hs->re, msg, NOISE_DH_BYTES);
		sym_mix_hash(&hs->ss, hs->re, NOISE_DH_BYTES);
		off = NOISE_DH_BYTES;
		break;
	case NOISE_STEP_MSG2: /* <- e, ee, s, es */
		memcpy(hs->re, msg, NOISE_DH_BYTES);
		sym_mix_hash(&hs->ss, hs->re, NOISE_DH_BYTES);
		off = NOISE_DH_BYTES;
		if ((rc = sym_mix_dh(&hs->ss, &hs->e, hs->re)) != 0) /* ee */
			break;
		if ((rc = sym_decrypt_and_hash(&hs->ss, msg + off, s_len, hs->rs)) != 0) /* s */
			break;
		off += s_len;
		hs->has_rs = true;
		rc = sym_mix_dh(&hs->ss, &hs->e, hs->rs); /* es, as the initiator */
		break;
	default:
		assert(hs->step == NOISE_STEP_MSG3); /* -> s, se */
		if ((rc = sym_decrypt_and_hash(&hs->ss, msg, s_len, hs->rs)) != 0) /* s */
			break;
		off = s_len;
		hs->has_rs = true;
		rc = sym_mix_dh(&hs->ss, &hs->e, hs->rs); /* se, as the responder */
		break;
	}
	if (rc == 0)
		rc = sym_decrypt_and_hash(&hs->ss, msg + off, len - off, payload);
	if (rc != 0)
		return fail(hs, rc);
	*payload_len = len - overhead;
	hs->step++;
	return 0;
}

const uint8_t *noise_remote_static(const struct noise_handshake *hs)
{
	assert(hs != NULL);
	return hs->has_rs && hs->step != NOISE_STEP_FAILED ? hs->rs : NULL;
}

int noise_split(struct noise_handshake *hs, struct noise_cipher *send,
		struct noise_cipher *recv, uint8_t *hash)
{
	assert(hs != NULL && send != NULL && recv != NULL);
	assert(send != recv);
	if (hs->step != NOISE_STEP_SPLIT)
		return SHOAL_ESTATE;
	uint8_t k1[NOISE_HASH_BYTES], k2[NOISE_HASH_BYTES];
	hkdf2(hs->ss.ck, NULL, 0, k1, k2);
	/* c1 carries initiator → responder, c2 the other way. */
	bool init = hs->role == NOISE_INITIATOR;
	cipher_init_key(send, init ? k1 : k2);
	cipher_init_key(recv, init ? k2 : k1);
	if (hash != NULL)
		memcpy(hash, hs->ss.h, NOISE_HASH_BYTES);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	noise_handshake_wipe(hs);
	hs->step = NOISE_STEP_DONE;
	return 0;
}
