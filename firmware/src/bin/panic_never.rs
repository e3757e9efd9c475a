//! Link-time proof that the solve path cannot panic.
//!
//! The panic handler below calls a function that exists nowhere. If any panic (a
//! bounds check, an overflow check, an `unwrap`) were reachable from the solvers, the
//! optimiser would keep the call and linking this program would fail with an
//! undefined symbol. It builds, so no panic is reachable. It is never run.
//!
//! ```text
//! cd firmware && cargo build --release --bin panic_never --target thumbv7em-none-eabihf
//! ```

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::ptr::{addr_of_mut, read_volatile};

use deq_firmware::{D, DeqAnderson, DeqBroyden, DeqPicard};
use solver_core::Options;

static mut BROYDEN: DeqBroyden = DeqBroyden::new();
static mut ANDERSON: DeqAnderson = DeqAnderson::new();
static mut PICARD: DeqPicard = DeqPicard::new();
static mut INPUT: [f32; D] = [0.0; D];
static mut OPTIONS: Options = Options::DEFAULT;
static mut OUT: [f32; 3] = [0.0; 3];

/// A DEQ-like map whose data the compiler cannot see (volatile reads).
fn layer(z: &[f32; D], out: &mut [f32; D]) {
    // SAFETY: single-threaded program; the statics are only read here.
    let x = unsafe { read_volatile(addr_of_mut!(INPUT)) };
    for ((o, xi), (zi, zn)) in out.iter_mut().zip(x.iter()).zip(z.iter().zip(z.iter().cycle().skip(1))) {
        *o = solver_core::math::tanh(0.5 * zn - 0.25 * zi + xi);
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    // SAFETY: single-threaded program; each static is borrowed once.
    let (b, a, p, opts) = unsafe {
        (
            &mut *addr_of_mut!(BROYDEN),
            &mut *addr_of_mut!(ANDERSON),
            &mut *addr_of_mut!(PICARD),
            read_volatile(addr_of_mut!(OPTIONS)),
        )
    };
    let mut z = [0.0f32; D];
    let rb = b.solve(layer, &mut z, &opts);
    let ra = a.solve(layer, &mut z, &opts);
    let rp = p.solve(layer, &mut z, &opts);
    let mut root = [0.0f32; D];
    let rr = b.solve_root(layer, &mut root, &opts);
    // SAFETY: as above.
    unsafe {
        addr_of_mut!(OUT).write_volatile([
            rb.residual_abs + ra.residual_abs + rp.residual_abs + rr.residual_abs,
            z[0],
            root[0],
        ])
    };
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    unsafe extern "C" {
        /// Defined nowhere: referencing it makes the link fail.
        fn a_panic_is_reachable_from_the_solvers() -> !;
    }
    // SAFETY: never called — the program would not link if it could be.
    if cfg!(feature = "find-panics") {
        loop {}
    }
    unsafe { a_panic_is_reachable_from_the_solvers() }
}
