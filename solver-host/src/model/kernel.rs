//! The layer's numerical kernels: the matrix product (faer), `tanh`, and the
//! deterministic generator and spectral-norm estimate behind
//! [`DeqLayer::demo`](super::DeqLayer::demo).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// `c += a·wᵀ`: `a` is `[rows × k]`, `w` is `[n × k]` (PyTorch `Linear` weight layout),
/// `c` is `[rows × n]`, all row-major. Single-threaded (`Par::Seq`); after the first
/// call on a thread it allocates nothing on x86-64 with AVX2+FMA or AVX-512 (faer's
/// packing buffers are thread-local there).
pub(crate) fn matmul_nt_acc(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    let rows = c.len() / n;
    assert!(a.len() == rows * k && w.len() == n * k && c.len() == rows * n);
    if rows == 0 || k == 0 || n == 0 {
        return;
    }
    let a = MatRef::from_row_major_slice(a, rows, k);
    let wt = MatRef::from_row_major_slice(w, n, k).transpose();
    let c = MatMut::from_row_major_slice_mut(c, rows, n);
    matmul(c, Accum::Add, a, wt, 1.0f32, Par::Seq);
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
