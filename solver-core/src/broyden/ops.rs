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
            | Op::LowRank { out: a, x: b, .. }
            | Op::AddOuter { coef: a, x: b, .. }
            | Op::Dot { a, b } => {
                (*a, *b) = (name(*a), name(*b));
            }
            Op::Combine { out, x, y, .. } => {
                (*out, *x, *y) = (name(*out), name(*x), name(*y));
            }
            Op::Fill { out: a, .. } | Op::Unit { out: a, .. } | Op::Norm { a } | Op::AllFinite { a } => {
                *a = name(*a);
            }
            Op::Invert { .. } | Op::Done(_) => {}
        }
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

pub use super::slices::SliceVectors;
