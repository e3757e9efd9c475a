//! What must not compile: a solver whose FOOTPRINT exceeds a budget asserted at
//! compile time, and solvers with zero dimensions. What must: the same assert when the
//! solver fits.

#[test]
fn compile_time_checks() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/footprint_fits.rs");
    t.compile_fail("tests/ui/footprint_too_big.rs");
    t.compile_fail("tests/ui/zero_history.rs");
}
