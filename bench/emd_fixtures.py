#!/usr/bin/env python3
"""Golden values for mouton-emd from POT and scipy.

Writes crates/emd/tests/fixtures/pot_scipy.json, read by crates/emd/tests/parity.rs.
Inputs are rounded to 6 decimals so the JSON stays small and both sides parse the same f64.

    pip install numpy scipy POT
    python3 bench/emd_fixtures.py
"""
import json
import os

import numpy as np
import ot
import scipy
from scipy.stats import wasserstein_distance

rng = np.random.default_rng(20261122)
r6 = lambda a: [round(float(x), 6) for x in np.ravel(a)]


def hist(n, zeros=False):
    h = np.round(rng.random(n) + 0.05, 6)
    if zeros and n > 2:
        h[rng.choice(n, size=max(1, n // 4), replace=False)] = 0.0
    return h


emd_cases = []
for k in range(24):
    n, m = int(rng.integers(1, 16)), int(rng.integers(1, 16))
    a, b = hist(n, zeros=k % 3 == 0), hist(m, zeros=k % 4 == 0)
    if a.sum() == 0:
        a[0] = 1.0
    if b.sum() == 0:
        b[0] = 1.0
    kind = ["uniform", "sqeuclidean", "integer"][k % 3]
    if kind == "uniform":
        M = np.round(rng.random((n, m)) * 10, 6)
    elif kind == "sqeuclidean":
        x, y = rng.random((n, 2)), rng.random((m, 2))
        M = np.round(ot.dist(x, y), 6)
    else:  # many ties: degenerate pivots
        M = rng.integers(0, 4, size=(n, m)).astype(float)
    # Both sides normalize a and b to 1 (POT requires equal totals).
    an, bn = a / a.sum(), b / b.sum()
    cost = float(ot.emd2(an, bn, M, numItermax=10_000_000))
    emd_cases.append(dict(kind=kind, a=r6(a), b=r6(b), cost_matrix=r6(M), n=n, m=m, expected=cost))

w1d_cases = []
for k in range(24):
    n, m = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    u, v = np.round(rng.normal(size=n) * 3, 6), np.round(rng.normal(size=m) * 2 + 1, 6)
    uw = hist(n) if k % 2 == 0 else None
    vw = hist(m) if k % 3 == 0 else None
    p = [1.0, 1.5, 2.0, 3.0][k % 4]
    # POT assumes weights summing to 1 and returns W_p^p; scipy normalizes by itself.
    nz = lambda w: None if w is None else w / w.sum()
    pot_pow = float(ot.wasserstein_1d(u, v, nz(uw), nz(vw), p=p))
    case = dict(u=r6(u), v=r6(v), u_weights=None if uw is None else r6(uw),
                v_weights=None if vw is None else r6(vw), p=p, pot_w_pow_p=pot_pow)
    if p == 1.0:
        case["scipy_w1"] = float(wasserstein_distance(u, v, uw, vw))
    w1d_cases.append(case)

sinkhorn_cases = []
for k in range(8):
    n, m = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    a, b = np.array(r6(hist(n))), np.array(r6(hist(m)))
    M = np.round(rng.random((n, m)), 6)
    eps = [0.05, 0.5][k % 2]
    P = ot.sinkhorn(a / a.sum(), b / b.sum(), M, eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-14)
    sinkhorn_cases.append(dict(a=r6(a), b=r6(b), cost_matrix=r6(M), n=n, m=m, epsilon=eps,
                               expected_cost=float((P * M).sum()), expected_plan=[float(x) for x in P.ravel()]))

out = dict(
    generator="bench/emd_fixtures.py",
    versions=dict(pot=ot.__version__, scipy=scipy.__version__, numpy=np.__version__),
    emd2=emd_cases,
    wasserstein_1d=w1d_cases,
    sinkhorn=sinkhorn_cases,
)
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "crates", "emd", "tests", "fixtures", "pot_scipy.json")
with open(path, "w") as f:
    json.dump(out, f, indent=0)
print(f"wrote {os.path.normpath(path)}: {len(emd_cases)} emd2, {len(w1d_cases)} wasserstein_1d, "
      f"{len(sinkhorn_cases)} sinkhorn cases")
