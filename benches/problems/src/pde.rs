//! Kelley's convection–diffusion problem: a nonlinear elliptic PDE on the unit square,
//! in the preconditioned fixed-point form on which plain iteration diverges.

use solver_core::Real;

use crate::FixedPointProblem;

/// The discretised convection–diffusion equation
///
/// ```text
///     −∇²u + C u (∂u/∂x + ∂u/∂y) = f   on (0, 1)²,   u = 0 on the boundary,
/// ```
///
/// (C. T. Kelley's test problem for Anderson acceleration and Newton–Krylov methods),
/// on the `n × n` interior points of a uniform grid, `h = 1/(n + 1)`: `L` the 5-point
/// Laplacian `(4uᵢⱼ − u_{i±1,j} − u_{i,j±1})/h²`, `D` the central differences
/// `(u_{i+1,j} − u_{i−1,j} + u_{i,j+1} − u_{i,j−1})/(2h)` (zero outside the square).
/// The fixed-point form is the Laplacian-preconditioned map
///
/// ```text
///     f(u) = L⁻¹ (f − C u ⊙ D u),
/// ```
///
/// whose fixed points solve `L u + C u ⊙ D u = f`. `L⁻¹` is applied exactly through the
/// discrete sine transform (`L = S (Λ ⊗ 1 + 1 ⊗ Λ) S / h²` with `S` the orthogonal,
/// symmetric sine matrix): `L⁻¹F = S ((S F S) ⊘ (λᵢ + λⱼ)) S`, four `n × n` products.
///
/// * Right-hand side: `f = L u* + C u* ⊙ D u*` on the grid, for the grid values of
///   `u*(x, y) = 10 x y (1 − x)(1 − y) e^{x^4.5}` (Kelley's choice), so that `u*` is the
///   discrete solution exactly.
/// * Reference: `u*` itself (its residual in float64 is at rounding level, tested).
/// * Start point: `u = 0`.
/// * With `C = 20` and `n = 31` (`d = 961`, Kelley's size) plain iteration from 0
///   diverges (overflow after about 14 steps), while quasi-Newton methods converge.
/// * f32 map: the same operations with `f32` copies of `S`, `Λ` and `f`.
#[derive(Clone, Debug)]
pub struct ConvectionDiffusion {
    n: usize,
    c: f64,
    s64: Vec<f64>,
    s32: Vec<f32>,
    lam64: Vec<f64>,
    lam32: Vec<f32>,
    rhs64: Vec<f64>,
    rhs32: Vec<f32>,
    reference: Vec<f64>,
}

/// `out = a b` for row-major `n × n` matrices.
fn matmul<T: Real>(a: &[T], b: &[T], out: &mut [T], n: usize) {
    for (orow, arow) in out.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        orow.iter_mut().for_each(|o| *o = T::ZERO);
        for (&aik, brow) in arow.iter().zip(b.chunks_exact(n)) {
            for (o, &bkj) in orow.iter_mut().zip(brow) {
                *o += aik * bkj;
            }
        }
    }
}

/// `F ← L⁻¹F` through the sine transform (`lam[i·n + j] = (λᵢ + λⱼ)`, with `1/h²` in
/// it). `tmp` is scratch of the same size.
fn solve_laplacian<T: Real>(s: &[T], lam: &[T], f: &mut [T], tmp: &mut [T], n: usize) {
    matmul(s, f, tmp, n);
    matmul(tmp, s, f, n);
    for (x, &l) in f.iter_mut().zip(lam) {
        *x = *x / l;
    }
    matmul(s, f, tmp, n);
    matmul(tmp, s, f, n);
}

/// `D u`: the sum of the central differences in x (first index) and y (second index).
fn central_sum<T: Real>(u: &[T], out: &mut [T], n: usize, inv_2h: T) {
    let at = |i: usize, j: usize| u[i * n + j];
    for i in 0..n {
        for j in 0..n {
            let xp = if i + 1 < n { at(i + 1, j) } else { T::ZERO };
            let xm = if i > 0 { at(i - 1, j) } else { T::ZERO };
            let yp = if j + 1 < n { at(i, j + 1) } else { T::ZERO };
            let ym = if j > 0 { at(i, j - 1) } else { T::ZERO };
            out[i * n + j] = ((xp - xm) + (yp - ym)) * inv_2h;
        }
    }
}

impl ConvectionDiffusion {
    /// The problem on `n × n` interior points with convection coefficient `c`.
    ///
    /// # Panics
    ///
    /// If `n == 0`.
    pub fn new(n: usize, c: f64) -> Self {
        assert!(n > 0, "ConvectionDiffusion needs n > 0");
        let h = 1.0 / (n + 1) as f64;
        let norm = (2.0 / (n + 1) as f64).sqrt();
        let arg = core::f64::consts::PI / (n + 1) as f64;
        let s64: Vec<f64> =
            (0..n * n).map(|k| norm * (((k / n + 1) * (k % n + 1)) as f64 * arg).sin()).collect();
        let lam1: Vec<f64> = (1..=n).map(|j| (2.0 - 2.0 * (j as f64 * arg).cos()) / (h * h)).collect();
        let lam64: Vec<f64> = (0..n * n).map(|k| lam1[k / n] + lam1[k % n]).collect();
        let reference: Vec<f64> = (0..n * n)
            .map(|k| {
                let (x, y) = ((k / n + 1) as f64 * h, (k % n + 1) as f64 * h);
                10.0 * x * y * (1.0 - x) * (1.0 - y) * x.powf(4.5).exp()
            })
            .collect();
        // f = L u* + C u* ⊙ D u*.
        let mut du = vec![0.0; n * n];
        central_sum(&reference, &mut du, n, 0.5 / h);
        let at = |i: isize, j: isize| {
            if (0..n as isize).contains(&i) && (0..n as isize).contains(&j) {
                reference[i as usize * n + j as usize]
            } else {
                0.0
            }
        };
        let rhs64: Vec<f64> = (0..n * n)
            .map(|k| {
                let (i, j) = ((k / n) as isize, (k % n) as isize);
                let lap =
                    (4.0 * at(i, j) - at(i + 1, j) - at(i - 1, j) - at(i, j + 1) - at(i, j - 1)) / (h * h);
                lap + c * reference[k] * du[k]
            })
            .collect();
        let to32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        ConvectionDiffusion {
            n,
            c,
            s32: to32(&s64),
            lam32: to32(&lam64),
            rhs32: to32(&rhs64),
            s64,
            lam64,
            rhs64,
            reference,
        }
    }

    /// The convection coefficient `C`.
    pub fn c(&self) -> f64 {
        self.c
    }

    /// `f(u)` in either type.
    fn map<T: Real>(&self, s: &[T], lam: &[T], rhs: &[T], u: &[T], out: &mut [T]) {
        let n = self.n;
        let mut du = vec![T::ZERO; n * n];
        central_sum(u, &mut du, n, T::from_f64(0.5 * (n + 1) as f64));
        let c = T::from_f64(self.c);
        for (((o, &r), &ui), &di) in out.iter_mut().zip(rhs).zip(u).zip(&du) {
            *o = r - c * ui * di;
        }
        solve_laplacian(s, lam, out, &mut du, n);
    }

    /// `f(u)` in float64.
    fn map64(&self, u: &[f64], out: &mut [f64]) {
        self.map(&self.s64, &self.lam64, &self.rhs64, u, out);
    }
}

impl FixedPointProblem for ConvectionDiffusion {
    fn name(&self) -> String {
        format!("convection-diffusion n={} C={}", self.n, self.c)
    }

    fn dim(&self) -> usize {
        self.n * self.n
    }

    fn start(&self) -> Vec<f32> {
        vec![0.0; self.n * self.n]
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        assert!(z.len() == self.dim() && out.len() == self.dim(), "ConvectionDiffusion::f: length mismatch");
        self.map(&self.s32, &self.lam32, &self.rhs32, z, out);
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        self.map64(z, out);
        for (o, zi) in out.iter_mut().zip(z) {
            *o -= zi;
        }
    }

    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        // ∂f/∂u = −C L⁻¹ (diag(D u) + diag(u) D); column k is −C L⁻¹ applied to
        // (D u)ₖ eₖ + u ⊙ D eₖ. Then ∂g/∂u = ∂f/∂u − I.
        let (n, d) = (self.n, self.dim());
        assert_eq!(jac.len(), d * d, "ConvectionDiffusion::f64_jacobian: shape mismatch");
        let inv_2h = 0.5 * (n + 1) as f64;
        let mut du = vec![0.0; d];
        central_sum(z, &mut du, n, inv_2h);
        let (mut e, mut de, mut col, mut tmp) = (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        for k in 0..d {
            e[k] = 1.0;
            central_sum(&e, &mut de, n, inv_2h);
            e[k] = 0.0;
            for ((c, &zi), &dei) in col.iter_mut().zip(z).zip(&de) {
                *c = -self.c * zi * dei;
            }
            col[k] -= self.c * du[k];
            solve_laplacian(&self.s64, &self.lam64, &mut col, &mut tmp, n);
            for (i, &v) in col.iter().enumerate() {
                jac[i * d + k] = v - if i == k { 1.0 } else { 0.0 };
            }
        }
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `u*` solves the discrete equations: its float64 residual is at rounding level.
    #[test]
    fn the_reference_is_the_discrete_solution() {
        let p = ConvectionDiffusion::new(31, 20.0);
        let mut g = vec![0.0; p.dim()];
        p.f64_residual(p.reference(), &mut g);
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!(norm(&g) <= 1e-12 * norm(p.reference()), "‖g(u*)‖ = {:e}", norm(&g));
    }

    /// The sine transform inverts the 5-point Laplacian: L (L⁻¹ F) = F.
    #[test]
    fn the_sine_transform_inverts_the_laplacian() {
        let n = 7;
        let p = ConvectionDiffusion::new(n, 0.0);
        let f: Vec<f64> = (0..n * n).map(|k| ((k * 37 % 11) as f64) - 5.0).collect();
        let (mut u, mut tmp) = (f.clone(), vec![0.0; n * n]);
        solve_laplacian(&p.s64, &p.lam64, &mut u, &mut tmp, n);
        let h2 = 1.0 / ((n + 1) * (n + 1)) as f64;
        let at = |i: isize, j: isize| {
            if (0..n as isize).contains(&i) && (0..n as isize).contains(&j) {
                u[i as usize * n + j as usize]
            } else {
                0.0
            }
        };
        for (k, &fk) in f.iter().enumerate() {
            let (i, j) = ((k / n) as isize, (k % n) as isize);
            let lu = (4.0 * at(i, j) - at(i + 1, j) - at(i - 1, j) - at(i, j + 1) - at(i, j - 1)) / h2;
            assert!((lu - fk).abs() <= 1e-10 * 5.0, "row {k}: {lu} vs {fk}");
        }
    }

    /// The analytic Jacobian agrees with central differences of the residual, and the
    /// f32 map with the f64 one.
    #[test]
    fn jacobian_and_f32_map_agree_with_the_f64_map() {
        let p = ConvectionDiffusion::new(6, 20.0);
        let d = p.dim();
        let z: Vec<f64> =
            p.reference().iter().enumerate().map(|(k, r)| 0.8 * r + 0.01 * (k % 5) as f64).collect();
        let mut jac = vec![0.0; d * d];
        p.f64_jacobian(&z, &mut jac);
        let step = 1e-6;
        for k in 0..d {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[k] += step;
            zm[k] -= step;
            let (mut gp, mut gm) = (vec![0.0; d], vec![0.0; d]);
            p.f64_residual(&zp, &mut gp);
            p.f64_residual(&zm, &mut gm);
            for i in 0..d {
                let fd = (gp[i] - gm[i]) / (2.0 * step);
                assert!(
                    (fd - jac[i * d + k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                    "J[{i}][{k}] = {} vs {fd}",
                    jac[i * d + k]
                );
            }
        }
        let z32: Vec<f32> = z.iter().map(|&x| x as f32).collect();
        let (mut f32s, mut f64s) = (vec![0.0f32; d], vec![0.0; d]);
        p.f(&z32, &mut f32s);
        p.map64(&z, &mut f64s);
        for (a, b) in f32s.iter().zip(&f64s) {
            assert!((f64::from(*a) - b).abs() <= 1e-5 * (1.0 + b.abs()));
        }
    }

    /// Plain iteration from the start point diverges at Kelley's size (what makes the
    /// problem a test of the quasi-Newton methods).
    #[test]
    fn plain_iteration_diverges() {
        let p = ConvectionDiffusion::new(31, 20.0);
        let mut u = vec![0.0; p.dim()];
        let mut next = vec![0.0; p.dim()];
        let mut diverged = false;
        for _ in 0..40 {
            p.map64(&u, &mut next);
            if !next.iter().all(|x| x.is_finite() && x.abs() < 1e6) {
                diverged = true;
                break;
            }
            core::mem::swap(&mut u, &mut next);
        }
        assert!(diverged, "plain iteration stayed bounded for 40 steps");
    }
}
