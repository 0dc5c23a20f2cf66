/*
 * control.c — the control socket: a libuv server for the agent and a
 * blocking client for the CLI. Protocol in control.h.
 *
 * Server, per connection:
 *
 *   accepted --(bytes up to '\n')--> request parsed --> handler --> writing
 *      |                                                              |
 *      +--(timeout, EOF, read error, bad peer)--> closing <--(written)+
 *
 * The listening socket is made with plain syscalls (socket, bind under
 * umask 077, chmod 0600, listen) and only then handed to libuv, so every
 * failure in control_start is synchronous and leaves nothing on the loop.
 */
#define _GNU_SOURCE /* struct ucred for SO_PEERCRED */
#include "runtime/control.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shoal/limits.h"
#include "shoal/log.h"

#define LOCK_SUFFIX ".lock"
#define SUN_PATH_BYTES (sizeof(((struct sockaddr_un *)0)->sun_path))

struct client;

struct control_server {
	uv_loop_t *loop;
	uv_pipe_t listen;
	control_handler_fn fn;
	void *arg;
	int lock_fd;
	bool stopping;
	bool listen_closed;
	size_t clients_count; /* allocated clients, closing ones included */
	/* Clients not yet closing: what SHOAL_CONTROL_CLIENTS_MAX bounds. A
	 * closing client's socket is already shut (uv_close closes the fd at
	 * once) but its memory goes only in the close callbacks at the end of
	 * the loop iteration; counting it would refuse a CLI call that comes
	 * in that window. Closing clients are freed in the same iteration,
	 * as refused connections are. */
	size_t clients_open;
	struct client *clients; /* open clients, for control_stop */
	char path[SUN_PATH_BYTES];
};

struct client {
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t wreq;
	struct control_server *srv;
	struct client *prev, *next;
	int handles_open;
	bool closing;
	bool answered;
	char *resp;
	size_t len;
	char buf[SHOAL_CONTROL_REQ_BYTES_MAX];
};

static void __attribute__((format(printf, 3, 4)))
errf(char *out, size_t out_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, out_size, fmt, ap);
	va_end(ap);
}

/* --- request parsing (pure; fuzzed) -------------------------------------- */

static bool cmd_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

json_t *control_parse_request(const char *buf, size_t len, char *err,
			      size_t errlen)
{
	assert(buf || len == 0);
	assert(err && errlen > 0);
	err[0] = '\0';
	if (len > SHOAL_CONTROL_REQ_BYTES_MAX) {
		errf(err, errlen, "request over %u bytes",
		     (unsigned)SHOAL_CONTROL_REQ_BYTES_MAX);
		return NULL;
	}
	json_error_t jerr;
	json_t *j = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		errf(err, errlen, "%s at line %d column %d", jerr.text, jerr.line,
		     jerr.column);
		return NULL;
	}
	if (!json_is_object(j)) {
		errf(err, errlen, "request must be a JSON object");
		goto bad;
	}
	json_t *cmd = json_object_get(j, "cmd");
	if (!json_is_string(cmd)) {
		errf(err, errlen, "request needs a \"cmd\" string");
		goto bad;
	}
	const char *s = json_string_value(cmd);
	size_t n = json_string_length(cmd);
	if (n == 0 || n > SHOAL_CONTROL_CMD_BYTES_MAX) {
		errf(err, errlen, "\"cmd\" must be 1 to %u bytes",
		     (unsigned)SHOAL_CONTROL_CMD_BYTES_MAX);
		goto bad;
	}
	for (size_t i = 0; i < n; i++) {
		if (!cmd_char_ok(s[i])) {
			errf(err, errlen, "\"cmd\" may hold only a-z 0-9 _ -");
			goto bad;
		}
	}
	return j;
bad:
	json_decref(j);
	return NULL;
}

/* --- server ----------------------------------------------------------------- */

static void maybe_free_server(struct control_server *srv)
{
	if (srv->stopping && srv->listen_closed && srv->clients_count == 0)
		free(srv);
}

static void on_client_handle_closed(uv_handle_t *h)
{
	struct client *c = h->data;
	assert(c->handles_open > 0);
	if (--c->handles_open > 0)
		return;
	struct control_server *srv = c->srv;
	assert(srv->clients_count > 0);
	srv->clients_count--;
	free(c->resp);
	free(c);
	maybe_free_server(srv);
}

/* Called once per client, on any way out: closes both handles. */
static void client_close(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	struct control_server *srv = c->srv;
	assert(srv->clients_open > 0);
	srv->clients_open--;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	uv_close((uv_handle_t *)&c->pipe, on_client_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct client *c = req->data;
	if (status < 0 && status != UV_ECANCELED)
		log_debug("control_write_failed", "err=%s", uv_strerror(status));
	client_close(c);
}

/* Sends `reply` (consumed) and then closes. */
static void client_reply(struct client *c, json_t *reply)
{
	assert(!c->answered);
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (c->closing) {
		json_decref(reply);
		return;
	}
	char *text = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	const char *fallback = NULL;
	if (!text)
		fallback = "{\"error\":\"out of memory building the reply\"}";
	else if (strlen(text) + 1 > SHOAL_CONTROL_RESP_BYTES_MAX)
		fallback = "{\"error\":\"reply over SHOAL_CONTROL_RESP_BYTES_MAX\"}";
	if (fallback) {
		free(text);
		text = strdup(fallback);
		if (!text) {
			client_close(c);
			return;
		}
	}
	size_t n = strlen(text);
	c->resp = malloc(n + 2);
	if (c->resp)
		memcpy(c->resp, text, n);
	free(text);
	if (!c->resp) {
		client_close(c);
		return;
	}
	c->resp[n] = '\n';
	c->resp[n + 1] = '\0';
	uv_buf_t b = uv_buf_init(c->resp, (unsigned)(n + 1));
	c->wreq.data = c;
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, on_written);
	if (rc < 0) {
		log_debug("control_write_failed", "err=%s", uv_strerror(rc));
		client_close(c);
	}
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:s}", "error", msg);
}

static void client_handle_request(struct client *c, size_t len)
{
	assert(len <= sizeof(c->buf));
	char err[256];
	json_t *req = control_parse_request(c->buf, len, err, sizeof(err));
	if (!req) {
		log_debug("control_bad_request", "err=\"%s\"", err);
		client_reply(c, error_reply("bad request: %s", err));
		return;
	}
	char cmd[SHOAL_CONTROL_CMD_BYTES_MAX + 1];
	snprintf(cmd, sizeof(cmd), "%s", json_string_value(json_object_get(req, "cmd")));
	struct control_server *srv = c->srv;
	json_t *reply = srv->fn(srv->arg, req);
	json_decref(req);
	if (!reply) {
		reply = error_reply("command '%s' failed", cmd);
	} else if (!json_is_object(reply)) {
		json_decref(reply);
		reply = error_reply("command '%s': internal error (reply not an object)", cmd);
	}
	client_reply(c, reply);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct client *c = h->data;
	/* Never zero: on_read replies once the buffer is full. */
	assert(c->len < sizeof(c->buf));
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	(void)buf;
	if (c->closing || c->answered || nread == 0)
		return;
	if (nread < 0) {
		/* A client that half-closes after its request without the
		 * '\n' still gets an answer. */
		if (nread == UV_EOF && c->len > 0)
			client_handle_request(c, c->len);
		else
			client_close(c);
		return;
	}
	size_t old = c->len;
	c->len += (size_t)nread;
	assert(c->len <= sizeof(c->buf));
	char *nl = memchr(c->buf + old, '\n', (size_t)nread);
	if (nl) {
		client_handle_request(c, (size_t)(nl - c->buf));
		return;
	}
	if (c->len == sizeof(c->buf))
		client_reply(c, error_reply("bad request: request over %u bytes",
					    (unsigned)SHOAL_CONTROL_REQ_BYTES_MAX));
}

static void on_client_timeout(uv_timer_t *t)
{
	struct client *c = t->data;
	log_debug("control_client_timeout", "after_ms=%u",
		  (unsigned)SHOAL_CONTROL_CLIENT_TIMEOUT_MS);
	client_close(c);
}

static void on_reject_closed(uv_handle_t *h)
{
	free(h);
}

/* Accepts and immediately closes: libuv stops accepting altogether until
 * a pending connection is taken, so a refused client must still be
 * accepted. */
static void reject_connection(struct control_server *srv, const char *why)
{
	uv_pipe_t *p = malloc(sizeof(*p));
	if (!p) {
		log_warn("control_reject_failed", "reason=out_of_memory");
		return;
	}
	uv_pipe_init(srv->loop, p, 0);
	if (uv_accept((uv_stream_t *)&srv->listen, (uv_stream_t *)p) != 0)
		log_debug("control_accept_failed", "reason=%s", why);
	uv_close((uv_handle_t *)p, on_reject_closed);
	log_warn("control_client_rejected", "reason=%s", why);
}

static bool peer_allowed(uv_pipe_t *p)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)p, &fd) != 0)
		return false;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct control_server *srv = ls->data;
	if (status < 0) {
		log_warn("control_accept_failed", "err=%s", uv_strerror(status));
		return;
	}
	if (srv->stopping)
		return;
	if (srv->clients_open >= SHOAL_CONTROL_CLIENTS_MAX) {
		reject_connection(srv, "too_many_clients");
		return;
	}
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		reject_connection(srv, "out_of_memory");
		return;
	}
	c->srv = srv;
	uv_pipe_init(srv->loop, &c->pipe, 0);
	uv_timer_init(srv->loop, &c->timer);
	c->pipe.data = c;
	c->timer.data = c;
	c->handles_open = 2;
	srv->clients_count++;
	srv->clients_open++;
	c->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = c;
	srv->clients = c;
	if (uv_accept(ls, (uv_stream_t *)&c->pipe) != 0) {
		client_close(c);
		return;
	}
	if (!peer_allowed(&c->pipe)) {
		log_warn("control_client_rejected", "reason=peer_uid");
		client_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_client_timeout, SHOAL_CONTROL_CLIENT_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0)
		client_close(c);
}

int control_socket_path(const char *data_dir, char *out, size_t out_size)
{
	assert(data_dir && out);
	int n = snprintf(out, out_size, "%s/%s", data_dir, CONTROL_SOCK_FILE);
	if (n < 0 || (size_t)n >= out_size || (size_t)n >= SUN_PATH_BYTES)
		return SHOAL_EINVAL;
	return 0;
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(sa->sun_path))
		return SHOAL_EINVAL;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

/* Decides whether an existing socket file is stale: true when nothing
 * accepts on it. A non-blocking connect never waits on a full backlog
 * (EAGAIN means someone is listening). */
static bool socket_is_stale(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	close(fd);
	return rc != 0 && (e == ECONNREFUSED || e == ENOENT);
}

static int take_lock(const char *path, int *lock_fd, char *err, size_t errlen)
{
	char lock_path[SUN_PATH_BYTES + sizeof(LOCK_SUFFIX)];
	snprintf(lock_path, sizeof(lock_path), "%s%s", path, LOCK_SUFFIX);
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		errf(err, errlen, "open(%s): %s", lock_path, strerror(errno));
		return SHOAL_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK) {
			errf(err, errlen, "another agent is running on this data dir "
			     "(%s is locked)", lock_path);
			return SHOAL_EEXIST;
		}
		errf(err, errlen, "flock(%s): %s", lock_path, strerror(e));
		return SHOAL_EIO;
	}
	*lock_fd = fd;
	return 0;
}

/* Removes a stale socket file; refuses anything else at path. */
static int clear_path(const char *path, const struct sockaddr_un *sa, char *err,
		      size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		errf(err, errlen, "lstat(%s): %s", path, strerror(errno));
		return SHOAL_EIO;
	}
	if (!S_ISSOCK(st.st_mode)) {
		errf(err, errlen, "%s exists and is not a socket; refusing to remove it",
		     path);
		return SHOAL_EEXIST;
	}
	if (!socket_is_stale(sa)) {
		errf(err, errlen, "an agent is already listening on %s", path);
		return SHOAL_EEXIST;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		errf(err, errlen, "unlink(%s): %s", path, strerror(errno));
		return SHOAL_EIO;
	}
	log_info("control_stale_socket_removed", "path=%s", path);
	return 0;
}

static int listen_socket(const char *path, const struct sockaddr_un *sa, int *out,
			 char *err, size_t errlen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		errf(err, errlen, "socket(AF_UNIX): %s", strerror(errno));
		return SHOAL_EIO;
	}
	/* umask is process-wide, but the agent binds once at start, before
	 * it runs any other thread that creates files. */
	mode_t old = umask(077);
	int rc = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int e = errno;
	umask(old);
	if (rc != 0) {
		errf(err, errlen, "bind(%s): %s", path, strerror(e));
		close(fd);
		return SHOAL_EIO;
	}
	if (chmod(path, 0600) != 0 || listen(fd, SHOAL_CONTROL_CLIENTS_MAX) != 0) {
		errf(err, errlen, "chmod/listen(%s): %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return SHOAL_EIO;
	}
	*out = fd;
	return 0;
}

int control_start(uv_loop_t *loop, const char *path, control_handler_fn fn,
		  void *arg, struct control_server **out, char *err, size_t errlen)
{
	assert(loop && path && fn && out);
	assert(err && errlen > 0);
	*out = NULL;
	err[0] = '\0';
	struct sockaddr_un sa;
	if (make_addr(path, &sa) != 0) {
		errf(err, errlen, "control socket path '%s' is empty or longer "
		     "than %zu bytes; use a shorter --data", path, SUN_PATH_BYTES - 1);
		return SHOAL_EINVAL;
	}
	struct control_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		errf(err, errlen, "control_start: out of memory");
		return SHOAL_ENOMEM;
	}
	memcpy(srv->path, sa.sun_path, sizeof(srv->path));
	srv->loop = loop;
	srv->fn = fn;
	srv->arg = arg;
	srv->lock_fd = -1;
	int fd = -1;
	int rc = take_lock(path, &srv->lock_fd, err, errlen);
	if (rc == 0)
		rc = clear_path(path, &sa, err, errlen);
	if (rc == 0)
		rc = listen_socket(path, &sa, &fd, err, errlen);
	if (rc != 0) {
		if (srv->lock_fd >= 0)
			close(srv->lock_fd);
		free(srv);
		return rc;
	}
	/* uv_pipe_init cannot fail on Unix; uv_pipe_open only for a bad fd. */
	uv_pipe_init(loop, &srv->listen, 0);
	srv->listen.data = srv;
	rc = uv_pipe_open(&srv->listen, fd);
	if (rc != 0)
		close(fd); /* not adopted by libuv */
	else
		rc = uv_listen((uv_stream_t *)&srv->listen, SHOAL_CONTROL_CLIENTS_MAX,
			       on_connection);
	if (rc != 0) {
		errf(err, errlen, "listen(%s): %s", path, uv_strerror(rc));
		/* Closing is asynchronous; the handle is freed with srv when
		 * the caller's loop runs. */
		control_stop(srv);
		return SHOAL_EIO;
	}
	log_info("control_listening", "path=%s", path);
	*out = srv;
	return 0;
}

static void on_listen_closed(uv_handle_t *h)
{
	struct control_server *srv = h->data;
	srv->listen_closed = true;
	maybe_free_server(srv);
}

void control_stop(struct control_server *srv)
{
	if (!srv || srv->stopping)
		return;
	srv->stopping = true;
	/* Remove the name first so a CLI started now gets "no agent". */
	unlink(srv->path);
	if (srv->lock_fd >= 0) {
		close(srv->lock_fd);
		srv->lock_fd = -1;
	}
	while (srv->clients)
		client_close(srv->clients);
	assert(!srv->clients);
	uv_close((uv_handle_t *)&srv->listen, on_listen_closed);
}

/* --- client ---------------------------------------------------------------- */

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads up to the first '\n' (excluded) into a malloc'd buffer, within
 * the reply bound and the deadline. */
static int read_line(int fd, const char *path, uint64_t deadline_ms, char **out,
		     size_t *out_len, char *err, size_t errlen)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		errf(err, errlen, "out of memory");
		return SHOAL_ENOMEM;
	}
	int rc = 0;
	for (;;) {
		uint64_t now = mono_ms();
		if (now >= deadline_ms) {
			errf(err, errlen, "no reply from the agent at %s within %u ms",
			     path, (unsigned)SHOAL_CONTROL_REPLY_TIMEOUT_MS);
			rc = SHOAL_ETIMEDOUT;
			break;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)(deadline_ms - now));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			errf(err, errlen, "poll(%s): %s", path, strerror(errno));
			rc = SHOAL_EIO;
			break;
		}
		if (pr == 0)
			continue; /* the deadline check above reports it */
		if (len == cap) {
			if (cap >= SHOAL_CONTROL_RESP_BYTES_MAX) {
				errf(err, errlen, "reply from %s over %u bytes", path,
				     (unsigned)SHOAL_CONTROL_RESP_BYTES_MAX);
				rc = SHOAL_ETOOBIG;
				break;
			}
			size_t ncap = cap * 2 > SHOAL_CONTROL_RESP_BYTES_MAX
					      ? SHOAL_CONTROL_RESP_BYTES_MAX
					      : cap * 2;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				errf(err, errlen, "out of memory");
				rc = SHOAL_ENOMEM;
				break;
			}
			buf = nb;
			cap = ncap;
		}
		ssize_t r = recv(fd, buf + len, cap - len, 0);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0 && errno != ECONNRESET) {
			errf(err, errlen, "read(%s): %s", path, strerror(errno));
			rc = SHOAL_ECONN;
			break;
		}
		/* A reset here means the agent closed without reading our
		 * request: it refused us (too many clients) or is stopping. */
		if (r <= 0) {
			errf(err, errlen, "the agent at %s closed the connection "
			     "without a reply (busy? try again)", path);
			rc = SHOAL_ECONN;
			break;
		}
		char *nl = memchr(buf + len, '\n', (size_t)r);
		len += (size_t)r;
		if (nl) {
			*out = buf;
			*out_len = (size_t)(nl - buf);
			return 0;
		}
	}
	free(buf);
	return rc;
}

int control_request(const char *data_dir, const json_t *req, json_t **resp,
		    char *err, size_t errlen)
{
	assert(data_dir && req && resp);
	assert(err && errlen > 0);
	*resp = NULL;
	err[0] = '\0';
	char path[SUN_PATH_BYTES];
	struct sockaddr_un sa;
	if (control_socket_path(data_dir, path, sizeof(path)) != 0 ||
	    make_addr(path, &sa) != 0) {
		errf(err, errlen, "data dir '%s' is too long for a control socket "
		     "path (%zu bytes at most)", data_dir, SUN_PATH_BYTES - 1);
		return SHOAL_EINVAL;
	}
	char *text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		errf(err, errlen, "cannot encode the request");
		return SHOAL_EINVAL;
	}
	size_t tlen = strlen(text);
	if (tlen + 1 > SHOAL_CONTROL_REQ_BYTES_MAX) {
		free(text);
		errf(err, errlen, "request over %u bytes",
		     (unsigned)SHOAL_CONTROL_REQ_BYTES_MAX);
		return SHOAL_ETOOBIG;
	}
	text[tlen] = '\n'; /* replaces the NUL; sent as tlen + 1 bytes */

	int rc = 0;
	char *line = NULL;
	size_t line_len = 0;
	uint64_t deadline = mono_ms() + SHOAL_CONTROL_REPLY_TIMEOUT_MS;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errf(err, errlen, "socket(AF_UNIX): %s", strerror(errno));
		rc = SHOAL_EIO;
		goto out;
	}
	/* Bounds connect() on a full backlog and the send. */
	struct timeval tv = {SHOAL_CONTROL_REPLY_TIMEOUT_MS / 1000,
			     (SHOAL_CONTROL_REPLY_TIMEOUT_MS % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (e == EACCES || e == EPERM)
			errf(err, errlen, "cannot reach the agent at %s (connect: %s); "
			     "run as the user the agent runs as", path, strerror(e));
		else if (e == EAGAIN || e == EINPROGRESS)
			errf(err, errlen, "the agent at %s is not accepting connections "
			     "(connect: %s)", path, strerror(e));
		else
			errf(err, errlen, "no agent running at %s (connect: %s); "
			     "start it with: shoal agent --data %s", path, strerror(e),
			     data_dir);
		rc = SHOAL_ECONN;
		goto out;
	}
	if (send_all(fd, text, tlen + 1) != 0) {
		int e = errno;
		/* The agent may refuse us (too many clients) before we write. */
		if (e == EPIPE || e == ECONNRESET)
			errf(err, errlen, "the agent at %s closed the connection "
			     "without a reply (busy? try again)", path);
		else
			errf(err, errlen, "write(%s): %s", path, strerror(e));
		rc = SHOAL_ECONN;
		goto out;
	}
	rc = read_line(fd, path, deadline, &line, &line_len, err, errlen);
	if (rc)
		goto out;
	json_error_t jerr;
	json_t *j = json_loadb(line, line_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_object(j)) {
		errf(err, errlen, "bad reply from the agent at %s: %s", path,
		     j ? "not a JSON object" : jerr.text);
		json_decref(j);
		rc = SHOAL_EPROTO;
		goto out;
	}
	*resp = j;
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(text);
	return rc;
}
