//! Loading and analysing a snapshot, with a progress bar for slow loads and phase timings.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use heapsnap::{Analysis, Snapshot};

/// A snapshot with its analysis.
pub struct Loaded {
    pub name: String,
    pub snapshot: Snapshot,
    pub analysis: Analysis,
}

/// Reads and analyses `path` (`-` for stdin). With `timings`, prints each phase's time on stderr.
pub fn load(path: &Path, timings: bool) -> anyhow::Result<Loaded> {
    load_with(path, timings, None)
}

/// [`load`], naming plain objects with another snapshot's interface definitions (for the base
/// of a comparison).
pub fn load_with(
    path: &Path,
    timings: bool,
    interfaces: Option<&heapsnap::Interfaces>,
) -> anyhow::Result<Loaded> {
    let (name, mut snapshot, progress) = read_with_progress(path, timings)?;
    let analysis = heapsnap::analyze_with(&mut snapshot, interfaces);
    drop(progress);
    if timings {
        for (phase, time) in &analysis.timings {
            eprintln!("timing: {phase} {:.3}s", time.as_secs_f64());
        }
        eprintln!("timing: peak RSS after analysis {}", peak_rss());
    }
    Ok(Loaded {
        name,
        snapshot,
        analysis,
    })
}

/// Reads `path` without analysing it; returns its display name and the snapshot.
pub fn read(path: &Path, timings: bool) -> anyhow::Result<(String, Snapshot)> {
    let (name, snapshot, _progress) = read_with_progress(path, timings)?;
    Ok((name, snapshot))
}

/// [`read`], leaving the progress bar up (labelled "analysing") until the caller drops it.
fn read_with_progress(path: &Path, timings: bool) -> anyhow::Result<(String, Snapshot, Progress)> {
    let stdin = path == Path::new("-");
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let (input, total): (Box<dyn Read + Send>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
        let len = file.metadata().ok().map(|m| m.len());
        (Box::new(file), len)
    };
    let progress = Progress::start(total);
    let start = Instant::now();
    let counted = Counted {
        inner: input,
        read: progress.read.clone(),
    };
    let result = heapsnap::read(counted, &name);
    let parsed = start.elapsed();
    let parse_peak = peak_rss();
    progress.analysing();
    let snapshot = result?;
    if timings {
        eprintln!(
            "timing: parse {name} {:.3}s (peak RSS so far {})",
            parsed.as_secs_f64(),
            parse_peak
        );
    }
    Ok((name, snapshot, progress))
}

/// The process's peak resident set so far, from `/proc/self/status` (Linux only).
pub fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status").map_or_else(
        |_| "unknown".to_owned(),
        |s| crate::output::size(leakhound_live::procfs::Memory::parse(&s).rss_peak),
    )
}

/// Prints one more timing line, for the phases after loading.
pub fn timing(enabled: bool, phase: &str, since: Instant) {
    if enabled {
        eprintln!("timing: {phase} {:.3}s", since.elapsed().as_secs_f64());
    }
}

/// Counts the bytes read, for the progress bar.
struct Counted {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress bar on stderr that appears only when loading takes over a second and stderr is a
/// terminal.
struct Progress {
    read: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    analysing: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(total: Option<u64>) -> Progress {
        let read = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let analysing = Arc::new(AtomicBool::new(false));
        let thread = std::io::stderr().is_terminal().then(|| {
            let (read, done, analysing) = (read.clone(), done.clone(), analysing.clone());
            std::thread::spawn(move || draw(total, &read, &done, &analysing))
        });
        Progress {
            read,
            done,
            analysing,
            thread,
        }
    }

    /// Switches the bar's label from reading to analysing.
    fn analysing(&self) {
        self.analysing.store(true, Ordering::Relaxed);
    }
}

/// Stops and clears the bar, also when loading fails.
impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(total: Option<u64>, read: &AtomicU64, done: &AtomicBool, analysing: &AtomicBool) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        if done.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let bar = match total {
        Some(len) => indicatif::ProgressBar::new(len).with_style(
            indicatif::ProgressStyle::with_template(
                "{msg:10} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_message("reading");
    while !done.load(Ordering::Relaxed) {
        bar.set_position(read.load(Ordering::Relaxed));
        if analysing.load(Ordering::Relaxed) {
            bar.set_message("analysing");
        }
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
