/*
 * anchor.h — a node's trust anchor: the fleet's TUF root (DESIGN 4.6).
 *
 *   DATA/trust/root.json   the root the operator installed with `shoal init
 *                          --root FILE` or `shoal trust set-root`; written only
 *                          after it verified (self-signed for the first one,
 *                          chained from the trusted root for every later one)
 *   DATA/trust/metadata/   the TUF client's metadata directory: the agent runs
 *                          tuf_client_new(anchor_metadata_dir(...), ...) and
 *                          refreshes into it. Its root.json starts as a copy of
 *                          the anchor and moves forward on its own as the client
 *                          follows root rotations (spec 5.3)
 *
 * The trusted root is the newer of the two (a metadata/root.json that is not
 * self-signed is ignored). Replacing it follows the spec's root chain: root
 * N+1 must be signed by a threshold of root N's root keys and of its own
 * (tuf_root_check_next, the client's own check), so a node never trusts a
 * root its current root did not vouch for. When the metadata root moves
 * forward and the timestamp or snapshot keys changed, the client's
 * timestamp.json and snapshot.json are removed (spec 5.3.11).
 *
 * Every function returns 0 or a negative SHOAL_E*, with err (if not NULL)
 * naming what failed and why; on error nothing was written.
 */
#ifndef SHOAL_TRUST_ANCHOR_H
#define SHOAL_TRUST_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "trust/tuf.h"

#define ANCHOR_DIR "trust"
#define ANCHOR_ROOT_FILE "root.json"
#define ANCHOR_METADATA_DIR "metadata"

/* DATA/trust/root.json and DATA/trust/metadata into out (n bytes);
 * SHOAL_ETOOBIG if the path does not fit. */
int anchor_root_path(const char *data_dir, char *out, size_t n) SHOAL_MUST_CHECK;
int anchor_metadata_dir(const char *data_dir, char *out, size_t n) SHOAL_MUST_CHECK;

/* Checks that bytes hold a TUF root signed by a threshold of its own root
 * keys (expiry is not checked), as anchor_init requires, without writing. */
int anchor_check_root(const uint8_t *bytes, size_t len, char *err, size_t errlen) SHOAL_MUST_CHECK;

/* Installs the first trusted root: checked as anchor_check_root, written as
 * DATA/trust/root.json and DATA/trust/metadata/root.json. SHOAL_EEXIST if the
 * node already trusts a root (use anchor_set_root). */
int anchor_init(const char *data_dir, const uint8_t *bytes, size_t len, char *err,
		size_t errlen) SHOAL_MUST_CHECK;

/* Where the trusted root came from. */
enum anchor_source {
	ANCHOR_SOURCE_ANCHOR = 0,   /* DATA/trust/root.json */
	ANCHOR_SOURCE_METADATA,     /* DATA/trust/metadata/root.json, newer: the
				       client followed a rotation */
};

/* Loads the trusted root (the newer of the two files) into md (free with
 * tuf_md_clear); source and anchor_version (the version of
 * DATA/trust/root.json) may be NULL. SHOAL_ENOTFOUND if the node has none. */
int anchor_load(const char *data_dir, struct tuf_md *md, enum anchor_source *source,
		int64_t *anchor_version, char *err, size_t errlen) SHOAL_MUST_CHECK;

/* What anchor_set_root_chain did. */
struct anchor_change {
	int64_t from_version; /* trusted before */
	int64_t to_version;   /* trusted now (== from_version: nothing newer) */
};

/* Replaces the trusted root with the last of n roots (files' bytes, in
 * version order) if they chain from it: each one newer than the trusted
 * root must be exactly one version newer than the one before and signed by
 * a threshold of that one's root keys and of its own. Roots older than the
 * trusted one are skipped; one with the trusted version must have the same
 * signed content (else SHOAL_EBADSIG: two different roots with one version).
 * Only the last root is written, after the whole chain verified. n is at
 * most SHOAL_TUF_ROOT_ROTATIONS_MAX. If the anchor was replaced but its
 * copy into the metadata dir failed, the error is returned with
 * change->to_version already the new version (anchor_prepare repairs the
 * copy). */
int anchor_set_root_chain(const char *data_dir, const uint8_t *const *roots, const size_t *lens,
			  size_t n, struct anchor_change *change, char *err,
			  size_t errlen) SHOAL_MUST_CHECK;

/* anchor_set_root_chain with one root, which must be the next version
 * (or the trusted one itself, which changes nothing). */
int anchor_set_root(const char *data_dir, const uint8_t *bytes, size_t len, char *err,
		    size_t errlen) SHOAL_MUST_CHECK;

/* For the agent, before each refresh: makes DATA/trust/metadata/root.json at
 * least as new as DATA/trust/root.json (copying the anchor when the
 * metadata root is missing, not self-signed or older) and writes the
 * metadata dir's path into metadata_dir. SHOAL_ENOTFOUND if the node has no
 * trusted root. */
int anchor_prepare(const char *data_dir, char *metadata_dir, size_t n, char *err,
		   size_t errlen) SHOAL_MUST_CHECK;

#endif
