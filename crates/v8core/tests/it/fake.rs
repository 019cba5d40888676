//! Fake node builds (tests/fake/meta.cc, built with g++): what no official node build shows —
//! a PIE and a `libnode.so` (load bias), pointer compression, a core without the build id.

use std::path::Path;

use v8core::{Core, Error, Identity, Metadata, NodeBinary};

use crate::fixture::{self, Fake};
use crate::node::readelf_build_id;

#[test]
fn a_pie_is_relocated_by_its_load_address() {
    let (taken, build) = fixture::gcore_of_fake(Fake::Pie);
    let core = taken.file.parse().expect("parse");
    let binary = NodeBinary::find(&core, None).expect("find the fake node");
    assert_eq!(binary.path(), taken.program);
    assert!(binary.is_relocatable());
    let base = core
        .image_base(&taken.program)
        .expect("mapped at offset 0")
        .start;
    assert_eq!(
        binary.bias(),
        base,
        "linked at 0, biased by where it was loaded"
    );
    assert_eq!(
        binary.identity(),
        &Identity::BuildId(build_id(&build.metadata))
    );
    check_fake_metadata(&core, &binary, 255);
}

#[test]
fn libnode_holds_the_metadata() {
    let (taken, build) = fixture::gcore_of_fake(Fake::Lib);
    let core = taken.file.parse().expect("parse");
    assert_eq!(core.executable().expect("executable").path, taken.program);
    let binary = NodeBinary::find(&core, None).expect("find libnode");
    let lib = std::fs::canonicalize(&build.metadata).expect("lib");
    assert_eq!(binary.path(), lib);
    assert_eq!(
        binary.bias(),
        core.image_base(&lib).expect("lib mapping").start
    );
    assert_eq!(binary.identity(), &Identity::BuildId(build_id(&lib)));
    check_fake_metadata(&core, &binary, 255);
}

fn check_fake_metadata(core: &Core<'_>, binary: &NodeBinary, map_type: u16) {
    let meta = Metadata::load(core, binary).expect("metadata");
    assert_eq!(meta.instance_type("MAP_TYPE"), Some(map_type));
    assert_eq!(meta.instance_type_name(1057), Some("JS_OBJECT_TYPE"));
    assert_eq!(meta.field("Map", "instance_type"), Some(12));
    assert_eq!(
        meta.field("Map", "prototype"),
        Some(24),
        "two spellings that agree"
    );
    assert_eq!(
        meta.field("JSFunction", "context"),
        None,
        "two spellings that disagree"
    );
    assert_eq!(meta.field_type("JSFunction", "context"), Some("Context"));
    assert_eq!(meta.frame_type("EntryFrame"), Some(1));
    assert_eq!(meta.fp_offset("function"), Some(-16));
    assert_eq!(meta.constant("SmiShiftSize"), Some(31));
    assert_eq!(
        meta.constant("parent_Map__HeapObject"),
        None,
        "parents are not constants"
    );
    assert_eq!(
        meta.symbol("v8dbg_parent_Map__HeapObject"),
        Some(0),
        "a .bss value"
    );
    // Filled by a constructor at startup: 0 in the file, the real value in the core.
    assert_eq!(
        meta.node_offset("Environment", "req_wrap_queue_"),
        Some(2328)
    );
    assert_eq!(
        meta.node_constant("BaseObject", "kInternalFieldCount"),
        Some(2)
    );
    assert_eq!(
        meta.values_checked(),
        12,
        "every v8dbg value is in the core's .data/.bss"
    );
    let missing = meta.require(
        "v8dbg_class_Map__bit_field3",
        meta.field("Map", "bit_field3"),
    );
    let text = missing.expect_err("not exported by the fake").to_string();
    assert!(
        text.contains("lacks the V8 metadata value v8dbg_class_Map__bit_field3"),
        "{text}"
    );
}

#[test]
fn pointer_compression_is_refused() {
    let (taken, _) = fixture::gcore_of_fake(Fake::PieCompressed);
    let core = taken.file.parse().expect("parse");
    let binary = NodeBinary::find(&core, None).expect("find the fake node");
    let err = Metadata::load(&core, &binary).expect_err("TaggedSize 4");
    assert!(
        matches!(err, Error::PointerCompression { tagged_size: 4, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("pointer compression is on in this build"),
        "{err}"
    );
}

/// A kernel core may lack the page with the image's build id: then the layout of the mappings
/// and the metadata values the core holds decide.
#[test]
fn without_the_build_id_the_layout_and_values_decide() {
    let (taken, _) = fixture::gcore_of_fake(Fake::Pie);
    let bytes = without_page(taken.file.bytes(), &taken.program);
    let core = Core::parse(&bytes, Path::new("no-build-id")).expect("parse");
    let binary = NodeBinary::find(&core, None).expect("the same build");
    assert!(
        matches!(binary.identity(), Identity::Unchecked { .. }),
        "{:?}",
        binary.identity()
    );
    assert_eq!(
        binary.bias(),
        core.image_base(&taken.program).unwrap().start
    );
    check_fake_metadata(&core, &binary, 255);

    // Another build with the same layout and no build id at all: the values tell.
    let dir = fixture::scratch("other-build");
    let other = fixture::build_fake(Fake::Pie, &dir, 256, false).program;
    let found = NodeBinary::find(&core, Some(&other)).expect("the layout agrees");
    let err = Metadata::load(&core, &found).expect_err("MAP_TYPE differs");
    let text = err.to_string();
    assert!(matches!(err, Error::BinaryMismatch { .. }), "{text}");
    assert!(
        text.contains("is another build (1 of 12 V8 metadata values in the core differ from the file's, e.g. v8dbg_type_Map__MAP_TYPE is 255 in the core and 256 in the file): pass the exact binary with --node"),
        "{text}"
    );

    // With its build id in the core, the same file is refused by build id.
    let core = taken.file.parse().expect("parse");
    let err = NodeBinary::find(&core, Some(&other)).expect_err("no build id in the file");
    assert!(
        err.to_string()
            .contains("has no build id: pass the exact binary with --node"),
        "{err}"
    );

    // A build with another layout (node's own) is refused before any value is read.
    let node = crate::fixture::Node::System.program().expect("node");
    let err = NodeBinary::find(&core, Some(&node)).expect_err("another build");
    assert!(matches!(err, Error::BuildIdMismatch { .. }), "{err}");
    let core = Core::parse(&bytes, Path::new("no-build-id")).expect("parse");
    let err = NodeBinary::find(&core, Some(&node)).expect_err("another layout");
    assert!(matches!(err, Error::BinaryMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("it is a fixed-address executable"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of a core without the bytes of `path`'s first page (its ELF header and notes).
pub fn without_page(bytes: &[u8], path: &Path) -> Vec<u8> {
    let core = Core::parse(bytes, Path::new("x")).expect("parse");
    let base = core.image_base(path).expect("mapped").start;
    let mut copy = bytes.to_vec();
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = usize::from(u16::from_le_bytes([bytes[56], bytes[57]]));
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        let vaddr = u64::from_le_bytes(bytes[ph + 16..ph + 24].try_into().unwrap());
        if u32::from_le_bytes(bytes[ph..ph + 4].try_into().unwrap()) == 1 && vaddr == base {
            copy[ph + 32..ph + 40].fill(0); // filesz 0, as a kernel core without bit 4
        }
    }
    copy
}

fn build_id(path: &Path) -> v8core::BuildId {
    let hex = readelf_build_id(path);
    v8core::BuildId(
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
    )
}

/// A core read on another machine: the binary it names is not there, `--node` gives it.
#[test]
fn a_binary_that_is_not_here_is_asked_for() {
    let dir = fixture::scratch("moved");
    let build = fixture::build_fake(Fake::Pie, &dir, 255, true);
    let process = fixture::Blocked::start(std::process::Command::new(&build.program));
    let core_dir = dir.join("core");
    std::fs::create_dir_all(&core_dir).expect("core dir");
    let taken = fixture::taken(
        &process.gcore(&core_dir),
        build.program.clone(),
        process.pid(),
        None,
    );
    drop(process);
    let elsewhere = dir.join("fake-node.copy");
    std::fs::rename(&build.program, &elsewhere).expect("move the binary away");

    let core = taken.file.parse().expect("parse");
    let err = NodeBinary::find(&core, None).expect_err("the binary is gone");
    assert!(matches!(err, Error::BinaryUnreadable { .. }), "{err}");
    let want = format!(
        "the core was written by {}, which cannot be read here (",
        build.program.display()
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&want) && text.ends_with("): pass the exact binary with --node"),
        "{text}"
    );

    let binary = NodeBinary::find(&core, Some(&elsewhere)).expect("the same build, elsewhere");
    assert_eq!(binary.path(), elsewhere);
    assert_eq!(binary.mapped_path(), build.program);
    assert!(matches!(binary.identity(), Identity::BuildId(_)));
    check_fake_metadata(&core, &binary, 255);
    let _ = std::fs::remove_dir_all(&dir);
}
