//! The object census of a Node core, for the benchmark (`bench/core-census.sh`) and for trying
//! the library by hand until `leakhound core` prints it.
//!
//! ```text
//! cargo run --release -p v8core --example census -- CORE [--node BINARY] [--top N]
//! ```
//!
//! Prints each phase's wall time and the largest classes to stdout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (mut core, mut node, mut top) = (None, None, 20usize);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--node") => node = args.next().map(PathBuf::from),
            Some("--top") => {
                top = args
                    .next()
                    .and_then(|n| n.to_str()?.parse().ok())
                    .unwrap_or(top)
            }
            _ => core = Some(PathBuf::from(arg)),
        }
    }
    let Some(core) = core else {
        eprintln!("usage: census CORE [--node BINARY] [--top N]");
        return ExitCode::from(2);
    };
    match run(&core, node.as_deref(), top) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &std::path::Path, node: Option<&std::path::Path>, top: usize) -> v8core::Result<()> {
    let start = Instant::now();
    let lap = |what: &str, since: &mut Instant| {
        println!("{what:<10} {:>8.3} s", since.elapsed().as_secs_f64());
        *since = Instant::now();
    };
    let mut t = Instant::now();
    let file = v8core::CoreFile::open(path)?;
    let core = file.parse()?;
    lap("parse", &mut t);
    let binary = v8core::NodeBinary::find(&core, node)?;
    let meta = v8core::Metadata::load(&core, &binary)?;
    lap("metadata", &mut t);
    let census = v8core::census::census(&core, &meta, &|_, _| {})?;
    lap("census", &mut t);
    println!("{:<10} {:>8.3} s", "total", start.elapsed().as_secs_f64());
    println!(
        "core {} bytes, heap scanned {} bytes, {} objects, {} bytes in {} classes",
        file.bytes().len(),
        census.scanned_bytes,
        census.objects,
        census.bytes,
        census.rows.len()
    );
    // Memory: the core's pages are mapped (RssFile); what the census allocates is RssAnon.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if ["VmHWM:", "RssAnon:", "RssFile:"]
                .iter()
                .any(|k| line.starts_with(k))
            {
                println!("{}", line.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    for w in &census.warnings {
        println!("warning: {w}");
    }
    for row in census.rows.iter().take(top) {
        let at = row
            .location
            .as_ref()
            .map(|l| format!(" {}:{}:{}", l.script, l.line, l.column))
            .unwrap_or_default();
        println!("{:>12} {:>14}  {}{at}", row.count, row.size, row.name);
    }
    Ok(())
}
