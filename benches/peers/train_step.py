"""One DEQ training step (forward solve, loss, IFT backward solve, parameter gradients,
optimiser step) at DEQ-Transformer size, with torchdeq's ``broyden`` or deqsolve's, in
a fresh process per configuration: prints one JSON line with the time per step and the
process's peak RSS.

    python train_step.py --solver deqsolve_broyden --max-iter 30 [--steps 3] [--threads 2]

The state is ``[samples, tokens, hidden]`` (default [8, 150, 700]) with a per-token
``hidden × hidden`` layer ``z = tanh(W z + U x + b)``; the stopping tolerance is 0, so
every one of ``max_iter`` iterations runs in both passes (torchdeq's own progress check
never stops a solve at tol 0; ours is registered with ``stall_iters=0``).
"""

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torchdeq

import deqsolve.torch
import deqsolve.torchdeq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solver", required=True,
                    help="broyden (torchdeq's), deqsolve_broyden (ours through torchdeq) or "
                    "fixed_point (deqsolve.torch.fixed_point, no torchdeq)")
    ap.add_argument("--max-iter", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=150)
    ap.add_argument("--hidden", type=int, default=700)
    ap.add_argument("--memory", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    deqsolve.torchdeq.register(memory=a.memory, stall_iters=0)

    g = torch.Generator().manual_seed(0)
    h = a.hidden
    w = torch.randn(h, h, generator=g)
    w = torch.nn.Parameter(0.9 * w / torch.linalg.matrix_norm(w, 2))
    u = torch.nn.Parameter(torch.randn(h, h, generator=g) / h**0.5)
    b = torch.nn.Parameter(torch.zeros(h))
    x = torch.randn(a.samples, a.tokens, h, generator=g)
    opt = torch.optim.SGD([w, u, b], lr=1e-3)
    if a.solver == "fixed_point":
        def solve(f, z0):
            z, info = deqsolve.torch.fixed_point(f, z0, memory=a.memory, max_iters=a.max_iter, tol_rel=0.0,
                                                 stall_iters=0)
            return z, int(info["iterations"].max())
    else:
        deq = torchdeq.get_deq(f_solver=a.solver, b_solver=a.solver, ift=True, f_max_iter=a.max_iter,
                               b_max_iter=a.max_iter, f_tol=0.0, b_tol=0.0, f_stop_mode="abs",
                               b_stop_mode="abs")

        def solve(f, z0):
            z_out, info = deq(f, z0)
            return z_out[-1], int(info["nstep"].max().item())
    times, losses, steps = [], [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        c = x @ u.T + b
        z, nstep = solve(lambda z: torch.tanh(z @ w.T + c), torch.zeros(a.samples, a.tokens, h))
        loss = z.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
        steps.append(nstep)
    # The first step also pays for first-touch page faults and allocator warm-up.
    steady = times[1:] if len(times) > 1 else times
    print(json.dumps({
        "solver": a.solver, "max_iter": a.max_iter, "memory": a.memory, "threads": a.threads,
        "state": [a.samples, a.tokens, h], "steps": a.steps, "step_times_s": times,
        "time_per_step_s": statistics.median(steady), "losses": losses, "forward_nstep": steps,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__, "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
