//! [`ModelError`]: what can go wrong building a layer or reading and writing its files.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with a model or data file, or with weights given in memory.
///
/// `Display` is one line (control characters escaped) naming the file (where there is one) and the problem, e.g.
/// `layer.safetensors: tensor "W" has shape [4, 5], expected [4, 4]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// The file could not be read, written or renamed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's message.
        msg: String,
    },
    /// The file is not a valid safetensors file (bad header, truncated, inconsistent
    /// offsets, shapes whose size overflows...).
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What the parser found wrong.
        msg: String,
    },
    /// A required tensor is absent.
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
    },
    /// A tensor has the wrong shape or rank.
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The shape (or shapes) accepted, in words, e.g. `[4, 4]` or `[B, 4] or [B, L, 4]`.
        expected: String,
        /// The shape found.
        got: Vec<usize>,
    },
    /// A tensor's dtype is not one it may have (a float tensor neither F32 nor F64,
    /// labels not I64).
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The dtype found, as safetensors names it (`F16`, `BF16`...).
        dtype: String,
        /// What it may be, in words, e.g. `F32 or F64`.
        expected: String,
    },
    /// A float tensor is F32 where F64 is required, or the reverse: a model file whose
    /// tensors are not all of one dtype, an input not of its model's dtype, or a file
    /// loaded as a layer of the other float type. Nothing is converted.
    MixedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// Its dtype (`F32` or `F64`).
        dtype: String,
        /// What decided the dtype required, in words: `tensor "W"`, `the model`.
        other: String,
        /// The dtype required.
        expected: String,
    },
    /// A tensor is empty (a zero in its shape).
    Empty {
        /// The file, if the tensor came from one.
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
    },
    /// A tensor holds a NaN or an infinity.
    NonFinite {
        /// The file, if the tensor came from one.
        path: Option<PathBuf>,
        /// The tensor's name.
        name: String,
        /// Flat (row-major) index of the first non-finite value.
        index: usize,
    },
    /// A weight vector given to [`DeqLayer::new`](super::DeqLayer::new) has the wrong
    /// length.
    WrongLength {
        /// The tensor's name (`W`, `U` or `b`).
        name: String,
        /// The length its shape requires.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The sizes do not fit in memory (`h·h` or a shape's product overflows).
    TooLarge {
        /// The file, if the sizes came from one.
        path: Option<PathBuf>,
        /// What overflowed.
        what: String,
    },
    /// The `activation` metadata is neither `tanh` nor `relu`.
    BadActivation {
        /// The file.
        path: PathBuf,
        /// The value found.
        value: String,
    },
    /// The input's last axis does not match the model's input width.
    InputWidth {
        /// The input file.
        path: PathBuf,
        /// The input's width (last axis of `x`).
        got: usize,
        /// The model's input width (columns of `U`).
        expected: usize,
    },
}

/// Keeps a message on one line.
fn one_line(msg: &str) -> String {
    msg.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` with every control character (newlines, escape sequences, NUL...) written as
/// its Rust escape (`\n`, `\u{1b}`): what a file or a path brings into a message can
/// neither break it into several lines nor drive the terminal.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().fold(String::with_capacity(text.len() + 8), |mut s, c| {
        if c.is_control() {
            s.extend(c.escape_default());
        } else {
            s.push(c);
        }
        s
    })
}

impl ModelError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, err: &std::io::Error) -> Self {
        ModelError::Io { path: path.to_path_buf(), msg: one_line(&err.to_string()) }
    }

    /// The same error, naming `path` if it named no file.
    pub(crate) fn in_file(self, path: &Path) -> Self {
        let file = Some(path.to_path_buf());
        match self {
            ModelError::Empty { path: None, name } => ModelError::Empty { path: file, name },
            ModelError::NonFinite { path: None, name, index } => {
                ModelError::NonFinite { path: file, name, index }
            }
            ModelError::TooLarge { path: None, what } => ModelError::TooLarge { path: file, what },
            other => other,
        }
    }
}

/// Writes `[a, b, c]`.
pub(crate) struct ShapeFmt<'a>(pub &'a [usize]);

impl fmt::Display for ShapeFmt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// `"<path>: "`, or nothing.
fn prefix(f: &mut fmt::Formatter<'_>, path: Option<&Path>) -> fmt::Result {
    match path {
        Some(p) => write!(f, "{}: ", p.display()),
        None => Ok(()),
    }
}

impl fmt::Display for ModelError {
    /// One line: control characters that names, paths or the parser's message bring
    /// are escaped ([`escape_controls`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&Raw(self).to_string()))
    }
}

/// The message before control characters are escaped.
struct Raw<'e>(&'e ModelError);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ModelError::Io { path, msg } => write!(f, "{}: {msg}", path.display()),
            ModelError::NotSafetensors { path, msg } => {
                write!(f, "{}: not a valid safetensors file ({msg})", path.display())
            }
            ModelError::MissingTensor { path, name } => {
                write!(f, "{}: no tensor named \"{name}\"", path.display())
            }
            ModelError::WrongShape { path, name, expected, got } => write!(
                f,
                "{}: tensor \"{name}\" has shape {}, expected {expected}",
                path.display(),
                ShapeFmt(got)
            ),
            ModelError::WrongDtype { path, name, dtype, expected } => {
                write!(f, "{}: tensor \"{name}\" has dtype {dtype}, expected {expected}", path.display())
            }
            ModelError::MixedDtype { path, name, dtype, other, expected } => write!(
                f,
                "{}: tensor \"{name}\" is {dtype} but {other} is {expected} (one dtype per model and its \
                 inputs; nothing is converted)",
                path.display()
            ),
            ModelError::Empty { path, name } => {
                prefix(f, path.as_deref())?;
                write!(f, "tensor \"{name}\" is empty")
            }
            ModelError::NonFinite { path, name, index } => {
                prefix(f, path.as_deref())?;
                write!(
                    f,
                    "tensor \"{name}\" holds a non-finite value (NaN or infinity) at flat index {index}"
                )
            }
            ModelError::WrongLength { name, expected, got } => {
                write!(f, "tensor \"{name}\" has {got} values, expected {expected}")
            }
            ModelError::TooLarge { path, what } => {
                prefix(f, path.as_deref())?;
                write!(f, "{what} is too large for this machine")
            }
            ModelError::BadActivation { path, value } => write!(
                f,
                "{}: metadata \"activation\" is \"{}\", expected \"tanh\" or \"relu\"",
                path.display(),
                value.escape_debug()
            ),
            ModelError::InputWidth { path, got, expected } => {
                write!(f, "{}: input width {got} does not match the model's {expected}", path.display())
            }
        }
    }
}

impl std::error::Error for ModelError {}
