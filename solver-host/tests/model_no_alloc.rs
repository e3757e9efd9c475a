//! `DeqLayer::apply` runs inside the solve loop: after a warm-up call on the thread, it
//! allocates nothing, for a GEMV, a small batch and a DEQ-Transformer-sized state.

use deq_problems::counting_alloc::{CountingAllocator, thread_allocations};
use solver_host::model::{Activation, DeqLayer};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn apply_allocates_nothing() {
    for (h, rows) in [(256, 1), (256, 64), (700, 150), (37, 5)] {
        for act in [Activation::Tanh, Activation::Relu] {
            let demo = DeqLayer::demo(h, 3);
            let layer =
                DeqLayer::new(h, 3, demo.w().to_vec(), demo.u().to_vec(), demo.b().to_vec(), act).unwrap();
            let z = vec![0.25f32; rows * h];
            let c = vec![0.1f32; rows * h];
            let mut out = vec![0.0f32; rows * h];
            layer.apply(&z, &c, &mut out); // warm-up: thread-local buffers, if any
            let before = thread_allocations();
            for _ in 0..5 {
                layer.apply(&z, &c, &mut out);
            }
            let after = thread_allocations();
            assert_eq!(after - before, 0, "h={h} rows={rows} {act}");
        }
    }
}
