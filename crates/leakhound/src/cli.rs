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
