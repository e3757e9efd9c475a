//! Sets `cfg(simd)` where the kernels use vector registers (`wide`'s types map onto
//! them): x86, AArch64, wasm32 and ARM with NEON. Elsewhere (Cortex-M: at most a scalar
//! FPU) the scalar kernels run, and the fused operations of a Broyden update, which
//! need the vector kernels' single pass to gain anything, do not exist (see
//! `kernels::SIMD`).
//!
//! Also sets `cfg(avx_dispatch)` on x86 built without AVX (the default x86-64 target):
//! the kernels are compiled a second time for AVX and chosen at run time
//! (`kernels::isa`). A build whose baseline has AVX uses `wide`'s own AVX code instead.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(simd)");
    println!("cargo::rustc-check-cfg=cfg(avx_dispatch)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let neon = features.split(',').any(|f| f == "neon");
    if matches!(arch.as_str(), "x86_64" | "x86" | "aarch64" | "wasm32") || (arch == "arm" && neon) {
        println!("cargo::rustc-cfg=simd");
    }
    let x86 = matches!(arch.as_str(), "x86_64" | "x86");
    if x86 && !features.split(',').any(|f| f == "avx") {
        println!("cargo::rustc-cfg=avx_dispatch");
    }
}
