//! The CUDA backend of the offloaded Broyden solve (feature `cuda`): [`CudaBroyden`]
//! keeps a whole batch's vectors in GPU memory and carries out the operations that
//! [`offload::solve`](crate::offload::solve) asks for, for a [`DeqLayer`](crate::model::DeqLayer).
//!
//! # Libraries
//!
//! cudarc opens `libcuda`, `libnvrtc` and `libcublas` at run time, so the crate builds
//! and its CPU tests run without CUDA. [`CudaBroyden::new`] first checks that each
//! library loads (before any other CUDA call: cudarc panics on a missing library) and
//! returns [`CudaError::NoDriver`], [`CudaError::NoNvrtc`] or [`CudaError::NoCublas`]
//! otherwise, then [`CudaError::NoDevice`] when the driver finds no device. It uses
//! device 0.
//!
//! # Device memory
//!
//! Allocated once, by [`CudaBroyden::new`] ([`CudaBroyden::memory_bytes`] is the exact
//! total), for `B` samples of dimension `d = L·h` (`L` tokens of width `h`) and `M`
//! pairs:
//!
//! ```text
//!     work     [5][B][d]   X, G, P, Xn, Gn of every sample: one vector of consecutive
//!                          samples is one contiguous [rows × h] matrix (rows = samples·L)
//!     U, V     [B][M][d]   the stored pairs
//!     z        [B][d]      the best iterates
//!     W        [h][h]      the layer's weight
//!     c        [B·L][h]    the injection U x + b, computed once on the host
//!     partial  [B][M][blocks]  f64: per-block partial sums
//!     coef     [B][M]      f64: the coefficients of a low-rank product
//!     result   [B]         f64: the sums the replies are made of
//!     params   [B][8]      the round's operations
//! ```
//!
//! so `4·d·B·(2M + 7) + 4·h²` bytes and a little scratch: the same `2M + 5` vectors per
//! sample as solver-core's `Broyden`, plus `z` and `c`.
//!
//! # A round
//!
//! [`execute`](crate::offload::OffloadBackend::execute) groups the samples by the kind
//! of operation they wait for and launches each kind once, over the list of its
//! samples; a round's operations may differ from sample to sample in kind and in their
//! arguments. The lists (one 32-byte entry per sample: its index, the vectors named,
//! the pairs set `end`/`skip`, `alpha` and the factors of a low-rank product) go to the
//! device in one small copy; when some operation has a reply, one double per sample
//! comes back. No `O(d)` data crosses the bus except in `load` (z₀) and `store` (z).
//!
//! # Kernels (`kernels.cu`, compiled at run time by NVRTC)
//!
//! The backend compiles them to the device's machine code ([`compile_kernels_for`]
//! its compute capability), so the driver JIT-compiles nothing and an NVRTC newer than
//! the driver works; it falls back to PTX ([`compile_kernels`]) when NVRTC does not
//! know the architecture. Either is compiled once per process.
//!
//! Every vector kernel runs on a grid `(blocks per sample, samples in the list)` of 256
//! threads; block `x` of list entry `y` handles a contiguous slice of that sample's `d`
//! elements. There is one kernel per operation of [`solver_core::broyden::ops`], and
//! none knows Broyden's method (its formulas are solver-core's alone):
//!
//! * **Evaluate**: one cuBLAS `sgemm` per run of consecutive evaluating samples (row
//!   major `out = Z·Wᵀ`, i.e. column-major with `W` transposed), then `activation`:
//!   `out ← tanh(out + c)` or `relu`;
//! * **Copy**, **Scale**, **Combine**, **Fill**: `op_copy`, `op_scale` (`αx`),
//!   `op_combine` (`x + αy`), `op_fill`, elementwise (an output may be an input);
//! * **LowRank**: `op_low_rank_coeffs` forms the partial coefficients `bᵢ·x` (eight
//!   rows per pass over `x`), then `op_low_rank_apply` adds `Σ (α cᵢ) aᵢ` to `out`
//!   in one pass, row by row;
//! * **Dot**, **Norm**, **AllFinite**: `op_dot`, `op_norm` (the sum of squares) and
//!   `op_all_finite` (the count of non-finite entries), each a reduction to one
//!   double per sample.
//!
//! Every reduction is two-stage and deterministic: each block sums its slice in f64
//! into `partial`, and `reduce` sums the blocks of each quantity in a fixed order. No
//! atomics, so a solve gives the same bits every run.
//!
//! # Agreement with the CPU
//!
//! The kernels are compiled with `--fmad=false`, so elementwise operations round as
//! the CPU's do. The reductions differ: they sum in f64 (norms are then exact at every
//! `f32` scale, where the CPU rescales), and the GPU's `tanhf` and `sgemm` round
//! differently from the CPU's. Results agree with [`HostVectors`](crate::offload::HostVectors)
//! to rounding: the GPU tests (`tests/cuda.rs`, run with `--ignored` on a GPU machine)
//! check statuses, evaluation counts within one and `z` within `10⁻⁴` relative.
//! A solve is deterministic (the same inputs give the same bits), but unlike the CPU
//! path a sample's result is not independent of the rest of the batch to the last bit:
//! cuBLAS may pick a different algorithm for a product of another number of rows, and
//! the runs of running samples change as samples stop.
//!
//! # Profiling
//!
//! [`CudaBroyden::set_profiling`] times every round (waiting for the device at its
//! end) as an evaluation round or a solver-operation round; [`Profile::op_bytes`]
//! counts the bytes the solver operations read and write in device memory (analytic:
//! each vector pass once), so [`Profile::op_bandwidth`] against
//! [`DeviceInfo::peak_bandwidth`] says how close they run to the memory's speed.

mod backend;
mod device;
mod error;
mod plan;

pub use backend::CudaBroyden;
pub use device::{
    DeviceInfo, KERNELS_SOURCE, compile_kernels, compile_kernels_for, driver_available, nvrtc_available,
};
pub use error::CudaError;

/// Time and traffic of a [`CudaBroyden`]'s rounds since its last
/// [`reset_profile`](CudaBroyden::reset_profile).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Profile {
    /// Rounds that evaluated `f`.
    pub eval_rounds: u32,
    /// Rounds of solver operations.
    pub op_rounds: u32,
    /// Seconds in evaluation rounds (0 unless profiling was on).
    pub eval_seconds: f64,
    /// Seconds in solver-operation rounds (0 unless profiling was on).
    pub op_seconds: f64,
    /// Bytes the solver operations read and wrote in device memory (each vector pass
    /// counted once; the evaluations are not included).
    pub op_bytes: u64,
}

impl Profile {
    /// Achieved bandwidth of the solver operations, bytes per second (`None` before
    /// any timed solver-operation round).
    pub fn op_bandwidth(&self) -> Option<f64> {
        (self.op_seconds > 0.0).then(|| self.op_bytes as f64 / self.op_seconds)
    }

    /// Share of the timed time spent evaluating `f` (`None` when nothing was timed).
    pub fn eval_share(&self) -> Option<f64> {
        let total = self.eval_seconds + self.op_seconds;
        (total > 0.0).then(|| self.eval_seconds / total)
    }
}
