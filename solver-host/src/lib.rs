//! Run-time-sized forms of the `solver-core` solvers for workstations.
//!
//! This crate is a placeholder for now: it re-exports `solver-core`, whose slice-level
//! workspaces ([`solver_core::broyden::BroydenWork`] and friends) already accept buffers
//! sized at run time.

pub use solver_core;
