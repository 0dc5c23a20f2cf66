/*
 * fuzz_control.c — control_parse_request on arbitrary bytes, the parser
 * every control-socket request goes through before the agent sees it.
 *
 * Checks beyond "no crash": an accepted request is an object whose "cmd"
 * is a bounded [a-z0-9_-] string, and it survives a round trip through
 * json_dumps (what the CLI would send) unchanged; a refusal always says why.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/control.h"
#include "shoal/limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *j = control_parse_request((const char *)data, size, err, sizeof(err));
	if (!j) {
		if (err[0] == '\0')
			abort(); /* refused without a reason */
		return 0;
	}
	if (size > SHOAL_CONTROL_REQ_BYTES_MAX || !json_is_object(j))
		abort();
	const char *cmd = json_string_value(json_object_get(j, "cmd"));
	if (!cmd || strlen(cmd) == 0 || strlen(cmd) > SHOAL_CONTROL_CMD_BYTES_MAX ||
	    strspn(cmd, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(cmd))
		abort();
	char *text = json_dumps(j, JSON_COMPACT);
	if (text) {
		json_t *again = control_parse_request(text, strlen(text), err, sizeof(err));
		/* Re-encoding may lengthen (escapes), so only compare when it fits. */
		if (strlen(text) <= SHOAL_CONTROL_REQ_BYTES_MAX && (!again || !json_equal(j, again)))
			abort();
		json_decref(again);
		free(text);
	}
	json_decref(j);
	return 0;
}
