"""Bounded-memory fixed-point solvers for deep equilibrium models (DEQs).

``deqsolve.solve(f, z0)`` finds ``z = f(z)`` for every sample of a batch with
solver-core's Broyden (inverse Jacobian kept as ``−I + U Vᵀ`` with at most ``memory``
pairs), Anderson or damped fixed-point iteration. The whole memory of a solve is fixed by
the batch's size and ``memory``: it does not grow with ``max_iters``.

>>> import numpy as np, deqsolve
>>> rng = np.random.default_rng(0)
>>> W = (0.5 / np.sqrt(16) * rng.standard_normal((16, 16))).astype(np.float32)
>>> x = rng.standard_normal((4, 16)).astype(np.float32)
>>> z, info = deqsolve.solve(lambda z: np.tanh(z @ W.T + x), np.zeros((4, 16), np.float32))
>>> info["status"]
['converged', 'converged', 'converged', 'converged']
>>> bool(np.abs(np.tanh(z @ W.T + x) - z).max() < 1e-5)
True

For PyTorch: ``deqsolve.torch.fixed_point`` (differentiable: the implicit backward pass
runs the same solver in the same bounded memory) and ``deqsolve.torchdeq.register``
(our solvers as torchdeq's ``f_solver`` / ``b_solver``).
"""

from . import _batch, _native
from ._batch import DEFAULTS, OPTIONS_DEFAULTS

__all__ = ["solve", "defaults"]
__version__ = "0.1.0"

_D = DEFAULTS


def defaults(solver="broyden"):
    """The settings ``solve`` accepts for ``solver`` (beyond the stopping rule), with
    their defaults: solver-core's own.

    >>> import deqsolve
    >>> deqsolve.defaults("anderson")
    {'divergence_factor': 10000.0, 'damping': 1.0, 'reg': 1e-06}
    """
    return dict(_native.settings_defaults(solver))


def solve(f, z0, *, solver=_D["solver"], memory=_D["memory"], max_iters=_D["max_iters"], tol_abs=_D["tol_abs"],
          tol_rel=_D["tol_rel"], stall_iters=_D["stall_iters"], executor="auto", **settings):
    """Finds ``z = f(z)`` for every sample of ``z0``; returns ``(z, info)``.

    Args:
        f: maps a batch like ``z0`` (same type, shape, dtype and device) to its image.
            It is called once per round with the whole batch; a sample that has stopped
            is passed its answer and what ``f`` returns for it is ignored. ``f`` must
            treat samples independently and must not keep its argument (its buffer is
            reused), and its output must not be written by another thread while the
            solve reads it. An exception raised by ``f`` propagates unchanged. torch's
            grad mode is left as it is: call ``solve`` under ``torch.no_grad()`` unless
            ``f`` needs gradients (``deqsolve.torch.fixed_point`` and the torchdeq
            plug-in do that for you). Under ``torch.autocast``, ``f`` must still return
            float32.
        z0: the starting points, ``[B, ...]``, float32, C-contiguous: a NumPy array or a
            torch tensor on any device. Not modified.
        solver: ``"broyden"``, ``"anderson"`` or ``"picard"``.
        memory: the history depth: Broyden's pairs, Anderson's differences (≥ 1).
        max_iters, tol_abs, tol_rel, stall_iters: the stopping rule. A sample has
            converged when ``‖f(z) − z‖ ≤ tol_abs + tol_rel·‖f(z)‖`` (norms over the
            sample); it stalls after ``stall_iters`` iterations without improving (0: never).
        executor: where the vector work runs: ``"host"`` (Rust, in place, for NumPy
            arrays and CPU tensors), ``"torch"`` (torch operations on the tensors' device;
            Broyden only) or ``"auto"`` (host memory on the host, other devices in torch).
        **settings: the solver's own settings, with solver-core's defaults
            (``deqsolve.defaults(solver)``): ``divergence_factor`` for all;
            Broyden's ``history`` (``"drop_oldest"`` or ``"restart"``), ``line_search``,
            ``max_backtracks``, ``skip_tol``, ``reject_growth``; Anderson's ``damping``,
            ``reg``; Picard's ``damping``, ``return_image`` (a converged solve
            returns ``f(z)``, one step past the tested point, as torchdeq's
            ``fixed_point_iter`` does).

    Returns:
        ``z``: the best iterate of every sample, like ``z0``. ``info``: a dict with
        ``status`` (a list of ``"converged"``, ``"max_iterations"``, ``"stalled"``,
        ``"diverged"``, ``"non_finite"``), ``iterations``, ``f_evals``, ``residual_abs``,
        ``residual_rel``, ``restarts`` (NumPy arrays of length ``B``, describing the
        returned ``z``) and ``memory_bytes`` (everything the solve allocated for its
        vectors). A NaN or ∞ from ``f`` ends that sample with ``"non_finite"``; its ``z`` is
        its best finite iterate.

    Raises:
        TypeError, ValueError: bad ``z0``, settings, or output of ``f`` (nothing is
        returned or modified).
    """
    z, info, _ = _batch.run(f, z0, solver=solver, memory=memory, max_iters=max_iters, tol_abs=tol_abs,
                            tol_rel=tol_rel, stall_iters=stall_iters, executor=executor, settings=settings)
    return z, info


def __getattr__(name):
    # deqsolve.torch and deqsolve.torchdeq import torch (an optional dependency) only
    # when they are first used.
    if name in ("torch", "torchdeq"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
