/*
 * tuf.h — a TUF 1.0 client (specification §5, "Detailed client workflow").
 *
 * One refresh follows the spec's order: fix the update start time; load the
 * trusted root; walk the root chain N+1, N+2, ... (each signed by a threshold
 * of the old and of the new root keys); then timestamp, snapshot and
 * top-level targets, each checked for signatures, version rollback, expiry
 * and (for snapshot and targets) the length, hashes and version its referrer
 * lists. Delegated targets are loaded on demand during a pre-order
 * depth-first search for one target. Every download is bounded: by the length
 * the referrer signed, or by a named limit when the size is unknown.
 *
 * Peers are untrusted mirrors: all bytes come through a fetcher, so the same
 * client runs over HTTP (tuf_fetch_curl) or over the mesh. Metadata is kept
 * in a directory under unversioned names (root.json, timestamp.json,
 * snapshot.json, targets.json, ROLE.json for delegated roles), exactly as
 * received; a role name is percent-encoded in file names and URLs.
 *
 * Signatures: a role's threshold counts distinct public keys the delegator
 * authorises for that role; a key listed twice, or two key ids with one key,
 * count once, and a signature counts only for the authorised key its keyid
 * names. Key types: ed25519 (hex), ecdsa-sha2-nistp256 (PEM or hex point;
 * DER signatures), rsassa-pss-sha256 (PEM; MGF1-SHA256, any salt length as
 * OpenSSL's RSA_PSS_SALTLEN_AUTO, so both securesystemslib's 32-byte salt and
 * node's maximum salt verify).
 */
#ifndef SHOAL_TUF_H
#define SHOAL_TUF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "shoal/limits.h"

/* Fetches url into a new malloc'd buffer (*out, *len; free with free()).
 * Must never hold more than max_len bytes: past that it stops reading and
 * fails with SHOAL_ETOOBIG. Returns 0, SHOAL_ENOTFOUND when the file does
 * not exist (HTTP 403/404/410, missing file), or another SHOAL_E*. */
typedef int (*tuf_fetch_fn)(void *arg, const char *url, size_t max_len, uint8_t **out,
			    size_t *len);

struct tuf_fetcher {
	tuf_fetch_fn fetch;
	void *arg;
};

/* libcurl fetcher for http://, https:// and file:// URLs (arg unused).
 * Redirects only to http/https; timeouts from limits.h. */
int tuf_fetch_curl(void *arg, const char *url, size_t max_len, uint8_t **out, size_t *len)
	SHOAL_MUST_CHECK;
/* tuf_fetch_curl for threads that must stop promptly: arg points to an
 * atomic_bool; once it is true the fetch in progress is abandoned within
 * about a second (libcurl's progress callback) and every fetch fails with
 * SHOAL_ESTATE. */
int tuf_fetch_curl_cancellable(void *arg, const char *url, size_t max_len, uint8_t **out,
			       size_t *len) SHOAL_MUST_CHECK;

enum tuf_type {
	TUF_TYPE_ROOT = 0,
	TUF_TYPE_TIMESTAMP,
	TUF_TYPE_SNAPSHOT,
	TUF_TYPE_TARGETS,
	TUF_TYPE_COUNT_,
};

/* One parsed and structurally checked metadata file. The signature is not
 * checked by tuf_md_parse; tuf_md_verify does that. */
struct tuf_md {
	json_t *doc;          /* the whole document (owned reference) */
	json_t *signed_obj;   /* doc["signed"], borrowed */
	uint8_t *raw;         /* the bytes exactly as received */
	size_t raw_len;
	enum tuf_type type;
	int64_t version;      /* >= 1 */
	int64_t expires_s;    /* seconds since the epoch, UTC */
	bool consistent_snapshot; /* root only */
};

/* Parses buf as metadata of the given type and checks its structure (types,
 * ranges, required fields; unknown fields are kept). On success md owns a
 * copy of buf. Returns 0, SHOAL_EPROTO, SHOAL_ETOOBIG or SHOAL_ENOMEM; on
 * error md is zeroed. */
int tuf_md_parse(const uint8_t *buf, size_t len, enum tuf_type type, struct tuf_md *md)
	SHOAL_MUST_CHECK;
void tuf_md_clear(struct tuf_md *md);

/* Checks that md carries a threshold of valid signatures for role_name as
 * delegated by delegator: a root (role_name "root", "timestamp", "snapshot"
 * or "targets") or a targets role (role_name one of its delegations).
 * Returns 0, SHOAL_EBADSIG (below threshold), SHOAL_ENOTFOUND (no such
 * role) or SHOAL_EPROTO. */
int tuf_md_verify(const struct tuf_md *delegator, const char *role_name,
		  const struct tuf_md *md) SHOAL_MUST_CHECK;

/* True if path matches a delegation's PATHPATTERN: both are split on '/',
 * must have as many parts, and each part matches as fnmatch(3) without
 * escapes ('*' never crosses a '/'). */
bool tuf_path_match(const char *pattern, const char *path);

/* Checks a file against a signed length and hashes object (sha256, sha512;
 * any other algorithm fails). have_length false skips the length. Returns 0
 * or SHOAL_EBADMAC (mismatch) / SHOAL_EPROTO. */
int tuf_check_hashes(const uint8_t *buf, size_t len, const json_t *hashes, bool have_length,
		     int64_t length) SHOAL_MUST_CHECK;

/* Spec 5.3.4-5.3.5, one link of the root chain: next must carry a threshold
 * of signatures from trusted's root keys and from its own root keys, and be
 * numbered exactly trusted->version + 1. Expiry is not checked (5.3.10 is
 * for the last root of a chain). Returns 0, SHOAL_EBADSIG, SHOAL_EREPLAY
 * (not newer), SHOAL_EPROTO (skips a version) or SHOAL_ENOMEM; err says
 * which check failed. Used by the client and by the trust anchor. */
int tuf_root_check_next(const struct tuf_md *trusted, const struct tuf_md *next, char *err,
			size_t err_size) SHOAL_MUST_CHECK;

struct tuf_client;

/* Verifies root_bytes as a self-signed root (threshold of its own root keys;
 * expiry not checked) and writes it as metadata_dir/root.json, creating the
 * directory if needed. Returns 0 or a SHOAL_E*; on error nothing is written. */
int tuf_init_root(const char *metadata_dir, const uint8_t *root_bytes, size_t len,
		  char *err, size_t err_size) SHOAL_MUST_CHECK;

/* Creates a client over metadata_dir (which must hold a trusted root.json)
 * fetching metadata from metadata_url (a base URL; '/' is added if missing).
 * The fetcher is copied. Returns 0, SHOAL_EINVAL or SHOAL_ENOMEM. */
int tuf_client_new(const char *metadata_dir, const char *metadata_url,
		   const struct tuf_fetcher *fetcher, struct tuf_client **out) SHOAL_MUST_CHECK;
void tuf_client_free(struct tuf_client *c);

/* Runs the client workflow once with now_s as the fixed update start time
 * (the caller reads the clock once). On success the trusted root, timestamp,
 * snapshot and top-level targets are loaded and persisted. On failure the
 * error names the TUF step (tuf_client_error) and no unverified byte was
 * written into the metadata directory. */
int tuf_client_refresh(struct tuf_client *c, int64_t now_s) SHOAL_MUST_CHECK;

/* A target found by tuf_client_find_target. */
struct tuf_target {
	char name[SHOAL_TUF_TARGET_NAME_BYTES_MAX + 1];
	int64_t length;
	json_t *info; /* the signed target entry (length, hashes, custom): owned ref */
};
void tuf_target_clear(struct tuf_target *t);

/* Searches the targets delegation tree (pre-order, depth first, terminating
 * delegations, at most SHOAL_TUF_DELEGATIONS_VISIT_MAX roles) for name.
 * Needs a successful refresh first. Returns 0, SHOAL_ENOTFOUND, or the error
 * of a delegated role that failed to load (which ends the search). */
int tuf_client_find_target(struct tuf_client *c, const char *name, struct tuf_target *out)
	SHOAL_MUST_CHECK;

/* Makes target_dir/ENC(name) hold the verified target (ENC percent-encodes
 * every byte but [A-Za-z0-9._~-], so '/' too). If the file is already there
 * with the signed length and hashes, nothing is fetched and *fetched is
 * false. Otherwise fetches target_base_url + name (HASH.basename with
 * consistent snapshots), at most the signed length, checks length and every
 * hash, and writes it atomically. */
int tuf_client_download_target(struct tuf_client *c, const struct tuf_target *t,
			       const char *target_base_url, const char *target_dir,
			       bool *fetched) SHOAL_MUST_CHECK;

/* The last failure as "STEP: what failed" (empty if none). */
const char *tuf_client_error(const struct tuf_client *c);

#endif
