//! The lane types of the kernels compiled for AVX ([`isa::Isa::Avx`](super::isa::Isa)):
//! [`F32x8`] over `__m256` and [`F64x4`] over `__m256d`, every operation one 256-bit
//! instruction. `wide` picks its instructions when it is compiled, so inside a function
//! compiled for AVX its types would still be pairs of SSE registers; these are what
//! the kernels' loops run on there.
//!
//! Every lane is rounded as `wide`'s types round it on the x86-64 baseline: `mul_add`
//! is a product then a sum (no fused multiply-add), and `reduce_add` sums each
//! 128-bit half in lane order, then adds the two halves, as `wide`'s SSE2 `f32x8` and
//! `f64x4` do. So the kernels give the same bits on either instruction set
//! (tests/isa.rs checks it).
//!
//! The methods are `#[inline(always)]` without a `target_feature` of their own: they
//! are only ever inlined into `isa::with_avx`, which is compiled for AVX and is only
//! called where the CPU has it.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;
use core::ops::{Add, Mul, Sub};

use super::bf16::Bf16;
use super::vector::Lanes;

/// Eight `f32` lanes in one AVX register.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// Four `f64` lanes in one AVX register.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

macro_rules! avx_lanes {
    ($v:ident, $t:ty, $l:literal, $reg:ty, $add:ident, $sub:ident, $mul:ident, $load:ident, $store:ident, $set1:ident, $bf16:ident, $store_bf16:ident) => {
        impl Add for $v {
            type Output = Self;
            #[inline(always)]
            fn add(self, rhs: Self) -> Self {
                // SAFETY: inlined only into code compiled for AVX (module docs).
                $v(unsafe { $add(self.0, rhs.0) })
            }
        }
        impl Sub for $v {
            type Output = Self;
            #[inline(always)]
            fn sub(self, rhs: Self) -> Self {
                // SAFETY: as for `add`.
                $v(unsafe { $sub(self.0, rhs.0) })
            }
        }
        impl Mul for $v {
            type Output = Self;
            #[inline(always)]
            fn mul(self, rhs: Self) -> Self {
                // SAFETY: as for `add`.
                $v(unsafe { $mul(self.0, rhs.0) })
            }
        }
        impl Lanes<$t, $l> for $v {
            // SAFETY: every bit pattern is a valid register value; all zeros is +0.0.
            const ZERO: Self = $v(unsafe { core::mem::transmute::<[$t; $l], $reg>([0.0; $l]) });
            #[inline(always)]
            fn load(c: &[$t; $l]) -> Self {
                // SAFETY: `c` is `$l` readable values; the load is unaligned.
                $v(unsafe { $load(c.as_ptr()) })
            }
            #[inline(always)]
            fn load_bf16(c: &[Bf16; $l]) -> Self {
                $bf16(c)
            }
            #[inline(always)]
            fn store_bf16(self) -> [Bf16; $l] {
                $store_bf16(self)
            }
            #[inline(always)]
            fn splat(x: $t) -> Self {
                // SAFETY: as for `add`.
                $v(unsafe { $set1(x) })
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                self * b + c
            }
            #[inline(always)]
            fn reduce_add(self) -> $t {
                let a = self.to_array();
                let (lo, hi) = a.split_at($l / 2);
                lo.iter().sum::<$t>() + hi.iter().sum::<$t>()
            }
            #[inline(always)]
            fn to_array(self) -> [$t; $l] {
                let mut a = [0.0; $l];
                // SAFETY: `a` is `$l` writable values; the store is unaligned.
                unsafe { $store(a.as_mut_ptr(), self.0) };
                a
            }
        }
    };
}

avx_lanes!(
    F32x8,
    f32,
    8,
    __m256,
    _mm256_add_ps,
    _mm256_sub_ps,
    _mm256_mul_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    f32x8_bf16,
    f32x8_store_bf16
);
avx_lanes!(
    F64x4,
    f64,
    4,
    __m256d,
    _mm256_add_pd,
    _mm256_sub_pd,
    _mm256_mul_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_set1_pd,
    f64x4_bf16,
    f64x4_store_bf16
);

/// [`Lanes::load_bf16`] of [`F32x8`]: the SSE2 unpacks of the baseline, joined into one
/// register.
#[inline(always)]
fn f32x8_bf16(c: &[Bf16; 8]) -> F32x8 {
    let [lo, hi] = super::vector::bf16_halves(c);
    // SAFETY: as for `add`.
    F32x8(unsafe { _mm256_set_m128(hi, lo) })
}

/// [`Lanes::store_bf16`] of [`F32x8`]: the baseline's SSE2 rounding on each half.
#[inline(always)]
fn f32x8_store_bf16(v: F32x8) -> [Bf16; 8] {
    // SAFETY: as for `add`.
    let halves = unsafe { [_mm256_castps256_ps128(v.0), _mm256_extractf128_ps::<1>(v.0)] };
    super::vector::bf16_from_halves(halves)
}

/// [`Lanes::store_bf16`] of [`F64x4`] (never on a hot path).
#[inline(always)]
fn f64x4_store_bf16(v: F64x4) -> [Bf16; 4] {
    v.to_array().map(|x| Bf16::from_f32(x as f32))
}

/// [`Lanes::load_bf16`] of [`F64x4`] (exact; never on a hot path: `bf16` rows are read
/// in `f32`).
#[inline(always)]
fn f64x4_bf16(c: &[Bf16; 4]) -> F64x4 {
    F64x4::load(&c.map(|b| f64::from(b.to_f32())))
}
