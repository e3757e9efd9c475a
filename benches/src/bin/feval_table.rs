//! Prints, as a Markdown table, the f-evaluations each solver needs to reach
//! `tol_rel = 1e-6` (f32) on the standard problem suite: Broyden with M = 8 pairs,
//! the same Broyden with unbounded history (M > max_iters), Anderson (M = 5) and Picard;
//! and in the last column Broyden M = 8 in float64 (`Broyden<N, 8, f64>`'s algorithm on
//! the problem's float64 map, same start) to `tol_rel = 1e-12`.
//!
//! Each entry is `f-evals` followed by a status letter when the solve did not converge
//! (M: max iterations, S: stalled, D: diverged, N: non-finite), and the relative error
//! of the answer against the float64 reference root (and, when that is large, against
//! the float64 root nearest to the answer).
//!
//! ```text
//! cargo run --release -p deq-benches --bin feval_table
//! ```

use deq_benches::{anderson, broyden, broyden_f64, cell, cell_f64, picard};
use deq_problems::standard_suite;
use solver_core::{AndersonSettings, BroydenSettings, Options, PicardSettings};

const MAX_ITERS: u32 = 500;

fn main() {
    let opts = Options { max_iters: MAX_ITERS, tol_rel: 1e-6, ..Options::DEFAULT };
    let opts_f64 = Options::<f64> { max_iters: MAX_ITERS, tol_rel: 1e-12, ..Options::DEFAULT };
    let suite = standard_suite();
    println!(
        "f-evaluations to tol_rel = 1e-6 in f32 (relative error against the float64 reference root); max_iters = {MAX_ITERS}; last column: float64 to tol_rel = 1e-12\n"
    );
    println!(
        "| problem | Broyden M=8 | Broyden unbounded | ratio | Anderson M=5 | Picard | Broyden M=8 f64 |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    let mut failures = Vec::new();
    for p in &suite {
        let p = p.as_ref();
        let b8 = broyden(p, 8, &BroydenSettings::DEFAULT, &opts);
        let bu = broyden(p, MAX_ITERS as usize + 1, &BroydenSettings::DEFAULT, &opts);
        let an = anderson(p, 5, &AndersonSettings::DEFAULT, &opts);
        let pi = picard(p, &PicardSettings::DEFAULT, &opts);
        let b64 = broyden_f64(p, 8, &opts_f64);
        let ratio = f64::from(b8.0.f_evals) / f64::from(bu.0.f_evals);
        if b8.0.status.is_converged() && bu.0.status.is_converged() {
            worst = worst.max(ratio);
        }
        if bu.0.status.is_converged() && !b8.0.status.is_converged() {
            failures.push(p.name());
        }
        println!(
            "| {} | {} | {} | {ratio:.2} | {} | {} | {} |",
            p.name(),
            cell(p, &b8),
            cell(p, &bu),
            cell(p, &an),
            cell(p, &pi),
            cell_f64(p, &b64)
        );
    }
    println!("\nworst ratio Broyden M=8 / unbounded: {worst:.2}");
    println!("problems where M=8 fails but unbounded converges: {failures:?}");
}
