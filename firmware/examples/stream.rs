//! One `Broyden<32, 8>` reused across a stream of slowly drifting inputs (a sensor
//! feeding a DEQ layer), solved twice: from zero each time (cold) and from the previous
//! answer (warm start). Every answer is checked against the host's float64 fixed point
//! to 1e-4, and the warm starts must save evaluations; otherwise the exit status is 1.
//!
//! ```text
//! cargo run --release --example stream --target thumbv6m-none-eabi
//! ```

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use deq_firmware::{D, DeqBroyden, Layer, TOLERANCE, data, deq_mark_begin, deq_mark_end, max_error};
use solver_core::Options;

static mut SOLVER: DeqBroyden = DeqBroyden::new();

const OPTS: Options = Options { max_iters: 100, tol_rel: 1e-6, ..Options::DEFAULT };

/// Solves the whole stream; `warm` starts each solve from the previous answer.
/// Returns (all answers correct, total f-evaluations).
fn pass(solver: &mut DeqBroyden, warm: bool) -> (bool, u32) {
    let mut z = [0.0f32; D];
    let (mut ok, mut evals) = (true, 0u32);
    for (t, (x, expected)) in data::STREAM_X.iter().zip(&data::STREAM_EXPECTED).enumerate() {
        if !warm {
            z = [0.0; D];
        }
        let layer = Layer::new(x);
        deq_mark_begin(if warm { 5 } else { 4 });
        let r = solver.solve(|z, o| layer.apply(z, o), &mut z, &OPTS);
        deq_mark_end(if warm { 5 } else { 4 });
        let err = max_error(&z, expected);
        let good = r.status.is_converged() && err <= TOLERANCE;
        ok &= good;
        evals += r.f_evals;
        defmt::info!(
            "{=str} t={=usize}: {=u32} f-evals, max error {=f32} {=str}",
            if warm { "warm" } else { "cold" },
            t,
            r.f_evals,
            err,
            if good { "ok" } else { "WRONG" }
        );
    }
    (ok, evals)
}

#[entry]
fn main() -> ! {
    deq_firmware::paint_stack();
    // SAFETY: single-threaded; the static is borrowed once.
    let solver = unsafe { &mut *addr_of_mut!(SOLVER) };
    let (cold_ok, cold) = pass(solver, false);
    let (warm_ok, warm) = pass(solver, true);
    let saved = warm < cold;
    defmt::info!("f-evaluations over {=usize} inputs: cold {=u32}, warm {=u32}", data::STREAM, cold, warm);
    defmt::info!("peak stack {=usize} bytes", deq_firmware::peak_stack());
    let ok = cold_ok && warm_ok && saved;
    defmt::info!("{=str}", if ok { "all solves correct, warm starts save work" } else { "FAILED" });
    deq_firmware::exit(ok)
}
