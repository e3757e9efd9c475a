//! The layer's matrix product `c += a·b`, one fused multiply-add chain per output.
//!
//! Every output is defined as one chain in the order of the inner index,
//!
//! ```text
//! s ← c[r][j];  for t in 0..k { s ← fma(a[r][t], b[t][j], s) };  c[r][j] ← s
//! ```
//!
//! with `fma(x, y, s)` the correctly rounded `x·y + s` (IEEE 754 fusedMultiplyAdd,
//! Rust's `mul_add`). Each path below computes exactly that chain, so a row's result
//! is bit for bit the same alone or in any batch, on any thread, on every path, on
//! every machine:
//!
//! - [`portable`]: the chain written out, output by output (`mul_add` is the hardware
//!   instruction where the target has one, a correctly rounded library call otherwise).
//! - AVX-512F + FMA and AVX2 + FMA, chosen at run time: register tiles of [`ROW_TILE`]
//!   rows (6 with AVX2, whose 16 registers hold 12 accumulators) × two vectors of
//!   columns, one vector lane per output (no horizontal sums), over blocks of [`KC`]
//!   inner indices and [`nc`] columns so that the block of `b` stays in L2 while every
//!   row tile passes over it. A partial sum
//!   kept in `c` between two blocks is the same `f32`/`f64` as in a register, so the
//!   blocking changes no output's chain; leftover columns use masked loads and stores,
//!   leftover rows a kernel of that many rows.
//!
//! Measured on the `[15 × 150 × 700]` state (2 threads, `cargo run --release -p
//! deq-benches --bin floor`, the evaluations of a Picard solve per round): 29.3 ms with
//! the multiply-then-add tiles of 4 × 16 this replaces, 13.3 ms with these tiles over
//! `Wᵀ` row-major, 10.9 ms over the packed panels, 8.6 ms once `tanh` is vectorised
//! by the same run-time choice (it had been a call per value).

use super::Float;

/// Inner indices per block: a row tile's packed `a` (`ROW_TILE × KC`) stays in L1.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const KC: usize = 256;

/// Rows of one AVX-512 register tile: with two vectors of columns, 24 of the 32
/// vector registers hold accumulators. The most rows of any path's tile.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const ROW_TILE: usize = 12;

/// Columns per block: the block of `b` (`KC × nc` values) is 1 MiB, within L2 (at
/// `[15 × 150 × 700]` a round took 8.6 ms with 512 KiB blocks, two per `k`-block, and
/// 7.7 ms with one: each column block packs the row tiles of `a` again).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const fn nc(bytes: usize, cols: usize) -> usize {
    let n = (1024 << 10) / (KC * bytes);
    n - n % cols
}

/// Columns of one panel of packed weights: 128 bytes of `T` (32 `f32`, 16 `f64`),
/// one AVX-512 tile's columns, two AVX2 tiles'.
pub(crate) const fn panel<T>() -> usize {
    128 / size_of::<T>()
}

/// The weights `w` (`[n × k]`, row-major, as in a file) packed for [`matmul_acc`] as
/// `b = wᵀ` in panels: for each [`panel`] of `pw` outputs, the `k` rows of those
/// columns one after another, `packed[(s·k + t)·pw + l] = w[s·pw + l][t]`, the last
/// panel padded with zeros. A tile then reads its block of `b` as one contiguous run.
/// The layer packs its weights once, at construction.
///
/// # Errors
///
/// `None` if the copy cannot be allocated.
pub(crate) fn pack<T: Float>(w: &[T], n: usize, k: usize) -> Option<Vec<T>> {
    let pw = panel::<T>();
    let len = n.div_ceil(pw).checked_mul(k)?.checked_mul(pw)?;
    let mut p = Vec::new();
    p.try_reserve_exact(len).ok()?;
    p.extend((0..len).map(|idx| {
        let (l, t, s) = (idx % pw, (idx / pw) % k, idx / (pw * k));
        let j = s * pw + l;
        if j < n { w[j * k + t] } else { T::ZERO }
    }));
    Some(p)
}

/// `b[t][j]` of weights packed by [`pack`].
#[inline(always)]
fn at<T: Copy>(bp: &[T], pw: usize, k: usize, t: usize, j: usize) -> T {
    bp[((j / pw) * k + t) * pw + j % pw]
}

/// `c += a·b`: `a` is `[rows × k]`, `b` is `[k × n]` packed by [`pack`], `c` is
/// `[rows × n]`, `a` and `c` row-major. Single-threaded; allocates nothing (the packed
/// tile of `a` is on the stack).
///
/// # Panics
///
/// If the lengths do not match `rows`, `k` and `n`.
pub(crate) fn matmul_acc<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
    product(a, b, None, c, k, n);
}

/// `out = c + a·b`, as [`matmul_acc`] on a copy of `c` in `out` (the same bits), but
/// without the copy: the first block of each tile starts its chains from `c`.
///
/// # Panics
///
/// If the lengths do not match `rows`, `k` and `n`.
pub(crate) fn matmul_add<T: Float>(a: &[T], b: &[T], c: &[T], out: &mut [T], k: usize, n: usize) {
    assert_eq!(c.len(), out.len(), "matmul_add: c and out differ in length");
    if k == 0 {
        out.copy_from_slice(c);
        return;
    }
    product(a, b, Some(c), out, k, n);
}

/// [`matmul_add`] with the columns cut into `parts` runs of whole panels, one rayon
/// task each, forked by `rayon::join` (nothing is allocated). Every task reads only its
/// columns' panels of `b`, so a batch of a few rows shares one pass over the weights
/// between the threads instead of each thread's group streaming all of them. Each
/// output is the same chain as in [`matmul_add`], bit for bit.
///
/// # Panics
///
/// If the lengths do not match `rows`, `k` and `n`.
pub(crate) fn matmul_add_par<T: Float>(
    a: &[T],
    b: &[T],
    c: &[T],
    out: &mut [T],
    k: usize,
    n: usize,
    parts: usize,
) {
    assert_eq!(c.len(), out.len(), "matmul_add_par: c and out differ in length");
    if k == 0 || parts <= 1 || n <= panel::<T>() {
        matmul_add(a, b, c, out, k, n);
        return;
    }
    let rows = check(a, b, out.len(), k, n);
    let (init, dst) = (Shared(c.as_ptr().cast_mut()), Shared(out.as_mut_ptr()));
    halves(a, b, init, dst, [rows, k, n, 0, n], parts);
}

/// Columns `lo..hi` of [`matmul_add_par`]'s product in `parts` runs of whole panels,
/// halved by `rayon::join` (no heap job, unlike a scope's spawns); `shape` is
/// `[rows, k, n, lo, hi]`.
fn halves<T: Float>(a: &[T], b: &[T], init: Shared<T>, dst: Shared<T>, shape: [usize; 5], parts: usize) {
    let [rows, k, n, lo, hi] = shape;
    let pw = panel::<T>();
    let panels = (hi - lo).div_ceil(pw);
    if parts <= 1 || panels <= 1 {
        // SAFETY: `matmul_add_par` checked the lengths; this call writes only columns
        // lo..hi (lo on a panel) of `out`, which no other call touches, and nothing
        // else touches `out` until the outermost join returns; `c` is only read.
        unsafe { T::product(a, b, init.get(), dst.get(), shape) };
        return;
    }
    let left = parts / 2;
    let mid = (lo + (panels * left / parts).max(1) * pw).min(hi);
    rayon::join(
        || halves(a, b, init, dst, [rows, k, n, lo, mid], left),
        || halves(a, b, init, dst, [rows, k, n, mid, hi], parts - left),
    );
}

/// A raw pointer handed to the tasks of [`matmul_add_par`], each of which touches only
/// its own columns.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);

// SAFETY: the tasks write disjoint columns of the buffer, and the outermost join
// returns (so the borrow that made the pointer ends) only after all of them.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so that a closure captures the whole `Shared`).
    fn get(self) -> *mut T {
        self.0
    }
}

/// The rows of a product after checking every length against them.
fn check<T: Float>(a: &[T], b: &[T], out_len: usize, k: usize, n: usize) -> usize {
    let rows = out_len / n;
    assert!(
        a.len() == rows * k && b.len() == n.div_ceil(panel::<T>()) * k * panel::<T>() && out_len == rows * n,
        "product: a, b and out do not match rows × k, k × n and rows × n"
    );
    rows
}

/// [`matmul_acc`] (`init = None`) and [`matmul_add`] (`init = Some(c)`, as long as `out`).
fn product<T: Float>(a: &[T], b: &[T], init: Option<&[T]>, out: &mut [T], k: usize, n: usize) {
    if n == 0 || k == 0 {
        return;
    }
    let rows = check(a, b, out.len(), k, n);
    let dst = out.as_mut_ptr();
    let src = init.map_or(dst.cast_const(), <[T]>::as_ptr);
    // SAFETY: the lengths were checked, `out` is borrowed mutably and `init` (as long
    // as `out`) shared for the call.
    unsafe { T::product(a, b, src, dst, [rows, k, n, 0, n]) };
}

/// The path the layer's products take on this CPU, for the benches to print.
pub fn product_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if x86::has_avx512() {
            return "AVX-512F + FMA";
        }
        if x86::has_avx2() {
            return "AVX2 + FMA";
        }
    }
    "portable (mul_add)"
}

/// Where a product writes: columns `lo..hi` of the `rows × n` row-major output at
/// `dst`, whose chains start from the same entries of `src` (`dst` itself, or a
/// separate start `c`), with `k` inner indices.
#[derive(Clone, Copy)]
pub(crate) struct Target<T> {
    src: *const T,
    dst: *mut T,
    rows: usize,
    k: usize,
    n: usize,
    lo: usize,
    hi: usize,
}

/// `Float::product`'s raw parts, `shape = [rows, k, n, lo, hi]`, as a [`Target`].
pub(crate) fn target<T>(src: *const T, dst: *mut T, shape: [usize; 5]) -> Target<T> {
    let [rows, k, n, lo, hi] = shape;
    Target { src, dst, rows, k, n, lo, hi }
}

/// The chain of every output, one output at a time: the definition the fast paths
/// are tested against, and the path of CPUs without AVX2 and FMA.
///
/// # Safety
///
/// `t` must describe a valid output of `rows × n` (and `src` as long), `a` must be
/// `rows × k` and `b` packed `k × n`; nothing else may access the columns written.
pub(crate) unsafe fn portable<T: Float>(a: &[T], b: &[T], t: Target<T>) {
    let (pw, k, n) = (panel::<T>(), t.k, t.n);
    for (r, ar) in a.chunks_exact(k).take(t.rows).enumerate() {
        for j in t.lo..t.hi {
            // SAFETY: r < rows and j < n (the caller's contract).
            let mut s = unsafe { *t.src.add(r * n + j) };
            for (tt, &av) in ar.iter().enumerate() {
                s = av.fma(at(b, pw, k, tt, j), s);
            }
            // SAFETY: as above; the caller owns these columns.
            unsafe { *t.dst.add(r * n + j) = s };
        }
    }
}

/// `c[..rows][..w] = src + a_t·b` for one register tile: `a_t` is the packed tile of
/// `a` (`kc × rows`, the rows of one inner index together), `b` a block of `kc` rows of
/// one panel of packed weights (row stride `ldb`, two whole vectors per row: the
/// padding is zeros), `src` the chains' starting values and `c` the tile's outputs
/// (both row stride `ldc`; `src` is `c` itself after the first block), `w` ≤ two
/// vectors of valid columns (the only ones read or written).
#[cfg(target_arch = "x86_64")]
type TileKernel<T> = unsafe fn(
    a_t: *const T,
    b: *const T,
    ldb: usize,
    src: *const T,
    c: *mut T,
    ldc: usize,
    kc: usize,
    w: usize,
);

/// The blocked loops around the register tiles: `kernels[i]` computes tiles of `i + 1`
/// rows and up to `cols` columns (`cols` divides the panel), so `R = kernels.len()` is
/// the full tile.
///
/// # Safety
///
/// The kernels must be callable on this CPU; `t` and the lengths as for [`portable`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn blocked<T: Float, const R: usize>(
    a: &[T],
    b: &[T],
    t: Target<T>,
    cols: usize,
    kernels: &[TileKernel<T>; R],
) {
    let (rows, k, n) = (t.rows, t.k, t.n);
    let (pw, nc) = (panel::<T>(), nc(T::BYTES, panel::<T>()));
    let mut a_t = [T::ZERO; ROW_TILE * KC];
    for k0 in (0..k).step_by(KC) {
        let kc = (k - k0).min(KC);
        for j1 in (t.lo..t.hi).step_by(nc) {
            let j_end = (j1 + nc).min(t.hi);
            for r0 in (0..rows).step_by(R) {
                let rr = (rows - r0).min(R);
                for (i, col) in a_t.chunks_exact_mut(rr).take(kc).enumerate() {
                    for (r, x) in col.iter_mut().enumerate() {
                        *x = a[(r0 + r) * k + k0 + i];
                    }
                }
                for j0 in (j1..j_end).step_by(cols) {
                    let w = (j_end - j0).min(cols);
                    let dst = t.dst.wrapping_add(r0 * n + j0);
                    let src = if k0 == 0 { t.src.wrapping_add(r0 * n + j0) } else { dst.cast_const() };
                    // SAFETY: rows r0..r0 + rr, columns j0..j0 + w of the output and of
                    // its start, and inner indices k0..k0 + kc of the panel holding j0
                    // are in bounds (the kernel touches no column past w; panels are
                    // whole); the caller owns columns lo..hi.
                    unsafe {
                        kernels[rr - 1](
                            a_t.as_ptr(),
                            b.as_ptr().add(((j0 / pw) * k + k0) * pw + j0 % pw),
                            pw,
                            src,
                            dst,
                            n,
                            kc,
                            w,
                        );
                    }
                }
            }
        }
    }
}

/// Implements `Float::product` for `f32` and `f64`: the run-time choice of path.
macro_rules! dispatch {
    ($t:ty, $k512:ident, $k2:ident) => {
        /// The product on this CPU's fastest path.
        ///
        /// # Safety
        ///
        /// As [`portable`].
        #[inline]
        pub(crate) unsafe fn $k512(a: &[$t], b: &[$t], t: Target<$t>) {
            #[cfg(target_arch = "x86_64")]
            {
                if x86::has_avx512() {
                    // SAFETY: the CPU has AVX-512F and FMA, checked just above; the
                    // rest is the caller's contract.
                    unsafe { x86::$k512(a, b, t) };
                    return;
                }
                if x86::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    unsafe { x86::$k2(a, b, t) };
                    return;
                }
            }
            // SAFETY: the caller's contract.
            unsafe { portable(a, b, t) };
        }
    };
}

dispatch!(f32, product_f32, product_f32_avx2);
dispatch!(f64, product_f64, product_f64_avx2);

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use core::arch::x86_64::*;

    use super::{Target, TileKernel, blocked};

    /// AVX-512F and FMA.
    pub(crate) fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    }

    /// AVX2 and FMA.
    pub(crate) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }

    /// One register-tile kernel: `R` rows × two vectors of `$lanes` columns, the
    /// accumulators loaded from the first `w` columns of `src`, one `fma` per output
    /// and inner index in order, stored into `c`.
    macro_rules! tile_kernel {
        ($name:ident, $feat:literal, $t:ty, $lanes:expr, $zero:expr, $mask:ident, $load:ident, $loadu:ident, $store:ident, $splat:ident, $fma:ident) => {
            #[target_feature(enable = $feat)]
            #[allow(clippy::too_many_arguments)] // the TileKernel signature: pointers and strides
            unsafe fn $name<const R: usize>(
                a_t: *const $t,
                b: *const $t,
                ldb: usize,
                src: *const $t,
                c: *mut $t,
                ldc: usize,
                kc: usize,
                w: usize,
            ) {
                let (m0, m1) = ($mask(w), $mask(w.saturating_sub($lanes)));
                // SAFETY (whole body): the caller passes pointers valid for R rows,
                // kc inner indices and w columns; masked lanes are not touched.
                unsafe {
                    let mut acc0 = [$zero; R];
                    let mut acc1 = [$zero; R];
                    for r in 0..R {
                        acc0[r] = $load(m0, src.add(r * ldc));
                        acc1[r] = $load(m1, src.add(r * ldc + $lanes));
                    }
                    for t in 0..kc {
                        let b0 = $loadu(b.add(t * ldb));
                        let b1 = $loadu(b.add(t * ldb + $lanes));
                        for r in 0..R {
                            let av = $splat(*a_t.add(t * R + r));
                            acc0[r] = $fma(av, b0, acc0[r]);
                            acc1[r] = $fma(av, b1, acc1[r]);
                        }
                    }
                    for r in 0..R {
                        $store(m0, c.add(r * ldc), acc0[r]);
                        $store(m1, c.add(r * ldc + $lanes), acc1[r]);
                    }
                }
            }
        };
    }

    /// The blocked product on one ISA.
    macro_rules! product {
        ($name:ident, $feat:literal, $t:ty, $kernel:ident, $cols:expr, $($r:literal)+) => {
            /// The blocked product with this ISA's tile kernels.
            ///
            /// # Safety
            ///
            /// The CPU must have the features named by the function's attribute; `t`
            /// as for [`portable`](super::portable).
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn $name(a: &[$t], b: &[$t], t: Target<$t>) {
                let kernels = [$($kernel::<$r> as TileKernel<$t>),+];
                // SAFETY: the features are present and `t` valid (this function's
                // contract).
                unsafe { blocked(a, b, t, $cols, &kernels) };
            }
        };
    }

    // ---- AVX-512F: f32 (16 lanes) and f64 (8 lanes), lane masks in k-registers.

    #[inline(always)]
    fn mask16(w: usize) -> __mmask16 {
        if w >= 16 { !0 } else { ((1u32 << w) - 1) as __mmask16 }
    }
    #[inline(always)]
    fn mask8(w: usize) -> __mmask8 {
        if w >= 8 { !0 } else { ((1u32 << w) - 1) as __mmask8 }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_ps512(m: __mmask16, p: *const f32) -> __m512 {
        // SAFETY: the caller's pointer is valid for the unmasked lanes.
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_ps512(m: __mmask16, p: *mut f32, v: __m512) {
        // SAFETY: as load_ps512.
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_pd512(m: __mmask8, p: *const f64) -> __m512d {
        // SAFETY: as load_ps512.
        unsafe { _mm512_maskz_loadu_pd(m, p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_pd512(m: __mmask8, p: *mut f64, v: __m512d) {
        // SAFETY: as load_ps512.
        unsafe { _mm512_mask_storeu_pd(p, m, v) }
    }

    tile_kernel!(
        tile_f32_512,
        "avx512f,fma",
        f32,
        16,
        _mm512_setzero_ps(),
        mask16,
        load_ps512,
        _mm512_loadu_ps,
        store_ps512,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    tile_kernel!(
        tile_f64_512,
        "avx512f,fma",
        f64,
        8,
        _mm512_setzero_pd(),
        mask8,
        load_pd512,
        _mm512_loadu_pd,
        store_pd512,
        _mm512_set1_pd,
        _mm512_fmadd_pd
    );
    product!(product_f32, "avx512f,fma", f32, tile_f32_512, 32, 1 2 3 4 5 6 7 8 9 10 11 12);
    product!(product_f64, "avx512f,fma", f64, tile_f64_512, 16, 1 2 3 4 5 6 7 8 9 10 11 12);

    // ---- AVX2: f32 (8 lanes) and f64 (4 lanes), lane masks as vectors.

    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask_ps256(w: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(w.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mask_pd256(w: usize) -> __m256i {
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(w.min(4) as i64), _mm256_setr_epi64x(0, 1, 2, 3))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load_ps256(m: __m256i, p: *const f32) -> __m256 {
        // SAFETY: as load_ps512.
        unsafe { _mm256_maskload_ps(p, m) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_ps256(m: __m256i, p: *mut f32, v: __m256) {
        // SAFETY: as load_ps512.
        unsafe { _mm256_maskstore_ps(p, m, v) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load_pd256(m: __m256i, p: *const f64) -> __m256d {
        // SAFETY: as load_ps512.
        unsafe { _mm256_maskload_pd(p, m) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_pd256(m: __m256i, p: *mut f64, v: __m256d) {
        // SAFETY: as load_ps512.
        unsafe { _mm256_maskstore_pd(p, m, v) }
    }

    tile_kernel!(
        tile_f32_avx2,
        "avx2,fma",
        f32,
        8,
        _mm256_setzero_ps(),
        mask_ps256,
        load_ps256,
        _mm256_loadu_ps,
        store_ps256,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
    tile_kernel!(
        tile_f64_avx2,
        "avx2,fma",
        f64,
        4,
        _mm256_setzero_pd(),
        mask_pd256,
        load_pd256,
        _mm256_loadu_pd,
        store_pd256,
        _mm256_set1_pd,
        _mm256_fmadd_pd
    );
    product!(product_f32_avx2, "avx2,fma", f32, tile_f32_avx2, 16, 1 2 3 4 5 6);
    product!(product_f64_avx2, "avx2,fma", f64, tile_f64_avx2, 8, 1 2 3 4 5 6);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (24 random bits, so exact in either type).
    fn values<T: Float>(len: usize, seed: u64) -> Vec<T> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                T::from_f64(((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0)
            })
            .collect()
    }

    /// The chain each output is defined by, indexed as written in the module docs.
    fn reference<T: Float>(a: &[T], b: &[T], c: &mut [T], k: usize, n: usize) {
        for r in 0..c.len() / n {
            for j in 0..n {
                let mut s = c[r * n + j];
                for t in 0..k {
                    s = a[r * k + t].fma(b[t * n + j], s);
                }
                c[r * n + j] = s;
            }
        }
    }

    /// A path of the product: `(a, b, target)`.
    type Path<T> = unsafe fn(&[T], &[T], Target<T>);

    /// `path` on the whole of `out`, from `init` or in place.
    fn run<T: Float>(path: Path<T>, a: &[T], b: &[T], init: Option<&[T]>, out: &mut [T], k: usize, n: usize) {
        let rows = out.len() / n;
        let dst = out.as_mut_ptr();
        let src = init.map_or(dst.cast_const(), <[T]>::as_ptr);
        // SAFETY: the shapes match (the callers' test data); the CPU has the path's
        // features (the caller lists only those).
        unsafe { path(a, b, target(src, dst, [rows, k, n, 0, n])) };
    }

    /// Every path (whole and leftover tiles of rows and columns, several blocks of
    /// inner indices and of columns, AVX2 and AVX-512 where the CPU has them), in place
    /// (`c += a·b`) and from a separate start (`out = c + a·b`), gives the reference's
    /// bits; `pack` lays out the transpose, padded with zeros.
    fn every_path_is_the_reference_chain<T: Float>(paths: &[(&str, Path<T>)]) {
        let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
        let shapes =
            [(1, 1, 1), (3, 5, 17), (12, 64, 32), (13, 300, 70), (25, 257, 33), (7, 20, 1100), (30, 513, 48)];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for (rows, k, n) in shapes {
            let (a, w) = (values::<T>(rows * k, 1), values::<T>(n * k, 2));
            let bp = pack(&w, n, k).unwrap();
            let pw = panel::<T>();
            assert_eq!(bp.len(), n.div_ceil(pw) * k * pw);
            assert!((0..n).all(|j| (0..k).all(|t| at(&bp, pw, k, t, j) == w[j * k + t])));
            assert!((n..n.next_multiple_of(pw)).all(|j| (0..k).all(|t| at(&bp, pw, k, t, j) == T::ZERO)));
            let b: Vec<T> = (0..k * n).map(|i| w[(i % n) * k + i / n]).collect();
            let c0 = values::<T>(rows * n, 3);
            let mut want = c0.clone();
            reference(&a, &b, &mut want, k, n);
            let mut got = c0.clone();
            matmul_acc(&a, &bp, &mut got, k, n);
            assert_eq!(bits(&got), bits(&want), "{} matmul_acc, {rows}×{k}×{n}", T::NAME);
            let mut got = vec![T::from_f64(f64::NAN); rows * n];
            matmul_add(&a, &bp, &c0, &mut got, k, n);
            assert_eq!(bits(&got), bits(&want), "{} matmul_add, {rows}×{k}×{n}", T::NAME);
            for parts in [1, 2, 3, 7] {
                let mut got = vec![T::from_f64(f64::NAN); rows * n];
                pool.install(|| matmul_add_par(&a, &bp, &c0, &mut got, k, n, parts));
                assert_eq!(bits(&got), bits(&want), "{} matmul_add_par ×{parts}, {rows}×{k}×{n}", T::NAME);
            }
            for &(name, path) in paths {
                let mut got = c0.clone();
                run(path, &a, &bp, None, &mut got, k, n);
                assert_eq!(bits(&got), bits(&want), "{} {name} path in place, {rows}×{k}×{n}", T::NAME);
                let mut got = vec![T::from_f64(f64::NAN); rows * n];
                run(path, &a, &bp, Some(&c0), &mut got, k, n);
                assert_eq!(bits(&got), bits(&want), "{} {name} path from c, {rows}×{k}×{n}", T::NAME);
            }
        }
    }

    /// The portable path and those of this CPU's ISAs.
    macro_rules! paths {
        ($t:ty, $k512:ident, $k2:ident) => {{
            let mut paths: Vec<(&str, Path<$t>)> = vec![("portable", portable::<$t> as Path<$t>)];
            #[cfg(target_arch = "x86_64")]
            {
                if x86::has_avx2() {
                    paths.push(("AVX2", x86::$k2 as Path<$t>));
                }
                if x86::has_avx512() {
                    paths.push(("AVX-512", x86::$k512 as Path<$t>));
                }
            }
            paths
        }};
    }

    #[test]
    fn every_path_is_the_reference_chain_bit_for_bit() {
        every_path_is_the_reference_chain::<f32>(&paths!(f32, product_f32, product_f32_avx2));
    }

    #[test]
    fn every_f64_path_is_the_reference_chain_bit_for_bit() {
        every_path_is_the_reference_chain::<f64>(&paths!(f64, product_f64, product_f64_avx2));
    }

    /// The chain is fused: at least one output differs from multiply-then-add, so a
    /// path that dropped the fusion would fail the test above.
    #[test]
    fn the_chain_is_fused() {
        let (rows, k, n) = (4, 50, 9);
        let (a, w) = (values::<f32>(rows * k, 5), values::<f32>(n * k, 6));
        let mut fused = vec![0.0; rows * n];
        matmul_acc(&a, &pack(&w, n, k).unwrap(), &mut fused, k, n);
        let split: Vec<f32> = (0..rows * n)
            .map(|i| (0..k).fold(0.0f32, |s, t| s + a[(i / n) * k + t] * w[(i % n) * k + t]))
            .collect();
        assert_ne!(fused, split);
    }
}
