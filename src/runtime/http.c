/*
 * http.c — the agent's read-only HTTP interface on loopback: JSON API,
 * Prometheus /metrics and the dashboard page, served by libmicrohttpd.
 *
 * Request handling, in order (the first rule that fails answers):
 *   method is GET or HEAD                          else 405 (Allow: GET, HEAD)
 *   no body (no Content-Length > 0, no Transfer-Encoding)   else 400
 *   Host is absent or names loopback                else 403
 *   path no longer than SHOAL_HTTP_PATH_BYTES_MAX   else 414
 *   no query string                                 else 400
 *   path is exactly one of "/", "/api/status", "/api/members", "/metrics"
 *                                                   else 404
 * Paths are never percent-decoded (our unescape callback keeps them as sent),
 * so "/api%2Fstatus" is simply not found. The Host check stops a web page
 * from reading the API through DNS rebinding; the port is not compared so
 * that an SSH tunnel to another local port still works.
 *
 * One internal polling thread serves every connection, so the query
 * function is never called concurrently. libmicrohttpd bounds the request
 * line and headers by SHOAL_HTTP_CONN_MEMORY_BYTES_MAX (431/414 beyond).
 *
 * libmicrohttpd is loaded with dlopen by the first http_start, not linked:
 * the HTTP interface is off by default, and Debian's libmicrohttpd brings
 * gnutls, p11-kit, nettle, gmp and more, which an agent without --http
 * should not map. Its functions are called through the mhd table below.
 */
#include "runtime/http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "shoal/addr.h"
#include "shoal/dynlib.h"
#include "shoal/limits.h"
#include "shoal/log.h"

#define CSP_BYTES_MAX 512
#define ERR_BYTES_MAX 256

struct http_server {
	struct MHD_Daemon *d;
	http_query_fn fn;
	void *arg;
	uint16_t port;
	atomic_bool starting;       /* logger records into start_err */
	char start_err[ERR_BYTES_MAX];
	char page_csp[CSP_BYTES_MAX];
};

/* --- libmicrohttpd, loaded on first use ------------------------------------ */

static struct {
	enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *header,
					       const char *content);
	struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buffer,
							    enum MHD_ResponseMemoryMode mode);
	enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned int status,
					  struct MHD_Response *r);
	void (*destroy_response)(struct MHD_Response *r);
	const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind kind,
					       const char *key);
	int (*get_connection_values)(struct MHD_Connection *c, enum MHD_ValueKind kind,
				     MHD_KeyValueIterator it, void *it_cls);
	struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
					   MHD_AcceptPolicyCallback apc, void *apc_cls,
					   MHD_AccessHandlerCallback dh, void *dh_cls, ...);
	const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *d,
						       enum MHD_DaemonInfoType type, ...);
	void (*stop_daemon)(struct MHD_Daemon *d);
} mhd;

static const struct dynlib_sym mhd_syms[] = {
	{"MHD_add_response_header", &mhd.add_response_header},
	{"MHD_create_response_from_buffer", &mhd.create_response_from_buffer},
	{"MHD_queue_response", &mhd.queue_response},
	{"MHD_destroy_response", &mhd.destroy_response},
	{"MHD_lookup_connection_value", &mhd.lookup_connection_value},
	{"MHD_get_connection_values", &mhd.get_connection_values},
	{"MHD_start_daemon", &mhd.start_daemon},
	{"MHD_get_daemon_info", &mhd.get_daemon_info},
	{"MHD_stop_daemon", &mhd.stop_daemon},
};

static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static int mhd_load_rc = SHOAL_EIO;
static char mhd_load_err[ERR_BYTES_MAX];

static void load_mhd(void)
{
	void *h;
	mhd_load_rc = dynlib_open("libmicrohttpd.so.12", "libmicrohttpd12", mhd_syms,
				  sizeof(mhd_syms) / sizeof(mhd_syms[0]), &h, mhd_load_err,
				  sizeof(mhd_load_err));
}

/* --- the dashboard ----------------------------------------------------------
 * Self-contained: no external assets. The script and style are allowed by
 * their SHA-256 in the page's Content-Security-Policy (computed at start from
 * these very strings, so they cannot drift). Data from the agent is only ever
 * placed with textContent, never parsed as HTML: member names come from
 * other nodes' certificates. */

#define DASH_STYLE                                                              \
	"body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}"           \
	"h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}" \
	"table{border-collapse:collapse}td,th{padding:.25em .8em;text-align:left;" \
	"border-bottom:1px solid #ddd}th{background:#f4f4f4}"                    \
	".ok{color:#137333}.warn{color:#b06000}.bad{color:#c5221f}"              \
	".muted{color:#777}.err{color:#c5221f;font-weight:bold}"                 \
	".st{font-weight:bold}.st-alive{color:#137333}.st-suspect{color:#b06000}" \
	".st-dead{color:#c5221f}.st-left{color:#777}.st-unknown{color:#777}"     \
	".counts span{margin-right:1.2em}code{font-size:.95em}"

#define DASH_SCRIPT                                                             \
	"'use strict';"                                                          \
	"const $=(id)=>document.getElementById(id);"                             \
	"const STATES=['alive','suspect','dead','left'];"                        \
	"function cell(text,cls){const td=document.createElement('td');"          \
	"td.textContent=text===undefined||text===null?'':String(text);"          \
	"if(cls)td.className=cls;return td;}"                                    \
	"async function getJSON(path){const r=await fetch(path,{cache:'no-store'});" \
	"if(!r.ok)throw new Error(path+': HTTP '+r.status);return r.json();}"     \
	"function uptime(s){if(typeof s!=='number')return '?';"                  \
	"const d=Math.floor(s/86400),h=Math.floor(s%86400/3600),"                \
	"m=Math.floor(s%3600/60);return (d?d+'d ':'')+(d||h?h+'h ':'')+m+'m '+(s%60)+'s';}" \
	"function show(st,mb){"                                                  \
	"$('name').textContent=st.name||'?';"                                    \
	"$('addr').textContent=st.addr||'';"                                     \
	"$('id').textContent=st.id||'';"                                         \
	"const h=$('health');"                                                   \
	"if(st.health===0){h.textContent='healthy (score 0)';h.className='ok';}"  \
	"else{h.textContent='degraded (score '+st.health+')';h.className='warn';}" \
	"if(st.leaving){h.textContent+=', leaving';h.className='warn';}"         \
	"$('inc').textContent=st.incarnation;"                                   \
	"$('uptime').textContent=uptime(st.uptime_s);"                           \
	"const m=st.members||{};"                                                \
	"for(const k of STATES)$('n-'+k).textContent=m[k]===undefined?0:m[k];"  \
	"const rank=(s)=>{const i=STATES.indexOf(s);return i<0?STATES.length:i;};" \
	"const rows=(mb.members||[]).slice().sort((a,b)=>"                       \
	"rank(a.state)-rank(b.state)||String(a.name).localeCompare(String(b.name)));" \
	"const tb=$('members');tb.replaceChildren();"                            \
	"for(const x of rows){const tr=document.createElement('tr');"            \
	"tr.appendChild(cell(x.name+(x.self?' (this node)':'')));"               \
	"tr.appendChild(cell(x.state,'st '+(STATES.includes(x.state)?'st-'+x.state:'st-unknown')));" \
	"tr.appendChild(cell(x.addr));tr.appendChild(cell(x.incarnation));"      \
	"tr.appendChild(cell(Array.isArray(x.tags)?x.tags.join(', '):''));"      \
	"tr.appendChild(cell(x.last_change));"                                   \
	"tr.appendChild(cell(typeof x.id==='string'?x.id.slice(0,16):'','muted'));" \
	"tb.appendChild(tr);}"                                                   \
	"if(!rows.length){const tr=document.createElement('tr');"                \
	"const td=cell('no members','muted');td.colSpan=7;tr.appendChild(td);"   \
	"tb.appendChild(tr);}}"                                                  \
	"async function refresh(){"                                              \
	"try{const [st,mb]=await Promise.all([getJSON('/api/status'),getJSON('/api/members')]);" \
	"show(st,mb);$('err').textContent='';"                                   \
	"$('updated').textContent='updated '+new Date().toLocaleTimeString();}"  \
	"catch(e){$('err').textContent='cannot reach the agent: '+e.message;}"   \
	"finally{setTimeout(refresh,2000);}}"                                    \
	"refresh();"

static const char dash_style[] = DASH_STYLE;
static const char dash_script[] = DASH_SCRIPT;

static const char dash_page[] =
	"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
	"<title>shoal</title><style>" DASH_STYLE "</style></head><body>\n"
	"<h1>shoal agent <span id=\"name\">…</span></h1>\n"
	"<div class=\"muted\"><code id=\"addr\"></code> · id <code id=\"id\"></code>"
	" · <span id=\"updated\">loading…</span></div>\n"
	"<div id=\"err\" class=\"err\"></div>\n"
	"<h2>Node</h2>\n<table><tbody>"
	"<tr><th>health</th><td id=\"health\"></td></tr>"
	"<tr><th>incarnation</th><td id=\"inc\"></td></tr>"
	"<tr><th>uptime</th><td id=\"uptime\"></td></tr>"
	"</tbody></table>\n"
	"<h2>Members</h2>\n<div class=\"counts\">"
	"<span class=\"st-alive\">alive <b id=\"n-alive\">0</b></span>"
	"<span class=\"st-suspect\">suspect <b id=\"n-suspect\">0</b></span>"
	"<span class=\"st-dead\">dead <b id=\"n-dead\">0</b></span>"
	"<span class=\"st-left\">left <b id=\"n-left\">0</b></span></div>\n"
	"<table><thead><tr><th>name</th><th>state</th><th>address</th>"
	"<th>incarnation</th><th>tags</th><th>last change</th><th>id</th></tr></thead>"
	"<tbody id=\"members\"></tbody></table>\n"
	"<h2>Rollout</h2>\n<p class=\"muted\">No releases yet: this version of the"
	" agent does not run rollouts.</p>\n"
	"<h2>Alerts</h2>\n<p class=\"muted\">No alerts yet: this version of the agent"
	" does not scan.</p>\n"
	"<p class=\"muted\">Read-only. Raw data: <a href=\"/api/status\">/api/status</a>,"
	" <a href=\"/api/members\">/api/members</a>, <a href=\"/metrics\">/metrics</a>.</p>\n"
	"<script>" DASH_SCRIPT "</script>\n</body></html>\n";

/* Writes "'sha256-BASE64'" for s into out. */
static void csp_hash(const char *s, char *out, size_t out_size)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_hash_sha256_BYTES,
					   sodium_base64_VARIANT_ORIGINAL)];
	assert(out_size >= sizeof(b64) + 10);
	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	sodium_bin2base64(b64, sizeof(b64), h, sizeof(h), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, out_size, "'sha256-%s'", b64);
}

/* --- a bounded string builder ---------------------------------------------- */

struct sb {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory or over SHOAL_HTTP_RESP_BYTES_MAX */
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sb *b, const char *fmt, ...)
{
	if (b->failed)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap); /* measure first, then grow once */
	va_end(ap);
	if (n < 0 || b->len + (size_t)n + 1 > SHOAL_HTTP_RESP_BYTES_MAX) {
		b->failed = true;
		return;
	}
	size_t need = b->len + (size_t)n + 1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		if (cap > SHOAL_HTTP_RESP_BYTES_MAX)
			cap = SHOAL_HTTP_RESP_BYTES_MAX;
		char *q = realloc(b->p, cap);
		if (q == NULL) {
			b->failed = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	assert(b->len < b->cap);
}

/* --- /metrics ----------------------------------------------------------------
 * Prometheus text exposition 0.0.4, derived generically from the status
 * object so that a counter added to the agent shows up without touching this
 * file. Metric names are sanitized to [a-zA-Z0-9_] (the "shoal_" prefix keeps
 * the first character a letter); label values are escaped. */

#define METRIC_NAME_BYTES_MAX 160
static const char *const counter_groups[] = {"counters", "drops", "streams"};

static void sanitize(const char *in, char *out, size_t out_size)
{
	assert(out_size > 0);
	size_t i = 0;
	for (; in[i] != '\0' && i + 1 < out_size; i++) {
		unsigned char c = (unsigned char)in[i];
		out[i] = (char)(isalnum(c) && c < 128 ? c : '_');
	}
	out[i] = '\0';
}

/* Label values escape \, " and newline (exposition format rules). */
static void sb_label_value(struct sb *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			sb_printf(b, "\\\\");
		else if (*v == '"')
			sb_printf(b, "\\\"");
		else if (*v == '\n')
			sb_printf(b, "\\n");
		else
			sb_printf(b, "%c", *v);
	}
}

/* True if "# TYPE name " was already written: two families with one name
 * (e.g. keys "a-b" and "a_b") would make Prometheus reject the whole scrape. */
static bool family_written(const struct sb *b, const char *name)
{
	char pat[METRIC_NAME_BYTES_MAX + 16];
	snprintf(pat, sizeof(pat), "# TYPE %s ", name);
	size_t plen = strlen(pat);
	for (const char *p = b->p; p && (p = strstr(p, pat)) != NULL; p += plen)
		if (p == b->p || p[-1] == '\n')
			return true;
	return false;
}

static bool number_of(const json_t *v, char *out, size_t out_size)
{
	if (json_is_integer(v))
		snprintf(out, out_size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, out_size, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(out, out_size, "%d", json_is_true(v) ? 1 : 0);
	else
		return false;
	return true;
}

static void family(struct sb *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct sb *b, const json_t *status, const char *key,
		  const char *name, const char *help)
{
	char num[64];
	if (!number_of(json_object_get(status, key), num, sizeof(num)))
		return;
	family(b, name, "gauge", help);
	sb_printf(b, "%s %s\n", name, num);
}

char *http_metrics_render(const json_t *status)
{
	struct sb b = {0};
	assert(status != NULL);
	if (!json_is_object(status))
		return NULL;

	/* who this is, as labels, so dashboards can join on name */
	static const char *const info_keys[] = {"name", "id", "fleet", "addr"};
	family(&b, "shoal_node_info", "gauge", "The node this agent runs as (always 1).");
	sb_printf(&b, "shoal_node_info{");
	bool first = true;
	for (size_t i = 0; i < sizeof(info_keys) / sizeof(info_keys[0]); i++) {
		const char *v = json_string_value(json_object_get(status, info_keys[i]));
		if (v == NULL)
			continue;
		sb_printf(&b, "%s%s=\"", first ? "" : ",", info_keys[i]);
		sb_label_value(&b, v);
		sb_printf(&b, "\"");
		first = false;
	}
	sb_printf(&b, "} 1\n");

	gauge(&b, status, "incarnation", "shoal_incarnation",
	      "This node's SWIM incarnation number.");
	gauge(&b, status, "health", "shoal_health",
	      "Lifeguard local health score (0 is healthy; higher means probes time out locally).");
	gauge(&b, status, "leaving", "shoal_leaving", "1 while the agent is leaving the fleet.");
	gauge(&b, status, "uptime_s", "shoal_uptime_seconds", "Seconds since the agent started.");

	const json_t *members = json_object_get(status, "members");
	if (json_is_object(members)) {
		family(&b, "shoal_members", "gauge", "Members this node knows, by state (itself included).");
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)members, k, v) {
			char num[64];
			if (!number_of(v, num, sizeof(num)))
				continue;
			sb_printf(&b, "shoal_members{state=\"");
			sb_label_value(&b, k);
			sb_printf(&b, "\"} %s\n", num);
		}
	}

	for (size_t g = 0; g < sizeof(counter_groups) / sizeof(counter_groups[0]); g++) {
		const json_t *grp = json_object_get(status, counter_groups[g]);
		if (!json_is_object(grp))
			continue;
		const char *k;
		const json_t *v;
		json_object_foreach((json_t *)grp, k, v) {
			char num[64], key[METRIC_NAME_BYTES_MAX / 2], name[METRIC_NAME_BYTES_MAX];
			if (json_is_boolean(v) || !number_of(v, num, sizeof(num)))
				continue;
			sanitize(k, key, sizeof(key));
			snprintf(name, sizeof(name), "shoal_%s_%s_total", counter_groups[g], key);
			if (family_written(&b, name))
				continue;
			sb_printf(&b, "# HELP %s Count of %s (status \"%s\").\n", name, key,
				  counter_groups[g]);
			sb_printf(&b, "# TYPE %s counter\n%s %s\n", name, name, num);
		}
	}
	if (b.failed || b.p == NULL) {
		free(b.p);
		return NULL;
	}
	assert(b.len < b.cap && b.p[b.len] == '\0');
	return b.p;
}

/* --- addresses ------------------------------------------------------------ */

static bool addr_is_loopback(const struct shoal_addr *a)
{
	static const uint8_t v6_loopback[16] = {[15] = 1};
	if (a->family == SHOAL_AF_INET)
		return a->ip[0] == 127;
	if (a->family == SHOAL_AF_INET6)
		return memcmp(a->ip, v6_loopback, 16) == 0;
	return false;
}

/* "A.B.C.D:PORT", "localhost:PORT" or "[V6]:PORT" with PORT 0..65535; unlike
 * addr_parse, port 0 is allowed (the kernel picks one; see http_port). */
static int parse_bind(const char *s, struct shoal_addr *out)
{
	char host[SHOAL_ADDR_STR_MAX];
	const char *port;
	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(host))
		return SHOAL_EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return SHOAL_EINVAL;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		if (inet_pton(AF_INET6, host, out->ip) != 1)
			return SHOAL_EINVAL;
		out->family = SHOAL_AF_INET6;
		port = close + 2;
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL)
			return SHOAL_EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, out->ip) != 1)
			return SHOAL_EINVAL;
		out->family = SHOAL_AF_INET;
		port = colon + 1;
	}
	size_t n = strlen(port);
	if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
		return SHOAL_EINVAL;
	unsigned long v = strtoul(port, NULL, 10);
	if (v > 65535)
		return SHOAL_EINVAL;
	out->port = (uint16_t)v;
	return 0;
}

/* Host header: "localhost", a 127/8 address or "[::1]", with an optional
 * ":port" (any port: an SSH tunnel may map another local port to ours). */
static bool host_is_loopback(const char *host)
{
	char name[64];
	const char *rest;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		if (end == NULL || (size_t)(end - host - 1) >= sizeof(name))
			return false;
		memcpy(name, host + 1, (size_t)(end - host - 1));
		name[end - host - 1] = '\0';
		rest = end + 1;
		struct in6_addr in6;
		if (inet_pton(AF_INET6, name, &in6) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&in6))
			return false;
	} else {
		size_t n = strcspn(host, ":");
		if (n == 0 || n >= sizeof(name))
			return false;
		memcpy(name, host, n);
		name[n] = '\0';
		rest = host + n;
		struct in_addr in4;
		if (strcasecmp(name, "localhost") != 0 &&
		    !(inet_pton(AF_INET, name, &in4) == 1 &&
		      (ntohl(in4.s_addr) >> 24) == 127))
			return false;
	}
	if (*rest == '\0')
		return true;
	if (*rest != ':' || rest[1] == '\0' || strlen(rest + 1) > 5)
		return false;
	for (const char *p = rest + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* --- responses ---------------------------------------------------------------- */

static void common_headers(struct MHD_Response *r, const char *type, const char *csp)
{
	mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	mhd.add_response_header(r, "X-Content-Type-Options", "nosniff");
	mhd.add_response_header(r, "Content-Security-Policy", csp);
	mhd.add_response_header(r, "X-Frame-Options", "DENY");
	mhd.add_response_header(r, "Referrer-Policy", "no-referrer");
	mhd.add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static const char csp_data[] = "default-src 'none'; frame-ancestors 'none'";

/* Queues body (taken: freed by libmicrohttpd, or here on failure). */
static enum MHD_Result send_owned(struct MHD_Connection *c, unsigned status,
				  const char *type, const char *csp, char *body, size_t len)
{
	struct MHD_Response *r =
		mhd.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	common_headers(r, type, csp);
	enum MHD_Result ret = mhd.queue_response(c, status, r);
	mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result send_static(struct MHD_Connection *c, unsigned status,
				   const char *type, const char *csp, const char *body,
				   const char *allow)
{
	struct MHD_Response *r = mhd.create_response_from_buffer(
		strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	common_headers(r, type, csp);
	if (allow)
		mhd.add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = mhd.queue_response(c, status, r);
	mhd.destroy_response(r);
	return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
				  const char *msg)
{
	return send_static(c, status, "text/plain; charset=utf-8", csp_data, msg,
			   status == MHD_HTTP_METHOD_NOT_ALLOWED ? "GET, HEAD" : NULL);
}

static json_t *query(struct http_server *s, const char *what)
{
	json_t *v = s->fn(s->arg, what);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static enum MHD_Result serve_json(struct http_server *s, struct MHD_Connection *c,
				  const char *what)
{
	json_t *v = query(s, what);
	if (v == NULL)
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "agent did not answer\n");
	char *body = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (body == NULL)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot encode JSON\n");
	size_t len = strlen(body);
	if (len > SHOAL_HTTP_RESP_BYTES_MAX) {
		free(body);
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "response too large\n");
	}
	return send_owned(c, MHD_HTTP_OK, "application/json", csp_data, body, len);
}

static enum MHD_Result serve_metrics(struct http_server *s, struct MHD_Connection *c)
{
	json_t *v = query(s, "status");
	if (v == NULL)
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "agent did not answer\n");
	char *body = http_metrics_render(v);
	json_decref(v);
	if (body == NULL)
		return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
	return send_owned(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
			  csp_data, body, strlen(body));
}

static bool has_body(struct MHD_Connection *c)
{
	const char *cl = mhd.lookup_connection_value(c, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && strcmp(cl, "0") != 0)
		return true;
	return mhd.lookup_connection_value(c, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

/* Called by libmicrohttpd once a request's headers are in (and again per
 * body chunk, which we never accept: the response is queued on the first
 * call, and libmicrohttpd then closes the connection instead of reading). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *s = cls;
	assert(s != NULL && url != NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				  "method not allowed: this interface is read-only (GET, HEAD)\n");
	if (*upload_data_size != 0 || has_body(c))
		return send_error(c, MHD_HTTP_BAD_REQUEST, "request bodies are not accepted\n");
	const char *host = mhd.lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	if (host != NULL && !host_is_loopback(host))
		return send_error(c, MHD_HTTP_FORBIDDEN,
				  "Host must be localhost, 127.0.0.1 or [::1]\n");
	if (strlen(url) > SHOAL_HTTP_PATH_BYTES_MAX)
		return send_error(c, MHD_HTTP_URI_TOO_LONG, "path too long\n");
	if (mhd.get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) != 0)
		return send_error(c, MHD_HTTP_BAD_REQUEST, "query strings are not accepted\n");

	if (strcmp(url, "/") == 0)
		return send_static(c, MHD_HTTP_OK, "text/html; charset=utf-8", s->page_csp,
				   dash_page, NULL);
	if (strcmp(url, "/api/status") == 0)
		return serve_json(s, c, "status");
	if (strcmp(url, "/api/members") == 0)
		return serve_json(s, c, "members");
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(s, c);
	return send_error(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Leaves paths and arguments exactly as sent: nothing we serve needs an
 * escape, and decoding (%00, %2F) only opens ways to alias a path. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return strlen(s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char msg[ERR_BYTES_MAX], q[2 * ERR_BYTES_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (atomic_load(&s->starting)) {
		/* keep the first message: it names the cause (e.g. bind failed) */
		if (s->start_err[0] == '\0')
			snprintf(s->start_err, sizeof(s->start_err), "%s", msg);
		return;
	}
	shoal_log_quote(msg, q, sizeof(q));
	log_warn("http_error", "msg=%s", q);
}

/* --- start and stop ------------------------------------------------------ */

int http_start(const char *bind, http_query_fn fn, void *arg,
	       struct http_server **out, char *err, size_t errlen)
{
	assert(bind != NULL && fn != NULL);
	assert(out != NULL);
	struct shoal_addr a;
	if (parse_bind(bind, &a) != 0) {
		snprintf(err, errlen, "http: bad address '%s': want 127.0.0.1:PORT or [::1]:PORT",
			 bind);
		return SHOAL_EINVAL;
	}
	if (!addr_is_loopback(&a)) {
		snprintf(err, errlen,
			 "http: refusing to serve on %s: the HTTP interface is unauthenticated "
			 "and listens on loopback only (127.0.0.0/8 or [::1])", bind);
		return SHOAL_EINVAL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "http: libsodium init failed");
		return SHOAL_EINVAL;
	}
	pthread_once(&mhd_once, load_mhd);
	if (mhd_load_rc != 0) {
		snprintf(err, errlen, "http: %s", mhd_load_err);
		return mhd_load_rc;
	}
	assert(mhd.start_daemon != NULL);
	struct http_server *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "http: out of memory");
		return SHOAL_ENOMEM;
	}
	s->fn = fn;
	s->arg = arg;
	char script_hash[80], style_hash[80];
	csp_hash(dash_script, script_hash, sizeof(script_hash));
	csp_hash(dash_style, style_hash, sizeof(style_hash));
	snprintf(s->page_csp, sizeof(s->page_csp),
		 "default-src 'self'; script-src %s; style-src %s; connect-src 'self'; "
		 "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		 script_hash, style_hash);

	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (a.family == SHOAL_AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(a.port);
		memcpy(&in->sin_addr, a.ip, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(a.port);
		memcpy(&in6->sin6_addr, a.ip, 16);
		flags |= MHD_USE_IPv6;
	}
	atomic_store(&s->starting, true);
	s->d = mhd.start_daemon(
		flags, a.port, NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SHOAL_HTTP_CONNS_MAX,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SHOAL_HTTP_CONN_TIMEOUT_S,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SHOAL_HTTP_CONN_MEMORY_BYTES_MAX,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
		MHD_OPTION_END);
	if (s->d == NULL) {
		snprintf(err, errlen, "http: cannot listen on %s: %s", bind,
			 s->start_err[0] ? s->start_err : "libmicrohttpd failed to start");
		free(s);
		return SHOAL_EIO;
	}
	/* from here on the logger runs on the server thread and logs */
	atomic_store(&s->starting, false);
	const union MHD_DaemonInfo *info = mhd.get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? info->port : a.port;
	assert(s->port != 0);
	char addr_s[SHOAL_ADDR_STR_MAX];
	a.port = s->port;
	log_info("http_listen", "addr=%s", addr_format(&a, addr_s));
	*out = s;
	return 0;
}

uint16_t http_port(const struct http_server *srv)
{
	assert(srv != NULL);
	return srv->port;
}

void http_stop(struct http_server *srv)
{
	if (srv == NULL)
		return;
	assert(srv->d != NULL);
	mhd.stop_daemon(srv->d);
	free(srv);
}
