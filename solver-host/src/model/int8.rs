//! Int8 weights with one scale per row, for firmware whose flash is small.
//!
//! A row `a_i` of a weight matrix is stored as `q_i = round(a_i / s_i)` in `i8`, with
//! `s_i = max_j |a_ij| / 127`, so every entry is within `s_i / 2` of its float value and
//! the row's largest entry is exact up to rounding. The firmware computes a row's product
//! as `s_i · Σ_j q_ij z_j` (one scale multiply per row, the sum in f32, each `q` turned
//! into an f32 by a table lookup; see [`export`](super::export)): the weights take about
//! a quarter of the flash, the arithmetic stays f32, and the solver does not change.
//!
//! The model the int8 firmware evaluates is the float layer whose weights are `q_ij·s_i`
//! ([`Int8Layer::dequantized`]): the host solves that one to know what the firmware
//! should predict.
//!
//! ```
//! use solver_host::model::int8::Int8Matrix;
//!
//! let a = [0.5f32, -1.0, 0.25, /* row 2 */ 0.0, 0.0, 0.0];
//! let q = Int8Matrix::quantize(&a, 2, 3);
//! assert_eq!(q.q(), &[64, -127, 32, 0, 0, 0]);
//! assert_eq!(q.scale(), &[1.0 / 127.0, 0.0]);
//! let back = q.dequantized();
//! assert!(a.iter().zip(&back).all(|(x, y)| (x - y).abs() <= 0.5 / 127.0));
//! ```

use super::{DeqLayer, ModelError, Readout};

/// A `[rows, cols]` matrix as `i8` entries with one `f32` scale per row: entry `(i, j)`
/// stands for `q[i·cols + j] · scale[i]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Matrix {
    rows: usize,
    cols: usize,
    q: Vec<i8>,
    scale: Vec<f32>,
}

impl Int8Matrix {
    /// Quantises the row-major `[rows, cols]` matrix `a` (finite values): scale
    /// `max |a_ij| / 127` per row (0 for a zero row), entries rounded to nearest.
    ///
    /// # Panics
    ///
    /// If `a.len() != rows·cols`.
    pub fn quantize(a: &[f32], rows: usize, cols: usize) -> Self {
        assert_eq!(a.len(), rows * cols, "a is not {rows}×{cols}");
        let mut q = Vec::with_capacity(a.len());
        let mut scale = Vec::with_capacity(rows);
        for row in a.chunks_exact(cols.max(1)).take(rows) {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let s = max / 127.0;
            scale.push(s);
            // |v / s| ≤ 127 by construction; the clamp only guards rounding at the edge.
            q.extend(
                row.iter().map(|v| if s > 0.0 { (v / s).round().clamp(-127.0, 127.0) as i8 } else { 0 }),
            );
        }
        Int8Matrix { rows, cols, q, scale }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The entries, row-major.
    pub fn q(&self) -> &[i8] {
        &self.q
    }

    /// One scale per row.
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }

    /// The float matrix it stands for: `q_ij · s_i`, row-major.
    pub fn dequantized(&self) -> Vec<f32> {
        self.q
            .chunks_exact(self.cols.max(1))
            .zip(&self.scale)
            .flat_map(|(r, &s)| r.iter().map(move |&v| f32::from(v) * s))
            .collect()
    }

    /// Bytes in flash: one per entry plus four per scale.
    pub fn bytes(&self) -> usize {
        self.q.len() + 4 * self.scale.len()
    }
}

/// A layer's matrices in int8 ([`Int8Matrix`]): `W`, `U` and the readout's `R`; the
/// biases `b` and `c` stay f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Layer {
    /// `W`, `[h, h]`.
    pub w: Int8Matrix,
    /// `U`, `[h, p]`.
    pub u: Int8Matrix,
    /// `R`, `[k, h]`, if the model has a readout.
    pub r: Option<Int8Matrix>,
}

impl Int8Layer {
    /// Quantises the matrices of `layer`.
    pub fn quantize(layer: &DeqLayer) -> Self {
        let (h, p) = (layer.hidden(), layer.input_width());
        Int8Layer {
            w: Int8Matrix::quantize(layer.w(), h, h),
            u: Int8Matrix::quantize(layer.u(), h, p),
            r: layer.readout().map(|r| Int8Matrix::quantize(r.r(), r.classes(), h)),
        }
    }

    /// The float layer these weights stand for (biases and activation from `layer`):
    /// what the int8 firmware evaluates, up to the rounding of its sums.
    ///
    /// # Errors
    ///
    /// A [`ModelError`] if `layer` is not the layer these weights were quantised from.
    pub fn dequantized(&self, layer: &DeqLayer) -> Result<DeqLayer, ModelError> {
        let (h, p) = (layer.hidden(), layer.input_width());
        let dq = DeqLayer::new(
            h,
            p,
            self.w.dequantized(),
            self.u.dequantized(),
            layer.b().to_vec(),
            layer.activation(),
        )?;
        match (layer.readout(), &self.r) {
            (Some(r), Some(q)) => {
                dq.with_readout(Readout::new(r.classes(), h, q.dequantized(), r.c().to_vec())?)
            }
            _ => Ok(dq),
        }
    }

    /// Bytes of all weights in flash: the int8 matrices with their scales, and the f32
    /// biases `b` (and `c`).
    pub fn bytes(&self, layer: &DeqLayer) -> usize {
        self.w.bytes()
            + self.u.bytes()
            + 4 * layer.hidden()
            + self.r.as_ref().map_or(0, |r| r.bytes() + 4 * r.rows())
    }
}
