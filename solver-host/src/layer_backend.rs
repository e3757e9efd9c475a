//! The CPU backend of the lockstep solver for a [`DeqLayer`]: `f` of every running
//! sample through the layer's matrix product, in parallel over blocks of rows.
//!
//! A sample's state is `[L, h]` (`L = 1` for a `[B, h]` state), so the batch is
//! `B·L` rows of width `h`, and `f` of the batch is one product `Z Wᵀ` (plus the
//! injection and the activation). The lockstep solver hands it groups of consecutive
//! samples, concurrently; within a group, each run of consecutive running samples is one
//! product, and the rows of stopped samples are skipped, so a stopped sample costs
//! nothing.

use rayon::prelude::*;

use crate::BatchBackend;
use crate::model::{DeqLayer, Float, ModelError};

/// [`BatchBackend`] for a [`DeqLayer`] and a batch of inputs, in the layer's float type
/// `T` (`f32` by default, or `f64`). Holds the injection `c = x Uᵀ + b` of every token,
/// computed once.
pub struct LayerBackend<'l, T = f32> {
    layer: &'l DeqLayer<T>,
    c: Vec<T>,
    samples: usize,
    tokens: usize,
}

impl<'l, T: Float> LayerBackend<'l, T> {
    /// The backend for `samples` samples of `tokens` tokens each, with inputs `x`
    /// (`[samples × tokens × p]`, row-major).
    ///
    /// # Errors
    ///
    /// [`ModelError::Empty`] for no samples or no tokens, [`ModelError::WrongLength`] if
    /// `x` is not `samples·tokens·p` long, [`ModelError::TooLarge`] if the injection
    /// cannot be allocated.
    pub fn new(layer: &'l DeqLayer<T>, x: &[T], samples: usize, tokens: usize) -> Result<Self, ModelError> {
        let (h, p) = (layer.hidden(), layer.input_width());
        if samples == 0 || tokens == 0 {
            return Err(ModelError::Empty { path: None, name: "x".into() });
        }
        let rows = samples.checked_mul(tokens).ok_or(ModelError::TooLarge {
            path: None,
            what: format!("a batch of {samples} samples of {tokens} tokens"),
        })?;
        let expected = rows.saturating_mul(p);
        if x.len() != expected {
            return Err(ModelError::WrongLength { name: "x".into(), expected, got: x.len() });
        }
        let len = rows.checked_mul(h).ok_or(ModelError::TooLarge { path: None, what: "the state".into() })?;
        let mut c = Vec::new();
        c.try_reserve_exact(len)
            .map_err(|_| ModelError::TooLarge { path: None, what: "the state".into() })?;
        c.resize(len, T::ZERO);
        let block = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
        c.par_chunks_mut(block * h).zip(x.par_chunks(block * p)).for_each(|(cb, xb)| layer.injection(xb, cb));
        Ok(LayerBackend { layer, c, samples, tokens })
    }

    /// Bytes held (the injection, `[B × L × h]` floats of `T`).
    pub fn memory_bytes(&self) -> usize {
        T::BYTES * self.c.len()
    }
}

impl<T: Float> BatchBackend<T> for LayerBackend<'_, T> {
    fn samples(&self) -> usize {
        self.samples
    }

    fn dim(&self) -> usize {
        self.tokens * self.layer.hidden()
    }

    fn eval(&self, first: usize, active: &[bool], z: &[T], out: &mut [T]) {
        let d = self.tokens * self.layer.hidden();
        // Runs of consecutive running samples: one product each.
        let mut s = 0;
        while s < active.len() {
            if !active[s] {
                s += 1;
                continue;
            }
            let mut e = s + 1;
            while e < active.len() && active[e] {
                e += 1;
            }
            let (lo, hi) = (s * d, e * d);
            let c = self.c.get((first + s) * d..(first + e) * d);
            if let (Some(zr), Some(cr), Some(or)) = (z.get(lo..hi), c, out.get_mut(lo..hi)) {
                self.layer.apply(zr, cr, or);
            }
            s = e;
        }
    }
}
