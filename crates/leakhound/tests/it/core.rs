//! `capture --core` and `leakhound core` end to end: a Node process stuck in `execSync` (the
//! case the inspector cannot serve) with known populations, cored by leakhound itself on Node
//! 20, 22, 24 and 26; its census checked against the process's own heap snapshot, its stack
//! against the fixture's text; a kernel core of an uncaught exception; two cores compared; and
//! the refusals.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conformance::{NodeBin, oracle_installed};
use crate::live::{dir, leakhound};

/// The populations, and a snapshot of them as V8 sees them, written before the main thread
/// blocks.
const POPULATIONS: &str = r#"
const v8 = require('v8');
class Order { constructor(i) { this.id = i; this.price = i * 1.5; this.sku = 'SKU' + i; } }
class Customer { constructor(i) { this.id = i; this.name = 'customer-' + i; } }
globalThis.orders = Array.from({ length: 100000 }, (_, i) => new Order(i));
globalThis.customers = Array.from({ length: 10000 }, (_, i) => new Customer(i));
globalThis.names = new Map(Array.from({ length: 5000 }, (_, i) => [i, 'name-' + 'x'.repeat(i % 50) + i]));
"#;

/// The fixture: the populations, a heap snapshot at SNAPSHOT, `ready`, then the main thread
/// stuck in `execSync` inside `waitForever`.
fn fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let snapshot = dir.join("fixture.heapsnapshot");
    let script = dir.join("fixture.js");
    let text = format!(
        "{POPULATIONS}
v8.writeHeapSnapshot({snapshot:?});
function waitForever() {{
  console.log('ready');
  require('child_process').execSync('sleep 600');
}}
waitForever();
"
    );
    std::fs::write(&script, text).unwrap();
    (script, snapshot)
}

/// A node process, killed (with its `sleep`) when dropped.
struct Node(std::process::Child);

impl Node {
    /// Starts `node ARGS…` in its own process group and waits for `ready` on stdout.
    fn start(node: &Path, args: &[&str], dir: &Path) -> Node {
        let mut command = Command::new(node);
        command
            .args(args)
            .current_dir(dir)
            .env_remove("NODE_OPTIONS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = command.spawn().expect("node runs");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the fixture did not start");
        Node(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The process's state letter in /proc (S sleeping, T stopped…).
    fn state(&self) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let (_, rest) = stat.rsplit_once(')').unwrap();
        rest.split_whitespace().next().unwrap().to_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.0.wait();
    }
}

/// A class's count and shallow size in a `--json` document's class list.
fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no class {name} in {rows}"))
}

/// `capture --pid PID --core -o CORE --json`: its answer.
fn capture_core(pid: &str, core: &Path) -> Value {
    json(&[
        "capture",
        "--pid",
        pid,
        "--core",
        "-o",
        core.to_str().unwrap(),
        "--json",
    ])
}

fn json(args: &[&str]) -> Value {
    let run = leakhound(args);
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The main thread's frames, innermost first, as `function (script)`.
fn main_stack(doc: &Value) -> Vec<(String, String)> {
    let main = doc["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["main"] == true)
        .unwrap_or_else(|| panic!("no main thread: {}", doc["stacks"]));
    main["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap_or("").to_owned(),
                f["script"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Node 20 (the system's) and the pinned 22, 24 and 26, installed if needed.
fn majors() -> [NodeBin; 4] {
    if let Err(e) = oracle_installed() {
        panic!("the pinned Node binaries are not installed: {e}");
    }
    [
        NodeBin::System,
        NodeBin::Pinned22,
        NodeBin::Pinned24,
        NodeBin::Pinned26,
    ]
}

/// On every major: `capture --core` of a process stuck in native code, then `leakhound core`.
#[test]
fn a_process_stuck_in_native_code_is_cored_and_read_on_every_major() {
    for node in majors() {
        let dir = dir(&format!("core-{}", node.label()));
        let (script, snapshot) = fixture(&dir);
        let app = Node::start(&node.program(), &[script.to_str().unwrap()], &dir);
        let core = dir.join("app.core");
        let taken = capture_core(&app.pid().to_string(), &core);
        let mode = std::fs::metadata(&core).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}: the core is private", node.label());
        assert!(taken["bytes"].as_u64().unwrap() > 10_000_000, "{taken}");
        assert_eq!(taken["resumed"], false, "{taken}");
        // It goes on (blocked in its `sleep`, not stopped).
        assert_eq!(app.state(), "S", "{}: the process goes on", node.label());

        let doc = json(&["core", core.to_str().unwrap(), "--json"]);
        let oracle = json(&["summary", snapshot.to_str().unwrap(), "--json"]);
        for class in ["Order", "Customer"] {
            let (got, want) = (row(&doc["classes"], class), row(&oracle["classes"], class));
            assert_eq!(got["count"], want["count"], "{}: {class}", node.label());
            assert_eq!(
                got["size"],
                want["shallow_size"],
                "{}: {class}'s shallow size",
                node.label()
            );
        }
        assert_eq!(row(&doc["classes"], "Order")["count"], 100_000);
        assert_eq!(row(&doc["classes"], "Customer")["count"], 10_000);
        // Application classes come before generic ones.
        let names: Vec<&str> = doc["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let first_generic = names.iter().position(|n| n.starts_with('(')).unwrap();
        assert!(
            names.iter().position(|&n| n == "Order").unwrap() < first_generic,
            "{names:?}"
        );

        let stack = main_stack(&doc);
        let at = |function: &str| stack.iter().position(|(f, _)| f == function);
        let exec = at("execSync").unwrap_or_else(|| panic!("{}: {stack:?}", node.label()));
        let wait = at("waitForever").unwrap_or_else(|| panic!("{}: {stack:?}", node.label()));
        assert!(exec < wait, "innermost first: {stack:?}");
        assert_eq!(stack[wait].1, script.to_str().unwrap(), "{stack:?}");

        // The text report says the same.
        let run = leakhound(&["core", core.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stdout.contains("Order (fixture.js:"), "{}", run.stdout);
        assert!(run.stdout.contains("waitForever"), "{}", run.stdout);
        drop(app);
        std::fs::remove_file(&core).unwrap();
    }
}

/// Restores the kernel's core pattern when dropped.
struct CorePattern(String);

impl CorePattern {
    const PATH: &str = "/proc/sys/kernel/core_pattern";

    /// Makes the kernel write `core.PID` files beside the process, for the test's lifetime;
    /// `None` when this machine does not let the test change it (then the test says so).
    fn set() -> Option<CorePattern> {
        let old = std::fs::read_to_string(Self::PATH).ok()?;
        std::fs::write(Self::PATH, "core.%p").ok()?;
        Some(CorePattern(old))
    }
}

impl Drop for CorePattern {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, self.0.trim_end());
    }
}

/// A kernel core, from `--abort-on-uncaught-exception`, on every major: the census and the
/// throwing function.
#[test]
fn a_kernel_core_of_an_uncaught_exception_names_the_thrower() {
    let Some(_pattern) = CorePattern::set() else {
        eprintln!("skipped: cannot set {} here (not root?)", CorePattern::PATH);
        return;
    };
    for node in majors() {
        let dir = dir(&format!("core-kernel-{}", node.label()));
        let script = dir.join("crash.js");
        std::fs::write(
            &script,
            format!(
                "{POPULATIONS}
function explode() {{ throw new Error('out of patience'); }}
explode();
"
            ),
        )
        .unwrap();
        let mut command = Command::new(node.program());
        command
            .args(["--abort-on-uncaught-exception", script.to_str().unwrap()])
            .current_dir(&dir)
            .env_remove("NODE_OPTIONS")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only setrlimit, a system call, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                rustix::process::setrlimit(
                    rustix::process::Resource::Core,
                    rustix::process::Rlimit {
                        current: None,
                        maximum: None,
                    },
                )?;
                Ok(())
            });
        }
        let status = command.status().unwrap();
        assert!(!status.success());
        let core = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("core."))
            })
            .unwrap_or_else(|| panic!("{}: the kernel wrote no core", node.label()));
        let doc = json(&["core", core.to_str().unwrap(), "--json"]);
        assert_eq!(
            row(&doc["classes"], "Order")["count"],
            100_000,
            "{}",
            node.label()
        );
        let stack = main_stack(&doc);
        let explode = stack
            .iter()
            .find(|(f, _)| f == "explode")
            .unwrap_or_else(|| panic!("{}: {stack:?}", node.label()));
        assert_eq!(explode.1, script.to_str().unwrap());
        std::fs::remove_file(&core).unwrap();
    }
}

/// Two cores of one process: the diff counts what was made in between, exactly.
#[test]
fn two_cores_of_one_process_show_what_grew() {
    let dir = dir("core-diff");
    let trigger = dir.join("more");
    let done = dir.join("done");
    let script = dir.join("grow.js");
    std::fs::write(
        &script,
        format!(
            "{POPULATIONS}
const fs = require('fs');
console.log('ready');
const poll = setInterval(() => {{
  if (!fs.existsSync({trigger:?})) return;
  clearInterval(poll);
  for (let i = 0; i < 50000; i++) globalThis.orders.push(new Order(100000 + i));
  fs.writeFileSync({done:?}, '');
  setInterval(() => {{}}, 1000);
}}, 20);
"
        ),
    )
    .unwrap();
    let app = Node::start(Path::new("node"), &[script.to_str().unwrap()], &dir);
    let pid = app.pid().to_string();
    let (first, second) = (dir.join("1.core"), dir.join("2.core"));
    capture_core(&pid, &first);
    std::fs::write(&trigger, "").unwrap();
    let started = Instant::now();
    while !done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the app did not grow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    capture_core(&pid, &second);
    let doc = json(&[
        "core",
        first.to_str().unwrap(),
        "--diff",
        second.to_str().unwrap(),
        "--json",
    ]);
    let order = row(&doc["diff"]["classes"], "Order");
    assert_eq!(
        order["count"],
        serde_json::json!([100_000, 150_000]),
        "{order}"
    );
    let run = leakhound(&[
        "core",
        first.to_str().unwrap(),
        "--diff",
        second.to_str().unwrap(),
    ]);
    assert!(run.stdout.contains("+50,000"), "{}", run.stdout);
    for core in [first, second] {
        std::fs::remove_file(core).unwrap();
    }
}

/// Bad input is refused with what to do, never a panic: not a core, a truncated core, the
/// binary of another build, and a core of a PID that does not exist.
#[test]
fn cores_that_cannot_be_read_are_refused_clearly() {
    if let Err(e) = oracle_installed() {
        panic!("the pinned Node binaries are not installed: {e}");
    }
    let dir = dir("core-refusals");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a core").unwrap();
    let run = leakhound(&["core", text.to_str().unwrap()]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);

    let (script, _) = fixture(&dir);
    let app = Node::start(Path::new("node"), &[script.to_str().unwrap()], &dir);
    let core = dir.join("app.core");
    capture_core(&app.pid().to_string(), &core);
    drop(app);
    let other = NodeBin::Pinned22.program();
    let run = leakhound(&[
        "core",
        core.to_str().unwrap(),
        "--node",
        other.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("build id"), "{}", run.stderr);

    let bytes = std::fs::read(&core).unwrap();
    let cut = dir.join("cut.core");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    drop(bytes);
    let run = leakhound(&["core", cut.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.stdout);
    assert!(run.stderr.contains("cut.core"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);

    let run = leakhound(&["capture", "--pid", "999999999", "--core"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no process with PID"), "{}", run.stderr);
    for f in [core, cut] {
        std::fs::remove_file(f).unwrap();
    }
}
