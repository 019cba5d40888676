//! Sampling one process's memory over time, cheaply: `/proc/PID/status` every time, `smaps`
//! only as often as its cost allows, V8's figures when an inspector is already open.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::Error;
use crate::attach::{Inspector, Limits};
use crate::cdp::Session;
use crate::memory::{Sample, V8Stats};
use crate::procfs::Process;
use crate::{capture, smaps};

/// Reading `smaps` makes the kernel walk the page tables under the process's mmap lock
/// (16–30 ms for ~800 MB here): it is read at most once per this many times its last cost, so
/// it takes at most ~1 % of a core and of the app's lock time.
const SMAPS_COST_FACTOR: u32 = 100;

/// Samples within this long after a heap snapshot by leakhound are marked `after_snapshot`.
pub const SNAPSHOT_SETTLE: Duration = Duration::from_secs(30);

/// The sampler of one process.
pub struct Sampler {
    process: Process,
    /// The least time between two `smaps` reads.
    smaps_gap: Duration,
    last_smaps: Option<Instant>,
    smaps_cost: Duration,
    inspector: Option<(Inspector, Session)>,
}

impl Sampler {
    /// A sampler of `pid`. With `inspect`, V8's figures come from that inspector; else from
    /// the process's own inspector if it has one open (no SIGUSR1: watching must not change
    /// the process).
    pub fn new(
        pid: u32,
        smaps_gap: Duration,
        inspect: Option<&str>,
        limits: Limits,
    ) -> Result<Sampler, Error> {
        let process = Process::new(pid)?;
        let inspector = match inspect {
            Some(addr) => Some(Inspector::at(addr, limits)?),
            None => Inspector::of_open_port(pid, limits).ok(),
        };
        let inspector = match inspector {
            Some(i) => i.session().ok().map(|s| (i, s)),
            None => None,
        };
        Ok(Sampler {
            process,
            smaps_gap,
            last_smaps: None,
            smaps_cost: Duration::ZERO,
            inspector,
        })
    }

    /// A sampler of `pid` that never talks to its inspector (for `hunt`, which has its own
    /// session and snapshots in flight).
    pub fn without_inspector(pid: u32, smaps_gap: Duration) -> Result<Sampler, Error> {
        Ok(Sampler {
            process: Process::new(pid)?,
            smaps_gap,
            last_smaps: None,
            smaps_cost: Duration::ZERO,
            inspector: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// Whether V8's figures are read (an inspector session is open).
    pub fn has_inspector(&self) -> bool {
        self.inspector.is_some()
    }

    /// Takes one sample; `t` is the time since the watch started. `NoSuchProcess` once the
    /// process has exited.
    pub fn sample(&mut self, t: f64) -> Result<Sample, Error> {
        let memory = self.process.memory()?;
        let now = Instant::now();
        let due = self.last_smaps.is_none_or(|last| {
            now.duration_since(last) >= self.smaps_gap.max(self.smaps_cost * SMAPS_COST_FACTOR)
        });
        let breakdown = if due {
            let regions = smaps::read(&self.process)?;
            self.smaps_cost = now.elapsed();
            self.last_smaps = Some(now);
            Some(smaps::breakdown(&regions))
        } else {
            None
        };
        let v8 = self.v8();
        let unix_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let after_snapshot = last_snapshot(self.process.pid)
            .and_then(|at| SystemTime::now().duration_since(at).ok())
            .is_some_and(|ago| ago < SNAPSHOT_SETTLE);
        Ok(Sample {
            t,
            unix_ms,
            pid: self.process.pid,
            rss: memory.rss,
            rss_anon: memory.rss_anon,
            rss_file: memory.rss_file,
            swap: memory.swap,
            breakdown,
            v8,
            after_snapshot,
        })
    }

    /// V8's figures, or `None` (and the session dropped) when the inspector stops answering or
    /// the app has finished and waits for us to go.
    fn v8(&mut self) -> Option<V8Stats> {
        let (_, session) = self.inspector.as_mut()?;
        match capture::heap_usage(session) {
            Ok(h) if !session.app_finished => Some(V8Stats {
                heap_used: h.heap_used,
                heap_total: h.heap_total,
                external: h.external,
                array_buffers: h.array_buffers,
            }),
            _ => {
                self.close();
                None
            }
        }
    }

    /// Closes the inspector session, if any.
    pub fn close(&mut self) {
        if let Some((inspector, session)) = self.inspector.take() {
            let _ = inspector.finish(Some(session));
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where leakhound notes that it took a snapshot of a process: a private directory per user.
fn marker(pid: u32) -> PathBuf {
    let uid = rustix::process::getuid().as_raw();
    std::env::temp_dir()
        .join(format!("leakhound-{uid}"))
        .join(format!("snapshot-{pid}"))
}

/// Notes that leakhound just took a heap snapshot of `pid`, so that watchers (in any leakhound
/// process) mark the samples that follow. Best effort: a failure only loses the mark.
pub fn mark_snapshot(pid: u32) {
    let path = marker(pid);
    if let Some(dir) = path.parent() {
        let _ =
            std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700).create(dir);
    }
    let _ = fs::write(&path, b"");
}

/// When leakhound last took a heap snapshot of `pid`, if it noted one.
pub fn last_snapshot(pid: u32) -> Option<SystemTime> {
    fs::metadata(marker(pid)).ok()?.modified().ok()
}
