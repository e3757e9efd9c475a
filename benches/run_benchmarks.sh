#!/usr/bin/env bash
# Regenerates BENCHMARKS.md (and its SVG plots in benches/results/) from scratch:
# builds the Rust binaries, writes the problem instances, runs this project's solvers,
# creates benches/peers/.venv and runs torchdeq and SciPy on the same files, times DEQ
# training steps with torchdeq's broyden and deqsolve's (installed from ./solver-py),
# runs the criterion benches (short settings), and writes the report.
#
#   bash benches/run_benchmarks.sh            # everything (about 25-35 minutes on 2 cores)
#   SKIP_CRITERION=1 bash benches/run_benchmarks.sh
#
# Threads: the small problems run on one thread for every tool; the [15, 150, 700]
# state on THREADS (default 2) for every tool.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
THREADS=${THREADS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
RES=benches/results
WORK=$RES/work
PEERS=benches/peers
PY=$PEERS/.venv/bin/python
mkdir -p "$WORK"
log() { echo "== $(date +%H:%M:%S) $*"; }

log "build"
cargo build --release -p deq-benches --bin export_problems --bin run_ours --bin floor --bin bandwidth
cargo build --release -p solver-host --bin deq
BIN=$CARGO_TARGET_DIR/release

log "python environment ($PEERS/.venv)"
if [ ! -x "$PY" ] || ! cmp -s "$PEERS/requirements.txt" "$PEERS/.venv/requirements.installed"; then
    python3 -m venv "$PEERS/.venv"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -r "$PEERS/requirements.txt"
    cp "$PEERS/requirements.txt" "$PEERS/.venv/requirements.installed"
fi

log "problem instances"
"$BIN/export_problems" "$WORK/problems"

log "ours on the instances"
"$BIN/run_ours" "$WORK/problems" "$WORK/ours.json"

log "peers on the instances (torchdeq, SciPy; 1 thread)"
"$PY" $PEERS/run.py small --problems "$WORK/problems" --out "$WORK/peers.json" --threads 1

log "ours and peers on the instances at 2 threads (f's rows split over the threads for d >= 256)"
"$BIN/run_ours" "$WORK/problems" "$WORK/ours_2t.json" 2
"$PY" $PEERS/run.py small --problems "$WORK/problems" --out "$WORK/peers_2t.json" --threads 2

log "the [15, 150, 700] DEQ-Transformer-sized state"
M=$WORK/big_model.safetensors
X=$WORK/big_input.safetensors
"$BIN/deq" demo --model-out "$M" --input-out "$X" --hidden 700 --input-width 700 --samples 15 --tokens 150
"$PY" $PEERS/run.py reference --model "$M" --input "$X" --threads "$THREADS" --out "$WORK/big_reference.npy" \
    > "$WORK/big_reference.json"
# The solves to tol: REPS fresh processes each (the report takes the median time; the
# first also writes its fixed points), ours and torchdeq's alike.
REPS=${REPS:-3}
rm -f "$WORK"/ours_big_*.json
for s in broyden anderson picard; do
    for r in $(seq "$REPS"); do
        out=(); [ "$r" = 1 ] && out=(--output "$WORK/ours_big_$s.safetensors")
        "$BIN/deq" solve --model "$M" --input "$X" --solver "$s" --max-iters 500 --threads "$THREADS" \
            --report "$WORK/ours_big_$s.r$r.json" "${out[@]}"
    done
done
for it in 30 300; do
    "$BIN/deq" solve --model "$M" --input "$X" --solver broyden --max-iters $it --tol-rel 0 --stall-iters 0 \
        --threads "$THREADS" --report "$WORK/ours_big_broyden_it$it.json"
done
big() { "$PY" $PEERS/run.py big --model "$M" --input "$X" --threads "$THREADS" "$@"; }
: > "$WORK/peers_big.jsonl"
big --solver none --max-iters 0 >> "$WORK/peers_big.jsonl"
for s in broyden anderson fixed_point_iter; do
    for r in $(seq "$REPS"); do
        big --solver $s --max-iters 500 --z-out "$WORK/peers_big_$s.npy" >> "$WORK/peers_big.jsonl"
    done
done
for it in 30 300; do
    big --solver broyden --max-iters $it --tol 0 >> "$WORK/peers_big.jsonl"
done
# The same state on 1 thread: ours Anderson and Picard against torchdeq's anderson and
# fixed_point_iter.
for s in anderson picard; do
    for r in $(seq "$REPS"); do
        "$BIN/deq" solve --model "$M" --input "$X" --solver "$s" --max-iters 500 --threads 1 \
            --report "$WORK/ours_big_${s}_1t.r$r.json"
    done
done
: > "$WORK/peers_big_1t.jsonl"
for s in anderson fixed_point_iter; do
    for r in $(seq "$REPS"); do
        "$PY" $PEERS/run.py big --model "$M" --input "$X" --threads 1 --solver $s --max-iters 500 \
            >> "$WORK/peers_big_1t.jsonl"
    done
done

log "solver overhead: each solve against its evaluations alone (floor), and the kernels' bandwidth"
RAYON_NUM_THREADS=$THREADS "$BIN/floor" > "$WORK/floor_big.md"
for shape in "16 16 256" "64 1 256"; do
    RAYON_NUM_THREADS=$THREADS "$BIN/floor" $shape
done > "$WORK/floor_small.md"
"$BIN/bandwidth" > "$WORK/bandwidth.md"

log "training steps: forward + IFT backward of a [8, 150, 700] state (deqsolve from this checkout)"
"$PY" -m pip install --quiet --force-reinstall --no-deps ./solver-py
: > "$WORK/train_steps.jsonl"
for it in 30 300; do
    for s in deqsolve_broyden fixed_point broyden; do
        # torchdeq's broyden at 300 iterations takes minutes per step: one step after the first.
        steps=3
        [ "$s" = broyden ] && [ "$it" = 300 ] && steps=2
        "$PY" $PEERS/train_step.py --solver $s --max-iter $it --steps $steps --threads "$THREADS" \
            >> "$WORK/train_steps.jsonl"
    done
done

if [ -z "${SKIP_CRITERION:-}" ]; then
    log "criterion benches (warm-up 1 s, measurement 2 s)"
    for b in solvers overhead kernels; do
        cargo bench -p deq-benches --bench $b -- --warm-up-time 1 --measurement-time 2 --noplot \
            2>&1 | tee "$WORK/criterion_$b.txt"
    done
fi

log "report"
"$PY" $PEERS/report.py --work "$WORK" --out BENCHMARKS.md --svg-dir "$RES" \
    --criterion "$CARGO_TARGET_DIR/criterion" --threads "$THREADS"
log "wrote BENCHMARKS.md"
