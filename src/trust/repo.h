/*
 * repo.h — a TUF 1.0 repository writer and signer, behind `shoal release`.
 *
 * A repository DIR made by repo_create:
 *
 *   DIR/metadata -> generations/G   symlink: what is published. publish builds
 *                                   generation G+1 beside it and swaps the
 *                                   symlink with one rename(2), so a reader
 *                                   sees the old set or the new set, never a
 *                                   mix, and a failed publish changes nothing
 *   DIR/generations/G/              1.root.json .. R.root.json, root.json (= R),
 *                                   T.targets.json, S.snapshot.json,
 *                                   timestamp.json; canonical JSON, written
 *                                   once and hard-linked into later generations
 *   DIR/targets/                    target files as consistent-snapshot clients
 *                                   fetch them: dirs of NAME/HASH.basename, for
 *                                   the sha256 and the sha512 hash
 *   DIR/staged/                     work in progress: targets.json (version
 *                                   T+1) and root.json (version R+1), each
 *                                   with the signatures collected so far;
 *                                   staged/targets/SHA256 holds added files
 *   DIR/keys/                       NAME.key (Ed25519 secret, mode 0600) and
 *                                   NAME.pub (public key, hex); never inside
 *                                   metadata/
 *   DIR/.lock                       flock(2) held by every repo_open
 *
 * Roles: root (offline keys, default 1 of 1), targets (the publishers,
 * default 2 of 3), snapshot and timestamp (one online key each in keys/,
 * used by publish). All keys are ed25519; key ids are the SHA-256 of the
 * key's canonical JSON, as python-tuf and tuf-js compute them. Metadata
 * follows the TUF specification 1.0.31 with consistent_snapshot true.
 *
 * Staging: add/remove/stage create staged/targets.json as the published
 * targets plus the change, version T+1, with no signatures; any later change
 * to its signed part drops the signatures collected so far (they no longer
 * cover it). rotate-root stages root.json the same way. Publishers sign in
 * turn with repo_sign; publish refuses a staged role below its threshold.
 *
 * Every function returns 0 or a negative SHOAL_E* code with err holding a
 * message that names the file or role; on error nothing is changed unless
 * the function says otherwise.
 */
#ifndef SHOAL_TRUST_REPO_H
#define SHOAL_TRUST_REPO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "shoal/limits.h"

#define REPO_SPEC_VERSION "1.0.31"
#define REPO_ROOT_EXPIRES_DAYS_DEFAULT 365
#define REPO_TARGETS_EXPIRES_DAYS_DEFAULT 90
/* snapshot and timestamp: re-signed by every publish, even with nothing
 * staged, so a weekly publish keeps the repository fresh. */
#define REPO_ONLINE_EXPIRES_DAYS_DEFAULT 7

/* Roles a staged document can belong to (masks for repo_sign/discard). */
#define REPO_ROLE_ROOT 1u
#define REPO_ROLE_TARGETS 2u

struct repo_create_params {
	const char *dir;           /* absent or empty */
	unsigned root_keys;        /* 1..SHOAL_REPO_ROLE_KEYS_MAX */
	unsigned root_threshold;   /* 1..root_keys */
	unsigned publishers;       /* targets keys, 1..SHOAL_REPO_ROLE_KEYS_MAX */
	unsigned publisher_threshold;
	unsigned root_expires_days;    /* 1..SHOAL_REPO_EXPIRES_DAYS_MAX */
	unsigned targets_expires_days;
	unsigned online_expires_days;  /* snapshot and timestamp */
	int64_t now_s;
};

/* Creates a repository: keys root-1..N, publisher-1..M, snapshot and
 * timestamp in DIR/keys/, and version 1 of every role (an empty targets
 * signed by every publisher key) published as generation 1. On error
 * whatever it made is removed. */
int repo_create(const struct repo_create_params *p, char *err, size_t errlen) SHOAL_MUST_CHECK;

struct repo;

/* Opens DIR (taking its lock: SHOAL_ESTATE if another command holds it) and
 * loads the published root, timestamp, snapshot and targets and anything
 * staged. A staged document whose version is not newer than the published
 * one (left by a publish that stopped after its commit) is removed. */
int repo_open(const char *dir, struct repo **out, char *err, size_t errlen) SHOAL_MUST_CHECK;
void repo_close(struct repo *r);
/* The repository's absolute path. */
const char *repo_path(const struct repo *r);

/* Stages FILE as target NAME (1..SHOAL_TUF_TARGET_NAME_BYTES_MAX bytes of
 * [A-Za-z0-9._~+-] in '/'-separated parts, none "." or "..", each at most
 * 120 bytes) with its length, sha256 and sha512, and custom (a JSON object,
 * or NULL for none: integers only, no control characters in strings, keys
 * printable ASCII) in staged targets. expires_days 0 keeps the staged
 * expiry (REPO_TARGETS_EXPIRES_DAYS_DEFAULT for a new staged version).
 * *dropped gets how many signatures the change invalidated. */
int repo_add_target(struct repo *r, const char *file, const char *name, const json_t *custom,
		    int64_t now_s, unsigned expires_days, unsigned *dropped, char *err,
		    size_t errlen) SHOAL_MUST_CHECK;
/* Removes target NAME from the staged targets (SHOAL_ENOTFOUND if absent). */
int repo_remove_target(struct repo *r, const char *name, int64_t now_s, unsigned *dropped,
		       char *err, size_t errlen) SHOAL_MUST_CHECK;
/* Stages targets T+1 with no change but its expiry (to renew it, or to be
 * signed by new publisher keys after a rotation). Already staged: sets the
 * expiry when expires_days > 0. */
int repo_stage_targets(struct repo *r, int64_t now_s, unsigned expires_days, unsigned *dropped,
		       char *err, size_t errlen) SHOAL_MUST_CHECK;

/* A root rotation, staged as root R+1 (or applied to the staged one). */
struct repo_rotation {
	size_t add_count;
	struct {
		const char *role;  /* root, targets, snapshot, timestamp */
		uint8_t pk[32];    /* ed25519 public key */
	} add[SHOAL_REPO_ROLE_KEYS_MAX];
	size_t remove_count;
	struct {
		const char *role;
		const char *keyid; /* full id or a unique prefix of >= 8 hex digits */
	} remove[SHOAL_REPO_ROLE_KEYS_MAX];
	size_t threshold_count;
	struct {
		const char *role;
		unsigned threshold;
	} threshold[4];
	bool new_online_keys; /* fresh snapshot and timestamp keys in keys/ */
	unsigned expires_days; /* 0: REPO_ROOT_EXPIRES_DAYS_DEFAULT from now */
};
/* Every role must keep 1 <= threshold <= its key count. The staged root has
 * no signatures (any collected are dropped); it needs a threshold of the
 * current root keys and of its own root keys (repo_sign, then publish). */
int repo_rotate_root(struct repo *r, const struct repo_rotation *rot, int64_t now_s,
		     char *err, size_t errlen) SHOAL_MUST_CHECK;

/* Signatures on a document for one role. */
struct repo_sig_count {
	int64_t valid;      /* distinct authorised keys with a valid signature */
	int64_t threshold;
	int64_t keys;       /* keys the role authorises */
};

/* Counts the distinct keys of role (as root_signed, the "signed" object of a
 * root, lists them) that have a valid signature over doc's canonical
 * "signed" part. Non-ed25519 keys never count here (repo keys are all
 * ed25519). Returns 0, SHOAL_ENOTFOUND (no such role), SHOAL_EPROTO. */
int repo_count_signatures(const json_t *root_signed, const char *role, const json_t *doc,
			  struct repo_sig_count *out) SHOAL_MUST_CHECK;

struct repo_sign_result {
	char keyid[65];
	unsigned signed_mask;  /* REPO_ROLE_* signed now */
	struct repo_sig_count targets;   /* after signing, if targets are staged */
	struct repo_sig_count root_old;  /* staged root: current root keys */
	struct repo_sig_count root_new;  /* staged root: its own root keys */
};

/* Adds the signature of the key in key_path to each staged document (roles
 * in mask; 0 = any) whose role authorises the key: staged targets if the
 * key is a targets key of the root in effect after publish (the staged root
 * if one is staged), staged root if it is a root key of the current or the
 * staged root. SHOAL_ESTATE if nothing is staged, SHOAL_EUNADMITTED if no
 * staged role authorises the key, SHOAL_EEXIST if every document it may
 * sign already carries its signature. */
int repo_sign(struct repo *r, const char *key_path, unsigned mask, struct repo_sign_result *res,
	      char *err, size_t errlen) SHOAL_MUST_CHECK;

/* Drops staged documents (mask REPO_ROLE_*; files added to staged/targets/
 * go with the staged targets). SHOAL_ENOTFOUND if none was staged. */
int repo_discard(struct repo *r, unsigned mask, char *err, size_t errlen) SHOAL_MUST_CHECK;

struct repo_publish_opts {
	unsigned online_expires_days;  /* 0: REPO_ONLINE_EXPIRES_DAYS_DEFAULT */
	/* For drills only: publish staged documents below their threshold,
	 * which every client must then reject. */
	bool allow_under_threshold;
};

struct repo_publish_result {
	int64_t root_version, targets_version, snapshot_version, timestamp_version;
	unsigned published_mask;   /* REPO_ROLE_* that were staged and are now published */
	bool under_threshold;      /* a drill: something published lacks its threshold */
	unsigned long generation;
};

/* Publishes: checks the staged root (threshold of the current and of its
 * own root keys, version R+1, not expired) and the staged targets
 * (threshold of the targets keys of the root in effect, not expired) —
 * SHOAL_EBADSIG naming how many of how many signatures are there, unless
 * allow_under_threshold; a staged root that changes the targets keys needs
 * targets signed by the new keys too. Then signs snapshot S+1 and timestamp
 * T+1 with the online keys from keys/, links staged target files into
 * targets/, writes generation G+1 and swaps DIR/metadata to it. Until that
 * swap nothing published changes (on error, files it added are removed);
 * after it, staged files and generations older than G are removed. */
int repo_publish(struct repo *r, int64_t now_s, const struct repo_publish_opts *o,
		 struct repo_publish_result *res, char *err, size_t errlen) SHOAL_MUST_CHECK;

/* Everything `shoal release status` shows, as a new JSON object:
 * {"repo", "generation", "root"|"targets"|"snapshot"|"timestamp": {version,
 * expires, expired}, "roles": {ROLE: {threshold, keyids}}, "key_files":
 * {KEYID: NAME}, "published_targets": {NAME: {length, hashes, custom?}},
 * "staged": {"targets"?: {version, expires, signatures: {valid, threshold,
 * signed_by, missing}, added, changed, removed}, "root"?: {version, expires,
 * old_root: {...}, new_root: {...}}}}. */
int repo_status(struct repo *r, int64_t now_s, json_t **out) SHOAL_MUST_CHECK;

/* Writes a fresh ed25519 key to path (mode 0600, created exclusively) and
 * its public key to path_pub ("HEX\n", 0644), and its key id into keyid. */
int repo_keygen(const char *path, const char *path_pub, char keyid[65], char *err,
		size_t errlen) SHOAL_MUST_CHECK;

/* Reads an ed25519 public key from a NAME.pub file (64 hex digits) or from
 * a shoal key file (its public half). */
int repo_read_public_key(const char *path, uint8_t pk[32], char *err,
			 size_t errlen) SHOAL_MUST_CHECK;

/* True if name is a target name repo_add_target accepts. */
bool repo_valid_target_name(const char *name);

/* For tests (fault injection, as SQLite's I/O error loops): makes the nth
 * filesystem step of the next repo_publish fail with SHOAL_EIO; 0 turns it
 * off. Not thread-safe; never set outside tests. */
void repo_fault_inject(int nth);

#endif
