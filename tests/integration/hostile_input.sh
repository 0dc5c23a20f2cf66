#!/usr/bin/env bash
# hostile_input.sh — bad input against real agents on 127.0.0.1 is dropped,
# counted in `shoal status`, and changes nothing:
#   - garbage, truncated, wrong-version and forged UDP datagrams
#   - an intruder from another fleet that holds the gossip key (its stream
#     handshake fails: the Noise prologue binds the fleet id), never listed
#     as a member
#   - a member whose admission certificate expires while it runs: its packets
#     are dropped as expired and the mesh declares it dead
#   - a config error names file, line and key; a key file with mode 0644 is
#     refused with the fix
set -u
BIN=${SHOAL_BIN:?set SHOAL_BIN}
# faketime preloads libfaketime; an ASan build must let it come first.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
T=$(mktemp -d /tmp/shoal-hostile-XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "logs:" >&2; tail -n 5 "$T"/*.log >&2; exit 1; }

free_port() {
	python3 - <<'EOF'
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
EOF
}

# jget DATA_DIR CMD PYTHON_EXPR  — evaluates EXPR on the agent's JSON reply `j`
jget() {
	"$BIN" "$2" --data "$1" --json 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print($3)"
}

# wait_for SECONDS DESCRIPTION COMMAND...  (COMMAND runs on every try: use
# eval '...' for a condition with command substitutions)
wait_for() {
	local secs=$1 what=$2; shift 2
	local end=$((SECONDS + secs))
	while [ $SECONDS -lt $end ]; do
		"$@" && return 0
		sleep 0.5
	done
	fail "timed out after ${secs}s waiting for: $what"
}

alive_count() { jget "$1" members "sum(1 for m in j['members'] if m['state']=='alive')"; }
state_of() { jget "$1" members "next((m['state'] for m in j['members'] if m['name']=='$2'), 'absent')"; }

"$BIN" fleet create --out "$T/fleet" >/dev/null || fail "fleet create"
for i in 0 1 2; do
	"$BIN" init --data "$T/a$i" --fleet "$T/fleet" --name "a$i" >/dev/null || fail "init a$i"
done
# A member whose certificate expires 45 s from now: made 365 days minus 45 s ago.
faketime -f "-$((365 * 86400 - 45))s" "$BIN" init --data "$T/short" --fleet "$T/fleet" \
	--name short --expires-days 365 >/dev/null || fail "init short-lived member"

P0=$(free_port); P1=$(free_port); P2=$(free_port); P3=$(free_port)
FAST=(--probe-interval-ms 500 --probe-timeout-ms 200 --gossip-interval-ms 100)
"$BIN" agent --data "$T/a0" --bind 127.0.0.1:$P0 "${FAST[@]}" 2>"$T/a0.log" & PIDS+=($!)
sleep 0.5
"$BIN" agent --data "$T/a1" --bind 127.0.0.1:$P1 --join 127.0.0.1:$P0 "${FAST[@]}" 2>"$T/a1.log" & PIDS+=($!)
"$BIN" agent --data "$T/a2" --bind 127.0.0.1:$P2 --join 127.0.0.1:$P0 "${FAST[@]}" 2>"$T/a2.log" & PIDS+=($!)
"$BIN" agent --data "$T/short" --bind 127.0.0.1:$P3 --join 127.0.0.1:$P0 "${FAST[@]}" 2>"$T/short.log" & PIDS+=($!)
for d in a0 a1 a2; do
	wait_for 30 "$d sees 4 alive" eval 'test "$(alive_count "$T/$d")" = 4'
done
echo "ok: 4 agents converged"

# --- garbage datagrams ---------------------------------------------------------
before=$(jget "$T/a0" status "sum(j['drops'].values()) - j['drops']['sent'] - j['drops']['accepted']")
python3 - "$P0" <<'EOF'
import os, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ("127.0.0.1", port)
for n in range(200):
    s.sendto(os.urandom(1 + n * 7 % 1400), dst)       # random junk
s.sendto(b"", dst)                                     # empty
s.sendto(b"\x01", dst)                                 # truncated header
s.sendto(b"\x02" + os.urandom(100), dst)               # wrong version
s.sendto(os.urandom(1500), dst)                        # oversized
EOF
sleep 1
after=$(jget "$T/a0" status "sum(j['drops'].values()) - j['drops']['sent'] - j['drops']['accepted']")
[ "$after" -ge $((before + 200)) ] || fail "garbage not counted as drops ($before -> $after)"
[ "$(alive_count "$T/a0")" = 4 ] || fail "garbage changed membership"
kill -0 "${PIDS[0]}" || fail "agent died on garbage"
echo "ok: $((after - before)) garbage datagrams dropped and counted; membership unchanged"

# --- intruder from another fleet holding the gossip key -----------------------
"$BIN" fleet create --out "$T/other" >/dev/null || fail "fleet create other"
"$BIN" init --data "$T/intruder" --fleet "$T/other" --name intruder >/dev/null || fail "init intruder"
cp "$T/fleet/gossip.keys" "$T/intruder/fleet/gossip.keys"
chmod 600 "$T/intruder/fleet/gossip.keys"
PI=$(free_port)
# The intruder's prologue names its own fleet, so the MACs of a0's handshake
# message fail at the intruder, which hangs up; a0 sees its handshake
# abandoned. Both count a failed handshake; no state crosses.
rej_before=$(jget "$T/a0" status "j['streams'].get('handshake', 0)")
"$BIN" agent --data "$T/intruder" --bind 127.0.0.1:$PI --join 127.0.0.1:$P0 "${FAST[@]}" 2>"$T/intruder.log" & PIDS+=($!)
wait_for 15 "a0 counts the intruder's failed handshake (wrong fleet)" \
	eval 'test "$(jget "$T/a0" status "j[\"streams\"].get(\"handshake\", 0)")" -gt "$rej_before"'
wait_for 5 "the intruder counts its failed handshake" \
	eval 'test "$(jget "$T/intruder" status "j[\"streams\"].get(\"handshake\", 0)")" -gt 0'
[ "$(jget "$T/intruder" status "j['streams'].get('connected', 0)")" = 0 ] ||
	fail "the intruder completed a push-pull"
sleep 2
for d in a0 a1 a2; do
	[ "$(state_of "$T/$d" intruder)" = absent ] || fail "$d lists the intruder"
done
echo "ok: intruder from another fleet fails the handshake and is never listed"

# --- a certificate that expires while the member runs -----------------------------
wait_for 90 "a0 declares the expired member dead" eval 'test "$(state_of "$T/a0" short)" = dead'
for d in a1 a2; do
	wait_for 20 "$d declares the expired member dead" eval 'test "$(state_of "$T/$d" short)" = dead'
done
expired=$(jget "$T/a0" status "j['drops']['expired']")
[ "$expired" -gt 0 ] || fail "no packet counted as expired"
for d in a0 a1 a2; do
	[ "$(alive_count "$T/$d")" = 3 ] || fail "$d: other members harmed"
done
echo "ok: member with an expired certificate dropped ($expired packets) and declared dead"

# --- config and key file errors ----------------------------------------------------
printf '[agent]\nbind = 127.0.0.1:1\n\n[membership]\nprobe_interval_ms = soon\n' >"$T/bad.conf"
out=$("$BIN" agent --config "$T/bad.conf" --data "$T/a0" 2>&1) && fail "bad config accepted"
echo "$out" | grep -q "bad.conf:5" || fail "config error does not name file:line: $out"
echo "$out" | grep -q "probe_interval_ms" || fail "config error does not name the key: $out"
"$BIN" init --data "$T/loose" --fleet "$T/fleet" --name loose >/dev/null || fail "init loose"
chmod 644 "$T/loose/keys/node.key"
out=$("$BIN" agent --data "$T/loose" --bind 127.0.0.1:$(free_port) 2>&1) && fail "0644 key accepted"
echo "$out" | grep -q "chmod 600" || fail "key mode error does not say how to fix: $out"
echo "ok: config error names file:line and key; loose key file refused with the fix"
echo "hostile_input: 5 passed, 0 failed"
