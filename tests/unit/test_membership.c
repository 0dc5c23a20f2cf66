/*
 * test_membership.c — the SWIM/Lifeguard core's transitions, incarnation
 * rules, suspicion timeouts, codecs and rejection paths.
 *
 * A tiny in-test network delivers packets between cores instantly (or drops
 * them for nodes marked down), with a manual clock.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/membership.h"
#include "core/wire.h"

#define NMAX 32

struct net {
	struct member_dir *dir;
	struct member_core *cores[NMAX];
	struct member_identity ids[NMAX];
	bool down[NMAX];
	int side[NMAX];   /* with `split`, nothing crosses between sides */
	bool split;
	bool cut[NMAX][NMAX]; /* packets from i to j are lost */
	size_t n;
	uint64_t now;
	/* counts of events seen, per observer, per kind */
	unsigned events[NMAX][8];
	unsigned dead_about[NMAX][NMAX]; /* DEAD events per observer, per subject gid */
	int max_health[NMAX]; /* highest Lifeguard health score seen */
	unsigned packets;
	/* Stream pings (MEMBER_OUT_STREAM_PING): how many were asked, and
	 * whether they are answered (at once) where the member is up and on
	 * the same side; `cut` does not stop them (it loses datagrams only). */
	unsigned stream_pings;
	bool answer_streams;
	/* Poll every output of a call before calling another core (what
	 * cores sharing an output space need, member_core_share_outputs):
	 * outputs wait in held[] until the pump delivers them. */
	bool collect_first;
	/* Packets are delivered with member_core_recv_packet_hinted: 1 with
	 * the hints their output carried (collect_first), 2 with wrong ones. */
	int hint_mode;
	unsigned hints_seen; /* subject hints (not MEMBER_HINT_NONE) delivered */
	unsigned accuser_hints_seen; /* accuser hints (SUSPECT, DEAD) delivered */
	struct held_list {
		struct held {
			struct member_out o;
			uint8_t data[SHOAL_UDP_PAYLOAD_BYTES_MAX];
			uint32_t hints[SHOAL_MSGS_PER_PACKET_MAX];
		} *v;
		size_t len, cap;
	} held[NMAX];
};

/* collect_first: moves core i's outputs into held[i]. */
static void net_collect(struct net *net, size_t i)
{
	if (!net->collect_first)
		return;
	struct held_list *h = &net->held[i];
	struct member_out o;
	while (member_core_poll(net->cores[i], &o)) {
		if (h->len == h->cap) {
			h->cap = h->cap ? 2 * h->cap : 16;
			h->v = realloc(h->v, h->cap * sizeof(*h->v));
			assert_non_null(h->v);
		}
		struct held *x = &h->v[h->len++];
		x->o = o;
		if (o.kind == MEMBER_OUT_PACKET) {
			memcpy(x->data, o.data, o.len);
			x->o.data = x->data;
			assert_true(o.hints_count <= SHOAL_MSGS_PER_PACKET_MAX);
			if (o.hints)
				memcpy(x->hints, o.hints, o.hints_count * sizeof(*o.hints));
			x->o.hints = o.hints ? x->hints : NULL;
		}
	}
}

static struct member_config cfg_default(void)
{
	struct member_config c;
	member_config_default(&c);
	c.push_pull_interval_ms = 0; /* tests start push-pulls explicitly */
	return c;
}

static void make_identity(struct member_identity *id, size_t i)
{
	memset(id, 0, sizeof(*id));
	for (int b = 0; b < SHOAL_NODE_ID_BYTES; b++)
		id->id[b] = (uint8_t)(i * 7 + b + 1);
	snprintf(id->name, sizeof(id->name), "n%zu", i);
	id->addr.family = SHOAL_AF_INET;
	id->addr.ip[0] = 127;
	id->addr.ip[3] = 1;
	id->addr.port = (uint16_t)(10000 + i);
	if (i == 0) {
		id->tags_count = 1;
		strcpy(id->tags[0], "canary");
	}
}

static void net_init(struct net *net, size_t n, const struct member_config *cfg)
{
	memset(net, 0, sizeof(*net));
	net->dir = member_dir_new();
	net->n = n;
	net->now = 1000;
	for (size_t i = 0; i < n; i++) {
		make_identity(&net->ids[i], i);
		net->cores[i] = member_core_new(cfg, net->dir, &net->ids[i], 1, 100 + i, net->now);
		assert_non_null(net->cores[i]);
	}
}

static void net_free(struct net *net)
{
	for (size_t i = 0; i < NMAX; i++)
		free(net->held[i].v);
	for (size_t i = 0; i < net->n; i++)
		member_core_free(net->cores[i]);
	member_dir_free(net->dir);
}

static int node_by_addr(struct net *net, const struct shoal_addr *a)
{
	for (size_t i = 0; i < net->n; i++)
		if (addr_equal(&net->ids[i].addr, a))
			return (int)i;
	return -1;
}

/* Delivers one output of core i. */
static void net_deliver(struct net *net, size_t i, const struct member_out *o)
{
	if (o->kind == MEMBER_OUT_EVENT) {
		net->events[i][o->ev.kind]++;
		if (o->ev.kind == MEMBER_EV_DEAD && o->ev.gid < NMAX)
			net->dead_about[i][o->ev.gid]++;
		return;
	}
	int to = node_by_addr(net, &o->to);
	if (o->kind == MEMBER_OUT_STREAM_PING) {
		net->stream_pings++;
		assert_true(o->deadline_ms > net->now);
		if (net->answer_streams && to >= 0 && !net->down[to] && !net->down[i] &&
		    !(net->split && net->side[to] != net->side[i]))
			member_core_stream_ping_done(net->cores[i], o->seq, net->now);
		return;
	}
	if (to < 0 || net->down[to] || net->down[i] || net->cut[i][to] ||
	    (net->split && net->side[to] != net->side[i]))
		return;
	if (o->kind == MEMBER_OUT_PACKET) {
		uint8_t copy[SHOAL_UDP_PAYLOAD_BYTES_MAX];
		memcpy(copy, o->data, o->len);
		net->packets++;
		if (net->hint_mode) {
			uint32_t hints[SHOAL_MSGS_PER_PACKET_MAX];
			uint32_t from_gid = member_dir_find(net->dir, net->ids[i].id);
			size_t count = member_dir_count(net->dir);
			assert_non_null(o->hints);
			for (size_t k = 0; k < o->hints_count; k++) {
				hints[k] = o->hints[k];
				uint32_t subject = MEMBER_HINT_SUBJECT(hints[k]);
				uint32_t accuser = MEMBER_HINT_ACCUSER(hints[k]);
				net->hints_seen += subject != MEMBER_HINT_NONE;
				net->accuser_hints_seen += accuser != MEMBER_HINT_NONE;
				if (net->hint_mode == 2) /* other members' gids, in both halves */
					hints[k] = (uint32_t)((subject + 1) % count) |
						   (uint32_t)((accuser + 1) % count) << 16;
			}
			if (net->hint_mode == 2)
				from_gid = (from_gid + 1) % (uint32_t)count;
			assert_int_equal(member_core_recv_packet_hinted(
						 net->cores[to], net->ids[i].id, from_gid,
						 &net->ids[i].addr, copy, o->len, hints,
						 o->hints_count, net->now),
					 0);
		} else {
			assert_int_equal(member_core_recv_packet(net->cores[to], net->ids[i].id,
								 &net->ids[i].addr, copy, o->len,
								 net->now),
					 0);
		}
		net_collect(net, (size_t)to);
	} else if (o->kind == MEMBER_OUT_PUSHPULL) {
		uint8_t *a, *b;
		size_t al, bl;
		assert_int_equal(member_core_encode_state(net->cores[i], o->join, &a, &al), 0);
		assert_int_equal(member_core_encode_state(net->cores[to], false, &b, &bl), 0);
		assert_int_equal(member_core_recv_state(net->cores[to], a, al, net->now), 0);
		net_collect(net, (size_t)to);
		assert_int_equal(member_core_recv_state(net->cores[i], b, bl, net->now), 0);
		net_collect(net, i);
		free(a);
		free(b);
	}
}

/* Delivers everything queued until quiet. */
static void net_pump(struct net *net)
{
	struct held *batch = NULL;
	for (int rounds = 0; rounds < 1000; rounds++) {
		bool any = false;
		for (size_t i = 0; i < net->n; i++) {
			struct member_out o;
			if (!net->collect_first) {
				/* delivering calls into other cores only */
				while (member_core_poll(net->cores[i], &o)) {
					any = true;
					net_deliver(net, i, &o);
				}
				continue;
			}
			net_collect(net, i);
			/* Take the list: delivering may add to it. */
			struct held_list *h = &net->held[i];
			size_t n = h->len;
			batch = n ? realloc(batch, n * sizeof(*batch)) : batch;
			assert_true(n == 0 || batch);
			for (size_t k = 0; k < n; k++) {
				batch[k] = h->v[k];
				if (batch[k].o.kind == MEMBER_OUT_PACKET) {
					batch[k].o.data = batch[k].data;
					if (batch[k].o.hints)
						batch[k].o.hints = batch[k].hints;
				}
			}
			h->len = 0;
			any |= n > 0;
			for (size_t k = 0; k < n; k++)
				net_deliver(net, i, &batch[k].o);
		}
		if (!any) {
			free(batch);
			return;
		}
	}
	free(batch);
	fail_msg("network did not quiesce");
}

/* Advances the clock to `until`, ticking every core at its deadlines. */
static void net_run(struct net *net, uint64_t until)
{
	while (net->now < until) {
		uint64_t next = until;
		for (size_t i = 0; i < net->n; i++) {
			if (net->down[i])
				continue;
			uint64_t d = member_core_next_deadline(net->cores[i]);
			if (d < next)
				next = d;
		}
		if (next > net->now)
			net->now = next;
		for (size_t i = 0; i < net->n; i++)
			if (!net->down[i] && member_core_next_deadline(net->cores[i]) <= net->now) {
				member_core_tick(net->cores[i], net->now);
				net_collect(net, i);
			}
		net_pump(net);
		for (size_t i = 0; i < net->n; i++)
			if (member_core_health(net->cores[i]) > net->max_health[i])
				net->max_health[i] = member_core_health(net->cores[i]);
	}
}

static enum member_state state_of(struct net *net, size_t observer, size_t subject)
{
	struct member_info info;
	uint32_t gid = member_dir_find(net->dir, net->ids[subject].id);
	if (gid == UINT32_MAX || member_core_lookup(net->cores[observer], gid, &info))
		return (enum member_state)-1;
	return info.state;
}

static uint32_t inc_of(struct net *net, size_t observer, size_t subject)
{
	struct member_info info;
	uint32_t gid = member_dir_find(net->dir, net->ids[subject].id);
	assert_int_equal(member_core_lookup(net->cores[observer], gid, &info), 0);
	return info.incarnation;
}

/* A SUSPECT or DEAD about node `subject` at incarnation inc, by node `by`. */
static struct wire_msg accusation(const struct net *net, uint8_t type, uint32_t inc,
				  size_t subject, size_t by)
{
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = type;
	m.incarnation = inc;
	memcpy(m.id, net->ids[subject].id, SHOAL_NODE_ID_BYTES);
	memcpy(m.from_id, net->ids[by].id, SHOAL_NODE_ID_BYTES);
	return m;
}

/* An ALIVE announcing `id` at incarnation `inc`. */
static struct wire_msg alive_msg(const struct member_identity *id, uint32_t inc)
{
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = WIRE_ALIVE;
	m.incarnation = inc;
	memcpy(m.id, id->id, SHOAL_NODE_ID_BYTES);
	m.addr = id->addr;
	strcpy(m.name, id->name);
	return m;
}

/* Everyone joins through node 0. */
static void net_join_all(struct net *net)
{
	for (size_t i = 1; i < net->n; i++) {
		assert_int_equal(member_core_join(net->cores[i], &net->ids[0].addr, 1, net->now), 0);
		net_collect(net, i);
		net_pump(net);
	}
	net_run(net, net->now + 5000);
	for (size_t i = 0; i < net->n; i++)
		for (size_t j = 0; j < net->n; j++)
			assert_int_equal(state_of(net, i, j), MEMBER_ALIVE);
}

/* --- codec ---------------------------------------------------------------- */

static void codec_round_trip_every_type(void **state)
{
	(void)state;
	struct wire_msg in[7], out[SHOAL_MSGS_PER_PACKET_MAX];
	memset(in, 0, sizeof(in));
	for (int t = 0; t < 7; t++) {
		in[t].type = (uint8_t)(WIRE_PING + t);
		in[t].seq = 1000u + (uint32_t)t;
		in[t].incarnation = 7u + (uint32_t)t;
		/* An accusation carries the ids' prefixes, decoded zero-padded. */
		bool accusation = in[t].type == WIRE_SUSPECT || in[t].type == WIRE_DEAD;
		size_t id_len = accusation ? SHOAL_NODE_ID_PREFIX_BYTES : 32;
		if (in[t].type != WIRE_ACK && in[t].type != WIRE_NACK)
			memset(in[t].id, 0x10 + t, id_len);
		if (accusation)
			memset(in[t].from_id, 0x40 + t, id_len);
		if (in[t].type == WIRE_PING_REQ || in[t].type == WIRE_ALIVE) {
			assert_int_equal(addr_parse("[::1]:7946", &in[t].addr), 0);
			in[t].want_nack = in[t].type == WIRE_PING_REQ;
		}
		if (in[t].type == WIRE_ALIVE) {
			strcpy(in[t].name, "web-01.example");
			in[t].tags_count = 2;
			strcpy(in[t].tags[0], "canary");
			strcpy(in[t].tags[1], "eu-west");
		}
		if (in[t].type == WIRE_PING || in[t].type == WIRE_PING_REQ ||
		    in[t].type == WIRE_ACK || in[t].type == WIRE_NACK)
			in[t].incarnation = 0;
		if (in[t].type >= WIRE_ALIVE)
			in[t].seq = 0;
	}
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 7);
	for (int t = 0; t < 7; t++) {
		size_t before = w.len;
		wire_put_msg(&w, &in[t]);
		assert_int_equal(w.len - before, wire_msg_size(&in[t]));
	}
	assert_true(wr_ok(&w));
	size_t n = 0;
	assert_int_equal(wire_decode_payload(buf, w.len, out, &n), 0);
	assert_int_equal(n, 7);
	for (int t = 0; t < 7; t++) {
		assert_int_equal(out[t].type, in[t].type);
		assert_int_equal(out[t].seq, in[t].seq);
		assert_int_equal(out[t].incarnation, in[t].incarnation);
		assert_memory_equal(out[t].id, in[t].id, 32);
		assert_memory_equal(out[t].from_id, in[t].from_id, 32);
		assert_true(addr_equal(&out[t].addr, &in[t].addr) || in[t].addr.family == 0);
		assert_string_equal(out[t].name, in[t].name);
		assert_int_equal(out[t].tags_count, in[t].tags_count);
		assert_int_equal(out[t].want_nack, in[t].want_nack);
	}
}

static void codec_rejects_bad_payloads(void **state)
{
	(void)state;
	struct wire_msg out[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n;
	enum { V = WIRE_VERSION };
	uint8_t ok[] = {V, 1, WIRE_ACK, 0, 4, 0, 0, 0, 9};
	assert_int_equal(wire_decode_payload(ok, sizeof(ok), out, &n), 0);
	assert_int_equal(out[0].seq, 9);
	/* truncated at every length */
	for (size_t l = 0; l < sizeof(ok); l++)
		assert_int_not_equal(wire_decode_payload(ok, l, out, &n), 0);
	uint8_t badver[] = {V + 1, 1, WIRE_ACK, 0, 4, 0, 0, 0, 9};
	assert_int_equal(wire_decode_payload(badver, sizeof(badver), out, &n), SHOAL_EVERSION);
	/* version 1 (accusations with whole ids) is refused, not misread */
	uint8_t v1[] = {1, 1, WIRE_ACK, 0, 4, 0, 0, 0, 9};
	assert_int_equal(wire_decode_payload(v1, sizeof(v1), out, &n), SHOAL_EVERSION);
	/* an accusation with whole ids (version 1's layout) is malformed */
	uint8_t v1_dead[2 + 3 + 4 + 64] = {V, 1, WIRE_DEAD, 0, 68};
	assert_int_equal(wire_decode_payload(v1_dead, sizeof(v1_dead), out, &n), SHOAL_EPROTO);
	uint8_t zero[] = {V, 0};
	assert_int_equal(wire_decode_payload(zero, sizeof(zero), out, &n), SHOAL_EPROTO);
	uint8_t trailing[] = {V, 1, WIRE_ACK, 0, 4, 0, 0, 0, 9, 0xff};
	assert_int_equal(wire_decode_payload(trailing, sizeof(trailing), out, &n), SHOAL_ETRAILING);
	uint8_t longbody[] = {V, 1, WIRE_ACK, 0, 5, 0, 0, 0, 9, 1};
	assert_int_equal(wire_decode_payload(longbody, sizeof(longbody), out, &n), SHOAL_EPROTO);
	uint8_t big[SHOAL_UDP_PAYLOAD_BYTES_MAX + 1] = {V};
	assert_int_equal(wire_decode_payload(big, sizeof(big), out, &n), SHOAL_ETOOBIG);
	uint8_t nack_flag[] = {V, 1, WIRE_PING_REQ, 0, 44, 0, 0, 0, 1,
			       [9 ... 40] = 3, 4, 127, 0, 0, 1, 0x1f, 0x40, 2};
	assert_int_equal(wire_decode_payload(nack_flag, sizeof(nack_flag), out, &n), SHOAL_EPROTO);
	/* an unknown type is skipped by length, not fatal */
	uint8_t unknown[] = {V, 2, 99, 0, 2, 0xaa, 0xbb, WIRE_ACK, 0, 4, 0, 0, 0, 5};
	assert_int_equal(wire_decode_payload(unknown, sizeof(unknown), out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].type, 0);
	assert_int_equal(out[1].seq, 5);
}

/* The simulator's form (WIRE_VERSION_SIM): accusations by gid, read only
 * where allowed; everywhere else an unknown version. */
static void codec_sim_form(void **state)
{
	(void)state;
	uint8_t buf[64];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION_SIM);
	wr_u8(&w, 2);
	wire_put_sim_accusation(&w, WIRE_DEAD, 0x01020304, 0x1234, 7);
	wire_put_msg(&w, &(struct wire_msg){.type = WIRE_ACK, .seq = 9});
	assert_true(wr_ok(&w));
	assert_int_equal(w.len, 2 + WIRE_SIM_ACCUSATION_BYTES + 7);
	struct wire_msg out[SHOAL_MSGS_PER_PACKET_MAX];
	struct wire_item items[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n;
	bool sim = false;
	assert_int_equal(wire_decode_payload(buf, w.len, out, &n), SHOAL_EVERSION);
	assert_int_equal(wire_scan_payload(buf, w.len, items, out, &n), SHOAL_EVERSION);
	assert_int_equal(wire_scan_payload_sim(buf, w.len, false, items, out, &n, &sim),
			 SHOAL_EVERSION);
	assert_int_equal(wire_scan_payload_sim(buf, w.len, true, items, out, &n, &sim), 0);
	assert_true(sim);
	assert_int_equal(n, 2);
	assert_int_equal(items[0].type, WIRE_DEAD);
	assert_int_equal(wire_item_u32(&items[0]), 0x01020304);
	assert_int_equal(wire_item_gid(&items[0]), 0x1234);
	assert_int_equal(wire_item_from_gid(&items[0]), 7);
	assert_int_equal(items[1].type, WIRE_ACK);
	assert_int_equal(wire_item_u32(&items[1]), 9);
	/* truncated at every length */
	for (size_t l = 0; l < w.len; l++)
		assert_int_not_equal(wire_scan_payload_sim(buf, l, true, items, out, &n, &sim), 0);
	/* the wire's form is still read where the simulator's is allowed */
	uint8_t ack[] = {WIRE_VERSION, 1, WIRE_ACK, 0, 4, 0, 0, 0, 9};
	assert_int_equal(wire_scan_payload_sim(ack, sizeof(ack), true, items, out, &n, &sim), 0);
	assert_false(sim);
	/* an accusation of the wire's size in the simulator's form, and one
	 * of the simulator's size in the wire's form */
	uint8_t big[2 + WIRE_ACCUSATION_BYTES] = {WIRE_VERSION_SIM, 1, WIRE_SUSPECT, 0,
						  WIRE_ACCUSATION_BYTES - 3};
	assert_int_equal(wire_scan_payload_sim(big, sizeof(big), true, items, out, &n, &sim),
			 SHOAL_EPROTO);
	buf[0] = WIRE_VERSION;
	assert_int_equal(wire_scan_payload_sim(buf, w.len, true, items, out, &n, &sim),
			 SHOAL_EPROTO);
	assert_int_equal(wire_decode_payload(buf, w.len, out, &n), SHOAL_EPROTO);
}

static void codec_rejects_bad_names(void **state)
{
	(void)state;
	struct wire_msg m, out[4];
	memset(&m, 0, sizeof(m));
	m.type = WIRE_ALIVE;
	assert_int_equal(addr_parse("127.0.0.1:1", &m.addr), 0);
	strcpy(m.name, "bad name"); /* space not allowed */
	uint8_t buf[256];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 1);
	wire_put_msg(&w, &m);
	size_t n;
	assert_int_equal(wire_decode_payload(buf, w.len, out, &n), SHOAL_EPROTO);
}

static void state_round_trip_and_rejects(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 4, &cfg);
	net_join_all(&net);
	uint8_t *buf;
	size_t len;
	assert_int_equal(member_core_encode_state(net.cores[2], true, &buf, &len), 0);
	bool join;
	struct wire_state_entry *es;
	size_t n;
	assert_int_equal(wire_decode_state(buf, len, &join, &es, &n), 0);
	assert_true(join);
	assert_int_equal(n, 4);
	free(es);
	for (size_t l = 0; l < len; l += 7)
		assert_int_not_equal(wire_decode_state(buf, l, &join, &es, &n), 0);
	/* a count larger than the bytes can hold is refused before allocating */
	uint8_t lie[] = {1, 0, 0, 0, 0x3f, 0xff};
	assert_int_equal(wire_decode_state(lie, sizeof(lie), &join, &es, &n), SHOAL_ETRUNC);
	/* a bad state byte changes nothing */
	buf[len - 1] = 9;
	size_t before = member_core_count(net.cores[1]);
	assert_int_not_equal(member_core_recv_state(net.cores[1], buf, len, net.now), 0);
	assert_int_equal(member_core_count(net.cores[1]), before);
	free(buf);
	net_free(&net);
}

/* Appends a push-pull state entry about id. */
static void put_state_entry(struct wr *w, const struct member_identity *id, uint32_t inc,
			    enum member_state st)
{
	struct wire_state_entry e;
	memset(&e, 0, sizeof(e));
	memcpy(e.node.id, id->id, SHOAL_NODE_ID_BYTES);
	e.node.addr = id->addr;
	strcpy(e.node.name, id->name);
	e.incarnation = inc;
	e.state = (uint8_t)st;
	wire_put_state_entry(w, &e);
}

/* A remote state's entry about a member this core never knew: DEAD is
 * recorded dead, with no event, no suspicion and nothing to gossip (a
 * suspicion of it nobody else would confirm ran 70-80 s); SUSPECT is
 * learnt alive and suspected, as before. A later probe by the dead member
 * is answered with its death, so it refutes. */
static void unknown_member_reported_dead_is_recorded_dead(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	struct member_core *c = net.cores[0];
	struct member_identity gone, suspected;
	make_identity(&gone, 7);
	make_identity(&suspected, 8);
	uint8_t buf[1024];
	struct wr w = wr_init(buf, sizeof(buf));
	wire_put_state_header(&w, false, 2);
	put_state_entry(&w, &gone, 3, MEMBER_DEAD);
	put_state_entry(&w, &suspected, 0, MEMBER_SUSPECT);
	assert_true(wr_ok(&w));
	size_t count = member_core_count(c);
	uint64_t suspicions = member_core_stats(c)->suspects_raised;
	assert_int_equal(member_core_recv_state(c, buf, w.len, net.now), 0);
	assert_int_equal(member_core_count(c), count + 2);

	uint32_t g_gone = member_dir_find(net.dir, gone.id);
	uint32_t g_susp = member_dir_find(net.dir, suspected.id);
	struct member_info info;
	assert_int_equal(member_core_lookup(c, g_gone, &info), 0);
	assert_int_equal(info.state, MEMBER_DEAD);
	assert_int_equal(info.incarnation, 3);
	assert_string_equal(member_dir_get(net.dir, g_gone)->name, "n7");
	assert_int_equal(member_core_lookup(c, g_susp, &info), 0);
	assert_int_equal(info.state, MEMBER_SUSPECT);
	assert_int_equal(member_core_stats(c)->suspects_raised, suspicions);
	struct member_out o;
	unsigned about_gone = 0, about_susp = 0;
	while (member_core_poll(c, &o)) {
		if (o.kind == MEMBER_OUT_EVENT && o.ev.gid == g_gone)
			about_gone++;
		if (o.kind == MEMBER_OUT_EVENT && o.ev.gid == g_susp)
			about_susp++;
	}
	assert_int_equal(about_gone, 0);
	assert_int_equal(about_susp, 2); /* join, suspect */
	/* Its suspicion is not extended to the dead one: a minute on, after
	 * the other's has run out, it is still dead and nothing was said. */
	net_run(&net, net.now + 60000);
	assert_int_equal(member_core_lookup(c, g_gone, &info), 0);
	assert_int_equal(info.state, MEMBER_DEAD);
	net_free(&net);
}

/* A state by gid (the simulator's push-pull) is the encoded state: the
 * same entries in the same order and the same size, tags and an IPv6
 * address included, and merging it does what merging the bytes does. */
/* The simulator's warm start: members added alive in bulk, as one add each
 * would (same probe order from the same seed), and every bad list refused
 * whole. */
static void add_alive_in_bulk(void **state)
{
	(void)state;
	struct member_config cfg = cfg_default();
	struct net net;
	net_init(&net, 6, &cfg);
	struct member_core *a = net.cores[0];
	uint32_t self = member_core_self_gid(a);
	uint32_t g[5];
	for (size_t i = 1; i < 6; i++)
		g[i - 1] = member_core_self_gid(net.cores[i]);
	uint32_t own[] = {g[0], self};
	uint32_t twice[] = {g[0], g[1], g[0]};
	uint32_t unknown[] = {g[0], 999};
	assert_int_equal(member_core_add_alive(a, own, 2, 3, net.now), SHOAL_EINVAL);
	assert_int_equal(member_core_add_alive(a, twice, 3, 3, net.now), SHOAL_EEXIST);
	assert_int_equal(member_core_add_alive(a, unknown, 2, 3, net.now), SHOAL_EINVAL);
	assert_int_equal(member_core_count(a), 1);
	struct member_info info;
	assert_int_equal(member_core_lookup(a, g[0], &info), SHOAL_ENOTFOUND);

	assert_int_equal(member_core_add_alive(a, g, 4, 3, net.now), 0);
	assert_int_equal(member_core_count(a), 5);
	assert_int_equal(member_core_live_count(a), 5);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(member_core_lookup(a, g[i], &info), 0);
		assert_int_equal(info.state, MEMBER_ALIVE);
		assert_int_equal(info.incarnation, 3);
	}
	assert_int_equal(member_core_add_alive(a, &g[3], 2, 3, net.now), SHOAL_EEXIST);
	assert_int_equal(member_core_lookup(a, g[4], &info), SHOAL_ENOTFOUND);

	/* The same identity and seed, members added one at a time: the same
	 * probe order. */
	struct member_core *b = member_core_new(&cfg, net.dir, &net.ids[0], 1, 100, net.now);
	assert_non_null(b);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(member_core_add_alive(b, &g[i], 1, 3, net.now), 0);
	for (size_t i = 0; i < 5; i++) {
		struct member_info ia, ib;
		assert_int_equal(member_core_get(a, i, &ia), 0);
		assert_int_equal(member_core_get(b, i, &ib), 0);
		assert_int_equal(ia.gid, ib.gid);
	}
	member_core_free(b);
	net_free(&net);
}

/* Five cores after node 4 stopped: node 0 holds it dead, node 3 suspects
 * it; node 1 at an IPv6 address with two tags. The same every time. */
static void net_for_pairs(struct net *net, const struct member_config *cfg)
{
	net_init(net, 5, cfg);
	struct member_identity *id1 = &net->ids[1];
	assert_int_equal(addr_parse("[fd00::17]:7946", &id1->addr), 0);
	id1->tags_count = 2;
	strcpy(id1->tags[0], "web");
	strcpy(id1->tags[1], "eu-west-1");
	member_core_free(net->cores[1]);
	net->cores[1] = member_core_new(cfg, net->dir, id1, 1, 101, net->now);
	assert_non_null(net->cores[1]);
	net_join_all(net);
	net->down[4] = true;
	net_run(net, net->now + 60000);
}

/* Both cores hold the same members in the same states, and give the same
 * outputs from here on. */
static void assert_same_core(struct member_core *x, struct member_core *y, size_t gids)
{
	assert_int_equal(member_core_count(x), member_core_count(y));
	for (uint32_t g = 0; g < gids; g++) {
		struct member_info ix, iy;
		int rx = member_core_lookup(x, g, &ix), ry = member_core_lookup(y, g, &iy);
		assert_int_equal(rx, ry);
		if (rx != 0)
			continue;
		assert_int_equal(ix.state, iy.state);
		assert_int_equal(ix.incarnation, iy.incarnation);
	}
	assert_memory_equal(member_core_stats(x), member_core_stats(y), sizeof(struct member_stats));
	struct member_out ox, oy;
	while (member_core_poll(x, &ox)) {
		assert_true(member_core_poll(y, &oy));
		assert_int_equal(ox.kind, oy.kind);
		assert_int_equal(ox.len, oy.len);
		if (ox.kind == MEMBER_OUT_EVENT) {
			assert_int_equal(ox.ev.kind, oy.ev.kind);
			assert_int_equal(ox.ev.gid, oy.ev.gid);
		}
	}
	assert_false(member_core_poll(y, &oy));
}

/* A push-pull between two cores of one directory, core to core
 * (member_core_pair_*), is the push-pull through the codec: the same
 * sizes, members, counters and outputs on both sides, for two cores that
 * know each other and disagree (node 0 holds node 4 dead, node 3 suspects
 * it) and for a new core that knows only itself. */
static void pair_is_the_encoded_exchange(void **state)
{
	(void)state;
	struct member_config cfg = cfg_default();
	struct net *nc = calloc(1, sizeof(*nc)), *np = calloc(1, sizeof(*np));
	assert_non_null(nc);
	assert_non_null(np);
	net_for_pairs(nc, &cfg);
	net_for_pairs(np, &cfg);
	for (size_t i = 0; i < 5; i++) { /* two copies of one run */
		uint8_t *c1, *c2;
		size_t l1, l2;
		assert_int_equal(member_core_encode_state(nc->cores[i], false, &c1, &l1), 0);
		assert_int_equal(member_core_encode_state(np->cores[i], false, &c2, &l2), 0);
		assert_int_equal(l1, l2);
		assert_memory_equal(c1, c2, l1);
		free(c1);
		free(c2);
	}
	enum { GIDS = 64 };
	uint16_t order[2][GIDS];
	uint32_t inc[2][GIDS];
	uint8_t st[2][GIDS];
	uint64_t news[2][GIDS / 64 + 1];
	struct member_pair pair = {.gids = GIDS,
				   .order = {order[0], order[1]},
				   .inc = {inc[0], inc[1]},
				   .state = {st[0], st[1]},
				   .news = {news[0], news[1]}};
	/* Node 2's identity, new, in each net: it joins through node 0. */
	struct member_core *xc = member_core_new(&cfg, nc->dir, &nc->ids[2], 9, 7, nc->now);
	struct member_core *xp = member_core_new(&cfg, np->dir, &np->ids[2], 9, 7, np->now);
	assert_non_null(xc);
	assert_non_null(xp);
	struct member_core *const ac[2] = {nc->cores[0], xc}, *const bc[2] = {nc->cores[3],
									 nc->cores[0]};
	struct member_core *const ap[2] = {np->cores[0], xp}, *const bp[2] = {np->cores[3],
									 np->cores[0]};
	for (int t = 0; t < 2; t++) {
		uint8_t *sa, *sb;
		size_t la, lb;
		assert_int_equal(member_core_encode_state(ac[t], false, &sa, &la), 0);
		assert_int_equal(member_core_encode_state(bc[t], false, &sb, &lb), 0);
		assert_int_equal(member_core_pair_begin(ap[t], bp[t], &pair), 0);
		assert_int_equal(pair.encoded_bytes[0], la);
		assert_int_equal(pair.encoded_bytes[1], lb);
		assert_true(pair.news_count[0] >= 1 && pair.news_count[1] >= 1);
		assert_int_equal(member_core_recv_state(bc[t], sa, la, nc->now), 0);
		assert_int_equal(member_core_pair_merge(&pair, 0, np->now), 0);
		assert_int_equal(member_core_recv_state(ac[t], sb, lb, nc->now), 0);
		assert_int_equal(member_core_pair_merge(&pair, 1, np->now), 0);
		assert_int_equal(member_core_pair_merge(&pair, 1, np->now), SHOAL_EINVAL);
		assert_same_core(ac[t], ap[t], GIDS);
		assert_same_core(bc[t], bp[t], GIDS);
		free(sa);
		free(sb);
	}
	/* The new core learned every member; node 0 learned it. */
	assert_int_equal(member_core_count(xp), 5);
	assert_int_equal(member_core_count(np->cores[0]), 5);
	/* Arrays too small, one core twice, cores of two directories: refused. */
	pair.gids = 4;
	assert_int_equal(member_core_pair_begin(np->cores[0], np->cores[3], &pair), SHOAL_ETOOBIG);
	pair.gids = GIDS;
	assert_int_equal(member_core_pair_begin(np->cores[0], np->cores[0], &pair), SHOAL_EINVAL);
	assert_int_equal(member_core_pair_begin(np->cores[0], nc->cores[3], &pair), SHOAL_EINVAL);
	member_core_free(xc);
	member_core_free(xp);
	net_free(nc);
	net_free(np);
	free(nc);
	free(np);
}

/* Cores sharing one output space run exactly as with their own buffers,
 * for a driver that polls all of a call's outputs before calling another
 * core: the same events, packets and views through joins, a crash and the
 * death it leads to. */
static void shared_outputs_change_nothing(void **state)
{
	(void)state;
	struct member_config cfg = cfg_default();
	size_t bytes = member_core_shared_outputs_bytes(&cfg);
	assert_int_equal(bytes % 64, 0);
	uint8_t *space = aligned_alloc(64, bytes + 64);
	assert_non_null(space);
	struct net nets[2];
	for (int v = 0; v < 2; v++) {
		struct net *net = &nets[v];
		net_init(net, 6, &cfg);
		net->collect_first = true;
		if (v == 1) {
			assert_int_equal(member_core_share_outputs(net->cores[0], space + 8, bytes),
					 SHOAL_EINVAL);
			assert_int_equal(member_core_share_outputs(net->cores[0], space, bytes - 1),
					 SHOAL_ETOOBIG);
			for (size_t i = 0; i < net->n; i++)
				assert_int_equal(member_core_share_outputs(net->cores[i], space, bytes), 0);
		}
		net_join_all(net);
		net->down[5] = true;
		net_run(net, net->now + 40000);
	}
	assert_true(nets[0].packets > 100);
	assert_int_equal(nets[0].packets, nets[1].packets);
	assert_memory_equal(nets[0].events, nets[1].events, sizeof(nets[0].events));
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(state_of(&nets[1], i, 5), MEMBER_DEAD);
		for (size_t j = 0; j < 6; j++)
			assert_int_equal(state_of(&nets[0], i, j), state_of(&nets[1], i, j));
		const struct member_stats *a = member_core_stats(nets[0].cores[i]);
		const struct member_stats *b = member_core_stats(nets[1].cores[i]);
		assert_memory_equal(a, b, sizeof(*a));
	}
	/* a core with outputs not yet polled cannot start sharing */
	struct member_core *x = member_core_new(&cfg, nets[1].dir, &nets[1].ids[5], 9, 5, nets[1].now);
	assert_int_equal(member_core_join(x, &nets[1].ids[0].addr, 1, nets[1].now), 0);
	assert_int_equal(member_core_share_outputs(x, space, bytes), SHOAL_ESTATE);
	member_core_free(x);
	net_free(&nets[0]);
	net_free(&nets[1]);
	free(space);
}

/* Subject and accuser hints (member_out.hints,
 * member_core_recv_packet_hinted) change nothing: delivered as the outputs gave them, or all wrong (every hint and
 * the sender's gid naming another member), the cores see the same events,
 * send the same packets and hold the same views as with plain
 * member_core_recv_packet, through joins, a crash and the death it leads
 * to. Without shared outputs there are no hints. */
static void subject_hints_change_nothing(void **state)
{
	(void)state;
	struct member_config cfg = cfg_default();
	size_t bytes = member_core_shared_outputs_bytes(&cfg);
	uint8_t *space = aligned_alloc(64, bytes);
	assert_non_null(space);
	struct net nets[3];
	for (int v = 0; v < 3; v++) {
		struct net *net = &nets[v];
		net_init(net, 7, &cfg);
		net->collect_first = true;
		net->hint_mode = v;
		for (size_t i = 0; i < net->n; i++)
			assert_int_equal(member_core_share_outputs(net->cores[i], space, bytes), 0);
		net_join_all(net);
		net->down[6] = true;
		net_run(net, net->now + 40000);
	}
	assert_true(nets[0].packets > 100);
	assert_true(nets[1].hints_seen > 100);
	assert_true(nets[1].accuser_hints_seen > 0); /* the crash's accusations */
	for (int v = 1; v < 3; v++) {
		assert_int_equal(nets[0].packets, nets[v].packets);
		assert_memory_equal(nets[0].events, nets[v].events, sizeof(nets[0].events));
		for (size_t i = 0; i < 6; i++) {
			assert_int_equal(state_of(&nets[v], i, 6), MEMBER_DEAD);
			for (size_t j = 0; j < 7; j++)
				assert_int_equal(state_of(&nets[0], i, j), state_of(&nets[v], i, j));
			const struct member_stats *a = member_core_stats(nets[0].cores[i]);
			const struct member_stats *b = member_core_stats(nets[v].cores[i]);
			assert_memory_equal(a, b, sizeof(*a));
		}
	}
	for (int v = 0; v < 3; v++)
		net_free(&nets[v]);
	free(space);
	/* own outputs: no hints */
	struct net net;
	net_init(&net, 2, &cfg);
	net_join_all(&net);
	member_core_tick(net.cores[0], net.now + 5000);
	struct member_out o;
	bool packet = false;
	while (member_core_poll(net.cores[0], &o)) {
		if (o.kind == MEMBER_OUT_PACKET) {
			packet = true;
			assert_null(o.hints);
			assert_int_equal(o.hints_count, 0);
		}
	}
	assert_true(packet);
	net_free(&net);
}

/* --- transitions ------------------------------------------------------------ */

static void join_converges_and_tags_travel(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 8, &cfg);
	net_join_all(&net);
	for (size_t i = 1; i < 8; i++) {
		uint32_t gid = member_dir_find(net.dir, net.ids[0].id);
		struct member_info info;
		assert_int_equal(member_core_lookup(net.cores[i], gid, &info), 0);
		assert_string_equal(info.ident->name, "n0");
		assert_int_equal(info.ident->tags_count, 1);
		assert_string_equal(info.ident->tags[0], "canary");
		assert_int_equal(net.events[i][MEMBER_EV_JOIN], 7);
	}
	/* a healthy mesh stays healthy: no suspicion for a minute */
	net_run(&net, net.now + 60000);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(net.events[i][MEMBER_EV_SUSPECT], 0);
		assert_int_equal(member_core_health(net.cores[i]), 0);
	}
	net_free(&net);
}

static void crash_is_suspected_then_dead_everywhere(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 10, &cfg);
	net_join_all(&net);
	net.down[3] = true;
	uint64_t crash = net.now;
	net_run(&net, crash + 3000);
	/* someone probed it and failed; suspicion spread */
	bool any_suspect = false;
	for (size_t i = 0; i < 10; i++)
		if (i != 3)
			any_suspect |= state_of(&net, i, 3) == MEMBER_SUSPECT;
	assert_true(any_suspect);
	net_run(&net, crash + 40000);
	for (size_t i = 0; i < 10; i++)
		if (i != 3) {
			assert_int_equal(state_of(&net, i, 3), MEMBER_DEAD);
			assert_int_equal(net.events[i][MEMBER_EV_DEAD], 1);
		}
	/* no one else was harmed */
	for (size_t i = 0; i < 10; i++)
		for (size_t j = 0; j < 10; j++)
			if (i != 3 && j != 3)
				assert_int_equal(state_of(&net, i, j), MEMBER_ALIVE);
	/* Lifeguard: the relays' NACKs arrived before each prober's deadline,
	 * so probing a dead member did not count against the probers' health
	 * (which would slow their probing and the detection). */
	for (size_t i = 0; i < 10; i++)
		if (i != 3)
			assert_int_equal(net.max_health[i], 0);
	net_free(&net);
}

static void suspicion_timeout_follows_lifeguard(void **state)
{
	(void)state;
	/* 20 members: min = 4 * log10(20) * 1 s, max = 6 * min, k = 2 */
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 20, &cfg);
	net_join_all(&net);
	double min = floor(4.0 * log10(20.0) * 1000.0);
	double max = 6.0 * min;
	/* node 1 receives a suspect about node 5 from node 2 only */
	uint8_t buf[256];
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc_of(&net, 1, 5), 5, 2);
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 1);
	wire_put_msg(&w, &m);
	/* isolate node 1 so that only our messages reach it */
	for (size_t i = 0; i < 20; i++)
		net.down[i] = i != 1;
	uint64_t t0 = net.now;
	assert_int_equal(member_core_recv_packet(net.cores[1], net.ids[2].id, &net.ids[2].addr,
						 buf, w.len, t0), 0);
	net_pump(&net);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_SUSPECT);
	/* no confirmation: dead only at max */
	net_run(&net, t0 + (uint64_t)max - 1000);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_SUSPECT);

	/* second scenario, fresh: two confirmations bring it down to min */
	net_free(&net);
	net_init(&net, 20, &cfg);
	net_join_all(&net);
	for (size_t i = 0; i < 20; i++)
		net.down[i] = i != 1;
	t0 = net.now;
	for (int from = 2; from <= 4; from++) {
		memcpy(m.from_id, net.ids[from].id, 32);
		m.incarnation = inc_of(&net, 1, 5);
		w = wr_init(buf, sizeof(buf));
		wr_u8(&w, WIRE_VERSION);
		wr_u8(&w, 1);
		wire_put_msg(&w, &m);
		assert_int_equal(member_core_recv_packet(net.cores[1], net.ids[from].id,
							 &net.ids[from].addr, buf, w.len, t0), 0);
	}
	net_pump(&net);
	net_run(&net, t0 + (uint64_t)min - 1);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_SUSPECT);
	net_run(&net, t0 + (uint64_t)min + 1);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_DEAD);
	net_free(&net);
}

static void deliver_one(struct net *net, size_t to, size_t from, const struct wire_msg *m);

static uint64_t lifeguard_libm(uint64_t min, uint64_t max, uint32_t n, uint32_t k)
{
	if (k == 0)
		return min;
	double frac = log((double)n + 1.0) / log((double)k + 1.0);
	uint64_t t = (uint64_t)floor((double)max - frac * (double)(max - min));
	return t < min ? min : t;
}

/* Lifeguard's timeout after n of k confirmations, for every n <= k <= 8
 * (suspicion_mult up to 10), computed with the core's table of logarithms,
 * equals the formula with libm's log(): to the millisecond for timeouts up
 * to 20 s times 6, and over spans of 2^40..2^52 ms, where the floor shows
 * every bit of ln(n + 1) / ln(k + 1). */
static void suspicion_timeout_after_each_confirmation_count(void **state)
{
	(void)state;
	for (uint32_t k = 0; k <= 8; k++)
		for (uint32_t n = 0; n <= k; n++) {
			for (uint64_t min = 1; min <= 20000; min++)
				for (uint64_t mult = 1; mult <= 6; mult++) {
					uint64_t max = mult * min;
					uint64_t want = lifeguard_libm(min, max, n, k);
					uint64_t got = member_suspicion_timeout_ms(min, max, n, k);
					if (got != want)
						fail_msg("n %u k %u min %llu max %llu: %llu, libm %llu",
							 n, k, (unsigned long long)min,
							 (unsigned long long)max, (unsigned long long)got,
							 (unsigned long long)want);
				}
			for (unsigned b = 40; b <= 52; b++) {
				uint64_t max = UINT64_C(1) << b;
				assert_int_equal(member_suspicion_timeout_ms(1, max, n, k),
						 lifeguard_libm(1, max, n, k));
			}
		}
}

/* memberlist's scalings, computed in integers by the core, against libm's
 * logarithms: the suspicion minimum mult * max(1, log10(n)) * interval and
 * the push-pull interval base * (ceil(log2(n) - log2(32)) + 1) past 32. */
static void scalings_match_libm(void **state)
{
	(void)state;
	static const uint32_t conf[][2] = {{4, 1000}, {5, 200}, {3, 700}, {6, 1500}, {1, 1}};
	for (size_t c = 0; c < sizeof(conf) / sizeof(conf[0]); c++) {
		struct member_config cfg = cfg_default();
		cfg.suspicion_mult = conf[c][0];
		cfg.probe_interval_ms = conf[c][1];
		cfg.push_pull_interval_ms = conf[c][1] * 30;
		for (uint64_t n = 0; n <= 1u << 17; n++) {
			double scale = log10((double)(n > 1 ? n : 1));
			uint64_t want = (uint64_t)(cfg.suspicion_mult * (scale < 1.0 ? 1.0 : scale) *
						   cfg.probe_interval_ms);
			uint64_t got = member_suspicion_min_ms(&cfg, (size_t)n);
			if (got != want)
				fail_msg("mult %u interval %u n %llu: %llu ms, libm %llu", conf[c][0],
					 conf[c][1], (unsigned long long)n, (unsigned long long)got,
					 (unsigned long long)want);
			double mult = n <= 32 ? 1.0 : ceil(log2((double)n) - log2(32.0)) + 1.0;
			want = (uint64_t)(mult * cfg.push_pull_interval_ms);
			got = member_pushpull_interval_ms(&cfg, (size_t)n);
			if (got != want)
				fail_msg("push-pull n %llu: %llu ms, libm %llu", (unsigned long long)n,
					 (unsigned long long)got, (unsigned long long)want);
		}
	}
	/* powers of ten are whole (log10 is exact there), and far past 2^17 */
	struct member_config cfg = cfg_default();
	uint64_t p = 10;
	for (uint64_t e = 1; e <= 12; e++, p *= 10) {
		assert_int_equal(member_suspicion_min_ms(&cfg, (size_t)p), 4000 * e);
		if (e == 1)
			continue; /* (below 10 the scale is 1) */
		assert_int_equal(member_suspicion_min_ms(&cfg, (size_t)p - 1),
				 (uint64_t)(4.0 * log10((double)(p - 1)) * 1000.0));
		assert_int_equal(member_suspicion_min_ms(&cfg, (size_t)p + 1),
				 (uint64_t)(4.0 * log10((double)(p + 1)) * 1000.0));
	}
	cfg.push_pull_interval_ms = 30000;
	assert_int_equal(member_pushpull_interval_ms(&cfg, (size_t)1 << 40), 30000 * 36);
	assert_int_equal(member_pushpull_interval_ms(&cfg, ((size_t)1 << 40) + 1), 30000 * 37);
}

static void deliver_one(struct net *net, size_t to, size_t from, const struct wire_msg *m)
{
	uint8_t buf[256];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 1);
	wire_put_msg(&w, m);
	assert_true(wr_ok(&w));
	assert_int_equal(member_core_recv_packet(net->cores[to], net->ids[from].id,
						 &net->ids[from].addr, buf, w.len, net->now), 0);
}

/* memberlist's cluster-size estimate: members dead for longer than
 * gossip_to_the_dead_ms leave it when a probe round ends (they stay in the
 * table), so the suspicion timeout shrinks with the live cluster as
 * memberlist's does; one that comes back counts again. */
static void suspicion_timeout_follows_the_live_cluster(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 20, &cfg);
	net_join_all(&net);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(member_core_est_nodes(net.cores[i]), 20);
	for (size_t i = 10; i < 18; i++)
		net.down[i] = true;
	uint64_t crash = net.now;
	net_run(&net, crash + 40000);
	/* Dead everywhere, but not yet for gossip_to_the_dead_ms at a round's
	 * end: still counted. */
	assert_int_equal(state_of(&net, 1, 10), MEMBER_DEAD);
	assert_true(member_core_est_nodes(net.cores[1]) > 12);
	/* Rounds of 11 live members end at least every ~12 s. */
	net_run(&net, crash + 40000 + cfg.gossip_to_the_dead_ms + 15000);
	for (size_t i = 0; i < 20; i++) {
		if (net.down[i])
			continue;
		assert_int_equal(member_core_count(net.cores[i]), 20);
		assert_int_equal(member_core_est_nodes(net.cores[i]), 12);
	}

	/* Node 1 alone hears three distinct suspicions of node 5: dead after
	 * the minimum for 12 members, 4 * log10(12) s, not for 20. */
	double min12 = floor(4.0 * log10(12.0) * 1000.0);
	for (size_t i = 0; i < 20; i++)
		net.down[i] = i != 1;
	uint64_t t0 = net.now;
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = WIRE_SUSPECT;
	m.incarnation = inc_of(&net, 1, 5);
	memcpy(m.id, net.ids[5].id, 32);
	for (size_t from = 2; from <= 4; from++) {
		memcpy(m.from_id, net.ids[from].id, 32);
		deliver_one(&net, 1, from, &m);
	}
	net_pump(&net);
	net_run(&net, t0 + (uint64_t)min12 - 1);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_SUSPECT);
	net_run(&net, t0 + (uint64_t)min12 + 1);
	assert_int_equal(state_of(&net, 1, 5), MEMBER_DEAD);

	/* Node 10 comes back at a higher incarnation: counted again. */
	size_t est = member_core_est_nodes(net.cores[1]);
	m = alive_msg(&net.ids[10], inc_of(&net, 1, 10) + 1);
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 10), MEMBER_ALIVE);
	assert_int_equal(member_core_est_nodes(net.cores[1]), est + 1);
	net_free(&net);
}

static void incarnation_rules_and_refutation(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 5, &cfg);
	net_join_all(&net);
	uint32_t inc4 = inc_of(&net, 1, 4);

	/* a stale suspect (lower incarnation) is ignored */
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc4 - 1, 4, 2);
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_ALIVE);

	/* a suspect at the current incarnation is accepted and spreads to 4,
	 * which refutes with a higher incarnation; everyone ends alive */
	m.incarnation = inc4;
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_SUSPECT);
	net_pump(&net);
	net_run(&net, net.now + 3000);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(state_of(&net, i, 4), MEMBER_ALIVE);
		assert_true(inc_of(&net, i, 4) > inc4);
	}
	assert_true(member_core_stats(net.cores[4])->refutations >= 1);

	/* an old alive does not override a newer state */
	uint32_t now4 = inc_of(&net, 1, 4);
	m = accusation(&net, WIRE_DEAD, now4, 4, 2);
	net.down[4] = true; /* so it cannot refute yet */
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_DEAD);
	m = alive_msg(&net.ids[4], now4); /* not newer */
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_DEAD);
	m.incarnation = now4 + 1; /* newer: back alive */
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_ALIVE);
	net_free(&net);
}

/* Accusations about a member held dead change nothing, whatever their
 * incarnation (memberlist: a dead member is not suspected or killed again;
 * the core answers these from a bit per member, not its entry), until the
 * member comes back: then it can be accused again. */
static void accusations_about_the_dead_wait_for_its_return(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 5, &cfg);
	net_join_all(&net);
	uint32_t inc4 = inc_of(&net, 1, 4);
	net.down[4] = true;
	struct wire_msg m = accusation(&net, WIRE_DEAD, inc4, 4, 2);
	deliver_one(&net, 1, 2, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_DEAD);
	net_pump(&net);
	unsigned suspects = net.events[1][MEMBER_EV_SUSPECT], deaths = net.events[1][MEMBER_EV_DEAD];
	assert_int_equal(deaths, 1);
	uint64_t ignored = member_core_stats(net.cores[1])->msgs_ignored;

	m = accusation(&net, WIRE_SUSPECT, inc4 + 5, 4, 3);
	deliver_one(&net, 1, 3, &m);
	m = accusation(&net, WIRE_DEAD, inc4 + 5, 4, 3);
	deliver_one(&net, 1, 3, &m);
	m = accusation(&net, WIRE_SUSPECT, inc4, 4, 0);
	deliver_one(&net, 1, 0, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_DEAD);
	assert_int_equal(inc_of(&net, 1, 4), inc4);
	assert_int_equal(member_core_stats(net.cores[1])->msgs_ignored, ignored + 3);
	net_pump(&net);
	assert_int_equal(net.events[1][MEMBER_EV_SUSPECT], suspects);
	assert_int_equal(net.events[1][MEMBER_EV_DEAD], deaths);

	/* back at a newer incarnation: accused at it, it is suspected again */
	m = alive_msg(&net.ids[4], inc4 + 1);
	deliver_one(&net, 1, 4, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_ALIVE);
	m = accusation(&net, WIRE_SUSPECT, inc4 + 1, 4, 3);
	deliver_one(&net, 1, 3, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_SUSPECT);
	m = accusation(&net, WIRE_DEAD, inc4 + 1, 4, 3);
	deliver_one(&net, 1, 3, &m);
	assert_int_equal(state_of(&net, 1, 4), MEMBER_DEAD);
	net_pump(&net);
	assert_int_equal(net.events[1][MEMBER_EV_SUSPECT], suspects + 1);
	assert_int_equal(net.events[1][MEMBER_EV_DEAD], deaths + 1);
	net_free(&net);
}

static void dead_about_self_is_refuted_and_costs_health(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	uint32_t before = member_core_incarnation(net.cores[0]);
	struct wire_msg m = accusation(&net, WIRE_DEAD, before + 5, 0, 1);
	deliver_one(&net, 0, 1, &m);
	assert_int_equal(member_core_incarnation(net.cores[0]), before + 6);
	assert_int_equal(member_core_health(net.cores[0]), 1);
	assert_int_equal(state_of(&net, 0, 0), MEMBER_ALIVE);
	net_free(&net);
}

static void graceful_leave_marks_left(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 6, &cfg);
	net_join_all(&net);
	assert_int_equal(member_core_leave(net.cores[2], net.now), 0);
	assert_int_equal(member_core_leave(net.cores[2], net.now), SHOAL_ESTATE);
	net_pump(&net);
	net_run(&net, net.now + 2000);
	net.down[2] = true;
	net_run(&net, net.now + 60000);
	for (size_t i = 0; i < 6; i++)
		if (i != 2) {
			assert_int_equal(state_of(&net, i, 2), MEMBER_LEFT);
			assert_int_equal(net.events[i][MEMBER_EV_DEAD], 0);
			assert_int_equal(net.events[i][MEMBER_EV_LEFT], 1);
		}
	net_free(&net);
}

static void restarted_node_rejoins_with_higher_incarnation(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 6, &cfg);
	net_join_all(&net);
	net.down[4] = true;
	net_run(&net, net.now + 60000);
	assert_int_equal(state_of(&net, 0, 4), MEMBER_DEAD);
	/* restart from "its data dir": same identity, stored incarnation + 1 */
	uint32_t inc = member_core_incarnation(net.cores[4]) + 1;
	member_core_free(net.cores[4]);
	net.cores[4] = member_core_new(&cfg, net.dir, &net.ids[4], inc, 999, net.now);
	net.down[4] = false;
	assert_int_equal(member_core_join(net.cores[4], &net.ids[1].addr, 1, net.now), 0);
	net_pump(&net);
	net_run(&net, net.now + 5000);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(state_of(&net, i, 4), MEMBER_ALIVE);
		assert_true(inc_of(&net, i, 4) >= inc);
	}
	net_free(&net);
}

static void stopped_node_learns_it_is_dead_and_refutes(void **state)
{
	(void)state;
	/* SIGSTOP-like: the node keeps its state but misses a minute; when it
	 * speaks again a peer tells it it is dead and it refutes. */
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 6, &cfg);
	net_join_all(&net);
	uint32_t inc = member_core_incarnation(net.cores[5]);
	net.down[5] = true;
	net_run(&net, net.now + 60000);
	assert_int_equal(state_of(&net, 0, 5), MEMBER_DEAD);
	net.down[5] = false;
	net_run(&net, net.now + 10000);
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(state_of(&net, i, 5), MEMBER_ALIVE);
	assert_true(member_core_incarnation(net.cores[5]) > inc);
	net_free(&net);
}

static void malformed_packet_changes_nothing(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	/* a valid DEAD about node 2 followed by garbage: the whole packet is
	 * refused, so node 2 stays alive */
	uint8_t buf[256];
	struct wire_msg m = accusation(&net, WIRE_DEAD, 100, 2, 1);
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 2);
	wire_put_msg(&w, &m);
	wr_u8(&w, WIRE_ACK);
	wr_u16(&w, 3); /* ACK body must be 4 bytes */
	wr_bytes(&w, "abc", 3);
	assert_int_equal(member_core_recv_packet(net.cores[0], net.ids[1].id, &net.ids[1].addr,
						 buf, w.len, net.now), SHOAL_EPROTO);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(member_core_stats(net.cores[0])->packets_malformed, 1);
	struct member_out o;
	assert_false(member_core_poll(net.cores[0], &o));
	net_free(&net);
}

/* A DEAD about node 2 by node 1 in the simulator's form, from node 1. */
static int send_sim_dead(struct net *net, size_t to, uint8_t body_len)
{
	uint8_t buf[2 + WIRE_ACCUSATION_BYTES];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION_SIM);
	wr_u8(&w, 1);
	uint32_t g = member_dir_find(net->dir, net->ids[2].id);
	uint32_t by = member_dir_find(net->dir, net->ids[1].id);
	wire_put_sim_accusation(&w, WIRE_DEAD, inc_of(net, to, 2), (uint16_t)g, (uint16_t)by);
	assert_true(wr_ok(&w));
	buf[4] = body_len;
	w.len = 2 + 3 + body_len;
	return member_core_recv_packet(net->cores[to], net->ids[1].id, &net->ids[1].addr, buf,
				       w.len, net->now);
}

/* An agent's core refuses the simulator's form as an unknown version and
 * changes nothing; a simulator's core (member_config.sim_gids) joins,
 * gossips and acts on it, and refuses a malformed one likewise. */
static void sim_form_only_in_sim_cores(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	assert_int_equal(send_sim_dead(&net, 0, WIRE_SIM_ACCUSATION_BYTES - 3), SHOAL_EVERSION);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(member_core_stats(net.cores[0])->packets_malformed, 1);
	struct member_out o;
	assert_false(member_core_poll(net.cores[0], &o));
	net_free(&net);

	cfg.sim_gids = true;
	net_init(&net, 3, &cfg); /* the join itself runs in the simulator's form */
	net_join_all(&net);
	assert_int_equal(send_sim_dead(&net, 0, WIRE_ACCUSATION_BYTES - 3), SHOAL_EPROTO);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(member_core_stats(net.cores[0])->packets_malformed, 1);
	assert_int_equal(send_sim_dead(&net, 0, WIRE_SIM_ACCUSATION_BYTES - 3), 0);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_DEAD);
	/* node 2 hears of it by gossip, refutes, and everyone sees it alive */
	net_collect(&net, 0);
	net_pump(&net);
	net_run(&net, net.now + 5000);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(state_of(&net, i, 2), MEMBER_ALIVE);
	assert_true(inc_of(&net, 0, 2) > 1);
	net_free(&net);
}

static void ping_for_someone_else_is_ignored(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	struct wire_msg m;
	memset(&m, 0, sizeof(m));
	m.type = WIRE_PING;
	m.seq = 77;
	memcpy(m.id, net.ids[2].id, 32); /* addressed to node 2 */
	uint64_t ignored = member_core_stats(net.cores[0])->msgs_ignored;
	deliver_one(&net, 0, 1, &m);
	struct member_out o;
	bool acked = false;
	while (member_core_poll(net.cores[0], &o))
		acked |= o.kind == MEMBER_OUT_PACKET;
	assert_false(acked);
	assert_int_equal(member_core_stats(net.cores[0])->msgs_ignored, ignored + 1);
	net_free(&net);
}

static void indirect_probe_saves_a_node_with_a_bad_link(void **state)
{
	(void)state;
	/* Packets between 0 and 1 are lost, but both talk to everyone else:
	 * indirect probes succeed, so nobody is declared dead. */
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 6, &cfg);
	net_join_all(&net);
	/* emulate the broken link by filtering in a custom pump */
	uint64_t end = net.now + 60000;
	while (net.now < end) {
		uint64_t next = end;
		for (size_t i = 0; i < net.n; i++) {
			uint64_t d = member_core_next_deadline(net.cores[i]);
			if (d < next)
				next = d;
		}
		net.now = next;
		for (size_t i = 0; i < net.n; i++)
			if (member_core_next_deadline(net.cores[i]) <= net.now)
				member_core_tick(net.cores[i], net.now);
		for (int rounds = 0; rounds < 100; rounds++) {
			bool any = false;
			for (size_t i = 0; i < net.n; i++) {
				struct member_out o;
				while (member_core_poll(net.cores[i], &o)) {
					any = true;
					if (o.kind != MEMBER_OUT_PACKET)
						continue;
					int to = node_by_addr(&net, &o.to);
					if ((i == 0 && to == 1) || (i == 1 && to == 0))
						continue;
					uint8_t copy[SHOAL_UDP_PAYLOAD_BYTES_MAX];
					memcpy(copy, o.data, o.len);
					assert_int_equal(member_core_recv_packet(net.cores[to], net.ids[i].id,
						&net.ids[i].addr, copy, o.len, net.now), 0);
				}
			}
			if (!any)
				break;
		}
	}
	for (size_t i = 0; i < 6; i++)
		for (size_t j = 0; j < 6; j++)
			assert_int_equal(state_of(&net, i, j), MEMBER_ALIVE);
	assert_true(member_core_stats(net.cores[0])->indirect_probes_sent > 0);
	net_free(&net);
}

/* memberlist's TCP fallback: node 4's datagrams are all lost, but it
 * answers over a stream. With stream pings answered nobody suspects it
 * (nor does it suspect anyone); without, the others declare it dead. */
static void datagrams_lost_both_ways(bool answer_streams)
{
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 5, &cfg);
	net_join_all(&net);
	net.answer_streams = answer_streams;
	for (size_t i = 0; i < 4; i++)
		net.cut[i][4] = net.cut[4][i] = true;
	net_run(&net, net.now + 90000);
	assert_true(net.stream_pings > 0);
	uint64_t rescued = 0;
	for (size_t i = 0; i < 5; i++)
		rescued += member_core_stats(net.cores[i])->probes_stream_only;
	if (answer_streams) {
		assert_true(rescued > 0);
		for (size_t i = 0; i < 5; i++) {
			for (size_t j = 0; j < 5; j++)
				assert_int_equal(state_of(&net, i, j), MEMBER_ALIVE);
			assert_int_equal(net.events[i][MEMBER_EV_SUSPECT], 0);
		}
	} else {
		assert_int_equal(rescued, 0);
		for (size_t i = 0; i < 4; i++)
			assert_int_equal(state_of(&net, i, 4), MEMBER_DEAD);
	}
	net_free(&net);
}

static void stream_ping_saves_a_member_whose_datagrams_are_lost(void **state)
{
	(void)state;
	datagrams_lost_both_ways(true);
}

static void without_stream_pings_that_member_is_declared_dead(void **state)
{
	(void)state;
	datagrams_lost_both_ways(false);
}

/* The stream ping's rules, one probe at a time: asked when the indirect
 * stage starts, for the probe's seq, by the probe's end; an answer for
 * another seq, or one at or after the end, changes nothing; turned off by
 * member_config.stream_pings. */
static void stream_ping_answers_only_its_probe_in_time(void **state)
{
	(void)state;
	for (int mode = 0; mode < 4; mode++) {
		/* 0: answered in time; 1: another seq; 2: at the deadline;
		 * 3: stream pings off */
		struct net net;
		struct member_config cfg = cfg_default();
		cfg.stream_pings = mode != 3;
		net_init(&net, 2, &cfg);
		net_join_all(&net);
		net.down[1] = true; /* its datagrams go nowhere */
		/* Tick node 0 until its probe of node 1 asks over a stream. */
		struct member_out ping;
		bool asked = false;
		for (int steps = 0; steps < 100 && !asked; steps++) {
			net.now = member_core_next_deadline(net.cores[0]);
			member_core_tick(net.cores[0], net.now);
			struct member_out o;
			while (member_core_poll(net.cores[0], &o)) {
				if (o.kind == MEMBER_OUT_STREAM_PING && !asked) {
					ping = o;
					asked = true;
				}
			}
		}
		if (mode == 3) {
			assert_false(asked);
			net_free(&net);
			continue;
		}
		assert_true(asked);
		assert_int_equal(node_by_addr(&net, &ping.to), 1);
		assert_int_equal(ping.to_gid, member_dir_find(net.dir, net.ids[1].id));
		/* the probe's end: one probe interval after its start, which
		 * was one probe timeout before the indirect stage (now) */
		assert_int_equal(ping.deadline_ms,
				 net.now - cfg.probe_timeout_ms + cfg.probe_interval_ms);
		if (mode == 0)
			member_core_stream_ping_done(net.cores[0], ping.seq, net.now + 1);
		else if (mode == 1)
			member_core_stream_ping_done(net.cores[0], ping.seq + 1, net.now + 1);
		/* run node 0 to the probe's end */
		while (member_core_next_deadline(net.cores[0]) <= ping.deadline_ms) {
			net.now = member_core_next_deadline(net.cores[0]);
			if (mode == 2 && net.now == ping.deadline_ms)
				member_core_stream_ping_done(net.cores[0], ping.seq, net.now);
			member_core_tick(net.cores[0], net.now);
			struct member_out o;
			while (member_core_poll(net.cores[0], &o))
				;
		}
		const struct member_stats *st = member_core_stats(net.cores[0]);
		if (mode == 0) {
			assert_int_equal(st->probes_stream_only, 1);
			assert_int_equal(state_of(&net, 0, 1), MEMBER_ALIVE);
		} else {
			assert_int_equal(st->probes_stream_only, 0);
			assert_int_equal(state_of(&net, 0, 1), MEMBER_SUSPECT);
		}
		net_free(&net);
	}
}

static void partition_heals_through_reconnect(void **state)
{
	(void)state;
	/* Two halves lose each other for a minute: each declares the other
	 * dead and stops probing it. Reconnect (push-pull with a random dead
	 * member) must bring the fleet back to one view after the heal. */
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 8, &cfg);
	net_join_all(&net);
	for (size_t i = 0; i < 8; i++)
		net.side[i] = i < 4 ? 0 : 1;
	net.split = true;
	net_run(&net, net.now + 60000);
	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j++)
			assert_int_equal(state_of(&net, i, j),
					 net.side[i] == net.side[j] ? MEMBER_ALIVE : MEMBER_DEAD);
	net.split = false;
	net_run(&net, net.now + 120000);
	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j++)
			assert_int_equal(state_of(&net, i, j), MEMBER_ALIVE);
	uint64_t reconnects = 0;
	for (size_t i = 0; i < 8; i++)
		reconnects += member_core_stats(net.cores[i])->reconnects_started;
	assert_true(reconnects > 0);
	net_free(&net);
}

/* A joiner learns every member from its seed's push-pull and queues them
 * all as broadcasts; its own ALIVE, the one news the mesh needs, must still
 * leave in the first packet that carries broadcasts (with 31 members learned
 * and ~16 ALIVEs per packet it used to wait a whole gossip round). */
static void joiner_announces_itself_first(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, NMAX, &cfg);
	size_t last = NMAX - 1;
	net.down[last] = true; /* joins at the end */
	for (size_t i = 1; i < last; i++) {
		assert_int_equal(member_core_join(net.cores[i], &net.ids[0].addr, 1, net.now), 0);
		net_pump(&net);
	}
	net_run(&net, net.now + 30000); /* every broadcast queue drains */
	net.down[last] = false;
	net.now += 1;
	struct member_core *c = net.cores[last];
	/* its ALIVE waited alone (nobody to gossip to), as after a start */
	for (int k = 0; k < 5; k++) {
		net.now = member_core_next_deadline(c) > net.now ? member_core_next_deadline(c) : net.now;
		member_core_tick(c, net.now);
		net_pump(&net);
	}
	assert_int_equal(member_core_join(c, &net.ids[0].addr, 1, net.now), 0);
	net_pump(&net); /* the push-pull: it now knows everyone */
	assert_int_equal(member_core_live_count(c), NMAX);
	bool found = false, seen = false;
	for (int k = 0; k < 20 && !seen; k++) {
		uint64_t d = member_core_next_deadline(c);
		if (d > net.now)
			net.now = d;
		member_core_tick(c, net.now);
		struct member_out o;
		while (!seen && member_core_poll(c, &o)) {
			if (o.kind != MEMBER_OUT_PACKET)
				continue;
			struct wire_msg msgs[SHOAL_MSGS_PER_PACKET_MAX];
			size_t n = 0;
			assert_int_equal(wire_decode_payload(o.data, o.len, msgs, &n), 0);
			for (size_t i = 0; i < n; i++) {
				if (msgs[i].type != WIRE_ALIVE)
					continue;
				seen = true; /* the first packet with broadcasts */
				if (memcmp(msgs[i].id, net.ids[last].id, SHOAL_NODE_ID_BYTES) == 0)
					found = true;
			}
		}
	}
	assert_true(seen);
	assert_true(found);
	net_free(&net);
}

/* Whether packet o carries node subject's ALIVE at inc. */
/* Whether a packet carries a message of `type` about `subject` at `inc`
 * (an ALIVE names its subject by id, an accusation by id prefix). */
static bool packet_carries(const struct net *net, const struct member_out *o, uint8_t type,
			   size_t subject, uint32_t inc)
{
	struct wire_msg msgs[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n = 0;
	assert_int_equal(wire_decode_payload(o->data, o->len, msgs, &n), 0);
	size_t id_len = type == WIRE_ALIVE ? SHOAL_NODE_ID_BYTES : SHOAL_NODE_ID_PREFIX_BYTES;
	for (size_t m = 0; m < n; m++)
		if (msgs[m].type == type && msgs[m].incarnation == inc &&
		    memcmp(msgs[m].id, net->ids[subject].id, id_len) == 0)
			return true;
	return false;
}

static bool packet_carries_alive(const struct net *net, const struct member_out *o,
				 size_t subject, uint32_t inc)
{
	return packet_carries(net, o, WIRE_ALIVE, subject, inc);
}

/* Runs node `i` alone until it has emitted a packet to `to`, and returns
 * whether that packet carries an ALIVE about `subject` at `inc`. */
static bool next_packet_carries_alive(struct net *net, size_t i, size_t to, size_t subject,
				      uint32_t inc)
{
	struct member_core *c = net->cores[i];
	for (int k = 0; k < 200; k++) {
		struct member_out o;
		while (member_core_poll(c, &o)) {
			if (o.kind == MEMBER_OUT_PACKET && addr_equal(&o.to, &net->ids[to].addr))
				return packet_carries_alive(net, &o, subject, inc);
		}
		uint64_t d = member_core_next_deadline(c);
		if (d > net->now)
			net->now = d;
		member_core_tick(c, net->now);
	}
	fail_msg("node %zu sent nothing to node %zu", i, to);
	return false;
}

/* memberlist asks only members it holds alive to probe indirectly (a
 * suspect is likely down: it would waste one of the relays, and its
 * missing NACK would count against the prober's health). Node 0 holds 5, 6
 * and 7 suspect and hears nothing more, so every probe fails and goes
 * indirect: every PING_REQ must go to a member it holds alive. */
static void indirect_probes_go_to_alive_members(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 8, &cfg);
	net_join_all(&net);
	net_run(&net, net.now + 10000); /* queues drain */
	struct wire_msg m;
	for (size_t v = 5; v < 8; v++) {
		m = accusation(&net, WIRE_SUSPECT, inc_of(&net, 0, v), v, 1);
		deliver_one(&net, 0, 1, &m);
		assert_int_equal(state_of(&net, 0, v), MEMBER_SUSPECT);
	}
	struct member_core *c = net.cores[0];
	unsigned reqs = 0, with_suspects = 0;
	for (int k = 0; k < 400; k++) {
		struct member_out o;
		while (member_core_poll(c, &o)) {
			if (o.kind != MEMBER_OUT_PACKET)
				continue;
			int to = node_by_addr(&net, &o.to);
			assert_true(to >= 0);
			struct wire_msg msgs[SHOAL_MSGS_PER_PACKET_MAX];
			size_t n = 0;
			assert_int_equal(wire_decode_payload(o.data, o.len, msgs, &n), 0);
			for (size_t i = 0; i < n; i++) {
				if (msgs[i].type != WIRE_PING_REQ)
					continue;
				reqs++;
				assert_int_equal(state_of(&net, 0, (size_t)to), MEMBER_ALIVE);
			}
		}
		for (size_t v = 5; v < 8; v++)
			with_suspects += state_of(&net, 0, v) == MEMBER_SUSPECT;
		if (reqs >= 6)
			break;
		uint64_t d = member_core_next_deadline(c);
		if (d > net.now)
			net.now = d;
		member_core_tick(c, net.now);
	}
	assert_true(reqs >= 6);
	assert_true(with_suspects > 0);
	net_free(&net);
}

static void own_refutation_leads_the_packet(void **state)
{
	(void)state;
	/* Node 0 refutes a suspicion, then, before its ALIVE has gone out, hears
	 * of 40 new members: 40 newer broadcasts. Its next packet must still
	 * carry its refutation (only it can send that one); before, the 40
	 * newer ones filled the packet and the refutation waited. */
	struct net net;
	struct member_config cfg = cfg_default();
	net_init(&net, 3, &cfg);
	net_join_all(&net);
	net_run(&net, net.now + 10000); /* queues drain */
	uint32_t inc = member_core_incarnation(net.cores[0]);
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 0, 1);
	deliver_one(&net, 0, 1, &m);
	assert_int_equal(member_core_incarnation(net.cores[0]), inc + 1);
	for (size_t k = 0; k < 40; k++) {
		struct member_identity id;
		make_identity(&id, 100 + k);
		m = alive_msg(&id, 1);
		deliver_one(&net, 0, 1, &m);
	}
	assert_int_equal(member_core_count(net.cores[0]), 43);
	/* a ping from node 1: the ACK is the next packet to node 1 */
	memset(&m, 0, sizeof(m));
	m.type = WIRE_PING;
	m.seq = 9;
	memcpy(m.id, net.ids[0].id, 32);
	deliver_one(&net, 0, 1, &m);
	assert_true(next_packet_carries_alive(&net, 0, 1, 0, inc + 1));
	net_free(&net);
}

/* n nodes joined and settled (queues drained), with push-pull (off in
 * cfg_default) and reconnect off: only gossip and direct answers can
 * repair a stale view. Returns the configuration. */
static struct member_config net_start_without_repair(struct net *net, size_t n)
{
	struct member_config cfg = cfg_default();
	cfg.reconnect_interval_ms = 0;
	net_init(net, n, &cfg);
	net_join_all(net);
	net_run(net, net->now + 10000);
	return cfg;
}

static void stale_accuser_is_answered_directly(void **state)
{
	(void)state;
	/* Node 0 holds node 2 dead at incarnation i. Node 2 has refuted (i+1)
	 * while 0 was cut off, and everyone else has that, so gossip will not
	 * bring it to 0 again; push-pull and reconnect are off. When 2 talks to
	 * 0, 0 tells it it is dead at i; 2 must answer with its current ALIVE,
	 * which revives it at 0. Before, 2 ignored the stale accusation and 0
	 * held it dead until some push-pull. */
	struct net net;
	net_start_without_repair(&net, 3);
	uint32_t inc = inc_of(&net, 0, 2);
	struct wire_msg m = accusation(&net, WIRE_DEAD, inc, 2, 1);
	net.down[2] = true;
	deliver_one(&net, 0, 1, &m);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_DEAD);
	/* 0 is cut off before its DEAD leaves; 2 refutes a suspicion and its
	 * ALIVE reaches 1 and drains from every queue */
	net.down[0] = true;
	net.down[2] = false;
	m.type = WIRE_SUSPECT;
	deliver_one(&net, 2, 1, &m);
	net_run(&net, net.now + 2000);
	assert_int_equal(state_of(&net, 1, 2), MEMBER_ALIVE);
	assert_int_equal(inc_of(&net, 1, 2), inc + 1);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_DEAD);
	net.down[0] = false;
	net_run(&net, net.now + 10000);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(inc_of(&net, 0, 2), inc + 1);
	assert_true(member_core_stats(net.cores[2])->refutations_direct >= 1);
	net_free(&net);
}

/* Node 0 suspects node 2 at incarnation i, which 2 refuted (i+1) while 0
 * was away; every other node took the refutation long ago and nobody sends
 * it any more (push-pull and reconnect off), and 0 cannot reach 2 itself
 * (2 would answer an accusation about itself). The others must answer 0's
 * stale accusation with 2's current ALIVE before 0's suspicion runs out;
 * before, they ignored it and 0 declared a live node dead. */
static void stale_accusation_of_another_is_answered(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = net_start_without_repair(&net, 6);
	uint32_t inc = inc_of(&net, 0, 2);
	net.cut[0][2] = net.cut[2][0] = true;
	/* 2 is accused while 0 is away, and refutes */
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 2, 1);
	net.down[0] = true;
	deliver_one(&net, 2, 1, &m);
	net_run(&net, net.now + 5000);
	for (size_t i = 1; i < 6; i++) {
		assert_int_equal(state_of(&net, i, 2), MEMBER_ALIVE);
		assert_int_equal(inc_of(&net, i, 2), inc + 1);
	}
	/* 0 is back and hears the stale accusation */
	net.down[0] = false;
	deliver_one(&net, 0, 1, &m);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_SUSPECT);
	net_run(&net, net.now + 60000); /* the longest suspicion is ~19 s */
	assert_int_equal(net.events[0][MEMBER_EV_DEAD], 0);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(inc_of(&net, 0, 2), inc + 1);
	uint64_t answers = 0;
	for (size_t i = 1; i < 6; i++)
		answers += member_core_stats(net.cores[i])->stale_answers;
	assert_true(answers >= 1);

	/* Bounded: a flood of stale accusations from 0 at one instant gets
	 * one answer from 1 per gossip interval. */
	uint64_t before = member_core_stats(net.cores[1])->stale_answers;
	for (int k = 0; k < 20; k++)
		deliver_one(&net, 1, 0, &m);
	assert_int_equal(member_core_stats(net.cores[1])->stale_answers - before, 1);
	net.now += cfg.gossip_interval_ms; /* the next interval: one more */
	deliver_one(&net, 1, 0, &m);
	assert_int_equal(member_core_stats(net.cores[1])->stale_answers - before, 2);
	net_free(&net);
}

/* The directory gid of node i. */
static uint32_t gid_of(const struct net *net, size_t i)
{
	uint32_t g = member_dir_find(net->dir, net->ids[i].id);
	assert_true(g < NMAX);
	return g;
}

/* Drops core i's pending outputs (lost packets). */
static void drop_outputs(struct net *net, size_t i)
{
	struct member_out o;
	while (member_core_poll(net->cores[i], &o))
		if (o.kind == MEMBER_OUT_EVENT)
			net_deliver(net, i, &o);
}

/* Node 0 holds a stale suspicion of node 2: 2 refuted it while 0 was
 * away, the refutation has drained from every queue, and 0's own gossip of
 * the suspicion is lost. Nobody confirms it. When the suspicion runs out
 * (6 members: 24 s without a confirmation), 0 must put it to 2 before
 * declaring 2 dead: 2 answers with its current ALIVE. Before, 0 declared a
 * live node dead (the one false death left in 400 runs of 200 nodes at
 * 10% loss). A member that does not answer is declared dead a (health-
 * scaled) probe timeout later. */
static void unconfirmed_suspicion_is_put_to_the_member(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 6);
	uint32_t inc = inc_of(&net, 0, 2);
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 2, 1);
	net.down[0] = true;
	deliver_one(&net, 2, 1, &m);
	net_run(&net, net.now + 5000);
	assert_int_equal(inc_of(&net, 1, 2), inc + 1);
	for (size_t i = 0; i < 6; i++)
		net.down[i] = i != 2; /* no one can confirm or answer for 2 */
	/* 0 (its clock stopped while away) hears the stale accusation; what
	 * it sends about it is lost */
	uint64_t t1 = net.now;
	deliver_one(&net, 0, 1, &m);
	drop_outputs(&net, 0);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_SUSPECT);
	net.down[0] = false;
	net.now = t1 + 24000;
	member_core_tick(net.cores[0], net.now);
	net_pump(&net);
	assert_int_equal(net.dead_about[0][gid_of(&net, 2)], 0);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(inc_of(&net, 0, 2), inc + 1);
	assert_int_equal(member_core_stats(net.cores[0])->suspicions_rechecked, 1);
	assert_true(member_core_stats(net.cores[2])->refutations_direct >= 1);

	/* 2 is down: the check goes unanswered and 2 dies at 0 after it */
	net.down[2] = true;
	m = accusation(&net, WIRE_SUSPECT, inc + 1, 2, 1);
	t1 = net.now;
	deliver_one(&net, 0, 1, &m);
	drop_outputs(&net, 0);
	net.now = t1 + 24000;
	member_core_tick(net.cores[0], net.now);
	net_pump(&net);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_SUSPECT);
	assert_int_equal(member_core_stats(net.cores[0])->suspicions_rechecked, 2);
	net_run(&net, net.now + 8u * 500u);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_DEAD);
	assert_int_equal(net.dead_about[0][gid_of(&net, 2)], 1);
	net_free(&net);
}

/* Node 0 hears no one (every probe it sends fails); the others hear
 * each other and 0. When 0's probe of node 2 fails, 0 tells 2 of the
 * suspicion in person at once, and 2, which is up, has refuted by the end
 * of that same millisecond. Before, 2 heard of it only when gossip picked
 * it (0's, to 3 random members of 11, or relayed a step later). */
static void raised_suspicion_is_told_to_the_member(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 12);
	uint32_t inc = member_core_incarnation(net.cores[2]);
	for (size_t i = 1; i < 12; i++)
		net.cut[i][0] = true;
	uint64_t t0 = net.now;
	while (state_of(&net, 0, 2) == MEMBER_ALIVE && net.now < t0 + 120000)
		net_run(&net, net.now + 1);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_SUSPECT);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc + 1);
	net_free(&net);
}

/* Node 0 suspects node 2 and its gossip of it is lost (after a partition
 * heals, the accusations of the cut have been gossiped out and local
 * health slows probing, so no probe may tell 2 before the suspicion runs
 * out). When 2 sends 0 anything, 0 tells 2 it is suspected, and 2
 * refutes; once 2's packet carries the refutation, nothing is told. */
static void suspect_that_talks_is_told(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 3);
	uint32_t inc = inc_of(&net, 0, 2);
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 2, 1);
	deliver_one(&net, 0, 1, &m);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_SUSPECT);
	drop_outputs(&net, 0);
	const struct member_stats *st = member_core_stats(net.cores[0]);
	assert_int_equal(st->suspects_told, 0);
	struct wire_msg ack;
	memset(&ack, 0, sizeof(ack));
	ack.type = WIRE_ACK;
	ack.seq = 77;
	deliver_one(&net, 0, 2, &ack);
	assert_int_equal(st->suspects_told, 1);
	struct member_out o;
	bool told = false;
	while (member_core_poll(net.cores[0], &o)) {
		if (o.kind == MEMBER_OUT_PACKET && addr_equal(&o.to, &net.ids[2].addr))
			told = told || packet_carries(&net, &o, WIRE_SUSPECT, 2, inc);
		else if (o.kind == MEMBER_OUT_EVENT)
			net_deliver(&net, 0, &o);
	}
	assert_true(told);
	/* What 2 does with it: refutes. */
	deliver_one(&net, 2, 0, &m);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc + 1);
	/* A packet that carries the refutation revives 2 and tells nothing. */
	struct wire_msg alive = alive_msg(&net.ids[2], inc + 1);
	alive.tags_count = net.ids[2].tags_count;
	for (uint8_t t = 0; t < alive.tags_count; t++)
		strcpy(alive.tags[t], net.ids[2].tags[t]);
	deliver_one(&net, 0, 2, &alive);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	assert_int_equal(inc_of(&net, 0, 2), inc + 1);
	assert_int_equal(st->suspects_told, 1);
	net_free(&net);
}

/* An accusation names its accuser by id prefix, so an accuser this
 * directory has never met cannot be learnt from it: the accusation is
 * ignored and changes nothing, except that one about ourselves is still
 * refuted. */
static void accusation_by_unknown_accuser(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 3);
	size_t gids = member_dir_count(net.dir);
	uint32_t inc = inc_of(&net, 0, 2);
	const struct member_stats *st = member_core_stats(net.cores[0]);
	for (int type = WIRE_SUSPECT; type <= WIRE_DEAD; type++) {
		struct wire_msg m = accusation(&net, (uint8_t)type, inc, 2, 1);
		memset(m.from_id, 0xee, SHOAL_NODE_ID_BYTES);
		uint64_t ignored = st->msgs_ignored;
		deliver_one(&net, 0, 1, &m);
		assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
		assert_int_equal(st->msgs_ignored, ignored + 1);
		assert_int_equal(member_dir_count(net.dir), gids);
	}
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 2, 1);
	memset(m.from_id, 0xee, SHOAL_NODE_ID_BYTES);
	deliver_one(&net, 2, 1, &m);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc + 1);
	assert_int_equal(member_dir_count(net.dir), gids);
	net_free(&net);
}

/* Accusations name members by the first SHOAL_NODE_ID_PREFIX_BYTES of
 * their ids, so a directory holds at most one id per prefix: a second one
 * is refused (UINT32_MAX), and a packet from it, or an ALIVE about it,
 * changes nothing. */
static void directory_refuses_a_second_id_with_the_same_prefix(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 3);
	struct member_dir *d = net.dir;
	size_t gids = member_dir_count(d);
	uint32_t g1 = gid_of(&net, 1);
	uint8_t twin[SHOAL_NODE_ID_BYTES];
	memcpy(twin, net.ids[1].id, sizeof(twin));
	twin[SHOAL_NODE_ID_BYTES - 1] ^= 1;
	assert_int_equal(member_dir_intern(d, twin), UINT32_MAX);
	assert_int_equal(member_dir_find(d, twin), UINT32_MAX);
	assert_int_equal(member_dir_find_prefix(d, twin), g1);
	assert_int_equal(member_dir_find(d, net.ids[1].id), g1);
	assert_int_equal(member_dir_count(d), gids);
	/* a packet from the twin: dropped before anything is read */
	const struct member_stats *st = member_core_stats(net.cores[0]);
	struct wire_msg m = accusation(&net, WIRE_DEAD, inc_of(&net, 0, 2), 2, 1);
	uint64_t ignored = st->msgs_ignored;
	uint8_t buf[256];
	struct wr w = wr_init(buf, sizeof(buf));
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, 1);
	wire_put_msg(&w, &m);
	assert_int_equal(member_core_recv_packet(net.cores[0], twin, &net.ids[1].addr, buf,
						 w.len, net.now), 0);
	assert_int_equal(st->msgs_ignored, ignored + 1);
	assert_int_equal(state_of(&net, 0, 2), MEMBER_ALIVE);
	/* an ALIVE about the twin, from a member: not learnt */
	struct wire_msg a;
	memset(&a, 0, sizeof(a));
	a.type = WIRE_ALIVE;
	a.incarnation = 1;
	memcpy(a.id, twin, sizeof(twin));
	assert_int_equal(addr_parse("127.0.0.1:9999", &a.addr), 0);
	strcpy(a.name, "twin");
	size_t members = member_core_count(net.cores[0]);
	deliver_one(&net, 0, 2, &a);
	assert_int_equal(member_core_count(net.cores[0]), members);
	assert_int_equal(member_dir_count(d), gids);
	/* an id with another prefix is added */
	twin[SHOAL_NODE_ID_PREFIX_BYTES - 1] ^= 1;
	uint32_t g = member_dir_intern(d, twin);
	assert_true(g != UINT32_MAX && g != g1);
	assert_int_equal(member_dir_find_prefix(d, twin), g);
	net_free(&net);
}

/* A member that has just joined push-pulls again 2 s later: members that
 * joined at the same time are in no state it merged, and their ALIVEs may
 * have gone out before anyone knew it (one of 30 cold starts of the 8-agent
 * demo left an agent without another for 25 s). The scheduled push-pull,
 * 15-45 s after start, still comes. */
static void joiner_pushpulls_again_soon(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	cfg.push_pull_interval_ms = 30000;
	net_init(&net, 3, &cfg);
	assert_int_equal(member_core_join(net.cores[1], &net.ids[0].addr, 1, net.now), 0);
	net_collect(&net, 1);
	net_pump(&net);
	uint64_t t0 = net.now;
	uint64_t started = member_core_stats(net.cores[1])->pushpulls_started;
	net_run(&net, t0 + 1900);
	assert_int_equal(member_core_stats(net.cores[1])->pushpulls_started, started);
	net_run(&net, t0 + 2100);
	assert_int_equal(member_core_stats(net.cores[1])->pushpulls_started, started + 1);
	net_run(&net, t0 + 46000);
	assert_int_equal(member_core_stats(net.cores[1])->pushpulls_started, started + 2);
	net_free(&net);
}

/* A member that learns it was declared dead was cut off from those who
 * declared it: it push-pulls with a random member 2 s later, besides its
 * schedule, whether the DEAD comes before it refuted or after (a stale
 * DEAD, when a suspicion reached it first). Refuting a suspicion alone
 * does not: that is the common case under loss. */
static void declared_dead_pushpulls_again_soon(void **state)
{
	(void)state;
	struct net net;
	struct member_config cfg = cfg_default();
	cfg.push_pull_interval_ms = 30000; /* the first scheduled: 15-45 s */
	net_init(&net, 4, &cfg);
	net_join_all(&net); /* 5 s, the join's extra push-pulls included */
	uint64_t t0 = net.now;
	uint64_t started[4];
	for (size_t i = 0; i < 4; i++)
		started[i] = member_core_stats(net.cores[i])->pushpulls_started;
	uint32_t inc0 = member_core_incarnation(net.cores[0]);
	uint32_t inc2 = member_core_incarnation(net.cores[2]);
	struct wire_msg dead0 = accusation(&net, WIRE_DEAD, inc0, 0, 1);
	deliver_one(&net, 0, 1, &dead0);
	struct wire_msg suspect2 = accusation(&net, WIRE_SUSPECT, inc2, 2, 1);
	deliver_one(&net, 2, 1, &suspect2);
	assert_int_equal(member_core_incarnation(net.cores[0]), inc0 + 1);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc2 + 1);
	net_run(&net, t0 + 1900);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(member_core_stats(net.cores[i])->pushpulls_started, started[i]);
	net_run(&net, t0 + 2100);
	assert_int_equal(member_core_stats(net.cores[0])->pushpulls_started, started[0] + 1);
	assert_int_equal(member_core_stats(net.cores[2])->pushpulls_started, started[2]);
	/* Node 2 hears the DEAD its suspicion became, after its refutation. */
	struct wire_msg dead2 = accusation(&net, WIRE_DEAD, inc2, 2, 1);
	deliver_one(&net, 2, 1, &dead2);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc2 + 1); /* stale */
	net_run(&net, t0 + 4000);
	assert_int_equal(member_core_stats(net.cores[2])->pushpulls_started, started[2]);
	net_run(&net, t0 + 4200);
	assert_int_equal(member_core_stats(net.cores[2])->pushpulls_started, started[2] + 1);
	assert_int_equal(member_core_stats(net.cores[0])->pushpulls_started, started[0] + 1);
	assert_int_equal(member_core_stats(net.cores[1])->pushpulls_started, started[1]);
	assert_int_equal(member_core_stats(net.cores[3])->pushpulls_started, started[3]);
	/* The schedule still comes: by 45 s after the start every core has
	 * made its first scheduled push-pull. */
	net_run(&net, t0 + 46000);
	assert_true(member_core_stats(net.cores[0])->pushpulls_started >= started[0] + 2);
	assert_true(member_core_stats(net.cores[2])->pushpulls_started >= started[2] + 2);
	net_free(&net);
}

/* Whether core i's pending outputs (taken, no time passing) include a
 * packet to node `to` carrying node subject's ALIVE at inc. */
static bool pending_packet_carries_alive(struct net *net, size_t i, size_t to, size_t subject,
					 uint32_t inc)
{
	bool found = false;
	struct member_out o;
	while (member_core_poll(net->cores[i], &o))
		if (o.kind == MEMBER_OUT_PACKET && addr_equal(&o.to, &net->ids[to].addr))
			found |= packet_carries_alive(net, &o, subject, inc);
	return found;
}

/* A member accused by its accuser in person (what suspicion_expire sends)
 * refutes and answers that accuser at once with its new ALIVE, which
 * otherwise would reach the accuser only if gossip picked it. An accusation
 * relayed by a third member gets the refutation by gossip only. */
static void accuser_in_person_is_answered_at_once(void **state)
{
	(void)state;
	struct net net;
	net_start_without_repair(&net, 3);
	uint32_t inc = member_core_incarnation(net.cores[2]);
	struct wire_msg m = accusation(&net, WIRE_SUSPECT, inc, 2, 0);
	deliver_one(&net, 2, 0, &m);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc + 1);
	assert_true(pending_packet_carries_alive(&net, 2, 0, 2, inc + 1));

	m = accusation(&net, WIRE_SUSPECT, inc + 1, 2, 1); /* by 1, relayed by 0 */
	deliver_one(&net, 2, 0, &m);
	assert_int_equal(member_core_incarnation(net.cores[2]), inc + 2);
	assert_false(pending_packet_carries_alive(&net, 2, 0, 2, inc + 2));
	net_free(&net);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(codec_round_trip_every_type),
		cmocka_unit_test(codec_rejects_bad_payloads),
		cmocka_unit_test(codec_sim_form),
		cmocka_unit_test(sim_form_only_in_sim_cores),
		cmocka_unit_test(codec_rejects_bad_names),
		cmocka_unit_test(state_round_trip_and_rejects),
		cmocka_unit_test(pair_is_the_encoded_exchange),
		cmocka_unit_test(shared_outputs_change_nothing),
		cmocka_unit_test(subject_hints_change_nothing),
		cmocka_unit_test(join_converges_and_tags_travel),
		cmocka_unit_test(crash_is_suspected_then_dead_everywhere),
		cmocka_unit_test(suspicion_timeout_follows_lifeguard),
		cmocka_unit_test(incarnation_rules_and_refutation),
		cmocka_unit_test(accusations_about_the_dead_wait_for_its_return),
		cmocka_unit_test(dead_about_self_is_refuted_and_costs_health),
		cmocka_unit_test(graceful_leave_marks_left),
		cmocka_unit_test(restarted_node_rejoins_with_higher_incarnation),
		cmocka_unit_test(stopped_node_learns_it_is_dead_and_refutes),
		cmocka_unit_test(stale_accusation_of_another_is_answered),
		cmocka_unit_test(malformed_packet_changes_nothing),
		cmocka_unit_test(ping_for_someone_else_is_ignored),
		cmocka_unit_test(indirect_probe_saves_a_node_with_a_bad_link),
		cmocka_unit_test(stream_ping_saves_a_member_whose_datagrams_are_lost),
		cmocka_unit_test(without_stream_pings_that_member_is_declared_dead),
		cmocka_unit_test(stream_ping_answers_only_its_probe_in_time),
		cmocka_unit_test(partition_heals_through_reconnect),
		cmocka_unit_test(joiner_announces_itself_first),
		cmocka_unit_test(own_refutation_leads_the_packet),
		cmocka_unit_test(stale_accuser_is_answered_directly),
		cmocka_unit_test(add_alive_in_bulk),
		cmocka_unit_test(suspicion_timeout_follows_the_live_cluster),
		cmocka_unit_test(suspicion_timeout_after_each_confirmation_count),
		cmocka_unit_test(scalings_match_libm),
		cmocka_unit_test(indirect_probes_go_to_alive_members),
		cmocka_unit_test(unconfirmed_suspicion_is_put_to_the_member),
		cmocka_unit_test(accuser_in_person_is_answered_at_once),
		cmocka_unit_test(raised_suspicion_is_told_to_the_member),
		cmocka_unit_test(suspect_that_talks_is_told),
		cmocka_unit_test(accusation_by_unknown_accuser),
		cmocka_unit_test(directory_refuses_a_second_id_with_the_same_prefix),
		cmocka_unit_test(joiner_pushpulls_again_soon),
		cmocka_unit_test(declared_dead_pushpulls_again_soon),
		cmocka_unit_test(unknown_member_reported_dead_is_recorded_dead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
