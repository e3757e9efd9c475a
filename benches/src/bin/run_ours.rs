//! Runs this project's solvers on every instance file written by `export_problems`
//! (Broyden M = 8, Anderson M = 5, Picard; default settings, `tol_rel = 1e-6`,
//! `max_iters = 500`: the settings of `feval_table`) and writes the results as JSON:
//! f-evaluations, status, error against the float64 reference stored in the file,
//! median time per solve, the solver's bytes, and the per-evaluation relative residual
//! of a few instances (for the convergence plots).
//!
//! ```text
//! cargo run --release -p deq-benches --bin run_ours -- PROBLEM_DIR OUT.json [THREADS]
//! ```
//!
//! With `THREADS` (default 1) above 1, each solve runs in a rayon pool of that many
//! threads and the problem's `f` splits its rows over them for `d ≥ 256`
//! ([`FileProblem::split_rows`]), as a peer's matrix product does with
//! `torch.set_num_threads`; the solver's own vector work stays on one thread (one
//! sample). The f-evaluations and errors are the same bits at any `THREADS`.

use std::path::PathBuf;

use deq_benches::instances::FileProblem;
use deq_benches::timing::{timed, trace};
use serde_json::{Value, json};
use solver_core::Options;
use solver_host::{DynAnderson, DynBroyden, DynPicard, Solver};

/// Most iterations per solve.
const MAX_ITERS: u32 = 500;
/// Wall time spent repeating one solver on one problem, seconds.
const BUDGET_S: f64 = 0.5;
/// Most repetitions.
const MAX_REPS: usize = 7;
/// Instances whose residual traces are recorded.
pub const TRACED: [&str; 4] =
    ["tanh d=1024 rho=0.99", "tanh d=256 rho=1.2", "h-equation n=500 c=0.9999", "linear d=64 rho=1.5"];

fn solvers(d: usize) -> Vec<(&'static str, Box<dyn Solver + Send>)> {
    vec![
        ("broyden", Box::new(DynBroyden::with_sizes(d, 8).expect("sizes"))),
        ("anderson", Box::new(DynAnderson::with_sizes(d, 5).expect("sizes"))),
        ("picard", Box::new(DynPicard::with_sizes(d).expect("sizes"))),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "benches/results/problems".into()));
    let out = PathBuf::from(args.next().unwrap_or_else(|| "benches/results/ours.json".into()));
    let threads: usize = args.next().map_or(1, |t| t.parse().expect("THREADS: a whole number"));
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let index: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("read index.json"))
            .expect("parse index.json");
    let opts = Options { max_iters: MAX_ITERS, tol_rel: 1e-6, ..Options::DEFAULT };
    let mut runs = Vec::new();
    let mut traces = Vec::new();
    for entry in &index {
        let file = entry["file"].as_str().expect("file");
        let p = FileProblem::load(&dir.join(file)).unwrap_or_else(|e| panic!("{e}")).split_rows(threads > 1);
        for (name, mut s) in solvers(p.d) {
            let t = pool.install(|| timed(s.as_mut(), &p, &opts, BUDGET_S, MAX_REPS));
            eprintln!(
                "{:28} {name:9} {:4} evals {:?} err {:.1e} {:.3} ms",
                p.name,
                t.report.f_evals,
                t.report.status,
                t.error,
                t.seconds * 1e3
            );
            runs.push(json!({
                "problem": p.name,
                "tool": "ours",
                "solver": name,
                "precision": "float32",
                "f_evals": t.report.f_evals,
                "iterations": t.report.iterations,
                "status": t.report.status.to_string(),
                "converged": t.report.status.is_converged(),
                "residual_rel": t.report.residual_rel,
                "error": t.error,
                "time_s": t.seconds,
                "reps": t.reps,
                "solver_bytes": t.solver_bytes,
                "threads": threads,
            }));
            // The traces (the same at any THREADS) are recorded by the one-thread run.
            if threads == 1 && TRACED.contains(&p.name.as_str()) {
                traces.push(json!({ "problem": p.name, "tool": "ours", "solver": name, "residuals": trace(s.as_mut(), &p, &opts) }));
            }
        }
    }
    let doc = json!({ "max_iters": MAX_ITERS, "tol_rel": 1e-6, "threads": threads, "runs": runs, "traces": traces });
    std::fs::write(&out, serde_json::to_string_pretty(&doc).expect("encode")).expect("write the results");
    println!("wrote {}", out.display());
}
