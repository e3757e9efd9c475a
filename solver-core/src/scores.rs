//! The class of a classifier's scores, and how decided it is: shared by the host's
//! readout (`solver_host::model::Readout`), the modules `deq export` writes, and the
//! firmware, so every one of them breaks ties and treats NaN the same way, in `f32` or
//! `f64`.
//!
//! ```
//! use solver_core::scores::{argmax, margin};
//!
//! assert_eq!(argmax(&[0.5, 2.0, 2.0, -1.0]), Some(1)); // the first of equal scores
//! assert_eq!(argmax(&[0.5, f32::NAN]), None);           // no class from a NaN
//! assert_eq!(margin(&[0.5, 2.0, 1.25]), 0.75);          // largest − second largest
//! ```

use crate::Real;

/// The index of the largest score, the first one on a tie; `None` if `scores` is empty
/// or holds a NaN (a state whose solve did not end finite has no class).
pub fn argmax<T: Real>(scores: &[T]) -> Option<usize> {
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in scores.iter().enumerate() {
        if v.is_nan() {
            return None;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// The largest score minus the second largest: 0 on a tie, NaN if a score is NaN, +∞
/// for a single score. A class that two roundings may decide differently has a small
/// margin.
pub fn margin<T: Real>(scores: &[T]) -> T {
    let (mut first, mut second) = (-T::INFINITY, -T::INFINITY);
    for &v in scores {
        if v.is_nan() {
            return T::NAN;
        }
        if v > first {
            second = first;
            first = v;
        } else if v > second {
            second = v;
        }
    }
    first - second
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_nan_and_edges() {
        assert_eq!(argmax::<f32>(&[]), None);
        assert_eq!(argmax(&[-3.0]), Some(0));
        assert_eq!(argmax(&[1.0, 1.0]), Some(0));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::INFINITY, 1.0, f32::NAN]), None);
        assert_eq!(margin(&[2.0, 2.0, 1.0]), 0.0);
        assert_eq!(margin(&[1.0, 3.0, 2.5]), 0.5);
        assert_eq!(margin(&[4.0]), f32::INFINITY);
        assert!(margin(&[1.0, f32::NAN]).is_nan());
        assert_eq!(argmax(&[0.5f64, 2.0, 2.0]), Some(1));
        assert_eq!(argmax(&[0.5, f64::NAN]), None);
        assert_eq!(margin(&[1.0f64, 3.0, 2.5]), 0.5);
        assert_eq!(margin(&[4.0f64]), f64::INFINITY);
    }
}
