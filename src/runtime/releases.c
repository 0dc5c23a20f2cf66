/* releases.c — the node's release manager (see releases.h). */
#include "runtime/releases.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shoal/file.h"
#include "shoal/hex.h"
#include "shoal/limits.h"
#include "shoal/log.h"
#include "trust/anchor.h"
#include "trust/tuf.h"

#define RELMGR_DIR_BYTES (PATH_MAX - 1200) /* room for names under it */

struct relmgr {
	pthread_mutex_t mu;
	sqlite3 *db;
	struct blobs *blobs;
	char data_dir[RELMGR_DIR_BYTES];
	char metadata_dir[RELMGR_DIR_BYTES];
	char releases_dir[RELMGR_DIR_BYTES];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS releases ("
	" ann_author BLOB NOT NULL, ann_seq INTEGER NOT NULL,"
	" ts_version INTEGER NOT NULL DEFAULT 0, targets_version INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
	" targets TEXT NOT NULL DEFAULT '[]', updated_ms INTEGER NOT NULL,"
	" verified BLOB," /* the targets.json this announce's refresh verified */
	" PRIMARY KEY (ann_author, ann_seq));"
	"CREATE TABLE IF NOT EXISTS release_holders ("
	" version INTEGER NOT NULL, author BLOB NOT NULL, state TEXT NOT NULL,"
	" PRIMARY KEY (version, author));";

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int mkdirs(const char *path)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return SHOAL_EIO;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return SHOAL_EIO;
	return 0;
}

int relmgr_open(const char *data_dir, struct blobs *blobs, struct relmgr **out, char *err,
		size_t errlen)
{
	assert(data_dir && blobs && out);
	*out = NULL;
	struct relmgr *m = calloc(1, sizeof(*m));
	if (!m)
		return SHOAL_ENOMEM;
	pthread_mutex_init(&m->mu, NULL);
	m->blobs = blobs;
	int n0 = snprintf(m->data_dir, sizeof(m->data_dir), "%s", data_dir);
	int n1 = snprintf(m->metadata_dir, sizeof(m->metadata_dir), "%s/trust/metadata",
			  data_dir);
	int n2 = snprintf(m->releases_dir, sizeof(m->releases_dir), "%s/releases", data_dir);
	if (n0 < 0 || n1 < 0 || n2 < 0 || (size_t)n0 >= sizeof(m->data_dir) ||
	    (size_t)n1 >= sizeof(m->metadata_dir) ||
	    (size_t)n2 >= sizeof(m->releases_dir)) {
		snprintf(err, errlen, "data dir '%s' is too long", data_dir);
		relmgr_close(m);
		return SHOAL_EINVAL;
	}
	char db_path[PATH_MAX];
	snprintf(db_path, sizeof(db_path), "%s/state.db", data_dir);
	if (sqlite3_open_v2(db_path, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						     SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(m->db, SHOAL_DB_BUSY_TIMEOUT_MS) != SQLITE_OK ||
	    sqlite3_exec(m->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(m->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", db_path,
			 m->db ? sqlite3_errmsg(m->db) : "cannot open");
		relmgr_close(m);
		return SHOAL_EDB;
	}
	/* Release states and holder counts can be rebuilt from the feeds: a
	 * commit need not wait for the disk (WAL stays consistent), which
	 * matters because health records are noted on the event loop. */
	sqlite3_exec(m->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	/* Data dirs made before the column existed; fails harmlessly after. */
	sqlite3_exec(m->db, "ALTER TABLE releases ADD COLUMN verified BLOB", NULL, NULL, NULL);
	if (mkdirs(m->releases_dir) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", m->releases_dir, strerror(errno));
		relmgr_close(m);
		return SHOAL_EIO;
	}
	*out = m;
	return 0;
}

void relmgr_close(struct relmgr *m)
{
	if (!m)
		return;
	sqlite3_close(m->db);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* --- state rows ------------------------------------------------------------ */

/* verified, when not NULL, is kept with the row (see load_verified); a
 * NULL leaves what the row held. */
static void set_state_v(struct relmgr *m, const struct record *ann, int64_t ts_version,
			int64_t targets_version, const char *state, const char *reason,
			const char *targets_json, const uint8_t *verified, size_t verified_len)
{
	static const char sql[] =
		"INSERT INTO releases (ann_author, ann_seq, ts_version, targets_version,"
		" state, reason, targets, updated_ms, verified) VALUES (?,?,?,?,?,?,?,?,?)"
		" ON CONFLICT (ann_author, ann_seq) DO UPDATE SET ts_version = excluded.ts_version,"
		" targets_version = excluded.targets_version, state = excluded.state,"
		" reason = excluded.reason, targets = excluded.targets,"
		" updated_ms = excluded.updated_ms,"
		" verified = COALESCE(excluded.verified, releases.verified)";
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, ann->author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)ann->seq);
		sqlite3_bind_int64(st, 3, ts_version);
		sqlite3_bind_int64(st, 4, targets_version);
		sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 6, reason ? reason : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, targets_json ? targets_json : "[]", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)wall_ms());
		if (verified)
			sqlite3_bind_blob(st, 9, verified, (int)verified_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 9);
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warn("release_state_not_saved", "err=\"%s\"", sqlite3_errmsg(m->db));
		sqlite3_finalize(st);
	}
	/* Bounded history: the newest rows only. */
	char prune[160];
	snprintf(prune, sizeof(prune),
		 "DELETE FROM releases WHERE rowid NOT IN (SELECT rowid FROM releases"
		 " ORDER BY updated_ms DESC LIMIT %d)", SHOAL_RELEASES_KEPT_MAX);
	sqlite3_exec(m->db, prune, NULL, NULL, NULL);
	pthread_mutex_unlock(&m->mu);
}

static void set_state(struct relmgr *m, const struct record *ann, int64_t ts_version,
		      int64_t targets_version, const char *state, const char *reason,
		      const char *targets_json)
{
	set_state_v(m, ann, ts_version, targets_version, state, reason, targets_json, NULL, 0);
}

/* The targets metadata this announce's refresh verified earlier, when its
 * targets could not all be fetched then: a retry installs from it instead of
 * refreshing again, since by now the trusted metadata may have moved past
 * the announce's (a later release verified or rejected meanwhile) and a
 * second refresh would call it a rollback. Only while it has not expired. */
static int load_verified(struct relmgr *m, const struct record *ann, int64_t now_s,
			 struct tuf_md *out)
{
	memset(out, 0, sizeof(*out));
	int rc = SHOAL_ENOTFOUND;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db,
			       "SELECT verified FROM releases WHERE ann_author = ? AND ann_seq = ?"
			       " AND verified IS NOT NULL",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, ann->author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)ann->seq);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const void *b = sqlite3_column_blob(st, 0);
			int n = sqlite3_column_bytes(st, 0);
			if (b && n > 0)
				rc = tuf_md_parse(b, (size_t)n, TUF_TYPE_TARGETS, out);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
	if (rc == 0 && out->expires_s <= now_s) {
		tuf_md_clear(out);
		rc = SHOAL_EEXPIRED;
	}
	return rc;
}

void relmgr_note_announced(struct relmgr *m, const struct record *ann)
{
	assert(m && ann);
	struct announce a;
	int64_t ts_v = 0, targ_v = 0;
	if (announce_decode(ann->body, ann->body_len, &a) == 0)
		for (uint8_t i = 0; i < a.count; i++) {
			if (a.files[i].role == ANNOUNCE_TIMESTAMP)
				ts_v = a.files[i].version;
			if (a.files[i].role == ANNOUNCE_TARGETS)
				targ_v = a.files[i].version;
		}
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db,
			       "INSERT INTO releases (ann_author, ann_seq, ts_version,"
			       " targets_version, state, updated_ms) VALUES (?,?,?,?,'announced',?)"
			       " ON CONFLICT (ann_author, ann_seq) DO NOTHING",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, ann->author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)ann->seq);
		sqlite3_bind_int64(st, 3, ts_v);
		sqlite3_bind_int64(st, 4, targ_v);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)wall_ms());
		if (sqlite3_step(st) != SQLITE_DONE)
			log_warn("release_state_not_saved", "err=\"%s\"", sqlite3_errmsg(m->db));
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
}

bool relmgr_seen(struct relmgr *m, const struct record *ann)
{
	assert(m && ann);
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	bool seen = false;
	if (sqlite3_prepare_v2(m->db,
			       "SELECT state FROM releases WHERE ann_author = ? AND ann_seq = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, ann->author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)ann->seq);
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *s = (const char *)sqlite3_column_text(st, 0);
			seen = s && (strcmp(s, "verified") == 0 || strcmp(s, "rejected") == 0);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
	return seen;
}

void relmgr_note_health(struct relmgr *m, const uint8_t author[SHOAL_NODE_ID_BYTES],
			int64_t version, const char *state)
{
	assert(m && author && state);
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db,
			       "INSERT INTO release_holders (version, author, state) VALUES (?,?,?)"
			       " ON CONFLICT (version, author) DO UPDATE SET state = excluded.state",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, version);
		sqlite3_bind_blob(st, 2, author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
		(void)sqlite3_step(st);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
}

bool relmgr_holds(struct relmgr *m, const uint8_t author[SHOAL_NODE_ID_BYTES], int64_t version)
{
	assert(m && author);
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	bool holds = false;
	if (sqlite3_prepare_v2(m->db,
			       "SELECT 1 FROM release_holders WHERE version = ? AND author = ?"
			       " AND state IN ('fetched','preflight_ok','active','healthy')",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, version);
		sqlite3_bind_blob(st, 2, author, SHOAL_NODE_ID_BYTES, SQLITE_STATIC);
		holds = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
	return holds;
}

static int64_t holders(struct relmgr *m, int64_t version)
{
	sqlite3_stmt *st;
	int64_t n = 0;
	if (sqlite3_prepare_v2(m->db,
			       "SELECT count(*) FROM release_holders WHERE version = ?"
			       " AND state IN ('fetched','preflight_ok','active','healthy')",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, version);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return n;
}

json_t *relmgr_list(struct relmgr *m)
{
	assert(m);
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	pthread_mutex_lock(&m->mu);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(m->db,
			       "SELECT ann_author, ann_seq, ts_version, targets_version, state,"
			       " reason, targets, updated_ms FROM releases"
			       " ORDER BY updated_ms DESC",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			char author[2 * SHOAL_NODE_ID_BYTES + 1] = "";
			if (sqlite3_column_bytes(st, 0) == SHOAL_NODE_ID_BYTES)
				hex_encode(sqlite3_column_blob(st, 0), SHOAL_NODE_ID_BYTES,
					   author);
			int64_t version = sqlite3_column_int64(st, 3);
			const char *state = (const char *)sqlite3_column_text(st, 4);
			/* Holders count members that hold this version; a rejected
			 * announce of the same number is not what they hold. */
			bool verified = state && strcmp(state, "verified") == 0;
			json_t *targets = json_loads((const char *)sqlite3_column_text(st, 6),
						     0, NULL);
			json_t *row = json_pack(
				"{s:I, s:I, s:s, s:s, s:o, s:s, s:I, s:I, s:I}", "version",
				(json_int_t)version, "timestamp_version",
				(json_int_t)sqlite3_column_int64(st, 2), "state",
				(const char *)sqlite3_column_text(st, 4), "reason",
				(const char *)sqlite3_column_text(st, 5), "targets",
				targets ? targets : json_array(), "announced_by", author,
				"announce_seq", (json_int_t)sqlite3_column_int64(st, 1),
				"updated_ms", (json_int_t)sqlite3_column_int64(st, 7), "holders",
				(json_int_t)(version > 0 && verified ? holders(m, version) : 0));
			if (row)
				json_array_append_new(arr, row);
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&m->mu);
	return json_pack("{s:o}", "releases", arr);
}

/* --- health bodies ----------------------------------------------------------- */

int relmgr_health_body(int64_t version, const char *state, const char *detail, uint8_t *out,
		       size_t cap, size_t *len)
{
	assert(state && out && len);
	json_t *j = json_pack("{s:I, s:s, s:s}", "release", (json_int_t)version, "state",
			      state, "detail", detail ? detail : "");
	if (!j)
		return SHOAL_ENOMEM;
	size_t n = json_dumpb(j, (char *)out, cap, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (n == 0 || n > cap)
		return SHOAL_ETOOBIG;
	*len = n;
	return 0;
}

int relmgr_parse_health(const uint8_t *body, size_t len, int64_t *version, char *state,
			size_t state_cap)
{
	assert(body && version && state && state_cap > 0);
	json_error_t jerr;
	json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *v = j ? json_object_get(j, "release") : NULL;
	json_t *s = j ? json_object_get(j, "state") : NULL;
	int rc = SHOAL_EPROTO;
	if (json_is_integer(v) && json_is_string(s) && json_integer_value(v) > 0 &&
	    json_string_length(s) < state_cap) {
		*version = json_integer_value(v);
		snprintf(state, state_cap, "%s", json_string_value(s));
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* --- publish: a local repository into blobs ---------------------------------- */

/* Reads repo_dir/metadata/NAME (bounded) into a malloc'd buffer. */
static int read_meta(const char *repo_dir, const char *name, size_t max, uint8_t **out,
		     size_t *len)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/metadata/%s", repo_dir, name) >= (int)sizeof(path))
		return SHOAL_EINVAL;
	return shoal_read_file(path, max, out, len);
}

static int add_file(struct relmgr *m, struct announce *a, uint8_t role, uint32_t version,
		    const uint8_t *buf, size_t len)
{
	if (a->count >= SHOAL_ANNOUNCE_FILES_MAX)
		return SHOAL_EFULL;
	if (len > UINT32_MAX)
		return SHOAL_ETOOBIG;
	struct announce_file *f = &a->files[a->count];
	f->role = role;
	f->version = version;
	f->length = (uint32_t)len;
	crypto_hash_sha256(f->sha256, buf, len);
	int rc = blobs_put(m->blobs, f->sha256, buf, len);
	if (rc == 0)
		a->count++;
	return rc;
}

/* signed.meta[name].version from a parsed timestamp or snapshot. */
static int64_t meta_version(const uint8_t *buf, size_t len, const char *name)
{
	json_t *j = json_loadb((const char *)buf, len, 0, NULL);
	json_t *v = json_object_get(json_object_get(json_object_get(json_object_get(j, "signed"),
								    "meta"),
						    name),
				    "version");
	int64_t out = json_is_integer(v) ? json_integer_value(v) : -1;
	json_decref(j);
	return out;
}

/* Loads "V.NAME" or else "NAME" from the repository. */
static int read_versioned(const char *repo_dir, int64_t version, const char *name, size_t max,
			  uint8_t **out, size_t *len)
{
	char vname[128];
	snprintf(vname, sizeof(vname), "%lld.%s", (long long)version, name);
	int rc = read_meta(repo_dir, vname, max, out, len);
	if (rc == SHOAL_ENOTFOUND)
		rc = read_meta(repo_dir, name, max, out, len);
	return rc;
}

/* Puts every target of a targets metadata file into the blob store. */
static int ingest_targets(struct relmgr *m, const char *repo_dir, const uint8_t *buf,
			  size_t len, char *err, size_t errlen)
{
	json_t *j = json_loadb((const char *)buf, len, 0, NULL);
	json_t *targets = json_object_get(json_object_get(j, "signed"), "targets");
	if (!json_is_object(targets)) {
		json_decref(j);
		snprintf(err, errlen, "targets metadata has no targets object");
		return SHOAL_EPROTO;
	}
	int rc = 0;
	size_t count = 0;
	const char *name;
	json_t *info;
	json_object_foreach(targets, name, info)
	{
		if (++count > SHOAL_RELEASE_TARGETS_MAX) {
			snprintf(err, errlen, "over %d targets", SHOAL_RELEASE_TARGETS_MAX);
			rc = SHOAL_EFULL;
			break;
		}
		const char *hex = json_string_value(
			json_object_get(json_object_get(info, "hashes"), "sha256"));
		uint8_t hash[32];
		if (!hex || strlen(hex) != 64 || hex_decode(hex, hash, 32) != 0) {
			snprintf(err, errlen, "target %s has no sha256", name);
			rc = SHOAL_EPROTO;
			break;
		}
		/* Consistent snapshots: targets/DIR/HASH.BASENAME. */
		const char *slash = strrchr(name, '/');
		const char *base = slash ? slash + 1 : name;
		int dir_len = slash ? (int)(slash - name + 1) : 0;
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/targets/%.*s%s.%s", repo_dir, dir_len, name, hex,
			 base);
		if (access(path, R_OK) != 0)
			snprintf(path, sizeof(path), "%s/targets/%s", repo_dir, name);
		FILE *f = fopen(path, "rb");
		if (!f) {
			snprintf(err, errlen, "target %s: cannot open %s: %s", name, path,
				 strerror(errno));
			rc = SHOAL_ENOTFOUND;
			break;
		}
		json_int_t want = json_integer_value(json_object_get(info, "length"));
		if (want < 0 || (uint64_t)want > SHOAL_BLOB_BYTES_MAX) {
			fclose(f);
			snprintf(err, errlen, "target %s: length out of range", name);
			rc = SHOAL_ETOOBIG;
			break;
		}
		uint8_t *data = malloc((size_t)want + 1);
		size_t n = data ? fread(data, 1, (size_t)want + 1, f) : 0;
		fclose(f);
		if (!data) {
			rc = SHOAL_ENOMEM;
			break;
		}
		/* A file that is not what the metadata says is left out: every
		 * node will then reject the release at this target. */
		if (n == (size_t)want && blobs_put(m->blobs, hash, data, n) == 0) {
			free(data);
			continue;
		}
		free(data);
		log_warn("publish_target_mismatch", "target=%s path=%s", name, path);
	}
	json_decref(j);
	return rc;
}

/* The lowest N >= 2 with a metadata/N.root.json in the repository (2 if
 * none: the scan then finds nothing). */
static uint32_t lowest_root_version(const char *repo_dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/metadata", repo_dir);
	DIR *d = opendir(path);
	uint32_t lowest = 0;
	if (!d)
		return 2;
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(e->d_name, &end, 10);
		if (errno == 0 && end != e->d_name && e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
		    strcmp(end, ".root.json") == 0 && v >= 2 && v < 10000 &&
		    (lowest == 0 || v < lowest))
			lowest = (uint32_t)v;
	}
	closedir(d);
	assert(lowest == 0 || lowest >= 2);
	return lowest ? lowest : 2;
}

int relmgr_ingest_repo(struct relmgr *m, const char *repo_dir, struct announce *out,
		       char *err, size_t errlen)
{
	assert(m && repo_dir && out);
	memset(out, 0, sizeof(*out));
	uint8_t *ts = NULL, *snap = NULL, *targ = NULL;
	size_t ts_len = 0, snap_len = 0, targ_len = 0;
	int rc = read_meta(repo_dir, "timestamp.json", SHOAL_TUF_TIMESTAMP_BYTES_MAX, &ts,
			   &ts_len);
	if (rc) {
		snprintf(err, errlen, "%s/metadata/timestamp.json: %s", repo_dir,
			 shoal_strerror(rc));
		goto out;
	}
	int64_t snap_v = meta_version(ts, ts_len, "snapshot.json");
	if (snap_v < 1) {
		snprintf(err, errlen, "timestamp.json names no snapshot version");
		rc = SHOAL_EPROTO;
		goto out;
	}
	rc = read_versioned(repo_dir, snap_v, "snapshot.json", SHOAL_TUF_SNAPSHOT_BYTES_MAX,
			    &snap, &snap_len);
	if (rc) {
		snprintf(err, errlen, "snapshot version %lld: %s", (long long)snap_v,
			 shoal_strerror(rc));
		goto out;
	}
	int64_t targ_v = meta_version(snap, snap_len, "targets.json");
	if (targ_v < 1) {
		snprintf(err, errlen, "snapshot names no targets version");
		rc = SHOAL_EPROTO;
		goto out;
	}
	rc = read_versioned(repo_dir, targ_v, "targets.json", SHOAL_TUF_TARGETS_BYTES_MAX, &targ,
			    &targ_len);
	if (rc) {
		snprintf(err, errlen, "targets version %lld: %s", (long long)targ_v,
			 shoal_strerror(rc));
		goto out;
	}
	/* Root versions 2..N (or from the lowest one above 1 present: an
	 * upstream pull lays out the chain from the node's trust anchor on),
	 * newest last, as many as fit beside the others. */
	uint32_t lowest_root = lowest_root_version(repo_dir);
	uint32_t newest_root = 1;
	for (uint32_t v = lowest_root; v < 10000; v++) {
		char name[64];
		snprintf(name, sizeof(name), "%u.root.json", v);
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/metadata/%s", repo_dir, name);
		if (access(path, R_OK) != 0)
			break;
		newest_root = v;
	}
	uint32_t first_root = newest_root >= lowest_root + SHOAL_ANNOUNCE_FILES_MAX - 3
				      ? newest_root - (SHOAL_ANNOUNCE_FILES_MAX - 3) + 1
				      : lowest_root;
	for (uint32_t v = first_root; v <= newest_root && v >= 2; v++) {
		char name[64];
		snprintf(name, sizeof(name), "%u.root.json", v);
		uint8_t *root;
		size_t root_len;
		rc = read_meta(repo_dir, name, SHOAL_TUF_ROOT_BYTES_MAX, &root, &root_len);
		if (rc == 0) {
			rc = add_file(m, out, ANNOUNCE_ROOT, v, root, root_len);
			free(root);
		}
		if (rc) {
			snprintf(err, errlen, "%s: %s", name, shoal_strerror(rc));
			goto out;
		}
	}
	if ((rc = add_file(m, out, ANNOUNCE_TIMESTAMP,
			   (uint32_t)meta_version(ts, ts_len, "snapshot.json"), ts, ts_len)) ||
	    (rc = add_file(m, out, ANNOUNCE_SNAPSHOT, (uint32_t)snap_v, snap, snap_len)) ||
	    (rc = add_file(m, out, ANNOUNCE_TARGETS, (uint32_t)targ_v, targ, targ_len))) {
		snprintf(err, errlen, "storing metadata: %s", shoal_strerror(rc));
		goto out;
	}
	rc = ingest_targets(m, repo_dir, targ, targ_len, err, errlen);
out:
	free(ts);
	free(snap);
	free(targ);
	return rc;
}

/* --- processing an announce ---------------------------------------------------- */

struct mesh_fetch {
	struct relmgr *m;
	const struct announce *ann;
	const uint8_t *announcer;
	relmgr_blob_fn fetch;
	void *fetch_arg;
	bool fetch_failed; /* a blob could not be had (as opposed to verified bad) */
	char err[256];
};

/* The TUF client's fetcher over the mesh: "mesh:/NAME" is the announce's
 * blob for NAME; names it does not list do not exist (which is how the
 * client learns where the root chain ends). */
static int mesh_fetcher(void *arg, const char *url, size_t max_len, uint8_t **out,
			size_t *len)
{
	struct mesh_fetch *mf = arg;
	const char *name = strrchr(url, '/');
	name = name ? name + 1 : url;
	const struct announce_file *f = announce_lookup(mf->ann, name);
	if (!f)
		return SHOAL_ENOTFOUND;
	if (f->length > max_len)
		return SHOAL_ETOOBIG;
	int rc = mf->fetch(mf->fetch_arg, f->sha256, f->length, mf->announcer, mf->err,
			   sizeof(mf->err));
	if (rc) {
		mf->fetch_failed = true;
		return rc;
	}
	return blobs_read(mf->m->blobs, f->sha256, max_len, out, len);
}

/* Percent-encodes a target name into one file name component. */
static void encode_name(const char *in, char *out, size_t cap)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
		bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			    (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-' ||
			    *p == '~';
		if (keep && !(o == 0 && *p == '.')) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	out[o] = '\0';
}

/* Fetches, checks and installs every top-level target of the verified
 * targets metadata; fills *summary with [{name,length,sha256}]. */
/* Checks a stored blob against a target's signed length and hashes,
 * reading it once: its SHA-256 is its name in the store (checked when it
 * entered, by hashing), so only the length and a SHA-512 remain. As
 * tuf_check_hashes: any other algorithm fails (SHOAL_EPROTO). */
static int check_target(struct blobs *blobs, const uint8_t hash[32], const json_t *hashes,
			uint64_t length)
{
	bool want512 = false;
	uint8_t w512[BLOB_SHA512_BYTES];
	const char *alg;
	json_t *v;
	json_object_foreach((json_t *)hashes, alg, v) {
		const char *hex = json_string_value(v);
		if (strcmp(alg, "sha256") == 0) {
			uint8_t w[32];
			if (!hex || hex_decode(hex, w, sizeof(w)) != 0)
				return SHOAL_EPROTO;
			if (sodium_memcmp(w, hash, sizeof(w)) != 0)
				return SHOAL_EBADMAC;
		} else if (strcmp(alg, "sha512") == 0) {
			if (!hex || hex_decode(hex, w512, sizeof(w512)) != 0)
				return SHOAL_EPROTO;
			want512 = true;
		} else {
			return SHOAL_EPROTO;
		}
	}
	uint64_t size = 0;
	int rc;
	if (want512) {
		uint8_t got[BLOB_SHA512_BYTES];
		rc = blobs_sha512(blobs, hash, got, &size);
		if (rc == 0 && sodium_memcmp(got, w512, sizeof(got)) != 0)
			rc = SHOAL_EBADMAC;
	} else {
		rc = blobs_size(blobs, hash, &size);
	}
	if (rc == 0 && size != length)
		rc = SHOAL_EBADMAC;
	return rc;
}

static int install_targets(struct relmgr *m, struct mesh_fetch *mf, const struct tuf_md *tm,
			   json_t **summary, char *err, size_t errlen)
{
	int64_t version = tm->version;
	json_t *targets = json_object_get(tm->signed_obj, "targets");
	*summary = json_array();
	if (!json_is_object(targets) || !*summary) {
		snprintf(err, errlen, "trusted targets.json has no targets object");
		return SHOAL_EIO;
	}
	if (json_object_size(targets) > SHOAL_RELEASE_TARGETS_MAX) {
		snprintf(err, errlen, "targets: over %d targets", SHOAL_RELEASE_TARGETS_MAX);
		return SHOAL_EFULL;
	}
	/* Staged beside the final directory and renamed into place whole, so
	 * DATA/releases/V only ever holds a complete verified release. */
	char stage[PATH_MAX], final_dir[PATH_MAX];
	snprintf(stage, sizeof(stage), "%s/.%lld.tmp", m->releases_dir, (long long)version);
	snprintf(final_dir, sizeof(final_dir), "%s/%lld", m->releases_dir, (long long)version);
	struct stat st;
	bool installed = stat(final_dir, &st) == 0;
	if (!installed && mkdirs(stage) != 0) {
		snprintf(err, errlen, "cannot create %s", stage);
		return SHOAL_EIO;
	}
	int rc = 0;
	const char *name;
	json_t *info;
	json_object_foreach(targets, name, info)
	{
		json_t *hashes = json_object_get(info, "hashes");
		json_int_t length = json_integer_value(json_object_get(info, "length"));
		const char *hex = json_string_value(json_object_get(hashes, "sha256"));
		uint8_t hash[32];
		if (!hex || strlen(hex) != 64 || hex_decode(hex, hash, 32) != 0) {
			snprintf(err, errlen, "target %s: no sha256 hash to fetch it by", name);
			rc = SHOAL_EPROTO;
			break;
		}
		if (length < 0 || (uint64_t)length > SHOAL_TUF_TARGET_BYTES_MAX) {
			snprintf(err, errlen, "target %s: length %lld out of bounds", name,
				 (long long)length);
			rc = SHOAL_ETOOBIG;
			break;
		}
		json_array_append_new(*summary, json_pack("{s:s, s:I, s:s}", "name", name,
							  "length", length, "sha256", hex));
		if (installed)
			continue;
		char why[256] = "";
		rc = mf->fetch(mf->fetch_arg, hash, (uint64_t)length, mf->announcer, why,
			       sizeof(why));
		if (rc)
			mf->fetch_failed = true;
		if (rc == 0)
			rc = check_target(m->blobs, hash, hashes, (uint64_t)length);
		if (rc) {
			snprintf(err, errlen, "target %s: %s", name,
				 rc == SHOAL_EBADMAC ? "length or hashes do not match the "
						       "signed targets metadata"
				 : rc == SHOAL_EPROTO ? "a hash shoal cannot check (sha256 and "
							"sha512 only)"
				 : why[0]	     ? why
						     : shoal_strerror(rc));
			break;
		}
		char enc[PATH_MAX / 4], dst[PATH_MAX];
		encode_name(name, enc, sizeof(enc));
		if (snprintf(dst, sizeof(dst), "%s/%s", stage, enc) >= (int)sizeof(dst))
			rc = SHOAL_ETOOBIG;
		if (rc == 0)
			rc = blobs_link(m->blobs, hash, dst);
		if (rc) {
			snprintf(err, errlen, "target %s: cannot install it", name);
			break;
		}
	}
	if (!installed && rc == 0 && rename(stage, final_dir) != 0) {
		snprintf(err, errlen, "cannot install %s: %s", final_dir, strerror(errno));
		rc = SHOAL_EIO;
	}
	if (!installed && rc == 0) { /* the rename, durable */
		int dfd = open(m->releases_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (!installed && rc != 0) {
		/* Nothing partial stays where releases live. */
		char cmd_dir[PATH_MAX];
		snprintf(cmd_dir, sizeof(cmd_dir), "%s", stage);
		DIR *d = opendir(cmd_dir);
		if (d) {
			struct dirent *e;
			while ((e = readdir(d))) {
				if (e->d_name[0] == '.' && (e->d_name[1] == '\0' ||
							    strcmp(e->d_name, "..") == 0))
					continue;
				char p[2 * PATH_MAX];
				snprintf(p, sizeof(p), "%s/%s", cmd_dir, e->d_name);
				unlink(p);
			}
			closedir(d);
		}
		rmdir(cmd_dir);
	}
	return rc;
}

/* The TUF client workflow for one announce, from the node's trust anchor:
 * on success tm holds the targets metadata now trusted, also kept with the
 * announce's row for retries. */
static int refresh(struct relmgr *m, const struct record *ann, struct mesh_fetch *mf,
		   int64_t now_s, bool final, int64_t ts_v, int64_t targ_v, struct tuf_md *tm,
		   char *err, size_t errlen)
{
	/* The operator's anchor (shoal init --root, shoal trust set-root) is
	 * where every refresh starts from, unless rotations took us further. */
	char md[PATH_MAX];
	int rc = anchor_prepare(m->data_dir, md, sizeof(md), err, errlen);
	if (rc) {
		if (rc == SHOAL_ENOTFOUND)
			snprintf(err, errlen, "no trusted root on this node (shoal trust "
			     "set-root)");
		set_state(m, ann, ts_v, targ_v, "rejected", err, NULL);
		return SHOAL_ESTATE;
	}
	struct tuf_fetcher fetcher = {mesh_fetcher, mf};
	struct tuf_client *c = NULL;
	rc = tuf_client_new(m->metadata_dir, "mesh:", &fetcher, &c);
	if (rc == 0)
		rc = tuf_client_refresh(c, now_s);
	if (rc) {
		const char *why = c ? tuf_client_error(c) : shoal_strerror(rc);
		if (mf->err[0])
			snprintf(err, errlen, "%s (%s)", why, mf->err);
		else
			snprintf(err, errlen, "%s", why);
		tuf_client_free(c);
		if (mf->fetch_failed && !final) {
			set_state(m, ann, ts_v, targ_v, "fetching", err, NULL);
			return SHOAL_ECONN;
		}
		set_state(m, ann, ts_v, targ_v, "rejected", err, NULL);
		return rc;
	}
	tuf_client_free(c);
	/* The trusted targets now: the announce's, unless it named files the
	 * client never needed. */
	char trust_dir[PATH_MAX];
	snprintf(trust_dir, sizeof(trust_dir), "%s/trust", m->data_dir);
	uint8_t *buf = NULL;
	size_t len = 0;
	rc = read_meta(trust_dir, "targets.json", SHOAL_TUF_METADATA_BYTES_MAX, &buf, &len);
	if (rc == 0)
		rc = tuf_md_parse(buf, len, TUF_TYPE_TARGETS, tm);
	if (rc) {
		free(buf);
		snprintf(err, errlen, "trusted targets.json unreadable: %s", shoal_strerror(rc));
		set_state(m, ann, ts_v, targ_v, "rejected", err, NULL);
		return rc;
	}
	set_state_v(m, ann, ts_v, tm->version, "fetching", NULL, NULL, buf, len);
	free(buf);
	return 0;
}

int relmgr_process(struct relmgr *m, const struct record *ann, int64_t now_s, bool final,
		   relmgr_blob_fn fetch, void *fetch_arg, int64_t *targets_version, char *err,
		   size_t errlen)
{
	assert(m && ann && fetch && targets_version && err && errlen > 0);
	err[0] = '\0';
	*targets_version = 0;
	struct announce a;
	int rc = announce_decode(ann->body, ann->body_len, &a);
	if (rc) {
		snprintf(err, errlen, "announce: malformed body (%s)", shoal_strerror(rc));
		set_state(m, ann, 0, 0, "rejected", err, NULL);
		return rc;
	}
	int64_t ts_v = 0, targ_v = 0;
	for (uint8_t i = 0; i < a.count; i++) {
		if (a.files[i].role == ANNOUNCE_TIMESTAMP)
			ts_v = a.files[i].version;
		if (a.files[i].role == ANNOUNCE_TARGETS)
			targ_v = a.files[i].version;
	}
	set_state(m, ann, ts_v, targ_v, "fetching", NULL, NULL);
	struct mesh_fetch mf = {.m = m, .ann = &a, .announcer = ann->author, .fetch = fetch,
				.fetch_arg = fetch_arg};
	struct tuf_md tm;
	if (load_verified(m, ann, now_s, &tm) != 0) {
		rc = refresh(m, ann, &mf, now_s, final, ts_v, targ_v, &tm, err, errlen);
		if (rc)
			return rc;
	}
	targ_v = tm.version;
	json_t *summary = NULL;
	rc = install_targets(m, &mf, &tm, &summary, err, errlen);
	tuf_md_clear(&tm);
	char *targets_json = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
	json_decref(summary);
	if (rc) {
		bool retry = mf.fetch_failed && !final;
		set_state(m, ann, ts_v, targ_v, retry ? "fetching" : "rejected", err, targets_json);
		free(targets_json);
		return retry ? SHOAL_ECONN : rc;
	}
	set_state(m, ann, ts_v, targ_v, "verified", NULL, targets_json);
	free(targets_json);
	*targets_version = targ_v;
	return 0;
}
