/*
 * connlog.c — LD_PRELOAD shim for the replication benchmark (bench/release.py):
 * after every connect() on an IPv4 socket it appends one line
 *     REALTIME_S.NS PID LOCAL_PORT REMOTE_PORT
 * to the file named by $BENCH_CONNLOG. The local (ephemeral) port of a
 * client TCP connection is chosen by the kernel inside connect(), so this is
 * the only place a benchmark can learn which process owns it; with it every
 * packet captured on lo can be charged to the node that received it. The
 * shim changes nothing else: the real connect() runs first, its result and
 * errno are returned as they were. Not part of shoal; built by the bench
 * script with `cc -shared -fPIC`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static connect_fn real;
	if (!real)
		real = (connect_fn)dlsym(RTLD_NEXT, "connect");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int rc = real(fd, addr, len);
	int saved = errno;
	const char *path = getenv("BENCH_CONNLOG");
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	if (path && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
	    getsockname(fd, (struct sockaddr *)&me, &ml) == 0 && me.sin_family == AF_INET) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		char line[96];
		int n = snprintf(line, sizeof(line), "%lld.%09ld %d %u %u\n", (long long)ts.tv_sec,
				 ts.tv_nsec, (int)getpid(), (unsigned)ntohs(me.sin_port),
				 (unsigned)ntohs(((const struct sockaddr_in *)addr)->sin_port));
		int lf = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (lf >= 0) {
			/* one write of < PIPE_BUF bytes with O_APPEND: lines never interleave */
			if (write(lf, line, (size_t)n) < 0) {
				/* nothing to do: a lost line shows as unattributed bytes */
			}
			close(lf);
		}
	}
	errno = saved;
	return rc;
}
