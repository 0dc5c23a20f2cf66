/*
 * http.h — the agent's read-only HTTP interface on loopback (DESIGN §6):
 * a JSON API, Prometheus /metrics and a self-contained dashboard page.
 *
 *   GET /              HTML dashboard (inline JS polls the two APIs every 2 s)
 *   GET /api/status    fn(arg, "status"), as JSON
 *   GET /api/members   fn(arg, "members"), as JSON
 *   GET /metrics       Prometheus text format 0.0.4 derived from "status"
 *
 * Strict by design: GET and HEAD only (405 otherwise), no request body (400),
 * no query string (400), no percent-escapes in the path (the path must match
 * exactly, or 404), Host must name a loopback address (403; blocks DNS
 * rebinding from a browser). One libmicrohttpd thread serves everything;
 * at most SHOAL_HTTP_CONNS_MAX connections, each closed after
 * SHOAL_HTTP_CONN_TIMEOUT_S idle seconds.
 */
#ifndef SHOAL_RUNTIME_HTTP_H
#define SHOAL_RUNTIME_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

/* Called on libmicrohttpd's thread, once per API or /metrics request, with
 * what = "status" or "members". Returns a new reference to the object to
 * serve, or NULL (the client gets 503). Requests are served one at a time,
 * so calls never overlap; the function must bound how long it blocks. */
typedef json_t *(*http_query_fn)(void *arg, const char *what);

struct http_server;

/* Serves on bind ("127.0.0.1:PORT", "[::1]:PORT"; any 127.0.0.0/8 address;
 * PORT 0 picks a free port, see http_port). Anything not loopback is refused
 * with SHOAL_EINVAL. The first call loads libmicrohttpd.so.12 (dlopen; the
 * library is not linked, so agents without HTTP never map it). Returns 0,
 * SHOAL_EINVAL, SHOAL_EIO (cannot listen), SHOAL_ENOTFOUND or SHOAL_EVERSION
 * (libmicrohttpd missing or too old; err names the package) or SHOAL_ENOMEM,
 * with err set; on error nothing is left running. */
int http_start(const char *bind, http_query_fn fn, void *arg,
	       struct http_server **out, char *err, size_t errlen) SHOAL_MUST_CHECK;

/* The port actually bound (useful after PORT 0). */
uint16_t http_port(const struct http_server *srv);

/* Stops the server and waits for its thread; after it returns fn is never
 * called again. NULL is a no-op. */
void http_stop(struct http_server *srv);

/* Renders the Prometheus exposition for one status object (as /metrics
 * serves it) into a new malloc'd NUL-terminated string; NULL if out of
 * memory or over SHOAL_HTTP_RESP_BYTES_MAX. Exposed for tests. */
char *http_metrics_render(const json_t *status);

#endif
