#!/usr/bin/env python3
"""Golden values for mouton-losses' WGAN-GP critic gradient, from PyTorch's double backward.

Builds FIDLE's SHEEP2 critic (Conv 64/128/128 4x4 s2 Keras-"same", LeakyReLU 0.2, Dense 1, no
dropout) in PyTorch with deterministic weights and batches (splitmix64 streams that the Rust
test regenerates bit for bit, so nothing large is stored), then computes in float64:
- the WGAN-GP critic loss mean D(fake) - mean D(real) + lambda * mean (||grad_x D(x_hat)|| - 1)^2
  and its gradient for every parameter with torch.autograd.grad(create_graph=True);
- the critic's JVP at x_hat along a direction v with torch.func.jvp (the tangent pass).
The fixture keeps, per parameter: every gradient entry for tensors up to 4096 entries, 4096
sampled entries for the larger ones, and 16 random +-1 projections over all entries (so an
error anywhere shows). Usage: python3 bench/wgan_gp_fixture.py > crates/losses/tests/fixtures/wgan_gp_torch.json
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

M = 8          # batch
LAMBDA = 10.0
SAMPLED = 4096
PROJECTIONS = 16


def uniform(tag, n):
    """n values in [0, 1) from splitmix64 over (tag, index); mirrored in the Rust test."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(tag) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


SHAPES = [
    ("conv1.weight", (64, 1, 4, 4), 1 * 16 + 64 * 16),
    ("conv1.bias", (64,), None),
    ("conv2.weight", (128, 64, 4, 4), 64 * 16 + 128 * 16),
    ("conv2.bias", (128,), None),
    ("conv3.weight", (128, 128, 4, 4), 128 * 16 + 128 * 16),
    ("conv3.bias", (128,), None),
    ("dense.weight", (1, 2048), 2048 + 1),
    ("dense.bias", (1,), None),
]


def parameters():
    """Glorot-scaled weights and small non-zero biases, tags 1..8."""
    out = []
    for t, (name, shape, fans) in enumerate(SHAPES, start=1):
        n = int(np.prod(shape))
        u = uniform(t, n) * 2.0 - 1.0
        scale = np.sqrt(6.0 / fans) if fans else 0.1
        out.append(torch.tensor((u * scale).reshape(shape), dtype=torch.float64))
    return out


def same_pad(x, k, s):
    """Keras 'same' padding (asymmetric for even kernels: the extra row/column at the end)."""
    h = x.shape[-1]
    total = max((-(-h // s) - 1) * s + k - h, 0)
    a = total // 2
    return F.pad(x, (a, total - a, a, total - a))


def critic(p, x):
    for i in range(3):
        x = F.leaky_relu(F.conv2d(same_pad(x, 4, 2), p[2 * i], p[2 * i + 1], stride=2), 0.2)
    return (x.flatten(1) @ p[6].T + p[7]).flatten()


def main():
    p = [t.requires_grad_() for t in parameters()]
    real = torch.tensor(uniform(20, M * 784).reshape(M, 1, 28, 28))
    fake = torch.tensor(uniform(21, M * 784).reshape(M, 1, 28, 28))
    e = torch.tensor(uniform(22, M)).reshape(M, 1, 1, 1)
    x_hat = (e * real + (1 - e) * fake).requires_grad_()
    g, = torch.autograd.grad(critic(p, x_hat).sum(), x_hat, create_graph=True)
    norms = g.flatten(1).norm(dim=1)
    penalty = LAMBDA * ((norms - 1) ** 2).mean()
    wasserstein = critic(p, real).mean() - critic(p, fake).mean()
    loss = -wasserstein + penalty
    grads = torch.autograd.grad(loss, p)

    v = torch.tensor(uniform(23, M * 784).reshape(M, 1, 28, 28) * 2 - 1)
    with torch.no_grad():
        _, jvp = torch.func.jvp(lambda x: critic([t.detach() for t in p], x), (x_hat.detach(),), (v,))

    params = []
    for t, ((name, shape, _), gr) in enumerate(zip(SHAPES, grads), start=1):
        flat = gr.detach().flatten().numpy()
        n = flat.size
        if n <= SAMPLED:
            idx = np.arange(n)
        else:
            idx = np.unique((uniform(100 + t, SAMPLED) * n).astype(np.int64))
        proj = [float(np.dot(np.where(uniform(200 + 16 * t + j, n) < 0.5, -1.0, 1.0), flat))
                for j in range(PROJECTIONS)]
        params.append({"name": name, "shape": list(shape), "indices": idx.tolist(),
                       "values": flat[idx].tolist(), "projections": proj,
                       "max_abs": float(np.abs(flat).max())})
    json.dump({
        "source": "bench/wgan_gp_fixture.py, torch " + torch.__version__ + ", float64",
        "batch": M, "lambda": LAMBDA, "projections": PROJECTIONS,
        "tags": {"params": "1..8", "real": 20, "fake": 21, "e": 22, "v": 23,
                 "sample": "100 + t", "projection": "200 + 16 t + j"},
        "penalty": penalty.item(), "wasserstein": wasserstein.item(), "loss": loss.item(),
        "mean_grad_norm": norms.mean().item(), "jvp": jvp.tolist(), "params": params,
    }, __import__("sys").stdout)


if __name__ == "__main__":
    main()
