#!/usr/bin/env python3
"""Side-by-side membership benchmark: Debian's serf agent vs shoal agent.

Run through bench/membership.sh. For each N and each system it starts N real
agents on 127.0.0.1 (one system at a time, so they never compete for the
CPU), and measures:
  join      time from exec of one new agent (after the others converged) until
            every old agent reports it alive; also until the new agent sees
            all; median of J joins (BENCH_JOINS, 3): N-J agents converge, then
            agents N-J..N-1 join one at a time, settling in between;
  detect    time from SIGKILL of one agent until every other agent reports it
            failed (serf) / dead (shoal); median of K kills, a different
            victim each time, the cluster settling in between;
  idle      per-agent RSS (VmRSS), CPU (utime+stime delta over the window,
            % of one core) and bytes sent per second (tcpdump on lo, port
            range of the system's agents, IP bytes incl. UDP/TCP headers).

Timing method (default "log"): every agent's log goes to its own file; one
loop reads all files every ~10 ms and stamps each new line with the
monotonic clock when it is read. serf logs `serf: EventMemberJoin: NAME` /
`serf: EventMemberFailed: NAME`; shoal logs `event=member_join|member_alive
name=NAME` / `event=member_dead name=NAME` (agent contract). The loop's real
period is measured and reported as the resolution. After each measurement
the members API (`serf members -format=json`, `shoal members --json`) of
every agent is queried once to confirm the state the logs reported, and the
time of that full query round is reported too (it is what a polling
benchmark's resolution would be). Method "poll" instead polls the members
API round-robin and reports the round time as resolution.

Every process started here is started with PR_SET_PDEATHSIG=SIGKILL and
killed by PID at exit (also on SIGINT/SIGTERM); temp dirs are removed unless
BENCH_KEEP=1. Nothing else is touched.
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def _pdeathsig():
    # Agents must not outlive this script even if it is SIGKILLed.
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def env(name, default):
    v = os.environ.get(name)
    return default if v in (None, "") else v


def now():
    return time.monotonic()


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# process bookkeeping

STARTED = []  # Popen objects we started (agents, tcpdump)
TMPDIRS = []


def spawn(argv, out_path=None, **kw):
    out = open(out_path, "ab") if out_path else subprocess.DEVNULL
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT if out_path else subprocess.DEVNULL,
                         preexec_fn=_pdeathsig, **kw)
    if out_path:
        out.close()
    STARTED.append(p)
    return p


def stop(p, sig=signal.SIGTERM, grace=3.0):
    if p.poll() is not None:
        return
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def cleanup():
    for p in STARTED:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in STARTED:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    STARTED.clear()
    if env("BENCH_KEEP", "0") != "1":
        for d in TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)
    else:
        for d in TMPDIRS:
            log("kept %s" % d)
    TMPDIRS.clear()


def _on_signal(signum, _frame):
    log("signal %d: cleaning up" % signum)
    cleanup()
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# /proc readings

def proc_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def proc_rss_kb(pid):
    """VmRSS, VmHWM, and from smaps_rollup PSS and USS (private clean+dirty), in kB.

    VmRSS counts every resident page of mapped shared libraries; USS is what
    this process alone holds (what killing it would free)."""
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    pss = uss = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Private_Clean:", "Private_Dirty:")):
                uss += int(line.split()[1])
    return rss, hwm, pss, uss


# --------------------------------------------------------------------------
# pcap counting (tcpdump -w on lo, link type EN10MB)

def pcap_count(path, t_from, t_to):
    """Return packets, IP bytes, payload bytes, by protocol, in [t_from, t_to] (epoch s)."""
    res = {"udp_pkts": 0, "udp_ip_bytes": 0, "udp_payload": 0,
           "tcp_pkts": 0, "tcp_ip_bytes": 0, "tcp_payload": 0}
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            return res
        magic = struct.unpack("<I", gh[:4])[0]
        if magic in (0xa1b2c3d4, 0xa1b23c4d):
            e = "<"
        else:
            e = ">"
            magic = struct.unpack(">I", gh[:4])[0]
        nsec = magic == 0xa1b23c4d
        linktype = struct.unpack(e + "I", gh[20:24])[0]
        l2 = 14 if linktype == 1 else (0 if linktype in (101, 228) else 16)
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            ts_s, ts_f, incl, orig = struct.unpack(e + "IIII", rh)
            data = f.read(incl)
            t = ts_s + ts_f / (1e9 if nsec else 1e6)
            if t < t_from or t > t_to:
                continue
            ip = data[l2:]
            if len(ip) < 20 or (ip[0] >> 4) != 4:
                continue
            ihl = (ip[0] & 15) * 4
            tot = struct.unpack(">H", ip[2:4])[0]
            proto = ip[9]
            if proto == 17:
                res["udp_pkts"] += 1
                res["udp_ip_bytes"] += tot
                res["udp_payload"] += tot - ihl - 8
            elif proto == 6 and len(ip) >= ihl + 13:
                doff = (ip[ihl + 12] >> 4) * 4
                res["tcp_pkts"] += 1
                res["tcp_ip_bytes"] += tot
                res["tcp_payload"] += tot - ihl - doff
    return res


# --------------------------------------------------------------------------
# log watcher

KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
SERF_EV = re.compile(r"serf: EventMember(Join|Failed|Leave|Update|Reap): (\S+)")


def parse_serf(line):
    m = SERF_EV.search(line)
    if not m:
        return None
    kind = {"Join": "alive", "Failed": "failed"}.get(m.group(1), m.group(1).lower())
    return kind, m.group(2)


def parse_shoal(line):
    if "event=member_" not in line:
        return None
    kv = {k: v.strip('"') for k, v in KV.findall(line)}
    ev = kv.get("event", "")
    name = kv.get("name")
    if not name:
        return None
    kind = {"member_join": "alive", "member_alive": "alive",
            "member_dead": "failed", "member_suspect": "suspect",
            "member_left": "left"}.get(ev)
    return (kind, name) if kind else None


class LogWatch:
    def __init__(self, parse):
        self.parse = parse
        self.files = {}   # idx -> (file, partial)
        self.periods = []
        self.last_pass = None

    def add(self, idx, path):
        # The file exists: spawn() created it before exec.
        self.files[idx] = [open(path, "rb"), b""]

    def drop(self, idx):
        fp = self.files.pop(idx, None)
        if fp:
            fp[0].close()

    def close(self):
        for idx in list(self.files):
            self.drop(idx)

    def drain(self):
        self.read()
        self.periods = []
        self.last_pass = None

    def read(self):
        t = now()
        if self.last_pass is not None:
            self.periods.append(t - self.last_pass)
        self.last_pass = t
        out = []
        for idx, fp in self.files.items():
            data = fp[0].read()
            if not data:
                continue
            buf = fp[1] + data
            lines = buf.split(b"\n")
            fp[1] = lines.pop()
            for ln in lines:
                ev = self.parse(ln.decode("utf-8", "replace"))
                if ev:
                    out.append((idx, t, ev[0], ev[1]))
        return out

    def resolution(self):
        if not self.periods:
            return None
        return {"mean_ms": round(1000 * statistics.mean(self.periods), 2),
                "max_ms": round(1000 * max(self.periods), 2)}


# --------------------------------------------------------------------------
# systems

class Serf:
    name = "serf"

    def __init__(self, binary, port_base, encrypt):
        self.bin = binary
        self.base = port_base
        self.key = None
        if encrypt:
            import base64
            self.key = base64.b64encode(os.urandom(32)).decode()

    def version(self):
        v = subprocess.run([self.bin, "version"], capture_output=True, text=True, timeout=10).stdout
        d = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "serf"], capture_output=True,
                           text=True, timeout=10).stdout
        return "serf version: %s; dpkg serf %s; encrypt=%s" % (
            " / ".join(v.strip().splitlines()), d.strip(), "on" if self.key else "off")

    def prepare(self, work, n):
        pass

    def node(self, i):
        return "s%d" % i

    def port(self, i):
        return self.base + i

    def rpc(self, i):
        return "127.0.0.1:%d" % (self.base + 500 + i)

    def argv(self, i, joins):
        a = [self.bin, "agent", "-node=%s" % self.node(i), "-bind=127.0.0.1:%d" % self.port(i),
             "-rpc-addr=%s" % self.rpc(i)]
        if self.key:
            a.append("-encrypt=%s" % self.key)
        for j in joins:
            a.append("-join=127.0.0.1:%d" % self.port(j))
        return a

    def members(self, i):
        r = subprocess.run([self.bin, "members", "-rpc-addr=%s" % self.rpc(i), "-format=json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        st = {}
        for m in json.loads(r.stdout).get("members", []):
            s = m.get("status")
            st[m["name"]] = "alive" if s == "alive" else ("failed" if s == "failed" else s)
        return st

    parse = staticmethod(parse_serf)

    def capture_filter(self, n):
        # agents' gossip ports only; the RPC ports (base+500..) are excluded
        return "(udp or tcp) and portrange %d-%d" % (self.base, self.base + n - 1)


class Shoal:
    name = "shoal"

    def __init__(self, binary, port_base, extra):
        self.bin = binary
        self.base = port_base
        self.extra = extra
        self.work = None

    def version(self):
        v = subprocess.run([self.bin, "version"], capture_output=True, text=True, timeout=10)
        import hashlib
        with open(self.bin, "rb") as f:
            h = hashlib.sha256(f.read()).hexdigest()[:16]
        return "shoal version: %s; binary %s built %s UTC, sha256 %s" % (
            v.stdout.strip() or v.stderr.strip(), self.bin,
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(os.path.getmtime(self.bin))), h)

    def prepare(self, work, n):
        self.work = work
        fleet = os.path.join(work, "fleet")
        subprocess.run([self.bin, "fleet", "create", "--out", fleet], check=True,
                       capture_output=True, timeout=30)
        for i in range(n):
            subprocess.run([self.bin, "init", "--data", self.data(i), "--fleet", fleet,
                            "--name", self.node(i)], check=True, capture_output=True, timeout=30)

    def node(self, i):
        return "n%d" % i

    def port(self, i):
        return self.base + i

    def data(self, i):
        return os.path.join(self.work, "n%d" % i)

    def argv(self, i, joins):
        a = [self.bin, "agent", "--data", self.data(i), "--bind", "127.0.0.1:%d" % self.port(i)]
        for j in joins:
            a += ["--join", "127.0.0.1:%d" % self.port(j)]
        return a + self.extra

    def members(self, i):
        r = subprocess.run([self.bin, "members", "--data", self.data(i), "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        st = {}
        for m in json.loads(r.stdout).get("members", []):
            s = m.get("state")
            st[m["name"]] = "failed" if s == "dead" else s
        return st

    parse = staticmethod(parse_shoal)

    def capture_filter(self, n):
        return "(udp or tcp) and portrange %d-%d" % (self.base, self.base + n - 1)


# --------------------------------------------------------------------------
# one system at one N

class Cluster:
    def __init__(self, sysm, n, method):
        self.s = sysm
        self.n = n
        self.method = method
        self.work = tempfile.mkdtemp(prefix="shoal-bench-%s-%d-" % (sysm.name, n))
        TMPDIRS.append(self.work)
        self.procs = {}
        self.watch = LogWatch(sysm.parse)
        self.poll_rounds = []
        self.killed = set()
        self.joins = int(env("BENCH_JOINS", "3"))

    def wait_listening(self, port, timeout):
        t0 = now()
        while now() - t0 < timeout:
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                c.connect(("127.0.0.1", port))
                return
            except OSError:
                time.sleep(0.02)
            finally:
                c.close()
        raise RuntimeError("nothing listens on 127.0.0.1:%d after %.0f s" % (port, timeout))

    def logpath(self, i):
        return os.path.join(self.work, "%s.log" % self.s.node(i))

    def start(self, i, joins):
        path = self.logpath(i)
        open(path, "wb").close()
        self.watch.add(i, path)
        self.procs[i] = spawn(self.s.argv(i, joins), out_path=path, cwd=self.work)
        return self.procs[i]

    def alive_idx(self):
        return [i for i, p in self.procs.items() if p.poll() is None]

    def check_running(self):
        dead = [i for i, p in self.procs.items() if p.poll() is not None and i not in self.killed]
        if dead:
            tails = []
            for i in dead[:3]:
                with open(self.logpath(i), "rb") as f:
                    tails.append("%s: %s" % (self.s.node(i), f.read()[-600:].decode("utf-8", "replace")))
            raise RuntimeError("%s agent(s) exited on their own: %s\n%s" % (
                self.s.name, [self.s.node(i) for i in dead], "\n".join(tails)))

    def poll_all(self, idxs):
        """Members view of each agent, one query each, sequentially; returns (views, round seconds)."""
        t0 = now()
        views = {}
        for i in idxs:
            try:
                views[i] = self.s.members(i)
            except (subprocess.TimeoutExpired, ValueError):
                views[i] = None
        dt = now() - t0
        self.poll_rounds.append(dt)
        return views, dt

    def wait_converged(self, idxs, timeout):
        want = {self.s.node(i) for i in idxs}
        t0 = now()
        while now() - t0 < timeout:
            self.check_running()
            views, _ = self.poll_all(idxs)
            ok = all(v is not None and {k for k, s in v.items() if s == "alive"} >= want
                     for v in views.values())
            if ok:
                return now() - t0
            time.sleep(0.5)
        raise RuntimeError("%s N=%d: no convergence of %d agents within %ds" % (
            self.s.name, self.n, len(idxs), timeout))

    def wait_events(self, observers, subject, kind, timeout, also_subject_sees=None):
        """Wait until every observer logged (kind, subject). Returns per-observer times (from t0 of caller)."""
        seen = {}
        new_sees = set()
        t_new_all = None
        deadline = now() + timeout
        while now() < deadline:
            for idx, t, k, name in self.watch.read():
                if k == kind and name == subject and idx in observers and idx not in seen:
                    seen[idx] = t
                if also_subject_sees is not None and idx == also_subject_sees[0] and k == "alive":
                    new_sees.add(name)
                    if t_new_all is None and new_sees >= also_subject_sees[1]:
                        t_new_all = t
            done = len(seen) == len(observers) and (also_subject_sees is None or t_new_all is not None)
            if done:
                break
            time.sleep(0.01)
        return seen, t_new_all

    def wait_poll(self, observers, subject, kind, timeout):
        seen = {}
        deadline = now() + timeout
        while now() < deadline and len(seen) < len(observers):
            t0 = now()
            for i in observers:
                if i in seen:
                    continue
                try:
                    v = self.s.members(i)
                except (subprocess.TimeoutExpired, ValueError):
                    v = None
                if v and v.get(subject) == kind:
                    seen[i] = now()
            self.poll_rounds.append(now() - t0)
            time.sleep(0.1)
        return seen

    def run(self, idle_s, kills, settle):
        n, s = self.n, self.s
        r = {"n": n}
        r["loadavg_at_start"] = open("/proc/loadavg").read().split()[:3]
        njoins = max(1, min(self.joins, n - 2))
        log("%s N=%d: starting %d agents (workdir %s)" % (s.name, n, n - njoins, self.work))
        t0 = now()
        s.prepare(self.work, n)
        r["prepare_s"] = round(now() - t0, 2)
        for i in range(n - njoins):
            self.start(i, [] if i == 0 else [0])
            if i == 0:
                # The others join through it: wait until it listens (a
                # serf agent exits if its join is refused).
                self.wait_listening(s.port(0), 10)
            time.sleep(0.05)
        self.check_running()
        r["converge_initial_s"] = round(self.wait_converged(list(range(n - njoins)), 120), 2)
        time.sleep(settle)

        # ---- join of one new agent
        joins = []
        for new in range(n - njoins, n):
            old = set(range(new))
            self.watch.drain()
            t0 = now()
            self.start(new, [0])
            if self.method == "log":
                seen, t_new_all = self.wait_events(old, s.node(new), "alive", 60,
                                                   (new, {s.node(i) for i in old}))
                res = self.watch.resolution()
            else:
                seen = self.wait_poll(old, s.node(new), "alive", 60)
                t_new_all = None
                res = {"poll_round_ms": round(1000 * max(self.poll_rounds[-3:]), 1)}
            if len(seen) < len(old):
                raise RuntimeError("%s N=%d: only %d/%d agents saw %s within 60 s" % (
                    s.name, n, len(seen), len(old), s.node(new)))
            times = sorted(t - t0 for t in seen.values())
            # confirm through the members API
            views, dt = self.poll_all(range(new + 1))
            bad = [i for i, v in views.items() if not v or v.get(s.node(new)) != "alive"]
            j = {"new": s.node(new), "cluster_size": new + 1, "all_s": round(times[-1], 3),
                 "first_s": round(times[0], 3), "median_s": round(statistics.median(times), 3),
                 "new_sees_all_s": round(t_new_all - t0, 3) if t_new_all else None,
                 "api_confirmed": not bad, "resolution": res, "api_poll_round_s": round(dt, 3)}
            joins.append(j)
            log("%s N=%d: join of %s: all see it in %.3fs (median %.3fs), it sees all in %s s, "
                "api-confirmed=%s, api poll round %.3fs" % (
                    s.name, n, j["new"], j["all_s"], j["median_s"], j["new_sees_all_s"], not bad, dt))
            self.wait_converged(list(range(new + 1)), 60)
            time.sleep(settle)
        r["joins"] = joins
        r["join_all_s"] = round(statistics.median(j["all_s"] for j in joins), 3)
        r["join_median_s"] = round(statistics.median(j["median_s"] for j in joins), 3)
        nsa = [j["new_sees_all_s"] for j in joins if j["new_sees_all_s"] is not None]
        r["join_new_sees_all_s"] = round(statistics.median(nsa), 3) if nsa else None
        r["join_resolution"] = joins[-1]["resolution"]

        # ---- idle: RSS, CPU, bytes
        self.check_running()
        pcap = os.path.join(self.work, "idle.pcap")
        td_err = os.path.join(self.work, "tcpdump.err")
        td = spawn(["tcpdump", "-i", "lo", "-nn", "-s", "128", "-w", pcap, s.capture_filter(n)],
                   out_path=td_err)
        t_wait = now()
        while now() - t_wait < 10:
            with open(td_err) as f:
                if "listening on" in f.read():
                    break
            time.sleep(0.05)
        time.sleep(0.5)
        pids = {i: p.pid for i, p in self.procs.items()}
        c0 = {i: proc_cpu_ticks(pid) for i, pid in pids.items()}
        w0, m0 = time.time(), now()
        time.sleep(idle_s)
        c1 = {i: proc_cpu_ticks(pid) for i, pid in pids.items()}
        w1, m1 = time.time(), now()
        rss = {i: proc_rss_kb(pid) for i, pid in pids.items()}
        time.sleep(0.5)
        stop(td, signal.SIGTERM)
        with open(td_err) as f:
            td_text = f.read()
        m = re.search(r"(\d+) packets dropped by kernel", td_text)
        dt = m1 - m0
        cpu = [100.0 * (c1[i] - c0[i]) / CLK_TCK / dt for i in pids]
        rss_mb = [v[0] / 1024.0 for v in rss.values()]
        hwm_mb = [v[1] / 1024.0 for v in rss.values()]
        pss_mb = [v[2] / 1024.0 for v in rss.values()]
        uss_mb = [v[3] / 1024.0 for v in rss.values()]
        cnt = pcap_count(pcap, w0, w1)
        ipb = cnt["udp_ip_bytes"] + cnt["tcp_ip_bytes"]
        pay = cnt["udp_payload"] + cnt["tcp_payload"]
        pk = cnt["udp_pkts"] + cnt["tcp_pkts"]
        r.update({
            "idle_window_s": round(dt, 2),
            "rss_mean_mb": round(statistics.mean(rss_mb), 2),
            "rss_max_mb": round(max(rss_mb), 2),
            "hwm_max_mb": round(max(hwm_mb), 2),
            "pss_mean_mb": round(statistics.mean(pss_mb), 2),
            "uss_mean_mb": round(statistics.mean(uss_mb), 2),
            "uss_max_mb": round(max(uss_mb), 2),
            "threads": sorted({len(os.listdir("/proc/%d/task" % pid)) for pid in pids.values()}),
            "cpu_mean_pct": round(statistics.mean(cpu), 3),
            "cpu_max_pct": round(max(cpu), 3),
            "cpu_tick_resolution_pct": round(100.0 / CLK_TCK / dt, 3),
            "bytes_per_s_per_agent": round(ipb / dt / n, 1),
            "payload_bytes_per_s_per_agent": round(pay / dt / n, 1),
            "udp_bytes_per_s_per_agent": round(cnt["udp_ip_bytes"] / dt / n, 1),
            "tcp_bytes_per_s_per_agent": round(cnt["tcp_ip_bytes"] / dt / n, 1),
            "pkts_per_s_per_agent": round(pk / dt / n, 2),
            "tcpdump_dropped": int(m.group(1)) if m else None,
        })
        os.unlink(pcap)
        log("%s N=%d: idle rss mean %.2f MB max %.2f MB, cpu mean %.3f%%, %.1f B/s/agent (udp %.1f tcp %.1f)" % (
            s.name, n, r["rss_mean_mb"], r["rss_max_mb"], r["cpu_mean_pct"],
            r["bytes_per_s_per_agent"], r["udp_bytes_per_s_per_agent"], r["tcp_bytes_per_s_per_agent"]))

        # ---- failure detection, a different victim each time
        victims = [max(1, (k + 1) * n // (kills + 1)) for k in range(kills)]
        det = []
        self.killed = set()
        for v in victims:
            self.check_running()
            others = set(self.alive_idx()) - {v}
            self.watch.drain()
            p = self.procs[v]
            t0 = now()
            os.kill(p.pid, signal.SIGKILL)
            self.killed.add(v)
            p.wait()
            self.watch.drop(v)
            if self.method == "log":
                seen, _ = self.wait_events(others, s.node(v), "failed", 90)
                res = self.watch.resolution()
            else:
                seen = self.wait_poll(others, s.node(v), "failed", 90)
                res = {"poll_round_ms": round(1000 * max(self.poll_rounds[-3:]), 1)}
            if len(seen) < len(others):
                raise RuntimeError("%s N=%d: only %d/%d agents saw %s failed within 90 s" % (
                    s.name, n, len(seen), len(others), s.node(v)))
            times = sorted(t - t0 for t in seen.values())
            views, dt = self.poll_all(sorted(others))
            bad = [i for i, vw in views.items() if not vw or vw.get(s.node(v)) != "failed"]
            d = {"victim": s.node(v), "all_s": round(times[-1], 3), "first_s": round(times[0], 3),
                 "median_s": round(statistics.median(times), 3), "api_confirmed": not bad,
                 "resolution": res, "api_poll_round_s": round(dt, 3)}
            det.append(d)
            log("%s N=%d: kill %s -> all see failed in %.3fs (first %.3fs) api-confirmed=%s" % (
                s.name, n, d["victim"], d["all_s"], d["first_s"], not bad))
            time.sleep(settle)
        r["detections"] = det
        r["detect_all_median_s"] = round(statistics.median(d["all_s"] for d in det), 3)
        r["detect_first_median_s"] = round(statistics.median(d["first_s"] for d in det), 3)
        r["api_poll_round_max_s"] = round(max(self.poll_rounds), 3)
        r["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
        return r

    def shutdown(self):
        self.watch.close()
        for p in self.procs.values():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
        for p in self.procs.values():
            p.wait()


# --------------------------------------------------------------------------

ROWS = [
    ("join: every agent sees new one, median of joins (s)", "join_all_s"),
    ("join: median agent sees new one, median (s)", "join_median_s"),
    ("join: new one sees every agent, median (s)", "join_new_sees_all_s"),
    ("detect: all others see failed, median of kills (s)", "detect_all_median_s"),
    ("detect: first agent sees failed, median (s)", "detect_first_median_s"),
    ("idle RSS mean per agent (MiB)", "rss_mean_mb"),
    ("idle RSS max (MiB)", "rss_max_mb"),
    ("idle USS (private) mean per agent (MiB)", "uss_mean_mb"),
    ("idle USS max (MiB)", "uss_max_mb"),
    ("idle PSS mean per agent (MiB)", "pss_mean_mb"),
    ("idle CPU mean per agent (% of a core)", "cpu_mean_pct"),
    ("idle bytes sent/s per agent (IP, UDP+TCP)", "bytes_per_s_per_agent"),
    ("  of which UDP", "udp_bytes_per_s_per_agent"),
    ("  of which TCP", "tcp_bytes_per_s_per_agent"),
    ("idle payload bytes/s per agent", "payload_bytes_per_s_per_agent"),
    ("idle packets/s per agent", "pkts_per_s_per_agent"),
]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.3f" % v if abs(v) < 10 else "%.1f" % v
    return str(v)


def table(n, res):
    serf, shoal = res.get("serf"), res.get("shoal")
    lines = ["", "N = %d" % n,
             "| %-52s | %10s | %10s | %11s |" % ("metric", "serf", "shoal", "shoal/serf"),
             "|%s|%s|%s|%s|" % ("-" * 54, "-" * 12, "-" * 12, "-" * 13)]
    for label, key in ROWS:
        a = serf.get(key) if isinstance(serf, dict) else None
        b = shoal.get(key) if isinstance(shoal, dict) else None
        ratio = "%.2f" % (b / a) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "-"
        lines.append("| %-52s | %10s | %10s | %11s |" % (label, fmt(a), fmt(b), ratio))
    for name in ("serf", "shoal"):
        r = res.get(name)
        if isinstance(r, dict):
            lines.append("%s: joins %s; detections %s; resolution %s; api poll round max %.3fs; tcpdump dropped %s" % (
                name, [(j["new"], j["all_s"]) for j in r["joins"]],
                [(d["victim"], d["all_s"]) for d in r["detections"]], r.get("join_resolution"),
                r.get("api_poll_round_max_s", 0), r.get("tcpdump_dropped")))
        elif r is not None:
            lines.append("%s: %s" % (name, r))
    return "\n".join(lines)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram": mem,
            "kernel": os.uname().release,
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}


def main():
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    ns = [int(a) for a in sys.argv[1:]] or [20, 50]
    systems = env("BENCH_SYSTEMS", "serf shoal").split()
    idle_s = float(env("BENCH_IDLE_S", "60"))
    kills = int(env("BENCH_KILLS", "3"))
    settle = float(env("BENCH_SETTLE_S", "10"))
    method = env("BENCH_METHOD", "log")
    out = env("BENCH_OUT", "/tmp/shoal-bench-membership-%d.json" % int(time.time()))
    sysobjs = {}
    if "serf" in systems:
        sysobjs["serf"] = Serf(env("SERF_BIN", "/usr/bin/serf"), int(env("BENCH_PORT_SERF", "17000")),
                               env("BENCH_SERF_ENCRYPT", "1") == "1")
    if "shoal" in systems:
        sysobjs["shoal"] = Shoal(env("SHOAL_BIN", "./build/shoal"), int(env("BENCH_PORT_SHOAL", "18000")),
                                 env("BENCH_SHOAL_ARGS", "").split())
    doc = {"machine": machine(), "method": method, "idle_s": idle_s, "kills": kills,
           "settle_s": settle, "argv": sys.argv, "versions": {}, "results": {}}
    for k, so in sysobjs.items():
        try:
            doc["versions"][k] = so.version()
        except Exception as e:  # noqa: BLE001 - report, do not hide
            doc["versions"][k] = "version failed: %s" % e
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "src", "include", "sim"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        doc["versions"]["shoal_tree_at_run"] = "%s%s" % (rev, " + uncommitted: %s" % ", ".join(
            l[3:] for l in dirty if l) if any(dirty) else "")
    except Exception as e:  # noqa: BLE001
        doc["versions"]["shoal_tree_at_run"] = "unknown: %s" % e
    log("machine %s" % doc["machine"])
    log("versions %s" % doc["versions"])
    rc = 0
    try:
        for n in ns:
            res = {}
            for name, so in sysobjs.items():
                cl = Cluster(so, n, method)
                try:
                    res[name] = cl.run(idle_s, kills, settle)
                except Exception as e:  # noqa: BLE001 - one system failing must not lose the other's figures
                    log("%s N=%d FAILED: %s" % (name, n, e))
                    res[name] = "FAILED: %s" % e
                    rc = 1
                finally:
                    cl.shutdown()
            doc["results"][str(n)] = res
            with open(out, "w") as f:
                json.dump(doc, f, indent=1)
            print(table(n, res), flush=True)
    finally:
        cleanup()
    doc["machine"]["date_utc_end"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    print("\nmachine: %s" % json.dumps(doc["machine"]))
    print("versions: %s" % json.dumps(doc["versions"]))
    print("method: %s; idle window %ss; kills %d; settle %ss; json: %s" % (method, idle_s, kills, settle, out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
