//! The dense-model operations of the slice executor (`Unit`, `AddOuter`, `Invert`), each
//! against a plain reference with fixed seeds, and their bad inputs: wrong sizes,
//! singular and non-finite matrices, vectors outside the buffers. None panics.

use deq_problems::rng::SplitMix64;
use solver_core::broyden::ops::{Factor, Op, Reply, SliceVectors, Vector};

/// The buffers of one solve: `u`, `v` (`m` rows of `n`), five work vectors, `z`.
struct Bufs {
    n: usize,
    u: Vec<f64>,
    v: Vec<f64>,
    work: Vec<f64>,
    z: Vec<f64>,
}

impl Bufs {
    fn random(n: usize, m: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut draw = |len: usize| (0..len).map(|_| rng.uniform() * 2.0 - 1.0).collect::<Vec<f64>>();
        Bufs { n, u: draw(m * n), v: draw(m * n), work: draw(5 * n), z: draw(n) }
    }

    fn run(&mut self, op: Op<f64>) -> Reply<f64> {
        SliceVectors::new(self.n, &mut self.u, &mut self.v, &mut self.work, &mut self.z).execute(&op)
    }

    fn work(&self, w: Vector) -> &[f64] {
        let i = w.work_index().unwrap();
        &self.work[i * self.n..(i + 1) * self.n]
    }
}

#[test]
fn unit_sets_one_entry() {
    let mut b = Bufs::random(6, 3, 1);
    b.run(Op::Unit { out: Vector::P, index: 4, value: 2.5 });
    assert_eq!(b.work(Vector::P), &[0.0, 0.0, 0.0, 0.0, 2.5, 0.0]);
    b.run(Op::Unit { out: Vector::V(2), index: 0, value: -1.0 });
    assert_eq!(&b.v[12..18], &[-1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    // An index beyond n: the zero vector. A row beyond the buffers: nothing.
    b.run(Op::Unit { out: Vector::G, index: 6, value: 1.0 });
    assert_eq!(b.work(Vector::G), &[0.0; 6]);
    let before = b.u.clone();
    b.run(Op::Unit { out: Vector::U(3), index: 0, value: 1.0 });
    assert_eq!(b.u, before);
}

#[test]
fn add_outer_is_a_rank_one_update_of_rows() {
    for (n, m, rows, seed) in [(5, 8, 5, 2), (4, 4, 3, 3), (7, 9, 7, 4)] {
        let mut b = Bufs::random(n, m, seed);
        let (u0, coef, x) = (b.u.clone(), b.work(Vector::Xn).to_vec(), b.work(Vector::P).to_vec());
        b.run(Op::AddOuter { a: Factor::U, rows, coef: Vector::Xn, x: Vector::P });
        for j in 0..m {
            for i in 0..n {
                let want = if j < rows { u0[j * n + i] + coef[j] * x[i] } else { u0[j * n + i] };
                assert!((b.u[j * n + i] - want).abs() <= 1e-15, "n {n} row {j} entry {i}");
            }
        }
    }
    // Coefficients or x not work vectors: nothing changes.
    let mut b = Bufs::random(4, 4, 5);
    let before = b.u.clone();
    b.run(Op::AddOuter { a: Factor::U, rows: 4, coef: Vector::V(0), x: Vector::P });
    b.run(Op::AddOuter { a: Factor::U, rows: 4, coef: Vector::P, x: Vector::Best });
    assert_eq!(b.u, before);
}

/// `A` (columns the first `n` rows of `v`) times `X` (columns the first `n` rows of
/// `u`), minus `shift·A`: the identity when `u = A⁻¹ + shift·I`.
fn product_error(a: &[f64], u: &[f64], n: usize, shift: f64) -> f64 {
    let mut worst: f64 = 0.0;
    for i in 0..n {
        for j in 0..n {
            let s: f64 =
                (0..n).map(|k| a[k * n + i] * (u[j * n + k] - if k == j { shift } else { 0.0 })).sum();
            worst = worst.max((s - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    worst
}

#[test]
fn invert_gives_the_inverse_plus_the_shift() {
    for (n, m, seed) in [(1, 1, 10), (2, 8, 11), (5, 8, 12), (8, 8, 13), (12, 16, 14)] {
        let mut b = Bufs::random(n, m, seed);
        // Diagonally weighted so that pivoting matters but the matrix is well-conditioned.
        for j in 0..n {
            b.v[j * n + (j + 1) % n] += 3.0;
        }
        let a = b.v[..n * n].to_vec();
        let (u_tail, v_tail) = (b.u[n * n..].to_vec(), b.v[n * n..].to_vec());
        assert_eq!(b.run(Op::Invert { rows: n, shift: 0.75 }), Reply::Flag(true), "n {n}");
        assert!(product_error(&a, &b.u, n, 0.75) <= 1e-12, "n {n}: {}", product_error(&a, &b.u, n, 0.75));
        for j in 0..n {
            for i in 0..n {
                assert_eq!(b.v[j * n + i], if i == j { 1.0 } else { 0.0 });
            }
        }
        // Rows beyond n are untouched.
        assert_eq!((&b.u[n * n..], &b.v[n * n..]), (&u_tail[..], &v_tail[..]));
    }
}

#[test]
fn invert_refuses_what_it_cannot_invert() {
    // Two equal columns of small integers: singular, and the elimination finds the zero
    // pivot exactly.
    let mut b = Bufs::random(3, 4, 20);
    b.v[..9].copy_from_slice(&[1.0, 2.0, -1.0, 1.0, 2.0, -1.0, 0.0, 3.0, 1.0]);
    assert_eq!(b.run(Op::Invert { rows: 3, shift: 0.0 }), Reply::Flag(false));
    // A non-finite entry.
    let mut b = Bufs::random(3, 4, 21);
    b.v[4] = f64::NAN;
    assert_eq!(b.run(Op::Invert { rows: 3, shift: 0.0 }), Reply::Flag(false));
    // An inverse that overflows.
    let mut b = Bufs::random(2, 2, 22);
    b.v[..4].copy_from_slice(&[1e-310, 0.0, 0.0, 1e-310]);
    assert_eq!(b.run(Op::Invert { rows: 2, shift: 0.0 }), Reply::Flag(false));
    // rows ≠ n, or too few rows of u and v for an n × n matrix.
    let mut b = Bufs::random(4, 8, 23);
    assert_eq!(b.run(Op::Invert { rows: 3, shift: 0.0 }), Reply::Flag(false));
    let mut b = Bufs::random(4, 3, 24);
    let before = (b.u.clone(), b.v.clone());
    assert_eq!(b.run(Op::Invert { rows: 4, shift: 0.0 }), Reply::Flag(false));
    assert_eq!((b.u, b.v), before);
}
