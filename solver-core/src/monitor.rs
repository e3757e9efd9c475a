//! Bookkeeping shared by the three solvers: counting evaluations, keeping the best
//! iterate in the caller's `z`, the convergence, stall and divergence tests, and the
//! small buffer helpers (splitting the work vectors, the ring-slot wrap).
//!
//! Each solver evaluates a point, then hands `(x, ‖g‖, scale)` to [`Monitor::observe`],
//! which copies `x` into `z` when it is the best so far. The solver's own buffers are
//! never returned, so a non-finite evaluation can never leak into the result.

use crate::options::{Options, Report, Status};
use crate::{Real, kernels};

/// Running state of one solve.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Monitor<T: Real> {
    opts: Options<T>,
    /// Residual norm and scale of the iterate currently held in `z`.
    best_abs: T,
    best_scale: T,
    /// The iteration whose end first counts the best iterate as found: `iterations + 1`
    /// when `observe` lowers `best_abs` (no flag: the iterations since the best, for the
    /// stall test, are `iterations − best_at` once that iteration has ended).
    best_at: u32,
    pub(crate) f_evals: u32,
    pub(crate) iterations: u32,
    pub(crate) restarts: u32,
}

/// `‖g‖` and the scale of the convergence test (`‖f(x)‖` or `‖x‖`) at one point.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Eval<T> {
    pub abs: T,
    pub scale: T,
}

impl<T: Real> Monitor<T> {
    pub(crate) fn new(opts: &Options<T>) -> Self {
        Monitor {
            opts: *opts,
            best_abs: T::INFINITY,
            best_scale: T::ZERO,
            best_at: 0,
            f_evals: 0,
            iterations: 0,
            restarts: 0,
        }
    }

    /// Whether a point with this residual and scale meets the tolerance.
    pub(crate) fn converged(&self, e: Eval<T>) -> bool {
        e.abs <= self.opts.tol_abs + self.opts.tol_rel * e.scale
    }

    /// Records the evaluation of `x`. Returns `Some(status)` when the solve must stop:
    /// [`Status::Converged`] (and `x` is copied to `z`) or [`Status::NonFinite`] /
    /// [`Status::Diverged`] when the residual is not finite (`g` tells which).
    pub(crate) fn observe(&mut self, x: &[T], g: &[T], e: Eval<T>, z: &mut [T]) -> Option<Status> {
        let (best, stop) =
            self.judge(e, || g.iter().all(|v| v.is_finite()) && x.iter().all(|v| v.is_finite()));
        if best {
            kernels::copy(x, z);
        }
        stop
    }

    /// [`observe`](Self::observe) on scalars only, for solvers whose vectors live
    /// elsewhere: returns whether the point is the new best (to be copied to `z` by the
    /// caller) and the status that ends the solve, if any. `finite` (whether every entry
    /// of the point and of its residual is finite) is called only when the norms are not
    /// finite.
    pub(crate) fn judge(&mut self, e: Eval<T>, finite: impl FnOnce() -> bool) -> (bool, Option<Status>) {
        self.f_evals = self.f_evals.saturating_add(1);
        if !(e.abs.is_finite() && e.scale.is_finite()) {
            // Either f produced NaN/Inf, or finite values so large that the norm
            // overflowed: the iterate itself ran away.
            return (false, Some(if finite() { Status::Diverged } else { Status::NonFinite }));
        }
        let conv = self.converged(e);
        let best = e.abs < self.best_abs || conv;
        if best {
            self.best_abs = e.abs;
            self.best_scale = e.scale;
            self.best_at = self.iterations.saturating_add(1);
        }
        (best, conv.then_some(Status::Converged))
    }

    /// Whether an accepted iterate with residual `abs` counts as divergence.
    pub(crate) fn diverged(&self, abs: T) -> bool {
        abs > self.opts.divergence_factor * self.best_abs
    }

    /// Closes one iteration; returns the status when the iteration budget is spent or
    /// the solve has stalled.
    pub(crate) fn end_iteration(&mut self) -> Option<Status> {
        self.iterations = self.iterations.saturating_add(1);
        let since_best = self.iterations.saturating_sub(self.best_at);
        if self.opts.stall_iters > 0 && since_best >= self.opts.stall_iters {
            return Some(Status::Stalled);
        }
        None
    }

    /// Ends the solve in the middle of an iteration (the step was taken and evaluated):
    /// counts that iteration, then reports.
    pub(crate) fn stop_in_iteration(&mut self, status: Status) -> Report<T> {
        self.iterations = self.iterations.saturating_add(1);
        self.finish(status)
    }

    /// Whether another iteration may start.
    pub(crate) fn may_iterate(&self) -> bool {
        self.iterations < self.opts.max_iters
    }

    /// The report for the iterate in `z`.
    pub(crate) fn finish(&self, status: Status) -> Report<T> {
        let (residual_abs, residual_rel) = self.best();
        Report {
            status,
            iterations: self.iterations,
            f_evals: self.f_evals,
            residual_abs,
            residual_rel,
            restarts: self.restarts,
        }
    }

    /// `(‖g‖, ‖g‖ / scale)` of the iterate in `z` (the best so far): `(∞, ∞)` before any
    /// finite evaluation; the relative one is `0` when both are zero, `+∞` when only the
    /// scale is.
    pub(crate) fn best(&self) -> (T, T) {
        let (abs, scale) = (self.best_abs, self.best_scale);
        let rel = if abs == T::ZERO {
            T::ZERO
        } else if scale == T::ZERO {
            T::INFINITY
        } else {
            abs / scale
        };
        (abs, rel)
    }
}

/// Turns `f(x)`, already in `g`, into the residual `g = f(x) − x` and returns its norm
/// and the convergence scale `‖f(x)‖`, in one pass ([`kernels::sub_norms`]).
pub(crate) fn fixed_point_residual<T: Real>(x: &[T], g: &mut [T]) -> Eval<T> {
    let (scale, abs) = kernels::sub_norms(x, g);
    Eval { abs, scale }
}

/// Splits a solver's work buffer into its `K` vectors of exactly `n` values (shorter
/// ones, never a panic, if the buffer is short; the constructors check that it is not).
/// Anything past `K·n` is left out, so `f` always receives slices of length `n`.
pub(crate) fn split_work<T, const K: usize>(buf: &mut [T], n: usize) -> [&mut [T]; K] {
    let mut rest = buf;
    core::array::from_fn(|_| {
        let all = core::mem::take(&mut rest);
        let (head, tail) = all.split_at_mut(n.min(all.len()));
        rest = tail;
        head
    })
}

/// The ring slot after `slot` among `m` (a wrap, not `%`: no division-by-zero path).
pub(crate) fn next_slot(slot: usize, m: usize) -> usize {
    if slot + 1 >= m { 0 } else { slot + 1 }
}
