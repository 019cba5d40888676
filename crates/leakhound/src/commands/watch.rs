//! `leakhound watch`: which memory of a process grows? RSS split into V8 heap, malloc heap and
//! the rest over time, with trends, a verdict, files and Prometheus metrics.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use leakhound_live::attach::Limits;
use leakhound_live::memory::{Component, Sample};
use leakhound_live::procfs::{self, Process};
use leakhound_live::sampler::Sampler;
use leakhound_live::timeline::{self, Diagnosis, Metric, Trend, Verdict};
use leakhound_live::{Error, capture, cdp};
use serde::Serialize;

use crate::cli::WatchArgs;
use crate::guard::{self, Capture, Guard};
use crate::live::install_interrupt_handler;
use crate::metrics::Metrics;
use crate::output;
use crate::report::{self, Page, Timeline};

/// How often `--match` looks for new processes.
const RESCAN: Duration = Duration::from_secs(5);

/// One watched process.
struct Watched {
    name: String,
    sampler: Option<Sampler>,
    samples: Vec<Sample>,
    exited: bool,
    /// The trends and the verdict, refreshed every [`trend_every`].
    trends: Vec<(Metric, Trend)>,
    diagnosis: Option<Diagnosis>,
    /// With `--capture-on-growth`.
    guard: Option<Guard>,
}

impl Watched {
    fn refresh(&mut self) {
        self.trends = timeline::trends(&self.samples);
        self.diagnosis = Some(timeline::diagnose_with(&self.samples, &self.trends));
    }

    fn trend(&self, key: &str) -> Option<&Trend> {
        self.trends
            .iter()
            .find(|(m, _)| m.key() == key)
            .map(|(_, t)| t)
    }
}

/// How often trends are recomputed: they cost O(n²) in the (thinned) samples, and an hourly
/// slope does not change in a tick.
fn trend_every(samples: usize) -> Duration {
    if samples < 200 {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(15)
    }
}

#[derive(Serialize)]
struct ProcessJson<'a> {
    pid: u32,
    name: &'a str,
    samples: usize,
    exited: bool,
    /// Seconds from the first to the last sample.
    span_seconds: f64,
    latest: Option<&'a Sample>,
    /// The last smaps breakdown (smaps is not read at every sample).
    latest_breakdown: Option<leakhound_live::memory::Breakdown>,
    diagnosis: Option<&'a Diagnosis>,
    trends: BTreeMap<&'static str, Trend>,
    /// Evidence taken by `--capture-on-growth`.
    #[serde(skip_serializing_if = "<[Capture]>::is_empty")]
    captures: &'a [Capture],
}

#[derive(Serialize)]
struct WatcherJson {
    samples: usize,
    cpu_seconds: f64,
    cpu_per_sample_ms: f64,
    /// The watcher's CPU time over the watch's wall time.
    share_of_one_core: f64,
    peak_rss: u64,
}

pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.html {
        crate::output::check_file_path(path)?;
    }
    install_interrupt_handler();
    let pattern = args
        .pattern
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--match")?;
    if args.inspect.is_some() && (args.pids.len() != 1 || pattern.is_some()) {
        anyhow::bail!("--inspect goes with exactly one --pid");
    }
    let mut jsonl = args.out.as_deref().map(private_writer).transpose()?;
    let mut csv = args.csv.as_deref().map(private_writer).transpose()?;
    if let Some(csv) = &mut csv {
        writeln!(csv, "{}", csv_header())?;
    }
    let metrics = Metrics::default();
    if let Some(addr) = args.prometheus {
        let bound = metrics.serve(addr)?;
        eprintln!("serving Prometheus metrics on http://{bound}/metrics");
    }
    let limits = Limits {
        answer: args.timeout,
        open: args.timeout,
    };
    // The components follow the samples whenever the cost rule allows: a short watch of a
    // fast grower then has enough of them to say which memory grows.
    let smaps_every = args.smaps_every.unwrap_or(args.interval);

    let mut watched: BTreeMap<u32, Watched> = BTreeMap::new();
    // Processes that exited, kept for the report.
    let mut finished: Vec<(u32, Watched)> = Vec::new();
    let guard = args.capture_on_growth.then(|| guard::Settings {
        dir: args.capture_dir.clone(),
        every: args.capture_every,
        profile: args.capture_profile,
        keep: args.keep as usize,
        limits: Limits {
            answer: args.timeout.max(Duration::from_secs(10)),
            open: Duration::from_secs(5),
        },
    });
    if guard.is_some() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&args.capture_dir)
            .with_context(|| format!("creating {}", args.capture_dir.display()))?;
    }
    let new_watched = |pid: u32, sampler: Sampler| Watched {
        name: args
            .name
            .as_deref()
            .map_or_else(|| process_name(pid), str::to_owned),
        sampler: Some(sampler),
        samples: Vec::new(),
        exited: false,
        trends: Vec::new(),
        diagnosis: None,
        guard: guard.clone().map(|settings| Guard::new(pid, settings)),
    };
    for &pid in &args.pids {
        let sampler = Sampler::new(pid, smaps_every, args.inspect.as_deref(), limits)?;
        watched.insert(pid, new_watched(pid, sampler));
    }
    let start = Instant::now();
    let cpu_start = own_cpu();
    let live = std::io::stderr().is_terminal() && !args.json;
    let mut drawn = 0;
    let mut last_scan: Option<Instant> = None;
    let mut last_trend: Option<Instant> = None;
    let mut taken = 0usize;
    loop {
        let tick = Instant::now();
        if let Some(re) = &pattern
            && last_scan.is_none_or(|l| l.elapsed() >= RESCAN)
        {
            last_scan = Some(tick);
            for pid in matching(re) {
                if !watched.contains_key(&pid)
                    && let Ok(sampler) = Sampler::new(pid, smaps_every, None, limits)
                {
                    watched.insert(pid, new_watched(pid, sampler));
                }
            }
        }
        let t = start.elapsed().as_secs_f64();
        let mut gone = Vec::new();
        for (&pid, w) in watched.iter_mut() {
            let Some(sampler) = &mut w.sampler else {
                continue;
            };
            match sampler.sample(t) {
                Ok(sample) => {
                    taken += 1;
                    metrics.update(&w.name, &sample);
                    if let Some(out) = &mut jsonl {
                        serde_json::to_writer(
                            &mut *out,
                            &SampleLine {
                                name: &w.name,
                                sample: &sample,
                            },
                        )?;
                        writeln!(out)?;
                    }
                    if let Some(out) = &mut csv {
                        writeln!(out, "{}", csv_row(&w.name, &sample))?;
                    }
                    w.samples.push(sample);
                }
                Err(Error::NoSuchProcess(_)) => gone.push(pid),
                // One process of a fleet failing does not end the watch of the others.
                Err(e) if pattern.is_some() => {
                    eprintln!("warning: PID {pid}: {e}; no longer watched");
                    gone.push(pid);
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Out of the map: a new process may get the same PID.
        for pid in gone {
            if let Some(mut w) = watched.remove(&pid) {
                w.exited = true;
                w.sampler = None;
                metrics.remove(pid, &w.name);
                finished.push((pid, w));
            }
        }
        for out in [&mut jsonl, &mut csv].into_iter().flatten() {
            // Per tick, so `tail -f` follows and a killed watch loses nothing.
            out.flush()?;
        }
        let samples = watched.values().map(|w| w.samples.len()).max().unwrap_or(0);
        if last_trend.is_none_or(|l| l.elapsed() >= trend_every(samples)) {
            last_trend = Some(tick);
            for (&pid, w) in watched.iter_mut() {
                w.refresh();
                for (metric, trend) in &w.trends {
                    metrics.set_growth(pid, &w.name, metric.key(), trend);
                }
                if let (Some(guard), Some(d)) = (&mut w.guard, &w.diagnosis) {
                    guard.consider(pid, &w.name, d, t);
                }
            }
        }
        for w in watched
            .values_mut()
            .chain(finished.iter_mut().map(|(_, w)| w))
        {
            if let Some(capture) = w.guard.as_mut().and_then(|g| g.finished(false)) {
                report_capture(capture, &mut jsonl, live, &mut drawn)?;
            }
        }
        if live {
            drawn = redraw(drawn, &watched, start.elapsed())?;
        }
        let done = args.duration.is_some_and(|d| start.elapsed() >= d)
            || (pattern.is_none() && watched.is_empty());
        if done || cdp::interrupted() {
            break;
        }
        let next = tick + args.interval;
        while Instant::now() < next && !cdp::interrupted() {
            // An app that finishes while we hold an inspector session waits for us to go.
            for w in watched.values_mut() {
                if let Some(s) = &mut w.sampler {
                    s.poll();
                }
            }
            thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
    }
    let mut watched: Vec<(u32, Watched)> = watched.into_iter().chain(finished).collect();
    watched.sort_by_key(|(pid, _)| *pid);
    for (_, w) in &mut watched {
        if let Some(s) = &mut w.sampler {
            s.close();
        }
        w.refresh();
        // A capture under way is finished (Ctrl-C cuts it short).
        if let Some(capture) = w.guard.as_mut().and_then(|g| g.finished(true)) {
            report_capture(capture, &mut jsonl, false, &mut drawn)?;
        }
    }
    if let Some(out) = &mut jsonl {
        out.flush()?;
    }
    if let Some(path) = &args.svg {
        write_svgs(path, &watched)?;
    }
    if let Some(path) = &args.html {
        crate::report::write_file(path, &mut page(&watched))?;
        eprintln!("wrote {}", path.display());
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = own_cpu() - cpu_start;
    let watcher = WatcherJson {
        samples: taken,
        cpu_seconds: cpu,
        cpu_per_sample_ms: 1000.0 * cpu / taken.max(1) as f64,
        share_of_one_core: cpu / wall.max(1e-9),
        peak_rss: Process::new(std::process::id())
            .and_then(|p| p.memory())
            .map_or(0, |m| m.rss_peak),
    };

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        let processes: Vec<ProcessJson> = watched
            .iter()
            .map(|(pid, w)| ProcessJson {
                pid: *pid,
                name: &w.name,
                samples: w.samples.len(),
                exited: w.exited,
                span_seconds: timeline::span_of(&w.samples),
                latest: w.samples.last(),
                latest_breakdown: w.samples.iter().rev().find_map(|s| s.breakdown),
                diagnosis: w.diagnosis.as_ref(),
                trends: w.trends.iter().map(|(m, t)| (m.key(), *t)).collect(),
                captures: w.guard.as_ref().map_or(&[], |g| &g.captures),
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({ "processes": processes, "watcher": watcher }),
        )?;
        writeln!(out)?;
    } else {
        for (pid, w) in &watched {
            for line in block(*pid, w) {
                writeln!(out, "{line}")?;
            }
        }
        writeln!(
            out,
            "watcher: {} samples, {:.2} ms CPU per sample ({:.2} % of one core), peak RSS {}",
            taken,
            watcher.cpu_per_sample_ms,
            100.0 * watcher.share_of_one_core,
            output::size(watcher.peak_rss)
        )?;
    }
    out.flush()?;
    Ok(())
}

/// A finished capture: one line on stderr (below the live view, which is then drawn anew) and
/// one in the JSON lines.
fn report_capture(
    capture: &Capture,
    jsonl: &mut Option<BufWriter<File>>,
    live: bool,
    drawn: &mut usize,
) -> anyhow::Result<()> {
    if live {
        *drawn = 0;
    }
    eprintln!("{}", capture.line());
    if let Some(out) = jsonl {
        #[derive(Serialize)]
        struct CaptureLine<'a> {
            event: &'static str,
            #[serde(flatten)]
            capture: &'a Capture,
        }
        serde_json::to_writer(
            &mut *out,
            &CaptureLine {
                event: "capture",
                capture,
            },
        )?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}

#[derive(Serialize)]
struct SampleLine<'a> {
    name: &'a str,
    #[serde(flatten)]
    sample: &'a Sample,
}

/// The script name of a node process (`server` for `node --flag server.js`, `eval` for
/// `node -e …`), else its executable's name.
fn process_name(pid: u32) -> String {
    let cmdline = Process::new(pid)
        .and_then(|p| p.cmdline())
        .unwrap_or_default();
    let mut args = cmdline.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-e" | "--eval" | "-p" | "--print" => return "eval".to_owned(),
            // Flags whose value is the next argument.
            "-r" | "--require" | "--import" | "--loader" | "--experimental-loader" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => {
                if let Some(stem) = Path::new(a).file_stem() {
                    return stem.to_string_lossy().into_owned();
                }
            }
        }
    }
    cmdline
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map_or_else(|| "node".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// Node processes (other than us) whose command line matches `re`.
fn matching(re: &regex::Regex) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let Ok(p) = Process::new(pid) else {
                return false;
            };
            let is_node = p.exe().is_ok_and(|e| procfs::is_node(&e));
            is_node && p.cmdline().is_ok_and(|c| re.is_match(&c.join(" ")))
        })
        .collect()
}

fn csv_header() -> String {
    let mut columns = vec!["t", "unix_ms", "pid", "name"];
    columns.extend(Sample::FIGURES);
    columns.push("after_snapshot");
    columns.join(",")
}

fn csv_row(name: &str, s: &Sample) -> String {
    // Names are script names; quote them in case one holds a comma or quote.
    let mut cells = vec![
        format!("{:.3}", s.t),
        s.unix_ms.to_string(),
        s.pid.to_string(),
        format!("\"{}\"", name.replace('"', "\"\"")),
    ];
    cells.extend(
        s.figures()
            .iter()
            .map(|(_, v)| v.map(|v| v.to_string()).unwrap_or_default()),
    );
    cells.push(s.after_snapshot.to_string());
    cells.join(",")
}

fn private_writer(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(capture::create_private(path)?))
}

/// One SVG per process: FILE itself for one, FILE with `-PID` before the extension for more.
fn write_svgs(path: &Path, watched: &[(u32, Watched)]) -> anyhow::Result<()> {
    for (pid, w) in watched {
        let file = if watched.len() == 1 {
            path.to_owned()
        } else {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            path.with_file_name(format!("{stem}-{pid}.svg"))
        };
        let title = format!("{} (PID {pid})", w.name);
        let mut f = std::io::BufWriter::new(capture::create_private(&file)?);
        crate::report::timeline::write(&mut f, &w.samples, &title, &[])
            .and_then(|()| f.flush())
            .with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// The HTML report of a watch: each process's timeline and verdict.
fn page(watched: &[(u32, Watched)]) -> Page {
    let verdicts: Vec<Verdict> = watched
        .iter()
        .filter_map(|(_, w)| w.diagnosis.as_ref().map(|d| d.verdict))
        .collect();
    let leaking = |v: &Verdict| {
        matches!(
            v,
            Verdict::JsLeak | Verdict::NativeLeak | Verdict::ExternalLeak
        )
    };
    let level = if verdicts.iter().any(leaking) {
        "leak"
    } else if verdicts.iter().all(|v| *v == Verdict::NoLeak) && !verdicts.is_empty() {
        "ok"
    } else {
        "warn"
    };
    let lines: Vec<String> = watched
        .iter()
        .map(|(pid, w)| {
            let message = w
                .diagnosis
                .as_ref()
                .map_or("no samples", |d| d.message.as_str());
            format!("{} (PID {pid}): {message}", w.name)
        })
        .collect();
    let timelines = watched
        .iter()
        .map(|(pid, w)| {
            let mut t = Timeline::new(format!("{} (PID {pid})", w.name), &w.samples, Vec::new());
            t.note = w.diagnosis.as_ref().map(|d| d.message.clone());
            t
        })
        .collect();
    Page {
        command: "watch",
        title: format!(
            "leakhound watch: {}",
            watched
                .iter()
                .map(|(pid, w)| format!("{} (PID {pid})", w.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        verdict: report::Verdict {
            level,
            headline: match level {
                "leak" => {
                    "Memory grows: the verdicts below name the kind of memory and the next tool"
                        .into()
                }
                "ok" => "No growth after the warm-up".into(),
                _ => "No verdict yet: watch longer, under load".into(),
            },
            next: lines,
        },
        facts: watched
            .iter()
            .map(|(pid, w)| {
                (
                    format!("PID {pid}"),
                    format!(
                        "{}: {} samples over {}",
                        w.name,
                        output::count(w.samples.len() as u64),
                        timeline::human_seconds(timeline::span_of(&w.samples))
                    ),
                )
            })
            .collect(),
        timelines,
        commands: vec![("this watch".into(), report::invocation())],
        ..Page::default()
    }
}

/// The lines shown for one process: current values, growth rates, a sparkline, the verdict.
fn block(pid: u32, w: &Watched) -> Vec<String> {
    let mut lines = vec![format!(
        "PID {pid} ({}){} · {} samples over {}",
        w.name,
        if w.exited { " · exited" } else { "" },
        w.samples.len(),
        timeline::human_seconds(timeline::span_of(&w.samples)),
    )];
    let Some(latest) = w.samples.last() else {
        return lines;
    };
    let last_breakdown = w.samples.iter().rev().find_map(|s| s.breakdown);
    let mut row = |label: &str, key: &str, value: Option<u64>, values: Vec<u64>| {
        let Some(value) = value else {
            return;
        };
        let rate = w.trend(key).map_or(String::new(), |t| {
            let sign = if t.slope_per_hour >= 0.0 { "+" } else { "-" };
            format!("{sign}{}/h", output::size(t.slope_per_hour.abs() as u64))
        });
        lines.push(format!(
            "  {label:<18} {:>10}  {rate:>14}  {}",
            output::size(value),
            sparkline(&values)
        ));
    };
    let recent = |f: &dyn Fn(&Sample) -> Option<u64>| -> Vec<u64> {
        let all: Vec<u64> = w.samples.iter().filter_map(f).collect();
        all[all.len().saturating_sub(40)..].to_vec()
    };
    row("RSS", "rss", Some(latest.rss), recent(&|s| Some(s.rss)));
    for c in Component::ALL {
        row(
            c.label(),
            c.key(),
            last_breakdown.map(|b| b.get(c)),
            recent(&|s| s.breakdown.map(|b| b.get(c))),
        );
    }
    let last_v8 = w.samples.iter().rev().find_map(|s| s.v8);
    row(
        "V8 heap used",
        "v8_heap_used",
        last_v8.map(|v| v.heap_used),
        recent(&|s| s.v8.map(|v| v.heap_used)),
    );
    row(
        "V8 external",
        "v8_external",
        last_v8.map(|v| v.external),
        recent(&|s| s.v8.map(|v| v.external)),
    );
    if let Some(d) = &w.diagnosis {
        lines.push(format!("  → {}", d.message));
        if d.verdict == timeline::Verdict::NativeLeak && !w.exited {
            // The command to run next, with this process's own command line.
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let words: Vec<String> = cmdline
                .split(|&b| b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            if !words.is_empty() {
                lines.push(format!("  next: leakhound native -- {}", words.join(" ")));
            }
        }
    }
    if let Some(last) = w.guard.as_ref().and_then(|g| g.captures.last()) {
        let count = w.guard.as_ref().map_or(0, |g| g.captures.len());
        lines.push(format!(
            "  captures: {count}, the latest in {}",
            last.dir.display()
        ));
    }
    lines
}

/// Redraws the live view on stderr in place of the `drawn` lines drawn before; returns how
/// many it drew.
fn redraw(
    drawn: usize,
    watched: &BTreeMap<u32, Watched>,
    elapsed: Duration,
) -> std::io::Result<usize> {
    let mut err = std::io::stderr().lock();
    if drawn > 0 {
        // Up `drawn` lines, clear to the end of the screen.
        write!(err, "\x1b[{drawn}A\x1b[J")?;
    }
    let mut lines = vec![format!(
        "watching {} process(es) for {} (Ctrl-C to stop)",
        watched.values().filter(|w| !w.exited).count(),
        timeline::human_seconds(elapsed.as_secs_f64())
    )];
    for (&pid, w) in watched {
        lines.extend(block(pid, w));
    }
    for l in &lines {
        writeln!(err, "{l}")?;
    }
    err.flush()?;
    Ok(lines.len())
}

fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (Some(&lo), Some(&hi)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    values
        .iter()
        .map(|&v| {
            let i = if hi == lo {
                0
            } else {
                ((v - lo) * 7 / (hi - lo)) as usize
            };
            BARS[i]
        })
        .collect()
}

/// This process's CPU time (user + system), in seconds.
fn own_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is the 1st, utime the 12th, stime the 13th.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / rustix::param::clock_ticks_per_second() as f64
}
