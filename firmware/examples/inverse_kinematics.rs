//! `Broyden::solve_root` in a control loop: the inverse kinematics of a two-link planar
//! arm tracking a moving target. Each step solves for the joint angles `θ` with
//!
//! ```text
//!     g(θ) = [l₁ cos θ₁ + l₂ cos(θ₁ + θ₂) − x,  l₁ sin θ₁ + l₂ sin(θ₁ + θ₂) − y] = 0
//! ```
//!
//! warm-started from the previous step's angles, and checks the answer against the
//! closed-form solution (same elbow branch) to 1e-4 rad. Exit status 1 on any failure.
//!
//! Broyden starts from the inverse Jacobian `H₀ = −I`, right for a fixed-point residual
//! `f(z) − z` but not for this `g`. So `g` is preconditioned once per step with the
//! arm's Jacobian `J₀` at the start point: the solver sees `g̃ = −J₀⁻¹ g`, whose Jacobian
//! is `−I` there, and Broyden's updates handle the rest. (The roots are the same.)
//!
//! ```text
//! cargo run --release --example inverse_kinematics --target thumbv7m-none-eabi
//! ```

#![no_std]
#![no_main]

use core::f32::consts::PI;
use core::ptr::addr_of_mut;

use cortex_m_rt::entry;
use deq_firmware::{deq_mark_begin, deq_mark_end};
use libm::{atan2f, cosf, sinf};
use solver_core::{Broyden, Options};

const L1: f32 = 1.0;
const L2: f32 = 0.7;
const STEPS: usize = 24;

static mut SOLVER: Broyden<2, 4> = Broyden::new();

const OPTS: Options = Options { max_iters: 50, tol_abs: 1e-6, tol_rel: 0.0, ..Options::DEFAULT };

/// The target at step `k`: a circle of radius 0.4 around (1.0, 0.5).
fn target(k: usize) -> (f32, f32) {
    let a = 2.0 * PI * k as f32 / STEPS as f32;
    (1.0 + 0.4 * cosf(a), 0.5 + 0.4 * sinf(a))
}

/// Closed-form inverse kinematics, elbow angle θ₂ in (0, π).
fn closed_form(x: f32, y: f32) -> [f32; 2] {
    let c2 = ((x * x + y * y - L1 * L1 - L2 * L2) / (2.0 * L1 * L2)).clamp(-1.0, 1.0);
    let t2 = libm::acosf(c2);
    let t1 = atan2f(y, x) - atan2f(L2 * sinf(t2), L1 + L2 * cosf(t2));
    [t1, t2]
}

/// Wraps an angle difference into (−π, π].
fn wrap(a: f32) -> f32 {
    let mut a = a % (2.0 * PI);
    if a > PI {
        a -= 2.0 * PI;
    } else if a <= -PI {
        a += 2.0 * PI;
    }
    a
}

#[entry]
fn main() -> ! {
    deq_firmware::paint_stack();
    // SAFETY: single-threaded; the static is borrowed once.
    let solver = unsafe { &mut *addr_of_mut!(SOLVER) };
    let (x0, y0) = target(0);
    // Start near, not at, the first pose (as from the previous cycle of the loop).
    let exact0 = closed_form(x0, y0);
    let mut theta = [exact0[0] + 0.05, exact0[1] - 0.05];
    let (mut ok, mut evals) = (true, 0u32);
    for k in 0..STEPS {
        let (x, y) = target(k);
        // P = −J₀⁻¹ at the start point (2 × 2, closed form).
        let (s1, c1) = (sinf(theta[0]), cosf(theta[0]));
        let (s12, c12) = (sinf(theta[0] + theta[1]), cosf(theta[0] + theta[1]));
        let j = [[-L1 * s1 - L2 * s12, -L2 * s12], [L1 * c1 + L2 * c12, L2 * c12]];
        let det = j[0][0] * j[1][1] - j[0][1] * j[1][0];
        let p = [[-j[1][1] / det, j[0][1] / det], [j[1][0] / det, -j[0][0] / det]];
        deq_mark_begin(6);
        let r = solver.solve_root(
            |t, g| {
                let (s1, c1) = (sinf(t[0]), cosf(t[0]));
                let (s12, c12) = (sinf(t[0] + t[1]), cosf(t[0] + t[1]));
                let r = [L1 * c1 + L2 * c12 - x, L1 * s1 + L2 * s12 - y];
                g[0] = p[0][0] * r[0] + p[0][1] * r[1];
                g[1] = p[1][0] * r[0] + p[1][1] * r[1];
            },
            &mut theta,
            &OPTS,
        );
        deq_mark_end(6);
        let exact = closed_form(x, y);
        let err = wrap(theta[0] - exact[0]).abs().max(wrap(theta[1] - exact[1]).abs());
        let good = r.status.is_converged() && err <= 1e-4;
        ok &= good;
        evals += r.f_evals;
        defmt::info!(
            "step {=usize}: target ({=f32}, {=f32}) θ = ({=f32}, {=f32}) {=u32} evals, error {=f32} rad {=str}",
            k,
            x,
            y,
            theta[0],
            theta[1],
            r.f_evals,
            err,
            if good { "ok" } else { "WRONG" }
        );
    }
    defmt::info!("{=u32} evaluations for {=usize} poses", evals, STEPS);
    defmt::info!("peak stack {=usize} bytes", deq_firmware::peak_stack());
    defmt::info!("{=str}", if ok { "all poses correct" } else { "FAILED" });
    deq_firmware::exit(ok)
}
