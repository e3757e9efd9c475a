//! Single-vector SIMD loops: the paired reduction behind `dot`/`dist`, `axpy`, and the
//! fixed-point residual `sub_norms`, written once over [`Lanes`] (`wide::f32x8` for
//! `f32`, `wide::f64x4` for `f64`; the types of [`avx`](super::avx) where the kernels
//! run with AVX, see [`isa`](super::isa)).

use core::ops::{Add, Mul, Sub};

use wide::{f32x8, f64x4};

#[cfg(target_arch = "x86")]
use core::arch::x86;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64 as x86;

use super::bf16::{Bf16, Elem};
use crate::Real;

/// A SIMD vector of `L` lanes of `T`: what the kernels need of `wide`'s types.
pub(crate) trait Lanes<T, const L: usize>:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self>
{
    /// All lanes zero.
    const ZERO: Self;
    /// Loads one chunk.
    fn load(c: &[T; L]) -> Self;
    /// Loads one chunk of `bf16`, widened exactly (each value's bits shifted up by 16:
    /// on x86, two SSE2 unpacks with zero per eight values).
    fn load_bf16(c: &[Bf16; L]) -> Self;
    /// The lanes rounded to `bf16` (nearest, ties to even; NaN kept, as
    /// [`Bf16::from_f32`]): on x86, SSE2 integer operations on each half.
    #[cfg(simd)]
    fn store_bf16(self) -> [Bf16; L];
    /// All lanes `x`.
    fn splat(x: T) -> Self;
    /// `self·b + c` (fused where the target has it).
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// The sum of the lanes.
    fn reduce_add(self) -> T;
    /// The lanes as an array.
    fn to_array(self) -> [T; L];
}

macro_rules! lanes {
    ($v:ty, $t:ty, $l:literal, $bf16:ident, $store:ident) => {
        impl Lanes<$t, $l> for $v {
            const ZERO: Self = <$v>::ZERO;
            #[inline(always)]
            fn load(c: &[$t; $l]) -> Self {
                <$v>::new(*c)
            }
            #[inline(always)]
            fn load_bf16(c: &[Bf16; $l]) -> Self {
                $bf16(c)
            }
            #[cfg(simd)]
            #[inline(always)]
            fn store_bf16(self) -> [Bf16; $l] {
                $store(self)
            }
            #[inline(always)]
            fn splat(x: $t) -> Self {
                <$v>::splat(x)
            }
            #[inline(always)]
            fn mul_add(self, b: Self, c: Self) -> Self {
                <$v>::mul_add(self, b, c)
            }
            #[inline(always)]
            fn reduce_add(self) -> $t {
                <$v>::reduce_add(self)
            }
            #[inline(always)]
            fn to_array(self) -> [$t; $l] {
                <$v>::to_array(self)
            }
        }
    };
}

lanes!(f32x8, f32, 8, f32x8_bf16, f32x8_store_bf16);
lanes!(f64x4, f64, 4, f64x4_bf16, f64x4_store_bf16);

/// Eight `bf16` widened into the two 128-bit halves of eight `f32` lanes: the low four
/// values by `unpacklo` with zero (zero below each value: its bits shifted up by 16),
/// the high four by `unpackhi`. SSE2, which every x86-64 CPU has.
#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn bf16_halves(c: &[Bf16; 8]) -> [x86::__m128; 2] {
    use x86::*;
    // SAFETY: SSE2 is enabled (cfg above); `c` is 16 readable bytes; unaligned load.
    unsafe {
        let v = _mm_loadu_si128(c.as_ptr().cast::<__m128i>());
        let zero = _mm_setzero_si128();
        [_mm_castsi128_ps(_mm_unpacklo_epi16(zero, v)), _mm_castsi128_ps(_mm_unpackhi_epi16(zero, v))]
    }
}

/// [`Lanes::load_bf16`] of `f32x8`.
#[inline(always)]
fn f32x8_bf16(c: &[Bf16; 8]) -> f32x8 {
    #[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2"))]
    {
        // SAFETY: `f32x8` is eight `f32` lanes in order, 32 bytes, like the two halves;
        // every bit pattern is a valid value of either.
        unsafe { core::mem::transmute::<[x86::__m128; 2], f32x8>(bf16_halves(c)) }
    }
    #[cfg(not(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2")))]
    {
        f32x8::new(c.map(Bf16::to_f32))
    }
}

/// Eight `f32` in two 128-bit halves rounded to `bf16`, as [`Bf16::from_f32`] rounds
/// each: `bits + 0x7fff + (bit 16)`, a NaN's quiet bit set instead, the high halves
/// shifted down (arithmetically, so that the signed pack keeps every value) and packed.
#[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn bf16_from_halves(halves: [x86::__m128; 2]) -> [Bf16; 8] {
    use x86::*;
    // SAFETY: SSE2 is enabled (cfg above); the store is unaligned into 16 bytes.
    unsafe {
        let half = |x: __m128| {
            let bits = _mm_castps_si128(x);
            let lsb = _mm_and_si128(_mm_srli_epi32(bits, 16), _mm_set1_epi32(1));
            let rounded = _mm_add_epi32(bits, _mm_add_epi32(_mm_set1_epi32(0x7fff), lsb));
            let nan = _mm_castps_si128(_mm_cmpunord_ps(x, x));
            let quiet = _mm_or_si128(bits, _mm_set1_epi32(0x0040_0000));
            let pick = _mm_or_si128(_mm_and_si128(nan, quiet), _mm_andnot_si128(nan, rounded));
            _mm_srai_epi32(pick, 16)
        };
        let [lo, hi] = halves;
        let mut out = [Bf16::ZERO; 8];
        _mm_storeu_si128(out.as_mut_ptr().cast::<__m128i>(), _mm_packs_epi32(half(lo), half(hi)));
        out
    }
}

/// [`Lanes::store_bf16`] of `f32x8`.
#[cfg(simd)]
#[inline(always)]
fn f32x8_store_bf16(v: f32x8) -> [Bf16; 8] {
    #[cfg(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2"))]
    {
        // SAFETY: as for `f32x8_bf16`, the other way round.
        bf16_from_halves(unsafe { core::mem::transmute::<f32x8, [x86::__m128; 2]>(v) })
    }
    #[cfg(not(all(any(target_arch = "x86", target_arch = "x86_64"), target_feature = "sse2")))]
    {
        v.to_array().map(Bf16::from_f32)
    }
}

/// [`Lanes::store_bf16`] of `f64x4`: each lane as an `f32` first (never on a hot
/// path: `bf16` rows are written in `f32`).
#[cfg(simd)]
#[inline(always)]
fn f64x4_store_bf16(v: f64x4) -> [Bf16; 4] {
    v.to_array().map(|x| Bf16::from_f32(x as f32))
}

/// [`Lanes::load_bf16`] of `f64x4` (exact: a `bf16` is an `f32`, an `f32` an `f64`).
#[inline(always)]
fn f64x4_bf16(c: &[Bf16; 4]) -> f64x4 {
    f64x4::new(c.map(|b| f64::from(b.to_f32())))
}

/// Folds `vf` over the `L`-lane chunks of the common prefix of `a` and `b` with four
/// independent accumulators, then `sf` over the scalar tail, and returns the total
/// (`a`'s entries widened to `T` as they are loaded: a `bf16` row gives the bits of
/// that row in `f32`).
///
/// `vf(acc, a_chunk, b_chunk)` and `sf(acc, aᵢ, bᵢ)` must compute the same per-element
/// update. Slicing is done with `as_chunks` and iterator zips only, so the loops carry
/// no bounds checks.
#[inline(always)]
pub(crate) fn reduce2<T: Real, A: Elem<T>, V: Lanes<T, L>, const L: usize>(
    a: &[A],
    b: &[T],
    vf: impl Fn(V, V, V) -> V,
    sf: impl Fn(T, T, T) -> T,
) -> T {
    let m = a.len().min(b.len());
    let a = a.get(..m).unwrap_or_default();
    let b = b.get(..m).unwrap_or_default();
    let (ac, at) = a.as_chunks::<L>();
    let (bc, bt) = b.as_chunks::<L>();
    let (a4, ar) = ac.as_chunks::<4>();
    let (b4, br) = bc.as_chunks::<4>();

    let mut acc = [V::ZERO; 4];
    for (xa, xb) in a4.iter().zip(b4) {
        for ((s, ca), cb) in acc.iter_mut().zip(xa).zip(xb) {
            *s = vf(*s, A::load(ca), V::load(cb));
        }
    }
    // Up to three remaining whole chunks, one per accumulator.
    for ((s, ca), cb) in acc.iter_mut().zip(ar).zip(br) {
        *s = vf(*s, A::load(ca), V::load(cb));
    }
    let [s0, s1, s2, s3] = acc;
    let mut s = ((s0 + s1) + (s2 + s3)).reduce_add();
    for (x, y) in at.iter().zip(bt) {
        s = sf(s, x.widen(), *y);
    }
    s
}

/// `y ← y + alpha·x` over the common prefix; product then sum, no fused multiply-add,
/// so every element is rounded exactly as in the scalar reference (`x` widened to `T`).
#[inline(always)]
pub(crate) fn axpy<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize>(alpha: T, x: &[E], y: &mut [T]) {
    let m = x.len().min(y.len());
    let x = x.get(..m).unwrap_or_default();
    let y = y.get_mut(..m).unwrap_or_default();
    let (xc, xt) = x.as_chunks::<L>();
    let (yc, yt) = y.as_chunks_mut::<L>();
    let av = V::splat(alpha);
    for (cy, cx) in yc.iter_mut().zip(xc) {
        *cy = (V::load(cy) + av * E::load(cx)).to_array();
    }
    for (yi, xi) in yt.iter_mut().zip(xt) {
        *yi += alpha * xi.widen();
    }
}

/// `g ← g − x` over the common prefix, returning the sums of squares of `g` before and
/// after: `(Σ gᵢ², Σ (gᵢ − xᵢ)²)`, in one pass (two accumulators for each sum). The
/// differences are rounded exactly as in the scalar reference.
#[inline(always)]
pub(crate) fn sub_norms<T, V: Lanes<T, L>, const L: usize>(x: &[T], g: &mut [T]) -> (T, T)
where
    T: Copy + Add<Output = T> + Sub<Output = T> + Mul<Output = T>,
{
    let m = x.len().min(g.len());
    let x = x.get(..m).unwrap_or_default();
    let g = g.get_mut(..m).unwrap_or_default();
    let (xc, xt) = x.as_chunks::<L>();
    let (gc, gt) = g.as_chunks_mut::<L>();
    let (x2, xr) = xc.as_chunks::<2>();
    let (g2, gr) = gc.as_chunks_mut::<2>();
    // One chunk: the difference stored, both squares added to one accumulator pair.
    let step = |cg: &mut [T; L], cx: &[T; L], b: &mut V, a: &mut V| {
        let vg = V::load(cg);
        let r = vg - V::load(cx);
        *b = vg.mul_add(vg, *b);
        *a = r.mul_add(r, *a);
        *cg = r.to_array();
    };
    let (mut before, mut after) = ([V::ZERO; 2], [V::ZERO; 2]);
    for (cg, cx) in g2.iter_mut().zip(x2) {
        for (((cg, cx), b), a) in cg.iter_mut().zip(cx).zip(&mut before).zip(&mut after) {
            step(cg, cx, b, a);
        }
    }
    // At most one chunk is left, for the first accumulators.
    for (((cg, cx), b), a) in gr.iter_mut().zip(xr).zip(&mut before).zip(&mut after) {
        step(cg, cx, b, a);
    }
    let [b0, b1] = before;
    let [a0, a1] = after;
    let (mut sb, mut sa) = ((b0 + b1).reduce_add(), (a0 + a1).reduce_add());
    for (gi, xi) in gt.iter_mut().zip(xt) {
        let r = *gi - *xi;
        sb = sb + *gi * *gi;
        sa = sa + r * r;
        *gi = r;
    }
    (sb, sa)
}
