#!/usr/bin/env bash
# Two CUDA builds side by side on one GPU machine (they differ a lot between machines, so
# compare only within one run): sheep1 and sheep2 training throughput of build A and build B,
# run alternately ROUNDS times, then PyTorch eager on the same GPU against build B's runs.
#   A=target/cuda-base B=target/cuda-dist bash scripts/gpu-ab.sh
# (each built by scripts/build-cuda.sh, e.g. DIST=target/cuda-base from an older commit).
# A_FLAGS / B_FLAGS add `mouton train` options to one side: mouton's kernels against cuDNN
# in one build is  A=target/cuda-dist B=target/cuda-dist B_FLAGS=--cudnn bash scripts/gpu-ab.sh
set -uo pipefail
A=${A:-target/cuda-base}
B=${B:-target/cuda-dist}
OUT=${GPU_AB_OUT:-target/gpu-ab}
ROUNDS=${ROUNDS:-2}
rm -rf "$OUT"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
med() {  # median images/s of a run dir (steps 21 onwards)
  python3 -c 'import json,statistics,sys
r=[x["images_per_s"] for x in map(json.loads, open(sys.argv[1]+"/metrics.jsonl")) if x.get("kind")=="step"][20:]
print(f"{statistics.median(r):8.0f}")' "$1"
}
for round in $(seq "$ROUNDS"); do
  for p in sheep1 sheep2; do
    steps=600; [ $p = sheep2 ] && steps=300
    for side in A B; do
      dist=$A; flags=${A_FLAGS:-}; [ $side = B ] && dist=$B && flags=${B_FLAGS:-}
      dir="$OUT/$p-$side-$round"
      # shellcheck disable=SC2086
      "$dist/run-on-target.sh" mouton train --preset $p --device cuda $flags --max-steps $steps \
        --seed 2 --run-dir "$dir" --quiet || exit 1
      echo "round $round $p $side: $(med "$dir") images/s"
    done
  done
done
python3 bench/torch_gpu_sheep.py --sheep1 "$OUT/sheep1-B-$ROUNDS" --sheep2 "$OUT/sheep2-B-$ROUNDS"
