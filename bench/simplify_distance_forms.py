"""Which point-to-line distance formula reproduces Google's simplified Quick Draw files.

Google's recipe (align, scale to 255, resample at 1 px, RDP epsilon 2, round) leaves exact ties:
a stroke segment parallel to RDP's chord puts several samples at the same distance, and the
rounding of the distance formula picks the one kept. This script re-derives the simplified
drawings of `../shared/quickdraw/raw_ndjson_head` with several textbook formulas and counts the
drawings identical to `simplified_ndjson_first25`. mouton uses the one named `projection_sq`.

    python3 bench/simplify_distance_forms.py [--shared ../shared/quickdraw]
"""
import argparse
import json
import math
from pathlib import Path

import numpy as np

CATEGORIES = ["sheep", "bear", "cat", "dog", "duck", "fish", "frog", "lion", "monkey",
              "rabbit", "rainbow", "train"]


def cross(p, a, b):
    dx, dy = b[0] - a[0], b[1] - a[1]
    n = math.sqrt(dx * dx + dy * dy)
    if n == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1]), 2.0
    return abs((p[0] - a[0]) * dy - (p[1] - a[1]) * dx) / n, 2.0


def implicit_line(p, a, b):
    dy, dx = b[1] - a[1], b[0] - a[0]
    n = math.hypot(dy, dx)
    if n == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1]), 2.0
    return abs(dy * p[0] - dx * p[1] + b[0] * a[1] - b[1] * a[0]) / n, 2.0


def projection(p, a, b):
    dx, dy = b[0] - a[0], b[1] - a[1]
    px, py = p[0] - a[0], p[1] - a[1]
    l2 = dx * dx + dy * dy
    if l2 == 0:
        return math.hypot(px, py), 2.0
    t = (px * dx + py * dy) / l2
    return math.hypot(px - t * dx, py - t * dy), 2.0


def projection_sq(p, a, b):
    dx, dy = b[0] - a[0], b[1] - a[1]
    px, py = p[0] - a[0], p[1] - a[1]
    l2 = dx * dx + dy * dy
    if l2 == 0:
        return px * px + py * py, 4.0
    t = (px * dx + py * dy) / l2
    ex, ey = px - t * dx, py - t * dy
    return ex * ex + ey * ey, 4.0


FORMS = {"cross": cross, "implicit_line": implicit_line, "projection": projection,
         "projection_sq": projection_sq}


def resample(xs, ys):
    d = np.sqrt(np.diff(xs) ** 2 + np.diff(ys) ** 2)
    cum = np.concatenate([[0.0], np.cumsum(d)])
    t = np.arange(0.0, cum[-1], 1.0) if cum[-1] > 0 else np.array([0.0])
    pts = np.stack([np.interp(t, cum, xs), np.interp(t, cum, ys)], 1)
    last = np.array([xs[-1], ys[-1]])
    if not (pts[-1] == last).all():
        pts = np.concatenate([pts, last[None]])
    return pts


def rdp(pts, dist):
    keep = np.zeros(len(pts), bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        a, b = stack.pop()
        far, dmax, limit = a, 0.0, 4.0
        for i in range(a + 1, b):
            d, limit = dist(pts[i], pts[a], pts[b])
            if d > dmax:
                far, dmax = i, d
        if dmax > limit:
            keep[far] = True
            stack += [(a, far), (far, b)]
    return pts[keep]


def simplify(strokes, dist):
    xs_all = np.concatenate([np.asarray(s[0], float) for s in strokes])
    ys_all = np.concatenate([np.asarray(s[1], float) for s in strokes])
    x0, y0 = xs_all.min(), ys_all.min()
    span = max(xs_all.max() - x0, ys_all.max() - y0)
    scale = 255.0 / span if span > 0 else 1.0
    out = []
    for s in strokes:
        xs = (np.asarray(s[0], float) - x0) * scale
        ys = (np.asarray(s[1], float) - y0) * scale
        r = np.round(rdp(resample(xs, ys), dist)).astype(int)
        if len(r) == 1:
            r = np.concatenate([r, r])
        out.append([r[:, 0].tolist(), r[:, 1].tolist()])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "quickdraw"))
    args = ap.parse_args()
    root = Path(args.shared)
    pairs = []
    for cat in CATEGORIES:
        raw = [json.loads(l) for l in open(root / "raw_ndjson_head" / f"{cat}.ndjson")]
        simp = [json.loads(l) for l in open(root / "simplified_ndjson_first25" / f"{cat}.ndjson")]
        pairs += [(cat, r, s) for r, s in zip(raw, simp)]
    for name, dist in FORMS.items():
        same = sheep = 0
        for cat, r, s in pairs:
            hit = simplify([st[:2] for st in r["drawing"]], dist) == s["drawing"]
            same += hit
            sheep += hit and cat == "sheep"
        print(f"{name:14s} identical: {same}/{len(pairs)} drawings, {sheep}/23 sheep")


if __name__ == "__main__":
    main()
