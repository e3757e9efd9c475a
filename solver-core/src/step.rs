//! Resumable solves ("reverse communication"): the solver hands back control each time
//! it needs `f` evaluated, so a caller can evaluate many solves' points together.
//!
//! Every solver runs as a small state machine over its work buffers:
//!
//! ```text
//!     let mut state = work.start(&settings, &z, &opts)?;   // copies z, asks for f(z)
//!     loop {
//!         let (x, out) = work.request(&state);            // the point and where f(x) goes
//!         f(x, out);
//!         if let Step::Done(report) = work.resume(&mut state, &mut z) { break report; }
//!     }
//! ```
//!
//! Two solves advanced side by side, each `f` evaluation made by the caller:
//!
//! ```
//! use solver_core::{BroydenSettings, BroydenWork, Options, Resume, Step};
//!
//! // f(z) = 0.5·cos(z) + c, componentwise, for two different offsets c.
//! let (n, m, opts, s) = (3, 4, Options::DEFAULT, BroydenSettings::DEFAULT);
//! let fresh = || [vec![0.0f32; m * n], vec![0.0; m * n], vec![0.0; 5 * n]]; // U, V, work vectors
//! let mut bufs = [fresh(), fresh()];
//! let mut z = [[0.0f32; 3], [1.0f32; 3]];
//! let c = [0.1f32, -0.3];
//! let mut states = Vec::new();
//! for (b, [u, v, vecs]) in bufs.iter_mut().enumerate() {
//!     let mut work = BroydenWork::new(n, m, u, v, vecs).unwrap();
//!     states.push(Some(work.start(&s, &z[b], &opts).unwrap()));
//! }
//! let mut reports = [None, None];
//! while reports.iter().any(|r| r.is_none()) {
//!     for (b, [u, v, vecs]) in bufs.iter_mut().enumerate() {
//!         let Some(state) = states[b].as_mut() else { continue };
//!         let mut work = BroydenWork::new(n, m, u, v, vecs).unwrap();
//!         let (x, out) = work.request(state);
//!         for (o, xi) in out.iter_mut().zip(x) {
//!             *o = 0.5 * libm::cosf(*xi) + c[b];
//!         }
//!         if let Step::Done(report) = work.resume(state, &mut z[b]) {
//!             reports[b] = Some(report);
//!             states[b] = None;
//!         }
//!     }
//! }
//! for b in 0..2 {
//!     assert!(reports[b].unwrap().status.is_converged());
//!     assert!((z[b][0] - (0.5 * libm::cosf(z[b][0]) + c[b])).abs() < 1e-5);
//! }
//! ```
//!
//! The closure-based `solve` methods are exactly this loop ([`drive`]). The lockstep
//! batched solver of `solver-host` keeps one state per sample and evaluates the points
//! of all the samples still running with one batched call of `f` per round; a sample
//! whose `resume` returned [`Step::Done`] is no longer evaluated or advanced. The math
//! is therefore the same code whether a solve runs alone or in a batch.

use crate::options::Report;

/// What a resumed solve needs next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// Evaluate `f` at the point given by `request` into its output buffer, then call
    /// `resume` again.
    Evaluate,
    /// The solve has ended; the caller's `z` holds the iterate the report describes.
    Done(Report),
}

/// A solver's work buffers driven one evaluation at a time. The state (`S`) is a small
/// plain value kept by the caller between calls; the buffers are borrowed anew for each
/// call, so the state can outlive any one borrow of them.
pub trait Resume {
    /// Scalars of one solve in progress.
    type State;

    /// The point at which `f` must be evaluated, and the buffer that receives `f` of it
    /// (both of the solver's dimension).
    fn request(&mut self, state: &Self::State) -> (&[f32], &mut [f32]);

    /// Continues the solve once the output buffer holds `f` of the requested point.
    /// `z` is the caller's iterate: it receives every new best point, so that when the
    /// solve ends it holds the iterate the report describes. Calling `resume` after
    /// [`Step::Done`] returns the same report again.
    fn resume(&mut self, state: &mut Self::State, z: &mut [f32]) -> Step;
}

/// [`Resume::request`] for a workspace given up by value: the point to evaluate and the
/// output buffer, borrowed for as long as the buffers themselves (`'a`), so that an
/// owner of the buffers (such as `solver-host`'s run-time solvers) can hand them out.
pub trait IntoRequest<'a>: Resume {
    /// The request of `state`, for the lifetime of the buffers.
    fn into_request(self, state: &Self::State) -> (&'a [f32], &'a mut [f32]);
}

/// Runs a started solve to its end with the closure `f`: the loop every `solve` method
/// is made of.
pub fn drive<W: Resume + ?Sized>(
    work: &mut W,
    state: &mut W::State,
    f: &mut dyn FnMut(&[f32], &mut [f32]),
    z: &mut [f32],
) -> Report {
    loop {
        let (x, out) = work.request(state);
        f(x, out);
        if let Step::Done(report) = work.resume(state, z) {
            return report;
        }
    }
}
