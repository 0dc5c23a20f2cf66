/* testutil.h — shared helpers for cmocka unit tests. */
#ifndef SHOAL_TESTUTIL_H
#define SHOAL_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Creates a fresh temporary directory (mkdtemp) and returns its path
 * (static storage per call slot is not used: the caller frees it). */
char *tu_tmpdir(void);
/* Removes a directory tree (best effort). */
void tu_rmtree(const char *path);
/* Writes len bytes to path with the given mode; asserts on failure. */
void tu_write_file(const char *path, const void *data, size_t len, int mode);
/* True if /proc/self/maps has a mapping whose path contains name. */
int tu_mapped(const char *name);

#endif
