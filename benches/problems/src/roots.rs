//! Root-finding test problems `g(z) = 0`: the root-form counterpart of
//! [`FixedPointProblem`](crate::FixedPointProblem), for solvers such as
//! `Broyden::solve_root` that are given the residual directly.
//!
//! Every problem implements [`RootProblem`]: the residual in f32 and in float64 (the
//! same formulas, written once over [`Float`]), its float64 Jacobian, a start point and,
//! where the literature gives one exactly, a root. [`classic_root_cases`] is the fixed
//! list of 43 classic cases: the Moré–Garbow–Hillstrom systems of MINPACK's `hybrd`
//! test set ([`mgh`]) and the problems of SciPy's `test_nonlin.py`
//! ([`nonlin`]).

use solver_core::Real;

use crate::{linalg, mgh, nonlin};

/// The float types a [`RootProblem`]'s residual is written over (`f32` and `f64`): the
/// solvers' [`Real`] (arithmetic, `sqrt`, `from_f64`) and the few functions of `std` the
/// classic systems use besides.
pub trait Float: Real {
    /// The exponential.
    fn exp(self) -> Self;
    /// The sine.
    fn sin(self) -> Self;
    /// The cosine.
    fn cos(self) -> Self;
    /// The arc tangent.
    fn atan(self) -> Self;
}

macro_rules! float_impl {
    ($t:ty) => {
        impl Float for $t {
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline]
            fn atan(self) -> Self {
                <$t>::atan(self)
            }
        }
    };
}

float_impl!(f32);
float_impl!(f64);

/// A root-finding problem `g(z) = 0` of dimension [`dim`](RootProblem::dim).
///
/// The f32 residual is what an f32 solver under test calls; the float64 residual is
/// what an f64 solver calls and what judges any answer: a solve counts as solved when
/// `‖g(z)‖₂`, recomputed in float64 at its answer, is small enough.
pub trait RootProblem: Sync {
    /// A short name with the parameters, e.g. `"rosenbrock n=2 10·x0"`.
    fn name(&self) -> String;

    /// Which system this is, for a peer harness that defines it again: `"mgh"` or
    /// `"scipy"`, and the system's own name (`"rosenbrock"`, `"F4_powell"`, …).
    fn system(&self) -> (&'static str, &'static str);

    /// The dimension `n` of `z` (and of `g(z)`).
    fn dim(&self) -> usize;

    /// The start point (length `n`) in float64; an f32 solver starts from it rounded.
    fn start(&self) -> Vec<f64>;

    /// The multiple of the system's standard start that [`start`](Self::start) is
    /// (MINPACK tries `1`, `10` and `100`); `1` unless a case says otherwise.
    fn start_factor(&self) -> f64 {
        1.0
    }

    /// The f32 residual: writes `g(z)` into `out` (both of length `n`).
    fn residual_f32(&self, z: &[f32], out: &mut [f32]);

    /// The float64 residual, the same formulas as [`residual_f32`](Self::residual_f32).
    fn residual_f64(&self, z: &[f64], out: &mut [f64]);

    /// The dense float64 Jacobian of `g` at `z`, row-major: `jac[i * n + j] = ∂gᵢ/∂zⱼ`.
    fn jacobian_f64(&self, z: &[f64], jac: &mut [f64]);

    /// A root given exactly by the literature, when there is one (`g` vanishes there up
    /// to rounding); `None` when the root is known only numerically or not at all.
    fn published_root(&self) -> Option<Vec<f64>>;

    /// `‖g(z)‖₂` in float64.
    fn residual_norm_f64(&self, z: &[f64]) -> f64 {
        let mut g = vec![0.0; self.dim()];
        self.residual_f64(z, &mut g);
        linalg::norm2(&g)
    }
}

/// The 43 classic root-finding cases, in this order:
///
/// * the 36 MINPACK cases of [`mgh::classic_cases`]: every entry of MINPACK's `hybrd`
///   test list that the list tries at `10·x0`, at `x0` and at `10·x0`;
/// * the 7 problems of SciPy's `test_nonlin.py` ([`nonlin::cases`]) at their starts.
pub fn classic_root_cases() -> Vec<Box<dyn RootProblem>> {
    let mut cases: Vec<Box<dyn RootProblem>> = Vec::new();
    for c in mgh::classic_cases() {
        cases.push(Box::new(c));
    }
    for c in nonlin::cases() {
        cases.push(Box::new(c));
    }
    cases
}
