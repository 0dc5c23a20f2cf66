/*
 * fuzz_cert.c — cert_decode on arbitrary bytes. Whatever decodes must
 * re-encode to exactly the same bytes (the encoding is canonical: a
 * signature covers the bytes, so two encodings of one certificate would let
 * a relay change what was signed); anything else aborts. Decoded
 * certificates are also run through cert_verify against a fixed fleet, which
 * must fail closed without crashing.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_cert writes
 * DIR/cert/ (valid certificates from fixed-seed keys, plus truncated
 * variants) and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "trust/identity.h"

#define FX_NOW_MS 1700000000000ull

static struct fleet_public fx_fleet;
static struct shoal_keypair fx_adm[3];

static void fx_keypair(struct shoal_keypair *kp, uint8_t seed_byte)
{
	uint8_t seed[32];
	memset(seed, seed_byte, sizeof seed);
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
}

static void fx_init(void)
{
	memset(&fx_fleet, 0x5a, sizeof fx_fleet.fleet_id);
	fx_fleet.admission_count = 3;
	fx_fleet.threshold = 2;
	for (uint8_t i = 0; i < 3; i++) {
		fx_keypair(&fx_adm[i], (uint8_t)(0x10 + i));
		memcpy(fx_fleet.admission_pks[i], fx_adm[i].pk, 32);
	}
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "fuzz_cert: cannot write %s\n", path);
		exit(1);
	}
}

/* Writes valid certificates of several shapes and some truncations. */
static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/cert", root);
	mkdir(root, 0755);
	mkdir(dir, 0755);
	static const char *const names[] = {"n1", "web-01.prod", "abcdefghijklmnopqrstuvwxyz012345"};
	for (int shape = 0; shape < 3; shape++) {
		struct admission_cert c;
		struct shoal_keypair node;
		uint8_t buf[SHOAL_CERT_BYTES_MAX];
		size_t len = 0;
		char name[64];
		memset(&c, 0, sizeof c);
		fx_keypair(&node, (uint8_t)(0x40 + shape));
		memcpy(c.fleet_id, fx_fleet.fleet_id, sizeof c.fleet_id);
		memcpy(c.node_id, node.pk, 32);
		strcpy(c.name, names[shape]);
		c.tags_count = (uint8_t)shape * 2; /* 0, 2, 4 tags */
		for (int t = 0; t < c.tags_count; t++)
			snprintf(c.tags[t], sizeof c.tags[t], t == 0 ? "canary" : "tag_%d", t);
		c.issued_ms = FX_NOW_MS;
		c.expires_ms = FX_NOW_MS + 86400000ull * (uint64_t)(1 + shape);
		for (int s = 0; s <= shape; s++)
			if (cert_sign(&c, (uint8_t)s, fx_adm[s].sk) != 0)
				exit(1);
		if (cert_encode(&c, buf, sizeof buf, &len) != 0)
			exit(1);
		snprintf(name, sizeof name, "valid-%d", shape);
		write_file(dir, name, buf, len);
		snprintf(name, sizeof name, "trunc-%d-half", shape);
		write_file(dir, name, buf, len / 2);
		snprintf(name, sizeof name, "trunc-%d-nosig", shape);
		write_file(dir, name, buf, len - 64);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	fx_init();
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct admission_cert c;
	uint8_t again[SHOAL_CERT_BYTES_MAX];
	size_t len = 0;
	if (cert_decode(data, size, &c) != 0)
		return 0;
	if (cert_encode(&c, again, sizeof again, &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0) {
		fprintf(stderr, "fuzz_cert: decoded certificate does not re-encode to its input\n");
		abort();
	}
	/* Only inputs signed by the fixture keys could verify; mutated bytes
	 * must never do so unless they equal a corpus certificate's body. */
	int rc = cert_verify(&c, &fx_fleet, FX_NOW_MS);
	(void)rc;
	return 0;
}
