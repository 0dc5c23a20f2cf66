/* test_tuf.c — canonical JSON and the TUF client against repositories built
 * by tuf-js (tests/tufjs/gen.js -> tests/fixtures/tuf/): every attack class
 * of the spec, key types, delegations, and interop. Runs the real library
 * with the real libcurl fetcher over file:// URLs and a fixed update time. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "shoal/error.h"
#include "shoal/hex.h"
#include "shoal/limits.h"
#include "trust/cjson.h"
#include "trust/tuf.h"

static char fixtures[4096];

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

/* ---- canonical JSON ---- */

static void canon_of(const char *json, const char *want)
{
	json_t *v = NULL;
	assert_int_equal(cjson_parse((const uint8_t *)json, strlen(json), 1 << 20, &v), 0);
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(cjson_encode(v, 1 << 20, &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
	json_decref(v);
}

static void cjson_basics(void **state)
{
	(void)state;
	canon_of("{ \"b\" : 1, \"a\" : [ true, false, null ] }", "{\"a\":[true,false,null],\"b\":1}");
	canon_of("{\"k\":\"a\\\"b\\\\c\\n\\u0001\"}", "{\"k\":\"a\\\"b\\\\c\n\x01\"}");
	canon_of("[-0, 12, -9223372036854775808]", "[0,12,-9223372036854775808]");
	canon_of("{\"\\u00e9\":1,\"z\":2,\"Z\":3}", "{\"Z\":3,\"z\":2,\"\xc3\xa9\":1}");
}

static void cjson_rejects(void **state)
{
	(void)state;
	json_t *v = NULL;
	const char *dup = "{\"a\":1,\"a\":2}";
	assert_int_equal(cjson_parse((const uint8_t *)dup, strlen(dup), 100, &v), SHOAL_EPROTO);
	const char *flt = "{\"a\":1.5}";
	assert_int_equal(cjson_parse((const uint8_t *)flt, strlen(flt), 100, &v), 0);
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(cjson_encode(v, 100, &out, &len), SHOAL_EINVAL);
	assert_null(out);
	json_decref(v);
	const char *big = "[1,2,3,4,5,6]";
	assert_int_equal(cjson_parse((const uint8_t *)big, strlen(big), 5, &v), SHOAL_ETOOBIG);
	assert_int_equal(cjson_parse((const uint8_t *)big, strlen(big), 100, &v), 0);
	assert_int_equal(cjson_encode(v, 5, &out, &len), SHOAL_ETOOBIG);
	json_decref(v);
	char deep[200];
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	assert_int_equal(cjson_parse((const uint8_t *)deep, 80, 1000, &v), SHOAL_EPROTO);
	const char *nul = "[\"a\\u0000b\"]";
	assert_int_equal(cjson_parse((const uint8_t *)nul, strlen(nul), 100, &v), SHOAL_EPROTO);
}

/* tuf-js's canonicalize() output for inputs written by JSON.stringify. */
static void cjson_matches_tufjs(void **state)
{
	(void)state;
	int n = 0;
	for (int i = 0;; i++, n++) {
		char p[4200], q[4200];
		snprintf(p, sizeof(p), "%s/_cjson/%d.json", fixtures, i);
		snprintf(q, sizeof(q), "%s/_cjson/%d.canon", fixtures, i);
		size_t ilen = 0, clen = 0;
		uint8_t *in = slurp(p, &ilen);
		if (!in)
			break;
		uint8_t *want = slurp(q, &clen);
		assert_non_null(want);
		json_t *v = NULL;
		assert_int_equal(cjson_parse(in, ilen, 1 << 20, &v), 0);
		uint8_t *out = NULL;
		size_t len = 0;
		assert_int_equal(cjson_encode(v, 1 << 20, &out, &len), 0);
		assert_int_equal(len, clen);
		assert_memory_equal(out, want, len);
		free(out);
		free(in);
		free(want);
		json_decref(v);
	}
	assert_true(n >= 5);
}

static void path_patterns(void **state)
{
	(void)state;
	assert_true(tuf_path_match("files/*", "files/x.txt"));
	assert_false(tuf_path_match("files/*", "files/a/x.txt"));
	assert_false(tuf_path_match("*.txt", "sub/w.txt"));
	assert_true(tuf_path_match("*/*.txt", "sub/w.txt"));
	assert_true(tuf_path_match("f?le[0-9].*", "file7.tar"));
	assert_false(tuf_path_match("f?le[0-9].*", "file.tar"));
	assert_true(tuf_path_match("*", "anything"));
	assert_false(tuf_path_match("*", "a/b"));
	assert_false(tuf_path_match("a\\*", "a*x")); /* no escapes: '\' is literal */
	assert_true(tuf_path_match("a\\*", "a\\x"));
}

/* ---- scenarios ---- */

static int err_code(const char *name)
{
	static const struct { const char *n; int c; } map[] = {
		{"OK", 0}, {"EBADSIG", SHOAL_EBADSIG}, {"EREPLAY", SHOAL_EREPLAY},
		{"EEXPIRED", SHOAL_EEXPIRED}, {"ETOOBIG", SHOAL_ETOOBIG},
		{"EBADMAC", SHOAL_EBADMAC}, {"ENOTFOUND", SHOAL_ENOTFOUND},
		{"EPROTO", SHOAL_EPROTO},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].c;
	fail_msg("unknown expectation %s", name);
	return 1;
}

static int64_t iso_time(const char *s)
{
	struct tm tm = {0};
	assert_int_equal(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
				&tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

static void pct_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		unsigned v;
		if (*p == '%' && sscanf(p + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static const struct tuf_fetcher curl_fetcher = {tuf_fetch_curl, NULL};

/* Runs one step; returns the first error (0 if all passed). */
static int run_step(const char *scen, const char *meta_dir, const char *tgt_dir, char *line,
		    char *errbuf, size_t errsize)
{
	char *save = NULL;
	const char *st = strtok_r(line, " \n", &save);
	const char *when = strtok_r(NULL, " \n", &save);
	const char *cmd = strtok_r(NULL, " \n", &save);
	(void)strtok_r(NULL, " \n", &save); /* expectation: the caller's */
	char murl[4400], turl[4400];
	snprintf(murl, sizeof(murl), "file://%s/%s/%s/metadata", fixtures, scen, st);
	snprintf(turl, sizeof(turl), "file://%s/%s/%s/targets/", fixtures, scen, st);
	struct tuf_client *c = NULL;
	assert_int_equal(tuf_client_new(meta_dir, murl, &curl_fetcher, &c), 0);
	int rc = tuf_client_refresh(c, iso_time(when));
	if (rc == 0 && strcmp(cmd, "download") == 0) {
		char *name;
		while (rc == 0 && (name = strtok_r(NULL, " \n", &save))) {
			pct_decode(name);
			struct tuf_target t;
			bool fetched = false;
			rc = tuf_client_find_target(c, name, &t);
			if (rc == 0) {
				rc = tuf_client_download_target(c, &t, turl, tgt_dir, &fetched);
				tuf_target_clear(&t);
			}
		}
	}
	snprintf(errbuf, errsize, "%s", tuf_client_error(c));
	tuf_client_free(c);
	return rc;
}

/* Every downloaded file must equal the scenario's want/ copy. */
static void check_wanted(const char *scen, const char *tgt_dir)
{
	char wdir[4300];
	snprintf(wdir, sizeof(wdir), "%s/%s/want", fixtures, scen);
	DIR *d = opendir(wdir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char a[4600], b[4600];
		snprintf(a, sizeof(a), "%s/%s", wdir, e->d_name);
		snprintf(b, sizeof(b), "%s/%s", tgt_dir, e->d_name);
		size_t la = 0, lb = 0;
		uint8_t *wa = slurp(a, &la), *got = slurp(b, &lb);
		if (!got)
			fail_msg("%s: %s was not downloaded", scen, e->d_name);
		assert_int_equal(la, lb);
		assert_memory_equal(wa, got, la);
		free(wa);
		free(got);
	}
	closedir(d);
}

static void run_scenario(const char *scen)
{
	char path[4300];
	snprintf(path, sizeof(path), "%s/%s/root.json", fixtures, scen);
	size_t rlen = 0;
	uint8_t *root = slurp(path, &rlen);
	assert_non_null(root);
	char *tmp = tu_tmpdir();
	char meta[4200], tgt[4200], err[256];
	snprintf(meta, sizeof(meta), "%s/metadata", tmp);
	snprintf(tgt, sizeof(tgt), "%s/targets", tmp);
	assert_int_equal(mkdir(tgt, 0755), 0);
	assert_int_equal(tuf_init_root(meta, root, rlen, err, sizeof(err)), 0);
	free(root);
	snprintf(path, sizeof(path), "%s/%s/steps", fixtures, scen);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[2048], copy[2048];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '\n' || line[0] == '#')
			continue;
		snprintf(copy, sizeof(copy), "%s", line);
		char *save = NULL;
		strtok_r(copy, " \n", &save);
		strtok_r(NULL, " \n", &save);
		strtok_r(NULL, " \n", &save);
		int want = err_code(strtok_r(NULL, " \n", &save));
		char cerr[600];
		int got = run_step(scen, meta, tgt, line, cerr, sizeof(cerr));
		n++;
		if (got != want)
			fail_msg("%s step %d: want %s, got %s: %s", scen, n, shoal_strerror(want),
				 shoal_strerror(got), cerr);
	}
	fclose(f);
	assert_true(n > 0);
	check_wanted(scen, tgt);
	tu_rmtree(tmp);
	free(tmp);
}

#define SCEN(name) \
	static void scen_##name(void **state) \
	{ \
		(void)state; \
		run_scenario(#name); \
	}
SCEN(basic_ed25519)
SCEN(basic_ecdsa)
SCEN(basic_rsa)
SCEN(mixed_keys)
SCEN(key_encodings)
SCEN(fast_forward_added_key)
SCEN(bad_signature)
SCEN(wrong_key_targets)
SCEN(below_threshold)
SCEN(dup_signature)
SCEN(dup_keyid_in_role)
SCEN(dup_key_material)
SCEN(rollback_timestamp)
SCEN(rollback_snapshot)
SCEN(rollback_targets)
SCEN(rollback_root)
SCEN(rollback_delegated)
SCEN(root_rotation)
SCEN(root_rotation_unsigned_by_old)
SCEN(root_rotation_unsigned_by_new)
SCEN(fast_forward_recovery)
SCEN(expired_root)
SCEN(expired_timestamp)
SCEN(expired_snapshot)
SCEN(expired_targets)
SCEN(mix_and_match)
SCEN(mix_snapshot)
SCEN(endless_metadata)
SCEN(endless_target)
SCEN(wrong_target_hash)
SCEN(malicious_mirror)
SCEN(target_cached)
SCEN(delegations)

/* Every fixture scenario is listed above (a new one must be added). */
static void all_scenarios_listed(void **state)
{
	(void)state;
	DIR *d = opendir(fixtures);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && e->d_name[0] != '_')
			n++;
	closedir(d);
	assert_int_equal(n, 33);
}

/* A failed refresh writes nothing unverified: the bad timestamp is not
 * stored, and the trusted metadata on disk is still the good one. */
static void failure_writes_nothing(void **state)
{
	(void)state;
	char path[4300];
	snprintf(path, sizeof(path), "%s/bad_signature/root.json", fixtures);
	size_t rlen = 0;
	uint8_t *root = slurp(path, &rlen);
	char *tmp = tu_tmpdir();
	char err[256], url[4400], ts[4300];
	assert_int_equal(tuf_init_root(tmp, root, rlen, err, sizeof(err)), 0);
	free(root);
	snprintf(url, sizeof(url), "file://%s/bad_signature/s1/metadata/", fixtures);
	struct tuf_client *c = NULL;
	assert_int_equal(tuf_client_new(tmp, url, &curl_fetcher, &c), 0);
	assert_int_equal(tuf_client_refresh(c, iso_time("2027-01-01T00:00:00Z")), SHOAL_EBADSIG);
	assert_non_null(strstr(tuf_client_error(c), "timestamp"));
	struct tuf_target t;
	assert_int_equal(tuf_client_find_target(c, "file1.txt", &t), SHOAL_ESTATE);
	tuf_client_free(c);
	snprintf(ts, sizeof(ts), "%s/timestamp.json", tmp);
	assert_int_equal(access(ts, F_OK), -1);
	tu_rmtree(tmp);
	free(tmp);
}

/* init refuses a root that is not signed by a threshold of its own keys. */
static void init_rejects_unsigned_root(void **state)
{
	(void)state;
	char path[4300];
	snprintf(path, sizeof(path), "%s/basic_ed25519/root.json", fixtures);
	size_t rlen = 0;
	uint8_t *root = slurp(path, &rlen);
	json_t *doc = NULL;
	assert_int_equal(cjson_parse(root, rlen, 1 << 20, &doc), 0);
	json_array_clear(json_object_get(doc, "signatures"));
	char *bad = json_dumps(doc, 0);
	char *tmp = tu_tmpdir();
	char err[256];
	assert_int_equal(tuf_init_root(tmp, (const uint8_t *)bad, strlen(bad), err, sizeof(err)),
			 SHOAL_EBADSIG);
	/* and a changed signed field breaks the signature */
	json_decref(doc);
	assert_int_equal(cjson_parse(root, rlen, 1 << 20, &doc), 0);
	json_object_set_new(json_object_get(doc, "signed"), "x-added", json_string("y"));
	free(bad);
	bad = json_dumps(doc, 0);
	assert_int_equal(tuf_init_root(tmp, (const uint8_t *)bad, strlen(bad), err, sizeof(err)),
			 SHOAL_EBADSIG);
	/* the unchanged root passes, re-serialized with other whitespace */
	json_decref(doc);
	assert_int_equal(cjson_parse(root, rlen, 1 << 20, &doc), 0);
	free(bad);
	bad = json_dumps(doc, JSON_INDENT(3));
	assert_int_equal(tuf_init_root(tmp, (const uint8_t *)bad, strlen(bad), err, sizeof(err)), 0);
	free(bad);
	json_decref(doc);
	free(root);
	tu_rmtree(tmp);
	free(tmp);
}

/* The curl fetcher never returns more than max_len and says so. */
static void fetch_bound(void **state)
{
	(void)state;
	char url[4400];
	snprintf(url, sizeof(url), "file://%s/endless_target/s1/targets/", fixtures);
	DIR *d = opendir(url + 7);
	assert_non_null(d);
	struct dirent *e;
	char file[4800] = "";
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s%s", url, e->d_name);
			break;
		}
	closedir(d);
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(tuf_fetch_curl(NULL, file, 1000, &out, &len), SHOAL_ETOOBIG);
	assert_null(out);
	assert_int_equal(tuf_fetch_curl(NULL, file, 200000, &out, &len), 0);
	assert_true(len > 100000);
	free(out);
	snprintf(file, sizeof(file), "%s/no-such-file", url);
	assert_int_equal(tuf_fetch_curl(NULL, file, 1000, &out, &len), SHOAL_ENOTFOUND);
}

/* A root signed (as old and as new) by one ed25519 key, as version v. */
static void write_root(const char *dir, int v, const uint8_t *pk, const uint8_t *sk)
{
	char hex[65], keyid[65], path[4400];
	hex_encode(pk, 32, hex);
	memset(keyid, 'b', 64);
	keyid[64] = '\0';
	json_t *s = json_pack("{s:s,s:s,s:i,s:s,s:b,s:{s:{s:s,s:s,s:{s:s}}},s:{s:o,s:o,s:o,s:o}}",
			      "_type", "root", "spec_version", "1.0.31", "version", v, "expires",
			      "2100-01-01T00:00:00Z", "consistent_snapshot", 1, "keys", keyid,
			      "keytype", "ed25519", "scheme", "ed25519", "keyval", "public", hex,
			      "roles", "root", json_pack("{s:[s],s:i}", "keyids", keyid, "threshold", 1),
			      "timestamp", json_pack("{s:[s],s:i}", "keyids", keyid, "threshold", 1),
			      "snapshot", json_pack("{s:[s],s:i}", "keyids", keyid, "threshold", 1),
			      "targets", json_pack("{s:[s],s:i}", "keyids", keyid, "threshold", 1));
	assert_non_null(s);
	uint8_t *msg = NULL, sig[crypto_sign_BYTES];
	size_t mlen = 0;
	assert_int_equal(cjson_encode(s, 1 << 20, &msg, &mlen), 0);
	crypto_sign_detached(sig, NULL, msg, mlen, sk);
	free(msg);
	char sighex[2 * crypto_sign_BYTES + 1];
	hex_encode(sig, sizeof(sig), sighex);
	json_t *doc = json_pack("{s:o,s:[{s:s,s:s}]}", "signed", s, "signatures", "keyid", keyid,
				"sig", sighex);
	snprintf(path, sizeof(path), "%s/%d.root.json", dir, v);
	assert_int_equal(json_dump_file(doc, path, JSON_INDENT(1)), 0);
	json_decref(doc);
}

static int64_t root_version_on_disk(const char *meta)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/root.json", meta);
	size_t len = 0;
	uint8_t *buf = slurp(path, &len);
	assert_non_null(buf);
	struct tuf_md md;
	assert_int_equal(tuf_md_parse(buf, len, TUF_TYPE_ROOT, &md), 0);
	free(buf);
	int64_t v = md.version;
	tuf_md_clear(&md);
	return v;
}

/* One refresh follows at most SHOAL_TUF_ROOT_ROTATIONS_MAX new roots; the
 * next refresh goes on from there. */
static void root_chain_bounded(void **state)
{
	(void)state;
	enum { N = SHOAL_TUF_ROOT_ROTATIONS_MAX + 4 };
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	crypto_sign_keypair(pk, sk);
	char *tmp = tu_tmpdir();
	char repo[4200], meta[4200], url[4300], err[256], first[4300];
	snprintf(repo, sizeof(repo), "%s/repo", tmp);
	snprintf(meta, sizeof(meta), "%s/md", tmp);
	assert_int_equal(mkdir(repo, 0755), 0);
	for (int v = 1; v <= N; v++)
		write_root(repo, v, pk, sk);
	snprintf(first, sizeof(first), "%s/1.root.json", repo);
	size_t rlen = 0;
	uint8_t *root = slurp(first, &rlen);
	assert_int_equal(tuf_init_root(meta, root, rlen, err, sizeof(err)), 0);
	free(root);
	snprintf(url, sizeof(url), "file://%s", repo);
	struct tuf_client *c = NULL;
	assert_int_equal(tuf_client_new(meta, url, &curl_fetcher, &c), 0);
	/* no timestamp.json in this repository: the refresh ends there */
	assert_int_equal(tuf_client_refresh(c, iso_time("2027-01-01T00:00:00Z")), SHOAL_ENOTFOUND);
	assert_non_null(strstr(tuf_client_error(c), "timestamp"));
	assert_int_equal(root_version_on_disk(meta), 1 + SHOAL_TUF_ROOT_ROTATIONS_MAX);
	assert_int_equal(tuf_client_refresh(c, iso_time("2027-01-01T00:00:00Z")), SHOAL_ENOTFOUND);
	assert_int_equal(root_version_on_disk(meta), N);
	tuf_client_free(c);
	tu_rmtree(tmp);
	free(tmp);
}

int main(void)
{
	const char *src = getenv("SHOAL_SRC");
	snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/tuf", src ? src : ".");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cjson_basics),
		cmocka_unit_test(cjson_rejects),
		cmocka_unit_test(cjson_matches_tufjs),
		cmocka_unit_test(path_patterns),
		cmocka_unit_test(all_scenarios_listed),
		cmocka_unit_test(failure_writes_nothing),
		cmocka_unit_test(init_rejects_unsigned_root),
		cmocka_unit_test(fetch_bound),
		cmocka_unit_test(root_chain_bounded),
		cmocka_unit_test(scen_basic_ed25519),
		cmocka_unit_test(scen_basic_ecdsa),
		cmocka_unit_test(scen_basic_rsa),
		cmocka_unit_test(scen_mixed_keys),
		cmocka_unit_test(scen_key_encodings),
		cmocka_unit_test(scen_fast_forward_added_key),
		cmocka_unit_test(scen_bad_signature),
		cmocka_unit_test(scen_wrong_key_targets),
		cmocka_unit_test(scen_below_threshold),
		cmocka_unit_test(scen_dup_signature),
		cmocka_unit_test(scen_dup_keyid_in_role),
		cmocka_unit_test(scen_dup_key_material),
		cmocka_unit_test(scen_rollback_timestamp),
		cmocka_unit_test(scen_rollback_snapshot),
		cmocka_unit_test(scen_rollback_targets),
		cmocka_unit_test(scen_rollback_root),
		cmocka_unit_test(scen_rollback_delegated),
		cmocka_unit_test(scen_root_rotation),
		cmocka_unit_test(scen_root_rotation_unsigned_by_old),
		cmocka_unit_test(scen_root_rotation_unsigned_by_new),
		cmocka_unit_test(scen_fast_forward_recovery),
		cmocka_unit_test(scen_expired_root),
		cmocka_unit_test(scen_expired_timestamp),
		cmocka_unit_test(scen_expired_snapshot),
		cmocka_unit_test(scen_expired_targets),
		cmocka_unit_test(scen_mix_and_match),
		cmocka_unit_test(scen_mix_snapshot),
		cmocka_unit_test(scen_endless_metadata),
		cmocka_unit_test(scen_endless_target),
		cmocka_unit_test(scen_wrong_target_hash),
		cmocka_unit_test(scen_malicious_mirror),
		cmocka_unit_test(scen_target_cached),
		cmocka_unit_test(scen_delegations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
