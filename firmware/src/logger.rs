//! A `defmt` global logger that writes the encoded frames to the semihosting stdout,
//! where QEMU passes them to its own stdout for `defmt-print` to decode.
//!
//! It stands in for the `defmt-semihosting` crate, whose logger can panic (it panics
//! when acquired reentrantly, and its write loop has a panicking path): with a panic
//! handler that cannot link, that crate makes every program fail to build. This one
//! has no panicking path: a reentrant acquire is impossible in these single-threaded,
//! interrupt-free programs, and a failed write drops the rest of the frame.

use core::ptr::addr_of_mut;

use cortex_m_semihosting::{nr, syscall};

#[defmt::global_logger]
struct SemihostingLogger;

static mut RESTORE: critical_section::RestoreState = critical_section::RestoreState::invalid();
static mut ENCODER: defmt::Encoder = defmt::Encoder::new();
/// Semihosting handle of stdout, opened on first use (−1: not yet).
static mut STDOUT: isize = -1;

/// Writes `bytes` to the semihosting stdout.
fn write(bytes: &[u8]) {
    // SAFETY: only called between acquire and release, inside the critical section.
    let fd = unsafe { &mut *addr_of_mut!(STDOUT) };
    if *fd < 0 {
        // ":tt" opened for writing ("w", mode 4) is the host's stdout.
        let name = b":tt\0";
        // SAFETY: a valid NUL-terminated name and its length without the NUL.
        *fd = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::W_TRUNC, 3) } as isize;
        if *fd < 0 {
            return;
        }
    }
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: pointer and length of a live slice; returns the bytes NOT written.
        let left = unsafe { syscall!(WRITE, *fd as usize, rest.as_ptr(), rest.len()) };
        let done = rest.len().saturating_sub(left);
        match rest.get(done..) {
            Some(r) if done > 0 => rest = r,
            _ => return,
        }
    }
}

// SAFETY: acquire/release bracket every frame in a critical section, so frames never
// interleave; `write` and `flush` are only called between them.
unsafe impl defmt::Logger for SemihostingLogger {
    fn acquire() {
        // SAFETY: released in `release`.
        let restore = unsafe { critical_section::acquire() };
        // SAFETY: inside the critical section.
        unsafe {
            RESTORE = restore;
            (*addr_of_mut!(ENCODER)).start_frame(write);
        }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: inside the critical section opened by `acquire`.
        unsafe {
            (*addr_of_mut!(ENCODER)).end_frame(write);
            critical_section::release(RESTORE);
        }
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: inside the critical section opened by `acquire`.
        unsafe { (*addr_of_mut!(ENCODER)).write(bytes, write) };
    }
}
