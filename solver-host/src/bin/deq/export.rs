//! `deq export`: a Rust module for firmware with the layer's weights as consts, the
//! layer function and a type alias for the solver, and the RAM and flash it needs.

use std::fmt::Write as _;
use std::mem::size_of;

use solver_host::HostSolver;
use solver_host::model::{Activation, DeqLayer};
use solver_host::solver_core::{AndersonSettings, BroydenSettings, PicardSettings};

use crate::args::{ExportArgs, SolverKind};
use crate::{files, problem};

/// `deq export`.
pub fn run(a: &ExportArgs) -> Result<(), String> {
    if a.memory == 0 {
        return Err("--memory must be at least 1".into());
    }
    files::check_writable(&a.out)?;
    let (layer, source) = match &a.model {
        Some(m) => (DeqLayer::load(m).map_err(|e| e.to_string())?, m.display().to_string()),
        None => {
            let p = problem::demo();
            (p.layer, p.source)
        }
    };
    let ram = footprint(a.solver, layer.hidden(), a.memory)?;
    let text = module(&layer, &source, a.solver, a.memory, ram);
    files::write_atomic(&a.out, text.as_bytes())?;
    println!("wrote {}", a.out.display());
    println!("solver RAM:    {ram} bytes ({})", solver_type(a.solver, a.memory));
    println!("weight flash:  {} bytes (W, U, b as f32)", layer.weight_bytes());
    Ok(())
}

/// The `FOOTPRINT` of solver-core's const-generic solver for `h` unknowns: the same
/// buffers as the run-time form plus the settings stored beside them.
pub fn footprint(kind: SolverKind, h: usize, memory: usize) -> Result<usize, String> {
    let buffers = problem::make_solver(kind, h, memory).map_err(|e| e.to_string())?.memory_bytes();
    Ok(buffers
        + match kind {
            SolverKind::Broyden => size_of::<BroydenSettings>(),
            SolverKind::Anderson => size_of::<AndersonSettings>(),
            SolverKind::Picard => size_of::<PicardSettings>(),
        })
}

fn solver_type(kind: SolverKind, memory: usize) -> String {
    match kind {
        SolverKind::Broyden => format!("Broyden<H, {memory}>"),
        SolverKind::Anderson => format!("Anderson<H, {memory}>"),
        SolverKind::Picard => "Picard<H>".into(),
    }
}

/// The module's text.
pub fn module(layer: &DeqLayer, source: &str, kind: SolverKind, memory: usize, ram: usize) -> String {
    let (h, p) = (layer.hidden(), layer.input_width());
    let act = layer.activation();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! DEQ layer exported by `deq export` from {source}:\n\
         //! `f(z; x) = {act}(W z + U x + b)` with h = {h}, p = {p}.\n\
         //!\n\
         //! Solver RAM: {ram} bytes (`{ty}::FOOTPRINT`); weights in flash: {flash} bytes.\n\
         //!\n\
         //! ```ignore\n\
         //! let mut c = [0.0f32; H];\n\
         //! injection(&x, &mut c); // once per input\n\
         //! let mut z = [0.0f32; H];\n\
         //! let report = Solver::new().solve(|z, out| layer(z, &c, out), &mut z, &solver_core::Options::DEFAULT);\n\
         //! ```\n",
        ty = solver_type(kind, memory),
        flash = layer.weight_bytes()
    );
    let _ = writeln!(s, "/// Hidden width `h`: the length of the state `z`.\npub const H: usize = {h};");
    let _ = writeln!(s, "/// Input width `p`: the length of the input `x`.\npub const P: usize = {p};");
    let _ = writeln!(s, "/// The solver: `Solver::new()` is `const`, so it can live in a `static`.");
    let _ = writeln!(s, "pub type Solver = solver_core::{};", solver_type(kind, memory));
    let _ =
        writeln!(s, "/// RAM the solver needs, in bytes.\npub const SOLVER_RAM: usize = Solver::FOOTPRINT;");
    let _ = writeln!(s, "const _: () = assert!(SOLVER_RAM == {ram});");
    let _ = writeln!(
        s,
        "/// Flash the weights need, in bytes.\npub const WEIGHT_FLASH: usize = 4 * (H * H + H * P + H);"
    );
    matrix(&mut s, "W", "`W[i][j]` multiplies `z[j]` into output `i`", layer.w(), h, "H");
    matrix(&mut s, "U", "`U[i][j]` multiplies `x[j]` into output `i`", layer.u(), p, "P");
    let _ =
        writeln!(s, "/// The bias `b`.\n#[rustfmt::skip]\npub static BIAS: [f32; H] = [{}];", row(layer.b()));
    let act_expr = match act {
        Activation::Tanh => "solver_core::math::tanh(s)",
        Activation::Relu => "s.max(0.0)",
    };
    let _ = write!(
        s,
        "/// `c = U x + b`: the part of `f` that does not depend on `z`, computed once per input.\n\
         pub fn injection(x: &[f32; P], c: &mut [f32; H]) {{\n\
         \x20   for (ci, (row, bi)) in c.iter_mut().zip(U.iter().zip(&BIAS)) {{\n\
         \x20       *ci = bi + row.iter().zip(x).map(|(w, xj)| w * xj).sum::<f32>();\n\
         \x20   }}\n\
         }}\n\
         /// `out = {act}(W z + c)`: the map whose fixed point the solver finds.\n\
         pub fn layer(z: &[f32; H], c: &[f32; H], out: &mut [f32; H]) {{\n\
         \x20   for (o, (row, ci)) in out.iter_mut().zip(W.iter().zip(c)) {{\n\
         \x20       let s = ci + row.iter().zip(z).map(|(w, zj)| w * zj).sum::<f32>();\n\
         \x20       *o = {act_expr};\n\
         \x20   }}\n\
         }}\n"
    );
    s
}

fn matrix(s: &mut String, name: &str, doc: &str, data: &[f32], cols: usize, cols_name: &str) {
    let _ = writeln!(
        s,
        "/// `{name}`, row-major: {doc}.\n#[rustfmt::skip]\npub static {name}: [[f32; {cols_name}]; H] = ["
    );
    for r in data.chunks(cols.max(1)) {
        let _ = writeln!(s, "    [{}],", row(r));
    }
    s.push_str("];\n");
}

/// Floats printed so that they read back bit for bit (`{:?}` is the shortest such form).
fn row(v: &[f32]) -> String {
    v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ")
}
