//! `leakhound core`: the objects by class and the JS stack of a Node process, from its core dump
//! — for when the inspector cannot reach it (a main thread stuck in native code, a heap too big
//! to snapshot in its container, a crash with cores on).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use v8core::census::{Census, ClassRow, RowDiff};
use v8core::stack::{Frame, FrameKind, ThreadStack};

use crate::cli::CoreArgs;
use crate::output;

#[derive(Serialize)]
struct CoreJson<'a> {
    core: &'a Opened,
    census: &'a Census,
    /// The census's rows, application classes first (by size), then the generic ones (V8's
    /// and JavaScript's own types: strings, arrays, `Object`…), as `leaks` ranks them.
    classes: Vec<Ranked<'a>>,
    stacks: &'a [ThreadStack],
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<DiffJson<'a>>,
}

#[derive(Serialize)]
struct Ranked<'a> {
    #[serde(flatten)]
    row: &'a ClassRow,
    generic: bool,
}

#[derive(Serialize)]
struct DiffJson<'a> {
    later: &'a Opened,
    /// Classes by count growth from this core to the later one.
    classes: Vec<RowDiff>,
}

/// What was opened, as the report names it.
#[derive(Serialize)]
struct Opened {
    path: String,
    bytes: u64,
    pid: Option<u32>,
    command: Option<String>,
    binary: String,
    /// How the binary was checked against the core: its build id, or why it could not be.
    binary_check: String,
    threads: usize,
    seconds: f64,
}

/// One core, read: its census and its stacks.
struct Read {
    opened: Opened,
    census: Census,
    stacks: Vec<ThreadStack>,
}

pub fn run(args: CoreArgs) -> anyhow::Result<()> {
    let first = read(&args.core, args.node.as_deref(), true)?;
    let later = args
        .diff
        .as_deref()
        .map(|path| read(path, args.node.as_deref(), false))
        .transpose()?;
    let mut classes: Vec<Ranked> = first
        .census
        .rows
        .iter()
        .map(|row| Ranked {
            generic: heapsnap::code::is_generic(&row.name),
            row,
        })
        .collect();
    // Application classes first; a stable sort keeps the census's size order within each part.
    classes.sort_by_key(|r| r.generic);
    let diff = later.as_ref().map(|l| DiffJson {
        later: &l.opened,
        classes: v8core::census::diff(&first.census, &l.census),
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let doc = CoreJson {
            core: &first.opened,
            census: &first.census,
            classes,
            stacks: &first.stacks,
            diff,
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    describe(&mut out, &first.opened)?;
    for w in &first.census.warnings {
        writeln!(out, "warning: {w}")?;
    }
    writeln!(
        out,
        "\nObjects by class: {} objects, {} (application classes first, then generic types)",
        output::count(first.census.objects),
        output::size(first.census.bytes)
    )?;
    let shown: Vec<&Ranked> = classes.iter().take(args.top).collect();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|r| {
            vec![
                output::shorten(&class_label(&r.row.name, r.row.location.as_ref()), 70),
                output::count(r.row.count),
                output::size(r.row.size),
                percent(r.row.size, first.census.bytes),
            ]
        })
        .collect();
    output::table(&mut out, &["Class", "Count", "Size", "%"], &rows)?;
    if classes.len() > shown.len() {
        writeln!(
            out,
            "… {} more classes (--top)",
            classes.len() - shown.len()
        )?;
    }
    print_stacks(&mut out, &first.stacks, args.all_threads)?;
    if let Some(d) = &diff {
        writeln!(out)?;
        describe(&mut out, d.later)?;
        writeln!(
            out,
            "\nGrowth from the first core to the second, by count (application classes first):"
        )?;
        let mut grew: Vec<&RowDiff> = d.classes.iter().filter(|r| r.count.1 > r.count.0).collect();
        grew.sort_by_key(|r| heapsnap::code::is_generic(&r.name));
        let rows: Vec<Vec<String>> = grew
            .iter()
            .take(args.top)
            .map(|r| {
                vec![
                    output::shorten(&class_label(&r.name, r.location.as_ref()), 70),
                    output::count(r.count.0),
                    output::count(r.count.1),
                    format!("+{}", output::count(r.count.1 - r.count.0)),
                    output::signed_size(r.size.1 as i64 - r.size.0 as i64),
                ]
            })
            .collect();
        output::table(
            &mut out,
            &["Class", "Before", "After", "# Delta", "Size Delta"],
            &rows,
        )?;
        if grew.is_empty() {
            writeln!(out, "  no class grew")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Opens, checks and reads one core. `progress` shows a bar for the census (on a terminal).
fn read(path: &Path, node: Option<&Path>, progress: bool) -> anyhow::Result<Read> {
    let started = std::time::Instant::now();
    let file = v8core::CoreFile::open(path)?;
    let core = file.parse()?;
    let binary = v8core::NodeBinary::find(&core, node)?;
    let meta = v8core::Metadata::load(&core, &binary)?;
    let bar = crate::live::bar(&format!("reading {}", path.display()), None);
    let report = |done: u64, total: u64| {
        if progress {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let census = v8core::census::census(&core, &meta, &report)
        .with_context(|| format!("{}: the heap could not be read", path.display()))?;
    bar.finish_and_clear();
    let stacks = v8core::stack::stacks(&core, &meta, &binary);
    let process = core.process();
    let opened = Opened {
        path: path.display().to_string(),
        bytes: file.bytes().len() as u64,
        pid: process.map(|p| p.pid),
        command: process.map(|p| p.args.clone()),
        binary: binary.path().display().to_string(),
        binary_check: match binary.identity() {
            v8core::Identity::BuildId(id) => format!("build id {id}"),
            v8core::Identity::Unchecked { reason } => format!("build id not checked: {reason}"),
        },
        threads: core.threads().len(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(Read {
        opened,
        census,
        stacks,
    })
}

fn describe(out: &mut impl Write, o: &Opened) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {}{}, {} threads, {} core; {} ({}); read in {:.1} s",
        o.path,
        o.pid.map_or("a process".to_owned(), |p| format!("PID {p}")),
        o.command
            .as_deref()
            .map(|c| format!(" `{}`", output::shorten(c, 60)))
            .unwrap_or_default(),
        o.threads,
        output::size(o.bytes),
        o.binary,
        o.binary_check,
        o.seconds
    )
}

fn print_stacks(out: &mut impl Write, stacks: &[ThreadStack], all: bool) -> std::io::Result<()> {
    let mut listed_others = false;
    for t in stacks {
        if !t.main && !all {
            if !listed_others {
                writeln!(out, "\nOther threads (--all-threads for their stacks):")?;
                listed_others = true;
            }
            let top = t
                .frames
                .iter()
                .find(|f| f.kind != FrameKind::V8)
                .map_or("no frames".to_owned(), frame_label);
            writeln!(out, "  thread {}: {top}", t.tid)?;
            continue;
        }
        writeln!(
            out,
            "\n{} (thread {}), innermost first:",
            if t.main { "Main thread" } else { "Thread" },
            t.tid
        )?;
        for (n, f) in t.frames.iter().enumerate() {
            writeln!(out, "  #{n:<3} {}", frame_label(f))?;
        }
        for note in &t.notes {
            writeln!(out, "  ({note})")?;
        }
    }
    Ok(())
}

fn frame_label(f: &Frame) -> String {
    let kind = match f.kind {
        FrameKind::Js => "js",
        FrameKind::Native => "native",
        FrameKind::V8 => "v8",
    };
    // A native frame's binary by its file name: the path is in `--json`.
    let shown = match (&f.kind, &f.script) {
        (FrameKind::Native, Some(binary)) => format!("{} ({})", f.function, file_name(binary)),
        _ => f.to_string(),
    };
    format!("{kind:<6} {shown}")
}

/// `Order (orders.js:3)`: a class with its constructor's file and line, when known.
fn class_label(name: &str, location: Option<&v8core::census::Location>) -> String {
    match location {
        Some(l) => format!("{name} ({}:{})", file_name(&l.script), l.line),
        None => name.to_owned(),
    }
}

fn file_name(script: &str) -> &str {
    script.rsplit(['/', '\\']).next().unwrap_or(script)
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / total as f64)
    }
}
