//! The low-rank product over `bf16` rows (`kernels::low_rank_bf16`) against the `f32`
//! product over the same rows widened: bit for bit, in every form the product takes
//! (coefficients formed or given, from `y` or from `beta·s`, the dots formed ahead, the
//! rows in two parts around a gap, every row count across the block of eight, lengths
//! with and without a tail), and on every instruction set the CPU has.

use std::sync::Mutex;

use deq_problems::rng::SplitMix64;
use proptest::prelude::*;
use solver_core::kernels::isa::{self, Isa};
use solver_core::kernels::{self, Bf16, Coefs, LowRankProduct};

/// The instruction set is one setting for the whole process: tests that switch it take
/// turns.
static ISA: Mutex<()> = Mutex::new(());

/// Everything one product returns: `y`, the dots formed ahead and whether they were.
#[derive(Debug, PartialEq)]
struct Outcome {
    y: Vec<u32>,
    ahead: Vec<u32>,
    formed: bool,
}

/// The inputs of one product: rows of `U` and `V` in bf16 and the same rows widened,
/// and the vectors.
struct Case {
    n: usize,
    half_a: Vec<Bf16>,
    half_b: Vec<Bf16>,
    wide_a: Vec<f32>,
    wide_b: Vec<f32>,
    x: Vec<f32>,
    w: Vec<f32>,
    s: Vec<f32>,
    y0: Vec<f32>,
    given: Vec<f32>,
}

fn random(rng: &mut SplitMix64, len: usize) -> Vec<f32> {
    (0..len).map(|i| (rng.uniform_in(-1.0, 1.0) * if i % 13 == 5 { 1e4 } else { 1.0 }) as f32).collect()
}

impl Case {
    fn new(n: usize, rows: usize, seed: u64) -> Case {
        let mut rng = SplitMix64::new(seed);
        let half_a: Vec<Bf16> = random(&mut rng, rows * n).into_iter().map(Bf16::from_f32).collect();
        let half_b: Vec<Bf16> = random(&mut rng, rows * n).into_iter().map(Bf16::from_f32).collect();
        Case {
            n,
            wide_a: half_a.iter().map(|b| b.to_f32()).collect(),
            wide_b: half_b.iter().map(|b| b.to_f32()).collect(),
            half_a,
            half_b,
            x: random(&mut rng, n),
            w: random(&mut rng, n),
            s: random(&mut rng, n),
            y0: random(&mut rng, n),
            given: random(&mut rng, rows),
        }
    }

    /// The product in one form, over the bf16 rows (`half`) or the widened ones, the
    /// rows split into two parts with `gap` rows left out after the first `cut`.
    fn run(&self, half: bool, form: Form) -> Outcome {
        let n = self.n;
        let rows = self.wide_a.len() / n.max(1);
        let cut = form.cut.min(rows);
        let gap = form.gap.min(rows - cut);
        let parts = |len: usize| [0..cut * n, (cut + gap) * n..len];
        let [p0, p1] = parts(rows * n);
        let coefs = if form.given { Coefs::Given(&self.given[..]) } else { Coefs::Dots(&self.x[..]) };
        let start = form.start.then_some((-0.75f32, &self.s[..]));
        let mut y = self.y0.clone();
        let mut out = [0.0f32; 8];
        let ahead = form.ahead.then_some((&self.w[..], &mut out[..]));
        let formed = if half {
            let (a, b) = (&self.half_a, &self.half_b);
            let p = LowRankProduct {
                alpha: 1.25f32,
                a: [&a[p0.clone()], &a[p1.clone()]],
                b: [&b[p0], &b[p1]],
                n,
                coefs,
                start,
            };
            kernels::low_rank_bf16(&p, &mut y, ahead)
        } else {
            let (a, b) = (&self.wide_a, &self.wide_b);
            let p = LowRankProduct {
                alpha: 1.25f32,
                a: [&a[p0.clone()], &a[p1.clone()]],
                b: [&b[p0], &b[p1]],
                n,
                coefs,
                start,
            };
            kernels::low_rank(&p, &mut y, ahead)
        };
        Outcome {
            y: y.iter().map(|v| v.to_bits()).collect(),
            ahead: out.iter().map(|v| v.to_bits()).collect(),
            formed,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Form {
    given: bool,
    start: bool,
    ahead: bool,
    cut: usize,
    gap: usize,
}

fn forms() -> impl Strategy<Value = Form> {
    (any::<bool>(), any::<bool>(), any::<bool>(), 0usize..12, 0usize..3)
        .prop_map(|(given, start, ahead, cut, gap)| Form { given, start, ahead, cut, gap })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn bf16_rows_give_the_bits_of_the_widened_rows(
        n in 0usize..70, rows in 0usize..13, seed in any::<u64>(), form in forms(),
    ) {
        let case = Case::new(n, rows, seed);
        prop_assert_eq!(case.run(true, form), case.run(false, form));
    }
}

/// A product long enough for the 4-accumulator single-row dot and the blocks of eight
/// (rows 1, 8, 9, 12), in each form, on the baseline kernels and the AVX ones: the bf16
/// product matches the f32 one on each, and the two instruction sets match each other.
#[test]
fn bf16_product_is_the_same_on_every_instruction_set() {
    let _turn = ISA.lock().unwrap_or_else(|e| e.into_inner());
    let sets: Vec<Isa> =
        if isa::detected() == Isa::Avx { vec![Isa::Baseline, Isa::Avx] } else { vec![isa::isa()] };
    let mut seen: Vec<Vec<Outcome>> = Vec::new();
    for set in &sets {
        if *set != Isa::Scalar {
            isa::set_isa(*set).unwrap();
        }
        let mut outcomes = Vec::new();
        for (i, rows) in [1usize, 2, 7, 8, 9, 12].into_iter().enumerate() {
            let case = Case::new(1003, rows, 40 + i as u64);
            for bits in 0..32u32 {
                let form = Form {
                    given: bits & 1 != 0,
                    start: bits & 2 != 0,
                    ahead: bits & 4 != 0,
                    cut: if bits & 8 != 0 { rows / 2 } else { rows },
                    gap: usize::from(bits & 16 != 0),
                };
                let half = case.run(true, form);
                assert_eq!(half, case.run(false, form), "{} rows {rows} {form:?}", set.name());
                outcomes.push(half);
            }
        }
        seen.push(outcomes);
    }
    isa::set_isa(isa::detected()).unwrap();
    if let [base, avx] = &seen[..] {
        assert!(base == avx, "the baseline and AVX bf16 products differ");
    } else {
        eprintln!("only {} on this CPU: one instruction set compared", isa::isa().name());
    }
}

/// The product itself, against a float64 evaluation of `alpha·U(Vᵀx)` from the bf16
/// values: the bits agree with the f32 path, and this checks that the path is the
/// product at all (a kernel that ignored the rows would agree with nothing).
#[test]
fn bf16_product_matches_a_float64_reference() {
    let (n, rows) = (257, 9);
    let case = Case::new(n, rows, 7);
    let mut y = vec![0.0f32; n];
    let p = LowRankProduct {
        alpha: 1.25f32,
        a: [&case.half_a[..], &[]],
        b: [&case.half_b[..], &[]],
        n,
        coefs: Coefs::Dots(&case.x[..]),
        start: None,
    };
    kernels::low_rank_bf16(&p, &mut y, None);
    for (i, yi) in y.iter().enumerate() {
        let mut exact = 0.0f64;
        let mut scale = 0.0f64;
        for r in 0..rows {
            let c: f64 = (0..n).map(|j| case.wide_b[r * n + j] as f64 * case.x[j] as f64).sum();
            let term = 1.25 * c * case.wide_a[r * n + i] as f64;
            exact += term;
            scale += term.abs() + 1.25 * c.abs().max(1.0) * case.wide_a[r * n + i].abs() as f64;
        }
        assert!((*yi as f64 - exact).abs() <= 1e-4 * scale.max(1.0), "entry {i}: {yi} vs {exact}");
    }
}
