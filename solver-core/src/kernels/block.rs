//! Multi-row SIMD kernels: `multi_dot`, `multi_axpy` and the fused `low_rank_acc`.
//!
//! Rows are processed in blocks of up to [`BLOCK`] rows, each block a contiguous
//! sub-slice of the row-major storage. The block size `R` is a const generic, so each
//! block's per-row accumulators and coefficients live in fixed-size arrays (registers
//! or a bounded stack frame), and every block makes a single pass over the shared
//! vector.

use wide::f32x8;

use super::vector::{self, load};

/// Maximum number of rows handled in one pass over the shared vector.
const BLOCK: usize = 8;

/// Calls `f::<R>(args…)` with the const `R` equal to the runtime row count `r`
/// (`1..=BLOCK`; larger values are treated as `BLOCK`, zero is never passed).
macro_rules! with_rows {
    ($r:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $r {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            _ => $f::<BLOCK>($($arg),*),
        }
    };
}

/// The 8-lane chunks and the scalar tails of the `R` rows of a block.
type RowParts<'a, const R: usize> = ([&'a [[f32; 8]]; R], [&'a [f32]; R]);

/// Splits the first `R` rows of `blk` (row stride `n ≥ 1`) into their first `l` 8-lane
/// chunks and the `t` entries after those.
///
/// Every returned slice has exactly length `l` resp. `t`, which lets the compiler drop
/// the bounds checks in the loops over `0..l`. `None` if `blk` holds fewer than `R`
/// rows or a row is shorter than `8·l + t`, which the callers rule out.
#[inline(always)]
fn split_rows<const R: usize>(blk: &[f32], n: usize, l: usize, t: usize) -> Option<RowParts<'_, R>> {
    let mut rows = blk.chunks_exact(n);
    let mut chunks: [&[[f32; 8]]; R] = [&[]; R];
    let mut tails: [&[f32]; R] = [&[]; R];
    for (c, tl) in chunks.iter_mut().zip(&mut tails) {
        let row = rows.next()?;
        *c = row.as_chunks::<8>().0.get(..l)?;
        *tl = row.get(8 * l..)?.get(..t)?;
    }
    Some((chunks, tails))
}

/// `[rᵣ · x]` for the `R` rows `rᵣ = blk[r·n .. r·n + m]` of a block (`m = x.len() ≤ n`),
/// in one pass over `x`: each chunk of `x` is loaded once and feeds one accumulator per
/// row.
#[inline(always)]
fn dot_block<const R: usize>(blk: &[f32], n: usize, x: &[f32]) -> [f32; R] {
    let mut res = [0.0f32; R];
    if let [r0] = res.as_mut_slice() {
        // A single row has no cross-row parallelism; use the 4-accumulator kernel.
        *r0 = super::dot(blk, x);
        return res;
    }
    let (xc, xt) = x.as_chunks::<8>();
    let Some((rc, rt)) = split_rows::<R>(blk, n, xc.len(), xt.len()) else {
        return res;
    };
    let mut acc = [f32x8::ZERO; R];
    for (j, cx) in xc.iter().enumerate() {
        let vx = load(cx);
        for (s, c) in acc.iter_mut().zip(&rc) {
            if let Some(c) = c.get(j) {
                *s = load(c).mul_add(vx, *s);
            }
        }
    }
    for ((s, a), t) in res.iter_mut().zip(&acc).zip(&rt) {
        let mut sum = a.reduce_add();
        for (v, xi) in t.iter().zip(xt) {
            sum += v * xi;
        }
        *s = sum;
    }
    res
}

/// `y ← y + Σᵣ c[r]·rᵣ` for the `R` rows `rᵣ = blk[r·n .. r·n + m]` of a block
/// (`m = y.len() ≤ n`), in one pass over `y`: each chunk of `y` is loaded once, gets
/// the rows added in order (product then sum, exactly as the scalar reference rounds),
/// and is stored once.
#[inline(always)]
fn axpy_block<const R: usize>(blk: &[f32], n: usize, c: &[f32; R], y: &mut [f32]) {
    if let [c0] = c.as_slice() {
        vector::axpy(*c0, blk, y);
        return;
    }
    let (yc, yt) = y.as_chunks_mut::<8>();
    let Some((rc, rt)) = split_rows::<R>(blk, n, yc.len(), yt.len()) else {
        return;
    };
    let mut cv = [f32x8::ZERO; R];
    for (v, cr) in cv.iter_mut().zip(c) {
        *v = f32x8::splat(*cr);
    }
    for (j, cy) in yc.iter_mut().enumerate() {
        let mut v = load(cy);
        for (rch, cr) in rc.iter().zip(&cv) {
            if let Some(rv) = rch.get(j) {
                v += *cr * load(rv);
            }
        }
        *cy = v.to_array();
    }
    for (i, yi) in yt.iter_mut().enumerate() {
        let mut s = *yi;
        for (t, cr) in rt.iter().zip(c) {
            if let Some(v) = t.get(i) {
                s += cr * v;
            }
        }
        *yi = s;
    }
}

/// One block of `multi_dot`: `out[r] = rᵣ · x` for the `R` rows of `blk`.
fn multi_dot_block<const R: usize>(blk: &[f32], n: usize, x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(dot_block::<R>(blk, n, x)) {
        *o = v;
    }
}

/// See [`super::multi_dot`].
pub(super) fn multi_dot(rows: &[f32], n: usize, x: &[f32], out: &mut [f32]) {
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
        with_rows!(ob.len(), multi_dot_block(blk, n, x, ob));
    }
}

/// One block of `multi_axpy`: `y += Σ cb[r]·rᵣ` for the `R` rows of `blk`.
fn multi_axpy_block<const R: usize>(blk: &[f32], n: usize, cb: &[f32], y: &mut [f32]) {
    let mut c = [0.0f32; R];
    for (d, s) in c.iter_mut().zip(cb) {
        *d = *s;
    }
    axpy_block(blk, n, &c, y);
}

/// See [`super::multi_axpy`].
pub(super) fn multi_axpy(rows: &[f32], n: usize, coeffs: &[f32], y: &mut [f32]) {
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
        with_rows!(cb.len(), multi_axpy_block(blk, n, cb, y));
    }
}

/// One block of `low_rank_acc`: the `R` coefficients `alpha·(bᵣ · x)` in one pass over
/// `x` into a stack array, then one pass over `y` adding `Σ cᵣ aᵣ`.
fn low_rank_block<const R: usize>(
    alpha: f32,
    ablk: &[f32],
    bblk: &[f32],
    n: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let mut c = dot_block::<R>(bblk, n, x);
    for ci in &mut c {
        *ci *= alpha;
    }
    axpy_block(ablk, n, &c, y);
}

/// See [`super::low_rank_acc`].
pub(super) fn low_rank_acc(alpha: f32, a: &[f32], b: &[f32], n: usize, x: &[f32], y: &mut [f32]) {
    if n == 0 {
        return;
    }
    let len = a.len().min(b.len()) / n * n;
    let a = a.get(..len).unwrap_or_default();
    let mut b = b.get(..len).unwrap_or_default();
    let x = x.get(..n.min(x.len())).unwrap_or_default();
    let y = y.get_mut(..n.min(y.len())).unwrap_or_default();
    for ablk in a.chunks(n.saturating_mul(BLOCK)) {
        let (bblk, rest) = b.split_at_checked(ablk.len()).unwrap_or_default();
        b = rest;
        with_rows!(ablk.len() / n, low_rank_block(alpha, ablk, bblk, n, x, y));
    }
}
