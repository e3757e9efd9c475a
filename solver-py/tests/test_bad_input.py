"""Bad input is a Python exception with a clear message, raised before any work or at
the round where ``f`` misbehaves, and leaves ``z0`` as it was; an exception raised by
``f`` reaches the caller unchanged."""

import numpy as np
import pytest

import deqsolve

torch = pytest.importorskip("torch")


def f_ok(z):
    return 0.5 * np.cos(z)


Z0 = np.zeros((3, 4), dtype=np.float32)


def raises(exc, match, *args, **kwargs):
    z0 = kwargs.pop("z0", Z0)
    before = z0.copy() if isinstance(z0, np.ndarray) else None
    with pytest.raises(exc, match=match):
        deqsolve.solve(*args, z0, **kwargs) if args else deqsolve.solve(f_ok, z0, **kwargs)
    if before is not None:
        assert np.array_equal(z0, before)


@pytest.mark.parametrize(
    "z0,exc,match",
    [
        (np.zeros((3, 4), dtype=np.int32), TypeError, "must be float32, not int32"),
        (np.zeros((3, 4), dtype=np.float64), TypeError, "float64.*f64 solver"),
        (np.zeros((3, 4), dtype=np.float16), TypeError, "must be float32, not float16"),
        (np.zeros((4, 3), dtype=np.float32).T, ValueError, "C-contiguous"),
        (np.zeros((0, 4), dtype=np.float32), ValueError, "B ≥ 1"),
        (np.zeros((3, 0), dtype=np.float32), ValueError, "size 0"),
        (np.float32(1.0), TypeError, "NumPy array or a torch tensor, not float32"),
        ([[0.0, 1.0]], TypeError, "NumPy array or a torch tensor, not list"),
    ],
)
def test_bad_z0(z0, exc, match):
    with pytest.raises(exc, match=match):
        deqsolve.solve(f_ok, z0)


def test_bad_tensor_z0():
    with pytest.raises(TypeError, match="must be float32, not torch.int64"):
        deqsolve.solve(f_ok, torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"C-contiguous; pass \.contiguous\(\)"):
        deqsolve.solve(f_ok, torch.zeros(4, 3).t())
    with pytest.raises(TypeError, match="float64"):
        deqsolve.solve(f_ok, torch.zeros(3, 4, dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(memory=0), ValueError, "memory must be at least 1, not 0"),
        (dict(memory=-3), ValueError, "memory must be at least 1"),
        (dict(tol_rel=float("nan")), ValueError, "tol_rel must be a finite number ≥ 0, not nan"),
        (dict(tol_abs=-1e-3), ValueError, "tol_abs must be a finite number ≥ 0"),
        (dict(tol_abs=float("inf")), ValueError, "tol_abs must be a finite number"),
        (dict(max_iters=-1), ValueError, "max_iters must be an integer from 0"),
        (dict(stall_iters=2**40), ValueError, "stall_iters must be an integer from 0"),
        (dict(max_iters=2.5), TypeError, "max_iters must be an integer, not float"),
        (dict(memory=True), TypeError, "memory must be an integer, not bool"),
        (dict(tol_rel="1e-6"), TypeError, "tol_rel must be a number, not str"),
        (dict(damping=None, solver="picard"), TypeError, "damping must be a number, not NoneType"),
        (dict(indexing=[3]), TypeError, "unexpected keyword argument 'indexing'"),
        (dict(solver="newton"), ValueError, 'solver must be "broyden", "anderson" or "picard"'),
        (dict(history="lru"), ValueError, 'history must be "drop_oldest" or "restart"'),
        (dict(line_search="yes"), TypeError, "line_search must be True or False"),
        (dict(max_backtracks=300), ValueError, "max_backtracks must be from 0 to 255"),
        (dict(skip_tol=float("nan")), ValueError, r"skip_tol must be a number in \[0, 1\)"),
        (dict(reject_growth=0.0), ValueError, "reject_growth must be a number > 0"),
        (dict(divergence_factor=float("nan")), ValueError, "divergence_factor must be a number > 0"),
        (dict(solver="anderson", damping=0.0), ValueError, r"damping must be in \(0, 1\]"),
        (dict(solver="anderson", reg=-1.0), ValueError, "reg must be a finite number ≥ 0"),
        (dict(solver="picard", damping=1.5), ValueError, r"damping must be in \(0, 1\]"),
        (dict(solver="picard", history="restart"), TypeError, "unexpected keyword argument 'history' for solver \"picard\""),
        (dict(dampign=0.5), TypeError, "unexpected keyword argument 'dampign'.*settings are: divergence_factor, history"),
        (dict(executor="gpu"), ValueError, 'executor must be "auto", "host" or "torch"'),
        (dict(executor="torch"), ValueError, 'executor="torch" needs z0 to be a torch tensor'),
    ],
)
def test_bad_settings(kwargs, exc, match):
    calls = []

    def f(z):
        calls.append(1)
        return f_ok(z)

    with pytest.raises(exc, match=match):
        deqsolve.solve(f, Z0, **kwargs)
    assert calls == [], "settings are checked before f is ever called"


@pytest.mark.parametrize(
    "out,exc,match",
    [
        (lambda z: z.astype(np.float64), TypeError, "f returned a NumPy array of float64, shape \\(3, 4\\); expected a NumPy array of float32, shape \\(3, 4\\)"),
        (lambda z: z[:2], ValueError, "f returned a NumPy array of float32, shape \\(2, 4\\); expected"),
        (lambda z: z.reshape(4, 3), ValueError, "shape \\(4, 3\\)"),
        (lambda z: z.tolist(), TypeError, "f returned a list"),
        (lambda z: None, TypeError, "f returned a NoneType"),
        (lambda z: torch.from_numpy(z.copy()), TypeError, "f returned a tensor of torch.float32"),
    ],
)
def test_bad_output_of_f(out, exc, match):
    raises(exc, match, out)


def test_bad_output_of_f_for_tensors():
    z0 = torch.zeros(3, 4)
    cases = [
        (lambda z: z.double(), TypeError, "f returned a tensor of torch.float64"),
        (lambda z: z[:, :2], ValueError, r"shape \(3, 2\)"),
        (lambda z: z.numpy(), TypeError, "f returned a NumPy array"),
        (lambda z: z.to("meta"), ValueError, "on meta; expected a tensor of torch.float32, shape \\(3, 4\\), on cpu"),
    ]
    for out, exc, match in cases:
        before = z0.clone()
        with pytest.raises(exc, match=match):
            deqsolve.solve(out, z0)
        with pytest.raises(exc, match=match):
            deqsolve.solve(out, z0, executor="torch")
        assert torch.equal(z0, before)


def test_an_output_that_goes_bad_later_is_caught_at_that_round():
    calls = []

    def f(z):
        calls.append(1)
        return f_ok(z) if len(calls) < 3 else f_ok(z)[:, :1]

    with pytest.raises(ValueError, match="shape \\(3, 1\\)"):
        deqsolve.solve(f, Z0)
    assert len(calls) == 3


class Boom(Exception):
    pass


@pytest.mark.parametrize("executor", ["host", "torch"])
def test_an_exception_in_f_propagates_unchanged(executor):
    boom = Boom("from f")
    calls = []

    def f(z):
        calls.append(1)
        if len(calls) == 4:
            raise boom
        return torch.cos(z) * 0.5

    z0 = torch.zeros(3, 4)
    with pytest.raises(Boom) as caught:
        deqsolve.solve(f, z0, executor=executor)
    assert caught.value is boom
    assert len(calls) == 4
    assert torch.equal(z0, torch.zeros(3, 4))


def test_f_may_return_its_argument_or_a_non_contiguous_array():
    # The identity: every point is a fixed point.
    z, info = deqsolve.solve(lambda z: z, Z0 + 1.0)
    assert info["status"] == ["converged"] * 3 and np.array_equal(z, Z0 + 1.0)
    # A transposed copy is made contiguous.
    z, info = deqsolve.solve(lambda z: np.ascontiguousarray(f_ok(z).T).T, Z0)
    assert info["status"] == ["converged"] * 3


def test_the_device_executor_is_broyden_only():
    with pytest.raises(ValueError, match='the device executor runs Broyden only, not "anderson"'):
        deqsolve.solve(lambda z: z, torch.zeros(3, 4), solver="anderson", executor="torch")


def test_a_device_tensor_cannot_use_the_host_executor():
    z0 = torch.zeros(3, 4, device="meta")
    with pytest.raises(ValueError, match='executor="host" needs z0 in host memory; it is on meta'):
        deqsolve.solve(lambda z: z, z0, executor="host")


def test_fixed_point_checks_the_backward_settings_before_the_forward_pass():
    import deqsolve.torch

    calls = []

    def f(z):
        calls.append(1)
        return torch.cos(z) * 0.5

    with pytest.raises(ValueError, match="memory must be at least 1"):
        deqsolve.torch.fixed_point(f, torch.zeros(3, 4), backward=dict(memory=0))
    with pytest.raises(TypeError, match="unexpected keyword argument 'dampign'"):
        deqsolve.torch.fixed_point(f, torch.zeros(3, 4), backward=dict(dampign=0.5))
    assert calls == []
