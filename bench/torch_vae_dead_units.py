"""The VAE preset's network and recipe in PyTorch, to tell a property of the architecture
from a bug of mouton's: how many of the encoder's 16 hidden ReLU units are still alive after
training, and the reconstruction cost, over several seeds.

The network is mouton-models' `Vae` (FIDLE's VAE): Conv 1->32 3x3 s2 ReLU, Conv 32->64 3x3 s2
ReLU, Dense 3136->16 ReLU, two Dense 16->L heads (mu, log sigma^2); Dense L->3136 ReLU,
ConvTranspose 64->64 and 64->32 3x3 s2 ReLU, ConvTranspose 32->1 3x3 (logits). Keras
initialization (Glorot uniform weights, zero biases), Adam 1e-3 (betas 0.9 / 0.999, epsilon
1e-7), batch 64 without the last partial batch, BCE summed over pixels + KL (exact, with the
1/2), both averaged over the batch. Differences from mouton: PyTorch's symmetric padding for
the strided convolutions (Keras' "same" pads one side only) and its own random streams, so
runs are comparable in distribution, not step for step.

    python3 bench/torch_vae_dead_units.py ../shared/quickdraw/bitmap28_uint8/sheep.bin \
        --latent 2 8 --seeds 0 1 2 3 4 --epochs 60
"""
import argparse
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class Vae(nn.Module):
    def __init__(self, latent):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        self.enc2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.enc_dense = nn.Linear(3136, 16)
        self.mu = nn.Linear(16, latent)
        self.logvar = nn.Linear(16, latent)
        self.dec_dense = nn.Linear(latent, 3136)
        self.dec1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        self.dec2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.dec3 = nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def hidden(self, x):
        x = F.relu(self.enc1(x))
        x = F.relu(self.enc2(x))
        return F.relu(self.enc_dense(x.flatten(1)))

    def encode(self, x):
        h = self.hidden(x)
        return self.mu(h), self.logvar(h)

    def decode(self, z):
        x = F.relu(self.dec_dense(z)).view(-1, 64, 7, 7)
        x = F.relu(self.dec1(x))
        x = F.relu(self.dec2(x))
        return self.dec3(x)


def losses(model, x, z):
    logits = model.decode(z)
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return bce


def kl_factor(step, steps_per_epoch, warmup_epochs):
    """The KL weight's ramp: 0 at the first step, 1 after `warmup_epochs` epochs (linear)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (warmup_epochs * steps_per_epoch))


def run(images, latent, seed, epochs, kl_weight=1.0, warmup=0.0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Vae(latent)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    order = rng.permutation(len(images))
    train, held = images[order[: int(0.9 * len(images))]], images[order[int(0.9 * len(images)) :]]
    steps_per_epoch = len(train) // 64
    step = 0
    for _ in range(epochs):
        perm = rng.permutation(len(train))
        for b in range(steps_per_epoch):
            x = torch.from_numpy(train[perm[b * 64 : (b + 1) * 64]])
            mu, logvar = model.encode(x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            bce = losses(model, x, z).mean()
            kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()
            opt.zero_grad()
            (bce + kl_weight * kl_factor(step, steps_per_epoch, warmup) * kl).backward()
            opt.step()
            step += 1
    with torch.no_grad():
        x = torch.from_numpy(images)
        alive = int((model.hidden(x) > 0).any(0).sum())
        mu, logvar = model.encode(x)
        bce = losses(model, x, mu).mean().item()
        kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean().item()
    return alive, bce, kl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bitmaps", help="headerless 28x28 uint8 images (Google's numpy_bitmap rows)")
    p.add_argument("--latent", type=int, nargs="+", default=[2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--kl-weight", type=float, default=1.0)
    p.add_argument("--kl-warmup", type=float, default=0.0, help="epochs of a linear KL ramp")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    raw = np.fromfile(a.bitmaps, dtype=np.uint8)
    images = (raw.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    print(
        f"torch {torch.__version__}, {len(images)} images, {a.epochs} epochs, "
        f"KL weight {a.kl_weight}, KL warm-up {a.kl_warmup} epochs"
    )
    for latent in a.latent:
        for seed in a.seeds:
            t = time.time()
            alive, bce, kl = run(images, latent, seed, a.epochs, a.kl_weight, a.kl_warmup)
            print(
                f"latent {latent} seed {seed}: {alive} of 16 hidden units alive, BCE {bce:.2f} "
                f"KL {kl:.2f} nats per image (all {len(images)} images, decoded from mu), "
                f"{time.time() - t:.1f} s"
            )


if __name__ == "__main__":
    main()
