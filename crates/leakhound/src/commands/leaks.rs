//! `leakhound leaks`: leaked objects across a series of snapshots, clustered, with owners.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
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

/// Exit code 1 when a leak is suspected, as `hunt`'s: a CI gate can run either.
pub fn run(args: LeaksArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings {
        top: args.top,
        min_count: args.min_count,
        requests: Vec::new(),
    };
    let found = analyse(&args.files, &settings, args.output.timings)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        print(&mut out, &found, args.min_count, None)?;
    }
    out.flush()?;
    Ok(if found.report.leak_suspected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
        &crate::sources::Disk::default(),
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
/// The report as text. `js_only`: the JS heap's own verdict, when `found.report`'s stands for
/// more (a hunt's covers native memory too): then it is printed as `JS heap: …`.
pub fn print(
    out: &mut impl Write,
    found: &LeaksJson,
    min_count: u64,
    js_only: Option<bool>,
) -> std::io::Result<()> {
    print_report(out, &found.report, min_count, js_only)?;
    if !found.findings.is_empty() {
        writeln!(out)?;
        super::findings::print(out, &found.findings)?;
    }
    Ok(())
}

fn print_report(
    out: &mut impl Write,
    r: &Report,
    min_count: u64,
    js_only: Option<bool>,
) -> std::io::Result<()> {
    let scope = if js_only.is_some() { "JS heap: " } else { "" };
    let verdict = if js_only.unwrap_or(r.leak_suspected) {
        "LEAK SUSPECTED"
    } else {
        "no leak suspected"
    };
    for w in &r.warnings {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(out, "{scope}{verdict}: {}", r.snapshots.join(" → "))?;
    writeln!(
        out,
        "{} new since the baseline and still alive, {} of them not part of another, in {}, retaining {}",
        output::counted(r.candidate_count, "object", "objects"),
        output::count(r.leaked_count),
        output::counted(r.cluster_count as u64, "cluster", "clusters"),
        output::size(r.leaked_retained_size),
    )?;
    // Clusters too small for a verdict are listed only in --json.
    let (shown, small): (Vec<_>, Vec<_>) = r
        .clusters
        .iter()
        .enumerate()
        .partition(|(_, c)| c.count >= min_count);
    let mut native = false;
    for (i, c) in shown {
        writeln!(out)?;
        native |= print_cluster(out, i + 1, c)?;
    }
    if native {
        writeln!(
            out,
            "\n(native memory: what Node's C++ side (zlib, sockets, the contents of Buffers) allocated for these objects outside the JS heap; it grows RSS, not \"heap used\", and is freed only when the objects are closed or collected)"
        )?;
    }
    if !small.is_empty() {
        writeln!(
            out,
            "\n({} under {min_count}: see --json)",
            output::counted(small.len() as u64, "smaller cluster", "smaller clusters"),
        )?;
    }
    if !r.growing_classes.is_empty() {
        writeln!(out, "\nClasses growing in every snapshot:")?;
        for g in &r.growing_classes {
            let series: Vec<String> = g.counts.iter().map(|&n| output::count(n)).collect();
            writeln!(
                out,
                "  {}: {}",
                output::shorten(&heapsnap::graph::display_class(&g.class), 60),
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
            let instances = if g.instances > 1 {
                format!(" (the largest of {} such)", output::count(g.instances))
            } else {
                String::new()
            };
            writeln!(
                out,
                "  {} ({}) @{}: {} entries{instances}",
                if g.name.is_empty() {
                    "(unnamed)"
                } else {
                    &g.name
                },
                g.class,
                g.id,
                series.join(" → ")
            )?;
        }
    }
    Ok(())
}

/// One cluster; whether it named native memory.
fn print_cluster(out: &mut impl Write, rank: usize, c: &Cluster) -> std::io::Result<bool> {
    let mark = if c.suspect { "!" } else { " " };
    let native = if c.native_size * 10 >= c.retained_size && c.native_size > 0 {
        let kinds: Vec<String> = c
            .native
            .iter()
            .map(|k| format!("{} {}", k.name, output::size(k.size)))
            .collect();
        format!(
            ", {} of it native memory ({})",
            output::size(c.native_size),
            kinds.join(", ")
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "{mark}#{rank} {}, retaining {}{native}",
        output::shorten(&c.headline, 100),
        output::size(c.retained_size),
    )?;
    if c.parts.len() > 1 {
        let parts: Vec<String> = c
            .parts
            .iter()
            .map(|p| {
                format!(
                    "{} × {} ({})",
                    output::count(p.count),
                    output::shorten(&p.label, 40),
                    output::size(p.retained_size)
                )
            })
            .collect();
        writeln!(out, "   parts: {}", parts.join(", "))?;
    }
    if let Some(o) = &c.owner {
        print_owner(out, c, o)?;
    }
    if let Some(l) = &c.location {
        writeln!(out, "   defined at {}", location(l))?;
    }
    if !c.functions.is_empty() {
        let list: Vec<String> = c
            .functions
            .iter()
            .map(|f| {
                format!(
                    "{} × function {} ({})",
                    output::count(f.count),
                    f.name,
                    location(&f.location)
                )
            })
            .collect();
        writeln!(out, "   your functions in it: {}", list.join(", "))?;
    }
    if let Some(top) = c.allocation_stack.first() {
        writeln!(
            out,
            "   allocated in {} ({}:{}:{})",
            top.function, top.script, top.line, top.column
        )?;
    }
    let owner = c.owner.as_ref().map(|o| o.path_index);
    let from = c.scope.as_ref().map(|sc| {
        let file = sc.script.as_deref().map_or("", file_name);
        if sc.module {
            format!("{file} (module scope)")
        } else {
            format!("{file} (scope of {})", sc.functions.join(", "))
        }
    });
    writeln!(
        out,
        "   path: {}",
        output::path(&c.path, owner, from.as_deref())
    )?;
    let counts: Vec<String> = c.class_counts.iter().map(|&n| output::count(n)).collect();
    writeln!(
        out,
        "   instances of {} per snapshot: {}",
        output::shorten(&c.class, 40),
        counts.join(" → ")
    )?;
    Ok(!native.is_empty())
}

/// `held by NodeCache.data (Object @60119): entries 300 → 1,800 → 3,300, grew` and the
/// app's variable that leads there.
fn print_owner(
    out: &mut impl Write,
    c: &Cluster,
    o: &heapsnap::leaks::Owner,
) -> std::io::Result<()> {
    let holder = c.holder.as_deref().unwrap_or(&o.holder);
    if holder == o.holder {
        write!(out, "   held by {holder} ({} @{})", o.class, o.id)?;
    } else {
        // Several collections grew: what holds them all, then the main part's.
        write!(
            out,
            "   held by {holder}; the main part by {} ({} @{})",
            o.holder, o.class, o.id
        )?;
    }
    match &o.list {
        // A list's head keeps its few fields whatever the list's length.
        Some(list) if !o.grew => write!(
            out,
            ": the head of a linked list ({}) of {} objects",
            list.link,
            output::count(list.length)
        )?,
        _ => {
            let series: Vec<String> = o
                .entries
                .iter()
                .map(|e| e.map_or("-".to_owned(), |n| output::count(u64::from(n))))
                .collect();
            let growth = if o.grew { "grew" } else { "did not grow" };
            write!(out, ": entries {}, {growth}", series.join(" → "))?;
        }
    }
    if let Some(l) = &o.location {
        if o.variable {
            write!(out, "; declared at {}", location(l))?;
        } else {
            // `NodeCache.data` → NodeCache; `EventEmitter._events["error"]` → EventEmitter.
            let class = o.holder.split(['.', '[']).next().unwrap_or(&o.holder);
            write!(out, "; {class} is defined at {}", location(l))?;
        }
    }
    writeln!(out)?;
    if let Some(b) = &o.binding
        && b.via != b.name
    {
        let at = match (&b.location, &b.script) {
            (Some(l), _) => format!(" ({})", location(l)),
            (None, Some(script)) => format!(" (in {script})"),
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "   reached from your {} variable {}{at}: {}",
            b.scope, b.name, b.via
        )?;
    }
    Ok(())
}

/// The last part of a path or URL: `server.js`.
fn file_name(script: &str) -> &str {
    script.rsplit(['/', '\\']).next().unwrap_or(script)
}

pub fn location(l: &heapsnap::leaks::SourceLocation) -> String {
    match &l.script {
        Some(script) => format!("{script}:{}:{}", l.line, l.column),
        None => format!("script {} line {}:{}", l.script_id, l.line, l.column),
    }
}
