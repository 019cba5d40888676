//! Leak detection on real Node processes, and the Comparison view against DevTools.
//!
//! Every scenario in `tests/leaks/*.js` is a small HTTP service driven by real requests that
//! writes a baseline, a target and a final snapshot. Its second line states what leakhound must
//! name: `// leakhound-expect: {"leak": true, "class": …, "owner": …, "owner_class": …}` or
//! `{"leak": false}` for the controls. The same snapshots, taken in pairs, check
//! `leakhound diff --json` against the DevTools worker's Comparison view.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conformance::{
    LEAKHOUND, LEAKHOUND_TIMEOUT, NodeBin, ORACLE_TIMEOUT, TMP_DIR, conformance_dir,
    oracle_installed, parallel_map, pinned_node, run_checked, same_number, show,
};

const LEAKS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/leaks");
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

struct Scenario {
    name: String,
    expect: Value,
    /// s1, s2, s3.
    snapshots: [PathBuf; 3],
}

/// Runs every scenario once per test process under the `node` on PATH.
fn scenarios() -> &'static Result<Vec<Scenario>, String> {
    static RUN: OnceLock<Result<Vec<Scenario>, String>> = OnceLock::new();
    RUN.get_or_init(|| run_scenarios(NodeBin::System))
}

/// Runs every scenario under `node`, writing to `<tmp>/leaks/<node label>/<scenario>/`.
fn run_scenarios(node: NodeBin) -> Result<Vec<Scenario>, String> {
    {
        let mut scripts: Vec<PathBuf> = std::fs::read_dir(LEAKS_DIR)
            .map_err(|e| format!("{LEAKS_DIR}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "js"))
            .collect();
        scripts.sort();
        let out_root = Path::new(TMP_DIR).join("leaks").join(node.label());
        let _ = std::fs::remove_dir_all(&out_root);
        let t = Instant::now();
        let results = parallel_map(&scripts, |script| -> Result<Scenario, String> {
            let name = script.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(script).map_err(|e| e.to_string())?;
            let expect = text
                .lines()
                .find_map(|l| l.strip_prefix("// leakhound-expect: "))
                .ok_or_else(|| format!("{name}: no `// leakhound-expect:` line"))?;
            let expect: Value =
                serde_json::from_str(expect).map_err(|e| format!("{name}: expectation: {e}"))?;
            let dir = out_root.join(&name);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            run_checked(
                Command::new(node.program())
                    .arg(script)
                    .arg(&dir)
                    .env_remove("NODE_OPTIONS"),
                SCENARIO_TIMEOUT,
            )?;
            let snapshots = [1, 2, 3].map(|k| dir.join(format!("s{k}.heapsnapshot")));
            for s in &snapshots {
                if !s.is_file() {
                    return Err(format!("{name} did not write {}", s.display()));
                }
            }
            Ok(Scenario {
                name,
                expect,
                snapshots,
            })
        });
        eprintln!(
            "leaks[{}]: {} scenarios in {:.1} s",
            node.label(),
            scripts.len(),
            t.elapsed().as_secs_f64()
        );
        results.into_iter().collect()
    }
}

fn leakhound_json(args: &[&Path]) -> Result<Value, String> {
    let out = run_checked(
        Command::new(LEAKHOUND).args(args).arg("--json"),
        LEAKHOUND_TIMEOUT,
    )?;
    serde_json::from_str(&out).map_err(|e| format!("leakhound output is not JSON: {e}"))
}

/// What leakhound said about one scenario, checked against its expectation.
fn check_leak_report(name: &str, expect: &Value, report: &Value) -> Result<(), String> {
    let suspected = report["leak_suspected"].as_bool() == Some(true);
    if expect["leak"] == Value::Bool(false) {
        if suspected {
            return Err(format!(
                "{name}: a leak was reported for a control: {report:#}"
            ));
        }
        return Ok(());
    }
    if !suspected {
        return Err(format!("{name}: no leak reported: {report:#}"));
    }
    let top = report["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["suspect"] == Value::Bool(true)))
        .ok_or_else(|| format!("{name}: no suspect cluster"))?;
    let owner = &top["owner"];
    let got = (
        top["class"].as_str().unwrap_or_default(),
        owner["name"].as_str().unwrap_or_default(),
        owner["class"].as_str().unwrap_or_default(),
    );
    let want = (
        expect["class"].as_str().unwrap_or_default(),
        expect["owner"].as_str().unwrap_or_default(),
        expect["owner_class"].as_str().unwrap_or_default(),
    );
    if got != want {
        return Err(format!(
            "{name}: top cluster (class, owner, owner class) is {got:?}, expected {want:?}; cluster: {top:#}"
        ));
    }
    // The path names the owner.
    let path_names: Vec<&str> = top["path"]
        .as_array()
        .map(|p| p.iter().filter_map(|s| s["edge"].as_str()).collect())
        .unwrap_or_default();
    let owner_edge = want.1.split('[').next().unwrap_or_default();
    if !path_names.contains(&owner_edge) {
        return Err(format!(
            "{name}: the path {path_names:?} does not go through {owner_edge}"
        ));
    }
    Ok(())
}

#[test]
fn leaks_names_class_and_owner_in_every_scenario() {
    let scenarios = scenarios()
        .as_ref()
        .unwrap_or_else(|e| panic!("set-up: {e}"));
    check_every_scenario(scenarios);
}

/// The same on the newest Node (V8's newest snapshot format), pinned in tests/conformance.
#[test]
fn leaks_names_class_and_owner_on_node26() {
    if let Err(e) = oracle_installed() {
        panic!("set-up failed (Node 26 comes with the oracle's npm packages): {e}");
    }
    let scenarios = run_scenarios(NodeBin::Pinned26).unwrap_or_else(|e| panic!("set-up: {e}"));
    check_every_scenario(&scenarios);
}

fn check_every_scenario(scenarios: &[Scenario]) {
    assert!(scenarios.len() >= 8, "all scenarios ran");
    let failures: Vec<String> = parallel_map(scenarios, |sc| {
        let [s1, s2, s3] = &sc.snapshots;
        let report = leakhound_json(&[Path::new("leaks"), s1, s2, s3])?;
        check_leak_report(&sc.name, &sc.expect, &report)
    })
    .into_iter()
    .filter_map(Result::err)
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// With two snapshots, "leaked" means new and alive in the second.
#[test]
fn leaks_works_with_two_snapshots() {
    let scenarios = scenarios()
        .as_ref()
        .unwrap_or_else(|e| panic!("set-up: {e}"));
    let sc = scenarios
        .iter()
        .find(|s| s.name == "context-map")
        .expect("the context-map scenario");
    let [s1, _, s3] = &sc.snapshots;
    let report = leakhound_json(&[Path::new("leaks"), s1, s3]).unwrap();
    check_leak_report("context-map (2 snapshots)", &sc.expect, &report).unwrap();
    assert_eq!(report["snapshots"].as_array().map(Vec::len), Some(2));
    // No sampling: every leaked CallContext of the two rounds is counted.
    let top = &report["clusters"][0];
    let counts = top["class_counts"].as_array().unwrap();
    let grown = counts[1].as_u64().unwrap() - counts[0].as_u64().unwrap();
    assert_eq!(top["count"].as_u64(), Some(grown), "{top:#}");
}

/// `leakhound diff --json` rows equal the DevTools worker's Comparison rows.
#[test]
fn diff_matches_devtools_comparison() {
    if let Err(e) = oracle_installed() {
        panic!("conformance set-up failed: {e}");
    }
    let scenarios = scenarios()
        .as_ref()
        .unwrap_or_else(|e| panic!("set-up: {e}"));
    let pairs: Vec<(&Path, &Path)> = scenarios
        .iter()
        .flat_map(|sc| {
            let [s1, s2, s3] = &sc.snapshots;
            [(s1.as_path(), s2.as_path()), (s2.as_path(), s3.as_path())]
        })
        .collect();
    let dir = conformance_dir();
    let t = Instant::now();
    let mut oracle_cmd = Command::new(pinned_node());
    oracle_cmd
        .arg("--import")
        .arg(dir.join("polyfill.mjs"))
        .arg(dir.join("oracle.mjs"))
        .arg("--diff")
        .current_dir(dir)
        .env_remove("NODE_OPTIONS");
    for (base, current) in &pairs {
        oracle_cmd.arg(base).arg(current);
    }
    let oracle: Value =
        serde_json::from_str(&run_checked(&mut oracle_cmd, ORACLE_TIMEOUT).unwrap())
            .expect("oracle JSON");
    eprintln!(
        "diff: oracle on {} pairs: {:.1} s",
        pairs.len(),
        t.elapsed().as_secs_f64()
    );

    let outputs = parallel_map(&pairs, |(base, current)| {
        leakhound_json(&[Path::new("diff"), base, current])
    });
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for ((base, current), actual) in pairs.iter().zip(outputs) {
        let key = format!("{}\n{}", base.display(), current.display());
        let ctx = format!("{} → {}", base.display(), current.display());
        let expected = oracle[&key]["rows"].as_array().expect("oracle rows");
        let actual = match actual {
            Ok(v) => v,
            Err(e) => {
                mismatches.push(format!("[{ctx}] leakhound failed: {e}"));
                continue;
            }
        };
        let actual = actual["classes"].as_array().cloned().unwrap_or_default();
        compared += expected.len();
        compare_rows(&ctx, expected, &actual, &mut mismatches);
    }
    assert!(
        compared > 0,
        "the oracle gave no rows: nothing was compared"
    );
    let mut report = String::new();
    for m in mismatches.iter().take(50) {
        let _ = writeln!(report, "{m}");
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches with DevTools' Comparison view:\n{report}",
        mismatches.len()
    );
}

fn row_key(row: &Value) -> String {
    format!("{} @ {}", row["name"], row["location"])
}

fn compare_rows(ctx: &str, expected: &[Value], actual: &[Value], out: &mut Vec<String>) {
    const FIELDS: [&str; 6] = [
        "new_count",
        "deleted_count",
        "count_delta",
        "alloc_size",
        "freed_size",
        "size_delta",
    ];
    let mut actual: std::collections::BTreeMap<String, &Value> =
        actual.iter().map(|r| (row_key(r), r)).collect();
    for e in expected {
        let key = row_key(e);
        let Some(a) = actual.remove(&key) else {
            out.push(format!("[{ctx}] {key}: missing in leakhound ({e})"));
            continue;
        };
        for f in FIELDS {
            if !same_number(e.get(f), a.get(f)) {
                out.push(format!(
                    "[{ctx}] {key}: {f}: leakhound {}, devtools {}",
                    show(a.get(f)),
                    show(e.get(f))
                ));
            }
        }
    }
    for key in actual.keys() {
        out.push(format!("[{ctx}] {key}: only in leakhound"));
    }
}

/// README's first command: the bundled example's leak hunt names both leaks.
#[test]
fn the_example_leak_hunt_names_handle_map_and_leaks() {
    let dir = Path::new(TMP_DIR).join("example-hunt");
    let _ = std::fs::remove_dir_all(&dir);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/leaky-server/snapshot.js"
    );
    run_checked(
        Command::new(NodeBin::System.program())
            .arg("--expose-gc")
            .arg(script)
            .arg(&dir)
            .arg("300")
            .env_remove("NODE_OPTIONS"),
        SCENARIO_TIMEOUT,
    )
    .unwrap();
    let files = [1, 2, 3].map(|k| dir.join(format!("s{k}.heapsnapshot")));
    let report = leakhound_json(&[Path::new("leaks"), &files[0], &files[1], &files[2]]).unwrap();
    assert_eq!(report["leak_suspected"], Value::Bool(true));
    let owners: Vec<(&str, &str)> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["suspect"] == Value::Bool(true))
        .filter_map(|c| Some((c["owner"]["name"].as_str()?, c["class"].as_str()?)))
        .collect();
    assert!(owners.contains(&("handleMap", "CallContext")), "{owners:?}");
    assert!(owners.iter().any(|&(o, _)| o == "leaks"), "{owners:?}");
}

/// With allocation tracking on (snapshots taken through the inspector), a cluster carries the
/// allocation stack of its objects.
#[test]
fn leaks_reports_allocation_stacks_from_tracked_snapshots() {
    let dir = Path::new(TMP_DIR).join("alloc-tracked");
    let _ = std::fs::remove_dir_all(&dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/alloc/tracked.js");
    run_checked(
        Command::new(NodeBin::System.program())
            .arg(script)
            .arg(&dir)
            .env_remove("NODE_OPTIONS"),
        SCENARIO_TIMEOUT,
    )
    .unwrap();
    let (s1, s2) = (dir.join("s1.heapsnapshot"), dir.join("s2.heapsnapshot"));
    let report = leakhound_json(&[Path::new("leaks"), &s1, &s2]).unwrap();
    let top = &report["clusters"][0];
    assert_eq!(top["class"], "Order", "{top:#}");
    assert_eq!(top["count"], 500, "{top:#}");
    assert_eq!(top["owner"]["name"], "orders", "{top:#}");
    let frames: Vec<&str> = top["allocation_stack"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert_eq!(frames[..2], ["placeOrder", "handleCheckout"], "{top:#}");
    assert!(
        top["allocation_stack"][0]["script"]
            .as_str()
            .is_some_and(|s| s.ends_with("tracked.js")),
        "{top:#}"
    );
}
