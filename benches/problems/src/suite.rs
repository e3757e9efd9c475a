//! Fixed collections of problems for tests and benchmarks.

use crate::{ConvectionDiffusion, FixedPointProblem, HEquation, LinearMap, RotationMap, TanhLayer};

/// Spectral radii of the [`TanhLayer`] problems in the suites.
pub const TANH_RHOS: [f64; 4] = [0.5, 0.9, 0.99, 1.2];

/// Spectral radii of the uniform-spectrum [`TanhLayer`] problems
/// ([`TanhLayer::uniform_spectrum`]) in the suites.
pub const TANH_UNIFORM_RHOS: [f64; 3] = [0.9, 0.99, 1.2];

/// `c` values of the [`HEquation`] problems in the suites.
pub const H_CS: [f64; 3] = [0.5, 0.99, 0.9999];

/// Seed of the [`LinearMap`] problem in the suites.
pub const LINEAR_SEED: u64 = 64_001;

/// The seed of the [`TanhLayer`] of dimension `d` with spectral radius
/// `TANH_RHOS[rho_index]`: `100 d + rho_index`.
pub fn tanh_seed(d: usize, rho_index: usize) -> u64 {
    100 * d as u64 + rho_index as u64
}

/// The seed of the uniform-spectrum [`TanhLayer`] of dimension `d` with spectral
/// radius `TANH_UNIFORM_RHOS[rho_index]`: `100 d + 50 + rho_index` (distinct from
/// every [`tanh_seed`] and from [`LINEAR_SEED`]).
pub fn tanh_uniform_seed(d: usize, rho_index: usize) -> u64 {
    100 * d as u64 + 50 + rho_index as u64
}

/// A problem to build, in suite order.
type Builder = Box<dyn Fn() -> Box<dyn FixedPointProblem + Send> + Send + Sync>;

fn tanh_builders(dims: &[usize]) -> Vec<Builder> {
    let mut out: Vec<Builder> = Vec::new();
    for &d in dims {
        for (k, &rho) in TANH_RHOS.iter().enumerate() {
            out.push(Box::new(move || Box::new(TanhLayer::new(d, rho, tanh_seed(d, k)))));
        }
    }
    out
}

fn tanh_uniform_builders(dims: &[usize]) -> Vec<Builder> {
    let mut out: Vec<Builder> = Vec::new();
    for &d in dims {
        for (k, &rho) in TANH_UNIFORM_RHOS.iter().enumerate() {
            out.push(Box::new(move || {
                Box::new(TanhLayer::uniform_spectrum(d, rho, tanh_uniform_seed(d, k)))
            }));
        }
    }
    out
}

fn h_builders(n: usize) -> Vec<Builder> {
    H_CS.iter().map(|&c| -> Builder { Box::new(move || Box::new(HEquation::new(n, c))) }).collect()
}

fn linear_builder() -> Builder {
    Box::new(|| Box::new(LinearMap::new(64, 1.5, LINEAR_SEED)))
}

/// Builds the problems, in order, on up to `available_parallelism` threads (the
/// float64 Newton references dominate the cost). The result does not depend on the
/// number of threads.
fn build(builders: Vec<Builder>) -> Vec<Box<dyn FixedPointProblem>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(builders.len()).max(1);
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Box<dyn FixedPointProblem + Send>>>> =
        builders.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(b) = builders.get(i) else { break };
                    let p = b();
                    *slots[i].lock().unwrap() = Some(p);
                }
            });
        }
    });
    slots.into_iter().map(|m| -> Box<dyn FixedPointProblem> { m.into_inner().unwrap().unwrap() }).collect()
}

/// The standard problem suite (29 problems), in this order (indices 0–19 are the
/// original suite, unchanged; later additions come after them):
/// * 0–15: [`TanhLayer`] (semicircle spectrum, `"tanh d=… rho=…"`) for
///   `d ∈ {16, 64, 256, 1024}` × `ρ ∈ {0.5, 0.9, 0.99, 1.2}` ([`TANH_RHOS`]), seeds
///   [`tanh_seed`]`(d, index of ρ)`, `d` outer;
/// * 16–18: [`HEquation`] with `n = 500`, `c ∈ {0.5, 0.99, 0.9999}` ([`H_CS`]);
/// * 19: [`LinearMap`] with `d = 64`, `ρ = 1.5` (eigenvalue −1.5: plain iteration
///   diverges), seed [`LINEAR_SEED`];
/// * 20–28: [`TanhLayer::uniform_spectrum`] (`"tanh-uniform d=… rho=…"`; Haar-random
///   eigenvectors, eigenvalues evenly spaced over `[−ρ, ρ]`) for
///   `d ∈ {64, 256, 1024}` × `ρ ∈ {0.9, 0.99, 1.2}` ([`TANH_UNIFORM_RHOS`]), seeds
///   [`tanh_uniform_seed`]`(d, index of ρ)` = `100 d + 50 + index`, `d` outer.
///
/// Building it computes every float64 reference (Newton with LU factorisations of
/// up to 1024 × 1024 Jacobians); construction runs in parallel on the available cores.
pub fn standard_suite() -> Vec<Box<dyn FixedPointProblem>> {
    let mut b = tanh_builders(&[16, 64, 256, 1024]);
    b.extend(h_builders(500));
    b.push(linear_builder());
    b.extend(tanh_uniform_builders(&[64, 256, 1024]));
    build(b)
}

/// A smaller suite for fast debug tests (19 problems, `d ≤ 256`), in this order:
/// [`TanhLayer`] for `d ∈ {16, 64, 256}` × [`TANH_RHOS`] (the same problems, with the
/// same seeds, as in [`standard_suite`]), [`HEquation`] with `n = 100` and
/// `c ∈ {0.5, 0.99, 0.9999}`, the same [`LinearMap`] as [`standard_suite`], and the
/// uniform-spectrum layers with `d = 64` × [`TANH_UNIFORM_RHOS`] (the same as in
/// [`standard_suite`]).
pub fn quick_suite() -> Vec<Box<dyn FixedPointProblem>> {
    let mut b = tanh_builders(&[16, 64, 256]);
    b.extend(h_builders(100));
    b.push(linear_builder());
    b.extend(tanh_uniform_builders(&[64]));
    build(b)
}

/// Injection scale of the non-saturating [`TanhLayer`]s of [`hard_suite`].
pub const HARD_INJECTION: f64 = 0.05;

/// `r` of the [`RotationMap`]s of [`hard_suite`].
pub const ROTATION_RS: [f64; 2] = [0.9, 1.3];

/// Problems harder for a bounded history than the standard suite's (7), in this order:
/// * 0–3: the standard suite's `d = 256` [`TanhLayer`]s for `ρ ∈ {0.9, 0.99, 1.2}`
///   (same seeds) and the uniform-spectrum one for `ρ = 0.99`, with the injection
///   scaled by [`HARD_INJECTION`] ([`TanhLayer::with_injection_scale`]): they do not
///   saturate, so their Jacobians keep `W`'s spectrum;
/// * 4–5: [`RotationMap`] with `d = 64`, `r ∈ {0.9, 1.3}` ([`ROTATION_RS`]), seeds
///   `70 001 + index`: complex eigenvalue pairs, plain iteration diverges for `r > 1`;
/// * 6: [`ConvectionDiffusion`] with `n = 31` (`d = 961`), `C = 20`: Kelley's
///   convection–diffusion PDE in preconditioned fixed-point form, on which plain
///   iteration diverges.
pub fn hard_suite() -> Vec<Box<dyn FixedPointProblem>> {
    let mut b: Vec<Builder> = Vec::new();
    for (k, &rho) in TANH_RHOS.iter().enumerate().skip(1) {
        b.push(Box::new(move || {
            Box::new(TanhLayer::new(256, rho, tanh_seed(256, k)).with_injection_scale(HARD_INJECTION))
        }));
    }
    b.push(Box::new(|| {
        Box::new(
            TanhLayer::uniform_spectrum(256, 0.99, tanh_uniform_seed(256, 1))
                .with_injection_scale(HARD_INJECTION),
        )
    }));
    for (k, &r) in ROTATION_RS.iter().enumerate() {
        b.push(Box::new(move || Box::new(RotationMap::new(64, r, 70_001 + k as u64))));
    }
    b.push(Box::new(|| Box::new(ConvectionDiffusion::new(31, 20.0))));
    build(b)
}
