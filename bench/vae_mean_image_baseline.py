"""The reconstruction cross-entropy a model without a latent space gets: every image
predicted as the mean of the training file's images (per pixel), in nats per image, the
unit `mouton reconstruct` prints. A VAE whose reconstructions cost about this much has
learned little from its latent space.

    python3 bench/vae_mean_image_baseline.py TRAIN.bin [OTHER.bin ...]

Files: Google's headerless 28x28 uint8 bitmaps (the `bitmap28` format). numpy only.
"""

import sys

import numpy as np


def images(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 784:
        sys.exit(f"{path}: {raw.size} bytes are not whole 28x28 images")
    return raw.reshape(-1, 784).astype(np.float64) / 255.0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    mean = np.clip(images(sys.argv[1]).mean(axis=0), 1e-6, 1 - 1e-6)
    print("file images bce_nats_per_image ink_per_image")
    for path in sys.argv[1:]:
        x = images(path)
        bce = -(x * np.log(mean) + (1 - x) * np.log(1 - mean)).sum(axis=1).mean()
        print(f"{path} {len(x)} {bce:.2f} {x.sum(axis=1).mean():.1f}")


if __name__ == "__main__":
    main()
