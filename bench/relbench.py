"""relbench.py — helpers shared by bench/records.py and bench/release.py.

Processes: every process is started with PR_SET_PDEATHSIG=SIGKILL and
killed by PID at exit (also on SIGINT/SIGTERM); only the run's own temp
dirs are removed (BENCH_KEEP=1 keeps them). Nothing else is touched.

Clocks: shoal agents stamp their log lines with CLOCK_REALTIME (ts=..., ms,
truncated); serf event handlers and the connect() shim stamp with
CLOCK_REALTIME too; the drivers take time.time() right before exec of the
command they time. All processes share the machine's clock, so these
stamps compare directly.
"""

import calendar
import ctypes
import hashlib
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

_libc = ctypes.CDLL("libc.so.6", use_errno=True)

STARTED = []   # Popen objects started here
TMPDIRS = []


def env(name, default):
    v = os.environ.get(name)
    return default if v in (None, "") else v


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def _pdeathsig():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the driver


def spawn(argv, out_path=None, extra_env=None, cwd=None):
    out = open(out_path, "ab") if out_path else subprocess.DEVNULL
    e = None
    if extra_env:
        e = dict(os.environ)
        e.update(extra_env)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT if out_path else subprocess.DEVNULL,
                         preexec_fn=_pdeathsig, env=e, cwd=cwd)
    if out_path:
        out.close()
    STARTED.append(p)
    return p


def stop(p, sig=signal.SIGTERM, grace=5.0):
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


def wait_or_kill(p, grace):
    """Waits for p (already signalled) to exit; SIGKILL after grace seconds."""
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
            p.wait(timeout=10)
        except Exception:
            pass
    STARTED.clear()
    for d in TMPDIRS:
        if env("BENCH_KEEP", "0") == "1":
            log("kept %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)
    TMPDIRS.clear()


def _on_signal(signum, _frame):
    log("signal %d: cleaning up" % signum)
    cleanup()
    sys.exit(128 + signum)


def install_signal_handlers():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def mkwork(prefix):
    # BENCH_TMPDIR: where agents' data dirs go (e.g. /dev/shm to take the disk out)
    d = tempfile.mkdtemp(prefix=prefix, dir=env("BENCH_TMPDIR", None))
    TMPDIRS.append(d)
    return d


def ports_free(base, n, udp=True):
    """True when TCP (and UDP) ports base..base+n-1 on 127.0.0.1 are free."""
    for p in range(base, base + n):
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
        for k in kinds:
            s = socket.socket(socket.AF_INET, k)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
            finally:
                s.close()
    return True


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """utime+stime of a live process, seconds (None once it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


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
                mem = "%.1f GiB" % (int(line.split()[1]) / 1048576)
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem": mem,
            "kernel": os.uname().release, "date_utc": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                    time.gmtime())}


def shoal_version(binary):
    v = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10)
    with open(binary, "rb") as f:
        h = hashlib.sha256(f.read()).hexdigest()[:16]
    return {"version": (v.stdout.strip() or v.stderr.strip()), "binary": binary,
            "built_utc": time.strftime("%Y-%m-%d %H:%M:%S",
                                       time.gmtime(os.path.getmtime(binary))),
            "sha256_prefix": h}


def serf_version(binary):
    v = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10).stdout
    d = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "serf"], capture_output=True,
                       text=True, timeout=10).stdout
    return {"serf_version": " / ".join(v.strip().splitlines()), "dpkg": d.strip()}


def med(xs):
    return statistics.median(xs) if xs else None


def r3(x):
    return None if x is None else round(x, 3)


def ratio(a, b):
    return None if (a is None or b in (None, 0)) else round(a / b, 2)


# --------------------------------------------------------------------------
# shoal logs: key=value lines with ts=YYYY-MM-DDTHH:MM:SS.mmmZ (CLOCK_REALTIME)

KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z")


def parse_ts(s):
    m = TS.match(s)
    if not m:
        return None
    y, mo, d, h, mi, se, ms = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0)) + ms / 1000.0


def parse_line(line):
    kv = {k: v.strip('"') for k, v in KV.findall(line)}
    if "ts" in kv:
        kv["_t"] = parse_ts(kv["ts"])
    return kv


class LogTail:
    """Reads new complete lines from several log files; returns parsed dicts."""

    def __init__(self):
        self.files = {}

    def add(self, key, path):
        self.files[key] = [open(path, "rb"), b""]

    def close(self):
        for fp in self.files.values():
            fp[0].close()
        self.files = {}

    def read(self, want=None):
        out = []
        for key, fp in self.files.items():
            data = fp[0].read()
            if not data:
                continue
            buf = fp[1] + data
            lines = buf.split(b"\n")
            fp[1] = lines.pop()
            for ln in lines:
                s = ln.decode("utf-8", "replace")
                if want and not any(w in s for w in want):
                    continue
                kv = parse_line(s)
                kv["_node"] = key
                out.append(kv)
        return out


# --------------------------------------------------------------------------
# a shoal mesh on 127.0.0.1

class Mesh:
    def __init__(self, binary, work, n, port_base, extra_args=(), preload=None, connlog=None):
        self.bin = binary
        self.work = work
        self.n = n
        self.base = port_base
        self.extra = list(extra_args)
        self.preload = preload
        self.connlog = connlog
        self.procs = {}
        self.repo = os.path.join(work, "repo")
        self.tail = LogTail()

    def name(self, i):
        return "n%d" % i

    def data(self, i):
        return os.path.join(self.work, self.name(i))

    def logpath(self, i):
        return os.path.join(self.work, "%s.log" % self.name(i))

    def port(self, i):
        return self.base + i

    def run(self, *args, check=True, timeout=120):
        r = subprocess.run([self.bin, *args], cwd=self.work, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("shoal %s exited %d: %s" % (" ".join(args), r.returncode,
                                                          r.stderr.strip()))
        return r

    def prepare(self):
        self.run("fleet", "create", "--out", "fleet")
        self.run("release", "init", "--repo", self.repo)
        root = os.path.join(self.repo, "metadata", "1.root.json")
        for i in range(self.n):
            self.run("init", "--data", self.data(i), "--fleet", "fleet", "--name",
                     self.name(i), "--root", root)

    def start_all(self):
        for i in range(self.n):
            argv = [self.bin, "agent", "--data", self.data(i), "--bind",
                    "127.0.0.1:%d" % self.port(i)] + self.extra
            if i:
                argv += ["--join", "127.0.0.1:%d" % self.port(0)]
            e = {}
            if self.preload:
                e["LD_PRELOAD"] = self.preload
                e["BENCH_CONNLOG"] = self.connlog
            open(self.logpath(i), "ab").close()
            self.procs[i] = spawn(argv, self.logpath(i), extra_env=e or None)
            self.tail.add(i, self.logpath(i))
            time.sleep(0.02)

    def pids(self):
        return {p.pid: i for i, p in self.procs.items()}

    def ask(self, i, req, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.data(i), "control.sock"))
            s.sendall(json.dumps(req).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return json.loads(buf)
        except (OSError, ValueError):
            return None
        finally:
            s.close()

    def converge(self, timeout=120):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            ok = 0
            for i in range(self.n):
                r = self.ask(i, {"cmd": "members"})
                if r and sum(1 for m in r["members"] if m["state"] == "alive") == self.n:
                    ok += 1
            if ok == self.n:
                return time.monotonic() - t0
            time.sleep(0.5)
        raise RuntimeError("shoal: %d agents did not converge within %d s" % (self.n, timeout))

    def stop_all(self):
        # SIGTERM to all first: each agent lingers ~1 s gossiping its leave
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            wait_or_kill(p, 10)
        self.tail.close()

    # releases -----------------------------------------------------------

    def stage_file(self, path, name, remove=None):
        if remove:
            self.run("release", "remove", "--repo", self.repo, remove)
        self.run("release", "add", "--repo", self.repo, path, "--name", name)
        for k in ("publisher-1", "publisher-2"):
            self.run("release", "sign", "--repo", self.repo, "--key",
                     os.path.join(self.repo, "keys", "%s.key" % k))

    def publish(self, at=0):
        """Runs `shoal release publish --data` at agent `at`; returns (t_exec, t_done, r)."""
        argv = [self.bin, "release", "publish", "--repo", self.repo, "--data", self.data(at)]
        t_exec = time.time()
        r = subprocess.run(argv, cwd=self.work, capture_output=True, text=True, timeout=120)
        t_done = time.time()
        if r.returncode != 0:
            raise RuntimeError("publish exited %d: %s" % (r.returncode, r.stderr.strip()))
        return t_exec, t_done, r

    def releases(self, i):
        r = self.ask(i, {"cmd": "releases"})
        return r.get("releases", []) if r else None

    def status(self, i):
        return self.ask(i, {"cmd": "status"})


def summary(xs):
    if not xs:
        return None
    return {"median": r3(statistics.median(xs)), "min": r3(min(xs)), "max": r3(max(xs)),
            "n": len(xs), "samples": [r3(x) for x in xs]}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    log("wrote %s" % path)


# --------------------------------------------------------------------------
# pcap reading (tcpdump -w on lo)

def pcap_packets(path):
    """Yields (t, proto, sport, dport, ip_len, payload_len) for IPv4 TCP/UDP packets."""
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            return
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
            ts_s, ts_f, incl, _orig = struct.unpack(e + "IIII", rh)
            data = f.read(incl)
            t = ts_s + ts_f / (1e9 if nsec else 1e6)
            ip = data[l2:]
            if len(ip) < 20 or (ip[0] >> 4) != 4:
                continue
            ihl = (ip[0] & 15) * 4
            tot = struct.unpack(">H", ip[2:4])[0]
            proto = ip[9]
            if len(ip) < ihl + 4:
                continue
            sport, dport = struct.unpack(">HH", ip[ihl:ihl + 4])
            if proto == 17:
                yield t, "udp", sport, dport, tot, tot - ihl - 8
            elif proto == 6 and len(ip) >= ihl + 13:
                doff = (ip[ihl + 12] >> 4) * 4
                yield t, "tcp", sport, dport, tot, tot - ihl - doff


class Tcpdump:
    """tcpdump -i lo for one measurement; stop() returns its drop counts."""

    def __init__(self, path, bpf):
        self.path = path
        self.err = path + ".err"
        self.p = spawn(["tcpdump", "-i", "lo", "-n", "-s", "128", "-B", "32768", "-U",
                        "-w", path, bpf], self.err)
        # wait until it listens (it prints "listening on lo")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            with open(self.err, "rb") as f:
                if b"listening on" in f.read():
                    break
            time.sleep(0.05)
        time.sleep(0.2)

    def stop(self):
        stop(self.p, signal.SIGINT, grace=10)
        out = open(self.err, "rb").read().decode("utf-8", "replace")
        m = re.search(r"(\d+) packets? dropped by kernel", out)
        c = re.search(r"(\d+) packets? captured", out)
        return {"captured": int(c.group(1)) if c else None,
                "dropped_by_kernel": int(m.group(1)) if m else None}


def ensure_tcpdump():
    if shutil.which("tcpdump"):
        return True
    if os.getuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "tcpdump"], capture_output=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return shutil.which("tcpdump") is not None
