//! What keeping Broyden's history `U`, `V` in half precision would cost in
//! f-evaluations, measured before building it: Broyden with M = 8 pairs and the default
//! settings to `tol_rel = 1e-6` (f32 arithmetic) on the standard and the hard suite,
//! with every history row rounded to bf16 or to f16 as soon as the executor has written
//! it, beside the same solve in f32 and with unbounded history.
//!
//! The rounding is applied by this program between the operations of a detached
//! solve (`BroydenState::detached` carried out by `SliceVectors`, the executor of every
//! CPU solve), to exactly the rows each operation writes, so every later operation reads
//! the rounded values, as it would from half-precision storage with f32 arithmetic. One
//! difference from such storage: a fused low-rank pass that writes a new row
//! ([`Then::Pair`](solver_core::broyden::ops::Then)) uses the row's f32 value for the rest of that
//! pass. An f16 entry that overflows (|x| > 65504) is counted in the last column; bf16 has
//! f32's range.
//!
//! The column "bf16 storage" is the solver itself with its history stored in bf16
//! (`DynBroyden::with_sizes_bf16`, default settings): there the fused passes use the
//! new rows as stored, and the operations on a row by itself add entry by entry.
//!
//! ```text
//! cargo run --release -p deq-benches --bin half_table
//! ```

use deq_benches::{error, evals};
use deq_problems::{FixedPointProblem, hard_suite, standard_suite};
use solver_core::broyden::ops::{Factor, Op, Reply, SliceVectors, Vector};
use solver_core::{BroydenSettings, BroydenState, Options, Report, Solver};
use solver_host::DynBroyden;

const MAX_ITERS: u32 = 2000;

/// The precision the history rows are kept in.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    F32,
    Bf16,
    F16,
}

impl Keep {
    /// `x` as stored and read back; the second value says whether it overflowed.
    fn round(self, x: f32) -> (f32, bool) {
        let y = match self {
            Keep::F32 => x,
            Keep::Bf16 => half::bf16::from_f32(x).to_f32(),
            Keep::F16 => half::f16::from_f32(x).to_f32(),
        };
        (y, x.is_finite() && !y.is_finite())
    }
}

/// The rows of the history an operation writes.
fn written(op: &Op<f32>, mut row: impl FnMut(Factor, usize)) {
    let mut vector = |v: Vector| match v {
        Vector::U(i) => row(Factor::U, i),
        Vector::V(i) => row(Factor::V, i),
        _ => {}
    };
    match *op {
        Op::Copy { to, .. } => vector(to),
        Op::Scale { out, .. } | Op::Combine { out, .. } | Op::Fill { out, .. } | Op::Unit { out, .. } => {
            vector(out)
        }
        Op::LowRank { out, then, .. } => {
            vector(out);
            if let solver_core::broyden::ops::Then::Pair { row, .. } = then {
                vector(row);
            }
        }
        Op::AddOuter { a, rows, .. } => (0..rows).for_each(|i| row(a, i)),
        Op::Invert { rows, .. } => (0..rows).for_each(|i| {
            row(Factor::U, i);
            row(Factor::V, i);
        }),
        _ => {}
    }
}

/// Broyden with `m` pairs from the problem's start, history kept as `keep`: the report,
/// the answer and the count of history entries that overflowed.
fn solve(p: &dyn FixedPointProblem, m: usize, keep: Keep, opts: &Options) -> (Report, Vec<f32>, usize) {
    let n = p.dim();
    let (mut u, mut v, mut work, mut z) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; 5 * n], p.start());
    work[..n].copy_from_slice(&z);
    let mut state = BroydenState::detached(&BroydenSettings::DEFAULT, m, opts).expect("m > 0");
    let (mut reply, mut overflows) = (Reply::None, 0);
    loop {
        let op = state.advance(reply);
        reply = match op {
            Op::Done(report) => return (report, z, overflows),
            Op::Evaluate { point, out } => {
                let (pi, oi) = (point.work_index().expect("work"), out.work_index().expect("work"));
                let x = work[pi * n..pi * n + n].to_vec();
                p.f(&x, &mut work[oi * n..oi * n + n]);
                Reply::None
            }
            _ => {
                let r = SliceVectors::new(n, &mut u, &mut v, &mut work, &mut z).execute(&op);
                written(&op, |f, i| {
                    let buf = if f == Factor::U { &mut u } else { &mut v };
                    for x in buf.get_mut(i * n..i * n + n).into_iter().flatten() {
                        let (y, over) = keep.round(*x);
                        *x = y;
                        overflows += usize::from(over);
                    }
                });
                r
            }
        };
    }
}

fn main() {
    let opts = Options { max_iters: MAX_ITERS, tol_rel: 1e-6, ..Options::DEFAULT };
    println!(
        "Broyden M = 8, default settings, f32 arithmetic, tol_rel = 1e-6, max_iters = {MAX_ITERS}: f-evaluations \
         (relative error against the float64 reference root) with the history rows kept in f32, bf16 or f16\n"
    );
    println!("| problem | f32 | bf16 | f16 | unbounded f32 | f16 overflows | bf16 storage |");
    println!("|---|---|---|---|---|---|---|");
    let mut totals = [0u64; 5];
    let mut converged = [0usize; 5];
    let (mut worst, mut worst_stored): (f64, f64) = (0.0, 0.0);
    let (standard, hard) = (standard_suite(), hard_suite());
    for (suite, problems) in [("standard", &standard), ("hard", &hard)] {
        let mut sums = [0u64; 5];
        for p in problems.iter() {
            let p = p.as_ref();
            let runs = [
                solve(p, 8, Keep::F32, &opts),
                solve(p, 8, Keep::Bf16, &opts),
                solve(p, 8, Keep::F16, &opts),
                solve(p, MAX_ITERS as usize + 1, Keep::F32, &opts),
            ];
            let stored = stored_bf16(p, &opts);
            let mut row = format!("| {} |", p.name());
            let all = runs[..3].iter().all(|r| r.0.status.is_converged()) && stored.0.status.is_converged();
            for (k, (r, z, _)) in runs.iter().enumerate() {
                if all {
                    sums[k] += u64::from(r.f_evals);
                }
                converged[k] += usize::from(r.status.is_converged());
                row += &format!(" {} ({}) |", evals(r), error(p, z));
            }
            if all {
                worst = worst.max(f64::from(runs[1].0.f_evals) / f64::from(runs[0].0.f_evals));
                worst_stored = worst_stored.max(f64::from(stored.0.f_evals) / f64::from(runs[0].0.f_evals));
            }
            if all {
                sums[4] += u64::from(stored.0.f_evals);
            }
            converged[4] += usize::from(stored.0.status.is_converged());
            println!("{row} {} | {} ({}) |", runs[2].2, evals(&stored.0), error(p, &stored.1));
        }
        println!(
            "| **{suite} suite, total where all of f32, bf16, f16 and bf16 storage converge** | {} | {} ({:+.1}%) | {} \
             ({:+.1}%) | {} | | {} ({:+.1}%) |",
            sums[0],
            sums[1],
            percent(sums[1], sums[0]),
            sums[2],
            percent(sums[2], sums[0]),
            sums[3],
            sums[4],
            percent(sums[4], sums[0])
        );
        for (t, s) in totals.iter_mut().zip(sums) {
            *t += s;
        }
    }
    println!(
        "\nboth suites, where all converge: f-evaluations f32 {} / bf16 {} ({:+.1}%) / f16 {} ({:+.1}%) / \
         unbounded {} / bf16 storage {} ({:+.1}%); worst bf16 / f32 on one problem {worst:.2}, bf16 storage / f32 \
         {worst_stored:.2}; converged (f32, bf16, f16, unbounded, bf16 storage) {:?} of {}",
        totals[0],
        totals[1],
        percent(totals[1], totals[0]),
        totals[2],
        percent(totals[2], totals[0]),
        totals[3],
        totals[4],
        percent(totals[4], totals[0]),
        converged,
        standard.len() + hard.len()
    );
}

/// The solver with its history stored in bf16 (M = 8, default settings): the report and
/// the answer.
fn stored_bf16(p: &dyn FixedPointProblem, opts: &Options) -> (Report, Vec<f32>) {
    let mut solver = DynBroyden::with_sizes_bf16(p.dim(), 8).expect("sizes");
    let mut z = p.start();
    let report = solver.solve(&mut |x: &[f32], out: &mut [f32]| p.f(x, out), &mut z, opts).expect("lengths");
    (report, z)
}

/// `a` relative to `b`, in percent.
fn percent(a: u64, b: u64) -> f64 {
    100.0 * (a as f64 / b as f64 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use deq_problems::TanhLayer;

    /// Kept in f32, the detached solve driven here is the shipped solver (`DynBroyden`)
    /// bit for bit; kept in bf16 the rounding reaches the solve (its answer differs) and
    /// the solve still converges to the tolerance.
    #[test]
    fn f32_is_the_shipped_solver_and_bf16_rounds_every_row() {
        let p = TanhLayer::new(64, 1.2, 3).with_injection_scale(0.05);
        let opts = Options { max_iters: 200, tol_rel: 1e-6, ..Options::DEFAULT };
        let (r, z, _) = solve(&p, 8, Keep::F32, &opts);
        let (shipped, zs) = deq_benches::broyden(&p, 8, &BroydenSettings::DEFAULT, &opts);
        assert_eq!((r.f_evals, r.status), (shipped.f_evals, shipped.status));
        assert_eq!(z, zs);
        let (r16, z16, over) = solve(&p, 8, Keep::Bf16, &opts);
        assert!(r16.status.is_converged(), "{r16:?}");
        assert_eq!(over, 0);
        assert_ne!(z16, z, "rounding the history must change the trajectory");
        assert_eq!(Keep::Bf16.round(1.0 + 1.0 / 256.0).0, 1.0, "bf16 keeps 8 significant bits");
    }
}
