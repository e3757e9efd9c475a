//! A Broyden iteration, top to bottom: the decisions of a solve, made on scalars, and
//! the vector work they ask for, one [`Op`] at a time.
//!
//! [`BroydenState::advance`] is the whole method. It takes the reply to the operation it
//! asked for last and runs until it needs the next one; each arm of its `match` is one
//! line of the iteration below, in this order, and each formula is written there once.
//! The vectors keep their names (see [`Vector`]) as roles: during the update, the
//! residual's `G` holds `Δg`, the accepted point stays in `Xn`, the step's `P` keeps the
//! step `p` until `−H_o g₊` replaces it, and `u` and `v` are formed in their slots (a
//! dense model forms `v` in the old iterate's `X`). When the update ends, `X` and `Xn` (and `G` and `Gn`) trade
//! buffers instead of copying: `x ← xn`, `g ← g₊` cost nothing (`BroydenState::role`).
//!
//! `H_o` is `H` without the pair the new one replaces (the oldest, once the history is
//! full; all of them for [`History::Restart`]), so `H₊ = H_o + u vᵀ`. The step was
//! `p = −H g`, so `Δz = αp` and `H_o g = −p − u_old (v_oldᵀg)` (the last term only when a
//! pair is dropped), and `H₊g₊ = H_o g₊ + u (vᵀg₊)`: the update forms the next step
//! from the one product `H_o g₊` it needs anyway.
//!
//! **Two passes over the history per iteration.** Each iteration makes two low-rank
//! products, `H_oᵀp` and `H_o g₊`, each with the vector work that follows it in the same
//! pass ([`Then`]), and each one pass over the rows of one factor: the coefficients of
//! each (`Uᵀp`, `Vᵀg₊`) are the rows of its *other* factor dotted with a vector that
//! the previous pass formed or read, so that pass forms them too (`ahead`): `Vᵀg₊`
//! while `v` is formed from `V`'s rows, `Uᵀp₊` while the next step `p₊` is formed from
//! `U`'s rows (kept across the evaluation by the solver). The pair left out (the slot
//! being replaced) costs no extra pass ([`kernels::low_rank`](crate::kernels::low_rank)).
//!
//! * The **secant pass** (`Then::Secant`): `v = −γp + V(Uᵀp)` into its slot, and from
//!   the same entries `v_oldᵀg` (the slot's old `v`), `Δg = g₊ − g` (into G), `vᵀΔg`,
//!   `‖v‖`, `‖Δg‖` and `vᵀg₊`.
//! * The **pair pass** (`Then::Pair`): `−H_o g₊ = γg₊ − U(Vᵀg₊)`, and from the same
//!   entries `u = (−H_o g₊ − c·u_old)/vᵀΔg` into its slot, the next step
//!   `p₊ = −H_o g₊ − u (vᵀg₊)`, the trial point `x₊ + p₊`, and whether `u` and `p₊` are
//!   finite.
//!
//! **Passes over `n`-vectors per iteration** (full history, `α = 1`, M = 8), in units of
//! one vector read or written: the secant pass 13 (7 rows of `V`, `p`, `g₊`, `g`, the
//! slot's old `v`; `v` and `Δg` written), the pair pass 13 (7 rows of `U`, `g₊`, the
//! slot's old `u`, `x₊`; `u`, `p₊` and the trial point written), the trial point's
//! residual and norms 5, its copy to `z` when it is the best so far 2: 33, of which 14
//! are reads of the other pairs' rows (the new iterate and residual trade buffers: no
//! copies). The same iteration in the primitive operations (`Op::lowered`: what an
//! executor that does not fuse carries out, and what the iteration asks for on targets
//! without vector registers) makes 69, 28 of them row reads. A backtracked step
//! (`α ≠ 1`), an update against no other pairs, and a dense model take the primitive
//! operations.
//!
//! ```text
//!   start:    g ← f(x), its residual and norms             converged? best?
//!   iterate:  p ← g − U(Vᵀg) = −Hg, unless the update formed it
//!                                                          p finite? else H = −I, p ← g
//!             xn ← x + α·p
//!             gn ← f(xn), its residual and norms           converged? best? rejected?
//!   accept:   c = v_oldᵀg (when a pair is dropped),  Δg = gn − g (in G)
//!             v = −p + V(Uᵀp)   (= H_oᵀp, in its slot; with Δg and the dots below,
//!                                 one pass)                vᵀΔg tiny? skip the update
//!             no other pairs:  u·vᵀΔg = αp + Δg
//!             else:            u·vᵀΔg = (α − 1)p − c·u_old − H_o g₊,
//!                              with −H_o g₊ = g₊ − U(Vᵀg₊) formed in P
//!             u ← u / vᵀΔg  (its slot)                     u finite? else an inert pair
//!             p ← −H_o g₊ − u (vᵀg₊) (= −H₊g₊)
//!             x ← xn, g ← gn: X, Xn and G, Gn trade buffers
//!
//! (A root solve keeps H₀ = −γI: read γp and γg₊ for p and g₊ in the H₀ terms.)
//!
//! A root solve with n ≤ m keeps a dense model (V's rows eⱼ, U's the columns of H + γI):
//!   probe:    for each j: xn ← x + h·eⱼ, gn ← f(xn), vⱼ ← (gn − g)/h
//!             U ← A⁻¹ + γI, V ← I   (A the columns vⱼ)   singular? H = −γI
//!   iterate:  p ← −H g,  xn ← x + α·p    α halved until ‖gn‖ ≤ (1 − 10⁻⁴α)‖g‖,
//!                                        else probe afresh (or take the last trial)
//!   accept:   the update above against all n rows (u in G);  U's row j += vⱼ·u
//! ```

#[cfg(simd)]
use super::ops::Then;
use super::ops::{Factor, Op, Pairs, Reply, Vector};
use super::{BroydenSettings, History};
use crate::monitor::{Eval, Monitor, next_slot};
use crate::{Options, Real, Status};

/// Where a Broyden solve stands: a small plain value (the monitor's counters, the
/// history's fill level, the step length being tried, the update in progress, and the
/// line of the iteration it is at).
#[derive(Clone, Copy, Debug)]
pub struct BroydenState<T: Real = f32> {
    settings: BroydenSettings<T>,
    root: bool,
    /// Slots in the history.
    m: usize,
    mon: Monitor<T>,
    /// Pairs in use (rows `0..count`) and the slot the next one goes to (the oldest
    /// once all `m` are in use).
    count: usize,
    head: usize,
    /// Residual norm and scale at the current iterate `x`, and at the point just
    /// evaluated.
    cur: Eval<T>,
    next: Eval<T>,
    /// Step rejection's growth allowance, the step length and the backtracks tried.
    allowed_growth: T,
    alpha: T,
    tries: u8,
    /// The update in progress: the slot of the new pair, the pairs it is computed
    /// against, whether the history restarts, `vᵀΔg` and `‖v‖`.
    slot: usize,
    kept: usize,
    restart: bool,
    vg: T,
    v_norm: T,
    /// `v_oldᵀg`: the oldest pair's `v` against the residual the step was taken from,
    /// when the update drops that pair.
    oldest_g: T,
    /// `vᵀg₊`, when the update's first product replied it.
    next_dot: Option<T>,
    /// Whether `P` already holds the next step `−H g` (formed at the end of the update),
    /// and whether it was checked.
    step: Step,
    /// The scale of the initial inverse Jacobian, `H₀ = −γ I`: 1 for a fixed point
    /// (`∂g/∂z = J_f − I ≈ −I`); for a root, set from the first residual and then from
    /// each update made against an empty history (see [`Self::rescaled`]).
    gamma: T,
    /// The unknowns (0 for a detached fixed-point solve, which never needs them); with
    /// `n ≤ m` a root solve keeps a dense model ([`Self::dense`]). `probe` is the next
    /// coordinate of a finite-difference probe (`n` when none is due), `fresh` whether
    /// no step has been taken since the last probes.
    n: usize,
    probe: usize,
    fresh: bool,
    /// Whether the buffers of `X`, `G` and of `Xn`, `Gn` have swapped roles: an accepted
    /// trial point becomes the iterate by this swap, not by a copy (see [`Self::role`]).
    flip: bool,
    at: Line,
}

/// What the update left for the next iteration's step.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// Nothing: the step is formed afresh.
    None,
    /// `P` holds it, not yet checked.
    Formed,
    /// `P` holds it, checked; when finite, the trial point `x + p` is formed too.
    #[cfg(simd)]
    Checked { finite: bool },
}

/// The line of the iteration a solve is at: the operation whose reply it waits for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Line {
    Start,
    // Evaluating a point: the start point (trial == false) or the trial point.
    Evaluated {
        trial: bool,
    },
    FirstNorm {
        trial: bool,
    },
    Subtracted {
        trial: bool,
    },
    SecondNorm {
        trial: bool,
    },
    PointFinite {
        trial: bool,
    },
    ResidualFinite {
        trial: bool,
    },
    KeptBest {
        trial: bool,
        stop: Option<Status>,
    },
    // A dense model: the Jacobian's column `probe` formed in V's row, then scaled; the
    // inverse formed; or the model being reset to H = −γI (row j of V set to eⱼ, then
    // row j of U to 0).
    ColumnFormed,
    ColumnScaled,
    Inverted,
    IdentityRow {
        j: usize,
    },
    ZeroRow {
        j: usize,
    },
    // The step.
    StepFormed,
    StepChecked,
    TrialReset,
    TrialFormed,
    // The update.
    #[cfg(simd)]
    SecantFormed,
    OldestDotted,
    DgFormed,
    VFormed,
    VgDotted,
    VNormed,
    DgNormed,
    UFromDg,
    UFromStep,
    OldestScaled,
    StepFolded,
    HgFormed,
    UFormed,
    UScaled,
    UChecked,
    #[cfg(simd)]
    PairFormed,
    UZeroed,
    VZeroed,
    PairStored,
    NextDotted,
    NextFormed,
    // The solve has ended with this status; the monitor holds the rest of its report.
    Done(Status),
}

/// Whether a set of pairs holds any row: a low-rank product over none is skipped (it
/// would change nothing).
fn nonempty(pairs: Pairs) -> bool {
    let skipped = matches!(pairs.skip, Some(s) if s < pairs.end);
    pairs.end > usize::from(skipped)
}

/// `out ← beta·x + alpha·A(Bᵀx)` over `pairs` (`(alpha, A, B)`), or `out ← beta·x` when
/// `pairs` holds no row (a copy when `beta = 1`).
fn product<T: Real>(
    out: Vector,
    (beta, x): (T, Vector),
    (alpha, a, b): (T, Factor, Factor),
    pairs: Pairs,
) -> Op<T> {
    if !nonempty(pairs) {
        return if beta == T::ONE {
            Op::Copy { from: x, to: out }
        } else {
            Op::Scale { out, alpha: beta, x }
        };
    }
    Op::LowRank {
        out,
        from: x,
        beta,
        alpha,
        a,
        b,
        pairs,
        x,
        #[cfg(simd)]
        ahead: None,
        #[cfg(simd)]
        then: Then::Nothing,
    }
}

/// The point and its residual: the start point's or the trial point's.
const fn point(trial: bool) -> (Vector, Vector) {
    if trial { (Vector::Xn, Vector::Gn) } else { (Vector::X, Vector::G) }
}

impl<T: Real> BroydenState<T> {
    /// A solve whose first operation is `Evaluate { X, G }`: the caller must have put
    /// the start point in `X` (and in its best iterate `z`). `root`: `g` is given
    /// directly (`solve_root`) instead of `g = f(x) − x`. `n` unknowns, `m` pairs (a
    /// root solve with `n ≤ m` keeps its inverse Jacobian whole).
    pub(crate) fn new(
        settings: &BroydenSettings<T>,
        root: bool,
        n: usize,
        m: usize,
        opts: &Options<T>,
    ) -> Self {
        let none = Eval { abs: T::INFINITY, scale: T::ZERO };
        BroydenState {
            settings: *settings,
            root,
            m,
            mon: Monitor::new(opts),
            count: 0,
            head: 0,
            cur: none,
            next: none,
            allowed_growth: settings.reject_growth,
            alpha: T::ONE,
            tries: 0,
            slot: 0,
            kept: 0,
            restart: false,
            vg: T::ZERO,
            v_norm: T::ZERO,
            oldest_g: T::ZERO,
            next_dot: None,
            step: Step::None,
            gamma: T::ONE,
            n,
            probe: n,
            fresh: false,
            flip: false,
            at: Line::Start,
        }
    }

    /// [`new`](Self::new) already past its first [`advance`](Self::advance): waiting for
    /// the evaluation of the start point (`Evaluate { X, G }`, which that `advance`
    /// returns).
    pub(crate) fn started(
        settings: &BroydenSettings<T>,
        root: bool,
        n: usize,
        m: usize,
        opts: &Options<T>,
    ) -> Self {
        BroydenState { at: Line::Evaluated { trial: false }, ..Self::new(settings, root, n, m, opts) }
    }

    /// A fixed-point solve (`g = f(x) − x`) with room for `m ≥ 1` pairs, for a caller that
    /// keeps the vectors itself (see [`ops`](super::ops)): put the start point in `X` and
    /// in `z`, call [`advance`](Self::advance) with [`Reply::None`] for the first
    /// operation, then carry out each operation and feed its reply to `advance` until
    /// [`Op::Done`]. `None` when `m == 0`.
    pub fn detached(settings: &BroydenSettings<T>, m: usize, opts: &Options<T>) -> Option<Self> {
        (m > 0).then(|| Self::new(settings, false, 0, m, opts))
    }

    /// Iterations taken so far (the `iterations` its report will give).
    pub fn iterations(&self) -> u32 {
        self.mon.iterations
    }

    /// `(residual_abs, residual_rel)` of the best iterate so far, the one the caller's `z`
    /// holds (as its report will give them): `(∞, ∞)` before any finite evaluation.
    pub fn best_residual(&self) -> (T, T) {
        self.mon.best()
    }

    /// The point whose evaluation the solve waits for and where `f` of it goes: `(Xn,
    /// Gn)` while a trial point is evaluated, `(X, G)` otherwise.
    pub fn evaluation(&self) -> (Vector, Vector) {
        let (x, g) = point(matches!(self.at, Line::Evaluated { trial: true }));
        (self.role(x), self.role(g))
    }

    /// The buffer that holds the role `v` now: `X` and `Xn` (and `G` and `Gn`) trade
    /// buffers each time a trial point is accepted, so that the new iterate and its
    /// residual are where the trial point and its residual were, with no copy. The
    /// iteration is written in roles; [`Self::advance`] names the buffers. The pairs stay
    /// neighbours (work vectors 0, 1 and 3, 4), as [`Self::evaluation`]'s callers expect.
    fn role(&self, v: Vector) -> Vector {
        use Vector::{G, Gn, X, Xn};
        match (self.flip, v) {
            (true, X) => Xn,
            (true, Xn) => X,
            (true, G) => Gn,
            (true, Gn) => G,
            _ => v,
        }
    }

    /// Takes the reply to the last operation asked for (carried out by the caller) and
    /// returns the next one. A reply of the wrong kind reads as a non-finite value, which
    /// ends the solve with [`Status::NonFinite`] or skips the update, never a panic.
    /// After [`Op::Done`] the same report is returned again.
    ///
    /// Always inlined: in a loop that carries out each operation at once (as
    /// [`SliceVectors`](super::ops::SliceVectors) does), each line's operation then goes
    /// straight to its execution instead of through memory.
    #[inline(always)]
    pub fn advance(&mut self, reply: Reply<T>) -> Op<T> {
        // The iteration names roles; the buffers that play them are named here, once.
        let mut op = self.line(reply);
        if self.flip {
            op.rename(|v| self.role(v));
        }
        op
    }

    /// One line of the iteration: given the reply to its operation, moves to the next
    /// line and returns the operation it waits for.
    #[inline(always)]
    fn line(&mut self, reply: Reply<T>) -> Op<T> {
        use Vector::{G, Gn, P, X, Xn};
        match self.at {
            Line::Done(status) => self.done(status),

            // ── Evaluate a point and form its residual. Fixed-point form: the scale
            //    ‖f(x)‖, then g ← f(x) − x and ‖g‖. Root form: ‖g‖, then the scale ‖x‖.
            Line::Start => self.to(Line::Evaluated { trial: false }, Op::Evaluate { point: X, out: G }),
            Line::Evaluated { trial } => self.to(Line::FirstNorm { trial }, Op::Norm { a: point(trial).1 }),
            Line::FirstNorm { trial } => {
                let (x, g) = point(trial);
                if self.root {
                    self.next.abs = reply.scalar();
                    self.to(Line::SecondNorm { trial }, Op::Norm { a: x })
                } else {
                    self.next.scale = reply.scalar();
                    let minus_x = Op::Combine { out: g, x: g, alpha: -T::ONE, y: x };
                    self.to(Line::Subtracted { trial }, minus_x)
                }
            }
            Line::Subtracted { trial } => self.to(Line::SecondNorm { trial }, Op::Norm { a: point(trial).1 }),
            Line::SecondNorm { trial } => {
                if self.root {
                    self.next.scale = reply.scalar();
                } else {
                    self.next.abs = reply.scalar();
                }
                if self.next.abs.is_finite() && self.next.scale.is_finite() {
                    self.judge(trial, true)
                } else {
                    // Overflow or NaN: which one decides Diverged or NonFinite.
                    self.to(Line::PointFinite { trial }, Op::AllFinite { a: point(trial).0 })
                }
            }
            Line::PointFinite { trial } => match reply.flag() {
                true => self.to(Line::ResidualFinite { trial }, Op::AllFinite { a: point(trial).1 }),
                false => self.judge(trial, false),
            },
            Line::ResidualFinite { trial } => self.judge(trial, reply.flag()),
            Line::KeptBest { trial, stop } => self.observed(trial, stop),
            Line::IdentityRow { j } => {
                self.to(Line::ZeroRow { j }, Op::Fill { out: Vector::U(j), value: T::ZERO })
            }
            Line::ZeroRow { j } => self.reset_dense(j + 1),
            Line::ColumnFormed => {
                let column = Vector::V(self.probe);
                let scale = Op::Scale { out: column, alpha: T::ONE / self.probe_length(), x: column };
                self.to(Line::ColumnScaled, scale)
            }
            Line::ColumnScaled => {
                self.probe += 1;
                if self.probing() {
                    return self.probe_step();
                }
                self.to(Line::Inverted, Op::Invert { rows: self.n, shift: self.gamma })
            }
            Line::Inverted => {
                if !reply.flag() {
                    // A singular (or overflowing) Jacobian: go on from H = −γI.
                    return self.reset_dense(0);
                }
                (self.count, self.head, self.fresh) = (self.n, 0, true);
                self.iterate()
            }

            // ── The step p = −H g = γg − U(Vᵀg) (formed in `iterate`), never evaluated
            //    unless finite.
            Line::StepFormed => self.check_step(),
            Line::StepChecked => self.stepped(reply.flag(), false),
            // The trial point xn = x + α·p.
            Line::TrialReset => self.to(Line::TrialFormed, self.trial_point()),
            Line::TrialFormed => {
                self.to(Line::Evaluated { trial: true }, Op::Evaluate { point: Xn, out: Gn })
            }

            // ── The step is taken. With H_o the inverse Jacobian without the pair the new
            //    one replaces ("others"), Δz = αp and H g = −p (the step): v = H_oᵀp
            //    (in Xn), u·vᵀΔg = Δz − H_oΔg, with H_oΔg = H_o g₊ − H_o g and
            //    H_o g = −p − u_old (v_oldᵀ g); the next step −H₊g₊ = −H_o g₊ − u (vᵀg₊).
            //    Two low-rank products per iteration: H_oᵀp and H_o g₊.
            // The first product with what follows it: v, then c = v_oldᵀg, Δg (in G),
            // vᵀΔg, ‖v‖, ‖Δg‖ and vᵀg₊, all from one pass.
            Line::OldestDotted => {
                self.oldest_g = reply.scalar();
                self.form_dg()
            }
            #[cfg(simd)]
            Line::SecantFormed => {
                let [c, vg, v_norm, dg_norm, next] = reply.scalars();
                (self.oldest_g, self.vg, self.v_norm, self.next_dot) = (c, vg, v_norm, Some(next));
                self.judge_update(dg_norm)
            }
            // v = H_oᵀp = −γp + V(Uᵀp), in its slot or, for a dense model, in X (the
            // unfused path).
            Line::DgFormed => {
                let (others, out, beta) = (self.others(), self.v_vector(), -self.gamma);
                let v = product(out, (beta, P), (T::ONE, Factor::V, Factor::U), others);
                self.to(Line::VFormed, v)
            }
            Line::VFormed => self.dot_v(),
            Line::VgDotted => {
                self.vg = reply.scalar();
                self.to(Line::VNormed, Op::Norm { a: self.v_vector() })
            }
            Line::VNormed => {
                self.v_norm = reply.scalar();
                self.to(Line::DgNormed, Op::Norm { a: G })
            }
            Line::DgNormed => self.judge_update(reply.scalar()),
            Line::UFromDg => {
                let u = self.u_vector();
                self.to(Line::UFromStep, Op::Combine { out: u, x: u, alpha: self.alpha, y: P })
            }
            Line::UFromStep => self.start_hg(),
            Line::OldestScaled => {
                let u = self.u_vector();
                self.to(Line::StepFolded, Op::Combine { out: u, x: u, alpha: self.alpha - T::ONE, y: P })
            }
            Line::StepFolded => self.start_hg(),
            Line::HgFormed => self.form_u(),
            Line::UFormed => self.scale_u(),
            Line::UScaled => self.to(Line::UChecked, Op::AllFinite { a: self.u_vector() }),
            Line::UChecked => {
                if self.dense() {
                    // H ← H + u vᵀ: row j of U (column j of H + γI) gains vⱼ·u. A u that
                    // overflowed is not added.
                    let add = Op::AddOuter { a: Factor::U, rows: self.n, coef: self.v_vector(), x: G };
                    return if reply.flag() { self.to(Line::PairStored, add) } else { self.finish() };
                }
                if !reply.flag() {
                    // u overflowed. Its slot (free, or the oldest pair once full) is already
                    // overwritten, so make the pair inert (u = v = 0) rather than keep a
                    // non-finite value.
                    return self.to(Line::UZeroed, Op::Fill { out: Vector::U(self.slot), value: T::ZERO });
                }
                self.store_pair();
                self.pair_stored()
            }
            // The second product with what follows it: u, the next step and the trial
            // point x₊ + p₊, with the finiteness of u and of p₊.
            #[cfg(simd)]
            Line::PairFormed => {
                let [u_finite, p_finite] = reply.flags();
                if !u_finite {
                    // As in UChecked.
                    return self.to(Line::UZeroed, Op::Fill { out: Vector::U(self.slot), value: T::ZERO });
                }
                self.store_pair();
                self.step = Step::Checked { finite: p_finite };
                self.finish()
            }
            Line::UZeroed => self.to(Line::VZeroed, Op::Fill { out: Vector::V(self.slot), value: T::ZERO }),
            // The pair is inert; the next step is formed afresh (from the history as it
            // now is) once g ← gn.
            Line::VZeroed => self.finish(),
            // The next step p₊ = −H_o g₊ − u (vᵀg₊), in P.
            Line::PairStored => self.pair_stored(),
            Line::NextDotted => {
                let next = Op::Combine { out: P, x: P, alpha: -reply.scalar(), y: self.u_vector() };
                self.to(Line::NextFormed, next)
            }
            Line::NextFormed => {
                self.step = Step::Formed;
                self.finish()
            }
        }
    }

    /// `vᵀΔg`, `‖v‖` (kept) and `‖Δg‖` known: the update is skipped, or `u` formed.
    fn judge_update(&mut self, dg_norm: T) -> Op<T> {
        use Vector::{G, P};
        let s = self.settings;
        // Skip the update when |cos(v, Δg)| = |vᵀΔg| / (‖v‖‖Δg‖) is tiny, divided
        // step by step so that tiny vectors cannot underflow the test into passing.
        let cosine = self.vg / self.v_norm / dg_norm;
        if !(cosine.abs() > s.skip_tol && (T::ONE / self.vg).is_finite()) {
            // Skipped. The other pairs are left as they were; a pair stored in the
            // slot (the oldest, or the first for a restart), whose v was just
            // overwritten, is made inert (u = v = 0) and is the next to be replaced.
            if !self.dense() && self.slot < self.count {
                return self.to(Line::UZeroed, Op::Fill { out: Vector::U(self.slot), value: T::ZERO });
            }
            return self.finish();
        }
        self.gamma = self.rescaled(dg_norm);
        let u = self.u_vector();
        if self.kept == 0 {
            // No other pairs: u·vᵀΔg = αp + γΔg directly.
            return self.to(Line::UFromDg, Op::Scale { out: u, alpha: self.gamma, x: G });
        }
        // u·vᵀΔg = (α − 1)p − u_old (v_oldᵀg) − H_o g₊. With α ≠ 1 the first two
        // terms come first, while P still holds p; with α = 1 (every step but a
        // backtracked one) the old u is folded in with −H_o g₊ (see form_u).
        if self.alpha == T::ONE {
            self.start_hg()
        } else if self.dropping() {
            let oldest = Op::Scale { out: u, alpha: -self.oldest_g, x: u };
            self.to(Line::OldestScaled, oldest)
        } else {
            self.to(Line::StepFolded, Op::Scale { out: u, alpha: self.alpha - T::ONE, x: P })
        }
    }

    /// The step `p` is known to be finite or not (`formed`: the update also formed
    /// the trial point `x + p`): a step that overflowed restarts the history (`H = −I`,
    /// `p ← γg`) or, for a dense model, probes afresh; then the trial point.
    fn stepped(&mut self, finite: bool, formed: bool) -> Op<T> {
        if !finite {
            self.mon.restarts += 1;
            if self.dense() {
                // H g overflowed: a new model from probes.
                return self.start_probes();
            }
            // H g overflowed: restart with H = −I (a plain step, p = g).
            self.clear();
        }
        self.alpha = T::ONE;
        self.tries = 0;
        if finite && formed {
            return self
                .to(Line::Evaluated { trial: true }, Op::Evaluate { point: Vector::Xn, out: Vector::Gn });
        }
        self.trial(!finite)
    }

    /// Moves to `line`, which waits for the reply to `op`, and returns `op`.
    #[inline(always)]
    fn to(&mut self, line: Line, op: Op<T>) -> Op<T> {
        self.at = line;
        op
    }

    /// Whether the step is finite.
    fn check_step(&mut self) -> Op<T> {
        self.to(Line::StepChecked, Op::AllFinite { a: Vector::P })
    }

    /// `vᵀΔg`.
    fn dot_v(&mut self) -> Op<T> {
        self.to(Line::VgDotted, Op::Dot { a: self.v_vector(), b: Vector::G })
    }

    /// Where the update's `v` is formed: its slot in `V`, or `X` (the old iterate's
    /// buffer, free once the step is accepted) for a dense model, whose `v` is the
    /// coefficient vector of a rank-one change of `U`'s rows.
    fn v_vector(&self) -> Vector {
        if self.dense() { Vector::X } else { Vector::V(self.slot) }
    }

    /// The pair is stored (`v` was formed in its slot): the next step
    /// `p₊ = −H_o g₊ − u (vᵀg₊)`, from `vᵀg₊` (replied by the first product, or asked
    /// for now).
    fn pair_stored(&mut self) -> Op<T> {
        if let Some(next) = self.next_dot.take() {
            let step = Op::Combine { out: Vector::P, x: Vector::P, alpha: -next, y: self.u_vector() };
            return self.to(Line::NextFormed, step);
        }
        self.to(Line::NextDotted, Op::Dot { a: self.v_vector(), b: Vector::Gn })
    }

    /// The new pair is kept: the history's fill level and ring advance (or restart).
    fn store_pair(&mut self) {
        if self.restart {
            self.count = 1;
            self.head = next_slot(0, self.m);
            self.mon.restarts += 1;
        } else {
            self.count = (self.count + 1).min(self.m);
            self.head = next_slot(self.head, self.m);
        }
    }

    /// Where the update's `u` is formed: its slot, or `G` (free once `vᵀΔg` and `‖Δg‖`
    /// are known) for a dense model.
    fn u_vector(&self) -> Vector {
        if self.dense() { Vector::G } else { Vector::U(self.slot) }
    }

    /// The update's first operation. Against other pairs (not a dense model), the
    /// product `v = −γp + V(Uᵀp)` into its slot, followed in the same pass by
    /// `v_oldᵀg` (the slot's old `v`; used when it is dropped), `Δg = g₊ − g` (in G),
    /// `vᵀΔg`, `‖v‖`, `‖Δg‖` and `vᵀg₊`, with `V`'s dots with `g₊` formed ahead for
    /// `H_o g₊`. Else (and where the kernels do not fuse, `cfg(not(simd))`: Cortex-M)
    /// `v_oldᵀg` when the oldest pair is dropped, then `Δg`.
    fn take_step(&mut self) -> Op<T> {
        self.next_dot = None;
        #[cfg(simd)]
        if !self.dense() && nonempty(self.others()) {
            return self.secant(self.others());
        }
        if self.dropping() {
            return self.to(Line::OldestDotted, Op::Dot { a: Vector::V(self.slot), b: Vector::G });
        }
        self.form_dg()
    }

    /// [`Self::take_step`]'s fused pass.
    #[cfg(simd)]
    fn secant(&mut self, others: Pairs) -> Op<T> {
        let (p, gn) = (Vector::P, Vector::Gn);
        let v = Op::LowRank {
            out: Vector::V(self.slot),
            from: p,
            beta: -self.gamma,
            alpha: T::ONE,
            a: Factor::V,
            b: Factor::U,
            pairs: others,
            x: p,
            ahead: Some(gn),
            then: Then::Secant { g: Vector::G, gn },
        };
        self.to(Line::SecantFormed, v)
    }

    /// `Δg = gn − g`, in G.
    fn form_dg(&mut self) -> Op<T> {
        self.to(Line::DgFormed, Op::Combine { out: Vector::G, x: Vector::Gn, alpha: -T::ONE, y: Vector::G })
    }

    /// Whether the new pair replaces a stored one that its update leaves out (the oldest,
    /// once the history is full).
    fn dropping(&self) -> bool {
        !self.dense() && self.slot < self.kept
    }

    /// `−H_o g₊ = γg₊ − U(Vᵀg₊)` into P. With `α = 1`, other pairs and `vᵀg₊` known
    /// (not a dense model), followed in the same pass by `u ← (−H_o g₊ − c·u_old)/vᵀΔg`
    /// (`c = v_oldᵀg`, when the old pair is dropped), the next step
    /// `p₊ = −H_o g₊ − u (vᵀg₊)` and the trial point `x₊ + p₊`.
    fn start_hg(&mut self) -> Op<T> {
        let (others, gn) = (self.others(), Vector::Gn);
        let hg = product(Vector::P, (self.gamma, gn), (-T::ONE, Factor::U, Factor::V), others);
        #[cfg(simd)]
        if let Some(pair) = self.pair(hg) {
            return pair;
        }
        self.to(Line::HgFormed, hg)
    }

    /// [`Self::start_hg`]'s fused pass, when it applies.
    #[cfg(simd)]
    fn pair(&mut self, hg: Op<T>) -> Option<Op<T>> {
        let then = match self.next_dot {
            Some(next) if self.alpha == T::ONE && !self.dense() => Then::Pair {
                row: self.u_vector(),
                c: self.dropping().then_some(self.oldest_g),
                r: T::ONE / self.vg,
                s: next,
                point: Vector::Xn,
                trial: Vector::X,
            },
            _ => Then::Nothing,
        };
        match hg {
            Op::LowRank { out, from, beta, alpha, a, b, pairs, x, .. } if then != Then::Nothing => {
                self.next_dot = None;
                // The next iteration's first product dots U's rows with p₊: they may be
                // formed here, where the rows and p₊ pass by anyway.
                let ahead = Some(Vector::P);
                let op = Op::LowRank { out, from, beta, alpha, a, b, pairs, x, ahead, then };
                Some(self.to(Line::PairFormed, op))
            }
            _ => None,
        }
    }

    /// With `−H_o g₊` in P: `u·vᵀΔg`, by adding it to the terms already formed (α ≠ 1),
    /// or to `−u_old (v_oldᵀg)` when the oldest pair is dropped; else it is `u·vᵀΔg`
    /// itself, scaled straight into u's slot. With no other pairs u was complete already.
    fn form_u(&mut self) -> Op<T> {
        let (u, p) = (self.u_vector(), Vector::P);
        if self.kept == 0 {
            self.scale_u()
        } else if self.alpha != T::ONE {
            self.to(Line::UFormed, Op::Combine { out: u, x: u, alpha: T::ONE, y: p })
        } else if self.dropping() {
            self.to(Line::UFormed, Op::Combine { out: u, x: p, alpha: -self.oldest_g, y: u })
        } else {
            self.to(Line::UScaled, Op::Scale { out: u, alpha: T::ONE / self.vg, x: p })
        }
    }

    /// `u ← u / (vᵀΔg)`.
    fn scale_u(&mut self) -> Op<T> {
        let u = self.u_vector();
        self.to(Line::UScaled, Op::Scale { out: u, alpha: T::ONE / self.vg, x: u })
    }

    /// After the residual of a point: judged by the monitor, copied to `z` when it is
    /// the best so far (a caller may read `z` between evaluations: the Python package's
    /// torchdeq `indexing` does).
    fn judge(&mut self, trial: bool, finite: bool) -> Op<T> {
        let (best, stop) = self.mon.judge(self.next, || finite);
        if best {
            self.to(Line::KeptBest { trial, stop }, Op::Copy { from: point(trial).0, to: Vector::Best })
        } else {
            self.observed(trial, stop)
        }
    }

    /// After the residual of a point was judged: the stop, or the rest of the iteration.
    fn observed(&mut self, trial: bool, stop: Option<Status>) -> Op<T> {
        match (trial, stop) {
            (false, Some(st)) => self.done(st),
            (true, Some(st)) => {
                self.mon.stop_in_iteration(st);
                self.done(st)
            }
            (false, None) => {
                self.cur = self.next;
                if self.root {
                    // The first step, −H₀g = γg, no longer than max(‖z₀‖, 1).
                    let reach = self.cur.scale.max(T::ONE) / self.cur.abs;
                    self.gamma = if reach < T::ONE { reach } else { T::ONE };
                }
                if self.dense() { self.start_probes() } else { self.iterate() }
            }
            (true, None) => self.judge_trial(),
        }
    }

    /// Starts an iteration, if the budget allows: the step `p = γg − U(Vᵀg)`, unless the
    /// update formed it.
    fn iterate(&mut self) -> Op<T> {
        if !self.mon.may_iterate() {
            return self.done(Status::MaxIterations);
        }
        match core::mem::replace(&mut self.step, Step::None) {
            // Formed by the update.
            Step::Formed => return self.check_step(),
            #[cfg(simd)]
            Step::Checked { finite } => return self.stepped(finite, true),
            Step::None => {}
        }
        let all = Pairs { end: self.count, skip: None };
        let step = product(Vector::P, (self.gamma, Vector::G), (-T::ONE, Factor::U, Factor::V), all);
        self.to(Line::StepFormed, step)
    }

    /// Whether `H` is kept whole (see [`Self::judge_dense`]): a root solve of `n ≤ m`
    /// unknowns, `H = −γI + U Vᵀ` with `V`'s first `n` rows the unit vectors, so that
    /// `U`'s rows are the columns of `H + γI`.
    #[inline(always)]
    fn dense(&self) -> bool {
        self.root && self.n > 0 && self.n <= self.m
    }

    /// Whether a dense model is being probed.
    fn probing(&self) -> bool {
        self.probe < self.n
    }

    /// The length of a probe, `h = √ε·max(‖x‖, 1)`.
    fn probe_length(&self) -> T {
        T::SQRT_EPSILON * self.cur.scale.max(T::ONE)
    }

    /// A new dense model at `x`: the Jacobian by forward differences, one probe
    /// `x + h·eⱼ` per column, then inverted.
    fn start_probes(&mut self) -> Op<T> {
        self.probe = 0;
        self.probe_step()
    }

    /// The probe of coordinate `probe`: `p ← h·e_probe`, then the trial point `x + p`.
    fn probe_step(&mut self) -> Op<T> {
        self.alpha = T::ONE;
        self.tries = 0;
        let unit = Op::Unit { out: Vector::P, index: self.probe, value: self.probe_length() };
        self.to(Line::TrialReset, unit)
    }

    /// Resets rows `j..n` of a dense model to `H = −γI` (`V`'s rows unit vectors, `U`'s
    /// zero), then iterates from it.
    fn reset_dense(&mut self, j: usize) -> Op<T> {
        if j < self.n {
            return self.to(Line::IdentityRow { j }, Op::Unit { out: Vector::V(j), index: j, value: T::ONE });
        }
        (self.count, self.head, self.fresh) = (self.n, 0, false);
        self.iterate()
    }

    /// The trial point `xn = x + α·p`, after `p ← γg` when `reset`.
    fn trial(&mut self, reset: bool) -> Op<T> {
        if reset {
            self.to(Line::TrialReset, self.plain_step())
        } else {
            self.to(Line::TrialFormed, self.trial_point())
        }
    }

    /// `p ← −H₀g = γg` (a copy when `γ = 1`).
    fn plain_step(&self) -> Op<T> {
        if self.gamma == T::ONE {
            Op::Copy { from: Vector::G, to: Vector::P }
        } else {
            Op::Scale { out: Vector::P, alpha: self.gamma, x: Vector::G }
        }
    }

    /// The scale of `H₀ = −γI` for the update about to be stored, given `‖Δg‖`. For a
    /// fixed point, and whenever other pairs are kept (their secant equations hold for
    /// the current `γ`), it stays. For a root, an update against an empty history sets
    /// it from the secant in the least-squares sense, `−γΔg ≈ Δz`:
    /// `γ = −ΔzᵀΔg/‖Δg‖²`, which is `α·vᵀΔg / (γ‖Δg‖²)` with `v = −γp` and `Δz = αp`
    /// (negative when `∂g/∂z` has a positive spectrum: the plain step then goes the
    /// right way).
    fn rescaled(&self, dg_norm: T) -> T {
        if !self.root || self.kept > 0 {
            return self.gamma;
        }
        let gamma = self.alpha * self.vg / self.gamma / dg_norm / dg_norm;
        if gamma.is_finite() && gamma != T::ZERO { gamma } else { self.gamma }
    }

    fn trial_point(&self) -> Op<T> {
        Op::Combine { out: Vector::Xn, x: Vector::X, alpha: self.alpha, y: Vector::P }
    }

    /// The same step at half the length, from the same point (one more backtrack).
    #[inline(always)]
    fn halve_step(&mut self) -> Op<T> {
        self.tries += 1;
        self.alpha *= T::HALF;
        self.trial(false)
    }

    /// The trial point was evaluated and is finite: backtrack, reject, stop on
    /// divergence, or accept it and update the history.
    fn judge_trial(&mut self) -> Op<T> {
        if self.dense() {
            return self.judge_dense();
        }
        let s = self.settings;
        let (next, cur) = (self.next.abs, self.cur.abs);
        // Armijo backtracking, when enabled: halve α until ‖g‖ falls enough.
        if s.line_search && next > (T::ONE - T::E_4 * self.alpha) * cur {
            if self.tries < s.max_backtracks {
                return self.halve_step();
            }
            // No trial passed: take the last one and restart the history.
            if self.count > 0 {
                self.clear();
                self.mon.restarts += 1;
            }
        }
        if !s.line_search && next > self.allowed_growth * cur {
            // The step grew ‖g‖ too much.
            let plain = self.count == 0;
            if self.root && plain && self.tries < s.max_backtracks {
                // A plain root step γg: shorter, from the same point.
                self.tries += 1;
                self.gamma *= T::from_f64(0.25);
                return self.trial(true);
            }
            if self.root && !plain && self.tries < 1 {
                // A root's quasi-Newton step: once at half length before the history is
                // given up.
                return self.halve_step();
            }
            if !plain {
                // Rejected: the iterate stays, the history restarts. Each rejection
                // doubles the growth tolerated until the residual improves again, so a
                // map whose quasi-Newton steps are transiently uphill is not stopped
                // forever.
                self.clear();
                self.mon.restarts += 1;
                self.allowed_growth *= T::TWO;
                return self.end_iteration(Self::iterate);
            }
        }
        if let Some(stop) = self.stop_if_diverged(next) {
            return stop;
        }
        if next < cur && self.count > 0 {
            // A quasi-Newton step (not a plain one) made progress: re-arm.
            self.allowed_growth = s.reject_growth;
        }
        // Accepted. The new pair goes to `head`, computed against the other stored
        // pairs; when the history is full it first drops the oldest (the slot at
        // `head`) or, with `History::Restart`, all of them.
        (self.slot, self.kept, self.restart) = if self.count == self.m && s.history == History::Restart {
            (0, 0, true)
        } else {
            (self.head, self.count, false)
        };
        self.take_step()
    }

    /// A trial point of a dense model evaluated: a probe is taken as it is; a step must
    /// lower `‖g‖` by the Armijo factor `1 − 10⁻⁴α`, halving `α` up to `max_backtracks`
    /// times (more for a model fresh from probes, whose step is Newton's); when none
    /// does, a model that has taken steps since its probes is probed afresh at `x`,
    /// and a fresh one takes the last trial.
    fn judge_dense(&mut self) -> Op<T> {
        let s = self.settings;
        let (next, cur) = (self.next.abs, self.cur.abs);
        if self.probing() {
            // Column `probe` of the Jacobian: (g(x + h·eⱼ) − g(x)) / h, into V's row.
            let column =
                Op::Combine { out: Vector::V(self.probe), x: Vector::Gn, alpha: -T::ONE, y: Vector::G };
            return self.to(Line::ColumnFormed, column);
        }
        if next > (T::ONE - T::E_4 * self.alpha) * cur {
            let limit = if self.fresh { s.max_backtracks.saturating_mul(3) } else { s.max_backtracks };
            if self.tries < limit {
                return self.halve_step();
            }
            if !self.fresh {
                self.mon.restarts += 1;
                return self.end_iteration(Self::start_probes);
            }
        }
        if let Some(stop) = self.stop_if_diverged(next) {
            return stop;
        }
        (self.slot, self.kept, self.restart) = (0, self.n, false);
        self.take_step()
    }

    /// Ends the iteration and goes on with `then`, unless the monitor ends the solve
    /// (iterations spent, stalled).
    #[inline(always)]
    fn end_iteration(&mut self, then: fn(&mut Self) -> Op<T>) -> Op<T> {
        match self.mon.end_iteration() {
            Some(st) => self.done(st),
            None => then(self),
        }
    }

    /// The end of the solve when the trial point's residual `next` has diverged.
    #[inline(always)]
    fn stop_if_diverged(&mut self, next: T) -> Option<Op<T>> {
        if !self.mon.diverged(next) {
            return None;
        }
        self.mon.stop_in_iteration(Status::Diverged);
        Some(self.done(Status::Diverged))
    }

    /// The pairs the new one is computed against: the others, or all `n` of a dense
    /// model.
    fn others(&self) -> Pairs {
        if self.dense() {
            return Pairs { end: self.n, skip: None };
        }
        Pairs { end: self.kept, skip: Some(self.slot) }
    }

    /// Ends the update: the trial point and its residual become the iterate and its
    /// residual (`x ← xn`, `g ← gn`, by [`Self::role`]'s swap), and the next iteration
    /// starts.
    fn finish(&mut self) -> Op<T> {
        self.flip = !self.flip;
        self.cur = self.next;
        self.fresh = false;
        self.end_iteration(Self::iterate)
    }

    /// The end of the solve: its report, from the monitor (which no longer changes, so
    /// that every later `advance` returns the same report).
    fn done(&mut self, status: Status) -> Op<T> {
        let report = self.mon.finish(status);
        self.to(Line::Done(status), Op::Done(report))
    }

    /// Forgets every pair: `H = −I`.
    fn clear(&mut self) {
        self.count = 0;
        self.head = 0;
        self.step = Step::None;
    }

    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::ops::SliceVectors;
    use super::*;
    use crate::kernels;

    /// Carries out `op` of a solve of `N` unknowns driven by a test: an evaluation by
    /// `f` between the work vectors it names, any other operation by the slice
    /// executor.
    fn carry_out<const N: usize>(
        op: Op<f32>,
        f: &dyn Fn(&[f32], &mut [f32]),
        u: &mut [f32],
        v: &mut [f32],
        work: &mut [f32],
        z: &mut [f32],
    ) -> Reply<f32> {
        if let Op::Evaluate { point, out } = op {
            let (p, o) = (point.work_index().unwrap(), out.work_index().unwrap());
            let x: [f32; N] = work[p * N..p * N + N].try_into().unwrap();
            f(&x, &mut work[o * N..o * N + N]);
            return Reply::None;
        }
        SliceVectors::new(N, u, v, work, z).execute(&op)
    }

    /// Drives a solve of `f(z) = 0.6·tanh(A z) + c` (a mildly coupled map) with `m`
    /// pairs through the slice executor and, at the end of every stored update (P = Δz,
    /// G = Δg still), checks the newest secant condition `H Δg = Δz` with
    /// `H = −I + U Vᵀ` recomputed from the stored rows.
    fn secant_holds(history: History, m: usize) -> u32 {
        const N: usize = 5;
        let settings = BroydenSettings { history, ..BroydenSettings::DEFAULT };
        let opts = Options { max_iters: 40, tol_rel: 0.0, stall_iters: 0, ..Options::DEFAULT };
        let (mut u, mut v, mut work, mut z) =
            (vec![0.0f32; m * N], vec![0.0f32; m * N], [0.0f32; 5 * N], [0.0f32; N]);
        let f = |x: &[f32], out: &mut [f32]| {
            for (i, o) in out.iter_mut().enumerate() {
                let s: f32 =
                    (0..N).map(|j| ((i * 7 + j * 3) % 5) as f32 * 0.2 - 0.4).zip(x).map(|(a, b)| a * b).sum();
                *o = 0.6 * libm::tanhf(s) + 0.1 * i as f32;
            }
        };
        let mut state = BroydenState::new(&settings, false, N, m, &opts);
        let mut reply = Reply::None;
        let mut checked = 0;
        // The residual g(x) = f(x) − x, recomputed here; the last accepted iterate.
        let residual = |x: &[f32]| -> [f32; N] {
            let mut out = [0.0f32; N];
            f(x, &mut out);
            core::array::from_fn(|i| out[i] - x[i])
        };
        let mut last = [0.0f32; N];
        let mut flip = state.flip;
        loop {
            let op = state.advance(reply);
            if state.flip != flip {
                // A step was taken: X (whichever buffer has that role now) holds the new
                // iterate. When a pair was stored (the next step is then formed, and not
                // yet checked), check it against this step's Δz and Δg.
                flip = state.flip;
                let at = state.role(Vector::X).work_index().unwrap() * N;
                let x: [f32; N] = work[at..at + N].try_into().unwrap();
                // The update formed the step when the next iteration checks it at once,
                // or evaluates the trial point the update formed with it.
                if matches!(state.at, Line::StepChecked | Line::Evaluated { trial: true }) {
                    let dz: [f32; N] = core::array::from_fn(|i| x[i] - last[i]);
                    let (gx, gl) = (residual(&x), residual(&last));
                    let dg: [f32; N] = core::array::from_fn(|i| gx[i] - gl[i]);
                    let mut hdg: [f32; N] = core::array::from_fn(|i| -dg[i]);
                    kernels::scalar::low_rank_acc(
                        1.0,
                        &u[..state.count() * N],
                        &v[..state.count() * N],
                        N,
                        &dg,
                        &mut hdg,
                    );
                    for (a, b) in hdg.iter().zip(&dz) {
                        assert!(
                            (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                            "{history:?}: H Δg = {hdg:?}, Δz = {dz:?}"
                        );
                    }
                    // The next step, formed by the update from H_o g₊, is −H₊g₊ =
                    // g₊ − U(Vᵀg₊) over the stored pairs.
                    let mut step = gx;
                    kernels::scalar::low_rank_acc(
                        -1.0,
                        &u[..state.count() * N],
                        &v[..state.count() * N],
                        N,
                        &gx,
                        &mut step,
                    );
                    for (a, b) in work[2 * N..3 * N].iter().zip(&step) {
                        assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{history:?}: p = {a}, −H g = {b}");
                    }
                    assert!(state.count() <= m);
                    checked += 1;
                }
                last = x;
            }
            reply = match op {
                Op::Done(_) => return checked,
                op => carry_out::<N>(op, &f, &mut u, &mut v, &mut work, &mut z),
            };
        }
    }

    /// After every stored update, whatever the policy and however full the history, the
    /// newest secant condition holds and the step formed for the next iteration is
    /// `−H₊g₊`.
    #[test]
    fn newest_secant_condition_holds_with_full_history() {
        for history in [History::DropOldest, History::Restart] {
            for m in [1, 2, 3] {
                assert!(secant_holds(history, m) >= 5, "{history:?} m = {m}: too few updates checked");
            }
        }
    }

    /// A `u` that overflows leaves an inert pair, and the iteration goes on from the new
    /// point with its residual: at the next step formed afresh, `G` is `g(X)`,
    /// recomputed here, and the solve still converges.
    #[test]
    fn an_overflowing_u_leaves_the_residual_of_the_new_point() {
        const N: usize = 5;
        let m = 3;
        let opts = Options { max_iters: 60, tol_rel: 1e-6, ..Options::DEFAULT };
        let (mut u, mut v, mut work, mut z) =
            (vec![0.0f32; m * N], vec![0.0f32; m * N], [0.0f32; 5 * N], [0.0f32; N]);
        let f = |x: &[f32], out: &mut [f32]| {
            for (i, o) in out.iter_mut().enumerate() {
                *o = 0.5 * libm::tanhf(x[(i + 1) % N] - 0.3 * x[i]) + 0.1 * i as f32;
            }
        };
        let mut state = BroydenState::new(&BroydenSettings::DEFAULT, false, N, m, &opts);
        let (mut reply, mut forced, mut checked) = (Reply::None, false, false);
        loop {
            let op = state.advance(reply);
            if forced && !checked && matches!(state.at, Line::StepFormed) {
                let x: [f32; N] = work[..N].try_into().unwrap();
                let mut fx = [0.0f32; N];
                f(&x, &mut fx);
                for i in 0..N {
                    assert_eq!(work[N + i], fx[i] - x[i], "G is not g(X) after an overflowing u");
                }
                checked = true;
            }
            reply = match op {
                Op::Done(r) => {
                    assert!(forced && checked, "the overflow path was not taken");
                    assert_eq!(r.status, Status::Converged, "{r:?}");
                    return;
                }
                // The first u checked against stored pairs: answer "not finite".
                Op::AllFinite { a: Vector::U(_) } if !forced && state.count() > 0 => {
                    forced = true;
                    Reply::Flag(false)
                }
                // Or the update that forms u in its pass.
                #[cfg(simd)]
                op @ Op::LowRank { then: Then::Pair { .. }, .. } if !forced && state.count() > 0 => {
                    carry_out::<N>(op, &f, &mut u, &mut v, &mut work, &mut z);
                    forced = true;
                    Reply::Flags([false, true])
                }
                op => carry_out::<N>(op, &f, &mut u, &mut v, &mut work, &mut z),
            };
        }
    }

    /// Between evaluations `z` holds the best point so far, the one `best_residual`
    /// describes (callers read it mid-solve: the torchdeq plug-in's `indexing`).
    #[test]
    fn z_holds_the_best_point_at_every_evaluation() {
        const N: usize = 5;
        let f = |x: &[f32], out: &mut [f32]| {
            for (i, o) in out.iter_mut().enumerate() {
                *o = 0.5 * libm::tanhf(x[(i + 1) % N] - 0.3 * x[i]) + 0.1 * i as f32;
            }
        };
        let residual = |x: &[f32]| -> f32 {
            let mut out = [0.0f32; N];
            f(x, &mut out);
            kernels::scalar::dist(&out, x)
        };
        let opts = Options { max_iters: 40, tol_rel: 0.0, tol_abs: 0.0, stall_iters: 0, ..Options::DEFAULT };
        let (mut u, mut v, mut work, mut z) =
            (vec![0.0f32; 3 * N], vec![0.0f32; 3 * N], [0.0f32; 5 * N], [0.0f32; N]);
        let mut state = BroydenState::new(&BroydenSettings::DEFAULT, false, N, 3, &opts);
        let (mut reply, mut checked) = (Reply::None, 0);
        loop {
            let op = state.advance(reply);
            if matches!(op, Op::Evaluate { .. }) && state.best_residual().0.is_finite() {
                let (best, res) = (state.best_residual().0, residual(&z));
                assert!((res - best).abs() <= 1e-5 * (1.0 + best), "{res} vs {best}");
                checked += 1;
            }
            reply = match op {
                Op::Done(_) => break,
                op => carry_out::<N>(op, &f, &mut u, &mut v, &mut work, &mut z),
            };
        }
        assert!(checked >= 10, "{checked}");
    }

    /// Replies of the wrong kind end or skip, never panic, and a finished solve keeps
    /// answering with its report.
    #[test]
    fn wrong_replies_are_harmless() {
        let s = BroydenSettings::DEFAULT;
        let mut state = BroydenState::<f32>::detached(&s, 4, &Options::DEFAULT).unwrap();
        assert!(BroydenState::<f32>::detached(&s, 0, &Options::DEFAULT).is_none());
        assert_eq!(state.advance(Reply::None), Op::Evaluate { point: Vector::X, out: Vector::G });
        assert!(matches!(state.advance(Reply::None), Op::Norm { .. }));
        // A flag where a norm was asked: NaN, so the solve ends as non-finite.
        let mut op = state.advance(Reply::Flag(true));
        while !matches!(op, Op::Done(_)) {
            op = state.advance(Reply::Flag(false));
        }
        let Op::Done(report) = op else { panic!() };
        assert_eq!(report.status, Status::NonFinite);
        assert_eq!(state.advance(Reply::None), Op::Done(report));
    }
}
