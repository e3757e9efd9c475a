//! Solves whose vectors are in host memory (NumPy arrays, CPU tensors): one run-time
//! solver of solver-host per sample ([`Rounds`]), advanced round by round while Python
//! evaluates `f` of the whole batch.
//!
//! Python owns the three `[B × d]` buffers a round touches: `z` (the best iterates,
//! holding the start points at `start`), `points` (what each sample asks `f` for) and
//! the output of `f`. Rust reads and writes them in place, with the GIL released while
//! the samples' solvers run in parallel.

use numpy::{PyArray1, PyReadonlyArray2, PyReadwriteArray2};
use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use solver_core::Report;
use solver_host::{DynAnderson, DynBroyden, DynPicard, HostSolver, LockstepError, Rounds, SizeError};

use crate::config::{Config, Method};
use crate::reports::{ProgressArrays, progress_arrays, reports_dict};

/// The solvers of a batch, one kind for all samples.
enum Solvers {
    Broyden(Rounds<DynBroyden>),
    Anderson(Rounds<DynAnderson>),
    Picard(Rounds<DynPicard>),
}

/// `$body` with `$r` bound to the batch's `Rounds`, whichever solver it holds.
macro_rules! each {
    ($solvers:expr, $r:ident => $body:expr) => {
        match $solvers {
            Solvers::Broyden($r) => $body,
            Solvers::Anderson($r) => $body,
            Solvers::Picard($r) => $body,
        }
    };
}

/// One solver per sample of a `[B × d]` batch in host memory.
#[pyclass(module = "deqsolve._native")]
pub struct HostBatch {
    solvers: Solvers,
    config: Config,
}

fn size_error(e: SizeError) -> PyErr {
    match e {
        SizeError::TooLarge => PyMemoryError::new_err(format!("deqsolve: {e}")),
        _ => PyValueError::new_err(format!("deqsolve: {e}")),
    }
}

/// [`Rounds::new`], its error as a Python exception.
fn rounds<S: HostSolver>(samples: usize, make: impl Fn() -> Result<S, SizeError>) -> PyResult<Rounds<S>> {
    Rounds::new(samples, make).map_err(size_error)
}

fn state_error(e: LockstepError) -> PyErr {
    PyValueError::new_err(format!("deqsolve: {e}"))
}

fn slice<'a>(a: &'a PyReadonlyArray2<'_, f32>, name: &str) -> PyResult<&'a [f32]> {
    a.as_slice().map_err(|_| PyValueError::new_err(format!("deqsolve: {name} must be C-contiguous")))
}

fn slice_mut<'a>(a: &'a mut PyReadwriteArray2<'_, f32>, name: &str) -> PyResult<&'a mut [f32]> {
    a.as_slice_mut().map_err(|_| PyValueError::new_err(format!("deqsolve: {name} must be C-contiguous")))
}

#[pymethods]
impl HostBatch {
    /// `samples` solvers of dimension `dim`, configured by `config`; all their memory is
    /// allocated here.
    #[new]
    fn new(config: &Config, samples: usize, dim: usize) -> PyResult<Self> {
        let m = config.memory;
        let solvers = match config.method {
            Method::Broyden(s) => Solvers::Broyden(rounds(samples, || {
                let mut solver = DynBroyden::new(dim, m)?;
                solver.settings = s;
                Ok(solver)
            })?),
            Method::Anderson(s) => Solvers::Anderson(rounds(samples, || {
                let mut solver = DynAnderson::new(dim, m)?;
                solver.settings = s;
                Ok(solver)
            })?),
            Method::Picard(s) => Solvers::Picard(rounds(samples, || {
                let mut solver = DynPicard::new(dim)?;
                solver.settings = s;
                Ok(solver)
            })?),
        };
        Ok(HostBatch { solvers, config: *config })
    }

    /// Bytes of every sample's solver (fixed at construction).
    #[getter]
    fn memory_bytes(&self) -> usize {
        each!(&self.solvers, r => r.memory_bytes())
    }

    /// Starts every sample from its row of `z` (`[B, d]` float32) and writes into
    /// `points` the point each asks `f` for. Returns the number of running samples.
    fn start(
        &mut self,
        z: PyReadonlyArray2<'_, f32>,
        mut points: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<usize> {
        let (z, points) = (slice(&z, "z")?, slice_mut(&mut points, "points")?);
        let opts = self.config.opts;
        each!(&mut self.solvers, r => r.start(z, &opts, points)).map_err(state_error)
    }

    /// One round: every running sample resumes with its row of `outputs` (`f` of its row
    /// of `points`); new best iterates go to `z`, the next points to `points`. Returns
    /// the number of samples still running. The solvers run in parallel, without the GIL.
    fn advance(
        &mut self,
        py: Python<'_>,
        outputs: PyReadonlyArray2<'_, f32>,
        mut z: PyReadwriteArray2<'_, f32>,
        mut points: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<usize> {
        let outputs = slice(&outputs, "the output of f")?;
        let (z, points) = (slice_mut(&mut z, "z")?, slice_mut(&mut points, "points")?);
        let solvers = &mut self.solvers;
        py.detach(|| each!(solvers, r => r.advance(outputs, z, points))).map_err(state_error)
    }

    /// Which samples are still running.
    fn active<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_slice(py, each!(&self.solvers, r => r.active()))
    }

    /// Every sample's iterations and best residuals (absolute, relative) so far.
    fn progress<'py>(&self, py: Python<'py>) -> ProgressArrays<'py> {
        each!(&self.solvers, r => progress_arrays(py, r.solvers().iter().map(|s| (s.iterations(), s.best_residual()))))
    }

    /// The per-sample reports of the last solve, as a dict of lists and arrays.
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reports: Vec<Report> = each!(&self.solvers, r => r.reports());
        reports_dict(py, &reports)
    }
}
