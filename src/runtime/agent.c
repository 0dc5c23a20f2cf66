/*
 * agent.c — the agent process: the membership core and the replication
 * driver (runtime/replica.h) under libuv.
 *
 * Threads and ownership:
 *   loop thread   owns the membership core, the replication core, the seal
 *                 context, the store, the UDP socket, timers and the control
 *                 socket. Every core call happens here.
 *   listener      accept()s stream connections and hands each to a
 *                 short-lived connection thread (at most SHOAL_TCP_CONNS_MAX).
 *   connection    runs the Noise handshake, then by the first frame either a
 *                 push-pull (asks the loop for the local state — state_req,
 *                 answered in on_async — and queues the remote state for the
 *                 loop to merge) or a replication stream (replica_serve).
 *   libuv pool    runs outgoing push-pulls (uv_queue_work).
 *   replica       its own sync and release threads (see replica.h).
 *
 * The core sees monotonic milliseconds; certificates are checked against the
 * wall clock. After every input the core's outputs are drained (packets are
 * sealed and sent, push-pulls started, events logged) and the single timer is
 * re-armed at the core's next deadline.
 */
#include "runtime/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <malloc.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/membership.h"
#include "core/replication.h"
#include "runtime/control.h"
#include "runtime/http.h"
#include "runtime/replica.h"
#include "runtime/seal.h"
#include "runtime/stream.h"
#include "shoal/hex.h"
#include "shoal/log.h"
#include "store/store.h"
#include "trust/identity.h"

#define SAVE_INTERVAL_MS 5000      /* members snapshot to SQLite when changed */
#define REJOIN_INTERVAL_MS 5000    /* retry seeds while we know no one */
#define LEAVE_LINGER_MS 1000       /* keep gossiping our LEFT before exit */
#define STATE_REQ_TIMEOUT_MS 5000  /* a connection thread waits for the loop */

/* A question from another thread (stream connection, HTTP) that only the loop
 * thread may answer, because only it touches the core. */
enum req_kind { REQ_STATE, REQ_STATUS, REQ_MEMBERS };

struct state_req {
	struct state_req *next;
	enum req_kind kind;
	uint8_t *buf;     /* REQ_STATE: encoded push-pull state */
	size_t len;
	json_t *json;     /* REQ_STATUS, REQ_MEMBERS */
	int rc;
	bool done;
};

struct remote_state {
	struct remote_state *next;
	uint8_t *buf;
	size_t len;
};

struct pp_job {
	uv_work_t req;
	struct agent *a;
	struct shoal_addr to;
	uint8_t expect_id[SHOAL_NODE_ID_BYTES];
	bool has_expect;
	bool join;
	uint8_t *local;
	size_t local_len;
	uint8_t *remote;
	size_t remote_len;
	int rc;
};

/* A probe's stream ping (memberlist's TCP fallback), on the thread pool. */
struct ping_job {
	uv_work_t req;
	struct agent *a;
	struct shoal_addr to;
	uint8_t expect_id[SHOAL_NODE_ID_BYTES];
	bool has_expect;
	uint32_t seq;
	uint64_t deadline_ms; /* mono_ms, the core's clock */
	int rc;
};

struct agent {
	struct shoal_config cfg;
	uv_loop_t loop;
	struct node_identity ident;
	struct member_dir *dir;
	struct member_core *core;
	struct seal_ctx seal;
	bool seal_ready;
	struct stream_ctx *stream;
	struct store *store;
	struct replica *rep;
	bool peers_dirty;            /* membership changed: tell the replica */
	struct control_server *ctl;
	struct http_server *http;
	struct shoal_addr bind, advertise;

	uv_udp_t udp;
	uv_timer_t core_timer, save_timer, rejoin_timer, leave_timer;
	uv_signal_t sigterm, sigint;
	uv_async_t async;
	bool handles_open;
	bool loop_ready;

	int listen_fd;
	pthread_t listener;
	bool listener_started;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct state_req *state_reqs;     /* guarded by mu */
	struct remote_state *remotes;     /* guarded by mu */
	int conns_active;                 /* guarded by mu */
	bool async_closed;                /* guarded by mu */
	atomic_bool stopping;

	struct shoal_addr seeds[SHOAL_SEEDS_MAX];
	size_t seeds_count;
	int jobs_active;
	bool leaving, closing, members_dirty;
	uint64_t start_wall_ms;

	uint8_t udp_rx[SHOAL_UDP_PACKET_BYTES_MAX + 64];
	uint8_t udp_tx[SHOAL_UDP_PACKET_BYTES_MAX];
	uint64_t udp_send_errors;
	uint64_t udp_oversized;
	/* Fault injection for tests (SHOAL_TEST_DROP_UDP=1 in the environment):
	 * every datagram received is dropped unread, as behind a firewall that
	 * drops UDP; streams still work. Counted in udp_test_dropped. */
	bool test_drop_udp;
	uint64_t udp_test_dropped;
	uint64_t pushpull_failed;
	uint64_t conns_refused;
};

static uint64_t mono_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void id_short(const uint8_t *id, char out[17])
{
	hex_encode(id, 8, out);
}

/* --- addresses ------------------------------------------------------------- */

static void to_sockaddr(const struct shoal_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == SHOAL_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a->ip, 16);
		s6->sin6_port = htons(a->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a->ip, 4);
		s4->sin_port = htons(a->port);
	}
}

static bool from_sockaddr(const struct sockaddr *sa, struct shoal_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a->family = SHOAL_AF_INET;
		memcpy(a->ip, &s4->sin_addr, 4);
		a->port = ntohs(s4->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		a->family = SHOAL_AF_INET6;
		memcpy(a->ip, &s6->sin6_addr, 16);
		a->port = ntohs(s6->sin6_port);
		return true;
	}
	return false;
}

static bool addr_unspecified(const struct shoal_addr *a)
{
	static const uint8_t zero[16];
	return memcmp(a->ip, zero, a->family == SHOAL_AF_INET6 ? 16 : 4) == 0;
}

/* The address other members reach us at: the bind address, or for a
 * wildcard bind the first non-loopback IPv4 address of the host. */
static void pick_advertise(struct agent *a)
{
	a->advertise = a->bind;
	if (!addr_unspecified(&a->bind))
		return;
	struct ifaddrs *ifs, *i;
	a->advertise.family = SHOAL_AF_INET;
	memset(a->advertise.ip, 0, sizeof(a->advertise.ip));
	a->advertise.ip[0] = 127;
	a->advertise.ip[3] = 1;
	if (getifaddrs(&ifs) != 0)
		return;
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		memcpy(a->advertise.ip, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
		break;
	}
	freeifaddrs(ifs);
}

/* --- draining the core ------------------------------------------------------ */

static void start_pushpull(struct agent *a, const struct member_out *o);
static void start_stream_ping(struct agent *a, const struct member_out *o);
static void arm_timer(struct agent *a);
static void save_members(struct agent *a);
static json_t *status_json(struct agent *a);
static json_t *members_json(struct agent *a);

static void log_event(struct agent *a, const struct member_event *ev)
{
	struct member_info info;
	if (member_core_lookup(a->core, ev->gid, &info) != 0)
		return;
	char id[17], addr[SHOAL_ADDR_STR_MAX];
	id_short(info.ident->id, id);
	enum shoal_log_level lvl = ev->kind == MEMBER_EV_DEAD ? SHOAL_LOG_WARN : SHOAL_LOG_INFO;
	shoal_log(lvl, member_event_name(ev->kind),
		  "name=%s id=%s addr=%s inc=%u prev=%s", info.ident->name, id,
		  addr_format(&info.ident->addr, addr), ev->incarnation,
		  member_state_name(ev->prev_state));
	a->members_dirty = true;
}

static void send_payload(struct agent *a, const struct shoal_addr *to, const uint8_t *data,
			 size_t n)
{
	size_t len;
	int rc = seal_packet(&a->seal, data, n, a->udp_tx, sizeof(a->udp_tx), &len);
	if (rc) {
		a->udp_send_errors++;
		return;
	}
	struct sockaddr_storage ss;
	to_sockaddr(to, &ss);
	uv_buf_t buf = uv_buf_init((char *)a->udp_tx, (unsigned)len);
	/* Best effort, like the network itself: a full socket buffer drops. */
	if (uv_udp_try_send(&a->udp, &buf, 1, (const struct sockaddr *)&ss) < 0)
		a->udp_send_errors++;
}

/* The replica's view of who is alive (alive or suspect, self excluded). */
static void update_peers(struct agent *a)
{
	size_t n = member_core_count(a->core), k = 0;
	struct replica_peer *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return;
	for (size_t i = 0; i < n; i++) {
		struct member_info info;
		if (member_core_get(a->core, i, &info) != 0 || info.is_self ||
		    (info.state != MEMBER_ALIVE && info.state != MEMBER_SUSPECT))
			continue;
		p[k].gid = info.gid;
		memcpy(p[k].id, info.ident->id, SHOAL_NODE_ID_BYTES);
		p[k].addr = info.ident->addr;
		k++;
	}
	replica_set_peers(a->rep, p, k);
	free(p);
	a->peers_dirty = false;
}

static void drain(struct agent *a)
{
	struct member_out o;
	while (member_core_poll(a->core, &o)) {
		switch (o.kind) {
		case MEMBER_OUT_PACKET:
			send_payload(a, &o.to, o.data, o.len);
			break;
		case MEMBER_OUT_PUSHPULL:
			start_pushpull(a, &o);
			break;
		case MEMBER_OUT_STREAM_PING:
			start_stream_ping(a, &o);
			break;
		case MEMBER_OUT_EVENT:
			log_event(a, &o.ev);
			a->peers_dirty = true;
			break;
		}
	}
	if (a->peers_dirty && a->rep)
		update_peers(a);
	arm_timer(a);
}

static void on_core_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	uint64_t now = mono_ms();
	member_core_tick(a->core, now);
	if (a->rep)
		replica_loop_work(a->rep, now);
	drain(a);
}

static void arm_timer(struct agent *a)
{
	if (a->closing)
		return;
	uint64_t now = mono_ms();
	uint64_t next = member_core_next_deadline(a->core);
	if (a->rep) {
		uint64_t rn = replica_next_deadline(a->rep);
		if (rn < next)
			next = rn;
	}
	uint64_t wait = next > now ? next - now : 0;
	if (wait > 60000)
		wait = 60000; /* wake at least once a minute */
	uv_timer_start(&a->core_timer, on_core_timer, wait, 0);
}

/* --- UDP ---------------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct agent *a = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)a->udp_rx, sizeof(a->udp_rx));
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
			const struct sockaddr *from, unsigned flags)
{
	struct agent *a = h->data;
	if (nread <= 0 || !from || a->closing)
		return;
	if (a->test_drop_udp) {
		a->udp_test_dropped++;
		return;
	}
	if (flags & UV_UDP_PARTIAL) {
		a->udp_oversized++;
		return;
	}
	struct seal_sender sender;
	const uint8_t *payload;
	size_t plen;
	int rc = seal_open(&a->seal, (const uint8_t *)buf->base, (size_t)nread, wall_ms(),
			   &sender, &payload, &plen);
	if (rc) {
		char addr[SHOAL_ADDR_STR_MAX];
		struct shoal_addr sa;
		if (from_sockaddr(from, &sa))
			log_debug("packet_dropped", "from=%s reason=\"%s\"",
				  addr_format(&sa, addr), shoal_strerror(rc));
		return;
	}
	struct shoal_addr src;
	if (!from_sockaddr(from, &src))
		return;
	if (repl_is_payload(payload, plen)) {
		if (a->rep)
			replica_on_packet(a->rep, member_dir_find(a->dir, sender.node_id), payload,
					  plen, mono_ms());
		arm_timer(a);
		return;
	}
	member_core_recv_packet(a->core, sender.node_id, &src, payload, plen, mono_ms());
	drain(a);
}

/* --- push-pull: outgoing (libuv thread pool) ------------------------------- */

static void pp_work(uv_work_t *req)
{
	struct pp_job *j = req->data;
	struct stream_peer peer;
	j->rc = stream_pushpull_client(j->a->stream, &j->to,
				       j->has_expect ? j->expect_id : NULL, j->local,
				       j->local_len, &j->remote, &j->remote_len, &peer,
				       wall_ms());
}

static void pp_done(uv_work_t *req, int status)
{
	struct pp_job *j = req->data;
	struct agent *a = j->a;
	a->jobs_active--;
	char addr[SHOAL_ADDR_STR_MAX];
	addr_format(&j->to, addr);
	if (!a->closing) {
		if (status == 0 && j->rc == 0) {
			int rc = member_core_recv_state(a->core, j->remote, j->remote_len, mono_ms());
			if (rc)
				log_warn("pushpull_rejected", "peer=%s reason=\"%s\"", addr,
					 shoal_strerror(rc));
			drain(a);
			if (!rc && j->join) {
				log_info("agent_joined", "seed=%s members=%zu", addr,
					 member_core_count(a->core));
				/* Remember the mesh at once: an agent killed right
				 * after joining must still rejoin without seeds. */
				save_members(a);
			}
		} else {
			a->pushpull_failed++;
			shoal_log(j->join ? SHOAL_LOG_WARN : SHOAL_LOG_DEBUG, "pushpull_failed",
				  "peer=%s join=%d reason=\"%s\"", addr, j->join,
				  shoal_strerror(j->rc ? j->rc : SHOAL_EIO));
		}
	}
	free(j->local);
	free(j->remote);
	free(j);
}

/* The node id a stream to o's member must reach, when the core named the
 * member (a join's seed is only an address). */
static bool expected_id(struct agent *a, const struct member_out *o,
			uint8_t out[SHOAL_NODE_ID_BYTES])
{
	const struct member_identity *id =
		o->to_gid != UINT32_MAX ? member_dir_get(a->dir, o->to_gid) : NULL;
	if (id)
		memcpy(out, id->id, SHOAL_NODE_ID_BYTES);
	return id != NULL;
}

static void start_pushpull(struct agent *a, const struct member_out *o)
{
	if (a->jobs_active >= SHOAL_TCP_CONNS_MAX || a->closing)
		return;
	struct pp_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->a = a;
	j->to = o->to;
	j->join = o->join;
	j->has_expect = expected_id(a, o, j->expect_id);
	if (member_core_encode_state(a->core, o->join, &j->local, &j->local_len) != 0) {
		free(j);
		return;
	}
	j->req.data = j;
	if (uv_queue_work(&a->loop, &j->req, pp_work, pp_done) != 0) {
		free(j->local);
		free(j);
		return;
	}
	a->jobs_active++;
}

/* --- stream ping: outgoing (libuv thread pool) ------------------------------ */

static void ping_work(uv_work_t *req)
{
	struct ping_job *j = req->data;
	j->rc = stream_ping_client(j->a->stream, &j->to, j->has_expect ? j->expect_id : NULL,
				   j->seq, j->deadline_ms, wall_ms());
}

static void ping_done(uv_work_t *req, int status)
{
	struct ping_job *j = req->data;
	struct agent *a = j->a;
	a->jobs_active--;
	if (!a->closing) {
		char addr[SHOAL_ADDR_STR_MAX];
		if (status == 0 && j->rc == 0) {
			/* (it queues nothing and moves no deadline: no drain) */
			member_core_stream_ping_done(a->core, j->seq, mono_ms());
		} else {
			log_debug("stream_ping_failed", "peer=%s reason=\"%s\"",
				  addr_format(&j->to, addr),
				  shoal_strerror(j->rc ? j->rc : SHOAL_EIO));
		}
	}
	free(j);
}

/* One at a time at most (the core has one probe in flight), and never past
 * the probe's end: a thread-pool thread is held for under a probe interval. */
static void start_stream_ping(struct agent *a, const struct member_out *o)
{
	if (a->jobs_active >= SHOAL_TCP_CONNS_MAX || a->closing || mono_ms() >= o->deadline_ms)
		return;
	struct ping_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->a = a;
	j->to = o->to;
	j->seq = o->seq;
	j->deadline_ms = o->deadline_ms;
	j->has_expect = expected_id(a, o, j->expect_id);
	j->req.data = j;
	if (uv_queue_work(&a->loop, &j->req, ping_work, ping_done) != 0) {
		free(j);
		return;
	}
	a->jobs_active++;
}

/* --- push-pull: incoming (listener + connection threads) -------------------- */

struct conn_arg {
	struct agent *a;
	int fd;
};

/* Called on another thread: queues req for the loop thread and waits for
 * the answer (bounded by STATE_REQ_TIMEOUT_MS and by shutdown). */
static int ask_loop(struct agent *a, struct state_req *reqp)
{
	struct state_req req = *reqp;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STATE_REQ_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&a->mu);
	req.next = a->state_reqs;
	a->state_reqs = &req;
	pthread_mutex_unlock(&a->mu);
	uv_async_send(&a->async);
	pthread_mutex_lock(&a->mu);
	while (!req.done && !atomic_load(&a->stopping)) {
		if (pthread_cond_timedwait(&a->cond, &a->mu, &until) == ETIMEDOUT)
			break;
	}
	if (!req.done) {
		/* unlink ourselves: the loop must not write to this stack frame */
		for (struct state_req **p = &a->state_reqs; *p; p = &(*p)->next)
			if (*p == &req) {
				*p = req.next;
				break;
			}
		pthread_mutex_unlock(&a->mu);
		return SHOAL_ETIMEDOUT;
	}
	pthread_mutex_unlock(&a->mu);
	*reqp = req;
	return req.rc;
}

/* Called on a connection thread: our push-pull state, from the loop. */
static int conn_get_state(void *arg, uint8_t **state, size_t *len)
{
	struct state_req req = {.kind = REQ_STATE};
	int rc = ask_loop(arg, &req);
	if (rc)
		return rc;
	*state = req.buf;
	*len = req.len;
	return 0;
}

/* Called on the HTTP thread: "status" or "members" JSON, from the loop. */
static json_t *http_query(void *arg, const char *what)
{
	struct state_req req = {.kind = strcmp(what, "members") == 0 ? REQ_MEMBERS : REQ_STATUS};
	if (ask_loop(arg, &req) != 0)
		return NULL;
	return req.json;
}

static void *conn_main(void *arg)
{
	struct conn_arg *ca = arg;
	struct agent *a = ca->a;
	uint8_t *remote = NULL;
	size_t remote_len = 0;
	struct stream_peer peer;
	struct stream_conn *c = NULL;
	struct stream_frame first;
	int rc = stream_accept(a->stream, ca->fd, wall_ms(), &c, &peer);
	free(ca);
	if (rc == 0 && (rc = stream_recv_frame(c, &first)) != 0)
		stream_close(c);
	if (rc == 0 && first.type == STREAM_FRAME_SYNC) {
		replica_serve(a->rep, c, &first, &peer);
		rc = SHOAL_ENOTFOUND; /* no membership state to merge */
	} else if (rc == 0 && first.type == STREAM_FRAME_PING) {
		(void)stream_ping_serve_conn(c, &first);
		rc = SHOAL_ENOTFOUND; /* no membership state to merge */
	} else if (rc == 0) {
		rc = stream_pushpull_serve_conn(c, &first, conn_get_state, a, &remote,
						&remote_len);
	}
	pthread_mutex_lock(&a->mu);
	if (rc == 0 && !atomic_load(&a->stopping)) {
		struct remote_state *r = malloc(sizeof(*r));
		if (r) {
			r->buf = remote;
			r->len = remote_len;
			r->next = a->remotes;
			a->remotes = r;
			remote = NULL;
		}
	}
	a->conns_active--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	free(remote);
	if (rc == 0)
		uv_async_send(&a->async);
	return NULL;
}

static void *listener_main(void *arg)
{
	struct agent *a = arg;
	while (!atomic_load(&a->stopping)) {
		int fd = accept(a->listen_fd, NULL, NULL);
		if (fd < 0) {
			if (atomic_load(&a->stopping))
				break;
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(100 * 1000); /* e.g. EMFILE: back off, do not spin */
			continue;
		}
		pthread_mutex_lock(&a->mu);
		bool ok = a->conns_active < SHOAL_TCP_CONNS_MAX;
		if (ok)
			a->conns_active++;
		pthread_mutex_unlock(&a->mu);
		struct conn_arg *ca = ok ? malloc(sizeof(*ca)) : NULL;
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (ca) {
			ca->a = a;
			ca->fd = fd;
		}
		if (!ca || pthread_create(&t, &attr, conn_main, ca) != 0) {
			close(fd);
			free(ca);
			pthread_mutex_lock(&a->mu);
			if (ok)
				a->conns_active--;
			a->conns_refused++;
			pthread_mutex_unlock(&a->mu);
		}
		pthread_attr_destroy(&attr);
	}
	return NULL;
}

/* Loop side of the connection threads: answer state requests, merge states. */
static void on_async(uv_async_t *h)
{
	struct agent *a = h->data;
	pthread_mutex_lock(&a->mu);
	for (struct state_req *r = a->state_reqs; r; r = r->next) {
		if (a->closing)
			r->rc = SHOAL_ESTATE;
		else if (r->kind == REQ_STATE)
			r->rc = member_core_encode_state(a->core, false, &r->buf, &r->len);
		else
			r->rc = (r->json = r->kind == REQ_STATUS ? status_json(a) : members_json(a))
					? 0 : SHOAL_ENOMEM;
		r->done = true;
	}
	a->state_reqs = NULL;
	struct remote_state *list = a->remotes;
	bool work = a->rep != NULL && !a->closing;
	a->remotes = NULL;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
	while (list) {
		struct remote_state *r = list;
		list = r->next;
		if (!a->closing) {
			int rc = member_core_recv_state(a->core, r->buf, r->len, mono_ms());
			if (rc)
				log_warn("pushpull_rejected", "reason=\"%s\"", shoal_strerror(rc));
		}
		free(r->buf);
		free(r);
	}
	if (work)
		replica_loop_work(a->rep, mono_ms());
	if (!a->closing)
		drain(a);
}

/* --- persistence ------------------------------------------------------------- */

static void save_members(struct agent *a)
{
	size_t n = member_core_count(a->core);
	struct store_member *ms = calloc(n ? n : 1, sizeof(*ms));
	if (!ms)
		return;
	for (size_t i = 0; i < n; i++) {
		struct member_info info;
		if (member_core_get(a->core, i, &info) == 0)
			store_member_from_info(&info, &ms[i]);
	}
	if (store_save_members(a->store, ms, n, wall_ms()) != 0)
		log_error("store_failed", "op=save_members path=%s error=\"%s\"",
			  store_path(a->store), store_errmsg(a->store));
	else
		a->members_dirty = false;
	free(ms);
}

static void on_save_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (a->members_dirty)
		save_members(a);
	/* Push-pulls, sync sessions and their streams allocate and free
	 * ~100-200 KiB every few seconds; glibc keeps freed pages inside the
	 * heap resident. Give them back once per save interval (a trim of
	 * this small heap takes microseconds). */
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void on_rejoin_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	if (a->leaving || a->seeds_count == 0 || member_core_live_count(a->core) > 1)
		return;
	log_info("agent_rejoin", "seeds=%zu", a->seeds_count);
	if (member_core_join(a->core, a->seeds, a->seeds_count, mono_ms()) == 0)
		drain(a);
}

/* --- shutdown ---------------------------------------------------------------- */

static void close_all(struct agent *a)
{
	if (a->closing)
		return;
	a->closing = true;
	if (a->store && a->core)
		save_members(a);
	atomic_store(&a->stopping, true);
	replica_stop(a->rep); /* its threads and served streams wind down */
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cond); /* waiters for the loop give up */
	pthread_mutex_unlock(&a->mu);
	http_stop(a->http);
	a->http = NULL;
	if (a->listener_started) {
		shutdown(a->listen_fd, SHUT_RDWR);
		pthread_join(a->listener, NULL);
		a->listener_started = false;
	}
	/* Connection threads finish within the stream timeout; wait for them
	 * so that nothing touches the agent after it is freed. */
	pthread_mutex_lock(&a->mu);
	pthread_cond_broadcast(&a->cond);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SHOAL_TCP_TIMEOUT_MS / 1000 + 2;
	while (a->conns_active > 0)
		if (pthread_cond_timedwait(&a->cond, &a->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&a->mu);
	if (a->ctl) {
		control_stop(a->ctl);
		a->ctl = NULL;
	}
	if (a->handles_open) {
		uv_close((uv_handle_t *)&a->udp, NULL);
		uv_close((uv_handle_t *)&a->core_timer, NULL);
		uv_close((uv_handle_t *)&a->save_timer, NULL);
		uv_close((uv_handle_t *)&a->rejoin_timer, NULL);
		uv_close((uv_handle_t *)&a->leave_timer, NULL);
		uv_close((uv_handle_t *)&a->sigterm, NULL);
		uv_close((uv_handle_t *)&a->sigint, NULL);
		pthread_mutex_lock(&a->mu);
		a->async_closed = true;
		pthread_mutex_unlock(&a->mu);
		uv_close((uv_handle_t *)&a->async, NULL);
		a->handles_open = false;
	}
}

static void on_leave_timer(uv_timer_t *t)
{
	struct agent *a = t->data;
	log_info("agent_stop", "reason=left");
	close_all(a);
}

static void agent_leave(struct agent *a, const char *why)
{
	if (a->leaving)
		return;
	a->leaving = true;
	log_info("agent_leave", "reason=%s inc=%u", why, member_core_incarnation(a->core) + 1);
	member_core_leave(a->core, mono_ms());
	drain(a);
	uv_timer_start(&a->leave_timer, on_leave_timer, LEAVE_LINGER_MS, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct agent *a = s->data;
	if (a->leaving) {
		/* second signal: stop now */
		log_warn("agent_stop", "reason=signal signal=%d", signum);
		close_all(a);
		return;
	}
	agent_leave(a, signum == SIGINT ? "sigint" : "sigterm");
}

/* --- control socket ------------------------------------------------------------ */

static json_t *status_json(struct agent *a)
{
	size_t counts[4] = {0};
	size_t n = member_core_count(a->core);
	for (size_t i = 0; i < n; i++) {
		struct member_info info;
		if (member_core_get(a->core, i, &info) == 0 && info.state <= MEMBER_LEFT)
			counts[info.state]++;
	}
	char id[65], fleet[33], addr[SHOAL_ADDR_STR_MAX];
	hex_encode(a->ident.kp.pk, 32, id);
	hex_encode(a->ident.fleet.fleet_id, SHOAL_FLEET_ID_BYTES, fleet);
	const struct member_stats *st = member_core_stats(a->core);
	json_t *counters = json_pack(
		"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
		"packets_sent", (json_int_t)st->packets_sent,
		"packet_bytes_sent", (json_int_t)st->packet_bytes_sent,
		"packets_received", (json_int_t)st->packets_received,
		"packets_malformed", (json_int_t)st->packets_malformed,
		"msgs_ignored", (json_int_t)st->msgs_ignored,
		"probes_sent", (json_int_t)st->probes_sent,
		"indirect_probes_sent", (json_int_t)st->indirect_probes_sent,
		"probes_failed", (json_int_t)st->probes_failed,
		"stream_pings_sent", (json_int_t)st->stream_pings_sent,
		"probes_stream_only", (json_int_t)st->probes_stream_only,
		"suspects_raised", (json_int_t)st->suspects_raised,
		"refutations", (json_int_t)st->refutations,
		"refutations_direct", (json_int_t)st->refutations_direct,
		"suspects_told", (json_int_t)st->suspects_told,
		"stale_answers", (json_int_t)st->stale_answers,
		"suspicions_rechecked", (json_int_t)st->suspicions_rechecked,
		"deaths_declared", (json_int_t)st->deaths_declared,
		"pushpulls_started", (json_int_t)st->pushpulls_started,
		"pushpulls_merged", (json_int_t)st->pushpulls_merged,
		"reconnects_started", (json_int_t)st->reconnects_started,
		"pushpulls_failed", (json_int_t)a->pushpull_failed,
		"broadcasts_dropped", (json_int_t)st->broadcasts_dropped,
		"outbox_dropped", (json_int_t)st->outbox_dropped,
		"udp_send_errors", (json_int_t)a->udp_send_errors,
		"udp_oversized", (json_int_t)a->udp_oversized,
		"udp_test_dropped", (json_int_t)a->udp_test_dropped);
	struct stream_stats ss;
	stream_stats_get(a->stream, &ss);
	return json_pack("{s:s,s:s,s:s,s:s,s:I,s:i,s:b,s:I,s:{s:I,s:I,s:I,s:I,s:I},s:o,s:o,s:o,s:o}",
			 "name", a->ident.cert.name, "id", id, "fleet", fleet,
			 "addr", addr_format(&a->advertise, addr),
			 "incarnation", (json_int_t)member_core_incarnation(a->core),
			 "health", member_core_health(a->core),
			 "leaving", a->leaving,
			 "uptime_s", (json_int_t)((wall_ms() - a->start_wall_ms) / 1000),
			 "members", "alive", (json_int_t)counts[MEMBER_ALIVE],
			 "suspect", (json_int_t)counts[MEMBER_SUSPECT],
			 "dead", (json_int_t)counts[MEMBER_DEAD],
			 "left", (json_int_t)counts[MEMBER_LEFT],
			 "size_estimate", (json_int_t)member_core_est_nodes(a->core),
			 "counters", counters,
			 "drops", seal_stats_json(&a->seal.stats),
			 "streams", stream_stats_json(&ss),
			 "replication", replica_status(a->rep));
}

static json_t *members_json(struct agent *a)
{
	json_t *arr = json_array();
	size_t n = member_core_count(a->core);
	uint64_t mono_now = mono_ms(), wall_now = wall_ms();
	for (size_t i = 0; i < n; i++) {
		struct member_info info;
		if (member_core_get(a->core, i, &info) != 0)
			continue;
		char id[65], addr[SHOAL_ADDR_STR_MAX], when[64];
		hex_encode(info.ident->id, 32, id);
		json_t *tags = json_array();
		for (uint8_t t = 0; t < info.ident->tags_count; t++)
			json_array_append_new(tags, json_string(info.ident->tags[t]));
		/* state_change_ms is monotonic; report it as wall-clock time */
		uint64_t age = mono_now > info.state_change_ms ? mono_now - info.state_change_ms : 0;
		uint64_t change = wall_now - age;
		time_t secs = (time_t)(change / 1000);
		struct tm tm;
		gmtime_r(&secs, &tm);
		snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (unsigned)(change % 1000));
		json_array_append_new(arr, json_pack(
			"{s:s,s:s,s:s,s:s,s:I,s:o,s:I,s:s,s:b}",
			"name", info.ident->name, "id", id,
			"addr", addr_format(&info.ident->addr, addr),
			"state", member_state_name(info.state),
			"incarnation", (json_int_t)info.incarnation, "tags", tags,
			"last_change_ms", (json_int_t)change, "last_change", when,
			"self", info.is_self));
	}
	return json_pack("{s:o}", "members", arr);
}

static json_t *on_control(void *arg, const json_t *req)
{
	struct agent *a = arg;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd)
		return json_pack("{s:s}", "error", "missing cmd");
	if (strcmp(cmd, "status") == 0)
		return status_json(a);
	if (strcmp(cmd, "members") == 0)
		return members_json(a);
	if (strcmp(cmd, "leave") == 0) {
		agent_leave(a, "command");
		return json_pack("{s:b}", "leaving", 1);
	}
	if (strcmp(cmd, "releases") == 0)
		return replica_releases(a->rep);
	if (strcmp(cmd, "publish") == 0) {
		const char *repo = json_string_value(json_object_get(req, "repo"));
		if (!repo || repo[0] != '/')
			return json_pack("{s:s}", "error",
					 "publish needs \"repo\": an absolute directory path");
		json_t *reply = replica_publish(a->rep, repo, mono_ms());
		drain(a);
		return reply;
	}
	return json_pack("{s:s}", "error", "unknown command");
}

/* --- start-up ---------------------------------------------------------------- */

static void hook_send(void *arg, const struct shoal_addr *to, const uint8_t *p, size_t n)
{
	send_payload(arg, to, p, n);
}

/* From any thread; never after close_all closed the async handle. */
static void hook_wake(void *arg)
{
	struct agent *a = arg;
	pthread_mutex_lock(&a->mu);
	if (!a->async_closed)
		uv_async_send(&a->async);
	pthread_mutex_unlock(&a->mu);
}

static int start(struct agent *a)
{
	char err[512];
	int rc;
	uint64_t now_wall = wall_ms();
	a->start_wall_ms = now_wall;

	rc = node_identity_load(a->cfg.data, &a->ident, now_wall, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "shoal agent: %s\n", err);
		return rc;
	}
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "node=%s", a->ident.cert.name);
	shoal_log_set_prefix(prefix);

	if (addr_parse(a->cfg.bind, &a->bind) != 0) {
		fprintf(stderr, "shoal agent: bind: '%s' is not HOST:PORT\n", a->cfg.bind);
		return SHOAL_ECONFIG;
	}
	pick_advertise(a);
	for (size_t i = 0; i < a->cfg.join_count && a->seeds_count < SHOAL_SEEDS_MAX; i++) {
		if (addr_parse(a->cfg.join[i], &a->seeds[a->seeds_count]) != 0) {
			fprintf(stderr, "shoal agent: join: '%s' is not HOST:PORT\n", a->cfg.join[i]);
			return SHOAL_ECONFIG;
		}
		a->seeds_count++;
	}

	rc = store_open(a->cfg.data, &a->store, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "shoal agent: %s\n", err);
		return rc;
	}
	uint32_t inc;
	rc = store_bump_incarnation(a->store, &inc);
	if (rc) {
		fprintf(stderr, "shoal agent: %s: %s\n", store_path(a->store), store_errmsg(a->store));
		return rc;
	}
	/* Members we knew before a restart are seeds too, so a restarted agent
	 * rejoins without --join. */
	struct store_member *known = NULL;
	size_t known_n = 0;
	if (store_load_members(a->store, &known, &known_n) == 0) {
		for (size_t i = 0; i < known_n && a->seeds_count < SHOAL_SEEDS_MAX; i++) {
			if (memcmp(known[i].id, a->ident.kp.pk, 32) == 0 ||
			    known[i].addr.family == SHOAL_AF_NONE ||
			    (known[i].state != MEMBER_ALIVE && known[i].state != MEMBER_SUSPECT))
				continue;
			a->seeds[a->seeds_count++] = known[i].addr;
		}
		free(known);
	}

	struct member_config mc;
	config_to_member(&a->cfg, &mc);
	mc.payload_bytes_max = (uint32_t)seal_payload_max(&a->ident);
	struct member_identity self;
	memset(&self, 0, sizeof(self));
	memcpy(self.id, a->ident.kp.pk, 32);
	memcpy(self.name, a->ident.cert.name, sizeof(self.name));
	self.tags_count = a->ident.cert.tags_count;
	memcpy(self.tags, a->ident.cert.tags, sizeof(self.tags));
	self.addr = a->advertise;
	uint64_t seed;
	randombytes_buf(&seed, sizeof(seed));
	a->dir = member_dir_new();
	a->core = a->dir ? member_core_new(&mc, a->dir, &self, inc, seed, mono_ms()) : NULL;
	if (!a->core) {
		fprintf(stderr, "shoal agent: out of memory\n");
		return SHOAL_ENOMEM;
	}

	/* Sequence numbers start at the wall clock in microseconds, so a
	 * restarted agent's packets are newer than anything it sent before. */
	rc = seal_ctx_init(&a->seal, &a->ident, now_wall * 1000u);
	if (rc) {
		fprintf(stderr, "shoal agent: packet sealing: %s\n", shoal_strerror(rc));
		return rc;
	}
	a->seal_ready = true;
	a->stream = stream_ctx_new(&a->ident, err, sizeof(err));
	if (!a->stream) {
		fprintf(stderr, "shoal agent: streams: %s\n", err);
		return SHOAL_ECRYPTO;
	}

	struct replica_config rcfg = {
		.sync_interval_ms = a->cfg.sync_interval_ms,
		.gossip_interval_ms = a->cfg.gossip_interval_ms,
		.retention_ms = a->cfg.feed_retention_s * 1000u,
		.upstream_url = a->cfg.upstream,
		.upstream_interval_ms = a->cfg.upstream_interval_ms,
	};
	struct replica_hooks hooks = {.arg = a, .send = hook_send, .wake = hook_wake};

	char bindstr[SHOAL_ADDR_STR_MAX];
	addr_format(&a->bind, bindstr);
	rc = stream_listen(&a->bind, &a->listen_fd);
	if (rc) {
		fprintf(stderr, "shoal agent: listen tcp %s: %s\n", bindstr, strerror(errno));
		return rc;
	}

	uv_loop_init(&a->loop);
	a->loop_ready = true;
	uv_udp_init(&a->loop, &a->udp);
	uv_timer_init(&a->loop, &a->core_timer);
	uv_timer_init(&a->loop, &a->save_timer);
	uv_timer_init(&a->loop, &a->rejoin_timer);
	uv_timer_init(&a->loop, &a->leave_timer);
	uv_signal_init(&a->loop, &a->sigterm);
	uv_signal_init(&a->loop, &a->sigint);
	uv_async_init(&a->loop, &a->async, on_async);
	a->udp.data = a->core_timer.data = a->save_timer.data = a->rejoin_timer.data = a;
	a->leave_timer.data = a->sigterm.data = a->sigint.data = a->async.data = a;
	a->handles_open = true;
	rc = replica_open(a->cfg.data, &a->ident, member_core_self_gid(a->core), a->stream, &rcfg,
			  &hooks, mono_ms(), &a->rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "shoal agent: replication: %s\n", err);
		return rc;
	}

	struct sockaddr_storage ss;
	to_sockaddr(&a->bind, &ss);
	rc = uv_udp_bind(&a->udp, (const struct sockaddr *)&ss, 0);
	if (rc) {
		fprintf(stderr, "shoal agent: bind udp %s: %s\n", bindstr, uv_strerror(rc));
		return SHOAL_EIO;
	}
	int buf_bytes = 1 << 20;
	uv_recv_buffer_size((uv_handle_t *)&a->udp, &buf_bytes);
	uv_udp_recv_start(&a->udp, on_udp_alloc, on_udp_recv);

	char path[SHOAL_PATH_BYTES_MAX];
	rc = control_socket_path(a->cfg.data, path, sizeof(path));
	if (!rc)
		rc = control_start(&a->loop, path, on_control, a, &a->ctl, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "shoal agent: control socket: %s\n", err);
		return rc;
	}

	if (a->cfg.http[0]) {
		rc = http_start(a->cfg.http, http_query, a, &a->http, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "shoal agent: %s\n", err);
			return rc;
		}
	}

	if (pthread_create(&a->listener, NULL, listener_main, a) != 0) {
		fprintf(stderr, "shoal agent: cannot start listener thread\n");
		return SHOAL_ENOMEM;
	}
	a->listener_started = true;

	uv_signal_start(&a->sigterm, on_signal, SIGTERM);
	uv_signal_start(&a->sigint, on_signal, SIGINT);
	uv_timer_start(&a->save_timer, on_save_timer, SAVE_INTERVAL_MS, SAVE_INTERVAL_MS);
	uv_timer_start(&a->rejoin_timer, on_rejoin_timer, REJOIN_INTERVAL_MS, REJOIN_INTERVAL_MS);

	char idhex[17], adv[SHOAL_ADDR_STR_MAX];
	id_short(a->ident.kp.pk, idhex);
	log_info("agent_start", "id=%s addr=%s bind=%s inc=%u seeds=%zu data=%s", idhex,
		 addr_format(&a->advertise, adv), bindstr, inc, a->seeds_count, a->cfg.data);
	const char *drop = getenv("SHOAL_TEST_DROP_UDP");
	a->test_drop_udp = drop && strcmp(drop, "1") == 0;
	if (a->test_drop_udp)
		log_warn("test_fault", "what=\"every datagram received is dropped (SHOAL_TEST_DROP_UDP=1)\"");
	if (a->seeds_count)
		member_core_join(a->core, a->seeds, a->seeds_count, mono_ms());
	drain(a);
	return 0;
}

int agent_run(const struct shoal_config *cfg)
{
	struct agent *a = calloc(1, sizeof(*a));
	if (!a) {
		fprintf(stderr, "shoal agent: out of memory\n");
		return 1;
	}
	a->cfg = *cfg;
	a->listen_fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
	signal(SIGPIPE, SIG_IGN);
	shoal_log_set_level(cfg->log_level);
#ifdef __GLIBC__
	/* One malloc arena for every thread: glibc otherwise gives each thread
	 * that allocates (libuv pool, push-pull connections) an arena of its
	 * own, each keeping 100-300 KiB resident. The agent allocates at a
	 * few hundred calls a second at most, so one lock is no contention. */
	mallopt(M_ARENA_MAX, 1);
	/* Fixed thresholds (setting them turns off glibc's dynamic ones): a
	 * stream's buffers and a sync session (~100-200 KiB, every few
	 * seconds) are mapped and unmapped whole rather than growing the heap
	 * until the next trim, and a free heap top over 64 KiB is given back
	 * at once. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024);
#endif
	/* Before the first SQLite call (store_open); fails harmlessly in a
	 * process that already used SQLite (tests running agents in-process). */
	(void)store_config_lean();

	int rc = start(a);
	if (rc == 0)
		uv_run(&a->loop, UV_RUN_DEFAULT);
	close_all(a);
	if (a->loop_ready) {
		/* let close callbacks and in-flight work finish */
		uv_run(&a->loop, UV_RUN_DEFAULT);
		uv_loop_close(&a->loop);
	}
	if (a->listen_fd >= 0)
		close(a->listen_fd);
	replica_close(a->rep); /* its threads use the stream context */
	if (a->seal_ready)
		seal_ctx_free(&a->seal);
	stream_ctx_free(a->stream);
	member_core_free(a->core);
	member_dir_free(a->dir);
	if (a->store)
		store_close(a->store);
	node_identity_wipe(&a->ident);
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
	free(a);
	return rc == 0 ? 0 : 1;
}
