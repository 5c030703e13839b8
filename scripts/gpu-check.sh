#!/usr/bin/env bash
# On a GPU machine, from the repository root, after scripts/build-cuda.sh (its dist/ folder
# at $DIST, default target/cuda-dist): the CUDA op parity checks, short sheep1 and sheep2
# trainings on CPU and CUDA with the same seed (their loss curves side by side), and the
# throughput against PyTorch eager on the same GPU (bench/torch_gpu_sheep.py).
#   bash scripts/gpu-check.sh [STEPS]      (STEPS: steps per short run, default 40)
# SECTIONS=34 bash scripts/gpu-check.sh runs only sections 3 and 4 (each call of the lent
# machine is limited to 10 minutes; all four take about that).
set -euo pipefail
DIST=${DIST:-target/cuda-dist}
OUT=${GPU_CHECK_OUT:-target/gpu-check}
STEPS=${1:-40}
R="$DIST/run-on-target.sh"
SECTIONS=${SECTIONS:-1234}
on() { [[ $SECTIONS == *$1* ]]; }
rm -rf "$OUT"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

status=0
if on 1; then
echo "== 1. op parity (CUDA vs CPU kernels, relative error <= 1e-4; cuDNN's too, required)"
MOUTON_REQUIRE_CUDNN=${MOUTON_REQUIRE_CUDNN:-1} "$R" cuda_parity --test-threads=1 --nocapture ||
  status=1

fi

if on 2; then
echo "== 2. sheep1, sheep2, DCGAN, MLP GAN and VAE, $STEPS steps on CPU and CUDA, seed 1"
for p in sheep1 sheep2; do
  for d in cpu cuda; do
    TIMEFORMAT="$p on $d: %R s wall"
    time "$R" mouton train --preset "$p" --device "$d" --max-steps "$STEPS" --seed 1 \
      --run-dir "$OUT/$p-$d" --quiet || status=1
  done
done
# The DCGAN (transposed convolutions, batch norm), FIDLE's fully connected GAN and the VAE.
for net in dcgan mlp vae; do
  arch=(--generator $net-g --critic $net-d); [ $net = vae ] && arch=(--preset vae)
  for d in cpu cuda; do
    TIMEFORMAT="$net on $d: %R s wall"
    time "$R" mouton train "${arch[@]}" --device "$d" \
      --max-steps "$STEPS" --seed 1 --run-dir "$OUT/$net-$d" --quiet || status=1
  done
done
# The same seed on the same GPU again: is the run repeatable? (the DCGAN and the MLP GAN
# with batch norm)
"$R" mouton train --preset sheep1 --device cuda --max-steps "$STEPS" --seed 1 \
  --run-dir "$OUT/sheep1-cuda-again" --quiet || status=1
for net in dcgan mlp; do
  "$R" mouton train --generator $net-g --critic $net-d --device cuda --max-steps "$STEPS" \
    --seed 1 --run-dir "$OUT/$net-cuda-again" --quiet || status=1
done
# The moving average of the generator's weights (--ema) trained on each device, then sampled
# on the CPU from each run's checkpoint: the averages agree, and differ from the trained weights.
for d in cpu cuda; do
  "$R" mouton train --generator dcgan-g --critic dcgan-d --device $d --max-steps 5 --seed 1 \
    --ema 0.9 --run-dir "$OUT/ema-$d" --quiet || status=1
  "$R" mouton sample "$OUT/ema-$d" -n 64 -o "$OUT/ema-$d.npy" || status=1
  "$R" mouton sample "$OUT/ema-$d" -n 64 --trained-weights -o "$OUT/ema-$d-trained.npy" ||
    status=1
done
python3 - "$OUT" <<'PY' || status=1
import sys, numpy as np
out = sys.argv[1]
a, b, t = (np.load(f"{out}/ema-{n}.npy").astype(float) for n in ("cpu", "cuda", "cuda-trained"))
print(f"--ema, 5 DCGAN steps: the averages' samples CPU vs CUDA, mean |difference| "
      f"{np.abs(a - b).mean():.3f} grey levels (max {np.abs(a - b).max():.0f}); the CUDA run's "
      f"average vs its trained weights {np.abs(b - t).mean():.3f}")
sys.exit(0 if np.abs(a - b).mean() < 0.05 < 0.1 < np.abs(b - t).mean() else 1)
PY
python3 - "$OUT" <<'PY' || status=1
import json, sys, os
out = sys.argv[1]
def steps(d):
    keys = ("d_loss", "g_loss", "d_real", "d_fake", "grad_norm_d", "grad_norm_g")
    return [tuple(r[k] for k in keys) for r in map(json.loads, open(os.path.join(out, d, "metrics.jsonl")))
            if r.get("kind") == "step"]
for net in ("sheep1", "dcgan", "mlp"):
    a, b = steps(f"{net}-cuda"), steps(f"{net}-cuda-again")
    same = sum(x == y for x, y in zip(a, b))
    gap = max(abs(u - v) / max(abs(u), 1e-12) for x, y in zip(a, b) for u, v in zip(x, y))
    print(f"{net} on CUDA twice with seed 1: {same} of {len(a)} step records identical, largest "
          f"relative difference {gap:.1e}"
          + ("" if same == len(a) else f" (first difference at step {next(i for i, (x, y) in enumerate(zip(a, b)) if x != y) + 1}: "
             f"{[k for k, u, v in zip(('d_loss', 'g_loss', 'd_real', 'd_fake', 'grad_norm_d', 'grad_norm_g'), *next((x, y) for x, y in zip(a, b) if x != y)) if u != v]} differ)"))
for p in ("sheep1", "sheep2", "dcgan", "mlp", "vae"):
    runs = {}
    for d in ("cpu", "cuda"):
        recs = [json.loads(l) for l in open(os.path.join(out, f"{p}-{d}", "metrics.jsonl"))]
        runs[d] = [r for r in recs if r.get("kind") == "step"]
    a, b = runs["cpu"], runs["cuda"]
    print(f"{p}: step  d_loss cpu / cuda    g_loss cpu / cuda")
    for i in list(range(0, min(len(a), len(b)), max(1, len(a) // 8))) + [len(a) - 1]:
        print(f"  {a[i]['step']:4d}  {a[i]['d_loss']:9.4f} / {b[i]['d_loss']:9.4f}   "
              f"{a[i]['g_loss']:9.4f} / {b[i]['g_loss']:9.4f}")
    first = max(abs(x["d_loss"] - y["d_loss"]) for x, y in zip(a[:5], b[:5]))
    print(f"  max |d_loss cpu - cuda| over the first 5 steps: {first:.2e}")
PY

fi

if on 3; then
echo "== 3. throughput vs PyTorch eager"
"$R" mouton train --preset sheep1 --device cuda --max-steps 600 --seed 2 \
  --run-dir "$OUT/speed-sheep1" --quiet || status=1
"$R" mouton train --preset sheep2 --device cuda --max-steps 300 --seed 2 \
  --run-dir "$OUT/speed-sheep2" --quiet || status=1
for p in sheep1 sheep2; do
  steps=600; [ $p = sheep2 ] && steps=300
  for flags in "--tf32" "--cudnn" "--cudnn --tf32"; do
    # shellcheck disable=SC2086
    "$R" mouton train --preset $p --device cuda $flags --max-steps $steps --seed 2 \
      --run-dir "$OUT/speed-$p$(echo $flags | tr -d ' ')" --quiet || status=1
  done
done
python3 bench/torch_gpu_sheep.py --sheep1 "$OUT/speed-sheep1" --sheep2 "$OUT/speed-sheep2" \
  --sheep1-tf32 "$OUT/speed-sheep1--tf32" --sheep2-tf32 "$OUT/speed-sheep2--tf32" \
  --sheep1-cudnn "$OUT/speed-sheep1--cudnn" --sheep2-cudnn "$OUT/speed-sheep2--cudnn" \
  --sheep1-cudnn-tf32 "$OUT/speed-sheep1--cudnn--tf32" \
  --sheep2-cudnn-tf32 "$OUT/speed-sheep2--cudnn--tf32" || status=1

fi

if on 4; then
echo "== 4. sheep1 at large batches (the 10-epoch goal), mouton's kernels and cuDNN"
for b in 512 2048; do
  for flags in "" "--cudnn" "--cudnn --tf32"; do
    dir="$OUT/batch-$b$(echo $flags | tr -d ' ')"
    # shellcheck disable=SC2086
    "$R" mouton train --preset sheep1 --device cuda $flags --batch-size $b --max-steps 60 \
      --seed 2 --run-dir "$dir" --quiet || status=1
    python3 -c 'import json,statistics,sys
r=[x["images_per_s"] for x in map(json.loads, open(sys.argv[1]+"/metrics.jsonl")) if x.get("kind")=="step"][10:]
m=statistics.median(r); how=sys.argv[3] or "(our kernels)"
print(f"sheep1 batch {sys.argv[2]} {how}: {m:,.0f} images/s, 10 epochs {10*126121/m:.0f} s")' \
      "$dir" "$b" "$flags" || status=1
  done
done
python3 bench/torch_gpu_sheep.py --sheep1-batches 512,2048 --steps 100 || status=1
fi
exit $status
