//! An affine map on which plain fixed-point iteration diverges.

use crate::linalg::{lu_solve, matvec, symmetric_with_spectrum};
use crate::rng::SplitMix64;
use crate::{FixedPointProblem, matvec8_f32};

/// Number of Householder reflections used to rotate the eigenbasis of `A`.
pub const REFLECTIONS: usize = 8;

/// Largest eigenvalue allowed for `A`, keeping `I − A` well conditioned.
pub const MAX_EIGENVALUE: f64 = 0.8;

/// The affine fixed-point problem `z = A z + b`, `z ∈ R^d`.
///
/// Construction ([`LinearMap::new`]), from one [`SplitMix64`] seeded with `seed`:
/// `A = Q diag(λ) Qᵀ` symmetric, `Q` a product of [`REFLECTIONS`] random Householder
/// reflections ([`crate::linalg::symmetric_with_spectrum`]; so `A` is `diag(λ)` plus
/// a perturbation of rank ≤ 16), with `λ₀ = −ρ`,
/// `λ₁ = min(ρ, 0.8)` (for `d ≥ 2`) and the other `λᵢ` uniform in `[−ρ, min(ρ, 0.8)]`.
/// The spectral radius is exactly `ρ`, so for `ρ > 1` plain iteration
/// `z ← A z + b` diverges (the error along the eigenvector of `−ρ` is multiplied
/// by `−ρ` each step); yet every eigenvalue of `I − A` lies in `[0.2, 1 + ρ]`, so the
/// fixed point is well conditioned (`cond(I − A) ≤ 5 (1 + ρ)`). `b ~ N(0, I)`.
///
/// * Start point: `z = 0`.
/// * Reference: LU solve of `(I − A) z = b` in float64.
#[derive(Clone, Debug)]
pub struct LinearMap {
    d: usize,
    rho: f64,
    a32: Vec<f32>,
    b32: Vec<f32>,
    a64: Vec<f64>,
    b64: Vec<f64>,
    eigenvalues: Vec<f64>,
    reference: Vec<f64>,
}

impl LinearMap {
    /// Builds the map of dimension `d` with spectral radius `rho` from `seed`.
    ///
    /// # Panics
    /// If `d == 0`, `rho` is not finite and non-negative, or (impossible by
    /// construction) `I − A` is singular.
    pub fn new(d: usize, rho: f64, seed: u64) -> Self {
        assert!(d > 0, "LinearMap needs d > 0");
        assert!(rho.is_finite() && rho >= 0.0, "LinearMap needs rho >= 0");
        let mut rng = SplitMix64::new(seed);
        let hi = rho.min(MAX_EIGENVALUE);
        let eigenvalues: Vec<f64> = (0..d)
            .map(|i| match i {
                0 => -rho,
                1 => hi,
                _ => rng.uniform_in(-rho, hi),
            })
            .collect();
        let a64 = symmetric_with_spectrum(&eigenvalues, REFLECTIONS, &mut rng);
        let b64 = rng.normal_vec(d);

        let mut i_minus_a: Vec<f64> = a64.iter().map(|v| -v).collect();
        for i in 0..d {
            i_minus_a[i * d + i] += 1.0;
        }
        let reference = lu_solve(&i_minus_a, &b64).expect("I - A is regular by construction");
        LinearMap {
            d,
            rho,
            a32: a64.iter().map(|&v| v as f32).collect(),
            b32: b64.iter().map(|&v| v as f32).collect(),
            a64,
            b64,
            eigenvalues,
            reference,
        }
    }

    /// The prescribed spectral radius `ρ`.
    pub fn rho(&self) -> f64 {
        self.rho
    }

    /// The float64 matrix `A`, row-major `d × d`.
    pub fn matrix(&self) -> &[f64] {
        &self.a64
    }

    /// The float64 offset `b`.
    pub fn offset(&self) -> &[f64] {
        &self.b64
    }

    /// The eigenvalues `A` was built with (`λ₀ = −ρ`).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
}

impl FixedPointProblem for LinearMap {
    fn name(&self) -> String {
        format!("linear d={} rho={}", self.d, self.rho)
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn start(&self) -> Vec<f32> {
        vec![0.0; self.d]
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        let d = self.d;
        assert!(z.len() == d && out.len() == d, "LinearMap::f: length mismatch");
        matvec8_f32(&self.a32, z, out);
        for (o, b) in out.iter_mut().zip(&self.b32) {
            *o += b;
        }
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        matvec(&self.a64, z, out);
        for ((o, bi), zi) in out.iter_mut().zip(&self.b64).zip(z) {
            *o += bi - zi;
        }
    }

    fn f64_jacobian(&self, _z: &[f64], jac: &mut [f64]) {
        let d = self.d;
        assert_eq!(jac.len(), d * d, "LinearMap::f64_jacobian: shape mismatch");
        jac.copy_from_slice(&self.a64);
        for i in 0..d {
            jac[i * d + i] -= 1.0;
        }
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}
