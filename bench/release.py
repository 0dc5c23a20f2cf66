#!/usr/bin/env python3
"""Release distribution: shoal peer to peer vs one HTTP server, on 127.0.0.1.

Run through bench/release.sh. N (BENCH_N, 20) shoal agents on 127.0.0.1
converge; a python3 -m http.server on 127.0.0.1 serves a directory. Then T
trials (BENCH_TRIALS, 3), each with a new random file of BENCH_SIZE_MB MiB
(10), in turn:

  shoal  the file becomes the only target of a new release (`shoal release
         remove` of the previous one, `add`, `sign` by 2 of 3 publisher
         keys), then `shoal release publish --data n0`. Every agent learns the
         announce, fetches the TUF metadata and the target from peers in
         60 KiB chunks over TLS streams, checks it, installs it into
         DATA/releases/V/ and logs `event=release_verified version=V`.
         Time = the last agent's release_verified ts - time.time() right
         before exec of `shoal release publish` (also reported from the
         publisher's `release_published` ts, i.e. once the announce record
         was appended). Afterwards every agent's control socket must list V
         as verified and every installed file must hash to the source's
         SHA-256 (checked outside the timing).
  http   N `curl -s -o nodeI/FILE URL` processes started at once against the
         HTTP server holding the same file; time = time.time() before the
         first spawn until the last curl exited (sizes and SHA-256 checked
         afterwards).

Bytes received per node (P2P): tcpdump -i lo of the agents' ports (UDP and
TCP, both directions) during each trial; each packet is charged to the node
that received it: its destination port is an agent's listening port, or a
client port which the LD_PRELOAD shim bench/connlog.c recorded at
connect() together with the process id (so the agent). Reported per node:
TCP payload (TLS records as sent: stream frames, TLS framing, handshakes,
sync sessions, membership push-pulls) + UDP payload, divided by the file
size; also IP bytes (with headers). The same capture gives each node's
uploaded bytes, the connections per node and each transfer's start, end
and peer, which is how the time is broken down.

Results: a table on stdout and every figure in JSON (BENCH_OUT).
"""

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relbench as rb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def build_shim(work):
    so = os.path.join(work, "connlog.so")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", so, os.path.join(HERE, "connlog.c"),
                    "-ldl"], check=True, capture_output=True, timeout=60)
    return so


class ConnLog:
    """port -> [(t, pid, remote_port)] from the shim's lines."""

    def __init__(self, path):
        self.path = path
        self.by_port = {}
        self.lines = []

    def load(self):
        self.by_port = {}
        self.lines = []
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            for line in f:
                p = line.split()
                if len(p) != 4:
                    continue
                t, pid, lport, rport = float(p[0]), int(p[1]), int(p[2]), int(p[3])
                self.by_port.setdefault(lport, []).append((t, pid, rport))
                self.lines.append((t, pid, lport, rport))

    def owner(self, port, t, slack=0.5):
        best = None
        for (tc, pid, _r) in self.by_port.get(port, ()):
            if tc <= t + slack and (best is None or tc > best[0]):
                best = (tc, pid)
        return best[1] if best else None


def analyse_pcap(pcap, mesh, connlog, t_from, t_to, size):
    """Per-node received/sent bytes and the connections of one trial."""
    n = mesh.n
    listen = {mesh.port(i): i for i in range(n)}
    pid2node = mesh.pids()
    connlog.load()
    rx = {i: {"tcp": 0, "udp": 0, "ip": 0} for i in range(n)}
    tx = {i: {"tcp": 0, "udp": 0, "ip": 0} for i in range(n)}
    unattributed = {"rx_bytes": 0, "tx_bytes": 0, "packets": 0}
    conns = {}  # (client_port, server_port) -> dict
    pkts = 0
    for (t, proto, sport, dport, ip_len, pay) in rb.pcap_packets(pcap):
        if t < t_from or t > t_to:
            continue
        pkts += 1

        def node_of(port):
            if port in listen:
                return listen[port]
            pid = connlog.owner(port, t)
            return pid2node.get(pid)
        rnode, snode = node_of(dport), node_of(sport)
        if rnode is None:
            unattributed["rx_bytes"] += ip_len
            unattributed["packets"] += 1
        else:
            rx[rnode][proto] += pay
            rx[rnode]["ip"] += ip_len
        if snode is None:
            unattributed["tx_bytes"] += ip_len
        else:
            tx[snode][proto] += pay
            tx[snode]["ip"] += ip_len
        if proto == "tcp":
            if dport in listen and sport not in listen:
                key, to_client = (sport, dport), False
            elif sport in listen and dport not in listen:
                key, to_client = (dport, sport), True
            else:
                continue
            c = conns.get(key)
            if c is None:
                c = conns[key] = {"client": None, "server": listen[key[1]], "first": t,
                                  "last": t, "down": 0, "up": 0, "first_data_down": None,
                                  "last_data_down": None}
            if c["client"] is None:
                c["client"] = node_of(key[0])
            c["last"] = t
            if to_client:
                c["down"] += pay
                if pay and c["first_data_down"] is None:
                    c["first_data_down"] = t
                if pay:
                    c["last_data_down"] = t
            else:
                c["up"] += pay
    per_node = []
    for i in range(n):
        tot = rx[i]["tcp"] + rx[i]["udp"]
        per_node.append({"node": "n%d" % i, "rx_tcp": rx[i]["tcp"], "rx_udp": rx[i]["udp"],
                         "rx_ip": rx[i]["ip"], "rx_ratio": round(tot / size, 4),
                         "rx_ip_ratio": round(rx[i]["ip"] / size, 4),
                         "tx_tcp": tx[i]["tcp"], "tx_ratio": round((tx[i]["tcp"] + tx[i]["udp"])
                                                                   / size, 4)})
    return per_node, unattributed, conns, pkts


def http_round(work, port, server_pid, fname, n, size, want_sha, k):
    outdir = os.path.join(work, "http-clients")
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    url = "http://127.0.0.1:%d/%s" % (port, fname)
    procs = []
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv0 = rb.proc_cpu_s(server_pid)
    t0 = time.time()
    for i in range(n):
        procs.append(rb.spawn(["curl", "-s", "-S", "-o", os.path.join(outdir, "c%d.bin" % i),
                               "-w", "%{time_total} %{size_download} %{http_code}\n", url],
                              os.path.join(outdir, "c%d.w" % i)))
    deadline = time.monotonic() + 300
    for p in procs:
        p.wait(timeout=max(1, deadline - time.monotonic()))
    t1 = time.time()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    srv1 = rb.proc_cpu_s(server_pid)
    cpu = {"server": rb.r3(srv1 - srv0),
           "curls_total": rb.r3(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)}
    per = []
    ok = True
    for i, p in enumerate(procs):
        w = open(os.path.join(outdir, "c%d.w" % i)).read().split()
        path = os.path.join(outdir, "c%d.bin" % i)
        good = (p.returncode == 0 and os.path.getsize(path) == size and len(w) >= 3 and
                w[2] == "200")
        per.append(float(w[0]) if good else None)
        ok = ok and good
    shas_ok = all(sha256_file(os.path.join(outdir, "c%d.bin" % i)) == want_sha
                  for i in range(n)) if ok else False
    return {"trial": k, "all_s": rb.r3(t1 - t0), "ok": ok, "sha_ok": shas_ok, "cpu_s": cpu,
            "curl_time_total_max": rb.r3(max(x for x in per if x is not None)) if ok else None,
            "curl_time_total_median": rb.r3(rb.med([x for x in per if x is not None]))
            if ok else None}


def shoal_trial(args, mesh, ids, connlog, work, k, path, prev, size, want_sha):
    n = mesh.n
    name = "rules/bundle-%d.bin" % k
    mesh.stage_file(path, name, remove=prev)
    pcap = os.path.join(work, "p2p-%d.pcap" % k)
    bpf = "(tcp or udp) and portrange %d-%d" % (mesh.base, mesh.base + n - 1)
    td = rb.Tcpdump(pcap, bpf) if args["bytes"] else None
    mesh.tail.read()
    cpu0 = {i: rb.proc_cpu_s(p.pid) for i, p in mesh.procs.items()}
    t_exec, t_done, _ = mesh.publish(0)
    want = ("event=record_new", "event=release_published", "event=release_verified",
            "event=release_rejected", "event=blob_bad")
    t_pub = version = seq = None
    arrive, verified, problems = {}, {}, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < args["timeout"]:
        for kv in mesh.tail.read(want):
            ev, node = kv.get("event"), kv["_node"]
            if ev == "release_published" and node == 0:
                t_pub, version, seq = kv["_t"], kv.get("targets_version"), kv.get("seq")
            elif ev == "record_new" and kv.get("kind") == "announce" and \
                    kv.get("author") == ids[0]:
                arrive.setdefault((node, kv.get("seq")), kv["_t"])
            elif ev == "release_verified":
                verified.setdefault((node, kv.get("version")), kv["_t"])
            elif ev in ("release_rejected", "blob_bad"):
                problems.append("n%d %s" % (node, ev))
        if version is not None and sum(1 for (nd, v) in verified if v == version) == n:
            break
        time.sleep(0.02)
    cpu1 = {i: rb.proc_cpu_s(p.pid) for i, p in mesh.procs.items()}
    vt = {nd: t for (nd, v), t in verified.items() if v == version}
    at = {nd: t for (nd, s), t in arrive.items() if s == seq}
    t_all = max(vt.values()) if vt else None
    time.sleep(1.5)  # streams close, FINs
    cap = td.stop() if td else None
    tr = {"trial": k, "version": version, "verified_at": len(vt), "problems": problems,
          "cli_s": rb.r3(t_done - t_exec),
          "exec_to_published": rb.r3(t_pub - t_exec) if t_pub else None}
    cpu = {i: cpu1[i] - cpu0[i] for i in cpu0 if cpu0[i] is not None and cpu1.get(i) is not None}
    rcv = sorted(v for i, v in cpu.items() if i != 0)
    tr["cpu_s"] = {"origin": rb.r3(cpu.get(0)), "receiver_median": rb.r3(rb.med(rcv)),
                   "receiver_max": rb.r3(rcv[-1]) if rcv else None,
                   "all_agents": rb.r3(sum(cpu.values()))}
    if len(vt) == n:
        d = sorted(t - t_exec for nd, t in vt.items() if nd != 0)
        tr.update({"exec_to_all": rb.r3(t_all - t_exec),
                   "published_to_all": rb.r3(t_all - t_pub),
                   "exec_to_median": rb.r3(d[len(d) // 2]), "exec_to_first": rb.r3(d[0]),
                   "origin_verified_after_exec": rb.r3(vt[0] - t_exec)})
    # confirmation: every control socket lists V verified; installed bytes are the file
    listed = 0
    for i in range(n):
        rel = mesh.releases(i) or []
        if any(str(r.get("version")) == str(version) and r.get("state") == "verified"
               for r in rel):
            listed += 1
    tr["control_socket_verified"] = listed
    good = 0
    for i in range(n):
        p = os.path.join(mesh.data(i), "releases", str(version), name.replace("/", "%2F"))
        if os.path.exists(p) and sha256_file(p) == want_sha:
            good += 1
    tr["installed_sha_ok"] = good
    if td:
        per_node, unattr, conns, pkts = analyse_pcap(pcap, mesh, connlog, t_exec,
                                                     (t_all or time.time()) + 1.5, size)
        rec = [x for x in per_node if x["node"] != "n0"]
        rx = sorted(x["rx_ratio"] for x in rec)
        tr["bytes"] = {
            "capture": cap, "packets": pkts, "unattributed": unattr,
            "rx_ratio_receivers": {"min": rx[0], "median": rb.med(rx), "max": rx[-1],
                                   "mean": round(sum(rx) / len(rx), 4)},
            "rx_ip_ratio_max": max(x["rx_ip_ratio"] for x in rec),
            "tx_ratio_by_node": {x["node"]: x["tx_ratio"] for x in per_node},
            "per_node": per_node,
        }
        # connections carrying most of the file: who served whom, when
        big = []
        for (cport, sport), c in conns.items():
            if c["down"] >= size // 2:
                big.append({"client": "n%s" % c["client"], "server": "n%d" % c["server"],
                            "start": rb.r3(c["first"] - t_exec),
                            "first_data": rb.r3(c["first_data_down"] - t_exec),
                            "last_data": rb.r3(c["last_data_down"] - t_exec),
                            "end": rb.r3(c["last"] - t_exec), "bytes": c["down"],
                            "mb_per_s": round(c["down"] / max(1e-6, c["last"] - c["first"])
                                              / 1e6, 1)})
        big.sort(key=lambda x: x["start"])
        tr["transfers"] = big
        tr["connections"] = len(conns)
        tr["connections_per_receiver_median"] = rb.med(
            [sum(1 for c in conns.values() if c["client"] == i) for i in range(1, n)])
        # per node: announce arrival -> transfer start -> transfer end -> verified
        steps = []
        for i in range(1, n):
            b = [x for x in big if x["client"] == "n%d" % i]
            if i in at and i in vt and b:
                steps.append({"node": "n%d" % i, "arrive": rb.r3(at[i] - t_exec),
                              "xfer_start": b[0]["start"], "xfer_last_data": b[-1]["last_data"],
                              "xfer_end": b[-1]["end"],
                              "verified": rb.r3(vt[i] - t_exec), "from": b[-1]["server"]})
        tr["steps"] = steps
        if not env_keep():
            os.unlink(pcap)  # ~3 MB per trial; BENCH_KEEP=1 keeps it
    return tr, name


def env_keep():
    return rb.env("BENCH_KEEP", "0") == "1"


def main():
    rb.install_signal_handlers()
    args = {
        "shoal": os.environ["SHOAL_BIN"],
        "n": int(rb.env("BENCH_N", "20")),
        "size_mb": float(rb.env("BENCH_SIZE_MB", "10")),
        "trials": int(rb.env("BENCH_TRIALS", "3")),
        "base": int(rb.env("BENCH_PORT_SHOAL", "20000")),
        "http_port": int(rb.env("BENCH_PORT_HTTP", "20900")),
        "timeout": float(rb.env("BENCH_TIMEOUT_S", "300")),
        "extra": rb.env("BENCH_SHOAL_ARGS", "").split(),
        "bytes": rb.env("BENCH_BYTES", "1") == "1",
        "settle": float(rb.env("BENCH_SETTLE_S", "5")),
    }
    n = args["n"]
    size = int(args["size_mb"] * 1048576)
    out = rb.env("BENCH_OUT", "/tmp/shoal-bench-release-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    if args["bytes"] and not rb.ensure_tcpdump():
        raise SystemExit("bench: tcpdump missing (BENCH_BYTES=0 skips the byte counts)")
    if args["bytes"] and os.getuid() != 0:
        raise SystemExit("bench: tcpdump on lo needs root (BENCH_BYTES=0 skips the byte counts)")
    if not rb.ports_free(args["base"], n) or not rb.ports_free(args["http_port"], 1, udp=False):
        raise SystemExit("bench: ports in use (BENCH_PORT_SHOAL / BENCH_PORT_HTTP)")
    doc = {"machine": rb.machine(), "shoal": rb.shoal_version(args["shoal"]),
           "args": {k: v for k, v in args.items()}, "size_bytes": size,
           "shoal_trials": [], "http_trials": []}
    try:
        work = rb.mkwork("shoal-bench-release.")
        shim = build_shim(work) if args["bytes"] else None
        connlog = ConnLog(os.path.join(work, "connlog.txt"))
        mesh = rb.Mesh(args["shoal"], work, n, args["base"], args["extra"], preload=shim,
                       connlog=connlog.path)
        doc["load_start"] = rb.loadavg()
        mesh.prepare()
        mesh.start_all()
        doc["converge_s"] = rb.r3(mesh.converge())
        ids = {i: mesh.status(i)["id"][:16] for i in range(n)}
        srvdir = os.path.join(work, "http")
        os.makedirs(srvdir)
        http = rb.spawn(["python3", "-m", "http.server", str(args["http_port"]), "--bind",
                         "127.0.0.1", "--directory", srvdir], os.path.join(work, "http.log"))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20:
            if not rb.ports_free(args["http_port"], 1, udp=False):
                break
            time.sleep(0.1)
        doc["http_server"] = "python3 -m http.server (%s), ThreadingHTTPServer" % \
            sys.version.split()[0]
        time.sleep(args["settle"])
        prev = None
        for k in range(args["trials"]):
            path = os.path.join(work, "bundle-%d.bin" % k)
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            want_sha = sha256_file(path)
            os.link(path, os.path.join(srvdir, "bundle-%d.bin" % k))
            load0 = rb.loadavg()
            tr, prev = shoal_trial(args, mesh, ids, connlog, work, k, path, prev, size, want_sha)
            tr["load_before"] = load0
            doc["shoal_trials"].append(tr)
            rb.log("shoal trial %d: all %s s (from publish exec), published->all %s s, "
                   "rx ratio %s, verified %d/%d, sha ok %d" % (
                       k, tr.get("exec_to_all"), tr.get("published_to_all"),
                       tr.get("bytes", {}).get("rx_ratio_receivers"), tr["verified_at"], n,
                       tr["installed_sha_ok"]))
            time.sleep(args["settle"])
            load0 = rb.loadavg()
            hr = http_round(work, args["http_port"], http.pid, "bundle-%d.bin" % k, n, size,
                            want_sha, k)
            hr["load_before"] = load0
            doc["http_trials"].append(hr)
            rb.log("http trial %d: %s" % (k, hr))
            rb.write_json(out, doc)
            time.sleep(args["settle"])
        doc["load_end"] = rb.loadavg()
        errs = []
        for i in range(n):
            with open(mesh.logpath(i)) as f:
                errs += [ln.strip() for ln in f if " level=error " in ln]
        doc["error_lines"] = errs[:10]
        rb.stop(http)
        mesh.stop_all()
        doc["machine"]["date_utc_end"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        report(doc, n, size)
        rb.write_json(out, doc)
    finally:
        rb.cleanup()
    return 0


def report(doc, n, size):
    sh, ht = doc["shoal_trials"], doc["http_trials"]
    p2p = [t["exec_to_all"] for t in sh if t.get("exec_to_all") is not None]
    pub = [t["published_to_all"] for t in sh if t.get("published_to_all") is not None]
    hh = [t["all_s"] for t in ht if t.get("ok")]
    print("\nRelease of %.1f MiB to %d nodes (medians of %d / %d trials)\n" % (
        size / 1048576, n, len(p2p), len(hh)))
    print("| metric | HTTP (1 server, %d curl) | shoal P2P | shoal/HTTP |" % n)
    print("|---|---:|---:|---:|")
    print("| all %d have it (s): HTTP from first curl spawn; shoal from exec of publish | %s | "
          "%s | %s |" % (n, rb.r3(rb.med(hh)), rb.r3(rb.med(p2p)),
                         rb.ratio(rb.med(p2p), rb.med(hh))))
    print("| shoal from release_published (announce appended) (s) | | %s | %s |" % (
        rb.r3(rb.med(pub)), rb.ratio(rb.med(pub), rb.med(hh))))
    rx = [t["bytes"]["rx_ratio_receivers"]["max"] for t in sh if "bytes" in t]
    rxm = [t["bytes"]["rx_ratio_receivers"]["median"] for t in sh if "bytes" in t]
    if rx:
        print("| bytes received per node / release size: max (median) over receivers | | "
              "%s (%s) | goal <= 1.2 |" % (max(rx), rb.med(rxm)))
    print("\nHTTP samples: %s" % hh)
    print("shoal exec->all samples: %s" % p2p)
    print("shoal published->all samples: %s" % pub)
    for t in sh:
        if "bytes" in t:
            up = sorted(t["bytes"]["tx_ratio_by_node"].items(), key=lambda x: -x[1])[:5]
            print("trial %d uploads (x release): %s; unattributed %s; tcpdump %s" % (
                t["trial"], up, t["bytes"]["unattributed"], t["bytes"]["capture"]))
    print("CPU s per trial, shoal agents (all / origin / receiver median): %s" % [
        (t["cpu_s"]["all_agents"], t["cpu_s"]["origin"], t["cpu_s"]["receiver_median"])
        for t in sh])
    print("CPU s per trial, HTTP (server / all curls): %s" % [
        (t["cpu_s"]["server"], t["cpu_s"]["curls_total"]) for t in ht])
    print("load: start %s end %s" % (doc.get("load_start"), doc.get("load_end")), flush=True)


if __name__ == "__main__":
    sys.exit(main())
