use solver_core::Broyden;

// 4·64·(2·8 + 5) + 12 = 5388 bytes: does not fit a 4 KiB budget.
const _: () = assert!(Broyden::<64, 8>::FOOTPRINT <= 4096);

fn main() {}
