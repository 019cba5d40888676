//! Whether a heap snapshot fits in a process's memory, and what happened when one did not.
//!
//! V8 builds a snapshot inside the app's own memory, several times its heap, and the kernel
//! kills the app when that crosses its memory limit. Before a snapshot we read the limit and
//! the usage of the process's memory cgroup (v2 `memory.max`/`memory.current`, v1
//! `memory.limit_in_bytes`/`memory.usage_in_bytes`, found through `/proc/PID/cgroup` and the
//! mount table, every ancestor included) and the machine's `MemAvailable`, and compare the room
//! left with [`snapshot_need`]. When a snapshot fails, [`Before::explain`] tells whether the app
//! died and whether the kernel's OOM killer did it (the cgroup's `oom_kill` count, `failcnt`,
//! `/proc/vmstat`).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::procfs::{self, Process};
use crate::timeline::human_size;
use crate::{Error, Shortfall};

/// What a snapshot needs beyond the memory the app uses, per byte of V8 heap in use outside
/// the large-object spaces. Measured on Node 20, 22, 24 and 26 (BENCHMARKS.md, "Memory a
/// snapshot needs"): it follows the objects and references, not the bytes. V8 also keeps a
/// 1 KB buffer per distinct index of an array that points to objects, so long arrays (and big
/// Map and Set tables), which live in the large-object spaces once over 16K slots, cost up to
/// [`NEED_PER_LARGE_BYTE`].
pub const NEED_PER_HEAP_BYTE: f64 = 16.0;

/// … per byte in the large-object spaces (`large_object_space`, `new_large_object_space`).
pub const NEED_PER_LARGE_BYTE: f64 = 160.0;

/// … per byte of heap when the app cannot say how much is in the large-object spaces (Node
/// older than 20.16): above every shape measured but one (an array of references to a few
/// objects, 90–93×).
pub const NEED_PER_BYTE_UNSPLIT: f64 = 64.0;

/// What a snapshot needs on top, whatever the heap: V8's and the inspector's fixed costs
/// (31–53 MB measured for a 3–4 MB heap).
pub const NEED_FIXED: u64 = 64 << 20;

/// The memory a heap snapshot takes in the app, beyond what it uses now, for a heap with
/// `heap_used` bytes in use of which `large` (when known) in the large-object spaces: the graph
/// V8 builds (an entry per object and per reference, far larger than most objects) and the JSON
/// it serialises for the inspector. Above every run measured (by 12 % at the closest), except
/// that the fallback without `large` falls short of a long array of references to a few objects
/// (0.70×). Long strings in the large-object spaces cost next to nothing but are counted at
/// [`NEED_PER_LARGE_BYTE`]: for those it refuses snapshots that would fit.
pub fn snapshot_need(heap_used: u64, large: Option<u64>) -> u64 {
    let variable = match large {
        Some(large) => {
            let large = large.min(heap_used);
            (heap_used - large) as f64 * NEED_PER_HEAP_BYTE + large as f64 * NEED_PER_LARGE_BYTE
        }
        None => heap_used as f64 * NEED_PER_BYTE_UNSPLIT,
    };
    (variable as u64).saturating_add(NEED_FIXED)
}

/// A memory cgroup directory, as this process sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Cgroup {
    pub dir: PathBuf,
    pub v2: bool,
}

/// A limit on a process's memory: a cgroup with a limit (the process's own, or an ancestor's).
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    pub cgroup: Cgroup,
    pub max: u64,
    /// Its usage, minus the page cache it can drop at once (inactive files): what containers
    /// call the working set.
    pub used: u64,
}

/// The memory a process may still take before something kills it.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub pid: u32,
    /// The limit that leaves the least room, if any limit is set.
    pub limit: Option<Limit>,
    /// The machine's `MemAvailable`.
    pub available: u64,
    /// The least of the two.
    pub free: u64,
    /// Why its limit could not be read, when the process has a memory cgroup leakhound
    /// cannot see (the room is then unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen: Option<String>,
    /// The process's own memory cgroup, where the kernel counts its OOM kills.
    #[serde(skip)]
    own: Option<Cgroup>,
}

impl Room {
    pub fn of(pid: u32) -> Result<Room, Error> {
        let process = Process::new(pid)?;
        let total = meminfo("MemTotal").unwrap_or(u64::MAX);
        let (available, mut unseen) = match meminfo("MemAvailable") {
            Some(available) => (available, None),
            None => (0, Some("/proc/meminfo has no MemAvailable".to_owned())),
        };
        let own = match Cgroup::of(&process) {
            Some(Ok(own)) => Some(own),
            Some(Err(path)) => {
                unseen = Some(format!(
                    "PID {pid}'s memory cgroup {path} cannot be read from here"
                ));
                None
            }
            None => None,
        };
        let mut limit: Option<Limit> = None;
        if let Some(own) = &own {
            for cgroup in ancestors(own) {
                let Some(max) = cgroup.limit().filter(|&m| m < total) else {
                    continue;
                };
                let used = cgroup.working_set();
                let tighter = limit
                    .as_ref()
                    .is_none_or(|l| max.saturating_sub(used) < l.max.saturating_sub(l.used));
                if tighter {
                    limit = Some(Limit { cgroup, max, used });
                }
            }
        }
        let free = limit
            .as_ref()
            .map_or(available, |l| l.max.saturating_sub(l.used).min(available));
        Ok(Room {
            pid,
            limit,
            available,
            free,
            unseen,
            own,
        })
    }

    /// Where the room is, for people: `its memory limit: 304 MB in use of 700 MB (cgroup …)`,
    /// or `the machine: 3.1 GB available` (with or without a looser limit).
    pub fn describe(&self) -> String {
        let limit = self.limit.as_ref().map(|l| {
            format!(
                "its memory limit: {} in use of {} (cgroup {})",
                human_size(l.used as f64),
                human_size(l.max as f64),
                l.cgroup.dir.display()
            )
        });
        let machine = format!(
            "the machine: {} available",
            human_size(self.available as f64)
        );
        match limit {
            Some(limit) if self.free < self.available => limit,
            Some(limit) => format!("{machine}, less than under {limit}"),
            None => format!("{machine}, no memory limit on the process"),
        }
    }
}

/// How the need was estimated, for people: `16× its 87.7 MB of heap outside V8's large-object
/// space, 160× its 44.3 MB inside it (long arrays and big Maps cost per slot), and 67.1 MB
/// more`, and what it still holds from earlier snapshots.
fn estimate(heap_used: u64, large: Option<u64>, kept: u64) -> String {
    let reused = if kept > 0 {
        format!(
            ", less the {} it still holds from earlier snapshots",
            human_size(kept as f64)
        )
    } else {
        String::new()
    };
    let how = match large {
        Some(large) => format!(
            "{NEED_PER_HEAP_BYTE}× its {} of heap outside V8's large-object space, {NEED_PER_LARGE_BYTE}× its {} inside it (long arrays and big Maps cost per slot), and {} more",
            human_size(heap_used.saturating_sub(large) as f64),
            human_size(large.min(heap_used) as f64),
            human_size(NEED_FIXED as f64)
        ),
        None => format!(
            "{NEED_PER_BYTE_UNSPLIT}× its {} heap and {} more (the app did not say how much is in V8's large-object space)",
            human_size(heap_used as f64),
            human_size(NEED_FIXED as f64)
        ),
    };
    how + &reused
}

/// The check before one snapshot, kept to explain its failure.
#[derive(Debug, Serialize)]
pub struct Before {
    pub heap_used: u64,
    /// Of which in V8's large-object spaces, when the app said.
    pub large_objects: Option<u64>,
    /// Memory the app still holds from an earlier snapshot (glibc keeps what V8 freed), which
    /// this one reuses: a second snapshot of a heap peaks within 1–2.3 % of the first.
    pub kept: u64,
    /// [`snapshot_need`] of the two, less `kept`, at least [`NEED_FIXED`].
    pub need: u64,
    /// `None` when leakhound cannot see the process (a remote inspector).
    pub room: Option<Room>,
    /// It did not fit and `--force` took it anyway.
    pub forced: bool,
    #[serde(skip)]
    counts: Counts,
}

impl Before {
    /// Checks that a snapshot of a heap with `heap_used` bytes in use, `large` of them in the
    /// large-object spaces (when known), fits in process `pid` (`None`: a process leakhound
    /// cannot see), which still holds `kept` bytes from an earlier snapshot; or fails with what
    /// to do instead. With `force` it never fails and says in `forced` that it did not fit.
    pub fn check(
        pid: Option<u32>,
        heap_used: u64,
        large: Option<u64>,
        kept: u64,
        force: bool,
    ) -> Result<Before, Error> {
        let need = snapshot_need(heap_used, large)
            .saturating_sub(kept)
            .max(NEED_FIXED);
        let room = pid.map(Room::of).transpose()?;
        let fits = room
            .as_ref()
            .is_some_and(|r| r.unseen.is_none() && need <= r.free);
        if !fits && !force {
            return Err(match room {
                Some(Room {
                    unseen: Some(why), ..
                }) => Error::RoomUnknown {
                    need: human_size(need as f64),
                    heap: human_size(heap_used as f64),
                    why,
                },
                Some(room) => Error::NoRoom(Box::new(Shortfall {
                    pid: room.pid,
                    need: human_size(need as f64),
                    free: human_size(room.free as f64),
                    more: human_size(need.saturating_sub(room.free) as f64),
                    estimate: estimate(heap_used, large, kept),
                    room: room.describe(),
                })),
                None => Error::RoomUnknown {
                    need: human_size(need as f64),
                    heap: human_size(heap_used as f64),
                    why: "leakhound cannot tell which process holds this heap: a browser page's renderer, another machine, or a port forwarded to it".into(),
                },
            });
        }
        let counts = Counts::read(room.as_ref());
        Ok(Before {
            heap_used,
            large_objects: large,
            kept,
            need,
            room,
            forced: !fits,
            counts,
        })
    }

    /// The process of the check.
    pub fn pid(&self) -> Option<u32> {
        self.room.as_ref().map(|r| r.pid)
    }

    /// A one-line warning when `--force` took a snapshot that did not fit.
    pub fn warning(&self) -> Option<String> {
        self.forced.then(|| match &self.room {
            Some(room) => format!(
                "--force: taking the snapshot although it needs about {} and PID {} has {} free ({})",
                human_size(self.need as f64),
                room.pid,
                human_size(room.free as f64),
                room.describe()
            ),
            None => format!(
                "--force: taking the snapshot without knowing the app's free memory (it needs about {})",
                human_size(self.need as f64)
            ),
        })
    }

    /// `error` ended a snapshot (or anything done to the process after this check): if the
    /// process died meanwhile, an error that says so, and why when the kernel says; otherwise
    /// `error` itself.
    pub fn explain(&self, error: Error) -> Error {
        let Some(room) = &self.room else {
            return error;
        };
        // A dropped connection is what a killed app looks like: give the kernel a moment.
        let wait = match error {
            Error::Closed { .. } | Error::Connect { .. } => Duration::from_secs(3),
            _ => Duration::ZERO,
        };
        let Some(exit) = dead(room.pid, wait) else {
            return error;
        };
        let after = Counts::read(Some(room));
        let mut why = Vec::new();
        let went = |name: &str, a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if b > a => Some(format!("{name} {a} → {b}")),
            _ => None,
        };
        let cgroup_kill = went("oom_kill", self.counts.oom_kill, after.oom_kill);
        let machine_kill = went("oom_kill", self.counts.machine_kills, after.machine_kills);
        let hit_name = match room.limit.as_ref().is_some_and(|l| l.cgroup.v2) {
            true => "memory.events max",
            false => "failcnt",
        };
        let hit = went(hit_name, self.counts.limit_hits, after.limit_hits);
        let cause = match (&cgroup_kill, &machine_kill) {
            (Some(k), _) => {
                why.push(format!(
                    "the kernel's OOM killer killed it (its cgroup {} counts the kill: {k}{})",
                    room.own
                        .as_ref()
                        .map_or(String::new(), |c| c.dir.display().to_string()),
                    hit.as_ref().map(|h| format!(", {h}")).unwrap_or_default()
                ));
                true
            }
            (None, Some(k)) => {
                why.push(format!(
                    "the kernel's OOM killer killed a process meanwhile (/proc/vmstat: {k}), most likely it"
                ));
                true
            }
            _ => false,
        };
        if let Some(exit) = exit {
            why.push(format!("it ended with {exit}"));
        }
        if !cause && why.is_empty() {
            why.push("leakhound cannot tell why (no OOM kill counted by the kernel)".into());
        }
        Error::Died {
            pid: room.pid,
            why: why.join("; "),
            advice: if cause && self.need <= room.free {
                format!(
                    "leakhound expected the snapshot to fit ({} free before, about {} estimated): a limit it could not see, or a heap that costs a snapshot more than any it measured. Restart the app; next time take a sampling heap profile (`leakhound capture --pid PID --sample-allocations 30s`) instead",
                    human_size(room.free as f64),
                    human_size(self.need as f64)
                )
            } else if cause {
                format!(
                    "The snapshot needed more memory than the app had ({} free before, about {} estimated). Restart the app; next time take a sampling heap profile (`leakhound capture --pid PID --sample-allocations 30s`), or raise its memory limit first",
                    human_size(room.free as f64),
                    human_size(self.need as f64)
                )
            } else {
                "Its own log may say why".into()
            },
            seen: Box::new(error),
        }
    }
}

/// Whether `pid` is gone (or a zombie), waiting up to `wait` for it to go. `Some` with how it
/// ended when that is still known (a zombie: its parent has not collected it).
fn dead(pid: u32, wait: Duration) -> Option<Option<String>> {
    let start = Instant::now();
    loop {
        if Process::new(pid).is_err() {
            return Some(procfs::ending(pid));
        }
        if start.elapsed() >= wait {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The kernel's counters of OOM kills and limit hits, read before a snapshot.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Kills in the process's own cgroup (v2 `memory.events`, v1 `memory.oom_control`).
    oom_kill: Option<u64>,
    /// Times the binding limit was hit (v2 `memory.events` `max`, v1 `memory.failcnt`).
    limit_hits: Option<u64>,
    /// Kills on the whole machine (`/proc/vmstat`).
    machine_kills: Option<u64>,
}

impl Counts {
    fn read(room: Option<&Room>) -> Counts {
        let Some(room) = room else {
            return Counts::default();
        };
        let keyed = |c: &Cgroup, file: &str, key: &str| {
            fs::read_to_string(c.dir.join(file))
                .ok()
                .and_then(|text| field(&text, key))
        };
        let oom_kill = room.own.as_ref().and_then(|c| match c.v2 {
            true => keyed(c, "memory.events", "oom_kill"),
            false => keyed(c, "memory.oom_control", "oom_kill"),
        });
        let limit_hits = room.limit.as_ref().and_then(|l| match l.cgroup.v2 {
            true => keyed(&l.cgroup, "memory.events", "max"),
            false => read_number(&l.cgroup.dir.join("memory.failcnt")),
        });
        let machine_kills = fs::read_to_string("/proc/vmstat")
            .ok()
            .and_then(|t| field(&t, "oom_kill"));
        Counts {
            oom_kill,
            limit_hits,
            machine_kills,
        }
    }
}

impl Cgroup {
    /// The memory cgroup of `process`, as a directory we can read: through `/proc/PID/cgroup`
    /// and our mount table; failing that (another cgroup namespace, as from a sidecar
    /// container), the root of the cgroup mount in the process's own mount namespace, which in
    /// a container is the container's cgroup. `None` when memory is not a cgroup controller
    /// here; `Some(Err(path))` when it names one that cannot be read from here.
    pub fn of(process: &Process) -> Option<Result<Cgroup, String>> {
        let paths = fs::read_to_string(process.path("cgroup")).ok()?;
        let (path, v2) = memory_path(&paths)?;
        let ours = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        // Both files show cgroup paths as seen from our cgroup namespace, so the process's own
        // mount table matches its path too (from a sidecar: `/../app` for both).
        let theirs = fs::read_to_string(process.path("mountinfo")).unwrap_or_default();
        let found = [
            mounted(&ours, &path, v2, Path::new("/")),
            mounted(&theirs, &path, v2, &process.path("root")),
        ]
        .into_iter()
        .flatten()
        .find(|dir| dir.is_dir());
        Some(found.map(|dir| Cgroup { dir, v2 }).ok_or(path))
    }

    /// Its limit in bytes, `None` when there is none (`max`).
    fn limit(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        read_number(&self.dir.join(file))
    }

    /// Usage minus inactive page cache.
    fn working_set(&self) -> u64 {
        let (usage, inactive) = if self.v2 {
            ("memory.current", "inactive_file")
        } else {
            ("memory.usage_in_bytes", "total_inactive_file")
        };
        let usage = read_number(&self.dir.join(usage)).unwrap_or(0);
        let inactive = fs::read_to_string(self.dir.join("memory.stat"))
            .ok()
            .and_then(|t| field(&t, inactive))
            .unwrap_or(0);
        usage.saturating_sub(inactive)
    }
}

/// The memory cgroup's path in `/proc/PID/cgroup`: the v1 `memory` line, else the v2 `0::` line.
fn memory_path(text: &str) -> Option<(String, bool)> {
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some((path.to_owned(), false));
        }
        if id == "0" && controllers.is_empty() {
            v2 = Some((path.to_owned(), true));
        }
    }
    v2
}

/// Where cgroup `path` is, under `prefix`, by the mount table `mountinfo`: the mount point of
/// the hierarchy (v1 with the memory controller, or v2) whose root contains `path`.
fn mounted(mountinfo: &str, path: &str, v2: bool, prefix: &Path) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype), Some(options)) =
            (left.get(3), left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let wanted = match v2 {
            true => *fstype == "cgroup2",
            false => *fstype == "cgroup" && options.split(',').any(|o| o == "memory"),
        };
        if !wanted {
            continue;
        }
        let Some(rest) = path.strip_prefix(root.trim_end_matches('/')) else {
            continue;
        };
        // `/../x`: outside our cgroup namespace, not under this mount.
        if !(rest.is_empty() || rest.starts_with('/')) || rest.split('/').any(|p| p == "..") {
            continue;
        }
        let point = unescape(point);
        let mut dir = prefix.join(point.trim_start_matches('/'));
        for part in rest.split('/').filter(|p| !p.is_empty()) {
            dir.push(part);
        }
        return Some(dir);
    }
    None
}

/// `dir` and its parents up to the root of its hierarchy (the last directory that is a
/// cgroup). Some have no limit file (v2 cgroups that do not enable the memory controller for
/// their children); their parents are still walked.
fn ancestors(own: &Cgroup) -> Vec<Cgroup> {
    let mut all = Vec::new();
    let mut dir = Some(own.dir.as_path());
    while let Some(d) = dir.filter(|d| d.join("cgroup.procs").exists()) {
        all.push(Cgroup {
            dir: d.to_owned(),
            v2: own.v2,
        });
        dir = d.parent();
    }
    all
}

/// Octal escapes of the mount table (`\040` for a space).
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        match u8::from_str_radix(rest.get(at + 1..at + 4).unwrap_or(""), 8) {
            Ok(byte) => {
                out.push(byte as char);
                rest = &rest[at + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A number alone in a file; `max` (no limit) is `None`.
fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in `key value` lines.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// A `/proc/meminfo` figure in bytes.
fn meminfo(key: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|line| procfs::kb_value(line.strip_prefix(key)?.strip_prefix(':')?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_from_proc_files() {
        let v1 = "9:name=systemd:/\n4:memory:/process_api/87c2\n0::/\n";
        assert_eq!(memory_path(v1), Some(("/process_api/87c2".into(), false)));
        let v1_joint = "5:cpu,memory:/a\n";
        assert_eq!(memory_path(v1_joint), Some(("/a".into(), false)));
        let v2 = "0::/kubepods/pod1/ctr\n";
        assert_eq!(memory_path(v2), Some(("/kubepods/pod1/ctr".into(), true)));
        assert_eq!(memory_path("garbage"), None);

        let mountinfo = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                         41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                         50 31 0:39 /kubepods /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mounted(mountinfo, "/process_api/87c2", false, Path::new("/")),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/87c2"))
        );
        assert_eq!(
            mounted(mountinfo, "/x", true, Path::new("/proc/7/root")),
            Some(PathBuf::from("/proc/7/root/sys/fs/cgroup/unified/x"))
        );
        // Only the mount whose root holds the path; `/kubepodsX` is not under `/kubepods`.
        let only_k8s = "50 31 0:39 /kubepods /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            mounted(only_k8s, "/kubepods/pod1", true, Path::new("/")),
            Some(PathBuf::from("/mnt/my cg/pod1"))
        );
        assert_eq!(mounted(only_k8s, "/kubepodsX", true, Path::new("/")), None);
        assert_eq!(mounted(only_k8s, "/other", true, Path::new("/")), None);
        let ns = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(mounted(ns, "/../app", true, Path::new("/")), None);
    }

    #[test]
    fn keyed_numbers() {
        let events = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\n";
        assert_eq!(field(events, "max"), Some(17));
        assert_eq!(field(events, "oom_kill"), Some(1));
        assert_eq!(field(events, "oom"), Some(1));
        assert_eq!(field(events, "nope"), None);
        assert_eq!(snapshot_need(0, Some(0)), NEED_FIXED);
        assert_eq!(snapshot_need(100 << 20, Some(0)), (1600 << 20) + NEED_FIXED);
        assert_eq!(
            snapshot_need(100 << 20, Some(10 << 20)),
            ((90 * 16 + 10 * 160) << 20) + NEED_FIXED
        );
        // More in large objects than in use: the figures were read at two moments.
        assert_eq!(
            snapshot_need(1 << 20, Some(2 << 20)),
            (160 << 20) + NEED_FIXED
        );
        assert_eq!(snapshot_need(100 << 20, None), (6400 << 20) + NEED_FIXED);
        // What an earlier snapshot left in the app is reused (the process is this test's).
        let pid = Some(std::process::id());
        let first = Before::check(pid, 10 << 20, Some(0), 0, true).unwrap();
        let again = Before::check(pid, 10 << 20, Some(0), 100 << 20, true).unwrap();
        assert_eq!(first.need, (160 << 20) + NEED_FIXED);
        assert_eq!(again.need, (60 << 20) + NEED_FIXED);
        let all = Before::check(pid, 10 << 20, Some(0), 1 << 30, true).unwrap();
        assert_eq!(all.need, NEED_FIXED);
    }

    #[test]
    fn room_of_this_process() {
        let room = Room::of(std::process::id()).unwrap();
        assert!(room.free <= room.available);
        assert!(room.available > 0);
        assert!(!room.describe().is_empty());
    }
}
