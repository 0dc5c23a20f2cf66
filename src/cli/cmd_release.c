/*
 * cmd_release.c — `shoal release`: the publisher's side of DESIGN 4.6. Makes
 * and signs a TUF 1.0 repository (src/trust/repo.c) that nodes, and any TUF
 * client, verify: init, add/remove/stage targets, sign in turn with offline
 * publisher keys, publish (snapshot and timestamp signed with the online
 * keys, the whole set swapped in at once), rotate the root, show status.
 * `publish --data DIR` then hands the repository to the local agent over its
 * control socket: {"cmd":"publish","repo":"/abs/path"}.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/control.h"
#include "shoal/limits.h"
#include "trust/cjson.h"
#include "trust/repo.h"

extern const struct cli_command cmd_release;

#define PUBLISHERS_DEFAULT 3
#define PUBLISHER_THRESHOLD_DEFAULT 2
#define OPT_LIST_MAX SHOAL_REPO_ROLE_KEYS_MAX

enum sub {
	SUB_INIT = 1 << 0,
	SUB_ADD = 1 << 1,
	SUB_REMOVE = 1 << 2,
	SUB_STAGE = 1 << 3,
	SUB_SIGN = 1 << 4,
	SUB_PUBLISH = 1 << 5,
	SUB_STATUS = 1 << 6,
	SUB_ROTATE = 1 << 7,
	SUB_KEYGEN = 1 << 8,
	SUB_DISCARD = 1 << 9,
};

static const struct {
	const char *name;
	enum sub sub;
	int positional; /* how many positional arguments it takes */
} subs[] = {
	{"init", SUB_INIT, 0},     {"add", SUB_ADD, 1},       {"remove", SUB_REMOVE, 1},
	{"stage", SUB_STAGE, 0},   {"sign", SUB_SIGN, 0},     {"publish", SUB_PUBLISH, 0},
	{"status", SUB_STATUS, 0}, {"rotate-root", SUB_ROTATE, 0}, {"keygen", SUB_KEYGEN, 0},
	{"discard", SUB_DISCARD, 0},
};

struct opts {
	enum sub sub;
	const char *repo, *key, *name, *custom, *data, *out, *role;
	unsigned root_keys, root_threshold, publishers, threshold, expires_days;
	bool json, allow_under, new_online;
	const char *pos[2];
	size_t npos;
	const char *adds[OPT_LIST_MAX], *removes[OPT_LIST_MAX], *thresholds[4];
	size_t nadds, nremoves, nthresholds;
};

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end = NULL;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Prints a usage error; evaluates to -1 (a failed option). */
#define USAGE_ERR(...) (cli_usage(&cmd_release, __VA_ARGS__), -1)

/* Matches option name at argv[*i]: 1 with *v set, 0 if it is another
 * option, -1 (message printed) if it lacks a value or the subcommand does
 * not take it (mask of enum sub). */
static int opt(const struct opts *o, int argc, char **argv, int *i, const char *name,
	       unsigned mask, const char **v)
{
	if (!cli_opt_value(argc, argv, i, name, v))
		return 0;
	if (!(o->sub & mask))
		return USAGE_ERR("%s is not an option of %s", name, argv[1]);
	if (!*v)
		return USAGE_ERR("%s needs a value", name);
	return 1;
}

static int flag(const struct opts *o, char **argv, int i, const char *name, unsigned mask)
{
	if (strcmp(argv[i], name) != 0)
		return 0;
	if (!(o->sub & mask))
		return USAGE_ERR("%s is not an option of %s", name, argv[1]);
	return 1;
}

static int take_list(const char **list, size_t *n, size_t max, const char *v, const char *name)
{
	if (*n == max)
		return USAGE_ERR("%s at most %zu times", name, max);
	list[(*n)++] = v;
	return 1;
}

static int take_uint(const char *v, const char *name, unsigned hi, unsigned *out)
{
	if (parse_uint(v, 1, hi, out) != 0)
		return USAGE_ERR("%s must be 1..%u, got '%s'", name, hi, v);
	return 1;
}

/* One option: which subcommands take it, and where its value goes.
 * Returns 1 if argv[*i] was an option, 0 if not, -1 on a usage error. */
static int take_opt(struct opts *o, int argc, char **argv, int *i)
{
	const char *v = NULL;
	int r;
	if ((r = opt(o, argc, argv, i, "--repo", ~(unsigned)SUB_KEYGEN, &v)) > 0)
		o->repo = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--key", SUB_SIGN, &v)) > 0)
		o->key = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--name", SUB_ADD, &v)) > 0)
		o->name = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--custom", SUB_ADD, &v)) > 0)
		o->custom = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--data", SUB_PUBLISH, &v)) > 0)
		o->data = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--out", SUB_KEYGEN, &v)) > 0)
		o->out = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--role", SUB_SIGN | SUB_DISCARD, &v)) > 0)
		o->role = v;
	else if (r == 0 && (r = opt(o, argc, argv, i, "--root-keys", SUB_INIT, &v)) > 0)
		r = take_uint(v, "--root-keys", SHOAL_REPO_ROLE_KEYS_MAX, &o->root_keys);
	else if (r == 0 && (r = opt(o, argc, argv, i, "--root-threshold", SUB_INIT, &v)) > 0)
		r = take_uint(v, "--root-threshold", SHOAL_REPO_ROLE_KEYS_MAX, &o->root_threshold);
	else if (r == 0 && (r = opt(o, argc, argv, i, "--publishers", SUB_INIT, &v)) > 0)
		r = take_uint(v, "--publishers", SHOAL_REPO_ROLE_KEYS_MAX, &o->publishers);
	else if (r == 0 && (r = opt(o, argc, argv, i, "--threshold", SUB_INIT | SUB_ROTATE, &v)) > 0)
		r = o->sub == SUB_ROTATE ? take_list(o->thresholds, &o->nthresholds, 4, v, "--threshold")
					 : take_uint(v, "--threshold", SHOAL_REPO_ROLE_KEYS_MAX, &o->threshold);
	else if (r == 0 && (r = opt(o, argc, argv, i, "--expires-days",
				    SUB_INIT | SUB_ADD | SUB_STAGE | SUB_PUBLISH | SUB_ROTATE, &v)) > 0)
		r = take_uint(v, "--expires-days", SHOAL_REPO_EXPIRES_DAYS_MAX, &o->expires_days);
	else if (r == 0 && (r = opt(o, argc, argv, i, "--add-key", SUB_ROTATE, &v)) > 0)
		r = take_list(o->adds, &o->nadds, OPT_LIST_MAX, v, "--add-key");
	else if (r == 0 && (r = opt(o, argc, argv, i, "--remove-key", SUB_ROTATE, &v)) > 0)
		r = take_list(o->removes, &o->nremoves, OPT_LIST_MAX, v, "--remove-key");
	else if (r == 0 && (r = flag(o, argv, *i, "--json", SUB_STATUS)) > 0)
		o->json = true;
	else if (r == 0 && (r = flag(o, argv, *i, "--allow-under-threshold", SUB_PUBLISH)) > 0)
		o->allow_under = true;
	else if (r == 0 && (r = flag(o, argv, *i, "--new-online-keys", SUB_ROTATE)) > 0)
		o->new_online = true;
	return r;
}

static int parse(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage(&cmd_release, "missing subcommand (init, add, remove, stage, sign, "
				 "publish, status, rotate-root, keygen, discard)");
	int npos_max = 0;
	for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
		if (strcmp(argv[1], subs[k].name) == 0) {
			o->sub = subs[k].sub;
			npos_max = subs[k].positional;
		}
	}
	if (!o->sub)
		return cli_usage(&cmd_release, "unknown subcommand '%s'", argv[1]);
	for (int i = 2; i < argc; i++) {
		int r = take_opt(o, argc, argv, &i);
		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			return cli_usage(&cmd_release, "unknown option '%s'", argv[i]);
		if ((int)o->npos >= npos_max)
			return cli_usage(&cmd_release, "unexpected argument '%s'", argv[i]);
		o->pos[o->npos++] = argv[i];
	}
	if ((int)o->npos < npos_max)
		return cli_usage(&cmd_release, "%s needs %s", argv[1], o->sub == SUB_ADD ? "FILE" : "NAME");
	if (o->sub != SUB_KEYGEN && !o->repo)
		return cli_usage(&cmd_release, "%s needs --repo DIR", argv[1]);
	return 0;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static const char *short_id(const char *id, char out[17])
{
	snprintf(out, 17, "%.16s", id ? id : "?");
	return out;
}

/* "publisher-2 (ab12cd34ef567890)" for a key id, with the key file's name
 * when the repository holds it. */
static const char *key_label(const json_t *key_files, const char *id, char *out, size_t n)
{
	char s[17];
	const char *file = json_string_value(json_object_get(key_files, id));
	if (file)
		snprintf(out, n, "%s (%s)", file, short_id(id, s));
	else
		snprintf(out, n, "%s", short_id(id, s));
	return out;
}

static void print_key_list(const char *label, const json_t *ids, const json_t *key_files)
{
	printf("  %-10s", label);
	if (json_array_size(ids) == 0)
		printf(" none");
	for (size_t i = 0; i < json_array_size(ids); i++) {
		char l[128];
		printf("%s %s", i ? "," : "", key_label(key_files, json_string_value(json_array_get(ids, i)), l, sizeof(l)));
	}
	printf("\n");
}

static void print_count(const char *what, const json_t *c)
{
	int64_t valid = json_integer_value(json_object_get(c, "valid"));
	int64_t thr = json_integer_value(json_object_get(c, "threshold"));
	printf("%s%" PRId64 " of %" PRId64 " signatures", what, valid, thr);
	if (valid >= thr)
		printf(" (threshold met)");
	else
		printf(" (needs %" PRId64 " more)", thr - valid);
}

static void print_names(const char *label, const json_t *a)
{
	if (json_array_size(a) == 0)
		return;
	printf("  %s:", label);
	for (size_t i = 0; i < json_array_size(a); i++)
		printf(" %s", json_string_value(json_array_get(a, i)));
	printf("\n");
}

static void print_target(const char *name, const json_t *info)
{
	const char *h = json_string_value(json_object_get(json_object_get(info, "hashes"), "sha256"));
	printf("  %s  %" PRId64 " bytes  sha256 %.16s", name,
	       (int64_t)json_integer_value(json_object_get(info, "length")), h ? h : "?");
	const json_t *custom = json_object_get(info, "custom");
	if (custom) {
		char *c = json_dumps(custom, JSON_COMPACT | JSON_SORT_KEYS);
		if (c && strlen(c) > 200)
			strcpy(c + 196, "...}");
		printf("  custom %s", c ? c : "?");
		free(c);
	}
	printf("\n");
}

static void print_status(const json_t *st)
{
	static const char *const roles[4] = {"root", "targets", "snapshot", "timestamp"};
	const json_t *kf = json_object_get(st, "key_files");
	printf("repository %s (generation %" PRId64 ")\n", json_string_value(json_object_get(st, "repo")),
	       (int64_t)json_integer_value(json_object_get(st, "generation")));
	printf("published:\n");
	for (int i = 0; i < 4; i++) {
		const json_t *m = json_object_get(st, roles[i]);
		const json_t *r = json_object_get(json_object_get(st, "roles"), roles[i]);
		printf("  %-10s v%-4" PRId64 " expires %s%s  threshold %" PRId64 " of %zu key(s)\n", roles[i],
		       (int64_t)json_integer_value(json_object_get(m, "version")),
		       json_string_value(json_object_get(m, "expires")),
		       json_is_true(json_object_get(m, "expired")) ? " (EXPIRED)" : "",
		       (int64_t)json_integer_value(json_object_get(r, "threshold")),
		       json_array_size(json_object_get(r, "keyids")));
	}
	printf("keys:\n");
	for (int i = 0; i < 4; i++)
		print_key_list(roles[i], json_object_get(json_object_get(json_object_get(st, "roles"), roles[i]), "keyids"), kf);
	const json_t *pt = json_object_get(st, "published_targets");
	printf("targets (%zu):\n", json_object_size(pt));
	const char *name;
	json_t *info;
	json_object_foreach((json_t *)pt, name, info)
		print_target(name, info);
	const json_t *staged = json_object_get(st, "staged");
	const json_t *sr = json_object_get(staged, "root"), *stg = json_object_get(staged, "targets");
	if (!sr && !stg)
		printf("nothing staged\n");
	if (sr) {
		printf("staged root v%" PRId64 " (expires %s): ",
		       (int64_t)json_integer_value(json_object_get(sr, "version")),
		       json_string_value(json_object_get(sr, "expires")));
		print_count("current root keys ", json_object_get(sr, "old_root"));
		print_count("; new root keys ", json_object_get(sr, "new_root"));
		printf("\n");
		print_key_list("signed", json_object_get(json_object_get(sr, "new_root"), "signed_by"), kf);
		for (int i = 0; i < 4; i++) {
			const json_t *r = json_object_get(json_object_get(sr, "roles"), roles[i]);
			char label[32];
			snprintf(label, sizeof(label), "%s(%" PRId64 ")", roles[i],
				 (int64_t)json_integer_value(json_object_get(r, "threshold")));
			print_key_list(label, json_object_get(r, "keyids"), kf);
		}
	}
	if (stg) {
		const json_t *sig = json_object_get(stg, "signatures");
		printf("staged targets v%" PRId64 " (expires %s%s): ",
		       (int64_t)json_integer_value(json_object_get(stg, "version")),
		       json_string_value(json_object_get(stg, "expires")),
		       json_is_true(json_object_get(stg, "expired")) ? ", EXPIRED" : "");
		print_count("", sig);
		printf("\n");
		print_names("added", json_object_get(stg, "added"));
		print_names("changed", json_object_get(stg, "changed"));
		print_names("removed", json_object_get(stg, "removed"));
		print_key_list("signed by", json_object_get(sig, "signed_by"), kf);
		print_key_list("missing", json_object_get(sig, "missing"), kf);
	}
}

static int show_status(struct repo *r, bool json)
{
	json_t *st = NULL;
	if (repo_status(r, now_s(), &st) != 0)
		return cli_fail("release", "status: out of memory");
	if (json) {
		char *s = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
		if (s)
			printf("%s\n", s);
		free(s);
	} else {
		print_status(st);
	}
	json_decref(st);
	return 0;
}

static int do_init(const struct opts *o)
{
	char err[1024];
	struct repo_create_params p = {
		.dir = o->repo,
		.root_keys = o->root_keys ? o->root_keys : 1,
		.root_threshold = o->root_threshold ? o->root_threshold : 1,
		.publishers = o->publishers ? o->publishers : PUBLISHERS_DEFAULT,
		.root_expires_days = o->expires_days ? o->expires_days : REPO_ROOT_EXPIRES_DAYS_DEFAULT,
		.targets_expires_days = REPO_TARGETS_EXPIRES_DAYS_DEFAULT,
		.online_expires_days = REPO_ONLINE_EXPIRES_DAYS_DEFAULT,
		.now_s = now_s(),
	};
	p.publisher_threshold = o->threshold ? o->threshold
					     : (p.publishers >= PUBLISHER_THRESHOLD_DEFAULT ? PUBLISHER_THRESHOLD_DEFAULT : 1);
	if (p.root_threshold > p.root_keys)
		return cli_usage(&cmd_release, "--root-threshold %u is more than the %u root keys",
				 p.root_threshold, p.root_keys);
	if (p.publisher_threshold > p.publishers)
		return cli_usage(&cmd_release, "--threshold %u is more than the %u publishers",
				 p.publisher_threshold, p.publishers);
	if (repo_create(&p, err, sizeof(err)) != 0)
		return cli_fail("release init", "%s", err);
	struct repo *r = NULL;
	if (repo_open(o->repo, &r, err, sizeof(err)) != 0)
		return cli_fail("release init", "created, but cannot open it: %s", err);
	json_t *st = NULL;
	if (repo_status(r, now_s(), &st) != 0) {
		repo_close(r);
		return cli_fail("release init", "out of memory");
	}
	const char *dir = repo_path(r);
	const json_t *kf = json_object_get(st, "key_files");
	printf("created TUF repository %s (spec %s, consistent snapshots)\n", dir, REPO_SPEC_VERSION);
	printf("  %s/metadata   published metadata (-> generations/1)\n", dir);
	printf("  %s/targets    published target files\n", dir);
	printf("  %s/staged     releases being prepared and signed\n", dir);
	printf("roles: root %u of %u, targets (publishers) %u of %u, snapshot 1 of 1, timestamp 1 of 1\n",
	       p.root_threshold, p.root_keys, p.publisher_threshold, p.publishers);
	printf("private keys (mode 0600) in %s/keys:\n", dir);
	static const char *const roles[4] = {"root", "targets", "snapshot", "timestamp"};
	for (int i = 0; i < 4; i++) {
		const json_t *ids = json_object_get(json_object_get(json_object_get(st, "roles"), roles[i]), "keyids");
		for (size_t k = 0; k < json_array_size(ids); k++) {
			const char *id = json_string_value(json_array_get(ids, k));
			char s[17];
			printf("  %-10s %s/keys/%s.key  keyid %s\n", roles[i], dir,
			       json_string_value(json_object_get(kf, id)), short_id(id, s));
		}
	}
	printf("Move the root-*.key and publisher-*.key files off this host now: root keys\n"
	       "to offline storage, one publisher key to each publisher. snapshot.key and\n"
	       "timestamp.key stay here for 'shoal release publish'.\n"
	       "Nodes trust this repository with: shoal init ... --root %s/metadata/1.root.json\n", dir);
	json_decref(st);
	repo_close(r);
	return 0;
}

/* Reads --custom JSON (or @FILE) as an object. */
static int read_custom(const char *arg, json_t **out)
{
	*out = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (arg[0] == '@') {
		FILE *f = fopen(arg + 1, "rb");
		if (!f)
			return cli_fail("release add", "open(%s): %s", arg + 1, strerror(errno));
		buf = malloc(SHOAL_REPO_CUSTOM_BYTES_MAX + 1);
		len = buf ? fread(buf, 1, SHOAL_REPO_CUSTOM_BYTES_MAX + 1, f) : 0;
		bool bad = !buf || ferror(f);
		fclose(f);
		if (bad) {
			free(buf);
			return cli_fail("release add", "read(%s) failed", arg + 1);
		}
	} else {
		len = strlen(arg);
		buf = malloc(len + 1);
		if (!buf)
			return cli_fail("release add", "out of memory");
		memcpy(buf, arg, len);
	}
	json_t *v = NULL;
	int rc = cjson_parse(buf, len, SHOAL_REPO_CUSTOM_BYTES_MAX, &v);
	free(buf);
	if (rc || !json_is_object(v)) {
		json_decref(v);
		return cli_fail("release add", "--custom: %s", rc == SHOAL_ETOOBIG
				? "over the bound on custom JSON (16 KiB)" : "not a JSON object");
	}
	*out = v;
	return 0;
}

static void print_dropped(unsigned dropped)
{
	if (dropped)
		printf("the change dropped %u signature(s): the staged targets must be signed again\n",
		       dropped);
}

static void print_staged_count(struct repo *r)
{
	json_t *st = NULL;
	if (repo_status(r, now_s(), &st) != 0)
		return;
	const json_t *stg = json_object_get(json_object_get(st, "staged"), "targets");
	if (stg) {
		printf("staged targets v%" PRId64 ": ", (int64_t)json_integer_value(json_object_get(stg, "version")));
		print_count("", json_object_get(stg, "signatures"));
		printf("\n");
	}
	json_decref(st);
}

static int do_add(struct repo *r, const struct opts *o)
{
	char err[1024];
	unsigned dropped = 0;
	json_t *custom = NULL;
	const char *name = o->name;
	if (!name) {
		const char *slash = strrchr(o->pos[0], '/');
		name = slash ? slash + 1 : o->pos[0];
	}
	if (o->custom && read_custom(o->custom, &custom) != 0)
		return 1;
	int rc = repo_add_target(r, o->pos[0], name, custom, now_s(), o->expires_days, &dropped, err, sizeof(err));
	json_decref(custom);
	if (rc)
		return cli_fail("release add", "%s", err);
	printf("staged target %s from %s\n", name, o->pos[0]);
	print_dropped(dropped);
	print_staged_count(r);
	return 0;
}

static int do_remove(struct repo *r, const struct opts *o)
{
	char err[1024];
	unsigned dropped = 0;
	if (repo_remove_target(r, o->pos[0], now_s(), &dropped, err, sizeof(err)) != 0)
		return cli_fail("release remove", "%s", err);
	printf("staged removal of target %s\n", o->pos[0]);
	print_dropped(dropped);
	print_staged_count(r);
	return 0;
}

static int do_stage(struct repo *r, const struct opts *o)
{
	char err[1024];
	unsigned dropped = 0;
	if (repo_stage_targets(r, now_s(), o->expires_days, &dropped, err, sizeof(err)) != 0)
		return cli_fail("release stage", "%s", err);
	print_dropped(dropped);
	print_staged_count(r);
	return 0;
}

static unsigned role_mask(const char *role)
{
	if (!role)
		return 0;
	if (strcmp(role, "root") == 0)
		return REPO_ROLE_ROOT;
	if (strcmp(role, "targets") == 0)
		return REPO_ROLE_TARGETS;
	return ~0u;
}

static int do_sign(struct repo *r, const struct opts *o)
{
	char err[1024], s[17];
	struct repo_sign_result res;
	unsigned mask = role_mask(o->role);
	if (!o->key)
		return cli_usage(&cmd_release, "sign needs --key KEYFILE");
	if (mask == ~0u)
		return cli_usage(&cmd_release, "--role must be root or targets");
	if (repo_sign(r, o->key, mask, &res, err, sizeof(err)) != 0)
		return cli_fail("release sign", "%s", err);
	if (res.signed_mask & REPO_ROLE_TARGETS)
		printf("signed the staged targets with key %s: %" PRId64 " of %" PRId64 " signatures%s\n",
		       short_id(res.keyid, s), res.targets.valid, res.targets.threshold,
		       res.targets.valid >= res.targets.threshold ? " (threshold met: ready to publish)" : "");
	if (res.signed_mask & REPO_ROLE_ROOT)
		printf("signed the staged root with key %s: %" PRId64 " of %" PRId64 " from the current "
		       "root keys, %" PRId64 " of %" PRId64 " from the new root keys\n", short_id(res.keyid, s),
		       res.root_old.valid, res.root_old.threshold, res.root_new.valid, res.root_new.threshold);
	return 0;
}

/* Hands the published repository to the agent serving data_dir. */
static int hand_to_agent(const char *data_dir, const char *repo)
{
	char err[1024];
	json_t *req = json_pack("{s:s,s:s}", "cmd", "publish", "repo", repo), *resp = NULL;
	if (!req)
		return cli_fail("release publish", "out of memory");
	int rc = control_request(data_dir, req, &resp, err, sizeof(err));
	json_decref(req);
	if (rc)
		return cli_fail("release publish", "published in %s, but not handed to the agent: %s",
				repo, err);
	const json_t *e = json_object_get(resp, "error");
	int status = 0;
	if (e) {
		status = cli_fail("release publish", "published in %s, but the agent refused it: %s",
				  repo, json_is_string(e) ? json_string_value(e) : "(error)");
	} else {
		char *s = json_dumps(resp, JSON_COMPACT | JSON_SORT_KEYS);
		printf("agent: %s\n", s ? s : "{}");
		free(s);
	}
	json_decref(resp);
	return status;
}

static int do_publish(struct repo *r, const struct opts *o)
{
	char err[1024];
	struct repo_publish_opts po = {.online_expires_days = o->expires_days,
				       .allow_under_threshold = o->allow_under};
	struct repo_publish_result res;
	if (repo_publish(r, now_s(), &po, &res, err, sizeof(err)) != 0)
		return cli_fail("release publish", "%s", err);
	printf("published generation %lu: root v%" PRId64 ", targets v%" PRId64 ", snapshot v%" PRId64
	       ", timestamp v%" PRId64 "\n", res.generation, res.root_version, res.targets_version,
	       res.snapshot_version, res.timestamp_version);
	if (res.under_threshold)
		printf("WARNING: published BELOW THRESHOLD (--allow-under-threshold, a drill): every TUF "
		       "client must reject this release\n");
	if (!o->data)
		return 0;
	return hand_to_agent(o->data, repo_path(r));
}

/* "ROLE=VALUE" into role (a static top-level name) and value. */
static int split_role(const char *arg, const char **role, const char **value)
{
	static const char *const roles[4] = {"root", "targets", "snapshot", "timestamp"};
	const char *eq = strchr(arg, '=');
	if (!eq)
		return -1;
	for (int i = 0; i < 4; i++) {
		if ((size_t)(eq - arg) == strlen(roles[i]) && strncmp(arg, roles[i], strlen(roles[i])) == 0) {
			*role = roles[i];
			*value = eq + 1;
			return 0;
		}
	}
	return -1;
}

static int do_rotate(struct repo *r, const struct opts *o)
{
	char err[1024];
	struct repo_rotation *rot = calloc(1, sizeof(*rot));
	if (!rot)
		return cli_fail("release rotate-root", "out of memory");
	int status = 0;
	for (size_t i = 0; i < o->nadds && !status; i++) {
		const char *file;
		if (split_role(o->adds[i], &rot->add[i].role, &file) != 0) {
			status = cli_usage(&cmd_release, "--add-key wants ROLE=PUBFILE, got '%s'", o->adds[i]);
		} else if (repo_read_public_key(file, rot->add[i].pk, err, sizeof(err)) != 0) {
			status = cli_fail("release rotate-root", "%s", err);
		}
		rot->add_count = i + 1;
	}
	for (size_t i = 0; i < o->nremoves && !status; i++) {
		if (split_role(o->removes[i], &rot->remove[i].role, &rot->remove[i].keyid) != 0)
			status = cli_usage(&cmd_release, "--remove-key wants ROLE=KEYID, got '%s'", o->removes[i]);
		rot->remove_count = i + 1;
	}
	for (size_t i = 0; i < o->nthresholds && !status; i++) {
		const char *v;
		if (split_role(o->thresholds[i], &rot->threshold[i].role, &v) != 0 ||
		    parse_uint(v, 1, SHOAL_REPO_ROLE_KEYS_MAX, &rot->threshold[i].threshold) != 0)
			status = cli_usage(&cmd_release, "--threshold wants ROLE=K (K 1..%d), got '%s'",
					   SHOAL_REPO_ROLE_KEYS_MAX, o->thresholds[i]);
		rot->threshold_count = i + 1;
	}
	rot->new_online_keys = o->new_online;
	rot->expires_days = o->expires_days;
	if (!status && repo_rotate_root(r, rot, now_s(), err, sizeof(err)) != 0)
		status = cli_fail("release rotate-root", "%s", err);
	free(rot);
	if (status)
		return status;
	json_t *st = NULL;
	if (repo_status(r, now_s(), &st) == 0) {
		const json_t *sr = json_object_get(json_object_get(st, "staged"), "root");
		printf("staged root v%" PRId64 ": sign it with a threshold of the current root keys "
		       "(%" PRId64 ") and of its own root keys (%" PRId64 "), then publish\n",
		       (int64_t)json_integer_value(json_object_get(sr, "version")),
		       (int64_t)json_integer_value(json_object_get(json_object_get(sr, "old_root"), "threshold")),
		       (int64_t)json_integer_value(json_object_get(json_object_get(sr, "new_root"), "threshold")));
		if (o->new_online)
			printf("new snapshot and timestamp keys are in %s/keys\n", repo_path(r));
		json_decref(st);
	}
	return 0;
}

static int do_keygen(const struct opts *o)
{
	char err[1024], id[65], pub[SHOAL_PATH_BYTES_MAX];
	if (!o->out)
		return cli_usage(&cmd_release, "keygen needs --out FILE");
	size_t n = strlen(o->out);
	int w = n > 4 && strcmp(o->out + n - 4, ".key") == 0
			? snprintf(pub, sizeof(pub), "%.*s.pub", (int)(n - 4), o->out)
			: snprintf(pub, sizeof(pub), "%s.pub", o->out);
	if (w < 0 || (size_t)w >= sizeof(pub))
		return cli_usage(&cmd_release, "--out path too long");
	if (repo_keygen(o->out, pub, id, err, sizeof(err)) != 0)
		return cli_fail("release keygen", "%s", err);
	printf("secret key  %s (mode 0600)\npublic key  %s\nkeyid       %s\n", o->out, pub, id);
	return 0;
}

static int run_release(int argc, char **argv)
{
	struct opts o;
	int rc = parse(argc, argv, &o);
	if (rc)
		return rc;
	if (o.sub == SUB_KEYGEN)
		return do_keygen(&o);
	if (o.sub == SUB_INIT)
		return do_init(&o);
	char err[1024];
	struct repo *r = NULL;
	if (repo_open(o.repo, &r, err, sizeof(err)) != 0)
		return cli_fail("release", "%s", err);
	switch (o.sub) {
	case SUB_ADD: rc = do_add(r, &o); break;
	case SUB_REMOVE: rc = do_remove(r, &o); break;
	case SUB_STAGE: rc = do_stage(r, &o); break;
	case SUB_SIGN: rc = do_sign(r, &o); break;
	case SUB_PUBLISH: rc = do_publish(r, &o); break;
	case SUB_STATUS: rc = show_status(r, o.json); break;
	case SUB_ROTATE: rc = do_rotate(r, &o); break;
	case SUB_DISCARD: {
		unsigned mask = role_mask(o.role), done = 0;
		if (mask == ~0u) {
			rc = cli_usage(&cmd_release, "--role must be root or targets");
			break;
		}
		/* each role on its own, to say what was there */
		for (unsigned m = REPO_ROLE_ROOT; m <= REPO_ROLE_TARGETS && rc == 0; m <<= 1) {
			if (mask && mask != m)
				continue;
			int d = repo_discard(r, m, err, sizeof(err));
			if (d == 0)
				done |= m;
			else if (d != SHOAL_ENOTFOUND)
				rc = cli_fail("release discard", "%s", err);
		}
		if (rc == 0 && !done)
			rc = cli_fail("release discard", "nothing staged%s", mask == REPO_ROLE_ROOT ? " for the root"
				      : mask == REPO_ROLE_TARGETS ? " for the targets" : "");
		if (done & REPO_ROLE_ROOT)
			printf("discarded the staged root\n");
		if (done & REPO_ROLE_TARGETS)
			printf("discarded the staged targets and their files\n");
		break;
	}
	default: rc = cli_usage(&cmd_release, "unknown subcommand"); break;
	}
	repo_close(r);
	return rc;
}

const struct cli_command cmd_release = {
	"release", "publisher tooling: create, sign and publish a TUF repository",
	"NAME\n"
	"    shoal release - create, sign and publish releases as a TUF 1.0 repository\n"
	"\n"
	"SYNOPSIS\n"
	"    shoal release init --repo DIR [--root-keys N] [--root-threshold K]\n"
	"                       [--publishers N] [--threshold K] [--expires-days D]\n"
	"    shoal release add --repo DIR FILE [--name NAME] [--custom JSON|@FILE]\n"
	"                      [--expires-days D]\n"
	"    shoal release remove --repo DIR NAME\n"
	"    shoal release stage --repo DIR [--expires-days D]\n"
	"    shoal release sign --repo DIR --key KEYFILE [--role root|targets]\n"
	"    shoal release publish --repo DIR [--data AGENT_DATA_DIR] [--expires-days D]\n"
	"                          [--allow-under-threshold]\n"
	"    shoal release status --repo DIR [--json]\n"
	"    shoal release rotate-root --repo DIR [--add-key ROLE=PUBFILE]...\n"
	"                      [--remove-key ROLE=KEYID]... [--threshold ROLE=K]...\n"
	"                      [--new-online-keys] [--expires-days D]\n"
	"    shoal release discard --repo DIR [--role root|targets]\n"
	"    shoal release keygen --out FILE\n"
	"\n"
	"DESCRIPTION\n"
	"    Releases (YARA rules, IOC lists) reach nodes as a TUF repository\n"
	"    (specification 1.0.31, ed25519 keys, canonical JSON, consistent\n"
	"    snapshots) that every node verifies before use, and that any TUF\n"
	"    client (python-tuf, tuf-js, go-tuf, shoal tuf) can read. A release\n"
	"    needs a threshold of publisher signatures: by default 2 of 3.\n"
	"\n"
	"    init         creates DIR with version 1 of every role and the keys:\n"
	"                 DIR/keys/root-N.key (root, offline), publisher-N.key\n"
	"                 (the targets role), snapshot.key and timestamp.key\n"
	"                 (online, used by publish), each with a NAME.pub.\n"
	"                 DIR/metadata and DIR/targets are what a web server or the\n"
	"                 agent serves; DIR/staged holds releases being prepared.\n"
	"                 Never serve DIR itself: it holds the keys.\n"
	"    add          stages FILE as target NAME (default: the file's base\n"
	"                 name; '/' makes directories) with its length, sha256\n"
	"                 and sha512, and --custom, any JSON object (the rollout\n"
	"                 policy travels here) in the next targets version.\n"
	"    remove       stages the removal of target NAME.\n"
	"    stage        stages the next targets version with no change but its\n"
	"                 expiry: to renew it, or to re-sign it with new keys.\n"
	"                 Any change to a staged version drops the signatures it\n"
	"                 has collected: they no longer cover it.\n"
	"    sign         adds the signature of KEYFILE to every staged document\n"
	"                 its role may sign: the targets if it is a publisher key,\n"
	"                 the root if it is a root key of the current or the new\n"
	"                 root. Publishers sign in turn, each with their own key\n"
	"                 (copy DIR/staged/targets.json to them and back, or share\n"
	"                 the repository). A key may sign once; a key of another\n"
	"                 role, or of no role, is refused.\n"
	"    publish      refuses a staged document below its threshold, naming\n"
	"                 how many of how many signatures it has; otherwise signs a\n"
	"                 new snapshot and timestamp with the online keys and\n"
	"                 switches DIR/metadata to the new set in one atomic\n"
	"                 rename: a reader sees the old release or the new one,\n"
	"                 never a mix, and a failed publish changes nothing. With\n"
	"                 nothing staged it renews snapshot and timestamp, which\n"
	"                 expire after 7 days: publish at least weekly (cron).\n"
	"                 With --data it then hands the repository to the agent\n"
	"                 serving that data dir, which spreads it to the fleet.\n"
	"    status       shows versions, expiry, keys, targets, and the staged\n"
	"                 documents with the signatures they have and lack.\n"
	"    rotate-root  stages root version N+1 with keys added or removed,\n"
	"                 thresholds changed, fresh online keys, or only a new\n"
	"                 expiry. It needs a threshold of signatures from the\n"
	"                 current root keys and from its own; nodes follow it.\n"
	"                 If it changes the publisher keys, stage targets and sign\n"
	"                 them with the new keys before publishing.\n"
	"    discard      drops staged documents (both unless --role).\n"
	"    keygen       makes a new ed25519 key pair for rotate-root: FILE\n"
	"                 (secret, mode 0600) and FILE.pub (FILE minus .key).\n"
	"\n"
	"OPTIONS\n"
	"    --repo DIR              the repository\n"
	"    --root-keys N           init: root keys (default 1)\n"
	"    --root-threshold K      init: root signatures needed (default 1)\n"
	"    --publishers N          init: publisher keys (default 3)\n"
	"    --threshold K           init: publisher signatures needed (default 2)\n"
	"    --threshold ROLE=K      rotate-root: new threshold of ROLE\n"
	"    --expires-days D        init, rotate-root: root lifetime (default 365);\n"
	"                            add, stage: targets lifetime (default 90);\n"
	"                            publish: snapshot and timestamp (default 7)\n"
	"    --name NAME             add: target name (A-Z a-z 0-9 . _ ~ + - and /)\n"
	"    --custom JSON|@FILE     add: the target's custom object\n"
	"    --key KEYFILE           sign: a shoal key file (mode 0600)\n"
	"    --role root|targets     sign, discard: only this staged document\n"
	"    --data DIR              publish: hand the repository to this agent\n"
	"    --allow-under-threshold publish: publish even below threshold. For\n"
	"                            drills only: every client must reject it\n"
	"    --add-key ROLE=PUBFILE  rotate-root: authorise a key (NAME.pub or a\n"
	"                            key file) for root, targets, snapshot or\n"
	"                            timestamp\n"
	"    --remove-key ROLE=KEYID rotate-root: remove a key (id or a unique\n"
	"                            prefix of 8+ hex digits, see status)\n"
	"    --new-online-keys       rotate-root: new snapshot and timestamp keys\n"
	"    --json                  status: machine-readable output\n"
	"    --out FILE              keygen: where to write the key\n"
	"\n"
	"EXIT STATUS\n"
	"    0 on success; 1 if the operation failed or was refused (below\n"
	"    threshold, key not authorised, already signed, expired, I/O; for\n"
	"    publish --data also when the agent is not running or refuses the\n"
	"    repository, although it was published in DIR); 2 on a usage error.\n"
	"\n"
	"EXAMPLES\n"
	"    shoal release init --repo /srv/rel\n"
	"    shoal release add --repo /srv/rel rules.yar --name rules/base.yar \\\n"
	"        --custom '{\"waves\":[\"0.01\",\"0.1\",\"0.5\",\"1\"],\"soak_s\":300}'\n"
	"    shoal release sign --repo /srv/rel --key ~/alice.key   # publisher 1\n"
	"    shoal release sign --repo /srv/rel --key ~/bob.key     # publisher 2\n"
	"    shoal release status --repo /srv/rel\n"
	"    shoal release publish --repo /srv/rel --data /var/lib/shoal\n"
	"    shoal release keygen --out root-2.key\n"
	"    shoal release rotate-root --repo /srv/rel --add-key root=root-2.pub \\\n"
	"        --remove-key root=ab12cd34\n"
	"    shoal release sign --repo /srv/rel --key /offline/root-1.key\n"
	"    shoal release sign --repo /srv/rel --key root-2.key\n"
	"    shoal release publish --repo /srv/rel\n",
	run_release,
};
