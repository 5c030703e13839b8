#!/usr/bin/env python3
"""Golden parameter trajectories of torch.optim.Adam and RMSprop (float64) on fixed gradients,
for mouton-train's optimizers. Usage:
python3 bench/optim_fixture.py > crates/train/tests/fixtures/optim_torch.json"""
import json
import sys

import torch

P0 = [0.5, -1.25, 2.0, 0.0, -0.03125]
GRADS = [[0.1, -0.2, 0.3, 0.0, 1.5], [-0.4, 0.25, 0.3, 1e-4, -2.0], [0.2, 0.2, -0.9, -3.0, 0.5],
         [1.0, -1.0, 0.0, 0.5, 0.25]]
CASES = [
    ("adam", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)),
    ("adam", dict(lr=2e-4, betas=(0.5, 0.9), eps=1e-7)),
    ("adam", dict(lr=1e-4, betas=(0.0, 0.9), eps=1e-8)),
    ("rmsprop", dict(lr=5e-5, alpha=0.99, eps=1e-8)),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, eps=1e-6)),
]
out = []
for kind, kw in CASES:
    p = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = (torch.optim.Adam if kind == "adam" else torch.optim.RMSprop)([p], **kw)
    traj = []
    for g in GRADS:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        traj.append(p.detach().tolist())
    kw = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
    out.append({"kind": kind, "params": kw, "trajectory": traj})
json.dump({"source": "bench/optim_fixture.py, torch " + torch.__version__, "p0": P0,
           "grads": GRADS, "cases": out}, sys.stdout, indent=1)
