//! Broken and wrong inputs: every one an error that says what it is, never a panic.

use std::fs;
use std::path::Path;

use v8core::{Core, CoreFile, Error};

use crate::fixture::{self, Node};

#[test]
fn truncated_cores_are_errors() {
    let Some(taken) = fixture::gcore_of_node(Node::System) else {
        return;
    };
    let bytes = taken.file.bytes();
    let path = Path::new("truncated");
    let whole = Core::parse(bytes, path).expect("the whole core");
    // gcore writes the notes, then the memory, then section headers nobody needs.
    let memory = whole.segments().iter().map(|s| s.offset).min().unwrap() as usize;
    let end = whole
        .segments()
        .iter()
        .map(|s| s.offset + s.filesz)
        .max()
        .unwrap() as usize;
    for cut in [
        0,
        3,
        16,
        63,
        64,
        200,
        memory / 2,
        memory + 10,
        end / 2,
        end - 1,
    ] {
        let err = Core::parse(&bytes[..cut], path).expect_err("a cut core");
        match (cut, &err) {
            (0..=3, Error::NotElf { .. }) => {}
            (4.., Error::Truncated { .. }) => {}
            _ => panic!("cut at {cut}: {err}"),
        }
    }

    // The same through a file, as a user would pass it.
    let dir = fixture::scratch("truncated");
    let file = dir.join("core.cut");
    fs::write(&file, &bytes[..1 << 20]).expect("write the cut copy");
    let opened = CoreFile::open(&file).expect("open");
    let text = opened.parse().expect_err("a cut core").to_string();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        text.starts_with(&format!("{} is truncated: the ", file.display())),
        "{text}"
    );
    assert!(text.ends_with("take the core again"), "{text}");
}

#[test]
fn damaged_notes_are_errors() {
    let Some(taken) = fixture::gcore_of_node(Node::System) else {
        return;
    };
    // A small core of the headers and notes alone (the segments emptied), then each byte of
    // the notes flipped in turn, and the notes cut at each length: errors, never a panic.
    let bytes = taken.file.bytes();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (phoff, phnum) = (
        word(32) as usize,
        usize::from(u16::from_le_bytes([bytes[56], bytes[57]])),
    );
    let mut head = bytes[..phoff + 56 * phnum].to_vec();
    let mut notes = 0..0;
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        match u32::from_le_bytes(head[ph..ph + 4].try_into().unwrap()) {
            1 => head[ph + 8..ph + 16].fill(0), // PT_LOAD: offset 0 …
            4 => {
                let (offset, size) = (word(ph + 8) as usize, word(ph + 32) as usize);
                notes = head.len()..head.len() + size;
                head[ph + 8..ph + 16].copy_from_slice(&(notes.start as u64).to_le_bytes());
                head.extend_from_slice(&bytes[offset..offset + size]);
            }
            _ => {}
        }
    }
    for i in 0..phnum {
        let ph = phoff + 56 * i;
        if u32::from_le_bytes(head[ph..ph + 4].try_into().unwrap()) == 1 {
            head[ph + 32..ph + 40].fill(0); // … and filesz 0
        }
    }
    let small = Core::parse(&head, Path::new("x")).expect("headers and notes alone");
    assert_eq!(
        small.threads().len(),
        taken.file.parse().unwrap().threads().len()
    );
    assert!(
        small
            .segments()
            .iter()
            .all(|s| small.read(s.vaddr, 1).is_none())
    );
    for at in notes.clone().step_by(3) {
        let mut damaged = head.clone();
        damaged[at] ^= 0xff;
        let _ = Core::parse(&damaged, Path::new("x"));
    }
    for cut in notes.step_by(97) {
        let err = Core::parse(&head[..cut], Path::new("x")).expect_err("cut notes");
        assert!(matches!(err, Error::Truncated { .. }), "{err}");
    }
}

#[test]
fn files_that_are_not_cores_are_refused() {
    let node = Node::System.program().expect("node on PATH");
    let err = CoreFile::open(&node)
        .expect("open")
        .parse()
        .expect_err("a binary is not a core");
    assert!(matches!(err, Error::NotCore { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is an ELF executable, not a core dump"),
        "{err}"
    );

    let dir = fixture::scratch("not-cores");
    let empty = dir.join("empty");
    fs::write(&empty, b"").expect("write");
    let text = dir.join("text");
    fs::write(&text, b"{\"snapshot\": {}}").expect("write");
    for (file, want) in [(&empty, "it is empty"), (&text, "no ELF magic")] {
        let err = CoreFile::open(file)
            .expect("open")
            .parse()
            .expect_err("not ELF");
        assert!(
            matches!(err, Error::NotElf { .. }) && err.to_string().contains(want),
            "{err}"
        );
    }
    let missing = CoreFile::open(dir.join("missing"))
        .err()
        .expect("no such file");
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn cores_of_other_machines_are_refused() {
    let bytes = fixture::gcore_of_sleep().file.bytes();
    let mut arm = bytes.to_vec();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes()); // e_machine: EM_AARCH64
    let mut elf32 = bytes.to_vec();
    elf32[4] = 1; // ELFCLASS32
    for (core, want) in [
        (&arm, "x is a core for ELF machine 183, not x86-64"),
        (&elf32, "x is a 32-bit ELF file, not x86-64"),
    ] {
        let err = Core::parse(core, Path::new("x")).expect_err("another machine");
        assert!(matches!(err, Error::NotX86_64 { .. }), "{err}");
        assert!(err.to_string().starts_with(want), "{err}");
    }
}
