//! Bounded-memory root and fixed-point solvers for deep equilibrium models (DEQs).
//!
//! A DEQ layer's output is the fixed point `z* = f(z*, x)` of one layer, found by a root
//! solver instead of by stacking layers. This crate provides three solvers, each a
//! plain struct whose size is fixed by its type, so the whole memory of a solve is a
//! compile-time constant that does not depend on `max_iters`:
//!
//! * [`Broyden<N, M>`] — "good" Broyden with the inverse Jacobian kept as `−I + U Vᵀ`
//!   and at most `M` update pairs ([`broyden`] writes out the math);
//! * [`Anderson<N, M>`] — type-II Anderson acceleration over the `M` last differences
//!   ([`anderson`]);
//! * [`Picard<N>`] — damped fixed-point iteration ([`picard`]).
//!
//! `#![no_std]`, no allocation, no panics on the solve path. Each owned type has a
//! `const fn new()` so it can live in a `static`, and a `const FOOTPRINT` equal to its
//! size, which a build can check:
//!
//! ```
//! use solver_core::Broyden;
//! const _: () = assert!(Broyden::<32, 8>::FOOTPRINT <= 4096);
//! ```
//!
//! # Features
//! * `fast-math`: [`math`] uses `micromath`'s approximations instead of `libm`
//!   (never used in norms or convergence tests).
//! * `defmt`: `defmt::Format` for the public types.

// `no_std` for every build but the unit tests (whose helpers may use `std`'s `vec!`).
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod anderson;
pub mod broyden;
#[macro_use]
pub mod kernels;
pub mod math;
mod monitor;
mod options;
pub mod picard;
mod real;
pub mod scores;
pub mod solver;
pub mod storage;

#[cfg(feature = "defmt")]
mod defmt;

use core::fmt;

pub use anderson::{Anderson, AndersonInner, AndersonSettings, AndersonSlices};
pub use broyden::{Broyden, BroydenInner, BroydenSettings, BroydenSlices, BroydenState, History};
pub use options::{LengthError, Options, Report, SizeError, Status};
pub use picard::{Picard, PicardInner, PicardSettings, PicardSlices};
pub use real::Real;
pub use solver::{Next, Solver};

/// Why a solver over caller slices could not be made: sizes that cannot make a solver,
/// or a buffer shorter than its `buffer_lens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FromSlicesError {
    /// A dimension or history of zero, or sizes that overflow.
    Size(SizeError),
    /// A buffer too short.
    Length(LengthError),
}

impl From<SizeError> for FromSlicesError {
    fn from(e: SizeError) -> Self {
        FromSlicesError::Size(e)
    }
}

impl From<LengthError> for FromSlicesError {
    fn from(e: LengthError) -> Self {
        FromSlicesError::Length(e)
    }
}

impl fmt::Display for FromSlicesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromSlicesError::Size(e) => e.fmt(f),
            FromSlicesError::Length(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for FromSlicesError {}

/// Adapts a user closure over `[T; N]` arrays to the slice form the solvers run on.
///
/// The solvers only ever pass slices of length `N`; should that ever fail, the output
/// is filled with NaN, which ends the solve with [`Status::NonFinite`] instead of a
/// panic.
pub(crate) fn array_fn<T: Real, const N: usize, F>(f: &mut F) -> impl FnMut(&[T], &mut [T]) + '_
where
    F: FnMut(&[T; N], &mut [T; N]),
{
    move |x: &[T], out: &mut [T]| match (x.first_chunk::<N>(), out.first_chunk_mut::<N>()) {
        (Some(x), Some(o)) => f(x, o),
        _ => out.iter_mut().for_each(|o| *o = T::NAN),
    }
}
