/* log.c — key=value event lines on stderr. */
#include "shoal/log.h"
#include "shoal/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum shoal_log_level min_level = SHOAL_LOG_INFO;
static char prefix[128];

void shoal_log_set_level(enum shoal_log_level level) { min_level = level; }
enum shoal_log_level shoal_log_get_level(void) { return min_level; }

void shoal_log_set_prefix(const char *p)
{
	snprintf(prefix, sizeof(prefix), "%s", p ? p : "");
}

int shoal_log_parse_level(const char *s, enum shoal_log_level *out)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; i < 5; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum shoal_log_level)i;
			return 0;
		}
	}
	return SHOAL_EINVAL;
}

void shoal_log(enum shoal_log_level level, const char *event, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	if (level < min_level || level >= SHOAL_LOG_OFF)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s%s%s event=%s",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level],
			 prefix[0] ? " " : "", prefix, event);
	if (n < 0 || (size_t)n >= sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	if (fmt && fmt[0]) {
		line[n++] = ' ';
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		va_end(ap);
		if (m > 0)
			n += m;
		if ((size_t)n > sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
	}
	line[n++] = '\n';
	fwrite(line, 1, (size_t)n, stderr);
}

void shoal_log_quote(const char *s, char *out, size_t out_size)
{
	if (out_size == 0)
		return;
	int bare = s[0] != '\0';
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
			bare = 0;
	}
	if (bare) {
		snprintf(out, out_size, "%s", s);
		return;
	}
	size_t o = 0;
	const size_t room = out_size - 1;
	if (o < room)
		out[o++] = '"';
	for (const char *p = s; *p && o + 5 < room; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < ' ' || c >= 0x7f) {
			o += (size_t)snprintf(out + o, room - o + 1, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (o < room)
		out[o++] = '"';
	out[o] = '\0';
}
