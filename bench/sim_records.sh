#!/usr/bin/env bash
# bench/sim_records.sh — the record-dissemination benchmark of issue 3:
#   "Simulator at 10,000 nodes: rounds and seconds until 99% and 100% of
#    live nodes hold a record."
# For each seed:
#   shoal sim --scenario record --nodes 10000 --seed S --json
# (warm start, 20% datagram loss; at 5 s 15% of the nodes crash at once and
# a random live node publishes one signed record; the run ends when every
# live node holds it), measured from outside with GNU time (wall clock, CPU,
# peak RSS) and from the simulator's JSON (virtual time and gossip rounds
# to 50/99/100%, push vs sync arrivals, traffic per live node per second).
#
# Usage: bench/sim_records.sh [extra shoal sim flags...]
# Environment: SHOAL_BIN (default: `make build` then ./build/shoal),
#   SIM_NODES (10000), SIM_SEEDS ("1 2 3"), SIM_CPU (0),
#   SIM_OUT (JSON lines, default /tmp/shoal-bench-sim-records-<epoch>.json).
# The simulator is single-threaded; it is pinned to one core with taskset
# when available.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
if [ -z "${SHOAL_BIN:-}" ]; then
  (cd "$root" && make build >/dev/null)
  SHOAL_BIN="$root/build/shoal"
fi
nodes=${SIM_NODES:-10000}
seeds=${SIM_SEEDS:-"1 2 3"}
out=${SIM_OUT:-/tmp/shoal-bench-sim-records-$(date +%s).json}
tmp=$(mktemp -d /tmp/shoal-bench-sim-records.XXXXXX)
pid=""
cleanup() { if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

pin=()
if command -v taskset >/dev/null; then pin=(taskset -c "${SIM_CPU:-0}"); fi
: > "$out"
echo "binary: $SHOAL_BIN (sha256 $(sha256sum "$SHOAL_BIN" | cut -c1-16))"
for seed in $seeds; do
  cmd=("$SHOAL_BIN" sim --scenario record --nodes "$nodes" --seed "$seed" --json --check "$@")
  echo "command: ${pin[*]} ${cmd[*]}"
  echo "start: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f '%e %M %U %S' -o "$tmp/time" "${pin[@]}" "${cmd[@]}" > "$tmp/json" 2> "$tmp/err" &
  pid=$!
  rc=0; wait "$pid" || rc=$?
  pid=""
  if [ "$rc" != 0 ]; then
    echo "shoal sim exited $rc (seed $seed):"; cat "$tmp/err"; cat "$tmp/json"; exit 1
  fi
  echo "end: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); loadavg: $(cut -d' ' -f1-3 /proc/loadavg)"
  read -r wall maxrss_kb user sys < "$tmp/time"
  python3 - "$tmp/json" "$wall" "$maxrss_kb" "$user" "$sys" >> "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["gnu_time"] = {"wall_s": float(sys.argv[2]), "maxrss_kb": int(sys.argv[3]),
                 "user_s": float(sys.argv[4]), "sys_s": float(sys.argv[5])}
print(json.dumps(j, sort_keys=True))
PY
done

python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def s(ms):
    return "-" if ms is None else "%.3f" % (ms / 1000)
def r(n):
    return "-" if n is None else str(n)
print()
print("| seed | nodes / live | 99%: s (rounds) | 100%: s (rounds) | 50%: s | via push / sync "
      "| push msgs, bytes /live node/s | sync msgs, bytes /live node/s | wall s | CPU s | peak RSS MiB | trace_hash |")
print("|---:|---|---|---|---|---|---|---|---:|---:|---:|---|")
for j in runs:
    x, t = j["record"], j["gnu_time"]
    print("| %d | %d / %d | %s (%s) | %s (%s) | %s | %d / %d | %.2f, %.0f | %.2f, %.0f | %.1f | %.1f | %.0f | %s |" % (
        j["seed"], j["nodes"], x["live_nodes"], s(x["t99_ms"]), r(x["rounds_99"]),
        s(x["t100_ms"]), r(x["rounds_100"]), s(x["t50_ms"]), x["via_push"], x["via_sync"],
        x["push_msgs_per_node_s"], x["push_bytes_per_node_s"],
        x["sync_msgs_per_node_s"], x["sync_bytes_per_node_s"],
        t["wall_s"], t["user_s"] + t["sys_s"], t["maxrss_kb"] / 1024, j["trace_hash"]))
print()
for j in runs:
    x = j["record"]
    print("seed %d: published by n%d at %.1f s; window %.3f s; %d payloads pushed (%d lost, %d to crashed "
          "nodes, %d duplicate copies); %d syncs (%d ok, %d lost to a crashed end, %d errors), %d records "
          "moved by sync; %d signature checks; membership %.1f packets / %.0f bytes per node per s; %d sim events" % (
        j["seed"], x["publisher"], x["publish_ms"] / 1000, x["window_ms"] / 1000, x["push_packets"],
        x["push_lost"], x["push_to_down"], x["push_dups"], x["syncs_started"], x["syncs_ok"],
        x["syncs_failed"], x["syncs_error"], x["sync_records"], x["sig_verifies"],
        j["msgs_per_node_s"], j["bytes_per_node_s"], j["events"]))
PY
echo "json: $out"
