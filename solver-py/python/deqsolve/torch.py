"""Differentiable fixed points for PyTorch, without torchdeq.

``fixed_point(f, z0)`` returns ``z* = f(z*)`` (per sample) with a gradient: the backward
pass solves the implicit-function-theorem system

    w = (∂f/∂z)ᵀ w + ∂L/∂z*       (at z*, one sample at a time)

with the same solver and the same bounded memory as the forward solve, using
vector–Jacobian products of one retained evaluation ``f(z*)`` (``torch.autograd.grad``),
and then hands ``w`` to that evaluation, so gradients reach ``f``'s parameters and its
inputs as ``wᵀ ∂f/∂θ``. Neither pass keeps anything per iteration.

>>> import torch, deqsolve.torch
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> layer = torch.nn.Linear(16, 16)
>>> with torch.no_grad():
...     layer.weight *= 0.5 / torch.linalg.matrix_norm(layer.weight, 2)
>>> x = torch.randn(4, 16, requires_grad=True)
>>> z, info = deqsolve.torch.fixed_point(lambda z: torch.tanh(layer(z) + x), torch.zeros(4, 16))
>>> z.sum().backward()
>>> info["status"], layer.weight.grad.shape, x.grad.shape
(['converged', 'converged', 'converged', 'converged'], torch.Size([16, 16]), torch.Size([4, 16]))
"""

import torch

from . import _batch

__all__ = ["fixed_point"]


class _Implicit(torch.autograd.Function):
    """Identity on ``z*`` in the forward pass; in the backward pass, the gradient
    ``∂L/∂z*`` becomes ``w``, the solution of the IFT system, handed to ``f(z*)``."""

    @staticmethod
    def forward(ctx, fz, z_star, z_in, kwargs, on_backward):
        ctx.save_for_backward(fz, z_in)
        ctx.kwargs, ctx.on_backward = kwargs, on_backward
        return z_star.clone()

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            # create_graph=True: w is the solver's answer, not a graph, so a gradient of
            # this gradient would silently miss every term through w. (torch's
            # once_differentiable does not catch torch.autograd.grad(…, inputs=…).)
            raise RuntimeError(
                "deqsolve.torch.fixed_point: the implicit gradient is first-order only; "
                "it cannot be computed with create_graph=True"
            )
        fz, z_in = ctx.saved_tensors
        grad = grad.contiguous()

        def vjp(w):
            (jw,) = torch.autograd.grad(fz, z_in, w, retain_graph=True, allow_unused=True)
            # f may not depend on z at all (then ∂f/∂z = 0 and w = ∂L/∂z*).
            return grad.clone() if jw is None else jw + grad

        w, info, _ = _batch.run(vjp, torch.zeros_like(grad), **ctx.kwargs)
        if ctx.on_backward is not None:
            ctx.on_backward(info)
        return w, None, None, None, None


def _needs_gradients(fz, z_in):
    """Whether ``fz = f(z_in)`` depends on a tensor requiring gradients other than
    ``z_in`` (a parameter, an input): only then is there anything to differentiate."""
    seen, stack = set(), [fz.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # the AccumulateGrad node of a leaf
        if leaf is not None and leaf is not z_in:
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


def _kwargs(solver_kwargs):
    """``deqsolve.solve``'s keyword arguments with their defaults filled in."""
    return {**_batch.DEFAULTS, **solver_kwargs}


def fixed_point(f, z0, *, backward=None, on_backward=None, **solver_kwargs):
    """Solves ``z = f(z)`` for every sample of ``z0`` and returns ``(z, info)`` like
    ``deqsolve.solve``, with ``z`` differentiable.

    Args:
        f: maps a batch like ``z0`` to its image; may close over parameters and inputs
            that require gradients.
        z0: the starting points, a float32 tensor ``[B, ...]`` on any device (not
            differentiated through: the answer does not depend on it).
        backward: keyword arguments for the backward solve that differ from the forward
            one (by default the backward solve uses the same solver and settings).
        on_backward: called with the backward solve's ``info`` dict once it is done.
        **solver_kwargs: ``deqsolve.solve``'s keyword arguments (``solver``, ``memory``,
            ``max_iters``, tolerances, settings, ``executor``).

    The gradient is first-order: asking for it with ``create_graph=True`` (to differentiate
    it again) raises instead of dropping the terms through the backward solve.

    The forward solve runs without building a graph. When gradients are enabled and
    ``f`` depends on something that requires them, ``f`` is evaluated once more at
    ``z*`` with a graph, which the backward pass reuses for every vector–Jacobian
    product; ``z``'s value is the solver's answer (``info`` describes it).
    """
    if not isinstance(z0, torch.Tensor):
        raise TypeError(f"deqsolve.torch.fixed_point: z0 must be a torch tensor, not {type(z0).__name__}")
    kwargs = _kwargs(solver_kwargs)
    back = _kwargs({**solver_kwargs, **(backward or {})})
    # The backward solve's settings are checked now, not after the forward pass.
    _batch.check(z0, **back)
    with torch.no_grad():
        z_star, info, _ = _batch.run(f, z0, **kwargs)
    if not torch.is_grad_enabled():
        return z_star, info
    z_in = z_star.detach().requires_grad_()
    with torch.enable_grad():
        fz = f(z_in)
    _batch.Batch(z_star).check_output(fz)
    if not _needs_gradients(fz, z_in):
        return z_star, info
    return _Implicit.apply(fz, z_star, z_in, back, on_backward), info
