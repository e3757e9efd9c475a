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
        replies = torch.zeros(len(kinds), 3, dtype=torch.float64, device=self.z.device)
        if (kinds == _native.OP_EVALUATE).any():
            self._evaluate(codes, kinds == _native.OP_EVALUATE)
            return np.zeros((len(kinds), 3), dtype=np.float32)
        with torch.no_grad(), _full_precision():
            for kind in np.unique(kinds):
                handler = self._handlers.get(int(kind))
                if handler is not None:
                    rows = np.nonzero(kinds == kind)[0]
                    handler(self, rows, codes[rows], params[rows], replies)
        return replies.to(torch.float32).cpu().numpy()

    # Rows of a [B, ...] tensor for a set of samples: a view when it is all of them.
    def _sel(self, rows):
        if len(rows) == self.z.shape[0]:
            return slice(None)
        return torch.from_numpy(rows).to(self.z.device)

    def _groups(self, rows, codes, columns):
        """The samples of ``rows`` grouped by the values of the given code columns."""
        keys = codes[:, columns]
        for key in np.unique(keys, axis=0):
            mine = (keys == key).all(axis=1)
            yield tuple(int(k) for k in key), rows[mine], mine

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

    def _evaluate(self, codes, evaluating):
        """``out ← f(point)`` for the evaluating samples, in one call of ``f`` on the
        whole batch (a stopped sample's row is its best iterate)."""
        rows = np.nonzero(evaluating)[0]
        with torch.no_grad():
            self.points.copy_(self.z)
            for (point, _), mine_rows, _ in self._groups(rows, codes[rows], [1, 2]):
                sel = self._sel(mine_rows)
                self.points[sel] = self.vecs[point][sel]
        y = self.batch.check_output(self.f(self.points.view(self.batch.shape)))
        y = y.reshape(self.points.shape)
        with torch.no_grad():
            for (_, out), mine_rows, _ in self._groups(rows, codes[rows], [1, 2]):
                sel = self._sel(mine_rows)
                self.vecs[out][sel] = y[sel]

    def _residual(self, rows, codes, params, replies):
        for (x, g, root), mine, _ in self._groups(rows, codes, [1, 2, 3]):
            sel = self._sel(mine)
            xv, gv = self.vecs[x][sel], self.vecs[g][sel]
            if root:
                scale = _norm(xv)
            else:
                scale = _norm(gv)
                gv = gv - xv
                self.vecs[g][sel] = gv
            replies[sel, 0] = _norm(gv)
            replies[sel, 1] = scale
            replies[sel, 2] = (_finite(xv) & _finite(gv)).double()

    def _keep_best(self, rows, codes, params, replies):
        for (src,), mine, _ in self._groups(rows, codes, [1]):
            sel = self._sel(mine)
            self.z[sel] = self.vecs[src][sel]

    def _trial(self, rows, codes, params, replies):
        for (reset,), mine, where in self._groups(rows, codes, [1]):
            sel = self._sel(mine)
            if reset:
                self.vecs[P][sel] = self.vecs[G][sel]
            alpha = torch.from_numpy(params[where]).to(self.z.device)[:, None]
            self.vecs[XN][sel] = self.vecs[X][sel] + alpha * self.vecs[P][sel]

    def _accept(self, rows, codes, params, replies):
        sel = self._sel(rows)
        x, g, xn, gn = (self.vecs[k][sel] for k in (X, G, XN, GN))
        dz, dg = xn - x, gn - g
        mask = self._pairs_mask(codes[:, 1], codes[:, 2])
        v = -dz + self._low_rank(self.u[sel], self.v[sel], dz, mask)
        self.vecs[P][sel] = dz
        self.vecs[G][sel] = dg
        self.vecs[X][sel] = xn
        self.vecs[XN][sel] = v
        replies[sel, 0] = _dot(v, dg)
        replies[sel, 1] = _norm(v)
        replies[sel, 2] = _norm(dg)

    def _new_u(self, rows, codes, params, replies):
        sel = self._sel(rows)
        dz, dg = self.vecs[P][sel], self.vecs[G][sel]
        mask = self._pairs_mask(codes[:, 2], codes[:, 3])
        inv = torch.from_numpy(params).to(self.z.device)[:, None]
        u = (dz + dg - self._low_rank(self.v[sel], self.u[sel], dg, mask)) * inv
        index = torch.from_numpy(rows).to(self.z.device)
        slot = torch.from_numpy(codes[:, 1]).to(self.z.device)
        self.u[index, slot] = u
        replies[sel, 0] = _finite(u).double()

    def _finish(self, rows, codes, params, replies):
        for (store,), mine, where in self._groups(rows, codes, [1]):
            index = torch.from_numpy(mine).to(self.z.device)
            slot = torch.from_numpy(codes[where, 2]).to(self.z.device)
            if store == 1:
                self.v[index, slot] = self.vecs[XN][index]
            elif store == 2:
                self.u[index, slot] = 0.0
                self.v[index, slot] = 0.0
        sel = self._sel(rows)
        self.vecs[G][sel] = self.vecs[GN][sel]

    def _step(self, rows, codes, params, replies):
        sel = self._sel(rows)
        g = self.vecs[G][sel]
        count = codes[:, 1]
        mask = self._pairs_mask(count, np.full_like(count, -1))
        p = g - self._low_rank(self.v[sel], self.u[sel], g, mask)
        self.vecs[P][sel] = p
        replies[sel, 0] = _finite(p).double()

    _handlers = {
        _native.OP_RESIDUAL: _residual,
        _native.OP_KEEP_BEST: _keep_best,
        _native.OP_TRIAL: _trial,
        _native.OP_ACCEPT: _accept,
        _native.OP_NEW_U: _new_u,
        _native.OP_FINISH: _finish,
        _native.OP_STEP: _step,
    }
