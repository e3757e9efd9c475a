//! The CPU backend of the lockstep solver for a [`DeqLayer`]: `f` of every running
//! sample through the layer's matrix product, in parallel over blocks of rows.
//!
//! A sample's state is `[L, h]` (`L = 1` for a `[B, h]` state), so the batch is
//! `B·L` rows of width `h`, and `f` of the batch is one product `Z Wᵀ` (plus the
//! injection and the activation). The samples are cut into groups holding about the
//! same number of running samples, two groups per thread of the current rayon pool;
//! within a group, each run of consecutive running samples is one product, and the
//! rows of stopped samples are skipped, so a stopped sample costs nothing.

use rayon::prelude::*;

use crate::BatchBackend;
use crate::model::{DeqLayer, ModelError};

/// Most row groups one evaluation is cut into.
const MAX_GROUPS: usize = 64;

/// [`BatchBackend`] for a [`DeqLayer`] and a batch of inputs. Holds the injection
/// `c = x Uᵀ + b` of every token, computed once.
pub struct LayerBackend<'l> {
    layer: &'l DeqLayer,
    c: Vec<f32>,
    samples: usize,
    tokens: usize,
}

impl<'l> LayerBackend<'l> {
    /// The backend for `samples` samples of `tokens` tokens each, with inputs `x`
    /// (`[samples × tokens × p]`, row-major).
    pub fn new(layer: &'l DeqLayer, x: &[f32], samples: usize, tokens: usize) -> Result<Self, ModelError> {
        let (h, p) = (layer.hidden(), layer.input_width());
        let rows = samples.checked_mul(tokens).filter(|&r| r > 0).ok_or(ModelError::TooLarge {
            path: None,
            what: format!("a batch of {samples} samples of {tokens} tokens"),
        })?;
        let expected = rows.saturating_mul(p);
        if x.len() != expected {
            return Err(ModelError::WrongLength { name: "x".into(), expected, got: x.len() });
        }
        let len = rows.checked_mul(h).ok_or(ModelError::TooLarge { path: None, what: "the state".into() })?;
        let mut c = vec![0.0f32; len];
        let block = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
        c.par_chunks_mut(block * h).zip(x.par_chunks(block * p)).for_each(|(cb, xb)| layer.injection(xb, cb));
        Ok(LayerBackend { layer, c, samples, tokens })
    }

    /// Bytes held (the injection, `[B × L × h]` floats).
    pub fn memory_bytes(&self) -> usize {
        4 * self.c.len()
    }
}

impl BatchBackend for LayerBackend<'_> {
    fn samples(&self) -> usize {
        self.samples
    }

    fn dim(&self) -> usize {
        self.tokens * self.layer.hidden()
    }

    fn eval(&mut self, active: &[bool], z: &[f32], out: &mut [f32]) {
        let (layer, c) = (self.layer, &self.c);
        let d = self.tokens * layer.hidden();
        // Groups of consecutive samples holding about the same number of running
        // samples, two per thread: the work is balanced however the running samples
        // are spread. Boundaries live on the stack (no allocation per round).
        let running = active.iter().filter(|&&a| a).count();
        let groups = (2 * rayon::current_num_threads()).min(running).clamp(1, MAX_GROUPS);
        let per = running.div_ceil(groups).max(1);
        let mut parts: [Option<(usize, &mut [f32])>; MAX_GROUPS] = [const { None }; MAX_GROUPS];
        let (mut rest, mut first, mut count, mut n) = (out, 0usize, 0usize, 0usize);
        for (b, &on) in active.iter().enumerate() {
            count += usize::from(on);
            let last = b + 1 == active.len();
            if (count == per || last) && n < MAX_GROUPS {
                let take = ((b + 1 - first) * d).min(rest.len());
                let (head, tail) = core::mem::take(&mut rest).split_at_mut(take);
                parts[n] = Some((first, head));
                rest = tail;
                (first, count, n) = (b + 1, 0, n + 1);
            }
        }
        parts[..n].par_iter_mut().for_each(|part| {
            let Some((first, ob)) = part else { return };
            let first = *first;
            // Runs of consecutive running samples within the group: one product each.
            let samples = ob.len() / d.max(1);
            let mut s = 0;
            while s < samples {
                if !active.get(first + s).copied().unwrap_or(false) {
                    s += 1;
                    continue;
                }
                let mut e = s + 1;
                while e < samples && active.get(first + e).copied().unwrap_or(false) {
                    e += 1;
                }
                let (lo, hi) = ((first + s) * d, (first + e) * d);
                if let (Some(zr), Some(cr), Some(or)) =
                    (z.get(lo..hi), c.get(lo..hi), ob.get_mut(s * d..e * d))
                {
                    layer.apply(zr, cr, or);
                }
                s = e;
            }
        });
    }
}
