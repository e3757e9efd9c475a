//! A solve's configuration, read once from Python's keyword arguments: which solver,
//! its history depth, the stopping rule ([`Options`]) and the solver's own settings, all
//! checked here so that a bad value is one clear `ValueError` or `TypeError` before any
//! work. The defaults are solver-core's, never a copy.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};
use solver_core::{AndersonSettings, BroydenSettings, History, Options, PicardSettings};

/// The algorithm and its own settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// `solver="broyden"`.
    Broyden(BroydenSettings),
    /// `solver="anderson"`.
    Anderson(AndersonSettings),
    /// `solver="picard"`.
    Picard(PicardSettings),
}

impl Method {
    /// The name Python uses.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Broyden(_) => "broyden",
            Method::Anderson(_) => "anderson",
            Method::Picard(_) => "picard",
        }
    }
}

/// Everything a solve is configured with. Built by `Config(solver, memory, max_iters,
/// tol_abs, tol_rel, stall_iters, settings)`, which checks every value.
#[pyclass(frozen, module = "deqsolve._native")]
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The algorithm and its settings.
    pub method: Method,
    /// History depth: Broyden's pairs, Anderson's differences (unused by Picard).
    pub memory: usize,
    /// The stopping rule.
    pub opts: Options,
}

#[pymethods]
impl Config {
    #[new]
    #[pyo3(signature = (solver, memory, max_iters, tol_abs, tol_rel, stall_iters, settings))]
    fn new(
        solver: &str,
        memory: &Bound<'_, PyAny>,
        max_iters: &Bound<'_, PyAny>,
        tol_abs: &Bound<'_, PyAny>,
        tol_rel: &Bound<'_, PyAny>,
        stall_iters: &Bound<'_, PyAny>,
        settings: &Bound<'_, PyDict>,
    ) -> PyResult<Self> {
        let (memory, max_iters, stall_iters) =
            (int("memory", memory)?, int("max_iters", max_iters)?, int("stall_iters", stall_iters)?);
        let (tol_abs, tol_rel) = (number("tol_abs", tol_abs)?, number("tol_rel", tol_rel)?);
        let mut method = match solver {
            "broyden" => Method::Broyden(BroydenSettings::DEFAULT),
            "anderson" => Method::Anderson(AndersonSettings::DEFAULT),
            "picard" => Method::Picard(PicardSettings::DEFAULT),
            other => {
                return Err(PyValueError::new_err(format!(
                    "solver must be \"broyden\", \"anderson\" or \"picard\", not {other:?}"
                )));
            }
        };
        let memory = usize::try_from(memory)
            .ok()
            .filter(|&m| m > 0)
            .ok_or_else(|| value_error(format!("memory must be at least 1, not {memory}")))?;
        let mut opts = Options {
            max_iters: count("max_iters", max_iters)?,
            tol_abs: tolerance("tol_abs", tol_abs)?,
            tol_rel: tolerance("tol_rel", tol_rel)?,
            stall_iters: count("stall_iters", stall_iters)?,
            ..Options::DEFAULT
        };
        for (key, value) in settings.iter() {
            let key: String = key.extract()?;
            set(&mut method, &mut opts, &key, &value)?;
        }
        Ok(Config { method, memory, opts })
    }

    /// The solver's name: `"broyden"`, `"anderson"` or `"picard"`.
    #[getter]
    fn solver(&self) -> &'static str {
        self.method.name()
    }

    /// The history depth.
    #[getter]
    fn memory(&self) -> usize {
        self.memory
    }

    /// The iteration budget.
    #[getter]
    fn max_iters(&self) -> u32 {
        self.opts.max_iters
    }

    fn __repr__(&self) -> String {
        format!("Config({:?}, memory={}, {:?})", self.method, self.memory, self.opts)
    }
}

/// A float as Python writes it (`nan`, `inf`, `1e-05` rather than Rust's `NaN`, …).
fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:?}")
    }
}

fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// An integer argument (a Python `int` or anything with `__index__`, not a `bool`).
fn int(name: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(name, value, "an integer"));
    }
    value.extract().map_err(|_| type_error(name, value, "an integer"))
}

/// A numeric argument (not a `bool`).
fn number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(name, value, "a number"));
    }
    value.extract().map_err(|_| type_error(name, value, "a number"))
}

/// A count that fits the solvers' `u32`.
fn count(name: &str, v: i64) -> PyResult<u32> {
    u32::try_from(v)
        .map_err(|_| value_error(format!("{name} must be an integer from 0 to {}, not {v}", u32::MAX)))
}

/// A finite, non-negative tolerance.
fn tolerance(name: &str, v: f64) -> PyResult<f32> {
    if v.is_finite() && v >= 0.0 && v <= f64::from(f32::MAX) {
        Ok(v as f32)
    } else {
        Err(value_error(format!("{name} must be a finite number ≥ 0, not {}", py_float(v))))
    }
}

/// A float setting in the range `ok` accepts, described by `range` in the error.
fn float(name: &str, value: &Bound<'_, PyAny>, ok: impl Fn(f64) -> bool, range: &str) -> PyResult<f32> {
    let v = number(name, value)?;
    if ok(v) {
        Ok(v as f32)
    } else {
        Err(value_error(format!("{name} must be {range}, not {}", py_float(v))))
    }
}

fn type_error(name: &str, value: &Bound<'_, PyAny>, want: &str) -> PyErr {
    let ty = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("{name} must be {want}, not {ty}"))
}

/// Applies one keyword setting.
fn set(method: &mut Method, opts: &mut Options, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let damping = |v: f64| v > 0.0 && v <= 1.0;
    match (&mut *method, key) {
        (_, "divergence_factor") => {
            opts.divergence_factor = float(key, value, |v| v > 0.0, "a number > 0 (inf disables the test)")?;
        }
        (Method::Broyden(s), "history") => {
            let name: String = value.extract().map_err(|_| type_error(key, value, "a string"))?;
            s.history = match name.as_str() {
                "drop_oldest" => History::DropOldest,
                "restart" => History::Restart,
                _ => {
                    return Err(value_error(format!(
                        "history must be \"drop_oldest\" or \"restart\", not {name:?}"
                    )));
                }
            };
        }
        (Method::Broyden(s), "line_search") => {
            s.line_search = value.extract().map_err(|_| type_error(key, value, "True or False"))?;
        }
        (Method::Broyden(s), "max_backtracks") => {
            let v = int(key, value)?;
            s.max_backtracks = u8::try_from(v)
                .map_err(|_| value_error(format!("max_backtracks must be from 0 to 255, not {v}")))?;
        }
        (Method::Broyden(s), "skip_tol") => {
            s.skip_tol =
                float(key, value, |v| v.is_finite() && (0.0..1.0).contains(&v), "a number in [0, 1)")?;
        }
        (Method::Broyden(s), "reject_growth") => {
            s.reject_growth = float(key, value, |v| v > 0.0, "a number > 0 (inf accepts every step)")?;
        }
        (Method::Anderson(s), "damping") => s.damping = float(key, value, damping, "in (0, 1]")?,
        (Method::Anderson(s), "reg") => {
            s.reg = float(key, value, |v| v.is_finite() && v >= 0.0, "a finite number ≥ 0")?;
        }
        (Method::Picard(s), "damping") => s.damping = float(key, value, damping, "in (0, 1]")?,
        (Method::Picard(s), "return_image") => {
            s.return_image = value.extract().map_err(|_| type_error(key, value, "True or False"))?;
        }
        _ => {
            // The settings a solver accepts are the keys of its defaults.
            let defaults = settings_defaults(value.py(), method.name())?;
            let names: Vec<String> = defaults.keys().iter().map(|k| k.to_string()).collect();
            return Err(PyTypeError::new_err(format!(
                "unexpected keyword argument '{key}' for solver {:?}; its settings are: {}",
                method.name(),
                names.join(", ")
            )));
        }
    }
    Ok(())
}

/// An `f32` as the `f64` of its shortest decimal form (so that `1e-6f32` reads as
/// Python's `1e-06`, not `9.999999974752427e-07`).
fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::NAN)
}

/// The defaults of the stopping rule, from [`Options::DEFAULT`].
#[pyfunction]
pub fn options_defaults(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let o = Options::DEFAULT;
    let d = PyDict::new(py);
    d.set_item("max_iters", o.max_iters)?;
    d.set_item("tol_abs", decimal(o.tol_abs))?;
    d.set_item("tol_rel", decimal(o.tol_rel))?;
    d.set_item("stall_iters", o.stall_iters)?;
    Ok(d)
}

/// The defaults of one solver's settings, from solver-core's `*Settings::DEFAULT`.
#[pyfunction]
pub fn settings_defaults<'py>(py: Python<'py>, solver: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("divergence_factor", decimal(Options::DEFAULT.divergence_factor))?;
    match solver {
        "broyden" => {
            let s = BroydenSettings::DEFAULT;
            let history = match s.history {
                History::DropOldest => "drop_oldest",
                History::Restart => "restart",
            };
            d.set_item("history", history)?;
            d.set_item("line_search", s.line_search)?;
            d.set_item("max_backtracks", s.max_backtracks)?;
            d.set_item("skip_tol", decimal(s.skip_tol))?;
            d.set_item("reject_growth", decimal(s.reject_growth))?;
        }
        "anderson" => {
            let s = AndersonSettings::DEFAULT;
            d.set_item("damping", decimal(s.damping))?;
            d.set_item("reg", decimal(s.reg))?;
        }
        "picard" => {
            let s = PicardSettings::DEFAULT;
            d.set_item("damping", decimal(s.damping))?;
            d.set_item("return_image", s.return_image)?;
        }
        other => return Err(value_error(format!("no solver named {other:?}"))),
    }
    Ok(d)
}
