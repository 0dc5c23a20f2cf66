/* test_identity.c — node keys, admission certificates, fleet and node dirs. */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trust/identity.h"

#define NOW_MS 1800000000000ull
#define DAY_MS 86400000ull

/* A fleet held in memory: public part plus the admission secret keys. */
struct test_fleet {
	struct fleet_public pub;
	struct shoal_keypair adm[SHOAL_ADMISSION_KEYS_MAX];
};

static void make_fleet(struct test_fleet *t, unsigned n, unsigned threshold)
{
	memset(t, 0, sizeof *t);
	randombytes_buf(t->pub.fleet_id, sizeof t->pub.fleet_id);
	t->pub.admission_count = (uint8_t)n;
	t->pub.threshold = (uint8_t)threshold;
	for (unsigned i = 0; i < n; i++) {
		keys_generate(&t->adm[i]);
		memcpy(t->pub.admission_pks[i], t->adm[i].pk, 32);
	}
}

static void make_cert(struct admission_cert *c, const struct test_fleet *t)
{
	struct shoal_keypair node;
	keys_generate(&node);
	memset(c, 0, sizeof *c);
	memcpy(c->fleet_id, t->pub.fleet_id, sizeof c->fleet_id);
	memcpy(c->node_id, node.pk, 32);
	strcpy(c->name, "web-01.prod");
	c->tags_count = 2;
	strcpy(c->tags[0], "canary");
	strcpy(c->tags[1], "eu_west");
	c->issued_ms = NOW_MS;
	c->expires_ms = NOW_MS + 365 * DAY_MS;
}

static void sign_with(struct admission_cert *c, const struct test_fleet *t, uint8_t k)
{
	assert_int_equal(cert_sign(c, k, t->adm[k].sk), 0);
}

/* --- keys ------------------------------------------------------------------ */

static void test_keys_roundtrip(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char path[512], err[256];
	struct shoal_keypair kp, back;
	struct stat st;
	snprintf(path, sizeof path, "%s/node.key", dir);
	keys_generate(&kp);
	assert_int_equal(keys_save(path, &kp), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keys_load(path, &back, err, sizeof err), 0);
	assert_memory_equal(kp.pk, back.pk, 32);
	assert_memory_equal(kp.sk, back.sk, 64);
	/* keys_save never overwrites an existing key. */
	assert_int_equal(keys_save(path, &kp), SHOAL_EEXIST);
	tu_rmtree(dir);
	free(dir);
}

static void test_keys_mode_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char path[512], err[512] = "";
	struct shoal_keypair kp, back;
	snprintf(path, sizeof path, "%s/node.key", dir);
	keys_generate(&kp);
	assert_int_equal(keys_save(path, &kp), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(keys_load(path, &back, err, sizeof err), SHOAL_EKEYMODE);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "0644"));
	assert_non_null(strstr(err, "chmod 600"));
	/* Group-writable only is refused too. */
	assert_int_equal(chmod(path, 0620), 0);
	assert_int_equal(keys_load(path, &back, NULL, 0), SHOAL_EKEYMODE);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(keys_load(path, &back, NULL, 0), 0);
	tu_rmtree(dir);
	free(dir);
}

static void test_keys_missing_and_malformed(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char path[512], err[512] = "";
	struct shoal_keypair kp;
	snprintf(path, sizeof path, "%s/none.key", dir);
	assert_int_equal(keys_load(path, &kp, err, sizeof err), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, path));

	snprintf(path, sizeof path, "%s/bad.key", dir);
	tu_write_file(path, "zz\n", 3, 0600);
	assert_int_equal(keys_load(path, &kp, err, sizeof err), SHOAL_EPROTO);

	/* Right length, but the public half does not match the seed. */
	char text[130];
	struct shoal_keypair good;
	keys_generate(&good);
	good.sk[40] ^= 1;
	sodium_bin2hex(text, sizeof text, good.sk, 64);
	snprintf(path, sizeof path, "%s/corrupt.key", dir);
	tu_write_file(path, text, 128, 0600);
	assert_int_equal(keys_load(path, &kp, err, sizeof err), SHOAL_EPROTO);
	tu_rmtree(dir);
	free(dir);
}

/* --- certificates ---------------------------------------------------------- */

static void test_cert_roundtrip(void **state)
{
	(void)state;
	struct test_fleet t;
	struct admission_cert c, d;
	uint8_t buf[SHOAL_CERT_BYTES_MAX], buf2[SHOAL_CERT_BYTES_MAX];
	size_t len = 0, len2 = 0;
	make_fleet(&t, 3, 2);
	make_cert(&c, &t);
	sign_with(&c, &t, 0);
	sign_with(&c, &t, 2);
	assert_int_equal(cert_encode(&c, buf, sizeof buf, &len), 0);
	assert_int_equal(cert_decode(buf, len, &d), 0);
	assert_string_equal(d.name, "web-01.prod");
	assert_int_equal(d.tags_count, 2);
	assert_string_equal(d.tags[0], "canary");
	assert_string_equal(d.tags[1], "eu_west");
	assert_int_equal(d.issued_ms, c.issued_ms);
	assert_int_equal(d.expires_ms, c.expires_ms);
	assert_int_equal(d.sigs_count, 2);
	assert_memory_equal(d.node_id, c.node_id, 32);
	assert_int_equal(cert_encode(&d, buf2, sizeof buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	assert_int_equal(cert_verify(&d, &t.pub, NOW_MS), 0);
	/* Too small an output buffer is an error, not an overflow. */
	assert_int_equal(cert_encode(&c, buf, 10, &len2), SHOAL_ETOOBIG);
}

static void test_cert_verify_accepts_and_rejects(void **state)
{
	(void)state;
	struct test_fleet t, other;
	struct admission_cert c, x;
	make_fleet(&t, 3, 2);
	make_fleet(&other, 3, 2);
	make_cert(&c, &t);
	sign_with(&c, &t, 0);
	sign_with(&c, &t, 1);
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), 0);

	/* Wrong fleet: same keys, other fleet id; and another fleet entirely. */
	struct fleet_public f2 = t.pub;
	f2.fleet_id[0] ^= 1;
	assert_int_equal(cert_verify(&c, &f2, NOW_MS), SHOAL_EFLEET);
	assert_int_equal(cert_verify(&c, &other.pub, NOW_MS), SHOAL_EFLEET);

	/* Tampered name: the signatures no longer cover it. */
	x = c;
	strcpy(x.name, "web-02.prod");
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EBADSIG);
	/* Tampered tag (e.g. self-promotion to canary). */
	x = c;
	strcpy(x.tags[1], "eu_east");
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EBADSIG);
	/* Tampered expiry. */
	x = c;
	x.expires_ms += DAY_MS;
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EBADSIG);

	/* Bad signature bytes. */
	x = c;
	x.sigs[1][5] ^= 0x40;
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EBADSIG);
	/* A valid signature attributed to the wrong key index. */
	x = c;
	x.sig_key_index[1] = 2;
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EBADSIG);

	/* Expired, exactly at and after expires_ms. */
	assert_int_equal(cert_verify(&c, &t.pub, c.expires_ms - 1), 0);
	assert_int_equal(cert_verify(&c, &t.pub, c.expires_ms), SHOAL_EEXPIRED);
	assert_int_equal(cert_verify(&c, &t.pub, c.expires_ms + DAY_MS), SHOAL_EEXPIRED);
}

static void test_cert_threshold(void **state)
{
	(void)state;
	struct test_fleet t;
	struct admission_cert c, x;
	make_fleet(&t, 3, 2);
	make_cert(&c, &t);
	/* No signature, then one of the two needed. */
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), SHOAL_EUNADMITTED);
	sign_with(&c, &t, 1);
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), SHOAL_EUNADMITTED);

	/* The same signer twice counts once. */
	x = c;
	x.sigs_count = 2;
	x.sig_key_index[1] = x.sig_key_index[0];
	memcpy(x.sigs[1], x.sigs[0], 64);
	assert_int_equal(cert_verify(&x, &t.pub, NOW_MS), SHOAL_EUNADMITTED);
	/* ... and survives an encode/decode trip as two entries. */
	uint8_t buf[SHOAL_CERT_BYTES_MAX];
	size_t len = 0;
	struct admission_cert y;
	assert_int_equal(cert_encode(&x, buf, sizeof buf, &len), 0);
	assert_int_equal(cert_decode(buf, len, &y), 0);
	assert_int_equal(y.sigs_count, 2);
	assert_int_equal(cert_verify(&y, &t.pub, NOW_MS), SHOAL_EUNADMITTED);
	/* cert_sign with the same key replaces, not appends. */
	sign_with(&c, &t, 1);
	assert_int_equal(c.sigs_count, 1);
	/* A second distinct signer reaches the threshold. */
	sign_with(&c, &t, 2);
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), 0);
	/* 3 of 3 needs all three. */
	struct fleet_public strict = t.pub;
	strict.threshold = 3;
	assert_int_equal(cert_verify(&c, &strict, NOW_MS), SHOAL_EUNADMITTED);
	sign_with(&c, &t, 0);
	assert_int_equal(cert_verify(&c, &strict, NOW_MS), 0);
	/* A fourth signature does not fit. */
	struct test_fleet big;
	make_fleet(&big, 4, 1);
	memcpy(c.fleet_id, big.pub.fleet_id, 16);
	c.sigs_count = 3;
	assert_int_equal(cert_sign(&c, 3, big.adm[3].sk), SHOAL_EFULL);
}

static void test_cert_key_index_out_of_range(void **state)
{
	(void)state;
	struct test_fleet t, big;
	struct admission_cert c;
	make_fleet(&big, 4, 1);
	make_fleet(&t, 2, 1);
	memcpy(big.pub.fleet_id, t.pub.fleet_id, 16);
	make_cert(&c, &t);
	/* Signed by key 3 of a larger key set: index 3 does not exist in t. */
	sign_with(&c, &big, 3);
	assert_int_equal(cert_verify(&c, &big.pub, NOW_MS), 0);
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), SHOAL_EBADSIG);
	c.sig_key_index[0] = 255;
	assert_int_equal(cert_verify(&c, &t.pub, NOW_MS), SHOAL_EBADSIG);
}

/* Encodes a signed cert of fleet t into buf. */
static size_t encoded(uint8_t *buf, struct admission_cert *c)
{
	struct test_fleet t;
	size_t len = 0;
	make_fleet(&t, 1, 1);
	make_cert(c, &t);
	sign_with(c, &t, 0);
	assert_int_equal(cert_encode(c, buf, SHOAL_CERT_BYTES_MAX, &len), 0);
	return len;
}

static void test_cert_decode_rejects(void **state)
{
	(void)state;
	uint8_t buf[SHOAL_CERT_BYTES_MAX + 8];
	struct admission_cert c, d;
	size_t len = encoded(buf, &c);
	/* Name starts after version(1) + fleet(16) + node(32). */
	const size_t name_at = 1 + 16 + 32;

	/* Every truncation fails. */
	for (size_t n = 0; n < len; n++)
		assert_int_equal(cert_decode(buf, n, &d), SHOAL_ETRUNC);
	/* Trailing bytes. */
	buf[len] = 0;
	assert_int_equal(cert_decode(buf, len + 1, &d), SHOAL_ETRAILING);
	/* Bad version. */
	buf[0] = 2;
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_EVERSION);
	buf[0] = 1;
	assert_int_equal(cert_decode(buf, len, &d), 0);

	/* Control character and disallowed characters in the name. */
	uint8_t save = buf[name_at + 1];
	buf[name_at + 1] = '\n';
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_EPROTO);
	buf[name_at + 1] = 0;
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_EPROTO);
	buf[name_at + 1] = '/';
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_EPROTO);
	buf[name_at + 1] = save;

	/* Over-long name (33 bytes) — built by hand, the encoder refuses it. */
	uint8_t big[SHOAL_CERT_BYTES_MAX];
	size_t off = 0;
	memcpy(big, buf, name_at);
	off = name_at;
	big[off++] = SHOAL_NAME_BYTES_MAX + 1;
	memset(big + off, 'a', SHOAL_NAME_BYTES_MAX + 1);
	off += SHOAL_NAME_BYTES_MAX + 1;
	big[off++] = 0; /* tags */
	memset(big + off, 0, 16);
	big[off + 15] = 1; /* expires > issued */
	off += 16;
	big[off++] = 0; /* sigs */
	assert_int_equal(cert_decode(big, off, &d), SHOAL_ETOOBIG);
	/* Same layout with a 32-byte name is fine. */
	big[name_at] = SHOAL_NAME_BYTES_MAX;
	memmove(big + name_at + 1 + SHOAL_NAME_BYTES_MAX, big + name_at + 2 + SHOAL_NAME_BYTES_MAX,
		off - (name_at + 2 + SHOAL_NAME_BYTES_MAX));
	assert_int_equal(cert_decode(big, off - 1, &d), 0);
	/* Empty name. */
	big[name_at] = 0;
	memmove(big + name_at + 1, big + name_at + 1 + SHOAL_NAME_BYTES_MAX,
		off - 1 - (name_at + 1 + SHOAL_NAME_BYTES_MAX));
	assert_int_equal(cert_decode(big, off - 1 - SHOAL_NAME_BYTES_MAX, &d), SHOAL_EPROTO);

	/* Too many tags: tags_count sits right after the name. */
	size_t tags_at = name_at + 1 + strlen(c.name);
	assert_int_equal(buf[tags_at], 2);
	buf[tags_at] = SHOAL_TAGS_COUNT_MAX + 1;
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_ETOOBIG);
	buf[tags_at] = 2;
	/* Too many signatures. */
	assert_int_equal(buf[len - 65 - 1], 1);
	buf[len - 65 - 1] = SHOAL_ADMISSION_SIGS_MAX + 1;
	assert_int_equal(cert_decode(buf, len, &d), SHOAL_ETOOBIG);
	buf[len - 65 - 1] = 1;
	assert_int_equal(cert_decode(buf, len, &d), 0);
	/* Larger than any certificate can be. */
	uint8_t huge[SHOAL_CERT_BYTES_MAX + 1];
	memset(huge, 1, sizeof huge);
	assert_int_equal(cert_decode(huge, sizeof huge, &d), SHOAL_ETOOBIG);
}

static void test_cert_encode_rejects_bad_fields(void **state)
{
	(void)state;
	uint8_t buf[SHOAL_CERT_BYTES_MAX];
	struct admission_cert c;
	size_t len = 0;
	encoded(buf, &c);
	struct admission_cert x = c;
	strcpy(x.name, "bad name");
	assert_int_not_equal(cert_encode(&x, buf, sizeof buf, &len), 0);
	x = c;
	x.tags_count = SHOAL_TAGS_COUNT_MAX + 1;
	assert_int_not_equal(cert_encode(&x, buf, sizeof buf, &len), 0);
	assert_true(identity_valid_name("a.b_c-D9", SHOAL_NAME_BYTES_MAX));
	assert_false(identity_valid_name("", SHOAL_NAME_BYTES_MAX));
	assert_false(identity_valid_name("0123456789abcdefX", SHOAL_TAG_BYTES_MAX));
	assert_true(identity_valid_name("0123456789abcdef", SHOAL_TAG_BYTES_MAX));
}

/* --- fleet and node directories ------------------------------------------- */

static int mode_of(const char *dir, const char *name)
{
	char path[1024];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (stat(path, &st) != 0)
		return -1;
	return (int)(st.st_mode & 0777);
}

static void init_node(const char *data, const char *fleet, const char *name,
		      struct admission_cert *cert)
{
	char err[512] = "";
	struct node_init_params p;
	memset(&p, 0, sizeof p);
	p.data_dir = data;
	p.fleet_dir = fleet;
	p.name = name;
	p.tags[0] = "canary";
	p.tags_count = 1;
	p.now_ms = NOW_MS;
	p.expires_ms = NOW_MS + 30 * DAY_MS;
	int rc = node_init(&p, cert, err, sizeof err);
	if (rc != 0)
		fail_msg("node_init: %s", err);
}

static void test_fleet_and_node_dirs(void **state)
{
	(void)state;
	char *root = tu_tmpdir();
	char fleet[512], data[512], data2[512], err[512] = "";
	struct fleet_public f, g;
	struct gossip_keyring ring;
	struct admission_cert cert;
	struct node_identity id;
	snprintf(fleet, sizeof fleet, "%s/fleet", root);
	snprintf(data, sizeof data, "%s/n1", root);
	snprintf(data2, sizeof data2, "%s/n2", root);

	assert_int_equal(fleet_create(fleet, 3, 2, &f, err, sizeof err), 0);
	assert_int_equal(mode_of(fleet, "."), 0700);
	assert_int_equal(mode_of(fleet, "admission"), 0700);
	assert_int_equal(mode_of(fleet, "admission/0.key"), 0600);
	assert_int_equal(mode_of(fleet, "admission/2.key"), 0600);
	assert_int_equal(mode_of(fleet, "gossip.keys"), 0600);
	assert_int_equal(fleet_load_public(fleet, &g, &ring, err, sizeof err), 0);
	assert_memory_equal(f.fleet_id, g.fleet_id, 16);
	assert_int_equal(g.admission_count, 3);
	assert_int_equal(g.threshold, 2);
	assert_int_equal(ring.count, 1);
	/* A second create into the same (non-empty) dir is refused. */
	assert_int_equal(fleet_create(fleet, 1, 1, NULL, err, sizeof err), SHOAL_EEXIST);
	/* Bad parameters. */
	assert_int_equal(fleet_create(data, 2, 3, NULL, err, sizeof err), SHOAL_EINVAL);
	assert_int_equal(fleet_create(data, 0, 0, NULL, err, sizeof err), SHOAL_EINVAL);

	init_node(data, fleet, "n1", &cert);
	assert_int_equal(mode_of(data, "."), 0700);
	assert_int_equal(mode_of(data, "keys"), 0700);
	assert_int_equal(mode_of(data, "keys/node.key"), 0600);
	assert_int_equal(mode_of(data, "fleet/gossip.keys"), 0600);
	assert_int_equal(cert.sigs_count, 3); /* every admission key present signed */

	assert_int_equal(node_identity_load(data, &id, NOW_MS + 1, err, sizeof err), 0);
	assert_string_equal(id.cert.name, "n1");
	assert_int_equal(id.cert.tags_count, 1);
	assert_string_equal(id.cert.tags[0], "canary");
	assert_memory_equal(id.kp.pk, id.cert.node_id, 32);
	assert_memory_equal(id.fleet.fleet_id, f.fleet_id, 16);
	assert_memory_equal(id.ring.keys[0], ring.keys[0], 32);
	assert_true(id.cert_len > 0);
	node_identity_wipe(&id);
	/* After expiry the identity no longer loads. */
	assert_int_equal(node_identity_load(data, &id, NOW_MS + 31 * DAY_MS, err, sizeof err),
			 SHOAL_EEXPIRED);
	assert_non_null(strstr(err, "expired"));

	/* Re-init of an existing node is refused and leaves it intact. */
	struct node_init_params p;
	memset(&p, 0, sizeof p);
	p.data_dir = data;
	p.fleet_dir = fleet;
	p.name = "again";
	p.now_ms = NOW_MS;
	p.expires_ms = NOW_MS + DAY_MS;
	assert_int_equal(node_init(&p, NULL, err, sizeof err), SHOAL_EEXIST);
	assert_int_equal(node_identity_load(data, &id, NOW_MS + 1, err, sizeof err), 0);
	assert_string_equal(id.cert.name, "n1");
	node_identity_wipe(&id);

	/* One explicit admission key is below the 2-of-3 threshold: refused,
	 * and nothing is left behind. */
	char k0[600];
	snprintf(k0, sizeof k0, "%s/admission/0.key", fleet);
	p.data_dir = data2;
	p.name = "n2";
	p.admission_key_paths[0] = k0;
	p.admission_key_paths[1] = k0; /* the same key twice still counts once */
	p.admission_key_paths_count = 2;
	assert_int_equal(node_init(&p, NULL, err, sizeof err), SHOAL_EUNADMITTED);
	assert_int_equal(mode_of(data2, "."), -1);
	/* Two distinct keys are enough. */
	char k2[600];
	snprintf(k2, sizeof k2, "%s/admission/2.key", fleet);
	p.admission_key_paths[1] = k2;
	assert_int_equal(node_init(&p, &cert, err, sizeof err), 0);
	assert_int_equal(cert.sigs_count, 2);
	assert_int_equal(node_identity_load(data2, &id, NOW_MS, err, sizeof err), 0);
	node_identity_wipe(&id);
	tu_rmtree(root);
	free(root);
}

static void test_node_identity_load_refuses_open_key(void **state)
{
	(void)state;
	char *root = tu_tmpdir();
	char fleet[512], data[512], path[600], err[512] = "";
	struct node_identity id;
	struct admission_cert cert;
	snprintf(fleet, sizeof fleet, "%s/fleet", root);
	snprintf(data, sizeof data, "%s/n1", root);
	assert_int_equal(fleet_create(fleet, 1, 1, NULL, err, sizeof err), 0);
	init_node(data, fleet, "n1", &cert);
	snprintf(path, sizeof path, "%s/keys/node.key", data);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(node_identity_load(data, &id, NOW_MS, err, sizeof err), SHOAL_EKEYMODE);
	assert_non_null(strstr(err, "node.key"));
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);

	/* A gossip keyring readable by others is refused too. */
	snprintf(path, sizeof path, "%s/fleet/gossip.keys", data);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(node_identity_load(data, &id, NOW_MS, err, sizeof err), SHOAL_EKEYMODE);
	assert_int_equal(chmod(path, 0600), 0);

	/* A certificate of another fleet. */
	char other[512];
	snprintf(other, sizeof other, "%s/other", root);
	assert_int_equal(fleet_create(other, 1, 1, NULL, err, sizeof err), 0);
	char src[600], dst[600];
	snprintf(src, sizeof src, "%s/fleet.id", other);
	snprintf(dst, sizeof dst, "%s/fleet/fleet.id", data);
	assert_int_equal(rename(src, dst), 0);
	assert_int_equal(node_identity_load(data, &id, NOW_MS, err, sizeof err), SHOAL_EFLEET);

	/* A missing certificate. */
	snprintf(path, sizeof path, "%s/node.cert", data);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(node_identity_load(data, &id, NOW_MS, err, sizeof err), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, "node.cert"));
	tu_rmtree(root);
	free(root);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys_roundtrip),
		cmocka_unit_test(test_keys_mode_refused),
		cmocka_unit_test(test_keys_missing_and_malformed),
		cmocka_unit_test(test_cert_roundtrip),
		cmocka_unit_test(test_cert_verify_accepts_and_rejects),
		cmocka_unit_test(test_cert_threshold),
		cmocka_unit_test(test_cert_key_index_out_of_range),
		cmocka_unit_test(test_cert_decode_rejects),
		cmocka_unit_test(test_cert_encode_rejects_bad_fields),
		cmocka_unit_test(test_fleet_and_node_dirs),
		cmocka_unit_test(test_node_identity_load_refuses_open_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
