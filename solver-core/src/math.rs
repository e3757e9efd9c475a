//! Scalar math for user maps (for example a DEQ layer's activation) on targets without
//! `std`.
//!
//! By default these forward to `libm` (correctly rounded to within an ulp or so). With
//! the `fast-math` feature they use `micromath`'s approximations, which are smaller and
//! faster on microcontrollers but only accurate to a few parts in a thousand. The
//! solvers themselves never call this module: norms and convergence tests always use
//! `libm`.

/// Hyperbolic tangent.
///
/// ```
/// assert!((solver_core::math::tanh(0.5) - 0.462_117_16).abs() < 1e-3);
/// ```
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        // tanh x = 1 − 2 / (e^{2x} + 1), saturating cleanly for large |x|.
        use micromath::F32Ext;
        let x = x.clamp(-9.0, 9.0);
        1.0 - 2.0 / ((2.0 * x).exp() + 1.0)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::tanhf(x)
    }
}

/// Exponential function.
///
/// ```
/// assert!((solver_core::math::exp(1.0) - core::f32::consts::E).abs() < 1e-2);
/// ```
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        use micromath::F32Ext;
        x.exp()
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::expf(x)
    }
}

/// Square root (always `libm`, also with `fast-math`: `micromath`'s is off by several
/// percent).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}
