/*
 * seal.h — sealing and opening of shoal's UDP packets (DESIGN §4.2).
 *
 * Wire form of one datagram (at most SHOAL_UDP_PACKET_BYTES_MAX bytes):
 *
 *   version(u8 = 1) | key_id(4) | nonce(24) | ciphertext
 *
 *   key_id     first 4 bytes of BLAKE2b-256(gossip key): picks the key of
 *              the keyring to try, so a ring of several keys costs one
 *              decryption, and keys rotate without downtime.
 *   ciphertext XChaCha20-Poly1305-IETF of the plaintext under the gossip
 *              key, AD = the 29 header bytes before it.
 *
 * Plaintext:
 *
 *   seq(u64) | cert_len(u16) | cert | payload_len(u16) | payload | sig(64)
 *
 *   cert  the sender's admission certificate (identity.h encoding)
 *   sig   Ed25519 by the sender's node key over
 *         "shoal/packet/v1" || fleet_id(16) || the plaintext before sig
 *
 * The gossip key keeps outsiders out; the admission certificate and the
 * signature prove which admitted node sent the packet; (sender, seq) with a
 * 64-bit sliding window (RFC 6479 style, as WireGuard and IPsec) drops
 * replays. Receiving order: size, version, key, MAC, syntax, certificate
 * (fleet, admission, expiry), signature, self, replay. The replay window is
 * updated only once all of these have passed.
 *
 * No I/O and no clock: the caller passes now_ms. Random nonces come from
 * libsodium. A seal_ctx is not thread-safe; the agent owns one per loop.
 */
#ifndef SHOAL_RUNTIME_SEAL_H
#define SHOAL_RUNTIME_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shoal/error.h"
#include "shoal/limits.h"
#include "trust/identity.h"

#define SEAL_VERSION 1
#define SEAL_DOMAIN "shoal/packet/v1"
#define SEAL_KEY_ID_BYTES 4
#define SEAL_NONCE_BYTES 24
#define SEAL_HEADER_BYTES (1 + SEAL_KEY_ID_BYTES + SEAL_NONCE_BYTES)
#define SEAL_MAC_BYTES 16
#define SEAL_SIG_BYTES 64
/* Plaintext bytes besides cert and payload: seq, two lengths, sig. */
#define SEAL_PLAIN_FIXED_BYTES (8 + 2 + 2 + SEAL_SIG_BYTES)
#define SEAL_OVERHEAD_BYTES \
	(SEAL_HEADER_BYTES + SEAL_MAC_BYTES + SEAL_PLAIN_FIXED_BYTES)
/* The most plaintext a packet can hold (cert and payload share it). */
#define SEAL_PLAIN_BYTES_MAX \
	(SHOAL_UDP_PACKET_BYTES_MAX - SEAL_HEADER_BYTES - SEAL_MAC_BYTES)
/* Entries in the verified-certificate cache (SEAL_CACHE_WAYS per set). */
#define SEAL_CACHE_SETS 256
#define SEAL_CACHE_WAYS 4

/* One counter per way a packet ends. */
struct seal_stats {
	uint64_t sent;        /* packets sealed */
	uint64_t accepted;    /* packets opened and passed every check */
	uint64_t too_big;     /* SHOAL_ETOOBIG: over the packet bound */
	uint64_t truncated;   /* SHOAL_ETRUNC: shorter than header + MAC */
	uint64_t version;     /* SHOAL_EVERSION */
	uint64_t unknown_key; /* SHOAL_EBADMAC: key_id matches no ring key */
	uint64_t bad_mac;     /* SHOAL_EBADMAC: decryption failed */
	uint64_t malformed;   /* SHOAL_EPROTO: plaintext or cert syntax */
	uint64_t fleet;       /* SHOAL_EFLEET: cert of another fleet */
	uint64_t unadmitted;  /* SHOAL_EUNADMITTED: cert not validly admitted */
	uint64_t expired;     /* SHOAL_EEXPIRED: cert expired at now_ms */
	uint64_t bad_sig;     /* SHOAL_EBADSIG: sender signature invalid */
	uint64_t self;        /* SHOAL_EREPLAY: our own packet came back */
	uint64_t replay;      /* SHOAL_EREPLAY: seen or older than window */
};

/* Who sent an accepted packet, from its admission certificate. */
struct seal_sender {
	uint8_t node_id[SHOAL_NODE_ID_BYTES];
	char name[SHOAL_NAME_BYTES_MAX + 1];
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
	uint64_t cert_expires_ms;
	uint64_t seq;
};

/* The decoded plaintext; pointers point into the decoded buffer. */
struct seal_plain {
	uint64_t seq;
	const uint8_t *cert;
	size_t cert_len;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *sig;
	size_t signed_len; /* plaintext bytes covered by sig (all before it) */
};

struct seal_cache;
struct seal_replay;

struct seal_ctx {
	const struct node_identity *self;
	struct gossip_keyring ring;
	uint8_t key_ids[SHOAL_GOSSIP_KEYS_MAX][SEAL_KEY_ID_BYTES];
	uint64_t next_seq;
	struct seal_cache *cache;
	struct seal_replay *replay;
	struct seal_stats stats;
	/* Scratch: the last opened plaintext (payload points here) and the
	 * message a signature covers. */
	uint8_t plain[SHOAL_UDP_PACKET_BYTES_MAX];
	uint8_t signed_msg[sizeof(SEAL_DOMAIN) - 1 + SHOAL_FLEET_ID_BYTES +
			   SHOAL_UDP_PACKET_BYTES_MAX];
};

/* Sets up ctx for the node `self` (which must outlive ctx) with self's
 * keyring; packets sealed carry seq initial_seq, initial_seq + 1, ...
 * The caller should choose initial_seq above any seq it sent before (e.g.
 * from the wall clock in ms << 20), since receivers drop older ones.
 * SHOAL_ENOMEM; SHOAL_EINVAL if self's keyring is empty. */
int seal_ctx_init(struct seal_ctx *ctx, const struct node_identity *self,
		  uint64_t initial_seq) SHOAL_MUST_CHECK;
/* Frees tables and wipes the keyring copy. */
void seal_ctx_free(struct seal_ctx *ctx);

/* Replaces the keyring (e.g. after `shoal keys rotate`): seals with
 * ring->keys[0], opens with any of them. SHOAL_EINVAL if ring->count is not
 * 1..SHOAL_GOSSIP_KEYS_MAX; on error the old ring stays. */
int seal_ctx_set_keyring(struct seal_ctx *ctx,
			 const struct gossip_keyring *ring) SHOAL_MUST_CHECK;

/* The largest payload self can seal: what a packet leaves after the
 * envelope and self's certificate (SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT). */
size_t seal_payload_max(const struct node_identity *self);

/* Seals payload (at most seal_payload_max(ctx->self) bytes) with the
 * primary key and the next seq into out (cap bytes); *out_len is the
 * datagram length. SHOAL_ETOOBIG if payload or output does not fit,
 * SHOAL_EFULL if seq is exhausted. */
int seal_packet(struct seal_ctx *ctx, const uint8_t *payload, size_t len,
		uint8_t *out, size_t cap, size_t *out_len) SHOAL_MUST_CHECK;

/* Opens one received datagram. On success fills *sender and points
 * *payload into ctx (valid until the next seal_open on ctx).
 * On failure returns the SHOAL_E* of the first failed check (see
 * struct seal_stats), counts it, and changes nothing else: in particular
 * the sender's replay window is left as it was. A packet from our own
 * node id is SHOAL_EREPLAY (counted as `self`). */
int seal_open(struct seal_ctx *ctx, const uint8_t *pkt, size_t len,
	      uint64_t now_ms, struct seal_sender *sender,
	      const uint8_t **payload, size_t *payload_len) SHOAL_MUST_CHECK;

/* Decodes a plaintext (exactly len bytes) without checking anything but
 * syntax and bounds: SHOAL_ETRUNC, SHOAL_ETOOBIG, SHOAL_ETRAILING. */
int seal_decode_plain(const uint8_t *plain, size_t len,
		      struct seal_plain *out) SHOAL_MUST_CHECK;

/* Lowers the number of senders tracked (default and upper bound
 * SHOAL_REPLAY_SENDERS_MAX) to bound memory; beyond it the sender heard
 * from least recently is evicted, and its older packets could be replayed
 * once. Only before any packet was accepted: SHOAL_ESTATE after,
 * SHOAL_EINVAL outside 1..SHOAL_REPLAY_SENDERS_MAX. */
int seal_ctx_set_replay_senders_max(struct seal_ctx *ctx,
				    size_t senders_max) SHOAL_MUST_CHECK;
/* Number of senders whose replay windows are tracked. */
size_t seal_replay_count(const struct seal_ctx *ctx);

/* Formats stats as "sent=N accepted=N too_big=N ..." into out (NUL
 * terminated, truncated to cap). Returns the length it needed. */
size_t seal_stats_format(const struct seal_stats *s, char *out, size_t cap);
/* Returns stats as a new JSON object {"sent": N, ...}, or NULL on ENOMEM. */
json_t *seal_stats_json(const struct seal_stats *s);

#endif
