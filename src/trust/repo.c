/*
 * repo.c — the TUF repository writer and signer (see repo.h for the layout).
 *
 * A release goes through three states, each a set of files:
 *
 *   staged     staged/targets.json (version T+1), staged/root.json (R+1),
 *              staged/targets/SHA256: built by add/remove/stage/rotate-root,
 *              signed in turn by offline keys (repo_sign)
 *   building   generations/G+1: every root version, the current snapshot
 *              and targets (hard links), the staged documents, a new
 *              snapshot and timestamp signed with the online keys
 *   published  DIR/metadata -> generations/G+1, swapped by rename(2)
 *
 * The rename is the commit point: before it, a failure removes what this
 * publish added (generation dir, target links) and the published set is
 * untouched; after it, leftovers (staged files, old generations) are only
 * tidied, and repo_open recognises a staged document that is no newer than
 * the published one as such a leftover.
 *
 * Signatures cover the canonical JSON (cjson.c) of the "signed" object, as
 * the TUF client (tuf_md.c) and every other TUF implementation check them.
 */
#include "trust/repo.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shoal/file.h"
#include "shoal/hex.h"
#include "shoal/log.h"
#include "trust/cjson.h"
#include "trust/identity.h"
#include "trust/tfile.h"
#include "trust/tuf.h"

/* A repository path leaves room under SHOAL_PATH_BYTES_MAX for
 * targets/NAME with a hash prefix. */
#define DIR_BYTES_MAX (SHOAL_PATH_BYTES_MAX - SHOAL_TUF_TARGET_NAME_BYTES_MAX - 512)
/* DIR/keys, DIR/generations/G, ...: room left for a file name in them. */
#define SUBDIR_BYTES_MAX (DIR_BYTES_MAX + 64)
#define DAY_S 86400
#define COPY_CHUNK_BYTES 65536

static const char *const top_roles[4] = {"root", "targets", "snapshot", "timestamp"};

struct repo {
	char dir[DIR_BYTES_MAX]; /* absolute */
	int lock_fd;
	unsigned long generation;
	struct tuf_md root, timestamp, snapshot, targets; /* published */
	json_t *st_targets; /* staged documents ({"signatures","signed"}) or NULL */
	json_t *st_root;
};

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	assert(rc < 0);
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- fault injection (tests) ---- */

static int fault_nth, fault_seen;

void repo_fault_inject(int nth)
{
	assert(nth >= 0);
	fault_nth = nth;
	fault_seen = 0;
}

/* Called before each filesystem step of publish; true = fail this one. */
static bool fault_now(void)
{
	if (fault_nth <= 0)
		return false;
	if (++fault_seen < fault_nth)
		return false;
	fault_nth = 0;
	errno = EIO;
	return true;
}

/* ---- small JSON helpers ---- */

/* s, or "" for NULL: for comparisons with strings that may be missing. */
static const char *nz(const char *s)
{
	return s ? s : "";
}

static const char *jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t jint(const json_t *o, const char *k, int64_t dflt)
{
	const json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static void fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t parse_expires(const json_t *signed_obj)
{
	const char *s = jstr(signed_obj, "expires");
	struct tm tm = {0};
	char z = 0;
	if (!s || strlen(s) != 20 ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 || z != 'Z')
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

/* ---- files ---- */

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	return tfile_join(out, cap, dir, name);
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd); /* best effort: what matters was fsync'd and renamed */
		close(fd);
	}
}

/* Replaces dir/name atomically: temp file, fsync, rename, fsync dir. */
static int write_replace(const char *dir, const char *name, const uint8_t *buf, size_t len,
			 mode_t mode)
{
	char path[SHOAL_PATH_BYTES_MAX], tmp[SHOAL_PATH_BYTES_MAX];
	assert(dir && name && strchr(name, '/') == NULL);
	assert(buf || len == 0);
	int n = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
	if (path_join(path, sizeof(path), dir, name) != 0 || n < 0 || (size_t)n >= sizeof(tmp))
		return SHOAL_ETOOBIG;
	int fd = mkstemp(tmp);
	if (fd < 0)
		return SHOAL_EIO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto bad;
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto bad;
	if (close(fd) != 0) {
		fd = -1;
		goto bad;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto bad;
	fsync_dir(dir);
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return SHOAL_EIO;
}

/* Removes dfd/name and, if it is a directory, everything below it
 * (symlinks are removed, never followed). Depth bounded. */
static int rm_tree_at(int dfd, const char *name, int depth)
{
	if (depth > SHOAL_REPO_DIR_DEPTH_MAX + 4)
		return SHOAL_EIO;
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return SHOAL_EIO;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return SHOAL_EIO;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return SHOAL_EIO;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		rc = rm_tree_at(fd, e->d_name, depth + 1);
	}
	closedir(d);
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = SHOAL_EIO;
	return rc;
}

static int rm_tree(const char *path)
{
	return rm_tree_at(AT_FDCWD, path, 0);
}

/* Hard-links src to dst (new), or copies when the filesystem cannot link. */
static int link_or_copy(const char *src, const char *dst)
{
	if (fault_now())
		return SHOAL_EIO;
	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP)
		return errno == EEXIST ? SHOAL_EEXIST : SHOAL_EIO;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(src, SHOAL_TUF_TARGET_BYTES_MAX, &buf, &len);
	if (rc == 0)
		rc = tfile_write_new(dst, buf, len, 0644, NULL, 0);
	free(buf);
	return rc;
}

/* ---- keys ---- */

static json_t *key_obj(const uint8_t pk[32])
{
	char hex[65];
	hex_encode(pk, 32, hex);
	return json_pack("{s:s,s:s,s:{s:s}}", "keytype", "ed25519", "scheme", "ed25519", "keyval",
			 "public", hex);
}

/* The key id TUF implementations compute: SHA-256 of the canonical key. */
static int keyid_of(const uint8_t pk[32], char out[65])
{
	json_t *k = key_obj(pk);
	uint8_t *buf = NULL, h[crypto_hash_sha256_BYTES];
	size_t len = 0;
	int rc = k ? cjson_encode(k, 4096, &buf, &len) : SHOAL_ENOMEM;
	json_decref(k);
	if (rc)
		return rc;
	crypto_hash_sha256(h, buf, len);
	free(buf);
	hex_encode(h, sizeof(h), out);
	assert(strlen(out) == 64);
	return 0;
}

static int write_pub(const char *path, const uint8_t pk[32], char *err, size_t errlen)
{
	char text[66];
	hex_encode(pk, 32, text);
	text[64] = '\n';
	text[65] = '\0';
	return tfile_write_new(path, text, 65, 0644, err, errlen);
}

/* Writes kp as keys_dir/NAME.key (0600) and NAME.pub. */
static int save_key_files(const char *keys_dir, const char *name, const struct shoal_keypair *kp,
			  char *err, size_t errlen)
{
	char file[80], kpath[SHOAL_PATH_BYTES_MAX], ppath[SHOAL_PATH_BYTES_MAX];
	assert(strlen(name) < 64);
	snprintf(file, sizeof(file), "%s.key", name);
	if (path_join(kpath, sizeof(kpath), keys_dir, file) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", keys_dir);
	snprintf(file, sizeof(file), "%s.pub", name);
	if (path_join(ppath, sizeof(ppath), keys_dir, file) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", keys_dir);
	int rc = keys_save(kpath, kp);
	if (rc)
		return errf(err, errlen, rc, "write %s: %s", kpath, shoal_strerror(rc));
	rc = write_pub(ppath, kp->pk, err, errlen);
	if (rc)
		unlink(kpath);
	return rc;
}

/* Generates keys_dir/NAME.key and NAME.pub; kp and keyid get the key. */
static int new_key_files(const char *keys_dir, const char *name, struct shoal_keypair *kp,
			 char keyid[65], char *err, size_t errlen)
{
	keys_generate(kp);
	int rc = keyid_of(kp->pk, keyid);
	if (rc)
		return errf(err, errlen, rc, "key id: %s", shoal_strerror(rc));
	return save_key_files(keys_dir, name, kp, err, errlen);
}

int repo_keygen(const char *path, const char *path_pub, char keyid[65], char *err,
		size_t errlen)
{
	struct shoal_keypair kp;
	assert(path && path_pub && keyid);
	keys_generate(&kp);
	int rc = keyid_of(kp.pk, keyid);
	if (rc) {
		errf(err, errlen, rc, "key id: %s", shoal_strerror(rc));
		goto out;
	}
	rc = keys_save(path, &kp);
	if (rc) {
		errf(err, errlen, rc, "write %s: %s", path,
		     rc == SHOAL_EEXIST ? "already exists" : shoal_strerror(rc));
		goto out;
	}
	rc = write_pub(path_pub, kp.pk, err, errlen);
	if (rc)
		unlink(path);
out:
	sodium_memzero(&kp, sizeof(kp));
	return rc;
}

int repo_read_public_key(const char *path, uint8_t pk[32], char *err, size_t errlen)
{
	uint8_t buf[SHOAL_KEY_FILE_BYTES_MAX + 1];
	size_t len = 0;
	assert(path && pk);
	int rc = tfile_read(path, buf, SHOAL_KEY_FILE_BYTES_MAX, &len, 0, err, errlen);
	if (rc)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 64 && hex_decode((const char *)buf, pk, 32) == 0)
		return 0;
	sodium_memzero(buf, sizeof(buf));
	if (len != 128)
		return errf(err, errlen, SHOAL_EPROTO,
			    "%s: not a public key (64 hex digits) or a shoal key file", path);
	struct shoal_keypair kp;
	rc = keys_load(path, &kp, err, errlen);
	if (rc == 0)
		memcpy(pk, kp.pk, 32);
	sodium_memzero(&kp, sizeof(kp));
	return rc;
}

/* ---- documents ---- */

static json_t *new_doc(json_t *signed_obj)
{
	if (!signed_obj)
		return NULL;
	return json_pack("{s:[],s:o}", "signatures", "signed", signed_obj);
}

static json_t *signed_header(const char *type, int64_t version, int64_t expires)
{
	char when[32];
	assert(version >= 1);
	fmt_time(expires, when);
	return json_pack("{s:s,s:s,s:I,s:s}", "_type", type, "spec_version", REPO_SPEC_VERSION,
			 "version", (json_int_t)version, "expires", when);
}

static int encode_doc(const json_t *doc, uint8_t **out, size_t *len)
{
	return cjson_encode(doc, SHOAL_TUF_METADATA_BYTES_MAX, out, len);
}

static bool doc_has_sig(const json_t *doc, const char *keyid)
{
	const json_t *sigs = json_object_get(doc, "signatures");
	for (size_t i = 0; i < json_array_size(sigs); i++)
		if (strcmp(nz(jstr(json_array_get(sigs, i), "keyid")), keyid) == 0)
			return true;
	return false;
}

static int sign_doc(json_t *doc, const struct shoal_keypair *kp, const char *keyid)
{
	uint8_t *msg = NULL, sig[crypto_sign_BYTES];
	size_t len = 0;
	char hex[2 * crypto_sign_BYTES + 1];
	assert(doc && kp && keyid);
	json_t *sigs = json_object_get(doc, "signatures");
	if (!json_is_array(sigs) || json_array_size(sigs) >= SHOAL_TUF_SIGNATURES_MAX)
		return SHOAL_EFULL;
	int rc = cjson_encode(json_object_get(doc, "signed"), SHOAL_TUF_METADATA_BYTES_MAX, &msg, &len);
	if (rc)
		return rc;
	crypto_sign_detached(sig, NULL, msg, len, kp->sk);
	free(msg);
	hex_encode(sig, sizeof(sig), hex);
	if (json_array_append_new(sigs, json_pack("{s:s,s:s}", "keyid", keyid, "sig", hex)) != 0)
		return SHOAL_ENOMEM;
	return 0;
}

/* ---- signature counting ---- */

static bool keyid_listed(const json_t *ids, const char *keyid)
{
	for (size_t i = 0; i < json_array_size(ids); i++)
		if (strcmp(nz(json_string_value(json_array_get(ids, i))), keyid) == 0)
			return true;
	return false;
}

/* The ed25519 key root_signed lists under keyid, if it is one. */
static bool root_key_pk(const json_t *root_signed, const char *keyid, uint8_t pk[32])
{
	const json_t *k = json_object_get(json_object_get(root_signed, "keys"), keyid);
	const char *type = jstr(k, "keytype"), *scheme = jstr(k, "scheme");
	const char *pub = jstr(json_object_get(k, "keyval"), "public");
	return type && scheme && pub && strcmp(type, "ed25519") == 0 &&
	       strcmp(scheme, "ed25519") == 0 && hex_decode(pub, pk, 32) == 0;
}

static bool key_authorised(const json_t *root_signed, const char *role, const char *keyid,
			   const uint8_t pk[32])
{
	uint8_t listed[32];
	const json_t *r = json_object_get(json_object_get(root_signed, "roles"), role);
	return keyid_listed(json_object_get(r, "keyids"), keyid) &&
	       root_key_pk(root_signed, keyid, listed) && sodium_memcmp(listed, pk, 32) == 0;
}

/* Counts as repo_count_signatures; signed_by / missing (arrays, may be
 * NULL) get the key ids that did and did not sign. */
static int count_sigs(const json_t *root_signed, const char *role, const json_t *doc,
		      struct repo_sig_count *out, json_t *signed_by, json_t *missing)
{
	assert(root_signed && role && doc && out);
	memset(out, 0, sizeof(*out));
	const json_t *r = json_object_get(json_object_get(root_signed, "roles"), role);
	const json_t *ids = json_object_get(r, "keyids");
	if (!json_is_object(r) || !json_is_array(ids))
		return SHOAL_ENOTFOUND;
	size_t nids = json_array_size(ids);
	if (nids > SHOAL_TUF_ROLE_KEYS_MAX)
		return SHOAL_EPROTO;
	out->threshold = jint(r, "threshold", 0);
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	int rc = cjson_encode(json_object_get(doc, "signed"), SHOAL_TUF_METADATA_BYTES_MAX, &msg,
			      &msg_len);
	if (rc)
		return rc == SHOAL_ENOMEM ? rc : SHOAL_EPROTO;
	uint8_t (*seen)[32] = calloc(nids ? nids : 1, 32);
	if (!seen) {
		free(msg);
		return SHOAL_ENOMEM;
	}
	size_t nseen = 0;
	const json_t *sigs = json_object_get(doc, "signatures");
	for (size_t i = 0; i < nids; i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		uint8_t pk[32];
		bool dup = !id;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(id, nz(json_string_value(json_array_get(ids, j)))) == 0;
		if (dup || !root_key_pk(root_signed, id, pk))
			continue;
		for (size_t j = 0; j < nseen && !dup; j++) /* one key under two ids */
			dup = memcmp(seen[j], pk, 32) == 0;
		if (dup)
			continue;
		memcpy(seen[nseen++], pk, 32);
		out->keys++;
		bool ok = false;
		for (size_t s = 0; s < json_array_size(sigs) && !ok; s++) {
			const json_t *sg = json_array_get(sigs, s);
			uint8_t sig[crypto_sign_BYTES];
			const char *hex = jstr(sg, "sig");
			if (strcmp(nz(jstr(sg, "keyid")), id) != 0 || !hex ||
			    hex_decode(hex, sig, sizeof(sig)) != 0)
				continue;
			ok = crypto_sign_verify_detached(sig, msg, msg_len, pk) == 0;
		}
		if (ok)
			out->valid++;
		json_t *list = ok ? signed_by : missing;
		if (list)
			json_array_append_new(list, json_string(id));
	}
	free(seen);
	free(msg);
	assert(out->valid <= out->keys);
	return 0;
}

int repo_count_signatures(const json_t *root_signed, const char *role, const json_t *doc,
			  struct repo_sig_count *out)
{
	return count_sigs(root_signed, role, doc, out, NULL, NULL);
}

/* ---- building metadata ---- */

static json_t *role_obj(json_t *keyids, unsigned threshold)
{
	return json_pack("{s:o,s:I}", "keyids", keyids, "threshold", (json_int_t)threshold);
}

static json_t *snapshot_signed(int64_t version, int64_t expires, int64_t targets_version,
			       const uint8_t *targets_bytes, size_t targets_len)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof(h) + 1];
	crypto_hash_sha256(h, targets_bytes, targets_len);
	hex_encode(h, sizeof(h), hex);
	json_t *s = signed_header("snapshot", version, expires);
	json_t *meta = json_pack("{s:{s:I,s:I,s:{s:s}}}", "targets.json", "version",
				 (json_int_t)targets_version, "length", (json_int_t)targets_len,
				 "hashes", "sha256", hex);
	if (!s || !meta) {
		json_decref(s);
		json_decref(meta);
		return NULL;
	}
	if (json_object_set_new(s, "meta", meta) != 0) { /* meta is released by it */
		json_decref(s);
		return NULL;
	}
	return s;
}

static json_t *timestamp_signed(int64_t version, int64_t expires, int64_t snapshot_version,
				const uint8_t *snap_bytes, size_t snap_len)
{
	uint8_t h[crypto_hash_sha256_BYTES];
	char hex[2 * sizeof(h) + 1];
	crypto_hash_sha256(h, snap_bytes, snap_len);
	hex_encode(h, sizeof(h), hex);
	json_t *s = signed_header("timestamp", version, expires);
	json_t *meta = json_pack("{s:{s:I,s:I,s:{s:s}}}", "snapshot.json", "version",
				 (json_int_t)snapshot_version, "length", (json_int_t)snap_len,
				 "hashes", "sha256", hex);
	if (!s || !meta) {
		json_decref(s);
		json_decref(meta);
		return NULL;
	}
	if (json_object_set_new(s, "meta", meta) != 0) { /* meta is released by it */
		json_decref(s);
		return NULL;
	}
	return s;
}

/* ---- create ---- */

struct gen_file {
	char name[64];
	uint8_t *bytes;
	size_t len;
};

static int create_keys(const char *keys_dir, const char *prefix, unsigned n,
		       struct shoal_keypair *kps, char (*ids)[65], json_t *keys, json_t *keyids,
		       char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		char name[32];
		if (n == 1 && (strcmp(prefix, "snapshot") == 0 || strcmp(prefix, "timestamp") == 0))
			snprintf(name, sizeof(name), "%s", prefix);
		else
			snprintf(name, sizeof(name), "%s-%u", prefix, i + 1);
		int rc = new_key_files(keys_dir, name, &kps[i], ids[i], err, errlen);
		if (rc)
			return rc;
		if (json_object_set_new(keys, ids[i], key_obj(kps[i].pk)) != 0 ||
		    json_array_append_new(keyids, json_string(ids[i])) != 0)
			return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	}
	return 0;
}

static bool create_params_ok(const struct repo_create_params *p, char *err, size_t errlen)
{
	if (!p->dir || strlen(p->dir) == 0 || strlen(p->dir) >= DIR_BYTES_MAX) {
		errf(err, errlen, SHOAL_EINVAL, "repository path missing or too long");
		return false;
	}
	if (p->root_keys < 1 || p->root_keys > SHOAL_REPO_ROLE_KEYS_MAX ||
	    p->root_threshold < 1 || p->root_threshold > p->root_keys) {
		errf(err, errlen, SHOAL_EINVAL, "root keys must be 1..%d with threshold 1..keys",
		     SHOAL_REPO_ROLE_KEYS_MAX);
		return false;
	}
	if (p->publishers < 1 || p->publishers > SHOAL_REPO_ROLE_KEYS_MAX ||
	    p->publisher_threshold < 1 || p->publisher_threshold > p->publishers) {
		errf(err, errlen, SHOAL_EINVAL, "publishers must be 1..%d with threshold 1..publishers",
		     SHOAL_REPO_ROLE_KEYS_MAX);
		return false;
	}
	unsigned days[3] = {p->root_expires_days, p->targets_expires_days, p->online_expires_days};
	for (int i = 0; i < 3; i++) {
		if (days[i] < 1 || days[i] > SHOAL_REPO_EXPIRES_DAYS_MAX) {
			errf(err, errlen, SHOAL_EINVAL, "expiry must be 1..%d days",
			     SHOAL_REPO_EXPIRES_DAYS_MAX);
			return false;
		}
	}
	return true;
}

/* Makes dir (absent: created; present: must be an empty directory). */
static int claim_dir(const char *dir, bool *created, char *err, size_t errlen)
{
	*created = false;
	if (mkdir(dir, 0755) == 0) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return errf(err, errlen, SHOAL_EIO, "mkdir(%s): %s", dir, strerror(errno));
	DIR *d = opendir(dir);
	if (!d)
		return errf(err, errlen, SHOAL_EEXIST, "%s exists and is not a directory", dir);
	struct dirent *e;
	bool empty = true;
	while (empty && (e = readdir(d)) != NULL)
		empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
	closedir(d);
	if (!empty)
		return errf(err, errlen, SHOAL_EEXIST, "%s is not empty: a repository is created "
			    "in a new or empty directory", dir);
	return 0;
}

static void unclaim_dir(const char *dir, bool created)
{
	if (created) {
		(void)rm_tree(dir);
		return;
	}
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	int dfd = dirfd(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)rm_tree_at(dfd, e->d_name, 1);
	closedir(d);
}

static int mkdir_in(const char *dir, const char *name, mode_t mode, char *err, size_t errlen)
{
	char p[SHOAL_PATH_BYTES_MAX];
	if (path_join(p, sizeof(p), dir, name) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", dir);
	if (mkdir(p, mode) != 0)
		return errf(err, errlen, SHOAL_EIO, "mkdir(%s): %s", p, strerror(errno));
	if (chmod(p, mode) != 0) /* the umask may have narrowed it */
		return errf(err, errlen, SHOAL_EIO, "chmod(%s): %s", p, strerror(errno));
	return 0;
}

static int write_gen_files(const char *gdir, const struct gen_file *f, size_t n, char *err,
			   size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		char p[SHOAL_PATH_BYTES_MAX];
		if (path_join(p, sizeof(p), gdir, f[i].name) != 0)
			return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", gdir);
		if (fault_now())
			return errf(err, errlen, SHOAL_EIO, "write(%s): %s", p, strerror(EIO));
		int rc = tfile_write_new(p, f[i].bytes, f[i].len, 0644, err, errlen);
		if (rc)
			return rc;
	}
	fsync_dir(gdir);
	return 0;
}

int repo_create(const struct repo_create_params *p, char *err, size_t errlen)
{
	assert(p && err && errlen);
	err[0] = '\0';
	if (!create_params_ok(p, err, errlen))
		return SHOAL_EINVAL;
	struct shoal_keypair *kps = sodium_malloc(sizeof(*kps) * (p->root_keys + p->publishers + 2));
	char (*ids)[65] = calloc(p->root_keys + p->publishers + 2, 65);
	json_t *keys = json_object(), *root_ids = json_array(), *tgt_ids = json_array();
	json_t *snap_ids = json_array(), *ts_ids = json_array();
	json_t *root_doc = NULL, *tgt_doc = NULL, *snap_doc = NULL, *ts_doc = NULL;
	struct gen_file files[5];
	memset(files, 0, sizeof(files));
	char kdir[SHOAL_PATH_BYTES_MAX], gdir[SHOAL_PATH_BYTES_MAX], link_path[SHOAL_PATH_BYTES_MAX];
	bool created = false, claimed = false;
	int rc = SHOAL_ENOMEM;
	if (!kps || !ids || !keys || !root_ids || !tgt_ids || !snap_ids || !ts_ids) {
		errf(err, errlen, rc, "out of memory");
		goto out;
	}
	rc = claim_dir(p->dir, &created, err, errlen);
	if (rc)
		goto out;
	claimed = true;
	if ((rc = mkdir_in(p->dir, "keys", 0700, err, errlen)) != 0 ||
	    (rc = mkdir_in(p->dir, "targets", 0755, err, errlen)) != 0 ||
	    (rc = mkdir_in(p->dir, "staged", 0755, err, errlen)) != 0 ||
	    (rc = mkdir_in(p->dir, "staged/targets", 0755, err, errlen)) != 0 ||
	    (rc = mkdir_in(p->dir, "generations", 0755, err, errlen)) != 0 ||
	    (rc = mkdir_in(p->dir, "generations/1", 0755, err, errlen)) != 0)
		goto out;
	snprintf(kdir, sizeof(kdir), "%s/keys", p->dir);
	snprintf(gdir, sizeof(gdir), "%s/generations/1", p->dir);
	snprintf(link_path, sizeof(link_path), "%s/metadata", p->dir);

	struct shoal_keypair *rk = kps, *pk = kps + p->root_keys;
	struct shoal_keypair *sk = pk + p->publishers, *tk = sk + 1;
	char (*rid)[65] = ids, (*pid)[65] = ids + p->root_keys;
	char (*sid)[65] = pid + p->publishers, (*tid)[65] = sid + 1;
	if ((rc = create_keys(kdir, "root", p->root_keys, rk, rid, keys, root_ids, err, errlen)) ||
	    (rc = create_keys(kdir, "publisher", p->publishers, pk, pid, keys, tgt_ids, err, errlen)) ||
	    (rc = create_keys(kdir, "snapshot", 1, sk, sid, keys, snap_ids, err, errlen)) ||
	    (rc = create_keys(kdir, "timestamp", 1, tk, tid, keys, ts_ids, err, errlen)))
		goto out;

	rc = SHOAL_ENOMEM;
	json_t *rs = signed_header("root", 1, p->now_s + (int64_t)p->root_expires_days * DAY_S);
	json_t *roles = json_pack("{s:o,s:o,s:o,s:o}", "root", role_obj(root_ids, p->root_threshold),
				  "targets", role_obj(tgt_ids, p->publisher_threshold), "snapshot",
				  role_obj(snap_ids, 1), "timestamp", role_obj(ts_ids, 1));
	root_ids = tgt_ids = snap_ids = ts_ids = NULL; /* owned by roles now */
	if (!rs || !roles || json_object_set_new(rs, "consistent_snapshot", json_true()) ||
	    json_object_set(rs, "keys", keys) || json_object_set_new(rs, "roles", roles)) {
		if (!rs)
			json_decref(roles);
		json_decref(rs);
		errf(err, errlen, rc, "out of memory");
		goto out;
	}
	root_doc = new_doc(rs);
	json_t *ts_signed = signed_header("targets", 1, p->now_s + (int64_t)p->targets_expires_days * DAY_S);
	if (ts_signed && json_object_set_new(ts_signed, "targets", json_object()) != 0) {
		json_decref(ts_signed);
		ts_signed = NULL;
	}
	tgt_doc = new_doc(ts_signed);
	if (!root_doc || !tgt_doc) {
		errf(err, errlen, rc, "out of memory");
		goto out;
	}
	rc = 0;
	for (unsigned i = 0; i < p->root_keys && rc == 0; i++)
		rc = sign_doc(root_doc, &rk[i], rid[i]);
	for (unsigned i = 0; i < p->publishers && rc == 0; i++)
		rc = sign_doc(tgt_doc, &pk[i], pid[i]);
	if (rc == 0)
		rc = encode_doc(root_doc, &files[0].bytes, &files[0].len);
	if (rc == 0)
		rc = encode_doc(tgt_doc, &files[2].bytes, &files[2].len);
	if (rc) {
		errf(err, errlen, rc, "sign or encode: %s", shoal_strerror(rc));
		goto out;
	}
	int64_t online_exp = p->now_s + (int64_t)p->online_expires_days * DAY_S;
	snap_doc = new_doc(snapshot_signed(1, online_exp, 1, files[2].bytes, files[2].len));
	rc = snap_doc ? sign_doc(snap_doc, sk, sid[0]) : SHOAL_ENOMEM;
	if (rc == 0)
		rc = encode_doc(snap_doc, &files[3].bytes, &files[3].len);
	if (rc == 0) {
		ts_doc = new_doc(timestamp_signed(1, online_exp, 1, files[3].bytes, files[3].len));
		rc = ts_doc ? sign_doc(ts_doc, tk, tid[0]) : SHOAL_ENOMEM;
	}
	if (rc == 0)
		rc = encode_doc(ts_doc, &files[4].bytes, &files[4].len);
	if (rc == 0 && !(files[1].bytes = malloc(files[0].len)))
		rc = SHOAL_ENOMEM;
	if (rc) {
		errf(err, errlen, rc, "sign or encode: %s", shoal_strerror(rc));
		goto out;
	}
	memcpy(files[1].bytes, files[0].bytes, files[0].len);
	files[1].len = files[0].len;
	snprintf(files[0].name, sizeof(files[0].name), "1.root.json");
	snprintf(files[1].name, sizeof(files[1].name), "root.json");
	snprintf(files[2].name, sizeof(files[2].name), "1.targets.json");
	snprintf(files[3].name, sizeof(files[3].name), "1.snapshot.json");
	snprintf(files[4].name, sizeof(files[4].name), "timestamp.json");
	rc = write_gen_files(gdir, files, 5, err, errlen);
	if (rc)
		goto out;
	if (symlink("generations/1", link_path) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "symlink(%s): %s", link_path, strerror(errno));
		goto out;
	}
	fsync_dir(p->dir);
	log_info("release_repo_created", "generation=1 root_keys=%u publishers=%u threshold=%u",
		 p->root_keys, p->publishers, p->publisher_threshold);
out:
	if (rc && claimed)
		unclaim_dir(p->dir, created);
	for (size_t i = 0; i < 5; i++)
		free(files[i].bytes);
	json_decref(root_doc);
	json_decref(tgt_doc);
	json_decref(snap_doc);
	json_decref(ts_doc);
	json_decref(keys);
	json_decref(root_ids);
	json_decref(tgt_ids);
	json_decref(snap_ids);
	json_decref(ts_ids);
	free(ids);
	if (kps)
		sodium_free(kps); /* zeroes the secret keys */
	return rc;
}

/* ---- open ---- */

static int load_md(const struct repo *r, const char *file, enum tuf_type type, size_t max,
		   struct tuf_md *md, char *err, size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(path, sizeof(path), "%s/metadata/%s", r->dir, file);
	if (n < 0 || (size_t)n >= sizeof(path))
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", r->dir);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(path, max, &buf, &len);
	if (rc)
		return errf(err, errlen, rc, "read %s: %s", path, shoal_strerror(rc));
	rc = tuf_md_parse(buf, len, type, md);
	free(buf);
	if (rc)
		return errf(err, errlen, rc, "%s: not valid TUF metadata (%s)", path, shoal_strerror(rc));
	return 0;
}

static void clear_published(struct repo *r)
{
	tuf_md_clear(&r->root);
	tuf_md_clear(&r->timestamp);
	tuf_md_clear(&r->snapshot);
	tuf_md_clear(&r->targets);
}

static int load_published(struct repo *r, char *err, size_t errlen)
{
	char link_path[SHOAL_PATH_BYTES_MAX], target[256], file[64];
	clear_published(r);
	snprintf(link_path, sizeof(link_path), "%s/metadata", r->dir);
	ssize_t n = readlink(link_path, target, sizeof(target) - 1);
	if (n < 0)
		return errf(err, errlen, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EPROTO,
			    "%s: not a repository made by 'shoal release init' (%s is %s)", r->dir,
			    link_path, errno == ENOENT ? "missing" : "not a symlink");
	target[n] = '\0';
	char *end = NULL;
	if (strncmp(target, "generations/", 12) != 0 || target[12] < '1' || target[12] > '9')
		return errf(err, errlen, SHOAL_EPROTO, "%s points to '%s', not generations/N", link_path, target);
	errno = 0;
	r->generation = strtoul(target + 12, &end, 10);
	if (errno || *end != '\0' || r->generation == 0)
		return errf(err, errlen, SHOAL_EPROTO, "%s points to '%s', not generations/N", link_path, target);
	int rc = load_md(r, "root.json", TUF_TYPE_ROOT, SHOAL_TUF_ROOT_BYTES_MAX, &r->root, err, errlen);
	if (!rc)
		rc = load_md(r, "timestamp.json", TUF_TYPE_TIMESTAMP, SHOAL_TUF_TIMESTAMP_BYTES_MAX,
			     &r->timestamp, err, errlen);
	if (!rc) {
		int64_t v = jint(json_object_get(json_object_get(r->timestamp.signed_obj, "meta"),
						 "snapshot.json"), "version", 0);
		snprintf(file, sizeof(file), "%" PRId64 ".snapshot.json", v);
		rc = load_md(r, file, TUF_TYPE_SNAPSHOT, SHOAL_TUF_SNAPSHOT_BYTES_MAX, &r->snapshot, err, errlen);
	}
	if (!rc) {
		int64_t v = jint(json_object_get(json_object_get(r->snapshot.signed_obj, "meta"),
						 "targets.json"), "version", 0);
		snprintf(file, sizeof(file), "%" PRId64 ".targets.json", v);
		rc = load_md(r, file, TUF_TYPE_TARGETS, SHOAL_TUF_TARGETS_BYTES_MAX, &r->targets, err, errlen);
	}
	if (!rc && !r->root.consistent_snapshot)
		rc = errf(err, errlen, SHOAL_EPROTO, "%s: root does not use consistent snapshots", r->dir);
	if (rc)
		clear_published(r);
	return rc;
}

static int staged_path(const struct repo *r, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/staged/%s", r->dir, name);
	return n < 0 || (size_t)n >= cap ? SHOAL_ETOOBIG : 0;
}

/* Loads staged/NAME; a leftover no newer than published is removed. */
static int load_staged_doc(struct repo *r, const char *name, enum tuf_type type,
			   int64_t published_version, json_t **out, char *err, size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	*out = NULL;
	if (staged_path(r, name, path, sizeof(path)) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", r->dir);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(path, SHOAL_TUF_METADATA_BYTES_MAX, &buf, &len);
	if (rc == SHOAL_ENOTFOUND)
		return 0;
	if (rc)
		return errf(err, errlen, rc, "read %s: %s", path, shoal_strerror(rc));
	struct tuf_md md;
	rc = tuf_md_parse(buf, len, type, &md);
	free(buf);
	if (rc)
		return errf(err, errlen, rc, "%s: not valid TUF metadata (%s); remove it with "
			    "'shoal release discard'", path, shoal_strerror(rc));
	if (md.version <= published_version) {
		log_info("release_staged_leftover", "file=%s version=%" PRId64, name, md.version);
		tuf_md_clear(&md);
		unlink(path);
		return 0;
	}
	*out = json_incref(md.doc);
	tuf_md_clear(&md);
	return 0;
}

int repo_open(const char *dir, struct repo **out, char *err, size_t errlen)
{
	assert(dir && out && err && errlen);
	*out = NULL;
	err[0] = '\0';
	char abs[PATH_MAX];
	if (!realpath(dir, abs))
		return errf(err, errlen, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO,
			    "%s: %s", dir, strerror(errno));
	if (strlen(abs) >= DIR_BYTES_MAX)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", abs);
	struct repo *r = calloc(1, sizeof(*r));
	if (!r)
		return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	r->lock_fd = -1;
	memcpy(r->dir, abs, strlen(abs) + 1); /* length checked above */
	char lock[SHOAL_PATH_BYTES_MAX];
	snprintf(lock, sizeof(lock), "%s/.lock", r->dir);
	r->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc;
	if (r->lock_fd < 0) {
		rc = errf(err, errlen, SHOAL_EIO, "open(%s): %s", lock, strerror(errno));
		goto fail;
	}
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = errf(err, errlen, SHOAL_ESTATE, "another 'shoal release' is working on %s "
			  "(%s is locked)", r->dir, lock);
		goto fail;
	}
	rc = load_published(r, err, errlen);
	if (!rc)
		rc = load_staged_doc(r, "root.json", TUF_TYPE_ROOT, r->root.version, &r->st_root, err, errlen);
	if (!rc)
		rc = load_staged_doc(r, "targets.json", TUF_TYPE_TARGETS, r->targets.version,
				     &r->st_targets, err, errlen);
	if (rc)
		goto fail;
	*out = r;
	return 0;
fail:
	repo_close(r);
	return rc;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	clear_published(r);
	json_decref(r->st_targets);
	json_decref(r->st_root);
	if (r->lock_fd >= 0)
		close(r->lock_fd); /* releases the flock */
	free(r);
}

const char *repo_path(const struct repo *r)
{
	return r->dir;
}

/* The root in effect once published: the staged one, if any. */
static const json_t *effective_root(const struct repo *r)
{
	return r->st_root ? json_object_get(r->st_root, "signed") : r->root.signed_obj;
}

static int save_staged(struct repo *r, const char *name, const json_t *doc, char *err,
		       size_t errlen)
{
	char sdir[SUBDIR_BYTES_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	snprintf(sdir, sizeof(sdir), "%s/staged", r->dir);
	int rc = encode_doc(doc, &buf, &len);
	if (rc)
		return errf(err, errlen, rc, "staged %s: encode: %s", name, shoal_strerror(rc));
	rc = write_replace(sdir, name, buf, len, 0644);
	free(buf);
	if (rc)
		return errf(err, errlen, rc, "write %s/%s: %s", sdir, name, strerror(errno));
	return 0;
}

/* ---- staging targets ---- */

bool repo_valid_target_name(const char *name)
{
	size_t len = strlen(name), part = 0, parts = 1;
	if (len == 0 || len > SHOAL_TUF_TARGET_NAME_BYTES_MAX || name[0] == '/' || name[len - 1] == '/')
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		if (c == '/' || c == '\0') {
			const char *start = name + i - part;
			if (part == 0 || part > SHOAL_REPO_NAME_PART_BYTES_MAX || (part == 1 && start[0] == '.') ||
			    (part == 2 && start[0] == '.' && start[1] == '.'))
				return false;
			part = 0;
			if (c == '/' && ++parts > SHOAL_REPO_DIR_DEPTH_MAX)
				return false;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '~' || c == '+' || c == '-';
		if (!ok)
			return false;
		part++;
	}
	return true;
}

/* Copies file into staged/targets/SHA256 while hashing it. */
static int stage_file(struct repo *r, const char *file, int64_t *length, char sha256[65],
		      char sha512[129], char *err, size_t errlen)
{
	char tmp[SHOAL_PATH_BYTES_MAX], dst[SHOAL_PATH_BYTES_MAX];
	crypto_hash_sha256_state s256;
	crypto_hash_sha512_state s512;
	uint8_t h256[crypto_hash_sha256_BYTES], h512[crypto_hash_sha512_BYTES];
	int in = open(file, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
	uint8_t *chunk = NULL;
	uint64_t total = 0;
	struct stat st;
	tmp[0] = '\0';
	if (in < 0)
		return errf(err, errlen, errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO, "open(%s): %s",
			    file, strerror(errno));
	if (fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = errf(err, errlen, SHOAL_EINVAL, "%s: not a regular file", file);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s/staged/targets/.add.XXXXXX", r->dir);
	out = mkstemp(tmp);
	chunk = malloc(COPY_CHUNK_BYTES);
	if (out < 0 || !chunk) {
		rc = errf(err, errlen, out < 0 ? SHOAL_EIO : SHOAL_ENOMEM, "create %s: %s", tmp,
			  strerror(errno));
		if (out < 0)
			tmp[0] = '\0';
		goto out;
	}
	crypto_hash_sha256_init(&s256);
	crypto_hash_sha512_init(&s512);
	for (;;) {
		ssize_t n = read(in, chunk, COPY_CHUNK_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = errf(err, errlen, SHOAL_EIO, "read(%s): %s", file, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > SHOAL_TUF_TARGET_BYTES_MAX) {
			rc = errf(err, errlen, SHOAL_ETOOBIG, "%s: larger than the %u-byte target bound",
				  file, (unsigned)SHOAL_TUF_TARGET_BYTES_MAX);
			goto out;
		}
		crypto_hash_sha256_update(&s256, chunk, (unsigned long long)n);
		crypto_hash_sha512_update(&s512, chunk, (unsigned long long)n);
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, chunk + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = errf(err, errlen, SHOAL_EIO, "write(%s): %s", tmp, strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	if (fchmod(out, 0644) != 0 || fsync(out) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "write(%s): %s", tmp, strerror(errno));
		goto out;
	}
	crypto_hash_sha256_final(&s256, h256);
	crypto_hash_sha512_final(&s512, h512);
	hex_encode(h256, sizeof(h256), sha256);
	hex_encode(h512, sizeof(h512), sha512);
	snprintf(dst, sizeof(dst), "%s/staged/targets/%s", r->dir, sha256);
	if (rename(tmp, dst) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "rename(%s): %s", dst, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	*length = (int64_t)total;
out:
	free(chunk);
	if (out >= 0)
		close(out);
	if (tmp[0])
		unlink(tmp);
	close(in);
	return rc;
}

/* A copy of the staged targets to change, or a new T+1 from the published. */
static json_t *targets_draft(struct repo *r, int64_t now_s, unsigned expires_days)
{
	json_t *doc;
	if (r->st_targets) {
		doc = json_deep_copy(r->st_targets);
	} else {
		json_t *s = json_deep_copy(r->targets.signed_obj);
		if (s && json_object_set_new(s, "version", json_integer(r->targets.version + 1)) != 0) {
			json_decref(s);
			s = NULL;
		}
		if (s && json_object_set_new(s, "spec_version", json_string(REPO_SPEC_VERSION)) != 0) {
			json_decref(s);
			s = NULL;
		}
		doc = new_doc(s);
		if (doc && expires_days == 0)
			expires_days = REPO_TARGETS_EXPIRES_DAYS_DEFAULT;
	}
	if (doc && expires_days > 0) {
		char when[32];
		fmt_time(now_s + (int64_t)expires_days * DAY_S, when);
		if (json_object_set_new(json_object_get(doc, "signed"), "expires", json_string(when)) != 0) {
			json_decref(doc);
			doc = NULL;
		}
	}
	return doc;
}

/* Drops draft's signatures when its signed part differs from before's (the
 * signatures no longer cover it); saves it as the staged targets. */
static int commit_targets_draft(struct repo *r, json_t *draft, unsigned *dropped, char *err,
				size_t errlen)
{
	const json_t *before = r->st_targets ? json_object_get(r->st_targets, "signed") : NULL;
	json_t *sigs = json_object_get(draft, "signatures");
	*dropped = 0;
	if (before && !json_equal((json_t *)before, json_object_get(draft, "signed"))) {
		*dropped = (unsigned)json_array_size(sigs);
		json_array_clear(sigs);
	}
	struct tuf_md check;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = encode_doc(draft, &buf, &len);
	if (!rc) {
		rc = tuf_md_parse(buf, len, TUF_TYPE_TARGETS, &check); /* what clients will parse */
		free(buf);
		tuf_md_clear(&check);
	}
	if (rc)
		return errf(err, errlen, rc, "staged targets would not be valid metadata (%s)",
			    shoal_strerror(rc));
	rc = save_staged(r, "targets.json", draft, err, errlen);
	if (rc)
		return rc;
	json_decref(r->st_targets);
	r->st_targets = json_incref(draft);
	return 0;
}

/* Metadata files are the canonical bytes, which write every string byte as
 * is: a control byte would make them invalid JSON to every parser, so
 * custom strings may not hold one. Object keys are printable ASCII, since
 * implementations sort keys by UTF-8 bytes or by UTF-16 units, which
 * disagree beyond the BMP. Depth is bounded by cjson_parse/encode. */
static bool custom_ok(const json_t *v, int depth)
{
	if (depth > SHOAL_CJSON_DEPTH_MAX)
		return false;
	if (json_is_string(v)) {
		const unsigned char *p = (const unsigned char *)json_string_value(v);
		for (size_t i = 0; i < json_string_length(v); i++)
			if (p[i] < 0x20 || p[i] == 0x7f)
				return false;
		return true;
	}
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!custom_ok(json_array_get(v, i), depth + 1))
				return false;
		return true;
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) {
			for (const unsigned char *p = (const unsigned char *)k; *p; p++)
				if (*p < 0x20 || *p >= 0x7f)
					return false;
			if (!custom_ok(x, depth + 1))
				return false;
		}
	}
	return true;
}

int repo_add_target(struct repo *r, const char *file, const char *name, const json_t *custom,
		    int64_t now_s, unsigned expires_days, unsigned *dropped, char *err,
		    size_t errlen)
{
	assert(r && file && name && dropped);
	*dropped = 0;
	if (!repo_valid_target_name(name))
		return errf(err, errlen, SHOAL_EINVAL,
			    "target name '%s': use '/'-separated parts of A-Z a-z 0-9 . _ ~ + - "
			    "(not '.' or '..', each at most %d bytes, at most %d bytes in all)",
			    name, SHOAL_REPO_NAME_PART_BYTES_MAX, SHOAL_TUF_TARGET_NAME_BYTES_MAX);
	if (expires_days > SHOAL_REPO_EXPIRES_DAYS_MAX)
		return errf(err, errlen, SHOAL_EINVAL, "expiry must be 1..%d days", SHOAL_REPO_EXPIRES_DAYS_MAX);
	if (custom) {
		uint8_t *buf = NULL;
		size_t len = 0;
		if (!json_is_object(custom))
			return errf(err, errlen, SHOAL_EINVAL, "custom must be a JSON object");
		int rc = cjson_encode(custom, SHOAL_REPO_CUSTOM_BYTES_MAX, &buf, &len);
		free(buf);
		if (rc)
			return errf(err, errlen, SHOAL_EINVAL, "custom: %s",
				    rc == SHOAL_ETOOBIG ? "larger than the bound on custom JSON"
							: "not canonical JSON (no real numbers allowed)");
		if (!custom_ok(custom, 0))
			return errf(err, errlen, SHOAL_EINVAL, "custom: strings may not hold control "
				    "characters, and keys must be printable ASCII");
	}
	int64_t length = 0;
	char sha256[65], sha512[129];
	int rc = stage_file(r, file, &length, sha256, sha512, err, errlen);
	if (rc)
		return rc;
	json_t *draft = targets_draft(r, now_s, expires_days);
	json_t *entry = json_pack("{s:I,s:{s:s,s:s}}", "length", (json_int_t)length, "hashes",
				  "sha256", sha256, "sha512", sha512);
	json_t *targets = json_object_get(json_object_get(draft, "signed"), "targets");
	rc = SHOAL_ENOMEM;
	if (!draft || !entry || !json_is_object(targets) ||
	    (custom && json_object_set_new(entry, "custom", json_deep_copy(custom)) != 0)) {
		errf(err, errlen, rc, "out of memory");
		goto out;
	}
	if (!json_object_get(targets, name) && json_object_size(targets) >= SHOAL_REPO_TARGETS_MAX) {
		rc = errf(err, errlen, SHOAL_EFULL, "targets: at most %d per version", SHOAL_REPO_TARGETS_MAX);
		goto out;
	}
	if (json_object_set(targets, name, entry) != 0) {
		errf(err, errlen, rc, "out of memory");
		goto out;
	}
	rc = commit_targets_draft(r, draft, dropped, err, errlen);
	if (!rc)
		log_info("release_target_staged", "name=%s length=%" PRId64 " sha256=%s", name, length, sha256);
out:
	json_decref(entry);
	json_decref(draft);
	return rc;
}

int repo_remove_target(struct repo *r, const char *name, int64_t now_s, unsigned *dropped,
		       char *err, size_t errlen)
{
	assert(r && name && dropped);
	*dropped = 0;
	json_t *draft = targets_draft(r, now_s, 0);
	if (!draft)
		return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	json_t *targets = json_object_get(json_object_get(draft, "signed"), "targets");
	int rc;
	if (json_object_del(targets, name) != 0)
		rc = errf(err, errlen, SHOAL_ENOTFOUND, "target '%s' is not in the staged or published targets", name);
	else
		rc = commit_targets_draft(r, draft, dropped, err, errlen);
	json_decref(draft);
	return rc;
}

int repo_stage_targets(struct repo *r, int64_t now_s, unsigned expires_days, unsigned *dropped,
		       char *err, size_t errlen)
{
	assert(r && dropped);
	*dropped = 0;
	if (expires_days > SHOAL_REPO_EXPIRES_DAYS_MAX)
		return errf(err, errlen, SHOAL_EINVAL, "expiry must be 1..%d days", SHOAL_REPO_EXPIRES_DAYS_MAX);
	json_t *draft = targets_draft(r, now_s, expires_days);
	if (!draft)
		return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	int rc = commit_targets_draft(r, draft, dropped, err, errlen);
	json_decref(draft);
	return rc;
}

/* ---- root rotation ---- */

static bool is_top_role(const char *role)
{
	for (int i = 0; i < 4; i++)
		if (role && strcmp(role, top_roles[i]) == 0)
			return true;
	return false;
}

/* Removes from keys every key no role lists. */
static void prune_keys(json_t *s)
{
	json_t *keys = json_object_get(s, "keys"), *roles = json_object_get(s, "roles");
	const char *id;
	json_t *v, *tmp;
	json_object_foreach_safe(keys, tmp, id, v) {
		bool used = false;
		for (int i = 0; i < 4 && !used; i++)
			used = keyid_listed(json_object_get(json_object_get(roles, top_roles[i]), "keyids"), id);
		if (!used)
			json_object_del(keys, id);
	}
}

static int rotation_remove(json_t *s, const char *role, const char *prefix, char *err, size_t errlen)
{
	json_t *ids = json_object_get(json_object_get(json_object_get(s, "roles"), role), "keyids");
	size_t plen = strlen(prefix), hit = 0, at = 0;
	if (plen < 8 || plen > 64 || strspn(prefix, "0123456789abcdef") != plen)
		return errf(err, errlen, SHOAL_EINVAL, "key id '%s': give at least 8 lower-case hex digits", prefix);
	for (size_t i = 0; i < json_array_size(ids); i++) {
		if (strncmp(nz(json_string_value(json_array_get(ids, i))), prefix, plen) == 0) {
			hit++;
			at = i;
		}
	}
	if (hit != 1)
		return errf(err, errlen, hit ? SHOAL_EINVAL : SHOAL_ENOTFOUND,
			    "key id %s %s in the %s role", prefix, hit ? "is ambiguous" : "is not", role);
	json_array_remove(ids, at);
	return 0;
}

static int rotation_add(json_t *s, const char *role, const uint8_t pk[32], char *err, size_t errlen)
{
	char id[65];
	json_t *ids = json_object_get(json_object_get(json_object_get(s, "roles"), role), "keyids");
	int rc = keyid_of(pk, id);
	if (rc)
		return errf(err, errlen, rc, "key id: %s", shoal_strerror(rc));
	if (keyid_listed(ids, id))
		return errf(err, errlen, SHOAL_EEXIST, "key %.16s is already a %s key", id, role);
	if (json_array_size(ids) >= SHOAL_REPO_ROLE_KEYS_MAX)
		return errf(err, errlen, SHOAL_EFULL, "the %s role has %d keys already", role, SHOAL_REPO_ROLE_KEYS_MAX);
	if (json_object_set_new(json_object_get(s, "keys"), id, key_obj(pk)) != 0 ||
	    json_array_append_new(ids, json_string(id)) != 0)
		return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	return 0;
}

/* Replaces role's keys with one fresh key in keys/ (ROLE-KEYID8.key). */
static int rotation_online(struct repo *r, json_t *s, const char *role, char made[][SHOAL_PATH_BYTES_MAX],
			   size_t *nmade, char *err, size_t errlen)
{
	struct shoal_keypair kp;
	char id[65], name[64], kdir[SUBDIR_BYTES_MAX];
	snprintf(kdir, sizeof(kdir), "%s/keys", r->dir);
	keys_generate(&kp);
	int rc = keyid_of(kp.pk, id);
	if (rc) {
		errf(err, errlen, rc, "key id: %s", shoal_strerror(rc));
		goto out;
	}
	snprintf(name, sizeof(name), "%s-%.8s", role, id);
	rc = save_key_files(kdir, name, &kp, err, errlen);
	if (rc)
		goto out;
	snprintf(made[(*nmade)++], SHOAL_PATH_BYTES_MAX, "%s/%s.key", kdir, name);
	snprintf(made[(*nmade)++], SHOAL_PATH_BYTES_MAX, "%s/%s.pub", kdir, name);
	json_t *roles = json_object_get(s, "roles");
	json_t *ids = json_array();
	if (!ids || json_object_set_new(json_object_get(s, "keys"), id, key_obj(kp.pk)) != 0 ||
	    json_array_append_new(ids, json_string(id)) != 0 ||
	    json_object_set_new(roles, role, role_obj(ids, 1)) != 0)
		rc = errf(err, errlen, SHOAL_ENOMEM, "out of memory");
out:
	sodium_memzero(&kp, sizeof(kp));
	return rc;
}

int repo_rotate_root(struct repo *r, const struct repo_rotation *rot, int64_t now_s,
		     char *err, size_t errlen)
{
	assert(r && rot);
	char made[4][SHOAL_PATH_BYTES_MAX];
	size_t nmade = 0;
	json_t *s = r->st_root ? json_deep_copy(json_object_get(r->st_root, "signed"))
			       : json_deep_copy(r->root.signed_obj);
	json_t *doc = NULL;
	int rc = 0;
	if (!s)
		return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
	if (rot->expires_days > SHOAL_REPO_EXPIRES_DAYS_MAX || rot->add_count > SHOAL_REPO_ROLE_KEYS_MAX ||
	    rot->remove_count > SHOAL_REPO_ROLE_KEYS_MAX || rot->threshold_count > 4) {
		rc = errf(err, errlen, SHOAL_EINVAL, "rotation: too many changes or expiry over %d days",
			  SHOAL_REPO_EXPIRES_DAYS_MAX);
		goto out;
	}
	if (!r->st_root &&
	    json_object_set_new(s, "version", json_integer(r->root.version + 1)) != 0) {
		rc = errf(err, errlen, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	if (!r->st_root || rot->expires_days) {
		char when[32];
		unsigned days = rot->expires_days ? rot->expires_days : REPO_ROOT_EXPIRES_DAYS_DEFAULT;
		fmt_time(now_s + (int64_t)days * DAY_S, when);
		json_object_set_new(s, "expires", json_string(when));
		json_object_set_new(s, "spec_version", json_string(REPO_SPEC_VERSION));
	}
	for (size_t i = 0; i < rot->remove_count && !rc; i++) {
		if (!is_top_role(rot->remove[i].role))
			rc = errf(err, errlen, SHOAL_EINVAL, "unknown role '%s'", nz(rot->remove[i].role));
		else
			rc = rotation_remove(s, rot->remove[i].role, rot->remove[i].keyid, err, errlen);
	}
	for (size_t i = 0; i < rot->add_count && !rc; i++) {
		if (!is_top_role(rot->add[i].role))
			rc = errf(err, errlen, SHOAL_EINVAL, "unknown role '%s'", nz(rot->add[i].role));
		else
			rc = rotation_add(s, rot->add[i].role, rot->add[i].pk, err, errlen);
	}
	if (!rc && rot->new_online_keys) {
		rc = rotation_online(r, s, "snapshot", made, &nmade, err, errlen);
		if (!rc)
			rc = rotation_online(r, s, "timestamp", made, &nmade, err, errlen);
	}
	for (size_t i = 0; i < rot->threshold_count && !rc; i++) {
		const char *role = rot->threshold[i].role;
		if (!is_top_role(role) || rot->threshold[i].threshold < 1)
			rc = errf(err, errlen, SHOAL_EINVAL, "threshold: unknown role '%s' or threshold 0", nz(role));
		else
			json_object_set_new(json_object_get(json_object_get(s, "roles"), role), "threshold",
					    json_integer(rot->threshold[i].threshold));
	}
	for (int i = 0; i < 4 && !rc; i++) {
		const json_t *role = json_object_get(json_object_get(s, "roles"), top_roles[i]);
		int64_t n = (int64_t)json_array_size(json_object_get(role, "keyids"));
		int64_t t = jint(role, "threshold", 0);
		if (n < 1 || t < 1 || t > n)
			rc = errf(err, errlen, SHOAL_EINVAL, "the %s role would have threshold %" PRId64
				  " with %" PRId64 " key(s): it needs 1 <= threshold <= keys", top_roles[i], t, n);
	}
	if (rc)
		goto out;
	prune_keys(s);
	doc = new_doc(json_incref(s));
	if (!doc) {
		rc = errf(err, errlen, SHOAL_ENOMEM, "out of memory");
		goto out;
	}
	if (r->st_root && json_equal(json_object_get(r->st_root, "signed"), s)) {
		json_object_set(doc, "signatures", json_object_get(r->st_root, "signatures"));
	}
	uint8_t *buf = NULL;
	size_t len = 0;
	struct tuf_md check;
	rc = encode_doc(doc, &buf, &len);
	if (!rc) {
		rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, &check);
		tuf_md_clear(&check);
		free(buf);
	}
	if (rc) {
		errf(err, errlen, rc, "the new root would not be valid metadata (%s)", shoal_strerror(rc));
		goto out;
	}
	rc = save_staged(r, "root.json", doc, err, errlen);
	if (rc)
		goto out;
	json_decref(r->st_root);
	r->st_root = json_incref(doc);
	log_info("release_root_staged", "version=%" PRId64, jint(s, "version", 0));
out:
	if (rc)
		for (size_t i = 0; i < nmade; i++)
			unlink(made[i]);
	json_decref(doc);
	json_decref(s);
	return rc;
}

/* ---- signing ---- */

int repo_sign(struct repo *r, const char *key_path, unsigned mask, struct repo_sign_result *res,
	      char *err, size_t errlen)
{
	assert(r && key_path && res);
	memset(res, 0, sizeof(*res));
	if (mask == 0)
		mask = REPO_ROLE_ROOT | REPO_ROLE_TARGETS;
	if (!(r->st_root && (mask & REPO_ROLE_ROOT)) && !(r->st_targets && (mask & REPO_ROLE_TARGETS)))
		return errf(err, errlen, SHOAL_ESTATE, "nothing staged to sign%s: stage a release "
			    "first (shoal release add, stage or rotate-root)",
			    mask == REPO_ROLE_ROOT ? " for the root role" :
			    mask == REPO_ROLE_TARGETS ? " for the targets role" : "");
	struct shoal_keypair kp;
	json_t *nroot = NULL, *ntgt = NULL;
	int rc = keys_load(key_path, &kp, err, errlen);
	if (rc)
		return rc;
	rc = keyid_of(kp.pk, res->keyid);
	if (rc) {
		errf(err, errlen, rc, "key id: %s", shoal_strerror(rc));
		goto out;
	}
	const json_t *eff = effective_root(r);
	bool may_root = r->st_root && (mask & REPO_ROLE_ROOT) &&
			(key_authorised(r->root.signed_obj, "root", res->keyid, kp.pk) ||
			 key_authorised(json_object_get(r->st_root, "signed"), "root", res->keyid, kp.pk));
	bool may_tgt = r->st_targets && (mask & REPO_ROLE_TARGETS) &&
		       key_authorised(eff, "targets", res->keyid, kp.pk);
	if (!may_root && !may_tgt) {
		rc = errf(err, errlen, SHOAL_EUNADMITTED,
			  "key %.16s (%s) is not authorised to sign the staged %s: %s", res->keyid,
			  key_path, r->st_targets && (mask & REPO_ROLE_TARGETS) ? "targets" : "root",
			  r->st_targets && (mask & REPO_ROLE_TARGETS)
				  ? "it is not one of the targets (publisher) keys"
				  : "it is not a root key of the current or the new root");
		goto out;
	}
	if (may_root && doc_has_sig(r->st_root, res->keyid))
		may_root = false;
	if (may_tgt && doc_has_sig(r->st_targets, res->keyid))
		may_tgt = false;
	if (!may_root && !may_tgt) {
		rc = errf(err, errlen, SHOAL_EEXIST, "key %.16s (%s) has already signed the staged %s",
			  res->keyid, key_path, r->st_targets && (mask & REPO_ROLE_TARGETS) ? "targets" : "root");
		goto out;
	}
	if (may_root) {
		nroot = json_deep_copy(r->st_root);
		rc = nroot ? sign_doc(nroot, &kp, res->keyid) : SHOAL_ENOMEM;
		if (!rc)
			rc = save_staged(r, "root.json", nroot, err, errlen);
		else
			errf(err, errlen, rc, "sign root: %s", shoal_strerror(rc));
		if (rc)
			goto out;
		json_decref(r->st_root);
		r->st_root = nroot;
		nroot = NULL;
		res->signed_mask |= REPO_ROLE_ROOT;
	}
	if (may_tgt) {
		ntgt = json_deep_copy(r->st_targets);
		rc = ntgt ? sign_doc(ntgt, &kp, res->keyid) : SHOAL_ENOMEM;
		if (!rc)
			rc = save_staged(r, "targets.json", ntgt, err, errlen);
		else
			errf(err, errlen, rc, "sign targets: %s", shoal_strerror(rc));
		if (rc)
			goto out;
		json_decref(r->st_targets);
		r->st_targets = ntgt;
		ntgt = NULL;
		res->signed_mask |= REPO_ROLE_TARGETS;
	}
	if (r->st_targets)
		(void)count_sigs(effective_root(r), "targets", r->st_targets, &res->targets, NULL, NULL);
	if (r->st_root) {
		(void)count_sigs(r->root.signed_obj, "root", r->st_root, &res->root_old, NULL, NULL);
		(void)count_sigs(json_object_get(r->st_root, "signed"), "root", r->st_root,
				 &res->root_new, NULL, NULL);
	}
	log_info("release_signed", "keyid=%.16s roles=%s%s", res->keyid,
		 (res->signed_mask & REPO_ROLE_ROOT) ? "root," : "",
		 (res->signed_mask & REPO_ROLE_TARGETS) ? "targets" : "");
out:
	json_decref(nroot);
	json_decref(ntgt);
	sodium_memzero(&kp, sizeof(kp));
	return rc;
}

static void remove_staged_files(struct repo *r)
{
	char sdir[SUBDIR_BYTES_MAX];
	snprintf(sdir, sizeof(sdir), "%s/staged/targets", r->dir);
	DIR *d = opendir(sdir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' || strncmp(e->d_name, ".add.", 5) == 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static int discard(struct repo *r, unsigned mask, char *err, size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	bool any = false;
	assert(r);
	if ((mask & REPO_ROLE_ROOT) && r->st_root) {
		staged_path(r, "root.json", path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT)
			return errf(err, errlen, SHOAL_EIO, "unlink(%s): %s", path, strerror(errno));
		json_decref(r->st_root);
		r->st_root = NULL;
		any = true;
	}
	if ((mask & REPO_ROLE_TARGETS) && r->st_targets) {
		staged_path(r, "targets.json", path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT)
			return errf(err, errlen, SHOAL_EIO, "unlink(%s): %s", path, strerror(errno));
		json_decref(r->st_targets);
		r->st_targets = NULL;
		remove_staged_files(r);
		any = true;
	}
	if (!any)
		return errf(err, errlen, SHOAL_ENOTFOUND, "nothing staged to discard");
	return 0;
}

int repo_discard(struct repo *r, unsigned mask, char *err, size_t errlen)
{
	return discard(r, mask, err, errlen);
}

/* ---- publishing ---- */

/* Loads up to want keys from keys/ that role authorises in root_signed. */
static int online_keys(struct repo *r, const json_t *root_signed, const char *role,
		       struct shoal_keypair *kps, char (*ids)[65], size_t want, size_t *got,
		       char *err, size_t errlen)
{
	char kdir[SUBDIR_BYTES_MAX];
	snprintf(kdir, sizeof(kdir), "%s/keys", r->dir);
	*got = 0;
	DIR *d = opendir(kdir);
	if (!d)
		return errf(err, errlen, SHOAL_EIO, "opendir(%s): %s", kdir, strerror(errno));
	struct dirent *e;
	size_t seen = 0;
	int rc = 0;
	while (rc == 0 && *got < want && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 5 || n > 200 || strcmp(e->d_name + n - 4, ".pub") != 0)
			continue;
		if (++seen > SHOAL_REPO_KEY_FILES_MAX) {
			rc = errf(err, errlen, SHOAL_EFULL, "%s: more than %d .pub files", kdir,
				  SHOAL_REPO_KEY_FILES_MAX);
			break;
		}
		char pub[SHOAL_PATH_BYTES_MAX], key[SHOAL_PATH_BYTES_MAX], id[65];
		uint8_t pk[32];
		snprintf(pub, sizeof(pub), "%s/%s", kdir, e->d_name);
		snprintf(key, sizeof(key), "%s/%.*s.key", kdir, (int)(n - 4), e->d_name);
		if (repo_read_public_key(pub, pk, NULL, 0) != 0 || keyid_of(pk, id) != 0 ||
		    !key_authorised(root_signed, role, id, pk))
			continue;
		bool dup = false;
		for (size_t i = 0; i < *got && !dup; i++)
			dup = strcmp(ids[i], id) == 0;
		if (dup)
			continue;
		rc = keys_load(key, &kps[*got], err, errlen);
		if (rc == 0 && sodium_memcmp(kps[*got].pk, pk, 32) != 0)
			rc = errf(err, errlen, SHOAL_EPROTO, "%s does not hold the key of %s", key, pub);
		if (rc == 0)
			snprintf(ids[(*got)++], 65, "%s", id);
	}
	closedir(d);
	return rc;
}

/* Makes an online role's new document: signed by threshold keys in keys/. */
static int sign_online(struct repo *r, const json_t *root_signed, const char *role, json_t *doc,
		       char *err, size_t errlen)
{
	const json_t *rl = json_object_get(json_object_get(root_signed, "roles"), role);
	int64_t t = jint(rl, "threshold", 0);
	if (t < 1 || t > SHOAL_REPO_ROLE_KEYS_MAX)
		return errf(err, errlen, SHOAL_EPROTO, "the %s role has threshold %" PRId64, role, t);
	struct shoal_keypair *kps = sodium_malloc(sizeof(*kps) * (size_t)t);
	char (*ids)[65] = calloc((size_t)t, 65);
	size_t got = 0;
	int rc = kps && ids ? 0 : SHOAL_ENOMEM;
	if (!rc)
		rc = online_keys(r, root_signed, role, kps, ids, (size_t)t, &got, err, errlen);
	if (!rc && got < (size_t)t)
		rc = errf(err, errlen, SHOAL_ENOTFOUND, "%s/keys holds %zu of the %" PRId64
			  " %s key(s) the root requires (a NAME.key with its NAME.pub)", r->dir, got, t, role);
	for (size_t i = 0; i < got && !rc; i++)
		rc = sign_doc(doc, &kps[i], ids[i]);
	if (kps)
		sodium_free(kps);
	free(ids);
	return rc;
}

/* Target files of a published targets doc, as created by publish. */
struct created {
	char (*paths)[SHOAL_PATH_BYTES_MAX];
	size_t count, cap;
	bool *is_dir;
};

static int created_push(struct created *c, const char *path, bool is_dir)
{
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		void *np = realloc(c->paths, cap * sizeof(*c->paths));
		if (!np)
			return SHOAL_ENOMEM;
		c->paths = np;
		bool *nd = realloc(c->is_dir, cap * sizeof(bool));
		if (!nd)
			return SHOAL_ENOMEM;
		c->is_dir = nd;
		c->cap = cap;
	}
	snprintf(c->paths[c->count], SHOAL_PATH_BYTES_MAX, "%s", path);
	c->is_dir[c->count++] = is_dir;
	return 0;
}

/* Undoes, newest first: so directories are empty when removed. */
static void created_undo(struct created *c)
{
	for (size_t i = c->count; i-- > 0;) {
		if (c->is_dir[i])
			(void)rmdir(c->paths[i]);
		else
			(void)unlink(c->paths[i]);
	}
	c->count = 0;
}

static void created_free(struct created *c)
{
	free(c->paths);
	free(c->is_dir);
	memset(c, 0, sizeof(*c));
}

/* mkdir -p DIR/targets/PARTS (parts of name before its last '/'). */
static int target_dirs(struct repo *r, const char *name, struct created *made, char *err, size_t errlen)
{
	char p[SHOAL_PATH_BYTES_MAX];
	int n = snprintf(p, sizeof(p), "%s/targets/", r->dir);
	assert(n > 0 && (size_t)n < sizeof(p));
	for (const char *s = name; (s = strchr(s, '/')) != NULL; s++) {
		snprintf(p + n, sizeof(p) - (size_t)n, "%.*s", (int)(s - name), name);
		if (fault_now())
			return errf(err, errlen, SHOAL_EIO, "mkdir(%s): %s", p, strerror(EIO));
		if (mkdir(p, 0755) == 0) {
			if (created_push(made, p, true) != 0)
				return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
		} else if (errno != EEXIST) {
			return errf(err, errlen, SHOAL_EIO, "mkdir(%s): %s", p, strerror(errno));
		}
	}
	return 0;
}

/* Makes targets/DIRS/HASH.BASE exist for both hashes of every target. */
static int link_targets(struct repo *r, const json_t *targets, struct created *made, char *err,
			size_t errlen)
{
	const char *name;
	json_t *info;
	json_object_foreach((json_t *)targets, name, info) {
		const json_t *hashes = json_object_get(info, "hashes");
		const char *h256 = jstr(hashes, "sha256");
		int64_t length = jint(info, "length", -1);
		if (!h256 || !repo_valid_target_name(name))
			return errf(err, errlen, SHOAL_EPROTO, "target %s: no sha256 or a bad name", name);
		int rc = target_dirs(r, name, made, err, errlen);
		if (rc)
			return rc;
		const char *slash = strrchr(name, '/');
		int dlen = slash ? (int)(slash - name) + 1 : 0;
		char src[SHOAL_PATH_BYTES_MAX], have[SHOAL_PATH_BYTES_MAX];
		snprintf(src, sizeof(src), "%s/staged/targets/%s", r->dir, h256);
		have[0] = '\0';
		const char *alg;
		json_t *hv;
		/* first pass: find a copy we already hold */
		json_object_foreach((json_t *)hashes, alg, hv) {
			char dst[SHOAL_PATH_BYTES_MAX];
			struct stat st;
			snprintf(dst, sizeof(dst), "%s/targets/%.*s%s.%s", r->dir, dlen, name,
				 nz(json_string_value(hv)), name + dlen);
			if (stat(dst, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == length) {
				snprintf(have, sizeof(have), "%s", dst);
				break;
			}
		}
		if (!have[0]) {
			struct stat st;
			if (stat(src, &st) != 0 || st.st_size != length)
				return errf(err, errlen, SHOAL_ENOTFOUND, "target %s: its file is in neither "
					    "staged/targets/ nor targets/; add it again", name);
			snprintf(have, sizeof(have), "%s", src);
		}
		json_object_foreach((json_t *)hashes, alg, hv) {
			char dst[SHOAL_PATH_BYTES_MAX];
			struct stat st;
			const char *h = nz(json_string_value(hv));
			if (strspn(h, "0123456789abcdef") != strlen(h) || strlen(h) == 0)
				return errf(err, errlen, SHOAL_EPROTO, "target %s: hash is not hex", name);
			snprintf(dst, sizeof(dst), "%s/targets/%.*s%s.%s", r->dir, dlen, name, h, name + dlen);
			if (lstat(dst, &st) == 0)
				continue; /* content-addressed: already there */
			rc = link_or_copy(have, dst);
			if (rc)
				return errf(err, errlen, rc, "link %s: %s", dst, strerror(errno));
			if (created_push(made, dst, false) != 0)
				return errf(err, errlen, SHOAL_ENOMEM, "out of memory");
		}
	}
	return 0;
}

/* True for "N.root.json" (the root chain clients walk). */
static bool is_versioned(const char *name, const char *suffix)
{
	size_t d = strspn(name, "0123456789");
	return d > 0 && name[0] != '0' && strcmp(name + d, suffix) == 0;
}

/* Fills generation dir gnew: links from gold the root chain and the current
 * snapshot and targets, then writes the new files. */
static int build_generation(struct repo *r, const char *gold, const char *gnew,
			    const struct gen_file *files, size_t nfiles, bool new_root, char *err,
			    size_t errlen)
{
	char keep_snap[64], keep_tgt[64];
	snprintf(keep_snap, sizeof(keep_snap), "%" PRId64 ".snapshot.json", r->snapshot.version);
	snprintf(keep_tgt, sizeof(keep_tgt), "%" PRId64 ".targets.json", r->targets.version);
	if (fault_now() || mkdir(gnew, 0755) != 0)
		return errf(err, errlen, SHOAL_EIO, "mkdir(%s): %s", gnew, strerror(errno));
	DIR *d = opendir(gold);
	if (!d)
		return errf(err, errlen, SHOAL_EIO, "opendir(%s): %s", gold, strerror(errno));
	struct dirent *e;
	size_t count = 0;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		bool keep = is_versioned(n, ".root.json") || strcmp(n, keep_snap) == 0 ||
			    strcmp(n, keep_tgt) == 0 || (!new_root && strcmp(n, "root.json") == 0);
		if (!keep)
			continue;
		if (++count + nfiles > SHOAL_REPO_GENERATION_FILES_MAX) {
			rc = errf(err, errlen, SHOAL_EFULL, "%s: over %d files", gold, SHOAL_REPO_GENERATION_FILES_MAX);
			break;
		}
		char from[SHOAL_PATH_BYTES_MAX], to[SHOAL_PATH_BYTES_MAX];
		snprintf(from, sizeof(from), "%s/%s", gold, n);
		snprintf(to, sizeof(to), "%s/%s", gnew, n);
		rc = link_or_copy(from, to);
		if (rc)
			errf(err, errlen, rc, "link %s: %s", to, strerror(errno));
	}
	closedir(d);
	if (!rc)
		rc = write_gen_files(gnew, files, nfiles, err, errlen);
	return rc;
}

/* Removes generations older than keep_from (best effort, after commit). */
static void prune_generations(struct repo *r, unsigned long keep_from)
{
	char gdir[SUBDIR_BYTES_MAX];
	snprintf(gdir, sizeof(gdir), "%s/generations", r->dir);
	DIR *d = opendir(gdir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end = NULL;
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		unsigned long g = strtoul(e->d_name, &end, 10);
		if (*end == '\0' && g < keep_from)
			(void)rm_tree_at(dirfd(d), e->d_name, 1);
	}
	closedir(d);
}

struct publish_plan {
	struct tuf_md new_root;   /* parsed staged root, if any */
	const json_t *eff_root;   /* signed object of the root in effect */
	const struct tuf_md *eff_root_md;
	json_t *snap_doc, *ts_doc;
	struct gen_file files[6];
	size_t nfiles;
	const json_t *final_targets; /* "targets" object clients will see */
};

static void plan_clear(struct publish_plan *p)
{
	tuf_md_clear(&p->new_root);
	json_decref(p->snap_doc);
	json_decref(p->ts_doc);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i].bytes);
	memset(p, 0, sizeof(*p));
}

static int add_file(struct publish_plan *p, const char *name, const json_t *doc)
{
	assert(p->nfiles < sizeof(p->files) / sizeof(p->files[0]));
	struct gen_file *f = &p->files[p->nfiles];
	snprintf(f->name, sizeof(f->name), "%s", name);
	int rc = encode_doc(doc, &f->bytes, &f->len);
	if (rc == 0)
		p->nfiles++;
	return rc;
}

static const char *count_text(const struct repo_sig_count *c, char *buf, size_t n)
{
	snprintf(buf, n, "%" PRId64 " of the %" PRId64 " signatures it needs (%" PRId64 " keys)",
		 c->valid, c->threshold, c->keys);
	return buf;
}

/* The checks before anything is written. */
static int publish_check(struct repo *r, int64_t now_s, const struct repo_publish_opts *o,
			 struct publish_plan *p, struct repo_publish_result *res, char *err,
			 size_t errlen)
{
	char why[160], cnt[128], when[32];
	int rc;
	p->eff_root = r->root.signed_obj;
	p->eff_root_md = &r->root;
	if (r->st_root) {
		uint8_t *buf = NULL;
		size_t len = 0;
		rc = encode_doc(r->st_root, &buf, &len);
		if (!rc) {
			rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, &p->new_root);
			free(buf);
		}
		if (rc)
			return errf(err, errlen, rc, "staged root: not valid metadata (%s)", shoal_strerror(rc));
		p->eff_root = p->new_root.signed_obj;
		p->eff_root_md = &p->new_root;
		rc = tuf_root_check_next(&r->root, &p->new_root, why, sizeof(why));
		if (rc) {
			struct repo_sig_count co, cn;
			(void)count_sigs(r->root.signed_obj, "root", r->st_root, &co, NULL, NULL);
			(void)count_sigs(p->eff_root, "root", r->st_root, &cn, NULL, NULL);
			if (rc != SHOAL_EBADSIG || !o->allow_under_threshold)
				return errf(err, errlen, rc, "staged root version %" PRId64 ": %s; it has %"
					    PRId64 " of %" PRId64 " signatures from the current root keys "
					    "and %" PRId64 " of %" PRId64 " from its own", p->new_root.version,
					    why, co.valid, co.threshold, cn.valid, cn.threshold);
			res->under_threshold = true;
		}
		if (p->new_root.expires_s <= now_s) {
			fmt_time(p->new_root.expires_s, when);
			return errf(err, errlen, SHOAL_EEXPIRED, "staged root expired at %s; run "
				    "rotate-root --expires-days D to renew it", when);
		}
		if (!p->new_root.consistent_snapshot)
			return errf(err, errlen, SHOAL_EPROTO, "staged root turns consistent snapshots off");
	} else if (r->root.expires_s <= now_s) {
		fmt_time(r->root.expires_s, when);
		return errf(err, errlen, SHOAL_EEXPIRED, "the root expired at %s: clients refuse "
			    "everything; stage a new root (rotate-root) and sign it", when);
	}
	if (r->st_targets) {
		struct tuf_md nt;
		uint8_t *buf = NULL;
		size_t len = 0;
		rc = encode_doc(r->st_targets, &buf, &len);
		if (!rc) {
			rc = tuf_md_parse(buf, len, TUF_TYPE_TARGETS, &nt);
			free(buf);
		}
		if (rc)
			return errf(err, errlen, rc, "staged targets: not valid metadata (%s)", shoal_strerror(rc));
		int64_t exp = nt.expires_s, ver = nt.version;
		rc = tuf_md_verify(p->eff_root_md, "targets", &nt);
		tuf_md_clear(&nt);
		if (rc) {
			struct repo_sig_count c;
			(void)count_sigs(p->eff_root, "targets", r->st_targets, &c, NULL, NULL);
			if (rc != SHOAL_EBADSIG || !o->allow_under_threshold)
				return errf(err, errlen, rc == SHOAL_EBADSIG ? rc : SHOAL_EPROTO,
					    "staged targets version %" PRId64 " has %s; more publishers "
					    "must sign (shoal release sign --key FILE)", ver,
					    count_text(&c, cnt, sizeof(cnt)));
			res->under_threshold = true;
		}
		if (exp <= now_s) {
			fmt_time(exp, when);
			return errf(err, errlen, SHOAL_EEXPIRED, "staged targets expired at %s; run "
				    "'shoal release stage --expires-days D' and sign again", when);
		}
		p->final_targets = json_object_get(json_object_get(r->st_targets, "signed"), "targets");
	} else {
		if (r->st_root && tuf_md_verify(&p->new_root, "targets", &r->targets) != 0) {
			if (!o->allow_under_threshold)
				return errf(err, errlen, SHOAL_EBADSIG, "the new root changes the targets keys "
					    "and the published targets version %" PRId64 " lacks their "
					    "threshold: stage targets (shoal release stage) and sign them "
					    "with the new publisher keys", r->targets.version);
			res->under_threshold = true;
		}
		if (r->targets.expires_s <= now_s) {
			fmt_time(r->targets.expires_s, when);
			return errf(err, errlen, SHOAL_EEXPIRED, "the published targets version %" PRId64
				    " expired at %s; stage a new version (shoal release stage) and "
				    "sign it", r->targets.version, when);
		}
		p->final_targets = json_object_get(r->targets.signed_obj, "targets");
	}
	return 0;
}

int repo_publish(struct repo *r, int64_t now_s, const struct repo_publish_opts *o,
		 struct repo_publish_result *res, char *err, size_t errlen)
{
	assert(r && o && res && err && errlen);
	memset(res, 0, sizeof(*res));
	err[0] = '\0';
	unsigned days = o->online_expires_days ? o->online_expires_days : REPO_ONLINE_EXPIRES_DAYS_DEFAULT;
	if (days > SHOAL_REPO_EXPIRES_DAYS_MAX)
		return errf(err, errlen, SHOAL_EINVAL, "expiry must be 1..%d days", SHOAL_REPO_EXPIRES_DAYS_MAX);
	struct publish_plan p;
	struct created made = {0};
	memset(&p, 0, sizeof(p));
	char gold[SUBDIR_BYTES_MAX], gnew[SUBDIR_BYTES_MAX], name[64];
	char tmp_link[SHOAL_PATH_BYTES_MAX], link_path[SHOAL_PATH_BYTES_MAX], rel[64];
	unsigned long g = r->generation + 1;
	bool gen_made = false;
	int rc = publish_check(r, now_s, o, &p, res, err, errlen);
	if (rc)
		goto out;

	/* the new documents, in the order each one's referrer needs them */
	const uint8_t *tbytes = r->targets.raw;
	size_t tlen = r->targets.raw_len;
	int64_t tver = r->targets.version;
	if (r->st_root) {
		snprintf(name, sizeof(name), "%" PRId64 ".root.json", p.new_root.version);
		if ((rc = add_file(&p, name, r->st_root)) != 0 || (rc = add_file(&p, "root.json", r->st_root)) != 0)
			goto enc_fail;
	}
	if (r->st_targets) {
		tver = jint(json_object_get(r->st_targets, "signed"), "version", 0);
		snprintf(name, sizeof(name), "%" PRId64 ".targets.json", tver);
		if ((rc = add_file(&p, name, r->st_targets)) != 0)
			goto enc_fail;
		tbytes = p.files[p.nfiles - 1].bytes;
		tlen = p.files[p.nfiles - 1].len;
	}
	int64_t exp = now_s + (int64_t)days * DAY_S;
	p.snap_doc = new_doc(snapshot_signed(r->snapshot.version + 1, exp, tver, tbytes, tlen));
	if (!p.snap_doc) {
		rc = SHOAL_ENOMEM;
		goto enc_fail;
	}
	rc = sign_online(r, p.eff_root, "snapshot", p.snap_doc, err, errlen);
	if (rc)
		goto out;
	snprintf(name, sizeof(name), "%" PRId64 ".snapshot.json", r->snapshot.version + 1);
	if ((rc = add_file(&p, name, p.snap_doc)) != 0)
		goto enc_fail;
	const struct gen_file *sf = &p.files[p.nfiles - 1];
	p.ts_doc = new_doc(timestamp_signed(r->timestamp.version + 1, exp, r->snapshot.version + 1,
					    sf->bytes, sf->len));
	if (!p.ts_doc) {
		rc = SHOAL_ENOMEM;
		goto enc_fail;
	}
	rc = sign_online(r, p.eff_root, "timestamp", p.ts_doc, err, errlen);
	if (rc)
		goto out;
	if ((rc = add_file(&p, "timestamp.json", p.ts_doc)) != 0)
		goto enc_fail;

	/* target files first: a published document never names a missing file */
	rc = link_targets(r, p.final_targets, &made, err, errlen);
	if (rc)
		goto out;
	snprintf(gold, sizeof(gold), "%s/generations/%lu", r->dir, r->generation);
	snprintf(gnew, sizeof(gnew), "%s/generations/%lu", r->dir, g);
	(void)rm_tree(gnew); /* left by a publish that failed and could not clean up */
	gen_made = true;
	rc = build_generation(r, gold, gnew, p.files, p.nfiles, r->st_root != NULL, err, errlen);
	if (rc)
		goto out;
	/* commit: one rename swaps the whole published set */
	snprintf(tmp_link, sizeof(tmp_link), "%s/.metadata.new", r->dir);
	snprintf(link_path, sizeof(link_path), "%s/metadata", r->dir);
	snprintf(rel, sizeof(rel), "generations/%lu", g);
	(void)unlink(tmp_link);
	if (fault_now() || symlink(rel, tmp_link) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "symlink(%s): %s", tmp_link, strerror(errno));
		goto out;
	}
	if (fault_now() || rename(tmp_link, link_path) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "rename(%s, %s): %s", tmp_link, link_path, strerror(errno));
		(void)unlink(tmp_link);
		goto out;
	}
	fsync_dir(r->dir);
	gen_made = false;
	made.count = 0; /* published now: keep */

	res->published_mask = (r->st_root ? REPO_ROLE_ROOT : 0) | (r->st_targets ? REPO_ROLE_TARGETS : 0);
	res->generation = g;
	/* tidy up; a failure here leaves only leftovers repo_open recognises */
	if (r->st_root)
		(void)discard(r, REPO_ROLE_ROOT, NULL, 0);
	if (r->st_targets)
		(void)discard(r, REPO_ROLE_TARGETS, NULL, 0);
	prune_generations(r, g - 1);
	char lerr[256];
	r->generation = g;
	if (load_published(r, lerr, sizeof(lerr)) != 0) {
		rc = errf(err, errlen, SHOAL_EIO, "published, but reading it back failed: %s", lerr);
		goto out;
	}
	res->root_version = r->root.version;
	res->targets_version = r->targets.version;
	res->snapshot_version = r->snapshot.version;
	res->timestamp_version = r->timestamp.version;
	log_info("release_published", "generation=%lu root=%" PRId64 " targets=%" PRId64
		 " snapshot=%" PRId64 " timestamp=%" PRId64 " under_threshold=%d", g,
		 res->root_version, res->targets_version, res->snapshot_version,
		 res->timestamp_version, res->under_threshold);
	goto out;
enc_fail:
	errf(err, errlen, rc, "encode metadata: %s", shoal_strerror(rc));
out:
	if (rc) {
		created_undo(&made);
		if (gen_made)
			(void)rm_tree(gnew);
	}
	created_free(&made);
	plan_clear(&p);
	return rc;
}

/* ---- status ---- */

static json_t *md_summary(const struct tuf_md *md, int64_t now_s)
{
	char when[32];
	fmt_time(md->expires_s, when);
	return json_pack("{s:I,s:s,s:b}", "version", (json_int_t)md->version, "expires", when,
			 "expired", md->expires_s <= now_s);
}

/* {KEYID: NAME} for keys/NAME.pub files. */
static json_t *key_files(struct repo *r)
{
	char kdir[SUBDIR_BYTES_MAX];
	json_t *out = json_object();
	snprintf(kdir, sizeof(kdir), "%s/keys", r->dir);
	DIR *d = opendir(kdir);
	if (!d || !out)
		goto done;
	struct dirent *e;
	size_t seen = 0;
	while ((e = readdir(d)) != NULL && seen < SHOAL_REPO_KEY_FILES_MAX) {
		size_t n = strlen(e->d_name);
		char pub[SHOAL_PATH_BYTES_MAX], id[65], nm[256];
		uint8_t pk[32];
		if (n < 5 || n > 200 || strcmp(e->d_name + n - 4, ".pub") != 0)
			continue;
		seen++;
		snprintf(pub, sizeof(pub), "%s/%s", kdir, e->d_name);
		if (repo_read_public_key(pub, pk, NULL, 0) != 0 || keyid_of(pk, id) != 0)
			continue;
		snprintf(nm, sizeof(nm), "%.*s", (int)(n - 4), e->d_name);
		json_object_set_new(out, id, json_string(nm));
	}
done:
	if (d)
		closedir(d);
	return out;
}

static json_t *count_json(const json_t *root_signed, const char *role, const json_t *doc)
{
	struct repo_sig_count c;
	json_t *by = json_array(), *missing = json_array();
	if (!by || !missing || count_sigs(root_signed, role, doc, &c, by, missing) != 0) {
		json_decref(by);
		json_decref(missing);
		return json_null();
	}
	return json_pack("{s:I,s:I,s:I,s:o,s:o}", "valid", (json_int_t)c.valid, "threshold",
			 (json_int_t)c.threshold, "keys", (json_int_t)c.keys, "signed_by", by,
			 "missing", missing);
}

static json_t *staged_targets_json(struct repo *r, int64_t now_s)
{
	const json_t *s = json_object_get(r->st_targets, "signed");
	const json_t *now = json_object_get(s, "targets");
	const json_t *pub = json_object_get(r->targets.signed_obj, "targets");
	json_t *added = json_array(), *changed = json_array(), *removed = json_array();
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)now, name, v) {
		const json_t *old = json_object_get(pub, name);
		if (!old)
			json_array_append_new(added, json_string(name));
		else if (!json_equal((json_t *)old, v))
			json_array_append_new(changed, json_string(name));
	}
	json_object_foreach((json_t *)pub, name, v) {
		if (!json_object_get(now, name))
			json_array_append_new(removed, json_string(name));
	}
	int64_t exp = parse_expires(s);
	return json_pack("{s:I,s:s?,s:b,s:o,s:o,s:o,s:o,s:O}", "version",
			 (json_int_t)jint(s, "version", 0), "expires", jstr(s, "expires"), "expired",
			 exp <= now_s, "signatures", count_json(effective_root(r), "targets", r->st_targets),
			 "added", added, "changed", changed, "removed", removed, "targets", now);
}

int repo_status(struct repo *r, int64_t now_s, json_t **out)
{
	assert(r && out);
	json_t *roles = json_object();
	for (int i = 0; i < 4 && roles; i++) {
		const json_t *rl = json_object_get(json_object_get(r->root.signed_obj, "roles"), top_roles[i]);
		json_object_set_new(roles, top_roles[i],
				    json_pack("{s:I,s:O}", "threshold", (json_int_t)jint(rl, "threshold", 0),
					      "keyids", json_object_get(rl, "keyids")));
	}
	json_t *staged = json_object();
	if (staged && r->st_targets)
		json_object_set_new(staged, "targets", staged_targets_json(r, now_s));
	if (staged && r->st_root) {
		const json_t *s = json_object_get(r->st_root, "signed");
		json_t *nroles = json_object();
		for (int i = 0; i < 4 && nroles; i++) {
			const json_t *rl = json_object_get(json_object_get(s, "roles"), top_roles[i]);
			json_object_set_new(nroles, top_roles[i],
					    json_pack("{s:I,s:O}", "threshold", (json_int_t)jint(rl, "threshold", 0),
						      "keyids", json_object_get(rl, "keyids")));
		}
		json_object_set_new(staged, "root",
				    json_pack("{s:I,s:s?,s:o,s:o,s:o}", "version", (json_int_t)jint(s, "version", 0),
					      "expires", jstr(s, "expires"), "roles", nroles,
					      "old_root", count_json(r->root.signed_obj, "root", r->st_root),
					      "new_root", count_json(s, "root", r->st_root)));
	}
	*out = json_pack("{s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:O,s:o}", "repo", r->dir, "generation",
			 (json_int_t)r->generation, "root", md_summary(&r->root, now_s), "targets",
			 md_summary(&r->targets, now_s), "snapshot", md_summary(&r->snapshot, now_s),
			 "timestamp", md_summary(&r->timestamp, now_s), "roles", roles, "key_files",
			 key_files(r), "published_targets",
			 json_object_get(r->targets.signed_obj, "targets"), "staged", staged);
	return *out ? 0 : SHOAL_ENOMEM;
}
