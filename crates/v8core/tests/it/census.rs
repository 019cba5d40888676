//! The census of real cores against V8's own heap snapshot of the same process.
//!
//! The fixture (`CENSUS_APP`) builds known populations — 100,000 `Order` (a class with a
//! number, a double, a string and an object), 10,000 `Customer`, 1,000 `Session` (a function
//! constructor), 100 `Invoice` (an anonymous class bound to a name), a Map of 5,000 distinct
//! 40-character strings — writes its own heap snapshot with `v8.writeHeapSnapshot()`, and
//! blocks in `execSync('sleep 600')`. The snapshot, read with `heapsnap` as DevTools would,
//! is the oracle:
//!
//! - exact: the count and shallow size of every class the fixture made, and the name and
//!   source position DevTools gives them (the snapshot was written after a full GC, and the
//!   fixture allocates none of these after it);
//! - within 3 %: strings (counted by the census as `(string)`, `(concatenated string)`,
//!   `(sliced string)`) and heap numbers, against the snapshot's own sizes before DevTools'
//!   ownership rule folds external string data into the strings. Between the snapshot and
//!   the core, Node allocates strings (execSync's arguments and environment), and the census
//!   counts strings no root reaches that the snapshot leaves out (garbage not yet collected,
//!   internalized strings only the string table holds);
//! - every page walked to its end or to memory V8 has not used yet (no warning).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use v8core::census::{Census, ClassRow, Location, census, diff};
use v8core::{Core, Metadata, NodeBinary};

use crate::fixture::{self, Blocked, Node, Taken};

const CENSUS_APP: &str = r#"'use strict';
const v8 = require('v8');
const { execSync } = require('child_process');
class Order {
  constructor(id, customer) {
    this.id = id;
    this.price = id * 1.5 + 0.25;
    this.sku = 'SKU-' + id;
    this.customer = customer;
  }
}
class Customer {
  constructor(id) {
    this.id = id;
    this.name = 'customer-' + id;
  }
}
function Session(id) {
  this.id = id;
}
const Invoice = class {
  constructor(id) {
    this.id = id;
  }
};
globalThis.customers = Array.from({ length: 10000 }, (_, i) => new Customer(i));
globalThis.sessions = Array.from({ length: 1000 }, (_, i) => new Session(i));
globalThis.invoices = Array.from({ length: 100 }, (_, i) => new Invoice(i));
globalThis.orders = [];
function addOrders(n) {
  for (let i = 0; i < n; i++) {
    const id = orders.length;
    orders.push(new Order(id, customers[id % customers.length]));
  }
}
globalThis.labels = new Map();
for (let i = 0; i < 5000; i++) {
  labels.set(i, Buffer.from('label-' + String(i).padStart(34, '0')).toString('latin1'));
}
addOrders(100000);
const [snapshot, then] = process.argv.slice(2);
if (snapshot && snapshot !== '-') v8.writeHeapSnapshot(snapshot);
if (then === 'throw') throw new Error('core me');
process.stdout.write('ready\n');
for (;;) {
  try {
    execSync('sleep 600');
  } catch {}
  addOrders(50000);
}
"#;

/// Where the fixture's classes are (1-based line and column of the constructor's `(`).
const CLASSES: [(&str, u64, u32, u32); 4] = [
    ("Order", 100_000, 5, 14),
    ("Customer", 10_000, 13, 14),
    ("Session", 1_000, 18, 17),
    ("Invoice", 100, 22, 14),
];

#[test]
fn node20_census() {
    check_gcore(Node::System);
}

#[test]
fn node22_census() {
    check_gcore(Node::Pinned22);
}

#[test]
fn node24_census() {
    check_gcore(Node::Pinned24);
}

#[test]
fn node26_census() {
    check_gcore(Node::Pinned26);
}

fn check_gcore(node: Node) {
    let Some(program) = node.program() else {
        eprintln!(
            "skipped: {node:?} is not installed (npm ci in crates/leakhound/tests/conformance)"
        );
        return;
    };
    let dir = fixture::scratch(&format!("census-{node:?}").to_lowercase());
    let app = write_app(&dir);
    let snapshot = dir.join("app.heapsnapshot");
    let mut cmd = Command::new(&program);
    cmd.arg(&app).arg(&snapshot).current_dir(&dir);
    let process = Blocked::start(cmd);
    let core = process.gcore(&dir);
    let pid = process.pid();
    drop(process);
    let taken = fixture::taken(&core, program, pid, node.major());
    let oracle = Oracle::read(&snapshot);
    let _ = fs::remove_dir_all(&dir);

    let census = run_census(&taken);
    check_against_oracle(&census, &oracle, &app, taken.major.expect("node's major"));
    assert!(
        census.warnings.is_empty(),
        "every page walked to its end: {:#?}",
        census.warnings
    );
}

#[test]
fn node20_kernel_core_census() {
    let program = Node::System.program().expect("node on PATH");
    let dir = fixture::scratch("census-kernel");
    let app = write_app(&dir);
    let snapshot = dir.join("app.heapsnapshot");
    let args = [app.as_os_str(), snapshot.as_os_str(), "throw".as_ref()];
    let Some(core) = fixture::abort_with_core(&program, &args, &dir) else {
        let _ = fs::remove_dir_all(&dir);
        return;
    };
    let oracle = Oracle::read(&snapshot);
    let taken = fixture::taken(&core, program, 0, Node::System.major());
    let _ = fs::remove_dir_all(&dir);

    let census = run_census(&taken);
    check_against_oracle(&census, &oracle, &app, 20);
    // The kernel writes the heap whole; what it leaves out (inaccessible reservations, the
    // binary's text) is not heap.
    assert!(census.warnings.is_empty(), "{:#?}", census.warnings);
}

#[test]
fn node20_diff_of_two_cores() {
    let program = Node::System.program().expect("node on PATH");
    let dir = fixture::scratch("census-diff");
    let app = write_app(&dir);
    let mut cmd = Command::new(&program);
    cmd.arg(&app).arg("-").current_dir(&dir);
    let process = Blocked::start(cmd);
    let before_dir = dir.join("before");
    fs::create_dir_all(&before_dir).expect("dir");
    let before = process.gcore(&before_dir);
    // Ending the `sleep` (and the shell execSync runs it in) makes execSync throw: the
    // fixture adds 50,000 Orders and waits again.
    let child = children(process.pid());
    assert_eq!(child.len(), 1, "one shell: {child:?}");
    for grandchild in children(child[0]) {
        kill(grandchild);
    }
    kill(child[0]);
    let start = Instant::now();
    while children(process.pid()).iter().all(|c| *c == child[0]) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the fixture did not block again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = process.gcore(&dir);
    let pid = process.pid();
    drop(process);
    let before = fixture::taken(&before, program.clone(), pid, None);
    let after = fixture::taken(&after, program, pid, None);
    let _ = fs::remove_dir_all(&dir);

    let (before, after) = (run_census(&before), run_census(&after));
    let rows = diff(&before, &after);
    let order = rows
        .iter()
        .find(|r| r.name == "Order")
        .expect("Order in the diff");
    assert_eq!(order.count, (100_000, 150_000));
    let each = order.size.0 / 100_000;
    assert_eq!(order.size, (100_000 * each, 150_000 * each));
    let customer = rows
        .iter()
        .find(|r| r.name == "Customer")
        .expect("Customer");
    assert_eq!(customer.count, (10_000, 10_000));
    assert_eq!(customer.size.0, customer.size.1);
    let growth = |(a, b): (u64, u64)| i128::from(b) - i128::from(a);
    assert!(
        rows.windows(2)
            .all(|w| growth(w[0].count) >= growth(w[1].count)),
        "sorted by count growth"
    );
    // Every class of either census is there, once.
    for census in [&before, &after] {
        for r in &census.rows {
            let n = rows
                .iter()
                .filter(|d| d.name == r.name && d.location == r.location)
                .count();
            assert_eq!(n, 1, "{} {:?}", r.name, r.location);
        }
    }
}

/// Loads the metadata and counts, checking the progress reports on the way.
fn run_census(taken: &Taken) -> Census {
    let core = taken.file.parse().expect("parse the core");
    let binary = NodeBinary::find(&core, None).expect("find node");
    let meta = Metadata::load(&core, &binary).expect("metadata");
    let seen = std::sync::Mutex::new((0u64, 0u64, 0usize));
    let census = census(&core, &meta, &|done, total| {
        let mut s = seen.lock().unwrap();
        s.0 = s.0.max(done);
        s.1 = total;
        s.2 += 1;
    })
    .expect("census");
    let (done, total, calls) = *seen.lock().unwrap();
    assert!(
        calls > 10 && done == total,
        "progress {done} of {total} in {calls} calls"
    );
    check_totals(&core, &census);
    census
}

/// What any census must satisfy.
fn check_totals(core: &Core<'_>, census: &Census) {
    assert_eq!(
        census.objects,
        census.rows.iter().map(|r| r.count).sum::<u64>()
    );
    assert_eq!(
        census.bytes,
        census.rows.iter().map(|r| r.size).sum::<u64>()
    );
    assert!(census.bytes <= census.scanned_bytes);
    assert!(census.scanned_bytes < core.bytes().len() as u64);
    assert!(
        census.rows.windows(2).all(|w| w[0].size >= w[1].size),
        "sorted by size"
    );
    assert!(
        census
            .rows
            .iter()
            .all(|r| r.count > 0 && r.size >= 8 * r.count)
    );
}

fn check_against_oracle(census: &Census, oracle: &Oracle, app: &Path, major: u32) {
    for (name, count, line, column) in CLASSES {
        let row = one_row(census, name);
        let want = oracle.row(name);
        assert_eq!(row.count, count, "{name}: count");
        assert_eq!(want.count, count, "{name}: the snapshot's count");
        assert_eq!(row.size, want.shallow_size, "{name}: shallow size");
        let location = want.location.expect("the snapshot has a location");
        assert_eq!(
            row.location,
            Some(Location {
                script: app.display().to_string(),
                line,
                column,
            }),
            "{name}: location"
        );
        assert_eq!((location.line + 1, location.column + 1), (line, column));
    }
    let strings = census_sum(
        census,
        &["(string)", "(concatenated string)", "(sliced string)"],
    );
    if major >= 24 {
        // From V8 13 the snapshot counts an external string's characters, which are outside
        // the heap (Node's own sources), in the string's size: only the counts compare.
        within((strings.0, 0), (oracle.strings.0, 0), "strings");
        assert!(
            strings.1 < oracle.strings.1,
            "strings: {strings:?} {:?}",
            oracle.strings
        );
    } else {
        within(strings, oracle.strings, "strings");
    }
    // The 5,000 labels alone are 5,000 sequential strings of 40 characters (56 bytes).
    assert!(strings.0 > 5_000 && strings.1 > 5_000 * 56);
    within(
        census_sum(census, &["(number)"]),
        oracle.numbers,
        "heap numbers",
    );
}

/// The row of a fixture class: exactly one.
fn one_row<'c>(census: &'c Census, name: &str) -> &'c ClassRow {
    let rows: Vec<&ClassRow> = census.rows.iter().filter(|r| r.name == name).collect();
    assert_eq!(rows.len(), 1, "one {name} row: {rows:#?}");
    rows[0]
}

fn census_sum(census: &Census, names: &[&str]) -> (u64, u64) {
    census
        .rows
        .iter()
        .filter(|r| names.contains(&r.name.as_str()))
        .fold((0, 0), |(c, b), r| (c + r.count, b + r.size))
}

/// `got` within 3 % of `want`, in count and bytes.
fn within(got: (u64, u64), want: (u64, u64), what: &str) {
    let close = |a: u64, b: u64| a.abs_diff(b) * 100 <= 3 * b;
    assert!(
        close(got.0, want.0) && close(got.1, want.1),
        "{what}: census {got:?}, snapshot {want:?}"
    );
}

/// The snapshot's Summary, and its strings and numbers as V8 sized them.
struct Oracle {
    rows: Vec<heapsnap::ClassRow>,
    strings: (u64, u64),
    numbers: (u64, u64),
}

impl Oracle {
    fn read(path: &Path) -> Oracle {
        let mut s = heapsnap::read_path(path).expect("read the fixture's heap snapshot");
        let t = s.types.clone();
        let (mut strings, mut numbers) = ((0, 0), (0, 0));
        let number = t
            .node_names
            .iter()
            .position(|n| n == "number")
            .map(|i| i as u8);
        for v in s.nodes.all() {
            let (ty, size) = (s.nodes.ty[v], u64::from(s.nodes.self_size[v]));
            if ty == t.string || ty == t.cons_string || ty == t.sliced_string {
                strings = (strings.0 + 1, strings.1 + size);
            } else if Some(ty) == number {
                numbers = (numbers.0 + 1, numbers.1 + size);
            }
        }
        let analysis = heapsnap::analyze(&mut s);
        Oracle {
            rows: heapsnap::summary(&s, &analysis),
            strings,
            numbers,
        }
    }

    fn row(&self, name: &str) -> &heapsnap::ClassRow {
        let rows: Vec<_> = self.rows.iter().filter(|r| r.name == name).collect();
        assert_eq!(rows.len(), 1, "one {name} row in the snapshot: {rows:#?}");
        rows[0]
    }
}

fn write_app(dir: &Path) -> PathBuf {
    let app = dir.join("census-app.js");
    fs::write(&app, CENSUS_APP).expect("write the fixture");
    fs::canonicalize(&app).expect("fixture path")
}

fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// Damaged cores: garbage where Maps and lengths should be, cycles in the back pointers,
/// pages the core lacks. The census must answer (counts or an error), never panic or hang.
#[test]
fn damaged_heaps_are_counted_as_far_as_they_go() {
    let Some(taken) = fixture::gcore_of_node(Node::System) else {
        return;
    };
    let full = taken.file.parse().expect("parse");
    // A copy of the anonymous memory (the heap, malloc's arenas, the stacks) and the notes:
    // tens of MB instead of a GB of reservations and text.
    let keep: Vec<bool> = full
        .segments()
        .iter()
        .map(|s| s.anonymous && s.filesz <= 16 << 20)
        .collect();
    let copy = Copy::new(taken.file.bytes(), &keep);
    let census_of = |bytes: &[u8]| -> v8core::Result<Census> {
        let core = Core::parse(bytes, Path::new("damaged")).expect("parse the copy");
        let binary = NodeBinary::find(&core, None).expect("node");
        let meta = Metadata::load(&core, &binary).expect("metadata");
        let census = census(&core, &meta, &|_, _| {})?;
        check_totals(&core, &census);
        Ok(census)
    };
    let whole = census_of(&copy.bytes).expect("the copy");
    let orders = one_row(&whole, "Order");
    assert_eq!(orders.count, 10_000, "the copy holds the whole heap");

    // Every Map its own back pointer: names end at the fallback, sizes are unchanged.
    let mut cycles = copy.bytes.clone();
    let meta_maps = copy
        .words(&cycles)
        .filter(|&(at, w)| w == at + 1)
        .map(|(_, w)| w)
        .collect::<Vec<_>>();
    assert!(!meta_maps.is_empty());
    let maps: Vec<usize> = copy
        .words(&cycles)
        .filter(|(_, w)| meta_maps.contains(w))
        .filter_map(|(at, _)| copy.offset(at))
        .collect();
    for &m in &maps {
        let tagged = copy.addr(m) + 1;
        cycles[m + 32..m + 40].copy_from_slice(&tagged.to_le_bytes());
    }
    let start = Instant::now();
    let census = census_of(&cycles).expect("cycles");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(census.rows.iter().all(|r| r.name != "Order"));
    assert_eq!(census.objects, whole.objects);

    // Garbage in one word of every 613: Maps, lengths, headers.
    let mut garbage = copy.bytes.clone();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, chunk) in garbage[copy.data_start..].chunks_exact_mut(8).enumerate() {
        if i % 613 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
    }
    match census_of(&garbage) {
        Ok(census) => assert!(!census.warnings.is_empty()),
        Err(e) => assert!(matches!(e, v8core::Error::Damaged { .. }), "{e}"),
    }

    // Half of every segment missing: counted as far as the core goes, and said.
    let halves: Vec<bool> = keep.clone();
    let half = Copy::with(taken.file.bytes(), &halves, |s| s.filesz / 2 / 4096 * 4096);
    let census = census_of(&half.bytes).expect("halves");
    assert!(census.objects < whole.objects);
    assert!(
        census
            .warnings
            .iter()
            .any(|w| w.contains("not in the core")),
        "{:#?}",
        census.warnings
    );

    // No heap at all: an error that says so.
    let none = Copy::new(taken.file.bytes(), &vec![false; keep.len()]);
    let err = census_of(&none.bytes).expect_err("no heap");
    assert!(err.to_string().contains("no V8 heap page"), "{err}");
}

/// A core rebuilt with the bytes of some of its segments only (the others absent, as in a
/// kernel core), its notes and headers copied.
struct Copy {
    bytes: Vec<u8>,
    /// Where the kept segments' bytes start in `bytes`.
    data_start: usize,
    /// (vaddr, offset in `bytes`, len) of each kept segment.
    kept: Vec<(u64, usize, usize)>,
}

impl Copy {
    fn new(core: &[u8], keep: &[bool]) -> Copy {
        Copy::with(core, keep, |s| s.filesz)
    }

    /// Keeps the first `len(segment)` bytes of the segments `keep` selects.
    fn with(core: &[u8], keep: &[bool], len: impl Fn(&v8core::Segment) -> u64) -> Copy {
        let parsed = Core::parse(core, Path::new("x")).expect("parse");
        let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        let phoff = u64_at(core, 32) as usize;
        let phnum = usize::from(u16::from_le_bytes([core[56], core[57]]));
        let mut bytes = core[..phoff + 56 * phnum].to_vec();
        bytes[40..48].fill(0); // no section headers
        bytes[60..64].fill(0);
        let mut loads = Vec::new();
        for i in 0..phnum {
            let ph = phoff + 56 * i;
            let (offset, filesz) = (
                u64_at(core, ph + 8) as usize,
                u64_at(core, ph + 32) as usize,
            );
            match u32::from_le_bytes(core[ph..ph + 4].try_into().unwrap()) {
                4 => {
                    let at = bytes.len();
                    bytes.extend_from_slice(&core[offset..offset + filesz]);
                    bytes[ph + 8..ph + 16].copy_from_slice(&(at as u64).to_le_bytes());
                }
                1 => loads.push(ph),
                _ => {}
            }
        }
        let data_start = bytes.len();
        let mut kept = Vec::new();
        for ph in loads {
            let vaddr = u64_at(core, ph + 16);
            let seg = parsed
                .segments()
                .iter()
                .position(|s| s.vaddr == vaddr)
                .expect("segment");
            let (offset, filesz) = if keep[seg] {
                let n = len(&parsed.segments()[seg]) as usize;
                let from = u64_at(core, ph + 8) as usize;
                let at = bytes.len();
                bytes.extend_from_slice(&core[from..from + n]);
                kept.push((vaddr, at, n));
                (at, n)
            } else {
                (0, 0)
            };
            bytes[ph + 8..ph + 16].copy_from_slice(&(offset as u64).to_le_bytes());
            bytes[ph + 32..ph + 40].copy_from_slice(&(filesz as u64).to_le_bytes());
        }
        Copy {
            bytes,
            data_start,
            kept,
        }
    }

    /// Every aligned word of the kept segments in `bytes` (a copy of `self.bytes`), with its
    /// address.
    fn words<'b>(&'b self, bytes: &'b [u8]) -> impl Iterator<Item = (u64, u64)> + 'b {
        self.kept.iter().flat_map(move |&(vaddr, at, len)| {
            bytes[at..at + len]
                .chunks_exact(8)
                .enumerate()
                .map(move |(i, w)| {
                    (
                        vaddr + 8 * i as u64,
                        u64::from_le_bytes(w.try_into().unwrap()),
                    )
                })
        })
    }

    /// Where the byte at `addr` is in `bytes`.
    fn offset(&self, addr: u64) -> Option<usize> {
        self.kept.iter().find_map(|&(vaddr, at, len)| {
            (vaddr <= addr && addr + 40 <= vaddr + len as u64).then(|| at + (addr - vaddr) as usize)
        })
    }

    /// The address of the byte at `offset` of `bytes`.
    fn addr(&self, offset: usize) -> u64 {
        self.kept
            .iter()
            .find_map(|&(vaddr, at, len)| {
                (at <= offset && offset < at + len).then(|| vaddr + (offset - at) as u64)
            })
            .expect("a kept byte")
    }
}
