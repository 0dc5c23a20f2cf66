/* test_http.c — the read-only HTTP interface over real loopback sockets,
 * fetched with libcurl: the JSON APIs return exactly what the query function
 * built, /metrics is valid Prometheus text exposition line by line, the
 * dashboard's inline script is the one its CSP hash allows, anything but
 * GET/HEAD gets 405, bodies, query strings, escaped or unknown paths and
 * foreign Host headers are refused, non-loopback binds are refused, the
 * connection count is bounded, and after http_stop nothing answers. */
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <regex.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/http.h"
#include "shoal/error.h"
#include "shoal/limits.h"

/* --- the query function: JSON built here, shaped like the agent's --------- */

struct fx {
	struct http_server *srv;
	uint16_t port;
	json_t *status;
	json_t *members;
	atomic_bool fail;   /* answer NULL (agent busy or stopping) */
	atomic_int calls;
};

static json_t *on_query(void *arg, const char *what)
{
	struct fx *f = arg;
	atomic_fetch_add(&f->calls, 1);
	if (atomic_load(&f->fail))
		return NULL;
	if (strcmp(what, "status") == 0)
		return json_incref(f->status);
	if (strcmp(what, "members") == 0)
		return json_incref(f->members);
	return NULL;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->status = json_pack(
		"{s:s,s:s,s:s,s:s,s:i,s:i,s:b,s:i,s:{s:i,s:i,s:i,s:i},"
		"s:{s:i,s:i,s:i},s:{s:i,s:i},s:{s:i,s:i}}",
		"name", "n1", "id", "ab12cd34", "fleet", "f00d", "addr", "127.0.0.1:7946",
		"incarnation", 4, "health", 0, "leaving", 0, "uptime_s", 12,
		"members", "alive", 3, "suspect", 1, "dead", 0, "left", 2,
		"counters", "packets_sent", 5, "packets_received", 9, "weird-key.x", 7,
		"drops", "bad_mac", 2, "replayed", 0,
		"streams", "timeout", 1, "refused", 3);
	f->members = json_pack(
		"{s:[{s:s,s:s,s:s,s:s,s:i,s:[s],s:i,s:s,s:b},"
		"{s:s,s:s,s:s,s:s,s:i,s:[],s:i,s:s,s:b}]}",
		"members",
		"name", "n1", "id", "ab12cd34", "addr", "127.0.0.1:7946", "state", "alive",
		"incarnation", 4, "tags", "canary", "last_change_ms", 1764100000000,
		"last_change", "2025-11-25T19:46:40.000Z", "self", 1,
		"name", "n2", "id", "ef56", "addr", "127.0.0.1:7947", "state", "suspect",
		"incarnation", 1, "tags", "last_change_ms", 1764100001000,
		"last_change", "2025-11-25T19:46:41.000Z", "self", 0);
	assert_non_null(f->status);
	assert_non_null(f->members);
	char err[256] = "";
	int rc = http_start("127.0.0.1:0", on_query, f, &f->srv, err, sizeof(err));
	if (rc != 0)
		fail_msg("http_start: %s", err);
	f->port = http_port(f->srv);
	assert_int_not_equal(f->port, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	http_stop(f->srv);
	json_decref(f->status);
	json_decref(f->members);
	free(f);
	return 0;
}

/* --- a libcurl client --------------------------------------------------- */

struct resp {
	long status;
	char *body;
	size_t len;
	char headers[8192];
	CURLcode cc;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t add = size * n;
	char *q = realloc(r->body, r->len + add + 1);
	if (q == NULL)
		return 0;
	memcpy(q + r->len, p, add);
	r->body = q;
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct resp *r = arg;
	size_t add = size * n, have = strlen(r->headers);
	if (have + add + 1 < sizeof(r->headers)) {
		memcpy(r->headers + have, p, add);
		r->headers[have + add] = '\0';
	}
	return add;
}

static long fetch_timeout_ms = 5000;

/* One request; method NULL = GET; host NULL = curl's default Host. */
static void fetch_full(const char *base, const char *method, const char *path,
		       const char *body, const char *host, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	CURL *c = curl_easy_init();
	assert_non_null(c);
	char url[512];
	snprintf(url, sizeof(url), "%s%s", base, path);
	struct curl_slist *hdrs = NULL;
	char hh[256];
	if (host) {
		snprintf(hh, sizeof(hh), "Host: %s", host);
		hdrs = curl_slist_append(hdrs, hh);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send the path as written */
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, fetch_timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (method && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (method)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	r->cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
}

static void fetch(struct fx *f, const char *method, const char *path, struct resp *r)
{
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	fetch_full(base, method, path, NULL, NULL, r);
	assert_int_equal(r->cc, CURLE_OK);
}

/* Value of header `name` (case-insensitive) into out; false if absent. */
static bool header(const struct resp *r, const char *name, char *out, size_t out_size)
{
	size_t n = strlen(name);
	for (const char *p = r->headers; *p;) {
		const char *eol = strstr(p, "\r\n");
		if (eol == NULL)
			break;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			while (*v == ' ')
				v++;
			size_t len = (size_t)(eol - v);
			if (len >= out_size)
				len = out_size - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return true;
		}
		p = eol + 2;
	}
	return false;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* --- tests ---------------------------------------------------------------- */

static void api_returns_query_json(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char v[512];
	const char *paths[] = {"/api/status", "/api/members"};
	json_t *want[] = {f->status, f->members};
	for (int i = 0; i < 2; i++) {
		fetch(f, NULL, paths[i], &r);
		assert_int_equal(r.status, 200);
		assert_true(header(&r, "Content-Type", v, sizeof(v)));
		assert_string_equal(v, "application/json");
		assert_true(header(&r, "X-Content-Type-Options", v, sizeof(v)));
		assert_string_equal(v, "nosniff");
		assert_true(header(&r, "Content-Security-Policy", v, sizeof(v)));
		assert_non_null(strstr(v, "default-src 'none'"));
		json_error_t je;
		json_t *got = json_loads(r.body, 0, &je);
		if (got == NULL)
			fail_msg("%s: not JSON: %s", paths[i], je.text);
		assert_true(json_equal(got, want[i]));
		json_decref(got);
		resp_free(&r);
	}
	/* HEAD: same status and type, no body */
	fetch(f, "HEAD", "/api/status", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
	resp_free(&r);
}

static void query_failure_is_503(void **state)
{
	struct fx *f = *state;
	struct resp r;
	atomic_store(&f->fail, true);
	fetch(f, NULL, "/api/status", &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	fetch(f, NULL, "/metrics", &r);
	assert_int_equal(r.status, 503);
	resp_free(&r);
	atomic_store(&f->fail, false);
	fetch(f, NULL, "/api/members", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* Every line of the exposition, checked against the 0.0.4 text format:
 * samples match the sample grammar, comments are HELP or TYPE, each family
 * is typed once and before its samples. */
static void check_exposition(const char *text)
{
	regex_t sample, help, type;
	assert_int_equal(regcomp(&sample,
				 "^[a-zA-Z_:][a-zA-Z0-9_:]*([{][^}]*[}])? [0-9.e+-]+$",
				 REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&help, "^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* [^\n]+$",
				 REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regcomp(&type,
				 "^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge)$",
				 REG_EXTENDED | REG_NOSUB), 0);
	char typed[64][128];
	size_t ntyped = 0, nsamples = 0;
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	char *copy = strdup(text), *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#') {
			if (regexec(&help, line, 0, NULL, 0) == 0)
				continue;
			if (regexec(&type, line, 0, NULL, 0) != 0)
				fail_msg("bad comment line: '%s'", line);
			char name[128];
			assert_int_equal(sscanf(line, "# TYPE %127s", name), 1);
			for (size_t i = 0; i < ntyped; i++)
				if (strcmp(typed[i], name) == 0)
					fail_msg("family typed twice: %s", name);
			assert_true(ntyped < 64);
			snprintf(typed[ntyped++], sizeof(typed[0]), "%s", name);
			continue;
		}
		if (regexec(&sample, line, 0, NULL, 0) != 0)
			fail_msg("bad sample line: '%s'", line);
		char name[128];
		size_t n = strcspn(line, "{ ");
		assert_true(n < sizeof(name));
		memcpy(name, line, n);
		name[n] = '\0';
		bool found = false;
		for (size_t i = 0; i < ntyped; i++)
			found |= strcmp(typed[i], name) == 0;
		if (!found)
			fail_msg("sample before its TYPE: '%s'", line);
		nsamples++;
	}
	free(copy);
	assert_true(nsamples >= 10);
	regfree(&sample);
	regfree(&help);
	regfree(&type);
}

static void metrics_exposition(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char v[256];
	fetch(f, NULL, "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_non_null(strstr(v, "text/plain"));
	assert_non_null(strstr(v, "version=0.0.4"));
	const char *want[] = {
		"# HELP shoal_counters_packets_sent_total ",
		"# TYPE shoal_counters_packets_sent_total counter\n",
		"\nshoal_counters_packets_sent_total 5\n",
		"\nshoal_counters_packets_received_total 9\n",
		"\nshoal_counters_weird_key_x_total 7\n", /* name sanitized */
		"\nshoal_drops_bad_mac_total 2\n",
		"\nshoal_drops_replayed_total 0\n",
		"\nshoal_streams_timeout_total 1\n",
		"\nshoal_streams_refused_total 3\n",
		"# TYPE shoal_members gauge\n",
		"\nshoal_members{state=\"alive\"} 3\n",
		"\nshoal_members{state=\"suspect\"} 1\n",
		"\nshoal_members{state=\"left\"} 2\n",
		"# TYPE shoal_incarnation gauge\n",
		"\nshoal_incarnation 4\n",
		"\nshoal_health 0\n",
		"\nshoal_leaving 0\n",
		"\nshoal_uptime_seconds 12\n",
		"shoal_node_info{name=\"n1\",id=\"ab12cd34\",fleet=\"f00d\",addr=\"127.0.0.1:7946\"} 1\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (strstr(r.body, want[i]) == NULL)
			fail_msg("/metrics lacks '%s':\n%s", want[i], r.body);
	check_exposition(r.body);
	resp_free(&r);
}

/* Hostile-looking keys and label values still give valid exposition. */
static void metrics_render_sanitizes(void **state)
{
	json_t *st = json_pack("{s:s,s:i,s:{s:i,s:i,s:i,s:s,s:f},s:{s:i}}",
			       "name", "we\"ird\\na\nme", "health", 2,
			       "counters", "a-b", 1, "a_b", 2, "x y/z", 3, "text", "no",
			       "ratio", 0.5,
			       "members", "alive", 1);
	char *m = http_metrics_render(st);
	assert_non_null(m);
	/* a-b and a_b collapse to one name: the first wins, typed once */
	assert_non_null(strstr(m, "\nshoal_counters_a_b_total 1\n"));
	assert_null(strstr(m, "\nshoal_counters_a_b_total 2\n"));
	assert_non_null(strstr(m, "\nshoal_counters_x_y_z_total 3\n"));
	assert_non_null(strstr(m, "\nshoal_counters_ratio_total 0.5\n"));
	assert_null(strstr(m, "shoal_counters_text"));
	assert_non_null(strstr(m, "shoal_node_info{name=\"we\\\"ird\\\\na\\nme\"} 1\n"));
	assert_non_null(strstr(m, "\nshoal_health 2\n"));
	assert_null(strstr(m, "shoal_incarnation")); /* absent in status: absent here */
	free(m);
	json_decref(st);
	json_t *arr = json_array();
	assert_null(http_metrics_render(arr));
	json_decref(arr);
}

static void dashboard_page(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char v[1024];
	fetch(f, NULL, "/", &r);
	assert_int_equal(r.status, 200);
	assert_true(header(&r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "text/html; charset=utf-8");
	assert_true(header(&r, "X-Content-Type-Options", v, sizeof(v)));
	assert_string_equal(v, "nosniff");
	assert_non_null(strstr(r.body, "<!doctype html>"));
	assert_non_null(strstr(r.body, "Members"));
	assert_non_null(strstr(r.body, "id=\"members\""));
	assert_non_null(strstr(r.body, "/api/status"));
	assert_non_null(strstr(r.body, "/api/members"));
	assert_non_null(strstr(r.body, "Rollout"));
	assert_non_null(strstr(r.body, "No releases yet"));
	assert_non_null(strstr(r.body, "No alerts yet"));
	/* self-contained: nothing loaded from elsewhere */
	assert_null(strstr(r.body, "src="));
	assert_null(strstr(r.body, "http://"));
	assert_null(strstr(r.body, "https://"));
	/* the browser runs the inline script only if its hash is in the CSP */
	assert_true(header(&r, "Content-Security-Policy", v, sizeof(v)));
	assert_non_null(strstr(v, "default-src 'self'"));
	assert_null(strstr(v, "unsafe-inline"));
	const char *s0 = strstr(r.body, "<script>"), *s1 = strstr(r.body, "</script>");
	assert_non_null(s0);
	assert_non_null(s1);
	s0 += strlen("<script>");
	unsigned char h[crypto_hash_sha256_BYTES];
	char b64[64], want[96];
	crypto_hash_sha256(h, (const unsigned char *)s0, (unsigned long long)(s1 - s0));
	sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
	snprintf(want, sizeof(want), "script-src 'sha256-%s'", b64);
	if (strstr(v, want) == NULL)
		fail_msg("CSP '%s' does not allow the page's script (%s)", v, want);
	const char *t0 = strstr(r.body, "<style>"), *t1 = strstr(r.body, "</style>");
	assert_non_null(t0);
	assert_non_null(t1);
	t0 += strlen("<style>");
	crypto_hash_sha256(h, (const unsigned char *)t0, (unsigned long long)(t1 - t0));
	sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
	snprintf(want, sizeof(want), "style-src 'sha256-%s'", b64);
	assert_non_null(strstr(v, want));
	/* data is placed as text, never parsed as HTML */
	assert_null(strstr(r.body, "innerHTML"));
	assert_int_equal(atomic_load(&f->calls), 0); /* the page itself asks nothing */
	resp_free(&r);
}

static void only_get_and_head(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char v[128], base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	const char *methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		fetch_full(base, methods[i], "/api/status",
			   strcmp(methods[i], "POST") == 0 ? "{\"cmd\":\"leave\"}" : NULL, NULL, &r);
		assert_int_equal(r.cc, CURLE_OK);
		if (r.status != 405)
			fail_msg("%s: got %ld", methods[i], r.status);
		assert_true(header(&r, "Allow", v, sizeof(v)));
		assert_string_equal(v, "GET, HEAD");
		resp_free(&r);
	}
	/* a GET that carries a body is refused too */
	fetch_full(base, "GET", "/api/status", "x=1", NULL, &r);
	assert_int_equal(r.cc, CURLE_OK);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	assert_int_equal(atomic_load(&f->calls), 0); /* none reached the agent */
}

static void strict_paths(void **state)
{
	struct fx *f = *state;
	struct resp r;
	const char *not_found[] = {"/nope", "/api", "/api/", "/api/status/", "/api/statusx",
				   "/API/status", "/api%2Fstatus", "/%61pi/status",
				   "/metrics%00", "//api/status", "/api/../metrics",
				   "/index.html"};
	for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
		fetch(f, NULL, not_found[i], &r);
		if (r.status != 404)
			fail_msg("%s: want 404, got %ld", not_found[i], r.status);
		resp_free(&r);
	}
	fetch(f, NULL, "/api/status?x=1", &r);
	assert_int_equal(r.status, 400);
	resp_free(&r);
	char longp[SHOAL_HTTP_PATH_BYTES_MAX + 16];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	fetch(f, NULL, longp, &r);
	assert_int_equal(r.status, 414);
	resp_free(&r);
	assert_int_equal(atomic_load(&f->calls), 0);
}

static void host_must_be_loopback(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	const char *bad[] = {"evil.example", "evil.example:80", "10.0.0.1", "localhost.evil.example",
			     "[::2]:80", "127.0.0.1:80x", "0.0.0.0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fetch_full(base, NULL, "/api/status", NULL, bad[i], &r);
		assert_int_equal(r.cc, CURLE_OK);
		if (r.status != 403)
			fail_msg("Host %s: want 403, got %ld", bad[i], r.status);
		resp_free(&r);
	}
	assert_int_equal(atomic_load(&f->calls), 0);
	const char *good[] = {"localhost", "LOCALHOST:8080", "127.0.0.1", "127.1.2.3:1",
			      "[::1]:9100"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		fetch_full(base, NULL, "/api/status", NULL, good[i], &r);
		assert_int_equal(r.cc, CURLE_OK);
		if (r.status != 200)
			fail_msg("Host %s: want 200, got %ld", good[i], r.status);
		resp_free(&r);
	}
}

static void non_loopback_bind_refused(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {"0.0.0.0:0", "10.1.2.3:8080", "192.168.1.1:0", "[::]:0",
			     "[fe80::1]:80", "8.8.8.8:80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_server *s = NULL;
		char err[256] = "";
		assert_int_equal(http_start(bad[i], on_query, f, &s, err, sizeof(err)),
				 SHOAL_EINVAL);
		assert_null(s);
		if (strstr(err, "loopback") == NULL || strstr(err, bad[i]) == NULL)
			fail_msg("%s: unclear error '%s'", bad[i], err);
	}
	const char *malformed[] = {"", "127.0.0.1", "127.0.0.1:99999", "example.com:80"};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		struct http_server *s = NULL;
		char err[256] = "";
		assert_int_equal(http_start(malformed[i], on_query, f, &s, err, sizeof(err)),
				 SHOAL_EINVAL);
		assert_null(s);
		assert_non_null(strstr(err, "127.0.0.1:PORT"));
	}
	/* "localhost" means 127.0.0.1 */
	struct http_server *lo = NULL;
	char lerr[256] = "";
	assert_int_equal(http_start("localhost:0", on_query, f, &lo, lerr, sizeof(lerr)), 0);
	assert_int_not_equal(http_port(lo), 0);
	http_stop(lo);
	/* the port we already serve on is taken: a clear error, nothing left */
	char bind[64], err[256] = "";
	struct http_server *s = NULL;
	snprintf(bind, sizeof(bind), "127.0.0.1:%u", f->port);
	assert_int_equal(http_start(bind, on_query, f, &s, err, sizeof(err)), SHOAL_EIO);
	assert_null(s);
	if (strstr(err, "cannot listen on") == NULL || strstr(err, "in use") == NULL)
		fail_msg("unclear error: '%s'", err);
	assert_non_null(strstr(err, bind));
}

static void ipv6_loopback(void **state)
{
	struct fx *f = *state;
	struct http_server *s = NULL;
	char err[256] = "";
	int rc = http_start("[::1]:0", on_query, f, &s, err, sizeof(err));
	if (rc == SHOAL_EIO)
		skip(); /* no IPv6 loopback on this machine */
	assert_int_equal(rc, 0);
	char base[64];
	snprintf(base, sizeof(base), "http://[::1]:%u", http_port(s));
	struct resp r;
	fetch_full(base, NULL, "/api/members", NULL, NULL, &r);
	assert_int_equal(r.cc, CURLE_OK);
	assert_int_equal(r.status, 200);
	json_t *got = json_loads(r.body, 0, NULL);
	assert_true(json_equal(got, f->members));
	json_decref(got);
	resp_free(&r);
	http_stop(s);
}

static int connect_port(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Idle connections beyond the limit are turned away; once they go, the
 * server answers again. */
static void connections_are_bounded(void **state)
{
	struct fx *f = *state;
	int fds[SHOAL_HTTP_CONNS_MAX];
	for (int i = 0; i < SHOAL_HTTP_CONNS_MAX; i++) {
		fds[i] = connect_port(f->port);
		assert_true(fds[i] >= 0);
	}
	usleep(200 * 1000); /* let the server accept them all */
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	struct resp r;
	fetch_timeout_ms = 1000; /* over the limit, the server does not accept */
	fetch_full(base, NULL, "/api/status", NULL, NULL, &r);
	fetch_timeout_ms = 5000;
	assert_true(r.cc != CURLE_OK || r.status != 200);
	resp_free(&r);
	for (int i = 0; i < SHOAL_HTTP_CONNS_MAX; i++)
		close(fds[i]);
	usleep(200 * 1000);
	fetch(f, NULL, "/api/status", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* Request headers beyond the connection memory bound are refused, not
 * buffered. */
static void oversized_headers_refused(void **state)
{
	struct fx *f = *state;
	struct resp r;
	char base[64];
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", f->port);
	size_t n = SHOAL_HTTP_CONN_MEMORY_BYTES_MAX + 1024;
	char *big = malloc(n + 16);
	assert_non_null(big);
	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'a', n);
	big[7 + n] = '\0';
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, big);
	char url[128];
	snprintf(url, sizeof(url), "%s/api/status", base);
	memset(&r, 0, sizeof(r));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	assert_true(cc != CURLE_OK || (status >= 400 && status != 404));
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(big);
	resp_free(&r);
	assert_int_equal(atomic_load(&f->calls), 0);
	fetch(f, NULL, "/api/status", &r); /* and the server still serves */
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

static void stop_closes_port(void **state)
{
	struct fx *f = *state;
	struct resp r;
	fetch(f, NULL, "/api/status", &r);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	int calls = atomic_load(&f->calls);
	http_stop(f->srv);
	f->srv = NULL;
	assert_int_equal(connect_port(f->port), -1);
	assert_int_equal(atomic_load(&f->calls), calls);
	http_stop(NULL); /* no-op */
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(api_returns_query_json, setup, teardown),
		cmocka_unit_test_setup_teardown(query_failure_is_503, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_exposition, setup, teardown),
		cmocka_unit_test(metrics_render_sanitizes),
		cmocka_unit_test_setup_teardown(dashboard_page, setup, teardown),
		cmocka_unit_test_setup_teardown(only_get_and_head, setup, teardown),
		cmocka_unit_test_setup_teardown(strict_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(host_must_be_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(non_loopback_bind_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(ipv6_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(connections_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(oversized_headers_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(stop_closes_port, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
