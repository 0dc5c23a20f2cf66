/*
 * fuzz_tuf_metadata.c — TUF metadata parsing and signature verification of
 * arbitrary bytes, as each role, against a fixed trusted root.
 *
 * Input: one byte selecting the role (mod 5: root, timestamp, snapshot,
 * targets, delegated role "d"), then the metadata bytes. The trusted root and
 * a top-level targets that delegates "d" are built here from fixed ed25519
 * seeds, so signatures in the seed corpus stay valid across runs. For input
 * that parses, the signature check runs (and for a root, the rotation check
 * against the fixed root), the hashes listed in it are checked against the
 * input, and its delegations' path patterns are matched.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_tuf_metadata
 * writes validly signed metadata of every role to DIR/ and exits.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/hex.h"
#include "trust/cjson.h"
#include "trust/tuf.h"

/* Properties hold in every build type (assert() may be compiled out). */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

enum { K_ROOT, K_TIMESTAMP, K_SNAPSHOT, K_TARGETS, K_DELEGATED, K_COUNT };
static const char *const role_names[] = {"root", "timestamp", "snapshot", "targets"};

struct fx {
	uint8_t pk[K_COUNT][crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[K_COUNT][crypto_sign_SECRETKEYBYTES];
	char keyid[K_COUNT][65];
	struct tuf_md root, targets;
};
static struct fx fx;

static json_t *key_json(int k)
{
	char hex[2 * crypto_sign_PUBLICKEYBYTES + 1];
	hex_encode(fx.pk[k], sizeof(fx.pk[k]), hex);
	return json_pack("{s:s,s:s,s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
			 "public", hex);
}

/* Wraps signed into {"signed":..., "signatures":[...]} signed by key k. */
static char *sign_doc(json_t *signed_obj, int k, size_t *len)
{
	uint8_t *msg = NULL, sig[crypto_sign_BYTES];
	size_t mlen = 0;
	if (cjson_encode(signed_obj, 1 << 20, &msg, &mlen) != 0)
		abort();
	crypto_sign_detached(sig, NULL, msg, mlen, fx.sk[k]);
	free(msg);
	char hex[2 * crypto_sign_BYTES + 1];
	hex_encode(sig, sizeof(sig), hex);
	json_t *doc = json_pack("{s:o,s:[{s:s,s:s}]}", "signed", signed_obj, "signatures", "keyid",
				fx.keyid[k], "sig", hex);
	char *out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	*len = strlen(out);
	return out;
}

static json_t *common(const char *type, int version)
{
	return json_pack("{s:s,s:s,s:i,s:s}", "_type", type, "spec_version", "1.0.31", "version",
			 version, "expires", "2100-01-01T00:00:00Z");
}

static char *make_root(size_t *len)
{
	json_t *s = common("root", 1);
	json_t *keys = json_object(), *roles = json_object();
	for (int k = K_ROOT; k <= K_TARGETS; k++) {
		json_object_set_new(keys, fx.keyid[k], key_json(k));
		json_object_set_new(roles, role_names[k],
				    json_pack("{s:[s],s:i}", "keyids", fx.keyid[k], "threshold", 1));
	}
	json_object_set_new(s, "keys", keys);
	json_object_set_new(s, "roles", roles);
	json_object_set_new(s, "consistent_snapshot", json_true());
	return sign_doc(s, K_ROOT, len);
}

static json_t *target_entry(void)
{
	return json_pack("{s:i,s:{s:s},s:{s:s}}", "length", 5, "hashes", "sha256",
			 "0a9d1a1e4f1b5e1d6a1f3b1c3f7f6d1e3f0c6b5a4e3d2c1b0a9f8e7d6c5b4a3f", "custom",
			 "k", "v");
}

static char *make_targets(int key, size_t *len)
{
	json_t *s = common("targets", 1);
	json_object_set_new(s, "targets", json_pack("{s:o}", "files/a.txt", target_entry()));
	if (key == K_TARGETS) {
		json_t *d = json_pack("{s:{s:o},s:[{s:s,s:[s],s:i,s:b,s:[s,s]}]}", "keys",
				      fx.keyid[K_DELEGATED], key_json(K_DELEGATED), "roles", "name",
				      "d", "keyids", fx.keyid[K_DELEGATED], "threshold", 1,
				      "terminating", 0, "paths", "files/*", "*/[a-c]?.txt");
		json_object_set_new(s, "delegations", d);
	}
	return sign_doc(s, key, len);
}

static char *make_meta(const char *type, const char *file, int key, size_t *len)
{
	json_t *s = common(type, 1);
	json_object_set_new(s, "meta", json_pack("{s:{s:i,s:i,s:{s:s}}}", file, "version", 1,
						 "length", 1000, "hashes", "sha256",
						 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"));
	return sign_doc(s, key, len);
}

static void init_fixture(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	if (sodium_init() < 0)
		abort();
	for (int k = 0; k < K_COUNT; k++) {
		uint8_t seed[crypto_sign_SEEDBYTES];
		memset(seed, 0x40 + k, sizeof(seed));
		crypto_sign_seed_keypair(fx.pk[k], fx.sk[k], seed);
		json_t *kj = key_json(k);
		uint8_t *c = NULL, h[32];
		size_t n = 0;
		if (cjson_encode(kj, 4096, &c, &n) != 0)
			abort();
		crypto_hash_sha256(h, c, n);
		hex_encode(h, sizeof(h), fx.keyid[k]);
		free(c);
		json_decref(kj);
	}
	size_t len = 0;
	char *r = make_root(&len);
	if (tuf_md_parse((const uint8_t *)r, len, TUF_TYPE_ROOT, &fx.root) != 0)
		abort();
	free(r);
	char *t = make_targets(K_TARGETS, &len);
	if (tuf_md_parse((const uint8_t *)t, len, TUF_TYPE_TARGETS, &fx.targets) != 0)
		abort();
	free(t);
	if (tuf_md_verify(&fx.root, "root", &fx.root) != 0 ||
	    tuf_md_verify(&fx.root, "targets", &fx.targets) != 0)
		abort();
}

static void write_seed(const char *dir, const char *name, uint8_t role, const char *doc, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	fwrite(&role, 1, 1, f);
	fwrite(doc, 1, len, f);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	init_fixture();
	const char *dir = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (!dir)
		return 0;
	size_t len = 0;
	char *d;
	d = make_root(&len);
	write_seed(dir, "root", 0, d, len);
	free(d);
	d = make_meta("timestamp", "snapshot.json", K_TIMESTAMP, &len);
	write_seed(dir, "timestamp", 1, d, len);
	free(d);
	d = make_meta("snapshot", "targets.json", K_SNAPSHOT, &len);
	write_seed(dir, "snapshot", 2, d, len);
	free(d);
	d = make_targets(K_TARGETS, &len);
	write_seed(dir, "targets", 3, d, len);
	free(d);
	d = make_targets(K_DELEGATED, &len);
	write_seed(dir, "delegated", 4, d, len);
	free(d);
	exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_fixture();
	if (size < 1)
		return 0;
	int which = data[0] % 5;
	static const enum tuf_type types[] = {TUF_TYPE_ROOT, TUF_TYPE_TIMESTAMP, TUF_TYPE_SNAPSHOT,
					      TUF_TYPE_TARGETS, TUF_TYPE_TARGETS};
	struct tuf_md md;
	if (tuf_md_parse(data + 1, size - 1, types[which], &md) != 0)
		return 0;
	CHECK(md.version >= 1);
	CHECK(md.raw_len == size - 1);
	int rc;
	if (which == 4)
		rc = tuf_md_verify(&fx.targets, "d", &md);
	else
		rc = tuf_md_verify(&fx.root, role_names[which], &md);
	CHECK(rc == 0 || rc == SHOAL_EBADSIG || rc == SHOAL_EPROTO || rc == SHOAL_ENOTFOUND);
	if (which == 0) { /* as the next root: its own threshold too */
		rc = tuf_md_verify(&md, "root", &md);
		CHECK(rc == 0 || rc == SHOAL_EBADSIG || rc == SHOAL_EPROTO);
	}
	const json_t *meta = json_object_get(md.signed_obj, "meta");
	const char *k;
	json_t *fi;
	json_object_foreach((json_t *)meta, k, fi) {
		const json_t *len = json_object_get(fi, "length");
		(void)tuf_check_hashes(data, size, json_object_get(fi, "hashes"), len != NULL,
				       len ? (int64_t)json_integer_value(len) : 0);
	}
	const json_t *roles = json_object_get(json_object_get(md.signed_obj, "delegations"), "roles");
	for (size_t i = 0; i < json_array_size(roles); i++) {
		const json_t *paths = json_object_get(json_array_get(roles, i), "paths");
		for (size_t j = 0; j < json_array_size(paths); j++) {
			const char *p = json_string_value(json_array_get(paths, j));
			(void)tuf_path_match(p, "files/a.txt");
			(void)tuf_path_match(p, "x/y/z");
		}
	}
	tuf_md_clear(&md);
	return 0;
}
