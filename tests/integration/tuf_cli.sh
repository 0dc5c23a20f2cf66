#!/usr/bin/env bash
# tuf_cli.sh — `shoal tuf` (the TUF conformance command line) through the real
# binary, over HTTP on 127.0.0.1, against repositories that tuf-js builds
# fresh (tests/tufjs/gen.js; expected outcomes cross-checked with tuf-js's
# Updater by crosscheck.js): every attack scenario's steps run with the
# update time set by faketime, and must exit 0 or 1 with the failing TUF
# check named. Also: option order, --opt=VALUE, unversioned metadata names,
# and an endless response that must be cut at the size bound.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
: "${SHOAL_SRC:?set SHOAL_SRC to the source tree}"
command -v faketime >/dev/null || { echo "FAIL: faketime is not installed (apt-get install faketime)" >&2; exit 1; }
export TZ=UTC
# faketime preloads libfaketime; an ASan build must let it come first.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$SHOAL_SRC/tests/tufjs/setup.sh" || { echo "FAIL: tuf-js setup" >&2; exit 1; }
node "$SHOAL_SRC/tests/tufjs/gen.js" "$work/repos" >/dev/null || { echo "FAIL: gen.js" >&2; exit 1; }
# The expectations themselves are checked against tuf-js's Updater.
node "$SHOAL_SRC/tests/tufjs/crosscheck.js" "$work/repos" >"$work/cross" 2>&1 ||
	fail "tuf-js disagrees with the expected outcomes: $(cat "$work/cross")"

# A static file server on 127.0.0.1; /endless/... streams without end and
# without a Content-Length.
cat >"$work/server.py" <<'PY'
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path.startswith('/endless/'):
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.end_headers()
            try:
                self.wfile.write(b'{"signed": "')
                while True:
                    self.wfile.write(b'A' * 65536)
            except (BrokenPipeError, ConnectionResetError):
                return
        return super().do_GET()
H.protocol_version = 'HTTP/1.0'
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(H, directory=sys.argv[1]))
open(sys.argv[2], 'w').write(str(srv.server_address[1]))
srv.serve_forever()
PY
python3 "$work/server.py" "$work/repos" "$work/port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || { echo "FAIL: server did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

reason_of() {
	case $1 in
	EBADSIG) echo "bad signature" ;;
	EREPLAY) echo "replayed" ;;
	EEXPIRED) echo "expired" ;;
	ETOOBIG) echo "over size limit" ;;
	EBADMAC) echo "bad MAC" ;;
	ENOTFOUND) echo "not found" ;;
	*) echo "" ;;
	esac
}

nsteps=0
for sdir in "$work"/repos/*/; do
	scen=$(basename "$sdir")
	[ -f "$sdir/steps" ] || continue
	md="$work/c/$scen/metadata"; td="$work/c/$scen/targets"
	mkdir -p "$td"
	"$SHOAL_BIN" tuf --metadata-dir "$md" init "$sdir/root.json" 2>"$work/err" ||
		{ fail "$scen: init: $(cat "$work/err")"; continue; }
	n=0
	while read -r state when cmd expect names; do
		n=$((n + 1)); nsteps=$((nsteps + 1))
		args=(--metadata-url "$base/$scen/$state/metadata/")
		if [ "$cmd" = download ]; then
			args+=(--target-base-url "$base/$scen/$state/targets" --target-dir "$td")
			for nm in $names; do args+=(--target-name "$(printf '%b' "${nm//%/\\x}")"); done
		fi
		faketime "$(echo "$when" | sed 's/T/ /; s/Z$//')" \
			"$SHOAL_BIN" tuf --metadata-dir "$md" "${args[@]}" "$cmd" >"$work/out" 2>"$work/err"
		rc=$?
		want=1; [ "$expect" = OK ] && want=0
		if [ "$rc" != "$want" ]; then
			fail "$scen step $n ($state $cmd): exit $rc, want $want ($expect): $(grep -v '^ts=' "$work/err")"
		elif [ "$want" = 1 ] && ! grep -q "$(reason_of "$expect")" "$work/err"; then
			fail "$scen step $n: failed, but not with '$(reason_of "$expect")': $(grep -v '^ts=' "$work/err")"
		fi
	done <"$sdir/steps"
	if [ -d "$sdir/want" ]; then
		for w in "$sdir"/want/*; do
			cmp -s "$w" "$td/$(basename "$w")" || fail "$scen: target $(basename "$w") missing or wrong"
		done
	fi
done
[ "$nsteps" -ge 50 ] || fail "only $nsteps steps ran"

# Unversioned metadata names; delegated roles as ROLE.json (percent-encoded).
d="$work/c/delegations/metadata"
for f in root.json timestamp.json snapshot.json targets.json A.json C.json 'team%20a%2Bb.json'; do
	[ -f "$d/$f" ] || fail "delegations: $f not in the metadata dir"
done
ls "$d" | grep -Eq '^[0-9]+\.' && fail "versioned file names in the metadata dir: $(ls "$d")"
cmp -s "$d/A.json" "$work/repos/delegations/s1/metadata/1.A.json" || fail "A.json not stored exactly as received"

# Options in any order and --opt=VALUE; targets present are not fetched again
# (the second run points at a base URL that serves nothing).
md="$work/order/md"; td="$work/order/t"; mkdir -p "$td"
"$SHOAL_BIN" tuf init "$work/repos/basic_rsa/root.json" --metadata-dir="$md" || fail "init with options after the command"
faketime '2027-01-01 00:00:00' "$SHOAL_BIN" tuf download --target-dir "$td" --target-name file1.txt \
	--target-base-url="$base/basic_rsa/s1/targets/" --metadata-url "$base/basic_rsa/s1/metadata" \
	--metadata-dir "$md" 2>"$work/err" || fail "download, options in any order: $(cat "$work/err")"
cmp -s "$td/file1.txt" "$work/repos/basic_rsa/want/file1.txt" || fail "basic_rsa file1.txt content"
faketime '2027-01-01 00:00:00' "$SHOAL_BIN" tuf --metadata-dir "$md" --metadata-url "$base/basic_rsa/s1/metadata" \
	--target-base-url "$base/nothing-here/" --target-dir "$td" --target-name file1.txt download 2>"$work/err" ||
	fail "a target already present was fetched again: $(cat "$work/err")"

# Endless data: the response never ends; the client must stop at the bound.
md="$work/endless"
"$SHOAL_BIN" tuf --metadata-dir "$md" init "$work/repos/basic_ed25519/root.json" || fail "init (endless)"
start=$(date +%s)
/usr/bin/time -f '%M' -o "$work/rss" "$SHOAL_BIN" tuf --metadata-dir "$md" \
	--metadata-url "$base/endless/" refresh 2>"$work/err"
rc=$?
[ "$rc" = 1 ] || fail "endless timestamp: exit $rc, want 1"
grep -q "over size limit" "$work/err" || fail "endless timestamp: $(grep -v '^ts=' "$work/err")"
[ $(( $(date +%s) - start )) -le 20 ] || fail "endless timestamp took too long"
rss_kb=$(tail -1 "$work/rss"); echo "endless: max RSS ${rss_kb} KiB" >&2
[ "${rss_kb:-999999}" -lt 65536 ] || fail "endless timestamp used ${rss_kb} KiB"

# Usage errors exit 1; --help is the manual.
"$SHOAL_BIN" tuf --metadata-dir "$md" bogus 2>/dev/null; [ $? = 1 ] || fail "unknown command should exit 1"
"$SHOAL_BIN" tuf refresh 2>/dev/null; [ $? = 1 ] || fail "missing --metadata-dir should exit 1"
"$SHOAL_BIN" tuf --metadata-dir "$md" refresh 2>/dev/null; [ $? = 1 ] || fail "missing --metadata-url should exit 1"
"$SHOAL_BIN" tuf --help >"$work/out" || fail "--help exit"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
	grep -q "^$s" "$work/out" || fail "--help lacks $s"
done

if [ "$fails" -ne 0 ]; then
	echo "tuf_cli: $fails failure(s)" >&2
	exit 1
fi
echo "tuf_cli: ok ($nsteps steps)"
