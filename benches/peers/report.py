"""Writes BENCHMARKS.md and its SVG plots from the results of benches/run_benchmarks.sh."""

import argparse
import glob
import json
import math
import os
import platform
import statistics
import subprocess
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from safetensors import safe_open  # noqa: E402

COLUMNS = [("ours", "broyden"), ("ours", "anderson"), ("ours", "picard"), ("torchdeq", "broyden"),
           ("torchdeq", "anderson"), ("torchdeq", "fixed_point_iter"), ("scipy", "broyden1"),
           ("scipy", "anderson")]
LABEL = {("ours", "broyden"): "ours Broyden M=8", ("ours", "anderson"): "ours Anderson M=5",
         ("ours", "picard"): "ours Picard", ("torchdeq", "broyden"): "torchdeq broyden",
         ("torchdeq", "anderson"): "torchdeq anderson", ("torchdeq", "fixed_point_iter"): "torchdeq fixed_point_iter",
         ("scipy", "broyden1"): "SciPy broyden1", ("scipy", "anderson"): "SciPy anderson"}
HEAD = ("ours", "broyden")
PEER = ("torchdeq", "broyden")


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return "?"


def fmt_t(s):
    if s is None or not math.isfinite(s):
        return "–"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-4:
        return f"{s * 1e6:.2g} µs"
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_b(b):
    if b is None:
        return "–"
    for unit, k in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b} B"


def geomean(xs):
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


def machine(threads):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("grep MemTotal /proc/meminfo | awk '{print $2}'")
    mem = f"{int(mem) / (1 << 20):.0f} GiB" if mem.isdigit() else "?"
    return [f"- CPU: {cpu}, {os.cpu_count()} logical cores, {mem} RAM; {platform.system()} {platform.release()}",
            f"- small problems: one thread for every tool (`torch.set_num_threads(1)`; ours single-threaded); "
            f"the [15, 150, 700] state: {threads} threads for every tool (`deq solve --threads {threads}`, "
            f"`torch.set_num_threads({threads})`)"]


def load_runs(work):
    ours = json.load(open(f"{work}/ours.json"))
    peers = json.load(open(f"{work}/peers.json"))
    runs = {}
    for r in ours["runs"] + peers["runs"]:
        runs[(r["problem"], r["tool"], r["solver"])] = r
    problems = list(dict.fromkeys(r["problem"] for r in ours["runs"]))
    return ours, peers, runs, problems


def cell_evals(r):
    if r is None:
        return "–"
    mark = "" if r["converged"] else " ✗"
    return f"{r['f_evals']}{mark} ({r['error']:.0e})"


def tables(runs, problems):
    out = []
    head = "| problem | " + " | ".join(LABEL[c] for c in COLUMNS) + " |"
    sep = "|---" * (len(COLUMNS) + 1) + "|"
    for title, fn in (("f-evaluations (relative error against the float64 reference; ✗: did not meet the rule)",
                       cell_evals),
                      ("time per solve (median)", lambda r: fmt_t(r["time_s"]) if r else "–"),
                      ("solver state (bytes the solver keeps; ours measured, peers from their sources)",
                       lambda r: fmt_b(r["solver_bytes"]) if r else "–")):
        out += [f"### {title}", "", head, sep]
        for p in problems:
            out.append(f"| {p} | " + " | ".join(fn(runs.get((p, *c))) for c in COLUMNS) + " |")
        out.append("")
    return out


def losses(runs, problems):
    """Every problem where ours Broyden loses to torchdeq's broyden, and where some peer
    needs fewer evaluations than every solver of ours."""
    vs, best, slight = [], [], []
    for p in problems:
        a, b = runs.get((p, *HEAD)), runs.get((p, *PEER))
        if a and b:
            why = []
            if b["converged"] and not a["converged"]:
                why.append("ours did not converge, torchdeq did")
            if a["f_evals"] > b["f_evals"]:
                why.append(f"more f-evaluations ({a['f_evals']} vs {b['f_evals']})")
            if a["time_s"] > b["time_s"]:
                why.append(f"slower ({fmt_t(a['time_s'])} vs {fmt_t(b['time_s'])})")
            if a["error"] > 2 * b["error"] and a["error"] > 1e-6:
                why.append(f"larger error ({a['error']:.1e} vs {b['error']:.1e})")
            elif a["error"] > b["error"]:
                slight.append(f"{p} ({a['error']:.2e} vs {b['error']:.2e})")
            if why:
                vs.append(f"- {p}: " + "; ".join(why))
        ours = [runs[(p, *c)] for c in COLUMNS[:3] if (p, *c) in runs and runs[(p, *c)]["converged"]]
        peers = [(c, runs[(p, *c)]) for c in COLUMNS[3:] if (p, *c) in runs and runs[(p, *c)]["converged"]]
        if peers:
            c, r = min(peers, key=lambda x: x[1]["f_evals"])
            mine = min((o["f_evals"] for o in ours), default=None)
            if mine is None or r["f_evals"] < mine:
                best.append(f"- {p}: {LABEL[c]} {r['f_evals']} f-evaluations, ours best "
                            f"{mine if mine is not None else 'none converged'}")
    if slight:
        vs.append(f"- a slightly larger error (at most 2×; the same algorithm "
                  f"through a differently rounded float32 map, f-evaluations as in the tables) on {len(slight)} problems: "
                  + ", ".join(slight))
    return vs, best


def headline(runs, problems):
    ev, tm, mem = [], [], []
    both = 0
    for p in problems:
        a, b = runs.get((p, *HEAD)), runs.get((p, *PEER))
        if a and b and a["converged"] and b["converged"]:
            both += 1
            ev.append(a["f_evals"] / b["f_evals"])
            tm.append(a["time_s"] / b["time_s"])
            mem.append(a["solver_bytes"] / b["solver_bytes"])
    return both, geomean(ev), geomean(tm), geomean(mem), ev, tm


def ours_repeated(work, stem):
    """The report of `deq solve` written as `{stem}.r1.json`, `{stem}.r2.json`, ... (fresh
    processes, the same solve): the first, with `wall_time_s` the median over all of them."""
    reps = [json.load(open(f)) for f in sorted(glob.glob(f"{work}/{stem}.r*.json"))]
    if not reps:
        raise FileNotFoundError(f"{work}/{stem}.r1.json")
    return {**reps[0], "wall_time_s": statistics.median(r["wall_time_s"] for r in reps), "reps": len(reps)}


def peers_repeated(path):
    """The lines of a `run.py big` JSON-lines file, the repetitions of a run (the same solver,
    max_iters and tol) merged into its first line with `time_s` their median."""
    runs = {}
    for line in open(path):
        r = json.loads(line)
        runs.setdefault((r["solver"], r["max_iters"], r["tol_rel"]), []).append(r)
    return [{**rs[0], "time_s": statistics.median(r["time_s"] for r in rs), "reps": len(rs)}
            for rs in runs.values()]


def big_state(work):
    ref = np.load(f"{work}/big_reference.npy")
    refres = json.load(open(f"{work}/big_reference.json"))["reference_residual_rel"]

    def err(z):
        z = z.reshape(ref.shape).astype(np.float64)
        return max(float(np.linalg.norm(z[i] - ref[i]) / np.linalg.norm(ref[i])) for i in range(ref.shape[0]))

    rows = []
    for s in ("broyden", "anderson", "picard"):
        rep = ours_repeated(work, f"ours_big_{s}")
        with safe_open(f"{work}/ours_big_{s}.safetensors", "np") as f:
            z = f.get_tensor("z")
        ev = [x["f_evals"] for x in rep["samples"]]
        rows.append({"tool": "ours", "solver": s, "max_iters": rep["max_iters"], "tol": float(f"{rep['tol_rel']:.3g}"),
                     "evals": f"{max(ev)} (mean {statistics.mean(ev):.1f})", "n": max(ev),
                     "conv": f"{rep['converged']}/{len(ev)}", "time": rep["wall_time_s"], "error": err(z),
                     "rss": rep["peak_rss_bytes"], "state": rep["solver_memory_bytes"]})
    for it in (30, 300):
        rep = json.load(open(f"{work}/ours_big_broyden_it{it}.json"))
        ev = [x["f_evals"] for x in rep["samples"]]
        rows.append({"tool": "ours", "solver": "broyden", "max_iters": it, "tol": 0, "evals": f"{max(ev)}",
                     "conv": "–", "time": rep["wall_time_s"], "error": None, "rss": rep["peak_rss_bytes"],
                     "state": rep["solver_memory_bytes"]})
    base = None
    for r in peers_repeated(f"{work}/peers_big.jsonl"):
        if r["solver"] == "none":
            base = r["peak_rss_bytes"]
            continue
        e = None
        zf = f"{work}/peers_big_{r['solver']}.npy"
        if r["tol_rel"] > 0 and os.path.exists(zf):
            e = err(np.load(zf))
        rows.append({"tool": "torchdeq", "solver": r["solver"], "max_iters": r["max_iters"], "tol": r["tol_rel"],
                     "evals": f"{r['f_evals']} (batched)", "n": r["f_evals"],
                     "conv": ("15/15" if r["residual_rel"] < r["tol_rel"] else "0/15") if r["tol_rel"] > 0 else "–",
                     "time": r["time_s"], "error": e, "rss": r["peak_rss_bytes"], "state": r["solver_bytes"]})
    return rows, base, refres


def big_losses(rows):
    """Where ours loses on the [15, 150, 700] state at tol 1e-6: each solver of ours
    against torchdeq's counterpart."""
    out = []
    conv = {(r["tool"], r["solver"]): r for r in rows if r["tol"] > 0}
    for mine, theirs in (("broyden", "broyden"), ("anderson", "anderson"), ("picard", "fixed_point_iter")):
        a, b = conv.get(("ours", mine)), conv.get(("torchdeq", theirs))
        if not (a and b):
            continue
        why = []
        if a["n"] > b["n"]:
            why.append(f"more f-evaluations per sample ({a['n']} vs {b['n']})")
        if a["time"] > b["time"]:
            why.append(f"slower ({fmt_t(a['time'])} vs {fmt_t(b['time'])})")
        if a["error"] is not None and b["error"] is not None and a["error"] > b["error"]:
            why.append(f"larger error ({a['error']:.1e} vs {b['error']:.1e})")
        if a["rss"] > b["rss"]:
            why.append(f"more peak RSS ({fmt_b(a['rss'])} vs {fmt_b(b['rss'])})")
        if why:
            out.append(f"- [15, 150, 700] state, ours {mine} against torchdeq {theirs}: " + "; ".join(why))
    return out


def big_table(rows, base):
    out = ["| tool | solver | max_iters | tol_rel | f-evaluations per sample (max) | converged | time | "
           "max error over samples | peak RSS (fresh process) | solver state |", "|---" * 10 + "|"]
    for r in rows:
        e = f"{r['error']:.1e}" if r["error"] is not None else "–"
        out.append(f"| {r['tool']} | {r['solver']} | {r['max_iters']} | {r['tol']:g} | {r['evals']} | {r['conv']} | "
                   f"{fmt_t(r['time'])} | {e} | {fmt_b(r['rss'])} | {fmt_b(r['state'])} |")
    out.append("")
    out.append(f"Baseline of the torch process (imports, weights, input, one evaluation, no solver): "
               f"peak RSS {fmt_b(base)}.")
    return out


TRAINING = [("broyden", "torchdeq `broyden` (U, V: one column per iteration)"),
            ("deqsolve_broyden", "`deqsolve_broyden` through torchdeq (M = 8)"),
            ("fixed_point", "`deqsolve.torch.fixed_point` (M = 8)")]


def training_rows(work):
    path = f"{work}/train_steps.jsonl"
    if not os.path.exists(path):
        return {}
    return {(r["solver"], r["max_iter"]): r for r in map(json.loads, open(path)) if r}


def training_headline(rows):
    out = []
    for it in (30, 300):
        o, t = rows.get(("deqsolve_broyden", it)), rows.get(("broyden", it))
        if o and t:
            out.append(f"- Training step (forward + IFT backward) of a [8, 150, 700] state, {it} iterations each: "
                       f"time {fmt_t(o['time_per_step_s'])} vs {fmt_t(t['time_per_step_s'])} "
                       f"({o['time_per_step_s'] / t['time_per_step_s']:.2f}×); peak RSS "
                       f"{fmt_b(o['peak_rss_bytes'])} vs {fmt_b(t['peak_rss_bytes'])}")
    return out


def training_section(rows):
    if not rows:
        return []
    any_row = next(iter(rows.values()))
    b, l, h = any_row["state"]
    L = ["## Training step at DEQ-Transformer size: forward and implicit backward", "",
         f"One training step of a DEQ layer `z = tanh(W z + U x + b)` (per token, {h} × {h}) on a "
         f"[{b}, {l}, {h}] state: the forward fixed point, the loss `mean(z²)`, the IFT backward solve "
         "`w = (∂f/∂z)ᵀ w + ∂L/∂z*` with the same solver, the parameter gradients and an SGD step. Tolerance 0: "
         "every iteration runs in both passes. `benches/peers/train_step.py`, a fresh process per row, "
         f"{any_row['threads']} threads (`torch.set_num_threads`); time: median of the steps after the first; "
         "peak RSS: `ru_maxrss` of the whole process (the Python interpreter, torch, the model and its "
         "activations included).", "",
         "| solver | time per step, 30 iterations | peak RSS | time per step, 300 iterations | peak RSS | "
         "RSS 300 / 30 |", "|---|---|---|---|---|---|"]
    for solver, label in TRAINING:
        a, c = rows.get((solver, 30)), rows.get((solver, 300))
        if not (a and c):
            continue
        L.append(f"| {label} | {fmt_t(a['time_per_step_s'])} | {fmt_b(a['peak_rss_bytes'])} | "
                 f"{fmt_t(c['time_per_step_s'])} | {fmt_b(c['peak_rss_bytes'])} | "
                 f"{c['peak_rss_bytes'] / a['peak_rss_bytes']:.3f} |")
    o30, t30 = rows.get(("deqsolve_broyden", 30)), rows.get(("broyden", 30))
    o300, t300 = rows.get(("deqsolve_broyden", 300)), rows.get(("broyden", 300))
    if o30 and t30 and o300 and t300:
        L += ["", f"Ours against torchdeq's `broyden`, time per step: "
              f"{o30['time_per_step_s'] / t30['time_per_step_s']:.2f}× at 30 iterations, "
              f"{o300['time_per_step_s'] / t300['time_per_step_s']:.3f}× at 300. torchdeq's cost per iteration "
              "grows with the history it stores (each product reads every column of U and V); ours reads 8 "
              "pairs whatever the iteration. The losses of every row agree (the same fixed points): "
              + ", ".join(f"{r['losses'][0]:.6f}" for r in rows.values()) + "."]
    return L + [""]


def plot_traces(traces, path):
    probs = list(dict.fromkeys(t["problem"] for t in traces))
    fig, axes = plt.subplots(1, len(probs), figsize=(4.2 * len(probs), 3.6), squeeze=False)
    for ax, p in zip(axes[0], probs):
        for t in traces:
            if t["problem"] == p and t["residuals"]:
                key = (t["tool"], t["solver"])
                ls = "-" if t["tool"] == "ours" else ("--" if t["tool"] == "torchdeq" else ":")
                ax.semilogy(range(1, len(t["residuals"]) + 1), np.maximum(t["residuals"], 1e-12), ls,
                            label=LABEL[key], lw=1.2)
        ax.axhline(1e-6, color="grey", lw=0.6)
        ax.set_title(p, fontsize=9)
        ax.set_xlabel("f-evaluation")
        ax.set_ylim(1e-9, 1e2)
    axes[0][0].set_ylabel("‖f(z) − z‖ / ‖f(z)‖")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_memory(rows, path, state_shape=(15, 105000)):
    b, d = state_shape
    its = np.array([1, 10, 30, 100, 300, 500])
    fig, ax = plt.subplots(figsize=(6, 4))
    ours_state = next(r["state"] for r in rows if r["tool"] == "ours" and r["solver"] == "broyden")
    ax.loglog(its, [ours_state / 2**20] * len(its), "-", label="ours Broyden M=8: solver state")
    ax.loglog(its, 2 * b * d * its * 4 / 2**20, "--", label="torchdeq broyden: U, V [B, d, max_iters]")
    for tool, mk in (("ours", "o"), ("torchdeq", "s")):
        pts = [(r["max_iters"], r["rss"]) for r in rows if r["tool"] == tool and r["solver"] == "broyden"
               and r["tol"] == 0]
        if pts:
            ax.loglog([p[0] for p in pts], [p[1] / 2**20 for p in pts], mk, label=f"{tool} broyden: peak RSS")
    ax.set_xlabel("max_iters")
    ax.set_ylabel("MiB")
    ax.set_title("[15, 150, 700] state: memory against max_iters", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def criterion(cdir):
    est = {}
    for f in glob.glob(f"{cdir}/**/new/benchmark.json", recursive=True):
        meta = json.load(open(f))
        e = json.load(open(os.path.join(os.path.dirname(f), "estimates.json")))
        est[meta["full_id"]] = e["median"]["point_estimate"] * 1e-9
    return est


def criterion_section(est, work):
    out = []
    ov = {k: v for k, v in est.items() if k.startswith("overhead/")}
    if ov:
        out += ["### The solver's own cost per iteration against one f-evaluation", "",
                "| d | Broyden M=8 iteration | Anderson M=5 iteration | cheap map | one DEQ-layer evaluation | "
                "Broyden / layer | Anderson / layer |", "|---" * 7 + "|"]
        for d in ("256", "105000"):
            br, an = ov.get(f"overhead/broyden_iter/{d}"), ov.get(f"overhead/anderson_iter/{d}")
            cm, le = ov.get(f"overhead/cheap_map/{d}"), ov.get(f"overhead/layer_eval/{d}")
            if None in (br, an, cm, le):
                continue
            out.append(f"| {d} | {fmt_t(br)} | {fmt_t(an)} | {fmt_t(cm)} | {fmt_t(le)} | "
                       f"{(br - cm) / le:.3f} | {(an - cm) / le:.3f} |")
        out += ["", "An iteration's time includes the cheap map's; the ratios subtract it. d = 105 000 is one "
                "sample of the [150 × 700] state (150 rows through a 700-wide layer).", ""]
    sv = {k: v for k, v in est.items() if k.startswith("solve/")}
    if sv:
        evals = {}
        txt = f"{work}/criterion_solvers.txt"
        if os.path.exists(txt):
            for line in open(txt):
                if "f-evaluations" in line and ":" in line:
                    k, rest = line.split(":", 1)
                    evals[k.replace(" ", "/")] = rest.split(",")[0].strip()
        out += ["### Each solver on standard problems (criterion, one thread)", "",
                "| problem / solver | time per solve | f-evaluations |", "|---|---|---|"]
        for k, v in sorted(sv.items()):
            key = k[len("solve/"):]
            out.append(f"| {key} | {fmt_t(v)} | {evals.get(key, '–')} |")
        out.append("")
    bt = {k: v for k, v in est.items() if k.startswith("batch_lockstep")}
    if bt:
        out += ["### Batch throughput against threads (lockstep Broyden, 64 samples, d = 256 layer)", "",
                "| threads | time per batch | samples/s |", "|---|---|---|"]
        for k, v in sorted(bt.items()):
            out.append(f"| {k.rsplit('/', 1)[-1]} | {fmt_t(v)} | {64 / v:.0f} |")
        out.append("")
    kn = {k: v for k, v in est.items() if k.split("/")[0] in
          ("dot", "norm", "dist", "axpy", "multi_dot", "multi_axpy", "low_rank_acc")}
    if kn:
        names = list(dict.fromkeys(k.split("/")[0] for k in kn))
        sizes = sorted({int(k.split("/")[-1]) for k in kn})
        out += ["### Kernels: SIMD against scalar (M = 8 rows for the multi-row kernels)", "",
                "| kernel | " + " | ".join(f"N = {n}: SIMD (speed-up)" for n in sizes) + " |",
                "|---" * (len(sizes) + 1) + "|"]
        for nm in names:
            cells = []
            for n in sizes:
                s, r = kn.get(f"{nm}/simd/{n}"), kn.get(f"{nm}/scalar/{n}")
                cells.append(f"{fmt_t(s)} ({r / s:.1f}×)" if s and r else "–")
            out.append(f"| {nm} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def threads_section(work, threads, rows):
    """Ours against torchdeq's counterpart of each solver at 1 and `threads` threads:
    the small problems (time per solve, worst and geometric mean of per-problem ratios)
    and the [15, 150, 700] state (`rows` from big_state for `threads`)."""
    pairs = (("broyden", "broyden"), ("anderson", "anderson"), ("picard", "fixed_point_iter"))
    out = ["## Against torchdeq at 1 and 2 threads", "",
           "Time ratio ours / torchdeq (below 1: ours faster) for each solver of ours against its torchdeq "
           "counterpart, on every problem both solve to the rule. Small problems at 2 threads: "
           "`torch.set_num_threads(2)` against `run_ours DIR OUT 2` (the problem's `f` splits its rows over "
           "2 threads for d ≥ 256, as torch's product does; the solver's own work stays on one thread: one "
           "sample). The f-evaluations and errors of ours are the same bits at 1 and 2 threads.", "",
           "| solver pair | small problems, 1 thread: worst (problem) | geomean | 2 threads: worst (problem) "
           "| geomean |", "|---|---|---|---|---|"]
    sets = []
    for o, p in (("ours.json", "peers.json"), ("ours_2t.json", "peers_2t.json")):
        if not (os.path.exists(f"{work}/{o}") and os.path.exists(f"{work}/{p}")):
            return []
        runs = {}
        for r in json.load(open(f"{work}/{o}"))["runs"] + json.load(open(f"{work}/{p}"))["runs"]:
            runs[(r["problem"], r["tool"], r["solver"])] = r
        sets.append(runs)
    for mine, theirs in pairs:
        cells = []
        for runs in sets:
            ratios = []
            for (prob, tool, s), r in runs.items():
                t = runs.get((prob, "torchdeq", theirs))
                if tool == "ours" and s == mine and t and r["converged"] and t["converged"]:
                    ratios.append((r["time_s"] / t["time_s"], prob))
            if not ratios:
                cells += ["–", "–"]
                continue
            w = max(ratios)
            cells += [f"{w[0]:.2f} ({w[1]})", f"{geomean([x for x, _ in ratios]):.2f}"]
        out.append(f"| ours {mine} / torchdeq {theirs} | " + " | ".join(cells) + " |")
    big = []
    conv = {(r["tool"], r["solver"]): r for r in rows if r["tol"] > 0}
    one = {}
    if os.path.exists(f"{work}/peers_big_1t.jsonl"):
        one = {r["solver"]: r for r in peers_repeated(f"{work}/peers_big_1t.jsonl")}
    for s, theirs in (("anderson", "anderson"), ("picard", "fixed_point_iter")):
        o2, t2 = conv.get(("ours", s)), conv.get(("torchdeq", theirs))
        if not (glob.glob(f"{work}/ours_big_{s}_1t.r*.json") and theirs in one and o2 and t2):
            continue
        o1, t1 = ours_repeated(work, f"ours_big_{s}_1t")["wall_time_s"], one[theirs]["time_s"]
        big.append(f"- [15, 150, 700] state to tol_rel 1e-6, ours {s} against torchdeq {theirs}: 1 thread "
                   f"{fmt_t(o1)} vs {fmt_t(t1)} ({o1 / t1:.2f}×), {threads} threads "
                   f"{fmt_t(o2['time'])} vs {fmt_t(t2['time'])} ({o2['time'] / t2['time']:.2f}×)")
    return out + [""] + big + [""]


def floor_section(work):
    """The floor bench's tables (the solve against the time of its evaluations inside the same
    solve) and the bandwidth bench's, as they print them."""
    out = []
    parts = [(f"{work}/floor_big.md", "At DEQ scale"), (f"{work}/floor_small.md", "Small layers"),
             (f"{work}/bandwidth.md", "Kernel bandwidth beyond the caches")]
    if not any(os.path.exists(p) for p, _ in parts):
        return out
    out += ["## Solver overhead: each solve against its evaluations alone", "",
            "`floor` times every evaluation of the layer inside the solve (thread-seconds divided by the "
            "threads) and divides the solve's wall time by it: 1.00 would be a solver that costs nothing. "
            "`bandwidth` measures the low-rank product U(Vᵀx) beyond the caches next to the machine's "
            "streaming rate.", ""]
    for path, title in parts:
        if os.path.exists(path):
            out += [f"### {title}", "", open(path).read().strip(), ""]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--svg-dir", required=True)
    ap.add_argument("--criterion")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ours, peers, runs, problems = load_runs(a.work)
    rel = os.path.relpath(a.svg_dir, os.path.dirname(os.path.abspath(a.out)) or ".")
    v = peers["versions"]
    rows, base, refres = big_state(a.work)
    plot_traces(ours["traces"] + peers["traces"], f"{a.svg_dir}/convergence.svg")
    plot_memory(rows, f"{a.svg_dir}/memory_vs_max_iters.svg")
    both, g_ev, g_tm, g_mem, ev, tm = headline(runs, problems)
    vs, best = losses(runs, problems)
    bb = {(r["tool"], r["max_iters"], r["tol"]): r for r in rows if r["solver"] == "broyden"}
    L = ["# Benchmarks", "",
         "Generated by `bash benches/run_benchmarks.sh` (do not edit by hand): this project's solvers "
         "next to torchdeq's and SciPy's on the same problem instances (the same files), to the same stopping "
         "rule, in the same run.", "", "## Machine and versions", ""]
    L += machine(a.threads)
    L += [f"- {sh('rustc --version')}; Python {v['python']}, torch {v['torch']} (CPU), torchdeq "
          f"{v.get('torchdeq', '?')}, SciPy {v['scipy']}, NumPy {v['numpy']}, safetensors {v.get('safetensors', '?')}",
          "", "## Headline against torchdeq's broyden", ""]
    L += [f"On the {both} problems of the suite where both converge, ours Broyden (M = 8) against torchdeq's "
          f"`broyden` (geometric means of per-problem ratios, ours / torchdeq; below 1 is better for ours):", "",
          f"- f-evaluations: **{g_ev:.2f}** (range {min(ev):.2f}–{max(ev):.2f})",
          f"- time per solve: **{g_tm:.3f}** (range {min(tm):.3f}–{max(tm):.2f})",
          f"- solver state: **{g_mem:.3f}** (torchdeq keeps U, V of `max_iters` = 500 columns)", "",
          "On these small problems (d ≤ 1024, one f-evaluation costs microseconds) torchdeq's time is mostly "
          "Python and per-operation dispatch, not arithmetic: the time ratio says what a user of each tool "
          "waits, not how fast the algebra is. The [15, 150, 700] state below, where one evaluation costs "
          "about 10–30 ms, is the compute-bound comparison.", ""]
    k = lambda t, it, tol: bb.get((t, it, tol))  # noqa: E731
    for it in (30, 300):
        o, t = k("ours", it, 0), k("torchdeq", it, 0)
        if o and t:
            L.append(f"- [15, 150, 700] state, {it} iterations (no early stop): time {fmt_t(o['time'])} vs "
                     f"{fmt_t(t['time'])} ({o['time'] / t['time']:.2f}×); peak RSS {fmt_b(o['rss'])} vs "
                     f"{fmt_b(t['rss'])} ({o['rss'] / t['rss']:.3f}×); solver state {fmt_b(o['state'])} vs "
                     f"{fmt_b(t['state'])} ({o['state'] / t['state']:.3f}×)")
    train = training_rows(a.work)
    L += training_headline(train)
    o, t = k("ours", 500, 1e-6), k("torchdeq", 500, 1e-6)
    if o and t:
        L.append(f"- [15, 150, 700] state to tol_rel 1e-6: f-evaluations per sample {o['evals']} vs {t['evals']}; "
                 f"time {fmt_t(o['time'])} vs {fmt_t(t['time'])} ({o['time'] / t['time']:.2f}×); peak RSS "
                 f"{fmt_b(o['rss'])} vs {fmt_b(t['rss'])}")
    L += [""] + threads_section(a.work, a.threads, rows)
    L += ["### Every problem where ours Broyden loses to torchdeq's broyden", ""]
    L += vs or ["- none"]
    L += ["", "### The [15, 150, 700] state: where each solver of ours loses to torchdeq's counterpart", ""]
    L += big_losses(rows) or ["- none"]
    L += ["", "### Every problem where a peer solver needs fewer f-evaluations than every solver of ours", ""]
    L += best or ["- none"]
    L += ["", "## How it is measured", "",
          "- Problems: the standard suite of `deq-problems` (`standard_suite()`: tanh DEQ layers d = 16–1024, "
          "ρ = 0.5–1.2, semicircle and uniform spectra; the Chandrasekhar H-equation n = 500, c = 0.5, 0.99, 0.9999; "
          "a linear map on which plain iteration diverges (eigenvalue −1.5)), written by `export_problems` as "
          "safetensors files (A, c, start, float64 reference) that every tool reads. The float64 references are "
          "float64 Newton solves. Each file is read back in Rust and checked bit-identical to the in-memory "
          "problem; in Python the float64 residual at the reference is at most "
          f"{max(c['residual_at_reference'] for c in peers['checks']):.1e} and the float32 map agrees with the "
          f"float64 one to {max(c['f32_vs_f64'] for c in peers['checks']):.1e} (relative).",
          "- Stopping rule: ‖f(z) − z‖₂ ≤ 1e-6 ‖f(z)‖₂, at most 500 iterations. Ours: `tol_rel = 1e-6`, "
          "defaults otherwise (stall after 50 iterations without a new best residual). torchdeq: "
          "`stop_mode='rel', tol=1e-6` (its rule is ‖f(z) − z‖ / (‖f(z)‖ + 1e-9) < tol, batch maximum; it "
          "also stops after 30 steps of no progress once within 3·tol). SciPy's `broyden1` / `anderson` test "
          "only the max-norm of g = f(z) − z, so each call of g is wrapped: the first point that meets the rule "
          "above stops the solver and is its answer (its own test is disabled with `f_tol=1e-300`; `maxiter=500`).",
          "- f-evaluations are counted by a wrapper around f for every tool (torchdeq's `nstep` is not used). "
          "SciPy's `broyden1` uses its default Armijo line search, which spends extra evaluations.",
          "- Settings: ours Broyden M = 8, Anderson M = 5, Picard (as `feval_table`); torchdeq `broyden` "
          "(defaults: no line search, full history), `anderson` (m = 6 stored iterates, i.e. 5 differences, "
          "λ = 1e-4), `fixed_point_iter`; SciPy `broyden1` (defaults), `anderson` (M = 5).",
          "- Precision: ours and torchdeq float32; SciPy float64 (its default) on the same float32 weights "
          "widened. Error: ‖z − z_ref‖₂ / ‖z_ref‖₂ against the float64 reference, for the answer each tool "
          "returns (ours, torchdeq: the best iterate; SciPy: the best point evaluated).",
          "- Time: wall time of one solve, median of repetitions (up to 7 for ours, 5 for the peers, within "
          "0.5 s), one thread. Solver state: ours `memory_bytes()`; torchdeq from its source (broyden: "
          "`Us`, `VTs` = 2·B·d·max_iters float32; anderson: 2·B·6·d; fixed_point_iter: 2·B·d); SciPy from its "
          "source (broyden1: two float64 vectors per iteration run; anderson: 2·M·d float64).",
          "- The [15, 150, 700] state: `deq demo --hidden 700 --input-width 700 --samples 15 --tokens 150` files "
          "(the built-in demo layer, f(z) = tanh(z Wᵀ + x Uᵀ + b) per token). Ours: `deq solve` (lockstep, one "
          "Broyden per sample); torchdeq: the batch as one [15, 105 000] call per evaluation (its f-evaluations "
          "are batched calls; ours are per sample, a converged sample stops costing). Each run is a fresh "
          f"process; the solves to tol_rel 1e-6 run in {len(glob.glob(f'{a.work}/ours_big_broyden.r*.json'))} "
          "fresh processes each (`REPS`, 3 unless set), ours and torchdeq's, "
          "and their time is the median (the 30- and 300-iteration runs: one process); peak RSS is `VmHWM` (ours) and `ru_maxrss` (torch). Reference: torchdeq's anderson in "
          f"float64 to a relative residual of {refres:.1e}. SciPy is not run on this state.",
          "", "## Convergence traces", "", f"![convergence]({rel}/convergence.svg)", "",
          "Relative residual ‖f(z) − z‖ / ‖f(z)‖ at every evaluation (solid: ours, dashed: torchdeq, "
          "dotted: SciPy).", "", "## Memory against max_iters", "",
          f"![memory]({rel}/memory_vs_max_iters.svg)", "", "## Results on the problem suite", ""]
    L += tables(runs, problems)
    L += ["## The [15, 150, 700] DEQ-Transformer-sized state", ""]
    L += big_table(rows, base)
    L += [""] + training_section(train)
    L += floor_section(a.work)
    if a.criterion and os.path.isdir(a.criterion):
        L += ["", "## Criterion benches (warm-up 1 s, measurement 2 s; medians)", ""]
        L += criterion_section(criterion(a.criterion), a.work)
    L += ["## Commands", "", "```text", "bash benches/run_benchmarks.sh", "```", "",
          "which runs, in order: `cargo build --release -p deq-benches --bin export_problems --bin run_ours`, "
          "`cargo build --release -p solver-host --bin deq`, `python3 -m venv benches/peers/.venv` and "
          "`pip install -r benches/peers/requirements.txt`, `export_problems DIR`, `run_ours DIR OUT`, "
          "`python benches/peers/run.py small ...`, `deq demo ...`, `python run.py reference ...`, "
          "`deq solve ... --report R.json` (tol 1e-6 for each solver; `--max-iters 30|300 --tol-rel 0 "
          "--stall-iters 0`), `python run.py big ...` (torchdeq, a fresh process each), "
          "`pip install ./solver-py` and `python benches/peers/train_step.py --solver S --max-iter 30|300` "
          "(S = broyden, deqsolve_broyden, fixed_point; a fresh process each), "
          "`floor` (the [15, 150, 700] state; `floor 16 16 256` and `floor 64 1 256`) and `bandwidth`, "
          "`cargo bench -p deq-benches --bench solvers|overhead|kernels -- --warm-up-time 1 "
          "--measurement-time 2`, and `python benches/peers/report.py`.", ""]
    open(a.out, "w").write("\n".join(L))
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
