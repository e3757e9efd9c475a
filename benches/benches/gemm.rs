//! Single-precision `C = A·Wᵀ` (the DEQ layer's `z Wᵀ`) with three GEMM crates:
//! `matrixmultiply` (sgemm with strides), `gemm` and `faer`, plus a baseline of one SIMD
//! dot product per output (`solver_core::kernels::dot`, W's rows are contiguous). The
//! model itself uses its own fused multiply-add kernel (`solver-host/src/model/product.rs`,
//! the same bits for a row alone or in any batch); this bench is the comparison with the
//! crates it was chosen over.
//!
//! `A` is row-major `[rows × k]`, `W` row-major `[n × k]` (PyTorch `nn.Linear` layout),
//! `C` row-major `[rows × n]`. Shapes: 2250×700×700 (a `[15 × 150 × 700]` DEQ-Transformer
//! state through a per-token 700-wide layer), 64×256×256 and 1×256×256 (a GEMV).
//!
//! `*_1t` run on one thread. `*_2t` run inside a 2-thread rayon pool: `gemm`/`faer` with
//! their own rayon parallelism, `rowblocks_*` with the single-threaded call split over
//! row blocks with `par_chunks_mut` (how the solver parallelises). Before the timings the
//! bench prints the heap allocations one call makes (the layer must not allocate in the
//! solve loop).
//!
//! Run with
//! `cargo bench -p deq-benches --bench gemm -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use deq_problems::counting_alloc::{CountingAllocator, allocations};
use rayon::prelude::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// `(rows, k, n)`.
const SHAPES: [(usize, usize, usize); 3] = [(2250, 700, 700), (64, 256, 256), (1, 256, 256)];

/// Deterministic values in `[-1, 1)`.
fn data(len: usize, seed: u64) -> Vec<f32> {
    deq_problems::rng::lcg_f32(len, seed)
}

/// A product `c = a·wᵀ` for `rows` rows (`k`, `n` implied by the slices).
type Product = fn(&[f32], &[f32], &mut [f32], usize, usize);

fn mm(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    let rows = a.len() / k;
    // SAFETY: a is rows×k (row stride k), wᵀ is k×n read from w (n×k) with row stride 1 and
    // column stride k, c is rows×n; all in bounds.
    unsafe {
        matrixmultiply::sgemm(
            rows,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            w.as_ptr(),
            1,
            k as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn gemm_with(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize, par: gemm::Parallelism) {
    let rows = a.len() / k;
    // SAFETY: as in `mm`; gemm's argument order is (m, n, k, dst, dst_cs, dst_rs, read_dst,
    // lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, alpha, beta, conj…, par): dst = beta·lhs·rhs.
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

fn gemm1(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    gemm_with(a, w, c, k, n, gemm::Parallelism::None);
}

fn gemm2(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    gemm_with(a, w, c, k, n, gemm::Parallelism::Rayon(2));
}

fn faer_with(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize, par: faer::Par) {
    let rows = a.len() / k;
    let am = faer::MatRef::from_row_major_slice(a, rows, k);
    let wt = faer::MatRef::from_row_major_slice(w, n, k).transpose();
    let cm = faer::MatMut::from_row_major_slice_mut(c, rows, n);
    faer::linalg::matmul::matmul(cm, faer::Accum::Replace, am, wt, 1.0f32, par);
}

fn faer1(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    faer_with(a, w, c, k, n, faer::Par::Seq);
}

fn faer2(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    faer_with(a, w, c, k, n, faer::Par::rayon(2));
}

fn dots(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    for (ar, cr) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        for (o, wr) in cr.iter_mut().zip(w.chunks_exact(k)) {
            *o = solver_core::kernels::dot(ar, wr);
        }
    }
}

/// Splits the rows over the current rayon pool in blocks of at least 16 rows.
fn rowblocks(f: Product, a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    let rows = a.len() / k;
    let block = rows.div_ceil(rayon::current_num_threads()).max(16);
    c.par_chunks_mut(block * n).zip(a.par_chunks(block * k)).for_each(|(cb, ab)| f(ab, w, cb, k, n));
}

fn rb_mm(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    rowblocks(mm, a, w, c, k, n);
}

fn rb_gemm(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    rowblocks(gemm1, a, w, c, k, n);
}

fn rb_faer(a: &[f32], w: &[f32], c: &mut [f32], k: usize, n: usize) {
    rowblocks(faer1, a, w, c, k, n);
}

const SINGLE: [(&str, Product); 4] =
    [("matrixmultiply_1t", mm), ("gemm_1t", gemm1), ("faer_1t", faer1), ("dots_1t", dots)];
const PARALLEL: [(&str, Product); 5] = [
    ("gemm_rayon_2t", gemm2),
    ("faer_rayon_2t", faer2),
    ("rowblocks_matrixmultiply_2t", rb_mm),
    ("rowblocks_gemm_2t", rb_gemm),
    ("rowblocks_faer_2t", rb_faer),
];

/// Prints each product's heap allocations per call (after one warm-up call) and checks
/// the products agree with the dot-product baseline.
fn report(pool: &rayon::ThreadPool) {
    for (rows, k, n) in SHAPES {
        let (a, w) = (data(rows * k, 1), data(n * k, 2));
        let mut reference = vec![0.0f32; rows * n];
        dots(&a, &w, &mut reference, k, n);
        let mut line = format!("allocations per call, {rows}x{k}x{n}:");
        for (name, f) in SINGLE.iter().chain(PARALLEL.iter()) {
            let mut c = vec![0.0f32; rows * n];
            let count = pool.install(|| {
                f(&a, &w, &mut c, k, n);
                let before = allocations();
                f(&a, &w, &mut c, k, n);
                allocations() - before
            });
            let err = c.iter().zip(&reference).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-3, "{name} {rows}x{k}x{n}: max error {err}");
            line.push_str(&format!(" {name}={count}"));
        }
        println!("{line}");
    }
}

fn bench(c: &mut Criterion, pool: &rayon::ThreadPool) {
    for (rows, k, n) in SHAPES {
        let (a, w) = (data(rows * k, 1), data(n * k, 2));
        let mut out = vec![0.0f32; rows * n];
        let mut g = c.benchmark_group(format!("sgemm_{rows}x{k}x{n}"));
        g.throughput(Throughput::Elements((2 * rows * k * n) as u64));
        if rows * k * n > 10_000_000 {
            g.sample_size(20);
        }
        for (name, f) in SINGLE {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| f(black_box(&a), black_box(&w), black_box(&mut out), k, n));
            });
        }
        if rows > 1 {
            for (name, f) in PARALLEL {
                g.bench_function(BenchmarkId::from_parameter(name), |b| {
                    pool.install(|| b.iter(|| f(black_box(&a), black_box(&w), black_box(&mut out), k, n)));
                });
            }
        }
        g.finish();
    }
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool");
    report(&pool);
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &pool);
    c.final_summary();
}
