//! Benchmarks for the DEQ solver toolkit, and the helpers its table binaries share:
//! each solver, with run-time sizes (`solver-host`), on a [`FixedPointProblem`] from
//! its start point.

pub mod instances;
pub mod timing;

use deq_problems::{FixedPointProblem, linalg, to_f64};
use solver_core::{AndersonSettings, BroydenSettings, Options, PicardSettings, Real, Report, Status};
use solver_host::{DynAnderson, DynBroyden, DynPicard, Solver};

/// The instruction set of solver-core's kernels for this run: the environment's `ISA`
/// (`baseline` or `avx`) if set, else what the CPU has
/// ([`solver_core::kernels::isa`]). Exits with a message if `ISA` asks for one this
/// CPU cannot run.
pub fn isa_from_env() -> solver_core::kernels::isa::Isa {
    use solver_core::kernels::isa::{self, Isa};
    let asked = match std::env::var("ISA").as_deref() {
        Ok("baseline") => Some(Isa::Baseline),
        Ok("avx") => Some(Isa::Avx),
        Ok(other) => {
            eprintln!("ISA={other}: expected `baseline` or `avx`");
            std::process::exit(2)
        }
        Err(_) => None,
    };
    if let Some(asked) = asked
        && let Err(e) = isa::set_isa(asked)
    {
        eprintln!("ISA: {e}");
        std::process::exit(2)
    }
    isa::isa()
}

/// Runs `solver` on the map `f` from `z`.
fn run<T: Real>(
    mut solver: impl Solver<T>,
    f: &mut dyn FnMut(&[T], &mut [T]),
    mut z: Vec<T>,
    opts: &Options<T>,
) -> (Report<T>, Vec<T>) {
    let r = solver.solve(f, &mut z, opts).expect("the problem's start has its dimension");
    (r, z)
}

/// Broyden with `m` pairs and the given settings; returns the report and the answer.
pub fn broyden(
    p: &dyn FixedPointProblem,
    m: usize,
    s: &BroydenSettings,
    opts: &Options,
) -> (Report, Vec<f32>) {
    let mut solver = DynBroyden::with_sizes(p.dim(), m).expect("sizes");
    solver.settings = *s;
    run(solver, &mut |x, o| p.f(x, o), p.start(), opts)
}

/// Broyden in float64 on the problem's float64 map ([`FixedPointProblem::f64_map`]),
/// from the same start point, with `m` pairs and the default settings.
pub fn broyden_f64(p: &dyn FixedPointProblem, m: usize, opts: &Options<f64>) -> (Report<f64>, Vec<f64>) {
    let solver = DynBroyden::<f64>::with_sizes(p.dim(), m).expect("sizes");
    run(solver, &mut |x, o| p.f64_map(x, o), to_f64(&p.start()), opts)
}

/// Anderson with `m` differences and the given settings.
pub fn anderson(
    p: &dyn FixedPointProblem,
    m: usize,
    s: &AndersonSettings,
    opts: &Options,
) -> (Report, Vec<f32>) {
    let mut solver = DynAnderson::with_sizes(p.dim(), m).expect("sizes");
    solver.settings = *s;
    run(solver, &mut |x, o| p.f(x, o), p.start(), opts)
}

/// Damped fixed-point iteration with the given settings.
pub fn picard(p: &dyn FixedPointProblem, s: &PicardSettings, opts: &Options) -> (Report, Vec<f32>) {
    let mut solver = DynPicard::with_sizes(p.dim()).expect("sizes");
    solver.settings = *s;
    run(solver, &mut |x, o| p.f(x, o), p.start(), opts)
}

/// Relative error against the problem's float64 reference root. Where that is large,
/// float64 Newton from `z` tells which case it is: `z` is near a different true root
/// (the H-equation's non-physical one, another fixed point of a non-contractive layer),
/// or near no root at all (a solve that stopped early).
pub fn error(p: &dyn FixedPointProblem, z: &[f32]) -> String {
    error_f64(p, &to_f64(z))
}

/// [`error`] of a float64 answer.
pub fn error_f64(p: &dyn FixedPointProblem, z: &[f64]) -> String {
    let reference = p.rel_error_f64(z);
    if reference < 1e-3 {
        return format!("{reference:.0e}");
    }
    let scale = linalg::norm2(p.reference());
    match p.polish(z) {
        Some(root) if linalg::dist2(&root, p.reference()) > 1e-6 * scale => {
            let nearest = linalg::dist2(z, &root) / linalg::norm2(&root);
            format!("{reference:.0e}; other root, {nearest:.0e} from it")
        }
        _ => format!("{reference:.0e}"),
    }
}

/// `f-evals` followed by a letter when the solve did not converge (M: max iterations,
/// S: stalled, D: diverged, N: non-finite).
pub fn evals<T: Real>(r: &Report<T>) -> String {
    let flag = match r.status {
        Status::Converged => "",
        Status::MaxIterations => " M",
        Status::Stalled => " S",
        Status::Diverged => " D",
        Status::NonFinite => " N",
    };
    format!("{}{flag}", r.f_evals)
}

/// A table cell: f-evaluations, then the error in brackets.
pub fn cell(p: &dyn FixedPointProblem, (r, z): &(Report, Vec<f32>)) -> String {
    format!("{} ({})", evals(r), error(p, z))
}

/// [`cell`] of a float64 solve.
pub fn cell_f64(p: &dyn FixedPointProblem, (r, z): &(Report<f64>, Vec<f64>)) -> String {
    format!("{} ({})", evals(r), error_f64(p, z))
}
