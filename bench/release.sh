#!/usr/bin/env bash
# bench/release.sh
#
# Release distribution, side by side on 127.0.0.1: a BENCH_SIZE_MB (10) MiB
# release published at one of BENCH_N (20) shoal agents until every agent
# verified and installed it (peer to peer), vs the same N nodes downloading
# the same file at once from one HTTP server (python3 -m http.server, N
# concurrent curl); BENCH_TRIALS (3) trials each, interleaved. Also bytes
# received per node / release size for the P2P run (tcpdump on lo; client
# ports charged to agents through the LD_PRELOAD shim bench/connlog.c).
# Prints a table with ratios and writes every figure to JSON.
# Details: bench/release.py.
#
# Environment:
#   SHOAL_BIN          shoal binary (default: `make build` then ./build/shoal)
#   BENCH_N            agents / HTTP clients (20)
#   BENCH_SIZE_MB      release size in MiB (10)
#   BENCH_TRIALS       trials per system (3)
#   BENCH_BYTES        1 (default): capture and count bytes (needs root for
#                      tcpdump, and cc for the shim); 0: times only
#   BENCH_SETTLE_S     pause after convergence and between runs (5)
#   BENCH_TIMEOUT_S    give up on a trial after this long (300)
#   BENCH_SHOAL_ARGS   extra flags for `shoal agent`
#   BENCH_PORT_SHOAL / BENCH_PORT_HTTP  ports (20000.. / 20900)
#   BENCH_OUT          JSON output (default /tmp/shoal-bench-release-*.json)
#   BENCH_KEEP=1       keep the temp dir (agent logs, pcaps, connect log)
#
# Every process the run starts is killed by PID on exit (and gets
# PR_SET_PDEATHSIG); only its own temp dir is removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
if [ -z "${SHOAL_BIN:-}" ]; then
  (cd "$root" && make build >/dev/null)
  export SHOAL_BIN="$root/build/shoal"
fi
command -v curl >/dev/null || { echo "bench: curl missing" >&2; exit 2; }
py=""
trap 'if [ -n "$py" ]; then kill -TERM "$py" 2>/dev/null || true; wait "$py" || true; fi' INT TERM HUP
python3 "$here/release.py" "$@" &
py=$!
wait "$py"
