#!/usr/bin/env bash
# demo.sh — `shoal demo` (what `make demo` runs) through the real binary:
# a full run succeeds with every phase printed (membership: convergence,
# detection, rejoin; releases: a 2-of-3 release verified and installed
# everywhere, a 1-key one and a replayed older one rejected everywhere with
# the reason) and leaves no temp dir and no process behind; Ctrl-C (SIGINT) mid-run stops every agent, and --keep
# keeps the temp dir; usage errors exit 2.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-demotest.XXXXXX")
demo_pid=""
trap '[ -n "$demo_pid" ] && kill -KILL "$demo_pid" 2>/dev/null; rm -rf "$work"' EXIT
export TMPDIR=$work   # the demo makes its temp dir in here
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect() { # PATTERN FILE WHAT
	grep -Eq -- "$1" "$2" || fail "$3: no line matching /$1/ in:
$(cat "$2")"
}
# Lists processes still running from a demo dir (there must be none).
leftovers() { ps -eo pid=,args= | grep -F -- "$1/" | grep -v grep; }

"$SHOAL_BIN" demo --help >"$work/help" || fail "demo --help exited $?"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
	grep -q "^$s" "$work/help" || fail "demo --help lacks $s"
done
"$SHOAL_BIN" demo --nodes 1 >/dev/null 2>&1
[ $? = 2 ] || fail "demo --nodes 1 should be a usage error (exit 2)"
"$SHOAL_BIN" demo --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "demo --bogus should be a usage error (exit 2)"

# 1. A whole run, bounded.
timeout 180 "$SHOAL_BIN" demo >"$work/out" 2>"$work/err"
rc=$?
[ $rc = 0 ] || fail "demo exited $rc; stderr: $(cat "$work/err")"
expect '^t=[0-9.]+s converged: 8/8 agents see 8 alive' "$work/out" "convergence"
expect '^ +n0 +127\.0\.0\.1:[0-9]+ +alive +inc=1 +tags=canary$' "$work/out" "n0 tagged canary"
expect '^n3 declared dead by 7/7 agents: first [0-9.]+ s, last [0-9.]+ s$' "$work/out" "detection"
expect '^n3 rejoined: 8/8 agents see it alive \(incarnation [0-9]+, was 1\)' "$work/out" "rejoin"
expect '^the 2-of-3 release: verified by 8/8 agents within [0-9.]+ s \(targets version 2\)$' "$work/out" "release verified everywhere"
expect '^  installed as DATA/releases/2/rules%2Fdemo.yar on 8/8 agents' "$work/out" "release installed everywhere"
expect '^the 1-key release: rejected by 8/8 agents within [0-9.]+ s \(targets version 3\)$' "$work/out" "1-key release rejected everywhere"
expect '^  reason: role targets: not signed by a threshold of the targets keys' "$work/out" "1-key rejection reason"
expect '^the replayed older release: rejected by 8/8 agents within [0-9.]+ s \(targets version 2\)$' "$work/out" "replay rejected everywhere"
expect '^  reason: timestamp: version 2 is older than the trusted 3' "$work/out" "replay rejection reason"
expect 'stopped 8 agents with SIGTERM .*\(8 exited 0\)$' "$work/out" "stop"
expect 'demo complete: every step succeeded$' "$work/out" "completion"
dir=$(sed -n 's/.* nodes in \(.*\) (n0 tagged canary)$/\1/p' "$work/out")
[ -n "$dir" ] || fail "demo did not print its temp dir"
[ -n "$dir" ] && [ ! -e "$dir" ] || fail "demo left $dir behind"
[ -z "$dir" ] || [ -z "$(leftovers "$dir")" ] || fail "processes left: $(leftovers "$dir")"

# 2. SIGINT once the mesh has converged, with --keep.
"$SHOAL_BIN" demo --keep >"$work/out2" 2>"$work/err2" &
demo_pid=$!
for _ in $(seq 1 300); do   # up to 30 s
	grep -q 'converged:' "$work/out2" && break
	sleep 0.1
done
grep -q 'converged:' "$work/out2" || fail "demo --keep did not converge in 30 s: $(cat "$work/out2" "$work/err2")"
kill -INT "$demo_pid"
for _ in $(seq 1 300); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$demo_pid" 2>/dev/null; then
	fail "demo still runs 30 s after SIGINT"
else
	wait "$demo_pid"
	rc=$?
	[ $rc = 130 ] || fail "demo exited $rc after SIGINT, want 130"
fi
demo_pid=""
expect '^interrupted: stopped every agent the demo started$' "$work/out2" "interrupt"
dir=$(sed -n 's/.* nodes in \(.*\) (n0 tagged canary)$/\1/p' "$work/out2")
[ -n "$dir" ] && [ -d "$dir" ] && [ -s "$dir/n0.log" ] || fail "--keep did not keep the temp dir '$dir' with logs"
[ -z "$dir" ] || [ -z "$(leftovers "$dir")" ] || fail "processes left after SIGINT: $(leftovers "$dir")"

[ $fails = 0 ] || exit 1
echo "demo.sh: PASS"
