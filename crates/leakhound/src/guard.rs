//! `watch --capture-on-growth`: evidence taken when a process's memory starts to grow, while
//! nobody is watching. Each capture runs on a thread of its own (the watch goes on sampling),
//! writes into a private directory, and never risks the process: a sampling heap profile costs
//! almost nothing; a heap snapshot is taken only when the memory check says it fits.

use std::fs;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use leakhound_live::attach::{Inspector, Limits};
use leakhound_live::capture::{self, Snapshot};
use leakhound_live::procfs::Process;
use leakhound_live::smaps::{self, MapsSample};
use leakhound_live::timeline::{Diagnosis, Verdict};
use leakhound_live::{Error, cdp};
use serde::Serialize;

use crate::commands::maps;

/// What `--capture-on-growth` was given.
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    pub every: Duration,
    pub profile: Duration,
    pub keep: usize,
    pub limits: Limits,
}

/// Groups shown in a capture's `maps.txt`.
const MAPS_TOP: usize = 30;

/// One capture, as the watch prints it and writes it to its JSON lines.
#[derive(Debug, Serialize)]
pub struct Capture {
    pub pid: u32,
    pub name: String,
    /// Seconds into the watch when it started.
    pub t: f64,
    /// The growth that set it off.
    pub reason: String,
    pub dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<PathBuf>,
    /// The top allocation site of the memory still alive at the end of the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_allocation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maps: Option<PathBuf>,
    /// What was not taken, and why.
    pub skipped: Vec<String>,
    pub seconds: f64,
}

impl Capture {
    /// One line for the watch's output.
    pub fn line(&self) -> String {
        let mut taken = Vec::new();
        if self.profile.is_some() {
            taken.push(match &self.top_allocation {
                Some(top) => format!("heap profile (top: {top})"),
                None => "heap profile".to_owned(),
            });
        }
        if let Some(s) = &self.snapshot {
            taken.push(format!("snapshot {}", crate::output::size(s.bytes)));
        }
        if self.maps.is_some() {
            taken.push("maps".to_owned());
        }
        let skipped = if self.skipped.is_empty() {
            String::new()
        } else {
            format!("; not taken: {}", self.skipped.join("; "))
        };
        format!(
            "capture: PID {} ({}) at {:.0} s, {} → {}: {}{skipped}",
            self.pid,
            self.name,
            self.t,
            self.reason,
            self.dir.display(),
            if taken.is_empty() {
                "nothing".to_owned()
            } else {
                taken.join(", ")
            },
        )
    }
}

/// The guard of one process.
pub struct Guard {
    settings: Settings,
    /// The maps when the watch began, to say what changed.
    baseline: Option<MapsSample>,
    last: Option<Instant>,
    running: Option<JoinHandle<Capture>>,
    pub captures: Vec<Capture>,
}

impl Guard {
    pub fn new(pid: u32, settings: Settings) -> Guard {
        Guard {
            settings,
            baseline: MapsSample::read(&Process { pid }).ok(),
            last: None,
            running: None,
            captures: Vec::new(),
        }
    }

    /// Starts a capture if `diagnosis` says a component grows, none runs, and the last one
    /// started at least `every` ago.
    pub fn consider(&mut self, pid: u32, name: &str, diagnosis: &Diagnosis, t: f64) {
        let grows = matches!(
            diagnosis.verdict,
            Verdict::JsLeak | Verdict::ExternalLeak | Verdict::NativeLeak
        );
        let due = self.last.is_none_or(|l| l.elapsed() >= self.settings.every);
        if !grows || !due || self.running.is_some() || cdp::interrupted() {
            return;
        }
        self.last = Some(Instant::now());
        let job = Job {
            pid,
            name: name.to_owned(),
            t,
            reason: diagnosis.evidence().to_owned(),
            settings: self.settings.clone(),
            baseline: self.baseline.clone(),
        };
        self.running = Some(thread::spawn(move || job.run()));
    }

    /// The capture that finished since the last call, if any; with `wait`, waits for a running
    /// one.
    pub fn finished(&mut self, wait: bool) -> Option<&Capture> {
        if !wait && !self.running.as_ref().is_some_and(JoinHandle::is_finished) {
            return None;
        }
        let capture = self.running.take()?.join().ok()?;
        self.captures.push(capture);
        self.captures.last()
    }
}

struct Job {
    pid: u32,
    name: String,
    t: f64,
    reason: String,
    settings: Settings,
    baseline: Option<MapsSample>,
}

impl Job {
    fn run(self) -> Capture {
        let start = Instant::now();
        let stem = format!("{}-", file_name(&self.name));
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let dir = self
            .settings
            .dir
            .join(format!("{stem}{}-{millis}", self.pid));
        let mut capture = Capture {
            pid: self.pid,
            name: self.name.clone(),
            t: self.t,
            reason: self.reason.clone(),
            dir: dir.clone(),
            profile: None,
            top_allocation: None,
            snapshot: None,
            maps: None,
            skipped: Vec::new(),
            seconds: 0.0,
        };
        // Not recursive: an entry already there (or a link planted there) is an error.
        if let Err(e) = fs::DirBuilder::new().mode(0o700).create(&dir) {
            capture
                .skipped
                .push(format!("everything: {}: {e}", dir.display()));
            return capture;
        }
        match self.maps(&dir) {
            Ok(path) => capture.maps = Some(path),
            Err(e) => capture.skipped.push(format!("maps: {e:#}")),
        }
        if let Err(e) = self.inspect(&dir, &mut capture) {
            capture.skipped.push(format!("heap: {e}"));
        }
        prune(&self.settings.dir, &stem, self.settings.keep);
        capture.seconds = start.elapsed().as_secs_f64();
        capture
    }

    /// `maps.json` (the sample, for `leakhound maps --diff`) and `maps.txt` (the breakdown and
    /// what changed since the watch began).
    fn maps(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        let process = Process::new(self.pid)?;
        let regions = smaps::read(&process)?;
        let now = MapsSample::of(self.pid, &regions);
        let json = dir.join("maps.json");
        capture::write_private(&json, |out| {
            serde_json::to_writer_pretty(out, &now).map_err(|e| Error::Io {
                path: json.clone(),
                source: e.into(),
            })
        })?;
        let text = dir.join("maps.txt");
        capture::write_private(&text, |out| {
            let io = |e| Error::Io {
                path: text.clone(),
                source: e,
            };
            maps::write_groups(out, &now, &smaps::breakdown(&regions), MAPS_TOP).map_err(io)?;
            if let Some(before) = &self.baseline {
                let seconds = now.unix_ms.saturating_sub(before.unix_ms) as f64 / 1000.0;
                writeln!(out, "\nChanges over {seconds:.0} s, since the watch began:")
                    .map_err(io)?;
                maps::write_changes(out, &smaps::diff(before, &now), MAPS_TOP).map_err(io)?;
            }
            Ok(())
        })?;
        Ok(text)
    }

    /// The sampling heap profile, then the snapshot if it fits, through the inspector (opened
    /// with SIGUSR1 if it is closed, and closed again). One process at a time: two snapshots
    /// checked against the same free memory could not both fit, and two processes opened with
    /// SIGUSR1 at once would race for the same port.
    fn inspect(&self, dir: &Path, capture: &mut Capture) -> Result<(), Error> {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let inspector = Inspector::of_pid(self.pid, self.settings.limits)?;
        let mut session = match inspector.session() {
            Ok(s) => s,
            Err(e) => {
                inspector.finish(None)?;
                return Err(e);
            }
        };
        let taken = self.take(&mut session, dir, capture);
        let closed = inspector.finish(Some(session));
        taken.and(closed)
    }

    fn take(
        &self,
        session: &mut cdp::Session,
        dir: &Path,
        capture: &mut Capture,
    ) -> Result<(), Error> {
        let hidden = indicatif::ProgressBar::hidden();
        let profile = capture::sample_allocations(
            session,
            self.settings.profile,
            capture::SAMPLING_INTERVAL,
            &hidden,
        )?;
        let path = dir.join("profile.heapprofile");
        capture::write_private(&path, |out| {
            out.write_all(profile.get().as_bytes())
                .map_err(|e| Error::Io {
                    path: path.clone(),
                    source: e,
                })
        })?;
        capture.profile = Some(path);
        if let Ok(summary) = capture::summarize_profile(profile.get(), 1)
            && let Some(top) = summary.stacks.first()
        {
            capture.top_allocation = Some(format!(
                "{} in {}",
                crate::output::size(top.bytes),
                top.frames.first().map_or("(root)", String::as_str)
            ));
        }
        // An app that finished waits for us to go: no snapshot to hold it.
        if session.app_finished {
            capture.skipped.push("snapshot: the app is exiting".into());
            return Ok(());
        }
        match capture::check_room(session, Some(self.pid), 0, false) {
            Ok(headroom) => {
                let path = dir.join("snapshot.heapsnapshot");
                capture.snapshot =
                    Some(capture::snapshot(session, headroom, &path, true, &hidden)?);
            }
            Err(Error::NoRoom(short)) => capture.skipped.push(format!(
                "snapshot: it needs about {}, {} free",
                short.need, short.free
            )),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// `name` as a file name: letters, digits, `.`, `_` and `-`.
fn file_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean.trim_start_matches('.').chars().take(40).collect()
}

/// Deletes the captures `STEM{PID}-{MILLIS}` in `dir` (of one process name, across restarts)
/// but the newest `keep`, and the newest with a snapshot if none of those has one: near an OOM
/// the last captures often could not take one.
fn prune(dir: &Path, stem: &str, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut ours: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (pid, time) = name.strip_prefix(stem)?.split_once('-')?;
            pid.parse::<u32>().ok()?;
            Some((time.parse().ok()?, e.path()))
        })
        .collect();
    ours.sort();
    let has_snapshot = |p: &Path| p.join("snapshot.heapsnapshot").exists();
    let old = ours.len().saturating_sub(keep);
    let (old, kept) = ours.split_at(old);
    let spare = match kept.iter().any(|(_, p)| has_snapshot(p)) {
        true => None,
        false => old.iter().rposition(|(_, p)| has_snapshot(p)),
    };
    for (i, (_, path)) in old.iter().enumerate() {
        if Some(i) != spare {
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_pruned_to_the_newest() {
        let dir = std::env::temp_dir().join(format!("leakhound-prune-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for name in [
            "app.js-7-100",
            "app.js-7-300",
            "app.js-8-200",
            "app.js-worker-7-50",
            "other",
        ] {
            fs::create_dir_all(dir.join(name)).unwrap();
        }
        let left = || {
            let mut left: Vec<String> = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            left.sort();
            left
        };
        // Across PIDs of one name; another name and other entries untouched.
        prune(&dir, "app.js-", 2);
        assert_eq!(
            left(),
            [
                "app.js-7-300",
                "app.js-8-200",
                "app.js-worker-7-50",
                "other"
            ]
        );
        // The newest capture with a snapshot stays when the newer ones have none.
        fs::write(dir.join("app.js-8-200/snapshot.heapsnapshot"), "").unwrap();
        fs::create_dir_all(dir.join("app.js-9-400")).unwrap();
        prune(&dir, "app.js-", 1);
        assert_eq!(
            left(),
            [
                "app.js-8-200",
                "app.js-9-400",
                "app.js-worker-7-50",
                "other"
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(file_name("../my app.js"), "_my_app.js");
    }
}
