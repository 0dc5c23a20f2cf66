/*
 * store.c — DATA/state.db: open with safe pragmas, migrate, and the node
 * and members tables.
 *
 * Opening order matters: busy_timeout first (so a concurrent opener waits),
 * then journal_mode=WAL, which is the first statement that reads the file
 * and so the one that refuses a foreign or corrupt file; then a quick_check
 * so page-level corruption stops the agent at start rather than mid-run.
 * Every write is one transaction committed with synchronous=FULL, so when a
 * function returns 0 the change survives power loss.
 */
#include "store/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store {
	sqlite3 *db;
	char path[SHOAL_PATH_BYTES_MAX];
	char err[STORE_ERR_BYTES];
};

/* Schema migrations: migrations[i] takes user_version i to i + 1. Append
 * only; never edit a released step. All pending steps run in one
 * transaction with the user_version update, so a crash leaves the old
 * version or the new one, nothing between. */
static const char *const migrations[] = {
	/* 0 -> 1: node identity counters and the membership snapshot. */
	"CREATE TABLE node ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  incarnation INTEGER NOT NULL"
	"    CHECK (incarnation BETWEEN 0 AND 4294967295),"
	"  started_count INTEGER NOT NULL DEFAULT 0,"
	"  last_start_ms INTEGER NOT NULL DEFAULT 0"
	");"
	"INSERT INTO node (id, incarnation) VALUES (1, 0);"
	"CREATE TABLE members ("
	"  id BLOB PRIMARY KEY"
	"    CHECK (typeof(id) = 'blob' AND length(id) = 32),"
	"  name TEXT NOT NULL,"
	"  tags TEXT NOT NULL,"
	"  addr TEXT NOT NULL,"
	"  state TEXT NOT NULL"
	"    CHECK (state IN ('alive', 'suspect', 'dead', 'left')),"
	"  incarnation INTEGER NOT NULL"
	"    CHECK (incarnation BETWEEN 0 AND 4294967295),"
	"  state_change_ms INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL"
	") WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Our own table: the membership core (member_state_name) may not be linked
 * into every binary that opens the store. Indexed by enum member_state. */
static const char *const state_names[] = {
	[MEMBER_ALIVE] = "alive",
	[MEMBER_SUSPECT] = "suspect",
	[MEMBER_DEAD] = "dead",
	[MEMBER_LEFT] = "left",
};
#define STATE_COUNT (sizeof(state_names) / sizeof(state_names[0]))

static void __attribute__((format(printf, 3, 4)))
errf(char *out, size_t out_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, out_size, fmt, ap);
	va_end(ap);
}

static const char *hint_for(int code)
{
	switch (code & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return " (the file is corrupt or not a shoal database; "
		       "move it aside to start with an empty state)";
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
		return " (check the data dir's owner and permissions)";
	default:
		return "";
	}
}

/* Writes "PATH: message" into s->err and returns rc. (vsnprintf: the
 * message is cut at the buffer, which is what we want for huge paths.) */
static int __attribute__((format(printf, 3, 4)))
fail(struct store *s, int rc, const char *fmt, ...)
{
	char msg[STORE_ERR_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errf(s->err, sizeof(s->err), "%s: %s", s->path, msg);
	assert(rc < 0);
	return rc;
}

/* Records "PATH: what: sqlite message" in s->err; returns SHOAL_EDB. */
static int db_fail(struct store *s, const char *what)
{
	assert(s->db);
	int code = sqlite3_extended_errcode(s->db);
	return fail(s, SHOAL_EDB, "%s: %s%s", what, sqlite3_errmsg(s->db),
		    hint_for(code));
}

static int exec(struct store *s, const char *sql, const char *what)
{
	assert(sql);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(s, what);
	return 0;
}

static void rollback(struct store *s)
{
	/* Best effort: if ROLLBACK itself fails SQLite has already rolled
	 * back (the only way a ROLLBACK fails with a transaction open). */
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs a pragma that returns one text row and checks its value. */
static int pragma_expect(struct store *s, const char *sql, const char *want)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, sql);
	int step = sqlite3_step(st);
	if (step != SQLITE_ROW) {
		rc = db_fail(s, sql);
	} else {
		const char *got = (const char *)sqlite3_column_text(st, 0);
		if (!got || strcmp(got, want) != 0) {
			/* quick_check reports one problem per line; keep the
			 * first ones, on one line, for the log. */
			char first[160];
			snprintf(first, sizeof(first), "%s", got ? got : "NULL");
			for (char *p = first; *p; p++)
				if (*p == '\n' || *p == '\r' || *p == '\t')
					*p = ' ';
			rc = fail(s, SHOAL_EDB, "%s: got '%s', want '%s'%s", sql, first,
				  want,
				  strcmp(want, "ok") == 0 ? hint_for(SQLITE_CORRUPT) : "");
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int get_int(struct store *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, sql);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		*out = sqlite3_column_int64(st, 0);
	else if (step == SQLITE_ROW || step == SQLITE_DONE)
		rc = fail(s, SHOAL_EDB, "%s: no integer row", sql);
	else
		rc = db_fail(s, sql);
	sqlite3_finalize(st);
	return rc;
}

static int migrate(struct store *s)
{
	int rc = exec(s, "BEGIN IMMEDIATE", "begin migration");
	if (rc)
		return rc;
	/* Read the version inside the write transaction so two openers of a
	 * new database cannot both run step 0. */
	int64_t v = 0;
	rc = get_int(s, "PRAGMA user_version", &v);
	if (rc)
		goto out;
	if (v < 0 || v > SCHEMA_VERSION) {
		rc = fail(s, SHOAL_EVERSION,
			  "schema version %lld is newer than this shoal (%d); "
			  "upgrade shoal", (long long)v, SCHEMA_VERSION);
		goto out;
	}
	for (int64_t i = v; i < SCHEMA_VERSION; i++) {
		char what[64];
		snprintf(what, sizeof(what), "migration %lld", (long long)i);
		rc = exec(s, migrations[i], what);
		if (rc)
			goto out;
	}
	if (v < SCHEMA_VERSION) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
		rc = exec(s, sql, "set user_version");
		if (rc)
			goto out;
	}
	rc = exec(s, "COMMIT", "commit migration");
out:
	if (rc)
		rollback(s);
	return rc;
}

/* Creates the data dir (one level) and the database file with tight modes
 * before SQLite sees them: SQLite would create the file 0644, and its -wal
 * and -shm files copy the database file's mode. */
static int prepare_files(struct store *s, const char *data_dir)
{
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		errf(s->err, sizeof(s->err), "mkdir(%s): %s", data_dir,
		     strerror(errno));
		return SHOAL_EDB;
	}
	int fd = open(s->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		errf(s->err, sizeof(s->err), "open(%s): %s", s->path,
		     strerror(errno));
		return SHOAL_EDB;
	}
	close(fd);
	return 0;
}

static int open_db(struct store *s, const char *data_dir)
{
	int rc = prepare_files(s, data_dir);
	if (rc)
		return rc;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW |
		    SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
		if (!s->db) {
			return fail(s, SHOAL_ENOMEM, "open: out of memory");
		}
		return db_fail(s, "open");
	}
	/* A database file is input too: no schema-defined functions or
	 * triggers run with our privileges, no writes to the schema. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_extended_result_codes(s->db, 1);
	if (sqlite3_busy_timeout(s->db, SHOAL_DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return db_fail(s, "busy_timeout");
	rc = pragma_expect(s, "PRAGMA journal_mode = WAL", "wal");
	if (rc)
		return rc;
	rc = exec(s, "PRAGMA synchronous = FULL", "PRAGMA synchronous");
	if (rc)
		return rc;
	rc = exec(s, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys");
	if (rc)
		return rc;
	rc = pragma_expect(s, "PRAGMA quick_check", "ok");
	if (rc)
		return rc;
	return migrate(s);
}

int store_open(const char *data_dir, struct store **out, char *err, size_t errlen)
{
	assert(data_dir && out);
	assert(err && errlen > 0);
	*out = NULL;
	err[0] = '\0';
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		errf(err, errlen, "store_open(%s): out of memory", data_dir);
		return SHOAL_ENOMEM;
	}
	int n = snprintf(s->path, sizeof(s->path), "%s/%s", data_dir, STORE_DB_FILE);
	if (data_dir[0] == '\0' || n < 0 || (size_t)n >= sizeof(s->path)) {
		errf(err, errlen, "data dir '%.100s': empty or path too long",
		     data_dir);
		free(s);
		return SHOAL_EINVAL;
	}
	int rc = open_db(s, data_dir);
	if (rc) {
		errf(err, errlen, "%s", s->err);
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	/* sqlite3_close_v2 defers until statements are finalized; every
	 * function here finalizes its own, so this closes now. */
	if (s->db)
		sqlite3_close_v2(s->db);
	free(s);
}

int store_config_lean(void)
{
	/* pMem NULL, N 0: no bulk allocation (SQLITE_DEFAULT_PCACHE_INITSZ,
	 * 20 in Debian's build). Each connection's cache still grows to its
	 * cache_size as pages are used, so queries are not slower. */
	if (sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)NULL, 0, 0) != SQLITE_OK)
		return SHOAL_ESTATE; /* SQLITE_MISUSE: already initialised */
	/* Past this much heap in all, SQLite recycles cached pages rather than
	 * allocating more: the agent's databases are small and in the kernel's
	 * page cache anyway, and its connections would otherwise each keep every
	 * page they ever read (quick_check at open reads them all). */
	sqlite3_soft_heap_limit64(SHOAL_DB_HEAP_SOFT_BYTES);
	return 0;
}

const char *store_path(const struct store *s)
{
	assert(s);
	return s->path;
}

const char *store_errmsg(const struct store *s)
{
	assert(s);
	return s->err;
}

static int read_incarnation(struct store *s, uint32_t *inc)
{
	int64_t v = 0;
	int rc = get_int(s, "SELECT incarnation FROM node WHERE id = 1", &v);
	if (rc)
		return rc;
	if (v < 0 || v > (int64_t)UINT32_MAX)
		return fail(s, SHOAL_EDB, "node.incarnation out of range");
	*inc = (uint32_t)v;
	return 0;
}

int store_get_incarnation(struct store *s, uint32_t *inc)
{
	assert(s && s->db);
	assert(inc);
	return read_incarnation(s, inc);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int store_bump_incarnation(struct store *s, uint32_t *new_inc)
{
	assert(s && s->db);
	assert(new_inc);
	sqlite3_stmt *st = NULL;
	uint32_t inc = 0;
	int rc = exec(s, "BEGIN IMMEDIATE", "begin");
	if (rc)
		return rc;
	rc = read_incarnation(s, &inc);
	if (rc)
		goto out;
	if (inc == UINT32_MAX) {
		/* Wrapping to 0 would make every peer ignore our refutations. */
		rc = fail(s, SHOAL_ETOOBIG,
			  "incarnation is at its maximum and cannot grow");
		goto out;
	}
	const char *sql = "UPDATE node SET incarnation = ?1,"
			  " started_count = started_count + 1,"
			  " last_start_ms = ?2 WHERE id = 1";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, "prepare bump");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (int64_t)inc + 1);
	sqlite3_bind_int64(st, 2, (int64_t)wall_ms());
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
		rc = db_fail(s, "update node");
		goto out;
	}
	rc = exec(s, "COMMIT", "commit");
out:
	sqlite3_finalize(st);
	if (rc) {
		rollback(s);
		return rc;
	}
	*new_inc = inc + 1;
	assert(*new_inc > 0);
	return 0;
}

/* --- members ------------------------------------------------------------- */

static bool valid_str(const char *p, size_t max)
{
	size_t n = strnlen(p, max + 1);
	return n <= max;
}

/* Checks one member against the limits; returns NULL or what is wrong. */
static const char *member_invalid(const struct store_member *m)
{
	if (!valid_str(m->name, SHOAL_NAME_BYTES_MAX))
		return "name too long";
	if (m->tags_count > SHOAL_TAGS_COUNT_MAX)
		return "too many tags";
	for (size_t t = 0; t < m->tags_count; t++) {
		if (!valid_str(m->tags[t], SHOAL_TAG_BYTES_MAX))
			return "tag too long";
		/* Stored joined by ','; an empty tag could not be told apart. */
		if (m->tags[t][0] == '\0' || strchr(m->tags[t], ','))
			return "tag empty or containing ','";
	}
	if ((unsigned)m->state >= STATE_COUNT)
		return "unknown state";
	if (m->addr.family != SHOAL_AF_NONE && m->addr.family != SHOAL_AF_INET &&
	    m->addr.family != SHOAL_AF_INET6)
		return "unknown address family";
	if (m->addr.family != SHOAL_AF_NONE && m->addr.port == 0)
		return "address port 0";
	if (m->state_change_ms > (uint64_t)INT64_MAX)
		return "state_change_ms out of range";
	return NULL;
}

static void join_tags(const struct store_member *m, char *out, size_t out_size)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t t = 0; t < m->tags_count; t++) {
		int n = snprintf(out + len, out_size - len, "%s%s", t ? "," : "",
				 m->tags[t]);
		assert(n >= 0 && (size_t)n < out_size - len);
		len += (size_t)n;
	}
}

/* Room for every tag, its separator and the NUL. */
#define TAGS_TEXT_BYTES (SHOAL_TAGS_COUNT_MAX * (SHOAL_TAG_BYTES_MAX + 1) + 1)

static int insert_member(struct store *s, sqlite3_stmt *st,
			 const struct store_member *m, uint64_t now_ms)
{
	char tags[TAGS_TEXT_BYTES];
	char addr[SHOAL_ADDR_STR_MAX];
	join_tags(m, tags, sizeof(tags));
	if (m->addr.family == SHOAL_AF_NONE)
		addr[0] = '\0';
	else
		addr_format(&m->addr, addr);
	sqlite3_reset(st);
	sqlite3_bind_blob(st, 1, m->id, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, tags, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, addr, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, state_names[m->state], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)m->incarnation);
	sqlite3_bind_int64(st, 7, (int64_t)m->state_change_ms);
	sqlite3_bind_int64(st, 8, (int64_t)now_ms);
	if (sqlite3_step(st) != SQLITE_DONE) {
		int code = sqlite3_extended_errcode(s->db);
		int rc = db_fail(s, "insert member");
		/* Two members with one id: the caller's mistake, not the db's. */
		return code == SQLITE_CONSTRAINT_PRIMARYKEY ? SHOAL_EINVAL : rc;
	}
	return 0;
}

int store_save_members(struct store *s, const struct store_member *m, size_t n,
		       uint64_t now_ms)
{
	assert(s && s->db);
	assert(m || n == 0);
	if (n > SHOAL_MEMBERS_MAX)
		return fail(s, SHOAL_ETOOBIG, "save members: %zu is more than %u",
			    n, (unsigned)SHOAL_MEMBERS_MAX);
	if (now_ms > (uint64_t)INT64_MAX)
		return fail(s, SHOAL_EINVAL, "save members: now_ms out of range");
	for (size_t i = 0; i < n; i++) {
		const char *why = member_invalid(&m[i]);
		if (why) {
			return fail(s, SHOAL_EINVAL, "save members: member %zu: %s", i, why);
		}
	}
	sqlite3_stmt *st = NULL;
	int rc = exec(s, "BEGIN IMMEDIATE", "begin");
	if (rc)
		return rc;
	rc = exec(s, "DELETE FROM members", "delete members");
	if (rc)
		goto out;
	const char *sql = "INSERT INTO members (id, name, tags, addr, state,"
			  " incarnation, state_change_ms, updated_ms)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(s, "prepare insert member");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = insert_member(s, st, &m[i], now_ms);
		if (rc)
			goto out;
	}
	rc = exec(s, "COMMIT", "commit");
out:
	sqlite3_finalize(st);
	if (rc)
		rollback(s);
	return rc;
}

/* Copies a TEXT column of at most max bytes with no NUL inside. */
static bool col_text(sqlite3_stmt *st, int col, char *out, size_t max)
{
	if (sqlite3_column_type(st, col) != SQLITE_TEXT)
		return false;
	const char *p = (const char *)sqlite3_column_text(st, col);
	int n = sqlite3_column_bytes(st, col);
	if (!p || n < 0 || (size_t)n > max || strlen(p) != (size_t)n)
		return false;
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return true;
}

static bool parse_tags(const char *text, struct store_member *m)
{
	m->tags_count = 0;
	if (text[0] == '\0')
		return true;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len > SHOAL_TAG_BYTES_MAX ||
		    m->tags_count >= SHOAL_TAGS_COUNT_MAX)
			return false;
		memcpy(m->tags[m->tags_count], p, len);
		m->tags[m->tags_count][len] = '\0';
		m->tags_count++;
		if (!comma)
			return true;
		p = comma + 1;
	}
}

/* Decodes one row; returns NULL or what is wrong with it. */
static const char *read_member(sqlite3_stmt *st, struct store_member *m)
{
	memset(m, 0, sizeof(*m));
	if (sqlite3_column_type(st, 0) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, 0) != SHOAL_NODE_ID_BYTES)
		return "id is not 32 bytes";
	memcpy(m->id, sqlite3_column_blob(st, 0), SHOAL_NODE_ID_BYTES);
	if (!col_text(st, 1, m->name, SHOAL_NAME_BYTES_MAX))
		return "bad name";
	char tags[TAGS_TEXT_BYTES];
	if (!col_text(st, 2, tags, sizeof(tags) - 1) || !parse_tags(tags, m))
		return "bad tags";
	char addr[SHOAL_ADDR_STR_MAX];
	if (!col_text(st, 3, addr, sizeof(addr) - 1))
		return "bad addr";
	if (addr[0] == '\0')
		m->addr.family = SHOAL_AF_NONE;
	else if (addr_parse(addr, &m->addr) != 0)
		return "bad addr";
	char state[16];
	if (!col_text(st, 4, state, sizeof(state) - 1))
		return "bad state";
	size_t k = 0;
	while (k < STATE_COUNT && strcmp(state, state_names[k]) != 0)
		k++;
	if (k == STATE_COUNT)
		return "bad state";
	m->state = (enum member_state)k;
	if (sqlite3_column_type(st, 5) != SQLITE_INTEGER)
		return "bad incarnation";
	int64_t inc = sqlite3_column_int64(st, 5);
	if (inc < 0 || inc > (int64_t)UINT32_MAX)
		return "bad incarnation";
	m->incarnation = (uint32_t)inc;
	if (sqlite3_column_type(st, 6) != SQLITE_INTEGER ||
	    sqlite3_column_int64(st, 6) < 0)
		return "bad state_change_ms";
	m->state_change_ms = (uint64_t)sqlite3_column_int64(st, 6);
	return NULL;
}

int store_load_members(struct store *s, struct store_member **out, size_t *n)
{
	assert(s && s->db);
	assert(out && n);
	*out = NULL;
	*n = 0;
	const char *sql = "SELECT id, name, tags, addr, state, incarnation,"
			  " state_change_ms FROM members ORDER BY name, id"
			  " LIMIT ?1";
	sqlite3_stmt *st = NULL;
	struct store_member *arr = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(s, "prepare load members");
	/* One past the bound so an oversized table is an error, not a
	 * silent truncation. */
	sqlite3_bind_int64(st, 1, (int64_t)SHOAL_MEMBERS_MAX + 1);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == SHOAL_MEMBERS_MAX) {
			rc = fail(s, SHOAL_EDB, "members: more than %u rows",
				  (unsigned)SHOAL_MEMBERS_MAX);
			goto out;
		}
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			if (ncap > SHOAL_MEMBERS_MAX)
				ncap = SHOAL_MEMBERS_MAX;
			struct store_member *na = realloc(arr, ncap * sizeof(*arr));
			if (!na) {
				rc = fail(s, SHOAL_ENOMEM, "load members: out of memory");
				goto out;
			}
			arr = na;
			cap = ncap;
		}
		const char *why = read_member(st, &arr[count]);
		if (why) {
			rc = fail(s, SHOAL_EDB, "members row %zu: %s%s", count + 1, why,
				  hint_for(SQLITE_CORRUPT));
			goto out;
		}
		count++;
	}
	if (step != SQLITE_DONE)
		rc = db_fail(s, "load members");
out:
	sqlite3_finalize(st);
	if (rc) {
		free(arr);
		return rc;
	}
	assert(count <= SHOAL_MEMBERS_MAX);
	*out = arr;
	*n = count;
	return 0;
}

void store_member_from_info(const struct member_info *info,
			    struct store_member *out)
{
	assert(info && info->ident);
	assert(out);
	memset(out, 0, sizeof(*out));
	const struct member_identity *id = info->ident;
	memcpy(out->id, id->id, sizeof(out->id));
	memcpy(out->name, id->name, sizeof(out->name));
	out->tags_count = id->tags_count;
	memcpy(out->tags, id->tags, sizeof(out->tags));
	out->addr = id->addr;
	out->state = info->state;
	out->incarnation = info->incarnation;
	out->state_change_ms = info->state_change_ms;
}
