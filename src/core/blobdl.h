/*
 * blobdl.h — which peer to ask for which bytes of one content-addressed
 * blob (DESIGN §4.5), as a pure tracker: no I/O, no clock, seeded choice.
 *
 * A blob (TUF metadata file or release target) is named by its SHA-256 and
 * has a length from TUF (exact, or an upper bound when metadata gives none).
 * It is fetched in chunks over blob streams (core/sync.h: BLOB_REQ →
 * BLOB_CHUNK | BLOB_NONE), in order, appended to a partial file, so a
 * download resumes from the partial file's length.
 *
 *   loop:  blob_dl_next() → ASK (peer, offset, len) | COMPLETE | STALLED
 *          ask the peer; then exactly one of
 *            blob_dl_on_chunk()  the peer's BLOB_CHUNK header: 0 = append the
 *                                data at offset (the tracker advanced), or
 *                                SHOAL_EPROTO = the chunk broke a rule and the
 *                                peer is excluded for this blob
 *            blob_dl_on_none()   the peer does not hold it
 *            blob_dl_on_error()  transport failure (the peer is retried up to
 *                                SHOAL_BLOB_PEER_FAILURES_MAX times)
 *   COMPLETE: the caller checks the SHA-256 (and TUF length) of the whole
 *          file (blobs_partial_commit). On mismatch it drops the partial file
 *          and calls blob_dl_verify_failed(): every peer that contributed
 *          to this attempt is excluded and the download restarts at 0 —
 *          unless the attempt began on resumed bytes of unknown origin, in
 *          which case nobody is blamed (the old bytes may be the bad ones).
 *
 * Per chunk the tracker checks what it can without the data: the hash is
 * the one asked for, the offset is the one asked for, the total equals the
 * known length (or is within the bound, and then fixes it), and the length
 * is exactly min(asked, total - offset). Data correctness is the whole-blob
 * hash, which only the caller computes.
 *
 * Peer choice: keep the peer that served the last chunk (one contributor
 * per attempt when all goes well, so blame is exact); otherwise a random
 * usable peer, fewest failures first (blob_dl_prefer() puts one first, e.g.
 * the announcer); at most SHOAL_BLOB_PEERS_TRIED_MAX
 * distinct peers per download.
 */
#ifndef SHOAL_CORE_BLOBDL_H
#define SHOAL_CORE_BLOBDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "shoal/limits.h"
#include "shoal/rng.h"

#define BLOBDL_HASH_BYTES 32

enum blob_peer_state {
	BLOB_PEER_UNTRIED = 0,
	BLOB_PEER_OK,      /* served good chunks */
	BLOB_PEER_NONE,    /* said BLOB_NONE */
	BLOB_PEER_FAILED,  /* transport failures reached the bound */
	BLOB_PEER_BAD,     /* served data that failed verification: excluded */
};

const char *blob_peer_state_name(enum blob_peer_state s);

enum blob_dl_status {
	BLOB_DL_ASK = 1,   /* send *req */
	BLOB_DL_COMPLETE,  /* all bytes held: verify the whole blob */
	BLOB_DL_STALLED,   /* no usable peer left (add peers to go on) */
};

struct blob_dl_req {
	uint32_t peer;     /* gid */
	uint64_t offset;
	uint32_t len;
};

struct blob_dl_peer {
	uint32_t gid;
	uint8_t state;         /* enum blob_peer_state */
	uint8_t failures;
	bool asked;
	bool contributed;      /* served bytes of the current attempt */
};

struct blob_dl_stats {
	uint64_t chunks_ok;
	uint64_t chunks_bad;
	uint64_t bytes;        /* accepted */
	uint64_t nones;
	uint64_t errors;
	uint64_t restarts;     /* verify_failed */
};

struct blob_dl {
	uint8_t hash[BLOBDL_HASH_BYTES];
	uint64_t total;        /* expected length (exact) or bound (!exact) */
	bool exact;            /* total is known exactly */
	uint64_t length_given; /* as passed to blob_dl_init, for a restart */
	bool exact_given;
	uint64_t offset;       /* bytes held, in order from 0 */
	uint64_t resumed;      /* bytes the current attempt started with */
	struct blob_dl_peer peers[SHOAL_BLOB_PEERS_MAX];
	size_t peers_count;
	size_t current;        /* index of the peer to keep asking, or SIZE_MAX */
	size_t asked_count;    /* distinct peers asked */
	bool outstanding;
	struct blob_dl_req req;
	struct rng rng;
	struct blob_dl_stats stats;
};

/* Starts tracking a download of `hash`: length is exact (exact = true) or
 * an upper bound; resume_offset bytes are already held (a partial file).
 * SHOAL_EINVAL if length > SHOAL_BLOB_BYTES_MAX or resume_offset > length
 * (drop the partial file and start at 0). */
int blob_dl_init(struct blob_dl *d, const uint8_t hash[BLOBDL_HASH_BYTES],
		 uint64_t length, bool exact, uint64_t resume_offset,
		 uint64_t seed) SHOAL_MUST_CHECK;

/* Adds a candidate peer (one that announced or holds the blob). An known
 * peer that had said BLOB_NONE becomes usable again (it may have fetched the
 * blob since); bad peers stay excluded. SHOAL_EFULL past
 * SHOAL_BLOB_PEERS_MAX. */
int blob_dl_add_peer(struct blob_dl *d, uint32_t gid) SHOAL_MUST_CHECK;

/* Asks gid (a known, usable peer) next, e.g. the announcer of the blob:
 * 0, SHOAL_ENOTFOUND (unknown), SHOAL_ESTATE (excluded, or a request to
 * another peer is outstanding). */
int blob_dl_prefer(struct blob_dl *d, uint32_t gid) SHOAL_MUST_CHECK;

/* What to do next. With an outstanding request, returns it again. */
enum blob_dl_status blob_dl_next(struct blob_dl *d, struct blob_dl_req *req);

/* Called with the header of the BLOB_CHUNK that answered the outstanding
 * request to peer. 0: the chunk is good: append its data_len bytes at the
 * request's offset (the tracker has advanced). SHOAL_EPROTO: the peer is
 * excluded; discard the data. SHOAL_ESTATE: no request to that peer is
 * outstanding (nothing changed). */
int blob_dl_on_chunk(struct blob_dl *d, uint32_t peer,
		     const uint8_t hash[BLOBDL_HASH_BYTES], uint64_t offset,
		     uint64_t total, uint32_t data_len) SHOAL_MUST_CHECK;
/* The outstanding request to peer was answered BLOB_NONE. */
void blob_dl_on_none(struct blob_dl *d, uint32_t peer);
/* The outstanding request to peer failed in transport (connect, timeout,
 * reset, ERROR frame, a reply that did not decode). */
void blob_dl_on_error(struct blob_dl *d, uint32_t peer);
/* The complete blob failed the caller's hash/length check (see above). */
void blob_dl_verify_failed(struct blob_dl *d);

/* The state of a peer, or -1 if unknown. */
int blob_dl_peer_state(const struct blob_dl *d, uint32_t gid);

#endif
