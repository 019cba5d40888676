//! Source-mapped positions on a real TypeScript service (`tests/sourcemaps`: an HTTP handler
//! books every order into a `Map` of an `OrderBook` held by a module variable), compiled here
//! by the real `typescript` compiler (pinned in `tests/leaks/package-lock.json`). A hunt names
//! the leaking class, its holder's class and the app's variable at their `.ts` lines in
//! `--json`, report.json, the text, the HTML page and the native report's JavaScript frames;
//! an inline map works as a file does; a broken map costs one warning and nothing else;
//! `--no-source-maps` shows generated positions only. Expected lines are read from the `.ts`
//! sources, never written here.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::conformance::{LEAKHOUND, TMP_DIR, npm_ci, run_checked};
use crate::live::{Run, leakhound_as};

const SERVICE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sourcemaps");
const LEAKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/leaks");
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// The compiler, installed once per test process with the scenarios' packages.
fn tsc() -> PathBuf {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let dir = Path::new(LEAKS_DIR);
            let tsc = dir.join("node_modules/typescript/bin/tsc");
            npm_ci(
                dir,
                &[
                    dir.join("node_modules/express-session/index.js"),
                    tsc.clone(),
                ],
            )?;
            Ok(tsc)
        })
        .clone()
        .expect("npm ci in tests/leaks")
}

/// A copy of the service in its own directory (`src/`, `tsconfig.json`), compiled into
/// `dist/` with `flags` (`--sourceMap`, `--inlineSourceMap`).
struct Project {
    root: PathBuf,
}

impl Project {
    fn compile(name: &str, flags: &[&str]) -> Project {
        let root = Path::new(TMP_DIR).join("sourcemaps").join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("src")).unwrap();
        for file in [
            "src/orders.ts",
            "src/server.ts",
            "src/node.d.ts",
            "tsconfig.json",
        ] {
            std::fs::copy(Path::new(SERVICE).join(file), root.join(file)).unwrap();
        }
        run_checked(
            Command::new("node")
                .arg(tsc())
                .args(["-p", "tsconfig.json", "--outDir", "dist"])
                .args(flags)
                .current_dir(&root),
            COMPILE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("tsc {flags:?}: {e}"));
        Project { root }
    }

    fn path(&self, file: &str) -> String {
        self.root.join(file).to_str().unwrap().to_owned()
    }

    /// The 1-based line of `file` (under the project) whose text contains `needle`.
    fn line(&self, file: &str, needle: &str) -> u64 {
        let text = std::fs::read_to_string(self.root.join(file)).unwrap();
        let found: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(found.len(), 1, "{needle:?} in {file}: lines {found:?}");
        found[0] as u64
    }

    /// Baseline, target and final snapshots of the compiled service under real requests
    /// (`drive.js`, with tests/leaks' harness).
    fn snapshots(&self) -> Vec<String> {
        let out = self.root.join("snapshots");
        run_checked(
            Command::new("node")
                .arg(Path::new(SERVICE).join("drive.js"))
                .arg(&out)
                .arg(self.root.join("dist"))
                .env_remove("NODE_OPTIONS"),
            COMPILE_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("drive.js: {e}"));
        (1..=3)
            .map(|k| {
                out.join(format!("s{k}.heapsnapshot"))
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    /// `leakhound ARGS…` run from the project's directory (where people run it from).
    fn leakhound(&self, args: &[&str]) -> Run {
        leakhound_as(
            Command::new(LEAKHOUND)
                .args(args)
                .current_dir(&self.root)
                .env_remove("NODE_OPTIONS"),
        )
    }
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {}\nstderr {}", run.stdout, run.stderr))
}

/// The `.ts` lines people look for.
struct Expected {
    orders_ts: String,
    server_ts: String,
    order: u64,
    order_book: u64,
    book: u64,
}

impl Expected {
    fn of(p: &Project) -> Expected {
        Expected {
            orders_ts: p.path("src/orders.ts"),
            server_ts: p.path("src/server.ts"),
            order: p.line("src/orders.ts", "export class Order "),
            order_book: p.line("src/orders.ts", "export class OrderBook "),
            book: p.line("src/server.ts", "const book = "),
        }
    }
}

/// `(source, line)` of a position's original.
fn original(position: &Value) -> Option<(&str, u64)> {
    let o = position.get("original")?;
    Some((o["source"].as_str()?, o["line"].as_u64()?))
}

/// The suspect cluster of `Order`s.
fn orders(report: &Value) -> &Value {
    report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "Order" && c["suspect"] == true)
        .unwrap_or_else(|| panic!("no suspect cluster of Order: {report:#}"))
}

/// The leak report puts the class, its holder's class and the app's variable at their `.ts`
/// lines (each generated position stays beside its original, on another line of the `.js`).
fn check_ts_positions(report: &Value, want: &Expected, p: &Project) {
    let c = orders(report);
    let owner = &c["owner"];
    assert_eq!(owner["holder"], "OrderBook.byId", "{c:#}");
    assert_eq!(owner["binding"]["name"], "book", "{c:#}");
    let binding = &owner["binding"]["location"];
    for (what, position, source, line) in [
        (
            "the leaking class",
            &c["location"],
            &want.orders_ts,
            want.order,
        ),
        (
            "the holder's class",
            &owner["location"],
            &want.orders_ts,
            want.order_book,
        ),
        ("the app's variable", binding, &want.server_ts, want.book),
    ] {
        assert_eq!(
            original(position),
            Some((source.as_str(), line)),
            "{what}: {position:#}"
        );
        assert!(
            position["script"]
                .as_str()
                .unwrap()
                .starts_with(&p.path("dist/")),
            "{what}: {position:#}"
        );
        assert_ne!(
            position["line"].as_u64(),
            Some(line),
            "{what}: {position:#}"
        );
        assert!(position["original"]["column"].as_u64() >= Some(1));
    }
}

/// The `.ts` text of the same positions, relative to the directory leakhound runs in.
fn check_ts_text(text: &str, want: &Expected) {
    for needle in [
        "   defined at /".to_owned(),
        format!("(src/orders.ts:{}:", want.order),
        "OrderBook is defined at /".to_owned(),
        format!("(src/orders.ts:{}:", want.order_book),
        "your module variable book (/".to_owned(),
        format!("(src/server.ts:{}:", want.book),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in:\n{text}");
    }
}

/// The acceptance case: `leakhound hunt` on the compiled service (with native tracking, so
/// JavaScript frames of native stacks are mapped too).
#[test]
fn typescript_hunt_puts_the_leak_at_its_ts_lines() {
    let p = Project::compile("hunt", &["--sourceMap"]);
    let want = Expected::of(&p);
    let run_dir = p.root.join("run");
    let server = p.path("dist/server.js");
    let run = crate::native::leakhound(&[
        "hunt",
        "--requests",
        "300",
        "--json",
        "--url",
        "/order",
        "--out",
        run_dir.to_str().unwrap(),
        "--",
        "node",
        &server,
        "0",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(!run.stderr.contains("warning: the"), "{}", run.stderr);
    let report = json(&run);
    check_ts_positions(&report, &want, &p);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    check_ts_positions(&saved, &want, &p);

    // The JavaScript frames of native stacks: who allocated the orders' receipts (a
    // constructor, or the handler it was inlined into) at its own `.ts` line.
    let callers: Vec<&Value> = report["native"]["processes"][0]["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("js_caller"))
        .filter(|f| f["name"] == "Order" || f["name"] == "handle")
        .collect();
    assert!(!callers.is_empty(), "{:#}", report["native"]);
    for f in &callers {
        let (source, line) = original(f).unwrap_or_else(|| panic!("{f:#}"));
        let expected = if f["name"] == "Order" {
            (
                want.orders_ts.as_str(),
                p.line("src/orders.ts", "constructor("),
            )
        } else {
            (
                want.server_ts.as_str(),
                p.line("src/server.ts", "function handle("),
            )
        };
        assert_eq!((source, line), expected, "{f:#}");
    }

    // The text, as `leaks` prints the hunt's snapshots from the project's directory, and the
    // native report of the hunt's recording.
    let snapshots: Vec<String> = report["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["snapshot"]["path"].as_str().unwrap().to_owned())
        .collect();
    let args: Vec<&str> = std::iter::once("leaks")
        .chain(snapshots.iter().map(String::as_str))
        .collect();
    let text = p.leakhound(&args);
    assert_eq!(text.code, Some(1), "{}", text.stderr);
    check_ts_text(&text.stdout, &want);
    let native = p.leakhound(&["native", run_dir.join("native").to_str().unwrap()]);
    assert!(matches!(native.code, Some(0 | 1)), "{}", native.stderr);
    assert!(
        native.stdout.contains("(src/orders.ts:") || native.stdout.contains("(src/server.ts:"),
        "{}",
        native.stdout
    );

    // The page: the cluster's card shows where the class is, in the .ts file.
    let mut page = crate::browser::Page::open(&run_dir.join("report.html"), false);
    let shown = page.text();
    for needle in [
        format!("src/orders.ts:{}:", want.order),
        format!("src/orders.ts:{}:", want.order_book),
        format!("src/server.ts:{}:", want.book),
    ] {
        assert!(
            shown.contains(&needle),
            "{needle} not in the page:\n{shown}"
        );
    }
    let errors = page.errors();
    assert!(errors.is_empty(), "{errors:#?}");
    drop(page);

    // Rebuilt since the snapshot (a line added at the top, as a watch build would): the map
    // now describes another text, so no `.ts` position is given, and that is said once.
    let orders_js = p.root.join("dist/orders.js");
    let compiled = std::fs::read_to_string(&orders_js).unwrap();
    std::fs::write(&orders_js, format!("// rebuilt\n{compiled}")).unwrap();
    let stale = p.leakhound(&args);
    assert_eq!(stale.code, Some(1), "{}", stale.stderr);
    assert!(
        !stale.stdout.contains("(src/orders.ts:"),
        "{}",
        stale.stdout
    );
    assert_eq!(
        stale.stderr.matches("is not the code that ran").count(),
        1,
        "{}",
        stale.stderr
    );
}

/// A map inline in its script (`--inlineSourceMap`) serves as one beside it does, in every
/// command that prints positions; `--no-source-maps` leaves only generated positions.
#[test]
fn inline_source_maps_and_no_source_maps() {
    let p = Project::compile("inline", &["--inlineSourceMap"]);
    assert!(!p.root.join("dist/orders.js.map").exists());
    let want = Expected::of(&p);
    let snapshots = p.snapshots();
    let leaks = |extra: &[&'static str]| -> Run {
        let args: Vec<&str> = std::iter::once("leaks")
            .chain(snapshots.iter().map(String::as_str))
            .chain(extra.iter().copied())
            .collect();
        p.leakhound(&args)
    };
    let text = leaks(&[]);
    assert_eq!(text.code, Some(1), "{}", text.stderr);
    assert!(text.stderr.is_empty(), "{}", text.stderr);
    check_ts_text(&text.stdout, &want);
    // From `/` (an MCP server's directory when a desktop client starts it, a container's),
    // the originals are absolute: `tmp/…/src/orders.ts` would not open from anywhere else.
    let args: Vec<&str> = std::iter::once("leaks")
        .chain(snapshots.iter().map(String::as_str))
        .collect();
    let from_root = leakhound_as(
        Command::new(LEAKHOUND)
            .args(&args)
            .current_dir("/")
            .env_remove("NODE_OPTIONS"),
    );
    assert_eq!(from_root.code, Some(1), "{}", from_root.stderr);
    for needle in [
        format!("({}:{}:", want.orders_ts, want.order),
        format!("({}:{}:", want.server_ts, want.book),
    ] {
        assert!(
            from_root.stdout.contains(&needle),
            "{needle:?} not in:\n{}",
            from_root.stdout
        );
    }
    let run = leaks(&["--json"]);
    check_ts_positions(&json(&run), &want, &p);
    let last = snapshots[2].as_str();

    // summary: the Order row (its constructor, as V8 keys it), text and JSON.
    let constructor = p.line("src/orders.ts", "constructor(");
    let summary = p.leakhound(&["summary", last, "--class", "^Order$"]);
    assert!(
        summary
            .stdout
            .contains(&format!("(src/orders.ts:{constructor}:")),
        "{}",
        summary.stdout
    );
    let rows = json(&p.leakhound(&["summary", last, "--json", "--class", "^Order$"]));
    assert_eq!(
        original(&rows["classes"][0]),
        Some((want.orders_ts.as_str(), constructor)),
        "{rows:#}"
    );
    // diff: the same row in the Comparison.
    let diff = json(&p.leakhound(&["diff", &snapshots[0], last, "--json"]));
    let row = diff["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Order")
        .unwrap();
    assert_eq!(
        original(row),
        Some((want.orders_ts.as_str(), constructor)),
        "{row:#}"
    );
    // show: one leaked order.
    let id = format!("@{}", orders(&json(&run))["sample_ids"][0]);
    let show = p.leakhound(&["show", last, &id]);
    assert!(
        show.stdout
            .contains(&format!("(src/orders.ts:{constructor}:")),
        "{}",
        show.stdout
    );

    // --no-source-maps: the same reports, with no original anywhere.
    let mut plain = vec![
        leaks(&["--json", "--no-source-maps"]),
        leaks(&["--no-source-maps"]),
    ];
    for args in [
        vec!["summary", last, "--json", "--no-source-maps"],
        vec!["summary", last, "--no-source-maps"],
        vec!["diff", &snapshots[0], last, "--json", "--no-source-maps"],
        vec!["show", last, &id, "--no-source-maps"],
        vec!["findings", last, "--json", "--no-source-maps"],
    ] {
        plain.push(p.leakhound(&args));
    }
    for run in &plain {
        assert!(
            matches!(run.code, Some(0 | 1)) && run.stderr.is_empty(),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains("\"original\""), "{}", run.stdout);
        assert!(!run.stdout.contains(".ts:"), "{}", run.stdout);
    }
    let c = orders(&json(&plain[0])).clone();
    assert!(c["location"]["line"].as_u64().is_some(), "{c:#}");
}

/// A map that cannot be read: one warning on stderr, generated positions where it would have
/// served, the other scripts' maps still used, the same report and exit code otherwise.
#[test]
fn a_broken_source_map_costs_one_warning() {
    let p = Project::compile("broken", &["--sourceMap"]);
    let want = Expected::of(&p);
    std::fs::write(p.root.join("dist/orders.js.map"), "{ not json").unwrap();
    let snapshots = p.snapshots();
    let mut args: Vec<&str> = std::iter::once("leaks")
        .chain(snapshots.iter().map(String::as_str))
        .collect();
    // The HTML page asks for the same positions again (and the Comparison's).
    let page = p.path("leaks.html");
    args.extend(["--html", &page]);
    let run = p.leakhound(&args);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains(&p.path("dist/orders.js.map")),
        "{}",
        warnings[0]
    );
    let orders_js = p.path("dist/orders.js");
    let class_line = p.line("dist/orders.js", "class Order ");
    assert!(
        run.stdout
            .contains(&format!("   defined at {orders_js}:{class_line}:1\n")),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("src/orders.ts"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("(src/server.ts:{}:", want.book)),
        "{}",
        run.stdout
    );
    args.truncate(4);
    args.push("--json");
    let run = p.leakhound(&args);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = json(&run);
    let c = orders(&report);
    assert_eq!(c["location"].get("original"), None, "{c:#}");
    assert_eq!(c["owner"]["location"].get("original"), None, "{c:#}");
    assert_eq!(
        original(&c["owner"]["binding"]["location"]),
        Some((want.server_ts.as_str(), want.book))
    );
}
