/*
 * feed.c — the feed store in DATA/state.db (see feed.h): signed,
 * hash-linked feeds per author, evidence of equivocation, retention.
 *
 * The invariants feed.h promises are kept at insertion time, inside one
 * write transaction per record: the (author, seq) slot is checked, then the
 * links to the held neighbours seq-1 and seq+1, then the bounds, then the
 * row goes in with its author's summary row (feed_authors) and the total
 * counter (feed_meta). So two held adjacent records are linked by
 * construction, in whatever order they arrived, and feed_heads() reads one
 * row per author instead of scanning records.
 *
 * Signatures are checked before the lock is taken (the costly part, and it
 * needs no state), so sync threads verify in parallel and only the short
 * SQLite transaction is serialized.
 *
 * The database file is input too: every column read back is checked
 * against the record bounds, and feed_verify() re-derives everything
 * (signature, hash, links, summaries) from the raw rows.
 */
#include "store/feed.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shoal/hex.h"
#include "shoal/log.h"

#define FEED_DB_FILE "state.db" /* the file store.c opens too */
#define FEED_SCHEMA_KEY "schema"
#define FEED_RECORDS_KEY "records"
#define HEX_ID_BYTES (2 * SHOAL_NODE_ID_BYTES + 1)

enum sync_mode { SYNC_UNSET, SYNC_NORMAL, SYNC_FULL };

struct feed {
	pthread_mutex_t mu;
	sqlite3 *db;
	bool readonly;
	enum sync_mode sync;
	struct feed_limits lim;
	struct feed_stats counters; /* only the "since opened" fields are used */
	char path[SHOAL_PATH_BYTES_MAX];
};

/* Per thread, so one thread's failure never overwrites the message another
 * thread is about to print. */
static _Thread_local char last_err[FEED_ERR_BYTES];

/* Feed schema migrations: migrations[i] takes the feed schema from version
 * i to i + 1. Append only. They run with feed_meta's version update in one
 * transaction, so a crash leaves the old version or the new one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE feed_records ("
	"  author BLOB NOT NULL CHECK (typeof(author) = 'blob' AND length(author) = 32),"
	"  seq INTEGER NOT NULL CHECK (typeof(seq) = 'integer' AND seq >= 1),"
	"  hash BLOB NOT NULL CHECK (typeof(hash) = 'blob' AND length(hash) = 32),"
	"  prev BLOB NOT NULL CHECK (typeof(prev) = 'blob' AND length(prev) = 32),"
	"  kind INTEGER NOT NULL CHECK (typeof(kind) = 'integer'),"
	"  time_ms INTEGER NOT NULL CHECK (typeof(time_ms) = 'integer'),"
	"  body BLOB NOT NULL CHECK (typeof(body) = 'blob'),"
	"  sig BLOB NOT NULL CHECK (typeof(sig) = 'blob' AND length(sig) = 64),"
	"  received_ms INTEGER NOT NULL CHECK (typeof(received_ms) = 'integer'),"
	"  PRIMARY KEY (author, seq)"
	") WITHOUT ROWID;"
	"CREATE INDEX feed_records_received ON feed_records (received_ms);"
	"CREATE TABLE feed_authors ("
	"  author BLOB PRIMARY KEY CHECK (typeof(author) = 'blob' AND length(author) = 32),"
	"  seq_min INTEGER NOT NULL,"
	"  seq_max INTEGER NOT NULL,"
	"  count INTEGER NOT NULL,"
	"  head_hash BLOB NOT NULL CHECK (typeof(head_hash) = 'blob' AND length(head_hash) = 32),"
	"  pruned_through INTEGER NOT NULL DEFAULT 0,"
	"  equivocating INTEGER NOT NULL DEFAULT 0 CHECK (equivocating IN (0, 1))"
	") WITHOUT ROWID;"
	"CREATE TABLE feed_evidence ("
	"  id INTEGER PRIMARY KEY,"
	"  kind INTEGER NOT NULL CHECK (kind IN (1, 2)),"
	"  author BLOB NOT NULL CHECK (typeof(author) = 'blob' AND length(author) = 32),"
	"  seq INTEGER NOT NULL,"
	"  held BLOB NOT NULL,"
	"  offending BLOB NOT NULL,"
	"  offending_hash BLOB NOT NULL UNIQUE,"
	"  received_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX feed_evidence_author ON feed_evidence (author, id);"
	"INSERT INTO feed_meta (key, value) VALUES ('" FEED_RECORDS_KEY "', 0);",
};
#define SCHEMA_VERSION ((int64_t)(sizeof(migrations) / sizeof(migrations[0])))

/* Columns of a record row, in the order row_entry() reads them. */
#define RECORD_COLS "author, seq, hash, prev, kind, time_ms, body, sig, received_ms"

/* --- errors ---------------------------------------------------------------- */

const char *feed_errmsg(void)
{
	return last_err;
}

static void __attribute__((format(printf, 3, 4)))
errf(char *out, size_t out_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, out_size, fmt, ap);
	va_end(ap);
}

/* Sets "PATH: message" as this thread's error and returns rc. */
static int __attribute__((format(printf, 3, 4)))
fail(const struct feed *f, int rc, const char *fmt, ...)
{
	char msg[FEED_ERR_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errf(last_err, sizeof(last_err), "%s: %s", f->path, msg);
	assert(rc < 0);
	return rc;
}

static const char *hint_for(int code)
{
	switch (code & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return " (the file is corrupt or not a shoal database)";
	case SQLITE_READONLY:
	case SQLITE_CANTOPEN:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return " (check the data dir's owner and permissions)";
	case SQLITE_BUSY:
		return " (another process holds the database locked)";
	default:
		return "";
	}
}

static int db_fail(const struct feed *f, const char *what)
{
	assert(f->db);
	int code = sqlite3_extended_errcode(f->db);
	return fail(f, SHOAL_EDB, "%s: %s%s", what, sqlite3_errmsg(f->db), hint_for(code));
}

static void hex_id(const uint8_t id[SHOAL_NODE_ID_BYTES], char out[HEX_ID_BYTES])
{
	hex_encode(id, SHOAL_NODE_ID_BYTES, out);
}

/* --- small SQLite helpers ------------------------------------------------- */

static int exec(struct feed *f, const char *sql, const char *what)
{
	assert(sql && what);
	if (sqlite3_exec(f->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(f, what);
	return 0;
}

static void rollback(struct feed *f)
{
	/* Best effort: a failing ROLLBACK means SQLite already rolled back. */
	if (!sqlite3_get_autocommit(f->db))
		sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
}

static int prepare(struct feed *f, const char *sql, sqlite3_stmt **st)
{
	assert(sql && st);
	*st = NULL;
	if (sqlite3_prepare_v2(f->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_fail(f, sql);
	return 0;
}

/* Switches the connection's synchronous mode outside a transaction (the
 * pragma is a no-op inside one). */
static int set_sync(struct feed *f, enum sync_mode m)
{
	assert(sqlite3_get_autocommit(f->db));
	if (f->sync == m)
		return 0;
	int rc = exec(f, m == SYNC_FULL ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
		      "PRAGMA synchronous");
	if (rc == 0)
		f->sync = m;
	return rc;
}

static void bind_id(sqlite3_stmt *st, int i, const uint8_t *id)
{
	sqlite3_bind_blob(st, i, id, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
}

static bool col_blob(sqlite3_stmt *st, int col, void *out, size_t n)
{
	if (sqlite3_column_type(st, col) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, col) != (int)n)
		return false;
	memcpy(out, sqlite3_column_blob(st, col), n);
	return true;
}

static bool col_u64(sqlite3_stmt *st, int col, uint64_t *out)
{
	if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
		return false;
	int64_t v = sqlite3_column_int64(st, col);
	if (v < 0)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* Reads a record row (RECORD_COLS from col0). Returns NULL or what is wrong
 * with the row. Checks only that each value fits struct record; whether
 * the record is valid is feed_verify's job. */
static const char *row_entry(sqlite3_stmt *st, int col0, struct feed_entry *e)
{
	struct record *r = &e->rec;
	memset(r, 0, offsetof(struct record, body));
	if (!col_blob(st, col0 + 0, r->author, sizeof(r->author)))
		return "author is not 32 bytes";
	if (!col_u64(st, col0 + 1, &r->seq) || r->seq == 0)
		return "seq is not a positive integer";
	if (!col_blob(st, col0 + 2, e->hash, sizeof(e->hash)))
		return "hash is not 32 bytes";
	if (!col_blob(st, col0 + 3, r->prev, sizeof(r->prev)))
		return "prev is not 32 bytes";
	uint64_t kind = 0;
	if (!col_u64(st, col0 + 4, &kind) || kind > UINT8_MAX)
		return "kind out of range";
	r->kind = (uint8_t)kind;
	if (sqlite3_column_type(st, col0 + 5) != SQLITE_INTEGER)
		return "time_ms is not an integer";
	/* Stored as the two's-complement bit pattern of the u64 (feed_put). */
	r->time_ms = (uint64_t)sqlite3_column_int64(st, col0 + 5);
	int blen = sqlite3_column_bytes(st, col0 + 6);
	if (sqlite3_column_type(st, col0 + 6) != SQLITE_BLOB || blen < 0 ||
	    blen > SHOAL_RECORD_BODY_MAX)
		return "body is not a blob within the record body bound";
	r->body_len = (uint32_t)blen;
	if (blen > 0)
		memcpy(r->body, sqlite3_column_blob(st, col0 + 6), (size_t)blen);
	if (!col_blob(st, col0 + 7, r->sig, sizeof(r->sig)))
		return "sig is not 64 bytes";
	if (!col_u64(st, col0 + 8, &e->received_ms))
		return "received_ms is not a non-negative integer";
	return NULL;
}

static int row_fail(struct feed *f, sqlite3_stmt *st, int col_author, int col_seq,
		    const char *why)
{
	char hex[HEX_ID_BYTES] = "?";
	if (sqlite3_column_type(st, col_author) == SQLITE_BLOB &&
	    sqlite3_column_bytes(st, col_author) == SHOAL_NODE_ID_BYTES)
		hex_id(sqlite3_column_blob(st, col_author), hex);
	return fail(f, SHOAL_EDB, "feed_records row author %s seq %lld: %s (run 'shoal log verify')",
		    hex, (long long)sqlite3_column_int64(st, col_seq), why);
}

/* The record's structure as record_decode() demands it; NULL if fine. */
static const char *record_invalid(const struct record *r)
{
	if (r->kind == 0 || r->kind > RECORD_KIND_MAX_)
		return "unknown kind";
	if (r->seq == 0)
		return "seq 0";
	if (r->body_len > SHOAL_RECORD_BODY_MAX)
		return "body over its bound";
	if (r->seq == 1 && !sodium_is_zero(r->prev, sizeof(r->prev)))
		return "seq 1 with a nonzero prev";
	return NULL;
}

/* Everything but the signature is the same: two signatures over one
 * statement are not a contradiction (and with Ed25519 as libsodium checks
 * it, only the author could make a second one). */
static bool same_content(const struct record *a, const struct record *b)
{
	return memcmp(a->author, b->author, sizeof(a->author)) == 0 && a->seq == b->seq &&
	       memcmp(a->prev, b->prev, sizeof(a->prev)) == 0 && a->kind == b->kind &&
	       a->time_ms == b->time_ms && a->body_len == b->body_len &&
	       memcmp(a->body, b->body, a->body_len) == 0;
}

/* --- opening ---------------------------------------------------------------- */

void feed_limits_default(struct feed_limits *l)
{
	assert(l);
	l->records_max = SHOAL_FEED_RECORDS_MAX;
	l->records_per_author_max = SHOAL_FEED_RECORDS_PER_AUTHOR_MAX;
	l->evidence_max = SHOAL_FEED_EVIDENCE_MAX;
	l->evidence_per_author_max = SHOAL_FEED_EVIDENCE_PER_AUTHOR_MAX;
	l->authors_max = SHOAL_FEED_AUTHORS_MAX;
	assert(l->records_per_author_max <= l->records_max);
}

int feed_set_limits(struct feed *f, const struct feed_limits *l)
{
	assert(f && l);
	if (l->records_max == 0 || l->records_max > SHOAL_FEED_RECORDS_MAX ||
	    l->records_per_author_max == 0 ||
	    l->records_per_author_max > SHOAL_FEED_RECORDS_PER_AUTHOR_MAX ||
	    l->evidence_max == 0 || l->evidence_max > SHOAL_FEED_EVIDENCE_MAX ||
	    l->evidence_per_author_max == 0 ||
	    l->evidence_per_author_max > SHOAL_FEED_EVIDENCE_PER_AUTHOR_MAX ||
	    l->authors_max == 0 || l->authors_max > SHOAL_FEED_AUTHORS_MAX)
		return fail(f, SHOAL_EINVAL, "feed limits: each must be 1..its limits.h bound");
	pthread_mutex_lock(&f->mu);
	f->lim = *l;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static struct feed *feed_new(const char *data_dir, char *err, size_t errlen, int *rc)
{
	struct feed *f = calloc(1, sizeof(*f));
	if (!f) {
		errf(err, errlen, "feed_open(%s): out of memory", data_dir);
		*rc = SHOAL_ENOMEM;
		return NULL;
	}
	int n = snprintf(f->path, sizeof(f->path), "%s/%s", data_dir, FEED_DB_FILE);
	if (data_dir[0] == '\0' || n < 0 || (size_t)n >= sizeof(f->path)) {
		errf(err, errlen, "data dir '%.100s': empty or path too long", data_dir);
		free(f);
		*rc = SHOAL_EINVAL;
		return NULL;
	}
	if (pthread_mutex_init(&f->mu, NULL) != 0) {
		errf(err, errlen, "feed_open(%s): cannot create a mutex", data_dir);
		free(f);
		*rc = SHOAL_ENOMEM;
		return NULL;
	}
	feed_limits_default(&f->lim);
	return f;
}

/* Common connection settings: the database file is input, so no
 * schema-defined code runs with our privileges. */
static int configure(struct feed *f)
{
	sqlite3_db_config(f->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(f->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_extended_result_codes(f->db, 1);
	if (sqlite3_busy_timeout(f->db, SHOAL_DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		return db_fail(f, "busy_timeout");
	return 0;
}

/* Reads feed_meta[key]; SHOAL_ENOTFOUND if the row is absent. */
static int meta_get(struct feed *f, const char *key, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "SELECT value FROM feed_meta WHERE key = ?1", &st);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		*out = sqlite3_column_int64(st, 0);
	else if (step == SQLITE_ROW)
		rc = fail(f, SHOAL_EDB, "feed_meta %s is not an integer", key);
	else if (step == SQLITE_DONE)
		rc = SHOAL_ENOTFOUND;
	else
		rc = db_fail(f, "read feed_meta");
	sqlite3_finalize(st);
	return rc;
}

static int meta_add(struct feed *f, const char *key, int64_t delta)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "UPDATE feed_meta SET value = value + ?2 WHERE key = ?1", &st);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, delta);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(f, "update feed_meta");
	else if (sqlite3_changes(f->db) != 1)
		rc = fail(f, SHOAL_EDB, "feed_meta has no '%s' row", key);
	sqlite3_finalize(st);
	return rc;
}

static int migrate(struct feed *f)
{
	int rc = exec(f, "BEGIN IMMEDIATE", "begin feed migration");
	if (rc)
		return rc;
	/* Inside the write transaction, so two openers of a new file cannot
	 * both run a step. */
	rc = exec(f,
		  "CREATE TABLE IF NOT EXISTS feed_meta ("
		  "  key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
		  "create feed_meta");
	if (rc)
		goto out;
	int64_t v = 0;
	rc = meta_get(f, FEED_SCHEMA_KEY, &v);
	if (rc == SHOAL_ENOTFOUND) {
		rc = exec(f, "INSERT INTO feed_meta (key, value) VALUES ('" FEED_SCHEMA_KEY "', 0)",
			  "init feed_meta");
		v = 0;
	}
	if (rc)
		goto out;
	if (v < 0 || v > SCHEMA_VERSION) {
		rc = fail(f, SHOAL_EVERSION,
			  "feed schema version %lld is newer than this shoal (%lld); upgrade shoal",
			  (long long)v, (long long)SCHEMA_VERSION);
		goto out;
	}
	for (int64_t i = v; i < SCHEMA_VERSION; i++) {
		char what[64];
		snprintf(what, sizeof(what), "feed migration %lld", (long long)i);
		rc = exec(f, migrations[i], what);
		if (rc)
			goto out;
	}
	if (v < SCHEMA_VERSION) {
		rc = meta_add(f, FEED_SCHEMA_KEY, SCHEMA_VERSION - v);
		if (rc)
			goto out;
	}
	rc = exec(f, "COMMIT", "commit feed migration");
out:
	if (rc)
		rollback(f);
	return rc;
}

/* Creates DATA (one level, 0700) and the file (0600) before SQLite does:
 * SQLite would make it 0644, and its -wal and -shm copy the file's mode. */
static int prepare_files(struct feed *f, const char *data_dir)
{
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
		return fail(f, SHOAL_EDB, "mkdir(%s): %s", data_dir, strerror(errno));
	int fd = open(f->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(f, SHOAL_EDB, "open: %s", strerror(errno));
	close(fd);
	return 0;
}

static int open_rw(struct feed *f, const char *data_dir)
{
	int rc = prepare_files(f, data_dir);
	if (rc)
		return rc;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(f->path, &f->db, flags, NULL) != SQLITE_OK)
		return f->db ? db_fail(f, "open") : fail(f, SHOAL_ENOMEM, "open: out of memory");
	rc = configure(f);
	if (rc)
		return rc;
	/* The first statement that reads the file: a foreign or corrupt
	 * file is refused here. (No quick_check: store_open runs one on the
	 * same file at agent start.) */
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "PRAGMA journal_mode = WAL", &st);
	if (rc)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(f, "PRAGMA journal_mode = WAL");
	} else {
		const char *mode = (const char *)sqlite3_column_text(st, 0);
		if (!mode || strcmp(mode, "wal") != 0)
			rc = fail(f, SHOAL_EDB, "cannot switch to WAL (journal mode '%s')",
				  mode ? mode : "?");
	}
	sqlite3_finalize(st);
	if (rc)
		return rc;
	rc = set_sync(f, SYNC_NORMAL);
	if (rc)
		return rc;
	return migrate(f);
}

int feed_open(const char *data_dir, struct feed **out, char *err, size_t errlen)
{
	assert(data_dir && out);
	assert(err && errlen > 0);
	*out = NULL;
	err[0] = '\0';
	int rc = 0;
	struct feed *f = feed_new(data_dir, err, errlen, &rc);
	if (!f)
		return rc;
	rc = open_rw(f, data_dir);
	if (rc) {
		errf(err, errlen, "%s", last_err);
		feed_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

static int open_ro(struct feed *f)
{
	struct stat sb;
	if (stat(f->path, &sb) != 0)
		return fail(f, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EDB, "%s%s",
			    strerror(errno),
			    errno == ENOENT ? " (is --data the node's data dir?)" : "");
	int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX;
	if (sqlite3_open_v2(f->path, &f->db, flags, NULL) != SQLITE_OK)
		return f->db ? db_fail(f, "open") : fail(f, SHOAL_ENOMEM, "open: out of memory");
	int rc = configure(f);
	if (rc)
		return rc;
	rc = exec(f, "PRAGMA query_only = 1", "PRAGMA query_only");
	if (rc)
		return rc;
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'feed_meta'",
		     &st);
	if (rc)
		return rc;
	int step = sqlite3_step(st);
	int64_t tables = step == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (step != SQLITE_ROW)
		return db_fail(f, "read schema");
	if (tables == 0)
		return fail(f, SHOAL_ENOTFOUND, "no feeds stored yet");
	int64_t v = 0;
	rc = meta_get(f, FEED_SCHEMA_KEY, &v);
	if (rc == SHOAL_ENOTFOUND || (rc == 0 && v == 0))
		return fail(f, SHOAL_ENOTFOUND, "no feeds stored yet");
	if (rc)
		return rc;
	if (v != SCHEMA_VERSION)
		return fail(f, SHOAL_EVERSION,
			    "feed schema version %lld, this shoal reads %lld; use the matching shoal",
			    (long long)v, (long long)SCHEMA_VERSION);
	return 0;
}

int feed_open_readonly(const char *data_dir, struct feed **out, char *err, size_t errlen)
{
	assert(data_dir && out);
	assert(err && errlen > 0);
	*out = NULL;
	err[0] = '\0';
	int rc = 0;
	struct feed *f = feed_new(data_dir, err, errlen, &rc);
	if (!f)
		return rc;
	f->readonly = true;
	rc = open_ro(f);
	if (rc) {
		errf(err, errlen, "%s", last_err);
		feed_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

void feed_close(struct feed *f)
{
	if (!f)
		return;
	/* Every function finalizes its statements, so this closes now. */
	if (f->db)
		sqlite3_close_v2(f->db);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

const char *feed_path(const struct feed *f)
{
	assert(f);
	return f->path;
}

const char *feed_put_result_name(enum feed_put_result r)
{
	switch (r) {
	case FEED_NEW: return "new";
	case FEED_NEW_GAP: return "new_gap";
	case FEED_DUP: return "dup";
	case FEED_EQUIVOCATION: return "equivocation";
	case FEED_BROKEN_LINK: return "broken_link";
	case FEED_STALE: return "stale";
	}
	return "unknown";
}

const char *feed_evidence_kind_name(int kind)
{
	switch (kind) {
	case FEED_EVIDENCE_EQUIVOCATION: return "equivocation";
	case FEED_EVIDENCE_BROKEN_LINK: return "broken_link";
	default: return "unknown";
	}
}

/* --- reading single rows (callers hold the lock) ------------------------- */

/* Reads (author, seq) into *e: 0, SHOAL_ENOTFOUND, or SHOAL_EDB. */
static int get_entry(struct feed *f, const uint8_t *author, uint64_t seq, struct feed_entry *e)
{
	assert(author && e);
	if (seq == 0 || seq > FEED_SEQ_MAX)
		return SHOAL_ENOTFOUND;
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "SELECT " RECORD_COLS " FROM feed_records WHERE author = ?1 AND seq = ?2",
			 &st);
	if (rc)
		return rc;
	bind_id(st, 1, author);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *why = row_entry(st, 0, e);
		if (why)
			rc = row_fail(f, st, 0, 1, why);
	} else if (step == SQLITE_DONE) {
		rc = SHOAL_ENOTFOUND;
	} else {
		rc = db_fail(f, "read record");
	}
	sqlite3_finalize(st);
	return rc;
}

/* An author's summary row. */
struct author_row {
	bool present;
	uint64_t seq_min, seq_max, count, pruned_through;
	uint8_t head_hash[RECORD_HASH_BYTES];
	bool equivocating;
};

#define AUTHOR_COLS "author, seq_min, seq_max, count, head_hash, pruned_through, equivocating"

static const char *row_head(sqlite3_stmt *st, struct feed_head *h)
{
	memset(h, 0, sizeof(*h));
	uint64_t eq = 0;
	if (!col_blob(st, 0, h->author, sizeof(h->author)))
		return "author is not 32 bytes";
	if (!col_u64(st, 1, &h->seq_min) || !col_u64(st, 2, &h->seq_max) ||
	    !col_u64(st, 3, &h->count) || !col_u64(st, 5, &h->pruned_through) ||
	    !col_u64(st, 6, &eq))
		return "a count is not a non-negative integer";
	if (!col_blob(st, 4, h->hash, sizeof(h->hash)))
		return "head_hash is not 32 bytes";
	if (h->seq_min == 0 || h->seq_min > h->seq_max || h->count == 0 ||
	    h->count > h->seq_max - h->seq_min + 1 || eq > 1)
		return "summary out of range";
	h->equivocating = eq == 1;
	return NULL;
}

static int get_author(struct feed *f, const uint8_t *author, struct author_row *a)
{
	memset(a, 0, sizeof(*a));
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "SELECT " AUTHOR_COLS " FROM feed_authors WHERE author = ?1", &st);
	if (rc)
		return rc;
	bind_id(st, 1, author);
	int step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		struct feed_head h;
		const char *why = row_head(st, &h);
		if (why) {
			char hex[HEX_ID_BYTES];
			hex_id(author, hex);
			rc = fail(f, SHOAL_EDB, "feed_authors row %s: %s (run 'shoal log verify')",
				  hex, why);
		} else {
			a->present = true;
			a->seq_min = h.seq_min;
			a->seq_max = h.seq_max;
			a->count = h.count;
			a->pruned_through = h.pruned_through;
			memcpy(a->head_hash, h.hash, sizeof(a->head_hash));
			a->equivocating = h.equivocating;
		}
	} else if (step != SQLITE_DONE) {
		rc = db_fail(f, "read feed_authors");
	}
	sqlite3_finalize(st);
	return rc;
}

/* --- writing (callers hold the lock and an open write transaction) -------- */

static int count_rows(struct feed *f, const char *sql, const uint8_t *author, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, sql, &st);
	if (rc)
		return rc;
	if (author)
		bind_id(st, 1, author);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = db_fail(f, sql);
	sqlite3_finalize(st);
	return rc;
}

/* Keeps two records that cannot both belong to an honest feed, and marks
 * the author. Within the evidence bounds; beyond them only the mark and a
 * counter. The same offending record is kept once. */
static int add_evidence(struct feed *f, enum feed_evidence_kind kind, const struct record *held,
			const struct record *offending, const uint8_t off_hash[RECORD_HASH_BYTES],
			uint64_t now_ms)
{
	assert(memcmp(held->author, offending->author, SHOAL_NODE_ID_BYTES) == 0);
	const uint8_t *author = offending->author;
	int64_t total = 0, mine = 0;
	bool news = false;
	int rc = count_rows(f, "SELECT count(*) FROM feed_evidence", NULL, &total);
	if (rc == 0)
		rc = count_rows(f, "SELECT count(*) FROM feed_evidence WHERE author = ?1", author,
				&mine);
	if (rc)
		return rc;
	if ((uint64_t)total >= f->lim.evidence_max ||
	    (uint64_t)mine >= f->lim.evidence_per_author_max) {
		f->counters.evidence_dropped++;
	} else {
		uint8_t a[SHOAL_RECORD_BYTES_MAX], b[SHOAL_RECORD_BYTES_MAX];
		struct wr wa = wr_init(a, sizeof(a)), wb = wr_init(b, sizeof(b));
		record_encode(&wa, held);
		record_encode(&wb, offending);
		assert(wr_ok(&wa) && wr_ok(&wb));
		sqlite3_stmt *st = NULL;
		rc = prepare(f,
			     "INSERT OR IGNORE INTO feed_evidence (kind, author, seq, held,"
			     " offending, offending_hash, received_ms)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			     &st);
		if (rc)
			return rc;
		sqlite3_bind_int(st, 1, (int)kind);
		bind_id(st, 2, author);
		sqlite3_bind_int64(st, 3, (int64_t)offending->seq);
		sqlite3_bind_blob(st, 4, a, (int)wa.len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, b, (int)wb.len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 6, off_hash, RECORD_HASH_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, (int64_t)now_ms);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_fail(f, "insert evidence");
		else
			news = sqlite3_changes(f->db) == 1;
		sqlite3_finalize(st);
		if (rc)
			return rc;
	}
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "UPDATE feed_authors SET equivocating = 1 WHERE author = ?1 AND equivocating = 0",
		     &st);
	if (rc)
		return rc;
	bind_id(st, 1, author);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(f, "mark author");
	else if (sqlite3_changes(f->db) == 1)
		news = true;
	sqlite3_finalize(st);
	/* Once per new piece of evidence, not per repeat delivery (gossip
	 * repeats a record several times). */
	if (rc == 0 && news) {
		char hex[HEX_ID_BYTES];
		hex_id(author, hex);
		log_warn("feed_evidence", "kind=%s author=%s seq=%llu held_seq=%llu",
			 feed_evidence_kind_name((int)kind), hex,
			 (unsigned long long)offending->seq, (unsigned long long)held->seq);
	}
	return rc;
}

/* Inserts a checked record and updates its author's summary and the
 * total. a is the author's summary before (present or not). */
static int insert_record(struct feed *f, const struct record *r,
			 const uint8_t hash[RECORD_HASH_BYTES], uint64_t now_ms,
			 const struct author_row *a)
{
	if (a->present && a->count >= f->lim.records_per_author_max)
		return fail(f, SHOAL_EFULL,
			    "feed of this author holds %llu records, its bound (wait for retention)",
			    (unsigned long long)a->count);
	int64_t total = 0;
	int rc = meta_get(f, FEED_RECORDS_KEY, &total);
	if (rc)
		return rc;
	if (total < 0 || (uint64_t)total >= f->lim.records_max)
		return fail(f, SHOAL_EFULL, "the store holds %lld records, its bound (wait for retention)",
			    (long long)total);
	if (!a->present) {
		/* O(authors), only when a new author appears. */
		int64_t authors = 0;
		rc = count_rows(f, "SELECT count(*) FROM feed_authors", NULL, &authors);
		if (rc)
			return rc;
		if ((uint64_t)authors >= f->lim.authors_max)
			return fail(f, SHOAL_EFULL, "the store holds feeds of %lld authors, its bound",
				    (long long)authors);
	}
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "INSERT INTO feed_records (" RECORD_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
		     &st);
	if (rc)
		return rc;
	bind_id(st, 1, r->author);
	sqlite3_bind_int64(st, 2, (int64_t)r->seq);
	sqlite3_bind_blob(st, 3, hash, RECORD_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, r->prev, RECORD_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, r->kind);
	sqlite3_bind_int64(st, 6, (int64_t)r->time_ms); /* bit pattern of the u64 */
	/* A zero-length blob, not NULL: r->body is never a null pointer. */
	sqlite3_bind_blob(st, 7, r->body, (int)r->body_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, r->sig, SHOAL_RECORD_SIG_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (int64_t)now_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(f, "insert record");
	sqlite3_finalize(st);
	if (rc)
		return rc;
	if (a->present) {
		bool head = r->seq > a->seq_max;
		rc = prepare(f,
			     "UPDATE feed_authors SET count = count + 1,"
			     " seq_min = min(seq_min, ?2), seq_max = max(seq_max, ?2),"
			     " head_hash = CASE WHEN ?3 THEN ?4 ELSE head_hash END"
			     " WHERE author = ?1",
			     &st);
		if (rc)
			return rc;
		sqlite3_bind_int(st, 3, head);
	} else {
		rc = prepare(f,
			     "INSERT INTO feed_authors (author, seq_min, seq_max, count, head_hash)"
			     " VALUES (?1, ?2, ?2, 1, ?4)",
			     &st);
		if (rc)
			return rc;
	}
	bind_id(st, 1, r->author);
	sqlite3_bind_int64(st, 2, (int64_t)r->seq);
	sqlite3_bind_blob(st, 4, hash, RECORD_HASH_BYTES, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(f->db) != 1)
		rc = db_fail(f, "update feed_authors");
	sqlite3_finalize(st);
	if (rc)
		return rc;
	return meta_add(f, FEED_RECORDS_KEY, 1);
}

/* The checks and the insert of feed_put, inside one write transaction. */
static int put_txn(struct feed *f, const struct record *r, const uint8_t hash[RECORD_HASH_BYTES],
		   uint64_t now_ms, enum feed_put_result *res)
{
	struct feed_entry held;
	struct author_row a;
	int rc = get_author(f, r->author, &a);
	if (rc)
		return rc;

	/* The (author, seq) slot: the first record seen keeps it. */
	rc = get_entry(f, r->author, r->seq, &held);
	if (rc == 0) {
		if (memcmp(held.hash, hash, RECORD_HASH_BYTES) == 0 || same_content(&held.rec, r)) {
			*res = FEED_DUP;
			return 0;
		}
		*res = FEED_EQUIVOCATION;
		return add_evidence(f, FEED_EVIDENCE_EQUIVOCATION, &held.rec, r, hash, now_ms);
	}
	if (rc != SHOAL_ENOTFOUND)
		return rc;

	if (a.present && r->seq <= a.pruned_through) {
		*res = FEED_STALE;
		return 0;
	}

	/* Links: with the held seq-1 (its hash is our prev) and the held
	 * seq+1 (its prev is our hash). */
	bool have_prev = false;
	if (r->seq > 1) {
		rc = get_entry(f, r->author, r->seq - 1, &held);
		if (rc == 0) {
			have_prev = true;
			if (memcmp(held.hash, r->prev, RECORD_HASH_BYTES) != 0) {
				*res = FEED_BROKEN_LINK;
				rc = add_evidence(f, FEED_EVIDENCE_BROKEN_LINK, &held.rec, r, hash,
						  now_ms);
				return rc ? rc : fail(f, SHOAL_EPROTO,
						      "broken link: seq %llu's prev is not the hash of "
						      "the held seq %llu",
						      (unsigned long long)r->seq,
						      (unsigned long long)r->seq - 1);
			}
		} else if (rc != SHOAL_ENOTFOUND) {
			return rc;
		}
	}
	rc = get_entry(f, r->author, r->seq + 1, &held);
	if (rc == 0) {
		if (memcmp(held.rec.prev, hash, RECORD_HASH_BYTES) != 0) {
			*res = FEED_BROKEN_LINK;
			rc = add_evidence(f, FEED_EVIDENCE_BROKEN_LINK, &held.rec, r, hash, now_ms);
			return rc ? rc : fail(f, SHOAL_EPROTO,
					      "broken link: the held seq %llu's prev is not the hash "
					      "of seq %llu",
					      (unsigned long long)r->seq + 1,
					      (unsigned long long)r->seq);
		}
	} else if (rc != SHOAL_ENOTFOUND) {
		return rc;
	}

	rc = insert_record(f, r, hash, now_ms, &a);
	if (rc)
		return rc;
	bool linked = r->seq == 1 || have_prev || (a.present && r->seq - 1 <= a.pruned_through);
	*res = linked ? FEED_NEW : FEED_NEW_GAP;
	return 0;
}

static void count_put(struct feed *f, int rc, enum feed_put_result res)
{
	struct feed_stats *c = &f->counters;
	if (rc == SHOAL_EFULL) {
		c->put_full++;
		return;
	}
	if (rc == SHOAL_EPROTO && res == FEED_BROKEN_LINK) {
		c->put_broken_link++;
		return;
	}
	if (rc)
		return;
	switch (res) {
	case FEED_NEW: c->put_new++; break;
	case FEED_NEW_GAP: c->put_gap++; break;
	case FEED_DUP: c->put_dup++; break;
	case FEED_EQUIVOCATION: c->put_equivocation++; break;
	case FEED_BROKEN_LINK: c->put_broken_link++; break;
	case FEED_STALE: c->put_stale++; break;
	}
}

int feed_put(struct feed *f, const struct record *r, uint64_t now_ms, enum feed_put_result *res)
{
	assert(f && r);
	assert(res);
	*res = (enum feed_put_result)0;
	if (f->readonly)
		return fail(f, SHOAL_ESTATE, "feed_put: opened read-only");
	if (now_ms > (uint64_t)INT64_MAX)
		return fail(f, SHOAL_EINVAL, "feed_put: now_ms out of range");

	/* Stateless checks first, without the lock. */
	int rc = 0;
	const char *why = record_invalid(r);
	if (why)
		rc = fail(f, SHOAL_EPROTO, "record refused: %s", why);
	else if (r->seq > FEED_SEQ_MAX)
		rc = fail(f, SHOAL_ETOOBIG, "record refused: seq %llu above the store's bound",
			  (unsigned long long)r->seq);
	else if (record_verify(r) != 0)
		rc = fail(f, SHOAL_EBADSIG, "record refused: signature does not verify");
	if (rc) {
		pthread_mutex_lock(&f->mu);
		if (rc == SHOAL_EBADSIG)
			f->counters.put_bad_sig++;
		else
			f->counters.put_invalid++;
		pthread_mutex_unlock(&f->mu);
		return rc;
	}
	uint8_t hash[RECORD_HASH_BYTES];
	record_hash(r, hash);

	pthread_mutex_lock(&f->mu);
	rc = set_sync(f, SYNC_NORMAL);
	if (rc == 0)
		rc = exec(f, "BEGIN IMMEDIATE", "begin put");
	if (rc == 0) {
		rc = put_txn(f, r, hash, now_ms, res);
		/* A broken link is refused, but its evidence is committed. */
		int commit = rc == 0 || (rc == SHOAL_EPROTO && *res == FEED_BROKEN_LINK);
		if (commit) {
			int crc = exec(f, "COMMIT", "commit put");
			if (crc)
				rc = crc;
		}
		rollback(f); /* no-op after a COMMIT */
	}
	count_put(f, rc, *res);
	pthread_mutex_unlock(&f->mu);
	assert(rc != 0 || (*res >= FEED_NEW && *res <= FEED_STALE));
	return rc;
}

static int append_txn(struct feed *f, struct record *r, const uint8_t sk[64], uint64_t now_ms)
{
	struct author_row a;
	struct feed_entry head;
	int rc = get_author(f, r->author, &a);
	if (rc)
		return rc;
	if (a.present) {
		/* Link to what is really stored, not to the summary's copy of
		 * the hash: a damaged row must stop us, not fork our feed. */
		rc = get_entry(f, r->author, a.seq_max, &head);
		if (rc == SHOAL_ENOTFOUND)
			return fail(f, SHOAL_EDB, "own feed head seq %llu is missing (run 'shoal log verify')",
				    (unsigned long long)a.seq_max);
		if (rc)
			return rc;
		uint8_t h[RECORD_HASH_BYTES];
		record_hash(&head.rec, h);
		if (memcmp(h, head.hash, sizeof(h)) != 0 ||
		    memcmp(h, a.head_hash, sizeof(h)) != 0 || record_verify(&head.rec) != 0)
			return fail(f, SHOAL_EDB,
				    "own feed head seq %llu does not match its hash or signature "
				    "(run 'shoal log verify')",
				    (unsigned long long)a.seq_max);
		if (a.seq_max >= FEED_SEQ_MAX)
			return fail(f, SHOAL_ETOOBIG, "own feed is at the largest seq");
		r->seq = a.seq_max + 1;
		memcpy(r->prev, h, sizeof(h));
	} else {
		r->seq = 1;
	}
	record_sign(r, sk);
	uint8_t hash[RECORD_HASH_BYTES];
	record_hash(r, hash);
	return insert_record(f, r, hash, now_ms, &a);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int feed_append(struct feed *f, const uint8_t sk[64], uint8_t kind, uint64_t time_ms,
		const void *body, size_t len, struct record *out)
{
	assert(f && sk);
	assert(body || len == 0);
	if (f->readonly)
		return fail(f, SHOAL_ESTATE, "feed_append: opened read-only");
	if (kind == 0 || kind > RECORD_KIND_MAX_)
		return fail(f, SHOAL_EINVAL, "feed_append: unknown kind %u", kind);
	if (len > SHOAL_RECORD_BODY_MAX)
		return fail(f, SHOAL_EINVAL, "feed_append: body of %zu bytes is over %d", len,
			    SHOAL_RECORD_BODY_MAX);
	struct record *r = malloc(sizeof(*r));
	if (!r)
		return fail(f, SHOAL_ENOMEM, "feed_append: out of memory");
	memset(r, 0, sizeof(*r));
	memcpy(r->author, sk + 32, SHOAL_NODE_ID_BYTES);
	r->kind = kind;
	r->time_ms = time_ms;
	r->body_len = (uint32_t)len;
	if (len)
		memcpy(r->body, body, len);

	pthread_mutex_lock(&f->mu);
	/* FULL before BEGIN: the commit then syncs the WAL, so the record
	 * survives power loss before anyone is told of it. */
	int rc = set_sync(f, SYNC_FULL);
	if (rc == 0)
		rc = exec(f, "BEGIN IMMEDIATE", "begin append");
	if (rc == 0) {
		rc = append_txn(f, r, sk, wall_ms());
		if (rc == 0)
			rc = exec(f, "COMMIT", "commit append");
		if (rc)
			rollback(f);
	}
	if (rc == 0)
		f->counters.appended++;
	else if (rc == SHOAL_EFULL)
		f->counters.put_full++;
	pthread_mutex_unlock(&f->mu);
	if (rc == 0 && out)
		*out = *r;
	assert(rc != 0 || r->seq >= 1);
	free(r);
	return rc;
}

/* --- pruning ------------------------------------------------------------------ */

struct victim {
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq;
};

static int victim_cmp(const void *x, const void *y)
{
	const struct victim *a = x, *b = y;
	int c = memcmp(a->author, b->author, SHOAL_NODE_ID_BYTES);
	if (c)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* After deleting v[0..n) of one author: its count, lowest seq and pruned
 * mark. The head is never among v, so the author keeps a row. */
static int fix_author(struct feed *f, const struct victim *v, size_t n)
{
	uint64_t max_seq = v[n - 1].seq; /* v is sorted */
	sqlite3_stmt *st = NULL;
	int rc = prepare(f,
			 "UPDATE feed_authors SET count = count - ?2,"
			 " seq_min = (SELECT seq FROM feed_records WHERE author = ?1"
			 "            ORDER BY seq LIMIT 1),"
			 " pruned_through = max(pruned_through, ?3)"
			 " WHERE author = ?1",
			 &st);
	if (rc)
		return rc;
	bind_id(st, 1, v[0].author);
	sqlite3_bind_int64(st, 2, (int64_t)n);
	sqlite3_bind_int64(st, 3, (int64_t)max_seq);
	if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(f->db) != 1)
		rc = db_fail(f, "update feed_authors after prune");
	sqlite3_finalize(st);
	return rc;
}

/* One batch: returns the number deleted in *n (< batch: done). */
static int prune_batch(struct feed *f, uint64_t cutoff_ms, struct victim *v, size_t *n)
{
	*n = 0;
	sqlite3_stmt *st = NULL;
	int rc = prepare(f,
			 "SELECT r.author, r.seq FROM feed_records r"
			 " JOIN feed_authors a ON a.author = r.author"
			 " WHERE r.received_ms < ?1 AND r.seq < a.seq_max LIMIT ?2",
			 &st);
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)cutoff_ms);
	sqlite3_bind_int64(st, 2, SHOAL_FEED_PRUNE_BATCH_MAX);
	size_t k = 0;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW && k < SHOAL_FEED_PRUNE_BATCH_MAX) {
		if (!col_blob(st, 0, v[k].author, SHOAL_NODE_ID_BYTES) || !col_u64(st, 1, &v[k].seq)) {
			rc = row_fail(f, st, 0, 1, "bad author or seq");
			break;
		}
		k++;
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = db_fail(f, "select records to prune");
	sqlite3_finalize(st);
	if (rc || k == 0)
		return rc;
	qsort(v, k, sizeof(*v), victim_cmp);
	rc = prepare(f, "DELETE FROM feed_records WHERE author = ?1 AND seq = ?2", &st);
	if (rc)
		return rc;
	for (size_t i = 0; i < k && rc == 0; i++) {
		sqlite3_reset(st);
		bind_id(st, 1, v[i].author);
		sqlite3_bind_int64(st, 2, (int64_t)v[i].seq);
		if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(f->db) != 1)
			rc = db_fail(f, "delete record");
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < k && rc == 0;) {
		size_t j = i + 1;
		while (j < k && memcmp(v[j].author, v[i].author, SHOAL_NODE_ID_BYTES) == 0)
			j++;
		rc = fix_author(f, v + i, j - i);
		i = j;
	}
	if (rc == 0)
		rc = meta_add(f, FEED_RECORDS_KEY, -(int64_t)k);
	if (rc == 0)
		*n = k;
	return rc;
}

int feed_prune(struct feed *f, uint64_t now_ms, uint64_t retention_ms, uint64_t *pruned)
{
	assert(f);
	if (pruned)
		*pruned = 0;
	if (f->readonly)
		return fail(f, SHOAL_ESTATE, "feed_prune: opened read-only");
	if (now_ms > (uint64_t)INT64_MAX)
		return fail(f, SHOAL_EINVAL, "feed_prune: now_ms out of range");
	if (retention_ms >= now_ms)
		return 0;
	uint64_t cutoff = now_ms - retention_ms;
	struct victim *v = malloc(SHOAL_FEED_PRUNE_BATCH_MAX * sizeof(*v));
	if (!v)
		return fail(f, SHOAL_ENOMEM, "feed_prune: out of memory");
	uint64_t total = 0;
	int rc = 0;
	for (;;) {
		size_t n = 0;
		pthread_mutex_lock(&f->mu);
		rc = set_sync(f, SYNC_NORMAL);
		if (rc == 0)
			rc = exec(f, "BEGIN IMMEDIATE", "begin prune");
		if (rc == 0) {
			rc = prune_batch(f, cutoff, v, &n);
			if (rc == 0)
				rc = exec(f, "COMMIT", "commit prune");
			if (rc)
				rollback(f);
		}
		if (rc == 0)
			f->counters.pruned += n;
		pthread_mutex_unlock(&f->mu);
		if (rc)
			break;
		total += n;
		if (n < SHOAL_FEED_PRUNE_BATCH_MAX)
			break;
	}
	free(v);
	if (pruned)
		*pruned = total;
	return rc;
}

/* --- reading --------------------------------------------------------------- */

int feed_get(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t seq,
	     struct feed_entry *out)
{
	assert(f && author);
	struct feed_entry tmp;
	pthread_mutex_lock(&f->mu);
	int rc = get_entry(f, author, seq, out ? out : &tmp);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int feed_head(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t *seq,
	      uint8_t hash[RECORD_HASH_BYTES])
{
	assert(f && author);
	assert(seq);
	struct author_row a;
	pthread_mutex_lock(&f->mu);
	int rc = get_author(f, author, &a);
	pthread_mutex_unlock(&f->mu);
	if (rc)
		return rc;
	if (!a.present)
		return SHOAL_ENOTFOUND;
	*seq = a.seq_max;
	if (hash)
		memcpy(hash, a.head_hash, RECORD_HASH_BYTES);
	return 0;
}

static int heads_locked(struct feed *f, struct feed_head **out, size_t *n)
{
	int64_t count = 0;
	int rc = count_rows(f, "SELECT count(*) FROM feed_authors", NULL, &count);
	if (rc)
		return rc;
	if (count <= 0)
		return 0;
	struct feed_head *arr = calloc((size_t)count, sizeof(*arr));
	if (!arr)
		return fail(f, SHOAL_ENOMEM, "feed_heads: out of memory");
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "SELECT " AUTHOR_COLS " FROM feed_authors ORDER BY author LIMIT ?1", &st);
	if (rc) {
		free(arr);
		return rc;
	}
	sqlite3_bind_int64(st, 1, count);
	size_t k = 0;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW && k < (size_t)count) {
		const char *why = row_head(st, &arr[k]);
		if (why) {
			char hex[HEX_ID_BYTES] = "?";
			if (sqlite3_column_bytes(st, 0) == SHOAL_NODE_ID_BYTES)
				hex_id(sqlite3_column_blob(st, 0), hex);
			rc = fail(f, SHOAL_EDB, "feed_authors row %s: %s (run 'shoal log verify')", hex,
				  why);
			break;
		}
		k++;
	}
	if (rc == 0 && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = db_fail(f, "read feed_authors");
	sqlite3_finalize(st);
	if (rc) {
		free(arr);
		return rc;
	}
	*out = arr;
	*n = k;
	return 0;
}

int feed_heads(struct feed *f, struct feed_head **out, size_t *n)
{
	assert(f && out);
	assert(n);
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&f->mu);
	/* The count and the rows in one read transaction, so a writer on
	 * another connection cannot make them disagree. */
	int rc = exec(f, "BEGIN", "begin read");
	if (rc == 0) {
		rc = heads_locked(f, out, n);
		rollback(f);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Steps st, reading RECORD_COLS rows into out[0..max). */
static int read_entries(struct feed *f, sqlite3_stmt *st, size_t max, struct feed_entry *out,
			size_t *n)
{
	size_t k = 0;
	int step = SQLITE_DONE;
	int rc = 0;
	while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *why = row_entry(st, 0, &out[k]);
		if (why)
			return row_fail(f, st, 0, 1, why);
		k++;
	}
	if (k < max && step != SQLITE_DONE)
		rc = db_fail(f, "read records");
	*n = k;
	return rc;
}

int feed_range(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t from_seq,
	       size_t max, struct feed_entry *out, size_t *n)
{
	assert(f && author);
	assert((out || max == 0) && n);
	*n = 0;
	if (max > SHOAL_FEED_RANGE_MAX)
		return fail(f, SHOAL_EINVAL, "feed_range: max %zu above %d", max, SHOAL_FEED_RANGE_MAX);
	if (max == 0 || from_seq > FEED_SEQ_MAX)
		return 0;
	pthread_mutex_lock(&f->mu);
	sqlite3_stmt *st = NULL;
	int rc = prepare(f,
			 "SELECT " RECORD_COLS " FROM feed_records WHERE author = ?1 AND seq >= ?2"
			 " ORDER BY seq LIMIT ?3",
			 &st);
	if (rc == 0) {
		bind_id(st, 1, author);
		sqlite3_bind_int64(st, 2, (int64_t)from_seq);
		sqlite3_bind_int64(st, 3, (int64_t)max);
		rc = read_entries(f, st, max, out, n);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int gaps_locked(struct feed *f, const uint8_t *author, uint64_t from_seq, size_t max,
		       struct feed_gap *out, size_t *n)
{
	struct author_row a;
	int rc = get_author(f, author, &a);
	if (rc || !a.present)
		return rc;
	/* Below the lowest held seq nothing is "missing" (a node may join a
	 * feed midway), and what retention pruned stays pruned. */
	uint64_t expect = from_seq;
	if (expect < a.seq_min)
		expect = a.seq_min;
	if (a.pruned_through >= expect)
		expect = a.pruned_through + 1;
	if (expect > a.seq_max)
		return 0;
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "SELECT seq FROM feed_records WHERE author = ?1 AND seq >= ?2 ORDER BY seq",
		     &st);
	if (rc)
		return rc;
	bind_id(st, 1, author);
	sqlite3_bind_int64(st, 2, (int64_t)expect);
	size_t k = 0;
	int step = SQLITE_DONE;
	while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t s = 0;
		if (!col_u64(st, 0, &s) || s < expect) {
			rc = row_fail(f, st, 0, 0, "bad seq");
			break;
		}
		if (s > expect) {
			out[k].first = expect;
			out[k].last = s - 1;
			k++;
		}
		if (s >= FEED_SEQ_MAX)
			break;
		expect = s + 1;
	}
	if (rc == 0 && k < max && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = db_fail(f, "read seqs");
	sqlite3_finalize(st);
	*n = k;
	return rc;
}

int feed_gaps(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t from_seq,
	      size_t max, struct feed_gap *out, size_t *n)
{
	assert(f && author);
	assert((out || max == 0) && n);
	*n = 0;
	if (max > SHOAL_FEED_GAPS_MAX)
		return fail(f, SHOAL_EINVAL, "feed_gaps: max %zu above %d", max, SHOAL_FEED_GAPS_MAX);
	if (max == 0)
		return 0;
	pthread_mutex_lock(&f->mu);
	int rc = exec(f, "BEGIN", "begin read");
	if (rc == 0) {
		rc = gaps_locked(f, author, from_seq, max, out, n);
		rollback(f);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int feed_list(struct feed *f, const struct feed_filter *flt, size_t max, struct feed_entry *out,
	      size_t *n)
{
	assert(f && flt);
	assert((out || max == 0) && n);
	*n = 0;
	if (max > SHOAL_FEED_RANGE_MAX)
		return fail(f, SHOAL_EINVAL, "feed_list: max %zu above %d", max, SHOAL_FEED_RANGE_MAX);
	if (max == 0)
		return 0;
	/* Four fixed statements rather than "?1 IS NULL OR ...", so that
	 * SQLite walks the primary key from the cursor: paging through a
	 * large store stays linear. */
	char sql[512];
	int len = snprintf(sql, sizeof(sql), "SELECT " RECORD_COLS " FROM feed_records WHERE %s%s",
			   flt->by_author
				   ? (flt->has_cursor ? "author = ?1 AND seq > ?4" : "author = ?1")
				   : (flt->has_cursor ? "(author, seq) > (?3, ?4)" : "1"),
			   " AND (?2 = 0 OR kind = ?2) ORDER BY author, seq LIMIT ?5");
	assert(len > 0 && (size_t)len < sizeof(sql));
	pthread_mutex_lock(&f->mu);
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, sql, &st);
	if (rc == 0) {
		if (flt->by_author)
			bind_id(st, 1, flt->author);
		sqlite3_bind_int(st, 2, flt->kind);
		if (flt->has_cursor) {
			bind_id(st, 3, flt->after_author);
			sqlite3_bind_int64(st, 4, flt->after_seq > FEED_SEQ_MAX
							  ? INT64_MAX
							  : (int64_t)flt->after_seq);
		}
		sqlite3_bind_int64(st, 5, (int64_t)max);
		rc = read_entries(f, st, max, out, n);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Decodes an encoded record column. */
static bool col_record(sqlite3_stmt *st, int col, struct record *r)
{
	if (sqlite3_column_type(st, col) != SQLITE_BLOB)
		return false;
	int len = sqlite3_column_bytes(st, col);
	const uint8_t *p = sqlite3_column_blob(st, col);
	if (len <= 0 || !p)
		return false;
	return record_decode_buf(p, (size_t)len, r) == 0;
}

#define EVIDENCE_COLS "id, kind, author, seq, held, offending, received_ms"

static const char *row_evidence(sqlite3_stmt *st, struct feed_evidence *e)
{
	memset(e, 0, offsetof(struct feed_evidence, held));
	uint64_t kind = 0;
	e->id = sqlite3_column_int64(st, 0);
	if (!col_u64(st, 1, &kind) ||
	    (kind != FEED_EVIDENCE_EQUIVOCATION && kind != FEED_EVIDENCE_BROKEN_LINK))
		return "unknown kind";
	e->kind = (enum feed_evidence_kind)kind;
	if (!col_blob(st, 2, e->author, sizeof(e->author)))
		return "author is not 32 bytes";
	if (!col_u64(st, 3, &e->seq))
		return "seq is not an integer";
	if (!col_record(st, 4, &e->held))
		return "held record does not decode";
	if (!col_record(st, 5, &e->offending))
		return "offending record does not decode";
	if (!col_u64(st, 6, &e->received_ms))
		return "received_ms is not an integer";
	return NULL;
}

int feed_evidence_list(struct feed *f, const uint8_t *by_author, int64_t after_id, size_t max,
		       struct feed_evidence *out, size_t *n)
{
	assert(f && n);
	assert(out || max == 0);
	*n = 0;
	if (max > SHOAL_FEED_RANGE_MAX)
		return fail(f, SHOAL_EINVAL, "feed_evidence_list: max %zu above %d", max,
			    SHOAL_FEED_RANGE_MAX);
	if (max == 0)
		return 0;
	pthread_mutex_lock(&f->mu);
	sqlite3_stmt *st = NULL;
	int rc = prepare(f,
			 by_author ? "SELECT " EVIDENCE_COLS " FROM feed_evidence"
				     " WHERE author = ?3 AND id > ?1 ORDER BY id LIMIT ?2"
				   : "SELECT " EVIDENCE_COLS " FROM feed_evidence"
				     " WHERE id > ?1 ORDER BY id LIMIT ?2",
			 &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, after_id);
		sqlite3_bind_int64(st, 2, (int64_t)max);
		if (by_author)
			bind_id(st, 3, by_author);
		size_t k = 0;
		int step = SQLITE_DONE;
		while (k < max && (step = sqlite3_step(st)) == SQLITE_ROW) {
			const char *why = row_evidence(st, &out[k]);
			if (why) {
				rc = fail(f, SHOAL_EDB, "feed_evidence row %lld: %s (run 'shoal log verify')",
					  (long long)sqlite3_column_int64(st, 0), why);
				break;
			}
			k++;
		}
		if (rc == 0 && k < max && step != SQLITE_DONE)
			rc = db_fail(f, "read evidence");
		sqlite3_finalize(st);
		*n = rc ? 0 : k;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int stats_locked(struct feed *f, struct feed_stats *out)
{
	int64_t v = 0;
	int rc = meta_get(f, FEED_RECORDS_KEY, &v);
	if (rc)
		return rc == SHOAL_ENOTFOUND ? fail(f, SHOAL_EDB, "feed_meta has no records row") : rc;
	out->records = v < 0 ? 0 : (uint64_t)v;
	rc = count_rows(f, "SELECT count(*) FROM feed_authors", NULL, &v);
	if (rc)
		return rc;
	out->authors = (uint64_t)v;
	rc = count_rows(f, "SELECT count(*) FROM feed_evidence", NULL, &v);
	if (rc)
		return rc;
	out->evidence = (uint64_t)v;
	rc = count_rows(f, "SELECT count(*) FROM feed_authors WHERE equivocating = 1", NULL, &v);
	if (rc)
		return rc;
	out->equivocating_authors = (uint64_t)v;
	return 0;
}

int feed_stats(struct feed *f, struct feed_stats *out)
{
	assert(f && out);
	pthread_mutex_lock(&f->mu);
	*out = f->counters;
	int rc = exec(f, "BEGIN", "begin read");
	if (rc == 0) {
		rc = stats_locked(f, out);
		rollback(f);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int feed_author_name(struct feed *f, const uint8_t author[SHOAL_NODE_ID_BYTES],
		     char name[SHOAL_NAME_BYTES_MAX + 1])
{
	assert(f && author);
	assert(name);
	name[0] = '\0';
	pthread_mutex_lock(&f->mu);
	sqlite3_stmt *st = NULL;
	int64_t tables = 0;
	int rc = count_rows(f,
			    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'members'",
			    NULL, &tables);
	if (rc == 0 && tables == 0)
		rc = SHOAL_ENOTFOUND;
	if (rc == 0)
		rc = prepare(f, "SELECT name FROM members WHERE id = ?1", &st);
	if (rc == 0) {
		bind_id(st, 1, author);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT) {
			const char *p = (const char *)sqlite3_column_text(st, 0);
			int len = sqlite3_column_bytes(st, 0);
			if (p && len > 0 && len <= SHOAL_NAME_BYTES_MAX && strlen(p) == (size_t)len)
				memcpy(name, p, (size_t)len + 1);
			else
				rc = SHOAL_ENOTFOUND; /* a damaged name is no name */
		} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
			rc = SHOAL_ENOTFOUND;
		} else {
			rc = db_fail(f, "read members");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* --- verify ------------------------------------------------------------------ */

struct verifier {
	struct feed *f;
	feed_fault_fn fault;
	void *ctx;
	struct feed_verify_result *res;
	struct feed_head *heads; /* feed_authors rows, by author */
	size_t heads_n;
};

static void __attribute__((format(printf, 4, 5)))
report(struct verifier *v, const uint8_t *author, uint64_t seq, const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	v->res->faults++;
	if (v->fault)
		v->fault(v->ctx, author, seq, what);
}

static struct feed_head *find_head(struct verifier *v, const uint8_t *author)
{
	size_t lo = 0, hi = v->heads_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(v->heads[mid].author, author, SHOAL_NODE_ID_BYTES);
		if (c == 0)
			return &v->heads[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* What one author's records add up to while walking them. */
struct walk {
	bool any;
	uint8_t author[SHOAL_NODE_ID_BYTES];
	uint64_t seq_min, seq_max, count;
	uint64_t last_seq;
	uint8_t last_hash[RECORD_HASH_BYTES]; /* computed, not stored */
	bool last_ok;
	bool seen_head_row;
};

static void finish_author(struct verifier *v, struct walk *w)
{
	if (!w->any)
		return;
	v->res->authors++;
	struct feed_head *h = find_head(v, w->author);
	if (!h) {
		report(v, w->author, 0, "records held but no feed_authors summary row");
		return;
	}
	if (h->seq_min != w->seq_min || h->seq_max != w->seq_max || h->count != w->count)
		report(v, w->author, 0,
		       "summary says seqs %llu..%llu (%llu held), records are %llu..%llu (%llu held)",
		       (unsigned long long)h->seq_min, (unsigned long long)h->seq_max,
		       (unsigned long long)h->count, (unsigned long long)w->seq_min,
		       (unsigned long long)w->seq_max, (unsigned long long)w->count);
	else if (w->last_ok && memcmp(h->hash, w->last_hash, RECORD_HASH_BYTES) != 0)
		report(v, w->author, w->seq_max, "summary head hash is not the head record's hash");
	/* Mark as matched: seq_min 0 never occurs in a valid summary. */
	h->seq_min = 0;
}

static void check_record(struct verifier *v, struct walk *w, const struct feed_entry *e)
{
	const struct record *r = &e->rec;
	if (!w->any || memcmp(w->author, r->author, SHOAL_NODE_ID_BYTES) != 0) {
		finish_author(v, w);
		memset(w, 0, sizeof(*w));
		w->any = true;
		memcpy(w->author, r->author, SHOAL_NODE_ID_BYTES);
		w->seq_min = r->seq;
	}
	w->count++;
	w->seq_max = r->seq;
	const char *why = record_invalid(r);
	if (why)
		report(v, r->author, r->seq, "%s", why);
	uint8_t h[RECORD_HASH_BYTES];
	record_hash(r, h);
	bool ok = true;
	if (record_verify(r) != 0) {
		report(v, r->author, r->seq, "signature does not verify");
		ok = false;
	}
	if (memcmp(h, e->hash, sizeof(h)) != 0) {
		report(v, r->author, r->seq, "stored hash is not the record's hash");
		ok = false;
	}
	if (w->count > 1 && r->seq == w->last_seq + 1 &&
	    memcmp(r->prev, w->last_hash, RECORD_HASH_BYTES) != 0)
		report(v, r->author, r->seq, "prev is not the hash of seq %llu (broken link)",
		       (unsigned long long)w->last_seq);
	w->last_seq = r->seq;
	memcpy(w->last_hash, h, sizeof(h));
	w->last_ok = ok;
}

static int verify_records(struct verifier *v)
{
	struct feed *f = v->f;
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "SELECT " RECORD_COLS " FROM feed_records ORDER BY author, seq", &st);
	if (rc)
		return rc;
	struct feed_entry *e = malloc(sizeof(*e));
	struct walk w;
	memset(&w, 0, sizeof(w));
	if (!e) {
		sqlite3_finalize(st);
		return fail(f, SHOAL_ENOMEM, "verify: out of memory");
	}
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v->res->records++;
		const char *why = row_entry(st, 0, e);
		if (why) {
			uint8_t author[SHOAL_NODE_ID_BYTES] = {0};
			col_blob(st, 0, author, sizeof(author));
			report(v, author, (uint64_t)sqlite3_column_int64(st, 1), "row: %s", why);
			continue;
		}
		check_record(v, &w, e);
	}
	if (step != SQLITE_DONE)
		rc = db_fail(f, "read records");
	finish_author(v, &w);
	free(e);
	sqlite3_finalize(st);
	return rc;
}

/* Each evidence row must hold two records signed by its author that really
 * conflict; otherwise it would accuse an honest node. */
static void check_evidence(struct verifier *v, const struct feed_evidence *e)
{
	const struct record *a = &e->held, *b = &e->offending;
	v->res->evidence++;
	if (memcmp(a->author, e->author, SHOAL_NODE_ID_BYTES) != 0 ||
	    memcmp(b->author, e->author, SHOAL_NODE_ID_BYTES) != 0) {
		report(v, e->author, e->seq, "evidence %lld: records are by another author",
		       (long long)e->id);
		return;
	}
	if (record_verify(a) != 0 || record_verify(b) != 0) {
		report(v, e->author, e->seq, "evidence %lld: a record's signature does not verify",
		       (long long)e->id);
		return;
	}
	bool conflict = false;
	if (e->kind == FEED_EVIDENCE_EQUIVOCATION) {
		conflict = a->seq == b->seq && !same_content(a, b);
	} else {
		const struct record *lo = a->seq < b->seq ? a : b, *hi = a->seq < b->seq ? b : a;
		uint8_t h[RECORD_HASH_BYTES];
		record_hash(lo, h);
		conflict = hi->seq == lo->seq + 1 && memcmp(hi->prev, h, sizeof(h)) != 0;
	}
	if (!conflict || b->seq != e->seq)
		report(v, e->author, e->seq, "evidence %lld: the two records do not conflict as its "
		       "kind (%s) says", (long long)e->id, feed_evidence_kind_name((int)e->kind));
	struct feed_head *h = find_head(v, e->author);
	if (h && !h->equivocating)
		report(v, e->author, 0, "evidence held but the author is not marked equivocating");
}

static int verify_evidence(struct verifier *v)
{
	struct feed *f = v->f;
	sqlite3_stmt *st = NULL;
	int rc = prepare(f, "SELECT " EVIDENCE_COLS " FROM feed_evidence ORDER BY id", &st);
	if (rc)
		return rc;
	struct feed_evidence *e = malloc(sizeof(*e));
	if (!e) {
		sqlite3_finalize(st);
		return fail(f, SHOAL_ENOMEM, "verify: out of memory");
	}
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *why = row_evidence(st, e);
		if (why) {
			v->res->evidence++;
			report(v, NULL, 0, "evidence %lld: %s", (long long)sqlite3_column_int64(st, 0),
			       why);
			continue;
		}
		check_evidence(v, e);
	}
	if (step != SQLITE_DONE)
		rc = db_fail(f, "read evidence");
	free(e);
	sqlite3_finalize(st);
	return rc;
}

/* Reads every feed_authors row, reporting bad ones instead of failing. */
static int load_summaries(struct verifier *v)
{
	struct feed *f = v->f;
	int64_t count = 0;
	int rc = count_rows(f, "SELECT count(*) FROM feed_authors", NULL, &count);
	if (rc || count <= 0)
		return rc;
	v->heads = calloc((size_t)count, sizeof(*v->heads));
	if (!v->heads)
		return fail(f, SHOAL_ENOMEM, "verify: out of memory");
	sqlite3_stmt *st = NULL;
	rc = prepare(f, "SELECT " AUTHOR_COLS " FROM feed_authors ORDER BY author", &st);
	if (rc)
		return rc;
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW && v->heads_n < (size_t)count) {
		struct feed_head *h = &v->heads[v->heads_n];
		const char *why = row_head(st, h);
		if (why) {
			uint8_t author[SHOAL_NODE_ID_BYTES] = {0};
			col_blob(st, 0, author, sizeof(author));
			report(v, author, 0, "summary row: %s", why);
			continue;
		}
		if (h->equivocating)
			v->res->equivocating_authors++;
		v->heads_n++;
	}
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		rc = db_fail(f, "read feed_authors");
	sqlite3_finalize(st);
	return rc;
}

static int verify_locked(struct verifier *v)
{
	int rc = load_summaries(v);
	if (rc)
		return rc;
	/* Evidence first: finish_author() marks summaries as matched. */
	rc = verify_evidence(v);
	if (rc)
		return rc;
	rc = verify_records(v);
	if (rc)
		return rc;
	for (size_t i = 0; i < v->heads_n; i++)
		if (v->heads[i].seq_min != 0)
			report(v, v->heads[i].author, 0, "summary row for an author with no records");
	int64_t total = 0;
	rc = meta_get(v->f, FEED_RECORDS_KEY, &total);
	if (rc == SHOAL_ENOTFOUND) {
		report(v, NULL, 0, "feed_meta has no records counter");
		return 0;
	}
	if (rc)
		return rc;
	if (total < 0 || (uint64_t)total != v->res->records)
		report(v, NULL, 0, "records counter says %lld, the table holds %llu", (long long)total,
		       (unsigned long long)v->res->records);
	return 0;
}

int feed_verify(struct feed *f, feed_fault_fn fault, void *ctx, struct feed_verify_result *out)
{
	assert(f && out);
	memset(out, 0, sizeof(*out));
	struct verifier v = {.f = f, .fault = fault, .ctx = ctx, .res = out};
	pthread_mutex_lock(&f->mu);
	/* One read transaction: a consistent snapshot even while the agent
	 * writes through another connection. */
	int rc = exec(f, "BEGIN", "begin verify");
	if (rc == 0) {
		rc = verify_locked(&v);
		rollback(f);
	}
	pthread_mutex_unlock(&f->mu);
	free(v.heads);
	return rc;
}
