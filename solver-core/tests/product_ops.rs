//! The slice executor's low-rank products: from a start (`from`, `beta`), with the dots
//! of the next product formed ahead (`ahead`), and with the work that follows them in
//! the same pass (`Then::Secant`, `Then::Pair`). Every sequence of operations run by one
//! executor, which keeps the dots it formed, must leave the bits and give the replies
//! that the same operations lowered to the primitive vocabulary give when each part runs
//! on an executor of its own (which can keep nothing), including when an operation in
//! between writes the vector or a row the dots came from.

use deq_problems::rng::SplitMix64;
use solver_core::broyden::ops::{Ahead, Factor, Lowering, Op, Pairs, Reply, SliceVectors, Then, Vector};

/// The buffers of one solve: `u`, `v` (`m` rows of `n`), five work vectors, `z`.
#[derive(Clone, PartialEq, Debug)]
struct Bufs {
    n: usize,
    u: Vec<f32>,
    v: Vec<f32>,
    work: Vec<f32>,
    z: Vec<f32>,
}

impl Bufs {
    fn random(n: usize, m: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut draw =
            |len: usize| (0..len).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect::<Vec<f32>>();
        Bufs { n, u: draw(m * n), v: draw(m * n), work: draw(5 * n), z: draw(n) }
    }

    fn bits(&self) -> Vec<u32> {
        [&self.u, &self.v, &self.work, &self.z].into_iter().flatten().map(|x| x.to_bits()).collect()
    }

    /// The operations on one executor, which may keep dots between them.
    fn run_together(&mut self, ops: &[Op<f32>]) -> Vec<Reply<f32>> {
        let mut ahead = Ahead::new();
        let mut ex = SliceVectors::new(self.n, &mut self.u, &mut self.v, &mut self.work, &mut self.z)
            .keeping(&mut ahead);
        ops.iter().map(|op| ex.execute(op)).collect()
    }

    /// The operations lowered, each part on an executor of its own.
    fn run_lowered(&mut self, ops: &[Op<f32>]) -> Vec<Reply<f32>> {
        let mut replies = Vec::new();
        for op in ops {
            let mut lowering = Lowering::new(*op);
            while let Some(part) = lowering.next_part() {
                assert!(part.is_primitive(), "{part:?}");
                let reply = SliceVectors::new(self.n, &mut self.u, &mut self.v, &mut self.work, &mut self.z)
                    .execute(&part);
                lowering.answer(reply);
            }
            replies.push(lowering.reply());
        }
        replies
    }
}

/// The bits of a reply.
fn reply_bits(r: &Reply<f32>) -> Vec<u32> {
    match *r {
        Reply::None => vec![],
        Reply::Scalar(s) => vec![s.to_bits()],
        Reply::Flag(f) => vec![u32::from(f)],
        Reply::Scalars(s) => s.iter().map(|x| x.to_bits()).collect(),
        Reply::Flags(f) => f.iter().map(|x| u32::from(*x)).collect(),
    }
}

/// `v = −p + V(Uᵀp)` into the slot, with V's dots with `g₊` formed ahead.
fn v_product(pairs: Pairs, slot: usize) -> Op<f32> {
    Op::LowRank {
        out: Vector::V(slot),
        from: Vector::P,
        beta: -1.0,
        alpha: 1.0,
        a: Factor::V,
        b: Factor::U,
        pairs,
        x: Vector::P,
        ahead: Some(Vector::Gn),
        then: Then::Nothing,
    }
}

/// `−H g₊ = γg₊ − U(Vᵀg₊)` into P: the product that can use those dots.
fn hg_product(pairs: Pairs, gamma: f32) -> Op<f32> {
    Op::LowRank {
        out: Vector::P,
        from: Vector::Gn,
        beta: gamma,
        alpha: -1.0,
        a: Factor::U,
        b: Factor::V,
        pairs,
        x: Vector::Gn,
        ahead: None,
        then: Then::Nothing,
    }
}

/// `v_product` followed by the secant work: `before·G`, `G ← Gn − G` and four dots.
fn secant_product(pairs: Pairs, slot: usize) -> Op<f32> {
    let mut op = v_product(pairs, slot);
    if let Op::LowRank { then, .. } = &mut op {
        *then = Then::Secant { g: Vector::G, gn: Vector::Gn };
    }
    op
}

/// `hg_product` followed by a new row `U(slot)`, the next step and the trial point.
fn pair_product(pairs: Pairs, slot: usize, c: Option<f32>, [r, s]: [f32; 2]) -> Op<f32> {
    let mut op = hg_product(pairs, 1.0);
    if let Op::LowRank { then, .. } = &mut op {
        *then = Then::Pair { row: Vector::U(slot), c, r, s, point: Vector::Xn, trial: Vector::X };
    }
    op
}

fn check(ops: &[Op<f32>], n: usize, m: usize, seed: u64) -> Vec<Reply<f32>> {
    let start = Bufs::random(n, m, seed);
    let (mut together, mut lowered) = (start.clone(), start.clone());
    let replies = together.run_together(ops);
    let lowered_replies = lowered.run_lowered(ops);
    assert!(together.bits() == lowered.bits(), "n {n}, m {m}, seed {seed}: {ops:?}");
    let bits = |r: &[Reply<f32>]| r.iter().map(reply_bits).collect::<Vec<_>>();
    assert_eq!(bits(&replies), bits(&lowered_replies), "replies: n {n}, m {m}, seed {seed}: {ops:?}");
    assert!(together.bits() != start.bits(), "nothing was written");
    replies
}

/// Shapes: shorter than a lane chunk, with and without a tail, pairs in one block and in
/// two (where the fused passes do not apply and the executor runs the parts itself).
const SHAPES: [(usize, usize, u64); 10] = [
    (1, 2, 1),
    (7, 3, 2),
    (11, 2, 8),
    (40, 2, 9),
    (37, 8, 3),
    (64, 8, 4),
    (203, 9, 5),
    (129, 12, 6),
    (96, 10, 7),
    (33, 1, 10),
];

#[test]
fn fused_products_give_the_bits_and_replies_of_their_parts() {
    for (n, m, seed) in SHAPES {
        for slot in [0, m / 2, m - 1] {
            let pairs = Pairs { end: m, skip: Some(slot) };
            for (c, rs) in [(Some(0.3), [1.7, -0.4]), (None, [-2.5, 0.8]), (Some(-1.0), [1.0, 1.0])] {
                let ops = [secant_product(pairs, slot), pair_product(pairs, slot, c, rs)];
                let replies = check(&ops, n, m, seed);
                let [before, vg, v_norm, dg_norm, next] = replies[0].scalars();
                assert!([before, vg, v_norm, dg_norm, next].iter().all(|x| x.is_finite()), "{replies:?}");
                assert_eq!(replies[1].flags(), [true, true]);
                // Pairs that do not fit one block, the pair update alone, a secant
                // without the pair.
                check(&ops[1..], n, m, seed + 10);
                check(&ops[..1], n, m, seed + 20);
            }
        }
    }
}

#[test]
fn fused_products_report_values_that_are_not_finite() {
    let (n, m, slot) = (40, 6, 1);
    let pairs = Pairs { end: m, skip: Some(slot) };
    // r = ∞: the new row overflows (and the next step with it).
    let replies = check(
        &[secant_product(pairs, slot), pair_product(pairs, slot, Some(0.5), [f32::INFINITY, 0.5])],
        n,
        m,
        9,
    );
    assert_eq!(replies[1].flags(), [false, false]);
    // s = ∞: the row is finite, the step is not.
    let replies = check(
        &[secant_product(pairs, slot), pair_product(pairs, slot, Some(0.5), [1.0, f32::INFINITY])],
        n,
        m,
        9,
    );
    assert_eq!(replies[1].flags(), [true, false]);
}

#[test]
fn products_with_dots_formed_ahead_leave_the_bits_of_lowered_ones() {
    for (n, m, seed) in [(1, 2, 1), (7, 3, 2), (37, 8, 3), (64, 8, 4), (203, 9, 5), (129, 12, 6)] {
        for slot in [0, m / 2, m - 1] {
            let pairs = Pairs { end: m, skip: Some(slot) };
            let between = [
                Op::Dot { a: Vector::V(slot), b: Vector::G },
                Op::Norm { a: Vector::G },
                Op::Scale { out: Vector::U(slot), alpha: 0.5, x: Vector::P },
            ];
            let mut ops = vec![v_product(pairs, slot)];
            ops.extend(between);
            ops.push(hg_product(pairs, 1.0));
            check(&ops, n, m, seed);
            check(&[v_product(pairs, slot), hg_product(pairs, 0.75)], n, m, seed + 100);
            // Not the product the dots were formed for: other pairs, another x.
            let fewer = Pairs { end: m - 1, skip: Some(slot.min(m - 2)) };
            check(&[v_product(pairs, slot), hg_product(fewer, 1.0)], n, m, seed + 200);
            let mut other_x = hg_product(pairs, 1.0);
            if let Op::LowRank { x, .. } = &mut other_x {
                *x = Vector::G;
            }
            check(&[v_product(pairs, slot), other_x], n, m, seed + 300);
        }
    }
}

#[test]
fn dots_formed_ahead_are_forgotten_when_their_inputs_change() {
    let (n, m, slot) = (45, 6, 2);
    let pairs = Pairs { end: m, skip: Some(slot) };
    let writes = [
        // g₊ itself.
        Op::Combine { out: Vector::Gn, x: Vector::Gn, alpha: 0.5, y: Vector::G },
        Op::Copy { from: Vector::X, to: Vector::Gn },
        Op::Evaluate { point: Vector::Xn, out: Vector::Gn },
        // A row of V among the pairs.
        Op::Fill { out: Vector::V(0), value: 0.25 },
        Op::Scale { out: Vector::V(m - 1), alpha: -2.0, x: Vector::V(m - 1) },
        Op::Unit { out: Vector::V(1), index: 3, value: 1.0 },
        Op::LowRank {
            out: Vector::V(3),
            from: Vector::V(3),
            beta: 1.0,
            alpha: 1.0,
            a: Factor::U,
            b: Factor::U,
            pairs: Pairs { end: 2, skip: None },
            x: Vector::X,
            ahead: None,
            then: Then::Nothing,
        },
        Op::AddOuter { a: Factor::V, rows: 2, coef: Vector::X, x: Vector::G },
    ];
    for (i, write) in writes.into_iter().enumerate() {
        check(&[v_product(pairs, slot), write, hg_product(pairs, 1.0)], n, m, 40 + i as u64);
    }
    // Writes elsewhere keep them (and the result is the same either way).
    let elsewhere =
        [Op::Fill { out: Vector::V(slot), value: 3.0 }, Op::Fill { out: Vector::U(0), value: 3.0 }];
    for (i, write) in elsewhere.into_iter().enumerate() {
        check(&[v_product(pairs, slot), write, hg_product(pairs, 1.0)], n, m, 60 + i as u64);
    }
}
