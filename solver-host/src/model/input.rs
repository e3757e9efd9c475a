//! [`InputBatch`]: a batch of inputs (and optional starting states and labels) read
//! from, or written to, a safetensors file.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::error::ShapeFmt;
use super::io::{
    check_values, checked_len, float_tensor, i64_tensor, parse, read, required, serialize, tensor,
    write_atomic, wrong_shape,
};
use super::{DeqLayer, Float, ModelError};

/// A batch of inputs read from a safetensors file: tensor `"x"` `[B, p]` or `[B, L, p]`
/// of the model's dtype (F32 for `InputBatch<f32>`, F64 for `InputBatch<f64>`),
/// optionally `"z0"`, the starting state, of the state's shape `[B, h]` or `[B, L, h]`
/// and the same dtype, and optionally `"label"` (I64, `[B]` or `[B, L]`: a class per
/// row), which a classifier's predictions are scored against.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBatch<T = f32> {
    /// Shape of `x`: `[B, p]` or `[B, L, p]`.
    pub shape: Vec<usize>,
    /// The inputs, row-major.
    pub x: Vec<T>,
    /// The starting state, row-major, of shape [`state_shape`](Self::state_shape).
    pub z0: Option<Vec<T>>,
    /// The true class of each row (`B·L` of them), if the file has labels.
    pub labels: Option<Vec<i64>>,
}

impl<T: Float> InputBatch<T> {
    /// Reads a batch for `layer`.
    ///
    /// # Errors
    ///
    /// A [`ModelError`] naming the file: unreadable or not safetensors, `"x"` missing,
    /// not of the layer's dtype ([`ModelError::MixedDtype`]: rejected, not converted),
    /// not of rank 2 or 3, empty, its last axis not the layer's input width
    /// ([`ModelError::InputWidth`]), `"z0"` not of the state's shape or dtype,
    /// non-finite values, `"label"` not I64 or not of shape `[B]` (`[B, L]`).
    pub fn load(path: &Path, layer: &DeqLayer<T>) -> Result<Self, ModelError> {
        Self::from_bytes(path, &read(path)?, layer)
    }

    /// [`load`](Self::load) from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but for reading.
    pub fn from_bytes(path: &Path, file: &[u8], layer: &DeqLayer<T>) -> Result<Self, ModelError> {
        let st = parse(path, file)?;
        let (shape, x) = required::<T>(path, &st, "x", "the model")?;
        let p = layer.input_width();
        if !(2..=3).contains(&shape.len()) {
            return Err(wrong_shape(path, "x", format!("[B, {p}] or [B, L, {p}]"), shape));
        }
        check_values(path, "x", &shape, &x)?;
        let width = shape[shape.len() - 1];
        if width != p {
            return Err(ModelError::InputWidth { path: path.to_path_buf(), got: width, expected: p });
        }
        let batch = InputBatch { shape, x, z0: None, labels: None };
        let z0 = match tensor::<T>(path, &st, "z0", "the model")? {
            None => None,
            Some((z_shape, z0)) => {
                let state = batch.state_shape(layer.hidden());
                if z_shape != state {
                    return Err(wrong_shape(path, "z0", ShapeFmt(&state).to_string(), z_shape));
                }
                check_values(path, "z0", &z_shape, &z0)?;
                Some(z0)
            }
        };
        let labels = labels(path, &st, &batch.shape[..batch.shape.len() - 1])?;
        Ok(InputBatch { z0, labels, ..batch })
    }
}

impl InputBatch {
    /// The built-in demonstration input (`deq`'s default problem, `deq demo`): `x` of
    /// `samples × tokens × p` deterministic values in `[−1, 1)` (shape `[B, p]` when
    /// `tokens == 1`), no `z0`.
    pub fn demo(samples: usize, tokens: usize, p: usize) -> Self {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let x = (0..samples * tokens * p)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect();
        let shape = if tokens == 1 { vec![samples, p] } else { vec![samples, tokens, p] };
        InputBatch { shape, x, z0: None, labels: None }
    }
}

impl<T: Float> InputBatch<T> {
    /// `B`, the number of independent samples.
    pub fn samples(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// `L`, tokens per sample: 1 for a `[B, p]` input.
    pub fn tokens(&self) -> usize {
        if self.shape.len() == 3 { self.shape[1] } else { 1 }
    }

    /// The state's shape for hidden width `h`: `x`'s shape with the last axis `h`.
    pub fn state_shape(&self, h: usize) -> Vec<usize> {
        let mut s = self.shape.clone();
        if let Some(last) = s.last_mut() {
            *last = h;
        }
        s
    }

    /// Writes the batch (`"x"`, and `"z0"` and `"label"` if present) as a safetensors file,
    /// atomically. `z0`'s hidden width is its length divided by `B·L`.
    ///
    /// # Errors
    ///
    /// [`ModelError::WrongLength`] if `x` does not match `shape` or `z0` is not a
    /// positive multiple of `B·L` long or the labels are not `B·L`, [`ModelError::Io`] if
    /// the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        write_atomic(path, &self.to_bytes(path)?)
    }

    /// The bytes [`save`](Self::save) writes; `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// As [`save`](Self::save), but for writing.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, ModelError> {
        if self.shape.is_empty() || self.shape.contains(&0) {
            return Err(ModelError::Empty { path: Some(path.to_path_buf()), name: "x".into() });
        }
        let expected = checked_len(&self.shape)
            .ok_or_else(|| ModelError::TooLarge { path: Some(path.to_path_buf()), what: "x".into() })?;
        if self.x.len() != expected {
            return Err(ModelError::WrongLength { name: "x".into(), expected, got: self.x.len() });
        }
        let rows = self.samples() * self.tokens();
        let mut tensors = vec![float_tensor("x", &self.shape, &self.x)];
        let state;
        if let Some(z0) = &self.z0 {
            if rows == 0 || z0.is_empty() || !z0.len().is_multiple_of(rows) {
                let expected = rows * z0.len().div_ceil(rows.max(1)).max(1);
                return Err(ModelError::WrongLength { name: "z0".into(), expected, got: z0.len() });
            }
            state = self.state_shape(z0.len() / rows);
            tensors.push(float_tensor("z0", &state, z0));
        }
        let rows_shape = &self.shape[..self.shape.len().saturating_sub(1)];
        if let Some(labels) = &self.labels {
            if labels.len() != rows {
                return Err(ModelError::WrongLength {
                    name: "label".into(),
                    expected: rows,
                    got: labels.len(),
                });
            }
            tensors.push(i64_tensor("label", rows_shape, labels));
        }
        serialize(path, tensors, None)
    }
}

/// `"label"`: I64 of shape `rows_shape`, if present.
fn labels(path: &Path, st: &SafeTensors<'_>, rows_shape: &[usize]) -> Result<Option<Vec<i64>>, ModelError> {
    let Ok(view) = st.tensor("label") else { return Ok(None) };
    if view.dtype() != Dtype::I64 {
        return Err(ModelError::WrongDtype {
            path: path.to_path_buf(),
            name: "label".into(),
            dtype: format!("{:?}", view.dtype()),
            expected: "I64 (labels are class indices)".into(),
        });
    }
    if view.shape() != rows_shape {
        return Err(wrong_shape(path, "label", ShapeFmt(rows_shape).to_string(), view.shape().to_vec()));
    }
    let le = |c: &[u8]| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    Ok(Some(view.data().chunks_exact(8).map(le).collect()))
}
