//! `leakhound maps`: the pmap view of a process, grouped and named, and what changed since a
//! saved one.

use std::io::Write;

use anyhow::Context;
use leakhound_live::capture;
use leakhound_live::memory::Breakdown;
use leakhound_live::procfs::Process;
use leakhound_live::smaps::{self, MapsSample};

use crate::cli::MapsArgs;
use crate::output;

pub fn run(args: MapsArgs) -> anyhow::Result<()> {
    // The earlier sample is read first: `--save F --diff F` compares with F's old content.
    let before = args.diff.as_deref().map(read_sample).transpose()?;
    let process = Process::new(args.pid)?;
    let regions = smaps::read(&process)?;
    let now = MapsSample::of(args.pid, &regions);
    if let Some(path) = &args.save {
        capture::write_private(path, |out| {
            serde_json::to_writer_pretty(out, &now).map_err(|e| leakhound_live::Error::Io {
                path: path.clone(),
                source: e.into(),
            })
        })?;
        eprintln!("saved to {}", path.display());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match (&args.diff, before) {
        (Some(path), Some(before)) => {
            if before.pid != now.pid {
                eprintln!(
                    "warning: {} was saved from PID {}, this is PID {}",
                    path.display(),
                    before.pid,
                    now.pid
                );
            }
            let changes = smaps::diff(&before, &now);
            if args.json {
                serde_json::to_writer_pretty(&mut out, &changes)?;
                writeln!(out)?;
            } else {
                let seconds = now.unix_ms.saturating_sub(before.unix_ms) as f64 / 1000.0;
                writeln!(
                    out,
                    "PID {}: changes over {seconds:.0} s since {}",
                    now.pid,
                    path.display()
                )?;
                write_changes(&mut out, &changes, args.top)?;
            }
        }
        _ if args.json => {
            serde_json::to_writer_pretty(&mut out, &now)?;
            writeln!(out)?;
        }
        _ => {
            write_groups(&mut out, &now, &smaps::breakdown(&regions), args.top)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The `top` largest changes of a maps diff, as a table.
pub fn write_changes(
    out: &mut impl Write,
    changes: &[smaps::Change],
    top: usize,
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .take(top)
        .map(|c| {
            vec![
                output::shorten(&c.name, 60),
                c.component.label().to_owned(),
                format!("{:?}", c.status).to_lowercase(),
                output::size(c.rss_before),
                output::size(c.rss_after),
                output::signed_size(c.rss_delta),
                output::signed_size(c.private_dirty_delta),
            ]
        })
        .collect();
    output::table(
        out,
        &[
            "group",
            "component",
            "change",
            "rss before",
            "rss after",
            "Δ rss",
            "Δ private dirty",
        ],
        &rows,
    )
}

/// The breakdown of RSS, then the `top` largest groups of `sample`, as a table.
pub fn write_groups(
    out: &mut impl Write,
    sample: &MapsSample,
    b: &Breakdown,
    top: usize,
) -> std::io::Result<()> {
    writeln!(
        out,
        "PID {}: RSS {} = V8 heap {} + malloc heap {} + other anonymous {} + file-backed {} + stacks {}",
        sample.pid,
        output::size(b.total()),
        output::size(b.v8_heap),
        output::size(b.malloc_heap),
        output::size(b.other_anon),
        output::size(b.file_backed),
        output::size(b.stacks),
    )?;
    let rows: Vec<Vec<String>> = sample
        .groups
        .iter()
        .take(top)
        .map(|g| {
            vec![
                output::shorten(&g.name, 60),
                g.component.label().to_owned(),
                output::count(u64::from(g.regions)),
                output::size(g.size),
                output::size(g.rss),
                output::size(g.private_dirty),
                output::size(g.swap),
            ]
        })
        .collect();
    output::table(
        out,
        &[
            "group",
            "component",
            "regions",
            "virtual",
            "rss",
            "private dirty",
            "swap",
        ],
        &rows,
    )
}

fn read_sample(path: &std::path::Path) -> anyhow::Result<MapsSample> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a sample saved by `leakhound maps --save`",
            path.display()
        )
    })
}
