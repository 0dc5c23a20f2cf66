#!/usr/bin/env bash
# bench/records.sh [N...]  (default: 20 50)
#
# Record dissemination, side by side on 127.0.0.1: time for a shoal feed
# record (the announce `shoal release publish --data` appends) to reach all
# N agents vs a serf user event (`serf event -coalesce=false`), median of
# BENCH_TRIALS trials per system and N; prints a table per N with the ratio
# shoal/serf and writes every sample to JSON. Details: bench/records.py.
#
# Environment:
#   SHOAL_BIN          shoal binary (default: `make build` then ./build/shoal)
#   SERF_BIN           serf binary (default /usr/bin/serf)
#   BENCH_TRIALS       trials per system and N (5)
#   BENCH_SYSTEMS      "serf shoal" (default) or one of them
#   BENCH_SETTLE_S     pause after convergence and between trials (3)
#   BENCH_SHOAL_ARGS   extra flags for `shoal agent`
#   BENCH_PORT_SERF / BENCH_PORT_SHOAL  port bases (19000 / 20000; serf RPC
#                      on base+500+i)
#   BENCH_OUT          JSON output (default /tmp/shoal-bench-records-*.json)
#   BENCH_KEEP=1       keep the temp dirs (agent logs)
#
# Every process the run starts is killed by PID on exit (and gets
# PR_SET_PDEATHSIG); only its own temp dirs are removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
if [ -z "${SHOAL_BIN:-}" ]; then
  (cd "$root" && make build >/dev/null)
  export SHOAL_BIN="$root/build/shoal"
fi
command -v "${SERF_BIN:-serf}" >/dev/null || { echo "bench: serf missing (apt-get install serf)" >&2; exit 2; }
py=""
trap 'if [ -n "$py" ]; then kill -TERM "$py" 2>/dev/null || true; wait "$py" || true; fi' INT TERM HUP
python3 "$here/records.py" "$@" &
py=$!
wait "$py"
