//! Standard fixed-point test problems for deep equilibrium (DEQ) solvers.
//!
//! Every problem provides
//! * an **f32 map** `z ↦ f(z)` in fixed-point form: what a solver under test calls, and
//! * **float64 machinery** — the residual `g(z) = f(z) − z`, its dense Jacobian and a
//!   reference fixed point computed by a float64 Newton solve ([`newton`]) — to check
//!   the solver's answers independently of the solver itself.
//!
//! Problem families (all implement [`FixedPointProblem`]):
//! * [`TanhLayer`]: a DEQ layer `f(z) = tanh(W z + c)` with dense symmetric `W` (a
//!   Wigner semicircle spectrum scaled to spectral radius `ρ`; contractive for
//!   `ρ < 1`, not for `ρ ≥ 1`), and the harder uniform family
//!   [`TanhLayer::uniform_spectrum`] with `W = Q diag(λ) Qᵀ`, `Q` Haar-random
//!   orthogonal ([`orthogonal::RandomOrthogonal`]) and `λ` evenly spaced over
//!   `[−ρ, ρ]`;
//! * [`HEquation`]: Chandrasekhar's H-equation, discretised by the midpoint rule,
//!   increasingly ill-conditioned as `c → 1`;
//! * [`LinearMap`]: `f(z) = A z + b` on which plain fixed-point iteration diverges
//!   (`A` has the eigenvalue `−ρ < −1`) although `I − A` is well conditioned;
//! * the small classics in [`classics`] (a KINSOL fixed-point example and the
//!   SciPy `root` example), as plain functions and constants.
//!
//! [`standard_suite`] and [`quick_suite`] collect fixed sets of problems.
//!
//! Root-finding problems `g(z) = 0` implement [`RootProblem`] instead ([`roots`]): the
//! Moré–Garbow–Hillstrom systems as MINPACK's test driver defines them ([`mgh`]) and
//! the problems of SciPy's `test_nonlin.py` ([`nonlin`]); [`classic_root_cases`] lists
//! the 43 classic cases.
//!
//! The crate uses `std` and, for the float trait of its root problems, solver-core's
//! `Real`. Everything is deterministic:
//! problems are built from fixed seeds with the [`rng::SplitMix64`] generator.

#![warn(missing_docs)]

pub mod classics;
pub mod counting_alloc;
pub mod eigen;
pub mod hequation;
pub mod linalg;
pub mod linear;
pub mod mgh;
pub mod newton;
pub mod nonlin;
pub mod orthogonal;
pub mod pde;
pub mod rng;
pub mod roots;
pub mod rotation;
pub mod suite;
pub mod tanh;

pub use hequation::HEquation;
pub use linear::LinearMap;
pub use pde::ConvectionDiffusion;
pub use roots::{RootProblem, classic_root_cases};
pub use rotation::RotationMap;
pub use suite::{hard_suite, quick_suite, standard_suite};
pub use tanh::{TanhLayer, TanhSpectrum};

/// A fixed-point problem `z = f(z)` of dimension [`dim`](FixedPointProblem::dim).
///
/// The f32 map [`f`](FixedPointProblem::f) is what a solver under test calls; the
/// float64 methods describe the same problem in root form `g(z) = f(z) − z = 0` and
/// are used for reference solutions and error measurement.
pub trait FixedPointProblem: Sync {
    /// A short human-readable name with the parameters, e.g. `"tanh d=256 rho=0.9"`.
    fn name(&self) -> String;

    /// The dimension `d` of `z`.
    fn dim(&self) -> usize;

    /// The documented start point of the problem (length `d`).
    fn start(&self) -> Vec<f32>;

    /// The f32 map: writes `f(z)` into `out` (both of length `d`).
    fn f(&self, z: &[f32], out: &mut [f32]);

    /// The float64 residual `g(z) = f(z) − z`, written into `out`.
    fn f64_residual(&self, z: &[f64], out: &mut [f64]);

    /// The map in float64, `f(z) = z + g(z)` (one rounding more than evaluating `f`
    /// directly): what an f64 solver under test calls.
    fn f64_map(&self, z: &[f64], out: &mut [f64]) {
        self.f64_residual(z, out);
        out.iter_mut().zip(z).for_each(|(o, zi)| *o += zi);
    }

    /// The dense float64 Jacobian of `g` at `z`, row-major: `jac[i * d + j] = ∂gᵢ/∂zⱼ`.
    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]);

    /// The float64 reference fixed point, computed once at construction (see each
    /// problem for how; usually float64 Newton from the start point).
    fn reference(&self) -> &[f64];

    /// Float64 Newton (default [`newton::NewtonOptions`]) from the given point;
    /// `Some(root)` when it converges.
    ///
    /// Used to check that a solver's answer is near a true root when the problem
    /// has several: a good answer polishes to a root close to itself.
    fn polish(&self, z: &[f64]) -> Option<Vec<f64>> {
        newton::newton(|z, out| self.f64_residual(z, out), |z, jac| self.f64_jacobian(z, jac), z)
    }

    /// Relative error `‖z − reference‖₂ / ‖reference‖₂`, computed in float64
    /// (the absolute error `‖z − reference‖₂` if the reference is zero).
    fn rel_error(&self, z: &[f32]) -> f64 {
        self.rel_error_f64(&to_f64(z))
    }

    /// [`rel_error`](FixedPointProblem::rel_error) of a float64 answer.
    fn rel_error_f64(&self, z: &[f64]) -> f64 {
        let reference = self.reference();
        assert_eq!(z.len(), reference.len(), "rel_error: length mismatch");
        let diff: Vec<f64> = z.iter().zip(reference).map(|(&a, &r)| a - r).collect();
        let scale = linalg::norm2(reference);
        let err = linalg::norm2(&diff);
        if scale > 0.0 { err / scale } else { err }
    }
}

/// f32 dot product with eight independent accumulators (as a solver-side DEQ layer
/// would compute it), summed pairwise at the end: the arithmetic of every problem's
/// f32 map, public so that a copy of a problem read back from files evaluates
/// bit-identically.
#[inline]
pub fn dot8_f32(row: &[f32], z: &[f32]) -> f32 {
    debug_assert_eq!(row.len(), z.len());
    let mut acc = [0.0f32; 8];
    let mut rc = row.chunks_exact(8);
    let mut zc = z.chunks_exact(8);
    for (r, x) in (&mut rc).zip(&mut zc) {
        for k in 0..8 {
            acc[k] += r[k] * x[k];
        }
    }
    finish8(acc, rc.remainder(), zc.remainder())
}

/// The end of [`dot8_f32`] (and of each row of [`matvec8_f32`]): the products of the
/// last `row.len() % 8` entries added to the first accumulators, then the eight summed
/// pairwise.
#[inline(always)]
fn finish8(mut acc: [f32; 8], row_tail: &[f32], z_tail: &[f32]) -> f32 {
    for (k, (r, x)) in row_tail.iter().zip(z_tail).enumerate() {
        acc[k] += r * x;
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// `out[i] = dot8_f32(row i of a, z)` for the `out.len()` rows of the row-major `a`
/// (each `z.len()` wide): the same bits as [`dot8_f32`] row by row, computed four rows
/// at a time so that the four rows' accumulator chains run side by side (one row's
/// chain alone waits on its additions' latency), with AVX where the CPU has it (the
/// same operations in the same order: a product, then a sum, never fused).
///
/// # Panics
/// If `a` holds fewer than `out.len()` rows.
pub fn matvec8_f32(a: &[f32], z: &[f32], out: &mut [f32]) {
    let d = z.len();
    assert!(a.len() >= out.len() * d, "matvec8_f32: a has fewer rows than out");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { matvec8_avx(a, z, out) };
    }
    matvec8_rows(a, z, out);
}

/// [`matvec8_f32`] compiled for AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn matvec8_avx(a: &[f32], z: &[f32], out: &mut [f32]) {
    matvec8_rows(a, z, out);
}

/// [`matvec8_f32`]'s loops (inlined into each instruction set's copy).
#[inline(always)]
fn matvec8_rows(a: &[f32], z: &[f32], out: &mut [f32]) {
    let d = z.len();
    if d == 0 {
        out.fill(0.0);
        return;
    }
    let done = out.len() - out.len() % 4;
    for (o, block) in out[..done].chunks_exact_mut(4).zip(a.chunks_exact(4 * d)) {
        let (r0, rest) = block.split_at(d);
        let (r1, rest) = rest.split_at(d);
        let (r2, r3) = rest.split_at(d);
        let mut acc = [[0.0f32; 8]; 4];
        let chunks =
            r0.chunks_exact(8).zip(r1.chunks_exact(8)).zip(r2.chunks_exact(8).zip(r3.chunks_exact(8)));
        for (((x0, x1), (x2, x3)), x) in chunks.zip(z.chunks_exact(8)) {
            for k in 0..8 {
                acc[0][k] += x0[k] * x[k];
                acc[1][k] += x1[k] * x[k];
                acc[2][k] += x2[k] * x[k];
                acc[3][k] += x3[k] * x[k];
            }
        }
        let tail = d - d % 8;
        for (o, (row, acc)) in o.iter_mut().zip([r0, r1, r2, r3].into_iter().zip(&acc)) {
            *o = finish8(*acc, &row[tail..], &z[tail..]);
        }
    }
    for (o, row) in out[done..].iter_mut().zip(a[done * d..].chunks_exact(d)) {
        *o = dot8_f32(row, z);
    }
}

/// Converts a float64 vector to f32 (round to nearest).
pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Converts an f32 vector to float64 (exact).
pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// Computes a reference fixed point by float64 Newton from `start`, panicking with
/// the problem name if it fails (construction-time helper).
pub fn newton_reference<P: FixedPointProblem + ?Sized>(p: &P, start: &[f64]) -> Vec<f64> {
    newton::newton(|z, out| p.f64_residual(z, out), |z, jac| p.f64_jacobian(z, jac), start)
        .unwrap_or_else(|| panic!("float64 Newton reference failed for {}", p.name()))
}
