//! Solvers whose dimension and history depth are chosen at run time.

use core::fmt;

use solver_core::anderson::AndersonBuffers;
use solver_core::step::{IntoRequest, Resume, Step, drive};
use solver_core::{
    AndersonSettings, AndersonState, AndersonWork, BroydenSettings, BroydenState, BroydenWork, Options,
    PicardSettings, PicardState, PicardWork, Report, Status, WorkError,
};

/// A solver with run-time sizes. All three implement it, so generic code (batches, the
/// lockstep solver, the command-line tool) can hold any of them.
///
/// A solve runs either in one call ([`solve`](Self::solve), with a closure for `f`) or
/// one evaluation at a time ([`start`](Self::start), then [`request`](Self::request) /
/// [`resume`](Self::resume) until [`Step::Done`]), which lets a batch of solves share one
/// batched evaluation of `f` per round. Both run solver-core's code.
pub trait HostSolver: Send {
    /// Number of unknowns.
    fn dim(&self) -> usize;
    /// Bytes of the solver's buffers (fixed at construction).
    fn memory_bytes(&self) -> usize;
    /// Starts a solve from `z` (length [`dim`](Self::dim)); `f` of `z` is requested first.
    fn start(&mut self, z: &[f32], opts: &Options) -> Result<(), WorkError>;
    /// The point at which `f` is needed and the buffer that receives `f` of it. Before
    /// any [`start`](Self::start), two empty slices.
    fn request(&mut self) -> (&[f32], &mut [f32]);
    /// Continues once the request's output buffer holds `f` of its point. `z` is the
    /// caller's iterate, updated with every new best point; after [`Step::Done`] it holds
    /// the iterate the report describes. Before any start, `Done` with an empty report.
    fn resume(&mut self, z: &mut [f32]) -> Step;
    /// Iterations the current (or last) solve has taken; `0` before any start.
    fn iterations(&self) -> u32;
    /// `(residual_abs, residual_rel)` of the best iterate of the current (or last) solve,
    /// the one its caller's `z` holds; `(∞, ∞)` before any finite evaluation.
    fn best_residual(&self) -> (f32, f32);
    /// Finds `z = f(z)` from `z` (length [`dim`](Self::dim)), leaving the best iterate in
    /// `z`. No allocation happens during the solve.
    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        self.start(z, opts)?;
        Ok(drive(&mut Stepped(self), &mut (), f, z))
    }
}

impl<S: HostSolver + ?Sized> HostSolver for Box<S> {
    fn dim(&self) -> usize {
        (**self).dim()
    }

    fn memory_bytes(&self) -> usize {
        (**self).memory_bytes()
    }

    fn start(&mut self, z: &[f32], opts: &Options) -> Result<(), WorkError> {
        (**self).start(z, opts)
    }

    fn request(&mut self) -> (&[f32], &mut [f32]) {
        (**self).request()
    }

    fn resume(&mut self, z: &mut [f32]) -> Step {
        (**self).resume(z)
    }

    fn iterations(&self) -> u32 {
        (**self).iterations()
    }

    fn best_residual(&self) -> (f32, f32) {
        (**self).best_residual()
    }
}

/// A [`HostSolver`] seen as solver-core's [`Resume`], so that `solve` is solver-core's
/// own loop.
struct Stepped<'s, S: ?Sized>(&'s mut S);

impl<S: HostSolver + ?Sized> Resume for Stepped<'_, S> {
    type State = ();

    fn request(&mut self, _: &()) -> (&[f32], &mut [f32]) {
        self.0.request()
    }

    fn resume(&mut self, _: &mut (), z: &mut [f32]) -> Step {
        self.0.resume(z)
    }
}

/// What `resume` reports for a solver that was never started (and what the lockstep
/// solver reports for a sample whose solver could not start).
pub(crate) const NOT_STARTED: Report = Report {
    status: Status::MaxIterations,
    iterations: 0,
    f_evals: 0,
    residual_abs: f32::INFINITY,
    residual_rel: f32::INFINITY,
    restarts: 0,
};

/// The request of a started workspace, or empty slices.
fn request_of<'a, W: IntoRequest<'a> + 'a>(
    work: Result<W, WorkError>,
    state: Option<&W::State>,
) -> (&'a [f32], &'a mut [f32]) {
    match (work, state) {
        (Ok(w), Some(st)) => w.into_request(st),
        _ => (&[], &mut []),
    }
}

/// Resumes a started workspace, or reports that none was started.
fn resume_of<W: Resume>(work: Result<W, WorkError>, state: Option<&mut W::State>, z: &mut [f32]) -> Step {
    match (work, state) {
        (Ok(mut w), Some(st)) => w.resume(st, z),
        _ => Step::Done(NOT_STARTED),
    }
}

/// Sizes that cannot make a solver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// The dimension is zero.
    ZeroDimension,
    /// The history depth is zero.
    ZeroHistory,
    /// The buffers would not fit in the address space.
    TooLarge,
    /// Solvers meant to work together have different dimensions.
    MixedDimensions,
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeError::ZeroDimension => "the dimension must be at least 1",
            SizeError::ZeroHistory => "the history depth must be at least 1",
            SizeError::TooLarge => "the solver's buffers would not fit in memory",
            SizeError::MixedDimensions => "the solvers of one batch must all have the same dimension",
        })
    }
}

impl std::error::Error for SizeError {}

/// A zeroed buffer of `a·b` floats, or `TooLarge` when `a·b` overflows or the
/// allocator refuses it (the allocation is tried, so a size that passes the arithmetic
/// but not the machine is an error, not an abort).
pub(crate) fn buffer(a: usize, b: usize) -> Result<Vec<f32>, SizeError> {
    let len = a.checked_mul(b).ok_or(SizeError::TooLarge)?;
    len.checked_mul(4).filter(|&bytes| bytes <= isize::MAX as usize).ok_or(SizeError::TooLarge)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| SizeError::TooLarge)?;
    v.resize(len, 0.0);
    Ok(v)
}

fn check(n: usize, m: usize) -> Result<(), SizeError> {
    if n == 0 {
        Err(SizeError::ZeroDimension)
    } else if m == 0 {
        Err(SizeError::ZeroHistory)
    } else {
        Ok(())
    }
}

/// [`solver_core::Broyden`] with run-time `n` and `m`: `4·n·(2m + 5)` bytes of buffers.
#[derive(Clone, Debug)]
pub struct DynBroyden {
    n: usize,
    m: usize,
    u: Vec<f32>,
    v: Vec<f32>,
    vecs: Vec<f32>,
    /// Solver settings; change them freely between solves.
    pub settings: BroydenSettings,
    state: Option<BroydenState>,
}

/// `4·(per_n·n + rest)` bytes, or `None` on overflow.
fn bytes(n: usize, per_n: usize, rest: usize) -> Option<usize> {
    per_n.checked_mul(n)?.checked_add(rest)?.checked_mul(4)
}

impl DynBroyden {
    /// Bytes of the buffers [`new`](Self::new)`(n, m)` allocates, `4·n·(2m + 5)`,
    /// without allocating them; `None` if the figure overflows.
    pub fn bytes_for(n: usize, m: usize) -> Option<usize> {
        bytes(n, m.checked_mul(2)?.checked_add(5)?, 0)
    }

    /// A solver for `n` unknowns keeping at most `m` update pairs.
    pub fn new(n: usize, m: usize) -> Result<Self, SizeError> {
        check(n, m)?;
        Ok(DynBroyden {
            n,
            m,
            u: buffer(m, n)?,
            v: buffer(m, n)?,
            vecs: buffer(5, n)?,
            settings: BroydenSettings::DEFAULT,
            state: None,
        })
    }

    fn work(&mut self) -> Result<BroydenWork<'_>, WorkError> {
        BroydenWork::new(self.n, self.m, &mut self.u, &mut self.v, &mut self.vecs)
    }

    /// Finds `g(z) = 0` for a residual `g` given directly.
    pub fn solve_root(
        &mut self,
        g: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let settings = self.settings;
        let state = self.work()?.start_root(&settings, z, opts)?;
        self.state = Some(state);
        Ok(drive(&mut Stepped(self), &mut (), g, z))
    }
}

impl HostSolver for DynBroyden {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        4 * (self.u.len() + self.v.len() + self.vecs.len())
    }

    fn start(&mut self, z: &[f32], opts: &Options) -> Result<(), WorkError> {
        let settings = self.settings;
        self.state = Some(self.work()?.start(&settings, z, opts)?);
        Ok(())
    }

    fn request(&mut self) -> (&[f32], &mut [f32]) {
        let work = BroydenWork::new(self.n, self.m, &mut self.u, &mut self.v, &mut self.vecs);
        request_of(work, self.state.as_ref())
    }

    fn resume(&mut self, z: &mut [f32]) -> Step {
        let work = BroydenWork::new(self.n, self.m, &mut self.u, &mut self.v, &mut self.vecs);
        resume_of(work, self.state.as_mut(), z)
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.iterations())
    }

    fn best_residual(&self) -> (f32, f32) {
        self.state.as_ref().map_or((f32::INFINITY, f32::INFINITY), |s| s.best_residual())
    }
}

/// [`solver_core::Anderson`] with run-time `n` and `m`:
/// `4·n·(2m + 4) + 4·(2m² + m)` bytes of buffers.
#[derive(Clone, Debug)]
pub struct DynAnderson {
    n: usize,
    m: usize,
    dx: Vec<f32>,
    dg: Vec<f32>,
    vecs: Vec<f32>,
    gram: Vec<f32>,
    fac: Vec<f32>,
    coef: Vec<f32>,
    /// Solver settings; change them freely between solves.
    pub settings: AndersonSettings,
    state: Option<AndersonState>,
}

impl DynAnderson {
    /// Bytes of the buffers [`new`](Self::new)`(n, m)` allocates,
    /// `4·n·(2m + 4) + 4·(2m² + m)`, without allocating them; `None` on overflow.
    pub fn bytes_for(n: usize, m: usize) -> Option<usize> {
        bytes(n, m.checked_mul(2)?.checked_add(4)?, m.checked_mul(m)?.checked_mul(2)?.checked_add(m)?)
    }

    /// A solver for `n` unknowns over the `m` last differences.
    pub fn new(n: usize, m: usize) -> Result<Self, SizeError> {
        check(n, m)?;
        Ok(DynAnderson {
            n,
            m,
            dx: buffer(m, n)?,
            dg: buffer(m, n)?,
            vecs: buffer(4, n)?,
            gram: buffer(m, m)?,
            fac: buffer(m, m)?,
            coef: buffer(m, 1)?,
            settings: AndersonSettings::DEFAULT,
            state: None,
        })
    }

    fn work(&mut self) -> Result<AndersonWork<'_>, WorkError> {
        let bufs = AndersonBuffers {
            dx: &mut self.dx,
            dg: &mut self.dg,
            vecs: &mut self.vecs,
            gram: &mut self.gram,
            fac: &mut self.fac,
            coef: &mut self.coef,
        };
        AndersonWork::new(self.n, self.m, bufs)
    }
}

impl HostSolver for DynAnderson {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        4 * (self.dx.len()
            + self.dg.len()
            + self.vecs.len()
            + self.gram.len()
            + self.fac.len()
            + self.coef.len())
    }

    fn start(&mut self, z: &[f32], opts: &Options) -> Result<(), WorkError> {
        let settings = self.settings;
        self.state = Some(self.work()?.start(&settings, z, opts)?);
        Ok(())
    }

    fn request(&mut self) -> (&[f32], &mut [f32]) {
        let state = self.state;
        request_of(self.work(), state.as_ref())
    }

    fn resume(&mut self, z: &mut [f32]) -> Step {
        let mut state = self.state;
        let step = resume_of(self.work(), state.as_mut(), z);
        self.state = state;
        step
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.iterations())
    }

    fn best_residual(&self) -> (f32, f32) {
        self.state.as_ref().map_or((f32::INFINITY, f32::INFINITY), |s| s.best_residual())
    }
}

/// [`solver_core::Picard`] with run-time `n`: `8·n` bytes of buffers.
#[derive(Clone, Debug)]
pub struct DynPicard {
    n: usize,
    vecs: Vec<f32>,
    /// Solver settings; change them freely between solves.
    pub settings: PicardSettings,
    state: Option<PicardState>,
}

impl DynPicard {
    /// Bytes of the buffers [`new`](Self::new)`(n)` allocates, `8·n`; `None` on overflow.
    pub fn bytes_for(n: usize) -> Option<usize> {
        bytes(n, 2, 0)
    }

    /// A solver for `n` unknowns.
    pub fn new(n: usize) -> Result<Self, SizeError> {
        check(n, 1)?;
        Ok(DynPicard { n, vecs: buffer(2, n)?, settings: PicardSettings::DEFAULT, state: None })
    }
}

impl HostSolver for DynPicard {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        4 * self.vecs.len()
    }

    fn start(&mut self, z: &[f32], opts: &Options) -> Result<(), WorkError> {
        let settings = self.settings;
        self.state = Some(PicardWork::new(self.n, &mut self.vecs)?.start(&settings, z, opts)?);
        Ok(())
    }

    fn request(&mut self) -> (&[f32], &mut [f32]) {
        request_of(PicardWork::new(self.n, &mut self.vecs), self.state.as_ref())
    }

    fn resume(&mut self, z: &mut [f32]) -> Step {
        resume_of(PicardWork::new(self.n, &mut self.vecs), self.state.as_mut(), z)
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.iterations())
    }

    fn best_residual(&self) -> (f32, f32) {
        self.state.as_ref().map_or((f32::INFINITY, f32::INFINITY), |s| s.best_residual())
    }
}
