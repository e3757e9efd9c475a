//! Problem instances as files, shared with the peer harness (`benches/peers/run.py`).
//!
//! Each instance is one safetensors file holding
//! * `"A"`: F32 `[d, d]`, row-major: the matrix of the map (the f32 copy the problem's
//!   own f32 map uses);
//! * `"c"`: F32 `[d]`: the offset (zero for the H-equation);
//! * `"start"`: F32 `[d]`: the start point;
//! * `"reference"`: F64 `[d]`: the float64 reference fixed point;
//!
//! and the metadata `"kind"` (see [`Kind`]) and `"name"`. The map is
//! * `tanh`: `f(z) = tanh(A z + c)`,
//! * `linear`: `f(z) = A z + c`,
//! * `hequation`: `f(z)ᵢ = 1 / (1 − (A z)ᵢ)`,
//!
//! each row product computed as [`deq_problems::dot8_f32`] does it
//! ([`deq_problems::matvec8_f32`]), so that a [`FileProblem`]
//! read back evaluates bit-identically to the in-memory problem it was written from
//! ([`bit_identical`] checks it). An `index.json` next to the files lists them.

use std::collections::HashMap;
use std::path::Path;

use deq_problems::{FixedPointProblem, HEquation, LinearMap, TanhLayer, matvec8_f32};
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// The form of the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `f(z) = tanh(A z + c)`.
    Tanh,
    /// `f(z) = A z + c`.
    Linear,
    /// `f(z)ᵢ = 1 / (1 − (A z)ᵢ)`.
    HEquation,
}

impl Kind {
    /// The name stored in the file's metadata.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tanh => "tanh",
            Kind::Linear => "linear",
            Kind::HEquation => "hequation",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Kind::Tanh, Kind::Linear, Kind::HEquation].into_iter().find(|k| k.name() == s)
    }
}

/// A problem read from (or written to) an instance file.
#[derive(Clone, Debug)]
pub struct FileProblem {
    /// The problem's name, e.g. `"tanh d=256 rho=0.9"`.
    pub name: String,
    /// The form of the map.
    pub kind: Kind,
    /// Dimension.
    pub d: usize,
    /// `A`, `[d, d]` row-major.
    pub a: Vec<f32>,
    /// `c`, `[d]`.
    pub c: Vec<f32>,
    /// The start point.
    pub start: Vec<f32>,
    /// The float64 reference fixed point.
    pub reference: Vec<f64>,
    /// Whether `f` splits its rows over the threads of the calling rayon pool (set by
    /// [`FileProblem::split_rows`]; the results are the same bits either way).
    pub split: bool,
}

/// Smallest `d` whose rows [`FileProblem::split_rows`] splits: below it, handing rows
/// to another thread costs more than their products.
pub const SPLIT_MIN_D: usize = 256;

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl FileProblem {
    /// The file form of a [`TanhLayer`].
    pub fn from_tanh(p: &TanhLayer) -> Self {
        Self::new(p, Kind::Tanh, f32s(p.weights()), f32s(p.injection()))
    }

    /// The file form of a [`LinearMap`].
    pub fn from_linear(p: &LinearMap) -> Self {
        Self::new(p, Kind::Linear, f32s(p.matrix()), f32s(p.offset()))
    }

    /// The file form of an [`HEquation`].
    pub fn from_hequation(p: &HEquation) -> Self {
        Self::new(p, Kind::HEquation, f32s(p.matrix()), vec![0.0; p.dim()])
    }

    fn new(p: &dyn FixedPointProblem, kind: Kind, a: Vec<f32>, c: Vec<f32>) -> Self {
        FileProblem {
            name: p.name(),
            kind,
            d: p.dim(),
            a,
            c,
            start: p.start(),
            reference: p.reference().to_vec(),
            split: false,
        }
    }

    /// Writes the instance file.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let d = self.d;
        let bytes32 = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let reference: Vec<u8> = self.reference.iter().flat_map(|x| x.to_le_bytes()).collect();
        let (a, c, start) = (bytes32(&self.a), bytes32(&self.c), bytes32(&self.start));
        let err = |e: safetensors::SafeTensorError| format!("{}: {e}", path.display());
        let views = vec![
            ("A", TensorView::new(Dtype::F32, vec![d, d], &a).map_err(err)?),
            ("c", TensorView::new(Dtype::F32, vec![d], &c).map_err(err)?),
            ("start", TensorView::new(Dtype::F32, vec![d], &start).map_err(err)?),
            ("reference", TensorView::new(Dtype::F64, vec![d], &reference).map_err(err)?),
        ];
        let meta = HashMap::from([
            ("kind".to_owned(), self.kind.name().to_owned()),
            ("name".to_owned(), self.name.clone()),
        ]);
        safetensors::serialize_to_file(views, Some(meta), path).map_err(err)
    }

    /// Reads an instance file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let err = |e: safetensors::SafeTensorError| format!("{}: {e}", path.display());
        let st = SafeTensors::deserialize(&bytes).map_err(err)?;
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(err)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let kind =
            meta.get("kind").and_then(|k| Kind::parse(k)).ok_or(format!("{}: no kind", path.display()))?;
        let name = meta.get("name").cloned().unwrap_or_default();
        let tensor = |n: &str, dtype: Dtype| -> Result<(Vec<usize>, Vec<u8>), String> {
            let v = st.tensor(n).map_err(err)?;
            if v.dtype() != dtype {
                return Err(format!("{}: {n} is {:?}", path.display(), v.dtype()));
            }
            Ok((v.shape().to_vec(), v.data().to_vec()))
        };
        let to32 = |b: Vec<u8>| -> Vec<f32> {
            b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        };
        let (shape, a) = tensor("A", Dtype::F32)?;
        let d = shape.first().copied().unwrap_or(0);
        if shape != [d, d] {
            return Err(format!("{}: A is {shape:?}, not square", path.display()));
        }
        let reference = tensor("reference", Dtype::F64)?
            .1
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        Ok(FileProblem {
            name,
            kind,
            d,
            a: to32(a),
            c: to32(tensor("c", Dtype::F32)?.1),
            start: to32(tensor("start", Dtype::F32)?.1),
            reference,
            split: false,
        })
    }

    /// The problem with `f` evaluated on every thread of the rayon pool it is called
    /// in, in blocks of rows, when `d ≥` [`SPLIT_MIN_D`]: how `run_ours` compares with
    /// a peer whose matrix product uses several threads. Each row is the same product,
    /// so the map is the same bit for bit.
    pub fn split_rows(mut self, split: bool) -> Self {
        self.split = split;
        self
    }

    /// `f` on the rows `a` (`out.len()` of them) with offsets `c`.
    fn rows(&self, a: &[f32], c: &[f32], z: &[f32], out: &mut [f32]) {
        matvec8_f32(a, z, out);
        for (o, &c) in out.iter_mut().zip(c) {
            *o = match self.kind {
                Kind::Tanh => (*o + c).tanh(),
                Kind::Linear => *o + c,
                Kind::HEquation => 1.0 / (1.0 - *o),
            };
        }
    }

    /// `A z` in float64 (with `A` the f32 matrix, widened).
    fn matvec64(&self, z: &[f64]) -> Vec<f64> {
        self.a
            .chunks_exact(self.d)
            .map(|row| row.iter().zip(z).map(|(&a, &x)| f64::from(a) * x).sum())
            .collect()
    }
}

impl FixedPointProblem for FileProblem {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn dim(&self) -> usize {
        self.d
    }

    fn start(&self) -> Vec<f32> {
        self.start.clone()
    }

    fn f(&self, z: &[f32], out: &mut [f32]) {
        let threads = rayon::current_num_threads();
        if self.split && threads > 1 && self.d >= SPLIT_MIN_D {
            let block = self.d.div_ceil(threads);
            out.par_chunks_mut(block)
                .zip(self.a.par_chunks(block * self.d))
                .zip(self.c.par_chunks(block))
                .for_each(|((o, a), c)| self.rows(a, c, z, o));
        } else {
            self.rows(&self.a, &self.c, z, out);
        }
    }

    fn f64_residual(&self, z: &[f64], out: &mut [f64]) {
        let az = self.matvec64(z);
        for (((o, a), &c), x) in out.iter_mut().zip(az).zip(&self.c).zip(z) {
            let c = f64::from(c);
            *o = match self.kind {
                Kind::Tanh => (a + c).tanh(),
                Kind::Linear => a + c,
                Kind::HEquation => 1.0 / (1.0 - a),
            } - x;
        }
    }

    fn f64_jacobian(&self, z: &[f64], jac: &mut [f64]) {
        let d = self.d;
        let az = self.matvec64(z);
        for (i, (row, a)) in jac.chunks_exact_mut(d).zip(self.a.chunks_exact(d)).enumerate() {
            let s = match self.kind {
                Kind::Tanh => 1.0 - (az[i] + f64::from(self.c[i])).tanh().powi(2),
                Kind::Linear => 1.0,
                Kind::HEquation => (1.0 - az[i]).powi(-2),
            };
            for (r, &aij) in row.iter_mut().zip(a) {
                *r = s * f64::from(aij);
            }
            row[i] -= 1.0;
        }
    }

    fn reference(&self) -> &[f64] {
        &self.reference
    }
}

/// Whether `a` and `b` give bit-identical f32 maps at three points (the start, the
/// reference rounded to f32, and a point between), and the same start and reference.
pub fn bit_identical(a: &dyn FixedPointProblem, b: &dyn FixedPointProblem) -> bool {
    let d = a.dim();
    if b.dim() != d || a.start() != b.start() || a.reference() != b.reference() {
        return false;
    }
    let r = f32s(a.reference());
    let mid: Vec<f32> = r.iter().zip(a.start()).map(|(x, s)| 0.5 * (x + s) + 0.01).collect();
    [a.start(), r, mid].iter().all(|z| {
        let (mut fa, mut fb) = (vec![0.0f32; d], vec![0.0f32; d]);
        a.f(z, &mut fa);
        b.f(z, &mut fb);
        fa.iter().zip(&fb).all(|(x, y)| x.to_bits() == y.to_bits())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f` with its rows split over a 2-thread pool is the unsplit `f`, bit for bit, for
    /// each kind of map, at a size that splits (d ≥ SPLIT_MIN_D) and one that does not.
    #[test]
    fn split_rows_evaluate_the_same_bits() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for d in [SPLIT_MIN_D + 3, 16] {
            for kind in [Kind::Tanh, Kind::Linear, Kind::HEquation] {
                let p = FileProblem { kind, ..FileProblem::from_tanh(&TanhLayer::new(d, 0.9, 7)) };
                assert!(!p.split);
                let split = FileProblem { kind, ..FileProblem::from_tanh(&TanhLayer::new(d, 0.9, 7)) }
                    .split_rows(true);
                assert!(pool.install(|| bit_identical(&p, &split)), "{kind:?}, d = {d}");
            }
        }
    }
}
