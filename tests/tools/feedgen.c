/*
 * feedgen.c — test-only helper that writes feed records into a node's
 * state.db through the real store API (store/feed.h), so script tests can
 * drive `shoal log` without a user-facing way to forge records. Built next
 * to the `shoal` binary; never installed.
 *
 *   feedgen append DATA KIND BODY [COUNT]  own feed, key DATA/keys/node.key
 *   feedgen announce DATA                  own feed, a well-formed announce body
 *   feedgen peer DATA SEED N               N records by the key made from the
 *                                          byte SEED, delivered newest first;
 *                                          prints author=HEX
 *   feedgen equivocate DATA SEED SEQ       a second, different record at SEQ
 *                                          of that peer's feed; prints the result
 *   feedgen names DATA HEX=NAME...         membership snapshot with these names
 *
 * Peer feeds are deterministic (fixed key, times and bodies), so `peer` and
 * `equivocate` agree on the records before SEQ. Exit 0 on success, 1 on a
 * store error (message on stderr), 2 on bad arguments.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/announce.h"
#include "core/record.h"
#include "shoal/hex.h"
#include "store/feed.h"
#include "store/store.h"
#include "trust/identity.h"

#define PEER_T0_MS 1700000000000ull
#define PEERS_RECORDS_MAX 10000
#define NAMES_MAX 16

static int usage(void)
{
	fprintf(stderr, "usage: feedgen append DATA KIND BODY [COUNT] | announce DATA |\n"
			"       peer DATA SEED N | equivocate DATA SEED SEQ | names DATA HEX=NAME...\n");
	return 2;
}

static struct feed *open_feed(const char *dir)
{
	struct feed *f = NULL;
	char err[FEED_ERR_BYTES];
	if (feed_open(dir, &f, err, sizeof err) != 0) {
		fprintf(stderr, "feedgen: %s\n", err);
		exit(1);
	}
	return f;
}

static void load_key(const char *dir, struct shoal_keypair *kp)
{
	char path[4096], err[512];
	snprintf(path, sizeof path, "%s/keys/node.key", dir);
	if (keys_load(path, kp, err, sizeof err) != 0) {
		fprintf(stderr, "feedgen: %s\n", err);
		exit(1);
	}
}

static void print_record(const struct record *r)
{
	uint8_t h[RECORD_HASH_BYTES];
	char hex[2 * RECORD_HASH_BYTES + 1];
	record_hash(r, h);
	hex_encode(h, sizeof h, hex);
	printf("seq=%llu hash=%s\n", (unsigned long long)r->seq, hex);
}

static int cmd_append(int argc, char **argv)
{
	if (argc < 5 || argc > 6)
		return usage();
	uint8_t kind = record_kind_from_name(argv[3]);
	long count = argc == 6 ? strtol(argv[5], NULL, 10) : 1;
	if (kind == 0 || count < 1 || count > PEERS_RECORDS_MAX)
		return usage();
	struct shoal_keypair kp;
	load_key(argv[2], &kp);
	struct feed *f = open_feed(argv[2]);
	int rc = 0;
	for (long i = 0; i < count && rc == 0; i++) {
		struct record r;
		rc = feed_append(f, kp.sk, kind, PEER_T0_MS + (uint64_t)i, argv[4], strlen(argv[4]), &r);
		if (rc)
			fprintf(stderr, "feedgen: append: %s\n", feed_errmsg());
		else
			print_record(&r);
	}
	feed_close(f);
	sodium_memzero(&kp, sizeof kp);
	return rc ? 1 : 0;
}

static int cmd_announce(int argc, char **argv)
{
	if (argc != 3)
		return usage();
	struct announce a;
	memset(&a, 0, sizeof a);
	a.count = 2;
	a.files[0].role = ANNOUNCE_TIMESTAMP;
	a.files[0].version = 5;
	a.files[0].length = 1234;
	a.files[1].role = ANNOUNCE_SNAPSHOT;
	a.files[1].version = 5;
	a.files[1].length = 2345;
	memset(a.files[0].sha256, 0x11, 32);
	memset(a.files[1].sha256, 0x22, 32);
	uint8_t body[SHOAL_RECORD_BODY_MAX];
	size_t len = 0;
	if (announce_encode(&a, body, sizeof body, &len) != 0) {
		fprintf(stderr, "feedgen: announce_encode failed\n");
		return 1;
	}
	struct shoal_keypair kp;
	load_key(argv[2], &kp);
	struct feed *f = open_feed(argv[2]);
	struct record r;
	int rc = feed_append(f, kp.sk, RECORD_ANNOUNCE, PEER_T0_MS, body, len, &r);
	if (rc)
		fprintf(stderr, "feedgen: announce: %s\n", feed_errmsg());
	else
		print_record(&r);
	feed_close(f);
	sodium_memzero(&kp, sizeof kp);
	return rc ? 1 : 0;
}

/* The peer feed made from seed byte s: records 1..n into r[0..n). */
static void peer_chain(uint8_t s, size_t n, struct record *r, struct shoal_keypair *kp)
{
	uint8_t seed[32];
	memset(seed, s, sizeof seed);
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
	for (size_t i = 0; i < n; i++) {
		record_next(&r[i], kp->pk, i ? &r[i - 1] : NULL);
		r[i].kind = i % 2 ? RECORD_ALERT : RECORD_HEALTH;
		r[i].time_ms = PEER_T0_MS + 1000 * i;
		r[i].body_len = (uint32_t)snprintf((char *)r[i].body, sizeof r[i].body,
						   "peer=%u n=%zu", s, i + 1);
		record_sign(&r[i], kp->sk);
	}
}

static bool parse_count(const char *s, long max, long *out)
{
	char *end = NULL;
	*out = strtol(s, &end, 10);
	return *s && !*end && *out >= 1 && *out <= max;
}

static int cmd_peer(int argc, char **argv)
{
	long seed, n;
	if (argc != 5 || !parse_count(argv[3], 255, &seed) ||
	    !parse_count(argv[4], PEERS_RECORDS_MAX, &n))
		return usage();
	struct record *r = calloc((size_t)n, sizeof *r);
	struct shoal_keypair kp;
	if (!r)
		return 1;
	peer_chain((uint8_t)seed, (size_t)n, r, &kp);
	char hex[2 * SHOAL_NODE_ID_BYTES + 1];
	hex_encode(kp.pk, sizeof kp.pk, hex);
	printf("author=%s\n", hex);
	struct feed *f = open_feed(argv[2]);
	int rc = 0;
	for (long i = n - 1; i >= 0 && rc == 0; i--) {
		enum feed_put_result res;
		rc = feed_put(f, &r[i], PEER_T0_MS, &res);
		if (rc)
			fprintf(stderr, "feedgen: put seq %ld: %s\n", i + 1, feed_errmsg());
	}
	feed_close(f);
	free(r);
	return rc ? 1 : 0;
}

static int cmd_equivocate(int argc, char **argv)
{
	long seed, seq;
	if (argc != 5 || !parse_count(argv[3], 255, &seed) ||
	    !parse_count(argv[4], PEERS_RECORDS_MAX, &seq))
		return usage();
	struct record *r = calloc((size_t)seq, sizeof *r);
	struct shoal_keypair kp;
	if (!r)
		return 1;
	peer_chain((uint8_t)seed, (size_t)seq, r, &kp);
	struct record *x = &r[seq - 1];
	x->body_len = (uint32_t)snprintf((char *)x->body, sizeof x->body, "peer=%ld n=%ld forked",
					 seed, seq);
	record_sign(x, kp.sk);
	struct feed *f = open_feed(argv[2]);
	enum feed_put_result res = 0;
	int rc = feed_put(f, x, PEER_T0_MS + 5000, &res);
	printf("rc=%s result=%s\n", shoal_strerror(rc), rc == 0 || res ? feed_put_result_name(res) : "-");
	feed_close(f);
	free(r);
	return rc == 0 || (rc == SHOAL_EPROTO && res == FEED_BROKEN_LINK) ? 0 : 1;
}

static int cmd_names(int argc, char **argv)
{
	if (argc < 4 || argc - 3 > NAMES_MAX)
		return usage();
	struct store_member m[NAMES_MAX];
	memset(m, 0, sizeof m);
	size_t n = 0;
	for (int i = 3; i < argc; i++, n++) {
		const char *eq = strchr(argv[i], '=');
		if (!eq || eq - argv[i] != 2 * SHOAL_NODE_ID_BYTES ||
		    strlen(eq + 1) > SHOAL_NAME_BYTES_MAX)
			return usage();
		char hex[2 * SHOAL_NODE_ID_BYTES + 1];
		memcpy(hex, argv[i], 2 * SHOAL_NODE_ID_BYTES);
		hex[2 * SHOAL_NODE_ID_BYTES] = '\0';
		if (hex_decode(hex, m[n].id, SHOAL_NODE_ID_BYTES) != 0)
			return usage();
		strcpy(m[n].name, eq + 1);
		m[n].state = MEMBER_ALIVE;
	}
	struct store *s = NULL;
	char err[STORE_ERR_BYTES];
	if (store_open(argv[2], &s, err, sizeof err) != 0) {
		fprintf(stderr, "feedgen: %s\n", err);
		return 1;
	}
	int rc = store_save_members(s, m, n, PEER_T0_MS);
	if (rc)
		fprintf(stderr, "feedgen: save members: %s\n", store_errmsg(s));
	store_close(s);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0 || argc < 3)
		return usage();
	if (strcmp(argv[1], "append") == 0)
		return cmd_append(argc, argv);
	if (strcmp(argv[1], "announce") == 0)
		return cmd_announce(argc, argv);
	if (strcmp(argv[1], "peer") == 0)
		return cmd_peer(argc, argv);
	if (strcmp(argv[1], "equivocate") == 0)
		return cmd_equivocate(argc, argv);
	if (strcmp(argv[1], "names") == 0)
		return cmd_names(argc, argv);
	return usage();
}
