//! Which limited-memory reduction keeps unbounded Broyden's convergence with M = 8 pairs:
//! a float64 prototype of "good" Broyden, `H = −I + U Vᵀ`, with nothing but the method
//! (no step rejection, line search or stall guard, so that only the reduction differs),
//! run to `‖g‖ ≤ 1e-6·‖f(z)‖` on the standard and the hard suite (the problems' float64
//! maps), under six treatments of a full history, then again with the shipped solver's
//! step rejection (its one safeguard that the defaults turn on, [`Guard::RejectRestart`]),
//! and with a rejection that keeps the rejected step's secant pair ([`Guard::RejectKeep`]):
//!
//! * **drop-oldest**: forget the oldest pair (the solver's default, `History::DropOldest`);
//! * **restart**: forget every pair (`History::Restart`);
//! * **BRR**: Broyden Rank Reduction (van de Rotten and Verduyn Lunel): replace `U Vᵀ`
//!   by its best rank-(M−1) approximation, from a QR factorisation of `V` and the
//!   eigen-decomposition of the M × M Gram matrix of `U Rᵀ` (the squares of its singular
//!   values), so that the reduction needs M × M scratch only;
//! * **BRR to M/2**: the same, keeping the best rank-M/2 part;
//! * **drop oldest M/2**: forget the oldest half of the pairs;
//! * **unbounded**: keep every pair (the reference the done-when compares with).
//!
//! In each case a full history is reduced *before* the new pair is formed, so the newest
//! secant condition `H₊ Δg = Δz` holds exactly. The last two columns are the shipped
//! solver (f32, default settings) with M = 8 and unbounded, for comparison.
//!
//! ```text
//! cargo run --release -p deq-benches --bin reduction_table
//! ```

// Gram–Schmidt reads as its formulas with indices.
#![allow(clippy::needless_range_loop)]

use deq_benches::{broyden, evals};
use deq_problems::eigen::jacobi_eigen;
use deq_problems::{FixedPointProblem, hard_suite, standard_suite};
use solver_core::{BroydenSettings, Options};

const MAX_EVALS: usize = 2000;
const TOL: f64 = 1e-6;
const M: usize = 8;

/// What a full history does before a new pair is stored.
#[derive(Clone, Copy, PartialEq)]
enum Reduction {
    DropOldest,
    Restart,
    Brr,
    /// BRR to rank M/2.
    BrrHalf,
    /// Forget the oldest M/2 pairs.
    DropHalf,
    Unbounded,
}

// Plain sequential sums, not `deq_problems::linalg`'s four-accumulator `dot` and scaled
// `norm2`: the hard layers' counts move by several evaluations with the summation order
// alone (with those: 164 → 159 unbounded on ρ = 1.2), and the README quotes these.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `H = −I + Σᵢ uᵢ vᵢᵀ`.
#[derive(Default)]
struct Inverse {
    u: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
}

impl Inverse {
    /// `H x` (`transpose`: `Hᵀ x`).
    fn apply(&self, x: &[f64], transpose: bool) -> Vec<f64> {
        let mut y: Vec<f64> = x.iter().map(|v| -v).collect();
        for (u, v) in self.u.iter().zip(&self.v) {
            let (a, b) = if transpose { (v, u) } else { (u, v) };
            let c = dot(b, x);
            y.iter_mut().zip(a).for_each(|(yi, ai)| *yi += c * ai);
        }
        y
    }

    /// Broyden Rank Reduction: `U Vᵀ` replaced by its best approximation of rank `rank`.
    fn reduce_rank(&mut self, rank: usize) {
        let m = self.v.len();
        // Modified Gram–Schmidt: V's rows become orthonormal (Q), R upper triangular.
        let mut r = vec![vec![0.0; m]; m];
        for j in 0..m {
            for i in 0..j {
                let (qi, vj) = (self.v[i].clone(), &mut self.v[j]);
                r[i][j] = dot(&qi, vj);
                vj.iter_mut().zip(&qi).for_each(|(a, q)| *a -= r[i][j] * q);
            }
            r[j][j] = norm(&self.v[j]);
            if r[j][j] > 0.0 {
                let s = 1.0 / r[j][j];
                self.v[j].iter_mut().for_each(|a| *a *= s);
            }
        }
        // U Vᵀ = (U Rᵀ) Qᵀ: row j of W = U Rᵀ is Σ_{k ≥ j} R[j][k] u_k (in place, j rising).
        for j in 0..m {
            let mut w = vec![0.0; self.u[j].len()];
            for k in j..m {
                w.iter_mut().zip(&self.u[k]).for_each(|(a, b)| *a += r[j][k] * b);
            }
            self.u[j] = w;
        }
        // W = X Σ Yᵀ from the eigenvectors Y of WᵀW; U Vᵀ = (W Y)(Q Y)ᵀ, column by column
        // a singular triple; the smallest one is dropped.
        let mut gram = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                gram[i * m + j] = dot(&self.u[i], &self.u[j]);
                gram[j * m + i] = gram[i * m + j];
            }
        }
        // Eigenvalues increasing: the last `rank` columns are the largest singular triples.
        let (_, y) = jacobi_eigen(&gram, m);
        let keep = (m - rank.min(m)..m).rev();
        let combine = |rows: &[Vec<f64>], col: usize| {
            let mut out = vec![0.0; rows[0].len()];
            for (k, row) in rows.iter().enumerate() {
                out.iter_mut().zip(row).for_each(|(a, b)| *a += y[k * m + col] * b);
            }
            out
        };
        let (u, v): (Vec<_>, Vec<_>) = keep.map(|c| (combine(&self.u, c), combine(&self.v, c))).unzip();
        (self.u, self.v) = (u, v);
    }
}

/// What the prototype does with a quasi-Newton step (one taken with pairs stored) that
/// multiplies `‖g‖` by more than the growth allowed (2 at first, doubled at each such
/// step until a step reduces `‖g‖` again).
#[derive(Clone, Copy, PartialEq)]
enum Guard {
    /// Takes it.
    None,
    /// The shipped solver's step rejection: the step is undone and the history
    /// restarted, so the next step is a plain one.
    RejectRestart,
    /// The step is undone but its secant pair `(Δz, Δg)`, which is as true of `g` as any
    /// other, updates the model as an accepted step's would; the next step is taken
    /// from the same point with the updated `H`.
    RejectKeep,
}

/// f-evaluations to tolerance (`None`: not reached within [`MAX_EVALS`] or not finite).
fn solve(p: &dyn FixedPointProblem, reduction: Reduction, guard: Guard) -> Option<usize> {
    let n = p.dim();
    let mut x: Vec<f64> = p.start().iter().map(|&v| f64::from(v)).collect();
    let (mut fx, mut evals) = (vec![0.0; n], 1);
    p.f64_map(&x, &mut fx);
    let mut g: Vec<f64> = fx.iter().zip(&x).map(|(f, z)| f - z).collect();
    let mut h = Inverse::default();
    let mut allowed = 2.0;
    let mut g_norm = norm(&g);
    loop {
        if !g_norm.is_finite() {
            return None;
        }
        if g_norm <= TOL * norm(&fx) {
            return Some(evals);
        }
        if evals >= MAX_EVALS {
            return None;
        }
        let step: Vec<f64> = h.apply(&g, false).iter().map(|v| -v).collect();
        let xn: Vec<f64> = x.iter().zip(&step).map(|(a, b)| a + b).collect();
        let mut fxn = vec![0.0; n];
        p.f64_map(&xn, &mut fxn);
        evals += 1;
        let gn: Vec<f64> = fxn.iter().zip(&xn).map(|(f, z)| f - z).collect();
        let gn_norm = norm(&gn);
        // Not within the growth allowed (a NaN norm is not either).
        let within = gn_norm <= allowed * g_norm;
        let rejected = guard != Guard::None && !h.u.is_empty() && !within;
        if rejected {
            allowed *= 2.0;
            if guard == Guard::RejectRestart {
                h = Inverse::default();
                continue;
            }
        }
        if gn_norm < g_norm {
            allowed = 2.0;
        }
        let dg: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        if h.u.len() == M {
            match reduction {
                Reduction::DropOldest => {
                    h.u.remove(0);
                    h.v.remove(0);
                }
                Reduction::Restart => h = Inverse::default(),
                Reduction::Brr => h.reduce_rank(M - 1),
                Reduction::BrrHalf => h.reduce_rank(M / 2),
                Reduction::DropHalf => {
                    h.u.drain(..M / 2);
                    h.v.drain(..M / 2);
                }
                Reduction::Unbounded => {}
            }
        }
        let v = h.apply(&step, true);
        let hdg = h.apply(&dg, false);
        let den = dot(&v, &dg);
        if den.is_finite() && den.abs() > 1e-12 * norm(&v) * norm(&dg) {
            h.u.push(step.iter().zip(&hdg).map(|(a, b)| (a - b) / den).collect());
            h.v.push(v);
        }
        if !rejected {
            (x, fx, g, g_norm) = (xn, fxn, gn, gn_norm);
        }
    }
}

fn main() {
    let opts = Options { max_iters: MAX_EVALS as u32, tol_rel: 1e-6, ..Options::DEFAULT };
    let problems: Vec<_> = standard_suite().into_iter().chain(hard_suite()).collect();
    let shipped: Vec<(String, String)> = problems
        .iter()
        .map(|p| {
            let s8 = broyden(p.as_ref(), M, &BroydenSettings::DEFAULT, &opts);
            let su = broyden(p.as_ref(), MAX_EVALS + 1, &BroydenSettings::DEFAULT, &opts);
            (evals(&s8.0), evals(&su.0))
        })
        .collect();
    let names = ["drop-oldest", "restart", "BRR", "BRR to M/2", "drop oldest M/2"];
    let show = |e: Option<usize>| e.map_or("–".to_string(), |e| e.to_string());
    for guard in [Guard::None, Guard::RejectRestart, Guard::RejectKeep] {
        println!(
            "\nf-evaluations to ‖g‖ ≤ {TOL:e}·‖f(z)‖, float64 Broyden prototype ({}), M = {M}, max {MAX_EVALS} \
             (–: not reached); last columns: the shipped solver, f32, default settings\n",
            match guard {
                Guard::None => "no safeguards",
                Guard::RejectRestart => "with the shipped step rejection, which restarts the history",
                Guard::RejectKeep => "with step rejection that keeps the rejected step's pair",
            }
        );
        println!(
            "| problem | drop-oldest | restart | BRR | BRR to M/2 | drop oldest M/2 | unbounded | BRR / unbounded | \
             shipped M=8 | shipped unbounded |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let (mut worst, mut fails) = ([0.0f64; 5], [0usize; 5]);
        for (p, (s8, su)) in problems.iter().zip(&shipped) {
            let p = p.as_ref();
            let runs = [
                Reduction::DropOldest,
                Reduction::Restart,
                Reduction::Brr,
                Reduction::BrrHalf,
                Reduction::DropHalf,
                Reduction::Unbounded,
            ]
            .map(|r| solve(p, r, guard));
            let unbounded = runs[5];
            for k in 0..5 {
                match (runs[k], unbounded) {
                    (Some(a), Some(b)) => worst[k] = worst[k].max(a as f64 / b as f64),
                    (None, Some(_)) => fails[k] += 1,
                    _ => {}
                }
            }
            let ratio = match (runs[2], unbounded) {
                (Some(a), Some(b)) => format!("{:.2}", a as f64 / b as f64),
                _ => "–".into(),
            };
            let cells: Vec<String> = runs.iter().map(|&r| show(r)).collect();
            println!("| {} | {} | {ratio} | {s8} | {su} |", p.name(), cells.join(" | "));
        }
        println!();
        for (k, name) in names.into_iter().enumerate() {
            println!(
                "{name}: worst ratio to unbounded {:.2}; fails where unbounded converges on {} problems",
                worst[k], fails[k]
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deq_problems::eigen::jacobi_eigenvalues;
    use deq_problems::rng::SplitMix64;

    /// `U Vᵀ` as a dense `n × n` matrix.
    fn dense(h: &Inverse, n: usize) -> Vec<Vec<f64>> {
        let mut a = vec![vec![0.0; n]; n];
        for (u, v) in h.u.iter().zip(&h.v) {
            for i in 0..n {
                for j in 0..n {
                    a[i][j] += u[i] * v[j];
                }
            }
        }
        a
    }

    fn random(n: usize, m: usize, rng: &mut SplitMix64) -> Vec<Vec<f64>> {
        (0..m).map(|_| (0..n).map(|_| rng.uniform() - 0.5).collect()).collect()
    }

    /// BRR keeps the best approximation of rank `k` (Eckart–Young): the squared Frobenius
    /// error is the sum of the dropped squared singular values of `U Vᵀ`, here computed
    /// independently from the eigenvalues of the dense `AᵀA`; at full rank `U Vᵀ` is
    /// unchanged.
    #[test]
    fn rank_reduction_is_the_truncated_svd() {
        let (n, m) = (12, 5);
        let mut rng = SplitMix64::new(7);
        for _ in 0..5 {
            let h = Inverse { u: random(n, m, &mut rng), v: random(n, m, &mut rng) };
            let a = dense(&h, n);
            let ata: Vec<f64> =
                (0..n * n).map(|ij| (0..n).map(|k| a[k][ij / n] * a[k][ij % n]).sum()).collect();
            let mut sigma2 = jacobi_eigenvalues(&ata, n);
            sigma2.sort_by(|x, y| y.total_cmp(x));
            let scale: f64 = sigma2.iter().sum();
            for k in [m, m - 1, 2] {
                let mut r = Inverse { u: h.u.clone(), v: h.v.clone() };
                r.reduce_rank(k);
                assert_eq!(r.u.len(), k);
                let b = dense(&r, n);
                let err2: f64 = (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .map(|(i, j)| (a[i][j] - b[i][j]).powi(2))
                    .sum();
                let dropped: f64 = sigma2[k..m].iter().sum();
                assert!(
                    (err2 - dropped).abs() <= 1e-9 * scale,
                    "rank {k}: error² {err2} vs dropped σ² {dropped}"
                );
            }
        }
    }
}
