//! Chandrasekhar's H-equation, discretised by the composite midpoint rule.

use crate::{FixedPointProblem, matvec8_f32, newton_reference};

/// The discretised Chandrasekhar H-equation (Kelley's standard nonlinear test
/// problem) in fixed-point form:
///
/// `f(H)ᵢ = 1 / (1 − (c / 2n) Σⱼ μᵢ Hⱼ / (μᵢ + μⱼ))`, `μᵢ = (i − ½)/n`, `i = 1..n`,
///
/// i.e. `f(H)ᵢ = 1 / (1 − (A H)ᵢ)` with `Aᵢⱼ = c μᵢ / (2n (μᵢ + μⱼ))`.
///
/// For `0 < c < 1` there are two solutions; the physical one (the one of interest) is
/// the one reached by Newton from `H = 1`. It satisfies `Hᵢ > 1` and is increasing in
/// `μᵢ`. Summing the equations (symmetrising `μᵢ/(μᵢ + μⱼ)`) shows that every solution of
/// the *discrete* system satisfies exactly
///
/// `h₀ − 1 = (c/4) h₀²`, `h₀ = (1/n) Σᵢ Hᵢ`,
///
/// so the physical solution has `h₀ = (2/c)(1 − √(1 − c))` and the non-physical one
/// `h₀ = (2/c)(1 + √(1 − c))` (e.g. `c = 0.9`: `h₀ ≈ 1.5195` versus `≈ 2.9250`).
/// As `c → 1` the two merge and the Jacobian at the solution becomes singular, so the
/// problem gets harder (`c = 0.9999` is hard, `c = 1` singular).
///
/// * Start point: `H = 1`.
/// * Reference: float64 Newton from `H = 1`.
/// * f32 map: precomputed row-major f32 `A`, eight-accumulator dots.
#[derive(Clone, Debug)]
pub struct HEquation {
    n: usize,
    c: f64,
    a32: Vec<f32>,
    a64: Vec<f64>,
    reference: Vec<f64>,
}

impl HEquation {
    /// Builds the `n`-point discretisation with parameter `c` and its physical
    /// reference solution.
    ///
    /// # Panics
    /// If `n == 0`, `c` is not in `[0, 1)`, or the float64 Newton solve fails.
    pub fn new(n: usize, c: f64) -> Self {
        assert!(n > 0, "HEquation needs n > 0");
        assert!((0.0..1.0).contains(&c), "HEquation needs 0 <= c < 1");
        let mu: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
        let mut a64 = vec![0.0; n * n];
        for (row, &mi) in a64.chunks_exact_mut(n).zip(&mu) {
            for (aij, &mj) in row.iter_mut().zip(&mu) {
                *aij = c * mi / (2.0 * n as f64 * (mi + mj));
            }
        }
        let mut h =
            HEquation { n, c, a32: a64.iter().map(|&v| v as f32).collect(), a64, reference: Vec::new() };
        h.reference = newton_reference(&h, &vec![1.0; n]);
        h
    }

    /// The parameter `c`.
    pub fn c(&self) -> f64 {
        self.c
    }

    /// The nodes `μᵢ = (i − ½)/n`.
    pub fn nodes(&self) -> Vec<f64> {
        (0..self.n).map(|i| (i as f64 + 0.5) / self.n as f64).collect()
    }

    /// The float64 matrix `A`, row-major `n × n`.
    pub fn matrix(&self) -> &[f64] {
        &self.a64
    }

    /// `h₀ = (2/c)(1 − √(1 − c))`: the mean of the physical discrete solution.
    pub fn physical_mean(&self) -> f64 {
        if self.c == 0.0 { 1.0 } else { 2.0 / self.c * (1.0 - (1.0 - self.c).sqrt()) }
    }

    /// `f(H)` in float64.
    fn map64(&self, z: &[f64], out: &mut [f64]) {
        let n = self.n;
        for (o, row) in out.iter_mut().zip(self.a64.chunks_exact(n)) {
            *o = 1.0 / (1.0 - crate::linalg::dot(row, z));
        }
    }
}

impl FixedPointProblem for HEquation {
    fn name(&self) -> String {
        format!("h-equation n={} c={}", self.n, self.c)
    }

    fn dim(&self) -> usize {
        self.n
    }

    fn start(&self) -> Vec<f32> {
        vec![1.0; self.n]
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        let n = self.n;
        assert!(z.len() == n && out.len() == n, "HEquation::f: length mismatch");
        matvec8_f32(&self.a32, z, out);
        for o in out.iter_mut() {
            *o = 1.0 / (1.0 - *o);
        }
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        self.map64(z, out);
        for (o, zi) in out.iter_mut().zip(z) {
            *o -= zi;
        }
    }

    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        // ∂fᵢ/∂Hⱼ = fᵢ² Aᵢⱼ.
        let n = self.n;
        assert_eq!(jac.len(), n * n, "HEquation::f64_jacobian: shape mismatch");
        let mut f = vec![0.0; n];
        self.map64(z, &mut f);
        for (i, (row, a)) in jac.chunks_exact_mut(n).zip(self.a64.chunks_exact(n)).enumerate() {
            let s = f[i] * f[i];
            for (r, aij) in row.iter_mut().zip(a) {
                *r = s * aij;
            }
            row[i] -= 1.0;
        }
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}
