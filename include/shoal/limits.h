/*
 * limits.h — every bound in shoal, in one place.
 *
 * Every queue, buffer, loop, message and file has a named upper bound here.
 * Code that needs a bound includes this header; no magic numbers elsewhere.
 * Names carry their unit last (_ms, _bytes, _count).
 */
#ifndef SHOAL_LIMITS_H
#define SHOAL_LIMITS_H

/* --- identity and admission ------------------------------------------- */
#define SHOAL_NODE_ID_BYTES            32   /* Ed25519 public key */
/* A SUSPECT or DEAD names its subject and accuser by the first 16 bytes of
 * their ids (docs/protocol.md): a directory refuses a second id with the
 * same prefix, which takes 2^128 work to make for an Ed25519 key. */
#define SHOAL_NODE_ID_PREFIX_BYTES     16
#define SHOAL_FLEET_ID_BYTES           16
#define SHOAL_NAME_BYTES_MAX           32   /* node name, without NUL */
#define SHOAL_TAGS_COUNT_MAX            4
#define SHOAL_TAG_BYTES_MAX            16   /* one tag, without NUL */
#define SHOAL_ADMISSION_KEYS_MAX        8   /* admission keys in a fleet */
#define SHOAL_ADMISSION_SIGS_MAX        3   /* signatures on one certificate */
#define SHOAL_CERT_BYTES_MAX          400   /* encoded admission certificate */
#define SHOAL_GOSSIP_KEYS_MAX           4   /* keyring size */
#define SHOAL_KEY_FILE_BYTES_MAX     4096

/* --- transport ---------------------------------------------------------- */
#define SHOAL_UDP_PACKET_BYTES_MAX   1400   /* sealed datagram on the wire */
/* A sealed packet is 121 bytes of envelope (header 29, MAC 16, seq 8, two
 * lengths 4, signature 64; src/runtime/seal.h), the sender's certificate
 * and the core's payload; the payload gets what the certificate leaves. */
#define SHOAL_UDP_SEAL_OVERHEAD_BYTES 121
#define SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(cert_len) \
	(SHOAL_UDP_PACKET_BYTES_MAX - SHOAL_UDP_SEAL_OVERHEAD_BYTES - (cert_len))
/* The smallest certificate that can verify: a one-character name, no tags,
 * one signature (version 1, fleet 16, node 32, name 2, tags_count 1,
 * issued and expires 16, sigs_count 1, key index and signature 65). */
#define SHOAL_CERT_BYTES_MIN          134
/* Any packet's payload (the decoders' bound), and what a node with the
 * largest certificate gets (the cores' default, safe for every node). */
#define SHOAL_UDP_PAYLOAD_BYTES_MAX \
	SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(SHOAL_CERT_BYTES_MIN) /* 1145 */
#define SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT \
	SHOAL_UDP_PAYLOAD_BYTES_FOR_CERT(SHOAL_CERT_BYTES_MAX) /* 879 */
#define SHOAL_UDP_READS_PER_TICK_MAX   32   /* datagrams read per loop tick */
#define SHOAL_REPLAY_WINDOW_BITS       64   /* per-sender replay window */
#define SHOAL_REPLAY_SENDERS_MAX    16384   /* senders tracked for replay */
#define SHOAL_TCP_FRAME_BYTES_MAX   65536   /* one frame, header included */
#define SHOAL_TCP_CONNS_MAX            32   /* concurrent stream connections */
#define SHOAL_TCP_TIMEOUT_MS        10000   /* whole push-pull exchange */
#define SHOAL_PUSHPULL_BYTES_MAX (8u * 1024 * 1024) /* one encoded state */
#define SHOAL_NOISE_MSG_BYTES_MAX   65535   /* one Noise message after its u16 length (the spec's bound) */
#define SHOAL_STREAM_HS_PAYLOAD_BYTES_MAX (2 + SHOAL_CERT_BYTES_MAX + 64) /* handshake payload: cert_len | cert | sig */
#define SHOAL_STREAM_HS_MSG_BYTES_MAX 1024   /* one stream handshake message (msg 2 with the largest payload: 562) */

/* --- membership --------------------------------------------------------- */
#define SHOAL_MEMBERS_MAX           16384   /* members one node tracks */
#define SHOAL_SEEDS_MAX                16   /* --join addresses */
#define SHOAL_MSGS_PER_PACKET_MAX      64   /* messages in one compound */
#define SHOAL_OUTBOX_COUNT_MAX       4096   /* core outputs before drained */
#define SHOAL_SUSPICIONS_MAX         4096   /* concurrent suspicions */
#define SHOAL_PENDING_PROBES_MAX      256   /* relayed indirect probes */
#define SHOAL_BROADCASTS_MAX        16384   /* queued gossip broadcasts */

/* --- storage and control ----------------------------------------------- */
#define SHOAL_PATH_BYTES_MAX         4096
#define SHOAL_CONTROL_REQ_BYTES_MAX  4096   /* one CLI request */
#define SHOAL_CONTROL_RESP_BYTES_MAX (4u * 1024 * 1024)
#define SHOAL_CONTROL_CLIENTS_MAX       8
#define SHOAL_CONFIG_LINE_BYTES_MAX  1024
#define SHOAL_CONTROL_CMD_BYTES_MAX    32   /* "cmd" value in a request */
#define SHOAL_CONTROL_CLIENT_TIMEOUT_MS 3000 /* server: one whole exchange */
#define SHOAL_CONTROL_REPLY_TIMEOUT_MS 10000 /* CLI: wait for the agent */
#define SHOAL_DB_BUSY_TIMEOUT_MS     5000   /* wait for a SQLite lock */
#define SHOAL_DB_HEAP_SOFT_BYTES     (128 * 1024) /* SQLite recycles cached pages past this */

/* --- read-only HTTP (dashboard, JSON API, /metrics) on loopback -------- */
#define SHOAL_HTTP_CONNS_MAX           16   /* concurrent HTTP connections */
#define SHOAL_HTTP_CONN_TIMEOUT_S      10   /* idle connection is closed */
#define SHOAL_HTTP_CONN_MEMORY_BYTES_MAX (32u * 1024) /* request line + headers */
#define SHOAL_HTTP_PATH_BYTES_MAX      64   /* longest path we serve is short */
#define SHOAL_HTTP_RESP_BYTES_MAX (16u * 1024 * 1024) /* one response body */

/* --- trust: canonical JSON and the TUF client ------------------------ */
#define SHOAL_CJSON_DEPTH_MAX                 32   /* nesting of arrays/objects */
#define SHOAL_TUF_METADATA_BYTES_MAX (5u * 1024 * 1024) /* any one metadata file */
#define SHOAL_TUF_ROOT_BYTES_MAX      (512u * 1024) /* N.root.json, size unknown */
#define SHOAL_TUF_TIMESTAMP_BYTES_MAX  (16u * 1024) /* timestamp.json, size unknown */
#define SHOAL_TUF_SNAPSHOT_BYTES_MAX (2u * 1024 * 1024) /* when timestamp omits length */
#define SHOAL_TUF_TARGETS_BYTES_MAX  SHOAL_TUF_METADATA_BYTES_MAX /* when snapshot omits length */
#define SHOAL_TUF_TARGET_BYTES_MAX (256u * 1024 * 1024) /* one target file */
#define SHOAL_TUF_ROOT_ROTATIONS_MAX         256   /* N+1.root.json fetched per refresh */
#define SHOAL_TUF_DELEGATIONS_VISIT_MAX       32   /* roles visited per target search */
#define SHOAL_TUF_SIGNATURES_MAX             128   /* signatures on one metadata file */
#define SHOAL_TUF_ROLE_KEYS_MAX              128   /* keyids one role lists */
#define SHOAL_TUF_HASHES_MAX                   8   /* hash entries in one file info */
#define SHOAL_TUF_ROLE_NAME_BYTES_MAX         80   /* delegated role name */
#define SHOAL_TUF_TARGET_NAME_BYTES_MAX     1024   /* target path in metadata */
#define SHOAL_TUF_TARGETS_PER_DOWNLOAD_MAX    64   /* --target-name per command */
#define SHOAL_TUF_PEM_BYTES_MAX             8192   /* one PEM public key */
#define SHOAL_TUF_SIG_BYTES_MAX             1024   /* one signature (RSA-8192) */
#define SHOAL_TUF_RSA_BITS_MIN              2048
#define SHOAL_TUF_RSA_BITS_MAX              8192   /* bounds verify cost */
#define SHOAL_TUF_ROLES_LOADED_MAX          2048   /* delegated roles held per refresh */
#define SHOAL_URL_BYTES_MAX                 4096   /* one URL, with NUL */
#define SHOAL_FETCH_CONNECT_TIMEOUT_MS     10000
#define SHOAL_FETCH_TIMEOUT_MS            300000   /* one whole download */
#define SHOAL_FETCH_LOW_SPEED_BYTES_PER_S   1024   /* abort slower than this ... */
#define SHOAL_FETCH_LOW_SPEED_S               30   /* ... for this long */
#define SHOAL_FETCH_REDIRECTS_MAX              5

/* --- records and feeds (DESIGN 4.4) ------------------------------------ */
#define SHOAL_RECORD_BODY_MAX         512   /* one record's body; a whole record fits a UDP payload */
#define SHOAL_RECORD_HEADER_BYTES      85   /* author 32 | seq 8 | prev 32 | kind 1 | time 8 | len 4 */
#define SHOAL_RECORD_SIG_BYTES         64
#define SHOAL_RECORD_BYTES_MAX  (SHOAL_RECORD_HEADER_BYTES + SHOAL_RECORD_BODY_MAX + SHOAL_RECORD_SIG_BYTES)
#define SHOAL_FEED_RECORDS_MAX     1000000  /* records held in all feeds (~0.6 GiB at full bodies) */
#define SHOAL_FEED_RECORDS_PER_AUTHOR_MAX 50000 /* records held in one author's feed */
#define SHOAL_FEED_AUTHORS_MAX      32768  /* feeds (authors) held; sync lists every head (<= SHOAL_SYNC_FEEDS_MAX) */
#define SHOAL_FEED_EVIDENCE_MAX       4096  /* evidence rows (equivocations, broken links) in all */
#define SHOAL_FEED_EVIDENCE_PER_AUTHOR_MAX 8 /* one proves misbehaviour; a few show a pattern */
#define SHOAL_FEED_RANGE_MAX           256  /* records one feed_range / feed_list call returns */
#define SHOAL_FEED_GAPS_MAX            256  /* missing ranges one feed_gaps call returns */
#define SHOAL_FEED_PRUNE_BATCH_MAX    2000  /* rows deleted per transaction while pruning */

/* --- blobs and releases (DESIGN 4.5, 4.6) -------------------------------- */
#define SHOAL_BLOB_BYTES_MAX        (256u * 1024 * 1024) /* one content-addressed blob */
#define SHOAL_BLOB_CHUNK_BYTES_MAX  (60u * 1024)  /* one chunk in a stream frame */
#define SHOAL_ANNOUNCE_FILES_MAX      8     /* metadata files one announce lists */
#define SHOAL_RELEASE_TARGETS_MAX    64     /* targets fetched for one release */
#define SHOAL_RELEASES_KEPT_MAX     256     /* release rows listed by `shoal releases` */
#define SHOAL_BLOB_PEERS_TRIED_MAX    8     /* peers asked for one blob before giving up */
#define SHOAL_UPSTREAM_URL_BYTES_MAX 1024   /* upstream = URL (an HTTP TUF repository), with NUL */
#define SHOAL_UPSTREAM_INTERVAL_MS_MIN 1000 /* fastest upstream_interval_ms */
#define SHOAL_UPSTREAM_STATE_BYTES_MAX 4096 /* DATA/upstream/state.json */

/* --- publisher repositories (shoal release, src/trust/repo.c) ---------- */
#define SHOAL_REPO_ROLE_KEYS_MAX       16   /* keys init or rotate-root gives one role */
#define SHOAL_REPO_KEY_FILES_MAX      256   /* DIR/keys/NAME.pub files read to find a key */
#define SHOAL_REPO_TARGETS_MAX       4096   /* targets in one targets version */
#define SHOAL_REPO_CUSTOM_BYTES_MAX (16u * 1024) /* one target's custom JSON */
#define SHOAL_REPO_EXPIRES_DAYS_MAX  3650   /* any --expires-days */
#define SHOAL_REPO_GENERATION_FILES_MAX 1024 /* files in one published metadata generation */
#define SHOAL_REPO_DIR_DEPTH_MAX       16   /* '/' in a target name; depth a cleanup walks */
#define SHOAL_REPO_NAME_PART_BYTES_MAX 120  /* one part of a target name: HASH(128).PART fits 255 */

/* --- dissemination: eager push and anti-entropy sync (DESIGN 4.5) ------ */
#define SHOAL_REPL_FANOUT_MAX            16   /* peers one push round sends to */
#define SHOAL_REPL_RECORDS_PER_PACKET_MAX 7   /* records in one push payload: 7 of the smallest fill the largest */
#define SHOAL_REPL_QUEUE_COUNT_MAX     1024   /* records waiting for push retransmits */
#define SHOAL_REPL_PEERS_MAX   SHOAL_MEMBERS_MAX /* peers the core picks from */
#define SHOAL_SYNC_MSG_BYTES_MAX (SHOAL_TCP_FRAME_BYTES_MAX - 5) /* one sync message: a stream frame's payload */
#define SHOAL_SYNC_BUCKETS              256   /* digest buckets (first byte of the author) */
#define SHOAL_SYNC_DIGEST_BYTES          16   /* BLAKE2b of one bucket's heads */
#define SHOAL_SYNC_DIGEST_GAP_CALLS_MAX 1024   /* store gaps() calls one digest makes for feeds with holes */
#define SHOAL_SYNC_FEEDS_MAX          32768   /* heads one side holds or lists in a session */
#define SHOAL_SYNC_WANTS_MAX           8192   /* ranges one side requests in a session */
#define SHOAL_SYNC_RANGE_COUNT_MAX     4096   /* seqs in one requested range */
#define SHOAL_SYNC_RECORDS_MAX        65536   /* records one side requests in a session (~43 MiB) */
#define SHOAL_SYNC_FRAMES_MAX          4096   /* messages sent + received in one session */
#define SHOAL_SYNC_TIMEOUT_MS        120000   /* one whole sync session over a stream */
#define SHOAL_BLOB_PEERS_MAX             64   /* candidate peers one blob download tracks */
#define SHOAL_BLOB_PEER_FAILURES_MAX      3   /* transport failures before a peer is dropped for a blob */

/* --- simulator ---------------------------------------------------------- */
#define SHOAL_SIM_NODES_MAX         20000
#define SHOAL_SIM_EVENTS_MAX     (64u * 1024 * 1024) /* queued sim events */
#define SHOAL_SIM_SECONDS_MAX       86400   /* virtual length of one sim run */

#endif
