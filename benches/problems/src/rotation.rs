//! A tanh layer whose weight matrix has complex eigenvalues: rotations in random planes.

use crate::orthogonal::RandomOrthogonal;
use crate::rng::SplitMix64;
use crate::tanh::{tanh_jacobian_f64, tanh_map_f32, tanh_residual_f64};
use crate::{FixedPointProblem, newton_reference};

/// `f(z) = tanh(A z + c)`, `z ∈ R^d` (`d` even), with `A = Q B Qᵀ`: `Q` a Haar-random
/// orthogonal matrix and `B` block-diagonal with `d/2` blocks `sₖ·R(θₖ)`, `R(θ)` the
/// rotation by `θ`. The eigenvalues of `A` are `sₖ e^{±iθₖ}`, complex pairs, with
/// `θₖ` uniform in `[0.3, 2.8]` and `sₖ` uniform in `[r/2, r]`; `c` is small
/// (`0.1·N(0, I)`), so the layer does not saturate and the Jacobian at the fixed point
/// is close to `A`. For `r > 1` plain iteration does not converge: the map spirals out.
/// A quasi-Newton history must capture rotations that no real diagonal model has.
///
/// * Start point: `z = 0`.
/// * Reference: float64 Newton from 0 (`A − I` has no eigenvalue near 0: every
///   `sₖ e^{iθₖ} − 1` has modulus at least `sin 0.3`).
#[derive(Clone, Debug)]
pub struct RotationMap {
    d: usize,
    r: f64,
    a32: Vec<f32>,
    c32: Vec<f32>,
    a64: Vec<f64>,
    c64: Vec<f64>,
    reference: Vec<f64>,
}

impl RotationMap {
    /// Builds the map of even dimension `d` with largest eigenvalue modulus `r` from
    /// `seed`, and its float64 reference.
    ///
    /// # Panics
    /// If `d` is odd or zero, `r` is not finite and positive, or the float64 Newton
    /// reference fails.
    pub fn new(d: usize, r: f64, seed: u64) -> Self {
        assert!(d > 0 && d.is_multiple_of(2), "RotationMap needs an even d > 0");
        assert!(r.is_finite() && r > 0.0, "RotationMap needs r > 0");
        let mut rng = SplitMix64::new(seed);
        let q = RandomOrthogonal::new(d, &mut rng).matrix();
        // B, block by block.
        let mut b = vec![0.0; d * d];
        for k in 0..d / 2 {
            let (theta, s) = (rng.uniform_in(0.3, 2.8), rng.uniform_in(0.5 * r, r));
            let (i, j) = (2 * k, 2 * k + 1);
            b[i * d + i] = s * theta.cos();
            b[i * d + j] = -s * theta.sin();
            b[j * d + i] = s * theta.sin();
            b[j * d + j] = s * theta.cos();
        }
        // A = Q B Qᵀ.
        let mut qb = vec![0.0; d * d];
        for i in 0..d {
            for k in 0..d {
                let qik = q[i * d + k];
                if qik != 0.0 {
                    for j in 0..d {
                        qb[i * d + j] += qik * b[k * d + j];
                    }
                }
            }
        }
        let mut a64 = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                a64[i * d + j] = (0..d).map(|k| qb[i * d + k] * q[j * d + k]).sum();
            }
        }
        let c64: Vec<f64> = rng.normal_vec(d).into_iter().map(|v| 0.1 * v).collect();
        let mut map = RotationMap {
            d,
            r,
            a32: a64.iter().map(|&v| v as f32).collect(),
            c32: c64.iter().map(|&v| v as f32).collect(),
            a64,
            c64,
            reference: Vec::new(),
        };
        map.reference = newton_reference(&map, &vec![0.0; d]);
        map
    }

    /// The largest eigenvalue modulus `r` of `A`.
    pub fn r(&self) -> f64 {
        self.r
    }
}

impl FixedPointProblem for RotationMap {
    fn name(&self) -> String {
        format!("rotation d={} r={}", self.d, self.r)
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn start(&self) -> Vec<f32> {
        vec![0.0; self.d]
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        tanh_map_f32(&self.a32, &self.c32, z, out);
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        tanh_residual_f64(&self.a64, &self.c64, z, out);
    }

    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        tanh_jacobian_f64(&self.a64, &self.c64, z, jac);
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}
