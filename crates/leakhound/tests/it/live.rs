//! `capture` and `hunt` on real `node` processes: with an open inspector, through SIGUSR1, from a
//! busy JS loop, each attach failure with its error, and the whole hunt on the bundled example.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leakhound_live::procfs::Process;
use serde_json::Value;

use crate::conformance::{LEAKHOUND, NodeBin, TMP_DIR, oracle_installed};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/leaky-server/server.js"
);
const LIMIT: Duration = Duration::from_secs(180);

/// A node process running `script`, killed when dropped.
pub(crate) struct App {
    child: Child,
    /// The line it printed on stderr with its inspector address, if it has one open.
    pub(crate) inspect: Option<String>,
}

impl App {
    /// Starts `node FLAGS… -e SCRIPT` and waits for it to print `ready` on stdout.
    pub(crate) fn start(node: &Path, flags: &[&str], script: &str) -> App {
        App::start_in(None, node, flags, script)
    }

    /// [`App::start`] in the cgroup directory `cgroup`, which the process joins before it
    /// runs node.
    pub(crate) fn start_in(
        cgroup: Option<&Path>,
        node: &Path,
        flags: &[&str],
        script: &str,
    ) -> App {
        let mut command = match cgroup {
            Some(dir) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
                    .arg(dir)
                    .arg(node);
                sh
            }
            None => Command::new(node),
        };
        let mut child = command
            .args(flags)
            .args(
                // Parallel tests would race for 9229; SIGUSR1 opens a random port instead.
                (!flags.iter().any(|f| f.starts_with("--inspect"))).then_some("--inspect-port=0"),
            )
            .arg("-e")
            .arg(script)
            .env_remove("NODE_OPTIONS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the app did not start");
        // Drain stdout so the app never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let mut inspect = None;
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        if flags.iter().any(|f| f.starts_with("--inspect=")) {
            // Only the test reads the app's stderr; leakhound itself finds ports in /proc.
            let mut line = String::new();
            stderr.read_line(&mut line).unwrap();
            inspect = line
                .trim()
                .strip_prefix("Debugger listening on ws://")
                .and_then(|rest| rest.split('/').next())
                .map(str::to_owned);
            assert!(inspect.is_some(), "no inspector line: {line}");
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        App { child, inspect }
    }

    pub(crate) fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub(crate) fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the app to exit by itself; its exit code.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub(crate) fn listening(&self) -> Vec<std::net::SocketAddr> {
        Process::new(self.child.id()).unwrap().listening().unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

pub(crate) fn leakhound(args: &[&str]) -> Run {
    leakhound_as(Command::new(LEAKHOUND).args(args))
}

pub(crate) fn leakhound_as(cmd: &mut Command) -> Run {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < LIMIT, "leakhound hangs: {cmd:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

pub(crate) fn dir(name: &str) -> PathBuf {
    let dir = Path::new(TMP_DIR).join("live").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A snapshot file: private, complete, holding `count` instances of `class`.
fn check_snapshot(path: &Path, class: &str, count: u64) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
    let run = leakhound(&["summary", path.to_str().unwrap(), "--json"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let row = doc["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == class)
        .unwrap_or_else(|| panic!("no {class} in {}", path.display()));
    assert_eq!(row["count"], count, "{row}");
}

const MARKERS: &str = "class Marker { constructor(i) { this.i = i; } }
globalThis.markers = Array.from({ length: 1234 }, (_, i) => new Marker(i));";

/// JavaScript that keeps the app alive until the file `trigger` exists, then lets it end.
fn until(trigger: &Path) -> String {
    format!(
        "const poll = setInterval(() => {{ if (require('fs').existsSync({trigger:?})) clearInterval(poll); }}, 50);"
    )
}

/// An app with its inspector open: `capture --inspect` and `--pid` find it, and after we
/// detach it exits by itself with code 0 (no "waiting for the debugger to disconnect").
#[test]
fn capture_from_open_inspector_lets_the_app_exit() {
    let dir = dir("open");
    let trigger = dir.join("exit");
    let script = format!("{MARKERS}\nconsole.log('ready'); {}", until(&trigger));
    let mut app = App::start(Path::new("node"), &["--inspect=127.0.0.1:0"], &script);
    let file = dir.join("a.heapsnapshot");
    let addr = app.inspect.clone().unwrap();
    let run = leakhound(&[
        "capture",
        "--inspect",
        &addr,
        "-o",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["opened_inspector"], false);
    assert!(doc["node"].as_str().unwrap().starts_with("node.js/"));
    assert!(doc["heap_before"]["heap_used"].as_u64().unwrap() > 1_000_000);
    check_snapshot(&file, "Marker", 1234);

    let by_pid = dir.join("b.heapsnapshot");
    let run = leakhound(&[
        "capture",
        "--pid",
        &app.pid(),
        "-o",
        by_pid.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("wrote "), "{}", run.stdout);
    check_snapshot(&by_pid, "Marker", 1234);
    // The inspector was the app's own: still open.
    assert!(!app.listening().is_empty());
    std::fs::write(&trigger, "").unwrap();
    assert_eq!(app.wait_exit(Duration::from_secs(30)), Some(0));
}

/// No inspector: leakhound opens it with SIGUSR1, takes the snapshot, and closes it again; the
/// app keeps running and later exits normally.
#[test]
fn capture_through_sigusr1_closes_the_inspector_it_opened() {
    let dir = dir("sigusr1");
    let trigger = dir.join("exit");
    let script = format!("{MARKERS}\nconsole.log('ready'); {}", until(&trigger));
    let mut app = App::start(Path::new("node"), &[], &script);
    assert!(app.listening().is_empty());
    let file = dir.join("a.heapsnapshot");
    let run = leakhound(&[
        "capture",
        "--pid",
        &app.pid(),
        "-o",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["opened_inspector"], true);
    check_snapshot(&file, "Marker", 1234);
    assert!(app.alive());
    assert_eq!(app.listening(), vec![], "the inspector is still open");
    std::fs::write(&trigger, "").unwrap();
    assert_eq!(app.wait_exit(Duration::from_secs(30)), Some(0));
}

/// An app that finishes while we are attached (here during sampling) waits for us to
/// disconnect; we notice, stop early, and it exits normally.
#[test]
fn an_app_that_finishes_while_attached_exits() {
    let dir = dir("finishes");
    let trigger = dir.join("exit");
    let script = format!(
        "const kept = []; setInterval(() => kept.push({{ at: Date.now() }}), 10).unref();\nconsole.log('ready'); {}",
        until(&trigger)
    );
    let mut app = App::start(Path::new("node"), &[], &script);
    let file = dir.join("a.heapprofile");
    let pid = app.pid();
    let capture = std::thread::spawn(move || {
        leakhound(&[
            "capture",
            "--pid",
            &pid,
            "--sample-allocations",
            "60s",
            "-o",
            file.to_str().unwrap(),
        ])
    });
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(&trigger, "").unwrap();
    let start = Instant::now();
    assert_eq!(app.wait_exit(Duration::from_secs(30)), Some(0));
    let run = capture.join().unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "waited for the sampling to end"
    );
}

/// Ctrl-C in the middle of a snapshot: no partial file, and the inspector we opened is closed
/// once Node has finished the snapshot it cannot cancel; the app keeps running.
#[test]
fn ctrl_c_during_a_snapshot_cleans_up() {
    let dir = dir("ctrl-c");
    let script =
        "globalThis.keep = Array.from({ length: 400000 }, (_, i) => ({ i, s: 'item ' + i }));
console.log('ready'); setInterval(() => {}, 1000);";
    let mut app = App::start(Path::new("node"), &[], script);
    let file = dir.join("a.heapsnapshot");
    let mut child = Command::new(LEAKHOUND)
        .args(["capture", "--pid", &app.pid(), "-o", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the snapshot is under way (the partial file exists).
    let part = dir.join("a.heapsnapshot.part");
    let start = Instant::now();
    while !part.exists() {
        assert!(start.elapsed() < LIMIT, "no snapshot started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!part.exists() && !file.exists(), "a partial file is left");
    assert!(app.alive());
    assert_eq!(app.listening(), vec![], "the inspector is still open");
}

/// A main thread spinning in `while (true) {}` still answers through the inspector.
#[test]
fn capture_from_a_busy_js_loop() {
    let dir = dir("busy");
    let script =
        format!("{MARKERS}\nconsole.log('ready'); setTimeout(() => {{ while (true) {{}} }}, 100);");
    let mut app = App::start(Path::new("node"), &[], &script);
    std::thread::sleep(Duration::from_millis(300));
    let file = dir.join("a.heapsnapshot");
    let run = leakhound(&["capture", "--pid", &app.pid(), "-o", file.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    check_snapshot(&file, "Marker", 1234);
    assert!(app.alive(), "the loop keeps running");
    assert_eq!(app.listening(), vec![]);
}

/// The sampling heap profiler: a `.heapprofile` of live allocations, summarised by stack.
#[test]
fn capture_samples_allocations() {
    let dir = dir("sampling");
    let script = "const kept = [];
function makeWidget(i) { return { i, label: 'widget ' + i, data: new Array(64).fill(i) }; }
setInterval(() => { for (let i = 0; i < 200; i++) kept.push(makeWidget(i)); }, 10);
console.log('ready');";
    let app = App::start(Path::new("node"), &[], script);
    let file = dir.join("a.heapprofile");
    let run = leakhound(&[
        "capture",
        "--pid",
        &app.pid(),
        "--sample-allocations",
        "2s",
        "--sampling-interval",
        "4096",
        "-o",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(profile["head"]["children"].is_array(), "not a .heapprofile");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    // The allocations of the app's own code lead (V8 may inline makeWidget into its caller).
    assert!(
        doc["profile"]["total_bytes"].as_u64().unwrap() > 1_000_000,
        "{doc}"
    );
    let top = doc["profile"]["stacks"][0]["frames"][0].to_string();
    assert!(top.contains("[eval]:"), "{top}");
    assert_eq!(app.listening(), vec![]);
}

fn expect_error(run: &Run, text: &str) {
    assert_eq!(
        run.code,
        Some(2),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(text),
        "expected {text:?} in:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn capture_errors_name_the_cause() {
    // No such process.
    expect_error(
        &leakhound(&["capture", "--pid", "999999999"]),
        "no process with PID 999999999",
    );

    // Not a Node process.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    expect_error(
        &leakhound(&["capture", "--pid", &sleeper.id().to_string()]),
        "is not a Node.js process",
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    // Named like node but without Node's SIGUSR1 handler: SIGUSR1 would kill it, so none is sent.
    let fake = dir("fake").join("node-fake");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut fake = Command::new(&fake).arg("30").spawn().unwrap();
    expect_error(
        &leakhound(&["capture", "--pid", &fake.id().to_string()]),
        "has no SIGUSR1 handler",
    );
    assert!(fake.try_wait().unwrap().is_none(), "the process was killed");
    let _ = fake.kill();
    let _ = fake.wait();

    // The port SIGUSR1 would open is taken (here by this test process).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let app = App::start(
        Path::new("node"),
        &[&format!("--inspect-port={port}")],
        "console.log('ready'); setInterval(() => {}, 1000);",
    );
    expect_error(
        &leakhound(&["capture", "--pid", &app.pid()]),
        &format!("port {port} is already taken by PID {}", std::process::id()),
    );
    drop(app);

    // The app handles SIGUSR1 itself: no port opens.
    let app = App::start(
        Path::new("node"),
        &[],
        "process.on('SIGUSR1', () => {}); console.log('ready'); setInterval(() => {}, 1000);",
    );
    expect_error(
        &leakhound(&["capture", "--pid", &app.pid(), "--open-timeout", "2s"]),
        "handles SIGUSR1 itself",
    );
    drop(app);

    // Stuck in a native call: SIGUSR1 is served only when it returns.
    let app = App::start(
        Path::new("node"),
        &[],
        "console.log('ready'); require('child_process').execSync('sleep 8');",
    );
    expect_error(
        &leakhound(&["capture", "--pid", &app.pid(), "--open-timeout", "1s"]),
        "stuck in a native call",
    );
    drop(app);

    // The same with the inspector open: the inspector's thread answers, the main thread not.
    let app = App::start(
        Path::new("node"),
        &["--inspect=127.0.0.1:0"],
        "console.log('ready'); require('child_process').execSync('sleep 8');",
    );
    expect_error(
        &leakhound(&[
            "capture",
            "--inspect",
            app.inspect.as_deref().unwrap(),
            "--timeout",
            "1s",
        ]),
        "probably stuck in a native call",
    );
    drop(app);

    // Another network namespace (a container): its loopback is not ours. Making one needs root.
    if rustix::process::getuid().is_root() {
        let app = App::start(
            Path::new("unshare"),
            &["--net", "node"],
            "console.log('ready'); setInterval(() => {}, 1000);",
        );
        expect_error(
            &leakhound(&["capture", "--pid", &app.pid()]),
            "another network namespace",
        );
    }

    // Permission denied: another user's process (we run as root in CI: drop to nobody).
    let app = App::start(
        Path::new("node"),
        &[],
        "console.log('ready'); setInterval(() => {}, 1000);",
    );
    let run = if rustix::process::getuid().is_root() {
        leakhound_as(
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    LEAKHOUND,
                ])
                .args(["capture", "--pid", &app.pid()]),
        )
    } else {
        leakhound(&["capture", "--pid", "1"])
    };
    expect_error(&run, "permission denied");
}

/// `--disable-sigusr1` (Node 22.14+, 23.7+) is seen in the command line and named.
#[test]
fn capture_names_disable_sigusr1() {
    oracle_installed()
        .as_ref()
        .expect("the pinned Node 26 is installed");
    let app = App::start(
        &NodeBin::Pinned26.program(),
        &["--disable-sigusr1"],
        "console.log('ready'); setInterval(() => {}, 1000);",
    );
    expect_error(
        &leakhound(&["capture", "--pid", &app.pid(), "--open-timeout", "1s"]),
        "--disable-sigusr1",
    );
}

fn hunt(dir: &Path, urls: &[&str]) -> (Run, Value) {
    let mut args = vec!["hunt", "--requests", "300", "--json", "--out"];
    args.push(dir.to_str().unwrap());
    for u in urls {
        args.extend(["--url", u]);
    }
    args.extend(["--", "node", EXAMPLE, "0"]);
    let run = leakhound(&args);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {}\nstderr {}", run.stdout, run.stderr));
    (run, report)
}

/// README's first command: `hunt` on the example finds the Map leak, names `handleMap`, exits
/// with 1, leaves everything in the run directory, and stops the app it started.
#[test]
fn hunt_finds_the_example_leak() {
    let dir = dir("hunt-leak");
    let (run, report) = hunt(&dir, &["/status?test=1", "/report"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(report["leak_suspected"], true);
    let owners: Vec<(&str, &str)> = report["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["suspect"] == true)
        .filter_map(|c| Some((c["owner"]["name"].as_str()?, c["class"].as_str()?)))
        .collect();
    assert!(owners.contains(&("handleMap", "CallContext")), "{owners:?}");
    assert!(owners.iter().any(|&(o, _)| o == "leaks"), "{owners:?}");
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    for r in rounds {
        // 300 requests, half to each route.
        assert_eq!(r["load"]["responses"], 300, "{r}");
        assert_eq!(r["load"]["status_counts"]["200"], 300, "{r}");
        check_snapshot(
            Path::new(r["snapshot"]["path"].as_str().unwrap()),
            "CallContext",
            // Plus the one readiness request to the first URL.
            match r["name"].as_str().unwrap() {
                "baseline" => 151,
                "target" => 301,
                _ => 451,
            },
        );
    }
    for f in [
        "report.json",
        "timeline.svg",
        "app.stdout.log",
        "app.stderr.log",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    // The memory timeline, with the samples during snapshots marked.
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 3, "{timeline:?}");
    assert!(timeline.iter().all(|s| s["rss"].as_u64().unwrap() > 0));
    assert!(
        timeline.iter().any(|s| s["after_snapshot"] == true),
        "{timeline:?}"
    );
    let pid = report["app"]["pid"].as_u64().unwrap() as u32;
    assert!(Process::new(pid).is_err(), "the app still runs");
}

/// The clean route: no leak, exit code 0.
#[test]
fn hunt_on_a_clean_route_exits_0() {
    let dir = dir("hunt-clean");
    let (run, report) = hunt(&dir, &["/healthz"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(report["leak_suspected"], false);
}

/// Attached by PID with the user's own load command: the app keeps running and its inspector
/// is closed again.
#[test]
fn hunt_attached_with_a_load_command() {
    let dir = dir("hunt-attached");
    let script = format!("require({EXAMPLE:?}).start(0).then((s) => {{ console.log('ready'); }});");
    let mut app = App::start(Path::new("node"), &[], &script);
    // Node as the user's load tool (any command works; CI machines need not have curl).
    let load = r#"node -e "
const http = require('http'); let left = 200;
const next = () => left-- > 0 ? http.get('http://127.0.0.1:' + process.env.LEAKHOUND_PORT + '/status?r=' + process.env.LEAKHOUND_ROUND + '&i=' + left, (res) => { res.resume(); res.on('end', next); }) : null;
next();""#;
    let run = leakhound(&[
        "hunt",
        "--pid",
        &app.pid(),
        "--load",
        load,
        "--out",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let top = &report["clusters"][0];
    assert_eq!(top["class"], "CallContext", "{top}");
    assert_eq!(top["owner"]["name"], "handleMap", "{top}");
    // New after the baseline and alive in every later snapshot: the target round's 200.
    assert_eq!(top["count"], 200, "{top}");
    assert_eq!(
        report["rounds"][1]["load_command"]["status"],
        "exit status: 0"
    );
    assert!(app.alive());
    assert_eq!(app.listening().len(), 1, "only the app's own port");
}
