//! The SVG chart of a memory timeline (`watch --svg`, a hunt's `timeline.svg`, the HTML
//! report's timeline): the five components of RSS as stacked areas, RSS and V8's used heap as
//! lines, leakhound's snapshots marked.
//!
//! Self-contained: no scripts, no stylesheets, no fonts but the generic `sans-serif`, so it
//! shows the same in a browser, an image viewer or a pull-request comment. Written by hand: it
//! is a few dozen elements. The root carries the plot's geometry (`data-*`) for the HTML
//! report's hover read-out.
//!
//! The breakdown comes from `smaps`, which is read less often than RSS: the areas join the
//! samples that have one with straight lines (memory moves smoothly between them; carrying the
//! last value forward would draw steps that did not happen) and cover only the time between the
//! first and the last of them. A long watch is thinned to [`MAX_POINTS`] points per line,
//! evenly, keeping every sample taken after a snapshot.

use std::fmt::Write;
use std::io;

use leakhound_live::memory::{Component, Sample};

use crate::output;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
/// The plot area; the legend is to its right, the axis labels to its left and below.
const LEFT: f64 = 72.0;
const RIGHT: f64 = 700.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 372.0;

const RSS_COLOUR: &str = "#222222";
const HEAP_USED_COLOUR: &str = "#0b3d91";
const SNAPSHOT_COLOUR: &str = "#8e44ad";

/// The fill of each component, stacked in this order from the bottom: the V8 heap lies on the
/// axis so that V8's used heap (a dashed line) can be read against it.
fn colour(c: Component) -> &'static str {
    match c {
        Component::V8Heap => "#5b8fd0",
        Component::MallocHeap => "#e0675f",
        Component::OtherAnon => "#f0a04b",
        Component::FileBacked => "#b9b4ae",
        Component::Stacks => "#6bb36b",
    }
}

/// Points drawn per line at most: more than a chart's width in pixels, and a week of samples
/// every second stays a small file.
pub const MAX_POINTS: usize = 1500;

/// Writes the chart of `samples` (one process) as an SVG document titled `title`. `marks`
/// names moments on the samples' clock (`t`): a hunt's snapshots.
pub fn write(
    out: &mut impl io::Write,
    samples: &[Sample],
    title: &str,
    marks: &[(f64, String)],
) -> io::Result<()> {
    // A few hundred elements: built as one string, then written.
    out.write_all(chart(samples, title, marks).as_bytes())
}

/// Every `step`-th of `samples` (sorted by time), with the last one and those taken after a
/// snapshot, so that at most about `max` remain.
pub fn thin<'a>(samples: &[&'a Sample], max: usize) -> Vec<&'a Sample> {
    let step = samples.len().div_ceil(max.max(1)).max(1);
    samples
        .iter()
        .enumerate()
        .filter(|&(i, s)| i % step == 0 || i + 1 == samples.len() || s.after_snapshot)
        .map(|(_, s)| *s)
        .collect()
}

fn chart(samples: &[Sample], title: &str, marks: &[(f64, String)]) -> String {
    let mut samples: Vec<&Sample> = samples.iter().filter(|s| s.t.is_finite()).collect();
    samples.sort_by(|a, b| a.t.total_cmp(&b.t));
    // The breakdown is thinned on its own: thinning all samples could drop every sample that
    // has one.
    let with_breakdown: Vec<&Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.breakdown.is_some())
        .collect();
    let with_breakdown = thin(&with_breakdown, MAX_POINTS);
    let samples = thin(&samples, MAX_POINTS);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12"{}>"#,
        geometry(&samples)
    );
    let _ = writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let (t0, t1) = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if b.t > a.t => (a.t, b.t),
        _ => {
            let note = match samples.len() {
                0 => "no samples".to_owned(),
                n => format!("not enough samples to chart ({n}, no time between them)"),
            };
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" text-anchor="middle" font-size="16" fill="#666666">{note}</text>"##,
                WIDTH / 2.0,
                HEIGHT / 2.0
            );
            svg.push_str("</svg>\n");
            return svg;
        }
    };

    let top = samples
        .iter()
        .map(|s| {
            let stacked = s.breakdown.map_or(0, |b| b.total());
            let heap_used = s.v8.map_or(0, |v| v.heap_used);
            s.rss.max(stacked).max(heap_used)
        })
        .max()
        .unwrap_or(0)
        .max(1_000_000) as f64;
    let y_step = nice_step(top / 5.0);
    let y_top = (top / y_step).ceil() * y_step;
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (RIGHT - LEFT);
    let y = |bytes: f64| BOTTOM - bytes / y_top * (BOTTOM - TOP);

    let first = samples[0];
    let last = samples[samples.len() - 1];
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="38" fill="#555555">{} samples over {} · RSS {} → {}</text>"##,
        samples.len(),
        leakhound_live::timeline::human_seconds(t1 - t0),
        output::size(first.rss),
        output::size(last.rss),
    );

    axes(&mut svg, t0, t1, y_step, y_top, &x, &y);

    // Stacked areas: each component's band, from the running total below it to its top.
    let breakdowns: Vec<(f64, [f64; 5])> = with_breakdown
        .iter()
        .filter_map(|s| {
            let b = s.breakdown?;
            let mut tops = [0.0; 5];
            let mut sum = 0.0;
            for (top, c) in tops.iter_mut().zip(Component::ALL) {
                sum += b.get(c) as f64;
                *top = sum;
            }
            Some((s.t, tops))
        })
        .collect();
    if !breakdowns.is_empty() {
        for (k, c) in Component::ALL.into_iter().enumerate() {
            let mut d = String::new();
            for (i, (t, tops)) in breakdowns.iter().enumerate() {
                let cmd = if i == 0 { 'M' } else { 'L' };
                let _ = write!(d, "{cmd}{:.1},{:.1} ", x(*t), y(tops[k]));
            }
            for (t, tops) in breakdowns.iter().rev() {
                let below = if k == 0 { 0.0 } else { tops[k - 1] };
                let _ = write!(d, "L{:.1},{:.1} ", x(*t), y(below));
            }
            let _ = writeln!(
                svg,
                r#"<path class="area {}" d="{}Z" fill="{}" fill-opacity="0.85"><title>{}</title></path>"#,
                c.key(),
                d,
                colour(c),
                c.label()
            );
        }
    }

    // Leakhound's snapshots: a band over each run of `after_snapshot` samples, a line at its
    // start.
    let mut runs: Vec<(f64, f64)> = Vec::new();
    let mut in_run = false;
    for s in &samples {
        match (s.after_snapshot, in_run, runs.last_mut()) {
            (true, true, Some(run)) => run.1 = s.t,
            (true, _, _) => runs.push((s.t, s.t)),
            _ => {}
        }
        in_run = s.after_snapshot;
    }
    for &(from, to) in &runs {
        let _ = writeln!(
            svg,
            r#"<g class="snapshot"><title>after a heap snapshot by leakhound: left out of trends</title><rect x="{:.1}" y="{TOP}" width="{:.1}" height="{}" fill="{SNAPSHOT_COLOUR}" fill-opacity="0.12"/><line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{BOTTOM}" stroke="{SNAPSHOT_COLOUR}" stroke-width="1.5" stroke-dasharray="3 3"/></g>"#,
            x(from),
            x(to) - x(from),
            BOTTOM - TOP,
        );
    }
    // Named moments (a hunt's snapshots): a line and the name, staggered so neighbours do not
    // overwrite each other.
    for (i, (t, name)) in marks.iter().enumerate() {
        if !(t0..=t1).contains(t) {
            continue;
        }
        let _ = writeln!(
            svg,
            r#"<g class="mark"><line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{BOTTOM}" stroke="{SNAPSHOT_COLOUR}" stroke-width="1.5"/><text x="{1:.1}" y="{2:.1}" fill="{SNAPSHOT_COLOUR}">{3}</text></g>"#,
            x(*t),
            x(*t) + 3.0,
            TOP + 12.0 + 14.0 * (i % 3) as f64,
            escape(name)
        );
    }

    // V8's used heap, where the inspector gave it: a gap where it did not.
    let mut d = String::new();
    let mut pen_down = false;
    for s in &samples {
        match s.v8 {
            Some(v) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                let _ = write!(d, "{cmd}{:.1},{:.1} ", x(s.t), y(v.heap_used as f64));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let has_v8 = !d.is_empty();
    if has_v8 {
        let _ = writeln!(
            svg,
            r#"<path class="heap-used" d="{}" fill="none" stroke="{HEAP_USED_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
            d.trim_end()
        );
    }

    let mut d = String::new();
    for (i, s) in samples.iter().enumerate() {
        let cmd = if i == 0 { 'M' } else { 'L' };
        let _ = write!(d, "{cmd}{:.1},{:.1} ", x(s.t), y(s.rss as f64));
    }
    let _ = writeln!(
        svg,
        r#"<path class="rss" d="{}" fill="none" stroke="{RSS_COLOUR}" stroke-width="1.8"/>"#,
        d.trim_end()
    );

    legend(&mut svg, !breakdowns.is_empty(), has_v8, !runs.is_empty());
    svg.push_str("</svg>\n");
    svg
}

/// The plot's time span and box as `data-*` attributes of the root, for a reader that maps a
/// pointer position back to a time; empty when nothing is plotted.
fn geometry(samples: &[&Sample]) -> String {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) if b.t > a.t => format!(
            r#" data-t0="{}" data-t1="{}" data-left="{LEFT}" data-right="{RIGHT}""#,
            a.t, b.t
        ),
        _ => String::new(),
    }
}

/// Grid lines and labels: sizes on the left, time below.
fn axes(
    svg: &mut String,
    t0: f64,
    t1: f64,
    y_step: f64,
    y_top: f64,
    x: &impl Fn(f64) -> f64,
    y: &impl Fn(f64) -> f64,
) {
    let (unit_bytes, unit) = match y_top {
        v if v >= 1e9 => (1e9, "GB"),
        v if v >= 1e6 => (1e6, "MB"),
        _ => (1e3, "kB"),
    };
    let decimals = if y_step / unit_bytes >= 1.0 { 0 } else { 1 };
    let _ = writeln!(svg, r##"<g class="y-axis" fill="#444444">"##);
    let ticks = (y_top / y_step).round() as u32;
    for i in 0..=ticks {
        let v = f64::from(i) * y_step;
        let label = if i == 0 {
            "0".to_owned()
        } else {
            format!("{:.*} {unit}", decimals, v / unit_bytes)
        };
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{RIGHT}" y2="{0:.1}" stroke="#e4e4e4"/><text x="{1}" y="{2:.1}" text-anchor="end">{label}</text>"##,
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
        );
    }
    svg.push_str("</g>\n");

    let span = t1 - t0;
    let (unit_seconds, unit) = if span < 120.0 {
        (1.0, "s")
    } else if span < 7200.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    };
    let step = nice_step(span / unit_seconds / 6.0);
    let decimals = if step >= 1.0 { 0 } else { 1 };
    let _ = writeln!(svg, r##"<g class="x-axis" fill="#444444">"##);
    let mut i = (t0 / unit_seconds / step).ceil() as i64;
    loop {
        let v = i as f64 * step;
        let t = v * unit_seconds;
        if t > t1 + 1e-9 * span {
            break;
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{BOTTOM}" x2="{0:.1}" y2="{1}" stroke="#888888"/><text x="{0:.1}" y="{2}" text-anchor="middle">{v:.3$} {unit}</text>"##,
            x(t),
            BOTTOM + 5.0,
            BOTTOM + 18.0,
            decimals,
        );
        i += 1;
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="#888888"/><text x="{}" y="{}" text-anchor="middle">time since the first sample</text>"##,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 38.0,
    );
    svg.push_str("</g>\n");
}

/// The legend, right of the plot: the components top to bottom as they are stacked, then the
/// lines and markers the chart has.
fn legend(svg: &mut String, areas: bool, v8: bool, snapshots: bool) {
    let lx = RIGHT + 18.0;
    let mut ly = TOP + 6.0;
    let _ = writeln!(svg, r#"<g class="legend">"#);
    let _ = writeln!(
        svg,
        r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{RSS_COLOUR}" stroke-width="1.8"/><text x="{}" y="{}">RSS</text>"#,
        lx + 18.0,
        lx + 26.0,
        ly + 4.0
    );
    ly += 20.0;
    if v8 {
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{HEAP_USED_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{}" y="{}">V8 heap used</text>"#,
            lx + 18.0,
            lx + 26.0,
            ly + 4.0
        );
        ly += 20.0;
    }
    if areas {
        for c in Component::ALL.into_iter().rev() {
            let _ = writeln!(
                svg,
                r#"<rect x="{lx}" y="{}" width="18" height="12" fill="{}" fill-opacity="0.85"/><text x="{}" y="{}">{}</text>"#,
                ly - 6.0,
                colour(c),
                lx + 26.0,
                ly + 4.0,
                c.label()
            );
            ly += 20.0;
        }
    } else {
        let _ = writeln!(
            svg,
            r##"<text x="{lx}" y="{}" fill="#666666">no smaps breakdown</text>"##,
            ly + 4.0
        );
        ly += 20.0;
    }
    if snapshots {
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{SNAPSHOT_COLOUR}" stroke-width="1.5" stroke-dasharray="3 3"/><text x="{3}" y="{4}">after a snapshot</text>"#,
            lx + 9.0,
            ly - 7.0,
            ly + 7.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    svg.push_str("</g>\n");
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// `text` with XML's special characters escaped, for element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use leakhound_live::memory::{Breakdown, V8Stats};

    use super::*;

    const MB: u64 = 1_000_000;

    fn sample(t: f64, rss: u64) -> Sample {
        Sample {
            t,
            unix_ms: 1_700_000_000_000 + (t * 1000.0) as u64,
            pid: 42,
            rss,
            rss_anon: rss,
            rss_file: 0,
            swap: 0,
            breakdown: None,
            v8: None,
            after_snapshot: false,
        }
    }

    /// `n` samples, `dt` apart: a JS heap growing 1 MB per sample, a breakdown on every 3rd,
    /// V8's figures on all but a few, and a snapshot settling at samples 40–44.
    fn timeline(n: usize, dt: f64) -> Vec<Sample> {
        (0..n)
            .map(|i| {
                let heap = (20 + i as u64) * MB;
                let b = Breakdown {
                    v8_heap: heap,
                    malloc_heap: 12 * MB,
                    other_anon: 3 * MB,
                    file_backed: 38 * MB,
                    stacks: MB,
                };
                let mut s = sample(i as f64 * dt, b.total() + MB / 2);
                if i % 3 == 0 {
                    s.breakdown = Some(b);
                }
                if !(60..65).contains(&i) {
                    s.v8 = Some(V8Stats {
                        heap_used: heap - 4 * MB,
                        heap_total: heap,
                        external: 2 * MB,
                        array_buffers: MB,
                    });
                }
                s.after_snapshot = (40..45).contains(&i);
                s
            })
            .collect()
    }

    /// Checks that `svg` is well-formed enough: one root, every tag closed in order, no raw
    /// `<` or stray `&` in text. Returns the names of the elements opened, in order.
    fn check_xml(svg: &str) -> Vec<String> {
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        let mut stack: Vec<String> = Vec::new();
        let mut opened = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = rest[start..].find('>').expect("unclosed tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "tag {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name), "in {tag}");
                if stack.is_empty() {
                    assert!(rest[end + 1..].trim().is_empty(), "content after the root");
                }
            } else {
                let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
                assert!(!stack.is_empty() || opened.is_empty(), "second root {name}");
                opened.push(name.to_owned());
                if !tag.ends_with('/') {
                    stack.push(name.to_owned());
                }
                // Attribute values are quoted and escaped.
                for value in tag.split('"').skip(1).step_by(2) {
                    check_text(value);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        opened
    }

    fn check_text(text: &str) {
        assert!(
            !text.contains('<') && !text.contains('>'),
            "raw bracket in {text:?}"
        );
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
                "stray & in {text:?}"
            );
        }
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    #[test]
    fn full_chart() {
        let svg = chart(&timeline(100, 0.5), "node server.js <pid 42> & 'co'", &[]);
        let elements = check_xml(&svg);
        assert_eq!(elements[0], "svg");
        assert!(svg.contains(r#"viewBox="0 0 900 420""#));
        assert!(svg.contains("node server.js &lt;pid 42&gt; &amp; &apos;co&apos;"));
        // One area per component, one RSS line, one dashed V8 line with a gap.
        assert_eq!(count(&svg, r#"<path class="area "#), 5);
        for c in Component::ALL {
            assert_eq!(count(&svg, &format!(r#"class="area {}""#, c.key())), 1);
        }
        assert_eq!(count(&svg, r#"<path class="rss""#), 1);
        assert_eq!(count(&svg, r#"<path class="heap-used""#), 1);
        let heap_used = svg.lines().find(|l| l.contains("heap-used")).unwrap();
        assert_eq!(
            count(heap_used, "M"),
            2,
            "a gap where V8's figures are missing"
        );
        // One marker for the one run of `after_snapshot` samples.
        assert_eq!(count(&svg, r#"<g class="snapshot">"#), 1);
        // Axes: 49.5 s in seconds, sizes in MB; the legend names every component.
        assert!(svg.contains(">10 s</text>") && svg.contains(">40 s</text>"));
        assert!(svg.contains(" MB</text>"));
        for label in [
            "RSS",
            "V8 heap used",
            "after a snapshot",
            "V8 heap",
            "malloc heap",
        ] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(svg.contains("100 samples over 50 s · RSS 74.5 MB → 173.5 MB"));
        assert!(!svg.contains("<script") && !svg.contains("@font-face"));
        // Deterministic, and out of order input draws the same.
        let mut shuffled = timeline(100, 0.5);
        shuffled.reverse();
        assert_eq!(
            chart(&shuffled, "x", &[]),
            chart(&timeline(100, 0.5), "x", &[])
        );
    }

    #[test]
    fn no_breakdown_no_v8() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| sample(f64::from(i) * 1200.0, (2000 + 50 * i as u64) * MB))
            .collect();
        let svg = chart(&samples, "t", &[]);
        check_xml(&svg);
        assert_eq!(count(&svg, "<path "), 1);
        assert!(svg.contains("no smaps breakdown"));
        assert!(!svg.contains("V8 heap used") && !svg.contains("after a snapshot"));
        // 3 hours in hours, 2.5 GB in GB.
        assert!(
            svg.contains(">1.0 h</text>") && svg.contains(">2.5 h</text>"),
            "{svg}"
        );
        assert!(svg.contains(" GB</text>"));
    }

    #[test]
    fn minutes_axis() {
        let svg = chart(&timeline(100, 6.0), "t", &[]);
        check_xml(&svg);
        // 9.9 minutes, every 2 minutes.
        assert!(
            svg.contains(">2 min</text>") && svg.contains(">8 min</text>"),
            "{svg}"
        );
    }

    #[test]
    fn empty_and_single() {
        let svg = chart(&[], "nothing & nobody", &[]);
        check_xml(&svg);
        assert!(svg.contains(">no samples</text>"));
        assert!(svg.contains("nothing &amp; nobody"));
        let svg = chart(&[sample(3.0, 50 * MB)], "one", &[]);
        check_xml(&svg);
        assert!(svg.contains("not enough samples to chart (1"));
        assert_eq!(count(&svg, "<path"), 0);
        let same_time = [sample(3.0, 50 * MB), sample(3.0, 51 * MB)];
        check_xml(&chart(&same_time, "two", &[]));
    }

    #[test]
    fn long_watches_are_thinned_and_snapshots_named() {
        // A day of samples every second: each line keeps at most MAX_POINTS points.
        let samples = timeline(86_400, 1.0);
        let svg = chart(&samples, "day", &[]);
        check_xml(&svg);
        let rss = svg.lines().find(|l| l.contains(r#"class="rss""#)).unwrap();
        let points = count(rss, "L") + 1;
        assert!(points <= MAX_POINTS + 10, "{points}");
        assert!(points >= MAX_POINTS / 2, "{points}");
        assert!(svg.len() < 400_000, "{}", svg.len());
        // Named moments inside the time span are drawn, others not.
        let marks = [(20.0, "baseline".to_owned()), (80.0, "later".to_owned())];
        let svg = chart(&timeline(100, 0.5), "t", &marks);
        assert_eq!(count(&svg, r#"<g class="mark">"#), 1);
        assert!(svg.contains(">baseline</text>") && !svg.contains("later"));
        assert!(svg.contains(r#"data-t0="0" data-t1="49.5""#), "{svg}");
    }

    #[test]
    fn helpers() {
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(20.0), 20.0);
        assert_eq!(nice_step(21.0), 50.0);
        assert_eq!(nice_step(0.07), 0.1);
        assert_eq!(
            escape("a<b>&\"c\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;\u{fffd}"
        );
    }
}
