//! Dot products formed ahead: while a low-rank operation reads the rows of a factor (or
//! forms one), it can dot them with a vector a later product will multiply, so that
//! product need not read those rows for its coefficients ([`Op::LowRank`]'s `ahead`).
//! [`Ahead`] holds them until an operation writes the vector or a row; the slice
//! executor keeps one per solve ([`SliceVectors::keeping`]).
//!
//! [`Op::LowRank`]: super::ops::Op::LowRank
//! [`SliceVectors::keeping`]: super::ops::SliceVectors::keeping

use super::ops::{Factor, Op, Pairs, Then, Vector};
use crate::Real;

/// Rows an [`Ahead`] can hold a dot product for: `0..ROWS`; none where the kernels have
/// no vector registers (Cortex-M), which form no dots ahead (so the solver's
/// `FOOTPRINT` holds no room for them there).
const ROWS: usize = if crate::kernels::SIMD { 8 } else { 0 };

/// How a dot product was accumulated: as a single row's product computes its
/// coefficient (the four-accumulator [`dot`](crate::kernels::dot)) or as a block of
/// several rows does (one accumulator of lanes per row). A product uses the dots made
/// the way it would make them, so its values are the same bits either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Style {
    /// A single row's.
    Single,
    /// A block's.
    Block,
}

/// The dot products of rows of one factor with one vector, formed ahead by an executor
/// for a later low-rank product. Opaque: a solver keeps one beside its buffers so that
/// dots formed before an evaluation serve after it.
#[derive(Clone, Copy, Debug)]
pub struct Ahead<T> {
    /// The factor, the vector and how the dots were accumulated, when any is held.
    key: Option<(Factor, Vector, Style)>,
    /// Row `i`'s dot, when bit `i` of `valid` is set.
    dots: [T; ROWS],
    valid: u8,
}

impl<T: Real> Default for Ahead<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Real> Ahead<T> {
    /// None held.
    pub const fn new() -> Self {
        Ahead { key: None, dots: [T::ZERO; ROWS], valid: 0 }
    }

    /// Forgets every dot.
    pub fn forget(&mut self) {
        self.key = None;
        self.valid = 0;
    }

    /// Holds `dots[k]` as the dot of the `k`-th row of `pairs` (in order) of `factor`
    /// with `with`, plus `(row, dot)` when given; nothing when a row is beyond those an
    /// `Ahead` holds.
    pub(crate) fn hold(
        &mut self,
        (factor, with, style): (Factor, Vector, Style),
        pairs: Pairs,
        dots: &[T],
        extra: Option<(usize, T)>,
    ) {
        self.forget();
        let rows = (0..pairs.end).filter(|&i| pairs.contains(i));
        let all = rows.clone().zip(dots).map(|(i, d)| (i, *d)).chain(extra);
        if rows.clone().count() > dots.len() || all.clone().any(|(i, _)| i >= ROWS) {
            return;
        }
        for (i, d) in all {
            if let Some(slot) = self.dots.get_mut(i) {
                *slot = d;
                self.valid |= 1 << i;
            }
        }
        self.key = Some((factor, with, style));
    }

    /// The dots of the rows of `b` in `pairs` with `x`, in order, if all are held and
    /// were made the way a product over those rows makes them.
    pub(crate) fn dots_for(&self, b: Factor, pairs: Pairs, x: Vector) -> Option<[T; 8]> {
        let (factor, with, style) = self.key?;
        let rows = (0..pairs.end).filter(|&i| pairs.contains(i));
        let count = rows.clone().count();
        let wanted = if count == 1 { Style::Single } else { Style::Block };
        if (factor, with, style) != (b, x, wanted) || count == 0 || count > ROWS {
            return None;
        }
        let mut out = [T::ZERO; 8];
        for (o, i) in out.iter_mut().zip(rows) {
            if i >= ROWS || self.valid & (1 << i) == 0 {
                return None;
            }
            *o = *self.dots.get(i)?;
        }
        Some(out)
    }

    /// Forgets the dots `op` makes stale: all of them when it writes their vector, a
    /// row's when it writes that row.
    pub(crate) fn invalidate(&mut self, op: &Op<T>) {
        let Some((factor, with, _)) = self.key else { return };
        let mut written = |w: Vector| {
            if w == with {
                self.forget();
            } else if let (Factor::U, Vector::U(i)) | (Factor::V, Vector::V(i)) = (factor, w)
                && i < ROWS
            {
                self.valid &= !(1 << i);
            }
        };
        match *op {
            Op::Evaluate { out, .. }
            | Op::Copy { to: out, .. }
            | Op::Scale { out, .. }
            | Op::Combine { out, .. }
            | Op::Fill { out, .. }
            | Op::Unit { out, .. } => written(out),
            Op::LowRank { out, then, .. } => {
                written(out);
                match then {
                    Then::Nothing => {}
                    Then::Secant { g, .. } => written(g),
                    Then::Pair { row, trial, .. } => {
                        written(row);
                        written(trial);
                    }
                }
            }
            Op::AddOuter { .. } | Op::Invert { .. } => self.forget(),
            Op::Dot { .. } | Op::Norm { .. } | Op::AllFinite { .. } | Op::Done(_) => {}
        }
    }
}
