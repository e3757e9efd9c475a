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
use solver_host::{AnySolver, DynAnderson, DynBroyden, DynPicard, LockstepError, Rounds, SizeError, Solver};

use crate::config::{Config, Method};
use crate::reports::{ProgressArrays, progress_arrays, reports_dict};

/// One solver per sample of a `[B × d]` batch in host memory.
#[pyclass(module = "deqsolve._native")]
pub struct HostBatch {
    solvers: Rounds<AnySolver>,
    config: Config,
}

fn size_error(e: SizeError) -> PyErr {
    match e {
        SizeError::TooLarge => PyMemoryError::new_err(format!("deqsolve: {e}")),
        _ => PyValueError::new_err(format!("deqsolve: {e}")),
    }
}

/// One solver of dimension `dim` as `config` chooses and sets it up.
fn solver(config: &Config, dim: usize) -> Result<AnySolver, SizeError> {
    let m = config.memory;
    Ok(match config.method {
        Method::Broyden(s) => {
            let mut solver = DynBroyden::with_sizes(dim, m)?;
            solver.settings = s;
            AnySolver::Broyden(solver)
        }
        Method::Anderson(s) => {
            let mut solver = DynAnderson::with_sizes(dim, m)?;
            solver.settings = s;
            AnySolver::Anderson(solver)
        }
        Method::Picard(s) => {
            let mut solver = DynPicard::with_sizes(dim)?;
            solver.settings = s;
            AnySolver::Picard(solver)
        }
    })
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
        let solvers = Rounds::new(samples, || solver(config, dim)).map_err(size_error)?;
        Ok(HostBatch { solvers, config: *config })
    }

    /// Bytes of every sample's solver (fixed at construction).
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.solvers.memory_bytes()
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
        self.solvers.start(z, &opts, points).map_err(state_error)
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
        py.detach(|| solvers.advance(outputs, z, points)).map_err(state_error)
    }

    /// Which samples are still running.
    fn active<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        PyArray1::from_slice(py, self.solvers.active())
    }

    /// Every sample's iterations and best residuals (absolute, relative) so far.
    fn progress<'py>(&self, py: Python<'py>) -> ProgressArrays<'py> {
        progress_arrays(py, self.solvers.solvers().iter().map(|s| (s.iterations(), s.best_residual())))
    }

    /// The per-sample reports of the last solve, as a dict of lists and arrays.
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let reports: Vec<Report> = self.solvers.reports();
        reports_dict(py, &reports)
    }
}
