#!/usr/bin/env bash
# release_cli.sh — publisher tooling (`shoal release`) and the node trust
# anchor (`shoal init --root`, `shoal trust`) through the real binary.
#
# A repository made by `shoal release` is served over HTTP on 127.0.0.1 and
# read by two independent TUF clients, each keeping its state across the
# releases: `shoal tuf` and tuf-js's Updater (tests/tufjs/refresh_shoal.js,
# its own HTTP server). Both must download each properly signed release
# (bytes compared), both must refuse an under-signed one (published with
# --allow-under-threshold, the drill), and both must follow a root rotation
# made with `shoal release rotate-root`. Also: refusals (below threshold,
# signing twice, wrong-role key), the trust anchor's root chain, publish
# --data against a stand-in agent socket (its error replies, the exact
# request) and against a real agent that verifies the release against the
# root installed by `shoal init --root`, usage errors and the manuals.
#
# Needs node (tuf-js, installed by tests/tufjs/setup.sh): without it the
# shoal-only checks run and the test exits 77 (SKIP) saying so.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
: "${SHOAL_SRC:?set SHOAL_SRC to the source tree}"
S=$SHOAL_BIN
work=$(mktemp -d)
server_pid=
agent_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
# Runs a command that must exit with $1; its stdout+stderr go to $work/out.
expect() {
	local want=$1
	shift
	"$@" >"$work/out" 2>&1
	local rc=$?
	[ "$rc" = "$want" ] || fail "exit $rc, want $want: $* :: $(grep -v '^ts=' "$work/out" | head -5)"
	# a sanitizer report on an error path would hide behind the expected 1
	grep -q -E 'Sanitizer|runtime error' "$work/out" && fail "sanitizer: $* :: $(grep -E 'Sanitizer|runtime error' "$work/out" | head -3)"
	return 0
}
has() { grep -q -- "$1" "$work/out" || fail "output lacks '$1': $(grep -v '^ts=' "$work/out" | head -5)"; }

have_node=1
if ! command -v node >/dev/null; then
	have_node=0
	echo "SKIP (partly): node is not installed, so the tuf-js interop checks cannot run" >&2
elif ! "$SHOAL_SRC/tests/tufjs/setup.sh"; then
	echo "FAIL: tuf-js setup (tests/tufjs/setup.sh)" >&2
	exit 1
fi
# tuf-js client run: refresh_shoal.js ARGS...; must exit 0.
tufjs() {
	[ "$have_node" = 1 ] || return 0
	if node "$SHOAL_SRC/tests/tufjs/refresh_shoal.js" "$@" >"$work/js" 2>&1; then
		echo "  $(cat "$work/js")" >&2
	else
		fail "tuf-js: $* :: $(cat "$work/js")"
	fi
}

cd "$work" || exit 1
repo=$work/repo

# ---- manuals and usage errors ----
for cmd in release trust init; do
	"$S" $cmd --help >"$work/out" || fail "$cmd --help exit"
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
		grep -q "^$s" "$work/out" || fail "$cmd --help lacks $s"
	done
done
"$S" release sign --help | grep -q '^SYNOPSIS' || fail "release sign --help is not the manual"
expect 2 "$S" release
expect 2 "$S" release bogus --repo "$repo"
expect 2 "$S" release add --repo "$repo"
expect 2 "$S" release status
expect 2 "$S" release sign --repo "$repo" --json
has "not an option of sign"
expect 2 "$S" release init --repo "$repo" --publishers 2 --threshold 3
expect 2 "$S" trust
expect 2 "$S" trust set-root --data "$work/none"

# ---- init ----
expect 0 "$S" release init --repo "$repo"
has "publisher-3.key"
has "2 of 3"
[ -L "$repo/metadata" ] || fail "metadata is not the published-generation symlink"
for k in root-1 publisher-1 publisher-2 publisher-3 snapshot timestamp; do
	[ "$(stat -c %a "$repo/keys/$k.key")" = 600 ] || fail "keys/$k.key is not mode 0600"
done
[ "$(stat -c %a "$repo/keys")" = 700 ] || fail "keys/ is not mode 0700"
grep -lq '"_type"' "$repo"/keys/* 2>/dev/null && fail "metadata inside keys/"
expect 1 "$S" release init --repo "$repo"
has "not empty"

# A web root with only what may be served (never the repository dir).
mkdir -p www
ln -s "$repo/metadata" www/metadata
ln -s "$repo/targets" www/targets
cat >server.py <<'PY'
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(H, directory=sys.argv[1]))
open(sys.argv[2], 'w').write(str(srv.server_address[1]))
srv.serve_forever()
PY
python3 server.py "$work/www" "$work/port" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || { echo "FAIL: HTTP server did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

# Both clients start from root version 1, out of band.
cp "$repo/metadata/1.root.json" root1.json
mkdir -p sc
expect 0 "$S" tuf --metadata-dir sc/md init root1.json
# shoal tuf download: must exit $1
shoal_get() {
	local want=$1
	shift
	local args=()
	for n in "$@"; do args+=(--target-name "$n"); done
	expect "$want" "$S" tuf --metadata-dir sc/md --metadata-url "$base/metadata/" \
		--target-base-url "$base/targets/" --target-dir sc/t "${args[@]}" download
}
enc() { printf '%s' "$1" | sed 's|/|%2F|g'; }

# ---- release 1: two of three publishers ----
printf 'rule base { strings: $a = "evil" condition: $a }\n' >base.yar
expect 0 "$S" release add --repo "$repo" base.yar --name rules/base.yar \
	--custom '{"waves":["0.01","0.1","0.5","1"],"soak_s":300,"note":"caf\u00e9 \"q\" \\ ok"}'
has "0 of 2"
expect 1 "$S" release add --repo "$repo" base.yar --custom '{"a":"x\ny"}' --name x
has "control characters"
expect 1 "$S" release add --repo "$repo" base.yar --custom '[1]' --name x
has "not a JSON object"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-1.key"
has "1 of 2"
expect 1 "$S" release publish --repo "$repo"
has "1 of the 2 signatures"
expect 1 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-1.key"
has "already signed"
expect 1 "$S" release sign --repo "$repo" --key "$repo/keys/timestamp.key"
has "not authorised"
expect 1 "$S" release sign --repo "$repo" --key "$repo/keys/root-1.key"
has "not authorised"
# both clients see nothing new: the refused publish changed nothing
shoal_get 1 rules/base.yar
expect 0 "$S" release status --repo "$repo"
has "1 of 2 signatures (needs 1 more)"
has "missing"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-2.key"
has "threshold met"
expect 0 "$S" release publish --repo "$repo"
has "targets v2"
shoal_get 0 rules/base.yar
cmp -s base.yar "sc/t/$(enc rules/base.yar)" || fail "shoal tuf: rules/base.yar bytes differ"
tufjs --repo "$repo" --client jc --root root1.json --target rules/base.yar=base.yar --root-version 1
expect 0 "$S" release status --repo "$repo" --json
python3 - "$work/out" <<'PY' || fail "status --json: custom or signatures wrong"
import json, sys
s = json.load(open(sys.argv[1]))
t = s["published_targets"]["rules/base.yar"]
assert t["custom"] == {"waves": ["0.01", "0.1", "0.5", "1"], "soak_s": 300,
                       "note": "caf\u00e9 \"q\" \\ ok"}, t
assert set(t["hashes"]) == {"sha256", "sha512"}
assert s["targets"]["version"] == 2 and s["staged"] == {}
PY

# ---- release 2: the drill, one publisher only ----
printf '44d88612fea8a8f36de82e1278abb02f\n' >iocs.txt
expect 0 "$S" release add --repo "$repo" iocs.txt --name iocs/md5.txt
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-3.key"
expect 0 "$S" release publish --repo "$repo" --allow-under-threshold
has "BELOW THRESHOLD"
shoal_get 1 iocs/md5.txt
has "bad signature"
[ -e "sc/t/$(enc iocs/md5.txt)" ] && fail "shoal tuf wrote an under-signed target"
tufjs --repo "$repo" --client jc --target iocs/md5.txt=iocs.txt --expect-fail

# ---- release 3: signed properly, accepted again ----
expect 0 "$S" release stage --repo "$repo"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-1.key"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-3.key"
expect 0 "$S" release publish --repo "$repo"
has "targets v4"
shoal_get 0 iocs/md5.txt rules/base.yar
cmp -s iocs.txt "sc/t/$(enc iocs/md5.txt)" || fail "shoal tuf: iocs/md5.txt bytes differ"
tufjs --repo "$repo" --client jc --target iocs/md5.txt=iocs.txt --target rules/base.yar=base.yar

# ---- root rotation: new root key replaces root-1, new online keys ----
expect 0 "$S" release keygen --out root-2.key
[ -f root-2.pub ] || fail "keygen did not write root-2.pub"
old_root=$("$S" release status --repo "$repo" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["roles"]["root"]["keyids"][0][:12])')
expect 0 "$S" release rotate-root --repo "$repo" --add-key root=root-2.pub \
	--remove-key "root=$old_root" --new-online-keys
has "staged root v2"
expect 2 "$S" release rotate-root --repo "$repo" --add-key bogus=root-2.pub
expect 0 "$S" release sign --repo "$repo" --key root-2.key
has "0 of 1 from the current root keys"
expect 1 "$S" release publish --repo "$repo"
has "trusted root keys"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/root-1.key"
printf 'rule after_rotation { condition: false }\n' >after.yar
expect 0 "$S" release add --repo "$repo" after.yar --name rules/after.yar
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-2.key"
expect 0 "$S" release sign --repo "$repo" --key "$repo/keys/publisher-3.key"
expect 0 "$S" release publish --repo "$repo"
has "root v2"
[ -f "$repo/metadata/2.root.json" ] || fail "2.root.json not published"
shoal_get 0 rules/after.yar
cmp -s after.yar "sc/t/$(enc rules/after.yar)" || fail "shoal tuf: rules/after.yar bytes differ"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["signed"]["version"] == 2' sc/md/root.json ||
	fail "shoal tuf did not follow the root rotation"
tufjs --repo "$repo" --client jc --target rules/after.yar=after.yar --root-version 2
# the old root key alone can no longer sign anything
expect 0 "$S" release rotate-root --repo "$repo" --expires-days 30
expect 1 "$S" release sign --repo "$repo" --key "$repo/keys/root-1.key"
has "not authorised"
expect 0 "$S" release discard --repo "$repo"

# ---- an under-signed root rotation is refused by both clients ----
expect 0 "$S" release keygen --out root-3.key
expect 0 "$S" release rotate-root --repo "$repo" --add-key root=root-3.pub --remove-key \
	"root=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signed"]["roles"]["root"]["keyids"][0])' "$repo/metadata/root.json")"
expect 0 "$S" release sign --repo "$repo" --key root-3.key
expect 0 "$S" release publish --repo "$repo" --allow-under-threshold
shoal_get 1 rules/after.yar
has "not signed by a threshold of the trusted root keys"
tufjs --repo "$repo" --client jc --target rules/after.yar=after.yar --expect-fail
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["signed"]["version"] == 2' sc/md/root.json ||
	fail "shoal tuf took an under-signed root"

# ---- trust anchor on nodes ----
expect 0 "$S" fleet create --out fleet
expect 1 "$S" init --data n0 --fleet fleet --name n0 --root base.yar
has "not a TUF root"
[ -e n0 ] && fail "init --root with a bad root left n0 behind"
sed 's/"version":1}/"version":7}/' root1.json >tampered.json
expect 1 "$S" init --data n0 --fleet fleet --name n0 --root tampered.json
has "not signed by a threshold"
[ -e n0 ] && fail "init --root with a tampered root left n0 behind"
expect 0 "$S" init --data n1 --fleet fleet --name n1 --root root1.json
has "trusted_root=1"
cmp -s root1.json n1/trust/root.json || fail "n1/trust/root.json is not the given root"
cmp -s root1.json n1/trust/metadata/root.json || fail "n1/trust/metadata/root.json missing"
expect 0 "$S" trust show --data n1
has "trusted root version 1"
has "targets    threshold 2 of 3"
expect 1 "$S" trust set-root --data n1 --initial root1.json
has "already holds a trusted root"
# a root from another repository does not chain
expect 0 "$S" release init --repo other --publishers 1 --threshold 1
expect 0 "$S" release rotate-root --repo other --expires-days 100
expect 0 "$S" release sign --repo other --key other/keys/root-1.key
expect 0 "$S" release publish --repo other
expect 1 "$S" trust set-root --data n1 other/metadata/2.root.json
has "does not chain from the trusted root version 1"
has "unchanged"
# skipping a version is refused, naming what is missing
expect 1 "$S" trust set-root --data n1 "$repo/metadata/3.root.json"
has "in between"
expect 0 "$S" trust set-root --data n1 "$repo/metadata/2.root.json"
has "version 1 replaced by version 2"
cmp -s "$repo/metadata/2.root.json" n1/trust/root.json || fail "anchor not replaced"
cmp -s "$repo/metadata/2.root.json" n1/trust/metadata/root.json || fail "metadata root not replaced"
expect 0 "$S" trust set-root --data n1 root1.json
has "unchanged"
expect 0 "$S" trust show --data n1 --json
python3 - "$work/out" <<'PY' || fail "trust show --json"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["version"] == 2 and s["source"] == "anchor" and not s["expired"], s
assert s["roles"]["targets"]["threshold"] == 2 and len(s["roles"]["targets"]["keyids"]) == 3
assert all(k["keytype"] == "ed25519" for k in s["keys"].values())
PY
# a chain given in order
expect 0 "$S" init --data n2 --fleet fleet --name n2 --root root1.json
expect 1 "$S" trust set-root --data n2 "$repo/metadata/3.root.json" "$repo/metadata/2.root.json"
has "in between"
# root 3 lacks a threshold of root 2's keys (the under-signed rotation)
expect 1 "$S" trust set-root --data n2 "$repo/metadata/2.root.json" "$repo/metadata/3.root.json"
has "trusted root keys"
cmp -s root1.json n2/trust/root.json || fail "a failed chain changed the anchor"
expect 1 "$S" trust show --data n3
has "no trusted root"

# ---- publish --data: the local agent's control socket ----
expect 1 "$S" release publish --repo "$repo" --data "$work/noagent"
has "no agent running"
mkdir -p agent
cat >agent.py <<'PY'
import json, os, socket, sys
path, reply, log = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o600)
s.listen(1)
open(path + ".ready", "w").close()
while True:
    c, _ = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    open(log, "ab").write(data)
    c.sendall(reply.encode() + b"\n")
    c.close()
PY
start_agent() {
	rm -f agent/control.sock agent/control.sock.ready
	python3 agent.py "$work/agent/control.sock" "$1" "$work/agent.log" &
	agent_pid=$!
	for _ in $(seq 50); do [ -e agent/control.sock.ready ] && break; sleep 0.1; done
}
start_agent '{"error":"repository refused: test"}'
expect 1 "$S" release publish --repo "$repo" --data "$work/agent"
has "the agent refused it: repository refused: test"
python3 - "$work/agent.log" "$(cd "$repo" && pwd -P)" <<'PY' || fail "publish request: $(cat "$work/agent.log")"
import json, sys
req = json.loads(open(sys.argv[1]).read().splitlines()[0])
assert req == {"cmd": "publish", "repo": sys.argv[2]}, req
PY
kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
start_agent '{"announce_seq":3,"targets_version":5}'
expect 0 "$S" release publish --repo "$repo" --data "$work/agent"
has 'agent: {"announce_seq":3,"targets_version":5}'
kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
agent_pid=

# A real agent, trusting the other repository's root 1 (installed by init
# --root): publish --data hands it the repository; it verifies the release
# against its anchor, following the repository's root 2.
expect 0 "$S" init --data n4 --fleet fleet --name n4 --root other/metadata/1.root.json
printf 'rule other { condition: false }\n' >other.yar
expect 0 "$S" release add --repo other other.yar --name rules/other.yar
expect 0 "$S" release sign --repo other --key other/keys/publisher-1.key
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 30000))
	"$S" agent --data n4 --bind "127.0.0.1:$port" >agent_n4.log 2>&1 &
	agent_pid=$!
	for _ in $(seq 50); do [ -S n4/control.sock ] && break; sleep 0.1; done
	kill -0 "$agent_pid" 2>/dev/null && break # else the port was taken: try another
	agent_pid=
done
[ -n "$agent_pid" ] || fail "the agent did not start: $(tail -3 agent_n4.log)"
expect 0 "$S" release publish --repo other --data n4
has '"announce_seq"'
want_v=$("$S" release status --repo other --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["targets"]["version"])')
want_sha=$(sha256sum other.yar | cut -d' ' -f1)
state=
for _ in $(seq 100); do
	state=$("$S" releases --data n4 --json 2>/dev/null | python3 -c '
import json, sys
r = [x for x in json.load(sys.stdin)["releases"] if x["version"] == int(sys.argv[1])]
print(" ".join([r[0]["state"]] + [t["name"] + "=" + t["sha256"] for t in r[0]["targets"]] + [r[0]["reason"]]) if r else "")' "$want_v" 2>/dev/null)
	case $state in verified* | rejected*) break ;; esac
	sleep 0.2
done
case $state in
"verified rules/other.yar=$want_sha"*) ;;
*) fail "the agent did not verify release $want_v: '$state'" ;;
esac
expect 0 "$S" trust show --data n4
has "trusted root version 2"
kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null
agent_pid=
grep -q -E 'Sanitizer|runtime error' agent_n4.log && fail "agent: $(grep -E 'Sanitizer|runtime error' agent_n4.log | head -3)"

if [ "$fails" -ne 0 ]; then
	echo "release_cli: $fails failure(s)" >&2
	exit 1
fi
if [ "$have_node" = 0 ]; then
	echo "release_cli: SKIP: shoal checks passed, tuf-js interop NOT run (install node)" >&2
	exit 77
fi
echo "release_cli: ok (shoal tuf and tuf-js)"
