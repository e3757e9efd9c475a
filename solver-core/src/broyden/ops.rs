//! The vector operations of a Broyden solve, as values: the vocabulary an executor
//! carries out.
//!
//! A Broyden iteration alternates between decisions on a few scalars (is the step
//! accepted? is the update worth storing? has the solve converged?) and `O(n)` work on
//! vectors. [`BroydenState`](super::BroydenState) makes the decisions, in iteration order
//! (`iteration.rs`); every piece of vector work it needs is one [`Op`], a generic
//! operation of linear algebra on named vectors (copy, scale, `x + αy`, the low-rank
//! product, a dot product, a norm, a finiteness test; for the dense model of a small
//! root solve, a unit vector, a rank-one update of rows and a dense inverse), whose
//! result comes back as a [`Reply`]. The ops know nothing of Broyden's method: its formulas exist only in the
//! iteration, so a variant of the method is a change there alone, and every executor
//! (these slices, solver-host's CUDA kernels, the Python package's torch executor) runs
//! it unchanged.
//!
//! # Fused operations
//!
//! Where the kernels have vector registers (`cfg(simd)`: x86, AArch64, wasm32, ARM with
//! NEON), a low-rank product can carry the vector work that follows it in the same pass
//! ([`Then`]: the secant and the new pair of an update) and form ahead the dot products
//! a later product needs (`ahead`, kept in an [`Ahead`]), so that an iteration reads the
//! history once per factor. Each such operation stands for a sequence of primitive ones
//! ([`Op::lowered`], carried out part by part by [`Lowering`]) with the same values bit
//! for bit: an executor that does not fuse (CUDA, torch, through solver-host's
//! `OffloadRun`) carries out the parts. On Cortex-M the fused vocabulary does not exist
//! and the iteration asks for the parts itself.
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

/// What an [`Op::LowRank`] does after its product, entry by entry in the same pass
/// (each entry of `out` is final by then), with the values of the operations it stands
/// for ([`Op::lowered`], in that order).
#[cfg(simd)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Then<T: Real = f32> {
    /// Nothing more.
    Nothing,
    /// `before · g` (with `out`'s entries before the product), then `g ← gn − g`, then
    /// (after the product) the dots `out · g`, `‖out‖₂`, `‖g‖₂` and `out · gn`. Reply:
    /// [`Reply::Scalars`] of those five, in that order. `g`, `gn` are work vectors
    /// other than `out`, `from` and `x`.
    Secant {
        /// Dotted with `out` before, then replaced by `gn − g`.
        g: Vector,
        /// The other term.
        gn: Vector,
    },
    /// `row ← r·(out + (−c)·row)` (`r·out` when `c` is `None`), then `out ← out +
    /// (−s)·row`, then `trial ← point + out`. Reply: [`Reply::Flags`]: whether every
    /// entry of the new `row`, and of the new `out`, is finite. `row` is the skipped row
    /// of the product's pairs; `point` and `trial` are work vectors other than `out`.
    Pair {
        /// The row formed (and read first, with `c`).
        row: Vector,
        /// The factor of the old `row`, if it is read.
        c: Option<T>,
        /// The scale of the new `row`.
        r: T,
        /// The factor of the new `row` taken from `out`.
        s: T,
        /// The point moved by the new `out`.
        point: Vector,
        /// Where the moved point goes.
        trial: Vector,
    },
}

/// Where the reply of a primitive part of a lowered operation goes ([`Op::lowered`]).
#[cfg(simd)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// It is the operation's reply (an operation that is its own lowering).
    Whole,
    /// Nowhere: the part has no reply.
    Ignored,
    /// Scalar `i` of a [`Reply::Scalars`].
    Scalar(usize),
    /// Flag `i` of a [`Reply::Flags`].
    Flag(usize),
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
    /// The low-rank product `out ← beta·from + alpha·Σ_{i ∈ pairs} aᵢ (bᵢ · x)`, and
    /// what follows it (`then`), over
    /// the rows of the factors `a` and `b`: with `a = U`, `b = V`, `from = out` and
    /// `beta = 1` this is `out ← out + alpha·U(Vᵀx)`. `out` is a work vector or the
    /// skipped row of `pairs`; `from` and `x` are work vectors (`from` may be `out` or
    /// `x`, and is read before `out` is written, entry by entry as a [`Op::Scale`] into
    /// `out` would round it).
    LowRank {
        /// The destination.
        out: Vector,
        /// What `out` starts from, times `beta`.
        from: Vector,
        /// The factor of `from`.
        beta: T,
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
        /// A hint, which changes no result: a later low-rank product dots rows of `a`
        /// (as its `b`) with this vector, so an executor may form those dot products
        /// now, from the reads of `a`'s rows this product makes anyway, and use them
        /// then if nothing in between has written that vector or those rows
        /// ([`SliceVectors`] does, keeping them in an [`Ahead`]). With [`Then::Pair`] it
        /// is `out` itself: the dots are with the new `out`, and include the new `row`.
        /// Lowering drops it. (Only where the kernels fuse: `cfg(simd)`.)
        #[cfg(simd)]
        ahead: Option<Vector>,
        /// The vector work that follows the product in the same pass ([`Then`]), and
        /// the reply: [`Reply::None`] for [`Then::Nothing`]. (Only where the kernels
        /// fuse: `cfg(simd)`.)
        #[cfg(simd)]
        then: Then<T>,
    },
    /// `out ← value` in every entry.
    Fill {
        /// The destination.
        out: Vector,
        /// The value.
        value: T,
    },
    /// `out ← value·e_index`: zero but for entry `index`, which is `value` (all zero when
    /// `index ≥ n`).
    Unit {
        /// The destination.
        out: Vector,
        /// The entry set.
        index: usize,
        /// Its value.
        value: T,
    },
    /// The rank-one update `aⱼ ← aⱼ + coef[j]·x` of the rows `j < rows` of the factor
    /// `a` (`rows ≤ n`): with `a = U` and `V`'s rows `eⱼ`, `U Vᵀ ← U Vᵀ + x coefᵀ`.
    /// `coef` and `x` are work vectors.
    AddOuter {
        /// The rows updated.
        a: Factor,
        /// How many (the first ones).
        rows: usize,
        /// Row `j` gets `coef[j]` times `x`.
        coef: Vector,
        /// The vector added.
        x: Vector,
    },
    /// A dense inverse: with `V`'s first `rows = n` rows the columns of an `n × n`
    /// matrix `A` (`vⱼ = A eⱼ`), sets `uⱼ ← A⁻¹eⱼ + shift·eⱼ` and `vⱼ ← eⱼ`, so that
    /// `−shift·I + U Vᵀ = A⁻¹`. Reply: [`Reply::Flag`], whether `A` was invertible (a
    /// zero or non-finite pivot, or a non-finite inverse, answers `false` and leaves
    /// those rows of `U` and `V` unspecified).
    Invert {
        /// The order of `A` (the dimension `n`).
        rows: usize,
        /// Added to the inverse's diagonal.
        shift: T,
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

impl<T: Real> Op<T> {
    /// Renames the vectors of this operation by `name` (rows, factors and scalars
    /// unchanged), in place: how the iteration swaps the roles of two buffers instead of
    /// copying one into the other.
    #[inline(always)]
    pub(crate) fn rename(&mut self, name: impl Fn(Vector) -> Vector) {
        match self {
            Op::Evaluate { point: a, out: b }
            | Op::Copy { from: a, to: b }
            | Op::Scale { out: a, x: b, .. }
            | Op::AddOuter { coef: a, x: b, .. }
            | Op::Dot { a, b } => {
                (*a, *b) = (name(*a), name(*b));
            }
            Op::Combine { out, x, y, .. } => {
                (*out, *x, *y) = (name(*out), name(*x), name(*y));
            }
            #[cfg(not(simd))]
            Op::LowRank { out, from, x, .. } => {
                (*out, *from, *x) = (name(*out), name(*from), name(*x));
            }
            #[cfg(simd)]
            Op::LowRank { out, from, x, ahead, then, .. } => {
                (*out, *from, *x) = (name(*out), name(*from), name(*x));
                *ahead = ahead.map(&name);
                match then {
                    Then::Nothing => {}
                    Then::Secant { g, gn } => (*g, *gn) = (name(*g), name(*gn)),
                    Then::Pair { row, point, trial, .. } => {
                        (*row, *point, *trial) = (name(*row), name(*point), name(*trial))
                    }
                }
            }
            Op::Fill { out: a, .. } | Op::Unit { out: a, .. } | Op::Norm { a } | Op::AllFinite { a } => {
                *a = name(*a);
            }
            Op::Invert { .. } | Op::Done(_) => {}
        }
    }

    /// Part `k` of this operation in the primitive vocabulary, with where its reply
    /// goes; `None` past the last. The primitive vocabulary is what an executor that
    /// does not fuse carries out (the CUDA kernels and the Python package's torch
    /// executor, through solver-host's `OffloadRun`; the slice executor where a fused
    /// pass does not apply): a low-rank product that starts from `beta·from` is a
    /// [`Op::Scale`] into `out` and then the product added to `out`; a [`Then`] is the
    /// operations it stands for, in order; `ahead` is dropped. The values are the same,
    /// bit for bit, as the slice executor's. Every other operation is its own lowering
    /// (part 0, [`Part::Whole`]).
    #[cfg(simd)]
    pub fn lowered(&self, k: usize) -> Option<(Op<T>, Part)> {
        let Op::LowRank { out, from, beta, alpha, a, b, pairs, x, ahead, then } = *self else {
            return (k == 0).then_some((*self, Part::Whole));
        };
        if (from, beta, ahead, then) == (out, T::ONE, None, Then::Nothing) {
            return (k == 0).then_some((*self, Part::Whole));
        }
        // The parts as small tags (the operations are made for the one asked for only,
        // so that no list of operations takes stack).
        #[derive(Clone, Copy)]
        enum Piece {
            Start,
            Product,
            BeforeDot,
            Difference,
            Dot,
            OutNorm,
            GNorm,
            GnDot,
            RowCombine,
            RowScale,
            RowFinite,
            OutCombine,
            OutFinite,
            Trial,
        }
        let start = (from != out || beta != T::ONE).then_some(Piece::Start);
        let pieces: [Option<Piece>; 9] = match then {
            Then::Nothing => [start, Some(Piece::Product), None, None, None, None, None, None, None],
            Then::Secant { .. } => [
                Some(Piece::BeforeDot),
                Some(Piece::Difference),
                start,
                Some(Piece::Product),
                Some(Piece::Dot),
                Some(Piece::OutNorm),
                Some(Piece::GNorm),
                Some(Piece::GnDot),
                None,
            ],
            Then::Pair { c, .. } => [
                start,
                Some(Piece::Product),
                c.map(|_| Piece::RowCombine),
                Some(Piece::RowScale),
                Some(Piece::RowFinite),
                Some(Piece::OutCombine),
                Some(Piece::OutFinite),
                Some(Piece::Trial),
                None,
            ],
        };
        let piece = pieces.into_iter().flatten().nth(k)?;
        let (g, gn) = match then {
            Then::Secant { g, gn } => (g, gn),
            _ => (out, out),
        };
        let (row, c, r, s, point, trial) = match then {
            Then::Pair { row, c, r, s, point, trial } => (row, c, r, s, point, trial),
            _ => (out, None, T::ONE, T::ZERO, out, out),
        };
        let none = T::ZERO;
        Some(match piece {
            Piece::Start => (Op::Scale { out, alpha: beta, x: from }, Part::Ignored),
            Piece::Product => {
                let product = Op::LowRank {
                    out,
                    from: out,
                    beta: T::ONE,
                    alpha,
                    a,
                    b,
                    pairs,
                    x,
                    ahead: None,
                    then: Then::Nothing,
                };
                (product, Part::Ignored)
            }
            Piece::BeforeDot => (Op::Dot { a: out, b: g }, Part::Scalar(0)),
            Piece::Difference => (Op::Combine { out: g, x: gn, alpha: -T::ONE, y: g }, Part::Ignored),
            Piece::Dot => (Op::Dot { a: out, b: g }, Part::Scalar(1)),
            Piece::OutNorm => (Op::Norm { a: out }, Part::Scalar(2)),
            Piece::GNorm => (Op::Norm { a: g }, Part::Scalar(3)),
            Piece::GnDot => (Op::Dot { a: out, b: gn }, Part::Scalar(4)),
            Piece::RowCombine => {
                (Op::Combine { out: row, x: out, alpha: -c.unwrap_or(none), y: row }, Part::Ignored)
            }
            Piece::RowScale => {
                let from = if c.is_some() { row } else { out };
                (Op::Scale { out: row, alpha: r, x: from }, Part::Ignored)
            }
            Piece::RowFinite => (Op::AllFinite { a: row }, Part::Flag(0)),
            Piece::OutCombine => (Op::Combine { out, x: out, alpha: -s, y: row }, Part::Ignored),
            Piece::OutFinite => (Op::AllFinite { a: out }, Part::Flag(1)),
            Piece::Trial => (Op::Combine { out: trial, x: point, alpha: T::ONE, y: out }, Part::Ignored),
        })
    }

    /// Whether this is in the primitive vocabulary (its own lowering).
    #[cfg(simd)]
    pub fn is_primitive(&self) -> bool {
        matches!(self.lowered(0), Some((_, Part::Whole)))
    }
}

/// An operation carried out as its primitive parts ([`Op::lowered`]), one at a time:
/// [`next_part`](Self::next_part) gives a part, [`answer`](Self::answer) takes its reply, and
/// once `next_part` gives `None`, [`reply`](Self::reply) is the operation's.
#[cfg(simd)]
#[derive(Clone, Copy, Debug)]
pub struct Lowering<T: Real = f32> {
    op: Op<T>,
    next: usize,
    part: Part,
    reply: Reply<T>,
}

#[cfg(simd)]
impl<T: Real> Lowering<T> {
    /// `op`, none of its parts carried out yet.
    pub fn new(op: Op<T>) -> Self {
        let reply = match op {
            Op::LowRank { then: Then::Secant { .. }, .. } => Reply::Scalars([T::NAN; 5]),
            Op::LowRank { then: Then::Pair { .. }, .. } => Reply::Flags([false; 2]),
            _ => Reply::None,
        };
        Lowering { op, next: 0, part: Part::Ignored, reply }
    }

    /// The operation being carried out.
    pub fn op(&self) -> &Op<T> {
        &self.op
    }

    /// The next part to carry out, `None` when all have been.
    pub fn next_part(&mut self) -> Option<Op<T>> {
        let (op, part) = self.op.lowered(self.next)?;
        self.next += 1;
        self.part = part;
        Some(op)
    }

    /// Takes the reply to the part [`next_part`](Self::next_part) gave last.
    pub fn answer(&mut self, reply: Reply<T>) {
        match (self.part, &mut self.reply) {
            (Part::Whole, r) => *r = reply,
            (Part::Scalar(i), Reply::Scalars(s)) => {
                if let Some(s) = s.get_mut(i) {
                    *s = reply.scalar();
                }
            }
            (Part::Flag(i), Reply::Flags(f)) => {
                if let Some(f) = f.get_mut(i) {
                    *f = reply.flag();
                }
            }
            _ => {}
        }
    }

    /// The operation's reply, from its parts' replies.
    pub fn reply(&self) -> Reply<T> {
        self.reply
    }
}

/// The result of an [`Op`], fed back through
/// [`BroydenState::advance`](super::BroydenState::advance).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reply<T: Real = f32> {
    /// For the operations that return nothing.
    None,
    /// For [`Op::Dot`] and [`Op::Norm`].
    Scalar(T),
    /// For [`Op::AllFinite`] and [`Op::Invert`].
    Flag(bool),
    /// For an [`Op::LowRank`] with [`Then::Secant`] (`cfg(simd)`).
    #[cfg(simd)]
    Scalars([T; 5]),
    /// For an [`Op::LowRank`] with [`Then::Pair`] (`cfg(simd)`).
    #[cfg(simd)]
    Flags([bool; 2]),
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

    /// The scalars replied, NaN for a reply of another kind.
    #[cfg(simd)]
    pub fn scalars(self) -> [T; 5] {
        if let Reply::Scalars(s) = self { s } else { [T::NAN; 5] }
    }

    /// The flags replied, `false` for a reply of another kind.
    #[cfg(simd)]
    pub fn flags(self) -> [bool; 2] {
        if let Reply::Flags(f) = self { f } else { [false; 2] }
    }
}

#[cfg(simd)]
pub use super::ahead::Ahead;
pub use super::slices::SliceVectors;
