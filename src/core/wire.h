/*
 * wire.h — encoding of the membership core's messages.
 *
 * A UDP payload (sealed by the transport, so authenticated and fresh) is a
 * compound of messages:
 *
 *   payload = version(u8 = 2) | count(u8) | count x msg
 *   msg     = type(u8) | len(u16) | body (len bytes)
 *
 *   PING      seq(u32) | target_id(32)
 *   PING_REQ  seq(u32) | target_id(32) | target_addr | want_nack(u8)
 *   ACK       seq(u32)
 *   NACK      seq(u32)
 *   ALIVE     incarnation(u32) | id(32) | addr | name(str8) | tags_count(u8) | tags(str8 each)
 *   SUSPECT   incarnation(u32) | id_prefix(16) | from_prefix(16)
 *   DEAD      incarnation(u32) | id_prefix(16) | from_prefix(16)  (from == id: left)
 *
 * An accusation (SUSPECT, DEAD) names its subject and accuser by the first
 * SHOAL_NODE_ID_PREFIX_BYTES of their ids: 39 bytes instead of 71, so a
 * packet carries ~29 of them instead of ~16 (version 1 carried whole ids).
 * A decoded accusation's id and from_id hold the prefixes, zero-padded.
 * Unknown types are skipped by length (a newer peer may send more kinds).
 * A push-pull state (over the stream transport) is:
 *
 *   state = version(u8 = 1) | join(u8) | count(u32) | count x entry
 *   entry = id(32) | addr | name(str8) | tags_count(u8) | tags | incarnation(u32) | state(u8)
 *
 * Decoders check everything before the caller acts on any of it.
 */
#ifndef SHOAL_CORE_WIRE_H
#define SHOAL_CORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal/addr.h"
#include "shoal/bytes.h"
#include "shoal/limits.h"

#define WIRE_VERSION 2       /* payloads */
#define WIRE_STATE_VERSION 1 /* push-pull states */
/* The simulator's form of a payload (member_config.sim_gids): the same
 * messages, except that a SUSPECT or DEAD names its subject and accuser by
 * their gids in the directory the simulator's cores share (2 bytes each)
 * instead of their id prefixes (16 each). A core accepts it only when
 * configured for it, which an agent never is: on the network it is an
 * unknown version.
 * Every size decision is made on the wire form's size, so a run is the same
 * run in either form (tests/unit/test_sim.c checks). */
#define WIRE_VERSION_SIM 0x81

enum wire_type {
	WIRE_PING = 1,
	WIRE_PING_REQ = 2,
	WIRE_ACK = 3,
	WIRE_NACK = 4,
	WIRE_ALIVE = 5,
	WIRE_SUSPECT = 6,
	WIRE_DEAD = 7,
};

struct wire_node {
	uint8_t id[SHOAL_NODE_ID_BYTES];
	struct shoal_addr addr;
	char name[SHOAL_NAME_BYTES_MAX + 1];
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
};

struct wire_msg {
	uint8_t type;        /* enum wire_type, or 0 for a skipped unknown type */
	uint32_t seq;        /* PING, PING_REQ, ACK, NACK */
	uint32_t incarnation;/* ALIVE, SUSPECT, DEAD */
	bool want_nack;      /* PING_REQ */
	uint8_t id[SHOAL_NODE_ID_BYTES];      /* target / subject */
	uint8_t from_id[SHOAL_NODE_ID_BYTES]; /* SUSPECT, DEAD */
	struct shoal_addr addr;               /* PING_REQ target, ALIVE */
	char name[SHOAL_NAME_BYTES_MAX + 1];  /* ALIVE */
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
};

/* Decodes a whole payload into msgs (at most SHOAL_MSGS_PER_PACKET_MAX).
 * Returns 0 and sets *count, or SHOAL_EVERSION / SHOAL_EPROTO /
 * SHOAL_ETRUNC / SHOAL_ETRAILING / SHOAL_ETOOBIG. */
int wire_decode_payload(const uint8_t *p, size_t len, struct wire_msg *msgs,
			size_t *count);

/* One message of a payload where wire_scan_payload found it. */
struct wire_item {
	const uint8_t *body; /* in the payload */
	uint16_t len;
	uint8_t type;        /* enum wire_type, or 0 for a skipped unknown type */
};

/* Checks a whole payload exactly as wire_decode_payload does (the same
 * checks, the same errors) but copies only what needs decoding to be
 * checked: items[i] says where each message's body is, and PING_REQ and
 * ALIVE are decoded into msgs[i] (the other msgs[] are untouched). The
 * fixed layouts are then read in place: wire_item_u32 (seq of PING, ACK
 * and NACK; incarnation of SUSPECT and DEAD), wire_item_id (PING target,
 * SUSPECT and DEAD subject) and wire_item_from (SUSPECT and DEAD). For the
 * receiver of nearly every packet: gossip is mostly SUSPECT and DEAD. */
int wire_scan_payload(const uint8_t *p, size_t len, struct wire_item *items,
		      struct wire_msg *msgs, size_t *count);
/* As wire_scan_payload, also accepting the simulator's form when allow_sim
 * (*sim then says which form it was): in that form a SUSPECT or DEAD body
 * is WIRE_SIM_ACCUSATION_BYTES - 3 bytes, read with wire_item_u32,
 * wire_item_gid and wire_item_from_gid. */
int wire_scan_payload_sim(const uint8_t *p, size_t len, bool allow_sim,
			  struct wire_item *items, struct wire_msg *msgs, size_t *count,
			  bool *sim);

static inline uint32_t wire_item_u32(const struct wire_item *it)
{
	const uint8_t *b = it->body;
	return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}
static inline const uint8_t *wire_item_id(const struct wire_item *it) { return it->body + 4; }
/* (a SUSPECT's or DEAD's subject and accuser are id prefixes) */
static inline const uint8_t *wire_item_from(const struct wire_item *it)
{
	return it->body + 4 + SHOAL_NODE_ID_PREFIX_BYTES;
}
/* A SUSPECT's or DEAD's subject and accuser in the simulator's form. */
static inline uint32_t wire_item_gid(const struct wire_item *it)
{
	return ((uint32_t)it->body[4] << 8) | it->body[5];
}
static inline uint32_t wire_item_from_gid(const struct wire_item *it)
{
	return ((uint32_t)it->body[6] << 8) | it->body[7];
}

/* Appends one message to w (body encoded from m). If it does not fit, w's
 * error is set (what was written of it is unspecified). */
void wire_put_msg(struct wr *w, const struct wire_msg *m);
/* Appends a SUSPECT or DEAD (type) straight from its fields, as
 * wire_put_msg would encode it: WIRE_ACCUSATION_BYTES (the ids' prefixes). */
#define WIRE_ACCUSATION_BYTES (3 + 4 + 2 * SHOAL_NODE_ID_PREFIX_BYTES)
static inline void wire_put_accusation(struct wr *w, uint8_t type, uint32_t incarnation,
				       const uint8_t id[SHOAL_NODE_ID_BYTES],
				       const uint8_t from_id[SHOAL_NODE_ID_BYTES])
{
	/* Inline: gossip writes one of these per message it sends. */
	if (w->err || w->cap - w->len < WIRE_ACCUSATION_BYTES) {
		w->err = true;
		return;
	}
	uint8_t *p = w->buf + w->len;
	w->len += WIRE_ACCUSATION_BYTES;
	p[0] = type;
	p[1] = 0;
	p[2] = WIRE_ACCUSATION_BYTES - 3;
	p[3] = (uint8_t)(incarnation >> 24);
	p[4] = (uint8_t)(incarnation >> 16);
	p[5] = (uint8_t)(incarnation >> 8);
	p[6] = (uint8_t)incarnation;
	memcpy(p + 7, id, SHOAL_NODE_ID_PREFIX_BYTES);
	memcpy(p + 7 + SHOAL_NODE_ID_PREFIX_BYTES, from_id, SHOAL_NODE_ID_PREFIX_BYTES);
}
/* Appends a SUSPECT or DEAD in the simulator's form (WIRE_VERSION_SIM):
 * WIRE_SIM_ACCUSATION_BYTES, WIRE_SIM_SAVED fewer than the wire's. */
#define WIRE_SIM_ACCUSATION_BYTES (3 + 4 + 2 + 2)
#define WIRE_SIM_SAVED (WIRE_ACCUSATION_BYTES - WIRE_SIM_ACCUSATION_BYTES)
static inline void wire_put_sim_accusation(struct wr *w, uint8_t type, uint32_t incarnation,
					   uint16_t gid, uint16_t from_gid)
{
	if (w->err || w->cap - w->len < WIRE_SIM_ACCUSATION_BYTES) {
		w->err = true;
		return;
	}
	uint8_t *p = w->buf + w->len;
	w->len += WIRE_SIM_ACCUSATION_BYTES;
	p[0] = type;
	p[1] = 0;
	p[2] = WIRE_SIM_ACCUSATION_BYTES - 3;
	p[3] = (uint8_t)(incarnation >> 24);
	p[4] = (uint8_t)(incarnation >> 16);
	p[5] = (uint8_t)(incarnation >> 8);
	p[6] = (uint8_t)incarnation;
	p[7] = (uint8_t)(gid >> 8);
	p[8] = (uint8_t)gid;
	p[9] = (uint8_t)(from_gid >> 8);
	p[10] = (uint8_t)from_gid;
}
/* Encoded size of one message, header included. */
size_t wire_msg_size(const struct wire_msg *m);

/* Tags / names valid per identity rules (1..max bytes of [A-Za-z0-9._-]). */
bool wire_valid_label(const char *s, size_t max);

/* Push-pull state entries. */
struct wire_state_entry {
	struct wire_node node;
	uint32_t incarnation;
	uint8_t state;
};

void wire_put_state_header(struct wr *w, bool join, uint32_t count);
void wire_put_state_entry(struct wr *w, const struct wire_state_entry *e);
/* Decodes a whole state; *entries is malloc'd (caller frees). */
int wire_decode_state(const uint8_t *p, size_t len, bool *join,
		      struct wire_state_entry **entries, size_t *count);

#endif
