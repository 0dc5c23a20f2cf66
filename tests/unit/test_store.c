/* test_store.c — state.db on real SQLite files: incarnation survives restarts,
 * the members snapshot round-trips, and a damaged file is refused with a
 * message instead of crashing or being half-read. */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shoal/addr.h"
#include "shoal/error.h"
#include "store/store.h"

static char *db_path(const char *dir)
{
	static char p[1024];
	snprintf(p, sizeof(p), "%s/state.db", dir);
	return p;
}

static struct store *open_ok(const char *dir)
{
	struct store *s = NULL;
	char err[STORE_ERR_BYTES];
	int rc = store_open(dir, &s, err, sizeof(err));
	if (rc)
		fail_msg("store_open: %s", err);
	assert_non_null(s);
	return s;
}

/* Reads one integer with a separate, plain SQLite connection. */
static int64_t raw_int(const char *dir, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(db_path(dir), &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *dir, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(db_path(dir), &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

static void incarnation_persists_and_bumps(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir);
	uint32_t inc = 99;
	assert_int_equal(store_get_incarnation(s, &inc), 0);
	assert_int_equal(inc, 0);
	assert_int_equal(store_bump_incarnation(s, &inc), 0);
	assert_int_equal(inc, 1);
	store_close(s);

	/* A restart sees the bumped value and bumps past it. */
	s = open_ok(dir);
	assert_int_equal(store_get_incarnation(s, &inc), 0);
	assert_int_equal(inc, 1);
	assert_int_equal(store_bump_incarnation(s, &inc), 0);
	assert_int_equal(inc, 2);
	store_close(s);

	assert_int_equal(raw_int(dir, "SELECT started_count FROM node"), 2);
	assert_true(raw_int(dir, "SELECT last_start_ms FROM node") > 1600000000000LL);
	assert_int_equal(raw_int(dir, "PRAGMA user_version"), 1);

	struct stat st;
	assert_int_equal(stat(db_path(dir), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	tu_rmtree(dir);
	free(dir);
}

static void open_sets_wal_and_creates_dir(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char sub[256];
	snprintf(sub, sizeof(sub), "%s/data", dir);
	struct store *s = open_ok(sub);
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	store_close(s);
	/* journal_mode=WAL is persistent in the file. */
	sqlite3 *db;
	sqlite3_stmt *q;
	assert_int_equal(sqlite3_open(db_path(sub), &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	sqlite3_close(db);
	tu_rmtree(dir);
	free(dir);
}

static void incarnation_refuses_to_wrap(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	store_close(open_ok(dir));
	raw_exec(dir, "UPDATE node SET incarnation = 4294967295");
	struct store *s = open_ok(dir);
	uint32_t inc = 0;
	assert_int_equal(store_bump_incarnation(s, &inc), SHOAL_ETOOBIG);
	assert_non_null(strstr(store_errmsg(s), "maximum"));
	assert_int_equal(store_get_incarnation(s, &inc), 0);
	assert_int_equal(inc, UINT32_MAX);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

static void fill_member(struct store_member *m, int i)
{
	memset(m, 0, sizeof(*m));
	for (size_t b = 0; b < sizeof(m->id); b++)
		m->id[b] = (uint8_t)(i * 7 + (int)b);
	m->id[0] = (uint8_t)(i >> 8); /* distinct for i < 65536 */
	m->id[1] = (uint8_t)i;
	snprintf(m->name, sizeof(m->name), "node-%03d", i);
	m->tags_count = (uint8_t)(i % (SHOAL_TAGS_COUNT_MAX + 1));
	for (int t = 0; t < m->tags_count; t++)
		snprintf(m->tags[t], sizeof(m->tags[t]), "tag%d-%d", i, t);
	char a[64];
	if (i % 3 == 0)
		snprintf(a, sizeof(a), "10.0.%d.%d:%d", i / 256, i % 256, 7946 + i);
	else if (i % 3 == 1)
		snprintf(a, sizeof(a), "[fd00::%x]:%d", i, 7946);
	if (i % 3 != 2)
		assert_int_equal(addr_parse(a, &m->addr), 0);
	m->state = (enum member_state)(i % 4);
	m->incarnation = (uint32_t)i * 1000u + 4000000000u / (uint32_t)(i + 1);
	m->state_change_ms = 1700000000000ULL + (uint64_t)i;
}

static void assert_member_equal(const struct store_member *a,
				const struct store_member *b)
{
	assert_memory_equal(a->id, b->id, sizeof(a->id));
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->tags_count, b->tags_count);
	for (int t = 0; t < a->tags_count; t++)
		assert_string_equal(a->tags[t], b->tags[t]);
	assert_int_equal(a->addr.family, b->addr.family);
	if (a->addr.family != SHOAL_AF_NONE)
		assert_true(addr_equal(&a->addr, &b->addr));
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->incarnation, b->incarnation);
	assert_int_equal(a->state_change_ms, b->state_change_ms);
}

static void members_round_trip(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	enum { N = 40 };
	struct store_member m[N];
	/* Filled in reverse name order: load must return them sorted. */
	for (int i = 0; i < N; i++)
		fill_member(&m[i], N - 1 - i);
	struct store *s = open_ok(dir);
	assert_int_equal(store_save_members(s, m, N, 1234), 0);
	store_close(s);

	s = open_ok(dir);
	struct store_member *got = NULL;
	size_t n = 0;
	assert_int_equal(store_load_members(s, &got, &n), 0);
	assert_int_equal(n, N);
	for (int i = 0; i < N; i++)
		assert_member_equal(&got[i], &m[N - 1 - i]);
	free(got);

	/* A new snapshot replaces the old one entirely. */
	assert_int_equal(store_save_members(s, &m[5], 2, 5678), 0);
	assert_int_equal(store_load_members(s, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_member_equal(&got[0], &m[6]); /* node-033 < node-034 */
	assert_member_equal(&got[1], &m[5]);
	free(got);

	assert_int_equal(store_save_members(s, NULL, 0, 9), 0);
	assert_int_equal(store_load_members(s, &got, &n), 0);
	assert_int_equal(n, 0);
	assert_null(got);
	store_close(s);
	assert_int_equal(raw_int(dir, "SELECT count(*) FROM members"), 0);
	tu_rmtree(dir);
	free(dir);
}

static void bad_snapshot_keeps_previous(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir);
	struct store_member m[3];
	for (int i = 0; i < 3; i++)
		fill_member(&m[i], i + 1);
	assert_int_equal(store_save_members(s, m, 2, 1), 0);

	/* A tag with the separator in it is rejected before any write. */
	struct store_member bad[2] = {m[0], m[2]};
	bad[1].tags_count = 1;
	strcpy(bad[1].tags[0], "a,b");
	assert_int_equal(store_save_members(s, bad, 2, 2), SHOAL_EINVAL);
	assert_non_null(strstr(store_errmsg(s), "member 1"));

	/* Duplicate ids fail inside the transaction: it is rolled back. */
	struct store_member dup[3] = {m[2], m[0], m[0]};
	assert_int_equal(store_save_members(s, dup, 3, 3), SHOAL_EINVAL);

	struct store_member *got = NULL;
	size_t n = 0;
	assert_int_equal(store_load_members(s, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_member_equal(&got[0], &m[0]);
	assert_member_equal(&got[1], &m[1]);
	free(got);

	assert_int_equal(store_save_members(s, m, SHOAL_MEMBERS_MAX + 1, 4),
			 SHOAL_ETOOBIG);
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

static void tampered_row_is_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir);
	struct store_member m[2];
	fill_member(&m[0], 1);
	fill_member(&m[1], 2);
	assert_int_equal(store_save_members(s, m, 2, 1), 0);
	store_close(s);
	/* Rows that the CHECK constraints allow but our limits do not. */
	raw_exec(dir, "UPDATE members SET name = 'this-name-is-far-longer-than-32-bytes'"
		      " WHERE name = 'node-002'");
	s = open_ok(dir);
	struct store_member *got = (struct store_member *)1;
	size_t n = 7;
	assert_int_equal(store_load_members(s, &got, &n), SHOAL_EDB);
	assert_null(got);
	assert_int_equal(n, 0);
	assert_non_null(strstr(store_errmsg(s), "bad name"));
	assert_non_null(strstr(store_errmsg(s), db_path(dir)));
	store_close(s);

	raw_exec(dir, "UPDATE members SET name = 'ok', addr = 'nowhere:0'");
	s = open_ok(dir);
	assert_int_equal(store_load_members(s, &got, &n), SHOAL_EDB);
	assert_non_null(strstr(store_errmsg(s), "bad addr"));
	store_close(s);
	tu_rmtree(dir);
	free(dir);
}

static void garbage_file_is_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	uint8_t junk[8192];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(rand() & 0xff);
	tu_write_file(db_path(dir), junk, sizeof(junk), 0600);
	struct store *s = (struct store *)1;
	char err[STORE_ERR_BYTES];
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), SHOAL_EDB);
	assert_null(s);
	assert_non_null(strstr(err, db_path(dir)));
	assert_non_null(strstr(err, "not a database"));
	assert_non_null(strstr(err, "move it aside"));
	tu_rmtree(dir);
	free(dir);
}

/* Damage one page in the middle of a valid database: the header still
 * reads fine, so only the integrity check at open can catch it. */
static void corrupt_page_is_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store *s = open_ok(dir);
	enum { N = 400 };
	struct store_member *m = calloc(N, sizeof(*m));
	assert_non_null(m);
	for (int i = 0; i < N; i++)
		fill_member(&m[i], i);
	assert_int_equal(store_save_members(s, m, N, 1), 0);
	free(m);
	store_close(s); /* last connection: checkpoints and removes the WAL */

	FILE *f = fopen(db_path(dir), "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size >= 4 * 4096);
	uint8_t junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(rand() & 0xff);
	assert_int_equal(fseek(f, 2 * 4096, SEEK_SET), 0); /* page 3 */
	assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);

	char err[STORE_ERR_BYTES];
	s = (struct store *)1;
	int rc = store_open(dir, &s, err, sizeof(err));
	assert_non_null(strstr(err, "quick_check"));
	assert_int_equal(rc, SHOAL_EDB);
	assert_null(s);
	assert_non_null(strstr(err, db_path(dir)));
	tu_rmtree(dir);
	free(dir);
}

static void newer_schema_is_refused(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	store_close(open_ok(dir));
	raw_exec(dir, "PRAGMA user_version = 99");
	struct store *s = NULL;
	char err[STORE_ERR_BYTES];
	assert_int_equal(store_open(dir, &s, err, sizeof(err)), SHOAL_EVERSION);
	assert_null(s);
	assert_non_null(strstr(err, "schema version 99"));
	tu_rmtree(dir);
	free(dir);
}

static void unusable_dir_names_path(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	char file[256];
	snprintf(file, sizeof(file), "%s/plainfile", dir);
	tu_write_file(file, "x", 1, 0600);
	struct store *s = NULL;
	char err[STORE_ERR_BYTES];
	/* The data dir is a regular file: open(DATA/state.db) fails. */
	assert_int_equal(store_open(file, &s, err, sizeof(err)), SHOAL_EDB);
	assert_null(s);
	assert_non_null(strstr(err, file));
	assert_non_null(strstr(err, "Not a directory"));
	tu_rmtree(dir);
	free(dir);
}

/* In a child process, SQLite shut down first as if fresh: optionally
 * store_config_lean, open a store, bump the incarnation, and report SQLite's
 * heap use and the return codes of the two store_config_lean calls. */
struct lean_probe {
	int64_t mem;
	int first_rc, second_rc;
};

static struct lean_probe probe_child(const char *dir, bool lean)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct lean_probe p = {-1, 1, 1};
		close(fds[0]);
		/* Earlier tests initialised SQLite in this process: start from
		 * a clean slate, as the agent does (no connection is open). */
		if (sqlite3_shutdown() != SQLITE_OK)
			_exit(2);
		if (lean)
			p.first_rc = store_config_lean();
		struct store *s = NULL;
		char err[STORE_ERR_BYTES];
		uint32_t inc;
		if (store_open(dir, &s, err, sizeof(err)) == 0 &&
		    store_bump_incarnation(s, &inc) == 0)
			p.mem = sqlite3_memory_used();
		p.second_rc = store_config_lean();
		store_close(s);
		ssize_t n = write(fds[1], &p, sizeof(p));
		_exit(n == (ssize_t)sizeof(p) ? 0 : 1);
	}
	close(fds[1]);
	struct lean_probe p;
	assert_int_equal(read(fds[0], &p, sizeof(p)), (ssize_t)sizeof(p));
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return p;
}

/* The agent calls store_config_lean before its first SQLite call: the
 * connection then holds no 20-page block (~87 KiB) it never fills, and a
 * late call says it changed nothing. */
static void lean_config_saves_page_cache_block(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct lean_probe plain = probe_child(dir, false);
	struct lean_probe lean = probe_child(dir, true);
	assert_true(plain.mem > 0 && lean.mem > 0);
	assert_int_equal(lean.first_rc, 0);
	assert_int_equal(lean.second_rc, SHOAL_ESTATE);
	assert_int_equal(plain.second_rc, SHOAL_ESTATE);
	/* 20 pages of 4 KiB plus headers; the store's few pages are less. */
	print_message("sqlite heap after open: default %lld, lean %lld bytes\n",
		      (long long)plain.mem, (long long)lean.mem);
	assert_true(lean.mem + 60 * 1024 < plain.mem);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	srand(12345);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(incarnation_persists_and_bumps),
		cmocka_unit_test(open_sets_wal_and_creates_dir),
		cmocka_unit_test(incarnation_refuses_to_wrap),
		cmocka_unit_test(members_round_trip),
		cmocka_unit_test(bad_snapshot_keeps_previous),
		cmocka_unit_test(tampered_row_is_refused),
		cmocka_unit_test(garbage_file_is_refused),
		cmocka_unit_test(corrupt_page_is_refused),
		cmocka_unit_test(newer_schema_is_refused),
		cmocka_unit_test(unusable_dir_names_path),
		cmocka_unit_test(lean_config_saves_page_cache_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
