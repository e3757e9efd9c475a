"""The solve loop behind ``deqsolve.solve``, ``deqsolve.torch`` and the torchdeq plug-in.

One solver state per sample (the first axis of ``z0``), all of solver-core's making;
``f`` is called once per round with the whole batch. Where the vector work runs:

* ``"host"``: NumPy arrays and CPU tensors. Rust's solvers (``_native.HostBatch``) read
  and write the batch in place: ``f``'s argument is a view of one buffer of points, its
  output is read where ``f`` put it, the best iterates are written into the array that
  is returned. Nothing is copied per round beyond what the solvers themselves keep.
* ``"torch"``: any device. Broyden's decisions are made in Rust
  (``_native.OffloadBatch``); its vectors ``U``, ``V``, … are torch tensors on
  ``z0``'s device, operated on by ``deqsolve._executor.TorchVectors``; per round only
  the scalars the decisions need (norms, ``vᵀΔg``, finiteness flags) reach the host.
"""

import math
import sys

import numpy as np

from . import _native

#: The stopping rule's defaults, from solver-core (``Options::DEFAULT``).
OPTIONS_DEFAULTS = dict(_native.options_defaults())

#: Every default of a solve's keyword arguments but the solver's own settings: the
#: stopping rule's, Broyden, and a history of 8 (what ``deqsolve.solve`` documents).
DEFAULTS = dict(solver="broyden", memory=8, **OPTIONS_DEFAULTS)


def _torch():
    """The torch module if it is imported (a tensor can only exist then)."""
    return sys.modules.get("torch")


class Batch:
    """``z0`` checked and seen as ``B`` samples of ``d`` values: its kind (``"numpy"``
    or ``"torch"``), shape, device, and a flat ``[B, d]`` view."""

    def __init__(self, z0):
        torch = _torch()
        if isinstance(z0, np.ndarray):
            self.kind, self.device = "numpy", None
            dtype, contiguous = z0.dtype, z0.flags.c_contiguous
            float32 = dtype == np.float32
            is_float = np.issubdtype(dtype, np.floating)
        elif torch is not None and isinstance(z0, torch.Tensor):
            self.kind, self.device = "torch", z0.device
            dtype, contiguous = z0.dtype, z0.is_contiguous()
            float32 = dtype == torch.float32
            is_float = dtype.is_floating_point
        else:
            raise TypeError(f"deqsolve: z0 must be a NumPy array or a torch tensor, not {type(z0).__name__}")
        if not float32:
            if is_float and str(dtype).endswith("float64"):
                raise TypeError(
                    f"deqsolve: z0 is float64; the solvers are float32 for now "
                    "(solver-core has no f64 solver yet): pass a float32 array"
                )
            raise TypeError(f"deqsolve: z0 must be float32, not {dtype}")
        if z0.ndim < 1 or z0.shape[0] == 0:
            raise ValueError(f"deqsolve: z0 must have shape [B, ...] with B ≥ 1 samples, not {tuple(z0.shape)}")
        self.shape = tuple(z0.shape)
        self.samples = self.shape[0]
        self.dim = math.prod(self.shape[1:])
        if self.dim == 0:
            raise ValueError(f"deqsolve: z0 has samples of size 0 (shape {self.shape})")
        if not contiguous:
            hint = ".contiguous()" if self.kind == "torch" else "np.ascontiguousarray(...)"
            raise ValueError(f"deqsolve: z0 must be C-contiguous; pass {hint}")
        self.value = z0.detach() if self.kind == "torch" else z0

    def describe(self, x):
        """What ``x`` is, for an error message."""
        torch = _torch()
        if isinstance(x, np.ndarray):
            return f"a NumPy array of {x.dtype}, shape {tuple(x.shape)}"
        if torch is not None and isinstance(x, torch.Tensor):
            return f"a tensor of {x.dtype}, shape {tuple(x.shape)}, on {x.device}"
        return f"a {type(x).__name__}"

    def check_output(self, y):
        """``y = f(batch)`` checked to be like ``z0`` (type, dtype, shape, device), as a
        contiguous value of the same kind."""
        torch = _torch()
        if self.kind == "numpy":
            # A wrong kind or dtype is a TypeError, a wrong shape or device a ValueError.
            typed = isinstance(y, np.ndarray) and y.dtype == np.float32
            placed = typed and tuple(y.shape) == self.shape
            want = f"a NumPy array of float32, shape {self.shape}"
        else:
            typed = isinstance(y, torch.Tensor) and y.dtype == torch.float32
            placed = typed and tuple(y.shape) == self.shape and y.device == self.device
            want = f"a tensor of torch.float32, shape {self.shape}, on {self.device}"
        if not placed:
            error = ValueError if typed else TypeError
            raise error(f"deqsolve: f returned {self.describe(y)}; expected {want}, like its argument")
        if self.kind == "torch":
            return y.detach().contiguous()
        return np.ascontiguousarray(y)


class Recorder:
    """What the torchdeq protocol asks for beyond the answer: each sample's best iterate
    after given iteration counts (``indexing``), and its best residual after every
    iteration (traces). Fed after every round with the solvers' progress."""

    def __init__(self, batch, indexing, trace, max_iters):
        self.indexing = [int(k) for k in (indexing or ())]
        if any(k < 0 for k in self.indexing):
            raise ValueError(f"deqsolve: indexing must hold iteration counts ≥ 0, not {self.indexing}")
        b = batch.samples
        self.taken = [np.zeros(b, dtype=bool) for _ in self.indexing]
        self.snaps = [None for _ in self.indexing]
        self.trace = trace
        #: Whether anything is recorded (when not, the solvers' progress is not read).
        self.active = bool(self.indexing) or trace
        if trace:
            self.abs = np.full((b, max_iters + 1), np.nan, dtype=np.float32)
            self.rel = np.full((b, max_iters + 1), np.nan, dtype=np.float32)

    def observe(self, solves, z, take_rows):
        """After a round: ``solves.progress()`` gives ``(iterations, best_abs, best_rel)``
        per sample, ``z`` the best iterates ``[B, d]``, ``take_rows(z, mask, into)``
        copies rows."""
        if not self.active:
            return
        its, best_abs, best_rel = solves.progress()
        for k, (want, taken) in enumerate(zip(self.indexing, self.taken)):
            new = (its >= want) & ~taken
            if new.any():
                self.snaps[k] = take_rows(z, new, self.snaps[k])
                taken |= new
        if self.trace:
            rows = np.arange(len(its))
            cols = np.minimum(its, self.abs.shape[1] - 1)
            self.abs[rows, cols] = best_abs
            self.rel[rows, cols] = best_rel

    def finish(self, z, take_rows, iterations, shape):
        """Completes ``states``, the snapshots shaped like ``z0`` (rows never reached are
        the final iterates), and pads the traces after each sample's last iteration with
        its final value."""
        self.states = [take_rows(z, ~taken, snap).reshape(shape) for snap, taken in zip(self.snaps, self.taken)]
        if self.trace:
            for t in (self.abs, self.rel):
                for b, n in enumerate(iterations):
                    t[b, n + 1 :] = t[b, min(n, t.shape[1] - 1)]


def _numpy_rows(z, mask, into):
    into = np.empty_like(z) if into is None else into
    into[mask] = z[mask]
    return into


def _torch_rows(z, mask, into):
    torch = _torch()
    into = torch.empty_like(z) if into is None else into
    idx = torch.from_numpy(np.nonzero(mask)[0]).to(z.device)
    into[idx] = z[idx]
    return into


def choose_executor(config, batch, executor):
    """Where the vector work of a solve configured by ``config`` runs for ``batch``:
    ``"host"`` or ``"torch"`` (see the module's documentation); an error for a choice
    that cannot work, before anything is allocated."""
    if executor not in ("auto", "host", "torch"):
        raise ValueError(f'deqsolve: executor must be "auto", "host" or "torch", not {executor!r}')
    on_host = batch.kind == "numpy" or batch.device.type == "cpu"
    if executor == "auto":
        executor = "host" if on_host else "torch"
    if executor == "host" and not on_host:
        raise ValueError(f'deqsolve: executor="host" needs z0 in host memory; it is on {batch.device}')
    if executor == "torch" and batch.kind != "torch":
        raise ValueError('deqsolve: executor="torch" needs z0 to be a torch tensor')
    if executor == "torch" and config.solver != "broyden":
        where = "" if on_host else f" for a tensor on {batch.device}"
        raise ValueError(
            f'deqsolve: the device executor{where} runs Broyden only, not "{config.solver}" '
            "(Anderson's and Picard's vector work is not split into device operations yet): "
            'use solver="broyden", or a CPU tensor'
        )
    return executor


def check(z0, *, solver, memory, max_iters, tol_abs, tol_rel, stall_iters, executor="auto", settings=None, **more):
    """Raises what ``run`` with these arguments would raise before its first call of
    ``f`` (bad settings, a bad ``z0``, an executor that cannot take it); returns the
    solve's ``(config, batch, executor)``. The solver's own settings are ``settings``
    and ``more`` together."""
    config = _native.Config(solver, memory, max_iters, tol_abs, tol_rel, stall_iters, {**(settings or {}), **more})
    batch = Batch(z0)
    return config, batch, choose_executor(config, batch, executor)


def run(f, z0, *, indexing=None, trace=False, **kwargs):
    """Solves every sample of ``z0`` (``kwargs`` as for ``check``); returns
    ``(z, info, recorder)``: the answer shaped like ``z0``, the info dict, and the
    recorder, whose ``states`` are the best iterates at the ``indexing`` counts (shaped
    like ``z0``) and whose ``abs``/``rel`` are the traces (when ``trace``)."""
    config, batch, executor = check(z0, **kwargs)
    recorder = Recorder(batch, indexing, trace, config.max_iters)
    if executor == "host":
        z, info = _run_host(f, batch, config, recorder)
    else:
        z, info = _run_torch(f, batch, config, recorder)
    return z, info, recorder


def _run_host(f, batch, config, recorder):
    b, d = batch.samples, batch.dim
    solvers = _native.HostBatch(config, b, d)
    start = batch.value.numpy() if batch.kind == "torch" else batch.value
    z = np.array(start.reshape(b, d), dtype=np.float32, copy=True)
    points = np.empty_like(z)
    if batch.kind == "torch":
        torch = _torch()
        arg = torch.from_numpy(points).view(batch.shape)
    else:
        arg = points.reshape(batch.shape)
    running = solvers.start(z, points)
    recorder.observe(solvers, z, _numpy_rows)
    while running:
        y = batch.check_output(f(arg))
        out = (y.numpy() if batch.kind == "torch" else y).reshape(b, d)
        if np.may_share_memory(out, points) or np.may_share_memory(out, z):
            out = out.copy()
        running = solvers.advance(out, z, points)
        recorder.observe(solvers, z, _numpy_rows)
    info = dict(solvers.reports())
    info["memory_bytes"] = solvers.memory_bytes + z.nbytes + points.nbytes
    recorder.finish(z, _numpy_rows, info["iterations"], batch.shape)
    if batch.kind == "torch":
        # The answers as tensors over the same memory.
        torch = _torch()
        recorder.states = [torch.from_numpy(s) for s in recorder.states]
        z = torch.from_numpy(z)
    return z.reshape(batch.shape), info


def _run_torch(f, batch, config, recorder):
    from ._executor import TorchVectors

    vectors = TorchVectors(f, batch, config.memory)
    solves = _native.OffloadBatch(config, batch.samples, vectors)
    recorder.observe(solves, vectors.z, _torch_rows)
    running = True
    while running:
        # The round that returns 0 still carries out the stopping samples' last operations.
        running = solves.round()
        recorder.observe(solves, vectors.z, _torch_rows)
    info = dict(solves.reports())
    info["memory_bytes"] = vectors.memory_bytes
    recorder.finish(vectors.z, _torch_rows, info["iterations"], batch.shape)
    return vectors.z.view(batch.shape), info
