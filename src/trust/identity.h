/*
 * identity.h — node keys, fleets, admission certificates, gossip keyring.
 *
 * A fleet (made by `shoal fleet create --out DIR`) is:
 *   DIR/fleet.id           16-byte fleet id, hex
 *   DIR/gossip.keys        gossip keyring, one 32-byte key in hex per line,
 *                          first line is the primary (mode 0600)
 *   DIR/admission.pub      "threshold N" line, then one Ed25519 public key in
 *                          hex per line (index = line order, from 0)
 *   DIR/admission/K.key    admission secret key K (mode 0600)
 *
 * A node's data dir (made by `shoal init --data D --fleet DIR --name N`):
 *   D/keys/node.key        Ed25519 secret key (mode 0600, dir 0700)
 *   D/node.cert            admission certificate (binary, below)
 *   D/fleet/fleet.id, D/fleet/gossip.keys, D/fleet/admission.pub
 *                          copies of the fleet's public parts and keyring
 *
 * Admission certificate, signed by a threshold of admission keys, each
 * signature over "shoal/admission/v1" || the encoding up to (not including)
 * sigs_count:
 *   version(u8 = 1) | fleet_id(16) | node_id(32) | name(str8)
 *   | tags_count(u8) | tags(str8 each) | issued_ms(u64) | expires_ms(u64)
 *   | sigs_count(u8) | sigs_count x (key_index(u8) | sig(64))
 * Names: 1..32 bytes of [A-Za-z0-9._-]; tags: 1..16 bytes, same set.
 */
#ifndef SHOAL_TRUST_IDENTITY_H
#define SHOAL_TRUST_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"
#include "shoal/limits.h"

#define SHOAL_ADMISSION_DOMAIN "shoal/admission/v1"

struct shoal_keypair {
	uint8_t pk[32];
	uint8_t sk[64]; /* libsodium Ed25519 secret key (seed || pk) */
};

/* Generates a fresh key pair. */
void keys_generate(struct shoal_keypair *kp);
/* Writes the secret key to path, hex, mode 0600 (created exclusively:
 * SHOAL_EEXIST if present). */
int keys_save(const char *path, const struct shoal_keypair *kp) SHOAL_MUST_CHECK;
/* Reads a secret key; SHOAL_EKEYMODE if the file is readable or writable by
 * group or others, SHOAL_EPROTO if malformed, SHOAL_ENOTFOUND if missing.
 * On error, errbuf (if not NULL) holds a message naming the file and the fix. */
int keys_load(const char *path, struct shoal_keypair *kp, char *errbuf,
	      size_t errlen) SHOAL_MUST_CHECK;

struct fleet_public {
	uint8_t fleet_id[SHOAL_FLEET_ID_BYTES];
	uint8_t admission_count;
	uint8_t threshold;
	uint8_t admission_pks[SHOAL_ADMISSION_KEYS_MAX][32];
};

struct gossip_keyring {
	uint8_t count; /* 1..SHOAL_GOSSIP_KEYS_MAX; keys[0] is primary */
	uint8_t keys[SHOAL_GOSSIP_KEYS_MAX][32];
};

struct admission_cert {
	uint8_t fleet_id[SHOAL_FLEET_ID_BYTES];
	uint8_t node_id[SHOAL_NODE_ID_BYTES];
	char name[SHOAL_NAME_BYTES_MAX + 1];
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
	uint64_t issued_ms;
	uint64_t expires_ms;
	uint8_t sigs_count;
	uint8_t sig_key_index[SHOAL_ADMISSION_SIGS_MAX];
	uint8_t sigs[SHOAL_ADMISSION_SIGS_MAX][64];
};

/* Encodes into out (cap bytes). */
int cert_encode(const struct admission_cert *c, uint8_t *out, size_t cap,
		size_t *len) SHOAL_MUST_CHECK;
/* Decodes exactly len bytes: SHOAL_ETRUNC, SHOAL_EPROTO, SHOAL_EVERSION,
 * SHOAL_ETRAILING, SHOAL_ETOOBIG. Checks syntax only, not signatures. */
int cert_decode(const uint8_t *in, size_t len, struct admission_cert *out) SHOAL_MUST_CHECK;
/* Adds a signature by admission key `key_index` (replacing an earlier one by
 * the same key). */
int cert_sign(struct admission_cert *c, uint8_t key_index,
	      const uint8_t sk[64]) SHOAL_MUST_CHECK;
/* 0 if c belongs to fleet f, carries valid signatures from at least
 * f->threshold distinct admission keys, and now_ms < expires_ms.
 * SHOAL_EFLEET, SHOAL_EBADSIG (a signature is invalid), SHOAL_EUNADMITTED
 * (fewer than threshold distinct valid signers), SHOAL_EEXPIRED. */
int cert_verify(const struct admission_cert *c, const struct fleet_public *f,
		uint64_t now_ms) SHOAL_MUST_CHECK;
/* True if s is a valid node name / tag. */
int identity_valid_name(const char *s, size_t max);

/* Loads DIR/fleet.id, DIR/admission.pub (and, if ring != NULL,
 * DIR/gossip.keys, which must be mode 0600). */
int fleet_load_public(const char *dir, struct fleet_public *f,
		      struct gossip_keyring *ring, char *errbuf,
		      size_t errlen) SHOAL_MUST_CHECK;

/* Everything an agent needs about itself, loaded from its data dir. */
struct node_identity {
	struct shoal_keypair kp;
	struct admission_cert cert;
	uint8_t cert_bytes[SHOAL_CERT_BYTES_MAX];
	size_t cert_len;
	struct fleet_public fleet;
	struct gossip_keyring ring;
};

/* Loads D/keys/node.key, D/node.cert and D/fleet/, and checks that the
 * certificate is for this key and verifies against the fleet at now_ms. */
int node_identity_load(const char *data_dir, struct node_identity *out,
		       uint64_t now_ms, char *errbuf, size_t errlen) SHOAL_MUST_CHECK;
/* Wipes secrets. */
void node_identity_wipe(struct node_identity *n);

/* --- creating fleets and nodes (used by `shoal fleet create`, `shoal init`) */

/* Creates a fleet in dir (absent or empty; SHOAL_EEXIST otherwise): a fresh
 * fleet id, one gossip key, and admission_count admission key pairs of which
 * threshold must sign (1 <= threshold <= admission_count, threshold <=
 * SHOAL_ADMISSION_SIGS_MAX). Directories 0700, secret files 0600. On error
 * whatever it created is removed. out (if not NULL) gets the public part. */
int fleet_create(const char *dir, unsigned admission_count, unsigned threshold,
		 struct fleet_public *out, char *errbuf, size_t errlen) SHOAL_MUST_CHECK;

struct node_init_params {
	const char *data_dir;
	const char *fleet_dir;
	const char *name;
	const char *tags[SHOAL_TAGS_COUNT_MAX];
	size_t tags_count;
	/* Admission key files to sign with; when none are given, every
	 * fleet_dir/admission/N.key present is used. */
	const char *admission_key_paths[SHOAL_ADMISSION_KEYS_MAX];
	size_t admission_key_paths_count;
	uint64_t now_ms;     /* issued_ms */
	uint64_t expires_ms; /* > now_ms */
};

/* Creates a node data dir: a fresh key in D/keys/node.key, D/node.cert
 * signed by the given admission keys (at least the fleet's threshold, at
 * most SHOAL_ADMISSION_SIGS_MAX of them), and D/fleet/ copies. Refuses
 * (SHOAL_EEXIST) a dir that already holds a node. On error whatever it
 * created is removed. cert_out (if not NULL) gets the certificate. */
int node_init(const struct node_init_params *p, struct admission_cert *cert_out,
	      char *errbuf, size_t errlen) SHOAL_MUST_CHECK;

#endif
