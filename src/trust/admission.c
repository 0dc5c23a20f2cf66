/*
 * admission.c — admission certificates: encoding, signing, verification.
 *
 *   version(u8 = 1) | fleet_id(16) | node_id(32) | name(str8)
 *   | tags_count(u8) | tags(str8 each) | issued_ms(u64) | expires_ms(u64)
 *   | sigs_count(u8) | sigs_count x (key_index(u8) | sig(64))
 *
 * Each signature is Ed25519 over "shoal/admission/v1" || the encoding up to
 * (not including) sigs_count, so a signature over a certificate can never be
 * taken for a signature over any other kind of statement. A certificate is
 * valid when at least `threshold` distinct admission keys of its fleet signed
 * it; a key that signed twice still counts once.
 */
#include "trust/identity.h"

#include <assert.h>
#include <sodium.h>
#include <string.h>

#include "shoal/bytes.h"

#define CERT_VERSION 1
#define DOMAIN_LEN (sizeof SHOAL_ADMISSION_DOMAIN - 1)

int identity_valid_name(const char *s, size_t max)
{
	size_t n = 0;
	if (!s)
		return 0;
	for (; s[n]; n++) {
		char ch = s[n];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		if (!ok || n >= max)
			return 0;
	}
	return n >= 1;
}

/* Writes everything a signature covers (the body, before sigs_count). */
static void put_body(struct wr *w, const struct admission_cert *c)
{
	wr_u8(w, CERT_VERSION);
	wr_bytes(w, c->fleet_id, sizeof c->fleet_id);
	wr_bytes(w, c->node_id, sizeof c->node_id);
	wr_str8(w, c->name, SHOAL_NAME_BYTES_MAX);
	wr_u8(w, c->tags_count);
	for (size_t i = 0; i < c->tags_count && i < SHOAL_TAGS_COUNT_MAX; i++)
		wr_str8(w, c->tags[i], SHOAL_TAG_BYTES_MAX);
	wr_u64(w, c->issued_ms);
	wr_u64(w, c->expires_ms);
}

static int check_fields(const struct admission_cert *c)
{
	if (!identity_valid_name(c->name, SHOAL_NAME_BYTES_MAX))
		return SHOAL_EINVAL;
	if (c->tags_count > SHOAL_TAGS_COUNT_MAX || c->sigs_count > SHOAL_ADMISSION_SIGS_MAX)
		return SHOAL_ETOOBIG;
	for (size_t i = 0; i < c->tags_count; i++)
		if (!identity_valid_name(c->tags[i], SHOAL_TAG_BYTES_MAX))
			return SHOAL_EINVAL;
	return 0;
}

int cert_encode(const struct admission_cert *c, uint8_t *out, size_t cap, size_t *len)
{
	assert(c && out && len);
	int rc = check_fields(c);
	if (rc != 0)
		return rc;
	struct wr w = wr_init(out, cap);
	put_body(&w, c);
	wr_u8(&w, c->sigs_count);
	for (size_t i = 0; i < c->sigs_count; i++) {
		wr_u8(&w, c->sig_key_index[i]);
		wr_bytes(&w, c->sigs[i], 64);
	}
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	assert(w.len <= SHOAL_CERT_BYTES_MAX);
	*len = w.len;
	return 0;
}

/* Reads one str8 name or tag, telling apart the three ways it can be bad. */
static int get_name(struct rd *r, char *out, size_t max)
{
	uint8_t n;
	const uint8_t *p;
	if (!rd_u8(r, &n))
		return SHOAL_ETRUNC;
	if (n > max)
		return SHOAL_ETOOBIG;
	if (!rd_bytes(r, n, &p))
		return SHOAL_ETRUNC;
	memcpy(out, p, n);
	out[n] = '\0';
	/* Embedded NULs shorten the C string and are caught by the length. */
	if (strlen(out) != n || !identity_valid_name(out, max))
		return SHOAL_EPROTO;
	return 0;
}

int cert_decode(const uint8_t *in, size_t len, struct admission_cert *out)
{
	struct admission_cert c;
	struct rd r = rd_init(in, len);
	uint8_t version;
	int rc;

	assert(in || len == 0);
	assert(out);
	if (len > SHOAL_CERT_BYTES_MAX)
		return SHOAL_ETOOBIG;
	memset(&c, 0, sizeof c);
	if (!rd_u8(&r, &version))
		return SHOAL_ETRUNC;
	if (version != CERT_VERSION)
		return SHOAL_EVERSION;
	if (!rd_copy(&r, c.fleet_id, sizeof c.fleet_id) ||
	    !rd_copy(&r, c.node_id, sizeof c.node_id))
		return SHOAL_ETRUNC;
	if ((rc = get_name(&r, c.name, SHOAL_NAME_BYTES_MAX)) != 0)
		return rc;
	if (!rd_u8(&r, &c.tags_count))
		return SHOAL_ETRUNC;
	if (c.tags_count > SHOAL_TAGS_COUNT_MAX)
		return SHOAL_ETOOBIG;
	for (size_t i = 0; i < c.tags_count; i++)
		if ((rc = get_name(&r, c.tags[i], SHOAL_TAG_BYTES_MAX)) != 0)
			return rc;
	if (!rd_u64(&r, &c.issued_ms) || !rd_u64(&r, &c.expires_ms))
		return SHOAL_ETRUNC;
	if (c.expires_ms <= c.issued_ms)
		return SHOAL_EPROTO;
	if (!rd_u8(&r, &c.sigs_count))
		return SHOAL_ETRUNC;
	if (c.sigs_count > SHOAL_ADMISSION_SIGS_MAX)
		return SHOAL_ETOOBIG;
	for (size_t i = 0; i < c.sigs_count; i++)
		if (!rd_u8(&r, &c.sig_key_index[i]) || !rd_copy(&r, c.sigs[i], 64))
			return SHOAL_ETRUNC;
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	*out = c;
	return 0;
}

/* Builds the signed message: domain || body. */
static int signed_message(const struct admission_cert *c, uint8_t *buf, size_t cap,
			  size_t *len)
{
	int rc = check_fields(c);
	if (rc != 0)
		return rc;
	struct wr w = wr_init(buf, cap);
	wr_bytes(&w, SHOAL_ADMISSION_DOMAIN, DOMAIN_LEN);
	put_body(&w, c);
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	*len = w.len;
	return 0;
}

int cert_sign(struct admission_cert *c, uint8_t key_index, const uint8_t sk[64])
{
	uint8_t msg[DOMAIN_LEN + SHOAL_CERT_BYTES_MAX];
	size_t len = 0, slot;
	int rc;

	assert(c && sk);
	if ((rc = signed_message(c, msg, sizeof msg, &len)) != 0)
		return rc;
	for (slot = 0; slot < c->sigs_count; slot++)
		if (c->sig_key_index[slot] == key_index)
			break;
	if (slot == c->sigs_count && c->sigs_count >= SHOAL_ADMISSION_SIGS_MAX)
		return SHOAL_EFULL;
	if (crypto_sign_detached(c->sigs[slot], NULL, msg, len, sk) != 0)
		return SHOAL_ECRYPTO;
	c->sig_key_index[slot] = key_index;
	if (slot == c->sigs_count)
		c->sigs_count++;
	assert(c->sigs_count <= SHOAL_ADMISSION_SIGS_MAX);
	return 0;
}

int cert_verify(const struct admission_cert *c, const struct fleet_public *f, uint64_t now_ms)
{
	uint8_t msg[DOMAIN_LEN + SHOAL_CERT_BYTES_MAX];
	size_t len = 0;
	uint32_t signers = 0; /* bit per admission key index */
	unsigned distinct = 0;

	assert(c && f);
	assert(SHOAL_ADMISSION_KEYS_MAX <= 32);
	if (f->threshold == 0 || f->threshold > f->admission_count ||
	    f->admission_count > SHOAL_ADMISSION_KEYS_MAX)
		return SHOAL_EINVAL;
	if (sodium_memcmp(c->fleet_id, f->fleet_id, sizeof c->fleet_id) != 0)
		return SHOAL_EFLEET;
	if (c->sigs_count > SHOAL_ADMISSION_SIGS_MAX)
		return SHOAL_EPROTO;
	if (signed_message(c, msg, sizeof msg, &len) != 0)
		return SHOAL_EPROTO;
	/* Any bad signature rejects the whole certificate: a certificate with
	 * a forged signature was not made by the admission tooling. */
	for (size_t i = 0; i < c->sigs_count; i++) {
		uint8_t k = c->sig_key_index[i];
		if (k >= f->admission_count)
			return SHOAL_EBADSIG;
		if (crypto_sign_verify_detached(c->sigs[i], msg, len, f->admission_pks[k]) != 0)
			return SHOAL_EBADSIG;
		if (!(signers & (1u << k))) {
			signers |= 1u << k;
			distinct++;
		}
	}
	if (distinct < f->threshold)
		return SHOAL_EUNADMITTED;
	if (now_ms >= c->expires_ms)
		return SHOAL_EEXPIRED;
	return 0;
}
