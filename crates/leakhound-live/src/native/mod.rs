//! Native allocation tracking: running a process under `leakhound-preload`, asking it for
//! dumps, and reading, naming and analysing what it recorded.
//!
//! - [`record`]: the recording on disk (per-process directories of dumps).
//! - [`symbols`]: names for raw return addresses (ELF/DWARF, V8's perf map).
//! - [`analysis`]: growth per stack, V8 signatures, suspects and the verdict (no I/O).

pub mod analysis;
pub mod record;
pub mod symbols;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Error;
use record::Process;
use symbols::{Frame, Maps, PerfMap, Symbolizer};

/// The file name of the tracker library.
pub const LIBRARY: &str = "libleakhound_preload.so";

/// What node needs to name its JavaScript frames in native stacks: a perf map of the functions
/// it compiles (one line per function, not per stub), and a trampoline of its own per
/// interpreted function so those are told apart. Both are accepted in `NODE_OPTIONS`, so they
/// reach node processes anywhere under a command; their cost is within the noise
/// (BENCHMARKS.md).
pub const NAMING_FLAGS: [&str; 2] = [
    "--perf-basic-prof-only-functions",
    "--interpreted-frames-native-stack",
];

/// No inlining by V8's optimizing compilers (`--exact-js`): a function inlined into its caller
/// has no frame of its own, and the perf map cannot tell it was there. The analysis recovers
/// it from the stacks recorded before the inlining (`analysis::js_callers`); these flags make
/// sure, at about a tenth of a CPU-bound service's throughput (BENCHMARKS.md), so they are not
/// the default. Node refuses them in `NODE_OPTIONS`: they go on the command line of a node we
/// start (children made by `child_process.fork` inherit them). Both exist in Node 20 to 26.
pub const EXACT_JS_FLAGS: [&str; 2] = ["--no-turbo-inlining", "--no-maglev-inlining"];

/// A hunt's default sampling interval: a hunt lasts minutes, so it samples 8× more often than
/// the tracker's always-on default (512 KiB) to size leaks to ±10 % within a few thousand
/// requests.
pub const HUNT_INTERVAL: u64 = 64 * 1024;

/// The tracker library: `$LEAKHOUND_PRELOAD`, or beside the leakhound executable (where cargo
/// builds it), or in `../lib/leakhound/` from it (an installed layout).
pub fn library() -> Result<PathBuf, Error> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("LEAKHOUND_PRELOAD") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        // Test binaries live one level further down (target/debug/deps).
        for candidate in [
            dir.join(LIBRARY),
            dir.join("../lib/leakhound").join(LIBRARY),
            dir.join("..").join(LIBRARY),
        ] {
            if candidate.is_file() {
                return Ok(candidate.canonicalize().unwrap_or(candidate));
            }
            searched.push(candidate);
        }
    }
    Err(Error::NoTracker { searched })
}

/// Refuses programs the tracker cannot go into: static executables (`LD_PRELOAD` is ignored)
/// and musl ones (Alpine; the tracker forwards to glibc's `__libc_malloc`).
pub fn check_program(program: &Path) -> Result<(), Error> {
    let path = if program.components().count() > 1 {
        program.to_owned()
    } else {
        std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(program))
                    .find(|p| p.is_file())
            })
            .unwrap_or_else(|| program.to_owned())
    };
    // A program that cannot be read: starting it will say why.
    let Ok(file) = fs::File::open(&path) else {
        return Ok(());
    };
    // SAFETY: a read-only map of an executable, read here only.
    let Ok(data) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return Ok(());
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Ok(());
    }; // a script: its interpreter decides
    let interp = match &file {
        object::File::Elf64(elf) => {
            use object::read::elf::ProgramHeader;
            let endian = elf.endian();
            elf.elf_program_headers()
                .iter()
                .find(|h| h.p_type(endian) == object::elf::PT_INTERP)
                .and_then(|h| h.data(endian, &*data).ok())
                .map(|d| String::from_utf8_lossy(d).trim_end_matches('\0').to_owned())
        }
        _ => return Ok(()),
    };
    match interp {
        None => Err(Error::CannotTrack {
            program: path,
            why: "it is statically linked, so LD_PRELOAD cannot go into it".into(),
        }),
        Some(interp) if interp.contains("musl") => Err(Error::CannotTrack {
            program: path,
            why: format!(
                "it runs on musl ({interp}), and the tracker needs glibc; use a Debian- or Ubuntu-based node image (node:22-slim rather than node:22-alpine) to record native allocations"
            ),
        }),
        Some(_) => Ok(()),
    }
}

/// A recording being made: a private directory, and the environment that puts a process (and
/// its children) under the tracker.
pub struct Recording {
    pub dir: PathBuf,
    pub interval: u64,
    /// Whether node gets [`EXACT_JS_FLAGS`] besides [`NAMING_FLAGS`].
    pub exact_js: bool,
    library: PathBuf,
    requests: u64,
}

impl Recording {
    /// Makes `dir` (0700) for a recording at one sample per `interval` bytes on average.
    pub fn create(dir: &Path, interval: u64, exact_js: bool) -> Result<Recording, Error> {
        let library = library()?;
        let io = |source| Error::Io {
            path: dir.to_owned(),
            source,
        };
        if !dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        // Absolute: the processes it goes into may change their working directory.
        let dir = dir.canonicalize().map_err(io)?;
        Ok(Recording {
            dir,
            interval: interval.max(1),
            exact_js,
            library,
            requests: 0,
        })
    }

    /// Variables to add to the tracked command's environment.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut preload = OsString::from(&self.library);
        if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|v| !v.is_empty()) {
            preload.push(":");
            preload.push(existing);
        }
        vec![
            ("LD_PRELOAD".into(), preload),
            ("LEAKHOUND_NATIVE_DIR".into(), self.dir.clone().into()),
            (
                "LEAKHOUND_NATIVE_INTERVAL".into(),
                self.interval.to_string().into(),
            ),
        ]
    }

    /// The flags for the command line of a node we start.
    pub fn node_flags(&self) -> Vec<&'static str> {
        let exact: &[&str] = if self.exact_js { &EXACT_JS_FLAGS } else { &[] };
        NAMING_FLAGS.iter().chain(exact).copied().collect()
    }

    /// `NODE_OPTIONS` with [`NAMING_FLAGS`] added, for node processes anywhere under a command.
    pub fn node_options() -> OsString {
        let mut options = std::env::var_os("NODE_OPTIONS").unwrap_or_default();
        for flag in NAMING_FLAGS {
            if !options.is_empty() {
                options.push(" ");
            }
            options.push(flag);
        }
        options
    }

    /// Asks every tracked process for a dump and waits up to `wait` for `pid`'s. Returns the
    /// token that marks the dumps of this moment.
    pub fn request_dump(&mut self, pid: u32, wait: Duration) -> Result<String, Error> {
        self.requests += 1;
        let token = format!("r{}", self.requests);
        let path = self.dir.join("request");
        let tmp = self.dir.join(".request.tmp");
        let pid_dir = self.dir.join(pid.to_string());
        let before = dump_names(&pid_dir);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::io::Write::write_all(&mut crate::capture::create_private(&tmp)?, token.as_bytes())
            .map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        let start = Instant::now();
        let wanted = format!("\ntoken {token}\n");
        loop {
            // Only dumps written since the request are read.
            let answered = dump_names(&pid_dir).difference(&before).any(|name| {
                fs::read_to_string(pid_dir.join(name)).is_ok_and(|text| text.contains(&wanted))
            });
            if answered {
                return Ok(token);
            }
            if start.elapsed() > wait {
                return Err(Error::NoDump {
                    pid,
                    dir: pid_dir,
                    waited: wait,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Copies each process's perf map into its directory (0600): node writes it to /tmp, where
    /// it grows with every run and may be cleaned away; the copy is what the dumps refer to.
    /// The one in /tmp is removed when its process is gone (it exists because we asked).
    pub fn keep_perf_maps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let source = PathBuf::from(format!("/tmp/perf-{pid}.map"));
            let Ok(bytes) = fs::read(&source) else {
                continue;
            };
            let target = entry.path().join("perf.map");
            if let Ok(mut file) = crate::capture::create_private(&target)
                && std::io::Write::write_all(&mut file, &bytes).is_ok()
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = fs::remove_file(&source);
            }
        }
    }
}

/// The dump files of a process directory.
fn dump_names(pid_dir: &Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    fs::read_dir(pid_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with("dump-"))
        .collect()
}

/// Names a process's stacks, each address once.
pub struct Symbols<'a> {
    process: &'a Process,
    maps: Maps,
    perf: Option<PerfMap>,
    /// Per stack id: the perf map's length at the first dump that had the stack.
    written: HashMap<u32, u64>,
    symbolizer: &'a mut Symbolizer,
    cache: HashMap<(u64, u64), Vec<Frame>>,
    /// Gives JavaScript frames their original positions (source maps).
    sources: Option<&'a dyn heapsnap::leaks::Sources>,
}

impl<'a> Symbols<'a> {
    pub fn of(process: &'a Process, symbolizer: &'a mut Symbolizer) -> Symbols<'a> {
        let kept = process.dir.join("perf.map");
        let perf = PerfMap::read(&kept)
            .or_else(|| PerfMap::read(Path::new(&format!("/tmp/perf-{}.map", process.pid))));
        let mut written = HashMap::new();
        for dump in &process.dumps {
            for stack in &dump.stacks {
                written.entry(stack.id).or_insert(dump.perf_map);
            }
        }
        Symbols {
            process,
            maps: Maps::of(process),
            perf,
            written,
            symbolizer,
            cache: HashMap::new(),
            sources: None,
        }
    }

    /// JavaScript frames get their original positions from `sources` (source maps).
    pub fn with_sources(mut self, sources: &'a dyn heapsnap::leaks::Sources) -> Symbols<'a> {
        self.sources = Some(sources);
        self
    }

    /// The frames at one return address, innermost inlined function first, naming JIT code
    /// from the perf map's first `written` bytes.
    pub fn frames_at(&mut self, addr: u64, written: u64) -> Vec<Frame> {
        self.cache
            .entry((addr, written))
            .or_insert_with(|| {
                let mut frames =
                    self.symbolizer
                        .frames(&self.maps, self.perf.as_ref(), written, addr);
                if let Some(sources) = self.sources {
                    heapsnap::code::Positions::map_positions(&mut frames, sources);
                }
                frames
            })
            .clone()
    }

    /// The frames of stack `id`, innermost first (inlined functions expanded).
    pub fn stack(&mut self, id: u32) -> Vec<Frame> {
        if id == 0 {
            return vec![Frame {
                name: "[samples that found the stack table full]".into(),
                location: None,
                original: None,
                module: String::new(),
                kind: symbols::FrameKind::Unknown,
                runtime: false,
            }];
        }
        let Some(addrs) = self.process.stacks.get(id as usize) else {
            return Vec::new();
        };
        // A perf map of length 0 in the dump: the file was not there yet, or not readable.
        let written = match self.written.get(&id) {
            Some(&w) if w > 0 => w,
            _ => u64::MAX,
        };
        addrs
            .clone()
            .into_iter()
            .flat_map(|addr| self.frames_at(addr, written))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_static_and_musl_programs() {
        // Debian's ldconfig is a static-pie executable: no interpreter, no LD_PRELOAD.
        let error = check_program(Path::new("/sbin/ldconfig"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("statically linked"), "{error}");
        // A dynamic program whose interpreter is musl's (true, with its PT_INTERP rewritten).
        let mut bytes = fs::read("/usr/bin/true").unwrap();
        let glibc = b"/lib64/ld-linux-x86-64.so.2\0";
        let at = bytes.windows(glibc.len()).position(|w| w == glibc).unwrap();
        let musl = b"/lib/ld-musl-x86_64.so.1\0\0\0\0";
        bytes[at..at + glibc.len()].copy_from_slice(musl);
        let path = std::env::temp_dir().join(format!("leakhound-musl-true-{}", std::process::id()));
        fs::write(&path, &bytes).unwrap();
        let error = check_program(&path).unwrap_err().to_string();
        let _ = fs::remove_file(&path);
        assert!(
            error.contains("runs on musl (/lib/ld-musl-x86_64.so.1)"),
            "{error}"
        );
        assert!(check_program(Path::new("node")).is_ok(), "node from PATH");
        assert!(check_program(Path::new("/usr/bin/true")).is_ok());
    }
}
