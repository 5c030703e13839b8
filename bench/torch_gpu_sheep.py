#!/usr/bin/env python3
"""mouton on CUDA vs PyTorch eager on the same GPU: training throughput, side by side.

Reads the step records of mouton runs (metrics.jsonl, written by `mouton train --device cuda`)
and times the same training steps in PyTorch eager on the GPU (the networks of
bench/torch_vs_mouton.py): sheep1 (batch 32, BCE, one D and one G update per step) and sheep2
(batch 64, WGAN-GP with double backward, n_critic 2). Real images are made on the host and
copied each step, as mouton does. Prints images/s, the ratio (> 1: mouton faster) and the
time of one epoch of 126,121 images (the full sheep set) from the median step time.
Usage: python3 bench/torch_gpu_sheep.py --sheep1 RUN_DIR --sheep2 RUN_DIR [--steps 200]
  [--sheep1-tf32 DIR] [--sheep2-tf32 DIR]            mouton --tf32 runs (vs PyTorch's defaults)
  [--sheep1-cudnn DIR] [--sheep2-cudnn DIR]          mouton --cudnn runs (FP32)
  [--sheep1-cudnn-tf32 DIR] [--sheep2-cudnn-tf32 DIR]
  [--sheep1-batches 512,2048]                        PyTorch's sheep1 at larger batches too
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_vs_mouton import Critic, Generator  # noqa: E402

FULL_SET = 126_121


def mouton_images_per_s(run_dir, skip=20):
    recs = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    steps = [r["images_per_s"] for r in recs if r.get("kind") == "step"][skip:]
    return statistics.median(steps), len(steps)


def gp_loss(d, real, fake, lam=10.0):
    e = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    xh = (e * real + (1 - e) * fake).requires_grad_()
    g, = torch.autograd.grad(d(xh).sum(), xh, create_graph=True)
    pen = lam * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return d(fake).mean() - d(real).mean() + pen


def timed(step, steps, images_per_step):
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    ts = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return images_per_step / statistics.median(ts)


def torch_side(steps, batches=()):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    g, d = Generator().to(dev), Critic().to(dev)
    d.train()
    bce = nn.BCEWithLogitsLoss()
    og = torch.optim.Adam(g.parameters(), lr=1e-4, eps=1e-7)
    od = torch.optim.Adam(d.parameters(), lr=1e-4, eps=1e-7)

    def sheep1_step(b=32):
        real = torch.rand(b, 1, 28, 28).to(dev)
        od.zero_grad()
        with torch.no_grad():
            f = g(torch.randn(b, 128, device=dev))
        s = torch.cat([d(real), d(f)])
        bce(s, torch.cat([torch.ones(b, device=dev), torch.zeros(b, device=dev)])).backward()
        od.step()
        og.zero_grad()
        bce(d(g(torch.randn(b, 128, device=dev))), torch.ones(b, device=dev)).backward()
        og.step()

    out = {"sheep1": timed(sheep1_step, steps, 32)}
    for b in batches:
        out[f"sheep1 batch {b}"] = timed(lambda: sheep1_step(b), max(20, steps // 8), b)
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.9))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.9))

    def sheep2_step(b=64, n_critic=2):
        for _ in range(n_critic):
            real = torch.rand(b, 1, 28, 28).to(dev)
            with torch.no_grad():
                f = g(torch.randn(b, 128, device=dev))
            od.zero_grad()
            gp_loss(d, real, f).backward()
            od.step()
        og.zero_grad()
        (-d(g(torch.randn(b, 128, device=dev))).mean()).backward()
        og.step()

    out["sheep2"] = timed(sheep2_step, steps, 128)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sheep1", help="a mouton run (FP32, mouton's kernels)")
    ap.add_argument("--sheep2")
    ap.add_argument("--sheep1-tf32", help="a mouton run with --tf32, compared to PyTorch's defaults")
    ap.add_argument("--sheep2-tf32")
    ap.add_argument("--sheep1-cudnn", help="a mouton run with --cudnn (FP32)")
    ap.add_argument("--sheep2-cudnn")
    ap.add_argument("--sheep1-cudnn-tf32", help="a mouton run with --cudnn --tf32")
    ap.add_argument("--sheep2-cudnn-tf32")
    ap.add_argument("--sheep1-batches", default="",
                    help="also time PyTorch's sheep1 at these batch sizes (comma-separated)")
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()
    batches = [int(b) for b in a.sheep1_batches.split(",") if b]
    name = torch.cuda.get_device_name(0)
    default_tf32 = torch.backends.cudnn.allow_tf32
    print(f"GPU: {name}; torch {torch.__version__}; defaults: cuDNN TF32 convs "
          f"{default_tf32}, TF32 matmul {torch.backends.cuda.matmul.allow_tf32}")
    # PyTorch's defaults (TF32 tensor cores in its convolutions), then full FP32 as mouton runs.
    for label, tf32 in (("PyTorch eager (defaults)", default_tf32), ("PyTorch eager FP32", False)):
        torch.backends.cudnn.allow_tf32 = tf32
        t = torch_side(a.steps, batches)
        for b in batches:
            v = t[f"sheep1 batch {b}"]
            print(f"{label}, sheep1 at batch {b}: {v:,.0f} images/s; 10 epochs of "
                  f"{FULL_SET:,} images: {10 * FULL_SET / v:.0f} s")
        runs = [("sheep1", a.sheep1), ("sheep2", a.sheep2),
                ("sheep1 --cudnn", a.sheep1_cudnn), ("sheep2 --cudnn", a.sheep2_cudnn)]
        if tf32:
            runs += [("sheep1 --tf32", a.sheep1_tf32), ("sheep2 --tf32", a.sheep2_tf32),
                     ("sheep1 --cudnn --tf32", a.sheep1_cudnn_tf32),
                     ("sheep2 --cudnn --tf32", a.sheep2_cudnn_tf32)]
        runs = [(k, r) for k, r in runs if r]
        for key, run in runs:
            m, n = mouton_images_per_s(run)
            base = t[key.split()[0]]
            print(f"{key}: mouton {m:,.0f} images/s (median of {n} steps), {label} "
                  f"{base:,.0f} images/s, ratio {m / base:.2f}x; one epoch of {FULL_SET:,} "
                  f"images: mouton {FULL_SET / m:.1f} s, PyTorch {FULL_SET / base:.1f} s")


if __name__ == "__main__":
    main()
