#!/usr/bin/env python3
"""Reads a mouton run directory with TensorBoard's own loader and checks it against metrics.jsonl.

TensorBoard's EventAccumulator (what `tensorboard --logdir` uses) loads every event file in the
run directory, purging what a restart mark replaces; then every step record's losses, every
epoch record's SWD and the newest sample grid of each epoch must be there, equal to
metrics.jsonl (as float32) and to samples/epoch_NNN.png.

Usage: pip install tensorboard; mouton train --run-dir R --tensorboard ...;
       python3 bench/tensorboard_check.py R
"""
import json
import os
import sys

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(run):
    acc = EventAccumulator(run, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    steps, epochs = [], []
    with open(os.path.join(run, "metrics.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            (steps if r["kind"] == "step" else epochs).append(r)
    def check(records, group, keys):
        """Each key's values (float32) at their steps, or no such tag; returns the count."""
        n = 0
        for key in keys:
            tag = f"{group}/{key}"
            want = [(r["step"], np.float32(r[key])) for r in records if key in r]
            if not want:
                assert tag not in tags["scalars"], tag
                continue
            got = [(e.step, np.float32(e.value)) for e in acc.Scalars(tag)]
            assert got == want, f"{tag}: {got[:5]} vs {want[:5]} ({len(got)} vs {len(want)})"
            n += len(got)
        return n

    checked = check(steps, "train",
                    ["d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g", "gp",
                     "recon", "kl", "kl_weight"])
    # An epoch stopped early and resumed has two records; TensorBoard keeps both steps.
    checked += check(epochs, "quality",
                     ["swd", "swd_real_baseline", "diversity_ratio", "swd_trained"])
    images = {e.step: e for e in acc.Images("samples")}
    last_of_epoch = {r["epoch"]: r["step"] for r in epochs}
    for epoch, step in last_of_epoch.items():
        with open(os.path.join(run, "samples", f"epoch_{epoch:03}.png"), "rb") as f:
            png = f.read()
        im = images[step]
        assert im.encoded_image_string == png, f"epoch {epoch}: another image"
        assert (im.width, im.height) == (int.from_bytes(png[16:20], "big"),
                                         int.from_bytes(png[20:24], "big"))
    print(f"{run}: {len(acc.Scalars('train/d_loss'))} steps, {checked} scalars and "
          f"{len(last_of_epoch)} epoch grids as in metrics.jsonl and samples/ "
          f"(tags: {sorted(tags['scalars'])})")


if __name__ == "__main__":
    main(sys.argv[1])
