//! SIMD kernels (`solver_core::kernels`) against their scalar references
//! (`solver_core::kernels::scalar`), for vector lengths N = 16, 1024, 65536 and 1 048 576 (1 M).
//!
//! Run with `cargo bench -p deq-benches --bench kernels`. Throughput is reported in
//! vector elements per pass: `N` for the single-vector kernels, `M·N` for `multi_dot` /
//! `multi_axpy` and `2·M·N` for `low_rank_acc` (both factors are read), with M = 8 rows.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use solver_core::kernels::{self, scalar};

/// Vector lengths benchmarked.
const SIZES: [usize; 4] = [16, 1024, 65536, 1 << 20];
/// Rows of the multi-row kernels (one full 8-row block): `U(Vᵀg)` with `U`, `V` of rank 8.
const M: usize = 8;

/// Deterministic values in `[-1, 1)`.
fn data(len: usize, seed: u64) -> Vec<f32> {
    deq_problems::rng::lcg_f32(len, seed)
}

/// Signature shared by `dot` and `dist`.
type PairFn = fn(&[f32], &[f32]) -> f32;
/// Signature of `norm`.
type NormFn = fn(&[f32]) -> f32;
/// Signature of `axpy`.
type AxpyFn = fn(f32, &[f32], &mut [f32]);
/// Signature shared by `multi_dot` and `multi_axpy`.
type MultiFn = fn(&[f32], usize, &[f32], &mut [f32]);
/// Signature of `low_rank_acc`.
type LowRankFn = fn(f32, &[f32], &[f32], usize, &[f32], &mut [f32]);

fn bench_pair(c: &mut Criterion, name: &str, simd: PairFn, reference: PairFn) {
    let mut g = c.benchmark_group(name);
    for n in SIZES {
        let (a, b) = (data(n, 1), data(n, 2));
        g.throughput(Throughput::Elements(n as u64));
        for (label, f) in [("simd", simd), ("scalar", reference)] {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, _| {
                bch.iter(|| f(black_box(&a), black_box(&b)));
            });
        }
    }
    g.finish();
}

fn bench_dot(c: &mut Criterion) {
    bench_pair(c, "dot", kernels::dot, scalar::dot);
}

fn bench_dist(c: &mut Criterion) {
    bench_pair(c, "dist", kernels::dist, scalar::dist);
}

fn bench_norm(c: &mut Criterion) {
    let mut g = c.benchmark_group("norm");
    for n in SIZES {
        let a = data(n, 3);
        g.throughput(Throughput::Elements(n as u64));
        let fs: [(&str, NormFn); 2] = [("simd", kernels::norm), ("scalar", scalar::norm)];
        for (label, f) in fs {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, _| {
                bch.iter(|| f(black_box(&a)));
            });
        }
    }
    g.finish();
}

fn bench_axpy(c: &mut Criterion) {
    let mut g = c.benchmark_group("axpy");
    for n in SIZES {
        let x = data(n, 4);
        let mut y = data(n, 5);
        g.throughput(Throughput::Elements(n as u64));
        let fs: [(&str, AxpyFn); 2] = [("simd", kernels::axpy), ("scalar", scalar::axpy)];
        for (label, f) in fs {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, _| {
                bch.iter(|| f(black_box(1e-7), black_box(&x), black_box(&mut y)));
            });
        }
    }
    g.finish();
}

fn bench_multi_dot(c: &mut Criterion) {
    let mut g = c.benchmark_group("multi_dot");
    for n in SIZES {
        let (rows, x) = (data(M * n, 6), data(n, 7));
        let mut out = [0.0f32; M];
        g.throughput(Throughput::Elements((M * n) as u64));
        let fs: [(&str, MultiFn); 2] = [("simd", kernels::multi_dot), ("scalar", scalar::multi_dot)];
        for (label, f) in fs {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, &n| {
                bch.iter(|| f(black_box(&rows), n, black_box(&x), black_box(&mut out)));
            });
        }
    }
    g.finish();
}

fn bench_multi_axpy(c: &mut Criterion) {
    let mut g = c.benchmark_group("multi_axpy");
    for n in SIZES {
        let (rows, mut y) = (data(M * n, 8), data(n, 9));
        let coeffs = [1e-7f32; M];
        g.throughput(Throughput::Elements((M * n) as u64));
        let fs: [(&str, MultiFn); 2] = [("simd", kernels::multi_axpy), ("scalar", scalar::multi_axpy)];
        for (label, f) in fs {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, &n| {
                bch.iter(|| f(black_box(&rows), n, black_box(&coeffs), black_box(&mut y)));
            });
        }
    }
    g.finish();
}

/// `y += alpha·U(Vᵀg)` with rank M = 8.
fn bench_low_rank_acc(c: &mut Criterion) {
    let mut g = c.benchmark_group("low_rank_acc");
    for n in SIZES {
        let (u, v, x, mut y) = (data(M * n, 10), data(M * n, 11), data(n, 12), data(n, 13));
        g.throughput(Throughput::Elements((2 * M * n) as u64));
        let fs: [(&str, LowRankFn); 2] = [("simd", kernels::low_rank_acc), ("scalar", scalar::low_rank_acc)];
        for (label, f) in fs {
            g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, &n| {
                bch.iter(|| {
                    f(black_box(1e-7), black_box(&u), black_box(&v), n, black_box(&x), black_box(&mut y));
                });
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_dot,
    bench_norm,
    bench_dist,
    bench_axpy,
    bench_multi_dot,
    bench_multi_axpy,
    bench_low_rank_acc
);
criterion_main!(benches);
