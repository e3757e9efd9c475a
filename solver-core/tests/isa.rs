//! The kernels give the same bits on every instruction set they can run with
//! (`kernels::isa`): each kernel on random inputs, and whole solves (Broyden's fused
//! update included) on the standard and hard suites and the classic root systems, in
//! `f32` and `f64`, once with the baseline kernels and once with the AVX ones.
//!
//! On a CPU without AVX there is only one instruction set and these tests say so and
//! compare nothing.

use std::sync::Mutex;

use deq_problems::rng::SplitMix64;
use deq_problems::suite::{hard_suite, quick_suite};
use deq_problems::{FixedPointProblem, classic_root_cases};
use solver_core::kernels::isa::{self, Isa};
use solver_core::{
    AndersonSlices, BroydenSlices, Options, PicardSlices, Real, Solver, anderson, broyden, kernels, picard,
};

/// The instruction set is one setting for the whole process: tests that switch it take
/// turns.
static ISA: Mutex<()> = Mutex::new(());

/// `run()` with the baseline kernels and with the AVX ones, or `None` (and a note) where
/// the CPU has no AVX.
fn on_both<R>(run: impl Fn() -> R) -> Option<(R, R)> {
    let _turn = ISA.lock().unwrap_or_else(|e| e.into_inner());
    if isa::detected() != Isa::Avx {
        eprintln!("only {} on this CPU: nothing to compare", isa::detected().name());
        return None;
    }
    isa::set_isa(Isa::Baseline).unwrap();
    assert_eq!(isa::isa(), Isa::Baseline);
    let base = run();
    isa::set_isa(Isa::Avx).unwrap();
    assert_eq!(isa::isa(), Isa::Avx);
    let avx = run();
    Some((base, avx))
}

/// Bits of a value, for exact comparison (NaN included).
trait Bits: Real {
    fn bits(self) -> u64;
}
impl Bits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn bits<T: Bits>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

/// Random values in [-1, 1), a few of them scaled far up or down.
fn random<T: Real>(rng: &mut SplitMix64, n: usize) -> Vec<T> {
    (0..n)
        .map(|i| {
            let x = rng.uniform_in(-1.0, 1.0);
            let scale = match i % 97 {
                3 => 1e6,
                5 => 1e-6,
                _ => 1.0,
            };
            T::from_f64(x * scale)
        })
        .collect()
}

/// Every kernel on one set of inputs: all outputs as bits, in one list.
fn kernel_outputs<T: Bits>(n: usize, m: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    let (a, b): (Vec<T>, Vec<T>) = (random(&mut rng, n), random(&mut rng, n));
    let (u, v): (Vec<T>, Vec<T>) = (random(&mut rng, m * n), random(&mut rng, m * n));
    let coeffs: Vec<T> = random(&mut rng, m);
    let mut out = vec![kernels::dot(&a, &b), kernels::norm(&a), kernels::dist(&a, &b)];
    let mut g = b.clone();
    let (before, after) = kernels::sub_norms(&a, &mut g);
    out.extend([before, after]);
    out.extend(&g);
    let mut y = b.clone();
    kernels::axpy(T::from_f64(0.3), &a, &mut y);
    out.extend(&y);
    let (mut dx, mut dy) = (vec![T::ZERO; m], vec![T::ZERO; m]);
    kernels::multi_dot(&u, n, &a, &mut dx);
    out.extend(&dx);
    kernels::multi_dot2(&v, n, &a, &b, &mut dx, &mut dy);
    out.extend(dx.iter().chain(&dy));
    let mut y = b.clone();
    kernels::multi_axpy(&u, n, &coeffs, &mut y);
    out.extend(&y);
    let mut y = b.clone();
    kernels::low_rank_acc(T::from_f64(-0.7), &u, &v, n, &a, &mut y);
    out.extend(&y);
    // The pairs in two parts, as around a replaced slot.
    let cut = (m / 2) * n;
    let mut y = a.clone();
    kernels::low_rank_acc_parts(T::ONE, [&u[..cut], &u[cut..]], [&v[..cut], &v[cut..]], n, &b, &mut y);
    out.extend(&y);
    bits(&out)
}

#[test]
fn every_kernel_gives_the_same_bits_with_avx() {
    let shapes =
        (0..=40).chain([63, 64, 65, 127, 203, 1031, 4099]).flat_map(|n| [(n, 1), (n, 3), (n, 8), (n, 12)]);
    for (k, (n, m)) in shapes.enumerate() {
        let seed = 9_000 + k as u64;
        if let Some((base, avx)) = on_both(|| kernel_outputs::<f32>(n, m, seed)) {
            assert_eq!(base, avx, "f32 kernels, n = {n}, m = {m}");
        }
        if let Some((base, avx)) = on_both(|| kernel_outputs::<f64>(n, m, seed)) {
            assert_eq!(base, avx, "f64 kernels, n = {n}, m = {m}");
        }
    }
}

/// Zeroed buffers of these lengths.
fn buffers<T: Real, const K: usize>(lens: [usize; K]) -> [Vec<T>; K] {
    lens.map(|l| vec![T::ZERO; l])
}

/// Runs `solver` on `f` from `start`: the answer's bits and the f-evaluations.
fn run<T: Bits>(
    mut solver: impl Solver<T>,
    f: &mut dyn FnMut(&[T], &mut [T]),
    start: Vec<T>,
    opts: &Options<T>,
) -> (Vec<u64>, u32) {
    let mut z = start;
    let r = solver.solve(f, &mut z, opts).unwrap();
    (bits(&z), r.f_evals)
}

/// One solve of `p` by each solver from its start (and by Broyden in `f64` on the
/// float64 map): the answers' bits and the f-evaluation counts.
fn solves(p: &dyn FixedPointProblem) -> Vec<(Vec<u64>, u32)> {
    let n = p.dim();
    let opts = Options { max_iters: 200, tol_rel: 1e-6, ..Options::default() };
    let f = &mut |z: &[f32], out: &mut [f32]| p.f(z, out);
    let [mut b0, mut b1, mut b2] = buffers(broyden::buffer_lens(n, 8).unwrap());
    let broyden32 = BroydenSlices::from_slices(n, 8, [&mut b0, &mut b1, &mut b2]).unwrap();
    let mut a = buffers(anderson::buffer_lens(n, 5).unwrap());
    let [a0, a1, a2, a3, a4, a5] = &mut a;
    let anderson = AndersonSlices::from_slices(n, 5, [a0, a1, a2, a3, a4, a5]).unwrap();
    let [mut p0] = buffers(picard::buffer_lens(n).unwrap());
    let picard = PicardSlices::from_slices(n, [&mut p0]).unwrap();
    let opts64 = Options::<f64> { max_iters: 200, tol_rel: 1e-10, ..Options::DEFAULT };
    let [mut c0, mut c1, mut c2] = buffers(broyden::buffer_lens(n, 8).unwrap());
    let broyden64 = BroydenSlices::<f64>::from_slices(n, 8, [&mut c0, &mut c1, &mut c2]).unwrap();
    let start64 = p.start().iter().map(|&x| f64::from(x)).collect();
    vec![
        run(broyden32, f, p.start(), &opts),
        run(anderson, f, p.start(), &opts),
        run(picard, f, p.start(), &opts),
        run(broyden64, &mut |z: &[f64], o: &mut [f64]| p.f64_map(z, o), start64, &opts64),
    ]
}

#[test]
fn solves_give_the_same_bits_with_avx() {
    for p in quick_suite().iter().chain(&hard_suite()) {
        if let Some((base, avx)) = on_both(|| solves(p.as_ref())) {
            assert_eq!(base, avx, "{}", p.name());
        }
    }
}

#[test]
fn root_solves_give_the_same_bits_with_avx() {
    for p in classic_root_cases() {
        let n = p.dim();
        let run = || {
            let [lu, lv, lw] = broyden::buffer_lens(n, 8).unwrap();
            let (mut u, mut v, mut w) = (vec![0.0; lu], vec![0.0; lv], vec![0.0; lw]);
            let mut solver = BroydenSlices::<f64>::from_slices(n, 8, [&mut u, &mut v, &mut w]).unwrap();
            let opts = Options::<f64> { tol_abs: 1e-5, tol_rel: 0.0, max_iters: 1000, ..Options::DEFAULT };
            let mut z = p.start();
            let r =
                solver.solve_root_dyn(&mut |x: &[f64], o: &mut [f64]| p.residual_f64(x, o), &mut z, &opts);
            (bits(&z), r.map(|r| r.f_evals).ok())
        };
        if let Some((base, avx)) = on_both(run) {
            assert_eq!(base, avx, "{}", p.name());
        }
    }
}
