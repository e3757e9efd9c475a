//! Where a solver keeps its buffers: the storage parameter `S` of [`BroydenInner`],
//! [`AndersonInner`] and [`PicardInner`].
//!
//! Each solver is one type, generic over its storage, so that every method is written
//! once for every kind of storage:
//!
//! * owned arrays sized by const generics ([`BroydenArrays`], [`AndersonArrays`],
//!   [`PicardArrays`]): `Broyden<N, M>` and its kin, whose whole memory is a compile-time
//!   constant;
//! * buffers borrowed from the caller (`[&mut [T]; K]`): [`BroydenSlices`] and its kin,
//!   for run-time sizes without a heap;
//! * heap buffers, in `solver-host` (`DynBroyden` and its kin), through [`Allocate`].
//!
//! A solver's buffers are `K` slices of `T` whose lengths, for `n` unknowns and a history
//! of `m`, its `buffer_lens(n, m)` gives (faer's "scratch size query").
//!
//! [`BroydenInner`]: crate::BroydenInner
//! [`AndersonInner`]: crate::AndersonInner
//! [`PicardInner`]: crate::PicardInner
//! [`BroydenArrays`]: crate::broyden::BroydenArrays
//! [`AndersonArrays`]: crate::anderson::AndersonArrays
//! [`PicardArrays`]: crate::picard::PicardArrays
//! [`BroydenSlices`]: crate::BroydenSlices

use crate::options::{LengthError, SizeError, check_len};

/// The `K` buffers of a solver, as slices of `T`.
pub trait Storage<T, const K: usize> {
    /// The buffers, read-only.
    fn buffers(&self) -> [&[T]; K];
    /// The buffers, writable.
    fn buffers_mut(&mut self) -> [&mut [T]; K];
}

/// A storage that can be made for run-time lengths (heap buffers, in `solver-host`).
pub trait Allocate<T, const K: usize>: Storage<T, K> + Sized {
    /// Zeroed buffers of these lengths, or [`SizeError::TooLarge`] when they cannot be
    /// allocated.
    fn zeroed(lens: [usize; K]) -> Result<Self, SizeError>;
}

impl<T, const K: usize> Storage<T, K> for [&mut [T]; K] {
    fn buffers(&self) -> [&[T]; K] {
        core::array::from_fn(|i| self.get(i).map_or(&[][..], |b| &**b))
    }

    fn buffers_mut(&mut self) -> [&mut [T]; K] {
        let mut it = self.iter_mut();
        core::array::from_fn(|_| it.next().map_or(&mut [][..], |b| &mut **b))
    }
}

/// Checks caller buffers against the lengths a solver needs (at least those; longer is
/// fine). `names` name them in the error.
pub(crate) fn check_buffers<T, const K: usize>(
    bufs: &[&mut [T]; K],
    lens: [usize; K],
    names: [&'static str; K],
) -> Result<(), LengthError> {
    for ((b, len), name) in bufs.iter().zip(lens).zip(names) {
        check_len(name, b.len(), len)?;
    }
    Ok(())
}

/// Bytes of an owned solver whose arrays take `array_bytes`, from the same solver type
/// over no storage (`Empty`) and over a single float (`One`). The arrays may fill the
/// tail padding of the scalars, so the scalars' unpadded size is the smaller of
/// `size_of::<Empty>()` and `size_of::<One>() − size_of::<T>()`; the sum is rounded up to
/// the alignment. `None` on overflow.
pub(crate) fn owned_bytes<Empty, One, T>(array_bytes: usize) -> Option<usize> {
    use core::mem::{align_of, size_of};
    let scalars = size_of::<Empty>().min(size_of::<One>() - size_of::<T>());
    scalars.checked_add(array_bytes)?.checked_next_multiple_of(align_of::<One>())
}

/// `a·b`, or [`SizeError::TooLarge`] on overflow.
pub(crate) fn product(a: usize, b: usize) -> Result<usize, SizeError> {
    a.checked_mul(b).ok_or(SizeError::TooLarge)
}

/// Checks the sizes of a solver: `n ≥ 1` unknowns, a history of `m ≥ 1`.
pub(crate) fn check_sizes(n: usize, m: usize) -> Result<(), SizeError> {
    match (n, m) {
        (0, _) => Err(SizeError::ZeroDimension),
        (_, 0) => Err(SizeError::ZeroHistory),
        _ => Ok(()),
    }
}
