/*
 * stream.c — TLS 1.3 streams bound to node identities, framing, push-pull;
 * see stream.h for the protocol.
 *
 * Layers, bottom up: deadline-bounded SSL reads and writes (io_*), the
 * pure frame codec and state reassembly, the certificate exchange that
 * binds the TLS key to an admission certificate (stream_connect /
 * stream_accept), and the push-pull exchange on top. Each failure is
 * counted once, where it is detected.
 */
#include "runtime/stream.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "shoal/bytes.h"
#include "shoal/log.h"

_Static_assert(SHOAL_TCP_FRAME_BYTES_MAX <= UINT32_MAX, "len is a u32");
_Static_assert(SHOAL_CERT_BYTES_MAX <= STREAM_FRAME_PAYLOAD_BYTES_MAX,
	       "a certificate fits one frame");
_Static_assert(SHOAL_PUSHPULL_BYTES_MAX >= STREAM_FRAME_PAYLOAD_BYTES_MAX,
	       "a state may span frames");

struct stream_ctx {
	SSL_CTX *ssl;
	const struct node_identity *self;
	uint32_t timeout_ms;
	_Atomic uint64_t counts[STREAM_R_COUNT_];
};

struct stream_conn {
	struct stream_ctx *ctx;
	SSL *ssl;
	int fd;
	uint64_t deadline_ms; /* CLOCK_MONOTONIC */
	uint8_t rbuf[SHOAL_TCP_FRAME_BYTES_MAX];
	uint8_t wbuf[SHOAL_TCP_FRAME_BYTES_MAX];
};

static const char *const reason_names[STREAM_R_COUNT_] = {
	[STREAM_R_SERVED] = "served",
	[STREAM_R_CONNECTED] = "connected",
	[STREAM_R_CONNECT] = "connect",
	[STREAM_R_HANDSHAKE] = "handshake",
	[STREAM_R_IO] = "io",
	[STREAM_R_TIMEOUT] = "timeout",
	[STREAM_R_MALFORMED] = "malformed",
	[STREAM_R_TOO_BIG] = "too_big",
	[STREAM_R_FLEET] = "fleet",
	[STREAM_R_UNADMITTED] = "unadmitted",
	[STREAM_R_EXPIRED] = "expired",
	[STREAM_R_KEY_MISMATCH] = "key_mismatch",
	[STREAM_R_PEER_ID] = "peer_id",
	[STREAM_R_REMOTE_ERROR] = "remote_error",
	[STREAM_R_LOCAL] = "local",
};

static int count(struct stream_ctx *ctx, enum stream_reason r, int rc)
{
	assert(r < STREAM_R_COUNT_);
	atomic_fetch_add_explicit(&ctx->counts[r], 1, memory_order_relaxed);
	return rc;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- frames -------------------------------------------------------------- */

int stream_frame_decode(const uint8_t *buf, size_t len, struct stream_frame *out,
			size_t *consumed)
{
	assert(buf != NULL || len == 0);
	assert(out != NULL && consumed != NULL);
	struct rd r = rd_init(buf, len);
	uint8_t type;
	uint32_t plen;
	if (!rd_u8(&r, &type) || !rd_u32(&r, &plen)) {
		*consumed = STREAM_FRAME_HEADER_BYTES;
		return SHOAL_ETRUNC;
	}
	if (plen > STREAM_FRAME_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	switch (type) {
	case STREAM_FRAME_CERT:
		if (plen > SHOAL_CERT_BYTES_MAX)
			return SHOAL_ETOOBIG;
		break;
	case STREAM_FRAME_STATE_CHUNK:
		if (plen == 0)
			return SHOAL_EPROTO; /* empty chunks would only spin */
		break;
	case STREAM_FRAME_STATE_END:
		if (plen != 0)
			return SHOAL_EPROTO;
		break;
	case STREAM_FRAME_ERROR:
		break;
	case STREAM_FRAME_SYNC:
		if (plen == 0)
			return SHOAL_EPROTO;
		break;
	default:
		return SHOAL_EPROTO;
	}
	const uint8_t *p;
	if (!rd_bytes(&r, plen, &p)) {
		*consumed = STREAM_FRAME_HEADER_BYTES + (size_t)plen;
		return SHOAL_ETRUNC;
	}
	out->type = type;
	out->payload = p;
	out->len = plen;
	*consumed = STREAM_FRAME_HEADER_BYTES + (size_t)plen;
	assert(*consumed <= SHOAL_TCP_FRAME_BYTES_MAX);
	return 0;
}

int stream_frame_encode(uint8_t type, const uint8_t *payload, size_t len,
			uint8_t *out, size_t cap, size_t *out_len)
{
	assert(payload != NULL || len == 0);
	if (len > STREAM_FRAME_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	struct wr w = wr_init(out, cap);
	wr_u8(&w, type);
	wr_u32(&w, (uint32_t)len);
	wr_bytes(&w, payload, len);
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	/* Never send what we would refuse to receive. */
	struct stream_frame f;
	size_t used;
	if (stream_frame_decode(out, w.len, &f, &used) != 0)
		return SHOAL_ETOOBIG;
	assert(used == w.len);
	*out_len = w.len;
	return 0;
}

void stream_reasm_init(struct stream_reasm *r)
{
	memset(r, 0, sizeof(*r));
}

int stream_reasm_feed(struct stream_reasm *r, const struct stream_frame *f)
{
	assert(r != NULL && f != NULL);
	assert(r->len <= SHOAL_PUSHPULL_BYTES_MAX);
	if (r->done)
		return SHOAL_EPROTO;
	switch (f->type) {
	case STREAM_FRAME_STATE_END:
		r->done = true;
		return 1;
	case STREAM_FRAME_ERROR:
		return SHOAL_ECONN;
	case STREAM_FRAME_STATE_CHUNK:
		break;
	default:
		return SHOAL_EPROTO;
	}
	if (f->len > SHOAL_PUSHPULL_BYTES_MAX - r->len)
		return SHOAL_ETOOBIG;
	if (r->len + f->len > r->cap) {
		/* Double from one frame, so a state costs O(log) reallocs and
		 * memory tracks what the peer really sent. */
		size_t cap = r->cap ? r->cap : SHOAL_TCP_FRAME_BYTES_MAX;
		while (cap < r->len + f->len)
			cap *= 2;
		if (cap > SHOAL_PUSHPULL_BYTES_MAX)
			cap = SHOAL_PUSHPULL_BYTES_MAX;
		uint8_t *nb = realloc(r->buf, cap);
		if (nb == NULL)
			return SHOAL_ENOMEM;
		r->buf = nb;
		r->cap = cap;
	}
	memcpy(r->buf + r->len, f->payload, f->len);
	r->len += f->len;
	return 0;
}

void stream_reasm_take(struct stream_reasm *r, uint8_t **state, size_t *len)
{
	assert(r->done);
	if (r->buf == NULL)
		r->buf = malloc(1); /* callers free() one way, whatever the size */
	*state = r->buf;
	*len = r->len;
	stream_reasm_init(r);
}

void stream_reasm_free(struct stream_reasm *r)
{
	free(r->buf);
	stream_reasm_init(r);
}

/* --- context: X.509 certificate from the node key ------------------------ */

static void ssl_err(char *err, size_t errlen, const char *what)
{
	char e[256];
	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, errlen, "%s: %s", what, e);
}

/* Accepts the peer's self-signed leaf: trust comes from the admission
 * certificate checked after the handshake, not from any X.509 chain. The
 * handshake itself still proves the peer holds the certificate's key. */
static int verify_cb(int preverify_ok, X509_STORE_CTX *x)
{
	return X509_STORE_CTX_get_error_depth(x) == 0 ? 1 : preverify_ok;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char want[] = "\x07" STREAM_ALPN;
	unsigned char *sel;
	if (SSL_select_next_proto(&sel, outlen, want, sizeof(want) - 1, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	if (x == NULL)
		return NULL;
	uint64_t serial;
	randombytes_buf(&serial, sizeof(serial));
	X509_NAME *name = X509_get_subject_name(x);
	bool ok = X509_set_version(x, 2) &&
		  ASN1_INTEGER_set_uint64(X509_get_serialNumber(x),
					  serial >> 1) && /* positive */
		  X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
		  X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, NULL) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					     (const unsigned char *)cn, -1, -1, 0) &&
		  X509_set_issuer_name(x, name) && X509_set_pubkey(x, key) &&
		  X509_sign(x, key, NULL) > 0; /* Ed25519 takes no digest */
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

struct stream_ctx *stream_ctx_new(const struct node_identity *self, char *err,
				  size_t errlen)
{
	assert(self != NULL);
	assert(err != NULL && errlen > 0);
	struct stream_ctx *ctx = calloc(1, sizeof(*ctx));
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	if (ctx == NULL) {
		snprintf(err, errlen, "stream_ctx_new: out of memory");
		return NULL;
	}
	ctx->self = self;
	ctx->timeout_ms = SHOAL_TCP_TIMEOUT_MS;
	/* The first 32 bytes of a libsodium secret key are the seed. */
	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, self->kp.sk, 32);
	if (key == NULL) {
		ssl_err(err, errlen, "EVP_PKEY_new_raw_private_key(node key)");
		goto fail;
	}
	uint8_t pk[32];
	size_t pk_len = sizeof(pk);
	if (!EVP_PKEY_get_raw_public_key(key, pk, &pk_len) || pk_len != 32 ||
	    memcmp(pk, self->kp.pk, 32) != 0) {
		snprintf(err, errlen, "node key: secret and public key do not match");
		goto fail;
	}
	x = self_signed(key, self->cert.name[0] ? self->cert.name : "shoal");
	if (x == NULL) {
		ssl_err(err, errlen, "X509 self-signed certificate");
		goto fail;
	}
	ctx->ssl = SSL_CTX_new(TLS_method());
	if (ctx->ssl == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		goto fail;
	}
	SSL_CTX *s = ctx->ssl;
	if (!SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set1_sigalgs_list(s, "ed25519") ||
	    !SSL_CTX_use_certificate(s, x) || !SSL_CTX_use_PrivateKey(s, key) ||
	    !SSL_CTX_check_private_key(s) || !SSL_CTX_set_num_tickets(s, 0)) {
		ssl_err(err, errlen, "SSL_CTX setup");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(s, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   verify_cb);
	SSL_CTX_set_alpn_select_cb(s, alpn_select, NULL);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
fail:
	X509_free(x);
	EVP_PKEY_free(key);
	stream_ctx_free(ctx);
	return NULL;
}

void stream_ctx_free(struct stream_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

void stream_ctx_set_timeout_ms(struct stream_ctx *ctx, uint32_t timeout_ms)
{
	assert(timeout_ms > 0);
	ctx->timeout_ms = timeout_ms;
}

void stream_stats_get(const struct stream_ctx *ctx, struct stream_stats *out)
{
	for (size_t i = 0; i < STREAM_R_COUNT_; i++)
		out->v[i] = atomic_load_explicit(&ctx->counts[i], memory_order_relaxed);
}

const char *stream_reason_name(enum stream_reason r)
{
	return r < STREAM_R_COUNT_ ? reason_names[r] : "unknown";
}

size_t stream_stats_format(const struct stream_stats *s, char *out, size_t cap)
{
	assert(out != NULL || cap == 0);
	size_t need = 0;
	for (size_t i = 0; i < STREAM_R_COUNT_; i++) {
		int n = snprintf(need < cap ? out + need : NULL,
				 need < cap ? cap - need : 0, "%s%s=%llu",
				 i ? " " : "", reason_names[i],
				 (unsigned long long)s->v[i]);
		assert(n > 0);
		need += (size_t)n;
	}
	if (cap > 0 && need >= cap)
		out[cap - 1] = '\0';
	return need;
}

json_t *stream_stats_json(const struct stream_stats *s)
{
	json_t *o = json_object();
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < STREAM_R_COUNT_; i++)
		if (json_object_set_new(o, reason_names[i],
					json_integer((json_int_t)s->v[i])) != 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* --- sockets ------------------------------------------------------------- */

static socklen_t to_sockaddr(const struct shoal_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == SHOAL_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(a->port);
		memcpy(&in->sin_addr, a->ip, 4);
		return sizeof(*in);
	}
	if (a->family == SHOAL_AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a->port);
		memcpy(&in6->sin6_addr, a->ip, 16);
		return sizeof(*in6);
	}
	return 0;
}

int stream_listen(const struct shoal_addr *bind_addr, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(bind_addr, &ss);
	if (sl == 0)
		return SHOAL_EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return SHOAL_EIO;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(fd, SHOAL_TCP_CONNS_MAX) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return SHOAL_EIO;
	}
	*fd_out = fd;
	return 0;
}

int stream_bound_addr(int fd, struct shoal_addr *out)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return SHOAL_EIO;
	memset(out, 0, sizeof(*out));
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		out->family = SHOAL_AF_INET;
		memcpy(out->ip, &in->sin_addr, 4);
		out->port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		out->family = SHOAL_AF_INET6;
		memcpy(out->ip, &in6->sin6_addr, 16);
		out->port = ntohs(in6->sin6_port);
	} else {
		return SHOAL_EINVAL;
	}
	return 0;
}

/* Connects within the deadline: non-blocking connect, poll, back to
 * blocking. */
static int tcp_connect(const struct shoal_addr *to, uint64_t deadline_ms, int *fd_out)
{
	struct sockaddr_storage ss;
	socklen_t sl = to_sockaddr(to, &ss);
	if (sl == 0)
		return SHOAL_EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return SHOAL_ECONN;
	int rc = 0;
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		if (errno != EINPROGRESS) {
			rc = SHOAL_ECONN;
			goto out;
		}
		uint64_t now = mono_ms();
		if (now >= deadline_ms) {
			rc = SHOAL_ETIMEDOUT;
			goto out;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n = poll(&p, 1, (int)(deadline_ms - now));
		if (n == 0) {
			rc = SHOAL_ETIMEDOUT;
			goto out;
		}
		int soerr = 0;
		socklen_t l = sizeof(soerr);
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0 ||
		    soerr != 0) {
			rc = SHOAL_ECONN;
			goto out;
		}
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		rc = SHOAL_ECONN;
out:
	if (rc != 0) {
		close(fd);
		return rc;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*fd_out = fd;
	return 0;
}

/* --- deadline-bounded TLS I/O -------------------------------------------- */

/* Sets the socket timeouts to the time left; SHOAL_ETIMEDOUT if none. */
static int arm_timeouts(struct stream_conn *c)
{
	uint64_t now = mono_ms();
	if (now >= c->deadline_ms)
		return SHOAL_ETIMEDOUT;
	uint64_t left = c->deadline_ms - now;
	struct timeval tv = {.tv_sec = (time_t)(left / 1000),
			     .tv_usec = (suseconds_t)(left % 1000) * 1000};
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return SHOAL_ECONN;
	return 0;
}

/* SIGPIPE from writing to a peer that went away is blocked in this thread
 * around each TLS call and any pending one consumed, so no caller has to
 * ignore SIGPIPE process-wide. */
struct sigpipe_guard {
	sigset_t old;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &s, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t s, pending;
	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) &&
	    !sigismember(&g->old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&s, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

enum io_op { IO_READ, IO_WRITE, IO_CONNECT, IO_ACCEPT };

/* Runs one SSL operation to completion or the deadline; a timed-out recv
 * or send shows up as WANT_READ/WANT_WRITE and is retried while time is
 * left. Returns bytes moved (≥ 0) or a counted SHOAL_E*. For reads, a
 * clean close by the peer is SHOAL_ECONN. */
static int io_ssl_loop(struct stream_conn *c, enum io_op op, void *buf,
		       size_t len, size_t *done)
{
	for (;;) {
		int rc = arm_timeouts(c);
		if (rc == SHOAL_ETIMEDOUT)
			return count(c->ctx, STREAM_R_TIMEOUT, rc);
		if (rc != 0)
			return count(c->ctx, STREAM_R_IO, rc);
		ERR_clear_error();
		int r;
		switch (op) {
		case IO_READ:
			r = SSL_read_ex(c->ssl, buf, len, done);
			break;
		case IO_WRITE:
			r = SSL_write_ex(c->ssl, buf, len, done);
			break;
		case IO_CONNECT:
			r = SSL_connect(c->ssl);
			break;
		default:
			assert(op == IO_ACCEPT);
			r = SSL_accept(c->ssl);
			break;
		}
		if (r > 0)
			return 0;
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			continue;
		if (e == SSL_ERROR_SSL && (op == IO_CONNECT || op == IO_ACCEPT)) {
			char msg[256];
			ERR_error_string_n(ERR_peek_error(), msg, sizeof(msg));
			log_debug("stream_handshake_failed", "error=\"%s\"", msg);
			return count(c->ctx, STREAM_R_HANDSHAKE, SHOAL_EPROTO);
		}
		return count(c->ctx, STREAM_R_IO, SHOAL_ECONN);
	}
}

static int io_ssl(struct stream_conn *c, enum io_op op, void *buf, size_t len,
		  size_t *done)
{
	/* Any TLS call may write (handshake messages, alerts). */
	struct sigpipe_guard g;
	sigpipe_block(&g);
	int rc = io_ssl_loop(c, op, buf, len, done);
	sigpipe_restore(&g);
	return rc;
}

static int io_read_full(struct stream_conn *c, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		size_t n = 0;
		int rc = io_ssl(c, IO_READ, buf + got, len - got, &n);
		if (rc != 0)
			return rc;
		assert(n > 0 && n <= len - got);
		got += n;
	}
	return 0;
}

static int io_write_full(struct stream_conn *c, const uint8_t *buf, size_t len)
{
	size_t sent = 0;
	while (sent < len) {
		size_t n = 0;
		int rc = io_ssl(c, IO_WRITE, (void *)(buf + sent), len - sent, &n);
		if (rc != 0)
			return rc;
		assert(n > 0 && n <= len - sent);
		sent += n;
	}
	return 0;
}

/* Sends close_notify once, without waiting for the peer's: the exchange is
 * over, so a failure here changes nothing and is not counted. */
static void tls_goodbye(struct stream_conn *c)
{
	if (arm_timeouts(c) != 0)
		return;
	struct sigpipe_guard g;
	sigpipe_block(&g);
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	sigpipe_restore(&g);
}

/* --- frames on a conn ---------------------------------------------------- */

int stream_send_frame(struct stream_conn *c, uint8_t type, const uint8_t *payload,
		      size_t len)
{
	assert(c != NULL);
	size_t n;
	int rc = stream_frame_encode(type, payload, len, c->wbuf, sizeof(c->wbuf), &n);
	if (rc != 0)
		return count(c->ctx, STREAM_R_LOCAL, rc);
	return io_write_full(c, c->wbuf, n);
}

int stream_conn_write_raw(struct stream_conn *c, const uint8_t *p, size_t len)
{
	return io_write_full(c, p, len);
}

int stream_recv_frame(struct stream_conn *c, struct stream_frame *out)
{
	assert(c != NULL && out != NULL);
	size_t need;
	int rc = io_read_full(c, c->rbuf, STREAM_FRAME_HEADER_BYTES);
	if (rc != 0)
		return rc;
	/* The header alone tells a bad frame; only then read its payload. */
	rc = stream_frame_decode(c->rbuf, STREAM_FRAME_HEADER_BYTES, out, &need);
	if (rc == SHOAL_ETRUNC) {
		assert(need > STREAM_FRAME_HEADER_BYTES && need <= sizeof(c->rbuf));
		rc = io_read_full(c, c->rbuf + STREAM_FRAME_HEADER_BYTES,
				  need - STREAM_FRAME_HEADER_BYTES);
		if (rc != 0)
			return rc;
		rc = stream_frame_decode(c->rbuf, need, out, &need);
		assert(rc != SHOAL_ETRUNC);
	}
	if (rc == SHOAL_ETOOBIG)
		return count(c->ctx, STREAM_R_TOO_BIG, rc);
	if (rc != 0)
		return count(c->ctx, STREAM_R_MALFORMED, rc);
	return 0;
}

int stream_send_state(struct stream_conn *c, const uint8_t *state, size_t len)
{
	if (len > SHOAL_PUSHPULL_BYTES_MAX)
		return count(c->ctx, STREAM_R_TOO_BIG, SHOAL_ETOOBIG);
	size_t off = 0;
	while (off < len) {
		size_t n = len - off;
		if (n > STREAM_FRAME_PAYLOAD_BYTES_MAX)
			n = STREAM_FRAME_PAYLOAD_BYTES_MAX;
		int rc = stream_send_frame(c, STREAM_FRAME_STATE_CHUNK, state + off, n);
		if (rc != 0)
			return rc;
		off += n;
	}
	return stream_send_frame(c, STREAM_FRAME_STATE_END, NULL, 0);
}

static void log_remote_error(const struct stream_frame *f)
{
	char text[256], quoted[520];
	size_t n = f->len < sizeof(text) - 1 ? f->len : sizeof(text) - 1;
	memcpy(text, f->payload, n);
	text[n] = '\0';
	shoal_log_quote(text, quoted, sizeof(quoted));
	log_info("stream_remote_error", "error=%s", quoted);
}

/* Maps a stream_reasm_feed error to its counted reason. */
static int reasm_error(struct stream_conn *c, const struct stream_frame *f, int rc)
{
	if (rc == SHOAL_ECONN) {
		assert(f->type == STREAM_FRAME_ERROR);
		log_remote_error(f);
		return count(c->ctx, STREAM_R_REMOTE_ERROR, rc);
	}
	if (rc == SHOAL_ETOOBIG)
		return count(c->ctx, STREAM_R_TOO_BIG, rc);
	if (rc == SHOAL_EPROTO)
		return count(c->ctx, STREAM_R_MALFORMED, rc);
	return count(c->ctx, STREAM_R_LOCAL, rc);
}

/* Receives frames into r (which may already hold the first ones) up to
 * STATE_END; frees r on error. */
static int recv_state_into(struct stream_conn *c, struct stream_reasm *r, uint8_t **state,
			   size_t *len)
{
	while (!r->done) {
		struct stream_frame f;
		int rc = stream_recv_frame(c, &f);
		if (rc != 0) {
			stream_reasm_free(r);
			return rc; /* counted by stream_recv_frame */
		}
		rc = stream_reasm_feed(r, &f);
		if (rc < 0) {
			stream_reasm_free(r);
			return reasm_error(c, &f, rc);
		}
	}
	stream_reasm_take(r, state, len);
	if (*state == NULL)
		return count(c->ctx, STREAM_R_LOCAL, SHOAL_ENOMEM);
	return 0;
}

int stream_recv_state(struct stream_conn *c, uint8_t **state, size_t *len)
{
	struct stream_reasm r;
	stream_reasm_init(&r);
	return recv_state_into(c, &r, state, len);
}

/* --- handshake and the certificate exchange ------------------------------ */

static struct stream_conn *conn_new(struct stream_ctx *ctx, int fd,
				    uint64_t deadline_ms)
{
	struct stream_conn *c = malloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ctx = ctx;
	c->fd = fd;
	c->deadline_ms = deadline_ms;
	c->ssl = SSL_new(ctx->ssl);
	if (c->ssl == NULL || !SSL_set_fd(c->ssl, fd)) {
		SSL_free(c->ssl);
		free(c);
		return NULL;
	}
	return c;
}

/* Frees c without the TLS goodbye (after an error). */
static void conn_abort(struct stream_conn *c)
{
	SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

/* The peer's raw Ed25519 key from its TLS certificate, whose private key
 * the handshake has proven the peer holds. */
static int peer_tls_key(struct stream_conn *c, uint8_t pk[32])
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	if (x == NULL)
		return SHOAL_EPROTO;
	EVP_PKEY *k = X509_get0_pubkey(x);
	size_t len = 32;
	if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519 ||
	    !EVP_PKEY_get_raw_public_key(k, pk, &len) || len != 32)
		return SHOAL_EPROTO;
	/* Self-signed by that same key, as libp2p requires. */
	if (X509_verify(x, k) != 1)
		return SHOAL_EPROTO;
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
	if (alpn_len != strlen(STREAM_ALPN) || memcmp(alpn, STREAM_ALPN, alpn_len) != 0)
		return SHOAL_EPROTO;
	return 0;
}

/* Tells the peer why we close; best effort. */
static void send_error(struct stream_conn *c, const char *why)
{
	if (stream_send_frame(c, STREAM_FRAME_ERROR, (const uint8_t *)why,
			      strlen(why)) != 0)
		log_debug("stream_error_not_sent", "why=\"%s\"", why);
}

/* Receives the peer's CERT frame and checks it: the fleet's admission at
 * now_ms, bound to the TLS key, and (if given) the expected node. */
static int recv_peer_cert(struct stream_conn *c, const uint8_t tls_pk[32],
			  const uint8_t *expected, uint64_t now_ms,
			  struct stream_peer *peer)
{
	struct stream_frame f;
	int rc = stream_recv_frame(c, &f);
	if (rc != 0)
		return rc;
	if (f.type == STREAM_FRAME_ERROR) {
		log_remote_error(&f);
		return count(c->ctx, STREAM_R_REMOTE_ERROR, SHOAL_ECONN);
	}
	if (f.type != STREAM_FRAME_CERT || cert_decode(f.payload, f.len, &peer->cert) != 0) {
		send_error(c, "expected an admission certificate");
		return count(c->ctx, STREAM_R_MALFORMED, SHOAL_EPROTO);
	}
	rc = cert_verify(&peer->cert, &c->ctx->self->fleet, now_ms);
	if (rc == SHOAL_EFLEET) {
		send_error(c, "certificate of another fleet");
		return count(c->ctx, STREAM_R_FLEET, rc);
	}
	if (rc == SHOAL_EEXPIRED) {
		send_error(c, "certificate expired");
		return count(c->ctx, STREAM_R_EXPIRED, rc);
	}
	if (rc != 0) {
		send_error(c, "certificate not admitted");
		return count(c->ctx, STREAM_R_UNADMITTED, SHOAL_EUNADMITTED);
	}
	if (sodium_memcmp(peer->cert.node_id, tls_pk, 32) != 0) {
		send_error(c, "certificate is not for the TLS key");
		return count(c->ctx, STREAM_R_KEY_MISMATCH, SHOAL_EUNADMITTED);
	}
	if (expected != NULL && sodium_memcmp(peer->cert.node_id, expected, 32) != 0) {
		send_error(c, "not the expected node");
		return count(c->ctx, STREAM_R_PEER_ID, SHOAL_ENOTFOUND);
	}
	return 0;
}

static int send_own_cert(struct stream_conn *c)
{
	const struct node_identity *self = c->ctx->self;
	return stream_send_frame(c, STREAM_FRAME_CERT, self->cert_bytes, self->cert_len);
}

/* Runs the handshake for role op on c and the CERT exchange in the
 * protocol's order; on error c is aborted. */
static int establish(struct stream_conn *c, enum io_op op, const uint8_t *expected,
		     uint64_t now_ms, struct stream_peer *peer)
{
	assert(op == IO_CONNECT || op == IO_ACCEPT);
	uint8_t tls_pk[32];
	int rc = io_ssl(c, op, NULL, 0, NULL);
	if (rc != 0)
		goto fail;
	if (peer_tls_key(c, tls_pk) != 0) {
		rc = count(c->ctx, STREAM_R_HANDSHAKE, SHOAL_EPROTO);
		goto fail;
	}
	if (op == IO_CONNECT) {
		rc = send_own_cert(c);
		if (rc == 0)
			rc = recv_peer_cert(c, tls_pk, expected, now_ms, peer);
	} else {
		rc = recv_peer_cert(c, tls_pk, expected, now_ms, peer);
		if (rc == 0)
			rc = send_own_cert(c);
	}
	if (rc == 0)
		return 0;
fail:
	conn_abort(c);
	return rc;
}

int stream_connect(struct stream_ctx *ctx, const struct shoal_addr *to,
		   const uint8_t *expected_peer_id, uint64_t now_ms,
		   struct stream_conn **out, struct stream_peer *peer)
{
	assert(ctx != NULL && to != NULL);
	assert(out != NULL && peer != NULL);
	int fd;
	uint64_t deadline_ms = mono_ms() + ctx->timeout_ms;
	int rc = tcp_connect(to, deadline_ms, &fd);
	if (rc == SHOAL_ETIMEDOUT)
		return count(ctx, STREAM_R_TIMEOUT, rc);
	if (rc != 0)
		return count(ctx, STREAM_R_CONNECT, rc);
	struct stream_conn *c = conn_new(ctx, fd, deadline_ms);
	if (c == NULL) {
		close(fd);
		return count(ctx, STREAM_R_LOCAL, SHOAL_ENOMEM);
	}
	static const unsigned char alpn[] = "\x07" STREAM_ALPN;
	if (SSL_set_alpn_protos(c->ssl, alpn, sizeof(alpn) - 1) != 0) {
		conn_abort(c);
		return count(ctx, STREAM_R_LOCAL, SHOAL_ECRYPTO);
	}
	rc = establish(c, IO_CONNECT, expected_peer_id, now_ms, peer);
	if (rc == 0)
		*out = c;
	return rc;
}

int stream_accept(struct stream_ctx *ctx, int fd, uint64_t now_ms,
		  struct stream_conn **out, struct stream_peer *peer)
{
	assert(ctx != NULL && fd >= 0);
	assert(out != NULL && peer != NULL);
	/* As on the connecting side. Without it the server's last writes (its
	 * state frame, then close_notify) wait for the client's delayed ACK,
	 * 40 ms on Linux, and both ends finish a push-pull (a join too) late. */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct stream_conn *c = conn_new(ctx, fd, mono_ms() + ctx->timeout_ms);
	if (c == NULL) {
		close(fd);
		return count(ctx, STREAM_R_LOCAL, SHOAL_ENOMEM);
	}
	int rc = establish(c, IO_ACCEPT, NULL, now_ms, peer);
	if (rc == 0)
		*out = c;
	return rc;
}

void stream_close(struct stream_conn *c)
{
	if (c == NULL)
		return;
	tls_goodbye(c);
	conn_abort(c);
}

/* --- push-pull ----------------------------------------------------------- */

int stream_pushpull_client(struct stream_ctx *ctx, const struct shoal_addr *to,
			   const uint8_t *expected_peer_id,
			   const uint8_t *local_state, size_t local_len,
			   uint8_t **remote_state, size_t *remote_len,
			   struct stream_peer *peer, uint64_t now_ms)
{
	assert(local_state != NULL || local_len == 0);
	assert(remote_state != NULL && remote_len != NULL);
	if (local_len > SHOAL_PUSHPULL_BYTES_MAX)
		return count(ctx, STREAM_R_TOO_BIG, SHOAL_ETOOBIG);
	struct stream_conn *c;
	int rc = stream_connect(ctx, to, expected_peer_id, now_ms, &c, peer);
	if (rc != 0)
		goto out;
	rc = stream_send_state(c, local_state, local_len);
	if (rc == 0)
		rc = stream_recv_state(c, remote_state, remote_len);
	if (rc != 0) {
		conn_abort(c);
		goto out;
	}
	stream_close(c);
	count(ctx, STREAM_R_CONNECTED, 0);
out:
	return rc;
}

/* Waits (within the deadline) for the client to close, so that closing
 * with unread bytes does not reset the connection before the client has
 * read our last frames. */
static void linger_for_close(struct stream_conn *c)
{
	uint8_t b[256];
	for (;;) {
		if (arm_timeouts(c) != 0)
			return;
		size_t n;
		ERR_clear_error();
		if (SSL_read_ex(c->ssl, b, sizeof(b), &n) <= 0)
			return;
	}
}

int stream_pushpull_serve_conn(struct stream_conn *c, const struct stream_frame *first,
			       stream_state_fn get_local_state, void *arg,
			       uint8_t **remote_state, size_t *remote_len)
{
	assert(c != NULL && first != NULL && get_local_state != NULL);
	assert(remote_state != NULL && remote_len != NULL);
	struct stream_ctx *ctx = c->ctx;
	uint8_t *mine = NULL, *theirs = NULL;
	size_t mine_len = 0, theirs_len = 0;
	struct stream_reasm r;
	stream_reasm_init(&r);
	int rc = stream_reasm_feed(&r, first);
	if (rc < 0) {
		stream_reasm_free(&r);
		rc = reasm_error(c, first, rc);
	} else {
		rc = recv_state_into(c, &r, &theirs, &theirs_len);
	}
	if (rc != 0)
		goto fail;
	rc = get_local_state(arg, &mine, &mine_len);
	if (rc != 0) {
		send_error(c, "server has no state to send");
		count(ctx, STREAM_R_LOCAL, rc);
		goto fail;
	}
	rc = stream_send_state(c, mine, mine_len);
	if (rc != 0)
		goto fail;
	tls_goodbye(c);
	linger_for_close(c);
	conn_abort(c);
	count(ctx, STREAM_R_SERVED, 0);
	*remote_state = theirs;
	*remote_len = theirs_len;
	theirs = NULL;
	goto out;
fail:
	conn_abort(c);
out:
	free(mine);
	free(theirs);
	return rc;
}

int stream_pushpull_serve(struct stream_ctx *ctx, int conn_fd,
			  stream_state_fn get_local_state, void *arg,
			  uint8_t **remote_state, size_t *remote_len,
			  struct stream_peer *peer, uint64_t now_ms)
{
	assert(get_local_state != NULL);
	assert(remote_state != NULL && remote_len != NULL);
	struct stream_conn *c;
	int rc = stream_accept(ctx, conn_fd, now_ms, &c, peer);
	if (rc != 0)
		return rc;
	struct stream_frame first;
	rc = stream_recv_frame(c, &first);
	if (rc != 0) {
		conn_abort(c);
		return rc;
	}
	return stream_pushpull_serve_conn(c, &first, get_local_state, arg, remote_state,
					  remote_len);
}

void stream_conn_set_deadline(struct stream_conn *c, uint32_t ms)
{
	assert(c != NULL);
	c->deadline_ms = mono_ms() + ms;
}

int stream_count(struct stream_ctx *ctx, enum stream_reason reason, int rc)
{
	assert(ctx != NULL && reason < STREAM_R_COUNT_);
	return count(ctx, reason, rc);
}
