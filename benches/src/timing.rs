//! Timed solves and residual traces for the comparison with the peer tools.

use std::time::Instant;

use deq_problems::FixedPointProblem;
use solver_core::{Options, Report};
use solver_host::Solver;

/// One timed solver on one problem.
#[derive(Clone, Debug)]
pub struct Timed {
    /// The report of the first solve (all repetitions are identical).
    pub report: Report,
    /// Relative error of the answer against the float64 reference.
    pub error: f64,
    /// Median wall time of one solve, seconds.
    pub seconds: f64,
    /// Number of timed solves.
    pub reps: usize,
    /// Bytes of the solver's buffers.
    pub solver_bytes: usize,
}

/// Solves `p` from its start point with `solver`, repeating until `budget_s` seconds
/// are spent (at least once, at most `max_reps` times), and returns the first report
/// with the median time of one solve.
pub fn timed(
    solver: &mut dyn Solver,
    p: &dyn FixedPointProblem,
    opts: &Options,
    budget_s: f64,
    max_reps: usize,
) -> Timed {
    let mut times = Vec::new();
    let mut first = None;
    let total = Instant::now();
    while times.len() < max_reps.max(1) && (times.is_empty() || total.elapsed().as_secs_f64() < budget_s) {
        let mut z = p.start();
        let t0 = Instant::now();
        let r = solver.solve(&mut |x, o| p.f(x, o), &mut z, opts).expect("the start has the dimension");
        times.push(t0.elapsed().as_secs_f64());
        if first.is_none() {
            first = Some((r, p.rel_error(&z)));
        }
    }
    times.sort_by(f64::total_cmp);
    let (report, error) = first.expect("at least one solve");
    Timed {
        report,
        error,
        seconds: times[times.len() / 2],
        reps: times.len(),
        solver_bytes: solver.memory_bytes(),
    }
}

/// `‖f(z) − z‖₂ / ‖f(z)‖₂` at every point `f` is evaluated at, in order, during one
/// solve of `p` by `solver` (what the stopping rule tests, computed in float64).
pub fn trace(solver: &mut dyn Solver, p: &dyn FixedPointProblem, opts: &Options) -> Vec<f64> {
    let mut out = Vec::new();
    let mut z = p.start();
    let _ = solver.solve(
        &mut |x, o| {
            p.f(x, o);
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for (&a, &b) in x.iter().zip(o.iter()) {
                num += (f64::from(b) - f64::from(a)).powi(2);
                den += f64::from(b).powi(2);
            }
            out.push(if den > 0.0 { (num / den).sqrt() } else { num.sqrt() });
        },
        &mut z,
        opts,
    );
    out
}
