//! The SIMD kernels in `solver_core::kernels` against their scalar references in
//! `solver_core::kernels::scalar`, plus exact cases with known answers.
//!
//! Random tests use a fixed proptest seed, so they are reproducible. Two kinds of data:
//! - general `f32` values, compared with a tolerance for reassociation,
//!   `|simd − scalar| ≤ 1e-5·Σ|terms| + 1e-30`;
//! - small integers, for which every product and partial sum is exact in `f32`, so any
//!   summation order gives the same result and SIMD must equal scalar bit for bit. A
//!   wrong index, a dropped tail or a row in the wrong block cannot hide in a tolerance.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use solver_core::kernels::{self, scalar};

const REL: f32 = 1e-5;
const TINY: f32 = 1e-30;
/// Marks entries of `out` that must be left untouched.
const SENTINEL: f32 = 12345.0;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x5EED_DEC0_0001),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Finite values spanning a few orders of magnitude, both signs.
fn real() -> impl Strategy<Value = f32> + Clone {
    prop_oneof![-1.0f32..1.0, -100.0f32..100.0, -1e-3f32..1e-3]
}

/// Small integers: all sums below stay far under 2²⁴, hence exact.
fn int() -> impl Strategy<Value = f32> + Clone {
    (-8i32..=8).prop_map(|v| v as f32)
}

/// Two vectors of lengths in `0..300`, equal in about half the cases.
fn pair<S: Strategy<Value = f32> + Clone>(elem: S) -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (0usize..300, 0usize..300, any::<bool>()).prop_flat_map(move |(la, lb, same)| {
        let lb = if same { la } else { lb };
        (vec(elem.clone(), la), vec(elem.clone(), lb))
    })
}

/// Multi-row input: row length `n`, `k` rows (0..=20, so up to three 8-row blocks),
/// a partial row after them, and vectors whose lengths may fall short of or exceed `n`.
#[derive(Debug, Clone)]
struct Rows {
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    y: Vec<f32>,
    coeffs: Vec<f32>,
    out_len: usize,
}

fn rows<S: Strategy<Value = f32> + Clone>(elem: S) -> impl Strategy<Value = Rows> {
    let shape = (0usize..=260, 0usize..=20, 0usize..=20, 0usize..8, 0usize..8, 0usize..=22);
    shape.prop_flat_map(move |(n, ka, kb, extra, dx, out_len)| {
        let partial = if n == 0 { 0 } else { extra % n };
        let len = |d: usize| {
            if d < 4 {
                n
            } else if d < 6 {
                n.saturating_sub(d * 3)
            } else {
                n + d
            }
        };
        (
            vec(elem.clone(), ka * n + partial),
            vec(elem.clone(), kb * n),
            vec(elem.clone(), len(dx)),
            vec(elem.clone(), len((dx + 3) % 8)),
            vec(elem.clone(), 0..=22),
        )
            .prop_map(move |(a, b, x, y, coeffs)| Rows { n, a, b, x, y, coeffs, out_len })
    })
}

fn abs_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum()
}

fn assert_close(simd: f32, reference: f32, scale: f32, what: &str) {
    let tol = REL * scale + TINY;
    assert!(
        (simd - reference).abs() <= tol,
        "{what}: simd {simd} vs scalar {reference} (diff {}, tol {tol})",
        (simd - reference).abs()
    );
}

fn assert_bits(simd: &[f32], reference: &[f32], what: &str) {
    let s: Vec<u32> = simd.iter().map(|v| v.to_bits()).collect();
    let r: Vec<u32> = reference.iter().map(|v| v.to_bits()).collect();
    assert_eq!(s, r, "{what}: simd {simd:?} vs scalar {reference:?}");
}

/// Runs `multi_dot` both ways into sentinel-filled outputs of `out_len` entries.
fn multi_dot_both(r: &Rows) -> (Vec<f32>, Vec<f32>) {
    let mut simd = vec![SENTINEL; r.out_len];
    let mut reference = simd.clone();
    kernels::multi_dot(&r.a, r.n, &r.x, &mut simd);
    scalar::multi_dot(&r.a, r.n, &r.x, &mut reference);
    (simd, reference)
}

fn low_rank_both(alpha: f32, r: &Rows) -> (Vec<f32>, Vec<f32>) {
    let mut simd = r.y.clone();
    let mut reference = r.y.clone();
    kernels::low_rank_acc(alpha, &r.a, &r.b, r.n, &r.x, &mut simd);
    scalar::low_rank_acc(alpha, &r.a, &r.b, r.n, &r.x, &mut reference);
    (simd, reference)
}

/// `y0 + alpha·(Σᵣ aᵣ bᵣᵀ) x` through the explicitly formed dense matrix, in `f64`.
fn dense_low_rank(alpha: f32, r: &Rows) -> Vec<f64> {
    let n = r.n;
    let k = r.a.len().min(r.b.len()).checked_div(n).unwrap_or(0);
    let mut m = vec![0.0f64; n * n];
    for row in 0..k {
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += f64::from(r.a[row * n + i]) * f64::from(r.b[row * n + j]);
            }
        }
    }
    let mut y: Vec<f64> = r.y.iter().map(|&v| f64::from(v)).collect();
    for (i, yi) in y.iter_mut().enumerate().take(n) {
        let mx: f64 = (0..n.min(r.x.len())).map(|j| m[i * n + j] * f64::from(r.x[j])).sum();
        *yi += f64::from(alpha) * mx;
    }
    y
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn dot_matches_scalar((a, b) in pair(real())) {
        assert_close(kernels::dot(&a, &b), scalar::dot(&a, &b), abs_dot(&a, &b), "dot");
    }

    #[test]
    fn norm_matches_scalar((a, _) in pair(real())) {
        let reference = scalar::norm(&a);
        assert_close(kernels::norm(&a), reference, reference, "norm");
    }

    #[test]
    fn dist_matches_scalar((a, b) in pair(real())) {
        let reference = scalar::dist(&a, &b);
        assert_close(kernels::dist(&a, &b), reference, reference, "dist");
    }

    #[test]
    fn axpy_is_bit_identical((x, y) in pair(real()), alpha in real()) {
        let (mut simd, mut reference) = (y.clone(), y);
        kernels::axpy(alpha, &x, &mut simd);
        scalar::axpy(alpha, &x, &mut reference);
        assert_bits(&simd, &reference, "axpy");
    }

    #[test]
    fn sub_norms_matches_scalar_and_parts((x, g) in pair(real())) {
        let (mut simd, mut reference) = (g.clone(), g.clone());
        let (before, after) = kernels::sub_norms(&x, &mut simd);
        let (rb, ra) = scalar::sub_norms(&x, &mut reference);
        // The residual is the same bits as g − x; the norms are those of g and g − x.
        assert_bits(&simd, &reference, "sub_norms residual");
        let m = x.len().min(g.len());
        let diff: Vec<f32> = g[..m].iter().zip(&x).map(|(g, x)| g - x).collect();
        assert_bits(&simd[..m], &diff, "sub_norms g − x");
        assert_eq!(simd[m..], g[m..], "entries past x untouched");
        assert_close(before, rb, rb, "sub_norms before");
        assert_close(after, ra, ra, "sub_norms after");
        assert_close(before, scalar::norm(&g[..m]), rb, "before = ‖g‖");
        assert_close(after, scalar::norm(&diff), ra, "after = ‖g − x‖");
    }

    #[test]
    fn all_finite_finds_any_non_finite_entry((a, _) in pair(real()), at in 0usize..300, bad in 0usize..4) {
        let mut a = a;
        assert!(kernels::all_finite(&a));
        if let Some(e) = a.get_mut(at) {
            *e = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX][bad];
        }
        prop_assert_eq!(kernels::all_finite(&a), a.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn reductions_exact_on_integers((a, b) in pair(int())) {
        let (mut g, mut h) = (a.clone(), a.clone());
        assert_eq!(kernels::sub_norms(&b, &mut g), scalar::sub_norms(&b, &mut h));
        assert_eq!(kernels::dot(&a, &b), scalar::dot(&a, &b));
        assert_eq!(kernels::norm(&a), scalar::norm(&a));
        assert_eq!(kernels::dist(&a, &b), scalar::dist(&a, &b));
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn multi_dot_matches_scalar(r in rows(real())) {
        let (simd, reference) = multi_dot_both(&r);
        for (i, (s, v)) in simd.iter().zip(&reference).enumerate() {
            if *v == SENTINEL {
                prop_assert_eq!(*s, SENTINEL, "row {} must be untouched", i);
            } else {
                let row = &r.a[i * r.n..(i + 1) * r.n];
                assert_close(*s, *v, abs_dot(row, &r.x), "multi_dot");
            }
        }
    }

    /// `multi_dot2` is two `multi_dot`s bit for bit (one pass instead of two), leaves
    /// the outputs past the rows used untouched, and matches the scalar reference.
    #[test]
    fn multi_dot2_is_two_multi_dots(r in rows(real()), short_y in 0usize..=22) {
        let m = r.x.len().min(r.y.len());
        let (x, y) = (&r.x[..m], &r.y[..m]);
        let (mut ox, mut oy) = (vec![SENTINEL; r.out_len], vec![SENTINEL; short_y]);
        kernels::multi_dot2(&r.a, r.n, &r.x, &r.y, &mut ox, &mut oy);
        let k = r.out_len.min(short_y);
        let (mut wx, mut wy) = (vec![SENTINEL; r.out_len], vec![SENTINEL; short_y]);
        kernels::multi_dot(&r.a, r.n, x, &mut wx[..k]);
        kernels::multi_dot(&r.a, r.n, y, &mut wy[..k]);
        assert_bits(&ox, &wx, "multi_dot2 (x)");
        assert_bits(&oy, &wy, "multi_dot2 (y)");
        let (mut sx, mut sy) = (vec![SENTINEL; r.out_len], vec![SENTINEL; short_y]);
        scalar::multi_dot2(&r.a, r.n, &r.x, &r.y, &mut sx, &mut sy);
        for (i, ((s, v), (t, w))) in ox.iter().zip(&sx).zip(oy.iter().zip(&sy)).enumerate() {
            if *v == SENTINEL {
                prop_assert_eq!(*s, SENTINEL, "row {} must be untouched", i);
            } else {
                let row = &r.a[i * r.n..(i + 1) * r.n];
                assert_close(*s, *v, abs_dot(row, x), "multi_dot2 (x)");
                assert_close(*t, *w, abs_dot(row, y), "multi_dot2 (y)");
            }
        }
    }

    #[test]
    fn multi_axpy_is_bit_identical(r in rows(real())) {
        let (mut simd, mut reference) = (r.y.clone(), r.y.clone());
        kernels::multi_axpy(&r.a, r.n, &r.coeffs, &mut simd);
        scalar::multi_axpy(&r.a, r.n, &r.coeffs, &mut reference);
        assert_bits(&simd, &reference, "multi_axpy");
    }

    #[test]
    fn low_rank_acc_matches_scalar(r in rows(real()), alpha in real()) {
        let (simd, reference) = low_rank_both(alpha, &r);
        let n = r.n;
        let k = r.a.len().min(r.b.len()).checked_div(n).unwrap_or(0);
        for (j, (s, v)) in simd.iter().zip(&reference).enumerate() {
            // Σ|terms| of y0 + Σᵣ alpha·aᵣⱼ·cᵣ, with the coefficients' own error scale.
            let mut scale = r.y[j].abs();
            if j < n {
                for row in 0..k {
                    let br = &r.b[row * n..(row + 1) * n];
                    let c = scalar::dot(br, &r.x).abs() + abs_dot(br, &r.x);
                    scale += (alpha * r.a[row * n + j]).abs() * c;
                }
            }
            assert_close(*s, *v, scale, "low_rank_acc");
        }
    }

    #[test]
    fn low_rank_acc_parts_is_the_product_over_both_parts(r in rows(int()), alpha in -2i32..=2, gap in 0usize..=21) {
        // The rows split at `gap` (a skipped row dropped there): exact integer data, so the
        // result over both parts must be the bits of the product over the rows joined.
        let alpha = alpha as f32;
        let n = r.n.max(1);
        let k = r.a.len().min(r.b.len()) / n;
        let g = gap.min(k);
        let joined_a: Vec<f32> = r.a[..k * n].to_vec();
        let joined_b: Vec<f32> = r.b[..k * n].to_vec();
        let (mut a2, mut b2) = (joined_a[..g * n].to_vec(), joined_b[..g * n].to_vec());
        a2.extend(std::iter::repeat_n(f32::NAN, n));
        b2.extend(std::iter::repeat_n(f32::NAN, n));
        a2.extend_from_slice(&joined_a[g * n..]);
        b2.extend_from_slice(&joined_b[g * n..]);
        let (lo, hi) = (g * n, (g + 1) * n);
        let mut parts = r.y.clone();
        kernels::low_rank_acc_parts(alpha, [&a2[..lo], &a2[hi..]], [&b2[..lo], &b2[hi..]], r.n, &r.x, &mut parts);
        let mut whole = r.y.clone();
        kernels::low_rank_acc(alpha, &joined_a, &joined_b, r.n, &r.x, &mut whole);
        let mut reference = r.y.clone();
        scalar::low_rank_acc_parts(alpha, [&a2[..lo], &a2[hi..]], [&b2[..lo], &b2[hi..]], r.n, &r.x, &mut reference);
        assert_bits(&parts, &whole, "low_rank_acc_parts vs joined rows");
        assert_bits(&parts, &reference, "low_rank_acc_parts vs scalar");
    }

    #[test]
    fn low_rank_acc_matches_dense_product(r in rows(int()), alpha in -2i32..=2) {
        // Integer data and |alpha| ≤ 2: everything is exact in f32, so the SIMD result
        // must equal the dense f64 product U Vᵀ x exactly.
        let alpha = alpha as f32;
        let (simd, reference) = low_rank_both(alpha, &r);
        let dense = dense_low_rank(alpha, &r);
        let simd64: Vec<f64> = simd.iter().map(|&v| f64::from(v)).collect();
        prop_assert_eq!(&simd64, &dense);
        assert_bits(&simd, &reference, "low_rank_acc (integers)");
    }

    #[test]
    fn multi_row_exact_on_integers(r in rows(int())) {
        let (simd, reference) = multi_dot_both(&r);
        assert_bits(&simd, &reference, "multi_dot (integers)");
        let (mut simd, mut reference) = (r.y.clone(), r.y.clone());
        kernels::multi_axpy(&r.a, r.n, &r.coeffs, &mut simd);
        scalar::multi_axpy(&r.a, r.n, &r.coeffs, &mut reference);
        assert_bits(&simd, &reference, "multi_axpy (integers)");
    }
}

/// `[1, 2, …, len]`.
fn ramp(len: usize) -> Vec<f32> {
    (1..=len).map(|i| i as f32).collect()
}

#[test]
fn dot_known_values() {
    for len in [0, 1, 7, 8, 9, 31, 32, 33, 37, 64, 100, 257] {
        let expected = (len * (len + 1) / 2) as f32;
        assert_eq!(kernels::dot(&ramp(len), &vec![1.0; len]), expected, "len {len}");
    }
    // Common prefix: the shorter slice decides.
    assert_eq!(kernels::dot(&[1.0, 2.0, 3.0], &[4.0, 5.0]), 14.0);
    assert_eq!(kernels::dot(&ramp(40), &ramp(3)), 14.0);
    assert_eq!(kernels::dot(&[], &ramp(10)), 0.0);
}

#[test]
fn norm_and_dist_known_values() {
    assert_eq!(kernels::norm::<f32>(&[]), 0.0);
    assert_eq!(kernels::norm(&[3.0, 4.0]), 5.0);
    assert_eq!(kernels::norm(&vec![-1.0; 100]), 10.0);
    let mut a = vec![0.0; 41];
    a[40] = 3.0;
    a[17] = -4.0;
    assert_eq!(kernels::norm(&a), 5.0);
    let b: Vec<f32> = ramp(41).iter().map(|v| v + 2.0).collect();
    // 41 differences of 2 → √(4·41); with the extra entries of b ignored.
    assert_eq!(kernels::dist(&ramp(41), &b), libm::sqrtf(164.0));
    assert_eq!(kernels::dist(&ramp(16), &ramp(100)), 0.0);
}

#[test]
fn axpy_known_values() {
    let mut y = vec![1.0; 19];
    kernels::axpy(2.0, &ramp(17), &mut y);
    let mut expected: Vec<f32> = ramp(17).iter().map(|v| 1.0 + 2.0 * v).collect();
    expected.extend([1.0, 1.0]);
    assert_eq!(y, expected);
}

#[test]
fn multi_dot_known_values() {
    // 10 rows of length 11: row r is all (r + 1). Row · ramp(11) = (r + 1)·66.
    let n = 11;
    let rows: Vec<f32> = (0..10).flat_map(|r| vec![(r + 1) as f32; n]).collect();
    let mut out = [SENTINEL; 12];
    kernels::multi_dot(&rows, n, &ramp(n), &mut out);
    for (r, o) in out.iter().enumerate().take(10) {
        assert_eq!(*o, ((r + 1) * 66) as f32);
    }
    assert_eq!(out[10..], [SENTINEL; 2]);
    // x shorter than a row: only its 3 entries count, (r + 1)·6.
    let mut out = [0.0; 10];
    kernels::multi_dot(&rows, n, &ramp(3), &mut out);
    assert_eq!(out[9], 60.0);
    // out shorter than the row count, and n == 0.
    let mut out = [SENTINEL; 9];
    kernels::multi_dot(&rows, n, &ramp(n), &mut out);
    assert_eq!(out[8], 9.0 * 66.0);
    let mut out = [SENTINEL; 3];
    kernels::multi_dot(&rows, 0, &ramp(n), &mut out);
    assert_eq!(out, [SENTINEL; 3]);
}

#[test]
fn multi_axpy_known_values() {
    // 9 rows of length 5 (two blocks), row r is all 1, coefficient r: y += Σ r = 36.
    let rows = vec![1.0; 9 * 5 + 3];
    let coeffs = ramp(9).iter().map(|v| v - 1.0).collect::<Vec<_>>();
    let mut y = vec![1.0; 7];
    kernels::multi_axpy(&rows, 5, &coeffs, &mut y);
    assert_eq!(y, [37.0, 37.0, 37.0, 37.0, 37.0, 1.0, 1.0]);
    // Only 2 coefficients: rows 0 and 1.
    let mut y = vec![0.0; 5];
    kernels::multi_axpy(&rows, 5, &[3.0, 4.0], &mut y);
    assert_eq!(y, [7.0; 5]);
}

#[test]
fn low_rank_acc_known_values() {
    // U = [e₀ … e₉] (rows of a), V = rows of b with b_r = (r + 1)·e_{r+1}: U Vᵀ x has
    // entry r equal to (r + 1)·x_{r+1}.
    let n = 12;
    let k = 10;
    let mut a = vec![0.0; k * n];
    let mut b = vec![0.0; k * n];
    for r in 0..k {
        a[r * n + r] = 1.0;
        b[r * n + r + 1] = (r + 1) as f32;
    }
    let x = ramp(n);
    let mut y = vec![0.5; n];
    kernels::low_rank_acc(2.0, &a, &b, n, &x, &mut y);
    for (r, yr) in y.iter().enumerate() {
        let expected = if r < k { 0.5 + 2.0 * ((r + 1) * (r + 2)) as f32 } else { 0.5 };
        assert_eq!(*yr, expected, "entry {r}");
    }
    // b with one row fewer: the last pair is dropped.
    let mut y2 = vec![0.5; n];
    kernels::low_rank_acc(2.0, &a, &b[..(k - 1) * n], n, &x, &mut y2);
    assert_eq!(y2[k - 1], 0.5);
    assert_eq!(y2[..k - 1], y[..k - 1]);
}

/// Norms and distances are right where the plain sum of squares overflows or
/// underflows, for the SIMD and the scalar kernels alike.
#[test]
fn norms_are_exact_at_extreme_scales() {
    use solver_core::kernels::{dist, norm, scalar};
    for (v, expected) in
        [(1e-30f32, 1e-30f32 * 20f32.sqrt()), (3e19, 3e19 * 20f32.sqrt()), (1e-42, 1e-42 * 20f32.sqrt())]
    {
        let a = vec![v; 20];
        let zero = vec![0.0f32; 20];
        for got in [norm(&a), scalar::norm(&a), dist(&a, &zero), scalar::dist(&a, &zero)] {
            assert!((got - expected).abs() <= 1e-6 * expected, "{v}: {got} vs {expected}");
        }
    }
    // The residual's two norms at the same extremes: x = 0 leaves g, and x = 2g flips it.
    for v in [1e-30f32, 3e19, 1e-42] {
        let expected = v * 20f32.sqrt();
        for x in [vec![0.0f32; 20], vec![2.0 * v; 20]] {
            for sub in [kernels::sub_norms::<f32>, scalar::sub_norms::<f32>] {
                let mut g = vec![v; 20];
                let (before, after) = sub(&x, &mut g);
                assert!((before - expected).abs() <= 1e-6 * expected, "{v}: before {before}");
                assert!((after - expected).abs() <= 1e-6 * expected, "{v}: after {after}");
            }
        }
    }
    let mut g = [f32::INFINITY, 1.0];
    assert_eq!(kernels::sub_norms(&[0.0, 0.0], &mut g).1, f32::INFINITY);
    assert_eq!(norm(&[0.0; 9]), 0.0);
    assert_eq!(norm(&[f32::INFINITY, 1.0]), f32::INFINITY);
    assert!(norm(&[f32::NAN, 1e30]).is_nan());
}

/// A low-rank product's operands as the Broyden iteration passes them: `k` row pairs of
/// `n` with a gap at `gap` (a NaN row there, which must never be read), `x`, a start
/// `s`, the vector `w` of the dots formed ahead, and the output `y`, all `n` long.
#[derive(Debug, Clone)]
struct Product {
    n: usize,
    k: usize,
    gap: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    x: Vec<f32>,
    s: Vec<f32>,
    w: Vec<f32>,
    y: Vec<f32>,
}

impl Product {
    /// The rows before the gap and after it, of `a` and `b`.
    fn parts(&self) -> ([&[f32]; 2], [&[f32]; 2]) {
        let (lo, hi) = (self.gap * self.n, (self.gap + 1) * self.n);
        ([&self.a[..lo], &self.a[hi..]], [&self.b[..lo], &self.b[hi..]])
    }

    /// The rows of a factor without the gap, contiguous.
    fn joined(rows: &[f32], n: usize, gap: usize) -> Vec<f32> {
        [&rows[..gap * n], &rows[(gap + 1) * n..]].concat()
    }
}

fn product() -> impl Strategy<Value = Product> {
    (1usize..=140, 0usize..=12, 0usize..=12).prop_flat_map(|(n, k, gap)| {
        let gap = gap.min(k);
        let rows = move || {
            vec(real(), k * n).prop_map(move |mut r| {
                r.splice(gap * n..gap * n, std::iter::repeat_n(f32::NAN, n));
                r
            })
        };
        (rows(), rows(), vec(real(), n), vec(real(), n), vec(real(), n), vec(real(), n))
            .prop_map(move |(a, b, x, s, w, y)| Product { n, k, gap, a, b, x, s, w, y })
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// From a start: the bits of a scale of `s` into `y` and then the product, for the
    /// SIMD kernel and the scalar reference alike (general values: the same operations
    /// in the same order, whatever the data).
    #[test]
    fn low_rank_from_a_start_is_a_scale_then_the_product(
        p in product(),
        alpha in prop_oneof![Just(1.0f32), Just(-1.0), real()],
        beta in prop_oneof![Just(1.0f32), Just(-1.0), Just(0.0), real()],
    ) {
        let (a, b) = p.parts();
        let mut scaled: Vec<f32> = p.s.iter().map(|s| beta * s).collect();
        kernels::low_rank_acc_parts(alpha, a, b, p.n, &p.x, &mut scaled);
        let mut reference: Vec<f32> = p.s.iter().map(|s| beta * s).collect();
        scalar::low_rank_acc_parts(alpha, a, b, p.n, &p.x, &mut reference);
        let product = kernels::LowRankProduct { alpha, a, b, n: p.n, coefs: kernels::Coefs::Dots(&p.x), start: Some((beta, &p.s)) };
        let (mut fused, mut fused_ref) = (p.y.clone(), p.y.clone());
        prop_assert!(!kernels::low_rank(&product, &mut fused, None));
        prop_assert!(!scalar::low_rank(&product, &mut fused_ref, None));
        assert_bits(&fused, &scaled, "low_rank from a start vs scale then product");
        assert_bits(&fused_ref, &reference, "scalar::low_rank from a start vs scale then product");
    }

    /// The dots formed ahead are `multi_dot`'s bits over the rows of `a` (and the
    /// reference's, `scalar::multi_dot`'s), formed exactly when the pairs fit one block
    /// of eight; `y` is the same with them or without; and products from the given dots
    /// are the bits of products that compute them.
    #[test]
    fn dots_formed_ahead_are_the_dots_a_product_would_compute(p in product(), alpha in real()) {
        let (a, b) = p.parts();
        let plain = kernels::LowRankProduct { alpha, a, b, n: p.n, coefs: kernels::Coefs::Dots(&p.x), start: Some((1.0, &p.s)) };
        let mut y = p.y.clone();
        kernels::low_rank(&plain, &mut y, None);
        let (mut ahead, mut y_ahead) = ([SENTINEL; 8], p.y.clone());
        let formed = kernels::low_rank(&plain, &mut y_ahead, Some((&p.w, &mut ahead)));
        prop_assert_eq!(formed, (1..=8).contains(&p.k));
        assert_bits(&y_ahead, &y, "y with dots formed ahead");
        let (mut ahead_ref, mut y_ref) = ([SENTINEL; 8], p.y.clone());
        prop_assert_eq!(scalar::low_rank(&plain, &mut y_ref, Some((&p.w, &mut ahead_ref))), (1..=8).contains(&p.k));
        let joined_a = Product::joined(&p.a, p.n, p.gap);
        if formed {
            let (mut dots, mut dots_ref) = (vec![0.0f32; p.k], vec![0.0f32; p.k]);
            kernels::multi_dot(&joined_a, p.n, &p.w, &mut dots);
            scalar::multi_dot(&joined_a, p.n, &p.w, &mut dots_ref);
            assert_bits(&ahead[..p.k], &dots, "dots formed ahead vs multi_dot");
            assert_bits(&ahead_ref[..p.k], &dots_ref, "scalar dots formed ahead vs scalar::multi_dot");
            prop_assert!(ahead[p.k..].iter().all(|d| *d == SENTINEL));
        } else {
            prop_assert!(ahead.iter().chain(&ahead_ref).all(|d| *d == SENTINEL));
        }
        // A product over the rows of `b`, from their dots with `x` given.
        let joined_b = Product::joined(&p.b, p.n, p.gap);
        let mut given = vec![0.0f32; p.k];
        kernels::multi_dot(&joined_b, p.n, &p.x, &mut given);
        let from_given = kernels::LowRankProduct { coefs: kernels::Coefs::Given(&given), ..plain };
        let mut y_given = p.y.clone();
        kernels::low_rank(&from_given, &mut y_given, None);
        assert_bits(&y_given, &y, "product from given dots vs from dots");
        // Fewer given than pairs: only that many pairs.
        let mut given_fewer = vec![0.0f32; p.k / 2];
        kernels::multi_dot(&joined_b[..p.k / 2 * p.n], p.n, &p.x, &mut given_fewer);
        let short = kernels::LowRankProduct { coefs: kernels::Coefs::Given(&given_fewer), ..plain };
        let fewer = kernels::LowRankProduct { a: [&joined_a[..p.k / 2 * p.n], &[]], b: [&joined_b[..p.k / 2 * p.n], &[]], ..plain };
        let (mut y_short, mut y_fewer) = (p.y.clone(), p.y.clone());
        kernels::low_rank(&short, &mut y_short, None);
        kernels::low_rank(&fewer, &mut y_fewer, None);
        assert_bits(&y_short, &y_fewer, "product from fewer given dots vs over fewer rows");
    }
}
