//! Helpers of the `deq` command-line tests: running the binary, scratch directories,
//! reading tensors back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::tensor::Dtype;

/// Runs the `deq` binary built for these tests.
pub fn deq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deq")).args(args).output().expect("the deq binary runs")
}

/// A fresh directory for one test.
pub fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deq-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The path as a `&str` (the tests' paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// F32 tensor `name` of a safetensors file: shape and values.
pub fn read_f32(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::F32);
    let v = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    (t.shape().to_vec(), v)
}
