#!/usr/bin/env bash
# bench/membership.sh [N...]  (default: 20 50)
#
# Side-by-side membership benchmark of Debian's serf agent and shoal agent on
# 127.0.0.1: join time, failure-detection time (median of 3 SIGKILLs), idle
# RSS, idle CPU and idle bytes/s per agent, for each N; prints one table per N
# with the ratio shoal/serf and writes every figure to a JSON file.
#
# Environment:
#   SHOAL_BIN           shoal binary (default: `make build` then ./build/shoal)
#   SERF_BIN            serf binary (default /usr/bin/serf)
#   BENCH_SYSTEMS       "serf shoal" (default) or one of them
#   BENCH_IDLE_S        idle window in seconds (60)
#   BENCH_JOINS         joins measured, one at a time, the cluster growing
#                       from N-J to N agents (3)
#   BENCH_KILLS         SIGKILLs per system and N, different victims (3)
#   BENCH_SETTLE_S      pause after convergence/joins/kills (10)
#   BENCH_METHOD        log (default: event lines stamped on arrival) | poll
#   BENCH_SERF_ENCRYPT  1 (default): serf -encrypt with a random key, as shoal
#                       always seals its packets; 0: plaintext serf
#   BENCH_SHOAL_ARGS    extra flags for `shoal agent` (e.g. --log-level info)
#   BENCH_PORT_SERF / BENCH_PORT_SHOAL   port bases (17000 / 18000;
#                       serf RPC on base+500+i)
#   BENCH_OUT           JSON output path (default /tmp/shoal-bench-membership-*.json)
#   BENCH_KEEP=1        keep the temp dirs (agent logs) for inspection
#
# Needs root for tcpdump on lo (installs Debian's tcpdump if absent).
# Every process the run starts is killed by PID on exit (and gets
# PR_SET_PDEATHSIG); only its own temp dirs are removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

if ! command -v tcpdump >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y tcpdump >/dev/null
  else
    echo "bench: tcpdump missing; run: sudo apt-get install tcpdump" >&2; exit 2
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench: tcpdump on lo needs root (or CAP_NET_RAW); run as root" >&2; exit 2
fi
# The anchor: Debian's serf package (0.9.4 on Debian 12).
case " ${BENCH_SYSTEMS:-serf shoal} " in
  *" serf "*)
    if [ -z "${SERF_BIN:-}" ] && ! command -v serf >/dev/null; then
      echo "bench: installing Debian's serf (the anchor)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y serf >/dev/null
    fi ;;
esac
case " ${BENCH_SYSTEMS:-serf shoal} " in
  *" shoal "*)
    if [ -z "${SHOAL_BIN:-}" ]; then
      (cd "$root" && make build >/dev/null)
      export SHOAL_BIN="$root/build/shoal"
    fi
    if ! "$SHOAL_BIN" agent --help >/dev/null 2>&1; then
      echo "bench: $SHOAL_BIN has no working 'agent' command yet" >&2; exit 2
    fi ;;
esac

py=""
# The Python driver does the timing; forward signals so its cleanup runs.
trap 'if [ -n "$py" ]; then kill -TERM "$py" 2>/dev/null || true; wait "$py" || true; fi' INT TERM HUP
python3 "$here/membership.py" "$@" &
py=$!
wait "$py"
