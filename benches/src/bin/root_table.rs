//! Prints, as a Markdown table, what `Broyden::solve_root` does on the 43 classic
//! root-finding cases of [`classic_root_cases`] (the Moré–Garbow–Hillstrom systems of
//! MINPACK's `hybrd` test list at `x0` and `10·x0`, and SciPy's `test_nonlin.py`
//! problems), beside SciPy's `root(method='hybr')` (MINPACK's `hybrd`) and `broyden1`.
//!
//! Our solver: `DynBroyden::<T>::with_sizes(n, 8)` (the algorithm of
//! `Broyden::<N, 8, T>`, over heap buffers) through `solve_root_dyn`, on the case's
//! residual in `T`, from its start rounded to `T`, with `Options { tol_abs: 1e-5,
//! tol_rel: 0, max_iters: 1000, ..Options::DEFAULT }`; in f32 and in f64, with the
//! default `BroydenSettings` and with `line_search: true`.
//!
//! A run counts as **solved** (✓) only if `‖g(z)‖₂`, recomputed in float64 at the
//! returned `z`, is at most `1e-5`. Each cell is the number of evaluations of `g`,
//! then ✓ or, for a run not solved, a letter and the recomputed `‖g(z)‖₂`: C
//! (the solver's own f32 test passed but the float64 residual did not), M (max
//! iterations), S (stalled), D (diverged), N (non-finite); for SciPy, F (it stopped
//! without meeting the tolerance) or E (it raised an error).
//! The last row counts the solved runs per column.
//!
//! ```text
//! # Our columns only:
//! cargo run --release -p deq-benches --bin root_table
//! # With SciPy's: export the cases, run SciPy on them, print both.
//! cargo run --release -p deq-benches --bin root_table -- --export target/roots
//! benches/peers/.venv/bin/python benches/peers/roots.py \
//!     --cases target/roots/root_cases.json --out target/roots/root_peers.json
//! cargo run --release -p deq-benches --bin root_table -- --peers target/roots/root_peers.json
//! ```
//!
//! The SciPy harness needs only `numpy` and `scipy` (`benches/peers/requirements.txt`
//! pins the versions); any virtual environment with those two will do.
//! `--export DIR` writes `DIR/root_cases.json`: per case its name, system, `n`, start
//! factor, start and `g(start)`, and a second point with `g` there, so that the
//! harness checks its own definitions against these before it solves anything.

use std::path::PathBuf;

use deq_problems::{RootProblem, classic_root_cases};
use serde_json::{Value, json};
use solver_core::{BroydenSettings, Options, Real, Status};
use solver_host::DynBroyden;

/// The solved threshold on `‖g(z)‖₂`, recomputed in float64.
const TOL: f64 = 1e-5;
const MAX_ITERS: u32 = 1000;
const HISTORY: usize = 8;

/// One run: evaluations, the solver's status, and `‖g‖₂` at its answer in float64.
struct Run {
    f_evals: u32,
    status: Status,
    residual: f64,
}

impl Run {
    fn solved(&self) -> bool {
        self.residual <= TOL
    }

    fn cell(&self) -> String {
        if self.solved() {
            return format!("{} ✓", self.f_evals);
        }
        let letter = match self.status {
            Status::Converged => "C",
            Status::MaxIterations => "M",
            Status::Stalled => "S",
            Status::Diverged => "D",
            Status::NonFinite => "N",
        };
        format!("{} {letter} {:.1e}", self.f_evals, self.residual)
    }
}

/// Broyden (M = 8) on `g` in `T` from `start`, judged by the float64 residual.
fn run<T: Real>(p: &dyn RootProblem, g: &mut dyn FnMut(&[T], &mut [T]), line_search: bool) -> Run {
    let mut solver = DynBroyden::<T>::with_sizes(p.dim(), HISTORY).expect("sizes");
    solver.settings = BroydenSettings { line_search, ..BroydenSettings::DEFAULT };
    let opts = Options::<T> {
        tol_abs: T::from_f64(TOL),
        tol_rel: T::ZERO,
        max_iters: MAX_ITERS,
        ..Options::DEFAULT
    };
    let mut z: Vec<T> = p.start().iter().map(|&v| T::from_f64(v)).collect();
    let report = solver.solve_root_dyn(g, &mut z, &opts).expect("the start has the dimension");
    let z64: Vec<f64> = z.iter().map(|v| v.to_f64()).collect();
    let residual = p.residual_norm_f64(&z64);
    Run {
        f_evals: report.f_evals,
        status: report.status,
        residual: if residual.is_nan() { f64::INFINITY } else { residual },
    }
}

/// The four runs of our solver: f32 and f64, default and with the line search.
fn ours(p: &dyn RootProblem) -> [Run; 4] {
    let f32_run = |ls| run::<f32>(p, &mut |z, o| p.residual_f32(z, o), ls);
    let f64_run = |ls| run::<f64>(p, &mut |z, o| p.residual_f64(z, o), ls);
    [f32_run(false), f64_run(false), f32_run(true), f64_run(true)]
}

/// A point beside the start, for checking a peer's definitions away from `x0`.
fn second_point(start: &[f64]) -> Vec<f64> {
    start.iter().enumerate().map(|(i, s)| s + 0.01 * (i as f64 + 1.0)).collect()
}

fn export(cases: &[Box<dyn RootProblem>], dir: &PathBuf) {
    let rows: Vec<Value> = cases
        .iter()
        .map(|p| {
            let (family, system) = p.system();
            let start = p.start();
            let z1 = second_point(&start);
            let mut g0 = vec![0.0; p.dim()];
            let mut g1 = vec![0.0; p.dim()];
            p.residual_f64(&start, &mut g0);
            p.residual_f64(&z1, &mut g1);
            json!({
                "name": p.name(), "family": family, "system": system, "n": p.dim(),
                "factor": p.start_factor(), "start": start, "g0": g0, "z1": z1, "g1": g1,
            })
        })
        .collect();
    std::fs::create_dir_all(dir).expect("create the export directory");
    let path = dir.join("root_cases.json");
    let doc = json!({ "tol": TOL, "max_iters": MAX_ITERS, "cases": rows });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write root_cases.json");
    eprintln!("wrote {}", path.display());
}

/// SciPy's cell for a case from the harness's JSON, and whether it solved it.
fn peer_cell(peers: &Value, name: &str, method: &str) -> (String, bool) {
    let Some(r) = peers["cases"].as_array().and_then(|cs| cs.iter().find(|c| c["name"] == name)) else {
        return ("–".into(), false);
    };
    let r = &r[method];
    let nfev = r["nfev"].as_u64().unwrap_or(0);
    let residual = r["residual"].as_f64().unwrap_or(f64::INFINITY);
    if r["solved"].as_bool() == Some(true) {
        (format!("{nfev} ✓"), true)
    } else {
        (format!("{nfev} {} {residual:.1e}", r["mark"].as_str().unwrap_or("?")), false)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut export_dir, mut peers_path) = (None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--export" => export_dir = Some(PathBuf::from(args.next().expect("--export DIR"))),
            "--peers" => peers_path = Some(PathBuf::from(args.next().expect("--peers FILE"))),
            _ => panic!("unknown argument {a:?} (see the doc comment: --export DIR, --peers FILE)"),
        }
    }
    let cases = classic_root_cases();
    if let Some(dir) = &export_dir {
        export(&cases, dir);
    }
    let peers: Option<Value> = peers_path.map(|p| {
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).expect("peers JSON")
    });

    println!(
        "Broyden M = {HISTORY} `solve_root`, tol_abs = {TOL:e} on ‖g‖₂, tol_rel = 0, max_iters = {MAX_ITERS}; \
         solved (✓) when ‖g(z)‖₂ recomputed in float64 is ≤ {TOL:e}; f-evaluations per run\n"
    );
    let mut header = "| case | n | f32 | f64 | f32 line search | f64 line search |".to_string();
    let mut rule = "|---|---|---|---|---|---|".to_string();
    if peers.is_some() {
        header += " SciPy hybr | SciPy broyden1 |";
        rule += "---|---|";
    }
    println!("{header}\n{rule}");
    let mut solved = [0usize; 6];
    for p in &cases {
        let p = p.as_ref();
        let runs = ours(p);
        let mut row = format!("| {} | {} |", p.name(), p.dim());
        for (k, r) in runs.iter().enumerate() {
            solved[k] += usize::from(r.solved());
            row += &format!(" {} |", r.cell());
        }
        if let Some(peers) = &peers {
            for (k, method) in ["hybr", "broyden1"].into_iter().enumerate() {
                let (cell, ok) = peer_cell(peers, &p.name(), method);
                solved[4 + k] += usize::from(ok);
                row += &format!(" {cell} |");
            }
        }
        println!("{row}");
    }
    let columns = if peers.is_some() { 6 } else { 4 };
    let counts: Vec<String> = solved[..columns].iter().map(|s| format!("**{s}/{}**", cases.len())).collect();
    println!("| solved | | {} |", counts.join(" | "));
    println!(
        "\nNot solved: the f-evaluations, a letter and ‖g(z)‖₂ at the answer. C: the solver's own f32 \
         test passed but the float64 residual did not; M: max iterations; S: stalled; D: diverged; \
         N: non-finite; SciPy: F: stopped without meeting the tolerance, E: raised an error."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use solver_core::Broyden;

    /// The table's run-time-sized solver is `Broyden::<N, M>` step for step: the
    /// const-sized solver with `new()` gives the same report and answer.
    #[test]
    fn dyn_broyden_is_the_const_sized_solver() {
        let cases = classic_root_cases();
        let find = |name: &str| cases.iter().find(|c| c.name() == name).expect("case").as_ref();
        let opts = Options::<f64> { tol_abs: TOL, tol_rel: 0.0, max_iters: MAX_ITERS, ..Options::DEFAULT };

        let p = find("rosenbrock n=2 x0");
        let mut z = [0.0; 2];
        z.copy_from_slice(&p.start());
        let report = Broyden::<2, HISTORY, f64>::new().solve_root(|x, o| p.residual_f64(x, o), &mut z, &opts);
        let r = run::<f64>(p, &mut |x, o| p.residual_f64(x, o), false);
        assert_eq!((report.f_evals, report.status), (r.f_evals, r.status));
        assert_eq!(p.residual_norm_f64(&z), r.residual);

        let p = find("discrete_integral_equation n=10 10·x0");
        let opts32 = Options::<f32> { tol_abs: 1e-5, tol_rel: 0.0, max_iters: MAX_ITERS, ..Options::DEFAULT };
        let mut z = [0.0f32; 10];
        for (zi, s) in z.iter_mut().zip(p.start()) {
            *zi = s as f32;
        }
        let report = Broyden::<10, HISTORY>::new().solve_root(|x, o| p.residual_f32(x, o), &mut z, &opts32);
        let r = run::<f32>(p, &mut |x, o| p.residual_f32(x, o), false);
        assert_eq!((report.f_evals, report.status), (r.f_evals, r.status));
        let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
        assert_eq!(p.residual_norm_f64(&z64), r.residual);
        assert!(r.solved());
    }
}
