//! Broyden with its history kept in bf16 (`DynBroyden::with_sizes_bf16`): the memory it
//! takes, that it solves what the f32 history solves (residuals recomputed in f64),
//! that the rounding reaches the solve, that a NaN ends it with its status, and that
//! small `n` keeps f32 rows (bit for bit the f32 solver).

use deq_problems::suite::{hard_suite, quick_suite};
use deq_problems::{FixedPointProblem, TanhLayer};
use solver_core::{Options, Status};
use solver_host::{DynBroyden, Solver};

/// `‖f(z) − z‖₂` and `‖f(z)‖₂`, in f64 from the f32 map.
fn residual(p: &dyn FixedPointProblem, z: &[f32]) -> (f64, f64) {
    let mut fz = vec![0.0f32; z.len()];
    p.f(z, &mut fz);
    let r = fz.iter().zip(z).map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2)).sum::<f64>().sqrt();
    (r, fz.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt())
}

fn solve(p: &dyn FixedPointProblem, half: bool, opts: &Options) -> (solver_core::Report, Vec<f32>) {
    let (n, m) = (p.dim(), 8);
    let mut solver =
        if half { DynBroyden::with_sizes_bf16(n, m) } else { DynBroyden::<f32>::with_sizes(n, m) }.unwrap();
    assert_eq!(solver.history_in_bf16(), half && n > m);
    let mut z = p.start();
    let r = solver.solve(&mut |x: &[f32], o: &mut [f32]| p.f(x, o), &mut z, opts).unwrap();
    (r, z)
}

#[test]
fn the_history_takes_half_the_memory() {
    for (n, m) in [(100, 8), (101, 3), (1000, 1)] {
        let half = DynBroyden::with_sizes_bf16(n, m).unwrap();
        let full = DynBroyden::<f32>::with_sizes(n, m).unwrap();
        // U and V: m·n bf16 each, packed two to an f32 (rounded up); the work vectors f32.
        assert_eq!(half.memory_bytes(), 2 * 4 * (m * n).div_ceil(2) + 4 * 5 * n, "n {n} m {m}");
        assert_eq!(full.memory_bytes(), 4 * n * (2 * m + 5));
    }
}

#[test]
fn small_n_keeps_f32_rows_and_is_the_f32_solver() {
    let p = TanhLayer::new(8, 0.9, 3);
    let opts = Options::DEFAULT;
    let (a, za) = solve(&p, true, &opts);
    let (b, zb) = solve(&p, false, &opts);
    assert_eq!((a, za), (b, zb));
}

#[test]
fn solves_what_the_f32_history_solves() {
    let opts = Options { max_iters: 500, tol_rel: 1e-5, ..Options::DEFAULT };
    let mut problems = quick_suite();
    problems.extend(hard_suite().into_iter().filter(|p| p.dim() <= 256));
    let (mut differs, mut half_total, mut full_total) = (0, 0, 0);
    for p in &problems {
        let p = p.as_ref();
        let (full, zf) = solve(p, false, &opts);
        let (half, zh) = solve(p, true, &opts);
        if !full.status.is_converged() {
            continue;
        }
        assert!(half.status.is_converged(), "{}: {half:?} (f32 history: {full:?})", p.name());
        // The tested point's residual, recomputed: within the tolerance up to f32 rounding.
        let (r, scale) = residual(p, &zh);
        assert!(r <= 2.0 * f64::from(opts.tol_rel) * scale + 1e-6, "{}: {r} vs {scale}", p.name());
        differs += usize::from(zh != zf);
        (half_total, full_total) = (half_total + half.f_evals, full_total + full.f_evals);
    }
    // Rounding the rows reaches the solves; on these suites it costs at most 5 % in all.
    assert!(differs > 0, "no solve changed: the rows are not rounded");
    assert!(f64::from(half_total) <= 1.05 * f64::from(full_total), "{half_total} vs {full_total}");
}

#[test]
fn a_nan_ends_the_solve_with_its_status() {
    let p = TanhLayer::new(64, 0.9, 3);
    let mut calls = 0;
    let mut f = |x: &[f32], o: &mut [f32]| {
        calls += 1;
        p.f(x, o);
        if calls == 12 {
            o[5] = f32::NAN;
        }
    };
    let mut solver = DynBroyden::with_sizes_bf16(64, 8).unwrap();
    let mut z = p.start();
    let opts = Options { tol_rel: 0.0, tol_abs: 0.0, stall_iters: 0, max_iters: 50, ..Options::DEFAULT };
    let r = solver.solve(&mut f, &mut z, &opts).unwrap();
    assert_eq!(r.status, Status::NonFinite);
    assert!(z.iter().all(|x| x.is_finite()));
}

/// The README's example of the bf16 history, as written there.
#[test]
fn readme_example() {
    let n = 4096;
    let mut solver = DynBroyden::with_sizes_bf16(n, 8).unwrap();
    assert!(solver.history_in_bf16());
    assert_eq!(
        DynBroyden::<f32>::with_sizes(n, 8).unwrap().memory_bytes() - solver.memory_bytes(),
        2 * 8 * n * 2
    );
    let mut z = vec![0.0f32; n];
    let mut f = |z: &[f32], out: &mut [f32]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0.5 * z[(i + 1) % n]).tanh() + 0.01;
        }
    };
    assert!(solver.solve(&mut f, &mut z, &Options::default()).unwrap().status.is_converged());
}
