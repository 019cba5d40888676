//! One file per subcommand.

mod stats;
mod summary;

use crate::cli::{Args, Command};

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Summary(args) => summary::run(args),
        Command::Stats(args) => stats::run(args),
    }
}
