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

use super::vector::Lanes;

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
        if x.is_nan() {
            // Keep the sign and set the quiet bit, so that no NaN becomes an infinity.
            return Bf16(((bits >> 16) as u16) | 0x0040);
        }
        let round = 0x7fff + ((bits >> 16) & 1);
        Bf16((bits.wrapping_add(round) >> 16) as u16)
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

/// An element type the row kernels read rows of, for arithmetic in `T`: `T` itself, or
/// [`Bf16`] for `T = f32`. Widening is exact; the kernels compute in `T` whatever the
/// rows are stored as, so a product over `bf16` rows gives the bits of the same product
/// over those rows widened to `f32`.
pub(crate) trait Elem<T>: Copy + 'static {
    /// The value in `T`, exactly.
    fn widen(self) -> T;
    /// The row itself when it already is `T` (so that the caller can take `T`'s own
    /// kernel); `None` for a narrower type.
    fn wide(row: &[Self]) -> Option<&[T]>;
    /// One `L`-lane chunk, widened.
    #[inline(always)]
    fn load<V: Lanes<T, L>, const L: usize>(c: &[Self; L]) -> V {
        V::load(&c.map(Self::widen))
    }
}

impl<T: crate::Real> Elem<T> for T {
    #[inline(always)]
    fn widen(self) -> T {
        self
    }
    #[inline(always)]
    fn wide(row: &[T]) -> Option<&[T]> {
        Some(row)
    }
    #[inline(always)]
    fn load<V: Lanes<T, L>, const L: usize>(c: &[T; L]) -> V {
        V::load(c)
    }
}

impl Elem<f32> for Bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn wide(_: &[Bf16]) -> Option<&[f32]> {
        None
    }
    #[inline(always)]
    fn load<V: Lanes<f32, L>, const L: usize>(c: &[Bf16; L]) -> V {
        V::load_bf16(c)
    }
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
