/*
 * cmd_log.c — `shoal log`: audit the signed feeds in DATA/state.db.
 *
 *   shoal log [list]   records, filtered by author and kind
 *   shoal log verify   every signature, hash, link and summary, from scratch
 *   shoal log evidence equivocations and broken links, with both records
 *
 * It opens the database read-only with its own connection (store/feed.h),
 * so it works the same whether or not an agent is running and never
 * changes the file. Everything printed came from other nodes: bodies and
 * names are shown with control bytes replaced, so no record can drive the
 * terminal.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/announce.h"
#include "core/record.h"
#include "shoal/hex.h"
#include "shoal/limits.h"
#include "store/feed.h"

extern const struct cli_command cmd_log;

#define ID_PREFIX_CHARS 16   /* hex digits of an author id in tables */
#define HASH_PREFIX_CHARS 8  /* hex digits of a record hash in tables */
#define BODY_SUMMARY_CHARS 60 /* body text shown per line */
#define BODY_HEX_BYTES 12    /* bytes of a binary body shown as hex */
#define SUMMARY_BYTES 160    /* one formatted body summary */
#define FAULTS_SHOWN_MAX 1000 /* faults printed by verify; the rest are counted */
#define AUTHOR_MATCHES_SHOWN 5 /* candidates named when --author is ambiguous */
#define HEX_ID_BYTES (2 * SHOAL_NODE_ID_BYTES + 1)

enum sub { SUB_LIST, SUB_VERIFY, SUB_EVIDENCE };

struct opts {
	enum sub sub;
	const char *data_dir;
	const char *author; /* --author argument, NULL if none */
	uint8_t kind;       /* 0: any */
	bool json;
};

/* Authors held, sorted by id, with their names from the members table. */
struct author_info {
	uint8_t id[SHOAL_NODE_ID_BYTES];
	char hex[HEX_ID_BYTES];
	char name[SHOAL_NAME_BYTES_MAX + 1]; /* "" if unknown; cleaned */
	uint64_t seq_max;
};

struct authors {
	struct author_info *a;
	size_t n;
};

/* --- formatting --------------------------------------------------------- */

/* Replaces control bytes (and DEL) with '?', in place. */
static void clean(char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch == 0x7f)
			*s = '?';
	}
}

static const char *iso_ms(uint64_t ms, char out[64])
{
	/* Authors' clocks are informational and may be anything: beyond year
	 * 9999 print the number. */
	if (ms > 253402300799999ull) {
		snprintf(out, 64, "%llu", (unsigned long long)ms);
		return out;
	}
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&s, &tm)) {
		snprintf(out, 64, "%llu", (unsigned long long)ms);
		return out;
	}
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
	return out;
}

/* True if the body is UTF-8 text without control bytes (tabs allowed). */
static bool body_is_text(const struct record *r)
{
	if (r->body_len == 0)
		return false;
	for (uint32_t i = 0; i < r->body_len; i++) {
		uint8_t ch = r->body[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	json_t *s = json_stringn((const char *)r->body, r->body_len); /* validates UTF-8 */
	if (!s)
		return false;
	json_decref(s);
	return true;
}

static void announce_summary(const struct announce *a, char *out, size_t cap)
{
	size_t len = 0;
	int n = snprintf(out, cap, "announce:");
	len = n > 0 ? (size_t)n : 0;
	for (uint8_t i = 0; i < a->count && len < cap; i++) {
		n = snprintf(out + len, cap - len, "%s %s v%u", i ? "," : "",
			     announce_role_name(a->files[i].role), (unsigned)a->files[i].version);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* One line about the body: text (cut), a decoded announce, or hex. */
static const char *body_summary(const struct record *r, char out[SUMMARY_BYTES])
{
	struct announce a;
	if (r->body_len == 0) {
		strcpy(out, "-");
	} else if (r->kind == RECORD_ANNOUNCE &&
		   announce_decode(r->body, r->body_len, &a) == 0) {
		announce_summary(&a, out, SUMMARY_BYTES);
	} else if (body_is_text(r)) {
		size_t n = r->body_len;
		bool cut = n > BODY_SUMMARY_CHARS;
		if (cut) {
			n = BODY_SUMMARY_CHARS;
			/* Do not split a UTF-8 sequence. */
			while (n > 0 && (r->body[n] & 0xc0) == 0x80)
				n--;
		}
		memcpy(out, r->body, n);
		strcpy(out + n, cut ? "..." : "");
		for (size_t i = 0; i < n; i++)
			if (out[i] == '\t')
				out[i] = ' ';
	} else {
		size_t shown = r->body_len < BODY_HEX_BYTES ? r->body_len : BODY_HEX_BYTES;
		char hex[2 * BODY_HEX_BYTES + 1];
		hex_encode(r->body, shown, hex);
		snprintf(out, SUMMARY_BYTES, "[%u bytes] %s%s", (unsigned)r->body_len, hex,
			 shown < r->body_len ? "..." : "");
	}
	return out;
}

static json_t *json_u64(uint64_t v)
{
	/* JSON integers here are signed 64-bit; an author's clock may not be. */
	if (v <= (uint64_t)INT64_MAX)
		return json_integer((json_int_t)v);
	char s[24];
	snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	return json_string(s);
}

static void set_new(json_t *o, const char *key, json_t *v)
{
	if (json_object_set_new(o, key, v ? v : json_null()) != 0) {
		fputs("shoal log: out of memory\n", stderr);
		exit(1);
	}
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char buf[2 * SHOAL_RECORD_BYTES_MAX + 1];
	if (2 * n + 1 > sizeof(buf))
		return NULL;
	hex_encode(p, n, buf);
	return json_string(buf);
}

/* A record as JSON. hash NULL: computed. with_encoding adds the whole
 * signed encoding, so evidence can be checked elsewhere. */
static json_t *record_json(const struct record *r, const uint8_t *hash, const char *name,
			   bool with_encoding)
{
	char when[64];
	uint8_t h[RECORD_HASH_BYTES];
	if (!hash) {
		record_hash(r, h);
		hash = h;
	}
	json_t *o = json_object();
	if (!o)
		return NULL;
	set_new(o, "author", hex_json(r->author, sizeof(r->author)));
	set_new(o, "name", name && name[0] ? json_string(name) : json_null());
	set_new(o, "seq", json_u64(r->seq));
	set_new(o, "kind", json_string(record_kind_name(r->kind)));
	set_new(o, "kind_code", json_integer(r->kind));
	set_new(o, "time_ms", json_u64(r->time_ms));
	set_new(o, "time", json_string(iso_ms(r->time_ms, when)));
	set_new(o, "hash", hex_json(hash, RECORD_HASH_BYTES));
	set_new(o, "prev", hex_json(r->prev, sizeof(r->prev)));
	set_new(o, "body_len", json_integer(r->body_len));
	if (body_is_text(r))
		set_new(o, "body", json_stringn((const char *)r->body, r->body_len));
	set_new(o, "body_hex", hex_json(r->body, r->body_len));
	if (with_encoding) {
		uint8_t buf[SHOAL_RECORD_BYTES_MAX];
		struct wr w = wr_init(buf, sizeof(buf));
		record_encode(&w, r);
		set_new(o, "encoded_hex", wr_ok(&w) ? hex_json(buf, w.len) : NULL);
	}
	return o;
}

static void print_json_line(json_t *o, bool first)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (!s) {
		fputs("shoal log: out of memory\n", stderr);
		exit(1);
	}
	printf("%s\n  %s", first ? "" : ",", s);
	free(s);
}

/* --- authors ------------------------------------------------------------- */

static int load_authors(struct feed *f, struct authors *out)
{
	struct feed_head *h = NULL;
	size_t n = 0;
	out->a = NULL;
	out->n = 0;
	int rc = feed_heads(f, &h, &n);
	if (rc)
		return cli_fail(cmd_log.name, "%s", feed_errmsg());
	if (n == 0)
		return 0;
	out->a = calloc(n, sizeof(*out->a));
	if (!out->a) {
		free(h);
		return cli_fail(cmd_log.name, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct author_info *a = &out->a[i];
		memcpy(a->id, h[i].author, sizeof(a->id));
		hex_encode(a->id, sizeof(a->id), a->hex);
		a->seq_max = h[i].seq_max;
		if (feed_author_name(f, a->id, a->name) != 0)
			a->name[0] = '\0';
		clean(a->name);
	}
	out->n = n;
	free(h);
	return 0;
}

/* heads come sorted by id (feed_heads), so this is a binary search. */
static const char *name_of(const struct authors *as, const uint8_t *id)
{
	size_t lo = 0, hi = as->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(as->a[mid].id, id, SHOAL_NODE_ID_BYTES);
		if (c == 0)
			return as->a[mid].name;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return "";
}

static bool is_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr("0123456789abcdefABCDEF", *s))
			return false;
	return true;
}

static bool hex_prefix(const char *hex, const char *arg)
{
	for (; *arg; arg++, hex++) {
		char c = *arg >= 'A' && *arg <= 'F' ? (char)(*arg - 'A' + 'a') : *arg;
		if (*hex != c)
			return false;
	}
	return true;
}

/* --author: a full id, an id prefix or a name prefix; exactly one author
 * held must match (an exact name or id wins over prefixes). Returns 0 or
 * an exit status (message printed). */
static int resolve_author(const struct authors *as, const char *arg, uint8_t out[SHOAL_NODE_ID_BYTES])
{
	size_t matches = 0, first = 0;
	bool hex = is_hex(arg) && strlen(arg) <= 2 * SHOAL_NODE_ID_BYTES;
	for (size_t i = 0; i < as->n; i++) {
		const struct author_info *a = &as->a[i];
		if (strcmp(a->name, arg) == 0 || (hex && strlen(arg) == 2 * SHOAL_NODE_ID_BYTES &&
						  hex_prefix(a->hex, arg))) {
			memcpy(out, a->id, SHOAL_NODE_ID_BYTES);
			return 0;
		}
	}
	for (size_t i = 0; i < as->n; i++) {
		const struct author_info *a = &as->a[i];
		bool by_name = a->name[0] && strncmp(a->name, arg, strlen(arg)) == 0;
		if (by_name || (hex && hex_prefix(a->hex, arg))) {
			if (matches == 0)
				first = i;
			matches++;
		}
	}
	if (matches == 1) {
		memcpy(out, as->a[first].id, SHOAL_NODE_ID_BYTES);
		return 0;
	}
	if (matches == 0)
		return cli_fail(cmd_log.name,
				"no feed here is by an author matching '%s' (%zu authors held; "
				"'shoal log' lists them)",
				arg, as->n);
	fprintf(stderr, "shoal log: '%s' matches %zu authors:", arg, matches);
	size_t shown = 0;
	bool by_name;
	for (size_t i = 0; i < as->n && shown < AUTHOR_MATCHES_SHOWN; i++) {
		const struct author_info *a = &as->a[i];
		by_name = a->name[0] && strncmp(a->name, arg, strlen(arg)) == 0;
		if (by_name || (hex && hex_prefix(a->hex, arg))) {
			fprintf(stderr, " %s(%.*s)", a->name, ID_PREFIX_CHARS, a->hex);
			shown++;
		}
	}
	fprintf(stderr, "%s; give more of the name or id\n", matches > shown ? " ..." : "");
	return 1;
}

/* --- options -------------------------------------------------------------- */

static int parse_opts(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->data_dir = SHOAL_DEFAULT_DATA_DIR;
	o->sub = SUB_LIST;
	int i = 1;
	if (i < argc && argv[i][0] != '-') {
		if (strcmp(argv[i], "list") == 0)
			o->sub = SUB_LIST;
		else if (strcmp(argv[i], "verify") == 0)
			o->sub = SUB_VERIFY;
		else if (strcmp(argv[i], "evidence") == 0)
			o->sub = SUB_EVIDENCE;
		else
			return cli_usage(&cmd_log, "unknown subcommand '%s' (list, verify, evidence)",
					 argv[i]);
		i++;
	}
	const char *v;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
		} else if (cli_opt_value(argc, argv, &i, "--data", &v)) {
			if (!v || !*v)
				return cli_usage(&cmd_log, "--data needs a directory");
			o->data_dir = v;
		} else if (cli_opt_value(argc, argv, &i, "--author", &v)) {
			if (!v || !*v)
				return cli_usage(&cmd_log, "--author needs a node name or id");
			if (o->sub == SUB_VERIFY)
				return cli_usage(&cmd_log, "log verify checks every feed; no --author");
			o->author = v;
		} else if (cli_opt_value(argc, argv, &i, "--kind", &v)) {
			if (!v || !*v)
				return cli_usage(&cmd_log, "--kind needs a record kind");
			if (o->sub != SUB_LIST)
				return cli_usage(&cmd_log, "--kind only filters the list");
			o->kind = record_kind_from_name(v);
			if (o->kind == 0)
				return cli_usage(&cmd_log,
						 "unknown kind '%s' (health, alert, halt, resume, announce)", v);
		} else {
			return cli_usage(&cmd_log, "unknown argument '%s'", argv[i]);
		}
	}
	return 0;
}

/* Opens the store read-only. *f stays NULL (return 0) when the database
 * exists but holds no feeds yet: an empty result, not an error. */
static int open_feeds(const struct opts *o, struct feed **f)
{
	char err[FEED_ERR_BYTES];
	*f = NULL;
	int rc = feed_open_readonly(o->data_dir, f, err, sizeof(err));
	if (rc == 0)
		return 0;
	char path[SHOAL_PATH_BYTES_MAX];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/state.db", o->data_dir);
	if (rc == SHOAL_ENOTFOUND && stat(path, &sb) == 0) {
		if (!o->json)
			fprintf(stderr, "shoal log: %s\n", err);
		return 0;
	}
	return cli_fail(cmd_log.name, "%s", err);
}

/* --- list ---------------------------------------------------------------- */

struct widths {
	int name, seq;
};

static void list_header(const struct widths *w)
{
	printf("%-*s  %-*s  %*s  %-8s  %-24s  %-*s  %s\n", ID_PREFIX_CHARS, "AUTHOR", w->name,
	       "NAME", w->seq, "SEQ", "KIND", "TIME", HASH_PREFIX_CHARS, "HASH", "BODY");
}

static void list_row(const struct widths *w, const struct feed_entry *e, const char *name)
{
	char hex[HEX_ID_BYTES], hash[2 * RECORD_HASH_BYTES + 1], when[64], body[SUMMARY_BYTES];
	hex_encode(e->rec.author, SHOAL_NODE_ID_BYTES, hex);
	hex_encode(e->hash, RECORD_HASH_BYTES, hash);
	body_summary(&e->rec, body);
	clean(body);
	printf("%.*s  %-*s  %*llu  %-8s  %-24s  %.*s  %s\n", ID_PREFIX_CHARS, hex, w->name,
	       name[0] ? name : "-", w->seq, (unsigned long long)e->rec.seq,
	       record_kind_name(e->rec.kind), iso_ms(e->rec.time_ms, when), HASH_PREFIX_CHARS,
	       hash, body);
}

static int run_list(const struct opts *o, struct feed *f, const struct authors *as)
{
	struct feed_filter flt;
	memset(&flt, 0, sizeof(flt));
	flt.kind = o->kind;
	if (o->author) {
		int rc = resolve_author(as, o->author, flt.author);
		if (rc)
			return rc;
		flt.by_author = true;
	}
	struct widths w = {4, 3};
	for (size_t i = 0; i < as->n; i++) {
		int len = (int)strlen(as->a[i].name);
		char digits[24];
		int d = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)as->a[i].seq_max);
		if (len > w.name)
			w.name = len;
		if (d > w.seq)
			w.seq = d;
	}
	struct feed_entry *e = calloc(SHOAL_FEED_RANGE_MAX, sizeof(*e));
	if (!e)
		return cli_fail(cmd_log.name, "out of memory");
	if (o->json)
		printf("{\"records\": [");
	else if (as->n)
		list_header(&w);
	bool first = true;
	size_t n = 0;
	int rc = 0;
	do {
		if (feed_list(f, &flt, SHOAL_FEED_RANGE_MAX, e, &n) != 0) {
			rc = cli_fail(cmd_log.name, "%s", feed_errmsg());
			break;
		}
		for (size_t i = 0; i < n; i++) {
			const char *name = name_of(as, e[i].rec.author);
			if (o->json) {
				json_t *j = record_json(&e[i].rec, e[i].hash, name, false);
				if (j)
					set_new(j, "received_ms", json_u64(e[i].received_ms));
				print_json_line(j, first);
				json_decref(j);
			} else {
				list_row(&w, &e[i], name);
			}
			first = false;
		}
		if (n) {
			flt.has_cursor = true;
			memcpy(flt.after_author, e[n - 1].rec.author, SHOAL_NODE_ID_BYTES);
			flt.after_seq = e[n - 1].rec.seq;
		}
	} while (n == SHOAL_FEED_RANGE_MAX);
	if (o->json)
		printf("%s]}\n", first ? "" : "\n");
	free(e);
	return rc;
}

/* --- verify ---------------------------------------------------------------- */

struct vctx {
	const struct opts *o;
	const struct authors *as;
	json_t *faults; /* JSON mode */
	uint64_t seen;
};

static void on_fault(void *ctx, const uint8_t *author, uint64_t seq, const char *what)
{
	struct vctx *v = ctx;
	v->seen++;
	if (v->seen > FAULTS_SHOWN_MAX)
		return;
	char hex[HEX_ID_BYTES] = "-", text[256];
	const char *name = "";
	if (author) {
		hex_encode(author, SHOAL_NODE_ID_BYTES, hex);
		name = name_of(v->as, author);
	}
	snprintf(text, sizeof(text), "%s", what);
	clean(text);
	if (v->o->json) {
		json_t *j = json_object();
		if (!j)
			return;
		set_new(j, "author", author ? json_string(hex) : json_null());
		set_new(j, "name", name[0] ? json_string(name) : json_null());
		set_new(j, "seq", seq ? json_u64(seq) : json_null());
		set_new(j, "what", json_string(text));
		json_array_append_new(v->faults, j);
		return;
	}
	printf("fault: author=%s%s%s seq=", hex, name[0] ? " name=" : "", name);
	if (seq)
		printf("%llu", (unsigned long long)seq);
	else
		printf("-");
	printf(": %s\n", text);
}

static int run_verify(const struct opts *o, struct feed *f, const struct authors *as)
{
	struct feed_verify_result res;
	memset(&res, 0, sizeof(res));
	struct vctx v = {.o = o, .as = as};
	if (o->json && !(v.faults = json_array()))
		return cli_fail(cmd_log.name, "out of memory");
	if (f && feed_verify(f, on_fault, &v, &res) != 0) {
		json_decref(v.faults);
		return cli_fail(cmd_log.name, "%s", feed_errmsg());
	}
	if (o->json) {
		json_t *j = json_object();
		if (!j)
			return cli_fail(cmd_log.name, "out of memory");
		set_new(j, "ok", json_boolean(res.faults == 0));
		set_new(j, "records", json_u64(res.records));
		set_new(j, "authors", json_u64(res.authors));
		set_new(j, "evidence", json_u64(res.evidence));
		set_new(j, "equivocating_authors", json_u64(res.equivocating_authors));
		set_new(j, "faults_total", json_u64(res.faults));
		set_new(j, "faults", v.faults);
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		if (res.faults > FAULTS_SHOWN_MAX)
			printf("... %llu more faults not shown\n",
			       (unsigned long long)(res.faults - FAULTS_SHOWN_MAX));
		printf("checked %llu records of %llu authors and %llu evidence rows: ",
		       (unsigned long long)res.records, (unsigned long long)res.authors,
		       (unsigned long long)res.evidence);
		if (res.faults)
			printf("%llu fault%s\n", (unsigned long long)res.faults,
			       res.faults == 1 ? "" : "s");
		else
			printf("no faults\n");
		if (res.equivocating_authors)
			printf("note: %llu author%s marked equivocating (signed contradicting "
			       "records); see 'shoal log evidence'\n",
			       (unsigned long long)res.equivocating_authors,
			       res.equivocating_authors == 1 ? " is" : "s are");
	}
	return res.faults ? 1 : 0;
}

/* --- evidence ----------------------------------------------------------------- */

static void evidence_record_line(const char *label, const struct record *r)
{
	char hash[2 * RECORD_HASH_BYTES + 1], when[64], body[SUMMARY_BYTES];
	uint8_t h[RECORD_HASH_BYTES];
	record_hash(r, h);
	hex_encode(h, sizeof(h), hash);
	body_summary(r, body);
	clean(body);
	printf("  %-10s seq %llu  hash %.*s  %s  %s  %s\n", label, (unsigned long long)r->seq,
	       HASH_PREFIX_CHARS, hash, iso_ms(r->time_ms, when), record_kind_name(r->kind), body);
}

static int run_evidence(const struct opts *o, struct feed *f, const struct authors *as)
{
	uint8_t author[SHOAL_NODE_ID_BYTES];
	if (o->author) {
		int rc = resolve_author(as, o->author, author);
		if (rc)
			return rc;
	}
	struct feed_evidence *e = calloc(SHOAL_FEED_RANGE_MAX, sizeof(*e));
	if (!e)
		return cli_fail(cmd_log.name, "out of memory");
	if (o->json)
		printf("{\"evidence\": [");
	int64_t after = 0;
	size_t n = 0, total = 0;
	int rc = 0;
	do {
		if (feed_evidence_list(f, o->author ? author : NULL, after, SHOAL_FEED_RANGE_MAX, e,
				       &n) != 0) {
			rc = cli_fail(cmd_log.name, "%s", feed_errmsg());
			break;
		}
		for (size_t i = 0; i < n; i++) {
			const struct feed_evidence *x = &e[i];
			const char *name = name_of(as, x->author);
			char hex[HEX_ID_BYTES], when[64];
			hex_encode(x->author, sizeof(x->author), hex);
			if (o->json) {
				json_t *j = json_object();
				if (!j)
					break;
				set_new(j, "id", json_integer(x->id));
				set_new(j, "kind", json_string(feed_evidence_kind_name((int)x->kind)));
				set_new(j, "author", json_string(hex));
				set_new(j, "name", name[0] ? json_string(name) : json_null());
				set_new(j, "seq", json_u64(x->seq));
				set_new(j, "received_ms", json_u64(x->received_ms));
				set_new(j, "held", record_json(&x->held, NULL, name, true));
				set_new(j, "offending", record_json(&x->offending, NULL, name, true));
				print_json_line(j, total == 0);
				json_decref(j);
			} else {
				printf("evidence %lld: %s by %s%s%.*s%s at seq %llu, received %s\n",
				       (long long)x->id, feed_evidence_kind_name((int)x->kind),
				       name[0] ? name : "", name[0] ? " (" : "", ID_PREFIX_CHARS, hex,
				       name[0] ? ")" : "", (unsigned long long)x->seq,
				       iso_ms(x->received_ms, when));
				evidence_record_line("held:", &x->held);
				evidence_record_line("offending:", &x->offending);
			}
			total++;
		}
		if (n)
			after = e[n - 1].id;
	} while (n == SHOAL_FEED_RANGE_MAX && rc == 0);
	if (o->json)
		printf("%s]}\n", total ? "\n" : "");
	else if (rc == 0 && total == 0)
		printf("no evidence: no author has signed contradicting records\n");
	free(e);
	return rc;
}

static int run_log(int argc, char **argv)
{
	struct opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc)
		return rc;
	struct feed *f = NULL;
	rc = open_feeds(&o, &f);
	if (rc)
		return rc;
	if (!f) {
		/* A database without feeds: nothing to list, nothing wrong. */
		if (o.sub == SUB_VERIFY)
			return run_verify(&o, NULL, &(struct authors){0});
		if (o.author)
			return cli_fail(cmd_log.name, "no feed here is by an author matching '%s' "
				       "(no feeds stored yet)", o.author);
		if (o.json)
			printf(o.sub == SUB_LIST ? "{\"records\": []}\n" : "{\"evidence\": []}\n");
		return 0;
	}
	struct authors as;
	rc = load_authors(f, &as);
	if (rc == 0) {
		switch (o.sub) {
		case SUB_LIST: rc = run_list(&o, f, &as); break;
		case SUB_VERIFY: rc = run_verify(&o, f, &as); break;
		case SUB_EVIDENCE: rc = run_evidence(&o, f, &as); break;
		}
	}
	free(as.a);
	feed_close(f);
	if (fflush(stdout) != 0)
		return cli_fail(cmd_log.name, "writing the output failed");
	return rc;
}

const struct cli_command cmd_log = {
	"log", "list, verify and audit the signed feeds (read-only)",
	"NAME\n"
	"    shoal log - list, verify and audit the signed feeds\n\n"
	"SYNOPSIS\n"
	"    shoal log [list] [--data DIR] [--author NAME|ID] [--kind KIND] [--json]\n"
	"    shoal log verify [--data DIR] [--json]\n"
	"    shoal log evidence [--data DIR] [--author NAME|ID] [--json]\n\n"
	"DESCRIPTION\n"
	"    Every node keeps the fleet's signed records (health reports, alerts,\n"
	"    halts, resumes, release announcements) in one append-only feed per\n"
	"    author, each record signed by its author and linked to the one before\n"
	"    by hash. shoal log reads them from DIR/state.db, read-only, whether or\n"
	"    not the agent runs; it never changes the file.\n\n"
	"    shoal log (or shoal log list) prints one line per record, by author\n"
	"    and seq:\n"
	"      AUTHOR  first 16 hex digits of the author's node id\n"
	"      NAME    the author's name from the last membership snapshot, or -\n"
	"      SEQ     position in the author's feed, from 1\n"
	"      KIND    health, alert, halt, resume or announce\n"
	"      TIME    the author's clock when it signed (informational), UTC\n"
	"      HASH    first 8 hex digits of the record's hash\n"
	"      BODY    the body as text (cut at 60 characters), a decoded\n"
	"              announce, or its size and first bytes in hex\n\n"
	"    shoal log verify re-checks everything stored from scratch: each\n"
	"    record's signature and hash, each link between consecutive records,\n"
	"    each author's summary (lowest and highest seq, count, head), and that\n"
	"    every piece of evidence really holds two conflicting records signed by\n"
	"    its author. It prints one line per fault:\n"
	"      fault: author=ID [name=NAME] seq=N: what is wrong\n"
	"    (seq=- for a fault about the whole feed), at most 1000 of them, then\n"
	"    a summary line. A fault means the file was changed outside shoal or\n"
	"    damaged; authors marked equivocating are noted but are not faults.\n\n"
	"    shoal log evidence lists the proof against authors who signed two\n"
	"    records that cannot both be true: an equivocation (two records with\n"
	"    one seq) or a broken link (a record that does not follow the one held\n"
	"    before or after it). Each entry shows the record held and the one\n"
	"    refused; with --json both come with their full signed encoding\n"
	"    (encoded_hex), which anyone can check against the author's key.\n\n"
	"OPTIONS\n"
	"    --data DIR        the node's data dir (default " SHOAL_DEFAULT_DATA_DIR ")\n"
	"    --author NAME|ID  only this author: a node name or name prefix, or a\n"
	"                      node id or id prefix (hex); it must match exactly\n"
	"                      one author held\n"
	"    --kind KIND       only records of this kind: health, alert, halt,\n"
	"                      resume or announce\n"
	"    --json            print JSON: {\"records\": [...]}, the verify result\n"
	"                      with a \"faults\" list, or {\"evidence\": [...]}; ids\n"
	"                      and hashes in full, bodies as \"body\" (when text)\n"
	"                      and \"body_hex\"\n\n"
	"EXIT STATUS\n"
	"    0 on success (verify: no faults); 1 if verify found a fault, the\n"
	"    database cannot be read, or --author matches no author or several;\n"
	"    2 on a usage error.\n\n"
	"EXAMPLES\n"
	"    shoal log --author web-01 --kind health\n"
	"    shoal log --kind alert --json | jq -r '.records[] | [.name, .body] | @tsv'\n"
	"    shoal log verify --data /srv/shoal || echo 'feed store damaged'\n"
	"    shoal log evidence --json > evidence.json\n",
	run_log,
};
