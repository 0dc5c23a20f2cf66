#!/usr/bin/env bash
# http_api.sh — a real agent with --http serves its members and metrics on
# loopback, the same view as the control socket, and refuses non-loopback binds.
set -u
BIN=${SHOAL_BIN:?set SHOAL_BIN}
T=$(mktemp -d /tmp/shoal-http-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 5 "$T"/*.log >&2; exit 1; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$BIN" fleet create --out "$T/f" >/dev/null 2>&1 || fail "fleet create"
"$BIN" init --data "$T/a" --fleet "$T/f" --name a --tag canary >/dev/null || fail "init a"
"$BIN" init --data "$T/b" --fleet "$T/f" --name b >/dev/null || fail "init b"
PA=$(port); PB=$(port); PH=$(port)
"$BIN" agent --data "$T/a" --bind 127.0.0.1:$PA --http 127.0.0.1:$PH 2>"$T/a.log" & PIDS+=($!)
"$BIN" agent --data "$T/b" --bind 127.0.0.1:$PB --join 127.0.0.1:$PA 2>"$T/b.log" & PIDS+=($!)
ok=0
for _ in $(seq 1 60); do
	n=$(curl -sf "http://127.0.0.1:$PH/api/members" 2>/dev/null |
		python3 -c 'import json,sys; print(sum(m["state"]=="alive" for m in json.load(sys.stdin)["members"]))' 2>/dev/null)
	[ "${n:-0}" = 2 ] && { ok=1; break; }
	sleep 0.5
done
[ $ok = 1 ] || fail "/api/members never showed 2 alive"
m=$(curl -sf "http://127.0.0.1:$PH/metrics") || fail "/metrics"
echo "$m" | grep -q '^shoal_members{state="alive"} 2$' || fail "metrics lack shoal_members alive 2"
echo "$m" | grep -q '^# TYPE shoal_counters_packets_sent_total counter$' || fail "metrics lack packet counter"
echo "$m" | grep -qE '^shoal_counters_packets_sent_total [1-9][0-9]*$' || fail "no packets counted"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PH/api/status")
[ "$code" = 405 ] || fail "POST gave $code, want 405"
curl -sf "http://127.0.0.1:$PH/" | grep -q members || fail "dashboard"
out=$("$BIN" agent --data "$T/b" --bind 127.0.0.1:$(port) --http 0.0.0.0:$(port) 2>&1) && fail "non-loopback http accepted"
echo "$out" | grep -q loopback || fail "non-loopback refusal does not say why: $out"
echo "http_api: 4 passed, 0 failed"
