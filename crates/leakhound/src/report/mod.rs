//! The HTML report: one self-contained page (`report.html` of a hunt, `--html FILE` of
//! `leaks`, `diff`, `watch` and `native`).
//!
//! The page is a [`Page`] of plain data, pre-aggregated and bounded here (top N per section,
//! long strings clipped, each cut said in the page), embedded as JSON and drawn by
//! `report.js`; the timelines are SVG drawn by [`timeline`]. The stylesheet and scripts are
//! real files pulled in at build time. Nothing is fetched: no fonts, scripts or images from
//! anywhere. The output depends only on the page's data (no clock), so a golden test pins it.

pub mod flame;
pub mod timeline;

use std::io::{self, Write};

use heapsnap::excerpt::Excerpt;
use heapsnap::findings::Finding;
use heapsnap::leaks::Report;
use leakhound_live::memory::Sample;
use leakhound_live::native::analysis::ProcessReport;
use serde::Serialize;

const CSS: &str = include_str!("report.css");
const FLAME_CSS: &str = include_str!("flame.css");
const JS: &str = include_str!("report.js");
const FLAME_JS: &str = include_str!("flame.js");

/// The bound on a whole page, whatever the input.
pub const MAX_BYTES: usize = 10_000_000;
/// Timelines (a watch of many processes) shown at most: each is a chart and its points.
pub const MAX_TIMELINES: usize = 12;
/// Clusters, table rows, findings and native stacks shown at most.
pub const MAX_CLUSTERS: usize = 30;
pub const MAX_ROWS: usize = 300;
pub const MAX_FINDINGS: usize = 50;
pub const MAX_STACKS: usize = 20;
/// Steps of a retaining path kept: the first few (where it leaves the root) and the last ones
/// (the owner and the leaked object).
pub const PATH_HEAD: usize = 8;
pub const PATH_TAIL: usize = 24;
/// Frames of a native stack kept (innermost first).
pub const MAX_FRAMES: usize = 60;
/// Characters of any one string in the data.
pub const MAX_TEXT: usize = 1000;

/// Everything a page shows. Sections that are `None` or empty are left out.
#[derive(Debug, Default, Serialize)]
pub struct Page {
    /// The command that made it: `hunt`, `leaks`, `diff`, `watch`, `native`.
    pub command: &'static str,
    pub title: String,
    pub verdict: Verdict,
    /// What could make the verdict wrong (a load that failed), shown with it.
    pub warnings: Vec<String>,
    /// Label and value pairs under the title (the app, Node's version, the snapshots…).
    pub facts: Vec<(String, String)>,
    pub timelines: Vec<Timeline>,
    pub leaks: Option<Leaks>,
    pub comparison: Option<Table>,
    pub findings: Vec<Finding>,
    pub native: Option<Native>,
    /// A hunt's rounds of load and their memory.
    pub rounds: Option<Table>,
    /// Command lines to reproduce or go further, with what each does.
    pub commands: Vec<(String, String)>,
    /// What the page leaves out, one sentence each.
    pub cut: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// `leak`, `warn`, `ok` or `info` (no judgement: a diff): how the verdict is coloured.
    pub level: &'static str,
    pub headline: String,
    /// The next steps, most useful first.
    pub next: Vec<String>,
}

/// One process's memory over time.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub title: String,
    /// The watch's verdict on it, when there is one.
    pub note: Option<String>,
    /// For the hover read-out, thinned as the chart is: `[t, rss, V8 heap used or -1,
    /// after a snapshot (0/1)]`.
    pub points: Vec<(f64, u64, i64, u8)>,
    /// `[t, V8 heap, malloc heap, other anonymous, file-backed, stacks]`.
    pub breakdowns: Vec<(f64, [u64; 5])>,
    #[serde(skip)]
    pub samples: Vec<Sample>,
    /// Named moments on the samples' clock (a hunt's snapshots).
    #[serde(skip)]
    pub marks: Vec<(f64, String)>,
}

impl Timeline {
    pub fn new(title: String, samples: &[Sample], marks: Vec<(f64, String)>) -> Timeline {
        let mut sorted: Vec<&Sample> = samples.iter().filter(|s| s.t.is_finite()).collect();
        sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
        let points = timeline::thin(&sorted, timeline::MAX_POINTS)
            .iter()
            .map(|s| {
                let used = s.v8.map_or(-1, |v| v.heap_used as i64);
                (s.t, s.rss, used, u8::from(s.after_snapshot))
            })
            .collect();
        let with_breakdown: Vec<&Sample> = sorted
            .iter()
            .copied()
            .filter(|s| s.breakdown.is_some())
            .collect();
        let breakdowns = timeline::thin(&with_breakdown, timeline::MAX_POINTS)
            .iter()
            .filter_map(|s| {
                let b = s.breakdown?;
                Some((
                    s.t,
                    [
                        b.v8_heap,
                        b.malloc_heap,
                        b.other_anon,
                        b.file_backed,
                        b.stacks,
                    ],
                ))
            })
            .collect();
        Timeline {
            title,
            note: None,
            points,
            breakdowns,
            samples: samples.to_vec(),
            marks,
        }
    }
}

/// The leak analysis: its report, and the graph around each cluster's path for the trees.
#[derive(Debug, Serialize)]
pub struct Leaks {
    pub report: Report,
    /// Clusters under this size support no verdict (shown apart).
    pub min_count: u64,
    /// The last snapshot, for `leakhound show @ID FILE` beyond the excerpt.
    pub last_snapshot: String,
    pub graph: Excerpt,
    /// Per cluster, who holds it and, when the path runs through a variable of the app's,
    /// how it is reached from there: as the text report words them.
    pub holders: Vec<(Option<String>, Option<String>)>,
    /// Per cluster, the steps of its path left out after the first [`PATH_HEAD`] (set by
    /// [`Page::bound`]).
    pub path_cuts: Vec<usize>,
    pub path_head: usize,
}

/// A table the page can sort (every column) and filter (by the first).
#[derive(Debug, Default, Serialize)]
pub struct Table {
    pub title: String,
    /// What it shows, in a sentence.
    pub caption: String,
    /// Title and kind of each column: `text`, `count`, `size`, `signed_count`,
    /// `signed_size`, `seconds`.
    pub columns: Vec<(String, &'static str)>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows before the page's cut.
    pub total_rows: usize,
}

#[derive(Debug, Serialize)]
pub struct Native {
    pub verdict: String,
    pub processes: Vec<ProcessReport>,
    pub quiet_processes: usize,
    pub flame: Option<flame::Node>,
    pub flame_title: String,
    pub dir: String,
    /// What each signature found in the stacks means, by its JSON name.
    pub signatures: std::collections::BTreeMap<String, &'static str>,
}

impl Page {
    /// Bounds the page's sections (each cut is said in `cut`), to be called once when all
    /// sections are in.
    pub fn bound(&mut self) {
        if self.timelines.len() > MAX_TIMELINES {
            self.cut.push(format!(
                "Timelines: the first {MAX_TIMELINES} of {} processes are shown",
                self.timelines.len()
            ));
            self.timelines.truncate(MAX_TIMELINES);
        }
        if let Some(leaks) = &mut self.leaks {
            let r = &mut leaks.report;
            r.clusters.truncate(MAX_CLUSTERS);
            leaks.holders.truncate(MAX_CLUSTERS);
            // The analysis itself keeps the largest `--top`; the page at most MAX_CLUSTERS.
            if r.cluster_count > r.clusters.len() {
                self.cut.push(format!(
                    "Clusters: the largest {} of {} are shown (--top sets how many the analysis keeps, up to {MAX_CLUSTERS} on this page)",
                    r.clusters.len(),
                    r.cluster_count
                ));
            }
            leaks.path_cuts = r
                .clusters
                .iter_mut()
                .map(|c| {
                    let cut = c.path.len().saturating_sub(PATH_HEAD + PATH_TAIL);
                    if cut > 0 {
                        c.path.drain(PATH_HEAD..PATH_HEAD + cut);
                    }
                    cut
                })
                .collect();
            let long_paths = leaks.path_cuts.iter().filter(|&&n| n > 0).count();
            if long_paths > 0 {
                self.cut.push(format!(
                    "Retaining paths: {long_paths} longer than {} steps show their first {PATH_HEAD} and last {PATH_TAIL} steps",
                    PATH_HEAD + PATH_TAIL
                ));
            }
            for (what, n) in [
                ("Growing classes", r.growing_classes.len()),
                ("Growing collections", r.growing_collections.len()),
            ] {
                if n > MAX_ROWS {
                    self.cut
                        .push(format!("{what}: the first {MAX_ROWS} of {n} are shown"));
                }
            }
            r.growing_classes.truncate(MAX_ROWS);
            r.growing_collections.truncate(MAX_ROWS);
        }
        for table in [&mut self.comparison, &mut self.rounds]
            .into_iter()
            .flatten()
        {
            table.rows.truncate(MAX_ROWS);
            if table.total_rows > table.rows.len() {
                self.cut.push(format!(
                    "{}: the first {} rows of {} are shown",
                    table.title,
                    table.rows.len(),
                    table.total_rows
                ));
            }
        }
        if self.findings.len() > MAX_FINDINGS {
            self.cut.push(format!(
                "Findings: the first {MAX_FINDINGS} of {} are shown",
                self.findings.len()
            ));
            self.findings.truncate(MAX_FINDINGS);
        }
        if let Some(native) = &mut self.native {
            let mut deep = 0;
            for p in &mut native.processes {
                if p.stacks.len() > MAX_STACKS {
                    p.more_stacks += p.stacks.len() - MAX_STACKS;
                    p.stacks.truncate(MAX_STACKS);
                }
                for s in &mut p.stacks {
                    deep += usize::from(s.frames.len() > MAX_FRAMES);
                    s.frames.truncate(MAX_FRAMES);
                }
            }
            if deep > 0 {
                self.cut.push(format!(
                    "Native stacks: {deep} deeper than {MAX_FRAMES} frames show their innermost {MAX_FRAMES}"
                ));
            }
        }
    }

    /// The data as JSON for the page: long strings clipped, and no `</script>` can end the
    /// script element early.
    fn data(&self) -> String {
        let mut value = serde_json::to_value(self).expect("the page's data serializes");
        let clipped = clip(&mut value);
        if clipped > 0 {
            let note = serde_json::Value::String(format!(
                "Text: {clipped} strings longer than {MAX_TEXT} characters are cut short"
            ));
            if let Some(cut) = value.get_mut("cut").and_then(|c| c.as_array_mut()) {
                cut.push(note);
            }
        }
        let text = serde_json::to_string(&value).expect("a JSON value serializes");
        text.replace('<', "\\u003c")
    }
}

/// Cuts every string in `value` to [`MAX_TEXT`] characters; returns how many it cut.
fn clip(value: &mut serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::String(s) => match s.char_indices().nth(MAX_TEXT) {
            Some((cut, _)) => {
                s.truncate(cut);
                s.push('…');
                1
            }
            None => 0,
        },
        Value::Array(items) => items.iter_mut().map(clip).sum(),
        Value::Object(map) => map.values_mut().map(clip).sum(),
        _ => 0,
    }
}

/// Writes the page. The sections' data is bounded first ([`Page::bound`]); if it is still
/// over [`MAX_BYTES`] (it cannot be with the caps above, but the bound is a promise), the
/// retainer trees and the Comparison table go.
pub fn write(out: &mut impl Write, page: &mut Page) -> io::Result<()> {
    page.bound();
    let mut data = page.data();
    if data.len() > MAX_BYTES - 500_000 {
        if let Some(leaks) = &mut page.leaks {
            leaks.graph = Excerpt::default();
        }
        page.comparison = None;
        page.cut.push(
            "Retainer trees and the Comparison table: left out, the page was too large".into(),
        );
        data = page.data();
    }
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="en"><head><meta charset="utf-8">"#)?;
    writeln!(
        out,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
    )?;
    // Nothing may load from anywhere: the page's own inline style and script only.
    writeln!(
        out,
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">"#
    )?;
    writeln!(out, r#"<meta name="color-scheme" content="light dark">"#)?;
    writeln!(out, "<title>{}</title>", escape(&page.title))?;
    writeln!(
        out,
        "<style>\n{CSS}\n{FLAME_CSS}\n</style>\n</head>\n<body>"
    )?;
    writeln!(
        out,
        r#"<noscript><p>This report draws itself with JavaScript, which is off. The same data is in the JSON below and, for a hunt, in report.json beside this file.</p></noscript>"#
    )?;
    writeln!(out, r#"<main id="report"></main>"#)?;
    writeln!(out, r#"<div id="charts" hidden>"#)?;
    for (i, t) in page.timelines.iter().enumerate() {
        writeln!(out, r#"<div class="chart" id="chart-{i}">"#)?;
        timeline::write(out, &t.samples, &t.title, &t.marks)?;
        writeln!(out, "</div>")?;
    }
    writeln!(out, "</div>")?;
    writeln!(
        out,
        r#"<script type="application/json" id="data">{data}</script>"#
    )?;
    writeln!(out, "<script>\n{FLAME_JS}\n{JS}\n</script>\n</body></html>")?;
    Ok(())
}

/// `text` escaped for HTML element content.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The command line that ran leakhound, as a shell would take it back (`leakhound` for the
/// binary's path).
pub fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    command_line("leakhound", &args)
}

/// [`invocation`] without `--out DIR`, for a command that refuses a directory it has filled:
/// run again, it makes a new one.
pub fn rerun() -> String {
    command_line("leakhound", &without_out(std::env::args().skip(1)))
}

/// `args` without `--out VALUE` and `--out=VALUE`, up to a `--` (the app's own arguments).
fn without_out(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut kept = Vec::new();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        if a == "--" {
            kept.push(a);
            kept.extend(args.by_ref());
            break;
        }
        if a == "--out" {
            args.next();
        } else if !a.starts_with("--out=") {
            kept.push(a);
        }
    }
    kept
}

/// `program` and `args` quoted for a POSIX shell where they need it.
pub fn command_line(program: &str, args: &[String]) -> String {
    let quote = |a: &str| {
        let plain = !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
        if plain {
            a.to_owned()
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    std::iter::once(program.to_owned())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates `path` (0600: reports name the app's objects) and writes the page into it.
pub fn write_file(path: &std::path::Path, page: &mut Page) -> anyhow::Result<()> {
    use anyhow::Context;
    let file = leakhound_live::capture::create_private(path)?;
    let mut out = io::BufWriter::new(file);
    write(&mut out, page)
        .and_then(|()| out.flush())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            command_line(
                "leakhound",
                &["hunt".into(), "--url".into(), "/a?b=1".into()]
            ),
            "leakhound hunt --url '/a?b=1'"
        );
        assert_eq!(
            command_line("x", &["it's".into(), String::new()]),
            r"x 'it'\''s' ''"
        );
    }

    /// The size bound holds for a watch of many processes over a long time.
    #[test]
    fn many_long_timelines_stay_within_the_bound() {
        use leakhound_live::memory::{Breakdown, V8Stats};
        let samples: Vec<Sample> = (0..20_000u64)
            .map(|i| Sample {
                t: i as f64,
                unix_ms: i * 1000,
                pid: 1,
                rss: 100_000_000 + i * 1000,
                rss_anon: 0,
                rss_file: 0,
                swap: 0,
                breakdown: Some(Breakdown {
                    v8_heap: 1 + i,
                    malloc_heap: 2 + i,
                    other_anon: 3,
                    file_backed: 4,
                    stacks: 5,
                }),
                v8: Some(V8Stats {
                    heap_used: i,
                    heap_total: 2 * i,
                    external: 0,
                    array_buffers: 0,
                }),
                after_snapshot: i % 1000 == 0,
            })
            .collect();
        let mut page = Page::default();
        for p in 0..40 {
            page.timelines
                .push(Timeline::new(format!("worker {p}"), &samples, Vec::new()));
        }
        let mut html = Vec::new();
        write(&mut html, &mut page).unwrap();
        assert!(html.len() <= MAX_BYTES, "{} bytes", html.len());
        assert!(
            page.cut
                .iter()
                .any(|c| c.starts_with("Timelines: the first 12 of 40"))
        );
    }

    #[test]
    fn reruns_leave_out_the_output_directory() {
        let args = |a: &str| a.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            without_out(
                args("hunt --out d --url /x --out=e -- node app.js --out keep").into_iter()
            ),
            args("hunt --url /x -- node app.js --out keep")
        );
    }

    #[test]
    fn data_cannot_close_the_script_and_long_text_is_clipped() {
        let mut page = Page {
            title: "</script><b>".into(),
            ..Page::default()
        };
        page.facts.push(("long".into(), "x".repeat(MAX_TEXT + 5)));
        let mut html = Vec::new();
        write(&mut html, &mut page).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("<title>&lt;/script&gt;&lt;b&gt;</title>"));
        let data = html.split(r#"id="data">"#).nth(1).unwrap();
        let data = &data[..data.find("</script>").unwrap()];
        assert!(!data.contains('<'));
        let value: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(value["title"], "</script><b>");
        assert_eq!(
            value["facts"][0][1].as_str().unwrap().chars().count(),
            MAX_TEXT + 1
        );
        assert!(
            value["cut"][0]
                .as_str()
                .unwrap()
                .contains("1 strings longer")
        );
        // No address outside the page.
        for scheme in ["http://", "https://", "//cdn", "@import", "url("] {
            let outside = html
                .match_indices(scheme)
                .filter(|(i, _)| {
                    !html[..*i].ends_with("xmlns=\"")
                        && !html[*i..].starts_with("http://www.w3.org/2000/svg")
                })
                .count();
            assert_eq!(outside, 0, "{scheme}");
        }
    }
}
