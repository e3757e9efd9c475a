//! A global allocator that counts allocations, for tests that prove a solve allocates
//! nothing. A test binary installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: deq_problems::counting_alloc::CountingAllocator = deq_problems::counting_alloc::CountingAllocator;
//! ```
//!
//! and compares [`allocations`] before and after the code under test, or the bytes live
//! at the peak ([`reset_peak`], [`peak_live_bytes`]) for code that may allocate
//! transiently but must not grow.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

std::thread_local! {
    /// Allocations made by the current thread (const-initialised, no destructor: reading
    /// it from inside the allocator allocates nothing).
    static THREAD_ALLOCATIONS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting every allocation.
pub struct CountingAllocator;

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made so far by the whole process (when [`CountingAllocator`] is the
/// global allocator).
pub fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Bytes allocated and not yet freed.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// Restarts the peak of [`peak_live_bytes`] from the bytes live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::SeqCst), Ordering::SeqCst);
}

/// The most bytes live at once since the last [`reset_peak`].
pub fn peak_live_bytes() -> usize {
    PEAK.load(Ordering::SeqCst)
}

/// Allocations made so far by the calling thread: unlike [`allocations`], not disturbed
/// by other threads of the process (the test harness's, for one).
pub fn thread_allocations() -> usize {
    THREAD_ALLOCATIONS.try_with(|c| c.get()).unwrap_or(0)
}
