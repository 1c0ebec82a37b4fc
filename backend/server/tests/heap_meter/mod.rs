//! The heap of one part of a test process: a global allocator that counts the live bytes of the
//! allocations made on threads marked with [`count_this_thread`] (those of a runtime built with
//! it as `on_thread_start`), and their peak. Memory of anything else in the process (the Hub
//! stand-in's copy of the dataset, other tests) is not counted, wherever it is freed: each
//! allocation carries a header that says whether it was counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

pub struct HeapMeter;

#[global_allocator]
static METER: HeapMeter = HeapMeter;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    // `const` and without a destructor: readable from the allocator at any time, even while the
    // thread's other locals are being destroyed.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Counts this thread's allocations from now on.
pub fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// Bytes live now in counted allocations.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed).max(0) as usize
}

/// Starts a new peak from what is live now.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The most bytes live at once in counted allocations since `reset_peak`.
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed).max(0) as usize
}

/// The header before each allocation: at least 16 bytes, and a whole alignment so that what
/// follows keeps the alignment asked for.
fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

// SAFETY: every block comes from `System` with the caller's size plus a header and at least the
// caller's alignment, and goes back to it with the same layout; the caller gets the part after
// the header, aligned as asked.
unsafe impl GlobalAlloc for HeapMeter {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let h = header(layout);
        // SAFETY: a non-zero size (the header) with the caller's valid alignment.
        let base =
            unsafe { System.alloc(Layout::from_size_align_unchecked(layout.size() + h, layout.align().max(16))) };
        if base.is_null() {
            return base;
        }
        let counted = COUNTED.with(|c| c.get());
        if counted {
            let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: the header's last byte is inside the block, before what the caller gets.
        unsafe {
            *base.add(h - 1) = counted as u8;
            base.add(h)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let h = header(layout);
        // SAFETY: `ptr` came from `alloc` with this layout: the block starts `h` bytes before.
        unsafe {
            let base = ptr.sub(h);
            if *base.add(h - 1) == 1 {
                LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            }
            System.dealloc(base, Layout::from_size_align_unchecked(layout.size() + h, layout.align().max(16)));
        }
    }
}
