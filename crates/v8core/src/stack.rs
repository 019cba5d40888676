//! The stacks of a core's threads: JS frames with their functions' names and script positions,
//! native frames named from the binaries' symbols, and V8's own frames between them.
//!
//! How a thread is walked, from its registers in the core:
//!
//! 1. **Native frames, by CFI.** While the code address is in a binary with unwind
//!    information (glibc, node's C++, libstdc++), the frame is named from that binary's
//!    symbols and its caller's registers come from the binary's `.eh_frame` rules (gimli,
//!    in `unwind.rs`). A frame pointer walk would not do: glibc uses rbp as a general
//!    register, so a thread blocked in it has rbp = 0.
//! 2. **V8 frames, by frame pointer.** When the code address is V8's (a `Builtins_*` function
//!    of node's embedded blob, or JIT code in an anonymous executable mapping), there is no
//!    CFI, but V8 keeps rbp as a frame pointer through all its frames. Each frame is
//!    classified by the slot at `fp + off_fp_context_or_frame_type`: a marker names a V8 frame
//!    type (`BuiltinExitFrame`, `InternalFrame`, `EntryFrame` …, reported as [`FrameKind::V8`]);
//!    otherwise `fp + off_fp_function` must hold a JSFunction (a [`FrameKind::Js`] frame). The
//!    caller is at `[fp + 8]` (return address) and `[fp]` (its frame pointer).
//! 3. **Back to native after an `EntryFrame`**: that is where C++ called into JS
//!    (`Execution::Call`), so its caller is C++ again: step 1 goes on from the entry frame's
//!    return address, stack pointer and saved rbp.
//! 4. **A fallback when CFI fails** (a binary that cannot be read, or bad rules): the stack is
//!    scanned upward for a V8 exit frame (an exit-frame marker below a saved frame pointer that
//!    starts a chain, above a return address into V8 code), and step 2 goes on from there; a
//!    note says so, since native frames between may be missing.
//!
//! Every walk is bounded: at most [`MAX_FRAMES`] frames, stack pointers and frame pointers
//! strictly increasing inside the thread's stack mapping; a cycle, an absurd frame pointer or
//! unreadable memory ends the walk with a note, never a panic.
//!
//! **Which line a JS frame reports** ([`Frame::line_kind`]): for an interpreted frame, the
//! line and column being executed (the call it is making, at the same position V8's own stack
//! traces give), from its bytecode offset through the bytecode's source position table;
//! otherwise the line where the function starts (its `function` keyword or method name). V8
//! may build the table lazily, yet it was there for every interpreted frame in the builds
//! measured. Baseline (Sparkplug) and optimized frames report their function's start, and an
//! optimized frame stands for its function only: functions inlined into it are not shown.

use std::fmt;

use serde::Serialize;

use crate::binary::NodeBinary;
use crate::core::{Core, Segment};
use crate::js::{FrameReader, Slot};
use crate::metadata::Metadata;
use crate::symbols::{self, Images};
use crate::unwind::{Memory, RBP, RIP, RSP, Regs, Stop, Unwinder};

/// The most frames a thread's stack is walked for.
pub const MAX_FRAMES: usize = 1024;
/// How far above the stack pointer the fallback scan looks for a V8 exit frame.
const MAX_SCAN: u64 = 1 << 20;
/// How many times one thread's walk may fall back to scanning.
const MAX_SCANS: usize = 4;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// A JavaScript function's frame (interpreted, baseline or optimized).
    Js,
    /// Native code: C, C++, the dynamic loader.
    Native,
    /// A frame V8 marks with its type: entry, exit, internal, construct, stub and builtin
    /// frames (the transitions between JS and C++); `function` is the type's name.
    V8,
}

/// Which source line a JS frame's [`Frame::line`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// The line being executed (from the interpreted frame's bytecode offset).
    Current,
    /// The line where the function starts: the best known without the bytecode's source
    /// positions, which V8 collects lazily.
    FunctionStart,
}

/// One frame of a thread's stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub kind: FrameKind,
    /// JS: the function's name, its inferred name (`Module._compile`) when it has none,
    /// `(anonymous)`, or `(unknown)` when the heap does not say; native: the demangled symbol
    /// without parameters, or `??`; V8: the frame type (`EntryFrame`).
    pub function: String,
    /// JS: the script's name (a path, a URL or `node:…`); native: the path of the binary.
    pub script: Option<String>,
    /// 1-based, when known; see [`Frame::line_kind`].
    pub line: Option<u32>,
    /// 1-based, when known.
    pub column: Option<u32>,
    /// Which line `line` is, for JS frames with a line.
    pub line_kind: Option<LineKind>,
    /// The code address: where the thread is in the innermost frame, the return address in
    /// the others.
    pub pc: u64,
}

/// A thread's stack, innermost frame first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadStack {
    pub tid: u32,
    /// The process's main thread (the one running the event loop and the main isolate).
    pub main: bool,
    pub frames: Vec<Frame>,
    /// Where the walk stopped and why, and where it had to guess.
    pub notes: Vec<String>,
}

/// The stacks of every thread of the core, the main thread first. Never fails: what could not
/// be walked is said in each thread's notes.
pub fn stacks(core: &Core<'_>, meta: &Metadata, node: &NodeBinary) -> Vec<ThreadStack> {
    let images = Images::load(core, node);
    let memory = CoreMemory {
        core,
        images: &images,
    };
    // V8's version, for the few layouts its metadata does not describe.
    let v8_major = symbols::symbol_u32(node.bytes(), "_ZN2v88internal7Version6major_E");
    let heap = FrameReader::new(meta, v8_major, &memory);
    let mut walker = Walker {
        core,
        meta,
        images: &images,
        memory: &memory,
        heap: &heap,
        unwinder: Unwinder::new(),
    };
    let main = core.main_thread().map(|t| t.tid);
    let mut out: Vec<ThreadStack> = core
        .threads()
        .iter()
        .map(|t| {
            let mut stack = walker.walk(&t.regs);
            stack.tid = t.tid;
            stack.main = Some(t.tid) == main;
            stack
        })
        .collect();
    out.sort_by_key(|s| !s.main);
    out
}

impl fmt::Display for Frame {
    /// One line: `execSync (node:child_process:958:15)`, `forEach`, `uv_run (/usr/bin/node)`,
    /// `[BuiltinExitFrame]`; a JS line that is the function's start says so.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            FrameKind::V8 => write!(f, "[{}]", self.function),
            FrameKind::Native => match &self.script {
                Some(s) => write!(f, "{} ({s})", self.function),
                None => write!(f, "{} ({:#x})", self.function, self.pc),
            },
            FrameKind::Js => {
                write!(f, "{}", self.function)?;
                // Builtins (`forEach`) have no script.
                if let Some(script) = &self.script {
                    match (self.line, self.column) {
                        (Some(l), Some(c)) => write!(f, " ({script}:{l}:{c})")?,
                        (Some(l), None) => write!(f, " ({script}:{l})")?,
                        _ => write!(f, " ({script})")?,
                    }
                }
                if self.line_kind == Some(LineKind::FunctionStart) {
                    write!(f, " [function start]")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for ThreadStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let main = if self.main { " (main)" } else { "" };
        writeln!(f, "thread {}{main}", self.tid)?;
        for (i, frame) in self.frames.iter().enumerate() {
            writeln!(f, "  #{i:<3} {frame}")?;
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

/// The core's memory, and for file mappings the core left out, the files.
struct CoreMemory<'c, 'i, 'n> {
    core: &'c Core<'c>,
    images: &'i Images<'n>,
}

impl Memory for CoreMemory<'_, '_, '_> {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        if let Some(bytes) = self.core.read(addr, len) {
            return Some(bytes);
        }
        // A file's bytes stand for what the core left out only where the process could not
        // have changed them: not in a writable mapping.
        if self
            .core
            .segment_at(addr)
            .is_some_and(|s| s.flags.writable())
        {
            return None;
        }
        self.images.read(self.core, addr, len)
    }
}

struct Walker<'w, 'c, 'n> {
    core: &'w Core<'c>,
    meta: &'w Metadata,
    images: &'w Images<'n>,
    memory: &'w CoreMemory<'w, 'w, 'n>,
    heap: &'w FrameReader<'w>,
    unwinder: Unwinder,
}

/// One thread's walk in progress.
struct Walk {
    frames: Vec<Frame>,
    notes: Vec<String>,
    /// The thread's stack mapping (the one its stack pointer is in).
    stack: Option<Segment>,
    scans: usize,
}

/// Where the V8 part of a walk ended.
enum V8End {
    /// At an entry frame (or a direct call from C++): native code goes on with these
    /// registers.
    Native(Box<Regs>),
    /// The walk is over (the note says why).
    Stop,
}

impl Walker<'_, '_, '_> {
    fn walk(&mut self, thread_regs: &crate::core::Registers) -> ThreadStack {
        let mut regs = Regs::default();
        for r in 0..=RIP {
            regs.set(r, thread_regs.dwarf(r));
        }
        let mut w = Walk {
            frames: Vec::new(),
            notes: Vec::new(),
            stack: self.core.segment_at(thread_regs.rsp).copied(),
            scans: 0,
        };
        if w.stack.is_none() {
            w.notes.push(format!(
                "the stack pointer {:#x} is in no mapping of the core",
                thread_regs.rsp
            ));
        }
        self.walk_from(&mut w, regs);
        ThreadStack {
            tid: 0,
            main: false,
            frames: w.frames,
            notes: w.notes,
        }
    }

    /// Native frames by CFI, V8 frames by frame pointer, until the end.
    fn walk_from(&mut self, w: &mut Walk, mut regs: Regs) {
        // The innermost frame's rip is where the thread is; the others' are return
        // addresses, looked up one byte back (the call may end its function).
        let mut exact = true;
        loop {
            if w.frames.len() >= MAX_FRAMES {
                w.notes.push(format!("stopped after {MAX_FRAMES} frames"));
                return;
            }
            let (Some(pc), Some(sp)) = (regs.get(RIP), regs.get(RSP)) else {
                w.notes.push(
                    "stopped: the caller's return address or stack pointer is unknown".to_owned(),
                );
                return;
            };
            if pc == 0 {
                w.notes
                    .push("reached a return address of 0: the thread's first frame".to_owned());
                return;
            }
            let lookup = if exact { pc } else { pc - 1 };
            if self.is_v8_code(lookup) {
                match self.v8_frames(w, pc, regs.get(RBP), sp) {
                    V8End::Native(next) => {
                        regs = *next;
                        exact = false;
                        continue;
                    }
                    V8End::Stop => return,
                }
            }
            w.frames.push(self.native_frame(pc, lookup));
            let place = self.images.place(self.core, lookup);
            let step = place.map(|p| self.unwinder.step(p.image, p.vaddr, &regs, self.memory));
            match step {
                Some(Ok((caller, signal))) => {
                    let next_sp = caller.get(RSP).unwrap_or(0);
                    if next_sp <= sp && !signal {
                        w.notes.push(format!(
                            "stopped: unwinding {pc:#x} gave a stack pointer {next_sp:#x} that does not grow"
                        ));
                        return;
                    }
                    regs = caller;
                    exact = signal;
                }
                Some(Err(Stop::Outermost)) => {
                    w.notes.push(format!(
                        "reached the thread's outermost frame ({})",
                        w.frames.last().map_or("??", |f| f.function.as_str())
                    ));
                    return;
                }
                None | Some(Err(Stop::NoCfi)) => {
                    let why = match self.images.problem(self.core, lookup) {
                        Some((path, problem)) => {
                            format!("{} cannot be used ({problem})", path.display())
                        }
                        None if place.is_some() => {
                            "its binary has no unwind information there".to_owned()
                        }
                        None => "no binary is mapped there".to_owned(),
                    };
                    self.resume_by_scan(w, pc, sp, &why);
                    return;
                }
                Some(Err(Stop::Failed(why))) => {
                    self.resume_by_scan(w, pc, sp, &why);
                    return;
                }
            }
        }
    }

    /// V8's frames from the frame at `fp`, whose code is at `pc`.
    fn v8_frames(&mut self, w: &mut Walk, pc: u64, fp: Option<u64>, sp: u64) -> V8End {
        if !self.heap.usable() {
            w.notes.push(
                "stopped at V8 code: the metadata lacks what reading V8's frames needs".to_owned(),
            );
            return V8End::Stop;
        }
        let entry = self.meta.frame_type("EntryFrame");
        let construct_entry = self.meta.frame_type("ConstructEntryFrame");
        let (mut pc, mut low) = (pc, sp);
        let Some(mut fp) = fp.filter(|&fp| self.frame_pointer_ok(w, fp, low)) else {
            let why = format!(
                "V8 code at {pc:#x} with the frame pointer {:#x}, which starts no V8 frame",
                fp.unwrap_or(0)
            );
            self.resume_by_scan(w, pc, sp, &why);
            return V8End::Stop;
        };
        loop {
            if w.frames.len() >= MAX_FRAMES {
                w.notes.push(format!("stopped after {MAX_FRAMES} frames"));
                return V8End::Stop;
            }
            match self.heap.slot(fp, self.meta) {
                Some(Slot::Marker(marker, Some(name))) => {
                    w.frames.push(Frame {
                        kind: FrameKind::V8,
                        function: name,
                        script: None,
                        line: None,
                        column: None,
                        line_kind: None,
                        pc,
                    });
                    if Some(marker) == entry || Some(marker) == construct_entry {
                        // C++ called into JS here: its caller is native again.
                        let mut regs = Regs::default();
                        regs.set(RIP, self.memory.read_u64(fp + 8));
                        regs.set(RSP, Some(fp + 16));
                        regs.set(RBP, self.memory.read_u64(fp));
                        return V8End::Native(Box::new(regs));
                    }
                }
                Some(Slot::Marker(marker, None)) => {
                    w.notes.push(format!(
                        "stopped at the frame at {fp:#x}: its marker {marker} is no frame type of this build"
                    ));
                    return V8End::Stop;
                }
                Some(Slot::Other) => match self.heap.js_function(fp) {
                    Some(f) => w.frames.push(Frame {
                        kind: FrameKind::Js,
                        function: f.name,
                        script: f.script,
                        line: f.position.map(|p| p.line),
                        column: f.position.map(|p| p.column),
                        line_kind: f.position.map(|p| {
                            if p.current {
                                LineKind::Current
                            } else {
                                LineKind::FunctionStart
                            }
                        }),
                        pc,
                    }),
                    None => {
                        w.notes.push(format!(
                            "stopped at the frame at {fp:#x} (code at {pc:#x}): neither a V8 frame marker nor a JS function is in it"
                        ));
                        return V8End::Stop;
                    }
                },
                None => {
                    w.notes
                        .push(format!("stopped: the frame at {fp:#x} is not in the core"));
                    return V8End::Stop;
                }
            }
            let (Some(ret), Some(caller_fp)) =
                (self.memory.read_u64(fp + 8), self.memory.read_u64(fp))
            else {
                w.notes.push(format!(
                    "stopped: the caller of the frame at {fp:#x} is not in the core"
                ));
                return V8End::Stop;
            };
            low = fp + 16;
            if !self.is_v8_code(ret.wrapping_sub(1)) {
                // C++ called V8's code directly, without an entry frame (Irregexp's
                // generated code is called so): unwinding goes on in the caller by CFI.
                let mut regs = Regs::default();
                regs.set(RIP, Some(ret));
                regs.set(RSP, Some(low));
                regs.set(RBP, Some(caller_fp));
                return V8End::Native(Box::new(regs));
            }
            if !self.frame_pointer_ok(w, caller_fp, low) {
                w.notes.push(format!(
                    "stopped: the frame at {fp:#x} links to {caller_fp:#x}, which is not a frame above it"
                ));
                return V8End::Stop;
            }
            pc = ret;
            fp = caller_fp;
        }
    }

    /// A frame pointer that can start a frame: aligned, above `low`, in the thread's stack.
    fn frame_pointer_ok(&self, w: &Walk, fp: u64, low: u64) -> bool {
        fp.is_multiple_of(8)
            && fp >= low
            && w.stack
                .is_some_and(|s| s.contains(fp) && fp.saturating_add(16) <= s.end())
    }

    /// Whether code at `addr` is V8's: a builtin of node's embedded blob (in node's text or
    /// V8's copy of it), or JIT code.
    fn is_v8_code(&self, addr: u64) -> bool {
        if let Some(place) = self.images.place(self.core, addr) {
            return place
                .image
                .symbol(place.vaddr)
                .is_some_and(|(name, _)| name.starts_with("Builtins_"));
        }
        self.core.mapping_at(addr).is_none()
            && self
                .core
                .segment_at(addr)
                .is_some_and(|s| s.anonymous && s.flags.executable())
    }

    fn native_frame(&self, pc: u64, lookup: u64) -> Frame {
        let place = self.images.place(self.core, lookup);
        let function = place
            .and_then(|p| p.image.symbol(p.vaddr))
            .map_or_else(|| "??".to_owned(), |(name, _)| symbols::demangle(name));
        let script = self
            .core
            .mapping_at(lookup)
            .map(|m| m.path.to_string_lossy().into_owned());
        Frame {
            kind: FrameKind::Native,
            function,
            script,
            line: None,
            column: None,
            line_kind: None,
            pc,
        }
    }

    /// After unwinding failed at `pc` (for `why`): scans the stack above `sp` for a V8 exit
    /// frame and walks on from there, to the end of the thread's walk.
    fn resume_by_scan(&mut self, w: &mut Walk, pc: u64, sp: u64, why: &str) {
        if w.scans >= MAX_SCANS {
            w.notes.push(format!("stopped at {pc:#x}: {why}"));
            return;
        }
        w.scans += 1;
        let Some((fp, ret)) = self.scan_for_exit_frame(w, sp) else {
            w.notes.push(format!(
                "stopped at {pc:#x}: {why}; no V8 exit frame is on the stack above it"
            ));
            return;
        };
        w.notes.push(format!(
            "unwinding stopped at {pc:#x} ({why}); went on from the V8 exit frame at {fp:#x} found by scanning the stack: frames between may be missing"
        ));
        match self.v8_frames(w, ret, Some(fp), sp) {
            V8End::Native(regs) => self.walk_from(w, *regs),
            V8End::Stop => {}
        }
    }

    /// The lowest frame above `sp` that looks like V8's exit frame: an exit-frame marker at
    /// `fp − 8` (`fp + off_fp_context_or_frame_type`), a caller frame pointer above it in the
    /// stack, a return address into V8's code; and the return address into it (the last word
    /// into V8 code below it).
    fn scan_for_exit_frame(&self, w: &Walk, sp: u64) -> Option<(u64, u64)> {
        let stack = w.stack?;
        let end = stack.present_end().min(sp.saturating_add(MAX_SCAN));
        let mut last_code = None;
        // From the first aligned word above `sp` whose marker slot (`a − 8`) is in the stack.
        let mut a = sp.max(stack.vaddr.saturating_add(8)).checked_add(7)? & !7;
        while a.checked_add(16).is_some_and(|e| e <= end) {
            let word = self.memory.read_u64(a)?;
            if self.is_v8_code(word.wrapping_sub(1)) {
                last_code = Some(word);
            }
            if let Some(Slot::Marker(_, Some(name))) = self.heap.slot(a, self.meta)
                && name.ends_with("ExitFrame")
                && !name.starts_with("Wasm")
                && let (Some(caller_fp), Some(ret)) =
                    (self.memory.read_u64(a), self.memory.read_u64(a + 8))
                && caller_fp > a
                && stack.contains(caller_fp)
                && self.is_v8_code(ret.wrapping_sub(1))
            {
                return Some((a, last_code.unwrap_or(0)));
            }
            a += 8;
        }
        None
    }
}
