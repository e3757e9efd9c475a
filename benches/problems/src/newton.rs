//! A robust float64 Newton solver for `g(z) = 0` with a dense Jacobian.
//!
//! Used to compute reference solutions independently of the f32 solvers under test.
//! Each iteration factorises the Jacobian ([`Lu`]) and takes the Newton step with a
//! backtracking (Armijo) line search on `‖g‖₂`. Once a full step has been accepted,
//! the last factorisation is reused for "chord" steps as long as each one reduces
//! `‖g‖₂` at least fourfold; this saves most of the O(n³) factorisations near the
//! root without affecting robustness far from it.

use crate::linalg::{Lu, norm2};

/// Options for [`newton_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewtonOptions {
    /// Converged once `‖g(z)‖₂ ≤ rtol · max(1, ‖z‖₂)`.
    pub rtol: f64,
    /// Maximum number of accepted steps (Newton and chord steps together).
    pub max_iter: usize,
    /// Smallest step length tried by the line search before giving up.
    pub min_step: f64,
}

impl Default for NewtonOptions {
    /// `rtol = 1e-12`, `max_iter = 100`, `min_step = 2⁻³⁰`.
    fn default() -> Self {
        Self { rtol: 1e-12, max_iter: 100, min_step: 1.0 / (1u64 << 30) as f64 }
    }
}

/// A converged Newton solve, with statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct NewtonSolution {
    /// The root `z`.
    pub root: Vec<f64>,
    /// `‖g(root)‖₂`.
    pub residual_norm: f64,
    /// Accepted steps (Newton plus chord).
    pub iterations: usize,
    /// Jacobian evaluations and LU factorisations.
    pub factorizations: usize,
}

/// Solves `g(z) = 0` from `z0` with the default [`NewtonOptions`]
/// (`‖g‖₂ ≤ 1e-12 · max(1, ‖z‖₂)` within 100 steps).
///
/// `residual(z, out)` writes `g(z)`; `jacobian(z, jac)` writes the dense row-major
/// `n × n` Jacobian `∂gᵢ/∂zⱼ` into `jac[i * n + j]` (`n = z0.len()`).
///
/// Returns `None` if the iteration does not converge: a singular Jacobian, a line
/// search that cannot decrease `‖g‖₂`, non-finite values, or too many steps.
pub fn newton<R, J>(residual: R, jacobian: J, z0: &[f64]) -> Option<Vec<f64>>
where
    R: FnMut(&[f64], &mut [f64]),
    J: FnMut(&[f64], &mut [f64]),
{
    newton_with(residual, jacobian, z0, &NewtonOptions::default()).map(|s| s.root)
}

/// [`newton`] with explicit options, returning statistics as well as the root.
pub fn newton_with<R, J>(
    mut residual: R,
    mut jacobian: J,
    z0: &[f64],
    opts: &NewtonOptions,
) -> Option<NewtonSolution>
where
    R: FnMut(&[f64], &mut [f64]),
    J: FnMut(&[f64], &mut [f64]),
{
    let n = z0.len();
    let mut z = z0.to_vec();
    let mut g = vec![0.0; n];
    residual(&z, &mut g);
    let mut g_norm = norm2(&g);
    if !g_norm.is_finite() {
        return None;
    }
    let mut jac = vec![0.0; n * n];
    let mut z_try = vec![0.0; n];
    let mut g_try = vec![0.0; n];
    // Last factorisation, and whether it may be used for chord steps (only after a
    // full Newton step was accepted, i.e. in the region of fast convergence).
    let mut last_lu: Option<Lu> = None;
    let mut chord_ok = false;
    let mut iterations = 0;
    let mut factorizations = 0;

    loop {
        if g_norm <= opts.rtol * norm2(&z).max(1.0) {
            // A few last O(n²) chord steps with the latest factorisation take the
            // root to rounding level; each is kept only if it halves ‖g‖₂.
            if let Some(lu) = &last_lu {
                for _ in 0..8 {
                    let dz = lu.solve(&g);
                    for ((t, zi), di) in z_try.iter_mut().zip(&z).zip(&dz) {
                        *t = zi - di;
                    }
                    residual(&z_try, &mut g_try);
                    let n_try = norm2(&g_try);
                    if n_try.is_nan() || n_try >= 0.5 * g_norm {
                        break;
                    }
                    std::mem::swap(&mut z, &mut z_try);
                    std::mem::swap(&mut g, &mut g_try);
                    g_norm = n_try;
                }
            }
            return Some(NewtonSolution { root: z, residual_norm: g_norm, iterations, factorizations });
        }
        if iterations >= opts.max_iter {
            return None;
        }
        iterations += 1;

        // Chord step with the last factorisation, if it is still good enough.
        if let (Some(lu), true) = (&last_lu, chord_ok) {
            let dz = lu.solve(&g);
            for ((t, zi), di) in z_try.iter_mut().zip(&z).zip(&dz) {
                *t = zi - di;
            }
            residual(&z_try, &mut g_try);
            let n_try = norm2(&g_try);
            if n_try.is_finite() && n_try <= 0.25 * g_norm {
                std::mem::swap(&mut z, &mut z_try);
                std::mem::swap(&mut g, &mut g_try);
                g_norm = n_try;
                continue;
            }
        }

        // Full Newton step with backtracking on ‖g‖₂.
        jacobian(&z, &mut jac);
        factorizations += 1;
        let lu = Lu::factor(jac.clone(), n)?;
        let dz = lu.solve(&g);
        let mut t = 1.0;
        loop {
            for ((s, zi), di) in z_try.iter_mut().zip(&z).zip(&dz) {
                *s = zi - t * di;
            }
            residual(&z_try, &mut g_try);
            let n_try = norm2(&g_try);
            if n_try.is_finite() && n_try <= (1.0 - 1e-4 * t) * g_norm {
                std::mem::swap(&mut z, &mut z_try);
                std::mem::swap(&mut g, &mut g_try);
                g_norm = n_try;
                break;
            }
            t *= 0.5;
            if t < opts.min_step {
                return None;
            }
        }
        chord_ok = t == 1.0;
        last_lu = Some(lu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_scalar_cubic() {
        // t³ + t − 1 = 0 has one real root.
        let root = newton(
            |z, g| g[0] = z[0] * z[0] * z[0] + z[0] - 1.0,
            |z, j| j[0] = 3.0 * z[0] * z[0] + 1.0,
            &[0.0],
        )
        .unwrap();
        assert!((root[0] - 0.682_327_803_828_019_3).abs() < 4e-16);
    }

    #[test]
    fn backtracking_handles_atan() {
        // Plain Newton on atan diverges from |z| > 1.39; the line search fixes it.
        let root =
            newton(|z, g| g[0] = z[0].atan(), |z, j| j[0] = 1.0 / (1.0 + z[0] * z[0]), &[10.0]).unwrap();
        assert!(root[0].abs() < 1e-12);
    }

    #[test]
    fn reports_failure() {
        // z² + 1 has no real root.
        assert!(newton(|z, g| g[0] = z[0] * z[0] + 1.0, |z, j| j[0] = 2.0 * z[0], &[1.0]).is_none());
    }
}
