//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deep equilibrium layers: find z* = f(z*; x) with bounded-memory root solvers.
#[derive(Parser, Debug)]
#[command(name = "deq", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without one, `deq` solves the built-in demonstration model.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Solve a batch of inputs and write the fixed points.
    Solve(SolveArgs),
    /// Run every solver on the same problem and print a table.
    Compare(CompareArgs),
    /// Write a Rust module (weights as consts, a solver type) for firmware.
    Export(ExportArgs),
    /// Write the built-in demonstration model and a random input as safetensors files.
    Demo(DemoArgs),
}

/// The solver.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SolverKind {
    /// "Good" Broyden with a bounded low-rank inverse Jacobian.
    #[default]
    Broyden,
    /// Anderson acceleration (type II).
    Anderson,
    /// Plain fixed-point iteration.
    Picard,
}

impl SolverKind {
    /// Every solver, in table order.
    pub const ALL: [SolverKind; 3] = [SolverKind::Broyden, SolverKind::Anderson, SolverKind::Picard];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SolverKind::Broyden => "broyden",
            SolverKind::Anderson => "anderson",
            SolverKind::Picard => "picard",
        }
    }
}

/// Where `deq solve` runs.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    /// Every CPU core (the lockstep solver).
    #[default]
    Cpu,
    /// An NVIDIA GPU through CUDA (Broyden only; needs a build with `--features cuda`).
    Cuda,
}

impl Device {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        }
    }
}

/// The model, the inputs and the stopping rule: shared by `solve` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct ProblemArgs {
    /// Model file (safetensors with W: h×h, U: h×p, b: h, all F32 or all F64: the solve
    /// runs in that type); default: the built-in model (f32).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Input file (safetensors with x: B×p or B×L×p, optional z0, of the model's dtype);
    /// required with --model.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// History depth: Broyden pairs or Anderson differences kept (memory ∝ this).
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub memory: usize,
    /// Relative tolerance on ‖f(z) − z‖ / ‖f(z)‖, in the model's float type (f32, or f64
    /// for an F64 model).
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub tol_rel: f64,
    /// Absolute tolerance on ‖f(z) − z‖.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub tol_abs: f64,
    /// Most iterations per sample (sizes nothing: memory does not depend on it).
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    pub max_iters: u32,
    /// Stop a sample after this many iterations without a new best residual (0: never).
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub stall_iters: u32,
    /// Worker threads (default: every core; at most 1024).
    #[arg(long, allow_negative_numbers = true)]
    pub threads: Option<usize>,
}

impl Default for ProblemArgs {
    fn default() -> Self {
        ProblemArgs {
            model: None,
            input: None,
            memory: 8,
            tol_rel: 1e-6,
            tol_abs: 0.0,
            max_iters: 200,
            stall_iters: 50,
            threads: None,
        }
    }
}

/// `deq solve`.
#[derive(Args, Debug, Clone, Default)]
pub struct SolveArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// Where to write the fixed points (safetensors, tensor z shaped like the state; for a
    /// model with a readout also its logits and class).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// The solver.
    #[arg(long, value_enum, default_value_t = SolverKind::Broyden)]
    pub solver: SolverKind,
    /// Where to write the JSON report (per-sample status, iterations, residuals).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Where to solve: `cuda` keeps the state, the evaluations and the Broyden pairs in
    /// GPU memory.
    #[arg(long, value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
}

/// `deq compare`.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    #[command(flatten)]
    pub problem: ProblemArgs,
    /// Write the residual of every evaluation of one sample, per solver, as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Plot the same traces as SVG.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The sample whose traces are written.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub sample: usize,
}

/// `deq export`.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Model file; default: the built-in model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The solver whose type the module names.
    #[arg(long, value_enum, default_value_t = SolverKind::Broyden)]
    pub solver: SolverKind,
    /// History depth of that solver.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
    pub memory: usize,
    /// The Rust file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// How the module stores W, U (and the readout's R): f32, or int8 with one scale
    /// per row (a quarter of the flash; the arithmetic stays f32).
    #[arg(long, value_enum, default_value_t = WeightFormat::F32)]
    pub weights: WeightFormat,
}

/// `deq export --weights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WeightFormat {
    /// f32, as in the model file.
    F32,
    /// int8 with one f32 scale per row.
    Int8,
}

impl From<WeightFormat> for solver_host::model::export::Weights {
    fn from(w: WeightFormat) -> Self {
        match w {
            WeightFormat::F32 => Self::F32,
            WeightFormat::Int8 => Self::Int8,
        }
    }
}

/// `deq demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Where to write the model.
    #[arg(long)]
    pub model_out: PathBuf,
    /// Where to write the input.
    #[arg(long)]
    pub input_out: PathBuf,
    /// Hidden width h.
    #[arg(long, default_value_t = 256, allow_negative_numbers = true)]
    pub hidden: usize,
    /// Input width p.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    pub input_width: usize,
    /// Samples B.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true)]
    pub samples: usize,
    /// Tokens L per sample (1 writes x as B×p, more as B×L×p).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub tokens: usize,
}
