//! [`CudaBroyden`]: the [`OffloadBackend`] that keeps a batch's Broyden vectors in GPU
//! memory and carries out each round's operations with the kernels of `kernels.cu` and
//! cuBLAS.

use std::time::Instant;

use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::{DeviceRepr, PushKernelArg};
use solver_core::broyden::ops::{Op, Reply};

use super::device::{Buf, DeviceInfo, Gpu, THREADS, config};
use super::plan::{ENTRY_INTS, Kind, Plan, reply};
use super::{CudaError, Profile};
use crate::model::{Activation, DeqLayer};
use crate::offload::OffloadBackend;

/// Elements each thread handles per vector, when choosing the blocks per sample.
const PER_THREAD: usize = 4;
/// Most blocks per sample (bounds the reduction scratch).
const MAX_BLOCKS: usize = 256;

/// The batch's vector buffers as every operation kernel takes them: `struct Mem` of
/// `kernels.cu` (device addresses, the dimension, `B` and `M`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Mem {
    work: u64,
    u: u64,
    v: u64,
    z: u64,
    d: i64,
    nb: i32,
    m: i32,
}

// SAFETY: a plain `repr(C)` struct of integers, laid out as `struct Mem` in kernels.cu
// (four 8-byte addresses, an 8-byte int, two 4-byte ints: no padding).
unsafe impl DeviceRepr for Mem {}

/// The offloaded Broyden solve of a [`DeqLayer`] batch on a CUDA GPU: every sample's
/// vectors, its pairs `U`, `V`, its best iterate and the layer live in device memory,
/// allocated once by [`CudaBroyden::new`]; a round moves a few parameters per sample
/// to the device and, when an operation has a reply, one sum per sample back.
/// Use it with [`offload::solve`](crate::offload::solve). See the
/// [module documentation](super) for the layout and the kernels.
pub struct CudaBroyden {
    gpu: Gpu,
    samples: usize,
    tokens: usize,
    hidden: usize,
    dim: usize,
    m: usize,
    relu: bool,
    /// Blocks per sample of the vector kernels.
    blocks: usize,
    /// `[5][B][d]`: X, G, P, Xn, Gn.
    work: Buf<f32>,
    /// `[B][M][d]` each.
    u: Buf<f32>,
    v: Buf<f32>,
    /// `[B][d]`: the best iterates.
    z: Buf<f32>,
    /// `[h][h]`.
    w: Buf<f32>,
    /// `[B·L][h]`: the injection.
    c: Buf<f32>,
    /// `[B][M][blocks]`: per-block partial sums.
    partial: Buf<f64>,
    /// `[B][M]`: the coefficients of a low-rank product.
    coef: Buf<f64>,
    /// `[B]`: the sums the replies are made of.
    result: Buf<f64>,
    /// `[B][8]`: the round's operations.
    params: Buf<i32>,
    plan: Plan,
    sums: Vec<f64>,
    profiling: bool,
    profile: Profile,
}

fn too_large(what: &str) -> CudaError {
    CudaError::Shape(format!("{what} is too large"))
}

impl CudaBroyden {
    /// The backend for `samples` samples of `tokens` tokens through `layer`, with inputs
    /// `x` (`[samples × tokens × p]`, row-major) and room for `m` pairs per sample. Opens
    /// device 0, compiles the kernels, computes the injection `c = x Uᵀ + b` on the host
    /// and allocates and uploads everything a solve needs.
    ///
    /// # Errors
    ///
    /// [`CudaError::NoDriver`], [`CudaError::NoNvrtc`], [`CudaError::OldNvrtc`] or
    /// [`CudaError::NoCublas`] when a library cannot be loaded or is too old, [`CudaError::NoDevice`], [`CudaError::Compile`],
    /// [`CudaError::Shape`] for empty or oversized problems or an `x` of the wrong
    /// length, and driver or cuBLAS failures (out of memory).
    pub fn new(
        layer: &DeqLayer,
        x: &[f32],
        samples: usize,
        tokens: usize,
        m: usize,
    ) -> Result<Self, CudaError> {
        let (h, p) = (layer.hidden(), layer.input_width());
        if samples == 0 || tokens == 0 || m == 0 {
            return Err(CudaError::Shape(format!(
                "{samples} samples of {tokens} tokens with {m} pairs: all must be at least 1"
            )));
        }
        let rows = samples.checked_mul(tokens).ok_or_else(|| too_large("the batch"))?;
        let expected = rows.checked_mul(p).ok_or_else(|| too_large("the input"))?;
        if x.len() != expected {
            return Err(CudaError::Shape(format!(
                "x has {} values, expected {expected} ({rows} × {p})",
                x.len()
            )));
        }
        let dim = tokens.checked_mul(h).ok_or_else(|| too_large("a sample"))?;
        let state = rows.checked_mul(h).ok_or_else(|| too_large("the state"))?;
        let pairs = state.checked_mul(m).ok_or_else(|| too_large("the history"))?;
        let work_len = state.checked_mul(5).ok_or_else(|| too_large("the state"))?;
        // cuBLAS and the kernels take these as 32-bit ints (a pair row's vector code,
        // `row · 4 + buffer`, too); the grid's y has 65535; every buffer's size in bytes
        // must fit a usize (and an f64 scratch per pair).
        let int = |v: usize| i32::try_from(v).is_ok();
        let bytes = |v: usize| v.checked_mul(8).is_some();
        let codes = m.checked_mul(4).is_some_and(int);
        if !(int(rows) && int(h) && codes && bytes(pairs) && bytes(work_len)) || samples > 65_535 {
            return Err(too_large("the batch (samples, rows, width or pairs)"));
        }
        let blocks = dim.div_ceil(THREADS as usize * PER_THREAD).clamp(1, MAX_BLOCKS);
        // The device first: without one, fail before any work on the host.
        let gpu = Gpu::open()?;
        let mut c = vec![0.0f32; state];
        layer.injection(x, &mut c);
        let work = gpu.alloc(work_len)?;
        let u = gpu.alloc(pairs)?;
        let v = gpu.alloc(pairs)?;
        let z = gpu.alloc(state)?;
        let w = gpu.alloc(h * h)?;
        let c_dev = gpu.alloc(state)?;
        let partial = gpu.alloc(samples * m * blocks)?;
        let coef = gpu.alloc(samples * m)?;
        let result = gpu.alloc(samples)?;
        let params = gpu.alloc(samples * ENTRY_INTS)?;
        gpu.upload(&w, 0, layer.w())?;
        gpu.upload(&c_dev, 0, &c)?;
        gpu.sync()?;
        Ok(CudaBroyden {
            gpu,
            samples,
            tokens,
            hidden: h,
            dim,
            m,
            relu: layer.activation() == Activation::Relu,
            blocks,
            work,
            u,
            v,
            z,
            w,
            c: c_dev,
            partial,
            coef,
            result,
            params,
            plan: Plan::new(samples),
            sums: vec![0.0; samples],
            profiling: false,
            profile: Profile::default(),
        })
    }

    /// Device memory allocated by the backend, bytes (its buffers; the CUDA context,
    /// the kernels and cuBLAS's workspace are not counted: see
    /// [`device_memory_used`](Self::device_memory_used)).
    pub fn memory_bytes(&self) -> usize {
        [&self.work, &self.u, &self.v, &self.z, &self.w, &self.c].iter().map(|b| b.bytes()).sum::<usize>()
            + [&self.partial, &self.coef, &self.result].iter().map(|b| b.bytes()).sum::<usize>()
            + self.params.bytes()
    }

    /// Device memory in use on the whole device, all processes included (`cuMemGetInfo`:
    /// total − free), bytes.
    pub fn device_memory_used(&self) -> Result<usize, CudaError> {
        self.gpu.memory_used()
    }

    /// The device's name, memory and peak bandwidth.
    pub fn device_info(&self) -> &DeviceInfo {
        &self.gpu.info
    }

    /// Turns timing on or off. When on, every [`execute`](OffloadBackend::execute)
    /// waits for the device before returning, so that its time is known (this costs a
    /// little: leave it off outside benchmarks). Bytes are counted either way.
    pub fn set_profiling(&mut self, on: bool) {
        self.profiling = on;
    }

    /// Time and traffic since the last [`reset_profile`](Self::reset_profile).
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Zeroes the counters of [`profile`](Self::profile).
    pub fn reset_profile(&mut self) {
        self.profile = Profile::default();
    }

    /// Address of work vector `vec` of sample `s` in `work`.
    fn vec_at(&self, vec: usize, s: usize) -> u64 {
        self.work.at((vec * self.samples + s) * self.dim)
    }

    /// The buffers as the operation kernels take them.
    fn mem(&self) -> Mem {
        Mem {
            work: self.work.ptr,
            u: self.u.ptr,
            v: self.v.ptr,
            z: self.z.ptr,
            d: self.dim as i64,
            nb: self.samples as i32,
            m: self.m as i32,
        }
    }

    /// The grid of a vector kernel over `n` list entries: one row of blocks per entry.
    fn grid(&self, n: usize) -> (u32, u32) {
        (self.blocks as u32, n as u32)
    }

    /// The second stage of a reduction: `nq` quantities of the `n` entries at `list`
    /// into `out[sample · stride + q]`.
    fn reduce(&self, list: u64, n: usize, nq: usize, out: u64, stride: usize) -> Result<(), CudaError> {
        let (nblocks, nq_i, stride_i) = (self.blocks as i32, nq as i32, stride as i32);
        let mut b = self.gpu.stream.launch_builder(&self.gpu.k.reduce);
        b.arg(&list).arg(&self.partial.ptr).arg(&nblocks).arg(&nq_i).arg(&out).arg(&stride_i);
        // SAFETY: the arguments match the kernel's; every index is within its buffer.
        unsafe { b.launch(config((nq as u32, n as u32))) }
            .map_err(CudaError::driver("cuLaunchKernel (reduce)"))?;
        Ok(())
    }

    /// `out_rows ← act(point_rows · Wᵀ + c)` for the evaluations of the round: one
    /// cuBLAS product per run of consecutive samples, then one activation launch.
    fn evaluate(&self, list: u64, n: usize) -> Result<(), CudaError> {
        let (h, l) = (self.hidden, self.tokens);
        let (one, zero) = (1.0f32, 0.0f32);
        for run in self.plan.runs() {
            let rows = (run.len * l) as i32;
            let b = self.vec_at(run.point, run.first);
            let c = self.vec_at(run.out, run.first);
            // Row-major out[rows × h] = Z[rows × h] · Wᵀ is, column-major,
            // outᵀ (h × rows) = op(W) · Zᵀ with op = transpose (W row-major is Wᵀ
            // column-major).
            // SAFETY: W is h × h, the run's rows of `point` and `out` are rows × h inside
            // `work`, and the handle is bound to this context's stream.
            unsafe {
                blas::sgemm(
                    self.gpu.blas.0,
                    blas_sys::cublasOperation_t::CUBLAS_OP_T,
                    blas_sys::cublasOperation_t::CUBLAS_OP_N,
                    h as i32,
                    rows,
                    h as i32,
                    &one,
                    self.w.ptr as *const f32,
                    h as i32,
                    b as *const f32,
                    h as i32,
                    &zero,
                    c as *mut f32,
                    h as i32,
                )
            }
            .map_err(CudaError::cublas("cublasSgemm"))?;
        }
        let (mem, relu) = (self.mem(), i32::from(self.relu));
        let mut b = self.gpu.stream.launch_builder(&self.gpu.k.activation);
        b.arg(&list).arg(&mem).arg(&self.c.ptr).arg(&relu);
        // SAFETY: as for every launch here: arguments as declared in kernels.cu.
        unsafe { b.launch(config(self.grid(n))) }
            .map_err(CudaError::driver("cuLaunchKernel (activation)"))?;
        Ok(())
    }

    /// Launches the kernels of one kind over its `n` entries at `list`.
    fn launch(&self, kind: Kind, list: u64, n: usize) -> Result<(), CudaError> {
        let k = &self.gpu.k;
        let mem = self.mem();
        let (part, coef, res) = (&self.partial.ptr, &self.coef.ptr, &self.result.ptr);
        let grid = config(self.grid(n));
        let err = |name: &'static str| CudaError::driver(name);
        // SAFETY (every launch below): the arguments are those the kernel declares, in
        // order; the entries were checked against the sizes (rows < M, ends ≤ M, work
        // vectors < 5), and every buffer was allocated for B samples of dimension d.
        let (f, name) = match kind {
            Kind::Evaluate => return self.evaluate(list, n),
            Kind::LowRank => {
                let nq = self.plan.rows(kind);
                if nq == 0 {
                    // Every product of the round is over no pair: nothing to add.
                    return Ok(());
                }
                let nq_i = nq as i32;
                let mut b = self.gpu.stream.launch_builder(&k.low_rank_coeffs);
                b.arg(&list).arg(&mem).arg(&nq_i).arg(part);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (op_low_rank_coeffs)"))?;
                self.reduce(list, n, nq, *coef, self.m)?;
                let mut b = self.gpu.stream.launch_builder(&k.low_rank_apply);
                b.arg(&list).arg(&mem).arg(coef);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (op_low_rank_apply)"))?;
                return Ok(());
            }
            Kind::Dot | Kind::Norm | Kind::AllFinite => {
                let (f, name) = match kind {
                    Kind::Dot => (&k.dot, "cuLaunchKernel (op_dot)"),
                    Kind::Norm => (&k.norm, "cuLaunchKernel (op_norm)"),
                    _ => (&k.all_finite, "cuLaunchKernel (op_all_finite)"),
                };
                let mut b = self.gpu.stream.launch_builder(f);
                b.arg(&list).arg(&mem).arg(part);
                unsafe { b.launch(grid) }.map_err(err(name))?;
                return self.reduce(list, n, 1, *res, 1);
            }
            Kind::Copy => (&k.copy, "cuLaunchKernel (op_copy)"),
            Kind::Scale => (&k.scale, "cuLaunchKernel (op_scale)"),
            Kind::Combine => (&k.combine, "cuLaunchKernel (op_combine)"),
            Kind::Fill => (&k.fill, "cuLaunchKernel (op_fill)"),
        };
        let mut b = self.gpu.stream.launch_builder(f);
        b.arg(&list).arg(&mem);
        unsafe { b.launch(grid) }.map_err(err(name))?;
        Ok(())
    }

    fn round(&mut self, ops: &[Option<Op>], replies: &mut [Reply]) -> Result<(), CudaError> {
        let (b, d) = (self.samples, self.dim);
        if ops.len() != b || replies.len() != b {
            return Err(CudaError::Shape(format!(
                "{} operations and {} replies for {b} samples",
                ops.len(),
                replies.len()
            )));
        }
        let start = self.profiling.then(Instant::now);
        self.plan.build(ops, self.m, d)?;
        replies.fill(Reply::None);
        if self.plan.is_empty() {
            return Ok(());
        }
        self.gpu.upload(&self.params, 0, self.plan.params())?;
        for kind in Kind::ALL {
            let (offset, n) = self.plan.at(kind);
            if n > 0 {
                self.launch(kind, self.params.at(offset * ENTRY_INTS), n)?;
            }
        }
        if self.plan.has_replies() {
            self.gpu.download(&mut self.sums, &self.result, 0)?;
            for ((op, r), &sum) in ops.iter().zip(replies.iter_mut()).zip(&self.sums) {
                if let Some(op) = op {
                    *r = reply(op, sum);
                }
            }
        }
        let eval = self.plan.evaluates();
        if let Some(start) = start {
            self.gpu.sync()?;
            let t = start.elapsed().as_secs_f64();
            if eval { self.profile.eval_seconds += t } else { self.profile.op_seconds += t }
        }
        if eval {
            self.profile.eval_rounds += 1;
        } else {
            self.profile.op_rounds += 1;
        }
        self.profile.op_bytes += self.plan.bytes;
        Ok(())
    }
}

impl OffloadBackend for CudaBroyden {
    type Error = CudaError;

    fn samples(&self) -> usize {
        self.samples
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn history(&self) -> usize {
        self.m
    }

    fn load(&mut self, z0: &[f32]) -> Result<(), CudaError> {
        let expected = self.samples * self.dim;
        if z0.len() != expected {
            return Err(CudaError::Shape(format!("z0 has {} values, expected {expected}", z0.len())));
        }
        // X is the first [B × d] block of `work`.
        self.gpu.upload(&self.work, 0, z0)?;
        self.gpu.upload(&self.z, 0, z0)?;
        self.gpu.sync()
    }

    fn execute(&mut self, ops: &[Option<Op>], replies: &mut [Reply]) -> Result<(), CudaError> {
        self.round(ops, replies)
    }

    fn store(&mut self, z: &mut [f32]) -> Result<(), CudaError> {
        let expected = self.samples * self.dim;
        if z.len() != expected {
            return Err(CudaError::Shape(format!("z has {} values, expected {expected}", z.len())));
        }
        self.gpu.download(z, &self.z, 0)
    }
}
