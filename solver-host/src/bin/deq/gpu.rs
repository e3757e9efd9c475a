//! `deq solve --device cuda`: the Broyden solve offloaded to a GPU (solver-host's
//! `cuda` feature), or a one-line error when this build or this machine cannot.

use solver_host::solver_core::Options;

use crate::args::SolverKind;
use crate::problem::{CliFloat, Problem};
use crate::solve::Outcome;

/// Solves every sample of `p` with Broyden on the GPU; in a build without the `cuda`
/// feature, the refusal [`check`] gives.
impl CliFloat for f32 {
    #[cfg(feature = "cuda")]
    fn solve_on_gpu(
        p: &Problem,
        kind: SolverKind,
        memory: usize,
        opts: &Options,
        progress: bool,
    ) -> Result<Outcome, String> {
        use solver_host::cuda::CudaBroyden;
        use solver_host::offload;
        use solver_host::solver_core::BroydenSettings;

        check(kind)?;
        let (b, tokens) = (p.samples(), p.tokens());
        let mut backend = CudaBroyden::new(&p.layer, &p.input.x, b, tokens, memory)
            .map_err(|e| format!("--device cuda: {e}"))?;
        let mut z = p.start();
        let bar = crate::solve::progress_bar(b, progress);
        let t0 = std::time::Instant::now();
        let reports = offload::solve(&mut backend, &BroydenSettings::DEFAULT, opts, &mut z, &mut |pr| {
            bar.set_position((pr.samples - pr.active) as u64);
            bar.set_message(pr.rounds.to_string());
        })
        .map_err(|e| format!("--device cuda: {e}"))?;
        let seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        Ok(Outcome { z, reports, seconds, solver_bytes: backend.memory_bytes() })
    }

    #[cfg(not(feature = "cuda"))]
    fn solve_on_gpu(
        _p: &Problem,
        kind: SolverKind,
        _memory: usize,
        _opts: &Options,
        _progress: bool,
    ) -> Result<Outcome, String> {
        check(kind).and(Err(NO_CUDA.into()))
    }
}

/// The CUDA backend runs f32 only: an F64 model on `--device cuda` is this error.
impl CliFloat for f64 {
    fn solve_on_gpu(
        _p: &Problem<f64>,
        _kind: SolverKind,
        _memory: usize,
        _opts: &Options<f64>,
        _progress: bool,
    ) -> Result<Outcome<f64>, String> {
        Err(F64_ON_GPU.into())
    }
}

/// What `--device cuda` says to an F64 model.
const F64_ON_GPU: &str = "--device cuda: the model is F64 and the CUDA backend runs F32 models only \
                          (solve it with --device cpu, or convert the model to F32)";

/// Checks what can be checked before the files are read: the solver, and whether this
/// build has CUDA at all.
pub fn check(kind: SolverKind) -> Result<(), String> {
    if kind != SolverKind::Broyden {
        return Err(format!("--device cuda runs --solver broyden only, not {}", kind.name()));
    }
    if cfg!(feature = "cuda") { Ok(()) } else { Err(NO_CUDA.into()) }
}

/// What a build without the `cuda` feature says to `--device cuda`.
const NO_CUDA: &str = "--device cuda: this deq was built without CUDA support \
                       (build it with `cargo build --release -p solver-host --features cuda`)";
