//! Buffers are allocated once, at construction: a counting global allocator sees no
//! allocation during solves of thousands of iterations, for every run-time solver.

use deq_problems::counting_alloc::{CountingAllocator, allocations};
use solver_core::Options;
use solver_host::{DynAnderson, DynBroyden, DynPicard, HostSolver};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn solves_allocate_nothing() {
    let n = 300;
    let mut solvers: Vec<Box<dyn HostSolver>> = vec![
        Box::new(DynBroyden::new(n, 8).unwrap()),
        Box::new(DynAnderson::new(n, 5).unwrap()),
        Box::new(DynPicard::new(n).unwrap()),
    ];
    let mut z = vec![0.0f32; n];
    let mut f = |x: &[f32], out: &mut [f32]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (0.97 * x[(i + 13) % n] - 0.1 * x[i] + 0.001 * i as f32).tanh();
        }
    };
    // No convergence (tol 0), no stall test: every solve runs all 5000 iterations.
    let opts = Options { max_iters: 5000, tol_rel: 0.0, stall_iters: 0, ..Options::DEFAULT };
    for s in solvers.iter_mut() {
        z.fill(0.0);
        let before = allocations();
        let r = s.solve(&mut f, &mut z, &opts).unwrap();
        let after = allocations();
        assert_eq!(after - before, 0, "allocations during {r:?}");
        assert!(r.iterations >= 100, "{r:?}");
    }
}
