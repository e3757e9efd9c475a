//! `deqsolve._native`: the Rust half of the `deqsolve` Python package.
//!
//! The algorithms are solver-core's and the batch drivers solver-host's; this crate only
//! carries them to Python (PyO3, abi3):
//!
//! * [`config::Config`]: a solve's settings, read from keyword arguments and checked;
//! * [`host::HostBatch`]: one solver per sample for a batch in host memory (NumPy
//!   arrays, CPU tensors), read and written in place, advanced one round at a time
//!   while Python evaluates `f`;
//! * [`offload::OffloadBatch`]: Broyden for a batch whose vectors stay on a device,
//!   solver-core's state machine deciding on the host and a Python executor doing the
//!   vector work where the tensors are ([`offload::NativeVectors`]: the same work by
//!   solver-core's kernels, the reference).
//!
//! The Python package (`solver-py/python/deqsolve`) builds `deqsolve.solve`,
//! `deqsolve.torch.fixed_point` and the torchdeq plug-in on these.

#![warn(missing_docs)]

pub mod config;
pub mod host;
pub mod offload;
mod reports;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<config::Config>()?;
    m.add_class::<host::HostBatch>()?;
    m.add_class::<offload::OffloadBatch>()?;
    m.add_function(wrap_pyfunction!(config::options_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(config::settings_defaults, m)?)?;
    m.add_class::<offload::NativeVectors>()?;
    for (name, value) in offload::CONSTANTS {
        m.add(name, value)?;
    }
    Ok(())
}
