//! The DEQ layer (`solver_host::model`): products against naive loops, file round trips,
//! and one test per kind of bad file, each checking that the error is one line naming
//! the file and the problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, tensor::TensorView};
use solver_host::model::{Activation, DeqLayer, InputBatch, ModelError, Readout, write_state};

/// Deterministic values in `[-1, 1)`.
fn data(len: usize, seed: u64) -> Vec<f32> {
    deq_problems::rng::lcg_f32(len, seed)
}

/// A temporary file path unique to this process and test, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(test: &str) -> Self {
        Temp(std::env::temp_dir().join(format!("deq-model-{}-{test}.safetensors", std::process::id())))
    }

    fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn layer(h: usize, p: usize, act: Activation, seed: u64) -> DeqLayer {
    let w = data(h * h, seed).iter().map(|v| v / (h as f32).sqrt()).collect();
    DeqLayer::new(h, p, w, data(h * p, seed + 1), data(h, seed + 2), act).unwrap()
}

/// Compares `got` with `want` to 1e-5 of the magnitude `scale` of the summed terms.
fn assert_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let err = (g as f64 - w).abs();
        assert!(err <= 1e-5 * s.max(1e-3), "{what}[{i}]: {g} vs {w} (scale {s})");
    }
}

fn check_apply(act: Activation, h: usize, p: usize, rows: usize) {
    let l = layer(h, p, act, 7);
    let z = data(rows * h, 11);
    let c: Vec<f32> = data(rows * h, 12).iter().map(|v| 3.0 * v).collect();
    let mut out = vec![f32::NAN; rows * h];
    l.apply(&z, &c, &mut out);
    let (mut want, mut scale) = (vec![0.0f64; rows * h], vec![0.0f64; rows * h]);
    for r in 0..rows {
        for i in 0..h {
            let mut s = c[r * h + i] as f64;
            let mut mag = s.abs();
            for j in 0..h {
                let t = l.w()[i * h + j] as f64 * z[r * h + j] as f64;
                s += t;
                mag += t.abs();
            }
            want[r * h + i] = match act {
                Activation::Tanh => s.tanh(),
                Activation::Relu => s.max(0.0),
            };
            scale[r * h + i] = mag;
        }
    }
    assert_close(&out, &want, &scale, &format!("apply {act} h={h} rows={rows}"));
}

#[test]
fn apply_matches_naive_loop() {
    for act in [Activation::Tanh, Activation::Relu] {
        for (h, p, rows) in [(1, 1, 1), (37, 11, 7), (130, 20, 70), (64, 8, 1)] {
            check_apply(act, h, p, rows);
        }
    }
}

#[test]
fn injection_matches_naive_loop() {
    for (h, p, rows) in [(1, 1, 1), (37, 11, 7), (130, 200, 33)] {
        let l = layer(h, p, Activation::Tanh, 3);
        let x = data(rows * p, 5);
        let mut c = vec![f32::NAN; rows * h];
        l.injection(&x, &mut c);
        let (mut want, mut scale) = (vec![0.0f64; rows * h], vec![0.0f64; rows * h]);
        for r in 0..rows {
            for i in 0..h {
                let mut s = l.b()[i] as f64;
                let mut mag = s.abs();
                for j in 0..p {
                    let t = l.u()[i * p + j] as f64 * x[r * p + j] as f64;
                    s += t;
                    mag += t.abs();
                }
                want[r * h + i] = s;
                scale[r * h + i] = mag;
            }
        }
        assert_close(&c, &want, &scale, &format!("injection h={h} p={p}"));
    }
}

#[test]
fn demo_is_deterministic_and_contractive() {
    let (a, b) = (DeqLayer::demo(50, 7), DeqLayer::demo(50, 7));
    assert_eq!(a.w(), b.w());
    assert_eq!(a.u(), b.u());
    assert_eq!(a.b(), b.b());
    assert_eq!(a.weight_bytes(), 4 * (50 * 50 + 50 * 7 + 50));
    // ‖W‖₂ ≤ ‖W‖_F bound is loose; check the contraction directly on random pairs.
    let c = vec![0.0f32; 50];
    let (mut fa, mut fb) = (vec![0.0f32; 50], vec![0.0f32; 50]);
    for seed in 0..20 {
        let (za, zb) = (data(50, 100 + seed), data(50, 200 + seed));
        a.apply(&za, &c, &mut fa);
        a.apply(&zb, &c, &mut fb);
        let d = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum::<f32>().sqrt();
        assert!(d(&fa, &fb) <= 0.91 * d(&za, &zb));
    }
}

#[test]
fn activation_names() {
    assert_eq!(Activation::Tanh.to_string(), "tanh");
    assert_eq!("relu".parse::<Activation>(), Ok(Activation::Relu));
    assert_eq!("TANH".parse::<Activation>(), Ok(Activation::Tanh));
    assert!("sigmoid".parse::<Activation>().unwrap_err().to_string().contains("sigmoid"));
}

#[test]
fn new_rejects_bad_weights() {
    let e =
        DeqLayer::<f32>::new(2, 1, vec![0.0; 3], vec![0.0; 2], vec![0.0; 2], Activation::Tanh).unwrap_err();
    assert!(matches!(e, ModelError::WrongLength { expected: 4, got: 3, .. }), "{e}");
    let mut u = vec![0.0; 2];
    u[1] = f32::INFINITY;
    let e = DeqLayer::<f32>::new(2, 1, vec![0.0; 4], u, vec![0.0; 2], Activation::Tanh).unwrap_err();
    assert_eq!(e.to_string(), "tensor \"U\" holds a non-finite value (NaN or infinity) at flat index 1");
    assert!(DeqLayer::<f32>::new(usize::MAX, 1, vec![], vec![], vec![], Activation::Tanh).is_err());
}

#[test]
fn save_load_round_trip_is_bit_identical() {
    let t = Temp::new("round_trip");
    let l = layer(23, 9, Activation::Relu, 21);
    l.save(&t.0).unwrap();
    let back = DeqLayer::<f32>::load(&t.0).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(back.w()), bits(l.w()));
    assert_eq!(bits(back.u()), bits(l.u()));
    assert_eq!(bits(back.b()), bits(l.b()));
    assert_eq!((back.hidden(), back.input_width(), back.activation()), (23, 9, Activation::Relu));
    // No temporary file is left beside it.
    let dir = t.0.parent().unwrap();
    let stem = format!(".{}.tmp", t.name());
    assert!(
        std::fs::read_dir(dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(&stem))
    );
}

#[test]
fn input_batch_and_state_round_trip() {
    let l = layer(6, 4, Activation::Tanh, 1);
    let t = Temp::new("inputs");
    let batch = InputBatch {
        shape: vec![2, 3, 4],
        x: data(24, 2),
        z0: Some(data(36, 3)),
        labels: Some(vec![0, 1, 2, 3, 4, 5]),
    };
    batch.save(&t.0).unwrap();
    let back = InputBatch::load(&t.0, &l).unwrap();
    assert_eq!(back, batch);
    assert_eq!((back.samples(), back.tokens(), back.state_shape(6)), (2, 3, vec![2, 3, 6]));
    let flat = InputBatch { shape: vec![5, 4], x: data(20, 4), z0: None, labels: None };
    flat.save(&t.0).unwrap();
    let back = InputBatch::load(&t.0, &l).unwrap();
    assert_eq!((back.samples(), back.tokens(), back.z0), (5, 1, None));

    let s = Temp::new("state");
    let z = data(2 * 3 * 6, 9);
    write_state(&s.0, &[2, 3, 6], &z).unwrap();
    let bytes = std::fs::read(&s.0).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("z").unwrap();
    assert_eq!((view.dtype(), view.shape()), (Dtype::F32, &[2, 3, 6][..]));
    assert_eq!(view.data(), z.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>());
    assert!(matches!(write_state(&s.0, &[2, 3], &z), Err(ModelError::WrongLength { .. })));
}

#[test]
fn failed_write_leaves_no_file() {
    let dir = std::env::temp_dir().join(format!("deq-model-{}-no-such-dir", std::process::id()));
    let path = dir.join("layer.safetensors");
    let e = DeqLayer::demo(4, 2).save(&path).unwrap_err();
    assert_one_line(&e, "layer.safetensors", "No such file");
    assert!(!dir.exists());
}

/// A write to a device or a directory is refused, not renamed over it.
#[test]
fn writes_never_replace_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let e = write_state(Path::new("/dev/null"), &[1], &[0.0f32]).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    let e = DeqLayer::demo(4, 2).save(&std::env::temp_dir()).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

// ---- bad files ----

/// Asserts that `e` displays as one line containing the file name and `problem`.
fn assert_one_line(e: &ModelError, file: &str, problem: &str) {
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(msg.contains(file), "no file name {file} in: {msg}");
    assert!(msg.contains(problem), "no \"{problem}\" in: {msg}");
}

/// Writes raw tensors `(name, dtype, shape, bytes)` with the safetensors crate.
fn write_raw(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)], meta: Option<(&str, &str)>) {
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap())).collect();
    let meta = meta.map(|(k, v)| HashMap::from([(k.to_owned(), v.to_owned())]));
    std::fs::write(path, safetensors::serialize(views, meta).unwrap()).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A layer file with `h = 4`, `p = 3`, optionally replacing one tensor.
fn write_layer(path: &Path, replace: Option<(&str, Dtype, Vec<usize>, Vec<u8>)>, meta: Option<(&str, &str)>) {
    let mut tensors = vec![
        ("W", Dtype::F32, vec![4, 4], f32_bytes(&data(16, 1))),
        ("U", Dtype::F32, vec![4, 3], f32_bytes(&data(12, 2))),
        ("b", Dtype::F32, vec![4], f32_bytes(&data(4, 3))),
    ];
    if let Some(r) = replace {
        tensors.retain(|t| t.0 != r.0);
        if !r.3.is_empty() {
            tensors.push(r);
        }
    }
    write_raw(path, &tensors, meta);
}

#[test]
fn missing_file() {
    let t = Temp::new("missing");
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert!(matches!(e, ModelError::Io { .. }));
    assert_one_line(&e, &t.name(), "No such file");
}

#[test]
fn truncated_file() {
    let t = Temp::new("truncated");
    DeqLayer::demo(8, 3).save(&t.0).unwrap();
    let bytes = std::fs::read(&t.0).unwrap();
    std::fs::write(&t.0, &bytes[..bytes.len() / 2]).unwrap();
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert!(matches!(e, ModelError::NotSafetensors { .. }), "{e}");
    assert_one_line(&e, &t.name(), "not a valid safetensors file");
    // Every shorter prefix fails cleanly too (no panic).
    for cut in (0..bytes.len()).step_by(7) {
        std::fs::write(&t.0, &bytes[..cut]).unwrap();
        assert!(DeqLayer::<f32>::load(&t.0).is_err());
    }
}

#[test]
fn text_file() {
    let t = Temp::new("text");
    std::fs::write(&t.0, "W = [[1, 2], [3, 4]]\nthis is not a safetensors file\n").unwrap();
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "not a valid safetensors file");
}

#[test]
fn huge_declared_shape() {
    let t = Temp::new("huge");
    let header = r#"{"W":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 16]);
    std::fs::write(&t.0, bytes).unwrap();
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "not a valid safetensors file");
}

#[test]
fn missing_tensor_u() {
    let t = Temp::new("missing_u");
    write_layer(&t.0, Some(("U", Dtype::F32, vec![], vec![])), None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "no tensor named \"U\"");
}

#[test]
fn wrong_shape_of_w() {
    let t = Temp::new("wrong_shape");
    write_layer(&t.0, Some(("W", Dtype::F32, vec![4, 5], f32_bytes(&data(20, 1)))), None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"W\" has shape [4, 5], expected [4, 4]");
}

#[test]
fn wrong_dtype() {
    let t = Temp::new("wrong_dtype");
    let w: Vec<u8> = (0..16).flat_map(|i| (i as f64 * 0.1).to_le_bytes()).collect();
    // W in F64 beside an F32 U and b: a file of mixed dtypes, whichever type loads it.
    write_layer(&t.0, Some(("W", Dtype::F64, vec![4, 4], w)), None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"U\" is F32 but tensor \"W\" is F64");
    assert!(matches!(e, ModelError::MixedDtype { .. }), "{e}");
    assert_eq!(solver_host::model::AnyLayer::load(&t.0).unwrap_err(), e);
    // A dtype the layer never runs in.
    write_layer(&t.0, Some(("W", Dtype::F16, vec![4, 4], vec![0; 32])), None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"W\" has dtype F16, expected F32 or F64");
}

#[test]
fn nan_in_w() {
    let t = Temp::new("nan");
    let mut w = data(16, 1);
    w[6] = f32::NAN;
    write_layer(&t.0, Some(("W", Dtype::F32, vec![4, 4], f32_bytes(&w))), None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"W\" holds a non-finite value (NaN or infinity) at flat index 6");
}

#[test]
fn bad_activation_metadata() {
    let t = Temp::new("bad_activation");
    write_layer(&t.0, None, Some(("activation", "gelu")));
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "metadata \"activation\" is \"gelu\", expected \"tanh\" or \"relu\"");
    write_layer(&t.0, None, Some(("activation", "relu")));
    assert_eq!(DeqLayer::<f32>::load(&t.0).unwrap().activation(), Activation::Relu);
    write_layer(&t.0, None, None);
    assert_eq!(DeqLayer::<f32>::load(&t.0).unwrap().activation(), Activation::Tanh);
}

#[test]
fn input_width_mismatch() {
    let t = Temp::new("input_width");
    write_raw(&t.0, &[("x", Dtype::F32, vec![2, 5], f32_bytes(&data(10, 1)))], None);
    let e = InputBatch::load(&t.0, &DeqLayer::demo(6, 4)).unwrap_err();
    assert_one_line(&e, &t.name(), "input width 5 does not match the model's 4");
}

#[test]
fn input_rank_and_values() {
    let l = DeqLayer::demo(6, 4);
    let t = Temp::new("input_rank");
    write_raw(&t.0, &[("x", Dtype::F32, vec![8], f32_bytes(&data(8, 1)))], None);
    let e = InputBatch::load(&t.0, &l).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"x\" has shape [8], expected [B, 4] or [B, L, 4]");
    write_raw(&t.0, &[("x", Dtype::F32, vec![0, 4], vec![])], None);
    let e = InputBatch::load(&t.0, &l).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"x\" is empty");
    let mut x = data(8, 1);
    x[5] = f32::NEG_INFINITY;
    write_raw(&t.0, &[("x", Dtype::F32, vec![2, 4], f32_bytes(&x))], None);
    let e = InputBatch::load(&t.0, &l).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"x\" holds a non-finite value (NaN or infinity) at flat index 5");
    write_raw(&t.0, &[("y", Dtype::F32, vec![2, 4], f32_bytes(&data(8, 1)))], None);
    let e = InputBatch::load(&t.0, &l).unwrap_err();
    assert_one_line(&e, &t.name(), "no tensor named \"x\"");
}

#[test]
fn z0_of_wrong_shape() {
    let t = Temp::new("z0_shape");
    write_raw(
        &t.0,
        &[
            ("x", Dtype::F32, vec![2, 3, 4], f32_bytes(&data(24, 1))),
            ("z0", Dtype::F32, vec![2, 6], f32_bytes(&data(12, 2))),
        ],
        None,
    );
    let e = InputBatch::load(&t.0, &DeqLayer::demo(6, 4)).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"z0\" has shape [2, 6], expected [2, 3, 6]");
}

/// The layer's vectorisable tanh against f64 on a dense grid: absolute error below
/// 5e-7 everywhere (std's f32 tanh: 1e-7), small relative error near 0, exact
/// saturation, NaN kept.
#[test]
fn rational_tanh_matches_f64() {
    use solver_host::model::tanh_rational;
    let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
    for i in -1_200_000..=1_200_000 {
        let x = i as f32 * 1e-5;
        let (got, want) = (f64::from(tanh_rational(x)), f64::from(x).tanh());
        worst_abs = worst_abs.max((got - want).abs());
        if x != 0.0 {
            worst_rel = worst_rel.max(((got - want) / want).abs());
        }
    }
    assert!(worst_abs < 5e-7, "worst absolute error {worst_abs:e}");
    assert!(worst_rel < 1e-6, "worst relative error {worst_rel:e}");
    assert_eq!(tanh_rational(1e-30), 1e-30);
    assert_eq!((tanh_rational(50.0), tanh_rational(-50.0)), (1.0, -1.0));
    assert_eq!((tanh_rational(f32::INFINITY), tanh_rational(f32::NEG_INFINITY)), (1.0, -1.0));
    assert!(tanh_rational(f32::NAN).is_nan());
    eprintln!("worst abs {worst_abs:e}, worst rel {worst_rel:e}");
}

// ---- the classifier readout ----

/// A tensor to write raw: name, dtype, shape, bytes.
type RawTensor<'a> = (&'a str, Dtype, Vec<usize>, Vec<u8>);

/// A layer file with `h = 4`, `p = 3` and a readout of `k = 2` classes, with
/// `readout`'s entries replacing (or, with no bytes, removing) `R` or `c`.
fn write_classifier(path: &Path, readout: &[RawTensor<'_>]) {
    let mut tensors = vec![
        ("W", Dtype::F32, vec![4, 4], f32_bytes(&data(16, 1))),
        ("U", Dtype::F32, vec![4, 3], f32_bytes(&data(12, 2))),
        ("b", Dtype::F32, vec![4], f32_bytes(&data(4, 3))),
        ("R", Dtype::F32, vec![2, 4], f32_bytes(&data(8, 4))),
        ("c", Dtype::F32, vec![2], f32_bytes(&data(2, 5))),
    ];
    for r in readout {
        tensors.retain(|t| t.0 != r.0);
        if !r.3.is_empty() {
            tensors.push(r.clone());
        }
    }
    write_raw(path, &tensors, None);
}

#[test]
fn readout_round_trip_and_old_files() {
    let t = Temp::new("readout_round_trip");
    let readout = Readout::new(3, 23, data(69, 31), data(3, 32)).unwrap();
    let l = layer(23, 9, Activation::Tanh, 21).with_readout(readout.clone()).unwrap();
    l.save(&t.0).unwrap();
    let back = DeqLayer::<f32>::load(&t.0).unwrap();
    assert_eq!(back.readout(), Some(&readout));
    // A file without R and c (every file before the readout) loads as a plain layer.
    layer(23, 9, Activation::Tanh, 21).save(&t.0).unwrap();
    assert_eq!(DeqLayer::<f32>::load(&t.0).unwrap().readout(), None);
    write_layer(&t.0, None, None);
    assert_eq!(DeqLayer::<f32>::load(&t.0).unwrap().readout(), None);
    // A readout of another width is refused.
    assert!(matches!(
        layer(4, 3, Activation::Tanh, 1).with_readout(readout),
        Err(ModelError::WrongLength { ref name, .. }) if name == "R"
    ));
}

#[test]
fn bad_readouts_are_one_line_errors() {
    let t = Temp::new("bad_readout");
    let cases: Vec<(Vec<RawTensor<'_>>, &str)> = vec![
        (vec![("c", Dtype::F32, vec![], vec![])], "no tensor named \"c\""),
        (vec![("R", Dtype::F32, vec![], vec![])], "no tensor named \"R\""),
        (
            vec![("R", Dtype::F32, vec![2, 5], f32_bytes(&data(10, 4)))],
            "tensor \"R\" has shape [2, 5], expected [k, 4]",
        ),
        (
            vec![("R", Dtype::F32, vec![8], f32_bytes(&data(8, 4)))],
            "tensor \"R\" has shape [8], expected [k, 4]",
        ),
        (
            vec![("c", Dtype::F32, vec![3], f32_bytes(&data(3, 5)))],
            "tensor \"c\" has shape [3], expected [2]",
        ),
        (
            vec![("c", Dtype::F32, vec![1, 2], f32_bytes(&data(2, 5)))],
            "tensor \"c\" has shape [1, 2], expected [2]",
        ),
        (
            vec![("R", Dtype::F64, vec![2, 4], (0..8).flat_map(|i| f64::from(i).to_le_bytes()).collect())],
            "tensor \"R\" is F64 but tensor \"W\" is F32",
        ),
    ];
    for (replace, problem) in cases {
        write_classifier(&t.0, &replace);
        let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
        assert_one_line(&e, &t.name(), problem);
    }
    let mut r = data(8, 4);
    r[5] = f32::INFINITY;
    write_classifier(&t.0, &[("R", Dtype::F32, vec![2, 4], f32_bytes(&r))]);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "tensor \"R\" holds a non-finite value (NaN or infinity) at flat index 5");
    // An empty readout (k = 0) is refused, not loaded as a classifier of nothing.
    let empty = || -> Vec<u8> { Vec::new() };
    let raw = vec![
        ("W", Dtype::F32, vec![4, 4], f32_bytes(&data(16, 1))),
        ("U", Dtype::F32, vec![4, 3], f32_bytes(&data(12, 2))),
        ("b", Dtype::F32, vec![4], f32_bytes(&data(4, 3))),
        ("R", Dtype::F32, vec![0, 4], empty()),
        ("c", Dtype::F32, vec![0], empty()),
    ];
    write_raw(&t.0, &raw, None);
    let e = DeqLayer::<f32>::load(&t.0).unwrap_err();
    assert_one_line(&e, &t.name(), "\"R\"");
    write_classifier(&t.0, &[]);
    assert_eq!(DeqLayer::<f32>::load(&t.0).unwrap().readout().map(Readout::classes), Some(2));
}

#[test]
fn readout_matches_f64_and_classes_break_ties_first() {
    let (k, h, rows) = (7, 13, 5);
    let readout = Readout::new(k, h, data(k * h, 41), data(k, 42)).unwrap();
    let z = data(rows * h, 43);
    let p = readout.predict(&z);
    for r in 0..rows {
        let want: Vec<f64> = (0..k)
            .map(|i| {
                let dot: f64 =
                    (0..h).map(|j| f64::from(readout.r()[i * h + j]) * f64::from(z[r * h + j])).sum();
                f64::from(readout.c()[i]) + dot
            })
            .collect();
        let scale: Vec<f64> = vec![h as f64; k];
        assert_close(&p.logits[r * k..(r + 1) * k], &want, &scale, "logits");
        let best = (0..k).fold(0, |b, i| if want[i] > want[b] { i } else { b });
        assert_eq!(p.class[r], best as i64);
    }
    assert_eq!(Readout::class(&[1.0, 3.0, 3.0, -1.0]), Some(1));
    assert_eq!(Readout::class(&[1.0, f32::NAN]), None);
    assert_eq!(Readout::margin(&[1.0, 3.0, 2.5]), 0.5);
    assert_eq!(Readout::margin(&[3.0, 3.0]), 0.0);
    // A non-finite state gives class −1 and no accuracy.
    let mut bad = z.clone();
    bad[h + 2] = f32::NAN;
    let q = readout.predict(&bad);
    assert_eq!(q.class[1], -1);
    assert!(q.class.iter().enumerate().all(|(i, &c)| (i == 1) == (c == -1)));
    assert_eq!(q.accuracy(&[q.class[0], 0, q.class[2], q.class[3], -2]), 0.6);
}

#[test]
fn int8_rows_are_within_half_a_step_and_the_dequantized_layer_keeps_the_rest() {
    use solver_host::model::int8::{Int8Layer, Int8Matrix};
    let (rows, cols) = (9, 17);
    let mut a: Vec<f32> = data(rows * cols, 51).iter().map(|v| v * 3.0).collect();
    a[2 * cols..3 * cols].iter_mut().for_each(|v| *v = 0.0); // a zero row
    let q = Int8Matrix::quantize(&a, rows, cols);
    let back = q.dequantized();
    for i in 0..rows {
        let row = &a[i * cols..(i + 1) * cols];
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert_eq!(q.scale()[i], max / 127.0);
        assert!(q.q()[i * cols..(i + 1) * cols].iter().all(|&v| v != i8::MIN));
        for (j, (&x, &y)) in row.iter().zip(&back[i * cols..(i + 1) * cols]).enumerate() {
            assert!((x - y).abs() <= 0.5 * q.scale()[i] * (1.0 + 1e-6), "({i}, {j}): {x} vs {y}");
        }
    }
    assert!(back[2 * cols..3 * cols].iter().all(|&v| v == 0.0));
    assert_eq!(q.bytes(), rows * cols + 4 * rows);

    let l = layer(6, 4, Activation::Relu, 3)
        .with_readout(Readout::new(3, 6, data(18, 4), data(3, 5)).unwrap())
        .unwrap();
    let i8l = Int8Layer::quantize(&l);
    let dq = i8l.dequantized(&l).unwrap();
    assert_eq!((dq.hidden(), dq.input_width(), dq.activation(), dq.b()), (6, 4, Activation::Relu, l.b()));
    assert_eq!(dq.w(), i8l.w.dequantized().as_slice());
    assert_eq!(dq.u(), i8l.u.dequantized().as_slice());
    assert_eq!(dq.readout().unwrap().r(), i8l.r.as_ref().unwrap().dequantized().as_slice());
    assert_eq!(dq.readout().unwrap().c(), l.readout().unwrap().c());
    assert_eq!(i8l.bytes(&l), (36 + 4 * 6) + (24 + 4 * 6) + 4 * 6 + (18 + 4 * 3 + 4 * 3));
}

/// A NaN in `W z + U x + b` stays NaN through either activation (relu's `max(0)` turned
/// it into 0 and hid it from the solver).
#[test]
fn activations_keep_nan() {
    for act in [Activation::Tanh, Activation::Relu] {
        let l = layer(8, 3, act, 4);
        let (z, mut c) = (vec![0.0f32; 16], vec![0.0f32; 16]);
        c[3] = f32::NAN;
        c[12] = f32::INFINITY - f32::INFINITY;
        let mut out = vec![0.0f32; 16];
        l.apply(&z, &c, &mut out);
        assert!(out[3].is_nan() && out[12].is_nan(), "{act}: {out:?}");
        assert!(out.iter().enumerate().all(|(i, v)| i == 3 || i == 12 || v.is_finite()), "{act}");
    }
    assert!(solver_host::model::relu(f32::NAN).is_nan());
    assert_eq!(solver_host::model::relu(-2.0), 0.0);
}

/// Each row of `apply` and `injection` is bit for bit the same computed alone, in any
/// group of rows, at any offset (widths that are and are not multiples of the kernel's
/// 16 lanes and 4-row blocks).
#[test]
fn products_do_not_depend_on_the_grouping_of_rows() {
    for (h, p, rows) in [(100, 24, 11), (64, 16, 9), (7, 3, 6), (256, 64, 13)] {
        let l = layer(h, p, Activation::Tanh, 9);
        let x = data(rows * p, 10);
        let z = data(rows * h, 11);
        let mut c_all = vec![0.0f32; rows * h];
        l.injection(&x, &mut c_all);
        let mut all = vec![0.0f32; rows * h];
        l.apply(&z, &c_all, &mut all);
        for split in [1, 2, 3, 5] {
            for (k, (zs, xs)) in z.chunks(split * h).zip(x.chunks(split * p)).enumerate() {
                let mut c = vec![0.0f32; zs.len()];
                l.injection(xs, &mut c);
                let mut out = vec![0.0f32; zs.len()];
                l.apply(zs, &c, &mut out);
                let at = k * split * h;
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&c), bits(&c_all[at..at + zs.len()]), "h {h} split {split} group {k}");
                assert_eq!(bits(&out), bits(&all[at..at + zs.len()]), "h {h} split {split} group {k}");
            }
        }
    }
}

/// A backend of no samples is an empty batch, not one "too large for this machine".
#[test]
fn layer_backend_of_no_samples_is_empty() {
    let l = layer(4, 2, Activation::Tanh, 1);
    let err = solver_host::LayerBackend::new(&l, &[], 0, 1).err().unwrap();
    assert!(matches!(err, ModelError::Empty { .. }), "{err}");
    assert!(!err.to_string().contains("too large"), "{err}");
    let err = InputBatch::<f32> { shape: vec![0, 2], x: vec![], z0: Some(vec![]), labels: None }
        .to_bytes(Path::new("x.st"))
        .unwrap_err();
    assert_eq!(err.to_string(), "x.st: tensor \"x\" is empty");
}

/// Messages are one line however their parts are spelled: control characters from a
/// path or a parser's message are escaped.
#[test]
fn messages_escape_control_characters() {
    let t = Temp(std::env::temp_dir().join(format!("deq-model-{}-a\nb\u{1b}[2J", std::process::id())));
    let header = br#"{"W":{"dtype":"F\n3","shape":[1],"data_offsets":[0,4]}}"#;
    std::fs::write(&t.0, [&(header.len() as u64).to_le_bytes()[..], header, &[0; 4]].concat()).unwrap();
    let err = DeqLayer::<f32>::load(&t.0).unwrap_err().to_string();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(!err.chars().any(char::is_control), "{err:?}");
    assert!(err.contains("a\\nb\\u{1b}[2J"), "{err}");
    assert_eq!(solver_host::model::escape_controls("a\tb\u{7}"), "a\\tb\\u{7}");
}
