//! `deq export`: a Rust module for firmware with the layer's weights as consts, the
//! layer function and a type alias for the solver, and the RAM and flash it needs.

use solver_host::model::AnyLayer;
use solver_host::model::export::{self, ModuleSpec};

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
        Some(m) => match AnyLayer::load(m).map_err(|e| e.to_string())? {
            AnyLayer::F32(layer) => (layer, m.display().to_string()),
            // The firmware runs f32 (and int8 weights dequantised to f32): rounding an F64
            // model to f32 is the user's explicit step, not a silent one here.
            AnyLayer::F64(_) => {
                return Err(format!(
                    "--model {}: the model is F64, and deq export writes f32 firmware: convert its \
                     tensors to F32 (e.g. tensor.float()) and export that file",
                    m.display()
                ));
            }
        },
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

/// The `FOOTPRINT` of solver-core's const-generic solver for `h` unknowns (its arrays
/// and the scalars beside them), from solver-core's run-time query. Computed, not
/// allocated: a history far too deep for this machine still has a footprint.
pub fn footprint(kind: SolverKind, h: usize, memory: usize) -> Result<usize, String> {
    match kind {
        SolverKind::Broyden => solver_core::broyden::footprint::<f32>(h, memory),
        SolverKind::Anderson => solver_core::anderson::footprint::<f32>(h, memory),
        SolverKind::Picard => solver_core::picard::footprint::<f32>(h),
    }
    .ok_or_else(|| format!("--memory {memory}: the solver's RAM for h = {h} overflows a usize"))
}

fn solver_type(kind: SolverKind, memory: usize) -> String {
    match kind {
        SolverKind::Broyden => format!("Broyden<H, {memory}>"),
        SolverKind::Anderson => format!("Anderson<H, {memory}>"),
        SolverKind::Picard => "Picard<H>".into(),
    }
}
