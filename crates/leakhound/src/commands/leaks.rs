//! `leakhound leaks`: leaked objects across a series of snapshots, clustered, with owners.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use std::collections::HashMap;

use heapsnap::code::Positions;
use heapsnap::excerpt::Excerpt;
use heapsnap::leaks::{Census, Cluster, Report, Settings};
use heapsnap::{NodeId, NodeIdx};

use crate::cli::LeaksArgs;
use crate::load::{Loaded, load, load_with, read, timing};
use crate::output;
use crate::report::{self, Page, Table};
use crate::sources::Disk;

#[derive(serde::Serialize)]
pub struct LeaksJson {
    #[serde(flatten)]
    pub report: Report,
    /// Findings in the last snapshot.
    pub findings: Vec<heapsnap::findings::Finding>,
}

/// Exit code 1 when a leak is suspected, as `hunt`'s: a CI gate can run either.
pub fn run(args: LeaksArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.html {
        crate::output::check_file_path(path)?;
    }
    let settings = Settings {
        top: args.top,
        min_count: args.min_count,
        requests: Vec::new(),
    };
    let (found, extras) = analyse(
        &args.files,
        &settings,
        args.output.timings,
        args.html.is_some(),
        &Disk::new(args.source_maps.enabled()),
    )?;
    let suspected = found.report.leak_suspected;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        print(&mut out, &found, args.min_count, None)?;
    }
    out.flush()?;
    if let (Some(path), Some(extras)) = (&args.html, extras) {
        let mut page = Page {
            command: "leaks",
            title: format!("Leaks: {}", found.report.snapshots.join(" → ")),
            facts: vec![("Snapshots".into(), found.report.snapshots.join(" → "))],
            commands: vec![("this analysis".into(), report::invocation())],
            ..Page::default()
        };
        add_to_page(&mut page, &found, extras, args.min_count);
        report::write_file(path, &mut page)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(if suspected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the HTML page adds to the analysis.
pub struct PageExtras {
    /// The graph around each cluster's path and objects, for the retainer trees.
    pub graph: Excerpt,
    /// The Comparison of the last snapshot against the baseline.
    pub comparison: Table,
    pub last_snapshot: String,
}

/// The leak report and the last snapshot's findings for `files`, oldest first; with `page`,
/// what the HTML page adds (the baseline is then read again, in full, for the Comparison).
/// Scripts and their source maps are read through `sources`.
pub fn analyse(
    files: &[PathBuf],
    settings: &Settings,
    timings: bool,
    page: bool,
    sources: &Disk,
) -> anyhow::Result<(LeaksJson, Option<PageExtras>)> {
    let (last, earlier_files) = files.split_last().expect("at least two snapshots");
    // Earlier snapshots are reduced to a census one at a time, so at most one full snapshot
    // is in memory besides the final one's analysis.
    let earlier = earlier_files
        .iter()
        .map(|path| census(path, timings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let loaded = load(last, timings)?;
    let found = report(&earlier, &loaded, settings, timings, sources);
    let extras = if page {
        let start = Instant::now();
        let graph = excerpt(&loaded, &found.report.clusters);
        timing(timings, "page: retainer trees", start);
        let base = load_with(&files[0], timings, Some(&loaded.analysis.interfaces))?;
        let base_name = base.name.clone();
        let start = Instant::now();
        let (classes, total) = super::diff::classes(base, &loaded, Some(report::MAX_ROWS), sources);
        timing(timings, "page: comparison", start);
        Some(PageExtras {
            graph,
            comparison: super::diff::table(&base_name, &loaded, &classes, total),
            last_snapshot: loaded.name.clone(),
        })
    } else {
        None
    };
    Ok((found, extras))
}

/// The census of the snapshot at `path`: its objects' ids and class counts, for comparing
/// with a later snapshot (only class names are computed).
pub fn census(path: &std::path::Path, timings: bool) -> anyhow::Result<Census> {
    let (name, mut s) = read(path, timings)?;
    let start = Instant::now();
    let class = heapsnap::analysis::class_names(&mut s);
    let census = Census::new(&name, &s, &class);
    timing(timings, "census", start);
    Ok(census)
}

/// The leak report of `loaded`, the last of a series whose earlier snapshots are `earlier`
/// (baseline first), with its findings; positions are given their originals from `sources`.
pub fn report(
    earlier: &[Census],
    loaded: &Loaded,
    settings: &Settings,
    timings: bool,
    sources: &Disk,
) -> LeaksJson {
    let start = Instant::now();
    let report = heapsnap::leaks::find(
        earlier,
        (&loaded.snapshot, &loaded.analysis),
        &loaded.name,
        settings,
        sources,
    );
    timing(timings, "leak analysis", start);
    let mut findings = heapsnap::findings::findings(
        &loaded.snapshot,
        &loaded.analysis,
        &heapsnap::findings::Thresholds::default(),
    );
    findings.map_positions(sources);
    LeaksJson { report, findings }
}

/// Objects in a page's whole graph excerpt, and added per cluster: the largest clusters
/// come first and cannot take all of it.
const EXCERPT_NODES: usize = 4000;
const EXCERPT_PER_CLUSTER: usize = 400;

/// The graph around each shown cluster: its leaked objects and every node of its path,
/// expanded from the leaked end (what people open first), two levels deep.
fn excerpt(loaded: &crate::load::Loaded, clusters: &[Cluster]) -> Excerpt {
    let (s, a) = (&loaded.snapshot, &loaded.analysis);
    let clusters = &clusters[..clusters.len().min(report::MAX_CLUSTERS)];
    let mut wanted: HashMap<NodeId, Option<NodeIdx>> = clusters
        .iter()
        .flat_map(|c| {
            let samples = c.sample_ids.iter().take(3).copied();
            samples.chain(c.path.iter().map(|step| step.node.id))
        })
        .map(|id| (id, None))
        .collect();
    for (v, id) in s.nodes.id.iter_enumerated() {
        if let Some(slot) = wanted.get_mut(id) {
            *slot = Some(v);
        }
    }
    let groups: Vec<Vec<NodeIdx>> = clusters
        .iter()
        .map(|c| {
            let ids = c.sample_ids.iter().take(3).copied();
            ids.chain(c.path.iter().rev().map(|step| step.node.id))
                .filter_map(|id| wanted.get(&id).copied().flatten())
                .collect()
        })
        .collect();
    let mut graph = Excerpt::default();
    let limits = heapsnap::excerpt::Limits {
        depth: 2,
        links: 8,
        nodes: EXCERPT_PER_CLUSTER,
        total: EXCERPT_NODES,
    };
    graph.add(s, a, &groups, limits);
    graph
}

/// Fills a page's JS-heap sections from a leak analysis: the verdict (unless one is set),
/// the clusters and their trees, the Comparison and the findings.
pub fn add_to_page(page: &mut Page, found: &LeaksJson, extras: PageExtras, min_count: u64) {
    let r = &found.report;
    if page.verdict.headline.is_empty() {
        page.verdict = verdict(r, &extras.last_snapshot);
    }
    page.comparison = Some(extras.comparison);
    page.findings = found.findings.clone();
    page.leaks = Some(report::Leaks {
        report: found.report.clone(),
        min_count,
        last_snapshot: extras.last_snapshot,
        graph: extras.graph,
        holders: r
            .clusters
            .iter()
            .map(|c| match &c.owner {
                Some(o) => {
                    let (held, reached) = owner_text(c, o);
                    (Some(held), reached)
                }
                None => (c.holder.clone(), None),
            })
            .collect(),
        path_cuts: Vec::new(),
        path_head: report::PATH_HEAD,
    });
}

/// The JS heap's verdict and next steps, from the clusters.
pub fn verdict(r: &Report, last_snapshot: &str) -> report::Verdict {
    let suspects: Vec<&Cluster> = r.clusters.iter().filter(|c| c.suspect).collect();
    let Some(first) = suspects.first() else {
        return report::Verdict {
            level: "ok",
            headline: format!(
                "No leak suspected: {} objects new since the baseline are still alive, in no cluster that grew with the load",
                output::count(r.candidate_count)
            ),
            next: vec![
                "A slow leak may need more load per round (--requests) or more rounds (--rounds) to show".into(),
                "If RSS still grows, the memory is outside the JS heap: a hunt's native section says where, or run the app under `leakhound native -- COMMAND`".into(),
            ],
        };
    };
    let mut next = Vec::new();
    for c in suspects.iter().take(3) {
        let headline = output::shorten(&c.headline, 120);
        let who = match &c.owner {
            Some(o) => {
                let (held, reached) = owner_text(c, o);
                let reached = reached.map_or(String::new(), |r| format!(", reached from {r}"));
                output::shorten(&format!("held by {held}{reached}"), 400)
            }
            None => "its retaining path below shows what holds them".to_owned(),
        };
        next.push(format!(
            "{headline}: {who}. Release each one when its work is done (delete the entry, remove the listener, clear the timer), or bound what holds them"
        ));
    }
    if let Some(id) = first.sample_ids.first() {
        next.push(format!(
            "Look around one leaked object: leakhound show @{id} {last_snapshot}"
        ));
    }
    next.push(
        "After the fix, run the same command again (below): the verdict should say no leak".into(),
    );
    report::Verdict {
        level: "leak",
        headline: {
            // Clusters counted in the report, suspect or not, each byte once.
            let (grew, size): (u64, u64) = suspects
                .iter()
                .fold((0, 0), |(n, b), c| (n + c.count, b + c.retained_size));
            format!(
                "Leak suspected: {} that {} with the load, {} leaked, retaining {}",
                output::counted(suspects.len() as u64, "cluster", "clusters"),
                if suspects.len() == 1 { "grows" } else { "grow" },
                output::count(grew),
                output::size(size.min(r.leaked_retained_size))
            )
        },
        next,
    }
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
        writeln!(out, "   defined at {}", output::location(l))?;
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
                    output::location(&f.location)
                )
            })
            .collect();
        writeln!(out, "   your functions in it: {}", list.join(", "))?;
    }
    if let Some(top) = c.allocation_stack.first() {
        let at = format!("{}:{}:{}", top.script, top.line, top.column);
        writeln!(
            out,
            "   allocated in {} ({})",
            top.function,
            output::position(at, top.original.as_ref())
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
    let (held, reached) = owner_text(c, o);
    writeln!(out, "   held by {held}")?;
    if let Some(reached) = reached {
        writeln!(out, "   reached from {reached}")?;
    }
    Ok(())
}

/// Who holds a cluster, as the report says it after "held by": `handleMap (Map @1): entries 501
/// → 1,001, grew; declared at server.js:19:7`, and, when the path runs through a variable of
/// the app's own, after "reached from": `your module variable bus (app.js:3:7): bus → …`.
pub fn owner_text(c: &Cluster, o: &heapsnap::leaks::Owner) -> (String, Option<String>) {
    let holder = c.holder.as_deref().unwrap_or(&o.holder);
    let mut held = if holder == o.holder {
        format!("{holder} ({} @{})", o.class, o.id)
    } else {
        // Several collections grew: what holds them all, then the main part's.
        format!(
            "{holder}; the main part by {} ({} @{})",
            o.holder, o.class, o.id
        )
    };
    match &o.list {
        // A list's head keeps its few fields whatever the list's length.
        Some(list) if !o.grew => held.push_str(&format!(
            ": the head of a linked list ({}) of {} objects",
            list.link,
            output::count(list.length)
        )),
        _ => {
            let series: Vec<String> = o
                .entries
                .iter()
                .map(|e| e.map_or("-".to_owned(), |n| output::count(u64::from(n))))
                .collect();
            let growth = if o.grew { "grew" } else { "did not grow" };
            held.push_str(&format!(": entries {}, {growth}", series.join(" → ")));
        }
    }
    if let Some(l) = &o.location {
        if o.variable {
            held.push_str(&format!("; declared at {}", output::location(l)));
        } else {
            // `NodeCache.data` → NodeCache; `EventEmitter._events["error"]` → EventEmitter.
            let class = o.holder.split(['.', '[']).next().unwrap_or(&o.holder);
            held.push_str(&format!("; {class} is defined at {}", output::location(l)));
        }
    }
    let reached = o.binding.as_ref().filter(|b| b.via != b.name).map(|b| {
        let at = match (&b.location, &b.script) {
            (Some(l), _) => format!(" ({})", output::location(l)),
            (None, Some(script)) => format!(" (in {script})"),
            (None, None) => String::new(),
        };
        format!("your {} variable {}{at}: {}", b.scope, b.name, b.via)
    });
    (held, reached)
}

/// The last part of a path or URL: `server.js`.
fn file_name(script: &str) -> &str {
    script.rsplit(['/', '\\']).next().unwrap_or(script)
}
