#!/usr/bin/env bash
# Measures the two figures the `deq` tool promises, from a release build:
#   1. thread scaling: `deq solve` on a d = 256 tanh layer, 64 samples (the built-in
#      model, written to files so loading is included), --threads 1 against 2;
#      medians over RUNS alternating runs of the whole process and of the solve alone;
#   2. bounded memory: peak RSS of `deq solve --memory 8` on a [15 × 150 × 700] state
#      (a 700 × 700 per-token layer) at --max-iters 30 and 300, every iteration run
#      (--tol-rel 0 --stall-iters 0), from GNU time's maxrss and the report's VmHWM.
# Usage: bash solver-host/measure.sh [RUNS]   (default 11; needs python3 and /usr/bin/time)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-11}
cargo build --release -q -p solver-host --bin deq
DEQ=${CARGO_TARGET_DIR:-target}/release/deq
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
"$DEQ" demo --model-out "$TMP/m256.safetensors" --input-out "$TMP/x256.safetensors" \
    --hidden 256 --input-width 64 --samples 64 >/dev/null
for i in $(seq "$RUNS"); do
    for t in 1 2; do
        s=$(date +%s%N)
        "$DEQ" solve --model "$TMP/m256.safetensors" --input "$TMP/x256.safetensors" \
            --output "$TMP/z.safetensors" --threads "$t" --report "$TMP/r$t-$i.json" >/dev/null
        e=$(date +%s%N)
        echo "$t $(( (e - s) / 1000 ))" >>"$TMP/process.txt"
    done
done
python3 - "$TMP" "$RUNS" <<'PY'
import json, statistics, sys
tmp, runs = sys.argv[1], int(sys.argv[2])
proc = {1: [], 2: []}
for line in open(f"{tmp}/process.txt"):
    t, us = line.split()
    proc[int(t)].append(int(us) / 1000)
solve = {t: [json.load(open(f"{tmp}/r{t}-{i}.json"))["wall_time_s"] * 1000 for i in range(1, runs + 1)] for t in (1, 2)}
r = json.load(open(f"{tmp}/r1-1.json"))
print(f"d = 256 tanh layer, {len(r['samples'])} samples, broyden M = 8: "
      f"{r['converged']} converged, {sum(s['f_evals'] for s in r['samples'])} f-evaluations")
for name, d in (("whole process", proc), ("solve alone", solve)):
    m1, m2 = statistics.median(d[1]), statistics.median(d[2])
    print(f"  {name:14} median of {runs}: --threads 1 {m1:8.2f} ms, --threads 2 {m2:8.2f} ms, speed-up {m1 / m2:.2f}x")
PY

"$DEQ" demo --model-out "$TMP/m700.safetensors" --input-out "$TMP/x700.safetensors" \
    --hidden 700 --input-width 700 --samples 15 --tokens 150 >/dev/null
for it in 30 300; do
    /usr/bin/time -o "$TMP/time$it.txt" -f "%M %e" "$DEQ" solve --model "$TMP/m700.safetensors" \
        --input "$TMP/x700.safetensors" --output "$TMP/z700.safetensors" --memory 8 --max-iters "$it" \
        --tol-rel 0 --stall-iters 0 --report "$TMP/big$it.json" >/dev/null
done
python3 - "$TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
print("[15 x 150 x 700] state, --memory 8, every iteration run:")
rss = {}
for it in (30, 300):
    kib, wall = open(f"{tmp}/time{it}.txt").read().split()
    r = json.load(open(f"{tmp}/big{it}.json"))
    rss[it] = int(kib) / 1024
    iters = max(s["iterations"] for s in r["samples"])
    print(f"  --max-iters {it:3}: {iters} iterations, peak RSS {rss[it]:.1f} MiB (GNU time, whole process), "
          f"{r['peak_rss_bytes'] / 2**20:.1f} MiB before writing z (VmHWM), solver memory "
          f"{r['solver_memory_bytes'] / 2**20:.1f} MiB, {wall} s")
print(f"  300 vs 30: {100 * (rss[300] / rss[30] - 1):+.2f} %")
PY
