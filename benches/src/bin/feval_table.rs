//! Prints, as a Markdown table, the f-evaluations each solver needs to reach
//! `tol_rel = 1e-6` (f32) on the standard problem suite: Broyden with M = 8 pairs,
//! the same Broyden with unbounded history (M > max_iters), Anderson (M = 5) and Picard.
//!
//! Each entry is `f-evals` followed by a status letter when the solve did not converge
//! (M: max iterations, S: stalled, D: diverged, N: non-finite), and the relative error
//! of the answer against the float64 reference root (and, when that is large, against
//! the float64 root nearest to the answer).
//!
//! ```text
//! cargo run --release -p deq-benches --bin feval_table
//! ```

use deq_problems::{FixedPointProblem, linalg, standard_suite};
use solver_core::anderson::AndersonBuffers;
use solver_core::{
    AndersonSettings, AndersonWork, BroydenSettings, BroydenWork, Options, PicardSettings, PicardWork,
    Report, Status,
};

const MAX_ITERS: u32 = 500;

fn broyden(p: &dyn FixedPointProblem, m: usize, opts: &Options) -> (Report, Vec<f32>) {
    let n = p.dim();
    let (mut u, mut v, mut vecs) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; BroydenWork::vecs_len(n)]);
    let mut w = BroydenWork::new(n, m, &mut u, &mut v, &mut vecs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(&BroydenSettings::DEFAULT, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

fn anderson(p: &dyn FixedPointProblem, m: usize, opts: &Options) -> (Report, Vec<f32>) {
    let n = p.dim();
    let (mut dx, mut dg, mut vecs) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; 4 * n]);
    let (mut gram, mut fac, mut coef) = (vec![0.0; m * m], vec![0.0; m * m], vec![0.0; m]);
    let bufs = AndersonBuffers {
        dx: &mut dx,
        dg: &mut dg,
        vecs: &mut vecs,
        gram: &mut gram,
        fac: &mut fac,
        coef: &mut coef,
    };
    let mut w = AndersonWork::new(n, m, bufs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(&AndersonSettings::DEFAULT, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

fn picard(p: &dyn FixedPointProblem, opts: &Options) -> (Report, Vec<f32>) {
    let n = p.dim();
    let mut vecs = vec![0.0; 2 * n];
    let mut w = PicardWork::new(n, &mut vecs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(&PicardSettings::DEFAULT, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

/// Relative error against the problem's float64 reference root; where that is large,
/// also the distance to the float64 root nearest to `z` (float64 Newton from `z`), which
/// tells a different true root (the H-equation's non-physical one, or another fixed
/// point of a non-contractive layer) from a wrong answer.
fn error(p: &dyn FixedPointProblem, z: &[f32]) -> String {
    let reference = p.rel_error(z);
    if reference < 1e-3 {
        return format!("{reference:.0e}");
    }
    let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let nearest = match p.polish(z) {
        Some(root) => linalg::dist2(&z64, &root) / linalg::norm2(&root),
        None => f64::NAN,
    };
    format!("{reference:.0e}; other root {nearest:.0e}")
}

fn cell(p: &dyn FixedPointProblem, (r, z): &(Report, Vec<f32>)) -> String {
    let flag = match r.status {
        Status::Converged => "",
        Status::MaxIterations => " M",
        Status::Stalled => " S",
        Status::Diverged => " D",
        Status::NonFinite => " N",
    };
    format!("{}{flag} ({})", r.f_evals, error(p, z))
}

fn main() {
    let opts = Options { max_iters: MAX_ITERS, tol_rel: 1e-6, ..Options::DEFAULT };
    let suite = standard_suite();
    println!(
        "f-evaluations to tol_rel = 1e-6 in f32 (relative error against the float64 reference root); max_iters = {MAX_ITERS}\n"
    );
    println!("| problem | Broyden M=8 | Broyden unbounded | ratio | Anderson M=5 | Picard |");
    println!("|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    let mut failures = Vec::new();
    for p in &suite {
        let p = p.as_ref();
        let b8 = broyden(p, 8, &opts);
        let bu = broyden(p, MAX_ITERS as usize + 1, &opts);
        let an = anderson(p, 5, &opts);
        let pi = picard(p, &opts);
        let ratio = f64::from(b8.0.f_evals) / f64::from(bu.0.f_evals);
        if b8.0.status.is_converged() && bu.0.status.is_converged() {
            worst = worst.max(ratio);
        }
        if bu.0.status.is_converged() && !b8.0.status.is_converged() {
            failures.push(p.name());
        }
        println!(
            "| {} | {} | {} | {ratio:.2} | {} | {} |",
            p.name(),
            cell(p, &b8),
            cell(p, &bu),
            cell(p, &an),
            cell(p, &pi)
        );
    }
    println!("\nworst ratio Broyden M=8 / unbounded: {worst:.2}");
    println!("problems where M=8 fails but unbounded converges: {failures:?}");
}
