//! Whole-suite checks: every reference is a fixed point, the f32 map agrees with
//! the float64 residual, and the suites have the documented shape.

use deq_problems::linalg::{norm_inf, norm2};
use deq_problems::rng::SplitMix64;
use deq_problems::{FixedPointProblem, quick_suite, standard_suite, to_f32, to_f64};
use std::time::Instant;

/// ‖g(reference)‖_∞ for the float64 residual.
fn reference_residual(p: &dyn FixedPointProblem) -> f64 {
    let mut g = vec![0.0; p.dim()];
    p.f64_residual(p.reference(), &mut g);
    norm_inf(&g)
}

/// Compares f32 `f(z)` with float64 `g(z) + z` at a random point near the reference.
fn check_f32_against_f64(p: &dyn FixedPointProblem, seed: u64) {
    let d = p.dim();
    let mut rng = SplitMix64::new(seed);
    let z64: Vec<f64> = p.reference().iter().map(|r| r + 0.1 * rng.normal()).collect();
    let z32 = to_f32(&z64);
    let z64 = to_f64(&z32); // evaluate both maps at exactly the same point
    let mut f32_out = vec![0.0f32; d];
    p.f(&z32, &mut f32_out);
    let mut f64_out = vec![0.0; d];
    p.f64_residual(&z64, &mut f64_out);
    for (o, z) in f64_out.iter_mut().zip(&z64) {
        *o += z;
    }
    let diff: Vec<f64> = f32_out.iter().zip(&f64_out).map(|(&a, b)| f64::from(a) - b).collect();
    let rel = norm2(&diff) / norm2(&f64_out);
    assert!(rel < 1e-5, "{}: f32 vs f64 map rel diff {rel:e}", p.name());
}

fn check_suite(suite: &[Box<dyn FixedPointProblem>]) {
    for (k, p) in suite.iter().enumerate() {
        let d = p.dim();
        assert_eq!(p.start().len(), d, "{}", p.name());
        assert_eq!(p.reference().len(), d, "{}", p.name());
        let r = reference_residual(p.as_ref());
        assert!(r < 1e-10, "{}: reference residual {r:e}", p.name());
        check_f32_against_f64(p.as_ref(), 1000 + k as u64);
        // The reference rounded to f32 is within f32 precision of itself.
        let e = p.rel_error(&to_f32(p.reference()));
        assert!(e < 1e-7, "{}: rel_error of rounded reference {e:e}", p.name());
    }
}

#[test]
fn standard_suite_builds_fast_and_is_correct() {
    let t = Instant::now();
    let suite = standard_suite();
    let elapsed = t.elapsed();
    eprintln!("standard_suite() built in {elapsed:.2?}");
    let names: Vec<String> = suite.iter().map(|p| p.name()).collect();
    assert_eq!(names.len(), 29);
    assert_eq!(names[0], "tanh d=16 rho=0.5");
    assert_eq!(names[15], "tanh d=1024 rho=1.2");
    assert_eq!(names[16], "h-equation n=500 c=0.5");
    assert_eq!(names[18], "h-equation n=500 c=0.9999");
    assert_eq!(names[19], "linear d=64 rho=1.5");
    let mut uniform = Vec::new();
    for d in [64, 256, 1024] {
        for rho in ["0.9", "0.99", "1.2"] {
            uniform.push(format!("tanh-uniform d={d} rho={rho}"));
        }
    }
    assert_eq!(names[20..], uniform[..]);
    // All names are distinct.
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    check_suite(&suite);
}

#[test]
fn quick_suite_is_correct_and_shares_problems() {
    let t = Instant::now();
    let quick = quick_suite();
    eprintln!("quick_suite() built in {:.2?}", t.elapsed());
    assert_eq!(quick.len(), 19);
    assert!(quick.iter().all(|p| p.dim() <= 256));
    assert_eq!(quick[15].name(), "linear d=64 rho=1.5");
    assert_eq!(quick[16].name(), "tanh-uniform d=64 rho=0.9");
    assert_eq!(quick[18].name(), "tanh-uniform d=64 rho=1.2");
    check_suite(&quick);
    // Same seeds as the standard suite: the first tanh problems coincide.
    let again = deq_problems::TanhLayer::new(64, 0.9, deq_problems::suite::tanh_seed(64, 1));
    assert_eq!(quick[5].name(), again.name());
    assert_eq!(quick[5].reference(), again.reference());
    let again =
        deq_problems::TanhLayer::uniform_spectrum(64, 0.99, deq_problems::suite::tanh_uniform_seed(64, 1));
    assert_eq!(quick[17].name(), again.name());
    assert_eq!(quick[17].reference(), again.reference());
}
