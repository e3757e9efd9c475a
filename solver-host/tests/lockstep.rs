//! The lockstep batched solver: each sample's result is bit-identical to solving it
//! alone, stopped samples are never evaluated again, one sample's NaN touches no other,
//! and shape errors are reported.

use std::sync::atomic::Ordering;

use solver_core::{Options, Report, Status};
use solver_host::{
    BatchBackend, DynAnderson, DynBroyden, DynPicard, Lockstep, LockstepError, Rounds, Solver,
};

mod common;

use common::{D, Layers, starts};

/// Reports and final states of a whole batch.
type Batch = (Vec<Report>, Vec<f32>);

/// Solves the batch in lockstep and each sample alone with a fresh solver; returns
/// both, plus the backend's evaluation counts.
fn both<S: Solver + Send>(
    make: impl Fn() -> S,
    samples: usize,
    opts: &Options,
    nan_at: Option<(usize, u32)>,
) -> (Batch, Batch, Vec<u32>) {
    let mut backend = Layers::new(samples);
    backend.nan_at = nan_at;
    let backend = backend;
    let mut lock = Lockstep::new(samples, || Ok(make())).unwrap();
    let mut z = starts(samples);
    let mut rounds = 0;
    let reports = lock
        .solve(&backend, &mut z, opts, &mut |p| {
            rounds = p.rounds;
            assert_eq!(p.samples, samples);
        })
        .unwrap();
    assert_eq!(rounds, reports.iter().map(|r| r.f_evals).max().unwrap());

    let mut alone = Layers::new(samples);
    alone.nan_at = nan_at;
    let alone = alone.alone(|f, zb| make().solve(f, zb, opts).unwrap());
    ((reports, z), alone, backend.evals.iter().map(|e| e.load(Ordering::Relaxed)).collect())
}

#[test]
fn every_sample_matches_its_solo_solve_bit_for_bit() {
    let opts = Options { max_iters: 200, ..Options::DEFAULT };
    let samples = 9;
    let check = |(lock, alone, evals): (Batch, Batch, Vec<u32>)| {
        assert_eq!(lock, alone);
        // A stopped sample is never evaluated again: the backend saw exactly the
        // evaluations each report counts.
        assert_eq!(evals, lock.0.iter().map(|r| r.f_evals).collect::<Vec<_>>());
        // The samples do not all stop together, so masking saved real work.
        let (lo, hi) = (evals.iter().min().unwrap(), evals.iter().max().unwrap());
        assert!(lo < hi, "{evals:?}");
        assert!(lock.0.iter().all(|r| r.status == Status::Converged), "{:?}", lock.0);
    };
    check(both(|| DynBroyden::with_sizes(D, 8).unwrap(), samples, &opts, None));
    check(both(|| DynAnderson::with_sizes(D, 5).unwrap(), samples, &opts, None));
    // Plain iteration only for the contractive layers (ρ < 1, every 4th is ρ = 1.2).
    let (lock, alone, _) = both(|| DynPicard::with_sizes(D).unwrap(), samples, &opts, None);
    assert_eq!(lock, alone);
}

#[test]
fn one_samples_nan_ends_that_sample_only() {
    let opts = Options::DEFAULT;
    for (sick, call) in [(0usize, 1u32), (3, 4), (5, 9)] {
        let ((reports, z), (alone, alone_z), evals) =
            both(|| DynBroyden::with_sizes(D, 8).unwrap(), 6, &opts, Some((sick, call)));
        assert_eq!((&reports, &z), (&alone, &alone_z));
        for (b, r) in reports.iter().enumerate() {
            if b == sick {
                assert_eq!(r.status, Status::NonFinite, "{r:?}");
                assert_eq!((r.f_evals, evals[b]), (call, call));
            } else {
                assert_eq!(r.status, Status::Converged, "sample {b}: {r:?}");
            }
        }
        assert!(z.iter().all(|v| v.is_finite()));
    }
}

/// Rounds driven by the caller ([`Rounds`]: `start`, then `advance` with the caller's
/// own batched evaluation) give every sample the result of its solo solve, bit for bit; between
/// rounds each solver's iteration count and best residual are the ones its report ends
/// with.
#[test]
fn rounds_driven_by_the_caller_match_solo_solves() {
    let opts = Options { max_iters: 200, ..Options::DEFAULT };
    let samples = 7;
    fn driven<S: Solver + Send>(lock: &mut Rounds<S>, samples: usize, opts: &Options) -> Batch {
        let backend = Layers::new(samples);
        let mut z = starts(samples);
        let (mut points, mut outputs) = (vec![0.0; z.len()], vec![f32::NAN; z.len()]);
        let mut running = lock.start(&z, opts, &mut points).unwrap();
        assert_eq!(running, samples);
        let mut last = vec![(0u32, (f32::INFINITY, f32::INFINITY)); samples];
        while running > 0 {
            let active = lock.active().to_vec();
            backend.eval(0, &active, &points, &mut outputs);
            running = lock.advance(&outputs, &mut z, &mut points).unwrap();
            assert_eq!(running, lock.active().iter().filter(|&&a| a).count());
            // A stopped sample's point is its answer.
            for (b, &on) in lock.active().iter().enumerate() {
                if !on {
                    assert_eq!(points[b * D..(b + 1) * D], z[b * D..(b + 1) * D], "sample {b}");
                }
            }
            for (b, s) in lock.solvers().iter().enumerate() {
                let now = (s.iterations(), s.best_residual());
                // The best residual never grows, the iterations never go back.
                assert!(
                    now.0 >= last[b].0 && now.1.0 <= last[b].1.0,
                    "sample {b}: {now:?} after {:?}",
                    last[b]
                );
                last[b] = now;
            }
        }
        let reports = lock.reports();
        for (r, (its, (abs, rel))) in reports.iter().zip(&last) {
            assert_eq!((r.iterations, r.residual_abs, r.residual_rel), (*its, *abs, *rel));
        }
        (reports, z)
    }
    let mut broyden = Rounds::new(samples, || DynBroyden::with_sizes(D, 8)).unwrap();
    let mut anderson = Rounds::new(samples, || DynAnderson::with_sizes(D, 5)).unwrap();
    assert_eq!(broyden.memory_bytes(), samples * 4 * D * (2 * 8 + 5));
    let alone = Layers::new(samples);
    let b = driven(&mut broyden, samples, &opts);
    assert_eq!(b, alone.alone(|f, zb| DynBroyden::with_sizes(D, 8).unwrap().solve(f, zb, &opts).unwrap()));
    // A second solve with the same solvers starts afresh.
    assert_eq!(driven(&mut broyden, samples, &opts), b);
    let a = driven(&mut anderson, samples, &opts);
    assert_eq!(a, alone.alone(|f, zb| DynAnderson::with_sizes(D, 5).unwrap().solve(f, zb, &opts).unwrap()));
    assert!(b.0.iter().chain(&a.0).all(|r| r.status == Status::Converged));
    // Buffers of the wrong length are errors.
    let mut short = vec![0.0; samples * D - 1];
    let err = broyden.start(&starts(samples), &opts, &mut short).unwrap_err();
    assert_eq!(err, LockstepError::StateLength { expected: samples * D, got: samples * D - 1 });
}

#[test]
fn shape_errors_are_reported() {
    let mut lock = Lockstep::new(3, || DynBroyden::with_sizes(D, 4)).unwrap();
    assert_eq!(lock.memory_bytes(), 3 * 4 * D * (2 * 4 + 5) + 2 * 4 * 3 * D);
    let backend = Layers::new(4);
    let mut z = vec![0.0; 3 * D];
    let err = lock.solve(&backend, &mut z, &Options::DEFAULT, &mut |_| {}).unwrap_err();
    assert_eq!(err, LockstepError::BackendShape { solver: (3, D), backend: (4, D) });
    let backend = Layers::new(3);
    let mut short = vec![0.0; 3 * D - 1];
    let err = lock.solve(&backend, &mut short, &Options::DEFAULT, &mut |_| {}).unwrap_err();
    assert_eq!(err, LockstepError::StateLength { expected: 3 * D, got: 3 * D - 1 });
    assert!(err.to_string().contains("expected 144"));
}

/// The DEQ layer backend evaluates exactly the running samples (rows of stopped ones
/// are not written), each as the layer applied to that sample alone, for [B, L, h]
/// states and any pattern of running samples and thread count.
#[test]
#[cfg(feature = "layer")]
fn layer_backend_evaluates_exactly_the_running_samples() {
    use solver_host::LayerBackend;
    use solver_host::model::DeqLayer;
    let (h, p, b, l) = (24, 5, 11, 3);
    let layer = DeqLayer::demo(h, p);
    let x: Vec<f32> = (0..b * l * p).map(|i| ((i * 13 % 29) as f32 / 29.0 - 0.5) * 2.0).collect();
    let z: Vec<f32> = (0..b * l * h).map(|i| ((i * 7 % 31) as f32 / 31.0 - 0.5) * 0.5).collect();
    let d = l * h;
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let backend = LayerBackend::new(&layer, &x, b, l).unwrap();
            assert_eq!((backend.samples(), backend.dim()), (b, d));
            for pattern in [0b111_1111_1111u32, 0b101_0010_0110, 0b000_0000_0001, 0b100_0000_0000, 0] {
                let active: Vec<bool> = (0..b).map(|s| pattern >> s & 1 == 1).collect();
                let mut out = vec![f32::MAX; b * d];
                // The whole batch in one call, and cut into groups of 4.
                backend.eval(0, &active, &z, &mut out);
                let mut grouped = vec![f32::MAX; b * d];
                for (g, ((a, zg), og)) in
                    active.chunks(4).zip(z.chunks(4 * d)).zip(grouped.chunks_mut(4 * d)).enumerate()
                {
                    backend.eval(4 * g, a, zg, og);
                }
                assert_eq!(grouped, out);
                for s in 0..b {
                    let got = &out[s * d..(s + 1) * d];
                    if !active[s] {
                        assert!(got.iter().all(|&v| v == f32::MAX), "stopped sample {s} was written");
                        continue;
                    }
                    let mut c = vec![0.0f32; d];
                    layer.injection(&x[s * l * p..(s + 1) * l * p], &mut c);
                    let mut want = vec![0.0f32; d];
                    layer.apply(&z[s * d..(s + 1) * d], &c, &mut want);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() <= 1e-6, "sample {s}: {g} vs {w} ({threads} threads)");
                    }
                }
            }
        });
    }
}

/// A layer of at least `PIECE_MIN_TOKENS` tokens is evaluated piece by piece, straight
/// from and into each solver's vectors: every sample's answer and report are
/// bit-identical to solving it alone with the whole `apply` as `f`, on 1 to 3 threads,
/// for each solver; and the pieces together are the whole evaluation, bit for bit.
#[test]
#[cfg(feature = "layer")]
fn pieces_of_a_many_token_layer_solve_like_each_sample_alone() {
    use solver_host::model::DeqLayer;
    use solver_host::{AnySolver, LayerBackend, PIECE_MIN_TOKENS};
    let (h, p, b, l) = (20, 6, 5, PIECE_MIN_TOKENS + 5);
    let d = l * h;
    let layer = DeqLayer::demo(h, p);
    let x: Vec<f32> = (0..b * l * p).map(|i| ((i * 17 % 37) as f32 / 37.0 - 0.5) * 3.0).collect();
    let backend = LayerBackend::new(&layer, &x, b, l).unwrap();
    let len = backend.piece_len().expect("pieces for a many-token state");
    assert!(len % h == 0 && len < d, "{len}");
    let c = |s: usize| {
        let mut c = vec![0.0f32; d];
        layer.injection(&x[s * l * p..(s + 1) * l * p], &mut c);
        c
    };
    // The pieces are the whole evaluation.
    let z: Vec<f32> = (0..d).map(|i| ((i * 7 % 31) as f32 / 31.0 - 0.5) * 0.5).collect();
    for s in 0..b {
        let mut whole = vec![0.0f32; d];
        layer.apply(&z, &c(s), &mut whole);
        let mut pieces = vec![f32::MAX; d];
        for (k, o) in pieces.chunks_mut(len).enumerate() {
            backend.eval_piece(s, k, &z, o);
        }
        assert_eq!(whole, pieces, "sample {s}");
    }
    let opts = Options { max_iters: 60, tol_rel: 1e-6, ..Options::DEFAULT };
    let makers: [(&str, &(dyn Fn() -> AnySolver + Sync)); 3] = [
        ("broyden", &|| AnySolver::Broyden(DynBroyden::with_sizes(d, 4).unwrap())),
        ("anderson", &|| AnySolver::Anderson(DynAnderson::with_sizes(d, 3).unwrap())),
        ("picard", &|| AnySolver::Picard(DynPicard::with_sizes(d).unwrap())),
    ];
    for (name, make) in makers {
        // Each sample alone.
        let mut alone = vec![0.0f32; b * d];
        let mut alone_reports = Vec::new();
        for s in 0..b {
            let cs = c(s);
            let mut solver = make();
            let zs = &mut alone[s * d..(s + 1) * d];
            alone_reports.push(solver.solve(&mut |z, out| layer.apply(z, &cs, out), zs, &opts).unwrap());
        }
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut lock = Lockstep::new(b, || Ok(make())).unwrap();
                let mut z = vec![0.0f32; b * d];
                let mut last = 0;
                let reports =
                    lock.solve(&backend, &mut z, &opts, &mut |pr| last = last.max(pr.rounds)).unwrap();
                assert_eq!(reports, alone_reports, "{name}, {threads} threads");
                assert_eq!(z, alone, "{name}, {threads} threads");
                assert_eq!(last, reports.iter().map(|r| r.f_evals).max().unwrap(), "{name}");
                assert!(reports.iter().all(|r| r.status.is_converged()), "{name}: {reports:?}");
            });
        }
    }
}

/// A small batch of a wide layer is one group whose product splits `W`'s columns
/// between the threads: chosen by size, and (forced on a narrower layer) every sample's
/// answer and report are bit-identical to solving it alone, on 1 to 3 threads, for
/// each solver, as they are with groups of samples.
#[test]
#[cfg(feature = "layer")]
fn a_column_split_batch_solves_like_each_sample_alone() {
    use solver_host::model::Activation;
    use solver_host::model::DeqLayer;
    use solver_host::{AnySolver, COLUMN_MAX_ROWS, COLUMN_MIN_HIDDEN, LayerBackend};
    let (h, p, b) = (600, 6, 5);
    let x: Vec<f32> = (0..b * p).map(|i| ((i * 17 % 37) as f32 / 37.0 - 0.5) * 3.0).collect();
    // Chosen by size: a zero layer at the threshold width (cheap to build).
    let wide = COLUMN_MIN_HIDDEN;
    let zero = DeqLayer::new(
        wide,
        p,
        vec![0.0; wide * wide],
        vec![0.0; wide * p],
        vec![0.0; wide],
        Activation::Tanh,
    );
    let zero = zero.unwrap();
    assert!(LayerBackend::new(&zero, &x, b, 1).unwrap().column_split() && b <= COLUMN_MAX_ROWS);
    let more: Vec<f32> = x.iter().cycle().take((COLUMN_MAX_ROWS + 1) * p).copied().collect();
    assert!(!LayerBackend::new(&zero, &more, COLUMN_MAX_ROWS + 1, 1).unwrap().column_split());
    drop(zero);
    // Forced on a narrower layer (two or three column parts on 2 or 3 threads).
    let layer = DeqLayer::demo(h, p);
    assert!(!LayerBackend::new(&layer, &x, b, 1).unwrap().column_split());
    let split = LayerBackend::new(&layer, &x, b, 1).unwrap().with_column_split(true);
    assert!(split.column_split() && !split.split());
    let groups = LayerBackend::new(&layer, &x, b, 1).unwrap();
    assert!(!groups.column_split() && groups.split());
    let opts = Options { max_iters: 60, tol_rel: 1e-6, ..Options::DEFAULT };
    let makers: [(&str, &(dyn Fn() -> AnySolver + Sync)); 3] = [
        ("broyden", &|| AnySolver::Broyden(DynBroyden::with_sizes(h, 4).unwrap())),
        ("anderson", &|| AnySolver::Anderson(DynAnderson::with_sizes(h, 3).unwrap())),
        ("picard", &|| AnySolver::Picard(DynPicard::with_sizes(h).unwrap())),
    ];
    for (name, make) in makers {
        let mut alone = vec![0.0f32; b * h];
        let mut alone_reports = Vec::new();
        for s in 0..b {
            let mut cs = vec![0.0f32; h];
            layer.injection(&x[s * p..(s + 1) * p], &mut cs);
            let mut solver = make();
            let zs = &mut alone[s * h..(s + 1) * h];
            alone_reports.push(solver.solve(&mut |z, out| layer.apply(z, &cs, out), zs, &opts).unwrap());
        }
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for backend in [&split, &groups] {
                pool.install(|| {
                    let mut lock = Lockstep::new(b, || Ok(make())).unwrap();
                    let mut z = vec![0.0f32; b * h];
                    let reports = lock.solve(backend, &mut z, &opts, &mut |_| {}).unwrap();
                    let mode = if backend.column_split() { "columns" } else { "groups" };
                    assert_eq!(reports, alone_reports, "{name}, {mode}, {threads} threads");
                    assert_eq!(z, alone, "{name}, {mode}, {threads} threads");
                    assert!(reports.iter().all(|r| r.status.is_converged()), "{name}: {reports:?}");
                });
            }
        }
    }
}
