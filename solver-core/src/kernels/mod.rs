//! Vector kernels used by every solver: dot products, norms, axpy, the fixed-point
//! residual with its norms, and the fused low-rank products `U(Vᵀx)` / `V(Uᵀx)`.
//!
//! These are the only places where the solvers touch `O(n)` data, so they are written
//! for speed with `wide::f32x8` (`f32`) or `wide::f64x4` (`f64`), generic over the lane
//! type, and several independent accumulators on targets with
//! vector registers (x86, AArch64, wasm, ARM with NEON); microcontrollers use the
//! scalar kernels (see `SIMD` in the source). On x86 the same loops are also compiled
//! for AVX's 256-bit registers and chosen at run time where the CPU has them, with the
//! same bits as the baseline SSE2 kernels ([`isa`]). The module
//! [`scalar`] holds a plain reference implementation of each; tests compare the two on
//! random inputs, and the AVX kernels with the baseline ones bit for bit.
//!
//! None of these functions panics or allocates. When slice lengths disagree they work
//! on the common prefix, like [`Iterator::zip`].
//!
//! # Rounding
//!
//! The reductions ([`dot`], [`norm`], [`dist`], the norms of [`sub_norms`],
//! [`multi_dot`] and the coefficients of [`low_rank_acc`]) sum in a different order than [`scalar`] (eight lanes, several
//! accumulators, fused multiply-add where the build targets it: never in the run-time AVX kernels), so their results differ
//! from the reference by normal reassociation error, about `n·ε·Σ|terms|` in the
//! worst case and far less in practice. [`axpy`] and [`multi_axpy`] add in exactly the
//! reference order without fused multiply-add, so they are bit-for-bit equal to
//! [`scalar::axpy`] and [`scalar::multi_axpy`].

/// Calls `f::<R>(args…)` with the const `R` equal to the runtime row count `r`
/// (`1..=block::BLOCK`; larger values are treated as `block::BLOCK`, zero is never passed).
macro_rules! with_rows {
    ($r:expr, $f:ident[$($g:tt),*]($($arg:expr),* $(,)?)) => {
        match $r {
            1 => $f::<$($g,)* 1>($($arg),*),
            2 => $f::<$($g,)* 2>($($arg),*),
            3 => $f::<$($g,)* 3>($($arg),*),
            4 => $f::<$($g,)* 4>($($arg),*),
            5 => $f::<$($g,)* 5>($($arg),*),
            6 => $f::<$($g,)* 6>($($arg),*),
            7 => $f::<$($g,)* 7>($($arg),*),
            _ => $f::<$($g,)* { $crate::kernels::block::BLOCK }>($($arg),*),
        }
    };
}

/// `$body` with the lane type `$V` of the instruction set the kernels run with
/// ([`kernels::isa`](crate::kernels::isa)): on x86 with AVX at run time,
/// `kernels::avx`'s types inside a function compiled for AVX; otherwise `$wide`.
macro_rules! on_isa {
    ($t:ty, $wide:ty, $avx:ty, $lanes:literal, $V:ident => $body:expr) => {{
        #[cfg(avx_dispatch)]
        if crate::kernels::isa::avx() {
            type $V = $avx;
            // SAFETY: `avx()` is true only where the CPU and the OS support AVX.
            return unsafe {
                crate::kernels::isa::with_avx(
                    #[inline(always)]
                    || $body,
                )
            };
        }
        type $V = $wide;
        $body
    }};
}

#[cfg(avx_dispatch)]
pub(crate) mod avx;
pub mod bf16;
pub(crate) mod block;
#[cfg(simd)]
pub(crate) mod fused;
pub mod isa;
pub mod scalar;
pub(crate) mod vector;

pub use bf16::{Bf16, RowElem};

use crate::Real;

/// Whether the target has vector registers that `wide`'s types map onto. Elsewhere
/// (Cortex-M: at most a scalar FPU) `f32x8` would be eight scalar lanes: no faster,
/// larger code, and several hundred bytes of stack for the spilled accumulators, so
/// those targets use the [`scalar`] kernels, which the tests check the SIMD ones
/// against. `cfg(simd)` is set by the build script on x86, AArch64, wasm32 and ARM with
/// NEON; only there do the fused operations of a Broyden update exist.
pub(crate) const SIMD: bool = cfg!(simd);

/// `Σ aᵢ bᵢ` over the common prefix of `a` and `b`.
///
/// Cost: `m = min(a.len(), b.len())` multiply-adds, one pass over each slice, with
/// four independent 8-lane accumulators.
#[inline]
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    if SIMD { T::simd_dot(a, b) } else { scalar::dot(a, b) }
}

/// Euclidean norm `‖a‖₂ = √(Σ aᵢ²)`, square root from `libm`.
///
/// Cost: `a.len()` multiply-adds (one pass over `a`) and one square root. Correct at
/// every scale: when `Σ aᵢ²` overflows (in `f32`, entries beyond about 1.8e19) or
/// underflows (below about 1e-19), two more passes recompute it scaled by the largest
/// magnitude, as the reference does.
#[inline]
pub fn norm<T: Real>(a: &[T]) -> T {
    scalar::finish_norm(dot(a, a), || scalar::scaled_norm(a.iter().copied()))
}

/// Euclidean distance `‖a − b‖₂` over the common prefix of `a` and `b`.
///
/// Cost: `m = min(a.len(), b.len())` subtractions and multiply-adds in one pass over
/// each slice, and one square root; no temporary vector is formed. Correct at every
/// scale, like [`norm`].
#[inline]
pub fn dist<T: Real>(a: &[T], b: &[T]) -> T {
    if !SIMD {
        return scalar::dist(a, b);
    }
    let s = T::simd_dist2(a, b);
    scalar::finish_norm(s, || scalar::scaled_norm(a.iter().zip(b).map(|(x, y)| *x - *y)))
}

/// `g ← g − x` over the common prefix, returning `(‖g‖₂, ‖g − x‖₂)`: the norms of `g`
/// before and after. A fixed-point solver's residual `f(x) − x` with its norm and the
/// convergence scale `‖f(x)‖`, in one pass instead of three.
///
/// Cost: one read pass over `x` and one read-write pass over `g`. The differences are
/// bit-identical to [`scalar::sub_norms`]'s; the norms differ by reassociation. Correct
/// at every scale, like [`norm`] (the scaled fallback recomputes the norm before from
/// `(g − x) + x`, the old `g` up to one rounding).
#[inline]
pub fn sub_norms<T: Real>(x: &[T], g: &mut [T]) -> (T, T) {
    if !SIMD {
        return scalar::sub_norms(x, g);
    }
    let (before, after) = T::simd_sub_norms(x, g);
    scalar::finish_sub_norms(x, g, before, after)
}

/// Whether every entry of `a` is finite (no NaN, no ±∞).
///
/// Cost: one pass over `a`, without early exit. With vector registers it sums
/// `aᵢ·0` (`±0` for every finite value, NaN for the others) in sixteen independent
/// lanes, which the compiler vectorises, instead of testing entry by entry; elsewhere it
/// tests four entries per step of the loop.
#[inline]
pub fn all_finite<T: Real>(a: &[T]) -> bool {
    if !SIMD {
        let (fours, rest) = a.as_chunks::<4>();
        return fours
            .iter()
            .all(|[a, b, c, d]| a.is_finite() && b.is_finite() && c.is_finite() && d.is_finite())
            && rest.iter().all(|x| x.is_finite());
    }
    let (chunks, rest) = a.as_chunks::<16>();
    let mut acc = [T::ZERO; 16];
    for c in chunks {
        for (s, x) in acc.iter_mut().zip(c) {
            *s += *x * T::ZERO;
        }
    }
    acc.iter().all(|s| *s == T::ZERO) && rest.iter().all(|x| x.is_finite())
}

/// `dst ← src` over the common prefix (never panics, unlike `copy_from_slice`).
#[inline]
pub fn copy<T: Copy>(src: &[T], dst: &mut [T]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// `y ← y + alpha·x` over the common prefix of `x` and `y`.
///
/// Cost: `m = min(x.len(), y.len())` multiply-adds, one read pass over `x` and one
/// read-write pass over `y`. Bit-identical to [`scalar::axpy`].
#[inline]
pub fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    if SIMD { T::simd_axpy(alpha, x, y) } else { scalar::axpy(alpha, x, y) }
}

/// `out[i] = rowᵢ · x` for the rows of the row-major `rows` (each `n` long).
///
/// The number of rows used is `k = min(out.len(), rows.len() / n)`; other entries of
/// `out` are left untouched (all of them when `n == 0`). Each dot product runs over
/// the common prefix of the row and `x`, i.e. `m = min(n, x.len())` entries.
///
/// Cost: `k·m` multiply-adds. The rows are taken in blocks of up to eight, and each
/// block makes a single pass over `x` (one load of each lane chunk of `x` serves
/// all rows of the block), so `x` is read `⌈k/8⌉` times rather than `k` times.
#[inline]
pub fn multi_dot<T: Real>(rows: &[T], n: usize, x: &[T], out: &mut [T]) {
    if SIMD { T::simd_multi_dot(rows, n, x, out) } else { scalar::multi_dot(rows, n, x, out) }
}

/// `out_x[i] = rowᵢ · x` and `out_y[i] = rowᵢ · y` for the rows of the row-major
/// `rows` (each `n` long), in one pass over the rows.
///
/// The number of rows used is `k = min(out_x.len(), out_y.len(), rows.len() / n)`; the
/// dot products run over `m = min(n, x.len(), y.len())` entries. Bit for bit the same as
/// `multi_dot(rows, n, x, out_x)` and `multi_dot(rows, n, y, out_y)` over those `m`
/// entries (each product is accumulated the same way), at the cost of one read of the
/// rows instead of two: Anderson's Gram row and right-hand side share their rows.
#[inline]
pub fn multi_dot2<T: Real>(rows: &[T], n: usize, x: &[T], y: &[T], out_x: &mut [T], out_y: &mut [T]) {
    if SIMD {
        T::simd_multi_dot2(rows, n, x, y, out_x, out_y)
    } else {
        scalar::multi_dot2(rows, n, x, y, out_x, out_y)
    }
}

/// `y ← y + Σᵢ coeffs[i]·rowᵢ` for the rows of the row-major `rows` (each `n` long).
///
/// The number of rows used is `k = min(coeffs.len(), rows.len() / n)` (none when
/// `n == 0`). Each row is added over the common prefix of the row and `y`, i.e.
/// `m = min(n, y.len())` entries.
///
/// Cost: `k·m` multiply-adds. The rows are taken in blocks of up to eight, and each
/// block makes a single pass over `y`: each lane chunk of `y` is loaded once, gets
/// the block's rows added in order, and is stored once, so `y` is read and written
/// `⌈k/8⌉` times rather than `k` times. Bit-identical to [`scalar::multi_axpy`].
#[inline]
pub fn multi_axpy<T: Real>(rows: &[T], n: usize, coeffs: &[T], y: &mut [T]) {
    if SIMD { T::simd_multi_axpy(rows, n, coeffs, y) } else { scalar::multi_axpy(rows, n, coeffs, y) }
}

/// Low-rank product `y ← y + alpha·Σᵢ aᵢ (bᵢ · x)`, that is `y += alpha·Aᵀ(B x)` with
/// `A`, `B` stored as rows (each `n` long).
///
/// With the rows of `a` being the columns of a matrix `U` and those of `b` the columns
/// of `V`, this is `y += alpha·U(Vᵀx)`: the product with the `n × n` matrix `U Vᵀ`
/// computed in `O(k·n)` for `k` rows instead of forming the matrix. Swapping `a` and `b`
/// gives `V(Uᵀx)`. The number of rows used is `k = min(a.len(), b.len()) / n` (none when
/// `n == 0`); the dot products `bᵢ · x` run over `min(n, x.len())` entries and the
/// updates of `y` over `min(n, y.len())` entries.
///
/// Cost: `2·k·n` multiply-adds. Fused: for each block of up to eight row pairs, the
/// block's coefficients `alpha·(bᵢ · x)` are computed in one pass over `x` into an
/// eight-entry stack array, then added in one pass over `y`. No heap, no `O(k)` or
/// `O(n)` temporary.
#[inline]
pub fn low_rank_acc<T: Real>(alpha: T, a: &[T], b: &[T], n: usize, x: &[T], y: &mut [T]) {
    low_rank_acc_parts(alpha, [a, &[]], [b, &[]], n, x, y)
}

/// [`low_rank_acc`] over rows held in two parts: the row pairs of `a[0]` and `b[0]`,
/// then those of `a[1]` and `b[1]` (each part's count is the smaller of its two, as in
/// `low_rank_acc`): a set of stored pairs with one left out in the middle.
///
/// Cost: as [`low_rank_acc`] over all the rows, with the blocks of up to eight taken
/// across the two parts, so a gap costs no extra pass over `x` or `y`. The updates of
/// `y` are bit-identical to [`scalar::low_rank_acc_parts`]'s when the coefficients
/// agree (the rows are added in the same order).
#[inline]
pub fn low_rank_acc_parts<T: Real>(alpha: T, a: [&[T]; 2], b: [&[T]; 2], n: usize, x: &[T], y: &mut [T]) {
    let p = LowRankProduct { alpha, a, b, n, coefs: Coefs::Dots(x), start: None };
    low_rank(&p, y, None);
}

/// Where the coefficients `cᵢ = bᵢ · x` of a [`LowRankProduct`] come from.
#[derive(Clone, Copy, Debug)]
pub enum Coefs<'a, T> {
    /// Computed by the product: the rows of `b` dotted with `x`, in blocks of up to eight
    /// rows, each block in one pass over `x` (bit for bit [`multi_dot`]'s values for the
    /// block's rows).
    Dots(&'a [T]),
    /// Given, one per row pair in order (`alpha` not applied): for example the dots
    /// [`low_rank`]'s `ahead` formed while an earlier product read the same rows. Only
    /// as many pairs as there are coefficients are used.
    Given(&'a [T]),
}

/// A low-rank product `y ← start + alpha·Σᵢ aᵢ cᵢ` over row pairs held in two parts (as
/// [`low_rank_acc_parts`] takes them), with `start` either `y` itself or `beta·s`, and
/// `cᵢ` the dot products `bᵢ · x` or given ([`Coefs`]).
#[derive(Clone, Copy, Debug)]
pub struct LowRankProduct<'a, T, E = T> {
    /// The factor of the sum.
    pub alpha: T,
    /// The rows added, in two parts (rows of `n`).
    pub a: [&'a [E]; 2],
    /// The rows dotted (paired with those of `a`).
    pub b: [&'a [E]; 2],
    /// The length of a row.
    pub n: usize,
    /// The coefficients.
    pub coefs: Coefs<'a, T>,
    /// `Some((beta, s))`: `y` starts from `beta·s` (entry by entry `beta * sᵢ`, as a
    /// scale into `y` would make it), read in the same pass; `None`: from `y`.
    pub start: Option<(T, &'a [T])>,
}

/// The low-rank product `p` into `y` (over `min(n, y.len())` entries): in blocks of up
/// to eight row pairs, each block one pass over `x` for its coefficients (unless given)
/// and one pass over `y` (the first block's also reads `s` instead of `y`).
///
/// `ahead = Some((w, out))` asks, while the pass over `y` reads the rows of `a`, for
/// their dot products with `w` into `out` (`out[i] = aᵢ · w`): the coefficients of a
/// following product whose `b` is this one's `a`, so that it need not read those rows
/// again ([`Coefs::Given`]). They are formed, bit for bit [`multi_dot`]'s values, when
/// the pairs fit one block (one to eight), `out` has room, `w` and `y` have `n`
/// entries; the return value says whether they were. Nothing is formed otherwise.
///
/// Cost: `2·k·n` multiply-adds for `k` pairs (`k·n` with given coefficients), `k·n`
/// more for `ahead`. No heap, nothing but eight-entry stack arrays. The updates of `y`
/// are bit-identical to [`scalar::low_rank`]'s when the coefficients agree; and with
/// `start`, to a scale of `s` into `y` followed by the product.
#[inline]
pub fn low_rank<T: Real>(p: &LowRankProduct<'_, T>, y: &mut [T], ahead: Option<(&[T], &mut [T])>) -> bool {
    if SIMD { T::simd_low_rank(p, y, ahead) } else { scalar::low_rank(p, y, ahead) }
}

/// [`low_rank`] over rows stored as [`Bf16`] (a history kept in half the memory): each
/// row entry is widened to `f32` as it is loaded and all arithmetic is `f32`, so the
/// result is bit for bit that of [`low_rank`] over the same rows widened to `f32` (the
/// same order of every operation, on every instruction set), while the rows stream
/// half the bytes.
///
/// ```
/// use solver_core::kernels::{self, Bf16, Coefs, LowRankProduct};
/// let n = 4;
/// let wide = [1.0f32, 2.0, 3.0, 4.0, 0.5, 0.25, 0.125, 1.0]; // two rows, exact in bf16
/// let half = wide.map(Bf16::from_f32);
/// let x = [1.0f32, 0.0, -1.0, 2.0];
/// let (mut y, mut y_half) = ([0.0f32; 4], [0.0f32; 4]);
/// let p = LowRankProduct { alpha: 1.0, a: [&wide[..], &[]], b: [&wide[..], &[]], n, coefs: Coefs::Dots(&x), start: None };
/// kernels::low_rank(&p, &mut y, None);
/// let q = LowRankProduct { alpha: 1.0, a: [&half[..], &[]], b: [&half[..], &[]], n, coefs: Coefs::Dots(&x), start: None };
/// kernels::low_rank_bf16(&q, &mut y_half, None);
/// assert_eq!(y, y_half);
/// ```
#[inline]
pub fn low_rank_bf16(
    p: &LowRankProduct<'_, f32, Bf16>,
    y: &mut [f32],
    ahead: Option<(&[f32], &mut [f32])>,
) -> bool {
    #[cfg(simd)]
    {
        on_isa!(f32, wide::f32x8, avx::F32x8, 8, V => block::low_rank::<f32, Bf16, V, 8>(p, y, ahead))
    }
    #[cfg(not(simd))]
    scalar::low_rank_rows(p, y, ahead)
}
