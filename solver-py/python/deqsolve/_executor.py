"""Broyden's vector operations in torch, on the device where the tensors are.

solver-core's Broyden state machine (in Rust, one per sample) decides everything: step
rejection, skipped updates, which history slot a pair takes, convergence, stall,
divergence. It asks for its vector work one operation per sample and round
(``solver_core::broyden::ops``); ``TorchVectors.execute`` carries out a round's
operations for all samples together, grouped by kind, and answers with the scalars the
decisions need, in one transfer to the host per round.

The vectors, all on ``z0``'s device (``B`` samples of ``d`` values, ``M`` pairs):

* ``vecs[0..5]``: ``x`` (the iterate), ``g`` (its residual), ``p`` (the step), ``xn``
  (the trial point), ``gn`` (its residual), each ``[B, d]``;
* ``u``, ``v``: the pairs of ``H = −I + U Vᵀ``, ``[B, M, d]`` each;
* ``z``: every sample's best iterate; ``points``: the batch handed to ``f``.

Products with the pairs are batched matrix products at full float32 precision (never
TF32 or bf16, whatever ``torch.set_float32_matmul_precision`` says elsewhere); norms and
dot products are accumulated in float64.
"""

import contextlib

import numpy as np
import torch

from . import _native

X, G, P, XN, GN = range(5)


@contextlib.contextmanager
def _full_precision():
    saved = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved)


def _norm(a):
    return torch.linalg.vector_norm(a, dim=1, dtype=torch.float64)


def _dot(a, b):
    return (a.double() * b.double()).sum(dim=1)


def _finite(a):
    return torch.isfinite(a).all(dim=1)


class TorchVectors:
    """The vectors of a batch of Broyden solves on ``batch``'s device, and the executor
    of ``deqsolve._native.OffloadBatch``'s protocol over them."""

    def __init__(self, f, batch, memory):
        b, d = batch.samples, batch.dim
        opts = dict(dtype=torch.float32, device=batch.device)
        self.f, self.batch = f, batch
        self.z = batch.value.reshape(b, d).clone()
        self.vecs = torch.zeros(5, b, d, **opts)
        self.vecs[X].copy_(self.z)
        self.u = torch.zeros(b, memory, d, **opts)
        self.v = torch.zeros(b, memory, d, **opts)
        self.points = torch.empty(b, d, **opts)
        self.slots = torch.arange(memory, device=batch.device)
        self.memory_bytes = 4 * sum(t.numel() for t in (self.z, self.vecs, self.u, self.v, self.points))

    def execute(self, codes, params):
        """Carries out one round: ``codes`` int64 ``[B, 4]`` (kind and integer arguments
        per sample), ``params`` float32 ``[B]``; returns float32 ``[B, 3]`` replies."""
        kinds = codes[:, 0]
        if (kinds == _native.OP_EVALUATE).any():
            self._evaluate(codes, np.nonzero(kinds == _native.OP_EVALUATE)[0])
            return np.zeros((len(kinds), 3), dtype=np.float32)
        replies = torch.zeros(len(kinds), 3, dtype=torch.float64, device=self.z.device)
        with torch.no_grad(), _full_precision():
            for kind in np.unique(kinds):
                handler, columns = self._handlers.get(int(kind), (None, ()))
                if handler is None:
                    continue
                for rows in self._groups(np.nonzero(kinds == kind)[0], codes, columns):
                    for sl in _runs(rows):
                        handler(self, sl, codes[sl], params[sl], replies)
        return replies.to(torch.float32).cpu().numpy()

    @staticmethod
    def _groups(rows, codes, columns):
        """The samples of ``rows`` grouped by the values of the given code columns (one
        group when there are none)."""
        if not columns:
            yield rows
            return
        keys = codes[rows][:, list(columns)]
        for key in np.unique(keys, axis=0):
            yield rows[(keys == key).all(axis=1)]

    def _pairs_mask(self, end, skip):
        """``[n, M]``: the rows ``i < end`` with ``i ≠ skip`` of each sample."""
        end = torch.from_numpy(end).to(self.z.device)[:, None]
        skip = torch.from_numpy(skip).to(self.z.device)[:, None]
        i = self.slots[None, :]
        return (i < end) & (i != skip)

    @staticmethod
    def _low_rank(a, b, vec, mask):
        """``Σᵢ bᵢ (aᵢ · vec)`` over the masked rows: ``[n, d]``."""
        coef = torch.bmm(a, vec[:, :, None])[:, :, 0]
        coef = torch.where(mask, coef, torch.zeros_like(coef))
        return torch.bmm(coef[:, None, :], b)[:, 0, :]

    def _evaluate(self, codes, rows):
        """``out ← f(point)`` for the evaluating samples, in one call of ``f`` on the
        whole batch (a stopped sample's row is its best iterate)."""
        with torch.no_grad():
            self.points.copy_(self.z)
            for group in self._groups(rows, codes, (1, 2)):
                point = int(codes[group[0], 1])
                for sl in _runs(group):
                    self.points[sl] = self.vecs[point][sl]
        y = self.batch.check_output(self.f(self.points.view(self.batch.shape)))
        y = y.reshape(self.points.shape)
        with torch.no_grad():
            for group in self._groups(rows, codes, (1, 2)):
                out = int(codes[group[0], 2])
                for sl in _runs(group):
                    self.vecs[out][sl] = y[sl]

    # Each operation on a run of consecutive samples `sl` that share the key columns of
    # their codes (so every tensor below is a view, never a copy of U or V).

    def _residual(self, sl, codes, params, replies):
        x, g, root = (int(c) for c in codes[0, 1:4])
        xv, gv = self.vecs[x][sl], self.vecs[g][sl]
        if root:
            scale = _norm(xv)
        else:
            scale = _norm(gv)
            gv = gv - xv
            self.vecs[g][sl] = gv
        replies[sl, 0] = _norm(gv)
        replies[sl, 1] = scale
        replies[sl, 2] = (_finite(xv) & _finite(gv)).double()

    def _keep_best(self, sl, codes, params, replies):
        self.z[sl] = self.vecs[int(codes[0, 1])][sl]

    def _trial(self, sl, codes, params, replies):
        if codes[0, 1]:
            self.vecs[P][sl] = self.vecs[G][sl]
        alpha = torch.from_numpy(params).to(self.z.device)[:, None]
        self.vecs[XN][sl] = self.vecs[X][sl] + alpha * self.vecs[P][sl]

    def _accept(self, sl, codes, params, replies):
        x, g, xn, gn = (self.vecs[k][sl] for k in (X, G, XN, GN))
        dz, dg = xn - x, gn - g
        mask = self._pairs_mask(codes[:, 1], codes[:, 2])
        v = -dz + self._low_rank(self.u[sl], self.v[sl], dz, mask)
        self.vecs[P][sl] = dz
        self.vecs[G][sl] = dg
        self.vecs[X][sl] = xn
        self.vecs[XN][sl] = v
        replies[sl, 0] = _dot(v, dg)
        replies[sl, 1] = _norm(v)
        replies[sl, 2] = _norm(dg)

    def _new_u(self, sl, codes, params, replies):
        dz, dg = self.vecs[P][sl], self.vecs[G][sl]
        mask = self._pairs_mask(codes[:, 2], codes[:, 3])
        inv = torch.from_numpy(params).to(self.z.device)[:, None]
        u = (dz + dg - self._low_rank(self.v[sl], self.u[sl], dg, mask)) * inv
        slot = torch.from_numpy(codes[:, 1]).to(self.z.device)
        self.u[sl][torch.arange(len(slot), device=self.z.device), slot] = u
        replies[sl, 0] = _finite(u).double()

    def _finish(self, sl, codes, params, replies):
        store = int(codes[0, 1])
        if store:
            slot = torch.from_numpy(codes[:, 2]).to(self.z.device)
            mine = torch.arange(len(slot), device=self.z.device)
            if store == 1:
                self.v[sl][mine, slot] = self.vecs[XN][sl]
            else:
                self.u[sl][mine, slot] = 0.0
                self.v[sl][mine, slot] = 0.0
        self.vecs[G][sl] = self.vecs[GN][sl]

    def _step(self, sl, codes, params, replies):
        g = self.vecs[G][sl]
        count = codes[:, 1]
        mask = self._pairs_mask(count, np.full_like(count, -1))
        p = g - self._low_rank(self.v[sl], self.u[sl], g, mask)
        self.vecs[P][sl] = p
        replies[sl, 0] = _finite(p).double()

    # kind: (handler, the code columns its samples must share within a run)
    _handlers = {
        _native.OP_RESIDUAL: (_residual, (1, 2, 3)),
        _native.OP_KEEP_BEST: (_keep_best, (1,)),
        _native.OP_TRIAL: (_trial, (1,)),
        _native.OP_ACCEPT: (_accept, ()),
        _native.OP_NEW_U: (_new_u, ()),
        _native.OP_FINISH: (_finish, (1,)),
        _native.OP_STEP: (_step, ()),
    }


def _runs(rows):
    """``rows`` (sorted sample indices) as slices of consecutive samples."""
    if len(rows) == 0:
        return []
    cuts = np.nonzero(np.diff(rows) != 1)[0] + 1
    return [slice(int(r[0]), int(r[-1]) + 1) for r in np.split(rows, cuts)]
