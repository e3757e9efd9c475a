//! The layer's numerical kernels: the matrix product, `tanh`, and the deterministic
//! generator and spectral-norm estimate behind [`DeqLayer::demo`](super::DeqLayer::demo).

/// Lanes of each accumulator: every output sums its `k` products into 16 partial sums
/// (`j mod 16`), then adds those in a fixed tree.
const LANES: usize = 16;
/// Rows of `a` that share one pass over a row of `w` (register blocking).
const BLOCK: usize = 4;

/// `c += a·wᵀ`: `a` is `[rows × k]`, `w` is `[n × k]` (PyTorch `Linear` weight layout),
/// `c` is `[rows × n]`, all row-major. Single-threaded, allocates nothing.
///
/// Every output `c[r][i]` is computed by the same sequence of IEEE operations whatever
/// `rows` is and wherever the row sits in `a`: products `a[r][j]·w[i][j]` summed into
/// partial sum `j mod 16` in order of `j`, the 16 partial sums added in a fixed tree,
/// then added to `c[r][i]`. Rust contracts no multiply-add and reassociates nothing,
/// so the result is bit for bit the same for one row alone or in any batch, on any
/// thread, with or without the AVX2 path.
///
/// # Panics
///
/// If the lengths do not match `rows`, `k` and `n`.
pub(crate) fn matmul_nt_acc(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    if n == 0 || k == 0 {
        return;
    }
    let rows = c.len() / n;
    assert!(a.len() == rows * k && w.len() == n * k && c.len() == rows * n);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        unsafe { matmul_avx2(a, w, c, k, n) };
        return;
    }
    matmul_rows(a, w, c, k, n);
}

/// [`matmul_rows`] compiled with AVX2 (wider vectors, the same operations).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_avx2(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    matmul_rows(a, w, c, k, n);
}

/// Blocks of [`BLOCK`] rows, then the remaining rows one by one, through [`rows_times`].
#[inline(always)]
fn matmul_rows(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    let mut a_blocks = a.chunks_exact(BLOCK * k);
    let mut c_blocks = c.chunks_exact_mut(BLOCK * n);
    for (ab, cb) in (&mut a_blocks).zip(&mut c_blocks) {
        rows_times::<BLOCK>(ab, w, cb, k, n);
    }
    for (ar, cr) in a_blocks.remainder().chunks_exact(k).zip(c_blocks.into_remainder().chunks_exact_mut(n)) {
        rows_times::<1>(ar, w, cr, k, n);
    }
}

/// `c += a·wᵀ` for `R` rows of `a` (`[R × k]`) into `c` (`[R × n]`).
#[inline(always)]
fn rows_times<const R: usize>(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    let full = k - k % LANES;
    for (i, wi) in w.chunks_exact(k).enumerate() {
        let mut acc = [[0.0f32; LANES]; R];
        let mut j = 0;
        while j < full {
            let wv: &[f32; LANES] = wi[j..j + LANES].try_into().unwrap_or(&[0.0; LANES]);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av: &[f32; LANES] = a[r * k + j..r * k + j + LANES].try_into().unwrap_or(&[0.0; LANES]);
                for l in 0..LANES {
                    acc_r[l] += av[l] * wv[l];
                }
            }
            j += LANES;
        }
        for (l, jj) in (full..k).enumerate() {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                acc_r[l] += a[r * k + jj] * wi[jj];
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            c[r * n + i] += tree_sum(acc_r);
        }
    }
}

/// The 16 partial sums added pairwise in a fixed order.
#[inline(always)]
fn tree_sum(v: &[f32; LANES]) -> f32 {
    let mut h = [0.0f32; LANES / 2];
    for l in 0..LANES / 2 {
        h[l] = v[l] + v[l + LANES / 2];
    }
    let (q0, q1, q2, q3) = (h[0] + h[4], h[1] + h[5], h[2] + h[6], h[3] + h[7]);
    (q0 + q2) + (q1 + q3)
}

/// `v = tanh(v)` elementwise, by [`tanh_rational`]: branch-free, so the loop
/// vectorises.
pub(crate) fn tanh_in_place(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = tanh_rational(*x));
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

/// Standard normal samples (SplitMix64 + Box–Muller), deterministic for a seed.
pub(crate) struct Normal {
    state: u64,
    spare: Option<f64>,
}

impl Normal {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Normal { state: seed, spare: None }
    }

    /// Uniform in `(0, 1]`.
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
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
