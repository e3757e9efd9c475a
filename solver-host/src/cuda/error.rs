//! What can go wrong with the CUDA backend, each case one line of text.

use core::fmt;

use cudarc::cublas::result::CublasError;
use cudarc::driver::DriverError;
use cudarc::nvrtc::result::NvrtcError;

/// Why the CUDA backend cannot be built or has failed. Every cudarc failure is mapped
/// here; the backend never panics on a device error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CudaError {
    /// The CUDA driver library (`libcuda`) cannot be loaded: no NVIDIA driver.
    NoDriver,
    /// The NVRTC library (`libnvrtc`), which compiles the kernels, cannot be loaded.
    NoNvrtc,
    /// The NVRTC library is older than 12.0.
    OldNvrtc {
        /// Its major version (0 when it could not say).
        major: i32,
        /// Its minor version.
        minor: i32,
    },
    /// The cuBLAS library (`libcublas`), which evaluates the layer, cannot be loaded.
    NoCublas,
    /// The driver is there but offers no usable device.
    NoDevice {
        /// What the driver said (`cuInit` or `cuDeviceGetCount`).
        reason: String,
    },
    /// NVRTC rejected the kernels.
    Compile {
        /// The first lines of the compiler's log.
        log: String,
    },
    /// A CUDA driver call failed.
    Driver {
        /// The call, or what it was for.
        call: &'static str,
        /// The driver's error code (`CUDA_ERROR_…`).
        code: String,
    },
    /// A cuBLAS call failed.
    Cublas {
        /// The call.
        call: &'static str,
        /// cuBLAS's status (`CUBLAS_STATUS_…`).
        code: String,
    },
    /// The problem does not fit the backend (empty, too large, or inputs of the wrong
    /// length).
    Shape(String),
    /// An operation refers to a pair row the backend does not have, or is one the
    /// kernels do not carry out (an evaluation in place or not between work vectors, a
    /// low-rank product writing a vector it reads).
    InvalidOp(String),
}

/// Lines of the NVRTC log kept in [`CudaError::Compile`].
const LOG_LINES: usize = 4;

impl CudaError {
    /// A driver failure of `call` (formats the code without calling into the driver,
    /// so it is safe even when the driver is in a bad state).
    pub(crate) fn driver(call: &'static str) -> impl Fn(DriverError) -> CudaError {
        move |e| CudaError::Driver { call, code: format!("{:?}", e.0) }
    }

    /// A cuBLAS failure of `call`.
    pub(crate) fn cublas(call: &'static str) -> impl Fn(CublasError) -> CudaError {
        move |e| CudaError::Cublas { call, code: format!("{:?}", e.0) }
    }

    /// A failed compilation: the first lines of NVRTC's `log`, or its status when the
    /// log is empty.
    pub(crate) fn from_log(log: &str, status: NvrtcError) -> CudaError {
        let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let mut kept = lines.iter().take(LOG_LINES).copied().collect::<Vec<_>>().join(" | ");
        if lines.len() > LOG_LINES {
            kept.push_str(&format!(" | … ({} more lines)", lines.len() - LOG_LINES));
        }
        CudaError::Compile { log: if kept.is_empty() { format!("{:?}", status.0) } else { kept } }
    }
}

impl fmt::Display for CudaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CudaError::NoDriver => {
                write!(f, "no CUDA driver: libcuda cannot be loaded (is an NVIDIA driver installed?)")
            }
            CudaError::NoNvrtc => write!(
                f,
                "CUDA: libnvrtc cannot be loaded (install the CUDA toolkit's NVRTC, or add its directory to LD_LIBRARY_PATH)"
            ),
            CudaError::OldNvrtc { major, minor } => {
                write!(f, "CUDA: libnvrtc {major}.{minor} is too old (12.0 or newer is needed)")
            }
            CudaError::NoCublas => write!(
                f,
                "CUDA: libcublas cannot be loaded (install cuBLAS, or add its directory to LD_LIBRARY_PATH)"
            ),
            CudaError::NoDevice { reason } => write!(f, "no CUDA device: {reason}"),
            CudaError::Compile { log } => write!(f, "CUDA: NVRTC could not compile the kernels: {log}"),
            CudaError::Driver { call, code } => write!(f, "CUDA driver: {call} failed: {code}"),
            CudaError::Cublas { call, code } => write!(f, "cuBLAS: {call} failed: {code}"),
            CudaError::Shape(what) => write!(f, "CUDA backend: {what}"),
            CudaError::InvalidOp(what) => write!(f, "CUDA backend: invalid operation: {what}"),
        }
    }
}

impl std::error::Error for CudaError {}

#[cfg(test)]
mod tests {
    use cudarc::nvrtc::sys::nvrtcResult;

    use super::*;

    #[test]
    fn compile_errors_keep_the_first_lines_of_the_log_on_one_line() {
        let status = NvrtcError(nvrtcResult::NVRTC_ERROR_COMPILATION);
        let log = "a.cu(3): error: x\n\n  b\nc\nd\ne\nf\n";
        let e = CudaError::from_log(log, status);
        assert_eq!(e, CudaError::Compile { log: "a.cu(3): error: x | b | c | d | … (2 more lines)".into() });
        assert!(!e.to_string().contains('\n'));
        let empty = CudaError::from_log("", NvrtcError(nvrtcResult::NVRTC_ERROR_COMPILATION));
        assert_eq!(empty, CudaError::Compile { log: "NVRTC_ERROR_COMPILATION".into() });
    }
}
