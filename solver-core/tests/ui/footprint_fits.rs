use solver_core::{Anderson, Broyden, Picard};

const _: () = assert!(Broyden::<32, 8>::FOOTPRINT <= 4096);
const _: () = assert!(Anderson::<32, 5>::FOOTPRINT <= 4096);
const _: () = assert!(Picard::<32>::FOOTPRINT <= 4096);

static mut SOLVER: Broyden<32, 8> = Broyden::new();

fn main() {
    let _ = core::ptr::addr_of_mut!(SOLVER);
}
