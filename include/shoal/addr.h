/*
 * addr.h — a network address as the core sees it: IPv4 or IPv6 plus port.
 * Pure data; converting to and from sockaddr lives in the runtime.
 */
#ifndef SHOAL_ADDR_H
#define SHOAL_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/bytes.h"

enum { SHOAL_AF_NONE = 0, SHOAL_AF_INET = 4, SHOAL_AF_INET6 = 6 };

struct shoal_addr {
	uint8_t family;  /* SHOAL_AF_* */
	uint8_t ip[16];  /* IPv4 in the first 4 bytes */
	uint16_t port;
};

#define SHOAL_ADDR_STR_MAX 64 /* "[v6]:port" with NUL */

bool addr_equal(const struct shoal_addr *a, const struct shoal_addr *b);
/* Parses "1.2.3.4:port" or "[::1]:port"; returns 0 or SHOAL_EINVAL. */
int addr_parse(const char *s, struct shoal_addr *out);
/* Formats into out (SHOAL_ADDR_STR_MAX bytes); returns out. */
char *addr_format(const struct shoal_addr *a, char *out);
/* Wire form: family(u8) | ip (4 or 16) | port(u16). */
void addr_put(struct wr *w, const struct shoal_addr *a);
bool addr_get(struct rd *r, struct shoal_addr *out) SHOAL_MUST_CHECK;

#endif
