//! A memory budget per run (`[sandbox] max_memory`), kept where allocations happen: the
//! process's allocator counts what each run's thread allocates and frees, so strings held by
//! closures, arrays of maps and every other path count, not only the sizes Rhai checks.
//!
//! The allocator never refuses (a refused allocation aborts a Rust process): a run over its
//! budget is flagged, and the engine's progress check (every 256 operations) ends it. Memory a
//! run allocates and another thread frees stays charged to the run, which errs on the safe
//! side.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Runs that can hold a budget at once; more run unbudgeted, with a warning. Far above the
/// daemon's default `max_concurrent` (256): a site of thousands of checks waiting on the
/// network runs that many at once. A slot is a cache line; only the lines that were ever
/// taken are memory the process touched (the lowest free slot is taken first).
const SLOTS: usize = 4096;

/// A cache line each: every allocation of a run updates its slot, and runs on other threads
/// updating neighbours on the same line made each other wait (5.8% of the job threads'
/// time at 5,000 checks a second).
#[repr(align(64))]
struct Slot {
    taken: AtomicBool,
    used: AtomicI64,
    limit: AtomicI64,
    over: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    taken: AtomicBool::new(false),
    used: AtomicI64::new(0),
    // Zero like the rest, so the table is in .bss, not in the binary (set when taken).
    limit: AtomicI64::new(0),
    over: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

thread_local! {
    /// The slot this thread's allocations are charged to, plus one (0: none). A plain `Cell`
    /// with a constant initializer: reading it never allocates.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The process's allocator: the system's, with each run's share counted.
#[derive(Debug)]
pub struct Counting;

fn charge(delta: i64) {
    // `try_with`: while a thread is torn down its locals may be gone.
    let Ok(i) = CURRENT.try_with(Cell::get) else {
        return;
    };
    if i == 0 {
        return;
    }
    let slot = &TABLE[i - 1];
    let used = slot.used.fetch_add(delta, Ordering::Relaxed) + delta;
    if used > slot.limit.load(Ordering::Relaxed) {
        slot.over.store(true, Ordering::Relaxed);
    }
}

fn size(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// SAFETY: every call is passed straight to `System` with the caller's arguments; the counting
// around it touches only atomics and a thread-local `Cell<usize>`, never the heap.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            charge(size(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            charge(size(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        charge(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is the caller's to vouch for.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            charge(size(new_size) - size(layout.size()));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Blocks of 1 MiB and more are mapped on their own and given back to the kernel when freed.
/// glibc would otherwise raise that threshold to the largest block freed so far (up to 32
/// MiB), after which an argon2 check's 19 MiB, or a flooded session buffer, stays in the
/// thread's arena after it is freed: with a thread per web connection that is an arena, and
/// its high-water mark, per thread.
///
/// An arena gives the free memory at its top back once it passes 512 KiB, not glibc's 128
/// KiB (fixed once the threshold above is set): at 128 KiB the daemon's threads shrank and
/// grew their arenas a few times a check (`brk`, then page faults to grow again), about a
/// tenth of a check's CPU at 400 checks a second (BENCHMARKS.md, issue 31).
pub fn return_large_blocks() {
    // SAFETY: mallopt only sets a tunable of the C allocator; any value is valid for it.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 10);
    }
}

/// A run's budget on this thread, from [`Budget::start`] until dropped.
#[derive(Debug)]
pub struct Budget {
    slot: usize,
}

impl Budget {
    /// Charges this thread's allocations to a new budget of `limit` bytes. None when every
    /// slot is taken (the run goes on unbudgeted) or the thread already has one.
    pub fn start(limit: usize) -> Option<Budget> {
        if CURRENT.with(Cell::get) != 0 {
            return None;
        }
        for (i, slot) in TABLE.iter().enumerate() {
            // Read first: a compare-and-swap on a taken slot would take its cache line from
            // the thread whose run charges it.
            if !slot.taken.load(Ordering::Relaxed)
                && slot
                    .taken
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                slot.used.store(0, Ordering::Relaxed);
                slot.over.store(false, Ordering::Relaxed);
                slot.limit.store(size(limit), Ordering::Relaxed);
                CURRENT.with(|c| c.set(i + 1));
                return Some(Budget { slot: i });
            }
        }
        tracing::warn!("more than {SLOTS} runs at once: this one has no memory budget");
        None
    }

    /// Bytes charged so far.
    pub fn used(&self) -> i64 {
        TABLE[self.slot].used.load(Ordering::Relaxed)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(0));
        TABLE[self.slot].taken.store(false, Ordering::Release);
    }
}

/// Whether the run on this thread has gone over its budget (the progress check asks).
pub fn over_budget() -> bool {
    match CURRENT.try_with(Cell::get) {
        Ok(0) | Err(_) => false,
        Ok(i) => TABLE[i - 1].over.load(Ordering::Relaxed),
    }
}
