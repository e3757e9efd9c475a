//! The fourteen Moré–Garbow–Hillstrom systems of nonlinear equations, exactly as
//! MINPACK's `hybrd`/`hybrj` test driver defines them (Argonne, March 1980; netlib
//! `minpack/ex`, double-precision driver `file15`/`file16`):
//!
//! * the residuals are MINPACK's `VECFCN`, statement by statement and in its order of
//!   operations (with the constants rounded to the float type, as MINPACK's
//!   single-precision version does);
//! * the Jacobians are MINPACK's `VECJAC`;
//! * the starts are MINPACK's `INITPT`: `factor · x0`, except for Watson, whose `x0` is
//!   zero: there a factor other than 1 gives `xⱼ = factor` for every `j`;
//! * [`HYBRD_TEST_LIST`] is MINPACK's `hybrd` test data (netlib `ex/file21`): the
//!   problem, the dimension `n`, and the number of starts tried (`x0`, then `10·x0`,
//!   then `100·x0`).
//!
//! The systems: J. J. Moré, B. S. Garbow, K. E. Hillstrom, *Testing unconstrained
//! optimization software*, ACM TOMS 7 (1981) 17–41. Watson (6) is the gradient of the
//! Watson least-squares sum (a root is a stationary point of it), as in MINPACK.

use crate::roots::{Float, RootProblem};

mod vecjac;
use vecjac::vecjac;

/// The fourteen systems, numbered as MINPACK's `NPROB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MghProblem {
    /// 1: Rosenbrock, `n = 2`; root `(1, 1)`.
    Rosenbrock,
    /// 2: Powell singular, `n = 4`; root `0` (singular Jacobian there).
    PowellSingular,
    /// 3: Powell badly scaled, `n = 2`; root near `(1.098·10⁻⁵, 9.106)`.
    PowellBadlyScaled,
    /// 4: Wood, `n = 4`; root `(1, 1, 1, 1)`.
    Wood,
    /// 5: helical valley, `n = 3`; root `(1, 0, 0)`.
    HelicalValley,
    /// 6: Watson (the gradient of the Watson sum of squares), `n ≥ 2`.
    Watson,
    /// 7: Chebyquad; has roots for `n ≤ 7` and `n = 9`.
    Chebyquad,
    /// 8: Brown almost-linear; root `(1, …, 1)`.
    BrownAlmostLinear,
    /// 9: discrete boundary value.
    DiscreteBoundaryValue,
    /// 10: discrete integral equation.
    DiscreteIntegralEquation,
    /// 11: trigonometric; root `0`.
    Trigonometric,
    /// 12: variably dimensioned; root `(1, …, 1)`.
    VariablyDimensioned,
    /// 13: Broyden tridiagonal.
    BroydenTridiagonal,
    /// 14: Broyden banded (lower bandwidth 5, upper 1).
    BroydenBanded,
}

use MghProblem::*;

impl MghProblem {
    /// All fourteen, in MINPACK's order.
    pub const ALL: [MghProblem; 14] = [
        Rosenbrock,
        PowellSingular,
        PowellBadlyScaled,
        Wood,
        HelicalValley,
        Watson,
        Chebyquad,
        BrownAlmostLinear,
        DiscreteBoundaryValue,
        DiscreteIntegralEquation,
        Trigonometric,
        VariablyDimensioned,
        BroydenTridiagonal,
        BroydenBanded,
    ];

    /// MINPACK's problem number `NPROB` (1 to 14).
    pub fn number(self) -> u8 {
        Self::ALL.iter().position(|&p| p == self).map_or(0, |i| i as u8 + 1)
    }

    /// A lower-case name, e.g. `"powell_badly_scaled"`.
    pub fn name(self) -> &'static str {
        match self {
            Rosenbrock => "rosenbrock",
            PowellSingular => "powell_singular",
            PowellBadlyScaled => "powell_badly_scaled",
            Wood => "wood",
            HelicalValley => "helical_valley",
            Watson => "watson",
            Chebyquad => "chebyquad",
            BrownAlmostLinear => "brown_almost_linear",
            DiscreteBoundaryValue => "discrete_boundary_value",
            DiscreteIntegralEquation => "discrete_integral_equation",
            Trigonometric => "trigonometric",
            VariablyDimensioned => "variably_dimensioned",
            BroydenTridiagonal => "broyden_tridiagonal",
            BroydenBanded => "broyden_banded",
        }
    }

    /// The dimension the system requires (`None`: any `n ≥ 1`, Watson `n ≥ 2`).
    pub fn fixed_dim(self) -> Option<usize> {
        match self {
            Rosenbrock | PowellBadlyScaled => Some(2),
            PowellSingular | Wood => Some(4),
            HelicalValley => Some(3),
            _ => None,
        }
    }
}

/// MINPACK's `hybrd` test list (netlib `minpack/ex/file21`): problem, `n`, and the
/// number of starts tried, `x0`, `10·x0`, `100·x0` in turn. 22 entries, 55 starts.
pub const HYBRD_TEST_LIST: [(MghProblem, usize, u32); 22] = [
    (Rosenbrock, 2, 3),
    (PowellSingular, 4, 3),
    (PowellBadlyScaled, 2, 2),
    (Wood, 4, 3),
    (HelicalValley, 3, 3),
    (Watson, 6, 2),
    (Watson, 9, 2),
    (Chebyquad, 5, 3),
    (Chebyquad, 6, 3),
    (Chebyquad, 7, 3),
    (Chebyquad, 8, 1),
    (Chebyquad, 9, 1),
    (BrownAlmostLinear, 10, 3),
    (BrownAlmostLinear, 30, 1),
    (BrownAlmostLinear, 40, 1),
    (DiscreteBoundaryValue, 10, 3),
    (DiscreteIntegralEquation, 1, 3),
    (DiscreteIntegralEquation, 10, 3),
    (Trigonometric, 10, 3),
    (VariablyDimensioned, 10, 3),
    (BroydenTridiagonal, 10, 3),
    (BroydenBanded, 10, 3),
];

/// One case: a system, its dimension and the multiple of the standard start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mgh {
    /// The system.
    pub problem: MghProblem,
    /// The dimension.
    pub n: usize,
    /// The start is `factor · x0` (Watson: `xⱼ = factor` when `factor ≠ 1`).
    pub factor: f64,
}

impl Mgh {
    /// The case `(problem, n, factor)`.
    ///
    /// # Panics
    /// If `n` is not the system's fixed dimension, is zero, or is 1 for Watson.
    pub fn new(problem: MghProblem, n: usize, factor: f64) -> Self {
        assert!(n >= 1 && problem.fixed_dim().is_none_or(|d| d == n), "{problem:?} with n = {n}");
        assert!(problem != Watson || n >= 2, "Watson needs n ≥ 2");
        Mgh { problem, n, factor }
    }

    /// The residual (`VECFCN`) in `T`.
    pub fn residual<T: Float>(&self, x: &[T], f: &mut [T]) {
        residual(self.problem, x, f);
    }
}

/// Every start of MINPACK's `hybrd` test list: 55 cases, `x0`, `10·x0` and `100·x0`
/// as [`HYBRD_TEST_LIST`] says.
pub fn hybrd_cases() -> Vec<Mgh> {
    let mut cases = Vec::new();
    for &(p, n, tries) in &HYBRD_TEST_LIST {
        let mut factor = 1.0;
        for _ in 0..tries {
            cases.push(Mgh::new(p, n, factor));
            factor *= 10.0;
        }
    }
    cases
}

/// The 36 classic cases: each of the 18 entries of [`HYBRD_TEST_LIST`] that MINPACK
/// tries at `10·x0` too, at `x0` and at `10·x0` (the four entries tried at `x0` only,
/// Chebyquad `n = 8, 9` and Brown almost-linear `n = 30, 40`, and every `100·x0`
/// start are left out).
pub fn classic_cases() -> Vec<Mgh> {
    let mut cases = Vec::new();
    for &(p, n, tries) in &HYBRD_TEST_LIST {
        if tries >= 2 {
            cases.push(Mgh::new(p, n, 1.0));
            cases.push(Mgh::new(p, n, 10.0));
        }
    }
    cases
}

impl RootProblem for Mgh {
    fn name(&self) -> String {
        let start = if self.factor == 1.0 { "x0".to_string() } else { format!("{}·x0", self.factor) };
        format!("{} n={} {start}", self.problem.name(), self.n)
    }

    fn system(&self) -> (&'static str, &'static str) {
        ("mgh", self.problem.name())
    }

    fn dim(&self) -> usize {
        self.n
    }

    fn start(&self) -> Vec<f64> {
        initpt(self.problem, self.n, self.factor)
    }

    fn start_factor(&self) -> f64 {
        self.factor
    }

    fn residual_f32(&self, z: &[f32], out: &mut [f32]) {
        residual(self.problem, z, out);
    }

    fn residual_f64(&self, z: &[f64], out: &mut [f64]) {
        residual(self.problem, z, out);
    }

    fn jacobian_f64(&self, z: &[f64], jac: &mut [f64]) {
        vecjac(self.problem, z, jac);
    }

    fn published_root(&self) -> Option<Vec<f64>> {
        let n = self.n;
        match self.problem {
            Rosenbrock => Some(vec![1.0; 2]),
            PowellSingular => Some(vec![0.0; 4]),
            Wood => Some(vec![1.0; 4]),
            HelicalValley => Some(vec![1.0, 0.0, 0.0]),
            BrownAlmostLinear | VariablyDimensioned => Some(vec![1.0; n]),
            Trigonometric => Some(vec![0.0; n]),
            _ => None,
        }
    }
}

#[inline]
fn cube<T: Float>(v: T) -> T {
    v * v * v
}

/// MINPACK's `VECFCN`, in `T` (indices here from 0, MINPACK's from 1).
fn residual<T: Float>(p: MghProblem, x: &[T], f: &mut [T]) {
    let n = x.len();
    assert_eq!(f.len(), n, "residual: length mismatch");
    let c = T::from_f64;
    let (zero, one, two, ten) = (c(0.0), c(1.0), c(2.0), c(10.0));
    let float = |i: usize| c(i as f64);
    match p {
        Rosenbrock => {
            f[0] = one - x[0];
            f[1] = ten * (x[1] - x[0] * x[0]);
        }
        PowellSingular => {
            f[0] = x[0] + ten * x[1];
            f[1] = c(5.0).sqrt() * (x[2] - x[3]);
            let t = x[1] - two * x[2];
            f[2] = t * t;
            let t = x[0] - x[3];
            f[3] = ten.sqrt() * (t * t);
        }
        PowellBadlyScaled => {
            f[0] = c(1e4) * x[0] * x[1] - one;
            f[1] = (-x[0]).exp() + (-x[1]).exp() - c(1.0001);
        }
        Wood => {
            let t1 = x[1] - x[0] * x[0];
            let t2 = x[3] - x[2] * x[2];
            let (c3, c4, c5, c6) = (c(2e2), c(20.2), c(19.8), c(1.8e2));
            f[0] = -c3 * x[0] * t1 - (one - x[0]);
            f[1] = c3 * t1 + c4 * (x[1] - one) + c5 * (x[3] - one);
            f[2] = -c6 * x[2] * t2 - (one - x[2]);
            f[3] = c6 * t2 + c4 * (x[3] - one) + c5 * (x[1] - one);
        }
        HelicalValley => {
            let tpi = c(8.0) * one.atan();
            // DSIGN(0.25, X(2)): +0.25 for X(2) ≥ 0.
            let mut t1 = if x[1] >= zero { c(0.25) } else { c(-0.25) };
            if x[0] > zero {
                t1 = (x[1] / x[0]).atan() / tpi;
            }
            if x[0] < zero {
                t1 = (x[1] / x[0]).atan() / tpi + c(0.5);
            }
            let t2 = (x[0] * x[0] + x[1] * x[1]).sqrt();
            f[0] = ten * (x[2] - ten * t1);
            f[1] = ten * (t2 - one);
            f[2] = x[2];
        }
        Watson => {
            f.iter_mut().for_each(|v| *v = zero);
            for i in 1..=29 {
                let ti = float(i) / c(29.0);
                let (mut sum1, mut temp) = (zero, one);
                for j in 2..=n {
                    sum1 += float(j - 1) * temp * x[j - 1];
                    temp = ti * temp;
                }
                let (mut sum2, mut temp) = (zero, one);
                for xj in x {
                    sum2 += temp * *xj;
                    temp = ti * temp;
                }
                let temp1 = sum1 - sum2 * sum2 - one;
                let temp2 = two * ti * sum2;
                let mut temp = one / ti;
                for (k, fk) in f.iter_mut().enumerate() {
                    *fk += temp * (float(k) - temp2) * temp1;
                    temp = ti * temp;
                }
            }
            let temp = x[1] - x[0] * x[0] - one;
            f[0] += x[0] * (one - two * temp);
            f[1] += temp;
        }
        Chebyquad => {
            f.iter_mut().for_each(|v| *v = zero);
            for xj in x {
                let mut temp1 = one;
                let mut temp2 = two * *xj - one;
                let temp = two * temp2;
                for fi in f.iter_mut() {
                    *fi += temp2;
                    let ti = temp * temp2 - temp1;
                    temp1 = temp2;
                    temp2 = ti;
                }
            }
            let tk = one / float(n);
            for (k0, fk) in f.iter_mut().enumerate() {
                let k = k0 + 1;
                *fk = tk * *fk;
                if k % 2 == 0 {
                    *fk += one / (float(k * k) - one);
                }
            }
        }
        BrownAlmostLinear => {
            let mut sum = -float(n + 1);
            let mut prod = one;
            for xj in x {
                sum += *xj;
                prod = *xj * prod;
            }
            for (fk, xk) in f.iter_mut().zip(x) {
                *fk = *xk + sum;
            }
            f[n - 1] = prod - one;
        }
        DiscreteBoundaryValue => {
            let h = one / float(n + 1);
            for k in 0..n {
                let temp = cube(x[k] + float(k + 1) * h + one);
                let temp1 = if k > 0 { x[k - 1] } else { zero };
                let temp2 = if k + 1 < n { x[k + 1] } else { zero };
                f[k] = two * x[k] - temp1 - temp2 + temp * (h * h) / two;
            }
        }
        DiscreteIntegralEquation => {
            let h = one / float(n + 1);
            for k in 0..n {
                let tk = float(k + 1) * h;
                let mut sum1 = zero;
                for (j, xj) in x.iter().enumerate().take(k + 1) {
                    let tj = float(j + 1) * h;
                    sum1 += tj * cube(*xj + tj + one);
                }
                let mut sum2 = zero;
                for (j, xj) in x.iter().enumerate().skip(k + 1) {
                    let tj = float(j + 1) * h;
                    sum2 += (one - tj) * cube(*xj + tj + one);
                }
                f[k] = x[k] + h * ((one - tk) * sum1 + tk * sum2) / two;
            }
        }
        Trigonometric => {
            let mut sum = zero;
            for (fj, xj) in f.iter_mut().zip(x) {
                *fj = xj.cos();
                sum += *fj;
            }
            for (k, (fk, xk)) in f.iter_mut().zip(x).enumerate() {
                *fk = float(n + k + 1) - xk.sin() - sum - float(k + 1) * *fk;
            }
        }
        VariablyDimensioned => {
            let mut sum = zero;
            for (j, xj) in x.iter().enumerate() {
                sum += float(j + 1) * (*xj - one);
            }
            let temp = sum * (one + two * (sum * sum));
            for (k, (fk, xk)) in f.iter_mut().zip(x).enumerate() {
                *fk = *xk - one + float(k + 1) * temp;
            }
        }
        BroydenTridiagonal => {
            for k in 0..n {
                let temp = (c(3.0) - two * x[k]) * x[k];
                let temp1 = if k > 0 { x[k - 1] } else { zero };
                let temp2 = if k + 1 < n { x[k + 1] } else { zero };
                f[k] = temp - temp1 - two * temp2 + one;
            }
        }
        BroydenBanded => {
            let (ml, mu) = (5, 1);
            for k in 0..n {
                let (k1, k2) = (k.saturating_sub(ml), (k + mu).min(n - 1));
                let mut temp = zero;
                for (j, xj) in x.iter().enumerate().take(k2 + 1).skip(k1) {
                    if j != k {
                        temp += *xj * (one + *xj);
                    }
                }
                f[k] = x[k] * (two + c(5.0) * (x[k] * x[k])) + one - temp;
            }
        }
    }
}

/// MINPACK's `INITPT`: the standard start of `p` in dimension `n`, times `factor`.
fn initpt(p: MghProblem, n: usize, factor: f64) -> Vec<f64> {
    let float = |i: usize| i as f64;
    let x0: Vec<f64> = match p {
        Rosenbrock => vec![-1.2, 1.0],
        PowellSingular => vec![3.0, -1.0, 0.0, 1.0],
        PowellBadlyScaled => vec![0.0, 1.0],
        Wood => vec![-3.0, -1.0, -3.0, -1.0],
        HelicalValley => vec![-1.0, 0.0, 0.0],
        Watson => vec![0.0; n],
        Chebyquad => {
            let h = 1.0 / float(n + 1);
            (1..=n).map(|j| float(j) * h).collect()
        }
        BrownAlmostLinear => vec![0.5; n],
        DiscreteBoundaryValue | DiscreteIntegralEquation => {
            let h = 1.0 / float(n + 1);
            (1..=n)
                .map(|j| {
                    let tj = float(j) * h;
                    tj * (tj - 1.0)
                })
                .collect()
        }
        Trigonometric => vec![1.0 / float(n); n],
        VariablyDimensioned => {
            let h = 1.0 / float(n);
            (1..=n).map(|j| 1.0 - float(j) * h).collect()
        }
        BroydenTridiagonal | BroydenBanded => vec![-1.0; n],
    };
    if factor == 1.0 {
        x0
    } else if p == Watson {
        vec![factor; n]
    } else {
        x0.iter().map(|v| factor * v).collect()
    }
}
