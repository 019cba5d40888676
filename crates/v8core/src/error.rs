//! The one error type of the crate. Every message names the file, says what was expected, and
//! what to do next; none ends with a period (the binary prints the chain).

use std::path::PathBuf;

/// Everything that can go wrong reading a core, finding its node binary and loading the metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or mapped.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file does not start like an ELF file.
    #[error("{} is not an ELF file ({what}): pass a core dump written by gcore or by the kernel", path.display())]
    NotElf { path: PathBuf, what: &'static str },
    /// An ELF file, but not a core (`e_type` is not `ET_CORE`).
    #[error(
        "{} is an ELF {kind}, not a core dump: pass the core (from gcore or the kernel) as the core, and the node binary with --node",
        path.display()
    )]
    NotCore { path: PathBuf, kind: &'static str },
    /// A core or binary for another machine, class or byte order.
    #[error("{} is {what}, not x86-64: only x86-64 Linux cores of Node are supported", path.display())]
    NotX86_64 { path: PathBuf, what: String },
    /// The headers or notes contradict themselves.
    #[error("{} is damaged: {what}", path.display())]
    Damaged { path: PathBuf, what: String },
    /// A header, note or segment ends past the end of the file.
    #[error(
        "{} is truncated: {what} ends at byte {needed} but the file has {size} bytes (the disk filled, or `ulimit -c` or a copy cut it): take the core again",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        what: String,
        needed: u64,
        size: u64,
    },
    /// The core names no file mapping that could be the program.
    #[error("{} maps no executable file: pass the node binary that wrote it with --node", core.display())]
    NoExecutable { core: PathBuf },
    /// The binary named by the core cannot be read here (another machine, a container's path).
    #[error(
        "the core was written by {}, which cannot be read here ({source}): pass the exact binary with --node",
        mapped.display()
    )]
    BinaryUnreadable {
        mapped: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The binary's GNU build id differs from the one of the image mapped in the core.
    #[error(
        "the core was written by {} with build id {core_id}; {} has {file_id}: pass the exact binary with --node",
        mapped.display(),
        file.display()
    )]
    BuildIdMismatch {
        mapped: PathBuf,
        core_id: String,
        file: PathBuf,
        file_id: String,
    },
    /// No build id to compare, and something else showed that the binary is not the one.
    #[error(
        "the core was written by {}; {} is another build ({what}): pass the exact binary with --node",
        mapped.display(),
        file.display()
    )]
    BinaryMismatch {
        mapped: PathBuf,
        file: PathBuf,
        what: String,
    },
    /// No `v8dbg_*` symbol in `.dynsym` or `.symtab`.
    #[error(
        "{} has no V8 postmortem metadata (no v8dbg_* symbols): either the core is not of a Node.js process, or this binary was built without postmortem support; pass the node binary that wrote the core with --node",
        binary.display()
    )]
    NoMetadata { binary: PathBuf },
    /// `TaggedSize` is not 8: tagged slots are 32-bit offsets from a cage base.
    #[error(
        "pointer compression is on in this build ({}: TaggedSize = {tagged_size}); only official Node builds without it are supported",
        binary.display()
    )]
    PointerCompression { binary: PathBuf, tagged_size: i64 },
    /// A value the reader needs is not exported by this build.
    #[error(
        "{} lacks the V8 metadata value {name}: this Node version is not supported yet",
        binary.display()
    )]
    MissingMetadata { binary: PathBuf, name: String },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
