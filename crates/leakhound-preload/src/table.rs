//! Fixed-capacity tables in mmap'd memory: nothing here ever calls malloc.
//!
//! - [`Filter`]: one bit per address hash, read without a lock by every `free`; only a set bit
//!   costs the lock and a probe of the live table.
//! - [`Live`]: the sampled blocks still allocated, by address (open addressing, linear probing,
//!   backward-shift deletion, so no tombstones).
//! - [`Stacks`]: every distinct sampled stack once, with its counters.
//!
//! All but the filter's reads happen under the tracker's lock.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Anonymous memory from mmap, named `[anon:leakhound]` where the kernel allows (Linux ≥ 5.17),
/// untouched (so not resident) until used.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

impl Region {
    pub fn new(len: usize) -> Option<Region> {
        // SAFETY: a fresh private anonymous mapping; no memory of anyone else is touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        const PR_SET_VMA: libc::c_int = 0x53564d41;
        const PR_SET_VMA_ANON_NAME: libc::c_ulong = 0;
        // SAFETY: names our own mapping; an older kernel answers EINVAL, which changes nothing.
        unsafe {
            libc::prctl(
                PR_SET_VMA,
                PR_SET_VMA_ANON_NAME,
                ptr,
                len,
                c"leakhound".as_ptr(),
            );
        }
        NonNull::new(ptr.cast()).map(|ptr| Region { ptr, len })
    }

    /// The region as a slice of `T`s.
    ///
    /// # Safety
    /// `T` must be valid when zeroed and have an alignment ≤ the page size.
    pub unsafe fn slice<T>(&self) -> &[T] {
        // SAFETY: the mapping is ours, zero-filled, page-aligned and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast(), self.len / size_of::<T>()) }
    }

    /// # Safety
    /// As [`Region::slice`].
    pub unsafe fn slice_mut<T>(&mut self) -> &mut [T] {
        // SAFETY: as above, and `&mut self` makes this the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.len / size_of::<T>())
        }
    }

    /// Bytes of the region in RAM (mincore).
    pub fn resident(&self) -> u64 {
        // SAFETY: plain query.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let mut pages = vec![0u8; self.len.div_ceil(page)];
        // SAFETY: our own mapping; `pages` has one byte per page of it.
        let ok =
            unsafe { libc::mincore(self.ptr.as_ptr().cast(), self.len, pages.as_mut_ptr()) } == 0;
        if !ok {
            return 0;
        }
        pages.iter().filter(|&&p| p & 1 == 1).count() as u64 * page as u64
    }

    /// Give the pages back (they read as zero afterwards).
    pub fn clear(&self) {
        // SAFETY: our own mapping; MADV_DONTNEED on private anonymous memory zero-fills it.
        unsafe {
            libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_DONTNEED);
        }
    }
}

/// The bit hash the C hot path uses (`hooks.c`, `maybe_sampled`): keep the two in step.
pub const FILTER_BITS: u32 = 23;

pub fn filter_bit(addr: u64) -> usize {
    ((addr >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
}

/// A bitmap of address hashes. Bits are never cleared one by one (another sampled block may
/// share the bit); the tracker rebuilds a second bitmap from the live table and swaps them.
pub struct Filter {
    words: Region,
}

impl Filter {
    pub const BYTES: usize = (1 << FILTER_BITS) / 8;

    pub fn new() -> Option<Filter> {
        Region::new(Self::BYTES).map(|words| Filter { words })
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: AtomicU64 is valid zeroed; shared access only through atomics.
        unsafe { self.words.slice::<AtomicU64>() }
    }

    pub fn set(&self, addr: u64) {
        let bit = filter_bit(addr);
        if let Some(word) = self.words().get(bit / 64) {
            word.fetch_or(1 << (bit % 64), Ordering::Relaxed);
        }
    }

    /// The free path asks in C (`hooks.c`, `maybe_sampled`); this is for the tests.
    #[cfg(test)]
    pub fn contains(&self, addr: u64) -> bool {
        let bit = filter_bit(addr);
        self.words()
            .get(bit / 64)
            .is_some_and(|w| w.load(Ordering::Relaxed) >> (bit % 64) & 1 == 1)
    }

    pub fn clear(&self) {
        self.words.clear();
    }

    pub fn as_ptr(&self) -> *mut u64 {
        self.words.ptr.as_ptr().cast()
    }

    pub fn resident(&self) -> u64 {
        self.words.resident()
    }
}

/// One sampled block still allocated.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Block {
    pub addr: u64,
    /// Its weight: the bytes it stands for.
    pub bytes: u64,
    /// Its size (saturated; at least 1): `bytes / size` is how many blocks it stands for.
    pub size: u32,
    pub stack: u32,
    /// Milliseconds since the tracker started, + 1 (0 = empty slot is `addr == 0`).
    pub birth: u64,
}

impl Block {
    /// The number of blocks it stands for, in thousandths.
    pub fn objects_milli(&self) -> u64 {
        self.bytes.saturating_mul(1000) / u64::from(self.size.max(1))
    }
}

pub struct Live {
    slots: Region,
    mask: usize,
    pub len: usize,
}

impl Live {
    pub fn new(capacity: usize) -> Option<Live> {
        let capacity = capacity.next_power_of_two();
        Region::new(capacity * size_of::<Block>()).map(|slots| Live {
            slots,
            mask: capacity - 1,
            len: 0,
        })
    }

    fn slots(&self) -> &[Block] {
        // SAFETY: Block is plain data, valid zeroed.
        unsafe { self.slots.slice::<Block>() }
    }

    fn slots_mut(&mut self) -> &mut [Block] {
        // SAFETY: as above.
        unsafe { self.slots.slice_mut::<Block>() }
    }

    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Fuller than this and the tracker halves the sampling rate.
    pub fn crowded(&self) -> bool {
        self.len * 4 >= self.capacity() * 3
    }

    fn home(&self, addr: u64) -> usize {
        ((addr >> 4).wrapping_mul(0xFF51_AFD7_ED55_8CCD) >> 20) as usize & self.mask
    }

    /// Inserts or replaces; false when the table is full (the block is then not tracked).
    pub fn insert(&mut self, block: Block) -> bool {
        if block.addr == 0 || self.len + 1 >= self.capacity() {
            return false;
        }
        let mask = self.mask;
        let mut i = self.home(block.addr);
        let slots = self.slots();
        while slots[i].addr != 0 && slots[i].addr != block.addr {
            i = (i + 1) & mask;
        }
        if slots[i].addr == 0 {
            self.len += 1;
        }
        self.slots_mut()[i] = block;
        true
    }

    pub fn remove(&mut self, addr: u64) -> Option<Block> {
        if addr == 0 {
            return None;
        }
        let mask = self.mask;
        let mut i = self.home(addr);
        let found = loop {
            let slot = self.slots()[i];
            if slot.addr == 0 {
                return None;
            }
            if slot.addr == addr {
                break slot;
            }
            i = (i + 1) & mask;
        };
        // Backward-shift deletion: move later members of the run into the hole when their home
        // does not lie (cyclically) between the hole and their slot.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let next = self.slots()[j];
            if next.addr == 0 {
                break;
            }
            let home = self.home(next.addr);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots_mut()[hole] = next;
                hole = j;
            }
        }
        self.slots_mut()[hole] = Block::default();
        self.len -= 1;
        Some(found)
    }

    pub fn addr_at(&self, i: usize) -> u64 {
        self.slots().get(i).map_or(0, |b| b.addr)
    }

    pub fn blocks_mut(&mut self) -> impl Iterator<Item = &mut Block> {
        self.slots_mut().iter_mut().filter(|b| b.addr != 0)
    }

    pub fn resident(&self) -> u64 {
        self.slots.resident()
    }

    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.slots().iter().filter(|b| b.addr != 0)
    }
}

/// Counters of one stack. Bytes and objects are estimates (sums of sample weights).
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Counters {
    pub live_bytes: u64,
    pub live_objects_milli: u64,
    pub alloc_bytes: u64,
    pub alloc_objects_milli: u64,
    pub live_samples: u64,
    pub samples: u64,
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct StackSlot {
    hash: u64,
    start: u32,
    len: u32,
}

/// Stack 0 stands for every sample that found the table full.
pub const OVERFLOW_STACK: u32 = 0;

pub struct Stacks {
    index: Region,  // u32 stack ids + 1, open addressing by hash
    slots: Region,  // StackSlot per id
    frames: Region, // u64 return addresses, appended
    pub counters: Region,
    pub len: usize,
    frames_len: usize,
    capacity: usize,
    /// Per mille of capacity at which [`Stacks::alarm`] rings next.
    alarm_at: usize,
}

impl Stacks {
    pub const MAX_DEPTH: usize = 64;

    pub fn new(capacity: usize, frames: usize) -> Option<Stacks> {
        let capacity = capacity.next_power_of_two();
        let stacks = Stacks {
            index: Region::new(capacity * 2 * 4)?,
            slots: Region::new(capacity * size_of::<StackSlot>())?,
            frames: Region::new(frames * 8)?,
            counters: Region::new(capacity * size_of::<Counters>())?,
            len: 1, // the overflow stack
            frames_len: 0,
            capacity,
            alarm_at: 750,
        };
        Some(stacks)
    }

    fn index(&self) -> &[u32] {
        // SAFETY: plain data, valid zeroed.
        unsafe { self.index.slice::<u32>() }
    }
    fn slots(&self) -> &[StackSlot] {
        // SAFETY: as above.
        unsafe { self.slots.slice::<StackSlot>() }
    }
    fn all_frames(&self) -> &[u64] {
        // SAFETY: as above.
        unsafe { self.frames.slice::<u64>() }
    }
    pub fn counters(&self) -> &[Counters] {
        // SAFETY: as above.
        unsafe { self.counters.slice::<Counters>() }
    }
    pub fn counters_mut(&mut self) -> &mut [Counters] {
        // SAFETY: as above, with `&mut self`.
        unsafe { self.counters.slice_mut::<Counters>() }
    }

    /// True once each time the table gets half as far again from full (3/4, 7/8, …).
    pub fn alarm(&mut self) -> bool {
        let used = (self.len * 1000 / self.capacity)
            .max(self.frames_len * 1000 / self.all_frames().len().max(1));
        if used >= self.alarm_at && self.alarm_at < 1000 {
            // 750, 875, 937, 968, then never again: halving the rate frees no stack slot, so
            // past that the overflow stack takes the rest.
            self.alarm_at = if self.alarm_at >= 968 {
                1000
            } else {
                self.alarm_at + (1000 - self.alarm_at) / 2
            };
            true
        } else {
            false
        }
    }

    /// The id of this stack, added if new; [`OVERFLOW_STACK`] when there is no room.
    pub fn intern(&mut self, frames: &[u64]) -> u32 {
        let frames = &frames[..frames.len().min(Self::MAX_DEPTH)];
        let hash = frames.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &f| {
            (h ^ f).wrapping_mul(0x100_0000_01b3)
        });
        let mask = self.index().len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let id = self.index()[i];
            if id == 0 {
                break;
            }
            let slot = self.slots()[(id - 1) as usize];
            if slot.hash == hash && self.frames_of(id - 1) == frames {
                return id - 1;
            }
            i = (i + 1) & mask;
        }
        if self.len >= self.capacity || self.frames_len + frames.len() > self.all_frames().len() {
            return OVERFLOW_STACK;
        }
        let id = self.len as u32;
        let start = self.frames_len;
        let slot = StackSlot {
            hash,
            start: start as u32,
            len: frames.len() as u32,
        };
        // SAFETY (the three): plain data, valid zeroed, under `&mut self`.
        let all_frames = unsafe { self.frames.slice_mut::<u64>() };
        all_frames[start..start + frames.len()].copy_from_slice(frames);
        let slots = unsafe { self.slots.slice_mut::<StackSlot>() };
        slots[id as usize] = slot;
        let index = unsafe { self.index.slice_mut::<u32>() };
        index[i] = id + 1;
        self.frames_len += frames.len();
        self.len += 1;
        id
    }

    pub fn resident(&self) -> u64 {
        [&self.index, &self.slots, &self.frames, &self.counters]
            .iter()
            .map(|r| r.resident())
            .sum()
    }

    pub fn frames_of(&self, id: u32) -> &[u64] {
        let slot = self.slots()[id as usize];
        &self.all_frames()[slot.start as usize..(slot.start + slot.len) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_table_keeps_every_block_through_inserts_and_removals() {
        let mut live = Live::new(1 << 10).unwrap();
        let mut truth = std::collections::HashMap::new();
        let mut rng = 0x1234_5678u64;
        for step in 0..20_000u64 {
            crate::sampler::next_random(&mut rng);
            // Clustered addresses (as malloc's are), so runs collide and wrap around.
            let addr = 0x5555_0000_0000 + (rng % 2048) * 16;
            if truth.len() < 700 && !rng.is_multiple_of(3) {
                let block = Block {
                    addr,
                    bytes: step,
                    size: 1,
                    stack: 1,
                    birth: 1,
                };
                assert!(live.insert(block));
                truth.insert(addr, step);
            } else {
                assert_eq!(
                    live.remove(addr).map(|b| b.bytes),
                    truth.remove(&addr),
                    "step {step}"
                );
            }
            assert_eq!(live.len, truth.len());
        }
        for (addr, bytes) in &truth {
            assert_eq!(live.remove(*addr).map(|b| b.bytes), Some(*bytes));
        }
        assert_eq!(live.blocks().count(), 0);
    }

    #[test]
    fn a_full_live_table_refuses() {
        let mut live = Live::new(8).unwrap();
        let inserted = (1..=20u64)
            .filter(|a| {
                live.insert(Block {
                    addr: a * 16,
                    ..Block::default()
                })
            })
            .count();
        assert_eq!(inserted, 7);
        assert!(live.crowded());
    }

    #[test]
    fn stacks_are_interned_once_and_overflow_to_stack_zero() {
        let mut stacks = Stacks::new(4, 1024).unwrap();
        let a = stacks.intern(&[1, 2, 3]);
        let b = stacks.intern(&[1, 2, 4]);
        assert_eq!((a, b), (1, 2));
        assert_eq!(stacks.intern(&[1, 2, 3]), a);
        assert_eq!(stacks.frames_of(b), &[1, 2, 4]);
        assert_eq!(stacks.intern(&[9]), 3);
        assert_eq!(
            stacks.intern(&[10]),
            OVERFLOW_STACK,
            "capacity 4 includes the overflow stack"
        );
        assert_eq!(
            stacks.intern(&[9]),
            3,
            "known stacks are still found when full"
        );
        let deep: Vec<u64> = (0..100).collect();
        let mut roomy = Stacks::new(16, 1024).unwrap();
        let id = roomy.intern(&deep);
        assert_eq!(roomy.frames_of(id).len(), Stacks::MAX_DEPTH);
    }

    #[test]
    fn the_stack_alarm_rings_once_per_level() {
        let mut stacks = Stacks::new(16, 1024).unwrap();
        for i in 0..10 {
            stacks.intern(&[i]);
        }
        assert!(!stacks.alarm(), "11 of 16");
        stacks.intern(&[10]);
        assert!(stacks.alarm(), "12 of 16 = 3/4");
        assert!(!stacks.alarm(), "once per level");
        stacks.intern(&[11]);
        stacks.intern(&[12]);
        assert!(stacks.alarm(), "14 of 16 = 7/8");
    }

    #[test]
    fn the_filter_matches_the_hot_path_hash() {
        let filter = Filter::new().unwrap();
        filter.set(0x7f00_1234_5670);
        assert!(filter.contains(0x7f00_1234_5670));
        assert!(!filter.contains(0x7f00_1234_5680));
        filter.clear();
        assert!(!filter.contains(0x7f00_1234_5670));
    }
}
