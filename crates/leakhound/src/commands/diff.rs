//! `leakhound diff`: the Comparison view, with retained growth and owners of generic classes.

use std::io::Write;

use heapsnap::diff::DiffRow;
use heapsnap::diff::{generic_owners, is_generic};
use heapsnap::leaks::{Census, Owner};
use serde::Serialize;
use std::collections::HashMap;

use crate::cli::DiffArgs;
use crate::load::{load, load_with};
use crate::output;

#[derive(Serialize)]
struct DiffJson<'a> {
    base: &'a str,
    current: &'a str,
    classes: Vec<ClassDiff>,
    /// Findings in the current snapshot.
    findings: Vec<heapsnap::findings::Finding>,
}

#[derive(Serialize)]
struct ClassDiff {
    #[serde(flatten)]
    devtools: DiffRow,
    /// The class's retained size (Summary view) in the base and the current snapshot.
    retained_before: u64,
    retained_after: u64,
    /// A class that names no code of the application (`(string)`, `Object`, `Array`, …).
    generic: bool,
    /// For generic classes: the collection that holds most of the new objects' bytes.
    owner: Option<Owner>,
}

pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    let timings = args.output.timings;
    let current = load(&args.current, timings)?;
    let base = load_with(&args.base, timings, Some(&current.analysis.interfaces))?;
    let (cs, ca) = (&current.snapshot, &current.analysis);
    let rows = heapsnap::diff::compare((&base.snapshot, &base.analysis), (cs, ca));

    let retained =
        |loaded: &crate::load::Loaded| -> HashMap<(String, Option<heapsnap::Location>), u64> {
            heapsnap::summary(&loaded.snapshot, &loaded.analysis)
                .into_iter()
                .map(|r| ((r.name, r.location), r.retained_size))
                .collect()
        };
    let (before, after) = (retained(&base), retained(&current));
    let census = [Census::new(
        &base.name,
        &base.snapshot,
        &base.analysis.class,
    )];
    drop(base.snapshot);

    let shown = args.top.unwrap_or(rows.len()).min(rows.len());
    let owners = generic_owners(
        cs,
        ca,
        &census,
        &rows[..shown],
        &crate::sources::Disk::default(),
    );
    let classes: Vec<ClassDiff> = rows
        .into_iter()
        .take(shown)
        .map(|r| {
            let key = (r.name.clone(), r.location);
            ClassDiff {
                retained_before: before.get(&key).copied().unwrap_or(0),
                retained_after: after.get(&key).copied().unwrap_or(0),
                generic: is_generic(&r.name),
                owner: owners.get(&r.name).cloned(),
                devtools: r,
            }
        })
        .collect();

    let found = heapsnap::findings::findings(cs, ca, &heapsnap::findings::Thresholds::default());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        let doc = DiffJson {
            base: &base.name,
            current: &current.name,
            classes,
            findings: found,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} → {}", base.name, current.name)?;
        let rows: Vec<Vec<String>> = classes
            .iter()
            .map(|c| {
                let d = &c.devtools;
                let held = match &c.owner {
                    Some(o) => format!("held by {} ({})", o.name, o.class),
                    None => String::new(),
                };
                vec![
                    output::shorten(&d.name, 60),
                    output::count(d.new_count),
                    output::count(d.deleted_count),
                    signed_count(d.count_delta),
                    output::size(d.alloc_size),
                    output::size(d.freed_size),
                    output::signed_size(d.size_delta),
                    output::signed_size(c.retained_after as i64 - c.retained_before as i64),
                    held,
                ]
            })
            .collect();
        output::table(
            &mut out,
            &[
                "Class",
                "# New",
                "# Deleted",
                "# Delta",
                "Alloc. Size",
                "Freed Size",
                "Size Delta",
                "Retained Δ",
                "Owner",
            ],
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

fn signed_count(n: i64) -> String {
    if n < 0 {
        format!("-{}", output::count(n.unsigned_abs()))
    } else {
        format!("+{}", output::count(n as u64))
    }
}
