//! The model and input loaders on arbitrary bytes: `DeqLayer::from_bytes` (the first
//! byte even) or `InputBatch::from_bytes` for a small layer (odd), on the rest. Neither
//! may panic, abort or allocate without bound, and every error is one line with no
//! control character; what loads must satisfy the layer's and the batch's invariants.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use solver_host::model::{DeqLayer, InputBatch, ModelError};

fn check_message(e: &ModelError) {
    let msg = e.to_string();
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let path = Path::new("fuzz.safetensors");
    static LAYER: OnceLock<DeqLayer> = OnceLock::new();
    if selector % 2 == 0 {
        match DeqLayer::from_bytes(path, bytes) {
            Ok(l) => {
                let (h, p) = (l.hidden(), l.input_width());
                assert!(h > 0 && p > 0);
                assert_eq!((l.w().len(), l.u().len(), l.b().len()), (h * h, h * p, h));
                assert!(l.w().iter().chain(l.u()).chain(l.b()).all(|v| v.is_finite()));
            }
            Err(e) => check_message(&e),
        }
    } else {
        let layer = LAYER.get_or_init(|| DeqLayer::demo(3, 2));
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
});
