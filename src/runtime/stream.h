/*
 * stream.h — authenticated TCP streams for push-pull state sync (DESIGN §4.2).
 *
 * Handshake: TLS 1.3 only (OpenSSL), ALPN "shoal/1", both ends present a
 * self-signed X.509 certificate whose key IS their Ed25519 node key, and
 * sign the handshake with it (libp2p's TLS handshake binds identities the
 * same way). X.509 chains mean nothing here; after the handshake each end
 * sends its admission certificate as the first frame and the other checks
 * it against the fleet at now_ms and that its node_id equals the peer's
 * TLS public key. So both ends are proven to hold admitted node keys.
 *
 * Frames inside TLS:  type(u8) | len(u32) | payload(len)
 *   whole frame ≤ SHOAL_TCP_FRAME_BYTES_MAX.
 *   CERT        admission certificate (≤ SHOAL_CERT_BYTES_MAX)
 *   STATE_CHUNK a non-empty piece of the sender's state
 *   STATE_END   empty; the state is complete (≤ SHOAL_PUSHPULL_BYTES_MAX)
 *   ERROR       text for the peer's log; the sender closes after it
 *   SYNC        a non-empty replication message (core/sync.h: feed digests,
 *               records, blob chunks); a stream whose first frame after the
 *               CERTs is SYNC is a sync session, not a push-pull
 *
 * Push-pull:
 *   client → CERT;  server checks it, → CERT;  client checks it,
 *   client → STATE_CHUNK* STATE_END;  server → STATE_CHUNK* STATE_END;
 *   close (the server waits for the client's close_notify, so its last
 *   bytes are not lost to a reset).
 *
 * Blocking I/O with a deadline: every exchange must finish within the
 * context's timeout (SHOAL_TCP_TIMEOUT_MS unless changed), enforced with
 * SO_RCVTIMEO/SO_SNDTIMEO set to the time left before each call. The agent
 * runs these in worker threads; a stream_ctx is shared read-only and its
 * counters are atomic. SIGPIPE raised by writes to a closed peer is blocked
 * and consumed in the calling thread, so callers need not ignore it.
 */
#ifndef SHOAL_RUNTIME_STREAM_H
#define SHOAL_RUNTIME_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shoal/addr.h"
#include "shoal/error.h"
#include "shoal/limits.h"
#include "trust/identity.h"

#define STREAM_ALPN "shoal/1"
#define STREAM_FRAME_HEADER_BYTES 5
#define STREAM_FRAME_PAYLOAD_BYTES_MAX \
	(SHOAL_TCP_FRAME_BYTES_MAX - STREAM_FRAME_HEADER_BYTES)

enum stream_frame_type {
	STREAM_FRAME_CERT = 1,
	STREAM_FRAME_STATE_CHUNK = 2,
	STREAM_FRAME_STATE_END = 3,
	STREAM_FRAME_ERROR = 4,
	STREAM_FRAME_SYNC = 5,
};

struct stream_frame {
	uint8_t type;            /* enum stream_frame_type */
	const uint8_t *payload;  /* points into the decoded buffer */
	size_t len;
};

/* Decodes the frame at the start of buf (len bytes available).
 * 0: *out is the frame and *consumed its length (header included).
 * SHOAL_ETRUNC: more bytes are needed; *consumed is how many the whole
 *   frame needs if the header is complete, else STREAM_FRAME_HEADER_BYTES.
 * SHOAL_EPROTO: unknown type, empty chunk, STATE_END with a payload.
 * SHOAL_ETOOBIG: frame over SHOAL_TCP_FRAME_BYTES_MAX, CERT over
 *   SHOAL_CERT_BYTES_MAX.
 * Errors are found from the header alone, before the payload arrives. */
int stream_frame_decode(const uint8_t *buf, size_t len, struct stream_frame *out,
			size_t *consumed) SHOAL_MUST_CHECK;
/* Encodes one frame into out (cap bytes); *out_len is its length.
 * SHOAL_ETOOBIG if it would not decode (see above) or does not fit. */
int stream_frame_encode(uint8_t type, const uint8_t *payload, size_t len,
			uint8_t *out, size_t cap, size_t *out_len) SHOAL_MUST_CHECK;

/* Reassembles a state from STATE_CHUNKs up to STATE_END. */
struct stream_reasm {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool done;
};

void stream_reasm_init(struct stream_reasm *r);
/* Feeds one decoded frame. 0: need more; 1: the state is complete.
 * SHOAL_EPROTO: a CERT, or any frame after STATE_END; SHOAL_ETOOBIG: over
 * SHOAL_PUSHPULL_BYTES_MAX; SHOAL_ECONN: the peer sent ERROR;
 * SHOAL_ENOMEM. On error r is unchanged (still to be freed). */
int stream_reasm_feed(struct stream_reasm *r, const struct stream_frame *f) SHOAL_MUST_CHECK;
/* Hands over the completed state (malloc'd, never NULL, free() it);
 * r is left empty. */
void stream_reasm_take(struct stream_reasm *r, uint8_t **state, size_t *len);
void stream_reasm_free(struct stream_reasm *r);

/* Why streams ended, counted per context. */
enum stream_reason {
	STREAM_R_SERVED = 0,   /* server completed an exchange */
	STREAM_R_CONNECTED,    /* client completed an exchange */
	STREAM_R_CONNECT,      /* SHOAL_ECONN: TCP connect failed */
	STREAM_R_HANDSHAKE,    /* SHOAL_EPROTO: TLS handshake failed */
	STREAM_R_IO,           /* SHOAL_ECONN: reset or closed mid-exchange */
	STREAM_R_TIMEOUT,      /* SHOAL_ETIMEDOUT: deadline passed */
	STREAM_R_MALFORMED,    /* SHOAL_EPROTO: bad frame or certificate */
	STREAM_R_TOO_BIG,      /* SHOAL_ETOOBIG: frame or state over bound */
	STREAM_R_FLEET,        /* SHOAL_EFLEET */
	STREAM_R_UNADMITTED,   /* SHOAL_EUNADMITTED: cert not validly admitted */
	STREAM_R_EXPIRED,      /* SHOAL_EEXPIRED */
	STREAM_R_KEY_MISMATCH, /* SHOAL_EUNADMITTED: cert is not for TLS key */
	STREAM_R_PEER_ID,      /* SHOAL_ENOTFOUND: not the peer we expected */
	STREAM_R_REMOTE_ERROR, /* SHOAL_ECONN: the peer sent ERROR */
	STREAM_R_LOCAL,        /* local failure (ENOMEM, state callback) */
	STREAM_R_COUNT_
};

struct stream_stats {
	uint64_t v[STREAM_R_COUNT_];
};

/* The authenticated peer of a stream. */
struct stream_peer {
	struct admission_cert cert; /* verified; cert.node_id == TLS key */
};

struct stream_ctx;
struct stream_conn;

/* Makes the TLS context for self (which must outlive it): its X.509
 * certificate, TLS 1.3 only, ALPN, peer verification. On error returns
 * NULL with a message in err. */
struct stream_ctx *stream_ctx_new(const struct node_identity *self, char *err,
				  size_t errlen);
void stream_ctx_free(struct stream_ctx *ctx);
/* Changes the per-exchange deadline (default SHOAL_TCP_TIMEOUT_MS); call
 * before sharing ctx between threads. */
void stream_ctx_set_timeout_ms(struct stream_ctx *ctx, uint32_t timeout_ms);
void stream_stats_get(const struct stream_ctx *ctx, struct stream_stats *out);
const char *stream_reason_name(enum stream_reason r);
/* "served=N connected=N ..." into out (NUL terminated, truncated to cap);
 * returns the length it needed. */
size_t stream_stats_format(const struct stream_stats *s, char *out, size_t cap);
/* {"served": N, ...} or NULL on ENOMEM. */
json_t *stream_stats_json(const struct stream_stats *s);

/* A TCP listening socket on bind (SO_REUSEADDR, close-on-exec).
 * SHOAL_EIO (errno set). */
int stream_listen(const struct shoal_addr *bind, int *fd_out) SHOAL_MUST_CHECK;
/* The address a socket is bound to (e.g. after binding port 0). */
int stream_bound_addr(int fd, struct shoal_addr *out) SHOAL_MUST_CHECK;

/* Connects to `to`, runs the TLS handshake and the CERT exchange (checked at
 * now_ms; when expected_peer_id is not NULL the peer must be that node).
 * On success *out is an open conn and *peer its peer; the conn's deadline
 * is the context timeout from now. */
int stream_connect(struct stream_ctx *ctx, const struct shoal_addr *to,
		   const uint8_t *expected_peer_id, uint64_t now_ms,
		   struct stream_conn **out, struct stream_peer *peer) SHOAL_MUST_CHECK;
/* Server side of the same for one accepted socket; takes ownership of fd
 * (closed on error, or by stream_close). */
int stream_accept(struct stream_ctx *ctx, int fd, uint64_t now_ms,
		  struct stream_conn **out, struct stream_peer *peer) SHOAL_MUST_CHECK;
/* Sends one frame. */
int stream_send_frame(struct stream_conn *c, uint8_t type, const uint8_t *payload,
		      size_t len) SHOAL_MUST_CHECK;
/* Receives one frame; its payload stays valid until the next receive. */
int stream_recv_frame(struct stream_conn *c, struct stream_frame *out) SHOAL_MUST_CHECK;
/* Sends a state (≤ SHOAL_PUSHPULL_BYTES_MAX) as chunks and STATE_END. */
int stream_send_state(struct stream_conn *c, const uint8_t *state, size_t len) SHOAL_MUST_CHECK;
/* Receives a state up to STATE_END; *state is malloc'd (free() it). */
int stream_recv_state(struct stream_conn *c, uint8_t **state, size_t *len) SHOAL_MUST_CHECK;
/* Moves the conn's deadline to ms from now (a sync session or a blob
 * transfer may outlive one push-pull's timeout; the caller bounds it). */
void stream_conn_set_deadline(struct stream_conn *c, uint32_t ms);
/* Counts an exchange that ended for `reason` (callers that drive their own
 * protocol over a conn report how it ended); returns rc. */
int stream_count(struct stream_ctx *ctx, enum stream_reason reason, int rc);
/* Sends bytes as they are, unframed: fault injection for tests only. */
int stream_conn_write_raw(struct stream_conn *c, const uint8_t *p, size_t len) SHOAL_MUST_CHECK;
/* Sends close_notify, closes the socket, frees c. */
void stream_close(struct stream_conn *c);

/* One push-pull as the client: sends local_state, returns the server's in
 * *remote_state (malloc'd, free() it). */
int stream_pushpull_client(struct stream_ctx *ctx, const struct shoal_addr *to,
			   const uint8_t *expected_peer_id,
			   const uint8_t *local_state, size_t local_len,
			   uint8_t **remote_state, size_t *remote_len,
			   struct stream_peer *peer, uint64_t now_ms) SHOAL_MUST_CHECK;

/* Called by the server once the client's state has arrived: sets *state to
 * a malloc'd buffer (the server frees it) and *len; returns 0 or SHOAL_E*. */
typedef int (*stream_state_fn)(void *arg, uint8_t **state, size_t *len);

/* Server side of a push-pull on an accepted conn whose first frame (a
 * STATE_CHUNK or STATE_END) the caller already read with
 * stream_recv_frame: reads the rest of the client's state, sends ours,
 * closes c (always). */
int stream_pushpull_serve_conn(struct stream_conn *c, const struct stream_frame *first,
			       stream_state_fn get_local_state, void *arg,
			       uint8_t **remote_state, size_t *remote_len) SHOAL_MUST_CHECK;
/* One push-pull as the server on an accepted socket (owned, always closed):
 * handshake, certificate check, reads the client's state, then calls
 * get_local_state and sends the result. */
int stream_pushpull_serve(struct stream_ctx *ctx, int conn_fd,
			  stream_state_fn get_local_state, void *arg,
			  uint8_t **remote_state, size_t *remote_len,
			  struct stream_peer *peer, uint64_t now_ms) SHOAL_MUST_CHECK;

#endif
