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
/// (9–20 ms for ~1 GB and 2,800 mappings here): it is read at most once per this many times
/// its last (wall-clock) cost, so it takes under 1 % of a core and of the app's lock time,
/// with room for the `status` reads beside it (measured in BENCHMARKS.md: 0.8–0.98 % at 100×).
const SMAPS_COST_FACTOR: u32 = 150;

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
            // Asked for: its failures are errors.
            Some(addr) => {
                let i = Inspector::at(addr, limits)?;
                let s = i.session()?;
                Some((i, s))
            }
            None => Inspector::of_open_port(pid, limits)
                .ok()
                .and_then(|i| i.session().ok().map(|s| (i, s))),
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
        let after_snapshot = last_snapshot(self.process.pid).is_some_and(|at| {
            // A future time: a snapshot is under way.
            SystemTime::now()
                .duration_since(at)
                .map_or(true, |ago| ago < SNAPSHOT_SETTLE)
        });
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

    /// V8's figures, or `None`: for this sample when the app is too busy to answer in time
    /// (a long GC), for good (the session closed) when the connection fails or the app has
    /// finished and waits for us to go.
    fn v8(&mut self) -> Option<V8Stats> {
        let (_, session) = self.inspector.as_mut()?;
        match capture::heap_usage(session) {
            Ok(h) if !session.app_finished => Some(V8Stats {
                heap_used: h.heap_used,
                heap_total: h.heap_total,
                external: h.external,
                array_buffers: h.array_buffers,
            }),
            Err(Error::NoAnswer { .. }) => None,
            _ => {
                self.close();
                None
            }
        }
    }

    /// Handles what the inspector sent since the last sample, without waiting: an app that
    /// has finished waits for us to disconnect, so we do at once.
    pub fn poll(&mut self) {
        let finished = match self.inspector.as_mut() {
            Some((_, session)) => session.pump(Duration::ZERO).is_err() || session.app_finished,
            None => false,
        };
        if finished {
            self.close();
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

/// The private directory where leakhound notes its snapshots: `$XDG_RUNTIME_DIR/leakhound`, else
/// `$TMPDIR/leakhound-UID`. `None` if it is not a real directory of ours closed to others (in a
/// shared /tmp someone else may have made it first).
fn marker_dir() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::getuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(run) if !run.is_empty() => PathBuf::from(run).join("leakhound"),
        _ => std::env::temp_dir().join(format!("leakhound-{uid}")),
    };
    let _ = fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0).then_some(dir)
}

/// Sets the time of `pid`'s marker: watchers mark samples up to [`SNAPSHOT_SETTLE`] after it.
/// Best effort: a failure only loses the mark.
fn set_marker(pid: u32, at: SystemTime) {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(dir) = marker_dir() else {
        return;
    };
    // Never through a link, never truncating: only the file's time carries the note.
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(dir.join(format!("snapshot-{pid}")));
    if let Ok(f) = file {
        let _ = f.set_modified(at);
    }
}

/// Notes that leakhound starts a heap snapshot of `pid`: until [`snapshot_done`], watchers (in
/// any leakhound process) mark its samples, however long the snapshot takes.
pub fn snapshot_started(pid: u32) {
    // "In progress": a time in the future, an hour being longer than any snapshot.
    set_marker(pid, SystemTime::now() + Duration::from_secs(3600));
}

/// Notes that leakhound's snapshot of `pid` ended (or failed): samples stay marked for
/// [`SNAPSHOT_SETTLE`].
pub fn snapshot_done(pid: u32) {
    set_marker(pid, SystemTime::now());
}

/// When leakhound's last snapshot of `pid` ended (a future time while one runs).
pub fn last_snapshot(pid: u32) -> Option<SystemTime> {
    let dir = marker_dir()?;
    fs::symlink_metadata(dir.join(format!("snapshot-{pid}")))
        .ok()?
        .modified()
        .ok()
}
