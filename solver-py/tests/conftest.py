"""Problems shared by the deqsolve tests: batches of tanh DEQ layers, one layer per
sample, with float64 references."""

import numpy as np
import pytest


class Layers:
    """``f_b(z) = tanh(W_b z + c_b)`` for each sample ``b``: ``W_b`` of spectral norm
    ``rho[b]`` (random orthogonal eigenvectors scaled), injections ``c_b``."""

    def __init__(self, d, rhos, seed=0, injection=0.5):
        rng = np.random.default_rng(seed)
        ws = []
        for rho in rhos:
            a = rng.standard_normal((d, d))
            ws.append(rho * a / np.linalg.norm(a, 2))
        self.w64 = np.stack(ws)
        self.c64 = injection * rng.standard_normal((len(rhos), d))
        self.w = self.w64.astype(np.float32)
        self.c = self.c64.astype(np.float32)
        self.calls = []

    @property
    def samples(self):
        return self.w.shape[0]

    @property
    def dim(self):
        return self.w.shape[1]

    def f(self, z):
        """The batched map in float32 (NumPy), recording every argument."""
        self.calls.append(z.copy())
        return np.tanh(np.einsum("bij,bj->bi", self.w, z) + self.c)

    def f64(self, z):
        return np.tanh(np.einsum("bij,bj->bi", self.w64, z.astype(np.float64)) + self.c64)

    def sample(self, b):
        """The map of sample ``b`` alone, on a batch of one."""
        return lambda z: np.tanh(np.einsum("ij,bj->bi", self.w[b], z) + self.c[b])

    def torch_f(self):
        """The same map for tensors, computed by the NumPy code (so bit-identical)."""
        import torch

        return lambda z: torch.from_numpy(self.f(z.numpy()))

    def zeros(self):
        return np.zeros((self.samples, self.dim), dtype=np.float32)


@pytest.fixture
def layers():
    # Two easy, two near the edge of stability, one beyond it (tanh saturates).
    return Layers(24, [0.5, 0.9, 0.99, 1.2, 0.7], seed=3)
