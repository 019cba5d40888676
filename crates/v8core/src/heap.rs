//! V8's heap in a core, found without V8's own bookkeeping: the pages, the Maps, and the
//! objects on the pages, walked one after the other.
//!
//! # Pages ([`pages`])
//!
//! V8 allocates its heap in *chunks* aligned to 256 KiB: regular pages (256 KiB), large-object
//! pages (one object each, any size), and the read-only space's pages. Every chunk starts with
//! a header that says where its objects start and end (`area_start`, `area_end`). The
//! postmortem metadata does not describe the header, and its shape changed twice between
//! Node 20 and 26: [`pages::HeaderFormat`] knows the three shapes. Every 256 KiB-aligned
//! address of an anonymous segment is tried as a chunk; a header counts only when it is
//! consistent (its area inside the chunk, the chunk's size a multiple of the OS page, its
//! `Heap*` shared with another chunk, or null for the read-only space), and the format that
//! recognises the most chunks in the core is used for all of them.
//!
//! Pages of the scavenger's *from-space* (page flag `FROM_PAGE`) are left out: they hold what
//! the last scavenge left behind (forwarding addresses, dead objects), not the heap.
//!
//! # Linear allocation areas ([`Heap::labs`])
//!
//! V8 hands out memory in *linear allocation areas*: objects are allocated at `top`, up to
//! `limit`; between them there are no objects yet (zeros, or stale bytes). Their bounds are in
//! V8's C++ objects outside the heap (`LinearAllocationArea`: start, top, limit), found by
//! their shape: three words in order, in one page's area.
//!
//! # Objects
//!
//! On a page, objects follow each other from `area_start` without gaps: free memory is itself
//! covered by filler objects (free space, one- and two-word fillers), which have Maps too. The
//! walk reads the word at the area start, which must point to a *valid Map* (an object on a
//! heap page whose own map is a *meta map*: a Map of `MAP_TYPE` that is its own map),
//! computes the object's size from the Map (fixed-size objects) or from the Map and the
//! object's own length fields ([`Rule`]), and steps to the next object. So a word equal to a
//! Map pointer anywhere else (inside JIT code, a back pointer, a field) is never taken for an
//! object.
//!
//! The walk of a page stops where the next word is not a valid Map, or where an object's size
//! cannot be computed or runs past the area ([`Stop`]): at the `top` of an allocation area,
//! or at something this version does not know. The caller decides what to make of the rest of
//! the page (resume at the area's `limit`, or report it); nothing here guesses where objects
//! might resume.
//!
//! # What is hard-coded ([`layout`])
//!
//! The metadata gives instance types and the offsets of common fields, but not how V8 sizes
//! every variable-size object, nor the numbers of a few types (free space, fillers, feedback
//! metadata, BigInt, hash tables). Those come from V8's numbering (types sorted by class
//! hierarchy, then by name: the unnamed neighbours of named types) and from the layouts of
//! V8 11 to 14, chosen by [`Generation`]; each was checked by walking every page of real cores
//! of Node 20, 22, 24 and 26 to its end.

mod layout;
mod pages;

pub(crate) use layout::{Generation, Layout, Rule, ScriptFields, Types, scope_slots};
pub(crate) use pages::{CHUNK_ALIGNMENT, Page, Pages};

use rustc_hash::FxHashMap;

use crate::core::Core;

/// Code objects start and end on this (`kCodeAlignment` on x64).
const CODE_ALIGNMENT: u64 = 64;

/// What the walk knows of one Map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MapFacts {
    pub(crate) instance_type: u16,
    /// Bytes, or 0 when the size varies.
    pub(crate) instance_size: u32,
    pub(crate) rule: Rule,
}

/// The heap of a core: its pages and how to read its objects.
pub(crate) struct Heap<'c, 'a> {
    pub(crate) core: &'c Core<'a>,
    pub(crate) pages: Pages,
    pub(crate) layout: Layout,
}

impl<'c, 'a> Heap<'c, 'a> {
    /// The facts of the Map that the tagged word `map` points to, `None` if it is not one:
    /// a Map lies on a heap page and its own map is a meta map.
    pub(crate) fn map_facts(&self, map: u64) -> Option<MapFacts> {
        let addr = untag(map)?;
        self.pages.page_of(addr)?;
        if !self.is_meta_map(self.core.read_u64(addr)?) {
            return None;
        }
        let l = &self.layout;
        let instance_type = self.core.read_u16(addr + l.map_instance_type)?;
        let instance_size = u32::from(self.core.read_u8(addr + l.map_instance_size)?) * 8;
        let rule = match l.variable_rule(instance_type) {
            Rule::Const(n) => Rule::Const(n),
            _ if instance_size != 0 => Rule::Fixed,
            rule => rule,
        };
        Some(MapFacts {
            instance_type,
            instance_size,
            rule,
        })
    }

    /// Whether the tagged word `meta` points to a meta map: a Map of `MAP_TYPE`, on a heap
    /// page, that is its own map.
    pub(crate) fn is_meta_map(&self, meta: u64) -> bool {
        untag(meta).is_some_and(|addr| {
            self.pages.page_of(addr).is_some()
                && self.core.read_u64(addr) == Some(meta)
                && self.core.read_u16(addr + self.layout.map_instance_type)
                    == Some(self.layout.map_type)
        })
    }

    /// The size of the object at offset `at` of `area` (bytes of a page's object area), by
    /// its Map's rule; `None` when a field it needs is absent or out of range.
    pub(crate) fn object_size(&self, area: &[u8], at: usize, facts: &MapFacts) -> Option<u64> {
        let bytes = |off: usize, n: usize| area.get(at + off..at + off + n);
        let word = |off: usize| Some(u64::from_le_bytes(bytes(off, 8)?.try_into().ok()?));
        let int = |off: usize| {
            let v = i32::from_le_bytes(bytes(off, 4)?.try_into().ok()?);
            u64::try_from(v).ok()
        };
        let smi_at = |off: usize| u64::try_from(smi(word(off)?)?).ok();
        let l = &self.layout;
        let size = match facts.rule {
            Rule::Fixed => u64::from(facts.instance_size),
            Rule::Const(n) => u64::from(n),
            Rule::Tagged { header } => u64::from(header) + smi_at(8)?.checked_mul(8)?,
            Rule::TaggedAt { header, length_at } => {
                u64::from(header) + smi_at(usize::from(length_at))?.checked_mul(8)?
            }
            Rule::Bytes { header } => (u64::from(header) + smi_at(8)?).next_multiple_of(8),
            Rule::SeqString { two_byte } => {
                let n = int(l.string_length as usize)?;
                (16 + if two_byte { 2 * n } else { n }).next_multiple_of(8)
            }
            Rule::FreeSpace { words } => smi_at(8)?.checked_mul(if words { 8 } else { 1 })?,
            Rule::Descriptors { header } => {
                let n = u16::from_le_bytes(bytes(8, 2)?.try_into().ok()?);
                u64::from(header) + 24 * u64::from(n)
            }
            Rule::PropertyArray => 16 + 8 * (smi_at(8)? & 1023),
            Rule::FeedbackVector { header } => u64::from(header) + 8 * int(8)?,
            Rule::FeedbackMetadata { closures } => {
                let slots = int(8)?;
                let extra = if closures { 2 * int(12)? } else { 0 };
                (16 + 4 * slots.div_ceil(6) + extra).next_multiple_of(8)
            }
            Rule::PreparseData => (16 + int(8)?).next_multiple_of(8) + 8 * int(12)?,
            Rule::BigInt => {
                let bits = u32::from_le_bytes(bytes(8, 4)?.try_into().ok()?);
                16 + 8 * u64::from(bits >> 1 & 0x3fff_ffff)
            }
            Rule::SwissNameDictionary => (40 + 18 * int(12)?).next_multiple_of(8),
            Rule::Pairs => 16 + 16 * u64::from(u32::from_le_bytes(bytes(8, 4)?.try_into().ok()?)),
            Rule::ScopeInfo => {
                let g = l.generation;
                let flags = if g >= Generation::V13 {
                    u64::from(u32::from_le_bytes(bytes(8, 4)?.try_into().ok()?))
                } else {
                    u64::try_from(smi(word(8)?)?).ok()?
                };
                let locals = smi_at(24)?;
                let slots = scope_slots(g, flags, locals)?;
                let mut count = slots.count;
                if let Some(at) = slots.module_variables {
                    count += 3 * smi_at(8 + 8 * usize::try_from(at).ok()?)?;
                }
                8 + 8 * count
            }
            Rule::InstructionStream { header } => {
                let body = if l.generation >= Generation::V12 {
                    int(24)?
                } else {
                    // V8 11 keeps the sizes in the Code object (instruction size, then
                    // metadata size, at +56).
                    let code = untag(word(8)?)?;
                    let sizes = self.core.read(code + 56, 8)?;
                    let n = |b: &[u8]| u64::try_from(i32::from_le_bytes(b.try_into().ok()?)).ok();
                    n(&sizes[..4])? + n(&sizes[4..])?
                };
                (u64::from(header) + body).next_multiple_of(CODE_ALIGNMENT)
            }
            Rule::Hole => 8 + (64 << 10),
            Rule::Unknown => return None,
        };
        Some(size)
    }

    /// The bytes of a page's object area that the core holds, in address order: one piece,
    /// or several when the area spans mappings (V8 14's read-only pages alternate readable
    /// and inaccessible 64 KiB) or the core lacks some of it.
    pub(crate) fn area(&self, page: &Page) -> Vec<(u64, &'a [u8])> {
        let mut pieces = Vec::new();
        let mut at = page.area_start;
        let segments = self.core.segments();
        while at < page.area_end {
            let i = segments.partition_point(|s| s.end() <= at);
            let Some(seg) = segments.get(i) else { break };
            let start = at.max(seg.vaddr);
            let end = seg.present_end().min(page.area_end);
            if start < end
                && let Some(bytes) = self.core.read(start, (end - start) as usize)
            {
                pieces.push((start, bytes));
            }
            at = seg.end();
        }
        pieces
    }

    /// Walks the objects of a page's area from `page.area_start` (its `pieces`, from
    /// [`Heap::area`]), calling `visit` with each object's address, its Map's facts and the
    /// caller's value `maps` gave for the Map, and its size; returns where and why it stopped,
    /// or `None` when it reached the end of the area.
    pub(crate) fn walk<S: Copy>(
        &self,
        page: &Page,
        pieces: &[(u64, &[u8])],
        maps: &mut impl FnMut(u64) -> Option<(MapFacts, S)>,
        mut visit: impl FnMut(u64, S, &MapFacts, u64),
    ) -> Option<(u64, Stop)> {
        let mut at = page.area_start;
        let mut i = 0;
        while at < page.area_end {
            while pieces
                .get(i)
                .is_some_and(|&(a, b)| a + b.len() as u64 <= at)
            {
                i += 1;
            }
            let Some(&(addr, bytes)) = pieces.get(i).filter(|&&(a, _)| a <= at) else {
                return Some((at, Stop::Absent));
            };
            let rest = &bytes[(at - addr) as usize..];
            let Some(map) = rest
                .get(..8)
                .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            else {
                return Some((at, Stop::Absent));
            };
            let Some((facts, slot)) = maps(map) else {
                return Some((at, Stop::NotAMap));
            };
            let size = match self.object_size(rest, 0, &facts) {
                Some(s) => s,
                None if facts.rule == Rule::Unknown => {
                    return Some((at, Stop::UnknownSize(facts.instance_type)));
                }
                None => return Some((at, Stop::BadSize(facts.instance_type))),
            };
            if size < 8 || size % 8 != 0 || size > page.area_end - at {
                return Some((at, Stop::BadSize(facts.instance_type)));
            }
            visit(at, slot, &facts, size);
            at += size;
        }
        None
    }
}

impl Heap<'_, '_> {
    /// The linear allocation areas that V8's bookkeeping in the core records: every
    /// `LinearAllocationArea` (`start`, `top`, `limit`, three words, V8 10 to 14) in writable
    /// memory outside the heap pages whose three addresses lie in one page's area, by page
    /// start, sorted by `top`. Between `top` and `limit` there are no objects yet.
    pub(crate) fn labs(&self) -> FxHashMap<u64, Vec<(u64, u64)>> {
        let mut labs: FxHashMap<u64, Vec<(u64, u64)>> = FxHashMap::default();
        let pages = &self.pages.pages;
        let (Some(first), Some(last)) = (pages.first(), pages.last()) else {
            return labs;
        };
        let (lo, hi) = (first.area_start, last.area_end);
        for seg in self
            .core
            .anonymous_segments()
            .filter(|s| s.flags.writable() && !s.flags.executable())
        {
            let bytes = self.core.segment_bytes(seg);
            // The parts of the segment outside every chunk.
            let mut from = seg.vaddr;
            let mut k = pages.partition_point(|p| p.area_end <= seg.vaddr);
            while from < seg.present_end() {
                let (gap_end, next) = match pages.get(k).filter(|p| p.start < seg.present_end()) {
                    Some(p) => (p.start.max(from), p.area_end.max(p.start + CHUNK_ALIGNMENT)),
                    None => (seg.present_end(), seg.present_end()),
                };
                let gap = &bytes[(from - seg.vaddr) as usize..(gap_end - seg.vaddr) as usize];
                self.labs_in(gap, lo, hi, &mut labs);
                from = next.max(gap_end);
                k += 1;
            }
        }
        for v in labs.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        labs
    }

    /// The allocation areas recorded in `gap`, memory outside the heap.
    fn labs_in(&self, gap: &[u8], lo: u64, hi: u64, labs: &mut FxHashMap<u64, Vec<(u64, u64)>>) {
        let n = gap.len() / 8;
        let w = |i: usize| u64::from_le_bytes(gap[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        for i in 1..n.saturating_sub(1) {
            let top = w(i);
            if top < lo || top > hi || top % 8 != 0 {
                continue;
            }
            let (start, limit) = (w(i - 1), w(i + 1));
            if start > top || top >= limit || limit - start > CHUNK_ALIGNMENT {
                continue;
            }
            if let Some(page) = self.pages.page_of(top)
                && start >= page.area_start
                && limit <= page.area_end
            {
                labs.entry(page.start).or_default().push((top, limit));
            }
        }
    }
}

/// Why the walk of a page stopped before the end of its area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The word is not a pointer to a valid Map.
    NotAMap,
    /// The size of an object of this instance type is not known.
    UnknownSize(u16),
    /// The object's size field is out of range, or the object runs past the area.
    BadSize(u16),
    /// The core lacks the bytes.
    Absent,
}

/// The address of a strong tagged pointer (`…01`), `None` for Smis and weak references.
pub(crate) fn untag(word: u64) -> Option<u64> {
    (word & 3 == 1 && word > 1).then(|| word - 1)
}

/// The value of a Smi (the upper 32 bits on x64 without pointer compression).
pub(crate) fn smi(word: u64) -> Option<i64> {
    (word as u32 == 0).then_some((word as i64) >> 32)
}
