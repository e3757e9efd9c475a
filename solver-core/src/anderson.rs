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
//! **What is stored.** The step only ever needs the combinations `ΔXⱼ + βΔGⱼ`, so the
//! ring keeps `Wⱼ = ΔXⱼ + βΔGⱼ` beside `ΔGⱼ` (`β` is fixed for the length of a solve)
//! and the step is `z₊ = z + βg − W γ`: one pass over `W` instead of one over `ΔX` and
//! one over `ΔG`.
//!
//! **Passes per iteration.** Two reads of the `m` stored rows: `ΔG` once for the new
//! Gram row and the right-hand side `ΔGᵀg` together ([`kernels::multi_dot2`]: both
//! vectors are known once the new difference is stored), and `W` once for the step.
//! Around them, four passes over work vectors: the residual `g = f(x) − x` with both
//! of its norms ([`kernels::sub_norms`]); one pass that stores the new `Wⱼ`, `ΔGⱼ` and
//! starts the step at `βg`; the step's own pass (part of the pass over `W`); and
//! `x ← x + t`. The previous residual is not copied: the two residual buffers swap
//! roles each iteration. (Keeping `ΔX` and `ΔG` took three reads of the history and six
//! work-vector passes.)
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
//!     FOOTPRINT = size_of::<T>()·(N·(2·M + 4) + 2·M² + M) + (a few dozen scalars)
//! ```
//!
//! (`W`, `ΔG`, four work vectors, the Gram matrix, its factor and the coefficients;
//! then the settings and the solve in progress.)
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
//!
//! `Anderson::<3, 2, f64>` is the same solver in `f64`.

use crate::kernels::{self, copy};
use crate::monitor::{Monitor, fixed_point_residual, next_slot, split_work};
use crate::options::{LengthError, Options, Report, SizeError, Status, check_z};
use crate::solver::{Next, Solver, not_started};
use crate::storage::{Allocate, Storage, check_buffers, check_sizes, product};
use crate::{FromSlicesError, Real};

/// Settings of [`Anderson`] beyond the common [`Options`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AndersonSettings<T = f32> {
    /// Damping `β` in `(0, 1]`; `1` is undamped.
    pub damping: T,
    /// Regularisation relative to the largest diagonal entry of the Gram matrix.
    pub reg: T,
}

impl<T: Real> AndersonSettings<T> {
    /// The defaults: `β = 1`, `reg = 1e-6`.
    pub const DEFAULT: Self = AndersonSettings { damping: T::ONE, reg: T::E_6 };
}

impl<T: Real> Default for AndersonSettings<T> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The Anderson solver over the storage `S` (its six buffers: `W`, `ΔG`, the four work
/// vectors, the Gram matrix, its factor, the coefficients), in the float type `T`. Use it
/// through its storage kinds: [`Anderson`] (owned arrays), [`AndersonSlices`] (caller
/// buffers), and `solver-host`'s `DynAnderson` (heap). See the
/// [module documentation](self) for the math.
#[derive(Clone, Debug)]
pub struct AndersonInner<S, T: Real = f32> {
    /// Solver settings; change them freely between solves.
    pub settings: AndersonSettings<T>,
    n: usize,
    m: usize,
    state: Option<AndersonState<T>>,
    storage: S,
}

/// The owned, const-sized storage of [`Anderson<N, M, T>`].
#[derive(Clone, Debug)]
pub struct AndersonArrays<const N: usize, const M: usize, T> {
    w: [[T; N]; M],
    dg: [[T; N]; M],
    work: [[T; N]; 4],
    gram: [[T; M]; M],
    fac: [[T; M]; M],
    coef: [T; M],
}

impl<const N: usize, const M: usize, T> Storage<T, 6> for AndersonArrays<N, M, T> {
    fn buffers(&self) -> [&[T]; 6] {
        [
            self.w.as_flattened(),
            self.dg.as_flattened(),
            self.work.as_flattened(),
            self.gram.as_flattened(),
            self.fac.as_flattened(),
            &self.coef,
        ]
    }

    fn buffers_mut(&mut self) -> [&mut [T]; 6] {
        [
            self.w.as_flattened_mut(),
            self.dg.as_flattened_mut(),
            self.work.as_flattened_mut(),
            self.gram.as_flattened_mut(),
            self.fac.as_flattened_mut(),
            &mut self.coef,
        ]
    }
}

/// Anderson solver for `N` unknowns over the `M` last differences, in `T` (`f32` unless
/// given); its whole memory is [`Self::FOOTPRINT`] bytes.
pub type Anderson<const N: usize, const M: usize, T = f32> = AndersonInner<AndersonArrays<N, M, T>, T>;

/// The Anderson solver over caller buffers of run-time size ([`buffer_lens`] gives them).
pub type AndersonSlices<'a, T = f32> = AndersonInner<[&'a mut [T]; 6], T>;

/// Lengths of the six buffers (`W = ΔX + βΔG`, `ΔG`, work, Gram, factor, coefficients) for `n`
/// unknowns and `m` differences: `[m·n, m·n, 4·n, m², m², m]`.
pub fn buffer_lens(n: usize, m: usize) -> Result<[usize; 6], SizeError> {
    check_sizes(n, m)?;
    let (mn, mm) = (product(m, n)?, product(m, m)?);
    Ok([mn, mn, product(4, n)?, mm, mm, m])
}

/// The [`FOOTPRINT`](Anderson::FOOTPRINT) of `Anderson<n, m, T>` for sizes known only at
/// run time: the arrays plus the scalars beside them. `None` on a zero size or overflow.
pub fn footprint<T: Real>(n: usize, m: usize) -> Option<usize> {
    let arrays = AndersonInner::<(), T>::bytes_for(n, m)?;
    crate::storage::owned_bytes::<AndersonInner<(), T>, AndersonInner<[T; 1], T>, T>(arrays)
}

impl<const N: usize, const M: usize, T: Real> Anderson<N, M, T> {
    /// Size in bytes of the solver.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(AndersonSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: AndersonSettings<T>) -> Self {
        const { assert!(N > 0, "Anderson needs N ≥ 1 unknowns") };
        const { assert!(M > 0, "Anderson needs a history of M ≥ 1 differences") };
        let storage = AndersonArrays {
            w: [[T::ZERO; N]; M],
            dg: [[T::ZERO; N]; M],
            work: [[T::ZERO; N]; 4],
            gram: [[T::ZERO; M]; M],
            fac: [[T::ZERO; M]; M],
            coef: [T::ZERO; M],
        };
        AndersonInner { settings, n: N, m: M, state: None, storage }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [T; N], opts: &Options<T>) -> Report<T>
    where
        F: FnMut(&[T; N], &mut [T; N]),
    {
        let mut f = crate::array_fn(&mut f);
        Solver::solve(self, &mut f, z, opts).unwrap_or(not_started())
    }
}

impl<const N: usize, const M: usize, T: Real> Default for Anderson<N, M, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T: Real> AndersonSlices<'a, T> {
    /// The solver over caller buffers for `n` unknowns and `m` differences, at least as
    /// long as [`buffer_lens`]`(n, m)`: `[W, ΔG, work, gram, fac, coef]`.
    pub fn from_slices(n: usize, m: usize, bufs: [&'a mut [T]; 6]) -> Result<Self, FromSlicesError> {
        check_buffers(&bufs, buffer_lens(n, m)?, ["w", "dg", "work", "gram", "fac", "coef"])?;
        Ok(AndersonInner { settings: AndersonSettings::DEFAULT, n, m, state: None, storage: bufs })
    }
}

impl<S: Allocate<T, 6>, T: Real> AndersonInner<S, T> {
    /// A solver for `n` unknowns over the `m` last differences, its buffers allocated
    /// here, once: a solve then allocates nothing.
    pub fn with_sizes(n: usize, m: usize) -> Result<Self, SizeError> {
        let storage = S::zeroed(buffer_lens(n, m)?)?;
        Ok(AndersonInner { settings: AndersonSettings::DEFAULT, n, m, state: None, storage })
    }
}

impl<S, T: Real> AndersonInner<S, T> {
    /// Bytes of the buffers of a solver for `n` unknowns and `m` differences,
    /// `size_of::<T>()·(n·(2m + 4) + 2m² + m)`; `None` on overflow or a zero size.
    pub fn bytes_for(n: usize, m: usize) -> Option<usize> {
        let lens = buffer_lens(n, m).ok()?;
        lens.iter().try_fold(0usize, |acc, l| acc.checked_add(*l))?.checked_mul(T::BYTES)
    }
}

impl<S: Storage<T, 6>, T: Real> Solver<T> for AndersonInner<S, T> {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        self.storage.buffers().iter().map(|b| b.len()).sum::<usize>() * T::BYTES
    }

    fn start(&mut self, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        check_z(z.len(), self.n)?;
        let [_, _, work, ..] = self.storage.buffers_mut();
        let [x] = split_work::<T, 1>(work, self.n);
        copy(z, x);
        self.state = Some(AndersonState {
            settings: self.settings,
            mon: Monitor::new(opts),
            phase: Phase::Start,
            count: 0,
            head: 0,
            flip: false,
        });
        Ok(())
    }

    fn request(&mut self) -> (&[T], &mut [T]) {
        if self.state.is_none() {
            return (&[], &mut []);
        }
        let flip = self.state.as_ref().is_some_and(|s| s.flip);
        let [_, _, work, ..] = self.storage.buffers_mut();
        let [x, g, _, gp] = split_work::<T, 4>(work, self.n);
        (x, if flip { gp } else { g })
    }

    fn resume(&mut self, z: &mut [T]) -> Next<T> {
        let Some(state) = self.state.as_mut() else { return Next::Done(not_started()) };
        let (n, m) = (self.n, self.m);
        let [w, dg, work, gram, fac, coef] = self.storage.buffers_mut();
        let next = state.iterate(n, m, Buffers { w, dg, work, gram, fac, coef }, z);
        if let Next::Done(report) = next {
            state.phase = Phase::Done(report.status);
        }
        next
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.mon.iterations)
    }

    fn best_residual(&self) -> (T, T) {
        self.state.as_ref().map_or((T::INFINITY, T::INFINITY), |s| s.mon.best())
    }
}

/// The six buffers of one solve.
struct Buffers<'b, T> {
    w: &'b mut [T],
    dg: &'b mut [T],
    work: &'b mut [T],
    gram: &'b mut [T],
    fac: &'b mut [T],
    coef: &'b mut [T],
}

/// Where a resumable Anderson solve stands between two evaluations.
#[derive(Clone, Copy, Debug)]
struct AndersonState<T: Real> {
    settings: AndersonSettings<T>,
    mon: Monitor<T>,
    phase: Phase,
    /// Differences stored, and the slot the next one goes to.
    count: usize,
    head: usize,
    /// Which of work vectors 1 and 3 holds the residual `g` (the other holds the
    /// previous one): `false` for 1. They swap roles every iteration instead of copying.
    flip: bool,
}

/// Which evaluation an Anderson solve waits for.
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

impl<T: Real> AndersonState<T> {
    /// The iteration, from the evaluation of `x` (into `g`) just made to the next one.
    fn iterate(&mut self, n: usize, m: usize, b: Buffers<'_, T>, z: &mut [T]) -> Next<T> {
        let [x, g1, t, g3] = split_work::<T, 4>(b.work, n);
        let (g, gp) = if self.flip { (g3, g1) } else { (g1, g3) };
        let beta = self.settings.damping;
        match self.phase {
            Phase::Done(status) => return Next::Done(self.mon.finish(status)),
            Phase::Start => {
                let e = fixed_point_residual(x, g);
                if let Some(st) = self.mon.observe(x, g, e, z) {
                    return Next::Done(self.mon.finish(st));
                }
                for (ti, gi) in t.iter_mut().zip(&*g) {
                    *ti = beta * *gi;
                }
            }
            Phase::Iterate => {
                let e = fixed_point_residual(x, g);
                if let Some(st) = self.mon.observe(x, g, e, z) {
                    return Next::Done(self.mon.stop_in_iteration(st));
                }
                if self.mon.diverged(e.abs) {
                    return Next::Done(self.mon.stop_in_iteration(Status::Diverged));
                }
                // One pass: store ΔG = g − g_prev and W = ΔX + βΔG (ΔX = t, the step
                // just taken) in slot `head`, and start the next step at t ← βg.
                let slot = self.head;
                let lo = slot * n;
                if let (Some(w), Some(dg)) = (b.w.get_mut(lo..lo + n), b.dg.get_mut(lo..lo + n)) {
                    let stored = w.iter_mut().zip(dg.iter_mut());
                    for (((wi, di), (ti, gi)), gpi) in stored.zip(t.iter_mut().zip(&*g)).zip(&*gp) {
                        let d = *gi - *gpi;
                        *wi = *ti + beta * d;
                        *di = d;
                        *ti = beta * *gi;
                    }
                }
                self.count = (self.count + 1).min(m);
                self.head = next_slot(self.head, m);
                // The new Gram row/column and the right-hand side ΔGᵀg, in one pass over ΔG.
                let coef = b.coef.get_mut(..self.count).unwrap_or(&mut []);
                let row = b.gram.get_mut(slot * m..slot * m + self.count).unwrap_or(&mut []);
                if let Some(new) = b.dg.get(lo..lo + n) {
                    kernels::multi_dot2(b.dg, n, new, g, row, coef);
                }
                for j in 0..self.count {
                    if let Some(&c) = b.gram.get(slot * m + j)
                        && let Some(e) = b.gram.get_mut(j * m + slot)
                    {
                        *e = c;
                    }
                }
                if let Some(st) = self.mon.end_iteration() {
                    return Next::Done(self.mon.finish(st));
                }
            }
        }
        if !self.mon.may_iterate() {
            return Next::Done(self.mon.finish(Status::MaxIterations));
        }
        // Least-squares coefficients γ for the `count` stored differences; `coef`
        // holds ΔGᵀg, formed with the Gram row (`count > 0` only after a store).
        if self.count > 0 {
            let coef = b.coef.get_mut(..self.count).unwrap_or(&mut []);
            if regularised_solve(b.gram, b.fac, m, self.count, self.settings.reg, coef) {
                // The step t = βg − W γ (t holds βg).
                coef.iter_mut().for_each(|c| *c = -*c);
                kernels::multi_axpy(b.w, n, coef, t);
            } else {
                // Breakdown: forget the history and take the plain damped step βg.
                self.count = 0;
                self.head = 0;
                self.mon.restarts += 1;
            }
        }
        kernels::axpy(T::ONE, t, x);
        // This residual is the previous one of the next iteration.
        self.flip = !self.flip;
        self.phase = Phase::Iterate;
        Next::Evaluate
    }
}

/// Solves `(G + λI) γ = rhs` for the leading `k × k` block of the row-major `m × m`
/// Gram matrix `gram`, with `λ = reg·max diag(G)`, by Cholesky in `fac`; `γ` replaces
/// `rhs`. Returns `false` on breakdown (non-positive or non-finite pivot, or a
/// non-finite solution).
fn regularised_solve<T: Real>(gram: &[T], fac: &mut [T], m: usize, k: usize, reg: T, rhs: &mut [T]) -> bool {
    let at = |i: usize, j: usize| i * m + j;
    let mut dmax = T::ZERO;
    for i in 0..k {
        dmax = dmax.max(gram.get(at(i, i)).copied().unwrap_or(T::ZERO));
    }
    let lambda = reg * dmax + T::MIN_POSITIVE;
    // Lower-triangular Cholesky factor L with L Lᵀ = G + λI (row-major in fac).
    for i in 0..k {
        for j in 0..=i {
            let mut sum = gram.get(at(i, j)).copied().unwrap_or(T::ZERO);
            if i == j {
                sum += lambda;
            }
            for l in 0..j {
                sum -= fac.get(at(i, l)).copied().unwrap_or(T::ZERO)
                    * fac.get(at(j, l)).copied().unwrap_or(T::ZERO);
            }
            let v = if i == j {
                if !(sum > T::ZERO && sum.is_finite()) {
                    return false;
                }
                sum.sqrt()
            } else {
                sum / fac.get(at(j, j)).copied().unwrap_or(T::NAN)
            };
            if let Some(e) = fac.get_mut(at(i, j)) {
                *e = v;
            }
        }
    }
    // Forward (L y = rhs) and back (Lᵀ γ = y) substitution, in place.
    for i in 0..k {
        let mut sum = rhs.get(i).copied().unwrap_or(T::ZERO);
        for l in 0..i {
            sum -= fac.get(at(i, l)).copied().unwrap_or(T::ZERO) * rhs.get(l).copied().unwrap_or(T::ZERO);
        }
        if let Some(r) = rhs.get_mut(i) {
            *r = sum / fac.get(at(i, i)).copied().unwrap_or(T::NAN);
        }
    }
    for i in (0..k).rev() {
        let mut sum = rhs.get(i).copied().unwrap_or(T::ZERO);
        for l in i + 1..k {
            sum -= fac.get(at(l, i)).copied().unwrap_or(T::ZERO) * rhs.get(l).copied().unwrap_or(T::ZERO);
        }
        if let Some(r) = rhs.get_mut(i) {
            *r = sum / fac.get(at(i, i)).copied().unwrap_or(T::NAN);
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
                let direct = kernels::scalar::dot(&s.storage.dg[i], &s.storage.dg[j]);
                let kept = s.storage.gram[i][j];
                assert!(
                    (direct - kept).abs() <= 1e-5 * direct.abs().max(1e-12),
                    "G[{i}][{j}] {kept} vs {direct}"
                );
            }
        }
    }

    /// The ring holds `W = ΔX + βΔG` and `ΔG` of the last `M` steps, as recomputed from
    /// the points evaluated and their images (with damping, so `W ≠ ΔX + ΔG`).
    #[test]
    fn stored_rows_are_the_differences_of_the_iterates() {
        let mut s =
            Anderson::<6, 3>::with_settings(AndersonSettings { damping: 0.5, ..AndersonSettings::DEFAULT });
        let mut z = [0.0f32; 6];
        let opts = Options { max_iters: 11, tol_rel: 0.0, stall_iters: 0, ..Options::DEFAULT };
        let mut seen: [([f32; 6], [f32; 6]); 12] = [([0.0; 6], [0.0; 6]); 12];
        let mut calls = 0;
        let r = s.solve(
            |z, out| {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = 0.9 * libm::sinf(z[(i + 1) % 6] + i as f32) + 0.05 * z[i];
                }
                if let Some(e) = seen.get_mut(calls) {
                    *e = (*z, *out);
                }
                calls += 1;
            },
            &mut z,
            &opts,
        );
        assert_eq!((r.iterations, r.restarts, calls), (11, 0, 12), "{r:?}");
        // Differences 8, 9, 10 (between evaluations j and j + 1) are in slots 2, 0, 1.
        for j in 8..11 {
            let ((x0, f0), (x1, f1)) = (seen[j], seen[j + 1]);
            for i in 0..6 {
                let dx = x1[i] - x0[i];
                let dg = (f1[i] - x1[i]) - (f0[i] - x0[i]);
                let (w, d) = (s.storage.w[j % 3][i], s.storage.dg[j % 3][i]);
                assert!((d - dg).abs() <= 1e-6, "ΔG[{j}][{i}] {d} vs {dg}");
                assert!((w - (dx + 0.5 * dg)).abs() <= 1e-6, "W[{j}][{i}] {w} vs {}", dx + 0.5 * dg);
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
