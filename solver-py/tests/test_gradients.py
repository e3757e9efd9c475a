"""Implicit gradients through deqsolve.torch.fixed_point and through torchdeq with our
registered Broyden, against the exact implicit gradient (a dense float64 solve of
``(I − ∂f/∂z)ᵀ w = ∂L/∂z*`` at a float64 Newton fixed point) and against torchdeq's own
Broyden."""

import numpy as np
import pytest

import deqsolve.torch  # noqa: F401  (deqsolve.torch is the submodule under test)

torch = pytest.importorskip("torch")
torchdeq = pytest.importorskip("torchdeq")

import deqsolve.torchdeq  # noqa: E402

H, P, B = 12, 6, 5


class Model(torch.nn.Module):
    """``z = tanh(W z + U x + b)``: 144 + 72 + 12 = 228 parameters."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        g = torch.Generator().manual_seed(42)
        w = torch.randn(H, H, generator=g, dtype=torch.float64)
        self.W = torch.nn.Parameter((0.8 * w / torch.linalg.matrix_norm(w, 2)).to(dtype))
        self.U = torch.nn.Parameter(torch.randn(H, P, generator=g, dtype=torch.float64).to(dtype))
        self.b = torch.nn.Parameter(0.1 * torch.randn(H, generator=g, dtype=torch.float64).to(dtype))

    def f(self, x):
        c = x @ self.U.T + self.b
        return lambda z: torch.tanh(z @ self.W.T + c)


def loss_of(z, weights):
    return (torch.sin(z) * weights).sum() + 0.5 * (z**2).sum()


def inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, P, generator=g, dtype=torch.float64)
    weights = torch.randn(B, H, generator=g, dtype=torch.float64)
    return x.to(dtype), weights.to(dtype)


def exact_gradients():
    """The implicit gradients of the loss w.r.t. W, U, b and x, in float64."""
    model = Model(torch.float64)
    x, weights = inputs(torch.float64)
    x = x.requires_grad_()
    f = model.f(x)
    with torch.no_grad():
        z = torch.zeros(B, H, dtype=torch.float64)
        for _ in range(60):  # Newton per sample, on g(z) = f(z) − z
            fz = f(z)
            s = 1.0 - fz**2
            for k in range(B):
                jac = s[k][:, None] * model.W - torch.eye(H, dtype=torch.float64)
                z[k] = z[k] - torch.linalg.solve(jac, fz[k] - z[k])
        assert (f(z) - z).abs().max() < 1e-14
    zs = z.clone().requires_grad_()
    (dl,) = torch.autograd.grad(loss_of(zs, weights), zs)
    fz = f(z)
    w = torch.empty_like(z)
    with torch.no_grad():
        for k in range(B):
            j = (1.0 - fz[k] ** 2)[:, None] * model.W  # ∂f/∂z of sample k
            w[k] = torch.linalg.solve((torch.eye(H, dtype=torch.float64) - j).T, dl[k])
    params = [model.W, model.U, model.b, x]
    return torch.autograd.grad(fz, params, w)


def relative_errors(got, want):
    return [float((g.double() - w).norm() / w.norm()) for g, w in zip(got, want)]


def ours(grads_of):
    model = Model()
    x, weights = inputs()
    x = x.requires_grad_()
    z = grads_of(model.f(x))
    loss_of(z, weights).backward()
    return [model.W.grad, model.U.grad, model.b.grad, x.grad]


def via_fixed_point(f):
    backward = []
    z, info = deqsolve.torch.fixed_point(f, torch.zeros(B, H), on_backward=backward.append)
    assert info["status"] == ["converged"] * B
    return z


def via_torchdeq(solver):
    def run(f):
        deq = torchdeq.get_deq(f_solver=solver, b_solver=solver, ift=True, f_max_iter=100, b_max_iter=100,
                               f_tol=1e-6, b_tol=1e-6, f_stop_mode="rel", b_stop_mode="rel")
        z_out, _ = deq(f, torch.zeros(B, H))
        return z_out[-1]

    return run


@pytest.fixture(scope="module")
def exact():
    return exact_gradients()


@pytest.fixture(scope="module", autouse=True)
def registered():
    deqsolve.torchdeq.register()


@pytest.mark.parametrize("solver", ["broyden", "anderson", "picard"])
def test_fixed_point_gradients_are_the_implicit_gradients(exact, solver):
    def run(f):
        z, info = deqsolve.torch.fixed_point(f, torch.zeros(B, H), solver=solver, max_iters=300,
                                             memory=5 if solver == "anderson" else 8)
        assert info["status"] == ["converged"] * B
        return z

    errs = relative_errors(ours(run), exact)
    assert max(errs) <= 1e-3, errs


def test_fixed_point_runs_the_backward_solve_with_the_same_solver(exact):
    infos = []
    model = Model()
    x, weights = inputs()
    z, _ = deqsolve.torch.fixed_point(model.f(x), torch.zeros(B, H), memory=3, on_backward=infos.append)
    loss_of(z, weights).backward()
    (back,) = infos
    assert back["status"] == ["converged"] * B
    # The backward solver's memory is the forward's: B samples, 3 pairs of H floats.
    assert back["memory_bytes"] == B * 4 * H * (2 * 3 + 5) + 2 * 4 * B * H
    # The backward solve can be configured on its own.
    infos.clear()
    z, _ = deqsolve.torch.fixed_point(model.f(x), torch.zeros(B, H), backward=dict(solver="picard", max_iters=4, tol_rel=0.0),
                                      on_backward=infos.append)
    loss_of(z, weights).backward()
    assert infos[0]["status"] == ["max_iterations"] * B and np.all(infos[0]["iterations"] == 4)


def test_torchdeq_with_our_broyden_gives_the_implicit_gradients(exact):
    errs = relative_errors(ours(via_torchdeq("deqsolve_broyden")), exact)
    assert max(errs) <= 1e-3, errs


def test_our_gradients_agree_with_torchdeqs_broyden(exact):
    theirs = ours(via_torchdeq("broyden"))
    # (torchdeq's own Broyden is itself within 1e-3 of the exact gradients here.)
    assert max(relative_errors(theirs, exact)) <= 1e-3
    for mine in (ours(via_fixed_point), ours(via_torchdeq("deqsolve_broyden"))):
        errs = [float((m - t).norm() / t.norm()) for m, t in zip(mine, theirs)]
        assert max(errs) <= 1e-3, errs


def test_no_graph_no_backward():
    model = Model()
    x, _ = inputs()
    with torch.no_grad():
        z, info = deqsolve.torch.fixed_point(model.f(x), torch.zeros(B, H))
    assert not z.requires_grad and info["status"] == ["converged"] * B


def test_nothing_to_differentiate_means_no_graph():
    # f depends on nothing that requires a gradient: the answer is a plain tensor, and
    # no backward solve can be triggered for nothing.
    z, info = deqsolve.torch.fixed_point(lambda z: torch.tanh(0.5 * z + 1.0), torch.zeros(2, 3))
    assert not z.requires_grad and z.grad_fn is None and info["status"] == ["converged"] * 2
    # A parameter inside a module counts.
    lin = torch.nn.Linear(3, 3)
    z, _ = deqsolve.torch.fixed_point(lambda z: torch.tanh(0.1 * lin(z)), torch.zeros(2, 3))
    assert z.requires_grad


def test_the_value_is_the_solvers_answer():
    model = Model()
    x, _ = inputs()
    z, info = deqsolve.torch.fixed_point(model.f(x), torch.zeros(B, H))
    plain, _ = deqsolve.solve(model.f(x.detach()), torch.zeros(B, H))
    assert torch.equal(z.detach(), plain)
    assert z.requires_grad


def test_second_order_gradients_raise_instead_of_being_wrong():
    model = Model()
    x, weights = inputs()
    x = x.requires_grad_()
    z, _ = deqsolve.torch.fixed_point(model.f(x), torch.zeros(B, H))
    with pytest.raises(RuntimeError, match="first-order only; it cannot be computed with create_graph=True"):
        torch.autograd.grad(loss_of(z, weights), x, create_graph=True)


def test_an_f_that_does_not_depend_on_z():
    # ∂f/∂z = 0: z* = f, and the gradient is ∂L/∂z* through f alone.
    x = torch.randn(3, 4, requires_grad=True)
    z, info = deqsolve.torch.fixed_point(lambda z: torch.tanh(x).expand_as(z).clone(), torch.zeros(3, 4))
    z.sum().backward()
    assert torch.allclose(x.grad, 1 - torch.tanh(x.detach()) ** 2, rtol=1e-6)


def test_fixed_point_wants_a_tensor():
    with pytest.raises(TypeError, match="z0 must be a torch tensor, not ndarray"):
        deqsolve.torch.fixed_point(lambda z: z, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"f returned a tensor of torch.float32, shape \(2, 2\)"):
        # f changes shape only when it is differentiated: caught before the backward pass.
        x = torch.zeros(2, 3, requires_grad=True)
        deqsolve.torch.fixed_point(lambda z: z[:, :2] + x[:, :2] if z.requires_grad else 0.5 * z + x.detach(),
                                   torch.zeros(2, 3))
