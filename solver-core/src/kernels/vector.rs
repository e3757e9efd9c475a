//! Single-vector SIMD loops: the paired reduction behind `dot`/`dist` and `axpy`.

use wide::f32x8;

/// Loads one 8-lane chunk.
#[inline(always)]
pub(super) fn load(c: &[f32; 8]) -> f32x8 {
    f32x8::new(*c)
}

/// Folds `vf` over the 8-lane chunks of the common prefix of `a` and `b` with four
/// independent accumulators, then `sf` over the scalar tail, and returns the total.
///
/// `vf(acc, a_chunk, b_chunk)` and `sf(acc, aᵢ, bᵢ)` must compute the same per-element
/// update. Slicing is done with `as_chunks` and iterator zips only, so the loops carry
/// no bounds checks.
#[inline(always)]
pub(super) fn reduce2(
    a: &[f32],
    b: &[f32],
    vf: impl Fn(f32x8, f32x8, f32x8) -> f32x8,
    sf: impl Fn(f32, f32, f32) -> f32,
) -> f32 {
    let m = a.len().min(b.len());
    let a = a.get(..m).unwrap_or_default();
    let b = b.get(..m).unwrap_or_default();
    let (ac, at) = a.as_chunks::<8>();
    let (bc, bt) = b.as_chunks::<8>();
    let (a4, ar) = ac.as_chunks::<4>();
    let (b4, br) = bc.as_chunks::<4>();

    let mut acc = [f32x8::ZERO; 4];
    for (xa, xb) in a4.iter().zip(b4) {
        for ((s, ca), cb) in acc.iter_mut().zip(xa).zip(xb) {
            *s = vf(*s, load(ca), load(cb));
        }
    }
    // Up to three remaining whole chunks, one per accumulator.
    for ((s, ca), cb) in acc.iter_mut().zip(ar).zip(br) {
        *s = vf(*s, load(ca), load(cb));
    }
    let [s0, s1, s2, s3] = acc;
    let mut s = ((s0 + s1) + (s2 + s3)).reduce_add();
    for (x, y) in at.iter().zip(bt) {
        s = sf(s, *x, *y);
    }
    s
}

/// `y ← y + alpha·x` over the common prefix; product then sum, no fused multiply-add,
/// so every element is rounded exactly as in the scalar reference.
#[inline]
pub(super) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let m = x.len().min(y.len());
    let x = x.get(..m).unwrap_or_default();
    let y = y.get_mut(..m).unwrap_or_default();
    let (xc, xt) = x.as_chunks::<8>();
    let (yc, yt) = y.as_chunks_mut::<8>();
    let av = f32x8::splat(alpha);
    for (cy, cx) in yc.iter_mut().zip(xc) {
        *cy = (load(cy) + av * load(cx)).to_array();
    }
    for (yi, xi) in yt.iter_mut().zip(xt) {
        *yi += alpha * xi;
    }
}
