/*
 * config.h — the agent's configuration: an INI file (/etc/shoal/shoal.conf)
 * whose every key can also be given as a flag.
 *
 *   [agent]       data, bind, join (repeatable), log_level, http
 *   [membership]  the SWIM/Lifeguard timings of struct member_config
 *   [replication] anti-entropy interval, feed retention, upstream (an HTTP
 *                 TUF repository this agent pulls from) and its interval
 *
 * Keys are unique across sections, so `--probe-interval-ms 500` names
 * [membership] probe_interval_ms without its section. Every value is checked
 * (integers against a range, addresses parsed); unknown sections and keys are
 * errors, so a typo never silently leaves a default in place.
 */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shoal/addr.h"
#include "shoal/error.h"
#include "shoal/limits.h"
#include "shoal/log.h"

/* A config file is small; anything larger is a mistake (or an attack). */
#define SHOAL_CONFIG_FILE_BYTES_MAX (64 * 1024)

struct member_config;

struct shoal_config {
	/* [agent] */
	char data[SHOAL_PATH_BYTES_MAX];        /* /var/lib/shoal */
	char bind[SHOAL_ADDR_STR_MAX];          /* 0.0.0.0:7946 */
	char join[SHOAL_SEEDS_MAX][SHOAL_ADDR_STR_MAX];
	size_t join_count;
	enum shoal_log_level log_level;         /* info */
	char http[SHOAL_ADDR_STR_MAX];          /* "" = off; loopback only */
	/* [membership] (see struct member_config) */
	uint32_t probe_interval_ms;
	uint32_t probe_timeout_ms;
	uint32_t indirect_checks;
	uint32_t suspicion_mult;
	uint32_t suspicion_max_timeout_mult;
	uint32_t awareness_max_multiplier;
	uint32_t gossip_interval_ms;
	uint32_t gossip_nodes;
	uint32_t gossip_to_the_dead_ms;
	uint32_t retransmit_mult;
	uint32_t push_pull_interval_ms;
	uint32_t dead_reclaim_ms;
	uint32_t reconnect_interval_ms;
	uint32_t stream_pings;                  /* 1; 0 = memberlist's DisableTcpPings */
	/* [replication] */
	uint32_t sync_interval_ms;
	uint32_t feed_retention_s;
	char upstream[SHOAL_UPSTREAM_URL_BYTES_MAX]; /* "" = off; http:// or https:// */
	uint32_t upstream_interval_ms;
	/* Set once a --join flag was applied: flags replace the file's seeds
	 * rather than add to them. */
	bool join_from_flags;
};

/* Fills every key with its default. */
void config_defaults(struct shoal_config *c);

/* Reads an INI file over c (which should hold defaults). On error err names
 * file, line, section and key, e.g.
 *   "/etc/shoal/shoal.conf:7: [membership] probe_interval_ms: expected an
 *    integer 1..600000, got 'abc'"
 * and c may be partly updated (callers discard it). SHOAL_ENOTFOUND if the
 * file does not exist, SHOAL_ECONFIG for anything wrong inside it. */
int config_load_file(struct shoal_config *c, const char *path, char *err,
		     size_t errlen) SHOAL_MUST_CHECK;

/* Sets one key by name (e.g. "probe_interval_ms"); "join" appends a seed.
 * SHOAL_ECONFIG with err = "KEY: what was wrong" (on error c is unchanged). */
int config_set(struct shoal_config *c, const char *key, const char *value, char *err,
	       size_t errlen) SHOAL_MUST_CHECK;

/* Applies a flag given without its leading dashes ("probe-interval-ms");
 * dashes become underscores. The first --join replaces the file's seeds. */
int config_apply_flag(struct shoal_config *c, const char *flag, const char *value,
		      char *err, size_t errlen) SHOAL_MUST_CHECK;

/* True if flag (without dashes) names a config key. */
bool config_is_flag(const char *flag);

/* Checks relations between keys (e.g. probe timeout below probe interval).
 * config_load_file calls it; call it again after applying flags. */
int config_validate(const struct shoal_config *c, char *err, size_t errlen) SHOAL_MUST_CHECK;

/* Prints every key as a flag with its section, default and range, one per
 * line, for --help texts. */
void config_print_keys(FILE *f);

/* Writes the effective configuration as an INI file (for `--print-config`
 * style output and round-trip tests). */
void config_print(const struct shoal_config *c, FILE *f);

/* Copies the [membership] keys into a member_config and sets
 * payload_bytes_max = SHOAL_UDP_PAYLOAD_BYTES_MAX. */
void config_to_member(const struct shoal_config *c, struct member_config *m);

#endif
