//! A DEQ layer `f(z) = tanh(W z + c)` with a dense symmetric weight of prescribed
//! spectral radius, in two families: a semicircle spectrum ([`TanhLayer::new`]) and a
//! uniform one ([`TanhLayer::uniform_spectrum`]).

use crate::eigen::{ExtremeEigenvalues, LanczosOptions, lanczos_extreme};
use crate::linalg::{matvec, norm2};
use crate::newton::{NewtonOptions, newton_with};
use crate::orthogonal::RandomOrthogonal;
use crate::rng::SplitMix64;
use crate::{FixedPointProblem, matvec8_f32, newton_reference};

/// Step limit of the damped iteration (`ρ ≥ 1`, all stages together); Newton is
/// tried after it regardless.
const RELAX_MAX_STEPS: usize = 20_000;

/// The spectrum family of a [`TanhLayer`]'s weight `W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TanhSpectrum {
    /// Wigner semicircle scaled to `[−ρ, ρ]` ([`TanhLayer::new`]); name `"tanh …"`.
    Semicircle,
    /// Eigenvalues evenly spaced over `[−ρ, ρ]`, both ends included
    /// ([`TanhLayer::uniform_spectrum`]); name `"tanh-uniform …"`.
    Uniform,
}

/// The eigenvalues of the uniform-spectrum layer: `λᵢ = ρ (2i − (d − 1)) / (d − 1)`,
/// `i = 0..d`, i.e. `ρ (−1 + 2i/(d − 1))`, increasing from exactly `−ρ` to exactly `ρ`
/// and exactly antisymmetric (`λ_{d−1−i} = −λᵢ`).
///
/// # Panics
/// If `d < 2`.
pub fn uniform_eigenvalues(d: usize, rho: f64) -> Vec<f64> {
    assert!(d >= 2, "uniform_eigenvalues needs d >= 2");
    let den = (d - 1) as f64;
    (0..d).map(|i| rho * (((2 * i) as f64 - den) / den)).collect()
}

/// The fixed-point problem `z = tanh(W z + c)`, `z ∈ R^d`.
///
/// Two families differ only in `W` (same injection, reference scheme and maps):
/// the semicircle family ([`TanhLayer::new`], described here) and the harder uniform
/// family ([`TanhLayer::uniform_spectrum`]).
///
/// Construction ([`TanhLayer::new`]), all from one [`SplitMix64`] seeded with `seed`,
/// in this order:
/// * `W = (ρ / r) S` is dense and symmetric: `S = (G + Gᵀ) / √(2d)` with `G` a
///   `d × d` matrix of i.i.d. N(0, 1) entries (drawn row by row), a GOE matrix whose
///   spectrum follows Wigner's semicircle on about `[−2, 2]`, and `r` its spectral
///   radius `max |λ(S)|`. The spectrum of `W` is therefore a semicircle scaled to
///   `[−ρ, ρ]` (up to the random edge fluctuations), with one of its extreme
///   eigenvalues `±ρ`: the spectral radius (and 2-norm) of `W` is `ρ` to about
///   10⁻¹³ relative. Every unit `z` couples to all others: the off-diagonal entries
///   carry about `(d − 1)/(d + 1)` of `‖W‖_F²`.
/// * The injection `c = U x + b` is stored directly: `x ~ N(0, I_p)` with
///   `p = max(1, d/2)`, `U` has N(0, 1/p) entries and `b ~ N(0, 0.1² I)`; each `cᵢ` is
///   therefore roughly N(0, 1.01).
/// * `r` is computed in float64 by Lanczos with full reorthogonalisation
///   ([`lanczos_extreme`], random start vector from the same generator; O(d²) per
///   step, about 35–100 steps for `d` up to 1024, `d` steps at most) until the
///   extreme Ritz values are stable to 10⁻¹⁴ relative, their values taken from the
///   tridiagonal matrix by Sturm-sequence bisection. For `d = 1024` the whole
///   construction, float64 reference included, takes about 0.2–0.3 s at opt-level 2.
///
/// The Jacobian of `f` is `diag(1 − tanh²(W z + c)) W`, whose norm is at most `ρ`, so
/// for `ρ < 1` the map is a contraction with a unique fixed point; for `ρ ≥ 1`
/// there may be several.
///
/// * Start point: `z = 0`.
/// * Reference: for `ρ < 1`, float64 Newton from `z = 0` (the fixed point is unique).
///   For `ρ ≥ 1` there may be many fixed points and Newton from `z = 0` can stall at
///   a local minimum of `‖g‖`, so the reference is instead float64 Newton started
///   from the damped iteration `z ← z + ½ (f(z) − z)` run from `z = 0` until
///   `‖g‖₂ ≤ 10⁻³ max(1, ‖z‖₂)` (continued to 10⁻⁶, then 10⁻⁹ if Newton fails): a
///   stable equilibrium of the flow `ż = f(z) − z` (which, `W` being symmetric, is a
///   Hopfield network and always settles). It is only *a* fixed point: use
///   [`FixedPointProblem::polish`] to check a solver's answer against its own root.
/// * f32 map: row-major f32 copy of `W`, each row dotted with eight independent
///   accumulators, then `f32::tanh`.
#[derive(Clone, Debug)]
pub struct TanhLayer {
    d: usize,
    rho: f64,
    seed: u64,
    spectrum: TanhSpectrum,
    w32: Vec<f32>,
    c32: Vec<f32>,
    w64: Vec<f64>,
    c64: Vec<f64>,
    extremes: (f64, f64),
    lanczos_steps: usize,
    /// The factor the drawn injection was multiplied by ([`TanhLayer::with_injection_scale`]).
    injection_scale: f64,
    reference: Vec<f64>,
}

impl TanhLayer {
    /// Builds the layer of dimension `d` with spectral radius `rho` from `seed`, and
    /// its float64 reference fixed point.
    ///
    /// # Panics
    /// If `d == 0`, `rho` is not finite and non-negative, Lanczos does not converge
    /// (not seen in practice), or the float64 Newton reference solve fails.
    pub fn new(d: usize, rho: f64, seed: u64) -> Self {
        assert!(d > 0, "TanhLayer needs d > 0");
        assert!(rho.is_finite() && rho >= 0.0, "TanhLayer needs rho >= 0");
        let mut rng = SplitMix64::new(seed);
        let g = rng.normal_vec(d * d);
        let s_scale = 1.0 / (2.0 * d as f64).sqrt();
        // (G + Gᵀ)ᵢⱼ is computed as the same sum for (i, j) and (j, i): exactly symmetric.
        let mut w64: Vec<f64> = (0..d * d)
            .map(|k| {
                let (i, j) = (k / d, k % d);
                (g[k] + g[j * d + i]) * s_scale
            })
            .collect();
        drop(g);
        let c64 = draw_injection(d, &mut rng);

        let ext = lanczos_extreme(&w64, d, &mut rng, &LanczosOptions::default());
        assert!(
            ext.converged,
            "TanhLayer: Lanczos did not converge in {} steps (d = {d}, seed = {seed})",
            ext.steps
        );
        let extremes = scale_extremes(&ext, rho);
        let r = ext.spectral_radius();
        let factor = if r > 0.0 { rho / r } else { 0.0 };
        w64.iter_mut().for_each(|v| *v *= factor);
        Self::with_weights(d, rho, seed, TanhSpectrum::Semicircle, w64, c64, extremes, ext.steps)
    }

    /// Builds the uniform-spectrum layer of dimension `d` with spectral radius `rho`
    /// from `seed`, and its float64 reference fixed point; its name is
    /// `"tanh-uniform d=… rho=…"`.
    ///
    /// `W = Q diag(λ) Qᵀ` with `λ` = [`uniform_eigenvalues`]`(d, ρ)`: evenly spaced over
    /// `[−ρ, ρ]`, both ends attained, so that a whole band of eigenvalues sits near
    /// `±ρ` (the semicircle of [`TanhLayer::new`] has few there), which is meant to
    /// be harder for limited-memory quasi-Newton and Anderson solvers. The tanh
    /// saturation damps this at the fixed point (mean `1 − zᵢ²` about ½): for the
    /// suite's layers the eigenvalues of `f′(z*)` reach about ±0.65 (`ρ = 0.9`), ±0.68
    /// (`ρ = 0.99`) and ±0.8 (`ρ = 1.2`), against about ±0.59, ±0.63 and ±0.73 for the
    /// semicircle layers of the same `d` and `ρ`. Construction, all from one
    /// [`SplitMix64`] seeded with `seed`, in this order:
    /// * `Q` = [`RandomOrthogonal::new`]`(d, rng)`: a dense Haar-distributed orthogonal
    ///   matrix (Householder QR of a `d × d` Gaussian matrix with the sign fix;
    ///   `d²` normals). `W` is formed from the reflectors directly
    ///   ([`RandomOrthogonal::conjugate_diagonal`]) and is exactly symmetric; its
    ///   eigenvalues are `λ` to about 10⁻¹⁴, its spectral radius and 2-norm `ρ`. The
    ///   off-diagonal entries carry about `d/(d + 2)` of `‖W‖_F²` (in expectation, for a
    ///   spectrum summing to 0).
    /// * The injection `c`, drawn exactly as in [`TanhLayer::new`].
    ///
    /// Start point, reference scheme (Newton from 0 for `ρ < 1`, damped iteration
    /// then Newton for `ρ ≥ 1`) and f32 map are those of [`TanhLayer::new`].
    /// [`extreme_eigenvalues`](Self::extreme_eigenvalues) is `(−ρ, ρ)` and
    /// [`lanczos_steps`](Self::lanczos_steps) is 0 (no Lanczos run is needed). For
    /// `d = 1024` the construction, float64 reference included, takes about 0.6 s at
    /// opt-level 2.
    ///
    /// # Panics
    /// If `d < 2`, `rho` is not finite and non-negative, or the float64 reference
    /// solve fails.
    pub fn uniform_spectrum(d: usize, rho: f64, seed: u64) -> Self {
        assert!(d >= 2, "TanhLayer::uniform_spectrum needs d >= 2");
        assert!(rho.is_finite() && rho >= 0.0, "TanhLayer needs rho >= 0");
        let mut rng = SplitMix64::new(seed);
        let q = RandomOrthogonal::new(d, &mut rng);
        let w64 = q.conjugate_diagonal(&uniform_eigenvalues(d, rho));
        drop(q);
        let c64 = draw_injection(d, &mut rng);
        Self::with_weights(d, rho, seed, TanhSpectrum::Uniform, w64, c64, (-rho, rho), 0)
    }

    /// Stores the float64 and f32 data and computes the reference (shared by both
    /// families).
    #[allow(clippy::too_many_arguments)]
    fn with_weights(
        d: usize,
        rho: f64,
        seed: u64,
        spectrum: TanhSpectrum,
        w64: Vec<f64>,
        c64: Vec<f64>,
        extremes: (f64, f64),
        lanczos_steps: usize,
    ) -> Self {
        let mut layer = TanhLayer {
            d,
            rho,
            seed,
            spectrum,
            w32: w64.iter().map(|&v| v as f32).collect(),
            c32: c64.iter().map(|&v| v as f32).collect(),
            w64,
            c64,
            extremes,
            lanczos_steps,
            injection_scale: 1.0,
            reference: Vec::new(),
        };
        layer.reference = layer.compute_reference();
        layer
    }

    /// The same layer with its injection `c` multiplied by `scale` (named
    /// `"… inj=scale"`), its reference recomputed. A small injection keeps `W z + c`
    /// near 0, where `tanh′ ≈ 1`: the layer does not saturate, its Jacobian at the fixed
    /// point is close to `W` itself, and a quasi-Newton history must capture `W`'s
    /// spectrum (the suite's layers, with `scale = 1`, have a mean `tanh′` of about 0.5
    /// at their fixed points).
    ///
    /// # Panics
    /// If `scale` is not finite, or the float64 reference solve fails.
    pub fn with_injection_scale(mut self, scale: f64) -> Self {
        assert!(scale.is_finite(), "TanhLayer: the injection scale must be finite");
        self.c64.iter_mut().for_each(|c| *c *= scale);
        self.c32 = self.c64.iter().map(|&v| v as f32).collect();
        self.injection_scale *= scale;
        self.reference = self.compute_reference();
        self
    }

    /// Newton from 0 for `ρ < 1`, the relaxed reference otherwise.
    fn compute_reference(&self) -> Vec<f64> {
        if self.rho < 1.0 {
            newton_reference(self, &vec![0.0; self.d])
        } else {
            self.relaxed_newton_reference()
        }
    }

    /// The spectrum family of `W`.
    pub fn spectrum(&self) -> TanhSpectrum {
        self.spectrum
    }

    /// The prescribed spectral radius `ρ`.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// The seed the layer was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The float64 weight `W`, row-major `d × d` (the f32 map uses it rounded to f32).
    pub fn weights(&self) -> &[f64] {
        &self.w64
    }

    /// The float64 injection `c = U x + b`.
    pub fn injection(&self) -> &[f64] {
        &self.c64
    }

    /// The smallest and largest eigenvalue of `W`, `(λ_min, λ_max)`. Semicircle
    /// family: from Lanczos, the one of larger magnitude is `±ρ` exactly, the other
    /// is scaled with `W`. Uniform family: `(−ρ, ρ)` (prescribed).
    pub fn extreme_eigenvalues(&self) -> (f64, f64) {
        self.extremes
    }

    /// The number of Lanczos steps that found the spectral radius of `S` (0 for the
    /// uniform family).
    pub fn lanczos_steps(&self) -> usize {
        self.lanczos_steps
    }

    /// The reference for `ρ ≥ 1`: the damped fixed-point iteration
    /// `z ← z + ½ (f(z) − z)` in float64 from `z = 0`, handed to Newton once
    /// `‖g(z)‖₂ ≤ τ · max(1, ‖z‖₂)` for `τ` = 10⁻³, and, should Newton fail from there,
    /// continued to `τ` = 10⁻⁶ and 10⁻⁹ before trying again.
    ///
    /// The iteration is the forward-Euler discretisation (step ½) of the Hopfield flow
    /// `ż = tanh(W z + c) − z`, which for symmetric `W` has a Lyapunov function and
    /// settles at a stable equilibrium; Newton then polishes that equilibrium.
    ///
    /// # Panics
    /// If Newton fails from all three points.
    fn relaxed_newton_reference(&self) -> Vec<f64> {
        let d = self.d;
        let mut z = vec![0.0; d];
        let mut g = vec![0.0; d];
        let mut steps = 0;
        for tol in [1e-3, 1e-6, 1e-9] {
            while steps < RELAX_MAX_STEPS {
                self.f64_residual(&z, &mut g);
                if norm2(&g) <= tol * norm2(&z).max(1.0) {
                    break;
                }
                for (zi, gi) in z.iter_mut().zip(&g) {
                    *zi += 0.5 * gi;
                }
                steps += 1;
            }
            let opts = NewtonOptions { max_iter: 30, ..NewtonOptions::default() };
            let solution = newton_with(
                |z, out| self.f64_residual(z, out),
                |z, jac| self.f64_jacobian(z, jac),
                &z,
                &opts,
            );
            if let Some(s) = solution {
                return s.root;
            }
        }
        panic!("float64 reference failed for {}", self.name());
    }
}

/// `f(z) = tanh(W z + c)` in f32, `W` row-major `d × d` (shared by every tanh map of
/// the crate).
pub(crate) fn tanh_map_f32(w: &[f32], c: &[f32], z: &[f32], out: &mut [f32]) {
    let d = c.len();
    assert!(z.len() == d && out.len() == d, "tanh map: length mismatch");
    matvec8_f32(w, z, out);
    for (o, c) in out.iter_mut().zip(c) {
        *o = (*o + c).tanh();
    }
}

/// `W z + c` in float64.
fn preactivation(w: &[f64], c: &[f64], z: &[f64]) -> Vec<f64> {
    let mut a = vec![0.0; c.len()];
    matvec(w, z, &mut a);
    a.iter_mut().zip(c).for_each(|(ai, ci)| *ai += ci);
    a
}

/// `g(z) = tanh(W z + c) − z` in float64.
pub(crate) fn tanh_residual_f64(w: &[f64], c: &[f64], z: &[f64], out: &mut [f64]) {
    let a = preactivation(w, c, z);
    for ((o, ai), zi) in out.iter_mut().zip(&a).zip(z) {
        *o = ai.tanh() - zi;
    }
}

/// `∂g/∂z = diag(1 − tanh²(W z + c)) W − I` in float64, row-major.
pub(crate) fn tanh_jacobian_f64(w: &[f64], c: &[f64], z: &[f64], jac: &mut [f64]) {
    let d = c.len();
    assert_eq!(jac.len(), d * d, "tanh map Jacobian: shape mismatch");
    let a = preactivation(w, c, z);
    for (i, (row, w)) in jac.chunks_exact_mut(d).zip(w.chunks_exact(d)).enumerate() {
        let t = a[i].tanh();
        let s = 1.0 - t * t;
        for (r, wij) in row.iter_mut().zip(w) {
            *r = s * wij;
        }
        row[i] -= 1.0;
    }
}

/// The injection `c = U x + b` (see [`TanhLayer`]), drawn from `rng`: `x` first, then
/// for each `i` the row `Uᵢ` followed by `bᵢ`.
fn draw_injection(d: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let p = (d / 2).max(1);
    let x = rng.normal_vec(p);
    let u_scale = 1.0 / (p as f64).sqrt();
    (0..d)
        .map(|_| {
            let ux: f64 = x.iter().map(|xj| u_scale * rng.normal() * xj).sum();
            ux + 0.1 * rng.normal()
        })
        .collect()
}

/// The extreme eigenvalues of `W = (ρ / r) S` from those of `S`: `±ρ` exactly at the
/// end of larger magnitude.
fn scale_extremes(ext: &ExtremeEigenvalues, rho: f64) -> (f64, f64) {
    let r = ext.spectral_radius();
    if r == 0.0 {
        return (0.0, 0.0);
    }
    if ext.max.abs() >= ext.min.abs() {
        (ext.min * (rho / r), rho.copysign(ext.max))
    } else {
        (rho.copysign(ext.min), ext.max * (rho / r))
    }
}

impl FixedPointProblem for TanhLayer {
    fn name(&self) -> String {
        let family = match self.spectrum {
            TanhSpectrum::Semicircle => "tanh",
            TanhSpectrum::Uniform => "tanh-uniform",
        };
        if self.injection_scale == 1.0 {
            format!("{family} d={} rho={}", self.d, self.rho)
        } else {
            format!("{family} d={} rho={} inj={}", self.d, self.rho, self.injection_scale)
        }
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn start(&self) -> Vec<f32> {
        vec![0.0; self.d]
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        tanh_map_f32(&self.w32, &self.c32, z, out);
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        tanh_residual_f64(&self.w64, &self.c64, z, out);
    }

    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        tanh_jacobian_f64(&self.w64, &self.c64, z, jac);
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}
