//! `leakhound`: find memory leaks in Node.js and V8 processes.
//!
//! The binary is glue: it parses flags into settings, runs one command, prints. The analyses live
//! in the `heapsnap` crate.

mod cli;
mod commands;
mod guard;
mod huge;
mod live;
mod load;
mod mcp;
mod metrics;
mod native;
mod output;
mod report;
mod sourcemaps;
mod sources;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: huge::HugePages = huge::HugePages;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`leakhound summary … | head`) is not a failure.
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            if leakhound_live::cdp::interrupted() {
                // As a shell reports SIGINT.
                return ExitCode::from(130);
            }
            // 1 is `hunt`'s "leak suspected".
            ExitCode::from(2)
        }
    }
}
