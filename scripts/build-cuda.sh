#!/usr/bin/env bash
# Builds mouton with `--features cuda` on a machine with NO GPU and NO NVIDIA driver, and packs
# what an H100/H200 machine (driver 580 = CUDA 13.0, PyTorch cu130 wheels installed) needs.
#
#   bash scripts/build-cuda.sh            -> $BUILD_DIR/dist/ (default target/cuda-dist)
#
# dist/ holds: mouton (the CLI), cuda_parity (the CPU-vs-CUDA op checks), nvrtc-headers.tar.gz,
# and run-on-target.sh (unpacks the headers, points LD_LIBRARY_PATH at PyTorch's CUDA 13
# libraries, runs the program named by its first argument).
#
# With a normal CUDA toolkit and a GPU, `cargo build --release --features cuda` is all you need.
#
# How: CUDA 13.0.x compiler wheels from PyPI (not newer: driver 580 loads CUDA 13.0 PTX at most),
# link-time stubs for libcuda/libcublas/libcublasLt/libnvrtc (every function returns
# CUDA_ERROR_NO_DEVICE), an nvidia-smi shim (dfdx's build script asks it for the compute
# capability), CUDA_COMPUTE_CAP=90 (Hopper). dfdx bakes two build-machine paths into the binary
# for the kernels it JIT-compiles at run time (CUDA's cuda_fp16.h* and its own *.cuh), so the
# package recreates them at the same absolute paths on the target.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/target/cuda-build}
DIST=${DIST:-$ROOT/target/cuda-dist}
PY=$BUILD_DIR/pyroot
CR=$BUILD_DIR/cuda-root
T0=$(date +%s)

PKGS=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
      nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96)
if [ ! -x "$PY/nvidia/cu13/bin/nvcc" ]; then
  rm -rf "$PY"
  # One pip call: `pip --target` does not merge into an existing nvidia/ folder.
  python3 -m pip install --quiet --no-deps --no-cache-dir --target "$PY" "${PKGS[@]}"
fi
CU=$PY/nvidia/cu13

CUDARC_SRC=$(cd "$ROOT" && cargo metadata --format-version 1 --features mouton/cuda 2>/dev/null |
  python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"]=="cudarc"))')

rm -rf "$CR"; mkdir -p "$CR/lib64/stubs" "$BUILD_DIR/shim"
ln -s "$CU/include" "$CR/include"; ln -s "$CU/bin" "$CR/bin"
stub() {  # stub SONAME OUT RUST_SYS_FILE VERSION_NODE: every function returns 100 (no device)
  local so=$1 out=$2 sys=$3 node=${4:-} c=${2%.so}.c
  { echo 'int __link_stub_only(void){return 100;}'
    [ -n "$sys" ] && grep -ohE 'pub fn [A-Za-z0-9_]+' "$sys" | sort -u | awk '{
      if ($3 ~ /^cuGetError(String|Name)$/) print "int "$3"(int e,const char**s){*s=\"link stub libcuda.so.1: no NVIDIA driver\";return 0;}";
      else print "int "$3"(void){return 100;}" }'; } > "$c"
  local vs=(); if [ -n "$node" ]; then echo "$node { global: *; };" > "$c.map"; vs=(-Wl,--version-script="$c.map"); fi
  gcc -shared -fPIC -o "$out" -Wl,-soname,"$so" "${vs[@]}" "$c"
}
stub libcuda.so.1 "$CR/lib64/stubs/libcuda.so" "$CUDARC_SRC/src/driver/sys.rs"
stub libcublas.so.13   "$CR/lib64/libcublas.so"   "$CUDARC_SRC/src/cublas/sys.rs" libcublas.so.13
stub libcublasLt.so.13 "$CR/lib64/libcublasLt.so" ""                            libcublasLt.so.13
stub libnvrtc.so.13    "$CR/lib64/libnvrtc.so"    "$CUDARC_SRC/src/nvrtc/sys.rs"  libnvrtc.so.13
printf '#!/bin/sh\necho compute_cap\necho 9.0\n' > "$BUILD_DIR/shim/nvidia-smi"
chmod +x "$BUILD_DIR/shim/nvidia-smi"

export CUDA_ROOT=$CR CUDA_COMPUTE_CAP=90 PATH="$CU/bin:$BUILD_DIR/shim:$PATH"
export CARGO_TARGET_DIR=$BUILD_DIR/target
cd "$ROOT"
# mouton's own kernels are compiled by NVRTC at first use on the GPU: compile them here with
# nvcc (the same front end) so that a syntax error stops the build, not a training run.
for cu in crates/models/src/layers/cuda/*.cu; do
  nvcc --ptx -arch=sm_90 -I"$CR/include" "$cu" -o "$BUILD_DIR/$(basename "$cu" .cu).ptx"
done
cargo build --release -p mouton --features cuda
# The op parity checks, as a test binary (run on the GPU machine by scripts/gpu-check.sh).
PARITY=$(cargo test --release -p mouton-models --features cuda --test cuda_parity --no-run \
  --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="cuda_parity": print(m["executable"])' | tail -1)

OUT_DIR=$(dirname "$(ls -t "$CARGO_TARGET_DIR"/release/build/dfdx-*/out/cuda_utils.cuh | head -1)")
rm -rf "$DIST"; mkdir -p "$DIST"
cp "$CARGO_TARGET_DIR/release/mouton" "$DIST/"
cp "$PARITY" "$DIST/cuda_parity"
tar -czPf "$DIST/nvrtc-headers.tar.gz" "$CR/include/cuda_fp16.h" "$CR/include/cuda_fp16.hpp" "$OUT_DIR"/*.cuh
cat > "$DIST/run-on-target.sh" <<'RUN'
#!/bin/sh
# run-on-target.sh PROGRAM [ARGS...]: runs dist/PROGRAM with PyTorch's CUDA 13 libraries.
set -e
D=$(cd "$(dirname "$0")" && pwd)
tar -xzPf "$D/nvrtc-headers.tar.gz" 2>/dev/null || true
lib_of() {  # the first folder nvidia/$1/lib among the nvidia packages' paths, or nothing
  python3 -c 'import nvidia, os, sys; p = [os.path.join(d, sys.argv[1], "lib") for d in nvidia.__path__]; print(next((d for d in p if os.path.isdir(d)), ""))' "$1"
}
NV=$(lib_of cu13)
# PyTorch's cuDNN, for --cudnn (opened at run time; libcudnn.so.9 loads its parts from here).
DNN=$(lib_of cudnn)
P=$1; shift
LD_LIBRARY_PATH="$NV${DNN:+:$DNN}:${LD_LIBRARY_PATH:-}" exec "$D/$P" "$@"
RUN
chmod +x "$DIST/run-on-target.sh"
echo "built in $(( $(date +%s) - T0 )) s into $DIST:"
ls -la "$DIST"
