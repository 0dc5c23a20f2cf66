/*
 * tuf_md.c — TUF metadata: structural checks, signature thresholds, key
 * types, hashes and delegation path patterns. No I/O; the client workflow
 * that orders these checks is tuf.c.
 *
 * What is signed is the canonical JSON (cjson.c) of the received "signed"
 * object, so unknown fields stay covered by the signature.
 */
#include "trust/tuf.h"

#include <assert.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal/dynlib.h"
#include "shoal/hex.h"
#include "shoal/log.h"
#include "trust/cjson.h"

static const char *const type_names[TUF_TYPE_COUNT_] = {"root", "timestamp", "snapshot",
							 "targets"};

/* ---- small typed getters: each fails closed on a wrong JSON type ---- */

static const char *get_str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool get_int(const json_t *o, const char *k, int64_t min, int64_t *out)
{
	const json_t *v = json_object_get(o, k);
	if (!json_is_integer(v) || json_integer_value(v) < min)
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

/* Strict "YYYY-MM-DDTHH:MM:SSZ", the only form the spec allows. */
static bool parse_time(const char *s, int64_t *out)
{
	static const char form[] = "dddd-dd-ddTdd:dd:ddZ";
	if (strlen(s) != sizeof(form) - 1)
		return false;
	for (size_t i = 0; i < sizeof(form) - 1; i++) {
		if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i])
			return false;
	}
	struct tm tm = {0};
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*out = (int64_t)t;
	return true;
}

/* "1.0.31" or "1.0": digits only, major version 1. */
static bool spec_version_ok(const char *s)
{
	int parts = 0;
	const char *p = s;
	for (;;) {
		size_t n = strspn(p, "0123456789");
		if (n == 0 || n > 9)
			return false;
		if (parts == 0 && !(n == 1 && p[0] == '1'))
			return false;
		parts++;
		p += n;
		if (*p == '\0')
			break;
		if (*p != '.')
			return false;
		p++;
	}
	return parts == 2 || parts == 3;
}

static bool hashes_ok(const json_t *h, bool required)
{
	if (!h)
		return !required;
	if (!json_is_object(h) || json_object_size(h) > SHOAL_TUF_HASHES_MAX)
		return false;
	if (required && json_object_size(h) == 0)
		return false;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)h, k, v) {
		if (!json_is_string(v))
			return false;
	}
	return true;
}

/* METAFILES entry: version required, length and hashes optional. */
static bool metafile_ok(const json_t *fi)
{
	int64_t v;
	if (!json_is_object(fi) || !get_int(fi, "version", 1, &v))
		return false;
	if (json_object_get(fi, "length") && !get_int(fi, "length", 0, &v))
		return false;
	return hashes_ok(json_object_get(fi, "hashes"), false);
}

/* TARGETS entry: length and non-empty hashes required. */
static bool targetfile_ok(const json_t *fi)
{
	int64_t v;
	if (!json_is_object(fi) || !get_int(fi, "length", 0, &v))
		return false;
	const json_t *custom = json_object_get(fi, "custom");
	if (custom && !json_is_object(custom))
		return false;
	return hashes_ok(json_object_get(fi, "hashes"), true);
}

static bool keys_ok(const json_t *keys)
{
	if (!json_is_object(keys))
		return false;
	const char *id;
	json_t *k;
	json_object_foreach((json_t *)keys, id, k) {
		if (!json_is_object(k) || !get_str(k, "keytype") || !get_str(k, "scheme"))
			return false;
		const json_t *kv = json_object_get(k, "keyval");
		if (!json_is_object(kv) || !get_str(kv, "public"))
			return false;
	}
	return true;
}

static bool role_ok(const json_t *r)
{
	int64_t t;
	if (!json_is_object(r) || !get_int(r, "threshold", 1, &t))
		return false;
	const json_t *ids = json_object_get(r, "keyids");
	if (!json_is_array(ids) || json_array_size(ids) > SHOAL_TUF_ROLE_KEYS_MAX)
		return false;
	for (size_t i = 0; i < json_array_size(ids); i++)
		if (!json_is_string(json_array_get(ids, i)))
			return false;
	return true;
}

static bool is_top_level_name(const char *n)
{
	for (int i = 0; i < TUF_TYPE_COUNT_; i++)
		if (strcmp(n, type_names[i]) == 0)
			return true;
	return false;
}

static bool delegations_ok(const json_t *d)
{
	if (!json_is_object(d) || !keys_ok(json_object_get(d, "keys")))
		return false;
	const json_t *roles = json_object_get(d, "roles");
	if (!roles) /* succinct_roles (TAP 15) is not supported: such a role delegates nothing */
		return true;
	if (!json_is_array(roles))
		return false;
	for (size_t i = 0; i < json_array_size(roles); i++) {
		const json_t *r = json_array_get(roles, i);
		const char *name = get_str(r, "name");
		if (!name || !role_ok(r) || strlen(name) == 0 ||
		    strlen(name) > SHOAL_TUF_ROLE_NAME_BYTES_MAX || is_top_level_name(name))
			return false;
		for (size_t j = 0; j < i; j++) /* names are unique */
			if (strcmp(name, get_str(json_array_get(roles, j), "name")) == 0)
				return false;
		if (!json_is_boolean(json_object_get(r, "terminating")))
			return false;
		const json_t *paths = json_object_get(r, "paths");
		const json_t *prefixes = json_object_get(r, "path_hash_prefixes");
		if (paths && prefixes)
			return false;
		const json_t *list = paths ? paths : prefixes;
		if (list) {
			if (!json_is_array(list))
				return false;
			for (size_t j = 0; j < json_array_size(list); j++)
				if (!json_is_string(json_array_get(list, j)))
					return false;
		}
	}
	return true;
}

static bool signed_ok(const json_t *s, enum tuf_type type, struct tuf_md *md)
{
	const char *t = get_str(s, "_type");
	const char *sv = get_str(s, "spec_version");
	const char *exp = get_str(s, "expires");
	if (!t || strcmp(t, type_names[type]) != 0 || !sv || !spec_version_ok(sv) || !exp)
		return false;
	if (!get_int(s, "version", 1, &md->version) || !parse_time(exp, &md->expires_s))
		return false;
	switch (type) {
	case TUF_TYPE_ROOT: {
		const json_t *cs = json_object_get(s, "consistent_snapshot");
		if (cs && !json_is_boolean(cs))
			return false;
		md->consistent_snapshot = json_is_true(cs);
		const json_t *roles = json_object_get(s, "roles");
		if (!keys_ok(json_object_get(s, "keys")) || !json_is_object(roles))
			return false;
		for (int i = 0; i < TUF_TYPE_COUNT_; i++)
			if (!role_ok(json_object_get(roles, type_names[i])))
				return false;
		return true;
	}
	case TUF_TYPE_TIMESTAMP: {
		const json_t *meta = json_object_get(s, "meta");
		return json_is_object(meta) && json_object_size(meta) == 1 &&
		       metafile_ok(json_object_get(meta, "snapshot.json"));
	}
	case TUF_TYPE_SNAPSHOT: {
		const json_t *meta = json_object_get(s, "meta");
		if (!json_is_object(meta) || !json_object_get(meta, "targets.json"))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)meta, k, v) {
			if (!metafile_ok(v))
				return false;
		}
		return true;
	}
	case TUF_TYPE_TARGETS: {
		const json_t *targets = json_object_get(s, "targets");
		if (!json_is_object(targets))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)targets, k, v) {
			if (strlen(k) > SHOAL_TUF_TARGET_NAME_BYTES_MAX || !targetfile_ok(v))
				return false;
		}
		const json_t *d = json_object_get(s, "delegations");
		return !d || delegations_ok(d);
	}
	default:
		return false;
	}
}

void tuf_md_clear(struct tuf_md *md)
{
	if (!md)
		return;
	json_decref(md->doc);
	free(md->raw);
	memset(md, 0, sizeof(*md));
}

int tuf_md_parse(const uint8_t *buf, size_t len, enum tuf_type type, struct tuf_md *md)
{
	assert(md);
	assert(type < TUF_TYPE_COUNT_);
	memset(md, 0, sizeof(*md));
	json_t *doc = NULL;
	int rc = cjson_parse(buf, len, SHOAL_TUF_METADATA_BYTES_MAX, &doc);
	if (rc)
		return rc;
	md->doc = doc;
	md->type = type;
	json_t *s = json_object_get(doc, "signed");
	json_t *sigs = json_object_get(doc, "signatures");
	rc = SHOAL_EPROTO;
	if (!json_is_object(s) || !json_is_array(sigs) ||
	    json_array_size(sigs) > SHOAL_TUF_SIGNATURES_MAX)
		goto fail;
	for (size_t i = 0; i < json_array_size(sigs); i++) {
		const json_t *sg = json_array_get(sigs, i);
		if (!json_is_object(sg) || !get_str(sg, "keyid") || !get_str(sg, "sig"))
			goto fail;
	}
	if (!signed_ok(s, type, md))
		goto fail;
	md->signed_obj = s;
	md->raw = malloc(len ? len : 1);
	if (!md->raw) {
		rc = SHOAL_ENOMEM;
		goto fail;
	}
	memcpy(md->raw, buf, len);
	md->raw_len = len;
	return 0;
fail:
	tuf_md_clear(md);
	return rc;
}

/* ---- keys ----
 *
 * Ed25519 keys (hex, or PEM as tuf-js also accepts) are handled with
 * libsodium alone. ECDSA P-256 and RSA-PSS keys need OpenSSL's libcrypto,
 * which is loaded with dlopen by the first such key, not linked: an agent
 * whose fleet signs with Ed25519 (shoal's own tooling does) never maps it,
 * and an idle agent stays ~4 MiB smaller. If libcrypto is missing, such a
 * key is refused (never counts) and one error line names the package. */

/* The libcrypto functions used, resolved once by load_crypto. */
static struct {
	BIO *(*bio_new_mem_buf)(const void *buf, int len);
	int (*bio_free)(BIO *b);
	EVP_PKEY *(*pem_read_bio_pubkey)(BIO *bp, EVP_PKEY **x, pem_password_cb *cb, void *u);
	EVP_PKEY *(*d2i_pubkey)(EVP_PKEY **a, const unsigned char **pp, long length);
	int (*i2d_pubkey)(const EVP_PKEY *a, unsigned char **pp);
	void (*crypto_free)(void *p, const char *file, int line);
	int (*pkey_get_base_id)(const EVP_PKEY *pkey);
	int (*pkey_get_group_name)(const EVP_PKEY *pkey, char *name, size_t sz, size_t *len);
	int (*pkey_get_bits)(const EVP_PKEY *pkey);
	void (*pkey_free)(EVP_PKEY *pkey);
	EVP_MD_CTX *(*md_ctx_new)(void);
	void (*md_ctx_free)(EVP_MD_CTX *ctx);
	const EVP_MD *(*sha256)(void);
	int (*digest_verify_init)(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type,
				  ENGINE *e, EVP_PKEY *pkey);
	int (*digest_verify)(EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen,
			     const unsigned char *tbs, size_t tbslen);
	int (*set_rsa_padding)(EVP_PKEY_CTX *ctx, int pad);
	int (*set_rsa_pss_saltlen)(EVP_PKEY_CTX *ctx, int len);
	int (*set_rsa_mgf1_md)(EVP_PKEY_CTX *ctx, const EVP_MD *md);
} ossl;

static const struct dynlib_sym ossl_syms[] = {
	{"BIO_new_mem_buf", &ossl.bio_new_mem_buf},
	{"BIO_free", &ossl.bio_free},
	{"PEM_read_bio_PUBKEY", &ossl.pem_read_bio_pubkey},
	{"d2i_PUBKEY", &ossl.d2i_pubkey},
	{"i2d_PUBKEY", &ossl.i2d_pubkey},
	{"CRYPTO_free", &ossl.crypto_free},
	{"EVP_PKEY_get_base_id", &ossl.pkey_get_base_id},
	{"EVP_PKEY_get_group_name", &ossl.pkey_get_group_name},
	{"EVP_PKEY_get_bits", &ossl.pkey_get_bits},
	{"EVP_PKEY_free", &ossl.pkey_free},
	{"EVP_MD_CTX_new", &ossl.md_ctx_new},
	{"EVP_MD_CTX_free", &ossl.md_ctx_free},
	{"EVP_sha256", &ossl.sha256},
	{"EVP_DigestVerifyInit", &ossl.digest_verify_init},
	{"EVP_DigestVerify", &ossl.digest_verify},
	{"EVP_PKEY_CTX_set_rsa_padding", &ossl.set_rsa_padding},
	{"EVP_PKEY_CTX_set_rsa_pss_saltlen", &ossl.set_rsa_pss_saltlen},
	{"EVP_PKEY_CTX_set_rsa_mgf1_md", &ossl.set_rsa_mgf1_md},
};

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static int ossl_rc = SHOAL_EIO;

static void load_crypto(void)
{
	char err[256];
	void *h;
	ossl_rc = dynlib_open("libcrypto.so.3", "libssl3", ossl_syms,
			      sizeof(ossl_syms) / sizeof(ossl_syms[0]), &h, err, sizeof(err));
	if (ossl_rc != 0) {
		char q[2 * sizeof(err)];
		shoal_log_quote(err, q, sizeof(q));
		log_error("tuf_key_unavailable", "error=%s", q);
	}
}

/* 0 once libcrypto's functions are in `ossl`. */
static int crypto_ready(void)
{
	pthread_once(&ossl_once, load_crypto);
	return ossl_rc;
}

struct pubkey {
	enum { KEY_ED25519, KEY_EVP } kind;
	uint8_t ed[crypto_sign_PUBLICKEYBYTES];
	EVP_PKEY *pkey;
	bool pss;                 /* RSA-PSS padding */
	uint8_t fingerprint[32];  /* SHA-256 of the public key's canonical bytes */
};

static void pubkey_clear(struct pubkey *k)
{
	if (k->pkey)
		ossl.pkey_free(k->pkey);
	k->pkey = NULL;
}

/* The DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410) up to the key. */
static const uint8_t ed25519_spki_prefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
					      0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

/* An Ed25519 "PUBLIC KEY" PEM block into its 32 key bytes: one
 * SubjectPublicKeyInfo, nothing else before or after it. */
static int ed25519_from_pem(const char *pem, uint8_t out[crypto_sign_PUBLICKEYBYTES])
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----";
	static const char end[] = "-----END PUBLIC KEY-----";
	size_t n = strlen(pem);
	if (n > SHOAL_TUF_PEM_BYTES_MAX || strncmp(pem, begin, sizeof(begin) - 1) != 0)
		return SHOAL_EPROTO;
	const char *body = pem + sizeof(begin) - 1;
	const char *stop = strstr(body, end);
	if (!stop || strspn(stop + sizeof(end) - 1, "\r\n") != strlen(stop + sizeof(end) - 1))
		return SHOAL_EPROTO;
	uint8_t der[sizeof(ed25519_spki_prefix) + crypto_sign_PUBLICKEYBYTES];
	size_t got = 0;
	const char *last = NULL;
	if (sodium_base642bin(der, sizeof(der), body, (size_t)(stop - body), "\r\n", &got,
			      &last, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    last != stop || got != sizeof(der) ||
	    memcmp(der, ed25519_spki_prefix, sizeof(ed25519_spki_prefix)) != 0)
		return SHOAL_EPROTO;
	memcpy(out, der + sizeof(ed25519_spki_prefix), crypto_sign_PUBLICKEYBYTES);
	return 0;
}

static EVP_PKEY *load_pem(const char *pem)
{
	size_t n = strlen(pem);
	if (n > SHOAL_TUF_PEM_BYTES_MAX)
		return NULL;
	BIO *bio = ossl.bio_new_mem_buf(pem, (int)n);
	if (!bio)
		return NULL;
	EVP_PKEY *p = ossl.pem_read_bio_pubkey(bio, NULL, NULL, NULL);
	ossl.bio_free(bio);
	return p;
}

/* A P-256 point in hex (04||X||Y), wrapped as SubjectPublicKeyInfo. */
static EVP_PKEY *load_p256_hex(const char *hex)
{
	static const uint8_t spki_prefix[] = {
		0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
		0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
		0x42, 0x00};
	uint8_t der[sizeof(spki_prefix) + 65];
	memcpy(der, spki_prefix, sizeof(spki_prefix));
	if (hex_decode(hex, der + sizeof(spki_prefix), 65) != 0)
		return NULL;
	const uint8_t *p = der;
	return ossl.d2i_pubkey(NULL, &p, (long)sizeof(der));
}

static int key_load(const json_t *key, struct pubkey *out)
{
	assert(key && out);
	memset(out, 0, sizeof(*out));
	const char *type = get_str(key, "keytype");
	const char *scheme = get_str(key, "scheme");
	const char *pub = get_str(json_object_get(key, "keyval"), "public");
	if (!type || !scheme || !pub)
		return SHOAL_EPROTO;
	if (strcmp(type, "ed25519") == 0 && strcmp(scheme, "ed25519") == 0) {
		if (strncmp(pub, "-----BEGIN", 10) == 0) { /* PEM, as tuf-js also accepts */
			if (ed25519_from_pem(pub, out->ed) != 0)
				return SHOAL_EPROTO;
		} else if (hex_decode(pub, out->ed, sizeof(out->ed)) != 0) {
			return SHOAL_EPROTO;
		}
		out->kind = KEY_ED25519;
		crypto_hash_sha256(out->fingerprint, out->ed, sizeof(out->ed));
		return 0;
	}
	bool ec = (strcmp(type, "ecdsa") == 0 || strcmp(type, "ecdsa-sha2-nistp256") == 0) &&
		  strcmp(scheme, "ecdsa-sha2-nistp256") == 0;
	bool rsa = strcmp(type, "rsa") == 0 && strcmp(scheme, "rsassa-pss-sha256") == 0;
	if (!ec && !rsa)
		return SHOAL_EPROTO; /* unsupported: such a key never counts */
	if (crypto_ready() != 0)
		return SHOAL_EPROTO; /* logged once by load_crypto */
	out->kind = KEY_EVP;
	out->pss = rsa;
	out->pkey = strncmp(pub, "-----BEGIN", 10) == 0 ? load_pem(pub)
		    : ec			   ? load_p256_hex(pub)
						   : NULL;
	if (!out->pkey)
		return SHOAL_EPROTO;
	if (ec) {
		char group[64];
		size_t glen = 0;
		if (ossl.pkey_get_base_id(out->pkey) != EVP_PKEY_EC ||
		    !ossl.pkey_get_group_name(out->pkey, group, sizeof(group), &glen) ||
		    strcmp(group, "prime256v1") != 0)
			goto bad;
	} else {
		int bits = ossl.pkey_get_bits(out->pkey);
		if (ossl.pkey_get_base_id(out->pkey) != EVP_PKEY_RSA ||
		    bits < SHOAL_TUF_RSA_BITS_MIN || bits > SHOAL_TUF_RSA_BITS_MAX)
			goto bad;
	}
	uint8_t *der = NULL;
	int dlen = ossl.i2d_pubkey(out->pkey, &der);
	if (dlen <= 0)
		goto bad;
	crypto_hash_sha256(out->fingerprint, der, (unsigned long long)dlen);
	ossl.crypto_free(der, __FILE__, __LINE__);
	return 0;
bad:
	pubkey_clear(out);
	return SHOAL_EPROTO;
}

static bool key_verify(const struct pubkey *k, const uint8_t *msg, size_t msg_len,
		       const uint8_t *sig, size_t sig_len)
{
	if (k->kind == KEY_ED25519)
		return sig_len == crypto_sign_BYTES &&
		       crypto_sign_verify_detached(sig, msg, msg_len, k->ed) == 0;
	assert(k->pkey && ossl_rc == 0);
	bool ok = false;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *ctx = ossl.md_ctx_new();
	if (!ctx)
		return false;
	if (ossl.digest_verify_init(ctx, &pctx, ossl.sha256(), NULL, k->pkey) != 1)
		goto out;
	if (k->pss && (ossl.set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		       ossl.set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_AUTO) != 1 ||
		       ossl.set_rsa_mgf1_md(pctx, ossl.sha256()) != 1))
		goto out;
	ok = ossl.digest_verify(ctx, sig, sig_len, msg, msg_len) == 1;
out:
	ossl.md_ctx_free(ctx);
	return ok;
}

/* Counts distinct authorised keys with a valid signature over msg. */
static int count_valid(const json_t *keys, const json_t *role, const json_t *sigs,
		       const uint8_t *msg, size_t msg_len, int64_t *count)
{
	const json_t *ids = json_object_get(role, "keyids");
	size_t nids = json_array_size(ids);
	assert(nids <= SHOAL_TUF_ROLE_KEYS_MAX);
	uint8_t (*counted)[32] = calloc(nids ? nids : 1, 32);
	uint8_t *sig = malloc(SHOAL_TUF_SIG_BYTES_MAX);
	if (!counted || !sig) {
		free(counted);
		free(sig);
		return SHOAL_ENOMEM;
	}
	size_t ncounted = 0;
	for (size_t i = 0; i < nids; i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++) /* a keyid listed twice counts once */
			dup = strcmp(id, json_string_value(json_array_get(ids, j))) == 0;
		const json_t *kj = json_object_get(keys, id);
		struct pubkey k;
		if (dup || !kj || key_load(kj, &k) != 0)
			continue;
		for (size_t j = 0; j < ncounted && !dup; j++) /* one key under two ids */
			dup = memcmp(counted[j], k.fingerprint, 32) == 0;
		for (size_t s = 0; s < json_array_size(sigs) && !dup; s++) {
			const json_t *sg = json_array_get(sigs, s);
			if (strcmp(get_str(sg, "keyid"), id) != 0)
				continue; /* the keyid only selects which authorised key to try */
			const char *hex = get_str(sg, "sig");
			size_t hlen = strlen(hex);
			if (hlen == 0 || hlen % 2 || hlen / 2 > SHOAL_TUF_SIG_BYTES_MAX ||
			    hex_decode(hex, sig, hlen / 2) != 0)
				continue;
			if (key_verify(&k, msg, msg_len, sig, hlen / 2)) {
				memcpy(counted[ncounted++], k.fingerprint, 32);
				break;
			}
		}
		pubkey_clear(&k);
	}
	*count = (int64_t)ncounted;
	free(counted);
	free(sig);
	assert(ncounted <= nids);
	return 0;
}

int tuf_md_verify(const struct tuf_md *delegator, const char *role_name, const struct tuf_md *md)
{
	assert(delegator && delegator->signed_obj);
	assert(md && md->signed_obj && role_name);
	const json_t *keys = NULL, *role = NULL;
	const json_t *ds = delegator->signed_obj;
	if (delegator->type == TUF_TYPE_ROOT) {
		keys = json_object_get(ds, "keys");
		role = json_object_get(json_object_get(ds, "roles"), role_name);
	} else if (delegator->type == TUF_TYPE_TARGETS) {
		const json_t *d = json_object_get(ds, "delegations");
		keys = json_object_get(d, "keys");
		const json_t *roles = json_object_get(d, "roles");
		for (size_t i = 0; i < json_array_size(roles) && !role; i++) {
			const json_t *r = json_array_get(roles, i);
			if (strcmp(get_str(r, "name"), role_name) == 0)
				role = r;
		}
	}
	if (!keys || !role)
		return SHOAL_ENOTFOUND;
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	int rc = cjson_encode(md->signed_obj, SHOAL_TUF_METADATA_BYTES_MAX, &msg, &msg_len);
	if (rc)
		return rc == SHOAL_ENOMEM ? rc : SHOAL_EPROTO;
	int64_t count = 0, threshold = 0;
	rc = count_valid(keys, role, json_object_get(md->doc, "signatures"), msg, msg_len, &count);
	free(msg);
	if (rc)
		return rc;
	if (!get_int(role, "threshold", 1, &threshold))
		return SHOAL_EPROTO;
	return count >= threshold ? 0 : SHOAL_EBADSIG;
}

/* ---- hashes and path patterns ---- */

int tuf_check_hashes(const uint8_t *buf, size_t len, const json_t *hashes, bool have_length,
		     int64_t length)
{
	assert(buf || len == 0);
	if (have_length && (length < 0 || (uint64_t)length != (uint64_t)len))
		return SHOAL_EBADMAC;
	if (!hashes)
		return 0;
	if (!json_is_object(hashes))
		return SHOAL_EPROTO;
	const char *alg;
	json_t *v;
	json_object_foreach((json_t *)hashes, alg, v) {
		uint8_t want[crypto_hash_sha512_BYTES], got[crypto_hash_sha512_BYTES];
		size_t n;
		if (strcmp(alg, "sha256") == 0) {
			n = crypto_hash_sha256_BYTES;
			crypto_hash_sha256(got, buf, len);
		} else if (strcmp(alg, "sha512") == 0) {
			n = crypto_hash_sha512_BYTES;
			crypto_hash_sha512(got, buf, len);
		} else {
			return SHOAL_EPROTO; /* cannot check it, so do not trust the file */
		}
		if (!json_is_string(v) || hex_decode(json_string_value(v), want, n) != 0)
			return SHOAL_EPROTO;
		if (sodium_memcmp(want, got, n) != 0)
			return SHOAL_EBADMAC;
	}
	return 0;
}

bool tuf_path_match(const char *pattern, const char *path)
{
	assert(pattern && path);
	const char *p = pattern, *t = path;
	for (;;) {
		size_t pn = strcspn(p, "/"), tn = strcspn(t, "/");
		char pbuf[SHOAL_TUF_TARGET_NAME_BYTES_MAX + 1], tbuf[SHOAL_TUF_TARGET_NAME_BYTES_MAX + 1];
		if (pn > SHOAL_TUF_TARGET_NAME_BYTES_MAX || tn > SHOAL_TUF_TARGET_NAME_BYTES_MAX)
			return false;
		memcpy(pbuf, p, pn);
		pbuf[pn] = '\0';
		memcpy(tbuf, t, tn);
		tbuf[tn] = '\0';
		if (fnmatch(pbuf, tbuf, FNM_NOESCAPE) != 0)
			return false;
		bool pend = p[pn] == '\0', tend = t[tn] == '\0';
		if (pend || tend)
			return pend && tend; /* same number of parts */
		p += pn + 1;
		t += tn + 1;
	}
}
