//! The decisions of a Broyden solve: a state machine over scalars that asks for its
//! vector work one [`BroydenOp`] at a time.
//!
//! One iteration, with the default settings, asks for:
//!
//! ```text
//!     Step      p ← g − U(Vᵀg)                       → is p finite?
//!     Trial     xn ← x + α·p                         (p ← g first after a restart)
//!     Evaluate  gn ← f(xn)
//!     Residual  gn ← gn − xn, ‖gn‖, ‖f(xn)‖          → converged? best? rejected?
//!     KeepBest  z ← xn                               (when xn is the best so far)
//!     Accept    Δz, Δg, x ← xn, v = HᵀΔz             → vᵀΔg, ‖v‖, ‖Δg‖: skip the update?
//!     NewU      u = (Δz − HΔg)/(vᵀΔg)                → is u finite?
//!     Finish    store (u, v) in its slot, g ← gn
//! ```
//!
//! and everything else (the history's ring, step rejection, the line search, the
//! monitor's counters and stopping tests) happens here, on scalars.

use super::ops::{BroydenOp, Pairs, Reply, Store, Vector};
use super::{BroydenSettings, History};
use crate::monitor::{Eval, Monitor, next_slot};
use crate::options::{Options, Report, Status};

/// Where a resumable Broyden solve stands: a small plain value (the monitor's counters,
/// the history's fill level, the step length being tried, the operation it waits for).
#[derive(Clone, Copy, Debug)]
pub struct BroydenState {
    settings: BroydenSettings,
    root: bool,
    /// Slots in the history.
    m: usize,
    mon: Monitor,
    phase: Phase,
    /// Pairs in use (rows `0..count`) and the slot the next one goes to (the oldest
    /// once all `m` are in use).
    count: usize,
    head: usize,
    /// Residual norm and scale at the current iterate `x`.
    cur: Eval,
    /// The same at the point just evaluated.
    next: Eval,
    allowed_growth: f32,
    alpha: f32,
    tries: u8,
}

/// The operation a Broyden solve waits for, with what its decision needs.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// `f` of the start point (`trial == false`) or of the trial point.
    Evaluate { trial: bool },
    /// Its residual and norms.
    Residual { trial: bool },
    /// Its copy to `z`; `stop` ends the solve afterwards.
    KeepBest { trial: bool, stop: Option<Status> },
    /// The trial point.
    Trial { reset: bool },
    /// The accepted step and the candidate `v`, for the pair going to `slot`, computed
    /// against the pairs `0..kept` other than `slot`; `restart` when the history is
    /// being restarted for it.
    Accept { slot: usize, kept: usize, restart: bool },
    /// The new `u`.
    NewU { slot: usize, kept: usize, restart: bool, inv: f32 },
    /// The end of the update; `restart` counts a history restart.
    Finish { store: Store, restart: bool },
    /// The quasi-Newton step.
    Step,
    /// The solve has ended.
    Done(Report),
}

impl BroydenState {
    /// Iterations taken so far (the `iterations` its report will give).
    pub fn iterations(&self) -> u32 {
        self.mon.iterations
    }

    /// `(residual_abs, residual_rel)` of the best iterate so far, the one the caller's `z`
    /// holds (as its report will give them): `(∞, ∞)` before any finite evaluation.
    pub fn best_residual(&self) -> (f32, f32) {
        self.mon.best()
    }

    /// A solve whose first operation is `Evaluate { X, G }`: the caller must have put
    /// the start point in `X` (and its best-iterate buffer `z`).
    pub(super) fn new(settings: &BroydenSettings, root: bool, m: usize, opts: &Options) -> Self {
        BroydenState {
            settings: *settings,
            root,
            m,
            mon: Monitor::new(opts),
            phase: Phase::Evaluate { trial: false },
            count: 0,
            head: 0,
            cur: Eval { abs: f32::INFINITY, scale: 0.0 },
            next: Eval { abs: f32::INFINITY, scale: 0.0 },
            allowed_growth: settings.reject_growth,
            alpha: 1.0,
            tries: 0,
        }
    }

    /// A fixed-point solve (`g = f(x) − x`) with room for `m` pairs, for a caller that
    /// keeps the vectors itself (see [`ops`](super::ops)): put the start point in `X` and
    /// in `z`, then carry out [`op`](Self::op) and feed its reply to
    /// [`advance`](Self::advance) until [`BroydenOp::Done`]. `None` when `m == 0`.
    pub fn detached(settings: &BroydenSettings, m: usize, opts: &Options) -> Option<Self> {
        (m > 0).then(|| Self::new(settings, false, m, opts))
    }

    /// The operation the solve waits for.
    pub fn op(&self) -> BroydenOp {
        let pt = |trial: bool| if trial { (Vector::Xn, Vector::Gn) } else { (Vector::X, Vector::G) };
        match self.phase {
            Phase::Evaluate { trial } => BroydenOp::Evaluate { point: pt(trial).0, out: pt(trial).1 },
            Phase::Residual { trial } => {
                BroydenOp::Residual { x: pt(trial).0, g: pt(trial).1, root: self.root }
            }
            Phase::KeepBest { trial, .. } => BroydenOp::KeepBest { from: pt(trial).0 },
            Phase::Trial { reset } => BroydenOp::Trial { reset, alpha: self.alpha },
            Phase::Accept { slot, kept, .. } => {
                BroydenOp::Accept { pairs: Pairs { end: kept, skip: Some(slot) } }
            }
            Phase::NewU { slot, kept, inv, .. } => {
                BroydenOp::NewU { slot, pairs: Pairs { end: kept, skip: Some(slot) }, inv }
            }
            Phase::Finish { store, .. } => BroydenOp::Finish { store },
            Phase::Step => BroydenOp::Step { count: self.count },
            Phase::Done(report) => BroydenOp::Done(report),
        }
    }

    /// Takes the reply to [`op`](Self::op) (carried out by the caller) and returns the
    /// next operation. A reply of the wrong kind reads as non-finite values, which ends
    /// the solve with [`Status::NonFinite`] or skips the update, never a panic. After
    /// [`BroydenOp::Done`] the same report is returned again.
    pub fn advance(&mut self, reply: Reply) -> BroydenOp {
        self.phase = self.decide(reply);
        self.op()
    }

    /// The phase after the current one, given its reply.
    fn decide(&mut self, reply: Reply) -> Phase {
        let s = self.settings;
        match self.phase {
            Phase::Done(report) => Phase::Done(report),
            Phase::Evaluate { trial } => Phase::Residual { trial },
            Phase::Residual { trial } => {
                let (abs, scale, finite) = match reply {
                    Reply::Residual { abs, scale, finite } => (abs, scale, finite),
                    _ => (f32::NAN, f32::NAN, false),
                };
                self.next = Eval { abs, scale };
                let (best, stop) = self.mon.judge(self.next, || finite);
                if best { Phase::KeepBest { trial, stop } } else { self.observed(trial, stop) }
            }
            Phase::KeepBest { trial, stop } => self.observed(trial, stop),
            Phase::Trial { .. } => Phase::Evaluate { trial: true },
            Phase::Accept { slot, kept, restart } => {
                let (vg, v_norm, g_norm) = match reply {
                    Reply::Dots { vg, v_norm, g_norm } => (vg, v_norm, g_norm),
                    _ => (f32::NAN, f32::NAN, f32::NAN),
                };
                // |cos(v, Δg)| = |vᵀΔg| / (‖v‖‖Δg‖), divided step by step so that tiny
                // vectors (iterates near a fixed point at 0) cannot underflow the test
                // into passing.
                let cosine = vg / v_norm / g_norm;
                let inv = 1.0 / vg;
                if cosine.abs() > s.skip_tol && inv.is_finite() {
                    Phase::NewU { slot, kept, restart, inv }
                } else {
                    // Skipped: the history is left exactly as it was.
                    Phase::Finish { store: Store::Nothing, restart: false }
                }
            }
            Phase::NewU { slot, restart, .. } => {
                if reply != Reply::Finite(true) {
                    // u overflowed. Its slot (free, or the oldest pair once full) is
                    // already overwritten, so make the pair inert (v = 0: it adds u·0 to
                    // H) rather than store a non-finite value.
                    return Phase::Finish { store: Store::Zero(slot), restart: false };
                }
                if restart {
                    self.count = 1;
                    self.head = next_slot(0, self.m);
                } else {
                    self.count = (self.count + 1).min(self.m);
                    self.head = next_slot(self.head, self.m);
                }
                Phase::Finish { store: Store::Keep(slot), restart }
            }
            Phase::Finish { restart, .. } => {
                if restart {
                    self.mon.restarts += 1;
                }
                self.cur = self.next;
                if let Some(st) = self.mon.end_iteration() {
                    return Phase::Done(self.mon.finish(st));
                }
                self.step()
            }
            Phase::Step => {
                let finite = reply == Reply::Finite(true);
                if !finite {
                    // H g overflowed: never evaluate f there. Restart with H = −I.
                    self.clear();
                    self.mon.restarts += 1;
                }
                self.alpha = 1.0;
                self.tries = 0;
                Phase::Trial { reset: !finite }
            }
        }
    }

    /// After the residual of a point was judged (and the point kept as the best, when it
    /// is): the stop, or the rest of the iteration.
    fn observed(&mut self, trial: bool, stop: Option<Status>) -> Phase {
        match (trial, stop) {
            (false, Some(st)) => Phase::Done(self.mon.finish(st)),
            (true, Some(st)) => Phase::Done(self.mon.stop_in_iteration(st)),
            (false, None) => {
                self.cur = self.next;
                self.step()
            }
            (true, None) => self.judge_trial(),
        }
    }

    /// The trial point was evaluated and is finite: backtrack, reject, stop on
    /// divergence or accept it and update the history.
    fn judge_trial(&mut self) -> Phase {
        let s = self.settings;
        let (next, cur) = (self.next.abs, self.cur.abs);
        // Armijo backtracking, when enabled: halve α until ‖g‖ falls enough.
        if s.line_search && next > (1.0 - 1e-4 * self.alpha) * cur {
            if self.tries < s.max_backtracks {
                self.tries += 1;
                self.alpha *= 0.5;
                return Phase::Trial { reset: false };
            }
            // No trial passed: take the last one and restart the history.
            if self.count > 0 {
                self.clear();
                self.mon.restarts += 1;
            }
        }
        if !s.line_search && next > self.allowed_growth * cur && self.count > 0 {
            // Rejected: the iterate stays, the history restarts. Each rejection doubles
            // the growth tolerated until the residual improves again, so a map whose
            // quasi-Newton steps are transiently uphill is not stopped forever.
            self.clear();
            self.mon.restarts += 1;
            self.allowed_growth *= 2.0;
            if let Some(st) = self.mon.end_iteration() {
                return Phase::Done(self.mon.finish(st));
            }
            return self.step();
        }
        if self.mon.diverged(next) {
            return Phase::Done(self.mon.stop_in_iteration(Status::Diverged));
        }
        if next < cur && self.count > 0 {
            // A quasi-Newton step (not a plain one) made progress: re-arm.
            self.allowed_growth = s.reject_growth;
        }
        self.accept()
    }

    /// Takes the evaluated trial point and starts the update of the history. The new
    /// pair goes to `head` and is computed against the other stored pairs; when the
    /// history is full it first drops the oldest (the slot at `head`) or, with
    /// `History::Restart`, all of them.
    fn accept(&self) -> Phase {
        if self.count == self.m && self.settings.history == History::Restart {
            Phase::Accept { slot: 0, kept: 0, restart: true }
        } else {
            Phase::Accept { slot: self.head, kept: self.count, restart: false }
        }
    }

    /// Starts an iteration, if the budget allows.
    fn step(&mut self) -> Phase {
        if self.mon.may_iterate() { Phase::Step } else { Phase::Done(self.mon.finish(Status::MaxIterations)) }
    }

    /// Forgets every pair: `H = −I`.
    fn clear(&mut self) {
        self.count = 0;
        self.head = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::BroydenWork;
    use super::*;

    /// `H x = −x + U(Vᵀx)` over the first `count` pairs.
    fn h_times(u: &[f32], v: &[f32], count: usize, x: &[f32; 5]) -> [f32; 5] {
        let mut y = x.map(|xi| -xi);
        crate::kernels::low_rank_acc(1.0, &u[..count * 5], &v[..count * 5], 5, x, &mut y);
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

    /// Runs one history update for a step `dz` that changed the residual by `dg`:
    /// from the accepted trial point through `Accept`, `NewU` and `Finish` to the next
    /// `Step`. Returns whether the history was restarted.
    fn update(state: &mut BroydenState, work: &mut BroydenWork<'_>, dz: &[f32; 5], dg: &[f32; 5]) -> bool {
        // x = g = 0, xn = Δz, gn = Δg: Accept then forms exactly Δz and Δg.
        let vecs = &mut *work.vecs;
        vecs.fill(0.0);
        vecs[15..20].copy_from_slice(dz);
        vecs[20..25].copy_from_slice(dg);
        let restarts = state.mon.restarts;
        state.phase = state.accept();
        let mut z = [0.0f32; 5];
        while !matches!(state.phase, Phase::Step) {
            let reply = work.execute(&state.op(), &mut z);
            state.advance(reply);
        }
        state.mon.restarts > restarts
    }

    /// After every update, whatever the policy and however full the history, the
    /// newest secant condition `H Δg = Δz` holds.
    #[test]
    fn newest_secant_condition_holds_with_full_history() {
        for history in [History::DropOldest, History::Restart] {
            let s = BroydenSettings { history, ..BroydenSettings::DEFAULT };
            let (mut u, mut v, mut vecs) = ([0.0f32; 15], [0.0f32; 15], [0.0f32; 25]);
            let mut state = BroydenState::new(&s, false, 3, &Options::DEFAULT);
            let mut restarts = 0;
            for k in 0..10u32 {
                let (mut dz, mut dg) = ([0.0f32; 5], [0.0f32; 5]);
                pseudo_random(2 * k + 1, &mut dz);
                pseudo_random(2 * k + 2, &mut dg);
                // Δg roughly −Δz, as for a mild map, keeps denominators sane.
                for (g, z) in dg.iter_mut().zip(&dz) {
                    *g = 0.3 * *g - z;
                }
                let mut work = BroydenWork::new(5, 3, &mut u, &mut v, &mut vecs).unwrap();
                restarts += u32::from(update(&mut state, &mut work, &dz, &dg));
                let hdg = h_times(&u, &v, state.count, &dg);
                for (a, b) in hdg.iter().zip(&dz) {
                    assert!((a - b).abs() < 1e-4, "{history:?} step {k}: H Δg = {hdg:?}, Δz = {dz:?}");
                }
                assert!(state.count <= 3);
            }
            assert_eq!(state.count, if history == History::Restart { 1 } else { 3 });
            assert_eq!(restarts > 0, history == History::Restart);
        }
    }

    /// An update with a zero denominator is skipped and leaves the history intact.
    #[test]
    fn degenerate_update_is_skipped() {
        let s = BroydenSettings::DEFAULT;
        let (mut u, mut v, mut vecs) = ([0.0f32; 10], [0.0f32; 10], [0.0f32; 25]);
        let mut state = BroydenState::new(&s, false, 2, &Options::DEFAULT);
        let mut work = BroydenWork::new(5, 2, &mut u, &mut v, &mut vecs).unwrap();
        update(&mut state, &mut work, &[1.0, 0.0, 0.0, 0.0, 0.0], &[-1.0, 0.5, 0.0, 0.0, 0.0]);
        assert_eq!((state.count, state.head), (1, 1));
        let snap = |w: &BroydenWork<'_>| {
            let (mut a, mut b) = ([0.0f32; 10], [0.0f32; 10]);
            a.copy_from_slice(w.u);
            b.copy_from_slice(w.v);
            (a, b)
        };
        let before = snap(&work);
        // v = −Δz (H = −I + …) is orthogonal to Δg: vᵀΔg = 0.
        update(&mut state, &mut work, &[0.0, 0.0, 1.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!((state.count, state.head), (1, 1));
        assert_eq!(snap(&work), before);
        // Non-finite input is skipped too.
        update(&mut state, &mut work, &[f32::NAN; 5], &[1.0; 5]);
        assert_eq!(state.count, 1);
        assert!(work.u.iter().chain(work.v.iter()).all(|x| x.is_finite()));
    }

    /// Replies of the wrong kind end or skip, never panic, and a finished solve keeps
    /// answering with its report.
    #[test]
    fn wrong_replies_are_harmless() {
        let s = BroydenSettings::DEFAULT;
        let mut state = BroydenState::detached(&s, 4, &Options::DEFAULT).unwrap();
        assert!(BroydenState::detached(&s, 0, &Options::DEFAULT).is_none());
        assert_eq!(state.op(), BroydenOp::Evaluate { point: Vector::X, out: Vector::G });
        assert!(matches!(state.advance(Reply::None), BroydenOp::Residual { root: false, .. }));
        let BroydenOp::Done(report) = state.advance(Reply::Finite(true)) else {
            panic!("a wrong reply to Residual must end the solve")
        };
        assert_eq!(report.status, Status::NonFinite);
        assert_eq!(state.advance(Reply::None), BroydenOp::Done(report));
    }
}
