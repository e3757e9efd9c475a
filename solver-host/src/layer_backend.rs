//! The CPU backend of the lockstep solver for a [`DeqLayer`]: `f` of every running
//! sample through the layer's matrix product, in parallel over blocks of rows.
//!
//! A sample's state is `[L, h]` (`L = 1` for a `[B, h]` state), so the batch is
//! `B·L` rows of width `h`, and `f` of the batch is one product `Z Wᵀ` (plus the
//! injection and the activation). The lockstep solver hands it groups of consecutive
//! samples, concurrently; within a group, each run of consecutive running samples is one
//! product, and the rows of stopped samples are skipped, so a stopped sample costs
//! nothing. A sample of [`PIECE_MIN_TOKENS`] tokens or more is instead evaluated in
//! pieces of about a quarter of its tokens, straight from and into its solver's own
//! vectors ([`BatchBackend::eval_piece`]). A small batch of a wide layer (at most
//! [`COLUMN_MAX_ROWS`] rows, `h ≥` [`COLUMN_MIN_HIDDEN`]) is one group whose product
//! splits `W`'s columns between the threads ([`LayerBackend::with_column_split`]).

use rayon::prelude::*;

use crate::BatchBackend;
use crate::model::{DeqLayer, Float, ModelError};

/// [`BatchBackend`] for a [`DeqLayer`] and a batch of inputs, in the layer's float type
/// `T` (`f32` by default, or `f64`). Holds the injection `c = x Uᵀ + b` of every token,
/// computed once.
pub struct LayerBackend<'l, T = f32> {
    layer: &'l DeqLayer<T>,
    c: Vec<T>,
    samples: usize,
    tokens: usize,
    /// Tokens per piece of a sample's evaluation, when samples are evaluated in pieces.
    piece_tokens: Option<usize>,
    /// Whether the batch is one group whose product splits the columns of `W` between
    /// the threads.
    columns: bool,
}

/// A batch of at most this many rows (samples × tokens) of a layer at least
/// [`COLUMN_MIN_HIDDEN`] wide is evaluated as one product whose columns are split
/// between the threads ([`LayerBackend::with_column_split`]): each thread then reads its
/// part of `W` once per round, where groups of samples would each stream all of it.
/// The thresholds are where every solver gained, measured with `COLUMN_SPLIT=0|1 cargo
/// run --release -p deq-benches --bin floor -- B 1 h 100` (to `tol_rel` 1e-6, 2
/// threads, groups → split, Broyden / Anderson / Picard): `[8 × 4096]` 122 → 59,
/// 120 → 75, 200 → 105 ms; `[2 × 4096]` 73 → 43, 56 → 40, 129 → 70 ms. Below them the
/// split costs more than it saves, Broyden's first: `[16 × 4096]` 140 → 146, 171 → 126,
/// 269 → 196 ms; `[4 × 2048]` 17.1 → 20.4, 16.5 → 11.4, 28.2 → 20.6 ms; `[8 × 1024]`
/// 6.4 → 7.1, 3.8 → 4.5, 6.8 → 6.6 ms.
pub const COLUMN_MAX_ROWS: usize = 8;

/// See [`COLUMN_MAX_ROWS`].
pub const COLUMN_MIN_HIDDEN: usize = 4096;

/// Samples of at least this many tokens are evaluated piece by piece, straight from
/// and into each solver's vectors ([`BatchBackend::piece_len`]); smaller ones in
/// batched products over groups of samples, whose rows share each pass over `W`.
/// Measured with `cargo run --release -p deq-benches --bin floor -- B L h` (Broyden
/// M = 8 to `tol_rel` 1e-6, 2 threads, wall time of the solve, groups → pieces, with
/// the multiply-then-add product that preceded the fused one):
/// `[15 × 150 × 700]` 953 → 815 ms, `[32 × 8 × 512]` 47.0 → 46.6 ms, `[16 × 16 × 256]`
/// 12.5 → 12.2 ms, `[64 × 1 × 256]` 3.2 → 5.5 ms (one row per sample: a product per
/// sample cannot share `W` across samples).
pub const PIECE_MIN_TOKENS: usize = 16;

/// Pieces per sample: enough for an idle thread to share a sample's evaluation, few
/// enough that each is a product of dozens of rows.
const PIECES: usize = 4;

impl<'l, T: Float> LayerBackend<'l, T> {
    /// The backend for `samples` samples of `tokens` tokens each, with inputs `x`
    /// (`[samples × tokens × p]`, row-major).
    ///
    /// # Errors
    ///
    /// [`ModelError::Empty`] for no samples or no tokens, [`ModelError::WrongLength`] if
    /// `x` is not `samples·tokens·p` long, [`ModelError::TooLarge`] if the injection
    /// cannot be allocated.
    pub fn new(layer: &'l DeqLayer<T>, x: &[T], samples: usize, tokens: usize) -> Result<Self, ModelError> {
        let (h, p) = (layer.hidden(), layer.input_width());
        if samples == 0 || tokens == 0 {
            return Err(ModelError::Empty { path: None, name: "x".into() });
        }
        let rows = samples.checked_mul(tokens).ok_or(ModelError::TooLarge {
            path: None,
            what: format!("a batch of {samples} samples of {tokens} tokens"),
        })?;
        let expected = rows.saturating_mul(p);
        if x.len() != expected {
            return Err(ModelError::WrongLength { name: "x".into(), expected, got: x.len() });
        }
        let len = rows.checked_mul(h).ok_or(ModelError::TooLarge { path: None, what: "the state".into() })?;
        let mut c = Vec::new();
        c.try_reserve_exact(len)
            .map_err(|_| ModelError::TooLarge { path: None, what: "the state".into() })?;
        c.resize(len, T::ZERO);
        let block = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
        c.par_chunks_mut(block * h).zip(x.par_chunks(block * p)).for_each(|(cb, xb)| layer.injection(xb, cb));
        // About tokens / PIECES tokens per piece, a multiple of 4.
        let piece_tokens = (tokens >= PIECE_MIN_TOKENS).then(|| tokens.div_ceil(PIECES).next_multiple_of(4));
        let columns = piece_tokens.is_none() && rows <= COLUMN_MAX_ROWS && h >= COLUMN_MIN_HIDDEN;
        Ok(LayerBackend { layer, c, samples, tokens, piece_tokens, columns })
    }

    /// The backend with the batch evaluated as one product whose columns are split
    /// between the threads (`true`), or in groups of samples, one product per group
    /// (`false`). [`new`](Self::new) chooses by size ([`COLUMN_MAX_ROWS`]); the results
    /// are the same bits either way (each output is the same chain). Samples evaluated
    /// in pieces ([`PIECE_MIN_TOKENS`]) are not affected.
    pub fn with_column_split(mut self, on: bool) -> Self {
        self.columns = on && self.piece_tokens.is_none();
        self
    }

    /// Whether the batch is evaluated as one product with its columns split between
    /// the threads (see [`with_column_split`](Self::with_column_split)).
    pub fn column_split(&self) -> bool {
        self.columns
    }

    /// Bytes held (the injection, `[B × L × h]` floats of `T`).
    pub fn memory_bytes(&self) -> usize {
        T::BYTES * self.c.len()
    }
}

impl<T: Float> BatchBackend<T> for LayerBackend<'_, T> {
    fn samples(&self) -> usize {
        self.samples
    }

    fn dim(&self) -> usize {
        self.tokens * self.layer.hidden()
    }

    fn eval(&self, first: usize, active: &[bool], z: &[T], out: &mut [T]) {
        let d = self.tokens * self.layer.hidden();
        // Runs of consecutive running samples: one product each.
        let mut s = 0;
        while s < active.len() {
            if !active[s] {
                s += 1;
                continue;
            }
            let mut e = s + 1;
            while e < active.len() && active[e] {
                e += 1;
            }
            let (lo, hi) = (s * d, e * d);
            let c = self.c.get((first + s) * d..(first + e) * d);
            if let (Some(zr), Some(cr), Some(or)) = (z.get(lo..hi), c, out.get_mut(lo..hi)) {
                if self.columns {
                    self.layer.apply_split(zr, cr, or, rayon::current_num_threads());
                } else {
                    self.layer.apply(zr, cr, or);
                }
            }
            s = e;
        }
    }

    fn split(&self) -> bool {
        !self.columns
    }

    fn piece_len(&self) -> Option<usize> {
        self.piece_tokens.map(|t| t * self.layer.hidden())
    }

    fn eval_piece(&self, sample: usize, piece: usize, z: &[T], out: &mut [T]) {
        let (h, d) = (self.layer.hidden(), self.tokens * self.layer.hidden());
        let Some(len) = self.piece_len() else { return };
        let Some(at) = piece.checked_mul(len) else { return };
        let c = sample.checked_mul(d).and_then(|s| self.c.get(s + at..s + at + out.len()));
        if let (Some(zr), Some(cr)) = (z.get(at..at + out.len()), c)
            && out.len().is_multiple_of(h)
        {
            self.layer.apply(zr, cr, out);
        }
    }
}
