//! Run-time-sized forms of the `solver-core` solvers for workstations, and batches of
//! independent solves on every core.
//!
//! [`DynBroyden`], [`DynAnderson`] and [`DynPicard`] own heap buffers sized once, at
//! construction, from a dimension and a history depth chosen at run time; a solve then
//! allocates nothing, however many iterations it runs. They run solver-core's
//! algorithms (the `*Work` forms over slices): one implementation, two storage forms.
//!
//! [`solve_batch`] solves many independent samples in parallel (rayon), each with its
//! own [`Report`](solver_core::Report).
//!
//! ```
//! use solver_host::{DynBroyden, HostSolver};
//! use solver_core::{Options, Status};
//!
//! let n = 100; // chosen at run time
//! let mut solver = DynBroyden::new(n, 8).unwrap();
//! let mut z = vec![0.0f32; n];
//! let report = solver
//!     .solve(&mut |z: &[f32], out: &mut [f32]| {
//!         for (i, o) in out.iter_mut().enumerate() {
//!             *o = (0.5 * z[(i + 1) % z.len()] + 0.01 * i as f32).tanh();
//!         }
//!     }, &mut z, &Options::default())
//!     .unwrap();
//! assert_eq!(report.status, Status::Converged);
//! assert_eq!(solver.memory_bytes(), 4 * n * (2 * 8 + 5));
//! ```

mod batch;
mod dynamic;

pub use batch::{BatchError, solve_batch};
pub use dynamic::{DynAnderson, DynBroyden, DynPicard, HostSolver, SizeError};
pub use solver_core;
