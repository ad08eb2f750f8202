//! A global allocator that records, per thread and only while asked to,
//! the largest single allocation and the sum of all allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

#[global_allocator]
static COUNTING: Counting = Counting;

thread_local! {
    // const-initialised Cells: no lazy initialisation and no destructor,
    // so touching them from inside the allocator cannot recurse into it.
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let tracking = TRACKING.try_with(Cell::get).unwrap_or(false);
    if tracking {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only reads and writes thread-local Cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Heap use of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of the largest single allocation (or reallocation).
    pub largest: usize,
    /// Bytes of all allocations added up.
    pub total: usize,
}

/// Runs `f` on this thread and reports what it allocated.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Usage) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    TRACKING.with(|t| t.set(true));
    let result = f();
    TRACKING.with(|t| t.set(false));
    let usage = Usage {
        largest: LARGEST.with(Cell::get),
        total: TOTAL.with(Cell::get),
    };
    (result, usage)
}

#[test]
fn the_counter_sees_allocations() {
    let (v, usage) = measure(|| Vec::<u8>::with_capacity(10_000));
    assert_eq!(v.capacity(), 10_000);
    assert_eq!(usage.largest, 10_000);
    assert!(usage.total >= 10_000);
    let ((), usage) = measure(|| {});
    assert_eq!(
        usage,
        Usage {
            largest: 0,
            total: 0
        }
    );
}
