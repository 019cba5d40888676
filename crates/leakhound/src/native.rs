//! The native-memory part of `hunt` and `native`: a recording read, named, analysed, printed,
//! and written as a flame graph of live growth and a pprof profile.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use leakhound_live::native::Symbols;
use leakhound_live::native::analysis::{self, Options, ProcessReport, StackReport, Verdict};
use leakhound_live::native::record::{self, Process};
use leakhound_live::native::symbols::{Frame, FrameKind, Symbolizer};
use serde::Serialize;

use crate::output;

mod pprof;

#[derive(Serialize)]
pub struct NativeJson {
    pub dir: PathBuf,
    pub verdict: Verdict,
    pub processes: Vec<ProcessReport>,
    /// Processes recorded but not shown (no tracked growth).
    pub quiet_processes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flamegraph: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pprof: Option<PathBuf>,
    /// The live growth of the main process by stack (frames outermost first), for the HTML
    /// report's flame graph: the flame graph file holds it for other readers.
    #[serde(skip)]
    pub growth: Growth,
}

/// Live growth by stack over a window: what the flame graphs draw.
#[derive(Debug, Default)]
pub struct Growth {
    pub pid: u32,
    /// `from 1.0 s to 3.0 s after start`.
    pub window: String,
    pub stacks: Vec<(Vec<crate::report::flame::Frame>, u64)>,
}

pub struct Request<'a> {
    pub dir: &'a Path,
    /// Only this process (a hunt's app); otherwise every process that grew.
    pub pid: Option<u32>,
    /// The dumps marking the checkpoints, by token (a hunt's snapshots).
    pub checkpoints: Option<Vec<String>>,
    pub top: usize,
    /// Whether to judge fragmentation (see `analysis::Options`).
    pub fragmentation: bool,
    pub flamegraph: Option<PathBuf>,
    pub pprof: Option<PathBuf>,
    /// Scripts' source maps, for the original positions of JavaScript frames.
    pub sources: &'a crate::sources::Disk,
}

pub fn analyse(request: Request) -> anyhow::Result<NativeJson> {
    let mut processes = record::read(request.dir)?;
    if let Some(pid) = request.pid {
        processes.retain(|p| p.pid == pid);
        anyhow::ensure!(
            !processes.is_empty(),
            "no native recording of PID {pid} in {}: was it started under the tracker?",
            request.dir.display()
        );
    }
    let options = Options {
        checkpoints: request.checkpoints.clone(),
        top: request.top,
        fragmentation: request.fragmentation,
    };
    // The flame graph and the profile are of the process whose tracked memory grew most (from
    // its dumps' totals, so each process is named and analysed once).
    let tracked_growth = |p: &Process| {
        analysis::window(p, options.checkpoints.as_deref())
            .map_or(0, |(a, b)| b.live_bytes() as i64 - a.live_bytes() as i64)
    };
    let main = (0..processes.len()).max_by_key(|&i| tracked_growth(&processes[i]));
    let mut symbolizer = Symbolizer::new();
    let mut reports = Vec::new();
    let mut growth = Growth::default();
    for (i, process) in processes.iter().enumerate() {
        let mut symbols = Symbols::of(process, &mut symbolizer).with_sources(request.sources);
        reports.push(analysis::analyze(process, &options, &mut |id| {
            symbols.stack(id)
        }));
        if Some(i) == main {
            growth = live_growth(process, &options, &mut symbols);
            if let Some(path) = &request.flamegraph {
                flamegraph(path, &growth)?;
            }
            if let Some(path) = &request.pprof {
                pprof::write(path, process, &options, &mut symbols)?;
            }
        }
    }
    let shown = request.pid.is_some() || reports.len() == 1;
    let total = reports.len();
    if !shown {
        reports.retain(|r| r.tracked.growth() > 0 || r.verdict != Verdict::None);
    }
    reports.sort_by_key(|r| std::cmp::Reverse(r.tracked.growth()));
    let verdict = [
        Verdict::NativeLeak,
        Verdict::BuffersFromJs,
        Verdict::Fragmentation,
    ]
    .into_iter()
    .find(|v| reports.iter().any(|r| r.verdict == *v))
    .unwrap_or(Verdict::None);
    Ok(NativeJson {
        dir: request.dir.to_owned(),
        verdict,
        quiet_processes: total - reports.len(),
        processes: reports,
        flamegraph: request.flamegraph,
        pprof: request.pprof,
        growth,
    })
}

/// Live growth per stack between the window's first and last dump.
fn live_growth(process: &Process, options: &Options, symbols: &mut Symbols) -> Growth {
    let Some((first, last)) = analysis::window(process, options.checkpoints.as_deref()) else {
        return Growth::default();
    };
    let mut stacks = Vec::new();
    for end in &last.stacks {
        let before = first.stack(end.id).map_or(0, |s| s.live_bytes);
        let growth = end.live_bytes.saturating_sub(before);
        if growth == 0 {
            continue;
        }
        let frames = symbols
            .stack(end.id)
            .iter()
            .rev()
            .map(|f| {
                let kind = match f.kind {
                    FrameKind::Js => "js",
                    FrameKind::Builtin => "builtin",
                    FrameKind::Native if f.module.starts_with("libc.") => "libc",
                    FrameKind::Native => "native",
                    FrameKind::Unknown => "other",
                };
                (label(f), kind)
            })
            .collect();
        stacks.push((frames, growth));
    }
    Growth {
        pid: process.pid,
        window: format!(
            "from {:.1} s to {:.1} s after start",
            first.time_ms as f64 / 1000.0,
            last.time_ms as f64 / 1000.0
        ),
        stacks,
    }
}

/// The growth as an SVG flame graph (folded lines `outer;…;inner bytes`, drawn by inferno).
fn flamegraph(path: &Path, growth: &Growth) -> anyhow::Result<()> {
    let mut lines: Vec<String> = growth
        .stacks
        .iter()
        .map(|(frames, bytes)| {
            let names: Vec<String> = frames.iter().map(|(f, _)| f.replace(';', ",")).collect();
            format!(
                "{} {bytes}",
                if names.is_empty() {
                    "[no frames]".into()
                } else {
                    names.join(";")
                }
            )
        })
        .collect();
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("Native memory: live growth by stack (PID {})", growth.pid);
    options.subtitle = Some(format!("{}; sampled estimates, bytes", growth.window));
    options.count_name = "bytes".into();
    options.colors =
        inferno::flamegraph::color::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    let file = leakhound_live::capture::create_private(path)?;
    let mut out = std::io::BufWriter::new(file);
    if lines.is_empty() {
        // inferno refuses an empty input; an empty graph still says what it is.
        lines.push("[nothing grew] 1".into());
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut out)
        .with_context(|| format!("writing {}", path.display()))?;
    out.flush()?;
    Ok(())
}

pub fn print(out: &mut impl Write, native: &NativeJson) -> std::io::Result<()> {
    for p in &native.processes {
        print_process(out, p)?;
    }
    if native.quiet_processes > 0 {
        writeln!(
            out,
            "({} more recorded, with no tracked growth)",
            output::counted(native.quiet_processes as u64, "process", "processes")
        )?;
    }
    writeln!(out, "Native verdict: {}", verdict_text(native.verdict))?;
    Ok(())
}

/// The HTML report's native section, and what it cut.
pub fn section(native: &NativeJson) -> (crate::report::Native, Vec<String>) {
    let mut cut = Vec::new();
    let g = &native.growth;
    let flame = (!g.stacks.is_empty()).then(|| {
        let (tree, merged) = crate::report::flame::tree(&g.stacks, "all live growth");
        if merged {
            cut.push(format!(
                "Flame graph: frames too small to see are merged into one \"(N smaller frames)\" each, to keep it under {} frames",
                output::count(crate::report::flame::MAX_NODES as u64)
            ));
        }
        tree
    });
    let section = crate::report::Native {
        verdict: headline(native.verdict).to_owned(),
        processes: native.processes.clone(),
        quiet_processes: native.quiet_processes,
        flame,
        flame_title: format!(
            "Live growth by stack of PID {}, {} (sampled estimates)",
            g.pid, g.window
        ),
        dir: native.dir.display().to_string(),
        signatures: native
            .processes
            .iter()
            .flat_map(|p| &p.stacks)
            .filter_map(|s| s.signature)
            .filter_map(|sig| {
                let key = serde_json::to_value(sig).ok()?.as_str()?.to_owned();
                Some((key, sig.meaning()))
            })
            .collect(),
    };
    (section, cut)
}

/// A frame as the text and the flame graph name it: `handle (/srv/app/dist/server.js:12:34)`,
/// with the original position of JavaScript beside its generated one when its script has a
/// source map: `handle (/srv/app/dist/server.js:12:34 (src/server.ts:10:3))`.
pub fn label(f: &Frame) -> String {
    match &f.location {
        Some(at) => format!(
            "{} ({})",
            f.name,
            crate::output::position(at.clone(), f.original.as_ref())
        ),
        None => f.name.clone(),
    }
}

/// What to do next after a native analysis.
pub fn next_steps(native: &NativeJson) -> Vec<String> {
    let suspect = native
        .processes
        .iter()
        .flat_map(|p| &p.stacks)
        .find(|s| s.suspect);
    match (native.verdict, suspect) {
        (Verdict::NativeLeak, Some(s)) => {
            let by = s
                .allocated_by
                .as_ref()
                .map_or("the top stack".to_owned(), label);
            let from = s
                .js_callers
                .first()
                .map_or(String::new(), |c| format!(", called from {}", label(&c.frame)));
            vec![
                format!(
                    "Read the code of {by}{from}: what it allocates is never freed. Look for a missing free/delete, a cache without eviction, or a handle that is never closed"
                ),
                "The flame graph shows every stack that grew; search it for your addon's or module's name".into(),
            ]
        }
        (Verdict::Fragmentation, _) => vec![
            "Nothing leaks: glibc keeps freed memory. Try MALLOC_ARENA_MAX=2, or run under jemalloc (LD_PRELOAD=libjemalloc.so.2)".into(),
        ],
        (Verdict::BuffersFromJs, _) => vec![
            "The native memory is Buffer/ArrayBuffer contents that JS still holds: the JS heap section names who holds them".into(),
        ],
        _ => vec![
            "No native stack grew steadily. A slow leak needs a longer recording (--duration) or more load".into(),
        ],
    }
}

/// The verdict as a page's headline (the terminal's shouting left out).
pub fn headline(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::NativeLeak => {
            "Native leak suspected: a native stack keeps memory alive that grows every round"
        }
        other => verdict_text(other),
    }
}

pub fn verdict_text(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::NativeLeak => {
            "NATIVE LEAK SUSPECTED: a native stack keeps memory alive that grows every round"
        }
        Verdict::BuffersFromJs => {
            "native memory grows in ArrayBuffer contents (Buffers) held from JS: the heap snapshot names their holder"
        }
        Verdict::Fragmentation => {
            "fragmentation, not a leak: glibc holds more and more free memory while live allocations stay flat (try MALLOC_ARENA_MAX=2, or jemalloc)"
        }
        Verdict::None => "no native growth suspected",
    }
}

fn print_process(out: &mut impl Write, p: &ProcessReport) -> std::io::Result<()> {
    let seconds = |ms: u64| ms as f64 / 1000.0;
    let window = match (p.checkpoints.first(), p.checkpoints.last()) {
        (Some(a), Some(b)) => format!(
            "{} checkpoints from {:.1} s to {:.1} s",
            p.checkpoints.len(),
            seconds(*a),
            seconds(*b)
        ),
        _ => "no dumps".into(),
    };
    // The flags leakhound added are left out of the command line shown.
    let ours = ["--inspect=127.0.0.1:0"]
        .iter()
        .chain(&leakhound_live::native::NAMING_FLAGS)
        .chain(&leakhound_live::native::EXACT_JS_FLAGS);
    let ours: Vec<&str> = ours.copied().collect();
    let cmdline: Vec<&str> = p.cmdline.split(' ').filter(|w| !ours.contains(w)).collect();
    writeln!(
        out,
        "Native memory of PID {} ({}): {window}",
        p.pid,
        output::shorten(&cmdline.join(" "), 70)
    )?;
    writeln!(
        out,
        "  sampled once per {} allocated on average (the tracker's tables: {} of RSS){}",
        output::size(p.interval),
        output::size(p.tracker_memory),
        if p.halvings > 0 {
            format!(
                " (the tables filled {} times: the rate was halved, estimates stay unbiased)",
                p.halvings
            )
        } else {
            String::new()
        }
    )?;
    if p.state != "on" {
        writeln!(out, "  warning: the tracker in this process is {}", p.state)?;
    }
    if p.dropped > 0 {
        writeln!(
            out,
            "  warning: {} samples found no room and are not counted as live",
            output::count(p.dropped)
        )?;
    }
    writeln!(
        out,
        "  RSS {}; malloc in use {}, free in its arenas {}",
        change(&p.rss),
        change(&p.malloc_in_use),
        change(&p.malloc_free)
    )?;
    writeln!(
        out,
        "  tracked live allocations {} (± {})",
        change(&p.tracked),
        output::size(p.tracked_error)
    )?;
    // In full: suspects, and growth of 1 MB or more that no signature explains; explained
    // growth in one line each.
    let (explained, unexplained): (Vec<&StackReport>, Vec<&StackReport>) = p
        .stacks
        .iter()
        .filter(|s| s.suspect || s.growth() >= (1 << 20))
        .partition(|s| !s.suspect && s.signature.is_some());
    for s in unexplained.iter().take(5) {
        let window_ms = p
            .checkpoints
            .last()
            .zip(p.checkpoints.first())
            .map_or(0, |(b, a)| b.saturating_sub(*a));
        print_stack(out, s, window_ms)?;
    }
    if !explained.is_empty() {
        writeln!(out, "\n  explained growth:")?;
    }
    for s in &explained {
        let by = s.allocated_by.as_ref().map_or(String::new(), |f| {
            format!(", allocated by {}", output::shorten(&f.name, 60))
        });
        let from = match s.signature {
            // Whatever JS ran when the inspector's message was handled is not a caller.
            Some(analysis::Signature::Inspector) => String::new(),
            _ => s
                .js_caller
                .as_ref()
                .map_or(String::new(), |f| format!(" from {}", label(f))),
        };
        writeln!(
            out,
            "    +{} ± {}: {}{by}{from}",
            output::size(s.growth() as u64),
            output::size(s.error),
            s.signature.map_or("", |sig| sig.label()),
        )?;
    }
    let rest = p.stacks.len() - unexplained.len().min(5) - explained.len() + p.more_stacks;
    if rest > 0 {
        writeln!(
            out,
            "  ({} more stacks grew less; all in --json and the flame graph)",
            output::count(rest as u64)
        )?;
    }
    if p.fragmentation {
        writeln!(
            out,
            "  glibc's free memory grew by {} while tracked live memory grew by {}: fragmentation",
            output::size(p.malloc_free.growth().max(0) as u64),
            output::size(p.tracked.growth().max(0) as u64)
        )?;
    }
    Ok(())
}

/// One stack in full; `window_ms` is the time its growth was measured over.
fn print_stack(out: &mut impl Write, s: &StackReport, window_ms: u64) -> std::io::Result<()> {
    let mark = if s.suspect { "!" } else { " " };
    let objects = if s.objects_growth >= 1.0 {
        format!(
            " ({} of ~{})",
            output::counted(s.objects_growth.round() as u64, "block", "blocks"),
            output::size((s.growth() as f64 / s.objects_growth) as u64)
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "\n{mark} +{} ± {} live{objects}; {:.0} % of what it allocated meanwhile is still alive",
        output::size(s.growth() as u64),
        output::size(s.error),
        s.retained_share * 100.0
    )?;
    let series: Vec<String> = s.series.iter().map(|&b| output::size(b)).collect();
    writeln!(out, "    live at each checkpoint: {}", series.join(" → "))?;
    if window_ms >= 60_000 {
        writeln!(
            out,
            "    at this pace: +{} per hour",
            output::size(s.per_hour.max(0.0) as u64)
        )?;
    }
    match (&s.allocated_by, s.frames.first()) {
        (Some(f), _) => writeln!(out, "    allocated by  {}  [{}]", label(f), f.module)?,
        (None, Some(f)) if s.frames.len() <= 2 => writeln!(
            out,
            "    allocated by  ? (the stack stops in {} [{}], built without frame pointers: its callers cannot be walked; Node's official builds link a libstdc++ that has them)",
            f.name, f.module
        )?,
        _ => {}
    }
    let total: u64 = s.js_callers.iter().map(|c| c.growth).sum();
    for (i, c) in s.js_callers.iter().take(3).enumerate() {
        let share = if s.js_callers.len() > 1 && total > 0 {
            format!(" ({:.0} %)", c.growth as f64 * 100.0 / total as f64)
        } else {
            String::new()
        };
        let head = if i == 0 { "called from" } else { "        and" };
        writeln!(out, "    {head}   {}  [JS]{share}", label(&c.frame))?;
    }
    if s.merged > 1 {
        writeln!(
            out,
            "    (one call path recorded as {} stacks: JIT tiers or call routes differ)",
            s.merged
        )?;
    }
    if let Some(sig) = s.signature {
        writeln!(out, "    what it is:   {}", sig.meaning())?;
    }
    writeln!(out, "    {}", s.why)?;
    writeln!(out, "    stack:")?;
    for f in interesting(&s.frames).take(14) {
        let tag = match f.kind {
            FrameKind::Js => "JS",
            FrameKind::Builtin => "V8",
            _ => &f.module,
        };
        writeln!(out, "      {}  [{tag}]", output::shorten(&label(f), 110))?;
    }
    Ok(())
}

/// The frames worth reading: V8's entry trampolines and adaptors are left out (they say only
/// that JS was called), the C++/JS boundary (`Builtins_CEntry`, API callbacks) is kept.
fn interesting(frames: &[Frame]) -> impl Iterator<Item = &Frame> {
    frames.iter().filter(|f| {
        !(f.kind == FrameKind::Builtin
            && !f.name.contains("CEntry")
            && !f.name.contains("CallApiCallback")
            && !f.name.contains("CallFunctionTemplate"))
    })
}

fn change(c: &analysis::Change) -> String {
    let growth = c.growth();
    format!(
        "{} → {} ({}{})",
        output::size(c.before),
        output::size(c.after),
        if growth >= 0 { "+" } else { "-" },
        output::size(growth.unsigned_abs())
    )
}
