#!/usr/bin/env python3
"""Golden values for mouton-models' conv2d and conv_transpose2d from PyTorch (float64).

Inputs are splitmix64 streams the Rust test regenerates (see crates/models/tests/torch_parity.rs),
so the fixture holds only the outputs and the gradients of sum(y * r) with respect to x, w, b.
Usage: python3 bench/conv_fixture.py > crates/models/tests/fixtures/conv_torch.json
"""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F


def uniform(tag, n):
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(tag) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2 - 1


def t(tag, shape):
    return torch.tensor(uniform(tag, int(np.prod(shape))).reshape(shape), requires_grad=True)


def keras_same(h, k, s):
    total = max((-(-h // s) - 1) * s + k - h, 0)
    return total // 2, total - total // 2


CONV = [  # n, c, h, w, o, k, stride, padding ("same" or (top, bottom, left, right))
    (2, 3, 7, 6, 4, 4, 2, "same"),
    (1, 2, 5, 5, 3, 3, 1, (1, 1, 1, 1)),
    (2, 2, 9, 8, 3, 3, 2, (0, 0, 0, 0)),
    (1, 4, 7, 7, 2, 5, 1, "same"),
]
TRANSPOSED = [  # n, c, h, w, o, k, stride, padding, output_padding
    (2, 3, 4, 3, 2, 4, 2, 1, 0),
    (1, 2, 3, 3, 3, 3, 2, 1, 1),
    (1, 3, 2, 2, 2, 5, 1, 0, 0),
]


def main():
    cases = []
    for i, (n, c, h, w, o, k, s, pad) in enumerate(CONV):
        base = 10 * i + 100
        x, wt, b = t(base, (n, c, h, w)), t(base + 1, (o, c, k, k)), t(base + 2, (o,))
        if pad == "same":
            (pt, pb), (pl, pr) = keras_same(h, k, s), keras_same(w, k, s)
        else:
            pt, pb, pl, pr = pad
        y = F.conv2d(F.pad(x, (pl, pr, pt, pb)), wt, b, stride=s)
        r = torch.tensor(uniform(base + 3, y.numel()).reshape(y.shape))
        (y * r).sum().backward()
        cases.append({"op": "conv2d", "n": n, "c": c, "h": h, "w": w, "o": o, "k": k, "stride": s,
                      "padding": pad if pad == "same" else list(pad), "tags": base,
                      "y_shape": list(y.shape), "y": y.detach().flatten().tolist(),
                      "gx": x.grad.flatten().tolist(), "gw": wt.grad.flatten().tolist(),
                      "gb": b.grad.flatten().tolist()})
    for i, (n, c, h, w, o, k, s, p, op) in enumerate(TRANSPOSED):
        base = 10 * i + 200
        x, wt, b = t(base, (n, c, h, w)), t(base + 1, (c, o, k, k)), t(base + 2, (o,))
        y = F.conv_transpose2d(x, wt, b, stride=s, padding=p, output_padding=op)
        r = torch.tensor(uniform(base + 3, y.numel()).reshape(y.shape))
        (y * r).sum().backward()
        cases.append({"op": "conv_transpose2d", "n": n, "c": c, "h": h, "w": w, "o": o, "k": k,
                      "stride": s, "padding": p, "output_padding": op, "tags": base,
                      "y_shape": list(y.shape), "y": y.detach().flatten().tolist(),
                      "gx": x.grad.flatten().tolist(), "gw": wt.grad.flatten().tolist(),
                      "gb": b.grad.flatten().tolist()})
    json.dump({"source": "bench/conv_fixture.py, torch " + torch.__version__ + ", float64",
               "cases": cases}, sys.stdout)


if __name__ == "__main__":
    main()
