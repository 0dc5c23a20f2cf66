/* announce.c — announce record bodies (see announce.h). */
#include "core/announce.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "shoal/bytes.h"

const char *announce_role_name(uint8_t role)
{
	switch (role) {
	case ANNOUNCE_ROOT: return "root";
	case ANNOUNCE_TIMESTAMP: return "timestamp";
	case ANNOUNCE_SNAPSHOT: return "snapshot";
	case ANNOUNCE_TARGETS: return "targets";
	default: return "unknown";
	}
}

static bool valid(const struct announce *a)
{
	if (a->count == 0 || a->count > SHOAL_ANNOUNCE_FILES_MAX)
		return false;
	int timestamps = 0;
	for (uint8_t i = 0; i < a->count; i++) {
		const struct announce_file *f = &a->files[i];
		if (f->role < ANNOUNCE_ROOT || f->role > ANNOUNCE_TARGETS)
			return false;
		if (f->role == ANNOUNCE_TIMESTAMP && ++timestamps > 1)
			return false;
		for (uint8_t j = 0; j < i; j++)
			if (a->files[j].role == f->role && a->files[j].version == f->version)
				return false;
	}
	return true;
}

int announce_encode(const struct announce *a, uint8_t *out, size_t cap, size_t *len)
{
	assert(a && out && len);
	if (!valid(a))
		return SHOAL_EINVAL;
	struct wr w = wr_init(out, cap);
	wr_u8(&w, ANNOUNCE_FORMAT);
	wr_u8(&w, a->count);
	for (uint8_t i = 0; i < a->count; i++) {
		wr_u8(&w, a->files[i].role);
		wr_u32(&w, a->files[i].version);
		wr_u32(&w, a->files[i].length);
		wr_bytes(&w, a->files[i].sha256, 32);
	}
	if (!wr_ok(&w))
		return SHOAL_ETOOBIG;
	*len = w.len;
	return 0;
}

int announce_decode(const uint8_t *buf, size_t len, struct announce *out)
{
	assert((buf || len == 0) && out);
	memset(out, 0, sizeof(*out));
	struct rd r = rd_init(buf, len);
	uint8_t format;
	if (!rd_u8(&r, &format) || !rd_u8(&r, &out->count))
		return SHOAL_ETRUNC;
	if (format != ANNOUNCE_FORMAT)
		return SHOAL_EVERSION;
	if (out->count == 0 || out->count > SHOAL_ANNOUNCE_FILES_MAX)
		return SHOAL_EPROTO;
	for (uint8_t i = 0; i < out->count; i++) {
		struct announce_file *f = &out->files[i];
		if (!rd_u8(&r, &f->role) || !rd_u32(&r, &f->version) ||
		    !rd_u32(&r, &f->length) || !rd_copy(&r, f->sha256, 32))
			return SHOAL_ETRUNC;
	}
	if (!rd_empty(&r))
		return SHOAL_ETRAILING;
	return valid(out) ? 0 : SHOAL_EPROTO;
}

const struct announce_file *announce_lookup(const struct announce *a, const char *filename)
{
	assert(a && filename);
	static const char *const suffix[] = {
		[ANNOUNCE_ROOT] = "root.json", [ANNOUNCE_TIMESTAMP] = "timestamp.json",
		[ANNOUNCE_SNAPSHOT] = "snapshot.json", [ANNOUNCE_TARGETS] = "targets.json",
	};
	for (uint8_t i = 0; i < a->count; i++) {
		const struct announce_file *f = &a->files[i];
		char versioned[64];
		snprintf(versioned, sizeof(versioned), "%u.%s", (unsigned)f->version,
			 suffix[f->role]);
		if (strcmp(filename, versioned) == 0)
			return f;
		/* Unversioned names: timestamp always; snapshot and targets
		 * when the repository has no consistent snapshots. */
		if (f->role != ANNOUNCE_ROOT && strcmp(filename, suffix[f->role]) == 0)
			return f;
	}
	return NULL;
}
