//! The float types the solvers run in: [`Real`], implemented for `f32` and `f64`.
//!
//! Every solver, kernel and setting is generic over `T: Real`, with `f32` as the
//! default: `Broyden<N, M>` is the `f32` solver and `Broyden<N, M, f64>` the `f64` one.
//! `f32` halves the memory and doubles the SIMD width; `f64` is for root finding, gradient
//! checks and problems whose `f32` rounding floor lies above the tolerance.
//!
//! The trait holds what the solvers need of a float: a few constants (so that defaults
//! stay `const`), `libm`'s square root, and the entry points of the SIMD kernels
//! ([`kernels`](crate::kernels)), which run on `wide::f32x8` for `f32` and `wide::f64x4`
//! for `f64`.

use core::fmt::{Debug, Display};
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

#[allow(unused_imports)] // the lane type of the AVX kernels has its methods in the trait
use crate::kernels::vector::Lanes as _;
use crate::kernels::{block, vector};

/// A float type the solvers run in: `f32` or `f64`. Sealed: the kernels and their tests
/// exist for these two.
pub trait Real:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + private::Sealed
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `2`.
    const TWO: Self;
    /// `0.5`.
    const HALF: Self;
    /// `10⁻⁴` (the Armijo factor of Broyden's line search).
    const E_4: Self;
    /// `10⁻⁶` (the default relative tolerance and safeguard thresholds).
    const E_6: Self;
    /// `10⁴` (the default divergence factor).
    const E4: Self;
    /// `+∞`.
    const INFINITY: Self;
    /// NaN.
    const NAN: Self;
    /// The smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// `√ε` (ε the machine epsilon): the relative step of a finite difference.
    const SQRT_EPSILON: Self;
    /// Bytes of one value.
    const BYTES: usize;
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// The narrow type a Broyden history can keep its rows in: [`Bf16`](crate::kernels::Bf16)
    /// for `f32`; `f64` itself for `f64` (which has no narrow history).
    #[doc(hidden)]
    type Half: crate::kernels::RowElem<Self>;
    /// A buffer of `T` as rows of [`Self::Half`]: two `bf16` to each `f32` entry; an `f64`
    /// buffer as itself.
    #[doc(hidden)]
    fn half_rows(buf: &mut [Self]) -> &mut [Self::Half];

    /// Square root (`libm`).
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Whether the value is neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
    /// The larger of two values (the other one when one is NaN).
    fn max(self, other: Self) -> Self;
    /// The nearest value of this type (`as` conversion).
    fn from_f64(x: f64) -> Self;
    /// The value as `f64` (exact).
    fn to_f64(self) -> f64;

    /// SIMD `Σ aᵢ bᵢ` over the common prefix (see [`kernels::dot`](crate::kernels::dot)).
    #[doc(hidden)]
    fn simd_dot(a: &[Self], b: &[Self]) -> Self;
    /// SIMD `Σ (aᵢ − bᵢ)²` over the common prefix.
    #[doc(hidden)]
    fn simd_dist2(a: &[Self], b: &[Self]) -> Self;
    /// SIMD `y ← y + alpha·x`.
    #[doc(hidden)]
    fn simd_axpy(alpha: Self, x: &[Self], y: &mut [Self]);
    /// SIMD `g ← g − x` with the sums of squares before and after.
    #[doc(hidden)]
    fn simd_sub_norms(x: &[Self], g: &mut [Self]) -> (Self, Self);
    /// SIMD [`kernels::multi_dot`](crate::kernels::multi_dot).
    #[doc(hidden)]
    fn simd_multi_dot(rows: &[Self], n: usize, x: &[Self], out: &mut [Self]);
    /// SIMD [`kernels::multi_axpy`](crate::kernels::multi_axpy).
    #[doc(hidden)]
    fn simd_multi_axpy(rows: &[Self], n: usize, coeffs: &[Self], y: &mut [Self]);
    /// SIMD [`kernels::multi_dot2`](crate::kernels::multi_dot2).
    #[doc(hidden)]
    fn simd_multi_dot2(
        rows: &[Self],
        n: usize,
        x: &[Self],
        y: &[Self],
        out_x: &mut [Self],
        out_y: &mut [Self],
    );
    /// SIMD `kernels::fused::secant` for `k` pairs.
    #[doc(hidden)]
    #[cfg(simd)]
    fn simd_secant(
        k: usize,
        p: &crate::kernels::LowRankProduct<'_, Self>,
        out: &mut [Self],
        ahead: Option<(&[Self], &mut [Self])>,
        g: &mut [Self],
        gn: &[Self],
    ) -> Option<([Self; 5], bool)>;
    /// SIMD `kernels::fused::pair` for `k` pairs.
    #[doc(hidden)]
    #[cfg(simd)]
    #[allow(clippy::too_many_arguments)]
    fn simd_pair(
        k: usize,
        p: &crate::kernels::LowRankProduct<'_, Self>,
        out: &mut [Self],
        row: &mut [Self],
        crs: [Self; 3],
        drop: bool,
        point: [&[Self]; 1],
        trial: &mut [Self],
        ahead: Option<&mut [Self]>,
    ) -> Option<(bool, bool)>;
    /// SIMD [`kernels::low_rank`](crate::kernels::low_rank).
    #[doc(hidden)]
    fn simd_low_rank(
        p: &crate::kernels::LowRankProduct<'_, Self>,
        y: &mut [Self],
        ahead: Option<(&[Self], &mut [Self])>,
    ) -> bool;
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

macro_rules! real {
    ($t:ty, $simd:ty, $avx:ty, $lanes:literal, $sqrt:path, $sqrt_eps:literal, $name:literal, $half:ty, $half_rows:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const TWO: Self = 2.0;
            const HALF: Self = 0.5;
            const E_4: Self = 1e-4;
            const E_6: Self = 1e-6;
            const E4: Self = 1e4;
            const INFINITY: Self = <$t>::INFINITY;
            const NAN: Self = <$t>::NAN;
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
            const SQRT_EPSILON: Self = $sqrt_eps;
            const BYTES: usize = core::mem::size_of::<$t>();
            const NAME: &'static str = $name;
            type Half = $half;

            #[inline]
            fn half_rows(buf: &mut [Self]) -> &mut [Self::Half] {
                $half_rows(buf)
            }

            #[inline]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn simd_dot(a: &[Self], b: &[Self]) -> Self {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    vector::reduce2::<$t, $t, V, $lanes>(a, b, |s, x, y| x.mul_add(y, s), |s, x, y| s + x * y)
                })
            }
            #[inline]
            fn simd_dist2(a: &[Self], b: &[Self]) -> Self {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    vector::reduce2::<$t, $t, V, $lanes>(
                        a,
                        b,
                        |s, x, y| {
                            let d = x - y;
                            d.mul_add(d, s)
                        },
                        |s, x, y| {
                            let d = x - y;
                            s + d * d
                        },
                    )
                })
            }
            #[inline]
            fn simd_axpy(alpha: Self, x: &[Self], y: &mut [Self]) {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    vector::axpy::<$t, $t, V, $lanes>(alpha, x, y)
                })
            }
            #[inline]
            fn simd_sub_norms(x: &[Self], g: &mut [Self]) -> (Self, Self) {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    vector::sub_norms::<$t, V, $lanes>(x, g)
                })
            }
            #[inline]
            fn simd_multi_dot(rows: &[Self], n: usize, x: &[Self], out: &mut [Self]) {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    block::multi_dot::<$t, V, $lanes>(rows, n, x, out)
                })
            }
            #[inline]
            fn simd_multi_axpy(rows: &[Self], n: usize, coeffs: &[Self], y: &mut [Self]) {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    block::multi_axpy::<$t, V, $lanes>(rows, n, coeffs, y)
                })
            }
            #[inline]
            fn simd_multi_dot2(
                rows: &[Self],
                n: usize,
                x: &[Self],
                y: &[Self],
                out_x: &mut [Self],
                out_y: &mut [Self],
            ) {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    block::multi_dot2::<$t, V, $lanes>(rows, n, x, y, out_x, out_y)
                })
            }
            #[inline]
            #[cfg(simd)]
            fn simd_secant(
                k: usize,
                p: &crate::kernels::LowRankProduct<'_, Self>,
                out: &mut [Self],
                ahead: Option<(&[Self], &mut [Self])>,
                g: &mut [Self],
                gn: &[Self],
            ) -> Option<([Self; 5], bool)> {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    crate::kernels::fused::secant_simd::<$t, $t, V, $lanes>(k, p, out, ahead, g, gn)
                })
            }
            #[inline]
            #[cfg(simd)]
            fn simd_pair(
                k: usize,
                p: &crate::kernels::LowRankProduct<'_, Self>,
                out: &mut [Self],
                row: &mut [Self],
                crs: [Self; 3],
                drop: bool,
                point: [&[Self]; 1],
                trial: &mut [Self],
                ahead: Option<&mut [Self]>,
            ) -> Option<(bool, bool)> {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    crate::kernels::fused::pair_simd::<$t, $t, V, $lanes>(
                        k, p, out, row, crs, drop, point, trial, ahead,
                    )
                })
            }
            #[inline]
            fn simd_low_rank(
                p: &crate::kernels::LowRankProduct<'_, Self>,
                y: &mut [Self],
                ahead: Option<(&[Self], &mut [Self])>,
            ) -> bool {
                on_isa!($t, $simd, $avx, $lanes, V => {
                    block::low_rank::<$t, $t, V, $lanes>(p, y, ahead)
                })
            }
        }
    };
}

real!(
    f32,
    wide::f32x8,
    crate::kernels::avx::F32x8,
    8,
    libm::sqrtf,
    3.4526698e-4,
    "f32",
    crate::kernels::Bf16,
    crate::kernels::bf16::packed
);
real!(
    f64,
    wide::f64x4,
    crate::kernels::avx::F64x4,
    4,
    libm::sqrt,
    1.4901161193847656e-8,
    "f64",
    f64,
    core::convert::identity
);
