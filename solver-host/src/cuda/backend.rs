//! [`CudaBroyden`]: the [`OffloadBackend`] that keeps a batch's Broyden vectors in GPU
//! memory and carries out each round's operations with the kernels of `kernels.cu` and
//! cuBLAS.

use std::time::Instant;

use cudarc::cublas::{result as blas, sys as blas_sys};
use cudarc::driver::PushKernelArg;
use solver_core::broyden::ops::{BroydenOp, Reply, Vector};

use super::device::{Buf, DeviceInfo, Gpu, THREADS, config};
use super::plan::{ENTRY_INTS, Kind, Plan, RESULT_STRIDE, reply, vector};
use super::{CudaError, Profile};
use crate::model::{Activation, DeqLayer};
use crate::offload::OffloadBackend;

/// Elements each thread handles per vector, when choosing the blocks per sample.
const PER_THREAD: usize = 4;
/// Most blocks per sample (bounds the reduction scratch).
const MAX_BLOCKS: usize = 256;

/// The offloaded Broyden solve of a [`DeqLayer`] batch on a CUDA GPU: every sample's
/// vectors, its pairs `U`, `V`, its best iterate and the layer live in device memory,
/// allocated once by [`CudaBroyden::new`]; a round moves a few parameters per sample
/// to the device and, when an operation has a reply, a few sums per sample back.
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
    /// `[B][max(M, 3)][blocks]`: per-block partial sums.
    partial: Buf<f64>,
    /// `[B][M]`: the coefficients of a low-rank product.
    coef: Buf<f64>,
    /// `[B][4]`: the sums of the replies.
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
        // cuBLAS and the kernels take these as 32-bit ints; the grid's y has 65535;
        // every buffer's size in bytes must fit a usize (and an f64 scratch per pair).
        let int = |v: usize| i32::try_from(v).is_ok();
        let bytes = |v: usize| v.checked_mul(8).is_some();
        if !(int(rows) && int(h) && int(m) && bytes(pairs) && bytes(work_len)) || samples > 65_535 {
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
        let partial = gpu.alloc(samples * m.max(3) * blocks)?;
        let coef = gpu.alloc(samples * m)?;
        let result = gpu.alloc(samples * RESULT_STRIDE)?;
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
            sums: vec![0.0; samples * RESULT_STRIDE],
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

    /// Address of vector `vec` of sample `s` in `work`.
    fn vec_at(&self, vec: usize, s: usize) -> u64 {
        self.work.at((vec * self.samples + s) * self.dim)
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
        let (nb, d, relu) = (self.samples as i32, self.dim as i64, i32::from(self.relu));
        let mut b = self.gpu.stream.launch_builder(&self.gpu.k.activation);
        b.arg(&list).arg(&self.work.ptr).arg(&self.c.ptr).arg(&nb).arg(&d).arg(&relu);
        // SAFETY: as for every launch here: arguments as declared in kernels.cu.
        unsafe { b.launch(config(self.grid(n))) }
            .map_err(CudaError::driver("cuLaunchKernel (activation)"))?;
        Ok(())
    }

    /// Launches the kernels of one kind over its `n` entries at `list`.
    fn launch(&self, kind: Kind, list: u64, n: usize) -> Result<(), CudaError> {
        let k = &self.gpu.k;
        let (nb, d, m) = (self.samples as i32, self.dim as i64, self.m as i32);
        let (work, u, v, part, coef, res) =
            (&self.work.ptr, &self.u.ptr, &self.v.ptr, &self.partial.ptr, &self.coef.ptr, &self.result.ptr);
        let grid = config(self.grid(n));
        let nq = self.plan.rows(kind) as i32;
        let g = vector(Vector::G);
        let err = |name: &'static str| CudaError::driver(name);
        // SAFETY (every launch below): the arguments are those the kernel declares, in
        // order; the entries were checked against the sizes (slots < M, ends ≤ M), and
        // every buffer was allocated for B samples of dimension d.
        match kind {
            Kind::Evaluate => return self.evaluate(list, n),
            Kind::Residual => {
                let mut b = self.gpu.stream.launch_builder(&k.residual);
                b.arg(&list).arg(work).arg(&nb).arg(&d).arg(part);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (residual)"))?;
                self.reduce(list, n, 3, *res, RESULT_STRIDE)?;
            }
            Kind::KeepBest => {
                let mut b = self.gpu.stream.launch_builder(&k.keep_best);
                b.arg(&list).arg(work).arg(&self.z.ptr).arg(&nb).arg(&d);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (keep_best)"))?;
            }
            Kind::Trial => {
                let mut b = self.gpu.stream.launch_builder(&k.trial);
                b.arg(&list).arg(work).arg(&nb).arg(&d);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (trial)"))?;
            }
            Kind::Accept => {
                let mut b = self.gpu.stream.launch_builder(&k.accept_coeffs);
                b.arg(&list).arg(work).arg(u).arg(&nb).arg(&d).arg(&m).arg(&nq).arg(part);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (accept_coeffs)"))?;
                if nq > 0 {
                    self.reduce(list, n, nq as usize, *coef, self.m)?;
                }
                let mut b = self.gpu.stream.launch_builder(&k.accept_apply);
                b.arg(&list).arg(work).arg(v).arg(coef).arg(&nb).arg(&d).arg(&m).arg(part);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (accept_apply)"))?;
                self.reduce(list, n, 3, *res, RESULT_STRIDE)?;
            }
            Kind::NewU | Kind::Step => {
                if nq > 0 {
                    let mut b = self.gpu.stream.launch_builder(&k.coeffs);
                    b.arg(&list).arg(work).arg(v).arg(&g).arg(&nb).arg(&d).arg(&m).arg(&nq).arg(part);
                    unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (coeffs)"))?;
                    self.reduce(list, n, nq as usize, *coef, self.m)?;
                }
                let (f, name) = if kind == Kind::NewU {
                    (&k.newu_apply, "cuLaunchKernel (newu_apply)")
                } else {
                    (&k.step_apply, "cuLaunchKernel (step_apply)")
                };
                let mut b = self.gpu.stream.launch_builder(f);
                b.arg(&list).arg(work).arg(u).arg(coef).arg(&nb).arg(&d).arg(&m).arg(part);
                unsafe { b.launch(grid) }.map_err(err(name))?;
                self.reduce(list, n, 1, *res, RESULT_STRIDE)?;
            }
            Kind::Finish => {
                let mut b = self.gpu.stream.launch_builder(&k.finish);
                b.arg(&list).arg(work).arg(u).arg(v).arg(&nb).arg(&d).arg(&m);
                unsafe { b.launch(grid) }.map_err(err("cuLaunchKernel (finish)"))?;
            }
        }
        Ok(())
    }

    fn round(&mut self, ops: &[Option<BroydenOp>], replies: &mut [Reply]) -> Result<(), CudaError> {
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
            for (s, (op, r)) in ops.iter().zip(replies.iter_mut()).enumerate() {
                if let Some(op) = op {
                    *r = reply(op, &self.sums[s * RESULT_STRIDE..(s + 1) * RESULT_STRIDE]);
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

    fn memory(&self) -> usize {
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

    fn execute(&mut self, ops: &[Option<BroydenOp>], replies: &mut [Reply]) -> Result<(), CudaError> {
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
