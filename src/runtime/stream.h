/*
 * stream.h — authenticated, encrypted TCP streams for push-pull state sync,
 * replication sync and blob transfer (DESIGN §4.2).
 *
 * Secure channel: Noise_XX_25519_ChaChaPoly_SHA256 (runtime/noise.h), the
 * way libp2p's "noise" secure channel uses it:
 *
 *   prologue   "shoal/1" || fleet_id(16)   (another fleet fails the MACs)
 *   -> e                                    msg 1, empty payload
 *   <- e, ee, s, es                         msg 2, payload: responder's
 *   -> s, se                                msg 3, payload: initiator's
 *
 *   payload  = cert_len(u16) | cert | sig(64)
 *     cert   the sender's admission certificate (identity.h encoding)
 *     sig    Ed25519 by the sender's node key over
 *            "shoal-noise-static-key:" || the sender's Noise static key
 *
 * Each context has a fresh X25519 static key (made by stream_ctx_new); the
 * signature binds it to the node key, as libp2p binds its Noise key to the
 * peer's identity key. Each side checks the other's payload: the
 * certificate against the fleet at now_ms, the signature with cert.node_id
 * over the static key Noise authenticated (rs), and, for a client that
 * names one, the expected node. So both ends are proven to hold admitted
 * node keys, and a man in the middle cannot relay a payload signed for its
 * victim's static key.
 *
 * Every Noise message, handshake or transport, travels as
 * len(u16, big-endian) | message   (len ≤ 65535, the spec's bound).
 * After the handshake the two CipherStates are an encrypted byte pipe;
 * frames ride on it and may span messages:
 *
 * Frames:  type(u8) | len(u32) | payload(len)
 *   whole frame ≤ SHOAL_TCP_FRAME_BYTES_MAX.
 *   STATE_CHUNK a non-empty piece of the sender's state
 *   STATE_END   empty; the state is complete (≤ SHOAL_PUSHPULL_BYTES_MAX)
 *   ERROR       text for the peer's log; the sender closes after it
 *   SYNC        a non-empty replication message (core/sync.h: feed digests,
 *               records, blob chunks); a stream whose first frame is SYNC
 *               is a sync session, not a push-pull
 *   (type 1 was CERT, which TLS needed after its handshake; it is refused)
 *
 * Push-pull:
 *   client → STATE_CHUNK* STATE_END;  server → STATE_CHUNK* STATE_END;
 *   the server shuts down its write side and reads until the client
 *   closes, so its last bytes are not lost to a reset. Ends are explicit
 *   (STATE_END, a sync FIN), so a cut stream is an error, never a short
 *   state: no close_notify is needed.
 *
 * Blocking I/O with a deadline: every exchange must finish within the
 * context's timeout (SHOAL_TCP_TIMEOUT_MS unless changed), enforced with
 * SO_RCVTIMEO/SO_SNDTIMEO set to the time left before each call. The agent
 * runs these in worker threads; a stream_ctx is shared read-only and its
 * counters are atomic. Writes use MSG_NOSIGNAL: writing to a peer that went
 * away fails with SHOAL_ECONN instead of raising SIGPIPE, so callers need
 * not ignore it.
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
#include "runtime/noise.h"
#include "trust/identity.h"

/* The prologue is STREAM_PROTOCOL || fleet_id. */
#define STREAM_PROTOCOL "shoal/1"
#define STREAM_PROLOGUE_BYTES (sizeof(STREAM_PROTOCOL) - 1 + SHOAL_FLEET_ID_BYTES)
/* The node key signs STREAM_STATIC_KEY_DOMAIN || Noise static key. */
#define STREAM_STATIC_KEY_DOMAIN "shoal-noise-static-key:"
#define STREAM_FRAME_HEADER_BYTES 5
#define STREAM_FRAME_PAYLOAD_BYTES_MAX \
	(SHOAL_TCP_FRAME_BYTES_MAX - STREAM_FRAME_HEADER_BYTES)

enum stream_frame_type {
	/* 1 was CERT (TLS only); refused as unknown. */
	STREAM_FRAME_STATE_CHUNK = 2,
	STREAM_FRAME_STATE_END = 3,
	STREAM_FRAME_ERROR = 4,
	STREAM_FRAME_SYNC = 5,
	STREAM_FRAME_PING = 6,   /* the probe's seq (u32): are you up? */
	STREAM_FRAME_PONG = 7,   /* the same seq back */
};
#define STREAM_PING_PAYLOAD_BYTES 4

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
 * SHOAL_ETOOBIG: frame over SHOAL_TCP_FRAME_BYTES_MAX.
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
 * SHOAL_EPROTO: a SYNC, or any frame after STATE_END; SHOAL_ETOOBIG: over
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
	STREAM_R_HANDSHAKE,    /* SHOAL_EPROTO: the Noise handshake failed (bad
				* length, bad MAC: tampered, replayed, another
				* fleet's prologue), or SHOAL_ECONN: the peer hung
				* up during it (it refused our message) */
	STREAM_R_IO,           /* SHOAL_ECONN: reset or closed mid-exchange */
	STREAM_R_TIMEOUT,      /* SHOAL_ETIMEDOUT: deadline passed */
	STREAM_R_MALFORMED,    /* SHOAL_EPROTO: bad frame, handshake payload or
				* certificate, or a transport message that fails
				* its MAC or length */
	STREAM_R_TOO_BIG,      /* SHOAL_ETOOBIG: frame or state over bound */
	STREAM_R_FLEET,        /* SHOAL_EFLEET */
	STREAM_R_UNADMITTED,   /* SHOAL_EUNADMITTED: cert not validly admitted */
	STREAM_R_EXPIRED,      /* SHOAL_EEXPIRED */
	STREAM_R_KEY_MISMATCH, /* SHOAL_EUNADMITTED: the payload's signature is
				* not by cert.node_id over the Noise static key
				* the peer used */
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
	struct admission_cert cert; /* verified; cert.node_id signed the peer's
				     * Noise static key */
};

struct stream_ctx;
struct stream_conn;

/* Makes the stream context for self (which must outlive it): a fresh Noise
 * static key pair, the prologue of self's fleet and the handshake payload
 * (self's certificate, the node key's signature over the static key). On
 * error returns NULL with a message in err. */
struct stream_ctx *stream_ctx_new(const struct node_identity *self, char *err,
				  size_t errlen);
void stream_ctx_free(struct stream_ctx *ctx);
/* Replaces the context's Noise static key pair and re-signs the payload;
 * tests and fuzzing replay handshakes from fixed keys with it. Call before
 * sharing ctx between threads. */
void stream_ctx_set_noise_static(struct stream_ctx *ctx, const struct noise_keypair *s);
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

/* Connects to `to` and runs the handshake as the initiator (the peer's
 * payload checked at now_ms; when expected_peer_id is not NULL the peer must
 * be that node). The server checks our payload after the client's last
 * handshake message, so a refusal shows as an ERROR frame on the first
 * receive (SHOAL_ECONN, counted remote_error).
 * On success *out is an open conn and *peer its peer; the conn's deadline
 * is the context timeout from now. */
int stream_connect(struct stream_ctx *ctx, const struct shoal_addr *to,
		   const uint8_t *expected_peer_id, uint64_t now_ms,
		   struct stream_conn **out, struct stream_peer *peer) SHOAL_MUST_CHECK;
/* Server side of the same for one accepted socket; takes ownership of fd
 * (closed on error, or by stream_close). A client whose payload fails is
 * told why in an ERROR frame. */
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
/* Sends bytes as they are through the encrypted pipe, unframed: fault
 * injection for tests only. */
int stream_conn_write_raw(struct stream_conn *c, const uint8_t *p, size_t len) SHOAL_MUST_CHECK;
/* Shuts down the write side (FIN), closes the socket, wipes the keys,
 * frees c. */
void stream_close(struct stream_conn *c);

/* One push-pull as the client: sends local_state, returns the server's in
 * *remote_state (malloc'd, free() it). */
int stream_pushpull_client(struct stream_ctx *ctx, const struct shoal_addr *to,
			   const uint8_t *expected_peer_id,
			   const uint8_t *local_state, size_t local_len,
			   uint8_t **remote_state, size_t *remote_len,
			   struct stream_peer *peer, uint64_t now_ms) SHOAL_MUST_CHECK;

/* memberlist's TCP ping: connects to `to` (whose node id must be
 * expected_peer_id when that is given), sends PING(seq) and waits for
 * PONG(seq), all before deadline_mono_ms (mono_ms clock). 0: the peer
 * proved its key and answered; else SHOAL_ETIMEDOUT, SHOAL_ECONN,
 * SHOAL_EPROTO (a wrong answer) or a handshake refusal. */
int stream_ping_client(struct stream_ctx *ctx, const struct shoal_addr *to,
		       const uint8_t *expected_peer_id, uint32_t seq,
		       uint64_t deadline_mono_ms, uint64_t now_ms) SHOAL_MUST_CHECK;
/* Server side of a ping on an accepted conn whose first frame (a PING)
 * the caller already read: answers PONG with its seq, closes c (always). */
int stream_ping_serve_conn(struct stream_conn *c, const struct stream_frame *first);

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
 * handshake, payload check, reads the client's state, then calls
 * get_local_state and sends the result. */
int stream_pushpull_serve(struct stream_ctx *ctx, int conn_fd,
			  stream_state_fn get_local_state, void *arg,
			  uint8_t **remote_state, size_t *remote_len,
			  struct stream_peer *peer, uint64_t now_ms) SHOAL_MUST_CHECK;

/* --- the handshake and transport messages, sans-IO ----------------------
 * stream_connect and stream_accept run these over the socket; tests and
 * fuzz/fuzz_noise.c drive them directly. */

/* The prologue of a fleet: STREAM_PROTOCOL || fleet_id. */
void stream_prologue(const uint8_t fleet_id[SHOAL_FLEET_ID_BYTES],
		     uint8_t out[STREAM_PROLOGUE_BYTES]);
/* Encodes self's handshake payload for Noise static key static_pub:
 * cert_len(u16) | cert | Ed25519(node key, STREAM_STATIC_KEY_DOMAIN ||
 * static_pub). */
int stream_hs_payload_encode(const struct node_identity *self,
			     const uint8_t static_pub[NOISE_DH_BYTES], uint8_t *out,
			     size_t cap, size_t *len) SHOAL_MUST_CHECK;
/* Checks a peer's handshake payload: its syntax (nothing trailing), the
 * certificate against fleet at now_ms, the signature by cert.node_id over
 * rs (the static key Noise authenticated), expected_peer_id if not NULL.
 * 0 with *cert the peer's certificate; else the error and in *why its
 * reason: MALFORMED (SHOAL_EPROTO), FLEET, EXPIRED, UNADMITTED
 * (SHOAL_EUNADMITTED), KEY_MISMATCH (SHOAL_EUNADMITTED), PEER_ID
 * (SHOAL_ENOTFOUND). */
int stream_hs_payload_check(const uint8_t *p, size_t len, const uint8_t rs[NOISE_DH_BYTES],
			    const struct fleet_public *fleet,
			    const uint8_t *expected_peer_id, uint64_t now_ms,
			    struct admission_cert *cert, enum stream_reason *why) SHOAL_MUST_CHECK;
/* Starts ctx's side of a handshake in role with ephemeral key pair e (from
 * noise_keypair_generate; fixed ones replay a run). */
void stream_hs_init(const struct stream_ctx *ctx, enum noise_role role,
		    const struct noise_keypair *e, struct noise_handshake *hs);
/* True when this side writes the next handshake message. */
bool stream_hs_writes(const struct noise_handshake *hs);
/* The longest next message the peer may send: msg 1 is exactly
 * NOISE_MSG1_OVERHEAD_BYTES (an empty payload), msgs 2 and 3 carry at most
 * SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX. A longer length prefix is refused
 * before its bytes are read. */
size_t stream_hs_msg_max(const struct noise_handshake *hs);
/* Writes this side's next handshake message (msg 1 with an empty payload,
 * msg 2 or 3 with ctx's payload) into out (cap bytes, at least
 * SHOAL_STREAM_HS_MSG_BYTES_MAX). */
int stream_hs_write(const struct stream_ctx *ctx, struct noise_handshake *hs, uint8_t *out,
		    size_t cap, size_t *len) SHOAL_MUST_CHECK;
/* Reads the peer's next handshake message and, for msgs 2 and 3, checks
 * its payload (stream_hs_payload_check against ctx's fleet). 0, with *peer
 * set after msg 2 or 3; else the error and its reason in *why: HANDSHAKE
 * (SHOAL_EPROTO: wrong length, bad MAC, bad key) or a payload reason. After
 * a payload failure the Noise handshake itself is complete (a responder can
 * still split and tell the client why). */
int stream_hs_read(const struct stream_ctx *ctx, struct noise_handshake *hs,
		   const uint8_t *msg, size_t len, const uint8_t *expected_peer_id,
		   uint64_t now_ms, struct stream_peer *peer,
		   enum stream_reason *why) SHOAL_MUST_CHECK;
/* Opens one transport message (the len bytes after its u16 length) in
 * place with rx: 0 and *plain_len ≥ 1 plaintext bytes at msg, or
 * SHOAL_EPROTO (nothing delivered, rx unchanged): empty, shorter than a
 * tag plus one byte, over SHOAL_NOISE_MSG_BYTES_MAX, or failing its MAC. */
int stream_msg_open(struct noise_cipher *rx, uint8_t *msg, size_t len,
		    size_t *plain_len) SHOAL_MUST_CHECK;
/* Seals plain[len] (1..NOISE_PLAINTEXT_BYTES_MAX) into out as one transport
 * message with its u16 length: 2 + len + NOISE_TAG_BYTES bytes. out + 2
 * may be plain (in place). */
int stream_msg_seal(struct noise_cipher *tx, const uint8_t *plain, size_t len,
		    uint8_t *out) SHOAL_MUST_CHECK;

#endif
