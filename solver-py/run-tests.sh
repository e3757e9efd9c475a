#!/usr/bin/env bash
# The Python tests of deqsolve, from scratch: a virtual environment with the pinned test
# requirements (solver-py/.venv, reused while requirements-test.txt is unchanged), the
# package built from this checkout (`pip install ./solver-py`: maturin compiles the Rust
# extension), the `deq` binary for the agreement test, then pytest.
#
#   bash solver-py/run-tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(realpath -m "${DEQSOLVE_VENV:-solver-py/.venv}")
PY=$VENV/bin/python
if [ ! -x "$PY" ] || ! cmp -s solver-py/requirements-test.txt "$VENV/requirements.installed"; then
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -r solver-py/requirements-test.txt
    cp solver-py/requirements-test.txt "$VENV/requirements.installed"
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps ./solver-py
cargo build --release -p solver-host --bin deq
export DEQ_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/deq
cd solver-py
"$PY" -m pytest -q tests "$@"
