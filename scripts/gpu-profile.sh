#!/usr/bin/env bash
# Where a CUDA training step's time goes, on a GPU machine, after scripts/build-cuda.sh:
#  1. sheep1 step time at batch 32, 128 and 512 (the intercept is the per-step cost, the slope
#     the per-image cost);
#  2. Nsight Compute (ncu, if present): the GPU time of every kernel over a few steps, summed
#     by kernel name, against the same steps' wall time (the rest is host time).
#   bash scripts/gpu-profile.sh
set -uo pipefail
DIST=${DIST:-target/cuda-dist}
OUT=${GPU_PROFILE_OUT:-target/gpu-profile}
R="$DIST/run-on-target.sh"
rm -rf "$OUT"; mkdir -p "$OUT"
PRESET=${PRESET:-sheep1}
ms_per_step() {  # median ms per step of a run dir, skipping warm-up steps
  python3 - "$1" "$2" <<'PY'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
ips = [r["images_per_s"] for r in recs if r.get("kind") == "step"][10:]
b = int(sys.argv[2])
m = statistics.median(ips)
print(f"batch {b}: {m:,.0f} images/s, {1000 * b / m:.2f} ms/step")
PY
}
echo "== 1. $PRESET step time against batch size"
for b in ${BATCHES:-32 128 512}; do
  "$R" mouton train --preset "$PRESET" --device cuda --batch-size $b --max-steps 60 --seed 2 \
    --synthetic-count 70000 --run-dir "$OUT/b$b" --quiet && ms_per_step "$OUT/b$b" $b
done
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
[ -x "$NCU" ] || { echo "no ncu: skipping the kernel profile"; exit 0; }
echo "== 2. kernels of one $PRESET step at batch ${NCU_BATCH:-32} (ncu, launches 3000-5499)"
NV=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
tar -xzPf "$DIST/nvrtc-headers.tar.gz" 2>/dev/null || true
export LD_LIBRARY_PATH="$NV:${LD_LIBRARY_PATH:-}"
"$NCU" --metrics gpu__time_duration.sum --csv --print-units base \
  --launch-skip 3000 --launch-count 2500 "$DIST/mouton" train --preset "$PRESET" \
  --device cuda --batch-size "${NCU_BATCH:-32}" --seed 2 --synthetic-count 4000 --max-steps 60 \
  --run-dir "$OUT/ncu" --quiet > "$OUT/ncu.csv" 2> "$OUT/ncu.err"
python3 - "$OUT/ncu.csv" <<'PY'
import csv, collections, io, sys
text = open(sys.argv[1]).read()
rows = list(csv.DictReader(io.StringIO(text[text.find('"ID"'):])))
k = [(r["Kernel Name"].split("(")[0][:70], float(r["Metric Value"].replace(",", ""))) for r in rows
     if r.get("Metric Name") == "gpu__time_duration.sum"]
names = [n for n, _ in k]
# One step's launches: the shortest period of the (deterministic) launch sequence.
period = next((p for p in range(20, len(k) // 2 + 1)
               if names[:len(k) - p] == names[p:]), None)
if period is None:
    sys.exit(f"no period found in {len(k)} launches: raise --launch-count")
by = collections.defaultdict(lambda: [0, 0.0])
for n, ns in k[:period]:
    by[n][0] += 1
    by[n][1] += ns
print(f"{period} launches per step, GPU busy {sum(ns for _, ns in k[:period]) / 1e6:.2f} ms per step")
for n, (c, ns) in sorted(by.items(), key=lambda kv: -kv[1][1])[:40]:
    print(f"  {ns / 1e6:8.3f} ms  {c:5d} launches  {n}")
PY
