//! The lockstep batched solver: one solver per sample over a `[B × d]` state, one
//! batched evaluation of `f` per round, and per-sample convergence masks.
//!
//! # How a round goes
//!
//! ```text
//!     points   ← the point each running sample's solver asks for    (rows of a [B × d] buffer)
//!     outputs  ← backend.eval(active, points)                      (one batched call)
//!     for each running sample, in parallel:
//!         its solver resumes with its output;  Done ⇒ active[b] = false
//! ```
//!
//! Each sample has its own solver (its own history, counters and stopping test: the
//! same solver-core code as a single solve, driven one evaluation at a time through
//! [`HostSolver::start`] / [`HostSolver::resume`]), so a sample's result does not depend
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
//! # Memory
//!
//! `B` solvers (each [`HostSolver::memory_bytes`]) plus two `[B × d]` buffers for the
//! points and the outputs, all allocated by [`Lockstep::new`]; a solve allocates
//! nothing, whatever `max_iters`.

use core::fmt;

use rayon::prelude::*;
use solver_core::step::Step;
use solver_core::{Options, Report, Status};

use crate::{HostSolver, SizeError};

/// A batched map `f` over `B` samples of dimension `d`: the part of a lockstep solve
/// that a backend (CPU, GPU) provides.
pub trait BatchBackend {
    /// Number of samples `B`.
    fn samples(&self) -> usize;
    /// Dimension `d` of one sample.
    fn dim(&self) -> usize;
    /// For every sample `b` with `active[b]`, writes `f_b(z_b)` into row `b` of `out`
    /// (`z` and `out` are row-major `[B × d]`). Rows of inactive samples must be
    /// neither read nor written, and cost nothing.
    fn eval(&mut self, active: &[bool], z: &[f32], out: &mut [f32]);
}

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
            LockstepError::StateLength { expected, got } => {
                write!(f, "the state has {got} values, expected {expected} (samples × dimension)")
            }
        }
    }
}

impl std::error::Error for LockstepError {}

/// Progress of a lockstep solve, passed to the caller's callback after every round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Rounds done (batched evaluations made).
    pub rounds: u32,
    /// Samples still running.
    pub active: usize,
    /// Samples in the batch.
    pub samples: usize,
}

/// One solver per sample, run in lockstep over a `[B × d]` state. See the
/// [module documentation](crate::lockstep).
pub struct Lockstep<S> {
    solvers: Vec<S>,
    dim: usize,
    points: Vec<f32>,
    outputs: Vec<f32>,
    active: Vec<bool>,
}

impl<S: HostSolver> Lockstep<S> {
    /// `samples` solvers built by `make` (all of the same dimension), and the batch
    /// buffers. Everything a solve needs is allocated here.
    pub fn new(samples: usize, make: impl Fn() -> Result<S, SizeError>) -> Result<Self, SizeError> {
        let solvers = (0..samples).map(|_| make()).collect::<Result<Vec<S>, SizeError>>()?;
        let dim = solvers.first().map_or(0, |s| s.dim());
        if solvers.iter().any(|s| s.dim() != dim) {
            return Err(SizeError::MixedDimensions);
        }
        let len = samples.checked_mul(dim).ok_or(SizeError::TooLarge)?;
        Ok(Lockstep {
            solvers,
            dim,
            points: vec![0.0; len],
            outputs: vec![0.0; len],
            active: vec![false; samples],
        })
    }

    /// Number of samples `B`.
    pub fn samples(&self) -> usize {
        self.solvers.len()
    }

    /// Dimension `d` of one sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes held: every solver's buffers and the two `[B × d]` batch buffers.
    pub fn memory_bytes(&self) -> usize {
        self.solvers.iter().map(|s| s.memory_bytes()).sum::<usize>()
            + 4 * (self.points.len() + self.outputs.len())
    }

    /// The solvers, to change their settings between solves.
    pub fn solvers_mut(&mut self) -> &mut [S] {
        &mut self.solvers
    }

    /// Solves every sample of `z` (row-major `[B × d]`: starting points in, answers out)
    /// with `backend` as `f`, on the current rayon thread pool. `progress` is called
    /// after every round. Returns one report per sample.
    pub fn solve(
        &mut self,
        backend: &mut dyn BatchBackend,
        z: &mut [f32],
        opts: &Options,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Report>, LockstepError> {
        let (b, d) = (self.samples(), self.dim);
        if (backend.samples(), backend.dim()) != (b, d) {
            return Err(LockstepError::BackendShape {
                solver: (b, d),
                backend: (backend.samples(), backend.dim()),
            });
        }
        if z.len() != b * d || d == 0 {
            return Err(LockstepError::StateLength { expected: b * d, got: z.len() });
        }
        let mut reports = vec![None; b];
        // Start every sample and gather the points it asks for.
        self.solvers
            .par_iter_mut()
            .zip(z.par_chunks(d))
            .zip(self.points.par_chunks_mut(d))
            .zip(self.active.par_iter_mut())
            .for_each(|(((solver, zb), point), active)| {
                *active = solver.start(zb, opts).is_ok();
                copy(solver.request().0, point);
            });
        let mut rounds = 0u32;
        while self.active.iter().any(|&a| a) {
            backend.eval(&self.active, &self.points, &mut self.outputs);
            rounds += 1;
            self.solvers
                .par_iter_mut()
                .zip(z.par_chunks_mut(d))
                .zip(self.points.par_chunks_mut(d))
                .zip(self.outputs.par_chunks(d))
                .zip(self.active.par_iter_mut())
                .zip(reports.par_iter_mut())
                .for_each(|(((((solver, zb), point), out), active), report)| {
                    if !*active {
                        return;
                    }
                    copy(out, solver.request().1);
                    match solver.resume(zb) {
                        Step::Evaluate => copy(solver.request().0, point),
                        Step::Done(r) => {
                            *report = Some(r);
                            *active = false;
                        }
                    }
                });
            let running = self.active.iter().filter(|&&a| a).count();
            progress(Progress { rounds, active: running, samples: b });
        }
        Ok(reports.into_iter().map(|r| r.unwrap_or(NEVER_RAN)).collect())
    }
}

/// The report of a sample that could not start (never the case for solvers built by
/// [`Lockstep::new`], whose dimension matches the rows of `z`).
const NEVER_RAN: Report = Report {
    status: Status::NonFinite,
    iterations: 0,
    f_evals: 0,
    residual_abs: f32::NAN,
    residual_rel: f32::NAN,
    restarts: 0,
};

/// `dst ← src` over the common length (the lengths always agree here; no panic path).
fn copy(src: &[f32], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}
