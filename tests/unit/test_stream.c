/* test_stream.c — push-pull over real TLS on 127.0.0.1: two admitted nodes
 * exchange states; other fleets, expired certs, borrowed certs, unexpected
 * peers, oversized frames and silent peers are rejected and counted. */
#include "testutil.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "runtime/stream.h"
#include "shoal/bytes.h"
#include "trust/identity.h"

#define NOW 1000000u
#define LATER 9000000000u

struct fleet_fx {
	struct fleet_public pub;
	struct shoal_keypair adm[SHOAL_ADMISSION_KEYS_MAX];
	struct gossip_keyring ring;
};

static void fleet_make(struct fleet_fx *f)
{
	memset(f, 0, sizeof(*f));
	randombytes_buf(f->pub.fleet_id, sizeof(f->pub.fleet_id));
	f->pub.admission_count = 2;
	f->pub.threshold = 2;
	for (unsigned i = 0; i < 2; i++) {
		keys_generate(&f->adm[i]);
		memcpy(f->pub.admission_pks[i], f->adm[i].pk, 32);
	}
	f->ring.count = 1;
	randombytes_buf(f->ring.keys[0], 32);
}

static void node_make(struct node_identity *n, const struct fleet_fx *f,
		      const char *name, uint64_t expires_ms)
{
	memset(n, 0, sizeof(*n));
	keys_generate(&n->kp);
	struct admission_cert *c = &n->cert;
	memcpy(c->fleet_id, f->pub.fleet_id, sizeof(c->fleet_id));
	memcpy(c->node_id, n->kp.pk, 32);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->issued_ms = 1;
	c->expires_ms = expires_ms;
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(cert_sign(c, (uint8_t)i, f->adm[i].sk), 0);
	assert_int_equal(cert_encode(c, n->cert_bytes, sizeof(n->cert_bytes),
				     &n->cert_len), 0);
	n->fleet = f->pub;
	n->ring = f->ring;
}

/* The server runs in a thread: accept one connection, serve one push-pull. */
struct server {
	struct stream_ctx *ctx;
	int lfd;
	uint64_t now_ms;
	const uint8_t *state;
	size_t state_len;
	int rc;
	uint8_t *remote;
	size_t remote_len;
	struct stream_peer peer;
	pthread_t thread;
};

static int server_state(void *arg, uint8_t **state, size_t *len)
{
	struct server *s = arg;
	*state = malloc(s->state_len ? s->state_len : 1);
	if (*state == NULL)
		return SHOAL_ENOMEM;
	if (s->state_len > 0)
		memcpy(*state, s->state, s->state_len);
	*len = s->state_len;
	return 0;
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	if (fd < 0) {
		s->rc = SHOAL_EIO;
		return NULL;
	}
	s->rc = stream_pushpull_serve(s->ctx, fd, server_state, s, &s->remote,
				      &s->remote_len, &s->peer, s->now_ms);
	return NULL;
}

struct fx {
	struct fleet_fx fleet;
	struct node_identity a, b; /* a serves, b connects */
	struct stream_ctx *ca, *cb;
	struct shoal_addr addr;
	struct server srv;
};

static struct stream_ctx *ctx_for(const struct node_identity *n)
{
	char err[256];
	struct stream_ctx *c = stream_ctx_new(n, err, sizeof(err));
	if (c == NULL)
		fail_msg("stream_ctx_new: %s", err);
	return c;
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	fleet_make(&x->fleet);
	node_make(&x->a, &x->fleet, "server-a", LATER);
	node_make(&x->b, &x->fleet, "client-b", LATER);
	x->ca = ctx_for(&x->a);
	x->cb = ctx_for(&x->b);
	struct shoal_addr bind_addr = {.family = SHOAL_AF_INET, .ip = {127, 0, 0, 1}};
	assert_int_equal(stream_listen(&bind_addr, &x->srv.lfd), 0);
	assert_int_equal(stream_bound_addr(x->srv.lfd, &x->addr), 0);
	assert_true(x->addr.port != 0);
	x->srv.ctx = x->ca;
	x->srv.now_ms = NOW;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	close(x->srv.lfd);
	free(x->srv.remote);
	stream_ctx_free(x->ca);
	stream_ctx_free(x->cb);
	free(x);
	return 0;
}

static void server_start(struct fx *x, const void *state, size_t len)
{
	x->srv.state = state;
	x->srv.state_len = len;
	x->srv.rc = 1;
	assert_int_equal(pthread_create(&x->srv.thread, NULL, server_main, &x->srv), 0);
}

static int server_join(struct fx *x)
{
	assert_int_equal(pthread_join(x->srv.thread, NULL), 0);
	return x->srv.rc;
}

static uint64_t stat_of(struct stream_ctx *c, enum stream_reason r)
{
	struct stream_stats s;
	stream_stats_get(c, &s);
	return s.v[r];
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
	uint8_t *p = malloc(len);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed);
	return p;
}

static void exchange(void **state)
{
	struct fx *x = *state;
	/* Both states span several frames. */
	size_t a_len = 3 * STREAM_FRAME_PAYLOAD_BYTES_MAX + 17;
	size_t b_len = 2 * STREAM_FRAME_PAYLOAD_BYTES_MAX;
	uint8_t *a_state = pattern(a_len, 1), *b_state = pattern(b_len, 2);
	server_start(x, a_state, a_len);
	uint8_t *got = NULL;
	size_t got_len = 0;
	struct stream_peer peer;
	int rc = stream_pushpull_client(x->cb, &x->addr, x->a.kp.pk, b_state, b_len,
					&got, &got_len, &peer, NOW);
	assert_int_equal(server_join(x), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(got_len, a_len);
	assert_memory_equal(got, a_state, a_len);
	assert_int_equal(x->srv.remote_len, b_len);
	assert_memory_equal(x->srv.remote, b_state, b_len);
	assert_string_equal(peer.cert.name, "server-a");
	assert_memory_equal(peer.cert.node_id, x->a.kp.pk, 32);
	assert_string_equal(x->srv.peer.cert.name, "client-b");
	assert_memory_equal(x->srv.peer.cert.node_id, x->b.kp.pk, 32);
	assert_int_equal(stat_of(x->ca, STREAM_R_SERVED), 1);
	assert_int_equal(stat_of(x->cb, STREAM_R_CONNECTED), 1);

	/* Empty states are states too. */
	free(got);
	free(x->srv.remote);
	x->srv.remote = NULL;
	server_start(x, NULL, 0);
	rc = stream_pushpull_client(x->cb, &x->addr, NULL, NULL, 0, &got, &got_len,
				    &peer, NOW);
	assert_int_equal(server_join(x), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(got_len, 0);
	assert_non_null(got);
	assert_int_equal(x->srv.remote_len, 0);
	free(got);
	free(a_state);
	free(b_state);

	struct stream_stats st;
	stream_stats_get(x->ca, &st);
	char line[512];
	assert_true(stream_stats_format(&st, line, sizeof(line)) < sizeof(line));
	assert_non_null(strstr(line, "served=2 "));
	json_t *j = stream_stats_json(&st);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "served")), 2);
	json_decref(j);
}

/* A push-pull of small states (a join's) takes milliseconds, not the 40 ms
 * of a delayed ACK: before the accepted socket set TCP_NODELAY, the server's
 * close_notify waited behind its state frame for the client's ACK, on every
 * exchange. The fastest of several runs is compared, so load cannot fail it. */
static void small_exchange_is_not_delayed(void **state)
{
	struct fx *x = *state;
	uint8_t *a_state = pattern(300, 1), *b_state = pattern(200, 2);
	uint64_t best_us = UINT64_MAX;
	for (int i = 0; i < 5; i++) {
		server_start(x, a_state, 300);
		uint8_t *got = NULL;
		size_t got_len = 0;
		struct stream_peer peer;
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		int rc = stream_pushpull_client(x->cb, &x->addr, x->a.kp.pk, b_state, 200,
						&got, &got_len, &peer, NOW);
		assert_int_equal(server_join(x), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		assert_int_equal(rc, 0);
		assert_int_equal(got_len, 300);
		free(got);
		free(x->srv.remote);
		x->srv.remote = NULL;
		uint64_t us = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000u +
			      (uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000u;
		if (us < best_us)
			best_us = us;
	}
	free(a_state);
	free(b_state);
	if (best_us >= 30000)
		fail_msg("fastest push-pull took %llu us (delayed ACK?)", (unsigned long long)best_us);
}

/* Runs one push-pull from a client with identity n against the server and
 * returns the server's result; *client_rc gets the client's. */
static int pushpull_from(struct fx *x, const struct node_identity *n,
			 const uint8_t *expected, uint64_t server_now, int *client_rc)
{
	struct stream_ctx *c = ctx_for(n);
	x->srv.now_ms = server_now;
	server_start(x, (const uint8_t *)"s", 1);
	uint8_t *got = NULL;
	size_t got_len;
	struct stream_peer peer;
	*client_rc = stream_pushpull_client(c, &x->addr, expected, (const uint8_t *)"c",
					    1, &got, &got_len, &peer, NOW);
	int rc = server_join(x);
	if (*client_rc == 0)
		assert_memory_equal(got, "s", 1);
	else
		assert_null(got);
	free(got);
	free(x->srv.remote);
	x->srv.remote = NULL;
	stream_ctx_free(c);
	return rc;
}

static void other_fleet_rejected(void **state)
{
	struct fx *x = *state;
	struct fleet_fx other;
	fleet_make(&other);
	struct node_identity *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	node_make(m, &other, "stranger", LATER);
	int crc;
	assert_int_equal(pushpull_from(x, m, NULL, NOW, &crc), SHOAL_EFLEET);
	assert_int_equal(crc, SHOAL_ECONN); /* the server said why and closed */
	assert_int_equal(stat_of(x->ca, STREAM_R_FLEET), 1);
	assert_int_equal(stat_of(x->ca, STREAM_R_SERVED), 0);
	assert_null(x->srv.remote);
	free(m);
}

static void expired_rejected(void **state)
{
	struct fx *x = *state;
	struct node_identity *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	node_make(m, &x->fleet, "shortlived", NOW + 10);
	int crc;
	assert_int_equal(pushpull_from(x, m, NULL, NOW + 10, &crc), SHOAL_EEXPIRED);
	assert_int_equal(crc, SHOAL_ECONN);
	assert_int_equal(stat_of(x->ca, STREAM_R_EXPIRED), 1);
	/* The same node a moment earlier is fine. */
	assert_int_equal(pushpull_from(x, m, NULL, NOW + 9, &crc), 0);
	assert_int_equal(crc, 0);
	free(m);
}

/* A node that presents b's (valid) admission certificate over its own TLS
 * key is not b. */
static void borrowed_cert_rejected(void **state)
{
	struct fx *x = *state;
	struct node_identity *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	*m = x->b;
	keys_generate(&m->kp);
	int crc;
	assert_int_equal(pushpull_from(x, m, NULL, NOW, &crc), SHOAL_EUNADMITTED);
	assert_int_equal(crc, SHOAL_ECONN);
	assert_int_equal(stat_of(x->ca, STREAM_R_KEY_MISMATCH), 1);
	free(m);
}

static void unexpected_peer_rejected(void **state)
{
	struct fx *x = *state;
	/* b expects to reach b itself, but a answers. */
	int crc;
	assert_int_equal(pushpull_from(x, &x->b, x->b.kp.pk, NOW, &crc), SHOAL_ECONN);
	assert_int_equal(crc, SHOAL_ENOTFOUND);
	assert_int_equal(stat_of(x->ca, STREAM_R_REMOTE_ERROR), 1);
}

static void oversized_frame_rejected(void **state)
{
	struct fx *x = *state;
	server_start(x, (const uint8_t *)"s", 1);
	struct stream_conn *c;
	struct stream_peer peer;
	assert_int_equal(stream_connect(x->cb, &x->addr, NULL, NOW, &c, &peer), 0);
	uint8_t hdr[STREAM_FRAME_HEADER_BYTES];
	struct wr w = wr_init(hdr, sizeof(hdr));
	wr_u8(&w, STREAM_FRAME_STATE_CHUNK);
	wr_u32(&w, SHOAL_TCP_FRAME_BYTES_MAX); /* header + this > the bound */
	assert_true(wr_ok(&w));
	assert_int_equal(stream_conn_write_raw(c, hdr, sizeof(hdr)), 0);
	assert_int_equal(server_join(x), SHOAL_ETOOBIG);
	assert_int_equal(stat_of(x->ca, STREAM_R_TOO_BIG), 1);
	/* Writing on to the closed peer fails instead of killing us with
	 * SIGPIPE (this test does not ignore it). */
	uint8_t *lots = calloc(1, 4u << 20);
	assert_non_null(lots);
	assert_int_equal(stream_send_state(c, lots, 4u << 20), SHOAL_ECONN);
	assert_int_equal(stat_of(x->cb, STREAM_R_IO), 1);
	free(lots);
	stream_close(c);
	/* And the sender side refuses to build one. */
	uint8_t *big = calloc(1, STREAM_FRAME_PAYLOAD_BYTES_MAX + 1);
	assert_non_null(big);
	uint8_t out[16];
	size_t n;
	assert_int_equal(stream_frame_encode(STREAM_FRAME_STATE_CHUNK, big,
					     STREAM_FRAME_PAYLOAD_BYTES_MAX + 1, out,
					     sizeof(out), &n), SHOAL_ETOOBIG);
	free(big);
}

static uint64_t now_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void silent_peer_times_out(void **state)
{
	struct fx *x = *state;
	stream_ctx_set_timeout_ms(x->ca, 300);
	server_start(x, (const uint8_t *)"s", 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(x->addr.port)};
	memcpy(&sa.sin_addr, x->addr.ip, 4);
	uint64_t t0 = now_mono_ms();
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(server_join(x), SHOAL_ETIMEDOUT);
	uint64_t took = now_mono_ms() - t0;
	assert_true(took >= 250);
	assert_true(took < 2000);
	assert_int_equal(stat_of(x->ca, STREAM_R_TIMEOUT), 1);
	close(fd);

	/* A server that accepts and says nothing times the client out too. */
	stream_ctx_set_timeout_ms(x->cb, 300);
	uint8_t *got = NULL;
	size_t got_len;
	struct stream_peer peer;
	t0 = now_mono_ms();
	assert_int_equal(stream_pushpull_client(x->cb, &x->addr, NULL, NULL, 0, &got,
						&got_len, &peer, NOW),
			 SHOAL_ETIMEDOUT);
	took = now_mono_ms() - t0;
	assert_true(took < 2000);
	assert_int_equal(stat_of(x->cb, STREAM_R_TIMEOUT), 1);
}

static void not_tls_rejected(void **state)
{
	struct fx *x = *state;
	server_start(x, (const uint8_t *)"s", 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(x->addr.port)};
	memcpy(&sa.sin_addr, x->addr.ip, 4);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
	assert_int_equal(write(fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	assert_int_equal(server_join(x), SHOAL_EPROTO);
	assert_int_equal(stat_of(x->ca, STREAM_R_HANDSHAKE), 1);
	close(fd);
}

static void frame_codec(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t n, used;
	struct stream_frame f;
	assert_int_equal(stream_frame_encode(STREAM_FRAME_ERROR, (const uint8_t *)"no", 2,
					     buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(stream_frame_decode(buf, n, &f, &used), 0);
	assert_int_equal(used, 7);
	assert_int_equal(f.type, STREAM_FRAME_ERROR);
	assert_memory_equal(f.payload, "no", 2);
	/* Short input says how much the frame needs. */
	assert_int_equal(stream_frame_decode(buf, 3, &f, &used), SHOAL_ETRUNC);
	assert_int_equal(used, STREAM_FRAME_HEADER_BYTES);
	assert_int_equal(stream_frame_decode(buf, 6, &f, &used), SHOAL_ETRUNC);
	assert_int_equal(used, 7);
	/* Bad headers are refused before any payload. */
	const uint8_t unknown[] = {9, 0, 0, 0, 0};
	assert_int_equal(stream_frame_decode(unknown, 5, &f, &used), SHOAL_EPROTO);
	const uint8_t end_with_body[] = {STREAM_FRAME_STATE_END, 0, 0, 0, 1};
	assert_int_equal(stream_frame_decode(end_with_body, 5, &f, &used), SHOAL_EPROTO);
	const uint8_t empty_chunk[] = {STREAM_FRAME_STATE_CHUNK, 0, 0, 0, 0};
	assert_int_equal(stream_frame_decode(empty_chunk, 5, &f, &used), SHOAL_EPROTO);
	const uint8_t big_cert[] = {STREAM_FRAME_CERT, 0, 0, 0x01, 0x91}; /* 401 */
	assert_int_equal(stream_frame_decode(big_cert, 5, &f, &used), SHOAL_ETOOBIG);
	const uint8_t huge[] = {STREAM_FRAME_ERROR, 0xff, 0xff, 0xff, 0xff};
	assert_int_equal(stream_frame_decode(huge, 5, &f, &used), SHOAL_ETOOBIG);
}

static void reassembly_bounds(void **state)
{
	(void)state;
	struct stream_reasm r;
	stream_reasm_init(&r);
	static uint8_t chunk[STREAM_FRAME_PAYLOAD_BYTES_MAX];
	struct stream_frame f = {STREAM_FRAME_STATE_CHUNK, chunk, sizeof(chunk)};
	size_t fed = 0;
	int rc;
	while ((rc = stream_reasm_feed(&r, &f)) == 0)
		fed += f.len;
	assert_int_equal(rc, SHOAL_ETOOBIG);
	assert_true(fed <= SHOAL_PUSHPULL_BYTES_MAX);
	assert_true(fed + f.len > SHOAL_PUSHPULL_BYTES_MAX);
	assert_int_equal(r.len, fed); /* unchanged by the refused chunk */
	struct stream_frame cert = {STREAM_FRAME_CERT, chunk, 1};
	assert_int_equal(stream_reasm_feed(&r, &cert), SHOAL_EPROTO);
	struct stream_frame end = {STREAM_FRAME_STATE_END, NULL, 0};
	assert_int_equal(stream_reasm_feed(&r, &end), 1);
	assert_int_equal(stream_reasm_feed(&r, &f), SHOAL_EPROTO);
	uint8_t *st;
	size_t len;
	stream_reasm_take(&r, &st, &len);
	assert_int_equal(len, fed);
	free(st);
	stream_reasm_free(&r);
}

int main(void)
{
	assert_true(sodium_init() >= 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(exchange, setup, teardown),
		cmocka_unit_test_setup_teardown(small_exchange_is_not_delayed, setup, teardown),
		cmocka_unit_test_setup_teardown(other_fleet_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(expired_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(borrowed_cert_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(unexpected_peer_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(oversized_frame_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(silent_peer_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(not_tls_rejected, setup, teardown),
		cmocka_unit_test(frame_codec),
		cmocka_unit_test(reassembly_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
