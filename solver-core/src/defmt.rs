//! `defmt::Format` for the public types (feature `defmt`).

use crate::{History, Options, Real, Report, Status};
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

impl<T: Real + Format> Format for Report<T> {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "Report {{ status: {}, iterations: {=u32}, f_evals: {=u32}, residual_abs: {}, residual_rel: {}, restarts: {=u32} }}",
            self.status, self.iterations, self.f_evals, self.residual_abs, self.residual_rel, self.restarts
        )
    }
}

impl<T: Real + Format> Format for Options<T> {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "Options {{ max_iters: {=u32}, tol_abs: {}, tol_rel: {}, stall_iters: {=u32}, divergence_factor: {} }}",
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

impl Format for crate::LengthError {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "`{=str}` has length {=usize}, expected {=usize}", self.what, self.got, self.expected)
    }
}

impl Format for crate::SizeError {
    fn format(&self, f: Formatter<'_>) {
        let s = match self {
            crate::SizeError::ZeroDimension => "the dimension must be at least 1",
            crate::SizeError::ZeroHistory => "the history depth must be at least 1",
            crate::SizeError::TooLarge => "the solver's buffers would not fit in memory",
            crate::SizeError::MixedDimensions => "the solvers of one batch must all have the same dimension",
        };
        write!(f, "{=str}", s)
    }
}

impl<T: Real + Format> Format for crate::BroydenSettings<T> {
    fn format(&self, f: Formatter<'_>) {
        write!(
            f,
            "BroydenSettings {{ history: {}, line_search: {=bool}, max_backtracks: {=u8}, skip_tol: {}, reject_growth: {} }}",
            self.history, self.line_search, self.max_backtracks, self.skip_tol, self.reject_growth
        )
    }
}

impl<T: Real + Format> Format for crate::AndersonSettings<T> {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "AndersonSettings {{ damping: {}, reg: {} }}", self.damping, self.reg)
    }
}

impl<T: Real + Format> Format for crate::PicardSettings<T> {
    fn format(&self, f: Formatter<'_>) {
        write!(f, "PicardSettings {{ damping: {}, return_image: {} }}", self.damping, self.return_image)
    }
}
