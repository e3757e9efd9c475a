//! One round on the host: the operations of all samples, checked and grouped by kind
//! into the parameter lists the kernels read, and the replies made from the sums the
//! kernels leave. Pure host code, tested without a device.

use solver_core::broyden::ops::{Factor, Op, Pairs, Reply, Then, Vector};

use super::CudaError;

/// One sample's operation as the kernels read it: `struct Entry` of `kernels.cu`,
/// `[sample, out, x, y, end, skip, alpha, factors]`, the float as its bits.
pub(crate) type Entry = [i32; ENTRY_INTS];

/// Number of 4-byte fields of an [`Entry`].
pub(crate) const ENTRY_INTS: usize = 8;

/// The kinds of operation, in launch order. Each is launched once per round, over the
/// samples that asked for it; the fields of its [`Entry`] are given with it (vectors as
/// [`vector`] encodes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `out ← f(x)`. Entry: `out`, `x` (work vectors).
    Evaluate,
    /// `out ← x`. Entry: `out`, `x`.
    Copy,
    /// `out ← alpha·x`. Entry: `out`, `x`, `alpha`.
    Scale,
    /// `out ← x + alpha·y`. Entry: `out`, `x`, `y`, `alpha`.
    Combine,
    /// `out ← out + alpha·Σ aᵢ (bᵢ·x)` over the pairs. Entry: `out`, `x`, `end`, `skip`,
    /// `alpha`, `factors` (`a` in bit 0, `b` in bit 1: 0 for `U`, 1 for `V`).
    LowRank,
    /// `out ← alpha` everywhere. Entry: `out`, `alpha`.
    Fill,
    /// `x · y`. Entry: `x`, `y`.
    Dot,
    /// `‖x‖₂`. Entry: `x`.
    Norm,
    /// Whether every entry of `x` is finite. Entry: `x`.
    AllFinite,
}

impl Kind {
    /// Every kind, in launch order.
    pub(crate) const ALL: [Kind; 9] = [
        Kind::Evaluate,
        Kind::Copy,
        Kind::Scale,
        Kind::Combine,
        Kind::LowRank,
        Kind::Fill,
        Kind::Dot,
        Kind::Norm,
        Kind::AllFinite,
    ];

    /// Whether the operations of this kind have a reply (a sum per sample comes back).
    pub(crate) const fn replies(self) -> bool {
        matches!(self, Kind::Dot | Kind::Norm | Kind::AllFinite)
    }
}

/// A run of consecutive samples evaluating the same point into the same output: one
/// matrix product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// First sample.
    pub first: usize,
    /// Number of samples.
    pub len: usize,
    /// The work vector evaluated (`0..5`).
    pub point: usize,
    /// The work vector receiving `f(point)`.
    pub out: usize,
}

/// The operations of one round, grouped by kind.
pub(crate) struct Plan {
    /// The lists of every kind, concatenated in launch order: what is uploaded.
    params: Vec<i32>,
    /// Per kind: the offset (in entries) of its list in `params` and its length.
    at: [(usize, usize); Kind::ALL.len()],
    /// Per kind: the largest pairs `end` of its lists (the coefficients to compute).
    rows: [usize; Kind::ALL.len()],
    lists: [Vec<Entry>; Kind::ALL.len()],
    /// The evaluations' runs.
    runs: Vec<Run>,
    /// Bytes the solver operations of the round read and write in device memory.
    pub bytes: u64,
}

/// The code of a vector as the kernels read it (`vptr` in `kernels.cu`): `row · 4 +
/// buffer`, the buffer 0 for the work vectors (row: [`Vector::work_index`]), 1 for `U`,
/// 2 for `V`, 3 for the best iterate `z`. Rows of `U` and `V` must be below `m`.
pub(crate) fn vector(v: Vector, m: usize) -> Result<i32, CudaError> {
    let (buf, row) = match v {
        Vector::U(i) => (1, i),
        Vector::V(i) => (2, i),
        Vector::Best => (3, 0),
        w => (0, w.work_index().unwrap_or(0)),
    };
    if matches!(v, Vector::U(_) | Vector::V(_)) && row >= m {
        return Err(CudaError::InvalidOp(format!("{v:?}: row {row} of {m}")));
    }
    row.checked_mul(4)
        .and_then(|r| r.checked_add(buf))
        .and_then(|c| i32::try_from(c).ok())
        .ok_or_else(|| CudaError::InvalidOp(format!("{v:?}: row {row} out of range")))
}

/// `(end, skip, count)` of a pairs set with `m` slots: `skip` as the kernels read it
/// (`-1` when no row of the set is left out) and `count` the rows in the set.
fn pairs(p: Pairs, m: usize) -> Result<(i32, i32, usize), CudaError> {
    if p.end > m {
        return Err(CudaError::InvalidOp(format!("low-rank product: pairs up to row {} of {m}", p.end)));
    }
    let skip = p.skip.filter(|&s| s < p.end);
    Ok((p.end as i32, skip.map_or(-1, |s| s as i32), p.end - usize::from(skip.is_some())))
}

/// Whether `v` is one of the rows of `factor` in `pairs`.
fn among(v: Vector, factor: Factor, pairs: Pairs) -> bool {
    match (v, factor) {
        (Vector::U(i), Factor::U) | (Vector::V(i), Factor::V) => pairs.contains(i),
        _ => false,
    }
}

/// The bit of a factor in an entry's `factors`.
fn factor_bit(f: Factor) -> i32 {
    match f {
        Factor::U => 0,
        Factor::V => 1,
    }
}

impl Plan {
    /// An empty plan for `samples` samples.
    pub(crate) fn new(samples: usize) -> Self {
        Plan {
            params: Vec::with_capacity(samples * ENTRY_INTS),
            at: [(0, 0); Kind::ALL.len()],
            rows: [0; Kind::ALL.len()],
            lists: core::array::from_fn(|_| Vec::with_capacity(samples)),
            runs: Vec::new(),
            bytes: 0,
        }
    }

    /// Groups `ops` (one per sample; `None` for samples that wait for nothing) for
    /// samples of dimension `d` with `m` pair slots, checking every vector and pairs
    /// set: an operation the kernels cannot carry out as [`SliceVectors`] does
    /// (a row beyond `m`, an evaluation not from a work vector into another, a low-rank
    /// product writing a row it reads or into its own `x`) is
    /// [`CudaError::InvalidOp`].
    ///
    /// [`SliceVectors`]: solver_core::broyden::ops::SliceVectors
    pub(crate) fn build(&mut self, ops: &[Option<Op>], m: usize, d: usize) -> Result<(), CudaError> {
        self.lists.iter_mut().for_each(Vec::clear);
        self.rows = [0; Kind::ALL.len()];
        self.runs.clear();
        let mut floats = 0u64;
        let code = |v: Vector| vector(v, m);
        for (s, op) in ops.iter().enumerate() {
            let Some(op) = op else { continue };
            // Every sample index fits an i32 (checked by `CudaBroyden::new`).
            let mut e: Entry = [s as i32, 0, 0, 0, 0, -1, 0, 0];
            let (kind, moved) = match *op {
                Op::Evaluate { point, out } => {
                    let (Some(p), Some(o)) = (point.work_index(), out.work_index()) else {
                        return Err(CudaError::InvalidOp(format!(
                            "evaluation of {point:?} into {out:?}: both must be work vectors"
                        )));
                    };
                    if p == o {
                        return Err(CudaError::InvalidOp(format!("evaluation of {point:?} in place")));
                    }
                    match self.runs.last_mut() {
                        Some(r) if r.first + r.len == s && r.point == p && r.out == o => r.len += 1,
                        _ => self.runs.push(Run { first: s, len: 1, point: p, out: o }),
                    }
                    (e[1], e[2]) = (code(out)?, code(point)?);
                    (Kind::Evaluate, 0)
                }
                Op::Copy { from, to } => {
                    (e[1], e[2]) = (code(to)?, code(from)?);
                    (Kind::Copy, 2)
                }
                Op::Scale { out, alpha, x } => {
                    (e[1], e[2], e[6]) = (code(out)?, code(x)?, alpha.to_bits() as i32);
                    (Kind::Scale, 2)
                }
                Op::Combine { out, x, alpha, y } => {
                    (e[1], e[2], e[3], e[6]) = (code(out)?, code(x)?, code(y)?, alpha.to_bits() as i32);
                    (Kind::Combine, 3)
                }
                Op::LowRank { out, from, beta, alpha, a, b, pairs: p, x, then, .. } => {
                    if from != out || beta != 1.0 || then != Then::Nothing {
                        // OffloadRun lowers these (Op::lower) before a backend sees them.
                        return Err(CudaError::InvalidOp(format!(
                            "low-rank product into {out:?} from {beta}·{from:?} then {then:?}: not lowered"
                        )));
                    }
                    let (end, skip, k) = pairs(p, m)?;
                    if out == x || among(out, a, p) || among(out, b, p) {
                        return Err(CudaError::InvalidOp(format!(
                            "low-rank product into {out:?}, which it reads (x {x:?}, pairs {p:?})"
                        )));
                    }
                    (e[1], e[2], e[4], e[5]) = (code(out)?, code(x)?, end, skip);
                    (e[6], e[7]) = (alpha.to_bits() as i32, factor_bit(a) | (factor_bit(b) << 1));
                    self.rows[Kind::LowRank as usize] = self.rows[Kind::LowRank as usize].max(p.end);
                    // x once, the rows of b, then out read and written and the rows of a.
                    (Kind::LowRank, 3 + 2 * k)
                }
                Op::Fill { out, value } => {
                    (e[1], e[6]) = (code(out)?, value.to_bits() as i32);
                    (Kind::Fill, 1)
                }
                Op::Unit { .. } | Op::AddOuter { .. } | Op::Invert { .. } => {
                    // Only a root solve of n ≤ m unknowns (a dense model) asks for these;
                    // the GPU runs fixed-point solves of DEQ states.
                    return Err(CudaError::InvalidOp(format!(
                        "{op:?}: dense-model operations (root solves of small systems) run on the host"
                    )));
                }
                Op::Dot { a, b } => {
                    (e[2], e[3]) = (code(a)?, code(b)?);
                    (Kind::Dot, 2)
                }
                Op::Norm { a } => {
                    e[2] = code(a)?;
                    (Kind::Norm, 1)
                }
                Op::AllFinite { a } => {
                    e[2] = code(a)?;
                    (Kind::AllFinite, 1)
                }
                Op::Done(_) => continue,
            };
            self.lists[kind as usize].push(e);
            floats += moved as u64;
        }
        self.bytes = floats * 4 * d as u64;
        self.params.clear();
        let mut offset = 0;
        for (at, list) in self.at.iter_mut().zip(&self.lists) {
            *at = (offset, list.len());
            offset += list.len();
            self.params.extend(list.iter().flatten());
        }
        Ok(())
    }

    /// The uploaded parameters: every kind's list, concatenated.
    pub(crate) fn params(&self) -> &[i32] {
        &self.params
    }

    /// Offset (in entries) and length of `kind`'s list in [`params`](Self::params).
    pub(crate) fn at(&self, kind: Kind) -> (usize, usize) {
        self.at[kind as usize]
    }

    /// The largest pairs `end` among `kind`'s operations: the coefficients to compute.
    pub(crate) fn rows(&self, kind: Kind) -> usize {
        self.rows[kind as usize]
    }

    /// Whether the round has no operation at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Whether the round evaluates `f`.
    pub(crate) fn evaluates(&self) -> bool {
        !self.lists[Kind::Evaluate as usize].is_empty()
    }

    /// Whether some operation of the round has a reply (the sums must come back).
    pub(crate) fn has_replies(&self) -> bool {
        Kind::ALL.iter().any(|&k| k.replies() && !self.lists[k as usize].is_empty())
    }

    /// The evaluations as runs of consecutive samples with the same point and output.
    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }
}

/// The reply to `op` from the sum the kernels left for its sample: the dot product, the
/// sum of squares, or the count of non-finite entries, in double.
pub(crate) fn reply(op: &Op, sum: f64) -> Reply {
    match op {
        Op::Dot { .. } => Reply::Scalar(sum as f32),
        // A square root in double, then rounded: exact at every f32 scale (the sums of
        // squares of f32 values neither overflow nor underflow in double).
        Op::Norm { .. } => Reply::Scalar(sum.sqrt() as f32),
        Op::AllFinite { .. } => Reply::Flag(sum == 0.0),
        _ => Reply::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Pairs = Pairs { end: 3, skip: None };

    #[test]
    fn groups_by_kind_in_launch_order_and_checks_rows() {
        let low_rank = |out, pairs| Op::LowRank {
            out,
            from: out,
            beta: 1.0,
            alpha: -1.0,
            a: Factor::U,
            b: Factor::V,
            pairs,
            x: Vector::G,
            ahead: None,
            then: Then::Nothing,
        };
        let ops = [
            Some(low_rank(Vector::P, ALL)),
            None,
            Some(Op::Norm { a: Vector::Gn }),
            Some(low_rank(Vector::U(2), Pairs { end: 4, skip: Some(2) })),
            Some(Op::Combine { out: Vector::Xn, x: Vector::X, alpha: 0.5, y: Vector::P }),
            Some(Op::Copy { from: Vector::Xn, to: Vector::V(3) }),
        ];
        let mut plan = Plan::new(6);
        plan.build(&ops, 4, 10).unwrap();
        assert_eq!(plan.at(Kind::Copy), (0, 1));
        assert_eq!(plan.at(Kind::Combine), (1, 1));
        assert_eq!(plan.at(Kind::LowRank), (2, 2));
        assert_eq!(plan.at(Kind::Norm), (4, 1));
        assert_eq!(plan.params().len(), 5 * ENTRY_INTS);
        let p = plan.params();
        // Copy: out V(3) = 3·4 + 2, x Xn = 3·4.
        assert_eq!(&p[..ENTRY_INTS], &[5, 14, 12, 0, 0, -1, 0, 0]);
        assert_eq!(&p[ENTRY_INTS..2 * ENTRY_INTS], &[4, 12, 0, 8, 0, -1, 0.5f32.to_bits() as i32, 0]);
        let minus_one = (-1.0f32).to_bits() as i32;
        assert_eq!(&p[2 * ENTRY_INTS..3 * ENTRY_INTS], &[0, 8, 4, 0, 3, -1, minus_one, 2]);
        assert_eq!(&p[3 * ENTRY_INTS..4 * ENTRY_INTS], &[3, 9, 4, 0, 4, 2, minus_one, 2]);
        assert_eq!(&p[4 * ENTRY_INTS..], &[2, 0, 16, 0, 0, -1, 0, 0]);
        assert_eq!(plan.rows(Kind::LowRank), 4);
        assert!(plan.has_replies() && !plan.evaluates());
        // Bytes: low-rank over 3 pairs 9d (twice), norm d, combine 3d, copy 2d.
        assert_eq!(plan.bytes, (9 + 9 + 1 + 3 + 2) * 4 * 10);

        for bad in [
            low_rank(Vector::P, Pairs { end: 5, skip: None }),
            Op::Copy { from: Vector::X, to: Vector::U(4) },
            low_rank(Vector::U(1), ALL),
            low_rank(Vector::V(1), ALL),
            low_rank(Vector::G, ALL),
            Op::Evaluate { point: Vector::X, out: Vector::X },
            Op::Evaluate { point: Vector::Best, out: Vector::G },
            Op::Unit { out: Vector::P, index: 0, value: 1.0 },
            Op::AddOuter { a: Factor::U, rows: 2, coef: Vector::Xn, x: Vector::P },
            Op::Invert { rows: 10, shift: 1.0 },
        ] {
            assert!(matches!(plan.build(&[Some(bad)], 4, 10), Err(CudaError::InvalidOp(_))), "{bad:?}");
        }
        plan.build(&[Some(low_rank(Vector::U(1), Pairs { end: 3, skip: Some(1) }))], 4, 10).unwrap();
        assert!(!plan.has_replies());
    }

    #[test]
    fn evaluations_form_runs_of_consecutive_samples() {
        let ev = |point, out| Some(Op::Evaluate { point, out });
        let ops = [
            ev(Vector::X, Vector::G),
            ev(Vector::X, Vector::G),
            ev(Vector::Xn, Vector::Gn),
            None,
            ev(Vector::Xn, Vector::Gn),
            ev(Vector::Xn, Vector::Gn),
        ];
        let mut plan = Plan::new(6);
        plan.build(&ops, 2, 3).unwrap();
        assert!(plan.evaluates() && !plan.has_replies());
        assert_eq!(
            plan.runs(),
            [
                Run { first: 0, len: 2, point: 0, out: 1 },
                Run { first: 2, len: 1, point: 3, out: 4 },
                Run { first: 4, len: 2, point: 3, out: 4 },
            ]
        );
    }

    #[test]
    fn replies_from_sums() {
        assert_eq!(reply(&Op::Dot { a: Vector::X, b: Vector::G }, -2.0), Reply::Scalar(-2.0));
        assert_eq!(reply(&Op::Norm { a: Vector::G }, 16.0), Reply::Scalar(4.0));
        // Sums of squares beyond f32: the norm is exact when it fits, ∞ when not.
        assert_eq!(reply(&Op::Norm { a: Vector::G }, 1e60), Reply::Scalar(1e30));
        assert_eq!(reply(&Op::Norm { a: Vector::G }, 1e80), Reply::Scalar(f32::INFINITY));
        assert_eq!(reply(&Op::AllFinite { a: Vector::P }, 0.0), Reply::Flag(true));
        assert_eq!(reply(&Op::AllFinite { a: Vector::P }, 2.0), Reply::Flag(false));
        assert_eq!(reply(&Op::Copy { from: Vector::X, to: Vector::Best }, 0.0), Reply::None);
    }
}
