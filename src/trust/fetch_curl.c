/*
 * fetch_curl.c — the libcurl fetcher behind the TUF client's fetcher
 * interface: http://, https:// and file:// URLs, bounded in bytes and time.
 *
 * The bound is enforced while receiving: the write callback refuses the
 * chunk that would pass max_len, which aborts the transfer, so an endless
 * response never costs more than max_len bytes of memory. A Content-Length
 * over the bound fails before any body is read. Redirects may only go to
 * http/https (never from a server to a local file).
 *
 * tuf_fetch_curl_cancellable adds a stop flag checked from libcurl's
 * progress callback, so a thread pulling from a slow or silent server stops
 * within about a second of being told to, not after the whole-download
 * timeout.
 *
 * libcurl is loaded with dlopen on the first fetch, not linked: its
 * dependency tree (gnutls, krb5, ldap, ssh2, nghttp2, ...) cost an idle
 * agent ~3.7 MiB of mapped pages although the agent never fetches. If
 * libcurl.so.4 is missing, fetches fail with SHOAL_EIO and one error line
 * naming the library and the package to install.
 */
#include "trust/tuf.h"

#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/dynlib.h"
#include "shoal/limits.h"
#include "shoal/log.h"

/* The libcurl functions used, resolved once by load_curl. */
static struct {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *h);
	const char *(*easy_strerror)(CURLcode code);
} curl;

static const struct dynlib_sym curl_syms[] = {
	{"curl_global_init", &curl.global_init},
	{"curl_easy_init", &curl.easy_init},
	{"curl_easy_setopt", &curl.easy_setopt},
	{"curl_easy_perform", &curl.easy_perform},
	{"curl_easy_getinfo", &curl.easy_getinfo},
	{"curl_easy_cleanup", &curl.easy_cleanup},
	{"curl_easy_strerror", &curl.easy_strerror},
};

struct sink {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
	bool no_mem;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb; /* curl guarantees size == 1 */
	if (n > s->max - s->len) {
		s->too_big = true;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		while (cap < s->len + n)
			cap *= 2;
		if (cap > s->max)
			cap = s->max;
		uint8_t *nb = realloc(s->buf, cap ? cap : 1);
		if (!nb) {
			s->no_mem = true;
			return 0;
		}
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, ptr, n);
	s->len += n;
	assert(s->len <= s->max);
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_load_rc = SHOAL_EIO;

/* Runs once per process: load libcurl, then its global init (which is not
 * thread-safe, hence under pthread_once). */
static void load_curl(void)
{
	char err[256];
	void *h;
	int rc = dynlib_open("libcurl.so.4", "libcurl4", curl_syms,
			     sizeof(curl_syms) / sizeof(curl_syms[0]), &h, err, sizeof(err));
	if (rc != 0) {
		char q[2 * sizeof(err)];
		shoal_log_quote(err, q, sizeof(q));
		log_error("fetch_unavailable", "error=%s", q);
		curl_load_rc = SHOAL_EIO;
		return;
	}
	if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("fetch_unavailable", "error=\"curl_global_init failed\"");
		curl_load_rc = SHOAL_EIO;
		return;
	}
	curl_load_rc = 0;
}

/* libcurl calls this about once a second, and on every chunk, also while
 * connecting or waiting for a response; non-zero aborts the transfer
 * (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	const atomic_bool *cancel = arg;
	assert(cancel);
	return atomic_load(cancel) ? 1 : 0;
}

/* Options whose refusal would weaken the fetch (an older libcurl that does
 * not know the *_STR protocol lists would otherwise silently allow more). */
static bool setopts(CURL *h, const char *url, size_t max_len, struct sink *s)
{
	return curl.easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file") == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_MAXREDIRS, (long)SHOAL_FETCH_REDIRECTS_MAX) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				(long)SHOAL_FETCH_CONNECT_TIMEOUT_MS) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)SHOAL_FETCH_TIMEOUT_MS) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
				(long)SHOAL_FETCH_LOW_SPEED_BYTES_PER_S) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)SHOAL_FETCH_LOW_SPEED_S) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_len) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
	       curl.easy_setopt(h, CURLOPT_WRITEDATA, s) == CURLE_OK;
}

static int fetch(const atomic_bool *cancel, const char *url, size_t max_len, uint8_t **out,
		 size_t *len)
{
	assert(url && out && len);
	*out = NULL;
	*len = 0;
	pthread_once(&curl_once, load_curl);
	if (curl_load_rc != 0)
		return curl_load_rc;
	assert(curl.easy_init != NULL && curl.easy_perform != NULL);
	CURL *h = curl.easy_init();
	if (!h)
		return SHOAL_ENOMEM;
	struct sink s = {NULL, 0, 0, max_len, false, false};
	bool ok = setopts(h, url, max_len, &s);
	if (ok && cancel)
		ok = curl.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
		     curl.easy_setopt(h, CURLOPT_XFERINFODATA, (void *)cancel) == CURLE_OK &&
		     curl.easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
	if (!ok) {
		curl.easy_cleanup(h);
		log_error("fetch_failed", "url=%s curl=\"libcurl refused an option (too old?)\"", url);
		return SHOAL_EIO;
	}
	CURLcode cc = curl.easy_perform(h);
	long code = 0;
	curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl.easy_cleanup(h);
	int rc = 0;
	if (cc == CURLE_OK) {
		*out = s.buf ? s.buf : malloc(1);
		if (!*out)
			return SHOAL_ENOMEM;
		*len = s.len;
		return 0;
	}
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		free(s.buf);
		return SHOAL_ESTATE; /* cancelled: the caller is stopping, not a failure to log */
	}
	if (s.too_big || cc == CURLE_FILESIZE_EXCEEDED)
		rc = SHOAL_ETOOBIG;
	else if (s.no_mem)
		rc = SHOAL_ENOMEM;
	else if (cc == CURLE_FILE_COULDNT_READ_FILE ||
		 (cc == CURLE_HTTP_RETURNED_ERROR && (code == 403 || code == 404 || code == 410)))
		rc = SHOAL_ENOTFOUND;
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		rc = SHOAL_ETIMEDOUT;
	else if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT)
		rc = SHOAL_EINVAL;
	else
		rc = SHOAL_ECONN;
	if (rc != SHOAL_ENOTFOUND)
		log_warn("fetch_failed", "url=%s curl=\"%s\" http=%ld", url, curl.easy_strerror(cc), code);
	free(s.buf);
	return rc;
}

int tuf_fetch_curl(void *arg, const char *url, size_t max_len, uint8_t **out, size_t *len)
{
	(void)arg;
	return fetch(NULL, url, max_len, out, len);
}

int tuf_fetch_curl_cancellable(void *arg, const char *url, size_t max_len, uint8_t **out,
			       size_t *len)
{
	assert(arg);
	if (atomic_load((const atomic_bool *)arg))
		return SHOAL_ESTATE;
	return fetch(arg, url, max_len, out, len);
}
