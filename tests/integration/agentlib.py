"""agentlib — what the Python integration tests share: real `shoal agent`
processes on 127.0.0.1, each with a data dir under one temp dir, driven
through their control sockets. Only PIDs started here are ever signalled."""
import json, os, random, signal, socket, subprocess, sys, tempfile, time


def free_ports(n):
    """n ports free for both UDP and TCP on 127.0.0.1, below the kernel's
    ephemeral range: agents are restarted on their port, and an outgoing
    connection of another agent (push-pull, sync, blob) may take a free
    port of the ephemeral range meanwhile ("Address already in use")."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_lo = 32768
    lo = max(1024, eph_lo - 12000)
    if eph_lo - lo < 4 * n:
        raise RuntimeError(f"ephemeral range starts at {eph_lo}: no room below it")
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    held, out = [], []
    for _ in range(200 * n + 1000):
        if len(out) == n:
            break
        p = rnd.randrange(lo, eph_lo)
        if p in out:
            continue
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", p))
            t.bind(("127.0.0.1", p))
        except OSError:
            u.close(); t.close()
            continue
        held += [u, t]
        out.append(p)
    for s in held:
        s.close()
    if len(out) < n:
        raise RuntimeError(f"found {len(out)} of {n} free ports below {eph_lo}")
    return out


class Lab:
    def __init__(self, tag, prefix):
        self.tag = tag
        self.shoal = os.environ["SHOAL_BIN"]
        self.work = tempfile.mkdtemp(prefix=prefix)
        self.procs = {}
        self.ports = {}
        self.t0 = time.monotonic()

    def note(self, msg):
        print(f"{self.tag} [{time.monotonic() - self.t0:5.1f}s] {msg}", flush=True)

    def fail(self, msg, nodes=(), lines=20):
        """Prints msg and the tail of each named agent's log; exits 1."""
        print(f"FAIL: {msg}", file=sys.stderr)
        for n in nodes:
            path = os.path.join(self.work, f"{n}.log")
            if os.path.exists(path):
                print(f"--- last lines of {n}.log ---", file=sys.stderr)
                with open(path) as f:
                    print("".join(f.readlines()[-lines:]), file=sys.stderr)
        raise SystemExit(1)

    def run(self, *args, check=True):
        r = subprocess.run([self.shoal, *args], cwd=self.work, capture_output=True, text=True)
        if check and r.returncode != 0:
            self.fail(f"shoal {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def assign_ports(self, names):
        """A port free for both UDP and TCP on 127.0.0.1 for each name."""
        self.ports.update(zip(names, free_ports(len(names))))

    def ask(self, name, req, timeout=5.0):
        """One control-socket request; the reply, or None."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(os.path.join(self.work, name, "control.sock"))
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

    def start(self, name, join=None, extra=(), wait=False, env=None):
        """Starts the agent for data dir `name` (log: name.log); with wait,
        until its control socket answers. env: variables added to ours."""
        args = [self.shoal, "agent", "--data", name, "--bind",
                f"127.0.0.1:{self.ports[name]}", *extra]
        if join:
            args += ["--join", f"127.0.0.1:{self.ports[join]}"]
        log = open(os.path.join(self.work, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(args, cwd=self.work, stdout=log,
                                            stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})})
        t0 = time.monotonic()
        while wait and time.monotonic() - t0 < 20:
            if self.ask(name, {"cmd": "status"}):
                return
            if self.procs[name].poll() is not None:
                self.fail(f"{name} exited {self.procs[name].returncode} at start", [name])
            time.sleep(0.1)
        if wait:
            self.fail(f"{name} did not answer on its control socket", [name])

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=30)

    def stop(self, name, within=30):
        """SIGTERM and a clean exit 0; returns the seconds it took."""
        p = self.procs.get(name)
        if not p or p.poll() is not None:
            return 0.0
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.fail(f"{name} did not exit within {within} s of SIGTERM", [name])
        if rc != 0:
            self.fail(f"{name} exited {rc} after SIGTERM", [name])
        return time.monotonic() - t0

    def releases(self, name):
        r = self.ask(name, {"cmd": "releases"})
        return r.get("releases", []) if r else None

    def converge(self, names, want, timeout=90):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            ok = 0
            for n in names:
                r = self.ask(n, {"cmd": "members"})
                if r and sum(1 for m in r["members"] if m["state"] == "alive") == want:
                    ok += 1
            if ok == len(names):
                self.note(f"{len(names)} agents see {want} alive after "
                          f"{time.monotonic() - t0:.1f} s")
                return
            time.sleep(0.3)
        self.fail(f"no convergence to {want} alive within {timeout} s", names[:1])

    def log_errors(self, names):
        """Lines of the agents' logs that are errors or sanitizer reports."""
        bad = []
        for n in names:
            path = os.path.join(self.work, f"{n}.log")
            if os.path.exists(path):
                bad += [l for l in open(path) if " level=error " in l or
                        "Sanitizer" in l or "runtime error" in l]
        return bad

    def cleanup(self):
        """Kills what is still running (ours), then removes the temp dir
        unless SHOAL_TEST_KEEP=1."""
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("SHOAL_TEST_KEEP") == "1":
            print(f"kept {self.work}")
        else:
            import shutil
            shutil.rmtree(self.work, ignore_errors=True)
