//! One file per subcommand.

mod capture;
mod core_dump;
pub mod diff;
pub mod findings;
mod hunt;
pub mod inspect;
pub mod leaks;
pub mod maps;
mod native;
mod stats;
pub mod summary;
mod watch;

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{Args, Command};
use crate::load::Loaded;

/// The `--json` document of the snapshot commands; later commands and external scripts rely on
/// its shape (documented in README.md). `classes` is left out by `stats`.
#[derive(Serialize)]
pub struct SnapshotJson<'a> {
    pub file: &'a str,
    pub node_count: usize,
    pub edge_count: usize,
    pub total_size: u64,
    pub statistics: heapsnap::Statistics,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<heapsnap::ClassRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<heapsnap::findings::Finding>>,
}

impl SnapshotJson<'_> {
    pub fn new(
        loaded: &Loaded,
        statistics: heapsnap::Statistics,
        classes: Option<Vec<heapsnap::ClassRow>>,
        findings: Option<Vec<heapsnap::findings::Finding>>,
    ) -> SnapshotJson<'_> {
        SnapshotJson {
            file: &loaded.name,
            node_count: loaded.snapshot.node_count(),
            edge_count: loaded.snapshot.edge_count(),
            total_size: loaded.analysis.total_size,
            statistics,
            findings,
            classes,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let done = match args.command {
        Command::Summary(args) => summary::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Leaks(args) => return leaks::run(args),
        Command::Retainers(args) => inspect::retainers(args),
        Command::Show(args) => inspect::show(args),
        Command::Findings(args) => findings::run(args),
        Command::Capture(args) => capture::run(args),
        Command::Hunt(args) => return hunt::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Maps(args) => maps::run(args),
        Command::Native(args) => return native::run(args),
        Command::Core(args) => core_dump::run(args),
        Command::Mcp(args) => crate::mcp::run(args),
    };
    done.map(|()| ExitCode::SUCCESS)
}
