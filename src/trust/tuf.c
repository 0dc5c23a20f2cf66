/*
 * tuf.c — the TUF 1.0 client workflow (specification §5.1–5.7).
 *
 *   5.1 fix the update start time      (the caller's now_s, read once)
 *   5.2 load the trusted root          (metadata_dir/root.json, self-signed)
 *   5.3 root chain: N+1.root.json until none, each signed by a threshold of
 *       the old and the new root keys and numbered exactly N+1; then expiry;
 *       if timestamp or snapshot keys changed, forget those two files
 *   5.4 timestamp: signatures, rollback (own and snapshot version), expiry
 *   5.5 snapshot: length/hashes/version from timestamp, signatures, no
 *       targets role dropped or rolled back, expiry
 *   5.6 targets: length/hashes/version from snapshot, signatures, expiry;
 *       delegated roles the same, loaded during the target search
 *   5.7 target: at most its signed length, every hash checked
 *
 * Nothing is written to the metadata directory until it has passed every
 * check of its step; files are replaced atomically (temp file, fsync,
 * rename). Local copies of timestamp/snapshot/targets are used only for
 * rollback checks, and a local snapshot or targets file is reused instead of
 * fetched only if it verifies and is the version its referrer now lists.
 */
#include "trust/tuf.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/file.h"
#include "shoal/hex.h"
#include "shoal/log.h"
#include "trust/cjson.h"

struct loaded_role {
	char name[SHOAL_TUF_ROLE_NAME_BYTES_MAX + 1];
	struct tuf_md md;
};

struct tuf_client {
	char dir[SHOAL_PATH_BYTES_MAX];
	char url[SHOAL_URL_BYTES_MAX]; /* ends with '/' */
	struct tuf_fetcher fetcher;
	int64_t now_s;
	bool refreshed;
	struct tuf_md root, timestamp, snapshot, targets;
	struct loaded_role *roles; /* delegated roles loaded this refresh */
	size_t roles_count;
	char err[512];
};

static int fail(struct tuf_client *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct tuf_client *c, int rc, const char *fmt, ...)
{
	assert(rc < 0);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(c->err) - 24)
		snprintf(c->err + n, sizeof(c->err) - (size_t)n, " (%s)", shoal_strerror(rc));
	char quoted[sizeof(c->err) * 2];
	shoal_log_quote(c->err, quoted, sizeof(quoted));
	log_warn("tuf_failed", "step=%s", quoted);
	return rc;
}

const char *tuf_client_error(const struct tuf_client *c)
{
	return c->err;
}

/* Percent-encodes every byte outside [A-Za-z0-9._~-] (and '/' unless
 * keep_slash), so a role or target name can never leave its directory. */
static int encode_name(const char *in, bool keep_slash, char *out, size_t out_size)
{
	static const char hexd[] = "0123456789ABCDEF";
	assert(in && out);
	assert(out_size > 0);
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("._~-", *p) ||
			     (keep_slash && *p == '/');
		if (o + (plain ? 1 : 3) >= out_size)
			return SHOAL_ETOOBIG;
		if (plain) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	out[o] = '\0';
	assert(o < out_size);
	return 0;
}

/* ---- files ---- */

/* Writes dir/name atomically: a temp file in dir, fsync, rename, fsync dir. */
static int write_atomic(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[SHOAL_PATH_BYTES_MAX], tmp[SHOAL_PATH_BYTES_MAX];
	assert(dir && name && strchr(name, '/') == NULL);
	assert(buf || len == 0);
	int n1 = snprintf(path, sizeof(path), "%s/%s", dir, name);
	int n2 = snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, name);
	if (n1 < 0 || (size_t)n1 >= sizeof(path) || n2 < 0 || (size_t)n2 >= sizeof(tmp))
		return SHOAL_ETOOBIG;
	int fd = mkstemp(tmp);
	if (fd < 0)
		return SHOAL_EIO;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto bad;
		off += (size_t)n;
	}
	if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
		goto bad;
	if (close(fd) != 0) {
		fd = -1;
		goto bad;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto bad;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd); /* best effort: the rename is already visible */
		close(dfd);
	}
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return SHOAL_EIO;
}

static void remove_file(const char *dir, const char *name)
{
	char path[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n > 0 && (size_t)n < sizeof(path))
		(void)unlink(path);
}

/* ---- client lifetime ---- */

static void clear_loaded(struct tuf_client *c)
{
	tuf_md_clear(&c->root);
	tuf_md_clear(&c->timestamp);
	tuf_md_clear(&c->snapshot);
	tuf_md_clear(&c->targets);
	for (size_t i = 0; i < c->roles_count; i++)
		tuf_md_clear(&c->roles[i].md);
	free(c->roles);
	c->roles = NULL;
	c->roles_count = 0;
	c->refreshed = false;
}

int tuf_client_new(const char *metadata_dir, const char *metadata_url,
		   const struct tuf_fetcher *fetcher, struct tuf_client **out)
{
	assert(out);
	*out = NULL;
	if (!metadata_dir || !metadata_url || !fetcher || !fetcher->fetch)
		return SHOAL_EINVAL;
	size_t ulen = strlen(metadata_url);
	if (strlen(metadata_dir) >= SHOAL_PATH_BYTES_MAX - 300 || ulen == 0 ||
	    ulen + 2 > SHOAL_URL_BYTES_MAX - 400)
		return SHOAL_EINVAL;
	struct tuf_client *c = calloc(1, sizeof(*c));
	if (!c)
		return SHOAL_ENOMEM;
	strcpy(c->dir, metadata_dir);
	snprintf(c->url, sizeof(c->url), "%s%s", metadata_url,
		 metadata_url[ulen - 1] == '/' ? "" : "/");
	c->fetcher = *fetcher;
	*out = c;
	return 0;
}

void tuf_client_free(struct tuf_client *c)
{
	if (!c)
		return;
	clear_loaded(c);
	free(c);
}

void tuf_target_clear(struct tuf_target *t)
{
	if (!t)
		return;
	json_decref(t->info);
	memset(t, 0, sizeof(*t));
}

/* ---- helpers over trusted metadata ---- */

static const json_t *meta_entry(const struct tuf_md *md, const char *file)
{
	return json_object_get(json_object_get(md->signed_obj, "meta"), file);
}

static int64_t json_int(const json_t *o, const char *k, int64_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* Fetches metadata file `file` (already encoded) with the version prefix
 * when consistent snapshots are on; at most max bytes. */
static int fetch_meta(struct tuf_client *c, int64_t version, const char *file, size_t max,
		      uint8_t **out, size_t *len)
{
	char url[SHOAL_URL_BYTES_MAX];
	int n = version > 0 ? snprintf(url, sizeof(url), "%s%" PRId64 ".%s", c->url, version, file)
			    : snprintf(url, sizeof(url), "%s%s", c->url, file);
	if (n < 0 || (size_t)n >= sizeof(url))
		return SHOAL_ETOOBIG;
	int rc = c->fetcher.fetch(c->fetcher.arg, url, max, out, len);
	assert(rc != 0 || *len <= max);
	return rc;
}

/* ---- 5.2, 5.3: root ---- */

static int load_trusted_root(struct tuf_client *c)
{
	char path[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/root.json", c->dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return fail(c, SHOAL_ETOOBIG, "trusted root: path too long");
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(path, SHOAL_TUF_ROOT_BYTES_MAX, &buf, &len);
	if (rc)
		return fail(c, rc, "trusted root: read %s", path);
	rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, &c->root);
	free(buf);
	if (rc)
		return fail(c, rc, "trusted root: parse %s", path);
	rc = tuf_md_verify(&c->root, "root", &c->root);
	if (rc)
		return fail(c, rc, "trusted root: not signed by a threshold of its own root keys");
	return 0;
}

/* The keys and threshold a root gives one role, for the rotation check. */
static json_t *role_keys(const struct tuf_md *root, const char *role)
{
	const json_t *r = json_object_get(json_object_get(root->signed_obj, "roles"), role);
	const json_t *keys = json_object_get(root->signed_obj, "keys");
	json_t *out = json_object();
	json_t *ks = json_object();
	if (!out || !ks) {
		json_decref(out);
		json_decref(ks);
		return NULL;
	}
	const json_t *ids = json_object_get(r, "keyids");
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		json_t *k = json_object_get(keys, id);
		json_object_set(ks, id, k ? k : json_null());
	}
	json_object_set_new(out, "keys", ks);
	json_object_set(out, "threshold", json_object_get(r, "threshold"));
	return out;
}

static bool role_rotated(const json_t *before, const json_t *after)
{
	return !before || !after || !json_equal((json_t *)before, (json_t *)after);
}

int tuf_root_check_next(const struct tuf_md *trusted, const struct tuf_md *next, char *err,
			size_t err_size)
{
	assert(trusted && trusted->type == TUF_TYPE_ROOT && trusted->signed_obj);
	assert(next && next->type == TUF_TYPE_ROOT && next->signed_obj && err && err_size);
	err[0] = '\0';
	/* 5.3.4: a threshold of the old root keys, then of the new ones */
	int rc = tuf_md_verify(trusted, "root", next);
	if (rc) {
		snprintf(err, err_size, "not signed by a threshold of the trusted root keys");
		return rc;
	}
	rc = tuf_md_verify(next, "root", next);
	if (rc) {
		snprintf(err, err_size, "not signed by a threshold of its own root keys");
		return rc;
	}
	/* 5.3.5: the signed version must be exactly N+1 */
	if (next->version != trusted->version + 1) {
		snprintf(err, err_size, "file says version %" PRId64, next->version);
		return next->version <= trusted->version ? SHOAL_EREPLAY : SHOAL_EPROTO;
	}
	return 0;
}

static int update_root(struct tuf_client *c)
{
	json_t *ts_keys = role_keys(&c->root, "timestamp");
	json_t *sn_keys = role_keys(&c->root, "snapshot");
	int rc = 0;
	for (int i = 0; i < SHOAL_TUF_ROOT_ROTATIONS_MAX; i++) {
		int64_t next = c->root.version + 1;
		uint8_t *buf = NULL;
		size_t len = 0;
		rc = fetch_meta(c, next, "root.json", SHOAL_TUF_ROOT_BYTES_MAX, &buf, &len);
		if (rc == SHOAL_ENOTFOUND) {
			rc = 0;
			break; /* 5.3.3: no N+1, the chain ends here */
		}
		if (rc) {
			fail(c, rc, "root %" PRId64 ": download", next);
			goto out;
		}
		struct tuf_md nr;
		rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, &nr);
		free(buf);
		if (rc) {
			fail(c, rc, "root %" PRId64 ": parse", next);
			goto out;
		}
		char why[128];
		rc = tuf_root_check_next(&c->root, &nr, why, sizeof(why)); /* 5.3.4, 5.3.5 */
		if (rc) {
			tuf_md_clear(&nr);
			fail(c, rc, "root %" PRId64 ": %s", next, why);
			goto out;
		}
		rc = write_atomic(c->dir, "root.json", nr.raw, nr.raw_len);
		if (rc) {
			tuf_md_clear(&nr);
			fail(c, rc, "root %" PRId64 ": write %s/root.json", next, c->dir);
			goto out;
		}
		tuf_md_clear(&c->root);
		c->root = nr;
		/* 5.3.11: timestamp or snapshot keys rotated -> forget those two
		 * files (fast-forward recovery). Done per accepted root, so a
		 * later failure in the chain cannot keep them. */
		json_t *ts_now = role_keys(&c->root, "timestamp");
		json_t *sn_now = role_keys(&c->root, "snapshot");
		if (role_rotated(ts_keys, ts_now) || role_rotated(sn_keys, sn_now)) {
			remove_file(c->dir, "timestamp.json");
			remove_file(c->dir, "snapshot.json");
		}
		json_decref(ts_now);
		json_decref(sn_now);
	}
	/* 5.3.10: freeze */
	if (c->root.expires_s <= c->now_s) {
		rc = fail(c, SHOAL_EEXPIRED, "root %" PRId64 ": expired", c->root.version);
		goto out;
	}
out:
	json_decref(ts_keys);
	json_decref(sn_keys);
	return rc;
}

/* Loads a local copy of a top-level role if it parses and carries a
 * threshold of signatures from the current root; expiry is not checked
 * (an old copy still bounds rollback). Returns true if md was filled. */
static bool load_local(struct tuf_client *c, const char *file, enum tuf_type type,
		       const struct tuf_md *delegator, const char *role, size_t max,
		       struct tuf_md *md)
{
	char path[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", c->dir, file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (shoal_read_file(path, max, &buf, &len) != 0)
		return false;
	int rc = tuf_md_parse(buf, len, type, md);
	free(buf);
	if (rc)
		return false;
	if (tuf_md_verify(delegator, role, md) != 0) {
		tuf_md_clear(md);
		return false;
	}
	return true;
}

/* ---- 5.4: timestamp ---- */

static int update_timestamp(struct tuf_client *c)
{
	struct tuf_md old;
	bool have_old = load_local(c, "timestamp.json", TUF_TYPE_TIMESTAMP, &c->root, "timestamp",
				   SHOAL_TUF_TIMESTAMP_BYTES_MAX, &old);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct tuf_md nt;
	int rc = fetch_meta(c, 0, "timestamp.json", SHOAL_TUF_TIMESTAMP_BYTES_MAX, &buf, &len);
	if (rc) {
		fail(c, rc, "timestamp: download");
		goto out;
	}
	rc = tuf_md_parse(buf, len, TUF_TYPE_TIMESTAMP, &nt);
	free(buf);
	if (rc) {
		fail(c, rc, "timestamp: parse");
		goto out;
	}
	rc = tuf_md_verify(&c->root, "timestamp", &nt); /* 5.4.2 */
	if (rc) {
		tuf_md_clear(&nt);
		fail(c, rc, "timestamp: not signed by a threshold of the timestamp keys");
		goto out;
	}
	if (have_old) { /* 5.4.3 */
		if (nt.version < old.version) {
			rc = fail(c, SHOAL_EREPLAY, "timestamp: version %" PRId64 " is older than the trusted %" PRId64,
				  nt.version, old.version);
			tuf_md_clear(&nt);
			goto out;
		}
		if (nt.version == old.version) {
			/* Same version: nothing changed; keep the trusted copy. */
			tuf_md_clear(&nt);
			c->timestamp = old;
			have_old = false;
			goto check_expiry;
		}
		int64_t sv_old = json_int(meta_entry(&old, "snapshot.json"), "version", 0);
		int64_t sv_new = json_int(meta_entry(&nt, "snapshot.json"), "version", 0);
		if (sv_new < sv_old) {
			rc = fail(c, SHOAL_EREPLAY, "timestamp: snapshot version %" PRId64 " is older than the trusted %" PRId64,
				  sv_new, sv_old);
			tuf_md_clear(&nt);
			goto out;
		}
	}
	c->timestamp = nt;
check_expiry:
	if (c->timestamp.expires_s <= c->now_s) { /* 5.4.4 */
		rc = fail(c, SHOAL_EEXPIRED, "timestamp %" PRId64 ": expired", c->timestamp.version);
		tuf_md_clear(&c->timestamp);
		goto out;
	}
	rc = write_atomic(c->dir, "timestamp.json", c->timestamp.raw, c->timestamp.raw_len);
	if (rc)
		fail(c, rc, "timestamp: write %s/timestamp.json", c->dir);
out:
	if (have_old)
		tuf_md_clear(&old);
	return rc;
}

/* ---- 5.5, 5.6: snapshot, targets and delegated targets ---- */

/* Fetches and checks one metadata file its referrer lists in `fi` (version,
 * optional length and hashes): length bound, hashes, type, signatures from
 * delegator for role, version equal to fi's. A verified local copy of the
 * same version is used instead of a download. On success *md is filled;
 * *from_local says whether it came from disk. */
static int fetch_listed(struct tuf_client *c, const char *step, const char *file,
			enum tuf_type type, const json_t *fi, size_t max_default,
			const struct tuf_md *delegator, const char *role, struct tuf_md *md,
			bool *from_local)
{
	assert(json_is_object(fi)); /* checked by the referrer's tuf_md_parse */
	assert(delegator && delegator->signed_obj);
	int64_t version = json_int(fi, "version", 0);
	bool have_len = json_object_get(fi, "length") != NULL;
	int64_t length = json_int(fi, "length", -1);
	const json_t *hashes = json_object_get(fi, "hashes");
	size_t max = max_default;
	*from_local = false;
	assert(version >= 1);
	if (have_len) {
		if (length < 0 || (uint64_t)length > SHOAL_TUF_METADATA_BYTES_MAX)
			return fail(c, SHOAL_ETOOBIG, "%s: listed length %" PRId64 " is over the bound", step, length);
		max = (size_t)length;
	}
	if (load_local(c, file, type, delegator, role, max, md)) {
		if (md->version == version && md->expires_s > c->now_s &&
		    tuf_check_hashes(md->raw, md->raw_len, hashes, have_len, length) == 0) {
			*from_local = true;
			return 0;
		}
		tuf_md_clear(md);
	}
	uint8_t *buf = NULL;
	size_t len = 0;
	bool consistent = c->root.consistent_snapshot;
	int rc = fetch_meta(c, consistent ? version : 0, file, max, &buf, &len);
	if (rc)
		return fail(c, rc, "%s: download", step);
	rc = tuf_check_hashes(buf, len, hashes, have_len, length); /* 5.5.2 / 5.6.2 */
	if (rc) {
		free(buf);
		return fail(c, rc, "%s: length or hashes differ from what the referrer lists", step);
	}
	rc = tuf_md_parse(buf, len, type, md);
	free(buf);
	if (rc)
		return fail(c, rc, "%s: parse", step);
	rc = tuf_md_verify(delegator, role, md); /* 5.5.3 / 5.6.3 */
	if (rc) {
		tuf_md_clear(md);
		return fail(c, rc, "%s: not signed by a threshold of the %s keys", step, role);
	}
	if (md->version != version) { /* 5.5.4 / 5.6.4 */
		int64_t got = md->version;
		tuf_md_clear(md);
		return fail(c, SHOAL_EREPLAY, "%s: version %" PRId64 " but the referrer lists %" PRId64,
			    step, got, version);
	}
	return 0;
}

static int update_snapshot(struct tuf_client *c)
{
	const json_t *fi = meta_entry(&c->timestamp, "snapshot.json");
	struct tuf_md old, ns;
	bool have_old = load_local(c, "snapshot.json", TUF_TYPE_SNAPSHOT, &c->root, "snapshot",
				   SHOAL_TUF_METADATA_BYTES_MAX, &old);
	bool from_local = false;
	int rc = fetch_listed(c, "snapshot", "snapshot.json", TUF_TYPE_SNAPSHOT, fi,
			      SHOAL_TUF_SNAPSHOT_BYTES_MAX, &c->root, "snapshot", &ns, &from_local);
	if (rc)
		goto out;
	if (have_old && !from_local) { /* 5.5.5: no targets role dropped or rolled back */
		const char *name;
		json_t *ofi;
		json_object_foreach(json_object_get(old.signed_obj, "meta"), name, ofi) {
			const json_t *nfi = meta_entry(&ns, name);
			if (!nfi) {
				rc = fail(c, SHOAL_EREPLAY, "snapshot %" PRId64 ": drops %s", ns.version, name);
				break;
			}
			if (json_int(nfi, "version", 0) < json_int(ofi, "version", 0)) {
				rc = fail(c, SHOAL_EREPLAY, "snapshot %" PRId64 ": %s version %" PRId64 " is older than the trusted %" PRId64,
					  ns.version, name, json_int(nfi, "version", 0), json_int(ofi, "version", 0));
				break;
			}
		}
		if (rc) {
			tuf_md_clear(&ns);
			goto out;
		}
	}
	if (ns.expires_s <= c->now_s) { /* 5.5.6 */
		rc = fail(c, SHOAL_EEXPIRED, "snapshot %" PRId64 ": expired", ns.version);
		tuf_md_clear(&ns);
		goto out;
	}
	if (!from_local) {
		rc = write_atomic(c->dir, "snapshot.json", ns.raw, ns.raw_len);
		if (rc) {
			tuf_md_clear(&ns);
			fail(c, rc, "snapshot: write %s/snapshot.json", c->dir);
			goto out;
		}
	}
	c->snapshot = ns;
out:
	if (have_old)
		tuf_md_clear(&old);
	return rc;
}

/* Loads a targets role: "targets" from the root, or a delegated role from
 * its delegator. file_base is the encoded role name. */
static int update_targets_role(struct tuf_client *c, const char *role,
			       const struct tuf_md *delegator, struct tuf_md *out)
{
	char enc[SHOAL_TUF_ROLE_NAME_BYTES_MAX * 3 + 1], file[sizeof(enc) + 8], step[sizeof(enc) + 16];
	char listed[SHOAL_TUF_ROLE_NAME_BYTES_MAX + 8];
	assert(c->snapshot.signed_obj); /* snapshot is trusted before any targets role */
	assert(delegator && delegator->signed_obj);
	if (encode_name(role, false, enc, sizeof(enc)) != 0 || strlen(role) > SHOAL_TUF_ROLE_NAME_BYTES_MAX)
		return fail(c, SHOAL_ETOOBIG, "targets role name too long");
	snprintf(file, sizeof(file), "%s.json", enc);     /* local file and URL */
	snprintf(listed, sizeof(listed), "%s.json", role); /* the name snapshot lists */
	snprintf(step, sizeof(step), "role %s", enc);
	const json_t *fi = meta_entry(&c->snapshot, listed);
	if (!fi)
		return fail(c, SHOAL_ENOTFOUND, "%s: snapshot does not list %s", step, file);
	bool from_local = false;
	int rc = fetch_listed(c, step, file, TUF_TYPE_TARGETS, fi, SHOAL_TUF_TARGETS_BYTES_MAX,
			      delegator, role, out, &from_local);
	if (rc)
		return rc;
	if (out->expires_s <= c->now_s) { /* 5.6.5 */
		int64_t v = out->version;
		tuf_md_clear(out);
		return fail(c, SHOAL_EEXPIRED, "%s %" PRId64 ": expired", step, v);
	}
	if (!from_local) {
		rc = write_atomic(c->dir, file, out->raw, out->raw_len);
		if (rc) {
			tuf_md_clear(out);
			return fail(c, rc, "%s: write %s/%s", step, c->dir, file);
		}
	}
	return 0;
}

int tuf_client_refresh(struct tuf_client *c, int64_t now_s)
{
	assert(c);
	clear_loaded(c);
	c->err[0] = '\0';
	c->now_s = now_s; /* 5.1: one fixed time for every expiry check */
	int rc = load_trusted_root(c);
	if (!rc)
		rc = update_root(c);
	if (!rc)
		rc = update_timestamp(c);
	if (!rc)
		rc = update_snapshot(c);
	if (!rc)
		rc = update_targets_role(c, "targets", &c->root, &c->targets);
	if (rc) {
		clear_loaded(c);
		return rc;
	}
	c->refreshed = true;
	log_info("tuf_refreshed", "root=%" PRId64 " timestamp=%" PRId64 " snapshot=%" PRId64
		 " targets=%" PRId64, c->root.version, c->timestamp.version, c->snapshot.version,
		 c->targets.version);
	return 0;
}

/* ---- 5.6.7: the delegation search ---- */

/* Delegators are named by index, not pointer: c->roles moves on realloc. */
#define FROM_NONE (-1L)    /* the top-level targets role itself */
#define FROM_TARGETS (-2L) /* delegated by the top-level targets role */

static const struct tuf_md *role_md(const struct tuf_client *c, long idx)
{
	assert(idx >= FROM_TARGETS);
	assert(idx < (long)c->roles_count);
	return idx == FROM_NONE || idx == FROM_TARGETS ? &c->targets : &c->roles[idx].md;
}

static int delegated_role(struct tuf_client *c, const char *name, long from, long *out)
{
	for (size_t i = 0; i < c->roles_count; i++) {
		if (strcmp(c->roles[i].name, name) == 0) {
			*out = (long)i;
			return 0;
		}
	}
	const struct tuf_md *delegator = role_md(c, from);
	if (c->roles_count >= SHOAL_TUF_ROLES_LOADED_MAX)
		return fail(c, SHOAL_EFULL, "role %s: too many delegated roles loaded", name);
	struct tuf_md md;
	int rc = update_targets_role(c, name, delegator, &md);
	if (rc)
		return rc;
	struct loaded_role *nr = realloc(c->roles, (c->roles_count + 1) * sizeof(*nr));
	if (!nr) {
		tuf_md_clear(&md);
		return fail(c, SHOAL_ENOMEM, "role %s: out of memory", name);
	}
	c->roles = nr;
	snprintf(nr[c->roles_count].name, sizeof(nr[c->roles_count].name), "%s", name);
	nr[c->roles_count].md = md;
	*out = (long)c->roles_count;
	c->roles_count++;
	return 0;
}

static bool delegation_covers(const json_t *r, const char *target)
{
	const json_t *paths = json_object_get(r, "paths");
	const json_t *prefixes = json_object_get(r, "path_hash_prefixes");
	assert(target);
	assert(!(paths && prefixes)); /* rejected by tuf_md_parse */
	for (size_t i = 0; i < json_array_size(paths); i++)
		if (tuf_path_match(json_string_value(json_array_get(paths, i)), target))
			return true;
	if (json_array_size(prefixes)) {
		uint8_t h[crypto_hash_sha256_BYTES];
		char hex[2 * sizeof(h) + 1];
		crypto_hash_sha256(h, (const uint8_t *)target, strlen(target));
		hex_encode(h, sizeof(h), hex);
		for (size_t i = 0; i < json_array_size(prefixes); i++) {
			const char *p = json_string_value(json_array_get(prefixes, i));
			if (strncmp(hex, p, strlen(p)) == 0)
				return true;
		}
	}
	return false;
}

struct visit {
	const char *name; /* borrowed from metadata held by c */
	long from;        /* the delegator: FROM_NONE, FROM_TARGETS or a role index */
};

int tuf_client_find_target(struct tuf_client *c, const char *name, struct tuf_target *out)
{
	assert(c && name && out);
	memset(out, 0, sizeof(*out));
	if (!c->refreshed)
		return fail(c, SHOAL_ESTATE, "target %s: no successful refresh", name);
	if (strlen(name) == 0 || strlen(name) > SHOAL_TUF_TARGET_NAME_BYTES_MAX)
		return fail(c, SHOAL_EINVAL, "target: bad name length");
	/* Pre-order DFS with an explicit stack; every role pushes at most its
	 * delegation count, and at most SHOAL_TUF_DELEGATIONS_VISIT_MAX roles are
	 * visited, so the stack is bounded by the metadata already verified. */
	size_t cap = 64, top = 0;
	struct visit *stack = malloc(cap * sizeof(*stack));
	const char **seen = calloc(SHOAL_TUF_DELEGATIONS_VISIT_MAX, sizeof(*seen));
	size_t nseen = 0;
	int rc = SHOAL_ENOTFOUND;
	if (!stack || !seen) {
		rc = SHOAL_ENOMEM;
		goto out;
	}
	stack[top++] = (struct visit){"targets", FROM_NONE};
	while (top > 0 && nseen < SHOAL_TUF_DELEGATIONS_VISIT_MAX) {
		struct visit v = stack[--top];
		bool again = false;
		for (size_t i = 0; i < nseen && !again; i++)
			again = strcmp(seen[i], v.name) == 0;
		if (again)
			continue; /* 5.6.7.1: cycles */
		long idx = FROM_TARGETS;
		if (v.from != FROM_NONE) {
			rc = delegated_role(c, v.name, v.from, &idx);
			if (rc)
				goto out; /* a role that fails to load ends the search */
		}
		const struct tuf_md *md = role_md(c, idx);
		seen[nseen++] = v.name;
		const json_t *t = json_object_get(json_object_get(md->signed_obj, "targets"), name);
		if (t) {
			snprintf(out->name, sizeof(out->name), "%s", name);
			out->length = json_int(t, "length", 0);
			out->info = json_incref((json_t *)t);
			rc = 0;
			goto out;
		}
		const json_t *roles = json_object_get(json_object_get(md->signed_obj, "delegations"), "roles");
		size_t n = json_array_size(roles), first = top;
		for (size_t i = 0; i < n; i++) {
			const json_t *r = json_array_get(roles, i);
			if (!delegation_covers(r, name))
				continue;
			if (top == cap) {
				struct visit *ns = realloc(stack, 2 * cap * sizeof(*stack));
				if (!ns) {
					rc = SHOAL_ENOMEM;
					goto out;
				}
				stack = ns;
				cap *= 2;
			}
			stack[top++] = (struct visit){json_string_value(json_object_get(r, "name")), idx};
			if (json_is_true(json_object_get(r, "terminating"))) {
				/* 5.6.7.2.1: nothing after a terminating delegation is searched */
				memmove(stack, stack + first, (top - first) * sizeof(*stack));
				top -= first;
				first = 0;
				break;
			}
		}
		/* Reverse this role's children so the first listed is popped first. */
		for (size_t i = first, j = top; i + 1 < j; i++, j--) {
			struct visit tmp = stack[i];
			stack[i] = stack[j - 1];
			stack[j - 1] = tmp;
		}
	}
	rc = SHOAL_ENOTFOUND;
	fail(c, rc, "target %s: not in any trusted targets metadata", name);
out:
	free(stack);
	free(seen);
	assert(rc != 0 || out->info);
	return rc;
}

/* ---- 5.7: fetch target ---- */

int tuf_client_download_target(struct tuf_client *c, const struct tuf_target *t,
			       const char *target_base_url, const char *target_dir, bool *fetched)
{
	assert(c && t && t->info && fetched);
	*fetched = false;
	const json_t *hashes = json_object_get(t->info, "hashes");
	char local[SHOAL_TUF_TARGET_NAME_BYTES_MAX * 3 + 1];
	if (encode_name(t->name, false, local, sizeof(local)) != 0 || strlen(local) > 255)
		return fail(c, SHOAL_ETOOBIG, "target %s: name too long for a file", t->name);
	if (t->length < 0 || (uint64_t)t->length > SHOAL_TUF_TARGET_BYTES_MAX)
		return fail(c, SHOAL_ETOOBIG, "target %s: length %" PRId64 " over the bound", t->name,
			    t->length);
	char path[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", target_dir, local);
	if (n < 0 || (size_t)n >= sizeof(path))
		return fail(c, SHOAL_ETOOBIG, "target %s: path too long", t->name);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (shoal_read_file(path, (size_t)t->length, &buf, &len) == 0) {
		int ok = tuf_check_hashes(buf, len, hashes, true, t->length);
		free(buf);
		if (ok == 0)
			return 0; /* already there and verified: not fetched again */
	}
	/* URL: base + path, or dir/HASH.basename with consistent snapshots. */
	char rel[SHOAL_TUF_TARGET_NAME_BYTES_MAX + 2 * crypto_hash_sha512_BYTES + 2];
	if (c->root.consistent_snapshot) {
		const char *alg;
		json_t *hv;
		const char *first_hash = NULL;
		json_object_foreach((json_t *)hashes, alg, hv) {
			first_hash = json_string_value(hv);
			break;
		}
		/* The hash becomes part of a URL path: hex only. */
		if (!first_hash || strlen(first_hash) == 0 ||
		    strspn(first_hash, "0123456789abcdefABCDEF") != strlen(first_hash))
			return fail(c, SHOAL_EPROTO, "target %s: first hash is not hex", t->name);
		const char *slash = strrchr(t->name, '/');
		size_t dlen = slash ? (size_t)(slash - t->name) + 1 : 0;
		n = snprintf(rel, sizeof(rel), "%.*s%s.%s", (int)dlen, t->name, first_hash,
			     t->name + dlen);
	} else {
		n = snprintf(rel, sizeof(rel), "%s", t->name);
	}
	if (n < 0 || (size_t)n >= sizeof(rel))
		return fail(c, SHOAL_ETOOBIG, "target %s: name too long", t->name);
	char rel_enc[sizeof(rel) * 3], url[SHOAL_URL_BYTES_MAX];
	size_t blen = strlen(target_base_url);
	if (encode_name(rel, true, rel_enc, sizeof(rel_enc)) != 0 || blen == 0)
		return fail(c, SHOAL_ETOOBIG, "target %s: bad URL", t->name);
	n = snprintf(url, sizeof(url), "%s%s%s", target_base_url,
		     target_base_url[blen - 1] == '/' ? "" : "/", rel_enc);
	if (n < 0 || (size_t)n >= sizeof(url))
		return fail(c, SHOAL_ETOOBIG, "target %s: URL too long", t->name);
	int rc = c->fetcher.fetch(c->fetcher.arg, url, (size_t)t->length, &buf, &len);
	if (rc)
		return fail(c, rc, "target %s: download %s", t->name, url);
	rc = tuf_check_hashes(buf, len, hashes, true, t->length);
	if (rc) {
		free(buf);
		return fail(c, rc, "target %s: length or hashes differ from the signed targets metadata",
			    t->name);
	}
	if (mkdir(target_dir, 0755) != 0 && errno != EEXIST) {
		free(buf);
		return fail(c, SHOAL_EIO, "target %s: mkdir(%s): %s", t->name, target_dir, strerror(errno));
	}
	rc = write_atomic(target_dir, local, buf, len);
	free(buf);
	if (rc)
		return fail(c, rc, "target %s: write %s", t->name, path);
	*fetched = true;
	log_info("tuf_target", "name=%s length=%" PRId64, local, t->length);
	return 0;
}

/* ---- init ---- */

int tuf_init_root(const char *metadata_dir, const uint8_t *root_bytes, size_t len, char *err,
		  size_t err_size)
{
	assert(metadata_dir && err && err_size);
	err[0] = '\0';
	struct tuf_md md;
	int rc = tuf_md_parse(root_bytes, len, TUF_TYPE_ROOT, &md);
	if (rc) {
		snprintf(err, err_size, "trusted root: parse (%s)", shoal_strerror(rc));
		return rc;
	}
	rc = tuf_md_verify(&md, "root", &md);
	tuf_md_clear(&md);
	if (rc) {
		snprintf(err, err_size, "trusted root: not signed by a threshold of its root keys (%s)",
			 shoal_strerror(rc));
		return rc;
	}
	if (mkdir(metadata_dir, 0755) != 0 && errno != EEXIST) {
		snprintf(err, err_size, "mkdir(%s): %s", metadata_dir, strerror(errno));
		return SHOAL_EIO;
	}
	rc = write_atomic(metadata_dir, "root.json", root_bytes, len);
	if (rc)
		snprintf(err, err_size, "write %s/root.json failed", metadata_dir);
	return rc;
}
