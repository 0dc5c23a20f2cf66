#!/usr/bin/env bash
# sim_record.sh — the record scenario through the CLI: with 15% of the nodes
# crashed and 20% datagram loss, one signed record reaches every live node
# (`shoal sim --scenario record --check`), the JSON says how (push, sync,
# times, rounds), the text table prints the same, the same seed gives the
# same trace_hash, and a run where the record cannot spread fails loudly
# with the seed and a replay command.
#
# 1,000 nodes on an optimised binary; a sanitizer build (~30x slower) gets
# 200 nodes, as tests/sim/sim_scenarios.sh does. SIM_NODES overrides both.
set -u
SHOAL_BIN=${SHOAL_BIN:?SHOAL_BIN must point at the shoal binary}
if nm -D "$SHOAL_BIN" 2>/dev/null | grep -q '__asan_init'; then
	NODES=${SIM_NODES:-200}
	echo "sanitizer build: $NODES nodes"
else
	NODES=${SIM_NODES:-1000}
fi
fail=0
tmp=$(mktemp -d /tmp/shoal-sim-record.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The property, with the figures checked from the JSON.
start=$SECONDS
if ! "$SHOAL_BIN" sim --scenario record --nodes "$NODES" --seed 3 --json --check >"$tmp/run.json"; then
	echo "FAIL record: shoal sim --scenario record --nodes $NODES --seed 3 --check (replay line above)"
	fail=1
elif ! python3 - "$tmp/run.json" "$NODES" <<'PY'; then
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
r = j["record"]
crashed = int(0.15 * n + 0.5)
errs = []
def want(cond, what):
    if not cond:
        errs.append(what)
want(j["scenario"] == "record" and j["check"] is True, "check passed")
want(abs(j["loss"] - 0.2) < 1e-9, "default loss 0.2, got %s" % j["loss"])
want(j["crashes"] == crashed, "%d crashed, got %s" % (crashed, j["crashes"]))
want(r["live_nodes"] == n - crashed, "live nodes %d" % (n - crashed))
want(r["holders"] == r["live_nodes"], "every live node holds it: %s/%s" % (r["holders"], r["live_nodes"]))
want(r["via_push"] + r["via_sync"] + 1 == r["holders"], "push + sync + publisher = holders")
want(r["t50_ms"] <= r["t99_ms"] <= r["t100_ms"] <= 60000, "t50 <= t99 <= t100 <= 60 s: %s %s %s" % (r["t50_ms"], r["t99_ms"], r["t100_ms"]))
want(r["rounds_99"] <= 10, "99%% within 10 rounds, got %s" % r["rounds_99"])
want(r["push_lost"] > 0 and r["push_to_down"] > 0, "loss and crashes hit the pushes")
want(r["sig_verifies"] == r["live_nodes"], "one signature check per node")
want(r["syncs_error"] == 0 and r["bad_sig"] == 0, "no protocol error, no bad signature")
for k in ("push_msgs_per_node_s", "push_bytes_per_node_s", "sync_msgs_per_node_s", "sync_bytes_per_node_s"):
    want(r[k] > 0, k + " > 0")
want(j["peak_rss_mb"] > 0 and len(j["trace_hash"]) == 16, "peak_rss_mb and trace_hash")
if errs:
    print("FAIL record json:", "; ".join(errs), json.dumps(j))
    sys.exit(1)
print("ok   record (%d s wall): %d/%d live nodes, 99%% at %d ms (%d rounds), 100%% at %d ms (%d rounds), %d via push, %d via sync"
      % (int(j["wall_s"]), r["holders"], r["live_nodes"], r["t99_ms"], r["rounds_99"],
         r["t100_ms"], r["rounds_100"], r["via_push"], r["via_sync"]))
PY
	fail=1
fi
echo "     ($((SECONDS - start)) s)"

# The table carries the same figures.
if ! out=$("$SHOAL_BIN" sim --scenario record --nodes 100 --seed 4); then
	echo "FAIL table: shoal sim --scenario record --nodes 100 --seed 4 exited non-zero"
	fail=1
elif ! grep -q '^record        published by n' <<<"$out" || ! grep -q '99% hold .* gossip rounds' <<<"$out" ||
	! grep -q '100% hold .* gossip rounds' <<<"$out" || ! grep -q '^  sync ' <<<"$out"; then
	echo "FAIL table: record lines missing:"
	echo "$out"
	fail=1
else
	echo "ok   table"
fi

# Replay: the same seed twice gives the same trace hash; another seed does not.
hash_of() {
	"$SHOAL_BIN" sim --scenario record --nodes 200 --json "$@" |
		sed -n 's/.*"trace_hash":"\([0-9a-f]*\)".*/\1/p'
}
h1=$(hash_of --seed 7)
h2=$(hash_of --seed 7)
h3=$(hash_of --seed 8)
if [ -z "$h1" ] || [ "$h1" != "$h2" ]; then
	echo "FAIL replay: seed=7 gave trace_hash '$h1' then '$h2'"
	fail=1
elif [ "$h1" = "$h3" ]; then
	echo "FAIL replay: seeds 7 and 8 gave the same trace_hash $h1"
	fail=1
else
	echo "ok   replay: seed=7 -> $h1 twice, seed=8 -> $h3"
fi

# Every datagram lost and a 1 s window: only the publisher and the few it
# happens to sync with can hold the record; --check fails naming the
# property, the seed and the replay command.
if msg=$("$SHOAL_BIN" sim --scenario record --nodes 30 --seed 9 --loss 1 --seconds 6 --check 2>&1 >/dev/null); then
	echo "FAIL check: a record run with every datagram lost passed --check"
	fail=1
elif ! grep -Eq 'record: [0-9]+ of 25 live nodes hold the record' <<<"$msg" || ! grep -q 'seed=9' <<<"$msg" ||
	! grep -q 'replay: shoal sim --scenario record --nodes 30 --seed 9 --seconds 6 --loss 1 .*--crash-fraction 0.15 --warm --check' <<<"$msg"; then
	echo "FAIL check: message lacks property, seed or replay command: $msg"
	fail=1
else
	echo "ok   check: an impossible spread fails with seed and replay command"
fi

exit $fail
