//! Damped fixed-point (Picard / Krasnosel'skii–Mann) iteration.
//!
//! # The math
//!
//! ```text
//!     z₊ = (1 − β) z + β f(z),     0 < β ≤ 1.
//! ```
//!
//! With `β = 1` this is plain iteration, which converges linearly when `f` is a
//! contraction, at the rate of its Lipschitz constant (for a DEQ layer `tanh(Wz + c)`,
//! about the spectral radius of `W`). Damping (`β < 1`) trades speed for stability:
//! it converges for some maps whose plain iteration oscillates, for example
//! when the Jacobian of `f` has eigenvalues below `−1`. It needs no history at all,
//! which makes it the smallest solver and the baseline the others are measured against.
//!
//! # Memory
//!
//! ```text
//!     FOOTPRINT = size_of::<T>()·2·N + (a few dozen scalars)
//! ```
//!
//! (the current iterate and `f` of it; then the settings and the solve in progress.)
//!
//! # Example
//!
//! ```
//! use solver_core::{Options, Picard, Status};
//!
//! let mut solver = Picard::<2>::new();
//! let mut z = [1.0f32, -1.0];
//! let report = solver.solve(
//!     |z, out| {
//!         out[0] = 0.5 * z[1] + 1.0;
//!         out[1] = -0.25 * z[0];
//!     },
//!     &mut z,
//!     &Options::default(),
//! );
//! assert_eq!(report.status, Status::Converged);
//! // Exact fixed point: z0 = 0.5·z1 + 1, z1 = −z0/4  ⇒  z0 = 8/9, z1 = −2/9.
//! assert!((z[0] - 8.0 / 9.0).abs() < 1e-5 && (z[1] + 2.0 / 9.0).abs() < 1e-5);
//! ```
//!
//! `Picard::<2, f64>` is the same iteration in `f64`.

use crate::kernels::{self, copy};
use crate::monitor::{Eval, Monitor, split_work};
use crate::options::{LengthError, Options, Report, SizeError, Status, check_z};
use crate::solver::{Next, Solver, not_started};
use crate::storage::{Allocate, Storage, check_buffers, check_sizes, product};
use crate::{FromSlicesError, Real};

/// Settings of [`Picard`] beyond the common [`Options`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PicardSettings<T = f32> {
    /// Damping `β` in `(0, 1]`; `1` is plain iteration.
    pub damping: T,
    /// When the solve converges, leave `f(z)` in `z` instead of the converged `z`: one
    /// plain step past the point the report describes (its residuals are that point's).
    /// For a contraction with constant `L`, `f(z)` is about `L` times closer to the
    /// fixed point (`‖f(z) − z*‖ ≤ L‖z − z*‖`) at no extra evaluation, which is what
    /// torchdeq's `fixed_point_iter` returns. Other endings leave the best iterate.
    pub return_image: bool,
}

impl<T: Real> PicardSettings<T> {
    /// The defaults: `β = 1` (plain iteration), the converged iterate returned.
    pub const DEFAULT: Self = PicardSettings { damping: T::ONE, return_image: false };
}

impl<T: Real> Default for PicardSettings<T> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Damped fixed-point iteration over the storage `S` (one buffer: the iterate and `f` of
/// it), in the float type `T`. Use it through its storage kinds: [`Picard`] (owned
/// arrays), [`PicardSlices`] (a caller buffer), and `solver-host`'s `DynPicard` (heap).
#[derive(Clone, Debug)]
pub struct PicardInner<S, T: Real = f32> {
    /// Solver settings; change them freely between solves.
    pub settings: PicardSettings<T>,
    n: usize,
    state: Option<PicardState<T>>,
    storage: S,
}

/// The owned, const-sized storage of [`Picard<N, T>`].
#[derive(Clone, Debug)]
pub struct PicardArrays<const N: usize, T> {
    work: [[T; N]; 2],
}

impl<const N: usize, T> Storage<T, 1> for PicardArrays<N, T> {
    fn buffers(&self) -> [&[T]; 1] {
        [self.work.as_flattened()]
    }

    fn buffers_mut(&mut self) -> [&mut [T]; 1] {
        [self.work.as_flattened_mut()]
    }
}

/// Damped fixed-point iteration for `N` unknowns in `T` (`f32` unless given); memory
/// [`Self::FOOTPRINT`] bytes.
pub type Picard<const N: usize, T = f32> = PicardInner<PicardArrays<N, T>, T>;

/// Damped iteration over a caller buffer of run-time size ([`buffer_lens`] gives it).
pub type PicardSlices<'a, T = f32> = PicardInner<[&'a mut [T]; 1], T>;

/// Length of the one buffer (the iterate and `f` of it) for `n` unknowns: `[2·n]`.
pub fn buffer_lens(n: usize) -> Result<[usize; 1], SizeError> {
    check_sizes(n, 1)?;
    Ok([product(2, n)?])
}

/// The [`FOOTPRINT`](Picard::FOOTPRINT) of `Picard<n, T>` for a size known only at run
/// time: the array plus the scalars beside it. `None` on a zero size or overflow.
pub fn footprint<T: Real>(n: usize) -> Option<usize> {
    let arrays = PicardInner::<(), T>::bytes_for(n)?;
    crate::storage::owned_bytes::<PicardInner<(), T>, PicardInner<[T; 1], T>, T>(arrays)
}

impl<const N: usize, T: Real> Picard<N, T> {
    /// Size in bytes of the solver.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(PicardSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: PicardSettings<T>) -> Self {
        const { assert!(N > 0, "Picard needs N ≥ 1 unknowns") };
        PicardInner { settings, n: N, state: None, storage: PicardArrays { work: [[T::ZERO; N]; 2] } }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [T; N], opts: &Options<T>) -> Report<T>
    where
        F: FnMut(&[T; N], &mut [T; N]),
    {
        let mut f = crate::array_fn(&mut f);
        // `n == N` for the owned arrays: the constant lets the loops run a known length.
        self.run(N, &mut f, z, opts)
    }
}

impl<const N: usize, T: Real> Default for Picard<N, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T: Real> PicardSlices<'a, T> {
    /// The solver over a caller buffer for `n` unknowns, at least as long as
    /// [`buffer_lens`]`(n)`.
    pub fn from_slices(n: usize, bufs: [&'a mut [T]; 1]) -> Result<Self, FromSlicesError> {
        check_buffers(&bufs, buffer_lens(n)?, ["work"])?;
        Ok(PicardInner { settings: PicardSettings::DEFAULT, n, state: None, storage: bufs })
    }
}

impl<S: Allocate<T, 1>, T: Real> PicardInner<S, T> {
    /// A solver for `n` unknowns, its buffer allocated here, once.
    pub fn with_sizes(n: usize) -> Result<Self, SizeError> {
        let storage = S::zeroed(buffer_lens(n)?)?;
        Ok(PicardInner { settings: PicardSettings::DEFAULT, n, state: None, storage })
    }
}

impl<S, T: Real> PicardInner<S, T> {
    /// Bytes of the buffer of a solver for `n` unknowns, `size_of::<T>()·2n`; `None` on
    /// overflow or `n = 0`.
    pub fn bytes_for(n: usize) -> Option<usize> {
        buffer_lens(n).ok()?[0].checked_mul(T::BYTES)
    }
}

impl<S: Storage<T, 1>, T: Real> PicardInner<S, T> {
    /// Copies the start point into the iterate and asks for its evaluation.
    ///
    /// Out of line: it runs once per solve, and inlined into a caller's solve loop (with
    /// `f`) its copies of the options and of `z` cost that loop stack (measured on the
    /// firmware's `deq_layer`: 0, 8 and 24 bytes of peak stack on the three boards).
    #[inline(never)]
    fn begin(&mut self, n: usize, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        check_z(z.len(), n)?;
        let [work] = self.storage.buffers_mut();
        let [x] = split_work::<T, 1>(work, n);
        copy(z, x);
        self.state = Some(PicardState { mon: Monitor::new(opts), phase: Phase::Start });
        Ok(())
    }

    /// The whole solve: [`Solver::start`], then each evaluation straight into
    /// [`PicardState::iterate`], without the `request`/`resume` round trip and its
    /// `Next` values (the same operations in the same order, so the same results, on
    /// less stack). `n` is `self.n` (the constant `N` for the owned arrays).
    fn run(
        &mut self,
        n: usize,
        f: &mut dyn FnMut(&[T], &mut [T]),
        z: &mut [T],
        opts: &Options<T>,
    ) -> Report<T> {
        if self.begin(n, z, opts).is_err() {
            return not_started();
        }
        let Some(state) = self.state.as_mut() else { return not_started() };
        loop {
            let [work] = self.storage.buffers_mut();
            let [x, fx] = split_work::<T, 2>(work, n);
            f(x, fx);
            if let Some(status) = state.iterate(&self.settings, x, fx, z) {
                return state.mon.finish(status);
            }
        }
    }
}

impl<S: Storage<T, 1>, T: Real> Solver<T> for PicardInner<S, T> {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        self.storage.buffers()[0].len() * T::BYTES
    }

    fn start(&mut self, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        self.begin(self.n, z, opts)
    }

    fn request(&mut self) -> (&[T], &mut [T]) {
        if self.state.is_none() {
            return (&[], &mut []);
        }
        let [work] = self.storage.buffers_mut();
        let [x, fx] = split_work::<T, 2>(work, self.n);
        (x, fx)
    }

    fn resume(&mut self, z: &mut [T]) -> Next<T> {
        let Some(state) = self.state.as_mut() else { return Next::Done(not_started()) };
        let [work] = self.storage.buffers_mut();
        let [x, fx] = split_work::<T, 2>(work, self.n);
        match state.iterate(&self.settings, x, fx, z) {
            None => Next::Evaluate,
            Some(status) => Next::Done(state.mon.finish(status)),
        }
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.mon.iterations)
    }

    fn best_residual(&self) -> (T, T) {
        self.state.as_ref().map_or((T::INFINITY, T::INFINITY), |s| s.mon.best())
    }

    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[T], &mut [T]),
        z: &mut [T],
        opts: &Options<T>,
    ) -> Result<Report<T>, LengthError> {
        check_z(z.len(), self.n)?;
        Ok(self.run(self.n, f, z, opts))
    }
}

/// Where a resumable damped iteration stands between two evaluations: the monitor and
/// the phase. The settings are not copied: each step reads the solver's, so a change of
/// `settings` while a resumable solve is under way applies from its next step.
#[derive(Clone, Copy, Debug)]
struct PicardState<T: Real> {
    mon: Monitor<T>,
    phase: Phase,
}

/// Which evaluation a damped iteration waits for.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `f` of the start point.
    Start,
    /// `f` of the point after a step.
    Iterate,
    /// The solve has ended with this status; the monitor, which no longer changes,
    /// holds the rest of its report.
    Done(Status),
}

impl<T: Real> PicardState<T> {
    /// From the evaluation of `x` (into `fx`) just made to the next one: `None` when `f`
    /// of the new `x` is needed, the status once the solve has ended (and on every call
    /// after that; [`Monitor::finish`] gives the report).
    fn iterate(
        &mut self,
        settings: &PicardSettings<T>,
        x: &mut [T],
        fx: &[T],
        z: &mut [T],
    ) -> Option<Status> {
        let first = match self.phase {
            Phase::Done(status) => return Some(status),
            Phase::Start => true,
            Phase::Iterate => false,
        };
        if let Some(status) = self.evaluated(first, x, fx, z) {
            if settings.return_image && status == Status::Converged {
                // z holds x, the converged point; fx = f(x) is finite (it converged).
                copy(fx, z);
            }
            self.phase = Phase::Done(status);
            return Some(status);
        }
        // z₊ = (1 − β) z + β f(z) = z + β (f(z) − z)
        let beta = settings.damping;
        for (xi, fi) in x.iter_mut().zip(fx) {
            *xi += beta * (*fi - *xi);
        }
        self.phase = Phase::Iterate;
        None
    }

    /// The tests on the evaluation of `x` just made (the start point's when `first`):
    /// the status when the solve ends there.
    fn evaluated(&mut self, first: bool, x: &[T], fx: &[T], z: &mut [T]) -> Option<Status> {
        let e = Eval { abs: kernels::dist(fx, x), scale: kernels::norm(fx) };
        if let Some(st) = self.mon.observe(x, fx, e, z) {
            if !first {
                self.mon.stop_in_iteration(st);
            }
            return Some(st);
        }
        if !first {
            if self.mon.diverged(e.abs) {
                self.mon.stop_in_iteration(Status::Diverged);
                return Some(Status::Diverged);
            }
            if let Some(st) = self.mon.end_iteration() {
                return Some(st);
            }
        }
        (!self.mon.may_iterate()).then_some(Status::MaxIterations)
    }
}
