"""How many latent dimensions a VAE uses, from `mouton encode RUN --data F -o latent.csv`.

Prints, per file:
- active units: dimensions u whose latent mean varies over the images, Var_x(mu_u(x)) > 0.01
  (Burda, Grosse and Salakhutdinov 2016, "Importance weighted autoencoders");
- each dimension's mean KL to N(0, 1) in nats, from the CSV's means and log-variances;
- the spectrum of Cov_x(mu(x)): the share of the variance along each principal axis (numpy's
  eigh; an independent check of the shares `mouton encode -o latent.png` prints), and how many
  axes hold 99% of it. Dimensions can all be "active" and still vary together along fewer
  directions.

    python3 bench/vae_active_units.py latent.csv [more.csv ...]
"""
import csv
import sys

import numpy as np


def main(paths):
    for path in paths:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        mu_cols = [i for i, h in enumerate(header) if h.startswith("mu")]
        lv_cols = [i for i, h in enumerate(header) if h.startswith("logvar")]
        mu = np.array([[float(r[i]) for i in mu_cols] for r in body], dtype=np.float64)
        lv = np.array([[float(r[i]) for i in lv_cols] for r in body], dtype=np.float64)
        var = mu.var(axis=0)
        kl = (-0.5 * (1.0 + lv - mu**2 - np.exp(lv))).mean(axis=0)
        values = np.linalg.eigvalsh(np.cov(mu, rowvar=False, bias=True).reshape(len(mu_cols), -1))
        share = np.sort(values)[::-1].clip(min=0) / values.sum()
        axes99 = int(np.searchsorted(np.cumsum(share), 0.99) + 1)
        print(
            f"{path}: {len(body)} images, {mu.shape[1]} dimensions, "
            f"{int((var > 0.01).sum())} active (Var(mu) > 0.01), KL {kl.sum():.2f} nats; "
            f"{axes99} principal axes hold 99% of Var(mu)"
        )
        print("  principal axes' shares: " + ", ".join(f"{100 * s:.1f}%" for s in share))
        order = np.argsort(-kl)
        print("  per dimension, largest KL first: " + ", ".join(
            f"z{u} KL {kl[u]:.2f} Var(mu) {var[u]:.3f}" for u in order))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
