//! Run-time-sized solvers agree with the const-generic ones, batches agree with
//! sequential solves whatever the thread count, and bad sizes are errors.

use deq_problems::{FixedPointProblem, TanhLayer, linalg};
use solver_core::{Anderson, Broyden, Options, Picard, Status};
use solver_host::{BatchError, DynAnderson, DynBroyden, DynPicard, SizeError, Solver, solve_batch};

const N: usize = 64;

fn layer() -> TanhLayer {
    TanhLayer::new(N, 0.9, 7)
}

#[test]
fn dyn_solvers_match_the_const_generic_ones_exactly() {
    let p = layer();
    let opts = Options::DEFAULT;
    let f = |x: &[f32; N], o: &mut [f32; N]| p.f(x, o);
    let mut fd = |x: &[f32], o: &mut [f32]| p.f(x, o);

    let mut z1 = [0.0f32; N];
    let r1 = Broyden::<N, 8>::new().solve(f, &mut z1, &opts);
    let mut z2 = vec![0.0f32; N];
    let r2 = DynBroyden::<f32>::with_sizes(N, 8).unwrap().solve(&mut fd, &mut z2, &opts).unwrap();
    assert_eq!((r1, z1.to_vec()), (r2, z2));

    let mut z1 = [0.0f32; N];
    let r1 = Anderson::<N, 5>::new().solve(f, &mut z1, &opts);
    let mut z2 = vec![0.0f32; N];
    let r2 = DynAnderson::<f32>::with_sizes(N, 5).unwrap().solve(&mut fd, &mut z2, &opts).unwrap();
    assert_eq!((r1, z1.to_vec()), (r2, z2));

    let mut z1 = [0.0f32; N];
    let r1 = Picard::<N>::new().solve(f, &mut z1, &opts);
    let mut z2 = vec![0.0f32; N];
    let r2 = DynPicard::<f32>::with_sizes(N).unwrap().solve(&mut fd, &mut z2, &opts).unwrap();
    assert_eq!((r1, z1.to_vec()), (r2, z2));
}

#[test]
fn memory_is_the_documented_size() {
    assert_eq!(DynBroyden::<f32>::with_sizes(100, 8).unwrap().memory_bytes(), 4 * 100 * (2 * 8 + 5));
    assert_eq!(
        DynAnderson::<f32>::with_sizes(100, 5).unwrap().memory_bytes(),
        4 * 100 * (2 * 5 + 4) + 4 * (2 * 25 + 5)
    );
    assert_eq!(DynPicard::<f32>::with_sizes(100).unwrap().memory_bytes(), 8 * 100);
    assert_eq!(DynBroyden::<f64>::with_sizes(100, 8).unwrap().memory_bytes(), 8 * 100 * (2 * 8 + 5));
    // The same buffers as the const-generic form, which also holds its scalars.
    let buffers = DynBroyden::<f32>::with_sizes(32, 8).unwrap().memory_bytes();
    let scalars = Broyden::<32, 8>::FOOTPRINT - buffers;
    assert!(scalars > 0 && scalars <= core::mem::size_of::<solver_core::BroydenInner<()>>(), "{scalars}");
}

/// Sample `b`'s map: the layer with its injection shifted by `b` (a batch of inputs).
fn sample_map(p: &TanhLayer, b: usize, x: &[f32], out: &mut [f32]) {
    p.f(x, out);
    // tanh(W z + c + s_b) = tanh(atanh(f(z)) + s_b): shift each sample's input.
    let s = 0.02 * b as f32;
    for o in out.iter_mut() {
        *o = (o.clamp(-0.999_999, 0.999_999).atanh() + s).tanh();
    }
}

#[test]
fn batch_matches_sequential_solves_for_any_thread_count() {
    let p = layer();
    let batch = 48;
    let opts = Options::DEFAULT;
    // Sequential reference.
    let mut seq = vec![0.0f32; batch * N];
    let mut seq_reports = Vec::new();
    let mut s = DynBroyden::<f32>::with_sizes(N, 8).unwrap();
    for (b, zb) in seq.chunks_mut(N).enumerate() {
        seq_reports.push(s.solve(&mut |x, o| sample_map(&p, b, x, o), zb, &opts).unwrap());
    }
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut z = vec![0.0f32; batch * N];
        let reports = pool
            .install(|| {
                solve_batch(
                    || DynBroyden::<f32>::with_sizes(N, 8).unwrap(),
                    |b, x, o| sample_map(&p, b, x, o),
                    &mut z,
                    N,
                    &opts,
                )
            })
            .unwrap();
        assert_eq!(z, seq, "{threads} threads");
        let reports: Vec<_> = reports.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(reports, seq_reports, "{threads} threads");
    }
    // Every sample converged, to its own fixed point: check one independently.
    assert!(seq_reports.iter().all(|r| r.status == Status::Converged));
    let last = &seq[(batch - 1) * N..];
    let mut f = vec![0.0f32; N];
    sample_map(&p, batch - 1, last, &mut f);
    let res: Vec<f64> = f.iter().zip(last).map(|(a, b)| f64::from(a - b)).collect();
    assert!(linalg::norm2(&res) < 1e-5);
}

#[test]
fn each_sample_has_its_own_status() {
    let p = layer();
    let opts = Options::DEFAULT;
    let mut z = vec![0.0f32; 4 * N];
    // Sample 2 returns NaN; the others are unaffected.
    let reports = solve_batch(
        || DynAnderson::<f32>::with_sizes(N, 5).unwrap(),
        |b, x, o| {
            sample_map(&p, b, x, o);
            if b == 2 {
                o[0] = f32::NAN;
            }
        },
        &mut z,
        N,
        &opts,
    )
    .unwrap();
    let statuses: Vec<Status> = reports.into_iter().map(|r| r.unwrap().status).collect();
    assert_eq!(statuses, [Status::Converged, Status::Converged, Status::NonFinite, Status::Converged]);
    assert!(z.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_sizes_are_errors() {
    assert_eq!(DynBroyden::<f32>::with_sizes(0, 8).unwrap_err(), SizeError::ZeroDimension);
    assert_eq!(DynBroyden::<f32>::with_sizes(8, 0).unwrap_err(), SizeError::ZeroHistory);
    assert_eq!(DynAnderson::<f32>::with_sizes(8, 0).unwrap_err(), SizeError::ZeroHistory);
    assert_eq!(DynPicard::<f32>::with_sizes(0).unwrap_err(), SizeError::ZeroDimension);
    assert_eq!(DynBroyden::<f32>::with_sizes(usize::MAX / 2, 8).unwrap_err(), SizeError::TooLarge);
    assert_eq!(SizeError::ZeroHistory.to_string(), "the history depth must be at least 1");

    let mut s = DynPicard::<f32>::with_sizes(8).unwrap();
    let e = s.solve(&mut |_, _| {}, &mut [0.0; 7], &Options::DEFAULT).unwrap_err();
    assert_eq!((e.what, e.expected, e.got), ("z", 8, 7));

    let mut z = vec![0.0f32; 10];
    let e =
        solve_batch(|| DynPicard::<f32>::with_sizes(4).unwrap(), |_, _, _| {}, &mut z, 4, &Options::DEFAULT)
            .unwrap_err();
    assert_eq!(e, BatchError { len: 10, dim: 4 });
}

/// Sizes that pass the overflow checks but not the allocator are errors, not aborts.
#[test]
fn sizes_beyond_the_allocator_are_errors() {
    assert_eq!(DynAnderson::<f32>::with_sizes(4, 1 << 40).err(), Some(SizeError::TooLarge));
    assert_eq!(DynBroyden::<f32>::with_sizes(1 << 41, 4).err(), Some(SizeError::TooLarge));
    assert_eq!(DynPicard::<f32>::with_sizes(1 << 42).err(), Some(SizeError::TooLarge));
    // The footprints are computed without allocating.
    assert_eq!(DynBroyden::<f32>::bytes_for(256, 1_000_000_000), Some(4 * 256 * 2_000_000_005));
    assert_eq!(DynAnderson::<f32>::bytes_for(10, 3), Some(4 * 10 * 10 + 4 * 21));
    assert_eq!(DynAnderson::<f32>::bytes_for(10, usize::MAX), None);
    assert_eq!(DynPicard::<f32>::bytes_for(7), Some(56));
    for (n, m) in [(5, 1), (64, 8), (3, 20)] {
        assert_eq!(
            DynBroyden::<f32>::bytes_for(n, m),
            Some(DynBroyden::<f32>::with_sizes(n, m).unwrap().memory_bytes())
        );
        assert_eq!(
            DynAnderson::<f32>::bytes_for(n, m),
            Some(DynAnderson::<f32>::with_sizes(n, m).unwrap().memory_bytes())
        );
    }
}
