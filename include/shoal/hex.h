/* hex.h — hex encoding for ids and keys in logs, files and the CLI. */
#ifndef SHOAL_HEX_H
#define SHOAL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n hex digits and a NUL into out (2*n + 1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2*n hex digits from s into out; returns 0 or SHOAL_EINVAL. */
int hex_decode(const char *s, uint8_t *out, size_t n);

#endif
