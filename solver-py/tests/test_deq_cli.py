"""NumPy and torch inputs give the same answer as ``deq solve`` on the same layer.

``deq demo`` writes a model and an input; ``deq solve`` solves it (Rust: faer's matrix
product and a rational tanh within 4.2e-7 of the exact one); deqsolve solves the same
layer written in NumPy and in torch. The evaluations round differently, so the check is
the same statuses, f-evaluations within one, and answers within 1e-5 relative.

The ``deq`` binary is ``$DEQ_BIN`` (CI sets it; then it must exist), else the workspace's
``target/release/deq`` or ``target/debug/deq``; without one the test is skipped.
"""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import deqsolve

ROOT = pathlib.Path(__file__).resolve().parents[2]


def deq_binary():
    env = os.environ.get("DEQ_BIN")
    if env:
        assert pathlib.Path(env).is_file(), f"DEQ_BIN={env} does not exist"
        return env
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "deq"
        if candidate.is_file():
            return str(candidate)
    pytest.skip("no deq binary: build it with `cargo build --release -p solver-host` or set DEQ_BIN")


def read_safetensors(path):
    """The tensors of a safetensors file as NumPy arrays (the format: an 8-byte
    little-endian header length, a JSON header, then the data)."""
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32"
        lo, hi = t["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype="<f4").reshape(t["shape"]).copy()
    return out


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    deq = deq_binary()
    tmp = tmp_path_factory.mktemp("deq")
    model, inputs = tmp / "m.safetensors", tmp / "x.safetensors"
    subprocess.run([deq, "demo", "--model-out", model, "--input-out", inputs, "--hidden", "48",
                    "--input-width", "16", "--samples", "6", "--tokens", "3"], check=True, capture_output=True)
    results = {}
    for solver in ("broyden", "anderson", "picard"):
        out, report = tmp / f"z-{solver}.safetensors", tmp / f"r-{solver}.json"
        subprocess.run([deq, "solve", "--model", model, "--input", inputs, "--output", out, "--report", report,
                        "--solver", solver, "--memory", "5", "--max-iters", "300"], check=True, capture_output=True)
        results[solver] = (read_safetensors(out)["z"], json.loads(report.read_text()))
    return read_safetensors(model), read_safetensors(inputs)["x"], results


@pytest.mark.parametrize("solver", ["broyden", "anderson", "picard"])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_same_answer_as_deq_solve(solved, solver, kind):
    m, x, results = solved
    w, u, b = m["W"], m["U"], m["b"]
    c = x @ u.T + b  # the injection, per token
    z_deq, report = results[solver]
    if kind == "numpy":
        f, z0 = (lambda z: np.tanh(z @ w.T + c)), np.zeros_like(z_deq)
    else:
        torch = pytest.importorskip("torch")
        wt, ct = torch.from_numpy(w), torch.from_numpy(c)
        f, z0 = (lambda z: torch.tanh(z @ wt.T + ct)), torch.zeros(z_deq.shape)
    z, info = deqsolve.solve(f, z0, solver=solver, memory=5, max_iters=300)
    z = np.asarray(z)
    samples = report["samples"]
    assert info["status"] == [s["status"].replace("-", "_") for s in samples]
    assert np.all(np.abs(info["f_evals"] - np.array([s["f_evals"] for s in samples])) <= 1)
    err = np.linalg.norm((z - z_deq).reshape(6, -1), axis=1) / np.linalg.norm(z_deq.reshape(6, -1), axis=1)
    assert err.max() <= 1e-5, err
