//! `deq` on F64 models: `solve` runs in f64 and writes F64 fixed points whose residual,
//! recomputed here, is far below what the f32 solve of the same model can reach;
//! inputs of the other dtype, `export` and `--device cuda` are one-line errors.
#![cfg(feature = "layer")]

mod cli_util;

use std::path::Path;
use std::process::Output;

use cli_util::{deq, dir, read_f32, s};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

const H: usize = 12;
const P: usize = 5;

/// The model's weights (`W`, `U`, `b`), as f32 values, so that the F32 and the F64 file
/// hold the same model exactly: `W` has norm well below 1 (a contraction).
fn weights() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let w = (0..H * H).map(|i| ((i * 7 % 13) as f32 / 13.0 - 0.5) * 0.15).collect();
    let u = (0..H * P).map(|i| ((i * 3 % 11) as f32 / 11.0 - 0.5) * 0.4).collect();
    let b = (0..H).map(|i| 0.05 * i as f32 - 0.2).collect();
    (w, u, b)
}

/// Little-endian bytes of `v` as `dtype` (F32 or F64).
fn bytes(v: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F64 => v.iter().flat_map(|&x| f64::from(x).to_le_bytes()).collect(),
        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn write_tensors(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().map(|(n, d, shape, b)| (*n, TensorView::new(*d, shape.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// The model in `dtype`.
fn model(path: &Path, dtype: Dtype) {
    let (w, u, b) = weights();
    write_tensors(
        path,
        &[
            ("W", dtype, vec![H, H], bytes(&w, dtype)),
            ("U", dtype, vec![H, P], bytes(&u, dtype)),
            ("b", dtype, vec![H], bytes(&b, dtype)),
        ],
    );
}

/// The input `x` `[4, 3, P]` in `dtype`.
fn input(path: &Path, dtype: Dtype) -> Vec<f32> {
    let x: Vec<f32> = (0..4 * 3 * P).map(|i| ((i * 5 % 17) as f32 / 17.0 - 0.5) * 2.0).collect();
    write_tensors(path, &[("x", dtype, vec![4, 3, P], bytes(&x, dtype))]);
    x
}

/// F64 tensor `name` of a safetensors file: shape and values.
fn read_f64(path: &Path, name: &str) -> (Vec<usize>, Vec<f64>) {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::F64, "{name}");
    let v = t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    (t.shape().to_vec(), v)
}

/// The worst per-sample `‖f(z) − z‖ / ‖f(z)‖` over 4 samples of 3 tokens, computed in
/// f64 from the weights (exact f32 values) and the state `z`.
fn worst_residual(z: &[f64], x: &[f32]) -> f64 {
    let (w, u, b) = weights();
    let mut worst = 0.0f64;
    for sample in 0..4 {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for t in 0..3 {
            let row = sample * 3 + t;
            for i in 0..H {
                let mut acc = f64::from(b[i]);
                for j in 0..H {
                    acc += f64::from(w[i * H + j]) * z[row * H + j];
                }
                for j in 0..P {
                    acc += f64::from(u[i * P + j]) * f64::from(x[row * P + j]);
                }
                let f = acc.tanh();
                num += (f - z[row * H + i]).powi(2);
                den += f * f;
            }
        }
        worst = worst.max(num.sqrt() / den.sqrt());
    }
    worst
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure: status 2, one line on stderr containing every needle,
/// nothing on stdout, and `absent` not created.
fn fails(out: &Output, needles: &[&str], absent: &Path) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!absent.exists(), "{} was left behind", absent.display());
}

/// `deq solve` of an F64 model and F64 input with `--tol-rel 1e-13`: every sample
/// converges, `z` is written as F64 of the state's shape, its residual recomputed here in
/// f64 is at most 1e-12, and the report and summary say f64. The F32 files of the same
/// model (the same values) solve in f32, to a residual a thousand times larger at best.
#[test]
fn solve_of_an_f64_model_reaches_f64_residuals() {
    let d = dir("f64-solve");
    let (m, x, z, r) =
        (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"), d.join("r.json"));
    model(&m, Dtype::F64);
    let xv = input(&x, Dtype::F64);
    let args = ["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z), "--report", s(&r)];
    let text = ok(&deq(&[&args[..], &["--tol-rel", "1e-13"]].concat()));
    assert!(text.contains("(tanh, f64, h = 12, p = 5)") && text.contains("converged 4/4"), "{text}");
    let (shape, z64) = read_f64(&z, "z");
    assert_eq!(shape, vec![4, 3, H]);
    let res64 = worst_residual(&z64, &xv);
    assert!(res64 <= 1e-12, "f64 solve: residual {res64:e}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
    assert_eq!(report["dtype"], "f64");
    assert_eq!(report["tol_rel"], 1e-13);
    assert_eq!(report["converged"], 4);
    for sample in report["samples"].as_array().unwrap() {
        assert!(sample["residual_rel"].as_f64().unwrap() <= 1e-13, "{sample}");
    }

    model(&m, Dtype::F32);
    input(&x, Dtype::F32);
    let text = ok(&deq(&args));
    assert!(text.contains("(tanh, f32, h = 12, p = 5)"), "{text}");
    let (_, z32) = read_f32(&z, "z");
    let res32 = worst_residual(&z32.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), &xv);
    assert!(res32 >= 1000.0 * res64 && res32 <= 1e-5, "f32 solve: residual {res32:e} (f64: {res64:e})");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&r).unwrap()).unwrap();
    assert_eq!(report["dtype"], "f32");
    eprintln!("worst residual: f64 solve {res64:e}, f32 solve {res32:e}");
}

/// `deq compare` runs every solver on an F64 model, in f64.
#[test]
fn compare_runs_an_f64_model_in_f64() {
    let d = dir("f64-compare");
    let (m, x, csv) = (d.join("m.st"), d.join("x.st"), d.join("t.csv"));
    model(&m, Dtype::F64);
    input(&x, Dtype::F64);
    let text =
        ok(&deq(&["compare", "--model", s(&m), "--input", s(&x), "--tol-rel", "1e-12", "--csv", s(&csv)]));
    assert!(text.contains("(f64); memory 8, tol_rel 1e-12"), "{text}");
    for solver in ["broyden", "anderson", "picard"] {
        let line = text.lines().find(|l| l.starts_with(solver)).unwrap();
        assert!(line.contains(" 4/4 "), "{line}");
    }
    // The traces reach below what f32 could resolve.
    let traces = std::fs::read_to_string(&csv).unwrap();
    let last = traces.lines().filter_map(|l| l.split(',').nth(1)?.parse::<f64>().ok()).next_back().unwrap();
    assert!(last <= 1e-12, "{last:e}");
}

/// An input of the other dtype than the model is refused (not converted), either way;
/// `deq export` refuses an F64 model (the firmware is f32); `--device cuda` refuses it
/// (the CUDA backend is f32), or this build has no CUDA at all. One line each, status 2,
/// no output file.
#[test]
fn dtype_mismatches_export_and_cuda_are_one_line_errors() {
    let d = dir("f64-errors");
    let (m, x, z) = (d.join("m.safetensors"), d.join("x.safetensors"), d.join("z.safetensors"));
    model(&m, Dtype::F64);
    input(&x, Dtype::F32);
    let solve = ["solve", "--model", s(&m), "--input", s(&x), "--output", s(&z)];
    fails(
        &deq(&solve),
        &["x.safetensors", "tensor \"x\" is F32 but the model is F64", "nothing is converted"],
        &z,
    );
    model(&m, Dtype::F32);
    input(&x, Dtype::F64);
    fails(&deq(&solve), &["x.safetensors", "tensor \"x\" is F64 but the model is F32"], &z);

    model(&m, Dtype::F64);
    let rs = d.join("layer.rs");
    let out = deq(&["export", "--model", s(&m), "--out", s(&rs)]);
    fails(&out, &["m.safetensors", "the model is F64", "f32 firmware", "F32"], &rs);

    input(&x, Dtype::F64);
    let out = deq(&[&solve[..], &["--device", "cuda"]].concat());
    if cfg!(feature = "cuda") {
        fails(&out, &["--device cuda", "the model is F64", "F32 models only"], &z);
    } else {
        fails(&out, &["--device cuda", "without CUDA"], &z);
    }
}
