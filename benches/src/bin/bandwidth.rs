//! Read bandwidth of the history kernel `U(Vᵀx)` beyond cache, beside the machine's
//! streaming read rate, per thread and on every thread at once, with each instruction
//! set the kernels can run with on this CPU (`solver_core::kernels::isa`).
//!
//! ```text
//! cargo run --release -p deq-benches --bin bandwidth [-- MiB]
//! ```
//!
//! * **Streaming**: the sum of a buffer of `MiB` mebibytes (default 256, far beyond any
//!   cache), read once per pass as 1, 2, 4 or 8 concurrent streams with sixteen
//!   accumulators each; the best of the four is the rate a read-only loop reaches on
//!   this machine.
//! * **`U(Vᵀx)`**: [`solver_core::kernels::low_rank_acc`] with `M = 8` rows of `n`
//!   floats in each of `U` and `V`, `n` chosen so that `U` and `V` together take `MiB`:
//!   one pass over `V` (the coefficients `vᵢ·x`) and one over `U` (`y += Σ cᵢ uᵢ`). Bytes
//!   counted: `U`, `V`, `x` read and `y` read and written, each once.
//! * **The same with `bf16` rows**: [`solver_core::kernels::low_rank_bf16`] on the same
//!   `n` and `M` with `U` and `V` stored as `bf16` (half the bytes; `f32` arithmetic, the
//!   bits of the `f32` product over the widened rows), its rate in bytes actually moved,
//!   and the speed-up of the product: the `f32` rows' time over the `bf16` rows' time.
//!
//! Each figure is the median of 9 timed passes after one untimed pass; with `T` threads
//! each thread has buffers of its own of the same size and the rate is their sum. The
//! ratio is `U(Vᵀx)` over streaming, measured in the same run. The kernels give the
//! same bits on every instruction set; only the rate differs.

use std::hint::black_box;
use std::time::Instant;

use solver_core::kernels::isa::{self, Isa};
use solver_core::kernels::{self, Bf16, Coefs, LowRankProduct};

const M: usize = 8;
const PASSES: usize = 9;

/// Median of `PASSES` timings of `pass` after one warm-up pass, in seconds.
fn median_seconds(mut pass: impl FnMut()) -> f64 {
    pass();
    let mut t: Vec<f64> = (0..PASSES)
        .map(|_| {
            let t0 = Instant::now();
            pass();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[PASSES / 2]
}

/// The streaming read loop: the sum of `a` read as `S` equal parts side by side (`S`
/// concurrent streams, as the kernel reads a block of rows at once), sixteen
/// accumulators per part.
fn stream_sum<const S: usize>(a: &[f32]) -> f32 {
    let part = a.len() / S / 16 * 16;
    let mut acc = [[0.0f32; 16]; S];
    for i in (0..part).step_by(16) {
        for (s, acc) in acc.iter_mut().enumerate() {
            let c = &a[s * part + i..s * part + i + 16];
            for k in 0..16 {
                acc[k] += c[k];
            }
        }
    }
    acc.iter().flatten().sum()
}

/// GB/s of `threads` threads, each running `work` on buffers of its own built by
/// `make`, with `bytes` bytes moved by one pass of one thread.
fn rate<B: Send>(
    threads: usize,
    bytes: usize,
    make: impl Fn() -> B + Sync,
    work: impl Fn(&mut B) + Sync,
) -> f64 {
    let seconds = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut b = make();
                    median_seconds(|| work(&mut b))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a bench thread")).collect::<Vec<f64>>()
    });
    seconds.iter().map(|s| bytes as f64 / s / 1e9).sum()
}

fn main() {
    let mib: usize = std::env::args().nth(1).map_or(256, |a| a.parse().expect("MiB: a whole number"));
    let floats = mib * (1 << 20) / 4;
    let n = floats / (2 * M);
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());

    println!("bandwidth: {mib} MiB per thread, M = {M}, n = {n}, median of {PASSES} passes\n");
    #[cfg(target_arch = "x86_64")]
    {
        let yes = |has: bool| if has { "yes" } else { "no" };
        println!(
            "CPU: avx2 {}, fma {}, avx512f {}",
            yes(std::arch::is_x86_feature_detected!("avx2")),
            yes(std::arch::is_x86_feature_detected!("fma")),
            yes(std::arch::is_x86_feature_detected!("avx512f")),
        );
    }
    let isas: Vec<Isa> = [Isa::Baseline, Isa::Avx].into_iter().filter(|&i| isa::set_isa(i).is_ok()).collect();
    let best = isa::detected();
    println!(
        "solver kernels: {} (chosen at run time; the binary's baseline is {})\n",
        best.name(),
        Isa::Baseline.name()
    );

    println!("| threads | streaming GB/s | kernels | U(Vᵀx) GB/s | ratio | bf16 rows GB/s | bf16 speed-up |");
    println!("|--:|--:|---|--:|--:|--:|--:|");
    for t in [1, threads].into_iter().collect::<std::collections::BTreeSet<_>>() {
        let stream_with = |sum: fn(&[f32]) -> f32| {
            rate(
                t,
                floats * 4,
                || vec![1.0f32; floats],
                |a| {
                    black_box(sum(black_box(a)));
                },
            )
        };
        // The best of 1, 2, 4 and 8 concurrent streams: the machine's read rate.
        let stream = [stream_sum::<1>, stream_sum::<2>, stream_sum::<4>, stream_sum::<8>]
            .into_iter()
            .map(stream_with)
            .fold(0.0, f64::max);
        for &k in &isas {
            isa::set_isa(k).expect("detected above");
            let (bytes, half_bytes) = ((2 * M * n + 3 * n) * 4, 2 * M * n * 2 + 3 * n * 4);
            let low_rank = rate(
                t,
                bytes,
                || (vec![0.5f32; M * n], vec![0.25f32; M * n], vec![1.0f32; n], vec![0.0f32; n]),
                |(u, v, x, y)| {
                    kernels::low_rank_acc(1e-3, black_box(u), black_box(v), n, black_box(x), y);
                    black_box(&y[0]);
                },
            );
            let half = rate(
                t,
                half_bytes,
                || {
                    (
                        vec![Bf16::from_f32(0.5); M * n],
                        vec![Bf16::from_f32(0.25); M * n],
                        vec![1.0f32; n],
                        vec![0.0f32; n],
                    )
                },
                |(u, v, x, y)| {
                    let (u, v) = (black_box(&u[..]), black_box(&v[..]));
                    let coefs = Coefs::Dots(black_box(&x[..]));
                    let p = LowRankProduct { alpha: 1e-3, a: [u, &[]], b: [v, &[]], n, coefs, start: None };
                    kernels::low_rank_bf16(&p, y, None);
                    black_box(&y[0]);
                },
            );
            // Time per product is bytes / rate, so the f32 rows' time over the bf16 rows'.
            let speed_up = (bytes as f64 / low_rank) / (half_bytes as f64 / half);
            println!(
                "| {t} | {stream:.1} | {} | {low_rank:.1} | {:.2} | {half:.1} | {speed_up:.2} |",
                k.name(),
                low_rank / stream
            );
        }
    }
}
