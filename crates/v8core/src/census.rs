//! The object census of a core: how many objects of each class the V8 heap holds, and their
//! shallow size (what llnode's `findjsobjects` printed, done right).
//!
//! ```no_run
//! # fn main() -> v8core::Result<()> {
//! let file = v8core::CoreFile::open("core.1234")?;
//! let core = file.parse()?;
//! let node = v8core::NodeBinary::find(&core, None)?;
//! let meta = v8core::Metadata::load(&core, &node)?;
//! let census = v8core::census::census(&core, &meta, &|done, total| {
//!     eprint!("\r{} %", done * 100 / total.max(1));
//! })?;
//! for row in census.rows.iter().take(10) {
//!     println!("{:>10} {:>12} {}", row.count, row.size, row.name);
//! }
//! # Ok(()) }
//! ```
//!
//! # What is counted: object starts
//!
//! Each object once, where it is: at an object start on a V8 heap page. The core has no
//! list of V8's pages, so they are recognised: V8 allocates its heap in chunks aligned to
//! 256 KiB (regular pages, one chunk per large object, the read-only space), each starting
//! with a header that gives the bounds of its object area; every 256 KiB-aligned address of
//! the core's anonymous memory is tried against the header layouts of V8 11 to 14, and only
//! consistent headers count (area inside the chunk, chunk size a multiple of the OS page,
//! the isolate's `Heap*` shared with other chunks). In an area, objects follow each other
//! without gaps (free memory is covered by filler objects), so the walk goes from the area's
//! start, object by object: the word at an object start must point to a valid Map (an object
//! on a heap page whose own map is a meta map, a Map of `MAP_TYPE` that is its own map), and
//! the object's size follows from the Map and the object's length fields. A Map pointer
//! anywhere else (embedded in JIT code, a back pointer, a field) is never taken for an
//! object, and the census does not trace pointers: objects that nothing points to are counted
//! too.
//!
//! Not counted: free memory (free-space and filler objects), the scavenger's from-space
//! (stale copies), the unused part of V8's linear allocation areas (their bounds are read from
//! V8's bookkeeping in the core: a walk that stops at an area's `top` resumes at its `limit`),
//! and whatever follows where a walk had to stop (bytes the core lacks, an object whose size
//! this version cannot compute, a word that is not a Map where an object should start).
//! Memory after such a stop that is not just zeros (memory V8 has not used) is said in
//! [`Census::warnings`], with its size: the counts can then be too low, never too high.
//!
//! Unlike DevTools, whose snapshot collects garbage first, the census counts the unreachable
//! objects V8 has not collected yet: after an allocation burst its counts can be higher than a
//! snapshot's. Worker threads have heaps of their own, counted with the main thread's (a
//! warning says so).
//!
//! # Sizes
//!
//! An object's real size, as V8 computes it (`HeapObject::SizeFromMap`): the Map's instance
//! size for fixed-size objects (a JS object's in-object properties included; its
//! out-of-object properties and elements are arrays of their own, as in DevTools); strings,
//! arrays, code and the other variable-size objects from their length fields.
//!
//! # Names, and how they map to DevTools' Summary
//!
//! | objects | census | DevTools' Summary |
//! | --- | --- | --- |
//! | JS objects | their constructor's name (`Order`), with its script, line and column | the same, grouped by name and location alike |
//! | plain objects | `Object` | `Object`, or `{a, b, …}` when DevTools infers an interface from the property names |
//! | arrays | `Array` | `Array` |
//! | functions (closures, bound functions) | `Function` | `Function` |
//! | sequential, external, thin strings | `(string)` | `(string)` |
//! | cons strings | `(concatenated string)` | the same |
//! | sliced strings | `(sliced string)` | the same |
//! | heap numbers, symbols, BigInts | `(number)`, `(symbol)`, `(bigint)` | the same |
//! | machine code and bytecode (`Code`, `InstructionStream`, `BytecodeArray`) | `(compiled code)` | `(compiled code)`, which also holds SharedFunctionInfos, ScopeInfos, feedback vectors and other metadata of code |
//! | FixedArray, FixedDoubleArray, ByteArray, property arrays, hash tables | `(array)` | `(array)` |
//! | every other V8-internal object | `(system) <V8 class>` (`(system) SharedFunctionInfo`, `(system) Map`) | `(system)`, `(compiled code)` or `(object shape)` (Maps, descriptor arrays, transition arrays) |
//!
//! A JS object's constructor is found from its Map (the back pointers of the transition tree
//! lead to it); its name is the function's name, or, when it has none, the name V8 inferred
//! (`const Invoice = class {…}`), as DevTools' `SharedFunctionInfo::DebugName`. Class
//! constructors keep their name in their ScopeInfo, found by decoding the ScopeInfo's layout
//! for each V8 generation, not by guessing (see `names.rs`). As in DevTools, a prototype
//! object (`Order.prototype`) is not an instance of its constructor: it is named by its type
//! (`Object`) with its constructor's location. Where the constructor cannot be named (an
//! embedder's template, whose class name DevTools shows; a function without any name), the
//! census falls back on the V8 type's JS class (`Object`, `Error`, `Map`, …).
//!
//! Locations are 1-based (DevTools shows V8's 0-based line and column plus one). Positions in
//! Node's own modules are often unknown: their sources live in the node binary's read-only
//! data, which cores leave out, and V8 computes line ends only when asked.
//!
//! DevTools folds the size of an object's internal arrays into the object when it alone owns
//! them (a JS `Map`'s hash table, an `Array`'s elements), and from V8 13 counts an external
//! string's characters (outside the heap) in the string; the census shows each object's own
//! size on the heap. V8 14's holes reserve an inaccessible 64 KiB after their map word: they
//! count as the one word.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::heap::{Heap, Layout, MapFacts, Page, Pages, Rule, Stop};
use crate::metadata::Metadata;
use crate::names::{Class, Namer};

/// The census of a core: one row per class.
#[derive(Debug, Clone, Serialize)]
pub struct Census {
    /// Sorted by size, largest first (then by name).
    pub rows: Vec<ClassRow>,
    /// Objects over all rows.
    pub objects: u64,
    /// Bytes over all rows.
    pub bytes: u64,
    /// Bytes of the heap's pages that were walked: objects, free space and fillers.
    pub scanned_bytes: u64,
    /// What could not be read, and what that means for the numbers.
    pub warnings: Vec<String>,
}

/// The objects of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    /// The class name, as DevTools' Summary shows it where one corresponds (see the module
    /// documentation).
    pub name: String,
    /// Where the constructor is, when known.
    pub location: Option<Location>,
    pub count: u64,
    /// Shallow bytes: the objects' real sizes.
    pub size: u64,
}

/// A position in a script.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// The script's name: its path or URL (`node:internal/…` for Node's own).
    pub script: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
}

/// How one class changed between two censuses.
#[derive(Debug, Clone, Serialize)]
pub struct RowDiff {
    pub name: String,
    pub location: Option<Location>,
    /// Before, after.
    pub count: (u64, u64),
    /// Before, after (bytes).
    pub size: (u64, u64),
}

/// Counts the objects of the V8 heap in a core by class. `progress` is called with the bytes
/// walked so far and the bytes to walk, from any thread.
///
/// An error when the core holds no V8 heap page at all (or a V8 this version does not know);
/// anything less is counted as far as it can be, and said in [`Census::warnings`].
pub fn census(
    core: &Core<'_>,
    meta: &Metadata,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Census> {
    let layout = Layout::new(meta)?;
    let pages = Pages::find(core).ok_or_else(|| Error::Damaged {
        path: core.path().to_owned(),
        what: "no V8 heap page was found among its anonymous segments (the core leaves the \
               heap out, or the V8 that wrote it lays out its pages in a way this version does \
               not know)"
            .to_owned(),
    })?;
    let heap = Heap {
        core,
        pages,
        layout,
    };
    let labs = heap.labs();
    let total: u64 = heap.pages.pages.iter().map(Page::area_len).sum();
    let done = AtomicU64::new(0);
    let totals = heap
        .pages
        .pages
        .par_iter()
        .fold(Tally::default, |mut tally, page| {
            tally.page(
                &heap,
                page,
                labs.get(&page.start).map_or(&[], Vec::as_slice),
            );
            let len = page.area_len();
            progress(done.fetch_add(len, Ordering::Relaxed) + len, total);
            tally
        })
        .map(Totals::from)
        .reduce(Totals::default, Totals::merge);

    let mut namer = Namer::new(&heap, meta);
    let mut maps: Vec<(u64, MapTally)> = totals.maps.iter().map(|(&k, &v)| (k, v)).collect();
    // In address order: the names' caches fill the same way on every run.
    maps.sort_unstable_by_key(|&(map, _)| map);
    let mut by_class: FxHashMap<Class, (u64, u64)> = FxHashMap::default();
    for (map, m) in maps {
        if m.count == 0 || heap.layout.is_filler(m.facts.instance_type) {
            continue;
        }
        let e = by_class.entry(namer.class(map - 1, &m.facts)).or_default();
        e.0 += m.count;
        e.1 += m.bytes;
    }
    let mut rows: Vec<ClassRow> = by_class
        .into_iter()
        .map(|(class, (count, size))| ClassRow {
            name: class.name,
            location: class.location,
            count,
            size,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.size
            .cmp(&a.size)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.location.cmp(&b.location))
    });
    Ok(Census {
        objects: rows.iter().map(|r| r.count).sum(),
        bytes: rows.iter().map(|r| r.size).sum(),
        scanned_bytes: totals.scanned,
        warnings: warnings(&heap, meta, &totals),
        rows,
    })
}

/// The classes of two censuses of one process: every class in either, by count growth, then
/// by size growth, largest first.
pub fn diff(before: &Census, after: &Census) -> Vec<RowDiff> {
    let mut rows: FxHashMap<(&str, Option<&Location>), RowDiff> = FxHashMap::default();
    for (census, after) in [(before, false), (after, true)] {
        for r in &census.rows {
            let d = rows
                .entry((r.name.as_str(), r.location.as_ref()))
                .or_insert_with(|| RowDiff {
                    name: r.name.clone(),
                    location: r.location.clone(),
                    count: (0, 0),
                    size: (0, 0),
                });
            if after {
                d.count.1 += r.count;
                d.size.1 += r.size;
            } else {
                d.count.0 += r.count;
                d.size.0 += r.size;
            }
        }
    }
    let growth = |(a, b): (u64, u64)| i128::from(b) - i128::from(a);
    let mut rows: Vec<RowDiff> = rows.into_values().collect();
    rows.sort_by(|x, y| {
        growth(y.count)
            .cmp(&growth(x.count))
            .then_with(|| growth(y.size).cmp(&growth(x.size)))
            .then_with(|| x.name.cmp(&y.name))
            .then_with(|| x.location.cmp(&y.location))
    });
    rows
}

/// No object on a regular page is larger (`kMaxRegularHeapObjectSize`, half a page, V8 8 to
/// 14): a page that starts with a larger one is a large-object page.
const MAX_REGULAR_OBJECT: u64 = 128 << 10;

/// One Map's objects.
#[derive(Clone, Copy)]
struct MapTally {
    facts: MapFacts,
    count: u64,
    bytes: u64,
}

/// Where a page's walk stopped before the end of its area.
#[derive(Clone, Copy, Debug)]
struct PageStop {
    /// Bytes from where it stopped to the end of the area.
    left: u64,
    stop: Stop,
    /// Whether those bytes hold anything but zeros (as far as the core holds them): zeros
    /// are memory V8 has not used yet.
    nonzero: bool,
}

/// What one worker counted, with its own cache of Maps: no locks, no allocation per object.
#[derive(Default)]
struct Tally {
    /// Slots by map word; `u32::MAX` for words that are not Maps.
    index: FxHashMap<u64, u32>,
    /// Each slot's map word and facts.
    facts: Vec<(u64, MapFacts)>,
    /// Each slot's objects and bytes.
    counts: Vec<(u64, u64)>,
    scanned: u64,
    absent: u64,
    stops: Vec<PageStop>,
}

impl Tally {
    /// Walks one page, resuming at the limit of each allocation area whose top it stops at.
    fn page(&mut self, heap: &Heap<'_, '_>, page: &Page, labs: &[(u64, u64)]) {
        let pieces = heap.area(page);
        let present: u64 = pieces.iter().map(|(_, b)| b.len() as u64).sum();
        self.absent += page.area_len().saturating_sub(present);
        let mut part = *page;
        let mut last = (0u64, None::<(MapFacts, u32)>);
        loop {
            let (index, facts) = (&mut self.index, &mut self.facts);
            // Consecutive objects often share their Map: the last answer is kept.
            let mut lookup = |word: u64| -> Option<(MapFacts, u32)> {
                if word == last.0 {
                    return last.1;
                }
                let found = match index.get(&word) {
                    Some(&u32::MAX) => None,
                    Some(&slot) => Some((facts[slot as usize].1, slot)),
                    None => {
                        let found = heap.map_facts(word).map(|f| {
                            facts.push((word, f));
                            (f, facts.len() as u32 - 1)
                        });
                        index.insert(word, found.map_or(u32::MAX, |(_, slot)| slot));
                        found
                    }
                };
                last = (word, found);
                found
            };
            let (counts, scanned) = (&mut self.counts, &mut self.scanned);
            let mut first = 0;
            let stop = heap.walk(&part, &pieces, &mut lookup, |at, slot, facts, size| {
                if at == page.area_start {
                    first = size;
                }
                *scanned += size;
                let slot = slot as usize;
                if slot >= counts.len() {
                    counts.resize(slot + 1, (0, 0));
                }
                counts[slot].0 += 1;
                // V8 14's holes reserve an inaccessible 64 KiB after their map word, to trap
                // reads: not memory in use.
                counts[slot].1 += if facts.rule == Rule::Hole { 8 } else { size };
            });
            let Some((at, stop)) = stop else { break };
            if let Some(&(_, limit)) = labs.iter().find(|&&(top, _)| top == at) {
                part.area_start = limit;
                continue;
            }
            if first > MAX_REGULAR_OBJECT {
                // A large-object page holds one object; when V8 shrank it (a string cut to
                // its length), the page keeps the old bytes after it until the next GC.
                break;
            }
            let nonzero = pieces.iter().any(|&(a, b)| {
                let from = at.max(a) - a;
                b.get(from as usize..)
                    .is_some_and(|rest| rest.iter().any(|&x| x != 0))
            });
            self.stops.push(PageStop {
                left: page.area_end - at,
                stop,
                nonzero,
            });
            break;
        }
    }
}

/// The workers' tallies, by map word.
#[derive(Default)]
struct Totals {
    maps: FxHashMap<u64, MapTally>,
    scanned: u64,
    absent: u64,
    stops: Vec<PageStop>,
}

impl From<Tally> for Totals {
    fn from(t: Tally) -> Totals {
        let mut maps = FxHashMap::default();
        for (slot, (map, facts)) in t.facts.into_iter().enumerate() {
            let (count, bytes) = t.counts.get(slot).copied().unwrap_or((0, 0));
            maps.insert(
                map,
                MapTally {
                    facts,
                    count,
                    bytes,
                },
            );
        }
        Totals {
            maps,
            scanned: t.scanned,
            absent: t.absent,
            stops: t.stops,
        }
    }
}

impl Totals {
    fn merge(mut self, other: Totals) -> Totals {
        self.scanned += other.scanned;
        self.absent += other.absent;
        self.stops.extend(other.stops);
        for (map, m) in other.maps {
            let e = self.maps.entry(map).or_insert(MapTally {
                count: 0,
                bytes: 0,
                ..m
            });
            e.count += m.count;
            e.bytes += m.bytes;
        }
        self
    }
}

/// What could not be counted, and what that means for the numbers.
fn warnings(heap: &Heap<'_, '_>, meta: &Metadata, totals: &Totals) -> Vec<String> {
    let mut w = Vec::new();
    let kib = |b: u64| b.div_ceil(1024);
    if totals.absent > 0 {
        w.push(format!(
            "{} KiB of the heap's pages are not in the core (the kernel's coredump_filter left \
             them out): objects there are not counted, and counts can be too low",
            kib(totals.absent)
        ));
    }
    let type_name = |t: u16| match meta.instance_type_name(t) {
        Some(name) => format!("{name} ({t})"),
        None => format!("instance type {t}"),
    };
    let mut lost: FxHashMap<String, (usize, u64)> = FxHashMap::default();
    for s in totals.stops.iter().filter(|s| s.nonzero) {
        let why = match s.stop {
            Stop::NotAMap => "a word that is not a Map where an object should start (an \
                              allocation area whose bounds the core does not record, or \
                              damage)"
                .to_owned(),
            Stop::UnknownSize(t) => format!(
                "an object of {} whose size this version cannot compute",
                type_name(t)
            ),
            Stop::BadSize(t) => format!("an object of {} with an impossible size", type_name(t)),
            Stop::Absent => "bytes the core lacks".to_owned(),
        };
        let e = lost.entry(why).or_default();
        e.0 += 1;
        e.1 += s.left;
    }
    let mut lost: Vec<_> = lost.into_iter().collect();
    lost.sort();
    for (why, (pages, bytes)) in lost {
        w.push(format!(
            "the walk of {pages} page(s) stopped at {why}: the {} KiB after it are not \
             counted, and counts can be too low",
            kib(bytes)
        ));
    }
    if heap.pages.heaps > 1 {
        w.push(format!(
            "the core holds {} V8 heaps (worker threads have their own): their objects are \
             counted together",
            heap.pages.heaps
        ));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(rows: &[(&str, u64, u64)]) -> Census {
        let rows: Vec<ClassRow> = rows
            .iter()
            .map(|&(name, count, size)| ClassRow {
                name: name.to_owned(),
                location: None,
                count,
                size,
            })
            .collect();
        Census {
            objects: rows.iter().map(|r| r.count).sum(),
            bytes: rows.iter().map(|r| r.size).sum(),
            scanned_bytes: 0,
            warnings: Vec::new(),
            rows,
        }
    }

    /// Name, counts before and after, sizes before and after.
    type Growth = (String, (u64, u64), (u64, u64));

    #[test]
    fn diff_orders_by_count_then_size_growth_and_keeps_every_class() {
        let before = census(&[("Order", 100, 5600), ("Gone", 5, 40), ("Same", 7, 70)]);
        let after = census(&[
            ("Order", 150, 8400),
            ("New", 50, 100),
            ("Same", 7, 70),
            ("Bigger", 0, 0),
        ]);
        let rows: Vec<Growth> = diff(&before, &after)
            .into_iter()
            .map(|d| (d.name, d.count, d.size))
            .collect();
        let want = [
            ("Order", (100, 150), (5600, 8400)),
            ("New", (0, 50), (0, 100)),
            ("Bigger", (0, 0), (0, 0)),
            ("Same", (7, 7), (70, 70)),
            ("Gone", (5, 0), (40, 0)),
        ];
        let want: Vec<Growth> = want.iter().map(|&(n, c, s)| (n.to_owned(), c, s)).collect();
        assert_eq!(rows, want);
    }
}
