//! The firmware module of a layer ([`firmware_module`]): what `deq export` writes.
//!
//! The module is Rust source for a `no_std` program that depends on `solver-core`. It
//! holds the weights as `static`s (in flash), the sizes `H` and `P`, the solver type
//! `Solver` with its `SOLVER_RAM`, and the functions
//!
//! - `injection(x, c)`: `c = U x + b`, once per input;
//! - `layer(z, c, out)`: `out = act(W z + c)`, the map whose fixed point the solver finds;
//!
//! and, for a model with a [`Readout`](super::Readout), the class count `K` and
//!
//! - `logits(z, out)`: `out = R z + c`, summed in the same order as
//!   [`Readout::logits`](super::Readout::logits);
//! - `classify(z)`: the index of the largest score (the first on a tie), `None` if a
//!   score is NaN: `solver_core::scores::argmax`, as for
//!   [`Readout::class`](super::Readout::class).
//!
//! With [`Weights::Int8`] the matrices are stored as `i8` with a scale per row
//! ([`int8`](super::int8)) and each row's product is `s_i · Σ_j q_ij z_j`, in f32, with
//! `q as f32` read from a 256-entry table (1 KiB of flash). Measured on the digits
//! model (`firmware/measure.sh`, median instructions per inference): the table makes
//! the int8 form 1.1 % slower than f32 on the Cortex-M0 instead of 13 % with the
//! conversion routine its software floats call, 0.9 % instead of 7 % on the M3; on the
//! M4F, whose FPU converts in one instruction, it is 0.3 % slower than the conversion.
//! Floats are printed so that they read back bit for bit.

use std::fmt::Write as _;

use super::int8::{Int8Layer, Int8Matrix};
use super::{Activation, DeqLayer};

/// How the module stores the weight matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Weights {
    /// `f32`, as in the model file.
    #[default]
    F32,
    /// `i8` with one `f32` scale per row.
    Int8,
}

/// What the module says about where it came from and what the solver needs.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Where the model came from (a file name), for the module's docs.
    pub source: String,
    /// The solver type, as solver-core names it with `H` for the width, e.g.
    /// `Broyden<H, 8>`.
    pub solver: String,
    /// The solver's RAM (`Solver::FOOTPRINT`), asserted at compile time when given.
    pub ram: Option<usize>,
    /// The storage of the weight matrices.
    pub weights: Weights,
}

/// Bytes of flash the weights take in the module.
pub fn weight_flash(layer: &DeqLayer, weights: Weights) -> usize {
    let int8 = (weights == Weights::Int8).then(|| Int8Layer::quantize(layer));
    flash(layer, int8.as_ref())
}

/// [`weight_flash`] of `layer`, stored as `int8` if given, else as f32.
fn flash(layer: &DeqLayer, int8: Option<&Int8Layer>) -> usize {
    match int8 {
        None => layer.weight_bytes() + layer.readout().map_or(0, |r| r.weight_bytes()),
        Some(q) => q.bytes(layer),
    }
}

/// The module's text (see the [module docs](self)).
pub fn firmware_module(layer: &DeqLayer, spec: &ModuleSpec) -> String {
    let (h, p) = (layer.hidden(), layer.input_width());
    let act = layer.activation();
    let int8 = (spec.weights == Weights::Int8).then(|| Int8Layer::quantize(layer));
    let flash = flash(layer, int8.as_ref());
    let storage = if int8.is_some() { "int8 with a scale per row" } else { "f32" };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! DEQ layer exported by `deq export` from {source}:\n\
         //! `f(z; x) = {act}(W z + U x + b)` with h = {h}, p = {p}{readout}.\n\
         //!\n\
         //! Solver: `{ty}`{ram}; weights ({storage}) in flash: {flash} bytes.\n\
         //!\n\
         //! ```ignore\n\
         //! let mut c = [0.0f32; H];\n\
         //! injection(&x, &mut c); // once per input\n\
         //! let mut z = [0.0f32; H];\n\
         //! let report = Solver::new().solve(|z, out| layer(z, &c, out), &mut z, &solver_core::Options::DEFAULT);\n\
         //! ```\n",
        source = spec.source,
        readout = layer
            .readout()
            .map_or(String::new(), |r| format!(", readout `logits = R z + c` with k = {}", r.classes())),
        ty = spec.solver,
        ram = spec.ram.map_or(String::new(), |r| format!(", {r} bytes of RAM (`Solver::FOOTPRINT`)")),
    );
    let _ = writeln!(s, "/// Hidden width `h`: the length of the state `z`.\npub const H: usize = {h};");
    let _ = writeln!(s, "/// Input width `p`: the length of the input `x`.\npub const P: usize = {p};");
    let _ = writeln!(s, "/// The solver: `Solver::new()` is `const`, so it can live in a `static`.");
    let _ = writeln!(s, "pub type Solver = solver_core::{};", spec.solver);
    let _ =
        writeln!(s, "/// RAM the solver needs, in bytes.\npub const SOLVER_RAM: usize = Solver::FOOTPRINT;");
    if let Some(ram) = spec.ram {
        let _ = writeln!(s, "const _: () = assert!(SOLVER_RAM == {ram});");
    }
    let _ = writeln!(s, "/// Flash the weights need, in bytes.\npub const WEIGHT_FLASH: usize = {flash};");
    let w_doc = "`W[i][j]` multiplies `z[j]` into output `i`";
    let u_doc = "`U[i][j]` multiplies `x[j]` into output `i`";
    match &int8 {
        None => {
            f32_matrix(&mut s, "W", w_doc, layer.w(), h, "H", "H");
            f32_matrix(&mut s, "U", u_doc, layer.u(), p, "P", "H");
        }
        Some(q) => {
            i8_matrix(&mut s, "W", w_doc, &q.w, "H", "H");
            i8_matrix(&mut s, "U", u_doc, &q.u, "P", "H");
        }
    }
    let _ =
        writeln!(s, "/// The bias `b`.\n#[rustfmt::skip]\npub static BIAS: [f32; H] = [{}];", row(layer.b()));
    if int8.is_some() {
        let table: Vec<String> = (0..=255u8).map(|k| format!("{:?}", f32::from(k as i8))).collect();
        let _ = writeln!(
            s,
            "/// `q as f32` for every int8 `q`, indexed by its bits: one load instead of a conversion.\n\
             #[rustfmt::skip]\nstatic I8_TO_F32: [f32; 256] = [{}];\n\
             /// `q as f32`.\n#[inline(always)]\nfn dq(q: i8) -> f32 {{\n    I8_TO_F32[q as u8 as usize]\n}}",
            table.join(", ")
        );
    }
    let act_expr = match act {
        Activation::Tanh => "solver_core::math::tanh(s)",
        // NaN stays NaN (f32::max would turn it into 0).
        Activation::Relu => "if s < 0.0 { 0.0 } else { s }",
    };
    // Per row of U and of W: what the loop binds, what it iterates, the sum it forms.
    let ((u_bind, u_rows, u_sum), (w_bind, w_rows, w_sum)) = match int8 {
        None => (
            (
                "(row, bi)",
                "U.iter().zip(&BIAS)",
                "*bi + row.iter().zip(x).map(|(w, xj)| w * xj).sum::<f32>()",
            ),
            ("(row, ci)", "W.iter().zip(c)", "ci + row.iter().zip(z).map(|(w, zj)| w * zj).sum::<f32>()"),
        ),
        Some(_) => (
            (
                "((row, si), bi)",
                "U.iter().zip(&U_SCALE).zip(&BIAS)",
                "*bi + si * row.iter().zip(x).map(|(w, xj)| dq(*w) * xj).sum::<f32>()",
            ),
            (
                "((row, si), ci)",
                "W.iter().zip(&W_SCALE).zip(c)",
                "ci + si * row.iter().zip(z).map(|(w, zj)| dq(*w) * zj).sum::<f32>()",
            ),
        ),
    };
    let _ = write!(
        s,
        "/// `c = U x + b`: the part of `f` that does not depend on `z`, computed once per input.\n\
         pub fn injection(x: &[f32; P], c: &mut [f32; H]) {{\n\
         \x20   for (ci, {u_bind}) in c.iter_mut().zip({u_rows}) {{\n\
         \x20       *ci = {u_sum};\n\
         \x20   }}\n\
         }}\n\
         /// `out = {act}(W z + c)`: the map whose fixed point the solver finds.\n\
         pub fn layer(z: &[f32; H], c: &[f32; H], out: &mut [f32; H]) {{\n\
         \x20   for (o, {w_bind}) in out.iter_mut().zip({w_rows}) {{\n\
         \x20       let s = {w_sum};\n\
         \x20       *o = {act_expr};\n\
         \x20   }}\n\
         }}\n"
    );
    if let Some(r) = layer.readout() {
        let k = r.classes();
        let _ = writeln!(s, "/// Classes `k`: the scores of the readout.\npub const K: usize = {k};");
        let r_doc = "`R[i][j]` multiplies `z[j]` into the score of class `i`";
        let (sum, rows, bind) = match int8.as_ref().and_then(|q| q.r.as_ref()) {
            None => {
                f32_matrix(&mut s, "R", r_doc, r.r(), h, "H", "K");
                ("row.iter().zip(z).fold(*ci, |s, (w, zj)| s + w * zj)", "R.iter().zip(&C)", "(row, ci)")
            }
            Some(q) => {
                i8_matrix(&mut s, "R", r_doc, q, "H", "K");
                (
                    "ci + si * row.iter().zip(z).map(|(w, zj)| dq(*w) * zj).sum::<f32>()",
                    "R.iter().zip(&R_SCALE).zip(&C)",
                    "((row, si), ci)",
                )
            }
        };
        let _ = writeln!(
            s,
            "/// The readout's bias `c`.\n#[rustfmt::skip]\npub static C: [f32; K] = [{}];",
            row(r.c())
        );
        let _ = write!(
            s,
            "/// `out = R z + c`: one score per class.\n\
             pub fn logits(z: &[f32; H], out: &mut [f32; K]) {{\n\
             \x20   for (o, {bind}) in out.iter_mut().zip({rows}) {{\n\
             \x20       *o = {sum};\n\
             \x20   }}\n\
             }}\n\
             /// The predicted class of the fixed point `z`: the largest of its [`logits`] (the\n\
             /// first on a tie), `None` if a score is NaN.\n\
             pub fn classify(z: &[f32; H]) -> Option<usize> {{\n\
             \x20   let mut scores = [0.0f32; K];\n\
             \x20   logits(z, &mut scores);\n\
             \x20   solver_core::scores::argmax(&scores)\n\
             }}\n"
        );
    }
    s
}

fn f32_matrix(
    s: &mut String,
    name: &str,
    doc: &str,
    data: &[f32],
    cols: usize,
    cols_name: &str,
    rows_name: &str,
) {
    let _ = writeln!(
        s,
        "/// `{name}`, row-major: {doc}.\n#[rustfmt::skip]\npub static {name}: [[f32; {cols_name}]; {rows_name}] = ["
    );
    for r in data.chunks(cols.max(1)) {
        let _ = writeln!(s, "    [{}],", row(r));
    }
    s.push_str("];\n");
}

fn i8_matrix(s: &mut String, name: &str, doc: &str, m: &Int8Matrix, cols_name: &str, rows_name: &str) {
    let _ = writeln!(
        s,
        "/// `{name}` in int8, row-major: {doc}, scaled by `{name}_SCALE[i]`.\n#[rustfmt::skip]\n\
         pub static {name}: [[i8; {cols_name}]; {rows_name}] = ["
    );
    for r in m.q().chunks(m.cols().max(1)) {
        let _ = writeln!(s, "    [{}],", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
    }
    s.push_str("];\n");
    let _ = writeln!(
        s,
        "/// The scale of each row of `{name}`.\n#[rustfmt::skip]\npub static {name}_SCALE: [f32; {rows_name}] = [{}];",
        row(m.scale())
    );
}

/// Floats printed so that they read back bit for bit (`{:?}` is the shortest such form).
fn row(v: &[f32]) -> String {
    v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(", ")
}
