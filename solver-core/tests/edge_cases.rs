//! Behaviour at the edges: non-finite values from f, a start at the fixed point,
//! `max_iters = 0`, a million allowed iterations, wrong buffer sizes, and exact
//! memory sizes.

use solver_core::{
    Anderson, AndersonSlices, Broyden, BroydenSlices, Options, Picard, PicardSlices, Report, Solver, Status,
};

const N: usize = 8;

/// A contraction with fixed point away from the start.
fn mild(z: &[f32; N], out: &mut [f32; N]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = 0.5 * libm::tanhf(z[(i + 1) % N] - 0.3 * z[i]) + 0.1 * i as f32;
    }
}

/// `‖f(z) − z‖₂` recomputed here in f64.
fn residual(z: &[f32; N]) -> f64 {
    let mut f = [0.0f32; N];
    mild(z, &mut f);
    f.iter().zip(z).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt()
}

/// Runs solver `k` (0: Broyden, 1: Anderson, 2: Picard) from `z0`.
fn run(
    k: usize,
    f: &mut dyn FnMut(&[f32; N], &mut [f32; N]),
    z0: [f32; N],
    opts: &Options,
) -> ([f32; N], Report) {
    let mut z = z0;
    let r = match k {
        0 => Broyden::<N, 4>::new().solve(f, &mut z, opts),
        1 => Anderson::<N, 4>::new().solve(f, &mut z, opts),
        _ => Picard::<N>::new().solve(f, &mut z, opts),
    };
    (z, r)
}

/// Runs the three solvers on the same (pure) map and start.
fn all_solvers(
    f: &mut dyn FnMut(&[f32; N], &mut [f32; N]),
    z0: [f32; N],
    opts: &Options,
) -> [([f32; N], Report); 3] {
    [run(0, f, z0, opts), run(1, f, z0, opts), run(2, f, z0, opts)]
}

#[test]
fn nan_from_f_ends_the_solve_with_the_best_finite_iterate() {
    for nan_at in [1u32, 2, 4, 7] {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for k in 0..3 {
                let mut calls = 0u32;
                let mut f = |z: &[f32; N], out: &mut [f32; N]| {
                    calls += 1;
                    mild(z, out);
                    if calls > nan_at {
                        out[3] = bad;
                    }
                };
                let (z, r) = run(k, &mut f, [0.0; N], &Options::default());
                assert_eq!(r.status, Status::NonFinite, "solver {k}, NaN after {nan_at}: {r:?}");
                assert_eq!(r.f_evals, nan_at + 1, "solver {k}");
                assert!(z.iter().all(|v| v.is_finite()), "solver {k}: {z:?}");
                assert!(r.residual_abs.is_finite() && r.residual_rel.is_finite(), "solver {k}: {r:?}");
                // The report describes the returned z.
                let res = residual(&z);
                assert!(
                    (res - f64::from(r.residual_abs)).abs() <= 1e-5 * res.max(1e-3),
                    "solver {k}: {res} vs {r:?}"
                );
            }
        }
    }
}

#[test]
fn nan_at_the_start_returns_the_start() {
    let mut f = |_: &[f32; N], out: &mut [f32; N]| out.fill(f32::NAN);
    let z0 = [0.25; N];
    for (z, r) in all_solvers(&mut f, z0, &Options::default()) {
        assert_eq!(r.status, Status::NonFinite);
        assert_eq!((r.iterations, r.f_evals), (0, 1));
        assert_eq!(z, z0);
    }
}

#[test]
fn start_at_the_fixed_point_costs_one_evaluation() {
    let mut f = |z: &[f32; N], out: &mut [f32; N]| {
        for (o, zi) in out.iter_mut().zip(z) {
            *o = 0.5 * zi + 1.0;
        }
    };
    for (z, r) in all_solvers(&mut f, [2.0; N], &Options { tol_rel: 0.0, ..Options::default() }) {
        assert_eq!(r.status, Status::Converged);
        assert_eq!((r.iterations, r.f_evals), (0, 1));
        assert_eq!((r.residual_abs, r.residual_rel), (0.0, 0.0));
        assert_eq!(z, [2.0; N]);
    }
}

#[test]
fn zero_iterations_only_evaluates_the_start() {
    let z0 = [0.0; N];
    let opts = Options { max_iters: 0, ..Options::default() };
    for (z, r) in all_solvers(&mut mild, z0, &opts) {
        assert_eq!(r.status, Status::MaxIterations);
        assert_eq!((r.iterations, r.f_evals), (0, 1));
        assert_eq!(z, z0);
        assert!((f64::from(r.residual_abs) - residual(&z0)).abs() < 1e-6);
    }
}

#[test]
fn iteration_count_respects_max_iters() {
    let opts = Options { max_iters: 3, tol_rel: 0.0, ..Options::default() };
    for (_, r) in all_solvers(&mut mild, [0.0; N], &opts) {
        assert_eq!(r.status, Status::MaxIterations);
        assert_eq!(r.iterations, 3);
        assert_eq!(r.f_evals, 4);
    }
}

#[test]
fn converged_report_matches_an_independent_residual() {
    let opts = Options { tol_rel: 1e-6, ..Options::default() };
    for (k, (z, r)) in all_solvers(&mut mild, [0.0; N], &opts).into_iter().enumerate() {
        assert_eq!(r.status, Status::Converged, "solver {k}: {r:?}");
        let res = residual(&z);
        let mut f = [0.0f32; N];
        mild(&z, &mut f);
        let fnorm = f.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        assert!(res <= 1e-6 * fnorm * 1.01, "solver {k}: ‖f − z‖ = {res:e}, ‖f‖ = {fnorm}");
        assert!((f64::from(r.residual_rel) - res / fnorm).abs() < 1e-7, "solver {k}: {r:?}");
    }
}

/// A map with no fixed point at all (|f(z)ᵢ − zᵢ| = 0.5 everywhere; it is
/// discontinuous at 0, where its iterates stay): every solver must stop by itself
/// long before a million iterations, in its fixed memory.
#[test]
fn a_million_iterations_allowed_on_a_hopeless_problem_ends() {
    let opts = Options { max_iters: 1_000_000, ..Options::default() };
    let mut f = |z: &[f32; N], out: &mut [f32; N]| {
        for (o, zi) in out.iter_mut().zip(z) {
            *o = zi + if *zi < 0.0 { 0.5 } else { -0.5 };
        }
    };
    let before = Broyden::<N, 4>::FOOTPRINT;
    for (k, (z, r)) in all_solvers(&mut f, [0.1; N], &opts).into_iter().enumerate() {
        assert!(matches!(r.status, Status::Stalled | Status::Diverged), "solver {k}: {r:?}");
        assert!(r.iterations < 1000, "solver {k}: {r:?}");
        assert!(z.iter().all(|v| v.is_finite()));
    }
    assert_eq!(Broyden::<N, 4>::FOOTPRINT, before);
    assert_eq!(before, core::mem::size_of::<Broyden<N, 4>>());
}

/// A hard, solvable problem with a million iterations allowed and only M = 4 pairs:
/// the solve converges with the same fixed memory. (This ring map's Jacobian is a
/// scaled cyclic shift, eigenvalues spread round a circle of radius 0.995: four pairs
/// capture little of it, and Broyden<32, 4> needs about as many evaluations as plain
/// iteration.)
#[test]
fn a_million_iterations_allowed_on_a_hard_problem_converges() {
    let opts = Options { max_iters: 1_000_000, stall_iters: 0, ..Options::default() };
    // Strongly coupled, nearly non-contractive ring: plain iteration is very slow.
    let mut f = |z: &[f32; 32], out: &mut [f32; 32]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = libm::tanhf(0.995 * z[(i + 1) % 32] + 0.05 * (i as f32 - 16.0) / 16.0);
        }
    };
    let mut z = [0.0f32; 32];
    let mut s = Broyden::<32, 4>::new();
    let r = s.solve(&mut f, &mut z, &opts);
    assert_eq!(r.status, Status::Converged, "{r:?}");
    assert!(r.iterations < 10_000, "{r:?}");
    let mut p = Picard::<32>::new();
    let mut zp = [0.0f32; 32];
    let rp = p.solve(&mut f, &mut zp, &opts);
    assert_eq!(rp.status, Status::Converged, "{rp:?}");
    assert!(rp.iterations < 10_000, "{rp:?}");
}

#[test]
fn footprints_are_exact() {
    use solver_core::{anderson, broyden, picard};
    // The arrays, plus a few scalars (settings, sizes, the solve in progress) whatever N
    // and M: nothing else, and nothing that grows with max_iters. The run-time query
    // `footprint(n, m)` gives the same figure as the const-generic type.
    macro_rules! check {
        ($($n:literal, $m:literal);*) => {$(
            let within = |footprint: usize, arrays: usize| arrays <= footprint && footprint <= arrays + 400;
            assert!(within(Broyden::<$n, $m>::FOOTPRINT, 4 * $n * (2 * $m + 5)));
            assert!(within(Broyden::<$n, $m, f64>::FOOTPRINT, 8 * $n * (2 * $m + 5)));
            assert!(within(Anderson::<$n, $m>::FOOTPRINT, 4 * ($n * (2 * $m + 4) + 2 * $m * $m + $m)));
            assert!(within(Picard::<$n>::FOOTPRINT, 4 * 2 * $n));
            assert_eq!(Broyden::<$n, $m>::FOOTPRINT, core::mem::size_of::<Broyden<$n, $m>>());
            assert_eq!(broyden::footprint::<f32>($n, $m), Some(Broyden::<$n, $m>::FOOTPRINT));
            assert_eq!(broyden::footprint::<f64>($n, $m), Some(Broyden::<$n, $m, f64>::FOOTPRINT));
            assert_eq!(anderson::footprint::<f32>($n, $m), Some(Anderson::<$n, $m>::FOOTPRINT));
            assert_eq!(anderson::footprint::<f64>($n, $m), Some(Anderson::<$n, $m, f64>::FOOTPRINT));
            assert_eq!(picard::footprint::<f32>($n), Some(Picard::<$n>::FOOTPRINT));
            assert_eq!(picard::footprint::<f64>($n), Some(Picard::<$n, f64>::FOOTPRINT));
        )*};
    }
    check!(1, 1; 1, 2; 2, 1; 3, 2; 5, 3; 7, 7; 32, 8; 33, 8; 100, 5; 1024, 8);
    // The scalars do not depend on N: doubling N adds exactly the arrays' growth.
    assert_eq!(Broyden::<64, 8>::FOOTPRINT - Broyden::<32, 8>::FOOTPRINT, 4 * 32 * 21);
    assert_eq!(Anderson::<64, 8>::FOOTPRINT - Anderson::<32, 8>::FOOTPRINT, 4 * 32 * 20);
    assert_eq!(Picard::<64>::FOOTPRINT - Picard::<32>::FOOTPRINT, 4 * 32 * 2);
    assert_eq!(broyden::footprint::<f32>(0, 8), None);
    assert_eq!(broyden::footprint::<f32>(usize::MAX / 2, 8), None);
}

#[test]
fn slice_forms_reject_wrong_sizes() {
    use solver_core::{FromSlicesError, LengthError, SizeError};
    let (mut u, mut v, mut w) = (vec![0.0; 24], vec![0.0; 24], vec![0.0; 30]);
    assert!(BroydenSlices::from_slices(6, 4, [&mut u, &mut v, &mut w]).is_ok());
    let mut short = vec![0.0; 29];
    let e = BroydenSlices::from_slices(6, 4, [&mut u, &mut v, &mut short]).err().unwrap();
    assert_eq!(e, FromSlicesError::Length(LengthError { what: "work", expected: 30, got: 29 }));
    assert_eq!(e.to_string(), "`work` has length 29, expected 30");
    let e = BroydenSlices::from_slices(6, 5, [&mut u, &mut v, &mut w]).err().unwrap();
    assert_eq!(e, FromSlicesError::Length(LengthError { what: "u", expected: 30, got: 24 }));
    let e = BroydenSlices::from_slices(6, 0, [&mut u, &mut v, &mut w]).err().unwrap();
    assert_eq!(e, FromSlicesError::Size(SizeError::ZeroHistory));
    assert_eq!(e.to_string(), "the history depth must be at least 1");
    let mut s = BroydenSlices::from_slices(6, 4, [&mut u, &mut v, &mut w]).unwrap();
    let mut z = vec![0.0; 5];
    let e = s.solve(&mut |_, _| {}, &mut z, &Options::DEFAULT).err().unwrap();
    assert_eq!(e, LengthError { what: "z", expected: 6, got: 5 });

    let mut bufs = [12, 12, 24, 4, 4, 1].map(|l| vec![0.0f32; l]);
    let [a, b, c, d, e2, g] = &mut bufs;
    let e = AndersonSlices::from_slices(6, 2, [a, b, c, d, e2, g]).err().unwrap();
    assert_eq!(e, FromSlicesError::Length(LengthError { what: "coef", expected: 2, got: 1 }));

    let mut work = vec![0.0; 11];
    let e = PicardSlices::from_slices(6, [&mut work]).err().unwrap();
    assert_eq!(e, FromSlicesError::Length(LengthError { what: "work", expected: 12, got: 11 }));
    let e = PicardSlices::from_slices(0, [&mut work]).err().unwrap();
    assert_eq!(e, FromSlicesError::Size(SizeError::ZeroDimension));
}

/// The slice form and the const-generic form are the same solver: same iterates, same
/// report.
#[test]
fn work_form_matches_owned_form() {
    let mut z_owned = [0.0f32; N];
    let r_owned = Broyden::<N, 3>::new().solve(mild, &mut z_owned, &Options::DEFAULT);
    let (mut u, mut v, mut vecs) = (vec![0.0; 3 * N], vec![0.0; 3 * N], vec![0.0; 5 * N]);
    let mut w = BroydenSlices::from_slices(N, 3, [&mut u, &mut v, &mut vecs]).unwrap();
    let mut z = vec![0.0f32; N];
    let mut f = |x: &[f32], o: &mut [f32]| mild(x.try_into().unwrap(), o.try_into().unwrap());
    let r = w.solve(&mut f, &mut z, &Options::DEFAULT).unwrap();
    assert_eq!(r, r_owned);
    assert_eq!(z, z_owned);
}

/// A layer without bias has its fixed point at 0, where the relative test can only be
/// met exactly: iterates shrink towards subnormal numbers and Broyden's denominators
/// with them. Nothing non-finite may be stored or evaluated, and no status may blame f.
#[test]
fn fixed_point_at_zero_never_evaluates_a_non_finite_point() {
    let w = [[0.5f32, -0.3, 0.1, 0.2], [-0.3, 0.4, 0.2, -0.1], [0.1, 0.2, -0.6, 0.3], [0.2, -0.1, 0.3, 0.5]];
    for start in [[1.0f32, -0.5, 0.25, 2.0], [0.1, 0.1, 0.1, 0.1], [-3.0, 2.0, -1.0, 0.5]] {
        let mut bad_input = false;
        let mut f = |z: &[f32; 4], out: &mut [f32; 4]| {
            bad_input |= !z.iter().all(|v| v.is_finite());
            for (o, row) in out.iter_mut().zip(&w) {
                *o = libm::tanhf(row.iter().zip(z).map(|(a, b)| a * b).sum());
            }
        };
        let mut z = start;
        let r = Broyden::<4, 3>::new().solve(&mut f, &mut z, &Options::DEFAULT);
        assert!(!bad_input, "f was called at a non-finite point: {r:?}");
        assert_ne!(r.status, Status::NonFinite, "{r:?}");
        assert!(z.iter().all(|v| v.is_finite() && v.abs() < 1e-6), "{z:?} {r:?}");
    }
}

/// Norms are exact at every scale, so statuses are right for huge and tiny states.
#[test]
fn statuses_are_right_at_extreme_scales() {
    // An exact fixed point at 2e19 (its squares overflow f32): converged, not diverged.
    let identity = |z: &[f32; 12], out: &mut [f32; 12]| *out = *z;
    let mut z = [2e19f32; 12];
    let r = Broyden::<12, 2>::new().solve(identity, &mut z, &Options::DEFAULT);
    assert_eq!(r.status, Status::Converged, "{r:?}");
    assert_eq!((r.residual_abs, r.residual_rel), (0.0, 0.0));
    // f(z) = 1e-24 constant from 0: the start is NOT converged (‖f − z‖ = 3.5e-24).
    let tiny = |_: &[f32; 12], out: &mut [f32; 12]| *out = [1e-24; 12];
    let mut z = [0.0f32; 12];
    let r = Picard::<12>::new().solve(tiny, &mut z, &Options { max_iters: 0, ..Options::DEFAULT });
    assert_eq!(r.status, Status::MaxIterations, "{r:?}");
    assert!((r.residual_abs - 1e-24 * 12f32.sqrt()).abs() < 1e-29, "{r:?}");
    assert!((r.residual_rel - 1.0).abs() < 1e-6, "{r:?}");
}

/// Work buffers longer than needed are fine, and `f` still receives slices of exactly
/// `n` values.
#[test]
fn longer_work_buffers_still_give_f_exact_lengths() {
    let n = 6;
    let mut f = |x: &[f32], out: &mut [f32]| {
        assert_eq!((x.len(), out.len()), (n, n));
        for (o, xi) in out.iter_mut().zip(x) {
            *o = 0.5 * xi + 1.0;
        }
    };
    let opts = Options::DEFAULT;
    let mut z = vec![0.0f32; n];
    let mut vecs = vec![0.0; 3 * n];
    let r = PicardSlices::from_slices(n, [&mut vecs]).unwrap().solve(&mut f, &mut z, &opts);
    assert_eq!(r.unwrap().status, Status::Converged);
    let (mut u, mut v, mut vecs) = (vec![0.0; 3 * n], vec![0.0; 3 * n], vec![0.0; 7 * n]);
    let mut w = BroydenSlices::from_slices(n, 2, [&mut u, &mut v, &mut vecs]).unwrap();
    z.fill(0.0);
    assert_eq!(w.solve(&mut f, &mut z, &opts).unwrap().status, Status::Converged);
    let mut bufs = [2 * n, 2 * n, 6 * n, 4, 4, 2].map(|l| vec![0.0f32; l]);
    let [a, b, c, d, e, g] = &mut bufs;
    z.fill(0.0);
    let r = AndersonSlices::from_slices(n, 2, [a, b, c, d, e, g]).unwrap().solve(&mut f, &mut z, &opts);
    assert_eq!(r.unwrap().status, Status::Converged);
}

/// `PicardSettings::return_image`: a converged solve leaves `f(z)` of the converged
/// point, recomputed here, with the report unchanged; on this contraction (constant
/// 0.8) it is closer to the fixed point by about that factor. A solve that does not
/// converge returns its best iterate either way.
#[test]
fn picard_can_return_the_image_of_the_converged_point() {
    use solver_core::{Picard, PicardSettings};
    const N: usize = 6;
    // f(z)ᵢ = 0.8·tanh(z_{i+1}) + cᵢ: a contraction with constant 0.8; its fixed point in f64.
    let c = |i: usize| 0.3 + 0.1 * i as f64;
    let f64_map = |z: &[f64; N]| -> [f64; N] { core::array::from_fn(|i| 0.8 * z[(i + 1) % N].tanh() + c(i)) };
    let mut star = [0.0f64; N];
    for _ in 0..500 {
        star = f64_map(&star);
    }
    let f = |z: &[f32; N], out: &mut [f32; N]| {
        for i in 0..N {
            out[i] = 0.8 * z[(i + 1) % N].tanh() + c(i) as f32;
        }
    };
    let err = |z: &[f32; N]| z.iter().zip(&star).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>().sqrt();
    let opts = Options { tol_rel: 1e-4, ..Options::DEFAULT };
    let (mut plain, mut image) = ([0.0f32; N], [0.0f32; N]);
    let r_plain = Picard::<N>::new().solve(f, &mut plain, &opts);
    let settings = PicardSettings { return_image: true, ..PicardSettings::DEFAULT };
    let r_image = Picard::<N>::with_settings(settings).solve(f, &mut image, &opts);
    assert_eq!(r_plain, r_image);
    assert_eq!(r_plain.status, Status::Converged);
    let mut want = [0.0f32; N];
    f(&plain, &mut want);
    assert_eq!(image, want);
    assert!(err(&image) <= 0.9 * err(&plain), "{} vs {}", err(&image), err(&plain));
    // Not converged (two iterations): the best iterate, as without the setting.
    let short = Options { max_iters: 2, ..opts };
    let (mut a, mut b) = ([0.0f32; N], [0.0f32; N]);
    let ra = Picard::<N>::new().solve(f, &mut a, &short);
    let rb = Picard::<N>::with_settings(settings).solve(f, &mut b, &short);
    assert_eq!((ra, a), (rb, b));
    assert_eq!(ra.status, Status::MaxIterations);
}
