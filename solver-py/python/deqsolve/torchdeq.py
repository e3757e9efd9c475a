"""deqsolve's solvers as torchdeq solvers.

>>> import deqsolve.torchdeq
>>> deqsolve.torchdeq.register()
['deqsolve_broyden', 'deqsolve_anderson', 'deqsolve_picard']

after which ``torchdeq.get_deq(f_solver="deqsolve_broyden", b_solver="deqsolve_broyden",
ift=True)`` runs the forward fixed point and the implicit backward pass with our
Broyden: its history is ``memory`` pairs (8 by default), not one column per iteration.

The torchdeq protocol, as its own solvers follow it: a solver is called as
``solver(func, x0, max_iter, tol, stop_mode, indexing, **kwargs)`` and returns
``(z, states, stats)``:

* ``stop_mode="abs"`` stops a sample at ``‖f(z) − z‖ ≤ tol``, ``"rel"`` at
  ``‖f(z) − z‖ ≤ tol·‖f(z)‖`` (torchdeq adds 1e-9 to the denominator; we do not).
  Each sample stops on its own (torchdeq stops when the whole batch has converged).
* ``states`` holds, for each count ``k`` of ``indexing``, every sample's best iterate after
  ``k`` iterations (its final one if it stopped sooner); empty without ``indexing``.
* ``stats`` is a ``torchdeq.solver.stat.SolverStat``: ``abs_lowest``, ``rel_lowest``
  (the residuals of the returned ``z``), ``abs_trace``, ``rel_trace`` (``[B, max_iter + 1]``:
  the lowest residual after each iteration, padded with the final one), ``nstep`` (the
  iteration at which the returned ``z`` was reached).
* Keyword arguments: deqsolve's own (``memory``, ``history``, ``damping``, …, see
  ``deqsolve.solve``) and torchdeq's where they mean the same thing: ``ls`` (Broyden's
  line search), ``LBFGS_thres`` (Broyden's history), ``m`` (Anderson's history), ``tau``
  (damping of Anderson and Picard). Any other keyword is ignored, as torchdeq's solvers
  ignore theirs.
"""

import numpy as np
import torch

from . import _batch

__all__ = ["register", "solver"]

SOLVERS = ("broyden", "anderson", "picard")

# torchdeq's keyword arguments that mean one of ours, per solver.
_TRANSLATE = {
    "broyden": {"ls": "line_search", "LBFGS_thres": "memory"},
    "anderson": {"m": "memory", "tau": "damping"},
    "picard": {"tau": "damping"},
}

_OURS = {"memory", "stall_iters", "executor"}


def _accepted(name):
    """The keyword arguments of ours that solver ``name`` takes."""
    return set(_batch._native.settings_defaults(name)) | _OURS


def _settings(name, kwargs):
    """The keyword arguments of a torchdeq call that deqsolve understands, in our names
    (``None``, torchdeq's "not given", is left out)."""
    accepted = _accepted(name)
    out = {}
    for key, value in kwargs.items():
        ours = _TRANSLATE[name].get(key, key)
        if ours in accepted and value is not None:
            out[ours] = value
    return out


def solver(name, **defaults):
    """The torchdeq solver function for deqsolve's ``name`` (``"broyden"``,
    ``"anderson"`` or ``"picard"``). ``defaults`` are keyword arguments of
    ``deqsolve.solve`` applied to every call unless the call says otherwise (torchdeq's
    IFT backward passes only ``max_iter``, ``tol`` and ``stop_mode``, so this is how the
    backward solve gets, say, ``memory=16`` or ``stall_iters=0``)."""
    if name not in SOLVERS:
        raise ValueError(f"deqsolve: no solver named {name!r}; choose from {SOLVERS}")
    unknown = sorted(k for k in defaults if _TRANSLATE[name].get(k, k) not in _accepted(name))
    if unknown:
        raise TypeError(f"deqsolve: unknown defaults for {name}: {unknown}")
    fixed = _settings(name, defaults)

    def deqsolve_solver(func, x0, max_iter=50, tol=1e-3, stop_mode="abs", indexing=None, **kwargs):
        if stop_mode not in ("abs", "rel"):
            raise ValueError(f'deqsolve: stop_mode must be "abs" or "rel", not {stop_mode!r}')
        tol_abs, tol_rel = (tol, 0.0) if stop_mode == "abs" else (0.0, tol)
        # torchdeq passes whatever strides its tensors have (its IFT backward starts
        # from zeros_like(grad)); the protocol has no contiguity requirement.
        x0 = x0.contiguous()
        settings = {**_batch.DEFAULTS, **fixed, **_settings(name, kwargs)}
        settings.update(solver=name, max_iters=int(max_iter), tol_abs=float(tol_abs), tol_rel=float(tol_rel))
        z, info, rec = _batch.run(func, x0, indexing=indexing or (), trace=True, **settings)
        return z, list(rec.states), _stats(info, rec, stop_mode, x0.device)

    deqsolve_solver.__name__ = deqsolve_solver.__qualname__ = f"deqsolve_{name}"
    deqsolve_solver.__doc__ = f"deqsolve's {name} as a torchdeq solver (see deqsolve.torchdeq)."
    return deqsolve_solver


def _stats(info, rec, stop_mode, device):
    from torchdeq.solver.stat import SolverStat

    trace = rec.abs if stop_mode == "abs" else rec.rel
    lowest = info["residual_abs"] if stop_mode == "abs" else info["residual_rel"]
    # The first iteration whose lowest residual is the final one.
    nstep = np.argmax(trace == lowest[:, None], axis=1).astype(np.float32)
    as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return SolverStat(
        abs_lowest=as_tensor(info["residual_abs"]),
        rel_lowest=as_tensor(info["residual_rel"]),
        abs_trace=as_tensor(rec.abs),
        rel_trace=as_tensor(rec.rel),
        nstep=as_tensor(nstep),
    )


def register(prefix="deqsolve_", **defaults):
    """Registers ``{prefix}broyden``, ``{prefix}anderson`` and ``{prefix}picard`` with
    torchdeq (``torchdeq.solver.register_solver``); returns their names. ``defaults``
    (``deqsolve.solve`` keyword arguments, such as ``memory``) apply to every call of
    the solvers that accept them."""
    from torchdeq.solver import register_solver

    known = set().union(*(_accepted(n) for n in SOLVERS))
    if set(defaults) - known:
        raise TypeError(f"deqsolve: unknown defaults: {sorted(set(defaults) - known)}")
    names = []
    for name in SOLVERS:
        mine = {k: v for k, v in defaults.items() if k in _accepted(name)}
        register_solver(prefix + name, solver(name, **mine))
        names.append(prefix + name)
    return names
