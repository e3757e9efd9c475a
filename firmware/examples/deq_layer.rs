//! A DEQ layer `z = tanh(W z + U x + b)` (d = 32) solved for four inputs by
//! `Broyden<32, 8>`, `Anderson<32, 5>` and `Picard<32>`, kept in `static`s built by
//! `const fn new`. Each answer is checked against the float64 fixed point computed on
//! the host (build.rs) to 1e-4; a wrong answer makes the program exit with status 1.
//!
//! ```text
//! cargo run --release --example deq_layer --target thumbv7em-none-eabihf
//! ```
//!
//! The cargo features `broyden`, `anderson` and `picard` (all on by default) choose
//! which solvers are linked in, so that each one's memory can be measured alone.

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use deq_firmware::{D, Layer, TOLERANCE, data, deq_mark_begin, deq_mark_end, max_error};
use solver_core::{Options, Report};

#[cfg(feature = "anderson")]
static mut ANDERSON: deq_firmware::DeqAnderson = deq_firmware::DeqAnderson::new();
#[cfg(feature = "broyden")]
static mut BROYDEN: deq_firmware::DeqBroyden = deq_firmware::DeqBroyden::new();
#[cfg(feature = "picard")]
static mut PICARD: deq_firmware::DeqPicard = deq_firmware::DeqPicard::new();

const OPTS: Options = Options { max_iters: 200, tol_rel: 1e-6, ..Options::DEFAULT };

/// Solves the layer for every input with `solve`, checks each answer, and logs it.
fn run(name: &str, tag: u32, solve: &mut dyn FnMut(&Layer, &mut [f32; D]) -> Report) -> bool {
    let mut ok = true;
    for (k, (x, expected)) in data::X.iter().zip(&data::EXPECTED).enumerate() {
        let layer = Layer::new(x);
        let mut z = [0.0f32; D];
        deq_mark_begin(tag);
        let report = solve(&layer, &mut z);
        deq_mark_end(tag);
        let err = max_error(&z, expected);
        let good = report.status.is_converged() && err <= TOLERANCE;
        ok &= good;
        defmt::info!(
            "{=str} input {=usize}: {} max error {=f32} {=str}",
            name,
            k,
            report,
            err,
            if good { "ok" } else { "WRONG" }
        );
    }
    ok
}

#[entry]
fn main() -> ! {
    deq_firmware::paint_stack();
    let mut ok = true;
    #[cfg(feature = "broyden")]
    {
        // SAFETY: single-threaded; the static is borrowed once.
        let solver = unsafe { &mut *addr_of_mut!(BROYDEN) };
        defmt::info!("Broyden<32, 8>: FOOTPRINT {=usize} bytes", deq_firmware::DeqBroyden::FOOTPRINT);
        ok &= run("broyden", 1, &mut |l, z| solver.solve(|z, o| l.apply(z, o), z, &OPTS));
    }
    #[cfg(feature = "anderson")]
    {
        // SAFETY: as above.
        let solver = unsafe { &mut *addr_of_mut!(ANDERSON) };
        defmt::info!("Anderson<32, 5>: FOOTPRINT {=usize} bytes", deq_firmware::DeqAnderson::FOOTPRINT);
        ok &= run("anderson", 2, &mut |l, z| solver.solve(|z, o| l.apply(z, o), z, &OPTS));
    }
    #[cfg(feature = "picard")]
    {
        // SAFETY: as above.
        let solver = unsafe { &mut *addr_of_mut!(PICARD) };
        defmt::info!("Picard<32>: FOOTPRINT {=usize} bytes", deq_firmware::DeqPicard::FOOTPRINT);
        ok &= run("picard", 3, &mut |l, z| solver.solve(|z, o| l.apply(z, o), z, &OPTS));
    }
    defmt::info!("peak stack {=usize} bytes", deq_firmware::peak_stack());
    defmt::info!("{=str}", if ok { "all solves correct" } else { "WRONG ANSWER" });
    deq_firmware::exit(ok)
}
