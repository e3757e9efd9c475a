//! Solvers whose dimension and history depth are chosen at run time.

use core::fmt;

use solver_core::anderson::AndersonBuffers;
use solver_core::{
    AndersonSettings, AndersonWork, BroydenSettings, BroydenWork, Options, PicardSettings, PicardWork,
    Report, WorkError,
};

/// A solver with run-time sizes. All three implement it, so generic code (batches, the
/// command-line tool) can hold any of them.
pub trait HostSolver {
    /// Number of unknowns.
    fn dim(&self) -> usize;
    /// Bytes of the solver's buffers (fixed at construction).
    fn memory_bytes(&self) -> usize;
    /// Finds `z = f(z)` from `z` (length [`dim`](Self::dim)), leaving the best iterate in
    /// `z`. No allocation happens during the solve.
    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError>;
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
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SizeError::ZeroDimension => "the dimension must be at least 1",
            SizeError::ZeroHistory => "the history depth must be at least 1",
            SizeError::TooLarge => "the solver's buffers would not fit in memory",
        })
    }
}

impl std::error::Error for SizeError {}

/// A zeroed buffer of `a·b` floats, or `TooLarge`.
fn buffer(a: usize, b: usize) -> Result<Vec<f32>, SizeError> {
    let len = a.checked_mul(b).ok_or(SizeError::TooLarge)?;
    len.checked_mul(4).filter(|&bytes| bytes <= isize::MAX as usize).ok_or(SizeError::TooLarge)?;
    Ok(vec![0.0; len])
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
}

impl DynBroyden {
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
        self.work()?.solve_root(&settings, g, z, opts)
    }
}

impl HostSolver for DynBroyden {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        4 * (self.u.len() + self.v.len() + self.vecs.len())
    }

    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let settings = self.settings;
        self.work()?.solve(&settings, f, z, opts)
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
}

impl DynAnderson {
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
        })
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

    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let settings = self.settings;
        let bufs = AndersonBuffers {
            dx: &mut self.dx,
            dg: &mut self.dg,
            vecs: &mut self.vecs,
            gram: &mut self.gram,
            fac: &mut self.fac,
            coef: &mut self.coef,
        };
        AndersonWork::new(self.n, self.m, bufs)?.solve(&settings, f, z, opts)
    }
}

/// [`solver_core::Picard`] with run-time `n`: `8·n` bytes of buffers.
#[derive(Clone, Debug)]
pub struct DynPicard {
    n: usize,
    vecs: Vec<f32>,
    /// Solver settings; change them freely between solves.
    pub settings: PicardSettings,
}

impl DynPicard {
    /// A solver for `n` unknowns.
    pub fn new(n: usize) -> Result<Self, SizeError> {
        check(n, 1)?;
        Ok(DynPicard { n, vecs: buffer(2, n)?, settings: PicardSettings::DEFAULT })
    }
}

impl HostSolver for DynPicard {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        4 * self.vecs.len()
    }

    fn solve(
        &mut self,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let settings = self.settings;
        PicardWork::new(self.n, &mut self.vecs)?.solve(&settings, f, z, opts)
    }
}
