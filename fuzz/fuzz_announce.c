/*
 * fuzz_announce.c — announce_decode on arbitrary bytes (announce record
 * bodies come from any admitted peer). Whatever decodes must re-encode to
 * the same bytes, and lookups by every file name must stay in bounds.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/announce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct announce a;
	if (announce_decode(data, size, &a) != 0)
		return 0;
	uint8_t out[2 + SHOAL_ANNOUNCE_FILES_MAX * 41];
	size_t len;
	if (announce_encode(&a, out, sizeof(out), &len) != 0 || len != size ||
	    memcmp(out, data, size) != 0)
		__builtin_trap();
	static const char *const names[] = {"timestamp.json", "snapshot.json", "targets.json",
					    "1.root.json", "2.root.json", "3.snapshot.json",
					    "root.json", ""};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct announce_file *f = announce_lookup(&a, names[i]);
		if (f && (f < a.files || f >= a.files + a.count))
			__builtin_trap();
	}
	return 0;
}
