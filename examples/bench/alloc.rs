//! The bench process's heap allocator, and a count of what each thread allocates.
//!
//! The bench runs all N members in one process; a phone runs one. Under glibc's allocator a
//! member's every `malloc` then pays for the heap of the N − 1 others: at n = 1,000 the
//! removal's allocations per member grow as n (×7.7 from 128) but their CPU ×24, because
//! glibc's bins hold the free chunks of a thousand clients. `WITAN_BENCH_ALLOCATOR=mimalloc`
//! runs the process on mimalloc instead, a size-class allocator whose cost per call does not
//! grow with the heap — as Android's Scudo and Apple's libmalloc are size-class allocators.
//! The choice is made once, at the process's first allocation, from the environment (read
//! without allocating), so every block is freed by the allocator that made it.
//!
//! The counts are per thread (no shared counter on the allocation path): the bench charges
//! a member what its calls allocated on the calling thread, as it does for CPU. Each thread
//! also follows the bytes it holds (allocated minus freed, by layout size) and their highest
//! point since a mark: how far one call's heap rises above where it started.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

/// The environment variable that chooses the allocator (`mimalloc`; anything else: the
/// system's).
pub const VARIABLE: &std::ffi::CStr = c"WITAN_BENCH_ALLOCATOR";

static CHOSEN: AtomicU8 = AtomicU8::new(UNDECIDED);

thread_local! {
    /// (allocations, bytes) made on this thread; const-initialised, so reading it never
    /// allocates.
    static MADE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    /// (bytes held, their highest point since the last mark) on this thread. A block freed
    /// by another thread than the one that made it moves both threads' figures, so only rises
    /// within one call are read.
    static HELD: Cell<(i64, i64)> = const { Cell::new((0, 0)) };
}

/// The process's allocator (see the module doc).
pub struct BenchAllocator;

fn chosen() -> u8 {
    let c = CHOSEN.load(Ordering::Relaxed);
    if c != UNDECIDED {
        return c;
    }
    // SAFETY: `getenv` with a NUL-terminated name; the result is only read, at once, before
    // any thread that could change the environment exists.
    let value = unsafe { libc::getenv(VARIABLE.as_ptr()) };
    let mimalloc = !value.is_null()
        // SAFETY: a non-null `getenv` result is a NUL-terminated string.
        && unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes() == b"mimalloc";
    let c = if mimalloc { MIMALLOC } else { SYSTEM };
    CHOSEN.store(c, Ordering::Relaxed);
    c
}

fn count(bytes: usize) {
    // `try_with`: a thread's last frees and allocations may come after its locals are gone.
    let _ = MADE.try_with(|m| {
        let (calls, total) = m.get();
        m.set((calls + 1, total + bytes as u64));
    });
    hold(bytes as i64);
}

fn hold(delta: i64) {
    let _ = HELD.try_with(|h| {
        let (held, peak) = h.get();
        let held = held + delta;
        h.set((held, peak.max(held)));
    });
}

// SAFETY: every call is forwarded to one allocator, the same for the whole process.
unsafe impl GlobalAlloc for BenchAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        match chosen() {
            // SAFETY: forwarded as received.
            MIMALLOC => unsafe { MiMalloc.alloc(layout) },
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        match chosen() {
            // SAFETY: forwarded as received.
            MIMALLOC => unsafe { MiMalloc.alloc_zeroed(layout) },
            _ => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        hold(-(layout.size() as i64));
        match chosen() {
            // SAFETY: `ptr` was made by this allocator (chosen before the first block).
            MIMALLOC => unsafe { MiMalloc.dealloc(ptr, layout) },
            _ => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        hold(-(layout.size() as i64));
        match chosen() {
            // SAFETY: as for `dealloc`.
            MIMALLOC => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            _ => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}

/// The allocator in use: "mimalloc" or "system".
pub fn name() -> &'static str {
    if chosen() == MIMALLOC {
        "mimalloc"
    } else {
        "system"
    }
}

/// (allocations, bytes) made so far on the calling thread (a reallocation counts as one,
/// of its new size).
pub fn made() -> (u64, u64) {
    MADE.try_with(Cell::get).unwrap_or((0, 0))
}

/// Marks the calling thread's heap: its highest point starts again from what it holds now,
/// which is returned.
pub fn mark_held() -> i64 {
    HELD.try_with(|h| {
        let (held, _) = h.get();
        h.set((held, held));
        held
    })
    .unwrap_or(0)
}

/// How far the calling thread's heap rose above `mark` (from [`mark_held`]) at its highest.
pub fn risen_since(mark: i64) -> u64 {
    HELD.try_with(|h| (h.get().1 - mark).max(0) as u64)
        .unwrap_or(0)
}
