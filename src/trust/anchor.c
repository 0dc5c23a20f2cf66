/*
 * anchor.c — the node's trust anchor (see anchor.h): install the first
 * root, replace it along the root chain, hand the TUF client a metadata
 * directory that starts from it.
 *
 * Both files are written with tuf_init_root, which re-verifies the root as
 * self-signed and replaces the file atomically (temp file, fsync, rename);
 * the anchor is written before the metadata copy, so after a crash between
 * the two anchor_prepare finds the metadata root older and copies it.
 */
#include "trust/anchor.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/file.h"
#include "shoal/log.h"
#include "trust/cjson.h"

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

static int join3(char *out, size_t n, const char *a, const char *b, const char *c)
{
	assert(out && a && b);
	int w = c ? snprintf(out, n, "%s/%s/%s", a, b, c) : snprintf(out, n, "%s/%s", a, b);
	return w < 0 || (size_t)w >= n ? SHOAL_ETOOBIG : 0;
}

int anchor_root_path(const char *data_dir, char *out, size_t n)
{
	return join3(out, n, data_dir, ANCHOR_DIR, ANCHOR_ROOT_FILE);
}

int anchor_metadata_dir(const char *data_dir, char *out, size_t n)
{
	return join3(out, n, data_dir, ANCHOR_DIR, ANCHOR_METADATA_DIR);
}

static int trust_dir(const char *data_dir, char *out, size_t n)
{
	return join3(out, n, data_dir, ANCHOR_DIR, NULL);
}

/* Reads a root file of at most SHOAL_TUF_ROOT_BYTES_MAX bytes and parses it
 * (signatures not checked). */
static int read_root(const char *path, struct tuf_md *md)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = shoal_read_file(path, SHOAL_TUF_ROOT_BYTES_MAX, &buf, &len);
	if (rc == 0)
		rc = tuf_md_parse(buf, len, TUF_TYPE_ROOT, md);
	free(buf);
	return rc;
}

int anchor_check_root(const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
	struct tuf_md md;
	assert(bytes || len == 0);
	if (len > SHOAL_TUF_ROOT_BYTES_MAX)
		return errf(err, errlen, SHOAL_ETOOBIG, "root: larger than %u bytes",
			    (unsigned)SHOAL_TUF_ROOT_BYTES_MAX);
	int rc = tuf_md_parse(bytes, len, TUF_TYPE_ROOT, &md);
	if (rc)
		return errf(err, errlen, rc, "not a TUF root (%s)", shoal_strerror(rc));
	rc = tuf_md_verify(&md, "root", &md);
	int64_t v = md.version;
	tuf_md_clear(&md);
	if (rc)
		return errf(err, errlen, rc, "root version %" PRId64 " is not signed by a threshold "
			    "of its own root keys (%s)", v, shoal_strerror(rc));
	return 0;
}

int anchor_load(const char *data_dir, struct tuf_md *md, enum anchor_source *source,
		int64_t *anchor_version, char *err, size_t errlen)
{
	char ap[SHOAL_PATH_BYTES_MAX], mdir[SHOAL_PATH_BYTES_MAX], mp[SHOAL_PATH_BYTES_MAX];
	struct tuf_md a, m;
	assert(data_dir && md);
	memset(md, 0, sizeof(*md));
	if (anchor_root_path(data_dir, ap, sizeof(ap)) != 0 ||
	    anchor_metadata_dir(data_dir, mdir, sizeof(mdir)) != 0 ||
	    join3(mp, sizeof(mp), mdir, ANCHOR_ROOT_FILE, NULL) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", data_dir);
	int rc = read_root(ap, &a);
	if (rc == SHOAL_ENOTFOUND)
		return errf(err, errlen, rc, "%s holds no trusted root (%s is missing): install "
			    "one with 'shoal trust set-root --data %s --initial ROOT'", data_dir, ap,
			    data_dir);
	if (rc)
		return errf(err, errlen, rc, "%s: %s", ap, shoal_strerror(rc));
	if (tuf_md_verify(&a, "root", &a) != 0) {
		tuf_md_clear(&a);
		return errf(err, errlen, SHOAL_EBADSIG, "%s is not signed by a threshold of its "
			    "own root keys (edited?)", ap);
	}
	if (anchor_version)
		*anchor_version = a.version;
	/* The client's copy counts only if it is a valid, self-signed root. */
	bool use_m = read_root(mp, &m) == 0;
	if (use_m && (tuf_md_verify(&m, "root", &m) != 0 || m.version <= a.version)) {
		tuf_md_clear(&m);
		use_m = false;
	}
	if (use_m) {
		tuf_md_clear(&a);
		*md = m;
	} else {
		*md = a;
	}
	if (source)
		*source = use_m ? ANCHOR_SOURCE_METADATA : ANCHOR_SOURCE_ANCHOR;
	assert(md->signed_obj);
	return 0;
}

/* The keys and threshold a root gives role, for the 5.3.11 comparison. */
static json_t *role_keys(const json_t *root_signed, const char *role)
{
	const json_t *r = json_object_get(json_object_get(root_signed, "roles"), role);
	const json_t *keys = json_object_get(root_signed, "keys");
	const json_t *ids = json_object_get(r, "keyids");
	json_t *ks = json_object();
	for (size_t i = 0; ks && i < json_array_size(ids); i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		const json_t *k = id ? json_object_get(keys, id) : NULL;
		if (id)
			json_object_set(ks, id, k ? (json_t *)k : json_null());
	}
	return json_pack("{s:o,s:O}", "keys", ks, "threshold",
			 json_object_get(r, "threshold") ? json_object_get(r, "threshold") : json_null());
}

static bool role_changed(const json_t *a, const json_t *b, const char *role)
{
	json_t *ka = role_keys(a, role), *kb = role_keys(b, role);
	bool changed = !ka || !kb || !json_equal(ka, kb);
	json_decref(ka);
	json_decref(kb);
	return changed;
}

static void remove_in(const char *dir, const char *name)
{
	char p[SHOAL_PATH_BYTES_MAX];
	if (join3(p, sizeof(p), dir, name, NULL) == 0)
		(void)unlink(p);
}

/* Makes the metadata dir's root.json the given root if it is older (or
 * missing, or not self-signed), dropping timestamp/snapshot when their keys
 * changed. */
static int sync_metadata(const char *data_dir, const struct tuf_md *root, char *err, size_t errlen)
{
	char mdir[SHOAL_PATH_BYTES_MAX], mp[SHOAL_PATH_BYTES_MAX], why[256];
	struct tuf_md m;
	if (anchor_metadata_dir(data_dir, mdir, sizeof(mdir)) != 0 ||
	    join3(mp, sizeof(mp), mdir, ANCHOR_ROOT_FILE, NULL) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", data_dir);
	bool have = read_root(mp, &m) == 0;
	if (have && tuf_md_verify(&m, "root", &m) != 0) {
		tuf_md_clear(&m);
		have = false;
	}
	if (have && m.version >= root->version) {
		tuf_md_clear(&m);
		return 0;
	}
	if (have) {
		if (role_changed(m.signed_obj, root->signed_obj, "timestamp") ||
		    role_changed(m.signed_obj, root->signed_obj, "snapshot")) {
			remove_in(mdir, "timestamp.json");
			remove_in(mdir, "snapshot.json");
		}
		tuf_md_clear(&m);
	}
	int rc = tuf_init_root(mdir, root->raw, root->raw_len, why, sizeof(why));
	if (rc)
		return errf(err, errlen, rc, "%s", why);
	return 0;
}

int anchor_init(const char *data_dir, const uint8_t *bytes, size_t len, char *err, size_t errlen)
{
	char tdir[SHOAL_PATH_BYTES_MAX], ap[SHOAL_PATH_BYTES_MAX], why[256];
	struct stat st;
	struct tuf_md md;
	assert(data_dir);
	if (trust_dir(data_dir, tdir, sizeof(tdir)) != 0 || anchor_root_path(data_dir, ap, sizeof(ap)) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", data_dir);
	int rc = anchor_check_root(bytes, len, err, errlen);
	if (rc)
		return rc;
	if (lstat(ap, &st) == 0)
		return errf(err, errlen, SHOAL_EEXIST, "%s already holds a trusted root (%s): "
			    "replace it with 'shoal trust set-root'", data_dir, ap);
	rc = tuf_init_root(tdir, bytes, len, why, sizeof(why));
	if (rc)
		return errf(err, errlen, rc, "%s", why);
	rc = tuf_md_parse(bytes, len, TUF_TYPE_ROOT, &md);
	if (rc == 0) {
		rc = sync_metadata(data_dir, &md, err, errlen);
		if (rc == 0)
			log_info("trust_root_installed", "version=%" PRId64, md.version);
		tuf_md_clear(&md);
	}
	if (rc) /* nothing half-made: the anchor goes with its metadata copy */
		(void)unlink(ap);
	return rc;
}

/* Signed content equal (signatures may differ). */
static bool same_signed(const struct tuf_md *a, const struct tuf_md *b)
{
	uint8_t *ea = NULL, *eb = NULL;
	size_t la = 0, lb = 0;
	bool same = cjson_encode(a->signed_obj, SHOAL_TUF_METADATA_BYTES_MAX, &ea, &la) == 0 &&
		    cjson_encode(b->signed_obj, SHOAL_TUF_METADATA_BYTES_MAX, &eb, &lb) == 0 &&
		    la == lb && memcmp(ea, eb, la) == 0;
	free(ea);
	free(eb);
	return same;
}

int anchor_set_root_chain(const char *data_dir, const uint8_t *const *roots, const size_t *lens,
			  size_t n, struct anchor_change *change, char *err, size_t errlen)
{
	char tdir[SHOAL_PATH_BYTES_MAX], why[256];
	struct tuf_md cur, next;
	assert(data_dir && change);
	assert(n == 0 || (roots && lens));
	memset(change, 0, sizeof(*change));
	if (n == 0 || n > SHOAL_TUF_ROOT_ROTATIONS_MAX)
		return errf(err, errlen, SHOAL_EINVAL, "give 1..%d root files",
			    SHOAL_TUF_ROOT_ROTATIONS_MAX);
	if (trust_dir(data_dir, tdir, sizeof(tdir)) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", data_dir);
	int rc = anchor_load(data_dir, &cur, NULL, NULL, err, errlen);
	if (rc)
		return rc;
	change->from_version = cur.version;
	for (size_t i = 0; i < n; i++) {
		rc = tuf_md_parse(roots[i], lens[i], TUF_TYPE_ROOT, &next);
		if (rc) {
			errf(err, errlen, rc, "root file %zu: not a TUF root (%s)", i + 1, shoal_strerror(rc));
			goto out;
		}
		if (next.version < cur.version) {
			tuf_md_clear(&next); /* older than what we trust: irrelevant */
			continue;
		}
		if (next.version == cur.version) {
			bool same = same_signed(&cur, &next);
			tuf_md_clear(&next);
			if (!same) {
				rc = errf(err, errlen, SHOAL_EBADSIG, "root file %zu is version %" PRId64
					  " but differs from the trusted root version %" PRId64
					  " (two different roots with one version: a key may be "
					  "compromised)", i + 1, cur.version, cur.version);
				goto out;
			}
			continue;
		}
		if (next.version > cur.version + 1) { /* say what is missing, before any signature */
			rc = errf(err, errlen, SHOAL_EPROTO, "root file %zu is version %" PRId64 " but the "
				  "trusted root is version %" PRId64 ": give every version in between, "
				  "in order", i + 1, next.version, cur.version);
			tuf_md_clear(&next);
			goto out;
		}
		rc = tuf_root_check_next(&cur, &next, why, sizeof(why));
		if (rc) {
			errf(err, errlen, rc, "root version %" PRId64 " does not chain from the trusted "
			     "root version %" PRId64 ": %s", next.version, cur.version, why);
			tuf_md_clear(&next);
			goto out;
		}
		tuf_md_clear(&cur);
		cur = next;
	}
	change->to_version = cur.version;
	if (cur.version == change->from_version)
		goto out; /* nothing newer */
	rc = tuf_init_root(tdir, cur.raw, cur.raw_len, why, sizeof(why));
	if (rc) {
		errf(err, errlen, rc, "%s", why);
		change->to_version = change->from_version;
		goto out;
	}
	log_info("trust_root_replaced", "from=%" PRId64 " to=%" PRId64, change->from_version,
		 change->to_version);
	/* The anchor is the source of truth; a failure here is repaired by
	 * anchor_prepare, so it is reported but the anchor stays. */
	rc = sync_metadata(data_dir, &cur, err, errlen);
out:
	tuf_md_clear(&cur);
	return rc;
}

int anchor_set_root(const char *data_dir, const uint8_t *bytes, size_t len, char *err,
		    size_t errlen)
{
	struct anchor_change ch;
	const uint8_t *roots[1] = {bytes};
	size_t lens[1] = {len};
	return anchor_set_root_chain(data_dir, roots, lens, 1, &ch, err, errlen);
}

int anchor_prepare(const char *data_dir, char *metadata_dir, size_t n, char *err, size_t errlen)
{
	char ap[SHOAL_PATH_BYTES_MAX];
	struct tuf_md a;
	assert(data_dir && metadata_dir && n);
	if (anchor_metadata_dir(data_dir, metadata_dir, n) != 0 ||
	    anchor_root_path(data_dir, ap, sizeof(ap)) != 0)
		return errf(err, errlen, SHOAL_ETOOBIG, "%s: path too long", data_dir);
	int rc = read_root(ap, &a);
	if (rc)
		return errf(err, errlen, rc, "%s: %s", ap,
			    rc == SHOAL_ENOTFOUND ? "no trusted root installed" : shoal_strerror(rc));
	if (tuf_md_verify(&a, "root", &a) != 0) {
		tuf_md_clear(&a);
		return errf(err, errlen, SHOAL_EBADSIG, "%s is not signed by a threshold of its own "
			    "root keys (edited?)", ap);
	}
	rc = sync_metadata(data_dir, &a, err, errlen);
	tuf_md_clear(&a);
	return rc;
}
