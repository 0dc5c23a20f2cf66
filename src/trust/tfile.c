/*
 * tfile.c — bounded reads and exclusive, durable writes of the trust
 * module's small files (keys, certificates, fleet files). See tfile.h.
 */
#include "trust/tfile.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tfile_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!errbuf || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

int tfile_read(const char *path, uint8_t *buf, size_t cap, size_t *len,
	       int secret, char *errbuf, size_t errlen)
{
	struct stat st;
	size_t got = 0;
	int rc = 0;

	assert(path && buf && len);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		tfile_err(errbuf, errlen, "open(%s): %s", path, strerror(e));
		return e == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO;
	}
	if (fstat(fd, &st) != 0) {
		tfile_err(errbuf, errlen, "fstat(%s): %s", path, strerror(errno));
		rc = SHOAL_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		tfile_err(errbuf, errlen, "%s: not a regular file", path);
		rc = SHOAL_EIO;
		goto out;
	}
	/* A secret readable by anyone else may already be leaked; refuse it so
	 * the operator notices instead of silently using it. */
	if (secret && (st.st_mode & 077) != 0) {
		tfile_err(errbuf, errlen,
			  "%s: mode %04o is too open; run: chmod 600 %s", path,
			  (unsigned)(st.st_mode & 07777), path);
		rc = SHOAL_EKEYMODE;
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		tfile_err(errbuf, errlen, "%s: %lld bytes, more than the %zu allowed",
			  path, (long long)st.st_size, cap);
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	/* Read up to cap + 1 so a file that grew after fstat is still caught. */
	for (;;) {
		uint8_t extra;
		ssize_t n = got < cap ? read(fd, buf + got, cap - got) : read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			tfile_err(errbuf, errlen, "read(%s): %s", path, strerror(errno));
			rc = SHOAL_EIO;
			goto out;
		}
		if (n == 0)
			break;
		if (got >= cap) {
			tfile_err(errbuf, errlen, "%s: more than the %zu bytes allowed", path, cap);
			rc = SHOAL_ETOOBIG;
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	assert(rc != 0 || *len <= cap);
	return rc;
}

int tfile_write_new(const char *path, const void *data, size_t len, int mode,
		    char *errbuf, size_t errlen)
{
	const uint8_t *p = data;
	size_t off = 0;

	assert(path && (data || len == 0));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		tfile_err(errbuf, errlen, "create(%s): %s", path, strerror(e));
		return e == EEXIST ? SHOAL_EEXIST : SHOAL_EIO;
	}
	/* The umask may have narrowed the mode; make it exactly what was asked. */
	if (fchmod(fd, (mode_t)mode) != 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	tfile_err(errbuf, errlen, "write(%s): %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path);
	return SHOAL_EIO;
}

int tfile_join(char *out, size_t cap, const char *dir, const char *name)
{
	assert(out && dir && name);
	int n = snprintf(out, cap, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return SHOAL_ETOOBIG;
	return 0;
}
