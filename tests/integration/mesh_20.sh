#!/usr/bin/env bash
# mesh_20.sh — 20 real `shoal agent` processes on 127.0.0.1, one fleet, one
# temp dir. Each step waits a bounded time and says what it saw on failure:
#
#   1. convergence: every agent sees all 20 alive, and none has OpenSSL
#      mapped although each has run stream handshakes (the join push-pull):
#      the streams are Noise on libsodium, which keeps an agent near 5 MB
#   2. SIGSTOP one agent for 30 s: the others suspect it, then declare it
#      dead; after SIGCONT it refutes and is alive everywhere at a higher
#      incarnation
#   3. SIGKILL 3 agents: every other agent declares all 3 dead (never left),
#      and none has loaded libm for it (src/common/libm.c)
#   4. graceful leave, once by `shoal leave` and once by SIGTERM: the agent
#      exits 0 and every other agent sees it left (never dead)
#   5. restart a SIGKILLed agent from its data dir without --join: it finds
#      the members it remembers and is alive everywhere at a higher
#      incarnation
#   6. `shoal status --json` and `shoal members --json` answer, with counters
#   7. SIGTERM every agent: each exits 0 (so a sanitizer build's leak check
#      passes); no log has a level=error line or a sanitizer report
#
# The SIGKILLs come after the 30 s SIGSTOP step so the victims have run long
# enough to have saved their member list (a restart without --join depends on
# it). Views are read through each agent's control socket (the protocol of
# `shoal members`), by one python3 poller rather than 20 CLI processes per
# poll. Only PIDs started here are ever signalled. SHOAL_TEST_KEEP=1 keeps
# the temp dir.
set -u
: "${SHOAL_BIN:?set SHOAL_BIN to the shoal binary}"
command -v python3 >/dev/null || { echo "mesh_20: python3 is needed" >&2; exit 1; }

N=20
WAIT_CONVERGE_S=90     # 20 agents started at once (slower under ASan)
WAIT_DETECT_S=60       # SIGKILL to dead at every other agent
STOP_S=30              # SIGSTOP length; suspect and dead must happen inside it
WAIT_REJOIN_S=60       # SIGCONT or restart to alive everywhere
WAIT_LEFT_S=30         # leave to left everywhere
WAIT_EXIT_S=20         # SIGTERM (or shoal leave) to process exit

work=$(mktemp -d "${TMPDIR:-/tmp}/shoal-mesh20.XXXXXX")
declare -a PID PORT
started=$(date +%s)

cleanup() {
	local i
	for i in "${!PID[@]}"; do
		[ -n "${PID[$i]}" ] && kill -KILL "${PID[$i]}" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "${SHOAL_TEST_KEEP:-0}" = 1 ]; then
		echo "mesh_20: kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'echo "mesh_20: interrupted" >&2; exit 130' INT TERM

note() { printf 'mesh_20 [%3ss] %s\n' "$(($(date +%s) - started))" "$*"; }
# die MESSAGE [NODE...]: prints the message, the tails of the named nodes'
# logs and every warn/error line, then exits (the trap cleans up).
die() {
	local msg=$1 n
	shift
	echo "FAIL: $msg" >&2
	for n in "$@"; do
		echo "--- last lines of $n.log ---" >&2
		tail -n 15 "$work/$n.log" >&2
	done
	echo "--- warn/error lines in all logs but member_dead (first 40) ---" >&2
	grep -h -E '^ts=[^ ]+ level=(warn|error) ' "$work"/n*.log 2>/dev/null |
		grep -v ' event=member_dead ' | head -n 40 >&2
	exit 1
}

py="$work/mesh.py"
cat >"$py" <<'EOF'
# Polls agents' control sockets (DIR/control.sock: one JSON line each way).
import json, os, socket, sys, time

WORK = os.environ["MESH_WORK"]
POLL_S = 0.2

def ask(name, cmd, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(WORK, name, "control.sock"))
        s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return json.loads(buf)
    finally:
        s.close()

def view(name):
    """{member name: (state, incarnation)} as `name` sees it, or None."""
    try:
        r = ask(name, "members")
        return {m["name"]: (m["state"], m["incarnation"]) for m in r["members"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None

def ports(n):
    sys.path.insert(0, os.environ["MESH_LIB"])
    from agentlib import free_ports
    print(" ".join(map(str, free_ports(n))))

def converge(observers, want, timeout):
    t0 = time.monotonic()
    last = None
    while True:
        views = {o: view(o) for o in observers}
        counts = {o: (sum(1 for s, _ in v.values() if s == "alive") if v else -1)
                  for o, v in views.items()}
        # Dead and left members stay listed; only the alive count matters.
        full = [o for o in observers if counts[o] == want]
        el = time.monotonic() - t0
        if len(full) == len(observers):
            print(f"  converged: {len(full)}/{len(observers)} agents see {want} alive "
                  f"after {el:.1f} s")
            return 0
        summary = (sum(1 for c in counts.values() if c >= 0), len(full))
        if summary != last:
            print(f"  t={el:.1f}s {summary[0]}/{len(observers)} answering, "
                  f"{summary[1]} see all {want} alive")
            last = summary
        if el > timeout:
            for o in observers:
                if o not in full:
                    print(f"  {o}: sees {counts[o]} alive "
                          f"({'no answer' if views[o] is None else len(views[o])} known)",
                          file=sys.stderr)
            return 1
        time.sleep(POLL_S)

def watch(observers, targets, want, timeout, since, forbid, inc_gt, need_seen):
    """Waits until every observer sees every target in state `want` (and
    above inc_gt[target] if given). Fails at once if a `forbid` state is
    seen. Reports per-target first/last times, measured from `since`."""
    at = {}                # (observer, target) -> seconds since `since`
    seen = {t: set() for t in targets}   # states observed per target
    last = {}
    while True:
        for o in observers:
            v = view(o)
            for t in targets:
                st = v.get(t) if v else None
                last[(o, t)] = st
                if st is None:
                    continue
                seen[t].add(st[0])
                if st[0] in forbid:
                    print(f"  {o} sees {t} as {st[0]} (inc {st[1]}), which must not "
                          f"happen here", file=sys.stderr)
                    return 1
                ok = st[0] == want and st[1] > inc_gt.get(t, -1)
                if ok and (o, t) not in at:
                    at[(o, t)] = time.time() - since
        done = len(at) == len(observers) * len(targets)
        if done or time.time() - since > timeout:
            break
        time.sleep(POLL_S)
    rc = 0
    for t in targets:
        times = sorted(at[(o, t)] for o in observers if (o, t) in at)
        if times:
            print(f"  {t} {want} at {len(times)}/{len(observers)} agents: first "
                  f"{times[0]:.1f} s, median {times[len(times) // 2]:.1f} s, "
                  f"last {times[-1]:.1f} s; states seen: {','.join(sorted(seen[t]))}")
        for o in observers:
            if (o, t) not in at:
                print(f"  {o} does not see {t} {want}"
                      f"{' above incarnation %d' % inc_gt[t] if t in inc_gt else ''}: "
                      f"it sees {last.get((o, t))}", file=sys.stderr)
                rc = 1
        for s in need_seen:
            if s not in seen[t]:
                print(f"  no agent was ever seen holding {t} {s} (states seen: "
                      f"{','.join(sorted(seen[t]))})", file=sys.stderr)
                rc = 1
    return rc

def main(argv):
    cmd = argv[1]
    if cmd == "ports":
        ports(int(argv[2])); return 0
    if cmd == "inc":     # inc OBSERVER TARGET
        v = view(argv[2])
        if not v or argv[3] not in v:
            return 1
        print(v[argv[3]][1]); return 0
    if cmd == "converge":    # converge WANT TIMEOUT OBS...
        return converge(argv[4:], int(argv[2]), float(argv[3]))
    if cmd == "watch":
        # watch WANT TIMEOUT SINCE FORBID(a,b|-) INC_GT(t=i,..|-) NEED(s,..|-) TARGETS -- OBS...
        want, timeout, since = argv[2], float(argv[3]), float(argv[4])
        lst = lambda s: [] if s == "-" else s.split(",")
        forbid, need = lst(argv[5]), lst(argv[7])
        inc_gt = {k: int(v) for k, v in (x.split("=") for x in lst(argv[6]))}
        sep = argv.index("--")
        return watch(argv[sep + 1:], argv[8:sep], want, timeout, since, forbid,
                     inc_gt, need)
    if cmd == "status":  # status NAME: checks the CLI's --json output on stdin
        s = json.load(sys.stdin)
        for k in ("name", "id", "addr", "incarnation", "health", "uptime_s",
                  "members", "counters", "drops"):
            if k not in s:
                print(f"  status has no '{k}': {s}", file=sys.stderr); return 1
        if s["name"] != argv[2]:
            print(f"  status name {s['name']!r}, want {argv[2]!r}", file=sys.stderr); return 1
        if not isinstance(s["counters"], dict) or not s["counters"] or not all(
                isinstance(v, int) and v >= 0 for v in s["counters"].values()):
            print(f"  counters are not non-negative integers: {s['counters']}",
                  file=sys.stderr); return 1
        if sum(s["counters"].values()) == 0:
            print(f"  every counter is 0 after minutes of gossip: {s['counters']}",
                  file=sys.stderr); return 1
        m = s["members"]
        live = m["alive"] + m["suspect"]
        if not isinstance(m.get("size_estimate"), int) or not (
                live <= m["size_estimate"] <= live + m["dead"] + m["left"]):
            print(f"  size_estimate outside [live, known]: {m}", file=sys.stderr); return 1
        print(f"  {argv[2]}: incarnation {s['incarnation']}, health {s['health']}, "
              f"members {m}, {len(s['counters'])} counters")
        return 0
    if cmd == "members":  # members NAME WANT_ALIVE: checks --json on stdin
        r = json.load(sys.stdin)
        alive = sum(1 for m in r["members"] if m["state"] == "alive")
        keys = {"name", "id", "addr", "state", "incarnation", "tags", "last_change"}
        bad = [m for m in r["members"] if not keys <= set(m)]
        if bad or alive != int(argv[3]):
            print(f"  members --json: {alive} alive (want {argv[3]}), entries "
                  f"missing fields: {bad[:2]}", file=sys.stderr); return 1
        return 0
    print("unknown command", cmd, file=sys.stderr)
    return 2

sys.exit(main(sys.argv))
EOF
export MESH_WORK=$work
export MESH_LIB="$(cd "$(dirname "$0")" && pwd)"  # agentlib.free_ports
mesh() { python3 "$py" "$@"; }
now() { date +%s.%N; }

# start_agent I [JOIN]: appends to nI.log, records PID[I].
start_agent() {
	local i=$1 join=${2:-}
	"$SHOAL_BIN" agent --data "$work/n$i" --bind "127.0.0.1:${PORT[$i]}" \
		${join:+--join "$join"} </dev/null >>"$work/n$i.log" 2>&1 &
	PID[$i]=$!
}
# wait_exit I TIMEOUT_S: waits for agent I to exit; sets EXIT_RC. Returns 1
# on timeout (the agent is still running).
wait_exit() {
	local i=$1 limit=$(($(date +%s) + $2))
	while kill -0 "${PID[$i]}" 2>/dev/null; do
		# a zombie still answers kill -0 until reaped: ask ps
		[ "$(ps -o stat= -p "${PID[$i]}" 2>/dev/null | cut -c1)" = Z ] && break
		[ "$(date +%s)" -ge "$limit" ] && return 1
		sleep 0.1
	done
	wait "${PID[$i]}" 2>/dev/null
	EXIT_RC=$?
	PID[$i]=""
	return 0
}
names() { local i; for i in "$@"; do printf 'n%s ' "$i"; done; }

# --- setup ------------------------------------------------------------------
"$SHOAL_BIN" fleet create --out "$work/fleet" >"$work/setup.log" 2>&1 ||
	die "fleet create failed: $(cat "$work/setup.log")"
for i in $(seq 0 $((N - 1))); do
	tag=()
	[ "$i" = 0 ] && tag=(--tag canary)
	"$SHOAL_BIN" init --data "$work/n$i" --fleet "$work/fleet" --name "n$i" "${tag[@]}" \
		>>"$work/setup.log" 2>&1 || die "init n$i failed: $(tail -n 3 "$work/setup.log")"
done
read -r -a PORT <<<"$(mesh ports $N)"
[ "${#PORT[@]}" = $N ] || die "could not find $N free ports"

# --- 1. convergence ---------------------------------------------------------
start_agent 0
for i in $(seq 1 $((N - 1))); do start_agent "$i" "127.0.0.1:${PORT[0]}"; done
note "started $N agents (n1..n$((N - 1)) join n0 on port ${PORT[0]})"
ALL=$(seq 0 $((N - 1)))
mesh converge $N $WAIT_CONVERGE_S $(names $ALL) ||
	die "the mesh did not converge within ${WAIT_CONVERGE_S} s" n0 n$((N - 1))
for i in $ALL; do
	kill -0 "${PID[$i]}" 2>/dev/null || die "agent n$i exited during startup" "n$i"
done
# maps_none REGEX WHY AGENT...: dies naming the first agent that has a file
# matching REGEX mapped
maps_none() {
	local re=$1 why=$2 i m
	shift 2
	for i in "$@"; do
		m=$(grep -E "$re" "/proc/${PID[$i]}/maps" | awk '{print $6}' | sort -u)
		[ -z "$m" ] || die "agent n$i maps $m: $why" "n$i"
	done
}
maps_none 'libssl|libcrypto' "OpenSSL, after its join push-pull" $ALL
note "no agent maps libssl or libcrypto"

# --- 2. SIGSTOP one agent for 30 s -------------------------------------------
S=7
others_of() { local i; for i in $ALL; do [[ " $* " == *" $i "* ]] || printf '%s ' "$i"; done; }
OBS=$(others_of $S)
inc_s=$(mesh inc n0 n$S) || die "n0 does not know n$S"
t_stop=$(now)
kill -STOP "${PID[$S]}"
note "SIGSTOP n$S (incarnation $inc_s) for ${STOP_S} s"
mesh watch dead $STOP_S "$t_stop" left - suspect n$S -- $(names $OBS) ||
	die "the other agents did not suspect, then declare n$S dead while it was stopped" n0
sleep "$(python3 -c "import time; print(max(0.0, $t_stop + $STOP_S - time.time()))")"
t_cont=$(now)
kill -CONT "${PID[$S]}"
note "SIGCONT n$S"
mesh watch alive $WAIT_REJOIN_S "$t_cont" left "n$S=$inc_s" - n$S -- $(names $ALL) ||
	die "n$S did not come back alive everywhere above incarnation $inc_s after SIGCONT" "n$S" n0
note "n$S refuted: incarnation $(mesh inc n0 n$S) (was $inc_s)"

# --- 3. SIGKILL 3 agents ------------------------------------------------------
K="3 11 16"
OBS=$(others_of $K)
declare -A inc_k
for k in $K; do inc_k[$k]=$(mesh inc n0 "n$k") || die "n0 does not know n$k"; done
t_kill=$(now)
for k in $K; do kill -KILL "${PID[$k]}"; done
# (stderr of the wait hides bash's "Killed" job notice; die is outside it)
for k in $K; do wait_exit "$k" 10 2>/dev/null || die "n$k survived SIGKILL"; done
note "SIGKILL $(names $K)"
mesh watch dead $WAIT_DETECT_S "$t_kill" left - - $(names $K) -- $(names $OBS) ||
	die "not every agent declared $(names $K)dead within ${WAIT_DETECT_S} s" n0
# Suspicion timeouts and push-pull intervals are computed by now: none of it
# may have loaded libm (src/common/libm.c). A sanitizer runtime links libm
# itself, and then there is nothing to check.
if ldd "$SHOAL_BIN" | grep -q 'libm\.so'; then
	note "libm check skipped: $(basename "$SHOAL_BIN") links libm (a sanitizer runtime needs it)"
else
	maps_none '/libm\.so' "the agent's code must call no math function" $OBS
	note "no agent maps libm"
fi

# --- 4. graceful leave --------------------------------------------------------
L1=18 L2=19
OBS=$(others_of $K $L1 $L2)
t_leave=$(now)
"$SHOAL_BIN" leave --data "$work/n$L1" >"$work/leave.out" 2>&1 ||
	die "shoal leave --data n$L1 failed: $(cat "$work/leave.out")" "n$L1"
kill -TERM "${PID[$L2]}"
note "n$L1 leaves by 'shoal leave', n$L2 by SIGTERM"
for l in $L1 $L2; do
	wait_exit "$l" $WAIT_EXIT_S || die "n$l still runs ${WAIT_EXIT_S} s after leaving" "n$l"
	[ "$EXIT_RC" = 0 ] || die "n$l exited with status $EXIT_RC after a graceful leave" "n$l"
done
mesh watch left $WAIT_LEFT_S "$t_leave" dead - - n$L1 n$L2 -- $(names $OBS) ||
	die "not every agent saw n$L1 and n$L2 leave (or one saw them dead)" n0 "n$L1" "n$L2"

# --- 5. restart a SIGKILLed agent without --join -----------------------------
R=11
t_restart=$(now)
echo "# --- mesh_20: restarting n$R without --join ---" >>"$work/n$R.log"
start_agent $R
note "restarted n$R from its data dir without --join"
LIVE=$(others_of 3 16 $L1 $L2)
mesh watch alive $WAIT_REJOIN_S "$t_restart" - "n$R=${inc_k[$R]}" - n$R -- $(names $LIVE) ||
	die "restarted n$R did not rejoin above incarnation ${inc_k[$R]}" "n$R" n0
alive_now=$(echo $LIVE | wc -w)
mesh converge "$alive_now" $WAIT_REJOIN_S $(names $LIVE) ||
	die "after the restart the $alive_now live agents do not all see $alive_now alive" n0

# --- 6. the CLI against a running agent ----------------------------------------
"$SHOAL_BIN" status --data "$work/n0" --json >"$work/status.json" 2>"$work/status.err" ||
	die "shoal status --json failed: $(cat "$work/status.err")"
mesh status n0 <"$work/status.json" || die "shoal status --json: $(head -c 600 "$work/status.json")"
"$SHOAL_BIN" status --data "$work/n0" >"$work/status.txt" 2>&1 || die "shoal status failed"
grep -q '^counters:' "$work/status.txt" || die "shoal status prints no counters: $(cat "$work/status.txt")"
"$SHOAL_BIN" members --data "$work/n$R" --json >"$work/members.json" 2>&1 ||
	die "shoal members --json failed: $(cat "$work/members.json")"
mesh members "n$R" "$alive_now" <"$work/members.json" || die "shoal members --json on n$R"

# --- 7. stop everything; logs ----------------------------------------------------
for i in $LIVE; do kill -TERM "${PID[$i]}"; done
for i in $LIVE; do
	wait_exit "$i" $WAIT_EXIT_S || die "n$i still runs ${WAIT_EXIT_S} s after SIGTERM" "n$i"
	[ "$EXIT_RC" = 0 ] || die "n$i exited with status $EXIT_RC on SIGTERM" "n$i"
done
note "stopped every agent with SIGTERM; each exited 0"
# A line's level is its second field; a value that merely contains
# "level=error" does not count. Any error-level line is unexpected here: every
# step above (kills, stops, leaves) is normal life for a fleet, reported at
# info (or warn for a dead member), and an error would mean the agent itself
# failed (e.g. its database). Sanitizer reports go to the same stderr.
errs=$(grep -H -E '^ts=[^ ]+ level=error ' "$work"/n*.log | head -n 20)
[ -z "$errs" ] || die "level=error lines in agent logs:
$errs"
# Warnings this run causes on purpose: member_dead (kills, the stop) and
# pushpull_failed (a join push-pull to a seed that is down: agents started
# before n0 listens, the restarted n11 dialling the members it remembers).
# Any other warning, e.g. pushpull_rejected (the core refused a peer's state)
# between admitted members of one fleet, is a bug.
warns=$(grep -H -E '^ts=[^ ]+ level=warn ' "$work"/n*.log |
	grep -v -E ' event=(member_dead|pushpull_failed) ' | head -n 20)
[ -z "$warns" ] || die "unexpected level=warn lines in agent logs:
$warns"
san=$(grep -H -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$work"/n*.log | head -n 20)
[ -z "$san" ] || die "sanitizer reports in agent logs:
$san"
note "PASS"
