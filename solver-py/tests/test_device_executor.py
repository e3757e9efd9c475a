"""The device path computes what the host path computes.

``executor="torch"`` runs Broyden's vector operations as torch operations on the
tensors' device (here the CPU, the only device CI has), with solver-core's state machine
deciding; ``executor="host"`` runs the same decisions with Rust's kernels. Same
statuses, same f-evaluations, answers within 1e-5 relative, for every setting that
changes which operations run (a wrapping history under both policies, the line search,
no rejection, budgets and stalls, a NaN)."""

import numpy as np
import pytest

import deqsolve
from conftest import Layers

torch = pytest.importorskip("torch")

CASES = [
    dict(),
    dict(memory=3),
    dict(memory=3, history="restart"),
    dict(memory=4, line_search=True),
    dict(memory=4, reject_growth=float("inf")),
    dict(max_iters=7),
    dict(tol_rel=0.0, max_iters=12),
]


def both(f, z0, **kwargs):
    host = deqsolve.solve(f, z0, executor="host", **kwargs)
    dev = deqsolve.solve(f, z0, executor="torch", **kwargs)
    return host, dev


def assert_agree(host, dev):
    (zh, ih), (zd, id_) = host, dev
    assert ih["status"] == id_["status"]
    assert np.array_equal(ih["f_evals"], id_["f_evals"]), (ih["f_evals"], id_["f_evals"])
    assert np.array_equal(ih["iterations"], id_["iterations"])
    assert np.array_equal(ih["restarts"], id_["restarts"])
    err = (zd - zh).flatten(1).norm(dim=1) / zh.flatten(1).norm(dim=1).clamp_min(1e-12)
    assert err.max() <= 1e-5, err
    assert np.allclose(ih["residual_abs"], id_["residual_abs"], rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("kwargs", CASES, ids=[str(c) or "defaults" for c in CASES])
def test_same_statuses_evaluations_and_answers(kwargs):
    lay = Layers(32, [0.5, 0.9, 0.99, 1.2, 0.7, 1.1], seed=11)
    host, dev = both(lay.torch_f(), torch.zeros(lay.samples, lay.dim), max_iters=kwargs.pop("max_iters", 200), **kwargs)
    assert_agree(host, dev)


def test_a_stalled_sample_among_converging_ones():
    # Sample 1 has no fixed point (f(z) = z + 1/8, exact in float32 from z = 0): its
    # residual never improves, its updates are all skipped (Δg = 0), and it stalls; the
    # others converge.
    lay = Layers(16, [0.6, 0.9, 0.8], seed=5)

    def f(z):
        y = lay.torch_f()(z)
        y[1] = z[1] + 0.125
        return y

    host, dev = both(f, torch.zeros(3, 16), stall_iters=6)
    assert_agree(host, dev)
    assert host[1]["status"] == ["converged", "stalled", "converged"]


def test_a_sequence_state_with_a_nan_sample():
    # [B, L, h] with per-token layers, and a NaN in sample 2 at its 5th evaluation.
    lay = Layers(16, [0.8, 0.95, 1.1, 0.6], seed=2)
    calls = []

    def f(z):
        calls.append(1)
        b, l, h = z.shape
        y = torch.tanh(torch.einsum("bij,blj->bli", torch.from_numpy(lay.w), z) + torch.from_numpy(lay.c)[:, None])
        if len(calls) == 5:
            y[2, 1, 3] = float("nan")
        return y

    z0 = torch.zeros(4, 3, 16)
    host = deqsolve.solve(f, z0, executor="host")
    calls.clear()
    dev = deqsolve.solve(f, z0, executor="torch")
    assert_agree(host, dev)
    assert host[1]["status"][2] == "non_finite" and host[1]["f_evals"][2] == 5
    assert torch.isfinite(dev[0]).all()


def test_device_memory_is_exact():
    lay = Layers(20, [0.5, 0.9, 0.7], seed=4)
    b, d, m = lay.samples, lay.dim, 6
    for max_iters in (10, 100):
        _, info = deqsolve.solve(lay.torch_f(), torch.zeros(b, d), executor="torch", memory=m,
                                 max_iters=max_iters, tol_rel=0.0, stall_iters=0)
        # U, V; x, g, p, xn, gn; the best iterates and the batch of points.
        assert info["memory_bytes"] == 4 * b * d * (2 * m + 5 + 2)


def test_the_device_path_keeps_its_vectors_on_the_device():
    # The answer is a tensor of the input's kind, and f only ever sees tensors.
    seen = set()
    lay = Layers(8, [0.5, 0.6], seed=9)

    def f(z):
        seen.add((type(z).__name__, z.dtype, z.device.type, tuple(z.shape)))
        return lay.torch_f()(z)

    z, info = deqsolve.solve(f, torch.zeros(2, 8), executor="torch")
    assert seen == {("Tensor", torch.float32, "cpu", (2, 8))}
    assert isinstance(z, torch.Tensor) and info["status"] == ["converged"] * 2


def test_the_device_path_never_gathers_rows():
    # When only some samples take part in an operation (others have stopped, or wait for
    # another kind), it runs on views of consecutive samples: no gather (aten::index,
    # index_select, gather, take, masked_select) copies U or V, so the device memory
    # stays what memory_bytes says.
    lay = Layers(64, [0.5, 0.9, 0.99, 1.2, 0.7, 1.1], seed=12)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        _, info = deqsolve.solve(lay.torch_f(), torch.zeros(lay.samples, lay.dim), executor="torch", memory=3)
    assert len(set(info["f_evals"].tolist())) > 1, "the samples should stop at different rounds"
    gathering = {
        "aten::index",
        "aten::index_select",
        "aten::gather",
        "aten::take",
        "aten::take_along_dim",
        "aten::masked_select",
    }
    gathers = [e.key for e in prof.key_averages() if e.key in gathering]
    assert gathers == [], gathers


def test_a_stopped_sample_is_handed_its_answer():
    # Sample 1's f is NaN beyond |z| = 0.3: it stops non_finite at its best finite point,
    # and from then on f is handed that point (not the bad one), on both paths.
    for executor in ("host", "torch"):
        seen = []

        def f(z):
            seen.append(z.clone())
            y = torch.tanh(0.5 * z + 1.0)
            if z[1].abs().max() > 0.3:
                y[1] = float("nan")
            return y

        z, info = deqsolve.solve(f, torch.zeros(3, 4), executor=executor)
        assert info["status"] == ["converged", "non_finite", "converged"], executor
        stop = int(info["f_evals"][1])
        assert stop < len(seen)
        for arg in seen[stop:]:
            assert torch.equal(arg[1], z[1]), executor
