//! Benchmarks for the DEQ solver toolkit, and the helpers its table binaries share:
//! each solver run over heap buffers of run-time size (the `*Work` forms of
//! `solver-core`) on a [`FixedPointProblem`] from its start point.

use deq_problems::{FixedPointProblem, linalg};
use solver_core::anderson::AndersonBuffers;
use solver_core::{
    AndersonSettings, AndersonWork, BroydenSettings, BroydenWork, Options, PicardSettings, PicardWork,
    Report, Status,
};

/// Broyden with `m` pairs and the given settings; returns the report and the answer.
pub fn broyden(
    p: &dyn FixedPointProblem,
    m: usize,
    s: &BroydenSettings,
    opts: &Options,
) -> (Report, Vec<f32>) {
    let n = p.dim();
    let (mut u, mut v, mut vecs) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; BroydenWork::vecs_len(n)]);
    let mut w = BroydenWork::new(n, m, &mut u, &mut v, &mut vecs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(s, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

/// Anderson with `m` differences and the given settings.
pub fn anderson(
    p: &dyn FixedPointProblem,
    m: usize,
    s: &AndersonSettings,
    opts: &Options,
) -> (Report, Vec<f32>) {
    let n = p.dim();
    let (mut dx, mut dg, mut vecs) = (vec![0.0; m * n], vec![0.0; m * n], vec![0.0; 4 * n]);
    let (mut gram, mut fac, mut coef) = (vec![0.0; m * m], vec![0.0; m * m], vec![0.0; m]);
    let bufs = AndersonBuffers {
        dx: &mut dx,
        dg: &mut dg,
        vecs: &mut vecs,
        gram: &mut gram,
        fac: &mut fac,
        coef: &mut coef,
    };
    let mut w = AndersonWork::new(n, m, bufs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(s, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

/// Damped fixed-point iteration with the given settings.
pub fn picard(p: &dyn FixedPointProblem, s: &PicardSettings, opts: &Options) -> (Report, Vec<f32>) {
    let n = p.dim();
    let mut vecs = vec![0.0; 2 * n];
    let mut w = PicardWork::new(n, &mut vecs).expect("buffer sizes");
    let mut z = p.start();
    let r = w.solve(s, &mut |x, o| p.f(x, o), &mut z, opts).expect("sizes");
    (r, z)
}

/// Relative error against the problem's float64 reference root. Where that is large,
/// float64 Newton from `z` tells which case it is: `z` is near a different true root
/// (the H-equation's non-physical one, another fixed point of a non-contractive layer),
/// or near no root at all (a solve that stopped early).
pub fn error(p: &dyn FixedPointProblem, z: &[f32]) -> String {
    let reference = p.rel_error(z);
    if reference < 1e-3 {
        return format!("{reference:.0e}");
    }
    let z64: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
    let scale = linalg::norm2(p.reference());
    match p.polish(z) {
        Some(root) if linalg::dist2(&root, p.reference()) > 1e-6 * scale => {
            let nearest = linalg::dist2(&z64, &root) / linalg::norm2(&root);
            format!("{reference:.0e}; other root, {nearest:.0e} from it")
        }
        _ => format!("{reference:.0e}"),
    }
}

/// `f-evals` followed by a letter when the solve did not converge (M: max iterations,
/// S: stalled, D: diverged, N: non-finite).
pub fn evals(r: &Report) -> String {
    let flag = match r.status {
        Status::Converged => "",
        Status::MaxIterations => " M",
        Status::Stalled => " S",
        Status::Diverged => " D",
        Status::NonFinite => " N",
    };
    format!("{}{flag}", r.f_evals)
}

/// A table cell: f-evaluations, then the error in brackets.
pub fn cell(p: &dyn FixedPointProblem, (r, z): &(Report, Vec<f32>)) -> String {
    format!("{} ({})", evals(r), error(p, z))
}
