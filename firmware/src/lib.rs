//! Firmware building blocks for small DEQ layers on Cortex-M.
//!
//! For now this crate only fixes the memory budget of the solvers a microcontroller
//! build uses, and proves it at compile time: if a solver grows past its budget, the
//! firmware no longer builds. The QEMU examples come with the firmware issue.

#![no_std]

use solver_core::{Anderson, Broyden, Picard};

/// State dimension of the example DEQ layer.
pub const D: usize = 32;

/// The solvers, with their memory fixed by their types.
pub type DeqBroyden = Broyden<D, 8>;
/// Anderson with five differences.
pub type DeqAnderson = Anderson<D, 5>;
/// Plain fixed-point iteration.
pub type DeqPicard = Picard<D>;

// The micro:bit (nRF51, Cortex-M0) has 16 KiB of RAM in all: each solver gets 4 KiB.
const _: () = assert!(DeqBroyden::FOOTPRINT <= 4096);
const _: () = assert!(DeqAnderson::FOOTPRINT <= 4096);
const _: () = assert!(DeqPicard::FOOTPRINT <= 4096);

/// A solver in a `static`, built by `const fn new`, as firmware keeps it.
pub static mut BROYDEN: DeqBroyden = DeqBroyden::new();
