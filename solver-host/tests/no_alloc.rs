//! Buffers are allocated once, at construction: a counting global allocator sees no
//! allocation during solves of thousands of iterations, for every run-time solver, and
//! a lockstep batch solve allocates the same (its per-sample reports) whether it runs
//! 30 rounds or 3000. One test function, so no other test allocates meanwhile.

use deq_problems::counting_alloc::{
    CountingAllocator, live_bytes, peak_live_bytes, reset_peak, thread_allocations,
};
use solver_core::Options;
use solver_host::{BatchBackend, DynAnderson, DynBroyden, DynPicard, Lockstep, Solver};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn solves_allocate_nothing() {
    let n = 300;
    let mut solvers: Vec<Box<dyn Solver>> = vec![
        Box::new(DynBroyden::with_sizes(n, 8).unwrap()),
        Box::new(DynAnderson::with_sizes(n, 5).unwrap()),
        Box::new(DynPicard::with_sizes(n).unwrap()),
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
        let before = thread_allocations();
        let r = s.solve(&mut f, &mut z, &opts).unwrap();
        let after = thread_allocations();
        assert_eq!(after - before, 0, "allocations during {r:?}");
        assert!(r.iterations >= 100, "{r:?}");
    }

    // Lockstep: the same map on 6 samples; its allocations must not depend on the
    // number of rounds.
    struct Ring(usize);
    impl BatchBackend for Ring {
        fn samples(&self) -> usize {
            6
        }
        fn dim(&self) -> usize {
            self.0
        }
        fn eval(&self, _first: usize, active: &[bool], z: &[f32], out: &mut [f32]) {
            let n = self.0;
            for ((&on, x), o) in active.iter().zip(z.chunks(n)).zip(out.chunks_mut(n)) {
                if on {
                    for (i, oi) in o.iter_mut().enumerate() {
                        *oi = (0.97 * x[(i + 13) % n] - 0.1 * x[i] + 0.001 * i as f32).tanh();
                    }
                }
            }
        }
    }
    // The same map evaluated in pieces of 100 outputs (the solvers' own vectors, no
    // batch buffers).
    struct RingPieces(usize);
    impl BatchBackend for RingPieces {
        fn samples(&self) -> usize {
            6
        }
        fn dim(&self) -> usize {
            self.0
        }
        fn eval(&self, _first: usize, _active: &[bool], _z: &[f32], _out: &mut [f32]) {
            unreachable!("a backend with pieces is evaluated piece by piece")
        }
        fn piece_len(&self) -> Option<usize> {
            Some(100)
        }
        fn eval_piece(&self, _sample: usize, piece: usize, x: &[f32], out: &mut [f32]) {
            let n = self.0;
            for (j, oi) in out.iter_mut().enumerate() {
                let i = piece * 100 + j;
                *oi = (0.97 * x[(i + 13) % n] - 0.1 * x[i] + 0.001 * i as f32).tanh();
            }
        }
    }
    // The same map as one call for the whole batch (the column split's shape: the
    // lockstep then runs the samples' steps in parallel).
    struct RingWhole(Ring);
    impl BatchBackend for RingWhole {
        fn samples(&self) -> usize {
            self.0.samples()
        }
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn eval(&self, first: usize, active: &[bool], z: &[f32], out: &mut [f32]) {
            self.0.eval(first, active, z, out);
        }
        fn split(&self) -> bool {
            false
        }
    }
    let mut lock = Lockstep::new(6, || DynBroyden::with_sizes(n, 8)).unwrap();
    let mut zb = vec![0.0f32; 6 * n];
    // (allocations on the pool's threads, peak live bytes above the start, live bytes
    // left over) of one solve. Allocations are counted per thread because the test
    // harness's own thread allocates now and then while a test runs.
    let mut measure = |pool: &rayon::ThreadPool, iters: u32, mode: &str| {
        zb.fill(0.0);
        let opts = Options { max_iters: iters, ..opts };
        let live = live_bytes();
        reset_peak();
        let (ring, ring_pieces, ring_whole) = (Ring(n), RingPieces(n), RingWhole(Ring(n)));
        let backend: &dyn BatchBackend = match mode {
            "pieces" => &ring_pieces,
            "whole" => &ring_whole,
            _ => &ring,
        };
        let (r, allocated) = pool.install(|| {
            let before = thread_allocations();
            let r = lock.solve(backend, &mut zb, &opts, &mut |_| {}).unwrap();
            (r, thread_allocations() - before)
        });
        let peak = peak_live_bytes() - live;
        assert!(r.iter().all(|r| r.iterations == iters), "{r:?}");
        drop(r);
        (allocated, peak, live_bytes() as isize - live as isize)
    };
    // On one thread (the pool's only worker runs the whole solve): exactly one
    // allocation, the reports, for 30 and for 3000 rounds.
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let two = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    for mode in ["groups", "pieces", "whole"] {
        measure(&one, 5, mode);
        let (short, long) = (measure(&one, 30, mode), measure(&one, 3000, mode));
        assert_eq!((short.0, long.0), (1, 1), "allocations per solve at 30 and 3000 rounds ({mode})");
        // On two threads, rayon's work stealing may allocate inside the pool, but
        // nothing accumulates over 3000 rounds: the peak stays within a few KiB of the
        // start and what is left over is no more than the harness's own noise.
        measure(&two, 5, mode);
        let long = measure(&two, 3000, mode);
        assert!(long.1 < 16 << 10, "peak {} bytes above the start ({mode})", long.1);
        assert!(long.2.abs() < 4 << 10, "{} bytes left over ({mode})", long.2);
    }
}
