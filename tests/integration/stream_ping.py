"""stream_ping.py — see stream_ping.sh. Only PIDs started here are signalled."""
import os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Lab

NAMES = ["n0", "n1", "n2", "deaf"]
WATCH_S = 25      # 25 probe intervals: each other agent probes `deaf` several times
CONTROL_S = 20    # n1 without stream pings probes `deaf` within ~3 s of joining
LAB = Lab("stream_ping", "shoal-stream-ping.")


def counters(name):
    r = LAB.ask(name, {"cmd": "status"})
    if not r or "counters" not in r:
        LAB.fail(f"{name}: no status", [name])
    return r["counters"]


def main():
    LAB.assign_ports(NAMES)
    LAB.run("fleet", "create", "--out", "fleet")
    for n in NAMES:
        LAB.run("init", "--data", n, "--fleet", "fleet", "--name", n)
    LAB.start("n0", wait=True)
    for n in NAMES[1:3]:
        LAB.start(n, join="n0", wait=True)
    # It joins by push-pull (a stream), so it knows everyone at once.
    LAB.start("deaf", join="n0", wait=True, env={"SHOAL_TEST_DROP_UDP": "1"})
    LAB.converge(NAMES, len(NAMES))
    t0 = time.monotonic()
    while time.monotonic() - t0 < WATCH_S:
        for n in NAMES:
            r = LAB.ask(n, {"cmd": "members"})
            if not r:
                LAB.fail(f"{n}: no members reply", [n])
            bad = [m["name"] for m in r["members"] if m["state"] != "alive"]
            if bad:
                LAB.fail(f"{n} holds {bad} not alive after "
                         f"{time.monotonic() - t0:.1f} s", [n, "deaf"])
        time.sleep(0.5)
    deaf = counters("deaf")
    if deaf["udp_test_dropped"] == 0:
        LAB.fail("the deaf agent dropped no datagram: the fault was not injected", ["deaf"])
    rescued = {n: counters(n)["probes_stream_only"] for n in NAMES}
    LAB.note(f"after {WATCH_S} s all 4 see all 4 alive; probes only the stream "
             f"answered: {rescued}; datagrams the deaf agent dropped: "
             f"{deaf['udp_test_dropped']}")
    if sum(rescued[n] for n in NAMES[:3]) == 0:
        LAB.fail("no probe of the deaf agent was answered by its stream", NAMES)
    if rescued["deaf"] == 0:
        LAB.fail("the deaf agent's own probes were never answered by a stream", ["deaf"])
    for n in NAMES:
        if counters(n)["suspects_raised"] != 0:
            LAB.fail(f"{n} raised a suspicion", [n])
    # The control, and the config key: n1 again with stream pings off
    # (memberlist's DisableTcpPings) suspects the deaf agent at its first
    # probe of it (round robin over 3 members: within a few seconds).
    LAB.stop("n1")
    LAB.start("n1", join="n0", wait=True, extra=("--stream-pings", "0"))
    t1 = time.monotonic()
    while counters("n1")["suspects_raised"] == 0:
        if time.monotonic() - t1 > CONTROL_S:
            LAB.fail(f"n1 with --stream-pings 0 raised no suspicion in {CONTROL_S} s",
                     ["n1", "deaf"])
        time.sleep(0.2)
    c1 = counters("n1")
    if c1["stream_pings_sent"] != 0 or c1["probes_stream_only"] != 0:
        LAB.fail(f"n1 with --stream-pings 0 sent stream pings: {c1}", ["n1"])
    LAB.note(f"with --stream-pings 0, n1 suspected the deaf agent after "
             f"{time.monotonic() - t1:.1f} s and sent no stream ping")
    for n in NAMES:
        LAB.stop(n)
    bad = LAB.log_errors(NAMES)
    if bad:
        LAB.fail("error lines in the logs:\n" + "".join(bad[:20]))
    LAB.note("ok")


if __name__ == "__main__":
    try:
        main()
    finally:
        LAB.cleanup()
