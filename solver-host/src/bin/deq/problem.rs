//! The problem a command works on: a model and a batch of inputs, from files or built
//! in, and the solvers and thread pool that solve it.

use std::fmt::LowerExp;
use std::path::Path;

use solver_host::model::{AnyLayer, DeqLayer, Float, InputBatch};
use solver_host::solver_core::Options;
use solver_host::{AnySolver, DynAnderson, DynBroyden, DynPicard, SizeError};

use crate::args::{DemoArgs, ProblemArgs, SolverKind};
use crate::limits::{self, MAX_THREADS, floats, values};
use crate::outputs::Outputs;
use crate::solve::Outcome;

/// Shape of the built-in demonstration problem: a d = 256 tanh layer, 64 samples.
pub const DEMO: (usize, usize, usize) = (256, 64, 64);

/// A float type a problem is solved in (`f32` or `f64`, the model file's dtype): what
/// the commands print, and whether the GPU can solve it.
pub trait CliFloat: Float + LowerExp {
    /// `deq solve --device cuda` of `p` ([`crate::gpu`]), or why not.
    fn solve_on_gpu(
        p: &Problem<Self>,
        kind: SolverKind,
        memory: usize,
        opts: &Options<Self>,
        progress: bool,
    ) -> Result<Outcome<Self>, String>;
}

/// A model and its inputs, in the model's float type `T`.
pub struct Problem<T = f32> {
    /// The layer.
    pub layer: DeqLayer<T>,
    /// The inputs (and optional starting states).
    pub input: InputBatch<T>,
    /// Where the model came from, for messages.
    pub source: String,
}

/// A problem in the float type of its model file: each command runs one generic
/// function on it.
pub enum AnyProblem {
    /// An F32 model (and the built-in one).
    F32(Problem<f32>),
    /// An F64 model.
    F64(Problem<f64>),
}

impl<T: Float> Problem<T> {
    /// Samples `B`.
    pub fn samples(&self) -> usize {
        self.input.samples()
    }

    /// Tokens `L` per sample.
    pub fn tokens(&self) -> usize {
        self.input.tokens()
    }

    /// Unknowns per sample: `L·h`.
    pub fn dim(&self) -> usize {
        self.tokens() * self.layer.hidden()
    }

    /// The state's shape: `[B, h]` or `[B, L, h]`.
    pub fn state_shape(&self) -> Vec<usize> {
        self.input.state_shape(self.layer.hidden())
    }

    /// The starting state: `z0` from the input file, or zeros.
    pub fn start(&self) -> Vec<T> {
        self.input.z0.clone().unwrap_or_else(|| vec![T::ZERO; self.samples() * self.dim()])
    }
}

/// The input files `args` names, with their flags (for [`Outputs::prepare`]).
pub fn inputs(args: &ProblemArgs) -> Vec<(&'static str, &Path)> {
    [("--model", &args.model), ("--input", &args.input)]
        .into_iter()
        .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
        .collect()
}

/// Loads the model and input named by `args`, in the model file's float type, or the
/// built-in problem (f32) when no model is given.
pub fn load(args: &ProblemArgs) -> Result<AnyProblem, String> {
    match (&args.model, &args.input) {
        (None, None) => Ok(AnyProblem::F32(demo())),
        (None, Some(_)) => Err("--input needs --model (the built-in model brings its own input)".into()),
        (Some(m), None) => Err(format!("--model {} needs --input (a safetensors file with x)", m.display())),
        (Some(m), Some(x)) => match AnyLayer::load(m).map_err(|e| e.to_string())? {
            AnyLayer::F32(layer) => with_input(layer, m, x).map(AnyProblem::F32),
            AnyLayer::F64(layer) => with_input(layer, m, x).map(AnyProblem::F64),
        },
    }
}

/// The problem of `layer` (read from `model`) and the input file `x`, which must have
/// the layer's dtype.
fn with_input<T: Float>(layer: DeqLayer<T>, model: &Path, x: &Path) -> Result<Problem<T>, String> {
    let input = InputBatch::load(x, &layer).map_err(|e| e.to_string())?;
    Ok(Problem { layer, input, source: model.display().to_string() })
}

/// The built-in problem: [`DeqLayer::demo`] and a deterministic input, in f32.
pub fn demo() -> Problem {
    let (h, p, b) = DEMO;
    let layer = DeqLayer::demo(h, p);
    let input = InputBatch::demo(b, 1, p);
    Problem { layer, input, source: "built-in demonstration model".into() }
}

/// `deq demo`: writes the built-in model and an input of the requested shape.
pub fn write_demo(a: &DemoArgs) -> Result<(), String> {
    for (what, v) in [
        ("--hidden", a.hidden),
        ("--input-width", a.input_width),
        ("--samples", a.samples),
        ("--tokens", a.tokens),
    ] {
        if v == 0 {
            return Err(format!("{what} must be at least 1"));
        }
    }
    // The most held at once: the layer's W, Wᵀ, U and Uᵀ plus the file's tensor bytes
    // and the file (4 copies of U; of W, 4 then, and 3 while it is drawn), with one
    // copy of W to spare; then the input, likewise.
    let model = floats(&[5, a.hidden, a.hidden]).zip(floats(&[4, a.hidden, a.input_width]));
    limits::fits(
        &format!("--hidden {} --input-width {}", a.hidden, a.input_width),
        model.map(|(w, u)| w + u),
    )?;
    limits::fits(
        &format!("--samples {} --tokens {} --input-width {}", a.samples, a.tokens, a.input_width),
        floats(&[3, a.samples, a.tokens, a.input_width]),
    )?;
    let out = Outputs::prepare(&[("--model-out", &a.model_out), ("--input-out", &a.input_out)], &[])?;
    let layer = DeqLayer::demo(a.hidden, a.input_width);
    let input = InputBatch::demo(a.samples, a.tokens, a.input_width);
    let model_bytes = layer.to_bytes(&a.model_out).map_err(|e| e.to_string())?;
    let input_bytes = input.to_bytes(&a.input_out).map_err(|e| e.to_string())?;
    out.commit(&[&model_bytes, &input_bytes])?;
    println!(
        "wrote {} (tanh, h = {}, p = {}) and {} (x {:?})",
        a.model_out.display(),
        a.hidden,
        a.input_width,
        a.input_out.display(),
        input.shape
    );
    Ok(())
}

/// Bytes of one solver of `kind` in `T` for `dim` unknowns and history `memory`,
/// computed, not allocated; `None` on overflow.
pub fn solver_bytes<T: Float>(kind: SolverKind, dim: usize, memory: usize) -> Option<usize> {
    match kind {
        SolverKind::Broyden => DynBroyden::<T>::bytes_for(dim, memory),
        SolverKind::Anderson => DynAnderson::<T>::bytes_for(dim, memory),
        SolverKind::Picard => DynPicard::<T>::bytes_for(dim),
    }
}

/// Checks, before allocating, that `samples` solvers of `kind` in `T` and the two
/// `[B × d]` batch buffers fit in this machine's memory; the error names `--memory`.
pub fn check_solvers<T: Float>(
    kind: SolverKind,
    samples: usize,
    dim: usize,
    memory: usize,
) -> Result<(), String> {
    let solvers = solver_bytes::<T>(kind, dim, memory).and_then(|b| (b as u128).checked_mul(samples as u128));
    let total = solvers.zip(values::<T>(&[2, samples, dim])).and_then(|(s, b)| s.checked_add(b));
    limits::fits(
        &format!("--memory {memory} (--solver {}, {samples} samples of dimension {dim})", kind.name()),
        total,
    )
}

/// The solver in `T` for one sample of dimension `dim`.
pub fn make_solver<T: Float>(kind: SolverKind, dim: usize, memory: usize) -> Result<AnySolver<T>, SizeError> {
    Ok(match kind {
        SolverKind::Broyden => AnySolver::Broyden(DynBroyden::with_sizes(dim, memory)?),
        SolverKind::Anderson => AnySolver::Anderson(DynAnderson::with_sizes(dim, memory)?),
        SolverKind::Picard => AnySolver::Picard(DynPicard::with_sizes(dim)?),
    })
}

/// Checks the stopping rule and the history depth given on the command line, before
/// any file is read.
pub fn check_options(args: &ProblemArgs) -> Result<(), String> {
    for (what, v) in [("--tol-rel", args.tol_rel), ("--tol-abs", args.tol_abs)] {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(format!("{what} must be a finite number ≥ 0, got {v}"));
        }
    }
    if args.memory == 0 {
        return Err("--memory must be at least 1".into());
    }
    Ok(())
}

/// The stopping rule given on the command line, in the problem's float type `T` (the
/// tolerances rounded to `T`).
pub fn options<T: Float>(args: &ProblemArgs) -> Result<Options<T>, String> {
    check_options(args)?;
    let tol = |what: &str, v: f64| {
        let t = T::from_f64(v);
        if t.is_finite() { Ok(t) } else { Err(format!("{what} {v:e} is beyond the range of {}", T::NAME)) }
    };
    Ok(Options {
        max_iters: args.max_iters,
        tol_rel: tol("--tol-rel", args.tol_rel)?,
        tol_abs: tol("--tol-abs", args.tol_abs)?,
        stall_iters: args.stall_iters,
        ..Options::DEFAULT
    })
}

/// A thread pool of `threads` workers (default: one per core; at most [`MAX_THREADS`]).
pub fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool, String> {
    match threads {
        Some(0) => return Err("--threads must be at least 1".into()),
        Some(n) if n > MAX_THREADS => return Err(format!("--threads {n}: at most {MAX_THREADS}")),
        _ => {}
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| format!("cannot start the worker threads: {e}"))
}
