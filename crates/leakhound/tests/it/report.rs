//! The HTML report: the example hunt's page in a real browser (headless Chromium, driven over
//! the DevTools protocol), golden files for small fixed pages, and the size bound on a hunt
//! that finds far more than a page can show.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use heapsnap::testing::{Format, Graph};
use serde_json::Value;

use crate::browser::Page;
use crate::conformance::{LEAKHOUND, TMP_DIR};
use crate::live::{dir, leakhound_as};
use crate::native::leakhound as with_tracker;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/leaky-server/server.js"
);
const REPORT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/report");
/// Where screenshots go for people to look at (not compared pixel by pixel).
const SHOTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/report");

pub(crate) fn shot(name: &str) -> PathBuf {
    std::fs::create_dir_all(SHOTS).unwrap();
    Path::new(SHOTS).join(name)
}

fn errors_none(page: &mut Page, when: &str) {
    let errors = page.errors();
    assert!(errors.is_empty(), "{when}: {errors:#?}");
}

/// Nothing is wider than the window (long names wrap): a page scrolled sideways is unreadable.
fn no_sideways_scroll(page: &mut Page) {
    let wide = page.eval(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1 && !e.closest('.scroll, .flame-scroll, pre')).slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + e.textContent.slice(0, 80))",
    );
    assert_eq!(wide, serde_json::json!([]), "wider than the window");
}

fn count(page: &mut Page, selector: &str) -> u64 {
    page.eval(&format!("document.querySelectorAll({selector:?}).length"))
        .as_u64()
        .unwrap()
}

/// README's hunt: its report opens without a single error, names both culprits, and its
/// trees, tables, timeline and flame graph answer clicks and keys.
#[test]
fn example_hunt_report_in_a_real_browser() {
    let dir = dir("report-hunt");
    let run = with_tracker(&[
        "hunt",
        "--native",
        "--requests",
        "300",
        "--out",
        dir.to_str().unwrap(),
        "--url",
        "/status?test=1",
        "--url",
        "/report",
        "--",
        "node",
        EXAMPLE,
        "0",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let html = dir.join("report.html");
    assert!(
        run.stdout.contains(&format!("Report: {}", html.display())),
        "{}",
        run.stdout
    );
    let meta = std::fs::metadata(&html).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(meta.len() <= 2_000_000, "{} bytes", meta.len());

    let mut page = Page::open(&html, false);
    errors_none(&mut page, "after load");
    no_sideways_scroll(&mut page);
    let text = page.text();
    for needle in [
        "Leak suspected",
        "What to do next",
        "handleMap",
        "leaks",
        "CallContext",
        "Memory over time",
        "Comparison",
        "Native memory",
        "Load",
        "warm-up → baseline",
        "leakhound hunt --native --requests 300",
    ] {
        assert!(text.contains(needle), "{needle} not in the page:\n{text}");
    }

    // The handleMap cluster's retaining path: its first step opens, by a click, to what
    // retains it and what it holds.
    let rank = page
        .eval("[...document.querySelectorAll('.cluster')].findIndex(c => c.querySelector('h3').textContent.includes('handleMap')) + 1")
        .as_u64()
        .unwrap();
    assert!(rank > 0, "no handleMap cluster");
    let step = format!("#cluster-{rank} .path > li > details");
    assert_eq!(
        page.eval(&format!("document.querySelector('{step}').open")),
        false
    );
    page.click(&format!("{step} > summary"));
    assert_eq!(
        page.eval(&format!("document.querySelector('{step}').open")),
        true
    );
    // (`toggle` is dispatched as a task after the click.)
    let opened = page
        .eval(&format!(
            "new Promise(r => setTimeout(() => r(document.querySelector('{step}').innerText), 100))"
        ))
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        opened.contains("Retained by (") && opened.contains("Holds ("),
        "{opened}"
    );
    // The Map's entries are in what it holds: its table.
    assert!(opened.contains("(internal table)"), "{opened}");

    // The keyboard opens the next step the same way.
    let next = format!("#cluster-{rank} .path > li:nth-child(3) > details");
    page.eval(&format!(
        "document.querySelector('{next} > summary').focus()"
    ));
    page.key("Enter");
    assert_eq!(
        page.eval(&format!("document.querySelector('{next}').open")),
        true
    );

    // The Comparison sorts by a column and filters by class.
    let first_new = |page: &mut Page| {
        page.eval("document.querySelector('#comparison tbody tr td:nth-child(3)').textContent")
    };
    page.click("#comparison th:nth-child(3) button");
    let biggest = first_new(&mut page);
    page.click("#comparison th:nth-child(3) button");
    assert_ne!(first_new(&mut page), biggest, "sorting did nothing");
    page.eval(
        "const f = document.querySelector('#comparison input[type=search]'); f.value = 'CallContext'; f.dispatchEvent(new Event('input'));",
    );
    let rows = page.eval(
        "[...document.querySelectorAll('#comparison tbody tr')].map(r => r.cells[0].textContent)",
    );
    let rows: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.contains("CallContext")),
        "{rows:?}"
    );

    // The timeline reads out values from the keyboard.
    page.eval("document.querySelector('#timeline .chart').focus()");
    page.key("ArrowRight");
    let tip = page.eval("document.querySelector('#timeline .tip').innerText");
    assert!(tip.as_str().unwrap().contains("RSS"), "{tip}");
    page.key("Escape");

    // The flame graph zooms into a frame and back.
    assert!(count(&mut page, "#native .flame-frame") > 3);
    page.click("#native .flame-frame:nth-of-type(3)");
    assert_eq!(
        page.eval("document.querySelector('#native .flame-reset').disabled"),
        false
    );
    page.click("#native .flame-reset");

    errors_none(&mut page, "after the clicks");
    page.eval("window.scrollTo(0, 0)");
    page.screenshot(&shot("example-hunt.png"), true);
    let pdf = page.pdf();
    assert!(
        pdf.starts_with(b"%PDF") && pdf.len() > 10_000,
        "{} bytes",
        pdf.len()
    );
    drop(page);

    // Dark, as a system set to it shows it.
    let mut page = Page::open(&html, true);
    errors_none(&mut page, "dark");
    let background = page.eval("getComputedStyle(document.documentElement).backgroundColor");
    assert_ne!(background, "rgb(255, 255, 255)");
    page.screenshot(&shot("example-hunt-dark.png"), true);
    // README's picture: the top of the page, made here (LEAKHOUND_UPDATE_SCREENSHOT=1).
    drop(page);
    if std::env::var_os("LEAKHOUND_UPDATE_SCREENSHOT").is_some() {
        let mut page = Page::open(&html, false);
        page.screenshot(
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../docs/report.png"
            )),
            false,
        );
    }
}

/// Three snapshots of a process whose `sessions` array gains a `Session` per request, written
/// from the graph language: `step` 0, 1 and 2 hold 5, 35 and 65.
fn session_graph(step: usize) -> String {
    let mut g = String::from(
        "root: synthetic
        G: synthetic name=\"(GC roots)\"
        W: object 32 name=\"global\" id=3
        A: object 16 name=\"Array\" id=5
        E: array 64 name=\"\" id=7
        root -element-> G
        root -shortcut:global-> W
        G -element-> W
        W -property:sessions-> A
        A -internal:elements-> E
        ",
    );
    for i in 0..5 + 30 * step {
        let id = 1001 + 2 * i;
        g.push_str(&format!(
            "S{i}: object 48 name=\"Session\" id={id} at=7,{},4\nE -element:{i}-> S{i}\nT{i}: string 40 name=\"token-{i}\" id={}\nS{i} -property:token-> T{i}\n",
            10,
            id + 100_000
        ));
    }
    g
}

pub(crate) fn write_series(dir: &Path) -> Vec<String> {
    (0..3)
        .map(|step| {
            let name = format!("s{}.heapsnapshot", step + 1);
            let json = Graph::parse(&session_graph(step)).to_json(Format::Classic);
            std::fs::write(dir.join(&name), json).unwrap();
            name
        })
        .collect()
}

/// Compares `html` with the golden file `name` (`LEAKHOUND_UPDATE_GOLDEN=1` rewrites it).
fn golden(name: &str, html: &str) {
    let path = Path::new(REPORT_DIR).join(name);
    if std::env::var_os("LEAKHOUND_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, html).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != html {
        let line = expected
            .lines()
            .zip(html.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(html.lines().count()));
        panic!(
            "{} differs from this render at line {} (LEAKHOUND_UPDATE_GOLDEN=1 cargo test report to accept it):\n  golden: {}\n  now:    {}",
            path.display(),
            line + 1,
            expected.lines().nth(line).unwrap_or("(end)"),
            html.lines().nth(line).unwrap_or("(end)")
        );
    }
}

/// `leaks --html` and `diff --html` on fixed snapshots render byte for byte the same every
/// time, as pinned; and they open cleanly.
#[test]
fn leaks_and_diff_pages_match_their_golden_files() {
    let dir = dir("report-golden");
    let files = write_series(&dir);
    let run = |args: &[&str]| leakhound_as(Command::new(LEAKHOUND).current_dir(&dir).args(args));
    let mut args = vec!["leaks", "--html", "leaks.html"];
    args.extend(files.iter().map(String::as_str));
    let leaks = run(&args);
    assert_eq!(leaks.code, Some(1), "{}", leaks.stderr);
    assert!(leaks.stdout.contains("Session"), "{}", leaks.stdout);
    let diff = run(&["diff", "--html", "diff.html", &files[0], &files[2]]);
    assert_eq!(diff.code, Some(0), "{}", diff.stderr);
    let first = std::fs::read_to_string(dir.join("leaks.html")).unwrap();
    // The same input renders the same page.
    assert_eq!(run(&args).code, Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.join("leaks.html")).unwrap(),
        first
    );
    for (name, needles) in [
        (
            "leaks.html",
            &[
                "30 × Session in globalThis.sessions",
                "5 → 35 → 65",
                "Comparison",
            ][..],
        ),
        ("diff.html", &["Session", "+60", "Comparison"][..]),
    ] {
        let html = std::fs::read_to_string(dir.join(name)).unwrap();
        golden(&format!("golden-{name}"), &html);
        let mut page = Page::open(&dir.join(name), false);
        errors_none(&mut page, name);
        let text = page.text();
        for needle in needles {
            assert!(text.contains(needle), "{needle} not in {name}:\n{text}");
        }
    }
}

/// A hunt on an app that leaks in hundreds of ways at once, through long paths and long names:
/// the page stays under 10 MB, says what it left out, and still opens without an error.
#[test]
fn a_report_of_a_huge_leak_stays_bounded() {
    let dir = dir("report-large");
    let app = Path::new(REPORT_DIR).join("many-leaks.js");
    let run = with_tracker(&[
        "hunt",
        "--native",
        "--requests",
        "200",
        "--top",
        "1000",
        "--min-count",
        "1",
        "--out",
        dir.to_str().unwrap(),
        "--url",
        "/leak",
        "--",
        "node",
        app.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let html = dir.join("report.html");
    let len = std::fs::metadata(&html).unwrap().len();
    assert!(len <= 10_000_000, "{len} bytes");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let clusters = report["clusters"].as_array().unwrap().len();
    assert!(
        clusters > 30,
        "only {clusters} clusters: the app should leak in more ways"
    );
    let mut page = Page::open(&html, false);
    errors_none(&mut page, "large report");
    no_sideways_scroll(&mut page);
    let text = page.text();
    assert!(text.contains("Left out of this page"), "{text}");
    assert!(text.contains("Clusters: the largest 30 of"), "{text}");
    assert!(text.contains("strings longer than"), "{text}");
    // The list's leak: its path keeps its ends and says how many steps it left out.
    assert!(text.contains("Retaining paths:"), "{text}");
    assert!(text.contains("more steps, left out of this page"), "{text}");
    assert_eq!(count(&mut page, ".cluster"), 30);
    page.screenshot(&shot("large-hunt.png"), false);
    eprintln!("large report: {len} bytes for {clusters} clusters in {TMP_DIR}");
}
