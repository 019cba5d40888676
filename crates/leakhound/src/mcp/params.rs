//! The tools' arguments, with the descriptions clients show to the model.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SnapshotParams {
    /// Path of a .heapsnapshot or .heaptimeline file (gzip-compressed or not)
    pub snapshot: PathBuf,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PagedSnapshotParams {
    /// Path of a .heapsnapshot or .heaptimeline file
    pub snapshot: PathBuf,
    /// Rows per answer (default 10, at most 200)
    pub top: Option<usize>,
    /// `next` from the previous answer, for the following rows
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    #[default]
    Retained,
    Shallow,
    Count,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SummaryParams {
    /// Path of a .heapsnapshot or .heaptimeline file
    pub snapshot: PathBuf,
    /// Rows per answer (default 20, at most 200)
    pub top: Option<usize>,
    /// `next` from the previous answer, for the following rows
    pub cursor: Option<String>,
    /// Only classes whose name matches this regular expression
    pub class: Option<String>,
    /// Order of the classes (default: retained size, largest first)
    pub sort: Option<SortBy>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DiffParams {
    /// The earlier snapshot
    pub base: PathBuf,
    /// The later snapshot
    pub current: PathBuf,
    /// Rows per answer (default 20, at most 200), by size delta
    pub top: Option<usize>,
    /// `next` from the previous answer, for the following rows
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LeaksParams {
    /// Snapshots of one process, oldest first (baseline, target, final…): at least two
    #[schemars(length(min = 2))]
    pub snapshots: Vec<PathBuf>,
    /// Clusters of leaked objects described in full (default 5, at most 50; all are counted)
    pub top: Option<usize>,
    /// Objects a cluster needs to support a leak verdict (default 20)
    pub min_count: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ShowParams {
    /// Path of a .heapsnapshot file
    pub snapshot: PathBuf,
    /// The object, as `@ID` (DevTools' notation, as other answers print it) or `ID`
    pub object: String,
    /// Edges and retainers listed (default 10, at most 200)
    pub top: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RetainersParams {
    /// Path of a .heapsnapshot file
    pub snapshot: PathBuf,
    /// One object, as `@ID` or `ID` (or give class)
    pub object: Option<String>,
    /// Instead of one object: the largest instances of this class (by retained size)
    pub class: Option<String>,
    /// How many instances of the class (default 3, at most 20)
    pub instances: Option<usize>,
    /// Shortest retaining paths per object (default 3, at most 20)
    pub paths: Option<usize>,
    /// Never go through edges with these names (like DevTools' "ignore this retainer")
    #[serde(default)]
    pub ignore_edges: Vec<String>,
    /// Never go through these objects (`@ID`)
    #[serde(default)]
    pub ignore_nodes: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CaptureParams {
    /// A running Node process (its inspector is opened with SIGUSR1 and closed again)
    pub pid: Option<u32>,
    /// Or the address of an open inspector, HOST:PORT
    pub inspect: Option<String>,
    /// Where to write (mode 0600); default node-PID-TIME.heapsnapshot in the server's directory
    pub output: Option<PathBuf>,
    /// Take the snapshot even when it does not fit in the app's free memory (the kernel may
    /// kill the app)
    #[serde(default)]
    pub force: bool,
    /// Instead of a snapshot: run the sampling heap profiler this many seconds (at most 300)
    pub sample_allocations_seconds: Option<u64>,
    /// Instead of a snapshot: a core dump with gdb's gcore (needs pid), for a process whose
    /// inspector cannot answer; read it with the `core` tool
    #[serde(default)]
    pub core: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HuntParams {
    /// The app's command line, e.g. ["node", "server.js"]; leakhound starts it with the inspector
    /// on a loopback port and stops it at the end
    pub command: Vec<String>,
    /// URLs to send load to (round-robin); a path such as `/orders` goes to the app's port
    #[serde(default)]
    pub url: Vec<String>,
    /// Requests per round (default 500, at most 20000)
    pub requests: Option<u64>,
    /// Load rounds after the baseline, each followed by a snapshot (default 2, at most 4)
    pub rounds: Option<u32>,
    /// The whole hunt's time limit in seconds (default 300, at most 1800); the app is stopped
    /// when it runs out
    pub time_limit_seconds: Option<u64>,
    /// Clusters described in full (default 5, at most 50)
    pub top: Option<usize>,
    /// The run directory (snapshots, report.json, report.html); default: a new one in the
    /// server's directory
    pub out: Option<PathBuf>,
    /// Do not record native allocations
    #[serde(default)]
    pub no_native: bool,
    /// The directory the app starts in (default: the server's); `out` is relative to it
    pub cwd: Option<PathBuf>,
    /// HTTP method of the load (default GET)
    pub method: Option<String>,
    /// Request headers, each `Name: value`
    #[serde(default)]
    pub headers: Vec<String>,
    /// The request body
    pub body: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WatchParams {
    /// The process
    pub pid: u32,
    /// How long to watch, in seconds (default 3, the shortest that gives a verdict; at most 60)
    pub seconds: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MapsParams {
    /// The process
    pub pid: u32,
    /// Groups (or changes) listed (default and at most 20)
    pub top: Option<usize>,
    /// Save this sample of the map to FILE, to compare with later
    pub save: Option<PathBuf>,
    /// Compare with a sample saved earlier
    pub diff: Option<PathBuf>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CoreParams {
    /// A core dump of a Node process (gcore's or the kernel's; `capture` with `core: true` takes one)
    pub core: PathBuf,
    /// The node binary that wrote it, when not at the path the core names
    pub node: Option<PathBuf>,
    /// A later core of the same process, to see which classes grew
    pub diff: Option<PathBuf>,
    /// Classes listed (default and at most 20)
    pub top: Option<usize>,
}
