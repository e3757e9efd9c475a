//! Safetensors files: [`DeqLayer::load`]/[`DeqLayer::save`], [`InputBatch`],
//! [`write_state`] and [`write_solution`]. Every write is atomic (temporary file in the
//! same directory, then rename); reads take regular files only.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::error::ShapeFmt;
use super::{Activation, DeqLayer, ModelError, Predictions, Readout};

/// A tensor read from a file: shape and F32 values.
type Tensor = (Vec<usize>, Vec<f32>);

/// Metadata key naming the activation.
const ACTIVATION_KEY: &str = "activation";

/// Reads a whole regular file. Anything else (a device such as `/dev/zero`, a FIFO, a
/// socket) is refused before it is opened, so a read can neither block forever nor grow
/// without bound; the buffer is the file's size, and an allocation the machine refuses
/// is an error, not an abort.
fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
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

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, ModelError> {
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

/// Tensor `name` as F32 values with its shape; `None` if absent.
fn tensor(path: &Path, st: &SafeTensors<'_>, name: &str) -> Result<Option<Tensor>, ModelError> {
    let Ok(view) = st.tensor(name) else { return Ok(None) };
    if view.dtype() != Dtype::F32 {
        return Err(ModelError::WrongDtype {
            path: path.to_path_buf(),
            name: name.to_owned(),
            dtype: format!("{:?}", view.dtype()),
        });
    }
    // The parser has checked that the byte length is 4 × the shape's product.
    let data = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Some((view.shape().to_vec(), data)))
}

/// Tensor `name`, which must be present.
fn required(path: &Path, st: &SafeTensors<'_>, name: &str) -> Result<Tensor, ModelError> {
    tensor(path, st, name)?
        .ok_or_else(|| ModelError::MissingTensor { path: path.to_path_buf(), name: name.to_owned() })
}

fn wrong_shape(path: &Path, name: &str, expected: String, got: Vec<usize>) -> ModelError {
    ModelError::WrongShape { path: path.to_path_buf(), name: name.to_owned(), expected, got }
}

/// Checks that a tensor is not empty and holds only finite values.
fn check_values(path: &Path, name: &str, shape: &[usize], data: &[f32]) -> Result<(), ModelError> {
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

/// Little-endian bytes of `data`.
fn bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A tensor to write: name, dtype, shape and little-endian bytes.
type Raw<'a> = (&'a str, Dtype, &'a [usize], Vec<u8>);

/// An F32 tensor to write.
fn f32_tensor<'a>(name: &'a str, shape: &'a [usize], data: &[f32]) -> Raw<'a> {
    (name, Dtype::F32, shape, bytes(data))
}

/// An I64 tensor to write.
fn i64_tensor<'a>(name: &'a str, shape: &'a [usize], data: &[i64]) -> Raw<'a> {
    (name, Dtype::I64, shape, data.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Serialises the tensors as a safetensors file's bytes. The shapes' products must
/// match the data lengths (checked by the callers); `path` only names the file in
/// errors.
fn serialize(
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

impl DeqLayer {
    /// Loads a layer from a safetensors file: F32 tensors `"W"` `[h, h]`, `"U"` `[h, p]`
    /// and `"b"` `[h]`, optionally the classifier readout `"R"` `[k, h]` and `"c"` `[k]`
    /// (both or neither), and optional metadata `"activation"` = `"tanh"` (default) or
    /// `"relu"`.
    ///
    /// # Errors
    ///
    /// A [`ModelError`] naming the file and the problem: unreadable file, not
    /// safetensors (garbage, truncated), missing tensor (`"R"` without `"c"` or the
    /// reverse), wrong shape or dtype (only F32 is accepted), empty or non-finite
    /// weights, unknown activation.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_bytes(path, &read(path)?)
    }

    /// [`load`](Self::load) from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but for reading.
    pub fn from_bytes(path: &Path, file: &[u8]) -> Result<Self, ModelError> {
        let st = parse(path, file)?;
        let (b_shape, b) = required(path, &st, "b")?;
        let (w_shape, w) = required(path, &st, "W")?;
        let (u_shape, u) = required(path, &st, "U")?;
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
        match (tensor(path, &st, "R")?, tensor(path, &st, "c")?) {
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
    /// and `"c"` if it has one, metadata `"activation"`), atomically: a failed write leaves no file (and an existing file
    /// unchanged).
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
        let mut tensors =
            vec![f32_tensor("W", &wh, &self.w), f32_tensor("U", &uh, &self.u), f32_tensor("b", &bh, &self.b)];
        let (rh, ch);
        if let Some(r) = &self.readout {
            (rh, ch) = ([r.classes(), h], [r.classes()]);
            tensors.push(f32_tensor("R", &rh, r.r()));
            tensors.push(f32_tensor("c", &ch, r.c()));
        }
        serialize(path, tensors, Some(meta))
    }
}

/// A batch of inputs read from a safetensors file: tensor `"x"` `[B, p]` or `[B, L, p]`
/// (F32), optionally `"z0"`, the starting state, of the state's shape `[B, h]` or
/// `[B, L, h]`, and optionally `"label"` (I64, `[B]` or `[B, L]`: a class per row),
/// which a classifier's predictions are scored against.
#[derive(Clone, Debug, PartialEq)]
pub struct InputBatch {
    /// Shape of `x`: `[B, p]` or `[B, L, p]`.
    pub shape: Vec<usize>,
    /// The inputs, row-major.
    pub x: Vec<f32>,
    /// The starting state, row-major, of shape [`state_shape`](Self::state_shape).
    pub z0: Option<Vec<f32>>,
    /// The true class of each row (`B·L` of them), if the file has labels.
    pub labels: Option<Vec<i64>>,
}

impl InputBatch {
    /// Reads a batch for `layer`.
    ///
    /// # Errors
    ///
    /// A [`ModelError`] naming the file: unreadable or not safetensors, `"x"` missing,
    /// not F32, not of rank 2 or 3, empty, its last axis not the layer's input width
    /// ([`ModelError::InputWidth`]), `"z0"` not of the state's shape, non-finite values,
    /// `"label"` not I64 or not of shape `[B]` (`[B, L]`).
    pub fn load(path: &Path, layer: &DeqLayer) -> Result<Self, ModelError> {
        Self::from_bytes(path, &read(path)?, layer)
    }

    /// [`load`](Self::load) from the bytes of a file; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load), but for reading.
    pub fn from_bytes(path: &Path, file: &[u8], layer: &DeqLayer) -> Result<Self, ModelError> {
        let st = parse(path, file)?;
        let (shape, x) = required(path, &st, "x")?;
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
        let z0 = match tensor(path, &st, "z0")? {
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
        let mut tensors = vec![f32_tensor("x", &self.shape, &self.x)];
        let state;
        if let Some(z0) = &self.z0 {
            if rows == 0 || z0.is_empty() || !z0.len().is_multiple_of(rows) {
                let expected = rows * z0.len().div_ceil(rows.max(1)).max(1);
                return Err(ModelError::WrongLength { name: "z0".into(), expected, got: z0.len() });
            }
            state = self.state_shape(z0.len() / rows);
            tensors.push(f32_tensor("z0", &state, z0));
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

/// The product of `shape`, or `None` on overflow.
fn checked_len(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Writes the state `z` as tensor `"z"` (F32) of shape `shape` to a safetensors file,
/// atomically: a failed write leaves no partial file.
///
/// # Errors
///
/// [`ModelError::WrongLength`] if `z.len()` is not the product of `shape`,
/// [`ModelError::Io`] if the file cannot be written.
pub fn write_state(path: &Path, shape: &[usize], z: &[f32]) -> Result<(), ModelError> {
    write_solution(path, shape, z, None)
}

/// Writes the state `z` (tensor `"z"`, F32, shape `shape`) and, for a classifier, its
/// [`Predictions`]: `"logits"` (F32, `shape` with the last axis `k`) and `"class"` (I64,
/// `shape` without its last axis; −1 for a row whose scores are not finite). One atomic
/// write: all of it or nothing.
///
/// # Errors
///
/// [`ModelError::WrongLength`] if `z.len()` is not the product of `shape` or the
/// predictions are not of `z`'s rows, [`ModelError::Io`] if the file cannot be written.
pub fn write_solution(
    path: &Path,
    shape: &[usize],
    z: &[f32],
    predictions: Option<&Predictions>,
) -> Result<(), ModelError> {
    write_atomic(path, &solution_bytes(path, shape, z, predictions)?)
}

/// The bytes [`write_solution`] writes; `path` only names the file in errors.
///
/// # Errors
///
/// [`ModelError::Empty`] if `shape` has a zero, otherwise as [`write_solution`].
pub fn solution_bytes(
    path: &Path,
    shape: &[usize],
    z: &[f32],
    predictions: Option<&Predictions>,
) -> Result<Vec<u8>, ModelError> {
    if shape.contains(&0) {
        return Err(ModelError::Empty { path: Some(path.to_path_buf()), name: "z".into() });
    }
    let expected = checked_len(shape)
        .ok_or_else(|| ModelError::TooLarge { path: Some(path.to_path_buf()), what: "z".into() })?;
    if z.len() != expected {
        return Err(ModelError::WrongLength { name: "z".into(), expected, got: z.len() });
    }
    let mut tensors = vec![f32_tensor("z", shape, z)];
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
        tensors.push(f32_tensor("logits", &logits_shape, &p.logits));
        tensors.push(i64_tensor("class", rows_shape, &p.class));
    }
    serialize(path, tensors, None)
}

/// `"label"`: I64 of shape `rows_shape`, if present.
fn labels(path: &Path, st: &SafeTensors<'_>, rows_shape: &[usize]) -> Result<Option<Vec<i64>>, ModelError> {
    let Ok(view) = st.tensor("label") else { return Ok(None) };
    if view.dtype() != Dtype::I64 {
        return Err(ModelError::WrongDtype {
            path: path.to_path_buf(),
            name: "label".into(),
            dtype: format!("{:?} (labels are I64)", view.dtype()),
        });
    }
    if view.shape() != rows_shape {
        return Err(wrong_shape(path, "label", ShapeFmt(rows_shape).to_string(), view.shape().to_vec()));
    }
    let le = |c: &[u8]| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    Ok(Some(view.data().chunks_exact(8).map(le).collect()))
}
