//! Many independent samples solved in parallel on all cores.

use core::fmt;

use rayon::prelude::*;
use solver_core::{LengthError, Options, Real, Report, Solver};

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
