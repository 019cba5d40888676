//! The helper thread and the dumps it writes.
//!
//! Layout under `LEAKHOUND_NATIVE_DIR` (a directory leakhound made, 0700):
//! - `PID/stacks.txt`: every stack once, appended as it first appears: `ID ADDR ADDR …` (hex
//!   return addresses, innermost first);
//! - `PID/dump-NNNNNN.txt`: the counters of every stack at one moment, the process's memory
//!   figures and its executable mappings (see [`FORMAT`]); written to a temporary name and
//!   renamed, so a reader never sees half a dump;
//! - `request`: leakhound writes a token here; each process answers with a dump carrying it.
//!
//! Dumps are written every few seconds, on request and at exit. Past [`MAX_KEPT`] dumps, every
//! other one is deleted (the first and the newest stay) and the period doubles, so a recording
//! left on for days stays small. Files are 0600. This thread may allocate: its own allocations
//! pass through the hooks untracked.

use std::ffi::CStr;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{State, TRACKER};

/// The first line of every dump; the reader checks it.
pub const FORMAT: &str = "leakhound-native 1";
pub const MAX_KEPT: usize = 120;

pub struct Config {
    pub dir: PathBuf,
    pub interval: u64,
    pub every_ms: u64,
}

impl Config {
    /// `LEAKHOUND_NATIVE_DIR` (required), `LEAKHOUND_NATIVE_INTERVAL` (mean bytes between
    /// samples, 1 = every allocation), `LEAKHOUND_NATIVE_DUMP_MS`.
    pub fn from_env() -> Option<Config> {
        let dir = PathBuf::from(std::env::var_os("LEAKHOUND_NATIVE_DIR")?);
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        Some(Config {
            dir,
            interval: number("LEAKHOUND_NATIVE_INTERVAL", crate::DEFAULT_INTERVAL).max(1),
            every_ms: number("LEAKHOUND_NATIVE_DUMP_MS", crate::DEFAULT_DUMP_MS).max(100),
        })
    }
}

/// One line on stderr, without allocating (used when there is nowhere else to say it).
pub fn complain(what: &CStr) {
    let mut line = [0u8; 256];
    let prefix = b"leakhound: native allocation tracking is off: ";
    let what = what.to_bytes();
    let n = (prefix.len() + what.len()).min(line.len() - 1);
    line[..prefix.len()].copy_from_slice(prefix);
    line[prefix.len()..n].copy_from_slice(&what[..n - prefix.len()]);
    line[n] = b'\n';
    // SAFETY: writes our own buffer to fd 2.
    unsafe { libc::write(2, line.as_ptr().cast(), n + 1) };
}

struct Dumper {
    config: Config,
    pid: u32,
    seq: u64,
    written_stacks: usize,
    /// The dumps on disk: (sequence number, answers a request).
    kept: Vec<(u64, bool)>,
    every_ms: u64,
    last_ms: u64,
    token: Option<String>,
}

/// The dumper, behind a try-lock that a forked child resets (a std Mutex held by the parent's
/// helper at fork time would stay locked in the child forever).
struct Shared {
    busy: AtomicBool,
    dumper: std::cell::UnsafeCell<Option<Dumper>>,
}

// SAFETY: `dumper` is only touched while `busy` is held (see `with_dumper`).
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    busy: AtomicBool::new(false),
    dumper: std::cell::UnsafeCell::new(None),
};
static HELPER_NEEDED: AtomicBool = AtomicBool::new(false);

/// Run `f` on the dumper, waiting up to `wait` for another dump to finish.
fn with_dumper(wait: Duration, f: impl FnOnce(&mut Dumper)) {
    let deadline = std::time::Instant::now() + wait;
    while SHARED
        .busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if std::time::Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: `busy` is held.
    if let Some(dumper) = unsafe { (*SHARED.dumper.get()).as_mut() } {
        f(dumper);
    }
    SHARED.busy.store(false, Ordering::Release);
}

pub fn start(config: Config) {
    let every_ms = config.every_ms;
    // SAFETY: first use, before any helper thread exists.
    unsafe {
        *SHARED.dumper.get() = Some(Dumper {
            config,
            pid: 0,
            seq: 0,
            written_stacks: 0,
            kept: Vec::new(),
            every_ms,
            last_ms: 0,
            token: None,
        })
    };
    spawn_helper();
}

fn spawn_helper() {
    extern "C" fn run(_: *mut libc::c_void) -> *mut libc::c_void {
        crate::helper_thread();
        helper();
        std::ptr::null_mut()
    }
    // SAFETY: a detached thread running `run`, which touches only our own state.
    unsafe {
        let mut thread: libc::pthread_t = 0;
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        if libc::pthread_create(&mut thread, &attr, run, std::ptr::null_mut()) != 0 {
            complain(c"could not start its helper thread (dumps will be written at exit only)");
        }
        libc::pthread_attr_destroy(&mut attr);
    }
}

/// The fork child handler: the parent's helper thread did not come along. The child's own
/// starts from its next sample (not from the handler, which runs in the middle of fork).
pub fn forked() {
    SHARED.busy.store(false, Ordering::Release);
    HELPER_NEEDED.store(true, Ordering::Release);
}

/// Called on the sampled path: start the helper a forked child needs.
pub fn helper_if_needed() {
    if HELPER_NEEDED.load(Ordering::Relaxed) && HELPER_NEEDED.swap(false, Ordering::AcqRel) {
        spawn_helper();
    }
}

pub fn at_exit() {
    if matches!(TRACKER.state(), State::Off | State::Unset) {
        return;
    }
    with_dumper(Duration::from_secs(2), |d| d.dump(true, false));
}

fn helper() {
    let pid = std::process::id();
    with_dumper(Duration::from_secs(1), |d| {
        d.token = d.read_request();
        d.last_ms = TRACKER.now_ms();
    });
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if std::process::id() != pid {
            return;
        }
        with_dumper(Duration::ZERO, |d| {
            let request = d.read_request();
            let asked = request.is_some() && request != d.token;
            if asked || TRACKER.now_ms() >= d.last_ms + d.every_ms {
                d.token = request;
                d.dump(false, asked);
            }
        });
    }
}

impl Dumper {
    fn read_request(&self) -> Option<String> {
        fs::read_to_string(self.config.dir.join("request"))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    fn pid_dir(&self) -> PathBuf {
        self.config.dir.join(self.pid.to_string())
    }

    /// Writes a dump; `asked` when it answers a request (its token is `self.token`).
    fn dump(&mut self, last: bool, asked: bool) {
        let pid = std::process::id();
        if self.pid != pid {
            // A new process (the first dump, or a forked child): its own directory.
            self.pid = pid;
            self.seq = 0;
            self.written_stacks = 0;
            self.kept.clear();
            self.every_ms = self.config.every_ms;
            if fs::DirBuilder::new()
                .mode(0o700)
                .create(self.pid_dir())
                .is_err()
                && !self.pid_dir().is_dir()
            {
                TRACKER.fail(c"could not create its directory under LEAKHOUND_NATIVE_DIR");
                complain(c"could not create its directory under LEAKHOUND_NATIVE_DIR");
                return;
            }
        }
        let now_ms = TRACKER.now_ms();
        self.last_ms = now_ms;
        let Some((counters, ages, new_stacks, resident)) = TRACKER.with(|tables| {
            let (counters, ages) = tables.read(now_ms);
            let resident = tables.resident();
            let new: Vec<(usize, Vec<u64>)> = (self.written_stacks..tables.stacks.len)
                .map(|id| (id, tables.stacks.frames_of(id as u32).to_vec()))
                .collect();
            tables.refresh_filter();
            (counters, ages, new, resident)
        }) else {
            return;
        };
        if !new_stacks.is_empty() && self.append_stacks(&new_stacks).is_ok() {
            self.written_stacks = new_stacks
                .last()
                .map_or(self.written_stacks, |(id, _)| id + 1);
        }
        self.seq += 1;
        let text = self.render(last, asked, now_ms, &counters, &ages, resident);
        let name = format!("dump-{:06}.txt", self.seq);
        let tmp = self.pid_dir().join(format!(".{name}.tmp"));
        let written = write_private(&tmp, text.as_bytes(), false)
            .and_then(|()| fs::rename(&tmp, self.pid_dir().join(&name)));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        self.kept.push((self.seq, self.token.is_some() && asked));
        if self.kept.len() > MAX_KEPT {
            // Dumps that answered a request are checkpoints someone waits for: never thinned.
            let last_kept = self.kept.len() - 1;
            let mut index = 0;
            self.kept.retain(|&(seq, answered)| {
                let keep = answered || index == 0 || index == last_kept || index % 2 == 0;
                if !keep {
                    let _ = fs::remove_file(
                        self.config
                            .dir
                            .join(pid.to_string())
                            .join(format!("dump-{seq:06}.txt")),
                    );
                }
                index += 1;
                keep
            });
            self.every_ms = self.every_ms.saturating_mul(2);
        }
    }

    fn append_stacks(&self, stacks: &[(usize, Vec<u64>)]) -> std::io::Result<()> {
        let mut text = String::new();
        for (id, frames) in stacks {
            text.push_str(&id.to_string());
            for frame in frames {
                text.push_str(&format!(" {frame:x}"));
            }
            text.push('\n');
        }
        write_private(&self.pid_dir().join("stacks.txt"), text.as_bytes(), true)
    }

    fn render(
        &self,
        last: bool,
        asked: bool,
        now_ms: u64,
        counters: &[crate::table::Counters],
        ages: &[[u64; 4]],
        resident: u64,
    ) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(64 * 1024);
        let state = match TRACKER.state() {
            State::On => "on".to_owned(),
            State::Off | State::Unset => "off".to_owned(),
            State::Failed => {
                let why = TRACKER.failure.load(Ordering::Relaxed);
                // SAFETY: `fail` stores pointers to static C strings only.
                let why = if why.is_null() {
                    ""
                } else {
                    unsafe { CStr::from_ptr(why.cast()) }.to_str().unwrap_or("")
                };
                format!("failed: {why}")
            }
        };
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // SAFETY: mallinfo2 only reads glibc's arena statistics (it takes their locks).
        let info = unsafe { libc::mallinfo2() };
        let perf_map = fs::metadata(format!("/tmp/perf-{}.map", self.pid)).map_or(0, |m| m.len());
        let cmdline = fs::read("/proc/self/cmdline").unwrap_or_default();
        let cmdline: Vec<String> = cmdline
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).replace(['\n', '\t'], " "))
            .collect();
        let maps = fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mut heap = 0u64;
        let mut kept_maps = Vec::new();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let (range, perms) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
            if line.ends_with("[heap]")
                && let Some((a, b)) = range.split_once('-')
            {
                let (a, b) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16));
                heap += b.unwrap_or(0).saturating_sub(a.unwrap_or(0));
            }
            if perms.contains('x') {
                kept_maps.push(line);
            }
        }
        let _ = writeln!(out, "{FORMAT}");
        let _ = writeln!(out, "pid {}", self.pid);
        let _ = writeln!(out, "seq {}", self.seq);
        // Only the dump that answers a request carries its token.
        let token = self.token.as_deref().filter(|t| asked && !t.is_empty());
        let _ = writeln!(out, "token {}", token.unwrap_or("-"));
        let _ = writeln!(out, "final {}", u8::from(last));
        let _ = writeln!(out, "time_ms {now_ms}");
        let _ = writeln!(out, "unix_ms {unix_ms}");
        let _ = writeln!(out, "interval {}", TRACKER.interval.load(Ordering::Relaxed));
        let _ = writeln!(out, "configured_interval {}", self.config.interval);
        let _ = writeln!(out, "halvings {}", TRACKER.halvings.load(Ordering::Relaxed));
        let _ = writeln!(out, "dropped {}", TRACKER.dropped.load(Ordering::Relaxed));
        let _ = writeln!(out, "state {state}");
        let _ = writeln!(out, "rss {}", rss());
        let _ = writeln!(out, "heap {heap}");
        let _ = writeln!(out, "tracker_rss {resident}");
        let _ = writeln!(
            out,
            "mallinfo {} {} {} {} {}",
            info.arena, info.hblkhd, info.uordblks, info.fordblks, info.keepcost
        );
        let _ = writeln!(out, "perf_map {perf_map}");
        let _ = writeln!(out, "cmdline {}", cmdline.join(" "));
        let used: Vec<usize> = (0..counters.len())
            .filter(|&i| counters[i].samples > 0)
            .collect();
        let _ = writeln!(out, "stacks {}", used.len());
        for i in used {
            let c = &counters[i];
            let a = ages.get(i).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "{i} {} {} {} {} {} {} {} {} {} {}",
                c.live_bytes,
                c.live_objects_milli,
                c.alloc_bytes,
                c.alloc_objects_milli,
                c.live_samples,
                c.samples,
                a[0],
                a[1],
                a[2],
                a[3]
            );
        }
        let _ = writeln!(out, "maps {}", kept_maps.len());
        for line in kept_maps {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "end");
        out
    }
}

fn rss() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: a plain query.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

fn write_private(path: &std::path::Path, bytes: &[u8], append: bool) -> std::io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}
