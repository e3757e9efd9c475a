#!/usr/bin/env bash
# cuda-check.sh: the GPU check of solver-host's `cuda` feature, in two halves, because
# the GPU machine has CUDA but no Rust toolchain:
#
#     bash solver-host/cuda-check.sh build   # here: builds the binaries into gpu-check/
#     bash solver-host/cuda-check.sh run     # on the GPU machine, with gpu-check/ copied over
#
# `run` needs an NVIDIA driver, the CUDA libraries (libcublas, libnvrtc; it looks in
# /usr/local/cuda/lib64 and in $CUDA_HOME/lib64) and python3. It
#   1. runs the GPU tests (solver-host/tests/cuda.rs, the ignored ones included): the
#      CUDA backend against the host backend on random layers: same statuses, f-evals
#      within ±1, z within 1e-4 relative; a NaN sample ends alone;
#   2. runs the bench (src/bin/cuda_bench.rs) on the [15 × 150 × 700] state with M = 8:
#      per-iteration time, achieved bandwidth of the solver kernels as a share of the
#      device's peak, GPU memory at --max-iters 30 and 300, agreement with the CPU;
#   3. runs `deq solve --device cuda` and `deq solve` (CPU) on the same files and
#      compares their reports and fixed points (same statuses, f-evals within ±1, z
#      within 1e-4 relative);
#   4. runs deqsolve (the Python package, from the wheel `build` made, with torchdeq's
#      wheel) on CUDA tensors: solver-py/tests/test_cuda.py (the device path against the
#      host path, a NaN sample, GPU memory and time per iteration at 30 and 300
#      iterations, a torchdeq training step against the CPU's), with the machine's own
#      python3, torch and pytest.
# Any failure stops the script with a non-zero status.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/gpu-check"
die() {
    echo "cuda-check.sh: error: $*" >&2
    exit 1
}

build() {
    cd "$root"
    local target="${CARGO_TARGET_DIR:-$root/target}"
    rm -rf "$out"
    mkdir -p "$out"
    cargo build --release -p solver-host --features cuda --bin deq --bin cuda_bench
    local tests
    tests=$(cargo test --release -p solver-host --features cuda --test cuda --no-run --message-format=json |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "cuda" and .executable != null) | .executable')
    [ -x "$tests" ] || die "no test binary for tests/cuda.rs"
    cp "$target/release/deq" "$target/release/cuda_bench" "$out/"
    cp "$tests" "$out/cuda_tests"
    # Without debug info the three fit the device tool's 64 MiB carry limit.
    strip --strip-debug "$out"/*
    # deqsolve (abi3: any CPython ≥ 3.9) and torchdeq, pure Python, for step 4.
    local venv="$out/.build-venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "maturin>=1.9,<2"
    "$venv/bin/maturin" build --release --strip --quiet -m "$root/solver-py/Cargo.toml" -o "$out"
    "$venv/bin/pip" download --quiet --no-deps torchdeq==0.1.0 -d "$out"
    rm -rf "$venv"
    # The newest glibc symbol version the binaries need (the GPU machine must have it).
    local glibc
    glibc=$(objdump -T "$out/deq" "$out/cuda_bench" "$out/cuda_tests" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
    echo "cuda-check.sh: built $(ls "$out" | tr '\n' ' ')in $out ($(du -sh "$out" | cut -f1); needs $glibc or newer)"
}

run() {
    for b in deq cuda_bench cuda_tests; do
        [ -x "$out/$b" ] || die "$out/$b is missing: run 'bash solver-host/cuda-check.sh build' first"
    done
    ls "$out"/deqsolve-*.whl "$out"/torchdeq-*.whl >/dev/null 2>&1 ||
        die "the deqsolve and torchdeq wheels are missing: run 'bash solver-host/cuda-check.sh build' first"
    for dir in /usr/local/cuda/lib64 "${CUDA_HOME:-/usr/local/cuda}/lib64"; do
        [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"
    done
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    local t0=$SECONDS

    echo "== 1. GPU tests (CUDA backend against the host backend)"
    "$out/cuda_tests" --include-ignored --test-threads 1

    echo "== 2. bench: [15 x 150 x 700], M = 8"
    "$out/cuda_bench"

    echo "== 3. deq solve --device cuda against the CPU"
    local tmp
    tmp=$(mktemp -d)
    "$out/deq" demo --model-out "$tmp/m.safetensors" --input-out "$tmp/x.safetensors" \
        --hidden 700 --input-width 64 --samples 15 --tokens 150
    for dev in cpu cuda; do
        "$out/deq" solve --model "$tmp/m.safetensors" --input "$tmp/x.safetensors" --device "$dev" \
            --output "$tmp/z_$dev.safetensors" --report "$tmp/r_$dev.json"
    done
    python3 - "$tmp" <<'PY'
import json, struct, sys
d = sys.argv[1]
def tensor(path, name):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    meta = json.loads(raw[8:8 + n])[name]
    a, b = meta["data_offsets"]
    body = raw[8 + n + a:8 + n + b]
    return struct.unpack("<%df" % (len(body) // 4), body)
cpu, gpu = (json.load(open(f"{d}/r_{x}.json")) for x in ("cpu", "cuda"))
bad = []
for c, g in zip(cpu["samples"], gpu["samples"]):
    if c["status"] != g["status"] or abs(c["f_evals"] - g["f_evals"]) > 1:
        bad.append((c["sample"], c["status"], g["status"], c["f_evals"], g["f_evals"]))
zc, zg = tensor(f"{d}/z_cpu.safetensors", "z"), tensor(f"{d}/z_cuda.safetensors", "z")
scale = max(abs(v) for v in zc) or 1.0
rel = max(abs(a - b) for a, b in zip(zc, zg)) / scale
print(f"deq: cpu {cpu['wall_time_s']*1e3:.1f} ms, cuda {gpu['wall_time_s']*1e3:.1f} ms; "
      f"converged {cpu['converged']} / {gpu['converged']}; max |dz| / max |z| = {rel:.2e}; "
      f"GPU memory {gpu['solver_memory_bytes'] / 2**20:.1f} MiB")
if bad or rel > 1e-4:
    sys.exit(f"deq --device cuda disagrees with the CPU: {bad[:5]}, rel {rel:.2e}")
PY
    rm -rf "$tmp"

    echo "== 4. deqsolve on CUDA tensors (python3 $(python3 -c 'import sys; print(sys.version.split()[0])'))"
    local site
    site=$(mktemp -d)
    python3 -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$out"/deqsolve-*.whl \
        "$out"/torchdeq-*.whl
    (cd "$root/solver-py" && PYTHONPATH="$site" DEQSOLVE_REQUIRE_CUDA=1 PYTHONUNBUFFERED=1 \
        python3 -m pytest -q -s -p no:cacheprovider tests/test_cuda.py)
    rm -rf "$site"
    echo "cuda-check.sh: all checks passed in $((SECONDS - t0)) s"
}

case "${1:-}" in
build) build ;;
run) run ;;
*) die "usage: cuda-check.sh build | run" ;;
esac
