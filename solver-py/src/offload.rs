//! Broyden solves whose vectors stay where the tensors are (a GPU): solver-core's
//! Broyden state machine decides, per sample, on the host ([`OffloadRun`]); a Python
//! executor (`deqsolve._executor.TorchVectors`, written with torch operations on the
//! tensors' device) carries out the vector operations of every sample together and
//! sends back the one scalar each decision needs. [`NativeVectors`] is the same
//! executor over solver-core's own kernels ([`SliceVectors::execute`]): the reference the
//! others are checked against, bit-identical to a host solve.
//!
//! # The protocol
//!
//! The operations are solver-core's generic ones ([`Op`]): they know nothing of
//! Broyden's method, and neither does an executor. Each round, Rust calls
//! `executor.execute(codes, params)` once:
//!
//! * `codes`: int64 `[B, 9]` ([`CODE_WIDTH`]), one row per sample: the operation's kind
//!   (the module's `OP_*` constants; `OP_NONE` for a sample that sits this round out) in
//!   column 0, then its arguments;
//! * `params`: float32 `[B]`, the operation's float argument (`alpha`, or the `value` of
//!   a fill; 0 for the others).
//!
//! It returns float32 `[B]`: each sample's reply, a scalar for `OP_DOT` and `OP_NORM`,
//! `1` (all finite) or `0` for `OP_ALL_FINITE`, `1` (invertible) or `0` for `OP_INVERT`,
//! anything (ignored) for the others. The dense-model operations (`OP_UNIT`,
//! `OP_ADD_OUTER`, `OP_INVERT`) come only from root solves of `n ≤ m` unknowns, which
//! are not offloaded; every executor carries them out all the same.
//!
//! A vector takes two columns, `(class, row)`: the class is `VEC_X` 0, `VEC_G` 1, `VEC_P`
//! 2, `VEC_XN` 3, `VEC_GN` 4 (the work vectors, [`Vector::work_index`]), `VEC_BEST` 5
//! (the best iterate `z`), `VEC_U` 6 or `VEC_V` 7 (row `row` of `U` or `V`; `row` is 0
//! for the other classes). Every operation names up to three vectors, in columns
//! `(1, 2)` (A: the destination of an operation that writes), `(3, 4)` (B) and `(5, 6)`
//! (C):
//!
//! | kind | A | B | C | columns 7, 8 | param | does |
//! |---|---|---|---|---|---|---|
//! | `OP_EVALUATE` | out | point | | | | `out ← f(point)`, for the whole batch at once |
//! | `OP_COPY` | to | from | | | | `to ← from` |
//! | `OP_SCALE` | out | x | | | alpha | `out ← alpha·x` |
//! | `OP_COMBINE` | out | x | y | | alpha | `out ← x + alpha·y` (out may be x or y) |
//! | `OP_LOW_RANK` | out | x | a, b | end, skip | alpha | `out ← out + alpha·Σ_{i∈pairs} aᵢ (bᵢ·x)` |
//! | `OP_FILL` | out | | | | value | `out ← value` |
//! | `OP_DOT` | a | b | | | | reply `a·b` |
//! | `OP_NORM` | a | | | | | reply `‖a‖₂` (overflow-safe) |
//! | `OP_ALL_FINITE` | a | | | | | reply whether every entry of `a` is finite |
//! | `OP_UNIT` | out | | | index | value | `out ← value·e_index` |
//! | `OP_ADD_OUTER` | a (factor, 0) | coef | x | rows | | `aⱼ ← aⱼ + coef[j]·x`, rows `j < rows` |
//! | `OP_INVERT` | | | | rows (= d) | shift | `uⱼ ← A⁻¹eⱼ + shift·eⱼ`, `vⱼ ← eⱼ` for `A eⱼ = vⱼ`; reply 1 if `A` was invertible |
//!
//! For `OP_LOW_RANK`, columns 5 and 6 are the factors `a` and `b` (`VEC_U` or
//! `VEC_V`), and the pairs are the rows `i < end` with `i ≠ skip` (`skip = −1`: none);
//! `out` is a work vector or the skipped row. The samples of a round that share a kind
//! and the classes of their vectors can be carried out together: rows, pair sets and
//! params differ from sample to sample. Evaluations never share a round with other
//! operations. An exception raised by the executor (or by `f` inside it) ends the solve
//! and reaches the caller unchanged.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use solver_core::broyden::ops::{Factor, Op, Pairs, Reply, SliceVectors, Then, Vector};
use solver_host::OffloadRun;

use crate::config::{Config, Method};
use crate::reports::{ProgressArrays, progress_arrays, reports_dict};

/// Columns of a row of `codes`.
pub const CODE_WIDTH: usize = 9;

/// Operation kinds of the executor protocol: no operation this round.
pub const OP_NONE: i64 = 0;
/// `out ← f(point)`.
pub const OP_EVALUATE: i64 = 1;
/// `to ← from`.
pub const OP_COPY: i64 = 2;
/// `out ← alpha·x`.
pub const OP_SCALE: i64 = 3;
/// `out ← x + alpha·y`.
pub const OP_COMBINE: i64 = 4;
/// `out ← out + alpha·Σ aᵢ (bᵢ·x)`.
pub const OP_LOW_RANK: i64 = 5;
/// `out ← value`.
pub const OP_FILL: i64 = 6;
/// `a·b`.
pub const OP_DOT: i64 = 7;
/// `‖a‖₂`.
pub const OP_NORM: i64 = 8;
/// Whether `a` is finite.
pub const OP_ALL_FINITE: i64 = 9;
/// `out ← value·e_index`.
pub const OP_UNIT: i64 = 10;
/// `aⱼ ← aⱼ + coef[j]·x` for the rows `j < rows` of a factor.
pub const OP_ADD_OUTER: i64 = 11;
/// The dense inverse of the matrix whose columns are `V`'s rows.
pub const OP_INVERT: i64 = 12;

/// Vector classes: the work vectors are `0..5` (their [`Vector::work_index`]).
pub const VEC_BEST: i64 = 5;
/// A row of `U`.
pub const VEC_U: i64 = 6;
/// A row of `V`.
pub const VEC_V: i64 = 7;

/// Every constant of the protocol, by its Python name.
pub const CONSTANTS: [(&str, i64); 22] = [
    ("CODE_WIDTH", CODE_WIDTH as i64),
    ("OP_NONE", OP_NONE),
    ("OP_EVALUATE", OP_EVALUATE),
    ("OP_COPY", OP_COPY),
    ("OP_SCALE", OP_SCALE),
    ("OP_COMBINE", OP_COMBINE),
    ("OP_LOW_RANK", OP_LOW_RANK),
    ("OP_FILL", OP_FILL),
    ("OP_DOT", OP_DOT),
    ("OP_NORM", OP_NORM),
    ("OP_ALL_FINITE", OP_ALL_FINITE),
    ("OP_UNIT", OP_UNIT),
    ("OP_ADD_OUTER", OP_ADD_OUTER),
    ("OP_INVERT", OP_INVERT),
    ("VEC_X", 0),
    ("VEC_G", 1),
    ("VEC_P", 2),
    ("VEC_XN", 3),
    ("VEC_GN", 4),
    ("VEC_BEST", VEC_BEST),
    ("VEC_U", VEC_U),
    ("VEC_V", VEC_V),
];

/// A vector's two columns.
fn vector(v: Vector) -> [i64; 2] {
    match v {
        Vector::U(i) => [VEC_U, i as i64],
        Vector::V(i) => [VEC_V, i as i64],
        Vector::Best => [VEC_BEST, 0],
        w => [w.work_index().map_or(-1, |i| i as i64), 0],
    }
}

fn factor(f: Factor) -> i64 {
    match f {
        Factor::U => VEC_U,
        Factor::V => VEC_V,
    }
}

/// A row of `codes` and the float argument of one operation. The protocol carries the
/// primitive vocabulary only ([`Op::lowered`], which [`OffloadRun`] applies before an
/// executor sees an operation); anything else is an error.
pub fn encode(op: &Option<Op>) -> Result<([i64; CODE_WIDTH], f32), String> {
    if let Some(op) = op.filter(|op| !op.is_primitive()) {
        return Err(format!("deqsolve: {op:?} is not in the executor protocol (lower it first)"));
    }
    let row = |kind: i64, vs: &[Vector], more: [i64; 4]| {
        let mut r = [0; CODE_WIDTH];
        r[0] = kind;
        for (i, v) in vs.iter().enumerate() {
            r[1 + 2 * i..3 + 2 * i].copy_from_slice(&vector(*v));
        }
        if more != [0; 4] {
            r[5..].copy_from_slice(&more);
        }
        r
    };
    Ok(match *op {
        None | Some(Op::Done(_)) => ([0; CODE_WIDTH], 0.0),
        Some(Op::Evaluate { point, out }) => (row(OP_EVALUATE, &[out, point], [0; 4]), 0.0),
        Some(Op::Copy { from, to }) => (row(OP_COPY, &[to, from], [0; 4]), 0.0),
        Some(Op::Scale { out, alpha, x }) => (row(OP_SCALE, &[out, x], [0; 4]), alpha),
        Some(Op::Combine { out, x, alpha, y }) => (row(OP_COMBINE, &[out, x, y], [0; 4]), alpha),
        Some(Op::LowRank { out, alpha, a, b, pairs, x, .. }) => {
            let skip = pairs.skip.map_or(-1, |s| s as i64);
            (row(OP_LOW_RANK, &[out, x], [factor(a), factor(b), pairs.end as i64, skip]), alpha)
        }
        Some(Op::Fill { out, value }) => (row(OP_FILL, &[out], [0; 4]), value),
        Some(Op::Dot { a, b }) => (row(OP_DOT, &[a, b], [0; 4]), 0.0),
        Some(Op::Norm { a }) => (row(OP_NORM, &[a], [0; 4]), 0.0),
        Some(Op::AllFinite { a }) => (row(OP_ALL_FINITE, &[a], [0; 4]), 0.0),
        Some(Op::Unit { out, index, value }) => (row(OP_UNIT, &[out], [0, 0, index as i64, 0]), value),
        Some(Op::AddOuter { a, rows, coef, x }) => {
            let [xc, xr] = vector(x);
            let mut r = row(OP_ADD_OUTER, &[coef, coef], [xc, xr, rows as i64, 0]);
            r[1..3].copy_from_slice(&[factor(a), 0]);
            (r, 0.0)
        }
        Some(Op::Invert { rows, shift }) => (row(OP_INVERT, &[], [0, 0, rows as i64, 0]), shift),
    })
}

/// The vector of columns `class, row`, if there is one.
fn vector_of(class: i64, row: i64) -> Option<Vector> {
    let row = usize::try_from(row).ok();
    match class {
        0..5 => Some(Vector::WORK[class as usize]),
        VEC_BEST => Some(Vector::Best),
        VEC_U => row.map(Vector::U),
        VEC_V => row.map(Vector::V),
        _ => None,
    }
}

fn factor_of(class: i64) -> Option<Factor> {
    match class {
        VEC_U => Some(Factor::U),
        VEC_V => Some(Factor::V),
        _ => None,
    }
}

/// The operation a row of `codes` and its param encode ([`encode`]'s inverse): `Ok(None)`
/// for `OP_NONE`, `Err` for a row that encodes nothing.
pub fn decode_op(c: &[i64], param: f32) -> Result<Option<Op>, String> {
    let bad = || format!("deqsolve: no operation is encoded as {c:?}");
    let at = |i: usize| c.get(i).copied().unwrap_or(-1);
    let v = |k: usize| vector_of(at(1 + 2 * k), at(2 + 2 * k)).ok_or_else(bad);
    Ok(Some(match at(0) {
        OP_NONE => return Ok(None),
        OP_EVALUATE => Op::Evaluate { out: v(0)?, point: v(1)? },
        OP_COPY => Op::Copy { to: v(0)?, from: v(1)? },
        OP_SCALE => Op::Scale { out: v(0)?, alpha: param, x: v(1)? },
        OP_COMBINE => Op::Combine { out: v(0)?, x: v(1)?, alpha: param, y: v(2)? },
        OP_LOW_RANK => {
            let end = usize::try_from(at(7)).map_err(|_| bad())?;
            let skip = if at(8) == -1 { None } else { Some(usize::try_from(at(8)).map_err(|_| bad())?) };
            let (a, b) = (factor_of(at(5)).ok_or_else(bad)?, factor_of(at(6)).ok_or_else(bad)?);
            let (out, x) = (v(0)?, v(1)?);
            let pairs = Pairs { end, skip };
            Op::LowRank {
                out,
                from: out,
                beta: 1.0,
                alpha: param,
                a,
                b,
                pairs,
                x,
                ahead: None,
                then: Then::Nothing,
            }
        }
        OP_FILL => Op::Fill { out: v(0)?, value: param },
        OP_DOT => Op::Dot { a: v(0)?, b: v(1)? },
        OP_NORM => Op::Norm { a: v(0)? },
        OP_ALL_FINITE => Op::AllFinite { a: v(0)? },
        OP_UNIT => Op::Unit { out: v(0)?, index: usize::try_from(at(7)).map_err(|_| bad())?, value: param },
        OP_ADD_OUTER => Op::AddOuter {
            a: factor_of(at(1)).ok_or_else(bad)?,
            rows: usize::try_from(at(7)).map_err(|_| bad())?,
            coef: v(1)?,
            x: v(2)?,
        },
        OP_INVERT => Op::Invert { rows: usize::try_from(at(7)).map_err(|_| bad())?, shift: param },
        _ => return Err(bad()),
    }))
}

/// The reply to `op` from its value in the executor's answer.
fn decode(op: &Option<Op>, value: f32) -> Reply {
    match op {
        Some(Op::Dot { .. } | Op::Norm { .. }) => Reply::Scalar(value),
        Some(Op::AllFinite { .. } | Op::Invert { .. }) => Reply::Flag(value == 1.0),
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
                let (c, p) = encode(op).map_err(PyValueError::new_err)?;
                codes.extend_from_slice(&c);
                params.push(p);
            }
            let b = ops.len();
            let codes = PyArray1::from_slice(py, codes).reshape([b, CODE_WIDTH])?;
            let params = PyArray1::from_slice(py, params);
            let answer = executor.call_method1("execute", (codes, params))?;
            let answer: PyReadonlyArray1<'_, f32> = answer.extract().map_err(|_| {
                PyTypeError::new_err("deqsolve: the executor must answer a float32 NumPy array of shape [B]")
            })?;
            if answer.shape() != [b] {
                return Err(PyValueError::new_err(format!(
                    "deqsolve: the executor answered shape {:?}, expected [{b}]",
                    answer.shape()
                )));
            }
            let values = answer.as_array();
            for ((op, reply), value) in ops.iter().zip(replies.iter_mut()).zip(values.iter()) {
                *reply = decode(op, *value);
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

/// The executor of the protocol over solver-core's own kernels: each sample's vectors in
/// host memory, every operation carried out by [`SliceVectors::execute`] (so a solve is
/// bit-identical to a host solve), `f` called once per evaluation round on the `[B, d]`
/// NumPy array of the points (a sample not evaluated this round gives its best
/// iterate). The reference the torch executor is checked against.
#[pyclass(module = "deqsolve._native")]
pub struct NativeVectors {
    f: Py<PyAny>,
    d: usize,
    /// Per sample: `U`, `V` (`m·d` each) and the five work vectors (`5·d`).
    bufs: Vec<[Vec<f32>; 3]>,
    /// The best iterates, `[B × d]`.
    z: Vec<f32>,
}

#[pymethods]
impl NativeVectors {
    /// The vectors of `z0.shape[0]` samples starting from the rows of `z0` (`[B, d]`
    /// float32), with room for `memory` pairs each; `f` maps a `[B, d]` float32 array to
    /// one of the same shape.
    #[new]
    fn new(f: Py<PyAny>, z0: PyReadonlyArray2<'_, f32>, memory: usize) -> PyResult<Self> {
        let [b, d] = [z0.shape()[0], z0.shape()[1]];
        if d == 0 {
            return Err(PyValueError::new_err("deqsolve: the dimension must be at least 1"));
        }
        let z: Vec<f32> = z0.as_array().iter().copied().collect();
        let sized = |k: usize| {
            k.checked_mul(d).ok_or_else(|| PyValueError::new_err("deqsolve: the vectors are too large"))
        };
        let (md, wd) = (sized(memory)?, sized(5)?);
        let bufs = z
            .chunks(d)
            .take(b)
            .map(|row| {
                let mut work = vec![0.0; wd];
                work[..d].copy_from_slice(row);
                [vec![0.0; md], vec![0.0; md], work]
            })
            .collect();
        Ok(NativeVectors { f, d, bufs, z })
    }

    /// Every sample's best iterate, `[B, d]`.
    #[getter]
    fn z<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        PyArray1::from_slice(py, &self.z).reshape([self.bufs.len(), self.d])
    }

    /// Carries out one round of the protocol (see the module's documentation).
    fn execute<'py>(
        &mut self,
        py: Python<'py>,
        codes: PyReadonlyArray2<'_, i64>,
        params: PyReadonlyArray1<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let (b, d) = (self.bufs.len(), self.d);
        if codes.shape() != [b, CODE_WIDTH] || params.shape() != [b] {
            return Err(PyValueError::new_err("deqsolve: codes must be [B, 9] and params [B]"));
        }
        let (codes, params) = (codes.as_array(), params.as_array());
        let mut ops = Vec::with_capacity(b);
        for (row, p) in codes.rows().into_iter().zip(params.iter()) {
            let row: Vec<i64> = row.iter().copied().collect();
            ops.push(decode_op(&row, *p).map_err(PyValueError::new_err)?);
        }
        let mut replies = vec![0.0f32; b];
        let eval = |op: &Option<Op>| match op {
            Some(Op::Evaluate { point, out }) => point.work_index().zip(out.work_index()),
            _ => None,
        };
        if ops.iter().any(|op| eval(op).is_some()) {
            let mut points = self.z.clone();
            for ((op, [_, _, work]), point) in ops.iter().zip(&self.bufs).zip(points.chunks_mut(d)) {
                if let Some((p, _)) = eval(op) {
                    point.copy_from_slice(&work[p * d..(p + 1) * d]);
                }
            }
            let points = PyArray1::from_vec(py, points).reshape([b, d])?;
            let y = self.f.bind(py).call1((points,))?;
            let y: PyReadonlyArray2<'_, f32> = y.extract().map_err(|_| {
                PyTypeError::new_err("deqsolve: f must return a float32 NumPy array of shape [B, d]")
            })?;
            if y.shape() != [b, d] {
                return Err(PyValueError::new_err(format!(
                    "deqsolve: f returned shape {:?}, expected [{b}, {d}]",
                    y.shape()
                )));
            }
            for ((op, [_, _, work]), row) in ops.iter().zip(&mut self.bufs).zip(y.as_array().rows()) {
                if let Some((_, o)) = eval(op) {
                    for (w, v) in work[o * d..(o + 1) * d].iter_mut().zip(row.iter()) {
                        *w = *v;
                    }
                }
            }
        } else {
            for (((op, [u, v, work]), z), reply) in
                ops.iter().zip(&mut self.bufs).zip(self.z.chunks_mut(d)).zip(&mut replies)
            {
                if let Some(op) = op {
                    *reply = match SliceVectors::new(d, u, v, work, z).execute(op) {
                        Reply::Scalar(s) => s,
                        Reply::Flag(f) => f32::from(u8::from(f)),
                        Reply::None => 0.0,
                        // Only the fused operations reply several values, and the
                        // protocol carries primitive ones.
                        Reply::Scalars(_) | Reply::Flags(_) => f32::NAN,
                    };
                }
            }
        }
        Ok(PyArray1::from_vec(py, replies))
    }
}
