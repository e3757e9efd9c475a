//! Broyden solves whose vectors live on another device: the batch's state, its
//! evaluations and the stored pairs `U`, `V` (`B × M × d`) stay where the backend keeps
//! them (GPU memory, for the `cuda` feature), and only a few scalars per sample and
//! round come back to the host.
//!
//! # How it works
//!
//! solver-core's Broyden solve is a state machine that asks for its vector work one
//! operation at a time ([`solver_core::broyden::ops`]): evaluate `f`, copy, scale,
//! `x + αy`, the low-rank product, a dot product, a norm, a finiteness test. Every
//! decision (step rejection, skipped updates, the history's ring, convergence, stall,
//! divergence, the best iterate) is made by [`BroydenState::advance`] from the scalar
//! replies. Here one such state per sample runs on the host, and an
//! [`OffloadBackend`] carries out the operations of all samples together:
//!
//! ```text
//!     load z₀ into every sample's x (and its best iterate z)
//!     loop:
//!         ops[b] ← the operation sample b waits for   (None once it has stopped)
//!         if some running sample waits for anything but an evaluation:
//!             hold back the evaluations this round      (f runs once, for everyone)
//!         backend.execute(ops) → one reply per sample
//!         each state advances with its reply
//!     store z
//! ```
//!
//! Operations reach the backend in solver-core's primitive vocabulary ([`Op::lowered`]):
//! a low-rank product that starts from another vector (`out ← βy + αU(Vᵀx)`) arrives as
//! a scale and then the product, and one with work after it (the dots and differences
//! of [`Then`](solver_core::broyden::ops::Then)) as the operations that work stands for,
//! one round each, their replies gathered into the one the state asked for; the `ahead`
//! hint (dots the slice executor forms for the next product) is dropped. The values are
//! the same bits.
//!
//! A round's operations may differ from sample to sample (one sample rejects its step
//! while another stores a pair); the backend runs each kind of operation once, over the
//! samples that asked for it. A stopped sample asks for nothing, so it costs nothing.
//! Because the algorithm is solver-core's, a backend that computes exactly as
//! [`SliceVectors::execute`] does gives bit-identical results ([`HostVectors`], tested);
//! one that sums in another order (a GPU) differs by rounding only.

use core::fmt;

use solver_core::broyden::ops::{Lowering, Op, Reply, SliceVectors};
use solver_core::kernels::copy;
use solver_core::solver::not_started;
use solver_core::{BroydenSettings, BroydenState, LengthError, Options, Report, SizeError};

use crate::batch::{BatchBackend, Progress, state_length};
use crate::dynamic::buffer;

/// Where a batch of Broyden solves keeps its vectors, and how it carries out their
/// operations ([`Op`]).
pub trait OffloadBackend {
    /// What can go wrong on the device.
    type Error: fmt::Display;

    /// Number of samples `B`.
    fn samples(&self) -> usize;
    /// Dimension `d` of one sample.
    fn dim(&self) -> usize;
    /// Number of pairs `M` each sample has room for.
    fn history(&self) -> usize;
    /// Starts a solve: every sample's `x` and best iterate `z` ← its row of `z0`
    /// (`[B × d]`, row-major).
    fn load(&mut self, z0: &[f32]) -> Result<(), Self::Error>;
    /// Carries out `ops[b]` for every sample `b` with `Some`, writing its reply into
    /// `replies[b]`. Either every operation given is an evaluation, or none is: `f`
    /// runs once per round, for every running sample together.
    fn execute(&mut self, ops: &[Option<Op>], replies: &mut [Reply]) -> Result<(), Self::Error>;
    /// Copies every sample's best iterate into `z` (`[B × d]`).
    fn store(&mut self, z: &mut [f32]) -> Result<(), Self::Error>;
}

/// Why an offloaded solve failed.
#[derive(Debug)]
pub enum OffloadError<E> {
    /// `z` does not hold `B × d` floats, or the backend is empty.
    StateLength {
        /// `B · d`.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The history depth is zero.
    ZeroHistory,
    /// The device failed.
    Device(E),
}

impl<E: fmt::Display> fmt::Display for OffloadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffloadError::StateLength { expected, got } => state_length(f, *expected, *got),
            OffloadError::ZeroHistory => write!(f, "the history must hold at least one pair"),
            OffloadError::Device(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for OffloadError<E> {}

/// Solves every sample of `z` (`[B × d]`: starting points in, answers out) with
/// `backend` holding the vectors. `progress` is called after every batched evaluation.
/// Returns one report per sample, as a solo solve with the same settings would.
pub fn solve<D: OffloadBackend + ?Sized>(
    backend: &mut D,
    settings: &BroydenSettings,
    opts: &Options,
    z: &mut [f32],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Report>, OffloadError<D::Error>> {
    let (b, d, m) = (backend.samples(), backend.dim(), backend.history());
    let expected = b.checked_mul(d).filter(|_| d > 0);
    if expected != Some(z.len()) {
        return Err(OffloadError::StateLength { expected: expected.unwrap_or(0), got: z.len() });
    }
    let mut run = OffloadRun::new(b, settings, m, opts).ok_or(OffloadError::ZeroHistory)?;
    backend.load(z).map_err(OffloadError::Device)?;
    loop {
        let active = run.round(|ops, replies| backend.execute(ops, replies)).map_err(OffloadError::Device)?;
        if active == 0 {
            break;
        }
        progress(Progress { rounds: run.evaluations(), active, samples: b });
    }
    backend.store(z).map_err(OffloadError::Device)?;
    Ok(run.reports().to_vec())
}

/// The Broyden solves of a batch in progress, advanced one evaluation round at a time:
/// the loop of [`solve`], for a caller that loads and reads the backend's vectors itself
/// and looks at the solves between rounds (their [`BroydenState`]s: iterations, best
/// residual).
#[derive(Clone, Debug)]
pub struct OffloadRun {
    states: Vec<BroydenState>,
    /// The primitive operation each sample waits for (`None` once it has stopped): a
    /// part of its state's operation ([`Op::lowered`]).
    waiting: Vec<Option<Op>>,
    /// The operation of each sample's state, carried out part by part.
    lowering: Vec<Lowering>,
    /// The operations given to the backend this round.
    round: Vec<Option<Op>>,
    replies: Vec<Reply>,
    reports: Vec<Report>,
    evaluations: u32,
}

impl OffloadRun {
    /// `samples` fresh solves with room for `history` pairs each, every one waiting for
    /// the evaluation of its start point (which the backend must hold: loaded by
    /// [`OffloadBackend::load`] or otherwise). `None` when `history` is zero.
    pub fn new(samples: usize, settings: &BroydenSettings, history: usize, opts: &Options) -> Option<Self> {
        let mut state = BroydenState::detached(settings, history, opts)?;
        let mut lowering = Lowering::new(state.advance(Reply::None));
        let first = lowering.next_part();
        Some(OffloadRun {
            states: vec![state; samples],
            waiting: vec![first; samples],
            lowering: vec![lowering; samples],
            round: vec![None; samples],
            replies: vec![Reply::None; samples],
            reports: vec![not_started(); samples],
            evaluations: 0,
        })
    }

    /// Carries out operation rounds up to and including the next round of evaluations,
    /// each round by one call of `execute` (what [`OffloadBackend::execute`] does: carry
    /// out `ops[b]` for every sample with `Some`, writing its reply into `replies[b]`).
    /// Returns the number of samples evaluated, or `0` once every sample has stopped
    /// (then `execute` is not called again).
    ///
    /// In each round every running sample's pending operation is given to `execute`,
    /// except that evaluations are held back while some running sample waits for
    /// anything else: `f` runs once per evaluation round, for every running sample.
    pub fn round<E>(
        &mut self,
        mut execute: impl FnMut(&[Option<Op>], &mut [Reply]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let is_eval = |op: &Op| matches!(op, Op::Evaluate { .. });
        loop {
            let running = self.waiting.iter().flatten().count();
            if running == 0 {
                return Ok(0);
            }
            let evaluate = self.waiting.iter().flatten().all(is_eval);
            for (r, w) in self.round.iter_mut().zip(&self.waiting) {
                *r = w.filter(|op| evaluate == is_eval(op));
            }
            execute(&self.round, &mut self.replies)?;
            let samples = self.states.iter_mut().zip(self.waiting.iter_mut().zip(&mut self.lowering));
            for (((state, (w, lowering)), r), (reply, report)) in
                samples.zip(&self.round).zip(self.replies.iter().zip(&mut self.reports))
            {
                if r.is_none() {
                    continue;
                }
                lowering.answer(*reply);
                if let Some(part) = lowering.next_part() {
                    *w = Some(part);
                    continue;
                }
                *w = match state.advance(lowering.reply()) {
                    Op::Done(rep) => {
                        *report = rep;
                        None
                    }
                    op => {
                        *lowering = Lowering::new(op);
                        lowering.next_part()
                    }
                };
            }
            if evaluate {
                self.evaluations += 1;
                return Ok(running);
            }
        }
    }

    /// Every sample's solve.
    pub fn states(&self) -> &[BroydenState] {
        &self.states
    }

    /// One report per sample; a sample still running reads as not started.
    pub fn reports(&self) -> &[Report] {
        &self.reports
    }

    /// Evaluation rounds carried out so far.
    pub fn evaluations(&self) -> u32 {
        self.evaluations
    }
}

/// The host reference of [`OffloadBackend`]: each sample's vectors in its own heap
/// buffers, every operation carried out by solver-core's [`SliceVectors::execute`], and
/// `f` by a [`BatchBackend`]. Results are bit-identical to solo solves; device backends
/// are checked against it.
pub struct HostVectors<'f> {
    f: &'f dyn BatchBackend,
    m: usize,
    /// Per sample: `U`, `V` (`m·d` each) and the five work vectors (`5·d`).
    bufs: Vec<[Vec<f32>; 3]>,
    /// The best iterates, `[B × d]`.
    z: Vec<f32>,
    /// Evaluation staging: the points and outputs of one round, `[B × d]` each.
    points: Vec<f32>,
    outputs: Vec<f32>,
    active: Vec<bool>,
}

impl<'f> HostVectors<'f> {
    /// Buffers for `f.samples()` samples of dimension `f.dim()` with room for `m`
    /// pairs each.
    ///
    /// # Errors
    ///
    /// [`SizeError::TooLarge`] if `m·d`, `5·d` or `B·d` overflows or cannot be
    /// allocated.
    pub fn new(f: &'f dyn BatchBackend, m: usize) -> Result<Self, SizeError> {
        let (b, d) = (f.samples(), f.dim());
        let fresh =
            || -> Result<[Vec<f32>; 3], SizeError> { Ok([buffer(m, d)?, buffer(m, d)?, buffer(5, d)?]) };
        Ok(HostVectors {
            f,
            m,
            bufs: (0..b).map(|_| fresh()).collect::<Result<_, _>>()?,
            z: buffer(b, d)?,
            points: buffer(b, d)?,
            outputs: buffer(b, d)?,
            active: vec![false; b],
        })
    }
}

impl HostVectors<'_> {
    /// The dimension, which must not be zero (rows of zero floats cannot be chunked).
    fn nonzero_dim(&self) -> Result<usize, HostVectorsError> {
        match self.dim() {
            0 => Err(HostVectorsError::ZeroDimension),
            d => Ok(d),
        }
    }
}

/// Why [`HostVectors`] failed: a state of the wrong length given to `load` or `store`,
/// or a backend of dimension 0 (never through [`solve`], which checks both first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostVectorsError {
    /// A state of the wrong length.
    Length(LengthError),
    /// The backend's dimension is zero.
    ZeroDimension,
}

impl fmt::Display for HostVectorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostVectorsError::Length(e) => write!(f, "host vectors: {e}"),
            HostVectorsError::ZeroDimension => write!(f, "host vectors: the dimension must be at least 1"),
        }
    }
}

impl OffloadBackend for HostVectors<'_> {
    type Error = HostVectorsError;

    fn samples(&self) -> usize {
        self.f.samples()
    }

    fn dim(&self) -> usize {
        self.f.dim()
    }

    fn history(&self) -> usize {
        self.m
    }

    fn load(&mut self, z0: &[f32]) -> Result<(), HostVectorsError> {
        let d = self.nonzero_dim()?;
        check_state("z0", z0.len(), self.z.len())?;
        copy(z0, &mut self.z);
        for ([_, _, vecs], row) in self.bufs.iter_mut().zip(z0.chunks(d)) {
            copy(row, vecs);
        }
        Ok(())
    }

    fn execute(&mut self, ops: &[Option<Op>], replies: &mut [Reply]) -> Result<(), HostVectorsError> {
        let d = self.nonzero_dim()?;
        let eval = |op: &Option<Op>| match op {
            Some(Op::Evaluate { point, out }) => point.work_index().zip(out.work_index()),
            _ => None,
        };
        if ops.iter().any(|op| eval(op).is_some()) {
            // One batched call of f over the points of the samples that asked.
            for (((op, [_, _, vecs]), point), active) in
                ops.iter().zip(&self.bufs).zip(self.points.chunks_mut(d)).zip(&mut self.active)
            {
                *active = eval(op).is_some();
                if let Some((p, _)) = eval(op) {
                    copy(vecs.get(p * d..).unwrap_or(&[]), point);
                }
            }
            self.f.eval(0, &self.active, &self.points, &mut self.outputs);
            for ((op, [_, _, vecs]), output) in ops.iter().zip(&mut self.bufs).zip(self.outputs.chunks(d)) {
                if let Some((_, o)) = eval(op) {
                    copy(output, vecs.get_mut(o * d..).unwrap_or(&mut []));
                }
            }
            replies.fill(Reply::None);
            return Ok(());
        }
        for (((op, [u, v, vecs]), z), reply) in
            ops.iter().zip(&mut self.bufs).zip(self.z.chunks_mut(d)).zip(replies.iter_mut())
        {
            if let Some(op) = op {
                *reply = SliceVectors::new(d, u, v, vecs, z).execute(op);
            }
        }
        Ok(())
    }

    fn store(&mut self, z: &mut [f32]) -> Result<(), HostVectorsError> {
        check_state("z", z.len(), self.z.len())?;
        copy(&self.z, z);
        Ok(())
    }
}

fn check_state(what: &'static str, got: usize, expected: usize) -> Result<(), HostVectorsError> {
    if got == expected { Ok(()) } else { Err(HostVectorsError::Length(LengthError { what, expected, got })) }
}
