"""deqsolve on a CUDA tensor: the vectors stay on the GPU and the answers are the host
path's. Skipped without a GPU, unless ``DEQSOLVE_REQUIRE_CUDA=1`` (set by
``solver-host/cuda-check.sh run``, the GPU check), which makes a missing GPU a failure.

``f`` is evaluated in float64 and rounded to float32 on both devices, so that its values
are the same on the GPU and the CPU and any difference comes from the solver's own
arithmetic (torch kernels on the GPU against Rust's on the CPU)."""

import os
import time

import numpy as np
import pytest

import deqsolve

torch = pytest.importorskip("torch")

# DEQSOLVE_CUDA_TEST_DEVICE=cpu runs this module on the CPU (the device path through
# executor="torch" there), to check the module itself on a machine without a GPU.
CUDA = torch.device(os.environ.get("DEQSOLVE_CUDA_TEST_DEVICE", "cuda"))
ON_GPU = CUDA.type == "cuda"

if ON_GPU and not torch.cuda.is_available():
    if os.environ.get("DEQSOLVE_REQUIRE_CUDA") == "1":
        raise RuntimeError("DEQSOLVE_REQUIRE_CUDA=1 but torch sees no CUDA device")
    pytest.skip("no CUDA device", allow_module_level=True)

DEVICE_PATH = dict(executor="torch")


def sync():
    if ON_GPU:
        torch.cuda.synchronize()


def layers(b, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(b, d, d, generator=g, dtype=torch.float64)
    rho = torch.tensor([0.5, 0.9, 0.99, 1.2, 0.7, 1.1, 0.8, 0.95][:b], dtype=torch.float64)
    w = w * (rho / torch.linalg.matrix_norm(w, 2))[:, None, None]
    c = 0.5 * torch.randn(b, d, generator=g, dtype=torch.float64)
    return w, c


def f_on(device, w, c):
    w, c = w.to(device), c.to(device)
    return lambda z: torch.tanh(torch.einsum("bij,bj->bi", w, z.double()) + c).float()


@pytest.mark.parametrize("kwargs", [dict(), dict(memory=3), dict(memory=3, history="restart"),
                                    dict(memory=4, line_search=True), dict(max_iters=7)])
def test_the_gpu_computes_what_the_host_computes(kwargs):
    w, c = layers(8, 64)
    kwargs = dict(dict(max_iters=200), **kwargs)
    host_z, host = deqsolve.solve(f_on("cpu", w, c), torch.zeros(8, 64), **kwargs)
    gpu_z, gpu = deqsolve.solve(f_on(CUDA, w, c), torch.zeros(8, 64, device=CUDA), **DEVICE_PATH, **kwargs)
    assert gpu_z.device == torch.zeros(1, device=CUDA).device
    assert gpu["status"] == host["status"]
    assert np.array_equal(gpu["f_evals"], host["f_evals"]), (gpu["f_evals"], host["f_evals"])
    err = ((gpu_z.cpu() - host_z).norm(dim=1) / host_z.norm(dim=1)).max()
    assert err <= 1e-5, err


def test_a_nan_sample_on_the_gpu():
    w, c = layers(4, 32, seed=3)
    f = f_on(CUDA, w, c)
    calls = []

    def sick(z):
        calls.append(1)
        y = f(z)
        if len(calls) == 5:
            y[2, 7] = float("nan")
        return y

    z, info = deqsolve.solve(sick, torch.zeros(4, 32, device=CUDA), **DEVICE_PATH)
    assert info["status"][2] == "non_finite" and info["f_evals"][2] == 5
    assert [s for i, s in enumerate(info["status"]) if i != 2] == ["converged"] * 3
    assert torch.isfinite(z).all()


def test_gpu_memory_does_not_grow_with_max_iters():
    """The [8, 150, 700] state at 30 and 300 iterations (every one run): the solve's peak
    GPU memory, and the time per iteration (printed for the GPU check's log)."""
    b, l, h = 8, 150, 700
    g = torch.Generator().manual_seed(0)
    w = torch.randn(h, h, generator=g)
    w = (0.9 * w / torch.linalg.matrix_norm(w, 2)).to(CUDA)
    c = torch.randn(b, l, h, generator=g).to(CUDA)
    f = lambda z: torch.tanh(z @ w.T + c)  # noqa: E731
    peaks = {}
    for iters in (30, 300):
        sync()
        if ON_GPU:
            torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() if ON_GPU else 0
        t0 = time.perf_counter()
        z, info = deqsolve.solve(f, torch.zeros(b, l, h, device=CUDA), max_iters=iters, tol_rel=0.0,
                                 stall_iters=0, **DEVICE_PATH)
        sync()
        dt = time.perf_counter() - t0
        peaks[iters] = torch.cuda.max_memory_allocated() - base if ON_GPU else 1
        assert np.all(info["iterations"] == iters)
        assert info["memory_bytes"] == 4 * b * l * h * (2 * 8 + 7)
        name = torch.cuda.get_device_name() if ON_GPU else "the CPU (torch executor)"
        print(f"deqsolve on {name}: [8, 150, 700], {iters} iterations: "
              f"{dt / iters * 1e3:.2f} ms per iteration, solver memory {info['memory_bytes'] / 2**20:.1f} MiB, "
              f"peak GPU memory of the solve {peaks[iters] / 2**20:.1f} MiB")
    assert abs(peaks[300] - peaks[30]) <= 0.05 * peaks[30], peaks


def test_a_training_step_on_the_gpu_matches_the_cpu():
    torchdeq = pytest.importorskip("torchdeq")
    import deqsolve.torchdeq

    deqsolve.torchdeq.register()
    grads = {}
    for device in ("cpu", CUDA):
        g = torch.Generator().manual_seed(1)
        w = torch.nn.Parameter((0.8 * torch.eye(32) + 0.05 * torch.randn(32, 32, generator=g)).to(device))
        x = torch.randn(16, 32, generator=g).to(device)
        deq = torchdeq.get_deq(f_solver="deqsolve_broyden", b_solver="deqsolve_broyden", ift=True,
                               f_tol=1e-6, b_tol=1e-6, f_stop_mode="rel", b_stop_mode="rel")
        z0 = torch.zeros(16, 32, device=device)
        z_out, _ = deq(lambda z: torch.tanh(z @ w.T + x), z0, solver_kwargs=DEVICE_PATH if device == CUDA else {})
        z_out[-1].pow(2).sum().backward()
        grads[str(device)] = w.grad.cpu()
    err = (grads[str(CUDA)] - grads["cpu"]).norm() / grads["cpu"].norm()
    assert err <= 1e-4, err
