#!/usr/bin/env python3
"""mouton vs PyTorch on the CPU, same work, one side-by-side run.

Runs `target/release/examples/bench_steps` (mouton; build it with
`cargo build --release -p mouton-train --example bench_steps`), then the same networks and
steps in PyTorch with the same thread count, and prints times and ratios (> 1: mouton faster):
- FIDLE SHEEP1 generator and discriminator, forward + backward, batch 64;
- one WGAN-GP critic step (batch 64, SHEEP2 critic, Adam; PyTorch uses double backward);
- whole training steps: sheep1 (batch 32, BCE, one D and one G update), sheep2 (batch 64,
  WGAN-GP, n_critic 2) and the VAE preset (batch 64, latent 2), as real images per second.
Usage: python3 bench/torch_vs_mouton.py [--repeats 5] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_vae_dead_units import Vae  # the VAE preset's network, in this folder


def same_pad(x, k, s):
    h = x.shape[-1]
    total = max((-(-h // s) - 1) * s + k - h, 0)
    a = total // 2
    return F.pad(x, (a, total - a, a, total - a))


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(128, 3136)
        self.conv1 = nn.Conv2d(64, 128, 3, padding=1)
        self.conv2 = nn.Conv2d(128, 256, 3, padding=1)
        self.conv3 = nn.Conv2d(256, 1, 5, padding=2)

    def forward(self, z):
        x = self.dense(z).view(-1, 64, 7, 7)
        x = F.relu(self.conv1(F.interpolate(x, scale_factor=2, mode="nearest")))
        x = F.relu(self.conv2(F.interpolate(x, scale_factor=2, mode="nearest")))
        return torch.sigmoid(self.conv3(x))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 64, 4, 2), nn.Conv2d(64, 128, 4, 2),
                                    nn.Conv2d(128, 128, 4, 2)])
        self.drop = nn.Dropout(0.2)
        self.dense = nn.Linear(2048, 1)

    def forward(self, x):
        for c in self.convs:
            x = F.leaky_relu(c(same_pad(x, 4, 2)), 0.2)
        return self.dense(self.drop(x.flatten(1))).flatten()


def median_time(f, repeats):
    f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def gp_loss(d, real, fake, lam=10.0):
    e = torch.rand(real.shape[0], 1, 1, 1)
    xh = (e * real + (1 - e) * fake).requires_grad_()
    g, = torch.autograd.grad(d(xh).sum(), xh, create_graph=True)
    pen = lam * ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    return d(fake).mean() - d(real).mean() + pen


def torch_side(repeats):
    torch.manual_seed(0)
    g, d = Generator(), Critic()
    d.train()
    out = {}
    z = torch.randn(64, 128)
    x = torch.rand(64, 1, 28, 28)

    def gfb():
        g.zero_grad()
        g(z).sum().backward()
    out["sheep1-g fwd+bwd b64"] = median_time(gfb, repeats)

    def dfb():
        d.zero_grad()
        d(x.requires_grad_(False)).sum().backward()
    out["sheep1-d fwd+bwd b64"] = median_time(dfb, repeats)

    opt = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.0, 0.9))
    fake = g(z).detach()

    def gp_step():
        opt.zero_grad()
        gp_loss(d, x, fake).backward()
        opt.step()
    out["wgan-gp critic step b64"] = median_time(gp_step, repeats)

    bce = nn.BCEWithLogitsLoss()

    def sheep1_step(b=32):
        real = torch.rand(b, 1, 28, 28)
        og.zero_grad()
        od.zero_grad()
        with torch.no_grad():
            f = g(torch.randn(b, 128))
        s = torch.cat([d(real), d(f)])
        bce(s, torch.cat([torch.ones(b), torch.zeros(b)])).backward()
        od.step()
        og.zero_grad()
        bce(d(g(torch.randn(b, 128))), torch.ones(b)).backward()
        og.step()

    og = torch.optim.Adam(g.parameters(), lr=1e-4, eps=1e-7)
    od = torch.optim.Adam(d.parameters(), lr=1e-4, eps=1e-7)
    out["sheep1 training images/s"] = 32 / median_time(sheep1_step, repeats)

    def sheep2_step(b=64, n_critic=2):
        for _ in range(n_critic):
            real = torch.rand(b, 1, 28, 28)
            with torch.no_grad():
                f = g(torch.randn(b, 128))
            od.zero_grad()
            gp_loss(d, real, f).backward()
            od.step()
        og.zero_grad()
        (-d(g(torch.randn(b, 128))).mean()).backward()
        og.step()

    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.9))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.9))
    out["sheep2 training images/s"] = 128 / median_time(sheep2_step, max(3, repeats // 2))

    # The VAE preset (latent 2, batch 64, Adam 1e-3): one update of BCE + KL.
    vae = Vae(2)

    def enc_fb():
        vae.zero_grad()
        mu, logvar = vae.encode(x.requires_grad_(True))
        (mu.sum() + logvar.sum()).backward()
    out["vae encoder fwd+bwd b64"] = median_time(enc_fb, max(11, repeats))
    zv = torch.randn(64, 2, requires_grad=True)

    def dec_fb():
        vae.zero_grad()
        vae.decode(zv).sum().backward()
    out["vae decoder fwd+bwd b64"] = median_time(dec_fb, max(11, repeats))
    ov = torch.optim.Adam(vae.parameters(), lr=1e-3, eps=1e-7)

    def vae_step(b=64):
        real = torch.rand(b, 1, 28, 28)
        ov.zero_grad()
        mu, logvar = vae.encode(real)
        zs = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        bce = F.binary_cross_entropy_with_logits(vae.decode(zs), real, reduction="none")
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)
        (bce.flatten(1).sum(1).mean() + kl.mean()).backward()
        ov.step()
    out["vae training images/s"] = 64 / median_time(vae_step, max(11, repeats))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--exe", help="another bench_steps binary (an older build, for A/B runs)")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = args.exe or os.path.join(root, "target", "release", "examples", "bench_steps")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    res = subprocess.run([exe, str(args.repeats)], capture_output=True, text=True, env=env,
                         check=True)
    ours = {}
    for line in res.stdout.splitlines():
        r = json.loads(line)
        ours[r["name"]] = r.get("seconds", r.get("images_per_s"))
    torch.set_num_threads(args.threads)
    theirs = torch_side(args.repeats)
    print(f"threads: {args.threads}, torch {torch.__version__}")
    print(f"{'measure':<28} {'mouton':>12} {'PyTorch':>12} {'mouton speed-up':>16}")
    for name, t in theirs.items():
        m = ours[name]
        if name.endswith("images/s"):
            print(f"{name:<28} {m:>10.1f}/s {t:>10.1f}/s {m / t:>15.2f}x")
        else:
            print(f"{name:<28} {m * 1e3:>10.1f}ms {t * 1e3:>10.1f}ms {t / m:>15.2f}x")


if __name__ == "__main__":
    sys.exit(main())
