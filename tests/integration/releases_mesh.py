#!/usr/bin/env python3
"""releases_mesh — releases spreading peer to peer between 20 real agents.

Every agent is a real `shoal agent` process on 127.0.0.1 with its own data
dir; the publisher uses `shoal release`. Steps, each bounded in time:

  1. 20 agents converge; n19 is then SIGKILLed (it will miss the release).
  2. A 24 MiB target is added, signed by 2 of 3 publisher keys and
     published at n0. n16..n18 are SIGKILLed while they download it (each
     as soon as its partial blob file appears). Every other live agent
     verifies and installs it; the installed bytes equal the file.
  3. n16..n19 restart: all four reach `verified`; n19 learns the announce
     by anti-entropy alone (its log says source=sync for it).
  4. A release signed by 1 of the 2 needed keys (published with
     --allow-under-threshold) is rejected by every agent, with a reason.
  5. A replayed older repository (a copy taken after step 2) is rejected
     by every agent as a rollback.
  6. Tampered chunks: every agent but n0 and n1 stops; n1's blob file of
     the big target is overwritten in the middle; n0 stops. A new agent n20
     joins through n1, learns the release, fetches from n1 (the only
     holder up), finds the bytes wrong, excludes n1; once n0 is back it
     fetches from n0 and verifies. Its counters show the failed blob.
  7. Every agent exits 0 on SIGTERM; no log has a level=error line.

Only PIDs started here are signalled. SHOAL_TEST_KEEP=1 keeps the temp dir.
"""
import hashlib, os, shutil, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Lab  # noqa: E402

N = 20
BIG_MB = 24
LAB = Lab("releases_mesh", "shoal-relmesh.")
WORK = LAB.work
note, fail, run, ask, kill, stop, releases = (LAB.note, LAB.fail, LAB.run, LAB.ask, LAB.kill,
                                              LAB.stop, LAB.releases)


def start(name, join=None):
    LAB.start(name, join, extra=("--sync-interval-ms", "2000"))


def wait_all(names, pred, what, timeout):
    t0 = time.monotonic()
    pending = set(names)
    while pending and time.monotonic() - t0 < timeout:
        for n in sorted(pending):
            rel = releases(n)
            if rel is not None and pred(rel):
                pending.discard(n)
        time.sleep(0.2)
    if pending:
        sample = sorted(pending)[0]
        fail(f"{what}: {len(pending)} agents never got there ({', '.join(sorted(pending))}); "
             f"{sample} shows {releases(sample)}", [sample])
    note(f"{what}: all {len(names)} agents after {time.monotonic() - t0:.1f} s")


def has_state(version, state, reason_part=None):
    def pred(rel):
        for r in rel:
            if r["version"] == version and r["state"] == state and (
                    reason_part is None or reason_part in r["reason"]):
                return True
        return False
    return pred


converge = LAB.converge


def main():
    names = [f"n{i}" for i in range(N + 1)]  # n20 joins in step 6
    LAB.assign_ports(names)
    repo = os.path.join(WORK, "repo")
    run("fleet", "create", "--out", "fleet")
    run("release", "init", "--repo", repo)
    root = os.path.join(repo, "metadata", "1.root.json")
    for n in names:
        run("init", "--data", n, "--fleet", "fleet", "--name", n, "--root", root)

    # 1. the mesh
    for i, n in enumerate(names[:N]):
        start(n, None if i == 0 else "n0")
    converge(names[:N], N)
    kill("n19")

    # 2. a big release, 3 agents killed mid-transfer
    big = os.path.join(WORK, "bundle.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(BIG_MB << 20))
    want_sha = hashlib.sha256(open(big, "rb").read()).hexdigest()
    run("release", "add", "--repo", repo, big, "--name", "rules/bundle.bin")
    for k in ("publisher-1", "publisher-2"):
        run("release", "sign", "--repo", repo, "--key", os.path.join(repo, "keys", f"{k}.key"))
    run("release", "publish", "--repo", repo, "--data", "n0")
    victims, mid = ["n16", "n17", "n18"], 0
    t0 = time.monotonic()
    while victims and time.monotonic() - t0 < 60:
        for v in list(victims):
            part = os.path.join(WORK, v, "blobs", "partial")
            if os.path.isdir(part) and any(e.endswith(".part") for e in os.listdir(part)):
                kill(v)
                mid += 1
                victims.remove(v)
        time.sleep(0.01)
    for v in victims:  # finished before a partial file was seen
        kill(v)
    note(f"killed n16..n18, {mid} of them with a partial download on disk")
    if mid == 0:
        fail("no victim was caught mid-transfer (the test could not show resumption)")
    version = None
    live = [n for n in names[:N] if n not in ("n16", "n17", "n18", "n19")]
    wait_all(live, lambda rel: any(r["state"] == "verified" and r["targets"] and
                                   r["targets"][0]["name"] == "rules/bundle.bin" for r in rel),
             "release with the big target verified", 180)
    version = next(r["version"] for r in releases("n0") if r["state"] == "verified" and
                   r["targets"] and r["targets"][0]["name"] == "rules/bundle.bin")
    for n in live:
        path = os.path.join(WORK, n, "releases", str(version), "rules%2Fbundle.bin")
        got = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if got != want_sha:
            fail(f"{n}: installed target differs from the published file")
    note(f"version {version}: installed bytes equal the published file at {len(live)} agents")
    old_repo = os.path.join(WORK, "repo-old")
    shutil.copytree(repo, old_repo, symlinks=True)

    # 3. restarts: resume and anti-entropy
    for n in ("n16", "n17", "n18", "n19"):
        start(n)
    wait_all(["n16", "n17", "n18", "n19"], has_state(version, "verified"),
             "restarted agents verified", 120)
    lines = open(os.path.join(WORK, "n19.log")).read().splitlines()
    ann = [l for l in lines if "event=record_new kind=announce" in l]
    if not ann or any("source=push" in l for l in ann) or not all("source=sync" in l for l in ann):
        fail("n19 should have learned the announce by sync only: " + " | ".join(ann), ["n19"])
    note("n19 learned the announce by anti-entropy alone")
    all20 = names[:N]

    # 4. under-signed
    small = os.path.join(WORK, "small.txt")
    with open(small, "w") as f:
        f.write("one publisher only\n")
    run("release", "add", "--repo", repo, small)
    run("release", "sign", "--repo", repo, "--key", os.path.join(repo, "keys", "publisher-3.key"))
    run("release", "publish", "--repo", repo, "--data", "n3", "--allow-under-threshold")
    wait_all(all20, has_state(version + 1, "rejected", "threshold"),
             "under-signed release rejected (threshold)", 90)

    # 5. replayed older repository
    n5_id = ask("n5", {"cmd": "status"})["id"]
    r = ask("n5", {"cmd": "publish", "repo": old_repo})
    if not r or "error" in r:
        fail(f"publishing the old copy at n5: {r}")

    def replay_rejected(rel):
        return any(x["state"] == "rejected" and x["announced_by"] == n5_id and
                   "older than the trusted" in x["reason"] for x in rel)
    wait_all(all20, replay_rejected, "replayed older release rejected (older than trusted)", 90)

    # 6. tampered chunks
    for n in all20:
        if n not in ("n0", "n1"):
            stop(n)
    blob = os.path.join(WORK, "n1", "blobs", want_sha)
    with open(blob, "r+b") as f:
        f.seek((BIG_MB << 20) // 2)
        f.write(b"\xff" * 4096)
    stop("n0")
    start("n20", join="n1")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60:
        st = ask("n20", {"cmd": "status"})
        if st and st["replication"]["blobs_failed_verification"] >= 1:
            break
        time.sleep(0.3)
    else:
        fail("n20 never detected the tampered blob served by n1", ["n20", "n1"])
    note("n20 detected n1's tampered chunks")
    start("n0")
    wait_all(["n20"], has_state(version, "verified"), "n20 verified via n0", 120)
    path = os.path.join(WORK, "n20", "releases", str(version), "rules%2Fbundle.bin")
    if hashlib.sha256(open(path, "rb").read()).hexdigest() != want_sha:
        fail("n20 installed wrong bytes")

    # 7. clean exits, no errors
    for n in ("n0", "n1", "n20"):
        stop(n)
    bad = LAB.log_errors(names)
    if bad:
        fail(f"agent logs have errors: {bad[:3]}")
    note("all agents exited 0; no error lines")


if __name__ == "__main__":
    try:
        main()
    finally:
        LAB.cleanup()
