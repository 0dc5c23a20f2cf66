/* replica.c — the agent's replication driver (see replica.h). */
#include "runtime/replica.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/announce.h"
#include "core/blobdl.h"
#include "core/record.h"
#include "core/replication.h"
#include "core/sync.h"
#include "runtime/releases.h"
#include "runtime/seal.h"
#include "runtime/upstream.h"
#include "shoal/hex.h"
#include "shoal/limits.h"
#include "shoal/log.h"
#include "store/blobs.h"
#include "store/feed.h"

#define RELEASE_QUEUE_MAX 64       /* announce records waiting */
#define SYNC_QUEUE_MAX 4           /* sync sessions waiting */
#define INBOX_MAX 4096             /* records/events waiting for the loop */
/* A new announce waits this long so that others arriving in the same sync
 * are queued beside it and go oldest first (see queue_announce). */
#define ANNOUNCE_SETTLE_MS 300
#define RELEASE_RETRY_MS 3000      /* an announce whose blobs no peer had yet */
#define RELEASE_TRIES_MAX 40       /* ... retried this often, then rejected */
#define PRUNE_INTERVAL_MS 60000

enum job_kind { JOB_ANNOUNCE = 1, JOB_SYNC };

struct job {
	struct job *next;
	enum job_kind kind;
	struct record rec;  /* JOB_ANNOUNCE */
	uint32_t gid;       /* JOB_SYNC */
	uint64_t not_before_ms;
	int tries;
	int64_t order; /* among ready jobs the lowest goes first, then FIFO */
};

enum inbox_kind { INBOX_PUBLISH = 1, INBOX_SYNCED, INBOX_SYNC_RESULT };

struct inbox_item {
	struct inbox_item *next;
	enum inbox_kind kind;
	struct record rec;     /* INBOX_PUBLISH */
	uint32_t gid;          /* INBOX_SYNCED, INBOX_SYNC_RESULT */
	struct repl_event ev;  /* INBOX_SYNCED */
	bool in_sync;          /* INBOX_SYNC_RESULT */
};

struct jobq {
	struct job *head, *tail;
	size_t n;
	pthread_cond_t cond;
	pthread_t thread;
	bool started;
};

struct replica {
	char data_dir[SHOAL_PATH_BYTES_MAX];
	const struct node_identity *self;
	uint32_t self_gid;
	struct stream_ctx *stream;
	struct replica_hooks hooks;
	struct replica_config cfg;
	struct feed *feed;
	struct blobs *blobs;
	struct relmgr *rel;
	struct upstream *up;    /* NULL without an upstream */
	struct repl_core *core; /* loop thread only */

	pthread_mutex_t mu;     /* guards everything below */
	struct replica_peer *peers;
	size_t peers_n;
	struct inbox_item *inbox, *inbox_tail;
	size_t inbox_n;
	struct jobq relq, syncq;
	bool stopping;
	uint64_t rng_state;

	atomic_uint_fast64_t syncs_ok, syncs_failed, syncs_served, records_synced;
	atomic_uint_fast64_t blob_streams_served, chunks_served, blob_fetched, blob_bad,
		chunks_fetched;
	atomic_uint_fast64_t releases_verified, releases_rejected, inbox_dropped;
};

static bool stopping(struct replica *r);

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void id_short(const uint8_t *id, char out[17])
{
	hex_encode(id, 8, out);
}

/* --- the feed store behind the core's store interface ----------------------- */

static int fo_put(void *store, const struct record *r, enum repl_put *res)
{
	enum feed_put_result fr = 0;
	int rc = feed_put(store, r, wall_ms(), &fr);
	if (rc == SHOAL_EPROTO && fr == FEED_BROKEN_LINK) {
		*res = REPL_PUT_EQUIVOCATION; /* evidence kept by the store */
		return 0;
	}
	if (rc)
		return rc;
	switch (fr) {
	case FEED_NEW: *res = REPL_PUT_NEW; break;
	case FEED_NEW_GAP: *res = REPL_PUT_NEW_GAP; break;
	case FEED_DUP: *res = REPL_PUT_DUP; break;
	case FEED_EQUIVOCATION:
	case FEED_BROKEN_LINK: *res = REPL_PUT_EQUIVOCATION; break;
	case FEED_STALE: *res = REPL_PUT_STALE; break;
	default: return SHOAL_EPROTO;
	}
	return 0;
}

static int fo_heads(void *store, struct repl_head **out, size_t *n)
{
	struct feed_head *h = NULL;
	size_t k = 0;
	int rc = feed_heads(store, &h, &k);
	*out = NULL;
	*n = 0;
	if (rc)
		return rc;
	if (k == 0)
		return 0;
	struct repl_head *o = calloc(k, sizeof(*o));
	if (!o) {
		free(h);
		return SHOAL_ENOMEM;
	}
	for (size_t i = 0; i < k; i++) {
		memcpy(o[i].author, h[i].author, SHOAL_NODE_ID_BYTES);
		o[i].seq_min = h[i].seq_min;
		o[i].seq_max = h[i].seq_max;
		o[i].count = h[i].count;
		memcpy(o[i].hash, h[i].hash, RECORD_HASH_BYTES);
		o[i].pruned_through = h[i].pruned_through;
	}
	free(h);
	*out = o;
	*n = k;
	return 0;
}

static int fo_range(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t from_seq,
		    size_t max, struct record *out, size_t *n)
{
	struct feed_entry e[REPL_RANGE_BATCH];
	if (max > REPL_RANGE_BATCH)
		max = REPL_RANGE_BATCH;
	int rc = feed_range(store, author, from_seq, max, e, n);
	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++)
		out[i] = e[i].rec;
	return 0;
}

static int fo_gaps(void *store, const uint8_t author[SHOAL_NODE_ID_BYTES], uint64_t from_seq,
		   size_t max, struct repl_gap *out, size_t *n)
{
	struct feed_gap g[REPL_GAPS_BATCH];
	if (max > REPL_GAPS_BATCH)
		max = REPL_GAPS_BATCH;
	int rc = feed_gaps(store, author, from_seq, max, g, n);
	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++) {
		out[i].first = g[i].first;
		out[i].last = g[i].last;
	}
	return 0;
}

static const struct repl_store_ops feed_ops = {fo_put, fo_heads, fo_range, fo_gaps};

/* --- peers ------------------------------------------------------------------ */

void replica_set_peers(struct replica *r, const struct replica_peer *peers, size_t n)
{
	assert(r && (peers || n == 0));
	uint32_t *gids = calloc(n ? n : 1, sizeof(*gids));
	struct replica_peer *copy = calloc(n ? n : 1, sizeof(*copy));
	if (!gids || !copy) {
		free(gids);
		free(copy);
		return;
	}
	if (n)
		memcpy(copy, peers, n * sizeof(*copy));
	for (size_t i = 0; i < n; i++)
		gids[i] = peers[i].gid;
	if (repl_set_peers(r->core, gids, n) != 0)
		log_warn("replica_peers_not_set", "count=%zu", n);
	free(gids);
	pthread_mutex_lock(&r->mu);
	free(r->peers);
	r->peers = copy;
	r->peers_n = n;
	pthread_mutex_unlock(&r->mu);
}

/* Copies the peer with gid (or id when gid is REPL_NONE) out of the
 * snapshot; false if it is not a live member. */
static bool peer_find(struct replica *r, uint32_t gid, const uint8_t *id,
		      struct replica_peer *out)
{
	bool found = false;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->peers_n && !found; i++) {
		const struct replica_peer *p = &r->peers[i];
		if ((gid != REPL_NONE && p->gid == gid) ||
		    (id && memcmp(p->id, id, SHOAL_NODE_ID_BYTES) == 0)) {
			*out = *p;
			found = true;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return found;
}

/* --- queues -------------------------------------------------------------------- */

static bool job_push(struct replica *r, struct jobq *q, struct job *j, size_t max)
{
	pthread_mutex_lock(&r->mu);
	bool ok = !r->stopping && q->n < max;
	if (ok) {
		j->next = NULL;
		if (q->tail)
			q->tail->next = j;
		else
			q->head = j;
		q->tail = j;
		q->n++;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&r->mu);
	if (!ok)
		free(j);
	return ok;
}

/* Waits for a job whose time has come; NULL when stopping. */
static struct job *job_pop(struct replica *r, struct jobq *q)
{
	pthread_mutex_lock(&r->mu);
	for (;;) {
		if (r->stopping) {
			pthread_mutex_unlock(&r->mu);
			return NULL;
		}
		uint64_t now = mono_ms(), wait_until = UINT64_MAX;
		struct job **best = NULL, *best_prev = NULL, *prev = NULL;
		int64_t fresh_min = INT64_MAX; /* lowest order of first tries not yet due */
		uint64_t fresh_due = 0;
		for (struct job **pp = &q->head; *pp; prev = *pp, pp = &(*pp)->next) {
			struct job *j = *pp;
			if (j->not_before_ms <= now) {
				if (!best || j->order < (*best)->order) {
					best = pp;
					best_prev = prev;
				}
				continue;
			}
			if (j->not_before_ms < wait_until)
				wait_until = j->not_before_ms;
			if (j->tries == 0 && j->order < fresh_min) {
				fresh_min = j->order;
				fresh_due = j->not_before_ms;
			}
		}
		/* A first try of a lower order queued a moment later (same
		 * batch, still settling) goes before this one. */
		if (best && fresh_min < (*best)->order) {
			best = NULL;
			wait_until = fresh_due;
		}
		if (best) {
			struct job *j = *best;
			*best = j->next;
			if (q->tail == j)
				q->tail = best_prev;
			q->n--;
			pthread_mutex_unlock(&r->mu);
			return j;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t wait_ms = wait_until == UINT64_MAX ? 1000 : wait_until - now;
		if (wait_ms > 1000)
			wait_ms = 1000;
		ts.tv_sec += (time_t)(wait_ms / 1000);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q->cond, &r->mu, &ts);
	}
}

static void inbox_push(struct replica *r, struct inbox_item *it)
{
	pthread_mutex_lock(&r->mu);
	bool ok = r->inbox_n < INBOX_MAX;
	if (ok) {
		it->next = NULL;
		if (r->inbox_tail)
			r->inbox_tail->next = it;
		else
			r->inbox = it;
		r->inbox_tail = it;
		r->inbox_n++;
	}
	pthread_mutex_unlock(&r->mu);
	if (!ok) {
		atomic_fetch_add(&r->inbox_dropped, 1);
		free(it);
		return;
	}
	r->hooks.wake(r->hooks.arg);
}

static void queue_announce(struct replica *r, const struct record *rec, uint64_t delay_ms,
			   int tries)
{
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->kind = JOB_ANNOUNCE;
	j->rec = *rec;
	j->tries = tries;
	/* Oldest release first, as an agent online all along saw them: a node
	 * catching up on v2 (good) and v3 (rejected) must not trust v3's
	 * timestamp before it has v2, or v2 would then look like a rollback. */
	struct announce a;
	if (announce_decode(rec->body, rec->body_len, &a) == 0)
		for (uint8_t i = 0; i < a.count; i++)
			if (a.files[i].role == ANNOUNCE_TIMESTAMP)
				j->order = a.files[i].version;
	j->not_before_ms = mono_ms() + delay_ms;
	if (!job_push(r, &r->relq, j, RELEASE_QUEUE_MAX))
		log_warn("release_queue_full", "seq=%llu", (unsigned long long)rec->seq);
}

/* --- loop thread: events and outputs ------------------------------------------ */

static void on_record_event(struct replica *r, const struct repl_event *ev)
{
	char author[17];
	id_short(ev->author, author);
	if (ev->kind == REPL_EV_EQUIVOCATION) {
		log_warn("feed_equivocation", "author=%s seq=%llu source=%s", author,
			 (unsigned long long)ev->seq, repl_source_name(ev->source));
		return;
	}
	log_info("record_new", "kind=%s author=%s seq=%llu source=%s",
		 record_kind_name(ev->record_kind), author, (unsigned long long)ev->seq,
		 repl_source_name(ev->source));
	if (ev->record_kind != RECORD_ANNOUNCE && ev->record_kind != RECORD_HEALTH)
		return;
	struct feed_entry e;
	if (feed_get(r->feed, ev->author, ev->seq, &e) != 0)
		return;
	if (ev->record_kind == RECORD_ANNOUNCE) {
		if (!relmgr_seen(r->rel, &e.rec)) {
			relmgr_note_announced(r->rel, &e.rec);
			queue_announce(r, &e.rec, ANNOUNCE_SETTLE_MS, 0);
		}
		return;
	}
	int64_t version;
	char state[32];
	if (relmgr_parse_health(e.rec.body, e.rec.body_len, &version, state, sizeof(state)) == 0)
		relmgr_note_health(r->rel, ev->author, version, state);
}

static void drain_core(struct replica *r)
{
	struct repl_out o;
	while (repl_poll(r->core, &o)) {
		switch (o.kind) {
		case REPL_OUT_PACKET: {
			struct replica_peer p;
			if (peer_find(r, o.to_gid, NULL, &p))
				r->hooks.send(r->hooks.arg, &p.addr, o.data, o.len);
			break;
		}
		case REPL_OUT_SYNC: {
			struct job *j = calloc(1, sizeof(*j));
			if (j) {
				j->kind = JOB_SYNC;
				j->gid = o.to_gid;
				job_push(r, &r->syncq, j, SYNC_QUEUE_MAX);
			}
			break;
		}
		case REPL_OUT_EVENT:
			on_record_event(r, &o.ev);
			break;
		}
	}
}

void replica_on_packet(struct replica *r, uint32_t from_gid, const uint8_t *p, size_t len,
		       uint64_t now_ms)
{
	assert(r && p);
	int rc = repl_recv_packet(r->core, from_gid, p, len, now_ms);
	if (rc)
		log_debug("repl_packet_refused", "reason=\"%s\"", shoal_strerror(rc));
	drain_core(r);
}

void replica_loop_work(struct replica *r, uint64_t now_ms)
{
	assert(r);
	pthread_mutex_lock(&r->mu);
	struct inbox_item *list = r->inbox;
	r->inbox = r->inbox_tail = NULL;
	r->inbox_n = 0;
	pthread_mutex_unlock(&r->mu);
	while (list) {
		struct inbox_item *it = list;
		list = it->next;
		if (it->kind == INBOX_PUBLISH) {
			if (repl_publish(r->core, &it->rec, now_ms) != 0)
				log_warn("record_not_published", "seq=%llu",
					 (unsigned long long)it->rec.seq);
		} else if (it->kind == INBOX_SYNCED) {
			repl_note_synced(r->core, it->gid, &it->ev, now_ms);
		} else {
			repl_note_sync_result(r->core, it->gid, it->in_sync, now_ms);
		}
		free(it);
		drain_core(r);
	}
	if (repl_next_deadline(r->core) <= now_ms)
		repl_tick(r->core, now_ms);
	drain_core(r);
}

uint64_t replica_next_deadline(const struct replica *r)
{
	return repl_next_deadline(r->core);
}

/* --- sync sessions (sync thread: initiator; conn threads: responder) ------------ */

static int send_msg(struct stream_conn *c, const uint8_t *p, size_t n)
{
	return stream_send_frame(c, STREAM_FRAME_SYNC, p, n);
}

/* Hands a session's events to the loop. */
static void forward_events(struct replica *r, struct sync_session *s, uint32_t gid)
{
	struct repl_event ev;
	while (sync_session_poll(s, &ev)) {
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it)
			continue;
		it->kind = INBOX_SYNCED;
		it->gid = gid;
		it->ev = ev;
		if (ev.kind == REPL_EV_RECORD)
			atomic_fetch_add(&r->records_synced, 1);
		inbox_push(r, it);
	}
}

/* Runs a session whose first outgoing message (initiator) or incoming
 * message (responder) is given; returns 0 when both sides finished. */
static int run_session(struct replica *r, struct stream_conn *c, struct sync_session *s,
		       const uint8_t *first_in, size_t first_in_len, uint32_t gid)
{
	const uint8_t *out = NULL;
	size_t out_len = 0;
	int rc = 0;
	if (first_in) {
		rc = sync_session_recv(s, first_in, first_in_len, &out, &out_len);
		forward_events(r, s, gid);
	} else {
		rc = sync_session_start(s, &out, &out_len);
	}
	for (int turns = 0; rc == 0 && turns < SHOAL_SYNC_FRAMES_MAX; turns++) {
		if (out_len > 0 && (rc = send_msg(c, out, out_len)) != 0)
			break;
		if (sync_session_done(s))
			return 0;
		if (stopping(r)) {
			rc = SHOAL_ESTATE;
			break;
		}
		/* Each turn must come within the stream timeout; the session
		 * as a whole is bounded by its frame count. */
		stream_conn_set_deadline(c, SHOAL_TCP_TIMEOUT_MS);
		struct stream_frame f;
		if ((rc = stream_recv_frame(c, &f)) != 0)
			break;
		if (f.type != STREAM_FRAME_SYNC) {
			rc = SHOAL_EPROTO;
			break;
		}
		rc = sync_session_recv(s, f.payload, f.len, &out, &out_len);
		forward_events(r, s, gid);
	}
	return rc ? rc : SHOAL_ETOOBIG;
}

static void sync_with(struct replica *r, uint32_t gid)
{
	struct replica_peer p;
	if (!peer_find(r, gid, NULL, &p))
		return;
	struct stream_conn *c;
	struct stream_peer sp;
	int rc = stream_connect(r->stream, &p.addr, p.id, wall_ms(), &c, &sp);
	if (rc == 0) {
		struct sync_session *s = sync_session_new(SYNC_INITIATOR, &feed_ops, r->feed);
		rc = s ? run_session(r, c, s, NULL, 0, gid) : SHOAL_ENOMEM;
		if (s && rc == 0) {
			const struct sync_stats *st = sync_session_stats(s);
			if (st->records_new > 0)
				log_info("sync_done", "peer=%s records_new=%llu",
					 sp.cert.name, (unsigned long long)st->records_new);
			/* The core slows an idle node's syncs down (and speeds
			 * them up again) by what its sessions find. */
			struct inbox_item *it = calloc(1, sizeof(*it));
			if (it) {
				it->kind = INBOX_SYNC_RESULT;
				it->gid = gid;
				it->in_sync = st->buckets_differing == 0;
				inbox_push(r, it);
			}
		}
		sync_session_free(s);
		stream_close(c);
	}
	char addr[SHOAL_ADDR_STR_MAX];
	if (rc) {
		atomic_fetch_add(&r->syncs_failed, 1);
		log_debug("sync_failed", "peer=%s reason=\"%s\"", addr_format(&p.addr, addr),
			  shoal_strerror(rc));
	} else {
		atomic_fetch_add(&r->syncs_ok, 1);
	}
}

static void *sync_main(void *arg)
{
	struct replica *r = arg;
	uint64_t last_prune = mono_ms();
	for (;;) {
		struct job *j = job_pop(r, &r->syncq);
		if (!j)
			break;
		sync_with(r, j->gid);
		free(j);
		if (mono_ms() - last_prune >= PRUNE_INTERVAL_MS && r->cfg.retention_ms > 0) {
			uint64_t pruned = 0;
			if (feed_prune(r->feed, wall_ms(), r->cfg.retention_ms, &pruned) == 0 &&
			    pruned > 0)
				log_info("feed_pruned", "records=%llu", (unsigned long long)pruned);
			last_prune = mono_ms();
		}
	}
	return NULL;
}

/* --- blob serving (conn threads) -------------------------------------------------- */

static int serve_blob_req(struct replica *r, struct stream_conn *c, const struct sync_msg *m)
{
	uint8_t *buf = malloc(SHOAL_SYNC_MSG_BYTES_MAX);
	uint8_t *data = malloc(SHOAL_BLOB_CHUNK_BYTES_MAX);
	if (!buf || !data) {
		free(buf);
		free(data);
		return SHOAL_ENOMEM;
	}
	struct wr w = wr_init(buf, SHOAL_SYNC_MSG_BYTES_MAX);
	uint64_t total;
	int rc = 0;
	if (blobs_size(r->blobs, m->hash, &total) != 0) {
		sync_put_blob_none(&w, m->hash);
	} else {
		uint32_t n = sync_blob_chunk_len(total, m->offset, m->len);
		size_t got = 0;
		if (n > 0)
			rc = blobs_read_at(r->blobs, m->hash, m->offset, data, n, &got);
		if (rc == 0 && got != n)
			rc = SHOAL_EIO; /* the file shrank under us */
		if (rc == 0)
			sync_put_blob_chunk(&w, m->hash, m->offset, total, data, n);
		atomic_fetch_add(&r->chunks_served, 1);
	}
	if (rc == 0)
		rc = wr_ok(&w) ? send_msg(c, buf, w.len) : SHOAL_ETOOBIG;
	free(buf);
	free(data);
	return rc;
}

void replica_serve(struct replica *r, struct stream_conn *c, const struct stream_frame *first,
		   const struct stream_peer *peer)
{
	assert(r && c && first && peer);
	struct sync_msg m;
	int rc = sync_decode(first->payload, first->len, &m);
	if (rc == 0 && (m.type == SYNC_ROOT || m.type == SYNC_DIGEST)) {
		struct sync_session *s = sync_session_new(SYNC_RESPONDER, &feed_ops, r->feed);
		rc = s ? run_session(r, c, s, first->payload, first->len, REPL_NONE)
		       : SHOAL_ENOMEM;
		sync_session_free(s);
		if (rc == 0)
			atomic_fetch_add(&r->syncs_served, 1);
	} else if (rc == 0 && m.type == SYNC_BLOB_REQ) {
		atomic_fetch_add(&r->blob_streams_served, 1);
		/* Request/response until the client closes, a request does not
		 * come within the stream timeout, or the agent stops. */
		for (;;) {
			if ((rc = serve_blob_req(r, c, &m)) != 0 || stopping(r))
				break;
			stream_conn_set_deadline(c, SHOAL_TCP_TIMEOUT_MS);
			struct stream_frame f;
			if (stream_recv_frame(c, &f) != 0)
				break; /* client done */
			if (f.type != STREAM_FRAME_SYNC ||
			    sync_decode(f.payload, f.len, &m) != 0 || m.type != SYNC_BLOB_REQ) {
				rc = SHOAL_EPROTO;
				break;
			}
		}
	} else if (rc == 0) {
		rc = SHOAL_EPROTO;
	}
	if (rc)
		log_debug("sync_serve_failed", "peer=%s reason=\"%s\"", peer->cert.name,
			  shoal_strerror(rc));
	stream_close(c);
}

/* --- blob fetching (release thread) ------------------------------------------------ */

struct fetch_ctx {
	struct replica *r;
	int64_t targets_version; /* holders of it are asked first */
};

/* A kept-open blob stream with requests sent ahead: the tracker keeps the
 * peer that served the last chunk and asks for the next offset, so while
 * it does, up to BLOB_WINDOW requests for the following chunks are already
 * on the wire (one round trip per window, not per 60 KiB chunk). Replies
 * come in order; an answer the tracker did not ask for closes the stream. */
#define BLOB_WINDOW 8

struct blob_conn {
	struct stream_conn *c;
	uint32_t gid;
	uint64_t sent_offset[BLOB_WINDOW]; /* ring of requests awaiting replies */
	uint32_t sent_len[BLOB_WINDOW];
	unsigned head, count;
	uint64_t next_offset; /* where the next request sent ahead starts */
};

static void bc_close(struct blob_conn *bc)
{
	if (bc->c)
		stream_close(bc->c);
	bc->c = NULL;
	bc->gid = REPL_NONE;
	bc->head = bc->count = 0;
}

static int blob_send_req(struct blob_conn *bc, const uint8_t hash[32], uint64_t offset,
			 uint32_t len)
{
	assert(bc->count < BLOB_WINDOW);
	uint8_t buf[SYNC_HEADER_BYTES + 32 + 8 + 4];
	struct wr w = wr_init(buf, sizeof(buf));
	sync_put_blob_req(&w, hash, offset, len);
	assert(wr_ok(&w));
	int rc = send_msg(bc->c, buf, w.len);
	if (rc == 0) {
		unsigned i = (bc->head + bc->count) % BLOB_WINDOW;
		bc->sent_offset[i] = offset;
		bc->sent_len[i] = len;
		bc->count++;
		bc->next_offset = offset + len;
	}
	return rc;
}

/* One request to req->peer over the kept-open stream, answered from the
 * requests already sent when it is the next of them, with the window
 * topped up to `length`. Returns 0 with *m decoded (m->data points into the
 * conn's buffer), or an error (the stream is closed). */
static int blob_ask(struct replica *r, struct blob_conn *bc, const uint8_t hash[32],
		    uint64_t length, const struct blob_dl_req *req, struct sync_msg *m)
{
	if (bc->c && (bc->gid != req->peer || (bc->count > 0 &&
			(bc->sent_offset[bc->head] != req->offset ||
			 bc->sent_len[bc->head] != req->len))))
		bc_close(bc);
	int rc = 0;
	if (!bc->c) {
		struct replica_peer p;
		if (!peer_find(r, req->peer, NULL, &p))
			return SHOAL_ENOTFOUND;
		struct stream_peer sp;
		rc = stream_connect(r->stream, &p.addr, p.id, wall_ms(), &bc->c, &sp);
		if (rc)
			return rc;
		bc->gid = req->peer;
		bc->head = bc->count = 0;
	}
	stream_conn_set_deadline(bc->c, SHOAL_TCP_TIMEOUT_MS);
	if (bc->count == 0)
		rc = blob_send_req(bc, hash, req->offset, req->len);
	while (rc == 0 && bc->count < BLOB_WINDOW && bc->next_offset < length) {
		uint64_t left = length - bc->next_offset;
		rc = blob_send_req(bc, hash, bc->next_offset,
				   left < req->len ? (uint32_t)left : req->len);
	}
	struct stream_frame f;
	if (rc == 0)
		rc = stream_recv_frame(bc->c, &f);
	if (rc == 0 && f.type != STREAM_FRAME_SYNC)
		rc = SHOAL_EPROTO;
	if (rc == 0)
		rc = sync_decode(f.payload, f.len, m);
	if (rc == 0 && m->type != SYNC_BLOB_CHUNK && m->type != SYNC_BLOB_NONE)
		rc = SHOAL_EPROTO;
	if (rc) {
		bc_close(bc);
		return rc;
	}
	bc->head = (bc->head + 1) % BLOB_WINDOW;
	bc->count--;
	return 0;
}

/* Adds candidates: the announcer and holders of the version first
 * (phase 0), every live peer after (phase 1). */
static void add_candidates(struct replica *r, struct blob_dl *d, const uint8_t *announcer,
			   int64_t version, int phase)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->peers_n;
	struct replica_peer *copy = calloc(n ? n : 1, sizeof(*copy));
	if (copy && n)
		memcpy(copy, r->peers, n * sizeof(*copy));
	pthread_mutex_unlock(&r->mu);
	if (!copy)
		return;
	for (size_t i = 0; i < n; i++) {
		bool first = announcer && memcmp(copy[i].id, announcer, 32) == 0;
		bool holder = version > 0 && relmgr_holds(r->rel, copy[i].id, version);
		if ((phase == 0 ? (first || holder) : true) &&
		    blob_dl_add_peer(d, copy[i].gid) == SHOAL_EFULL)
			break;
	}
	free(copy);
}

static int fetch_blob(void *arg, const uint8_t hash[32], uint64_t length,
		      const uint8_t announcer[SHOAL_NODE_ID_BYTES], char *err, size_t errlen)
{
	struct fetch_ctx *fc = arg;
	struct replica *r = fc->r;
	if (blobs_has(r->blobs, hash))
		return 0;
	uint64_t resume = blobs_partial_size(r->blobs, hash);
	if (resume > length) {
		blobs_partial_drop(r->blobs, hash);
		resume = 0;
	}
	struct blob_dl d;
	uint64_t seed;
	randombytes_buf(&seed, sizeof(seed));
	int rc = blob_dl_init(&d, hash, length, true, resume, seed);
	if (rc) {
		snprintf(err, errlen, "blob length %llu out of bounds",
			 (unsigned long long)length);
		return rc;
	}
	add_candidates(r, &d, announcer, fc->targets_version, 0);
	int phase = 0;
	struct blob_conn bc = {.c = NULL, .gid = REPL_NONE};
	char hex[BLOB_HEX_BYTES];
	blobs_hex(hash, hex);
	/* Every step moves a chunk or retires a peer; bound them anyway. */
	uint64_t steps_max = length / SHOAL_BLOB_CHUNK_BYTES_MAX * 4 + 1000;
	rc = SHOAL_ENOTFOUND;
	for (uint64_t step = 0; step < steps_max; step++) {
		if (stopping(r)) {
			rc = SHOAL_ESTATE;
			break;
		}
		struct blob_dl_req req;
		enum blob_dl_status st = blob_dl_next(&d, &req);
		if (st == BLOB_DL_COMPLETE) {
			rc = blobs_partial_commit(r->blobs, hash);
			if (rc == 0) {
				atomic_fetch_add(&r->blob_fetched, 1);
				break;
			}
			if (rc != SHOAL_EBADMAC)
				break;
			atomic_fetch_add(&r->blob_bad, 1);
			log_warn("blob_bad", "hash=%.16s peers_excluded=yes", hex);
			blob_dl_verify_failed(&d);
			bc_close(&bc);
			continue;
		}
		if (st == BLOB_DL_STALLED) {
			if (phase == 0) {
				phase = 1;
				add_candidates(r, &d, announcer, 0, 1);
				continue;
			}
			rc = SHOAL_ENOTFOUND;
			snprintf(err, errlen, "blob %.16s: no reachable peer holds it", hex);
			break;
		}
		struct sync_msg m;
		int arc = blob_ask(r, &bc, hash, length, &req, &m);
		if (arc) {
			blob_dl_on_error(&d, req.peer);
			continue;
		}
		if (m.type == SYNC_BLOB_NONE) {
			blob_dl_on_none(&d, req.peer);
			bc_close(&bc);
			continue;
		}
		if (blob_dl_on_chunk(&d, req.peer, m.hash, m.offset, m.total, m.len) != 0) {
			bc_close(&bc);
			continue;
		}
		rc = blobs_partial_append(r->blobs, hash, m.offset, length, m.data, m.len);
		if (rc) {
			snprintf(err, errlen, "blob %.16s: cannot store: %s", hex, shoal_strerror(rc));
			break;
		}
		atomic_fetch_add(&r->chunks_fetched, 1);
		rc = SHOAL_ENOTFOUND;
	}
	bc_close(&bc);
	return rc;
}

/* --- releases (release thread) --------------------------------------------------------- */

static void append_own(struct replica *r, uint8_t kind, const uint8_t *body, size_t len)
{
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it)
		return;
	int rc = feed_append(r->feed, r->self->kp.sk, kind, wall_ms(), body, len, &it->rec);
	if (rc) {
		log_error("feed_append_failed", "kind=%s err=\"%s\"", record_kind_name(kind),
			  feed_errmsg());
		free(it);
		return;
	}
	it->kind = INBOX_PUBLISH;
	inbox_push(r, it);
}

static void process_announce(struct replica *r, struct job *j)
{
	if (relmgr_seen(r->rel, &j->rec))
		return;
	struct announce a;
	int64_t announced_targets = 0;
	if (announce_decode(j->rec.body, j->rec.body_len, &a) == 0)
		for (uint8_t i = 0; i < a.count; i++)
			if (a.files[i].role == ANNOUNCE_TARGETS)
				announced_targets = a.files[i].version;
	struct fetch_ctx fc = {r, announced_targets};
	int64_t version = 0;
	char err[512];
	bool final = j->tries + 1 >= RELEASE_TRIES_MAX;
	char by[17];
	id_short(j->rec.author, by);
	int rc = relmgr_process(r->rel, &j->rec, (int64_t)(wall_ms() / 1000), final, fetch_blob,
				&fc, &version, err, sizeof(err));
	if (rc == 0) {
		atomic_fetch_add(&r->releases_verified, 1);
		log_info("release_verified", "version=%lld announced_by=%s seq=%llu",
			 (long long)version, by, (unsigned long long)j->rec.seq);
		uint8_t body[SHOAL_RECORD_BODY_MAX];
		size_t len;
		if (relmgr_health_body(version, "fetched", "", body, sizeof(body), &len) == 0) {
			relmgr_note_health(r->rel, r->self->kp.pk, version, "fetched");
			append_own(r, RECORD_HEALTH, body, len);
		}
		return;
	}
	if (rc == SHOAL_ECONN && !final) {
		log_debug("release_waiting", "announced_by=%s seq=%llu try=%d reason=\"%s\"", by,
			  (unsigned long long)j->rec.seq, j->tries + 1, err);
		queue_announce(r, &j->rec, RELEASE_RETRY_MS, j->tries + 1);
		return;
	}
	atomic_fetch_add(&r->releases_rejected, 1);
	char quoted[1100];
	shoal_log_quote(err, quoted, sizeof(quoted));
	log_warn("release_rejected", "announced_by=%s seq=%llu version=%lld reason=%s", by,
		 (unsigned long long)j->rec.seq, (long long)announced_targets, quoted);
}

static void *release_main(void *arg)
{
	struct replica *r = arg;
	for (;;) {
		struct job *j = job_pop(r, &r->relq);
		if (!j)
			break;
		process_announce(r, j);
		free(j);
	}
	return NULL;
}

/* Announces held in the feed but never finished (an agent killed during a
 * transfer) are taken up again at start. */
static void resume_announces(struct replica *r)
{
	struct feed_filter flt;
	memset(&flt, 0, sizeof(flt));
	flt.kind = RECORD_ANNOUNCE;
	struct feed_entry *page = calloc(SHOAL_FEED_RANGE_MAX, sizeof(*page));
	if (!page)
		return;
	for (int pages = 0; pages < 64; pages++) {
		size_t n = 0;
		if (feed_list(r->feed, &flt, SHOAL_FEED_RANGE_MAX, page, &n) != 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (!relmgr_seen(r->rel, &page[i].rec))
				queue_announce(r, &page[i].rec, 0, 0);
		if (n < SHOAL_FEED_RANGE_MAX)
			break;
		flt.has_cursor = true;
		memcpy(flt.after_author, page[n - 1].rec.author, SHOAL_NODE_ID_BYTES);
		flt.after_seq = page[n - 1].rec.seq;
	}
	free(page);
}

/* --- control ------------------------------------------------------------------------- */

/* The upstream thread's inject: the repository becomes an announce in our
 * feed, handed to the loop thread to push (as append_own does). */
static int inject_upstream(void *arg, const char *repo_dir, uint64_t *seq, char *err,
			   size_t errlen)
{
	struct replica *r = arg;
	struct announce a;
	assert(r && repo_dir && seq);
	int rc = relmgr_ingest_repo(r->rel, repo_dir, &a, err, errlen);
	if (rc)
		return rc;
	uint8_t body[SHOAL_RECORD_BODY_MAX];
	size_t len;
	if ((rc = announce_encode(&a, body, sizeof(body), &len)) != 0) {
		snprintf(err, errlen, "announce does not fit a record");
		return rc;
	}
	if (stopping(r)) {
		snprintf(err, errlen, "the agent is stopping");
		return SHOAL_ESTATE;
	}
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it)
		return SHOAL_ENOMEM;
	rc = feed_append(r->feed, r->self->kp.sk, RECORD_ANNOUNCE, wall_ms(), body, len, &it->rec);
	if (rc) {
		snprintf(err, errlen, "cannot append the announce record: %s", feed_errmsg());
		free(it);
		return rc;
	}
	*seq = it->rec.seq;
	it->kind = INBOX_PUBLISH;
	inbox_push(r, it);
	return 0;
}

json_t *replica_publish(struct replica *r, const char *repo_dir, uint64_t now_ms)
{
	assert(r && repo_dir);
	struct announce a;
	char err[512];
	int rc = relmgr_ingest_repo(r->rel, repo_dir, &a, err, sizeof(err));
	if (rc)
		return json_pack("{s:s}", "error", err);
	uint8_t body[SHOAL_RECORD_BODY_MAX];
	size_t len;
	rc = announce_encode(&a, body, sizeof(body), &len);
	if (rc)
		return json_pack("{s:s}", "error", "announce does not fit a record");
	struct record rec;
	rc = feed_append(r->feed, r->self->kp.sk, RECORD_ANNOUNCE, wall_ms(), body, len, &rec);
	if (rc)
		return json_pack("{s:s, s:s}", "error", "cannot append the announce record",
				 "detail", feed_errmsg());
	if (repl_publish(r->core, &rec, now_ms) != 0)
		return json_pack("{s:s}", "error", "cannot queue the announce record");
	drain_core(r);
	int64_t ts_v = 0, targ_v = 0;
	for (uint8_t i = 0; i < a.count; i++) {
		if (a.files[i].role == ANNOUNCE_TIMESTAMP)
			ts_v = a.files[i].version;
		if (a.files[i].role == ANNOUNCE_TARGETS)
			targ_v = a.files[i].version;
	}
	log_info("release_published", "repo=%s seq=%llu files=%u targets_version=%lld", repo_dir,
		 (unsigned long long)rec.seq, (unsigned)a.count, (long long)targ_v);
	return json_pack("{s:I, s:i, s:I, s:I}", "announce_seq", (json_int_t)rec.seq, "files",
			 (int)a.count, "timestamp_version", (json_int_t)ts_v, "targets_version",
			 (json_int_t)targ_v);
}

json_t *replica_releases(struct replica *r)
{
	assert(r);
	json_t *j = relmgr_list(r->rel);
	return j ? j : json_pack("{s:s}", "error", "out of memory");
}

json_t *replica_status(struct replica *r)
{
	assert(r);
	const struct repl_stats *s = repl_core_stats(r->core);
	struct feed_stats fs;
	memset(&fs, 0, sizeof(fs));
	if (feed_stats(r->feed, &fs) != 0)
		memset(&fs, 0, sizeof(fs));
	json_t *j = json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"feed_records", (json_int_t)fs.records, "feed_authors", (json_int_t)fs.authors,
		"sync_interval_ms", (json_int_t)repl_sync_interval_now(r->core),
		"equivocating_authors", (json_int_t)fs.equivocating_authors,
		"push_packets_sent", (json_int_t)s->packets_sent,
		"push_packets_received", (json_int_t)s->packets_received,
		"push_packets_malformed", (json_int_t)s->packets_malformed,
		"records_new", (json_int_t)s->records_new,
		"records_bad_sig", (json_int_t)s->records_bad_sig,
		"syncs_ok", (json_int_t)atomic_load(&r->syncs_ok),
		"syncs_failed", (json_int_t)atomic_load(&r->syncs_failed),
		"syncs_served", (json_int_t)atomic_load(&r->syncs_served),
		"records_synced", (json_int_t)atomic_load(&r->records_synced),
		"blob_chunks_served", (json_int_t)atomic_load(&r->chunks_served),
		"blob_chunks_fetched", (json_int_t)atomic_load(&r->chunks_fetched),
		"blobs_fetched", (json_int_t)atomic_load(&r->blob_fetched),
		"blobs_failed_verification", (json_int_t)atomic_load(&r->blob_bad),
		"releases_verified", (json_int_t)atomic_load(&r->releases_verified),
		"releases_rejected", (json_int_t)atomic_load(&r->releases_rejected),
		"inbox_dropped", (json_int_t)atomic_load(&r->inbox_dropped));
	if (j && r->up)
		json_object_set_new(j, "upstream", upstream_status(r->up));
	return j;
}

/* --- life cycle ------------------------------------------------------------------------ */

int replica_open(const char *data_dir, const struct node_identity *self, uint32_t self_gid,
		 struct stream_ctx *stream, const struct replica_config *cfg,
		 const struct replica_hooks *hooks, uint64_t now_ms, struct replica **out,
		 char *err, size_t errlen)
{
	assert(data_dir && self && stream && cfg && hooks && out);
	*out = NULL;
	struct replica *r = calloc(1, sizeof(*r));
	if (!r)
		return SHOAL_ENOMEM;
	snprintf(r->data_dir, sizeof(r->data_dir), "%s", data_dir);
	r->self = self;
	r->self_gid = self_gid;
	r->stream = stream;
	r->hooks = *hooks;
	r->cfg = *cfg;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->relq.cond, NULL);
	pthread_cond_init(&r->syncq.cond, NULL);
	int rc = feed_open(data_dir, &r->feed, err, errlen);
	if (rc == 0)
		rc = blobs_open(data_dir, &r->blobs, err, errlen);
	if (rc == 0)
		rc = relmgr_open(data_dir, r->blobs, &r->rel, err, errlen);
	if (rc) {
		replica_close(r);
		return rc;
	}
	struct repl_config rc_cfg;
	repl_config_default(&rc_cfg);
	rc_cfg.payload_bytes_max = (uint32_t)seal_payload_max(self);
	if (cfg->sync_interval_ms)
		rc_cfg.sync_interval_ms = cfg->sync_interval_ms;
	if (cfg->gossip_interval_ms)
		rc_cfg.gossip_interval_ms = cfg->gossip_interval_ms;
	uint64_t seed;
	randombytes_buf(&seed, sizeof(seed));
	r->core = repl_core_new(&rc_cfg, &feed_ops, r->feed, self_gid, seed, now_ms);
	if (!r->core) {
		replica_close(r);
		return SHOAL_ENOMEM;
	}
	if (pthread_create(&r->relq.thread, NULL, release_main, r) != 0) {
		replica_close(r);
		snprintf(err, errlen, "cannot start the release thread");
		return SHOAL_ENOMEM;
	}
	r->relq.started = true;
	if (pthread_create(&r->syncq.thread, NULL, sync_main, r) != 0) {
		replica_close(r);
		snprintf(err, errlen, "cannot start the sync thread");
		return SHOAL_ENOMEM;
	}
	r->syncq.started = true;
	resume_announces(r);
	if (cfg->upstream_url && cfg->upstream_url[0]) {
		struct upstream_config ucfg = {cfg->upstream_url, cfg->upstream_interval_ms};
		rc = upstream_open(data_dir, &ucfg, inject_upstream, r, &r->up, err, errlen);
		if (rc == 0 && (rc = upstream_start(r->up)) != 0)
			snprintf(err, errlen, "cannot start the upstream thread");
		if (rc) {
			replica_close(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

static void free_jobs(struct jobq *q)
{
	while (q->head) {
		struct job *j = q->head;
		q->head = j->next;
		free(j);
	}
	q->tail = NULL;
	q->n = 0;
}

static bool stopping(struct replica *r)
{
	pthread_mutex_lock(&r->mu);
	bool s = r->stopping;
	pthread_mutex_unlock(&r->mu);
	return s;
}

void replica_stop(struct replica *r)
{
	if (!r)
		return;
	upstream_stop(r->up); /* a pull in progress gives up within about a second */
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_cond_broadcast(&r->relq.cond);
	pthread_cond_broadcast(&r->syncq.cond);
	pthread_mutex_unlock(&r->mu);
}

void replica_close(struct replica *r)
{
	if (!r)
		return;
	replica_stop(r);
	upstream_close(r->up); /* before what its inject uses */
	if (r->relq.started)
		pthread_join(r->relq.thread, NULL);
	if (r->syncq.started)
		pthread_join(r->syncq.thread, NULL);
	free_jobs(&r->relq);
	free_jobs(&r->syncq);
	while (r->inbox) {
		struct inbox_item *it = r->inbox;
		r->inbox = it->next;
		free(it);
	}
	repl_core_free(r->core);
	relmgr_close(r->rel);
	blobs_close(r->blobs);
	feed_close(r->feed);
	free(r->peers);
	pthread_cond_destroy(&r->relq.cond);
	pthread_cond_destroy(&r->syncq.cond);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
