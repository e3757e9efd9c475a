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

impl Format for crate::WorkError {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "buffer `{=str}` has length {=usize}, expected {=usize}",
            self.what, self.got, self.expected
        )
    }
}

impl Format for crate::BroydenSettings {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "BroydenSettings {{ history: {}, line_search: {=bool}, max_backtracks: {=u8}, skip_tol: {=f32}, reject_growth: {=f32} }}",
            self.history, self.line_search, self.max_backtracks, self.skip_tol, self.reject_growth
        )
    }
}

impl Format for crate::AndersonSettings {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "AndersonSettings {{ damping: {=f32}, reg: {=f32} }}", self.damping, self.reg)
    }
}

impl Format for crate::PicardSettings {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "PicardSettings {{ damping: {=f32} }}", self.damping)
    }
}
