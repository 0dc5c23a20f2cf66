#!/usr/bin/env python3
"""upstream — an agent pulls an HTTP TUF repository and bridges it into the mesh.

Real `shoal agent` processes on 127.0.0.1; the repository is made with
`shoal release` and served (metadata/ and targets/ only) by python3's
http.server on 127.0.0.1. Only n0 has `--upstream URL`. Steps, each bounded:

  1. Config errors: a non-http(s) --upstream is a usage error naming the
     flag; a bad `upstream` in a config file names file, line and key.
  2. Three agents converge. A release (2 of 3 publisher signatures) is
     published into the served repository only: n0 pulls it, verifies it,
     announces it; all three verify and install it (bytes compared with the
     published files); n0's status shows the injection.
  3. An under-signed release (1 of 2 signatures, --allow-under-threshold) is
     served: n0 refuses it (status: ok false, the error names the TUF step
     "targets: not signed by a threshold"), and nothing is announced: after
     several pull and sync intervals no agent has a new release row and n0's
     feed has no new announce.
  4. The next good release (the bad file removed, another added) is pulled,
     announced and installed by all three.
  5. n0 restarts: it does not announce the same version again (state
     persisted): no new release rows anywhere after several intervals.
  6. n0 restarts against a server that accepts connections and never
     answers: once a pull is under way, SIGTERM still ends the agent within
     a few seconds (the fetch is cancelled, not left to its timeout).
  7. Every agent exits 0 on SIGTERM; no log has a level=error line or a
     sanitizer report.

Only PIDs started here are signalled. SHOAL_TEST_KEEP=1 keeps the temp dir.
"""
import json, os, re, socket, subprocess, sys, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Lab  # noqa: E402

LAB = Lab("upstream", "shoal-upstream.")
WORK = LAB.work
NAMES = ["n0", "n1", "n2"]
PULL_MS = 1000
SYNC_MS = 1000
server = None
blackhole = None
note, fail, run, ask, stop, releases = (LAB.note, LAB.fail, LAB.run, LAB.ask, LAB.stop,
                                        LAB.releases)


def start(name, join=None, upstream=None):
    extra = ["--sync-interval-ms", str(SYNC_MS)]
    if upstream:
        extra += ["--upstream", upstream, "--upstream-interval-ms", str(PULL_MS)]
    LAB.start(name, join, extra=extra, wait=True)


def announces(name):
    """Announce records in the node's store (shoal log reads it read-only)."""
    r = run("log", "--data", name, "--kind", "announce", "--json")
    return len(json.loads(r.stdout)["records"])


def upstream_status(name="n0"):
    st = ask(name, {"cmd": "status"})
    return st["replication"].get("upstream") if st else None


def wait_for(pred, what, timeout, nodes=("n0",)):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = pred()
        if v:
            note(f"{what} after {time.monotonic() - t0:.1f} s")
            return v
        time.sleep(0.2)
    fail(f"{what}: not within {timeout} s; n0 upstream status {upstream_status()}", nodes)


def wait_all_verified(version, timeout=60):
    def ok():
        return all(any(r["version"] == version and r["state"] == "verified"
                       for r in (releases(n) or [])) for n in NAMES)
    wait_for(ok, f"version {version} verified by all {len(NAMES)} agents", timeout, NAMES)


def check_installed(version, files, absent=()):
    for n in NAMES:
        for name, path in files.items():
            inst = os.path.join(WORK, n, "releases", str(version), name.replace("/", "%2F"))
            if not os.path.exists(inst):
                fail(f"{n}: {inst} missing", [n])
            if open(inst, "rb").read() != open(path, "rb").read():
                fail(f"{n}: installed {name} differs from the published file")
        for name in absent:
            if os.path.exists(os.path.join(WORK, n, "releases", str(version),
                                           name.replace("/", "%2F"))):
                fail(f"{n}: release {version} holds {name}, which it should not")
    note(f"version {version}: installed bytes equal the published files at all agents")


def serve(directory):
    """python3 -m http.server on 127.0.0.1, our own child; returns (proc, port)."""
    portfile = os.path.join(WORK, "http.port")
    script = os.path.join(WORK, "server.py")
    with open(script, "w") as f:
        f.write("import functools, http.server, sys\n"
                "class H(http.server.SimpleHTTPRequestHandler):\n"
                "    def log_message(self, *a): pass\n"
                "srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0),"
                " functools.partial(H, directory=sys.argv[1]))\n"
                "open(sys.argv[2] + '.tmp', 'w').write(str(srv.server_address[1]))\n"
                "import os; os.rename(sys.argv[2] + '.tmp', sys.argv[2])\n"
                "srv.serve_forever()\n")
    p = subprocess.Popen([sys.executable, script, directory, portfile],
                         stderr=open(os.path.join(WORK, "http.log"), "w"))
    t0 = time.monotonic()
    while not os.path.exists(portfile):
        if time.monotonic() - t0 > 10 or p.poll() is not None:
            fail("the HTTP server did not start")
        time.sleep(0.05)
    return p, int(open(portfile).read())


class Blackhole:
    """Accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stopped = True
        self.sock.close()
        for c in self.conns:
            c.close()


def publish(repo, add=(), remove=(), keys=("publisher-1", "publisher-2"), drill=False):
    for name in remove:
        run("release", "remove", "--repo", repo, name)
    for path, name in add:
        run("release", "add", "--repo", repo, path, "--name", name)
    for k in keys:
        run("release", "sign", "--repo", repo, "--key", os.path.join(repo, "keys", f"{k}.key"))
    args = ["release", "publish", "--repo", repo]
    if drill:
        args.append("--allow-under-threshold")
    r = run(*args, check=not drill)
    if drill and r.returncode != 0:
        fail(f"publish --allow-under-threshold exited {r.returncode}: {r.stderr.strip()}")


def write(name, text):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.write(text)
    return path


def main():
    global server, blackhole
    LAB.assign_ports(NAMES)
    repo = os.path.join(WORK, "repo")
    run("fleet", "create", "--out", "fleet")
    run("release", "init", "--repo", repo)
    root = os.path.join(repo, "metadata", "1.root.json")
    for n in NAMES:
        run("init", "--data", n, "--fleet", "fleet", "--name", n, "--root", root)

    # 1. config errors
    r = run("agent", "--data", "n0", "--upstream", "ftp://127.0.0.1/repo", check=False)
    if r.returncode != 2 or "--upstream: expected an http:// or https:// URL" not in r.stderr:
        fail(f"--upstream ftp://: exit {r.returncode}, stderr {r.stderr.strip()!r}")
    conf = write("bad.conf", b"[replication]\nsync_interval_ms = 1000\nupstream = file:///srv\n")
    r = run("agent", "--data", "n0", "--config", conf, check=False)
    if r.returncode != 1 or f"{conf}:3: [replication] upstream: expected" not in r.stderr:
        fail(f"bad upstream in a file: exit {r.returncode}, stderr {r.stderr.strip()!r}")
    note("config errors name the flag, or file:line and key")

    # The web root serves metadata/ and targets/ only, never the keys.
    www = os.path.join(WORK, "www")
    os.mkdir(www)
    os.symlink(os.path.join(repo, "metadata"), os.path.join(www, "metadata"))
    os.symlink(os.path.join(repo, "targets"), os.path.join(www, "targets"))
    server, port = serve(www)
    url = f"http://127.0.0.1:{port}/"

    # 2. a good release reaches everyone through n0's pull
    start("n0", upstream=url)
    start("n1", join="n0")
    start("n2", join="n0")
    wait_for(lambda: all((ask(n, {"cmd": "members"}) or {}).get("members") and
                         sum(1 for m in ask(n, {"cmd": "members"})["members"]
                             if m["state"] == "alive") == 3 for n in NAMES),
             "3 agents converged", 30, NAMES)
    # The repository as `release init` left it (version 1, no targets) is
    # announced too: its timestamp is newer than anything injected.
    wait_all_verified(1)
    base = write("base.yar", b'rule base { strings: $a = "evil" condition: $a }\n')
    iocs = write("iocs.txt", os.urandom(300000).hex().encode())
    publish(repo, add=[(base, "rules/base.yar"), (iocs, "iocs/sha256.txt")])
    wait_all_verified(2)
    check_installed(2, {"rules/base.yar": base, "iocs/sha256.txt": iocs})
    n0_id = ask("n0", {"cmd": "status"})["id"]
    for n in NAMES:
        row = next(r for r in releases(n) if r["version"] == 2)
        if row["announced_by"] != n0_id:
            fail(f"{n}: version 2 announced by {row['announced_by']}, not n0")
    st = upstream_status()
    if not (st and st["ok"] and st["last_injected_version"] == 2 and st["injections"] == 2 and
            st["last_success_ms"] > 0 and st["url"] == url.rstrip("/")):
        fail(f"n0 upstream status after the first release: {st}")
    out = run("status", "--data", "n0").stdout
    if "upstream:" not in out or not re.search(r"last_injected_version: +2\n", out):
        fail(f"shoal status does not show the upstream: {out}")
    if os.path.exists(os.path.join(WORK, "n0", "upstream", "repo")):
        fail("n0 left its laid-out repository behind after injecting")
    note("n0 announced version 2; shoal status shows the upstream")

    # 3. under-signed: refused at n0, nothing reaches the mesh
    rows_before = {n: len(releases(n)) for n in NAMES}
    ann_before = {n: announces(n) for n in NAMES}
    fails_before = st["failures"]
    bad = write("bad.yar", b"rule bad { condition: true }\n")
    publish(repo, add=[(bad, "rules/bad.yar")], keys=("publisher-1",), drill=True)
    st = wait_for(lambda: (lambda s: s if s and not s["ok"] and
                           "targets: not signed by a threshold" in (s["last_error"] or "") and
                           s["failures"] > fails_before else None)(upstream_status()),
                  "n0 refused the under-signed release", 30)
    if not st["last_error"].startswith("refresh: "):
        fail(f"the error should name the refresh step: {st['last_error']}")
    log = open(os.path.join(WORK, "n0.log")).read()
    if "event=upstream_failed" not in log or "step=refresh" not in log:
        fail("n0's log has no upstream_failed step=refresh line", ["n0"])
    time.sleep(3 * max(PULL_MS, SYNC_MS) / 1000 + 1)
    st = upstream_status()
    if st["injections"] != 2 or st["last_injected_version"] != 2 or st["ok"]:
        fail(f"n0 injected something after the under-signed release: {st}")
    for n in NAMES:
        if len(releases(n)) != rows_before[n]:
            fail(f"{n} saw a new announce after the under-signed release: {releases(n)}", [n])
    for n in NAMES:
        if announces(n) != ann_before[n]:
            fail(f"{n} holds a new announce record after the under-signed release", [n])
    note(f"under-signed release refused at n0 ({st['failures']} failed pulls), nothing announced")

    # 4. the next good release
    extra = write("extra.txt", b"next good release\n")
    publish(repo, add=[(extra, "iocs/extra.txt")], remove=["rules/bad.yar"])
    wait_all_verified(4)
    check_installed(4, {"rules/base.yar": base, "iocs/sha256.txt": iocs,
                        "iocs/extra.txt": extra}, absent=["rules/bad.yar"])
    st = upstream_status()
    if not (st["ok"] and st["last_injected_version"] == 4 and st["injections"] == 3):
        fail(f"n0 upstream status after the good release: {st}")
    if len(os.listdir(os.path.join(WORK, "n0", "upstream", "targets"))) != 3:
        fail("n0's target cache should hold exactly the 3 current targets: "
             f"{os.listdir(os.path.join(WORK, 'n0', 'upstream', 'targets'))}")

    # 5. restart: the same version is not announced again
    rows_before = {n: len(releases(n)) for n in NAMES}
    ann_before = {n: announces(n) for n in NAMES}
    if ann_before["n0"] != 3:
        fail(f"n0's store holds {ann_before['n0']} announce records, want 3 (versions 1, 2, 4)")
    stop("n0")
    start("n0", upstream=url)
    wait_for(lambda: (lambda s: s if s and s["ok"] and s["attempts"] >= 3 else None)(
        upstream_status()), "n0 pulled 3 times after its restart", 30)
    time.sleep(2 * SYNC_MS / 1000)
    st = upstream_status()
    if st["injections"] != 0 or st["last_injected_version"] != 4:
        fail(f"n0 re-injected after a restart, or forgot what it injected: {st}")
    for n in NAMES:
        if len(releases(n)) != rows_before[n]:
            fail(f"{n} saw a new announce after n0 restarted: {releases(n)}", [n])
        if announces(n) != ann_before[n]:
            fail(f"{n} holds a new announce record after n0 restarted", [n])
    note("after a restart n0 announced nothing again (last injected version 4 remembered)")

    # 6. prompt shutdown while a pull hangs on a silent server
    stop("n0")
    blackhole = Blackhole()
    start("n0", upstream=f"http://127.0.0.1:{blackhole.port}")
    wait_for(lambda: blackhole.conns, "n0's pull connected to the silent server", 15)
    time.sleep(1.5)  # well into the transfer's wait for an answer
    took = stop("n0", within=20)
    if took > 6:
        fail(f"n0 took {took:.1f} s to stop while a pull hung (the fetch was not cancelled)")
    note(f"n0 stopped {took:.1f} s after SIGTERM with a pull hanging on a silent server")

    # 7. clean exits, no errors
    for n in NAMES:
        stop(n)
    bad_lines = LAB.log_errors(NAMES)
    if bad_lines:
        fail(f"agent logs have errors: {bad_lines[:3]}")
    note("all agents exited 0; no error lines")


if __name__ == "__main__":
    try:
        main()
    finally:
        if server and server.poll() is None:
            server.kill()
            server.wait()
        if blackhole:
            blackhole.close()
        LAB.cleanup()
