/*
 * cjson.c — OLPC canonical JSON encoder and the bounded JSON parser.
 *
 * The encoder writes into a growable buffer whose size never passes the
 * caller's bound, recursing at most SHOAL_CJSON_DEPTH_MAX deep. Object keys
 * are gathered and sorted with strcmp, which compares as unsigned char, i.e.
 * by UTF-8 bytes (equal to code-point order, as python-securesystemslib).
 */
#include "trust/cjson.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/limits.h"

struct obuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max;
	int err; /* sticky: first failure wins */
};

static void put(struct obuf *b, const void *src, size_t n)
{
	if (b->err)
		return;
	if (n > b->max - b->len) {
		b->err = SHOAL_ETOOBIG;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		uint8_t *np = realloc(b->p, cap);
		if (!np) {
			b->err = SHOAL_ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	assert(b->len <= b->max);
}

static void put_str(struct obuf *b, const char *s, size_t n)
{
	size_t run = 0; /* start of the bytes not yet written */
	put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			put(b, s + run, i - run);
			put(b, "\\", 1);
			run = i; /* the quote or backslash itself follows */
		}
	}
	put(b, s + run, n - run);
	put(b, "\"", 1);
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void enc(struct obuf *b, const json_t *v, int depth)
{
	if (b->err)
		return;
	if (depth > SHOAL_CJSON_DEPTH_MAX) {
		b->err = SHOAL_EINVAL;
		return;
	}
	switch (json_typeof(v)) {
	case JSON_NULL:
		put(b, "null", 4);
		break;
	case JSON_TRUE:
		put(b, "true", 4);
		break;
	case JSON_FALSE:
		put(b, "false", 5);
		break;
	case JSON_INTEGER: {
		char num[32];
		int n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		assert(n > 0 && (size_t)n < sizeof(num));
		put(b, num, (size_t)n);
		break;
	}
	case JSON_REAL:
		b->err = SHOAL_EINVAL; /* canonical JSON has no floats */
		break;
	case JSON_STRING:
		put_str(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_ARRAY: {
		put(b, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				put(b, ",", 1);
			enc(b, json_array_get(v, i), depth + 1);
		}
		put(b, "]", 1);
		break;
	}
	case JSON_OBJECT: {
		size_t n = json_object_size(v);
		const char **keys = NULL;
		if (n) {
			keys = malloc(n * sizeof(*keys));
			if (!keys) {
				b->err = SHOAL_ENOMEM;
				return;
			}
		}
		size_t k = 0;
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val) {
			assert(k < n);
			keys[k++] = key;
		}
		assert(k == n);
		if (n > 1)
			qsort(keys, n, sizeof(*keys), cmp_keys);
		put(b, "{", 1);
		for (size_t i = 0; i < n; i++) {
			if (i)
				put(b, ",", 1);
			put_str(b, keys[i], strlen(keys[i]));
			put(b, ":", 1);
			enc(b, json_object_get(v, keys[i]), depth + 1);
		}
		put(b, "}", 1);
		free(keys);
		break;
	}
	default:
		b->err = SHOAL_EINVAL;
		break;
	}
}

int cjson_encode(const json_t *v, size_t max_bytes, uint8_t **out, size_t *out_len)
{
	assert(out && out_len);
	*out = NULL;
	*out_len = 0;
	if (!v)
		return SHOAL_EINVAL;
	struct obuf b = {NULL, 0, 0, max_bytes, 0};
	enc(&b, v, 0);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	if (!b.p) { /* cannot happen: every value writes at least one byte */
		return SHOAL_EINVAL;
	}
	*out = b.p;
	*out_len = b.len;
	return 0;
}

/* jansson bounds nesting at 2048; the encoder recurses, so bound it far
 * lower here, before anything walks the tree. */
static bool depth_ok(const json_t *v, int depth)
{
	if (depth > SHOAL_CJSON_DEPTH_MAX)
		return false;
	if (json_is_array(v)) {
		for (size_t i = 0; i < json_array_size(v); i++)
			if (!depth_ok(json_array_get(v, i), depth + 1))
				return false;
	} else if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val) {
			if (!depth_ok(val, depth + 1))
				return false;
		}
	}
	return true;
}

int cjson_parse(const uint8_t *buf, size_t len, size_t max_bytes, json_t **out)
{
	assert(out);
	*out = NULL;
	if (!buf && len)
		return SHOAL_EINVAL;
	if (len > max_bytes)
		return SHOAL_ETOOBIG;
	json_error_t jerr;
	json_t *v = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!v)
		return json_error_code(&jerr) == json_error_out_of_memory ? SHOAL_ENOMEM
									: SHOAL_EPROTO;
	if (!depth_ok(v, 0)) {
		json_decref(v);
		return SHOAL_EPROTO;
	}
	*out = v;
	return 0;
}
