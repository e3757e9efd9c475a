//! Broyden solves whose vectors stay where the tensors are (a GPU): solver-core's
//! Broyden state machine decides, per sample, on the host ([`OffloadRun`]); a Python
//! executor (`deqsolve._executor.TorchVectors`, written with torch operations on the
//! tensors' device) carries out the vector operations of every sample together and
//! sends back the few scalars each decision needs.
//!
//! # The protocol
//!
//! Each round, Rust calls `executor.execute(codes, params)` once:
//!
//! * `codes`: int64 `[B, 4]`, one row per sample: the operation's kind (the module's
//!   `OP_*` constants; `OP_NONE` for a sample that sits this round out) and three
//!   integer arguments;
//! * `params`: float32 `[B]`, the operation's float argument (the trial step `alpha`, or
//!   `1 / vᵀΔg` for a new `u`).
//!
//! It returns float32 `[B, 3]`: the reply of each sample's operation. The rows are:
//!
//! | kind | arguments | does ([`BroydenOp`] says exactly) | reply |
//! |---|---|---|---|
//! | `OP_EVALUATE` | point, out | `out ← f(point)` for the whole batch at once | — |
//! | `OP_RESIDUAL` | x, g, root | `g ← g − x` (unless root) | `‖g‖`, scale, all finite |
//! | `OP_KEEP_BEST` | from | `z ← from` | — |
//! | `OP_TRIAL` | reset | `p ← g` if reset; `xn ← x + alpha·p` | — |
//! | `OP_ACCEPT` | end, skip | `Δz`, `Δg`, `x ← xn`, `v = HᵀΔz` into `xn` | `vᵀΔg`, `‖v‖`, `‖Δg‖` |
//! | `OP_NEW_U` | slot, end, skip | `u_slot ← (Δz + Δg − U(VᵀΔg))·inv` | `u_slot` finite |
//! | `OP_FINISH` | store, slot | `v_slot ← xn` (store 1) or zero the pair (store 2); `g ← gn` | — |
//! | `OP_STEP` | count | `p ← g − U(Vᵀg)` over the first `count` pairs | `p` finite |
//!
//! Vectors are named by [`Vector::index`](solver_core::broyden::ops::Vector::index)
//! (0 `x`, 1 `g`, 2 `p`, 3 `xn`, 4 `gn`); a pair set is the rows `i < end` with `i ≠ skip`
//! (`skip = −1`: none). An exception raised by the executor (or by `f` inside it) ends
//! the solve and reaches the caller unchanged.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use solver_core::broyden::ops::{BroydenOp, Reply, Store};
use solver_host::OffloadRun;

use crate::config::{Config, Method};
use crate::reports::{ProgressArrays, progress_arrays, reports_dict};

/// Operation kinds of the executor protocol.
pub const OP_NONE: i64 = 0;
/// `out ← f(point)`.
pub const OP_EVALUATE: i64 = 1;
/// The residual and its norms.
pub const OP_RESIDUAL: i64 = 2;
/// `z ← from`.
pub const OP_KEEP_BEST: i64 = 3;
/// The trial point.
pub const OP_TRIAL: i64 = 4;
/// The accepted step and `v = HᵀΔz`.
pub const OP_ACCEPT: i64 = 5;
/// The new `u`.
pub const OP_NEW_U: i64 = 6;
/// The end of an update.
pub const OP_FINISH: i64 = 7;
/// The quasi-Newton step.
pub const OP_STEP: i64 = 8;

/// A row of `codes` and the float argument of one operation.
fn encode(op: &Option<BroydenOp>) -> ([i64; 4], f32) {
    let skip = |s: Option<usize>| s.map_or(-1, |s| s as i64);
    match *op {
        None | Some(BroydenOp::Done(_)) => ([OP_NONE, 0, 0, 0], 0.0),
        Some(BroydenOp::Evaluate { point, out }) => {
            ([OP_EVALUATE, point.index() as i64, out.index() as i64, 0], 0.0)
        }
        Some(BroydenOp::Residual { x, g, root }) => {
            ([OP_RESIDUAL, x.index() as i64, g.index() as i64, i64::from(root)], 0.0)
        }
        Some(BroydenOp::KeepBest { from }) => ([OP_KEEP_BEST, from.index() as i64, 0, 0], 0.0),
        Some(BroydenOp::Trial { reset, alpha }) => ([OP_TRIAL, i64::from(reset), 0, 0], alpha),
        Some(BroydenOp::Accept { pairs }) => ([OP_ACCEPT, pairs.end as i64, skip(pairs.skip), 0], 0.0),
        Some(BroydenOp::NewU { slot, pairs, inv }) => {
            ([OP_NEW_U, slot as i64, pairs.end as i64, skip(pairs.skip)], inv)
        }
        Some(BroydenOp::Finish { store }) => match store {
            Store::Nothing => ([OP_FINISH, 0, 0, 0], 0.0),
            Store::Keep(slot) => ([OP_FINISH, 1, slot as i64, 0], 0.0),
            Store::Zero(slot) => ([OP_FINISH, 2, slot as i64, 0], 0.0),
        },
        Some(BroydenOp::Step { count }) => ([OP_STEP, count as i64, 0, 0], 0.0),
    }
}

/// The reply to `op` from its row of the executor's answer.
fn decode(op: &Option<BroydenOp>, row: &[f32]) -> Reply {
    let at = |i: usize| row.get(i).copied().unwrap_or(f32::NAN);
    match op {
        Some(BroydenOp::Residual { .. }) => {
            Reply::Residual { abs: at(0), scale: at(1), finite: at(2) != 0.0 }
        }
        Some(BroydenOp::Accept { .. }) => Reply::Dots { vg: at(0), v_norm: at(1), g_norm: at(2) },
        Some(BroydenOp::NewU { .. } | BroydenOp::Step { .. }) => Reply::Finite(at(0) != 0.0),
        _ => Reply::None,
    }
}

/// The Broyden solves of a batch whose vectors a Python executor holds.
#[pyclass(module = "deqsolve._native")]
pub struct OffloadBatch {
    run: OffloadRun,
    executor: Py<PyAny>,
    codes: Vec<i64>,
    params: Vec<f32>,
}

#[pymethods]
impl OffloadBatch {
    /// `samples` Broyden solves configured by `config`, whose vector work `executor`
    /// carries out (it holds every sample's start point already).
    #[new]
    fn new(config: &Config, samples: usize, executor: Py<PyAny>) -> PyResult<Self> {
        let Method::Broyden(settings) = config.method else {
            return Err(PyValueError::new_err(format!(
                "deqsolve: the device executor runs Broyden only, not {:?}",
                config.method.name()
            )));
        };
        let run = OffloadRun::new(samples, &settings, config.memory, &config.opts)
            .ok_or_else(|| PyValueError::new_err("deqsolve: memory must be at least 1"))?;
        Ok(OffloadBatch { run, executor, codes: Vec::new(), params: Vec::new() })
    }

    /// Carries out operation rounds up to and including the next evaluation round, each
    /// by one call of the executor. Returns the number of samples evaluated, or `0`
    /// once every sample has stopped.
    fn round(&mut self, py: Python<'_>) -> PyResult<usize> {
        let executor = self.executor.bind(py);
        let (codes, params) = (&mut self.codes, &mut self.params);
        self.run.round(|ops, replies| {
            codes.clear();
            params.clear();
            for op in ops {
                let (c, p) = encode(op);
                codes.extend_from_slice(&c);
                params.push(p);
            }
            let b = ops.len();
            let codes = PyArray1::from_slice(py, codes).reshape([b, 4])?;
            let params = PyArray1::from_slice(py, params);
            let answer = executor.call_method1("execute", (codes, params))?;
            let answer: PyReadonlyArray2<'_, f32> = answer.extract().map_err(|_| {
                PyTypeError::new_err(
                    "deqsolve: the executor must answer a float32 NumPy array of shape [B, 3]",
                )
            })?;
            if answer.shape() != [b, 3] {
                return Err(PyValueError::new_err(format!(
                    "deqsolve: the executor answered shape {:?}, expected [{b}, 3]",
                    answer.shape()
                )));
            }
            let rows = answer
                .as_slice()
                .map_err(|_| PyValueError::new_err("deqsolve: the answer must be contiguous"))?;
            for ((op, reply), row) in ops.iter().zip(replies.iter_mut()).zip(rows.chunks(3)) {
                *reply = decode(op, row);
            }
            Ok(())
        })
    }

    /// Every sample's iterations and best residuals (absolute, relative) so far.
    fn progress<'py>(&self, py: Python<'py>) -> ProgressArrays<'py> {
        progress_arrays(py, self.run.states().iter().map(|s| (s.iterations(), s.best_residual())))
    }

    /// The per-sample reports, as a dict of lists and arrays.
    fn reports<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        reports_dict(py, self.run.reports())
    }
}
