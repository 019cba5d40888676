//! The chunks of V8's heap in a core: found by their headers, without V8's list of them.

use rustc_hash::FxHashMap;

use crate::core::{Core, Segment};

/// Every V8 chunk starts at a multiple of this (`kPageSizeBits` = 18 on x64, V8 8 to 14).
pub(crate) const CHUNK_ALIGNMENT: u64 = 256 << 10;
/// No V8 chunk header is longer: V8 11's, with the marking bitmap inline, and the code pages'
/// guard page end before 16 KiB.
const MAX_HEADER: u64 = 64 << 10;
/// Read-only segments larger than this are not probed for chunks: V8's read-only space is
/// a few hundred KiB.
const MAX_READ_ONLY_SEGMENT: u64 = 16 << 20;
/// A page flag, the same bit from V8 8 to 14: the page is the scavenger's from-space.
const FROM_PAGE: u64 = 1 << 3;

/// The three shapes of the chunk header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderFormat {
    /// V8 11: `BasicMemoryChunk` at the chunk start: size, flags, `Heap*`, area start, area end.
    Chunk11,
    /// V8 12: flags, the chunk's own address, size, `Heap*`, area start, area end.
    Chunk12,
    /// V8 13 and 14: the chunk starts with its flags and a pointer to its
    /// `MemoryChunkMetadata`, a C++ object outside the heap: vtable, chunk address, size, …,
    /// area end (+56), `Heap*` (+64), area start (+72). The read-only space's leaves the chunk
    /// address and size at zero.
    Metadata13,
}

impl HeaderFormat {
    const ALL: [HeaderFormat; 3] = [
        HeaderFormat::Chunk11,
        HeaderFormat::Chunk12,
        HeaderFormat::Metadata13,
    ];

    /// The chunk whose header is at `at`, if the words there make one in this format.
    fn parse(self, core: &Core<'_>, at: u64) -> Option<Page> {
        let word = |addr: u64| core.read_u64(addr);
        let (size, flags, heap, area_start, area_end) = match self {
            HeaderFormat::Chunk11 => (
                word(at)?,
                word(at + 8)?,
                word(at + 16)?,
                word(at + 24)?,
                word(at + 32)?,
            ),
            HeaderFormat::Chunk12 => {
                if word(at + 8)? != at {
                    return None;
                }
                (
                    word(at + 16)?,
                    word(at)?,
                    word(at + 24)?,
                    word(at + 32)?,
                    word(at + 40)?,
                )
            }
            HeaderFormat::Metadata13 => {
                let m = word(at + 8)?;
                if m % 8 != 0 || m == 0 {
                    return None;
                }
                let chunk = word(m + 8)?;
                if chunk != at && chunk != 0 {
                    return None;
                }
                (
                    word(m + 16)?,
                    word(at)?,
                    word(m + 64)?,
                    word(m + 72)?,
                    word(m + 56)?,
                )
            }
        };
        let fits = area_start > at
            && area_start - at <= MAX_HEADER
            && area_start % 8 == 0
            && area_end % 8 == 0
            && area_start <= area_end
            && size % 4096 == 0
            && (size == 0 || area_end - at <= size)
            && area_end - at <= 1 << 40;
        fits.then_some(Page {
            start: at,
            area_start,
            area_end,
            heap,
            flags,
        })
    }
}

/// A V8 chunk: a regular page, a large-object page or a read-only page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// The chunk's first byte (256 KiB-aligned).
    pub(crate) start: u64,
    /// The first object.
    pub(crate) area_start: u64,
    /// One past the last byte objects may use.
    pub(crate) area_end: u64,
    /// The isolate's `Heap*` (0 for the read-only space, which isolates share).
    pub(crate) heap: u64,
    pub(crate) flags: u64,
}

impl Page {
    /// The bytes objects may use.
    pub(crate) fn area_len(&self) -> u64 {
        self.area_end - self.area_start
    }
}

/// The chunks of a core.
pub(crate) struct Pages {
    /// Sorted by address, disjoint; from-space pages left out.
    pub(crate) pages: Vec<Page>,
    /// Distinct `Heap*` values: isolates (the main thread's and workers').
    pub(crate) heaps: usize,
}

impl Pages {
    /// Finds the chunks among the anonymous segments; `None` when there are none in any
    /// format (not a V8 process, or a V8 whose chunk header this crate does not know).
    pub(crate) fn find(core: &Core<'_>) -> Option<Pages> {
        let mut best: Option<(HeaderFormat, Vec<Page>)> = None;
        for format in HeaderFormat::ALL {
            let pages = candidates(core, format);
            if pages.len() > best.as_ref().map_or(0, |b| b.1.len()) {
                best = Some((format, pages));
            }
        }
        let (_, mut pages) = best?;
        // A header made of garbage names a `Heap*` that no other chunk has.
        let mut per_heap: FxHashMap<u64, usize> = FxHashMap::default();
        for p in &pages {
            *per_heap.entry(p.heap).or_default() += 1;
        }
        pages.retain(|p| p.heap == 0 || per_heap[&p.heap] >= 2);
        let heaps = per_heap.iter().filter(|&(&h, &n)| h != 0 && n >= 2).count();
        pages.retain(|p| p.flags & FROM_PAGE == 0);
        Some(Pages { pages, heaps })
    }

    /// The page whose object area contains `addr`.
    pub(crate) fn page_of(&self, addr: u64) -> Option<&Page> {
        let i = self.pages.partition_point(|p| p.start <= addr);
        let p = self.pages.get(i.checked_sub(1)?)?;
        (p.area_start <= addr && addr < p.area_end).then_some(p)
    }
}

/// Every chunk header in `format` at a 256 KiB-aligned address of an anonymous segment.
fn candidates(core: &Core<'_>, format: HeaderFormat) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    // Large inaccessible reservations (the code range, WebAssembly's guard regions), which
    // gcore writes as zero-filled read-only segments, hold no chunk: not probed, which
    // spares reading gigabytes from disk. The read-only space's pages are small.
    let probed = |s: &&Segment| {
        s.flags.writable() || s.flags.executable() || s.filesz <= MAX_READ_ONLY_SEGMENT
    };
    for seg in core.anonymous_segments().filter(probed) {
        let mut at = seg.vaddr.next_multiple_of(CHUNK_ALIGNMENT);
        while at < seg.present_end() {
            match format.parse(core, at) {
                Some(page) => {
                    pages.push(page);
                    // A large page's object may hold anything, headers too.
                    at = page.area_end.max(at + 1).next_multiple_of(CHUNK_ALIGNMENT);
                }
                None => at += CHUNK_ALIGNMENT,
            }
        }
    }
    pages
}
