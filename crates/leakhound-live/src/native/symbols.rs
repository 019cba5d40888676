//! Names for the raw return addresses of a recording, found here and never in the target.
//!
//! - An address in a file mapping (node, its libraries, addons, and V8's remapped embedded
//!   builtins, which are node's own text mapped a second time) is turned into the file's
//!   virtual address through the mapping's file offset and the ELF program headers, then named
//!   from DWARF (functions inlined into it too, with file and line) or the symbol table.
//!   `addr2line`'s loader does the ELF and DWARF reading (it is gimli and object underneath, it
//!   finds split and linked debug files); C++ names are demangled without their parameters.
//! - An address in anonymous memory is V8's JIT code: named from the perf map node writes with
//!   `--perf-basic-prof-only-functions` (`START SIZE NAME` lines, appended as code is compiled;
//!   the last line covering the address wins, since freed code space can be reused).
//! - Return addresses point after the call: one is subtracted before any lookup.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::record::Process;
use crate::smaps::Region;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// C or C++ code from a file.
    Native,
    /// A JavaScript function (V8's JIT code, or an interpreted one with its own trampoline).
    Js,
    /// V8's builtins, trampolines and stubs.
    Builtin,
    /// Nothing names it.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub name: String,
    /// `file:line` (native, from DWARF) or `url:line:column` (JavaScript).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// For JavaScript: where the script's source map says `location` came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<heapsnap::code::Original>,
    /// The file the code is in (`node`, `libc.so.6`, `addon.node`), or `JIT`.
    pub module: String,
    pub kind: FrameKind,
    /// C/C++ runtime plumbing (libc, libstdc++, the loader): skipped when naming who allocated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runtime: bool,
}

/// A JavaScript frame's position is `url:line:column` (1-based, as V8 writes the perf map).
impl heapsnap::code::Positions for Frame {
    fn map_positions(&mut self, sources: &dyn heapsnap::leaks::Sources) {
        if self.kind != FrameKind::Js || self.original.is_some() {
            return;
        }
        let Some(location) = &self.location else {
            return;
        };
        let mut parts = location.rsplitn(3, ':');
        let (Some(column), Some(line), Some(script)) = (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if let (Ok(line), Ok(column)) = (line.parse(), column.parse()) {
            // The frame's code is the process's, running when it was recorded: no snapshot
            // copy to check the file against.
            self.original = sources.original(script, None, line, column);
        }
    }
}

impl Frame {
    pub fn label(&self) -> String {
        match &self.location {
            Some(location) => format!("{} ({location})", self.name),
            None => self.name.clone(),
        }
    }
}

struct Module {
    loader: Option<addr2line::Loader>,
    /// PT_LOAD segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
    /// Function symbols with a size, sorted: an address past the end of the nearest symbol
    /// is in a function the tables do not name (glibc's static functions), not in that symbol.
    functions: Vec<(u64, u64)>,
}

impl Module {
    fn open(path: &str) -> Option<Module> {
        let file = fs::File::open(path).ok()?;
        // SAFETY: a read-only map of a library or executable, dropped before we return; a file
        // truncated under us would fault, as it would for the process that runs it.
        let data = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let file = object::File::parse(&*data).ok()?;
        use object::{Object, ObjectSegment, ObjectSymbol};
        let segments = file
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        let mut functions: Vec<(u64, u64)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == object::SymbolKind::Text && s.size() > 0)
            .map(|s| (s.address(), s.address() + s.size()))
            .collect();
        functions.sort_unstable();
        Some(Module {
            loader: addr2line::Loader::new(path).ok(),
            segments,
            functions,
        })
    }

    /// Whether a sized function symbol covers `vaddr` (true when the file has no sizes at all).
    fn named(&self, vaddr: u64) -> bool {
        if self.functions.is_empty() {
            return true;
        }
        let after = self.functions.partition_point(|f| f.0 <= vaddr);
        self.functions[..after]
            .iter()
            .rev()
            .take(16)
            .any(|f| vaddr < f.1)
    }

    fn vaddr(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(offset, size, _)| (*offset..offset + size).contains(&file_offset))
            .map(|(offset, _, vaddr)| file_offset - offset + vaddr)
    }
}

/// A perf map: `(start, end, line number, name)`, sorted by start.
/// A perf map: `(start, end, bytes of the file up to the end of its line, name)`, sorted by
/// start. The byte count orders the lines and says whether a line was written before a dump.
pub struct PerfMap {
    entries: Vec<(u64, u64, u64, String)>,
}

impl PerfMap {
    pub fn parse(text: &str) -> PerfMap {
        let mut written = 0u64;
        let mut entries: Vec<(u64, u64, u64, String)> = text
            .split_inclusive('\n')
            .map(|line| {
                written += line.len() as u64;
                (written, line.trim_end())
            })
            .filter_map(|(i, line)| {
                let mut parts = line.splitn(3, ' ');
                let start = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
                let size = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
                Some((
                    start,
                    start.saturating_add(size),
                    i,
                    parts.next().unwrap_or("").to_owned(),
                ))
            })
            .collect();
        entries.sort_by_key(|e| (e.0, e.2));
        PerfMap { entries }
    }

    pub fn read(path: &Path) -> Option<PerfMap> {
        fs::read_to_string(path)
            .ok()
            .map(|text| PerfMap::parse(&text))
    }

    /// The latest entry covering `addr` among the first `written` bytes of the file: V8 reuses
    /// freed code space, so a line written after the sample may name other code.
    pub fn find(&self, addr: u64, written: u64) -> Option<&str> {
        let after = self.entries.partition_point(|e| e.0 <= addr);
        // Code objects are small; looking back over a few entries finds any overlap.
        self.entries[..after]
            .iter()
            .rev()
            .take(64)
            .filter(|e| addr < e.1 && e.2 <= written)
            .max_by_key(|e| e.2)
            .map(|e| e.3.as_str())
    }
}

/// Names frames of one process; modules are opened once and shared across processes.
#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<String, Option<Module>>,
}

impl Symbolizer {
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// The frames at `addr` (a return address), innermost inlined function first; JIT code is
    /// named from the first `written` bytes of the perf map.
    pub fn frames(
        &mut self,
        maps: &Maps,
        perf: Option<&PerfMap>,
        written: u64,
        addr: u64,
    ) -> Vec<Frame> {
        let pc = addr.saturating_sub(1);
        let unknown = |module: &str| Frame {
            name: format!("[{module} 0x{addr:x}]"),
            location: None,
            original: None,
            module: module.to_owned(),
            kind: FrameKind::Unknown,
            runtime: false,
        };
        let Some(mapping) = maps.find(pc) else {
            return vec![
                perf.and_then(|p| p.find(pc, written))
                    .map_or_else(|| unknown("JIT"), js_frame),
            ];
        };
        if mapping.path.is_empty() || mapping.path.starts_with('[') {
            return vec![
                perf.and_then(|p| p.find(pc, written))
                    .map_or_else(|| unknown("JIT"), js_frame),
            ];
        }
        let path = mapping.path.trim_end_matches(" (deleted)");
        let module_name = Path::new(path)
            .file_name()
            .map_or(path.to_owned(), |n| n.to_string_lossy().into_owned());
        let runtime = is_runtime(&module_name);
        let module = self
            .modules
            .entry(path.to_owned())
            .or_insert_with(|| Module::open(path));
        let Some(module) = module else {
            return vec![unknown(&module_name)];
        };
        let Some(vaddr) = module.vaddr(pc - mapping.start + mapping.offset) else {
            return vec![unknown(&module_name)];
        };
        let frame = |name: String, location: Option<String>| {
            let kind = if name.starts_with("Builtins_") {
                FrameKind::Builtin
            } else {
                FrameKind::Native
            };
            // The C++ standard library's templates, wherever they were instantiated, are
            // plumbing too: who called them allocated.
            let runtime = runtime || name.starts_with("std::") || name.starts_with("__gnu_cxx::");
            Frame {
                name,
                location,
                original: None,
                module: module_name.clone(),
                kind,
                runtime,
            }
        };
        let Some(loader) = &module.loader else {
            return vec![unknown(&module_name)];
        };
        let mut frames = Vec::new();
        if let Ok(mut iter) = loader.find_frames(vaddr) {
            while let Ok(Some(f)) = iter.next() {
                let Some(name) = f.function.as_ref().and_then(|n| n.raw_name().ok()) else {
                    continue;
                };
                let location = f
                    .location
                    .as_ref()
                    .and_then(|l| Some(format!("{}:{}", l.file?, l.line?)));
                frames.push(frame(demangle(&name), location));
            }
        }
        if frames.is_empty() {
            match loader.find_symbol(vaddr).filter(|_| module.named(vaddr)) {
                Some(name) => frames.push(frame(demangle(name), None)),
                None => frames.push(Frame {
                    name: format!("[{module_name}+0x{vaddr:x}]"),
                    ..unknown(&module_name)
                }),
            }
        }
        frames
    }
}

/// The executable mappings a process had, newest first (a JIT region or an unloaded library
/// may have been replaced since).
pub struct Maps {
    mappings: Vec<Region>,
}

impl Maps {
    pub fn of(process: &Process) -> Maps {
        let mut mappings: Vec<Region> = Vec::new();
        for dump in process.dumps.iter().rev() {
            for m in &dump.maps {
                if !mappings
                    .iter()
                    .any(|k| k.start == m.start && k.end == m.end && k.path == m.path)
                {
                    mappings.push(m.clone());
                }
            }
        }
        Maps { mappings }
    }

    fn find(&self, addr: u64) -> Option<&Region> {
        self.mappings
            .iter()
            .find(|m| (m.start..m.end).contains(&addr))
    }
}

fn is_runtime(module: &str) -> bool {
    [
        "libc.so",
        "libc-",
        "libstdc++",
        "ld-linux",
        "libm.so",
        "libgcc_s",
        "libpthread",
        "libleakhound_preload",
    ]
    .iter()
    .any(|p| module.starts_with(p))
}

/// `JS:*name url:line:col`, `JS:^ url:…` (anonymous), `Builtin:Name`, `BytecodeHandler:…`.
fn js_frame(entry: &str) -> Frame {
    let (kind, rest) = match entry.split_once(':') {
        Some(("JS", rest)) => (FrameKind::Js, rest),
        Some((_, _)) => (FrameKind::Builtin, entry),
        None => (FrameKind::Js, entry),
    };
    if kind == FrameKind::Builtin {
        return Frame {
            name: entry.to_owned(),
            location: None,
            original: None,
            module: "JIT".into(),
            kind,
            runtime: false,
        };
    }
    let rest = rest.trim_start_matches(['*', '^', '~', '+']);
    let (name, location) = match rest.rsplit_once(' ') {
        Some((name, location)) => (name.trim(), Some(location.to_owned())),
        None => (rest.trim(), None),
    };
    let name = if name.is_empty() {
        "(anonymous)".to_owned()
    } else {
        name.to_owned()
    };
    Frame {
        name,
        location,
        original: None,
        module: "JIT".into(),
        kind,
        runtime: false,
    }
}

/// C++ names without parameters (`node::Buffer::New`), others as they are.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_Z") {
        let options = cpp_demangle::DemangleOptions::new()
            .no_params()
            .no_return_type();
        if let Ok(symbol) = cpp_demangle::Symbol::new(name)
            && let Ok(text) = symbol.demangle_with_options(&options)
        {
            return text;
        }
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_map_lines_name_js_frames_and_later_lines_win() {
        let text = "1000 100 JS:*handle /srv/app/server.js:12:30\n2000 10 JS:^ /srv/app/a.js:4:23\n1000 80 JS:~again node:internal/x:1:1\n3000 20 Builtin:ArrayPush\n";
        let map = PerfMap::parse(text);
        let all = u64::MAX;
        // Before the third line was written, 0x1010 was still `handle`.
        let before_third = text.find("1000 80").unwrap() as u64;
        assert_eq!(
            js_frame(map.find(0x1010, before_third).unwrap()).name,
            "handle"
        );
        let f = js_frame(map.find(0x1010, all).unwrap());
        assert_eq!(
            (f.name.as_str(), f.location.as_deref(), f.kind),
            ("again", Some("node:internal/x:1:1"), FrameKind::Js)
        );
        let f = js_frame(map.find(0x1090, all).unwrap());
        assert_eq!(f.name, "handle", "only the first line covers 0x1090");
        assert_eq!(js_frame(map.find(0x2005, all).unwrap()).name, "(anonymous)");
        assert_eq!(
            js_frame(map.find(0x3005, all).unwrap()).kind,
            FrameKind::Builtin
        );
        assert_eq!(map.find(0x2010, all), None);
        assert_eq!(map.find(0x10, all), None);
    }

    #[test]
    fn demangles_without_parameters() {
        assert_eq!(
            demangle("_ZN2v88internal11HandleScope6ExtendEPNS0_7IsolateE"),
            "v8::internal::HandleScope::Extend"
        );
        assert_eq!(demangle("uv_run"), "uv_run");
    }

    /// The symbolizer on this test binary: a function's own address names it.
    #[test]
    fn names_a_function_of_a_real_binary() {
        #[inline(never)]
        fn marker_function_for_symbols() -> u64 {
            std::hint::black_box(42)
        }
        let addr = marker_function_for_symbols as *const () as u64;
        let maps = fs::read_to_string("/proc/self/maps").unwrap();
        let mappings: Vec<Region> = maps
            .lines()
            .filter_map(crate::smaps::parse_header)
            .collect();
        let maps = Maps { mappings };
        let frames = Symbolizer::new().frames(&maps, None, u64::MAX, addr + 1);
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("marker_function_for_symbols")),
            "{names:?}"
        );
        assert!(frames.iter().all(|f| f.kind == FrameKind::Native));
    }
}
