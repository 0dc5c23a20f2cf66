/* test_releases.c — the release manager over real TUF repositories (the
 * tuf-js fixtures in tests/fixtures/tuf), real files and a real SQLite
 * state.db: a published repository becomes an announce; processing the
 * announce runs the TUF client over the announced blobs; good releases are
 * installed, bad ones rejected with the failing step and nothing changed. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "runtime/releases.h"
#include "trust/anchor.h"
#include "trust/tuf.h"

#define NOW_S 1798761600 /* 2027-01-01T00:00:00Z, the fixtures' clock */

struct fx {
	char *dir;
	struct blobs *blobs;
	struct relmgr *m;
	uint8_t pk[32], sk[64];
	uint64_t seq;
	int fetches;
};

static char *fixture(const char *name, const char *sub)
{
	const char *src = getenv("SHOAL_SRC");
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/tests/fixtures/tuf/%s/%s", src ? src : ".", name, sub);
	return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static struct fx *fx_new(const char *fixture_name)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	char err[512], md[4096];
	assert_int_equal(blobs_open(f->dir, &f->blobs, err, sizeof(err)), 0);
	if (relmgr_open(f->dir, f->blobs, &f->m, err, sizeof(err)) != 0)
		fail_msg("relmgr_open: %s", err);
	char *root = fixture(fixture_name, "root.json");
	size_t len;
	uint8_t *bytes = slurp(root, &len);
	(void)md;
	if (anchor_init(f->dir, bytes, len, err, sizeof(err)) != 0)
		fail_msg("anchor_init: %s", err);
	free(bytes);
	free(root);
	crypto_sign_keypair(f->pk, f->sk);
	return f;
}

static void fx_free(struct fx *f)
{
	relmgr_close(f->m);
	blobs_close(f->blobs);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
}

/* Blobs are local in these tests: "fetching" finds them or fails. */
static int local_fetch(void *arg, const uint8_t hash[32], uint64_t length,
		       const uint8_t announcer[32], char *err, size_t errlen)
{
	struct fx *f = arg;
	(void)length;
	(void)announcer;
	f->fetches++;
	if (blobs_has(f->blobs, hash))
		return 0;
	snprintf(err, errlen, "no peer has blob");
	return SHOAL_ENOTFOUND;
}

/* Publishes fixture step `step` as a signed announce record. */
static void publish(struct fx *f, const char *name, const char *step, struct record *rec)
{
	char *repo = fixture(name, step);
	struct announce a;
	char err[512] = "";
	assert_int_equal(relmgr_ingest_repo(f->m, repo, &a, err, sizeof(err)), 0);
	free(repo);
	memset(rec, 0, sizeof(*rec));
	memcpy(rec->author, f->pk, 32);
	rec->seq = ++f->seq;
	rec->kind = RECORD_ANNOUNCE;
	size_t len;
	assert_int_equal(announce_encode(&a, rec->body, sizeof(rec->body), &len), 0);
	rec->body_len = (uint32_t)len;
	record_sign(rec, f->sk);
}

static const char *state_of(struct fx *f, const struct record *rec, json_t **keep)
{
	json_t *j = relmgr_list(f->m);
	json_t *arr = json_object_get(j, "releases");
	size_t i;
	json_t *row;
	json_array_foreach(arr, i, row)
	{
		if (json_integer_value(json_object_get(row, "announce_seq")) == (json_int_t)rec->seq) {
			*keep = j;
			return json_string_value(json_object_get(row, "state"));
		}
	}
	*keep = j;
	return "absent";
}

static void good_release_is_verified_and_installed(void **state)
{
	(void)state;
	struct fx *f = fx_new("basic_ed25519");
	struct record rec;
	publish(f, "basic_ed25519", "s1", &rec);
	int64_t v = 0;
	char err[512];
	assert_false(relmgr_seen(f->m, &rec));
	/* Queued: listed as announced, not yet seen through. */
	relmgr_note_announced(f->m, &rec);
	json_t *q;
	assert_string_equal(state_of(f, &rec, &q), "announced");
	json_decref(q);
	assert_false(relmgr_seen(f->m, &rec));
	int rc = relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err, sizeof(err));
	if (rc)
		fail_msg("process: %s", err);
	assert_int_equal(v, 1);
	assert_true(relmgr_seen(f->m, &rec));
	relmgr_note_announced(f->m, &rec); /* a late duplicate changes nothing */
	json_t *j;
	assert_string_equal(state_of(f, &rec, &j), "verified");
	json_t *row = json_array_get(json_object_get(j, "releases"), 0);
	assert_int_equal(json_array_size(json_object_get(row, "targets")), 2);
	json_decref(j);
	/* The installed target is byte for byte the signed one. */
	char path[4096];
	snprintf(path, sizeof(path), "%s/releases/1/file1.txt", f->dir);
	size_t got_len, want_len;
	uint8_t *got = slurp(path, &got_len);
	char *want_path = fixture("basic_ed25519", "want/file1.txt");
	uint8_t *want = slurp(want_path, &want_len);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, got_len);
	free(got);
	free(want);
	free(want_path);
	snprintf(path, sizeof(path), "%s/releases/1/dir%%2Ffile%%202.txt", f->dir);
	assert_int_equal(access(path, R_OK), 0);
	/* Holders come from health records. */
	uint8_t body[SHOAL_RECORD_BODY_MAX];
	size_t blen;
	assert_int_equal(relmgr_health_body(1, "fetched", "", body, sizeof(body), &blen), 0);
	int64_t hv;
	char hs[32];
	assert_int_equal(relmgr_parse_health(body, blen, &hv, hs, sizeof(hs)), 0);
	assert_int_equal(hv, 1);
	assert_string_equal(hs, "fetched");
	relmgr_note_health(f->m, f->pk, hv, hs);
	j = relmgr_list(f->m);
	row = json_array_get(json_object_get(j, "releases"), 0);
	assert_int_equal(json_integer_value(json_object_get(row, "holders")), 1);
	json_decref(j);
	fx_free(f);
}

/* Rejected with `want_rc`; the reason names `want_reason`; then the next
 * step is accepted (a bad release never blocks the next good one). */
static void reject_then_accept(const char *name, const char *bad, int want_rc,
			       const char *want_reason, const char *good)
{
	struct fx *f = fx_new(name);
	struct record rec;
	int64_t v;
	char err[512];
	if (strcmp(bad, "s2") == 0) { /* rollback: first accept s1 */
		publish(f, name, "s1", &rec);
		assert_int_equal(relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err,
						sizeof(err)), 0);
	}
	publish(f, name, bad, &rec);
	int rc = relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err, sizeof(err));
	if (rc != want_rc)
		fail_msg("%s/%s: rc %d (%s), want %d", name, bad, rc, err, want_rc);
	if (!strstr(err, want_reason))
		fail_msg("%s/%s: reason '%s' lacks '%s'", name, bad, err, want_reason);
	json_t *j;
	assert_string_equal(state_of(f, &rec, &j), "rejected");
	json_decref(j);
	if (good) {
		publish(f, name, good, &rec);
		rc = relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err, sizeof(err));
		if (rc)
			fail_msg("%s/%s after rejection: %s", name, good, err);
	}
	fx_free(f);
}

static void below_threshold_is_rejected_then_next_accepted(void **state)
{
	(void)state;
	reject_then_accept("below_threshold", "s1", SHOAL_EBADSIG, "", "s2");
}

static void rollback_is_rejected(void **state)
{
	(void)state;
	reject_then_accept("rollback_timestamp", "s2", SHOAL_EREPLAY, "timestamp", NULL);
}

static void missing_blob_waits_then_is_rejected(void **state)
{
	(void)state;
	/* No peer holds the target yet: not final, so the announce waits. */
	struct fx *f = fx_new("wrong_target_hash");
	struct record rec;
	publish(f, "wrong_target_hash", "s1", &rec);
	int64_t v;
	char err[512];
	assert_int_equal(relmgr_process(f->m, &rec, NOW_S, false, local_fetch, f, &v, err,
					sizeof(err)), SHOAL_ECONN);
	json_t *j;
	assert_string_equal(state_of(f, &rec, &j), "fetching");
	json_decref(j);
	assert_false(relmgr_seen(f->m, &rec));
	fx_free(f);
}

/* An agent that verified release A's metadata but could not fetch its
 * target yet, and meanwhile took a newer release B (trusting B's
 * timestamp), still installs A when the target arrives: the retry uses the
 * targets metadata it verified for A instead of refreshing A again, which
 * would now be a rollback. Once that metadata has expired it does not. */
static void retry_installs_from_metadata_verified_before(void **state)
{
	(void)state;
	const char *hex = "a64b42ee65bc60b078a457c773acdbde3aa0252c2573771e0a73ec127919997c";
	for (int expired = 0; expired < 2; expired++) {
		struct fx *f = fx_new("rollback_timestamp");
		struct record older, newer;
		publish(f, "rollback_timestamp", "s2", &older); /* timestamp v1 */
		char path[4096];
		snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, hex);
		assert_int_equal(unlink(path), 0);
		int64_t v;
		char err[512];
		assert_int_equal(relmgr_process(f->m, &older, NOW_S, false, local_fetch, f, &v, err,
						sizeof(err)), SHOAL_ECONN);
		publish(f, "rollback_timestamp", "s1", &newer); /* timestamp v2, same target */
		if (relmgr_process(f->m, &newer, NOW_S, true, local_fetch, f, &v, err, sizeof(err)))
			fail_msg("newer: %s", err);
		int64_t later = expired ? (int64_t)4102444800 + 1 : NOW_S; /* 2100-01-01 */
		int rc = relmgr_process(f->m, &older, later, true, local_fetch, f, &v, err,
					sizeof(err));
		json_t *j;
		if (!expired) {
			if (rc)
				fail_msg("retry of the older release: %s", err);
			assert_int_equal(v, 1);
			assert_string_equal(state_of(f, &older, &j), "verified");
			snprintf(path, sizeof(path), "%s/releases/1/file1.txt", f->dir);
			assert_int_equal(access(path, R_OK), 0);
		} else {
			assert_int_not_equal(rc, 0);
			assert_string_equal(state_of(f, &older, &j), "rejected");
		}
		json_decref(j);
		fx_free(f);
	}
}

static void wrong_target_hash_is_rejected(void **state)
{
	(void)state;
	reject_then_accept("wrong_target_hash", "s1", SHOAL_ENOTFOUND, "file1.txt", "s2");
}

static void root_rotation_is_followed(void **state)
{
	(void)state;
	struct fx *f = fx_new("root_rotation");
	struct record rec;
	publish(f, "root_rotation", "s1", &rec);
	int64_t v;
	char err[512];
	int rc = relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err, sizeof(err));
	if (rc)
		fail_msg("%s", err);
	char path[4096];
	snprintf(path, sizeof(path), "%s/trust/metadata/root.json", f->dir);
	size_t len;
	uint8_t *root = slurp(path, &len);
	json_t *j = json_loadb((const char *)root, len, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "signed"),
							    "version")), 3);
	json_decref(j);
	free(root);
	fx_free(f);
}

static void no_trusted_root_is_rejected(void **state)
{
	(void)state;
	struct fx *f = fx_new("basic_ed25519");
	char path[4096];
	snprintf(path, sizeof(path), "%s/trust", f->dir);
	tu_rmtree(path);
	struct record rec;
	publish(f, "basic_ed25519", "s1", &rec);
	int64_t v;
	char err[512];
	assert_int_not_equal(relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err,
					    sizeof(err)), 0);
	assert_non_null(strstr(err, "no trusted root"));
	fx_free(f);
}

static void malformed_announce_is_rejected(void **state)
{
	(void)state;
	struct fx *f = fx_new("basic_ed25519");
	struct record rec;
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.author, f->pk, 32);
	rec.seq = 1;
	rec.kind = RECORD_ANNOUNCE;
	rec.body_len = 3;
	memcpy(rec.body, "\x01\x00\x00", 3);
	int64_t v;
	char err[512];
	assert_int_not_equal(relmgr_process(f->m, &rec, NOW_S, true, local_fetch, f, &v, err,
					    sizeof(err)), 0);
	assert_non_null(strstr(err, "announce"));
	char path[4096];
	snprintf(path, sizeof(path), "%s/releases/1", f->dir);
	assert_int_not_equal(access(path, F_OK), 0);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_release_is_verified_and_installed),
		cmocka_unit_test(below_threshold_is_rejected_then_next_accepted),
		cmocka_unit_test(rollback_is_rejected),
		cmocka_unit_test(missing_blob_waits_then_is_rejected),
		cmocka_unit_test(retry_installs_from_metadata_verified_before),
		cmocka_unit_test(wrong_target_hash_is_rejected),
		cmocka_unit_test(root_rotation_is_followed),
		cmocka_unit_test(no_trusted_root_is_rejected),
		cmocka_unit_test(malformed_announce_is_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
