//! `deq solve`: the lockstep solver over the whole batch, a progress bar, the fixed
//! points and a JSON report.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use solver_host::model::{Float, Predictions, solution_bytes};
use solver_host::solver_core::{Options, Real, Report, Status};
use solver_host::{LayerBackend, Lockstep};

use crate::args::{Device, SolveArgs, SolverKind};
use crate::gpu;
use crate::outputs::Outputs;
use crate::problem::{self, AnyProblem, CliFloat, Problem};

/// What one lockstep solve of a problem gave, in its float type `T`.
pub struct Outcome<T = f32> {
    /// The fixed points, `[B × d]`.
    pub z: Vec<T>,
    /// One report per sample.
    pub reports: Vec<Report<T>>,
    /// Wall time of the solve (not of loading), seconds.
    pub seconds: f64,
    /// Bytes held by the solvers and the batch buffers.
    pub solver_bytes: usize,
}

/// Samples that converged.
pub fn converged<T: Real>(reports: &[Report<T>]) -> usize {
    reports.iter().filter(|r| r.status == Status::Converged).count()
}

/// The largest relative residual (NaN if any sample's is NaN).
pub fn worst_residual<T: Real>(reports: &[Report<T>]) -> T {
    reports.iter().map(|r| r.residual_rel).fold(T::ZERO, |m, v| if v.is_nan() || v > m { v } else { m })
}

/// Solves every sample of `p` with `kind` in lockstep on the current thread pool, in
/// the problem's float type.
pub fn solve_problem<T: Float>(
    p: &Problem<T>,
    kind: SolverKind,
    memory: usize,
    opts: &Options<T>,
    progress: bool,
) -> Result<Outcome<T>, String> {
    let (b, d) = (p.samples(), p.dim());
    problem::check_solvers::<T>(kind, b, d, memory)?;
    let mut lock = Lockstep::new(b, || problem::make_solver(kind, d, memory))
        .map_err(|e| format!("--memory {memory}: cannot build the solvers: {e}"))?;
    let backend = LayerBackend::new(&p.layer, &p.input.x, b, p.tokens()).map_err(|e| e.to_string())?;
    let mut z = p.start();
    // Written through before the clock starts: a fresh zeroed allocation's pages would
    // otherwise be mapped at the solver's first write into z, inside the timed solve.
    z.iter_mut().for_each(|v| *v = std::hint::black_box(*v));
    let bar = progress_bar(b, progress);
    let t0 = Instant::now();
    let reports = lock
        .solve(&backend, &mut z, opts, &mut |pr| {
            bar.set_position((pr.samples - pr.active) as u64);
            bar.set_message(pr.rounds.to_string());
        })
        .map_err(|e| e.to_string())?;
    let seconds = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Outcome { z, reports, seconds, solver_bytes: lock.memory_bytes() })
}

/// The progress bar of a solve of `samples` samples (hidden unless `shown`).
pub fn progress_bar(samples: usize, shown: bool) -> ProgressBar {
    let bar = if shown { ProgressBar::new(samples as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:30}] {pos}/{len} samples done, round {msg} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// `deq solve` (and `deq` alone): in the model file's float type.
pub fn run(a: &SolveArgs) -> Result<(), String> {
    problem::check_options(&a.problem)?;
    if a.device == Device::Cuda {
        gpu::check(a.solver)?;
    }
    let named = [("--output", &a.output), ("--report", &a.report)];
    let outputs: Vec<_> = named.iter().filter_map(|(f, p)| p.as_deref().map(|p| (*f, p))).collect();
    let staged = Outputs::prepare(&outputs, &problem::inputs(&a.problem))?;
    match problem::load(&a.problem)? {
        AnyProblem::F32(p) => solve_and_write(a, staged, &p),
        AnyProblem::F64(p) => solve_and_write(a, staged, &p),
    }
}

/// The rest of `deq solve` once the problem is loaded: solve, write, print.
fn solve_and_write<T: CliFloat>(a: &SolveArgs, staged: Outputs, p: &Problem<T>) -> Result<(), String> {
    let opts = problem::options::<T>(&a.problem)?;
    let pool = problem::pool(a.problem.threads)?;
    let threads = pool.current_num_threads();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()) && p.samples() > 1;
    let out = match a.device {
        Device::Cpu => pool.install(|| solve_problem(p, a.solver, a.problem.memory, &opts, progress))?,
        Device::Cuda => T::solve_on_gpu(p, a.solver, a.problem.memory, &opts, progress)?,
    };
    let peak_rss = peak_rss_bytes();
    let predictions = p.layer.readout().map(|r| r.predict(&out.z));

    let mut contents = Vec::new();
    if let Some(path) = &a.output {
        contents.push(
            solution_bytes(path, &p.state_shape(), &out.z, predictions.as_ref())
                .map_err(|e| e.to_string())?,
        );
    }
    if a.report.is_some() {
        let report = json_report(a, p, &opts, &out, threads, peak_rss);
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| format!("cannot encode the report: {e}"))?;
        contents.push(text.into_bytes());
    }
    staged.commit(&contents.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    print_summary(a, p, &out, threads, peak_rss);
    if let Some(pred) = &predictions {
        print_predictions(p, pred);
    }
    Ok(())
}

fn json_report<T: Float>(
    a: &SolveArgs,
    p: &Problem<T>,
    opts: &Options<T>,
    out: &Outcome<T>,
    threads: usize,
    peak_rss: Option<u64>,
) -> serde_json::Value {
    let samples: Vec<_> = out
        .reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "sample": i,
                "status": r.status.to_string(),
                "iterations": r.iterations,
                "f_evals": r.f_evals,
                "residual_abs": json_real(r.residual_abs),
                "residual_rel": json_real(r.residual_rel),
                "restarts": r.restarts,
            })
        })
        .collect();
    json!({
        "model": p.source,
        "dtype": T::NAME,
        "state_shape": p.state_shape(),
        "solver": a.solver.name(),
        "memory": a.problem.memory,
        "tol_rel": json_real(opts.tol_rel),
        "tol_abs": json_real(opts.tol_abs),
        "max_iters": a.problem.max_iters,
        "device": a.device.name(),
        "threads": (a.device == Device::Cpu).then_some(threads),
        "wall_time_s": out.seconds,
        "solver_memory_bytes": out.solver_bytes,
        "peak_rss_bytes": peak_rss,
        "converged": converged(&out.reports),
        "samples": samples,
    })
}

/// A float for the report: a number when finite (the value exactly, as f64), else the
/// string `"inf"`, `"-inf"` or `"NaN"` (JSON has no such numbers, and `null` would read
/// as "missing").
fn json_real<T: Real>(v: T) -> serde_json::Value {
    if v.is_finite() { json!(v.to_f64()) } else { json!(v.to_string()) }
}

fn print_summary<T: CliFloat>(
    a: &SolveArgs,
    p: &Problem<T>,
    out: &Outcome<T>,
    threads: usize,
    peak_rss: Option<u64>,
) {
    let r = &out.reports;
    let converged = converged(r);
    let mut iters: Vec<u32> = r.iter().map(|r| r.iterations).collect();
    iters.sort_unstable();
    let median = iters.get(iters.len() / 2).copied().unwrap_or(0);
    let evals: u64 = r.iter().map(|r| u64::from(r.f_evals)).sum();
    let worst = worst_residual(r);
    println!(
        "deq solve: {} samples, state {:?}, {} ({}, {}, h = {}, p = {}), {} with memory {}",
        p.samples(),
        p.state_shape(),
        p.source,
        p.layer.activation(),
        T::NAME,
        p.layer.hidden(),
        p.layer.input_width(),
        a.solver.name(),
        a.problem.memory
    );
    println!(
        "  converged {converged}/{} · iterations median {median}, max {} · {evals} f-evaluations · worst residual_rel {worst:.2e}",
        r.len(),
        iters.last().copied().unwrap_or(0),
    );
    let others: Vec<String> = [Status::MaxIterations, Status::Stalled, Status::Diverged, Status::NonFinite]
        .into_iter()
        .filter_map(|s| {
            let n = r.iter().filter(|r| r.status == s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    if !others.is_empty() {
        println!("  not converged: {}", others.join(", "));
    }
    let rss =
        peak_rss.map_or(String::new(), |b| format!(" · peak RSS {:.1} MiB", b as f64 / (1 << 20) as f64));
    let place = match a.device {
        Device::Cpu => format!("on {threads} threads · solver memory"),
        Device::Cuda => "on the GPU · GPU memory".to_string(),
    };
    println!(
        "  {:.1} ms {place} {:.2} MiB{rss}",
        out.seconds * 1e3,
        out.solver_bytes as f64 / (1 << 20) as f64
    );
    if let Some(path) = &a.output {
        println!("  wrote {}", path.display());
    }
}

/// The classifier's line: how many rows got each class, and the accuracy when the
/// input has labels.
fn print_predictions<T: Float>(p: &Problem<T>, pred: &Predictions<T>) {
    let mut counts = vec![0usize; pred.classes];
    let mut none = 0;
    for &c in &pred.class {
        match usize::try_from(c).ok().and_then(|c| counts.get_mut(c)) {
            Some(n) => *n += 1,
            None => none += 1,
        }
    }
    let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
    let unclassified =
        if none > 0 { format!(", {none} without a class (non-finite scores)") } else { String::new() };
    println!("  classes ({}): {}{unclassified}", pred.classes, counts.join(" "));
    if let Some(labels) = &p.input.labels {
        let right = pred.correct(labels);
        println!("  accuracy {:.4} ({right}/{} rows match \"label\")", pred.accuracy(labels), labels.len());
    }
}

/// The process's peak resident set (`VmHWM` of /proc/self/status), where available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
