//! The slice executor's low-rank products with a [`Then`]: one pass
//! ([`kernels::fused`](crate::kernels::fused)) when the operands have the shapes the
//! Broyden iteration gives them, else the operation's primitive parts one by one
//! ([`Op::lowered`]): the same bits either way.

use super::{LowRankOp, SliceVectors, cut_row, cut_work, rows};
use crate::Real;
use crate::broyden::ahead::Style;
use crate::broyden::ops::{Factor, Reply, Then, Vector};
use crate::kernels::{Coefs, LowRankProduct, RowElem, fused, scalar};

impl<T: Real, E: RowElem<T>> SliceVectors<'_, T, E> {
    /// [`Op::LowRank`](crate::broyden::ops::Op::LowRank) with a [`Then`].
    #[inline(never)]
    pub(super) fn fused(&mut self, p: &LowRankOp<T>) -> Reply<T> {
        let given = self.ahead.as_ref().and_then(|a| a.dots_for(p.b, p.pairs, p.x));
        let reply = match p.then {
            Then::Secant { g, gn } => self.secant(*p, given, g, gn),
            Then::Pair { row, c, r, s, point, trial } => self.pair(*p, given, row, c, [r, s], point, trial),
            Then::Nothing => None,
        };
        reply.unwrap_or_else(|| self.run_lowered(p.op()))
    }

    /// [`Then::Secant`] in one pass: the output a row of `U` or `V`, `from`, `x`, `g`,
    /// `gn` and `ahead` work vectors (`g` none of the others); the coefficients `given`
    /// when they were formed ahead.
    fn secant(&mut self, p: LowRankOp<T>, given: Option<[T; 8]>, g: Vector, gn: Vector) -> Option<Reply<T>> {
        let n = self.n;
        let (xi, fi, gi, ni) = (p.x.work_index()?, p.from.work_index()?, g.work_index()?, gn.work_index()?);
        if gi == xi || gi == fi || gi == ni {
            return None;
        }
        let SliceVectors { u, v, work, ahead, .. } = self;
        let (lo, g, hi) = cut_work(work, gi, n)?;
        let get = |i: usize| super::around_work(lo, hi, gi, i, n);
        let (x, from, gn) = (get(xi)?, get(fi)?, get(ni)?);
        let w = match p.ahead {
            // Formed only where they can be kept.
            Some(w) if ahead.is_some() => Some(get(w.work_index()?)?),
            _ => None,
        };
        let (out, u, v) = cut_row(u, v, p.out, n)?;
        let factor = |f: Factor| rows(if f == Factor::U { u } else { v }, n, p.pairs);
        let (a, b) = (factor(p.a)?, factor(p.b)?);
        let coefs = match &given {
            Some(d) => Coefs::Given(d),
            None => Coefs::Dots(x),
        };
        let product = LowRankProduct {
            alpha: p.alpha,
            a: [a.0, a.1],
            b: [b.0, b.1],
            n,
            coefs,
            start: Some((p.beta, from)),
        };
        let mut dots = [T::ZERO; 8];
        let (sums, formed) = fused::secant(&product, out, w.map(|w| (w, &mut dots[..])), g, gn)?;
        if let (true, Some(with), Some(ahead)) = (formed, p.ahead, ahead) {
            let k = (0..p.pairs.end).filter(|&i| p.pairs.contains(i)).count();
            let style = if k == 1 { Style::Single } else { Style::Block };
            ahead.hold((p.a, with, style), p.pairs, &dots, None);
        }
        let out_norm = scalar::finish_norm(sums[2], || scalar::scaled_norm(out.iter().map(|e| e.widen())));
        let g_norm = scalar::finish_norm(sums[3], || scalar::scaled_norm(g.iter().copied()));
        Some(Reply::Scalars([sums[0], sums[1], out_norm, g_norm, sums[4]]))
    }

    /// [`Then::Pair`] in one pass: the output, `point` and `trial` distinct work vectors,
    /// `from` and `x` one work vector among none of those, `row` a row of `a`; the
    /// coefficients `given` when the last product formed them ahead. With `ahead` the
    /// output itself, the dots of `a`'s rows and the new row with the new output are
    /// formed for the next product.
    #[allow(clippy::too_many_arguments)]
    fn pair(
        &mut self,
        p: LowRankOp<T>,
        given: Option<[T; 8]>,
        row: Vector,
        c: Option<T>,
        [r, s]: [T; 2],
        point: Vector,
        trial: Vector,
    ) -> Option<Reply<T>> {
        let n = self.n;
        let (oi, xi, pi, ti) =
            (p.out.work_index()?, p.x.work_index()?, point.work_index()?, trial.work_index()?);
        if p.from != p.x || n == 0 {
            return None;
        }
        let SliceVectors { u, v, work, ahead, .. } = self;
        let mut five = work.get_mut(..5 * n)?.chunks_exact_mut(n);
        let mut parts: [&mut [T]; 5] = core::array::from_fn(|_| five.next().unwrap_or_default());
        let [out, x, point, trial] = parts.get_disjoint_mut([oi, xi, pi, ti]).ok()?;
        let (x, point): (&[T], &[T]) = (x, point);
        let (row_out, u, v) = cut_row(u, v, row, n)?;
        let factor = |f: Factor| rows(if f == Factor::U { u } else { v }, n, p.pairs);
        let (a, b) = (factor(p.a)?, factor(p.b)?);
        let coefs = match &given {
            Some(d) => Coefs::Given(d),
            None => Coefs::Dots(x),
        };
        let product = LowRankProduct {
            alpha: p.alpha,
            a: [a.0, a.1],
            b: [b.0, b.1],
            n,
            coefs,
            start: Some((p.beta, x)),
        };
        let row_index = match (p.a, row) {
            (Factor::U, Vector::U(i)) | (Factor::V, Vector::V(i)) => Some(i),
            _ => None,
        };
        let mut dots = [T::ZERO; 9];
        let wanted =
            (p.ahead == Some(p.out) && ahead.is_some() && row_index.is_some()).then_some(&mut dots[..]);
        let formed = wanted.is_some();
        let (u_finite, p_finite) = fused::pair(&product, out, row_out, c, r, s, point, trial, wanted)?;
        if let (true, Some(i), Some(ahead)) = (formed, row_index, ahead) {
            let k = (0..p.pairs.end).filter(|&i| p.pairs.contains(i)).count();
            ahead.hold((p.a, p.out, Style::Block), p.pairs, &dots[..k], dots.get(k).map(|d| (i, *d)));
        }
        Some(Reply::Flags([u_finite, p_finite]))
    }
}
