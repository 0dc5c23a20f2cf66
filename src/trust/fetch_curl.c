/*
 * fetch_curl.c — the libcurl fetcher behind the TUF client's fetcher
 * interface: http://, https:// and file:// URLs, bounded in bytes and time.
 *
 * The bound is enforced while receiving: the write callback refuses the
 * chunk that would pass max_len, which aborts the transfer, so an endless
 * response never costs more than max_len bytes of memory. A Content-Length
 * over the bound fails before any body is read. Redirects may only go to
 * http/https (never from a server to a local file).
 */
#include "trust/tuf.h"

#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/limits.h"
#include "shoal/log.h"

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
static CURLcode curl_init_rc = CURLE_OK;

static void init_curl(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int tuf_fetch_curl(void *arg, const char *url, size_t max_len, uint8_t **out, size_t *len)
{
	(void)arg;
	assert(url && out && len);
	*out = NULL;
	*len = 0;
	pthread_once(&curl_once, init_curl);
	if (curl_init_rc != CURLE_OK)
		return SHOAL_EIO;
	CURL *h = curl_easy_init();
	if (!h)
		return SHOAL_ENOMEM;
	struct sink s = {NULL, 0, 0, max_len, false, false};
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, (long)SHOAL_FETCH_REDIRECTS_MAX);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)SHOAL_FETCH_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)SHOAL_FETCH_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, (long)SHOAL_FETCH_LOW_SPEED_BYTES_PER_S);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)SHOAL_FETCH_LOW_SPEED_S);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	CURLcode cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	int rc = 0;
	if (cc == CURLE_OK) {
		*out = s.buf ? s.buf : malloc(1);
		if (!*out)
			return SHOAL_ENOMEM;
		*len = s.len;
		return 0;
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
		log_warn("fetch_failed", "url=%s curl=\"%s\" http=%ld", url, curl_easy_strerror(cc), code);
	free(s.buf);
	return rc;
}
