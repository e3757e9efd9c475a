//! What every solver takes and returns: [`Options`] (the stopping rule), [`Report`]
//! (what happened, describing the returned iterate) and [`Status`] (why it stopped), and
//! the two errors of a solver's construction and start: [`SizeError`] for sizes that
//! cannot make a solver (a dimension or history of zero, buffers beyond memory) and
//! [`LengthError`] for a buffer or a start point of the wrong length.

use core::fmt;

use crate::Real;

/// Stopping rule shared by every solver. `Copy + Default`; build one with struct-update
/// syntax:
///
/// ```
/// use solver_core::Options;
/// let opts = Options { max_iters: 50, tol_rel: 1e-5, ..Options::default() };
/// assert_eq!(opts.tol_abs, 0.0);
/// ```
///
/// A point `z` has **converged** when `‖f(z) − z‖₂ ≤ tol_abs + tol_rel·‖f(z)‖₂`.
/// (For [`Broyden::solve_root`](crate::Broyden::solve_root), where no `f` is given,
/// `‖g(z)‖₂ ≤ tol_abs + tol_rel·‖z‖₂`: the same scale, since `f(z) = z` at a root.)
///
/// `max_iters` is a run-time value and sizes nothing: the memory of every solver is fixed
/// by its type. The tolerances are in the solver's float type `T` (`f32` by default):
/// `Options::<f64>::DEFAULT` goes with `Broyden<N, M, f64>`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options<T = f32> {
    /// Largest number of iterations (steps taken). `0` evaluates the start point only.
    pub max_iters: u32,
    /// Absolute tolerance on `‖f(z) − z‖₂`.
    pub tol_abs: T,
    /// Relative tolerance, multiplied by `‖f(z)‖₂`.
    pub tol_rel: T,
    /// Stop with [`Status::Stalled`] after this many consecutive iterations that did not
    /// lower the best residual found so far. `0` disables the test.
    pub stall_iters: u32,
    /// Stop with [`Status::Diverged`] when an accepted iterate's residual exceeds this
    /// factor times the best residual found so far. `INFINITY` disables the test.
    pub divergence_factor: T,
}

impl<T: Real> Options<T> {
    /// The defaults, usable in `const` and `static` items: 100 iterations,
    /// `tol_abs = 0`, `tol_rel = 1e-6`, stall after 50 iterations without progress
    /// (quasi-Newton iterations can wander for dozens of steps before they converge: on
    /// the README's ring map, Broyden plateaus for more than 50 and converges given 80),
    /// divergence at 10⁴ times the best residual.
    pub const DEFAULT: Self = Options {
        max_iters: 100,
        tol_abs: T::ZERO,
        tol_rel: T::E_6,
        stall_iters: 50,
        divergence_factor: T::E4,
    };

    /// Same as [`Options::DEFAULT`].
    pub const fn new() -> Self {
        Self::DEFAULT
    }
}

impl<T: Real> Default for Options<T> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a solve stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The returned iterate meets the tolerance of [`Options`].
    Converged,
    /// `max_iters` iterations were taken without converging.
    MaxIterations,
    /// `stall_iters` iterations in a row did not improve the best residual.
    Stalled,
    /// The residual grew past `divergence_factor` times the best one, or an iterate
    /// overflowed.
    Diverged,
    /// The user's function returned NaN or ±∞. The returned iterate is the best finite
    /// one found before; nothing non-finite reached it or the solver's history.
    NonFinite,
}

impl Status {
    /// Whether the solve met its tolerance.
    pub const fn is_converged(self) -> bool {
        matches!(self, Status::Converged)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Converged => "converged",
            Status::MaxIterations => "max-iterations",
            Status::Stalled => "stalled",
            Status::Diverged => "diverged",
            Status::NonFinite => "non-finite",
        })
    }
}

/// What a solve did. The residuals describe the iterate left in `z`, which is the best
/// (lowest `‖f(z) − z‖₂`) point evaluated, or the first one that converged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Report<T = f32> {
    /// Why the solve stopped.
    pub status: Status,
    /// Iterations (steps) taken; at most `max_iters`.
    pub iterations: u32,
    /// Calls of the user's function, including line-search trials.
    pub f_evals: u32,
    /// `‖f(z) − z‖₂` at the returned `z` (`‖g(z)‖₂` for `solve_root`).
    pub residual_abs: T,
    /// `residual_abs / ‖f(z)‖₂` at the returned `z` (`/ ‖z‖₂` for `solve_root`);
    /// `0` when both are zero, `+∞` when only the scale is.
    pub residual_rel: T,
    /// Times the solver discarded its history (Broyden restarts, Anderson breakdowns).
    pub restarts: u32,
}

/// A buffer, or the start point `z`, of the wrong length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthError {
    /// Which buffer or argument is wrong (`"u"`, `"z"`, …).
    pub what: &'static str,
    /// The length it must have (at least, for a buffer).
    pub expected: usize,
    /// The length it has.
    pub got: usize,
}

impl fmt::Display for LengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` has length {}, expected {}", self.what, self.got, self.expected)
    }
}

impl core::error::Error for LengthError {}

/// Sizes that cannot make a solver (or a batch of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// The dimension is zero.
    ZeroDimension,
    /// The history depth is zero.
    ZeroHistory,
    /// The buffers would not fit in the address space (or the allocator refused them).
    TooLarge,
    /// Solvers meant to work together have different dimensions.
    MixedDimensions,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeError::ZeroDimension => "the dimension must be at least 1",
            SizeError::ZeroHistory => "the history depth must be at least 1",
            SizeError::TooLarge => "the solver's buffers would not fit in memory",
            SizeError::MixedDimensions => "the solvers of one batch must all have the same dimension",
        })
    }
}

impl core::error::Error for SizeError {}

/// Checks that the buffer `what` holds at least `expected` elements.
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), LengthError> {
    if got >= expected { Ok(()) } else { Err(LengthError { what, expected, got }) }
}

/// Checks that the start point `z` has exactly `n` elements.
pub(crate) fn check_z(got: usize, n: usize) -> Result<(), LengthError> {
    if got == n { Ok(()) } else { Err(LengthError { what: "z", expected: n, got }) }
}
