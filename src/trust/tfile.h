/*
 * tfile.h — small-file helpers shared by the trust module (keys.c, fleet.c,
 * admission.c). Internal to src/trust/: every file the trust module reads or
 * writes is small, bounded, and either public or mode 0600.
 */
#ifndef SHOAL_TRUST_TFILE_H
#define SHOAL_TRUST_TFILE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

/* Formats a message into errbuf when errbuf is not NULL. */
void tfile_err(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reads the whole file (at most cap bytes) into buf. When secret is true the
 * file must have no group/other permission bits (SHOAL_EKEYMODE).
 * SHOAL_ENOTFOUND if missing, SHOAL_ETOOBIG if over cap, SHOAL_EIO otherwise.
 * errbuf names the file and what to do. */
int tfile_read(const char *path, uint8_t *buf, size_t cap, size_t *len,
	       int secret, char *errbuf, size_t errlen) SHOAL_MUST_CHECK;

/* Writes len bytes to path with `mode`, created exclusively (SHOAL_EEXIST if
 * present), fsync'd. On error the file does not exist afterwards. */
int tfile_write_new(const char *path, const void *data, size_t len, int mode,
		    char *errbuf, size_t errlen) SHOAL_MUST_CHECK;

/* Joins dir and name into out (cap bytes); SHOAL_ETOOBIG if it does not fit. */
int tfile_join(char *out, size_t cap, const char *dir, const char *name) SHOAL_MUST_CHECK;

#endif
