"""solver-core's generic vector operations in torch, on the device where the tensors are.

solver-core's Broyden state machine (in Rust, one per sample) decides everything; it
asks for its vector work one operation per sample and round, each a generic operation
of linear algebra on named vectors (``solver_core::broyden::ops``: copy, scale,
``x + αy``, a low-rank product, a dot product, a norm, a finiteness test, an evaluation
of ``f``; for the dense model of a small root solve, a unit vector, a rank-one update of
rows and a dense inverse). ``TorchVectors.execute`` carries out a round's operations for all samples
together, grouped by kind and by the classes of the vectors they name, and answers with
one scalar per sample, in one transfer to the host per round. It knows nothing of
Broyden's method: the encoding is ``deqsolve._native``'s (documented in
``solver-py/src/offload.rs``).

The vectors, all on ``z0``'s device (``B`` samples of ``d`` values, ``M`` pairs):

* ``vecs[0..5]``: the work vectors ``x``, ``g``, ``p``, ``xn``, ``gn``, each ``[B, d]``;
* ``u``, ``v``: the stored pairs, ``[B, M, d]`` each;
* ``z``: every sample's best iterate; ``points``: the batch handed to ``f``.

Low-rank products are batched matrix products at full float32 precision (never TF32 or
bf16, whatever ``torch.set_float32_matmul_precision`` says elsewhere); norms and dot
products are accumulated in float64.
"""

import contextlib

import numpy as np
import torch

from . import _native

BEST, U, V = _native.VEC_BEST, _native.VEC_U, _native.VEC_V


@contextlib.contextmanager
def _full_precision():
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved)


class TorchVectors:
    """The vectors of a batch of Broyden solves on ``batch``'s device, and the executor
    of ``deqsolve._native.OffloadBatch``'s protocol over them."""

    def __init__(self, f, batch, memory):
        b, d = batch.samples, batch.dim
        opts = dict(dtype=torch.float32, device=batch.device)
        self.f, self.batch = f, batch
        self.z = batch.value.reshape(b, d).clone()
        self.vecs = torch.zeros(5, b, d, **opts)
        self.vecs[0].copy_(self.z)
        self.u = torch.zeros(b, memory, d, **opts)
        self.v = torch.zeros(b, memory, d, **opts)
        self.points = torch.empty(b, d, **opts)
        self.slots = torch.arange(memory, device=batch.device)
        self.memory_bytes = 4 * sum(t.numel() for t in (self.z, self.vecs, self.u, self.v, self.points))

    def execute(self, codes, params):
        """Carries out one round: ``codes`` int64 ``[B, CODE_WIDTH]`` (kind and
        arguments per sample), ``params`` float32 ``[B]``; returns the float32 ``[B]``
        replies."""
        kinds = codes[:, 0]
        if (kinds == _native.OP_EVALUATE).any():
            self._evaluate(codes, np.nonzero(kinds == _native.OP_EVALUATE)[0])
            return np.zeros(len(kinds), dtype=np.float32)
        replies = torch.zeros(len(kinds), dtype=torch.float64, device=self.z.device)
        with torch.no_grad(), _full_precision():
            for kind in np.unique(kinds):
                handler, key = self._handlers.get(int(kind), (None, ()))
                if handler is None:
                    continue
                for rows in _groups(np.nonzero(kinds == kind)[0], codes, key):
                    for sl in _runs(rows):
                        handler(self, _Group(self, sl, codes[sl], params[sl]), replies)
        return replies.to(torch.float32).cpu().numpy()

    def _evaluate(self, codes, rows):
        """``out ← f(point)`` for the evaluating samples, in one call of ``f`` on the
        whole batch (a sample not evaluated this round gives its best iterate)."""
        with torch.no_grad():
            self.points.copy_(self.z)
            for group in _groups(rows, codes, (1, 2, 3, 4)):
                for sl in _runs(group):
                    self.points[sl] = _Group(self, sl, codes[sl], None).read(1)
        y = self.batch.check_output(self.f(self.points.view(self.batch.shape)))
        y = y.reshape(self.points.shape)
        with torch.no_grad():
            for group in _groups(rows, codes, (1, 2, 3, 4)):
                for sl in _runs(group):
                    _Group(self, sl, codes[sl], None).write(0, y[sl])

    # One operation on a group of samples that share its kind and its vectors (pair sets
    # and params may differ from sample to sample).

    def _copy(self, g, replies):
        g.write(0, g.read(1))

    def _scale(self, g, replies):
        g.write(0, g.param() * g.read(1))

    def _combine(self, g, replies):
        g.write(0, g.read(1) + g.param() * g.read(2))

    def _low_rank(self, g, replies):
        """``out ← out + alpha·Σ_{i∈pairs} aᵢ (bᵢ·x)``, over the rows ``i < end``, ``i ≠
        skip`` of each sample (``[n, M] × [n, M, d]`` batched products)."""
        end = g.ints(7)
        top = min(int(g.codes[:, 7].max()), self.u.shape[1])
        out, x = g.read(0), g.read(1)
        if top > 0:
            a = g.factor(int(g.codes[0, 5]))[:, :top]
            b = g.factor(int(g.codes[0, 6]))[:, :top]
            i = self.slots[None, :top]
            mask = (i < end[:, None]) & (i != g.ints(8)[:, None])
            coef = torch.bmm(b, x[:, :, None])[:, :, 0]
            coef = torch.where(mask, coef * g.param(), torch.zeros_like(coef))
            out = out + torch.bmm(coef[:, None, :], a)[:, 0, :]
        g.write(0, out)

    def _fill(self, g, replies):
        g.write(0, g.param().expand(len(g), self.z.shape[1]))

    def _dot(self, g, replies):
        replies[g.sel] = (g.read(0).double() * g.read(1).double()).sum(dim=1)

    def _norm(self, g, replies):
        replies[g.sel] = torch.linalg.vector_norm(g.read(0), dim=1, dtype=torch.float64)

    def _all_finite(self, g, replies):
        replies[g.sel] = torch.isfinite(g.read(0)).all(dim=1).double()

    # The dense-model operations: root solves of n ≤ m unknowns ask for them (those are
    # not offloaded, but every executor carries out the whole vocabulary).

    def _unit(self, g, replies):
        """``out ← value·e_index``, the index per sample (column 7)."""
        d = self.z.shape[1]
        hit = torch.arange(d, device=g.device)[None, :] == g.ints(7)[:, None]
        g.write(0, torch.where(hit, g.param().to(self.z.dtype), torch.zeros((), dtype=self.z.dtype, device=g.device)))

    def _add_outer(self, g, replies):
        """``aⱼ ← aⱼ + coef[j]·x`` for the rows ``j < rows`` (column 7) of the factor in
        column 1."""
        top = min(int(g.codes[:, 7].max()), self.u.shape[1], self.z.shape[1])
        if top <= 0:
            return
        coef, x = g.read(1), g.read(2)
        keep = self.slots[None, :top] < g.ints(7)[:, None]
        coef = torch.where(keep, coef[:, :top], torch.zeros_like(coef[:, :top]))
        g.factor(int(g.codes[0, 1]))[:, :top] += coef[:, :, None] * x[:, None, :]

    def _invert(self, g, replies):
        """With ``V``'s first ``d`` rows the columns of ``A``: ``uⱼ ← A⁻¹eⱼ + shift·eⱼ``,
        ``vⱼ ← eⱼ``; replies 1 where ``A`` was invertible (and ``rows`` is ``d``)."""
        d = self.z.shape[1]
        if d > self.u.shape[1]:
            return
        u, v = self.u[g.sel], self.v[g.sel]
        inverse, info = torch.linalg.inv_ex(v[:, :d].transpose(1, 2).double())
        eye = torch.eye(d, dtype=torch.float64, device=g.device)
        u[:, :d] = (inverse.transpose(1, 2) + g.param().double()[:, :, None] * eye).to(u.dtype)
        v[:, :d] = eye.to(v.dtype)
        ok = (info == 0) & torch.isfinite(u[:, :d]).flatten(1).all(dim=1) & (g.ints(7) == d)
        replies[g.sel] = ok.double()

    # kind: (handler, the code columns its samples must share: the vectors' classes and
    # rows and, for the low-rank product, the factors)
    _handlers = {
        _native.OP_COPY: (_copy, (1, 2, 3, 4)),
        _native.OP_SCALE: (_scale, (1, 2, 3, 4)),
        _native.OP_COMBINE: (_combine, (1, 2, 3, 4, 5, 6)),
        _native.OP_LOW_RANK: (_low_rank, (1, 2, 3, 4, 5, 6)),
        _native.OP_FILL: (_fill, (1, 2)),
        _native.OP_DOT: (_dot, (1, 2, 3, 4)),
        _native.OP_NORM: (_norm, (1, 2)),
        _native.OP_ALL_FINITE: (_all_finite, (1, 2)),
        _native.OP_UNIT: (_unit, (1, 2)),
        _native.OP_ADD_OUTER: (_add_outer, (1, 2, 3, 4, 5, 6)),
        _native.OP_INVERT: (_invert, ()),
    }


class _Group:
    """A run ``sel`` of consecutive samples that share an operation's kind and its
    vectors (class and row): their codes and params, and the vectors they name, read
    (``[n, d]``) and written by operand (0: A, 1: B, 2: C, the column pairs ``(1, 2)``,
    ``(3, 4)``, ``(5, 6)``). Every vector of the run, a row of ``U`` or ``V`` included,
    is a view of the run's consecutive samples: nothing is gathered, and writes land in
    place."""

    def __init__(self, vectors, sel, codes, params):
        self.t, self.sel, self.codes, self.params = vectors, sel, codes, params
        self.device = vectors.z.device

    def __len__(self):
        return len(self.codes)

    def ints(self, col):
        return torch.from_numpy(np.ascontiguousarray(self.codes[:, col])).to(self.device)

    def param(self):
        """The float argument, ``[n, 1]``."""
        return torch.from_numpy(np.ascontiguousarray(self.params)).to(self.device)[:, None]

    def factor(self, cls):
        """``U`` or ``V`` of the run's samples, ``[n, M, d]``."""
        return (self.t.u if cls == U else self.t.v)[self.sel]

    def read(self, k):
        cls = int(self.codes[0, 1 + 2 * k])
        if cls < 5:
            return self.t.vecs[cls][self.sel]
        if cls == BEST:
            return self.t.z[self.sel]
        return self.factor(cls)[:, int(self.codes[0, 2 + 2 * k])]

    def write(self, k, value):
        cls = int(self.codes[0, 1 + 2 * k])
        if cls < 5:
            self.t.vecs[cls][self.sel] = value
        elif cls == BEST:
            self.t.z[self.sel] = value
        else:
            self.factor(cls)[:, int(self.codes[0, 2 + 2 * k])] = value


def _groups(rows, codes, columns):
    """The samples of ``rows`` grouped by the values of the given code columns."""
    if not columns:
        yield rows
        return
    keys = codes[rows][:, list(columns)]
    for key in np.unique(keys, axis=0):
        yield rows[(keys == key).all(axis=1)]


def _runs(rows):
    """``rows`` (sorted sample indices) as slices of consecutive samples."""
    if len(rows) == 0:
        return []
    cuts = np.nonzero(np.diff(rows) != 1)[0] + 1
    return [slice(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, cuts)]
