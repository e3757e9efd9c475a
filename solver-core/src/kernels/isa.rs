//! The instruction set the vector kernels run with, chosen at run time on x86.
//!
//! `wide`'s types use the instructions the crate is compiled for: on x86-64 that is
//! SSE2 (128-bit registers) unless the binary is built with `-C target-cpu` or
//! `-C target-feature`, which a distributed binary cannot assume. So on x86 the kernels
//! are also compiled a second time, inside a function compiled for AVX, over the lane
//! types of `kernels::avx` (eight `f32` or four `f64` lanes, each operation one
//! 256-bit instruction), and the first kernel call checks the CPU (`cpuid`, and
//! `xgetbv` for the operating system's support of the 256-bit registers) and takes the
//! AVX kernels where it can. Nothing else changes: the same loops, the same order of
//! every operation, no fused multiply-add on either path, so **both paths give the
//! same bits**, and a solve's result does not depend on the CPU it runs on
//! (tests/isa.rs checks every kernel, and whole solves, on both).
//!
//! Elsewhere the choice is fixed at compile time: NEON on AArch64, simd128 on wasm32,
//! and the scalar reference kernels on targets without vector registers (Cortex-M),
//! as before. A binary built for AVX itself (`-C target-cpu=native` on an AVX CPU)
//! keeps `wide`'s own AVX code, [`Isa::Baseline`] there.
//!
//! ```
//! use solver_core::kernels::isa::{self, Isa};
//! let now = isa::isa();
//! println!("kernels: {}", now.name());
//! // The baseline can always be chosen where there are vector kernels; the result of
//! // every kernel is the same either way.
//! if now != Isa::Scalar {
//!     isa::set_isa(Isa::Baseline).unwrap();
//!     assert_eq!(isa::isa(), Isa::Baseline);
//!     isa::set_isa(isa::detected()).unwrap();
//! }
//! ```

use core::sync::atomic::{AtomicU8, Ordering};

/// An instruction set the kernels can run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// No vector kernels: the scalar reference kernels (targets without vector
    /// registers, such as Cortex-M).
    Scalar,
    /// The vector instructions the crate was compiled for: SSE2 on x86-64 by default,
    /// NEON on AArch64, simd128 on wasm32 (`wide`'s choice).
    Baseline,
    /// AVX's 256-bit registers, chosen at run time on x86 CPUs that have them.
    Avx,
}

impl Isa {
    /// A short name for reports: `"scalar"`, the baseline's instructions on this target
    /// (`"SSE2"`, `"AVX (compile time)"`, `"NEON"`, `"simd128"`), or `"AVX (run time)"`.
    pub const fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Baseline => BASELINE,
            Isa::Avx => "AVX (run time)",
        }
    }
}

/// What `Isa::Baseline` is on this target.
const BASELINE: &str = if cfg!(target_feature = "avx") {
    "AVX (compile time)"
} else if cfg!(any(target_arch = "x86", target_arch = "x86_64")) {
    "SSE2"
} else if cfg!(target_arch = "aarch64") || cfg!(target_arch = "arm") {
    "NEON"
} else if cfg!(target_arch = "wasm32") {
    "simd128"
} else {
    "vector"
};

/// The error of [`set_isa`]: this CPU or target cannot run the kernels with that
/// instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The instruction set asked for.
    pub asked: Isa,
    /// The best this CPU and target have ([`detected`]).
    pub detected: Isa,
}

impl core::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the kernels cannot run with {} here (the best this CPU and build have: {})",
            self.asked.name(),
            self.detected.name()
        )
    }
}

/// The instruction set in use, `0` until the first kernel call decides it.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

const fn code(isa: Isa) -> u8 {
    match isa {
        Isa::Scalar => 1,
        Isa::Baseline => 2,
        Isa::Avx => 3,
    }
}

/// The best instruction set the kernels can use on this CPU and target.
pub fn detected() -> Isa {
    if !super::SIMD {
        Isa::Scalar
    } else if has_avx() {
        Isa::Avx
    } else {
        Isa::Baseline
    }
}

/// The instruction set the kernels use now: [`detected`] unless [`set_isa`] chose
/// another.
pub fn isa() -> Isa {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Isa::Scalar,
        2 => Isa::Baseline,
        3 => Isa::Avx,
        _ => {
            let best = detected();
            CHOSEN.store(code(best), Ordering::Relaxed);
            best
        }
    }
}

/// Makes the kernels run with `isa` from now on, in every thread (for benchmarks and
/// tests: results are the same bits either way). `Isa::Baseline` can always be chosen
/// where there are vector kernels, `Isa::Avx` where [`detected`] is `Avx`, and
/// `Isa::Scalar` only where it is the only choice (the fused operations of a Broyden
/// update exist only with vector kernels).
pub fn set_isa(isa: Isa) -> Result<(), Unsupported> {
    let best = detected();
    let ok = match isa {
        Isa::Scalar => best == Isa::Scalar,
        Isa::Baseline => best != Isa::Scalar,
        Isa::Avx => best == Isa::Avx,
    };
    if !ok {
        return Err(Unsupported { asked: isa, detected: best });
    }
    CHOSEN.store(code(isa), Ordering::Relaxed);
    Ok(())
}

/// Whether the kernels take the AVX path now: the hot-path test, one relaxed load
/// (after the first call).
#[cfg(avx_dispatch)]
#[inline]
pub(crate) fn avx() -> bool {
    isa() == Isa::Avx
}

/// Runs `f` compiled for AVX: the kernels `f` calls are inlined into this function
/// and so use the 256-bit registers.
///
/// # Safety
/// The CPU and the operating system must support AVX ([`avx`] true).
#[cfg(avx_dispatch)]
#[target_feature(enable = "avx")]
#[inline]
pub(crate) unsafe fn with_avx<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Whether the CPU has AVX and the operating system saves its registers (`cpuid` leaf 1:
/// AVX and OSXSAVE; `xgetbv`: the SSE and AVX state enabled in XCR0). Never on a build
/// whose baseline is AVX already: `wide` uses it there.
#[cfg(avx_dispatch)]
fn has_avx() -> bool {
    #[cfg(target_arch = "x86")]
    use core::arch::x86::{__cpuid, _xgetbv};
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::{__cpuid, _xgetbv};

    /// XCR0, read only when OSXSAVE says `xgetbv` exists.
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: called only where the CPU has xgetbv (below).
        unsafe { _xgetbv(0) }
    }

    let leaf1 = __cpuid(1);
    let (osxsave, avx) = (leaf1.ecx & (1 << 27) != 0, leaf1.ecx & (1 << 28) != 0);
    // SAFETY: OSXSAVE set means the OS has enabled XSAVE, so xgetbv exists.
    osxsave && avx && unsafe { xcr0() } & 0b110 == 0b110
}

/// Only x86 without compile-time AVX has a run-time choice.
#[cfg(not(avx_dispatch))]
fn has_avx() -> bool {
    false
}
