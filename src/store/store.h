/*
 * store.h — the node's SQLite state: DATA/state.db.
 *
 * One database per data dir, opened by the agent (the monitor) only. WAL,
 * synchronous=FULL: a function that returns 0 after a write has made it
 * durable, so the caller may announce it (DESIGN §5). The schema version is
 * PRAGMA user_version; every migration lives in store.c's table.
 *
 * Tables:
 *   node     one row: incarnation, started_count, last_start_ms
 *   members  the last membership snapshot, rejoined at start
 *
 * Errors: SHOAL_EDB (or SHOAL_EVERSION for a schema newer than this binary)
 * with err naming the database path and SQLite's message. A corrupt or
 * foreign file is refused at open, never half-read.
 */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/membership.h"
#include "shoal/addr.h"
#include "shoal/error.h"
#include "shoal/limits.h"

#define STORE_DB_FILE "state.db"
#define STORE_ERR_BYTES 512 /* a good size for the err buffers below */

struct store;

/* One member as saved in a snapshot. Fields have the limits of struct
 * member_identity; tags may not contain ',' (they are stored joined). */
struct store_member {
	uint8_t id[SHOAL_NODE_ID_BYTES];
	char name[SHOAL_NAME_BYTES_MAX + 1];
	uint8_t tags_count;
	char tags[SHOAL_TAGS_COUNT_MAX][SHOAL_TAG_BYTES_MAX + 1];
	struct shoal_addr addr; /* family SHOAL_AF_NONE when unknown */
	enum member_state state;
	uint32_t incarnation;
	uint64_t state_change_ms;
};

/* Opens (creating if needed) DATA/state.db, creating DATA (mode 0700) if it
 * does not exist and the database file with mode 0600. Applies pending
 * migrations and runs a quick integrity check. Returns 0 and *out, or
 * SHOAL_EDB / SHOAL_EVERSION / SHOAL_ENOMEM / SHOAL_EINVAL with err set. */
int store_open(const char *data_dir, struct store **out, char *err,
	       size_t errlen) SHOAL_MUST_CHECK;
/* Closes the database; NULL is a no-op. */
void store_close(struct store *s);

/* Process-wide SQLite memory settings for a long-lived process with a small
 * database: no up-front page-cache block per connection (SQLite otherwise
 * allocates and touches 20 pages, ~87 KiB, for every connection it opens;
 * pages are then allocated one by one as they are read). Must run before
 * the process's first SQLite call; returns SHOAL_ESTATE if SQLite is
 * already initialised (nothing changed), 0 otherwise. */
int store_config_lean(void);

/* The database file's path (for messages). */
const char *store_path(const struct store *s);
/* The last error text set by a failing call on s ("" if none). */
const char *store_errmsg(const struct store *s);

/* Reads the node's current incarnation (0 for a new database). */
int store_get_incarnation(struct store *s, uint32_t *inc) SHOAL_MUST_CHECK;

/* Called once at every agent start, before the agent announces itself:
 * durably increments the incarnation (and started_count, last_start_ms from
 * the wall clock) and returns the new incarnation. On error nothing is
 * changed; SHOAL_ETOOBIG when the incarnation would wrap. */
int store_bump_incarnation(struct store *s, uint32_t *new_inc) SHOAL_MUST_CHECK;

/* Replaces the members snapshot with m[0..n) in one transaction (n at most
 * SHOAL_MEMBERS_MAX; ids must be distinct). On error the previous snapshot
 * is kept: SHOAL_EINVAL for a member out of bounds, SHOAL_ETOOBIG, SHOAL_EDB. */
int store_save_members(struct store *s, const struct store_member *m, size_t n,
		       uint64_t now_ms) SHOAL_MUST_CHECK;

/* Loads the members snapshot (ordered by name, then id) into a malloc'd
 * array the caller frees (NULL when n is 0). A row that breaks the limits
 * gives SHOAL_EDB naming the row; nothing is returned then. */
int store_load_members(struct store *s, struct store_member **out,
		       size_t *n) SHOAL_MUST_CHECK;

/* Fills a store_member from a membership snapshot (info->ident set). */
void store_member_from_info(const struct member_info *info,
			    struct store_member *out);

#endif
