//! `leakhound leaks`: leaked objects across a series of snapshots, clustered, with owners.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use heapsnap::leaks::{Census, Cluster, Report, Settings};

use crate::cli::LeaksArgs;
use crate::load::{load, read, timing};
use crate::output;

#[derive(serde::Serialize)]
pub struct LeaksJson {
    #[serde(flatten)]
    pub report: Report,
    /// Findings in the last snapshot.
    pub findings: Vec<heapsnap::findings::Finding>,
}

pub fn run(args: LeaksArgs) -> anyhow::Result<()> {
    let settings = Settings {
        top: args.top,
        min_count: args.min_count,
    };
    let found = analyse(&args.files, &settings, args.output.timings)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        print(&mut out, &found, args.min_count)?;
    }
    out.flush()?;
    Ok(())
}

/// The leak report and the last snapshot's findings for `files`, oldest first.
pub fn analyse(files: &[PathBuf], settings: &Settings, timings: bool) -> anyhow::Result<LeaksJson> {
    let (last, earlier_files) = files.split_last().expect("at least two snapshots");
    // Earlier snapshots are reduced to a census one at a time, so at most one full snapshot
    // is in memory besides the final one's analysis.
    let mut earlier = Vec::with_capacity(earlier_files.len());
    for path in earlier_files {
        let (name, mut s) = read(path, timings)?;
        let start = Instant::now();
        let class = heapsnap::analysis::class_names(&mut s);
        earlier.push(Census::new(&name, &s, &class));
        timing(timings, "census", start);
    }
    let loaded = load(last, timings)?;
    let start = Instant::now();
    let report = heapsnap::leaks::find(
        &earlier,
        (&loaded.snapshot, &loaded.analysis),
        &loaded.name,
        settings,
    );
    timing(timings, "leak analysis", start);
    let findings = heapsnap::findings::findings(
        &loaded.snapshot,
        &loaded.analysis,
        &heapsnap::findings::Thresholds::default(),
    );
    Ok(LeaksJson { report, findings })
}

/// The human report: verdict, clusters, growth, findings.
pub fn print(out: &mut impl Write, found: &LeaksJson, min_count: u64) -> std::io::Result<()> {
    print_report(out, &found.report, min_count)?;
    if !found.findings.is_empty() {
        writeln!(out)?;
        super::findings::print(out, &found.findings)?;
    }
    Ok(())
}

fn print_report(out: &mut impl Write, r: &Report, min_count: u64) -> std::io::Result<()> {
    let verdict = if r.leak_suspected {
        "LEAK SUSPECTED"
    } else {
        "no leak suspected"
    };
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(out, "{verdict}: {}", r.snapshots.join(" → "))?;
    writeln!(
        out,
        "{} objects new since the baseline and still alive; {} leaked objects in {} clusters, retaining {}",
        output::count(r.candidate_count),
        output::count(r.leaked_count),
        output::count(r.cluster_count as u64),
        output::size(r.leaked_retained_size),
    )?;
    // Clusters too small for a verdict are listed only in --json.
    let (shown, small): (Vec<_>, Vec<_>) = r
        .clusters
        .iter()
        .enumerate()
        .partition(|(_, c)| c.count >= min_count || c.suspect);
    for (i, c) in shown {
        writeln!(out)?;
        print_cluster(out, i + 1, c)?;
    }
    if !small.is_empty() {
        let objects: u64 = small.iter().map(|(_, c)| c.count).sum();
        writeln!(
            out,
            "\n({} more of the top clusters have fewer than {min_count} objects ({} objects in all); see --json)",
            small.len(),
            output::count(objects)
        )?;
    }
    if !r.growing_classes.is_empty() {
        writeln!(out, "\nClasses growing in every snapshot:")?;
        for g in &r.growing_classes {
            let series: Vec<String> = g.counts.iter().map(|&n| output::count(n)).collect();
            writeln!(
                out,
                "  {}: {}",
                output::shorten(&g.class, 60),
                series.join(" → ")
            )?;
        }
    }
    if !r.growing_collections.is_empty() {
        writeln!(out, "\nCollections growing in every snapshot:")?;
        for g in &r.growing_collections {
            let series: Vec<String> = g
                .entries
                .iter()
                .map(|&n| output::count(u64::from(n)))
                .collect();
            writeln!(
                out,
                "  {} ({}) @{}: {} entries",
                g.name,
                g.class,
                g.id,
                series.join(" → ")
            )?;
        }
    }
    Ok(())
}

fn print_cluster(out: &mut impl Write, rank: usize, c: &Cluster) -> std::io::Result<()> {
    let mark = if c.suspect { "!" } else { " " };
    let what = if c.class == "Function" && !c.name.is_empty() {
        format!("Function {}()", c.name)
    } else {
        output::shorten(&c.class, 60)
    };
    writeln!(
        out,
        "{mark}#{rank} {} × {what} retaining {} (shallow {})",
        output::count(c.count),
        output::size(c.retained_size),
        output::size(c.shallow_size),
    )?;
    if let Some(o) = &c.owner {
        let series: Vec<String> = o
            .entries
            .iter()
            .map(|e| e.map_or("-".to_owned(), |n| output::count(u64::from(n))))
            .collect();
        let growth = if o.grew { "grew" } else { "did not grow" };
        write!(
            out,
            "   held by {} ({}, @{}): {growth}, entries {}",
            o.name,
            o.class,
            o.id,
            series.join(" → ")
        )?;
        if !o.functions.is_empty() {
            write!(
                out,
                "; a variable in the scope of {}",
                o.functions.join(", ")
            )?;
            if let Some(l) = &o.location {
                write!(out, " ({})", location(l))?;
            }
        }
        writeln!(out)?;
    }
    if let Some(l) = &c.location {
        writeln!(out, "   defined at {}", location(l))?;
    }
    if let Some(top) = c.allocation_stack.first() {
        writeln!(
            out,
            "   allocated in {} ({}:{}:{})",
            top.function, top.script, top.line, top.column
        )?;
    }
    let owner = c.owner.as_ref().map(|o| o.path_index);
    writeln!(out, "   {}", output::path(&c.path, owner))?;
    let counts: Vec<String> = c.class_counts.iter().map(|&n| output::count(n)).collect();
    writeln!(
        out,
        "   instances of {} per snapshot: {}",
        output::shorten(&c.class, 40),
        counts.join(" → ")
    )
}

pub fn location(l: &heapsnap::leaks::SourceLocation) -> String {
    match &l.script {
        Some(script) => format!("{script}:{}:{}", l.line, l.column),
        None => format!("script {} line {}:{}", l.script_id, l.line, l.column),
    }
}
