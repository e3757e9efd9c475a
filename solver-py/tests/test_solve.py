"""deqsolve.solve on host memory: answers checked in float64, one solver per sample
(a sample's result is its solo solve's, bit for bit), per-sample statuses, NaN and ∞
confined to their sample, NumPy and torch agreeing, settings reaching the solver, and
memory that does not depend on max_iters."""

import numpy as np
import pytest

import deqsolve
from conftest import Layers


@pytest.mark.parametrize("solver,memory", [("broyden", 8), ("anderson", 5), ("picard", 1)])
def test_answers_meet_the_tolerance_in_float64(layers, solver, memory):
    contractive = Layers(24, [0.5, 0.9, 0.7, 0.8], seed=5)
    lay = layers if solver != "picard" else contractive
    z, info = deqsolve.solve(lay.f, lay.zeros(), solver=solver, memory=memory, max_iters=300)
    assert info["status"] == ["converged"] * lay.samples, info
    fz = lay.f64(z)
    res = np.linalg.norm(fz - z, axis=1)
    # f is evaluated in float32; the float64 residual of the float32 answer is within
    # the tolerance up to float32 rounding of f.
    assert np.all(res <= 1e-6 * np.linalg.norm(fz, axis=1) + 2e-6), res
    # The reported residual is the answer's own (recomputed from float32 f).
    f32 = lay.f(z)
    mine = np.linalg.norm((f32 - z).astype(np.float64), axis=1)
    assert np.allclose(info["residual_abs"], mine, rtol=1e-4, atol=1e-9), (info["residual_abs"], mine)
    assert np.allclose(info["residual_rel"], mine / np.linalg.norm(f32, axis=1), rtol=1e-4)
    for key in ("iterations", "f_evals", "residual_abs", "residual_rel", "restarts"):
        assert isinstance(info[key], np.ndarray) and info[key].shape == (lay.samples,), key


def test_each_sample_is_its_own_solve(layers):
    z, info = deqsolve.solve(layers.f, layers.zeros(), max_iters=200)
    assert len(set(info["f_evals"].tolist())) > 1, "the samples should stop at different rounds"
    for b in range(layers.samples):
        zb, ib = deqsolve.solve(layers.sample(b), layers.zeros()[b : b + 1], max_iters=200)
        assert np.array_equal(zb[0], z[b]), b
        for key in ("iterations", "f_evals", "residual_abs", "residual_rel", "restarts"):
            assert ib[key][0] == info[key][b], (b, key)
        assert ib["status"] == [info["status"][b]]


def test_a_stopped_sample_keeps_its_answer(layers):
    z, info = deqsolve.solve(layers.f, layers.zeros(), max_iters=200)
    first = int(np.argmin(info["f_evals"]))
    done = int(info["f_evals"][first])
    # f is called once per round with the whole batch: after its last evaluation, the
    # stopped sample is handed its answer, unchanged.
    assert len(layers.calls) == info["f_evals"].max()
    for call in layers.calls[done:]:
        assert np.array_equal(call[first], z[first])


def test_every_status_in_one_batch():
    # Per-sample maps for damped iteration: a contraction (converged), a slow one with a
    # small budget (max_iterations), an oscillation that never improves (stalled), an
    # expansion (diverged), and NaN (non_finite).
    def f(z):
        out = np.empty_like(z)
        out[0] = 0.5 * z[0] + 1.0
        out[1] = 0.999 * z[1] + 1.0
        out[2] = -z[2]
        out[3] = 3.0 * z[3] + 1.0
        out[4] = np.nan
        return out

    z0 = np.ones((5, 3), dtype=np.float32)
    z, info = deqsolve.solve(f, z0, solver="picard", max_iters=40, stall_iters=20)
    assert info["status"] == ["converged", "max_iterations", "stalled", "diverged", "non_finite"]
    assert info["f_evals"][4] == 1
    assert np.array_equal(z[4], z0[4]), "a sample whose first evaluation is NaN keeps its start"
    assert np.all(np.isfinite(z))


def test_picard_return_image_returns_f_of_the_converged_point():
    # A contraction per sample and one that cannot converge in the budget: the converged
    # samples come back as f(z) of the point the report describes, the other unchanged.
    def f(z):
        out = np.empty_like(z)
        out[0] = 0.5 * np.tanh(z[0]) + 1.0
        out[1] = 0.9 * z[1] + 0.1
        out[2] = 0.999 * z[2] + 1.0
        return out

    z0 = np.zeros((3, 4), dtype=np.float32)
    plain, info = deqsolve.solve(f, z0, solver="picard", max_iters=200, tol_rel=1e-5)
    image, info2 = deqsolve.solve(f, z0, solver="picard", max_iters=200, tol_rel=1e-5, return_image=True)
    assert info["status"] == info2["status"] == ["converged", "converged", "max_iterations"]
    assert np.array_equal(info["residual_abs"], info2["residual_abs"])
    want = f(plain)
    assert np.array_equal(image[:2], want[:2])
    assert np.array_equal(image[2], plain[2])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_output_ends_only_its_sample(layers, bad):
    clean_z, clean = deqsolve.solve(layers.f, layers.zeros())
    sick, at = 3, 4
    calls = [0]

    def f(z):
        calls[0] += 1
        out = layers.f(z)
        if calls[0] == at:
            out[sick, 5] = bad
        return out

    z, info = deqsolve.solve(f, layers.zeros())
    for b in range(layers.samples):
        if b == sick:
            assert info["status"][b] == "non_finite"
            assert info["f_evals"][b] == at
            assert np.all(np.isfinite(z[b]))
        else:
            assert info["status"][b] == clean["status"][b] == "converged"
            assert np.array_equal(z[b], clean_z[b])
            assert info["f_evals"][b] == clean["f_evals"][b]


def test_numpy_and_torch_inputs_agree_bit_for_bit(layers):
    torch = pytest.importorskip("torch")
    z_np, i_np = deqsolve.solve(layers.f, layers.zeros(), solver="anderson")
    z_t, i_t = deqsolve.solve(layers.torch_f(), torch.zeros(layers.samples, layers.dim), solver="anderson")
    assert isinstance(z_t, torch.Tensor) and z_t.dtype == torch.float32
    assert np.array_equal(z_t.numpy(), z_np)
    assert i_t["status"] == i_np["status"]
    assert np.array_equal(i_t["f_evals"], i_np["f_evals"])


def test_shapes_beyond_two_axes_and_one_axis():
    # [B, L, h]: each sample is a whole [L, h] block.
    lay = Layers(12, [0.6, 0.8, 0.9, 0.5, 0.7, 0.6], seed=1)
    f3 = lambda z: lay.f(z.reshape(6, 12)).reshape(z.shape)  # noqa: E731
    z3, i3 = deqsolve.solve(f3, np.zeros((6, 3, 4), np.float32))
    z2, i2 = deqsolve.solve(lay.f, np.zeros((6, 12), np.float32))
    assert z3.shape == (6, 3, 4) and np.array_equal(z3.reshape(6, 12), z2)
    # [B]: each sample is one number.
    z1, i1 = deqsolve.solve(lambda z: np.cos(z), np.zeros(3, np.float32))
    assert i1["status"] == ["converged"] * 3 and np.allclose(z1, 0.7390851, atol=1e-6)


def test_z0_is_not_modified(layers):
    z0 = layers.zeros() + 0.25
    before = z0.copy()
    z, _ = deqsolve.solve(layers.f, z0)
    assert np.array_equal(z0, before) and not np.shares_memory(z, z0)


def test_settings_reach_the_solver(layers):
    lay = Layers(24, [0.99, 1.2], seed=7)
    kw = dict(max_iters=300, memory=2)
    _, drop = deqsolve.solve(lay.f, lay.zeros(), history="drop_oldest", **kw)
    _, restart = deqsolve.solve(lay.f, lay.zeros(), history="restart", **kw)
    assert restart["restarts"].min() > 0 and not np.array_equal(drop["f_evals"], restart["f_evals"])
    _, plain = deqsolve.solve(lay.f, lay.zeros(), solver="picard", max_iters=500)
    _, damped = deqsolve.solve(lay.f, lay.zeros(), solver="picard", damping=0.5, max_iters=500)
    assert np.all(damped["iterations"] > plain["iterations"])
    _, tight = deqsolve.solve(lay.f, lay.zeros(), tol_rel=0.0, tol_abs=1e-3)
    _, loose = deqsolve.solve(lay.f, lay.zeros(), tol_rel=0.0, tol_abs=1e-1)
    assert np.all(loose["iterations"] < tight["iterations"]) and np.all(tight["residual_abs"] <= 1e-3)
    _, capped = deqsolve.solve(lay.f, lay.zeros(), tol_rel=0.0, max_iters=3)
    assert capped["status"] == ["max_iterations"] * 2 and np.all(capped["iterations"] == 3)


def test_defaults_are_solver_cores():
    assert deqsolve.defaults("broyden") == {
        "divergence_factor": 1e4,
        "history": "drop_oldest",
        "line_search": False,
        "max_backtracks": 4,
        "skip_tol": 1e-6,
        "reject_growth": 2.0,
    }
    assert deqsolve.defaults("picard") == {"divergence_factor": 1e4, "damping": 1.0, "return_image": False}
    o = deqsolve.OPTIONS_DEFAULTS
    assert (o["max_iters"], o["tol_abs"], o["stall_iters"]) == (100, 0.0, 50)
    assert o["tol_rel"] == pytest.approx(1e-6)


@pytest.mark.parametrize("solver,memory,floats", [("broyden", 8, 2 * 8 + 5), ("anderson", 5, 2 * 5 + 4), ("picard", 1, 2)])
def test_memory_is_exact_and_independent_of_max_iters(layers, solver, memory, floats):
    b, d = layers.samples, layers.dim
    sizes = set()
    for max_iters in (3, 30, 300):
        _, info = deqsolve.solve(layers.f, layers.zeros(), solver=solver, memory=memory, max_iters=max_iters,
                                 tol_rel=0.0, stall_iters=0)
        sizes.add(info["memory_bytes"])
    gram = 4 * (2 * memory * memory + memory) if solver == "anderson" else 0
    # Each sample's solver, plus the batch's points and best iterates.
    assert sizes == {b * (4 * d * floats + gram) + 2 * 4 * b * d}
