/* blobs.c — content-addressed blob store with resumable partial files
 * (see blobs.h). */
#include "store/blobs.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/hex.h"
#include "shoal/limits.h"

/* Room for "/<hex>.part" after either directory. */
#define BLOBS_DIR_BYTES (PATH_MAX - BLOB_HEX_BYTES - 8)
/* Read size when hashing or copying a blob; such buffers are malloc'ed,
 * not _Thread_local: glibc allocates and zeroes a program's static TLS in
 * every thread it starts, so a 64 KiB TLS buffer costs 64 KiB resident in
 * each of the agent's threads. */
#define BLOB_IO_BYTES 65536

struct blobs {
	char dir[BLOBS_DIR_BYTES];
	char partial[BLOBS_DIR_BYTES];
};

void blobs_hex(const uint8_t hash[BLOB_HASH_BYTES], char out[BLOB_HEX_BYTES])
{
	hex_encode(hash, BLOB_HASH_BYTES, out);
}

static int mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

int blobs_open(const char *data_dir, struct blobs **out, char *err, size_t errlen)
{
	assert(data_dir && out);
	*out = NULL;
	struct blobs *b = calloc(1, sizeof(*b));
	if (!b)
		return SHOAL_ENOMEM;
	int n1 = snprintf(b->dir, sizeof(b->dir), "%s/blobs", data_dir);
	int n2 = snprintf(b->partial, sizeof(b->partial), "%s/blobs/partial", data_dir);
	if (n1 < 0 || n2 < 0 || (size_t)n2 >= sizeof(b->partial)) {
		snprintf(err, errlen, "data dir '%s' is too long", data_dir);
		free(b);
		return SHOAL_EINVAL;
	}
	if (mkdir_0700(b->dir) != 0 || mkdir_0700(b->partial) != 0) {
		snprintf(err, errlen, "cannot create %s: %s", b->partial, strerror(errno));
		free(b);
		return SHOAL_EIO;
	}
	*out = b;
	return 0;
}

void blobs_close(struct blobs *b)
{
	free(b);
}

static void blob_path(const struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
		      char out[PATH_MAX])
{
	char hex[BLOB_HEX_BYTES];
	blobs_hex(hash, hex);
	snprintf(out, PATH_MAX, "%s/%s", b->dir, hex);
}

static void part_path(const struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
		      char out[PATH_MAX])
{
	char hex[BLOB_HEX_BYTES];
	blobs_hex(hash, hex);
	snprintf(out, PATH_MAX, "%s/%s.part", b->partial, hex);
}

bool blobs_has(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES])
{
	uint64_t size;
	return blobs_size(b, hash, &size) == 0;
}

int blobs_size(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], uint64_t *size)
{
	assert(b && hash && size);
	char path[PATH_MAX];
	blob_path(b, hash, path);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return SHOAL_ENOTFOUND;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Digests a file as it is on disk, reading it once, with libsodium's
 * SHA-256 or SHA-512 (sha512 selects). Not OpenSSL's: its SHA-NI SHA-256 is
 * ~6x faster, but linking libcrypto costs every agent ~4 MiB of resident
 * pages for a hash that runs once per release (~0.1 s for 24 MiB here).
 * *size gets the bytes read when size is not NULL. */
static int digest_file(const char *path, bool sha512, uint8_t *out, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO;
	uint8_t *buf = malloc(BLOB_IO_BYTES);
	int rc = buf ? 0 : SHOAL_ENOMEM;
	crypto_hash_sha256_state s256;
	crypto_hash_sha512_state s512;
	if (sha512)
		crypto_hash_sha512_init(&s512);
	else
		crypto_hash_sha256_init(&s256);
	uint64_t total = 0;
	while (rc == 0) {
		ssize_t r = read(fd, buf, BLOB_IO_BYTES);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = SHOAL_EIO;
		if (r <= 0)
			break;
		if (sha512)
			crypto_hash_sha512_update(&s512, buf, (unsigned long long)r);
		else
			crypto_hash_sha256_update(&s256, buf, (unsigned long long)r);
		total += (uint64_t)r;
	}
	if (rc == 0 && sha512)
		crypto_hash_sha512_final(&s512, out);
	else if (rc == 0)
		crypto_hash_sha256_final(&s256, out);
	close(fd);
	free(buf);
	if (rc == 0 && size)
		*size = total;
	return rc;
}

static int hash_file(const char *path, uint8_t out[BLOB_HASH_BYTES])
{
	return digest_file(path, false, out, NULL);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return SHOAL_EIO;
	int rc = fsync(fd) == 0 ? 0 : SHOAL_EIO;
	close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SHOAL_EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int blobs_put(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], const uint8_t *data,
	      size_t len)
{
	assert(b && hash && (data || len == 0));
	uint8_t h[BLOB_HASH_BYTES];
	crypto_hash_sha256(h, data, len);
	if (sodium_memcmp(h, hash, sizeof(h)) != 0)
		return SHOAL_EBADMAC;
	if (blobs_has(b, hash))
		return 0;
	blobs_partial_drop(b, hash);
	int rc = blobs_partial_append(b, hash, 0, len, data, len);
	if (rc == 0)
		rc = blobs_partial_commit(b, hash);
	return rc;
}

int blobs_read(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], size_t max_len,
	       uint8_t **out, size_t *len)
{
	assert(b && hash && out && len);
	*out = NULL;
	*len = 0;
	uint64_t size;
	if (blobs_size(b, hash, &size) != 0)
		return SHOAL_ENOTFOUND;
	if (size > max_len)
		return SHOAL_ETOOBIG;
	uint8_t *buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return SHOAL_ENOMEM;
	size_t got = 0;
	while (got < size) {
		size_t n;
		int rc = blobs_read_at(b, hash, got, buf + got, (size_t)size - got, &n);
		if (rc != 0 || n == 0) {
			free(buf);
			return rc ? rc : SHOAL_EIO;
		}
		got += n;
	}
	uint8_t h[BLOB_HASH_BYTES];
	crypto_hash_sha256(h, buf, got);
	if (sodium_memcmp(h, hash, sizeof(h)) != 0) {
		char path[PATH_MAX];
		blob_path(b, hash, path);
		unlink(path); /* altered on disk: fetch it again */
		free(buf);
		return SHOAL_EBADMAC;
	}
	*out = buf;
	*len = got;
	return 0;
}

int blobs_read_at(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], uint64_t offset,
		  uint8_t *buf, size_t cap, size_t *len)
{
	assert(b && hash && buf && len);
	*len = 0;
	char path[PATH_MAX];
	blob_path(b, hash, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO;
	if (offset > (uint64_t)INT64_MAX) {
		close(fd);
		return SHOAL_EINVAL;
	}
	size_t got = 0;
	while (got < cap) {
		ssize_t r = pread(fd, buf + got, cap - got, (off_t)(offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			close(fd);
			return SHOAL_EIO;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return 0;
}

int blobs_sha512(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
		 uint8_t out[BLOB_SHA512_BYTES], uint64_t *size)
{
	assert(b && hash && out && size);
	char path[PATH_MAX];
	blob_path(b, hash, path);
	return digest_file(path, true, out, size);
}

static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO;
	int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		close(in);
		return SHOAL_EIO;
	}
	uint8_t *buf = malloc(BLOB_IO_BYTES); /* see BLOB_IO_BYTES */
	if (buf == NULL) {
		close(in);
		close(out);
		unlink(dst);
		return SHOAL_ENOMEM;
	}
	int rc = 0;
	for (;;) {
		ssize_t r = read(in, buf, BLOB_IO_BYTES);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? SHOAL_EIO : 0;
			break;
		}
		rc = write_all(out, buf, (size_t)r);
		if (rc)
			break;
	}
	free(buf);
	if (rc == 0 && fsync(out) != 0)
		rc = SHOAL_EIO;
	close(in);
	if (close(out) != 0)
		rc = SHOAL_EIO;
	if (rc)
		unlink(dst);
	return rc;
}

int blobs_link(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES], const char *dst)
{
	assert(b && hash && dst);
	char path[PATH_MAX];
	blob_path(b, hash, path);
	if (link(path, dst) == 0)
		return 0;
	if (errno == EEXIST && unlink(dst) == 0 && link(path, dst) == 0)
		return 0;
	if (errno == ENOENT)
		return SHOAL_ENOTFOUND;
	return copy_file(path, dst); /* EXDEV, EPERM, EMLINK: a copy will do */
}

uint64_t blobs_partial_size(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES])
{
	assert(b && hash);
	char path[PATH_MAX];
	part_path(b, hash, path);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	return (uint64_t)st.st_size;
}

int blobs_partial_append(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES],
			 uint64_t offset, uint64_t total, const uint8_t *data, size_t len)
{
	assert(b && hash && (data || len == 0));
	if (total > SHOAL_BLOB_BYTES_MAX || offset > total || len > total - offset)
		return SHOAL_ETOOBIG;
	if (offset != blobs_partial_size(b, hash))
		return SHOAL_EINVAL;
	char path[PATH_MAX];
	part_path(b, hash, path);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return SHOAL_EIO;
	int rc = write_all(fd, data, len);
	if (close(fd) != 0)
		rc = SHOAL_EIO;
	return rc;
}

int blobs_partial_commit(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES])
{
	assert(b && hash);
	char part[PATH_MAX], dst[PATH_MAX];
	part_path(b, hash, part);
	blob_path(b, hash, dst);
	/* An empty blob leaves no partial file behind; make one. */
	int fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return SHOAL_EIO;
	int rc = fsync(fd) == 0 ? 0 : SHOAL_EIO;
	close(fd);
	if (rc)
		return rc;
	uint8_t h[BLOB_HASH_BYTES];
	rc = hash_file(part, h);
	if (rc)
		return rc;
	if (sodium_memcmp(h, hash, sizeof(h)) != 0) {
		unlink(part);
		return SHOAL_EBADMAC;
	}
	if (rename(part, dst) != 0)
		return SHOAL_EIO;
	return fsync_dir(b->dir);
}

void blobs_partial_drop(struct blobs *b, const uint8_t hash[BLOB_HASH_BYTES])
{
	assert(b && hash);
	char path[PATH_MAX];
	part_path(b, hash, path);
	unlink(path);
}
