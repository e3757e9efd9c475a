//! `bfloat16` storage for the rows of a low-rank history, and the element types the
//! row kernels read.
//!
//! [`Bf16`] is the upper half of an IEEE `f32`: the same sign and 8-bit exponent (so
//! the same range, up to about 3.4e38, and no overflow where `f32` has none) and 7
//! stored significand bits (relative precision 2⁻⁸ ≈ 0.4 %). It is only ever storage:
//! every kernel widens it to `f32` (exactly: the widening appends 16 zero bits) and
//! computes in `f32`. Narrowing rounds to nearest, ties to even, as `f32` arithmetic
//! rounds, and keeps NaN a NaN.
//!
//! Keeping a Broyden history's `U` and `V` in `bf16` halves their memory and the bytes
//! an iteration streams; what it costs in f-evaluations is measured in the benches
//! (`half_table`), what it saves in time per low-rank product by `bandwidth`.
//!
//! ```
//! use solver_core::kernels::Bf16;
//! let b = Bf16::from_f32(1.0 + 1.0 / 512.0); // halfway between two bf16: ties to even
//! assert_eq!(b.to_f32(), 1.0);
//! assert_eq!(Bf16::from_f32(3.0).to_f32(), 3.0); // exact where 8 significand bits suffice
//! assert!(Bf16::from_f32(f32::NAN).to_f32().is_nan());
//! ```

use super::LowRankProduct;
use super::vector::Lanes;
use crate::Real;

/// A `bfloat16`: the upper 16 bits of an `f32` (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Bf16(u16);

impl Bf16 {
    /// Zero.
    pub const ZERO: Bf16 = Bf16(0);

    /// `x` rounded to the nearest `bf16`, ties to even; NaN stays NaN (quiet), ±∞ stays
    /// ±∞, and finite values beyond the largest `bf16` (about 3.39e38) round to ±∞ as
    /// `f32` arithmetic overflows.
    #[inline(always)]
    pub const fn from_f32(x: f32) -> Bf16 {
        let bits = x.to_bits();
        let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
        // A NaN keeps its sign and gets the quiet bit, so that none becomes an infinity
        // (a select, not a branch: the narrowing of eight lanes vectorises).
        let quiet = ((bits >> 16) as u16) | 0x0040;
        Bf16(if x.is_nan() { quiet } else { rounded })
    }

    /// The value as an `f32`, exactly.
    #[inline(always)]
    pub const fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }

    /// The raw bits.
    pub const fn to_bits(self) -> u16 {
        self.0
    }

    /// The `bf16` with these bits.
    pub const fn from_bits(bits: u16) -> Bf16 {
        Bf16(bits)
    }
}

/// An element type the rows of a Broyden history can be stored in, for arithmetic in
/// `T`: `T` itself, or [`Bf16`] for `T = f32`. Widening is exact and every kernel
/// computes in `T` whatever the rows are stored as, so a product over `bf16` rows gives
/// the bits of the same product over those rows widened to `f32`. Sealed; the methods
/// past [`narrow`](Self::narrow) are the kernels' and the executor's.
pub trait RowElem<T: Real>: Copy + Default + 'static + sealed::Sealed {
    /// The value in `T`, exactly.
    fn widen(self) -> T;
    /// `x` rounded to this type (nearest, ties to even).
    fn narrow(x: T) -> Self;
    /// The row itself when it already is `T` (so that the caller can take `T`'s own
    /// kernel); `None` for a narrower type.
    #[doc(hidden)]
    fn wide(row: &[Self]) -> Option<&[T]>;
    /// [`wide`](Self::wide), writable.
    #[doc(hidden)]
    fn wide_mut(row: &mut [Self]) -> Option<&mut [T]>;
    /// [`kernels::low_rank`](super::low_rank) over rows of this type.
    #[doc(hidden)]
    fn low_rank(p: &LowRankProduct<'_, T, Self>, y: &mut [T], ahead: Option<(&[T], &mut [T])>) -> bool;
    /// The fused secant pass for `k` pairs over rows of this type.
    #[doc(hidden)]
    #[cfg(simd)]
    fn secant(
        k: usize,
        p: &LowRankProduct<'_, T, Self>,
        out: &mut [Self],
        ahead: Option<(&[T], &mut [T])>,
        g: &mut [T],
        gn: &[T],
    ) -> Option<([T; 5], bool)>;
    /// The fused pair pass for `k` pairs over rows of this type.
    #[doc(hidden)]
    #[cfg(simd)]
    #[allow(clippy::too_many_arguments)]
    fn pair(
        k: usize,
        p: &LowRankProduct<'_, T, Self>,
        out: &mut [T],
        row: &mut [Self],
        crs: [T; 3],
        drop: bool,
        point: [&[T]; 1],
        trial: &mut [T],
        ahead: Option<&mut [T]>,
    ) -> Option<(bool, bool)>;
}

mod sealed {
    pub trait Sealed {}
    impl<T: crate::Real> Sealed for T {}
    impl Sealed for super::Bf16 {}
}

/// What the SIMD kernels need of a [`RowElem`]: loads and stores of lane chunks.
pub(crate) trait Elem<T: Real>: RowElem<T> {
    /// One `L`-lane chunk, widened.
    fn load<V: Lanes<T, L>, const L: usize>(c: &[Self; L]) -> V;
    /// The lanes `v` as stored in this type, and their value as stored (`v` itself for
    /// `T`; rounded for a narrower type).
    #[cfg(simd)]
    fn store<V: Lanes<T, L>, const L: usize>(v: V) -> ([Self; L], V);
}

impl<T: Real> RowElem<T> for T {
    #[inline(always)]
    fn widen(self) -> T {
        self
    }
    #[inline(always)]
    fn narrow(x: T) -> Self {
        x
    }
    #[inline(always)]
    fn wide(row: &[T]) -> Option<&[T]> {
        Some(row)
    }
    #[inline(always)]
    fn wide_mut(row: &mut [T]) -> Option<&mut [T]> {
        Some(row)
    }
    #[inline(always)]
    fn low_rank(p: &LowRankProduct<'_, T>, y: &mut [T], ahead: Option<(&[T], &mut [T])>) -> bool {
        super::low_rank(p, y, ahead)
    }
    #[cfg(simd)]
    #[inline(always)]
    fn secant(
        k: usize,
        p: &LowRankProduct<'_, T>,
        out: &mut [T],
        ahead: Option<(&[T], &mut [T])>,
        g: &mut [T],
        gn: &[T],
    ) -> Option<([T; 5], bool)> {
        T::simd_secant(k, p, out, ahead, g, gn)
    }
    #[cfg(simd)]
    #[inline(always)]
    fn pair(
        k: usize,
        p: &LowRankProduct<'_, T>,
        out: &mut [T],
        row: &mut [T],
        crs: [T; 3],
        drop: bool,
        point: [&[T]; 1],
        trial: &mut [T],
        ahead: Option<&mut [T]>,
    ) -> Option<(bool, bool)> {
        T::simd_pair(k, p, out, row, crs, drop, point, trial, ahead)
    }
}

impl<T: Real> Elem<T> for T {
    #[inline(always)]
    fn load<V: Lanes<T, L>, const L: usize>(c: &[T; L]) -> V {
        V::load(c)
    }
    #[cfg(simd)]
    #[inline(always)]
    fn store<V: Lanes<T, L>, const L: usize>(v: V) -> ([T; L], V) {
        (v.to_array(), v)
    }
}

impl RowElem<f32> for Bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(x: f32) -> Self {
        Bf16::from_f32(x)
    }
    #[inline(always)]
    fn wide(_: &[Bf16]) -> Option<&[f32]> {
        None
    }
    #[inline(always)]
    fn wide_mut(_: &mut [Bf16]) -> Option<&mut [f32]> {
        None
    }
    #[inline]
    fn low_rank(
        p: &LowRankProduct<'_, f32, Bf16>,
        y: &mut [f32],
        ahead: Option<(&[f32], &mut [f32])>,
    ) -> bool {
        super::low_rank_bf16(p, y, ahead)
    }
    #[cfg(simd)]
    #[inline]
    fn secant(
        k: usize,
        p: &LowRankProduct<'_, f32, Bf16>,
        out: &mut [Bf16],
        ahead: Option<(&[f32], &mut [f32])>,
        g: &mut [f32],
        gn: &[f32],
    ) -> Option<([f32; 5], bool)> {
        on_isa!(f32, wide::f32x8, super::avx::F32x8, 8, V => {
            super::fused::secant_simd::<f32, Bf16, V, 8>(k, p, out, ahead, g, gn)
        })
    }
    #[cfg(simd)]
    #[inline]
    fn pair(
        k: usize,
        p: &LowRankProduct<'_, f32, Bf16>,
        out: &mut [f32],
        row: &mut [Bf16],
        crs: [f32; 3],
        drop: bool,
        point: [&[f32]; 1],
        trial: &mut [f32],
        ahead: Option<&mut [f32]>,
    ) -> Option<(bool, bool)> {
        on_isa!(f32, wide::f32x8, super::avx::F32x8, 8, V => {
            super::fused::pair_simd::<f32, Bf16, V, 8>(k, p, out, row, crs, drop, point, trial, ahead)
        })
    }
}

impl Elem<f32> for Bf16 {
    #[inline(always)]
    fn load<V: Lanes<f32, L>, const L: usize>(c: &[Bf16; L]) -> V {
        V::load_bf16(c)
    }
    #[cfg(simd)]
    #[inline(always)]
    fn store<V: Lanes<f32, L>, const L: usize>(v: V) -> ([Bf16; L], V) {
        let stored = v.store_bf16();
        (stored, V::load_bf16(&stored))
    }
}

/// `buf` as `bf16`, two to each entry (the packed rows of a history kept in `bf16`).
#[inline]
pub(crate) fn packed(buf: &mut [f32]) -> &mut [Bf16] {
    let len = buf.len() * 2;
    // SAFETY: `Bf16` is a `u16` (`repr(transparent)`): two of them fill one `f32` (size
    // 4, alignment 4 ≥ 2), every bit pattern is a valid value of both, and the new slice
    // borrows `buf` mutably for its whole life.
    unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<Bf16>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest bf16 to `x` by exhaustive comparison in f64 of the two neighbours
    /// (ties to the even significand): an independent statement of the rounding.
    fn nearest(x: f32) -> u16 {
        let lo = (x.to_bits() >> 16) as u16; // truncation toward zero
        let hi = lo.wrapping_add(1);
        let (a, b) = (Bf16(lo).to_f32() as f64, Bf16(hi).to_f32() as f64);
        let (da, db) = ((x as f64 - a).abs(), (x as f64 - b).abs());
        if da < db || (da == db && lo.is_multiple_of(2)) { lo } else { hi }
    }

    #[test]
    fn every_bf16_survives_the_round_trip() {
        for bits in 0..=u16::MAX {
            let b = Bf16(bits);
            let back = Bf16::from_f32(b.to_f32());
            if b.to_f32().is_nan() {
                assert!(back.to_f32().is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(back, b, "{bits:#06x}");
            }
        }
    }

    #[test]
    fn narrowing_rounds_to_nearest_even() {
        // Every high half with a spread of low halves, including the exact tie 0x8000
        // and its neighbours; finite results only (the last binade is checked below).
        for hi in (0..=u16::MAX as u32).step_by(7) {
            for lo in [0u32, 1, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff] {
                let x = f32::from_bits((hi << 16) | lo);
                let near = Bf16(nearest(x)).to_f32();
                if !x.is_finite() || !near.is_finite() {
                    continue;
                }
                assert_eq!(Bf16::from_f32(x).to_bits(), nearest(x), "{:#010x}", x.to_bits());
            }
        }
    }

    /// Values that exercise every branch of the rounding: ties, carries into the
    /// exponent, the largest finite values, infinities, NaNs with payloads in either
    /// half, subnormals, zeros of both signs, and a spread of ordinary bits.
    fn awkward() -> std::vec::Vec<f32> {
        let mut bits = std::vec![
            0x3f80_8000,
            0x3f81_8000,
            0x3f80_7fff,
            0x3f80_8001,
            0x3fff_ffff,
            0x7f7f_ffff,
            0x7f7f_7fff,
            0x7f80_0000,
            0xff80_0000,
            0x7f80_0001,
            0xff80_0001,
            0x7fc0_0000,
            0xffff_ffff,
            0x0000_8000,
            0x0000_0001,
            0x8000_0000,
            0x0000_0000,
            0x807f_ffff,
        ];
        let mut x = 0x9e37_79b9u32;
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bits.push(x);
        }
        bits.into_iter().map(f32::from_bits).collect()
    }

    #[cfg(simd)]
    #[test]
    fn simd_narrowing_is_the_scalar_rounding() {
        let values = awkward();
        for c in values.as_chunks::<8>().0 {
            let expected = c.map(Bf16::from_f32);
            let v = <wide::f32x8 as Lanes<f32, 8>>::load(c);
            assert_eq!(v.store_bf16(), expected, "{:x?}", c.map(f32::to_bits));
            #[cfg(avx_dispatch)]
            if crate::kernels::isa::detected() == crate::kernels::isa::Isa::Avx {
                // SAFETY: the CPU has AVX (checked just above).
                let avx = unsafe {
                    crate::kernels::isa::with_avx(|| {
                        <crate::kernels::avx::F32x8 as Lanes<f32, 8>>::load(c).store_bf16()
                    })
                };
                assert_eq!(avx, expected);
            }
        }
    }

    #[test]
    fn specials() {
        assert_eq!(Bf16::from_f32(f32::INFINITY).to_f32(), f32::INFINITY);
        assert_eq!(Bf16::from_f32(f32::NEG_INFINITY).to_f32(), f32::NEG_INFINITY);
        assert_eq!(Bf16::from_f32(f32::MAX).to_f32(), f32::INFINITY);
        assert_eq!(Bf16::from_f32(-0.0).to_bits(), 0x8000);
        // A NaN whose payload sits in the low half only must not become ±∞.
        let nan = f32::from_bits(0x7f80_0001);
        assert!(nan.is_nan() && Bf16::from_f32(nan).to_f32().is_nan());
        assert!(Bf16::from_f32(-nan).to_f32().is_nan());
        // Subnormals round like everything else.
        let tiny = f32::from_bits(0x0000_8000);
        assert_eq!(Bf16::from_f32(tiny).to_bits(), nearest(tiny));
    }
}
