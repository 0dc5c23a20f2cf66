#!/usr/bin/env bash
# log_cli.sh — `shoal log`, `shoal log verify` and `shoal log evidence`
# through the real binary on a real node data dir. Records are written by
# the test-only helper feedgen (tests/tools/feedgen.c, built next to shoal)
# through the store API; the tamper step edits state.db with the sqlite3
# command-line tool, behind the store's back.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
GEN=$(dirname "$SHOAL_BIN")/feedgen
[ -x "$GEN" ] || { echo "FAIL: $GEN not built (tests/tools/feedgen.c)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "FAIL: the sqlite3 tool is needed (scripts/deps.sh)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# run EXPECTED_RC DESCRIPTION -- command...; output in $work/out, $work/err
run() {
	local want=$1 what=$2; shift 3
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	[ "$rc" = "$want" ] || fail "$what: exit $rc, want $want; stderr: $(cat "$work/err")"
}
has() { grep -q -- "$2" "$work/$1" || fail "$3: no '$2' in $1: $(head -c 600 "$work/$1")"; }
lines() { # FILE PATTERN COUNT WHAT
	local n
	n=$(grep -c -- "$2" "$work/$1")
	[ "$n" = "$3" ] || fail "$4: $n lines match '$2', want $3"
}

run 0 "fleet create" -- "$SHOAL_BIN" fleet create --out "$work/fleet"
run 0 "init n1" -- "$SHOAL_BIN" init --data "$work/n1" --fleet "$work/fleet" --name n1
id1=$(sed -n 's/^node_id=//p' "$work/out")
D=$work/n1

# Before the node has a database: an error naming the file, nothing created.
run 1 "log before any state" -- "$SHOAL_BIN" log --data "$D"
has err "state.db" "missing database message"
[ ! -e "$D/state.db" ] || fail "shoal log created $D/state.db"
run 1 "verify before any state" -- "$SHOAL_BIN" log verify --data "$D"

# The node's own feed and a peer's feed (delivered newest first).
run 0 "append health" -- "$GEN" append "$D" health "release=r1 state=active" 3
run 0 "append alert" -- "$GEN" append "$D" alert "rule=eicar sha256=275a021b path=/tmp/eicar.com severity=high"
run 0 "append announce" -- "$GEN" announce "$D"
run 0 "peer feed" -- "$GEN" peer "$D" 9 6
peer=$(sed -n 's/^author=//p' "$work/out")
[ ${#peer} = 64 ] || fail "feedgen peer did not print the author"
run 0 "names" -- "$GEN" names "$D" "$id1=n1" "$peer=db-02"
db_sum=$(sha256sum <"$D/state.db")

# List: header plus one line per record, by author and seq.
run 0 "log" -- "$SHOAL_BIN" log --data "$D"
lines out '' 12 "log lines"
head -1 "$work/out" | grep -q '^AUTHOR  *NAME  *SEQ  *KIND  *TIME  *HASH  *BODY$' || fail "header: $(head -1 "$work/out")"
has out "^${id1:0:16}  n1  .*  2  health  .*release=r1 state=active$" "own health record"
has out "alert .*rule=eicar sha256=275a021b path=/tmp/eicar.com" "alert body"
has out "announce: timestamp v5, snapshot v5" "decoded announce body"
has out "^${peer:0:16}  db-02  .*  6  alert .*peer=9 n=6$" "peer head"

run 0 "log --author name prefix" -- "$SHOAL_BIN" log --data "$D" --author db
lines out "db-02" 6 "--author db"
run 0 "log --author id prefix" -- "$SHOAL_BIN" log --data "$D" --author "${id1:0:10}"
lines out "  n1  " 5 "--author id prefix"
run 0 "log --author full id" -- "$SHOAL_BIN" log --data "$D" --author "$peer"
lines out "db-02" 6 "--author full id"
run 1 "log --author unknown" -- "$SHOAL_BIN" log --data "$D" --author nosuchnode
has err "no feed here is by an author matching 'nosuchnode'" "unknown author message"
run 0 "log list --kind alert" -- "$SHOAL_BIN" log list --data "$D" --kind alert
lines out " alert " 4 "--kind alert (1 own, 3 peer)"
run 0 "log --author + --kind" -- "$SHOAL_BIN" log --data="$D" --author=n1 --kind=announce
lines out " announce " 1 "--author n1 --kind announce"

# JSON: one compact object per record, full ids, text bodies as "body".
run 0 "log --json" -- "$SHOAL_BIN" log --data "$D" --json
head -1 "$work/out" | grep -q '^{"records": \[$' || fail "json start: $(head -1 "$work/out")"
lines out '"seq":' 11 "json records"
has out "\"author\":\"$id1\"" "json full author id"
has out '"name":"db-02"' "json name"
has out '"body":"release=r1 state=active"' "json text body"
has out '"kind":"announce"' "json kind"
tail -1 "$work/out" | grep -q '^\]}$' || fail "json end: $(tail -1 "$work/out")"
run 0 "log --json empty filter" -- "$SHOAL_BIN" log --data "$D" --author n1 --kind halt --json
[ "$(tr -d '\n' <"$work/out")" = '{"records": []}' ] || fail "empty json: $(cat "$work/out")"

# Verify: everything checks out.
run 0 "verify" -- "$SHOAL_BIN" log verify --data "$D"
has out "checked 11 records of 2 authors and 0 evidence rows: no faults" "verify summary"
run 0 "verify --json" -- "$SHOAL_BIN" log verify --data "$D" --json
has out '"ok": true' "verify json ok"
has out '"records": 11' "verify json records"

# Evidence: none, then an equivocation by the peer.
run 0 "evidence (none)" -- "$SHOAL_BIN" log evidence --data "$D"
has out "no evidence" "no evidence message"
run 0 "equivocate" -- "$GEN" equivocate "$D" 9 4
has out "result=equivocation" "feedgen equivocation result"
run 0 "evidence" -- "$SHOAL_BIN" log evidence --data "$D"
has out "^evidence 1: equivocation by db-02 (${peer:0:16}) at seq 4" "evidence header"
has out "held: .*seq 4 .*peer=9 n=4$" "held record"
has out "offending: seq 4 .*peer=9 n=4 forked$" "offending record"
run 0 "evidence --json" -- "$SHOAL_BIN" log evidence --data "$D" --author db-02 --json
has out '"kind":"equivocation"' "evidence json kind"
has out '"encoded_hex":"' "evidence json encodings"
run 0 "evidence of n1" -- "$SHOAL_BIN" log evidence --data "$D" --author n1
has out "no evidence" "n1 has no evidence"
# The first record stays in the feed; the author is flagged, not a fault.
run 0 "log after equivocation" -- "$SHOAL_BIN" log --data "$D" --author db-02
has out "peer=9 n=4$" "first-seen record kept"
run 0 "verify with evidence" -- "$SHOAL_BIN" log verify --data "$D"
has out "and 1 evidence rows: no faults" "verify checks evidence"
has out "note: 1 author is marked equivocating" "equivocation note"

# Reading never changed the database (feedgen equivocate did, so compare
# from here).
db_sum=$(sha256sum <"$D/state.db")
"$SHOAL_BIN" log --data "$D" >/dev/null 2>&1
"$SHOAL_BIN" log verify --data "$D" >/dev/null 2>&1
"$SHOAL_BIN" log evidence --data "$D" --json >/dev/null 2>&1
[ "$db_sum" = "$(sha256sum <"$D/state.db")" ] || fail "a read-only command changed state.db"

# Tamper: rewrite an own record's body in place.
sqlite3 "$D/state.db" "UPDATE feed_records SET body = CAST('release=r1 state=failed' AS BLOB)
	WHERE author = X'$id1' AND seq = 2" || fail "sqlite3 update"
run 1 "verify tampered" -- "$SHOAL_BIN" log verify --data "$D"
has out "^fault: author=$id1 name=n1 seq=2: signature does not verify$" "tamper fault line"
has out "^fault: author=$id1 name=n1 seq=3: prev is not the hash of seq 2" "broken link after tamper"
has out "faults$" "fault summary"
run 1 "verify tampered --json" -- "$SHOAL_BIN" log verify --data "$D" --json
has out '"ok": false' "verify json not ok"
# Deleting a record behind the store's back breaks the summary.
sqlite3 "$D/state.db" "DELETE FROM feed_records WHERE author = X'$peer' AND seq = 1" || fail "sqlite3 delete"
run 1 "verify after delete" -- "$SHOAL_BIN" log verify --data "$D"
has out "^fault: author=$peer name=db-02 seq=-: summary says" "summary fault"

# Usage errors and the manual.
run 2 "unknown subcommand" -- "$SHOAL_BIN" log frobnicate --data "$D"
run 2 "unknown option" -- "$SHOAL_BIN" log --data "$D" --frob
run 2 "verify takes no --author" -- "$SHOAL_BIN" log verify --data "$D" --author n1
run 2 "unknown kind" -- "$SHOAL_BIN" log --data "$D" --kind bogus
has err "unknown kind 'bogus'" "unknown kind message"
run 2 "--data without a value" -- "$SHOAL_BIN" log --data
for args in "log --help" "log verify --help" "log evidence -h" "help log"; do
	# shellcheck disable=SC2086
	run 0 "$args" -- "$SHOAL_BIN" $args
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
		grep -q "^$s\$" "$work/out" || fail "'shoal $args' lacks section $s"
	done
done
run 0 "help lists log" -- "$SHOAL_BIN" help
has out "^  log  " "log in the command list"

if [ "$fails" -gt 0 ]; then
	echo "log_cli: $fails failure(s)" >&2
	exit 1
fi
echo "log_cli: ok"
