use super::*;

/// Real smaps of one `node` process (v20.20.2, glibc 2.36, Linux 6.18) after each phase of
/// `tests/smaps/capture.js`, with V8's own figures taken right after.
const FIXTURES: [(&str, &str, &str); 4] = [
    (
        "idle",
        include_str!("../../tests/smaps/idle.smaps"),
        include_str!("../../tests/smaps/idle.json"),
    ),
    (
        "buffers-4k",
        include_str!("../../tests/smaps/buffers-4k.smaps"),
        include_str!("../../tests/smaps/buffers-4k.json"),
    ),
    (
        "buffers-512k",
        include_str!("../../tests/smaps/buffers-512k.smaps"),
        include_str!("../../tests/smaps/buffers-512k.json"),
    ),
    (
        "objects",
        include_str!("../../tests/smaps/objects.smaps"),
        include_str!("../../tests/smaps/objects.json"),
    ),
];

const MIB: u64 = 1 << 20;

struct Phase {
    name: &'static str,
    text: &'static str,
    regions: Vec<Region>,
    /// `v8.getHeapStatistics().total_physical_size`.
    v8_physical: u64,
    /// `process.memoryUsage().arrayBuffers`.
    array_buffers: u64,
    /// `process.memoryUsage().rss`.
    rss: u64,
}

fn phases() -> Vec<Phase> {
    FIXTURES
        .iter()
        .map(|&(name, text, json)| {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let num = |p: &str| v.pointer(p).and_then(serde_json::Value::as_u64).unwrap();
            Phase {
                name,
                text,
                regions: parse(text),
                v8_physical: num("/heap/total_physical_size"),
                array_buffers: num("/memory_usage/arrayBuffers"),
                rss: num("/memory_usage/rss"),
            }
        })
        .collect()
}

fn sample(regions: &[Region]) -> MapsSample {
    MapsSample {
        pid: 1,
        unix_ms: 0,
        groups: groups(regions),
    }
}

fn within(a: u64, b: u64, percent: u64, floor: u64) -> bool {
    a.abs_diff(b) <= (b * percent / 100).max(floor)
}

#[test]
fn v8_heap_matches_v8s_own_figure() {
    for p in phases() {
        let b = breakdown(&p.regions);
        eprintln!(
            "{:>12}: smaps v8_heap {:>6} kB, V8 total_physical_size {:>6} kB ({:+.1} %); {b:?}",
            p.name,
            b.v8_heap / 1024,
            p.v8_physical / 1024,
            (b.v8_heap as f64 / p.v8_physical as f64 - 1.0) * 100.0,
        );
        // V8 counts a few hundred KiB of committed but untouched pages as physical, which
        // matters for small heaps only.
        assert!(
            within(b.v8_heap, p.v8_physical, 3, MIB),
            "{}: {b:?} vs {}",
            p.name,
            p.v8_physical
        );
        // Every resident page is in some component.
        assert!(
            within(b.total(), p.rss, 3, 2 * MIB),
            "{}: {} vs {}",
            p.name,
            b.total(),
            p.rss
        );
    }
}

#[test]
fn buffers_and_objects_land_where_they_should() {
    let p = phases();
    let b: Vec<Breakdown> = p.iter().map(|p| breakdown(&p.regions)).collect();
    let grew = |i: usize, c: Component| b[i].get(c).saturating_sub(b[i - 1].get(c));

    // 20 000 × 4 KiB Buffers: calloc below the mmap threshold, so the brk heap.
    let buffers = p[1].array_buffers - p[0].array_buffers;
    assert!(grew(1, Component::MallocHeap) > buffers * 95 / 100, "{b:?}");
    assert!(grew(1, Component::OtherAnon) < MIB, "{b:?}");

    // 200 × 512 KiB Buffers: each its own mmap, merged into unnamed anonymous regions.
    let buffers = p[2].array_buffers - p[1].array_buffers;
    assert!(grew(2, Component::OtherAnon) > buffers * 98 / 100, "{b:?}");
    assert!(grew(2, Component::MallocHeap) < MIB, "{b:?}");

    // 1 M small objects: V8's heap.
    let heap = p[3].v8_physical - p[2].v8_physical;
    assert!(within(grew(3, Component::V8Heap), heap, 3, MIB), "{b:?}");
    assert!(grew(3, Component::OtherAnon) < 4 * MIB, "{b:?}");
}

#[test]
fn diff_puts_the_grown_group_first() {
    let p = phases();
    let expected = ["[heap] (malloc main arena)", "anonymous (other)", "V8 heap"];
    for (pair, want) in p.windows(2).zip(expected) {
        let changes = diff(&sample(&pair[0].regions), &sample(&pair[1].regions));
        let top = &changes[0];
        eprintln!(
            "{} -> {}: {} {:?} by {} kB",
            pair[0].name,
            pair[1].name,
            top.name,
            top.status,
            top.rss_delta / 1024
        );
        assert_eq!((top.name.as_str(), top.status), (want, Status::Grew));
        assert!(top.rss_delta > 75 * MIB as i64, "{top:?}");
        // The runner-up is far behind.
        assert!(
            changes[1].rss_delta < top.rss_delta / 10,
            "{:?}",
            changes[1]
        );
        // Nothing vanished, and the deltas add up.
        let total = |s: &[Region]| s.iter().map(|r| r.rss).sum::<u64>();
        let sum: i64 = changes.iter().map(|c| c.rss_delta).sum();
        assert_eq!(sum, delta(total(&pair[0].regions), total(&pair[1].regions)));
    }
}

#[test]
fn groups_of_an_idle_node() {
    let p = &phases()[0];
    let g = groups(&p.regions);
    let table: Vec<String> = g
        .iter()
        .map(|g| format!("{} {:?} {}", g.name, g.component, g.regions))
        .collect();
    eprintln!("{table:#?}");
    let find = |name: &str| g.iter().find(|g| g.name == name).unwrap();
    // All mappings of a file together: the binary has eight, one far from the others.
    assert_eq!(find("/usr/bin/node").regions, 8);
    assert_eq!(find("/usr/bin/node").component, Component::FileBacked);
    assert_eq!(find("V8 heap").component, Component::V8Heap);
    assert_eq!(find("[stack]").regions, 1);
    // Six threads (four V8 platform workers, the libuv signal and inspector threads, …)
    // plus a small one, each with its guard.
    assert_eq!(find("thread stacks").regions % 2, 0);
    assert!(find("thread stacks").regions >= 10);
    // One thread arena: its rw-p head and ---p rest.
    assert_eq!(find("malloc thread arenas").regions, 2);
    assert_eq!(find("malloc thread arenas").size, 64 * MIB);
    for name in [
        "[vdso]",
        "[vvar]",
        "[vsyscall]",
        "[heap] (malloc main arena)",
    ] {
        find(name);
    }
    assert!(g.windows(2).all(|w| w[0].rss >= w[1].rss));
    let regions: u32 = g.iter().map(|g| g.regions).sum();
    assert_eq!(regions as usize, p.regions.len());
    let rss: u64 = g.iter().map(|g| g.rss).sum();
    assert_eq!(rss, breakdown(&p.regions).total());
}

#[test]
fn without_dc_v8_is_found_by_address() {
    for p in phases() {
        let marked = breakdown(&p.regions);
        let stripped = parse(&p.text.replace(" dc", ""));
        assert!(
            stripped
                .iter()
                .all(|r| !r.flags.contains(VmFlags::DONTCOPY))
        );
        let guessed = breakdown(&stripped);
        eprintln!(
            "{:>12}: v8_heap by dc {} kB, by address {} kB",
            p.name,
            marked.v8_heap / 1024,
            guessed.v8_heap / 1024
        );
        assert!(guessed.v8_heap <= marked.v8_heap, "{}", p.name);
        assert!(guessed.v8_heap >= marked.v8_heap * 98 / 100, "{}", p.name);
        assert_eq!(guessed.malloc_heap, marked.malloc_heap, "{}", p.name);
        assert_eq!(guessed.stacks, marked.stacks, "{}", p.name);
    }
}

#[test]
fn a_cut_off_smaps_keeps_every_whole_region() {
    let text = FIXTURES[0].1;
    let full = parse(text);
    for cut in (0..text.len()).step_by(997) {
        let part = parse(&text[..cut]);
        assert!(part.len() <= full.len());
        // All but the last region read are whole; the last may have lost fields and the
        // end of its path.
        let whole = part.len().saturating_sub(1);
        assert_eq!(part[..whole], full[..whole], "cut at {cut}");
        if let Some(last) = part.last() {
            assert_eq!((last.start, last.end), (full[whole].start, full[whole].end));
            assert!(full[whole].path.starts_with(&last.path), "cut at {cut}");
        }
    }
}

#[test]
fn odd_lines() {
    let text = "\
garbage before the first header
00400000-00401000 r-xp 00001000 fe:00 123                              /opt/my app/node  v2
Size:                  4 kB
Rss:                   4 kB
Pss:                   2 kB
line without a colon
Rss 12 kB
Unknown_Field:        99 kB
Private_Dirty:
VmFlags: rd ex mr mw me zz xyz
01000000-01001000 rw-p 00000000 00:00 0 \r
Rss:                   8 kB
Private_Dirty:         8 kB
02000000-0200zz00 rw-p 00000000 00:00 0
Rss:                 999 kB
Swap:                999 kB
03000000-03002000 r--s 00000000 00:05 456                        /memfd:cache (deleted)
Rss:                   8 kB
Swap:                  4 kB
Anonymous:             x kB
04000000-04001000 rw-p 00000000 00:00 0                          [anon:my arena]
Anonymous:             4 kB
VmFlags: rd wr dc
05000000-05800000 rw-p 00000000 00:00 0
Rss:                  40";
    let r = parse(text);
    let rows: Vec<String> = r
        .iter()
        .map(|r| {
            format!(
                "{:x}-{:x} {} {:x} {} {:?} size={} rss={} pss={} dirty={} anon={} swap={} [{}]",
                r.start,
                r.end,
                r.perms,
                r.offset,
                r.inode,
                r.path,
                r.size / 1024,
                r.rss / 1024,
                r.pss / 1024,
                r.private_dirty / 1024,
                r.anonymous / 1024,
                r.swap / 1024,
                r.flags
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            r#"400000-401000 r-xp 1000 123 "/opt/my app/node  v2" size=4 rss=4 pss=2 dirty=0 anon=0 swap=0 [rd ex]"#,
            r#"1000000-1001000 rw-p 0 0 "" size=4 rss=8 pss=0 dirty=8 anon=0 swap=0 []"#,
            r#"3000000-3002000 r--s 0 456 "/memfd:cache (deleted)" size=8 rss=8 pss=0 dirty=0 anon=0 swap=4 []"#,
            r#"4000000-4001000 rw-p 0 0 "[anon:my arena]" size=4 rss=0 pss=0 dirty=0 anon=4 swap=0 [rd wr dc]"#,
            r#"5000000-5800000 rw-p 0 0 "" size=8192 rss=40 pss=0 dirty=0 anon=0 swap=0 []"#,
        ]
    );
    assert!(r[1].is_anonymous() && r[3].is_anonymous());
    assert!(!r[0].is_anonymous() && !r[2].is_anonymous());
    assert!(parse("").is_empty());
    assert!(parse("\n\n-\n:\nffffffff-\nVmFlags: dc\n").is_empty());
}

/// Builds smaps text from one line per region, `RANGE PERMS INODE RSS_KB FLAGS [PATH]`
/// (FLAGS comma-separated, `-` for none), classifies it and compares `START KIND` rows.
fn check(spec: &str, expected: &str) {
    let mut text = String::new();
    for line in spec.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut cols = line.splitn(6, ' ');
        let mut col = || cols.next().unwrap_or("");
        let (range, perms, inode, rss, flags, path) = (col(), col(), col(), col(), col(), col());
        let (start, end) = range.split_once('-').unwrap();
        let size = (u64::from_str_radix(end, 16).unwrap()
            - u64::from_str_radix(start, 16).unwrap())
            / 1024;
        let header = format!("{range} {perms} 00000000 00:00 {inode}");
        text += &format!("{header:<73}{path}\nSize: {size:>8} kB\nKernelPageSize: 4 kB\n");
        text += &format!("Rss: {rss:>8} kB\nPss: {rss:>8} kB\nPrivate_Dirty: {rss} kB\n");
        text += &format!("Anonymous: {rss} kB\nSwap: 0 kB\nTHPeligible: 0\n");
        text += &format!("VmFlags: {} \n", flags.replace(',', " ").replace('-', ""));
    }
    let regions = parse(&text);
    let got: Vec<String> = regions
        .iter()
        .zip(classify(&regions))
        .map(|(r, k)| format!("{:x} {k:?}", r.start))
        .collect();
    let want: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn classify_rules() {
    check(
        "
        00400000-00b6f000 r--p 247584 5944 rd,mr /usr/bin/node
        0565d000-05689000 rw-p 0 96 rd,wr,ac
        39dbe000-3a081000 rw-p 0 2712 rd,wr,ac [heap]
        3c56a700000-3c56a740000 rw-p 0 256 rd,wr,dc,nr
        3c56a740000-3c56a780000 ---p 0 0 dc,nr
        4c000000000-4c000100000 rw-p 0 1024 rd,wr,dc [anon:v8 page]
        7f9868000000-7f9868100000 rw-p 0 4 rd,wr,nr
        7f986c000000-7f986c021000 rw-p 0 4 rd,wr,nr
        7f986c021000-7f9870000000 ---p 0 0 nr
        7f9870000000-7f9870040000 rw-p 0 256 rd,wr,nr
        7f987073d000-7f987073e000 ---p 0 0 nh
        7f987073e000-7f9870f3e000 rw-p 0 16 rd,wr,ac,nh
        7f9871000000-7f9871001000 ---p 0 0 -
        7f9871001000-7f9871801000 rw-p 0 12 rd,wr,ac
        7f9871801000-7f9871901000 rw-p 0 1024 rd,wr,ac
        7f9871a00000-7f9871a10000 rw-p 0 64 rd,wr,ac [anon: glibc: malloc]
        7f98714c1000-7f98714c5000 r--p 0 0 rd,mr,pf,io [vvar]
        7f98714c7000-7f98714c9000 r-xp 0 4 rd,ex,de [vdso]
        7f98714c9000-7f98714ca000 rw-s 8 4 rd,wr,sh /dev/zero (deleted)
        7ffd6327c000-7ffd6329d000 rw-p 0 64 rd,wr,gd,ac [stack]
        ffffffffff600000-ffffffffff601000 --xp 0 0 ex [vsyscall]
        ",
        "
        400000 File
        565d000 Anon
        39dbe000 MallocMainArena
        3c56a700000 V8Heap
        3c56a740000 V8Heap
        4c000000000 V8Heap
        7f9868000000 Anon
        7f986c000000 MallocThreadArena
        7f986c021000 MallocThreadArena
        7f9870000000 Anon
        7f987073d000 ThreadStack
        7f987073e000 ThreadStack
        7f9871000000 ThreadStack
        7f9871001000 ThreadStack
        7f9871801000 Anon
        7f9871a00000 Anon
        7f98714c1000 Special
        7f98714c7000 Special
        7f98714c9000 File
        7ffd6327c000 MainStack
        ffffffffff600000 Special
        ",
    );
}

#[test]
fn classify_glibc_names_and_old_kernels() {
    check(
        "
        7f0000000000-7f0000021000 rw-p 0 132 rd,wr,nr [anon: glibc: malloc arena]
        7f0000021000-7f0000042000 rw-p 0 132 rd,wr,nr
        7f0000042000-7f0004000000 ---p 0 0 nr
        7f0010000000-7f0010001000 ---p 0 0 -
        7f0010001000-7f0010801000 rw-p 0 8 rd,wr [anon: glibc: pthread stack: 4242]
        7f0020000000-7f0020800000 rw-p 0 8 rd,wr [stack:4243]
        ",
        "
        7f0000000000 MallocThreadArena
        7f0000021000 MallocThreadArena
        7f0000042000 MallocThreadArena
        7f0010000000 ThreadStack
        7f0010001000 ThreadStack
        7f0020000000 ThreadStack
        ",
    );
}

#[test]
fn classify_without_dc() {
    // No `dc` anywhere: V8's pages are the 256 KiB-aligned ones below 2^46, except the
    // `.bss` right after the executable.
    check(
        "
        05600000-05680000 rw-p 247584 124 rd,wr /usr/bin/node
        05680000-056c0000 rw-p 0 96 rd,wr,ac
        1c500000-1c540000 rw-p 0 256 rd,wr,nr
        3c56a700000-3c56a740000 rw-p 0 256 rd,wr,nr
        3c56a742000-3c56a744000 rw-p 0 8 rd,wr,nr
        3fff0000000-3fff0680000 rw-p 0 6656 rd,wr,nr
        7f0000040000-7f0000080000 rw-p 0 256 rd,wr,ac
        ",
        "
        5600000 File
        5680000 Anon
        1c500000 V8Heap
        3c56a700000 V8Heap
        3c56a742000 Anon
        3fff0000000 V8Heap
        7f0000040000 Anon
        ",
    );
}

fn group(name: &str, rss: u64) -> Group {
    Group {
        name: name.to_owned(),
        component: Component::OtherAnon,
        regions: 1,
        size: rss * 2,
        rss,
        private_dirty: rss,
        swap: 0,
    }
}

#[test]
fn diff_order() {
    let before = MapsSample {
        pid: 1,
        unix_ms: 0,
        groups: vec![
            group("grew a little", 10),
            group("grew a lot", 10),
            group("same", 7),
            group("same too", 70),
            group("shrank a little", 10),
            group("shrank a lot", 100),
            group("vanished", 30),
        ],
    };
    let after = MapsSample {
        pid: 1,
        unix_ms: 1,
        groups: vec![
            group("appeared", 50),
            group("grew a little", 11),
            group("grew a lot", 110),
            group("same", 7),
            group("same too", 70),
            group("shrank a little", 9),
            group("shrank a lot", 1),
        ],
    };
    let rows: Vec<String> = diff(&before, &after)
        .iter()
        .map(|c| {
            format!(
                "{} {:?} {}->{} {:+} {:+}",
                c.name, c.status, c.rss_before, c.rss_after, c.rss_delta, c.size_delta
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "grew a lot Grew 10->110 +100 +200",
            "appeared Appeared 0->50 +50 +100",
            "grew a little Grew 10->11 +1 +2",
            "shrank a lot Shrank 100->1 -99 -198",
            "vanished Vanished 30->0 -30 -60",
            "shrank a little Shrank 10->9 -1 -2",
            "same too Same 70->70 +0 +0",
            "same Same 7->7 +0 +0",
        ]
    );
    let json = serde_json::to_value(&diff(&before, &after)[0]).unwrap();
    assert_eq!(json["status"], "grew");
    assert_eq!(serde_json::to_value(Status::Vanished).unwrap(), "vanished");
}

#[test]
fn reads_our_own_smaps() {
    let me = Process {
        pid: std::process::id(),
    };
    let regions = read(&me).unwrap();
    assert!(regions.iter().any(|r| r.path == "[stack]"));
    assert!(regions.windows(2).all(|w| w[0].end <= w[1].start));
    assert!(breakdown(&regions).total() > 0);
    let gone = Process { pid: u32::MAX };
    assert!(matches!(read(&gone), Err(Error::NoSuchProcess(_))));
}
