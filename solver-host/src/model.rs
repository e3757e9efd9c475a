//! DEQ layer models and their files.
//!
//! A [`DeqLayer`] is the map `f(z; x) = act(W z + U x + b)` whose fixed point
//! `z* = f(z*; x)` a DEQ solve finds. It acts on the last axis of the state: a `[B, h]`
//! state is `B` rows, a `[B, L, h]` state (a sequence model) is `B·L` rows, one per
//! token, all through the same weights. Weights and data are row-major, of the float
//! type `T` of [`DeqLayer<T>`]: `f32` (the default, so `DeqLayer` is `DeqLayer<f32>`) or
//! `f64` ([`Float`]); the inputs, the state and the outputs have the layer's type.
//!
//! # Layout
//!
//! `W` is `[h, h]`, `U` is `[h, p]` and `b` is `[h]`, stored row-major exactly as
//! PyTorch's `nn.Linear` stores its `weight` (`[out_features, in_features]`):
//! `W[i·h + j]` multiplies `z_j` into output `i`. For row vectors, as in the code,
//! `f(z; x) = act(z Wᵀ + x Uᵀ + b)`. The injection `c = x Uᵀ + b` does not change
//! during a solve, so it is computed once ([`DeqLayer::injection`]) and each iteration
//! costs one product `z Wᵀ` plus the activation ([`DeqLayer::apply`]).
//!
//! # Files
//!
//! Models are [safetensors](https://huggingface.co/docs/safetensors) files holding the
//! tensors `"W"` `[h, h]`, `"U"` `[h, p]` and `"b"` `[h]`, with optional metadata
//! `"activation"` = `"tanh"` (the default) or `"relu"` ([`DeqLayer::load`],
//! [`DeqLayer::save`]). A classifier also carries its linear readout
//! `logits = R z* + c` ([`Readout`]): `"R"` `[k, h]` and `"c"` `[k]`, both or neither;
//! files without them load as before. The tensors are all F32 (a `DeqLayer<f32>`) or
//! all F64 (a `DeqLayer<f64>`); [`AnyLayer::load`] takes either and says which
//! ([`FloatType`]). Other dtypes, a file mixing F32 and F64, and a file of the other
//! type than the one asked for are rejected, not converted. From PyTorch (for an F64
//! model, `.double()` in place of `.float()`):
//!
//! ```python
//! import torch
//! from safetensors.torch import save_file
//!
//! h, p = 64, 16
//! layer = torch.nn.Linear(h, h, bias=False)  # W, weight [h, h]
//! inj = torch.nn.Linear(p, h)                # U (weight [h, p]) and b (bias [h])
//! save_file(
//!     {
//!         "W": layer.weight.detach().float().contiguous(),
//!         "U": inj.weight.detach().float().contiguous(),
//!         "b": inj.bias.detach().float().contiguous(),
//!     },
//!     "layer.safetensors",
//!     metadata={"activation": "tanh"},
//! )
//! ```
//!
//! Inputs ([`InputBatch`]) hold `"x"` `[B, p]` or `[B, L, p]` and optionally a starting
//! state `"z0"` of the state's shape, both of the model's dtype (an F32 input to an F64
//! model, or the reverse, is rejected, not converted), and labels `"label"` (I64);
//! outputs ([`write_state`], [`write_solution`]) hold `"z"`, and for a classifier its
//! `"logits"`, in the model's dtype, and `"class"` (I64). Every write
//! goes to a temporary file in the target's directory, renamed over the target once
//! complete, so a failed write leaves no partial file; a target that exists and is not
//! a regular file (a device, a FIFO) is refused rather than replaced. Loading never
//! panics: truncated or foreign files, missing tensors, tensors named twice, wrong
//! shapes or dtypes, sizes that overflow or cannot be allocated and NaN weights are
//! all reported as a [`ModelError`] whose message (one line, control characters
//! escaped) names the file. Only regular files are read, and no more of them than
//! their size: a device or a FIFO is refused before it is opened.
//! [`DeqLayer::from_bytes`] and [`InputBatch::from_bytes`] parse bytes already in
//! memory (the fuzz target `solver-host/fuzz` drives them).
//!
//! # Matrix products
//!
//! The products are the crate's own kernel (`model/product.rs`) over the weights packed
//! once, at construction, beside `W` and `U` (`Wᵀ` in panels of 128 bytes of columns):
//! each output is one chain of fused multiply-adds `s ← fma(aₜ, bₜ, s)` from `s = c`,
//! in the order of the index. AVX-512F + FMA and AVX2 + FMA builds (register tiles of
//! 12 or 6 rows × two vectors of outputs, blocks that stay in L2) are chosen at run
//! time; other CPUs run the chain as written, with `mul_add`. Tiling, blocking and
//! vector width change nothing in the arithmetic, so a row's result is bit for bit the
//! same alone or in any batch, on any thread count, on every path: a sample's `f` does
//! not depend on which other samples share its product. One generic implementation
//! serves both float types: an `f64` output is the same chain in `f64`. (faer, used
//! before, chose kernels by shape, so one row alone and the same row among others were
//! rounded differently.) Measured on the built-in model, see the README.
//!
//! # tanh
//!
//! In `f32`, [`tanh_rational`] (a rational approximation within `5·10⁻⁷`, which
//! vectorises); in `f64`, the standard library's `f64::tanh` (see [`Float`]).
//!
//! # NaN
//!
//! Both activations keep NaN: `tanh(NaN)` and `relu(NaN)` are NaN, so a NaN or an
//! `∞ − ∞` anywhere in `W z + U x + b` reaches the solver, which ends that sample with
//! status `non-finite`.
//!
//! # Example
//!
//! ```
//! use solver_host::model::{Activation, DeqLayer};
//!
//! let (h, p, rows) = (32, 8, 3);
//! let layer = DeqLayer::demo(h, p);
//! assert_eq!(layer.activation(), Activation::Tanh);
//! let x = vec![0.5f32; rows * p];
//! let mut c = vec![0.0f32; rows * h];
//! layer.injection(&x, &mut c); // c = x Uᵀ + b, once per solve
//! // Picard iteration z ← f(z; x): the demonstration layer is a contraction.
//! let mut z = vec![0.0f32; rows * h];
//! let mut next = vec![0.0f32; rows * h];
//! for _ in 0..200 {
//!     layer.apply(&z, &c, &mut next);
//!     std::mem::swap(&mut z, &mut next);
//! }
//! layer.apply(&z, &c, &mut next);
//! let residual = z.iter().zip(&next).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
//! assert!(residual < 1e-5, "{residual}");
//! ```

mod error;
pub mod export;
mod float;
mod header;
mod input;
pub mod int8;
mod io;
mod kernel;
mod product;
mod readout;

use std::fmt;
use std::str::FromStr;

use solver_core::Real;

pub use error::{ModelError, escape_controls};
pub use float::{AnyLayer, Float, FloatType};
pub use input::InputBatch;
pub use io::{solution_bytes, write_atomic, write_solution, write_state};
pub use kernel::tanh_rational;
pub use product::product_path;
pub use readout::{Predictions, Readout};

/// `max(0, x)`, NaN for NaN (`f32::max` would give 0 and hide the NaN from the solver).
pub fn relu<T: Real>(x: T) -> T {
    if x < T::ZERO { T::ZERO } else { x }
}

/// Activation of the layer, applied elementwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Hyperbolic tangent.
    Tanh,
    /// `max(0, x)`, with `relu(NaN) = NaN`.
    Relu,
}

impl Activation {
    /// The name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An activation name that is neither `tanh` nor `relu`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseActivationError(pub String);

impl fmt::Display for ParseActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown activation \"{}\", expected \"tanh\" or \"relu\"", self.0.escape_debug())
    }
}

impl std::error::Error for ParseActivationError {}

impl FromStr for Activation {
    type Err = ParseActivationError;

    /// `tanh` or `relu`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("tanh") {
            Ok(Activation::Tanh)
        } else if s.eq_ignore_ascii_case("relu") {
            Ok(Activation::Relu)
        } else {
            Err(ParseActivationError(s.to_owned()))
        }
    }
}

/// The DEQ layer `f(z; x) = act(W z + U x + b)`, applied to the last axis of the state
/// (per token for a `[B, L, h]` state), in the float type `T` (`f32`, the default, or
/// `f64`: [`Float`]). See the [module docs](self) for the layout.
#[derive(Clone, Debug)]
pub struct DeqLayer<T = f32> {
    hidden: usize,
    input: usize,
    w: Vec<T>,
    u: Vec<T>,
    b: Vec<T>,
    /// `Wᵀ` and `Uᵀ` (`[h, h]`, `[p, h]`): the layout the product kernel reads.
    wt: Vec<T>,
    ut: Vec<T>,
    act: Activation,
    readout: Option<Readout<T>>,
}

/// `a·b` (a count of values of `bytes` bytes each), or `TooLarge` naming `what`.
fn product(a: usize, b: usize, bytes: usize, what: &str) -> Result<usize, ModelError> {
    a.checked_mul(b)
        .filter(|n| n.checked_mul(bytes).is_some_and(|bytes| bytes <= isize::MAX as usize))
        .ok_or_else(|| ModelError::TooLarge { path: None, what: what.to_owned() })
}

/// Checks a weight vector's length and finiteness.
fn check_tensor<T: Real>(name: &str, data: &[T], expected: usize) -> Result<(), ModelError> {
    if data.len() != expected {
        return Err(ModelError::WrongLength { name: name.to_owned(), expected, got: data.len() });
    }
    match data.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(ModelError::NonFinite { path: None, name: name.to_owned(), index }),
        None => Ok(()),
    }
}

impl<T: Float> DeqLayer<T> {
    /// A layer of hidden width `hidden` (`h`) and input width `input` (`p`) from `W`
    /// `[h, h]`, `U` `[h, p]` and `b` `[h]`, row-major (PyTorch `nn.Linear` weight
    /// layout: `w[i·h + j]` multiplies `z_j` into output `i`).
    ///
    /// # Errors
    ///
    /// [`ModelError::Empty`] if `hidden` or `input` is zero, [`ModelError::WrongLength`]
    /// if a vector's length does not match, [`ModelError::NonFinite`] naming the tensor
    /// and the first NaN or infinite entry, [`ModelError::TooLarge`] if `h·h` overflows.
    pub fn new(
        hidden: usize,
        input: usize,
        w: Vec<T>,
        u: Vec<T>,
        b: Vec<T>,
        act: Activation,
    ) -> Result<Self, ModelError> {
        if hidden == 0 {
            return Err(ModelError::Empty { path: None, name: "W".into() });
        }
        if input == 0 {
            return Err(ModelError::Empty { path: None, name: "U".into() });
        }
        check_tensor("W", &w, product(hidden, hidden, T::BYTES, "W")?)?;
        check_tensor("U", &u, product(hidden, input, T::BYTES, "U")?)?;
        check_tensor("b", &b, hidden)?;
        let too_large = |what: &str| ModelError::TooLarge { path: None, what: what.to_owned() };
        let wt = product::pack(&w, hidden, hidden).ok_or_else(|| too_large("W"))?;
        let ut = product::pack(&u, hidden, input).ok_or_else(|| too_large("U"))?;
        Ok(DeqLayer { hidden, input, w, u, b, wt, ut, act, readout: None })
    }

    /// Hidden width `h`: the state's last axis.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Input width `p`: the input's last axis.
    pub fn input_width(&self) -> usize {
        self.input
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// The same layer with the classifier readout `logits = R z* + c` ([`Readout`]).
    ///
    /// # Errors
    ///
    /// [`ModelError::WrongLength`] naming `R` if the readout reads a state of another
    /// width than `h`.
    pub fn with_readout(self, readout: Readout<T>) -> Result<Self, ModelError> {
        if readout.hidden() != self.hidden {
            return Err(ModelError::WrongLength {
                name: "R".into(),
                expected: readout.classes() * self.hidden,
                got: readout.r().len(),
            });
        }
        Ok(DeqLayer { readout: Some(readout), ..self })
    }

    /// The classifier readout, if the model has one.
    pub fn readout(&self) -> Option<&Readout<T>> {
        self.readout.as_ref()
    }

    /// `W`, `[h, h]` row-major.
    pub fn w(&self) -> &[T] {
        &self.w
    }

    /// `U`, `[h, p]` row-major.
    pub fn u(&self) -> &[T] {
        &self.u
    }

    /// `b`, `[h]`.
    pub fn b(&self) -> &[T] {
        &self.b
    }

    /// Bytes of the weights: `T::BYTES·(h² + h·p + h)` (4 per value in `f32`, 8 in
    /// `f64`).
    pub fn weight_bytes(&self) -> usize {
        T::BYTES * (self.w.len() + self.u.len() + self.b.len())
    }

    /// `c = x Uᵀ + b` for `rows` rows: `x` is `[rows × p]`, `c` is `[rows × h]`. It does
    /// not depend on the state, so a solve computes it once. Single-threaded.
    ///
    /// # Panics
    ///
    /// If `x.len()` is not a multiple of `p` or `c.len() != rows·h`.
    pub fn injection(&self, x: &[T], c: &mut [T]) {
        let (h, p) = (self.hidden, self.input);
        assert!(x.len().is_multiple_of(p), "x has {} values, not a multiple of the input width {p}", x.len());
        let rows = x.len() / p;
        assert!(c.len() == rows * h, "c has {} values, expected {rows}×{h}", c.len());
        for row in c.chunks_exact_mut(h) {
            row.copy_from_slice(&self.b);
        }
        product::matmul_acc(x, &self.ut, c, p, h);
    }

    /// `out = act(z Wᵀ + c)` row by row: `z`, `c` and `out` are all `[rows × h]`.
    ///
    /// Allocates nothing and runs on the calling thread: the solve loop calls it every
    /// iteration, and callers parallelise over blocks of rows.
    ///
    /// # Panics
    ///
    /// If the lengths differ or are not a multiple of `h`.
    pub fn apply(&self, z: &[T], c: &[T], out: &mut [T]) {
        self.check_rows("apply", z, c, out);
        product::matmul_add(z, &self.wt, c, out, self.hidden, self.hidden);
        self.activate(out);
    }

    /// [`apply`](Self::apply) with the product's columns split into `parts` rayon
    /// tasks (each reads only its part of `W`); the same bits as `apply`. For a batch
    /// of a few rows, where one thread's product would stream all of `W` alone.
    ///
    /// # Panics
    ///
    /// As [`apply`](Self::apply).
    pub fn apply_split(&self, z: &[T], c: &[T], out: &mut [T], parts: usize) {
        self.check_rows("apply_split", z, c, out);
        product::matmul_add_par(z, &self.wt, c, out, self.hidden, self.hidden, parts);
        self.activate(out);
    }

    /// Panics, naming `what`, unless `z`, `c` and `out` are all `rows × h`.
    fn check_rows(&self, what: &str, z: &[T], c: &[T], out: &[T]) {
        let h = self.hidden;
        assert!(
            z.len() == out.len() && c.len() == out.len() && out.len().is_multiple_of(h),
            "{what}: z, c and out must all be rows × {h} (got {}, {}, {})",
            z.len(),
            c.len(),
            out.len()
        );
    }

    /// The activation, in place.
    fn activate(&self, out: &mut [T]) {
        match self.act {
            Activation::Tanh => kernel::tanh_in_place(out),
            Activation::Relu => out.iter_mut().for_each(|v| *v = relu(*v)),
        }
    }
}

impl DeqLayer {
    /// The built-in demonstration layer: deterministic (fixed seed), tanh, `W` a
    /// symmetric matrix with normal entries scaled so that its spectral norm (estimated
    /// by power iteration, from below) is 0.95, which makes `f` a contraction in `z`
    /// whose Jacobian has eigenvalues close to 1, as trained DEQ layers often do: plain
    /// iteration needs many steps, quasi-Newton methods few. `U` has entries of standard
    /// deviation `1/√p`, `b` of 0.1.
    ///
    /// # Panics
    ///
    /// If `hidden` or `input` is zero or the weights would not fit in memory.
    pub fn demo(hidden: usize, input: usize) -> Self {
        assert!(hidden > 0 && input > 0, "the demonstration layer needs h ≥ 1 and p ≥ 1");
        let mut rng = kernel::Normal::new(0x5EED_0DE0_1A7E);
        let g: Vec<f32> = (0..hidden * hidden).map(|_| rng.sample() as f32).collect();
        let mut w: Vec<f32> =
            (0..hidden * hidden).map(|k| 0.5 * (g[k] + g[(k % hidden) * hidden + k / hidden])).collect();
        let norm = kernel::spectral_norm(&w, hidden);
        let scale = if norm > 0.0 { (0.95 / norm) as f32 } else { 0.0 };
        w.iter_mut().for_each(|v| *v *= scale);
        let su = 1.0 / (input as f64).sqrt();
        let u = (0..hidden * input).map(|_| (rng.sample() * su) as f32).collect();
        let b = (0..hidden).map(|_| (rng.sample() * 0.1) as f32).collect();
        DeqLayer::new(hidden, input, w, u, b, Activation::Tanh).expect("finite demonstration weights")
    }
}
