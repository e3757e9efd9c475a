//! A small deterministic pseudo-random number generator: the project's one SplitMix64
//! (the test problems, the demonstration layer of `solver-host` and the firmware's
//! build-time data all draw from it).
//!
//! [`SplitMix64`] (Steele, Lea & Flood, 2014) is tiny, fast and statistically good
//! enough for building test problems. Every problem in this crate is generated from
//! a fixed seed, so the same seed always gives bit-identical problems on every
//! platform (the generator uses only integer arithmetic; [`SplitMix64::normal`] uses
//! `f64::ln`, `sqrt` and `cos`/`sin`, which are deterministic on a given platform).

/// The SplitMix64 generator: a 64-bit state advanced by a Weyl sequence and
/// scrambled by a finaliser.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
    /// Second Box–Muller variate, kept for the next call to [`SplitMix64::normal`].
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    /// A generator started from `seed`. Equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        Self { state: seed, spare_normal: None }
    }

    /// The next 64 uniformly distributed random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform sample from `[0, 1)`, with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform sample from `[lo, hi)`.
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// A standard normal sample, N(0, 1), by the Box–Muller transform.
    ///
    /// Each transform yields two independent normals; the second is returned by the
    /// next call.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// A vector of `n` independent N(0, 1) samples.
    pub fn normal_vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }

    /// A uniformly distributed unit vector in R^`n` (normalised Gaussian vector).
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn unit_vector(&mut self, n: usize) -> Vec<f64> {
        assert!(n > 0, "unit_vector needs n > 0");
        loop {
            let mut v = self.normal_vec(n);
            let norm = crate::linalg::norm2(&v);
            if norm > 1e-300 {
                v.iter_mut().for_each(|x| *x /= norm);
                return v;
            }
        }
    }
}

/// `len` deterministic f32 values in `[−1, 1)` for tests and benchmarks of kernels: a
/// 64-bit LCG seeded from `seed`, top 24 bits of each state (integer arithmetic only,
/// so identical on every platform).
pub fn lcg_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_in_range() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..1000 {
            let x = a.uniform();
            assert_eq!(x, b.uniform());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn reference_stream() {
        // First outputs of SplitMix64 seeded with 0 (reference values of the algorithm).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normal_moments() {
        let mut r = SplitMix64::new(7);
        let n = 200_000;
        let xs = r.normal_vec(n);
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }
}
