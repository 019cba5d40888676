//! Cores of real node processes: threads, mappings, the binary and its metadata, on every
//! installed major, from gcore and from the kernel.

use std::path::Path;
use std::process::Command;

use v8core::{Core, Identity, MappedImage, Metadata, NodeBinary};

use crate::fixture::{self, Node, Taken};

/// What `../shared/reference/core-dumps.md` §1.4 measured, per major.
struct Expected {
    map_type: u16,
    js_function_type: u16,
    js_array_type: u16,
    sfi_type: u16,
    function_shared: i64,
    sfi_name: i64,
    interpreted_frame: i64,
}

fn expected(major: u32) -> Expected {
    let (map_type, js_function_type, js_array_type, sfi_type) = match major {
        20 => (255, 2066, 2113, 262),
        22 => (264, 2066, 2115, 274),
        24 => (272, 2065, 2119, 282),
        26 => (278, 2066, 2121, 288),
        _ => panic!("no expectations for Node {major}"),
    };
    Expected {
        map_type,
        js_function_type,
        js_array_type,
        sfi_type,
        function_shared: if major >= 22 { 32 } else { 24 },
        sfi_name: if major >= 24 { 24 } else { 16 },
        interpreted_frame: match major {
            20 | 22 => 13,
            24 => 14,
            _ => 4,
        },
    }
}

#[test]
fn node20_gcore() {
    check_gcore(Node::System);
}

#[test]
fn node22_gcore() {
    check_gcore(Node::Pinned22);
}

#[test]
fn node24_gcore() {
    check_gcore(Node::Pinned24);
}

#[test]
fn node26_gcore() {
    check_gcore(Node::Pinned26);
}

fn check_gcore(node: Node) {
    let Some(taken) = fixture::gcore_of_node(node) else {
        return;
    };
    let core = taken.file.parse().expect("parse the core");
    check_process(&core, taken);
    // gcore writes every mapping whole: the binary's text is in the core.
    let text = core.executable().expect("the executable's mapping");
    assert!(core.is_present(text.start), "gcore keeps file-backed pages");

    let binary = NodeBinary::find(&core, None).expect("find the node binary");
    check_binary(&binary, taken);
    let meta = Metadata::load(&core, &binary).expect("load the metadata");
    check_metadata(&meta, taken.major.expect("node's major"));
    // gcore holds .data: every v8dbg value was compared with the file's.
    assert!(
        meta.values_checked() > 400,
        "{} values checked",
        meta.values_checked()
    );
}

/// What any core of the fixture shows: the process, its threads on their stacks, the
/// executable among the mappings, sorted segments.
fn check_process(core: &Core<'_>, taken: &Taken) {
    let process = core.process().expect("NT_PRPSINFO");
    assert_eq!(process.pid, taken.pid);
    assert_eq!(process.name, "node");
    let main = core.main_thread().expect("a thread");
    assert_eq!(main.tid, taken.pid, "the main thread's id is the pid");
    // Node runs V8's platform workers and libuv's threads beside the main thread.
    assert!(
        core.threads().len() >= 5,
        "{} threads",
        core.threads().len()
    );
    for t in core.threads() {
        let stack = core
            .segment_at(t.regs.rsp)
            .unwrap_or_else(|| panic!("thread {}: rsp {:#x} unmapped", t.tid, t.regs.rsp));
        assert!(
            stack.anonymous && stack.flags.writable(),
            "thread {}: rsp in {stack:?}",
            t.tid
        );
        assert!(
            core.read_u64(t.regs.rsp).is_some(),
            "thread {}: its stack top is in the core",
            t.tid
        );
        // glibc's code, where threads wait, uses rbp as a general register: it holds 0 there
        // (or a frame address when the thread is in node's or V8's code).
        let rbp = t.regs.rbp;
        assert!(
            rbp == 0 || core.segment_at(rbp).is_some(),
            "thread {}: rbp {rbp:#x}",
            t.tid
        );
        // In a file's text (which the core may leave out) or in V8's JIT code.
        let in_code = core.mapping_at(t.regs.rip).is_some()
            || core
                .segment_at(t.regs.rip)
                .is_some_and(|s| s.flags.executable());
        assert!(in_code, "thread {}: rip {:#x}", t.tid, t.regs.rip);
    }

    let exe = core.executable().expect("the executable's mapping");
    assert_eq!(exe.path, taken.program);
    assert!(
        !core
            .segment_at(exe.start)
            .expect("segment of the executable")
            .anonymous
    );
    let segments = core.segments();
    assert!(
        segments.windows(2).all(|w| w[0].end() <= w[1].vaddr),
        "sorted, disjoint"
    );
    assert!(
        core.anonymous_segments().count() > 20,
        "V8's pages are anonymous"
    );
    assert!(core.mappings().windows(2).all(|w| w[0].start <= w[1].start));
}

fn check_binary(binary: &NodeBinary, taken: &Taken) {
    assert_eq!(binary.path(), taken.program);
    assert_eq!(binary.mapped_path(), taken.program);
    assert!(!binary.is_relocatable(), "official node is not PIE");
    assert_eq!(binary.bias(), 0);
    match binary.identity() {
        Identity::BuildId(id) => assert_eq!(id.to_string(), readelf_build_id(&taken.program)),
        other => panic!("build id not checked: {other:?}"),
    }
}

fn check_metadata(meta: &Metadata, major: u32) {
    let want = expected(major);
    assert_eq!(meta.constant("TaggedSize"), Some(8));
    assert_eq!(meta.constant("SystemPointerSize"), Some(8));
    assert_eq!(meta.constant("SmiShiftSize"), Some(31));
    assert_eq!(meta.constant("HeapObjectTag"), Some(1));
    assert_eq!(meta.instance_type("MAP_TYPE"), Some(want.map_type));
    assert_eq!(meta.instance_type_name(want.map_type), Some("MAP_TYPE"));
    assert_eq!(meta.instance_type("JS_OBJECT_TYPE"), Some(1057));
    assert_eq!(
        meta.instance_type("JS_FUNCTION_TYPE"),
        Some(want.js_function_type)
    );
    assert_eq!(
        meta.instance_type("JS_ARRAY_TYPE"),
        Some(want.js_array_type)
    );
    assert_eq!(
        meta.instance_type("SHARED_FUNCTION_INFO_TYPE"),
        Some(want.sfi_type)
    );
    // The Map layout and the fields a census needs, whatever the symbols' type suffixes.
    for (class, field, offset) in [
        ("HeapObject", "map", 0),
        ("Map", "instance_size_in_words", 8),
        ("Map", "instance_type", 12),
        ("Map", "bit_field3", 16),
        ("Map", "prototype", 24),
        ("Map", "constructor_or_back_pointer", 32),
        ("Map", "instance_descriptors", 40),
        ("JSReceiver", "raw_properties_or_hash", 8),
        ("JSObject", "elements", 16),
        ("String", "length", 12),
        ("FixedArrayBase", "length", 8),
        ("JSFunction", "shared", want.function_shared),
        ("SharedFunctionInfo", "name_or_scope_info", want.sfi_name),
    ] {
        assert_eq!(
            meta.field(class, field),
            Some(offset),
            "{class}.{field} on Node {major}"
        );
    }
    assert_eq!(meta.field_type("Map", "instance_type"), Some("uint16_t"));
    assert_eq!(
        meta.frame_type("InterpretedFrame"),
        Some(want.interpreted_frame)
    );
    assert_eq!(
        meta.frame_type_name(want.interpreted_frame),
        Some("InterpretedFrame")
    );
    assert_eq!(meta.fp_offset("function"), Some(-16));
    assert_eq!(meta.fp_offset("context"), Some(-8));
    assert!(
        meta.require("nothing", meta.constant("NoSuchConstant"))
            .is_err()
    );

    // nodedbg values are written at startup: the file says 0, the core has them.
    assert!(
        meta.node_missing().is_empty(),
        "missing {:?}",
        meta.node_missing()
    );
    assert_eq!(
        meta.node_constant("BaseObject", "kInternalFieldCount"),
        Some(2)
    );
    assert_eq!(
        meta.node_constant("ContextEmbedderIndex", "kEnvironment"),
        Some(32)
    );
    for (class, field) in [
        ("Environment", "req_wrap_queue_"),
        ("Environment", "handle_wrap_queue_"),
        ("HandleWrap", "handle_wrap_queue_"),
        ("ReqWrap", "req_wrap_queue_"),
    ] {
        assert!(
            meta.node_offset(class, field).is_some_and(|v| v > 0),
            "{class}.{field} on Node {major}"
        );
    }
}

#[test]
fn kernel_core_of_node20() {
    let Some(taken) = fixture::kernel_core_of_node() else {
        return;
    };
    let core = taken.file.parse().expect("parse the core");
    check_process(&core, taken);
    // The kernel leaves out what coredump_filter excludes: segments shorter in the file than
    // in memory, whose missing bytes read as absent, not as zeros.
    let sparse = core
        .segments()
        .iter()
        .find(|s| s.filesz < s.memsz)
        .expect("a segment the kernel left out");
    assert!(core.read(sparse.present_end(), 8).is_none());
    assert!(!core.is_present(sparse.present_end()));
    let thrower = &core.threads()[0];
    assert!(
        thrower.signal != 0,
        "the kernel writes the signalled thread first"
    );
    if std::fs::read_to_string("/proc/self/coredump_filter").is_ok_and(|f| f.trim() == "00000033") {
        // The default filter: file-backed text is left out, only the ELF header page is kept.
        let exe = core.executable().expect("the executable's mapping");
        assert!(core.is_present(exe.start));
        assert!(!core.is_present(core.auxv(9).expect("AT_ENTRY")));
    }

    let binary = NodeBinary::find(&core, None).expect("find the node binary");
    check_binary(&binary, taken);
    let meta = Metadata::load(&core, &binary).expect("load the metadata");
    check_metadata(&meta, taken.major.expect("node's major"));
    assert!(
        meta.values_checked() > 0,
        "the kernel keeps node's written .data"
    );

    // Without the page of the build id (coredump_filter without bit 4), the layout of node's
    // mappings (V8 maps part of node's text a second time) and the values decide.
    let bytes = crate::fake::without_page(taken.file.bytes(), &taken.program);
    let core = Core::parse(&bytes, Path::new("no-build-id")).expect("parse");
    let binary = NodeBinary::find(&core, None).expect("find the node binary");
    assert!(matches!(binary.identity(), Identity::Unchecked { .. }));
    assert_eq!(binary.bias(), 0);
    let meta = Metadata::load(&core, &binary).expect("load the metadata");
    check_metadata(&meta, taken.major.expect("node's major"));
}

#[test]
fn a_core_without_v8_is_refused() {
    let taken = fixture::gcore_of_sleep();
    let core = taken.file.parse().expect("parse the core");
    let err = NodeBinary::find(&core, None).expect_err("sleep has no V8");
    let text = err.to_string();
    assert!(matches!(err, v8core::Error::NoMetadata { .. }), "{text}");
    assert!(text.contains("has no V8 postmortem metadata"), "{text}");
    assert!(
        text.contains(&taken.program.display().to_string()),
        "{text}"
    );

    // sleep is a PIE: its bias is its load address, and the core has its build id.
    let exe = core.executable().expect("sleep's mapping");
    assert_eq!(exe.path, taken.program);
    let image = MappedImage::find(&core, &exe.path).expect("sleep's image");
    assert_eq!(image.base, exe.start);
    assert_eq!(
        image.bias,
        Some(exe.start),
        "a PIE linked at 0 is biased by its base"
    );
    assert_eq!(
        image.build_id.expect("build id").to_string(),
        readelf_build_id(&taken.program)
    );
    let all = MappedImage::all(&core);
    assert!(
        all.iter()
            .any(|i| i.path.to_string_lossy().contains("libc.so")),
        "{all:?}"
    );
    assert!(all.iter().all(|i| i.bias.is_some()));
}

#[test]
fn a_binary_of_another_build_is_refused() {
    let Some(taken) = fixture::gcore_of_node(Node::System) else {
        return;
    };
    let core = taken.file.parse().expect("parse the core");
    // Another major when installed; else any other ELF with the metadata is as good a test.
    let Some(other) = [Node::Pinned22, Node::Pinned24, Node::Pinned26]
        .iter()
        .filter_map(|n| n.program())
        .find(|p| *p != taken.program)
    else {
        eprintln!("skipped: no other node build is installed");
        return;
    };
    let err = NodeBinary::find(&core, Some(&other)).expect_err("another build");
    let text = err.to_string();
    assert!(
        matches!(err, v8core::Error::BuildIdMismatch { .. }),
        "{text}"
    );
    let want = format!(
        "the core was written by {} with build id {}; {} has {}: pass the exact binary with --node",
        taken.program.display(),
        readelf_build_id(&taken.program),
        other.display(),
        readelf_build_id(&other)
    );
    assert_eq!(text, want);

    // The right binary under another name is taken, and mapped to the executable.
    let dir = fixture::scratch("node-copy");
    let copy = dir.join("renamed-node");
    std::os::unix::fs::symlink(&taken.program, &copy).expect("symlink");
    let binary = NodeBinary::find(&core, Some(&copy)).expect("the same build");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(binary.mapped_path(), taken.program);
    assert!(matches!(binary.identity(), Identity::BuildId(_)));
}

#[test]
fn a_binary_without_v8_is_refused_as_node() {
    let Some(taken) = fixture::gcore_of_node(Node::System) else {
        return;
    };
    let core = taken.file.parse().expect("parse the core");
    let sleep = &fixture::gcore_of_sleep().program;
    let err = NodeBinary::find(&core, Some(sleep)).expect_err("sleep is not node");
    assert!(matches!(err, v8core::Error::NoMetadata { .. }), "{err}");
}

/// `readelf -n`'s build id of a file: an oracle independent of this crate.
pub fn readelf_build_id(path: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(path)
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build id in {}", path.display()))
        .trim()
        .to_owned()
}
