//! "Good" Broyden's method with a bounded low-rank inverse Jacobian.
//!
//! # The math
//!
//! A fixed point `z* = f(z*)` is a root of `g(z) = f(z) − z`. Newton's method would step
//! `p = −J⁻¹ g` with `J = ∂g/∂z = ∂f/∂z − I`, but a DEQ layer's Jacobian is never
//! formed. Broyden's method keeps an approximation `H ≈ J⁻¹` instead and improves it
//! from what each step reveals: after a step `Δz` that changed the residual by `Δg`,
//! the new `H` must satisfy the *secant condition* `H₊ Δg = Δz`. The "good" Broyden
//! update is the smallest change of `H` (in the sense of `Δzᵀ H`) that does so:
//!
//! ```text
//!     H₊ = H + u vᵀ,   v = Hᵀ Δz,   u = (Δz − H Δg) / (vᵀ Δg).
//! ```
//!
//! (Check: `H₊ Δg = H Δg + u (vᵀ Δg) = Δz`.)
//!
//! **Why `H = −I + U Vᵀ`.** The iteration starts from `H₀ = −I`, the inverse Jacobian of
//! `g` when `∂f/∂z` is small, so the first step `p = −H₀ g = f(z) − z` is exactly one
//! plain fixed-point step. Every update adds one rank-one term, so after `k` updates
//! `H = −I + Σᵢ uᵢ vᵢᵀ = −I + U Vᵀ` with `U`, `V` of size `n × k`. Here the pairs are
//! stored as the rows of two `M × N` arrays.
//!
//! **Why `U(Vᵀg)` and never a matrix.** `U Vᵀ` is `n × n`: for a DEQ state of
//! `n = 15·150·700` it would not fit in any memory. Applied right to left, `Vᵀg` is `k`
//! dot products and `U(Vᵀg)` is `k` axpys: `O(k·n)` work and no storage beyond the
//! pairs. So `H g = −g + U(Vᵀg)` and `Hᵀ x = −x + V(Uᵀx)` are the two products the
//! method needs, done by [`kernels::low_rank`](crate::kernels::low_rank), a dot pass and
//! an axpy pass per 8 pairs. An iteration makes two of them (`H_oᵀp` and `H_o g₊`; the
//! next step comes from the second, `H₊g₊ = H_o g₊ + u (vᵀg₊)`, see `iteration.rs`);
//! each forms the other's dot products while it reads its rows, and does the vector
//! work that follows it in the same pass, so an iteration reads `U` once and `V` once:
//! at DEQ scale, where the history dwarfs the caches, that traffic (14 of the 33 vector
//! passes of an iteration, counted in `iteration.rs`) and the vector operations around
//! it are the solver's cost.
//!
//! **When the history is full.** At most `M` pairs are kept, so the memory is fixed
//! by the type and does not depend on `max_iters`. When all `M` slots hold pairs and a
//! new one arrives, the history is *reduced first* and the new pair is computed from
//! the reduced `H`, so that the newest secant condition `H₊ Δg = Δz` holds exactly:
//!
//! * [`History::DropOldest`] (default) forgets the oldest pair and reuses its slot;
//! * [`History::Restart`] forgets every pair (`H = −I`) and stores the new one.
//!
//! Overwriting the oldest pair *after* computing the new one from the full `H` (the
//! limited-memory option of some PyTorch solvers) breaks the secant condition, and
//! the step can then point anywhere. The default was chosen by measuring f-evaluations
//! on the test problems (see the repository's README).
//!
//! **Safeguards.** An update whose denominator `vᵀΔg` is non-finite or tiny relative
//! to `‖v‖‖Δg‖` is skipped, not stored, and leaves the history as it was; one whose `u`
//! overflows is not stored either (its slot is left inert). A step `p` that is not
//! finite is never evaluated: the history restarts and the step is a plain one. A
//! quasi-Newton step that multiplies `‖g‖` by more than
//! [`BroydenSettings::reject_growth`] (default 2) is rejected: the iterate stays, the
//! history restarts, and the next step is a plain one. Each rejection doubles the
//! growth tolerated until a quasi-Newton step makes progress again, so maps whose good
//! steps are transiently uphill are not stopped. Optionally
//! ([`BroydenSettings::line_search`]), each step `z + αp` is accepted only when `‖g‖`
//! falls by the Armijo factor `(1 − 10⁻⁴α)`, halving `α` otherwise; when no trial
//! passes, the last one is taken and the history restarted (step rejection is then
//! left to the line search).
//!
//! **Roots: a scaled `H₀ = −γI`.** For `g` given directly (`solve_root`), `∂g/∂z` need
//! not be near `−I`: its scale can be anything and its spectrum positive. So the root
//! form keeps `H = −γI + U Vᵀ` with a scale `γ` (the fixed-point form keeps `γ = 1`, and
//! its arithmetic is exactly the `−I` form's):
//!
//! * the first step `γg` is no longer than `max(‖z₀‖, 1)`: `γ = min(1, max(‖z₀‖, 1)/‖g₀‖)`;
//! * every update stored against an empty history (the first, and the first after a
//!   restart) refits `γ` to its secant in the least-squares sense, `−γΔg ≈ Δz`:
//!   `γ = −ΔzᵀΔg/‖Δg‖²`, negative when `∂g/∂z` has a positive spectrum, so the next
//!   plain step goes downhill; with other pairs stored `γ` stays, since their secant
//!   equations hold for it;
//! * a plain step that multiplies `‖g‖` by more than `reject_growth` is retried from
//!   the same point with `γ` divided by 4, at most `max_backtracks` times; a
//!   quasi-Newton step that does is retried once at half length before it is rejected.
//!
//! **Roots of small systems: a dense model.** When the history can hold a whole
//! inverse Jacobian (`n ≤ m`, e.g. `Broyden<4, 8>`), a root solve keeps `H` whole
//! instead: `V`'s first `n` rows are the unit vectors `eⱼ`, so `H = −γI + U Vᵀ` with
//! `U`'s rows the columns of `H + γI`, and nothing is ever forgotten.
//!
//! * **Probes.** At the start, `H` is the inverse of a forward-difference Jacobian:
//!   `n` evaluations at `x + h·eⱼ`, `h = √ε·max(‖x‖, 1)`, give the columns
//!   `(g(x + h·eⱼ) − g(x))/h`, stored in `V`'s rows, and one Gauss–Jordan elimination
//!   with partial pivoting ([`ops::Op::Invert`]) turns them into `U` (`x` does not move).
//! * **Steps.** `p = −H g` (Newton's step right after the probes) is globalised by a
//!   backtracking line search on `‖g‖`: `x + αp` is taken when
//!   `‖g(x + αp)‖ ≤ (1 − 10⁻⁴α)‖g(x)‖`, halving `α` at most `max_backtracks` times
//!   (three times as many for a step fresh from the probes, which is Newton's).
//! * **Updates.** Each step taken updates `H` by the same good-Broyden formula,
//!   `H₊ = H + u vᵀ`, folded into `U` as the rank-one change of its rows
//!   (`U` row `j` gains `vⱼ·u`, [`ops::Op::AddOuter`]): full-memory Broyden in `n·m`
//!   values.
//! * **Refresh.** When no step length passes, a model that has been updated since its
//!   probes is probed afresh at `x` (one restart); a fresh one takes its last trial
//!   and goes on. A Jacobian that cannot be inverted (a zero pivot) leaves `H = −γI`,
//!   from which the updates go on.
//!
//! Why: the low-rank model from `−γI` needs many iterations to learn a Jacobian that
//! is nothing like a multiple of `−I` (positive or mixed spectra, scales of 10⁴ across
//! components), and its steps are no descent directions until it has; `n`
//! evaluations buy the whole Jacobian at once. With `M = 8` on the 43 classic cases
//! the dense model raised the solved count from 25 to 40 in f64 and from 22 to 39 in
//! f32: every one of the 27 cases with `n ≤ 8` is solved in both types (12 and 11
//! were before); of the 16 with `n > m`, the low-rank model solves 13 in f64 and 12 in
//! f32.
//!
//! `cargo run --release -p deq-benches --bin root_table` measures it on 43 classic
//! systems (MINPACK's `hybrd` test set and SciPy's `test_nonlin.py` problems).
//!
//! **Defaults, by measurement.** `benches/src/bin/policy_table.rs` runs every policy
//! and safeguard with M = 8 on the standard suite (tanh DEQ layers d = 16…1024,
//! ρ = 0.5…1.2; the H-equation; a linear map on which plain iteration diverges) and on
//! a ring map whose Jacobian is a scaled cyclic shift. Drop-oldest with step rejection
//! at growth 2 and no line search needed the fewest f-evaluations on 26 of the 29 suite
//! problems (at most 2 more on the others). On the ring map, whose trajectory changes
//! with the summation order alone, it converges given a stall window of 80 iterations
//! (582; restart without rejection 542, plain iteration about 545) and with the
//! default 50 stops on a plateau (493).
//! The line search spent evaluations on rejected trials (51 against 26 on the linear
//! map); without step rejection, drop-oldest wandered off on the ring map.
//!
//! # How the code is laid out
//!
//! The solve is split in two, so that the vector work can run elsewhere (a GPU, for a
//! whole batch) while the algorithm stays this one:
//!
//! * [`BroydenState::advance`] (in `iteration.rs`) is the iteration, top to bottom: every
//!   decision on scalars (the history's ring, the skip test on `vᵀΔg`, step rejection
//!   and its growth allowance, the line search, the monitor's stopping tests) and every
//!   formula, each written once. It asks for its vector work one [`ops::Op`] at a time
//!   and reads the answer from an [`ops::Reply`].
//! * The ops are generic linear algebra on named vectors (copy, scale, `x + αy`, the
//!   low-rank product `U(Vᵀx)`, dot products, norms, finiteness; a unit vector, a
//!   rank-one update of rows and a dense inverse for the dense model), carried out here on
//!   slices and by every other executor (solver-host's CUDA kernels, the Python
//!   package's torch executor) without knowing the method.
//!
//! To change the method, change `iteration.rs`: a "bad Broyden" update (`v = Δg`
//! instead of `HᵀΔz`) replaces the three lines that form `v` by one
//! `Op::Copy { from: G, to: Xn }`, and no executor changes.
//!
//! # Memory
//!
//! `Broyden<N, M, T>` holds `U`, `V` (`2·M·N` values) and five work vectors (`x`, `g`,
//! the step, the trial point and its residual), all inside the struct, beside its
//! settings and the scalars of the solve in progress:
//!
//! ```text
//!     FOOTPRINT = size_of::<Broyden<N, M, T>>() = size_of::<T>()·N·(2·M + 5) + (a few dozen scalars)
//! ```
//!
//! # Examples
//!
//! ```
//! use solver_core::{Broyden, Options, Status};
//!
//! // z = cos(z) componentwise, with a different offset per component.
//! let mut solver = Broyden::<4, 3>::new();
//! let mut z = [0.0f32; 4];
//! let report = solver.solve(
//!     |z, out| {
//!         for (i, (o, zi)) in out.iter_mut().zip(z).enumerate() {
//!             *o = libm::cosf(*zi) + 0.1 * i as f32;
//!         }
//!     },
//!     &mut z,
//!     &Options::default(),
//! );
//! assert_eq!(report.status, Status::Converged);
//! assert!((z[0] - libm::cosf(z[0])).abs() < 1e-5);
//! ```
//!
//! The same in `f64`, to a tolerance `f32` cannot reach:
//!
//! ```
//! use solver_core::{Broyden, Options, Status};
//!
//! let mut solver = Broyden::<4, 3, f64>::new();
//! let mut z = [0.0f64; 4];
//! let opts = Options { tol_rel: 1e-13, ..Options::DEFAULT };
//! let report = solver.solve(
//!     |z, out| {
//!         for (i, (o, zi)) in out.iter_mut().zip(z).enumerate() {
//!             *o = libm::cos(*zi) + 0.1 * i as f64;
//!         }
//!     },
//!     &mut z,
//!     &opts,
//! );
//! assert_eq!(report.status, Status::Converged);
//! assert!((z[0] - libm::cos(z[0])).abs() < 1e-12);
//! ```
//!
//! Run-time sizes over caller buffers, as sized by [`buffer_lens`]:
//!
//! ```
//! use solver_core::{BroydenSlices, Options, Solver, broyden};
//!
//! let (n, m) = (100, 8);
//! let [lu, lv, lw] = broyden::buffer_lens(n, m).unwrap();
//! let (mut u, mut v, mut w) = (vec![0.0f32; lu], vec![0.0f32; lv], vec![0.0f32; lw]);
//! let mut solver = BroydenSlices::from_slices(n, m, [&mut u, &mut v, &mut w]).unwrap();
//! let mut z = vec![0.0f32; n];
//! let mut f = |z: &[f32], out: &mut [f32]| {
//!     for (i, o) in out.iter_mut().enumerate() {
//!         *o = (0.5 * z[(i + 1) % 100]).tanh() + 0.01;
//!     }
//! };
//! let report = solver.solve(&mut f, &mut z, &Options::default()).unwrap();
//! assert!(report.status.is_converged());
//! ```

#[cfg(simd)]
mod ahead;
mod iteration;
pub mod ops;
mod slices;

pub use iteration::BroydenState;
#[cfg(simd)]
use ops::Ahead;
use ops::{Op, Reply, SliceVectors};

use crate::kernels::copy;
use crate::monitor::split_work;
use crate::options::{LengthError, Options, Report, SizeError, check_z};
use crate::solver::{Next, Solver, not_started};
use crate::storage::{Allocate, Storage, check_buffers, check_sizes, product};
use crate::{FromSlicesError, Real};

/// What to do with the history when all `M` slots are full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum History {
    /// Forget the oldest pair and keep the `M − 1` newest (limited-memory Broyden).
    DropOldest,
    /// Forget every pair and start again from `H = −I`.
    Restart,
}

/// Settings of [`Broyden`] beyond the common [`Options`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BroydenSettings<T = f32> {
    /// Policy when the history is full (a root solve's dense model, `n ≤ m`, is never
    /// full).
    pub history: History,
    /// Armijo backtracking on `‖g‖` (costs extra evaluations when a step is rejected).
    /// A root solve's dense model (`n ≤ m`) always backtracks, whatever this says.
    pub line_search: bool,
    /// Most halvings of the step per iteration when `line_search` is on, and most
    /// shortenings of a plain step that grew `‖g‖` in a root solve; for a dense model,
    /// most halvings of a step (three times as many right after its probes).
    pub max_backtracks: u8,
    /// An update is skipped when `|vᵀΔg| ≤ skip_tol·‖v‖·‖Δg‖`.
    pub skip_tol: T,
    /// A step that multiplies `‖g‖` by more than this is rejected: the iterate stays
    /// where it was and the history restarts, so the next step is a plain one
    /// (`H = −I`). Steps taken with an empty history are accepted, except in a root
    /// solve, which retries them shorter (see the module documentation).
    /// `INFINITY` accepts every step. Not used when `line_search` is on: the line
    /// search then decides which steps to take.
    pub reject_growth: T,
}

impl<T: Real> BroydenSettings<T> {
    /// The defaults: drop-oldest history, no line search (up to 4 halvings when
    /// enabled), `skip_tol = 1e-6`, steps rejected when they double `‖g‖`.
    pub const DEFAULT: Self = BroydenSettings {
        history: History::DropOldest,
        line_search: false,
        max_backtracks: 4,
        skip_tol: T::E_6,
        reject_growth: T::TWO,
    };
}

impl<T: Real> Default for BroydenSettings<T> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The Broyden solver over the storage `S` (its three buffers: `U`, `V`, the five work
/// vectors), in the float type `T`. Use it through its storage kinds: [`Broyden`]
/// (owned arrays), [`BroydenSlices`] (caller buffers), and `solver-host`'s `DynBroyden`
/// (heap). See the [module documentation](self) for the math.
#[derive(Clone, Debug)]
pub struct BroydenInner<S, T: Real = f32> {
    /// Solver settings; change them freely between solves.
    pub settings: BroydenSettings<T>,
    n: usize,
    m: usize,
    state: Option<BroydenState<T>>,
    /// Dot products the executor formed ahead, kept from one evaluation to the next
    /// (where the kernels fuse).
    #[cfg(simd)]
    ahead: Ahead<T>,
    storage: S,
}

/// The owned, const-sized storage of [`Broyden<N, M, T>`].
#[derive(Clone, Debug)]
pub struct BroydenArrays<const N: usize, const M: usize, T> {
    u: [[T; N]; M],
    v: [[T; N]; M],
    work: [[T; N]; 5],
}

impl<const N: usize, const M: usize, T> Storage<T, 3> for BroydenArrays<N, M, T> {
    fn buffers(&self) -> [&[T]; 3] {
        [self.u.as_flattened(), self.v.as_flattened(), self.work.as_flattened()]
    }

    fn buffers_mut(&mut self) -> [&mut [T]; 3] {
        [self.u.as_flattened_mut(), self.v.as_flattened_mut(), self.work.as_flattened_mut()]
    }
}

/// Broyden solver for `N` unknowns keeping at most `M` update pairs, in `T` (`f32`
/// unless given); its whole memory is [`Self::FOOTPRINT`] bytes.
pub type Broyden<const N: usize, const M: usize, T = f32> = BroydenInner<BroydenArrays<N, M, T>, T>;

/// The Broyden solver over caller buffers of run-time size ([`buffer_lens`] gives them).
pub type BroydenSlices<'a, T = f32> = BroydenInner<[&'a mut [T]; 3], T>;

/// Lengths of the three buffers (`U`, `V`, the work vectors) for `n` unknowns and `m`
/// pairs: `[m·n, m·n, 5·n]`.
pub fn buffer_lens(n: usize, m: usize) -> Result<[usize; 3], SizeError> {
    check_sizes(n, m)?;
    Ok([product(m, n)?, product(m, n)?, product(5, n)?])
}

/// The [`FOOTPRINT`](Broyden::FOOTPRINT) of `Broyden<n, m, T>` for sizes known only at
/// run time (`deq export` prints it): the arrays plus the scalars beside them. `None` on
/// a zero size or overflow.
pub fn footprint<T: Real>(n: usize, m: usize) -> Option<usize> {
    let arrays = BroydenInner::<(), T>::bytes_for(n, m)?;
    crate::storage::owned_bytes::<BroydenInner<(), T>, BroydenInner<[T; 1], T>, T>(arrays)
}

impl<const N: usize, const M: usize, T: Real> Broyden<N, M, T> {
    /// Size in bytes of the solver. Nothing else is allocated; a solve adds only a
    /// small, bounded stack frame.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(BroydenSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: BroydenSettings<T>) -> Self {
        const { assert!(N > 0, "Broyden needs N ≥ 1 unknowns") };
        const { assert!(M > 0, "Broyden needs room for M ≥ 1 update pairs") };
        let storage = BroydenArrays { u: [[T::ZERO; N]; M], v: [[T::ZERO; N]; M], work: [[T::ZERO; N]; 5] };
        BroydenInner {
            settings,
            n: N,
            m: M,
            state: None,
            #[cfg(simd)]
            ahead: Ahead::new(),
            storage,
        }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [T; N], opts: &Options<T>) -> Report<T>
    where
        F: FnMut(&[T; N], &mut [T; N]),
    {
        self.run(false, &mut crate::array_fn(&mut f), z, opts)
    }

    /// Finds `g(z) = 0` for a residual `g` given directly, starting from `z`.
    ///
    /// With `N ≤ M` the solver keeps a dense model: `H` starts as the inverse of a
    /// forward-difference Jacobian (`N` extra evaluations), every step is a line search
    /// on `‖g‖`, and the Jacobian is probed again when the steps stop making progress.
    /// With `N > M` the iteration starts from `H₀ = −γI`, with `γ` limiting the first
    /// step and refit from the secants. See the module documentation for both. When
    /// `∂g/∂z` is known roughly, precondition: pass `g̃ = −P g` with `P` an approximate
    /// inverse of `∂g/∂z` (the roots are the same), as the firmware's
    /// `inverse_kinematics` example does.
    ///
    /// ```
    /// use solver_core::{Broyden, Options, Status};
    ///
    /// // Rosenbrock's system from (−1.2, 1): g = (10(z₁ − z₀²), 1 − z₀), root (1, 1).
    /// let g = |z: &[f64; 2], out: &mut [f64; 2]| *out = [10.0 * (z[1] - z[0] * z[0]), 1.0 - z[0]];
    /// let mut z = [-1.2, 1.0];
    /// let opts = Options { tol_abs: 1e-10, tol_rel: 0.0, max_iters: 200, ..Options::DEFAULT };
    /// let report = Broyden::<2, 8, f64>::new().solve_root(g, &mut z, &opts);
    /// assert_eq!(report.status, Status::Converged);
    /// assert!((z[0] - 1.0).abs() < 1e-9 && (z[1] - 1.0).abs() < 1e-9);
    /// ```
    pub fn solve_root<F>(&mut self, mut g: F, z: &mut [T; N], opts: &Options<T>) -> Report<T>
    where
        F: FnMut(&[T; N], &mut [T; N]),
    {
        self.run(true, &mut crate::array_fn(&mut g), z, opts)
    }
}

impl<const N: usize, const M: usize, T: Real> Default for Broyden<N, M, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T: Real> BroydenSlices<'a, T> {
    /// The solver over caller buffers for `n` unknowns and `m` pairs, at least as long as
    /// [`buffer_lens`]`(n, m)`: `[U, V, work]`.
    pub fn from_slices(n: usize, m: usize, bufs: [&'a mut [T]; 3]) -> Result<Self, FromSlicesError> {
        check_buffers(&bufs, buffer_lens(n, m)?, ["u", "v", "work"])?;
        Ok(BroydenInner {
            settings: BroydenSettings::DEFAULT,
            n,
            m,
            state: None,
            #[cfg(simd)]
            ahead: Ahead::new(),
            storage: bufs,
        })
    }
}

impl<S: Allocate<T, 3>, T: Real> BroydenInner<S, T> {
    /// A solver for `n` unknowns keeping at most `m` update pairs, its buffers allocated
    /// here, once: a solve then allocates nothing.
    pub fn with_sizes(n: usize, m: usize) -> Result<Self, SizeError> {
        Self::allocated(n, m, buffer_lens(n, m)?)
    }

    /// A solver with default settings over buffers of these lengths, allocated here.
    fn allocated(n: usize, m: usize, lens: [usize; 3]) -> Result<Self, SizeError> {
        Ok(BroydenInner {
            settings: BroydenSettings::DEFAULT,
            n,
            m,
            state: None,
            #[cfg(simd)]
            ahead: Ahead::new(),
            storage: S::zeroed(lens)?,
        })
    }
}

impl<S: Allocate<f32, 3>> BroydenInner<S, f32> {
    /// [`with_sizes`](Self::with_sizes) with `U` and `V` kept in `bf16`
    /// ([`Bf16`](crate::kernels::Bf16), packed two to each `f32` of their buffers): the
    /// history takes half the memory, `2·m·n·2` bytes instead of `2·m·n·4`, and each
    /// iteration streams half the bytes of its reads of the history. The arithmetic stays
    /// `f32`: every row is widened exactly as it is read and rounded to nearest (ties to
    /// even) as it is written, and the step is formed from the new row as stored, so
    /// the step taken is that of the model kept.
    ///
    /// What it costs in f-evaluations is measured, not assumed (`half_table` in the
    /// benches: within 2 % on the project's suites). For `n ≤ m` the rows stay `f32`
    /// (there is nothing to save, and a root solve's dense model needs them exact):
    /// [`history_in_bf16`](Self::history_in_bf16) says which.
    ///
    /// ```
    /// use solver_core::{Options, Solver};
    /// # type DynBroyden = solver_core::BroydenInner<Heap, f32>;
    /// # struct Heap([Vec<f32>; 3]);
    /// # impl solver_core::storage::Storage<f32, 3> for Heap {
    /// #     fn buffers(&self) -> [&[f32]; 3] { [&self.0[0], &self.0[1], &self.0[2]] }
    /// #     fn buffers_mut(&mut self) -> [&mut [f32]; 3] { let [a, b, c] = &mut self.0; [a, b, c] }
    /// # }
    /// # impl solver_core::storage::Allocate<f32, 3> for Heap {
    /// #     fn zeroed(l: [usize; 3]) -> Result<Self, solver_core::SizeError> { Ok(Heap(l.map(|l| vec![0.0; l]))) }
    /// # }
    /// let (n, m) = (1000, 8);
    /// let mut half = DynBroyden::with_sizes_bf16(n, m).unwrap();
    /// let full = DynBroyden::with_sizes(n, m).unwrap();
    /// assert!(half.history_in_bf16());
    /// assert_eq!(full.memory_bytes() - half.memory_bytes(), 2 * m * n * 2);
    /// let mut z = vec![0.0f32; n];
    /// let mut f = |z: &[f32], out: &mut [f32]| {
    ///     for (i, o) in out.iter_mut().enumerate() {
    ///         *o = (0.5 * z[(i + 1) % n]).tanh() + 0.01;
    ///     }
    /// };
    /// assert!(half.solve(&mut f, &mut z, &Options::default()).unwrap().status.is_converged());
    /// ```
    pub fn with_sizes_bf16(n: usize, m: usize) -> Result<Self, SizeError> {
        let [lu, lv, lw] = buffer_lens(n, m)?;
        if n <= m {
            return Self::with_sizes(n, m);
        }
        Self::allocated(n, m, [lu.div_ceil(2), lv.div_ceil(2), lw])
    }
}

impl<S: Storage<T, 3>, T: Real> BroydenInner<S, T> {
    /// Whether the history's rows are kept in `bf16`
    /// ([`with_sizes_bf16`](BroydenInner::with_sizes_bf16)). The storage says it, with no
    /// field of its own: `U`'s buffer holds fewer than `m·n` entries only then (every
    /// other constructor asks for at least `m·n`), so an `f32` solver's size is
    /// unchanged.
    pub fn history_in_bf16(&self) -> bool {
        let [u, _, _] = self.storage.buffers();
        self.m.checked_mul(self.n).is_some_and(|len| u.len() < len)
    }
}

impl<S, T: Real> BroydenInner<S, T> {
    /// Bytes of the buffers of a solver for `n` unknowns and `m` pairs,
    /// `size_of::<T>()·n·(2m + 5)`; `None` on overflow or a zero size.
    pub fn bytes_for(n: usize, m: usize) -> Option<usize> {
        let lens = buffer_lens(n, m).ok()?;
        lens.iter().try_fold(0usize, |acc, l| acc.checked_add(*l))?.checked_mul(T::BYTES)
    }

    /// Number of pairs the history holds.
    pub fn history(&self) -> usize {
        self.m
    }
}

impl<S: Storage<T, 3>, T: Real> BroydenInner<S, T> {
    /// Starts a resumable root solve (`g` given directly, as for `solve_root`) from `z`;
    /// then [`Solver::request`] / [`Solver::resume`] as for a fixed-point solve.
    pub fn start_root(&mut self, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        self.begin(true, z, opts)
    }

    /// Finds `g(z) = 0` for a residual `g` given directly (see [`Broyden::solve_root`]);
    /// `z` must have length `n`.
    pub fn solve_root_dyn(
        &mut self,
        g: &mut dyn FnMut(&[T], &mut [T]),
        z: &mut [T],
        opts: &Options<T>,
    ) -> Result<Report<T>, LengthError> {
        check_z(z.len(), self.n)?;
        Ok(self.run(true, g, z, opts))
    }

    /// Copies the start point into `X` and asks for its evaluation.
    fn begin(&mut self, root: bool, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        check_z(z.len(), self.n)?;
        let [_, _, work] = self.storage.buffers_mut();
        let [x] = split_work::<T, 1>(work, self.n);
        copy(z, x);
        #[cfg(simd)]
        self.ahead.forget();
        self.state = Some(BroydenState::started(&self.settings, root, self.n, self.m, opts));
        Ok(())
    }

    fn run(
        &mut self,
        root: bool,
        f: &mut dyn FnMut(&[T], &mut [T]),
        z: &mut [T],
        opts: &Options<T>,
    ) -> Report<T> {
        if self.begin(root, z, opts).is_err() {
            return not_started();
        }
        loop {
            let (x, out) = self.request();
            f(x, out);
            if let Next::Done(report) = self.resume(z) {
                return report;
            }
        }
    }
}

/// Runs `state` on `vectors` until it asks for an evaluation or is done.
#[inline(always)]
fn drive<T: Real, E: crate::kernels::RowElem<T>>(
    state: &mut BroydenState<T>,
    mut vectors: SliceVectors<'_, T, E>,
) -> Next<T> {
    let mut reply = Reply::None;
    loop {
        match state.advance(reply) {
            op @ Op::Evaluate { .. } => {
                // The caller writes `f` of the point: the executor forgets what that
                // makes stale.
                vectors.execute(&op);
                return Next::Evaluate;
            }
            Op::Done(report) => return Next::Done(report),
            op => reply = vectors.run(op),
        }
    }
}

impl<S: Storage<T, 3>, T: Real> Solver<T> for BroydenInner<S, T> {
    fn dim(&self) -> usize {
        self.n
    }

    fn memory_bytes(&self) -> usize {
        self.storage.buffers().iter().map(|b| b.len()).sum::<usize>() * T::BYTES
    }

    fn start(&mut self, z: &[T], opts: &Options<T>) -> Result<(), LengthError> {
        self.begin(false, z, opts)
    }

    fn request(&mut self) -> (&[T], &mut [T]) {
        let Some(state) = &self.state else { return (&[], &mut []) };
        // `(X, G)` or `(Xn, Gn)`: two neighbouring work vectors.
        let first = state.evaluation().0.work_index().unwrap_or(0);
        let [_, _, work] = self.storage.buffers_mut();
        let n = self.n;
        let pair = first.checked_mul(n).and_then(|at| work.get_mut(at..)).unwrap_or_default();
        let [x, g] = split_work::<T, 2>(pair, n);
        (x, g)
    }

    fn resume(&mut self, z: &mut [T]) -> Next<T> {
        let half = self.history_in_bf16();
        let Some(state) = self.state.as_mut() else { return Next::Done(not_started()) };
        let [u, v, work] = self.storage.buffers_mut();
        if half {
            let vectors = SliceVectors::new(self.n, T::half_rows(u), T::half_rows(v), work, z);
            #[cfg(simd)]
            let vectors = vectors.keeping(&mut self.ahead);
            return drive(state, vectors);
        }
        let vectors = SliceVectors::new(self.n, u, v, work, z);
        #[cfg(simd)]
        let vectors = vectors.keeping(&mut self.ahead);
        drive(state, vectors)
    }

    fn iterations(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.iterations())
    }

    fn best_residual(&self) -> (T, T) {
        self.state.as_ref().map_or((T::INFINITY, T::INFINITY), |s| s.best_residual())
    }
}
