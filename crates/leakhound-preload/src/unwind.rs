//! The frame-pointer walk, on the sampled path only.

/// Return addresses from `frame` (a hook's own frame) outwards, at most `out.len()`.
///
/// Every frame must lie in `[low, high)`, 16-byte room included, 8-byte aligned and above the
/// one before: the walk reads only this thread's stack, and a frame without a frame pointer
/// (glibc, libstdc++, some addons) ends it or skips to an outer frame, never faults. The first
/// address is the caller of the hook. Addresses are kept raw: names are found in leakhound,
/// never in the target.
///
/// # Safety
/// `[low, high)` must be readable memory of the current thread's stack, and `frame` a frame
/// pointer of the current thread.
pub unsafe fn walk(frame: usize, low: usize, high: usize, out: &mut [u64]) -> usize {
    let mut fp = frame;
    let mut n = 0;
    while n < out.len() {
        if fp < low || !fp.is_multiple_of(8) || fp.saturating_add(16) > high {
            break;
        }
        // SAFETY: fp and fp + 8 lie inside [low, high), the caller's readable stack range.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret < 4096 {
            break;
        }
        out[n] = ret as u64;
        n += 1;
        if next <= fp {
            break;
        }
        fp = next;
    }
    n
}

/// The largest stack the walk trusts: a bound above the current stack pointer by more than
/// this is not this stack's.
pub const MAX_STACK: usize = 1 << 28;

/// The upper end of this thread's stack, or 0 if it cannot be known (the walk then keeps only
/// the hook's caller).
///
/// No call that could allocate or lock: this runs inside a hook, and glibc's
/// `pthread_getattr_np` allocates while holding the thread's lock (a thread whose first
/// allocation came from it would wait for itself). glibc puts a thread's control block, which
/// `pthread_self()` points to, at the top of the thread's stack, so it bounds the frames; the
/// main thread's control block is elsewhere, and its frames lie below `__libc_stack_end`. A
/// forked child's thread keeps the stack it was forked on, so this holds there too.
pub fn stack_high() -> usize {
    // A local (not `&0u8`, which would be promoted to a static): an address on this stack.
    let marker = std::hint::black_box(0u8);
    let here = &marker as *const u8 as usize;
    // SAFETY: pthread_self only reads the thread pointer.
    let tcb = unsafe { libc::pthread_self() } as usize;
    if tcb > here && tcb - here < MAX_STACK {
        return tcb;
    }
    unsafe extern "C" {
        static __libc_stack_end: *const libc::c_void;
    }
    // SAFETY: a variable glibc sets once at start.
    let end = unsafe { __libc_stack_end } as usize;
    if end > here && end - here < MAX_STACK {
        end
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_a_built_chain_and_stops_at_bad_links() {
        // A fake stack: frames at words 0, 4, 8 linking upwards, then a link going down.
        let mut stack = [0usize; 16];
        let base = stack.as_ptr() as usize;
        stack[0] = base + 4 * 8;
        stack[1] = 0x40_1000;
        stack[4] = base + 8 * 8;
        stack[5] = 0x40_2000;
        stack[8] = base; // goes back down: the walk must stop after this frame
        stack[9] = 0x40_3000;
        // The walk reads the array through raw pointers.
        std::hint::black_box(&mut stack);
        let mut out = [0u64; 8];
        // SAFETY: the range is the array above.
        let n = unsafe { walk(base, base, base + 16 * 8, &mut out) };
        assert_eq!(&out[..n], &[0x40_1000, 0x40_2000, 0x40_3000]);
        // Out of bounds from the start: nothing.
        // SAFETY: as above; the walk checks the bounds before reading.
        let n = unsafe { walk(base + 15 * 8, base, base + 16 * 8, &mut out) };
        assert_eq!(n, 0);
    }

    #[test]
    fn knows_the_stack_of_the_current_thread() {
        let local = 0u64;
        let here = &local as *const u64 as usize;
        let high = std::thread::spawn(stack_high).join().unwrap();
        assert!(high > 0);
        assert!(stack_high() > here);
    }
}
