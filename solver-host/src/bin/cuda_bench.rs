//! `cuda_bench`: the offloaded Broyden solve on a CUDA GPU for a `[B × L × h]` DEQ state
//! (default `[15 × 150 × 700]`, the demonstration layer and input of `deq demo` with
//! input width 64, M = 8),
//! against the CPU reference.
//!
//! ```text
//! cuda_bench [--samples 15] [--tokens 150] [--hidden 700] [--memory 8] [--repeats 5]
//! ```
//!
//! Runs the GPU solve at 30 and 300 iterations (`tol = 0`, no stall or divergence test,
//! so every iteration runs; default Broyden settings) and prints: the device, the time
//! per iteration (median of `--repeats` solves), the share of time in evaluations vs
//! solver operations, the solver operations' achieved bandwidth against the device's
//! peak, the GPU memory at both budgets (the backend's own bytes and the device's
//! use), and the agreement of the 30-iteration solve with the CPU reference
//! (`HostVectors` over `LayerBackend`, bit-identical to the lockstep CPU solver):
//! statuses, f-evaluations (within 1) and `z` (max |Δz| / max |z| per sample, at most
//! 1e-4). Exit status 0 when they agree, 1 when not, 2 on an error.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use solver_host::LayerBackend;
use solver_host::cuda::{CudaBroyden, Profile};
use solver_host::model::{DeqLayer, InputBatch};
use solver_host::offload::{self, HostVectors, OffloadBackend};
use solver_host::solver_core::{BroydenSettings, Options, Report};

/// Largest `max |Δz| / max |z|` accepted between the GPU and the CPU.
const Z_TOLERANCE: f32 = 1e-4;
/// Input width of the demonstration layer.
const INPUT_WIDTH: usize = 64;

#[derive(Parser, Debug)]
#[command(about = "CUDA offloaded Broyden benchmark against the CPU reference")]
struct Args {
    /// Samples B.
    #[arg(long, default_value_t = 15)]
    samples: usize,
    /// Tokens L per sample.
    #[arg(long, default_value_t = 150)]
    tokens: usize,
    /// Hidden width h.
    #[arg(long, default_value_t = 700)]
    hidden: usize,
    /// Pairs M kept per sample.
    #[arg(long, default_value_t = 8)]
    memory: usize,
    /// Timed solves per budget (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

/// Every iteration runs: no tolerance, no stall or divergence stop.
fn budget(max_iters: u32) -> Options {
    Options { max_iters, tol_abs: 0.0, tol_rel: 0.0, stall_iters: 0, divergence_factor: f32::INFINITY }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One GPU solve from zero: reports, answer, seconds.
fn gpu_solve(backend: &mut CudaBroyden, iters: u32) -> Result<(Vec<Report>, Vec<f32>, f64), String> {
    let mut z = vec![0.0f32; backend.samples() * backend.dim()];
    let t = Instant::now();
    let reports = offload::solve(backend, &BroydenSettings::DEFAULT, &budget(iters), &mut z, &mut |_| {})
        .map_err(|e| e.to_string())?;
    Ok((reports, z, t.elapsed().as_secs_f64()))
}

/// Times `repeats` solves at `iters` iterations, then one profiled solve; prints the
/// figures and returns the last answer.
fn bench(backend: &mut CudaBroyden, iters: u32, repeats: usize) -> Result<(Vec<Report>, Vec<f32>), String> {
    backend.set_profiling(false);
    let mut times = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats.max(1) {
        let (r, z, s) = gpu_solve(backend, iters)?;
        times.push(s);
        last = Some((r, z));
    }
    let per_iter = median(times) / f64::from(iters);
    backend.set_profiling(true);
    backend.reset_profile();
    gpu_solve(backend, iters)?;
    backend.set_profiling(false);
    let p: Profile = backend.profile();
    let used = backend.device_memory_used().map_err(|e| e.to_string())?;
    println!("max_iters {iters}:");
    println!("  time per iteration      {:.3} ms (median of {} solves)", per_iter * 1e3, repeats.max(1));
    let share = p.eval_share().unwrap_or(f64::NAN);
    println!(
        "  profiled solve          {:.1} ms: evaluation {:.1}% ({} rounds), solver ops {:.1}% ({} rounds)",
        (p.eval_seconds + p.op_seconds) * 1e3,
        100.0 * share,
        p.eval_rounds,
        100.0 * (1.0 - share),
        p.op_rounds
    );
    let bw = p.op_bandwidth().unwrap_or(0.0);
    let peak = backend.device_info().peak_bandwidth;
    let of_peak = peak.map_or("peak unknown".to_string(), |pk| format!("{:.1}% of peak", 100.0 * bw / pk));
    println!(
        "  solver-op bandwidth     {:.1} GB/s ({of_peak}; {:.1} MB moved per iteration)",
        bw / 1e9,
        p.op_bytes as f64 / 1e6 / f64::from(iters)
    );
    println!(
        "  GPU memory              backend {:.1} MiB, device in use {:.1} MiB",
        mib(backend.memory_bytes()),
        mib(used)
    );
    last.ok_or_else(|| "no solve ran".to_string())
}

/// Compares the GPU's answer with the CPU's; prints and returns whether they agree.
fn agree(d: usize, gpu: &(Vec<Report>, Vec<f32>), cpu: &(Vec<Report>, Vec<f32>)) -> bool {
    let statuses = gpu.0.iter().zip(&cpu.0).all(|(g, c)| g.status == c.status);
    let evals = gpu.0.iter().zip(&cpu.0).map(|(g, c)| g.f_evals.abs_diff(c.f_evals)).max().unwrap_or(0);
    let rel = gpu
        .1
        .chunks(d)
        .zip(cpu.1.chunks(d))
        .map(|(g, c)| {
            let scale = c.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(f32::MIN_POSITIVE);
            g.iter().zip(c).fold(0.0f32, |a, (p, q)| a.max((p - q).abs())) / scale
        })
        .fold(0.0f32, |a, r| if r.is_nan() || a.is_nan() { f32::NAN } else { a.max(r) });
    let ok = statuses && evals <= 1 && rel <= Z_TOLERANCE;
    let status_list: Vec<String> = gpu.0.iter().map(|r| r.status.to_string()).collect();
    println!("agreement with the CPU at 30 iterations: {}", if ok { "ok" } else { "FAILED" });
    println!(
        "  statuses                {} ({})",
        if statuses { "same" } else { "DIFFER" },
        status_list.join(" ")
    );
    println!("  f-evals                 max difference {evals} (allowed 1)");
    println!("  z                       max |Δz| / max |z| = {rel:.2e} (allowed {Z_TOLERANCE:.0e})");
    ok
}

fn run(a: &Args) -> Result<bool, String> {
    let (b, l, h) = (a.samples, a.tokens, a.hidden);
    let d = l * h;
    let layer = DeqLayer::demo(h, INPUT_WIDTH);
    let x = InputBatch::demo(b, l, INPUT_WIDTH).x;
    let t = Instant::now();
    let mut backend = CudaBroyden::new(&layer, &x, b, l, a.memory).map_err(|e| e.to_string())?;
    let info = backend.device_info().clone();
    println!(
        "device: {} (compute {}.{}, {} SMs, {:.1} GiB)",
        info.name,
        info.compute_capability.0,
        info.compute_capability.1,
        info.multiprocessors,
        info.total_memory as f64 / (1u64 << 30) as f64
    );
    println!("kernels: {}", info.kernels);
    match info.peak_bandwidth {
        Some(bw) => println!("peak memory bandwidth: {:.0} GB/s (2 × memory clock × bus width)", bw / 1e9),
        None => println!("peak memory bandwidth: not reported by the driver"),
    }
    println!(
        "state [{b} × {l} × {h}] (d = {d} per sample), M = {}, demonstration layer (tanh, p = {INPUT_WIDTH}); \
         tol 0, no stall or divergence stop, default Broyden settings",
        a.memory
    );
    println!("setup (compile kernels, allocate, upload): {:.2} s", t.elapsed().as_secs_f64());
    gpu_solve(&mut backend, 5)?; // warm-up: first launches, cuBLAS heuristics
    let gpu30 = bench(&mut backend, 30, a.repeats)?;
    bench(&mut backend, 300, a.repeats.div_ceil(2))?;

    let f = LayerBackend::new(&layer, &x, b, l).map_err(|e| e.to_string())?;
    let mut host = HostVectors::new(&f, a.memory).map_err(|e| e.to_string())?;
    let mut z = vec![0.0f32; b * d];
    let t = Instant::now();
    let reports = offload::solve(&mut host, &BroydenSettings::DEFAULT, &budget(30), &mut z, &mut |_| {})
        .map_err(|e| e.to_string())?;
    println!(
        "CPU reference (HostVectors, {} rayon threads): {:.1} ms per iteration",
        rayon::current_num_threads(),
        t.elapsed().as_secs_f64() * 1e3 / 30.0
    );
    Ok(agree(d, &gpu30, &(reports, z)))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("cuda_bench: error: {e}");
            ExitCode::from(2)
        }
    }
}
