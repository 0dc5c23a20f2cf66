/*
 * test_replication.c — the eager-push core (payload codec, retransmit
 * limit, fanout, batching, duplicates, tampered records, queue bound, sync
 * scheduling, gap-triggered sync) and whole-fleet simulations with many
 * cores in this process: seeded packet loss and latency, crashed nodes,
 * anti-entropy sessions run in-process between the nodes' memfeeds.
 *
 * Simulation seeds are printed on failure; the same seed replays a run
 * exactly (checked: equal trace hashes).
 */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/memfeed.h"
#include "core/replication.h"
#include "core/sync.h"
#include "shoal/rng.h"

#define NEVER UINT64_MAX

static void keypair(unsigned id, uint8_t pk[32], uint8_t sk[64])
{
	uint8_t seed[32] = {0};
	seed[0] = (uint8_t)id;
	seed[1] = (uint8_t)(id >> 8);
	seed[2] = 0x7e;
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* A signed record: seq after `prev` (NULL: seq 1), body of len bytes. */
static void make_record(struct record *r, const uint8_t pk[32], const uint8_t sk[64],
			const struct record *prev, uint8_t kind, size_t len, uint8_t fill)
{
	record_next(r, pk, prev);
	r->kind = kind;
	r->time_ms = 42;
	r->body_len = (uint32_t)len;
	memset(r->body, fill, len);
	record_sign(r, sk);
}

static struct repl_config cfg_default(void)
{
	struct repl_config c;
	repl_config_default(&c);
	return c;
}

/* --- one core against a hand-driven world ------------------------------------- */

struct probe {
	struct memfeed *feed;
	struct repl_core *core;
	struct repl_out outs[4096];
	uint8_t data[4096][SHOAL_UDP_PAYLOAD_BYTES_MAX]; /* copies of PACKET payloads */
	size_t n;
};

static struct probe *probe_new(const struct repl_config *cfg, size_t peers, uint64_t seed)
{
	struct probe *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->feed = memfeed_new(0);
	p->core = repl_core_new(cfg, &memfeed_ops, p->feed, 0, seed, 0);
	assert_non_null(p->core);
	uint32_t gids[64];
	assert_true(peers <= 64);
	for (size_t i = 0; i < peers; i++)
		gids[i] = (uint32_t)(i + 1);
	assert_int_equal(repl_set_peers(p->core, gids, peers), 0);
	return p;
}

static void probe_free(struct probe *p)
{
	repl_core_free(p->core);
	memfeed_free(p->feed);
	free(p);
}

/* Drains outputs, copying payloads (they live until the next core call). */
static void probe_drain(struct probe *p)
{
	struct repl_out o;
	while (repl_poll(p->core, &o)) {
		assert_true(p->n < 4096);
		if (o.kind == REPL_OUT_PACKET) {
			assert_true(o.len <= SHOAL_UDP_PAYLOAD_BYTES_MAX);
			memcpy(p->data[p->n], o.data, o.len);
			o.data = p->data[p->n];
		}
		p->outs[p->n++] = o;
	}
}

static size_t probe_count(const struct probe *p, enum repl_out_kind kind)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->outs[i].kind == kind;
	return n;
}

/* Ticks at every deadline up to `until`. */
static void probe_run(struct probe *p, uint64_t until)
{
	probe_drain(p);
	for (int i = 0; i < 100000; i++) {
		uint64_t d = repl_next_deadline(p->core);
		if (d > until)
			return;
		repl_tick(p->core, d);
		probe_drain(p);
	}
	fail_msg("core keeps asking for ticks");
}

/* Records carried by payload i. */
static size_t payload_records(const struct probe *p, size_t i, struct record *recs)
{
	size_t n = 0;
	assert_int_equal(p->outs[i].kind, REPL_OUT_PACKET);
	assert_int_equal(repl_decode_payload(p->outs[i].data, p->outs[i].len, recs, &n), 0);
	return n;
}

static void payload_codec(void **state)
{
	(void)state;
	uint8_t pk[32], sk[64];
	keypair(1, pk, sk);
	struct record r[SHOAL_REPL_RECORDS_PER_PACKET_MAX + 1], back[SHOAL_REPL_RECORDS_PER_PACKET_MAX];
	make_record(&r[0], pk, sk, NULL, RECORD_ALERT, SHOAL_RECORD_BODY_MAX, 0xaa);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX + 8];
	size_t len, n;
	/* The largest record fits one payload. */
	assert_int_equal(repl_encode_payload(r, 1, buf, SHOAL_UDP_PAYLOAD_BYTES_MAX, &len), 0);
	assert_int_equal(len, REPL_PAYLOAD_HEADER_BYTES + 2 + SHOAL_RECORD_BYTES_MAX);
	assert_int_equal(buf[0], REPL_MAGIC);
	assert_true(repl_is_payload(buf, len));
	assert_int_equal(repl_decode_payload(buf, len, back, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(back[0].sig, r[0].sig, 64);
	/* ... but not two of them. */
	r[1] = r[0];
	assert_int_equal(repl_encode_payload(r, 2, buf, SHOAL_UDP_PAYLOAD_BYTES_MAX, &len),
			 SHOAL_ETOOBIG);
	/* The most records a payload may hold, small ones. */
	for (int i = 0; i <= SHOAL_REPL_RECORDS_PER_PACKET_MAX; i++)
		make_record(&r[i], pk, sk, i ? &r[i - 1] : NULL, RECORD_HEALTH, 0, 0);
	assert_int_equal(repl_encode_payload(r, SHOAL_REPL_RECORDS_PER_PACKET_MAX, buf,
					     SHOAL_UDP_PAYLOAD_BYTES_MAX, &len), 0);
	assert_int_equal(repl_decode_payload(buf, len, back, &n), 0);
	assert_int_equal(n, SHOAL_REPL_RECORDS_PER_PACKET_MAX);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(back[i].seq, i + 1);
	assert_int_equal(repl_encode_payload(r, SHOAL_REPL_RECORDS_PER_PACKET_MAX + 1, buf,
					     SHOAL_UDP_PAYLOAD_BYTES_MAX, &len), SHOAL_ETOOBIG);
	assert_int_equal(repl_encode_payload(r, 0, buf, SHOAL_UDP_PAYLOAD_BYTES_MAX, &len),
			 SHOAL_ETOOBIG);

	/* Rejections. */
	assert_int_equal(repl_encode_payload(r, 2, buf, sizeof(buf), &len), SHOAL_ETOOBIG);
	assert_int_equal(repl_encode_payload(r, 2, buf, SHOAL_UDP_PAYLOAD_BYTES_MAX, &len), 0);
	uint8_t bad[SHOAL_UDP_PAYLOAD_BYTES_MAX + 1];
	memcpy(bad, buf, len);
	assert_int_equal(repl_decode_payload(bad, SHOAL_UDP_PAYLOAD_BYTES_MAX + 1, back, &n),
			 SHOAL_ETOOBIG);
	assert_int_equal(repl_decode_payload(bad, 0, back, &n), SHOAL_ETRUNC);
	assert_false(repl_is_payload(bad, 0));
	assert_int_equal(repl_decode_payload(bad, 1, back, &n), SHOAL_ETRUNC);
	assert_int_equal(repl_decode_payload(bad, 2, back, &n), SHOAL_ETRUNC);
	bad[0] = 1; /* a membership payload */
	assert_false(repl_is_payload(bad, len));
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[0] = REPL_MAGIC;
	bad[1] = 2;
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EVERSION);
	bad[1] = REPL_VERSION;
	bad[2] = 0;
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[2] = SHOAL_REPL_RECORDS_PER_PACKET_MAX + 1;
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[2] = 3; /* says three, holds two */
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_ETRUNC);
	bad[2] = 1; /* says one, holds two */
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_ETRAILING);
	bad[2] = 2;
	bad[4] = (uint8_t)(bad[4] + 1); /* first length one too long */
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[4] = (uint8_t)(bad[4] - 2); /* one too short */
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[4] = (uint8_t)(bad[4] + 1);
	bad[5 + 32 + 8 + 32] = 99; /* unknown record kind */
	assert_int_equal(repl_decode_payload(bad, len, back, &n), SHOAL_EPROTO);
	bad[5 + 32 + 8 + 32] = RECORD_HEALTH;
	assert_int_equal(repl_decode_payload(bad, len, back, &n), 0);
}

/* A published record goes out at once, to `fanout` distinct peers per round,
 * exactly retransmit_mult × ceil(log10(N + 1)) times in all, several records
 * per payload; then the queue is empty and the core stops asking to tick. */
static void push_rounds_follow_the_retransmit_limit(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	cfg.sync_interval_ms = 0;
	struct probe *p = probe_new(&cfg, 9, 1); /* N = 10: limit 4 × 2 = 8 */
	uint8_t pk[32], sk[64];
	keypair(2, pk, sk);
	struct record r[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(memfeed_append(p->feed, sk, RECORD_HEALTH, 1, "ok", 2, &r[i]), 0);
		assert_int_equal(repl_publish(p->core, &r[i], 1000), 0);
	}
	probe_drain(p);
	assert_int_equal(probe_count(p, REPL_OUT_EVENT), 4);
	assert_int_equal(p->outs[0].ev.source, REPL_SRC_LOCAL);
	assert_int_equal(p->outs[0].ev.kind, REPL_EV_RECORD);
	assert_int_equal(repl_next_deadline(p->core), 1000); /* eager: at once */
	assert_int_equal(repl_queue_count(p->core), 4);
	probe_run(p, 100000);
	assert_int_equal(repl_queue_count(p->core), 0);
	assert_int_equal(repl_next_deadline(p->core), NEVER);
	unsigned sends[4] = {0}, per_round[64] = {0};
	uint32_t round_targets[64][3];
	for (size_t i = 0; i < p->n; i++) {
		if (p->outs[i].kind != REPL_OUT_PACKET)
			continue;
		struct record got[SHOAL_REPL_RECORDS_PER_PACKET_MAX];
		size_t n = payload_records(p, i, got);
		assert_int_equal(n, 4); /* all four batched in every payload */
		for (size_t k = 0; k < n; k++)
			sends[got[k].seq - 1]++;
		assert_true(p->outs[i].to_gid >= 1 && p->outs[i].to_gid <= 9);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(sends[i], 8);
	/* Rounds: 3 payloads each, distinct targets, gossip_interval apart. */
	size_t pk_idx = 0, rounds = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (p->outs[i].kind != REPL_OUT_PACKET)
			continue;
		size_t round = pk_idx / 3, slot = pk_idx % 3;
		round_targets[round][slot] = p->outs[i].to_gid;
		per_round[round]++;
		pk_idx++;
		rounds = round + 1;
	}
	assert_int_equal(rounds, 3); /* 8 sends at fanout 3: 3 + 3 + 2 */
	for (size_t r2 = 0; r2 < 2; r2++) {
		assert_int_not_equal(round_targets[r2][0], round_targets[r2][1]);
		assert_int_not_equal(round_targets[r2][0], round_targets[r2][2]);
		assert_int_not_equal(round_targets[r2][1], round_targets[r2][2]);
	}
	assert_int_equal(repl_core_stats(p->core)->packets_sent, 8);
	assert_int_equal(repl_core_stats(p->core)->records_sent, 32);
	probe_free(p);
}

/* A record received from a peer is stored, reported, forwarded, but never
 * back to its sender; a second copy is a duplicate and goes nowhere. */
static void push_forwards_new_records_once(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	cfg.sync_interval_ms = 0;
	struct probe *p = probe_new(&cfg, 5, 7);
	uint8_t pk[32], sk[64];
	keypair(3, pk, sk);
	struct record r;
	make_record(&r, pk, sk, NULL, RECORD_ANNOUNCE, 100, 1);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&r, 1, buf, sizeof(buf), &len), 0);
	assert_int_equal(repl_recv_packet(p->core, 4, buf, len, 500), 0);
	assert_true(memfeed_has(p->feed, pk, 1));
	probe_drain(p);
	assert_int_equal(p->n, 1);
	assert_int_equal(p->outs[0].kind, REPL_OUT_EVENT);
	assert_int_equal(p->outs[0].ev.source, REPL_SRC_PUSH);
	assert_int_equal(p->outs[0].ev.from_gid, 4);
	assert_int_equal(p->outs[0].ev.record_kind, RECORD_ANNOUNCE);
	assert_int_equal(p->outs[0].ev.put, REPL_PUT_NEW);
	assert_int_equal(p->outs[0].ev.seq, 1);
	assert_memory_equal(p->outs[0].ev.author, pk, 32);
	/* The same payload again, twice: duplicates, no event, no new queue entry. */
	assert_int_equal(repl_recv_packet(p->core, 2, buf, len, 501), 0);
	assert_int_equal(repl_recv_packet(p->core, 3, buf, len, 502), 0);
	probe_drain(p);
	assert_int_equal(p->n, 1);
	assert_int_equal(repl_queue_count(p->core), 1);
	assert_int_equal(repl_core_stats(p->core)->records_dup, 2);
	probe_run(p, 100000);
	/* N = 6: limit 4; 4 payloads, none to 4, the sender */
	assert_int_equal(probe_count(p, REPL_OUT_PACKET), 4);
	for (size_t i = 0; i < p->n; i++)
		if (p->outs[i].kind == REPL_OUT_PACKET)
			assert_int_not_equal(p->outs[i].to_gid, 4);
	/* Only peer is the sender: nothing to send, and the queue drains. */
	struct probe *q = probe_new(&cfg, 1, 7);
	assert_int_equal(repl_recv_packet(q->core, 1, buf, len, 0), 0);
	probe_run(q, 100000);
	assert_int_equal(probe_count(q, REPL_OUT_PACKET), 0);
	assert_int_equal(repl_queue_count(q->core), 0);
	probe_free(q);
	probe_free(p);
}

/* A record whose signature does not verify is counted and dropped: not
 * stored, not reported, not forwarded — also when it shares a payload with
 * a good record, which does spread. */
static void push_drops_tampered_records(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	cfg.sync_interval_ms = 0;
	struct probe *p = probe_new(&cfg, 5, 9);
	uint8_t pk[32], sk[64];
	keypair(4, pk, sk);
	struct record r[2];
	make_record(&r[0], pk, sk, NULL, RECORD_HALT, 40, 7);
	make_record(&r[1], pk, sk, &r[0], RECORD_RESUME, 40, 8);
	struct record bad = r[0];
	bad.body[3] ^= 1;
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&bad, 1, buf, sizeof(buf), &len), 0);
	assert_int_equal(repl_recv_packet(p->core, 2, buf, len, 10), 0);
	probe_run(p, 100000);
	assert_int_equal(p->n, 0);
	assert_int_equal(memfeed_records(p->feed), 0);
	assert_int_equal(repl_core_stats(p->core)->records_bad_sig, 1);
	/* forged seq 1 and a good seq 2 together */
	struct record mix[2] = {bad, r[1]};
	assert_int_equal(repl_encode_payload(mix, 2, buf, sizeof(buf), &len), 0);
	assert_int_equal(repl_recv_packet(p->core, 2, buf, len, 20), 0);
	probe_run(p, 100000);
	assert_false(memfeed_has(p->feed, pk, 1));
	assert_true(memfeed_has(p->feed, pk, 2));
	assert_int_equal(probe_count(p, REPL_OUT_EVENT), 1);
	for (size_t i = 0; i < p->n; i++) {
		if (p->outs[i].kind != REPL_OUT_PACKET)
			continue;
		struct record got[SHOAL_REPL_RECORDS_PER_PACKET_MAX];
		size_t n = payload_records(p, i, got);
		assert_int_equal(n, 1);
		assert_int_equal(got[0].seq, 2);
		assert_int_equal(record_verify(&got[0]), 0);
	}
	assert_true(probe_count(p, REPL_OUT_PACKET) > 0);
	/* A malformed payload changes nothing but the counter. */
	struct repl_stats before = *repl_core_stats(p->core);
	buf[2] = 0;
	assert_int_equal(repl_recv_packet(p->core, 2, buf, len, 30), SHOAL_EPROTO);
	struct repl_stats after = *repl_core_stats(p->core);
	before.packets_malformed++;
	before.packets_received++;
	assert_memory_equal(&before, &after, sizeof(before));
	size_t n0 = p->n;
	probe_drain(p);
	assert_int_equal(p->n, n0);
	probe_free(p);
}

/* Equivocation over push: the second version is refused, reported, and not
 * forwarded. */
static void push_does_not_forward_equivocation(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	cfg.sync_interval_ms = 0;
	struct probe *p = probe_new(&cfg, 5, 11);
	uint8_t pk[32], sk[64];
	keypair(5, pk, sk);
	struct record a, b;
	make_record(&a, pk, sk, NULL, RECORD_HEALTH, 10, 1);
	make_record(&b, pk, sk, NULL, RECORD_HEALTH, 10, 2);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&a, 1, buf, sizeof(buf), &len), 0);
	assert_int_equal(repl_recv_packet(p->core, 1, buf, len, 0), 0);
	probe_run(p, 100000);
	size_t sent = probe_count(p, REPL_OUT_PACKET);
	assert_int_equal(repl_encode_payload(&b, 1, buf, sizeof(buf), &len), 0);
	assert_int_equal(repl_recv_packet(p->core, 2, buf, len, 100000), 0);
	assert_int_equal(repl_recv_packet(p->core, 3, buf, len, 100001), 0);
	probe_run(p, 200000);
	assert_int_equal(probe_count(p, REPL_OUT_PACKET), sent);
	assert_int_equal(probe_count(p, REPL_OUT_EVENT), 3); /* new, 2 × equivocation */
	assert_int_equal(p->outs[p->n - 1].ev.kind, REPL_EV_EQUIVOCATION);
	assert_int_equal(p->outs[p->n - 1].ev.from_gid, 3);
	assert_int_equal(repl_core_stats(p->core)->records_equivocation, 2);
	probe_free(p);
}

/* Bounded queue; no peers; sync scheduling and its jitter; a gap brings the
 * sync forward, with the sender; sync events come out as events. */
static void queue_peers_and_sync_scheduling(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	cfg.sync_interval_ms = 0;
	/* The largest payload (a node with the smallest certificate): the
	 * count bound, not the bytes, ends a payload of small records. */
	cfg.payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_MAX;
	struct probe *p = probe_new(&cfg, 0, 13);
	uint8_t pk[32], sk[64];
	keypair(6, pk, sk);
	struct record prev, r;
	for (unsigned i = 0; i < SHOAL_REPL_QUEUE_COUNT_MAX + 76; i++) {
		make_record(&r, pk, sk, i ? &prev : NULL, RECORD_ALERT, 0, 0);
		assert_int_equal(repl_publish(p->core, &r, 5), 0);
		probe_drain(p);
		p->n = 0;
		prev = r;
	}
	assert_int_equal(repl_queue_count(p->core), SHOAL_REPL_QUEUE_COUNT_MAX);
	assert_int_equal(repl_core_stats(p->core)->queue_dropped, 76);
	/* No peers: a round sends nothing and the core stops asking... */
	probe_run(p, 10000);
	assert_int_equal(probe_count(p, REPL_OUT_PACKET), 0);
	assert_int_equal(repl_next_deadline(p->core), NEVER);
	/* ... until peers appear; the newest records go first. */
	uint32_t one = 1;
	assert_int_equal(repl_set_peers(p->core, &one, 1), 0);
	assert_true(repl_next_deadline(p->core) <= 10000);
	probe_run(p, 10000);
	assert_true(probe_count(p, REPL_OUT_PACKET) >= 1);
	struct record got[SHOAL_REPL_RECORDS_PER_PACKET_MAX];
	size_t n = payload_records(p, 0, got);
	assert_int_equal(n, SHOAL_REPL_RECORDS_PER_PACKET_MAX);
	assert_int_equal(got[0].seq, SHOAL_REPL_QUEUE_COUNT_MAX + 76);
	/* self is never a peer */
	uint32_t with_self[3] = {0, 5, 6};
	assert_int_equal(repl_set_peers(p->core, with_self, 3), 0);
	assert_int_equal(repl_peer_count(p->core), 2);
	assert_int_equal(repl_publish(p->core, &(struct record){0}, 1), SHOAL_EINVAL);
	probe_free(p);

	/* Sync: uniform in [0.5, 1.5) × interval, to random peers. */
	cfg.sync_interval_ms = 10000;
	p = probe_new(&cfg, 8, 17);
	uint64_t t = 0, last = 0;
	unsigned target_seen[9] = {0};
	for (int i = 0; i < 200; i++) {
		uint64_t d = repl_next_deadline(p->core);
		assert_true(d - last >= 5000 && d - last < 15000);
		t = d;
		p->n = 0;
		repl_tick(p->core, t);
		probe_drain(p);
		assert_int_equal(p->n, 1);
		assert_int_equal(p->outs[0].kind, REPL_OUT_SYNC);
		assert_true(p->outs[0].to_gid >= 1 && p->outs[0].to_gid <= 8);
		target_seen[p->outs[0].to_gid]++;
		last = t;
	}
	for (int g = 1; g <= 8; g++)
		assert_true(target_seen[g] > 5);
	assert_int_equal(repl_core_stats(p->core)->syncs_started, 200);

	/* A gap from peer 7 brings the next sync to now + gap delay, with 7. */
	struct record r1, r2, r3;
	make_record(&r1, pk, sk, NULL, RECORD_ALERT, 1, 1);
	make_record(&r2, pk, sk, &r1, RECORD_ALERT, 1, 2);
	make_record(&r3, pk, sk, &r2, RECORD_ALERT, 1, 3);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&r3, 1, buf, sizeof(buf), &len), 0);
	uint64_t now = last + 2500; /* spaced from the last sync */
	assert_int_equal(repl_recv_packet(p->core, 7, buf, len, now), 0);
	assert_int_equal(repl_core_stats(p->core)->records_gap, 1);
	assert_int_equal(repl_core_stats(p->core)->syncs_gap_triggered, 1);
	p->n = 0;
	probe_drain(p);
	assert_int_equal(p->outs[0].ev.put, REPL_PUT_NEW_GAP);
	/* push rounds run first (the record spreads); the sync comes at +2000 */
	for (int i = 0; i < 1000; i++) {
		uint64_t d = repl_next_deadline(p->core);
		assert_true(d <= now + cfg.gap_sync_delay_ms);
		repl_tick(p->core, d);
		probe_drain(p);
		if (probe_count(p, REPL_OUT_SYNC))
			break;
	}
	assert_int_equal(probe_count(p, REPL_OUT_SYNC), 1);
	for (size_t i = 0; i < p->n; i++)
		if (p->outs[i].kind == REPL_OUT_SYNC)
			assert_int_equal(p->outs[i].to_gid, 7);

	/* Events of a sync session come out as EVENT, source sync. */
	struct repl_event ev = {.kind = REPL_EV_RECORD, .source = REPL_SRC_SYNC,
				.put = REPL_PUT_NEW, .record_kind = RECORD_ALERT, .seq = 2,
				.from_gid = REPL_NONE};
	memcpy(ev.author, pk, 32);
	p->n = 0;
	repl_note_synced(p->core, 3, &ev, now + 5000);
	probe_drain(p);
	assert_int_equal(p->n, 1);
	assert_int_equal(p->outs[0].kind, REPL_OUT_EVENT);
	assert_int_equal(p->outs[0].ev.from_gid, 3);
	assert_int_equal(p->outs[0].ev.source, REPL_SRC_SYNC);
	assert_int_equal(repl_core_stats(p->core)->records_synced, 1);
	assert_string_equal(repl_put_name(REPL_PUT_NEW_GAP), "new_gap");
	assert_string_equal(repl_source_name(REPL_SRC_SYNC), "sync");
	probe_free(p);
}

/* --- the simulated fleet ----------------------------------------------------------- */

struct pkt {
	uint64_t at, seq;
	uint32_t from, to;
	uint16_t len;
	uint8_t data[SHOAL_UDP_PAYLOAD_BYTES_MAX];
};

struct node {
	struct memfeed *feed;
	struct repl_core *core;
	bool crashed;
};

struct world {
	struct node *nodes;
	size_t count;
	struct pkt *heap;
	size_t heap_n, heap_cap;
	uint64_t pkt_seq;
	uint64_t now;
	struct rng rng;
	double loss;
	uint64_t trace;               /* FNV-1a over events and syncs */
	uint64_t packets, syncs, sync_failed, equivocation_events, record_events;
	uint64_t packets_after;       /* packets sent at or after mark_ms */
	uint64_t mark_ms;
	struct repl_event sync_ev[2][4096];
	size_t sync_ev_n[2];
};

static void fnv(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= b[i];
		*h *= 0x100000001b3ull;
	}
}

static void heap_push(struct world *w, const struct pkt *p)
{
	if (w->heap_n == w->heap_cap) {
		w->heap_cap = w->heap_cap ? w->heap_cap * 2 : 1024;
		w->heap = realloc(w->heap, w->heap_cap * sizeof(*w->heap));
		assert_non_null(w->heap);
	}
	size_t i = w->heap_n++;
	w->heap[i] = *p;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		struct pkt *a = &w->heap[up], *b = &w->heap[i];
		if (a->at < b->at || (a->at == b->at && a->seq < b->seq))
			break;
		struct pkt t = *a;
		*a = *b;
		*b = t;
		i = up;
	}
}

static void heap_pop(struct world *w, struct pkt *out)
{
	*out = w->heap[0];
	w->heap[0] = w->heap[--w->heap_n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < w->heap_n && (w->heap[l].at < w->heap[m].at ||
				      (w->heap[l].at == w->heap[m].at && w->heap[l].seq < w->heap[m].seq)))
			m = l;
		if (r < w->heap_n && (w->heap[r].at < w->heap[m].at ||
				      (w->heap[r].at == w->heap[m].at && w->heap[r].seq < w->heap[m].seq)))
			m = r;
		if (m == i)
			break;
		struct pkt t = w->heap[m];
		w->heap[m] = w->heap[i];
		w->heap[i] = t;
		i = m;
	}
}

static void world_init(struct world *w, size_t count, uint64_t seed, double loss,
		       double crashed, const struct repl_config *cfg)
{
	memset(w, 0, sizeof(*w));
	w->count = count;
	w->nodes = calloc(count, sizeof(*w->nodes));
	assert_non_null(w->nodes);
	rng_seed(&w->rng, seed);
	w->loss = loss;
	w->trace = 0xcbf29ce484222325ull;
	w->mark_ms = NEVER;
	uint32_t *all = malloc(count * sizeof(*all));
	for (size_t i = 0; i < count; i++)
		all[i] = (uint32_t)i;
	for (size_t i = 0; i < count; i++) {
		struct node *n = &w->nodes[i];
		n->feed = memfeed_new(0);
		n->core = repl_core_new(cfg, &memfeed_ops, n->feed, (uint32_t)i,
					seed * 1000003u + i, 0);
		assert_non_null(n->core);
		/* Everyone, crashed nodes included: membership has not noticed
		 * yet, which is the hard case for push. */
		assert_int_equal(repl_set_peers(n->core, all, count), 0);
	}
	/* Crash a fraction, never nodes 0..3 (the publishers). */
	size_t want = (size_t)(crashed * (double)count + 0.5), done = 0;
	while (done < want) {
		size_t i = 4 + (size_t)rng_below(&w->rng, count - 4);
		if (!w->nodes[i].crashed) {
			w->nodes[i].crashed = true;
			done++;
		}
	}
	free(all);
}

static void world_free(struct world *w)
{
	for (size_t i = 0; i < w->count; i++) {
		repl_core_free(w->nodes[i].core);
		memfeed_free(w->nodes[i].feed);
	}
	free(w->nodes);
	free(w->heap);
}

static void collect(void *arg, enum sync_role side, const struct repl_event *ev)
{
	struct world *w = arg;
	size_t s = side == SYNC_INITIATOR ? 0 : 1;
	assert_true(w->sync_ev_n[s] < 4096);
	w->sync_ev[s][w->sync_ev_n[s]++] = *ev;
}

static void drain(struct world *w, uint32_t i);

static void run_sync(struct world *w, uint32_t from, uint32_t to)
{
	w->syncs++;
	fnv(&w->trace, "S", 1);
	fnv(&w->trace, &from, sizeof(from));
	fnv(&w->trace, &to, sizeof(to));
	if (w->nodes[to].crashed) {
		w->sync_failed++; /* the connection fails */
		return;
	}
	w->sync_ev_n[0] = w->sync_ev_n[1] = 0;
	int rc = sync_run_local(&memfeed_ops, w->nodes[from].feed, &memfeed_ops,
				w->nodes[to].feed, collect, w, NULL, NULL);
	assert_int_equal(rc, 0);
	for (size_t k = 0; k < w->sync_ev_n[0]; k++)
		repl_note_synced(w->nodes[from].core, to, &w->sync_ev[0][k], w->now);
	for (size_t k = 0; k < w->sync_ev_n[1]; k++)
		repl_note_synced(w->nodes[to].core, from, &w->sync_ev[1][k], w->now);
	drain(w, to);
}

static void drain(struct world *w, uint32_t i)
{
	struct repl_out o;
	while (repl_poll(w->nodes[i].core, &o)) {
		switch (o.kind) {
		case REPL_OUT_PACKET: {
			w->packets++;
			if (w->now >= w->mark_ms)
				w->packets_after++;
			assert_true(o.len <= SHOAL_UDP_PAYLOAD_BYTES_MAX);
			if (rng_unit(&w->rng) < w->loss)
				break;
			struct pkt p = {.at = w->now + 1 + rng_below(&w->rng, 20),
					.seq = w->pkt_seq++, .from = i, .to = o.to_gid,
					.len = (uint16_t)o.len};
			memcpy(p.data, o.data, o.len);
			heap_push(w, &p);
			break;
		}
		case REPL_OUT_SYNC:
			run_sync(w, i, o.to_gid);
			break;
		case REPL_OUT_EVENT:
			fnv(&w->trace, &i, sizeof(i));
			fnv(&w->trace, &o.ev.kind, sizeof(o.ev.kind));
			fnv(&w->trace, &o.ev.source, sizeof(o.ev.source));
			fnv(&w->trace, o.ev.author, 8);
			fnv(&w->trace, &o.ev.seq, sizeof(o.ev.seq));
			fnv(&w->trace, &w->now, sizeof(w->now));
			if (o.ev.kind == REPL_EV_EQUIVOCATION)
				w->equivocation_events++;
			else
				w->record_events++;
			break;
		}
	}
}

/* Advances the world to `until` (or until done() says so). */
static void world_run(struct world *w, uint64_t until, bool (*done)(struct world *, void *),
		      void *arg)
{
	for (;;) {
		uint64_t t = w->heap_n ? w->heap[0].at : NEVER;
		for (size_t i = 0; i < w->count; i++) {
			if (w->nodes[i].crashed)
				continue;
			uint64_t d = repl_next_deadline(w->nodes[i].core);
			if (d < t)
				t = d;
		}
		if (t > until) {
			w->now = until;
			return;
		}
		if (t > w->now)
			w->now = t;
		while (w->heap_n && w->heap[0].at <= w->now) {
			struct pkt p;
			heap_pop(w, &p);
			struct node *n = &w->nodes[p.to];
			if (n->crashed)
				continue;
			assert_int_equal(repl_recv_packet(n->core, p.from, p.data, p.len, w->now), 0);
			drain(w, p.to);
		}
		for (uint32_t i = 0; i < w->count; i++) {
			struct node *n = &w->nodes[i];
			if (!n->crashed && repl_next_deadline(n->core) <= w->now) {
				repl_tick(n->core, w->now);
				drain(w, i);
			}
		}
		if (done && done(w, arg))
			return;
	}
}

struct want {
	const struct record *recs;
	size_t n;
};

static size_t coverage(const struct world *w, const struct want *x)
{
	size_t have = 0;
	for (size_t i = 0; i < w->count; i++)
		if (!w->nodes[i].crashed)
			for (size_t k = 0; k < x->n; k++)
				have += memfeed_has(w->nodes[i].feed, x->recs[k].author, x->recs[k].seq);
	return have;
}

static size_t live(const struct world *w)
{
	size_t n = 0;
	for (size_t i = 0; i < w->count; i++)
		n += !w->nodes[i].crashed;
	return n;
}

static bool all_have(struct world *w, void *arg)
{
	const struct want *x = arg;
	return coverage(w, x) == live(w) * x->n;
}

/* Publishes records from nodes 0..3 over the first second, then runs. */
struct fleet_result {
	uint64_t trace, done_ms, packets, syncs;
	size_t push_coverage, total;
};

static void fleet_run(uint64_t seed, size_t count, double loss, double crashed,
		      const struct repl_config *cfg, struct fleet_result *res)
{
	struct world w;
	world_init(&w, count, seed, loss, crashed, cfg);
	static struct record recs[12];
	uint8_t pk[4][32], sk[4][64];
	for (unsigned a = 0; a < 4; a++)
		keypair(100 + a, pk[a], sk[a]);
	struct want x = {recs, 12};
	for (unsigned k = 0; k < 3; k++) {
		world_run(&w, k * 400, NULL, NULL);
		for (unsigned a = 0; a < 4; a++) {
			struct record *r = &recs[a * 3 + k];
			assert_int_equal(memfeed_append(w.nodes[a].feed, sk[a], RECORD_ALERT, k,
							"alert", 5, r), 0);
			assert_int_equal(r->seq, k + 1);
			assert_int_equal(repl_publish(w.nodes[a].core, r, w.now), 0);
			drain(&w, a);
		}
	}
	/* Push alone, before the first anti-entropy round (>= half an interval). */
	uint64_t push_until = cfg->sync_interval_ms ? cfg->sync_interval_ms / 2 : 10000;
	world_run(&w, push_until, all_have, &x);
	res->push_coverage = coverage(&w, &x);
	res->total = live(&w) * x.n;
	world_run(&w, 600000, all_have, &x);
	res->done_ms = w.now;
	if (!all_have(&w, &x))
		fail_msg("seed %llu: %zu of %zu records delivered after %llu ms",
			 (unsigned long long)seed, coverage(&w, &x), res->total,
			 (unsigned long long)w.now);
	/* Nothing is delivered twice as new: one event per (live node, record). */
	assert_int_equal(w.record_events, res->total);
	res->trace = w.trace;
	res->packets = w.packets;
	res->syncs = w.syncs;
	print_message("fleet seed=%llu nodes=%zu loss=%.2f crashed=%.2f: push covered %zu/%zu, "
		      "all by %llu ms, %llu payloads, %llu syncs (%llu to crashed)\n",
		      (unsigned long long)seed, count, loss, crashed, res->push_coverage,
		      res->total, (unsigned long long)res->done_ms,
		      (unsigned long long)res->packets, (unsigned long long)res->syncs,
		      (unsigned long long)w.sync_failed);
	world_free(&w);
}


/* Runs the core to its next sync request; returns when it came. */
static uint64_t next_sync(struct probe *p)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t d = repl_next_deadline(p->core);
		assert_true(d != NEVER);
		p->n = 0;
		repl_tick(p->core, d);
		probe_drain(p);
		if (probe_count(p, REPL_OUT_SYNC))
			return d;
	}
	fail_msg("no sync requested");
	return 0;
}

/* An idle node (its sessions find the stores equal) syncs half as often
 * after each such session, down to sync_backoff_max times less; anything
 * new brings it back to the full rate at once. */
static void sync_backs_off_when_idle_and_hurries_on_news(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	assert_int_equal(cfg.sync_interval_ms, 10000);
	assert_int_equal(cfg.sync_backoff_max, 4);
	struct probe *p = probe_new(&cfg, 8, 23);
	uint8_t pk[32], sk[64];
	keypair(9, pk, sk);

	/* In-sync sessions: 10 s, 20 s, 40 s, and no further. */
	uint64_t t = next_sync(p);
	static const uint64_t want[] = {20000, 40000, 40000, 40000};
	for (int k = 0; k < 4; k++) {
		repl_note_sync_result(p->core, p->outs[0].to_gid, true, t + 50);
		assert_int_equal(repl_sync_interval_now(p->core), want[k]);
		uint64_t d = repl_next_deadline(p->core);
		assert_true(d >= t + want[k] / 2 && d < t + want[k] * 3 / 2);
		t = next_sync(p);
	}
	assert_int_equal(repl_core_stats(p->core)->sync_backoffs, 2);

	/* A pushed record: full rate, the pending sync drawn again. */
	struct record r1;
	make_record(&r1, pk, sk, NULL, RECORD_ALERT, 4, 1);
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&r1, 1, buf, sizeof(buf), &len), 0);
	uint64_t now = t + 1000;
	assert_int_equal(repl_recv_packet(p->core, 3, buf, len, now), 0);
	assert_int_equal(repl_sync_interval_now(p->core), 10000);
	assert_true(repl_next_deadline(p->core) < now + 15000);
	p->n = 0;
	probe_drain(p);
	/* (push rounds run first; then the sync, within 1.5 × 10 s) */
	uint64_t s = next_sync(p);
	assert_true(s < now + 15000);

	/* Back off again; a session that found a difference: full rate. */
	repl_note_sync_result(p->core, 1, true, s + 10);
	repl_note_sync_result(p->core, 1, true, s + 20);
	assert_int_equal(repl_sync_interval_now(p->core), 40000);
	repl_note_sync_result(p->core, 1, false, s + 30);
	assert_int_equal(repl_sync_interval_now(p->core), 10000);
	assert_true(repl_next_deadline(p->core) < s + 30 + 15000);

	/* Back off again; a record published here: full rate. */
	s = next_sync(p);
	repl_note_sync_result(p->core, 1, true, s + 10);
	assert_int_equal(repl_sync_interval_now(p->core), 20000);
	struct record own;
	uint8_t opk[32], osk[64];
	keypair(10, opk, osk);
	make_record(&own, opk, osk, NULL, RECORD_HEALTH, 4, 2);
	assert_int_equal(repl_publish(p->core, &own, s + 100), 0);
	assert_int_equal(repl_sync_interval_now(p->core), 10000);

	/* Back off again; a member joins: full rate, the next sync soon after
	 * the last one. */
	s = next_sync(p);
	repl_note_sync_result(p->core, 1, true, s + 10);
	repl_note_sync_result(p->core, 1, true, s + 20);
	assert_int_equal(repl_sync_interval_now(p->core), 40000);
	uint32_t nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	assert_int_equal(repl_set_peers(p->core, nine, 8), 0); /* same set */
	assert_int_equal(repl_sync_interval_now(p->core), 40000);
	assert_int_equal(repl_set_peers(p->core, nine, 9), 0);
	assert_int_equal(repl_sync_interval_now(p->core), 10000);
	assert_true(repl_next_deadline(p->core) < s + 15000);
	probe_free(p);

	/* sync_backoff_max 1: never slower. */
	cfg.sync_backoff_max = 1;
	p = probe_new(&cfg, 8, 24);
	t = next_sync(p);
	repl_note_sync_result(p->core, 1, true, t + 10);
	assert_int_equal(repl_sync_interval_now(p->core), 10000);
	assert_true(repl_next_deadline(p->core) < t + 15000);
	probe_free(p);
}

/* 200 nodes, 15% crashed (still listed as peers), 20% loss: every live node
 * gets every record, push does nearly all of it, and the run is a function
 * of the seed. */
static void fleet_push_and_sync_reach_every_live_node(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	struct fleet_result a, b, c;
	/* Several seeds: push leaves a few (node, record) pairs to
	 * anti-entropy in some of them, and every run completes. */
	unsigned needed_sync = 0;
	for (uint64_t seed = 42; seed < 50; seed++) {
		fleet_run(seed, 200, 0.20, 0.15, &cfg, &a);
		assert_true(a.push_coverage * 100 >= a.total * 95);
		needed_sync += a.push_coverage < a.total;
	}
	assert_true(needed_sync > 0);
	fleet_run(42, 200, 0.20, 0.15, &cfg, &a);
	fleet_run(42, 200, 0.20, 0.15, &cfg, &b);
	assert_int_equal(a.trace, b.trace);
	assert_int_equal(a.done_ms, b.done_ms);
	assert_int_equal(a.packets, b.packets);
	fleet_run(43, 200, 0.20, 0.15, &cfg, &c);
	assert_int_not_equal(a.trace, c.trace);
	/* Traffic per record per node is bounded by the retransmit limit:
	 * 4 × ceil(log10(201)) = 12 sends, several records per payload. */
	assert_true(a.packets <= 200u * 12u * 12u);
}

/* With every packet lost, anti-entropy alone still completes. */
static void fleet_sync_alone_completes(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	struct fleet_result r;
	fleet_run(7, 120, 1.0, 0.10, &cfg, &r);
	assert_int_equal(r.push_coverage, 12); /* only the publishers' own */
	assert_true(r.syncs > 0);
}

/* An author that signs two different seq 1 records, published at two ends
 * of the fleet: each node keeps the first it got, traffic stops, and no
 * session fails or loops. */
static void fleet_equivocation_does_not_loop(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	struct world w;
	world_init(&w, 100, 99, 0.1, 0.0, &cfg);
	uint8_t pk[32], sk[64];
	keypair(200, pk, sk);
	struct record a, b;
	make_record(&a, pk, sk, NULL, RECORD_HALT, 8, 'a');
	make_record(&b, pk, sk, NULL, RECORD_HALT, 8, 'b');
	enum repl_put res;
	assert_int_equal(memfeed_put(w.nodes[0].feed, &a, &res), 0);
	assert_int_equal(memfeed_put(w.nodes[1].feed, &b, &res), 0);
	assert_int_equal(repl_publish(w.nodes[0].core, &a, 0), 0);
	assert_int_equal(repl_publish(w.nodes[1].core, &b, 0), 0);
	drain(&w, 0);
	drain(&w, 1);
	w.mark_ms = 20000;
	world_run(&w, 60000, NULL, NULL);
	size_t with_a = 0, with_b = 0;
	for (size_t i = 0; i < w.count; i++) {
		struct record r;
		assert_int_equal(memfeed_get(w.nodes[i].feed, pk, 1, &r), 0);
		if (r.body[0] == 'a')
			with_a++;
		else
			with_b++;
		assert_int_equal(repl_queue_count(w.nodes[i].core), 0);
	}
	assert_int_equal(with_a + with_b, w.count);
	assert_true(with_a > 0 && with_b > 0);
	assert_true(w.equivocation_events > 0);
	assert_int_equal(w.packets_after, 0); /* quiet after the first spread */
	/* each node forwarded one version: 4 × ceil(log10(101)) = 12 sends */
	assert_true(w.packets <= 100u * 12u);
	assert_true(w.syncs > 100);
	print_message("equivocation: %zu hold a, %zu hold b, %llu equivocation events, "
		      "%llu payloads, %llu syncs\n", with_a, with_b,
		      (unsigned long long)w.equivocation_events, (unsigned long long)w.packets,
		      (unsigned long long)w.syncs);
	world_free(&w);
}

/* A forged record injected at one node reaches no store anywhere. */
static void fleet_forged_record_goes_nowhere(void **state)
{
	(void)state;
	struct repl_config cfg = cfg_default();
	struct world w;
	world_init(&w, 50, 5, 0.0, 0.0, &cfg);
	uint8_t pk[32], sk[64];
	keypair(300, pk, sk);
	struct record r;
	make_record(&r, pk, sk, NULL, RECORD_HALT, 16, 'h');
	r.body[0] = 'H'; /* after signing */
	uint8_t buf[SHOAL_UDP_PAYLOAD_BYTES_MAX];
	size_t len;
	assert_int_equal(repl_encode_payload(&r, 1, buf, sizeof(buf), &len), 0);
	for (uint32_t i = 0; i < 10; i++) {
		assert_int_equal(repl_recv_packet(w.nodes[i].core, 49, buf, len, 0), 0);
		drain(&w, i);
	}
	world_run(&w, 30000, NULL, NULL);
	for (size_t i = 0; i < w.count; i++)
		assert_int_equal(memfeed_records(w.nodes[i].feed), 0);
	assert_int_equal(w.packets, 0);
	assert_int_equal(w.record_events, 0);
	world_free(&w);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(payload_codec),
		cmocka_unit_test(push_rounds_follow_the_retransmit_limit),
		cmocka_unit_test(push_forwards_new_records_once),
		cmocka_unit_test(push_drops_tampered_records),
		cmocka_unit_test(push_does_not_forward_equivocation),
		cmocka_unit_test(queue_peers_and_sync_scheduling),
		cmocka_unit_test(sync_backs_off_when_idle_and_hurries_on_news),
		cmocka_unit_test(fleet_push_and_sync_reach_every_live_node),
		cmocka_unit_test(fleet_sync_alone_completes),
		cmocka_unit_test(fleet_equivocation_does_not_loop),
		cmocka_unit_test(fleet_forged_record_goes_nowhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
