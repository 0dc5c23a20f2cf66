/*
 * log.h — one line per event, key=value, to stderr (journald picks it up).
 *
 *   shoal_log(SHOAL_LOG_INFO, "member_dead", "name=%s id=%s", name, hex);
 * prints
 *   ts=2026-11-25T18:30:00.123Z level=info event=member_dead name=n1 id=ab12...
 *
 * The fields after event= are the caller's; values with spaces must be quoted
 * by the caller (shoal_log_quote helps).
 */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

#include <stddef.h>

enum shoal_log_level {
	SHOAL_LOG_DEBUG = 0,
	SHOAL_LOG_INFO = 1,
	SHOAL_LOG_WARN = 2,
	SHOAL_LOG_ERROR = 3,
	SHOAL_LOG_OFF = 4,
};

/* Sets the least level printed (default info). */
void shoal_log_set_level(enum shoal_log_level level);
enum shoal_log_level shoal_log_get_level(void);
/* Parses "debug", "info", "warn", "error", "off"; returns 0 or SHOAL_EINVAL. */
int shoal_log_parse_level(const char *s, enum shoal_log_level *out);
/* Adds a fixed field (e.g. "node=n1") printed after level= on every line. */
void shoal_log_set_prefix(const char *prefix);

void shoal_log(enum shoal_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Copies s into out as a log value: bare if safe, else double-quoted with
 * \" and \\ escaped and control bytes as \xNN. Always NUL-terminates. */
void shoal_log_quote(const char *s, char *out, size_t out_size);

#define log_debug(ev, ...) shoal_log(SHOAL_LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) shoal_log(SHOAL_LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) shoal_log(SHOAL_LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) shoal_log(SHOAL_LOG_ERROR, ev, __VA_ARGS__)

#endif
