#!/usr/bin/env python3
"""bench/pool_detection.py N FILE... — pools the detection times of several
bench/membership.sh JSON files for one N: every kill's "all others see it
failed" time, for the runs where both serf and shoal have kills. Prints each
run's medians, then the pooled medians, their ratio (shoal/serf), a two-sided
Mann-Whitney p (normal approximation, ties averaged) and a bootstrap 95%
interval of the ratio of medians (4,000 resamples, seed 1)."""
import json
import math
import random
import statistics as st
import sys


def kills(path, n, system):
    r = json.load(open(path))["results"].get(str(n), {}).get(system)
    if not isinstance(r, dict):  # a run that failed to start is a message
        return []
    return [k["all_s"] for k in r.get("detections", []) if k.get("all_s") is not None]


def mann_whitney_p(a, b):
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    vals = [v for v, _ in pooled]
    ranks = [0.0] * len(vals)
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[i]:
            j += 1
        for t in range(i, j + 1):
            ranks[t] = (i + j) / 2 + 1
        i = j + 1
    r_a = sum(ranks[t] for t, (_, g) in enumerate(pooled) if g == 0)
    n1, n2 = len(a), len(b)
    u = r_a - n1 * (n1 + 1) / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return math.erfc(abs((u - n1 * n2 / 2) / sd) / math.sqrt(2))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n = int(sys.argv[1])
    serf, shoal = [], []
    for path in sys.argv[2:]:
        s, h = kills(path, n, "serf"), kills(path, n, "shoal")
        if s and h:
            print(f"{path}: {len(s)} kills, serf {st.median(s):.3f} s, shoal {st.median(h):.3f} s")
            serf += s
            shoal += h
        else:
            print(f"{path}: not paired at N={n}, left out")
    if not serf:
        sys.exit("no paired runs")
    rng = random.Random(1)
    boot = sorted(st.median(rng.choices(shoal, k=len(shoal))) /
                  st.median(rng.choices(serf, k=len(serf))) for _ in range(4000))
    print(f"N={n} pooled: {len(serf)} kills each, serf {st.median(serf):.3f} s, "
          f"shoal {st.median(shoal):.3f} s, ratio {st.median(shoal) / st.median(serf):.3f}, "
          f"Mann-Whitney p = {mann_whitney_p(shoal, serf):.2f}, "
          f"95% interval {boot[100]:.2f}-{boot[3899]:.2f}")


if __name__ == "__main__":
    main()
