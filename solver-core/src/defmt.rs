//! `defmt::Format` for the public types (feature `defmt`).

use crate::{History, Options, Report, Status};
use ::defmt::{Format, Formatter, write};

impl Format for Status {
    fn format(&self, f: Formatter<'_>) {
        let s = match self {
            Status::Converged => "converged",
            Status::MaxIterations => "max-iterations",
            Status::Stalled => "stalled",
            Status::Diverged => "diverged",
            Status::NonFinite => "non-finite",
        };
        write!(f, "{=str}", s)
    }
}

impl Format for Report {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "Report {{ status: {}, iterations: {=u32}, f_evals: {=u32}, residual_abs: {=f32}, residual_rel: {=f32}, restarts: {=u32} }}",
            self.status, self.iterations, self.f_evals, self.residual_abs, self.residual_rel, self.restarts
        )
    }
}

impl Format for Options {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "Options {{ max_iters: {=u32}, tol_abs: {=f32}, tol_rel: {=f32}, stall_iters: {=u32}, divergence_factor: {=f32} }}",
            self.max_iters, self.tol_abs, self.tol_rel, self.stall_iters, self.divergence_factor
        )
    }
}

impl Format for History {
    fn format(&self, f: Formatter<'_>) {
        match self {
            History::DropOldest => write!(f, "DropOldest"),
            History::Restart => write!(f, "Restart"),
        }
    }
}
