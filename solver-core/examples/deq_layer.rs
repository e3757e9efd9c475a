//! Solves one DEQ layer `z = tanh(W z + c)` (d = 64) with each solver and prints what
//! each report says, with the solver's memory.
//!
//! ```text
//! cargo run --release -p solver-core --example deq_layer
//! ```

use solver_core::{Anderson, Broyden, Options, Picard, Report};

const D: usize = 64;

/// A deterministic layer: `W` a symmetric band (norm at most 0.92) and an
/// injection `c` standing in for `U x + b`.
struct Layer {
    w: [[f32; D]; D],
    c: [f32; D],
}

impl Layer {
    fn new() -> Self {
        let mut w = [[0.0f32; D]; D];
        let mut c = [0.0f32; D];
        for (i, (row, ci)) in w.iter_mut().zip(c.iter_mut()).enumerate() {
            for (j, wij) in row.iter_mut().enumerate() {
                let k = i.abs_diff(j);
                if k <= 3 {
                    // Row sums of |W| are at most 0.3 + 2·(0.18 + 0.09 + 0.04) = 0.92, so ‖W‖ ≤ 0.92.
                    *wij = [0.3, -0.18, 0.09, -0.04][k] * if (i + j) % 2 == 0 { 1.0 } else { 0.9 };
                }
            }
            *ci = libm::sinf(0.37 * i as f32);
        }
        Layer { w, c }
    }

    fn apply(&self, z: &[f32; D], out: &mut [f32; D]) {
        for ((o, row), ci) in out.iter_mut().zip(&self.w).zip(&self.c) {
            let s: f32 = row.iter().zip(z).map(|(a, b)| a * b).sum();
            *o = solver_core::math::tanh(s + ci);
        }
    }
}

fn show(name: &str, footprint: usize, r: &Report) {
    println!(
        "{name:<16} {:>14} {:>6} iterations {:>4} f-evals  residual {:.2e} (rel {:.2e})  memory {footprint} B",
        r.status.to_string(),
        r.iterations,
        r.f_evals,
        r.residual_abs,
        r.residual_rel,
    );
}

fn main() {
    let layer = Layer::new();
    let f = |z: &[f32; D], out: &mut [f32; D]| layer.apply(z, out);
    let opts = Options { max_iters: 200, tol_rel: 1e-6, ..Options::default() };

    let mut z = [0.0f32; D];
    let r = Broyden::<D, 8>::new().solve(f, &mut z, &opts);
    show("Broyden<64, 8>", Broyden::<D, 8>::FOOTPRINT, &r);

    let mut z = [0.0f32; D];
    let r = Anderson::<D, 5>::new().solve(f, &mut z, &opts);
    show("Anderson<64, 5>", Anderson::<D, 5>::FOOTPRINT, &r);

    let mut z = [0.0f32; D];
    let r = Picard::<D>::new().solve(f, &mut z, &opts);
    show("Picard<64>", Picard::<D>::FOOTPRINT, &r);
}
