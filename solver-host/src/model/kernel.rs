//! The layer's numerical kernels: the matrix product, `tanh`, and the deterministic
//! generator and spectral-norm estimate behind [`DeqLayer::demo`](super::DeqLayer::demo).

use deq_problems::rng::SplitMix64;

use super::Float;

/// Output columns of one register tile: two AVX2 vectors, four SSE2 vectors.
const COLS: usize = 16;
/// Rows of `a` in one register tile of `f32` (with [`COLS`], 64 accumulators: 8 AVX2
/// registers); `f64` tiles take half as many rows, for the same 8 registers.
const ROWS: usize = 4;

/// `bᵀ` of a row-major `[n × k]` matrix: `[k × n]`, row-major. The layer keeps its
/// weights transposed once, at construction, for [`matmul_acc`].
///
/// # Errors
///
/// `None` if the copy cannot be allocated.
pub(crate) fn transpose<T: Copy>(b: &[T], n: usize, k: usize) -> Option<Vec<T>> {
    let mut t = Vec::new();
    t.try_reserve_exact(b.len()).ok()?;
    t.extend((0..k * n).map(|idx| b[(idx % n) * k + idx / n]));
    Some(t)
}

/// `c += a·b`: `a` is `[rows × k]`, `b` is `[k × n]` (the transposed weights,
/// [`transpose`]), `c` is `[rows × n]`, all row-major. Single-threaded, allocates
/// nothing.
///
/// Every output is one chain of IEEE operations in a fixed order,
/// `c[r][j] + a[r][0]·b[0][j] + a[r][1]·b[1][j] + …` (each product rounded, then added:
/// Rust contracts no multiply-add and reassociates nothing), whatever `rows` is, where
/// the row sits in `a`, and which path computes it: column strips of [`COLS`] outputs,
/// each passed over by register tiles of [`ROWS`] rows (half as many in `f64`),
/// vectorise across columns (each lane is a different output, so no horizontal sums),
/// the leftover rows and columns run the same chain one by one, and the AVX2 and
/// AVX-512 builds (chosen at run time) run the same code: at `[15 × 150 × 700]` the
/// AVX-512 build evaluates a round about 10 % faster than AVX2 (floor bench). So a row's result is bit for bit the same alone or in any batch, on
/// any thread, in either float type (one generic implementation: the `f32` and `f64`
/// builds differ only in the type).
///
/// # Panics
///
/// If the lengths do not match `rows`, `k` and `n`.
pub(crate) fn matmul_acc<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    if n == 0 || k == 0 {
        return;
    }
    let rows = c.len() / n;
    assert!(a.len() == rows * k && b.len() == k * n && c.len() == rows * n);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        unsafe { matmul_avx512(a, b, c, k, n) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { matmul_avx2(a, b, c, k, n) };
        return;
    }
    matmul_rows(a, b, c, k, n);
}

/// [`matmul_rows`] compiled with AVX-512F (a strip's 16 columns in one register, the
/// same operations).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn matmul_avx512<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    matmul_rows(a, b, c, k, n);
}

/// [`matmul_rows`] compiled with AVX2 (wider vectors, the same operations).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_avx2<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    matmul_rows(a, b, c, k, n);
}

/// Column strips of [`COLS`] outputs, outermost, so that a strip of `b` (`k × 16`
/// floats: 45 KB of `f32` for k = 700) stays in cache while every tile of [`ROWS`] rows
/// (`ROWS / 2` in `f64`) passes over it; then the leftover columns. The order of the
/// strips and tiles changes no output's chain.
#[inline(always)]
fn matmul_rows<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    if T::BYTES == 4 {
        matmul_tiles::<T, ROWS>(a, b, c, k, n);
    } else {
        matmul_tiles::<T, { ROWS / 2 }>(a, b, c, k, n);
    }
}

/// [`matmul_rows`] with tiles of `R` rows.
#[inline(always)]
fn matmul_tiles<T: Float, const R: usize>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    let full = n - n % COLS;
    for j0 in (0..full).step_by(COLS) {
        let mut a_blocks = a.chunks_exact(R * k);
        let mut c_blocks = c.chunks_exact_mut(R * n);
        for (ab, cb) in (&mut a_blocks).zip(&mut c_blocks) {
            strip::<T, R>(ab, b, cb, k, n, j0);
        }
        for (ar, cr) in
            a_blocks.remainder().chunks_exact(k).zip(c_blocks.into_remainder().chunks_exact_mut(n))
        {
            strip::<T, 1>(ar, b, cr, k, n, j0);
        }
    }
    for (ar, cr) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        for j in full..n {
            let mut s = cr[j];
            for (&av, b_row) in ar.iter().zip(b.chunks_exact(n)) {
                s += av * b_row[j];
            }
            cr[j] = s;
        }
    }
}

/// `c[.., j0..j0 + 16] += a·b[.., j0..j0 + 16]` for `R` rows of `a` (`[R × k]`) into
/// `c` (`[R × n]`): `R × 16` accumulators, one chain per output.
#[inline(always)]
fn strip<T: Float, const R: usize>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize, j0: usize) {
    let mut acc = [[T::ZERO; COLS]; R];
    for (r, acc_r) in acc.iter_mut().enumerate() {
        acc_r.copy_from_slice(&c[r * n + j0..r * n + j0 + COLS]);
    }
    // k in chunks of 64: the tile's columns of `a` gathered once per chunk, so that the
    // inner loop reads only `a_t` and one segment of a row of `b`, without bounds checks.
    let mut a_t = [[T::ZERO; R]; 64];
    let zeros = [T::ZERO; COLS];
    for k0 in (0..k).step_by(64) {
        let len = (k - k0).min(64);
        for (t, col) in a_t.iter_mut().take(len).enumerate() {
            *col = core::array::from_fn(|r| a[r * k + k0 + t]);
        }
        for (av, b_row) in a_t.iter().take(len).zip(b[k0 * n..].chunks_exact(n)) {
            let bv: &[T; COLS] = b_row[j0..j0 + COLS].try_into().unwrap_or(&zeros);
            for (acc_r, &ar) in acc.iter_mut().zip(av) {
                for (x, &bl) in acc_r.iter_mut().zip(bv) {
                    *x += ar * bl;
                }
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        c[r * n + j0..r * n + j0 + COLS].copy_from_slice(acc_r);
    }
}

/// `v = tanh(v)` elementwise, by [`Float::tanh`]: in `f32` [`tanh_rational`],
/// branch-free, so the loop vectorises; in `f64` `f64::tanh`, a call per value.
pub(crate) fn tanh_in_place<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = T::tanh(*x));
}

/// `tanh(x)` in f32 by a [13/6] rational minimax approximation on `[−7.9, 7.9]` (the
/// coefficients Eigen uses for its vectorised `tanh`), `x` itself below `4·10⁻⁴` and
/// `±1` beyond `7.9` (where `tanh` rounds to `±1` in f32). Within `5·10⁻⁷` of the exact
/// value everywhere (`f32::tanh`: `1·10⁻⁷`; tested against f64 on a dense grid), the
/// worst near `±6`; `NaN` stays `NaN`. Several
/// times faster than `f32::tanh` once vectorised (see `deq` timings in the README).
#[allow(clippy::excessive_precision)] // the coefficients as published, digit for digit
pub fn tanh_rational(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const A: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_3e-4,
        1.485_722_4e-5,
        5.122_297e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_5e-16,
    ];
    const B: [f32; 4] = [4.893_525_2e-3, 2.268_434_6e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let p = ((((((A[6] * x2 + A[5]) * x2 + A[4]) * x2 + A[3]) * x2 + A[2]) * x2 + A[1]) * x2 + A[0]) * c;
    let q = ((B[3] * x2 + B[2]) * x2 + B[1]) * x2 + B[0];
    if x.abs() < 4e-4 { x } else { p / q }
}

/// Standard normal samples (Box–Muller over the project's one [`SplitMix64`]),
/// deterministic for a seed. The uniforms are taken in `(0, 1]` as
/// `(bits₅₃ + 1)/2⁵³`, which fixes the demonstration layer's weights.
pub(crate) struct Normal {
    rng: SplitMix64,
    spare: Option<f64>,
}

impl Normal {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Normal { rng: SplitMix64::new(seed), spare: None }
    }

    /// Uniform in `(0, 1]`.
    fn uniform(&mut self) -> f64 {
        ((self.rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// One sample of N(0, 1).
    pub(crate) fn sample(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// Estimate of the spectral norm `‖W‖₂` of the square `[h, h]` matrix `w`, by power
/// iteration on `WᵀW` (a lower bound that converges from below).
pub(crate) fn spectral_norm(w: &[f32], h: usize) -> f64 {
    let mut v = vec![1.0 / (h as f64).sqrt(); h];
    let mut wv = vec![0.0f64; h];
    let mut sigma = 0.0;
    for _ in 0..50 {
        for (o, row) in wv.iter_mut().zip(w.chunks_exact(h)) {
            *o = row.iter().zip(&v).map(|(&a, &b)| a as f64 * b).sum();
        }
        v.fill(0.0);
        for (&s, row) in wv.iter().zip(w.chunks_exact(h)) {
            v.iter_mut().zip(row).for_each(|(o, &a)| *o += s * a as f64);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return 0.0;
        }
        sigma = norm.sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
    }
    sigma
}

#[cfg(test)]
mod product_tests {
    use super::*;

    /// Deterministic values in [-1, 1) (24 random bits, so exact in either type).
    fn values<T: Float>(len: usize, seed: u64) -> Vec<T> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                T::from_f64(((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0)
            })
            .collect()
    }

    /// The chain each output is defined by, written out one output at a time.
    fn reference<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
        for (ar, cr) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
            for (j, cj) in cr.iter_mut().enumerate() {
                for (kk, &av) in ar.iter().enumerate() {
                    *cj += av * b[kk * n + j];
                }
            }
        }
    }

    /// Every path (tiles, leftover rows and columns, k in chunks, the AVX2 and AVX-512
    /// builds where the CPU has them) gives
    /// the reference's bits, and `transpose` is the transpose.
    fn every_path_is_the_reference_chain<T: Float>() {
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        for (rows, k, n) in [(1, 1, 1), (3, 5, 17), (4, 64, 16), (9, 130, 33), (13, 200, 70), (8, 65, 48)] {
            let (a, w) = (values::<T>(rows * k, 1), values::<T>(n * k, 2));
            let b = transpose(&w, n, k).unwrap();
            assert!((0..n).all(|i| (0..k).all(|j| b[j * n + i] == w[i * k + j])));
            let c0 = values::<T>(rows * n, 3);
            let mut want = c0.clone();
            reference(&a, &b, &mut want, k, n);
            let mut got = c0.clone();
            matmul_rows(&a, &b, &mut got, k, n);
            assert_eq!(bits(&got), bits(&want), "{} portable path, {rows}×{k}×{n}", T::NAME);
            let mut got = c0.clone();
            matmul_acc(&a, &b, &mut got, k, n);
            assert_eq!(bits(&got), bits(&want), "{} dispatched path, {rows}×{k}×{n}", T::NAME);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut got = c0.clone();
                // SAFETY: the CPU has AVX2.
                unsafe { matmul_avx2(&a, &b, &mut got, k, n) };
                assert_eq!(bits(&got), bits(&want), "{} AVX2 path, {rows}×{k}×{n}", T::NAME);
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut got = c0.clone();
                // SAFETY: the CPU has AVX-512F.
                unsafe { matmul_avx512(&a, &b, &mut got, k, n) };
                assert_eq!(bits(&got), bits(&want), "{} AVX-512 path, {rows}×{k}×{n}", T::NAME);
            }
        }
    }

    #[test]
    fn every_path_is_the_reference_chain_bit_for_bit() {
        every_path_is_the_reference_chain::<f32>();
    }

    #[test]
    fn every_f64_path_is_the_reference_chain_bit_for_bit() {
        every_path_is_the_reference_chain::<f64>();
    }
}
