//! Small fixed-size classic problems, as plain functions and constants.
//!
//! The f32 functions have the signature a solver for fixed-size arrays would call;
//! the `_f64` twins and Jacobians serve reference computations.

use std::f64::consts::PI;

/// Start point of the KINSOL fixed-point example: `(x, y, z) = (0.1, 0.1, −0.1)`.
pub const KINSOL_START: [f32; 3] = [0.1, 0.1, -0.1];

/// The fixed point of [`kinsol_fixed_point`]: `(x, y, z) = (0.5, 1, −π/6)`, exactly.
pub const KINSOL_SOLUTION: [f64; 3] = [0.5, 1.0, -PI / 6.0];

/// The fixed-point form of the analytic three-variable nonlinear system used by the
/// SUNDIALS KINSOL fixed-point example (`kinAnalytic_fp`), with `(x, y, z) = z`:
///
/// `g(x, y, z) = ( cos((y − 1) z)/3 + 1/6,  √(x² + sin z + 1.06)/9 + 0.9,
///                 −e^{−x (y − 1)}/20 − (10π − 3)/60 )`.
///
/// Fixed point [`KINSOL_SOLUTION`]; start [`KINSOL_START`].
pub fn kinsol_fixed_point(z: &[f32; 3], out: &mut [f32; 3]) {
    let [x, y, w] = *z;
    let pi = std::f32::consts::PI;
    out[0] = ((y - 1.0) * w).cos() / 3.0 + 1.0 / 6.0;
    out[1] = (x * x + w.sin() + 1.06).sqrt() / 9.0 + 0.9;
    out[2] = -(-x * (y - 1.0)).exp() / 20.0 - (10.0 * pi - 3.0) / 60.0;
}

/// [`kinsol_fixed_point`] in float64.
pub fn kinsol_fixed_point_f64(z: &[f64; 3], out: &mut [f64; 3]) {
    let [x, y, w] = *z;
    out[0] = ((y - 1.0) * w).cos() / 3.0 + 1.0 / 6.0;
    out[1] = (x * x + w.sin() + 1.06).sqrt() / 9.0 + 0.9;
    out[2] = -(-x * (y - 1.0)).exp() / 20.0 - (10.0 * PI - 3.0) / 60.0;
}

/// Row-major Jacobian `∂gᵢ/∂zⱼ` of [`kinsol_fixed_point_f64`] (of the map, not of
/// `g(z) − z`).
pub fn kinsol_jacobian_f64(z: &[f64; 3]) -> [f64; 9] {
    let [x, y, w] = *z;
    let s = ((y - 1.0) * w).sin() / 3.0;
    let r = (x * x + w.sin() + 1.06).sqrt();
    let e = (-x * (y - 1.0)).exp() / 20.0;
    [0.0, -w * s, -(y - 1.0) * s, x / (9.0 * r), 0.0, w.cos() / (18.0 * r), (y - 1.0) * e, x * e, 0.0]
}

/// Start point of the SciPy `root` example: `(0, 0)`.
pub const SCIPY_START: [f32; 2] = [0.0, 0.0];

/// The root of [`scipy_root_system`]: `x₀ = (1 + t)/2`, `x₁ = (1 − t)/2` with `t` the
/// real root of `t³ + t − 1 = 0` (adding the equations gives `x₀ + x₁ = 1`).
/// Verified by float64 Newton in the tests.
pub const SCIPY_SOLUTION: [f64; 2] = [0.841_163_901_914_009_7, 0.158_836_098_085_990_33];

/// The residual of the example in SciPy's `scipy.optimize.root` documentation,
///
/// `F(x) = [x₀ + ½ (x₀ − x₁)³ − 1,  ½ (x₁ − x₀)³ + x₁]`.
///
/// This is a **root-finding** residual (`F(x) = 0`), not a fixed-point map; a
/// fixed-point solver can be applied to e.g. `x ↦ x − F(x)`.
/// Root [`SCIPY_SOLUTION`]; start [`SCIPY_START`].
pub fn scipy_root_system(z: &[f32; 2], out: &mut [f32; 2]) {
    let [a, b] = *z;
    out[0] = a + 0.5 * (a - b) * (a - b) * (a - b) - 1.0;
    out[1] = 0.5 * (b - a) * (b - a) * (b - a) + b;
}

/// [`scipy_root_system`] in float64.
pub fn scipy_root_system_f64(z: &[f64; 2], out: &mut [f64; 2]) {
    let [a, b] = *z;
    out[0] = a + 0.5 * (a - b).powi(3) - 1.0;
    out[1] = 0.5 * (b - a).powi(3) + b;
}

/// Row-major Jacobian of [`scipy_root_system_f64`].
pub fn scipy_jacobian_f64(z: &[f64; 2]) -> [f64; 4] {
    let q = 1.5 * (z[0] - z[1]).powi(2);
    [1.0 + q, -q, -q, 1.0 + q]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::newton::newton;

    #[test]
    fn kinsol_solution_is_fixed_point() {
        let mut g = [0.0; 3];
        kinsol_fixed_point_f64(&KINSOL_SOLUTION, &mut g);
        for k in 0..3 {
            assert!((g[k] - KINSOL_SOLUTION[k]).abs() < 1e-15, "{k}: {g:?}");
        }
        let mut g32 = [0.0f32; 3];
        let s32 = KINSOL_SOLUTION.map(|v| v as f32);
        kinsol_fixed_point(&s32, &mut g32);
        for k in 0..3 {
            assert!((g32[k] - s32[k]).abs() < 1e-6, "{k}: {g32:?}");
        }
    }

    #[test]
    fn kinsol_newton_from_start_finds_solution() {
        let z0 = KINSOL_START.map(f64::from);
        let root = newton(
            |z, out| {
                let zz = [z[0], z[1], z[2]];
                let mut g = [0.0; 3];
                kinsol_fixed_point_f64(&zz, &mut g);
                for k in 0..3 {
                    out[k] = g[k] - z[k];
                }
            },
            |z, jac| {
                let j = kinsol_jacobian_f64(&[z[0], z[1], z[2]]);
                jac.copy_from_slice(&j);
                for k in 0..3 {
                    jac[4 * k] -= 1.0;
                }
            },
            &z0,
        )
        .unwrap();
        for k in 0..3 {
            assert!((root[k] - KINSOL_SOLUTION[k]).abs() < 1e-12, "{root:?}");
        }
    }

    #[test]
    fn kinsol_jacobian_matches_differences() {
        let z = [0.3, 0.7, -0.4];
        let j = kinsol_jacobian_f64(&z);
        let h = 1e-6;
        for col in 0..3 {
            let (mut zp, mut zm) = (z, z);
            zp[col] += h;
            zm[col] -= h;
            let (mut gp, mut gm) = ([0.0; 3], [0.0; 3]);
            kinsol_fixed_point_f64(&zp, &mut gp);
            kinsol_fixed_point_f64(&zm, &mut gm);
            for row in 0..3 {
                let fd = (gp[row] - gm[row]) / (2.0 * h);
                assert!((fd - j[row * 3 + col]).abs() < 1e-8, "({row},{col})");
            }
        }
    }

    #[test]
    fn scipy_solution_verified_by_newton() {
        let z0 = SCIPY_START.map(f64::from);
        let root = newton(
            |z, out| {
                let mut f = [0.0; 2];
                scipy_root_system_f64(&[z[0], z[1]], &mut f);
                out.copy_from_slice(&f);
            },
            |z, jac| jac.copy_from_slice(&scipy_jacobian_f64(&[z[0], z[1]])),
            &z0,
        )
        .unwrap();
        assert!((root[0] - 0.84116).abs() < 1e-5 && (root[1] - 0.15884).abs() < 1e-5);
        for k in 0..2 {
            assert!((root[k] - SCIPY_SOLUTION[k]).abs() < 1e-15, "{root:?}");
        }
        let mut f = [0.0; 2];
        scipy_root_system_f64(&SCIPY_SOLUTION, &mut f);
        assert!(f[0].abs() < 1e-15 && f[1].abs() < 1e-15, "{f:?}");
        let mut f32v = [0.0f32; 2];
        scipy_root_system(&SCIPY_SOLUTION.map(|v| v as f32), &mut f32v);
        assert!(f32v[0].abs() < 1e-6 && f32v[1].abs() < 1e-6);
    }
}
