//! The layer's numerical kernels besides the product (`product.rs`): `tanh`, and the
//! deterministic generator and spectral-norm estimate behind
//! [`DeqLayer::demo`](super::DeqLayer::demo).

use deq_problems::rng::SplitMix64;

use super::Float;

/// `v = tanh(v)` elementwise, by [`Float::tanh`]: in `f32` [`tanh_rational`],
/// branch-free, so the loop vectorises (in an AVX-512 or AVX2 build of the same loop
/// where the CPU has one: the same IEEE operations in wider registers, so the same
/// bits, and nothing is contracted into a multiply-add); in `f64` `f64::tanh`, a call
/// per value.
pub(crate) fn tanh_in_place<T: Float>(v: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            unsafe { tanh_avx512(v) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { tanh_avx2(v) };
            return;
        }
    }
    tanh_loop(v);
}

/// The loop of [`tanh_in_place`], inlined into each build.
#[inline(always)]
fn tanh_loop<T: Float>(v: &mut [T]) {
    v.iter_mut().for_each(|x| *x = T::tanh(*x));
}

/// [`tanh_loop`] compiled with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tanh_avx512<T: Float>(v: &mut [T]) {
    tanh_loop(v);
}

/// [`tanh_loop`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn tanh_avx2<T: Float>(v: &mut [T]) {
    tanh_loop(v);
}

/// `tanh(x)` in f32 by a [13/6] rational minimax approximation on `[−7.9, 7.9]` (the
/// coefficients Eigen uses for its vectorised `tanh`), `x` itself below `4·10⁻⁴` and
/// `±1` beyond `7.9` (where `tanh` rounds to `±1` in f32). Within `5·10⁻⁷` of the exact
/// value everywhere (`f32::tanh`: `1·10⁻⁷`; tested against f64 on a dense grid), the
/// worst near `±6`; `NaN` stays `NaN`. Several
/// times faster than `f32::tanh` once vectorised (see `deq` timings in the README).
#[allow(clippy::excessive_precision)] // the coefficients as published, digit for digit
#[inline]
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
mod tests {
    use super::*;

    /// Every build of the tanh loop gives the scalar function's bits, on a grid through
    /// every branch (tiny, the rational range, the clamp) and on NaN and ±∞.
    #[test]
    fn every_tanh_path_is_the_scalar_function_bit_for_bit() {
        let mut xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
        xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 3e-4, -3e-4, 0.0, -0.0, 7.9, 1e-30]);
        let want: Vec<u32> = xs.iter().map(|&x| tanh_rational(x).to_bits()).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut got = xs.clone();
        tanh_loop(&mut got);
        assert_eq!(bits(&got), want, "portable loop");
        let mut got = xs.clone();
        tanh_in_place(&mut got);
        assert_eq!(bits(&got), want, "dispatched");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut got = xs.clone();
                // SAFETY: the CPU has AVX2.
                unsafe { tanh_avx2(&mut got) };
                assert_eq!(bits(&got), want, "AVX2");
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut got = xs.clone();
                // SAFETY: the CPU has AVX-512F.
                unsafe { tanh_avx512(&mut got) };
                assert_eq!(bits(&got), want, "AVX-512");
            }
        }
    }
}
