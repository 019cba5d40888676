//! What grew outside the JS heap, and who allocated it: plain data in, plain data out (no I/O;
//! the frames come symbolized), so the terminal, JSON and HTML reports share it.
//!
//! A recording is a series of dumps; the analysis compares a baseline dump with the last one,
//! through the checkpoints between (a hunt's snapshots, or every periodic dump):
//! - **per stack**: the live bytes at each checkpoint, their growth with its sampling error, the
//!   share of what it allocated in the window that is still alive, and a label when its frames
//!   match a known V8 signature;
//! - a stack is **suspect** when its growth is above the noise (3σ and ≥ [`MIN_GROWTH`]),
//!   grew in (almost) every interval, and still grew in the last one (a plateau is a cache that
//!   filled, not a leak); ArrayBuffer contents and the inspector's own memory are never native
//!   suspects (the first are held from JS: the heap snapshot names their holder);
//! - **fragmentation** when glibc's free-in-arena bytes grow while the sampled live bytes do not.

use serde::Serialize;

use super::record::{Dump, Process, StackCounters};
use super::symbols::{Frame, FrameKind};

/// Less growth than this is never a suspect, whatever the statistics say.
pub const MIN_GROWTH: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signature {
    /// `v8::internal::HandleScope::Extend`: handle blocks of 8176 bytes; a HandleScope missing
    /// or never closed in native code.
    HandleScope,
    /// `v8::internal::GlobalHandles::Create`: Global/Persistent handles never Reset.
    GlobalHandles,
    /// ArrayBuffer backing stores: Buffers and typed arrays held from JS.
    Buffers,
    /// The inspector and heap-snapshot machinery (leakhound's own snapshots).
    Inspector,
}

impl Signature {
    pub fn meaning(self) -> &'static str {
        match self {
            Signature::HandleScope => {
                "V8 handle blocks (HandleScope::Extend): native code creates handles outside a HandleScope, or keeps one open"
            }
            Signature::GlobalHandles => {
                "V8 global handles (GlobalHandles::Create): Persistent/Global handles created and never Reset"
            }
            Signature::Buffers => {
                "the contents of ArrayBuffers (Buffers, typed arrays): alive while JS holds them; the heap snapshot names the holder"
            }
            Signature::Inspector => {
                "the inspector and V8's heap-snapshot bookkeeping (leakhound's own snapshots)"
            }
        }
    }

    /// A few words for one line.
    pub fn label(self) -> &'static str {
        match self {
            Signature::HandleScope => "V8 handle blocks",
            Signature::GlobalHandles => "V8 global handles",
            Signature::Buffers => {
                "ArrayBuffer contents held from JS (the JS report names the holder)"
            }
            Signature::Inspector => "V8's bookkeeping of leakhound's own snapshots",
        }
    }

    fn of(frames: &[Frame]) -> Option<Signature> {
        let any = |needles: &[&str]| {
            frames
                .iter()
                .any(|f| needles.iter().any(|n| f.name.contains(n)))
        };
        if any(&[
            "HeapObjectsMap",
            "HeapSnapshot",
            "HeapProfiler",
            "v8_inspector",
            "node::inspector",
        ]) {
            Some(Signature::Inspector)
        } else if any(&["HandleScope::Extend"]) {
            Some(Signature::HandleScope)
        } else if any(&["GlobalHandles::Create"]) {
            Some(Signature::GlobalHandles)
        } else if any(&[
            "NodeArrayBufferAllocator",
            "BackingStore::Allocate",
            "ArrayBufferAllocator",
        ]) {
            Some(Signature::Buffers)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A stack outside the JS heap's reach keeps growing.
    NativeLeak,
    /// What grows natively is ArrayBuffer contents held from JS.
    BuffersFromJs,
    /// glibc keeps more and more free memory while live allocations do not grow.
    Fragmentation,
    None,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Change {
    pub before: u64,
    pub after: u64,
}

impl Change {
    pub fn growth(&self) -> i64 {
        self.after as i64 - self.before as i64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StackReport {
    /// The first of the recorded stacks merged into this site.
    pub id: u32,
    /// How many recorded stacks it merges (one call path, several JIT tiers or call routes).
    pub merged: usize,
    /// Innermost first.
    pub frames: Vec<Frame>,
    /// The innermost frame outside the C/C++ runtime: who called malloc or `new`.
    pub allocated_by: Option<Frame>,
    /// The innermost JavaScript frame of the stacks that grew most.
    pub js_caller: Option<Frame>,
    /// Every innermost JS frame whose stacks grew, with their growth, largest first (one path
    /// can show several: an inlined function leaves its caller as the innermost JS frame).
    pub js_callers: Vec<JsCaller>,
    pub live: Change,
    /// Two standard errors of the growth, from the sampling.
    pub error: u64,
    /// Live bytes at each checkpoint.
    pub series: Vec<u64>,
    /// Bytes it allocated in the window (estimated).
    pub allocated: u64,
    /// The growth over the window's length, per hour.
    pub per_hour: f64,
    /// The share of what it allocated in the window that is still alive.
    pub retained_share: f64,
    pub objects_growth: f64,
    /// Live bytes by age at the end: < 1 min, 1–5 min, 5–30 min, > 30 min.
    pub ages: [u64; 4],
    pub live_samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
    pub suspect: bool,
    /// Why it is (or is not) a suspect.
    pub why: String,
}

impl StackReport {
    pub fn growth(&self) -> i64 {
        self.live.growth()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JsCaller {
    pub frame: Frame,
    pub growth: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    pub pid: u32,
    pub cmdline: String,
    /// Milliseconds since the tracker started, at each checkpoint.
    pub checkpoints: Vec<u64>,
    pub rss: Change,
    /// The brk heap (`[heap]`).
    pub brk_heap: Change,
    /// The tracker's own tables in RAM at the end (part of RSS).
    pub tracker_memory: u64,
    pub malloc_in_use: Change,
    pub malloc_free: Change,
    /// Sampled live bytes, all stacks.
    pub tracked: Change,
    pub tracked_error: u64,
    /// The mean sampling interval at the end, and at the start.
    pub interval: u64,
    pub configured_interval: u64,
    /// Times a table filled and the rate was halved; samples with no room.
    pub halvings: u32,
    pub dropped: u64,
    /// `on`, or why tracking stopped.
    pub state: String,
    pub fragmentation: bool,
    /// Stacks that grew, largest growth first (at most `top`), and how many were left out.
    pub stacks: Vec<StackReport>,
    pub more_stacks: usize,
    pub verdict: Verdict,
}

pub struct Options {
    /// Dumps that mark the checkpoints: `None` for every dump not written at exit.
    pub checkpoints: Option<Vec<String>>,
    pub top: usize,
    /// Whether glibc's free memory says anything: not in a hunt, whose heap snapshots leave
    /// ever more freed memory with glibc as the heap grows.
    pub fragmentation: bool,
}

/// The checkpoints of a recording: the dumps answering `tokens` (in that order), or every dump
/// not written at exit (the exit dump comes after teardown frees, so it shows no growth), or
/// the exit dump when it is the only one.
pub fn checkpoints<'a>(process: &'a Process, tokens: Option<&[String]>) -> Vec<&'a Dump> {
    match tokens {
        Some(tokens) => tokens
            .iter()
            .filter_map(|t| process.dumps.iter().find(|d| d.token.as_deref() == Some(t)))
            .collect(),
        None => {
            let periodic: Vec<&Dump> = process.dumps.iter().filter(|d| !d.last).collect();
            if periodic.len() >= 2 {
                periodic
            } else {
                process.dumps.iter().collect()
            }
        }
    }
}

/// The first and last checkpoints (see [`checkpoints`]).
pub fn window<'a>(process: &'a Process, tokens: Option<&[String]>) -> Option<(&'a Dump, &'a Dump)> {
    let points = checkpoints(process, tokens);
    Some((*points.first()?, *points.last()?))
}

/// The analysis of one process. `frames(id)` names stack `id`'s frames.
pub fn analyze(
    process: &Process,
    options: &Options,
    frames: &mut dyn FnMut(u32) -> Vec<Frame>,
) -> ProcessReport {
    let points = checkpoints(process, options.checkpoints.as_deref());
    let empty = Dump::default();
    let (first, last) = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (&empty, &empty),
    };
    let change = |f: fn(&Dump) -> u64| Change {
        before: f(first),
        after: f(last),
    };
    // Stacks are merged into sites first: one call path shows up as several raw stacks when V8
    // recompiles the JS on it (each tier has its own code addresses) or calls the addon through
    // another builtin, and growth split across them would look like noise.
    let mut sites: Vec<Site> = Vec::new();
    let mut site_of: std::collections::HashMap<Vec<String>, usize> =
        std::collections::HashMap::new();
    for end in &last.stacks {
        let start = first.stack(end.id).copied().unwrap_or_default();
        let frames = frames(end.id);
        let key = site_key(&frames);
        let i = *site_of.entry(key).or_insert_with(|| {
            sites.push(Site {
                ids: Vec::new(),
                js_paths: Vec::new(),
                callers: Vec::new(),
                frames: frames.clone(),
                biggest: 0,
                start: Sums::default(),
                end: Sums::default(),
            });
            sites.len() - 1
        });
        let site = &mut sites[i];
        site.ids.push(end.id);
        let js: Vec<Frame> = frames
            .iter()
            .filter(|f| f.kind == FrameKind::Js)
            .cloned()
            .collect();
        site.js_paths
            .push((js, end.live_bytes as i64 - start.live_bytes as i64));
        if end.live_bytes > site.biggest {
            site.biggest = end.live_bytes;
            site.frames = frames;
        }
        site.start.add(&start, first.interval);
        site.end.add(end, last.interval);
    }
    let tracked_var: f64 = sites.iter().map(|s| s.end.variance).sum();
    let mut stacks: Vec<StackReport> = Vec::new();
    for mut site in sites {
        let growth = site.end.live_bytes as i64 - site.start.live_bytes as i64;
        site.callers = js_callers(&site.js_paths);
        if growth <= 0 {
            continue;
        }
        let error = 2.0 * (site.start.variance + site.end.variance).sqrt();
        let series: Vec<u64> = points
            .iter()
            .map(|d| {
                site.ids
                    .iter()
                    .filter_map(|&id| d.stack(id))
                    .map(|s| s.live_bytes)
                    .sum()
            })
            .collect();
        let allocated = site.end.alloc_bytes.saturating_sub(site.start.alloc_bytes);
        let signature = Signature::of(&site.frames);
        let (suspect, why) = judge(growth, error, &series, signature);
        stacks.push(StackReport {
            id: site.ids[0],
            merged: site.ids.len(),
            allocated_by: site
                .frames
                .iter()
                .find(|f| f.kind == FrameKind::Native && !f.runtime)
                .cloned(),
            js_caller: site.callers.first().map(|(f, _)| f.clone()),
            js_callers: site
                .callers
                .iter()
                .filter(|(_, g)| *g > 0)
                .map(|(f, g)| JsCaller {
                    frame: f.clone(),
                    growth: *g as u64,
                })
                .collect(),
            frames: site.frames,
            live: Change {
                before: site.start.live_bytes,
                after: site.end.live_bytes,
            },
            error: error as u64,
            series,
            allocated,
            per_hour: growth as f64 * 3_600_000.0
                / last.time_ms.saturating_sub(first.time_ms).max(1) as f64,
            retained_share: if allocated > 0 {
                (growth as f64 / allocated as f64).min(1.0)
            } else {
                0.0
            },
            objects_growth: site.end.live_objects - site.start.live_objects,
            ages: site.end.ages,
            live_samples: site.end.live_samples,
            signature,
            suspect,
            why,
        });
    }
    stacks.sort_by_key(|s| std::cmp::Reverse((s.suspect, s.growth())));
    let tracked = Change {
        before: first.live_bytes(),
        after: last.live_bytes(),
    };
    let rss = change(|d| d.rss);
    let malloc_free = change(|d| d.mallinfo.free);
    let free_growth = malloc_free.growth();
    let free_series: Vec<u64> = points.iter().map(|d| d.mallinfo.free).collect();
    let fragmentation = options.fragmentation
        && free_growth > (8 << 20).max(rss.growth() / 2)
        && tracked.growth() < free_growth / 4
        && steady(&free_series);
    // Above the noise as `judge` says it: 3σ (the error is 2σ), and at least MIN_GROWTH.
    let grows = |s: &StackReport| {
        s.growth() as f64 > 1.5 * s.error as f64 && s.growth() >= MIN_GROWTH as i64
    };
    let verdict = if stacks.iter().any(|s| s.suspect) {
        Verdict::NativeLeak
    } else if stacks
        .iter()
        .any(|s| s.signature == Some(Signature::Buffers) && grows(s) && steady(&s.series))
    {
        Verdict::BuffersFromJs
    } else if fragmentation {
        Verdict::Fragmentation
    } else {
        Verdict::None
    };
    let more_stacks = stacks.len().saturating_sub(options.top);
    stacks.truncate(options.top);
    ProcessReport {
        pid: process.pid,
        cmdline: last.cmdline.clone(),
        checkpoints: points.iter().map(|d| d.time_ms).collect(),
        rss,
        brk_heap: change(|d| d.heap),
        tracker_memory: last.tracker_rss,
        malloc_in_use: change(|d| d.mallinfo.in_use),
        malloc_free,
        tracked,
        tracked_error: (2.0 * tracked_var.sqrt()) as u64,
        interval: last.interval,
        configured_interval: last.configured_interval,
        halvings: last.halvings,
        dropped: last.dropped,
        state: last.state.clone(),
        fragmentation,
        stacks,
        more_stacks,
        verdict,
    }
}

/// The innermost JS frame of the app's own code: Node's library (`node:` URLs) is skipped
/// when anything else called it (`Buffer.alloc` is Node's; who called it is the question).
fn js_caller(frames: &[Frame]) -> Option<&Frame> {
    let mut js = frames.iter().filter(|f| f.kind == FrameKind::Js);
    let first = js.clone().next();
    js.find(|f| {
        !f.location
            .as_deref()
            .is_some_and(|l| l.starts_with("node:"))
    })
    .or(first)
}

/// The JS callers of a site with their growth, largest first.
///
/// A function that V8's optimizing compiler inlined has no frame: the stacks allocating from
/// inlined code show its caller B as the innermost JS frame. If another stack of the same site
/// has a frame A directly inside B (recorded before the inlining), the growth is credited to A
/// (among several such stacks: the one sharing most outer frames with it, then the one that
/// grew most). Only the frame right above matters: V8 inlines the outer frames too, so the
/// rest of the chain differs. So `handleLogin`, inlined into the request callback, is still
/// `handleLogin`.
fn js_callers(paths: &[(Vec<Frame>, i64)]) -> Vec<(Frame, i64)> {
    let shared_tail = |a: &[Frame], b: &[Frame]| {
        a.iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
    };
    let mut callers: Vec<(Frame, i64)> = Vec::new();
    for (path, growth) in paths {
        let inner = path.first().and_then(|b| {
            paths
                .iter()
                .filter(|(other, _)| other.get(1) == Some(b))
                .max_by_key(|(other, g)| (shared_tail(other, path), *g))
        });
        let full = inner.map_or(path, |(other, _)| other);
        let Some(caller) = js_caller(full) else {
            continue;
        };
        match callers.iter_mut().find(|(f, _)| f == caller) {
            Some((_, g)) => *g += growth,
            None => callers.push((caller.clone(), *growth)),
        }
    }
    callers.sort_by_key(|(_, g)| std::cmp::Reverse(*g));
    callers
}

/// The stacks of one site, summed.
struct Site {
    ids: Vec<u32>,
    /// The JS frames of each member stack (innermost first), with its growth.
    js_paths: Vec<(Vec<Frame>, i64)>,
    /// Growth per innermost JS frame (label), with the frame.
    callers: Vec<(Frame, i64)>,
    /// The frames of its largest stack.
    frames: Vec<Frame>,
    biggest: u64,
    start: Sums,
    end: Sums,
}

#[derive(Default)]
struct Sums {
    live_bytes: u64,
    live_objects: f64,
    alloc_bytes: u64,
    live_samples: u64,
    ages: [u64; 4],
    variance: f64,
}

impl Sums {
    fn add(&mut self, s: &StackCounters, interval: u64) {
        self.live_bytes += s.live_bytes;
        self.live_objects += s.live_objects;
        self.alloc_bytes += s.alloc_bytes;
        self.live_samples += s.live_samples;
        for (a, b) in self.ages.iter_mut().zip(s.ages) {
            *a += b;
        }
        self.variance += variance(s, interval);
    }
}

/// What identifies an allocation site across JIT tiers and call paths: the first three named
/// C/C++ frames outside the runtime (who allocated, and its callers). JavaScript frames do not
/// count: V8 inlines functions into their callers and the perf map cannot name inlined frames,
/// so one JS call path shows different innermost JS frames over a run; the JS callers of a site
/// are listed with their shares instead ([`js_callers`]).
fn site_key(frames: &[Frame]) -> Vec<String> {
    let key: Vec<String> = frames
        .iter()
        .filter(|f| f.kind == FrameKind::Native && !f.runtime)
        .take(3)
        .map(Frame::label)
        .collect();
    if key.is_empty() {
        frames.iter().map(Frame::label).collect()
    } else {
        key
    }
}

fn judge(growth: i64, error: f64, series: &[u64], signature: Option<Signature>) -> (bool, String) {
    let mb = |b: f64| format!("{:.1} MB", b / 1e6);
    if growth < MIN_GROWTH as i64 {
        return (
            false,
            format!("grew by less than {}", mb(MIN_GROWTH as f64)),
        );
    }
    if (growth as f64) < 1.5 * error {
        return (
            false,
            format!("growth within the sampling error (±{})", mb(error)),
        );
    }
    if !steady(series) {
        return (
            false,
            "did not grow in every interval, or stopped growing (a cache or pool that filled)"
                .into(),
        );
    }
    match signature {
        Some(Signature::Buffers) => (false, "held from JS: see the JS side".into()),
        Some(Signature::Inspector) => (false, "leakhound's own snapshots".into()),
        _ => (
            true,
            format!(
                "grew in every interval, {} ± {}",
                mb(growth as f64),
                mb(error)
            ),
        ),
    }
}

/// Grew in every interval (one dip allowed from four intervals on), and in the last one by at
/// least a fifth of the average.
fn steady(series: &[u64]) -> bool {
    let steps: Vec<i64> = series
        .windows(2)
        .map(|w| w[1] as i64 - w[0] as i64)
        .collect();
    let Some(&last) = steps.last() else {
        return false;
    };
    let mean = steps.iter().sum::<i64>() as f64 / steps.len() as f64;
    let dips = steps.iter().filter(|&&d| d <= 0).count();
    mean > 0.0
        && last as f64 >= 0.2 * mean
        && (dips == 0 || (steps.len() >= 4 && dips == 1 && last > 0))
}

/// The sampling variance of a stack's live-bytes estimate in one dump.
///
/// A sampled block of `s` bytes weighs `w = s / p` with `p = 1 − e^(−s/T)`; its contribution to
/// the variance is `w²(1 − p)`. Only the sums are recorded, so `s` is taken from the mean
/// weight (`w(s)` is increasing, solved by bisection): small blocks give ≈ T² per sample, blocks
/// much larger than T almost nothing.
pub fn variance(stack: &super::record::StackCounters, interval: u64) -> f64 {
    if stack.live_samples == 0 || interval <= 1 {
        return 0.0;
    }
    let n = stack.live_samples as f64;
    let w = stack.live_bytes as f64 / n;
    let t = interval as f64;
    let weight = |s: f64| if s <= 0.0 { t } else { s / -(-s / t).exp_m1() };
    let (mut lo, mut hi) = (0.0, w.max(t));
    for _ in 0..50 {
        let mid = (lo + hi) / 2.0;
        if weight(mid) < w { lo = mid } else { hi = mid }
    }
    n * w * w * (-lo / t).exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smaps::parse_header;

    fn dump(token: &str, time_ms: u64, stacks: &[(u32, u64, u64, u64)]) -> Dump {
        Dump {
            seq: 0,
            token: Some(token.into()),
            last: false,
            time_ms,
            unix_ms: 0,
            interval: 65536,
            configured_interval: 65536,
            halvings: 0,
            dropped: 0,
            state: "on".into(),
            rss: 100 << 20,
            heap: 0,
            tracker_rss: 0,
            mallinfo: Default::default(),
            perf_map: 0,
            cmdline: "node app.js".into(),
            stacks: stacks
                .iter()
                .map(|&(id, live, alloc, samples)| StackCounters {
                    id,
                    live_bytes: live,
                    live_objects: samples as f64,
                    alloc_bytes: alloc,
                    alloc_objects: samples as f64,
                    live_samples: samples,
                    samples,
                    ages: [live, 0, 0, 0],
                })
                .collect(),
            maps: vec![
                parse_header("00400000-00500000 r-xp 00000000 fe:00 1 /usr/bin/node").unwrap(),
            ],
        }
    }

    fn frame(name: &str, kind: FrameKind, runtime: bool) -> Frame {
        Frame {
            name: name.into(),
            location: None,
            original: None,
            module: "m".into(),
            kind,
            runtime,
        }
    }

    /// Stack 1 leaks steadily, 2 churns, 3 filled a cache in the first round, 4 is Buffers.
    fn check(series: &[[u64; 4]], expected: &str) {
        let t = 65536;
        let dumps: Vec<Dump> = series
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let stacks: Vec<(u32, u64, u64, u64)> = (0..4)
                    .map(|s| (s as u32 + 1, row[s] * t, row[s] * t * 2, row[s].max(1)))
                    .collect();
                dump(&i.to_string(), i as u64 * 1000, &stacks)
            })
            .collect();
        let process = Process {
            pid: 1,
            dir: "d".into(),
            stacks: vec![],
            dumps,
        };
        let tokens: Vec<String> = (0..series.len()).map(|i| i.to_string()).collect();
        let report = analyze(
            &process,
            &Options {
                checkpoints: Some(tokens),
                top: 10,
                fragmentation: true,
            },
            &mut |id| match id {
                4 => vec![
                    frame("calloc", FrameKind::Native, true),
                    frame(
                        "node::NodeArrayBufferAllocator::Allocate",
                        FrameKind::Native,
                        false,
                    ),
                ],
                _ => vec![
                    frame("operator new", FrameKind::Native, true),
                    frame(&format!("Site{id}"), FrameKind::Native, false),
                    frame(&format!("js{id}"), FrameKind::Js, false),
                ],
            },
        );
        let mut out = format!("{:?}\n", report.verdict);
        for s in &report.stacks {
            out += &format!(
                "{} {} by {} from {}: {}\n",
                s.id,
                if s.suspect { "SUSPECT" } else { "-" },
                s.allocated_by.as_ref().map_or("?", |f| &f.name),
                s.js_caller.as_ref().map_or("-", |f| &f.name),
                s.why
            );
        }
        assert_eq!(out.trim(), expected.trim(), "\n{out}");
    }

    #[test]
    fn a_steady_leak_is_suspect_and_a_filled_cache_is_not() {
        check(
            &[
                [10, 50, 10, 0],
                [110, 52, 200, 0],
                [210, 49, 201, 0],
                [310, 51, 200, 0],
            ],
            "NativeLeak\n\
             1 SUSPECT by Site1 from js1: grew in every interval, 19.7 MB ± 2.3 MB\n\
             3 - by Site3 from js3: did not grow in every interval, or stopped growing (a cache or pool that filled)\n\
             2 - by Site2 from js2: grew by less than 1.0 MB",
        );
    }

    #[test]
    fn growing_buffers_point_to_the_js_side() {
        check(
            &[[10, 50, 10, 0], [10, 50, 10, 100], [10, 50, 10, 200]],
            "BuffersFromJs\n4 - by node::NodeArrayBufferAllocator::Allocate from -: held from JS: see the JS side",
        );
    }

    #[test]
    fn noise_is_not_a_leak() {
        // 100 → 130 samples of 64 KiB: 2.0 MB of growth, but ±2.0 MB of error at 2σ.
        check(
            &[[100, 0, 0, 0], [115, 0, 0, 0], [130, 0, 0, 0]],
            "None\n1 - by Site1 from js1: growth within the sampling error (±2.0 MB)",
        );
        check(
            &[[30, 0, 0, 0], [28, 0, 0, 0], [60, 0, 0, 0]],
            "None\n1 - by Site1 from js1: did not grow in every interval, or stopped growing (a cache or pool that filled)",
        );
    }

    /// Stacks from code where V8 inlined `handleLogin` into the callback lose its frame; they
    /// are credited to it through the stacks recorded before the inlining. A caller on another
    /// JS path is kept apart, and Node's own library frames are skipped.
    #[test]
    fn inlined_callers_are_found_through_earlier_stacks() {
        let js = |names: &[&str]| -> Vec<Frame> {
            names
                .iter()
                .map(|n| Frame {
                    name: n.to_string(),
                    location: Some(if n.starts_with("node_") {
                        format!("node:{n}")
                    } else {
                        format!("/app/{n}.js:1:1")
                    }),
                    original: None,
                    module: "JIT".into(),
                    kind: FrameKind::Js,
                    runtime: false,
                })
                .collect()
        };
        let paths = vec![
            (js(&["handleLogin", "callback", "emit"]), 600),
            (js(&["callback", "emit"]), 300),
            // Optimized code where emit was inlined too: the chain above differs.
            (js(&["callback", "parserOnIncoming"]), 100),
            (js(&["node_alloc", "handleSignup", "callback", "emit"]), 50),
            (js(&["other", "emit"]), 20),
        ];
        let callers: Vec<(String, i64)> = js_callers(&paths)
            .into_iter()
            .map(|(f, g)| (f.name, g))
            .collect();
        assert_eq!(
            callers,
            [
                ("handleLogin".into(), 1000),
                ("handleSignup".into(), 50),
                ("other".into(), 20)
            ],
            "the callback's own stacks are handleLogin's, whatever V8 inlined above it"
        );
    }

    #[test]
    fn variance_is_t_squared_per_small_sample_and_vanishes_for_large_blocks() {
        let small = StackCounters {
            live_bytes: 100 * 65536,
            live_samples: 100,
            ..Default::default()
        };
        assert!((variance(&small, 65536) / (100.0 * 65536f64.powi(2)) - 1.0).abs() < 0.01);
        let large = StackCounters {
            live_bytes: 100 * (16 << 20),
            live_samples: 100,
            ..Default::default()
        };
        assert!(variance(&large, 65536) < 1.0);
    }
}
