//! The solver's overhead at DEQ scale: a lockstep solve of a `[B × L × h]` state next to
//! the time its evaluations of the layer take inside the same solve.
//!
//! ```text
//! cargo run --release -p deq-benches --bin floor [-- B L h [ITERS]]
//! ```
//!
//! Defaults: the `[15 × 150 × 700]` state of a DEQ-Transformer (15 samples of 150 tokens,
//! `h = 700`), on the built-in demonstration layer at that width (`DeqLayer::demo`:
//! tanh, `‖W‖₂ = 0.95`), inputs of width 64, on every thread of rayon's pool (set
//! `RAYON_NUM_THREADS`). For each solver (Broyden M = 8, the same with its history in
//! bf16 (`DynBroyden::with_sizes_bf16`), Anderson M = 5, Picard) it runs
//! the solve twice:
//!
//! * to `tol_rel = 1e-6` (at most 100 iterations), and
//! * for exactly `ITERS` iterations (default 300; `tol = 0`, stall test off),
//!
//! and prints the wall time of the solve, the rounds (the most evaluations any sample
//! made), the **floor**: the thread-seconds spent inside the backend's evaluations,
//! measured by timing each call inside this same solve, divided by the threads (not
//! divided for a backend that takes the whole batch in one call); and the
//! ratio solve / floor. Each figure is the median of 3 solves. `COLUMN_SPLIT=1` or `0`
//! forces the backend's column split on or off
//! ([`LayerBackend::with_column_split`]; by default it is chosen by size), and
//! `ISA=baseline` or `ISA=avx` the instruction set of the solver's kernels
//! ([`solver_core::kernels::isa`]; by default the best the CPU has).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use solver_core::{Options, SizeError};
use solver_host::model::{DeqLayer, InputBatch};
use solver_host::{AnySolver, BatchBackend, DynAnderson, DynBroyden, DynPicard, LayerBackend, Lockstep};

/// A backend that times its evaluations: the nanoseconds of every `eval` call, summed
/// over the threads that make them.
struct Timed<'a> {
    inner: &'a dyn BatchBackend,
    nanos: AtomicU64,
}

impl Timed<'_> {
    /// Runs `eval`, adding its wall time to the total.
    fn timed(&self, eval: impl FnOnce()) {
        let t0 = Instant::now();
        eval();
        self.nanos.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

impl BatchBackend for Timed<'_> {
    fn samples(&self) -> usize {
        self.inner.samples()
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn eval(&self, first: usize, active: &[bool], z: &[f32], out: &mut [f32]) {
        self.timed(|| self.inner.eval(first, active, z, out));
    }

    fn split(&self) -> bool {
        self.inner.split()
    }

    fn piece_len(&self) -> Option<usize> {
        self.inner.piece_len()
    }

    fn eval_piece(&self, sample: usize, piece: usize, z: &[f32], out: &mut [f32]) {
        self.timed(|| self.inner.eval_piece(sample, piece, z, out));
    }
}

/// Builds one sample's solver.
type Make<'a> = &'a dyn Fn() -> Result<AnySolver, SizeError>;

/// One measured solve: wall seconds, floor seconds, rounds, samples converged.
struct Solve {
    wall: f64,
    floor: f64,
    rounds: u32,
    converged: usize,
}

fn solve(backend: &dyn BatchBackend, make: Make<'_>, opts: &Options, threads: usize) -> Solve {
    let (b, d) = (backend.samples(), backend.dim());
    let mut lock = Lockstep::new(b, make).expect("solver sizes");
    let timed = Timed { inner: backend, nanos: AtomicU64::new(0) };
    // The starting point, written through (a state that a network has computed): a
    // fresh zeroed allocation's pages would be mapped at the solver's first write into
    // z, inside the timed solve, and that is the caller's memory, not the solver's.
    let mut z = vec![0.0f32; b * d];
    z.iter_mut().for_each(|v| *v = std::hint::black_box(0.0));
    let t0 = Instant::now();
    let reports = lock.solve(&timed, &mut z, opts, &mut |_| {}).expect("shapes");
    let wall = t0.elapsed().as_secs_f64();
    // Concurrent calls (groups, pieces) share the threads; a backend that takes the
    // whole batch in one call (split() false: the column split) uses them all inside it.
    let sharing = if backend.split() { threads } else { 1 };
    let floor = timed.nanos.load(Ordering::Relaxed) as f64 * 1e-9 / sharing as f64;
    Solve {
        wall,
        floor,
        rounds: reports.iter().map(|r| r.f_evals).max().unwrap_or(0),
        converged: reports.iter().filter(|r| r.status.is_converged()).count(),
    }
}

/// The median (by wall time) of three solves.
fn median(mut run: impl FnMut() -> Solve) -> Solve {
    let mut s = [run(), run(), run()];
    s.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let [_, m, _] = s;
    m
}

fn main() {
    let args: Vec<usize> =
        std::env::args().skip(1).map(|a| a.parse().expect("B L h [ITERS]: whole numbers")).collect();
    let (b, l, h) = match args[..] {
        [b, l, h, ..] => (b, l, h),
        _ => (15, 150, 700),
    };
    let iters = args.get(3).copied().unwrap_or(300) as u32;
    let p = 64;
    let threads = rayon::current_num_threads();
    let layer = DeqLayer::demo(h, p);
    let input = InputBatch::demo(b, l, p);
    let mut backend = LayerBackend::new(&layer, &input.x, b, l).expect("layer and inputs");
    if let Ok(v) = std::env::var("COLUMN_SPLIT") {
        backend = backend.with_column_split(v == "1");
    }
    let d = l * h;
    let isa = deq_benches::isa_from_env();
    println!(
        "floor: state [{b} × {l} × {h}], {threads} threads, median of 3 solves; solver kernels: {}; the layer's product: {}{}\n",
        isa.name(),
        solver_host::model::product_path(),
        if backend.column_split() { ", columns split between the threads" } else { "" }
    );
    println!("| solver | run | rounds | converged | solve | floor (evaluations) | solve / floor |");
    println!("|---|---|--:|--:|--:|--:|--:|");
    let to_tol = Options { max_iters: 100, tol_rel: 1e-6, ..Options::DEFAULT };
    let forced = Options { max_iters: iters, tol_rel: 0.0, tol_abs: 0.0, stall_iters: 0, ..Options::DEFAULT };
    let solvers: [(&str, Make<'_>); 4] = [
        ("Broyden M=8", &|| DynBroyden::with_sizes(d, 8).map(AnySolver::Broyden)),
        ("Broyden M=8 bf16 history", &|| DynBroyden::with_sizes_bf16(d, 8).map(AnySolver::Broyden)),
        ("Anderson M=5", &|| DynAnderson::with_sizes(d, 5).map(AnySolver::Anderson)),
        ("Picard", &|| DynPicard::with_sizes(d).map(AnySolver::Picard)),
    ];
    let only = std::env::var("SOLVER").ok();
    for (name, make) in solvers {
        if only.as_deref().is_some_and(|o| !name.to_lowercase().starts_with(&o.to_lowercase())) {
            continue;
        }
        for (run, opts) in [("tol 1e-6", &to_tol), (&*format!("{iters} iterations"), &forced)] {
            let s = median(|| solve(&backend, make, opts, threads));
            println!(
                "| {name} | {run} | {} | {}/{b} | {:.1} ms | {:.1} ms | {:.2} |",
                s.rounds,
                s.converged,
                s.wall * 1e3,
                s.floor * 1e3,
                s.wall / s.floor,
            );
        }
    }
}
