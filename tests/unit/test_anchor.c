/* test_anchor.c — the node trust anchor (anchor.c) over roots made by the
 * repository writer: first root self-signed only, replacement only along
 * the root chain (threshold of the old and the new root keys, exactly the
 * next version), equivocation, skipped versions, a metadata root the TUF
 * client moved forward, and the 5.3.11 removal of timestamp/snapshot. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "shoal/error.h"
#include "shoal/log.h"
#include "trust/anchor.h"
#include "trust/repo.h"
#include "trust/tuf.h"

#define P 4600

static void pf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pf(char *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, P, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && n < P);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

struct fixture {
	char *tmp;
	char repo[P], other[P], data[P];
	uint8_t *root[4]; /* repo roots 1..3 (index = version), 3 under-signed */
	size_t len[4];
	uint8_t *other2; /* another repository's root 2 */
	size_t other2_len;
};

static void make(const char *dir)
{
	char err[512];
	struct repo_create_params p = {.dir = dir, .root_keys = 1, .root_threshold = 1,
				       .publishers = 1, .publisher_threshold = 1,
				       .root_expires_days = 30, .targets_expires_days = 30,
				       .online_expires_days = 7, .now_s = now_s()};
	assert_int_equal(repo_create(&p, err, sizeof(err)), 0);
}

/* Stages root N+1 (a new root key replacing the old one, fresh online keys
 * when online), signs it with the new key and, when both, the old one. */
static void rotate(const char *dir, const char *tag, bool both, bool online)
{
	char err[512], key[P], pub[P], id[65], old_key[P];
	struct repo *r = NULL;
	assert_int_equal(repo_open(dir, &r, err, sizeof(err)), 0);
	json_t *st = NULL;
	assert_int_equal(repo_status(r, now_s(), &st), 0);
	const json_t *ids = json_object_get(json_object_get(json_object_get(st, "roles"), "root"), "keyids");
	const char *old_id = json_string_value(json_array_get(ids, 0));
	const char *old_name = json_string_value(json_object_get(json_object_get(st, "key_files"), old_id));
	pf(old_key, "%s/keys/%s.key", dir, old_name);
	pf(key, "%s/keys/root-%s.key", dir, tag);
	pf(pub, "%s/keys/root-%s.pub", dir, tag);
	assert_int_equal(repo_keygen(key, pub, id, err, sizeof(err)), 0);
	struct repo_rotation rot = {0};
	rot.add_count = 1;
	rot.add[0].role = "root";
	assert_int_equal(repo_read_public_key(pub, rot.add[0].pk, err, sizeof(err)), 0);
	rot.remove_count = 1;
	rot.remove[0].role = "root";
	rot.remove[0].keyid = old_id;
	rot.new_online_keys = online;
	assert_int_equal(repo_rotate_root(r, &rot, now_s(), err, sizeof(err)), 0);
	json_decref(st);
	struct repo_sign_result res;
	assert_int_equal(repo_sign(r, key, 0, &res, err, sizeof(err)), 0);
	if (both)
		assert_int_equal(repo_sign(r, old_key, 0, &res, err, sizeof(err)), 0);
	struct repo_publish_opts o = {.allow_under_threshold = !both};
	struct repo_publish_result pr;
	int rc = repo_publish(r, now_s(), &o, &pr, err, sizeof(err));
	if (rc)
		fail_msg("publish: %s", err);
	repo_close(r);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char p[P];
	f->tmp = tu_tmpdir();
	pf(f->repo, "%s/repo", f->tmp);
	pf(f->other, "%s/other", f->tmp);
	pf(f->data, "%s/node", f->tmp);
	assert_int_equal(mkdir(f->data, 0700), 0);
	make(f->repo);
	rotate(f->repo, "b", true, true);   /* 2: properly chained, online keys too */
	rotate(f->repo, "c", false, false); /* 3: only the new key signed */
	for (int v = 1; v <= 3; v++) {
		pf(p, "%s/metadata/%d.root.json", f->repo, v);
		f->root[v] = slurp(p, &f->len[v]);
		assert_non_null(f->root[v]);
	}
	make(f->other);
	rotate(f->other, "x", true, false);
	pf(p, "%s/metadata/2.root.json", f->other);
	f->other2 = slurp(p, &f->other2_len);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (int v = 1; v <= 3; v++)
		free(f->root[v]);
	free(f->other2);
	tu_rmtree(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static int64_t trusted_version(const char *data, enum anchor_source *src)
{
	struct tuf_md md;
	char err[512];
	int rc = anchor_load(data, &md, src, NULL, err, sizeof(err));
	if (rc)
		fail_msg("anchor_load: %s", err);
	int64_t v = md.version;
	tuf_md_clear(&md);
	return v;
}

static void paths(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(anchor_root_path("/d", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/trust/root.json");
	assert_int_equal(anchor_metadata_dir("/d", out, sizeof(out)), 0);
	assert_string_equal(out, "/d/trust/metadata");
	assert_int_equal(anchor_root_path("/a/very/long/data/dir/name", out, 20), SHOAL_ETOOBIG);
}

static void first_root(void **state)
{
	struct fixture *f = *state;
	char err[512], p[P];
	struct tuf_md md;
	struct stat st;
	assert_int_equal(anchor_load(f->data, &md, NULL, NULL, err, sizeof(err)), SHOAL_ENOTFOUND);
	assert_non_null(strstr(err, "no trusted root"));
	/* not a root; a tampered root */
	assert_int_equal(anchor_init(f->data, (const uint8_t *)"{}", 2, err, sizeof(err)), SHOAL_EPROTO);
	uint8_t *bad = malloc(f->len[1]);
	memcpy(bad, f->root[1], f->len[1]);
	char *v = strstr((char *)bad, "\"version\":1}");
	assert_non_null(v);
	v[10] = '9';
	assert_int_equal(anchor_init(f->data, bad, f->len[1], err, sizeof(err)), SHOAL_EBADSIG);
	free(bad);
	/* version 3 is not signed by a threshold of its own keys? it is (the
	 * new key signed it): self-signed is all a first root can show */
	pf(p, "%s/trust", f->data);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(anchor_init(f->data, f->root[1], f->len[1], err, sizeof(err)), 0);
	assert_int_equal(anchor_init(f->data, f->root[1], f->len[1], err, sizeof(err)), SHOAL_EEXIST);
	enum anchor_source src;
	assert_int_equal(trusted_version(f->data, &src), 1);
	assert_int_equal(src, ANCHOR_SOURCE_ANCHOR);
	pf(p, "%s/trust/metadata/root.json", f->data);
	size_t len = 0;
	uint8_t *copy = slurp(p, &len);
	assert_int_equal(len, f->len[1]);
	assert_memory_equal(copy, f->root[1], len);
	free(copy);
}

static void chain(void **state)
{
	struct fixture *f = *state;
	char err[512], p[P];
	struct anchor_change ch;
	/* another repository's root 2 does not chain */
	assert_int_equal(anchor_set_root(f->data, f->other2, f->other2_len, err, sizeof(err)), SHOAL_EBADSIG);
	assert_non_null(strstr(err, "trusted root keys"));
	/* skipping version 2 */
	const uint8_t *only3[1] = {f->root[3]};
	size_t len3[1] = {f->len[3]};
	assert_int_equal(anchor_set_root_chain(f->data, only3, len3, 1, &ch, err, sizeof(err)), SHOAL_EPROTO);
	assert_non_null(strstr(err, "in between"));
	/* 2 then 3: 3 is not signed by root 2's key; nothing is written */
	const uint8_t *two3[2] = {f->root[2], f->root[3]};
	size_t len23[2] = {f->len[2], f->len[3]};
	assert_int_equal(anchor_set_root_chain(f->data, two3, len23, 2, &ch, err, sizeof(err)), SHOAL_EBADSIG);
	assert_int_equal(trusted_version(f->data, NULL), 1);
	/* the client's files, to see them dropped when online keys change */
	char md[P];
	assert_int_equal(anchor_metadata_dir(f->data, md, sizeof(md)), 0);
	pf(p, "%s/timestamp.json", md);
	tu_write_file(p, "{}", 2, 0644);
	pf(p, "%s/snapshot.json", md);
	tu_write_file(p, "{}", 2, 0644);
	/* 1 (same root, skipped), 2: replaced */
	const uint8_t *one2[2] = {f->root[1], f->root[2]};
	size_t len12[2] = {f->len[1], f->len[2]};
	assert_int_equal(anchor_set_root_chain(f->data, one2, len12, 2, &ch, err, sizeof(err)), 0);
	assert_int_equal(ch.from_version, 1);
	assert_int_equal(ch.to_version, 2);
	assert_int_equal(trusted_version(f->data, NULL), 2);
	struct stat st;
	assert_int_equal(stat(p, &st), -1); /* snapshot.json gone (5.3.11) */
	pf(p, "%s/timestamp.json", md);
	assert_int_equal(stat(p, &st), -1);
	/* again: nothing newer, nothing changes */
	assert_int_equal(anchor_set_root(f->data, f->root[2], f->len[2], err, sizeof(err)), 0);
	assert_int_equal(anchor_set_root(f->data, f->root[1], f->len[1], err, sizeof(err)), 0);
	assert_int_equal(trusted_version(f->data, NULL), 2);
	/* a different root carrying the trusted version: equivocation */
	assert_int_equal(anchor_set_root(f->data, f->other2, f->other2_len, err, sizeof(err)), SHOAL_EBADSIG);
	assert_non_null(strstr(err, "differs from the trusted root"));
	/* the under-signed 3 */
	assert_int_equal(anchor_set_root(f->data, f->root[3], f->len[3], err, sizeof(err)), SHOAL_EBADSIG);
	assert_int_equal(trusted_version(f->data, NULL), 2);
}

/* The TUF client follows a rotation into the metadata dir: the newer root
 * is trusted; anchor_prepare restores a metadata root that fell behind. */
static void metadata_ahead_and_prepare(void **state)
{
	struct fixture *f = *state;
	char err[512], p[P], md[P], data2[P];
	pf(data2, "%s/node2", f->tmp);
	assert_int_equal(mkdir(data2, 0700), 0);
	assert_int_equal(anchor_init(data2, f->root[1], f->len[1], err, sizeof(err)), 0);
	assert_int_equal(anchor_metadata_dir(data2, md, sizeof(md)), 0);
	/* what a refresh does: root 2 written into the metadata dir */
	assert_int_equal(tuf_init_root(md, f->root[2], f->len[2], err, sizeof(err)), 0);
	enum anchor_source src;
	int64_t av = 0;
	struct tuf_md m;
	assert_int_equal(anchor_load(data2, &m, &src, &av, err, sizeof(err)), 0);
	assert_int_equal(m.version, 2);
	assert_int_equal(av, 1);
	assert_int_equal(src, ANCHOR_SOURCE_METADATA);
	tuf_md_clear(&m);
	/* set-root starts from the newer one: root 1 is old news */
	assert_int_equal(anchor_set_root(data2, f->root[1], f->len[1], err, sizeof(err)), 0);
	/* a metadata root that is not self-signed is ignored and repaired */
	pf(p, "%s/root.json", md);
	tu_write_file(p, "garbage", 7, 0644);
	assert_int_equal(trusted_version(data2, &src), 1);
	assert_int_equal(src, ANCHOR_SOURCE_ANCHOR);
	char out[P];
	assert_int_equal(anchor_prepare(data2, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, md);
	size_t len = 0;
	uint8_t *b = slurp(p, &len);
	assert_int_equal(len, f->len[1]);
	assert_memory_equal(b, f->root[1], len);
	free(b);
	/* a node with no anchor */
	pf(p, "%s/nothing", f->tmp);
	assert_int_equal(anchor_prepare(p, out, sizeof(out), err, sizeof(err)), SHOAL_ENOTFOUND);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	shoal_log_set_level(SHOAL_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(paths),
		cmocka_unit_test(first_root),
		cmocka_unit_test(chain),
		cmocka_unit_test(metadata_ahead_and_prepare),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
