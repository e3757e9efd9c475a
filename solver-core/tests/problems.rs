//! The standard problems, solved by every solver and checked against independent
//! float64 solutions (never only against the solver's own residual).

use deq_problems::classics::{
    KINSOL_SOLUTION, KINSOL_START, SCIPY_SOLUTION, SCIPY_START, kinsol_fixed_point, scipy_root_system,
};
use deq_problems::{FixedPointProblem, HEquation, LinearMap, TanhLayer, linalg, suite::tanh_seed};
use solver_core::{Anderson, AndersonSettings, Broyden, Options, Picard, Report, Status};

fn opts(max_iters: u32) -> Options {
    Options { max_iters, tol_rel: 1e-6, ..Options::default() }
}

/// `‖f(z) − z‖₂ / ‖f(z)‖₂` recomputed in float64 from the problem's float64 map.
fn residual_f64(p: &dyn FixedPointProblem, z: &[f32]) -> f64 {
    let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let mut g = vec![0.0; z.len()];
    p.f64_residual(&z64, &mut g);
    let f: Vec<f64> = g.iter().zip(&z64).map(|(a, b)| a + b).collect();
    linalg::norm2(&g) / linalg::norm2(&f)
}

/// Checks a converged report against the problem: residual recomputed independently,
/// and the distance to the float64 root near `z` (found by float64 Newton from `z`,
/// or the problem's reference).
fn check(p: &dyn FixedPointProblem, z: &[f32], r: &Report, err_tol: f64, use_reference: bool) {
    let name = p.name();
    assert_eq!(r.status, Status::Converged, "{name}: {r:?}");
    // The report describes z: f32 evaluation noise aside, the float64 residual agrees.
    let res = residual_f64(p, z);
    assert!(res < 3e-6, "{name}: float64 residual {res:e}, report {r:?}");
    let err = if use_reference {
        p.rel_error(z)
    } else {
        let z64 = deq_problems::to_f64(z);
        let root = p.polish(&z64).unwrap_or_else(|| panic!("{name}: no float64 root near the answer"));
        linalg::dist2(&z64, &root) / linalg::norm2(&root)
    };
    assert!(err < err_tol, "{name}: relative error {err:e} ≥ {err_tol:e}");
}

fn broyden<const N: usize>(p: &dyn FixedPointProblem, max_iters: u32) -> ([f32; N], Report) {
    let mut s = Box::new(Broyden::<N, 8>::new());
    let mut z: [f32; N] = p.start().try_into().unwrap();
    let r = s.solve(|x, o| p.f(x, o), &mut z, &opts(max_iters));
    (z, r)
}

fn anderson<const N: usize>(
    p: &dyn FixedPointProblem,
    set: AndersonSettings,
    max_iters: u32,
) -> ([f32; N], Report) {
    let mut s = Box::new(Anderson::<N, 5>::with_settings(set));
    let mut z: [f32; N] = p.start().try_into().unwrap();
    let r = s.solve(|x, o| p.f(x, o), &mut z, &opts(max_iters));
    (z, r)
}

fn picard<const N: usize>(p: &dyn FixedPointProblem, max_iters: u32) -> ([f32; N], Report) {
    let mut s = Box::new(Picard::<N>::new());
    let mut z: [f32; N] = p.start().try_into().unwrap();
    let r = s.solve(|x, o| p.f(x, o), &mut z, &Options { stall_iters: 0, ..opts(max_iters) });
    (z, r)
}

#[test]
fn scipy_root_system_through_solve_root() {
    let mut s = Broyden::<2, 8>::new();
    let mut z = SCIPY_START;
    let r = s.solve_root(scipy_root_system, &mut z, &opts(50));
    assert_eq!(r.status, Status::Converged, "{r:?}");
    for (a, b) in z.iter().zip(SCIPY_SOLUTION) {
        assert!((f64::from(*a) - b).abs() < 1e-5, "{z:?}");
    }
    assert!((z[0] - 0.84116).abs() < 1e-5 && (z[1] - 0.15884).abs() < 1e-5);
}

#[test]
fn kinsol_fixed_point_in_at_most_8_iterations() {
    let check = |z: [f32; 3], r: Report, who: &str| {
        assert_eq!(r.status, Status::Converged, "{who}: {r:?}");
        assert!(r.iterations <= 8, "{who}: {} iterations", r.iterations);
        for (a, b) in z.iter().zip(KINSOL_SOLUTION) {
            assert!((f64::from(*a) - b).abs() < 1e-5, "{who}: {z:?}");
        }
    };
    let mut z = KINSOL_START;
    let r = Anderson::<3, 2>::new().solve(kinsol_fixed_point, &mut z, &opts(100));
    check(z, r, "Anderson<3, 2>");
    let mut z = KINSOL_START;
    let r = Broyden::<3, 8>::new().solve(kinsol_fixed_point, &mut z, &opts(100));
    check(z, r, "Broyden<3, 8>");
}

#[test]
fn h_equation_reaches_the_physical_root() {
    for c in [0.5, 0.99, 0.9999] {
        let p = HEquation::new(500, c);
        let (z, r) = broyden::<500>(&p, 100);
        check(&p, &z, &r, 1e-4, true);
        // Damped Anderson finds the physical root too.
        let damped = AndersonSettings { damping: 0.5, ..AndersonSettings::DEFAULT };
        let (z, r) = anderson::<500>(&p, damped, 200);
        check(&p, &z, &r, 1e-4, true);
    }
    for c in [0.5, 0.99] {
        let p = HEquation::new(500, c);
        let (z, r) = anderson::<500>(&p, AndersonSettings::DEFAULT, 100);
        check(&p, &z, &r, 1e-4, true);
        let (z, r) = picard::<500>(&p, 2000);
        check(&p, &z, &r, 1e-4, true);
    }
}

/// Near c = 1 the H-equation has a second, non-physical root close to the physical
/// one. Undamped Anderson reaches it: a small residual alone proves nothing.
#[test]
fn h_equation_second_root_is_told_apart_by_the_error() {
    let p = HEquation::new(500, 0.9999);
    let (z, r) = anderson::<500>(&p, AndersonSettings::DEFAULT, 100);
    assert_eq!(r.status, Status::Converged);
    assert!(residual_f64(&p, &z) < 3e-6);
    let root = p.polish(&deq_problems::to_f64(&z)).expect("a float64 root near the answer");
    let phys = p.reference();
    let gap = linalg::dist2(&root, phys) / linalg::norm2(phys);
    assert!(gap > 1e-3, "the undamped Anderson root is the physical one after all ({gap:e})");
}

fn tanh_layers<const D: usize>() {
    for (k, rho) in [0.5, 0.9, 0.99, 1.2].into_iter().enumerate() {
        let p = TanhLayer::new(D, rho, tanh_seed(D, k));
        // rho < 1: a contraction, unique root (the reference). rho = 1.2: possibly several
        // roots; the answer must be close to a float64 root.
        let unique = rho < 1.0;
        let (z, r) = broyden::<D>(&p, 200);
        check(&p, &z, &r, 1e-4, unique);
        let (z, r) = anderson::<D>(&p, AndersonSettings::DEFAULT, 300);
        check(&p, &z, &r, 1e-4, unique);
        if unique {
            let (z, r) = picard::<D>(&p, 5000);
            check(&p, &z, &r, 1e-4, true);
        }
    }
}

#[test]
fn tanh_layers_d16() {
    tanh_layers::<16>();
}

#[test]
fn tanh_layers_d64() {
    tanh_layers::<64>();
}

#[test]
fn tanh_layers_d256() {
    tanh_layers::<256>();
}

#[test]
fn tanh_layers_d1024() {
    tanh_layers::<1024>();
}

#[test]
fn plain_iteration_diverges_where_broyden_converges() {
    let p = LinearMap::new(64, 1.5, deq_problems::suite::LINEAR_SEED);
    let (z, r) = picard::<64>(&p, 1000);
    assert_eq!(r.status, Status::Diverged, "{r:?}");
    // The best iterate is returned, and it is finite.
    assert!(z.iter().all(|v| v.is_finite()));
    assert!(r.residual_abs.is_finite());
    let (z, r) = broyden::<64>(&p, 200);
    check(&p, &z, &r, 1e-4, true);
    let (z, r) = anderson::<64>(&p, AndersonSettings::DEFAULT, 200);
    check(&p, &z, &r, 1e-4, true);
}

/// Runs Broyden over heap buffers with `m` pairs (run-time size).
fn broyden_work(p: &dyn FixedPointProblem, m: usize, opts: &Options) -> (Vec<f32>, Report) {
    let n = p.dim();
    let (mut u, mut v, mut vecs) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; 5 * n]);
    let mut w = solver_core::BroydenSlices::from_slices(n, m, [&mut u, &mut v, &mut vecs]).unwrap();
    let mut z = p.start();
    let r = solver_core::Solver::solve(&mut w, &mut |x, o| p.f(x, o), &mut z, opts).unwrap();
    (z, r)
}

/// The bounded history costs at most 20% more evaluations than an unbounded one
/// (M > max_iters) on every standard problem, and never fails where it converges.
#[test]
fn bounded_history_is_within_20_percent_of_unbounded() {
    let opts = opts(500);
    for p in deq_problems::standard_suite() {
        let p = p.as_ref();
        let (_, bounded) = broyden_work(p, 8, &opts);
        let (_, unbounded) = broyden_work(p, 501, &opts);
        if unbounded.status.is_converged() {
            assert!(bounded.status.is_converged(), "{}: {bounded:?}", p.name());
            let ratio = f64::from(bounded.f_evals) / f64::from(unbounded.f_evals);
            assert!(ratio <= 1.2, "{}: {} vs {} f-evals", p.name(), bounded.f_evals, unbounded.f_evals);
        }
    }
}

/// `Broyden<N, 8, f64>` on each problem's float64 map reaches `tol_rel = 1e-12` (the
/// README's f64 column), its residual recomputed independently, within 1e-10 of the
/// float64 reference root, and at least four orders of magnitude closer to it than the
/// f32 solver at its own floor.
fn f64_broyden<const D: usize>(p: &dyn FixedPointProblem) {
    let opts = Options::<f64> { max_iters: 200, tol_rel: 1e-12, ..Options::DEFAULT };
    let mut z = [0.0f64; D];
    z.iter_mut().zip(p.start()).for_each(|(z, s)| *z = f64::from(s));
    let r = Broyden::<D, 8, f64>::new().solve(|x, o| p.f64_map(x, o), &mut z, &opts);
    assert_eq!(r.status, Status::Converged, "{}: {r:?}", p.name());
    let mut g = [0.0f64; D];
    p.f64_residual(&z, &mut g);
    let f: Vec<f64> = g.iter().zip(&z).map(|(a, b)| a + b).collect();
    assert!(linalg::norm2(&g) <= 1e-12 * linalg::norm2(&f), "{}: {r:?}", p.name());
    let err = p.rel_error_f64(&z);
    assert!(err <= 1e-10, "{}: error {err:e}", p.name());
    let (z32, _) = broyden::<D>(p, 200);
    assert!(err * 1e4 <= p.rel_error(&z32), "{}: f64 {err:e} vs f32 {:e}", p.name(), p.rel_error(&z32));
}

#[test]
fn f64_broyden_reaches_1e_12_on_the_suite_problems() {
    for (k, rho) in [0.5, 0.9, 0.99].into_iter().enumerate() {
        f64_broyden::<64>(&TanhLayer::new(64, rho, tanh_seed(64, k)));
        f64_broyden::<256>(&TanhLayer::new(256, rho, tanh_seed(256, k)));
    }
    f64_broyden::<500>(&HEquation::new(500, 0.99));
    f64_broyden::<64>(&LinearMap::new(64, 1.5, deq_problems::suite::LINEAR_SEED));
}
