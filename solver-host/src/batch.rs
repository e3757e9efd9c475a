//! What every batch driver shares, and the simplest one.
//!
//! [`BatchBackend`] (a batched map `f` over `B` samples), [`Progress`] (reported after
//! every round) and the state-length message serve both round-based drivers,
//! [`Lockstep`](crate::Lockstep) and [`offload`](crate::offload); [`solve_batch`] solves
//! many independent samples in parallel on all cores, each with its own calls of `f`.

use core::fmt;

use rayon::prelude::*;
use solver_core::{LengthError, Options, Real, Report, Solver};

/// A batched map `f` over `B` samples of dimension `d`: the part of a lockstep solve
/// that a backend (CPU, GPU) provides.
pub trait BatchBackend<T = f32>: Sync {
    /// Number of samples `B`.
    fn samples(&self) -> usize;
    /// Dimension `d` of one sample.
    fn dim(&self) -> usize;
    /// Evaluates the group of samples `first .. first + active.len()`: for every `k`
    /// with `active[k]`, writes `f_{first+k}` of row `k` of `z` into row `k` of `out`
    /// (both `[active.len() × d]`, row-major). Rows of inactive samples must be neither
    /// read nor written, and cost nothing. Groups may be evaluated concurrently.
    fn eval(&self, first: usize, active: &[bool], z: &[T], out: &mut [T]);
    /// Whether the batch may be cut into groups (evaluated concurrently, each followed
    /// by its samples' solver steps, so a round is one parallel pass). `false` asks for
    /// the whole batch in one call, as a device backend would, or a CPU backend that
    /// parallelises the call itself; the samples' steps then run in parallel after it.
    fn split(&self) -> bool {
        true
    }
    /// `Some(len)` when one sample's `f` can be computed in pieces of `len` outputs (the
    /// last one shorter), each from the sample's whole point, by
    /// [`eval_piece`](Self::eval_piece): the lockstep solver then reads and writes each
    /// solver's own vectors (no batch buffers, no copies) and evaluates the pieces in
    /// parallel, so threads whose samples have stopped take pieces of the others'.
    /// `None` (the default): only [`eval`](Self::eval) is used.
    fn piece_len(&self) -> Option<usize> {
        None
    }
    /// Piece `piece` of sample `sample`'s `f(z)`: its outputs `piece·len ..` into `out`
    /// (`len` of them, fewer for the last piece), with `z` the sample's whole point
    /// (`d` values). Called only when [`piece_len`](Self::piece_len) is `Some(len)`;
    /// pieces may be evaluated concurrently. The default does nothing.
    fn eval_piece(&self, sample: usize, piece: usize, z: &[T], out: &mut [T]) {
        let _ = (sample, piece, z, out);
    }
}

/// The message of a state of `got` values where `expected` (`B·d`) were needed; an
/// `expected` of 0 means the batch has no samples or the dimension is zero.
pub(crate) fn state_length(f: &mut fmt::Formatter<'_>, expected: usize, got: usize) -> fmt::Result {
    if expected == 0 {
        write!(f, "the state of {got} values cannot be solved: no samples, or dimension zero")
    } else {
        write!(f, "the state has {got} values, expected {expected} (samples × dimension)")
    }
}

/// Progress of a lockstep solve, passed to the caller's callback after every round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Rounds done (batched evaluations made).
    pub rounds: u32,
    /// Samples still running.
    pub active: usize,
    /// Samples in the batch.
    pub samples: usize,
}

/// A batch whose buffer does not hold whole samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchError {
    /// Length of the batch buffer.
    pub len: usize,
    /// Dimension of one sample.
    pub dim: usize,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a batch of length {} is not a whole number of samples of dimension {}", self.len, self.dim)
    }
}

impl std::error::Error for BatchError {}

/// Solves `z_b = f(b, z_b)` for every sample `b` of the row-major batch `z` (`B × dim`,
/// starting points in, answers out), in parallel on rayon's thread pool.
///
/// `make` builds a solver; each worker thread builds one and reuses it for all the
/// samples it takes, so the allocations are per thread, not per sample or iteration.
/// `f(b, z, out)` evaluates sample `b`'s map. Each sample gets its own report, and the
/// results do not depend on the number of threads.
pub fn solve_batch<T, S, M, F>(
    make: M,
    f: F,
    z: &mut [T],
    dim: usize,
    opts: &Options<T>,
) -> Result<Vec<Result<Report<T>, LengthError>>, BatchError>
where
    T: Real,
    S: Solver<T> + Send,
    M: Fn() -> S + Sync,
    F: Fn(usize, &[T], &mut [T]) + Sync,
{
    if dim == 0 || !z.len().is_multiple_of(dim) {
        return Err(BatchError { len: z.len(), dim });
    }
    Ok(z.par_chunks_mut(dim)
        .enumerate()
        .map_init(&make, |solver, (b, zb)| solver.solve(&mut |x, out| f(b, x, out), zb, opts))
        .collect())
}
