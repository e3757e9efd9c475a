//! Checks of the root-finding problems: MINPACK's test list, the published roots, the
//! Jacobians against central differences, and the f32 residuals against the float64
//! ones.

use deq_problems::linalg::{norm_inf, norm2};
use deq_problems::mgh::{HYBRD_TEST_LIST, Mgh, MghProblem, classic_cases, hybrd_cases};
use deq_problems::newton::newton;
use deq_problems::nonlin::Nonlin;
use deq_problems::rng::SplitMix64;
use deq_problems::{RootProblem, classic_root_cases};

fn residual(p: &dyn RootProblem, z: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; p.dim()];
    p.residual_f64(z, &mut g);
    g
}

#[test]
fn minpack_test_list_is_minpacks() {
    // netlib minpack/ex/file21: NPROB, N, NTRIES.
    let expected: [(u8, usize, u32); 22] = [
        (1, 2, 3),
        (2, 4, 3),
        (3, 2, 2),
        (4, 4, 3),
        (5, 3, 3),
        (6, 6, 2),
        (6, 9, 2),
        (7, 5, 3),
        (7, 6, 3),
        (7, 7, 3),
        (7, 8, 1),
        (7, 9, 1),
        (8, 10, 3),
        (8, 30, 1),
        (8, 40, 1),
        (9, 10, 3),
        (10, 1, 3),
        (10, 10, 3),
        (11, 10, 3),
        (12, 10, 3),
        (13, 10, 3),
        (14, 10, 3),
    ];
    let got: Vec<_> = HYBRD_TEST_LIST.iter().map(|&(p, n, t)| (p.number(), n, t)).collect();
    assert_eq!(got, expected);
    // Every system appears, numbered 1..=14 in MINPACK's order.
    for (i, p) in MghProblem::ALL.iter().enumerate() {
        assert_eq!(usize::from(p.number()), i + 1);
        assert!(HYBRD_TEST_LIST.iter().any(|e| e.0 == *p), "{p:?}");
    }
    // 55 starts in all (MINPACK's driver makes 55 calls to hybrd1).
    let all = hybrd_cases();
    assert_eq!(all.len(), 55);
    assert_eq!(all.iter().filter(|c| c.factor == 100.0).count(), 15);
}

#[test]
fn classic_list_has_43_cases_with_minpacks_dimensions() {
    let mgh = classic_cases();
    assert_eq!(mgh.len(), 36);
    let dims: Vec<usize> = mgh.iter().step_by(2).map(|c| c.n).collect();
    assert_eq!(dims, [2, 4, 2, 4, 3, 6, 9, 5, 6, 7, 10, 10, 1, 10, 10, 10, 10, 10]);
    for pair in mgh.chunks(2) {
        assert_eq!((pair[0].problem, pair[0].n, pair[0].factor), (pair[1].problem, pair[1].n, 1.0));
        assert_eq!(pair[1].factor, 10.0);
    }
    let cases = classic_root_cases();
    assert_eq!(cases.len(), 43);
    let names: Vec<String> = cases.iter().map(|c| c.name()).collect();
    assert_eq!(names[0], "rosenbrock n=2 x0");
    assert_eq!(names[1], "rosenbrock n=2 10·x0");
    assert_eq!(names[12], "watson n=9 x0");
    assert_eq!(names[36], "scipy F n=5");
    assert_eq!(names[42], "scipy F6 n=2");
    let scipy: Vec<(usize, &str)> = cases[36..].iter().map(|c| (c.dim(), c.system().1)).collect();
    assert_eq!(
        scipy,
        [(5, "F"), (6, "F2"), (6, "F2_lucky"), (3, "F3"), (2, "F4_powell"), (4, "F5"), (2, "F6")]
    );
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 43, "names are unique");
    for c in &cases {
        assert_eq!(c.start().len(), c.dim(), "{}", c.name());
    }
}

#[test]
fn starts_are_minpacks_initpt() {
    let start = |p, n, f| Mgh::new(p, n, f).start();
    assert_eq!(start(MghProblem::Rosenbrock, 2, 10.0), [-12.0, 10.0]);
    assert_eq!(start(MghProblem::PowellSingular, 4, 1.0), [3.0, -1.0, 0.0, 1.0]);
    assert_eq!(start(MghProblem::Wood, 4, 10.0), [-30.0, -10.0, -30.0, -10.0]);
    // Watson's x0 is zero: a factor replaces it by the constant vector.
    assert_eq!(start(MghProblem::Watson, 6, 1.0), [0.0; 6]);
    assert_eq!(start(MghProblem::Watson, 6, 10.0), [10.0; 6]);
    assert_eq!(start(MghProblem::Chebyquad, 5, 1.0), [1.0, 2.0, 3.0, 4.0, 5.0].map(|j| j * (1.0 / 6.0)));
    assert_eq!(start(MghProblem::Trigonometric, 10, 1.0), [0.1; 10]);
    let vd = start(MghProblem::VariablyDimensioned, 10, 1.0);
    assert!((vd[0] - 0.9).abs() < 1e-15 && vd[9] == 0.0);
    let bv = start(MghProblem::DiscreteBoundaryValue, 10, 1.0);
    assert!((bv[0] - (1.0 / 11.0) * (1.0 / 11.0 - 1.0)).abs() < 1e-16);
}

#[test]
fn published_roots_are_roots() {
    let mut checked = 0;
    for c in classic_root_cases() {
        if let Some(root) = c.published_root() {
            let g = residual(c.as_ref(), &root);
            assert!(norm2(&g) <= 1e-12, "{}: ‖g(root)‖ = {:e}", c.name(), norm2(&g));
            checked += 1;
        }
    }
    // Rosenbrock, Powell singular, Wood, helical valley, Brown almost-linear,
    // trigonometric, variably dimensioned (each at two starts), and F, F2, F2_lucky,
    // F3, F5.
    assert_eq!(checked, 19);
}

#[test]
fn newton_from_minpack_solutions_matches_them() {
    // Approximate solutions printed by MINPACK's hybrd1 test run (as kept in the
    // fortran-lang/minpack test driver), and Powell's badly scaled root of the MGH paper.
    let cases: [(MghProblem, &[f64]); 4] = [
        (MghProblem::PowellBadlyScaled, &[1.098159e-5, 9.106146]),
        // Wood as MINPACK writes it (the gradient form) also has this root.
        (
            MghProblem::Wood,
            &[-0.9679740249513952, 0.9471391408446626, -0.9695163103174519, 0.9512476657649955],
        ),
        (
            MghProblem::Watson,
            &[
                -0.01572508640134011,
                1.012434869369118,
                -0.232991625956796,
                1.260430087800365,
                -1.513728922723441,
                0.992996432431856,
            ],
        ),
        (
            MghProblem::Chebyquad,
            &[
                0.08375125649983552,
                0.3127292952224503,
                0.5000000000008663,
                0.6872707047760241,
                0.9162487435008237,
            ],
        ),
    ];
    for (p, x) in cases {
        let c = Mgh::new(p, x.len(), 1.0);
        let root = newton(|z, o| c.residual_f64(z, o), |z, j| c.jacobian_f64(z, j), x)
            .unwrap_or_else(|| panic!("Newton failed on {p:?}"));
        assert!(c.residual_norm_f64(&root) <= 1e-12, "{p:?}");
        for (r, xi) in root.iter().zip(x) {
            assert!((r - xi).abs() <= 1e-6 * xi.abs().max(1e-4), "{p:?}: {root:?}");
        }
    }
}

/// `max |J − J_fd| / max(‖J‖_max, 1)` with central differences at `z`.
fn jacobian_error(p: &dyn RootProblem, z: &[f64]) -> f64 {
    let n = p.dim();
    let mut jac = vec![0.0; n * n];
    p.jacobian_f64(z, &mut jac);
    let mut worst = 0.0f64;
    for j in 0..n {
        let h = 1e-6 * z[j].abs().max(1.0);
        let (mut zp, mut zm) = (z.to_vec(), z.to_vec());
        zp[j] += h;
        zm[j] -= h;
        let (gp, gm) = (residual(p, &zp), residual(p, &zm));
        for i in 0..n {
            let fd = (gp[i] - gm[i]) / (zp[j] - zm[j]);
            worst = worst.max((fd - jac[i * n + j]).abs());
        }
    }
    worst / norm_inf(&jac).max(1.0)
}

#[test]
fn jacobians_match_central_differences() {
    let mut rng = SplitMix64::new(0x5eed_4007);
    for c in classic_root_cases() {
        let start = c.start();
        let random: Vec<f64> = start.iter().map(|s| s + rng.uniform_in(-0.5, 0.5)).collect();
        for (at, z) in [("start", &start), ("random point", &random)] {
            let err = jacobian_error(c.as_ref(), z);
            assert!(err <= 1e-6, "{} at the {at}: relative error {err:e}", c.name());
        }
    }
    // Brown almost-linear's last row at a point with a zero coordinate (VECJAC's
    // special case).
    let c = Mgh::new(MghProblem::BrownAlmostLinear, 10, 1.0);
    let mut z = c.start();
    z[3] = 0.0;
    assert!(jacobian_error(&c, &z) <= 1e-6);
}

/// Relative to `max(‖g‖₂, 1)`: the trigonometric system at `x0` cancels terms of
/// size 20 down to `‖g‖₂ = 0.08`, where f32's rounding of the terms is 3·10⁻⁶.
#[test]
fn f32_residuals_agree_with_f64_at_the_start() {
    for c in classic_root_cases() {
        let start = c.start();
        let g64 = residual(c.as_ref(), &start);
        let s32: Vec<f32> = start.iter().map(|&v| v as f32).collect();
        let mut g32 = vec![0.0f32; c.dim()];
        c.residual_f32(&s32, &mut g32);
        let diff: Vec<f64> = g64.iter().zip(&g32).map(|(a, &b)| a - f64::from(b)).collect();
        assert!(
            norm2(&diff) <= 1e-5 * norm2(&g64).max(1.0),
            "{}: ‖g32 − g64‖ = {:e}, ‖g64‖ = {:e}",
            c.name(),
            norm2(&diff),
            norm2(&g64)
        );
    }
}

#[test]
fn scipy_problems_at_their_starts() {
    // Values worked out by hand from test_nonlin.py.
    let g = |p: Nonlin| residual(&p, &p.start());
    // F at (1, …, 1): −dᵢ − 0.01·5.
    let f = g(Nonlin::F);
    for (fi, di) in f.iter().zip([3.0, 2.0, 1.5, 1.0, 0.5]) {
        assert!((fi + di + 0.05).abs() < 1e-15, "{f:?}");
    }
    assert_eq!(g(Nonlin::F2), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(g(Nonlin::F2Lucky), [0.0; 6]);
    assert_eq!(g(Nonlin::F3), [-1.0, -2.0, -7.0]);
    // F5 at (2, 0, 2, 0): P = (2, 0, 2, 0).
    assert_eq!(g(Nonlin::F5), [-2.0, 0.0, -2.0, 0.0]);
}
