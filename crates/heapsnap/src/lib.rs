//! heapsnap: read V8 heap snapshots (`.heapsnapshot`, `.heaptimeline`) and reproduce Chrome
//! DevTools' analyses exactly: class names, distances, dominators, retained sizes, the Summary
//! and Statistics views.
//!
//! ```no_run
//! let mut snapshot = heapsnap::read_path("app.heapsnapshot".as_ref())?;
//! let analysis = heapsnap::analyze(&mut snapshot);
//! for row in heapsnap::summary(&snapshot, &analysis).iter().take(10) {
//!     println!("{} {} {}", row.name, row.count, row.retained_size);
//! }
//! # Ok::<(), heapsnap::ReadError>(())
//! ```
//!
//! No I/O but `Read`, no processes, no terminal: the `leakhound` binary does those.

pub mod analysis;
pub mod bits;
pub mod code;
pub mod diff;
pub mod dominators;
mod error;
pub mod excerpt;
pub mod findings;
pub mod graph;
mod handle;
pub mod leaks;
pub mod model;
pub mod paths;
mod read;
pub mod testing;
pub mod view;

pub use analysis::{
    Analysis, ClassRow, Interfaces, Statistics, analyze, analyze_with, statistics, summary,
};
pub use error::{ErrorKind, ReadError};
pub use model::{EdgeCol, EdgeIdx, Location, NodeCol, NodeId, NodeIdx, Snapshot, StrId};
pub use read::{read, read_path, read_with_chunk_size};
