/*
 * fuzz_wire_payload.c — the membership message codec (wire_decode_payload)
 * and the core's UDP entry point (member_core_recv_packet) on arbitrary
 * payloads.
 *
 * Properties checked:
 *   - a payload that decodes re-encodes (known messages only; unknown types
 *     are dropped) to a compound that decodes to the same messages; its size
 *     is what wire_msg_size() predicts, and with no unknown entries it is
 *     byte-for-byte the input (the encoding is canonical);
 *   - member_core_recv_packet fails exactly when the decoder does, with the
 *     same code, and then nothing changed: member count and order, every
 *     member's state and incarnation, our own incarnation and health, the
 *     shared identity directory, the stats (but packets_malformed), and no
 *     output was queued;
 *   - after an accepted payload every packet the core emits decodes and fits
 *     the configured payload bound, and every event names a known member;
 *   - the same for a simulator's core (member_config.sim_gids), which also
 *     reads the simulator's form (WIRE_VERSION_SIM, accusations by gid):
 *     it fails exactly when wire_scan_payload_sim does, and what it emits
 *     reads as that form.
 *
 * The core under test is fresh for every input (so a run is deterministic):
 * node 0 of four nodes sharing one member_dir, all with fixed ids and rng
 * seeds. It knows the three others, in states alive (1), suspect (2) and
 * dead (3). The sender is chosen by input length: node 0 (ourselves), 1, 2,
 * 3, or a stranger, so every sender path is reached by the same bytes.
 *
 * Writing the seed corpus: SHOAL_FUZZ_WRITE_CORPUS=DIR ./fuzz_wire_payload
 * writes DIR/wire_payload/ (valid payloads of every type, and compounds)
 * and exits. fuzz_wire_state.c includes this file with
 * FUZZ_WIRE_FIXTURE_ONLY for the fixture.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/membership.h"
#include "core/wire.h"
#include "shoal/error.h"
#include "shoal/limits.h"

/* Properties hold in every build type (assert() may be compiled out). */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

#define FX_NODES 4          /* node 0 is the core under test */
#define FX_NOW_MS 1000000u
#define FX_SNAP_MAX 8       /* members / identities a snapshot holds */

struct fx {
	bool sim;           /* the cores are the simulator's (sim_gids) */
	struct member_dir *dir;
	struct member_core *cores[FX_NODES];
	struct member_identity ids[FX_NODES];
	struct member_identity stranger; /* not in the directory at start */
};

static void fx_identity(struct member_identity *id, unsigned i)
{
	memset(id, 0, sizeof(*id));
	for (int b = 0; b < SHOAL_NODE_ID_BYTES; b++)
		id->id[b] = (uint8_t)(i * 31 + b + 1); /* distinct for 0..3 and 9 */
	snprintf(id->name, sizeof(id->name), "fuzz-%u", i);
	if (i % 2 == 0) {
		id->addr.family = SHOAL_AF_INET;
		id->addr.ip[0] = 127;
		id->addr.ip[3] = (uint8_t)(i + 1);
	} else {
		id->addr.family = SHOAL_AF_INET6;
		id->addr.ip[15] = (uint8_t)(i + 1);
	}
	id->addr.port = (uint16_t)(7946 + i);
	id->tags_count = (uint8_t)(i % 3);
	for (uint8_t t = 0; t < id->tags_count; t++)
		snprintf(id->tags[t], sizeof(id->tags[t]), "tag-%u", (unsigned)t);
}

static void fx_msg(struct wire_msg *m, uint8_t type, uint32_t inc,
		   const uint8_t *id, const uint8_t *from_id)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->incarnation = inc;
	memcpy(m->id, id, SHOAL_NODE_ID_BYTES);
	if (from_id)
		memcpy(m->from_id, from_id, SHOAL_NODE_ID_BYTES);
}

/* Encodes a compound of n messages into buf; returns its length. */
static size_t fx_compound(uint8_t *buf, size_t cap, const struct wire_msg *msgs,
			  size_t n)
{
	struct wr w = wr_init(buf, cap);
	wr_u8(&w, WIRE_VERSION);
	wr_u8(&w, (uint8_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_msg(&w, &msgs[i]);
	CHECK(wr_ok(&w));
	return w.len;
}

/* Empties the core's output queue, checking what it emits. */
static void fx_drain(struct fx *x)
{
	struct member_core *c = x->cores[0];
	static struct wire_msg msgs[SHOAL_MSGS_PER_PACKET_MAX];
	struct member_out o;
	while (member_core_poll(c, &o)) {
		struct member_info info;
		size_t n;
		switch (o.kind) {
		case MEMBER_OUT_PACKET: {
			CHECK(o.len <= SHOAL_UDP_PAYLOAD_BYTES_MAX);
			static struct wire_item items[SHOAL_MSGS_PER_PACKET_MAX];
			bool sim = false;
			if (x->sim)
				CHECK(wire_scan_payload_sim(o.data, o.len, true, items, msgs, &n,
							    &sim) == 0 && sim);
			else
				CHECK(wire_decode_payload(o.data, o.len, msgs, &n) == 0);
			break;
		}
		case MEMBER_OUT_EVENT:
			CHECK(member_dir_get(x->dir, o.ev.gid) != NULL);
			CHECK(member_core_lookup(c, o.ev.gid, &info) == 0);
			break;
		case MEMBER_OUT_PUSHPULL:
			break;
		default:
			abort();
		}
	}
}

/* Builds the fixture: node 0 knows 1 alive, 2 suspect and 3 dead; sim:
 * the simulator's cores. */
static void fx_open_as(struct fx *x, bool sim)
{
	struct member_config cfg;
	member_config_default(&cfg);
	cfg.sim_gids = sim;
	memset(x, 0, sizeof(*x));
	x->sim = sim;
	x->dir = member_dir_new();
	CHECK(x->dir != NULL);
	for (unsigned i = 0; i < FX_NODES; i++) {
		fx_identity(&x->ids[i], i);
		x->cores[i] = member_core_new(&cfg, x->dir, &x->ids[i], 1,
					      0x5eed0000u + i, FX_NOW_MS);
		CHECK(x->cores[i] != NULL);
	}
	fx_identity(&x->stranger, 9);
	struct member_core *c = x->cores[0];
	for (unsigned i = 1; i < FX_NODES; i++) {
		uint32_t gid = member_core_self_gid(x->cores[i]);
		CHECK(member_core_add_alive(c, &gid, 1, 1, FX_NOW_MS) == 0);
	}
	struct wire_msg m[2];
	fx_msg(&m[0], WIRE_SUSPECT, 1, x->ids[2].id, x->ids[1].id);
	fx_msg(&m[1], WIRE_DEAD, 1, x->ids[3].id, x->ids[1].id);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len = fx_compound(buf, sizeof(buf), m, 2);
	CHECK(member_core_recv_packet(c, x->ids[1].id, &x->ids[1].addr, buf, len,
				      FX_NOW_MS) == 0);
	fx_drain(x);
	static const uint8_t want[FX_NODES] = {MEMBER_ALIVE, MEMBER_ALIVE,
					       MEMBER_SUSPECT, MEMBER_DEAD};
	CHECK(member_core_count(c) == FX_NODES);
	for (unsigned i = 0; i < FX_NODES; i++) {
		struct member_info info;
		CHECK(member_core_lookup(c, member_core_self_gid(x->cores[i]), &info) == 0);
		CHECK(info.state == want[i]);
	}
}

static void fx_open(struct fx *x) { fx_open_as(x, false); }

static void fx_close(struct fx *x)
{
	for (unsigned i = 0; i < FX_NODES; i++)
		member_core_free(x->cores[i]);
	member_dir_free(x->dir);
}

struct fx_snap {
	size_t count, dir_count;
	uint32_t self_incarnation;
	int health;
	struct member_stats stats;
	struct {
		uint32_t gid;
		enum member_state state;
		uint32_t incarnation;
	} m[FX_SNAP_MAX];
	struct member_identity ident[FX_SNAP_MAX]; /* memcpy'd: padding too */
};

static void fx_snapshot(const struct fx *x, struct fx_snap *s)
{
	const struct member_core *c = x->cores[0];
	memset(s, 0, sizeof(*s));
	s->count = member_core_count(c);
	s->dir_count = member_dir_count(x->dir);
	CHECK(s->count <= FX_SNAP_MAX);
	CHECK(s->dir_count <= FX_SNAP_MAX);
	s->self_incarnation = member_core_incarnation(c);
	s->health = member_core_health(c);
	memcpy(&s->stats, member_core_stats(c), sizeof(s->stats));
	for (size_t i = 0; i < s->count; i++) {
		struct member_info info;
		CHECK(member_core_get(c, i, &info) == 0);
		s->m[i].gid = info.gid;
		s->m[i].state = info.state;
		s->m[i].incarnation = info.incarnation;
	}
	for (size_t g = 0; g < s->dir_count; g++)
		memcpy(&s->ident[g], member_dir_get(x->dir, (uint32_t)g),
		       sizeof(s->ident[g]));
}

/* Checks that a rejected input changed nothing but packets_malformed, and
 * queued no output. */
static void fx_check_unchanged(struct fx *x, const struct fx_snap *before)
{
	struct fx_snap after;
	fx_snapshot(x, &after);
	CHECK(after.count == before->count);
	CHECK(after.dir_count == before->dir_count);
	CHECK(after.self_incarnation == before->self_incarnation);
	CHECK(after.health == before->health);
	for (size_t i = 0; i < after.count; i++) {
		CHECK(after.m[i].gid == before->m[i].gid);
		CHECK(after.m[i].state == before->m[i].state);
		CHECK(after.m[i].incarnation == before->m[i].incarnation);
	}
	CHECK(memcmp(after.ident, before->ident,
		     after.dir_count * sizeof(after.ident[0])) == 0);
	struct member_stats want = before->stats;
	want.packets_malformed++;
	CHECK(memcmp(&after.stats, &want, sizeof(want)) == 0);
	struct member_out o;
	CHECK(!member_core_poll(x->cores[0], &o));
}

static void fx_write_file(const char *dir, const char *name, const uint8_t *p,
			  size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

#ifndef FUZZ_WIRE_FIXTURE_ONLY

static bool msg_equal(const struct wire_msg *a, const struct wire_msg *b)
{
	if (a->type != b->type || a->seq != b->seq ||
	    a->incarnation != b->incarnation || a->want_nack != b->want_nack ||
	    memcmp(a->id, b->id, sizeof(a->id)) != 0 ||
	    memcmp(a->from_id, b->from_id, sizeof(a->from_id)) != 0 ||
	    a->addr.family != b->addr.family || a->addr.port != b->addr.port ||
	    memcmp(a->addr.ip, b->addr.ip, sizeof(a->addr.ip)) != 0 ||
	    strcmp(a->name, b->name) != 0 || a->tags_count != b->tags_count)
		return false;
	for (uint8_t i = 0; i < a->tags_count; i++)
		if (strcmp(a->tags[i], b->tags[i]) != 0)
			return false;
	return true;
}

/* Re-encodes the known messages of a decoded payload and decodes again. */
static void check_reencode(const uint8_t *data, size_t size,
			   const struct wire_msg *first, size_t n)
{
	static struct wire_msg known[SHOAL_MSGS_PER_PACKET_MAX];
	static struct wire_msg second[SHOAL_MSGS_PER_PACKET_MAX];
	CHECK(n >= 1 && n <= SHOAL_MSGS_PER_PACKET_MAX);
	size_t k = 0;
	bool skipped = false;
	for (size_t i = 0; i < n; i++) {
		if (first[i].type == 0)
			skipped = true;
		else
			known[k++] = first[i];
	}
	if (k == 0)
		return; /* a compound of nothing is not a payload */
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t predicted = 2;
	for (size_t i = 0; i < k; i++)
		predicted += wire_msg_size(&known[i]);
	size_t len = fx_compound(buf, sizeof(buf), known, k);
	CHECK(len == predicted);
	CHECK(len <= size);
	if (!skipped) {
		CHECK(len == size);
		CHECK(memcmp(buf, data, size) == 0);
	}
	size_t n2 = 0;
	CHECK(wire_decode_payload(buf, len, second, &n2) == 0);
	CHECK(n2 == k);
	for (size_t i = 0; i < k; i++)
		CHECK(msg_equal(&known[i], &second[i]));
}

/* --- seed corpus ----------------------------------------------------------- */

static void put_payload(const char *dir, const char *name,
			const struct wire_msg *msgs, size_t n)
{
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len = fx_compound(buf, sizeof(buf), msgs, n);
	size_t count;
	static struct wire_msg check[SHOAL_MSGS_PER_PACKET_MAX];
	CHECK(wire_decode_payload(buf, len, check, &count) == 0);
	fx_write_file(dir, name, buf, len);
}

static void alive_of(struct wire_msg *m, const struct member_identity *id,
		     uint32_t inc)
{
	fx_msg(m, WIRE_ALIVE, inc, id->id, NULL);
	m->addr = id->addr;
	memcpy(m->name, id->name, sizeof(m->name));
	m->tags_count = id->tags_count;
	memcpy(m->tags, id->tags, sizeof(m->tags));
}

static void write_corpus(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/wire_payload", root);
	mkdir(dir, 0755);
	struct fx x;
	fx_open(&x);
	const uint8_t *self = x.ids[0].id, *p1 = x.ids[1].id, *p2 = x.ids[2].id,
		      *p3 = x.ids[3].id;
	struct wire_msg m[SHOAL_MSGS_PER_PACKET_MAX];

	fx_msg(&m[0], WIRE_PING, 0, self, NULL);
	m[0].seq = 7;
	put_payload(dir, "ping-self", m, 1);
	fx_msg(&m[0], WIRE_PING, 0, p1, NULL);
	m[0].seq = 8;
	put_payload(dir, "ping-other", m, 1);
	fx_msg(&m[0], WIRE_PING_REQ, 0, p2, NULL);
	m[0].seq = 9;
	m[0].addr = x.ids[2].addr; /* v4 */
	m[0].want_nack = true;
	put_payload(dir, "ping-req-v4-nack", m, 1);
	fx_msg(&m[0], WIRE_PING_REQ, 0, p1, NULL);
	m[0].seq = 10;
	m[0].addr = x.ids[1].addr; /* v6 */
	put_payload(dir, "ping-req-v6", m, 1);
	fx_msg(&m[0], WIRE_ACK, 0, self, NULL);
	m[0].seq = 1;
	put_payload(dir, "ack", m, 1);
	fx_msg(&m[0], WIRE_NACK, 0, self, NULL);
	m[0].seq = 1;
	put_payload(dir, "nack", m, 1);

	alive_of(&m[0], &x.stranger, 1);
	put_payload(dir, "alive-new", m, 1);
	alive_of(&m[0], &x.ids[2], 2);
	put_payload(dir, "alive-refutes-suspect", m, 1);
	alive_of(&m[0], &x.ids[3], 1);
	m[0].addr.port = 9999;
	put_payload(dir, "alive-revives-new-addr", m, 1);
	alive_of(&m[0], &x.ids[0], 5);
	put_payload(dir, "alive-self-newer", m, 1);
	alive_of(&m[0], &x.stranger, 0xffffffffu);
	memset(m[0].name, 'n', SHOAL_NAME_BYTES_MAX);
	m[0].name[SHOAL_NAME_BYTES_MAX] = '\0';
	m[0].tags_count = SHOAL_TAGS_COUNT_MAX;
	for (int t = 0; t < SHOAL_TAGS_COUNT_MAX; t++) {
		memset(m[0].tags[t], 'a' + t, SHOAL_TAG_BYTES_MAX);
		m[0].tags[t][SHOAL_TAG_BYTES_MAX] = '\0';
	}
	m[0].addr = x.ids[1].addr;
	put_payload(dir, "alive-longest", m, 1);

	fx_msg(&m[0], WIRE_SUSPECT, 1, p1, p3);
	put_payload(dir, "suspect", m, 1);
	fx_msg(&m[0], WIRE_SUSPECT, 1, p2, p3);
	put_payload(dir, "suspect-confirm", m, 1);
	fx_msg(&m[0], WIRE_SUSPECT, 1, self, p1);
	put_payload(dir, "suspect-self", m, 1);
	fx_msg(&m[0], WIRE_DEAD, 1, p1, p2);
	put_payload(dir, "dead", m, 1);
	fx_msg(&m[0], WIRE_DEAD, 3, p2, p2);
	put_payload(dir, "left", m, 1);
	fx_msg(&m[0], WIRE_DEAD, 1, self, p1);
	put_payload(dir, "dead-self", m, 1);

	/* One of each type in one compound. */
	fx_msg(&m[0], WIRE_PING, 0, self, NULL);
	m[0].seq = 11;
	fx_msg(&m[1], WIRE_PING_REQ, 0, p2, NULL);
	m[1].seq = 12;
	m[1].addr = x.ids[2].addr;
	fx_msg(&m[2], WIRE_ACK, 0, self, NULL);
	m[2].seq = 13;
	fx_msg(&m[3], WIRE_NACK, 0, self, NULL);
	m[3].seq = 14;
	alive_of(&m[4], &x.stranger, 2);
	fx_msg(&m[5], WIRE_SUSPECT, 1, p1, p2);
	fx_msg(&m[6], WIRE_DEAD, 2, p2, p1);
	put_payload(dir, "compound-all-types", m, 7);

	/* The most messages a compound may hold. */
	for (int i = 0; i < SHOAL_MSGS_PER_PACKET_MAX; i++) {
		fx_msg(&m[i], WIRE_ACK, 0, self, NULL);
		m[i].seq = (uint32_t)i;
	}
	put_payload(dir, "compound-max-count", m, SHOAL_MSGS_PER_PACKET_MAX);

	/* Alive gossip about everyone, as a push would piggyback it. */
	for (unsigned i = 0; i < FX_NODES; i++)
		alive_of(&m[i], &x.ids[i], 2);
	alive_of(&m[FX_NODES], &x.stranger, 1);
	put_payload(dir, "compound-alive-all", m, FX_NODES + 1);

	/* A compound with an unknown type (skipped by length) between two
	 * known messages; written by hand since wire_put_msg refuses it. */
	{
		uint8_t buf[256];
		struct wr w = wr_init(buf, sizeof(buf));
		wr_u8(&w, WIRE_VERSION);
		wr_u8(&w, 3);
		fx_msg(&m[0], WIRE_ACK, 0, self, NULL);
		m[0].seq = 21;
		wire_put_msg(&w, &m[0]);
		wr_u8(&w, 0x42);
		size_t mark = wr_begin16(&w);
		wr_bytes(&w, "future", 6);
		wr_end16(&w, mark);
		fx_msg(&m[0], WIRE_SUSPECT, 1, p1, p3);
		wire_put_msg(&w, &m[0]);
		CHECK(wr_ok(&w));
		size_t count;
		static struct wire_msg check[SHOAL_MSGS_PER_PACKET_MAX];
		CHECK(wire_decode_payload(buf, w.len, check, &count) == 0);
		CHECK(count == 3 && check[1].type == 0);
		fx_write_file(dir, "compound-unknown-type", buf, w.len);
	}

	/* What the core itself sends: node 0's first distinct packets after
	 * its ticks (a probe repeated to the same member is kept once). */
	{
		struct member_out o;
		int written = 0;
		struct member_core *c = x.cores[0];
		uint64_t now = FX_NOW_MS;
		static uint8_t kept[4][SHOAL_UDP_PAYLOAD_BYTES_MAX];
		size_t kept_len[4] = {0};
		for (int step = 0; step < 50 && written < 4; step++) {
			now = member_core_next_deadline(c);
			member_core_tick(c, now);
			while (member_core_poll(c, &o)) {
				if (o.kind != MEMBER_OUT_PACKET || written >= 4 ||
				    o.len > sizeof(kept[0]))
					continue;
				bool repeat = false;
				for (int i = 0; i < written; i++)
					repeat |= kept_len[i] == o.len &&
						  memcmp(kept[i], o.data, o.len) == 0;
				if (repeat)
					continue;
				memcpy(kept[written], o.data, o.len);
				kept_len[written] = o.len;
				char name[64];
				snprintf(name, sizeof(name), "core-out-%d", written++);
				fx_write_file(dir, name, o.data, o.len);
			}
		}
		CHECK(written > 0);
	}
	{
		/* the simulator's form: a DEAD and a SUSPECT by gid, then an ACK */
		uint8_t buf[64];
		struct wr w = wr_init(buf, sizeof(buf));
		wr_u8(&w, WIRE_VERSION_SIM);
		wr_u8(&w, 3);
		uint16_t g1 = (uint16_t)member_dir_find(x.dir, p1);
		uint16_t g2 = (uint16_t)member_dir_find(x.dir, p2);
		uint16_t g3 = (uint16_t)member_dir_find(x.dir, p3);
		wire_put_sim_accusation(&w, WIRE_DEAD, 2, g2, g1);
		wire_put_sim_accusation(&w, WIRE_SUSPECT, 1, g3, g1);
		fx_msg(&m[0], WIRE_ACK, 0, self, NULL);
		m[0].seq = 1;
		wire_put_msg(&w, &m[0]);
		CHECK(wr_ok(&w));
		fx_write_file(dir, "sim-form-compound", buf, w.len);
		buf[1] = 1;
		fx_write_file(dir, "sim-form-dead", buf, 2 + WIRE_SIM_ACCUSATION_BYTES);
	}
	fx_close(&x);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *out = getenv("SHOAL_FUZZ_WRITE_CORPUS");
	if (out != NULL) {
		write_corpus(out);
		exit(0);
	}
	return 0;
}

/* Delivers the payload to a fresh fixture's core 0 (the simulator's core
 * if sim), from a sender chosen by its length: the core fails exactly with
 * err (the decoder's verdict), and then nothing changed; or it accepts it,
 * and what it emits is well-formed. */
static void fx_recv(const uint8_t *data, size_t size, bool sim, int err)
{
	struct fx x;
	fx_open_as(&x, sim);
	const struct member_identity *from =
		size % (FX_NODES + 1) < FX_NODES ? &x.ids[size % (FX_NODES + 1)]
						 : &x.stranger;
	struct fx_snap before;
	fx_snapshot(&x, &before);
	int rc = member_core_recv_packet(x.cores[0], from->id, &from->addr, data,
					 size, FX_NOW_MS + 1);
	CHECK(rc == err);
	if (rc != 0)
		fx_check_unchanged(&x, &before);
	else
		fx_drain(&x);
	fx_close(&x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire_msg first[SHOAL_MSGS_PER_PACKET_MAX];
	size_t n = 0;
	int err = wire_decode_payload(data, size, first, &n);
	if (err == 0)
		check_reencode(data, size, first, n);
	else
		CHECK(err < 0);

	fx_recv(data, size, false, err);

	static struct wire_item items[SHOAL_MSGS_PER_PACKET_MAX];
	bool sim = false;
	err = wire_scan_payload_sim(data, size, true, items, first, &n, &sim);
	CHECK(err <= 0);
	fx_recv(data, size, true, err);
	return 0;
}

#endif
