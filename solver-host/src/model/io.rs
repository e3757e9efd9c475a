//! Safetensors files: [`DeqLayer::load`]/[`DeqLayer::save`], the dtype rules of model
//! files and the tensor readers and writers that [`InputBatch`](super::InputBatch) shares
//! (model/input.rs), [`write_state`] and [`write_solution`]. Every write is atomic
//! (temporary file in the same directory, then rename); reads take regular files only.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::{Activation, DeqLayer, Float, FloatType, ModelError, Predictions, Readout};

/// A tensor read from a file: shape and values.
type Tensor<T> = (Vec<usize>, Vec<T>);

/// The float tensors of a model file, which share one dtype, in the order it is
/// decided by: the first one present.
const MODEL_TENSORS: [&str; 5] = ["W", "U", "b", "R", "c"];

/// Metadata key naming the activation.
const ACTIVATION_KEY: &str = "activation";

/// Reads a whole regular file. Anything else (a device such as `/dev/zero`, a FIFO, a
/// socket) is refused before it is opened, so a read can neither block forever nor grow
/// without bound; the buffer is the file's size, and an allocation the machine refuses
/// is an error, not an abort.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    let io = |e: std::io::Error| ModelError::io(path, &e);
    let not_regular = || ModelError::Io {
        path: path.to_path_buf(),
        msg: "not a regular file (devices, FIFOs and sockets are not read)".into(),
    };
    if !fs::metadata(path).map_err(io)?.is_file() {
        return Err(not_regular());
    }
    let file = fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let len = usize::try_from(meta.len())
        .map_err(|_| ModelError::TooLarge { path: Some(path.to_path_buf()), what: "the file".into() })?;
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| ModelError::TooLarge { path: Some(path.to_path_buf()), what: "the file".into() })?;
    // At most the size it had when opened, should it grow meanwhile.
    file.take(meta.len()).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

pub(super) fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
    let bad = |msg: String| ModelError::NotSafetensors { path: path.to_path_buf(), msg };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
    // The parser keeps the last of two entries with one name; a file that names a tensor
    // twice is ambiguous, so it is refused.
    let n = bytes.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
    let header = usize::try_from(n).ok().and_then(|n| bytes.get(8..n.checked_add(8)?));
    if let Some(name) = header.and_then(super::header::duplicate_key) {
        return Err(bad(format!("tensor \"{name}\" is named twice in the header")));
    }
    Ok(st)
}

/// The float type of a safetensors dtype, if it is one the layer runs in.
fn float_type(dtype: Dtype) -> Option<FloatType> {
    match dtype {
        Dtype::F32 => Some(FloatType::F32),
        Dtype::F64 => Some(FloatType::F64),
        _ => None,
    }
}

/// The dtype of tensor `name`, which must be F32 or F64; `None` if absent.
fn float_dtype(path: &Path, st: &SafeTensors<'_>, name: &str) -> Result<Option<FloatType>, ModelError> {
    let Ok(view) = st.tensor(name) else { return Ok(None) };
    float_type(view.dtype()).map(Some).ok_or_else(|| ModelError::WrongDtype {
        path: path.to_path_buf(),
        name: name.to_owned(),
        dtype: format!("{:?}", view.dtype()),
        expected: "F32 or F64 (convert it, e.g. with tensor.float())".into(),
    })
}

/// The dtype of a model file: that of its float tensors (`W`, `U`, `b`, `R`, `c`),
/// which must all be F32 or all F64, with the first of them; `None` if it has none.
///
/// # Errors
///
/// [`ModelError::WrongDtype`] for a tensor that is neither F32 nor F64,
/// [`ModelError::MixedDtype`] naming two tensors of different dtypes.
pub(super) fn model_dtype(
    path: &Path,
    st: &SafeTensors<'_>,
) -> Result<Option<(&'static str, FloatType)>, ModelError> {
    let mut first: Option<(&'static str, FloatType)> = None;
    for name in MODEL_TENSORS {
        let Some(dtype) = float_dtype(path, st, name)? else { continue };
        match first {
            None => first = Some((name, dtype)),
            Some((other, expected)) if dtype != expected => {
                return Err(mixed_dtype(path, name, dtype, &format!("tensor \"{other}\""), expected));
            }
            Some(_) => {}
        }
    }
    Ok(first)
}

/// [`ModelError::MixedDtype`]: tensor `name` is `dtype` where `other` requires `expected`.
fn mixed_dtype(path: &Path, name: &str, dtype: FloatType, other: &str, expected: FloatType) -> ModelError {
    ModelError::MixedDtype {
        path: path.to_path_buf(),
        name: name.to_owned(),
        dtype: dtype.name().into(),
        other: other.to_owned(),
        expected: expected.name().into(),
    }
}

/// Tensor `name` as values of `T` with its shape; `None` if absent. A float tensor of
/// the other type is a [`ModelError::MixedDtype`] against `other` (what decided the
/// type: the model, for an input); nothing is converted.
pub(super) fn tensor<T: Float>(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    other: &str,
) -> Result<Option<Tensor<T>>, ModelError> {
    let Some(dtype) = float_dtype(path, st, name)? else { return Ok(None) };
    if dtype != T::DTYPE {
        return Err(mixed_dtype(path, name, dtype, other, T::DTYPE));
    }
    let Ok(view) = st.tensor(name) else { return Ok(None) };
    // The parser has checked that the byte length is `T::BYTES` × the shape's product.
    let data = view.data().chunks_exact(T::BYTES).map(T::from_le).collect();
    Ok(Some((view.shape().to_vec(), data)))
}

/// Tensor `name`, which must be present.
pub(super) fn required<T: Float>(
    path: &Path,
    st: &SafeTensors<'_>,
    name: &str,
    other: &str,
) -> Result<Tensor<T>, ModelError> {
    tensor(path, st, name, other)?
        .ok_or_else(|| ModelError::MissingTensor { path: path.to_path_buf(), name: name.to_owned() })
}

pub(super) fn wrong_shape(path: &Path, name: &str, expected: String, got: Vec<usize>) -> ModelError {
    ModelError::WrongShape { path: path.to_path_buf(), name: name.to_owned(), expected, got }
}

/// Checks that a tensor is not empty and holds only finite values.
pub(super) fn check_values<T: Float>(
    path: &Path,
    name: &str,
    shape: &[usize],
    data: &[T],
) -> Result<(), ModelError> {
    if shape.contains(&0) {
        return Err(ModelError::Empty { path: Some(path.to_path_buf()), name: name.to_owned() });
    }
    match data.iter().position(|v| !v.is_finite()) {
        Some(index) => {
            Err(ModelError::NonFinite { path: Some(path.to_path_buf()), name: name.to_owned(), index })
        }
        None => Ok(()),
    }
}

/// A tensor to write: name, dtype, shape and little-endian bytes.
pub(super) type Raw<'a> = (&'a str, Dtype, &'a [usize], Vec<u8>);

/// A float tensor to write, of `T`'s dtype.
pub(super) fn float_tensor<'a, T: Float>(name: &'a str, shape: &'a [usize], data: &[T]) -> Raw<'a> {
    let dtype = match T::DTYPE {
        FloatType::F32 => Dtype::F32,
        FloatType::F64 => Dtype::F64,
    };
    let mut bytes = Vec::with_capacity(data.len() * T::BYTES);
    data.iter().for_each(|v| v.put_le(&mut bytes));
    (name, dtype, shape, bytes)
}

/// An I64 tensor to write.
pub(super) fn i64_tensor<'a>(name: &'a str, shape: &'a [usize], data: &[i64]) -> Raw<'a> {
    (name, Dtype::I64, shape, data.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Serialises the tensors as a safetensors file's bytes. The shapes' products must
/// match the data lengths (checked by the callers); `path` only names the file in
/// errors.
pub(super) fn serialize(
    path: &Path,
    tensors: Vec<Raw<'_>>,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, ModelError> {
    let mut views = Vec::with_capacity(tensors.len());
    for (name, dtype, shape, raw) in &tensors {
        let view = TensorView::new(*dtype, shape.to_vec(), raw)
            .map_err(|e| ModelError::Io { path: path.to_path_buf(), msg: e.to_string() })?;
        views.push((*name, view));
    }
    safetensors::serialize(views, metadata)
        .map_err(|e| ModelError::Io { path: path.to_path_buf(), msg: e.to_string() })
}

/// Writes `contents` to a temporary file next to `path`, then renames it over `path`;
/// on any failure the temporary file is removed and `path` is left as it was. A `path`
/// that exists and is not a regular file (a directory, a device such as `/dev/null`, a
/// FIFO) is refused: renaming over it would replace it.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), ModelError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(ModelError::Io {
            path: path.to_path_buf(),
            msg: "not a regular file (it would be replaced, not written)".into(),
        });
    }
    let Some(name) = path.file_name() else {
        return Err(ModelError::Io { path: path.to_path_buf(), msg: "not a file name".into() });
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(contents)?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        ModelError::io(path, &e)
    })
}

impl<T: Float> DeqLayer<T> {
    /// Loads a layer from a safetensors file: tensors `"W"` `[h, h]`, `"U"` `[h, p]`
    /// and `"b"` `[h]`, optionally the classifier readout `"R"` `[k, h]` and `"c"` `[k]`
    /// (both or neither), all of `T`'s dtype (F32 for `DeqLayer<f32>`, F64 for
    /// `DeqLayer<f64>`; [`AnyLayer::load`](super::AnyLayer::load) takes either), and
    /// optional metadata `"activation"` = `"tanh"` (default) or `"relu"`.
    ///
    /// # Errors
    ///
    /// A [`ModelError`] naming the file and the problem: unreadable file, not
    /// safetensors (garbage, truncated), missing tensor (`"R"` without `"c"` or the
    /// reverse), wrong shape, a dtype that is neither F32 nor F64, tensors of both
    /// ([`ModelError::MixedDtype`]) or of the other type than `T` (nothing is
    /// converted), empty or non-finite weights, unknown activation.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_bytes(path, &read(path)?)
    }

    /// [`load`](Self::load) from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but for reading.
    pub fn from_bytes(path: &Path, file: &[u8]) -> Result<Self, ModelError> {
        Self::from_parsed(path, file, &parse(path, file)?)
    }

    /// [`from_bytes`](Self::from_bytes) of a file already parsed as `st`.
    pub(super) fn from_parsed(path: &Path, file: &[u8], st: &SafeTensors<'_>) -> Result<Self, ModelError> {
        if let Some((name, dtype)) = model_dtype(path, st)?.filter(|&(_, d)| d != T::DTYPE) {
            return Err(mixed_dtype(path, name, dtype, "the layer type requested", T::DTYPE));
        }
        // Every float tensor has `T`'s dtype now: `other` is never shown.
        let model = "the model";
        let (b_shape, b) = required::<T>(path, st, "b", model)?;
        let (w_shape, w) = required::<T>(path, st, "W", model)?;
        let (u_shape, u) = required::<T>(path, st, "U", model)?;
        let &[h] = b_shape.as_slice() else {
            return Err(wrong_shape(path, "b", "[h] (rank 1)".into(), b_shape));
        };
        if h == 0 {
            return Err(ModelError::Empty { path: Some(path.to_path_buf()), name: "b".into() });
        }
        if w_shape != [h, h] {
            return Err(wrong_shape(path, "W", format!("[{h}, {h}]"), w_shape));
        }
        let p = match u_shape.as_slice() {
            &[rows, p] if rows == h => p,
            _ => return Err(wrong_shape(path, "U", format!("[{h}, p]"), u_shape)),
        };
        let act = match SafeTensors::read_metadata(file).ok().and_then(|(_, m)| m.metadata().clone()) {
            Some(meta) => match meta.get(ACTIVATION_KEY) {
                Some(value) => value.parse::<Activation>().map_err(|_| ModelError::BadActivation {
                    path: path.to_path_buf(),
                    value: value.clone(),
                })?,
                None => Activation::Tanh,
            },
            None => Activation::Tanh,
        };
        let layer = DeqLayer::new(h, p, w, u, b, act).map_err(|e| e.in_file(path))?;
        match (tensor::<T>(path, st, "R", model)?, tensor::<T>(path, st, "c", model)?) {
            (None, None) => Ok(layer),
            (Some(_), None) => Err(ModelError::MissingTensor { path: path.to_path_buf(), name: "c".into() }),
            (None, Some(_)) => Err(ModelError::MissingTensor { path: path.to_path_buf(), name: "R".into() }),
            (Some((r_shape, r)), Some((c_shape, c))) => {
                let k = match r_shape.as_slice() {
                    &[k, cols] if cols == h => k,
                    _ => return Err(wrong_shape(path, "R", format!("[k, {h}]"), r_shape)),
                };
                if c_shape != [k] {
                    return Err(wrong_shape(path, "c", format!("[{k}]"), c_shape));
                }
                // k = 0 is refused by `Readout::new` (`Empty`, naming `R` and the file).
                let readout = Readout::new(k, h, r, c).map_err(|e| e.in_file(path))?;
                layer.with_readout(readout).map_err(|e| e.in_file(path))
            }
        }
    }

    /// Writes the layer as a safetensors file (`"W"`, `"U"`, `"b"`, the readout's `"R"`
    /// and `"c"` if it has one, all of `T`'s dtype; metadata `"activation"`),
    /// atomically: a failed write leaves no file (and an existing file unchanged).
    ///
    /// # Errors
    ///
    /// [`ModelError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        write_atomic(path, &self.to_bytes(path)?)
    }

    /// The bytes [`save`](Self::save) writes; `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// [`ModelError::Io`] if the tensors cannot be serialised.
    pub fn to_bytes(&self, path: &Path) -> Result<Vec<u8>, ModelError> {
        let (h, p) = (self.hidden, self.input);
        let meta = HashMap::from([(ACTIVATION_KEY.to_owned(), self.act.name().to_owned())]);
        let (wh, uh, bh) = ([h, h], [h, p], [h]);
        let mut tensors = vec![
            float_tensor("W", &wh, &self.w),
            float_tensor("U", &uh, &self.u),
            float_tensor("b", &bh, &self.b),
        ];
        let (rh, ch);
        if let Some(r) = &self.readout {
            (rh, ch) = ([r.classes(), h], [r.classes()]);
            tensors.push(float_tensor("R", &rh, r.r()));
            tensors.push(float_tensor("c", &ch, r.c()));
        }
        serialize(path, tensors, Some(meta))
    }
}

/// The product of `shape`, or `None` on overflow.
pub(super) fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Writes the state `z` as tensor `"z"` (of `T`'s dtype: F32 or F64) of shape `shape`
/// to a safetensors file, atomically: a failed write leaves no partial file.
///
/// # Errors
///
/// [`ModelError::WrongLength`] if `z.len()` is not the product of `shape`,
/// [`ModelError::Io`] if the file cannot be written.
pub fn write_state<T: Float>(path: &Path, shape: &[usize], z: &[T]) -> Result<(), ModelError> {
    write_solution(path, shape, z, None)
}

/// Writes the state `z` (tensor `"z"`, of `T`'s dtype, shape `shape`) and, for a
/// classifier, its [`Predictions`]: `"logits"` (the same dtype, `shape` with the last
/// axis `k`) and `"class"` (I64,
/// `shape` without its last axis; −1 for a row whose scores are not finite). One atomic
/// write: all of it or nothing.
///
/// # Errors
///
/// [`ModelError::WrongLength`] if `z.len()` is not the product of `shape` or the
/// predictions are not of `z`'s rows, [`ModelError::Io`] if the file cannot be written.
pub fn write_solution<T: Float>(
    path: &Path,
    shape: &[usize],
    z: &[T],
    predictions: Option<&Predictions<T>>,
) -> Result<(), ModelError> {
    write_atomic(path, &solution_bytes(path, shape, z, predictions)?)
}

/// The bytes [`write_solution`] writes; `path` only names the file in errors.
///
/// # Errors
///
/// [`ModelError::Empty`] if `shape` has a zero, otherwise as [`write_solution`].
pub fn solution_bytes<T: Float>(
    path: &Path,
    shape: &[usize],
    z: &[T],
    predictions: Option<&Predictions<T>>,
) -> Result<Vec<u8>, ModelError> {
    if shape.contains(&0) {
        return Err(ModelError::Empty { path: Some(path.to_path_buf()), name: "z".into() });
    }
    let expected = checked_len(shape)
        .ok_or_else(|| ModelError::TooLarge { path: Some(path.to_path_buf()), what: "z".into() })?;
    if z.len() != expected {
        return Err(ModelError::WrongLength { name: "z".into(), expected, got: z.len() });
    }
    let mut tensors = vec![float_tensor("z", shape, z)];
    let rows_shape = &shape[..shape.len().saturating_sub(1)];
    let rows = checked_len(rows_shape).unwrap_or(0);
    let mut logits_shape = shape.to_vec();
    if let Some(p) = predictions {
        if p.class.len() != rows || p.logits.len() != rows * p.classes {
            return Err(ModelError::WrongLength { name: "class".into(), expected: rows, got: p.class.len() });
        }
        if let Some(last) = logits_shape.last_mut() {
            *last = p.classes;
        }
        tensors.push(float_tensor("logits", &logits_shape, &p.logits));
        tensors.push(i64_tensor("class", rows_shape, &p.class));
    }
    serialize(path, tensors, None)
}
