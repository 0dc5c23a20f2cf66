/* wire.c — membership message and push-pull state codecs (see wire.h). */
#include "core/wire.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/error.h"

bool wire_valid_label(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

static bool get_label(struct rd *r, char *out, size_t max)
{
	return rd_str8(r, out, max) && wire_valid_label(out, max);
}

static bool get_tags(struct rd *r, uint8_t *count,
		     char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1])
{
	if (!rd_u8(r, count) || *count > SHOAL_TAGS_COUNT_MAX)
		return false;
	for (uint8_t i = 0; i < *count; i++)
		if (!get_label(r, tags[i], SHOAL_TAG_BYTES_MAX))
			return false;
	return true;
}

static void put_tags(struct wr *w, uint8_t count,
		     const char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1])
{
	assert(count <= SHOAL_TAGS_COUNT_MAX);
	wr_u8(w, count);
	for (uint8_t i = 0; i < count; i++)
		wr_str8(w, tags[i], SHOAL_TAG_BYTES_MAX);
}

/* The fixed-layout messages (PING, ACK, NACK, SUSPECT, DEAD: nearly all of
 * what gossip carries) are read and written with one bounds check each
 * instead of a reader or writer call per field; the bytes and the checks
 * are the same as the general path's. */
static size_t fixed_body_bytes(uint8_t type)
{
	switch (type) {
	case WIRE_PING: return 4 + SHOAL_NODE_ID_BYTES;
	case WIRE_ACK:
	case WIRE_NACK: return 4;
	case WIRE_SUSPECT:
	case WIRE_DEAD: return 4 + 2 * SHOAL_NODE_ID_PREFIX_BYTES;
	default: return 0;
	}
}

static uint32_t be32_get(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Decodes a fixed-layout body of exactly fixed_body_bytes(type) bytes. */
static void decode_fixed(uint8_t type, const uint8_t *b, struct wire_msg *m)
{
	switch (type) {
	case WIRE_PING:
		m->seq = be32_get(b);
		memcpy(m->id, b + 4, SHOAL_NODE_ID_BYTES);
		break;
	case WIRE_ACK:
	case WIRE_NACK:
		m->seq = be32_get(b);
		break;
	default:
		assert(type == WIRE_SUSPECT || type == WIRE_DEAD);
		m->incarnation = be32_get(b);
		memcpy(m->id, b + 4, SHOAL_NODE_ID_PREFIX_BYTES);
		memcpy(m->from_id, b + 4 + SHOAL_NODE_ID_PREFIX_BYTES,
		       SHOAL_NODE_ID_PREFIX_BYTES);
		break;
	}
}

/* Reserves a whole message of body n in w: its header written, the body's
 * place returned; NULL (and the writer's error set) if it does not fit. */
static uint8_t *msg_room(struct wr *w, uint8_t type, size_t n)
{
	assert(n <= 0xffff);
	if (w->err || w->cap - w->len < 3 + n) {
		w->err = true;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	w->len += 3 + n;
	p[0] = type;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)n;
	return p + 3;
}


/* Decodes the body of one of the two variable-length types (PING_REQ,
 * ALIVE; the fixed-size ones go through decode_fixed); the body must be
 * consumed. */
static bool decode_body(uint8_t type, struct rd *b, struct wire_msg *m)
{
	switch (type) {
	case WIRE_PING_REQ: {
		uint8_t nack;
		if (!rd_u32(b, &m->seq) || !rd_copy(b, m->id, sizeof(m->id)) ||
		    !addr_get(b, &m->addr) || !rd_u8(b, &nack) || nack > 1)
			return false;
		m->want_nack = nack;
		return true;
	}
	case WIRE_ALIVE:
		return rd_u32(b, &m->incarnation) && rd_copy(b, m->id, sizeof(m->id)) &&
		       addr_get(b, &m->addr) &&
		       get_label(b, m->name, SHOAL_NAME_BYTES_MAX) &&
		       get_tags(b, &m->tags_count, m->tags);
	default:
		assert(0 && "fixed-size types are decoded by decode_fixed");
		return false;
	}
}

/* The one payload checker behind wire_decode_payload and
 * wire_scan_payload. items (optional): where each message's body is.
 * fill_all: decode every message into msgs; otherwise only PING_REQ and
 * ALIVE (the layouts that need decoding to be checked). */
static int scan_payload(const uint8_t *p, size_t len, struct wire_item *items,
			struct wire_msg *msgs, size_t *count, bool fill_all, bool allow_sim,
			bool *sim_out)
{
	struct rd r = rd_init(p, len);
	uint8_t version, n;
	if (len > SHOAL_UDP_PAYLOAD_BYTES_MAX)
		return SHOAL_ETOOBIG;
	if (!rd_u8(&r, &version))
		return SHOAL_ETRUNC;
	bool sim = allow_sim && version == WIRE_VERSION_SIM;
	if (version != WIRE_VERSION && !sim)
		return SHOAL_EVERSION;
	/* (fill_all decodes ids, which the simulator's form does not carry) */
	assert(!(sim && fill_all));
	const size_t accusation_body = sim ? WIRE_SIM_ACCUSATION_BYTES - 3
					   : WIRE_ACCUSATION_BYTES - 3;
	if (!rd_u8(&r, &n))
		return SHOAL_ETRUNC;
	if (n == 0 || n > SHOAL_MSGS_PER_PACKET_MAX)
		return SHOAL_EPROTO;
	for (uint8_t i = 0; i < n; i++) {
		/* type(u8) | len(u16) | body: the header and the body must be
		 * there (rd_u8 then rd_len16, in one check). */
		if (rd_left(&r) < 3)
			return SHOAL_ETRUNC;
		uint8_t type = r.p[0];
		size_t body_len = ((size_t)r.p[1] << 8) | r.p[2];
		if (rd_left(&r) - 3 < body_len)
			return SHOAL_ETRUNC;
		struct rd body = rd_init(r.p + 3, body_len);
		r.p += 3 + body_len;
		r.len -= 3 + body_len;
		if ((type == WIRE_SUSPECT || type == WIRE_DEAD) && body_len == accusation_body &&
		    items && !fill_all) {
			/* Most of what gossip carries: nothing to decode. */
			items[i].body = body.p;
			items[i].len = (uint16_t)body_len;
			items[i].type = type;
			continue;
		}
		bool known = type >= WIRE_PING && type <= WIRE_DEAD;
		if (items) {
			items[i].body = body.p;
			items[i].len = (uint16_t)body_len;
			items[i].type = known ? type : 0;
		}
		struct wire_msg *m = &msgs[i];
		size_t fixed = known ? fixed_body_bytes(type) : 0;
		if (sim && (type == WIRE_SUSPECT || type == WIRE_DEAD))
			fixed = WIRE_SIM_ACCUSATION_BYTES - 3;
		if (!known || fixed) {
			if (fixed && body_len != fixed)
				return SHOAL_EPROTO;
			if (fill_all) {
				memset(m, 0, sizeof(*m));
				m->type = known ? type : 0; /* unknown: skipped by length */
				if (known)
					decode_fixed(type, body.p, m);
			}
			continue;
		}
		memset(m, 0, sizeof(*m));
		m->type = type;
		if (!decode_body(type, &body, m) || !rd_empty(&body))
			return SHOAL_EPROTO;
	}
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	*count = n;
	if (sim_out)
		*sim_out = sim;
	return 0;
}

int wire_decode_payload(const uint8_t *p, size_t len, struct wire_msg *msgs,
			size_t *count)
{
	return scan_payload(p, len, NULL, msgs, count, true, false, NULL);
}

int wire_scan_payload(const uint8_t *p, size_t len, struct wire_item *items,
		      struct wire_msg *msgs, size_t *count)
{
	return scan_payload(p, len, items, msgs, count, false, false, NULL);
}

int wire_scan_payload_sim(const uint8_t *p, size_t len, bool allow_sim,
			  struct wire_item *items, struct wire_msg *msgs, size_t *count,
			  bool *sim)
{
	return scan_payload(p, len, items, msgs, count, false, allow_sim, sim);
}

void wire_put_msg(struct wr *w, const struct wire_msg *m)
{
	size_t fixed = fixed_body_bytes(m->type);
	if (fixed) {
		uint8_t *p = msg_room(w, m->type, fixed);
		if (!p)
			return;
		if (m->type == WIRE_SUSPECT || m->type == WIRE_DEAD) {
			be32_put(p, m->incarnation);
			memcpy(p + 4, m->id, SHOAL_NODE_ID_PREFIX_BYTES);
			memcpy(p + 4 + SHOAL_NODE_ID_PREFIX_BYTES, m->from_id,
			       SHOAL_NODE_ID_PREFIX_BYTES);
		} else {
			be32_put(p, m->seq);
			if (m->type == WIRE_PING)
				memcpy(p + 4, m->id, SHOAL_NODE_ID_BYTES);
		}
		return;
	}
	wr_u8(w, m->type);
	size_t mark = wr_begin16(w);
	switch (m->type) {
	case WIRE_PING:
		wr_u32(w, m->seq);
		wr_bytes(w, m->id, sizeof(m->id));
		break;
	case WIRE_PING_REQ:
		wr_u32(w, m->seq);
		wr_bytes(w, m->id, sizeof(m->id));
		addr_put(w, &m->addr);
		wr_u8(w, m->want_nack ? 1 : 0);
		break;
	case WIRE_ACK:
	case WIRE_NACK:
		wr_u32(w, m->seq);
		break;
	case WIRE_ALIVE:
		wr_u32(w, m->incarnation);
		wr_bytes(w, m->id, sizeof(m->id));
		addr_put(w, &m->addr);
		wr_str8(w, m->name, SHOAL_NAME_BYTES_MAX);
		put_tags(w, m->tags_count, m->tags);
		break;
	default:
		w->err = true;
		return;
	}
	wr_end16(w, mark);
}

static size_t addr_size(const struct shoal_addr *a)
{
	return 1 + (a->family == SHOAL_AF_INET6 ? 16 : 4) + 2;
}

size_t wire_msg_size(const struct wire_msg *m)
{
	size_t body = 0;
	switch (m->type) {
	case WIRE_PING: body = 4 + 32; break;
	case WIRE_PING_REQ: body = 4 + 32 + addr_size(&m->addr) + 1; break;
	case WIRE_ACK:
	case WIRE_NACK: body = 4; break;
	case WIRE_ALIVE:
		body = 4 + 32 + addr_size(&m->addr) + 1 + strlen(m->name) + 1;
		for (uint8_t i = 0; i < m->tags_count; i++)
			body += 1 + strlen(m->tags[i]);
		break;
	case WIRE_SUSPECT:
	case WIRE_DEAD: body = 4 + 2 * SHOAL_NODE_ID_PREFIX_BYTES; break;
	default: break;
	}
	return 3 + body;
}

void wire_put_state_header(struct wr *w, bool join, uint32_t count)
{
	wr_u8(w, WIRE_STATE_VERSION);
	wr_u8(w, join ? 1 : 0);
	wr_u32(w, count);
}

void wire_put_state_entry(struct wr *w, const struct wire_state_entry *e)
{
	wr_bytes(w, e->node.id, sizeof(e->node.id));
	addr_put(w, &e->node.addr);
	wr_str8(w, e->node.name, SHOAL_NAME_BYTES_MAX);
	put_tags(w, e->node.tags_count, e->node.tags);
	wr_u32(w, e->incarnation);
	wr_u8(w, e->state);
}

int wire_decode_state(const uint8_t *p, size_t len, bool *join,
		      struct wire_state_entry **entries, size_t *count)
{
	struct rd r = rd_init(p, len);
	uint8_t version, j;
	uint32_t n;
	if (len > SHOAL_PUSHPULL_BYTES_MAX)
		return SHOAL_ETOOBIG;
	if (!rd_u8(&r, &version))
		return SHOAL_ETRUNC;
	if (version != WIRE_STATE_VERSION)
		return SHOAL_EVERSION;
	if (!rd_u8(&r, &j) || !rd_u32(&r, &n))
		return SHOAL_ETRUNC;
	if (j > 1 || n > SHOAL_MEMBERS_MAX)
		return SHOAL_EPROTO;
	/* Every entry is at least 32 + 7 + 2 + 1 + 4 + 1 bytes: reject counts
	 * the input cannot hold before allocating for them. */
	if ((size_t)n * 47 > rd_left(&r))
		return SHOAL_ETRUNC;
	struct wire_state_entry *es = calloc(n ? n : 1, sizeof(*es));
	if (!es)
		return SHOAL_ENOMEM;
	int err = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct wire_state_entry *e = &es[i];
		if (!rd_copy(&r, e->node.id, sizeof(e->node.id)) ||
		    !addr_get(&r, &e->node.addr) ||
		    !get_label(&r, e->node.name, SHOAL_NAME_BYTES_MAX) ||
		    !get_tags(&r, &e->node.tags_count, e->node.tags) ||
		    !rd_u32(&r, &e->incarnation) || !rd_u8(&r, &e->state)) {
			err = SHOAL_EPROTO;
			break;
		}
		if (e->state > 3) {
			err = SHOAL_EPROTO;
			break;
		}
	}
	if (!err && !rd_empty(&r))
		err = SHOAL_ETRAILING;
	if (err) {
		free(es);
		return err;
	}
	*join = j;
	*entries = es;
	*count = n;
	return 0;
}
