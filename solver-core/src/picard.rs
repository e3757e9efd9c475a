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
//!     FOOTPRINT = 4·2·N + size_of::<PicardSettings>()
//! ```
//!
//! (the current iterate and `f` of it.)
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

use crate::kernels;
use crate::monitor::{Eval, Monitor, copy, split_vecs};
use crate::options::{Options, Report, Status, WorkError, check_len, check_z};
use crate::step::{IntoRequest, Resume, Step, drive};

/// Settings of [`Picard`] beyond the common [`Options`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PicardSettings {
    /// Damping `β` in `(0, 1]`; `1` is plain iteration.
    pub damping: f32,
}

impl PicardSettings {
    /// The defaults: `β = 1` (plain iteration).
    pub const DEFAULT: PicardSettings = PicardSettings { damping: 1.0 };
}

impl Default for PicardSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Damped fixed-point iteration for `N` unknowns; memory [`Self::FOOTPRINT`] bytes.
#[derive(Clone)]
pub struct Picard<const N: usize> {
    /// Solver settings; change them freely between solves.
    pub settings: PicardSettings,
    vecs: [[f32; N]; 2],
}

impl<const N: usize> Picard<N> {
    /// Size in bytes: `4·2·N + size_of::<PicardSettings>()`.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(PicardSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: PicardSettings) -> Self {
        const { assert!(N > 0, "Picard needs N ≥ 1 unknowns") };
        Picard { settings, vecs: [[0.0; N]; 2] }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [f32; N], opts: &Options) -> Report
    where
        F: FnMut(&[f32; N], &mut [f32; N]),
    {
        let settings = self.settings;
        let mut work = PicardWork { n: N, vecs: self.vecs.as_flattened_mut() };
        work.run(&settings, &mut crate::array_fn(&mut f), z, opts)
    }
}

impl<const N: usize> Default for Picard<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Damped iteration over a caller-supplied buffer of `2·n` floats: the form used by
/// `solver-host`. [`Picard`] is this plus owned, const-sized storage.
pub struct PicardWork<'a> {
    n: usize,
    vecs: &'a mut [f32],
}

impl<'a> PicardWork<'a> {
    /// Wraps a buffer of at least `2·n` floats for `n` unknowns.
    pub fn new(n: usize, vecs: &'a mut [f32]) -> Result<Self, WorkError> {
        check_len("vecs", vecs.len(), n.saturating_mul(2))?;
        Ok(PicardWork { n, vecs })
    }

    /// Finds `z = f(z)`; `z` must have length `n`.
    pub fn solve(
        &mut self,
        settings: &PicardSettings,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let mut state = self.start(settings, z, opts)?;
        Ok(drive(self, &mut state, f, z))
    }

    /// Starts a resumable solve from `z` (length `n`); see [`crate::step`].
    pub fn start(
        &mut self,
        settings: &PicardSettings,
        z: &[f32],
        opts: &Options,
    ) -> Result<PicardState, WorkError> {
        check_z(z, self.n)?;
        Ok(self.begin(settings, z, opts))
    }

    fn begin(&mut self, s: &PicardSettings, z: &[f32], opts: &Options) -> PicardState {
        let [x] = split_vecs::<1>(self.vecs, self.n);
        copy(z, x);
        PicardState { settings: *s, mon: Monitor::new(opts), phase: Phase::Start }
    }

    /// The same workspace over the same buffers, borrowed for a shorter time.
    fn reborrow(&mut self) -> PicardWork<'_> {
        PicardWork { n: self.n, vecs: &mut *self.vecs }
    }

    fn run(
        &mut self,
        s: &PicardSettings,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Report {
        let mut state = self.begin(s, z, opts);
        drive(self, &mut state, f, z)
    }
}

/// Where a resumable damped iteration stands between two evaluations.
#[derive(Clone, Copy, Debug)]
pub struct PicardState {
    settings: PicardSettings,
    mon: Monitor,
    phase: Phase,
}

/// Which evaluation a damped iteration waits for.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `f` of the start point.
    Start,
    /// `f` of the point after a step.
    Step,
    /// The solve has ended.
    Done(Report),
}

impl Resume for PicardWork<'_> {
    type State = PicardState;

    fn request(&mut self, state: &PicardState) -> (&[f32], &mut [f32]) {
        self.reborrow().into_request(state)
    }

    fn resume(&mut self, state: &mut PicardState, z: &mut [f32]) -> Step {
        let [x, fx] = split_vecs::<2>(self.vecs, self.n);
        let step = state.advance(x, fx, z);
        if let Step::Done(report) = step {
            state.phase = Phase::Done(report);
        }
        step
    }
}

impl<'a> IntoRequest<'a> for PicardWork<'a> {
    fn into_request(self, _state: &PicardState) -> (&'a [f32], &'a mut [f32]) {
        let [x, fx] = split_vecs::<2>(self.vecs, self.n);
        (x, fx)
    }
}

impl PicardState {
    /// Iterations taken so far (the `iterations` its report will give).
    pub fn iterations(&self) -> u32 {
        self.mon.iterations
    }

    /// `(residual_abs, residual_rel)` of the best iterate so far, the one the caller's `z`
    /// holds (as its report will give them): `(∞, ∞)` before any finite evaluation.
    pub fn best_residual(&self) -> (f32, f32) {
        self.mon.best()
    }

    /// From the evaluation of `x` (into `fx`) just made to the next one.
    fn advance(&mut self, x: &mut [f32], fx: &[f32], z: &mut [f32]) -> Step {
        let first = match self.phase {
            Phase::Done(report) => return Step::Done(report),
            Phase::Start => true,
            Phase::Step => false,
        };
        let e = Eval { abs: kernels::dist(fx, x), scale: kernels::norm(fx) };
        if let Some(st) = self.mon.observe(x, fx, e, z) {
            return Step::Done(if first { self.mon.finish(st) } else { self.mon.stop_in_iteration(st) });
        }
        if !first {
            if self.mon.diverged(e.abs) {
                return Step::Done(self.mon.stop_in_iteration(Status::Diverged));
            }
            if let Some(st) = self.mon.end_iteration() {
                return Step::Done(self.mon.finish(st));
            }
        }
        if !self.mon.may_iterate() {
            return Step::Done(self.mon.finish(Status::MaxIterations));
        }
        // z₊ = (1 − β) z + β f(z) = z + β (f(z) − z)
        let beta = self.settings.damping;
        for (xi, fi) in x.iter_mut().zip(fx) {
            *xi += beta * (fi - *xi);
        }
        self.phase = Phase::Step;
        Step::Evaluate
    }
}
