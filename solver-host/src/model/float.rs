//! The float types a layer runs in ([`Float`]: `f32` and `f64`), the dtype of a model
//! file ([`FloatType`]), and a layer of either type loaded from a file ([`AnyLayer`]).

use std::fmt;
use std::path::Path;

use solver_core::Real;

use super::{DeqLayer, ModelError};

/// The float type of a layer, its files and its solve: `f32` or `f64`. Sealed; what
/// [`Real`] provides plus the activation's `tanh` and the file dtype.
///
/// The layer's arithmetic is the same chain of IEEE operations in either type (one
/// generic kernel; see the [module docs](super)); only the activation's `tanh` differs:
///
/// * `f32`: [`tanh_rational`](super::tanh_rational), a branch-free rational
///   approximation (within `5·10⁻⁷` of the exact value) that vectorises;
/// * `f64`: the standard library's `f64::tanh` (the platform's C math library, within
///   a few units in the last place), one scalar call per value, so that a solve can
///   reach residuals near `10⁻¹⁵`.
///
/// Both are elementwise, so a row's result does not depend on the batch it is in.
pub trait Float: Real + private::Sealed {
    /// The dtype of this type's tensors in a file.
    const DTYPE: FloatType;

    /// `tanh(x)`: [`tanh_rational`](super::tanh_rational) for `f32`, `f64::tanh` for
    /// `f64` (see above).
    fn tanh(self) -> Self;

    /// `self·b + c` rounded once (`mul_add`): the step of the product's chain.
    #[doc(hidden)]
    fn fma(self, b: Self, c: Self) -> Self;

    /// Columns `lo..hi` of `dst = src + a·b` (`rows × n`, row-major; `src` may be
    /// `dst`) on the fastest path of this CPU (see `product.rs`); `shape` is
    /// `[rows, k, n, lo, hi]`.
    ///
    /// # Safety
    ///
    /// `src` and `dst` valid for `rows × n` values, `a` `rows × k`, `b` packed
    /// `k × n`, `lo..hi` within `0..n` and starting on a panel; nothing else may touch
    /// those columns of `dst` during the call.
    #[doc(hidden)]
    unsafe fn product(a: &[Self], b: &[Self], src: *const Self, dst: *mut Self, shape: [usize; 5]);

    /// The value from its little-endian bytes (`Self::BYTES` of them).
    #[doc(hidden)]
    fn from_le(bytes: &[u8]) -> Self;

    /// Appends the value's little-endian bytes to `out`.
    #[doc(hidden)]
    fn put_le(self, out: &mut Vec<u8>);
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl Float for f32 {
    const DTYPE: FloatType = FloatType::F32;

    #[inline]
    fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }

    #[inline]
    unsafe fn product(a: &[Self], b: &[Self], src: *const Self, dst: *mut Self, shape: [usize; 5]) {
        // SAFETY: the caller's contract.
        unsafe { super::product::product_f32(a, b, super::product::target(src, dst, shape)) };
    }

    #[inline]
    fn tanh(self) -> Self {
        super::tanh_rational(self)
    }

    #[inline]
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Float for f64 {
    const DTYPE: FloatType = FloatType::F64;

    #[inline]
    fn fma(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }

    #[inline]
    unsafe fn product(a: &[Self], b: &[Self], src: *const Self, dst: *mut Self, shape: [usize; 5]) {
        // SAFETY: the caller's contract.
        unsafe { super::product::product_f64(a, b, super::product::target(src, dst, shape)) };
    }

    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }

    #[inline]
    fn from_le(b: &[u8]) -> Self {
        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    #[inline]
    fn put_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// The dtype of a model file's float tensors: every one of `W`, `U`, `b` (and `R`, `c`)
/// has the same, and a model's inputs and outputs have it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatType {
    /// 32-bit floats: [`DeqLayer<f32>`].
    F32,
    /// 64-bit floats: [`DeqLayer<f64>`].
    F64,
}

impl FloatType {
    /// The name safetensors gives it: `"F32"` or `"F64"`.
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "F32",
            FloatType::F64 => "F64",
        }
    }
}

impl fmt::Display for FloatType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A layer loaded from a file of either dtype: the type follows the file.
///
/// ```
/// use solver_host::model::{AnyLayer, DeqLayer, FloatType};
///
/// let demo = DeqLayer::demo(8, 3);
/// let widened = DeqLayer::<f64>::new(
///     8,
///     3,
///     demo.w().iter().map(|&v| f64::from(v)).collect(),
///     demo.u().iter().map(|&v| f64::from(v)).collect(),
///     demo.b().iter().map(|&v| f64::from(v)).collect(),
///     demo.activation(),
/// )
/// .unwrap();
/// let path = std::path::Path::new("layer.safetensors");
/// let any = AnyLayer::from_bytes(path, &widened.to_bytes(path).unwrap()).unwrap();
/// assert_eq!(any.dtype(), FloatType::F64);
/// let AnyLayer::F64(back) = any else { unreachable!() };
/// assert_eq!(back.w(), widened.w());
/// ```
#[derive(Clone, Debug)]
pub enum AnyLayer {
    /// A model of F32 tensors.
    F32(DeqLayer<f32>),
    /// A model of F64 tensors.
    F64(DeqLayer<f64>),
}

impl AnyLayer {
    /// Loads a model file whose tensors are all F32 or all F64, as a layer of that type.
    ///
    /// # Errors
    ///
    /// As [`DeqLayer::load`], except that a file of either float type loads.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_bytes(path, &super::io::read(path)?)
    }

    /// [`load`](Self::load) from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but for reading.
    pub fn from_bytes(path: &Path, file: &[u8]) -> Result<Self, ModelError> {
        let st = super::io::parse(path, file)?;
        match super::io::model_dtype(path, &st)?.map(|(_, dtype)| dtype) {
            // No float tensor at all: the missing tensor is reported, as for F32.
            None | Some(FloatType::F32) => DeqLayer::from_parsed(path, file, &st).map(AnyLayer::F32),
            Some(FloatType::F64) => DeqLayer::from_parsed(path, file, &st).map(AnyLayer::F64),
        }
    }

    /// The file's dtype.
    pub fn dtype(&self) -> FloatType {
        match self {
            AnyLayer::F32(_) => FloatType::F32,
            AnyLayer::F64(_) => FloatType::F64,
        }
    }
}
