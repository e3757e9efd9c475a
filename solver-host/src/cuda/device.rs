//! The device: library checks, the context and stream, the compiled kernels, cuBLAS,
//! device buffers and what the device says about itself.

use std::ffi::CString;
use std::sync::{Arc, OnceLock};

use cudarc::cublas::{result as blas_result, sys as blas_sys};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, ValidAsZeroBits, sys,
};
use cudarc::nvrtc::Ptx;

use super::CudaError;

/// The CUDA C source of the kernels (`kernels.cu`), compiled at run time by NVRTC.
pub const KERNELS_SOURCE: &str = include_str!("kernels.cu");

/// Threads per block of every kernel (`THREADS` in `kernels.cu`).
pub(crate) const THREADS: u32 = 256;

/// The kernels' entry points, in the order of [`Kernels`]' fields.
const NAMES: [&str; 11] = [
    "activation",
    "op_copy",
    "op_scale",
    "op_combine",
    "op_fill",
    "op_low_rank_coeffs",
    "op_low_rank_apply",
    "op_dot",
    "op_norm",
    "op_all_finite",
    "reduce",
];

/// Whether the NVRTC library can be loaded (checked before any NVRTC call: cudarc
/// panics when it is missing).
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the library; no symbol is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Whether the CUDA driver library can be loaded.
pub fn driver_available() -> bool {
    // SAFETY: only tries to open the library; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Name of the kernels' source in NVRTC's messages.
const SOURCE_NAME: &str = "deq_broyden_kernels.cu";

/// Checks that NVRTC loads and is recent enough (12.0 or newer, as the bindings this
/// crate uses are CUDA 12's): cudarc panics on a missing symbol, and `nvrtcVersion` is
/// in every NVRTC.
fn check_nvrtc() -> Result<(), CudaError> {
    use cudarc::nvrtc::sys as nvrtc_sys;
    if !nvrtc_available() {
        return Err(CudaError::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two valid out-pointers; the library is loaded (checked above).
    let status = unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) };
    if status != nvrtc_sys::nvrtcResult::NVRTC_SUCCESS || major < 12 {
        return Err(CudaError::OldNvrtc { major, minor });
    }
    Ok(())
}

/// Compiles [`KERNELS_SOURCE`] to PTX with NVRTC (for NVRTC's default virtual
/// architecture). Needs the NVRTC library, not a device. `--fmad=false`: elementwise
/// operations round as the CPU's do. The backend loads this only when it cannot load
/// the device's own code ([`compile_kernels_for`]).
pub fn compile_kernels() -> Result<Ptx, CudaError> {
    compile(None)
}

/// Compiles [`KERNELS_SOURCE`] to machine code (a CUBIN) for compute capability
/// `(major, minor)`, e.g. `(9, 0)` for an H100. Needs the NVRTC library, not a device.
/// This is what the backend loads: the driver has no PTX to JIT-compile, so an NVRTC
/// newer than the driver works too.
pub fn compile_kernels_for(capability: (i32, i32)) -> Result<Ptx, CudaError> {
    compile(Some(capability))
}

/// NVRTC through its plain API (cudarc's `Program` unwraps on some failures): machine
/// code for `capability`, or PTX when `None`.
fn compile(capability: Option<(i32, i32)>) -> Result<Ptx, CudaError> {
    use cudarc::nvrtc::{result, sys as nvrtc_sys};
    check_nvrtc()?;
    let code = |e: result::NvrtcError| CudaError::Compile { log: format!("{:?}", e.0) };
    let src =
        CString::new(KERNELS_SOURCE).map_err(|_| CudaError::Compile { log: "NUL in the source".into() })?;
    let name = CString::new(SOURCE_NAME).map_err(|_| CudaError::Compile { log: "NUL in the name".into() })?;
    let prog = result::create_program(&src, Some(&name)).map_err(code)?;
    let mut opts = vec!["--fmad=false".to_string()];
    if let Some((major, minor)) = capability {
        opts.push(format!("--gpu-architecture=sm_{major}{minor}"));
    }
    // SAFETY: `prog` is a live program (destroyed once, below), `src` and `name` outlive
    // it, and the buffers passed to nvrtcGetCUBIN / nvrtcGetPTX have the sizes NVRTC
    // reported.
    let out = unsafe {
        match result::compile_program(prog, &opts) {
            Err(e) => {
                let log = result::get_program_log(prog).ok().map(|l| {
                    let bytes: Vec<u8> = l.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                });
                Err(CudaError::from_log(log.as_deref().unwrap_or(""), e))
            }
            Ok(()) if capability.is_some() => {
                let mut size = 0usize;
                nvrtc_sys::nvrtcGetCUBINSize(prog, &mut size).result().map_err(code).and_then(|()| {
                    let mut bin = vec![0 as core::ffi::c_char; size];
                    nvrtc_sys::nvrtcGetCUBIN(prog, bin.as_mut_ptr()).result().map_err(code)?;
                    Ok(Ptx::from_binary(bin.into_iter().map(|c| c as u8).collect()))
                })
            }
            Ok(()) => {
                let mut size = 0usize;
                nvrtc_sys::nvrtcGetPTXSize(prog, &mut size).result().map_err(code).and_then(|()| {
                    let mut text = vec![0 as core::ffi::c_char; size];
                    nvrtc_sys::nvrtcGetPTX(prog, text.as_mut_ptr()).result().map_err(code)?;
                    let bytes: Vec<u8> = text.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
                    Ok(Ptx::from_src(String::from_utf8_lossy(&bytes).into_owned()))
                })
            }
        }
    };
    // SAFETY: created above, destroyed once.
    let _ = unsafe { result::destroy_program(prog) };
    out
}

/// The kernels for compute capability `cc`: its machine code (`sass`) or PTX. Each is
/// compiled once per process.
fn kernels_image(cc: (i32, i32), sass: bool) -> Result<Ptx, CudaError> {
    static SASS: OnceLock<((i32, i32), Ptx)> = OnceLock::new();
    static PTX: OnceLock<Ptx> = OnceLock::new();
    if sass {
        if let Some((c, bin)) = SASS.get()
            && *c == cc
        {
            return Ok(bin.clone());
        }
        let bin = compile_kernels_for(cc)?;
        let _ = SASS.set((cc, bin.clone()));
        Ok(bin)
    } else {
        if let Some(ptx) = PTX.get() {
            return Ok(ptx.clone());
        }
        let ptx = compile_kernels()?;
        let _ = PTX.set(ptx.clone());
        Ok(ptx)
    }
}

/// What the device is.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    /// The device's name.
    pub name: String,
    /// Compute capability `(major, minor)`.
    pub compute_capability: (i32, i32),
    /// Number of streaming multiprocessors.
    pub multiprocessors: u32,
    /// Total device memory, bytes.
    pub total_memory: usize,
    /// Peak memory bandwidth in bytes per second, `2 × memory clock × bus width / 8`,
    /// when the driver reports both (`None` otherwise).
    pub peak_bandwidth: Option<f64>,
    /// What the kernels were loaded as: the device's machine code, or PTX (and why).
    pub kernels: String,
}

/// The compiled kernels, one function each: one per kind of operation (two for the
/// low-rank product), the layer's activation and the second stage of the reductions.
pub(crate) struct Kernels {
    pub activation: CudaFunction,
    pub copy: CudaFunction,
    pub scale: CudaFunction,
    pub combine: CudaFunction,
    pub fill: CudaFunction,
    pub low_rank_coeffs: CudaFunction,
    pub low_rank_apply: CudaFunction,
    pub dot: CudaFunction,
    pub norm: CudaFunction,
    pub all_finite: CudaFunction,
    pub reduce: CudaFunction,
}

/// A device buffer and its raw address (valid while the buffer lives; every use is
/// on the one stream, so no event tracking is needed).
pub(crate) struct Buf<T> {
    slice: CudaSlice<T>,
    /// Device address of element 0.
    pub ptr: u64,
}

impl<T> Buf<T> {
    /// Elements held.
    pub fn len(&self) -> usize {
        self.slice.len()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.slice.num_bytes()
    }

    /// Address of element `i` (not checked: callers index within `len`).
    pub fn at(&self, i: usize) -> u64 {
        self.ptr + (i * size_of::<T>()) as u64
    }
}

/// A cuBLAS handle, destroyed on drop with its status ignored (cudarc's `CudaBlas`
/// unwraps it, which would panic when dropped after a device error).
pub(crate) struct BlasHandle(pub blas_sys::cublasHandle_t);

impl Drop for BlasHandle {
    fn drop(&mut self) {
        // SAFETY: created by `create_handle` in `Gpu::open`, destroyed only here.
        let _ = unsafe { blas_result::destroy_handle(self.0) };
    }
}

/// The context, stream, kernels and cuBLAS handle of device 0. The handle is the first
/// field, so it is destroyed before the stream and context it uses.
pub(crate) struct Gpu {
    pub blas: BlasHandle,
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub k: Kernels,
    pub info: DeviceInfo,
}

impl Gpu {
    /// Opens device 0: checks that the libraries load (before any other cudarc call),
    /// that a device exists, compiles and loads the kernels and creates the cuBLAS
    /// handle.
    pub fn open() -> Result<Gpu, CudaError> {
        if !driver_available() {
            return Err(CudaError::NoDriver);
        }
        let reason = |e: cudarc::driver::DriverError| CudaError::NoDevice { reason: format!("{:?}", e.0) };
        let count = CudaContext::device_count().map_err(reason)?;
        if count < 1 {
            return Err(CudaError::NoDevice { reason: "the driver reports 0 devices".into() });
        }
        check_nvrtc()?;
        // SAFETY: only tries to open the library.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(CudaError::NoCublas);
        }
        let ctx = CudaContext::new(0).map_err(CudaError::driver("cuDevicePrimaryCtxRetain"))?;
        let stream = ctx.default_stream();
        let cc = ctx.compute_capability().map_err(CudaError::driver("cuDeviceGetAttribute"))?;
        // The device's machine code; PTX for the driver to compile when NVRTC cannot
        // produce it (an architecture newer than NVRTC) or the driver cannot load it.
        let (module, code) = match kernels_image(cc, true)
            .and_then(|bin| ctx.load_module(bin).map_err(CudaError::driver("cuModuleLoadData (CUBIN)")))
        {
            Ok(module) => (module, format!("sm_{}{} machine code", cc.0, cc.1)),
            Err(sass) => {
                let ptx = kernels_image(cc, false)?;
                let module = ctx.load_module(ptx).map_err(CudaError::driver("cuModuleLoadData (PTX)"))?;
                (module, format!("PTX, compiled by the driver (no machine code: {sass})"))
            }
        };
        let mut f = Vec::with_capacity(NAMES.len());
        for name in NAMES {
            f.push(module.load_function(name).map_err(CudaError::driver("cuModuleGetFunction"))?);
        }
        let mut f = f.into_iter();
        let mut next =
            || f.next().ok_or(CudaError::Driver { call: "cuModuleGetFunction", code: "missing".into() });
        let k = Kernels {
            activation: next()?,
            copy: next()?,
            scale: next()?,
            combine: next()?,
            fill: next()?,
            low_rank_coeffs: next()?,
            low_rank_apply: next()?,
            dot: next()?,
            norm: next()?,
            all_finite: next()?,
            reduce: next()?,
        };
        let blas = BlasHandle(blas_result::create_handle().map_err(CudaError::cublas("cublasCreate"))?);
        // SAFETY: a live handle and this context's stream (which outlives it: both are
        // fields of the Gpu, and the handle is destroyed first, in its Drop).
        unsafe { blas_result::set_stream(blas.0, stream.cu_stream() as blas_sys::cudaStream_t) }
            .map_err(CudaError::cublas("cublasSetStream"))?;
        // Plain FP32 products (no TF32 tensor cores), whatever the environment says.
        // SAFETY: a valid handle and a valid mode.
        unsafe { blas_sys::cublasSetMathMode(blas.0, blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH) }
            .result()
            .map_err(CudaError::cublas("cublasSetMathMode"))?;
        let info = device_info(&ctx, code)?;
        Ok(Gpu { blas, ctx, stream, k, info })
    }

    /// A zeroed buffer of `len` elements.
    pub fn alloc<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<Buf<T>, CudaError> {
        let slice = self.stream.alloc_zeros::<T>(len.max(1)).map_err(CudaError::driver("cuMemAlloc"))?;
        let (ptr, sync) = slice.device_ptr(&self.stream);
        drop(sync);
        Ok(Buf { slice, ptr })
    }

    /// Copies `src` into `dst` from element `at` on (stream-ordered; `src` may be
    /// reused on return).
    pub fn upload<T>(&self, dst: &Buf<T>, at: usize, src: &[T]) -> Result<(), CudaError> {
        check_range(dst, at, src.len())?;
        self.ctx.bind_to_thread().map_err(CudaError::driver("cuCtxSetCurrent"))?;
        // SAFETY: the range is inside the live allocation (checked above); a pageable
        // source is staged before the call returns.
        unsafe { cudarc::driver::result::memcpy_htod_async(dst.at(at), src, self.stream.cu_stream()) }
            .map_err(CudaError::driver("cuMemcpyHtoDAsync"))
    }

    /// Copies `src`'s elements from `at` on into `dst`, and waits for the copy.
    pub fn download<T>(&self, dst: &mut [T], src: &Buf<T>, at: usize) -> Result<(), CudaError> {
        check_range(src, at, dst.len())?;
        self.ctx.bind_to_thread().map_err(CudaError::driver("cuCtxSetCurrent"))?;
        // SAFETY: the range is inside the live allocation (checked above).
        unsafe { cudarc::driver::result::memcpy_dtoh_async(dst, src.at(at), self.stream.cu_stream()) }
            .map_err(CudaError::driver("cuMemcpyDtoHAsync"))?;
        self.sync()
    }

    /// Waits for everything queued on the stream.
    pub fn sync(&self) -> Result<(), CudaError> {
        self.stream.synchronize().map_err(CudaError::driver("cuStreamSynchronize"))
    }

    /// Device memory in use on the whole device (all processes), bytes: total − free.
    pub fn memory_used(&self) -> Result<usize, CudaError> {
        let (free, total) = self.ctx.mem_get_info().map_err(CudaError::driver("cuMemGetInfo"))?;
        Ok(total.saturating_sub(free))
    }
}

/// Checks that elements `at .. at + len` are inside `buf`.
fn check_range<T>(buf: &Buf<T>, at: usize, len: usize) -> Result<(), CudaError> {
    match at.checked_add(len) {
        Some(end) if end <= buf.len() => Ok(()),
        _ => Err(CudaError::Shape(format!("a copy of {len} values at {at} into a buffer of {}", buf.len()))),
    }
}

/// Launch geometry: `grid` blocks of [`THREADS`] threads, no dynamic shared memory.
pub(crate) fn config(grid: (u32, u32)) -> cudarc::driver::LaunchConfig {
    cudarc::driver::LaunchConfig {
        grid_dim: (grid.0, grid.1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn device_info(ctx: &CudaContext, kernels: String) -> Result<DeviceInfo, CudaError> {
    use sys::CUdevice_attribute as A;
    let attr = |a: A| ctx.attribute(a).map_err(CudaError::driver("cuDeviceGetAttribute"));
    let name = ctx.name().map_err(CudaError::driver("cuDeviceGetName"))?;
    let compute_capability = ctx.compute_capability().map_err(CudaError::driver("cuDeviceGetAttribute"))?;
    let multiprocessors = attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?.max(0) as u32;
    let total_memory = ctx.total_mem().map_err(CudaError::driver("cuDeviceTotalMem"))?;
    // Memory clock in kHz, bus width in bits; some drivers no longer report the clock.
    let clock = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).ok().filter(|&c| c > 0);
    let bus = ctx.attribute(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH).ok().filter(|&b| b > 0);
    let peak_bandwidth = clock.zip(bus).map(|(c, b)| 2.0 * c as f64 * 1e3 * b as f64 / 8.0);
    Ok(DeviceInfo { name, compute_capability, multiprocessors, total_memory, peak_bandwidth, kernels })
}
