//! `deq export`: a Rust module for firmware with the layer's weights as consts, the
//! layer function and a type alias for the solver, and the RAM and flash it needs.

use std::mem::size_of;

use solver_host::model::DeqLayer;
use solver_host::model::export::{self, ModuleSpec};
use solver_host::solver_core::{AndersonInner, BroydenInner, PicardInner};

use crate::args::{ExportArgs, SolverKind};
use crate::outputs::Outputs;
use crate::problem;

/// `deq export`.
pub fn run(a: &ExportArgs) -> Result<(), String> {
    if a.memory == 0 {
        return Err("--memory must be at least 1".into());
    }
    let inputs: Vec<(&str, &std::path::Path)> = a.model.iter().map(|m| ("--model", m.as_path())).collect();
    let out = Outputs::prepare(&[("--out", &a.out)], &inputs)?;
    let (layer, source) = match &a.model {
        Some(m) => (DeqLayer::load(m).map_err(|e| e.to_string())?, m.display().to_string()),
        None => {
            let p = problem::demo();
            (p.layer, p.source)
        }
    };
    let ram = footprint(a.solver, layer.hidden(), a.memory)?;
    let spec = ModuleSpec {
        source,
        solver: solver_type(a.solver, a.memory),
        ram: Some(ram),
        weights: a.weights.into(),
    };
    let text = export::firmware_module(&layer, &spec);
    out.commit(&[text.as_bytes()])?;
    println!("wrote {}", a.out.display());
    println!("solver RAM:    {ram} bytes ({})", spec.solver);
    let (tensors, matrices) =
        if layer.readout().is_some() { ("W, U, b, R, c", "W, U, R") } else { ("W, U, b", "W, U") };
    let storage = match spec.weights {
        export::Weights::F32 => "as f32".to_string(),
        export::Weights::Int8 => format!("with {matrices} as int8 and a scale per row"),
    };
    println!("weight flash:  {} bytes ({tensors} {storage})", export::weight_flash(&layer, spec.weights));
    if let Some(r) = layer.readout() {
        println!("readout:       {} classes: logits(z, out) and classify(z)", r.classes());
    }
    Ok(())
}

/// The `FOOTPRINT` of solver-core's const-generic solver for `h` unknowns: the same
/// buffers as the run-time form plus the scalars stored beside them (the solver over an
/// empty storage), rounded up to the struct's alignment. Computed, not allocated: a
/// history far too deep for this machine still has a footprint.
pub fn footprint(kind: SolverKind, h: usize, memory: usize) -> Result<usize, String> {
    let (scalars, align) = match kind {
        SolverKind::Broyden => (size_of::<BroydenInner<()>>(), align_of::<BroydenInner<()>>()),
        SolverKind::Anderson => (size_of::<AndersonInner<()>>(), align_of::<AndersonInner<()>>()),
        SolverKind::Picard => (size_of::<PicardInner<()>>(), align_of::<PicardInner<()>>()),
    };
    problem::solver_bytes(kind, h, memory)
        .and_then(|b| b.checked_add(scalars)?.checked_next_multiple_of(align))
        .ok_or_else(|| format!("--memory {memory}: the solver's RAM for h = {h} overflows a usize"))
}

fn solver_type(kind: SolverKind, memory: usize) -> String {
    match kind {
        SolverKind::Broyden => format!("Broyden<H, {memory}>"),
        SolverKind::Anderson => format!("Anderson<H, {memory}>"),
        SolverKind::Picard => "Picard<H>".into(),
    }
}
