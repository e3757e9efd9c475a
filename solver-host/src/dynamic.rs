//! Solvers whose dimension and history depth are chosen at run time: solver-core's
//! solver types over heap buffers ([`Heap`]), allocated once at construction.

use solver_core::storage::{Allocate, Storage};
use solver_core::{
    AndersonInner, BroydenInner, LengthError, Next, Options, PicardInner, Real, SizeError, Solver,
};

/// Heap storage for a solver's `K` buffers: solver-core's storage parameter, so that
/// [`DynBroyden`] and its kin are solver-core's solvers, every method included.
#[derive(Clone, Debug)]
pub struct Heap<T, const K: usize>([Vec<T>; K]);

impl<T, const K: usize> Storage<T, K> for Heap<T, K> {
    fn buffers(&self) -> [&[T]; K] {
        let mut it = self.0.iter();
        core::array::from_fn(|_| it.next().map_or(&[][..], |v| v.as_slice()))
    }

    fn buffers_mut(&mut self) -> [&mut [T]; K] {
        let mut it = self.0.iter_mut();
        core::array::from_fn(|_| it.next().map_or(&mut [][..], |v| v.as_mut_slice()))
    }
}

impl<T: Real, const K: usize> Allocate<T, K> for Heap<T, K> {
    fn zeroed(lens: [usize; K]) -> Result<Self, SizeError> {
        let mut bufs: [Vec<T>; K] = core::array::from_fn(|_| Vec::new());
        for (b, len) in bufs.iter_mut().zip(lens) {
            *b = buffer(len, 1)?;
        }
        Ok(Heap(bufs))
    }
}

/// [`solver_core::Broyden`] with run-time `n` and `m`: `size_of::<T>()·n·(2m + 5)` bytes
/// of buffers. `DynBroyden::with_sizes(n, m)`; `DynBroyden<f64>` for `f64`.
pub type DynBroyden<T = f32> = BroydenInner<Heap<T, 3>, T>;

/// [`solver_core::Anderson`] with run-time `n` and `m`:
/// `size_of::<T>()·(n·(2m + 4) + 2m² + m)` bytes of buffers.
pub type DynAnderson<T = f32> = AndersonInner<Heap<T, 6>, T>;

/// [`solver_core::Picard`] with run-time `n`: `size_of::<T>()·2n` bytes of buffers.
pub type DynPicard<T = f32> = PicardInner<Heap<T, 1>, T>;

/// A zeroed buffer of `a·b` values, or `TooLarge` when `a·b` overflows or the
/// allocator refuses it (the allocation is tried, so a size that passes the arithmetic
/// but not the machine is an error, not an abort).
pub(crate) fn buffer<T: Real>(a: usize, b: usize) -> Result<Vec<T>, SizeError> {
    let len = a.checked_mul(b).ok_or(SizeError::TooLarge)?;
    len.checked_mul(T::BYTES).filter(|&bytes| bytes <= isize::MAX as usize).ok_or(SizeError::TooLarge)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| SizeError::TooLarge)?;
    v.resize(len, T::ZERO);
    Ok(v)
}

/// Any of the run-time solvers, chosen at run time (by the `deq` tool, the Python
/// package), as one [`Solver`]: a batch driver holds `AnySolver`s.
#[derive(Clone, Debug)]
pub enum AnySolver<T: Real = f32> {
    /// Broyden.
    Broyden(DynBroyden<T>),
    /// Anderson.
    Anderson(DynAnderson<T>),
    /// Damped fixed-point iteration.
    Picard(DynPicard<T>),
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnySolver::Broyden($s) => $e,
            AnySolver::Anderson($s) => $e,
            AnySolver::Picard($s) => $e,
        }
    };
}

impl<T: Real> Solver<T> for AnySolver<T> {
    fn dim(&self) -> usize {
        each!(self, s => s.dim())
    }

    fn memory_bytes(&self) -> usize {
        each!(self, s => s.memory_bytes())
    }

    fn start(&mut self, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        each!(self, s => s.start(z, opts))
    }

    fn request(&mut self) -> (&[T], &mut [T]) {
        each!(self, s => s.request())
    }

    fn resume(&mut self, z: &mut [T]) -> Next<T> {
        each!(self, s => s.resume(z))
    }

    fn iterations(&self) -> u32 {
        each!(self, s => s.iterations())
    }

    fn best_residual(&self) -> (T, T) {
        each!(self, s => s.best_residual())
    }
}
