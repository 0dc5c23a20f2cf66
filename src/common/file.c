/* file.c — reading a whole bounded file (include/shoal/file.h). */
#include "shoal/file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int shoal_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
	assert(path && out && len);
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SHOAL_ENOTFOUND : SHOAL_EIO;
	struct stat st;
	int rc = 0;
	uint8_t *buf = NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = SHOAL_EIO;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	size_t want = (size_t)st.st_size, got = 0;
	buf = malloc(want ? want : 1);
	if (!buf) {
		rc = SHOAL_ENOMEM;
		goto out;
	}
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = SHOAL_EIO;
			goto out;
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}
