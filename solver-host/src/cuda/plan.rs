//! One round on the host: the operations of all samples, checked and grouped by kind
//! into the parameter lists the kernels read, and the replies made from the sums the
//! kernels leave. Pure host code, tested without a device.

use solver_core::broyden::ops::{BroydenOp, Pairs, Reply, Store, Vector};

use super::CudaError;

/// One sample's operation as the kernels read it: `struct Entry` of `kernels.cu`,
/// `[sample, a, b, c, end, skip, alpha, inv]`, the floats as their bits.
pub(crate) type Entry = [i32; ENTRY_INTS];

/// Number of 4-byte fields of an [`Entry`].
pub(crate) const ENTRY_INTS: usize = 8;

/// Doubles per sample in the reply buffer.
pub(crate) const RESULT_STRIDE: usize = 4;

/// The kinds of operation, in launch order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `out ← f(point)`. Entry: `a` = out, `b` = point.
    Evaluate,
    /// Entry: `a` = x, `b` = g, `c` = root.
    Residual,
    /// Entry: `a` = from.
    KeepBest,
    /// Entry: `c` = reset, `alpha`.
    Trial,
    /// Entry: `end`, `skip`.
    Accept,
    /// Entry: `a` = slot, `end`, `skip`, `inv`.
    NewU,
    /// Entry: `a` = 0 nothing / 1 keep / 2 zero, `b` = slot.
    Finish,
    /// Entry: `end` = count.
    Step,
}

impl Kind {
    /// Every kind, in launch order.
    pub(crate) const ALL: [Kind; 8] = [
        Kind::Evaluate,
        Kind::Residual,
        Kind::KeepBest,
        Kind::Trial,
        Kind::Accept,
        Kind::NewU,
        Kind::Finish,
        Kind::Step,
    ];
}

/// A run of consecutive samples evaluating the same point into the same output: one
/// matrix product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    /// First sample.
    pub first: usize,
    /// Number of samples.
    pub len: usize,
    /// The vector evaluated.
    pub point: usize,
    /// The vector receiving `f(point)`.
    pub out: usize,
}

/// The operations of one round, grouped by kind.
pub(crate) struct Plan {
    /// The lists of every kind, concatenated in launch order: what is uploaded.
    params: Vec<i32>,
    /// Per kind: the offset (in entries) of its list in `params` and its length.
    at: [(usize, usize); Kind::ALL.len()],
    /// Per kind: the largest `end` of its lists (the coefficients to compute).
    rows: [usize; Kind::ALL.len()],
    lists: [Vec<Entry>; Kind::ALL.len()],
    /// Bytes the solver operations of the round read and write in device memory.
    pub bytes: u64,
}

fn entry(sample: usize, a: usize, b: usize, c: bool) -> Entry {
    // Every index was checked against the sizes, which fit an i32 (checked by `new`).
    [sample as i32, a as i32, b as i32, i32::from(c), 0, -1, 0, 0]
}

/// `(end, skip, count)` of a pairs set with `m` slots: `skip` as the kernels read it
/// (`-1` when no row is left out) and `count` the rows in the set.
fn pairs(p: Pairs, m: usize, what: &str) -> Result<(i32, i32, usize), CudaError> {
    if p.end > m {
        return Err(CudaError::InvalidOp(format!("{what}: pairs up to row {} of {m}", p.end)));
    }
    let skip = p.skip.filter(|&s| s < p.end);
    Ok((p.end as i32, skip.map_or(-1, |s| s as i32), p.end - usize::from(skip.is_some())))
}

fn slot(s: usize, m: usize, what: &str) -> Result<usize, CudaError> {
    if s < m { Ok(s) } else { Err(CudaError::InvalidOp(format!("{what}: slot {s} of {m}"))) }
}

impl Plan {
    /// An empty plan for `samples` samples.
    pub(crate) fn new(samples: usize) -> Self {
        Plan {
            params: Vec::with_capacity(samples * ENTRY_INTS),
            at: [(0, 0); Kind::ALL.len()],
            rows: [0; Kind::ALL.len()],
            lists: core::array::from_fn(|_| Vec::with_capacity(samples)),
            bytes: 0,
        }
    }

    /// Groups `ops` (one per sample; `None` for samples that wait for nothing) for
    /// samples of dimension `d` with `m` pair slots, checking every index.
    pub(crate) fn build(&mut self, ops: &[Option<BroydenOp>], m: usize, d: usize) -> Result<(), CudaError> {
        self.lists.iter_mut().for_each(Vec::clear);
        self.rows = [0; Kind::ALL.len()];
        let mut floats = 0u64;
        for (s, op) in ops.iter().enumerate() {
            let Some(op) = op else { continue };
            let (kind, e, moved) = match *op {
                BroydenOp::Evaluate { point, out } => {
                    if point == out {
                        return Err(CudaError::InvalidOp(format!("evaluation of {point:?} in place")));
                    }
                    (Kind::Evaluate, entry(s, out.index(), point.index(), false), 0)
                }
                BroydenOp::Residual { x, g, root } => {
                    (Kind::Residual, entry(s, x.index(), g.index(), root), if root { 2 } else { 3 })
                }
                BroydenOp::KeepBest { from } => (Kind::KeepBest, entry(s, from.index(), 0, false), 2),
                BroydenOp::Trial { reset, alpha } => {
                    let mut e = entry(s, 0, 0, reset);
                    e[6] = alpha.to_bits() as i32;
                    (Kind::Trial, e, if reset { 4 } else { 3 })
                }
                BroydenOp::Accept { pairs: p } => {
                    let (end, skip, k) = pairs(p, m, "accept")?;
                    let mut e = entry(s, 0, 0, false);
                    (e[4], e[5]) = (end, skip);
                    (Kind::Accept, e, 10 + 2 * k)
                }
                BroydenOp::NewU { slot: at, pairs: p, inv } => {
                    let at = slot(at, m, "new u")?;
                    let (end, skip, k) = pairs(p, m, "new u")?;
                    if at < end as usize && skip != at as i32 {
                        return Err(CudaError::InvalidOp(format!("new u: slot {at} is among its pairs")));
                    }
                    let mut e = entry(s, at, 0, false);
                    (e[4], e[5], e[7]) = (end, skip, inv.to_bits() as i32);
                    (Kind::NewU, e, 4 + 2 * k)
                }
                BroydenOp::Finish { store } => {
                    let (what, at) = match store {
                        Store::Nothing => (0, 0),
                        Store::Keep(at) => (1, slot(at, m, "finish")?),
                        Store::Zero(at) => (2, slot(at, m, "finish")?),
                    };
                    (Kind::Finish, entry(s, what, at, false), if what == 0 { 2 } else { 4 })
                }
                BroydenOp::Step { count } => {
                    let (end, _, k) = pairs(Pairs { end: count, skip: None }, m, "step")?;
                    let mut e = entry(s, 0, 0, false);
                    e[4] = end;
                    (Kind::Step, e, 3 + 2 * k)
                }
                BroydenOp::Done(_) => continue,
            };
            let k = kind as usize;
            self.rows[k] = self.rows[k].max(e[4] as usize);
            self.lists[k].push(e);
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
        [Kind::Residual, Kind::Accept, Kind::NewU, Kind::Step]
            .iter()
            .any(|&k| !self.lists[k as usize].is_empty())
    }

    /// The evaluations as runs of consecutive samples with the same point and output.
    pub(crate) fn runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        for e in &self.lists[Kind::Evaluate as usize] {
            let (s, out, point) = (e[0] as usize, e[1] as usize, e[2] as usize);
            match runs.last_mut() {
                Some(r) if r.first + r.len == s && r.point == point && r.out == out => r.len += 1,
                _ => runs.push(Run { first: s, len: 1, point, out }),
            }
        }
        runs
    }
}

/// The reply to `op` from the sums the kernels left for its sample
/// (`[RESULT_STRIDE]` doubles: sums of squares, dot products, non-finite counts).
pub(crate) fn reply(op: &BroydenOp, sums: &[f64]) -> Reply {
    let at = |i: usize| sums.get(i).copied().unwrap_or(f64::NAN);
    // A square root in double, then rounded: exact at every f32 scale (the sums of
    // squares of f32 values neither overflow nor underflow in double).
    let norm = |i: usize| at(i).sqrt() as f32;
    match op {
        BroydenOp::Residual { .. } => Reply::Residual { abs: norm(1), scale: norm(0), finite: at(2) == 0.0 },
        BroydenOp::Accept { .. } => Reply::Dots { vg: at(0) as f32, v_norm: norm(1), g_norm: norm(2) },
        BroydenOp::NewU { .. } | BroydenOp::Step { .. } => Reply::Finite(at(0) == 0.0),
        _ => Reply::None,
    }
}

/// Index of a vector among the five (for the kernels).
pub(crate) const fn vector(v: Vector) -> i32 {
    v.index() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_kind_in_launch_order_and_checks_slots() {
        let ops = [
            Some(BroydenOp::Step { count: 3 }),
            None,
            Some(BroydenOp::Accept { pairs: Pairs { end: 4, skip: Some(2) } }),
            Some(BroydenOp::Step { count: 1 }),
            Some(BroydenOp::Trial { reset: true, alpha: 0.5 }),
        ];
        let mut plan = Plan::new(5);
        plan.build(&ops, 4, 10).unwrap();
        assert_eq!(plan.at(Kind::Trial), (0, 1));
        assert_eq!(plan.at(Kind::Accept), (1, 1));
        assert_eq!(plan.at(Kind::Step), (2, 2));
        assert_eq!(plan.params().len(), 4 * ENTRY_INTS);
        assert_eq!(&plan.params()[..ENTRY_INTS], &[4, 0, 0, 1, 0, -1, 0.5f32.to_bits() as i32, 0]);
        assert_eq!(&plan.params()[ENTRY_INTS..2 * ENTRY_INTS], &[2, 0, 0, 0, 4, 2, 0, 0]);
        assert_eq!(plan.rows(Kind::Step), 3);
        assert_eq!(plan.rows(Kind::Accept), 4);
        assert!(plan.has_replies() && !plan.evaluates());
        // Bytes: trial with reset 4d, accept over 3 pairs 16d, steps 9d and 5d.
        assert_eq!(plan.bytes, (4 + 16 + 9 + 5) * 4 * 10);

        for bad in [
            BroydenOp::Step { count: 5 },
            BroydenOp::Finish { store: Store::Keep(4) },
            BroydenOp::NewU { slot: 1, pairs: Pairs { end: 3, skip: None }, inv: 1.0 },
            BroydenOp::Evaluate { point: Vector::X, out: Vector::X },
        ] {
            assert!(matches!(plan.build(&[Some(bad)], 4, 10), Err(CudaError::InvalidOp(_))), "{bad:?}");
        }
        plan.build(
            &[Some(BroydenOp::NewU { slot: 1, pairs: Pairs { end: 3, skip: Some(1) }, inv: 1.0 })],
            4,
            10,
        )
        .unwrap();
    }

    #[test]
    fn evaluations_form_runs_of_consecutive_samples() {
        let ev = |point, out| Some(BroydenOp::Evaluate { point, out });
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
        let r =
            reply(&BroydenOp::Residual { x: Vector::X, g: Vector::G, root: false }, &[9.0, 16.0, 0.0, 0.0]);
        assert_eq!(r, Reply::Residual { abs: 4.0, scale: 3.0, finite: true });
        // Sums of squares beyond f32: the norm is exact when it fits, ∞ when not.
        let big =
            reply(&BroydenOp::Residual { x: Vector::X, g: Vector::G, root: true }, &[1e60, 1e80, 1.0, 0.0]);
        assert_eq!(big, Reply::Residual { abs: f32::INFINITY, scale: 1e30, finite: false });
        let a = reply(&BroydenOp::Accept { pairs: Pairs { end: 0, skip: None } }, &[-2.0, 4.0, 25.0, 0.0]);
        assert_eq!(a, Reply::Dots { vg: -2.0, v_norm: 2.0, g_norm: 5.0 });
        assert_eq!(reply(&BroydenOp::Step { count: 0 }, &[3.0, 0.0, 0.0, 0.0]), Reply::Finite(false));
        assert_eq!(reply(&BroydenOp::KeepBest { from: Vector::X }, &[]), Reply::None);
    }
}
