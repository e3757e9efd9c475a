//! Test batches shared by the lockstep and offload tests.

use std::sync::atomic::{AtomicU32, Ordering};

use deq_problems::{FixedPointProblem, TanhLayer};
use solver_core::Report;
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

    /// `f` of sample `b` at its `call`-th evaluation (NaN where `nan_at` says so).
    pub fn f(&self, b: usize, call: u32, x: &[f32], out: &mut [f32]) {
        self.layers[b].f(x, out);
        if self.nan_at == Some((b, call)) {
            out[D / 2] = f32::NAN;
        }
    }

    /// Every sample solved alone from [`starts`] by `solve(f, z)`, with `f` that
    /// sample's map (and its NaN, if any): the reports and the final states.
    pub fn alone(
        &self,
        mut solve: impl FnMut(&mut dyn FnMut(&[f32], &mut [f32]), &mut [f32]) -> Report,
    ) -> (Vec<Report>, Vec<f32>) {
        let mut z = starts(self.layers.len());
        let reports = z
            .chunks_mut(D)
            .enumerate()
            .map(|(b, zb)| {
                let mut calls = 0;
                let mut f = |x: &[f32], o: &mut [f32]| {
                    calls += 1;
                    self.f(b, calls, x, o);
                };
                solve(&mut f, zb)
            })
            .collect();
        (reports, z)
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
                self.f(b, calls, zb, ob);
            }
        }
    }
}

pub fn starts(samples: usize) -> Vec<f32> {
    (0..samples * D).map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * 0.2).collect()
}
