//! The vector operations of a Broyden solve, as values: the vocabulary an executor
//! carries out.
//!
//! A Broyden iteration alternates between decisions on a few scalars (is the step
//! accepted? is the update worth storing? has the solve converged?) and `O(n)` work on
//! vectors. [`BroydenState`](super::BroydenState) makes the decisions, in iteration order
//! (`iteration.rs`); every piece of vector work it needs is one [`Op`], a generic
//! operation of linear algebra on named vectors (copy, scale, `x + αy`, the low-rank
//! product, a dot product, a norm, a finiteness test), whose result comes back as a
//! [`Reply`]. The ops know nothing of Broyden's method: its formulas exist only in the
//! iteration, so a variant of the method is a change there alone, and every executor
//! (these slices, solver-host's CUDA kernels, the Python package's torch executor) runs
//! it unchanged.
//!
//! [`SliceVectors::execute`] carries the operations out on slices; that is how every
//! solve in this crate runs. A caller that keeps the vectors elsewhere (on a GPU, for a whole batch of
//! samples at once) carries them out itself and feeds the replies to
//! [`BroydenState::advance`](super::BroydenState::advance).
//!
//! # The vectors
//!
//! Every vector has `n` entries ([`Vector`]): the five work vectors (the iterate `x`, its
//! residual `g`, the step `p`, the trial point `xn` and its residual `gn`), the stored
//! pairs `uᵢ`, `vᵢ` (rows `0..m` of two `m × n` arrays) and the caller's best iterate
//! `z`. Each operation says exactly what it reads and writes; an executor may compute its
//! sums in any order (the replies then differ by rounding only). An operation whose
//! output is also one of its inputs reads the input before writing (element by
//! element).

use crate::kernels::{self, copy};
use crate::Real;

/// A vector of a Broyden solve (`n` entries each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    /// The current iterate `x` (work vector 0).
    X,
    /// Its residual `g` (work vector 1).
    G,
    /// The step `p` (work vector 2).
    P,
    /// The trial point `xn` (work vector 3).
    Xn,
    /// The trial point's residual `gn` (work vector 4).
    Gn,
    /// Row `i` of `U`.
    U(usize),
    /// Row `i` of `V`.
    V(usize),
    /// The caller's best iterate `z`.
    Best,
}

impl Vector {
    /// The five work vectors, in storage order.
    pub const WORK: [Vector; 5] = [Vector::X, Vector::G, Vector::P, Vector::Xn, Vector::Gn];

    /// Position among the five work vectors (`0..5`), or `None` for a row or `z`.
    pub const fn work_index(self) -> Option<usize> {
        match self {
            Vector::X => Some(0),
            Vector::G => Some(1),
            Vector::P => Some(2),
            Vector::Xn => Some(3),
            Vector::Gn => Some(4),
            _ => None,
        }
    }
}

/// One of the two stored factors of `H = −I + U Vᵀ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// `U` (rows `uᵢ`).
    U,
    /// `V` (rows `vᵢ`).
    V,
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

/// One vector operation of a Broyden solve. The reply each expects is given with it;
/// "no reply" means [`Reply::None`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op<T: Real = f32> {
    /// `out ← f(point)`: the user's function (`(X, G)` for the start point, `(Xn, Gn)`
    /// for a trial point). A batch evaluates all its samples' points in one call.
    Evaluate {
        /// The point to evaluate.
        point: Vector,
        /// Where `f(point)` goes.
        out: Vector,
    },
    /// `to ← from`.
    Copy {
        /// The source.
        from: Vector,
        /// The destination.
        to: Vector,
    },
    /// `out ← alpha·x`, entry by entry `alpha * xᵢ`.
    Scale {
        /// The destination.
        out: Vector,
        /// The factor.
        alpha: T,
        /// The source (may be `out`).
        x: Vector,
    },
    /// `out ← x + alpha·y`, entry by entry `xᵢ + alpha * yᵢ` (product, then sum).
    Combine {
        /// The destination (may be `x` or `y`).
        out: Vector,
        /// The first term.
        x: Vector,
        /// The factor of the second.
        alpha: T,
        /// The second term.
        y: Vector,
    },
    /// The low-rank product `out ← out + alpha·Σ_{i ∈ pairs} aᵢ (bᵢ · x)`, over the
    /// rows of the factors `a` and `b`: with `a = U`, `b = V` this is `alpha·U(Vᵀx)`.
    /// `out` is a work vector or the skipped row of `pairs`.
    LowRank {
        /// The destination.
        out: Vector,
        /// The factor of the product.
        alpha: T,
        /// The rows added.
        a: Factor,
        /// The rows dotted with `x`.
        b: Factor,
        /// Which rows.
        pairs: Pairs,
        /// The vector multiplied (a work vector).
        x: Vector,
    },
    /// `out ← value` in every entry.
    Fill {
        /// The destination.
        out: Vector,
        /// The value.
        value: T,
    },
    /// `a · b`. Reply: [`Reply::Scalar`].
    Dot {
        /// First vector.
        a: Vector,
        /// Second vector.
        b: Vector,
    },
    /// `‖a‖₂`, correct at every scale (no overflow of the squares). Reply:
    /// [`Reply::Scalar`].
    Norm {
        /// The vector.
        a: Vector,
    },
    /// Whether every entry of `a` is finite. Reply: [`Reply::Flag`].
    AllFinite {
        /// The vector.
        a: Vector,
    },
    /// The solve has ended; `z` holds the iterate the report describes.
    Done(crate::Report<T>),
}

/// The result of an [`Op`], fed back through
/// [`BroydenState::advance`](super::BroydenState::advance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reply<T: Real = f32> {
    /// For the operations that return nothing.
    None,
    /// For [`Op::Dot`] and [`Op::Norm`].
    Scalar(T),
    /// For [`Op::AllFinite`].
    Flag(bool),
}

impl<T: Real> Reply<T> {
    /// The scalar replied, NaN for a reply of another kind (which then ends the solve as
    /// non-finite or skips the update: never a panic).
    pub fn scalar(self) -> T {
        if let Reply::Scalar(s) = self { s } else { T::NAN }
    }

    /// The flag replied, `false` for a reply of another kind.
    pub fn flag(self) -> bool {
        matches!(self, Reply::Flag(true))
    }
}

/// The vectors of one Broyden solve as slices, and the executor of its operations on
/// them: `u`, `v` (`m·n` each, row-major), the five work vectors (`5·n`) and the
/// caller's best iterate `z` (`n`).
pub struct SliceVectors<'b, T> {
    n: usize,
    u: &'b mut [T],
    v: &'b mut [T],
    work: &'b mut [T],
    z: &'b mut [T],
}

/// The part of one buffer left readable while a vector of it is being written: the
/// entries before the output (`lo`) and after it (`hi`, starting at `hi_at`).
struct Around<'b, T> {
    lo: &'b [T],
    hi: &'b [T],
    hi_at: usize,
}

impl<T> Clone for Around<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Around<'_, T> {}

impl<'b, T> Around<'b, T> {
    /// Entries `at .. at + len`, if they do not touch the output.
    fn get(self, at: usize, len: usize) -> Option<&'b [T]> {
        let end = at.checked_add(len)?;
        if end <= self.lo.len() {
            self.lo.get(at..end)
        } else if at >= self.hi_at {
            self.hi.get(at - self.hi_at..end - self.hi_at)
        } else {
            None
        }
    }
}

/// Which buffer a vector lives in (0: work, 1: `u`, 2: `v`, 3: `z`) and where.
fn locate(v: Vector, n: usize) -> Option<(usize, usize)> {
    let (buf, row) = match v {
        Vector::U(i) => (1, i),
        Vector::V(i) => (2, i),
        Vector::Best => (3, 0),
        w => (0, w.work_index()?),
    };
    Some((buf, row.checked_mul(n)?))
}

impl<'b, T: Real> SliceVectors<'b, T> {
    /// The vectors of a solve of `n` unknowns over these slices (`u`, `v` of `m·n`
    /// entries for `m` pairs, `work` of `5·n`, `z` of `n`). Slices too short for an
    /// operation make it do nothing (and reply as if not finite); none is checked here.
    pub fn new(n: usize, u: &'b mut [T], v: &'b mut [T], work: &'b mut [T], z: &'b mut [T]) -> Self {
        SliceVectors { n, u, v, work, z }
    }

    /// Carries out `op` on these vectors and returns its reply: how every Broyden solve
    /// of this crate runs. [`Op::Evaluate`] and [`Op::Done`] do nothing here (evaluation
    /// is the caller's). An operation naming vectors outside the slices, or writing into
    /// a row it also reads, does nothing and replies as if its result were not finite;
    /// nothing here panics.
    pub fn execute(&mut self, op: &Op<T>) -> Reply<T> {
        execute(self, op)
    }

    fn bufs(&mut self) -> [&mut [T]; 4] {
        [&mut *self.work, &mut *self.u, &mut *self.v, &mut *self.z]
    }

    /// A vector, read-only.
    fn read(&self, v: Vector) -> Option<&[T]> {
        let (buf, at) = locate(v, self.n)?;
        let b: &[T] = match buf {
            0 => self.work,
            1 => self.u,
            2 => self.v,
            _ => self.z,
        };
        b.get(at..at.checked_add(self.n)?)
    }

    /// The output vector `out`, writable, and the four buffers around it, readable.
    fn split(&mut self, out: Vector) -> Option<(&mut [T], [Around<'_, T>; 4])> {
        let n = self.n;
        let (ob, at) = locate(out, n)?;
        let mut target = None;
        let mut around = [Around { lo: &[][..], hi: &[][..], hi_at: 0 }; 4];
        for (i, (buf, a)) in self.bufs().into_iter().zip(&mut around).enumerate() {
            if i == ob {
                let (lo, rest) = buf.split_at_mut_checked(at)?;
                let (mid, hi) = rest.split_at_mut_checked(n)?;
                target = Some(mid);
                *a = Around { lo, hi, hi_at: at + n };
            } else {
                let len = buf.len();
                *a = Around { lo: buf, hi: &[], hi_at: len };
            }
        }
        Some((target?, around))
    }
}

/// An input of an operation writing `out`: `None` when it is `out` itself, `Some(None)`
/// when it cannot be read (a vector outside the buffers).
fn input<'b, T>(around: &[Around<'b, T>; 4], out: Vector, v: Vector, n: usize) -> Option<Option<&'b [T]>> {
    if v == out {
        return None;
    }
    Some(locate(v, n).and_then(|(buf, at)| around.get(buf)?.get(at, n)))
}

/// The rows of `pairs` of a factor buffer: those before the skipped row and those after.
fn rows<'b, T>(buf: Around<'b, T>, n: usize, pairs: Pairs) -> Option<(&'b [T], &'b [T])> {
    let cut = pairs.skip.map_or(pairs.end, |s| s.min(pairs.end));
    let lo = buf.get(0, cut.checked_mul(n)?)?;
    let hi = match pairs.skip {
        Some(s) if s < pairs.end => {
            let at = s.checked_add(1)?.checked_mul(n)?;
            buf.get(at, (pairs.end - s - 1).checked_mul(n)?)?
        }
        _ => &[],
    };
    Some((lo, hi))
}

/// See [`SliceVectors::execute`].
fn execute<T: Real>(s: &mut SliceVectors<'_, T>, op: &Op<T>) -> Reply<T> {
    let n = s.n;
    let failed = match op {
        Op::Dot { .. } | Op::Norm { .. } => Reply::Scalar(T::NAN),
        Op::AllFinite { .. } => Reply::Flag(false),
        _ => Reply::None,
    };
    match *op {
        Op::Evaluate { .. } | Op::Done(_) => Reply::None,
        Op::Dot { a, b } => match (s.read(a), s.read(b)) {
            (Some(a), Some(b)) => Reply::Scalar(kernels::dot(a, b)),
            _ => failed,
        },
        Op::Norm { a } => s.read(a).map_or(failed, |a| Reply::Scalar(kernels::norm(a))),
        Op::AllFinite { a } => s.read(a).map_or(failed, |a| Reply::Flag(a.iter().all(|x| x.is_finite()))),
        Op::Copy { from, to } => {
            let Some((out, around)) = s.split(to) else { return failed };
            if let Some(Some(src)) = input(&around, to, from, n) {
                copy(src, out);
            }
            Reply::None
        }
        Op::Fill { out, value } => {
            if let Some((out, _)) = s.split(out) {
                out.fill(value);
            }
            Reply::None
        }
        Op::Scale { out, alpha, x } => {
            let Some((o, around)) = s.split(out) else { return failed };
            match input(&around, out, x, n) {
                None => o.iter_mut().for_each(|oi| *oi = alpha * *oi),
                Some(Some(x)) => o.iter_mut().zip(x).for_each(|(oi, xi)| *oi = alpha * *xi),
                Some(None) => {}
            }
            Reply::None
        }
        Op::Combine { out, x, alpha, y } => {
            let Some((o, around)) = s.split(out) else { return failed };
            match (input(&around, out, x, n), input(&around, out, y, n)) {
                // out ← out + α·y
                (None, Some(Some(y))) => kernels::axpy(alpha, y, o),
                // out ← x + α·out
                (Some(Some(x)), None) => o.iter_mut().zip(x).for_each(|(oi, xi)| *oi = *xi + alpha * *oi),
                (None, None) => o.iter_mut().for_each(|oi| *oi = *oi + alpha * *oi),
                (Some(Some(x)), Some(Some(y))) => {
                    copy(x, o);
                    kernels::axpy(alpha, y, o);
                }
                _ => {}
            }
            Reply::None
        }
        Op::LowRank { out, alpha, a, b, pairs, x } => {
            let Some((o, around)) = s.split(out) else { return failed };
            let factor = |f: Factor| rows(around[if f == Factor::U { 1 } else { 2 }], n, pairs);
            if let (Some(Some(x)), Some((a_lo, a_hi)), Some((b_lo, b_hi))) =
                (input(&around, out, x, n), factor(a), factor(b))
            {
                kernels::low_rank_acc(alpha, a_lo, b_lo, n, x, o);
                kernels::low_rank_acc(alpha, a_hi, b_hi, n, x, o);
            }
            Reply::None
        }
    }
}
