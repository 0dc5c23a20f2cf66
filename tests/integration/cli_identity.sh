#!/usr/bin/env bash
# cli_identity.sh — `shoal fleet create` and `shoal init` through the real
# binary: file modes, refusals, key-mode checks and the man-style --help.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
mode_is() { # path expected
	local got
	got=$(stat -c %a "$1" 2>/dev/null) || { fail "$1 missing"; return; }
	[ "$got" = "$2" ] || fail "$1 has mode $got, want $2"
}
# run EXPECTED_RC DESCRIPTION -- command...; output in $work/out, $work/err
run() {
	local want=$1 what=$2; shift 3
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	[ "$rc" = "$want" ] || fail "$what: exit $rc, want $want; stderr: $(cat "$work/err")"
}

F=$work/fleet
run 0 "fleet create" -- "$SHOAL_BIN" fleet create --out "$F" --admission-keys 3 --threshold 2
grep -Eq '^fleet_id=[0-9a-f]{32}$' "$work/out" || fail "fleet create did not print fleet_id"
mode_is "$F" 700
mode_is "$F/admission" 700
for k in 0 1 2; do mode_is "$F/admission/$k.key" 600; done
mode_is "$F/gossip.keys" 600
[ "$(head -1 "$F/admission.pub")" = "threshold 2" ] || fail "admission.pub threshold line"
[ "$(wc -l <"$F/admission.pub")" = 4 ] || fail "admission.pub should list 3 keys"

run 1 "fleet create into a non-empty dir" -- "$SHOAL_BIN" fleet create --out "$F"
grep -q "not empty" "$work/err" || fail "refusal should say the dir is not empty"
run 2 "fleet create without --out" -- "$SHOAL_BIN" fleet create
run 2 "threshold above key count" -- "$SHOAL_BIN" fleet create --out "$work/x" --admission-keys 1 --threshold 2
[ ! -e "$work/x" ] || fail "a refused fleet create left $work/x behind"

# Two nodes, one a canary.
run 0 "init n1" -- "$SHOAL_BIN" init --data "$work/n1" --fleet "$F" --name n1 --tag canary
grep -Eq '^node_id=[0-9a-f]{64}$' "$work/out" || fail "init did not print node_id"
grep -q '^name=n1$' "$work/out" || fail "init did not print the name"
grep -q '^tags=canary$' "$work/out" || fail "init did not print the tag"
id1=$(sed -n 's/^node_id=//p' "$work/out")
run 0 "init n2" -- "$SHOAL_BIN" init --data "$work/n2" --fleet "$F" --name n2 --expires-days 30 \
	--admission-key "$F/admission/0.key" --admission-key "$F/admission/2.key"
grep -q '^signatures=2 ' "$work/out" || fail "n2 should carry 2 signatures"
id2=$(sed -n 's/^node_id=//p' "$work/out")
[ -n "$id1" ] && [ "$id1" != "$id2" ] || fail "two nodes got the same id"
for n in n1 n2; do
	mode_is "$work/$n" 700
	mode_is "$work/$n/keys" 700
	mode_is "$work/$n/keys/node.key" 600
	mode_is "$work/$n/fleet/gossip.keys" 600
	[ -s "$work/$n/node.cert" ] || fail "$n/node.cert missing"
	cmp -s "$F/fleet.id" "$work/$n/fleet/fleet.id" || fail "$n/fleet/fleet.id differs"
	cmp -s "$F/gossip.keys" "$work/$n/fleet/gossip.keys" || fail "$n/fleet/gossip.keys differs"
	[ ! -e "$work/$n/fleet/admission" ] || fail "admission secret keys copied into $n"
done

# Re-init is refused and the node is left as it was.
before=$(sha256sum "$work/n1/keys/node.key" "$work/n1/node.cert")
run 1 "re-init n1" -- "$SHOAL_BIN" init --data "$work/n1" --fleet "$F" --name n1
grep -q "already holds a node" "$work/err" || fail "re-init message: $(cat "$work/err")"
[ "$before" = "$(sha256sum "$work/n1/keys/node.key" "$work/n1/node.cert")" ] ||
	fail "refused re-init changed n1"

# Below threshold: one admission key for a 2-of-3 fleet. Nothing is left.
run 1 "init with one of two needed keys" -- "$SHOAL_BIN" init --data "$work/n3" --fleet "$F" \
	--name n3 --admission-key "$F/admission/1.key"
grep -q "needs 2 admission signatures" "$work/err" || fail "threshold message: $(cat "$work/err")"
[ ! -e "$work/n3" ] || fail "a refused init left $work/n3 behind"

# A too-open admission key file is refused with the fix in the message.
chmod 644 "$F/admission/1.key"
run 1 "init with a 0644 admission key" -- "$SHOAL_BIN" init --data "$work/n4" --fleet "$F" \
	--name n4 --admission-key "$F/admission/0.key" --admission-key "$F/admission/1.key"
grep -q "mode 0644 is too open; run: chmod 600" "$work/err" || fail "key mode message: $(cat "$work/err")"
[ ! -e "$work/n4" ] || fail "a refused init left $work/n4 behind"
chmod 600 "$F/admission/1.key"

# Usage errors exit 2.
run 2 "init without --name" -- "$SHOAL_BIN" init --data "$work/n5" --fleet "$F"
run 2 "init with a bad name" -- "$SHOAL_BIN" init --data "$work/n5" --fleet "$F" --name 'a b'
run 2 "init with a bad tag" -- "$SHOAL_BIN" init --data "$work/n5" --fleet "$F" --name n5 --tag 'x/y'
run 2 "init with bad --expires-days" -- "$SHOAL_BIN" init --data "$work/n5" --fleet "$F" --name n5 --expires-days 0
run 1 "init from a missing fleet" -- "$SHOAL_BIN" init --data "$work/n5" --fleet "$work/nofleet" --name n5
grep -q "nofleet/fleet.id" "$work/err" || fail "missing fleet message should name fleet.id"

# Manual pages.
for c in fleet init; do
	run 0 "$c --help" -- "$SHOAL_BIN" "$c" --help
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
		grep -q "^$s" "$work/out" || fail "$c --help lacks $s"
	done
done

if [ "$fails" -ne 0 ]; then
	echo "cli_identity: $fails failure(s)" >&2
	exit 1
fi
echo "cli_identity: ok"
