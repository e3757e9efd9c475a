//! The offloaded Broyden solve (solver-core's state machine, vector work done by a
//! backend over the whole batch): with the host reference backend every sample's report
//! and answer are bit-identical to its solo solve, under every setting; stopped samples
//! are never evaluated; one sample's NaN touches no other; bad shapes are errors.

mod common;

use std::sync::atomic::Ordering;

use common::{D, Layers, starts};
use solver_core::{BroydenSettings, History, Options, Report, Status};
use solver_host::offload::{self, HostVectors, OffloadBackend, OffloadError};
use solver_host::{DynBroyden, Solver};

/// The batch solved offloaded (host vectors) and each sample alone; the backend's
/// evaluation counts.
fn both(
    samples: usize,
    m: usize,
    s: &BroydenSettings,
    opts: &Options,
    nan_at: Option<(usize, u32)>,
) -> [(Vec<Report>, Vec<f32>); 2] {
    let mut layers = Layers::new(samples);
    layers.nan_at = nan_at;
    let mut z = starts(samples);
    let mut evaluations = 0;
    let reports = {
        let mut host = HostVectors::new(&layers, m).unwrap();
        offload::solve(&mut host, s, opts, &mut z, &mut |p| {
            evaluations = p.rounds;
            assert_eq!(p.samples, samples);
        })
        .unwrap()
    };
    assert_eq!(evaluations, reports.iter().map(|r| r.f_evals).max().unwrap());
    // A stopped sample is never evaluated again.
    let evals: Vec<u32> = layers.evals.iter().map(|e| e.load(Ordering::Relaxed)).collect();
    assert_eq!(evals, reports.iter().map(|r| r.f_evals).collect::<Vec<_>>());

    let mut alone = Layers::new(samples);
    alone.nan_at = nan_at;
    let alone = alone.alone(|f, zb| {
        let mut solver = DynBroyden::with_sizes(D, m).unwrap();
        solver.settings = *s;
        solver.solve(f, zb, opts).unwrap()
    });
    [(reports, z), alone]
}

#[test]
fn every_sample_matches_its_solo_solve_bit_for_bit() {
    let samples = 10;
    let default = BroydenSettings::DEFAULT;
    let cases = [
        (8, default, Options { max_iters: 200, ..Options::DEFAULT }),
        // A short history that fills up and wraps, dropping or restarting.
        (3, default, Options { max_iters: 200, ..Options::DEFAULT }),
        (
            3,
            BroydenSettings { history: History::Restart, ..default },
            Options { max_iters: 200, ..Options::DEFAULT },
        ),
        // The line search, and no step rejection.
        (4, BroydenSettings { line_search: true, ..default }, Options { max_iters: 200, ..Options::DEFAULT }),
        (4, BroydenSettings { reject_growth: f32::INFINITY, ..default }, Options::DEFAULT),
        // Budgets that stop samples at different points.
        (8, default, Options { max_iters: 7, ..Options::DEFAULT }),
        (
            8,
            default,
            Options { tol_rel: 0.0, tol_abs: 0.0, stall_iters: 3, max_iters: 100, ..Options::DEFAULT },
        ),
    ];
    for (m, s, opts) in cases {
        let [off, alone] = both(samples, m, &s, &opts, None);
        assert_eq!(off, alone, "m = {m}, {s:?}, {opts:?}");
        let statuses: Vec<Status> = off.0.iter().map(|r| r.status).collect();
        let evals: Vec<u32> = off.0.iter().map(|r| r.f_evals).collect();
        if opts.max_iters == 7 {
            assert!(statuses.iter().all(|&st| st == Status::MaxIterations), "{statuses:?}");
        } else {
            // The samples do not all stop together: masking saved real work.
            assert!(evals.iter().min() < evals.iter().max(), "{evals:?}");
        }
    }
}

#[test]
fn one_samples_nan_ends_that_sample_only() {
    for (sick, call) in [(0usize, 1u32), (3, 4), (5, 9)] {
        let [(reports, z), alone] =
            both(6, 8, &BroydenSettings::DEFAULT, &Options::DEFAULT, Some((sick, call)));
        assert_eq!((&reports, &z), (&alone.0, &alone.1));
        assert_eq!(reports[sick].status, Status::NonFinite, "{:?}", reports[sick]);
        assert_eq!(reports[sick].f_evals, call);
        assert!(z.iter().all(|v| v.is_finite()));
        for (b, r) in reports.iter().enumerate() {
            if b != sick {
                assert_eq!(r.status, Status::Converged, "sample {b}: {r:?}");
            }
        }
    }
}

/// A run advanced round by round by the caller (`OffloadRun`) is `offload::solve`: the
/// same reports and answers; between rounds each state's iteration count and best
/// residual only move forward, and end as its report says.
#[test]
fn a_run_driven_round_by_round_is_solve() {
    let samples = 6;
    let s = BroydenSettings::DEFAULT;
    let opts = Options { max_iters: 200, ..Options::DEFAULT };
    let [expected, _] = both(samples, 4, &s, &opts, None);
    let layers = Layers::new(samples);
    let mut host = HostVectors::new(&layers, 4).unwrap();
    host.load(&starts(samples)).unwrap();
    let mut run = offload::OffloadRun::new(samples, &s, 4, &opts).unwrap();
    assert!(offload::OffloadRun::new(samples, &s, 0, &opts).is_none());
    let mut last = vec![(0u32, f32::INFINITY); samples];
    let mut rounds = 0;
    loop {
        let running = run.round(|ops, replies| host.execute(ops, replies)).unwrap();
        for (b, st) in run.states().iter().enumerate() {
            let now = (st.iterations(), st.best_residual().0);
            assert!(now.0 >= last[b].0 && now.1 <= last[b].1, "sample {b}: {now:?} after {:?}", last[b]);
            last[b] = now;
        }
        if running == 0 {
            break;
        }
        rounds += 1;
        assert_eq!(run.evaluations(), rounds);
    }
    assert_eq!(run.round(|ops, replies| host.execute(ops, replies)).unwrap(), 0);
    let mut z = vec![0.0; samples * D];
    host.store(&mut z).unwrap();
    assert_eq!((run.reports().to_vec(), z), expected);
    for (r, (its, abs)) in run.reports().iter().zip(&last) {
        assert_eq!((r.iterations, r.residual_abs), (*its, *abs));
    }
}

/// On a DEQ layer, the offloaded solve equals the lockstep solve of the same batch.
#[test]
#[cfg(feature = "layer")]
fn layer_batch_matches_lockstep() {
    use solver_host::model::DeqLayer;
    use solver_host::{LayerBackend, Lockstep};
    let (samples, tokens, layer) = (5, 3, DeqLayer::demo(32, 8));
    let d = tokens * layer.hidden();
    let x: Vec<f32> = (0..samples * tokens * 8).map(|i| ((i * 29 % 53) as f32 / 53.0 - 0.5) * 2.0).collect();
    let backend = LayerBackend::new(&layer, &x, samples, tokens).unwrap();
    let opts = Options::DEFAULT;
    let mut z = vec![0.0f32; samples * d];
    let mut lock = Lockstep::new(samples, || DynBroyden::with_sizes(d, 8)).unwrap();
    let expected = lock.solve(&backend, &mut z, &opts, &mut |_| {}).unwrap();
    let mut z_off = vec![0.0f32; samples * d];
    let mut host = HostVectors::new(&backend, 8).unwrap();
    let reports =
        offload::solve(&mut host, &BroydenSettings::DEFAULT, &opts, &mut z_off, &mut |_| {}).unwrap();
    assert_eq!((reports, z_off), (expected, z));
    assert!(lock.solvers_mut()[0].memory_bytes() > 0);
}

#[test]
fn bad_shapes_are_errors() {
    let layers = Layers::new(3);
    let mut host = HostVectors::new(&layers, 4).unwrap();
    let s = BroydenSettings::DEFAULT;
    let mut short = vec![0.0f32; 3 * D - 1];
    let err = offload::solve(&mut host, &s, &Options::DEFAULT, &mut short, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, OffloadError::StateLength { expected, got } if expected == 3 * D && got == 3 * D - 1)
    );
    assert_eq!(
        err.to_string(),
        format!("the state has {} values, expected {} (samples × dimension)", 3 * D - 1, 3 * D)
    );
    let mut none = HostVectors::new(&layers, 0).unwrap();
    let mut z = starts(3);
    let err = offload::solve(&mut none, &s, &Options::DEFAULT, &mut z, &mut |_| {}).unwrap_err();
    assert!(matches!(err, OffloadError::ZeroHistory), "{err}");
    // Nothing was touched.
    assert_eq!(z, starts(3));
}

/// `HostVectors::new` reports sizes it cannot allocate (`m·d` overflowing, or too large)
/// instead of panicking; a zero dimension's state error says so rather than "expected 0".
#[test]
fn host_vectors_sizes_are_errors() {
    let layers = Layers::new(2);
    assert!(matches!(HostVectors::new(&layers, usize::MAX), Err(solver_host::SizeError::TooLarge)));
    assert!(matches!(HostVectors::new(&layers, 1 << 40), Err(solver_host::SizeError::TooLarge)));
    let e: OffloadError<String> = OffloadError::StateLength { expected: 0, got: 0 };
    assert!(!e.to_string().contains("expected 0"), "{e}");
}
