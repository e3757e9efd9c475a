//! The slice executor: [`SliceVectors`] carries out the [`Op`]s of a Broyden solve on
//! the solver's own buffers (every solve in this crate runs through it). The common
//! shapes (every input a work vector or the output itself) take fast paths that build
//! no view of the other buffers; every other shape goes through one general, `#[cold]`
//! path that splits the buffers around the output.

#[cfg(simd)]
use super::ahead::{Ahead, Style};
use super::ops::{Factor, Op, Pairs, Reply, Vector};
#[cfg(simd)]
use super::ops::{Lowering, Then};

#[cfg(simd)]
mod fused;
mod narrow;
use crate::Real;
use crate::kernels::{self, RowElem, copy};

/// The vectors of one Broyden solve as slices, and the executor of its operations on
/// them: `u`, `v` (`m·n` each, row-major, of `T` or of a narrower [`RowElem`] `E`: a
/// history kept in `bf16`), the five work vectors (`5·n`) and the caller's best
/// iterate `z` (`n`).
///
/// With rows of `E = T` every operation takes the kernels of `T`. With `bf16` rows the
/// low-rank products (plain and fused) take the same kernels over the narrow rows
/// (widened as loaded, the rows they write rounded as stored, every later use of a
/// written row its stored value), operations that touch no row run exactly as with
/// `T` rows, and the rest (an operation on a row by itself: the updates of the first
/// iterations and of backtracked steps) entry by entry.
pub struct SliceVectors<'b, T, E = T> {
    n: usize,
    u: &'b mut [E],
    v: &'b mut [E],
    work: &'b mut [T],
    z: &'b mut [T],
    /// Where the dots formed ahead are kept ([`keeping`](Self::keeping)); without it
    /// none are formed (nor anywhere the kernels do not fuse).
    #[cfg(simd)]
    ahead: Option<&'b mut Ahead<T>>,
}

/// The part of one buffer left readable while a vector of it is being written: the
/// entries before the output (`lo`) and after it (`hi`, starting at `hi_at`). A buffer
/// that holds no output is all `lo`.
struct Around<'s, T> {
    lo: &'s [T],
    hi: &'s [T],
    hi_at: usize,
}

impl<T> Clone for Around<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Around<'_, T> {}

impl<'s, T> Around<'s, T> {
    /// A buffer that holds no output.
    fn whole(buf: &'s [T]) -> Self {
        Around { lo: buf, hi: &[], hi_at: buf.len() }
    }

    /// Entries `at .. at + len`, if they do not touch the output.
    fn get(self, at: usize, len: usize) -> Option<&'s [T]> {
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

/// `buf` cut around its `n` entries at `at`: the rest, readable, and those `n` entries,
/// writable.
fn cut<T>(buf: &mut [T], at: usize, n: usize) -> Option<(Around<'_, T>, &mut [T])> {
    let (lo, rest) = buf.split_at_mut_checked(at)?;
    let (mid, hi) = rest.split_at_mut_checked(n)?;
    Some((Around { lo, hi, hi_at: at + n }, mid))
}

/// The vectors while an operation writes one of them (`at`): the output, writable, and
/// everything else, readable.
struct Split<'s, T> {
    out: &'s mut [T],
    at: Vector,
    n: usize,
    work: Around<'s, T>,
    u: Around<'s, T>,
    v: Around<'s, T>,
    z: &'s [T],
}

impl<'s, T> Split<'s, T> {
    /// A vector other than the output, if it lies in the buffers and does not overlap
    /// the output.
    fn find(&self, v: Vector) -> Option<&'s [T]> {
        let n = self.n;
        match v {
            Vector::U(i) => self.u.get(i.checked_mul(n)?, n),
            Vector::V(i) => self.v.get(i.checked_mul(n)?, n),
            Vector::Best => self.z.get(..n),
            w => self.work.get(w.work_index()?.checked_mul(n)?, n),
        }
    }

    /// An input `v` of the operation: `None` when it is the output itself (to be read
    /// through the output), `Some(None)` when it cannot be read (a vector outside the
    /// buffers, or one overlapping the output).
    fn input(&self, v: Vector) -> Option<Option<&'s [T]>> {
        if v == self.at { None } else { Some(self.find(v)) }
    }

    /// The rows of `pairs` of a factor: those before the skipped row and those after.
    fn rows(&self, f: Factor, pairs: Pairs) -> Option<(&'s [T], &'s [T])> {
        rows(if f == Factor::U { self.u } else { self.v }, self.n, pairs)
    }
}

impl<'b, T: Real, E: RowElem<T>> SliceVectors<'b, T, E> {
    /// The vectors of a solve of `n` unknowns over these slices (`u`, `v` of `m·n`
    /// entries for `m` pairs, `work` of `5·n`, `z` of `n`). Slices too short for an
    /// operation make it do nothing (and reply as if not finite); none is checked here.
    pub fn new(n: usize, u: &'b mut [E], v: &'b mut [E], work: &'b mut [T], z: &'b mut [T]) -> Self {
        SliceVectors {
            n,
            u,
            v,
            work,
            z,
            #[cfg(simd)]
            ahead: None,
        }
    }

    /// These vectors, keeping in `ahead` the dot products that low-rank operations form
    /// ahead for later ones ([`Op::LowRank`]'s `ahead`), so that a later operation need
    /// not read those rows again (a solver keeps one per solve, so that dots formed
    /// before an evaluation serve after it; forget them when a solve starts). The
    /// results are the same without it, bit for bit.
    #[cfg(simd)]
    pub fn keeping(self, ahead: &'b mut Ahead<T>) -> Self {
        SliceVectors { ahead: Some(ahead), ..self }
    }

    /// Carries out `op` on these vectors and returns its reply: how every Broyden solve
    /// of this crate runs. [`Op::Evaluate`] and [`Op::Done`] do nothing here (evaluation
    /// is the caller's). An operation naming vectors outside the slices, or writing into
    /// a row it also reads, does nothing and replies as if its result were not finite;
    /// nothing here panics.
    pub fn execute(&mut self, op: &Op<T>) -> Reply<T> {
        execute_rows(self, op)
    }

    /// [`execute`](Self::execute), taking the operation by value (so that a caller that
    /// makes it just before need not keep it in memory).
    #[inline(always)]
    pub(crate) fn run(&mut self, op: Op<T>) -> Reply<T> {
        execute_rows(self, &op)
    }

    /// These vectors with rows of `T`, when they are (`E = T`).
    #[inline(always)]
    fn wide(&mut self) -> Option<SliceVectors<'_, T>> {
        Some(SliceVectors {
            n: self.n,
            u: E::wide_mut(self.u)?,
            v: E::wide_mut(self.v)?,
            work: self.work,
            z: self.z,
            #[cfg(simd)]
            ahead: self.ahead.as_deref_mut(),
        })
    }

    /// These vectors without the rows (for an operation that touches none).
    fn no_rows(&mut self) -> SliceVectors<'_, T> {
        SliceVectors {
            n: self.n,
            u: &mut [],
            v: &mut [],
            work: self.work,
            z: self.z,
            #[cfg(simd)]
            ahead: self.ahead.as_deref_mut(),
        }
    }
}

impl<T: Real> SliceVectors<'_, T> {
    /// A vector, read-only.
    fn read(&self, v: Vector) -> Option<&[T]> {
        let n = self.n;
        match v {
            Vector::U(i) => row(self.u, i, n),
            Vector::V(i) => row(self.v, i, n),
            Vector::Best => self.z.get(..n),
            w => row(self.work, w.work_index()?, n),
        }
    }

    /// The output vector `out`, writable, and everything else, readable.
    fn split(&mut self, out: Vector) -> Option<Split<'_, T>> {
        let n = self.n;
        let SliceVectors { work, u, v, z, .. } = self;
        let (work, u, v, z) = (&mut **work, &mut **u, &mut **v, &mut **z);
        let whole = Around::whole;
        Some(match out {
            Vector::U(i) => {
                let (u, row) = cut(u, i.checked_mul(n)?, n)?;
                Split { out: row, at: out, n, work: whole(work), u, v: whole(v), z }
            }
            Vector::V(i) => {
                let (v, row) = cut(v, i.checked_mul(n)?, n)?;
                Split { out: row, at: out, n, work: whole(work), u: whole(u), v, z }
            }
            Vector::Best => Split {
                out: z.get_mut(..n)?,
                at: out,
                n,
                work: whole(work),
                u: whole(u),
                v: whole(v),
                z: &[],
            },
            w => {
                let (work, row) = cut(work, w.work_index()?.checked_mul(n)?, n)?;
                Split { out: row, at: out, n, work, u: whole(u), v: whole(v), z }
            }
        })
    }
}

/// The vector `r`, writable, if it is a row of `u` or `v` or (`Best`) `z`.
fn row_mut<'a, T>(
    u: &'a mut [T],
    v: &'a mut [T],
    z: &'a mut [T],
    n: usize,
    r: Vector,
) -> Option<&'a mut [T]> {
    let (buf, at) = match r {
        Vector::U(i) => (u, i.checked_mul(n)?),
        Vector::V(i) => (v, i.checked_mul(n)?),
        Vector::Best => (z, 0),
        _ => return None,
    };
    buf.get_mut(at..at.checked_add(n)?)
}

/// Row `r` of `U` or `V`, writable, and the two factor buffers around it (the other one
/// whole); `None` for a work vector or `z`, or a row outside its buffer.
fn cut_row<'a, T>(
    u: &'a mut [T],
    v: &'a mut [T],
    r: Vector,
    n: usize,
) -> Option<(&'a mut [T], Around<'a, T>, Around<'a, T>)> {
    match r {
        Vector::U(i) => {
            let (u, o) = cut(u, i.checked_mul(n)?, n)?;
            Some((o, u, Around::whole(v)))
        }
        Vector::V(i) => {
            let (v, o) = cut(v, i.checked_mul(n)?, n)?;
            Some((o, Around::whole(u), v))
        }
        _ => None,
    }
}

/// Row `i` (of `n` entries) of the row-major `buf`.
fn row<T>(buf: &[T], i: usize, n: usize) -> Option<&[T]> {
    let at = i.checked_mul(n)?;
    buf.get(at..at.checked_add(n)?)
}

/// `out ← x + alpha·y` entry by entry, each of `x` and `y` a slice or (`None`) `out`
/// itself, every entry computed by `term(xᵢ, yᵢ)`.
#[inline(always)]
fn combine<T: Real>(out: &mut [T], x: Option<&[T]>, y: Option<&[T]>, term: impl Fn(T, T) -> T) {
    match (x, y) {
        (None, Some(y)) => out.iter_mut().zip(y).for_each(|(o, y)| *o = term(*o, *y)),
        (Some(x), None) => out.iter_mut().zip(x).for_each(|(o, x)| *o = term(*x, *o)),
        (None, None) => out.iter_mut().for_each(|o| *o = term(*o, *o)),
        (Some(x), Some(y)) => out.iter_mut().zip(x).zip(y).for_each(|((o, x), y)| *o = term(*x, *y)),
    }
}

/// Where an input of an operation is, as the common cases see it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The output itself (read through it).
    Out,
    /// Work vector `i`, not the output.
    Work(usize),
    /// Elsewhere (a row of `U` or `V`, or `z`): the general case.
    Other,
}

/// Where `v` is, for an operation writing `out`.
#[inline(always)]
fn place(v: Vector, out: Vector) -> Place {
    if v == out { Place::Out } else { v.work_index().map_or(Place::Other, Place::Work) }
}

/// The work buffer cut around its vector `o` (vectors of `n` entries): the entries
/// before, the vector (writable), the entries after.
#[inline(always)]
fn cut_work<T>(work: &mut [T], o: usize, n: usize) -> Option<(&[T], &mut [T], &[T])> {
    let (lo, rest) = work.split_at_mut_checked(o.checked_mul(n)?)?;
    let (out, hi) = rest.split_at_mut_checked(n)?;
    Some((lo, out, hi))
}

/// Work vector `i` (not `o`) from the parts of the work buffer around vector `o`.
#[inline(always)]
fn around_work<'a, T>(lo: &'a [T], hi: &'a [T], o: usize, i: usize, n: usize) -> Option<&'a [T]> {
    let (part, k) = if i < o { (lo, i) } else { (hi, i.checked_sub(o)?.checked_sub(1)?) };
    let at = k.checked_mul(n)?;
    part.get(at..at.checked_add(n)?)
}

/// An input, resolved: `None` for the output itself, else the slice.
type Input<'a, T> = Option<&'a [T]>;

impl<T: Real> SliceVectors<'_, T> {
    /// Carries out `f` on the output `out`, writable, and the inputs `x`, `y`, readable
    /// (`None` where one is `out` itself); does nothing when a vector lies outside the
    /// buffers or an input overlaps the output without being it. (Operations with fewer
    /// inputs pass `out` for the others.)
    #[inline(always)]
    fn with(
        &mut self,
        out: Vector,
        x: Vector,
        y: Vector,
        f: impl FnOnce(&mut [T], Input<'_, T>, Input<'_, T>),
    ) {
        let n = self.n;
        if let Some(o) = out.work_index() {
            // Into a work vector: every input is the output itself, another work vector,
            // or a row of another buffer (`U`, `V`, `z`), which the output cannot overlap.
            let SliceVectors { u, v, work, z, .. } = self;
            let Some((lo, out_row, hi)) = cut_work(work, o, n) else { return };
            let (u, v, z) = (&**u, &**v, &**z);
            let get = |i: Vector| match i {
                _ if i == out => Some(None),
                Vector::U(r) => row(u, r, n).map(Some),
                Vector::V(r) => row(v, r, n).map(Some),
                Vector::Best => z.get(..n).map(Some),
                w => around_work(lo, hi, o, w.work_index()?, n).map(Some),
            };
            if let (Some(x), Some(y)) = (get(x), get(y)) {
                f(out_row, x, y);
            }
            return;
        }
        let (px, py) = (place(x, out), place(y, out));
        if px == Place::Other || py == Place::Other {
            return self.with_split(out, x, y, f);
        }
        // Into a row of `U` or `V`, or `z`: the inputs are in the work buffer.
        let SliceVectors { u, v, work, z, .. } = self;
        let work = &**work;
        let get = |p: Place| match p {
            Place::Work(i) => row(work, i, n).map(Some),
            _ => Some(None),
        };
        if let (Some(out), Some(x), Some(y)) = (row_mut(u, v, z, n, out), get(px), get(py)) {
            f(out, x, y);
        }
    }

    /// [`with`](Self::with) in general: into a row of `U` or `V` (or `z`), an input in
    /// another row of them. Kept out of line, so that its view of the buffers takes no
    /// stack in the common cases.
    #[inline(never)]
    #[cold]
    fn with_split(
        &mut self,
        out: Vector,
        x: Vector,
        y: Vector,
        f: impl FnOnce(&mut [T], Input<'_, T>, Input<'_, T>),
    ) {
        let Some(w) = self.split(out) else { return };
        // `Some(None)`: the output itself; `None`: unreadable.
        let get = |v: Vector| match w.input(v) {
            None => Some(None),
            Some(s) => s.map(Some),
        };
        if let (Some(x), Some(y)) = (get(x), get(y)) {
            f(w.out, x, y)
        }
    }
}

impl<T: Real, E: RowElem<T>> SliceVectors<'_, T, E> {
    /// The low-rank product of [`Op::LowRank`] (`p`): the fast paths for an output that is
    /// a work vector or a row, every other vector a work vector; the dots formed ahead
    /// used when they are the ones it needs, and formed when it asks for them.
    #[inline(always)]
    fn low_rank(&mut self, p: &LowRankOp<T>) -> Reply<T> {
        #[cfg(simd)]
        if p.then != Then::Nothing {
            return self.fused(p);
        }
        self.product(p);
        Reply::None
    }

    /// Carries out `op` as its primitive parts ([`Op::lowered`]), gathering its reply.
    #[cfg(simd)]
    #[inline(never)]
    #[cold]
    fn run_lowered(&mut self, op: Op<T>) -> Reply<T> {
        let mut lowering = Lowering::new(op);
        while let Some(part) = lowering.next_part() {
            let reply = execute_rows(self, &part);
            lowering.answer(reply);
        }
        lowering.reply()
    }

    /// The product of a low-rank operation with nothing after it.
    #[inline(always)]
    fn product(&mut self, p: &LowRankOp<T>) {
        let n = self.n;
        let LowRankOp { out, from, mut beta, .. } = *p;
        if from == out && beta != T::ONE {
            // Scaled in place first (the iteration never asks for this), as a scale
            // rounds it.
            let Some(mut wide) = self.wide() else { return self.low_rank_general(p) };
            wide.with(out, out, out, |o, _, _| combine(o, None, None, |a, _| beta * a));
            beta = T::ONE;
        }
        // Dots formed ahead exist only where the kernels fuse (not on Cortex-M, whose
        // stack then holds none of this).
        #[cfg(simd)]
        let (given, w_at) = match &self.ahead {
            Some(a) => (a.dots_for(p.b, p.pairs, p.x), p.ahead.and_then(|w| w.work_index())),
            None => (None, None),
        };
        #[cfg(not(simd))]
        let (given, w_at): (Option<[T; 8]>, Option<usize>) = (None, None);
        // `from`: no start when it is `out`, else a work vector (or the general path).
        let from_work = match from.work_index() {
            _ if from == out => None,
            Some(i) => Some(i),
            None => return self.low_rank_general(p),
        };
        let Some(xi) = p.x.work_index() else { return self.low_rank_general(p) };
        if matches!(out, Vector::U(_) | Vector::V(_)) && E::wide(&[]).is_none() {
            // Into a narrow row: entry by entry (the fused passes write the new rows).
            return self.low_rank_general(p);
        }
        #[cfg(simd)]
        let SliceVectors { u, v, work, ahead, .. } = self;
        #[cfg(not(simd))]
        let SliceVectors { u, v, work, .. } = self;
        let (o, x, s, w, u, v) = match out {
            // Into a work vector: the factors are whole.
            wv if wv.work_index().is_some() => {
                let Some(oi) = wv.work_index().filter(|&oi| oi != xi) else { return };
                let Some((lo, o, hi)) = cut_work(work, oi, n) else { return };
                let get = |i: usize| around_work(lo, hi, oi, i, n);
                let (Some(x), Some(s)) = (get(xi), from_work.map_or(Some(None), |i| get(i).map(Some))) else {
                    return;
                };
                let w = w_at.and_then(get);
                (o, x, s, w, Around::whole(u), Around::whole(v))
            }
            // Into a row of U or V (the new u or v): that factor around the row.
            Vector::U(_) | Vector::V(_) => {
                let work = &**work;
                let get = |i: usize| row(work, i, n);
                let (Some(x), Some(s)) = (get(xi), from_work.map_or(Some(None), |i| get(i).map(Some))) else {
                    return;
                };
                let w = w_at.and_then(get);
                let Some((o, u, v)) = cut_row(u, v, out, n) else { return };
                let Some(o) = E::wide_mut(o) else { return };
                (o, x, s, w, u, v)
            }
            _ => return self.low_rank_general(p),
        };
        let factor = |f: Factor| rows(if f == Factor::U { u } else { v }, n, p.pairs);
        let (Some(a), Some(b)) = (factor(p.a), factor(p.b)) else { return };
        let coefs = match &given {
            Some(d) => kernels::Coefs::Given(d),
            None => kernels::Coefs::Dots(x),
        };
        let product = kernels::LowRankProduct {
            alpha: p.alpha,
            a: [a.0, a.1],
            b: [b.0, b.1],
            n,
            coefs,
            start: s.map(|s| (beta, s)),
        };
        #[cfg(simd)]
        if let (Some(w), Some(with), Some(ahead)) = (w, p.ahead, ahead) {
            let mut dots = [T::ZERO; 8];
            if E::low_rank(&product, o, Some((w, &mut dots[..]))) {
                let k = (0..p.pairs.end).filter(|&i| p.pairs.contains(i)).count();
                let style = if k == 1 { Style::Single } else { Style::Block };
                ahead.hold((p.a, with, style), p.pairs, &dots, None);
            }
            return;
        }
        let _ = w;
        E::low_rank(&product, o, None);
    }

    /// A low-rank product in no shape of the fast paths: [`low_rank_split`]
    /// (Self::low_rank_split) over rows of `T`, entry by entry over narrower ones.
    fn low_rank_general(&mut self, p: &LowRankOp<T>) {
        match self.wide() {
            Some(mut wide) => wide.low_rank_split(p),
            None => {
                let _ = self.entrywise(&p.op());
            }
        }
    }
}

impl<T: Real> SliceVectors<'_, T> {
    /// `aⱼ ← aⱼ + coef[j]·x` for the rows `j < rows` of `a`; `coef` and `x` must be work
    /// vectors (anything else does nothing).
    #[inline(never)]
    fn add_outer(&mut self, a: Factor, rows: usize, coef: Vector, x: Vector) {
        let n = self.n;
        if n == 0 {
            return;
        }
        let (Some(c), Some(x)) = (coef.work_index(), x.work_index()) else { return };
        let (Some(c), Some(x)) = (row(self.work, c, n), row(self.work, x, n)) else { return };
        let buf = if a == Factor::U { &mut *self.u } else { &mut *self.v };
        let Some(rows) = rows.min(n).checked_mul(n).and_then(|len| buf.get_mut(..len)) else { return };
        for (r, &c) in rows.chunks_exact_mut(n).zip(c) {
            kernels::axpy(c, x, r);
        }
    }

    /// [`Op::Invert`]: Gauss–Jordan elimination with partial pivoting of `[A | I]`, `A`'s
    /// entry `(i, j)` at `v[j·n + i]` and the identity's in `u`, each row operation
    /// applied to both, so that `u` ends as `A⁻¹` (its rows the inverse's columns). Only
    /// an exactly zero pivot counts as singular: a relative threshold (`n·ε·max|Aᵢⱼ|`)
    /// refused the badly scaled Jacobians of three classic f32 cases that the inverse
    /// solves (root_table: 35 solved in f32 without it, 32 with it).
    /// `O(n³)`, for the small `n` of a dense model; entries are read and written through
    /// checked accessors, so no index can panic.
    #[inline(never)]
    fn invert(&mut self, rows: usize, shift: T) -> bool {
        let n = self.n;
        let Some(len) = n.checked_mul(n) else { return false };
        let (Some(a), Some(b)) = (self.v.get_mut(..len), self.u.get_mut(..len)) else { return false };
        if rows != n || n == 0 {
            return false;
        }
        set_identity(b, n);
        for k in 0..n {
            // The pivot: the largest |A(i, k)| at or below the diagonal.
            let (mut pivot, mut largest) = (k, T::ZERO);
            for i in k..n {
                let x = entry(a, k * n + i).abs();
                if x > largest {
                    (pivot, largest) = (i, x);
                }
            }
            if !(largest > T::ZERO && largest.is_finite()) {
                return false;
            }
            // Rows `pivot` and `k` swapped, row k divided by the pivot.
            let inv = T::ONE / entry(a, k * n + pivot);
            for m in [&mut *a, &mut *b] {
                for j in 0..n {
                    let (p, d) = (entry(m, j * n + pivot), entry(m, j * n + k));
                    set(m, j * n + pivot, d);
                    set(m, j * n + k, p * inv);
                }
            }
            // Every other row loses its multiple of row k.
            for i in (0..n).filter(|&i| i != k) {
                let f = entry(a, k * n + i);
                if f != T::ZERO {
                    for m in [&mut *a, &mut *b] {
                        for j in 0..n {
                            let x = entry(m, j * n + i) - f * entry(m, j * n + k);
                            set(m, j * n + i, x);
                        }
                    }
                }
            }
        }
        set_identity(a, n);
        add_diagonal(b, n, shift);
        kernels::all_finite(b)
    }

    /// [`low_rank`](Self::low_rank) in general (out of line, like
    /// [`with_split`](Self::with_split)): `from` and `x` anywhere but in the rows read;
    /// no dots are formed ahead or used.
    #[inline(never)]
    #[cold]
    fn low_rank_split(&mut self, p: &LowRankOp<T>) {
        let n = self.n;
        let Some(w) = self.split(p.out) else { return };
        let start = match w.input(p.from) {
            None => None,
            Some(Some(s)) => Some((p.beta, s)),
            Some(None) => return,
        };
        if let (Some(Some(x)), Some((a_lo, a_hi)), Some((b_lo, b_hi))) =
            (w.input(p.x), w.rows(p.a, p.pairs), w.rows(p.b, p.pairs))
        {
            let product = kernels::LowRankProduct {
                alpha: p.alpha,
                a: [a_lo, a_hi],
                b: [b_lo, b_hi],
                n,
                coefs: kernels::Coefs::Dots(x),
                start,
            };
            kernels::low_rank(&product, w.out, None);
        }
    }
}

/// The fields of an [`Op::LowRank`].
#[derive(Clone, Copy)]
struct LowRankOp<T: Real> {
    out: Vector,
    from: Vector,
    beta: T,
    alpha: T,
    a: Factor,
    b: Factor,
    pairs: Pairs,
    x: Vector,
    #[cfg(simd)]
    ahead: Option<Vector>,
    #[cfg(simd)]
    then: Then<T>,
}

impl<T: Real> LowRankOp<T> {
    /// The operation these are the fields of.
    fn op(self) -> Op<T> {
        #[cfg(simd)]
        let LowRankOp { out, from, beta, alpha, a, b, pairs, x, ahead, then } = self;
        #[cfg(simd)]
        return Op::LowRank { out, from, beta, alpha, a, b, pairs, x, ahead, then };
        #[cfg(not(simd))]
        let LowRankOp { out, from, beta, alpha, a, b, pairs, x } = self;
        #[cfg(not(simd))]
        Op::LowRank { out, from, beta, alpha, a, b, pairs, x }
    }
}

/// The rows of `pairs` of a factor buffer of rows of `n`: those before the skipped row
/// and those after.
fn rows<T>(buf: Around<'_, T>, n: usize, pairs: Pairs) -> Option<(&[T], &[T])> {
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

/// Entry `at` of `buf` (0 outside it).
fn entry<T: Real>(buf: &[T], at: usize) -> T {
    buf.get(at).copied().unwrap_or(T::ZERO)
}

/// Sets entry `at` of `buf` (nothing outside it).
fn set<T>(buf: &mut [T], at: usize, value: T) {
    if let Some(e) = buf.get_mut(at) {
        *e = value;
    }
}

/// Sets the `n × n` matrix of rows of `n` at the start of `buf` to the identity.
fn set_identity<T: Real>(buf: &mut [T], n: usize) {
    for (j, row) in buf.chunks_exact_mut(n.max(1)).take(n).enumerate() {
        row.fill(T::ZERO);
        set(row, j, T::ONE);
    }
}

/// Adds `add·I` to the `n × n` matrix of rows of `n` at the start of `buf`.
fn add_diagonal<T: Real>(buf: &mut [T], n: usize, add: T) {
    for (j, row) in buf.chunks_exact_mut(n.max(1)).take(n).enumerate() {
        set(row, j, entry(row, j) + add);
    }
}

/// See [`SliceVectors::execute`]: rows of `T` take [`execute`], narrower ones
/// [`narrow::execute`].
#[inline(always)]
fn execute_rows<T: Real, E: RowElem<T>>(s: &mut SliceVectors<'_, T, E>, op: &Op<T>) -> Reply<T> {
    match s.wide() {
        Some(mut wide) => execute(&mut wide, op),
        None => narrow::execute(s, op),
    }
}

/// [`SliceVectors::execute`] over rows of `T`.
///
/// `x + alpha·y` with `alpha = ±1` is computed as `x ± y`, and `alpha·x` as `±x`: the
/// same values (the product by ±1 is exact), without a multiplication, which on a
/// target without an FPU is a call.
#[inline(always)]
fn execute<T: Real>(s: &mut SliceVectors<'_, T>, op: &Op<T>) -> Reply<T> {
    #[cfg(simd)]
    if let Some(a) = &mut s.ahead {
        a.invalidate(op);
    }
    match *op {
        Op::Evaluate { .. } | Op::Done(_) => {}
        Op::Dot { a, b } => {
            return Reply::Scalar(match (s.read(a), s.read(b)) {
                (Some(a), Some(b)) => kernels::dot(a, b),
                _ => T::NAN,
            });
        }
        Op::Norm { a } => return Reply::Scalar(s.read(a).map_or(T::NAN, kernels::norm)),
        Op::AllFinite { a } => return Reply::Flag(s.read(a).is_some_and(kernels::all_finite)),
        Op::Copy { from, to } => s.with(to, from, to, |o, src, _| {
            if let Some(src) = src {
                copy(src, o);
            }
        }),
        Op::Fill { out, value } => s.with(out, out, out, |o, _, _| o.fill(value)),
        Op::Unit { out, index, value } => s.with(out, out, out, |o, _, _| {
            o.fill(T::ZERO);
            if let Some(e) = o.get_mut(index) {
                *e = value;
            }
        }),
        Op::AddOuter { a, rows, coef, x } => s.add_outer(a, rows, coef, x),
        Op::Invert { rows, shift } => return Reply::Flag(s.invert(rows, shift)),
        Op::Scale { out, alpha, x } => s.with(out, x, out, |o, x, _| {
            if alpha == -T::ONE {
                combine(o, None, x, |_, y| -y);
            } else if alpha != T::ONE {
                combine(o, None, x, |_, y| alpha * y);
            } else if let Some(x) = x {
                copy(x, o);
            }
        }),
        Op::Combine { out, x, alpha, y } => s.with(out, x, y, |o, x, y| {
            if alpha == -T::ONE {
                combine(o, x, y, |a, b| a - b);
            } else if alpha == T::ONE {
                combine(o, x, y, |a, b| a + b);
            } else if let (None, Some(y)) = (x, y) {
                kernels::axpy(alpha, y, o);
            } else {
                combine(o, x, y, |a, b| a + alpha * b);
            }
        }),
        #[cfg(simd)]
        Op::LowRank { out, from, beta, alpha, a, b, pairs, x, ahead, then } => {
            return s.low_rank(&LowRankOp { out, from, beta, alpha, a, b, pairs, x, ahead, then });
        }
        #[cfg(not(simd))]
        Op::LowRank { out, from, beta, alpha, a, b, pairs, x } => {
            return s.low_rank(&LowRankOp { out, from, beta, alpha, a, b, pairs, x });
        }
    }
    Reply::None
}
