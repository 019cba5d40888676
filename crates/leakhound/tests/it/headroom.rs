//! Snapshots that would not fit: real `node` processes in a memory cgroup the test makes and
//! removes (cgroup v1 or v2, under the test's own cgroup), refused with their numbers, forced
//! into an OOM kill that is then reported, refused by `hunt` before any load, and a guarded
//! `watch` that captures evidence of a grower (without the snapshot that would not fit) and
//! nothing of a flat process.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use leakhound_live::headroom::Cgroup;
use leakhound_live::procfs::Process;
use serde_json::Value;

use crate::conformance::LEAKHOUND;
use crate::live::{App, dir, leakhound, leakhound_as};

/// A memory cgroup of the test's own, with a limit; its processes are killed and it is removed
/// on drop.
struct Limited {
    dir: PathBuf,
}

impl Limited {
    /// A new cgroup under ours limited to `limit` bytes, or `None` (saying why) where none can
    /// be made here.
    fn new(name: &str, limit: u64) -> Option<Limited> {
        let Some(Ok(own)) = Process::new(std::process::id())
            .ok()
            .as_ref()
            .and_then(Cgroup::of)
        else {
            eprintln!("skipped: no memory cgroup controller is mounted here");
            return None;
        };
        let dir = own
            .dir
            .join(format!("leakhound-test-{name}-{}", std::process::id()));
        let file = if own.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let made = fs::create_dir(&dir).and_then(|()| fs::write(dir.join(file), limit.to_string()));
        if let Err(e) = made {
            eprintln!(
                "skipped: cannot make a memory cgroup with a limit under {}: {e}",
                own.dir.display()
            );
            let _ = fs::remove_dir(&dir);
            return None;
        }
        Some(Limited { dir })
    }

    fn procs(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let procs = self.procs();
            if procs.is_empty() && fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            for pid in procs {
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not remove {}", self.dir.display());
    }
}

/// About 100 MB of small objects in a Map: a snapshot needs several times that.
const DENSE_HEAP: &str = "class Session { constructor(i) { this.id = i; this.user = 'user-' + i; this.tags = [i & 7]; } }
globalThis.kept = new Map(); for (let i = 0; i < 600000; i++) kept.set(i, new Session(i));
setInterval(() => {}, 1000);
console.log('ready');";

#[test]
fn a_snapshot_that_would_not_fit_is_refused_and_force_reports_the_oom_kill() {
    let Some(cgroup) = Limited::new("capture", 500 << 20) else {
        return;
    };
    let mut app = App::start_in(Some(&cgroup.dir), Path::new("node"), &[], DENSE_HEAP);
    let pid = app.pid();
    let out = dir("headroom-capture").join("app.heapsnapshot");
    let path = out.to_str().unwrap();

    let refused = leakhound(&["capture", "--pid", &pid, "-o", path]);
    assert_ne!(refused.code, Some(0), "{}", refused.stderr);
    let text = &refused.stderr;
    for expected in [
        "not taking the snapshot",
        "would need about",
        "MB is free\n",
        "Where the room is: its memory limit:",
        "MB in use of 524.3 MB",
        cgroup.dir.to_str().unwrap(),
        "--sample-allocations",
        "--force",
    ] {
        assert!(text.contains(expected), "no {expected:?} in: {text}");
    }
    assert!(app.alive(), "a refused snapshot left the app dead");
    assert!(!out.exists());
    // The inspector leakhound opened to read the heap is closed again.
    assert_eq!(app.listening(), [], "the inspector stays open");

    let forced = leakhound(&["capture", "--pid", &pid, "-o", path, "--force"]);
    assert_ne!(forced.code, Some(0), "{}", forced.stderr);
    let text = &forced.stderr;
    for expected in [
        "--force: taking the snapshot although it needs about",
        &format!("PID {pid} died during the snapshot"),
        "the kernel's OOM killer killed it",
        "oom_kill 0 → 1",
        "Restart the app",
    ] {
        assert!(text.contains(expected), "no {expected:?} in: {text}");
    }
    assert!(!app.alive());
    assert!(!out.exists(), "a partial snapshot is left");
}

#[test]
fn hunt_refuses_a_round_that_would_not_fit_before_sending_load() {
    let Some(cgroup) = Limited::new("hunt", 400 << 20) else {
        return;
    };
    let run_dir = dir("headroom-hunt").join("run");
    let app = dir("headroom-hunt").join("server.js");
    fs::write(
        &app,
        DENSE_HEAP.replace(
            "setInterval(() => {}, 1000);\nconsole.log('ready');",
            "require('node:http').createServer((q, r) => { console.log('request'); r.end('ok'); }).listen(0, '127.0.0.1');",
        ),
    )
    .unwrap();
    // leakhound runs in the cgroup, so the app it starts does too.
    let run = leakhound_as(
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
            .arg(&cgroup.dir)
            .arg(LEAKHOUND)
            .args(["hunt", "--url", "/", "--out"])
            .arg(&run_dir)
            .args(["--", "node"])
            .arg(&app),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for expected in [
        "not taking the snapshot",
        "before the warm-up round: no load was sent",
    ] {
        assert!(
            run.stderr.contains(expected),
            "no {expected:?} in: {}",
            run.stderr
        );
    }
    // The readiness check only: no round of load was sent.
    let log = fs::read_to_string(run_dir.join("app.stdout.log")).unwrap();
    assert!(log.lines().count() <= 1, "load was sent: {log}");
    assert!(cgroup.procs().is_empty(), "the app outlives the hunt");
}

/// A sidecar: leakhound in another cgroup namespace than the app, which has its own view of its
/// cgroup (a container's). The limit is read through `/proc/PID/root`.
#[test]
fn the_memory_check_sees_a_container_limit_from_a_sidecar() {
    let (Some(app_group), Some(side_group)) = (
        Limited::new("container", 400 << 20),
        Limited::new("sidecar", 8 << 30),
    ) else {
        return;
    };
    let v1_mount = "/sys/fs/cgroup/memory";
    if !app_group.dir.starts_with(v1_mount) {
        eprintln!("skipped: written for the cgroup v1 memory controller at {v1_mount}");
        return;
    }
    // The app as in a container: its own cgroup and mount namespaces, the memory hierarchy
    // mounted again so that its cgroup is the root of its view.
    let dir = dir("headroom-sidecar");
    let in_container = dir.join("node-in-container.sh");
    fs::write(
        &in_container,
        format!(
            "#!/bin/sh\nexec unshare -C -m --propagation private sh -c 'umount {v1_mount} && mount -t cgroup -o memory cgroup {v1_mount} && exec node \"$@\"' sh \"$@\"\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&in_container, fs::Permissions::from_mode(0o755)).unwrap();
    let mut app = App::start_in(Some(&app_group.dir), &in_container, &[], DENSE_HEAP);
    let pid = app.pid();
    let run = leakhound_as(
        Command::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$0/cgroup.procs" && exec unshare -C "$@""#)
            .arg(&side_group.dir)
            .arg(LEAKHOUND)
            .args(["capture", "--pid", &pid, "-o"])
            .arg(dir.join("app.heapsnapshot")),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for expected in [
        "not taking the snapshot",
        "MB in use of 419.4 MB",
        &format!("(cgroup /proc/{pid}/root{v1_mount})"),
    ] {
        assert!(
            run.stderr.contains(expected),
            "no {expected:?} in: {}",
            run.stderr
        );
    }
    assert!(app.alive());
}

/// A forwarded port (a proxy, `kubectl port-forward`): the process listening on it is not the
/// app, so its memory says nothing about the app's.
#[test]
fn the_memory_check_does_not_trust_a_forwarded_port() {
    let app = App::start(
        Path::new("node"),
        &["--inspect=127.0.0.1:0"],
        "setInterval(() => {}, 1000); console.log('ready');",
    );
    let target = app.inspect.clone().unwrap();
    let (host, port) = target.rsplit_once(':').unwrap();
    let proxy = App::start(
        Path::new("node"),
        &[],
        &format!(
            "const net = require('node:net');
const server = net.createServer((c) => {{ const s = net.connect({port}, '{host}'); c.pipe(s); s.pipe(c); c.on('error', () => s.destroy()); s.on('error', () => c.destroy()); }});
server.listen(0, '127.0.0.1', () => {{ console.log('ready'); console.error('port ' + server.address().port); }});"
        ),
    );
    let forwarded = proxy
        .listening()
        .into_iter()
        .map(|a| a.port().to_string())
        .next()
        .unwrap();
    let out = dir("headroom-forwarded").join("app.heapsnapshot");
    let run = leakhound(&[
        "capture",
        "--inspect",
        &forwarded,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot tell which process holds this heap"),
        "{}",
        run.stderr
    );
    // Straight to the app's own port, it is the app's memory that counts.
    let direct = leakhound(&["capture", "--inspect", &target, "-o", out.to_str().unwrap()]);
    assert_eq!(direct.code, Some(0), "{}", direct.stderr);
}

#[test]
fn a_guarded_watch_captures_a_grower_and_not_a_flat_process() {
    // Tight: the grower's snapshot would not fit, so the guard takes the rest only.
    let Some(cgroup) = Limited::new("watch", 160 << 20) else {
        return;
    };
    let grower = App::start_in(
        Some(&cgroup.dir),
        Path::new("node"),
        &[],
        "const kept = []; setInterval(() => { for (let i = 0; i < 3000; i++) kept.push({ i, s: 'item ' + i }); }, 100);
console.log('ready');",
    );
    let flat = App::start(
        Path::new("node"),
        &[],
        "setInterval(() => { const a = []; for (let i = 0; i < 3000; i++) a.push({ i }); }, 100);
console.log('ready');",
    );
    let dir = dir("headroom-watch");
    let captures = dir.join("captures");
    let jsonl = dir.join("samples.jsonl");
    let run = leakhound(&[
        "watch",
        "--pid",
        &grower.pid(),
        "--pid",
        &flat.pid(),
        "--interval",
        "250ms",
        "--duration",
        "25s",
        "--capture-on-growth",
        "--capture-dir",
        captures.to_str().unwrap(),
        "--capture-profile",
        "2s",
        "--out",
        jsonl.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let events: Vec<Value> = fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "capture")
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}\n{}", run.stderr);
    let event = &events[0];
    assert_eq!(event["pid"].to_string(), grower.pid(), "{event:#}");
    assert!(run.stderr.contains("capture: PID"), "{}", run.stderr);
    let capture_dir = Path::new(event["dir"].as_str().unwrap());
    assert_eq!(mode(capture_dir), 0o700);
    for file in ["profile.heapprofile", "maps.txt", "maps.json"] {
        assert_eq!(mode(&capture_dir.join(file)), 0o600, "{file}");
    }
    assert!(
        event["top_allocation"].as_str().unwrap().contains("[eval]"),
        "{event:#}"
    );
    let maps = fs::read_to_string(capture_dir.join("maps.txt")).unwrap();
    assert!(maps.contains("since the watch began"), "{maps}");
    // Its snapshot would not fit: skipped, with the numbers.
    assert!(event.get("snapshot").is_none(), "{event:#}");
    let skipped = event["skipped"].to_string();
    assert!(skipped.contains("snapshot: it needs about"), "{event:#}");
    assert!(!capture_dir.join("snapshot.heapsnapshot").exists());
    // The report lists it under the grower only.
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    for p in doc["processes"].as_array().unwrap() {
        let count = p["captures"].as_array().map_or(0, Vec::len);
        let expected = usize::from(p["pid"].as_u64().map(|p| p.to_string()) == Some(grower.pid()));
        assert_eq!(count, expected, "{p:#}");
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}
