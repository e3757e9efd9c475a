//! The DEQ layer in f64 (`DeqLayer<f64>`): the products and the activation against a
//! plain f64 loop, rows bit for bit the same alone or in a batch (as in f32), F64 files
//! read back bit for bit, and the dtype rules: one dtype per model file, inputs of the
//! model's dtype, rejected rather than converted.
#![cfg(feature = "layer")]

use std::path::{Path, PathBuf};

use deq_problems::rng::SplitMix64;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use solver_host::model::{
    Activation, AnyLayer, DeqLayer, Float, FloatType, InputBatch, ModelError, Readout, write_solution,
};
use solver_host::{BatchBackend, LayerBackend};

/// `len` values in `[-1, 1)` with all 53 bits random: none is an f32, so a product
/// rounded through f32 anywhere would be off by about 1e-8.
fn data(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.uniform_in(-1.0, 1.0)).collect()
}

fn layer(h: usize, p: usize, act: Activation, seed: u64) -> DeqLayer<f64> {
    let w = data(h * h, seed).iter().map(|v| v / (h as f64).sqrt()).collect();
    DeqLayer::new(h, p, w, data(h * p, seed + 1), data(h, seed + 2), act).unwrap()
}

/// A temporary file path unique to this process and test, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(test: &str) -> Self {
        Temp(std::env::temp_dir().join(format!("deq-model-f64-{}-{test}.safetensors", std::process::id())))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// `injection` then `apply` give `act(W z + U x + b)` as a plain f64 loop computes it
/// (the terms summed in another order: `W z` first, then `U x`, then `b`), to 1e-15 of
/// the magnitude of the summed terms, for tanh and relu, at widths that are and are not
/// multiples of the kernel's 16 lanes and 2-row f64 tiles.
#[test]
fn f64_layer_matches_a_plain_f64_loop() {
    let mut worst = 0.0f64;
    for act in [Activation::Tanh, Activation::Relu] {
        for (h, p, rows) in [(1, 1, 1), (37, 11, 7), (130, 20, 9), (64, 8, 1)] {
            let l = layer(h, p, act, 7);
            let (x, z) = (data(rows * p, 11), data(rows * h, 12));
            let mut c = vec![f64::NAN; rows * h];
            l.injection(&x, &mut c);
            let mut out = vec![f64::NAN; rows * h];
            l.apply(&z, &c, &mut out);
            for r in 0..rows {
                for i in 0..h {
                    let wz = (0..h).map(|j| l.w()[i * h + j] * z[r * h + j]);
                    let ux = (0..p).map(|j| l.u()[i * p + j] * x[r * p + j]);
                    let terms: Vec<f64> = wz.chain(ux).chain([l.b()[i]]).collect();
                    let pre: f64 = terms.iter().sum();
                    let scale: f64 = terms.iter().map(|t| t.abs()).sum();
                    let want = match act {
                        Activation::Tanh => pre.tanh(),
                        Activation::Relu => pre.max(0.0),
                    };
                    let got = out[r * h + i];
                    let err = (got - want).abs() / scale.max(1e-300);
                    assert!(err <= 1e-15, "{act} h={h} row {r} out {i}: {got:e} vs {want:e} (error {err:e})");
                    worst = worst.max(err);
                }
            }
        }
    }
    eprintln!("worst error relative to the terms' magnitude: {worst:e}");
}

/// `f` of a row is bit for bit the same alone, in a batch, at any offset of any group of
/// rows, in f64 as in f32 (the f32 layer of the same weights rounded), and through the
/// lockstep backend with any pattern of stopped samples.
#[test]
fn rows_are_the_same_alone_or_in_a_batch_in_f64_and_f32() {
    fn check<T: Float>(l: &DeqLayer<T>, x: &[T], z: &[T], rows: usize) {
        let (h, p) = (l.hidden(), l.input_width());
        let mut c_all = vec![T::ZERO; rows * h];
        l.injection(x, &mut c_all);
        let mut all = vec![T::ZERO; rows * h];
        l.apply(z, &c_all, &mut all);
        for split in [1, 2, 3, 5] {
            for (k, (zs, xs)) in z.chunks(split * h).zip(x.chunks(split * p)).enumerate() {
                let mut c = vec![T::ZERO; zs.len()];
                l.injection(xs, &mut c);
                let mut out = vec![T::ZERO; zs.len()];
                l.apply(zs, &c, &mut out);
                let at = k * split * h;
                assert_eq!(bits(&c), bits(&c_all[at..at + zs.len()]), "{} h {h} split {split}", T::NAME);
                assert_eq!(bits(&out), bits(&all[at..at + zs.len()]), "{} h {h} split {split}", T::NAME);
            }
        }
        // The backend: samples of 1 token, every third one stopped.
        let backend = LayerBackend::new(l, x, rows, 1).unwrap();
        let active: Vec<bool> = (0..rows).map(|s| s % 3 != 1).collect();
        let mut out = vec![T::NAN; rows * h];
        backend.eval(0, &active, z, &mut out);
        for (s, &on) in active.iter().enumerate() {
            let row = s * h..(s + 1) * h;
            if on {
                assert_eq!(bits(&out[row.clone()]), bits(&all[row]), "{} backend sample {s}", T::NAME);
            } else {
                assert!(out[row].iter().all(|v| v.is_nan()), "a stopped sample was written");
            }
        }
        assert_eq!(backend.memory_bytes(), T::BYTES * rows * h);
    }
    for (h, p, rows) in [(100, 24, 11), (64, 16, 9), (7, 3, 6), (256, 64, 13)] {
        let l = layer(h, p, Activation::Tanh, 9);
        let (x, z) = (data(rows * p, 10), data(rows * h, 11));
        check(&l, &x, &z, rows);
        let narrow = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
        let l32 = DeqLayer::new(h, p, narrow(l.w()), narrow(l.u()), narrow(l.b()), Activation::Tanh).unwrap();
        check(&l32, &narrow(&x), &narrow(&z), rows);
    }
}

/// An F64 model (with a readout) and an F64 input batch are written as F64 tensors and
/// read back bit for bit, by `DeqLayer::<f64>::load` and by `AnyLayer::load`; the
/// solution file holds `z` and `logits` in F64.
#[test]
fn f64_files_round_trip_bit_for_bit() {
    let t = Temp::new("round_trip");
    let readout = Readout::new(3, 23, data(69, 31), data(3, 32)).unwrap();
    let l = layer(23, 9, Activation::Relu, 21).with_readout(readout).unwrap();
    assert_eq!(l.weight_bytes(), 8 * (23 * 23 + 23 * 9 + 23));
    l.save(&t.0).unwrap();
    let bytes = std::fs::read(&t.0).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    for name in ["W", "U", "b", "R", "c"] {
        assert_eq!(st.tensor(name).unwrap().dtype(), Dtype::F64, "{name}");
    }
    let back = DeqLayer::<f64>::load(&t.0).unwrap();
    assert_eq!((back.hidden(), back.input_width(), back.activation()), (23, 9, Activation::Relu));
    assert_eq!((bits(back.w()), bits(back.u()), bits(back.b())), (bits(l.w()), bits(l.u()), bits(l.b())));
    let (r, r0) = (back.readout().unwrap(), l.readout().unwrap());
    assert_eq!((bits(r.r()), bits(r.c())), (bits(r0.r()), bits(r0.c())));
    let any = AnyLayer::load(&t.0).unwrap();
    assert_eq!(any.dtype(), FloatType::F64);
    let AnyLayer::F64(any) = any else { unreachable!() };
    assert_eq!(bits(any.w()), bits(l.w()));

    let x = Temp::new("round_trip_x");
    let batch = InputBatch {
        shape: vec![2, 3, 9],
        x: data(54, 5),
        z0: Some(data(2 * 3 * 23, 6)),
        labels: Some(vec![0, 1, 2, 2, 1, 0]),
    };
    batch.save(&x.0).unwrap();
    let read = InputBatch::load(&x.0, &back).unwrap();
    assert_eq!((&read.shape, &read.labels), (&batch.shape, &batch.labels));
    assert_eq!(
        (bits(&read.x), bits(read.z0.as_ref().unwrap())),
        (bits(&batch.x), bits(batch.z0.as_ref().unwrap()))
    );

    let z = Temp::new("round_trip_z");
    let state = data(2 * 3 * 23, 7);
    let pred = back.readout().unwrap().predict(&state);
    write_solution(&z.0, &[2, 3, 23], &state, Some(&pred)).unwrap();
    let bytes = std::fs::read(&z.0).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let zt = st.tensor("z").unwrap();
    assert_eq!((zt.dtype(), zt.shape()), (Dtype::F64, &[2, 3, 23][..]));
    let zv: Vec<f64> = zt.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(bits(&zv), bits(&state));
    let logits = st.tensor("logits").unwrap();
    assert_eq!((logits.dtype(), logits.shape()), (Dtype::F64, &[2, 3, 3][..]));
    assert_eq!(st.tensor("class").unwrap().dtype(), Dtype::I64);
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
}

/// Writes tensors `(name, dtype, shape, bytes)`.
fn write_raw(path: &Path, tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(&str, TensorView<'_>)> =
        tensors.iter().map(|(n, d, s, b)| (*n, TensorView::new(*d, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// A model file of `h = 4`, `p = 3` (and a readout of 2 classes) whose tensors named in
/// `f32` are F32 and the others F64.
fn write_model(path: &Path, f32: &[&str]) {
    let tensor = |name: &'static str, shape: Vec<usize>, seed| {
        let v = data(shape.iter().product(), seed);
        if f32.contains(&name) {
            (name, Dtype::F32, shape, f32_bytes(&v))
        } else {
            (name, Dtype::F64, shape, f64_bytes(&v))
        }
    };
    let tensors = [
        tensor("W", vec![4, 4], 1),
        tensor("U", vec![4, 3], 2),
        tensor("b", vec![4], 3),
        tensor("R", vec![2, 4], 4),
        tensor("c", vec![2], 5),
    ];
    write_raw(path, &tensors);
}

/// Asserts that `e` is one line: `<file>: <problem>…`.
fn assert_message(e: &ModelError, path: &Path, problem: &str) {
    let msg = e.to_string();
    assert_eq!(msg.lines().count(), 1, "{msg:?}");
    let file = path.display().to_string();
    assert!(msg.starts_with(&format!("{file}: {problem}")), "{msg:?} is not \"{file}: {problem}…\"");
    assert!(msg.contains("nothing is converted"), "{msg}");
}

/// A model file mixing F32 and F64 is refused naming both tensors, whichever type
/// loads it; an F64 file is refused as an f32 layer (and the reverse); an input of the
/// other dtype than its model (`x`, or `z0` alone) is refused, not converted.
#[test]
fn mixed_and_mismatched_dtypes_are_one_line_errors() {
    let (m, x) = (Temp::new("mixed_m"), Temp::new("mixed_x"));
    for (f32, problem) in [
        (&["U"][..], "tensor \"U\" is F32 but tensor \"W\" is F64"),
        (&["c"][..], "tensor \"c\" is F32 but tensor \"W\" is F64"),
        (&["W", "U", "b", "R"][..], "tensor \"c\" is F64 but tensor \"W\" is F32"),
    ] {
        write_model(&m.0, f32);
        let e = AnyLayer::load(&m.0).unwrap_err();
        assert!(matches!(e, ModelError::MixedDtype { .. }), "{e}");
        assert_message(&e, &m.0, problem);
        assert_eq!(DeqLayer::<f64>::load(&m.0).unwrap_err(), e);
        assert_eq!(DeqLayer::<f32>::load(&m.0).unwrap_err(), e);
    }

    write_model(&m.0, &[]);
    let e = DeqLayer::<f32>::load(&m.0).unwrap_err();
    assert_message(&e, &m.0, "tensor \"W\" is F64 but the layer type requested is F32");
    let l64 = DeqLayer::<f64>::load(&m.0).unwrap();
    write_model(&m.0, &["W", "U", "b", "R", "c"]);
    let e = DeqLayer::<f64>::load(&m.0).unwrap_err();
    assert_message(&e, &m.0, "tensor \"W\" is F32 but the layer type requested is F64");
    let l32 = DeqLayer::<f32>::load(&m.0).unwrap();

    let (xv, zv) = (data(2 * 3, 6), data(2 * 4, 7));
    write_raw(&x.0, &[("x", Dtype::F32, vec![2, 3], f32_bytes(&xv))]);
    assert_message(
        &InputBatch::load(&x.0, &l64).unwrap_err(),
        &x.0,
        "tensor \"x\" is F32 but the model is F64",
    );
    InputBatch::load(&x.0, &l32).unwrap();
    write_raw(&x.0, &[("x", Dtype::F64, vec![2, 3], f64_bytes(&xv))]);
    assert_message(
        &InputBatch::load(&x.0, &l32).unwrap_err(),
        &x.0,
        "tensor \"x\" is F64 but the model is F32",
    );
    InputBatch::load(&x.0, &l64).unwrap();
    write_raw(
        &x.0,
        &[("x", Dtype::F64, vec![2, 3], f64_bytes(&xv)), ("z0", Dtype::F32, vec![2, 4], f32_bytes(&zv))],
    );
    assert_message(
        &InputBatch::load(&x.0, &l64).unwrap_err(),
        &x.0,
        "tensor \"z0\" is F32 but the model is F64",
    );
    // Neither float type at all.
    write_raw(&x.0, &[("x", Dtype::BF16, vec![2, 3], vec![0; 12])]);
    let e = InputBatch::load(&x.0, &l64).unwrap_err();
    assert_eq!(e.to_string().lines().count(), 1);
    assert!(e.to_string().contains("tensor \"x\" has dtype BF16, expected F32 or F64"), "{e}");
}
