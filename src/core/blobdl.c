/* blobdl.c — the blob download tracker: peer choice, per-chunk checks,
 * exclusion of peers whose data failed, resume (see blobdl.h). */
#include "core/blobdl.h"

#include <assert.h>
#include <string.h>

#define NO_PEER SIZE_MAX

const char *blob_peer_state_name(enum blob_peer_state s)
{
	switch (s) {
	case BLOB_PEER_UNTRIED: return "untried";
	case BLOB_PEER_OK: return "ok";
	case BLOB_PEER_NONE: return "none";
	case BLOB_PEER_FAILED: return "failed";
	case BLOB_PEER_BAD: return "bad";
	default: return "unknown";
	}
}

int blob_dl_init(struct blob_dl *d, const uint8_t hash[BLOBDL_HASH_BYTES],
		 uint64_t length, bool exact, uint64_t resume_offset, uint64_t seed)
{
	assert(d && hash);
	if (length > SHOAL_BLOB_BYTES_MAX || resume_offset > length)
		return SHOAL_EINVAL;
	memset(d, 0, sizeof(*d));
	memcpy(d->hash, hash, BLOBDL_HASH_BYTES);
	d->total = length;
	d->exact = exact;
	d->length_given = length;
	d->exact_given = exact;
	d->offset = resume_offset;
	d->resumed = resume_offset;
	d->current = NO_PEER;
	rng_seed(&d->rng, seed);
	return 0;
}

static size_t find_peer(const struct blob_dl *d, uint32_t gid)
{
	for (size_t i = 0; i < d->peers_count; i++)
		if (d->peers[i].gid == gid)
			return i;
	return NO_PEER;
}

int blob_dl_peer_state(const struct blob_dl *d, uint32_t gid)
{
	size_t i = find_peer(d, gid);
	return i == NO_PEER ? -1 : d->peers[i].state;
}

int blob_dl_add_peer(struct blob_dl *d, uint32_t gid)
{
	assert(d);
	size_t i = find_peer(d, gid);
	if (i != NO_PEER) {
		if (d->peers[i].state == BLOB_PEER_NONE)
			d->peers[i].state = BLOB_PEER_UNTRIED;
		return 0;
	}
	if (d->peers_count >= SHOAL_BLOB_PEERS_MAX)
		return SHOAL_EFULL;
	struct blob_dl_peer *p = &d->peers[d->peers_count++];
	memset(p, 0, sizeof(*p));
	p->gid = gid;
	p->state = BLOB_PEER_UNTRIED;
	return 0;
}

static bool usable(const struct blob_dl *d, const struct blob_dl_peer *p)
{
	if (p->state != BLOB_PEER_UNTRIED && p->state != BLOB_PEER_OK)
		return false;
	/* Past the bound on distinct peers, only those already asked. */
	return p->asked || d->asked_count < SHOAL_BLOB_PEERS_TRIED_MAX;
}

int blob_dl_prefer(struct blob_dl *d, uint32_t gid)
{
	assert(d);
	size_t i = find_peer(d, gid);
	if (i == NO_PEER)
		return SHOAL_ENOTFOUND;
	if (!usable(d, &d->peers[i]) || (d->outstanding && d->req.peer != gid))
		return SHOAL_ESTATE;
	d->current = i;
	return 0;
}

/* A random usable peer among those with the fewest failures. */
static size_t choose(struct blob_dl *d)
{
	unsigned best = UINT32_MAX;
	size_t ties = 0;
	for (size_t i = 0; i < d->peers_count; i++) {
		const struct blob_dl_peer *p = &d->peers[i];
		if (!usable(d, p))
			continue;
		if (p->failures < best) {
			best = p->failures;
			ties = 0;
		}
		if (p->failures == best)
			ties++;
	}
	if (ties == 0)
		return NO_PEER;
	uint64_t pick = rng_below(&d->rng, ties);
	for (size_t i = 0; i < d->peers_count; i++) {
		const struct blob_dl_peer *p = &d->peers[i];
		if (usable(d, p) && p->failures == best && pick-- == 0)
			return i;
	}
	assert(!"unreachable: a tie was counted");
	return NO_PEER;
}

enum blob_dl_status blob_dl_next(struct blob_dl *d, struct blob_dl_req *req)
{
	assert(d && req);
	if (d->outstanding) {
		*req = d->req;
		return BLOB_DL_ASK;
	}
	if (d->exact && d->offset == d->total)
		return BLOB_DL_COMPLETE;
	assert(d->offset <= d->total);
	if (d->current == NO_PEER || !usable(d, &d->peers[d->current]))
		d->current = choose(d);
	if (d->current == NO_PEER)
		return BLOB_DL_STALLED;
	struct blob_dl_peer *p = &d->peers[d->current];
	if (!p->asked) {
		p->asked = true;
		d->asked_count++;
	}
	uint64_t left = d->total - d->offset;
	/* With only a bound known, the server's total tells the real end; ask
	 * a full chunk (at least one byte, so the request is valid). */
	uint32_t len = left < SHOAL_BLOB_CHUNK_BYTES_MAX ? (uint32_t)left
							 : SHOAL_BLOB_CHUNK_BYTES_MAX;
	if (len == 0)
		len = 1;
	d->req = (struct blob_dl_req){p->gid, d->offset, len};
	d->outstanding = true;
	*req = d->req;
	return BLOB_DL_ASK;
}

/* Ends the outstanding request to peer; returns its index or NO_PEER. */
static size_t answer(struct blob_dl *d, uint32_t peer)
{
	if (!d->outstanding || d->req.peer != peer)
		return NO_PEER;
	size_t i = find_peer(d, peer);
	assert(i != NO_PEER);
	d->outstanding = false;
	return i;
}

static void exclude(struct blob_dl *d, size_t i)
{
	d->peers[i].state = BLOB_PEER_BAD;
	if (d->current == i)
		d->current = NO_PEER;
}

int blob_dl_on_chunk(struct blob_dl *d, uint32_t peer,
		     const uint8_t hash[BLOBDL_HASH_BYTES], uint64_t offset,
		     uint64_t total, uint32_t data_len)
{
	assert(d && hash);
	if (!d->outstanding || d->req.peer != peer)
		return SHOAL_ESTATE;
	size_t i = answer(d, peer);
	bool good = memcmp(hash, d->hash, BLOBDL_HASH_BYTES) == 0 &&
		    offset == d->req.offset && total >= offset &&
		    (d->exact ? total == d->total : total <= d->total);
	if (good) {
		uint64_t left = total - offset;
		uint32_t expect = left < d->req.len ? (uint32_t)left : d->req.len;
		good = data_len == expect;
	}
	if (!good) {
		d->stats.chunks_bad++;
		exclude(d, i);
		return SHOAL_EPROTO;
	}
	if (!d->exact) {
		d->total = total; /* the first good answer fixes the length */
		d->exact = true;
	}
	d->offset += data_len;
	assert(d->offset <= d->total);
	d->peers[i].state = BLOB_PEER_OK;
	d->peers[i].contributed = d->peers[i].contributed || data_len > 0;
	d->current = i;
	d->stats.chunks_ok++;
	d->stats.bytes += data_len;
	return 0;
}

void blob_dl_on_none(struct blob_dl *d, uint32_t peer)
{
	assert(d);
	size_t i = answer(d, peer);
	if (i == NO_PEER)
		return;
	d->stats.nones++;
	d->peers[i].state = BLOB_PEER_NONE;
	if (d->current == i)
		d->current = NO_PEER;
}

void blob_dl_on_error(struct blob_dl *d, uint32_t peer)
{
	assert(d);
	size_t i = answer(d, peer);
	if (i == NO_PEER)
		return;
	d->stats.errors++;
	struct blob_dl_peer *p = &d->peers[i];
	if (++p->failures >= SHOAL_BLOB_PEER_FAILURES_MAX)
		p->state = BLOB_PEER_FAILED;
	if (d->current == i)
		d->current = NO_PEER; /* try someone else; it may come back */
}

void blob_dl_verify_failed(struct blob_dl *d)
{
	assert(d);
	assert(!d->outstanding);
	d->stats.restarts++;
	/* Bytes resumed from an earlier run have no known source: if any were
	 * used, blame nobody this time; the next attempt starts clean and its
	 * failure will be attributable. */
	bool blame = d->resumed == 0;
	for (size_t i = 0; i < d->peers_count; i++) {
		if (blame && d->peers[i].contributed)
			exclude(d, i);
		d->peers[i].contributed = false;
	}
	d->offset = 0;
	d->resumed = 0;
	d->current = NO_PEER;
	/* A length learnt from a chunk may have been part of the lie. */
	d->total = d->length_given;
	d->exact = d->exact_given;
}
