//! The test problems of SciPy's `scipy/optimize/tests/test_nonlin.py` (`F`, `F2`,
//! `F2_lucky`, `F3`, `F4_powell`, `F5`, `F6`), at the starts that file gives them
//! (`f.xin`), as [`RootProblem`]s.
//!
//! The formulas follow SciPy's code (SciPy 1.17); `F5` is `pressure_network` of
//! `test_minpack.py` with four pipes, `Qtot = 4` and valve coefficients `0.5`. SciPy
//! solves `F6`'s 2 × 2 linear system with `numpy.linalg.solve`; here it is solved by
//! Cramer's rule, which agrees to rounding.

use crate::roots::{Float, RootProblem};

/// One problem of SciPy's `test_nonlin.py`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Nonlin {
    /// `F(x) = −D x − c (xᵀx) x`, `D = diag(3, 2, 1.5, 1, 0.5)`, `c = 0.01`; `n = 5`,
    /// start `(1, …, 1)`; root `0`.
    F,
    /// `F2(x) = x`; `n = 6`, start `(1, 2, …, 6)`; root `0`.
    F2,
    /// `F2(x) = x` started at its root `0` (`n = 6`).
    F2Lucky,
    /// `F3(x) = A x − b`, `A = tridiag(1, −2, 1)` (3 × 3), `b = (1, 2, 3)`; start
    /// `(1, 2, 3)`; root `(−5/2, −4, −7/2)`.
    F3,
    /// Powell's badly scaled system, `(A x₀x₁ − 1, e^{−x₀} + e^{−x₁} − (1 + 1/A))`,
    /// `A = 10⁴`; start `(−1, −2)`.
    F4Powell,
    /// The pressure network of four parallel pipes: `Pᵢ − P₀` (`i = 1, 2, 3`,
    /// `Pᵢ = 0.5 Qᵢ²`) and `ΣQᵢ − 4`; start `(2, 0, 2, 0)`; root `(1, 1, 1, 1)`.
    F5,
    /// `−J₀⁻¹ v(x)` with `v = ((x₁ + 3)(x₂⁵ − 7) + 18, sin(x₂ e^{x₁} − 1))` and a fixed
    /// 2 × 2 `J₀`; start `(−0.5, 1.4)`.
    F6,
}

use Nonlin::*;

/// `F6`'s matrix `J₀`, row-major.
const F6_J0: [f64; 4] = [-4.256, 14.7, 0.8394989, 0.59964207];

impl Nonlin {
    /// All seven, in the order of `test_nonlin.py`.
    pub const ALL: [Nonlin; 7] = [F, F2, F2Lucky, F3, F4Powell, F5, F6];

    /// SciPy's name of the function (`"F4_powell"`, …).
    pub fn scipy_name(self) -> &'static str {
        match self {
            F => "F",
            F2 => "F2",
            F2Lucky => "F2_lucky",
            F3 => "F3",
            F4Powell => "F4_powell",
            F5 => "F5",
            F6 => "F6",
        }
    }

    /// The residual in `T`.
    pub fn residual<T: Float>(self, x: &[T], f: &mut [T]) {
        assert_eq!((x.len(), f.len()), (self.dim(), self.dim()), "residual: length mismatch");
        let c = T::from_f64;
        match self {
            F => {
                let d = [3.0, 2.0, 1.5, 1.0, 0.5];
                let mut s = c(0.0);
                for xi in x {
                    s += *xi * *xi;
                }
                for ((fi, xi), di) in f.iter_mut().zip(x).zip(d) {
                    *fi = -c(di) * *xi - c(0.01) * s * *xi;
                }
            }
            F2 | F2Lucky => f.copy_from_slice(x),
            F3 => {
                let b = [c(1.0), c(2.0), c(3.0)];
                f[0] = c(-2.0) * x[0] + x[1] - b[0];
                f[1] = x[0] - c(2.0) * x[1] + x[2] - b[1];
                f[2] = x[1] - c(2.0) * x[2] - b[2];
            }
            F4Powell => {
                let a = c(1e4);
                f[0] = a * x[0] * x[1] - c(1.0);
                f[1] = (-x[0]).exp() + (-x[1]).exp() - (c(1.0) + c(1.0) / a);
            }
            F5 => {
                let k = c(0.5);
                let p0 = k * (x[0] * x[0]);
                for i in 1..4 {
                    f[i - 1] = k * (x[i] * x[i]) - p0;
                }
                let mut q = c(0.0);
                for xi in x {
                    q += *xi;
                }
                f[3] = q - c(4.0);
            }
            F6 => {
                let (x1, x2) = (x[0], x[1]);
                let x2_5 = x2 * x2 * x2 * x2 * x2;
                let v1 = (x1 + c(3.0)) * (x2_5 - c(7.0)) + c(18.0);
                let v2 = (x2 * x1.exp() - c(1.0)).sin();
                let [a, b, cc, d] = F6_J0.map(c);
                let det = a * d - b * cc;
                f[0] = -((d * v1 - b * v2) / det);
                f[1] = -((a * v2 - cc * v1) / det);
            }
        }
    }
}

/// The seven problems at SciPy's starts.
pub fn cases() -> Vec<Nonlin> {
    Nonlin::ALL.to_vec()
}

impl RootProblem for Nonlin {
    fn name(&self) -> String {
        format!("scipy {} n={}", self.scipy_name(), self.dim())
    }

    fn system(&self) -> (&'static str, &'static str) {
        ("scipy", self.scipy_name())
    }

    fn dim(&self) -> usize {
        match self {
            F => 5,
            F2 | F2Lucky => 6,
            F3 => 3,
            F4Powell | F6 => 2,
            F5 => 4,
        }
    }

    fn start(&self) -> Vec<f64> {
        match self {
            F => vec![1.0; 5],
            F2 => vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            F2Lucky => vec![0.0; 6],
            F3 => vec![1.0, 2.0, 3.0],
            F4Powell => vec![-1.0, -2.0],
            F5 => vec![2.0, 0.0, 2.0, 0.0],
            F6 => vec![-0.5, 1.4],
        }
    }

    fn residual_f32(&self, z: &[f32], out: &mut [f32]) {
        self.residual(z, out);
    }

    fn residual_f64(&self, z: &[f64], out: &mut [f64]) {
        self.residual(z, out);
    }

    fn jacobian_f64(&self, x: &[f64], jac: &mut [f64]) {
        let n = self.dim();
        assert_eq!(jac.len(), n * n, "jacobian: length mismatch");
        jac.iter_mut().for_each(|v| *v = 0.0);
        match self {
            F => {
                let d = [3.0, 2.0, 1.5, 1.0, 0.5];
                let s: f64 = x.iter().map(|v| v * v).sum();
                for i in 0..5 {
                    for j in 0..5 {
                        jac[i * 5 + j] = -0.02 * x[i] * x[j];
                    }
                    jac[i * 5 + i] -= d[i] + 0.01 * s;
                }
            }
            F2 | F2Lucky => (0..6).for_each(|i| jac[i * 6 + i] = 1.0),
            F3 => jac.copy_from_slice(&[-2.0, 1.0, 0.0, 1.0, -2.0, 1.0, 0.0, 1.0, -2.0]),
            F4Powell => {
                jac.copy_from_slice(&[1e4 * x[1], 1e4 * x[0], -(-x[0]).exp(), -(-x[1]).exp()]);
            }
            F5 => {
                for i in 1..4 {
                    jac[(i - 1) * 4] = -x[0];
                    jac[(i - 1) * 4 + i] = x[i];
                }
                jac[12..16].fill(1.0);
            }
            F6 => {
                let (x1, x2) = (x[0], x[1]);
                let e = x1.exp();
                let cw = (x2 * e - 1.0).cos();
                // ∂v/∂x, row-major.
                let dv = [x2.powi(5) - 7.0, 5.0 * (x1 + 3.0) * x2.powi(4), cw * x2 * e, cw * e];
                let [a, b, c, d] = F6_J0;
                let det = a * d - b * c;
                for j in 0..2 {
                    jac[j] = -(d * dv[j] - b * dv[2 + j]) / det;
                    jac[2 + j] = -(a * dv[2 + j] - c * dv[j]) / det;
                }
            }
        }
    }

    fn published_root(&self) -> Option<Vec<f64>> {
        match self {
            F => Some(vec![0.0; 5]),
            F2 | F2Lucky => Some(vec![0.0; 6]),
            F3 => Some(vec![-2.5, -4.0, -3.5]),
            F5 => Some(vec![1.0; 4]),
            F4Powell | F6 => None,
        }
    }
}
