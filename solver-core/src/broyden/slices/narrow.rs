//! The slice executor over rows narrower than `T` (a history kept in `bf16`): the
//! low-rank products take the fast paths of rows of `T` with the narrow rows' kernels,
//! an operation that touches no row runs exactly as over rows of `T`, and every other
//! operation entry by entry here, each row entry widened where it is read and rounded
//! where it is written.
//!
//! The entry-by-entry operations are the ones on a row by itself: the updates of the
//! first iterations (no other pairs), of backtracked steps, and `Dot`/`Norm` of a row.
//! They add in plain order with one accumulator (the [`scalar`](crate::kernels::scalar)
//! kernels' order). A dense model ([`Op::AddOuter`], [`Op::Invert`]) needs rows of `T`:
//! here `Invert` answers "singular" and `AddOuter` does nothing, and the solvers keep a
//! dense model's rows in `T` ([`BroydenInner::with_sizes_bf16`](crate::BroydenInner)).

use super::{LowRankOp, SliceVectors, row};
use crate::Real;
use crate::broyden::ops::{Factor, Op, Reply, Vector};
use crate::kernels::{RowElem, scalar};

/// [`SliceVectors::execute`] over narrow rows.
pub(super) fn execute<T: Real, E: RowElem<T>>(s: &mut SliceVectors<'_, T, E>, op: &Op<T>) -> Reply<T> {
    if !touches_rows(op) {
        // Exactly as over rows of `T` (which also forgets the dots it makes stale).
        return super::execute(&mut s.no_rows(), op);
    }
    #[cfg(simd)]
    if let Some(a) = &mut s.ahead {
        a.invalidate(op);
    }
    match *op {
        #[cfg(simd)]
        Op::LowRank { out, from, beta, alpha, a, b, pairs, x, ahead, then } => {
            s.low_rank(&LowRankOp { out, from, beta, alpha, a, b, pairs, x, ahead, then })
        }
        #[cfg(not(simd))]
        Op::LowRank { out, from, beta, alpha, a, b, pairs, x } => {
            s.low_rank(&LowRankOp { out, from, beta, alpha, a, b, pairs, x })
        }
        _ => s.entrywise(op),
    }
}

/// Whether `op` reads or writes a row of `U` or `V`.
fn touches_rows<T: Real>(op: &Op<T>) -> bool {
    if matches!(op, Op::LowRank { .. } | Op::AddOuter { .. } | Op::Invert { .. }) {
        return true;
    }
    let seen = core::cell::Cell::new(false);
    let mut named = *op;
    named.rename(|v| {
        if matches!(v, Vector::U(_) | Vector::V(_)) {
            seen.set(true);
        }
        v
    });
    seen.get()
}

/// A vector resolved for reading: entries of `T`, or narrow rows widened as read.
#[derive(Clone, Copy)]
enum Src<'a, T, E> {
    Wide(&'a [T]),
    Narrow(&'a [E]),
}

impl<T: Real, E: RowElem<T>> Src<'_, T, E> {
    /// Entry `i` (NaN past the end, which the callers rule out).
    #[inline(always)]
    fn get(self, i: usize) -> T {
        match self {
            Src::Wide(s) => s.get(i).copied(),
            Src::Narrow(s) => s.get(i).map(|e| e.widen()),
        }
        .unwrap_or(T::NAN)
    }
}

/// Entries written per chunk of [`SliceVectors::map_entries`].
const CHUNK: usize = 64;

impl<T: Real, E: RowElem<T>> SliceVectors<'_, T, E> {
    /// `v` for reading, if it lies in the buffers.
    fn src(&self, v: Vector) -> Option<Src<'_, T, E>> {
        let n = self.n;
        Some(match v {
            Vector::U(r) => Src::Narrow(row(self.u, r, n)?),
            Vector::V(r) => Src::Narrow(row(self.v, r, n)?),
            Vector::Best => Src::Wide(self.z.get(..n)?),
            w => Src::Wide(row(self.work, w.work_index()?, n)?),
        })
    }

    /// `Σ aᵢ bᵢ` in plain order; NaN if either is outside the buffers.
    fn dot_entries(&self, a: Vector, b: Vector) -> T {
        let (Some(a), Some(b)) = (self.src(a), self.src(b)) else { return T::NAN };
        let mut sum = T::ZERO;
        for i in 0..self.n {
            sum += a.get(i) * b.get(i);
        }
        sum
    }

    /// `out ← f(ins, i)` for every entry `i`, `ins` the vectors `inputs` resolved; each
    /// chunk of values is formed before it is written (so an input may be `out` itself).
    /// Nothing is written if a vector is outside the buffers.
    fn map_entries<const K: usize>(
        &mut self,
        out: Vector,
        inputs: [Vector; K],
        f: impl Fn(&[Src<'_, T, E>; K], usize) -> T,
    ) {
        let n = self.n;
        if self.src(out).is_none() || inputs.iter().any(|v| self.src(*v).is_none()) {
            return;
        }
        let mut vals = [T::ZERO; CHUNK];
        for at in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - at);
            {
                let mut ins = [Src::Wide(&[][..]); K];
                for (s, v) in ins.iter_mut().zip(inputs) {
                    *s = self.src(v).unwrap_or(Src::Wide(&[]));
                }
                for (k, val) in vals.iter_mut().take(len).enumerate() {
                    *val = f(&ins, at + k);
                }
            }
            let vals = vals.get(..len).unwrap_or_default();
            let (u, v, work, z) = (&mut *self.u, &mut *self.v, &mut *self.work, &mut *self.z);
            let narrow = |buf: &mut [E], r: usize| {
                let start = r.checked_mul(n)?.checked_add(at)?;
                for (e, x) in buf.get_mut(start..start.checked_add(len)?)?.iter_mut().zip(vals) {
                    *e = E::narrow(*x);
                }
                Some(())
            };
            let wide = |buf: &mut [T], r: usize| {
                let start = r.checked_mul(n)?.checked_add(at)?;
                buf.get_mut(start..start.checked_add(len)?)?.copy_from_slice(vals);
                Some(())
            };
            let _ = match out {
                Vector::U(r) => narrow(u, r),
                Vector::V(r) => narrow(v, r),
                Vector::Best => wide(z, 0),
                w => w.work_index().and_then(|i| wide(work, i)),
            };
        }
    }

    /// Carries out `op` entry by entry (see the [module docs](self)).
    #[inline(never)]
    #[cold]
    pub(super) fn entrywise(&mut self, op: &Op<T>) -> Reply<T> {
        let n = self.n;
        match *op {
            Op::Evaluate { .. } | Op::Done(_) | Op::AddOuter { .. } => {}
            Op::Invert { .. } => return Reply::Flag(false),
            Op::Dot { a, b } => return Reply::Scalar(self.dot_entries(a, b)),
            Op::Norm { a } => {
                let sum = self.dot_entries(a, a);
                let Some(a) = self.src(a) else { return Reply::Scalar(T::NAN) };
                let norm = scalar::finish_norm(sum, || scalar::scaled_norm((0..n).map(|i| a.get(i))));
                return Reply::Scalar(norm);
            }
            Op::AllFinite { a } => {
                let Some(a) = self.src(a) else { return Reply::Flag(false) };
                return Reply::Flag((0..n).all(|i| a.get(i).is_finite()));
            }
            Op::Copy { from, to } => self.map_entries(to, [from], |[x], i| x.get(i)),
            Op::Fill { out, value } => self.map_entries(out, [], |_, _| value),
            Op::Unit { out, index, value } => {
                self.map_entries(out, [], |_, i| if i == index { value } else { T::ZERO })
            }
            Op::Scale { out, alpha, x } => self.map_entries(out, [x], |[x], i| alpha * x.get(i)),
            Op::Combine { out, x, alpha, y } => {
                self.map_entries(out, [x, y], |[x, y], i| x.get(i) + alpha * y.get(i))
            }
            #[cfg(simd)]
            Op::LowRank { then, .. } if then != crate::broyden::ops::Then::Nothing => {
                return self.run_lowered(*op);
            }
            Op::LowRank { out, from, beta, alpha, a, b, pairs, x, .. } => {
                // The pairs' rows (at most eight), which may not include the output.
                let row_of = |f: Factor, r: usize| if f == Factor::U { Vector::U(r) } else { Vector::V(r) };
                let (mut rows, mut used) = ([0usize; 8], 0);
                for r in (0..pairs.end).filter(|&r| pairs.contains(r)) {
                    let Some(slot) = rows.get_mut(used) else { return Reply::None };
                    (*slot, used) = (r, used + 1);
                }
                let rows = rows.get(..used).unwrap_or_default();
                if rows.iter().any(|&r| row_of(a, r) == out || row_of(b, r) == out) {
                    return Reply::None;
                }
                let mut coef = [T::ZERO; 8];
                for (c, &r) in coef.iter_mut().zip(rows) {
                    *c = alpha * self.dot_entries(row_of(b, r), x);
                }
                // The start and the rows added.
                let mut ins = [from; 9];
                for (slot, &r) in ins.iter_mut().skip(1).zip(rows) {
                    *slot = row_of(a, r);
                }
                // `beta·from`, `from` possibly `out` itself, as a scale into `out` rounds it.
                self.map_entries(out, ins, |ins, i| {
                    let [start, rows @ ..] = ins;
                    let mut y = beta * start.get(i);
                    for (row, c) in rows.iter().zip(&coef).take(used) {
                        y += *c * row.get(i);
                    }
                    y
                });
            }
        }
        Reply::None
    }
}
