//! The two low-rank products of a Broyden update with the vector work that follows each,
//! in the pass that forms the product: [`secant`] (a product, then a difference and
//! five dot products of what it formed) and [`pair`] (a product, then a rank-one
//! correction of it and a new row, and a point moved by it).
//!
//! Each is, bit for bit, a sequence of the other kernels (spelled out at each function;
//! the slice executor's lowered operations are that sequence): every product, sum and
//! difference is rounded as there, and every dot product is accumulated exactly as
//! [`super::dot`] accumulates it (one accumulator per lane chunk modulo four, the four
//! added pairwise, then the tail in order). They apply when the pairs fit one block of
//! [`BLOCK`] rows, so that each entry of the product is final within the pass, and on
//! targets with vector registers; elsewhere they return `None` and the caller runs the
//! sequence instead.

use super::bf16::{Elem, RowElem};
use super::block::{BLOCK, Rows, coefficients, row_dot, split_rows};
use super::vector::Lanes;
use super::{Coefs, LowRankProduct, SIMD};
use crate::Real;

/// The first `R` row pairs of `p`, across its two parts.
#[inline(always)]
fn gather<'a, T, E, const R: usize>(p: &LowRankProduct<'a, T, E>) -> (Rows<'a, E, R>, Rows<'a, E, R>) {
    let n = p.n.max(1);
    let part = |k: usize| p.a[k].chunks_exact(n).zip(p.b[k].chunks_exact(n));
    let (mut a, mut b): (Rows<'a, E, R>, Rows<'a, E, R>) = ([&[]; R], [&[]; R]);
    for ((ar, br), (ai, bi)) in a.iter_mut().zip(&mut b).zip(part(0).chain(part(1))) {
        (*ar, *br) = (ai, bi);
    }
    (a, b)
}

/// The number of pairs of `p` (the coefficients given limit it), if the fused kernels
/// apply: one to [`BLOCK`] pairs, vector registers.
#[inline(always)]
fn pairs<T, E>(p: &LowRankProduct<'_, T, E>) -> Option<usize> {
    let n = p.n;
    if !SIMD || n == 0 {
        return None;
    }
    let mut k = (0..2).map(|i| p.a[i].len().min(p.b[i].len()) / n).sum::<usize>();
    if let Coefs::Given(g) = p.coefs {
        k = k.min(g.len());
    }
    (1..=BLOCK).contains(&k).then_some(k)
}

/// The sums of a [`secant`] pass: `[before·g, out·d, out·out, d·d, out·gn]`, with `before`
/// the output's entries before the pass and `d = gn − g`.
pub(crate) type SecantSums<T> = [T; 5];

/// `before·g` (the output's old entries against `g`), then `g ← gn − g`, then the
/// product `p` into `out`, then the sums `out·g`, `out·out`, `g·g` and `out·gn`, in one
/// pass over every vector: the bits of [`super::dot`]`(out, g)`, a difference,
/// [`super::low_rank`]`(p, out, ahead)`, and the dot products (`out·out` and `g·g` are
/// the sums of squares of [`super::norm`]). `ahead` as for [`super::low_rank`]; the
/// second value says whether its dots were formed. `None` (nothing written) where the
/// fused pass does not apply: more than [`BLOCK`] pairs, no vector registers, or an
/// operand shorter than `n`.
pub(crate) fn secant<T: Real, E: RowElem<T>>(
    p: &LowRankProduct<'_, T, E>,
    out: &mut [E],
    ahead: Option<(&[T], &mut [T])>,
    g: &mut [T],
    gn: &[T],
) -> Option<(SecantSums<T>, bool)> {
    let k = pairs(p)?;
    E::secant(k, p, out, ahead, g, gn)
}

/// The product `p` into `out`, then, with `t = out + (−c)·row` (or `t = out` when `c`
/// is `None`): `row ← r·t`, `out ← out + (−s)·row` and `trial ← point + out`, in one
/// pass; replies whether every entry of the new `row` and of the new `out` is finite.
/// The bits of [`super::low_rank`]`(p, out, None)`, a combine and a scale into `row`
/// (or a scale alone), [`super::axpy`]`(−s, row, out)` and a sum into `trial`. With
/// `ahead` (room for one more than the pairs), also the dots of the rows of `a` and then
/// of the new `row` with the new `out`, accumulated as a block of several rows
/// accumulates its coefficients. `None` (nothing written) where the fused pass does not
/// apply, as for [`secant`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn pair<T: Real, E: RowElem<T>>(
    p: &LowRankProduct<'_, T, E>,
    out: &mut [T],
    row: &mut [E],
    c: Option<T>,
    r: T,
    s: T,
    point: &[T],
    trial: &mut [T],
    ahead: Option<&mut [T]>,
) -> Option<(bool, bool)> {
    let k = pairs(p)?;
    let ahead = ahead.filter(|d| d.len() > k);
    E::pair(k, p, out, row, [c.unwrap_or(T::ZERO), r, s], c.is_some(), [point], trial, ahead)
}

/// [`secant`] for `k` pairs, with `f32x8` or `f64x4` lanes.
#[inline(always)]
pub(crate) fn secant_simd<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize>(
    k: usize,
    p: &LowRankProduct<'_, T, E>,
    out: &mut [E],
    ahead: Option<(&[T], &mut [T])>,
    g: &mut [T],
    gn: &[T],
) -> Option<(SecantSums<T>, bool)> {
    with_rows!(k, secant_block[T, E, V, L](p, out, ahead, g, gn))
}

/// [`pair`] for `k` pairs, with `f32x8` or `f64x4` lanes; `crs = [c, r, s]`, `c` used
/// when `drop`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn pair_simd<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize>(
    k: usize,
    p: &LowRankProduct<'_, T, E>,
    out: &mut [T],
    row: &mut [E],
    crs: [T; 3],
    drop: bool,
    [point]: [&[T]; 1],
    trial: &mut [T],
    ahead: Option<&mut [T]>,
) -> Option<(bool, bool)> {
    with_rows!(k, pair_block[T, E, V, L](p, out, row, crs, drop, point, trial, ahead))
}

/// The lanes and the tail of the first `n` entries of `x`, if it has them.
#[inline(always)]
fn chunks<T, const L: usize>(x: &[T], n: usize) -> Option<(&[[T; L]], &[T])> {
    Some(x.get(..n)?.as_chunks::<L>())
}

/// The start of a product, `beta·s` over its first `n` entries, as the lane chunks and the
/// tail of `s` (`(None, None)` without a start); `None` when `s` is shorter than `n`.
#[allow(clippy::type_complexity)]
#[inline(always)]
fn start_parts<T: Real, V: Lanes<T, L>, const L: usize>(
    start: Option<(T, &[T])>,
    n: usize,
) -> Option<(Option<(V, &[[T; L]])>, Option<(T, &[T])>)> {
    let Some((beta, s)) = start else { return Some((None, None)) };
    let (chunks, tail) = s.get(..n)?.as_chunks::<L>();
    Some((Some((V::splat(beta), chunks)), Some((beta, tail))))
}

/// The start of an entry of the product: `beta·s` or the output's own value.
#[inline(always)]
fn start_lanes<T: Real, V: Lanes<T, L>, const L: usize>(
    start: Option<(V, &[[T; L]])>,
    j: usize,
    own: V,
) -> V {
    match start.and_then(|(vb, s)| Some(vb * V::load(s.get(j)?))) {
        Some(v) => v,
        None => own,
    }
}

/// [`start_lanes`] for entry `i` of the tail (`s` the tail of the start).
#[inline(always)]
fn start_tail<T: Real>(start: Option<(T, &[T])>, i: usize, own: T) -> T {
    match start.and_then(|(beta, s)| Some(beta * *s.get(i)?)) {
        Some(v) => v,
        None => own,
    }
}

/// Four accumulators of one dot product, as [`super::dot`] keeps them.
struct Dot4<V>([V; 4]);

impl<V> Dot4<V> {
    /// `acc[j mod 4] ← x·y + acc[j mod 4]`.
    #[inline(always)]
    fn add<T, const L: usize>(&mut self, j: usize, x: V, y: V)
    where
        V: Lanes<T, L>,
    {
        if let Some(s) = self.0.get_mut(j % 4) {
            *s = x.mul_add(y, *s);
        }
    }

    /// The sum of the lanes, the four added pairwise.
    #[inline(always)]
    fn total<T, const L: usize>(&self) -> T
    where
        V: Lanes<T, L>,
    {
        let [s0, s1, s2, s3] = self.0;
        ((s0 + s1) + (s2 + s3)).reduce_add()
    }
}

#[inline(always)]
fn secant_block<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    p: &LowRankProduct<'_, T, E>,
    out: &mut [E],
    ahead: Option<(&[T], &mut [T])>,
    g: &mut [T],
    gn: &[T],
) -> Option<(SecantSums<T>, bool)> {
    let n = p.n;
    let (a, b) = gather::<T, E, R>(p);
    let c = coefficients::<T, E, V, L, R>(p.alpha, b, p.coefs);
    let out = out.get_mut(..n).filter(|o| o.len() == n)?;
    let (gc, gt) = g.get_mut(..n)?.as_chunks_mut::<L>();
    let (nc, nt) = chunks::<T, L>(gn, n)?;
    let (start_v, start_t) = start_parts::<T, V, L>(p.start, n)?;
    let ahead = ahead.filter(|(w, dots)| dots.len() >= R && w.len() >= n);
    let w = match &ahead {
        Some((w, _)) => Some(chunks::<T, L>(w, n)?),
        None => None,
    };
    let (yc, yt) = out.as_chunks_mut::<L>();
    let (rc, rt) = split_rows::<E, R, L>(a, yc.len(), yt.len())?;
    let cv: [V; R] = core::array::from_fn(|i| V::splat(c[i]));
    // Sums: before·g, out·d, out·out, d·d, out·gn; and the rows' dots with w.
    let mut sums: [Dot4<V>; 5] = core::array::from_fn(|_| Dot4([V::ZERO; 4]));
    let mut dots = [V::ZERO; R];
    for (j, ((cy, cg), cn)) in yc.iter_mut().zip(gc.iter_mut()).zip(nc).enumerate() {
        let before = E::load::<V, L>(cy);
        let mut v = start_lanes(start_v, j, before);
        let vw = match w.and_then(|(wc, _)| wc.get(j)) {
            Some(w) => V::load(w),
            None => V::ZERO,
        };
        for ((rch, cr), d) in rc.iter().zip(&cv).zip(&mut dots) {
            if let Some(rv) = rch.get(j) {
                let rv = E::load::<V, L>(rv);
                v = v + *cr * rv;
                *d = rv.mul_add(vw, *d);
            }
        }
        // The row as stored (rounded where it is narrower), and its value from then on.
        let (stored, v) = E::store::<V, L>(v);
        let (vg, vn) = (V::load(cg), V::load(cn));
        let d = vn - vg;
        let [s0, s1, s2, s3, s4] = &mut sums;
        s0.add(j, before, vg);
        s1.add(j, v, d);
        s2.add(j, v, v);
        s3.add(j, d, d);
        s4.add(j, v, vn);
        *cg = d.to_array();
        *cy = stored;
    }
    let mut total: [T; 5] = core::array::from_fn(|i| sums[i].total());
    for (i, ((yi, gi), ni)) in yt.iter_mut().zip(gt.iter_mut()).zip(nt).enumerate() {
        let before = yi.widen();
        let mut v = start_tail(start_t, i, before);
        for (t, cr) in rt.iter().zip(&c) {
            if let Some(x) = t.get(i) {
                v += *cr * x.widen();
            }
        }
        let stored = E::narrow(v);
        let v = stored.widen();
        let d = *ni - *gi;
        let [t0, t1, t2, t3, t4] = &mut total;
        *t0 += before * *gi;
        *t1 += v * d;
        *t2 += v * v;
        *t3 += d * d;
        *t4 += v * *ni;
        (*gi, *yi) = (d, stored);
    }
    let Some((wv, dots_out)) = ahead else { return Some((total, false)) };
    let wt = w.map_or(&[][..], |(_, wt)| wt);
    for (((o, acc), t), row) in dots_out.iter_mut().zip(&dots).zip(&rt).zip(a) {
        *o = if R == 1 {
            // As dot_block: a single row's dot is the 4-accumulator one.
            row_dot::<T, E, V, L>(row, wv)
        } else {
            let mut sum = acc.reduce_add();
            for (x, wi) in t.iter().zip(wt) {
                sum += x.widen() * *wi;
            }
            sum
        };
    }
    Some((total, true))
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pair_block<T: Real, E: Elem<T>, V: Lanes<T, L>, const L: usize, const R: usize>(
    p: &LowRankProduct<'_, T, E>,
    out: &mut [T],
    row: &mut [E],
    [c, r, s]: [T; 3],
    drop: bool,
    point: &[T],
    trial: &mut [T],
    ahead: Option<&mut [T]>,
) -> Option<(bool, bool)> {
    let n = p.n;
    let (a, b) = gather::<T, E, R>(p);
    let cf = coefficients::<T, E, V, L, R>(p.alpha, b, p.coefs);
    let out = out.get_mut(..n).filter(|o| o.len() == n)?;
    let (uc, ut) = row.get_mut(..n)?.as_chunks_mut::<L>();
    let (tc, tt) = trial.get_mut(..n)?.as_chunks_mut::<L>();
    let (pc, pt) = chunks::<T, L>(point, n)?;
    let (start_v, start_t) = start_parts::<T, V, L>(p.start, n)?;
    let (yc, yt) = out.as_chunks_mut::<L>();
    let (rc, rt) = split_rows::<E, R, L>(a, yc.len(), yt.len())?;
    let cv: [V; R] = core::array::from_fn(|i| V::splat(cf[i]));
    let (nc, vr, ns) = (V::splat(-c), V::splat(r), V::splat(-s));
    // `x·0` summed: ±0 while every entry is finite, NaN after any that is not.
    let (mut fu, mut fp) = (V::ZERO, V::ZERO);
    // The dots with the new out: the rows', then the new row's.
    let dots_on = ahead.is_some();
    let (mut dots, mut d_row) = ([V::ZERO; R], V::ZERO);
    let lanes = yc.iter_mut().zip(uc.iter_mut()).zip(tc.iter_mut()).zip(pc);
    for (j, (((cy, cu), ct), cp)) in lanes.enumerate() {
        let mut v = start_lanes(start_v, j, V::load(cy));
        for (rch, cr) in rc.iter().zip(&cv) {
            if let Some(rv) = rch.get(j) {
                v = v + *cr * E::load::<V, L>(rv);
            }
        }
        let t = if drop { v + nc * E::load::<V, L>(cu) } else { v };
        // The new row as stored (rounded where it is narrower): the step is finished
        // from that value, so that it is the step of the model kept.
        let (stored, u) = E::store::<V, L>(vr * t);
        let next = v + ns * u;
        fu = fu + u * V::ZERO;
        fp = fp + next * V::ZERO;
        if dots_on {
            for (rch, d) in rc.iter().zip(&mut dots) {
                if let Some(rv) = rch.get(j) {
                    *d = E::load::<V, L>(rv).mul_add(next, *d);
                }
            }
            d_row = u.mul_add(next, d_row);
        }
        *cu = stored;
        *cy = next.to_array();
        *ct = (V::load(cp) + next).to_array();
    }
    let (mut u_finite, mut p_finite) = (fu.reduce_add() == T::ZERO, fp.reduce_add() == T::ZERO);
    let mut sums: [T; R] = core::array::from_fn(|i| dots[i].reduce_add());
    let mut s_row = d_row.reduce_add();
    let tails = yt.iter_mut().zip(ut.iter_mut()).zip(tt.iter_mut()).zip(pt);
    for (i, (((yi, ui), ti), pi)) in tails.enumerate() {
        let mut v = start_tail(start_t, i, *yi);
        for (t, cr) in rt.iter().zip(&cf) {
            if let Some(x) = t.get(i) {
                v += *cr * x.widen();
            }
        }
        let t = if drop { v + -c * ui.widen() } else { v };
        let stored = E::narrow(r * t);
        let u = stored.widen();
        let next = v + -s * u;
        u_finite &= u.is_finite();
        p_finite &= next.is_finite();
        if dots_on {
            for (t, d) in rt.iter().zip(&mut sums) {
                if let Some(x) = t.get(i) {
                    *d += x.widen() * next;
                }
            }
            s_row += u * next;
        }
        (*ui, *yi, *ti) = (stored, next, *pi + next);
    }
    if let Some(out) = ahead {
        for (o, d) in out.iter_mut().zip(sums.iter().chain([&s_row])) {
            *o = *d;
        }
    }
    Some((u_finite, p_finite))
}
