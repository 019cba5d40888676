//! `leakhound summary`: the Summary view.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;

use crate::cli::{SortKey, SummaryArgs};
use crate::load::{load, timing};
use crate::output;
use heapsnap::code::Positions;

pub fn run(args: SummaryArgs) -> anyhow::Result<()> {
    let class_filter = args
        .class
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--class is not a valid regular expression")?;
    let settings = &args.snapshot;
    let loaded = load(&settings.file, settings.timings)?;
    let (s, a) = (&loaded.snapshot, &loaded.analysis);
    // Independent passes over the analysed graph, side by side.
    let start = Instant::now();
    let ((mut classes, statistics), mut found) = rayon::join(
        || rayon::join(|| heapsnap::summary(s, a), || heapsnap::statistics(s, a)),
        || heapsnap::findings::findings(s, a, &heapsnap::findings::Thresholds::default()),
    );
    timing(
        settings.timings,
        "aggregation ∥ statistics ∥ findings",
        start,
    );

    if let Some(re) = &class_filter {
        classes.retain(|c| re.is_match(&c.name));
    }
    match args.sort {
        SortKey::Retained => {} // Already in this order.
        SortKey::Shallow => classes.sort_by_key(|c| std::cmp::Reverse(c.shallow_size)),
        SortKey::Count => classes.sort_by_key(|c| std::cmp::Reverse(c.count)),
        SortKey::Name => classes.sort_by(|x, y| x.name.cmp(&y.name)),
    }
    let shown = args.top.unwrap_or(classes.len()).min(classes.len());
    classes.truncate(shown);
    if args.source_maps.enabled() {
        let sources = crate::sources::Disk::default();
        originals(s, &mut classes, &sources);
        found.map_positions(&sources);
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if settings.json {
        let doc = super::SnapshotJson::new(&loaded, statistics, Some(classes), Some(found));
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} nodes, {} edges, total {}",
            loaded.name,
            output::count(s.node_count() as u64),
            output::count(s.edge_count() as u64),
            output::size(a.total_size)
        )?;
        let rows: Vec<Vec<String>> = classes
            .iter()
            .map(|c| {
                // DevTools' key: the script id, not its name, which would not fit; the
                // original source after it.
                let name = match c.location {
                    Some(l) => output::position(
                        output::shorten(
                            &format!(
                                "{} @{}:{}:{}",
                                c.name,
                                l.script_id,
                                l.line + 1,
                                l.column + 1
                            ),
                            80,
                        ),
                        c.original.as_ref(),
                    ),
                    None => output::shorten(&c.name, 80),
                };
                vec![
                    name,
                    output::distance(c.distance),
                    output::count(c.count),
                    output::size(c.shallow_size),
                    output::size(c.retained_size),
                    percent(c.retained_size, a.total_size),
                ]
            })
            .collect();
        output::table(
            &mut out,
            &["Class", "Distance", "Count", "Shallow", "Retained", "%"],
            &rows,
        )?;
        if !found.is_empty() {
            writeln!(out)?;
            super::findings::print(&mut out, &found)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / total as f64)
    }
}

/// Sets each row's original position (source maps) from its location; give it the rows shown
/// only: script names are looked up for them alone.
pub fn originals(
    s: &heapsnap::Snapshot,
    classes: &mut [heapsnap::ClassRow],
    sources: &crate::sources::Disk,
) {
    let located: Vec<heapsnap::Location> = classes.iter().filter_map(|c| c.location).collect();
    let mut positions = heapsnap::code::sources(s, &located);
    positions.map_positions(sources);
    let rows = classes.iter_mut().filter(|c| c.location.is_some());
    for (c, l) in rows.zip(positions) {
        c.original = l.original;
    }
}
