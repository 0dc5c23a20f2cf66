/*
 * config.c — the INI configuration and its flags (see shoal/config.h).
 *
 * One table lists every key with its section, type, range and default; the
 * file loader, the flag parser, the --help key list and config_print all
 * walk it, so a new key is one table row. The file is read whole (bounded),
 * checked for NUL bytes and over-long lines, then handed to inih.
 */
#include "shoal/config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/membership.h"

/* libinih (as packaged) reads lines of at most INI_MAX_LINE = 200 bytes and
 * silently splits longer ones; refuse them before inih sees them. The bound
 * is the smaller of inih's and ours. */
#define INIH_LINE_BYTES_MAX 198
#define CONFIG_LINE_BYTES_MAX \
	(INIH_LINE_BYTES_MAX < SHOAL_CONFIG_LINE_BYTES_MAX ? INIH_LINE_BYTES_MAX \
							   : SHOAL_CONFIG_LINE_BYTES_MAX)

enum key_type { KEY_PATH, KEY_ADDR, KEY_SEED, KEY_HTTP, KEY_LEVEL, KEY_U32, KEY_URL };

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint32_t min, max;  /* KEY_U32 only */
	const char *def;    /* default, as text */
	const char *help;
};

#define U32(sec, n, lo, hi, d, h) \
	{sec, #n, KEY_U32, offsetof(struct shoal_config, n), lo, hi, #d, h}

static const struct key_def keys[] = {
	{"agent", "data", KEY_PATH, offsetof(struct shoal_config, data), 0, 0,
	 "/var/lib/shoal", "data directory (keys, state, blobs)"},
	{"agent", "bind", KEY_ADDR, offsetof(struct shoal_config, bind), 0, 0,
	 "0.0.0.0:7946", "UDP and TCP address to listen on"},
	{"agent", "join", KEY_SEED, 0, 0, 0, "",
	 "seed peer IP:PORT to join through (repeatable)"},
	{"agent", "log_level", KEY_LEVEL, offsetof(struct shoal_config, log_level), 0, 0,
	 "info", "debug, info, warn or error"},
	{"agent", "http", KEY_HTTP, offsetof(struct shoal_config, http), 0, 0, "",
	 "loopback IP:PORT for the read-only HTTP API; empty = off"},
	U32("membership", probe_interval_ms, 1, 600000, 1000, "time between failure probes"),
	U32("membership", probe_timeout_ms, 1, 600000, 500,
	    "wait for a direct ACK before asking others (below probe_interval_ms)"),
	U32("membership", indirect_checks, 0, 16, 3, "members asked to probe indirectly"),
	U32("membership", suspicion_mult, 1, 100, 4, "suspicion timeout multiplier"),
	U32("membership", suspicion_max_timeout_mult, 1, 100, 6,
	    "max suspicion timeout as a multiple of the min"),
	U32("membership", awareness_max_multiplier, 1, 100, 8,
	    "max probe slow-down under poor local health (Lifeguard)"),
	U32("membership", gossip_interval_ms, 1, 600000, 200, "time between gossip rounds"),
	U32("membership", gossip_nodes, 1, 64, 3, "members gossiped to per round"),
	U32("membership", gossip_to_the_dead_ms, 0, 86400000, 30000,
	    "keep gossiping to dead members this long"),
	U32("membership", retransmit_mult, 1, 100, 4, "broadcast retransmit multiplier"),
	U32("membership", push_pull_interval_ms, 0, 86400000, 30000,
	    "full state sync with a random member; 0 = off"),
	U32("membership", dead_reclaim_ms, 0, 604800000, 0,
	    "forget dead/left members after this; 0 = keep"),
	U32("membership", reconnect_interval_ms, 0, 86400000, 30000,
	    "try a push-pull with a random dead member (heals partitions); 0 = off"),
	U32("membership", stream_pings, 0, 1, 1,
	    "1: a failing probe also asks the member over a stream (memberlist's TCP ping); "
	    "0: datagrams only"),
	U32("replication", sync_interval_ms, 0, 86400000, 10000,
	    "anti-entropy sync with a random member (mean interval); 0 = off"),
	U32("replication", feed_retention_s, 0, 315360000, 604800,
	    "drop received feed records older than this (each feed's head is kept); 0 = keep all"),
	{"replication", "upstream", KEY_URL, offsetof(struct shoal_config, upstream), 0, 0, "",
	 "http(s) URL of a TUF repository (URL/metadata/, URL/targets/) to pull releases from "
	 "and announce to the mesh; empty = off"},
	U32("replication", upstream_interval_ms, SHOAL_UPSTREAM_INTERVAL_MS_MIN, 86400000, 60000,
	    "time between pulls from upstream"),
};

#define KEYS_COUNT (sizeof keys / sizeof keys[0])

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const struct key_def *find_key(const char *name)
{
	for (size_t i = 0; i < KEYS_COUNT; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int parse_level(const char *s, enum shoal_log_level *out)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum shoal_log_level)i;
			return 0;
		}
	}
	return SHOAL_EINVAL;
}

static const char *level_name(enum shoal_log_level l)
{
	switch (l) {
	case SHOAL_LOG_DEBUG: return "debug";
	case SHOAL_LOG_INFO: return "info";
	case SHOAL_LOG_WARN: return "warn";
	case SHOAL_LOG_ERROR: return "error";
	default: return "off";
	}
}

/* Strict decimal: digits only, no sign, no spaces, no overflow. */
static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v = 0;
	if (*s == '\0')
		return SHOAL_EINVAL;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return SHOAL_EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return SHOAL_EINVAL;
	}
	if (v < lo || v > hi)
		return SHOAL_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* An upstream repository URL: http:// or https://, a host, no query or
 * fragment (metadata/ and targets/ are appended to it), and nothing a URL
 * may not hold unescaped (spaces, control bytes, non-ASCII). */
static bool is_http_url(const char *s)
{
	size_t skip = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
	if (skip == 0 || s[skip] == '\0' || s[skip] == '/')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f || *p == '?' || *p == '#' || *p == '\\')
			return false;
	return true;
}

static bool is_loopback(const struct shoal_addr *a)
{
	static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	if (a->family == SHOAL_AF_INET)
		return a->ip[0] == 127;
	return a->family == SHOAL_AF_INET6 && memcmp(a->ip, v6_loopback, 16) == 0;
}

/* Quotes a bad value for an error message, cut short if long. */
static void shown(const char *value, char *out, size_t cap)
{
	size_t n = strlen(value);
	if (n + 1 <= cap) {
		memcpy(out, value, n + 1);
		return;
	}
	snprintf(out, cap, "%.*s...", (int)(cap - 4), value);
}

/* Sets one key; on error writes "expected ..., got '...'" (no key name). */
static int set_value(struct shoal_config *c, const struct key_def *k, const char *value,
		     char *err, size_t errlen)
{
	char *field = (char *)c + k->offset;
	char got[64];
	struct shoal_addr a;

	assert(c && k && value);
	shown(value, got, sizeof got);
	switch (k->type) {
	case KEY_PATH:
		if (value[0] == '\0' || strlen(value) >= SHOAL_PATH_BYTES_MAX) {
			errf(err, errlen, "expected a directory path of 1..%d bytes, got '%s'",
			     SHOAL_PATH_BYTES_MAX - 1, got);
			return SHOAL_ECONFIG;
		}
		strcpy(field, value);
		return 0;
	case KEY_ADDR:
	case KEY_SEED:
		if (addr_parse(value, &a) != 0 || strlen(value) >= SHOAL_ADDR_STR_MAX) {
			errf(err, errlen, "expected IP:PORT (e.g. 10.0.0.5:7946 or [::1]:7946), got '%s'",
			     got);
			return SHOAL_ECONFIG;
		}
		if (k->type == KEY_ADDR) {
			strcpy(field, value);
			return 0;
		}
		if (c->join_count >= SHOAL_SEEDS_MAX) {
			errf(err, errlen, "at most %d seeds, got another: '%s'", SHOAL_SEEDS_MAX, got);
			return SHOAL_ECONFIG;
		}
		strcpy(c->join[c->join_count++], value);
		return 0;
	case KEY_HTTP:
		if (value[0] == '\0') {
			field[0] = '\0';
			return 0;
		}
		if (addr_parse(value, &a) != 0 || strlen(value) >= SHOAL_ADDR_STR_MAX ||
		    !is_loopback(&a) || a.port == 0) {
			errf(err, errlen,
			     "expected a loopback IP:PORT (e.g. 127.0.0.1:7947) or empty, got '%s'",
			     got);
			return SHOAL_ECONFIG;
		}
		strcpy(field, value);
		return 0;
	case KEY_URL:
		if (value[0] == '\0') {
			field[0] = '\0';
			return 0;
		}
		if (strlen(value) >= SHOAL_UPSTREAM_URL_BYTES_MAX || !is_http_url(value)) {
			errf(err, errlen,
			     "expected an http:// or https:// URL of at most %d bytes, without "
			     "spaces, query or fragment (or empty), got '%s'",
			     SHOAL_UPSTREAM_URL_BYTES_MAX - 1, got);
			return SHOAL_ECONFIG;
		}
		strcpy(field, value);
		return 0;
	case KEY_LEVEL: {
		enum shoal_log_level l;
		if (parse_level(value, &l) != 0) {
			errf(err, errlen, "expected debug, info, warn or error, got '%s'", got);
			return SHOAL_ECONFIG;
		}
		c->log_level = l;
		return 0;
	}
	case KEY_U32: {
		uint32_t v;
		if (parse_u32(value, k->min, k->max, &v) != 0) {
			errf(err, errlen, "expected an integer %u..%u, got '%s'", k->min, k->max, got);
			return SHOAL_ECONFIG;
		}
		memcpy(field, &v, sizeof v);
		return 0;
	}
	}
	assert(0 && "unknown key type");
	return SHOAL_ECONFIG;
}

void config_defaults(struct shoal_config *c)
{
	assert(c);
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		if (keys[i].type == KEY_SEED)
			continue;
		int rc = set_value(c, &keys[i], keys[i].def, NULL, 0);
		assert(rc == 0 && "every default is valid");
		(void)rc;
	}
	assert(c->join_count == 0);
}

int config_set(struct shoal_config *c, const char *key, const char *value, char *err,
	       size_t errlen)
{
	char msg[256];
	assert(c && key && value);
	const struct key_def *k = find_key(key);
	if (!k) {
		errf(err, errlen, "%s: unknown key", key);
		return SHOAL_ECONFIG;
	}
	if (set_value(c, k, value, msg, sizeof msg) != 0) {
		errf(err, errlen, "%s: %s", key, msg);
		return SHOAL_ECONFIG;
	}
	return 0;
}

/* Converts "probe-interval-ms" to "probe_interval_ms"; false if too long. */
static bool flag_to_key(const char *flag, char *out, size_t cap)
{
	size_t n = strlen(flag);
	if (n + 1 > cap)
		return false;
	for (size_t i = 0; i <= n; i++)
		out[i] = flag[i] == '-' ? '_' : flag[i];
	return true;
}

bool config_is_flag(const char *flag)
{
	char key[64];
	return flag_to_key(flag, key, sizeof key) && strchr(flag, '_') == NULL &&
	       find_key(key) != NULL;
}

int config_apply_flag(struct shoal_config *c, const char *flag, const char *value, char *err,
		      size_t errlen)
{
	char key[64], msg[256];
	assert(c && flag && value);
	if (!config_is_flag(flag) || !flag_to_key(flag, key, sizeof key)) {
		errf(err, errlen, "--%s: unknown option", flag);
		return SHOAL_ECONFIG;
	}
	const struct key_def *k = find_key(key);
	assert(k);
	if (k->type == KEY_SEED && !c->join_from_flags) {
		/* Seeds given on the command line replace the file's. */
		struct shoal_config tmp = *c;
		tmp.join_count = 0;
		if (set_value(&tmp, k, value, msg, sizeof msg) != 0) {
			errf(err, errlen, "--%s: %s", flag, msg);
			return SHOAL_ECONFIG;
		}
		tmp.join_from_flags = true;
		*c = tmp;
		return 0;
	}
	if (set_value(c, k, value, msg, sizeof msg) != 0) {
		errf(err, errlen, "--%s: %s", flag, msg);
		return SHOAL_ECONFIG;
	}
	return 0;
}

int config_validate(const struct shoal_config *c, char *err, size_t errlen)
{
	assert(c);
	assert(c->join_count <= SHOAL_SEEDS_MAX);
	if (c->probe_timeout_ms >= c->probe_interval_ms) {
		errf(err, errlen,
		     "[membership] probe_timeout_ms (%u) must be less than probe_interval_ms (%u)",
		     c->probe_timeout_ms, c->probe_interval_ms);
		return SHOAL_ECONFIG;
	}
	return 0;
}

/* --- file loading ------------------------------------------------------ */

struct load_ctx {
	struct shoal_config *c;
	const char *path;
	char *err;
	size_t errlen;
	int err_line;            /* first line with an error, 0 if none */
	uint32_t seen;           /* bit per non-repeatable key given */
	/* Our own line reader over the buffer: the packaged inih does not pass
	 * line numbers to the handler, but calls it right after reading the
	 * line, so the reader's count is the handler's line. */
	const char *next;
	int line;
};

/* An fgets() over the in-memory file for ini_parse_stream. Lines were checked
 * to fit inih's buffer, so each call returns exactly one line. */
static char *read_line(char *out, int cap, void *stream)
{
	struct load_ctx *x = stream;
	const char *p = x->next;
	if (*p == '\0')
		return NULL;
	const char *nl = strchr(p, '\n');
	size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
	assert(cap > 0);
	if (n > (size_t)cap - 1)
		n = (size_t)cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	x->next = p + n;
	x->line++;
	return out;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *x = user;
	int line = x->line;
	char msg[256];
	if (x->err_line)
		return 1; /* report only the first error */
	if (section[0] == '\0') {
		errf(x->err, x->errlen, "%s:%d: %s: key outside any section (put it under [agent], "
			"[membership] or [replication])", x->path, line, name);
		goto fail;
	}
	if (strcmp(section, "agent") != 0 && strcmp(section, "membership") != 0 &&
	    strcmp(section, "replication") != 0) {
		errf(x->err, x->errlen, "%s:%d: [%s]: unknown section (expected [agent], "
			"[membership] or [replication])", x->path, line, section);
		goto fail;
	}
	const struct key_def *k = find_key(name);
	if (!k) {
		errf(x->err, x->errlen, "%s:%d: [%s] %s: unknown key", x->path, line, section, name);
		goto fail;
	}
	if (strcmp(k->section, section) != 0) {
		errf(x->err, x->errlen, "%s:%d: [%s] %s: this key belongs in [%s]", x->path, line,
		     section, name, k->section);
		goto fail;
	}
	size_t bit = (size_t)(k - keys);
	assert(KEYS_COUNT <= 32);
	if (k->type != KEY_SEED && (x->seen & (1u << bit))) {
		errf(x->err, x->errlen, "%s:%d: [%s] %s: given more than once", x->path, line,
		     section, name);
		goto fail;
	}
	x->seen |= 1u << bit;
	if (set_value(x->c, k, value, msg, sizeof msg) != 0) {
		errf(x->err, x->errlen, "%s:%d: [%s] %s: %s", x->path, line, section, name, msg);
		goto fail;
	}
	return 1;
fail:
	x->err_line = line;
	return 0;
}

/* Reads the file into buf (NUL-terminated), bounded. */
static int read_config(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		errf(err, errlen, "open(%s): %s", path, strerror(e));
		return e == ENOENT ? SHOAL_ENOTFOUND : SHOAL_ECONFIG;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errf(err, errlen, "read(%s): %s", path, strerror(errno));
			close(fd);
			return SHOAL_ECONFIG;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {
			errf(err, errlen, "%s: larger than %d bytes", path,
			     SHOAL_CONFIG_FILE_BYTES_MAX);
			close(fd);
			return SHOAL_ECONFIG;
		}
	}
	close(fd);
	buf[got] = '\0';
	/* inih stops at a NUL and splits long lines: refuse both up front. */
	if (memchr(buf, '\0', got)) {
		errf(err, errlen, "%s: contains a NUL byte; not a text file", path);
		return SHOAL_ECONFIG;
	}
	int line = 1;
	size_t start = 0;
	for (size_t i = 0; i <= got; i++) {
		if (i == got || buf[i] == '\n') {
			size_t n = i - start; /* a '\r' counts: inih keeps it */
			if (n > CONFIG_LINE_BYTES_MAX) {
				errf(err, errlen, "%s:%d: line longer than %d bytes", path, line,
				     CONFIG_LINE_BYTES_MAX);
				return SHOAL_ECONFIG;
			}
			line++;
			start = i + 1;
		}
	}
	return 0;
}

int config_load_file(struct shoal_config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx x = {c, path, err, errlen, 0, 0, NULL, 0};
	int rc;

	assert(c && path);
	char *buf = malloc(SHOAL_CONFIG_FILE_BYTES_MAX + 1);
	if (!buf) {
		errf(err, errlen, "%s: out of memory", path);
		return SHOAL_ENOMEM;
	}
	rc = read_config(path, buf, SHOAL_CONFIG_FILE_BYTES_MAX + 1, err, errlen);
	if (rc != 0)
		goto out;
	x.next = buf;
	int line = ini_parse_stream(read_line, &x, on_key, &x);
	if (line < 0) {
		errf(err, errlen, "%s: out of memory while parsing", path);
		rc = SHOAL_ENOMEM;
		goto out;
	}
	/* inih reports the first bad line; a syntax error before our first
	 * handler error is the one to show. */
	if (line > 0 && (x.err_line == 0 || line < x.err_line)) {
		errf(err, errlen,
		     "%s:%d: syntax error (expected 'key = value', '[section]' or a '#' comment)",
		     path, line);
		rc = SHOAL_ECONFIG;
		goto out;
	}
	if (x.err_line) {
		rc = SHOAL_ECONFIG;
		goto out;
	}
	if (config_validate(c, err, errlen) != 0) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s: %s", path, err ? err : "");
		errf(err, errlen, "%s", msg);
		rc = SHOAL_ECONFIG;
	}
out:
	free(buf);
	return rc;
}

/* --- printing ----------------------------------------------------------- */

void config_print_keys(FILE *f)
{
	char flag[64];
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		const struct key_def *k = &keys[i];
		snprintf(flag, sizeof flag, "%s", k->name);
		for (char *p = flag; *p; p++)
			if (*p == '_')
				*p = '-';
		const char *arg = k->type == KEY_U32 ? "N" : k->type == KEY_PATH ? "DIR"
				: k->type == KEY_LEVEL ? "LEVEL" : k->type == KEY_URL ? "URL" : "IP:PORT";
		fprintf(f, "    --%s %s\n        [%s] %s: %s", flag, arg, k->section, k->name,
			k->help);
		if (k->type == KEY_U32)
			fprintf(f, " (%u..%u, default %s)\n", k->min, k->max, k->def);
		else if (k->def[0])
			fprintf(f, " (default %s)\n", k->def);
		else
			fprintf(f, "\n");
	}
}

void config_print(const struct shoal_config *c, FILE *f)
{
	const char *section = "";
	assert(c && f);
	for (size_t i = 0; i < KEYS_COUNT; i++) {
		const struct key_def *k = &keys[i];
		const char *field = (const char *)c + k->offset;
		if (strcmp(section, k->section) != 0) {
			fprintf(f, "%s[%s]\n", section[0] ? "\n" : "", k->section);
			section = k->section;
		}
		switch (k->type) {
		case KEY_SEED:
			for (size_t j = 0; j < c->join_count; j++)
				fprintf(f, "join = %s\n", c->join[j]);
			break;
		case KEY_LEVEL:
			fprintf(f, "%s = %s\n", k->name, level_name(c->log_level));
			break;
		case KEY_U32: {
			uint32_t v;
			memcpy(&v, field, sizeof v);
			fprintf(f, "%s = %u\n", k->name, v);
			break;
		}
		default:
			fprintf(f, "%s = %s\n", k->name, field);
			break;
		}
	}
}

void config_to_member(const struct shoal_config *c, struct member_config *m)
{
	assert(c && m);
	m->probe_interval_ms = c->probe_interval_ms;
	m->probe_timeout_ms = c->probe_timeout_ms;
	m->indirect_checks = c->indirect_checks;
	m->suspicion_mult = c->suspicion_mult;
	m->suspicion_max_timeout_mult = c->suspicion_max_timeout_mult;
	m->awareness_max_multiplier = c->awareness_max_multiplier;
	m->gossip_interval_ms = c->gossip_interval_ms;
	m->gossip_nodes = c->gossip_nodes;
	m->gossip_to_the_dead_ms = c->gossip_to_the_dead_ms;
	m->retransmit_mult = c->retransmit_mult;
	m->push_pull_interval_ms = c->push_pull_interval_ms;
	m->dead_reclaim_ms = c->dead_reclaim_ms;
	m->reconnect_interval_ms = c->reconnect_interval_ms;
	m->payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_ANY_CERT; /* the agent sets its own */
	m->stream_pings = c->stream_pings != 0; /* memberlist's TCP fallback */
	m->sim_gids = false; /* an agent reads and sends the wire's form only */
	assert(m->probe_interval_ms > 0);
}
