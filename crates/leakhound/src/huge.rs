//! The allocator: the system's, asking the kernel for transparent huge pages on big blocks.
//!
//! A snapshot's columns and the analyses' per-node arrays are hundreds of megabytes each and
//! are walked in graph order, not address order: with 4 KiB pages the walks miss the TLB and
//! every first touch is a page fault. Where the kernel leaves huge pages to `madvise` (Debian's
//! default), `summary` of a 1.24 GB snapshot measured 0.87× the wall time and half the system
//! time with them (BENCHMARKS.md); the peak RSS did not change. Small blocks are left alone.

use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks this big or bigger get huge pages. glibc maps such blocks on their own (its mmap
/// threshold never exceeds 32 MiB), so the advice ends with them; a block it cuts from memory
/// it already holds keeps the advice after it is freed, which costs memory, never contents.
const BIG: usize = 32 << 20;
/// The size of a transparent huge page on x86-64 and (4 KiB-page) arm64.
const HUGE_PAGE: usize = 2 << 20;

pub struct HugePages;

// SAFETY: every block comes from `System` and goes back to it with its own layout; the advice
// changes how the kernel backs the pages, never their contents or ownership.
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let q = unsafe { System.realloc(p, layout, new_size) };
        advise(q, new_size);
        q
    }
}

/// Asks for huge pages on the whole huge pages inside the block at `p` of `size` bytes. A
/// refusal (no THP in this kernel) changes nothing, so it is ignored.
fn advise(p: *mut u8, size: usize) {
    if size < BIG || p.is_null() {
        return;
    }
    let start = (p as usize).next_multiple_of(HUGE_PAGE);
    let end = (p as usize + size) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        // SAFETY: the range lies inside a block this process just got from the allocator;
        // MADV_HUGEPAGE does not change its contents.
        let _ = unsafe {
            rustix::mm::madvise(
                start as *mut std::ffi::c_void,
                end - start,
                rustix::mm::Advice::LinuxHugepage,
            )
        };
    }
}
