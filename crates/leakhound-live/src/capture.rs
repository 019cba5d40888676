//! What we take from a live process through a session: heap snapshots streamed to disk, heap
//! usage, and sampling heap profiles.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Error;
use crate::cdp::{self, Session};

/// Creates (or truncates) `path` readable by its owner only: snapshots and profiles hold the
/// app's data, secrets included.
pub fn create_private(path: &Path) -> Result<File, Error> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    // `mode` applies only to a new file; an old one keeps its bits unless we set them.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| io_error(path, e))?;
    Ok(file)
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A full GC. V8 runs `HeapProfiler.collectGarbage` as a task on the event loop, so an app
/// busy in a JavaScript loop answers only when the loop ends (unlike the snapshot, which runs
/// in an interrupt). Returns `false` when no answer came within the session's timeout; a
/// snapshot then still collects garbage itself, as every V8 snapshot does.
pub fn collect_garbage(session: &mut Session) -> Result<bool, Error> {
    match session.call("HeapProfiler.collectGarbage", None) {
        Ok(_) => Ok(true),
        Err(Error::NoAnswer { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A snapshot written to disk.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub path: PathBuf,
    pub bytes: u64,
    /// A GC ran before the snapshot (asked for, and the event loop was free to run it).
    pub gc_done: bool,
    /// Wall time of GC, graph building and transfer.
    pub seconds: f64,
}

/// How long a snapshot may go without a message: V8 sends progress every 10,000 objects, but
/// GC, and the step between graph and serialisation, send nothing for a while on big heaps.
const SNAPSHOT_IDLE: Duration = Duration::from_secs(300);

/// Takes a heap snapshot into `path`: a full GC first if `gc` (see [`collect_garbage`]; a busy
/// event loop makes it wait up to the session timeout, and `Snapshot::gc_done` says), then `takeHeapSnapshot`, its
/// chunks written as they arrive to `path.part` and renamed to `path` once complete. On any
/// failure (the connection drops, Ctrl-C) the partial file is removed. `bar` shows progress:
/// objects while V8 builds the graph, then bytes.
pub fn snapshot(
    session: &mut Session,
    path: &Path,
    gc: bool,
    bar: &ProgressBar,
) -> Result<Snapshot, Error> {
    let start = Instant::now();
    let gc_done = gc && {
        bar.set_message("collecting garbage");
        collect_garbage(session)?
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let result = stream_snapshot(session, &partial, bar);
    match result {
        Ok(bytes) => {
            fs::rename(&partial, path).map_err(|e| io_error(path, e))?;
            Ok(Snapshot {
                path: path.to_owned(),
                bytes,
                gc_done,
                seconds: start.elapsed().as_secs_f64(),
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn stream_snapshot(session: &mut Session, partial: &Path, bar: &ProgressBar) -> Result<u64, Error> {
    #[derive(Deserialize)]
    struct Progress {
        done: u64,
        total: u64,
    }
    let mut out = BufWriter::with_capacity(1 << 20, create_private(partial)?);
    let mut bytes = 0u64;
    let mut write_error = None;
    bar.set_message("building the heap graph");
    session.call_with(
        "HeapProfiler.takeHeapSnapshot",
        Some(r#"{"reportProgress":true}"#),
        SNAPSHOT_IDLE.max(session.timeout),
        &mut |event| {
            match event.method {
                "HeapProfiler.reportHeapSnapshotProgress" => {
                    if let Ok(p) = serde_json::from_str::<Progress>(event.params.get()) {
                        bar.set_length(p.total);
                        bar.set_position(p.done);
                    }
                }
                "HeapProfiler.addHeapSnapshotChunk" => {
                    let chunk = cdp::chunk_text(event.params)?;
                    if bytes == 0 {
                        bar.set_message("receiving");
                        bar.set_length(0);
                        bar.set_position(0);
                    }
                    bytes += chunk.len() as u64;
                    bar.set_position(bytes);
                    // Keep reading on a full disk: V8 cannot be stopped, and an unread socket
                    // makes the app buffer the whole snapshot in memory.
                    if write_error.is_none()
                        && let Err(e) = out.write_all(chunk.as_bytes())
                    {
                        write_error = Some(e);
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    if let Some(e) = write_error {
        return Err(io_error(partial, e));
    }
    out.flush().map_err(|e| io_error(partial, e))?;
    if bytes == 0 {
        return Err(Error::BadMessage {
            what: "HeapProfiler.takeHeapSnapshot".into(),
            detail: "the snapshot arrived empty".into(),
        });
    }
    Ok(bytes)
}

/// The heap figures of the app: V8's (`Runtime.getHeapUsage`) and Node's
/// (`process.memoryUsage()`), in bytes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct HeapUsage {
    pub heap_used: u64,
    pub heap_total: u64,
    /// Memory of C++ objects bound to JS objects, ArrayBuffers included.
    pub external: u64,
    pub array_buffers: u64,
    pub rss: u64,
}

pub fn heap_usage(session: &mut Session) -> Result<HeapUsage, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct MemoryUsage {
        rss: u64,
        heap_total: u64,
        heap_used: u64,
        external: u64,
        #[serde(default)]
        array_buffers: u64,
    }
    #[derive(Deserialize)]
    struct Evaluated {
        result: Value,
    }
    #[derive(Deserialize)]
    struct Value {
        value: MemoryUsage,
    }
    let answer = session.call(
        "Runtime.evaluate",
        Some(r#"{"expression":"process.memoryUsage()","returnByValue":true,"silent":true}"#),
    )?;
    let m = serde_json::from_str::<Evaluated>(answer.get())
        .map_err(|e| Error::BadMessage {
            what: "process.memoryUsage()".into(),
            detail: format!("{e} in {}", answer.get()),
        })?
        .result
        .value;
    Ok(HeapUsage {
        heap_used: m.heap_used,
        heap_total: m.heap_total,
        external: m.external,
        array_buffers: m.array_buffers,
        rss: m.rss,
    })
}

/// Runs the sampling heap profiler for `duration`, sampling one allocation per `interval`
/// bytes on average, and returns the profile of the allocations still alive at the end (the
/// JSON DevTools opens as a `.heapprofile`).
pub fn sample_allocations(
    session: &mut Session,
    duration: Duration,
    interval: u64,
    bar: &ProgressBar,
) -> Result<Box<RawValue>, Error> {
    let params = format!(r#"{{"samplingInterval":{interval}}}"#);
    session.call("HeapProfiler.startSampling", Some(&params))?;
    let start = Instant::now();
    bar.set_length(duration.as_millis() as u64);
    // Ends early when the app finishes (it waits for us then) or on Ctrl-C; sampling is
    // stopped in every case, as it costs the app.
    let mut waited = Ok(());
    while start.elapsed() < duration && !session.app_finished && waited.is_ok() {
        waited = session.pump(Duration::from_millis(200).min(duration - start.elapsed()));
        bar.set_position(start.elapsed().as_millis() as u64);
    }
    let answer = session.call("HeapProfiler.stopSampling", None);
    waited?;
    let answer = answer?;
    #[derive(Deserialize)]
    struct Stopped {
        profile: Box<RawValue>,
    }
    serde_json::from_str::<Stopped>(answer.get())
        .map(|s| s.profile)
        .map_err(|e| Error::BadMessage {
            what: "HeapProfiler.stopSampling".into(),
            detail: e.to_string(),
        })
}

/// A frame of a sampling profile (`Runtime.CallFrame`); line and column are 0-based.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallFrame {
    pub function_name: String,
    pub url: String,
    pub line_number: i64,
    pub column_number: i64,
}

impl std::fmt::Display for CallFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let name = if self.function_name.is_empty() {
            "(anonymous)"
        } else {
            &self.function_name
        };
        if self.url.is_empty() {
            f.write_str(name)
        } else {
            // 1-based, as editors and DevTools show them.
            write!(
                f,
                "{name} ({}:{}:{})",
                self.url,
                self.line_number + 1,
                self.column_number + 1
            )
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileNode {
    call_frame: CallFrame,
    self_size: u64,
    #[serde(default)]
    children: Vec<ProfileNode>,
}

/// One allocating stack of a sampling profile: the bytes still alive that it allocated.
#[derive(Debug, Clone, Serialize)]
pub struct AllocationStack {
    pub bytes: u64,
    /// Innermost frame first.
    pub frames: Vec<String>,
}

/// The summary of a sampling profile: total live bytes sampled and the `top` stacks by bytes.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    pub total_bytes: u64,
    pub stacks: Vec<AllocationStack>,
}

/// Summarises a `.heapprofile` (`{"head": …, "samples": …}`).
pub fn summarize_profile(profile: &str, top: usize) -> Result<ProfileSummary, Error> {
    #[derive(Deserialize)]
    struct Profile {
        head: ProfileNode,
    }
    let p: Profile = serde_json::from_str(profile).map_err(|e| Error::BadMessage {
        what: "a sampling heap profile".into(),
        detail: e.to_string(),
    })?;
    let mut stacks = Vec::new();
    let mut path = Vec::new();
    // Depth-first without recursion: profiles of deep recursions are deep.
    let mut todo = vec![(&p.head, 0usize)];
    while let Some((node, depth)) = todo.pop() {
        path.truncate(depth);
        path.push(&node.call_frame);
        if node.self_size > 0 {
            stacks.push(AllocationStack {
                bytes: node.self_size,
                // Skip the synthetic `(root)`.
                frames: path.iter().skip(1).rev().map(|f| f.to_string()).collect(),
            });
        }
        todo.extend(node.children.iter().map(|c| (c, depth + 1)));
    }
    let total_bytes = stacks.iter().map(|s| s.bytes).sum();
    stacks.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.frames.cmp(&b.frames)));
    stacks.truncate(top);
    Ok(ProfileSummary {
        total_bytes,
        stacks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_summary() {
        let profile = r#"{"head":{"callFrame":{"functionName":"(root)","scriptId":"0","url":"","lineNumber":-1,"columnNumber":-1},"selfSize":0,"id":1,"children":[
            {"callFrame":{"functionName":"handle","scriptId":"81","url":"file:///app.js","lineNumber":3,"columnNumber":15},"selfSize":100,"id":4,"children":[
                {"callFrame":{"functionName":"repeat","scriptId":"0","url":"","lineNumber":-1,"columnNumber":-1},"selfSize":300,"id":5,"children":[]}]},
            {"callFrame":{"functionName":"","scriptId":"82","url":"file:///b.js","lineNumber":0,"columnNumber":0},"selfSize":50,"id":6,"children":[]}]},
            "samples":[]}"#;
        let s = summarize_profile(profile, 2).unwrap();
        assert_eq!(s.total_bytes, 450);
        assert_eq!(s.stacks.len(), 2);
        assert_eq!(s.stacks[0].bytes, 300);
        assert_eq!(
            s.stacks[0].frames,
            ["repeat", "handle (file:///app.js:4:16)"]
        );
        assert_eq!(s.stacks[1].frames, ["handle (file:///app.js:4:16)"]);
        assert!(summarize_profile("{}", 1).is_err());
    }
}
