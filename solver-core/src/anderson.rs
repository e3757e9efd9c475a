//! Type-II Anderson acceleration with a bounded ring of differences.
//!
//! # The math
//!
//! Plain fixed-point iteration steps `z₊ = z + g` with `g = f(z) − z`. Anderson
//! acceleration uses the last `m` steps to do better. Keep the differences of
//! successive iterates and residuals,
//!
//! ```text
//!     ΔXⱼ = z_{j+1} − z_j,   ΔGⱼ = g_{j+1} − g_j      (the columns of ΔX, ΔG: n × m)
//! ```
//!
//! and find the combination of past residual changes that best cancels the current
//! residual — a least-squares problem with only `m` unknowns:
//!
//! ```text
//!     γ = argmin ‖g − ΔG γ‖₂
//! ```
//!
//! then step from the correspondingly extrapolated point, with damping `β`:
//!
//! ```text
//!     z₊ = (z − ΔX γ) + β (g − ΔG γ) = z + β g − Σⱼ γⱼ (ΔXⱼ + β ΔGⱼ).
//! ```
//!
//! With `β = 1` this is the classical `z₊ = f(z) − ΔF γ`. It is equivalent to a
//! multisecant quasi-Newton method ("type II" refers to the inverse-Jacobian form).
//!
//! **The least-squares step.** `γ` solves the normal equations `(G + λI) γ = ΔGᵀ g`
//! with the Gram matrix `G = ΔGᵀ ΔG` (`m × m`), by a Cholesky factorisation in
//! fixed-size arrays. `G` is not recomputed: each iteration replaces one difference, so
//! only one row and column change — `m` dot products, `O(m·n)` work, instead of
//! `O(m²·n)` for the full product.
//!
//! **Regularisation.** `λ = reg · max_j Gⱼⱼ` is scaled to the Gram matrix. An absolute
//! `λ` (such as `1e-4`) is a different method on every problem: when the differences
//! are small near convergence it swamps `G`, shrinks `γ` toward zero and turns the
//! method into slow plain iteration. The relative `λ` only bounds the condition number
//! of `G + λI` by about `1 + 1/reg`.
//!
//! **Restart on breakdown.** When the factorisation fails (a non-positive or
//! non-finite pivot: the differences have become linearly dependent in `f32`), the
//! history is cleared and a plain damped step is taken.
//!
//! The differences live in a ring of `M` slots: once full, the newest difference
//! overwrites the oldest, and its Gram row and column are recomputed.
//!
//! # Memory
//!
//! ```text
//!     FOOTPRINT = 4·N·(2·M + 4) + 4·(2·M² + M) + size_of::<AndersonSettings>()
//! ```
//!
//! (`ΔX`, `ΔG`, four work vectors, the Gram matrix, its factor and the coefficients.)
//!
//! # Example
//!
//! ```
//! use solver_core::{Anderson, Options, Status};
//!
//! let mut solver = Anderson::<3, 2>::new();
//! let mut z = [0.0f32; 3];
//! let report = solver.solve(
//!     |z, out| {
//!         out[0] = 0.5 * libm::cosf(z[1]);
//!         out[1] = 0.5 * libm::sinf(z[2]) + 0.2;
//!         out[2] = 0.25 * z[0] - 0.1;
//!     },
//!     &mut z,
//!     &Options::default(),
//! );
//! assert_eq!(report.status, Status::Converged);
//! assert!((z[2] - (0.25 * z[0] - 0.1)).abs() < 1e-5);
//! ```

use crate::kernels;
use crate::monitor::{Form, Monitor, copy, next_slot, residual, split_vecs};
use crate::options::{Options, Report, Status, WorkError, check_len, check_z};
use crate::step::{IntoRequest, Resume, Step, drive};

/// Settings of [`Anderson`] beyond the common [`Options`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AndersonSettings {
    /// Damping `β` in `(0, 1]`; `1` is undamped.
    pub damping: f32,
    /// Regularisation relative to the largest diagonal entry of the Gram matrix.
    pub reg: f32,
}

impl AndersonSettings {
    /// The defaults: `β = 1`, `reg = 1e-6`.
    pub const DEFAULT: AndersonSettings = AndersonSettings { damping: 1.0, reg: 1e-6 };
}

impl Default for AndersonSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Anderson solver for `N` unknowns over the `M` last differences; its whole memory is
/// [`Self::FOOTPRINT`] bytes. See the [module documentation](self) for the math.
#[derive(Clone)]
pub struct Anderson<const N: usize, const M: usize> {
    /// Solver settings; change them freely between solves.
    pub settings: AndersonSettings,
    dx: [[f32; N]; M],
    dg: [[f32; N]; M],
    vecs: [[f32; N]; 4],
    gram: [[f32; M]; M],
    fac: [[f32; M]; M],
    coef: [f32; M],
}

impl<const N: usize, const M: usize> Anderson<N, M> {
    /// Size in bytes: `4·N·(2·M + 4) + 4·(2·M² + M) + size_of::<AndersonSettings>()`.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(AndersonSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: AndersonSettings) -> Self {
        const { assert!(N > 0, "Anderson needs N ≥ 1 unknowns") };
        const { assert!(M > 0, "Anderson needs a history of M ≥ 1 differences") };
        Anderson {
            settings,
            dx: [[0.0; N]; M],
            dg: [[0.0; N]; M],
            vecs: [[0.0; N]; 4],
            gram: [[0.0; M]; M],
            fac: [[0.0; M]; M],
            coef: [0.0; M],
        }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [f32; N], opts: &Options) -> Report
    where
        F: FnMut(&[f32; N], &mut [f32; N]),
    {
        let settings = self.settings;
        let mut work = AndersonWork {
            n: N,
            m: M,
            b: AndersonBuffers {
                dx: self.dx.as_flattened_mut(),
                dg: self.dg.as_flattened_mut(),
                vecs: self.vecs.as_flattened_mut(),
                gram: self.gram.as_flattened_mut(),
                fac: self.fac.as_flattened_mut(),
                coef: &mut self.coef,
            },
        };
        work.run(&settings, &mut crate::array_fn(&mut f), z, opts)
    }
}

impl<const N: usize, const M: usize> Default for Anderson<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

/// Caller-supplied storage for [`AndersonWork`], for `n` unknowns and `m` differences.
pub struct AndersonBuffers<'a> {
    /// Iterate differences, `m·n` floats.
    pub dx: &'a mut [f32],
    /// Residual differences, `m·n` floats.
    pub dg: &'a mut [f32],
    /// Four work vectors, `4·n` floats.
    pub vecs: &'a mut [f32],
    /// Gram matrix, `m·m` floats.
    pub gram: &'a mut [f32],
    /// Its regularised Cholesky factor, `m·m` floats.
    pub fac: &'a mut [f32],
    /// Least-squares coefficients, `m` floats.
    pub coef: &'a mut [f32],
}

/// The Anderson solver over caller-supplied buffers of run-time size: the form used by
/// `solver-host`. [`Anderson`] is this plus owned, const-sized storage.
pub struct AndersonWork<'a> {
    n: usize,
    m: usize,
    b: AndersonBuffers<'a>,
}

impl<'a> AndersonWork<'a> {
    /// Wraps buffers for `n` unknowns and `m ≥ 1` differences (sizes as documented on
    /// [`AndersonBuffers`]; longer buffers are fine).
    pub fn new(n: usize, m: usize, b: AndersonBuffers<'a>) -> Result<Self, WorkError> {
        let mn = m.saturating_mul(n);
        let mm = m.saturating_mul(m);
        check_len("dx", b.dx.len(), mn)?;
        check_len("dg", b.dg.len(), mn)?;
        check_len("vecs", b.vecs.len(), n.saturating_mul(4))?;
        check_len("gram", b.gram.len(), mm)?;
        check_len("fac", b.fac.len(), mm)?;
        check_len("coef", b.coef.len(), m)?;
        if m == 0 {
            return Err(WorkError { what: "m", expected: 1, got: 0 });
        }
        Ok(AndersonWork { n, m, b })
    }

    /// Finds `z = f(z)`; `z` must have length `n`.
    pub fn solve(
        &mut self,
        settings: &AndersonSettings,
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
        settings: &AndersonSettings,
        z: &[f32],
        opts: &Options,
    ) -> Result<AndersonState, WorkError> {
        check_z(z, self.n)?;
        Ok(self.begin(settings, z, opts))
    }

    fn begin(&mut self, s: &AndersonSettings, z: &[f32], opts: &Options) -> AndersonState {
        let [x] = split_vecs::<1>(self.b.vecs, self.n);
        copy(z, x);
        AndersonState { settings: *s, mon: Monitor::new(opts), phase: Phase::Start, count: 0, head: 0 }
    }

    /// The same workspace over the same buffers, borrowed for a shorter time.
    fn reborrow(&mut self) -> AndersonWork<'_> {
        AndersonWork {
            n: self.n,
            m: self.m,
            b: AndersonBuffers {
                dx: &mut *self.b.dx,
                dg: &mut *self.b.dg,
                vecs: &mut *self.b.vecs,
                gram: &mut *self.b.gram,
                fac: &mut *self.b.fac,
                coef: &mut *self.b.coef,
            },
        }
    }

    fn run(
        &mut self,
        s: &AndersonSettings,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Report {
        let mut state = self.begin(s, z, opts);
        drive(self, &mut state, f, z)
    }
}

/// Where a resumable Anderson solve stands between two evaluations.
#[derive(Clone, Copy, Debug)]
pub struct AndersonState {
    settings: AndersonSettings,
    mon: Monitor,
    phase: Phase,
    /// Differences stored, and the slot the next one goes to.
    count: usize,
    head: usize,
}

/// Which evaluation an Anderson solve waits for.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `f` of the start point.
    Start,
    /// `f` of the point after a step.
    Step,
    /// The solve has ended.
    Done(Report),
}

impl Resume for AndersonWork<'_> {
    type State = AndersonState;

    fn request(&mut self, state: &AndersonState) -> (&[f32], &mut [f32]) {
        self.reborrow().into_request(state)
    }

    fn resume(&mut self, state: &mut AndersonState, z: &mut [f32]) -> Step {
        let step = state.advance(self.n, self.m, &mut self.b, z);
        if let Step::Done(report) = step {
            state.phase = Phase::Done(report);
        }
        step
    }
}

impl<'a> IntoRequest<'a> for AndersonWork<'a> {
    fn into_request(self, _state: &AndersonState) -> (&'a [f32], &'a mut [f32]) {
        let [x, g] = split_vecs::<2>(self.b.vecs, self.n);
        (x, g)
    }
}

impl AndersonState {
    /// Iterations taken so far (the `iterations` its report will give).
    pub fn iterations(&self) -> u32 {
        self.mon.iterations
    }

    /// `(residual_abs, residual_rel)` of the best iterate so far, the one the caller's `z`
    /// holds (as its report will give them): `(∞, ∞)` before any finite evaluation.
    pub fn best_residual(&self) -> (f32, f32) {
        self.mon.best()
    }

    /// The iteration, from the evaluation of `x` (into `g`) just made to the next one.
    fn advance(&mut self, n: usize, m: usize, b: &mut AndersonBuffers<'_>, z: &mut [f32]) -> Step {
        let [x, g, t, gp] = split_vecs::<4>(b.vecs, n);
        match self.phase {
            Phase::Done(report) => return Step::Done(report),
            Phase::Start => {
                let e = residual(Form::FixedPoint, x, g);
                if let Some(st) = self.mon.observe(x, g, e, z) {
                    return Step::Done(self.mon.finish(st));
                }
            }
            Phase::Step => {
                let e = residual(Form::FixedPoint, x, g);
                if let Some(st) = self.mon.observe(x, g, e, z) {
                    return Step::Done(self.mon.stop_in_iteration(st));
                }
                if self.mon.diverged(e.abs) {
                    return Step::Done(self.mon.stop_in_iteration(Status::Diverged));
                }
                // Store (ΔX, ΔG) = (t, g − g_prev) in slot `head`, then its Gram
                // row/column.
                let slot = self.head;
                let lo = slot * n;
                if let (Some(dx), Some(dg)) = (b.dx.get_mut(lo..lo + n), b.dg.get_mut(lo..lo + n)) {
                    copy(t, dx);
                    for ((d, gi), gpi) in dg.iter_mut().zip(&*g).zip(&*gp) {
                        *d = gi - gpi;
                    }
                }
                self.count = (self.count + 1).min(m);
                self.head = next_slot(self.head, m);
                let coef = b.coef.get_mut(..self.count).unwrap_or(&mut []);
                if let Some(new) = b.dg.get(lo..lo + n) {
                    kernels::multi_dot(b.dg, n, new, coef);
                }
                for (j, c) in coef.iter().enumerate() {
                    if let Some(e) = b.gram.get_mut(slot * m + j) {
                        *e = *c;
                    }
                    if let Some(e) = b.gram.get_mut(j * m + slot) {
                        *e = *c;
                    }
                }
                if let Some(st) = self.mon.end_iteration() {
                    return Step::Done(self.mon.finish(st));
                }
            }
        }
        if !self.mon.may_iterate() {
            return Step::Done(self.mon.finish(Status::MaxIterations));
        }
        let s = self.settings;
        let beta = s.damping;
        // Least-squares coefficients γ for the `count` stored differences.
        let mut use_hist = self.count > 0;
        if use_hist {
            let coef = b.coef.get_mut(..self.count).unwrap_or(&mut []);
            kernels::multi_dot(b.dg, n, g, coef);
            if !regularised_solve(b.gram, b.fac, m, self.count, s.reg, coef) {
                self.count = 0;
                self.head = 0;
                self.mon.restarts += 1;
                use_hist = false;
            }
        }
        // Step t = β g − Σ γⱼ (ΔXⱼ + β ΔGⱼ).
        for (ti, gi) in t.iter_mut().zip(&*g) {
            *ti = beta * gi;
        }
        if use_hist {
            let coef = b.coef.get_mut(..self.count).unwrap_or(&mut []);
            coef.iter_mut().for_each(|c| *c = -*c);
            kernels::multi_axpy(b.dx, n, coef, t);
            coef.iter_mut().for_each(|c| *c *= beta);
            kernels::multi_axpy(b.dg, n, coef, t);
        }
        kernels::axpy(1.0, t, x);
        copy(g, gp);
        self.phase = Phase::Step;
        Step::Evaluate
    }
}

/// Solves `(G + λI) γ = rhs` for the leading `k × k` block of the row-major `m × m`
/// Gram matrix `gram`, with `λ = reg·max diag(G)`, by Cholesky in `fac`; `γ` replaces
/// `rhs`. Returns `false` on breakdown (non-positive or non-finite pivot, or a
/// non-finite solution).
fn regularised_solve(gram: &[f32], fac: &mut [f32], m: usize, k: usize, reg: f32, rhs: &mut [f32]) -> bool {
    let at = |i: usize, j: usize| i * m + j;
    let mut dmax = 0.0f32;
    for i in 0..k {
        dmax = dmax.max(gram.get(at(i, i)).copied().unwrap_or(0.0));
    }
    let lambda = reg * dmax + f32::MIN_POSITIVE;
    // Lower-triangular Cholesky factor L with L Lᵀ = G + λI (row-major in fac).
    for i in 0..k {
        for j in 0..=i {
            let mut sum = gram.get(at(i, j)).copied().unwrap_or(0.0);
            if i == j {
                sum += lambda;
            }
            for l in 0..j {
                sum -= fac.get(at(i, l)).copied().unwrap_or(0.0) * fac.get(at(j, l)).copied().unwrap_or(0.0);
            }
            let v = if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return false;
                }
                libm::sqrtf(sum)
            } else {
                sum / fac.get(at(j, j)).copied().unwrap_or(f32::NAN)
            };
            if let Some(e) = fac.get_mut(at(i, j)) {
                *e = v;
            }
        }
    }
    // Forward (L y = rhs) and back (Lᵀ γ = y) substitution, in place.
    for i in 0..k {
        let mut sum = rhs.get(i).copied().unwrap_or(0.0);
        for l in 0..i {
            sum -= fac.get(at(i, l)).copied().unwrap_or(0.0) * rhs.get(l).copied().unwrap_or(0.0);
        }
        if let Some(r) = rhs.get_mut(i) {
            *r = sum / fac.get(at(i, i)).copied().unwrap_or(f32::NAN);
        }
    }
    for i in (0..k).rev() {
        let mut sum = rhs.get(i).copied().unwrap_or(0.0);
        for l in i + 1..k {
            sum -= fac.get(at(l, i)).copied().unwrap_or(0.0) * rhs.get(l).copied().unwrap_or(0.0);
        }
        if let Some(r) = rhs.get_mut(i) {
            *r = sum / fac.get(at(i, i)).copied().unwrap_or(f32::NAN);
        }
    }
    rhs.iter().take(k).all(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Gram matrix kept by one-row-and-column updates equals `ΔGᵀΔG` recomputed
    /// from the stored differences, after the ring has wrapped several times.
    #[test]
    fn incremental_gram_matches_recomputed() {
        let mut s = Anderson::<6, 3>::new();
        let mut z = [0.0f32; 6];
        let opts = Options { max_iters: 11, tol_rel: 0.0, stall_iters: 0, ..Options::DEFAULT };
        let r = s.solve(
            |z, out| {
                for (i, o) in out.iter_mut().enumerate() {
                    let next = z[(i + 1) % 6];
                    *o = 0.9 * libm::sinf(next + i as f32) + 0.05 * z[i];
                }
            },
            &mut z,
            &opts,
        );
        assert_eq!(r.iterations, 11, "{r:?}");
        assert_eq!(r.restarts, 0, "{r:?}");
        for i in 0..3 {
            for j in 0..3 {
                let direct = kernels::scalar::dot(&s.dg[i], &s.dg[j]);
                let kept = s.gram[i][j];
                assert!(
                    (direct - kept).abs() <= 1e-5 * direct.abs().max(1e-12),
                    "G[{i}][{j}] {kept} vs {direct}"
                );
            }
        }
    }

    /// The regularised solve returns the least-squares coefficients of a small system.
    #[test]
    fn regularised_solve_matches_hand_computation() {
        // G = [[4, 2], [2, 3]], rhs = [2, 1] ⇒ γ = [0.5, 0] (λ negligible).
        let gram = [4.0, 2.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0];
        let mut fac = [0.0; 9];
        let mut rhs = [2.0, 1.0, 7.0];
        assert!(regularised_solve(&gram, &mut fac, 3, 2, 1e-7, &mut rhs));
        assert!((rhs[0] - 0.5).abs() < 1e-5 && rhs[1].abs() < 1e-5, "{rhs:?}");
        assert_eq!(rhs[2], 7.0);
        // A singular, unregularised system breaks down instead of returning garbage.
        let gram = [1.0, 1.0, 1.0, 1.0];
        let mut fac = [0.0; 4];
        let mut rhs = [1.0, 1.0];
        assert!(!regularised_solve(&gram, &mut fac, 2, 2, 0.0, &mut rhs));
    }
}
