//! Each solver on standard problems (time per solve; the f-evaluations are printed
//! before the timings), and the batch throughput of the lockstep solver against the
//! thread count (64 samples of a d = 256 DEQ layer, `LayerBackend`).
//!
//! Run with `cargo bench -p deq-benches --bench solvers -- --warm-up-time 1 --measurement-time 2`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use deq_problems::suite::{LINEAR_SEED, tanh_seed};
use deq_problems::{FixedPointProblem, HEquation, LinearMap, TanhLayer};
use solver_core::Options;
use solver_host::model::DeqLayer;
use solver_host::{DynAnderson, DynBroyden, DynPicard, LayerBackend, Lockstep, Solver};

/// The problems: `(bench id, problem)`.
fn problems() -> Vec<(&'static str, Box<dyn FixedPointProblem>)> {
    vec![
        ("tanh_d256_rho0.9", Box::new(TanhLayer::new(256, 0.9, tanh_seed(256, 1)))),
        ("tanh_d1024_rho0.99", Box::new(TanhLayer::new(1024, 0.99, tanh_seed(1024, 2)))),
        ("hequation_n500_c0.99", Box::new(HEquation::new(500, 0.99))),
        ("linear_d64_rho1.5", Box::new(LinearMap::new(64, 1.5, LINEAR_SEED))),
    ]
}

/// The solvers of the comparison (the settings of `feval_table`).
fn solver(name: &str, d: usize) -> Box<dyn Solver> {
    match name {
        "broyden" => Box::new(DynBroyden::with_sizes(d, 8).expect("sizes")),
        "anderson" => Box::new(DynAnderson::with_sizes(d, 5).expect("sizes")),
        _ => Box::new(DynPicard::with_sizes(d).expect("sizes")),
    }
}

fn bench_solvers(c: &mut Criterion) {
    let opts = Options { max_iters: 500, tol_rel: 1e-6, ..Options::DEFAULT };
    let mut g = c.benchmark_group("solve");
    for (id, p) in problems() {
        for name in ["broyden", "anderson", "picard"] {
            let mut s = solver(name, p.dim());
            let mut z = p.start();
            let r = s.solve(&mut |x, o| p.f(x, o), &mut z, &opts).expect("sizes");
            println!("{id} {name}: {} f-evaluations, {}", r.f_evals, r.status);
            g.bench_function(BenchmarkId::new(id, name), |b| {
                b.iter(|| {
                    let mut z = p.start();
                    black_box(s.solve(&mut |x, o| p.f(x, o), &mut z, &opts).expect("sizes"))
                });
            });
        }
    }
    g.finish();
}

fn bench_batch(c: &mut Criterion) {
    let (samples, h, p) = (64, 256, 64);
    let layer = DeqLayer::demo(h, p);
    let x: Vec<f32> = (0..samples * p).map(|i| ((i * 7919) % 2000) as f32 / 1000.0 - 1.0).collect();
    let opts = Options { max_iters: 500, tol_rel: 1e-6, ..Options::DEFAULT };
    let mut g = c.benchmark_group("batch_lockstep_64x256");
    g.throughput(Throughput::Elements(samples as u64));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let mut lock = Lockstep::new(samples, || DynBroyden::with_sizes(h, 8)).expect("sizes");
        let backend = pool.install(|| LayerBackend::new(&layer, &x, samples, 1)).expect("shapes");
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                let mut z = vec![0.0f32; samples * h];
                pool.install(|| lock.solve(&backend, &mut z, &opts, &mut |_| {})).expect("solve");
                black_box(z)
            });
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_solvers(&mut c);
    bench_batch(&mut c);
    c.final_summary();
}
