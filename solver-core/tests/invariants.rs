//! Properties that hold for every solver on random contractive layers
//! `f(z) = tanh(W z + c)` (proptest, fixed seed): the report describes the returned
//! iterate, the returned iterate is never worse than the start, counts are consistent,
//! and the answer is a fixed point to the tolerance asked for.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use solver_core::{
    AndersonSlices, BroydenSlices, Options, PicardSlices, Report, Solver, Status, anderson, broyden,
};

/// A random layer of size n with ‖W‖_∞ ≤ rho (so a contraction for rho < 1).
#[derive(Debug, Clone)]
struct Layer {
    n: usize,
    w: Vec<f32>,
    c: Vec<f32>,
}

impl Layer {
    fn f(&self, z: &[f32], out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            let row = &self.w[i * self.n..(i + 1) * self.n];
            let s: f32 = row.iter().zip(z).map(|(a, b)| a * b).sum();
            *o = (s + self.c[i]).tanh();
        }
    }

    /// `(‖f(z) − z‖₂, ‖f(z)‖₂)` recomputed in f64 from the f32 map.
    fn residual(&self, z: &[f32]) -> (f64, f64) {
        let mut f = vec![0.0f32; self.n];
        self.f(z, &mut f);
        let r = f.iter().zip(z).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt();
        let s = f.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
        (r, s)
    }
}

fn layer() -> impl Strategy<Value = Layer> {
    (1usize..24, 0.1f32..0.9).prop_flat_map(|(n, rho)| {
        (prop::collection::vec(-1.0f32..1.0, n * n), prop::collection::vec(-2.0f32..2.0, n)).prop_map(
            move |(mut w, c)| {
                for row in w.chunks_mut(n) {
                    let sum: f32 = row.iter().map(|v| v.abs()).sum();
                    if sum > 0.0 {
                        row.iter_mut().for_each(|v| *v *= rho / sum);
                    }
                }
                Layer { n, w, c }
            },
        )
    })
}

fn solve(k: usize, l: &Layer, m: usize, opts: &Options) -> (Vec<f32>, Report) {
    let n = l.n;
    let mut z = vec![0.0f32; n];
    let mut f = |x: &[f32], o: &mut [f32]| l.f(x, o);
    let r = match k {
        0 => {
            let [lu, lv, lw] = broyden::buffer_lens(n, m).unwrap();
            let (mut u, mut v, mut w) = (vec![0.0; lu], vec![0.0; lv], vec![0.0; lw]);
            let mut s = BroydenSlices::from_slices(n, m, [&mut u, &mut v, &mut w]).unwrap();
            s.solve(&mut f, &mut z, opts).unwrap()
        }
        1 => {
            let mut bufs = anderson::buffer_lens(n, m).unwrap().map(|len| vec![0.0f32; len]);
            let [a, b, c, d, e, g] = &mut bufs;
            let mut s = AndersonSlices::from_slices(n, m, [a, b, c, d, e, g]).unwrap();
            s.solve(&mut f, &mut z, opts).unwrap()
        }
        _ => {
            let mut work = vec![0.0; 2 * n];
            let mut s = PicardSlices::from_slices(n, [&mut work]).unwrap();
            s.solve(&mut f, &mut z, opts).unwrap()
        }
    };
    (z, r)
}

proptest! {
    #![proptest_config(Config { cases: 200, rng_seed: RngSeed::Fixed(0x5eed_d0e5), ..Config::default() })]

    #[test]
    fn every_solver_reports_what_it_returns(l in layer(), m in 1usize..9, k in 0usize..3, max_iters in 0u32..60) {
        let opts = Options { max_iters, tol_rel: 1e-5, ..Options::DEFAULT };
        let (z, r) = solve(k, &l, m, &opts);
        prop_assert!(z.iter().all(|v| v.is_finite()));
        // The residuals in the report are those of the returned z.
        let (res, scale) = l.residual(&z);
        prop_assert!((res - f64::from(r.residual_abs)).abs() <= 1e-5 * scale.max(1.0), "{res} vs {r:?}");
        // Never worse than the start.
        let (res0, _) = l.residual(&vec![0.0; l.n]);
        prop_assert!(res <= res0 * (1.0 + 1e-6) + 1e-7, "{res} > start {res0}");
        // Counts: one evaluation per iteration, plus the start (no line search here).
        prop_assert!(r.iterations <= max_iters);
        prop_assert_eq!(r.f_evals, r.iterations + 1);
        match r.status {
            Status::Converged => prop_assert!(res <= 1e-5 * scale * 1.001 + 1e-6, "{res} {scale} {r:?}"),
            Status::MaxIterations => prop_assert_eq!(r.iterations, max_iters),
            other => prop_assert!(false, "unexpected status {other:?} for a contraction: {r:?}"),
        }
    }

    #[test]
    fn contractions_converge_to_the_same_point(l in layer(), m in 1usize..9) {
        let opts = Options { max_iters: 400, tol_rel: 1e-6, ..Options::DEFAULT };
        let answers: Vec<_> = (0..3).map(|k| solve(k, &l, m, &opts)).collect();
        for (z, r) in &answers {
            prop_assert_eq!(r.status, Status::Converged, "{:?}", r);
            for (a, b) in z.iter().zip(&answers[2].0) {
                prop_assert!((a - b).abs() <= 1e-4, "{a} vs {b}");
            }
        }
    }
}
