#!/usr/bin/env python3
"""Rasterization speed and accuracy: `mouton data rasterize` against Google's own recipe
(Python + cairo, quickdraw-dataset's vector_to_raster settings) on the same input, in one run.

    apt-get install libcairo2 && pip install numpy cairocffi
    cargo build --release -p mouton
    python3 bench/raster_vs_cairo.py [--n 126121] [--repeats 3]

The input is a simplified-ndjson file the size of Google's full sheep set (126,121 drawings),
built by repeating the real drawings of ../shared/quickdraw/simplified_ndjson_first25 (all 344
categories). Times are wall clock, parse and output included; mouton's is the best of --repeats
process runs (2 cores), cairo's a single run (one core, as the recipe is written). The script
then compares every mouton image with cairo's, which is byte-exact Google (PROVENANCE.md §5).
"""
import argparse
import glob
import json
import os
import subprocess
import time

import cairocffi as cairo
import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "bench", "out", "raster")


def google_raster(drawings, side=28, line_diameter=16, padding=16):
    """Google's numpy_bitmap recipe: cairo ARGB32, ANTIALIAS_BEST, round caps and joins,
    pen 16 and padding 16 in the 256-space, centred by (256 - max) / 2, white on black."""
    surface = cairo.ImageSurface(cairo.FORMAT_ARGB32, side, side)
    ctx = cairo.Context(surface)
    ctx.set_antialias(cairo.ANTIALIAS_BEST)
    ctx.set_line_cap(cairo.LINE_CAP_ROUND)
    ctx.set_line_join(cairo.LINE_JOIN_ROUND)
    ctx.set_line_width(line_diameter)
    total_padding = padding * 2.0 + line_diameter
    scale = side / (256.0 + total_padding)
    ctx.scale(scale, scale)
    ctx.translate(total_padding / 2.0, total_padding / 2.0)
    out = np.empty((len(drawings), side * side), dtype=np.uint8)
    for k, strokes in enumerate(drawings):
        ctx.set_source_rgb(0, 0, 0)
        ctx.paint()
        pts = np.hstack([np.asarray(s, dtype=float) for s in strokes])
        offset = (256.0 - pts.max(axis=1)) / 2.0
        ctx.set_source_rgb(1, 1, 1)
        for xs, ys in strokes:
            ctx.move_to(xs[0] + offset[0], ys[0] + offset[1])
            for x, y in zip(xs, ys):
                ctx.line_to(x + offset[0], y + offset[1])
            ctx.stroke()
        surface.flush()
        out[k] = np.frombuffer(surface.get_data(), dtype=np.uint8)[::4]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=126_121)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    src = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "quickdraw", "simplified_ndjson_first25", "*.ndjson")))
    lines = [l for f in src for l in open(f, encoding="utf-8").read().splitlines() if l.strip()]
    data = os.path.join(OUT, f"repeated_{args.n}.ndjson")
    with open(data, "w", encoding="utf-8") as f:
        for i in range(args.n):
            f.write(lines[i % len(lines)] + "\n")
    size_mb = os.path.getsize(data) / 1e6

    exe = os.path.join(ROOT, "target", "release", "mouton")
    if not os.path.exists(exe):
        raise SystemExit("build it first: cargo build --release -p mouton")
    npy = os.path.join(OUT, "mouton.npy")
    best = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        subprocess.run([exe, "data", "rasterize", data, "-o", npy], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)

    t = time.perf_counter()
    with open(data, encoding="utf-8") as f:
        drawings = [json.loads(l)["drawing"] for l in f]
    ref = google_raster(drawings)
    cairo_time = time.perf_counter() - t

    ours = np.load(npy)
    diff = np.abs(ours.astype(int) - ref.astype(int))
    distinct = len(lines)
    print(f"input: {args.n} drawings ({distinct} distinct real drawings of {len(src)} categories, repeated), {size_mb:.1f} MB")
    print(f"mouton data rasterize (release, {os.cpu_count()} cores, parse + render + write .npy): best of {args.repeats}: {best:.3f} s")
    print(f"Google's recipe, Python json + cairocffi {cairo.version} / cairo {cairo.cairo_version_string()} (1 core): {cairo_time:.2f} s")
    print(f"speed-up: {cairo_time / best:.1f}x")
    print(f"accuracy over all {args.n} images vs cairo: mean abs error {diff.mean():.4f} grey levels, "
          f"{100 * (diff <= 16).mean():.3f} % of pixels within +-16, max {diff.max()}, "
          f"{(diff.reshape(len(diff), -1).sum(axis=1) == 0).mean() * 100:.1f} % of images identical")


if __name__ == "__main__":
    main()
