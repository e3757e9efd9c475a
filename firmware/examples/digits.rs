//! A trained DEQ classifier on the chip: scikit-learn's handwritten digits (8 × 8
//! pixels, ten classes), `z* = tanh(W z* + U x + b)` with h = 32 and `logits = R z* + c`,
//! trained in PyTorch with `deqsolve.torch.fixed_point` (`digits/train.py`) and exported
//! as `deq export` exports it. Every one of the 360 test images is classified with
//! `Broyden<32, 8>` (in a `static`) and the prediction checked against the host's
//! (`build.rs`, through the calls of `deq solve`).
//!
//! ```text
//! cargo run --release --example digits --target thumbv6m-none-eabi
//! cargo run --release --example digits --target thumbv6m-none-eabi --features int8
//! ```
//!
//! The check: every solve converges, and every class equals the host's, except where
//! the host's own margin (largest score − second largest) is below [`TIE_MARGIN`]: such
//! an image is a tie that two roundings may break either way, and it is logged with both
//! margins. Any other difference makes the program exit with status 1. It prints the
//! accuracy against the labels. `--features int8` uses the int8 weights (and the host's
//! predictions for them).

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use deq_firmware::digits::{self, HOST_CLASS, HOST_MARGIN, HOST_RIGHT, data, model};
use deq_firmware::{deq_mark_begin, deq_mark_end};
use solver_core::scores::margin;

/// A host margin below this is a tie: the chip may pick the other class.
const TIE_MARGIN: f32 = 1e-3;

static mut SOLVER: model::Solver = model::Solver::new();

#[entry]
fn main() -> ! {
    deq_firmware::paint_stack();
    // SAFETY: single-threaded; the static is borrowed once.
    let solver = unsafe { &mut *addr_of_mut!(SOLVER) };
    defmt::info!(
        "digits: h = {=usize}, {=usize} test images, {=str} weights ({=usize} bytes of flash), Broyden<32, 8> in {=usize} bytes",
        model::H,
        data::TEST,
        digits::WEIGHTS,
        model::WEIGHT_FLASH,
        model::SOLVER_RAM
    );
    let (mut right, mut ties, mut wrong, mut stuck) = (0usize, 0usize, 0usize, 0usize);
    let mut iterations = 0u32;
    for (i, ((pixels, &label), (&host, &host_margin))) in
        data::PIXELS.iter().zip(&data::LABEL).zip(HOST_CLASS.iter().zip(&HOST_MARGIN)).enumerate()
    {
        let mut x = [0.0f32; model::P];
        for (xi, &p) in x.iter_mut().zip(pixels) {
            *xi = f32::from(p) / 16.0;
        }
        // One inference: the injection, the solve, the readout.
        deq_mark_begin(i as u32);
        let mut c = [0.0f32; model::H];
        model::injection(&x, &mut c);
        let mut z = [0.0f32; model::H];
        let report = solver.solve(|z, out| model::layer(z, &c, out), &mut z, &data::OPTS);
        let class = model::classify(&z);
        deq_mark_end(i as u32);

        iterations += report.iterations;
        if !report.status.is_converged() {
            stuck += 1;
            defmt::info!("image {=usize}: the solve ended {}", i, report);
        }
        if class == Some(usize::from(label)) {
            right += 1;
        }
        if class != Some(usize::from(host)) {
            let mut scores = [0.0f32; model::K];
            model::logits(&z, &mut scores);
            let tie = host_margin < TIE_MARGIN;
            if tie {
                ties += 1;
            } else {
                wrong += 1;
            }
            defmt::info!(
                "image {=usize}: chip class {} (margin {=f32}), host class {=u8} (margin {=f32}): {=str}",
                i,
                class,
                margin(&scores),
                host,
                host_margin,
                if tie { "a tie" } else { "MISMATCH" }
            );
        }
    }
    let n = data::TEST;
    defmt::info!(
        "accuracy {=usize}/{=usize} = {=f32} (host {=usize}/{=usize}); {=u32} iterations in all",
        right,
        n,
        right as f32 / n as f32,
        HOST_RIGHT,
        n,
        iterations
    );
    defmt::info!(
        "{=usize} predictions equal the host's, {=usize} ties (host margin < {=f32}), {=usize} mismatches, {=usize} solves not converged",
        n - ties - wrong,
        ties,
        TIE_MARGIN,
        wrong,
        stuck
    );
    defmt::info!("peak stack {=usize} bytes", deq_firmware::peak_stack());
    let ok = wrong == 0 && stuck == 0;
    defmt::info!("{=str}", if ok { "all predictions agree with the host" } else { "WRONG ANSWER" });
    deq_firmware::exit(ok)
}
