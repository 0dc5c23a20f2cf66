/*
 * upstream.c — pulls an HTTP(S) TUF repository into the mesh (see
 * upstream.h). One pull:
 *
 *   seed        DATA/upstream/metadata/root.json := the node's trusted root,
 *               unless it already holds that root or a newer self-signed one
 *   refresh     the TUF client workflow (spec §5.1-5.6) against
 *               URL/metadata/; its error names the TUF step that failed
 *   (stop here when the verified timestamp is not newer than the last one
 *    injected)
 *   download    every top-level target from URL/targets/ into the target
 *               cache, at most its signed length, every signed hash checked
 *   root-chain  N.root.json from the trust anchor's version to the trusted
 *               root, each link checked (tuf_root_check_next)
 *   layout      DATA/upstream/repo: metadata/{N.root.json, root.json,
 *               timestamp.json, S.snapshot.json, T.targets.json} and
 *               targets/NAME, from verified bytes only
 *   inject      the callback; then state.json records the versions
 *
 * A failed step leaves state.json as it was, so the next pull tries again;
 * whatever the client verified stays in its metadata directory (rollback
 * protection holds across failures and restarts).
 */
#include "runtime/upstream.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define UP_ERR_BYTES 512
/* Room under DATA/upstream for the longest name laid out beneath it. */
#define UP_DIR_BYTES_MAX (SHOAL_PATH_BYTES_MAX - SHOAL_TUF_TARGET_NAME_BYTES_MAX - 128)

struct up_status {
	bool ok;
	uint64_t attempts, failures, injections;
	uint64_t last_attempt_ms, last_success_ms, last_error_ms, last_injected_ms;
	int64_t trusted_ts_version;
	int64_t injected_ts_version, injected_targets_version;
	uint64_t injected_seq;
	char last_error[UP_ERR_BYTES];
};

struct upstream {
	char data_dir[SHOAL_PATH_BYTES_MAX];
	char md_dir[SHOAL_PATH_BYTES_MAX];    /* DATA/upstream/metadata */
	char roots_dir[SHOAL_PATH_BYTES_MAX]; /* DATA/upstream/roots */
	char cache_dir[SHOAL_PATH_BYTES_MAX]; /* DATA/upstream/targets */
	char repo_dir[SHOAL_PATH_BYTES_MAX];  /* DATA/upstream/repo */
	char state_path[SHOAL_PATH_BYTES_MAX];
	char url[SHOAL_UPSTREAM_URL_BYTES_MAX]; /* without a trailing '/' */
	char md_url[SHOAL_UPSTREAM_URL_BYTES_MAX + 16];
	char tg_url[SHOAL_UPSTREAM_URL_BYTES_MAX + 16];
	uint32_t interval_ms;
	upstream_inject_fn inject;
	void *inject_arg;
	atomic_bool cancel; /* read by the fetcher: abandon transfers */

	pthread_t thread;
	bool started;
	pthread_mutex_t mu; /* guards stopping and st */
	pthread_cond_t cond;
	bool stopping;
	struct up_status st;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* snprintf that reports truncation as SHOAL_ETOOBIG. */
static int pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int pathf(char *out, size_t n, const char *fmt, ...)
{
	assert(out && n > 0);
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	return k < 0 || (size_t)k >= n ? SHOAL_ETOOBIG : 0;
}

/* Records a failed step: logged, counted, shown by upstream_status. A
 * fetch abandoned because the agent is stopping is none of those. */
static int step_fail(struct upstream *u, int rc, const char *step, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int step_fail(struct upstream *u, int rc, const char *step, const char *fmt, ...)
{
	assert(rc < 0);
	assert(step);
	if (atomic_load(&u->cancel))
		return rc;
	char msg[UP_ERR_BYTES - 32], full[UP_ERR_BYTES], quoted[2 * UP_ERR_BYTES],
		qurl[2 * SHOAL_UPSTREAM_URL_BYTES_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s: %s", step, msg);
	shoal_log_quote(msg, quoted, sizeof(quoted));
	shoal_log_quote(u->url, qurl, sizeof(qurl));
	log_warn("upstream_failed", "url=%s step=%s error=%s", qurl, step, quoted);
	pthread_mutex_lock(&u->mu);
	u->st.ok = false;
	u->st.failures++;
	u->st.last_error_ms = wall_ms();
	memcpy(u->st.last_error, full, sizeof(full));
	pthread_mutex_unlock(&u->mu);
	return rc;
}

/* ---- files ---- */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return SHOAL_EIO;
		off += (size_t)n;
	}
	return 0;
}

/* Writes path atomically and durably (temp file, fsync, rename). */
static int write_atomic(const char *path, const uint8_t *buf, size_t len)
{
	char tmp[SHOAL_PATH_BYTES_MAX];
	assert(path && (buf || len == 0));
	if (pathf(tmp, sizeof(tmp), "%s.tmp", path) != 0)
		return SHOAL_ETOOBIG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return SHOAL_EIO;
	int rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = SHOAL_EIO;
	if (close(fd) != 0 && rc == 0)
		rc = SHOAL_EIO;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = SHOAL_EIO;
	if (rc)
		unlink(tmp);
	return rc;
}

/* Creates path (not its parents) if missing. */
static int mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return SHOAL_EIO;
}

/* Removes name under dfd and, if it is a directory, what it holds (to a
 * bounded depth; symlinks are removed, never followed). */
static void rm_at(int dfd, const char *name, int depth)
{
	assert(name && name[0]);
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return;
	if (depth > SHOAL_REPO_DIR_DEPTH_MAX + 2)
		return;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rm_at(fd, e->d_name, depth + 1);
	closedir(d);
	(void)unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Removes a directory tree of ours. */
static void rmtree(const char *path)
{
	assert(path && path[0]);
	rm_at(AT_FDCWD, path, 0);
}

/* ---- names ---- */

/* The target cache's file name for a target: tuf_client_download_target's
 * encoding (every byte but [A-Za-z0-9._~-] percent-encoded, '/' too). */
static int encode_name(const char *in, char *out, size_t out_size)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;
	assert(in && out_size > 0);
	for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("._~-", *p);
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
	return 0;
}

/* A target name becomes a path under repo/targets: '/'-separated parts,
 * none empty, "." or "..", each a valid file name, a bounded depth. */
static bool name_is_path(const char *name)
{
	assert(name);
	size_t depth = 0, part = 0;
	if (name[0] == '\0')
		return false;
	for (const char *p = name;; p++) {
		if (*p == '/' || *p == '\0') {
			const char *start = p - part;
			if (part == 0 || (part == 1 && start[0] == '.') ||
			    (part == 2 && start[0] == '.' && start[1] == '.') || part > 255)
				return false;
			if (*p == '\0')
				break;
			if (++depth > SHOAL_REPO_DIR_DEPTH_MAX)
				return false;
			part = 0;
			continue;
		}
		part++;
	}
	return true;
}

/* ---- state ---- */

static void load_state(struct upstream *u)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(u->state_path, SHOAL_UPSTREAM_STATE_BYTES_MAX, &buf, &len);
	if (rc == SHOAL_ENOTFOUND)
		return;
	json_t *j = rc == 0 ? json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(buf);
	const json_t *ts = json_object_get(j, "timestamp_version");
	const json_t *tg = json_object_get(j, "targets_version");
	const json_t *seq = json_object_get(j, "announce_seq");
	const json_t *at = json_object_get(j, "injected_ms");
	if (json_is_integer(ts) && json_is_integer(tg) && json_is_integer(seq) &&
	    json_is_integer(at) && json_integer_value(ts) > 0 && json_integer_value(tg) > 0 &&
	    json_integer_value(seq) >= 0 && json_integer_value(at) >= 0) {
		u->st.injected_ts_version = json_integer_value(ts);
		u->st.injected_targets_version = json_integer_value(tg);
		u->st.injected_seq = (uint64_t)json_integer_value(seq);
		u->st.last_injected_ms = (uint64_t)json_integer_value(at);
	} else {
		/* The worst this costs is announcing the current release again,
		 * which every node recognises as already verified. */
		log_warn("upstream_state_unreadable", "path=%s", u->state_path);
	}
	json_decref(j);
}

static int save_state(struct upstream *u, int64_t ts_v, int64_t tg_v, uint64_t seq,
		      uint64_t at_ms)
{
	json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:s}", "timestamp_version", (json_int_t)ts_v,
			      "targets_version", (json_int_t)tg_v, "announce_seq",
			      (json_int_t)seq, "injected_ms", (json_int_t)at_ms, "url", u->url);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!text)
		return SHOAL_ENOMEM;
	int rc = strlen(text) <= SHOAL_UPSTREAM_STATE_BYTES_MAX
			 ? write_atomic(u->state_path, (const uint8_t *)text, strlen(text))
			 : SHOAL_ETOOBIG;
	free(text);
	return rc;
}

/* ---- steps ---- */

static int load_md(const char *dir, const char *name, enum tuf_type type, size_t max,
		   struct tuf_md *md)
{
	char path[SHOAL_PATH_BYTES_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	memset(md, 0, sizeof(*md));
	if (pathf(path, sizeof(path), "%s/%s", dir, name) != 0)
		return SHOAL_ETOOBIG;
	int rc = shoal_read_file(path, max, &buf, &len);
	if (rc == 0)
		rc = tuf_md_parse(buf, len, type, md);
	free(buf);
	return rc;
}

/* seed: the upstream client starts from the node's trusted root (or a newer
 * root it followed itself). *anchor gets the operator's trust anchor,
 * DATA/trust/root.json: the chain laid out for the mesh starts there. */
static int seed(struct upstream *u, struct tuf_md *anchor)
{
	char err[UP_ERR_BYTES - 64], trust_dir[SHOAL_PATH_BYTES_MAX];
	struct tuf_md node, mine;
	int64_t anchor_v = 0;
	memset(anchor, 0, sizeof(*anchor));
	int rc = anchor_load(u->data_dir, &node, NULL, &anchor_v, err, sizeof(err));
	if (rc)
		return step_fail(u, rc, "seed", "%s", err);
	if (pathf(trust_dir, sizeof(trust_dir), "%s/%s", u->data_dir, ANCHOR_DIR) != 0) {
		tuf_md_clear(&node);
		return step_fail(u, SHOAL_ETOOBIG, "seed", "data dir path too long");
	}
	rc = load_md(trust_dir, ANCHOR_ROOT_FILE, TUF_TYPE_ROOT, SHOAL_TUF_ROOT_BYTES_MAX, anchor);
	if (rc == 0 && (anchor->version != anchor_v || tuf_md_verify(anchor, "root", anchor) != 0))
		rc = SHOAL_ESTATE; /* replaced (shoal trust set-root) while we read it */
	if (rc) {
		tuf_md_clear(&node);
		tuf_md_clear(anchor);
		return step_fail(u, rc, "seed", "%s/%s changed or became unreadable while read",
				 trust_dir, ANCHOR_ROOT_FILE);
	}
	bool keep = load_md(u->md_dir, "root.json", TUF_TYPE_ROOT, SHOAL_TUF_ROOT_BYTES_MAX,
			    &mine) == 0;
	if (keep) {
		keep = tuf_md_verify(&mine, "root", &mine) == 0 &&
		       (mine.version > node.version ||
			(mine.version == node.version && mine.raw_len == node.raw_len &&
			 memcmp(mine.raw, node.raw, node.raw_len) == 0));
		tuf_md_clear(&mine);
	}
	if (!keep) {
		rc = tuf_init_root(u->md_dir, node.raw, node.raw_len, err, sizeof(err));
		if (rc == 0)
			log_info("upstream_seeded", "root_version=%" PRId64, node.version);
	}
	tuf_md_clear(&node);
	if (rc) {
		tuf_md_clear(anchor);
		return step_fail(u, rc, "seed", "%s", err);
	}
	return 0;
}

/* download: every top-level target into the cache, verified. */
static int download(struct upstream *u, struct tuf_client *c, const struct tuf_md *tg)
{
	const json_t *tmap = json_object_get(tg->signed_obj, "targets");
	assert(tg->type == TUF_TYPE_TARGETS);
	if (json_object_size(tmap) > SHOAL_RELEASE_TARGETS_MAX)
		return step_fail(u, SHOAL_EFULL, "download",
				 "targets %" PRId64 " lists %zu targets, over the %d an announce carries",
				 tg->version, json_object_size(tmap), SHOAL_RELEASE_TARGETS_MAX);
	int rc = mkdir_one(u->cache_dir);
	if (rc)
		return step_fail(u, rc, "download", "mkdir(%s): %s", u->cache_dir, strerror(errno));
	const char *name;
	json_t *info;
	json_object_foreach((json_t *)tmap, name, info) {
		const char *hex = json_string_value(json_object_get(json_object_get(info, "hashes"),
								    "sha256"));
		uint8_t h[32];
		if (!name_is_path(name))
			return step_fail(u, SHOAL_EPROTO, "download",
					 "target name '%.200s' is not a relative path", name);
		/* The mesh fetches targets by SHA-256 and length. */
		if (!hex || strlen(hex) != 64 || hex_decode(hex, h, sizeof(h)) != 0)
			return step_fail(u, SHOAL_EPROTO, "download",
					 "target %.200s: no sha256 hash (the mesh fetches by it)", name);
		json_int_t length = json_integer_value(json_object_get(info, "length"));
		if (length < 0 || (uint64_t)length > SHOAL_BLOB_BYTES_MAX)
			return step_fail(u, SHOAL_ETOOBIG, "download", "target %.200s: length %lld over %u",
					 name, (long long)length, SHOAL_BLOB_BYTES_MAX);
		struct tuf_target t;
		bool fetched = false;
		rc = tuf_client_find_target(c, name, &t);
		if (rc == 0) {
			rc = tuf_client_download_target(c, &t, u->tg_url, u->cache_dir, &fetched);
			tuf_target_clear(&t);
		}
		if (rc)
			return step_fail(u, rc, "download", "%s", tuf_client_error(c));
	}
	return 0;
}

/* root-chain: DATA/upstream/roots/N.root.json for N from the anchor's
 * version + 1 to the trusted root's, each checked against the one before
 * (cached ones too: the directory is ours, but a check costs little). */
static int root_chain(struct upstream *u, const struct tuf_md *anchor, const struct tuf_md *top)
{
	if (top->version < anchor->version)
		return step_fail(u, SHOAL_EREPLAY, "root-chain",
				 "trusted root %" PRId64 " is older than the trust anchor's %" PRId64,
				 top->version, anchor->version);
	if (top->version - anchor->version > SHOAL_TUF_ROOT_ROTATIONS_MAX)
		return step_fail(u, SHOAL_ETOOBIG, "root-chain",
				 "%" PRId64 " rotations since the trust anchor, over %d",
				 top->version - anchor->version, SHOAL_TUF_ROOT_ROTATIONS_MAX);
	if (top->version == anchor->version) {
		if (top->raw_len != anchor->raw_len || memcmp(top->raw, anchor->raw, top->raw_len) != 0)
			return step_fail(u, SHOAL_EBADSIG, "root-chain",
					 "root %" PRId64 " differs from the trust anchor's", top->version);
		return 0;
	}
	int rc = mkdir_one(u->roots_dir);
	if (rc)
		return step_fail(u, rc, "root-chain", "mkdir(%s): %s", u->roots_dir, strerror(errno));
	struct tuf_md prev;
	rc = tuf_md_parse(anchor->raw, anchor->raw_len, TUF_TYPE_ROOT, &prev);
	if (rc)
		return step_fail(u, rc, "root-chain", "trust anchor: parse");
	for (int64_t v = anchor->version + 1; v <= top->version && rc == 0; v++) {
		char name[64], path[SHOAL_PATH_BYTES_MAX], url[sizeof(u->md_url) + 64], why[128];
		uint8_t *buf = NULL;
		size_t len = 0;
		bool fetched = false;
		snprintf(name, sizeof(name), "%" PRId64 ".root.json", v);
		if (pathf(path, sizeof(path), "%s/%s", u->roots_dir, name) != 0) {
			rc = step_fail(u, SHOAL_ETOOBIG, "root-chain", "path too long");
			break;
		}
		if (v == top->version) {
			/* the root the client trusts now, exactly */
			buf = malloc(top->raw_len);
			if (buf) {
				memcpy(buf, top->raw, top->raw_len);
				len = top->raw_len;
			}
			rc = buf ? 0 : SHOAL_ENOMEM;
			fetched = true;
		} else {
			rc = shoal_read_file(path, SHOAL_TUF_ROOT_BYTES_MAX, &buf, &len);
			if (rc == SHOAL_ENOTFOUND) {
				snprintf(url, sizeof(url), "%s%s", u->md_url, name);
				rc = tuf_fetch_curl_cancellable(&u->cancel, url, SHOAL_TUF_ROOT_BYTES_MAX,
								&buf, &len);
				fetched = true;
			}
		}
		if (rc) {
			rc = step_fail(u, rc, "root-chain", "root %" PRId64 ": %s %s", v,
				       fetched ? "download" : "read", shoal_strerror(rc));
			break;
		}
		struct tuf_md next;
		rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, &next);
		if (rc == 0) {
			rc = tuf_root_check_next(&prev, &next, why, sizeof(why));
			if (rc)
				tuf_md_clear(&next);
		} else {
			snprintf(why, sizeof(why), "parse");
		}
		if (rc) {
			if (!fetched)
				(void)unlink(path); /* fetched again next time */
			free(buf);
			rc = step_fail(u, rc, "root-chain", "root %" PRId64 ": %s", v, why);
			break;
		}
		if (fetched && (rc = write_atomic(path, buf, len)) != 0)
			rc = step_fail(u, rc, "root-chain", "write %s", path);
		free(buf);
		tuf_md_clear(&prev);
		prev = next;
	}
	tuf_md_clear(&prev);
	return rc;
}

static int write_new(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
	char path[SHOAL_PATH_BYTES_MAX];
	if (pathf(path, sizeof(path), "%s/%s", dir, name) != 0)
		return SHOAL_ETOOBIG;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return SHOAL_EIO;
	int rc = write_all(fd, buf, len);
	if (close(fd) != 0 && rc == 0)
		rc = SHOAL_EIO;
	return rc;
}

/* Places the cached target at repo/targets/NAME: a hard link, or a copy
 * where the file system has none. */
static int place_target(struct upstream *u, const char *name)
{
	char enc[SHOAL_TUF_TARGET_NAME_BYTES_MAX * 3 + 1], from[SHOAL_PATH_BYTES_MAX],
		to[SHOAL_PATH_BYTES_MAX];
	if (encode_name(name, enc, sizeof(enc)) != 0 ||
	    pathf(from, sizeof(from), "%s/%s", u->cache_dir, enc) != 0 ||
	    pathf(to, sizeof(to), "%s/targets/%s", u->repo_dir, name) != 0)
		return SHOAL_ETOOBIG;
	/* parents: every '/' in the name after targets/ */
	size_t base = strlen(u->repo_dir) + strlen("/targets/");
	for (char *p = to + base; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir_one(to);
		*p = '/';
		if (rc)
			return rc;
	}
	if (link(from, to) == 0)
		return 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(from, SHOAL_BLOB_BYTES_MAX, &buf, &len);
	if (rc == 0) {
		int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		rc = fd < 0 ? SHOAL_EIO : write_all(fd, buf, len);
		if (fd >= 0 && close(fd) != 0 && rc == 0)
			rc = SHOAL_EIO;
	}
	free(buf);
	return rc;
}

/* layout: the verified files as a repository directory. */
static int layout(struct upstream *u, const struct tuf_md *anchor, const struct tuf_md *root,
		  const struct tuf_md *ts, const struct tuf_md *sn, const struct tuf_md *tg)
{
	char mdir[SHOAL_PATH_BYTES_MAX], tdir[SHOAL_PATH_BYTES_MAX], name[64];
	rmtree(u->repo_dir);
	int rc = pathf(mdir, sizeof(mdir), "%s/metadata", u->repo_dir);
	if (rc == 0)
		rc = pathf(tdir, sizeof(tdir), "%s/targets", u->repo_dir);
	if (rc == 0)
		rc = mkdir_one(u->repo_dir);
	if (rc == 0)
		rc = mkdir_one(mdir);
	if (rc == 0)
		rc = mkdir_one(tdir);
	if (rc)
		return step_fail(u, rc, "layout", "cannot create %s", u->repo_dir);
	snprintf(name, sizeof(name), "%" PRId64 ".root.json", anchor->version);
	rc = write_new(mdir, name, anchor->raw, anchor->raw_len);
	for (int64_t v = anchor->version + 1; rc == 0 && v <= root->version; v++) {
		char path[SHOAL_PATH_BYTES_MAX];
		uint8_t *buf = NULL;
		size_t len = 0;
		snprintf(name, sizeof(name), "%" PRId64 ".root.json", v);
		rc = pathf(path, sizeof(path), "%s/%s", u->roots_dir, name);
		if (rc == 0)
			rc = shoal_read_file(path, SHOAL_TUF_ROOT_BYTES_MAX, &buf, &len);
		if (rc == 0)
			rc = write_new(mdir, name, buf, len);
		free(buf);
	}
	if (rc == 0)
		rc = write_new(mdir, "root.json", root->raw, root->raw_len);
	if (rc == 0)
		rc = write_new(mdir, "timestamp.json", ts->raw, ts->raw_len);
	snprintf(name, sizeof(name), "%" PRId64 ".snapshot.json", sn->version);
	if (rc == 0)
		rc = write_new(mdir, name, sn->raw, sn->raw_len);
	snprintf(name, sizeof(name), "%" PRId64 ".targets.json", tg->version);
	if (rc == 0)
		rc = write_new(mdir, name, tg->raw, tg->raw_len);
	if (rc)
		return step_fail(u, rc, "layout", "writing metadata into %s: %s", mdir,
				 shoal_strerror(rc));
	const char *tname;
	json_t *info;
	json_object_foreach(json_object_get(tg->signed_obj, "targets"), tname, info) {
		rc = place_target(u, tname);
		if (rc)
			return step_fail(u, rc, "layout", "target %.200s: %s", tname, shoal_strerror(rc));
	}
	return 0;
}

/* Drops cached targets the current targets metadata no longer lists. */
static void prune_cache(struct upstream *u, const struct tuf_md *tg)
{
	const json_t *tmap = json_object_get(tg->signed_obj, "targets");
	DIR *d = opendir(u->cache_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		bool keep = false;
		const char *name;
		json_t *info;
		json_object_foreach((json_t *)tmap, name, info) {
			char enc[SHOAL_TUF_TARGET_NAME_BYTES_MAX * 3 + 1];
			if (encode_name(name, enc, sizeof(enc)) == 0 && strcmp(enc, e->d_name) == 0) {
				keep = true;
				break;
			}
		}
		char path[SHOAL_PATH_BYTES_MAX];
		if (!keep && pathf(path, sizeof(path), "%s/%s", u->cache_dir, e->d_name) == 0)
			(void)unlink(path);
	}
	closedir(d);
}

int upstream_poll(struct upstream *u, int64_t now_s, bool *injected)
{
	assert(u);
	if (injected)
		*injected = false;
	pthread_mutex_lock(&u->mu);
	u->st.attempts++;
	u->st.last_attempt_ms = wall_ms();
	int64_t done_ts = u->st.injected_ts_version;
	pthread_mutex_unlock(&u->mu);

	struct tuf_md anchor, root, ts, sn, tg;
	memset(&root, 0, sizeof(root));
	memset(&ts, 0, sizeof(ts));
	memset(&sn, 0, sizeof(sn));
	memset(&tg, 0, sizeof(tg));
	struct tuf_client *c = NULL;
	struct tuf_fetcher fetcher = {tuf_fetch_curl_cancellable, &u->cancel};
	int rc = seed(u, &anchor);
	if (rc)
		return rc;
	rc = tuf_client_new(u->md_dir, u->md_url, &fetcher, &c);
	if (rc) {
		rc = step_fail(u, rc, "refresh", "cannot start the TUF client");
		goto out;
	}
	rc = tuf_client_refresh(c, now_s);
	if (rc) {
		rc = step_fail(u, rc, "refresh", "%s", tuf_client_error(c));
		goto out;
	}
	/* What the refresh verified (and left in its directory). */
	if ((rc = load_md(u->md_dir, "root.json", TUF_TYPE_ROOT, SHOAL_TUF_ROOT_BYTES_MAX, &root)) ||
	    (rc = load_md(u->md_dir, "timestamp.json", TUF_TYPE_TIMESTAMP,
			  SHOAL_TUF_TIMESTAMP_BYTES_MAX, &ts)) ||
	    (rc = load_md(u->md_dir, "snapshot.json", TUF_TYPE_SNAPSHOT,
			  SHOAL_TUF_METADATA_BYTES_MAX, &sn)) ||
	    (rc = load_md(u->md_dir, "targets.json", TUF_TYPE_TARGETS,
			  SHOAL_TUF_METADATA_BYTES_MAX, &tg))) {
		rc = step_fail(u, rc, "refresh", "reading the verified metadata in %s: %s", u->md_dir,
			       shoal_strerror(rc));
		goto out;
	}
	pthread_mutex_lock(&u->mu);
	u->st.trusted_ts_version = ts.version;
	pthread_mutex_unlock(&u->mu);
	if (ts.version > done_ts) {
		uint64_t seq = 0;
		char err[UP_ERR_BYTES - 64] = "";
		if ((rc = download(u, c, &tg)) || (rc = root_chain(u, &anchor, &root)) ||
		    (rc = layout(u, &anchor, &root, &ts, &sn, &tg)))
			goto out;
		if (atomic_load(&u->cancel)) {
			rc = SHOAL_ESTATE;
			goto out;
		}
		rc = u->inject(u->inject_arg, u->repo_dir, &seq, err, sizeof(err));
		if (rc) {
			rc = step_fail(u, rc, "inject", "%s", err);
			goto out;
		}
		uint64_t at = wall_ms();
		pthread_mutex_lock(&u->mu);
		u->st.injections++;
		u->st.injected_ts_version = ts.version;
		u->st.injected_targets_version = tg.version;
		u->st.injected_seq = seq;
		u->st.last_injected_ms = at;
		pthread_mutex_unlock(&u->mu);
		char qurl[2 * SHOAL_UPSTREAM_URL_BYTES_MAX];
		shoal_log_quote(u->url, qurl, sizeof(qurl));
		log_info("upstream_injected", "url=%s timestamp_version=%" PRId64
			 " targets_version=%" PRId64 " targets=%zu announce_seq=%" PRIu64, qurl,
			 ts.version, tg.version, json_object_size(json_object_get(tg.signed_obj, "targets")),
			 seq);
		if (injected)
			*injected = true;
		prune_cache(u, &tg);
		rmtree(u->repo_dir);
		/* Announced already: a failure here only risks announcing it again
		 * after a restart, which nodes take as the release they have. */
		rc = save_state(u, ts.version, tg.version, seq, at);
		if (rc) {
			rc = step_fail(u, rc, "state", "write %s: %s", u->state_path, shoal_strerror(rc));
			goto out;
		}
	}
	pthread_mutex_lock(&u->mu);
	u->st.ok = true;
	u->st.last_success_ms = wall_ms();
	pthread_mutex_unlock(&u->mu);
out:
	tuf_client_free(c);
	tuf_md_clear(&anchor);
	tuf_md_clear(&root);
	tuf_md_clear(&ts);
	tuf_md_clear(&sn);
	tuf_md_clear(&tg);
	return rc;
}

/* ---- life cycle ---- */

int upstream_open(const char *data_dir, const struct upstream_config *cfg,
		  upstream_inject_fn inject, void *inject_arg, struct upstream **out, char *err,
		  size_t errlen)
{
	assert(data_dir && cfg && cfg->url && inject && out);
	*out = NULL;
	size_t ulen = strlen(cfg->url);
	if (ulen == 0 || ulen >= SHOAL_UPSTREAM_URL_BYTES_MAX) {
		snprintf(err, errlen, "upstream URL of %zu bytes (1..%d)", ulen,
			 SHOAL_UPSTREAM_URL_BYTES_MAX - 1);
		return SHOAL_EINVAL;
	}
	if (strlen(data_dir) >= UP_DIR_BYTES_MAX - 32) {
		snprintf(err, errlen, "data dir '%s' is too long", data_dir);
		return SHOAL_EINVAL;
	}
	if (cfg->interval_ms < SHOAL_UPSTREAM_INTERVAL_MS_MIN) {
		snprintf(err, errlen, "upstream interval %u ms is below %d", cfg->interval_ms,
			 SHOAL_UPSTREAM_INTERVAL_MS_MIN);
		return SHOAL_EINVAL;
	}
	struct upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return SHOAL_ENOMEM;
	snprintf(u->data_dir, sizeof(u->data_dir), "%s", data_dir);
	memcpy(u->url, cfg->url, ulen + 1);
	while (ulen > 0 && u->url[ulen - 1] == '/')
		u->url[--ulen] = '\0';
	snprintf(u->md_url, sizeof(u->md_url), "%s/metadata/", u->url);
	snprintf(u->tg_url, sizeof(u->tg_url), "%s/targets/", u->url);
	char dir[SHOAL_PATH_BYTES_MAX];
	/* cannot fail: data_dir's length was checked */
	int rc = pathf(dir, sizeof(dir), "%s/upstream", data_dir) |
		 pathf(u->md_dir, sizeof(u->md_dir), "%s/upstream/metadata", data_dir) |
		 pathf(u->roots_dir, sizeof(u->roots_dir), "%s/upstream/roots", data_dir) |
		 pathf(u->cache_dir, sizeof(u->cache_dir), "%s/upstream/targets", data_dir) |
		 pathf(u->repo_dir, sizeof(u->repo_dir), "%s/upstream/repo", data_dir) |
		 pathf(u->state_path, sizeof(u->state_path), "%s/upstream/state.json", data_dir);
	assert(rc == 0);
	(void)rc;
	u->interval_ms = cfg->interval_ms;
	u->inject = inject;
	u->inject_arg = inject_arg;
	atomic_init(&u->cancel, false);
	pthread_mutex_init(&u->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (mkdir_one(dir) != 0 || mkdir_one(u->md_dir) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", u->md_dir, strerror(errno));
		upstream_close(u);
		return SHOAL_EIO;
	}
	rmtree(u->repo_dir); /* left by a pull that stopped midway */
	load_state(u);
	*out = u;
	return 0;
}

static void *upstream_main(void *arg)
{
	struct upstream *u = arg;
	for (;;) {
		pthread_mutex_lock(&u->mu);
		bool stop = u->stopping;
		pthread_mutex_unlock(&u->mu);
		if (stop)
			break;
		/* 5.1: the update start time, read once per pull */
		int rc = upstream_poll(u, (int64_t)time(NULL), NULL);
		(void)rc; /* logged, counted and shown by upstream_status */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += u->interval_ms / 1000;
		until.tv_nsec += (long)(u->interval_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&u->mu);
		while (!u->stopping && pthread_cond_timedwait(&u->cond, &u->mu, &until) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&u->mu);
	}
	return NULL;
}

int upstream_start(struct upstream *u)
{
	assert(u && !u->started);
	if (pthread_create(&u->thread, NULL, upstream_main, u) != 0)
		return SHOAL_ENOMEM;
	u->started = true;
	char qurl[2 * SHOAL_UPSTREAM_URL_BYTES_MAX];
	shoal_log_quote(u->url, qurl, sizeof(qurl));
	log_info("upstream_started", "url=%s interval_ms=%u injected_timestamp_version=%" PRId64,
		 qurl, u->interval_ms, u->st.injected_ts_version);
	return 0;
}

void upstream_stop(struct upstream *u)
{
	if (!u)
		return;
	atomic_store(&u->cancel, true);
	pthread_mutex_lock(&u->mu);
	u->stopping = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->mu);
}

void upstream_close(struct upstream *u)
{
	if (!u)
		return;
	upstream_stop(u);
	if (u->started)
		pthread_join(u->thread, NULL);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->mu);
	free(u);
}

json_t *upstream_status(struct upstream *u)
{
	assert(u);
	pthread_mutex_lock(&u->mu);
	struct up_status s = u->st;
	pthread_mutex_unlock(&u->mu);
	return json_pack("{s:s, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I}",
			 "url", u->url, "interval_ms", (json_int_t)u->interval_ms, "ok", s.ok,
			 "attempts", (json_int_t)s.attempts, "failures", (json_int_t)s.failures,
			 "injections", (json_int_t)s.injections,
			 "last_attempt_ms", (json_int_t)s.last_attempt_ms,
			 "last_success_ms", (json_int_t)s.last_success_ms,
			 "trusted_timestamp_version", (json_int_t)s.trusted_ts_version,
			 "last_injected_version", (json_int_t)s.injected_targets_version,
			 "last_injected_timestamp_version", (json_int_t)s.injected_ts_version,
			 "last_injected_seq", (json_int_t)s.injected_seq,
			 "last_injected_ms", (json_int_t)s.last_injected_ms,
			 "last_error", s.last_error[0] ? json_string(s.last_error) : json_null(),
			 "last_error_ms", (json_int_t)s.last_error_ms);
}
