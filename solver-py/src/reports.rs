//! What a solve reports back to Python: per-sample reports as NumPy arrays, and the
//! progress of every sample between rounds.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use solver_core::{Report, Status};

/// The name of a status in Python (`info["status"]`).
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Converged => "converged",
        Status::MaxIterations => "max_iterations",
        Status::Stalled => "stalled",
        Status::Diverged => "diverged",
        Status::NonFinite => "non_finite",
    }
}

/// `{"status": [...], "iterations": …, "f_evals": …, "residual_abs": …,
/// "residual_rel": …, "restarts": …}`, one entry per sample (NumPy arrays but for the
/// list of status names).
pub fn reports_dict<'py>(py: Python<'py>, reports: &[Report]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let status = PyList::new(py, reports.iter().map(|r| status_name(r.status)))?;
    d.set_item("status", status)?;
    let ints =
        |f: fn(&Report) -> u32| PyArray1::from_vec(py, reports.iter().map(|r| i64::from(f(r))).collect());
    let floats = |f: fn(&Report) -> f32| PyArray1::from_vec(py, reports.iter().map(f).collect::<Vec<f32>>());
    d.set_item("iterations", ints(|r| r.iterations))?;
    d.set_item("f_evals", ints(|r| r.f_evals))?;
    d.set_item("residual_abs", floats(|r| r.residual_abs))?;
    d.set_item("residual_rel", floats(|r| r.residual_rel))?;
    d.set_item("restarts", ints(|r| r.restarts))?;
    Ok(d)
}

/// `(iterations, best residual_abs, best residual_rel)` of every sample so far, as three
/// NumPy arrays.
pub type ProgressArrays<'py> =
    (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>, Bound<'py, PyArray1<f32>>);

/// [`ProgressArrays`] from each sample's `(iterations, (abs, rel))`.
pub fn progress_arrays(py: Python<'_>, each: impl Iterator<Item = (u32, (f32, f32))>) -> ProgressArrays<'_> {
    let (mut its, mut abs, mut rel) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (a, r)) in each {
        its.push(i64::from(i));
        abs.push(a);
        rel.push(r);
    }
    (PyArray1::from_vec(py, its), PyArray1::from_vec(py, abs), PyArray1::from_vec(py, rel))
}
