#!/usr/bin/env python3
"""Side-by-side timing of mouton-emd against scipy and POT on the same inputs, in one run.

    pip install numpy scipy POT
    python3 bench/emd_vs_python.py [--repeats 5]

Writes the inputs to bench/out/emd/, runs the Rust `timing` example on them (built in release
mode), times the Python references in this process, checks that both sides computed the same
value, and prints a table of best-of-N wall times (N >= 20 for exact OT) and speed-ups (Python time / mouton time).
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
import ot
import scipy
from scipy.stats import wasserstein_distance

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "bench", "out", "emd")


def best_of(reps, f):
    best, value = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        value = f()
        best = min(best, time.perf_counter() - t)
    return best, float(value)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    save = lambda name, a: np.ascontiguousarray(a, dtype="<f8").tofile(os.path.join(OUT, name + ".f64"))

    u, v = rng.normal(size=1_000_000), rng.normal(size=1_000_000) * 1.5 + 0.3
    save("w1d_u", u), save("w1d_v", v)
    P, Q = rng.random(1_000_000), rng.random(1_000_000)
    save("delta_p", P), save("delta_q", Q)
    ots = {}
    for n in (200, 500):
        a, b = rng.random(n) + 0.1, rng.random(n) + 0.1
        a, b = a / a.sum(), b / b.sum()
        M = ot.dist(rng.random((n, 2)), rng.random((n, 2)))
        save(f"ot{n}_a", a), save(f"ot{n}_b", b), save(f"ot{n}_m", M)
        ots[n] = (a, b, M)
    n = 500
    a, b = rng.random(n) + 0.1, rng.random(n) + 0.1
    a, b = a / a.sum(), b / b.sum()
    M = ot.dist(rng.random((n, 2)), rng.random((n, 2)))
    M /= M.max()
    eps = 0.01
    save("sk_a", a), save("sk_b", b), save("sk_m", M), save("sk_eps", np.array([eps]))

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "mouton-emd", "--example", "timing"],
                   cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "examples", "timing")
    res = subprocess.run([exe, OUT, str(args.repeats)], cwd=ROOT, check=True, capture_output=True, text=True)
    rust = {r["case"]: r for r in map(json.loads, res.stdout.splitlines())}

    r = args.repeats
    py = {}
    py["wasserstein_1d_1e6"] = [("scipy wasserstein_distance", best_of(r, lambda: wasserstein_distance(u, v))),
                               ("POT wasserstein_1d", best_of(r, lambda: ot.wasserstein_1d(u, v, p=1)))]
    grid = np.arange(1_000_000, dtype=float)
    py["delta_1e6"] = [
        ("scipy wasserstein_distance on the grid", best_of(r, lambda: wasserstein_distance(grid, grid, P, Q))),
        ("numpy cumsum one-liner", best_of(r, lambda: np.abs(np.cumsum(P / P.sum() - Q / Q.sum()))[:-1].sum())),
    ]
    for n in (200, 500):
        a_, b_, M_ = ots[n]
        py[f"emd2_{n}"] = [("POT emd2 (C++ network simplex)", best_of(max(r, 20), lambda: ot.emd2(a_, b_, M_, numItermax=10_000_000)))]
    sk = lambda method: ot.sinkhorn2(a, b, M, eps, method=method, numItermax=1000, stopThr=0.0)
    py["sinkhorn_500_stabilized"] = [("POT sinkhorn (numpy, plain scaling)", best_of(min(r, 3), lambda: sk("sinkhorn"))),
                                     ("POT sinkhorn_stabilized (numpy)", best_of(min(r, 3), lambda: sk("sinkhorn_stabilized")))]
    py["sinkhorn_500_log"] = [("POT sinkhorn_log (numpy)", best_of(min(r, 3), lambda: sk("sinkhorn_log")))]

    print(f"numpy {np.__version__}, scipy {scipy.__version__}, POT {ot.__version__}; "
          f"best of {r} runs (exact OT: best of {max(r, 20)}; Sinkhorn: best of {min(r, 3)}, 1000 iterations "
          f"each side); {os.cpu_count()} cores\n")
    print(f"| case | mouton | reference | reference time | speed-up | values agree (rel. diff) |")
    print(f"|---|---|---|---|---|---|")
    for case, refs in py.items():
        mt, mv = rust[case]["seconds"], rust[case]["value"]
        for name, (pt, pv) in refs:
            diff = abs(mt and (mv - pv)) / max(abs(pv), 1e-300)
            print(f"| {case} | {mt * 1e3:.2f} ms | {name} | {pt * 1e3:.2f} ms | {pt / mt:.1f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
