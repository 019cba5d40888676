//! Reading ELF core dumps of Node.js processes: the foundation of `leakhound core`.
//!
//! What it reads:
//!
//! - the core ([`core`]): memory segments (`PT_LOAD`), read zero-copy through a sorted index
//!   ([`Core::read`] is a binary search and a slice), threads and their registers
//!   (`NT_PRSTATUS`), file mappings (`NT_FILE`), the process (`NT_PRPSINFO`), the auxiliary
//!   vector. Cores from gdb's `gcore` (every mapping written, PROT_NONE ones as zeros) and from
//!   the kernel (sparse, left-out pages at `filesz` < `memsz`) alike; a byte the core does not
//!   hold is absent (`None`), never zero.
//! - the binary ([`binary`]): the node executable or `libnode.so` among the mappings, its load
//!   bias, and whether the file on disk is the build that wrote the core (GNU build id, or when
//!   the core lacks that page, the layout of the mappings and the metadata values).
//! - the metadata ([`metadata`]): every `v8dbg_*` value (from the file) and `nodedbg_*` value
//!   (from the core, where startup code wrote them), indexed by class and field, type name,
//!   frame type.
//! - the object census ([`census`]): how many objects of each class the V8 heap holds, and
//!   their shallow size, counted where they are by walking V8's pages object by object,
//!   named as DevTools' Summary names them (`Order` with its script and line), and the growth
//!   between two cores ([`census::diff`]).
//! - the stacks ([`stack`], [`stacks`]): every thread's frames, native ones named from the
//!   binaries' symbols and unwound by their CFI, V8's and JS ones by V8's frame pointers, with
//!   each JS function's name, script and line.
//!
//! What it refuses, with an error that says what to do ([`Error`]): a file that is not an ELF
//! core, a core for another machine than x86-64, a truncated or damaged core, a binary of
//! another build, a binary without V8 postmortem metadata, and builds with pointer compression
//! (`TaggedSize` ≠ 8: official Node builds have it off). No input makes it panic; `fuzz/`
//! feeds it arbitrary bytes.
//!
//! ```no_run
//! # fn main() -> v8core::Result<()> {
//! let file = v8core::CoreFile::open("core.1234")?;
//! let core = file.parse()?;
//! let node = v8core::NodeBinary::find(&core, None)?; // or Some(path) for --node
//! let meta = v8core::Metadata::load(&core, &node)?;
//! let map_type = meta.require("MAP_TYPE", meta.instance_type("MAP_TYPE"))?;
//! # let _ = map_type; Ok(()) }
//! ```
//!
//! Invariant: no I/O but the files it is given — the core, the binary passed to it, and the
//! regular files the core names as the process's executable or `libnode.so` (and, for the
//! stacks, as its other libraries, with their separate debug files under `/usr/lib/debug`
//! when installed) — and it never writes anything. Files are mapped read-only.

pub mod binary;
pub mod census;
pub mod core;
pub mod error;
mod heap;
mod js;
pub mod metadata;
mod names;
pub mod stack;
mod symbols;
mod unwind;

pub use binary::{BuildId, Identity, MappedImage, NodeBinary};
pub use core::{Core, CoreFile, FileMapping, Flags, Process, Registers, Segment, Thread};
pub use error::{Error, Result};
pub use metadata::Metadata;
pub use stack::{Frame, FrameKind, LineKind, ThreadStack, stacks};
