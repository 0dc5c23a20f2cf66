/*
 * cjson.h — OLPC canonical JSON over jansson values, and a bounded parser.
 *
 * Canonical form (the dialect TUF signs): object keys sorted by their UTF-8
 * bytes, no whitespace, strings with only '"' and '\' escaped (every other
 * byte, control bytes included, is written as is), integers only (a real
 * number is an error), true/false/null as themselves. The bytes signed in TUF
 * metadata are cjson_encode() of the received "signed" object, so fields this
 * code does not know are still covered by the signature.
 */
#ifndef SHOAL_CJSON_H
#define SHOAL_CJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

/* Parses len bytes of JSON (at most max_bytes, else SHOAL_ETOOBIG) with
 * duplicate keys rejected, no NUL in strings, and nesting at most
 * SHOAL_CJSON_DEPTH_MAX. On success *out holds a new reference.
 * Returns 0, SHOAL_ETOOBIG, SHOAL_EPROTO (malformed) or SHOAL_ENOMEM. */
int cjson_parse(const uint8_t *buf, size_t len, size_t max_bytes, json_t **out) SHOAL_MUST_CHECK;

/* Encodes v in canonical form into a new malloc'd buffer (*out, *out_len;
 * not NUL-terminated; free with free()). Fails with SHOAL_EINVAL on a real
 * number or nesting deeper than SHOAL_CJSON_DEPTH_MAX, SHOAL_ETOOBIG past
 * max_bytes, SHOAL_ENOMEM. On error *out is NULL. */
int cjson_encode(const json_t *v, size_t max_bytes, uint8_t **out, size_t *out_len) SHOAL_MUST_CHECK;

#endif
