/*
 * announce.h — the body of an `announce` record (DESIGN §4.4, §4.6).
 *
 * An announce says "this TUF metadata is available, fetch it by hash". It
 * lists the metadata files of one repository state — the root chain files
 * a node may lack, timestamp, snapshot and top-level targets — each by role,
 * version, length and SHA-256, so any peer can serve them as
 * content-addressed blobs. It proves nothing by itself: a node runs the TUF
 * client workflow over exactly these bytes and accepts the release only if
 * that passes (an announcer is one more untrusted mirror).
 *
 *   body  = format(u8 = 1) | count(u8, 1..SHOAL_ANNOUNCE_FILES_MAX) | count x file
 *   file  = role(u8: 1 root, 2 timestamp, 3 snapshot, 4 targets)
 *         | version(u32) | length(u32) | sha256(32)
 *
 * At most one timestamp; root entries carry distinct versions.
 */
#ifndef SHOAL_CORE_ANNOUNCE_H
#define SHOAL_CORE_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "shoal/limits.h"

#define ANNOUNCE_FORMAT 1

enum announce_role {
	ANNOUNCE_ROOT = 1,
	ANNOUNCE_TIMESTAMP = 2,
	ANNOUNCE_SNAPSHOT = 3,
	ANNOUNCE_TARGETS = 4,
};

struct announce_file {
	uint8_t role;
	uint32_t version;
	uint32_t length;
	uint8_t sha256[32];
};

struct announce {
	uint8_t count;
	struct announce_file files[SHOAL_ANNOUNCE_FILES_MAX];
};

/* Encodes a into out (cap bytes); SHOAL_ETOOBIG / SHOAL_EINVAL. */
int announce_encode(const struct announce *a, uint8_t *out, size_t cap, size_t *len)
	SHOAL_MUST_CHECK;
/* Decodes a body; SHOAL_ETRUNC, SHOAL_EPROTO, SHOAL_EVERSION, SHOAL_ETRAILING. */
int announce_decode(const uint8_t *buf, size_t len, struct announce *out) SHOAL_MUST_CHECK;

/* The entry a TUF client's request for `filename` ("3.root.json",
 * "timestamp.json", "5.snapshot.json" or "snapshot.json", ...) maps to, or
 * NULL. */
const struct announce_file *announce_lookup(const struct announce *a, const char *filename);

/* "root", "timestamp", ... */
const char *announce_role_name(uint8_t role);

#endif
