/*
 * agent.h — the shoal agent: runs the sans-IO membership core under libuv.
 *
 * One agent per host. It owns the node identity, the SQLite state, the UDP
 * socket (sealed gossip), the TCP listener (Noise push-pull, served by worker
 * threads) and the control socket, and feeds the core with (input, now_ms).
 */
#ifndef SHOAL_RUNTIME_AGENT_H
#define SHOAL_RUNTIME_AGENT_H

#include "shoal/config.h"

/* Runs an agent until it is told to leave (SIGTERM, SIGINT, `shoal leave`).
 * Returns the process exit status: 0 after a clean leave, 1 on a start-up
 * error (already reported on stderr). */
int agent_run(const struct shoal_config *cfg);

#endif
