/*
 * upstream.h — the agent's bridge from a plain HTTP(S) TUF repository into
 * the mesh (DESIGN §4.6: "a node can also pull from a plain HTTP(S) TUF
 * repository (libcurl), so one host, or all, can bridge an existing content
 * server into the mesh").
 *
 * Every interval, on a thread of its own, it runs the TUF client workflow
 * (trust/tuf.h, over libcurl) against URL/metadata/ with its own metadata
 * directory, seeded from the node's trusted root. When the verified
 * timestamp version is newer than the last one it injected, it downloads
 * every target of the verified top-level targets from URL/targets/ (each
 * bounded by its signed length and checked against every signed hash), lays
 * the verified files out as a repository directory, as `shoal release
 * publish` leaves one, and hands that to the inject callback (the replica
 * ingests it and appends an announce record to this node's feed). The mesh,
 * this node included, then verifies the announce against its own trust
 * anchor like any other. Nothing that failed a check is laid out or
 * injected: a failed step is logged (event upstream_failed, with the step),
 * counted, and shown by upstream_status.
 *
 *   DATA/upstream/metadata/   the TUF client's metadata (root.json, ...)
 *   DATA/upstream/roots/      N.root.json verified between the node's trust
 *                             anchor (DATA/trust/root.json) and the newest
 *                             root, each signed by a threshold of the one
 *                             before and of its own keys
 *   DATA/upstream/targets/    verified targets (names percent-encoded), kept
 *                             for the next version while unchanged
 *   DATA/upstream/repo/       the repository handed to inject; rebuilt for
 *                             each injection and removed after
 *   DATA/upstream/state.json  what was injected last (timestamp and targets
 *                             versions, announce seq), so a restart does not
 *                             inject it again
 *
 * Delegated targets roles are verified by the client only when a search
 * needs them; the mesh's announce carries top-level metadata only, so only
 * top-level targets are pulled and announced.
 *
 * Threads: upstream_poll runs on the upstream thread (or a test's);
 * upstream_status and upstream_stop are safe from any thread.
 */
#ifndef SHOAL_RUNTIME_UPSTREAM_H
#define SHOAL_RUNTIME_UPSTREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/error.h"

struct upstream;

/* Makes the repository in repo_dir an announce in this node's feed. Called
 * on the upstream thread; sets *announce_seq. 0, or a SHOAL_E* with err. */
typedef int (*upstream_inject_fn)(void *arg, const char *repo_dir, uint64_t *announce_seq,
				  char *err, size_t errlen);

struct upstream_config {
	const char *url;      /* repository base: URL/metadata/ and URL/targets/ */
	uint32_t interval_ms; /* between pulls, >= SHOAL_UPSTREAM_INTERVAL_MS_MIN */
};

/* Prepares DATA/upstream and reads state.json; starts no thread. The URL is
 * used as given (the config allows http:// and https:// only). */
int upstream_open(const char *data_dir, const struct upstream_config *cfg,
		  upstream_inject_fn inject, void *inject_arg, struct upstream **out, char *err,
		  size_t errlen) SHOAL_MUST_CHECK;

/* Starts the thread: a pull at once, then one every interval. */
int upstream_start(struct upstream *u) SHOAL_MUST_CHECK;

/* One pull with now_s as the TUF update start time: refresh; if the
 * timestamp advanced past the last injection, download, lay out, inject
 * and persist. Returns 0 (nothing new, or injected: *injected says which;
 * injected may be NULL) or the SHOAL_E* of the step that failed. Blocking;
 * one caller at a time. */
int upstream_poll(struct upstream *u, int64_t now_s, bool *injected) SHOAL_MUST_CHECK;

/* Tells the thread to stop: a fetch in progress is abandoned within about a
 * second. NULL is a no-op. */
void upstream_stop(struct upstream *u);
/* Stops, joins the thread and frees. NULL is a no-op. */
void upstream_close(struct upstream *u);

/* {"url","interval_ms","ok","attempts","failures","injections",
 *  "last_attempt_ms","last_success_ms","trusted_timestamp_version",
 *  "last_injected_version","last_injected_timestamp_version",
 *  "last_injected_seq","last_injected_ms","last_error","last_error_ms"}
 * (times in ms since the epoch, 0 = never; versions 0 = none; last_error
 * "STEP: what failed", null if none; ok: the last pull succeeded), or NULL
 * on ENOMEM. */
json_t *upstream_status(struct upstream *u);

#endif
