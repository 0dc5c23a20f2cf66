/* addr.c — parse, format and encode struct shoal_addr. */
#include "shoal/addr.h"
#include "shoal/error.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool addr_equal(const struct shoal_addr *a, const struct shoal_addr *b)
{
	if (a->family != b->family || a->port != b->port)
		return false;
	size_t n = a->family == SHOAL_AF_INET6 ? 16 : 4;
	return memcmp(a->ip, b->ip, n) == 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	if (*s < '0' || *s > '9')
		return SHOAL_EINVAL;
	unsigned long v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return SHOAL_EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int addr_parse(const char *s, struct shoal_addr *out)
{
	char host[SHOAL_ADDR_STR_MAX];
	struct shoal_addr a;
	memset(&a, 0, sizeof(a));
	if (strlen(s) >= sizeof(host))
		return SHOAL_EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return SHOAL_EINVAL;
		size_t n = (size_t)(close - s - 1);
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, a.ip) != 1)
			return SHOAL_EINVAL;
		a.family = SHOAL_AF_INET6;
		if (parse_port(close + 2, &a.port))
			return SHOAL_EINVAL;
	} else {
		const char *colon = strrchr(s, ':');
		if (!colon)
			return SHOAL_EINVAL;
		size_t n = (size_t)(colon - s);
		memcpy(host, s, n);
		host[n] = '\0';
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, a.ip) != 1)
			return SHOAL_EINVAL;
		a.family = SHOAL_AF_INET;
		if (parse_port(colon + 1, &a.port))
			return SHOAL_EINVAL;
	}
	*out = a;
	return 0;
}

char *addr_format(const struct shoal_addr *a, char *out)
{
	char host[INET6_ADDRSTRLEN];
	if (a->family == SHOAL_AF_INET6) {
		inet_ntop(AF_INET6, a->ip, host, sizeof(host));
		snprintf(out, SHOAL_ADDR_STR_MAX, "[%s]:%u", host, a->port);
	} else if (a->family == SHOAL_AF_INET) {
		inet_ntop(AF_INET, a->ip, host, sizeof(host));
		snprintf(out, SHOAL_ADDR_STR_MAX, "%s:%u", host, a->port);
	} else {
		snprintf(out, SHOAL_ADDR_STR_MAX, "-");
	}
	return out;
}

void addr_put(struct wr *w, const struct shoal_addr *a)
{
	wr_u8(w, a->family);
	if (a->family == SHOAL_AF_INET6)
		wr_bytes(w, a->ip, 16);
	else if (a->family == SHOAL_AF_INET)
		wr_bytes(w, a->ip, 4);
	else
		w->err = true;
	wr_u16(w, a->port);
}

bool addr_get(struct rd *r, struct shoal_addr *out)
{
	struct rd save = *r;
	struct shoal_addr a;
	memset(&a, 0, sizeof(a));
	if (!rd_u8(r, &a.family))
		goto fail;
	if (a.family == SHOAL_AF_INET6) {
		if (!rd_copy(r, a.ip, 16))
			goto fail;
	} else if (a.family == SHOAL_AF_INET) {
		if (!rd_copy(r, a.ip, 4))
			goto fail;
	} else {
		goto fail;
	}
	if (!rd_u16(r, &a.port))
		goto fail;
	*out = a;
	return true;
fail:
	*r = save;
	return false;
}
