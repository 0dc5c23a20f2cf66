/*
 * fleet.c — fleet and node directories on disk (layout in identity.h):
 * creating a fleet, loading its public part and gossip keyring, creating a
 * node's data dir with an admission certificate, and loading a node's whole
 * identity at agent start.
 *
 * Creation is all-or-nothing: everything is computed and signed in memory
 * first, then written; on a failed write every file and directory made so
 * far is removed, so an operator never finds a half-made fleet or node.
 */
#include "trust/identity.h"
#include "trust/tfile.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shoal/hex.h"

#define FLEET_FILE_BYTES_MAX 4096
#define CREATED_MAX 24 /* paths one creation makes (fleet: 5 + keys) */

/* --- undo list for all-or-nothing creation ------------------------------ */

struct created {
	size_t count;
	char paths[CREATED_MAX][SHOAL_PATH_BYTES_MAX];
	int is_dir[CREATED_MAX];
};

static void created_add(struct created *c, const char *path, int is_dir)
{
	assert(c->count < CREATED_MAX);
	snprintf(c->paths[c->count], SHOAL_PATH_BYTES_MAX, "%s", path);
	c->is_dir[c->count] = is_dir;
	c->count++;
}

/* Removes what was created, newest first. */
static void created_undo(struct created *c)
{
	while (c->count > 0) {
		c->count--;
		if (c->is_dir[c->count])
			rmdir(c->paths[c->count]);
		else
			unlink(c->paths[c->count]);
	}
}

static int make_dir(struct created *c, const char *path, char *errbuf, size_t errlen)
{
	if (mkdir(path, 0700) != 0) {
		int e = errno;
		tfile_err(errbuf, errlen, "mkdir(%s): %s", path, strerror(e));
		return e == EEXIST ? SHOAL_EEXIST : SHOAL_EIO;
	}
	/* The umask may have narrowed it; it must be exactly 0700. */
	if (chmod(path, 0700) != 0) {
		tfile_err(errbuf, errlen, "chmod(%s): %s", path, strerror(errno));
		rmdir(path);
		return SHOAL_EIO;
	}
	created_add(c, path, 1);
	return 0;
}

static int write_in(struct created *c, const char *dir, const char *name,
		    const void *data, size_t len, int mode, char *errbuf, size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	int rc;
	if (tfile_join(path, sizeof path, dir, name) != 0) {
		tfile_err(errbuf, errlen, "%s/%s: path too long", dir, name);
		return SHOAL_ETOOBIG;
	}
	if ((rc = tfile_write_new(path, data, len, mode, errbuf, errlen)) != 0)
		return rc;
	created_add(c, path, 0);
	return 0;
}

/* 0 if dir does not exist (*exists = 0) or is an empty directory. */
static int dir_absent_or_empty(const char *dir, int *exists, char *errbuf, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	*exists = 0;
	if (!d) {
		if (errno == ENOENT)
			return 0;
		tfile_err(errbuf, errlen, "opendir(%s): %s", dir, strerror(errno));
		return errno == ENOTDIR ? SHOAL_EEXIST : SHOAL_EIO;
	}
	*exists = 1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		closedir(d);
		tfile_err(errbuf, errlen, "%s: exists and is not empty; choose a new directory",
			  dir);
		return SHOAL_EEXIST;
	}
	closedir(d);
	return 0;
}

/* --- text formats -------------------------------------------------------- */

/* Splits buf into lines in place; a final newline is optional. Returns the
 * number of lines or -1 if more than max. */
static int split_lines(char *buf, size_t len, char **lines, int max)
{
	int n = 0;
	size_t start = 0;
	buf[len] = '\0';
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	if (len == 0)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || buf[i] == '\n') {
			if (n >= max)
				return -1;
			buf[i] = '\0';
			if (i > start && buf[i - 1] == '\r')
				buf[i - 1] = '\0';
			lines[n++] = buf + start;
			start = i + 1;
		}
	}
	return n;
}

static int load_fleet_id(const char *dir, uint8_t id[SHOAL_FLEET_ID_BYTES],
			 char *errbuf, size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	char buf[FLEET_FILE_BYTES_MAX + 1];
	char *lines[2];
	size_t len = 0;
	int rc;
	if (tfile_join(path, sizeof path, dir, "fleet.id") != 0)
		return SHOAL_ETOOBIG;
	rc = tfile_read(path, (uint8_t *)buf, FLEET_FILE_BYTES_MAX, &len, 0, errbuf, errlen);
	if (rc != 0)
		return rc;
	if (split_lines(buf, len, lines, 1) != 1 ||
	    hex_decode(lines[0], id, SHOAL_FLEET_ID_BYTES) != 0) {
		tfile_err(errbuf, errlen, "%s: expected one line of %d hex digits", path,
			  2 * SHOAL_FLEET_ID_BYTES);
		return SHOAL_EPROTO;
	}
	return 0;
}

static int load_admission_pub(const char *dir, struct fleet_public *f, char *errbuf,
			      size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	char buf[FLEET_FILE_BYTES_MAX + 1];
	char *lines[SHOAL_ADMISSION_KEYS_MAX + 1];
	size_t len = 0;
	unsigned threshold = 0;
	char extra;
	int rc, n;
	if (tfile_join(path, sizeof path, dir, "admission.pub") != 0)
		return SHOAL_ETOOBIG;
	rc = tfile_read(path, (uint8_t *)buf, FLEET_FILE_BYTES_MAX, &len, 0, errbuf, errlen);
	if (rc != 0)
		return rc;
	n = split_lines(buf, len, lines, SHOAL_ADMISSION_KEYS_MAX + 1);
	if (n < 2) {
		tfile_err(errbuf, errlen,
			  "%s: expected a 'threshold N' line and 1..%d public keys", path,
			  SHOAL_ADMISSION_KEYS_MAX);
		return SHOAL_EPROTO;
	}
	if (sscanf(lines[0], "threshold %u%c", &threshold, &extra) != 1 || threshold < 1 ||
	    threshold > (unsigned)(n - 1) || threshold > SHOAL_ADMISSION_SIGS_MAX) {
		tfile_err(errbuf, errlen,
			  "%s:1: expected 'threshold N' with 1 <= N <= %d and N <= number of keys",
			  path, SHOAL_ADMISSION_SIGS_MAX);
		return SHOAL_EPROTO;
	}
	f->admission_count = (uint8_t)(n - 1);
	f->threshold = (uint8_t)threshold;
	for (int i = 1; i < n; i++) {
		if (hex_decode(lines[i], f->admission_pks[i - 1], 32) != 0) {
			tfile_err(errbuf, errlen, "%s:%d: expected a public key of 64 hex digits",
				  path, i + 1);
			return SHOAL_EPROTO;
		}
	}
	return 0;
}

static int load_gossip_keys(const char *dir, struct gossip_keyring *ring, char *errbuf,
			    size_t errlen)
{
	char path[SHOAL_PATH_BYTES_MAX];
	char buf[FLEET_FILE_BYTES_MAX + 1];
	char *lines[SHOAL_GOSSIP_KEYS_MAX];
	struct gossip_keyring tmp;
	size_t len = 0;
	int rc = 0, n;
	if (tfile_join(path, sizeof path, dir, "gossip.keys") != 0)
		return SHOAL_ETOOBIG;
	rc = tfile_read(path, (uint8_t *)buf, FLEET_FILE_BYTES_MAX, &len, 1, errbuf, errlen);
	if (rc != 0)
		goto out;
	n = split_lines(buf, len, lines, SHOAL_GOSSIP_KEYS_MAX);
	if (n < 1) {
		tfile_err(errbuf, errlen, "%s: expected 1..%d keys of 64 hex digits, one a line",
			  path, SHOAL_GOSSIP_KEYS_MAX);
		rc = SHOAL_EPROTO;
		goto out;
	}
	tmp.count = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		if (hex_decode(lines[i], tmp.keys[i], 32) != 0) {
			tfile_err(errbuf, errlen, "%s:%d: expected a key of 64 hex digits", path,
				  i + 1);
			rc = SHOAL_EPROTO;
			goto out;
		}
	}
	*ring = tmp;
out:
	sodium_memzero(buf, sizeof buf);
	sodium_memzero(&tmp, sizeof tmp);
	return rc;
}

int fleet_load_public(const char *dir, struct fleet_public *f, struct gossip_keyring *ring,
		      char *errbuf, size_t errlen)
{
	struct fleet_public tmp;
	int rc;
	assert(dir && f);
	memset(&tmp, 0, sizeof tmp);
	if ((rc = load_fleet_id(dir, tmp.fleet_id, errbuf, errlen)) != 0)
		return rc;
	if ((rc = load_admission_pub(dir, &tmp, errbuf, errlen)) != 0)
		return rc;
	if (ring && (rc = load_gossip_keys(dir, ring, errbuf, errlen)) != 0)
		return rc;
	assert(tmp.threshold >= 1 && tmp.threshold <= tmp.admission_count);
	*f = tmp;
	return 0;
}

/* Writes fleet.id, admission.pub and gossip.keys into dir. */
static int write_fleet_files(struct created *c, const char *dir, const struct fleet_public *f,
			     const struct gossip_keyring *ring, char *errbuf, size_t errlen)
{
	char text[FLEET_FILE_BYTES_MAX];
	char hex[65];
	size_t off = 0;
	int rc;

	assert(f->admission_count <= SHOAL_ADMISSION_KEYS_MAX);
	assert(ring->count >= 1 && ring->count <= SHOAL_GOSSIP_KEYS_MAX);
	hex_encode(f->fleet_id, SHOAL_FLEET_ID_BYTES, hex);
	off = (size_t)snprintf(text, sizeof text, "%s\n", hex);
	if ((rc = write_in(c, dir, "fleet.id", text, off, 0644, errbuf, errlen)) != 0)
		return rc;

	off = (size_t)snprintf(text, sizeof text, "threshold %u\n", (unsigned)f->threshold);
	for (size_t i = 0; i < f->admission_count; i++) {
		hex_encode(f->admission_pks[i], 32, hex);
		off += (size_t)snprintf(text + off, sizeof text - off, "%s\n", hex);
	}
	if ((rc = write_in(c, dir, "admission.pub", text, off, 0644, errbuf, errlen)) != 0)
		return rc;

	off = 0;
	for (size_t i = 0; i < ring->count; i++) {
		hex_encode(ring->keys[i], 32, hex);
		off += (size_t)snprintf(text + off, sizeof text - off, "%s\n", hex);
	}
	rc = write_in(c, dir, "gossip.keys", text, off, 0600, errbuf, errlen);
	sodium_memzero(text, sizeof text);
	sodium_memzero(hex, sizeof hex);
	return rc;
}

int fleet_create(const char *dir, unsigned admission_count, unsigned threshold,
		 struct fleet_public *out, char *errbuf, size_t errlen)
{
	static struct created made; /* large; creation is a one-shot CLI action */
	struct fleet_public f;
	struct gossip_keyring ring;
	struct shoal_keypair kp;
	char sub[SHOAL_PATH_BYTES_MAX], name[32];
	int exists = 0, rc;

	assert(dir);
	memset(&made, 0, sizeof made);
	if (admission_count < 1 || admission_count > SHOAL_ADMISSION_KEYS_MAX) {
		tfile_err(errbuf, errlen, "admission keys must be 1..%d, got %u",
			  SHOAL_ADMISSION_KEYS_MAX, admission_count);
		return SHOAL_EINVAL;
	}
	if (threshold < 1 || threshold > admission_count || threshold > SHOAL_ADMISSION_SIGS_MAX) {
		tfile_err(errbuf, errlen,
			  "threshold must be 1..%u (and at most %d), got %u",
			  admission_count, SHOAL_ADMISSION_SIGS_MAX, threshold);
		return SHOAL_EINVAL;
	}
	if ((rc = dir_absent_or_empty(dir, &exists, errbuf, errlen)) != 0)
		return rc;
	if (tfile_join(sub, sizeof sub, dir, "admission") != 0) {
		tfile_err(errbuf, errlen, "%s: path too long", dir);
		return SHOAL_ETOOBIG;
	}

	memset(&f, 0, sizeof f);
	randombytes_buf(f.fleet_id, sizeof f.fleet_id);
	f.admission_count = (uint8_t)admission_count;
	f.threshold = (uint8_t)threshold;
	ring.count = 1;
	randombytes_buf(ring.keys[0], 32);

	if (exists) {
		if (chmod(dir, 0700) != 0) {
			tfile_err(errbuf, errlen, "chmod(%s): %s", dir, strerror(errno));
			rc = SHOAL_EIO;
			goto out;
		}
	} else if ((rc = make_dir(&made, dir, errbuf, errlen)) != 0) {
		goto out;
	}
	if ((rc = make_dir(&made, sub, errbuf, errlen)) != 0)
		goto out;
	for (unsigned i = 0; i < admission_count; i++) {
		char path[SHOAL_PATH_BYTES_MAX];
		keys_generate(&kp);
		memcpy(f.admission_pks[i], kp.pk, 32);
		snprintf(name, sizeof name, "%u.key", i);
		if (tfile_join(path, sizeof path, sub, name) != 0) {
			rc = SHOAL_ETOOBIG;
			goto out;
		}
		if ((rc = keys_save(path, &kp)) != 0) {
			tfile_err(errbuf, errlen, "write(%s): %s", path, shoal_strerror(rc));
			goto out;
		}
		created_add(&made, path, 0);
	}
	if ((rc = write_fleet_files(&made, dir, &f, &ring, errbuf, errlen)) != 0)
		goto out;
	if (out)
		*out = f;
out:
	if (rc != 0)
		created_undo(&made);
	sodium_memzero(&kp, sizeof kp);
	sodium_memzero(&ring, sizeof ring);
	return rc;
}

/* --- node data dir --------------------------------------------------------- */

/* Loads one admission key and finds its index in the fleet by public key. */
static int load_admission_key(const char *path, const struct fleet_public *f,
			      struct shoal_keypair *kp, uint8_t *index, char *errbuf,
			      size_t errlen)
{
	int rc = keys_load(path, kp, errbuf, errlen);
	if (rc != 0)
		return rc;
	for (uint8_t i = 0; i < f->admission_count; i++) {
		if (sodium_memcmp(f->admission_pks[i], kp->pk, 32) == 0) {
			*index = i;
			return 0;
		}
	}
	sodium_memzero(kp, sizeof *kp);
	tfile_err(errbuf, errlen, "%s: not an admission key of this fleet (not in admission.pub)",
		  path);
	return SHOAL_EUNADMITTED;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Fills paths with fleet_dir/admission/N.key for every N.key present. */
static int list_admission_keys(const char *fleet_dir, char paths[][SHOAL_PATH_BYTES_MAX],
			       size_t *count, char *errbuf, size_t errlen)
{
	char sub[SHOAL_PATH_BYTES_MAX];
	DIR *d;
	struct dirent *e;
	*count = 0;
	if (tfile_join(sub, sizeof sub, fleet_dir, "admission") != 0)
		return SHOAL_ETOOBIG;
	d = opendir(sub);
	if (!d) {
		tfile_err(errbuf, errlen,
			  "opendir(%s): %s; give the admission keys with --admission-key",
			  sub, strerror(errno));
		return SHOAL_ENOTFOUND;
	}
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 4, ".key") != 0)
			continue;
		if (*count >= SHOAL_ADMISSION_KEYS_MAX) {
			closedir(d);
			tfile_err(errbuf, errlen, "%s: more than %d key files", sub,
				  SHOAL_ADMISSION_KEYS_MAX);
			return SHOAL_ETOOBIG;
		}
		if (tfile_join(paths[*count], SHOAL_PATH_BYTES_MAX, sub, e->d_name) != 0) {
			closedir(d);
			return SHOAL_ETOOBIG;
		}
		(*count)++;
	}
	closedir(d);
	/* readdir order is arbitrary; sort so the same keys sign every time. */
	qsort(paths, *count, SHOAL_PATH_BYTES_MAX, cmp_path);
	return 0;
}

static int file_exists(const char *dir, const char *name)
{
	char path[SHOAL_PATH_BYTES_MAX];
	struct stat st;
	if (tfile_join(path, sizeof path, dir, name) != 0)
		return 0;
	return lstat(path, &st) == 0;
}

int node_init(const struct node_init_params *p, struct admission_cert *cert_out,
	      char *errbuf, size_t errlen)
{
	static struct created made;
	static char key_paths[SHOAL_ADMISSION_KEYS_MAX][SHOAL_PATH_BYTES_MAX];
	struct fleet_public f;
	struct gossip_keyring ring;
	struct shoal_keypair node_kp, adm_kp;
	struct admission_cert cert;
	uint8_t cert_bytes[SHOAL_CERT_BYTES_MAX];
	size_t cert_len = 0, nkeys = 0;
	uint32_t used = 0;
	char sub[SHOAL_PATH_BYTES_MAX];
	int exists = 0, rc;

	assert(p && p->data_dir && p->fleet_dir && p->name);
	memset(&made, 0, sizeof made);
	memset(&ring, 0, sizeof ring);
	memset(&cert, 0, sizeof cert);
	memset(&node_kp, 0, sizeof node_kp);
	memset(&adm_kp, 0, sizeof adm_kp);

	/* 1. Check the request. */
	if (!identity_valid_name(p->name, SHOAL_NAME_BYTES_MAX)) {
		tfile_err(errbuf, errlen,
			  "invalid node name '%s': use 1..%d characters of A-Z a-z 0-9 . _ -",
			  p->name, SHOAL_NAME_BYTES_MAX);
		return SHOAL_EINVAL;
	}
	if (p->tags_count > SHOAL_TAGS_COUNT_MAX) {
		tfile_err(errbuf, errlen, "at most %d tags", SHOAL_TAGS_COUNT_MAX);
		return SHOAL_ETOOBIG;
	}
	for (size_t i = 0; i < p->tags_count; i++) {
		if (!identity_valid_name(p->tags[i], SHOAL_TAG_BYTES_MAX)) {
			tfile_err(errbuf, errlen,
				  "invalid tag '%s': use 1..%d characters of A-Z a-z 0-9 . _ -",
				  p->tags[i], SHOAL_TAG_BYTES_MAX);
			return SHOAL_EINVAL;
		}
	}
	if (p->expires_ms <= p->now_ms) {
		tfile_err(errbuf, errlen, "expiry must be in the future");
		return SHOAL_EINVAL;
	}
	if (p->admission_key_paths_count > SHOAL_ADMISSION_KEYS_MAX) {
		tfile_err(errbuf, errlen, "at most %d admission keys", SHOAL_ADMISSION_KEYS_MAX);
		return SHOAL_ETOOBIG;
	}
	if ((rc = dir_absent_or_empty(p->data_dir, &exists, NULL, 0)) != 0) {
		if (file_exists(p->data_dir, "node.cert") || file_exists(p->data_dir, "keys") ||
		    file_exists(p->data_dir, "fleet"))
			tfile_err(errbuf, errlen,
				  "%s already holds a node (node.cert, keys/ or fleet/); "
				  "refusing to overwrite it", p->data_dir);
		else
			tfile_err(errbuf, errlen, "%s exists and is not empty; choose a new directory",
				  p->data_dir);
		return SHOAL_EEXIST;
	}

	/* 2. Load the fleet and build and sign the certificate in memory. */
	if ((rc = fleet_load_public(p->fleet_dir, &f, &ring, errbuf, errlen)) != 0)
		goto out;
	if (p->admission_key_paths_count > 0) {
		nkeys = p->admission_key_paths_count;
		for (size_t i = 0; i < nkeys; i++)
			snprintf(key_paths[i], SHOAL_PATH_BYTES_MAX, "%s", p->admission_key_paths[i]);
	} else if ((rc = list_admission_keys(p->fleet_dir, key_paths, &nkeys, errbuf, errlen)) != 0) {
		goto out;
	}

	keys_generate(&node_kp);
	memcpy(cert.fleet_id, f.fleet_id, sizeof cert.fleet_id);
	memcpy(cert.node_id, node_kp.pk, sizeof cert.node_id);
	snprintf(cert.name, sizeof cert.name, "%s", p->name);
	cert.tags_count = (uint8_t)p->tags_count;
	for (size_t i = 0; i < p->tags_count; i++)
		snprintf(cert.tags[i], sizeof cert.tags[i], "%s", p->tags[i]);
	cert.issued_ms = p->now_ms;
	cert.expires_ms = p->expires_ms;

	for (size_t i = 0; i < nkeys && cert.sigs_count < SHOAL_ADMISSION_SIGS_MAX; i++) {
		uint8_t index = 0;
		if ((rc = load_admission_key(key_paths[i], &f, &adm_kp, &index, errbuf, errlen)) != 0)
			goto out;
		if (used & (1u << index))
			continue; /* the same key given twice signs once */
		used |= 1u << index;
		rc = cert_sign(&cert, index, adm_kp.sk);
		sodium_memzero(&adm_kp, sizeof adm_kp);
		if (rc != 0) {
			tfile_err(errbuf, errlen, "signing with %s: %s", key_paths[i],
				  shoal_strerror(rc));
			goto out;
		}
	}
	if (cert.sigs_count < f.threshold) {
		tfile_err(errbuf, errlen,
			  "the fleet needs %u admission signatures, only %u distinct admission "
			  "key(s) were available; pass more with --admission-key",
			  (unsigned)f.threshold, (unsigned)cert.sigs_count);
		rc = SHOAL_EUNADMITTED;
		goto out;
	}
	/* Check with the same code the agent runs, before anything is written. */
	if ((rc = cert_verify(&cert, &f, p->now_ms)) != 0) {
		tfile_err(errbuf, errlen, "new certificate does not verify: %s", shoal_strerror(rc));
		goto out;
	}
	if ((rc = cert_encode(&cert, cert_bytes, sizeof cert_bytes, &cert_len)) != 0) {
		tfile_err(errbuf, errlen, "encoding the certificate: %s", shoal_strerror(rc));
		goto out;
	}

	/* 3. Write: dirs, fleet copies, key, and the certificate last. */
	if (exists) {
		if (chmod(p->data_dir, 0700) != 0) {
			tfile_err(errbuf, errlen, "chmod(%s): %s", p->data_dir, strerror(errno));
			rc = SHOAL_EIO;
			goto out;
		}
	} else if ((rc = make_dir(&made, p->data_dir, errbuf, errlen)) != 0) {
		goto out;
	}
	if (tfile_join(sub, sizeof sub, p->data_dir, "fleet") != 0) {
		tfile_err(errbuf, errlen, "%s: path too long", p->data_dir);
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	if ((rc = make_dir(&made, sub, errbuf, errlen)) != 0 ||
	    (rc = write_fleet_files(&made, sub, &f, &ring, errbuf, errlen)) != 0)
		goto out;
	if (tfile_join(sub, sizeof sub, p->data_dir, "keys") != 0) {
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	if ((rc = make_dir(&made, sub, errbuf, errlen)) != 0)
		goto out;
	{
		char path[SHOAL_PATH_BYTES_MAX];
		if (tfile_join(path, sizeof path, sub, "node.key") != 0) {
			rc = SHOAL_ETOOBIG;
			goto out;
		}
		if ((rc = keys_save(path, &node_kp)) != 0) {
			tfile_err(errbuf, errlen, "write(%s): %s", path, shoal_strerror(rc));
			goto out;
		}
		created_add(&made, path, 0);
	}
	if ((rc = write_in(&made, p->data_dir, "node.cert", cert_bytes, cert_len, 0644, errbuf,
			   errlen)) != 0)
		goto out;
	if (cert_out)
		*cert_out = cert;
out:
	if (rc != 0)
		created_undo(&made);
	sodium_memzero(&node_kp, sizeof node_kp);
	sodium_memzero(&adm_kp, sizeof adm_kp);
	sodium_memzero(&ring, sizeof ring);
	return rc;
}

int node_identity_load(const char *data_dir, struct node_identity *out, uint64_t now_ms,
		       char *errbuf, size_t errlen)
{
	struct node_identity tmp; /* holds secrets: wiped on every exit */
	char path[SHOAL_PATH_BYTES_MAX];
	int rc;

	assert(data_dir && out);
	memset(&tmp, 0, sizeof tmp);
	if (tfile_join(path, sizeof path, data_dir, "keys/node.key") != 0) {
		tfile_err(errbuf, errlen, "%s: path too long", data_dir);
		return SHOAL_ETOOBIG;
	}
	if ((rc = keys_load(path, &tmp.kp, errbuf, errlen)) != 0)
		goto out;

	if (tfile_join(path, sizeof path, data_dir, "node.cert") != 0) {
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	rc = tfile_read(path, tmp.cert_bytes, sizeof tmp.cert_bytes, &tmp.cert_len, 0, errbuf,
			errlen);
	if (rc != 0)
		goto out;
	if ((rc = cert_decode(tmp.cert_bytes, tmp.cert_len, &tmp.cert)) != 0) {
		tfile_err(errbuf, errlen, "%s: not a valid admission certificate (%s)", path,
			  shoal_strerror(rc));
		goto out;
	}
	if (sodium_memcmp(tmp.cert.node_id, tmp.kp.pk, SHOAL_NODE_ID_BYTES) != 0) {
		tfile_err(errbuf, errlen,
			  "%s: certificate is for another node key than keys/node.key", path);
		rc = SHOAL_EUNADMITTED;
		goto out;
	}

	if (tfile_join(path, sizeof path, data_dir, "fleet") != 0) {
		rc = SHOAL_ETOOBIG;
		goto out;
	}
	if ((rc = fleet_load_public(path, &tmp.fleet, &tmp.ring, errbuf, errlen)) != 0)
		goto out;
	if ((rc = cert_verify(&tmp.cert, &tmp.fleet, now_ms)) != 0) {
		const char *why = rc == SHOAL_EEXPIRED ? "expired; run shoal init again with a new data dir"
				  : rc == SHOAL_EFLEET ? "belongs to another fleet than fleet/fleet.id"
				  : rc == SHOAL_EUNADMITTED ? "has fewer admission signatures than the fleet threshold"
				  : shoal_strerror(rc);
		tfile_err(errbuf, errlen, "%s/node.cert: %s", data_dir, why);
		goto out;
	}
	*out = tmp;
out:
	node_identity_wipe(&tmp);
	return rc;
}

void node_identity_wipe(struct node_identity *n)
{
	assert(n);
	sodium_memzero(n, sizeof *n);
}
