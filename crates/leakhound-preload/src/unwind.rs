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

/// The upper end of this thread's stack, or 0 if it cannot be known (the walk then keeps only
/// the hook's caller).
pub fn stack_high() -> usize {
    // SAFETY: plain syscalls and pthread queries about the calling thread. glibc's
    // pthread_getattr_np may allocate; the hooks are in their pass-through state here.
    unsafe {
        if libc::getpid() == libc::gettid() {
            unsafe extern "C" {
                static __libc_stack_end: *const libc::c_void;
            }
            // Frames of the main thread all lie below the stack end glibc recorded at start.
            return __libc_stack_end as usize;
        }
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return 0;
        }
        let mut base: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut base, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if ok { base as usize + size } else { 0 }
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
