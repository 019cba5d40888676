//! Thread stacks of real processes: node blocked in `execSync` under a named function of a
//! script file (gcore, every installed major), a kernel core of Node 20 thrown out by an
//! exception in a named function, a fake node built as a PIE, and damaged stacks.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use v8core::{Core, Frame, FrameKind, LineKind, Metadata, NodeBinary, ThreadStack};

use crate::fixture::{self, Blocked, Fake, Node, Taken};

/// The main thread blocks in native code under JS frames of each kind a name is read from: a
/// function declaration (`waitForever`, called from the top level), a class constructor, a
/// builtin's callback (an arrow function), a method and a named function expression.
const BLOCKED: &str = "'use strict';
// v8core's stack fixture: the main thread waits in execSync under these JS frames.
class Runner {
  constructor(command) {
    [command].forEach((c) => this.run(c));
  }
  run(command) {
    const spawn = function spawnBlocking() { require('child_process').execSync(command); };
    spawn();
  }
}

function waitForever() {
  process.stdout.write('ready\\n');
  new Runner('sleep 600');
}

waitForever();
";

/// An uncaught exception thrown in a named function; `--abort-on-uncaught-exception` makes
/// V8 abort at the throw.
const THROWING: &str = "'use strict';
globalThis.kept = Array.from({ length: 100 }, (_, i) => ({ i }));
function throwSomething() {
  throw new Error('core me');
}

throwSomething();
";

/// A core and the script file the process ran (deleted once cored: its path is what counts).
struct Cored {
    taken: Taken,
    script: PathBuf,
}

/// 1-based line and column of the first `needle` in `text`.
fn position(text: &str, needle: &str) -> (u32, u32) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in the fixture"));
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..at].matches('\n').count() + 1;
    (line as u32, (at - line_start + 1) as u32)
}

fn gcore_of_blocked(node: Node) -> Option<&'static Cored> {
    static CORES: [OnceLock<Option<Cored>>; 4] = [const { OnceLock::new() }; 4];
    let slot = Node::ALL.iter().position(|&n| n == node).unwrap();
    CORES[slot]
        .get_or_init(|| {
            let Some(program) = node.program() else {
                eprintln!(
                    "skipped: {node:?} is not installed (npm ci in crates/leakhound/tests/conformance)"
                );
                return None;
            };
            let dir = fixture::scratch(&format!("stack-{node:?}").to_lowercase());
            let script = dir.join("fixture.js");
            fs::write(&script, BLOCKED).expect("write the fixture");
            let mut cmd = Command::new(&program);
            cmd.arg(&script);
            let process = Blocked::start(cmd);
            let core = process.gcore(&dir);
            let taken = fixture::taken(&core, program, process.pid(), node.major());
            drop(process);
            let _ = fs::remove_dir_all(&dir);
            Some(Cored { taken, script })
        })
        .as_ref()
}

/// Like `fixture::kernel_core_of_node`, with a script file and a named thrower.
fn kernel_core_of_throw() -> Option<&'static Cored> {
    static CORE: OnceLock<Option<Cored>> = OnceLock::new();
    CORE.get_or_init(|| {
        let program = Node::System.program().expect("node on PATH");
        let dir = fixture::scratch("stack-kernel");
        let script = dir.join("thrower.js");
        fs::write(&script, THROWING).expect("write the fixture");
        let Some(core) = fixture::abort_with_core(&program, &[script.as_os_str()], &dir) else {
            let _ = fs::remove_dir_all(&dir);
            return None;
        };
        let taken = fixture::taken(&core, program, 0, Node::System.major());
        let _ = fs::remove_dir_all(&dir);
        Some(Cored { taken, script })
    })
    .as_ref()
}

fn stacks_of(taken: &Taken) -> Vec<ThreadStack> {
    let core = taken.file.parse().expect("parse the core");
    let node = NodeBinary::find(&core, None).expect("find the node binary");
    let meta = Metadata::load(&core, &node).expect("load the metadata");
    v8core::stacks(&core, &meta, &node)
}

/// Every installed major: the stack from epoll through node's C++ and V8's exit frame to
/// `execSync`, the fixture's frames (each named, at the call it makes) down to `waitForever`
/// and the top level, node's loader, and back to `_start`; the other threads' native frames
/// named.
fn check_blocked(node: Node) {
    let Some(cored) = gcore_of_blocked(node) else {
        return;
    };
    let stacks = stacks_of(&cored.taken);
    let main = &stacks[0];
    eprintln!("{:?} {}", node, main);
    assert!(main.main, "the main thread comes first");
    assert_eq!(main.tid, cored.taken.pid);
    let script = cored.script.to_str().expect("utf-8 path");

    // Innermost first: native frames (glibc, libuv, node's binding), then V8's exit frame,
    // then JS.
    let first_js = main
        .frames
        .iter()
        .position(|f| f.kind == FrameKind::Js)
        .unwrap_or_else(|| panic!("no JS frame:\n{main}"));
    assert_eq!(main.frames[0].kind, FrameKind::Native, "{main}");
    assert!(
        main.frames[..first_js]
            .iter()
            .all(|f| f.kind != FrameKind::Js),
        "{main}"
    );
    assert!(
        main.frames[..first_js]
            .iter()
            .any(|f| f.function == "uv_run"),
        "{main}"
    );
    assert_eq!(main.frames[first_js - 1].kind, FrameKind::V8, "{main}");

    let exec = find(main, |f| f.function == "execSync");
    assert_eq!(
        main.frames[exec].script.as_deref(),
        Some("node:child_process")
    );
    assert!(main.frames[exec].line.is_some(), "{main}");

    // The fixture's frames, in order: each function named, each at the call it is making
    // (interpreted frames, whose bytecode's source positions V8 has), as V8's own stack traces
    // say; `forEach` is a builtin, without a script.
    let fixture: Vec<&Frame> = main.frames[exec + 1..]
        .iter()
        .filter(|f| f.kind == FrameKind::Js)
        .take(8)
        .collect();
    let at = |needle| Some(position(BLOCKED, needle));
    let want = [
        ("spawnBlocking", at("execSync(command")),
        ("run", at("spawn();")),
        ("(anonymous)", at("run(c)")),
        ("forEach", None),
        ("Runner", at("forEach(")),
        ("waitForever", at("new Runner")),
        ("(anonymous)", at("waitForever();")),
    ];
    for (i, (name, pos)) in want.iter().enumerate() {
        let f = fixture
            .get(i)
            .unwrap_or_else(|| panic!("frame {i} missing:\n{main}"));
        assert_eq!(f.function, *name, "{main}");
        match pos {
            Some((line, column)) => {
                assert_eq!(f.script.as_deref(), Some(script), "{f}\n{main}");
                assert_eq!(
                    (f.line, f.column),
                    (Some(*line), Some(*column)),
                    "{f}\n{main}"
                );
                assert_eq!(f.line_kind, Some(LineKind::Current), "{f}\n{main}");
            }
            None => assert_eq!(f.script, None, "{f}\n{main}"),
        }
    }
    // Below the fixture: node's module loader.
    assert!(
        fixture
            .get(7)
            .is_some_and(|f| f.script.as_deref().is_some_and(|s| s.starts_with("node:"))),
        "{main}"
    );
    let top = find(main, |f| std::ptr::eq(f, fixture[6]));

    // No garbage: every JS frame names its function, and all but builtins their script.
    for f in main.frames.iter().filter(|f| f.kind == FrameKind::Js) {
        assert!(
            !f.function.is_empty() && f.function != "(unknown)",
            "{f}\n{main}"
        );
        assert!(f.script.is_some() == f.line.is_some(), "{f}\n{main}");
    }
    // Back in C++ below the entry frame, to the thread's first frame.
    let entry = find(main, |f| {
        f.kind == FrameKind::V8 && f.function == "EntryFrame"
    });
    assert!(entry > top, "{main}");
    assert!(
        main.frames[entry..]
            .iter()
            .any(|f| f.function == "node::Start"),
        "{main}"
    );
    assert_eq!(
        main.frames.last().map(|f| f.function.as_str()),
        Some("_start")
    );
    assert!(
        main.notes
            .iter()
            .any(|n| n.contains("outermost frame (_start)")),
        "{main}"
    );

    check_other_threads(&stacks);
}

/// V8's platform workers, libuv's threads, the inspector's: native frames only, node's named.
fn check_other_threads(stacks: &[ThreadStack]) {
    let others = &stacks[1..];
    assert!(others.len() >= 4, "{} other threads", others.len());
    for t in others {
        assert!(!t.main);
        assert!(t.frames.len() >= 3, "{t}");
        assert!(t.frames.iter().all(|f| f.kind == FrameKind::Native), "{t}");
        // Named where node's symbols are: glibc's inner functions need its debug file.
        let node_frames: Vec<&Frame> = t
            .frames
            .iter()
            .filter(|f| f.script.as_deref().is_some_and(|s| s.ends_with("/node")))
            .collect();
        assert!(!node_frames.is_empty(), "{t}");
        assert!(node_frames.iter().all(|f| f.function != "??"), "{t}");
        assert!(
            t.notes
                .last()
                .is_some_and(|n| n.starts_with("reached the thread's outermost frame")),
            "{t}"
        );
    }
}

fn find(stack: &ThreadStack, pred: impl Fn(&Frame) -> bool) -> usize {
    stack
        .frames
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("frame not found in\n{stack}"))
}

#[test]
fn node20_stack() {
    check_blocked(Node::System);
}

#[test]
fn node22_stack() {
    check_blocked(Node::Pinned22);
}

#[test]
fn node24_stack() {
    check_blocked(Node::Pinned24);
}

#[test]
fn node26_stack() {
    check_blocked(Node::Pinned26);
}

/// A kernel core (no file-backed text: the unwind tables and the built-in modules' sources
/// come from the binary on disk): the stack names the throwing function at its `throw`.
#[test]
fn kernel_core_names_the_thrower() {
    let Some(cored) = kernel_core_of_throw() else {
        return;
    };
    let stacks = stacks_of(&cored.taken);
    let main = &stacks[0];
    eprintln!("{main}");
    assert!(main.main);
    assert_eq!(main.frames[0].kind, FrameKind::Native, "{main}");
    assert!(main.frames[0].function.contains("Abort"), "{main}");
    let script = cored.script.to_str().expect("utf-8 path");
    let thrower = find(main, |f| f.kind == FrameKind::Js);
    let frame = &main.frames[thrower];
    assert_eq!(frame.function, "throwSomething", "{main}");
    assert_eq!(frame.script.as_deref(), Some(script));
    let (line, column) = position(THROWING, "throw new");
    assert_eq!(
        (frame.line, frame.column),
        (Some(line), Some(column)),
        "{main}"
    );
    assert_eq!(frame.line_kind, Some(LineKind::Current));
    let top = &main.frames[thrower + 1];
    assert_eq!(
        (top.function.as_str(), top.script.as_deref()),
        ("(anonymous)", Some(script)),
        "{main}"
    );
    // The built-in loader's frames: their sources are in node's read-only data, which a
    // kernel core leaves out.
    assert!(
        main.frames.iter().any(
            |f| f.script.as_deref() == Some("node:internal/modules/cjs/loader") && f.line.is_some()
        ),
        "{main}"
    );
    assert_eq!(
        main.frames.last().map(|f| f.function.as_str()),
        Some("_start")
    );
    check_other_threads(&stacks);
}

/// A position-independent executable (the fake node): native frames are placed by their
/// mapping, whatever the load address.
#[test]
fn native_frames_of_a_pie_are_named() {
    let (taken, build) = fixture::gcore_of_fake(Fake::Pie);
    let core = taken.file.parse().expect("parse");
    let node = NodeBinary::find(&core, None).expect("the fake node");
    let meta = Metadata::load(&core, &node).expect("metadata");
    let stacks = v8core::stacks(&core, &meta, &node);
    let main = &stacks[0];
    assert!(main.main);
    let program = fs::canonicalize(&build.program).expect("program");
    let at_main = find(main, |f| f.function == "main");
    assert_eq!(
        main.frames[at_main].script.as_deref(),
        program.to_str(),
        "{main}"
    );
    // `system` (named `do_system` with glibc's debug file, or unnamed) and its callee.
    assert!(
        main.frames[..at_main]
            .iter()
            .all(|f| f.script.as_deref().is_some_and(|s| s.contains("libc.so"))),
        "{main}"
    );
    assert!(at_main >= 1, "{main}");
    assert!(
        main.frames.iter().all(|f| f.kind == FrameKind::Native),
        "{main}"
    );
}

/// Damaged stacks (every byte of the main thread's stack scrambled, or zeroed): walks end with
/// a note, never a panic, and never invent JS frames from garbage.
#[test]
fn damaged_stacks_end_with_a_note() {
    let Some(cored) = kernel_core_of_throw() else {
        return;
    };
    let bytes = cored.taken.file.bytes();
    let core = Core::parse(bytes, Path::new("whole")).expect("parse");
    let rsp = core.main_thread().expect("main thread").regs.rsp;
    let stack = *core.segment_at(rsp).expect("the stack's segment");
    let range = stack.offset as usize..(stack.offset + stack.filesz) as usize;
    // Only the part in use (above rsp) matters; scramble from a bit below it.
    let from = range.start + (rsp.saturating_sub(stack.vaddr + 4096)) as usize;

    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for fill in ["random", "zero", "self-pointing"] {
        let mut copy = bytes.to_vec();
        for (i, chunk) in copy[from..range.end].chunks_exact_mut(8).enumerate() {
            let word = match fill {
                "random" => {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                }
                "zero" => 0,
                // Every word points at itself or the next: a frame-pointer cycle.
                _ => stack.vaddr + (from - range.start) as u64 + 8 * (i as u64 & !1),
            };
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let core = Core::parse(&copy, Path::new(fill)).expect("parse");
        let node = NodeBinary::find(&core, None).expect("binary");
        let meta = Metadata::load(&core, &node).expect("metadata");
        let stacks = v8core::stacks(&core, &meta, &node);
        let main = &stacks[0];
        assert!(!main.notes.is_empty(), "{fill}: {main}");
        assert!(main.frames.len() <= v8core::stack::MAX_FRAMES, "{fill}");
        for f in main.frames.iter().filter(|f| f.kind == FrameKind::Js) {
            assert!(f.script.is_some(), "{fill}: a JS frame from garbage: {f}");
        }
    }
}

/// A native return address lost (overwritten) between the abort and V8's exit frame: CFI stops
/// there, and the scan for an exit frame above it finds the JS frames again.
#[test]
fn a_lost_return_address_is_bridged_by_the_scan() {
    let Some(cored) = kernel_core_of_throw() else {
        return;
    };
    let bytes = cored.taken.file.bytes();
    let whole = stacks_of(&cored.taken);
    let main = &whole[0];
    // The return address into frame #1, as the innermost frame's CFI found it on the stack.
    let ret = main.frames[1].pc;
    let core = Core::parse(bytes, Path::new("whole")).expect("parse");
    let rsp = core.main_thread().expect("main thread").regs.rsp;
    let stack = *core.segment_at(rsp).expect("the stack's segment");
    let start = (stack.offset + (rsp - stack.vaddr)) as usize;
    let end = (stack.offset + stack.filesz) as usize;
    let slot = (start..end - 8)
        .step_by(8)
        .find(|&at| bytes[at..at + 8] == ret.to_le_bytes())
        .expect("the return address on the stack");
    let mut copy = bytes.to_vec();
    copy[slot..slot + 8].copy_from_slice(&0x1234u64.to_le_bytes());

    let core = Core::parse(&copy, Path::new("lost")).expect("parse");
    let node = NodeBinary::find(&core, None).expect("binary");
    let meta = Metadata::load(&core, &node).expect("metadata");
    let damaged = &v8core::stacks(&core, &meta, &node)[0];
    assert!(
        damaged
            .notes
            .iter()
            .any(|n| n.contains("found by scanning the stack")),
        "{damaged}"
    );
    // From the exit frame on, the same frames as the undamaged walk.
    let exit = |s: &ThreadStack| find(s, |f| f.kind == FrameKind::V8);
    let (a, b) = (exit(main), exit(damaged));
    let names = |s: &ThreadStack, from: usize| -> Vec<String> {
        s.frames[from..].iter().map(|f| f.to_string()).collect()
    };
    assert_eq!(names(damaged, b), names(main, a), "{damaged}");
}

/// A main thread busy in JS (the unresponsive app a core is taken of): the innermost frame
/// is V8's code, whatever tier runs it, and the walk starts there from the thread's rbp.
#[test]
fn a_thread_busy_in_js_starts_in_v8_code() {
    const SPIN: &str = "'use strict';
function inner(o) { return o.a * 2 + 1; }
function spin() {
  let x = 0;
  for (;;) { x = (x + inner({ a: x })) % 1000003; }
}
setTimeout(function later() { process.stdout.write('ready\\n'); spin(); }, 1);
";
    let Some(program) = Node::System.program() else {
        return;
    };
    let dir = fixture::scratch("stack-spin");
    let script = dir.join("spin.js");
    fs::write(&script, SPIN).expect("write the fixture");
    let mut child = Command::new(&program)
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start node");
    let pid = child.id();
    let guard = KillGroup(pid);
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read node's stdout");
    assert_eq!(line.trim(), "ready");
    // Long enough for V8 to optimize the loop, though any tier will do.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let prefix = dir.join("core");
    let out = Command::new("gcore")
        .arg("-o")
        .arg(&prefix)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run gcore (gdb)");
    assert!(out.status.success(), "gcore failed");
    drop(guard);
    let _ = child.wait();
    let core = PathBuf::from(format!("{}.{pid}", prefix.display()));
    let taken = fixture::taken(&core, program, pid, Node::System.major());
    let _ = fs::remove_dir_all(&dir);

    let stacks = stacks_of(&taken);
    let main = &stacks[0];
    let script = script.to_str().expect("utf-8 path");
    eprintln!("{main}");
    // `inner` may be inlined into an optimized `spin`, or be the innermost frame itself; the
    // thread may also be in the collector, called from either.
    let spin = find(main, |f| f.function == "spin");
    assert!(
        main.frames[..spin]
            .iter()
            .all(|f| f.kind != FrameKind::Js || f.function == "inner"),
        "{main}"
    );
    let frame = &main.frames[spin];
    assert_eq!(frame.script.as_deref(), Some(script), "{main}");
    let want = match frame.line_kind {
        Some(LineKind::Current) => position(SPIN, "x = (x").0,
        _ => position(SPIN, "function spin").0,
    };
    assert_eq!(frame.line, Some(want), "{main}");
    assert_eq!(main.frames[spin + 1].function, "later", "{main}");
    assert!(
        main.frames.iter().any(|f| f.function == "listOnTimeout"),
        "{main}"
    );
    assert_eq!(
        main.frames.last().map(|f| f.function.as_str()),
        Some("_start")
    );
}

/// Kills a process group when dropped.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0 as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}
