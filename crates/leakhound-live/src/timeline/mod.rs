//! Trends in a process's memory over time, and a verdict on which memory leaks.
//!
//! [`series`] turns [`Sample`]s into `(seconds, bytes)` points of one [`Metric`]; [`trend`]
//! fits a robust slope (Theil–Sen) with a rank-based confidence interval (Sen 1968) and the
//! Mann–Kendall test; [`diagnose`] compares the trends of the components and names the next
//! step ("malloc heap +8.1 MB/h, V8 heap flat → native leak: …").
//!
//! Two kinds of samples are kept out of trends:
//! - samples marked `after_snapshot`: a heap snapshot by leakhound leaves freed memory resident
//!   in malloc. Beyond dropping them, a snapshot splits the series into segments, and slopes are
//!   only taken between points of the same segment (Hirsch's blocked form of Sen's estimator),
//!   so the lasting step a snapshot leaves is not read as growth;
//! - the warm-up, with `skip_warmup`: the first [`WARMUP_FRACTION`] of the window, at most
//!   [`WARMUP_MAX_SECONDS`], when modules load, the JIT compiles and pools fill. Growth that
//!   stops after it is not a leak.

use serde::Serialize;

use crate::memory::{Component, Sample};

/// The fewest points a trend is fitted to; [`diagnose`] also wants this many RSS samples
/// after the warm-up. With 5 points a steady rise reaches 97 % in Kendall's test, with 4 barely
/// 90 %. Kept low because `smaps` breakdowns are rare in a short window (the sampler reads them
/// at most once per 100 times their cost).
pub const MIN_POINTS: usize = 5;

/// Longer series are thinned to about this many points before the O(n²) pairwise slopes:
/// 125 000 slopes, about 1 ms, so that [`diagnose`] (ten trends) every few seconds stays
/// within the 1 % of a core `watch` may take. Thinning keeps evenly spaced points, both ends
/// included: it is deterministic, and 500 points of a slowly moving memory series carry all
/// the trend there is (neighbouring samples are strongly correlated anyway).
pub const MAX_POINTS: usize = 500;

/// The part of the window [`series`] skips as warm-up with `skip_warmup`.
pub const WARMUP_FRACTION: f64 = 0.2;

/// The warm-up never lasts longer than this: a Node process has loaded its modules and JIT-ed
/// its hot code within minutes, and skipping 20 % of a 15-hour watch would only throw away
/// evidence.
pub const WARMUP_MAX_SECONDS: f64 = 600.0;

/// [`diagnose`] wants at least this much time after the warm-up. Short, so that a fast leak
/// (megabytes per second) is named within seconds; slower leaks need a longer window to pass
/// [`MIN_GROWTH_BYTES`], and until then the verdict says how fast RSS could be growing unseen.
pub const MIN_SPAN_SECONDS: f64 = 2.0;

/// A series only counts as growing if it grew by at least this much over the window (fitted).
/// An idle Node process's RSS wobbles by 1–2 MB (V8 commits and frees 256 KiB pages, new
/// space shrinks, malloc trims), and an inspector polling V8's figures allocates a few hundred
/// What to do about a native leak: the tracker goes in when the process starts.
pub const NATIVE_NEXT: &str = "name the stacks that allocate it: restart the app under `leakhound native -- COMMAND` (or `leakhound hunt -- node …`)";

/// kB between scavenges; 4 MB is above that, and small enough that a 10 MB/h native leak shows
/// within half an hour.
pub const MIN_GROWTH_BYTES: f64 = 4e6;

/// … and by at least this fraction of its level at the start: the noise of a large process
/// grows with it (GC cycles of a 1 GB heap move tens of MB).
pub const MIN_GROWTH_FRACTION: f64 = 0.02;

/// When Buffers grow (V8 `external`), they also grow malloc's memory: native growth counts as
/// explained by them when `external` grows at least this fraction as fast.
pub const EXPLAINED_FRACTION: f64 = 0.5;

/// The standard normal quantile for a two-sided 90 % interval.
const Z_90: f64 = 1.644_853_626_951_472;

/// A robust linear trend of one series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// The Theil–Sen slope (median of the pairwise slopes), bytes per hour.
    pub slope_per_hour: f64,
    /// The lower end of the 90 % confidence interval of the slope (Sen 1968), bytes per hour.
    pub low_per_hour: f64,
    /// The upper end of the 90 % confidence interval, bytes per hour.
    pub high_per_hour: f64,
    /// How sure it is that the series moves in the direction of its slope, 0..1: one minus the
    /// two-sided p-value of the Mann–Kendall test (normal approximation, ties corrected). 0.9 or
    /// more means a trend at the 90 % level. Memory samples are autocorrelated, which this test
    /// does not model: it overstates certainty, hence [`Trend::is_growing`]'s size threshold.
    pub confidence: f64,
    /// The number of points the trend was fitted to (after thinning).
    pub samples: usize,
    /// The fitted level at the first point's time, bytes.
    pub first: f64,
    /// The fitted level at the last point's time, bytes (the latest segment's level).
    pub last: f64,
    /// Seconds from the first point to the last.
    pub span_seconds: f64,
}

impl Trend {
    /// The fitted growth over the whole span, bytes (negative when it falls).
    pub fn growth(&self) -> f64 {
        self.slope_per_hour * self.span_seconds / 3600.0
    }

    /// Whether the series grows, both surely and materially: the 90 % interval of the slope
    /// lies above zero, and the fitted growth is at least [`MIN_GROWTH_BYTES`] and
    /// [`MIN_GROWTH_FRACTION`] of the starting level.
    pub fn is_growing(&self) -> bool {
        let material = MIN_GROWTH_BYTES.max(MIN_GROWTH_FRACTION * self.first.max(0.0));
        self.low_per_hour > 0.0 && self.growth() >= material
    }
}

/// A memory figure of a [`Sample`] that trends are computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `VmRSS` plus `VmSwap` (RSS alone falls while a leak goes to swap), on every sample.
    Rss,
    /// One component of the `smaps` breakdown.
    Component(Component),
    /// Native memory: malloc heap plus other anonymous memory, from the breakdown.
    Native,
    /// V8's used heap, from the inspector.
    V8HeapUsed,
    /// V8's `external`: memory of C++ objects bound to JS objects, ArrayBuffers included.
    V8External,
    /// V8's `arrayBuffers`: the backing stores of ArrayBuffers (and so Buffers).
    V8ArrayBuffers,
}

impl Metric {
    /// Every metric, RSS first.
    pub const ALL: [Metric; 10] = [
        Metric::Rss,
        Metric::Component(Component::V8Heap),
        Metric::Component(Component::MallocHeap),
        Metric::Component(Component::OtherAnon),
        Metric::Component(Component::FileBacked),
        Metric::Component(Component::Stacks),
        Metric::Native,
        Metric::V8HeapUsed,
        Metric::V8External,
        Metric::V8ArrayBuffers,
    ];

    /// `rss`, `v8_heap`, `native`, `v8_heap_used`…, as in JSON and metric labels.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::Component(c) => c.key(),
            Metric::Native => "native",
            Metric::V8HeapUsed => "v8_heap_used",
            Metric::V8External => "v8_external",
            Metric::V8ArrayBuffers => "v8_array_buffers",
        }
    }

    /// `RSS`, `malloc heap`, `V8 external`…, for people.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Rss => "RSS",
            Metric::Component(c) => c.label(),
            Metric::Native => "native memory",
            Metric::V8HeapUsed => "V8 heap",
            Metric::V8External => "V8 external",
            Metric::V8ArrayBuffers => "V8 array buffers",
        }
    }

    /// The value of this metric in `s`, if the sample has it.
    pub fn value(self, s: &Sample) -> Option<u64> {
        match self {
            // A leak that the kernel pushes to swap still grows.
            Metric::Rss => Some(s.rss + s.swap),
            Metric::Component(c) => s.breakdown.map(|b| b.get(c)),
            Metric::Native => s.breakdown.map(|b| b.malloc_heap + b.other_anon),
            Metric::V8HeapUsed => s.v8.map(|v| v.heap_used),
            Metric::V8External => s.v8.map(|v| v.external),
            Metric::V8ArrayBuffers => s.v8.map(|v| v.array_buffers),
        }
    }
}

/// The `(t, bytes)` points of `metric`, leaving out `after_snapshot` samples, samples without
/// the figure and, with `skip_warmup`, the warm-up (before [`warmup_end`]).
pub fn series(samples: &[Sample], metric: Metric, skip_warmup: bool) -> Vec<(f64, f64)> {
    segments(samples, metric, skip_warmup).concat()
}

/// The points of [`series`], split at each run of `after_snapshot` samples: levels on either
/// side of a snapshot are not comparable. Feed them to [`trend_segments`].
pub fn segments(samples: &[Sample], metric: Metric, skip_warmup: bool) -> Vec<Vec<(f64, f64)>> {
    let from = if skip_warmup {
        warmup_end(samples)
    } else {
        f64::NEG_INFINITY
    };
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for s in samples.iter().filter(|s| s.t >= from) {
        if s.after_snapshot {
            if out.last().is_some_and(|seg| !seg.is_empty()) {
                out.push(Vec::new());
            }
        } else if let Some(v) = metric.value(s) {
            out.last_mut().expect("never empty").push((s.t, v as f64));
        }
    }
    out.retain(|seg| !seg.is_empty());
    out
}

/// The time the warm-up of `samples` ends: [`WARMUP_FRACTION`] into the window they span
/// (`after_snapshot` samples left out), at most [`WARMUP_MAX_SECONDS`] after its start.
pub fn warmup_end(samples: &[Sample]) -> f64 {
    let (lo, hi) = samples
        .iter()
        .filter(|s| !s.after_snapshot && s.t.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.t), hi.max(s.t))
        });
    if lo > hi {
        return f64::NEG_INFINITY;
    }
    lo + (WARMUP_FRACTION * (hi - lo)).min(WARMUP_MAX_SECONDS)
}

/// The Theil–Sen trend of `(seconds, bytes)` points, in any order. `None` with fewer than
/// [`MIN_POINTS`] finite points or no time between them.
pub fn trend(points: &[(f64, f64)]) -> Option<Trend> {
    trend_segments(&[points.to_vec()])
}

/// The trend of a series in segments (see [`segments`]): one slope shared by all, slopes and
/// Kendall's statistic taken only within a segment, levels free to differ between them.
/// `first` and `last` are on the last segment's line.
pub fn trend_segments(segments: &[Vec<(f64, f64)>]) -> Option<Trend> {
    let mut segs: Vec<Vec<(f64, f64)>> = segments
        .iter()
        .map(|seg| {
            let mut seg: Vec<(f64, f64)> = seg
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            seg.sort_by(|a, b| a.0.total_cmp(&b.0));
            seg
        })
        .filter(|seg| !seg.is_empty())
        .collect();
    let total: usize = segs.iter().map(Vec::len).sum();
    let t0 = segs
        .iter()
        .map(|seg| seg[0].0)
        .fold(f64::INFINITY, f64::min);
    let t1 = segs
        .iter()
        .map(|seg| seg[seg.len() - 1].0)
        .fold(f64::NEG_INFINITY, f64::max);
    let span = t1 - t0;
    if total < MIN_POINTS || span <= 0.0 {
        return None;
    }
    if total > MAX_POINTS {
        let k = total.div_ceil(MAX_POINTS);
        for seg in &mut segs {
            *seg = thin(seg, k);
        }
    }

    // Kendall's S over (time, value) is the count of rising pairs minus falling ones; the pairs
    // of one instant (ties in time) give no slope and count zero.
    let pairs: usize = segs.iter().map(|seg| seg.len() * (seg.len() - 1) / 2).sum();
    let mut slopes = Vec::with_capacity(pairs);
    let mut s: i64 = 0;
    let mut variance = 0.0;
    for seg in &segs {
        for (i, &(xi, yi)) in seg.iter().enumerate() {
            for &(xj, yj) in &seg[i + 1..] {
                if xj > xi {
                    slopes.push((yj - yi) / (xj - xi));
                    s += match yj.partial_cmp(&yi) {
                        Some(std::cmp::Ordering::Greater) => 1,
                        Some(std::cmp::Ordering::Less) => -1,
                        _ => 0,
                    };
                }
            }
        }
        variance += kendall_variance(seg);
    }
    if slopes.is_empty() {
        return None;
    }

    // Sen's interval: with C = z·sd(S), the slopes of (1-based) ranks (N − C)/2 and
    // (N + C)/2 + 1, interpolated between neighbours.
    let n = slopes.len() as f64;
    let c = Z_90 * variance.sqrt();
    let slope = quantile(&mut slopes, (n - 1.0) / 2.0);
    let low = quantile(&mut slopes, (n - c) / 2.0 - 1.0);
    let high = quantile(&mut slopes, (n + c) / 2.0);

    let z = if variance > 0.0 && s != 0 {
        ((s.unsigned_abs() as f64 - 1.0) / variance.sqrt()).max(0.0)
    } else {
        0.0
    };
    let confidence = if z > 0.0 {
        erf(z / std::f64::consts::SQRT_2)
    } else {
        0.0
    };

    let latest = segs.last().expect("total >= MIN_POINTS");
    let mut offsets: Vec<f64> = latest.iter().map(|&(x, y)| y - slope * x).collect();
    let intercept = median(&mut offsets);
    let last = intercept + slope * t1;
    Some(Trend {
        slope_per_hour: slope * 3600.0,
        low_per_hour: low * 3600.0,
        high_per_hour: high * 3600.0,
        confidence,
        samples: segs.iter().map(Vec::len).sum(),
        first: last - slope * span,
        last,
        span_seconds: span,
    })
}

/// The trend of every metric of [`Metric::ALL`] that has enough points in `samples`, after the
/// warm-up and outside snapshots (as [`diagnose`] sees them).
pub fn trends(samples: &[Sample]) -> Vec<(Metric, Trend)> {
    Metric::ALL
        .iter()
        .filter_map(|&m| trend_segments(&segments(samples, m, true)).map(|t| (m, t)))
        .collect()
}

/// What the memory timeline says, and what to do next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// What leaks, if anything: it decides the next step.
    pub verdict: Verdict,
    /// One line for people, e.g. "malloc heap +8.1 MB/h, V8 heap flat → native leak: name the
    /// stacks that allocate it …" ([`NATIVE_NEXT`]).
    pub message: String,
    /// Every metric that grows ([`Trend::is_growing`]), by [`Metric::key`], fastest first.
    pub growing: Vec<(String, Trend)>,
}

impl Diagnosis {
    /// What grows, as the message says it before ` → ` and the next step (`V8 heap +8.1 MB/h,
    /// malloc heap flat`).
    pub fn evidence(&self) -> &str {
        self.message.split(" → ").next().unwrap_or_default()
    }
}

/// The kind of memory that leaks, which decides the next tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The V8 heap grows: a heap snapshot comparison finds it.
    JsLeak,
    /// Native memory grows while V8's heap and external memory do not (or thread stacks pile
    /// up): only native allocation tracking finds it.
    NativeLeak,
    /// Buffers/ArrayBuffers grow (V8 `external`, or other anonymous memory) while the V8 heap is
    /// flat: they are JS-reachable, so a heap snapshot shows who holds them.
    ExternalLeak,
    /// Flat after the warm-up.
    NoLeak,
    /// Too few samples, or growth that no component explains yet: keep watching.
    TooEarly,
}

/// The verdict on `samples` (one process, in time order): the trends of its components after
/// the warm-up, outside snapshots.
///
/// The V8 heap is V8's `heap_used` when the inspector gave it, else the `dc` regions; external
/// memory is V8's `external` (Buffers, wherever malloc put them), else other anonymous memory
/// (large Buffers); native memory is malloc heap plus other anonymous memory when `external`
/// is known, else the malloc heap alone. Native growth is explained by Buffers when `external`
/// grows at least [`EXPLAINED_FRACTION`] as fast. Of the kinds that grow, the fastest decides.
pub fn diagnose(samples: &[Sample]) -> Diagnosis {
    diagnose_with(samples, &trends(samples))
}

/// [`diagnose`] with the [`trends`] of `samples` already computed (they cost O(n²) in the
/// thinned samples; a watcher computes them once per refresh).
pub fn diagnose_with(samples: &[Sample], trends: &[(Metric, Trend)]) -> Diagnosis {
    let rss_points = series(samples, Metric::Rss, true);
    let span = match (rss_points.first(), rss_points.last()) {
        (Some(a), Some(b)) => b.0 - a.0,
        _ => 0.0,
    };
    if rss_points.len() < MIN_POINTS || span < MIN_SPAN_SECONDS {
        let wait = wait_for(samples, |_| true);
        return Diagnosis {
            verdict: Verdict::TooEarly,
            message: format!(
                "too early: {} samples over {}; wait {}",
                samples.len(),
                human_seconds(span_of(samples)),
                wait.map_or_else(
                    || "for more samples".to_owned(),
                    |w| human_seconds(w) + " more"
                ),
            ),
            growing: Vec::new(),
        };
    }

    let get = |m: Metric| trends.iter().find(|(k, _)| *k == m).map(|(_, t)| *t);
    let growing_of = |m: Metric| get(m).filter(Trend::is_growing).map(|t| (m, t));
    let mut growing: Vec<(String, Trend)> = trends
        .iter()
        .filter(|(_, t)| t.is_growing())
        .map(|(m, t)| (m.key().to_owned(), *t))
        .collect();
    growing.sort_by(|a, b| b.1.slope_per_hour.total_cmp(&a.1.slope_per_hour));

    let v8_known = get(Metric::V8HeapUsed).is_some();
    let js_metric = if v8_known {
        Metric::V8HeapUsed
    } else {
        Metric::Component(Component::V8Heap)
    };
    let external_known = get(Metric::V8External).is_some();
    let external_metric = if external_known {
        Metric::V8External
    } else {
        Metric::Component(Component::OtherAnon)
    };
    let native_metric = if external_known {
        Metric::Native
    } else {
        Metric::Component(Component::MallocHeap)
    };
    let js = growing_of(js_metric);
    let external = growing_of(external_metric);
    let native = growing_of(native_metric).filter(|(_, n)| {
        external.is_none_or(|(_, e)| e.slope_per_hour < EXPLAINED_FRACTION * n.slope_per_hour)
    });
    let stacks = growing_of(Metric::Component(Component::Stacks));

    let flat = |m: Metric| {
        get(m)
            .filter(|t| !t.is_growing())
            .map(|_| format!("{} flat", m.label()))
    };
    let mut candidates: Vec<(Verdict, Metric, Trend)> = Vec::new();
    candidates.extend(js.map(|(m, t)| (Verdict::JsLeak, m, t)));
    candidates.extend(external.map(|(m, t)| (Verdict::ExternalLeak, m, t)));
    candidates.extend(native.map(|(m, t)| (Verdict::NativeLeak, m, t)));
    candidates.extend(stacks.map(|(m, t)| (Verdict::NativeLeak, m, t)));
    candidates.sort_by(|a, b| b.2.slope_per_hour.total_cmp(&a.2.slope_per_hour));

    // Native memory is named by the component that carries most of its growth, if one does.
    let shown = |m: Metric, t: Trend| -> (Metric, Trend) {
        if m != Metric::Native {
            return (m, t);
        }
        [Component::MallocHeap, Component::OtherAnon]
            .into_iter()
            .filter_map(|c| growing_of(Metric::Component(c)))
            .find(|(_, ct)| ct.slope_per_hour >= 0.5 * t.slope_per_hour)
            .unwrap_or((m, t))
    };
    if let Some(&(verdict, metric, _)) = candidates.first() {
        // The leading kind, then the other kinds that grow too, then the flat ones that rule
        // out the alternatives.
        let mut parts: Vec<String> = candidates
            .iter()
            .map(|&(_, m, t)| {
                let (m, t) = shown(m, t);
                format!("{} {}", m.label(), rate(t.slope_per_hour))
            })
            .collect();
        let next = match verdict {
            Verdict::JsLeak => "JS leak: find it with `leakhound hunt`, or `leakhound capture` \
                                two snapshots and `leakhound leaks`"
                .to_owned(),
            Verdict::ExternalLeak => {
                parts.extend(flat(js_metric));
                let maybe = if external_known {
                    ""
                } else {
                    " (or an addon's large native allocations; the inspector's figures would tell)"
                };
                format!(
                    "Buffer/ArrayBuffer leak{maybe}: `leakhound capture`, then `leakhound \
                     retainers SNAPSHOT --class ArrayBuffer` shows who holds them"
                )
            }
            _ if metric == Metric::Component(Component::Stacks) => {
                "native leak: threads pile up (worker threads, or an addon's)".to_owned()
            }
            _ => {
                parts.extend(flat(js_metric));
                parts.extend(flat(external_metric));
                let maybe = if external_known {
                    ""
                } else {
                    " (or small Buffers; the inspector's figures would tell)"
                };
                format!("native leak{maybe}: {NATIVE_NEXT}")
            }
        };
        return Diagnosis {
            verdict,
            message: format!("{} → {next}", parts.join(", ")),
            growing,
        };
    }

    // Every RSS segment between snapshots may be a single point: no slope at all.
    let Some(rss) = get(Metric::Rss) else {
        return Diagnosis {
            verdict: Verdict::TooEarly,
            message: "too early: no stretch of samples between snapshots to fit a trend".into(),
            growing,
        };
    };
    let breakdown_known = get(Metric::Component(Component::MallocHeap)).is_some();
    if rss.is_growing() {
        let rss_rate = format!("RSS {}", rate(rss.slope_per_hour));
        let (verdict, message) = if let Some((_, file)) =
            growing_of(Metric::Component(Component::FileBacked))
                .filter(|(_, f)| f.slope_per_hour >= 0.5 * rss.slope_per_hour)
        {
            // Clean pages of the binary and mapped files, touched for the first time: the
            // kernel can drop them again, nothing leaks.
            let message = format!(
                "{rss_rate}, from file-backed/code {} (mapped files, reclaimable) → no leak",
                rate(file.slope_per_hour)
            );
            (Verdict::NoLeak, message)
        } else if !breakdown_known && v8_known {
            let mut parts = vec![rss_rate];
            parts.extend(flat(Metric::V8HeapUsed));
            parts.extend(flat(Metric::V8External));
            let message = format!("{} → native leak: {NATIVE_NEXT}", parts.join(", "));
            (Verdict::NativeLeak, message)
        } else if !breakdown_known {
            let wait = wait_for(samples, |s| s.breakdown.is_some());
            let message = format!(
                "{rss_rate}, too few smaps samples to say which memory: wait {}",
                wait.map_or_else(
                    || "for smaps samples".to_owned(),
                    |w| human_seconds(w) + " more"
                )
            );
            (Verdict::TooEarly, message)
        } else {
            let message =
                format!("{rss_rate}, no single component grows clearly yet: keep watching");
            (Verdict::TooEarly, message)
        };
        return Diagnosis {
            verdict,
            message,
            growing,
        };
    }

    // How fast a leak could be and still not show: above the interval, or too small to pass
    // the size threshold in this window.
    let threshold = MIN_GROWTH_BYTES.max(MIN_GROWTH_FRACTION * rss.first.max(0.0));
    let unseen = rss.high_per_hour.max(threshold * 3600.0 / rss.span_seconds);
    Diagnosis {
        verdict: Verdict::NoLeak,
        message: format!(
            "flat after warm-up → no leak over {} (a leak slower than {} would not show yet)",
            human_seconds(rss.span_seconds),
            rate(unseen),
        ),
        growing,
    }
}

/// A size in decimal units, as `heapsnap::findings::human_size` writes it: `512 B`, `8.1 MB`.
pub(crate) fn human_size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 999.5 {
        return format!("{bytes:.0} B");
    }
    let mut value = bytes / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A signed rate per hour: `+8.1 MB/h`, `-512 B/h`.
fn rate(bytes_per_hour: f64) -> String {
    let sign = if bytes_per_hour < 0.0 { "-" } else { "+" };
    format!("{sign}{}/h", human_size(bytes_per_hour.abs()))
}

/// `4.0 s`, `45 s`, `12.5 min`, `3.2 h`.
pub fn human_seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Seconds from the first to the last sample.
pub fn span_of(samples: &[Sample]) -> f64 {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => (b.t - a.t).max(0.0),
        _ => 0.0,
    }
}

/// About how much longer to watch until the samples that `has` selects number [`MIN_POINTS`]
/// and span [`MIN_SPAN_SECONDS`] after the warm-up, at their current spacing. `None` before
/// two of them.
fn wait_for(samples: &[Sample], has: impl Fn(&Sample) -> bool) -> Option<f64> {
    let times: Vec<f64> = samples
        .iter()
        .filter(|s| !s.after_snapshot && has(s))
        .map(|s| s.t)
        .collect();
    let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    let gap = median(&mut gaps).max(0.0);
    let kept = 1.0 - WARMUP_FRACTION;
    let needed_points = (MIN_POINTS as f64 / kept).ceil();
    let by_points = (needed_points - times.len() as f64) * gap;
    let by_span = MIN_SPAN_SECONDS / kept - span_of(samples);
    Some(by_points.max(by_span).max(gap))
}

/// Evenly spaced points of `seg`, about one in `k`, both ends kept.
fn thin(seg: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
    let n = seg.len();
    let m = n.div_ceil(k).max(2).min(n);
    if m < 2 {
        return seg.to_vec();
    }
    (0..m)
        .map(|i| seg[(i * (n - 1) + (m - 1) / 2) / (m - 1)])
        .collect()
}

/// The variance of Kendall's S for one segment under no trend, with the tie corrections for
/// both variables (Kendall 1975, eq. 4.4): ties in value are common (RSS in whole pages).
fn kendall_variance(seg: &[(f64, f64)]) -> f64 {
    let n = seg.len() as f64;
    if seg.len() < 2 {
        return 0.0;
    }
    let mut xs: Vec<f64> = seg.iter().map(|p| p.0).collect();
    let mut ys: Vec<f64> = seg.iter().map(|p| p.1).collect();
    let tx = TieSums::of(&mut xs);
    let ty = TieSums::of(&mut ys);
    let mut v = (n * (n - 1.0) * (2.0 * n + 5.0) - tx.a - ty.a) / 18.0;
    if seg.len() > 2 {
        v += tx.b * ty.b / (9.0 * n * (n - 1.0) * (n - 2.0));
    }
    v += tx.c * ty.c / (2.0 * n * (n - 1.0));
    v.max(0.0)
}

/// Sums over groups of `t` equal values: Σt(t−1)(2t+5), Σt(t−1)(t−2), Σt(t−1).
struct TieSums {
    a: f64,
    b: f64,
    c: f64,
}

impl TieSums {
    fn of(values: &mut [f64]) -> TieSums {
        values.sort_by(f64::total_cmp);
        let mut sums = TieSums {
            a: 0.0,
            b: 0.0,
            c: 0.0,
        };
        for group in values.chunk_by(|a, b| a == b) {
            let t = group.len() as f64;
            sums.a += t * (t - 1.0) * (2.0 * t + 5.0);
            sums.b += t * (t - 1.0) * (t - 2.0);
            sums.c += t * (t - 1.0);
        }
        sums
    }
}

/// The median of `values` (reordered), which must not be empty.
fn median(values: &mut [f64]) -> f64 {
    let mid = (values.len() as f64 - 1.0) / 2.0;
    quantile(values, mid)
}

/// The value at 0-based rank `pos` of `values` (reordered), interpolating between neighbours;
/// `pos` is clamped to the ranks there are. `values` must not be empty.
fn quantile(values: &mut [f64], pos: f64) -> f64 {
    let last = values.len() - 1;
    let pos = pos.clamp(0.0, last as f64);
    let k = pos.floor() as usize;
    let frac = pos - k as f64;
    let (_, &mut at, above) = values.select_nth_unstable_by(k, f64::total_cmp);
    if frac == 0.0 || above.is_empty() {
        return at;
    }
    let next = above.iter().copied().fold(f64::INFINITY, f64::min);
    at + frac * (next - at)
}

/// The error function (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7).
fn erf(x: f64) -> f64 {
    let sign = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

#[cfg(test)]
mod tests;
