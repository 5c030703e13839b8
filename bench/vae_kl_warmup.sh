#!/usr/bin/env bash
# FIDLE's VAE with and without a KL warm-up (`mouton train --kl-warmup`), side by side: for
# each latent size and seed, one run of each, then the reconstruction cost over all the
# images (`mouton reconstruct`, nats per image decoded from the latent means) and how many of
# the encoder's 16 hidden ReLU units are still alive (the `vae_hidden_units` example).
#
#   bash bench/vae_kl_warmup.sh ../shared/quickdraw/bitmap28_uint8/sheep.bin
#
# Settings through the environment: LATENTS ("2 8"), SEEDS ("0 1 2 3 4"), EPOCHS (60),
# WARMUP (20 epochs), MODES ("plain warmup"; "nokl" adds a run with --kl-weight 0, a plain
# autoencoder with a noisy code, to see which hidden units die without the KL term), FORMAT
# (bitmap28), OUT (a temporary folder; the runs are kept there).
set -euo pipefail
data=${1:?usage: bench/vae_kl_warmup.sh IMAGES}
latents=${LATENTS:-2 8}
seeds=${SEEDS:-0 1 2 3 4}
epochs=${EPOCHS:-60}
warmup=${WARMUP:-20}
modes=${MODES:-plain warmup}
format=${FORMAT:-bitmap28}
out=${OUT:-$(mktemp -d)}
cd "$(dirname "$0")/.."
cargo build --release -q -p mouton
cargo build --release -q -p mouton-train --example vae_hidden_units
mouton=target/release/mouton
units=target/release/examples/vae_hidden_units
n=$(python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]) // 784)" "$data")
echo "runs in $out; $epochs epochs; warm-up $warmup epochs; $n images"
echo "| latent | seed | run | BCE | KL | hidden units alive | train s |"
echo "|---|---|---|---|---|---|---|"
for latent in $latents; do
  for seed in $seeds; do
    for mode in $modes; do
      case $mode in
        plain) extra=() ;;
        warmup) extra=(--kl-warmup "$warmup"); mode="warm-up $warmup" ;;
        nokl) extra=(--kl-weight 0); mode="KL weight 0" ;;
        *) echo "unknown mode $mode (plain, warmup, nokl)" >&2; exit 2 ;;
      esac
      run="$out/l${latent}_s${seed}_${mode// /_}"
      t0=$(date +%s.%N)
      "$mouton" train --run-dir "$run" --preset vae --latent-dim "$latent" --seed "$seed" \
        --data "$data" --data-format "$format" --epochs "$epochs" --quiet "${extra[@]}"
      t1=$(date +%s.%N)
      line=$("$mouton" reconstruct "$run" --data "$data" --format "$format" -n "$n" \
        -o "$run/recon.png" | grep "per image")
      bce=$(sed -E 's/.*reconstruction BCE ([0-9.]+) nats.*/\1/' <<<"$line")
      kl=$(sed -E 's/.*KL ([0-9.]+) nats.*/\1/' <<<"$line")
      alive=$("$units" "$run" "$data" "$format" | sed -nE 's/^hidden units non-zero.*: ([0-9]+) of 16$/\1/p')
      printf '| %s | %s | %s | %s | %s | %s | %.0f |\n' "$latent" "$seed" "$mode" "$bce" "$kl" \
        "$alive" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
    done
  done
done
