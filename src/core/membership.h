/*
 * membership.h — SWIM with Lifeguard, as a sans-IO state machine.
 *
 * Protocol (Das et al. 2002; Lifeguard, Dadgar et al. 2017; as in
 * hashicorp/memberlist):
 *
 *   every probe interval (scaled by local health):
 *     pick the next member in a shuffled round-robin order, send PING
 *     after probe_timeout with no ACK: PING_REQ to `indirect_checks` others,
 *       who PING the target and relay its ACK (or send NACK at timeout)
 *     at the end of the interval with no ACK: SUSPECT the member
 *   a SUSPECT member is declared DEAD after a suspicion timeout that shrinks
 *     from max to min as independent confirmations arrive (Lifeguard)
 *   a member that hears it is suspected or dead refutes with ALIVE at a
 *     higher incarnation (and counts a point against its own health); one
 *     accused at an incarnation it already refuted sends its current ALIVE
 *     straight back to the accuser, who missed the refutation
 *   a node's own broadcast (refutation, join, leave) leads every packet
 *   every gossip interval: send queued broadcasts (alive/suspect/dead) to
 *     `gossip_nodes` random members; broadcasts also piggyback on every packet
 *   every push-pull interval (scaled up past 32 members, as memberlist's
 *     pushPullScale; the first after 0.5-1.5 base intervals): full state
 *     exchange with one random member over the stream transport (also used
 *     to join through a seed)
 *   every reconnect interval: a push-pull with a random dead member (Serf's
 *     reconnect): after a partition each side holds the other dead and no
 *     longer probes or gossips to it; this is what brings them back
 *
 * The core never reads a clock, socket, random source or database. Inputs
 * are calls with `now_ms`; outputs are polled with member_core_poll(): UDP
 * payloads to send, push-pull exchanges to start, and membership events.
 * The caller must call member_core_tick() at member_core_next_deadline().
 *
 * Identities (id, name, tags, address) live in a member_dir that several
 * cores may share (the simulator shares one across all nodes to keep memory
 * O(N) for identities); per-core state is 18 bytes per member (a 16-byte
 * entry in a table indexed by gid, and a 2-byte slot in the probe order),
 * plus the broadcasts and suspicions in flight.
 */
#ifndef SHOAL_CORE_MEMBERSHIP_H
#define SHOAL_CORE_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/addr.h"
#include "shoal/limits.h"

enum member_state {
	MEMBER_ALIVE = 0,
	MEMBER_SUSPECT = 1,
	MEMBER_DEAD = 2,
	MEMBER_LEFT = 3,
};

const char *member_state_name(enum member_state s);

struct member_config {
	uint32_t probe_interval_ms;          /* 1000 */
	uint32_t probe_timeout_ms;           /* 500 */
	uint32_t indirect_checks;            /* 3 */
	uint32_t suspicion_mult;             /* 4 */
	uint32_t suspicion_max_timeout_mult; /* 6 */
	uint32_t awareness_max_multiplier;   /* 8 */
	uint32_t gossip_interval_ms;         /* 200 */
	uint32_t gossip_nodes;               /* 3 */
	uint32_t gossip_to_the_dead_ms;      /* 30000 */
	uint32_t retransmit_mult;            /* 4 */
	uint32_t push_pull_interval_ms;      /* 30000; 0 disables periodic push-pull */
	uint32_t dead_reclaim_ms;            /* forget dead/left members after this; 0 = keep */
	uint32_t reconnect_interval_ms;      /* 30000: push-pull with a random dead member, as
					      * Serf's reconnect does, so partitions heal; 0 = off */
	uint32_t payload_bytes_max;          /* SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT; an agent
					      * sets what its certificate leaves
					      * (seal_payload_max) */
	/* memberlist's TCP fallback: while a probe's indirect pings run, also
	 * ask the target directly over a stream (MEMBER_OUT_STREAM_PING); a
	 * probe that only the stream answered raises no suspicion. true. */
	bool stream_pings;
	/* The simulator's cores, which share one directory: send and accept
	 * packets in the simulator's form (WIRE_VERSION_SIM, accusations by
	 * gid), the same run with fewer bytes to write and scan.
	 * false (the default, and always in an agent): the wire's form only. */
	bool sim_gids;
};

/* Fills memberlist's LAN defaults. */
void member_config_default(struct member_config *c);
/* A suspicion's minimum timeout with `members` members (memberlist's
 * suspicionTimeout): suspicion_mult * max(1, log10(members)) *
 * probe_interval_ms, in ms rounded down; the maximum is
 * suspicion_max_timeout_mult times this. */
uint64_t member_suspicion_min_ms(const struct member_config *cfg, size_t members);
/* Lifeguard's suspicion timeout after n of the k confirmations it expects
 * (n <= k <= 8): max - (max - min) * ln(n + 1) / ln(k + 1) ms, rounded down
 * and never below min; min when k is 0. */
uint64_t member_suspicion_timeout_ms(uint64_t min_ms, uint64_t max_ms, uint32_t n, uint32_t k);
/* The push-pull interval with `members` members (memberlist's
 * pushPullScale): push_pull_interval_ms up to 32 members, times
 * ceil(log2(members / 32)) + 1 past them. */
uint64_t member_pushpull_interval_ms(const struct member_config *cfg, size_t members);

struct member_identity {
	uint8_t id[SHOAL_NODE_ID_BYTES];
	char name[SHOAL_NAME_BYTES_MAX + 1];
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
	struct shoal_addr addr;
};

/* --- identity directory -------------------------------------------------- */
struct member_dir;
/* A directory of identities, shared by the cores of one thread (the sim's
 * cores, or an agent's one): they also share its scratch space. */
struct member_dir *member_dir_new(void);
void member_dir_free(struct member_dir *d);
/* Lets the directory keep up to `bytes` of broadcast vectors its cores give
 * back, for its other cores to reuse instead of allocating (the sim's many
 * cores; the default 0 keeps none, as an agent's one core needs). Call it
 * before the cores run. */
void member_dir_keep_spares(struct member_dir *d, size_t bytes);
/* Returns the gid of id, adding it if new; UINT32_MAX when full, or when
 * the directory holds another id with the same first
 * SHOAL_NODE_ID_PREFIX_BYTES (accusations name members by that prefix, so
 * it must name one; for Ed25519 keys, finding such an id takes 2^128 work). */
uint32_t member_dir_intern(struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES]);
/* Returns the gid of id or UINT32_MAX. */
uint32_t member_dir_find(const struct member_dir *d, const uint8_t id[SHOAL_NODE_ID_BYTES]);
/* Returns the gid of the id that starts with prefix, or UINT32_MAX. */
uint32_t member_dir_find_prefix(const struct member_dir *d,
				const uint8_t prefix[SHOAL_NODE_ID_PREFIX_BYTES]);
const struct member_identity *member_dir_get(const struct member_dir *d, uint32_t gid);
size_t member_dir_count(const struct member_dir *d);
/* Makes room for n identities so that interning them does not reallocate.
 * Returns 0, SHOAL_ETOOBIG (over the directory's bound) or SHOAL_ENOMEM. */
int member_dir_reserve(struct member_dir *d, size_t n);

/* --- outputs --------------------------------------------------------------- */
enum member_event_kind {
	MEMBER_EV_JOIN = 1,    /* first seen alive */
	MEMBER_EV_ALIVE,       /* back to alive (refuted suspicion, or rejoined) */
	MEMBER_EV_SUSPECT,
	MEMBER_EV_DEAD,
	MEMBER_EV_LEFT,
	MEMBER_EV_UPDATE,      /* address, name or tags changed */
};

const char *member_event_name(enum member_event_kind k);

struct member_event {
	enum member_event_kind kind;
	uint32_t gid;
	uint32_t incarnation;
	enum member_state prev_state;
};

enum member_out_kind {
	MEMBER_OUT_PACKET = 1,   /* send payload by UDP to `to` */
	MEMBER_OUT_PUSHPULL,     /* open a push-pull exchange with `to` */
	MEMBER_OUT_EVENT,        /* membership changed */
	MEMBER_OUT_STREAM_PING,  /* ask `to` (to_gid) over a stream whether it is up,
				  * by deadline_ms; report a contact with
				  * member_core_stream_ping_done(seq) */
};

struct member_out {
	enum member_out_kind kind;
	struct shoal_addr to;
	uint32_t to_gid;         /* UINT32_MAX when only the address is known */
	bool join;               /* push-pull: this is a join */
	union {
		struct {
			const uint8_t *data; /* packet payload; valid until the next core call */
			size_t len;
		};
		struct {
			uint64_t deadline_ms; /* stream ping: no use after this */
			uint32_t seq;         /* stream ping: the probe it answers */
		};
	};
	/* packet, with shared outputs only (else NULL): per message of the
	 * payload, a hint: the directory gid of the member it is about (a
	 * broadcast's subject) in the low 16 bits, its accuser's (SUSPECT,
	 * DEAD) in the high 16, each MEMBER_HINT_NONE if none; valid as long as
	 * data. A driver whose cores share one directory passes them on to
	 * member_core_recv_packet_hinted and member_core_prefetch_packet. */
	const uint32_t *hints;
	size_t hints_count;
	struct member_event ev;
};

struct member_stats {
	uint64_t packets_sent;
	uint64_t packet_bytes_sent;
	uint64_t packets_received;
	uint64_t packets_malformed;     /* payloads that failed to decode */
	uint64_t msgs_ignored;          /* well-formed but not for us / stale */
	uint64_t probes_sent;
	uint64_t indirect_probes_sent;
	uint64_t probes_failed;
	uint64_t stream_pings_sent;     /* probes that also asked over a stream */
	uint64_t probes_stream_only;    /* probes only the stream answered: the
					 * member's datagrams are being lost */
	uint64_t suspects_raised;
	uint64_t refutations;
	uint64_t refutations_direct;    /* current ALIVE sent straight to an accuser
					 * (a stale one, or one that asked us) */
	uint64_t stale_answers;         /* a third member's current ALIVE sent to a
					 * stale accuser of it */
	uint64_t suspects_told;         /* SUSPECT sent to a member we hold suspect
					 * that sent us a packet */
	uint64_t suspicions_rechecked;  /* unconfirmed suspicions that ran out and
					 * were put to the member before it was
					 * declared dead */
	uint64_t deaths_declared;
	uint64_t pushpulls_started;
	uint64_t pushpulls_merged;
	uint64_t reconnects_started;
	uint64_t broadcasts_dropped;    /* queue full */
	uint64_t outbox_dropped;        /* outbox full */
};

/* A snapshot of one member for status output. */
struct member_info {
	const struct member_identity *ident;
	uint32_t gid;
	enum member_state state;
	uint32_t incarnation;
	uint64_t state_change_ms;
	bool is_self;
};

/* --- the core ---------------------------------------------------------------- */
struct member_core;

/* Creates a core for `self` at `incarnation`. `dir` is borrowed and must
 * outlive the core. Returns NULL on allocation failure. */
struct member_core *member_core_new(const struct member_config *cfg,
				    struct member_dir *dir,
				    const struct member_identity *self,
				    uint32_t incarnation, uint64_t seed,
				    uint64_t now_ms);
void member_core_free(struct member_core *c);

/* Starts joining through seed addresses: a push-pull (join) to each. */
int member_core_join(struct member_core *c, const struct shoal_addr *seeds,
		     size_t n, uint64_t now_ms);

/* Graceful leave: broadcasts LEFT at a new incarnation and stops probing.
 * The caller should keep ticking for a short while so the broadcast spreads. */
int member_core_leave(struct member_core *c, uint64_t now_ms);

/* Called after an authenticated UDP payload from member `from_id` arrived
 * from `from`. Returns 0, or the decoder's error if the payload is malformed
 * (SHOAL_EPROTO, SHOAL_ETRUNC, SHOAL_EVERSION, SHOAL_ETRAILING, SHOAL_ETOOBIG);
 * then nothing is changed but the packets_malformed counter. */
int member_core_recv_packet(struct member_core *c,
			    const uint8_t from_id[SHOAL_NODE_ID_BYTES],
			    const struct shoal_addr *from,
			    const uint8_t *payload, size_t len, uint64_t now_ms);

/* As member_core_recv_packet, for a driver whose cores share one directory
 * (the simulator): from_gid is the sender's gid and hints[i] (i < n_hints)
 * the gids of message i's subject and accuser as the sender's output said
 * (member_out.hints), MEMBER_HINTS_NONE if unknown. A hint is used only
 * after the id it names in the directory equals the id in the payload, so
 * a wrong one costs a lookup and changes nothing else; a right one saves
 * the directory's hash lookup (two cache misses at 10,000 nodes). */
#define MEMBER_HINT_NONE 0xffffu /* one half of a hint: no gid */
#define MEMBER_HINTS_NONE UINT32_MAX /* a hint with neither gid */
#define MEMBER_HINT_SUBJECT(h) ((uint32_t)(h) & 0xffffu)
#define MEMBER_HINT_ACCUSER(h) ((uint32_t)(h) >> 16)
int member_core_recv_packet_hinted(struct member_core *c,
				   const uint8_t from_id[SHOAL_NODE_ID_BYTES], uint32_t from_gid,
				   const struct shoal_addr *from, const uint8_t *payload,
				   size_t len, const uint32_t *hints, size_t n_hints,
				   uint64_t now_ms);

/* The stream ping of MEMBER_OUT_STREAM_PING `seq` reached its member (the
 * stream's handshake proved the member's key) before its deadline. A late
 * or unknown seq changes nothing; a failed stream ping needs no call. */
void member_core_stream_ping_done(struct member_core *c, uint32_t seq, uint64_t now_ms);

/* Encodes this node's full state for a push-pull into a malloc'd buffer. */
int member_core_encode_state(struct member_core *c, bool join, uint8_t **out,
			     size_t *out_len);

/* Called with the remote side's state after a push-pull exchange. Returns 0,
 * or the decoder's error (SHOAL_EPROTO, SHOAL_ETRUNC, SHOAL_EVERSION,
 * SHOAL_ETRAILING, SHOAL_ETOOBIG) or SHOAL_ENOMEM; then nothing is merged. */
int member_core_recv_state(struct member_core *c, const uint8_t *state,
			   size_t len, uint64_t now_ms);

/* A push-pull between two cores that share one member_dir, without
 * encoding: the same merges, in the same order, as each core taking
 * member_core_recv_state of the other's member_core_encode_state, both
 * states taken before either merges. The simulator exchanges states this
 * way; its 10,000 cores would otherwise encode and decode 16 GB of state
 * per 10-minute run. member_core_pair_begin reads both member tables once,
 * side by side, and keeps what each side will learn (nearly nothing, most
 * of the time); member_core_pair_merge then merges one side with the same
 * code as member_core_recv_state. Side 0 is a's state merged into b, side
 * 1 b's into a. The caller provides the arrays, each with room for
 * `gids` entries (at least member_dir_count of the shared directory): */
struct member_pair {
	size_t gids;
	uint16_t *order[2]; /* the sender's members, in the order its encoding lists them */
	uint32_t *inc[2];   /* per gid: the sender's incarnation (of news only) */
	uint8_t *state[2];  /* per gid: the sender's enum member_state (of news only) */
	uint64_t *news[2];  /* gids / 64 + 1 words: the entries the receiver merges */
	/* set by member_core_pair_begin */
	struct member_core *into[2]; /* b, a */
	size_t count[2];         /* the sender's members */
	size_t news_count[2];    /* entries that are news to the receiver */
	size_t encoded_bytes[2]; /* the size of the sender's encoding */
	bool merged[2];
};

/* Takes both states. Returns 0, or SHOAL_EINVAL (the cores do not share a
 * directory, or are one core) or SHOAL_ETOOBIG (the arrays are too small);
 * then nothing is taken. Changes neither core. */
int member_core_pair_begin(struct member_core *a, struct member_core *b, struct member_pair *p);
/* Merges side k (0: into b, then 1: into a; each once, after begin).
 * Returns 0 or SHOAL_EINVAL (out of turn: nothing merged). */
int member_core_pair_merge(struct member_pair *p, unsigned k, uint64_t now_ms);

/* Runs every timer due at now_ms. */
void member_core_tick(struct member_core *c, uint64_t now_ms);
/* The next time member_core_tick must be called. */
uint64_t member_core_next_deadline(const struct member_core *c);

/* Hints for a driver that knows which cores it will call next (the
 * simulator, where 10,000 cores never stay in cache): start loading what
 * the call will read. Stage 0 loads the core's hot fields; stage 1 follows
 * their pointers and stage 2 one level further, each paying only once the
 * stage before it has had time to arrive (an event or more earlier). Change
 * nothing. `sends`: the call may send a packet (a tick, a packet with a
 * probe message); without it stages 1 and 2 leave out the broadcast
 * queue's walk and the next probe's target. */
void member_core_prefetch(const struct member_core *c, unsigned stage, bool sends);
/* For a tick at now_ms that will gossip (after the core's stage 0): stage
 * 0 loads the probe order's slots of the first members the gossip will
 * draw (from the generator as it is now), stage 1 (an event or more later)
 * their table entries and addresses and the queued broadcasts the gossip's
 * packets will take. */
void member_core_prefetch_tick(const struct member_core *c, uint64_t now_ms, unsigned stage);
/* For a packet from member from_gid that will be delivered to c (after
 * the core's stage 0): stage 0 loads the sender's table entry and, for the
 * subjects its hints name (member_out.hints), the bits that say whether c
 * holds them dead or left, and their ids in the directory; stage 1 (an
 * event or more later, the bits loaded) the table entries of the subjects
 * not held dead or left (an accusation about one that is needs no entry);
 * stage 2 (the entries loaded) what news about those would touch. */
void member_core_prefetch_packet(const struct member_core *c, uint32_t from_gid,
				 const uint32_t *hints, size_t n_hints, unsigned stage);

/* Pops the next output; false when none. Output data stays valid until the
 * next call into the core other than member_core_poll. */
bool member_core_poll(struct member_core *c, struct member_out *out);

/* Sizes the member tables for `members` members (and every gid the
 * directory holds) at once, instead of growing them as members arrive: the
 * simulator knows the cluster size. Returns 0, SHOAL_ETOOBIG or
 * SHOAL_ENOMEM; on error the core is unchanged but usable. */
int member_core_reserve(struct member_core *c, size_t members);

/* The bytes member_core_reserve_in needs for `members` members. */
size_t member_core_tables_bytes(size_t members);
/* As member_core_reserve, for members with gids below `members`, but in
 * memory the caller lends: `bytes` at mem, aligned to 8, untouched by the
 * caller until member_core_free (which does not free it). The simulator
 * puts all its cores' tables in one region backed by huge pages. Should a
 * table have to grow past it, the core moves it into memory of its own.
 * Returns 0, SHOAL_ETOOBIG (too small for the table the core already has)
 * or SHOAL_EINVAL (misaligned); on error nothing is changed. */
int member_core_reserve_in(struct member_core *c, size_t members, void *mem, size_t bytes);

/* Lets cores share one output space (the output queue and the packets'
 * bytes) instead of each keeping its own: for a driver that polls every
 * output of a call before it calls any core sharing the space (the
 * simulator: with 10,000 cores, each core's own buffers are cold at every
 * call, and writing a packet into them costs a miss per 64 bytes). Output
 * data then stays valid until the next call into any of those cores, and
 * member_core_poll's bound is unchanged (SHOAL_OUTBOX_COUNT_MAX). space:
 * 64-byte aligned, member_core_shared_outputs_bytes(cfg) bytes (a multiple
 * of 64), not freed
 * by the core. Call with no output pending. Returns 0, SHOAL_EINVAL
 * (misaligned), SHOAL_ETOOBIG (too small) or SHOAL_ESTATE (outputs
 * pending). */
size_t member_core_shared_outputs_bytes(const struct member_config *cfg);
int member_core_share_outputs(struct member_core *c, void *space, size_t bytes);

/* Adds n members known alive at incarnation, without any message (the
 * simulator's warm start), each at a random place in the probe order as a
 * join would. Returns 0, SHOAL_EINVAL (a gid not in the directory, or our
 * own), SHOAL_EEXIST (a gid already known or given twice), SHOAL_EFULL or
 * SHOAL_ENOMEM; on error none is added. */
int member_core_add_alive(struct member_core *c, const uint32_t *gids, size_t n,
			  uint32_t incarnation, uint64_t now_ms);

size_t member_core_count(const struct member_core *c);
/* memberlist's estimate of the cluster's size (estNumNodes), which scales
 * the suspicion timeout, the retransmit limit and the push-pull interval:
 * the members, less those that had been dead or left for longer than
 * gossip_to_the_dead_ms when the last probe round ended. */
size_t member_core_est_nodes(const struct member_core *c);
/* Number of members (self included) in state alive or suspect. */
size_t member_core_live_count(const struct member_core *c);
int member_core_get(const struct member_core *c, size_t index,
		    struct member_info *out);
/* Looks a member up by gid; returns 0 or SHOAL_ENOTFOUND. */
int member_core_lookup(const struct member_core *c, uint32_t gid,
		       struct member_info *out);
uint32_t member_core_incarnation(const struct member_core *c);
uint32_t member_core_self_gid(const struct member_core *c);
/* Lifeguard local health score, 0 (healthy) .. awareness_max_multiplier-1. */
int member_core_health(const struct member_core *c);
const struct member_stats *member_core_stats(const struct member_core *c);
bool member_core_has_left(const struct member_core *c);

#endif
