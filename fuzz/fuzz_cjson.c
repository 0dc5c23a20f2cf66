/*
 * fuzz_cjson.c — the bounded JSON parser and the canonical JSON encoder on
 * arbitrary bytes.
 *
 * Properties checked: canonical output is never longer than its input (it
 * only drops whitespace and shortens escapes); re-parsing the canonical form
 * gives a value with the same canonical form, unless the form holds a raw
 * control byte (OLPC canonical JSON writes those unescaped, which is not
 * JSON, so jansson must refuse it); and a real number never encodes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/limits.h"
#include "trust/cjson.h"

/* Properties hold in every build type (assert() may be compiled out). */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

static bool has_control(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v = NULL;
	if (cjson_parse(data, size, SHOAL_TUF_METADATA_BYTES_MAX, &v) != 0)
		return 0;
	uint8_t *c1 = NULL;
	size_t n1 = 0;
	int rc = cjson_encode(v, SHOAL_TUF_METADATA_BYTES_MAX, &c1, &n1);
	json_decref(v);
	if (rc != 0) {
		CHECK(rc == SHOAL_EINVAL); /* a real number */
		CHECK(c1 == NULL);
		return 0;
	}
	CHECK(n1 <= size);
	json_t *w = NULL;
	rc = cjson_parse(c1, n1, SHOAL_TUF_METADATA_BYTES_MAX, &w);
	if (rc != 0) {
		CHECK(has_control(c1, n1));
		free(c1);
		return 0;
	}
	uint8_t *c2 = NULL;
	size_t n2 = 0;
	rc = cjson_encode(w, SHOAL_TUF_METADATA_BYTES_MAX, &c2, &n2);
	CHECK(rc == 0);
	CHECK(n2 == n1);
	CHECK(memcmp(c1, c2, n1) == 0);
	free(c1);
	free(c2);
	json_decref(w);
	return 0;
}
