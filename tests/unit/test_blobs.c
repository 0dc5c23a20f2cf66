/* test_blobs.c — the content-addressed blob store (real files in a temp
 * dir) and announce record bodies. */
#define _GNU_SOURCE 1 /* dl_iterate_phdr */
#include <fcntl.h>
#include <link.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "core/announce.h"
#include "store/blobs.h"

static void blob_path(const char *dir, const uint8_t h[32], char *out, size_t n)
{
	char hex[BLOB_HEX_BYTES];
	blobs_hex(h, hex);
	snprintf(out, n, "%s/blobs/%s", dir, hex);
}

static void put_read_and_refuse_wrong_hash(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct blobs *b;
	char err[256];
	assert_int_equal(blobs_open(dir, &b, err, sizeof(err)), 0);
	const char *text = "release bundle v1";
	uint8_t h[32], other[32];
	crypto_hash_sha256(h, (const uint8_t *)text, strlen(text));
	crypto_hash_sha256(other, (const uint8_t *)"x", 1);
	assert_false(blobs_has(b, h));
	/* Bytes that do not hash to the claimed name are never stored. */
	assert_int_equal(blobs_put(b, other, (const uint8_t *)text, strlen(text)),
			 SHOAL_EBADMAC);
	assert_false(blobs_has(b, other));
	assert_int_equal(blobs_put(b, h, (const uint8_t *)text, strlen(text)), 0);
	assert_true(blobs_has(b, h));
	assert_int_equal(blobs_put(b, h, (const uint8_t *)text, strlen(text)), 0);
	uint8_t *got;
	size_t len;
	assert_int_equal(blobs_read(b, h, 1024, &got, &len), 0);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(got, text, len);
	free(got);
	assert_int_equal(blobs_read(b, h, 4, &got, &len), SHOAL_ETOOBIG);
	uint8_t chunk[8];
	assert_int_equal(blobs_read_at(b, h, 8, chunk, sizeof(chunk), &len), 0);
	assert_int_equal(len, 8);
	assert_memory_equal(chunk, text + 8, 8);
	assert_int_equal(blobs_read_at(b, h, 100, chunk, sizeof(chunk), &len), 0);
	assert_int_equal(len, 0);
	blobs_close(b);
	tu_rmtree(dir);
	free(dir);
}

static void partial_resumes_and_bad_data_is_dropped(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct blobs *b;
	char err[256];
	assert_int_equal(blobs_open(dir, &b, err, sizeof(err)), 0);
	uint8_t data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	uint8_t h[32];
	crypto_hash_sha256(h, data, sizeof(data));
	assert_int_equal(blobs_partial_append(b, h, 0, sizeof(data), data, 4000), 0);
	/* A chunk for the wrong offset is refused; a reopened store resumes. */
	assert_int_equal(blobs_partial_append(b, h, 5000, sizeof(data), data + 5000, 100),
			 SHOAL_EINVAL);
	blobs_close(b);
	assert_int_equal(blobs_open(dir, &b, err, sizeof(err)), 0);
	assert_int_equal(blobs_partial_size(b, h), 4000);
	assert_int_equal(blobs_partial_append(b, h, 4000, sizeof(data), data + 4000, 7000),
			 SHOAL_ETOOBIG);
	assert_int_equal(blobs_partial_append(b, h, 4000, sizeof(data), data + 4000, 6000), 0);
	assert_false(blobs_has(b, h));
	assert_int_equal(blobs_partial_commit(b, h), 0);
	assert_true(blobs_has(b, h));
	assert_int_equal(blobs_partial_size(b, h), 0);

	/* A tampered transfer fails the hash at commit and starts over. */
	uint8_t h2[32], bad[100];
	memset(bad, 1, sizeof(bad));
	crypto_hash_sha256(h2, (const uint8_t *)"good", 4);
	assert_int_equal(blobs_partial_append(b, h2, 0, 4, bad, 4), 0);
	assert_int_equal(blobs_partial_commit(b, h2), SHOAL_EBADMAC);
	assert_false(blobs_has(b, h2));
	assert_int_equal(blobs_partial_size(b, h2), 0);

	/* A blob altered on disk is detected when read, and removed. */
	char path[4096];
	blob_path(dir, h, path, sizeof(path));
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "XX", 2, 10), 2);
	close(fd);
	uint8_t *got;
	size_t len;
	assert_int_equal(blobs_read(b, h, sizeof(data), &got, &len), SHOAL_EBADMAC);
	assert_false(blobs_has(b, h));
	blobs_close(b);
	tu_rmtree(dir);
	free(dir);
}

/* An installed release is the stored blob under a second name (no copy),
 * replacing what was there; the SHA-512 pass sees every byte. */
static void link_and_sha512(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct blobs *b;
	char err[256];
	assert_int_equal(blobs_open(dir, &b, err, sizeof(err)), 0);
	size_t n = 200000; /* several read buffers */
	uint8_t *data = malloc(n);
	randombytes_buf(data, n);
	uint8_t h[32], want[64], got[64];
	crypto_hash_sha256(h, data, n);
	crypto_hash_sha512(want, data, n);
	uint64_t size = 0;
	assert_int_equal(blobs_sha512(b, h, got, &size), SHOAL_ENOTFOUND);
	assert_int_equal(blobs_put(b, h, data, n), 0);
	assert_int_equal(blobs_sha512(b, h, got, &size), 0);
	assert_int_equal(size, n);
	assert_memory_equal(got, want, 64);
	char dst[4096], src[4096];
	snprintf(dst, sizeof(dst), "%s/installed", dir);
	FILE *f = fopen(dst, "w");
	fputs("old", f);
	fclose(f);
	assert_int_equal(blobs_link(b, h, dst), 0);
	blob_path(dir, h, src, sizeof(src));
	struct stat a, c;
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(dst, &c), 0);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(c.st_size, n);
	uint8_t other[32];
	crypto_hash_sha256(other, (const uint8_t *)"absent", 6);
	assert_int_equal(blobs_link(b, other, dst), SHOAL_ENOTFOUND);
	free(data);
	blobs_close(b);
	tu_rmtree(dir);
	free(dir);
}

static void announce_round_trip_and_lookup(void **state)
{
	(void)state;
	struct announce a = {.count = 4};
	a.files[0] = (struct announce_file){.role = ANNOUNCE_ROOT, .version = 2, .length = 900};
	a.files[1] = (struct announce_file){.role = ANNOUNCE_TIMESTAMP, .version = 7, .length = 400};
	a.files[2] = (struct announce_file){.role = ANNOUNCE_SNAPSHOT, .version = 7, .length = 500};
	a.files[3] = (struct announce_file){.role = ANNOUNCE_TARGETS, .version = 5, .length = 800};
	for (int i = 0; i < 4; i++)
		memset(a.files[i].sha256, i + 1, 32);
	uint8_t buf[SHOAL_RECORD_BODY_MAX];
	size_t len;
	assert_int_equal(announce_encode(&a, buf, sizeof(buf), &len), 0);
	assert_true(len <= SHOAL_RECORD_BODY_MAX);
	struct announce b;
	assert_int_equal(announce_decode(buf, len, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_ptr_equal(announce_lookup(&b, "2.root.json"), &b.files[0]);
	assert_null(announce_lookup(&b, "3.root.json"));
	assert_null(announce_lookup(&b, "root.json"));
	assert_ptr_equal(announce_lookup(&b, "timestamp.json"), &b.files[1]);
	assert_ptr_equal(announce_lookup(&b, "7.snapshot.json"), &b.files[2]);
	assert_ptr_equal(announce_lookup(&b, "snapshot.json"), &b.files[2]);
	assert_ptr_equal(announce_lookup(&b, "5.targets.json"), &b.files[3]);
	assert_null(announce_lookup(&b, "6.targets.json"));

	/* Rejections: truncated, trailing, bad format, bad role, two timestamps. */
	assert_int_equal(announce_decode(buf, len - 1, &b), SHOAL_ETRUNC);
	buf[len] = 0;
	assert_int_equal(announce_decode(buf, len + 1, &b), SHOAL_ETRAILING);
	buf[0] = 2;
	assert_int_equal(announce_decode(buf, len, &b), SHOAL_EVERSION);
	buf[0] = 1;
	buf[2] = 9;
	assert_int_equal(announce_decode(buf, len, &b), SHOAL_EPROTO);
	buf[2] = ANNOUNCE_ROOT;
	a.files[0].role = ANNOUNCE_TIMESTAMP;
	assert_int_equal(announce_encode(&a, buf, sizeof(buf), &len), SHOAL_EINVAL);
	a.count = 0;
	assert_int_equal(announce_encode(&a, buf, sizeof(buf), &len), SHOAL_EINVAL);
}

/* glibc gives every thread its own copy of the program's static TLS,
 * allocated and zeroed when the thread starts: a buffer declared
 * _Thread_local costs its size in resident memory in every one of the
 * agent's threads (8 at idle, one more per stream being served). The blob
 * store once had two 64 KiB ones: +1.1 MiB per idle agent. */
static int tls_size(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	if (info->dlpi_name && info->dlpi_name[0] != '\0')
		return 0; /* a shared library: only this program counts */
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_TLS)
			*(size_t *)arg = info->dlpi_phdr[i].p_memsz;
	return 1;
}

static void no_big_thread_local_buffers(void **state)
{
	(void)state;
	size_t tls = 0;
	dl_iterate_phdr(tls_size, &tls);
	print_message("static TLS of this program: %zu bytes\n", tls);
	assert_true(tls <= 16 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_read_and_refuse_wrong_hash),
		cmocka_unit_test(partial_resumes_and_bad_data_is_dropped),
		cmocka_unit_test(link_and_sha512),
		cmocka_unit_test(no_big_thread_local_buffers),
		cmocka_unit_test(announce_round_trip_and_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
