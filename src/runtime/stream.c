/*
 * stream.c — Noise XX streams bound to node identities, framing, push-pull;
 * see stream.h for the protocol.
 *
 * Layers, bottom up: deadline-bounded socket reads and writes (sock_*), the
 * pure frame codec and state reassembly, the handshake payload and the
 * shoal handshake over runtime/noise.c (stream_hs_*, sans-IO), transport
 * messages and the encrypted byte pipe they make (pipe_*), frames on a
 * conn, the handshake over the socket (stream_connect / stream_accept),
 * and the push-pull exchange on top. Each failure is counted once, where
 * it is detected.
 */
#include "runtime/stream.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "shoal/bytes.h"
#include "shoal/log.h"

_Static_assert(SHOAL_TCP_FRAME_BYTES_MAX <= UINT32_MAX, "len is a u32");
_Static_assert(SHOAL_PUSHPULL_BYTES_MAX >= STREAM_FRAME_PAYLOAD_BYTES_MAX,
	       "a state may span frames");
_Static_assert(SHOAL_NOISE_MSG_BYTES_MAX == NOISE_MSG_BYTES_MAX, "the spec's bound");
_Static_assert(SHOAL_NOISE_MSG_BYTES_MAX <= UINT16_MAX, "len is a u16");
_Static_assert(SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX == 2 + SHOAL_CERT_BYTES_MAX +
						       crypto_sign_BYTES,
	       "payload = cert_len | cert | sig");
_Static_assert(NOISE_MSG2_OVERHEAD_BYTES + SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX <=
		       SHOAL_STREAM_HS_MSG_BYTES_MAX,
	       "msg 2, the longest handshake message, fits its bound");
_Static_assert(NOISE_MSG3_OVERHEAD_BYTES <= NOISE_MSG2_OVERHEAD_BYTES, "msg 2 is longest");
_Static_assert(STREAM_PROLOGUE_BYTES == 7 + SHOAL_FLEET_ID_BYTES, "shoal/1 || fleet_id");

#define STATIC_KEY_DOMAIN_BYTES (sizeof(STREAM_STATIC_KEY_DOMAIN) - 1)

struct stream_ctx {
	const struct node_identity *self;
	uint32_t timeout_ms;
	struct noise_keypair noise_static; /* fresh per context; wiped on free */
	uint8_t prologue[STREAM_PROLOGUE_BYTES];
	uint8_t payload[SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX]; /* cert | sig over the static key */
	size_t payload_len;
	_Atomic uint64_t counts[STREAM_R_COUNT_];
};

/* An open stream: the transport CipherStates and one Noise message each
 * way. Received plaintext is decrypted in place in rmsg and consumed from
 * rpos; sent plaintext collects in wmsg after the 2-byte length until a
 * frame ends or the message is full, then is sealed in place. */
struct stream_conn {
	struct stream_ctx *ctx;
	int fd;
	uint64_t deadline_ms; /* CLOCK_MONOTONIC */
	struct noise_cipher tx, rx;
	size_t rpos, rlen; /* unread plaintext: rmsg[rpos, rlen) */
	size_t wlen;       /* plaintext waiting at wmsg + 2 */
	uint8_t rmsg[SHOAL_NOISE_MSG_BYTES_MAX];
	uint8_t wmsg[2 + SHOAL_NOISE_MSG_BYTES_MAX];
	uint8_t frame[SHOAL_TCP_FRAME_BYTES_MAX]; /* the last received frame */
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
	case STREAM_FRAME_PING:
	case STREAM_FRAME_PONG:
		if (plen != STREAM_PING_PAYLOAD_BYTES)
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

/* --- the handshake payload and the shoal handshake, sans-IO -------------- */

void stream_prologue(const uint8_t fleet_id[SHOAL_FLEET_ID_BYTES],
		     uint8_t out[STREAM_PROLOGUE_BYTES])
{
	assert(fleet_id != NULL && out != NULL);
	memcpy(out, STREAM_PROTOCOL, sizeof(STREAM_PROTOCOL) - 1);
	memcpy(out + sizeof(STREAM_PROTOCOL) - 1, fleet_id, SHOAL_FLEET_ID_BYTES);
}

/* STREAM_STATIC_KEY_DOMAIN || static key: what the node key signs. */
static void static_key_msg(const uint8_t static_pub[NOISE_DH_BYTES],
			   uint8_t out[STATIC_KEY_DOMAIN_BYTES + NOISE_DH_BYTES])
{
	memcpy(out, STREAM_STATIC_KEY_DOMAIN, STATIC_KEY_DOMAIN_BYTES);
	memcpy(out + STATIC_KEY_DOMAIN_BYTES, static_pub, NOISE_DH_BYTES);
}

int stream_hs_payload_encode(const struct node_identity *self,
			     const uint8_t static_pub[NOISE_DH_BYTES], uint8_t *out,
			     size_t cap, size_t *len)
{
	assert(self != NULL && static_pub != NULL);
	assert(out != NULL && len != NULL);
	if (self->cert_len == 0 || self->cert_len > SHOAL_CERT_BYTES_MAX)
		return SHOAL_EINVAL;
	uint8_t msg[STATIC_KEY_DOMAIN_BYTES + NOISE_DH_BYTES];
	uint8_t sig[crypto_sign_BYTES];
	static_key_msg(static_pub, msg);
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), self->kp.sk);
	struct wr w = wr_init(out, cap);
	wr_u16(&w, (uint16_t)self->cert_len);
	wr_bytes(&w, self->cert_bytes, self->cert_len);
	wr_bytes(&w, sig, sizeof(sig));
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	assert(w.len <= SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX);
	*len = w.len;
	return 0;
}

static int payload_fail(enum stream_reason *why, enum stream_reason r, int rc)
{
	*why = r;
	return rc;
}

int stream_hs_payload_check(const uint8_t *p, size_t len, const uint8_t rs[NOISE_DH_BYTES],
			    const struct fleet_public *fleet,
			    const uint8_t *expected_peer_id, uint64_t now_ms,
			    struct admission_cert *cert, enum stream_reason *why)
{
	assert(p != NULL || len == 0);
	assert(rs != NULL && fleet != NULL && cert != NULL && why != NULL);
	struct rd r = rd_init(p, len);
	uint16_t cert_len;
	const uint8_t *cert_bytes, *sig;
	if (!rd_u16(&r, &cert_len) || cert_len > SHOAL_CERT_BYTES_MAX ||
	    !rd_bytes(&r, cert_len, &cert_bytes) || !rd_bytes(&r, crypto_sign_BYTES, &sig) ||
	    !rd_empty(&r) || cert_decode(cert_bytes, cert_len, cert) != 0)
		return payload_fail(why, STREAM_R_MALFORMED, SHOAL_EPROTO);
	int rc = cert_verify(cert, fleet, now_ms);
	if (rc == SHOAL_EFLEET)
		return payload_fail(why, STREAM_R_FLEET, rc);
	if (rc == SHOAL_EEXPIRED)
		return payload_fail(why, STREAM_R_EXPIRED, rc);
	if (rc != 0)
		return payload_fail(why, STREAM_R_UNADMITTED, SHOAL_EUNADMITTED);
	/* Over rs, not over a key the payload names: a payload relayed from
	 * a handshake with another static key does not verify. */
	uint8_t msg[STATIC_KEY_DOMAIN_BYTES + NOISE_DH_BYTES];
	static_key_msg(rs, msg);
	if (crypto_sign_verify_detached(sig, msg, sizeof(msg), cert->node_id) != 0)
		return payload_fail(why, STREAM_R_KEY_MISMATCH, SHOAL_EUNADMITTED);
	if (expected_peer_id != NULL &&
	    sodium_memcmp(cert->node_id, expected_peer_id, SHOAL_NODE_ID_BYTES) != 0)
		return payload_fail(why, STREAM_R_PEER_ID, SHOAL_ENOTFOUND);
	return 0;
}

void stream_hs_init(const struct stream_ctx *ctx, enum noise_role role,
		    const struct noise_keypair *e, struct noise_handshake *hs)
{
	assert(ctx != NULL && e != NULL && hs != NULL);
	noise_handshake_init(hs, role, ctx->prologue, sizeof(ctx->prologue), &ctx->noise_static,
			     e);
	assert(hs->step == NOISE_STEP_MSG1);
}

bool stream_hs_writes(const struct noise_handshake *hs)
{
	assert(hs != NULL);
	if (hs->step < NOISE_STEP_MSG1 || hs->step > NOISE_STEP_MSG3)
		return false;
	/* The initiator writes msgs 1 and 3, the responder msg 2. */
	return (hs->step == NOISE_STEP_MSG2) == (hs->role == NOISE_RESPONDER);
}

size_t stream_hs_msg_max(const struct noise_handshake *hs)
{
	assert(hs != NULL);
	switch (hs->step) {
	case NOISE_STEP_MSG1:
		return NOISE_MSG1_OVERHEAD_BYTES;
	case NOISE_STEP_MSG2:
		return NOISE_MSG2_OVERHEAD_BYTES + SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX;
	case NOISE_STEP_MSG3:
		return NOISE_MSG3_OVERHEAD_BYTES + SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX;
	default:
		return 0;
	}
}

int stream_hs_write(const struct stream_ctx *ctx, struct noise_handshake *hs, uint8_t *out,
		    size_t cap, size_t *len)
{
	assert(ctx != NULL && hs != NULL);
	assert(out != NULL && len != NULL);
	if (!stream_hs_writes(hs))
		return SHOAL_ESTATE;
	/* Msg 1 is sent before any key exists: its payload would travel in
	 * the clear, so it carries none. */
	bool first = hs->step == NOISE_STEP_MSG1;
	int rc = noise_write_message(hs, first ? NULL : ctx->payload, first ? 0 : ctx->payload_len,
				     out, cap, len);
	assert(rc != 0 || *len <= SHOAL_STREAM_HS_MSG_BYTES_MAX);
	return rc;
}

int stream_hs_read(const struct stream_ctx *ctx, struct noise_handshake *hs,
		   const uint8_t *msg, size_t len, const uint8_t *expected_peer_id,
		   uint64_t now_ms, struct stream_peer *peer, enum stream_reason *why)
{
	assert(ctx != NULL && hs != NULL && peer != NULL && why != NULL);
	assert(msg != NULL || len == 0);
	*why = STREAM_R_HANDSHAKE;
	if (stream_hs_writes(hs) || hs->step > NOISE_STEP_MSG3)
		return SHOAL_ESTATE;
	bool first = hs->step == NOISE_STEP_MSG1;
	/* Msg 1 is exactly an ephemeral key; any other length is refused
	 * before Noise sees it, so nothing unauthenticated is ever taken. */
	if (len > stream_hs_msg_max(hs) || (first && len != NOISE_MSG1_OVERHEAD_BYTES)) {
		noise_handshake_wipe(hs);
		hs->step = NOISE_STEP_FAILED;
		return SHOAL_EPROTO;
	}
	uint8_t payload[SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX];
	size_t payload_len;
	int rc = noise_read_message(hs, msg, len, payload, sizeof(payload), &payload_len);
	if (rc != 0)
		return SHOAL_EPROTO;
	if (first) {
		assert(payload_len == 0);
		return 0;
	}
	const uint8_t *rs = noise_remote_static(hs);
	assert(rs != NULL);
	return stream_hs_payload_check(payload, payload_len, rs, &ctx->self->fleet,
				       expected_peer_id, now_ms, &peer->cert, why);
}

/* --- transport messages -------------------------------------------------- */

int stream_msg_open(struct noise_cipher *rx, uint8_t *msg, size_t len, size_t *plain_len)
{
	assert(rx != NULL && plain_len != NULL);
	assert(msg != NULL || len == 0);
	/* Empty plaintexts are never sent: they would only make a reader
	 * spin. */
	if (len <= NOISE_TAG_BYTES || len > SHOAL_NOISE_MSG_BYTES_MAX)
		return SHOAL_EPROTO;
	if (noise_decrypt(rx, NULL, 0, msg, len, msg) != 0)
		return SHOAL_EPROTO;
	*plain_len = len - NOISE_TAG_BYTES;
	assert(*plain_len >= 1);
	return 0;
}

int stream_msg_seal(struct noise_cipher *tx, const uint8_t *plain, size_t len, uint8_t *out)
{
	assert(tx != NULL && plain != NULL && out != NULL);
	if (len == 0 || len > NOISE_PLAINTEXT_BYTES_MAX)
		return SHOAL_EINVAL;
	int rc = noise_encrypt(tx, NULL, 0, plain, len, out + 2);
	if (rc != 0)
		return rc;
	size_t mlen = len + NOISE_TAG_BYTES;
	assert(mlen <= SHOAL_NOISE_MSG_BYTES_MAX);
	out[0] = (uint8_t)(mlen >> 8);
	out[1] = (uint8_t)mlen;
	return 0;
}

/* --- context ------------------------------------------------------------- */

struct stream_ctx *stream_ctx_new(const struct node_identity *self, char *err,
				  size_t errlen)
{
	assert(self != NULL);
	assert(err != NULL && errlen > 0);
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	if (crypto_sign_ed25519_sk_to_pk(pk, self->kp.sk) != 0 ||
	    sodium_memcmp(pk, self->kp.pk, sizeof(pk)) != 0) {
		snprintf(err, errlen, "node key: secret and public key do not match");
		return NULL;
	}
	if (self->cert_len == 0 || self->cert_len > SHOAL_CERT_BYTES_MAX) {
		snprintf(err, errlen, "node certificate: %zu bytes (1..%d)", self->cert_len,
			 SHOAL_CERT_BYTES_MAX);
		return NULL;
	}
	struct stream_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL) {
		snprintf(err, errlen, "stream_ctx_new: out of memory");
		return NULL;
	}
	ctx->self = self;
	ctx->timeout_ms = SHOAL_TCP_TIMEOUT_MS;
	stream_prologue(self->fleet.fleet_id, ctx->prologue);
	struct noise_keypair s;
	noise_keypair_generate(&s);
	stream_ctx_set_noise_static(ctx, &s);
	noise_keypair_wipe(&s);
	return ctx;
}

void stream_ctx_set_noise_static(struct stream_ctx *ctx, const struct noise_keypair *s)
{
	assert(ctx != NULL && s != NULL);
	ctx->noise_static = *s;
	/* Checked by stream_ctx_new, and the payload bound fits any cert. */
	int rc = stream_hs_payload_encode(ctx->self, s->pub, ctx->payload, sizeof(ctx->payload),
					  &ctx->payload_len);
	assert(rc == 0);
	(void)rc;
}

void stream_ctx_free(struct stream_ctx *ctx)
{
	if (ctx == NULL)
		return;
	noise_keypair_wipe(&ctx->noise_static);
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

/* --- deadline-bounded socket I/O ----------------------------------------- */

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

/* Reads exactly len bytes before the deadline. 0, SHOAL_ETIMEDOUT, or
 * SHOAL_ECONN (closed, reset). Not counted: the caller knows the phase. A
 * recv that times out (EAGAIN) is retried while time is left. */
static int sock_read_full(struct stream_conn *c, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		int rc = arm_timeouts(c);
		if (rc != 0)
			return rc;
		ssize_t n = recv(c->fd, buf + got, len - got, 0);
		if (n > 0) {
			assert((size_t)n <= len - got);
			got += (size_t)n;
		} else if (n == 0) {
			return SHOAL_ECONN;
		} else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
			return SHOAL_ECONN;
		}
	}
	return 0;
}

/* Writes all len bytes before the deadline; as sock_read_full. MSG_NOSIGNAL:
 * a peer that went away is EPIPE here, never SIGPIPE. */
static int sock_write_full(struct stream_conn *c, const uint8_t *buf, size_t len)
{
	size_t sent = 0;
	while (sent < len) {
		int rc = arm_timeouts(c);
		if (rc != 0)
			return rc;
		ssize_t n = send(c->fd, buf + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			assert((size_t)n <= len - sent);
			sent += (size_t)n;
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
			return SHOAL_ECONN;
		}
	}
	return 0;
}

/* Counts a transport-phase socket failure. */
static int io_fail(struct stream_conn *c, int rc)
{
	assert(rc == SHOAL_ETIMEDOUT || rc == SHOAL_ECONN);
	return count(c->ctx, rc == SHOAL_ETIMEDOUT ? STREAM_R_TIMEOUT : STREAM_R_IO, rc);
}

/* --- the encrypted pipe -------------------------------------------------- */

/* Seals what waits in wmsg as one transport message and sends it. */
static int pipe_flush(struct stream_conn *c)
{
	if (c->wlen == 0)
		return 0;
	int rc = stream_msg_seal(&c->tx, c->wmsg + 2, c->wlen, c->wmsg);
	if (rc != 0)
		return count(c->ctx, STREAM_R_LOCAL, rc); /* 2^64 messages */
	size_t n = 2 + c->wlen + NOISE_TAG_BYTES;
	c->wlen = 0;
	rc = sock_write_full(c, c->wmsg, n);
	return rc ? io_fail(c, rc) : 0;
}

/* Appends p[len] to the pipe, sending each message as it fills. */
static int pipe_write(struct stream_conn *c, const uint8_t *p, size_t len)
{
	assert(p != NULL || len == 0);
	while (len > 0) {
		assert(c->wlen < NOISE_PLAINTEXT_BYTES_MAX);
		size_t n = NOISE_PLAINTEXT_BYTES_MAX - c->wlen;
		if (n > len)
			n = len;
		memcpy(c->wmsg + 2 + c->wlen, p, n);
		c->wlen += n;
		p += n;
		len -= n;
		if (c->wlen == NOISE_PLAINTEXT_BYTES_MAX) {
			int rc = pipe_flush(c);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

/* Receives and opens the next transport message into rmsg. */
static int pipe_next(struct stream_conn *c)
{
	assert(c->rpos == c->rlen);
	uint8_t hdr[2];
	int rc = sock_read_full(c, hdr, sizeof(hdr));
	if (rc != 0)
		return io_fail(c, rc);
	size_t len = (size_t)hdr[0] << 8 | hdr[1];
	/* A length no message can have is refused before its bytes. */
	if (len <= NOISE_TAG_BYTES)
		return count(c->ctx, STREAM_R_MALFORMED, SHOAL_EPROTO);
	rc = sock_read_full(c, c->rmsg, len);
	if (rc != 0)
		return io_fail(c, rc);
	size_t plain;
	if (stream_msg_open(&c->rx, c->rmsg, len, &plain) != 0) {
		log_debug("stream_message_refused", "len=%zu", len);
		return count(c->ctx, STREAM_R_MALFORMED, SHOAL_EPROTO);
	}
	c->rpos = 0;
	c->rlen = plain;
	return 0;
}

/* Reads exactly len plaintext bytes from the pipe. */
static int pipe_read(struct stream_conn *c, uint8_t *out, size_t len)
{
	while (len > 0) {
		if (c->rpos == c->rlen) {
			int rc = pipe_next(c);
			if (rc != 0)
				return rc;
		}
		size_t n = c->rlen - c->rpos;
		if (n > len)
			n = len;
		memcpy(out, c->rmsg + c->rpos, n);
		c->rpos += n;
		out += n;
		len -= n;
	}
	return 0;
}

/* --- frames on a conn ---------------------------------------------------- */

int stream_send_frame(struct stream_conn *c, uint8_t type, const uint8_t *payload,
		      size_t len)
{
	assert(c != NULL);
	assert(payload != NULL || len == 0);
	/* Never send what we would refuse to receive: the header alone
	 * tells. The payload is not copied into a frame first, so it may
	 * point anywhere (even into the last received frame). */
	uint8_t hdr[STREAM_FRAME_HEADER_BYTES];
	struct wr w = wr_init(hdr, sizeof(hdr));
	wr_u8(&w, type);
	wr_u32(&w, (uint32_t)(len > UINT32_MAX ? UINT32_MAX : len));
	assert(wr_ok(&w));
	struct stream_frame f;
	size_t need;
	int rc = stream_frame_decode(hdr, sizeof(hdr), &f, &need);
	if (len > STREAM_FRAME_PAYLOAD_BYTES_MAX || (rc != 0 && rc != SHOAL_ETRUNC))
		return count(c->ctx, STREAM_R_LOCAL, SHOAL_ETOOBIG);
	assert(rc == 0 ? len == 0 : need == sizeof(hdr) + len);
	rc = pipe_write(c, hdr, sizeof(hdr));
	if (rc == 0)
		rc = pipe_write(c, payload, len);
	if (rc == 0)
		rc = pipe_flush(c); /* a frame goes out when it ends */
	return rc;
}

int stream_conn_write_raw(struct stream_conn *c, const uint8_t *p, size_t len)
{
	assert(c != NULL);
	int rc = pipe_write(c, p, len);
	return rc ? rc : pipe_flush(c);
}

int stream_recv_frame(struct stream_conn *c, struct stream_frame *out)
{
	assert(c != NULL && out != NULL);
	size_t need;
	int rc = pipe_read(c, c->frame, STREAM_FRAME_HEADER_BYTES);
	if (rc != 0)
		return rc;
	/* The header alone tells a bad frame; only then read its payload. */
	rc = stream_frame_decode(c->frame, STREAM_FRAME_HEADER_BYTES, out, &need);
	if (rc == SHOAL_ETRUNC) {
		assert(need > STREAM_FRAME_HEADER_BYTES && need <= sizeof(c->frame));
		rc = pipe_read(c, c->frame + STREAM_FRAME_HEADER_BYTES,
			       need - STREAM_FRAME_HEADER_BYTES);
		if (rc != 0)
			return rc;
		rc = stream_frame_decode(c->frame, need, out, &need);
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

/* --- the handshake over the socket --------------------------------------- */

static struct stream_conn *conn_new(struct stream_ctx *ctx, int fd, uint64_t deadline_ms)
{
	/* Not zeroed: the three message buffers are written before read. */
	struct stream_conn *c = malloc(sizeof(*c));
	if (c == NULL)
		return NULL;
	c->ctx = ctx;
	c->fd = fd;
	c->deadline_ms = deadline_ms;
	memset(&c->tx, 0, sizeof(c->tx));
	memset(&c->rx, 0, sizeof(c->rx));
	c->rpos = c->rlen = c->wlen = 0;
	return c;
}

/* Closes the socket at once and frees c with its keys wiped (after an
 * error, or once the exchange is over). */
static void conn_abort(struct stream_conn *c)
{
	close(c->fd);
	noise_cipher_wipe(&c->tx);
	noise_cipher_wipe(&c->rx);
	free(c);
}

/* Tells the peer why we close; best effort. */
static void send_error(struct stream_conn *c, const char *why)
{
	if (stream_send_frame(c, STREAM_FRAME_ERROR, (const uint8_t *)why, strlen(why)) != 0)
		log_debug("stream_error_not_sent", "why=\"%s\"", why);
}

static const char *payload_refusal(enum stream_reason why)
{
	switch (why) {
	case STREAM_R_FLEET:
		return "certificate of another fleet";
	case STREAM_R_EXPIRED:
		return "certificate expired";
	case STREAM_R_UNADMITTED:
		return "certificate not admitted";
	case STREAM_R_KEY_MISMATCH:
		return "handshake signature is not by the certificate's key over the Noise key";
	case STREAM_R_PEER_ID:
		return "not the expected node";
	default:
		return "malformed handshake payload";
	}
}

/* Counts a handshake-phase socket failure: a peer that hangs up mid-
 * handshake refused our message (another fleet's prologue, our
 * certificate), so it is a failed handshake, not lost I/O. */
static int hs_io_fail(struct stream_conn *c, int rc)
{
	assert(rc == SHOAL_ETIMEDOUT || rc == SHOAL_ECONN);
	return count(c->ctx, rc == SHOAL_ETIMEDOUT ? STREAM_R_TIMEOUT : STREAM_R_HANDSHAKE, rc);
}

/* Sends one handshake message with its u16 length. */
static int hs_send(struct stream_conn *c, struct noise_handshake *hs, uint8_t *msg, size_t cap)
{
	size_t len;
	int rc = stream_hs_write(c->ctx, hs, msg + 2, cap - 2, &len);
	if (rc != 0)
		return count(c->ctx, STREAM_R_HANDSHAKE, SHOAL_EPROTO); /* a low-order key */
	msg[0] = (uint8_t)(len >> 8);
	msg[1] = (uint8_t)len;
	rc = sock_write_full(c, msg, 2 + len);
	return rc ? hs_io_fail(c, rc) : 0;
}

/* Receives one handshake message and checks it; *why as stream_hs_read. */
static int hs_recv(struct stream_conn *c, struct noise_handshake *hs, uint8_t *msg,
		   const uint8_t *expected, uint64_t now_ms, struct stream_peer *peer,
		   enum stream_reason *why)
{
	uint8_t hdr[2];
	*why = STREAM_R_HANDSHAKE;
	int rc = sock_read_full(c, hdr, sizeof(hdr));
	if (rc != 0)
		return hs_io_fail(c, rc);
	size_t len = (size_t)hdr[0] << 8 | hdr[1];
	/* Refused on its length alone: junk (an HTTP request, another
	 * protocol) is not read on. */
	if (len > stream_hs_msg_max(hs) || len == 0) {
		log_debug("stream_handshake_failed", "len=%zu", len);
		return count(c->ctx, STREAM_R_HANDSHAKE, SHOAL_EPROTO);
	}
	rc = sock_read_full(c, msg, len);
	if (rc != 0)
		return hs_io_fail(c, rc);
	rc = stream_hs_read(c->ctx, hs, msg, len, expected, now_ms, peer, why);
	if (rc != 0) {
		log_debug("stream_handshake_failed", "reason=%s error=\"%s\"",
			  stream_reason_name(*why), shoal_strerror(rc));
		return count(c->ctx, *why, rc);
	}
	return 0;
}

/* Shuts down our side, then waits (within the deadline) for the client to
 * close, so that closing with unread bytes does not reset the connection
 * before the client has read our last frames. Whatever the client still
 * sends is discarded unread. */
static void linger_for_close(struct stream_conn *c)
{
	if (shutdown(c->fd, SHUT_WR) != 0)
		return;
	uint8_t b[256];
	for (;;) {
		if (arm_timeouts(c) != 0)
			return;
		ssize_t n = recv(c->fd, b, sizeof(b), 0);
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
			return;
	}
}

/* Runs the handshake as role on c: the three messages in turn, the
 * payload checks, Split into c's CipherStates. A responder that refuses
 * the client's payload tells it why over the finished channel. On error c
 * is aborted. */
static int establish(struct stream_conn *c, enum noise_role role, const uint8_t *expected,
		     uint64_t now_ms, struct stream_peer *peer)
{
	assert(role == NOISE_INITIATOR || role == NOISE_RESPONDER);
	struct noise_handshake hs;
	struct noise_keypair e;
	uint8_t msg[2 + SHOAL_STREAM_HS_MSG_BYTES_MAX];
	enum stream_reason why = STREAM_R_HANDSHAKE;
	noise_keypair_generate(&e);
	stream_hs_init(c->ctx, role, &e, &hs);
	noise_keypair_wipe(&e);
	int rc = 0;
	while (rc == 0 && hs.step <= NOISE_STEP_MSG3) {
		if (stream_hs_writes(&hs))
			rc = hs_send(c, &hs, msg, sizeof(msg));
		else
			rc = hs_recv(c, &hs, msg, expected, now_ms, peer, &why);
	}
	/* why is only set off HANDSHAKE when a payload was refused. */
	bool refused_payload = rc != 0 && why != STREAM_R_HANDSHAKE;
	bool split = rc == 0 || (refused_payload && role == NOISE_RESPONDER);
	if (split && noise_split(&hs, &c->tx, &c->rx, NULL) == 0 && rc != 0) {
		/* The client may already be sending: read on until it has
		 * our reason and closes, so no reset swallows it. */
		send_error(c, payload_refusal(why));
		linger_for_close(c);
	}
	noise_handshake_wipe(&hs);
	sodium_memzero(msg, sizeof(msg));
	if (rc != 0)
		conn_abort(c);
	return rc;
}

/* stream_connect with its own deadline (mono_ms clock). */
static int connect_until(struct stream_ctx *ctx, const struct shoal_addr *to,
			 const uint8_t *expected_peer_id, uint64_t now_ms,
			 uint64_t deadline_ms, struct stream_conn **out,
			 struct stream_peer *peer)
{
	int fd;
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
	rc = establish(c, NOISE_INITIATOR, expected_peer_id, now_ms, peer);
	if (rc == 0)
		*out = c;
	return rc;
}

int stream_connect(struct stream_ctx *ctx, const struct shoal_addr *to,
		   const uint8_t *expected_peer_id, uint64_t now_ms,
		   struct stream_conn **out, struct stream_peer *peer)
{
	assert(ctx != NULL && to != NULL);
	assert(out != NULL && peer != NULL);
	return connect_until(ctx, to, expected_peer_id, now_ms, mono_ms() + ctx->timeout_ms,
			     out, peer);
}

int stream_accept(struct stream_ctx *ctx, int fd, uint64_t now_ms,
		  struct stream_conn **out, struct stream_peer *peer)
{
	assert(ctx != NULL && fd >= 0);
	assert(out != NULL && peer != NULL);
	/* As on the connecting side. Without it the server's last writes (its
	 * state frame, then its FIN) wait for the client's delayed ACK, 40 ms
	 * on Linux, and both ends finish a push-pull (a join too) late. */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct stream_conn *c = conn_new(ctx, fd, mono_ms() + ctx->timeout_ms);
	if (c == NULL) {
		close(fd);
		return count(ctx, STREAM_R_LOCAL, SHOAL_ENOMEM);
	}
	int rc = establish(c, NOISE_RESPONDER, NULL, now_ms, peer);
	if (rc == 0)
		*out = c;
	return rc;
}

void stream_close(struct stream_conn *c)
{
	if (c == NULL)
		return;
	/* Everything sent went out with its frame; the FIN ends it. */
	assert(c->wlen == 0);
	(void)shutdown(c->fd, SHUT_WR);
	conn_abort(c);
}

/* --- ping (memberlist's TCP fallback for a failed probe) ------------------ */

int stream_ping_client(struct stream_ctx *ctx, const struct shoal_addr *to,
		       const uint8_t *expected_peer_id, uint32_t seq,
		       uint64_t deadline_mono_ms, uint64_t now_ms)
{
	assert(ctx != NULL && to != NULL);
	if (mono_ms() >= deadline_mono_ms)
		return count(ctx, STREAM_R_TIMEOUT, SHOAL_ETIMEDOUT);
	struct stream_conn *c;
	struct stream_peer peer;
	int rc = connect_until(ctx, to, expected_peer_id, now_ms, deadline_mono_ms, &c, &peer);
	if (rc != 0)
		return rc;
	uint8_t p[STREAM_PING_PAYLOAD_BYTES];
	struct wr w = wr_init(p, sizeof(p));
	wr_u32(&w, seq);
	assert(wr_ok(&w));
	struct stream_frame f;
	rc = stream_send_frame(c, STREAM_FRAME_PING, p, sizeof(p));
	if (rc == 0)
		rc = stream_recv_frame(c, &f);
	if (rc == 0 && (f.type != STREAM_FRAME_PONG || memcmp(f.payload, p, sizeof(p)) != 0))
		rc = count(ctx, STREAM_R_MALFORMED, SHOAL_EPROTO);
	if (rc != 0) {
		conn_abort(c);
		return rc;
	}
	stream_close(c);
	count(ctx, STREAM_R_CONNECTED, 0);
	return 0;
}

int stream_ping_serve_conn(struct stream_conn *c, const struct stream_frame *first)
{
	assert(c != NULL && first != NULL && first->type == STREAM_FRAME_PING);
	assert(first->len == STREAM_PING_PAYLOAD_BYTES);
	struct stream_ctx *ctx = c->ctx;
	uint8_t p[STREAM_PING_PAYLOAD_BYTES];
	memcpy(p, first->payload, sizeof(p)); /* (the payload is in c's buffer) */
	int rc = stream_send_frame(c, STREAM_FRAME_PONG, p, sizeof(p));
	if (rc != 0) {
		conn_abort(c);
		return rc;
	}
	linger_for_close(c);
	conn_abort(c);
	return count(ctx, STREAM_R_SERVED, 0);
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
	*remote_state = NULL;
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
