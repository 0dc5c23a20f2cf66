#!/usr/bin/env python3
"""Record dissemination: shoal feed record vs serf user event, on 127.0.0.1.

Run through bench/records.sh. For each N (default 20 50), one system at a
time (serf, then shoal), N real agents on 127.0.0.1 converge, then T trials
(BENCH_TRIALS, 5), each from a different origin agent:

  serf   `serf event -coalesce=false bench PAYLOAD` at the origin's RPC
         address; every agent runs `-event-handler user:bench=HANDLER`, a
         bash script whose first statement takes $EPOCHREALTIME and which
         then appends "TIME NODE PAYLOAD" to its own file. Time = last
         agent's stamp - time.time() taken right before exec of `serf event`.
  shoal  the record is the announce record `shoal release publish --data
         ORIGIN` appends to the origin's feed (a small target, a new
         version each trial; no other CLI or control command appends a
         record). Every agent logs `event=record_new kind=announce
         author=A seq=S source=push|sync` when the record first reaches its
         store; the origin logs `event=release_published ... seq=S` right
         after it appended and queued the record. Two times are reported:
           append->all   last agent's record_new ts - origin's release_published ts
           exec->all     last agent's record_new ts - time.time() before exec
                         of `shoal release publish` (which also signs the
                         snapshot and timestamp, writes the repository
                         generation, and has the agent read and hash it)
         Between trials the driver waits until every agent verified the
         release (fetched its metadata and target from peers) and then
         BENCH_SETTLE_S, so trials do not overlap.

The bash handler's own start-up (fork/exec of /bin/sh -c HANDLER, bash
start) is part of serf's figure; it is measured separately (median of 20
runs of the same handler, started as serf starts it) and reported.

Results: a table per N on stdout (medians, ratio shoal/serf) and every
sample in JSON (BENCH_OUT).
"""

import base64
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relbench as rb  # noqa: E402

HANDLER = r"""#!/bin/bash
t=$EPOCHREALTIME
read -r p
echo "$t $SERF_SELF_NAME $p" >> "$BENCH_SERF_EVDIR/$SERF_SELF_NAME.ev"
"""


class SerfCluster:
    def __init__(self, binary, work, n, base):
        self.bin = binary
        self.work = work
        self.n = n
        self.base = base
        self.key = base64.b64encode(os.urandom(32)).decode()
        self.evdir = os.path.join(work, "ev")
        os.makedirs(self.evdir)
        self.handler = os.path.join(work, "handler.sh")
        with open(self.handler, "w") as f:
            f.write(HANDLER)
        os.chmod(self.handler, 0o755)
        self.procs = {}

    def rpc(self, i):
        return "127.0.0.1:%d" % (self.base + 500 + i)

    def start_all(self):
        for i in range(self.n):
            argv = [self.bin, "agent", "-node=s%d" % i, "-bind=127.0.0.1:%d" % (self.base + i),
                    "-rpc-addr=%s" % self.rpc(i), "-encrypt=%s" % self.key,
                    "-event-handler=user:bench=%s" % self.handler]
            if i:
                argv.append("-join=127.0.0.1:%d" % self.base)
            self.procs[i] = rb.spawn(argv, os.path.join(self.work, "s%d.log" % i),
                                     extra_env={"BENCH_SERF_EVDIR": self.evdir})
            time.sleep(0.02)

    def members_alive(self, i):
        r = subprocess.run([self.bin, "members", "-rpc-addr=%s" % self.rpc(i), "-format=json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return -1
        return sum(1 for m in json.loads(r.stdout).get("members", [])
                   if m.get("status") == "alive")

    def converge(self, timeout=180):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if all(self.members_alive(i) == self.n for i in range(self.n)):
                return time.monotonic() - t0
            time.sleep(0.5)
        raise RuntimeError("serf: %d agents did not converge within %d s" % (self.n, timeout))

    def arrivals(self, payload):
        got = {}
        for i in range(self.n):
            path = os.path.join(self.evdir, "s%d.ev" % i)
            if not os.path.exists(path):
                continue
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[2] == payload:
                        got[i] = float(parts[0])
        return got

    def trial(self, origin, payload, timeout=20.0):
        argv = [self.bin, "event", "-rpc-addr=%s" % self.rpc(origin), "-coalesce=false",
                "bench", payload]
        t_exec = time.time()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        t_done = time.time()
        if r.returncode != 0:
            raise RuntimeError("serf event exited %d: %s" % (r.returncode, r.stderr.strip()))
        t0 = time.monotonic()
        got = {}
        while time.monotonic() - t0 < timeout:
            got = self.arrivals(payload)
            if len(got) == self.n:
                break
            time.sleep(0.02)
        return t_exec, t_done, got

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(rb.signal.SIGTERM)
        for p in self.procs.values():
            rb.wait_or_kill(p, 10)


def handler_overhead(handler, evdir, runs=20):
    """Latency from fork of `/bin/sh -c HANDLER` (as serf runs it) to the handler's stamp."""
    lat = []
    for k in range(runs):
        payload = "cal%d" % k
        e = dict(os.environ, BENCH_SERF_EVDIR=evdir, SERF_SELF_NAME="cal", SERF_EVENT="user",
                 SERF_USER_EVENT="bench")
        t0 = time.time()
        subprocess.run(["/bin/sh", "-c", handler], input=payload + "\n", text=True, env=e,
                       timeout=10)
        with open(os.path.join(evdir, "cal.ev")) as f:
            for line in f:
                p = line.split()
                if p[2] == payload:
                    lat.append(float(p[0]) - t0)
    return rb.summary(lat)


def arrival_stats(times, t_ref):
    """Given {node: t} and a reference, last/median/first delays."""
    d = sorted(t - t_ref for t in times.values())
    return d[-1], d[len(d) // 2], d[0]


def run_serf(args, n, trials):
    work = rb.mkwork("shoal-bench-records-serf.")
    c = SerfCluster(args["serf"], work, n, args["serf_base"])
    res = {"n": n, "trials": []}
    try:
        res["load_start"] = rb.loadavg()
        c.start_all()
        res["converge_s"] = rb.r3(c.converge())
        time.sleep(args["settle"])
        res["handler_start"] = handler_overhead(c.handler, c.evdir)
        for k in range(trials):
            origin = (k * 7) % n
            payload = "t%d-%s" % (k, os.urandom(4).hex())
            t_exec, t_done, got = c.trial(origin, payload)
            tr = {"origin": "s%d" % origin, "reached": len(got), "cli_s": rb.r3(t_done - t_exec)}
            if len(got) == n:
                last, medn, first = arrival_stats(got, t_exec)
                others = {i: t for i, t in got.items() if i != origin}
                tr.update({"exec_to_last": rb.r3(last), "exec_to_median": rb.r3(medn),
                           "exec_to_first": rb.r3(first),
                           "exec_to_origin": rb.r3(got[origin] - t_exec),
                           "exec_to_last_other": rb.r3(arrival_stats(others, t_exec)[0])})
            res["trials"].append(tr)
            rb.log("serf N=%d trial %d: %s" % (n, k, tr))
            time.sleep(args["settle"])
        res["load_end"] = rb.loadavg()
    finally:
        c.stop_all()
    return res


def run_shoal(args, n, trials):
    work = rb.mkwork("shoal-bench-records-shoal.")
    m = rb.Mesh(args["shoal"], work, n, args["shoal_base"], args["shoal_extra"])
    res = {"n": n, "trials": []}
    try:
        res["load_start"] = rb.loadavg()
        m.prepare()
        m.start_all()
        res["converge_s"] = rb.r3(m.converge())
        ids = {}
        for i in range(n):
            st = m.status(i)
            ids[i] = st["id"][:16]
        time.sleep(args["settle"])
        m.tail.read()  # discard start-up lines
        prev = None
        for k in range(trials):
            origin = (k * 7) % n
            path = os.path.join(work, "rec-%d.txt" % k)
            with open(path, "w") as f:
                f.write("trial %d %s\n" % (k, os.urandom(16).hex()))
            name = "rec/t%d.txt" % k
            m.stage_file(path, name, remove=prev)
            prev = name
            m.tail.read()
            t_exec, t_done, _ = m.publish(origin)
            want = ("event=record_new", "event=release_published", "event=release_verified")
            seq, t_pub, version = None, None, None
            got, src = {}, {}
            verified = {}
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                for kv in m.tail.read(want):
                    ev, node = kv.get("event"), kv["_node"]
                    if ev == "release_published" and node == origin:
                        seq, t_pub = kv.get("seq"), kv["_t"]
                        version = kv.get("targets_version")
                    elif ev == "record_new" and kv.get("kind") == "announce" and \
                            kv.get("author") == ids[origin]:
                        got.setdefault((node, kv.get("seq")), (kv["_t"], kv.get("source")))
                    elif ev == "release_verified":
                        verified.setdefault((node, kv.get("version")), kv["_t"])
                if seq is not None:
                    arr = {nd: v for (nd, s), v in got.items() if s == seq and nd != origin}
                    ver = [nd for (nd, v) in verified if v == version]
                    if len(arr) == n - 1 and len(ver) == n:
                        break
                time.sleep(0.02)
            arr = {nd: v for (nd, s), v in got.items() if s == seq and nd != origin}
            tr = {"origin": "n%d" % origin, "seq": seq, "version": version,
                  "reached": len(arr), "cli_s": rb.r3(t_done - t_exec),
                  "exec_to_published": rb.r3(t_pub - t_exec) if t_pub else None,
                  "verified_at": len([1 for (nd, v) in verified if v == version])}
            if len(arr) == n - 1 and t_pub:
                times = {nd: t for nd, (t, _s) in arr.items()}
                last, medn, first = arrival_stats(times, t_pub)
                tr.update({"append_to_last": rb.r3(last), "append_to_median": rb.r3(medn),
                           "append_to_first": rb.r3(first),
                           "exec_to_last": rb.r3(max(times.values()) - t_exec),
                           "sources": {s: sum(1 for (_t, x) in arr.values() if x == s)
                                       for s in ("push", "sync")}})
                vt = [t for (nd, v), t in verified.items() if v == version and nd != origin]
                if len(vt) == n - 1:
                    tr["append_to_all_verified"] = rb.r3(max(vt) - t_pub)
            res["trials"].append(tr)
            rb.log("shoal N=%d trial %d: %s" % (n, k, tr))
            time.sleep(args["settle"])
        res["load_end"] = rb.loadavg()
        errs = []
        for i in range(n):
            with open(m.logpath(i)) as f:
                errs += [ln.strip() for ln in f if " level=error " in ln]
        res["error_lines"] = errs[:10]
    finally:
        m.stop_all()
    return res


def col(trials, key):
    return [t[key] for t in trials if t.get(key) is not None]


def report(n, serf, shoal):
    s_last = rb.med(col(serf["trials"], "exec_to_last"))
    s_med = rb.med(col(serf["trials"], "exec_to_median"))
    h_app = rb.med(col(shoal["trials"], "append_to_last"))
    h_exec = rb.med(col(shoal["trials"], "exec_to_last"))
    h_med = rb.med(col(shoal["trials"], "append_to_median"))
    hs = serf["handler_start"]["median"] if serf.get("handler_start") else None
    rows = [
        ("every agent has it: serf exec->last vs shoal append->last (s)", s_last, h_app),
        ("every agent has it: exec of the CLI command -> last (s)", s_last, h_exec),
        ("median agent has it: serf exec vs shoal append (s)", s_med, h_med),
        ("serf minus its handler start-up (%.3f s) vs shoal append->last" % (hs or 0),
         (s_last - hs) if (s_last is not None and hs is not None) else None, h_app),
    ]
    print("\nN = %d   (medians of %d / %d trials)\n" % (n, len(serf["trials"]),
                                                       len(shoal["trials"])))
    print("| metric | serf | shoal | shoal/serf |")
    print("|---|---:|---:|---:|")
    for label, a, b in rows:
        print("| %s | %s | %s | %s |" % (label, rb.r3(a), rb.r3(b), rb.ratio(b, a)))
    print("\nserf exec->last samples: %s" % col(serf["trials"], "exec_to_last"))
    print("shoal append->last samples: %s" % col(shoal["trials"], "append_to_last"))
    print("shoal exec->last samples: %s" % col(shoal["trials"], "exec_to_last"))
    print("shoal exec->release_published: %s" % col(shoal["trials"], "exec_to_published"))
    print("shoal append->all verified: %s" % col(shoal["trials"], "append_to_all_verified"))
    print("shoal sources: %s" % [t.get("sources") for t in shoal["trials"]])
    print("load (1-min) serf %s..%s, shoal %s..%s" % (serf.get("load_start"), serf.get("load_end"),
                                                      shoal.get("load_start"),
                                                      shoal.get("load_end")), flush=True)
    return {"serf_exec_to_last": rb.r3(s_last), "shoal_append_to_last": rb.r3(h_app),
            "shoal_exec_to_last": rb.r3(h_exec), "ratio_append": rb.ratio(h_app, s_last),
            "ratio_exec": rb.ratio(h_exec, s_last)}


def main():
    rb.install_signal_handlers()
    ns = [int(x) for x in sys.argv[1:]] or [20, 50]
    args = {
        "shoal": os.environ["SHOAL_BIN"],
        "serf": rb.env("SERF_BIN", "/usr/bin/serf"),
        "serf_base": int(rb.env("BENCH_PORT_SERF", "19000")),
        "shoal_base": int(rb.env("BENCH_PORT_SHOAL", "20000")),
        "settle": float(rb.env("BENCH_SETTLE_S", "3")),
        "shoal_extra": rb.env("BENCH_SHOAL_ARGS", "").split(),
    }
    trials = int(rb.env("BENCH_TRIALS", "5"))
    systems = rb.env("BENCH_SYSTEMS", "serf shoal").split()
    out = rb.env("BENCH_OUT", "/tmp/shoal-bench-records-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    doc = {"machine": rb.machine(), "shoal": rb.shoal_version(args["shoal"]),
           "serf": rb.serf_version(args["serf"]), "trials": trials, "results": {}}
    try:
        for n in ns:
            if not rb.ports_free(args["serf_base"], n) or \
                    not rb.ports_free(args["serf_base"] + 500, n, udp=False) or \
                    not rb.ports_free(args["shoal_base"], n):
                raise RuntimeError("ports in use (BENCH_PORT_SERF / BENCH_PORT_SHOAL)")
            r = {}
            if "serf" in systems:
                rb.log("serf, N=%d" % n)
                r["serf"] = run_serf(args, n, trials)
                rb.cleanup()
            if "shoal" in systems:
                rb.log("shoal, N=%d" % n)
                r["shoal"] = run_shoal(args, n, trials)
                rb.cleanup()
            if "serf" in r and "shoal" in r:
                r["summary"] = report(n, r["serf"], r["shoal"])
            doc["results"][str(n)] = r
            rb.write_json(out, doc)
        doc["machine"]["date_utc_end"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        rb.write_json(out, doc)
    finally:
        rb.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
