/* hex.c — lower-case hex encode/decode (libsodium's constant-time helpers). */
#include "shoal/hex.h"
#include "shoal/error.h"

#include <sodium.h>
#include <string.h>

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	sodium_bin2hex(out, 2 * n + 1, in, n);
}

int hex_decode(const char *s, uint8_t *out, size_t n)
{
	size_t got = 0;
	const char *end = NULL;
	if (strlen(s) != 2 * n)
		return SHOAL_EINVAL;
	if (sodium_hex2bin(out, n, s, 2 * n, NULL, &got, &end) != 0 || got != n)
		return SHOAL_EINVAL;
	return 0;
}
