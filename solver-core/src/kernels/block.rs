//! Multi-row SIMD kernels: `multi_dot`, `multi_dot2`, `multi_axpy` and the fused
//! `low_rank_acc`.
//!
//! Rows are processed in blocks of up to [`BLOCK`] rows, each block a contiguous
//! sub-slice of the row-major storage. The block size `R` is a const generic, so each
//! block's per-row accumulators and coefficients live in fixed-size arrays (registers
//! or a bounded stack frame), and every block makes a single pass over the shared
//! vector.

use super::bf16::Elem;
use super::vector::{self, Lanes};
use super::{Coefs, LowRankProduct};
use crate::Real;

/// Maximum number of rows handled in one pass over the shared vector.
pub(super) const BLOCK: usize = 8;

/// The 8-lane chunks and the scalar tails of the `R` rows of a block.
pub(super) type RowParts<'a, T, const R: usize, const L: usize> = ([&'a [[T; L]]; R], [&'a [T]; R]);

/// The `R` rows of a block: slices of at least the length the kernel works on, taken
/// from one contiguous run of rows ([`contiguous`]) or gathered from two
/// ([`low_rank_acc`]'s rows on either side of a skipped one).
pub(super) type Rows<'a, T, const R: usize> = [&'a [T]; R];

/// The first `R` rows of `blk` (row stride `n ≥ 1`); rows past its end are empty (and
/// then refused by [`split_rows`]).
#[inline(always)]
fn contiguous<T, const R: usize>(blk: &[T], n: usize) -> Rows<'_, T, R> {
    let mut rows = blk.chunks_exact(n.max(1));
    core::array::from_fn(|_| rows.next().unwrap_or_default())
}

/// Splits the `R` rows into their first `l` `L`-lane chunks and the `t` entries after
/// those.
///
/// Every returned slice has exactly length `l` resp. `t`, which lets the compiler drop
/// the bounds checks in the loops over `0..l`. `None` if a row is shorter than
/// `8·l + t`, which the callers rule out.
#[inline(always)]
pub(super) fn split_rows<'a, T, const R: usize, const L: usize>(
    rows: Rows<'a, T, R>,
    l: usize,
    t: usize,
) -> Option<RowParts<'a, T, R, L>> {
    let mut chunks: [&[[T; L]]; R] = [&[]; R];
    let mut tails: [&[T]; R] = [&[]; R];
    for ((c, tl), row) in chunks.iter_mut().zip(&mut tails).zip(rows) {
        *c = row.as_chunks::<L>().0.get(..l)?;
        *tl = row.get(L * l..)?.get(..t)?;
    }
    Some((chunks, tails))
}

/// `[rᵣ · x]` for the `R` rows `rᵣ[..m]` of a block (`m = x.len()`), in one pass over
/// `x`: each `L`-lane chunk of `x` is loaded once and feeds one accumulator per row.
/// The rows are of `E` (widened as they are loaded).
#[inline(always)]
pub(super) fn dot_block<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    rows: Rows<'_, E, R>,
    x: &[T],
) -> [T; R] {
    let mut res = [T::ZERO; R];
    if let ([r0], [row]) = (res.as_mut_slice(), rows.as_slice()) {
        // A single row has no cross-row parallelism; use the 4-accumulator kernel.
        *r0 = row_dot::<T, E, V, L>(row, x);
        return res;
    }
    let (xc, xt) = x.as_chunks::<L>();
    let Some((rc, rt)) = split_rows::<E, R, L>(rows, xc.len(), xt.len()) else {
        return res;
    };
    let mut acc = [V::ZERO; R];
    for (j, cx) in xc.iter().enumerate() {
        let vx = V::load(cx);
        for (s, c) in acc.iter_mut().zip(&rc) {
            if let Some(c) = c.get(j) {
                *s = E::load::<V, L>(c).mul_add(vx, *s);
            }
        }
    }
    for ((s, a), t) in res.iter_mut().zip(&acc).zip(&rt) {
        let mut sum = a.reduce_add();
        for (v, xi) in t.iter().zip(xt) {
            sum += v.widen() * *xi;
        }
        *s = sum;
    }
    res
}

/// `row · x` by the 4-accumulator kernel of [`super::dot`] (its bits for a row of `T`;
/// for a narrower row, the bits of that row widened).
#[inline(always)]
pub(super) fn row_dot<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize>(row: &[E], x: &[T]) -> T {
    match E::wide(row) {
        Some(row) => super::dot(row, x),
        None => vector::reduce2::<T, E, V, L>(row, x, |s, a, b| a.mul_add(b, s), |s, a, b| s + a * b),
    }
}

/// `([rᵣ · x], [rᵣ · y])` for the `R` rows of a block in one pass over the rows: each
/// dot product is accumulated exactly as [`dot_block`] accumulates it (the same lanes,
/// order and tail), so the results are its bits, twice.
#[inline(always)]
fn dot2_block<T: Real, V: Lanes<T, L>, const L: usize, const R: usize>(
    rows: Rows<'_, T, R>,
    x: &[T],
    y: &[T],
) -> ([T; R], [T; R]) {
    let (mut rx, mut ry) = ([T::ZERO; R], [T::ZERO; R]);
    if let ([r0], [s0], [row]) = (rx.as_mut_slice(), ry.as_mut_slice(), rows.as_slice()) {
        // As dot_block: a single row takes the 4-accumulator kernel (twice).
        *r0 = super::dot(row, x);
        *s0 = super::dot(row, y);
        return (rx, ry);
    }
    let m = x.len().min(y.len());
    let (xc, xt) = x[..m].as_chunks::<L>();
    let (yc, yt) = y[..m].as_chunks::<L>();
    let Some((rc, rt)) = split_rows::<T, R, L>(rows, xc.len(), xt.len()) else {
        return (rx, ry);
    };
    let (mut ax, mut ay) = ([V::ZERO; R], [V::ZERO; R]);
    for (j, (cx, cy)) in xc.iter().zip(yc).enumerate() {
        let (vx, vy) = (V::load(cx), V::load(cy));
        for ((sx, sy), c) in ax.iter_mut().zip(&mut ay).zip(&rc) {
            if let Some(c) = c.get(j) {
                let vr = V::load(c);
                *sx = vr.mul_add(vx, *sx);
                *sy = vr.mul_add(vy, *sy);
            }
        }
    }
    for (((ox, oy), (a, b)), t) in rx.iter_mut().zip(&mut ry).zip(ax.iter().zip(&ay)).zip(&rt) {
        let (mut sx, mut sy) = (a.reduce_add(), b.reduce_add());
        for ((v, xi), yi) in t.iter().zip(xt).zip(yt) {
            sx += *v * *xi;
            sy += *v * *yi;
        }
        (*ox, *oy) = (sx, sy);
    }
    (rx, ry)
}

/// `y ← y + Σᵣ c[r]·rᵣ` for the `R` rows `rᵣ[..m]` of a block (`m = y.len()`), in one
/// pass over `y`: each chunk of `y` is loaded once, gets the rows added in order
/// (product then sum, exactly as the scalar reference rounds), and is stored once.
#[inline(always)]
fn axpy_block<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    rows: Rows<'_, E, R>,
    c: &[T; R],
    y: &mut [T],
) {
    if let ([c0], [row]) = (c.as_slice(), rows.as_slice()) {
        vector::axpy::<T, E, V, L>(*c0, row, y);
        return;
    }
    let _ = axpy_pass::<T, E, V, L, R, false, false>(rows, c, y, None, None);
}

/// The pass of [`axpy_block`], with two extras that cost no pass of their own: with
/// `START`, `y` starts from `beta·s` instead of its own value (`start = (beta, s)`,
/// `s` at least as long as `y`), exactly as a scale into `y` before it would round; with
/// `DOTS`, the rows' dot products with `w` (at least as long as `y`) are formed from the
/// same loads of the rows, accumulated exactly as [`dot_block`] accumulates them, so
/// they are its bits (for `R ≥ 2`; it returns zeros without `DOTS`). `None` where a
/// flag's operand is missing or a row is short: nothing is written then.
#[inline(always)]
fn axpy_pass<
    T: Real,
    E: Elem<T>,
    V: Lanes<T, L>,
    const L: usize,
    const R: usize,
    const START: bool,
    const DOTS: bool,
>(
    rows: Rows<'_, E, R>,
    c: &[T; R],
    y: &mut [T],
    start: Option<(T, &[T])>,
    w: Option<&[T]>,
) -> Option<[T; R]> {
    let m = y.len();
    let (beta, s) = match start {
        Some((beta, s)) => (beta, s.get(..m)?),
        None if START => return None,
        None => (T::ONE, &[][..]),
    };
    let w = match w {
        Some(w) => w.get(..m)?,
        None if DOTS => return None,
        None => &[][..],
    };
    let (yc, yt) = y.as_chunks_mut::<L>();
    let (rc, rt) = split_rows::<E, R, L>(rows, yc.len(), yt.len())?;
    let (sc, st) = s.as_chunks::<L>();
    let (wc, wt) = w.as_chunks::<L>();
    let mut cv = [V::ZERO; R];
    for (v, cr) in cv.iter_mut().zip(c) {
        *v = V::splat(*cr);
    }
    let vb = V::splat(beta);
    let mut acc = [V::ZERO; R];
    for (j, cy) in yc.iter_mut().enumerate() {
        let mut v = match sc.get(j) {
            Some(s) if START => vb * V::load(s),
            _ => V::load(cy),
        };
        let vw = match wc.get(j) {
            Some(w) if DOTS => V::load(w),
            _ => V::ZERO,
        };
        for ((rch, cr), s) in rc.iter().zip(&cv).zip(&mut acc) {
            if let Some(rv) = rch.get(j) {
                let rv = E::load::<V, L>(rv);
                v = v + *cr * rv;
                if DOTS {
                    *s = rv.mul_add(vw, *s);
                }
            }
        }
        *cy = v.to_array();
    }
    for (i, yi) in yt.iter_mut().enumerate() {
        let mut s = match st.get(i) {
            Some(s) if START => beta * *s,
            _ => *yi,
        };
        for (t, cr) in rt.iter().zip(c) {
            if let Some(v) = t.get(i) {
                s += *cr * v.widen();
            }
        }
        *yi = s;
    }
    let mut dots = [T::ZERO; R];
    if DOTS {
        for ((d, a), t) in dots.iter_mut().zip(&acc).zip(&rt) {
            let mut sum = a.reduce_add();
            for (v, wi) in t.iter().zip(wt) {
                sum += v.widen() * *wi;
            }
            *d = sum;
        }
    }
    Some(dots)
}

/// One block of `multi_dot`: `out[r] = rᵣ · x` for the `R` rows of `blk`.
#[inline(always)]
fn multi_dot_block<T: Real, V: Lanes<T, L>, const L: usize, const R: usize>(
    blk: &[T],
    n: usize,
    x: &[T],
    out: &mut [T],
) {
    for (o, v) in out.iter_mut().zip(dot_block::<T, T, V, L, R>(contiguous(blk, n), x)) {
        *o = v;
    }
}

/// See [`super::multi_dot`].
#[inline(always)]
pub(crate) fn multi_dot<T: Real, V: Lanes<T, L>, const L: usize>(
    rows: &[T],
    n: usize,
    x: &[T],
    out: &mut [T],
) {
    if n == 0 {
        return;
    }
    let k = out.len().min(rows.len() / n);
    let x = x.get(..n.min(x.len())).unwrap_or_default();
    let out = out.get_mut(..k).unwrap_or_default();
    let mut rows = rows.get(..k * n).unwrap_or_default();
    for ob in out.chunks_mut(BLOCK) {
        let (blk, rest) = rows.split_at_checked(ob.len() * n).unwrap_or_default();
        rows = rest;
        with_rows!(ob.len(), multi_dot_block[T, V, L](blk, n, x, ob));
    }
}

/// One block of `multi_dot2`.
#[inline(always)]
fn multi_dot2_block<T: Real, V: Lanes<T, L>, const L: usize, const R: usize>(
    blk: &[T],
    n: usize,
    x: &[T],
    y: &[T],
    out_x: &mut [T],
    out_y: &mut [T],
) {
    let (dx, dy) = dot2_block::<T, V, L, R>(contiguous(blk, n), x, y);
    for (o, v) in out_x.iter_mut().zip(dx) {
        *o = v;
    }
    for (o, v) in out_y.iter_mut().zip(dy) {
        *o = v;
    }
}

/// See [`super::multi_dot2`].
#[inline(always)]
pub(crate) fn multi_dot2<T: Real, V: Lanes<T, L>, const L: usize>(
    rows: &[T],
    n: usize,
    x: &[T],
    y: &[T],
    out_x: &mut [T],
    out_y: &mut [T],
) {
    if n == 0 {
        return;
    }
    let k = out_x.len().min(out_y.len()).min(rows.len() / n);
    let m = n.min(x.len()).min(y.len());
    let (x, y) = (x.get(..m).unwrap_or_default(), y.get(..m).unwrap_or_default());
    let out_x = out_x.get_mut(..k).unwrap_or_default();
    let mut out_y = out_y.get_mut(..k).unwrap_or_default();
    let mut rows = rows.get(..k * n).unwrap_or_default();
    for ox in out_x.chunks_mut(BLOCK) {
        let (blk, rest) = rows.split_at_checked(ox.len() * n).unwrap_or_default();
        rows = rest;
        let (oy, rest_y) = core::mem::take(&mut out_y).split_at_mut_checked(ox.len()).unwrap_or_default();
        out_y = rest_y;
        with_rows!(ox.len(), multi_dot2_block[T, V, L](blk, n, x, y, ox, oy));
    }
}

/// One block of `multi_axpy`: `y += Σ cb[r]·rᵣ` for the `R` rows of `blk`.
#[inline(always)]
fn multi_axpy_block<T: Real, V: Lanes<T, L>, const L: usize, const R: usize>(
    blk: &[T],
    n: usize,
    cb: &[T],
    y: &mut [T],
) {
    let mut c = [T::ZERO; R];
    for (d, s) in c.iter_mut().zip(cb) {
        *d = *s;
    }
    axpy_block::<T, T, V, L, R>(contiguous(blk, n), &c, y);
}

/// See [`super::multi_axpy`].
#[inline(always)]
pub(crate) fn multi_axpy<T: Real, V: Lanes<T, L>, const L: usize>(
    rows: &[T],
    n: usize,
    coeffs: &[T],
    y: &mut [T],
) {
    if n == 0 {
        return;
    }
    let k = coeffs.len().min(rows.len() / n);
    let coeffs = coeffs.get(..k).unwrap_or_default();
    let mut rows = rows.get(..k * n).unwrap_or_default();
    let y = y.get_mut(..n.min(y.len())).unwrap_or_default();
    for cb in coeffs.chunks(BLOCK) {
        let (blk, rest) = rows.split_at_checked(cb.len() * n).unwrap_or_default();
        rows = rest;
        with_rows!(cb.len(), multi_axpy_block[T, V, L](blk, n, cb, y));
    }
}

/// `alpha·cᵣ` for the `R` rows `b` of a block: `cᵣ = bᵣ · x` ([`dot_block`]) or given.
#[inline(always)]
pub(super) fn coefficients<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    alpha: T,
    b: Rows<'_, E, R>,
    coefs: Coefs<'_, T>,
) -> [T; R] {
    let mut c = match coefs {
        Coefs::Dots(x) => dot_block::<T, E, V, L, R>(b, x),
        Coefs::Given(given) => {
            let mut c = [T::ZERO; R];
            for (ci, g) in c.iter_mut().zip(given) {
                *ci = *g;
            }
            c
        }
    };
    for ci in &mut c {
        *ci *= alpha;
    }
    c
}

/// One block of the low-rank product: the `R` coefficients `alpha·cᵣ` (`cᵣ = bᵣ · x` in
/// one pass over `x` into a stack array, or given), then one pass over `y` adding
/// `Σ cᵣ aᵣ`, from `beta·s` when `start` is given, forming the rows' dots with `w` when
/// `ahead` is. The rows come from `pairs`, `R` of them.
#[inline(always)]
fn low_rank_block<'a, T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    alpha: T,
    pairs: &mut impl Iterator<Item = (&'a [E], &'a [E])>,
    coefs: Coefs<'_, T>,
    start: Option<(T, &[T])>,
    y: &mut [T],
    ahead: Option<(&[T], &mut [T])>,
) -> bool {
    let (mut a, mut b): (Rows<'a, E, R>, Rows<'a, E, R>) = ([&[]; R], [&[]; R]);
    for ((ar, br), (ai, bi)) in a.iter_mut().zip(&mut b).zip(pairs) {
        (*ar, *br) = (ai, bi);
    }
    let c = coefficients::<T, E, V, L, R>(alpha, b, coefs);
    let Some((w, out)) = ahead else {
        match start {
            None => axpy_block::<T, E, V, L, R>(a, &c, y),
            Some(_) => {
                let _ = axpy_pass::<T, E, V, L, R, true, false>(a, &c, y, start, None);
            }
        }
        return false;
    };
    let dots = if R == 1 {
        // dot_block's single row takes the 4-accumulator dot: so do these.
        let _ = match start {
            None => axpy_pass::<T, E, V, L, R, false, false>(a, &c, y, None, None),
            Some(_) => axpy_pass::<T, E, V, L, R, true, false>(a, &c, y, start, None),
        };
        let mut d = [T::ZERO; R];
        for (d, row) in d.iter_mut().zip(a) {
            *d = row_dot::<T, E, V, L>(row, w);
        }
        Some(d)
    } else {
        match start {
            None => axpy_pass::<T, E, V, L, R, false, true>(a, &c, y, None, Some(w)),
            Some(_) => axpy_pass::<T, E, V, L, R, true, true>(a, &c, y, start, Some(w)),
        }
    };
    let Some(dots) = dots else { return false };
    for (o, d) in out.iter_mut().zip(dots) {
        *o = d;
    }
    true
}

/// See [`super::low_rank`]: the row pairs of `a[0]`, `b[0]` and then of `a[1]`, `b[1]`,
/// taken in blocks of up to [`BLOCK`] across the two parts, so a skipped row in the
/// middle costs no extra pass over `x` and `y`.
#[inline(always)]
pub(crate) fn low_rank<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize>(
    p: &LowRankProduct<'_, T, E>,
    y: &mut [T],
    ahead: Option<(&[T], &mut [T])>,
) -> bool {
    let n = p.n;
    if n == 0 {
        return false;
    }
    let y = y.get_mut(..n.min(y.len())).unwrap_or_default();
    let part = |k: usize| {
        let (a, b) = (p.a[k], p.b[k]);
        let len = a.len().min(b.len()) / n * n;
        let (a, b) = (a.get(..len).unwrap_or_default(), b.get(..len).unwrap_or_default());
        a.chunks_exact(n).zip(b.chunks_exact(n))
    };
    let (first, second) = (part(0), part(1));
    let (coefs, mut given) = match p.coefs {
        Coefs::Dots(x) => (Coefs::Dots(x.get(..n.min(x.len())).unwrap_or_default()), &[][..]),
        Coefs::Given(g) => (Coefs::Given(g), g),
    };
    let mut left = first.len() + second.len();
    if let Coefs::Given(g) = coefs {
        left = left.min(g.len());
    }
    // The rows' dots with `w` ride along when they fit one block and every operand
    // has the product's length (so that the chunks are the ones a dot would take).
    let ahead = ahead.filter(|(w, out)| left <= BLOCK && out.len() >= left && w.len() >= n && y.len() == n);
    if left == 0 {
        if let Some((beta, s)) = p.start {
            for (yi, si) in y.iter_mut().zip(s) {
                *yi = beta * *si;
            }
        }
        return false;
    }
    let mut pairs = first.chain(second);
    let (mut start, mut ahead, mut formed) = (p.start, ahead, false);
    while left > 0 {
        let r = left.min(BLOCK);
        left -= r;
        let block_coefs = match coefs {
            Coefs::Dots(x) => Coefs::Dots(x),
            Coefs::Given(_) => {
                let (this, rest) = given.split_at(r.min(given.len()));
                given = rest;
                Coefs::Given(this)
            }
        };
        formed |= with_rows!(r, low_rank_block[T, E, V, L](p.alpha, &mut pairs, block_coefs, start.take(), y, ahead.take()));
    }
    formed
}
