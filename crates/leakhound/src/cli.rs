//! Command-line flags (clap derive types live here only) and their conversion to settings.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "leakhound",
    version,
    about = "Find memory leaks in Node.js and V8 processes"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Summary view of a heap snapshot: objects grouped by class, as Chrome DevTools shows them
    Summary(SummaryArgs),
    /// The Statistics view of a heap snapshot: where the heap's bytes go, by category
    Stats(StatsArgs),
    /// Compare two snapshots: the DevTools Comparison view, plus retained-size growth and who
    /// holds the growth of generic classes
    Diff(DiffArgs),
    /// Find leaked objects in a series of snapshots of one process and name who holds them
    Leaks(LeaksArgs),
    /// The shortest retaining paths of one object (@ID) or of a class's largest objects
    Retainers(RetainersArgs),
    /// One object: class, sizes, distance, dominators, edges, retainers, source location
    Show(ShowArgs),
    /// Suspicious patterns in a snapshot: handle leaks, dangling edges, huge collections,
    /// duplicate strings, listener and closure build-ups, shared contexts
    Findings(FindingsArgs),
}

/// Output options every command shares.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Print the time of each phase on stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The earlier snapshot
    pub base: PathBuf,
    /// The later snapshot
    pub current: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Show only the first N classes (by size delta)
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct LeaksArgs {
    /// Snapshots of one process, oldest first: BASELINE TARGET [MORE…]
    #[arg(required = true, num_args = 2.., value_name = "SNAPSHOT")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Show the N largest clusters
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// A cluster needs at least this many leaked objects to count for the verdict
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub min_count: u64,
}

#[derive(Debug, clap::Args)]
pub struct RetainersArgs {
    /// A heap snapshot
    pub file: PathBuf,
    /// The object, as `@ID` (DevTools' notation) or `ID`
    #[arg(required_unless_present = "class", value_name = "@ID")]
    pub object: Option<String>,
    /// Instead of one object: the largest instances of this class (by retained size)
    #[arg(long, value_name = "NAME", conflicts_with = "object")]
    pub class: Option<String>,
    /// How many objects of the class
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub instances: usize,
    /// Paths per object
    #[arg(short = 'k', long, value_name = "K", default_value_t = 5)]
    pub paths: usize,
    /// Never go through an edge with this name (repeatable), like DevTools' "ignore this retainer"
    #[arg(long, value_name = "NAME")]
    pub ignore_edge: Vec<String>,
    /// Never go through this node (repeatable)
    #[arg(long, value_name = "@ID")]
    pub ignore_node: Vec<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A heap snapshot
    pub file: PathBuf,
    /// The object, as `@ID` or `ID`
    #[arg(value_name = "@ID")]
    pub object: String,
    /// Edges and retainers listed
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct FindingsArgs {
    /// A heap snapshot
    pub file: PathBuf,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options every snapshot-reading command shares.
#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    /// A .heapsnapshot or .heaptimeline file, gzip-compressed or not; `-` reads standard input
    pub file: PathBuf,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Print the time of each phase on stderr
    #[arg(long)]
    pub timings: bool,
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Show only the first N classes
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Order of the classes
    #[arg(long, value_enum, default_value_t = SortKey::Retained)]
    pub sort: SortKey,
    /// Keep only classes whose name matches this regular expression
    #[arg(long, value_name = "REGEX")]
    pub class: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Retained,
    Shallow,
    Count,
    Name,
}
