//! leakhound's native allocation tracker, preloaded into a process with `LD_PRELOAD`.
//!
//! - The hooks (`hooks.c` behind the trampolines of `hooks.rs`) forward every malloc, free and
//!   C++ `operator new`/`delete` to glibc's `__libc_*` functions and count bytes down per thread.
//! - About one allocation per `LEAKHOUND_NATIVE_INTERVAL` bytes (a Poisson process,
//!   [`sampler`]) takes the slow path here: a frame-pointer walk ([`unwind`]), then the
//!   tables ([`table`]) under one lock. A `free` takes the lock only when the filter says the
//!   block may have been sampled.
//! - A helper thread ([`dump`]) writes the aggregate per stack to `LEAKHOUND_NATIVE_DIR/PID/`
//!   every few seconds, when asked, and at exit. leakhound reads, symbolizes and analyses it.
//!
//! Without `LEAKHOUND_NATIVE_DIR` the library only forwards. Any internal failure turns the
//! tracker off (and says why in the next dump or on stderr): the target never dies because of us.
//! Nothing here allocates on a hook's path, installs signal handlers or writes to the target's
//! stack.

pub mod dump;
#[cfg(not(test))]
mod hooks;
pub mod sampler;
pub mod table;
pub mod unwind;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, Ordering};

use table::{Block, Counters, Filter, Live, Stacks};

/// The per-thread state of `hooks.c` (`struct lh_thread`).
#[repr(C)]
pub struct ThreadState {
    pub countdown: i64,
    pub rng: u64,
    pub stack_hi: usize,
    pub busy: u32,
    pub helper: u32,
}

pub const DEFAULT_INTERVAL: u64 = 512 * 1024;
pub const DEFAULT_DUMP_MS: u64 = 5000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum State {
    /// Not initialised yet (other libraries' constructors may allocate before ours runs).
    Unset = 0,
    On = 1,
    /// Turned off by an internal failure ([`Tracker::failure`] says which).
    Failed = 2,
    /// No directory configured: forward only.
    Off = 3,
}

pub struct Tables {
    pub live: Live,
    pub stacks: Stacks,
    filters: [Filter; 2],
    current: usize,
}

pub struct Tracker {
    lock: AtomicBool,
    state: AtomicU8,
    pub failure: AtomicPtr<u8>,
    /// The mean sampling interval in bytes, doubled each time a table fills.
    pub interval: AtomicU64,
    pub halvings: AtomicU32,
    /// Samples that found no room in the live table (counted as allocated, never as live).
    pub dropped: AtomicU64,
    start_ns: AtomicU64,
    tables: UnsafeCell<Option<Tables>>,
}

// SAFETY: `tables` is only touched with `lock` held (see `Tracker::with`).
unsafe impl Sync for Tracker {}

pub static TRACKER: Tracker = Tracker {
    lock: AtomicBool::new(false),
    state: AtomicU8::new(State::Unset as u8),
    failure: AtomicPtr::new(std::ptr::null_mut()),
    interval: AtomicU64::new(DEFAULT_INTERVAL),
    halvings: AtomicU32::new(0),
    dropped: AtomicU64::new(0),
    start_ns: AtomicU64::new(0),
    tables: UnsafeCell::new(None),
};

unsafe extern "C" {
    /// The filter pointer the C free path reads (`hooks.c`).
    static lh_filter: AtomicPtr<u64>;
    fn lh_thread_self() -> *mut ThreadState;
}

pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Tracker {
    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Unset,
            1 => State::On,
            2 => State::Failed,
            _ => State::Off,
        }
    }

    /// Milliseconds since the tracker started.
    pub fn now_ms(&self) -> u64 {
        monotonic_ns().saturating_sub(self.start_ns.load(Ordering::Relaxed)) / 1_000_000
    }

    /// Turn tracking off for good, keeping the reason for the next dump.
    pub fn fail(&self, why: &'static std::ffi::CStr) {
        self.failure
            .store(why.as_ptr() as *mut u8, Ordering::Relaxed);
        self.state.store(State::Failed as u8, Ordering::Release);
        // SAFETY: an atomic store of a null pointer; the free path then never asks again.
        unsafe { lh_filter.store(std::ptr::null_mut(), Ordering::Relaxed) };
    }

    /// No recording was asked for: the hooks only forward from now on.
    pub fn turn_off(&self) {
        self.state.store(State::Off as u8, Ordering::Release);
    }

    fn acquire(&self) {
        let mut spins = 0u32;
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                // SAFETY: a plain syscall.
                unsafe { libc::sched_yield() };
            }
        }
    }

    fn release(&self) {
        self.lock.store(false, Ordering::Release);
    }

    /// Run `f` on the tables with the lock held; `None` when tracking is not set up.
    pub fn with<R>(&self, f: impl FnOnce(&mut Tables) -> R) -> Option<R> {
        self.acquire();
        // SAFETY: the lock is held, so this is the only reference to the tables.
        let result = unsafe { (*self.tables.get()).as_mut() }.map(f);
        self.release();
        result
    }

    /// Set up the tables and turn tracking on; false (and off) when memory cannot be mapped.
    pub fn start(&self, interval: u64) -> bool {
        // A live table sized for the interval: at 512 KiB, 64 Ki samples cover 32 GiB of live
        // native memory before the rate halves; tracking every allocation needs room for
        // every live block.
        let live = match interval {
            0..4096 => 1 << 20,
            4096..65536 => 1 << 18,
            _ => 1 << 16,
        };
        let tables = (|| {
            Some(Tables {
                live: Live::new(live)?,
                stacks: Stacks::new(1 << 16, 1 << 21)?,
                filters: [Filter::new()?, Filter::new()?],
                current: 0,
            })
        })();
        let Some(tables) = tables else {
            self.fail(c"could not map memory for the tables");
            return false;
        };
        let filter = tables.filters[0].as_ptr();
        self.interval.store(interval.max(1), Ordering::Relaxed);
        self.start_ns.store(monotonic_ns(), Ordering::Relaxed);
        self.acquire();
        // SAFETY: the lock is held.
        unsafe { *self.tables.get() = Some(tables) };
        self.release();
        // SAFETY: atomic store; the bitmap lives as long as the process.
        unsafe { lh_filter.store(filter, Ordering::Relaxed) };
        self.state.store(State::On as u8, Ordering::Release);
        true
    }

    /// The fork handlers: the lock is taken before fork and released on both sides, so the
    /// child never inherits it held. In between, the forking thread passes through: other
    /// libraries' fork handlers run inside ours (theirs were registered first) and may allocate.
    pub fn before_fork(&self) {
        self.acquire();
        // SAFETY: the calling thread's own state.
        unsafe { (*lh_thread_self()).busy += 1 };
    }
    pub fn after_fork(&self) {
        // SAFETY: as above.
        unsafe { (*lh_thread_self()).busy -= 1 };
        self.release();
    }
}

impl Tables {
    /// Record one sampled block.
    fn sample(&mut self, block: Block, frames: &[u64]) {
        let stack = self.stacks.intern(frames);
        let block = Block { stack, ..block };
        let counters = &mut self.stacks.counters_mut()[stack as usize];
        counters.alloc_bytes += block.bytes;
        counters.alloc_objects_milli += block.objects_milli();
        counters.samples += 1;
        if self.live.insert(block) {
            counters.live_bytes += block.bytes;
            counters.live_objects_milli += block.objects_milli();
            counters.live_samples += 1;
            self.filters[self.current].set(block.addr);
        } else {
            TRACKER.dropped.fetch_add(1, Ordering::Relaxed);
        }
        // A crowded live table empties by half when the rate halves; the stack table does not
        // (stacks are kept for good), so it asks again only each time it is half as far again
        // from full: 3/4, 7/8, 15/16…
        if self.live.crowded() || self.stacks.alarm() {
            self.halve_rate();
        }
    }

    fn forget(&mut self, addr: u64) -> Option<Block> {
        let block = self.live.remove(addr)?;
        let counters = &mut self.stacks.counters_mut()[block.stack as usize];
        counters.live_bytes = counters.live_bytes.saturating_sub(block.bytes);
        counters.live_objects_milli = counters
            .live_objects_milli
            .saturating_sub(block.objects_milli());
        counters.live_samples = counters.live_samples.saturating_sub(1);
        Some(block)
    }

    /// Halve the sampling rate without biasing anything: from now on the mean interval is
    /// doubled, and each live sample is kept with probability ½ at twice its weight (a fair
    /// coin per block, drawn from its address and the halving's number).
    fn halve_rate(&mut self) {
        let round = TRACKER.halvings.fetch_add(1, Ordering::Relaxed) as u64 + 1;
        let interval = TRACKER.interval.load(Ordering::Relaxed);
        TRACKER
            .interval
            .store(interval.saturating_mul(2), Ordering::Relaxed);
        let tails = |addr: u64| {
            let mut x = addr ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            sampler::next_random(&mut x) >> 63 == 1
        };
        // One pass: removing at `i` shifts later blocks of the run back into `i`, so look at
        // `i` again; a block shifted past the end is seen again there, and the coin, a function
        // of its address, gives the same answer.
        let mut i = 0;
        while i < self.live.capacity() {
            let addr = self.live.addr_at(i);
            if addr != 0 && tails(addr) {
                self.forget(addr);
            } else {
                i += 1;
            }
        }
        for block in self.live.blocks_mut() {
            block.bytes = block.bytes.saturating_mul(2);
            let counters = &mut self.stacks.counters_mut()[block.stack as usize];
            counters.live_bytes += block.bytes / 2;
            counters.live_objects_milli += block.objects_milli() / 2;
        }
    }

    /// A snapshot of the counters (index = stack id) and the live bytes per stack by age.
    pub fn read(&mut self, now_ms: u64) -> (Vec<Counters>, Vec<[u64; 4]>) {
        let n = self.stacks.len;
        let counters = self.stacks.counters()[..n].to_vec();
        let mut ages = vec![[0u64; 4]; n];
        for block in self.live.blocks() {
            let age_s = now_ms.saturating_sub(block.birth.saturating_sub(1)) / 1000;
            let bucket = match age_s {
                0..60 => 0,
                60..300 => 1,
                300..1800 => 2,
                _ => 3,
            };
            if let Some(a) = ages.get_mut(block.stack as usize) {
                a[bucket] += block.bytes;
            }
        }
        (counters, ages)
    }

    /// The tracker's own memory in RAM: every table and both filters.
    pub fn resident(&self) -> u64 {
        self.live.resident()
            + self.stacks.resident()
            + self.filters.iter().map(Filter::resident).sum::<u64>()
    }

    /// Rebuild the free path's filter from the live table (bits of freed blocks go away).
    pub fn refresh_filter(&mut self) {
        let next = 1 - self.current;
        self.filters[next].clear();
        for block in self.live.blocks() {
            self.filters[next].set(block.addr);
        }
        // SAFETY: atomic store of a bitmap that lives as long as the process; Release pairs
        // with the hot path's Acquire load.
        unsafe { lh_filter.store(self.filters[next].as_ptr(), Ordering::Release) };
        self.current = next;
    }
}

/// The sampled path, called by `hooks.c` when a thread's countdown runs out.
///
/// # Safety
/// Called only by the hooks, with `t` the calling thread's state and `frame` its hook's frame.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lh_slow(
    ptr: *mut u8,
    size: usize,
    frame: usize,
    t: *mut ThreadState,
    birth: u64,
) {
    // SAFETY: the hook passes its own thread's state.
    let t = unsafe { &mut *t };
    match TRACKER.state() {
        State::On if t.helper == 0 => {}
        // Before our constructor (other libraries' constructors allocate first): those
        // allocations are not tracked, and the countdown starts afresh once we are set up.
        State::Unset => {
            t.countdown = 0;
            return;
        }
        _ => {
            t.countdown = i64::MAX / 2;
            return;
        }
    }
    dump::helper_if_needed();
    let interval = TRACKER.interval.load(Ordering::Relaxed);
    if t.rng == 0 {
        // The thread's first slow path: start its countdown here, counting this allocation.
        t.rng = sampler::seed(
            monotonic_ns() ^ (t as *const ThreadState as u64) ^ (size as u64).rotate_left(32),
        );
        t.stack_hi = unwind::stack_high();
        t.countdown = sampler::next_interval(&mut t.rng, interval) - size as i64;
        if t.countdown > 0 {
            return;
        }
    }
    t.countdown = sampler::next_interval(&mut t.rng, interval);
    let (bytes, _) = sampler::weight(size as u64, interval);
    let mut frames = [0u64; Stacks::MAX_DEPTH];
    let low = &frames as *const _ as usize;
    // Off the thread's stack (a signal's alternate stack, a fiber), the walk keeps to the
    // hook's own frame: the memory between the two stacks may not be mapped.
    let high = if t.stack_hi > low && t.stack_hi - low < unwind::MAX_STACK {
        t.stack_hi
    } else {
        frame + 16
    };
    // SAFETY: [low, high) is this thread's stack between here and its top (or the hook's own
    // frame when the top is unknown); `frame` is the hook's frame on it.
    let depth = unsafe { unwind::walk(frame, low, high, &mut frames) };
    let block = Block {
        addr: ptr as u64,
        bytes,
        size: size.clamp(1, u32::MAX as usize) as u32,
        stack: 0,
        birth: if birth != 0 {
            birth
        } else {
            TRACKER.now_ms() + 1
        },
    };
    TRACKER.with(|tables| tables.sample(block, &frames[..depth]));
}

/// The free path after a filter hit: forget the block if it was sampled. Returns 1 and its
/// birth (for realloc) when it was.
///
/// # Safety
/// `birth` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lh_forget(ptr: *mut u8, birth: *mut u64) -> i32 {
    match TRACKER.with(|tables| tables.forget(ptr as u64)).flatten() {
        Some(block) => {
            // SAFETY: the hook passes a pointer to its local.
            unsafe { *birth = block.birth };
            1
        }
        None => 0,
    }
}

static REAL: [AtomicPtr<libc::c_void>; 3] = [
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
];

/// The next definition of a function we interpose but cannot forward to a `__libc_*` name.
#[unsafe(no_mangle)]
pub extern "C" fn lh_real(which: i32) -> *mut libc::c_void {
    let names = [c"malloc_usable_size", c"_Znwm", c"_ZnwmSt11align_val_t"];
    let Some(name) = names.get(which as usize) else {
        return std::ptr::null_mut();
    };
    let cached = REAL[which as usize].load(Ordering::Relaxed);
    if !cached.is_null() {
        return cached;
    }
    // SAFETY: dlsym with a constant name; it may allocate, through our pass-through hooks.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    REAL[which as usize].store(found, Ordering::Relaxed);
    found
}

/// Mark the calling thread as inside leakhound while `f` runs: its allocations pass through.
pub fn untracked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the calling thread's own state, from the C side.
    let t = unsafe { &mut *lh_thread_self() };
    let was = t.busy;
    t.busy = 1;
    let result = f();
    t.busy = was;
    result
}

/// Mark the calling thread as the tracker's own for good.
pub fn helper_thread() {
    // SAFETY: as above.
    let t = unsafe { &mut *lh_thread_self() };
    t.busy = 1;
    t.helper = 1;
}

#[cfg(not(test))]
mod lifecycle {
    use super::*;

    extern "C" fn init() {
        untracked(|| {
            let Some(config) = dump::Config::from_env() else {
                TRACKER.turn_off();
                return;
            };
            if !TRACKER.start(config.interval) {
                dump::complain(c"could not map memory for its tables");
                return;
            }
            extern "C" fn prepare() {
                TRACKER.before_fork();
            }
            extern "C" fn parent() {
                TRACKER.after_fork();
            }
            extern "C" fn child() {
                TRACKER.after_fork();
                dump::forked();
            }
            // SAFETY: registers plain functions; glibc may allocate (pass-through here).
            unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
            dump::start(config);
        })
    }

    extern "C" fn fini() {
        untracked(dump::at_exit);
    }

    #[used]
    #[unsafe(link_section = ".init_array")]
    static INIT: extern "C" fn() = init;

    #[used]
    #[unsafe(link_section = ".fini_array")]
    static FINI: extern "C" fn() = fini;
}
