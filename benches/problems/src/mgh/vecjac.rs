//! MINPACK's `VECJAC` (netlib `minpack/ex/file16`): the Jacobians of the fourteen
//! systems of [`super`], statement by statement.

use super::MghProblem::{self, *};

/// MINPACK's `VECJAC`: the Jacobian of `VECFCN` in float64, row-major.
pub(super) fn vecjac(p: MghProblem, x: &[f64], jac: &mut [f64]) {
    let n = x.len();
    assert_eq!(jac.len(), n * n, "jacobian: length mismatch");
    jac.iter_mut().for_each(|v| *v = 0.0);
    // `set(k, j, v)`: FJAC(K, J) = v with MINPACK's 1-based K, J.
    let mut set = |k: usize, j: usize, v: f64| jac[(k - 1) * n + (j - 1)] = v;
    let float = |i: usize| i as f64;
    match p {
        Rosenbrock => {
            set(1, 1, -1.0);
            set(2, 1, -20.0 * x[0]);
            set(2, 2, 10.0);
        }
        PowellSingular => {
            set(1, 1, 1.0);
            set(1, 2, 10.0);
            set(2, 3, 5f64.sqrt());
            set(2, 4, -(5f64.sqrt()));
            let f32_ = 2.0 * (x[1] - 2.0 * x[2]);
            set(3, 2, f32_);
            set(3, 3, -2.0 * f32_);
            let f41 = 2.0 * 10f64.sqrt() * (x[0] - x[3]);
            set(4, 1, f41);
            set(4, 4, -f41);
        }
        PowellBadlyScaled => {
            set(1, 1, 1e4 * x[1]);
            set(1, 2, 1e4 * x[0]);
            set(2, 1, -(-x[0]).exp());
            set(2, 2, -(-x[1]).exp());
        }
        Wood => {
            let (c3, c4, c5, c6) = (2e2, 20.2, 19.8, 1.8e2);
            let temp1 = x[1] - 3.0 * x[0] * x[0];
            let temp2 = x[3] - 3.0 * x[2] * x[2];
            set(1, 1, -c3 * temp1 + 1.0);
            set(1, 2, -c3 * x[0]);
            set(2, 1, -2.0 * c3 * x[0]);
            set(2, 2, c3 + c4);
            set(2, 4, c5);
            set(3, 3, -c6 * temp2 + 1.0);
            set(3, 4, -c6 * x[2]);
            set(4, 2, c5);
            set(4, 3, -2.0 * c6 * x[2]);
            set(4, 4, c6 + c4);
        }
        HelicalValley => {
            let tpi = 8.0 * 1f64.atan();
            let temp = x[0] * x[0] + x[1] * x[1];
            let temp1 = tpi * temp;
            let temp2 = temp.sqrt();
            set(1, 1, 100.0 * x[1] / temp1);
            set(1, 2, -100.0 * x[0] / temp1);
            set(1, 3, 10.0);
            set(2, 1, 10.0 * x[0] / temp2);
            set(2, 2, 10.0 * x[1] / temp2);
            set(3, 3, 1.0);
        }
        Watson => {
            // The upper triangle, then mirrored (the Hessian of the Watson sum).
            let mut up = vec![0.0; n * n];
            for i in 1..=29 {
                let ti = float(i) / 29.0;
                let (mut sum1, mut temp) = (0.0, 1.0);
                for j in 2..=n {
                    sum1 += float(j - 1) * temp * x[j - 1];
                    temp *= ti;
                }
                let (mut sum2, mut temp) = (0.0, 1.0);
                for xj in x {
                    sum2 += temp * xj;
                    temp *= ti;
                }
                let temp1 = 2.0 * (sum1 - sum2 * sum2 - 1.0);
                let temp2 = 2.0 * sum2;
                let temp = ti * ti;
                let mut tk = 1.0;
                for k in 1..=n {
                    let mut tj = tk;
                    for j in k..=n {
                        up[(k - 1) * n + (j - 1)] +=
                            tj * ((float(k - 1) / ti - temp2) * (float(j - 1) / ti - temp2) - temp1);
                        tj *= ti;
                    }
                    tk *= temp;
                }
            }
            up[0] += 6.0 * x[0] * x[0] - 2.0 * x[1] + 3.0;
            up[1] -= 2.0 * x[0];
            up[n + 1] += 1.0;
            for k in 1..=n {
                for j in k..=n {
                    let v = up[(k - 1) * n + (j - 1)];
                    set(k, j, v);
                    set(j, k, v);
                }
            }
        }
        Chebyquad => {
            let tk = 1.0 / float(n);
            for j in 1..=n {
                let mut temp1 = 1.0;
                let mut temp2 = 2.0 * x[j - 1] - 1.0;
                let temp = 2.0 * temp2;
                let (mut temp3, mut temp4) = (0.0, 2.0);
                for k in 1..=n {
                    set(k, j, tk * temp4);
                    let ti = 4.0 * temp2 + temp * temp4 - temp3;
                    temp3 = temp4;
                    temp4 = ti;
                    let ti = temp * temp2 - temp1;
                    temp1 = temp2;
                    temp2 = ti;
                }
            }
        }
        BrownAlmostLinear => {
            let mut prod = 1.0;
            for j in 1..=n {
                prod *= x[j - 1];
                for k in 1..=n {
                    set(k, j, 1.0);
                }
                set(j, j, 2.0);
            }
            for j in 1..=n {
                let mut temp = x[j - 1];
                let mut pj = prod;
                if temp == 0.0 {
                    temp = 1.0;
                    pj = (1..=n).filter(|&k| k != j).map(|k| x[k - 1]).product();
                }
                set(n, j, pj / temp);
            }
        }
        DiscreteBoundaryValue => {
            let h = 1.0 / float(n + 1);
            for k in 1..=n {
                let t = x[k - 1] + float(k) * h + 1.0;
                let temp = 3.0 * t * t;
                set(k, k, 2.0 + temp * h * h / 2.0);
                if k != 1 {
                    set(k, k - 1, -1.0);
                }
                if k != n {
                    set(k, k + 1, -1.0);
                }
            }
        }
        DiscreteIntegralEquation => {
            let h = 1.0 / float(n + 1);
            for k in 1..=n {
                let tk = float(k) * h;
                for j in 1..=n {
                    let tj = float(j) * h;
                    let t = x[j - 1] + tj + 1.0;
                    let temp = 3.0 * t * t;
                    let v = h * (tj * (1.0 - tk)).min(tk * (1.0 - tj)) * temp / 2.0;
                    set(k, j, if j == k { v + 1.0 } else { v });
                }
            }
        }
        Trigonometric => {
            for j in 1..=n {
                let temp = x[j - 1].sin();
                for k in 1..=n {
                    set(k, j, temp);
                }
                set(j, j, float(j + 1) * temp - x[j - 1].cos());
            }
        }
        VariablyDimensioned => {
            let sum: f64 = x.iter().enumerate().map(|(j, xj)| float(j + 1) * (xj - 1.0)).sum();
            let temp = 1.0 + 6.0 * sum * sum;
            for k in 1..=n {
                for j in k..=n {
                    let v = float(k * j) * temp;
                    set(k, j, v);
                    set(j, k, v);
                }
                let d = float(k * k) * temp + 1.0;
                set(k, k, d);
            }
        }
        BroydenTridiagonal => {
            for k in 1..=n {
                set(k, k, 3.0 - 4.0 * x[k - 1]);
                if k != 1 {
                    set(k, k - 1, -1.0);
                }
                if k != n {
                    set(k, k + 1, -2.0);
                }
            }
        }
        BroydenBanded => {
            let (ml, mu) = (5, 1);
            for k in 1..=n {
                let (k1, k2) = (k.saturating_sub(ml).max(1), (k + mu).min(n));
                for j in k1..=k2 {
                    if j != k {
                        set(k, j, -(1.0 + 2.0 * x[j - 1]));
                    }
                }
                set(k, k, 2.0 + 15.0 * x[k - 1] * x[k - 1]);
            }
        }
    }
}
