//! The measurement behind Broyden's defaults: f-evaluations to `tol_rel = 1e-6` (f32)
//! with M = 8 pairs under each history policy and safeguard, against the default with
//! unbounded history, on the standard suite plus a ring map whose Jacobian is a scaled
//! cyclic shift (eigenvalues spread round a circle of radius 0.995), then the hard suite
//! (`deq_problems::hard_suite`: non-saturating tanh layers, rotation maps).
//!
//! ```text
//! cargo run --release -p deq-benches --bin policy_table
//! ```

use deq_benches::{broyden, error, evals};
use deq_problems::{FixedPointProblem, hard_suite, standard_suite};
use solver_core::{BroydenSettings, History, Options};

const MAX_ITERS: u32 = 2000;

/// `f(z)ᵢ = tanh(0.995·z_{i+1} + cᵢ)`, d = 32: slow for plain iteration, and hard for
/// a short history because its Jacobian is far from normal.
struct Ring {
    reference: Vec<f64>,
}

impl Ring {
    const D: usize = 32;

    fn new() -> Self {
        let mut ring = Ring { reference: vec![0.0; Self::D] };
        ring.reference = deq_problems::newton_reference(&ring, &vec![0.0; Self::D]);
        ring
    }

    fn c(i: usize) -> f64 {
        0.05 * (i as f64 - 16.0) / 16.0
    }
}

impl FixedPointProblem for Ring {
    fn name(&self) -> String {
        "ring d=32 (cyclic shift, 0.995)".into()
    }
    fn dim(&self) -> usize {
        Self::D
    }
    fn start(&self) -> Vec<f32> {
        vec![0.0; Self::D]
    }
    fn f(&self, z: &[f32], out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0.995 * z[(i + 1) % Self::D] + Self::c(i) as f32).tanh();
        }
    }
    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0.995 * z[(i + 1) % Self::D] + Self::c(i)).tanh() - z[i];
        }
    }
    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        jac.fill(0.0);
        for i in 0..Self::D {
            let j = (i + 1) % Self::D;
            let t = (0.995 * z[j] + Self::c(i)).tanh();
            jac[i * Self::D + j] += 0.995 * (1.0 - t * t);
            jac[i * Self::D + i] -= 1.0;
        }
    }
    fn reference(&self) -> &[f64] {
        &self.reference
    }
}

fn main() {
    let stall: u32 =
        std::env::args().nth(1).map_or(Options::<f32>::DEFAULT.stall_iters, |a| a.parse().expect("stall"));
    let opts = Options { max_iters: MAX_ITERS, tol_rel: 1e-6, stall_iters: stall, ..Options::DEFAULT };
    let d = BroydenSettings::DEFAULT;
    let variants: [(&str, usize, BroydenSettings); 6] = [
        ("default (drop-oldest, reject ×2)", 8, d),
        ("restart", 8, BroydenSettings { history: History::Restart, ..d }),
        ("drop-oldest, no rejection", 8, BroydenSettings { reject_growth: f32::INFINITY, ..d }),
        (
            "restart, no rejection",
            8,
            BroydenSettings { history: History::Restart, reject_growth: f32::INFINITY, ..d },
        ),
        ("Armijo line search", 8, BroydenSettings { line_search: true, ..d }),
        ("default, unbounded", MAX_ITERS as usize + 1, d),
    ];
    println!(
        "Broyden f-evaluations to tol_rel = 1e-6 (f32), M = 8 unless unbounded; max_iters = {MAX_ITERS}\n"
    );
    let header: Vec<&str> = variants.iter().map(|v| v.0).collect();
    println!("| problem | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(variants.len()));
    let mut problems = standard_suite();
    problems.push(Box::new(Ring::new()));
    problems.extend(hard_suite());
    for p in &problems {
        let p = p.as_ref();
        let cells: Vec<String> = variants
            .iter()
            .map(|(_, m, s)| {
                let (r, z) = broyden(p, *m, s, &opts);
                let err = p.rel_error(&z);
                let far = if err > 1e-3 { format!(" ({})", error(p, &z)) } else { String::new() };
                format!("{}{far}", evals(&r))
            })
            .collect();
        println!("| {} | {} |", p.name(), cells.join(" | "));
    }
}
