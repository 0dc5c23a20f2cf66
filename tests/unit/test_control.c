/* test_control.c — the control socket on a real libuv loop and real Unix
 * sockets: the blocking client gets the handler's reply, bad input gets an
 * error reply without stopping the server, the socket is 0600, stale
 * sockets are replaced but live ones are not, idle clients are dropped
 * and the client count is bounded.
 *
 * The loop runs on the test's main thread; clients run in a pthread and
 * only record what they saw (cmocka asserts are not thread-safe), and the
 * main thread checks it after the loop has stopped. */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "runtime/control.h"
#include "shoal/error.h"
#include "shoal/limits.h"
#include "shoal/log.h"

#define RAW_MAX 8192
#define STEPS_MAX 16

struct fx {
	char *dir;
	char path[256];
	uv_loop_t loop;
	uv_async_t done;
	struct control_server *srv;
	int handled;
	bool agent_like;
	void (*client)(struct fx *);
	/* what the client saw, per step */
	int rc[STEPS_MAX];
	json_t *resp[STEPS_MAX];
	char err[STEPS_MAX][512];
	char raw[STEPS_MAX][RAW_MAX];
	long ms[STEPS_MAX];
};

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Replies shaped like the agent's, for the CLI test. */
static json_t *agent_like(const char *cmd)
{
	if (strcmp(cmd, "status") == 0)
		return json_pack("{s:s,s:s,s:s,s:i,s:i,s:{s:i,s:i,s:i,s:i},s:i,"
				 "s:{s:i,s:i},s:{s:i}}",
				 "name", "n1", "id", "ab12", "addr", "127.0.0.1:7946",
				 "incarnation", 3, "health", 0,
				 "members", "alive", 2, "suspect", 1, "dead", 0, "left", 0,
				 "uptime_s", 42,
				 "counters", "packets_sent", 10, "probes_sent", 4,
				 "drops", "bad_mac", 7);
	if (strcmp(cmd, "members") == 0)
		return json_pack(
			"{s:[{s:s,s:s,s:s,s:s,s:i,s:[s,s],s:i,s:s},"
			"{s:s,s:s,s:s,s:s,s:i,s:[],s:i,s:s},"
			"{s:s,s:s,s:s,s:s,s:i,s:[s],s:i,s:s}]}",
			"members",
			"name", "zeta", "id", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100",
			"addr", "10.0.0.3:7946", "state", "suspect", "incarnation", 7,
			"tags", "web", "eu", "last_change_ms", 1, "last_change", "2026-01-01T00:00:00Z",
			"name", "alpha", "id", "0011223344556677889900112233445566778899001122334455667788990011",
			"addr", "10.0.0.1:7946", "state", "alive", "incarnation", 1,
			"tags", "last_change_ms", 2, "last_change", "2026-01-01T00:00:01Z",
			"name", "m\x1b[2Jid", "id", "aa", "addr", "[fd00::1]:7946", "state", "dead",
			"incarnation", 12, "tags", "db", "last_change_ms", 3,
			"last_change", "2026-01-01T00:00:02Z");
	return NULL;
}

static json_t *handler(void *arg, const json_t *req)
{
	struct fx *f = arg;
	f->handled++;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (f->agent_like)
		return agent_like(cmd);
	if (strcmp(cmd, "status") == 0)
		return json_pack("{s:s,s:i}", "name", "n1", "handled", f->handled);
	if (strcmp(cmd, "list") == 0)
		return json_pack("[i]", 1); /* not an object: server must refuse */
	return NULL;
}

static void on_done(uv_async_t *a)
{
	struct fx *f = a->data;
	control_stop(f->srv);
	f->srv = NULL;
	uv_close((uv_handle_t *)a, NULL);
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->dir = tu_tmpdir();
	assert_int_equal(control_socket_path(f->dir, f->path, sizeof(f->path)), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	return f;
}

static void fx_start(struct fx *f)
{
	char err[512];
	int rc = control_start(&f->loop, f->path, handler, f, &f->srv, err, sizeof(err));
	if (rc)
		fail_msg("control_start: %s", err);
}

static void *client_main(void *arg)
{
	struct fx *f = arg;
	f->client(f);
	uv_async_send(&f->done);
	return NULL;
}

/* Serves until the client function returns, then stops the server and
 * checks every handle was closed. */
static void fx_run(struct fx *f, void (*client)(struct fx *))
{
	f->client = client;
	assert_int_equal(uv_async_init(&f->loop, &f->done, on_done), 0);
	f->done.data = f;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, client_main, f), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	pthread_join(th, NULL);
}

static void fx_free(struct fx *f)
{
	if (f->srv) {
		control_stop(f->srv);
		uv_run(&f->loop, UV_RUN_DEFAULT);
	}
	assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing leaked on the loop */
	for (int i = 0; i < STEPS_MAX; i++)
		json_decref(f->resp[i]);
	tu_rmtree(f->dir);
	free(f->dir);
	free(f);
}

static int raw_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF (or 10 s); returns bytes read, -1 on error. */
static int raw_read_all(int fd, char *out, size_t cap)
{
	size_t len = 0;
	while (len + 1 < cap) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			return -1;
		ssize_t r = read(fd, out + len, cap - 1 - len);
		/* The server closing with our excess bytes unread resets the
		 * connection after its reply. */
		if (r < 0 && errno == ECONNRESET && len > 0)
			break;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	out[len] = '\0';
	return (int)len;
}

/* One raw exchange: send bytes (optionally half-closing), read to EOF. */
static void raw_exchange(struct fx *f, int step, const char *data, size_t len,
			 bool shut)
{
	int fd = raw_connect(f->path);
	if (fd < 0) {
		f->rc[step] = -1;
		return;
	}
	send(fd, data, len, MSG_NOSIGNAL); /* may fail once the server replied */
	if (shut)
		shutdown(fd, SHUT_WR);
	f->rc[step] = raw_read_all(fd, f->raw[step], RAW_MAX);
	close(fd);
}

static void request(struct fx *f, int step, const char *cmd)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd);
	f->rc[step] = control_request(f->dir, req, &f->resp[step], f->err[step],
				      sizeof(f->err[step]));
	json_decref(req);
}

/* --- tests ------------------------------------------------------------------ */

static void client_status_twice(struct fx *f)
{
	request(f, 0, "status");
	request(f, 1, "status");
}

static void status_round_trip(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	fx_start(f);
	fx_run(f, client_status_twice);
	for (int i = 0; i < 2; i++) {
		if (f->rc[i])
			fail_msg("request %d: %s", i, f->err[i]);
		assert_string_equal(json_string_value(json_object_get(f->resp[i], "name")), "n1");
		assert_int_equal(json_integer_value(json_object_get(f->resp[i], "handled")), i + 1);
	}
	assert_int_equal(f->handled, 2);
	/* control_stop removed the socket file. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), -1);
	fx_free(f);
}

static void client_bad_inputs(struct fx *f)
{
	static const char *bad[] = {
		"{not json\n", "[1]\n", "{\"cmd\":1}\n", "{\"cmd\":\"Bad Cmd\"}\n",
		"{\"cmd\":\"status\",\"cmd\":\"status\"}\n", "\n",
	};
	for (int i = 0; i < 6; i++)
		raw_exchange(f, i, bad[i], strlen(bad[i]), false);
	/* No '\n' but a half-close: still answered. */
	raw_exchange(f, 6, "{\"cmd\":\"status\"}", 16, true);
	request(f, 7, "nope");
	request(f, 8, "list");
	request(f, 9, "status");
}

static void malformed_gets_error_and_server_keeps_serving(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	fx_start(f);
	fx_run(f, client_bad_inputs);
	for (int i = 0; i < 6; i++) {
		assert_true(f->rc[i] > 0);
		assert_non_null(strstr(f->raw[i], "{\"error\":\"bad request: "));
		assert_int_equal(f->raw[i][f->rc[i] - 1], '\n');
	}
	assert_non_null(strstr(f->raw[1], "JSON object"));
	assert_non_null(strstr(f->raw[2], "\\\"cmd\\\" string"));
	assert_non_null(strstr(f->raw[4], "duplicate"));
	assert_non_null(strstr(f->raw[6], "\"name\":\"n1\""));
	assert_int_equal(f->rc[7], 0);
	assert_string_equal(json_string_value(json_object_get(f->resp[7], "error")),
			    "command 'nope' failed");
	assert_int_equal(f->rc[8], 0);
	assert_non_null(strstr(json_string_value(json_object_get(f->resp[8], "error")),
			       "not an object"));
	if (f->rc[9])
		fail_msg("final status: %s", f->err[9]);
	assert_string_equal(json_string_value(json_object_get(f->resp[9], "name")), "n1");
	/* Only the valid requests reached the handler. */
	assert_int_equal(f->handled, 4);
	fx_free(f);
}

static void client_too_large(struct fx *f)
{
	static char big[SHOAL_CONTROL_REQ_BYTES_MAX + 1000];
	memset(big, ' ', sizeof(big));
	raw_exchange(f, 0, big, sizeof(big), false);
	request(f, 1, "status");
}

static void oversized_request_is_refused(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	fx_start(f);
	fx_run(f, client_too_large);
	assert_true(f->rc[0] > 0);
	assert_non_null(strstr(f->raw[0], "request over 4096 bytes"));
	assert_int_equal(f->rc[1], 0);
	assert_int_equal(f->handled, 1);
	fx_free(f);
}

static void socket_is_0600(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	fx_start(f);
	struct stat st;
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	fx_free(f);
}

static void no_agent_message(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	json_t *req = json_pack("{s:s}", "cmd", "status");
	json_t *resp = NULL;
	char err[512], want[512];
	assert_int_equal(control_request(dir, req, &resp, err, sizeof(err)), SHOAL_ECONN);
	assert_null(resp);
	snprintf(want, sizeof(want),
		 "no agent running at %s/control.sock (connect: No such file or "
		 "directory); start it with: shoal agent --data %s", dir, dir);
	assert_string_equal(err, want);
	json_decref(req);
	tu_rmtree(dir);
	free(dir);
}

static int bind_unix(const char *path, bool do_listen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (do_listen)
		assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static void client_status_once(struct fx *f)
{
	request(f, 0, "status");
}

static void stale_socket_is_replaced(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	/* A socket file nobody listens on, as a crashed agent leaves it. */
	close(bind_unix(f->path, false));
	fx_start(f);
	fx_run(f, client_status_once);
	if (f->rc[0])
		fail_msg("%s", f->err[0]);
	fx_free(f);
}

static void live_socket_and_other_files_are_kept(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	struct control_server *srv = NULL;
	char err[512];

	/* Someone is listening (without our lock): refuse, leave it alone. */
	int lfd = bind_unix(f->path, true);
	assert_int_equal(control_start(&f->loop, f->path, handler, f, &srv, err,
				       sizeof(err)), SHOAL_EEXIST);
	assert_null(srv);
	assert_non_null(strstr(err, "already listening"));
	struct stat st;
	assert_int_equal(lstat(f->path, &st), 0);
	close(lfd);
	unlink(f->path);

	/* A regular file at the path is never removed. */
	tu_write_file(f->path, "keep", 4, 0600);
	assert_int_equal(control_start(&f->loop, f->path, handler, f, &srv, err,
				       sizeof(err)), SHOAL_EEXIST);
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(f->path);

	/* A second server on a served path is refused by the lock. */
	fx_start(f);
	assert_int_equal(control_start(&f->loop, f->path, handler, f, &srv, err,
				       sizeof(err)), SHOAL_EEXIST);
	assert_non_null(strstr(err, "another agent is running"));
	fx_run(f, client_status_once); /* the first one still serves */
	if (f->rc[0])
		fail_msg("%s", f->err[0]);
	fx_free(f);
}

static void client_idle_flood(struct fx *f)
{
	int fds[SHOAL_CONTROL_CLIENTS_MAX];
	long t0 = now_ms();
	for (int i = 0; i < SHOAL_CONTROL_CLIENTS_MAX; i++)
		fds[i] = raw_connect(f->path);
	usleep(300 * 1000); /* let the loop accept them all */
	/* Every slot is held by a silent client: the next one is refused. */
	request(f, 0, "status");
	/* The silent clients are dropped after the timeout. */
	int eof = 0;
	for (int i = 0; i < SHOAL_CONTROL_CLIENTS_MAX; i++) {
		char buf[64];
		if (fds[i] >= 0 && raw_read_all(fds[i], buf, sizeof(buf)) == 0)
			eof++;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	f->ms[1] = now_ms() - t0;
	f->rc[1] = eof;
	request(f, 2, "status");
}

static void idle_clients_time_out_and_count_is_bounded(void **state)
{
	(void)state;
	struct fx *f = fx_new();
	fx_start(f);
	fx_run(f, client_idle_flood);
	assert_int_equal(f->rc[0], SHOAL_ECONN);
	assert_non_null(strstr(f->err[0], "without a reply"));
	assert_int_equal(f->rc[1], SHOAL_CONTROL_CLIENTS_MAX);
	assert_true(f->ms[1] >= SHOAL_CONTROL_CLIENT_TIMEOUT_MS - 100);
	assert_true(f->ms[1] < SHOAL_CONTROL_CLIENT_TIMEOUT_MS + 3000);
	if (f->rc[2])
		fail_msg("after timeouts: %s", f->err[2]);
	assert_int_equal(f->handled, 1);
	fx_free(f);
}

/* The race behind an intermittent failure of the test above under load:
 * the client saw every silent client's EOF and connected at once, and the
 * loop took that connection in the same iteration as the timeouts that had
 * closed them, while the closing clients still counted against the bound,
 * so the CLI call was refused. Here the loop is stepped by hand on this
 * thread so that the connection is always in that window: with libuv up
 * to 1.44 an iteration runs due timers first, then polls for I/O. */
static void closing_clients_do_not_hold_slots(void **state)
{
	(void)state;
	if (uv_version() >= ((1u << 16) | (45u << 8)))
		skip(); /* timers run after the poll there: another window */
	struct fx *f = fx_new();
	fx_start(f);
	int fds[SHOAL_CONTROL_CLIENTS_MAX];
	for (int i = 0; i < SHOAL_CONTROL_CLIENTS_MAX; i++) {
		fds[i] = raw_connect(f->path);
		assert_true(fds[i] >= 0);
	}
	/* The connections are queued: one poll accepts them all. */
	for (int i = 0; i < 5; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	/* Their timeouts fall due while the loop does not run; then a CLI
	 * client connects and sends its request. */
	usleep((SHOAL_CONTROL_CLIENT_TIMEOUT_MS + 300) * 1000);
	int cli = raw_connect(f->path);
	assert_true(cli >= 0);
	static const char req[] = "{\"cmd\":\"status\"}\n";
	assert_int_equal(send(cli, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
	/* One iteration: the timeouts close the eight, then the poll takes
	 * the new connection. */
	uv_run(&f->loop, UV_RUN_ONCE);
	char buf[RAW_MAX];
	size_t len = 0;
	bool eof = false;
	long t0 = now_ms();
	while (!eof && now_ms() - t0 < 3000) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		struct pollfd p = {.fd = cli, .events = POLLIN};
		if (poll(&p, 1, 10) <= 0)
			continue;
		ssize_t r = read(cli, buf + len, sizeof(buf) - 1 - len);
		if (r <= 0)
			eof = true;
		else
			len += (size_t)r;
	}
	buf[len] = '\0';
	assert_true(eof);
	json_error_t je;
	json_t *reply = json_loads(buf, 0, &je);
	if (!reply)
		fail_msg("no reply to the client that came as the others timed out: '%s'", buf);
	assert_string_equal(json_string_value(json_object_get(reply, "name")), "n1");
	json_decref(reply);
	assert_int_equal(f->handled, 1);
	for (int i = 0; i < SHOAL_CONTROL_CLIENTS_MAX; i++) {
		char b[8];
		assert_int_equal(raw_read_all(fds[i], b, sizeof(b)), 0); /* closed */
		close(fds[i]);
	}
	close(cli);
	fx_free(f);
}

/* Runs `$SHOAL_BIN ARGS` and captures stdout into f->raw[step]. */
static void run_cli(struct fx *f, int step, const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "%s %s --data %s 2>&1", getenv("SHOAL_BIN"), args,
		 f->dir);
	FILE *p = popen(cmd, "r");
	if (!p) {
		f->rc[step] = -1;
		return;
	}
	size_t n = fread(f->raw[step], 1, RAW_MAX - 1, p);
	f->raw[step][n] = '\0';
	f->rc[step] = pclose(p);
}

static void client_cli(struct fx *f)
{
	run_cli(f, 0, "status");
	run_cli(f, 1, "members");
	run_cli(f, 2, "members --json");
	f->agent_like = false; /* "members" now fails in the handler */
	run_cli(f, 3, "members");
}

static void cli_prints_agent_replies(void **state)
{
	(void)state;
	if (!getenv("SHOAL_BIN"))
		skip();
	struct fx *f = fx_new();
	f->agent_like = true;
	fx_start(f);
	fx_run(f, client_cli);
	assert_int_equal(f->rc[0], 0);
	/* Scalars first, aligned; groups indented under their key. */
	assert_non_null(strstr(f->raw[0], "name:        n1\n"));
	assert_non_null(strstr(f->raw[0], "incarnation: 3\n"));
	assert_non_null(strstr(f->raw[0], "members:\n  alive:   2\n  suspect: 1\n"));
	assert_non_null(strstr(f->raw[0], "drops:\n  bad_mac: 7\n"));
	assert_true(strstr(f->raw[0], "uptime_s") < strstr(f->raw[0], "members:"));

	assert_int_equal(f->rc[1], 0);
	const char *t = f->raw[1];
	assert_true(strncmp(t, "NAME ", 5) == 0);
	assert_non_null(strstr(t, "LAST-CHANGE\n"));
	/* Sorted by name; ids cut to 16 hex digits; tags joined; escape bytes
	 * from a hostile name do not reach the terminal. */
	const char *a = strstr(t, "\nalpha "), *m = strstr(t, "\nm?[2Jid "),
		   *z = strstr(t, "\nzeta ");
	assert_non_null(a);
	assert_non_null(m);
	assert_non_null(z);
	assert_true(a < m && m < z);
	assert_null(strchr(t, 0x1b));
	assert_non_null(strstr(t, "ffeeddccbbaa9988  10.0.0.3:7946"));
	assert_null(strstr(t, "ffeeddccbbaa99887"));
	assert_non_null(strstr(t, "web,eu"));
	assert_non_null(strstr(t, "2026-01-01T00:00:01Z\n"));

	assert_int_equal(f->rc[2], 0);
	json_error_t je;
	json_t *j = json_loads(f->raw[2], 0, &je);
	assert_non_null(j);
	assert_int_equal(json_array_size(json_object_get(j, "members")), 3);
	json_decref(j);

	assert_true(f->rc[3] != 0);
	assert_non_null(strstr(f->raw[3], "the agent replied: command 'members' failed"));
	fx_free(f);
}

static void parse_request_shape(void **state)
{
	(void)state;
	char err[256];
	const char *ok = "{\"cmd\":\"members\",\"x\":[1]}";
	json_t *j = control_parse_request(ok, strlen(ok), err, sizeof(err));
	assert_non_null(j);
	json_decref(j);
	assert_null(control_parse_request("", 0, err, sizeof(err)));
	assert_null(control_parse_request("{\"cmd\":\"\"}", 10, err, sizeof(err)));
	assert_null(control_parse_request("{\"cmd\":\"a\"} x", 13, err, sizeof(err)));
	char longcmd[64];
	snprintf(longcmd, sizeof(longcmd), "{\"cmd\":\"%040d\"}", 0);
	assert_null(control_parse_request(longcmd, strlen(longcmd), err, sizeof(err)));
	assert_non_null(strstr(err, "1 to 32"));
	/* An embedded NUL is not JSON. */
	assert_null(control_parse_request("{\"cmd\":\"a\"}\0", 12, err, sizeof(err)));
	assert_null(control_parse_request("{\"cmd\":\"a\\u0000\"}", 17, err, sizeof(err)));
}

int main(void)
{
	shoal_log_set_level(SHOAL_LOG_WARN);
	/* As the agent must: a client hanging up early is not fatal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_request_shape),
		cmocka_unit_test(status_round_trip),
		cmocka_unit_test(malformed_gets_error_and_server_keeps_serving),
		cmocka_unit_test(oversized_request_is_refused),
		cmocka_unit_test(socket_is_0600),
		cmocka_unit_test(no_agent_message),
		cmocka_unit_test(stale_socket_is_replaced),
		cmocka_unit_test(live_socket_and_other_files_are_kept),
		cmocka_unit_test(idle_clients_time_out_and_count_is_bounded),
		cmocka_unit_test(closing_clients_do_not_hold_slots),
		cmocka_unit_test(cli_prints_agent_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
