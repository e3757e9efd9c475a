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
//! `#![no_std]`, no allocation, no panics on the solve path. Each type has a
//! `const fn new()` so it can live in a `static`, and a `const FOOTPRINT` equal to its
//! size, which a build can check:
//!
//! ```
//! use solver_core::Broyden;
//! const _: () = assert!(Broyden::<32, 8>::FOOTPRINT <= 4096);
//! ```
//!
//! The math is implemented once, in non-generic functions over slices ([`BroydenWork`],
//! [`AndersonWork`], [`PicardWork`]); the const-generic types only own the storage.
//! Run-time-sized callers (such as `solver-host`) use the `*Work` forms directly. Every
//! solve can also be driven one evaluation at a time ([`step`]), which is how a batch of
//! solves shares one batched evaluation of `f` per round.
//!
//! All solvers share [`Options`] (stopping rule) and return a [`Report`] describing the
//! returned iterate: the best one found, never a non-finite one.
//!
//! # Features
//! * `fast-math`: [`math`] uses `micromath`'s approximations instead of `libm`
//!   (never used in norms or convergence tests).
//! * `defmt`: `defmt::Format` for the public types.

#![no_std]
#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod anderson;
pub mod broyden;
pub mod kernels;
pub mod math;
mod monitor;
mod options;
pub mod picard;
pub mod scores;
pub mod step;

#[cfg(feature = "defmt")]
mod defmt;

pub use anderson::{Anderson, AndersonSettings, AndersonState, AndersonWork};
pub use broyden::{Broyden, BroydenSettings, BroydenState, BroydenWork, History};
pub use options::{Options, Report, Status, WorkError};
pub use picard::{Picard, PicardSettings, PicardState, PicardWork};
pub use step::{IntoRequest, Resume, Step};

/// Adapts a user closure over `[f32; N]` arrays to the slice form the solvers run on.
///
/// The solvers only ever pass slices of length `N`; should that ever fail, the output
/// is filled with NaN, which ends the solve with [`Status::NonFinite`] instead of a
/// panic.
pub(crate) fn array_fn<const N: usize, F>(f: &mut F) -> impl FnMut(&[f32], &mut [f32]) + '_
where
    F: FnMut(&[f32; N], &mut [f32; N]),
{
    move |x: &[f32], out: &mut [f32]| match (x.first_chunk::<N>(), out.first_chunk_mut::<N>()) {
        (Some(x), Some(o)) => f(x, o),
        _ => out.iter_mut().for_each(|o| *o = f32::NAN),
    }
}
