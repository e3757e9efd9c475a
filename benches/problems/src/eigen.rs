//! Eigenvalues of dense symmetric float64 matrices: the extreme ones by Lanczos
//! (O(k·n²)), all of them by cyclic Jacobi (O(n³) per sweep, for checks on small
//! matrices).
//!
//! Matrices are square and row-major, as in [`crate::linalg`].

use crate::linalg::{dot, matvec, norm2};
use crate::rng::SplitMix64;

/// Options for [`lanczos_extreme`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LanczosOptions {
    /// Fewest Lanczos steps before convergence is tested (capped at `n`).
    pub min_steps: usize,
    /// Most Lanczos steps (capped at `n`, where the Krylov space is the whole space).
    pub max_steps: usize,
    /// Both extreme Ritz values count as converged once each changed by at most
    /// `tol · max(|θ_min|, |θ_max|)` over each of the last [`stable_steps`] steps.
    ///
    /// [`stable_steps`]: LanczosOptions::stable_steps
    pub tol: f64,
    /// Number of consecutive quiet steps required (see [`LanczosOptions::tol`]).
    pub stable_steps: usize,
}

impl Default for LanczosOptions {
    /// `min_steps = 20`, `max_steps = 400`, `tol = 1e-14`, `stable_steps = 3`.
    fn default() -> Self {
        Self { min_steps: 20, max_steps: 400, tol: 1e-14, stable_steps: 3 }
    }
}

/// The result of [`lanczos_extreme`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExtremeEigenvalues {
    /// The smallest eigenvalue (the smallest Ritz value).
    pub min: f64,
    /// The largest eigenvalue (the largest Ritz value).
    pub max: f64,
    /// Lanczos steps taken (the dimension of the final tridiagonal matrix).
    pub steps: usize,
    /// Whether the stopping test of [`LanczosOptions`] was met, or the Krylov space
    /// reached the whole space (then the Ritz values are the eigenvalues).
    pub converged: bool,
}

impl ExtremeEigenvalues {
    /// The spectral radius `max(|λ_min|, |λ_max|)`.
    pub fn spectral_radius(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }
}

/// The extreme eigenvalues of the symmetric row-major `n × n` matrix `a`, by the
/// Lanczos method with full reorthogonalisation.
///
/// The start vector is a random unit vector from `rng`. Each step costs one
/// matrix–vector product (O(n²)) plus the reorthogonalisation of the new vector
/// against all previous ones, twice (classical Gram–Schmidt, O(k·n)). The extreme
/// eigenvalues of the Lanczos tridiagonal matrix (the Ritz values) are found by
/// Sturm-sequence bisection to full precision after every step; the iteration stops
/// per [`LanczosOptions`]. Should the Krylov space become invariant before it spans
/// `R^n` (a breakdown; only by accident for a random start), it is continued with a
/// fresh random vector orthogonal to it, so the Ritz values still approach the
/// extremes of the whole spectrum.
///
/// Only the upper triangle is assumed equal to the lower one; `a` is not checked for
/// symmetry.
///
/// # Panics
/// If `n == 0` or `a.len() != n * n`.
pub fn lanczos_extreme(
    a: &[f64],
    n: usize,
    rng: &mut SplitMix64,
    opts: &LanczosOptions,
) -> ExtremeEigenvalues {
    assert!(n > 0, "lanczos_extreme needs n > 0");
    assert_eq!(a.len(), n * n, "lanczos_extreme: shape mismatch");
    let max_steps = opts.max_steps.clamp(1, n);
    let min_steps = opts.min_steps.clamp(1, max_steps);
    // A Frobenius-norm scale for the breakdown test.
    let scale = norm2(a).max(f64::MIN_POSITIVE);

    let mut basis: Vec<f64> = Vec::with_capacity(max_steps * n);
    basis.extend(rng.unit_vector(n));
    let mut alpha: Vec<f64> = Vec::with_capacity(max_steps);
    let mut beta: Vec<f64> = Vec::with_capacity(max_steps);
    let mut w = vec![0.0; n];
    let mut prev = (f64::NAN, f64::NAN);
    let mut quiet = 0;
    loop {
        let j = alpha.len();
        let q = &basis[j * n..(j + 1) * n];
        matvec(a, q, &mut w);
        alpha.push(dot(q, &w));
        let (lo, hi) = tridiagonal_extremes(&alpha, &beta);
        let steps = j + 1;
        if steps == n {
            return ExtremeEigenvalues { min: lo, max: hi, steps, converged: true };
        }
        let size = lo.abs().max(hi.abs());
        if (lo - prev.0).abs() <= opts.tol * size && (hi - prev.1).abs() <= opts.tol * size {
            quiet += 1;
        } else {
            quiet = 0;
        }
        prev = (lo, hi);
        if steps >= min_steps && quiet >= opts.stable_steps {
            return ExtremeEigenvalues { min: lo, max: hi, steps, converged: true };
        }
        if steps == max_steps {
            return ExtremeEigenvalues { min: lo, max: hi, steps, converged: false };
        }
        // Full reorthogonalisation (this also removes the α qⱼ and β qⱼ₋₁ terms of
        // the three-term recurrence).
        orthogonalise(&mut w, &basis, n);
        let mut b = norm2(&w);
        if b <= 1e-10 * scale {
            // Invariant subspace: continue in its orthogonal complement.
            b = 0.0;
            loop {
                w = rng.unit_vector(n);
                orthogonalise(&mut w, &basis, n);
                if norm2(&w) > 1e-3 {
                    break;
                }
            }
            let nw = norm2(&w);
            w.iter_mut().for_each(|x| *x /= nw);
        } else {
            w.iter_mut().for_each(|x| *x /= b);
        }
        beta.push(b);
        basis.extend_from_slice(&w);
    }
}

/// Removes from `w` its components along the orthonormal rows of `basis` (width `n`)
/// by two passes of classical Gram–Schmidt.
fn orthogonalise(w: &mut [f64], basis: &[f64], n: usize) {
    for _ in 0..2 {
        let coeffs: Vec<f64> = basis.chunks_exact(n).map(|q| dot(q, w)).collect();
        for (q, c) in basis.chunks_exact(n).zip(coeffs) {
            for (wi, qi) in w.iter_mut().zip(q) {
                *wi -= c * qi;
            }
        }
    }
}

/// The number of eigenvalues smaller than `x` of the symmetric tridiagonal matrix
/// with diagonal `a` and off-diagonal `b` (Sturm sequence, i.e. the number of
/// negative pivots of the LDLᵀ factorisation of `T − x I`).
fn sturm_count(a: &[f64], b: &[f64], x: f64, pivmin: f64) -> usize {
    let mut count = 0;
    let mut q = 1.0f64;
    for (i, &ai) in a.iter().enumerate() {
        let off = if i == 0 { 0.0 } else { b[i - 1] * b[i - 1] / q };
        q = ai - x - off;
        if q.abs() < pivmin {
            q = -pivmin;
        }
        if q < 0.0 {
            count += 1;
        }
    }
    count
}

/// The smallest and largest eigenvalue of the symmetric tridiagonal matrix with
/// diagonal `a` and off-diagonal `b` (`b.len() == a.len() − 1`), by bisection on the
/// Sturm count, to within a few units in the last place.
///
/// # Panics
/// If `a` is empty or `b.len() + 1 != a.len()`.
pub fn tridiagonal_extremes(a: &[f64], b: &[f64]) -> (f64, f64) {
    let m = a.len();
    assert!(m > 0, "tridiagonal_extremes: empty matrix");
    assert_eq!(b.len() + 1, m, "tridiagonal_extremes: shape mismatch");
    // Gershgorin bounds.
    let mut glo = f64::INFINITY;
    let mut ghi = f64::NEG_INFINITY;
    for i in 0..m {
        let r = if i > 0 { b[i - 1].abs() } else { 0.0 } + if i + 1 < m { b[i].abs() } else { 0.0 };
        glo = glo.min(a[i] - r);
        ghi = ghi.max(a[i] + r);
    }
    let norm = glo.abs().max(ghi.abs());
    // Widen a little so that the bounds are strict despite rounding.
    let pad = 4.0 * f64::EPSILON * norm * m as f64 + f64::MIN_POSITIVE;
    glo -= pad;
    ghi += pad;
    let bmax2 = b.iter().fold(0.0f64, |s, v| s.max(v * v));
    let pivmin = f64::MIN_POSITIVE * bmax2.max(1.0);

    // Largest: the smallest x with all m eigenvalues below it.
    let (mut lo, mut hi) = (glo, ghi);
    bisect(&mut lo, &mut hi, |x| sturm_count(a, b, x, pivmin) == m);
    let max = 0.5 * (lo + hi);
    // Smallest: the largest x with no eigenvalue below it.
    let (mut lo2, mut hi2) = (glo, ghi);
    bisect(&mut lo2, &mut hi2, |x| sturm_count(a, b, x, pivmin) > 0);
    let min = 0.5 * (lo2 + hi2);
    (min, max)
}

/// Bisection on `[lo, hi]` for the switch point of a monotone predicate (`false`
/// at `lo`, `true` at `hi`), until the interval cannot be halved any more.
fn bisect(lo: &mut f64, hi: &mut f64, above: impl Fn(f64) -> bool) {
    for _ in 0..2100 {
        let mid = 0.5 * (*lo + *hi);
        if mid <= *lo || mid >= *hi {
            break;
        }
        if above(mid) {
            *hi = mid;
        } else {
            *lo = mid;
        }
    }
}

/// All eigenvalues of the symmetric row-major `n × n` matrix `a`, in increasing
/// order, by the cyclic Jacobi method (float64): [`jacobi_eigen`] without the vectors.
///
/// # Panics
/// If `a.len() != n * n`.
pub fn jacobi_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "jacobi_eigenvalues: shape mismatch");
    jacobi_eigen(a, n).0
}

/// The eigenvalues of the symmetric row-major `n × n` matrix `a`, in increasing order,
/// and its eigenvectors: the columns of the row-major `n × n` second value, column `j`
/// for eigenvalue `j`. By the cyclic Jacobi method (float64).
///
/// Sweeps of plane rotations over all pairs `(p, q)`, `p < q`, until the
/// off-diagonal Frobenius norm is below `10⁻¹⁶ ‖A‖_F` (at most 100 sweeps); the
/// eigenvectors are the product of the rotations. Jacobi is slow (O(n³) per sweep,
/// with several sweeps) but simple and accurate, which makes it a good independent
/// check for small matrices.
///
/// # Panics
/// If `a.len() != n * n`.
pub fn jacobi_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "jacobi_eigen: shape mismatch");
    let mut m = a.to_vec();
    let mut y: Vec<f64> = (0..n * n).map(|k| f64::from(u8::from(k % (n + 1) == 0))).collect();
    let fro = norm2(&m);
    for _ in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-16 * fro || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + theta.hypot(1.0));
                let c = 1.0 / t.hypot(1.0);
                let s = t * c;
                // M ← Jᵀ M J and Y ← Y J, J the rotation in the (p, q) plane.
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                    let (ykp, ykq) = (y[k * n + p], y[k * n + q]);
                    y[k * n + p] = c * ykp - s * ykq;
                    y[k * n + q] = s * ykp + c * ykq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                // Exactly zero by construction; remove the rounding residue.
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let vectors = (0..n * n).map(|k| y[k / n * n + order[k % n]]).collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tridiagonal_extremes_of_known_matrices() {
        // The second-difference matrix tridiag(−1, 2, −1) of size m has eigenvalues
        // 2 − 2 cos(kπ/(m+1)), k = 1..m.
        for m in [1usize, 2, 3, 10, 57] {
            let a = vec![2.0; m];
            let b = vec![-1.0; m - 1];
            let (lo, hi) = tridiagonal_extremes(&a, &b);
            let h = std::f64::consts::PI / (m + 1) as f64;
            let expect_lo = 2.0 - 2.0 * h.cos();
            let expect_hi = 2.0 - 2.0 * (m as f64 * h).cos();
            assert!((lo - expect_lo).abs() < 1e-14, "m = {m}: {lo} vs {expect_lo}");
            assert!((hi - expect_hi).abs() < 1e-14, "m = {m}: {hi} vs {expect_hi}");
        }
        // Zero off-diagonals: the diagonal itself.
        let (lo, hi) = tridiagonal_extremes(&[3.0, -1.0, 2.0], &[0.0, 0.0]);
        assert_eq!((lo, hi), (-1.0, 3.0));
    }

    #[test]
    fn jacobi_finds_a_known_spectrum() {
        let mut rng = SplitMix64::new(4);
        let eig = [-2.0, -0.5, 0.0, 0.25, 1.0, 3.0];
        let m = crate::linalg::symmetric_with_spectrum(&eig, 6, &mut rng);
        let got = jacobi_eigenvalues(&m, 6);
        for (g, e) in got.iter().zip(&eig) {
            assert!((g - e).abs() < 1e-13, "{got:?}");
        }
    }

    /// The vectors of `jacobi_eigen` are orthonormal and satisfy `A yⱼ = λⱼ yⱼ` for the
    /// eigenvalue in the same position (a repeated eigenvalue included).
    #[test]
    fn jacobi_eigenvectors_diagonalise() {
        let mut rng = SplitMix64::new(5);
        let eig = [-1.0, 0.5, 0.5, 2.0, 4.0];
        let n = eig.len();
        let a = crate::linalg::symmetric_with_spectrum(&eig, n, &mut rng);
        let (values, y) = jacobi_eigen(&a, n);
        assert_eq!(values, jacobi_eigenvalues(&a, n));
        let col = |j: usize| -> Vec<f64> { (0..n).map(|i| y[i * n + j]).collect() };
        for j in 0..n {
            let mut ay = vec![0.0; n];
            matvec(&a, &col(j), &mut ay);
            for (i, v) in ay.iter().enumerate() {
                assert!((v - values[j] * y[i * n + j]).abs() < 1e-12, "column {j}");
            }
            for k in 0..n {
                let expect = f64::from(u8::from(j == k));
                assert!((dot(&col(j), &col(k)) - expect).abs() < 1e-12, "columns {j}, {k}");
            }
        }
    }

    #[test]
    fn lanczos_matches_jacobi_including_breakdown() {
        let mut rng = SplitMix64::new(5);
        // A diagonal matrix with a repeated eigenvalue: the Krylov space of any start
        // vector has dimension ≤ 4 < n, so Lanczos must restart.
        let n = 6;
        let mut a = vec![0.0; n * n];
        for (i, l) in [1.0, 1.0, 1.0, -2.0, 0.5, 0.5].iter().enumerate() {
            a[i * n + i] = *l;
        }
        let r = lanczos_extreme(&a, n, &mut rng, &LanczosOptions::default());
        assert!((r.min + 2.0).abs() < 1e-14 && (r.max - 1.0).abs() < 1e-14, "{r:?}");
        assert!(r.converged);
        // Random dense symmetric matrices.
        for n in [1usize, 2, 7, 40] {
            let g = rng.normal_vec(n * n);
            let s: Vec<f64> = (0..n * n).map(|k| g[k] + g[(k % n) * n + k / n]).collect();
            let r = lanczos_extreme(&s, n, &mut rng, &LanczosOptions::default());
            let eig = jacobi_eigenvalues(&s, n);
            let size = eig[0].abs().max(eig[n - 1].abs());
            assert!((r.min - eig[0]).abs() <= 1e-13 * size, "n = {n}");
            assert!((r.max - eig[n - 1]).abs() <= 1e-13 * size, "n = {n}");
        }
    }
}
