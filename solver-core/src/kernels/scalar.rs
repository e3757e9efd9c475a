//! Plain scalar reference implementations of the kernels.
//!
//! Every function here computes exactly what its namesake in [`super`] computes, one
//! element at a time with a single accumulator. They are the specification the SIMD
//! kernels are tested against, and a readable fallback for anyone modifying a solver.
//!
//! Like the SIMD kernels, they never panic: when slice lengths disagree they work on
//! the common prefix (the shorter length), exactly like [`Iterator::zip`].

use super::bf16::RowElem as Elem;
use crate::Real;

/// `Σ aᵢ bᵢ` over the common prefix of `a` and `b`.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    row_dot(a, b)
}

/// Euclidean norm `‖a‖₂`, square root from `libm`. Correct at every scale: when the
/// plain sum of squares overflows or underflows, it is recomputed with the entries
/// scaled by the largest magnitude.
pub fn norm<T: Real>(a: &[T]) -> T {
    finish_norm(dot(a, a), || scaled_norm(a.iter().copied()))
}

/// `‖a − b‖₂` over the common prefix, correct at every scale like [`norm`].
pub fn dist<T: Real>(a: &[T], b: &[T]) -> T {
    let mut s = T::ZERO;
    for (x, y) in a.iter().zip(b) {
        let d = *x - *y;
        s += d * d;
    }
    finish_norm(s, || scaled_norm(a.iter().zip(b).map(|(x, y)| *x - *y)))
}

/// The square root of a plain sum of squares `sum`, or, when that sum overflowed
/// (`∞`) or may have lost its value to underflow (below `T::MIN_POSITIVE`, which
/// includes 0 for a non-zero vector), the result of `slow`. Shared by the SIMD and the
/// scalar kernels, so that both are exact at every scale.
pub(crate) fn finish_norm<T: Real>(sum: T, slow: impl FnOnce() -> T) -> T {
    if sum.is_finite() && sum >= T::MIN_POSITIVE { sum.sqrt() } else { slow() }
}

/// `‖v‖₂` of the values of `v` (iterated twice), scaled by their largest magnitude so
/// that no square overflows or underflows: `max·√(Σ (vᵢ/max)²)`. NaN if any value is
/// NaN, `∞` if any is infinite.
pub(crate) fn scaled_norm<T: Real, I: Iterator<Item = T> + Clone>(v: I) -> T {
    let mut big = T::ZERO;
    for x in v.clone() {
        let ax = x.abs();
        if ax.is_nan() {
            return T::NAN;
        }
        big = big.max(ax);
    }
    if big == T::ZERO || !big.is_finite() {
        return big;
    }
    // Divide (not multiply by 1/big, which overflows for a subnormal big).
    let mut s = T::ZERO;
    for x in v {
        let y = x / big;
        s += y * y;
    }
    big * s.sqrt()
}

/// `g ← g − x` over the common prefix; returns `(‖g‖₂, ‖g − x‖₂)`, the norms of `g`
/// before and after, each correct at every scale like [`norm`].
pub fn sub_norms<T: Real>(x: &[T], g: &mut [T]) -> (T, T) {
    let (mut before, mut after) = (T::ZERO, T::ZERO);
    for (gi, xi) in g.iter_mut().zip(x) {
        let r = *gi - *xi;
        before += *gi * *gi;
        after += r * r;
        *gi = r;
    }
    finish_sub_norms(x, g, before, after)
}

/// The two norms of [`sub_norms`] from its sums of squares; when a sum overflowed or
/// underflowed, that norm is recomputed scaled. `g` already holds `g − x`, so the norm
/// before is recomputed from `(g − x) + x`, which equals the old `g` up to one rounding.
pub(crate) fn finish_sub_norms<T: Real>(x: &[T], g: &[T], before: T, after: T) -> (T, T) {
    let m = x.len().min(g.len());
    let (x, g) = (x.get(..m).unwrap_or_default(), g.get(..m).unwrap_or_default());
    let before = finish_norm(before, || scaled_norm(g.iter().zip(x).map(|(r, x)| *r + *x)));
    (before, finish_norm(after, || scaled_norm(g.iter().copied())))
}

/// `y ← y + alpha·x` over the common prefix.
pub fn axpy<T: Real>(alpha: T, x: &[T], y: &mut [T]) {
    row_axpy(alpha, x, y)
}

/// `out[i] = rowᵢ · x` for the rows of the row-major `rows` (each `n` long).
///
/// The number of rows used is `min(out.len(), rows.len() / n)`; other entries of `out`
/// are left untouched.
pub fn multi_dot<T: Real>(rows: &[T], n: usize, x: &[T], out: &mut [T]) {
    if n == 0 {
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(n)) {
        *o = dot(row, x);
    }
}

/// [`multi_dot`] with two vectors: `out_x[i] = rowᵢ · x`, `out_y[i] = rowᵢ · y` for the
/// first `min(out_x.len(), out_y.len(), rows.len() / n)` rows, over
/// `min(n, x.len(), y.len())` entries.
pub fn multi_dot2<T: Real>(rows: &[T], n: usize, x: &[T], y: &[T], out_x: &mut [T], out_y: &mut [T]) {
    let k = out_x.len().min(out_y.len());
    let m = x.len().min(y.len());
    let (x, y) = (x.get(..m).unwrap_or_default(), y.get(..m).unwrap_or_default());
    multi_dot(rows, n, x, out_x.get_mut(..k).unwrap_or_default());
    multi_dot(rows, n, y, out_y.get_mut(..k).unwrap_or_default());
}

/// `y ← y + Σᵢ coeffs[i]·rowᵢ` for the rows of the row-major `rows` (each `n` long).
///
/// The number of rows used is `min(coeffs.len(), rows.len() / n)`.
pub fn multi_axpy<T: Real>(rows: &[T], n: usize, coeffs: &[T], y: &mut [T]) {
    if n == 0 {
        return;
    }
    for (c, row) in coeffs.iter().zip(rows.chunks_exact(n)) {
        axpy(*c, row, y);
    }
}

/// Low-rank product `y ← y + alpha·Σᵢ aᵢ (bᵢ · x)`, that is `y += alpha·Aᵀ(B x)` with
/// `A`, `B` stored as rows (each `n` long).
///
/// With the rows of `a` being the columns of a matrix `U` and those of `b` the columns
/// of `V`, this is `y += alpha·U(Vᵀx)`: the product with the `n × n` matrix `U Vᵀ`
/// computed in `O(k·n)` for `k` rows instead of forming the matrix. Swapping `a` and `b`
/// gives `V(Uᵀx)`. The number of rows used is `min(a.len(), b.len()) / n`.
pub fn low_rank_acc<T: Real>(alpha: T, a: &[T], b: &[T], n: usize, x: &[T], y: &mut [T]) {
    low_rank_acc_rows(alpha, a, b, n, x, y)
}

/// [`low_rank_acc`] over rows of any element type `E`, widened where read.
fn low_rank_acc_rows<T: Real, E: Elem<T>>(alpha: T, a: &[E], b: &[E], n: usize, x: &[T], y: &mut [T]) {
    if n == 0 {
        return;
    }
    for (ar, br) in a.chunks_exact(n).zip(b.chunks_exact(n)) {
        let c = row_dot(br, x);
        row_axpy(alpha * c, ar, y);
    }
}

/// [`low_rank_acc`] over the row pairs of `a[0]`, `b[0]`, then those of `a[1]`, `b[1]`.
pub fn low_rank_acc_parts<T: Real>(alpha: T, a: [&[T]; 2], b: [&[T]; 2], n: usize, x: &[T], y: &mut [T]) {
    low_rank_acc(alpha, a[0], b[0], n, x, y);
    low_rank_acc(alpha, a[1], b[1], n, x, y);
}

/// [`low_rank_acc_parts`] in general (see [`super::low_rank`]): from `beta·s` when a
/// start is given, with given coefficients, and the rows' dots with `w` (each by
/// [`dot`]) when `ahead` asks and the pairs fit one block of eight.
pub fn low_rank<T: Real>(
    p: &super::LowRankProduct<'_, T>,
    y: &mut [T],
    ahead: Option<(&[T], &mut [T])>,
) -> bool {
    low_rank_rows(p, y, ahead)
}

/// [`low_rank`] over rows of any element type `E` (each entry widened to `T` where it
/// is read), so a product over `bf16` rows gives the bits of the product over those
/// rows in `f32`.
pub(crate) fn low_rank_rows<T: Real, E: Elem<T>>(
    p: &super::LowRankProduct<'_, T, E>,
    y: &mut [T],
    ahead: Option<(&[T], &mut [T])>,
) -> bool {
    let n = p.n;
    if n == 0 {
        return false;
    }
    let y = y.get_mut(..n.min(y.len())).unwrap_or_default();
    if let Some((beta, s)) = p.start {
        for (yi, si) in y.iter_mut().zip(s) {
            *yi = if beta == T::ONE {
                *si
            } else if beta == -T::ONE {
                -*si
            } else {
                beta * *si
            };
        }
    }
    match (p.coefs, ahead) {
        // The plain product, as `low_rank_acc_parts`.
        (super::Coefs::Dots(x), None) => {
            low_rank_acc_rows(p.alpha, p.a[0], p.b[0], n, x, y);
            low_rank_acc_rows(p.alpha, p.a[1], p.b[1], n, x, y);
            false
        }
        (coefs, ahead) => low_rank_given_or_ahead(p, coefs, y, ahead),
    }
}

/// The rest of [`low_rank`] (out of line: the plain product takes no stack for it).
#[inline(never)]
fn low_rank_given_or_ahead<T: Real, E: Elem<T>>(
    p: &super::LowRankProduct<'_, T, E>,
    coefs: super::Coefs<'_, T>,
    y: &mut [T],
    ahead: Option<(&[T], &mut [T])>,
) -> bool {
    let n = p.n;
    if n == 0 {
        return false;
    }
    let part = |k: usize| {
        let len = p.a[k].len().min(p.b[k].len()) / n * n;
        let (a, b) = (p.a[k].get(..len).unwrap_or_default(), p.b[k].get(..len).unwrap_or_default());
        a.chunks_exact(n).zip(b.chunks_exact(n))
    };
    let pairs = part(0).chain(part(1));
    let mut k = part(0).len() + part(1).len();
    match coefs {
        super::Coefs::Dots(x) => {
            for (ar, br) in pairs {
                row_axpy(p.alpha * row_dot(br, x), ar, y);
            }
        }
        super::Coefs::Given(g) => {
            k = k.min(g.len());
            for ((ar, _), c) in pairs.zip(g) {
                row_axpy(p.alpha * *c, ar, y);
            }
        }
    }
    let Some((w, out)) =
        ahead.filter(|(w, out)| (1..=8).contains(&k) && out.len() >= k && w.len() >= n && y.len() == n)
    else {
        return false;
    };
    for (o, (ar, _)) in out.iter_mut().zip(part(0).chain(part(1))).take(k) {
        *o = row_dot(ar, w);
    }
    true
}

/// [`dot`] with the first vector of any element type `E`, widened (for `E = T`, `dot`
/// itself).
fn row_dot<T: Real, E: Elem<T>>(row: &[E], x: &[T]) -> T {
    let mut s = T::ZERO;
    for (r, xi) in row.iter().zip(x) {
        s += r.widen() * *xi;
    }
    s
}

/// [`axpy`] of a vector of any element type `E`, widened (for `E = T`, `axpy` itself).
fn row_axpy<T: Real, E: Elem<T>>(alpha: T, row: &[E], y: &mut [T]) {
    for (yi, r) in y.iter_mut().zip(row) {
        *yi += alpha * r.widen();
    }
}
