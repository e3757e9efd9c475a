"""SciPy on the classic root-finding cases of `root_table` (benches/src/bin/root_table.rs).

    python roots.py --cases DIR/root_cases.json --out DIR/root_peers.json

The cases file is written by `root_table --export DIR`. This script defines the same
systems again in NumPy (the Moré–Garbow–Hillstrom systems from MINPACK's VECFCN and
INITPT, SciPy's test_nonlin.py problems from that file), and before solving anything
checks, per case, that its start equals the exported one and that its g equals the
exported g at the start and at a second point, to 1e-12 relative. Then:

* hybr: scipy.optimize.root(g, x0, method='hybr', options={'maxfev': 1000}) (MINPACK's
  hybrd: forward-difference Jacobian, xtol 1.49e-8);
* broyden1: scipy.optimize.broyden1(g, x0, f_tol=1e-5, tol_norm=2-norm, maxiter=1000)
  (its default Armijo line search).

Each evaluation of g goes through a wrapper that counts it and, as soon as a point has
||g||_2 <= 1e-5, stops the solver there (an exception): that point is the answer, as
this project's solver stops at the first point that meets the tolerance. Otherwise the
answer is what the solver returns (broyden1's NoConvergence carries its last iterate).
A run is solved only if ||g||_2 <= 1e-5 recomputed at the answer. In the table, a run
not solved shows F (SciPy stopped without meeting the tolerance: hybrd's xtol test,
maxfev, broyden1's maxiter or a failed line search) or E (it raised an error).
Float64 throughout.
"""

import argparse
import json
import sys

import numpy as np
import scipy
import scipy.optimize
from scipy.optimize import NoConvergence

TOL = 1e-5
MAX_ITERS = 1000


# ---------------------------------------------------------------------------
# The Moré–Garbow–Hillstrom systems (MINPACK ex/file15: VECFCN, INITPT).
# ---------------------------------------------------------------------------

def mgh_g(system, x):
    n = len(x)
    f = np.zeros(n)
    if system == "rosenbrock":
        f[0] = 1 - x[0]
        f[1] = 10 * (x[1] - x[0] ** 2)
    elif system == "powell_singular":
        f[0] = x[0] + 10 * x[1]
        f[1] = np.sqrt(5.0) * (x[2] - x[3])
        f[2] = (x[1] - 2 * x[2]) ** 2
        f[3] = np.sqrt(10.0) * (x[0] - x[3]) ** 2
    elif system == "powell_badly_scaled":
        f[0] = 1e4 * x[0] * x[1] - 1
        f[1] = np.exp(-x[0]) + np.exp(-x[1]) - 1.0001
    elif system == "wood":
        t1, t2 = x[1] - x[0] ** 2, x[3] - x[2] ** 2
        f[0] = -200 * x[0] * t1 - (1 - x[0])
        f[1] = 200 * t1 + 20.2 * (x[1] - 1) + 19.8 * (x[3] - 1)
        f[2] = -180 * x[2] * t2 - (1 - x[2])
        f[3] = 180 * t2 + 20.2 * (x[3] - 1) + 19.8 * (x[1] - 1)
    elif system == "helical_valley":
        tpi = 8 * np.arctan(1.0)
        t1 = 0.25 if x[1] >= 0 else -0.25
        if x[0] > 0:
            t1 = np.arctan(x[1] / x[0]) / tpi
        if x[0] < 0:
            t1 = np.arctan(x[1] / x[0]) / tpi + 0.5
        f[0] = 10 * (x[2] - 10 * t1)
        f[1] = 10 * (np.sqrt(x[0] ** 2 + x[1] ** 2) - 1)
        f[2] = x[2]
    elif system == "watson":
        # f = the gradient of (1/2) * sum of the 31 Watson residuals squared.
        j = np.arange(n)
        for i in range(1, 30):
            ti = i / 29
            sum1 = np.sum(j[1:] * ti ** (j[1:] - 1.0) * x[1:])
            sum2 = np.sum(ti ** j * x)
            r = sum1 - sum2 ** 2 - 1
            f += ti ** (j - 1.0) * (j - 2 * ti * sum2) * r
        t = x[1] - x[0] ** 2 - 1
        f[0] += x[0] * (1 - 2 * t)
        f[1] += t
    elif system == "chebyquad":
        y = 2 * x - 1
        t_prev, t_cur = np.ones(n), y.copy()
        for k in range(n):
            f[k] = np.sum(t_cur) / n
            t_prev, t_cur = t_cur, 2 * y * t_cur - t_prev
        k = np.arange(1, n + 1)
        even = k % 2 == 0
        f[even] += 1 / (k[even] ** 2 - 1.0)
    elif system == "brown_almost_linear":
        f[:] = x + (np.sum(x) - (n + 1))
        f[-1] = np.prod(x) - 1
    elif system == "discrete_boundary_value":
        h = 1 / (n + 1)
        t = np.arange(1, n + 1) * h
        xl = np.concatenate(([0.0], x[:-1]))
        xr = np.concatenate((x[1:], [0.0]))
        f[:] = 2 * x - xl - xr + (x + t + 1) ** 3 * h ** 2 / 2
    elif system == "discrete_integral_equation":
        h = 1 / (n + 1)
        t = np.arange(1, n + 1) * h
        c = (x + t + 1) ** 3
        for k in range(n):
            s1 = np.sum(t[: k + 1] * c[: k + 1])
            s2 = np.sum((1 - t[k + 1:]) * c[k + 1:])
            f[k] = x[k] + h * ((1 - t[k]) * s1 + t[k] * s2) / 2
    elif system == "trigonometric":
        k = np.arange(1, n + 1)
        f[:] = (n + k) - np.sin(x) - np.sum(np.cos(x)) - k * np.cos(x)
    elif system == "variably_dimensioned":
        k = np.arange(1, n + 1)
        s = np.sum(k * (x - 1))
        f[:] = x - 1 + k * (s * (1 + 2 * s ** 2))
    elif system == "broyden_tridiagonal":
        xl = np.concatenate(([0.0], x[:-1]))
        xr = np.concatenate((x[1:], [0.0]))
        f[:] = (3 - 2 * x) * x - xl - 2 * xr + 1
    elif system == "broyden_banded":
        for k in range(n):
            band = [j for j in range(max(0, k - 5), min(k + 1, n - 1) + 1) if j != k]
            f[k] = x[k] * (2 + 5 * x[k] ** 2) + 1 - sum(x[j] * (1 + x[j]) for j in band)
    else:
        raise ValueError(system)
    return f


def mgh_start(system, n, factor):
    h1 = 1 / (n + 1)
    x0 = {
        "rosenbrock": lambda: [-1.2, 1.0],
        "powell_singular": lambda: [3.0, -1.0, 0.0, 1.0],
        "powell_badly_scaled": lambda: [0.0, 1.0],
        "wood": lambda: [-3.0, -1.0, -3.0, -1.0],
        "helical_valley": lambda: [-1.0, 0.0, 0.0],
        "watson": lambda: [0.0] * n,
        "chebyquad": lambda: [j * h1 for j in range(1, n + 1)],
        "brown_almost_linear": lambda: [0.5] * n,
        "discrete_boundary_value": lambda: [j * h1 * (j * h1 - 1) for j in range(1, n + 1)],
        "discrete_integral_equation": lambda: [j * h1 * (j * h1 - 1) for j in range(1, n + 1)],
        "trigonometric": lambda: [1 / n] * n,
        "variably_dimensioned": lambda: [1 - j * (1 / n) for j in range(1, n + 1)],
        "broyden_tridiagonal": lambda: [-1.0] * n,
        "broyden_banded": lambda: [-1.0] * n,
    }[system]()
    x0 = np.array(x0, dtype=float)
    if factor == 1:
        return x0
    return np.full(n, float(factor)) if system == "watson" else factor * x0


# ---------------------------------------------------------------------------
# SciPy's test_nonlin.py problems (scipy/optimize/tests/test_nonlin.py).
# ---------------------------------------------------------------------------

def pressure_network(flow_rates, Qtot, k):
    P = k * flow_rates ** 2
    return np.hstack((P[1:] - P[0], flow_rates.sum() - Qtot))


NONLIN = {
    "F": (lambda x: -np.diag([3, 2, 1.5, 1, 0.5]) @ x - 0.01 * float(x @ x) * x, [1, 1, 1, 1, 1]),
    "F2": (lambda x: x, [1, 2, 3, 4, 5, 6]),
    "F2_lucky": (lambda x: x, [0, 0, 0, 0, 0, 0]),
    "F3": (lambda x: np.array([[-2, 1, 0.], [1, -2, 1], [0, 1, -2]]) @ x - np.array([1, 2, 3.]), [1, 2, 3]),
    "F4_powell": (lambda x: np.array([1e4 * x[0] * x[1] - 1,
                                      np.exp(-x[0]) + np.exp(-x[1]) - (1 + 1 / 1e4)]), [-1, -2]),
    "F5": (lambda x: pressure_network(x, 4, np.array([.5, .5, .5, .5])), [2., 0, 2, 0]),
    "F6": (lambda x: -np.linalg.solve(np.array([[-4.256, 14.7], [0.8394989, 0.59964207]]),
                                      np.array([(x[0] + 3) * (x[1] ** 5 - 7) + 3 * 6,
                                                np.sin(x[1] * np.exp(x[0]) - 1)])), [-0.5, 1.4]),
}


def system_of(case):
    if case["family"] == "mgh":
        return (lambda x: mgh_g(case["system"], x)), mgh_start(case["system"], case["n"], case["factor"])
    g, xin = NONLIN[case["system"]]
    return (lambda x: np.asarray(g(np.asarray(x, dtype=float)), dtype=float)), np.array(xin, dtype=float)


def check(case, g, x0):
    """This script's definitions against the exported ones; returns the worst error."""
    start = np.array(case["start"])
    if not np.array_equal(x0, start):
        if np.max(np.abs(x0 - start)) > 1e-15 * max(1.0, np.max(np.abs(start))):
            sys.exit(f"{case['name']}: start {x0} differs from the exported {start}")
    worst = 0.0
    for z, ref in ((start, case["g0"]), (np.array(case["z1"]), case["g1"])):
        ref = np.array(ref)
        err = np.linalg.norm(g(z) - ref)
        scale = np.linalg.norm(ref)
        if err > 1e-12 * scale or (scale == 0 and err > 0):
            sys.exit(f"{case['name']}: g differs from the exported g: {err:e} (norm {scale:e})")
        worst = max(worst, err / scale if scale > 0 else 0.0)
    return worst


# ---------------------------------------------------------------------------
# The runs.
# ---------------------------------------------------------------------------

class Reached(Exception):
    pass


class Counted:
    """Counts evaluations and stops the solver at the first point with ||g||_2 <= TOL."""

    def __init__(self, g):
        self.g, self.nfev, self.hit = g, 0, None

    def __call__(self, x):
        x = np.array(x, dtype=float)
        self.nfev += 1
        f = self.g(x)
        if np.linalg.norm(f) <= TOL:
            self.hit = x
            raise Reached
        return f


def solve(g, x0, method):
    w = Counted(g)
    answer, mark = None, "F"
    with np.errstate(all="ignore"):
        try:
            if method == "hybr":
                answer = scipy.optimize.root(w, x0, method="hybr", options={"maxfev": MAX_ITERS}).x
            else:
                answer = scipy.optimize.broyden1(w, x0, f_tol=TOL, tol_norm=np.linalg.norm,
                                                 maxiter=MAX_ITERS)
        except Reached:
            answer = w.hit
        except NoConvergence as e:
            answer = np.asarray(e.args[0], dtype=float)
        except Exception as e:  # noqa: BLE001 - any failure of the solver is a failed run
            mark = "E"
            print(f"  {method}: {type(e).__name__}: {e}", file=sys.stderr)
        residual = float(np.linalg.norm(g(answer))) if answer is not None else float("inf")
    if not np.isfinite(residual):
        residual = float("inf")
    solved = residual <= TOL
    return {"nfev": w.nfev, "solved": solved, "residual": residual, "mark": "✓" if solved else mark}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    cases = json.load(open(args.cases))["cases"]
    systems = [system_of(c) for c in cases]
    worst = max(check(c, g, x0) for c, (g, x0) in zip(cases, systems))
    print(f"{len(cases)} cases: starts equal the exported ones, g agrees to {worst:.1e} relative",
          file=sys.stderr)
    rows = []
    for c, (g, x0) in zip(cases, systems):
        rows.append({"name": c["name"], "hybr": solve(g, x0, "hybr"), "broyden1": solve(g, x0, "broyden1")})
    counts = {m: sum(r[m]["solved"] for r in rows) for m in ("hybr", "broyden1")}
    print(f"solved: {counts}", file=sys.stderr)
    doc = {"numpy": np.__version__, "scipy": scipy.__version__, "tol": TOL, "max_iters": MAX_ITERS,
           "cases": rows}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1)


if __name__ == "__main__":
    main()
