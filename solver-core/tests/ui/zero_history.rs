use solver_core::Broyden;

fn main() {
    // A Broyden solver needs room for at least one update pair.
    let _ = Broyden::<16, 0>::new();
}
