/*
 * file.h — reading a whole bounded file, for the modules that read
 * metadata, state and repository files (trust, runtime).
 */
#ifndef SHOAL_FILE_H
#define SHOAL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

/* Reads the regular file at path, if it is at most max bytes, into a
 * malloc'd buffer (*out, *len; free it). Returns 0, SHOAL_ENOTFOUND,
 * SHOAL_ETOOBIG, SHOAL_EIO or SHOAL_ENOMEM; on error *out is NULL. */
int shoal_read_file(const char *path, size_t max, uint8_t **out, size_t *len) SHOAL_MUST_CHECK;

#endif
