//! The vector operations of a Broyden solve, as values.
//!
//! A Broyden iteration alternates between decisions on a few scalars (is the step
//! accepted? is the update worth storing? has the solve converged?) and `O(n)` work on
//! the vectors. [`BroydenState`](super::BroydenState) makes the decisions; every piece
//! of vector work it needs is one [`BroydenOp`], whose result comes back as a [`Reply`].
//! [`BroydenWork::execute`](super::BroydenWork::execute) carries the operations out on
//! slices, and that is how every solve in this crate runs. A caller that keeps the
//! vectors elsewhere (on a GPU, for a whole batch of samples at once) carries them out
//! itself and feeds the replies to [`BroydenState::advance`](super::BroydenState::advance):
//! the algorithm, its safeguards and its bookkeeping are then this crate's, unchanged.
//!
//! # The vectors
//!
//! A solve has five work vectors of `n` floats ([`Vector`]): the current iterate `x`,
//! its residual `g`, the step `p`, the trial point `xn` and its residual `gn`; the
//! stored pairs `uᵢ`, `vᵢ` (rows `0..m` of two `m × n` arrays); and the caller's `z`,
//! which receives every new best iterate. Each operation below says exactly what it
//! reads and writes; an implementation may compute its sums in any order (the replies
//! then differ by rounding only).

use super::BroydenWork;
use crate::kernels;
use crate::monitor::{Form, copy, residual, split_vecs};
use crate::options::Report;

/// One of the five work vectors of a Broyden solve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Vector {
    /// The current iterate `x`.
    X = 0,
    /// Its residual `g` (first `f(x)`, then `f(x) − x`).
    G = 1,
    /// The step `p` (after an accepted step, `Δz`).
    P = 2,
    /// The trial point `xn = x + α·p` (during an update, scratch for the new `v`).
    Xn = 3,
    /// The trial point's residual `gn`.
    Gn = 4,
}

impl Vector {
    /// The five vectors, in the order of their discriminants (0 to 4).
    pub const ALL: [Vector; 5] = [Vector::X, Vector::G, Vector::P, Vector::Xn, Vector::Gn];

    /// Position of the vector among the five (0 to 4).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A set of stored pairs: the rows `i < end` with `i ≠ skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pairs {
    /// One past the last row in the set.
    pub end: usize,
    /// A row left out (the slot a new pair is being written to), if any.
    pub skip: Option<usize>,
}

impl Pairs {
    /// Whether row `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        i < self.end && self.skip != Some(i)
    }
}

/// What [`BroydenOp::Finish`] does with the slot of the pair being added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The update was skipped: no slot changes.
    Nothing,
    /// The new pair is good: `v_slot ← xn` (`u_slot` already holds its `u`).
    Keep(usize),
    /// The new `u` overflowed: `u_slot ← 0` and `v_slot ← 0`, an inert pair.
    Zero(usize),
}

/// One step of vector work requested by a Broyden solve. The reply each one expects is
/// given with it; "no reply" means [`Reply::None`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BroydenOp {
    /// `out ← f(point)`: the user's function, `(X, G)` at the start and `(Xn, Gn)` for
    /// each trial point. No reply.
    Evaluate {
        /// The point to evaluate.
        point: Vector,
        /// Where `f(point)` goes.
        out: Vector,
    },
    /// The residual at a point whose evaluation is in `g`. Fixed-point form
    /// (`root == false`): `scale = ‖g‖` (that is `‖f(x)‖`), then `g ← g − x` and
    /// `abs = ‖g‖`. Root form: `abs = ‖g‖`, `scale = ‖x‖`, nothing written.
    /// Reply: [`Reply::Residual`], whose `finite` (every entry of `x` and `g` finite)
    /// is read only when `abs` or `scale` is not finite.
    Residual {
        /// The point (`X` or `Xn`).
        x: Vector,
        /// Its evaluation, turned into its residual (`G` or `Gn`).
        g: Vector,
        /// Root form: `g` is the residual already.
        root: bool,
    },
    /// `z ← from`: a new best iterate for the caller. No reply.
    KeepBest {
        /// `X` or `Xn`.
        from: Vector,
    },
    /// The trial point: if `reset`, first `p ← g` (a plain step); then
    /// `xn ← x + alpha·p`. No reply.
    Trial {
        /// Replace the step by `g` first.
        reset: bool,
        /// Step length.
        alpha: f32,
    },
    /// An accepted step, and the first half of the update. `p ← xn − x`,
    /// `g ← gn − g` (now `Δz` and `Δg`), `x ← xn`; then the candidate
    /// `v = Hᵀ Δz` into `xn`: `xn ← −p + Σ_{i ∈ pairs} vᵢ (uᵢ · p)`.
    /// Reply: [`Reply::Dots`] with `vg = xn · g`, `v_norm = ‖xn‖`, `g_norm = ‖g‖`.
    Accept {
        /// The pairs the new one is computed against.
        pairs: Pairs,
    },
    /// The new `u`: `u_slot ← (p + g − Σ_{i ∈ pairs} uᵢ (vᵢ · g))·inv`.
    /// Reply: [`Reply::Finite`], whether every entry of `u_slot` is finite.
    NewU {
        /// The row receiving the new pair.
        slot: usize,
        /// The pairs the new one is computed against (never containing `slot`).
        pairs: Pairs,
        /// `1 / (vᵀΔg)`.
        inv: f32,
    },
    /// Ends the update as `store` says, then `g ← gn`. No reply.
    Finish {
        /// What to do with the new pair's slot.
        store: Store,
    },
    /// The quasi-Newton step `p = −H g = g − Σ_{i < count} uᵢ (vᵢ · g)`.
    /// Reply: [`Reply::Finite`], whether every entry of `p` is finite.
    Step {
        /// Number of stored pairs (rows `0..count`).
        count: usize,
    },
    /// The solve has ended; `z` holds the iterate the report describes.
    Done(Report),
}

/// The result of a [`BroydenOp`], fed back through
/// [`BroydenState::advance`](super::BroydenState::advance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reply {
    /// For the operations that return nothing.
    None,
    /// For [`BroydenOp::Residual`].
    Residual {
        /// `‖g‖` after the operation.
        abs: f32,
        /// The scale of the relative tolerance (`‖f(x)‖`, or `‖x‖` in root form).
        scale: f32,
        /// Whether every entry of `x` and `g` is finite (read only when `abs` or
        /// `scale` is not finite, so it may be computed only then).
        finite: bool,
    },
    /// For [`BroydenOp::Accept`].
    Dots {
        /// `vᵀΔg`.
        vg: f32,
        /// `‖v‖`.
        v_norm: f32,
        /// `‖Δg‖`.
        g_norm: f32,
    },
    /// For [`BroydenOp::NewU`] and [`BroydenOp::Step`].
    Finite(bool),
}

impl BroydenWork<'_> {
    /// Carries out `op` on this workspace's vectors and pairs (and the caller's best
    /// iterate `z`), returning its reply. This is how every Broyden solve in this crate
    /// runs; a caller driving a [`BroydenState`](super::BroydenState) itself may use it
    /// too. [`BroydenOp::Evaluate`] and [`BroydenOp::Done`] do nothing here (evaluation
    /// is the caller's). An operation naming rows outside the workspace does nothing
    /// and replies as if its result were not finite; nothing here panics.
    pub fn execute(&mut self, op: &BroydenOp, z: &mut [f32]) -> Reply {
        let n = self.n;
        let vecs = split_vecs::<5>(self.vecs, n);
        match *op {
            BroydenOp::Evaluate { .. } | BroydenOp::Done(_) => Reply::None,
            BroydenOp::Residual { x, g, root } => {
                let Some((x, g)) = two(vecs, x, g) else {
                    return Reply::Residual { abs: f32::NAN, scale: f32::NAN, finite: false };
                };
                let e = residual(if root { Form::Root } else { Form::FixedPoint }, x, g);
                let finite = (e.abs.is_finite() && e.scale.is_finite()) || (all_finite(x) && all_finite(g));
                Reply::Residual { abs: e.abs, scale: e.scale, finite }
            }
            BroydenOp::KeepBest { from } => {
                let [x, g, p, xn, gn] = vecs;
                let from = match from {
                    Vector::X => x,
                    Vector::G => g,
                    Vector::P => p,
                    Vector::Xn => xn,
                    Vector::Gn => gn,
                };
                copy(from, z);
                Reply::None
            }
            BroydenOp::Trial { reset, alpha } => {
                let [x, g, p, xn, _] = vecs;
                if reset {
                    copy(g, p);
                }
                for ((t, xi), pi) in xn.iter_mut().zip(&*x).zip(&*p) {
                    *t = xi + alpha * pi;
                }
                Reply::None
            }
            BroydenOp::Accept { pairs } => {
                let [x, g, p, xn, gn] = vecs;
                // Δz into p and Δg into g; x takes the new point, which frees xn as
                // scratch for v.
                for ((pi, xni), xi) in p.iter_mut().zip(&*xn).zip(&*x) {
                    *pi = xni - xi;
                }
                for (gi, gni) in g.iter_mut().zip(&*gn) {
                    *gi = gni - *gi;
                }
                copy(xn, x);
                // v = HᵀΔz = −Δz + V(UᵀΔz).
                for (w, d) in xn.iter_mut().zip(&*p) {
                    *w = -d;
                }
                let (Some((u_lo, u_hi)), Some((v_lo, v_hi))) =
                    (rows(self.u, n, pairs), rows(self.v, n, pairs))
                else {
                    return Reply::Dots { vg: f32::NAN, v_norm: f32::NAN, g_norm: f32::NAN };
                };
                kernels::low_rank_acc(1.0, v_lo, u_lo, n, p, xn);
                kernels::low_rank_acc(1.0, v_hi, u_hi, n, p, xn);
                Reply::Dots { vg: kernels::dot(xn, g), v_norm: kernels::norm(xn), g_norm: kernels::norm(g) }
            }
            BroydenOp::NewU { slot, pairs, inv } => {
                let [_, g, p, _, _] = vecs;
                let v = &*self.v;
                let (Some((u_lo, u_s, u_hi)), Some((v_lo, v_hi))) =
                    (split_around(self.u, n, slot, pairs), rows(v, n, pairs))
                else {
                    return Reply::Finite(false);
                };
                // u = (Δz − HΔg)/(vᵀΔg) = (Δz + Δg − U(VᵀΔg))/(vᵀΔg).
                for ((w, d), e) in u_s.iter_mut().zip(&*p).zip(&*g) {
                    *w = d + e;
                }
                kernels::low_rank_acc(-1.0, u_lo, v_lo, n, g, u_s);
                kernels::low_rank_acc(-1.0, u_hi, v_hi, n, g, u_s);
                let mut finite = true;
                for w in u_s.iter_mut() {
                    *w *= inv;
                    finite &= w.is_finite();
                }
                Reply::Finite(finite)
            }
            BroydenOp::Finish { store } => {
                let [_, g, _, xn, gn] = vecs;
                match store {
                    Store::Nothing => {}
                    Store::Keep(slot) => {
                        if let Some(v_s) = row_mut(self.v, n, slot) {
                            copy(xn, v_s);
                        }
                    }
                    Store::Zero(slot) => {
                        for buf in [&mut *self.u, &mut *self.v] {
                            if let Some(r) = row_mut(buf, n, slot) {
                                r.fill(0.0);
                            }
                        }
                    }
                }
                copy(gn, g);
                Reply::None
            }
            BroydenOp::Step { count } => {
                let [_, g, p, _, _] = vecs;
                // p = −H g = g − U(Vᵀg).
                copy(g, p);
                let len = count.saturating_mul(n);
                let (u, v) = (self.u.get(..len).unwrap_or(&[]), self.v.get(..len).unwrap_or(&[]));
                kernels::low_rank_acc(-1.0, u, v, n, g, p);
                Reply::Finite(all_finite(p))
            }
        }
    }
}

fn all_finite(v: &[f32]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Two distinct vectors of the five, the first read-only.
fn two(vecs: [&mut [f32]; 5], a: Vector, b: Vector) -> Option<(&[f32], &mut [f32])> {
    let mut first = None;
    let mut second = None;
    for (i, v) in vecs.into_iter().enumerate() {
        if i == a.index() {
            first = Some(v);
        } else if i == b.index() {
            second = Some(v);
        }
    }
    Some((first?, second?))
}

/// The rows of row-major `buf` (rows of `n`) in `pairs`: those before the skipped row
/// and those after it.
fn rows(buf: &[f32], n: usize, pairs: Pairs) -> Option<(&[f32], &[f32])> {
    let cut = pairs.skip.map_or(pairs.end, |s| s.min(pairs.end));
    let lo = buf.get(..cut.checked_mul(n)?)?;
    let hi = match pairs.skip {
        Some(s) if s < pairs.end => buf.get((s + 1).checked_mul(n)?..pairs.end.checked_mul(n)?)?,
        _ => &[],
    };
    Some((lo, hi))
}

/// Row `slot` of row-major `buf`, mutable, with the rows of `pairs` on either side;
/// `None` unless `pairs` skips exactly `slot`.
fn split_around(
    buf: &mut [f32],
    n: usize,
    slot: usize,
    pairs: Pairs,
) -> Option<(&[f32], &mut [f32], &[f32])> {
    if pairs.skip != Some(slot) {
        return None;
    }
    let (lo, rest) = buf.split_at_mut_checked(slot.checked_mul(n)?)?;
    let (mid, hi) = rest.split_at_mut_checked(n)?;
    let lo_rows = slot.min(pairs.end);
    let hi_rows = pairs.end.saturating_sub(slot.saturating_add(1));
    Some((lo.get(..lo_rows.checked_mul(n)?)?, mid, hi.get(..hi_rows.checked_mul(n)?)?))
}

/// Row `slot` of row-major `buf`, mutable.
fn row_mut(buf: &mut [f32], n: usize, slot: usize) -> Option<&mut [f32]> {
    buf.get_mut(slot.checked_mul(n)?..slot.checked_add(1)?.checked_mul(n)?)
}
