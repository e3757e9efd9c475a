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

impl<T: Real, E: RowElem<T>> SliceVectors<'_, T, E> {
    /// Entry `i` of `v` (a row's widened), if `v` lies in the buffers.
    fn entry(&self, v: Vector, i: usize) -> Option<T> {
        let n = self.n;
        if i >= n {
            return None;
        }
        match v {
            Vector::U(r) => row(self.u, r, n)?.get(i).map(|e| e.widen()),
            Vector::V(r) => row(self.v, r, n)?.get(i).map(|e| e.widen()),
            Vector::Best => self.z.get(i).copied(),
            w => row(self.work, w.work_index()?, n)?.get(i).copied(),
        }
    }

    /// Sets entry `i` of `v` (a row's rounded); `false` if `v` is outside the buffers.
    fn set_entry(&mut self, v: Vector, i: usize, x: T) -> bool {
        let n = self.n;
        let at = |r: usize| r.checked_mul(n).and_then(|a| a.checked_add(i)).filter(|_| i < n);
        let slot = match v {
            Vector::U(r) => at(r).and_then(|a| self.u.get_mut(a)).map(|e| *e = E::narrow(x)),
            Vector::V(r) => at(r).and_then(|a| self.v.get_mut(a)).map(|e| *e = E::narrow(x)),
            Vector::Best => self.z.get_mut(i).filter(|_| i < n).map(|e| *e = x),
            w => w.work_index().and_then(at).and_then(|a| self.work.get_mut(a)).map(|e| *e = x),
        };
        slot.is_some()
    }

    /// `Σ aᵢ bᵢ` in plain order; NaN if either is outside the buffers.
    fn dot_entries(&self, a: Vector, b: Vector) -> T {
        let mut sum = T::ZERO;
        for i in 0..self.n {
            match (self.entry(a, i), self.entry(b, i)) {
                (Some(x), Some(y)) => sum += x * y,
                _ => return T::NAN,
            }
        }
        sum
    }

    /// `out ← f(i)` for every entry, each value formed before it is written (so `f`
    /// may read `out` itself at entry `i`).
    fn map_entries(&mut self, out: Vector, f: impl Fn(&Self, usize) -> Option<T>) {
        for i in 0..self.n {
            let Some(x) = f(self, i) else { return };
            if !self.set_entry(out, i, x) {
                return;
            }
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
                let norm = scalar::finish_norm(sum, || {
                    scalar::scaled_norm((0..n).map(|i| self.entry(a, i).unwrap_or(T::NAN)))
                });
                return Reply::Scalar(norm);
            }
            Op::AllFinite { a } => {
                return Reply::Flag((0..n).all(|i| self.entry(a, i).is_some_and(|x| x.is_finite())));
            }
            Op::Copy { from, to } => self.map_entries(to, |s, i| s.entry(from, i)),
            Op::Fill { out, value } => self.map_entries(out, |_, _| Some(value)),
            Op::Unit { out, index, value } => {
                self.map_entries(out, |_, i| Some(if i == index { value } else { T::ZERO }))
            }
            Op::Scale { out, alpha, x } => self.map_entries(out, |s, i| Some(alpha * s.entry(x, i)?)),
            Op::Combine { out, x, alpha, y } => {
                self.map_entries(out, |s, i| Some(s.entry(x, i)? + alpha * s.entry(y, i)?))
            }
            #[cfg(simd)]
            Op::LowRank { then, .. } if then != crate::broyden::ops::Then::Nothing => {
                return self.run_lowered(*op);
            }
            Op::LowRank { out, from, beta, alpha, a, b, pairs, x, .. } => {
                // The rows read may not include the output.
                let row_of = |f: Factor, r: usize| if f == Factor::U { Vector::U(r) } else { Vector::V(r) };
                if (0..pairs.end).any(|r| pairs.contains(r) && (row_of(a, r) == out || row_of(b, r) == out)) {
                    return Reply::None;
                }
                let mut coef = [T::ZERO; 8];
                for (used, r) in (0..pairs.end).filter(|&r| pairs.contains(r)).enumerate() {
                    let Some(c) = coef.get_mut(used) else { return Reply::None };
                    *c = alpha * self.dot_entries(row_of(b, r), x);
                }
                self.map_entries(out, |s, i| {
                    let mut y = if from == out { s.entry(out, i)? } else { beta * s.entry(from, i)? };
                    let rows = (0..pairs.end).filter(|&r| pairs.contains(r));
                    for (r, c) in rows.zip(&coef) {
                        y += *c * s.entry(row_of(a, r), i)?;
                    }
                    Some(y)
                });
            }
        }
        Reply::None
    }
}
