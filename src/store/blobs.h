/*
 * blobs.h — content-addressed blob store: DATA/blobs/<sha256 hex>.
 *
 * Blobs are TUF metadata files and release targets as they travel between
 * peers (DESIGN §4.5). A file under its hash name always has that SHA-256:
 * bytes are written to DATA/blobs/partial/<hex>.part first (appended chunk
 * by chunk, so a transfer resumes from the part's length after a restart or
 * a peer change), checked, fsync'd and renamed into place. A blob is only
 * content-addressed, not trusted: whether its bytes mean anything is the TUF
 * client's decision, and verified releases live elsewhere.
 */
#ifndef SHOAL_STORE_BLOBS_H
#define SHOAL_STORE_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

#define BLOB_HASH_BYTES 32
#define BLOB_HEX_BYTES (2 * BLOB_HASH_BYTES + 1)
#define BLOB_SHA512_BYTES 64

struct blobs;

/* Opens (creating mode 0700 dirs) DATA/blobs. */
int blobs_open(const char *data_dir, struct blobs **out, char *err, size_t errlen)
	SHOAL_MUST_CHECK;
void blobs_close(struct blobs *b);

/* True if the complete blob is present. */
bool blobs_has(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES]);
/* Its size, or SHOAL_ENOTFOUND. */
int blobs_size(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], uint64_t *size)
	SHOAL_MUST_CHECK;

/* Stores bytes whose hash the caller claims is `hash`: SHOAL_EBADMAC if it
 * is not (nothing written); 0 if stored or already present. */
int blobs_put(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], const uint8_t *data,
	      size_t len) SHOAL_MUST_CHECK;

/* Reads the whole blob into a malloc'd buffer, at most max_len bytes
 * (SHOAL_ETOOBIG past that), re-checking its hash (SHOAL_EBADMAC: the file
 * was altered on disk; it is removed). */
int blobs_read(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], size_t max_len,
	       uint8_t **out, size_t *len) SHOAL_MUST_CHECK;

/* Reads up to cap bytes at offset (for serving a chunk to a peer); *len is
 * what was read (0 at the end). Serves the file as it is on disk. */
int blobs_read_at(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], uint64_t offset,
		  uint8_t *buf, size_t cap, size_t *len) SHOAL_MUST_CHECK;

/* Reads the blob once, for its size and SHA-512 (the SHA-256 is its name,
 * checked when it entered the store). SHOAL_ENOTFOUND if absent. */
int blobs_sha512(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
		 uint8_t out[BLOB_SHA512_BYTES], uint64_t *size) SHOAL_MUST_CHECK;
/* Gives the blob a second name, dst (a hard link: blobs are never changed
 * in place, so an installed release costs no copy); copies it (fsynced)
 * where the file system cannot link. An existing dst is replaced. */
int blobs_link(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], const char *dst)
	SHOAL_MUST_CHECK;

/* Bytes already held of a partial download (0 if none). */
uint64_t blobs_partial_size(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES]);
/* Appends a chunk at `offset`, which must equal the partial size
 * (SHOAL_EINVAL otherwise); the total must stay within `total`
 * (SHOAL_ETOOBIG). */
int blobs_partial_append(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
			 uint64_t offset, uint64_t total, const uint8_t *data, size_t len)
	SHOAL_MUST_CHECK;
/* Checks the complete partial file against its hash and moves it into the
 * store. SHOAL_EBADMAC: mismatch (the partial is removed, so the next try
 * starts over from another peer). */
int blobs_partial_commit(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES])
	SHOAL_MUST_CHECK;
/* Drops a partial download. */
void blobs_partial_drop(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES]);

/* Hex of a hash into out (BLOB_HEX_BYTES). */
void blobs_hex(const uint8_t hash[BLOB_HASH_BYTES], char out[BLOB_HEX_BYTES]);

#endif
