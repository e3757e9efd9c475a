//! What every solver takes and returns: [`Options`] (the stopping rule), [`Report`]
//! (what happened, describing the returned iterate) and [`Status`] (why it stopped), plus
//! [`WorkError`] for workspaces built from caller-supplied buffers of the wrong size.

use core::fmt;

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
/// by its type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Largest number of iterations (steps taken). `0` evaluates the start point only.
    pub max_iters: u32,
    /// Absolute tolerance on `‖f(z) − z‖₂`.
    pub tol_abs: f32,
    /// Relative tolerance, multiplied by `‖f(z)‖₂`.
    pub tol_rel: f32,
    /// Stop with [`Status::Stalled`] after this many consecutive iterations that did not
    /// lower the best residual found so far. `0` disables the test.
    pub stall_iters: u32,
    /// Stop with [`Status::Diverged`] when an accepted iterate's residual exceeds this
    /// factor times the best residual found so far. `f32::INFINITY` disables the test.
    pub divergence_factor: f32,
}

impl Options {
    /// The defaults, usable in `const` and `static` items: 100 iterations,
    /// `tol_abs = 0`, `tol_rel = 1e-6`, stall after 50 iterations without progress
    /// (quasi-Newton iterations can wander for a few dozen steps before they converge:
    /// 30 stopped Broyden on a ring map that 50 lets it solve),
    /// divergence at 10⁴ times the best residual.
    pub const DEFAULT: Options =
        Options { max_iters: 100, tol_abs: 0.0, tol_rel: 1e-6, stall_iters: 50, divergence_factor: 1e4 };

    /// Same as [`Options::DEFAULT`].
    pub const fn new() -> Self {
        Self::DEFAULT
    }
}

impl Default for Options {
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
pub struct Report {
    /// Why the solve stopped.
    pub status: Status,
    /// Iterations (steps) taken; at most `max_iters`.
    pub iterations: u32,
    /// Calls of the user's function, including line-search trials.
    pub f_evals: u32,
    /// `‖f(z) − z‖₂` at the returned `z` (`‖g(z)‖₂` for `solve_root`).
    pub residual_abs: f32,
    /// `residual_abs / ‖f(z)‖₂` at the returned `z` (`/ ‖z‖₂` for `solve_root`);
    /// `0` when both are zero, `+∞` when only the scale is.
    pub residual_rel: f32,
    /// Times the solver discarded its history (Broyden restarts, Anderson breakdowns).
    pub restarts: u32,
}

/// A workspace built from caller-supplied buffers whose sizes do not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkError {
    /// Which buffer or argument is wrong (`"u"`, `"z"`, …).
    pub what: &'static str,
    /// The length it must have (at least).
    pub expected: usize,
    /// The length it has.
    pub got: usize,
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "buffer `{}` has length {}, expected {}", self.what, self.got, self.expected)
    }
}

impl core::error::Error for WorkError {}

/// Checks that `buf` holds at least `expected` elements.
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), WorkError> {
    if got >= expected { Ok(()) } else { Err(WorkError { what, expected, got }) }
}

/// Checks that the iterate `z` has exactly `n` elements.
pub(crate) fn check_z(z: &[f32], n: usize) -> Result<(), WorkError> {
    if z.len() == n { Ok(()) } else { Err(WorkError { what: "z", expected: n, got: z.len() }) }
}
