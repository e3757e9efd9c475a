//! `deq compare`: every solver on the same problem, a table, and the residual traces of
//! one sample as CSV and SVG.

use std::fmt::Write as _;

use std::path::Path;

use solver_host::model::DeqLayer;
use solver_host::solver_core::{Options, Solver, kernels};

use crate::args::{CompareArgs, SolverKind};
use crate::outputs::Outputs;
use crate::problem::{self, AnyProblem, CliFloat, Problem};
use crate::solve::{converged, solve_problem, worst_residual};
use crate::svg;

/// `deq compare`: in the model file's float type.
pub fn run(a: &CompareArgs) -> Result<(), String> {
    problem::check_options(&a.problem)?;
    let named = [("--csv", &a.csv), ("--svg", &a.svg)];
    let outputs: Vec<_> = named.iter().filter_map(|(f, p)| p.as_deref().map(|p| (*f, p))).collect();
    let staged = Outputs::prepare(&outputs, &problem::inputs(&a.problem))?;
    match problem::load(&a.problem)? {
        AnyProblem::F32(p) => compare(a, staged, &outputs, &p),
        AnyProblem::F64(p) => compare(a, staged, &outputs, &p),
    }
}

/// The rest of `deq compare` once the problem is loaded.
fn compare<T: CliFloat>(
    a: &CompareArgs,
    staged: Outputs,
    outputs: &[(&str, &Path)],
    p: &Problem<T>,
) -> Result<(), String> {
    let opts = problem::options::<T>(&a.problem)?;
    if a.sample >= p.samples() {
        return Err(format!("--sample {} is out of range: the input has {} samples", a.sample, p.samples()));
    }
    let pool = problem::pool(a.problem.threads)?;
    println!(
        "deq compare: {} samples, state {:?}, {} ({}); memory {}, tol_rel {:e}, max_iters {}, {} threads",
        p.samples(),
        p.state_shape(),
        p.source,
        T::NAME,
        a.problem.memory,
        opts.tol_rel,
        opts.max_iters,
        pool.current_num_threads()
    );
    println!(
        "{:<9} {:>10} {:>14} {:>10} {:>10} {:>17} {:>13}",
        "solver", "converged", "f-evals/sample", "max", "time ms", "worst resid_rel", "memory bytes"
    );
    for kind in SolverKind::ALL {
        let out = pool.install(|| solve_problem(p, kind, a.problem.memory, &opts, false))?;
        let r = &out.reports;
        let conv = converged(r);
        let evals = r.iter().map(|r| f64::from(r.f_evals)).sum::<f64>() / r.len().max(1) as f64;
        let max = r.iter().map(|r| r.f_evals).max().unwrap_or(0);
        let worst = worst_residual(r);
        println!(
            "{:<9} {:>10} {:>14.1} {:>10} {:>10.1} {:>17.2e} {:>13}",
            kind.name(),
            format!("{conv}/{}", r.len()),
            evals,
            max,
            out.seconds * 1e3,
            worst,
            out.solver_bytes
        );
    }
    if a.csv.is_some() || a.svg.is_some() {
        let traces: Vec<(SolverKind, Vec<T>)> = SolverKind::ALL
            .into_iter()
            .map(|k| trace(p, a.sample, k, a.problem.memory, &opts).map(|t| (k, t)))
            .collect::<Result<_, _>>()?;
        let mut contents = Vec::new();
        if a.csv.is_some() {
            contents.push(csv(&traces));
        }
        if a.svg.is_some() {
            let series: Vec<(&str, &[T])> = traces.iter().map(|(k, t)| (k.name(), t.as_slice())).collect();
            let title = format!("sample {} of {}: ‖f(z) − z‖ / ‖f(z)‖ per evaluation", a.sample, p.source);
            contents.push(svg::plot(&title, &series));
        }
        staged.commit(&contents.iter().map(String::as_bytes).collect::<Vec<_>>())?;
        for (_, path) in outputs {
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The relative residual `‖f(x) − x‖ / ‖f(x)‖` of every evaluation when `kind` solves
/// sample `b` alone.
fn trace<T: CliFloat>(
    p: &Problem<T>,
    b: usize,
    kind: SolverKind,
    memory: usize,
    opts: &Options<T>,
) -> Result<Vec<T>, String> {
    let layer: &DeqLayer<T> = &p.layer;
    let (pw, d) = (layer.input_width(), p.dim());
    let x = p.input.x.get(b * p.tokens() * pw..(b + 1) * p.tokens() * pw).unwrap_or(&[]);
    let mut c = vec![T::ZERO; d];
    layer.injection(x, &mut c);
    let mut z = p.start().get(b * d..(b + 1) * d).map(<[T]>::to_vec).unwrap_or_else(|| vec![T::ZERO; d]);
    let mut solver =
        problem::make_solver::<T>(kind, d, memory).map_err(|e| format!("cannot build the solver: {e}"))?;
    let mut rel = Vec::new();
    let mut f = |x: &[T], out: &mut [T]| {
        layer.apply(x, &c, out);
        rel.push(kernels::dist(out, x) / kernels::norm(out));
    };
    solver.solve(&mut f, &mut z, opts).map_err(|e| e.to_string())?;
    Ok(rel)
}

/// One row per evaluation, one column per solver (empty once a solver has stopped).
fn csv<T: CliFloat>(traces: &[(SolverKind, Vec<T>)]) -> String {
    let mut s = String::from("evaluation");
    for (k, _) in traces {
        let _ = write!(s, ",{}", k.name());
    }
    s.push('\n');
    let rows = traces.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
    for i in 0..rows {
        let _ = write!(s, "{}", i + 1);
        for (_, t) in traces {
            match t.get(i) {
                Some(v) => {
                    let _ = write!(s, ",{v:e}");
                }
                None => s.push(','),
            }
        }
        s.push('\n');
    }
    s
}
