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
//! method needs, done by [`kernels::low_rank_acc`] in one fused pass per 8 pairs.
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

use crate::kernels;
use crate::monitor::{Eval, Form, Monitor, copy, next_slot, residual, split_vecs};
use crate::options::{Options, Report, Status, WorkError, check_len, check_z};
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
        BroydenState {
            settings: *s,
            form,
            mon: Monitor::new(opts),
            phase: Phase::Start,
            count: 0,
            head: 0,
            cur: Eval { abs: f32::INFINITY, scale: 0.0 },
            allowed_growth: s.reject_growth,
            alpha: 1.0,
            tries: 0,
        }
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

/// Where a resumable Broyden solve stands between two evaluations: a small plain value
/// (the monitor's counters, the history's fill level, the step length being tried).
#[derive(Clone, Copy, Debug)]
pub struct BroydenState {
    settings: BroydenSettings,
    form: Form,
    mon: Monitor,
    phase: Phase,
    count: usize,
    head: usize,
    /// Residual norm and scale at the current iterate `x`.
    cur: Eval,
    allowed_growth: f32,
    alpha: f32,
    tries: u8,
}

/// Which evaluation a Broyden solve waits for.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `f` of the start point, into `g`.
    Start,
    /// `f` of the trial point `x + αp`, into `gn`.
    Trial,
    /// The solve has ended.
    Done(Report),
}

impl Resume for BroydenWork<'_> {
    type State = BroydenState;

    fn request(&mut self, state: &BroydenState) -> (&[f32], &mut [f32]) {
        self.reborrow().into_request(state)
    }

    fn resume(&mut self, state: &mut BroydenState, z: &mut [f32]) -> Step {
        let n = self.n;
        let [x, g, p, xn, gn] = split_vecs::<5>(self.vecs, n);
        let mut hist =
            Hist { u: &mut *self.u, v: &mut *self.v, n, m: self.m, count: state.count, head: state.head };
        let step = state.advance(&mut hist, [x, g, p, xn, gn], z);
        state.count = hist.count;
        state.head = hist.head;
        if let Step::Done(report) = step {
            state.phase = Phase::Done(report);
        }
        step
    }
}

impl<'a> IntoRequest<'a> for BroydenWork<'a> {
    fn into_request(self, state: &BroydenState) -> (&'a [f32], &'a mut [f32]) {
        let [x, g, _, xn, gn] = split_vecs::<5>(self.vecs, self.n);
        match state.phase {
            Phase::Trial => (xn, gn),
            Phase::Start | Phase::Done(_) => (x, g),
        }
    }
}

impl BroydenState {
    /// The iteration, from the evaluation just made to the next one requested. The
    /// vectors are the current iterate `x`, its residual `g`, the step `p`, and the
    /// trial point `xn` with its residual `gn`.
    fn advance(&mut self, hist: &mut Hist<'_>, vecs: [&mut [f32]; 5], z: &mut [f32]) -> Step {
        let [x, g, p, xn, gn] = vecs;
        let s = self.settings;
        match self.phase {
            Phase::Done(report) => return Step::Done(report),
            Phase::Start => {
                let e = residual(self.form, x, g);
                if let Some(st) = self.mon.observe(x, g, e, z) {
                    return Step::Done(self.mon.finish(st));
                }
                self.cur = e;
            }
            Phase::Trial => {
                let next = residual(self.form, xn, gn);
                if let Some(st) = self.mon.observe(xn, gn, next, z) {
                    return Step::Done(self.mon.stop_in_iteration(st));
                }
                // Armijo backtracking, when enabled: halve α until ‖g‖ falls enough
                // (both norms are finite here: `observe` ends the solve otherwise).
                if s.line_search && next.abs > (1.0 - 1e-4 * self.alpha) * self.cur.abs {
                    if self.tries < s.max_backtracks {
                        self.tries += 1;
                        self.alpha *= 0.5;
                        trial_point(xn, x, p, self.alpha);
                        return Step::Evaluate;
                    }
                    // No trial passed: take the last one and restart the history.
                    if hist.count > 0 {
                        hist.clear();
                        self.mon.restarts += 1;
                    }
                }
                if !s.line_search && next.abs > self.allowed_growth * self.cur.abs && hist.count > 0 {
                    // Rejected: the iterate stays, the history restarts. Each rejection
                    // doubles the growth tolerated until the residual improves again, so
                    // a map whose quasi-Newton steps are transiently uphill is not
                    // stopped forever.
                    hist.clear();
                    self.mon.restarts += 1;
                    self.allowed_growth *= 2.0;
                    if let Some(st) = self.mon.end_iteration() {
                        return Step::Done(self.mon.finish(st));
                    }
                    return self.next_step(hist, x, g, p, xn);
                }
                if self.mon.diverged(next.abs) {
                    return Step::Done(self.mon.stop_in_iteration(Status::Diverged));
                }
                if next.abs < self.cur.abs && hist.count > 0 {
                    // A quasi-Newton step (not a plain one) made progress: re-arm.
                    self.allowed_growth = s.reject_growth;
                }
                // Δz into p and Δg into g; x takes the new point, which frees xn as
                // scratch for the update.
                for ((pi, xni), xi) in p.iter_mut().zip(&*xn).zip(&*x) {
                    *pi = xni - xi;
                }
                for (gi, gni) in g.iter_mut().zip(&*gn) {
                    *gi = gni - *gi;
                }
                copy(xn, x);
                if hist.update(&s, p, g, xn) {
                    self.mon.restarts += 1;
                }
                copy(gn, g);
                self.cur = next;
                if let Some(st) = self.mon.end_iteration() {
                    return Step::Done(self.mon.finish(st));
                }
            }
        }
        self.next_step(hist, x, g, p, xn)
    }

    /// Starts an iteration: the step `p = −H g = g − U(Vᵀg)` and its trial point.
    fn next_step(
        &mut self,
        hist: &mut Hist<'_>,
        x: &[f32],
        g: &[f32],
        p: &mut [f32],
        xn: &mut [f32],
    ) -> Step {
        if !self.mon.may_iterate() {
            return Step::Done(self.mon.finish(Status::MaxIterations));
        }
        copy(g, p);
        hist.apply(-1.0, g, p);
        if !p.iter().all(|v| v.is_finite()) {
            // H g overflowed: never evaluate f there. Restart with H = −I.
            hist.clear();
            self.mon.restarts += 1;
            copy(g, p);
        }
        self.alpha = 1.0;
        self.tries = 0;
        trial_point(xn, x, p, 1.0);
        self.phase = Phase::Trial;
        Step::Evaluate
    }
}

/// `xn ← x + α p`.
fn trial_point(xn: &mut [f32], x: &[f32], p: &[f32], alpha: f32) {
    for ((t, xi), pi) in xn.iter_mut().zip(x).zip(p) {
        *t = xi + alpha * pi;
    }
}

/// The stored pairs: rows `0..count` of `u` and `v` are in use; `head` is the slot the
/// next pair goes to (the oldest pair once all `m` are in use).
struct Hist<'a> {
    u: &'a mut [f32],
    v: &'a mut [f32],
    n: usize,
    m: usize,
    count: usize,
    head: usize,
}

impl Hist<'_> {
    /// Forgets every pair: `H = −I`.
    fn clear(&mut self) {
        self.count = 0;
        self.head = 0;
    }

    /// `y ← y + alpha·U(Vᵀx)` over the stored pairs, so `H x = −x + U(Vᵀx)`.
    fn apply(&self, alpha: f32, x: &[f32], y: &mut [f32]) {
        let len = self.count * self.n;
        let (u, v) = (self.u.get(..len).unwrap_or(&[]), self.v.get(..len).unwrap_or(&[]));
        kernels::low_rank_acc(alpha, u, v, self.n, x, y);
    }

    /// Adds the pair for a step `dz` that changed the residual by `dg`, reducing the
    /// history first when it is full. `scratch` (length `n`) receives `v` before it is
    /// known to be worth storing. Returns whether the history was restarted.
    fn update(&mut self, s: &BroydenSettings, dz: &[f32], dg: &[f32], scratch: &mut [f32]) -> bool {
        let n = self.n;
        // The pairs that the new one is computed against: all stored pairs except the
        // slot it will take (the oldest when full), or none for a restart.
        let full = self.count == self.m;
        let restart = full && s.history == History::Restart;
        let (slot, kept_end) = if restart { (0, 0) } else { (self.head, self.count) };
        let Some((u_lo, u_s, u_hi)) = split_around(self.u, n, slot, kept_end) else {
            return false;
        };
        let Some((v_lo, v_s, v_hi)) = split_around(self.v, n, slot, kept_end) else {
            return false;
        };
        // v = Hᵀdz = −dz + V(Uᵀdz), into scratch.
        for (w, d) in scratch.iter_mut().zip(dz) {
            *w = -d;
        }
        kernels::low_rank_acc(1.0, v_lo, u_lo, n, dz, scratch);
        kernels::low_rank_acc(1.0, v_hi, u_hi, n, dz, scratch);
        let denom = kernels::dot(scratch, dg);
        // |cos(v, Δg)| = |vᵀΔg| / (‖v‖‖Δg‖), divided step by step so that tiny vectors
        // (iterates near a fixed point at 0) cannot underflow the test into passing.
        let cosine = denom / kernels::norm(scratch) / kernels::norm(dg);
        let inv = 1.0 / denom;
        if !(cosine.abs() > s.skip_tol && inv.is_finite()) {
            // Skipped: the history is left exactly as it was.
            return false;
        }
        // u = (dz − H dg) / (vᵀdg) = (dz + dg − U(Vᵀdg)) / (vᵀdg), into its slot.
        for ((w, d), e) in u_s.iter_mut().zip(dz).zip(dg) {
            *w = d + e;
        }
        kernels::low_rank_acc(-1.0, u_lo, v_lo, n, dg, u_s);
        kernels::low_rank_acc(-1.0, u_hi, v_hi, n, dg, u_s);
        let mut finite = true;
        for w in u_s.iter_mut() {
            *w *= inv;
            finite &= w.is_finite();
        }
        if !finite {
            // u overflowed. Its slot (free, or the oldest pair once full) is already
            // overwritten, so make the pair inert (v = 0: it adds u·0 to H) rather than
            // store a non-finite value. The history is then one pair shorter in effect.
            u_s.fill(0.0);
            v_s.fill(0.0);
            return false;
        }
        copy(scratch, v_s);
        if restart {
            self.count = 1;
            self.head = next_slot(0, self.m);
        } else {
            self.count = (self.count + 1).min(self.m);
            self.head = next_slot(self.head, self.m);
        }
        restart
    }
}

/// Splits row-major `buf` (rows of `n`) into rows `0..slot`, row `slot` and rows
/// `slot + 1..end`.
fn split_around(buf: &mut [f32], n: usize, slot: usize, end: usize) -> Option<(&[f32], &mut [f32], &[f32])> {
    let (lo, rest) = buf.split_at_mut_checked(slot.checked_mul(n)?)?;
    let (mid, hi) = rest.split_at_mut_checked(n)?;
    let hi_len = end.saturating_sub(slot + 1).checked_mul(n)?;
    Some((lo, mid, hi.get(..hi_len)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `H x = −x + U(Vᵀx)` over the stored pairs.
    fn h_times(h: &Hist<'_>, x: &[f32]) -> [f32; 5] {
        let mut y = [0.0f32; 5];
        for (yi, xi) in y.iter_mut().zip(x) {
            *yi = -xi;
        }
        h.apply(1.0, x, &mut y);
        y
    }

    fn pseudo_random(seed: u32, out: &mut [f32]) {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
        for o in out {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            *o = (s % 2000) as f32 / 1000.0 - 1.0;
        }
    }

    /// After every update, whatever the policy and however full the history, the
    /// newest secant condition `H Δg = Δz` holds.
    #[test]
    fn newest_secant_condition_holds_with_full_history() {
        for history in [History::DropOldest, History::Restart] {
            let s = BroydenSettings { history, ..BroydenSettings::DEFAULT };
            let (mut u, mut v) = ([0.0f32; 15], [0.0f32; 15]);
            let mut h = Hist { u: &mut u, v: &mut v, n: 5, m: 3, count: 0, head: 0 };
            let mut scratch = [0.0f32; 5];
            let mut restarts = 0;
            for k in 0..10u32 {
                let (mut dz, mut dg) = ([0.0f32; 5], [0.0f32; 5]);
                pseudo_random(2 * k + 1, &mut dz);
                pseudo_random(2 * k + 2, &mut dg);
                // Δg roughly −Δz, as for a mild map, keeps denominators sane.
                for (g, z) in dg.iter_mut().zip(&dz) {
                    *g = 0.3 * *g - z;
                }
                restarts += u32::from(h.update(&s, &dz, &dg, &mut scratch));
                let hdg = h_times(&h, &dg);
                for (a, b) in hdg.iter().zip(&dz) {
                    assert!((a - b).abs() < 1e-4, "{history:?} step {k}: H Δg = {hdg:?}, Δz = {dz:?}");
                }
                assert!(h.count <= 3);
            }
            assert_eq!(h.count, if history == History::Restart { 1 } else { 3 });
            assert_eq!(restarts > 0, history == History::Restart);
        }
    }

    /// An update with a zero denominator is skipped and leaves the history intact.
    #[test]
    fn degenerate_update_is_skipped() {
        let s = BroydenSettings::DEFAULT;
        let (mut u, mut v) = ([0.0f32; 10], [0.0f32; 10]);
        let mut h = Hist { u: &mut u, v: &mut v, n: 5, m: 2, count: 0, head: 0 };
        let mut scratch = [0.0f32; 5];
        h.update(&s, &[1.0, 0.0, 0.0, 0.0, 0.0], &[-1.0, 0.5, 0.0, 0.0, 0.0], &mut scratch);
        assert_eq!(h.count, 1);
        let snap = |h: &Hist<'_>| {
            let (mut a, mut b) = ([0.0f32; 10], [0.0f32; 10]);
            a.copy_from_slice(h.u);
            b.copy_from_slice(h.v);
            (a, b)
        };
        let before = snap(&h);
        // v = −Δz (H = −I + …) is orthogonal to Δg: vᵀΔg = 0.
        let mut probe = [0.0f32; 5];
        probe[2] = 1.0;
        h.update(&s, &probe, &[0.0, 0.0, 0.0, 1.0, 0.0], &mut scratch);
        assert_eq!((h.count, h.head), (1, 1));
        assert_eq!(snap(&h), before);
        // Non-finite input is skipped too.
        h.update(&s, &[f32::NAN; 5], &[1.0; 5], &mut scratch);
        assert_eq!(h.count, 1);
        assert!(h.u.iter().chain(h.v.iter()).all(|x| x.is_finite()));
    }
}
