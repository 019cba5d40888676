//! `leakhound hunt`: start (or attach to) an app, drive load, snapshot after each round, and
//! report the leak.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use heapsnap::leaks::Settings;
use leakhound_live::Error;
use leakhound_live::app::{self, App, CommandRun, Recorder};
use leakhound_live::attach::Limits;
use leakhound_live::capture::{self, HeapUsage};
use leakhound_live::cdp::{self, Session};
use leakhound_live::headroom::Before;
use leakhound_live::load::{self, LoadStats};
use leakhound_live::memory::Sample;
use leakhound_live::procfs;
use serde::Serialize;

use leakhound_live::native::Recording;
use leakhound_live::native::analysis::Verdict;

use super::leaks::{self, LeaksJson};
use crate::cli::HuntArgs;
use crate::live::{bar, install_interrupt_handler, set_app_group, unix_time};
use crate::native::{NativeJson, Request};
use crate::output;
use crate::report::{Page, Table, Timeline};
use crate::sources::Disk;

/// `report.json` of a run.
#[derive(Serialize)]
struct HuntJson {
    /// `js_leak`, `native_leak`, `both`, `fragmentation` or `none`. (`leak_suspected`, from
    /// the flattened `leaks`, is set for a JS or a native leak.)
    verdict: &'static str,
    dir: PathBuf,
    app: AppJson,
    rounds: Vec<Round>,
    /// The app's memory sampled through the run (as `leakhound watch` samples it); samples
    /// during and just after a snapshot are marked.
    timeline: Vec<Sample>,
    #[serde(flatten)]
    leaks: LeaksJson,
    /// The native allocations recorded while the app ran (absent with --pid or --no-native).
    #[serde(skip_serializing_if = "Option::is_none")]
    native: Option<NativeJson>,
}

#[derive(Serialize)]
struct AppJson {
    pid: u32,
    /// The command we started, or empty when we attached.
    command: Vec<String>,
    inspector: String,
    node: String,
    port: Option<u16>,
    /// How the app we started ended: `exit 0`, `signal 15`…
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped: Option<String>,
}

/// One round: its load, then the memory after a full GC, then the snapshot.
#[derive(Serialize)]
struct Round {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    load: Option<LoadStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    load_command: Option<CommandRun>,
    /// V8 and Node's figures after a full GC.
    heap: HeapUsage,
    /// `/proc/PID/status` before and after the snapshot (a snapshot leaves freed malloc memory
    /// resident: RSS after one is not a leak).
    memory_before_snapshot: procfs::Memory,
    memory_after_snapshot: procfs::Memory,
    snapshot: capture::Snapshot,
    /// When the snapshot was asked for, in milliseconds since the Unix epoch.
    snapshot_unix_ms: u64,
    /// The token of the native dump taken after the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    native_dump: Option<String>,
}

/// The hunt's sampling interval of the app's memory: rounds last seconds.
const RECORD_EVERY: Duration = Duration::from_millis(200);

pub fn run(args: HuntArgs) -> anyhow::Result<ExitCode> {
    install_interrupt_handler();
    if args.url.is_empty() && args.load.is_none() {
        bail!("give the load: --url URL (repeatable) for the built-in driver, or --load CMD");
    }
    // Every flag is checked before anything is started or attached to.
    plan(&args, Some(SocketAddr::from(([127, 0, 0, 1], 1))))?;
    let dir = run_dir(args.out.as_deref())?;
    let limits = Limits {
        answer: args.timeout,
        open: args.open_timeout,
    };
    let mut tracker = tracker(&args, &dir)?;
    let mut app = match args.pid {
        Some(pid) => App::attach(pid, limits)?,
        None => App::start(
            &args.command,
            &dir,
            limits,
            args.ready_timeout,
            tracker.as_ref(),
            |pid| set_app_group(pid as i32),
        )?,
    };
    // What the app is, for titles: the command we started, or the one we attached to.
    let app_command = if args.command.is_empty() {
        procfs::Process::new(app.pid)
            .and_then(|p| p.cmdline())
            .unwrap_or_default()
    } else {
        args.command.clone()
    };
    let recorder = Recorder::start(app.pid, RECORD_EVERY);
    let hunted = hunt(&args, &dir, &mut app, tracker.as_mut());
    let timeline = recorder.stop();
    let stopped = app.stop();
    set_app_group(0);
    if let Some(tracker) = &tracker {
        tracker.keep_perf_maps();
    }
    if cdp::interrupted() {
        eprintln!("interrupted; what was taken is in {}", dir.display());
        return Ok(ExitCode::from(130));
    }
    let (rounds, port) = hunted?;
    let stopped = stopped?;

    eprintln!("analysing {} snapshots…", rounds.len());
    let files: Vec<PathBuf> = rounds.iter().map(|r| r.snapshot.path.clone()).collect();
    let settings = Settings {
        top: args.top,
        min_count: args.min_count,
        // The requests of each round after the baseline, when the built-in driver sent them.
        requests: rounds[1..]
            .iter()
            .map(|r| r.load.as_ref().map(|l| l.responses))
            .collect::<Option<Vec<u64>>>()
            .unwrap_or_default(),
    };
    // One reader of scripts and source maps for the JS heap's report and the native one.
    let sources = Disk::new(args.source_maps.enabled());
    let (found, extras) = leaks::analyse(&files, &settings, false, true, &sources)?;
    let native = match &tracker {
        Some(tracker) => native_analysis(&args, &dir, tracker, app.pid, &rounds, &sources)?,
        None => None,
    };
    let native_verdict = native.as_ref().map_or(Verdict::None, |n| n.verdict);
    let mut found = found;
    let js = found.report.leak_suspected;
    found.report.leak_suspected = js || native_verdict == Verdict::NativeLeak;
    let doc = HuntJson {
        verdict: match (js, native_verdict) {
            (true, Verdict::NativeLeak) => "both",
            (true, _) => "js_leak",
            (false, Verdict::NativeLeak) => "native_leak",
            (false, Verdict::Fragmentation) => "fragmentation",
            _ => "none",
        },
        dir: dir.clone(),
        app: AppJson {
            pid: app.pid,
            command: args.command.clone(),
            inspector: app.inspector.addr.to_string(),
            node: app.inspector.version.clone(),
            port: port.map(|a| a.port()),
            stopped,
        },
        rounds,
        timeline,
        leaks: found,
        native,
    };
    let chart = dir.join("timeline.svg");
    let chart_title = app_label(&app_command, app.pid);
    let marks = snapshot_marks(&doc.rounds, &doc.timeline);
    capture::write_private(&chart, |out| {
        crate::report::timeline::write(out, &doc.timeline, &chart_title, &marks).map_err(|e| {
            leakhound_live::Error::Io {
                path: chart.clone(),
                source: e,
            }
        })
    })?;
    let report = dir.join("report.json");
    capture::write_private(&report, |out| {
        serde_json::to_writer_pretty(out, &doc).map_err(|e| leakhound_live::Error::Io {
            path: report.clone(),
            source: e.into(),
        })
    })?;

    let html = dir.join("report.html");
    let mut page = page(
        &args,
        &doc,
        extras.expect("asked for"),
        &app_command,
        chart_title,
        marks,
    );
    // A page that cannot be written costs the page, not the hunt's report and exit code.
    let html_written = match crate::report::write_file(&html, &mut page) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("warning: no HTML report: {e:#}");
            false
        }
    };

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        if html_written {
            eprintln!("report: {}", html.display());
        }
    } else {
        let js_only = doc.native.is_some().then_some(js);
        leaks::print(&mut out, &doc.leaks, args.min_count, js_only)?;
        writeln!(out)?;
        if let Some(native) = &doc.native {
            crate::native::print(&mut out, native)?;
            writeln!(out)?;
        }
        print_rounds(&mut out, &doc.rounds)?;
        if doc.native.is_some() {
            writeln!(out, "\nVerdict: {}", verdict_text(doc.verdict))?;
        }
        if html_written {
            writeln!(out, "\nReport: {}", html.display())?;
        }
        writeln!(
            out,
            "Run directory: {} (report.html, report.json, timeline.svg, snapshots{}{})",
            dir.display(),
            if doc.native.is_some() {
                ", native-growth.svg, native.pb.gz, native/ (the recording)"
            } else {
                ""
            },
            if args.pid.is_none() {
                ", app.stdout.log, app.stderr.log"
            } else {
                ""
            }
        )?;
    }
    out.flush()?;
    Ok(if doc.leaks.report.leak_suspected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The HTML report of a hunt.
fn page(
    args: &HuntArgs,
    doc: &HuntJson,
    extras: leaks::PageExtras,
    app_command: &[String],
    chart_title: String,
    marks: Vec<(f64, String)>,
) -> Page {
    let snapshots: Vec<String> = doc
        .rounds
        .iter()
        .map(|r| r.snapshot.path.display().to_string())
        .collect();
    let app = app_label(app_command, doc.app.pid);
    let mut page = Page {
        command: "hunt",
        title: format!("leakhound hunt: {app}"),
        facts: vec![
            ("App".into(), app),
            ("Node".into(), doc.app.node.clone()),
            ("Rounds".into(), doc.rounds.len().to_string()),
            ("Run directory".into(), doc.dir.display().to_string()),
        ],
        timelines: vec![Timeline::new(chart_title, &doc.timeline, marks)],
        rounds: Some(rounds_table(&doc.rounds)),
        ..Page::default()
    };
    leaks::add_to_page(&mut page, &doc.leaks, extras, args.min_count);
    page.warnings = load_warnings(&doc.rounds);
    let js = leaks::verdict(&doc.leaks.report, &snapshots[snapshots.len() - 1]);
    if let Some(native) = &doc.native {
        let (section, cut) = crate::native::section(native);
        page.cut.extend(cut);
        let native_next = crate::native::next_steps(native);
        page.verdict = crate::report::Verdict {
            level: match doc.verdict {
                "none" => "ok",
                "fragmentation" => "warn",
                _ => "leak",
            },
            headline: match doc.verdict {
                "js_leak" | "none" => js.headline.clone(),
                "both" => format!(
                    "{}; and a native leak: a native stack keeps memory alive that grows every round",
                    js.headline
                ),
                _ => crate::native::headline(native.verdict).to_owned(),
            },
            next: match doc.verdict {
                "native_leak" | "fragmentation" => native_next,
                "both" => js.next.into_iter().chain(native_next).collect(),
                _ => js.next,
            },
        };
        page.native = Some(section);
    } else {
        page.verdict = js;
    }
    if !page.warnings.is_empty() && page.verdict.level == "ok" {
        page.verdict.level = "warn";
    }
    page.commands = vec![
        (
            "this hunt again (in a new run directory)".into(),
            crate::report::rerun(),
        ),
        (
            "the leak analysis of its snapshots".into(),
            crate::report::command_line(
                "leakhound",
                &[&["leaks".to_owned()][..], &snapshots].concat(),
            ),
        ),
        (
            "the Comparison of the final snapshot with the baseline".into(),
            crate::report::command_line(
                "leakhound",
                &[
                    "diff".to_owned(),
                    snapshots[0].clone(),
                    snapshots[snapshots.len() - 1].clone(),
                ],
            ),
        ),
    ];
    if let Some(native) = &doc.native {
        page.commands.push((
            "the native analysis of its recording".into(),
            crate::report::command_line(
                "leakhound",
                &["native".to_owned(), native.dir.display().to_string()],
            ),
        ));
    }
    page
}

/// `node server.js (PID 42)`, or `PID 42` when its command line is unknown.
fn app_label(command: &[String], pid: u32) -> String {
    if command.is_empty() {
        format!("PID {pid}")
    } else {
        format!("{} (PID {pid})", command.join(" "))
    }
}

/// Each round's snapshot on the timeline's clock (its samples' `t`), named as the round.
fn snapshot_marks(rounds: &[Round], timeline: &[Sample]) -> Vec<(f64, String)> {
    let Some(first) = timeline.iter().min_by(|a, b| a.t.total_cmp(&b.t)) else {
        return Vec::new();
    };
    rounds
        .iter()
        .map(|r| {
            let after = r.snapshot_unix_ms as f64 - first.unix_ms as f64;
            (first.t + after / 1000.0, r.name.clone())
        })
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rounds_table(rounds: &[Round]) -> Table {
    use serde_json::{Value, json};
    // The built-in driver's requests, or the load command's exit status.
    let driver = rounds.iter().all(|r| r.load.is_some());
    let rows = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![json!(if i == 0 {
                "warm-up → baseline".to_owned()
            } else {
                r.name.clone()
            })];
            match (&r.load, &r.load_command) {
                (Some(l), _) => row.extend([
                    json!(l.responses),
                    json!(l.non_2xx + l.errors),
                    json!(l.elapsed_secs),
                ]),
                (_, Some(c)) => row.extend([json!(c.status), json!(c.seconds)]),
                _ => row.extend([Value::Null, Value::Null]),
            }
            row.extend([
                json!(r.heap.heap_used),
                json!(r.heap.external),
                json!(r.memory_before_snapshot.rss),
                json!(r.snapshot.bytes),
            ]);
            row
        })
        .collect();
    let load: &[(&str, &'static str)] = if driver {
        &[
            ("Requests", "count"),
            ("Failed", "count"),
            ("Load time", "seconds"),
        ]
    } else {
        &[("Load command", "text"), ("Load time", "seconds")]
    };
    let columns = std::iter::once(("Round", "text"))
        .chain(load.iter().copied())
        .chain([
            ("Heap used", "size"),
            ("External", "size"),
            ("RSS", "size"),
            ("Snapshot", "size"),
        ]);
    Table {
        title: "Load".into(),
        caption: "Each round's load, then the memory after a full GC, before its snapshot".into(),
        columns: columns.map(|(t, k)| (t.to_owned(), k)).collect(),
        rows,
        total_rows: rounds.len(),
    }
}

/// What the page must not let pass unnoticed: a load that failed.
fn load_warnings(rounds: &[Round]) -> Vec<String> {
    let failed: Vec<&str> = rounds
        .iter()
        .filter(|r| r.load_command.as_ref().is_some_and(|c| !c.succeeded()))
        .map(|r| r.name.as_str())
        .collect();
    let errors: u64 = rounds
        .iter()
        .filter_map(|r| r.load.as_ref())
        .map(|l| l.non_2xx + l.errors)
        .sum();
    let mut warnings = Vec::new();
    if !failed.is_empty() {
        warnings.push(format!(
            "The load command failed in {} of {} rounds ({}): its output is in load.log. A leak the load did not reach cannot show",
            failed.len(),
            rounds.len(),
            failed.join(", ")
        ));
    }
    if errors > 0 {
        warnings.push(format!(
            "{} requests failed or got a non-2xx answer (the Load table says in which rounds): a leak on the paths they did not reach cannot show",
            output::count(errors)
        ));
    }
    warnings
}

/// The hunt's one verdict over the JS and native sides, as people read it.
fn verdict_text(verdict: &str) -> &'static str {
    match verdict {
        "both" => "a JS leak and a native leak: the clusters and the native stacks above",
        "js_leak" => "a JS leak: the clusters above",
        "native_leak" => {
            "a native leak: the JS heap does not keep it; the native stack above allocates it"
        }
        "fragmentation" => "no leak: malloc fragmentation (free memory kept by glibc grows)",
        _ => "no leak suspected",
    }
}

/// How long a native dump may take to appear (the tracker looks for requests every 100 ms).
const NATIVE_DUMP_WAIT: Duration = Duration::from_secs(10);

/// The native recording of a hunt, in `DIR/native`: on unless `--no-native` or `--pid` (the
/// tracker goes in when the process starts); `--native` makes its absence an error.
fn tracker(args: &HuntArgs, dir: &Path) -> anyhow::Result<Option<Recording>> {
    if args.no_native {
        return Ok(None);
    }
    if args.pid.is_some() {
        if args.native {
            bail!(
                "--native cannot go with --pid: the tracker is loaded when the process starts (LD_PRELOAD). Let the hunt start the app (`-- node app.js`), or start it yourself under `leakhound native -- node app.js`"
            );
        }
        return Ok(None);
    }
    let created = Recording::create(&dir.join("native"), args.native_interval, args.exact_js)
        .and_then(|t| {
            leakhound_live::native::check_program(Path::new(&args.command[0]))?;
            Ok(t)
        });
    match created {
        Ok(tracker) => Ok(Some(tracker)),
        Err(e) if args.native => Err(e.into()),
        Err(e) => {
            eprintln!("warning: native allocations are not recorded: {e}");
            Ok(None)
        }
    }
}

/// The native analysis over the hunt's checkpoints (baseline first), for the app's process.
fn native_analysis(
    args: &HuntArgs,
    dir: &Path,
    tracker: &Recording,
    pid: u32,
    rounds: &[Round],
    sources: &Disk,
) -> anyhow::Result<Option<NativeJson>> {
    let tokens: Vec<String> = rounds
        .iter()
        .filter_map(|r| r.native_dump.clone())
        .collect();
    if tokens.len() < 2 {
        eprintln!("warning: fewer than 2 native checkpoints: no native analysis");
        return Ok(None);
    }
    let native = crate::native::analyse(Request {
        dir: &tracker.dir,
        pid: Some(pid),
        checkpoints: Some(tokens),
        top: args.top,
        fragmentation: false,
        flamegraph: Some(dir.join("native-growth.svg")),
        pprof: Some(dir.join("native.pb.gz")),
        sources,
    });
    match native {
        Ok(native) => Ok(Some(native)),
        Err(e) if args.native => Err(e),
        Err(e) => {
            eprintln!("warning: the native recording could not be analysed: {e:#}");
            Ok(None)
        }
    }
}

/// Snapshots the leak analysis needs: a baseline and two after it.
const MIN_SNAPSHOTS: usize = 3;

/// The rounds: warm-up then baseline, then `args.rounds` more, each ending in a snapshot.
/// Returns them with the address the app serves on, if known.
fn hunt(
    args: &HuntArgs,
    dir: &Path,
    app: &mut App,
    tracker: Option<&mut Recording>,
) -> anyhow::Result<(Vec<Round>, Option<SocketAddr>)> {
    // Paths such as `/status` go to the app's port: wait for it. With no URL to wait for, the
    // port is the sign that the app is ready.
    let relative = args
        .url
        .iter()
        .chain(&args.ready_url)
        .any(|u| u.starts_with('/'));
    let wait = relative || (args.url.is_empty() && args.ready_url.is_none());
    let port = app.serving_address(wait, relative, args.ready_timeout)?;
    let plan = plan(args, port)?;
    if let Some(url) = ready_url(args, port)? {
        app.wait_ready(&url, args.ready_timeout, args.allow_remote)?;
    }
    let (rounds, session) = match app.inspector.session() {
        Ok(mut session) => (
            rounds(args, dir, app, &plan, port, &mut session, tracker),
            Some(session),
        ),
        Err(e) => (Err(e.into()), None),
    };
    // A started app's inspector is its own (`--inspect`); it goes with the app.
    let finished = app.inspector.finish(session);
    let rounds = rounds?;
    finished?;
    Ok((rounds, port))
}

fn rounds(
    args: &HuntArgs,
    dir: &Path,
    app: &mut App,
    plan: &Option<load::Plan>,
    port: Option<SocketAddr>,
    session: &mut Session,
    mut tracker: Option<&mut Recording>,
) -> anyhow::Result<Vec<Round>> {
    let mut rounds: Vec<Round> = Vec::new();
    let last = args.rounds as usize;
    let mut heap_before = capture::heap_usage(session)?.heap_used;
    for i in 0..=last {
        let name = match i {
            0 => "baseline".to_owned(),
            1 => "target".to_owned(),
            i if i == last => "final".to_owned(),
            i => format!("round-{i}"),
        };
        let label = if i == 0 { "warm-up" } else { &name };
        // Before sending load: the heap after this round, if it grows as the last round did,
        // must leave room for its snapshot.
        let heap_now = rounds.last().map_or(heap_before, |r| r.heap.heap_used);
        let projected = heap_now + heap_now.saturating_sub(heap_before);
        heap_before = heap_now;
        let kept = match rounds.last() {
            Some(last) => still_kept(&rounds, app.memory()?.rss, &last.heap),
            None => 0,
        };
        let large = capture::large_objects(session);
        if let Err(e) = Before::check(Some(app.pid), projected, large, kept, args.force) {
            if rounds.len() >= MIN_SNAPSHOTS {
                eprintln!("warning: stopping after {} snapshots: {e}", rounds.len());
                break;
            }
            if i == 0 {
                bail!("{e}\n(checked before the warm-up round: no load was sent)");
            }
            bail!(
                "{e}\n(checked before round {label}, with the heap at {} after growing by {} in the last round; no load was sent for it, and the snapshots so far are in {})",
                output::size(heap_now),
                output::size(projected - heap_now),
                dir.display()
            );
        }
        let (load, load_command) = match plan {
            Some(plan) => {
                let bar = bar(&format!("load ({label})"), None);
                bar.set_length(plan.count);
                let stats = load::run(plan, Some(&bar))?;
                bar.finish_and_clear();
                (Some(stats), None)
            }
            None => {
                let log = dir.join("load.log");
                let run = app::run_load_command(
                    args.load.as_deref().unwrap_or_default(),
                    &log,
                    i,
                    port.map(|a| a.port()),
                    args.round_time_limit,
                )?;
                if !run.succeeded() {
                    eprintln!(
                        "warning: the load command ended with {} in round {i} (its output is in {})",
                        run.status,
                        log.display()
                    );
                }
                (None, Some(run))
            }
        };
        if cdp::interrupted() {
            bail!("interrupted");
        }
        app.check_alive()?;
        if !capture::collect_garbage(session)? {
            eprintln!(
                "warning: the app's event loop is busy: no GC before the snapshot (the snapshot collects garbage itself)"
            );
        }
        let heap = capture::heap_usage(session)?;
        let memory_before_snapshot = app.memory()?;
        let path = dir.join(format!("{}-{name}.heapsnapshot", i + 1));
        let kept = still_kept(&rounds, memory_before_snapshot.rss, &heap);
        let headroom = match capture::check_room(session, Some(app.pid), kept, args.force) {
            Ok(headroom) => headroom,
            Err(e @ (Error::NoRoom(_) | Error::RoomUnknown { .. })) => {
                if rounds.len() >= MIN_SNAPSHOTS {
                    eprintln!(
                        "warning: stopping after {} snapshots, with the load of {label} sent but not its snapshot: {e}",
                        rounds.len()
                    );
                    break;
                }
                bail!(
                    "{e}\n(checked after the load of {label}, before its snapshot; the snapshots so far are in {})",
                    dir.display()
                );
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(warning) = headroom.warning() {
            eprintln!("warning: {warning}");
        }
        let bar = bar(&format!("snapshot ({name})"), None);
        let snapshot_unix_ms = unix_ms();
        let snapshot = capture::snapshot(session, headroom, &path, false, &bar)?;
        bar.finish_and_clear();
        // The native checkpoint, after the snapshot: so every interval between two holds one
        // round of load and one snapshot (whose own native allocations and frees, V8's object
        // ids and what glibc keeps of the rest, would otherwise all land in the first).
        let native_dump = match tracker.as_deref_mut() {
            Some(tracker) => match tracker.request_dump(app.pid, NATIVE_DUMP_WAIT) {
                Ok(token) => Some(token),
                Err(e) => {
                    eprintln!("warning: no native checkpoint for {label}: {e}");
                    None
                }
            },
            None => None,
        };
        eprintln!(
            "{label}: {}; heap {} used, rss {}; wrote {} ({})",
            match (&load, &load_command) {
                (Some(l), _) => format!(
                    "{} requests ({} non-2xx, {} errors) in {:.1} s",
                    output::count(l.responses),
                    output::count(l.non_2xx),
                    output::count(l.errors),
                    l.elapsed_secs
                ),
                (_, Some(c)) => format!("load command {} in {:.1} s", c.status, c.seconds),
                _ => String::new(),
            },
            output::size(heap.heap_used),
            output::size(memory_before_snapshot.rss),
            path.display(),
            output::size(snapshot.bytes),
        );
        rounds.push(Round {
            name,
            load,
            load_command,
            heap,
            memory_before_snapshot,
            memory_after_snapshot: app.memory()?,
            snapshot,
            snapshot_unix_ms,
            native_dump,
        });
    }
    Ok(rounds)
}

/// What the app still holds from its earlier snapshots (glibc keeps what V8 freed), which the
/// next one reuses: for each, what RSS rose by over the snapshot, but no more than RSS is above
/// its level before that snapshot now, less what the heap and external memory grew since (live
/// memory, not reusable), and so no more than is still there.
fn still_kept(rounds: &[Round], rss_now: u64, heap_now: &HeapUsage) -> u64 {
    rounds
        .iter()
        .map(|r| {
            let rose = r
                .memory_after_snapshot
                .rss
                .saturating_sub(r.memory_before_snapshot.rss);
            let grown = (heap_now.heap_used + heap_now.external)
                .saturating_sub(r.heap.heap_used + r.heap.external);
            let above = rss_now
                .saturating_sub(r.memory_before_snapshot.rss)
                .saturating_sub(grown);
            rose.min(above)
        })
        .max()
        .unwrap_or(0)
}

/// The built-in load of one round, or `None` with `--load`. `app` is where paths go.
fn plan(args: &HuntArgs, app: Option<SocketAddr>) -> anyhow::Result<Option<load::Plan>> {
    if args.load.is_some() {
        return Ok(None);
    }
    if args.concurrency == 0 || args.concurrency > load::MAX_CONCURRENCY {
        bail!(
            "--concurrency must be from 1 to {}, not {}",
            load::MAX_CONCURRENCY,
            args.concurrency
        );
    }
    let headers = args
        .header
        .iter()
        .map(|h| load::parse_header(h))
        .collect::<Result<Vec<_>, _>>()?;
    let requests = args
        .url
        .iter()
        .map(|u| {
            let url = resolve(u, app)?;
            load::check_url(&url, args.allow_remote)?;
            Ok(load::Request {
                method: args.method.clone(),
                url,
                headers: headers.clone(),
                body: args.body.as_ref().map(|b| b.as_bytes().to_vec()),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(load::Plan {
        requests,
        count: args.requests,
        concurrency: args.concurrency,
        time_limit: args.round_time_limit,
        allow_remote: args.allow_remote,
    }))
}

/// `/status` → `http://ADDR/status` on the app's address; full URLs stay.
fn resolve(url: &str, app: Option<SocketAddr>) -> anyhow::Result<String> {
    if !url.starts_with('/') {
        return Ok(url.to_owned());
    }
    match app {
        Some(addr) => Ok(format!("http://{addr}{url}")),
        None => bail!("cannot send {url} to the app: it listens on no TCP port; give a full URL"),
    }
}

fn ready_url(args: &HuntArgs, app: Option<SocketAddr>) -> anyhow::Result<Option<String>> {
    match args
        .ready_url
        .as_deref()
        .or(args.url.first().map(String::as_str))
    {
        Some(url) => Ok(Some(resolve(url, app)?)),
        None => Ok(None),
    }
}

/// The run directory, private to the user: it will hold snapshots. An existing directory must
/// be empty; its mode is left as it is.
fn run_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = given.map_or_else(
        || PathBuf::from(format!("leakhound-hunt-{}", unix_time())),
        Path::to_owned,
    );
    match fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "the run directory {} exists and is not empty; give a new one with --out",
                    dir.display()
                );
            }
        }
        Err(_) => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating the run directory {}", dir.display()))?,
    }
    Ok(dir)
}

fn print_rounds(out: &mut impl Write, rounds: &[Round]) -> std::io::Result<()> {
    writeln!(
        out,
        "Rounds (memory after a full GC, before each snapshot):"
    )?;
    let rows: Vec<Vec<String>> = rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (requests, bad) = match &r.load {
                Some(l) => (
                    output::count(l.responses),
                    output::count(l.non_2xx + l.errors),
                ),
                None => ("-".to_owned(), "-".to_owned()),
            };
            vec![
                if i == 0 {
                    "warm-up → baseline".to_owned()
                } else {
                    r.name.clone()
                },
                requests,
                bad,
                output::size(r.heap.heap_used),
                output::size(r.heap.external),
                output::size(r.memory_before_snapshot.rss),
                output::size(r.snapshot.bytes),
            ]
        })
        .collect();
    output::table(
        out,
        &[
            "round",
            "requests",
            "failed",
            "heap used",
            "external",
            "rss",
            "snapshot",
        ],
        &rows,
    )
}
