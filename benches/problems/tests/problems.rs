//! Per-family checks of the problem constructions and reference solutions.

use deq_problems::eigen::{LanczosOptions, jacobi_eigenvalues, lanczos_extreme};
use deq_problems::linalg::{dist2, matvec, norm_inf, norm2};
use deq_problems::orthogonal::RandomOrthogonal;
use deq_problems::rng::SplitMix64;
use deq_problems::suite::{H_CS, LINEAR_SEED, TANH_RHOS, TANH_UNIFORM_RHOS, tanh_seed, tanh_uniform_seed};
use deq_problems::tanh::uniform_eigenvalues;
use deq_problems::{FixedPointProblem, HEquation, LinearMap, TanhLayer, TanhSpectrum, to_f32, to_f64};

/// Spectral radius of a symmetric matrix by power iteration.
///
/// For symmetric `W` the estimate `‖W v‖₂` (unit `v`) never exceeds `ρ(W)` and is
/// non-decreasing, so iterate until it stops moving.
fn power_iteration(w: &[f64], d: usize, seed: u64) -> f64 {
    let mut rng = SplitMix64::new(seed);
    let mut v = rng.unit_vector(d);
    let mut wv = vec![0.0; d];
    let mut est = 0.0f64;
    let mut quiet = 0;
    for _ in 0..100_000 {
        matvec(w, &v, &mut wv);
        let next = norm2(&wv);
        if (next - est).abs() <= 1e-15 * next {
            quiet += 1;
            if quiet == 20 {
                return next;
            }
        } else {
            quiet = 0;
        }
        est = next;
        for (vi, wi) in v.iter_mut().zip(&wv) {
            *vi = wi / next;
        }
    }
    est
}

fn residual_inf(p: &dyn FixedPointProblem, z: &[f64]) -> f64 {
    let mut g = vec![0.0; p.dim()];
    p.f64_residual(z, &mut g);
    norm_inf(&g)
}

/// Central differences of the residual against the analytic Jacobian.
fn check_jacobian(p: &dyn FixedPointProblem, z: &[f64]) {
    let d = p.dim();
    let mut jac = vec![0.0; d * d];
    p.f64_jacobian(z, &mut jac);
    let h = 1e-6;
    let (mut gp, mut gm) = (vec![0.0; d], vec![0.0; d]);
    for col in [0, d / 3, d - 1] {
        let mut zp = z.to_vec();
        let mut zm = z.to_vec();
        zp[col] += h;
        zm[col] -= h;
        p.f64_residual(&zp, &mut gp);
        p.f64_residual(&zm, &mut gm);
        for row in 0..d {
            let fd = (gp[row] - gm[row]) / (2.0 * h);
            let an = jac[row * d + col];
            assert!(
                (fd - an).abs() <= 1e-7 * an.abs().max(1.0),
                "{}: J[{row},{col}] = {an}, differences give {fd}",
                p.name()
            );
        }
    }
}

/// Lanczos against cyclic Jacobi (both float64) for the small layers: the spectral
/// radius of `W` is `ρ`, the extreme eigenvalues are the reported ones, and the
/// spectrum is a semicircle scaled to `[−ρ, ρ]`.
#[test]
fn tanh_lanczos_matches_jacobi() {
    for d in [16, 37, 64] {
        for (k, &rho) in TANH_RHOS.iter().enumerate() {
            let p = TanhLayer::new(d, rho, tanh_seed(d, k));
            let eig = jacobi_eigenvalues(p.weights(), d);
            let (lo, hi) = p.extreme_eigenvalues();
            let radius = eig[0].abs().max(eig[d - 1].abs());
            assert!((radius - rho).abs() <= 1e-10 * rho, "{}: Jacobi spectral radius {radius}", p.name());
            assert!((lo - eig[0]).abs() <= 1e-10 * rho, "{}: λ_min {lo}", p.name());
            assert!((hi - eig[d - 1]).abs() <= 1e-10 * rho, "{}: λ_max {hi}", p.name());
            assert!(lo.abs().max(hi.abs()) == rho, "{}", p.name());
            // Both edges of the semicircle are near ±ρ.
            assert!(lo < -0.7 * rho && hi > 0.7 * rho, "{}: ({lo}, {hi})", p.name());
            if d == 64 {
                // A semicircle puts (2/π)(x√(1 − x²) + arcsin x) ≈ 0.61 of its mass in
                // |λ| ≤ x ρ for x = ½ (a uniform spectrum would put 0.5 there).
                let inner = eig.iter().filter(|l| l.abs() <= 0.5 * rho).count();
                let frac = inner as f64 / d as f64;
                assert!((0.52..0.72).contains(&frac), "{}: {frac}", p.name());
            }
        }
    }
}

/// `W` is symmetric and dense, `‖W v‖ ≤ ρ ‖v‖`, and an independent Lanczos run (other
/// start vector, fixed number of steps) and power iteration both find `ρ`.
fn check_tanh_weights(d: usize) {
    let mut rng = SplitMix64::new(31);
    for (k, &rho) in TANH_RHOS.iter().enumerate() {
        let p = TanhLayer::new(d, rho, tanh_seed(d, k));
        let w = p.weights();
        let mut diag2 = 0.0;
        for i in 0..d {
            for j in 0..i {
                assert_eq!(w[i * d + j], w[j * d + i], "W must be symmetric");
            }
            diag2 += w[i * d + i] * w[i * d + i];
        }
        let fro2: f64 = w.iter().map(|x| x * x).sum();
        let off = 1.0 - diag2 / fro2;
        assert!(off > 0.5, "{}: off-diagonal mass {off}", p.name());

        let mut wv = vec![0.0; d];
        for _ in 0..20 {
            let v = rng.normal_vec(d);
            matvec(w, &v, &mut wv);
            assert!(norm2(&wv) <= rho * (1.0 + 1e-9) * norm2(&v), "{}: ‖W v‖ > ρ ‖v‖", p.name());
        }

        let opts = LanczosOptions { min_steps: 150, max_steps: 150, tol: 0.0, stable_steps: usize::MAX };
        let other = lanczos_extreme(w, d, &mut SplitMix64::new(4242), &opts);
        let (lo, hi) = p.extreme_eigenvalues();
        assert!(
            (other.spectral_radius() - rho).abs() <= 1e-10 * rho,
            "{}: independent Lanczos gives {}",
            p.name(),
            other.spectral_radius()
        );
        assert!((other.min - lo).abs() <= 1e-10 * rho, "{}", p.name());
        assert!((other.max - hi).abs() <= 1e-10 * rho, "{}", p.name());

        let est = power_iteration(w, d, 99);
        assert!((est - rho).abs() <= 1e-10 * rho, "{}: power iteration gives {est}", p.name());
    }
}

#[test]
fn tanh_weights_small() {
    check_tanh_weights(16);
    check_tanh_weights(64);
}

#[test]
fn tanh_weights_256() {
    check_tanh_weights(256);
}

#[test]
fn tanh_weights_1024() {
    check_tanh_weights(1024);
}

/// A tanh layer's start is 0, its reference a fixed point inside (−1, 1) with the
/// analytic Jacobian right there, and polishing the rounded reference returns it.
fn check_reference(p: &TanhLayer) {
    assert_eq!(p.start(), vec![0.0f32; p.dim()]);
    assert!(residual_inf(p, p.reference()) < 1e-13);
    assert!(p.reference().iter().all(|z| z.abs() < 1.0));
    check_jacobian(p, p.reference());
    let polished = p.polish(&to_f64(&to_f32(p.reference()))).expect("polish converges");
    assert!(dist2(&polished, p.reference()) <= 1e-12 * norm2(p.reference()));
    assert!(p.rel_error(&p.start()) > 0.5);
}

#[test]
fn tanh_reference_jacobian_and_polish() {
    for (k, &rho) in TANH_RHOS.iter().enumerate() {
        let d = 64;
        let p = TanhLayer::new(d, rho, tanh_seed(d, k));
        assert_eq!(p.name(), format!("tanh d=64 rho={rho}"));
        check_reference(&p);
    }
}

/// Same seed, same layer; another seed, other weights; and the f32 map of the
/// reference is the reference (odd `d` exercises the remainders of the 8-accumulator
/// dot).
fn check_deterministic(build: fn(usize, f64, u64) -> TanhLayer, d: usize, rho: f64) {
    let (a, b, c) = (build(d, rho, 5), build(d, rho, 5), build(d, rho, 6));
    assert_eq!(a.weights(), b.weights());
    assert_eq!(a.reference(), b.reference());
    assert_ne!(a.weights(), c.weights());
    let z = to_f32(a.reference());
    let mut out = vec![0.0f32; d];
    a.f(&z, &mut out);
    assert!(a.rel_error(&out) < 1e-6);
}

#[test]
fn tanh_construction_is_deterministic() {
    check_deterministic(TanhLayer::new, 100, 0.9);
}

#[test]
fn tanh_1024_builds_quickly() {
    let t = std::time::Instant::now();
    let p = TanhLayer::new(1024, 0.99, tanh_seed(1024, 2));
    eprintln!("{} built in {:.2?}", p.name(), t.elapsed());
    assert!(residual_inf(&p, p.reference()) < 1e-12);
}

/// Cyclic Jacobi finds exactly the prescribed, evenly spaced spectrum.
#[test]
fn tanh_uniform_spectrum_matches_jacobi() {
    for d in [2, 16, 37, 64] {
        for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
            let p = TanhLayer::uniform_spectrum(d, rho, tanh_uniform_seed(d, k));
            assert_eq!(p.spectrum(), TanhSpectrum::Uniform);
            assert_eq!(p.extreme_eigenvalues(), (-rho, rho));
            assert_eq!(p.lanczos_steps(), 0);
            let lambda = uniform_eigenvalues(d, rho);
            assert_eq!((lambda[0], lambda[d - 1]), (-rho, rho));
            let step = 2.0 * rho / (d - 1) as f64;
            assert!(lambda.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-15), "{}", p.name());
            let eig = jacobi_eigenvalues(p.weights(), d);
            for (i, (e, l)) in eig.iter().zip(&lambda).enumerate() {
                assert!((e - l).abs() <= 1e-10 * rho, "{}: λ_{i} = {e}, expected {l}", p.name());
            }
        }
    }
}

/// `‖Qᵀ Q − I‖_max`, with `(Qᵀ Q)ᵢⱼ = Σₗ Qₗᵢ Qₗⱼ` accumulated row by row.
fn orthogonality_error(q: &[f64], d: usize) -> f64 {
    let mut gram = vec![0.0; d * d];
    for row in q.chunks_exact(d) {
        for (i, &qi) in row.iter().enumerate() {
            for (g, &qj) in gram[i * d..(i + 1) * d].iter_mut().zip(row) {
                *g += qi * qj;
            }
        }
    }
    for i in 0..d {
        gram[i * d + i] -= 1.0;
    }
    norm_inf(&gram)
}

/// `W` is exactly `Q diag(λ) Qᵀ` for the `Q` drawn first from the seed: `Q` is
/// orthogonal (`d ≤ 256`), `W Q = Q diag(λ)` (`d ≤ 256`), `W` is exactly symmetric and
/// dense, its orthogonal invariants match `λ`, and Lanczos finds `±ρ`.
fn check_tanh_uniform_weights(d: usize) {
    let mut rng = SplitMix64::new(32);
    for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
        let seed = tanh_uniform_seed(d, k);
        let p = TanhLayer::uniform_spectrum(d, rho, seed);
        let w = p.weights();
        let lambda = uniform_eigenvalues(d, rho);
        let q = RandomOrthogonal::new(d, &mut SplitMix64::new(seed));
        assert!(q.conjugate_diagonal(&lambda) == w, "{}: W is not Q diag(λ) Qᵀ of the seed", p.name());
        if d <= 256 {
            let qm = q.matrix();
            let err = orthogonality_error(&qm, d);
            assert!(err < 1e-12, "{}: ‖QᵀQ − I‖_max = {err:e}", p.name());
            // Column j of Q is an eigenvector for λⱼ: ‖W Q − Q diag(λ)‖_max.
            let mut worst = 0.0f64;
            let mut col = vec![0.0; d];
            let mut wcol = vec![0.0; d];
            for j in 0..d {
                for (c, row) in col.iter_mut().zip(qm.chunks_exact(d)) {
                    *c = row[j];
                }
                matvec(w, &col, &mut wcol);
                for (a, b) in wcol.iter().zip(&col) {
                    worst = worst.max((a - lambda[j] * b).abs());
                }
            }
            assert!(worst < 1e-12, "{}: ‖W Q − Q Λ‖_max = {worst:e}", p.name());
        }

        let mut diag2 = 0.0;
        let mut trace = 0.0;
        for i in 0..d {
            for j in 0..i {
                assert_eq!(w[i * d + j], w[j * d + i], "W must be symmetric");
            }
            trace += w[i * d + i];
            diag2 += w[i * d + i] * w[i * d + i];
        }
        let fro2: f64 = w.iter().map(|x| x * x).sum();
        let lambda2: f64 = lambda.iter().map(|l| l * l).sum();
        assert!(trace.abs() < 1e-12 * d as f64, "{}: trace {trace:e}", p.name());
        assert!((fro2 - lambda2).abs() < 1e-12 * lambda2, "{}: ‖W‖_F² {fro2} vs {lambda2}", p.name());
        let off = 1.0 - diag2 / fro2;
        assert!(off > 0.5, "{}: off-diagonal mass {off}", p.name());
        // Expected d/(d + 2) for Haar eigenvectors and a spectrum summing to 0.
        assert!(off > 0.9 * d as f64 / (d + 2) as f64, "{}: off-diagonal mass {off}", p.name());

        let mut wv = vec![0.0; d];
        for _ in 0..20 {
            let v = rng.normal_vec(d);
            matvec(w, &v, &mut wv);
            assert!(norm2(&wv) <= rho * (1.0 + 1e-9) * norm2(&v), "{}: ‖W v‖ > ρ ‖v‖", p.name());
        }
        let ext = lanczos_extreme(w, d, &mut SplitMix64::new(4243), &LanczosOptions::default());
        assert!(ext.converged, "{}", p.name());
        assert!((ext.min + rho).abs() <= 1e-10 * rho, "{}: Lanczos λ_min {}", p.name(), ext.min);
        assert!((ext.max - rho).abs() <= 1e-10 * rho, "{}: Lanczos λ_max {}", p.name(), ext.max);
    }
}

#[test]
fn tanh_uniform_weights_small() {
    check_tanh_uniform_weights(16);
    check_tanh_uniform_weights(64);
}

#[test]
fn tanh_uniform_weights_256() {
    check_tanh_uniform_weights(256);
}

#[test]
fn tanh_uniform_weights_1024() {
    check_tanh_uniform_weights(1024);
}

#[test]
fn tanh_uniform_reference_jacobian_and_polish() {
    for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
        let d = 64;
        let p = TanhLayer::uniform_spectrum(d, rho, tanh_uniform_seed(d, k));
        assert_eq!(p.name(), format!("tanh-uniform d=64 rho={rho}"));
        check_reference(&p);
        // Same injection as the semicircle layer of the same seed.
        let semicircle = TanhLayer::new(d, rho, tanh_uniform_seed(d, k));
        assert_eq!(p.injection(), semicircle.injection());
    }
}

#[test]
fn tanh_uniform_construction_is_deterministic() {
    check_deterministic(TanhLayer::uniform_spectrum, 101, 0.99);
}

/// Construction times (printed; run with `--nocapture`) and reference residuals of
/// the suite's uniform layers.
#[test]
fn tanh_uniform_builds_quickly() {
    for d in [64, 256, 1024] {
        for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
            let t = std::time::Instant::now();
            let p = TanhLayer::uniform_spectrum(d, rho, tanh_uniform_seed(d, k));
            eprintln!("{} built in {:.2?}", p.name(), t.elapsed());
            assert!(residual_inf(&p, p.reference()) < 1e-12, "{}", p.name());
        }
    }
}

#[test]
fn h_equation_reference_is_physical() {
    for n in [100, 500] {
        for &c in &H_CS {
            let p = HEquation::new(n, c);
            let h = p.reference();
            assert_eq!(p.start(), vec![1.0f32; n]);
            assert!(residual_inf(&p, h) < 1e-13, "{}", p.name());
            assert!(h.iter().all(|&v| v > 1.0), "{}: H > 1", p.name());
            assert!(h.windows(2).all(|w| w[1] > w[0]), "{}: increasing", p.name());
            // Exact identity of the discrete equation: mean = (2/c)(1 − √(1 − c)).
            let mean = h.iter().sum::<f64>() / n as f64;
            assert!(
                (mean - p.physical_mean()).abs() < 1e-12,
                "{}: mean {mean} vs {}",
                p.name(),
                p.physical_mean()
            );
        }
    }
}

#[test]
fn h_equation_jacobian_and_second_root() {
    let p = HEquation::new(40, 0.9);
    check_jacobian(&p, p.reference());
    let mut rng = SplitMix64::new(1);
    let z: Vec<f64> = (0..40).map(|_| 1.0 + 0.3 * rng.uniform()).collect();
    check_jacobian(&p, &z);
    // Newton from a large start finds the non-physical root: polish tells them apart.
    let other = p.polish(&[3.0f64; 40]).expect("converges");
    let mean = other.iter().sum::<f64>() / 40.0;
    let nonphysical = 2.0 / 0.9 * (1.0 + (1.0f64 - 0.9).sqrt());
    assert!((mean - nonphysical).abs() < 1e-10, "mean {mean}");
}

#[test]
fn linear_map_diverges_under_plain_iteration() {
    let p = LinearMap::new(64, 1.5, LINEAR_SEED);
    assert_eq!(p.name(), "linear d=64 rho=1.5");
    assert!(residual_inf(&p, p.reference()) < 1e-13);
    let lam = p.eigenvalues();
    assert_eq!(lam[0], -1.5);
    assert!(lam.iter().all(|&l| (-1.5..=0.8).contains(&l)));
    let est = power_iteration(p.matrix(), 64, 3);
    assert!((est - 1.5).abs() < 1e-6 * 1.5, "spectral radius {est}");
    check_jacobian(&p, p.reference());

    // Plain iteration from the start point: the error grows geometrically.
    let mut z = p.start();
    let mut next = vec![0.0f32; 64];
    let mut errors = vec![p.rel_error(&z)];
    for _ in 0..60 {
        p.f(&z, &mut next);
        std::mem::swap(&mut z, &mut next);
        errors.push(p.rel_error(&z));
    }
    assert!(errors[60] > 1e6 * errors[0], "errors {errors:?}");
    let rate = (errors[60] / errors[40]).powf(1.0 / 20.0);
    // Between the two most negative eigenvalues (−1.5 and a random one near it).
    assert!(rate > 1.4 && rate < 1.5 + 1e-3, "growth rate {rate}");
}

#[test]
fn f32_maps_match_f64_at_random_points() {
    let problems: Vec<Box<dyn FixedPointProblem>> = vec![
        Box::new(TanhLayer::new(37, 1.2, 1)),
        Box::new(TanhLayer::uniform_spectrum(37, 1.2, 1)),
        Box::new(HEquation::new(37, 0.99)),
        Box::new(LinearMap::new(37, 1.5, 2)),
    ];
    let mut rng = SplitMix64::new(8);
    for p in &problems {
        let d = p.dim();
        let z32: Vec<f32> = (0..d).map(|_| (1.0 + 0.2 * rng.normal()) as f32).collect();
        let z64: Vec<f64> = z32.iter().map(|&v| f64::from(v)).collect();
        let mut f32_out = vec![0.0f32; d];
        p.f(&z32, &mut f32_out);
        let mut f64_out = vec![0.0; d];
        p.f64_residual(&z64, &mut f64_out);
        for (o, z) in f64_out.iter_mut().zip(&z64) {
            *o += z;
        }
        let f32_as_64: Vec<f64> = f32_out.iter().map(|&v| f64::from(v)).collect();
        let rel = dist2(&f32_as_64, &f64_out) / norm2(&f64_out);
        assert!(rel < 1e-5, "{}: {rel:e}", p.name());
    }
}

/// The hard suite: every reference is a fixed point to float64 rounding, every
/// Jacobian matches differences, the f32 map is the f64 one to f32 rounding; the
/// non-saturating layers keep `tanh′` near 1 at their fixed points (the point of them),
/// and a rotation map's `‖A‖₂` is its `r`, with plain iteration diverging for `r > 1`
/// (the PDE's divergence is tested in its module).
#[test]
fn hard_suite_references_and_properties() {
    use deq_problems::{RotationMap, hard_suite};
    let problems = hard_suite();
    assert_eq!(problems.len(), 7);
    assert_eq!(problems[6].name(), "convection-diffusion n=31 C=20");
    for p in &problems {
        let (d, z) = (p.dim(), p.reference());
        let scale = norm2(z).max(1.0);
        assert!(residual_inf(p.as_ref(), z) <= 1e-12 * scale, "{}: reference residual", p.name());
        check_jacobian(p.as_ref(), z);
        let (mut f32_out, mut f64_out) = (vec![0.0f32; d], vec![0.0; d]);
        p.f(&to_f32(z), &mut f32_out);
        p.f64_map(z, &mut f64_out);
        let gap = dist2(&to_f64(&f32_out), &f64_out);
        assert!(gap <= 1e-5 * scale, "{}: f32 map off by {gap:e} (scale {scale})", p.name());
    }
    for p in &problems[..4] {
        assert!(p.name().contains("inj=0.05"), "{}", p.name());
        // Mean tanh′ = 1 − mean f(z*)² at the fixed point (f(z*) = z*): near 1 for
        // ρ < 1; for ρ = 1.2 the fixed point near 0 is unstable and the reference (the
        // stable one) saturates a little (0.79 measured).
        let z = p.reference();
        let mean_slope = 1.0 - z.iter().map(|v| v * v).sum::<f64>() / z.len() as f64;
        let least = if p.name().contains("rho=1.2") { 0.75 } else { 0.9 };
        assert!(mean_slope >= least, "{}: mean tanh′ {mean_slope}", p.name());
    }
    let r = RotationMap::new(64, 1.3, 70_002);
    assert_eq!(r.name(), problems[5].name());
    // Plain iteration from 0 does not reach the fixed point in 300 steps.
    let (mut z, mut next) = (vec![0.0; 64], vec![0.0; 64]);
    for _ in 0..300 {
        r.f64_map(&z, &mut next);
        std::mem::swap(&mut z, &mut next);
    }
    assert!(residual_inf(&r, &z) > 1e-3, "plain iteration converged on {}", r.name());
}

/// `matvec8_f32` (four rows at a time, AVX where the CPU has it) gives `dot8_f32`'s
/// bits row by row: every width around the 8-lane chunks and every row count around
/// the groups of four, with entries over six orders of magnitude and both signs.
#[test]
fn matvec8_is_dot8_row_by_row() {
    let mut rng = SplitMix64::new(0x6d76_3866);
    for d in (0..=41).chain([63, 64, 65, 700, 1023, 1024]) {
        for rows in [0, 1, 2, 3, 4, 5, 7, 8, 9, 13] {
            let mut value = || {
                let v = rng.uniform_in(-1.0, 1.0);
                (v * 10f64.powi((rng.uniform() * 6.0) as i32 - 3)) as f32
            };
            let a: Vec<f32> = (0..rows * d).map(|_| value()).collect();
            let z: Vec<f32> = (0..d).map(|_| value()).collect();
            let mut out = vec![f32::NAN; rows];
            deq_problems::matvec8_f32(&a, &z, &mut out);
            for (i, o) in out.iter().enumerate() {
                let want = deq_problems::dot8_f32(&a[i * d..(i + 1) * d], &z);
                assert_eq!(o.to_bits(), want.to_bits(), "d = {d}, rows = {rows}, row {i}");
            }
        }
    }
}
