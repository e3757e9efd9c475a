//! Test batches shared by the lockstep and offload tests.

use std::sync::atomic::{AtomicU32, Ordering};

use deq_problems::{FixedPointProblem, TanhLayer};
use solver_host::BatchBackend;

pub const D: usize = 48;

/// A batch of different tanh layers, one per sample, counting evaluations per sample.
pub struct Layers {
    pub layers: Vec<TanhLayer>,
    pub evals: Vec<AtomicU32>,
    /// `(sample, call)`: that sample's `call`-th evaluation returns NaN.
    pub nan_at: Option<(usize, u32)>,
}

impl Layers {
    pub fn new(samples: usize) -> Self {
        let layers =
            (0..samples).map(|b| TanhLayer::new(D, [0.5, 0.9, 0.99, 1.2][b % 4], 100 + b as u64)).collect();
        Layers { layers, evals: (0..samples).map(|_| AtomicU32::new(0)).collect(), nan_at: None }
    }

    pub fn f(&self, b: usize, x: &[f32], out: &mut [f32]) {
        self.layers[b].f(x, out)
    }
}

impl BatchBackend for Layers {
    fn samples(&self) -> usize {
        self.layers.len()
    }

    fn dim(&self) -> usize {
        D
    }

    fn eval(&self, first: usize, active: &[bool], z: &[f32], out: &mut [f32]) {
        for (k, ((&on, zb), ob)) in active.iter().zip(z.chunks(D)).zip(out.chunks_mut(D)).enumerate() {
            if on {
                let b = first + k;
                let calls = self.evals[b].fetch_add(1, Ordering::Relaxed) + 1;
                self.f(b, zb, ob);
                if self.nan_at == Some((b, calls)) {
                    ob[D / 2] = f32::NAN;
                }
            }
        }
    }
}

pub fn starts(samples: usize) -> Vec<f32> {
    (0..samples * D).map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.2).collect()
}
