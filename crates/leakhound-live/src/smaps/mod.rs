//! `/proc/PID/smaps`: every mapping of a process with its resident memory, classified by the
//! allocator that made it, so that V8's heap can be told apart from malloc's memory from outside
//! the process, without attaching.
//!
//! [`parse`] reads the text into [`Region`]s, [`classify`] gives each a [`Kind`], [`breakdown`]
//! sums them into a [`Breakdown`], and [`groups`] and [`diff`] make the `pmap`-like view of
//! `leakhound maps`.
//!
//! # Classification
//!
//! A region is *anonymous* when its inode is 0 and it has no path or an `[anon:NAME]` one
//! (named with `prctl(PR_SET_VMA_ANON_NAME)`). The first rule that matches wins:
//!
//! | rule | [`Kind`] | [`Component`] |
//! |---|---|---|
//! | `[heap]` (the brk heap) | [`Kind::MallocMainArena`] | `malloc_heap` |
//! | `[stack]` / `[stack:TID]` (kernels before 4.5 named thread stacks so) | [`Kind::MainStack`] / [`Kind::ThreadStack`] | `stacks` |
//! | any other `[NAME]` that is not `[anon:…]`: `[vdso]`, `[vvar]`, `[vvar_vclock]`, `[vsyscall]`, `[uprobes]` | [`Kind::Special`] | `file_backed` (kernel-provided code and data, a few pages) |
//! | inode ≠ 0 or a path not in brackets (files, `/dev/zero (deleted)`, `/memfd:…`) | [`Kind::File`] | `file_backed` |
//! | anonymous with VmFlag `dc` | [`Kind::V8Heap`] | `v8_heap` |
//! | `[anon: glibc: malloc arena]`, `[anon: glibc: pthread stack: TID]` (glibc ≥ 2.39 names its mappings so with `GLIBC_TUNABLES=glibc.mem.decorate_maps=1`) | [`Kind::MallocThreadArena`], [`Kind::ThreadStack`] | `malloc_heap`, `stacks` |
//! | anonymous, `nr`, no `dc`, in a run of adjacent such regions that starts 64 MiB-aligned and spans exactly 64 MiB | [`Kind::MallocThreadArena`] | `malloc_heap` |
//! | anonymous with `nh` | [`Kind::ThreadStack`] | `stacks` |
//! | only if no anonymous region has `dc`: anonymous, unnamed, 256 KiB-aligned below 2^46, not right after a file mapping | [`Kind::V8Heap`] | `v8_heap` |
//! | anonymous `rw-p` right after an anonymous `---p` guard of at most 64 KiB (and that guard) | [`Kind::ThreadStack`] | `stacks` |
//! | any other anonymous region | [`Kind::Anon`] | `other_anon` |
//!
//! Why these work, on Linux x86-64 with glibc (reference §4.4, checked against the fixtures in
//! `tests/smaps/`):
//!
//! - **V8** marks every mapping it makes `MADV_DONTFORK` (`dc`) in official Linux builds of Node
//!   (`V8_ENABLE_PRIVATE_MAPPING_FORK_OPTIMIZATION`). Σ Rss of those matches
//!   `v8.getHeapStatistics().total_physical_size` within 2 % for a 100 MB heap, and within
//!   0.8 MiB for small ones (V8 counts part of its committed but untouched pages as physical).
//! - **glibc's thread arenas** are 64 MiB heaps reserved `MAP_NORESERVE` (`nr`) at 64 MiB-aligned
//!   addresses: an `rw-p` head followed by the `---p` rest, which has no Rss. V8's pages are `nr`
//!   too, but have `dc`, and sit one per region at random addresses: a run of them would
//!   hardly cover exactly 64 MiB from an aligned start.
//! - **Thread stacks** are `MAP_STACK` mappings, which kernels since 6.7 mark `nh`
//!   (`VM_NOHUGEPAGE`); older kernels do not, hence the guard-page rule: glibc puts a `---p`
//!   guard page just below each thread stack.
//! - Everything else anonymous is malloc's mmapped chunks (allocations above the mmap threshold,
//!   such as Buffers of 128 KiB and more; adjacent ones merge into one region), the `.bss` of the
//!   binary and libraries, and what addons map.
//!
//! # Without `dc`
//!
//! The `dc` marking depends on how Node was built (distribution or self-built Node, Electron may
//! differ). When no anonymous region has it, V8's pages are recognised by where they are
//! instead: V8 maps its 256 KiB pages (and large-object pages) 256 KiB-aligned at random hint
//! addresses below 2^46, while the kernel places everything else (malloc's chunks, arenas,
//! stacks, libraries) top-down from just below the stack, far above 2^46. What lies low besides
//! is the executable, its `.bss` (an anonymous region right after its file mapping, hence that
//! exclusion) and `[heap]`. This fallback misses
//! V8's code range, which the kernel places (a few dozen KiB of Rss), and pages whose hint the
//! kernel refused; on the fixtures it finds over 98 % of what `dc` finds.
//!
//! # Cost
//!
//! The kernel takes 8–30 ms to produce the smaps of a process with 800 MB resident (2 200
//! regions, 1.6 MB of text), holding the target's mmap lock for read meanwhile, which stalls
//! its GC and malloc: read it every several seconds at most, not every second. [`parse`] takes
//! about 1.5 ms of that text (release build, 2 vCPUs): one pass over the lines, allocating only
//! the vector of regions and one `String` per path; [`classify`] and [`groups`] take well under
//! 0.1 ms.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::memory::{Breakdown, Component};
use crate::procfs::Process;

/// One mapping (VMA) of `/proc/PID/smaps`. Memory figures are in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `rw-p` and friends.
    pub perms: Perms,
    /// Offset in the mapped file (0 for anonymous memory).
    pub offset: u64,
    /// Inode of the mapped file; 0 for anonymous memory and the kernel's special mappings.
    pub inode: u64,
    /// As the kernel prints it: empty for anonymous memory, a file path (which may hold spaces
    /// and end in ` (deleted)`), or a name in brackets (`[heap]`, `[stack]`, `[anon:NAME]`).
    pub path: String,
    /// Virtual size (`Size`); `end - start` when the line is missing.
    pub size: u64,
    /// Resident (`Rss`).
    pub rss: u64,
    /// Proportional share of the resident pages (`Pss`).
    pub pss: u64,
    /// Resident pages only this process has written to (`Private_Dirty`).
    pub private_dirty: u64,
    /// Resident anonymous pages (`Anonymous`), including copy-on-write copies of file pages.
    pub anonymous: u64,
    /// Swapped out (`Swap`).
    pub swap: u64,
    /// `VmFlags`; empty when the line is missing (kernels before 3.8).
    pub flags: VmFlags,
}

impl Region {
    /// Anonymous memory: no file (inode 0) and no path, or an `[anon:NAME]` one.
    pub fn is_anonymous(&self) -> bool {
        self.inode == 0 && (self.path.is_empty() || self.path.starts_with("[anon:"))
    }
}

/// The permissions of a mapping, as in `rw-p`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// `r`.
    pub read: bool,
    /// `w`.
    pub write: bool,
    /// `x`.
    pub exec: bool,
    /// `s` (shared) rather than `p` (private, copy-on-write).
    pub shared: bool,
}

impl Perms {
    /// `rw-p`: what stacks, heaps and V8's committed pages are.
    pub const RW_PRIVATE: Perms = Perms {
        read: true,
        write: true,
        exec: false,
        shared: false,
    };
    /// `---p`: reserved, not accessible (guard pages, the unused rest of a reservation).
    pub const NONE_PRIVATE: Perms = Perms {
        read: false,
        write: false,
        exec: false,
        shared: false,
    };

    /// Parses the four characters of the header; `None` if it is anything else.
    fn parse(s: &str) -> Option<Perms> {
        let &[r, w, x, s] = s.as_bytes() else {
            return None;
        };
        let flag = |c: u8, yes: u8| match c {
            b'-' => Some(false),
            c if c == yes => Some(true),
            _ => None,
        };
        Some(Perms {
            read: flag(r, b'r')?,
            write: flag(w, b'w')?,
            exec: flag(x, b'x')?,
            shared: match s {
                b's' => true,
                b'p' => false,
                _ => return None,
            },
        })
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

/// The `VmFlags` of a mapping that tell allocators apart, as a bitset; other flags are dropped.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VmFlags(u32);

impl VmFlags {
    /// `rd`: readable.
    pub const READ: VmFlags = VmFlags(1 << 0);
    /// `wr`: writable.
    pub const WRITE: VmFlags = VmFlags(1 << 1);
    /// `ex`: executable.
    pub const EXEC: VmFlags = VmFlags(1 << 2);
    /// `sh`: shared.
    pub const SHARED: VmFlags = VmFlags(1 << 3);
    /// `gd`: grows down (the main stack).
    pub const GROWSDOWN: VmFlags = VmFlags(1 << 4);
    /// `pf`: pure PFN range (`[vvar]`).
    pub const PFNMAP: VmFlags = VmFlags(1 << 5);
    /// `lo`: locked in memory (`mlock`).
    pub const LOCKED: VmFlags = VmFlags(1 << 6);
    /// `io`: memory-mapped I/O.
    pub const IO: VmFlags = VmFlags(1 << 7);
    /// `dc`: not copied on fork (`MADV_DONTFORK`); V8 marks all its pages so.
    pub const DONTCOPY: VmFlags = VmFlags(1 << 8);
    /// `de`: cannot be expanded with `mremap`.
    pub const DONTEXPAND: VmFlags = VmFlags(1 << 9);
    /// `ac`: counted against the commit limit.
    pub const ACCOUNT: VmFlags = VmFlags(1 << 10);
    /// `nr`: no swap space reserved (`MAP_NORESERVE`): V8's pages and glibc's thread arenas.
    pub const NORESERVE: VmFlags = VmFlags(1 << 11);
    /// `hg`: `MADV_HUGEPAGE`.
    pub const HUGEPAGE: VmFlags = VmFlags(1 << 12);
    /// `nh`: `MADV_NOHUGEPAGE`, which kernels since 6.7 give every `MAP_STACK` mapping.
    pub const NOHUGEPAGE: VmFlags = VmFlags(1 << 13);
    /// `mg`: `MADV_MERGEABLE` (KSM).
    pub const MERGEABLE: VmFlags = VmFlags(1 << 14);
    /// `dd`: left out of core dumps (`MADV_DONTDUMP`).
    pub const DONTDUMP: VmFlags = VmFlags(1 << 15);

    const CODES: [(&'static [u8; 2], VmFlags); 16] = [
        (b"rd", VmFlags::READ),
        (b"wr", VmFlags::WRITE),
        (b"ex", VmFlags::EXEC),
        (b"sh", VmFlags::SHARED),
        (b"gd", VmFlags::GROWSDOWN),
        (b"pf", VmFlags::PFNMAP),
        (b"lo", VmFlags::LOCKED),
        (b"io", VmFlags::IO),
        (b"dc", VmFlags::DONTCOPY),
        (b"de", VmFlags::DONTEXPAND),
        (b"ac", VmFlags::ACCOUNT),
        (b"nr", VmFlags::NORESERVE),
        (b"hg", VmFlags::HUGEPAGE),
        (b"nh", VmFlags::NOHUGEPAGE),
        (b"mg", VmFlags::MERGEABLE),
        (b"dd", VmFlags::DONTDUMP),
    ];

    /// No flags.
    pub const fn empty() -> VmFlags {
        VmFlags(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parses the value of a `VmFlags:` line (`rd wr mr mw me dc nr`); unknown codes are
    /// dropped.
    pub fn parse(text: &str) -> VmFlags {
        let mut bits = 0;
        for code in text.split_ascii_whitespace() {
            if let Some((_, flag)) = VmFlags::CODES
                .iter()
                .find(|(c, _)| c[..] == *code.as_bytes())
            {
                bits |= flag.0;
            }
        }
        VmFlags(bits)
    }
}

impl std::ops::BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for VmFlags {
    /// The kept flags in the kernel's order and spelling: `rd wr dc nr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (code, flag) in VmFlags::CODES {
            if self.contains(flag) {
                f.write_str(sep)?;
                f.write_str(std::str::from_utf8(code).map_err(|_| fmt::Error)?)?;
                sep = " ";
            }
        }
        Ok(())
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmFlags({self})")
    }
}

/// What made a region; finer than [`Component`], which [`Kind::component`] maps it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// V8's heap pages, code range and reservations.
    V8Heap,
    /// glibc's brk heap, `[heap]`.
    MallocMainArena,
    /// glibc's per-thread arenas.
    MallocThreadArena,
    /// `[stack]`.
    MainStack,
    /// Thread stacks and their guard pages.
    ThreadStack,
    /// Other anonymous memory: malloc's mmapped chunks (large Buffers), `.bss`, addons.
    Anon,
    /// A mapped file.
    File,
    /// A mapping the kernel provides: `[vdso]`, `[vvar]`, `[vsyscall]`.
    Special,
}

impl Kind {
    /// The component of a [`Breakdown`] this kind counts in.
    pub fn component(self) -> Component {
        match self {
            Kind::V8Heap => Component::V8Heap,
            Kind::MallocMainArena | Kind::MallocThreadArena => Component::MallocHeap,
            Kind::MainStack | Kind::ThreadStack => Component::Stacks,
            Kind::Anon => Component::OtherAnon,
            Kind::File | Kind::Special => Component::FileBacked,
        }
    }
}

/// Reads and parses `/proc/PID/smaps`.
///
/// An exited process gives [`Error::NoSuchProcess`]; another user's gives
/// [`Error::PermissionDenied`] (reading smaps needs ptrace access to the process).
pub fn read(process: &Process) -> Result<Vec<Region>, Error> {
    let bytes = fs::read(process.path("smaps")).map_err(|e| io_error(process, e))?;
    // File names need not be UTF-8; only those are affected by the lossy conversion.
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok(parse(&text))
}

/// Parses the text of `/proc/PID/smaps`.
///
/// Never fails: unknown fields, lines without a colon and garbage are skipped; a header line
/// that cannot be read drops the fields below it until the next good header, so they are not
/// credited to the region above; a region cut short keeps what it has (its `size` from the
/// header, zeros for the rest).
pub fn parse(text: &str) -> Vec<Region> {
    // A region takes about 800 bytes of text on kernel 6.x.
    let mut regions = Vec::with_capacity(text.len() / 700 + 1);
    // Whether the lines we see belong to `regions.last()`.
    let mut in_region = false;
    for line in text.lines() {
        let bytes = line.as_bytes();
        // Headers start with a lowercase hex address; field names start with a capital letter.
        if let Some(b'0'..=b'9' | b'a'..=b'f') = bytes.first() {
            if let Some(region) = parse_header(line) {
                regions.push(region);
                in_region = true;
            } else if looks_like_header(bytes) {
                in_region = false;
            }
            continue;
        }
        let Some(region) = regions.last_mut().filter(|_| in_region) else {
            continue;
        };
        // Dispatching on the first letter skips most of the fields we do not keep (and lines
        // without a colon) without looking for the colon.
        let (slot, value) = match bytes.first() {
            Some(b'S') => match (field(line, "Size"), field(line, "Swap")) {
                (Some(v), _) => (&mut region.size, v),
                (_, Some(v)) => (&mut region.swap, v),
                _ => continue,
            },
            Some(b'R') => match field(line, "Rss") {
                Some(v) => (&mut region.rss, v),
                None => continue,
            },
            Some(b'P') => match (field(line, "Pss"), field(line, "Private_Dirty")) {
                (Some(v), _) => (&mut region.pss, v),
                (_, Some(v)) => (&mut region.private_dirty, v),
                _ => continue,
            },
            Some(b'A') => match field(line, "Anonymous") {
                Some(v) => (&mut region.anonymous, v),
                None => continue,
            },
            Some(b'V') => {
                if let Some(v) = field(line, "VmFlags") {
                    region.flags = VmFlags::parse(v);
                }
                continue;
            }
            _ => continue,
        };
        *slot = kib(value);
    }
    regions
}

/// The [`Kind`] of each region, in the same order; see the module documentation for the rules.
///
/// `regions` must be in address order, as the kernel prints them: arenas and stacks are
/// recognised by their neighbours.
pub fn classify(regions: &[Region]) -> Vec<Kind> {
    let v8_marks = regions
        .iter()
        .any(|r| r.is_anonymous() && r.flags.contains(VmFlags::DONTCOPY));
    let mut kinds = Vec::with_capacity(regions.len());
    // End of the glibc thread heap the current region is in, if any.
    let mut arena_end = 0;
    for (i, r) in regions.iter().enumerate() {
        if is_arena_part(r) && aligned(r.start, ARENA_SIZE) {
            arena_end = arena_span_end(&regions[i..]).unwrap_or(arena_end);
        }
        let prev = i.checked_sub(1).and_then(|p| regions.get(p));
        let next = regions.get(i + 1);
        kinds.push(classify_one(r, prev, next, v8_marks, arena_end));
    }
    kinds
}

/// Resident memory (Σ `Rss`) by component.
pub fn breakdown(regions: &[Region]) -> Breakdown {
    let mut b = Breakdown::default();
    for (r, kind) in regions.iter().zip(classify(regions)) {
        *b.get_mut(kind.component()) += r.rss;
    }
    b
}

/// The regions of one kind (or of one file) together, as `leakhound maps` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `V8 heap`, `[heap] (malloc main arena)`, `malloc thread arenas`, `thread stacks`,
    /// `[stack]`, `anonymous (other)`, `[anon:NAME]`, `[vdso]`…, or the path of a mapped file.
    pub name: String,
    /// Where the group counts in a [`Breakdown`].
    pub component: Component,
    /// How many regions (VMAs) it holds.
    pub regions: u32,
    /// Virtual size, bytes.
    pub size: u64,
    /// Resident, bytes.
    pub rss: u64,
    /// Resident and written by this process only, bytes.
    pub private_dirty: u64,
    /// Swapped out, bytes.
    pub swap: u64,
}

/// The regions grouped by [`Kind`], and file mappings by path (all mappings of a file
/// together), largest `rss` first (then by name, so equal groups keep a stable order).
pub fn groups(regions: &[Region]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (r, kind) in regions.iter().zip(classify(regions)) {
        let name = group_name(r, kind);
        let i = *index.entry(name).or_insert_with(|| {
            out.push(Group {
                name: name.to_owned(),
                component: kind.component(),
                regions: 0,
                size: 0,
                rss: 0,
                private_dirty: 0,
                swap: 0,
            });
            out.len() - 1
        });
        let g = &mut out[i];
        g.regions += 1;
        g.size += r.size;
        g.rss += r.rss;
        g.private_dirty += r.private_dirty;
        g.swap += r.swap;
    }
    out.sort_by(|a, b| b.rss.cmp(&a.rss).then_with(|| a.name.cmp(&b.name)));
    out
}

/// The grouped mappings of one process at one time: what `leakhound maps` prints or saves, and
/// what [`diff`] compares.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapsSample {
    /// The process.
    pub pid: u32,
    /// When smaps was read, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// As [`groups`] makes them.
    pub groups: Vec<Group>,
}

impl MapsSample {
    /// Reads the smaps of `process` now and groups it.
    pub fn read(process: &Process) -> Result<MapsSample, Error> {
        Ok(MapsSample::of(process.pid, &read(process)?))
    }

    /// The sample of `regions`, read just now from process `pid`.
    pub fn of(pid: u32, regions: &[Region]) -> MapsSample {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        MapsSample {
            pid,
            unix_ms,
            groups: groups(regions),
        }
    }
}

/// How a group's resident memory changed between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In both, with more `rss` after.
    Grew,
    /// In both, with less `rss` after.
    Shrank,
    /// Only in the later sample.
    Appeared,
    /// Only in the earlier sample.
    Vanished,
    /// In both, with the same `rss` (its size or dirty pages may still differ).
    Same,
}

/// One group's change between two [`MapsSample`]s.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The group's name.
    pub name: String,
    /// The group's component (as in the later sample when it is in both).
    pub component: Component,
    /// Judged by `rss` alone.
    pub status: Status,
    /// Resident before, bytes (0 when it appeared).
    pub rss_before: u64,
    /// Resident after, bytes (0 when it vanished).
    pub rss_after: u64,
    /// `rss_after - rss_before`.
    pub rss_delta: i64,
    /// Change of virtual size, bytes.
    pub size_delta: i64,
    /// Change of private dirty memory, bytes.
    pub private_dirty_delta: i64,
}

/// What changed from `before` to `after`, groups matched by name.
///
/// Order: growth first (groups that grew or appeared, largest `rss_delta` first), then losses
/// (groups that shrank or vanished, largest loss first), then the groups whose `rss` stayed the
/// same (largest first). The unchanged groups are kept so that a table can show every group and
/// the deltas add up to the change of the total; callers that want only changes filter on
/// [`Status::Same`].
pub fn diff(before: &MapsSample, after: &MapsSample) -> Vec<Change> {
    let earlier: HashMap<&str, &Group> =
        before.groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let mut changes = Vec::with_capacity(after.groups.len() + 8);
    let mut matched = 0;
    for a in &after.groups {
        let b = earlier.get(a.name.as_str()).copied();
        matched += usize::from(b.is_some());
        changes.push(change(b, Some(a)));
    }
    if matched < before.groups.len() {
        let later: HashSet<&str> = after.groups.iter().map(|g| g.name.as_str()).collect();
        for b in &before.groups {
            if !later.contains(b.name.as_str()) {
                changes.push(change(Some(b), None));
            }
        }
    }
    changes.sort_by(|x, y| {
        order_key(x)
            .cmp(&order_key(y))
            .then_with(|| x.name.cmp(&y.name))
    });
    changes
}

/// A glibc thread heap: `HEAP_MAX_SIZE`, twice the largest mmap threshold (32 MiB) on 64-bit.
const ARENA_SIZE: u64 = 64 << 20;
/// V8's page size and alignment.
const V8_PAGE: u64 = 256 << 10;
/// V8 picks random hint addresses below this (`GetRandomMmapAddr` on x64); the kernel places
/// its own choices top-down from below the stack, near 2^47.
const V8_HINT_LIMIT: u64 = 1 << 46;
/// Names glibc 2.39+ gives its mappings with the tunable `glibc.mem.decorate_maps=1`. It names
/// only the part of an arena mapped first, so the arena rule still finds the rest.
const GLIBC_ARENA: &str = "[anon: glibc: malloc arena]";
const GLIBC_STACK: &str = "[anon: glibc: pthread stack:";
const GLIBC_USER_STACK: &str = "[anon: glibc: pthread user stack:";
/// The largest thread stack guard the guard-page rule accepts (glibc's default is one page).
const MAX_GUARD: u64 = 64 << 10;

fn classify_one(
    r: &Region,
    prev: Option<&Region>,
    next: Option<&Region>,
    v8_marks: bool,
    arena_end: u64,
) -> Kind {
    match r.path.as_str() {
        "[heap]" => return Kind::MallocMainArena,
        "[stack]" => return Kind::MainStack,
        p if p.starts_with("[stack:") => return Kind::ThreadStack,
        _ => {}
    }
    if !r.is_anonymous() {
        return if r.inode == 0 && r.path.starts_with('[') {
            Kind::Special
        } else {
            Kind::File
        };
    }
    if r.flags.contains(VmFlags::DONTCOPY) {
        return Kind::V8Heap;
    }
    if r.path == GLIBC_ARENA {
        return Kind::MallocThreadArena;
    }
    if is_glibc_stack(r) {
        return Kind::ThreadStack;
    }
    if r.start < arena_end && is_arena_part(r) {
        return Kind::MallocThreadArena;
    }
    if r.flags.contains(VmFlags::NOHUGEPAGE) {
        return Kind::ThreadStack;
    }
    if !v8_marks
        && r.path.is_empty()
        && aligned(r.start, V8_PAGE)
        && r.start < V8_HINT_LIMIT
        && prev.is_none_or(|p| p.end != r.start || p.is_anonymous())
    {
        return Kind::V8Heap;
    }
    let guarded = |guard: &Region, stack: &Region| {
        guard.end == stack.start
            && is_plain_anon(guard)
            && (is_plain_anon(stack) || is_glibc_stack(stack))
            && guard.perms == Perms::NONE_PRIVATE
            && guard.size <= MAX_GUARD
            && stack.perms == Perms::RW_PRIVATE
    };
    if prev.is_some_and(|p| guarded(p, r)) || next.is_some_and(|n| guarded(r, n)) {
        return Kind::ThreadStack;
    }
    Kind::Anon
}

/// Could be part of a glibc thread heap: anonymous, `nr`, not V8's.
fn is_arena_part(r: &Region) -> bool {
    (r.path.is_empty() || r.path == GLIBC_ARENA)
        && r.inode == 0
        && r.flags.contains(VmFlags::NORESERVE)
        && !r.flags.contains(VmFlags::DONTCOPY)
}

/// A thread stack glibc named (without its guard page).
fn is_glibc_stack(r: &Region) -> bool {
    r.path.starts_with(GLIBC_STACK) || r.path.starts_with(GLIBC_USER_STACK)
}

/// Anonymous, unnamed, and neither V8's nor reserved like an arena.
fn is_plain_anon(r: &Region) -> bool {
    r.path.is_empty()
        && r.inode == 0
        && !r.flags.contains(VmFlags::DONTCOPY)
        && !r.flags.contains(VmFlags::NORESERVE)
}

/// If `regions[0]` starts a glibc thread heap (adjacent arena-like regions covering exactly
/// [`ARENA_SIZE`] from its aligned start), the end of that heap.
fn arena_span_end(regions: &[Region]) -> Option<u64> {
    let start = regions.first()?.start;
    let want = start.checked_add(ARENA_SIZE)?;
    let mut end = start;
    for r in regions {
        if r.start != end || r.end > want || !is_arena_part(r) {
            return None;
        }
        end = r.end;
        if end == want {
            return Some(want);
        }
    }
    None
}

fn group_name(r: &Region, kind: Kind) -> &str {
    match kind {
        Kind::V8Heap => "V8 heap",
        Kind::MallocMainArena => "[heap] (malloc main arena)",
        Kind::MallocThreadArena => "malloc thread arenas",
        Kind::MainStack => "[stack]",
        Kind::ThreadStack => "thread stacks",
        Kind::Anon if r.path.is_empty() => "anonymous (other)",
        Kind::Anon | Kind::File | Kind::Special => &r.path,
    }
}

fn change(before: Option<&Group>, after: Option<&Group>) -> Change {
    let field = |g: Option<&Group>, f: fn(&Group) -> u64| g.map_or(0, f);
    let (rss_before, rss_after) = (field(before, |g| g.rss), field(after, |g| g.rss));
    let status = match (before, after) {
        (None, _) => Status::Appeared,
        (_, None) => Status::Vanished,
        _ if rss_after > rss_before => Status::Grew,
        _ if rss_after < rss_before => Status::Shrank,
        _ => Status::Same,
    };
    // One of the two is there: `diff` passes a group on at least one side.
    let either = after.or(before);
    Change {
        name: either.map_or_else(String::new, |g| g.name.clone()),
        component: either.map_or(Component::OtherAnon, |g| g.component),
        status,
        rss_before,
        rss_after,
        rss_delta: delta(rss_before, rss_after),
        size_delta: delta(field(before, |g| g.size), field(after, |g| g.size)),
        private_dirty_delta: delta(
            field(before, |g| g.private_dirty),
            field(after, |g| g.private_dirty),
        ),
    }
}

/// `after - before`, exact for any difference that fits in an `i64`.
fn delta(before: u64, after: u64) -> i64 {
    after.wrapping_sub(before) as i64
}

/// Sort key of [`diff`]: growth, then losses, then the unchanged.
fn order_key(c: &Change) -> (u8, Reverse<i64>, u64) {
    match c.status {
        Status::Grew | Status::Appeared => (0, Reverse(c.rss_delta), 0),
        // Reverse of a negative delta: the largest loss first.
        Status::Shrank | Status::Vanished => (1, Reverse(c.rss_delta.wrapping_neg()), 0),
        Status::Same => (2, Reverse(0), u64::MAX - c.rss_after),
    }
}

/// `start-end perms offset dev inode [path]`, the path after padding spaces.
/// One line of `/proc/PID/maps` (a region header of `smaps`); `None` when it is not one.
pub fn parse_header(line: &str) -> Option<Region> {
    let (range, rest) = line.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let (perms, rest) = rest.split_once(' ')?;
    let perms = Perms::parse(perms)?;
    let (offset, rest) = rest.split_once(' ')?;
    let offset = u64::from_str_radix(offset, 16).ok()?;
    let (dev, rest) = rest.split_once(' ')?;
    if !dev.contains(':') {
        return None;
    }
    let (inode, path) = rest.split_once(' ').unwrap_or((rest, ""));
    let inode = inode.parse().ok()?;
    Some(Region {
        start,
        end,
        perms,
        offset,
        inode,
        path: path.trim_start_matches(' ').to_owned(),
        size: end.saturating_sub(start),
        ..Region::default()
    })
}

/// `hex-`: a header, even if the rest of it is garbled.
fn looks_like_header(line: &[u8]) -> bool {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    digits > 0 && line.get(digits) == Some(&b'-')
}

/// Whether `addr` is a multiple of `align`, a power of two.
fn aligned(addr: u64, align: u64) -> bool {
    addr & (align - 1) == 0
}

/// What follows `key:` in `line`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key)?.strip_prefix(':')
}

/// The value of a `Name:   1234 kB` line in bytes; 0 if there is no number.
fn kib(value: &str) -> u64 {
    let mut n: u64 = 0;
    for &b in value.trim_start().as_bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    n.saturating_mul(1024)
}

fn io_error(process: &Process, e: io::Error) -> Error {
    let path = process.path("smaps");
    // A process that exits while we read makes the read fail with ESRCH.
    let gone = e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error());
    if gone {
        Error::NoSuchProcess(process.pid)
    } else if e.kind() == io::ErrorKind::PermissionDenied {
        Error::PermissionDenied {
            pid: process.pid,
            what: format!("read {}", path.display()),
        }
    } else {
        Error::Io { path, source: e }
    }
}

#[cfg(test)]
mod tests;
