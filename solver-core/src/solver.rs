//! The solver trait that batch drivers use, and resumable solves ("reverse
//! communication"): the solver hands back control each time it needs `f` evaluated, so a
//! caller can evaluate many solves' points together.
//!
//! Every solver implements [`Solver`], whatever its storage:
//!
//! ```text
//!     solver.start(&z, &opts)?;                      // copies z, asks for f(z)
//!     loop {
//!         let (x, out) = solver.request();           // the point and where f(x) goes
//!         f(x, out);
//!         if let Next::Done(report) = solver.resume(&mut z) { break report; }
//!     }
//! ```
//!
//! Two solves advanced side by side, each `f` evaluation made by the caller:
//!
//! ```
//! use solver_core::{Broyden, Next, Options, Solver};
//!
//! // f(z) = 0.5·cos(z) + c, componentwise, for two different offsets c.
//! let mut solvers = [Broyden::<3, 4>::new(), Broyden::<3, 4>::new()];
//! let mut z = [[0.0f32; 3], [1.0f32; 3]];
//! let c = [0.1f32, -0.3];
//! for (s, zb) in solvers.iter_mut().zip(&z) {
//!     s.start(zb, &Options::DEFAULT).unwrap();
//! }
//! let mut reports = [None, None];
//! while reports.iter().any(|r| r.is_none()) {
//!     for b in 0..2 {
//!         if reports[b].is_some() {
//!             continue;
//!         }
//!         let (x, out) = solvers[b].request();
//!         for (o, xi) in out.iter_mut().zip(x) {
//!             *o = 0.5 * libm::cosf(*xi) + c[b];
//!         }
//!         if let Next::Done(report) = solvers[b].resume(&mut z[b]) {
//!             reports[b] = Some(report);
//!         }
//!     }
//! }
//! for b in 0..2 {
//!     assert!(reports[b].unwrap().status.is_converged());
//!     assert!((z[b][0] - (0.5 * libm::cosf(z[b][0]) + c[b])).abs() < 1e-5);
//! }
//! ```
//!
//! [`Solver::solve`] is exactly this loop. The lockstep batched solver of `solver-host`
//! keeps one solver per sample and evaluates the points of all the samples still running
//! with one batched call of `f` per round; a sample whose `resume` returned
//! [`Next::Done`] is no longer evaluated or advanced. The math is therefore the same
//! code whether a solve runs alone or in a batch.

use crate::Real;
use crate::options::{LengthError, Report};

/// What a resumed solve needs next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next<T = f32> {
    /// Evaluate `f` at the point given by `request` into its output buffer, then call
    /// `resume` again.
    Evaluate,
    /// The solve has ended; the caller's `z` holds the iterate the report describes.
    Done(Report<T>),
}

/// A solver of `z = f(z)` in the float type `T`, driven one evaluation at a time or in
/// one call. Implemented by every solver for every storage.
pub trait Solver<T: Real = f32> {
    /// Number of unknowns.
    fn dim(&self) -> usize;
    /// Bytes of the solver's buffers (fixed at construction).
    fn memory_bytes(&self) -> usize;
    /// Starts a solve from `z` (length [`dim`](Self::dim)); `f` of `z` is requested first.
    fn start(&mut self, z: &[T], opts: &crate::Options<T>) -> Result<(), LengthError>;
    /// The point at which `f` is needed and the buffer that receives `f` of it (both of
    /// length [`dim`](Self::dim)).
    fn request(&mut self) -> (&[T], &mut [T]);
    /// Continues once the request's output buffer holds `f` of its point. `z` is the
    /// caller's iterate, updated with every new best point; after [`Next::Done`] it holds
    /// the iterate the report describes (and `resume` returns the same report again).
    /// Before any start, `Done` with an empty report.
    fn resume(&mut self, z: &mut [T]) -> Next<T>;
    /// Iterations the current (or last) solve has taken; `0` before any start.
    fn iterations(&self) -> u32;
    /// `(residual_abs, residual_rel)` of the best iterate of the current (or last) solve,
    /// the one its caller's `z` holds; `(∞, ∞)` before any finite evaluation.
    fn best_residual(&self) -> (T, T);

    /// Finds `z = f(z)` from `z` (length [`dim`](Self::dim)), leaving the best iterate in
    /// `z`. Nothing is allocated.
    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[T], &mut [T]),
        z: &mut [T],
        opts: &crate::Options<T>,
    ) -> Result<Report<T>, LengthError> {
        self.start(z, opts)?;
        loop {
            let (x, out) = self.request();
            f(x, out);
            if let Next::Done(report) = self.resume(z) {
                return Ok(report);
            }
        }
    }
}

/// What `resume` reports for a solver that was never started.
pub const NOT_STARTED: Report<f32> = not_started();

/// [`NOT_STARTED`] in any float type.
pub const fn not_started<T: Real>() -> Report<T> {
    Report {
        status: crate::Status::MaxIterations,
        iterations: 0,
        f_evals: 0,
        residual_abs: T::INFINITY,
        residual_rel: T::INFINITY,
        restarts: 0,
    }
}
