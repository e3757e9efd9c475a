//! [`Readout`]: the optional linear classifier head `logits = R z* + c` of a model.
//!
//! A DEQ classifier is the layer's fixed point `z*` followed by a linear map to one
//! score per class; the predicted class is the index of the largest score. A model file
//! carries the readout as the tensors `"R"` `[k, h]` (PyTorch's `nn.Linear(h, k)`
//! `weight`) and `"c"` `[k]` (its `bias`), both or neither, of the model's dtype (F32 or
//! F64: `Readout<T>`, `f32` by default).
//!
//! The products are plain loops with one fixed order of summation (`c_i` first, then
//! `R_i0 z_0`, `R_i1 z_1`, …): the readout costs `k·h` multiply-adds per sample, nothing
//! next to the solve, and the same order is what the exported firmware module computes.
//!
//! ```
//! use solver_host::model::Readout;
//!
//! // Two classes over h = 3: class 1 scores z_1, class 0 scores z_0 + 0.5.
//! let readout = Readout::new(2, 3, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0], vec![0.5, 0.0]).unwrap();
//! let z = [0.1f32, 0.9, 0.0, /* second sample */ 0.4, 0.2, 0.0];
//! let mut logits = [0.0f32; 4];
//! readout.logits(&z, &mut logits);
//! assert_eq!(logits, [0.6, 0.9, 0.9, 0.2]);
//! assert_eq!(Readout::class(&logits[..2]), Some(1));
//! assert_eq!(Readout::class(&logits[2..]), Some(0));
//! assert!((Readout::margin(&logits[..2]) - 0.3).abs() < 1e-6);
//! ```

use super::{Float, ModelError};

/// The linear readout `logits = R z + c`: `R` is `[k, h]` row-major (`R[i·h + j]`
/// multiplies `z_j` into the score of class `i`), `c` is `[k]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Readout<T = f32> {
    classes: usize,
    hidden: usize,
    r: Vec<T>,
    c: Vec<T>,
}

impl<T: Float> Readout<T> {
    /// The readout of `classes` (`k`) scores over a state of width `hidden` (`h`).
    ///
    /// # Errors
    ///
    /// [`ModelError::Empty`] if `classes` or `hidden` is zero,
    /// [`ModelError::WrongLength`] if `r` is not `k·h` long or `c` not `k`,
    /// [`ModelError::NonFinite`] naming the tensor and its first NaN or infinity,
    /// [`ModelError::TooLarge`] if `k·h` overflows.
    pub fn new(classes: usize, hidden: usize, r: Vec<T>, c: Vec<T>) -> Result<Self, ModelError> {
        if classes == 0 || hidden == 0 {
            return Err(ModelError::Empty { path: None, name: "R".into() });
        }
        super::check_tensor("R", &r, super::product(classes, hidden, T::BYTES, "R")?)?;
        super::check_tensor("c", &c, classes)?;
        Ok(Readout { classes, hidden, r, c })
    }

    /// Number of classes `k`: the scores per sample.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Width `h` of the state it reads.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// `R`, `[k, h]` row-major.
    pub fn r(&self) -> &[T] {
        &self.r
    }

    /// `c`, `[k]`.
    pub fn c(&self) -> &[T] {
        &self.c
    }

    /// Bytes of the weights: `T::BYTES·(k·h + k)`.
    pub fn weight_bytes(&self) -> usize {
        T::BYTES * (self.r.len() + self.c.len())
    }

    /// `logits = z Rᵀ + c` row by row: `z` is `[rows × h]`, `logits` `[rows × k]`.
    ///
    /// # Panics
    ///
    /// If `z.len()` is not a multiple of `h` or `logits.len()` is not `rows·k`.
    pub fn logits(&self, z: &[T], logits: &mut [T]) {
        let (h, k) = (self.hidden, self.classes);
        assert!(z.len().is_multiple_of(h), "z has {} values, not a multiple of h = {h}", z.len());
        let rows = z.len() / h;
        assert!(logits.len() == rows * k, "logits has {} values, expected {rows}×{k}", logits.len());
        for (zr, out) in z.chunks_exact(h).zip(logits.chunks_exact_mut(k)) {
            for ((o, row), ci) in out.iter_mut().zip(self.r.chunks_exact(h)).zip(&self.c) {
                *o = row.iter().zip(zr).fold(*ci, |s, (&w, &zj)| s + w * zj);
            }
        }
    }

    /// The scores and classes of every row of `z` (`[rows × h]`).
    ///
    /// # Panics
    ///
    /// If `z.len()` is not a multiple of `h`.
    pub fn predict(&self, z: &[T]) -> Predictions<T> {
        let rows = z.len() / self.hidden;
        let mut logits = vec![T::ZERO; rows * self.classes];
        self.logits(z, &mut logits);
        let class =
            logits.chunks_exact(self.classes).map(|l| Readout::class(l).map_or(-1, |c| c as i64)).collect();
        Predictions { classes: self.classes, logits, class }
    }

    /// The predicted class: the index of the largest score (the first one on a tie), or
    /// `None` if a score is NaN (a sample whose solve did not end finite):
    /// [`solver_core::scores::argmax`], the rule exported modules and firmware call.
    pub fn class(logits: &[T]) -> Option<usize> {
        solver_core::scores::argmax(logits)
    }

    /// How decided the prediction is: the largest score minus the second largest (0 on a
    /// tie, NaN if a score is NaN, +∞ for a single score):
    /// [`solver_core::scores::margin`].
    pub fn margin(logits: &[T]) -> T {
        solver_core::scores::margin(logits)
    }
}

/// A classifier's output for a batch ([`Readout::predict`]): what `deq solve` writes
/// beside the fixed points ([`write_solution`](super::write_solution)).
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions<T = f32> {
    /// Classes `k`: scores per row.
    pub classes: usize,
    /// The scores, `[rows × k]`, in the model's float type.
    pub logits: Vec<T>,
    /// The predicted class of each row ([`Readout::class`]), −1 where a score is NaN.
    pub class: Vec<i64>,
}

impl<T> Predictions<T> {
    /// The number of rows whose class equals the label (`labels` has one per row).
    pub fn correct(&self, labels: &[i64]) -> usize {
        self.class.iter().zip(labels).filter(|(c, l)| c == l).count()
    }

    /// The fraction of rows whose class equals the label ([`correct`](Self::correct)
    /// over the rows).
    pub fn accuracy(&self, labels: &[i64]) -> f64 {
        self.correct(labels) as f64 / self.class.len().max(1) as f64
    }
}
