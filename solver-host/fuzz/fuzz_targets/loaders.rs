//! The model and input loaders on arbitrary bytes: `AnyLayer::from_bytes` (F32 or F64
//! models; the first byte even) or `InputBatch::from_bytes` for a small layer (odd: an
//! f32 layer when the first byte's second bit is clear, else the same layer in f64), on
//! the rest. Neither may panic, abort or allocate without bound, and every error is one
//! line with no control character; what loads must satisfy the layer's and the batch's
//! invariants.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use solver_host::model::{AnyLayer, DeqLayer, Float, InputBatch, ModelError};

fn check_message(e: &ModelError) {
    let msg = e.to_string();
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

fn check_layer<T: Float>(l: &DeqLayer<T>) {
    let (h, p) = (l.hidden(), l.input_width());
    assert!(h > 0 && p > 0);
    assert_eq!((l.w().len(), l.u().len(), l.b().len()), (h * h, h * p, h));
    assert!(l.w().iter().chain(l.u()).chain(l.b()).all(|v| v.is_finite()));
}

fn check_input<T: Float>(path: &Path, bytes: &[u8], layer: &DeqLayer<T>) {
    match InputBatch::from_bytes(path, bytes, layer) {
        Ok(b) => {
            assert!(b.samples() > 0 && b.tokens() > 0);
            assert_eq!(b.x.len(), b.samples() * b.tokens() * 2);
            if let Some(z0) = &b.z0 {
                assert_eq!(z0.len(), b.samples() * b.tokens() * 3);
            }
        }
        Err(e) => check_message(&e),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let path = Path::new("fuzz.safetensors");
    static LAYER: OnceLock<DeqLayer> = OnceLock::new();
    static LAYER64: OnceLock<DeqLayer<f64>> = OnceLock::new();
    if selector % 2 == 0 {
        match AnyLayer::from_bytes(path, bytes) {
            Ok(AnyLayer::F32(l)) => check_layer(&l),
            Ok(AnyLayer::F64(l)) => check_layer(&l),
            Err(e) => check_message(&e),
        }
    } else {
        let layer = LAYER.get_or_init(|| DeqLayer::demo(3, 2));
        if selector & 2 == 0 {
            check_input(path, bytes, layer);
        } else {
            let wide = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
            let layer64 = LAYER64.get_or_init(|| {
                DeqLayer::new(3, 2, wide(layer.w()), wide(layer.u()), wide(layer.b()), layer.activation())
                    .expect("the demonstration layer, widened")
            });
            check_input(path, bytes, layer64);
        }
    }
});
