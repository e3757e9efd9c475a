"""The torchdeq plug-in obeys torchdeq's solver protocol: registration, the call
signature (as torchdeq's forward and IFT backward make it), ``stop_mode`` and ``tol``,
``indexing``, the statistics, and torchdeq's own keyword arguments."""

import numpy as np
import pytest

import deqsolve
from conftest import Layers

torch = pytest.importorskip("torch")
torchdeq = pytest.importorskip("torchdeq")

import deqsolve.torchdeq  # noqa: E402
from torchdeq.solver import get_solver  # noqa: E402
from torchdeq.solver.stat import SolverStat  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def registered():
    assert deqsolve.torchdeq.register() == ["deqsolve_broyden", "deqsolve_anderson", "deqsolve_picard"]
    assert deqsolve.torchdeq.register(prefix="ours.") == ["ours.broyden", "ours.anderson", "ours.picard"]


@pytest.fixture
def lay():
    return Layers(20, [0.5, 0.9, 0.99, 1.2], seed=13)


def test_registered_solvers_are_found_by_torchdeq():
    for name in ("broyden", "anderson", "picard"):
        fn = get_solver(f"deqsolve_{name}")
        assert fn.__name__ == f"deqsolve_{name}"
        assert get_solver(f"ours.{name}").__name__ == fn.__name__


@pytest.mark.parametrize("name", ["broyden", "anderson", "picard"])
def test_the_call_and_return_protocol(lay, name):
    solver = get_solver(f"deqsolve_{name}")
    lowest_lay = Layers(20, [0.5, 0.9, 0.7, 0.6], seed=13) if name == "picard" else lay
    f = lowest_lay.torch_f()
    z0 = torch.zeros(4, 4, 5)
    g = lambda z: f(z.reshape(4, 20)).reshape(4, 4, 5)  # noqa: E731
    z, states, stats = solver(g, x0=z0, max_iter=60, tol=1e-5, stop_mode="abs", indexing=None)
    assert z.shape == z0.shape and z.dtype == torch.float32 and states == []
    assert isinstance(stats, SolverStat)
    for key in ("abs_lowest", "rel_lowest", "nstep"):
        assert stats[key].shape == (4,) and stats[key].device == z0.device, key
    for key in ("abs_trace", "rel_trace"):
        assert stats[key].shape == (4, 61), key
    # The statistics describe the returned z, recomputed.
    fz = g(z)
    res = (fz - z).flatten(1).norm(dim=1)
    assert torch.all(res <= 1e-5 * 1.001)
    assert torch.allclose(stats["abs_lowest"], res, rtol=1e-3, atol=1e-9)
    assert torch.allclose(stats["rel_lowest"], res / fz.flatten(1).norm(dim=1), rtol=1e-3)
    # The traces: the lowest residual after each iteration, non-increasing, ending with it.
    trace = stats["abs_trace"]
    assert torch.all(trace[:, 1:] <= trace[:, :-1])
    assert torch.equal(trace[:, -1], stats["abs_lowest"])
    assert torch.all(stats["nstep"] <= 60) and torch.all(stats["nstep"] >= 1)
    rows = torch.arange(4)
    assert torch.equal(trace[rows, stats["nstep"].long()], stats["abs_lowest"])


def test_stop_modes_map_onto_our_tolerances(lay):
    solver = get_solver("deqsolve_broyden")
    f = lay.torch_f()
    z0 = torch.zeros(4, 20)
    z, _, stats = solver(f, z0, max_iter=100, tol=1e-3, stop_mode="rel")
    fz = f(z)
    assert torch.all((fz - z).norm(dim=1) <= 1e-3 * fz.norm(dim=1))
    assert torch.all(stats["rel_lowest"] <= 1e-3)
    plain, info = deqsolve.solve(f, z0, tol_rel=1e-3, tol_abs=0.0)
    assert torch.equal(z, plain)
    z, _, _ = solver(f, z0, max_iter=100, tol=1e-3, stop_mode="abs")
    plain, _ = deqsolve.solve(f, z0, tol_rel=0.0, tol_abs=1e-3)
    assert torch.equal(z, plain)
    with pytest.raises(ValueError, match='stop_mode must be "abs" or "rel"'):
        solver(f, z0, stop_mode="max")


def test_indexing_gives_the_best_iterate_after_each_count(lay):
    solver = get_solver("deqsolve_broyden")
    f = lay.torch_f()
    z0 = torch.zeros(4, 20)
    z, states, _ = solver(f, z0, max_iter=40, tol=1e-6, stop_mode="rel", indexing=[0, 2, 5, 9, 1000])
    assert len(states) == 5
    for k, state in zip([0, 2, 5, 9, 1000], states):
        # A solve stopped after k iterations holds, per sample, the same best iterate
        # (or the final one, for a sample that converged sooner).
        after_k, _ = deqsolve.solve(f, z0, max_iters=min(k, 40), tol_rel=1e-6)
        assert torch.equal(state, after_k), k
    assert torch.equal(states[-1], z)


def test_indexing_on_the_device_path_too(lay):
    solver = get_solver("deqsolve_broyden")
    f = lay.torch_f()
    z0 = torch.zeros(4, 20)
    _, host, _ = solver(f, z0, max_iter=40, tol=1e-6, stop_mode="rel", indexing=[3, 7])
    _, dev, _ = solver(f, z0, max_iter=40, tol=1e-6, stop_mode="rel", indexing=[3, 7], executor="torch")
    for a, b in zip(host, dev):
        assert (a - b).norm() <= 1e-5 * a.norm()


def test_torchdeq_keyword_arguments(lay):
    f = lay.torch_f()
    z0 = torch.zeros(4, 20)
    broyden = get_solver("deqsolve_broyden")
    _, _, with_ls = broyden(f, z0, max_iter=50, tol=1e-6, stop_mode="rel", ls=True)
    _, info = deqsolve.solve(f, z0, max_iters=50, line_search=True)
    assert np.array_equal(with_ls["abs_lowest"].numpy(), info["residual_abs"])
    z3, _, _ = broyden(f, z0, max_iter=50, tol=1e-6, stop_mode="rel", LBFGS_thres=3)
    assert torch.equal(z3, deqsolve.solve(f, z0, max_iters=50, memory=3)[0])
    anderson = get_solver("deqsolve_anderson")
    za, _, _ = anderson(f, z0, max_iter=50, tol=1e-6, stop_mode="rel", m=4, tau=0.8, lam=1e-4)
    assert torch.equal(za, deqsolve.solve(f, z0, solver="anderson", max_iters=50, memory=4, damping=0.8)[0])
    picard = get_solver("deqsolve_picard")
    zp, _, _ = picard(f, z0, max_iter=500, tol=1e-6, stop_mode="rel", tau=0.7)
    assert torch.equal(zp, deqsolve.solve(f, z0, solver="picard", max_iters=500, damping=0.7)[0])
    # Ours pass through; keywords that are not ours are ignored, as torchdeq does.
    zm, _, _ = broyden(f, z0, max_iter=50, tol=1e-6, stop_mode="rel", memory=2, return_final=True, foo=1)
    assert torch.equal(zm, deqsolve.solve(f, z0, max_iters=50, memory=2)[0])
    # Our own settings are still checked.
    with pytest.raises(ValueError, match="memory must be at least 1"):
        broyden(f, z0, memory=0)


def test_registered_defaults_reach_every_call(lay):
    names = deqsolve.torchdeq.register(prefix="tight_", memory=2, stall_iters=0, history="restart")
    f = lay.torch_f()
    z0 = torch.zeros(4, 20)
    # The IFT backward passes only max_iter, tol and stop_mode: the defaults still apply.
    z, _, stats = get_solver(names[0])(f, z0, max_iter=40, tol=0.0, stop_mode="abs")
    plain, info = deqsolve.solve(f, z0, max_iters=40, tol_rel=0.0, memory=2, stall_iters=0, history="restart")
    assert torch.equal(z, plain) and np.all(info["iterations"] == 40)
    # A call's own keyword wins over the default.
    z5, _, _ = get_solver(names[0])(f, z0, max_iter=40, tol=1e-6, stop_mode="rel", memory=5)
    assert torch.equal(z5, deqsolve.solve(f, z0, max_iters=40, memory=5, stall_iters=0, history="restart")[0])
    with pytest.raises(TypeError, match="unknown defaults: \\['memroy'\\]"):
        deqsolve.torchdeq.register(memroy=3)


def test_non_contiguous_tensors_from_torchdeq(lay):
    # A loss through z.t() makes the IFT backward start from zeros_like of a transposed
    # gradient: torchdeq's solvers take any strides, so ours do too.
    w = torch.nn.Parameter(torch.from_numpy(lay.w[0].copy()))
    c = torch.from_numpy(lay.c[:1].repeat(3, axis=0))
    weights = torch.randn(20, 3)
    grads = []
    for solver in ("broyden", "deqsolve_broyden"):
        w.grad = None
        deq = torchdeq.get_deq(f_solver=solver, b_solver=solver, ift=True, f_tol=1e-6, b_tol=1e-6,
                               f_stop_mode="rel", b_stop_mode="rel")
        z_out, _ = deq(lambda z: torch.tanh(z @ w.T + c), torch.zeros(3, 20))
        (z_out[-1].t() * weights).sum().backward()
        grads.append(w.grad.clone())
    assert (grads[1] - grads[0]).norm() <= 1e-3 * grads[0].norm()


def test_solver_defaults_in_torchdeqs_names():
    z0 = torch.zeros(2, 3)
    f = lambda z: torch.tanh(0.5 * z + 1.0)  # noqa: E731
    fn = deqsolve.torchdeq.solver("broyden", ls=True, LBFGS_thres=4, memory=None)
    z, _, _ = fn(f, z0, max_iter=30, tol=1e-6, stop_mode="rel")
    assert torch.equal(z, deqsolve.solve(f, z0, max_iters=30, memory=4, line_search=True)[0])
    with pytest.raises(TypeError, match=r"unknown defaults for picard: \['m'\]"):
        deqsolve.torchdeq.solver("picard", m=3)


def test_get_deq_uses_our_solver_in_both_passes(lay):
    calls = []
    inner = deqsolve.torchdeq.solver("broyden")

    def spy(func, x0, **kwargs):
        calls.append(sorted(kwargs))
        return inner(func, x0, **kwargs)

    torchdeq.solver.register_solver("spy", spy)
    w = torch.nn.Parameter(torch.from_numpy(lay.w[0].copy()))
    c = torch.from_numpy(lay.c[:1].repeat(3, axis=0))
    for core, forward in [("indexing", ["indexing", "max_iter", "stop_mode", "tol"]),
                          ("sliced", ["max_iter", "stop_mode", "tol"])]:
        calls.clear()
        w.grad = None
        deq = torchdeq.get_deq(core=core, f_solver="spy", b_solver="spy", ift=True, f_tol=1e-6, b_tol=1e-6)
        z_out, info = deq(lambda z: torch.tanh(z @ w.T + c), torch.zeros(3, 20))
        z_out[-1].sum().backward()
        assert w.grad is not None and torch.isfinite(w.grad).all()
        # The forward call and the IFT backward's (which passes no indexing).
        assert calls == [forward, ["max_iter", "stop_mode", "tol"]], core
