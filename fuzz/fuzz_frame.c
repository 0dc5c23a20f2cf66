/*
 * fuzz_frame.c — stream_frame_decode and state reassembly on arbitrary bytes.
 *
 * The input is read as a stream of frames, the way stream_recv_state reads
 * them, fed to a stream_reasm until it completes or fails. Checks that a
 * decoded frame never claims more than the input or the frame bound, that
 * ETRUNC asks for more than was given, and that a reassembled state is the
 * concatenation of its chunks.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_frame writes
 * DIR/frame/ and exits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/stream.h"

static void write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Appends one encoded frame to buf at *len. */
static void put(uint8_t *buf, size_t cap, size_t *len, uint8_t type,
		const uint8_t *p, size_t n)
{
	size_t used;
	if (stream_frame_encode(type, p, n, buf + *len, cap - *len, &used) != 0)
		abort();
	*len += used;
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/frame", root);
	mkdir(dir, 0755);
	static uint8_t buf[4 * SHOAL_TCP_FRAME_BYTES_MAX];
	static uint8_t chunk[STREAM_FRAME_PAYLOAD_BYTES_MAX];
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 13);
	size_t len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk, 100);
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk, 7);
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_END, NULL, 0);
	write_seed(dir, "state-two-chunks", buf, len);
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_END, NULL, 0);
	write_seed(dir, "state-empty", buf, len);
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk, sizeof(chunk));
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk, 1);
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_END, NULL, 0);
	write_seed(dir, "state-full-frame", buf, len);
	/* Past one frame's worth: the reassembly buffer grows (its doubling). */
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk, sizeof(chunk));
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_CHUNK, chunk,
	    SHOAL_TCP_FRAME_BYTES_MAX - sizeof(chunk) + 1);
	put(buf, sizeof(buf), &len, STREAM_FRAME_STATE_END, NULL, 0);
	write_seed(dir, "state-past-one-frame", buf, len);
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_ERROR,
	    (const uint8_t *)"certificate expired", 19);
	write_seed(dir, "error", buf, len);
	/* A probe's stream ping and its answer. */
	static const uint8_t seq[STREAM_PING_PAYLOAD_BYTES] = {0, 0, 1, 7};
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_PING, seq, sizeof(seq));
	write_seed(dir, "ping", buf, len);
	len = 0;
	put(buf, sizeof(buf), &len, STREAM_FRAME_PONG, seq, sizeof(seq));
	write_seed(dir, "pong", buf, len);
	/* Type 1 was CERT (TLS); now refused as unknown. */
	static const uint8_t retired_cert[] = {1, 0, 0, 0, 2, 0xab, 0xcd};
	write_seed(dir, "cert-then-end", retired_cert, sizeof(retired_cert));
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
	struct stream_reasm r;
	stream_reasm_init(&r);
	size_t off = 0, chunks_len = 0;
	for (;;) {
		struct stream_frame f;
		size_t used = 0;
		int rc = stream_frame_decode(data + off, size - off, &f, &used);
		if (rc == SHOAL_ETRUNC) {
			if (used <= size - off || used > SHOAL_TCP_FRAME_BYTES_MAX)
				abort();
			break;
		}
		if (rc != 0)
			break;
		if (used < STREAM_FRAME_HEADER_BYTES || used > size - off ||
		    used > SHOAL_TCP_FRAME_BYTES_MAX ||
		    f.len + STREAM_FRAME_HEADER_BYTES != used ||
		    f.payload != data + off + STREAM_FRAME_HEADER_BYTES)
			abort();
		off += used;
		rc = stream_reasm_feed(&r, &f);
		if (rc == 0) {
			chunks_len += f.len;
			if (r.len != chunks_len ||
			    memcmp(r.buf + r.len - f.len, f.payload, f.len) != 0)
				abort();
			continue;
		}
		if (rc == 1) {
			uint8_t *st;
			size_t len;
			stream_reasm_take(&r, &st, &len);
			if (st == NULL || len != chunks_len)
				abort();
			free(st);
		}
		break;
	}
	stream_reasm_free(&r);
	return 0;
}
