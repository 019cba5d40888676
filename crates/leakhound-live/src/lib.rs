//! Capture memory data from live Node.js processes.
//!
//! - [`cdp`]: a Chrome DevTools Protocol session over the inspector's WebSocket.
//! - [`app`]: the app a hunt runs against: started or attached to, readiness, load command,
//!   memory recorder, stop.
//! - [`attach`]: find (or open, with SIGUSR1) the inspector of a process by PID, and close it.
//! - [`capture`]: heap snapshots streamed to a file, heap usage, the sampling heap profiler.
//! - [`gcore`]: a core dump of a live process (gdb's gcore), for when its inspector cannot
//!   answer.
//! - [`headroom`]: whether a snapshot fits in the app's memory, and why an app died.
//! - [`procfs`]: the bits of `/proc` we read: listening sockets, memory counters.
//! - [`load`]: a keep-alive HTTP load driver with bounded concurrency.
//! - [`native`]: native allocation tracking (the preloaded tracker's recordings: read, named,
//!   analysed).

pub mod app;
pub mod attach;
pub mod capture;
pub mod cdp;
mod error;
pub mod gcore;
pub mod headroom;
pub mod load;
pub mod memory;
pub mod native;
pub mod procfs;
pub mod sampler;
pub mod smaps;
pub mod timeline;

pub use error::{Error, Shortfall};
