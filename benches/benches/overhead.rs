//! The solver's own cost per iteration against the cost of one evaluation of a DEQ
//! layer: Broyden (M = 8) and Anderson (M = 5) iterations timed on a map that costs
//! almost nothing (`f(z)ᵢ = 0.9 z₍ᵢ₊₁₎ mod d + 0.1`, a scaled cyclic shift: its
//! eigenvalues lie on a circle, so no solver converges within the 60 iterations
//! timed), next to that map alone and to one evaluation of the built-in DEQ layer of
//! the same size: one sample of `h = 256` (d = 256) and one sample of the
//! `[150 tokens × 700]` DEQ-Transformer-sized state (d = 105 000).
//!
//! Ids: `overhead/<what>/<d>`, each timing one iteration (or one evaluation).
//! Run with `cargo bench -p deq-benches --bench overhead -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use solver_core::Options;
use solver_host::model::DeqLayer;
use solver_host::{DynAnderson, DynBroyden, Solver};

/// Iterations per timed solve.
const ITERS: u32 = 60;

/// `(d, hidden)`: the layer evaluated for that `d` is `d / hidden` rows (tokens) of `hidden`.
const SIZES: [(usize, usize); 2] = [(256, 256), (105_000, 700)];

fn shift(x: &[f32], out: &mut [f32]) {
    let n = x.len();
    out[..n - 1].iter_mut().zip(&x[1..]).for_each(|(o, v)| *o = 0.9 * v + 0.1);
    out[n - 1] = 0.9 * x[0] + 0.1;
}

/// Time per solver iteration (cheap map included).
fn per_iteration(s: &mut dyn Solver, d: usize, iters: u64) -> Duration {
    let opts = Options { max_iters: ITERS, tol_rel: 0.0, tol_abs: 0.0, stall_iters: 0, ..Options::DEFAULT };
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let mut z = vec![0.0f32; d];
        let t0 = Instant::now();
        let r = s.solve(&mut shift, &mut z, &opts).expect("sizes");
        let el = t0.elapsed();
        let n = u64::from(r.iterations.max(1));
        total += el.mul_f64(1.0 / n as f64) * (n.min(iters - done) as u32);
        done += n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("overhead");
    for (d, h) in SIZES {
        let mut br = DynBroyden::with_sizes(d, 8).expect("sizes");
        g.bench_with_input(BenchmarkId::new("broyden_iter", d), &d, |b, &d| {
            b.iter_custom(|n| per_iteration(&mut br, d, n));
        });
        let mut an = DynAnderson::with_sizes(d, 5).expect("sizes");
        g.bench_with_input(BenchmarkId::new("anderson_iter", d), &d, |b, &d| {
            b.iter_custom(|n| per_iteration(&mut an, d, n));
        });
        let x: Vec<f32> = (0..d).map(|i| (i % 17) as f32 * 0.01).collect();
        let mut out = vec![0.0f32; d];
        g.bench_with_input(BenchmarkId::new("cheap_map", d), &d, |b, _| {
            b.iter(|| shift(black_box(&x), black_box(&mut out)));
        });
        let layer = DeqLayer::demo(h, h);
        let inj: Vec<f32> = (0..d).map(|i| (i % 13) as f32 * 0.01).collect();
        g.bench_with_input(BenchmarkId::new("layer_eval", d), &d, |b, _| {
            b.iter(|| layer.apply(black_box(&x), black_box(&inj), black_box(&mut out)));
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
