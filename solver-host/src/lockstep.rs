//! The lockstep batched solver: one solver per sample over a `[B × d]` state, one
//! batched evaluation of `f` per round, and per-sample convergence masks.
//!
//! # How a round goes
//!
//! ```text
//!     points   ← the point each running sample's solver asks for    (rows of a [B × d] buffer)
//!     for each group of consecutive samples, in parallel (one group: the whole batch,
//!     for a backend that does not split), until all the group's samples have stopped:
//!         outputs ← backend.eval(group, active, points)          (one batched call)
//!         for each running sample of the group (in parallel for the whole batch):
//!             its solver resumes with its output;  Done ⇒ active[b] = false
//! ```
//!
//! On the CPU there is one group per thread and the groups never wait for each other:
//! a barrier per round (waking the other threads) cost more than the steps themselves
//! on small layers. A backend that takes the whole batch in one call may use every
//! thread inside it (the column split of a small batch of a wide layer), and then the
//! samples' steps run in parallel too.
//!
//! A backend that evaluates one sample in pieces ([`BatchBackend::piece_len`], a DEQ
//! layer of many tokens) is driven without the batch buffers:
//!
//! ```text
//!     for each sample, in parallel, until it has stopped:
//!         the pieces of f(x) ← backend.eval_piece(sample, k, x)   (in parallel, into the solver's own g)
//!         its solver resumes
//! ```
//!
//! so no point or output is copied, and a thread whose samples have stopped takes
//! pieces of the others' evaluations. At `[15 × 150 × 700]` on 2 threads this took a
//! Broyden solve from 1.41× to 1.20× the time of its evaluations
//! (`cargo run --release -p deq-benches --bin floor`).
//!
//! Each sample has its own solver (its own history, counters and stopping test: the
//! same solver-core code as a single solve, driven one evaluation at a time through
//! [`Solver::start`] / [`Solver::resume`]), so a sample's result does not depend
//! on the rest of the batch: it is bit-identical to solving that sample alone. A sample
//! that has stopped is masked out: the backend is not asked to evaluate it, its solver
//! is not advanced and its `z` no longer changes, so it costs no work. A NaN in one
//! sample's evaluation ends that sample with [`Status::NonFinite`](solver_core::Status)
//! and its best finite iterate; the other samples are not affected.
//!
//! The backend ([`BatchBackend`]) is where the batched `f` lives: for a DEQ layer, one
//! matrix product over the rows of every running sample
//! (the `LayerBackend` of the model module).
//!
//! # Rounds driven by the caller
//!
//! A caller whose `f` is not a [`BatchBackend`] (a Python function, which may raise, and
//! which takes the whole batch at once) drives the rounds itself:
//!
//! ```text
//!     running ← rounds.start(z, opts, points)        // points: what each sample asks for
//!     while running > 0:
//!         outputs ← f(points)                         // rows of stopped samples are ignored
//!         running ← rounds.advance(outputs, z, points)
//!     reports ← rounds.reports()
//! ```
//!
//! [`Rounds`] holds the solvers for that (and no batch buffers: the caller's are used);
//! [`advance`](Rounds::advance) resumes the running samples in parallel, and between two
//! rounds the caller may read each solver's progress ([`Rounds::solvers`]). The samples'
//! results are the same as with [`Lockstep::solve`], which runs on the same solvers.
//!
//! # Memory
//!
//! `B` solvers (each [`Solver::memory_bytes`]) plus two `[B × d]` buffers for the
//! points and the outputs (unused by a backend that evaluates in pieces), all allocated
//! by [`Lockstep::new`]; a solve allocates nothing, whatever `max_iters`.

use core::fmt;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use rayon::prelude::*;
use solver_core::kernels::copy;
use solver_core::solver::not_started;
use solver_core::{Next, Options, Real, Report, SizeError, Solver};

use crate::batch::{BatchBackend, Progress, state_length};

/// Why a lockstep solve cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockstepError {
    /// The backend's batch size or dimension differs from the solver's.
    BackendShape {
        /// `(B, d)` of the solver.
        solver: (usize, usize),
        /// `(B, d)` of the backend.
        backend: (usize, usize),
    },
    /// `z` does not hold `B × d` floats.
    StateLength {
        /// `B · d`.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

impl fmt::Display for LockstepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockstepError::BackendShape { solver, backend } => write!(
                f,
                "the backend evaluates {} samples of dimension {}, the solver holds {} of dimension {}",
                backend.0, backend.1, solver.0, solver.1
            ),
            LockstepError::StateLength { expected, got } => state_length(f, *expected, *got),
        }
    }
}

impl std::error::Error for LockstepError {}

/// One solver per sample over a `[B × d]` state, advanced round by round by a caller
/// that evaluates `f` itself (see the [module documentation](crate::lockstep)): the
/// solvers and their masks, and no batch buffers (the caller's are used).
pub struct Rounds<S, T: Real = f32> {
    solvers: Vec<S>,
    dim: usize,
    active: Vec<bool>,
    reports: Vec<Option<Report<T>>>,
}

impl<T: Real, S: Solver<T> + Send> Rounds<S, T> {
    /// `samples` solvers built by `make`, all of the same dimension.
    pub fn new(samples: usize, make: impl Fn() -> Result<S, SizeError>) -> Result<Self, SizeError> {
        let solvers = (0..samples).map(|_| make()).collect::<Result<Vec<S>, SizeError>>()?;
        let dim = solvers.first().map_or(0, |s| s.dim());
        if solvers.iter().any(|s| s.dim() != dim) {
            return Err(SizeError::MixedDimensions);
        }
        samples.checked_mul(dim).ok_or(SizeError::TooLarge)?;
        Ok(Rounds { solvers, dim, active: vec![false; samples], reports: vec![None; samples] })
    }

    /// Number of samples `B`.
    pub fn samples(&self) -> usize {
        self.solvers.len()
    }

    /// Dimension `d` of one sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes of every solver's buffers.
    pub fn memory_bytes(&self) -> usize {
        self.solvers.iter().map(|s| s.memory_bytes()).sum()
    }

    /// The solvers, to change their settings between solves.
    pub fn solvers_mut(&mut self) -> &mut [S] {
        &mut self.solvers
    }

    /// The solvers, to read their progress between rounds.
    pub fn solvers(&self) -> &[S] {
        &self.solvers
    }

    /// Which samples are still running.
    pub fn active(&self) -> &[bool] {
        &self.active
    }

    /// One report per sample of the last solve; a sample still running (or never
    /// started) reads as not started.
    pub fn reports(&self) -> Vec<Report<T>> {
        self.reports.iter().map(|r| r.unwrap_or(not_started())).collect()
    }

    /// Starts every sample from its row of `z` (row-major `[B × d]`) and writes into
    /// `points` (`[B × d]`) the point each sample asks `f` for. Returns the number of
    /// running samples.
    pub fn start(&mut self, z: &[T], opts: &Options<T>, points: &mut [T]) -> Result<usize, LockstepError> {
        let d = self.check_state(z.len())?;
        self.check_state(points.len())?;
        self.reports.fill(None);
        self.solvers
            .par_iter_mut()
            .zip(z.par_chunks(d))
            .zip(points.par_chunks_mut(d))
            .zip(self.active.par_iter_mut())
            .with_min_len(min_len(d))
            .for_each(|(((solver, zb), point), active)| {
                *active = solver.start(zb, opts).is_ok();
                copy(solver.request().0, point);
            });
        Ok(self.active.iter().filter(|&&a| a).count())
    }

    /// One round: every running sample resumes with its row of `outputs` (`f` of its row
    /// of `points`; the rows of stopped samples are not read), in parallel. New best
    /// iterates go to `z` (which held the start points at [`start`](Self::start)); the
    /// points asked for next go to `points`. Returns the number of samples still running.
    pub fn advance(&mut self, outputs: &[T], z: &mut [T], points: &mut [T]) -> Result<usize, LockstepError> {
        let d = self.check_state(outputs.len())?;
        self.check_state(z.len())?;
        self.check_state(points.len())?;
        let samples = self.solvers.par_iter_mut().zip(z.par_chunks_mut(d)).zip(points.par_chunks_mut(d));
        let rest = outputs.par_chunks(d).zip(self.active.par_iter_mut()).zip(self.reports.par_iter_mut());
        samples.zip(rest).with_min_len(min_len(d)).for_each(
            |(((solver, zb), point), ((out, active), report))| {
                resume_sample(solver, out, zb, point, active, report);
            },
        );
        Ok(self.active.iter().filter(|&&a| a).count())
    }

    /// [`Lockstep::solve`] for a backend that evaluates each sample in pieces of `len`
    /// outputs: every sample runs its rounds on its own, in parallel over the samples,
    /// `f` read from and written into its solver's own vectors, the pieces of each
    /// evaluation in parallel (so a thread whose samples have stopped takes pieces of
    /// the others'). `z` has been checked to be `[B × d]`.
    fn solve_in_pieces(
        &mut self,
        backend: &dyn BatchBackend<T>,
        len: usize,
        z: &mut [T],
        opts: &Options<T>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Vec<Report<T>> {
        let (b, d) = (self.samples(), self.dim);
        self.reports.fill(None);
        let reporter = Reporter::new(b, 0, progress);
        self.solvers
            .par_iter_mut()
            .zip(z.par_chunks_mut(d))
            .zip(self.active.par_iter_mut())
            .zip(self.reports.par_iter_mut())
            .enumerate()
            .for_each(|(s, (((solver, zb), active), report))| {
                *active = solver.start(zb, opts).is_ok();
                if !*active {
                    reporter.stopped();
                }
                let mut rounds = 0u32;
                while *active {
                    rounds += 1;
                    let (x, out) = solver.request();
                    out.par_chunks_mut(len).enumerate().for_each(|(k, o)| backend.eval_piece(s, k, x, o));
                    if let Next::Done(r) = solver.resume(zb) {
                        *report = Some(r);
                        *active = false;
                        reporter.stopped();
                    }
                    reporter.round_done(rounds);
                }
            });
        self.reports()
    }

    /// The dimension, after checking that a `[B × d]` buffer has length `len`.
    fn check_state(&self, len: usize) -> Result<usize, LockstepError> {
        let (b, d) = (self.samples(), self.dim);
        if len != b * d || d == 0 {
            return Err(LockstepError::StateLength { expected: b * d, got: len });
        }
        Ok(d)
    }
}

/// One solver per sample, run in lockstep over a `[B × d]` state with a
/// [`BatchBackend`] as `f`. See the [module documentation](crate::lockstep).
pub struct Lockstep<S, T: Real = f32> {
    rounds: Rounds<S, T>,
    points: Vec<T>,
    outputs: Vec<T>,
}

impl<T: Real, S: Solver<T> + Send> Lockstep<S, T> {
    /// `samples` solvers built by `make` (all of the same dimension), and the batch
    /// buffers. Everything a solve needs is allocated here.
    pub fn new(samples: usize, make: impl Fn() -> Result<S, SizeError>) -> Result<Self, SizeError> {
        let rounds = Rounds::new(samples, make)?;
        Ok(Lockstep {
            points: crate::dynamic::buffer(samples, rounds.dim)?,
            outputs: crate::dynamic::buffer(samples, rounds.dim)?,
            rounds,
        })
    }

    /// Number of samples `B`.
    pub fn samples(&self) -> usize {
        self.rounds.samples()
    }

    /// Dimension `d` of one sample.
    pub fn dim(&self) -> usize {
        self.rounds.dim
    }

    /// Bytes held: every solver's buffers and the two `[B × d]` batch buffers.
    pub fn memory_bytes(&self) -> usize {
        self.rounds.memory_bytes() + T::BYTES * (self.points.len() + self.outputs.len())
    }

    /// The solvers, to change their settings between solves.
    pub fn solvers_mut(&mut self) -> &mut [S] {
        self.rounds.solvers_mut()
    }

    /// Solves every sample of `z` (row-major `[B × d]`: starting points in, answers out)
    /// with `backend` as `f`, on the current rayon thread pool. `progress` is called
    /// after every round. Returns one report per sample.
    pub fn solve(
        &mut self,
        backend: &dyn BatchBackend<T>,
        z: &mut [T],
        opts: &Options<T>,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Vec<Report<T>>, LockstepError> {
        let (b, d) = (self.samples(), self.dim());
        if (backend.samples(), backend.dim()) != (b, d) {
            return Err(LockstepError::BackendShape {
                solver: (b, d),
                backend: (backend.samples(), backend.dim()),
            });
        }
        if let Some(len) = backend.piece_len().filter(|&len| len > 0) {
            return Ok(self.rounds.solve_in_pieces(backend, len, z, opts, progress));
        }
        // Start every sample and gather the points it asks for.
        let r = &mut self.rounds;
        r.start(z, opts, &mut self.points)?;
        // Groups of consecutive samples, one per task; each runs its rounds in lockstep
        // (one evaluation of the group, then its samples' steps) until all its samples
        // have stopped, with no synchronisation between groups.
        // A backend that takes the whole batch in one call (and may use every thread
        // inside it) is one group, whose samples' steps then run in parallel.
        let whole = !backend.split();
        let group =
            if whole { b } else { b.div_ceil(GROUPS_PER_THREAD * rayon::current_num_threads()).max(1) };
        let reporter = Reporter::new(b, r.active.iter().filter(|&&a| !a).count(), progress);
        r.solvers
            .par_chunks_mut(group)
            .zip(z.par_chunks_mut(group * d))
            .zip(self.points.par_chunks_mut(group * d))
            .zip(self.outputs.par_chunks_mut(group * d))
            .zip(r.active.par_chunks_mut(group))
            .zip(r.reports.par_chunks_mut(group))
            .enumerate()
            .for_each(|(g, (((((solvers, zg), points), outputs), active), reports))| {
                let mut rounds = 0u32;
                while active.iter().any(|&a| a) {
                    rounds += 1;
                    backend.eval(g * group, active, points, outputs);
                    let step = |(((solver, zb), point), ((out, active), report)): Step<'_, S, T>| {
                        if *active && !resume_sample(solver, out, zb, point, active, report) {
                            reporter.stopped();
                        }
                    };
                    if whole {
                        let samples =
                            solvers.par_iter_mut().zip(zg.par_chunks_mut(d)).zip(points.par_chunks_mut(d));
                        let rest =
                            outputs.par_chunks(d).zip(active.par_iter_mut()).zip(reports.par_iter_mut());
                        samples.zip(rest).for_each(step);
                    } else {
                        let samples = solvers.iter_mut().zip(zg.chunks_mut(d)).zip(points.chunks_mut(d));
                        let rest = outputs.chunks(d).zip(active.iter_mut()).zip(reports.iter_mut());
                        samples.zip(rest).for_each(step);
                    }
                    reporter.round_done(rounds);
                }
            });
        Ok(r.reports())
    }
}

/// One sample's part of a round's steps: its solver, answer and point, then the
/// backend's output for it, whether it is running, and its report.
type Step<'a, S, T> =
    (((&'a mut S, &'a mut [T]), &'a mut [T]), ((&'a [T], &'a mut bool), &'a mut Option<Report<T>>));

/// What the parallel tasks of a solve share to report its progress: how many samples
/// have stopped, the most rounds any task has made, and the caller's callback.
struct Reporter<'p> {
    samples: usize,
    stopped: AtomicUsize,
    most_rounds: AtomicU32,
    progress: Mutex<&'p mut (dyn FnMut(Progress) + Send)>,
}

impl<'p> Reporter<'p> {
    /// For `samples` samples, `stopped` of which never started.
    fn new(samples: usize, stopped: usize, progress: &'p mut (dyn FnMut(Progress) + Send)) -> Self {
        Reporter {
            samples,
            stopped: AtomicUsize::new(stopped),
            most_rounds: AtomicU32::new(0),
            progress: Mutex::new(progress),
        }
    }

    /// One more sample has stopped.
    fn stopped(&self) {
        self.stopped.fetch_add(1, Ordering::Relaxed);
    }

    /// A task has finished its `rounds`-th round: whoever finishes a round reports,
    /// unless another task is already reporting.
    fn round_done(&self, rounds: u32) {
        let rounds = self.most_rounds.fetch_max(rounds, Ordering::Relaxed).max(rounds);
        if let Ok(mut report) = self.progress.try_lock() {
            let active = self.samples - self.stopped.load(Ordering::Relaxed);
            report(Progress { rounds, active, samples: self.samples });
        }
    }
}

/// One sample's step of a round: when it is running, its solver resumes with `out` (`f`
/// of its point); then it either asks for its next point (written to `point`) or has
/// stopped (`report` set, `active` cleared, and its answer written to `point`, so that a
/// caller whose `f` takes the whole batch hands a stopped sample its answer rather than
/// a point that may have been the bad one). Returns whether it is still running.
fn resume_sample<T: Real, S: Solver<T>>(
    solver: &mut S,
    out: &[T],
    z: &mut [T],
    point: &mut [T],
    active: &mut bool,
    report: &mut Option<Report<T>>,
) -> bool {
    if !*active {
        return false;
    }
    copy(out, solver.request().1);
    match solver.resume(z) {
        Next::Evaluate => copy(solver.request().0, point),
        Next::Done(r) => {
            *report = Some(r);
            *active = false;
            copy(z, point);
        }
    }
    *active
}

/// Samples per parallel task in [`Rounds::start`] and [`Rounds::advance`]: enough
/// that a task does about 64 K floats of work, so small samples are not spread over
/// threads one by one.
fn min_len(d: usize) -> usize {
    (1 << 16) / d.max(1) + 1
}

/// Groups per thread (when the backend splits). More groups balance samples that stop
/// at different rounds; fewer make larger products (each packs `W` again). On the
/// built-in model (d = 256, 64 samples, 2 threads, medians of 15 solves) 1, 2 and 4
/// groups per thread took 4.95, 5.06 and 5.53 ms.
const GROUPS_PER_THREAD: usize = 1;
