//! `leakhound findings`, and the findings section that `summary`, `diff` and `leaks` print.

use std::io::Write;

use heapsnap::code::Positions;
use heapsnap::findings::{Finding, Thresholds, findings};
use serde::Serialize;

use crate::cli::FindingsArgs;
use crate::load::load;

#[derive(Serialize)]
struct FindingsJson<'a> {
    file: &'a str,
    findings: Vec<Finding>,
}

pub fn run(args: FindingsArgs) -> anyhow::Result<()> {
    let loaded = load(&args.file, args.output.timings)?;
    let mut found = findings(&loaded.snapshot, &loaded.analysis, &Thresholds::default());
    found.map_positions(&crate::sources::Disk::new(args.source_maps.enabled()));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(
            &mut out,
            &FindingsJson {
                file: &loaded.name,
                findings: found,
            },
        )?;
        writeln!(out)?;
    } else if found.is_empty() {
        writeln!(out, "{}: no findings", loaded.name)?;
    } else {
        print(&mut out, &found)?;
    }
    out.flush()?;
    Ok(())
}

/// The findings as a list: title, then what it means.
pub fn print(out: &mut impl Write, found: &[Finding]) -> std::io::Result<()> {
    writeln!(out, "Findings:")?;
    for f in found {
        writeln!(out, "  • {}", f.title)?;
        if let Some(l) = &f.location {
            writeln!(out, "    at {}", crate::output::location(l))?;
        }
        writeln!(out, "    {}", f.meaning)?;
    }
    Ok(())
}
