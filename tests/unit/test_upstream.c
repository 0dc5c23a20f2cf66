/* test_upstream.c — the upstream bridge (runtime/upstream.c) over the tuf-js
 * fixture repositories (tests/fixtures/tuf, file:// URLs through the real
 * libcurl fetcher), into a real node: its trust anchor, blob store and
 * release manager. The inject callback does what the replica does with the
 * laid-out repository (relmgr_ingest_repo, an announce record), and then
 * processes that announce as every node would (relmgr_process against the
 * node's own trust anchor), so a test sees what the mesh would install.
 * Checked: a good repository is injected once (not again on the next pull,
 * nor after a reopen: state.json); root rotations are laid out from the
 * trust anchor and followed by the node; under-signed, wrong-hash and
 * rolled-back repositories are never injected and the error names the step;
 * a tampered cached root is caught and fetched again. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/announce.h"
#include "core/record.h"
#include "runtime/releases.h"
#include "runtime/upstream.h"
#include "store/blobs.h"
#include "trust/anchor.h"

#define NOW_S 1798761600 /* 2027-01-01T00:00:00Z, the fixtures' clock */
#define P 4096

struct fx {
	char *dir;
	struct blobs *blobs;
	struct relmgr *m;
	struct upstream *u;
	uint8_t pk[32], sk[64];
	uint64_t seq;
	int injected;          /* inject calls */
	int process_rc;        /* the node's verdict on the last injected announce */
	int64_t version;       /* targets version it installed */
	char process_err[512];
	char layout[1024];     /* metadata files the last injected repo held */
};

static char *fixture(const char *name, const char *sub)
{
	const char *src = getenv("SHOAL_SRC");
	char *p = malloc(P);
	snprintf(p, P, "%s/tests/fixtures/tuf/%s%s%s", src ? src : ".", name, sub ? "/" : "",
		 sub ? sub : "");
	return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static int local_fetch(void *arg, const uint8_t hash[32], uint64_t length,
		       const uint8_t announcer[32], char *err, size_t errlen)
{
	struct fx *f = arg;
	(void)length;
	(void)announcer;
	if (blobs_has(f->blobs, hash))
		return 0;
	snprintf(err, errlen, "no peer has blob");
	return SHOAL_ENOTFOUND;
}

/* Lists repo_dir/metadata, sorted names joined by ' '. */
static void list_metadata(const char *repo_dir, char *out, size_t n)
{
	char cmd[P + 64];
	snprintf(cmd, sizeof(cmd), "ls %s/metadata | tr '\\n' ' '", repo_dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t got = fread(out, 1, n - 1, p);
	out[got] = '\0';
	pclose(p);
}

/* What the replica does with the repository, then what a node does with
 * the announce. */
static int inject(void *arg, const char *repo_dir, uint64_t *seq, char *err, size_t errlen)
{
	struct fx *f = arg;
	struct announce a;
	int rc = relmgr_ingest_repo(f->m, repo_dir, &a, err, errlen);
	if (rc)
		return rc;
	list_metadata(repo_dir, f->layout, sizeof(f->layout));
	struct record rec;
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.author, f->pk, 32);
	rec.seq = ++f->seq;
	rec.kind = RECORD_ANNOUNCE;
	size_t len = 0;
	assert_int_equal(announce_encode(&a, rec.body, sizeof(rec.body), &len), 0);
	rec.body_len = (uint32_t)len;
	record_sign(&rec, f->sk);
	f->injected++;
	f->process_rc = relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &f->version,
				       f->process_err, sizeof(f->process_err));
	*seq = rec.seq;
	return 0;
}

static void up_open(struct fx *f, const char *name, const char *step)
{
	char *base = fixture(name, step), url[P + 16], err[512];
	snprintf(url, sizeof(url), "file://%s", base);
	free(base);
	struct upstream_config cfg = {url, SHOAL_UPSTREAM_INTERVAL_MS_MIN};
	upstream_close(f->u);
	f->u = NULL;
	if (upstream_open(f->dir, &cfg, inject, f, &f->u, err, sizeof(err)) != 0)
		fail_msg("upstream_open: %s", err);
}

static struct fx *fx_new(const char *name)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512];
	f->dir = tu_tmpdir();
	assert_int_equal(blobs_open(f->dir, &f->blobs, err, sizeof(err)), 0);
	if (relmgr_open(f->dir, f->blobs, &f->m, err, sizeof(err)) != 0)
		fail_msg("relmgr_open: %s", err);
	char *root = fixture(name, "root.json");
	size_t len = 0;
	uint8_t *bytes = slurp(root, &len);
	assert_non_null(bytes);
	if (anchor_init(f->dir, bytes, len, err, sizeof(err)) != 0)
		fail_msg("anchor_init: %s", err);
	free(bytes);
	free(root);
	crypto_sign_keypair(f->pk, f->sk);
	return f;
}

static void fx_free(struct fx *f)
{
	upstream_close(f->u);
	relmgr_close(f->m);
	blobs_close(f->blobs);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
}

static json_t *status(struct fx *f)
{
	json_t *j = upstream_status(f->u);
	assert_non_null(j);
	return j;
}

static json_int_t st_int(json_t *j, const char *key)
{
	const json_t *v = json_object_get(j, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* The node installed file1.txt of `version` with the fixture's bytes. */
static void assert_installed(struct fx *f, const char *name, int64_t version)
{
	char path[P], *want = fixture(name, "want/file1.txt");
	size_t n1 = 0, n2 = 0;
	snprintf(path, sizeof(path), "%s/releases/%lld/file1.txt", f->dir, (long long)version);
	uint8_t *got = slurp(path, &n1), *exp = slurp(want, &n2);
	assert_non_null(got);
	assert_non_null(exp);
	assert_int_equal(n1, n2);
	assert_memory_equal(got, exp, n1);
	free(got);
	free(exp);
	free(want);
}

static int64_t trusted_root_version(struct fx *f)
{
	struct tuf_md md;
	char err[256];
	assert_int_equal(anchor_load(f->dir, &md, NULL, NULL, err, sizeof(err)), 0);
	int64_t v = md.version;
	tuf_md_clear(&md);
	return v;
}

static void rotation_is_bridged_once(void **state)
{
	(void)state;
	struct fx *f = fx_new("root_rotation");
	up_open(f, "root_rotation", "s1");
	bool injected = false;
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_true(injected);
	assert_int_equal(f->injected, 1);
	if (f->process_rc)
		fail_msg("the node rejected the injected release: %s", f->process_err);
	assert_int_equal(f->version, 1);
	/* The chain from the anchor (1) to the trusted root (3), and the rest. */
	assert_string_equal(f->layout, "1.root.json 1.snapshot.json 1.targets.json 2.root.json "
				       "3.root.json root.json timestamp.json ");
	assert_int_equal(trusted_root_version(f), 3); /* the node followed the rotation */
	assert_installed(f, "root_rotation", 1);
	json_t *j = status(f);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_int_equal(st_int(j, "injections"), 1);
	assert_int_equal(st_int(j, "last_injected_version"), 1);
	assert_int_equal(st_int(j, "last_injected_seq"), 1);
	assert_true(json_is_null(json_object_get(j, "last_error")));
	json_decref(j);
	char path[P];
	struct stat st;
	snprintf(path, sizeof(path), "%s/upstream/repo", f->dir);
	assert_int_not_equal(stat(path, &st), 0); /* removed after the injection */

	/* The same timestamp again: nothing new. */
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_false(injected);
	assert_int_equal(f->injected, 1);
	/* A restart remembers what it injected. */
	up_open(f, "root_rotation", "s1");
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_false(injected);
	assert_int_equal(f->injected, 1);
	j = status(f);
	assert_int_equal(st_int(j, "injections"), 0);
	assert_int_equal(st_int(j, "last_injected_version"), 1);
	assert_int_equal(st_int(j, "attempts"), 1);
	json_decref(j);
	fx_free(f);
}

/* Fails a poll, checks nothing was injected and the error names step. */
static void expect_refused(struct fx *f, const char *step_prefix, const char *detail)
{
	int before = f->injected;
	bool injected = true;
	assert_int_not_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_false(injected);
	assert_int_equal(f->injected, before);
	json_t *j = status(f);
	const char *e = json_string_value(json_object_get(j, "last_error"));
	assert_non_null(e);
	if (strncmp(e, step_prefix, strlen(step_prefix)) != 0 || !strstr(e, detail))
		fail_msg("last_error '%s' should start with '%s' and name '%s'", e, step_prefix, detail);
	assert_true(json_is_false(json_object_get(j, "ok")));
	assert_true(st_int(j, "failures") >= 1);
	assert_true(st_int(j, "last_error_ms") > 0);
	json_decref(j);
}

static void under_signed_is_never_injected(void **state)
{
	(void)state;
	struct fx *f = fx_new("below_threshold");
	up_open(f, "below_threshold", "s1");
	expect_refused(f, "refresh: ", "threshold");
	up_open(f, "below_threshold", "s2");
	bool injected = false;
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_true(injected);
	if (f->process_rc)
		fail_msg("the node rejected the good release: %s", f->process_err);
	fx_free(f);
}

static void wrong_target_hash_is_never_injected(void **state)
{
	(void)state;
	struct fx *f = fx_new("wrong_target_hash");
	up_open(f, "wrong_target_hash", "s1");
	expect_refused(f, "download: ", "file1.txt");
	char path[P];
	snprintf(path, sizeof(path), "%s/upstream/targets/file1.txt", f->dir);
	assert_int_not_equal(access(path, F_OK), 0); /* nothing unverified kept */
	up_open(f, "wrong_target_hash", "s2");
	bool injected = false;
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_true(injected);
	if (f->process_rc)
		fail_msg("the node rejected the good release: %s", f->process_err);
	assert_installed(f, "wrong_target_hash", f->version);
	fx_free(f);
}

static void rollback_is_never_injected(void **state)
{
	(void)state;
	struct fx *f = fx_new("rollback_targets");
	up_open(f, "rollback_targets", "s1");
	bool injected = false;
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_true(injected);
	up_open(f, "rollback_targets", "s2");
	expect_refused(f, "refresh: ", "older");
	assert_int_equal(f->injected, 1);
	fx_free(f);
}

/* The node trusts root 3 (followed through an earlier announce) while its
 * anchor is root 1, and the upstream directory is gone: the client starts
 * from root 3, and the chain 1 -> 2 -> 3 is rebuilt by fetching root 2 and
 * checking both links. A cached root that does not link is dropped and
 * fetched again. */
static void chain_is_rebuilt_from_the_anchor(void **state)
{
	(void)state;
	struct fx *f = fx_new("root_rotation");
	up_open(f, "root_rotation", "s1");
	bool injected = false;
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_int_equal(trusted_root_version(f), 3);
	upstream_close(f->u);
	f->u = NULL;
	char path[P];
	snprintf(path, sizeof(path), "%s/upstream", f->dir);
	tu_rmtree(path);
	up_open(f, "root_rotation", "s1");
	/* a bogus cached root 2: root 3's bytes under its name */
	char *r3 = fixture("root_rotation", "s1/metadata/3.root.json");
	size_t len = 0;
	uint8_t *bytes = slurp(r3, &len);
	free(r3);
	snprintf(path, sizeof(path), "%s/upstream/roots", f->dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/upstream/roots/2.root.json", f->dir);
	tu_write_file(path, bytes, len, 0644);
	free(bytes);
	expect_refused(f, "root-chain: ", "root 2");
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_equal(upstream_poll(f->u, NOW_S, &injected), 0);
	assert_true(injected);
	assert_int_equal(f->injected, 2);
	assert_string_equal(f->layout, "1.root.json 1.snapshot.json 1.targets.json 2.root.json "
				       "3.root.json root.json timestamp.json ");
	if (f->process_rc)
		fail_msg("the node rejected the re-injected release: %s", f->process_err);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rotation_is_bridged_once),
		cmocka_unit_test(under_signed_is_never_injected),
		cmocka_unit_test(wrong_target_hash_is_never_injected),
		cmocka_unit_test(rollback_is_never_injected),
		cmocka_unit_test(chain_is_rebuilt_from_the_anchor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
