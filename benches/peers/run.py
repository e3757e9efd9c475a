"""Peer harness: torchdeq's and SciPy's fixed-point solvers on the instance files that
this project's solvers read (written by `export_problems`), to the same stopping rule.

    python run.py small --problems DIR --out peers.json [--threads 1]
    python run.py reference --model M --input X --out ref.npy [--threads 2]
    python run.py big --model M --input X --solver broyden --max-iters 30 --tol 0

Stopping rule, as in this project: stop when ||f(z) - z||_2 <= tol * ||f(z)||_2,
tol = 1e-6, at most 500 iterations, per sample.
* torchdeq (stop_mode='rel', tol=1e-6) tests ||f(z)-z|| / (||f(z)|| + 1e-9) < tol
  (the 1e-9 does not matter at these scales), takes the batch maximum, and also stops
  after 30 steps without progress once within 3*tol. It returns the best iterate.
* SciPy's nonlin solvers test the max-norm of g = f(z) - z only; so each evaluation
  of g is wrapped: once the point it is called at meets the rule above, the wrapper
  stops the solver (an exception) and that point is the answer. SciPy's own test is
  disabled (f_tol = 1e-300); its maxiter counts iterations (broyden1's Armijo line
  search may spend several evaluations per iteration).
Evaluations are counted by a wrapper around f, not from the solvers' own step counts.
Precision: torchdeq runs in float32 (as this project's solvers); SciPy in float64 (its
default), with the same float32 weights widened to float64.
"""

import argparse
import json
import resource
import statistics
import sys
import time

import numpy as np
import scipy
import scipy.optimize
import torch
from safetensors import safe_open
from torchdeq.solver.anderson import anderson_solver
from torchdeq.solver.broyden import broyden_solver
from torchdeq.solver.fp_iter import fixed_point_iter

TOL = 1e-6
MAX_ITERS = 500
BUDGET_S = 0.5
MAX_REPS = 5
TRACED = ["tanh d=1024 rho=0.99", "tanh d=256 rho=1.2", "h-equation n=500 c=0.9999", "linear d=64 rho=1.5"]


def load_instance(path):
    with safe_open(path, "np") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    return meta["kind"], meta["name"], t


def maps(kind, a32, c32):
    """The float32 torch map (batched rows) and the float64 numpy map."""
    at, ct = torch.from_numpy(a32), torch.from_numpy(c32)
    a64, c64 = a32.astype(np.float64), c32.astype(np.float64)
    if kind == "tanh":
        return (lambda z: torch.tanh(z @ at.T + ct)), (lambda z: np.tanh(a64 @ z + c64))
    if kind == "linear":
        return (lambda z: z @ at.T + ct), (lambda z: a64 @ z + c64)
    if kind == "hequation":
        return (lambda z: 1.0 / (1.0 - z @ at.T)), (lambda z: 1.0 / (1.0 - a64 @ z))
    raise ValueError(kind)


def rel_res(z, fz):
    z, fz = np.asarray(z, np.float64).ravel(), np.asarray(fz, np.float64).ravel()
    den = np.linalg.norm(fz)
    num = np.linalg.norm(fz - z)
    return float(num / den) if den > 0 else float(num)


class Counter:
    """Counts evaluations; optionally records the relative residual at each."""

    def __init__(self, f, trace=False):
        self.f, self.n, self.trace = f, 0, [] if trace else None

    def __call__(self, z):
        self.n += 1
        out = self.f(z)
        if self.trace is not None:
            self.trace.append(rel_res(z.detach().numpy(), out.detach().numpy()))
        return out


class Converged(Exception):
    pass


def scipy_run(method, f64, z0, trace=False):
    state = {"n": 0, "best": (np.inf, z0.copy()), "trace": [] if trace else None}

    def g(z):
        state["n"] += 1
        fz = f64(z)
        r = rel_res(z, fz)
        if state["trace"] is not None:
            state["trace"].append(r)
        if r < state["best"][0]:
            state["best"] = (r, z.copy())
        if r <= TOL:
            raise Converged()
        return fz - z

    converged = False
    try:
        if method == "broyden1":
            scipy.optimize.broyden1(g, z0.copy(), f_tol=1e-300, maxiter=MAX_ITERS)
        else:
            scipy.optimize.anderson(g, z0.copy(), f_tol=1e-300, maxiter=MAX_ITERS, M=5)
    except Converged:
        converged = True
    except (scipy.optimize.NoConvergence, ValueError, OverflowError, np.linalg.LinAlgError, FloatingPointError):
        pass
    return state["n"], converged, state["best"][1], state["best"][0], state["trace"]


def torch_run(name, f32, z0, threads, trace=False):
    fc = Counter(f32, trace)
    z = torch.from_numpy(z0).reshape(1, -1)
    solver = {"broyden": broyden_solver, "anderson": anderson_solver, "fixed_point_iter": fixed_point_iter}[name]
    kw = {"m": 6} if name == "anderson" else {}
    with torch.no_grad():
        zs, _, info = solver(fc, z, max_iter=MAX_ITERS, tol=TOL, stop_mode="rel", **kw)
    zs = zs.reshape(-1).numpy().astype(np.float64)
    rel = float(info["rel_lowest"].max())
    return fc.n, rel < TOL, zs, rel, fc.trace


def state_bytes(tool, solver, d, iters, batch=1, max_iters=MAX_ITERS):
    """Solver state from the tools' sources (the vectors each keeps), bytes."""
    if tool == "torchdeq":
        if solver == "broyden":  # Us [B, d, max_iter] and VTs [B, max_iter, d], float32
            return 2 * batch * d * max_iters * 4
        if solver == "anderson":  # X and F [B, m, d], m = 6, float32
            return 2 * batch * 6 * d * 4
        return 2 * batch * d * 4
    if solver == "broyden1":  # low-rank inverse Jacobian: 2 float64 vectors per iteration
        return 2 * d * 8 * iters
    return 2 * 5 * d * 8  # anderson, M = 5 pairs of float64 vectors


def timed(fn):
    times, first = [], None
    t_start = time.perf_counter()
    while len(times) < MAX_REPS and (not times or time.perf_counter() - t_start < BUDGET_S):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        first = first or out
    return first, statistics.median(times), len(times)


def small(args):
    torch.set_num_threads(args.threads)
    index = json.load(open(f"{args.problems}/index.json"))
    runs, traces, checks = [], [], []
    for entry in index:
        kind, name, t = load_instance(f"{args.problems}/{entry['file']}")
        ref, z0 = t["reference"], t["start"]
        f32, f64 = maps(kind, t["A"], t["c"])
        # The same problem: the float64 residual vanishes at the Rust reference, and
        # the float32 map agrees with the float64 one there.
        fr32 = f32(torch.from_numpy(ref.astype(np.float32)).reshape(1, -1)).reshape(-1).numpy()
        fr64 = f64(ref)
        checks.append({"problem": name, "residual_at_reference": rel_res(ref, fr64),
                       "f32_vs_f64": rel_res(fr64, fr32)})
        jobs = [("torchdeq", s, "float32", lambda s=s, tr=False: torch_run(s, f32, z0, args.threads, tr))
                for s in ("broyden", "anderson", "fixed_point_iter")]
        jobs += [("scipy", s, "float64", lambda s=s, tr=False: scipy_run(s, f64, z0.astype(np.float64), tr))
                 for s in ("broyden1", "anderson")]
        for tool, solver, prec, fn in jobs:
            (n, conv, z, rel, _), sec, reps = timed(fn)
            err = float(np.linalg.norm(z - ref) / np.linalg.norm(ref))
            runs.append({"problem": name, "tool": tool, "solver": solver, "precision": prec,
                         "f_evals": n, "converged": bool(conv), "residual_rel": rel, "error": err,
                         "time_s": sec, "reps": reps, "threads": args.threads,
                         "solver_bytes": state_bytes(tool, solver, len(z0), n)})
            print(f"{name:28} {tool:8} {solver:16} {n:4} {'ok' if conv else '--'} err {err:.1e} "
                  f"{sec * 1e3:.2f} ms", file=sys.stderr)
            if name in TRACED:
                tr = fn(tr=True)[4]
                traces.append({"problem": name, "tool": tool, "solver": solver, "residuals": tr})
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                "scipy": scipy.__version__}
    try:
        from importlib.metadata import version
        versions["torchdeq"] = version("torchdeq")
        versions["safetensors"] = version("safetensors")
    except Exception:  # noqa: BLE001
        pass
    json.dump({"runs": runs, "traces": traces, "checks": checks, "versions": versions,
               "threads": args.threads, "tol_rel": TOL, "max_iters": MAX_ITERS}, open(args.out, "w"), indent=1)


def load_big(model, inp):
    with safe_open(model, "pt") as f:
        w, u, b = f.get_tensor("W"), f.get_tensor("U"), f.get_tensor("b")
    with safe_open(inp, "pt") as f:
        x = f.get_tensor("x")
    c = x @ u.T + b
    return w, c


def big(args):
    """One solve of the [B, L, h] state in this process; prints JSON with the peak RSS."""
    torch.set_num_threads(args.threads)
    w, c = load_big(args.model, args.input)
    f = Counter(lambda z: torch.tanh(z @ w.T + c))
    z0 = torch.zeros_like(c)
    with torch.no_grad():
        f(z0)  # warm-up: the baseline process does exactly this much
        f.n = 0
        t0 = time.perf_counter()
        if args.solver == "none":
            z, rel = z0, float("nan")
        else:
            solver = {"broyden": broyden_solver, "anderson": anderson_solver,
                      "fixed_point_iter": fixed_point_iter}[args.solver]
            kw = {"m": 6} if args.solver == "anderson" else {}
            z, _, info = solver(f, z0, max_iter=args.max_iters, tol=args.tol, stop_mode="rel", **kw)
            rel = float(info["rel_lowest"].max())
        sec = time.perf_counter() - t0
    out = {"tool": "torchdeq", "solver": args.solver, "max_iters": args.max_iters, "tol_rel": args.tol,
           "f_evals": f.n, "time_s": sec, "residual_rel": rel, "threads": args.threads,
           "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
           "state_shape": list(c.shape)}
    if args.solver != "none":
        b = c.shape[0]
        out["solver_bytes"] = state_bytes("torchdeq", args.solver, c[0].numel(), f.n, b, args.max_iters)
        if args.z_out:
            np.save(args.z_out, z.numpy())
    print(json.dumps(out))


def reference(args):
    """Float64 reference of the [B, L, h] state: Anderson (m = 6) in float64, then the
    relative residual it reached."""
    torch.set_num_threads(args.threads)
    w, c = load_big(args.model, args.input)
    w, c = w.double(), c.double()
    f = lambda z: torch.tanh(z @ w.T + c)  # noqa: E731
    with torch.no_grad():
        z, _, info = anderson_solver(f, torch.zeros_like(c), max_iter=300, tol=1e-12, stop_mode="rel", m=6)
        fz = f(z)
        rel = float(((fz - z).flatten(1).norm(dim=1) / fz.flatten(1).norm(dim=1)).max())
    np.save(args.out, z.numpy())
    print(json.dumps({"reference_residual_rel": rel}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("small")
    s.add_argument("--problems", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, default=1)
    for name in ("big", "reference"):
        b = sub.add_parser(name)
        b.add_argument("--model", required=True)
        b.add_argument("--input", required=True)
        b.add_argument("--threads", type=int, default=2)
        b.add_argument("--out")
        b.add_argument("--z-out")
        b.add_argument("--solver", default="broyden")
        b.add_argument("--max-iters", type=int, default=MAX_ITERS)
        b.add_argument("--tol", type=float, default=TOL)
    args = p.parse_args()
    {"small": small, "big": big, "reference": reference}[args.cmd](args)


if __name__ == "__main__":
    main()
