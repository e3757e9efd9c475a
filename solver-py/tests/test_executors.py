"""The same operation sequence through every executor.

solver-core's Broyden state machine asks for generic vector operations (copy, scale,
``x + αy``, a low-rank product, dot, norm, finiteness, an evaluation of ``f``); an
executor carries them out. Here one solve runs through every executor available, each
driven by ``_native.OffloadBatch``: ``_native.NativeVectors`` (solver-core's own
kernels, the reference), ``TorchVectors`` on the CPU and, when there is one, on a CUDA
device. Every round's encoded operations are recorded: the sequences must be the same
(the decisions are taken on replies that differ by rounding only), their float
arguments and replies close, the reports equal and the answers within a tolerance. The
reference must also be bit-identical to the host path (``executor="host"``)."""

import numpy as np
import pytest

import deqsolve
from deqsolve import _native
from conftest import Layers

torch = pytest.importorskip("torch")
from deqsolve._batch import Batch  # noqa: E402
from deqsolve._executor import TorchVectors  # noqa: E402

CASES = [
    dict(memory=3),
    dict(memory=3, history="restart"),
    dict(memory=4, line_search=True),
]

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


class Recording:
    """An executor that records every round it carries out."""

    def __init__(self, inner):
        self.inner, self.rounds = inner, []

    def execute(self, codes, params):
        replies = self.inner.execute(codes, params)
        self.rounds.append((codes.copy(), params.copy(), np.array(replies, copy=True)))
        return replies


def config(memory, **settings):
    o = _native.options_defaults()
    return _native.Config("broyden", memory, 100, o["tol_abs"], o["tol_rel"], o["stall_iters"], settings)


def drive(cfg, samples, executor):
    rec = Recording(executor)
    solves = _native.OffloadBatch(cfg, samples, rec)
    while solves.round():
        pass
    return dict(solves.reports()), rec.rounds


def run_native(lay, cfg, memory):
    vectors = _native.NativeVectors(lambda z: lay.f(z).astype(np.float32), lay.zeros(), memory)
    info, rounds = drive(cfg, lay.samples, vectors)
    return vectors.z, info, rounds


def run_torch(lay, cfg, memory, device):
    w, c = torch.from_numpy(lay.w).to(device), torch.from_numpy(lay.c).to(device)

    def f(z):
        return torch.tanh(torch.einsum("bij,bj->bi", w, z) + c)

    vectors = TorchVectors(f, Batch(torch.zeros(lay.samples, lay.dim, device=device)), memory)
    info, rounds = drive(cfg, lay.samples, vectors)
    return vectors.z.cpu().numpy(), info, rounds


def problem():
    # Samples that stop at different rounds, with the history wrapping.
    return Layers(24, [0.5, 0.9, 0.99, 0.7, 0.95], seed=7)


@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_the_reference_executor_is_the_host_path(kwargs):
    lay = problem()
    kwargs = dict(kwargs)
    memory = kwargs.pop("memory")
    z, info, rounds = run_native(lay, config(memory, **kwargs), memory)
    zh, ih = deqsolve.solve(lay.f, lay.zeros(), executor="host", memory=memory, max_iters=100, **kwargs)
    assert np.array_equal(z, zh)
    for key in ("status", "iterations", "f_evals", "restarts"):
        assert np.array_equal(info[key], ih[key]), key
    assert np.array_equal(info["residual_abs"], ih["residual_abs"])
    kinds = {int(k) for codes, _, _ in rounds for k in codes[:, 0]}
    # Every kind of operation but the fill (an overflowing update) ran.
    assert kinds >= {
        _native.OP_EVALUATE, _native.OP_COPY, _native.OP_SCALE, _native.OP_COMBINE,
        _native.OP_LOW_RANK, _native.OP_DOT, _native.OP_NORM,
    }, kinds


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_the_same_operation_sequence_through_every_executor(kwargs, device):
    lay = problem()
    kwargs = dict(kwargs)
    memory = kwargs.pop("memory")
    cfg = config(memory, **kwargs)
    zn, infon, ref = run_native(lay, cfg, memory)
    zt, infot, got = run_torch(lay, cfg, memory, device)
    assert len(got) == len(ref), (len(got), len(ref))
    for i, ((cr, pr, rr), (cg, pg, rg)) in enumerate(zip(ref, got)):
        assert np.array_equal(cr, cg), (i, cr, cg)
        # The decisions and the float arguments most operations take (±1, the step
        # lengths 2⁻ᵏ) are exact; the scalars near convergence are tiny differences
        # (‖f(x) − x‖ at 1e-7, 1/vᵀΔg), where float32 rounding in another summation order
        # shows a few per cent.
        assert np.allclose(pr, pg, rtol=5e-2, atol=1e-6), (i, pr, pg)
        kind = cr[:, 0]
        flags = kind == _native.OP_ALL_FINITE
        assert np.array_equal(rr[flags], rg[flags]), i
        scalars = (kind == _native.OP_DOT) | (kind == _native.OP_NORM)
        assert np.allclose(rr[scalars], rg[scalars], rtol=0.1, atol=1e-6), (i, rr[scalars], rg[scalars])
    for key in ("status", "iterations", "f_evals", "restarts"):
        assert np.array_equal(infon[key], infot[key]), key
    assert np.allclose(infon["residual_abs"], infot["residual_abs"], rtol=1e-2, atol=1e-6)
    err = np.linalg.norm(zt - zn, axis=1) / np.maximum(np.linalg.norm(zn, axis=1), 1e-12)
    assert err.max() <= 1e-5, err


def _round(b, kind, a=(0, 0), bv=(0, 0), c=(0, 0), col7=0, col8=0, param=0.0):
    codes = np.zeros((b, _native.CODE_WIDTH), dtype=np.int64)
    codes[:] = [kind, *a, *bv, *c, col7, col8]
    return codes, np.full(b, param, dtype=np.float32)


@pytest.mark.parametrize("device", DEVICES)
def test_the_dense_model_operations_agree_with_a_reference(device):
    # The operations of a root solve's dense model (n ≤ m), which no offloaded solve asks
    # for: every executor carries them out all the same. A = 2I + x gᵀ built with unit
    # vectors and a rank-one update of V's rows, inverted, applied to g; then a unit
    # vector per sample (its index differs from sample to sample) added to the answer.
    b, d, memory = 3, 4, 6
    rng = np.random.default_rng(5)
    z0 = rng.standard_normal((b, d)).astype(np.float32)
    w = (0.5 * rng.standard_normal((d, d))).astype(np.float32)
    X, G, P, GN, BEST, U, V = (0, 0), (1, 0), (2, 0), (4, 0), (5, 0), _native.VEC_U, _native.VEC_V
    rounds = [_round(b, _native.OP_EVALUATE, a=G, bv=X)]
    rounds += [_round(b, _native.OP_UNIT, a=(V, j), col7=j, param=2.0) for j in range(d)]
    rounds.append(_round(b, _native.OP_ADD_OUTER, a=(V, 0), bv=G, c=X, col7=d))
    rounds.append(_round(b, _native.OP_INVERT, col7=d, param=0.25))
    rounds.append(_round(b, _native.OP_LOW_RANK, a=GN, bv=G, c=(U, V), col7=d, col8=-1, param=1.0))
    rounds.append(_round(b, _native.OP_COPY, a=BEST, bv=GN))
    unit = _round(b, _native.OP_UNIT, a=P, param=1.5)
    unit[0][:, 7] = np.arange(b) % d
    rounds.append(unit)
    rounds.append(_round(b, _native.OP_COMBINE, a=BEST, bv=BEST, c=P, param=1.0))
    # A singular matrix (V's rows zeroed by fills, no unit vectors): the reply is 0.
    singular = [_round(b, _native.OP_FILL, a=(V, j)) for j in range(d)]
    singular.append(_round(b, _native.OP_INVERT, col7=d, param=0.0))

    native = _native.NativeVectors(lambda z: np.tanh(z @ w.T).astype(np.float32), z0, memory)
    wt = torch.from_numpy(w).to(device)
    torch_vectors = TorchVectors(lambda z: torch.tanh(z @ wt.T), Batch(torch.from_numpy(z0).to(device)), memory)
    for ex in (native, torch_vectors):
        replies = [np.asarray(ex.execute(codes, params)) for codes, params in rounds]
        assert np.array_equal(replies[d + 2], np.ones(b)), replies[d + 2]
        z = ex.z if isinstance(ex, _native.NativeVectors) else ex.z.cpu().numpy()
        for s in range(b):
            x, g = z0[s].astype(np.float64), np.tanh(z0[s].astype(np.float64) @ w.T.astype(np.float64))
            a = 2.0 * np.eye(d) + np.outer(x, g)
            want = np.linalg.solve(a, g) + 0.25 * g
            want[s % d] += 1.5
            assert np.allclose(z[s], want, rtol=1e-4, atol=1e-5), (type(ex).__name__, s, z[s], want)
        replies = [np.asarray(ex.execute(codes, params)) for codes, params in singular]
        assert np.array_equal(replies[-1], np.zeros(b)), replies[-1]
