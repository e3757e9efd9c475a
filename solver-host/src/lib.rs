//! Run-time-sized forms of the `solver-core` solvers for workstations, batches on every
//! core, DEQ layer models from files, and the `deq` command-line tool.
//!
//! [`DynBroyden`], [`DynAnderson`] and [`DynPicard`] own heap buffers sized once, at
//! construction, from a dimension and a history depth chosen at run time; a solve then
//! allocates nothing, however many iterations it runs. They run solver-core's
//! algorithms: the same types as solver-core's const-generic solvers, over heap
//! storage ([`Heap`]), so one implementation serves every storage form.
//!
//! Two ways to solve a batch:
//!
//! * [`solve_batch`]: many independent samples in parallel (rayon), each with its own
//!   closure call per evaluation and its own [`Report`](solver_core::Report);
//! * [`Lockstep`]: one solver per sample over a `[B × d]` state, advanced together so
//!   that `f` of every running sample is one batched call of a [`BatchBackend`] (for a
//!   DEQ layer, one matrix product: `LayerBackend`); per-sample convergence masks stop
//!   the samples that are done. Each sample's result is bit-identical to its solo solve.
//!
//! * [`Rounds`]: the same solvers, with the rounds driven by a caller that evaluates `f`
//!   itself (the Python package `deqsolve` does, with the model's own `f`);
//! * [`offload`]: Broyden over a batch whose vectors stay on a device (the `cuda`
//!   feature's GPU backend), driven by solver-core's Broyden state machine: only a few
//!   scalars per sample and round come back to the host.
//!
//! `model` holds the DEQ layer `f(z; x) = act(W z + U x + b)` and its safetensors files.
//!
//! # Features
//!
//! * `layer` (default): `model` (the layer's kernels, safetensors files),
//!   `LayerBackend` and the `deq` tool. Without it the crate is the run-time solvers
//!   and the batch drivers alone, as solver-py builds it.
//! * `cuda`: the GPU backend of [`offload`] (`cuda::CudaBroyden`), with `layer`.
//!
//! ```
//! use solver_host::DynBroyden;
//! use solver_core::{Options, Solver, Status};
//!
//! let n = 100; // chosen at run time
//! let mut solver = DynBroyden::with_sizes(n, 8).unwrap();
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
#[cfg(feature = "cuda")]
pub mod cuda;
mod dynamic;
#[cfg(feature = "layer")]
mod layer_backend;
pub mod lockstep;
#[cfg(feature = "layer")]
pub mod model;
pub mod offload;

pub use batch::{BatchBackend, BatchError, Progress, solve_batch};
pub use dynamic::{AnySolver, DynAnderson, DynBroyden, DynPicard, Heap};
#[cfg(feature = "layer")]
pub use layer_backend::{COLUMN_MAX_ROWS, COLUMN_MIN_HIDDEN, LayerBackend, PIECE_MIN_TOKENS};
pub use lockstep::{Lockstep, LockstepError, Rounds};
pub use offload::{HostVectors, OffloadBackend, OffloadError, OffloadRun};
pub use solver_core;
pub use solver_core::{SizeError, Solver};
