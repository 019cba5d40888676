//! Native allocation tracking on real `node` processes with real native leaks: the example's
//! addon (compiled here with g++ as node-gyp would, plus frame pointers) leaking 4 KB malloc'd
//! records per request, its clean twin, Buffers held from JS, forks and threads, a process
//! ending mid-recording, and damaged recordings.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::conformance::{LEAKHOUND, TMP_DIR};
use crate::live::{Run, dir, leakhound_as};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/native-leak");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// What the addon mallocs per `remember` (`sizeof(Record)`).
const RECORD: u64 = 4096;

struct Built {
    preload: PathBuf,
    addon: PathBuf,
}

/// The tracker library and the test addon, built once per test run. The tracker is built by
/// cargo into a target directory of its own (the test binary does not link it: a cdylib that
/// exports malloc must not end up in it).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = Path::new(TMP_DIR).join("preload-target");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "leakhound-preload", "--target-dir"])
            .arg(&target)
            .current_dir(WORKSPACE)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building leakhound-preload failed");
        let addon = Path::new(TMP_DIR).join("native-addon").join("addon.node");
        std::fs::create_dir_all(addon.parent().unwrap()).unwrap();
        let output = Command::new("sh")
            .arg(Path::new(EXAMPLE).join("build.sh"))
            .arg(&addon)
            .output()
            .expect("sh runs");
        assert!(
            output.status.success(),
            "building the test addon failed (needs g++ and node's headers; .ci/run installs g++): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Built {
            preload: target.join("debug").join("libleakhound_preload.so"),
            addon,
        }
    })
}

/// leakhound with the tracker built here and the test addon (the tracker beside a test build of
/// leakhound is not built by `cargo test`).
pub(crate) fn leakhound(args: &[&str]) -> Run {
    let built = built();
    leakhound_as(
        Command::new(LEAKHOUND)
            .args(args)
            .env("LEAKHOUND_PRELOAD", &built.preload)
            .env("ADDON", &built.addon)
            .env_remove("NODE_OPTIONS"),
    )
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {}\nstderr {}", run.stdout, run.stderr))
}

fn hunt(dir: &Path, url: &str, extra: &[&str], script: &str) -> (Run, Value) {
    let mut args = vec![
        "hunt",
        "--requests",
        "1000",
        "--json",
        "--url",
        url,
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    args.extend(["--", "node", script, "0"]);
    let run = leakhound(&args);
    let report = json(&run);
    (run, report)
}

/// `leakhound native --json --dump-every EVERY --out OUT -- node -e SCRIPT`.
fn native_e(every: &str, out: &Path, script: &str) -> Run {
    let out = out.to_str().unwrap();
    leakhound(&[
        "native",
        "--json",
        "--dump-every",
        every,
        "--out",
        out,
        "--",
        "node",
        "-e",
        script,
    ])
}

fn suspects(process: &Value) -> Vec<&Value> {
    process["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["suspect"] == true)
        .collect()
}

fn private(path: &Path) {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{}", path.display());
}

/// The addon's leak: the top suspect names the C++ function that called malloc and the JS
/// function that called the addon, sizes the growth within ±25 % of the truth, and the hunt
/// exits 1 although the JS heap is flat.
#[test]
fn hunt_names_the_native_leak_and_its_js_caller() {
    let dir = dir("native-hunt-leak");
    let server = format!("{EXAMPLE}/server.js");
    let (run, report) = hunt(&dir, "/login", &[], &server);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(report["verdict"], "native_leak", "{}", run.stderr);
    assert_eq!(report["leak_suspected"], true, "a native leak is a leak");
    let process = &report["native"]["processes"][0];
    let found = suspects(process);
    assert_eq!(found.len(), 1, "{process:#}");
    let top = found[0];
    assert!(
        top["allocated_by"]["name"]
            .as_str()
            .unwrap()
            .contains("CreateSessionRecord"),
        "{top:#}"
    );
    assert_eq!(top["allocated_by"]["module"], "addon.node");
    assert_eq!(top["js_caller"]["name"], "handleLogin", "{top:#}");
    assert!(
        top["js_caller"]["location"]
            .as_str()
            .unwrap()
            .ends_with("server.js:11:21"),
        "{top:#}"
    );
    // Two rounds of 1000 requests after the baseline, one record each.
    let truth = 2000 * RECORD;
    let growth = top["live"]["after"].as_u64().unwrap() - top["live"]["before"].as_u64().unwrap();
    let error = (growth as f64 - truth as f64) / truth as f64;
    assert!(
        error.abs() <= 0.25,
        "estimated {growth} bytes for {truth}: {:+.0} %",
        error * 100.0
    );
    for file in ["native-growth.svg", "native.pb.gz"] {
        private(&dir.join(file));
    }
    let svg = std::fs::read_to_string(dir.join("native-growth.svg")).unwrap();
    assert!(svg.contains("CreateSessionRecord") && svg.contains("handleLogin"));
    // The pprof profile: gzip of a protobuf whose string table names the sample types and the
    // functions.
    let mut profile = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(dir.join("native.pb.gz")).unwrap())
        .read_to_end(&mut profile)
        .unwrap();
    let text = String::from_utf8_lossy(&profile);
    for word in [
        "inuse_space",
        "alloc_objects",
        "CreateSessionRecord",
        "handleLogin",
    ] {
        assert!(text.contains(word), "{word} not in the profile");
    }
    // The report: the native section names the allocator and its JS caller, and its flame
    // graph finds them by search.
    let mut page = crate::browser::Page::open(&dir.join("report.html"), false);
    let text = page.text();
    for needle in [
        "Native leak",
        "CreateSessionRecord",
        "handleLogin",
        "suspect",
    ] {
        assert!(text.contains(needle), "{needle} not in the page:\n{text}");
    }
    page.eval(
        "const f = document.querySelector('#native .flame-bar input'); f.value = 'CreateSessionRecord'; f.dispatchEvent(new Event('input'));",
    );
    let status = page.eval(
        "new Promise(r => setTimeout(() => r(document.querySelector('#native .flame-status').textContent), 400))",
    );
    assert!(status.as_str().unwrap().contains('%'), "{status}");
    let errors = page.errors();
    assert!(errors.is_empty(), "{errors:#?}");
    page.screenshot(&crate::report::shot("native-hunt.png"), true);
    drop(page);
    // The recording's files are private too.
    let pid = process["pid"].as_u64().unwrap();
    let recording = dir.join("native").join(pid.to_string());
    private(&recording.join("stacks.txt"));
    private(&recording.join("perf.map"));
    assert!(
        !Path::new(&format!("/tmp/perf-{pid}.map")).exists(),
        "the perf map in /tmp was left behind"
    );
}

/// Every allocation tracked (`--native-interval 1`): the growth is exact.
#[test]
fn every_allocation_mode_counts_exactly() {
    let dir = dir("native-hunt-exact");
    let server = format!("{EXAMPLE}/server.js");
    let (run, report) = hunt(&dir, "/login", &["--native-interval", "1"], &server);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let process = &report["native"]["processes"][0];
    let top = suspects(process)[0];
    let growth = top["live"]["after"].as_u64().unwrap() - top["live"]["before"].as_u64().unwrap();
    assert_eq!(growth, 2000 * RECORD, "{top:#}");
    assert_eq!(top["error"], 0);
}

/// The clean twin mallocs and frees the same record: nothing native is suspect, exit 0.
#[test]
fn hunt_on_the_clean_twin_suspects_nothing() {
    let dir = dir("native-hunt-clean");
    let server = format!("{EXAMPLE}/server.js");
    let (run, report) = hunt(&dir, "/work", &[], &server);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stderr, run.stdout);
    assert_eq!(report["verdict"], "none");
    assert_eq!(report["leak_suspected"], false);
    assert_eq!(report["native"]["verdict"], "none");
    assert!(suspects(&report["native"]["processes"][0]).is_empty());
}

/// Buffers kept from JS grow natively (their contents are malloc'd), but the holder is in the
/// JS heap: the native side points there, the JS side names the holder.
#[test]
fn buffers_held_from_js_point_to_the_snapshot_side() {
    let dir = dir("native-hunt-buffers");
    let server = dir.with_file_name("native-hunt-buffers.js");
    std::fs::write(
        &server,
        "const http = require('http');
const uploads = [];
function keepUpload(req, res) { uploads.push(Buffer.alloc(16 * 1024, 1)); res.end('ok'); }
http.createServer(keepUpload).listen(Number(process.argv[2]), '127.0.0.1');",
    )
    .unwrap();
    let (run, report) = hunt(&dir, "/", &[], server.to_str().unwrap());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(report["verdict"], "js_leak", "{}", run.stdout);
    assert_eq!(report["native"]["verdict"], "buffers_from_js");
    let process = &report["native"]["processes"][0];
    assert!(suspects(process).is_empty(), "{process:#}");
    let top = &process["stacks"][0];
    assert_eq!(top["signature"], "buffers", "{top:#}");
    assert_eq!(top["js_caller"]["name"], "keepUpload", "{top:#}");
}

/// `native -- CMD` follows the process tree: a forked child and a worker thread both leak
/// through the addon, each is found in its own process, named by its own JS caller.
#[test]
fn native_command_follows_forks_and_threads() {
    let dir = dir("native-tree");
    let script = dir.join("tree.js");
    std::fs::write(
        &script,
        r#"const { fork } = require('child_process');
const { Worker, isMainThread } = require('worker_threads');
const addon = require(process.env.ADDON);
// 400 records every 100 ms, `rounds` times (forever without).
function leakInBatches(rounds, done) {
  let round = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < 400; i++) addon.remember(i);
    if (++round === rounds) { clearInterval(timer); done(); }
  }, 100);
}
if (process.argv[2] === 'child') {
  leakInBatches(20, () => process.exit(0));
} else if (!isMainThread) {
  leakInBatches(Infinity);
} else {
  // The parent leaks through its worker thread until the child is done.
  fork(__filename, ['child']).on('exit', () => process.exit(0));
  new Worker(__filename);
}
"#,
    )
    .unwrap();
    let out = dir.join("recording");
    let run = leakhound(&[
        "native",
        "--json",
        "--dump-every",
        "300ms",
        "--out",
        out.to_str().unwrap(),
        "--",
        "node",
        script.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = json(&run);
    let leaking: Vec<&Value> = report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            suspects(p).iter().any(|s| {
                s["allocated_by"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .contains("CreateSessionRecord")
            })
        })
        .collect();
    assert_eq!(
        leaking.len(),
        2,
        "the parent (through its worker) and the child: {report:#}"
    );
    for p in leaking {
        // The innermost JS frame is the interval's callback inside leakInBatches.
        let top = suspects(p)[0];
        let location = top["js_caller"]["location"].as_str().unwrap_or("");
        assert!(location.ends_with("tree.js:7:29"), "{top:#}");
    }
    // The recording analysed again, as a page: both leaking processes, no error.
    let html = dir.join("native.html");
    let again = leakhound(&[
        "native",
        "--html",
        html.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    private(&html);
    let mut page = crate::browser::Page::open(&html, false);
    let text = page.text();
    assert!(text.contains("CreateSessionRecord"), "{text}");
    assert!(text.matches("PID ").count() >= 2, "{text}");
    let errors = page.errors();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// A process killed in the middle: what was dumped before is analysed; stopped by --duration:
/// the last dump is asked for first.
#[test]
fn a_process_ending_mid_recording_leaves_a_readable_recording() {
    let dir = dir("native-killed");
    let leak_forever = "const addon = require(process.env.ADDON); let i = 0;
setInterval(() => { for (let k = 0; k < 300; k++) addon.remember(i++); }, 50);";
    let out = dir.join("stopped");
    let run = leakhound(&[
        "native",
        "--json",
        "--duration",
        "2s",
        "--dump-every",
        "250ms",
        "--out",
        out.to_str().unwrap(),
        "--",
        "node",
        "-e",
        leak_forever,
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(json(&run)["verdict"], "native_leak");

    let out = dir.join("killed");
    let killed =
        format!("{leak_forever}\nsetTimeout(() => process.kill(process.pid, 'SIGKILL'), 2000);");
    let run = native_e("250ms", &out, &killed);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("signal: 9"), "{}", run.stderr);
    // And again from the directory alone.
    let again = leakhound(&["native", "--json", out.to_str().unwrap()]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
}

/// Damaged recordings: a clear error naming the file and what is wrong, exit 2, never a panic.
#[test]
fn damaged_recordings_are_clear_errors() {
    let dir = dir("native-damaged");
    let out = dir.join("good");
    let run = native_e(
        "200ms",
        &out,
        "const a = require(process.env.ADDON); for (let i = 0; i < 1000; i++) a.remember(i); setTimeout(() => {}, 700);",
    );
    assert_eq!(run.code.map(|c| c < 2), Some(true), "{}", run.stderr);
    let pid_dir = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    let dump = std::fs::read_dir(&pid_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("dump-")
        })
        .unwrap();
    let text = std::fs::read_to_string(&dump).unwrap();
    let check = |what: &str, expected: &[&str]| {
        let run = leakhound(&["native", out.to_str().unwrap()]);
        assert_eq!(run.code, Some(2), "{what}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
        for e in expected {
            assert!(
                run.stderr.contains(e),
                "{what}: expected {e:?} in {}",
                run.stderr
            );
        }
    };
    std::fs::write(&dump, text.trim_end().trim_end_matches("end")).unwrap();
    check("a dump cut short", &[dump.to_str().unwrap(), "cut short"]);
    std::fs::write(&dump, &text[..text.find("\nmaps ").unwrap() - 10]).unwrap();
    check("a dump cut in a stack line", &[dump.to_str().unwrap()]);
    std::fs::write(&dump, "garbage\n").unwrap();
    check(
        "not a dump",
        &[dump.to_str().unwrap(), "expected \"leakhound-native 1\""],
    );
    std::fs::write(&dump, &text).unwrap();
    std::fs::write(pid_dir.join("stacks.txt"), "0\n7 zz\n").unwrap();
    check("a bad stack table", &["stacks.txt:2", "expected stack 1"]);
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let run = leakhound(&["native", empty.to_str().unwrap()]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("holds no native recording"),
        "{}",
        run.stderr
    );
}

/// Where the tracker cannot go: an attached process, a static binary.
#[test]
fn refusals_say_why() {
    let dir = dir("native-refusals");
    let run = leakhound(&[
        "hunt",
        "--native",
        "--pid",
        "1",
        "--url",
        "/",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("--native cannot go with --pid"),
        "{}",
        run.stderr
    );
    let run = leakhound(&["native", "--", "/nonexistent/program"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("/nonexistent/program"),
        "{}",
        run.stderr
    );
}
