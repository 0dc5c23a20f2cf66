/*
 * fuzz_blob_chunk.c — the blob message decoder (sync_decode on BLOB_REQ,
 * BLOB_CHUNK, BLOB_NONE) and the blob download tracker fed with whatever
 * chunk headers a peer can send.
 *
 * Input: flags(u8) | message.
 *   flags bit 0: the tracker knows the length exactly (else as a bound);
 *   flags bit 1: the tracker asks for the chunk's own hash (else another);
 *   flags bits 2-3: resume offset = the chunk's offset, 0, its end, or
 *                   past the expected length.
 *
 * Properties checked:
 *   - a blob message that decodes re-encodes byte for byte, and a chunk
 *     satisfies offset + len <= total <= SHOAL_BLOB_BYTES_MAX and len <=
 *     SHOAL_BLOB_CHUNK_BYTES_MAX;
 *   - the tracker, asked for the next request and answered with the
 *     decoded chunk header, either accepts it — and then the hash, offset
 *     and total are the ones it expected, the length is exactly
 *     min(asked, total - offset), and its offset advanced by that length —
 *     or refuses it with SHOAL_EPROTO and excludes that peer, changing
 *     nothing else; it never holds more bytes than the length;
 *   - verify_failed after any answer restarts at 0 within bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/blobdl.h"
#include "core/sync.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void check_reencode(const uint8_t *p, size_t len, const struct sync_msg *m)
{
	static uint8_t buf[SHOAL_SYNC_MSG_BYTES_MAX];
	struct wr w = wr_init(buf, sizeof(buf));
	switch (m->type) {
	case SYNC_BLOB_REQ:
		CHECK(m->len >= 1 && m->len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
		sync_put_blob_req(&w, m->hash, m->offset, m->len);
		break;
	case SYNC_BLOB_CHUNK:
		CHECK(m->total <= SHOAL_BLOB_BYTES_MAX);
		CHECK(m->len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
		CHECK(m->offset <= m->total && m->len <= m->total - m->offset);
		CHECK(m->len > 0 || m->offset == m->total);
		sync_put_blob_chunk(&w, m->hash, m->offset, m->total, m->data, m->len);
		break;
	case SYNC_BLOB_NONE:
		sync_put_blob_none(&w, m->hash);
		break;
	default:
		return;
	}
	CHECK(wr_ok(&w) && w.len == len && memcmp(buf, p, len) == 0);
}

static void run_tracker(uint8_t flags, const struct sync_msg *m)
{
	bool exact = flags & 1;
	uint8_t hash[BLOBDL_HASH_BYTES];
	memcpy(hash, m->hash, sizeof(hash));
	if (!(flags & 2))
		hash[0] ^= 0x80;
	/* The length the tracker expects: the chunk's total, or a little more
	 * or less, so both sides of the check are reached. */
	uint64_t length = m->total;
	if ((flags & 0x30) == 0x30)
		length++;
	else if ((flags & 0x30) == 0x10 && length > 0)
		length--;
	uint64_t resume;
	switch ((flags >> 2) & 3) {
	case 0: resume = m->offset; break;
	case 1: resume = 0; break;
	case 2: resume = m->offset + m->len; break;
	default: resume = length + 1; break;
	}
	struct blob_dl d;
	int rc = blob_dl_init(&d, hash, length, exact, resume, m->offset ^ m->total);
	if (length > SHOAL_BLOB_BYTES_MAX || resume > length) {
		CHECK(rc == SHOAL_EINVAL);
		return;
	}
	CHECK(rc == 0);
	CHECK(blob_dl_add_peer(&d, 1) == 0);
	CHECK(blob_dl_add_peer(&d, 2) == 0);
	for (int round = 0; round < 4; round++) {
		struct blob_dl_req req;
		enum blob_dl_status st = blob_dl_next(&d, &req);
		if (st != BLOB_DL_ASK) {
			CHECK(st == BLOB_DL_COMPLETE || st == BLOB_DL_STALLED);
			if (st == BLOB_DL_COMPLETE)
				CHECK(d.exact && d.offset == d.total);
			break;
		}
		CHECK(req.offset == d.offset);
		CHECK(req.len >= 1 && req.len <= SHOAL_BLOB_CHUNK_BYTES_MAX);
		struct blob_dl before = d;
		rc = blob_dl_on_chunk(&d, req.peer, m->hash, m->offset, m->total, m->len);
		if (rc == 0) {
			CHECK(memcmp(m->hash, hash, sizeof(hash)) == 0);
			CHECK(m->offset == req.offset);
			CHECK(before.exact ? m->total == before.total : m->total <= before.total);
			uint64_t left = m->total - m->offset;
			CHECK(m->len == (left < req.len ? left : req.len));
			CHECK(d.offset == before.offset + m->len);
			CHECK(d.exact && d.total == m->total && d.offset <= d.total);
			CHECK(blob_dl_peer_state(&d, req.peer) == BLOB_PEER_OK);
		} else {
			CHECK(rc == SHOAL_EPROTO);
			CHECK(blob_dl_peer_state(&d, req.peer) == BLOB_PEER_BAD);
			CHECK(d.offset == before.offset && d.total == before.total &&
			      d.exact == before.exact);
		}
		/* Answering again without a request is refused. */
		CHECK(blob_dl_on_chunk(&d, req.peer, m->hash, m->offset, m->total, m->len) ==
		      SHOAL_ESTATE);
	}
	struct blob_dl_req req;
	if (blob_dl_next(&d, &req) == BLOB_DL_ASK)
		blob_dl_on_error(&d, req.peer);
	blob_dl_verify_failed(&d);
	CHECK(d.offset == 0 && d.total == length && d.exact == exact);
}

/* --- seed corpus ------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/blob_chunk", root);
	mkdir(dir, 0755);
	static uint8_t buf[1 + SHOAL_SYNC_MSG_BYTES_MAX];
	static uint8_t data[SHOAL_BLOB_CHUNK_BYTES_MAX];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	uint8_t hash[32];
	for (int i = 0; i < 32; i++)
		hash[i] = (uint8_t)(0xa0 + i);
	struct {
		const char *name;
		uint8_t flags;
		uint64_t offset, total;
		uint32_t len;
	} chunks[] = {
		{"chunk-first", 0x03, 0, 3 * SHOAL_BLOB_CHUNK_BYTES_MAX, SHOAL_BLOB_CHUNK_BYTES_MAX},
		{"chunk-middle", 0x03, SHOAL_BLOB_CHUNK_BYTES_MAX, 3 * SHOAL_BLOB_CHUNK_BYTES_MAX,
		 SHOAL_BLOB_CHUNK_BYTES_MAX},
		{"chunk-last-short", 0x03, 100, 1100, 1000},
		{"chunk-whole-small", 0x06, 0, 17, 17},
		{"chunk-at-end-empty", 0x03, 500, 500, 0},
		{"chunk-bound-only", 0x02, 0, 4096, 4096},
		{"chunk-wrong-hash", 0x01, 0, 64, 64},
		{"chunk-total-lies", 0x33, 0, 64, 64},
		{"chunk-resume-past", 0x0f, 10, 20, 10},
		{"chunk-largest-blob", 0x03, SHOAL_BLOB_BYTES_MAX - 10, SHOAL_BLOB_BYTES_MAX, 10},
	};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		buf[0] = chunks[i].flags;
		struct wr w = wr_init(buf + 1, sizeof(buf) - 1);
		sync_put_blob_chunk(&w, hash, chunks[i].offset, chunks[i].total, data,
				    chunks[i].len);
		CHECK(wr_ok(&w));
		write_file(dir, chunks[i].name, buf, 1 + w.len);
	}
	buf[0] = 0;
	struct wr w = wr_init(buf + 1, sizeof(buf) - 1);
	sync_put_blob_req(&w, hash, 12345, 999);
	write_file(dir, "req", buf, 1 + w.len);
	w = wr_init(buf + 1, sizeof(buf) - 1);
	sync_put_blob_none(&w, hash);
	write_file(dir, "none", buf, 1 + w.len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct sync_msg m;
	int rc = sync_decode(data + 1, size - 1, &m);
	if (rc != 0) {
		CHECK(rc < 0);
		return 0;
	}
	check_reencode(data + 1, size - 1, &m);
	if (m.type == SYNC_BLOB_CHUNK)
		run_tracker(data[0], &m);
	return 0;
}
