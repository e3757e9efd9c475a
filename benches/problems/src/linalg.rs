//! Dense float64 linear algebra helpers: norms, matrix–vector products and an LU
//! factorisation with partial pivoting.
//!
//! Matrices are square, stored row-major in a `&[f64]` of length `n * n`; entry
//! `(i, j)` is `a[i * n + j]`. All inner loops run over contiguous memory.

/// Dot product `Σ xᵢ yᵢ`.
///
/// # Panics
/// If the lengths differ.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot: length mismatch");
    // Four accumulators: lets the compiler vectorise without reassociation.
    let mut acc = [0.0f64; 4];
    let mut xc = x.chunks_exact(4);
    let mut yc = y.chunks_exact(4);
    for (xs, ys) in (&mut xc).zip(&mut yc) {
        for k in 0..4 {
            acc[k] += xs[k] * ys[k];
        }
    }
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Euclidean norm `‖x‖₂`, computed without overflow for large entries.
pub fn norm2(x: &[f64]) -> f64 {
    let scale = norm_inf(x);
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    let inv = 1.0 / scale;
    let s: f64 = x.iter().map(|v| (v * inv) * (v * inv)).sum();
    scale * s.sqrt()
}

/// Maximum norm `‖x‖_∞ = maxᵢ |xᵢ|` (NaN if any entry is NaN).
pub fn norm_inf(x: &[f64]) -> f64 {
    let mut m = 0.0f64;
    for &v in x {
        if v.is_nan() {
            return f64::NAN;
        }
        m = m.max(v.abs());
    }
    m
}

/// Euclidean distance `‖x − y‖₂`.
///
/// # Panics
/// If the lengths differ.
pub fn dist2(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dist2: length mismatch");
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    norm2(&d)
}

/// Matrix–vector product `y = A x` for a row-major `y.len() × x.len()` matrix `a`.
///
/// # Panics
/// If `a.len() != y.len() * x.len()`.
pub fn matvec(a: &[f64], x: &[f64], y: &mut [f64]) {
    let n = x.len();
    assert_eq!(a.len(), y.len() * n, "matvec: shape mismatch");
    if n == 0 {
        y.fill(0.0);
        return;
    }
    for (yi, row) in y.iter_mut().zip(a.chunks_exact(n)) {
        *yi = dot(row, x);
    }
}

/// `y += alpha * x` over contiguous slices of equal length.
#[inline]
pub(crate) fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Column block width of the blocked factorisation.
const BLOCK: usize = 48;

/// Rows and columns of the register tile of [`trailing_update`].
const TILE: usize = 4;

/// `C -= L U` for the trailing block of the blocked LU: `u12` holds rows `j0..j1` of
/// the matrix (row-major, width `n`; `U` is their columns `j1..n`), `bottom` rows
/// `j1..n` (`L` is their columns `j0..j1`, `C` their columns `j1..n`).
///
/// `U` is packed into column strips of width [`TILE`] (contiguous over `k`), and each
/// `TILE × TILE` block of `C` is accumulated in registers over the whole panel
/// before being written back once.
fn trailing_update(u12: &[f64], bottom: &mut [f64], n: usize, j0: usize, j1: usize, upack: &mut Vec<f64>) {
    let kb = j1 - j0;
    let m = n - j1;
    let strips = m / TILE;
    let mfull = strips * TILE;
    upack.clear();
    upack.resize(strips * kb * TILE, 0.0);
    for (s, strip) in upack.chunks_exact_mut(kb * TILE).enumerate() {
        for (k, dst) in strip.chunks_exact_mut(TILE).enumerate() {
            let off = k * n + j1 + s * TILE;
            dst.copy_from_slice(&u12[off..off + TILE]);
        }
    }
    let mut lpack = [0.0f64; TILE * BLOCK];
    let mut blocks = bottom.chunks_exact_mut(TILE * n);
    for block in &mut blocks {
        for r in 0..TILE {
            for k in 0..kb {
                lpack[k * TILE + r] = block[r * n + j0 + k];
            }
        }
        let lp = &lpack[..kb * TILE];
        for (s, strip) in upack.chunks_exact(kb * TILE).enumerate() {
            let mut acc = [[0.0f64; TILE]; TILE];
            for (l, u) in lp.chunks_exact(TILE).zip(strip.chunks_exact(TILE)) {
                let l: &[f64; TILE] = l.try_into().unwrap();
                let u: &[f64; TILE] = u.try_into().unwrap();
                for (acc_r, &lr) in acc.iter_mut().zip(l) {
                    for (a, &uc) in acc_r.iter_mut().zip(u) {
                        *a += lr * uc;
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let off = r * n + j1 + s * TILE;
                for (dst, v) in block[off..off + TILE].iter_mut().zip(acc_r) {
                    *dst -= v;
                }
            }
        }
        // Ragged right edge.
        if mfull < m {
            for r in 0..TILE {
                let (left, right) = block[r * n..(r + 1) * n].split_at_mut(j1);
                for k in 0..kb {
                    let l = left[j0 + k];
                    axpy(&mut right[mfull..], -l, &u12[k * n + j1 + mfull..(k + 1) * n]);
                }
            }
        }
    }
    // Ragged bottom edge.
    for row in blocks.into_remainder().chunks_exact_mut(n) {
        let (left, right) = row.split_at_mut(j1);
        for k in 0..kb {
            let l = left[j0 + k];
            if l != 0.0 {
                axpy(right, -l, &u12[k * n + j1..(k + 1) * n]);
            }
        }
    }
}

/// An LU factorisation `P A = L U` with partial (row) pivoting.
///
/// `L` is unit lower triangular and stored below the diagonal of `lu`, `U` on and
/// above it. `perm[k]` is the row swapped with row `k` at step `k`.
#[derive(Clone, Debug)]
pub struct Lu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// Factorises the row-major `n × n` matrix `a` (consumed and overwritten).
    ///
    /// Returns `None` if `a` is numerically singular: a pivot is zero, not finite,
    /// or smaller than `n · ε · max|aᵢⱼ|`.
    ///
    /// The factorisation is blocked (right-looking, panels of 48 columns) so that the
    /// O(n³) trailing update streams contiguous rows; a 1024 × 1024 matrix takes
    /// roughly a tenth of a second in an optimised build.
    ///
    /// # Panics
    /// If `a.len() != n * n`.
    pub fn factor(mut a: Vec<f64>, n: usize) -> Option<Lu> {
        assert_eq!(a.len(), n * n, "Lu::factor: shape mismatch");
        let scale = norm_inf(&a);
        if !scale.is_finite() {
            return None;
        }
        let tiny = (n as f64) * f64::EPSILON * scale;
        let mut perm = vec![0usize; n];
        let mut upack = Vec::new();

        let mut j0 = 0;
        while j0 < n {
            let j1 = (j0 + BLOCK).min(n);
            // 1. Unblocked factorisation of the panel: columns j0..j1, rows j0..n.
            for k in j0..j1 {
                let mut p = k;
                let mut best = a[k * n + k].abs();
                for i in k + 1..n {
                    let v = a[i * n + k].abs();
                    if v > best {
                        best = v;
                        p = i;
                    }
                }
                if best.is_nan() || best <= tiny {
                    return None;
                }
                perm[k] = p;
                if p != k {
                    let (top, bottom) = a.split_at_mut(p * n);
                    top[k * n..k * n + n].swap_with_slice(&mut bottom[..n]);
                }
                let (top, bottom) = a.split_at_mut((k + 1) * n);
                let pivot_row = &top[k * n..k * n + n];
                let inv = 1.0 / pivot_row[k];
                for row in bottom.chunks_exact_mut(n) {
                    let l = row[k] * inv;
                    row[k] = l;
                    if l != 0.0 {
                        axpy(&mut row[k + 1..j1], -l, &pivot_row[k + 1..j1]);
                    }
                }
            }
            if j1 == n {
                break;
            }
            // 2. U12 = L11⁻¹ A12 (rows j0..j1, columns j1..n).
            for k in j0..j1 {
                let (top, bottom) = a.split_at_mut((k + 1) * n);
                let src = &top[k * n + j1..k * n + n];
                for row in bottom[..(j1 - k - 1) * n].chunks_exact_mut(n) {
                    let l = row[k];
                    if l != 0.0 {
                        axpy(&mut row[j1..], -l, src);
                    }
                }
            }
            // 3. Trailing update A22 -= L21 U12.
            let (top, bottom) = a.split_at_mut(j1 * n);
            trailing_update(&top[j0 * n..], bottom, n, j0, j1, &mut upack);
            j0 = j1;
        }
        Some(Lu { n, lu: a, perm })
    }

    /// The dimension `n`.
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Solves `A x = b` in place: on return `b` holds `x`.
    ///
    /// # Panics
    /// If `b.len() != n`.
    pub fn solve_in_place(&self, b: &mut [f64]) {
        let n = self.n;
        assert_eq!(b.len(), n, "Lu::solve: length mismatch");
        for (k, &p) in self.perm.iter().enumerate() {
            b.swap(k, p);
        }
        // L y = P b (unit lower triangular).
        for i in 0..n {
            let row = &self.lu[i * n..i * n + i];
            b[i] -= dot(row, &b[..i]);
        }
        // U x = y.
        for i in (0..n).rev() {
            let row = &self.lu[i * n..(i + 1) * n];
            let s = dot(&row[i + 1..], &b[i + 1..]);
            b[i] = (b[i] - s) / row[i];
        }
    }

    /// Solves `A x = b`, returning `x`.
    ///
    /// # Panics
    /// If `b.len() != n`.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let mut x = b.to_vec();
        self.solve_in_place(&mut x);
        x
    }
}

/// Solves the square system `A x = b` (row-major `a`, `n = b.len()`) by LU with
/// partial pivoting. Returns `None` if `A` is numerically singular (see [`Lu::factor`]).
///
/// # Panics
/// If `a.len() != b.len()²`.
pub fn lu_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    Lu::factor(a.to_vec(), b.len()).map(|lu| lu.solve(b))
}

/// Builds the symmetric matrix `Q diag(eigenvalues) Qᵀ` (row-major, `n × n`), where
/// `Q = H₁ H₂ ⋯ H_k` is a product of `reflections` Householder reflections
/// `Hᵢ = I − 2 vᵢ vᵢᵀ` with uniformly random unit vectors `vᵢ` drawn from `rng`.
///
/// Each reflection is applied from both sides as the symmetric rank-2 update
/// `H M H = M − 2 (v uᵀ + u vᵀ)`, `u = M v − (vᵀ M v) v`, which costs O(n²), and keeps
/// the result exactly symmetric. The eigenvalues of the result are exactly
/// `eigenvalues` up to rounding.
///
/// Note: `Q` acts as the identity on the orthogonal complement of `span{vᵢ}`, so the
/// result equals `diag(eigenvalues)` plus a perturbation of rank at most `2k`; for
/// large `n` it is therefore diagonally dominated.
pub fn symmetric_with_spectrum(
    eigenvalues: &[f64],
    reflections: usize,
    rng: &mut crate::rng::SplitMix64,
) -> Vec<f64> {
    let n = eigenvalues.len();
    let mut m = vec![0.0; n * n];
    for (i, &l) in eigenvalues.iter().enumerate() {
        m[i * n + i] = l;
    }
    if n == 0 {
        return m;
    }
    let mut w = vec![0.0; n];
    for _ in 0..reflections {
        let v = rng.unit_vector(n);
        matvec(&m, &v, &mut w);
        let alpha = dot(&v, &w);
        let u: Vec<f64> = w.iter().zip(&v).map(|(wi, vi)| wi - alpha * vi).collect();
        for (i, row) in m.chunks_exact_mut(n).enumerate() {
            let (vi, ui) = (2.0 * v[i], 2.0 * u[i]);
            for ((mij, vj), uj) in row.iter_mut().zip(&v).zip(&u) {
                // vi*uj + ui*vj is symmetric in (i, j) bit for bit.
                *mij -= vi * uj + ui * vj;
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn lu_solves_random_systems() {
        let mut rng = SplitMix64::new(3);
        for &n in &[1usize, 2, 5, 47, 48, 49, 100, 131] {
            let a = rng.normal_vec(n * n);
            let x = rng.normal_vec(n);
            let mut b = vec![0.0; n];
            matvec(&a, &x, &mut b);
            let y = lu_solve(&a, &b).expect("random matrix is regular");
            assert!(dist2(&x, &y) <= 1e-9 * norm2(&x), "n = {n}");
        }
    }

    #[test]
    fn lu_detects_singular() {
        // Rank 2 matrix.
        let a = [1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 1.0, 0.0, 1.0];
        assert!(lu_solve(&a, &[1.0, 2.0, 3.0]).is_none());
        assert!(lu_solve(&[0.0; 4], &[1.0, 1.0]).is_none());
        assert!(lu_solve(&[f64::NAN, 0.0, 0.0, 1.0], &[1.0, 1.0]).is_none());
    }

    #[test]
    fn lu_needs_pivoting() {
        let a = [0.0, 1.0, 1.0, 0.0];
        assert_eq!(lu_solve(&a, &[2.0, 3.0]).unwrap(), vec![3.0, 2.0]);
    }

    #[test]
    fn spectrum_is_preserved() {
        let mut rng = SplitMix64::new(11);
        let eig = [3.0, -1.0, 0.5, 0.25, 2.0];
        let m = symmetric_with_spectrum(&eig, 8, &mut rng);
        let n = eig.len();
        for i in 0..n {
            for j in 0..n {
                assert_eq!(m[i * n + j], m[j * n + i]);
            }
        }
        // Trace and Frobenius norm are orthogonal invariants.
        let trace: f64 = (0..n).map(|i| m[i * n + i]).sum();
        assert!((trace - eig.iter().sum::<f64>()).abs() < 1e-12);
        let fro2: f64 = m.iter().map(|x| x * x).sum();
        assert!((fro2 - eig.iter().map(|x| x * x).sum::<f64>()).abs() < 1e-12);
        // The power sums trace(Mᵏ) = Σ λᵢᵏ, k = 1..n, determine the spectrum.
        let mut p = m.clone();
        for k in 2..=n {
            let mut next = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    next[i * n + j] = (0..n).map(|l| p[i * n + l] * m[l * n + j]).sum();
                }
            }
            p = next;
            let trace: f64 = (0..n).map(|i| p[i * n + i]).sum();
            let expect: f64 = eig.iter().map(|l| l.powi(k as i32)).sum();
            assert!((trace - expect).abs() < 1e-12 * expect.abs().max(1.0), "k = {k}");
        }
    }

    #[test]
    fn norms() {
        assert_eq!(norm2(&[3.0, 4.0]), 5.0);
        assert_eq!(norm_inf(&[3.0, -4.0]), 4.0);
        assert!(norm_inf(&[1.0, f64::NAN]).is_nan());
        assert_eq!(norm2(&[1e200, 1e200]), 1e200 * 2f64.sqrt());
        assert_eq!(dot(&[1.0; 7], &[2.0; 7]), 14.0);
    }
}
