//! `leakhound diff`: the Comparison view, with retained growth and owners of generic classes.

use std::io::Write;

use heapsnap::code::{Original, Positions};
use heapsnap::diff::DiffRow;
use heapsnap::diff::{generic_owners, is_generic};
use heapsnap::leaks::{Census, Owner, SourceLocation};
use serde::Serialize;
use std::collections::HashMap;

use crate::cli::DiffArgs;
use crate::load::{Loaded, load, load_with};
use crate::output;
use crate::report::{self, Page, Table};
use crate::sources::Disk;

#[derive(Serialize)]
struct DiffJson<'a> {
    base: &'a str,
    current: &'a str,
    classes: &'a [ClassDiff],
    /// Findings in the current snapshot.
    findings: &'a [heapsnap::findings::Finding],
}

#[derive(Serialize)]
pub struct ClassDiff {
    #[serde(flatten)]
    devtools: DiffRow,
    /// The class's retained size (Summary view) in the base and the current snapshot.
    retained_before: u64,
    retained_after: u64,
    /// A class that names no code of the application (`(string)`, `Object`, `Array`, …).
    generic: bool,
    /// For generic classes: the collection that holds most of the new objects' bytes.
    owner: Option<Owner>,
    /// Where the script's source map says the class's `location` came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<Original>,
    /// `location` as people read it, for the page's table.
    #[serde(skip)]
    at: Option<SourceLocation>,
}

pub fn run(args: DiffArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.html {
        crate::output::check_file_path(path)?;
    }
    let timings = args.output.timings;
    let current = load(&args.current, timings)?;
    let base = load_with(&args.base, timings, Some(&current.analysis.interfaces))?;
    let base_name = base.name.clone();
    let sources = Disk::new(args.source_maps.enabled());
    let (classes, total) = classes(base, &current, args.top, &sources);
    let (cs, ca) = (&current.snapshot, &current.analysis);
    let mut found =
        heapsnap::findings::findings(cs, ca, &heapsnap::findings::Thresholds::default());
    found.map_positions(&sources);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        let doc = DiffJson {
            base: &base_name,
            current: &current.name,
            classes: &classes,
            findings: &found,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{} → {}", base_name, current.name)?;
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
    if let Some(path) = &args.html {
        let mut page = Page {
            command: "diff",
            title: format!("Comparison: {base_name} → {}", current.name),
            verdict: report::Verdict {
                level: "info",
                headline: {
                    let size: i64 = classes.iter().map(|c| c.devtools.size_delta).sum();
                    let shown = if args.top.is_some() { " shown" } else { "" };
                    format!(
                        "{} classes changed{shown}, by {} in all (shallow sizes of the objects new and deleted)",
                        output::count(classes.len() as u64),
                        output::signed_size(size)
                    )
                },
                next: vec![
                    "Sort by Size Delta or # Delta; classes of your own code point at the leak, generic ones (Object, (string)) at the collection that holds them (Owner)".into(),
                    "Three snapshots (baseline, target, final) separate a leak from a cache that fills once: `leakhound leaks A B C`".into(),
                ],
            },
            facts: vec![
                ("Base".into(), base_name.clone()),
                ("Current".into(), current.name.clone()),
            ],
            comparison: Some(table(&base_name, &current, &classes, total)),
            findings: found,
            commands: vec![("this comparison".into(), report::invocation())],
            ..Page::default()
        };
        report::write_file(path, &mut page)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The Comparison of `current` against `base` (loaded with `current`'s interfaces), with the
/// retained size of each class before and after, and the owner of generic classes' new
/// objects; the first `top` rows (by size delta), and how many rows there are in all.
/// Positions are given their originals through `sources`.
pub fn classes(
    base: Loaded,
    current: &Loaded,
    top: Option<usize>,
    sources: &Disk,
) -> (Vec<ClassDiff>, usize) {
    let (cs, ca) = (&current.snapshot, &current.analysis);
    let rows = heapsnap::diff::compare((&base.snapshot, &base.analysis), (cs, ca));
    let retained = |loaded: &Loaded| -> HashMap<(String, Option<heapsnap::Location>), u64> {
        heapsnap::summary(&loaded.snapshot, &loaded.analysis)
            .into_iter()
            .map(|r| ((r.name, r.location), r.retained_size))
            .collect()
    };
    let (before, after) = (retained(&base), retained(current));
    let census = [Census::new(
        &base.name,
        &base.snapshot,
        &base.analysis.class,
    )];
    drop(base);
    let shown = top.unwrap_or(rows.len()).min(rows.len());
    let owners = generic_owners(cs, ca, &census, &rows[..shown], sources);
    // Positions with their scripts' names, for the shown rows only.
    let located: Vec<heapsnap::Location> =
        rows[..shown].iter().filter_map(|r| r.location).collect();
    let mut positions = heapsnap::code::sources(cs, &located).into_iter();
    let total = rows.len();
    let classes = rows
        .into_iter()
        .take(shown)
        .map(|r| {
            let key = (r.name.clone(), r.location);
            let mut at = r.location.and_then(|_| positions.next());
            at.map_positions(sources);
            ClassDiff {
                original: at.as_ref().and_then(|l| l.original.clone()),
                at,
                retained_before: before.get(&key).copied().unwrap_or(0),
                retained_after: after.get(&key).copied().unwrap_or(0),
                generic: is_generic(&r.name),
                owner: owners.get(&r.name).cloned(),
                devtools: r,
            }
        })
        .collect();
    (classes, total)
}

/// The Comparison as the HTML report's table (the report keeps its first rows).
pub fn table(base: &str, current: &Loaded, classes: &[ClassDiff], total: usize) -> Table {
    let columns = [
        ("Class", "text"),
        ("Defined at", "text"),
        ("# New", "count"),
        ("# Deleted", "count"),
        ("# Delta", "signed_count"),
        ("Alloc. Size", "size"),
        ("Freed Size", "size"),
        ("Size Delta", "signed_size"),
        ("Retained Δ", "signed_size"),
        ("Owner", "text"),
    ];
    let rows = classes
        .iter()
        .take(report::MAX_ROWS)
        .map(|c| {
            let d = &c.devtools;
            let owner = c
                .owner
                .as_ref()
                .map_or(String::new(), |o| format!("{} ({})", o.holder, o.class));
            let at = c.at.as_ref().map_or(String::new(), crate::output::location);
            use serde_json::json;
            vec![
                // As DevTools names them (`Detached Node / X` apart from `Node / X`).
                json!(d.name),
                json!(at),
                json!(d.new_count),
                json!(d.deleted_count),
                json!(d.count_delta),
                json!(d.alloc_size),
                json!(d.freed_size),
                json!(d.size_delta),
                json!(c.retained_after as i64 - c.retained_before as i64),
                json!(owner),
            ]
        })
        .collect();
    Table {
        title: "Comparison".into(),
        caption: format!(
            "{base} → {}: objects new and deleted per class, matched by id, as DevTools' Comparison view counts them",
            current.name
        ),
        columns: columns.iter().map(|&(t, k)| (t.to_owned(), k)).collect(),
        rows,
        total_rows: total,
    }
}

fn signed_count(n: i64) -> String {
    if n < 0 {
        format!("-{}", output::count(n.unsigned_abs()))
    } else {
        format!("+{}", output::count(n as u64))
    }
}
