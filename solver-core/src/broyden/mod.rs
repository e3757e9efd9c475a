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
//! method needs, done by [`kernels::low_rank_acc`](crate::kernels::low_rank_acc) in one fused pass per 8 pairs.
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
//! **Defaults, by measurement.** `benches/src/bin/policy_table.rs` runs every policy
//! and safeguard with M = 8 on the standard suite (tanh DEQ layers d = 16…1024,
//! ρ = 0.5…1.2; the H-equation; a linear map on which plain iteration diverges) and on
//! a ring map whose Jacobian is a scaled cyclic shift. Drop-oldest with step rejection
//! at growth 2 and no line search needed the fewest f-evaluations on 26 of the 29 suite
//! problems (at most 2 more on the others) and was the fastest M = 8 variant on the
//! ring map (518, against about 545 for plain iteration). The line search spent
//! evaluations on rejected trials (49 against 26 on the linear map); without step
//! rejection, drop-oldest wandered off and stalled on the ring map.
//!
//! # How the code is laid out
//!
//! The solve is split in two, so that the vector work can run elsewhere (a GPU, for a
//! whole batch) while the algorithm stays this one:
//!
//! * [`BroydenState`] (in `machine.rs`) makes every decision on scalars: the history's
//!   ring (`count`, `head`, which slot a new pair takes), the skip test on `vᵀΔg`, step
//!   rejection and its growth allowance, the line search, and the monitor's stopping
//!   tests. It asks for its vector work one [`ops::BroydenOp`] at a time and reads the
//!   answer from an [`ops::Reply`] (norms, `vᵀΔg`, finiteness flags).
//! * [`BroydenWork::execute`] (in `ops.rs`) carries each operation out on slices with
//!   the [`kernels`](crate::kernels). [`BroydenWork`]'s `resume` is the loop "advance the
//!   state, execute its operation" up to the next evaluation of `f`.
//!
//! To change the method, change the decisions in `machine.rs`; to change how a piece of
//! vector work is done, change `ops.rs` (and any other executor of the same operation,
//! such as solver-host's CUDA kernels, which must keep the semantics the operation's
//! documentation states).
//!
//! # Memory
//!
//! `Broyden<N, M>` holds `U`, `V` (`2·M·N` floats) and five work vectors (`z`, `g`, the
//! step, the trial point and its residual), all inside the struct:
//!
//! ```text
//!     FOOTPRINT = size_of::<Broyden<N, M>>() = 4·N·(2·M + 5) + size_of::<BroydenSettings>()
//! ```
//!
//! # Example
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

mod machine;
pub mod ops;

pub use machine::BroydenState;
use ops::{BroydenOp, Reply, Vector};

use crate::monitor::{Form, copy, split_vecs};
use crate::options::{Options, Report, WorkError, check_len, check_z};
use crate::step::{IntoRequest, Resume, Step, drive};

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
pub struct BroydenSettings {
    /// Policy when the history is full.
    pub history: History,
    /// Armijo backtracking on `‖g‖` (costs extra evaluations when a step is rejected).
    pub line_search: bool,
    /// Most halvings of the step per iteration when `line_search` is on.
    pub max_backtracks: u8,
    /// An update is skipped when `|vᵀΔg| ≤ skip_tol·‖v‖·‖Δg‖`.
    pub skip_tol: f32,
    /// A step that multiplies `‖g‖` by more than this is rejected: the iterate stays
    /// where it was and the history restarts, so the next step is a plain one
    /// (`H = −I`). Steps taken with an empty history are always accepted.
    /// `f32::INFINITY` accepts every step. Not used when `line_search` is on: the line
    /// search then decides which steps to take.
    pub reject_growth: f32,
}

impl BroydenSettings {
    /// The defaults: drop-oldest history, no line search (up to 4 halvings when
    /// enabled), `skip_tol = 1e-6`, steps rejected when they double `‖g‖`.
    pub const DEFAULT: BroydenSettings = BroydenSettings {
        history: History::DropOldest,
        line_search: false,
        max_backtracks: 4,
        skip_tol: 1e-6,
        reject_growth: 2.0,
    };
}

impl Default for BroydenSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Broyden solver for `N` unknowns keeping at most `M` update pairs; its whole memory
/// is [`Self::FOOTPRINT`] bytes. See the [module documentation](self) for the math.
#[derive(Clone)]
pub struct Broyden<const N: usize, const M: usize> {
    /// Solver settings; change them freely between solves.
    pub settings: BroydenSettings,
    u: [[f32; N]; M],
    v: [[f32; N]; M],
    vecs: [[f32; N]; 5],
}

impl<const N: usize, const M: usize> Broyden<N, M> {
    /// Size in bytes of the solver: `4·N·(2·M + 5) + size_of::<BroydenSettings>()`.
    /// Nothing else is allocated; a solve adds only a small, bounded stack frame.
    pub const FOOTPRINT: usize = core::mem::size_of::<Self>();

    /// A solver with default settings, usable in a `static`.
    pub const fn new() -> Self {
        Self::with_settings(BroydenSettings::DEFAULT)
    }

    /// A solver with the given settings.
    pub const fn with_settings(settings: BroydenSettings) -> Self {
        const { assert!(N > 0, "Broyden needs N ≥ 1 unknowns") };
        const { assert!(M > 0, "Broyden needs room for M ≥ 1 update pairs") };
        Broyden { settings, u: [[0.0; N]; M], v: [[0.0; N]; M], vecs: [[0.0; N]; 5] }
    }

    /// Finds `z = f(z)` starting from `z`, leaving in `z` the best iterate found.
    pub fn solve<F>(&mut self, mut f: F, z: &mut [f32; N], opts: &Options) -> Report
    where
        F: FnMut(&[f32; N], &mut [f32; N]),
    {
        let settings = self.settings;
        self.work().run(&settings, Form::FixedPoint, &mut crate::array_fn(&mut f), z, opts)
    }

    /// Finds `g(z) = 0` for a residual `g` given directly, starting from `z`.
    ///
    /// The iteration starts from `H = −I`, the inverse Jacobian of a fixed-point
    /// residual `f(z) − z`. When `∂g/∂z` is far from `−I`, precondition: pass
    /// `g̃ = −P g` with `P` an approximate inverse of `∂g/∂z` (the roots are the same),
    /// as the firmware's `inverse_kinematics` example does.
    pub fn solve_root<F>(&mut self, mut g: F, z: &mut [f32; N], opts: &Options) -> Report
    where
        F: FnMut(&[f32; N], &mut [f32; N]),
    {
        let settings = self.settings;
        self.work().run(&settings, Form::Root, &mut crate::array_fn(&mut g), z, opts)
    }

    fn work(&mut self) -> BroydenWork<'_> {
        BroydenWork {
            n: N,
            m: M,
            u: self.u.as_flattened_mut(),
            v: self.v.as_flattened_mut(),
            vecs: self.vecs.as_flattened_mut(),
        }
    }
}

impl<const N: usize, const M: usize> Default for Broyden<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

/// The Broyden solver over caller-supplied buffers of run-time size: the form used by
/// `solver-host`. [`Broyden`] is this plus owned, const-sized storage.
pub struct BroydenWork<'a> {
    n: usize,
    m: usize,
    u: &'a mut [f32],
    v: &'a mut [f32],
    vecs: &'a mut [f32],
}

impl<'a> BroydenWork<'a> {
    /// Floats needed for `vecs` (five work vectors) with `n` unknowns.
    pub const fn vecs_len(n: usize) -> usize {
        n.saturating_mul(5)
    }

    /// Wraps buffers for `n` unknowns and `m` pairs: `u` and `v` of at least `m·n`
    /// floats, `vecs` of at least [`Self::vecs_len`]`(n)`.
    pub fn new(
        n: usize,
        m: usize,
        u: &'a mut [f32],
        v: &'a mut [f32],
        vecs: &'a mut [f32],
    ) -> Result<Self, WorkError> {
        let mn = m.saturating_mul(n);
        check_len("u", u.len(), mn)?;
        check_len("v", v.len(), mn)?;
        check_len("vecs", vecs.len(), Self::vecs_len(n))?;
        if m == 0 {
            return Err(WorkError { what: "m", expected: 1, got: 0 });
        }
        Ok(BroydenWork { n, m, u, v, vecs })
    }

    /// Finds `z = f(z)`; `z` must have length `n`.
    pub fn solve(
        &mut self,
        settings: &BroydenSettings,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let mut state = self.start(settings, z, opts)?;
        Ok(drive(self, &mut state, f, z))
    }

    /// Finds `g(z) = 0`; `z` must have length `n`.
    pub fn solve_root(
        &mut self,
        settings: &BroydenSettings,
        g: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Result<Report, WorkError> {
        let mut state = self.start_root(settings, z, opts)?;
        Ok(drive(self, &mut state, g, z))
    }

    /// Starts a resumable fixed-point solve from `z` (length `n`); see [`crate::step`].
    pub fn start(
        &mut self,
        settings: &BroydenSettings,
        z: &[f32],
        opts: &Options,
    ) -> Result<BroydenState, WorkError> {
        check_z(z, self.n)?;
        Ok(self.begin(settings, Form::FixedPoint, z, opts))
    }

    /// Starts a resumable root solve (`g` given directly, as for
    /// [`solve_root`](Self::solve_root)) from `z` (length `n`).
    pub fn start_root(
        &mut self,
        settings: &BroydenSettings,
        z: &[f32],
        opts: &Options,
    ) -> Result<BroydenState, WorkError> {
        check_z(z, self.n)?;
        Ok(self.begin(settings, Form::Root, z, opts))
    }

    /// Copies the start point and asks for its evaluation. Sizes are consistent here
    /// (checked by the constructors and by `start`, or by the const-generic types).
    fn begin(&mut self, s: &BroydenSettings, form: Form, z: &[f32], opts: &Options) -> BroydenState {
        let [x] = split_vecs::<1>(self.vecs, self.n);
        copy(z, x);
        BroydenState::new(s, form == Form::Root, self.m, opts)
    }

    /// The same workspace over the same buffers, borrowed for a shorter time.
    fn reborrow(&mut self) -> BroydenWork<'_> {
        BroydenWork { n: self.n, m: self.m, u: &mut *self.u, v: &mut *self.v, vecs: &mut *self.vecs }
    }

    fn run(
        &mut self,
        s: &BroydenSettings,
        form: Form,
        f: &mut dyn FnMut(&[f32], &mut [f32]),
        z: &mut [f32],
        opts: &Options,
    ) -> Report {
        let mut state = self.begin(s, form, z, opts);
        drive(self, &mut state, f, z)
    }
}

impl Resume for BroydenWork<'_> {
    type State = BroydenState;

    fn request(&mut self, state: &BroydenState) -> (&[f32], &mut [f32]) {
        self.reborrow().into_request(state)
    }

    fn resume(&mut self, state: &mut BroydenState, z: &mut [f32]) -> Step {
        // The evaluation asked for is done; carry out the vector work up to the next.
        let mut reply = Reply::None;
        loop {
            match state.advance(reply) {
                BroydenOp::Evaluate { .. } => return Step::Evaluate,
                BroydenOp::Done(report) => return Step::Done(report),
                op => reply = self.execute(&op, z),
            }
        }
    }
}

impl<'a> IntoRequest<'a> for BroydenWork<'a> {
    fn into_request(self, state: &BroydenState) -> (&'a [f32], &'a mut [f32]) {
        let [x, g, _, xn, gn] = split_vecs::<5>(self.vecs, self.n);
        match state.op() {
            BroydenOp::Evaluate { point: Vector::Xn, .. } => (xn, gn),
            _ => (x, g),
        }
    }
}
