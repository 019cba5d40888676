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
use crate::headroom::Before;
use crate::sampler;

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
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub path: PathBuf,
    pub bytes: u64,
    /// A GC ran before the snapshot (asked for, and the event loop was free to run it).
    pub gc_done: bool,
    /// Wall time of GC, graph building and transfer.
    pub seconds: f64,
    /// The memory check it passed (or was forced through).
    pub headroom: Before,
}

/// How long a snapshot may go without a message (the session's `timeout` is for ordinary
/// answers): V8 sends progress every 10,000 objects, but GC, and the step between graph and
/// serialisation, send nothing for a while on big heaps.
pub const SNAPSHOT_IDLE: Duration = Duration::from_secs(300);

/// Checks that a snapshot fits in the memory of the app of `session` (process `pid`, when
/// known), from its heap in use now, less `kept`, what it still holds from an earlier snapshot:
/// see [`headroom`](crate::headroom). Fails with what to do
/// instead unless `force`. Every snapshot goes through this: [`snapshot`] takes its answer.
pub fn check_room(
    session: &mut Session,
    pid: Option<u32>,
    kept: u64,
    force: bool,
) -> Result<Before, Error> {
    let heap = heap_usage(session)?;
    let large = session.node.then(|| large_objects(session)).flatten();
    // The PID the app sees for itself must be `pid`: a forwarded port (docker-proxy, `kubectl
    // port-forward`, `ssh -L`) belongs to the proxy, whose memory is not the app's.
    let pid = pid.filter(|&p| {
        session.node
            && evaluate(session, "process.pid", false)
                .ok()
                .and_then(|v| v.as_u64())
                == Some(u64::from(p))
    });
    Before::check(pid, heap.heap_used, large, kept, force)
}

/// V8's sampling heap profiler's default mean bytes between two samples (as DevTools').
pub const SAMPLING_INTERVAL: u64 = 32768;

/// The value of a JavaScript `expression` in the app, with the command line API (`require`)
/// only when `require` is set (it is set up for each evaluation: not for what `watch` asks at
/// every sample); an error when the inspector fails or the expression throws.
fn evaluate(
    session: &mut Session,
    expression: &str,
    require: bool,
) -> Result<serde_json::Value, Error> {
    let params = serde_json::json!({
        "expression": expression,
        "includeCommandLineAPI": require,
        "returnByValue": true,
        "silent": true,
    })
    .to_string();
    let answer = session.call("Runtime.evaluate", Some(&params))?;
    let bad = |detail: String| Error::BadMessage {
        what: expression.chars().take(40).collect(),
        detail,
    };
    let mut v: serde_json::Value =
        serde_json::from_str(answer.get()).map_err(|e| bad(e.to_string()))?;
    if v.get("exceptionDetails").is_some() {
        return Err(bad(format!("it threw: {}", answer.get())));
    }
    Ok(v["result"]["value"].take())
}

/// Bytes in V8's large-object spaces for JavaScript objects (`large_object_space`,
/// `new_large_object_space`: objects over 128 KiB each, such as long arrays, big Map tables and
/// long strings), from `v8.getHeapSpaceStatistics()`; `None` when the app cannot say (Node older
/// than 20.16 running an ES module has neither `process.getBuiltinModule` nor `require`).
pub fn large_objects(session: &mut Session) -> Option<u64> {
    let expression = "(process.getBuiltinModule ? process.getBuiltinModule('v8') : require('v8')).getHeapSpaceStatistics().filter(s => s.space_name === 'large_object_space' || s.space_name === 'new_large_object_space').reduce((sum, s) => sum + s.space_used_size, 0)";
    evaluate(session, expression, true)
        .ok()
        .and_then(|v| v.as_f64())
        .map(|b| b as u64)
}

/// Takes a heap snapshot into `path`, once [`check_room`] has said it fits: a full GC first if
/// `gc` (see [`collect_garbage`]; a busy event loop makes it wait up to the session timeout,
/// and `Snapshot::gc_done` says), then `takeHeapSnapshot`, its chunks written as they arrive to
/// `path.part` and renamed to `path` once complete. On any failure (the connection drops,
/// Ctrl-C) the partial file is removed, and if the app died the error says so and why. Watchers
/// are told (see [`sampler::snapshot_started`]). `bar` shows progress: objects while V8 builds
/// the graph, then bytes.
pub fn snapshot(
    session: &mut Session,
    headroom: Before,
    path: &Path,
    gc: bool,
    bar: &ProgressBar,
) -> Result<Snapshot, Error> {
    let start = Instant::now();
    let pid = headroom.pid();
    if let Some(pid) = pid {
        sampler::snapshot_started(pid);
    }
    let taken = (|| {
        let gc_done = gc && {
            bar.set_message("collecting garbage");
            collect_garbage(session)?
        };
        let bytes = write_private(path, |out| stream_snapshot(session, out, path, bar))?;
        Ok((gc_done, bytes))
    })();
    if let Some(pid) = pid {
        sampler::snapshot_done(pid);
    }
    let (gc_done, bytes) = taken.map_err(|e| headroom.explain(e))?;
    Ok(Snapshot {
        path: path.to_owned(),
        bytes,
        gc_done,
        seconds: start.elapsed().as_secs_f64(),
        headroom,
    })
}

/// Writes `path` (mode 0600) through `path.part`, renamed to `path` when `write` succeeds and
/// removed when it fails, so a file at `path` is always complete.
pub fn write_private<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut out = BufWriter::with_capacity(1 << 20, create_private(&partial)?);
    let result = write(&mut out).and_then(|value| {
        out.flush().map_err(|e| io_error(path, e))?;
        fs::rename(&partial, path).map_err(|e| io_error(path, e))?;
        Ok(value)
    });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

fn stream_snapshot(
    session: &mut Session,
    out: &mut BufWriter<File>,
    path: &Path,
    bar: &ProgressBar,
) -> Result<u64, Error> {
    #[derive(Deserialize)]
    struct Progress {
        done: u64,
        total: u64,
    }
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
        return Err(io_error(path, e));
    }
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
    if !session.node {
        return runtime_heap_usage(session);
    }
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
    let value = evaluate(session, "process.memoryUsage()", false)?;
    let m: MemoryUsage = serde_json::from_value(value).map_err(|e| Error::BadMessage {
        what: "process.memoryUsage()".into(),
        detail: e.to_string(),
    })?;
    Ok(HeapUsage {
        heap_used: m.heap_used,
        heap_total: m.heap_total,
        external: m.external,
        array_buffers: m.array_buffers,
        rss: m.rss,
    })
}

/// The heap figures a target without Node's `process` has (a browser page, Deno): V8's used
/// and total heap (`Runtime.getHeapUsage`), the backing stores as external memory; no RSS (0).
fn runtime_heap_usage(session: &mut Session) -> Result<HeapUsage, Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Usage {
        used_size: f64,
        total_size: f64,
        #[serde(default)]
        backing_storage_size: f64,
    }
    let raw = session.call("Runtime.getHeapUsage", None)?;
    let u: Usage = serde_json::from_str(raw.get()).map_err(|e| Error::BadMessage {
        what: "Runtime.getHeapUsage".into(),
        detail: e.to_string(),
    })?;
    Ok(HeapUsage {
        heap_used: u.used_size as u64,
        heap_total: u.total_size as u64,
        external: u.backing_storage_size as u64,
        array_buffers: 0,
        rss: 0,
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
        waited =
            session.pump(Duration::from_millis(200).min(duration.saturating_sub(start.elapsed())));
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
    // A profile nests as deep as the app's deepest stack: no recursion limit, and a stack that
    // grows on the heap as deserialisation descends.
    let mut de = serde_json::Deserializer::from_str(profile);
    de.disable_recursion_limit();
    let p = Profile::deserialize(serde_stacker::Deserializer::new(&mut de)).map_err(|e| {
        Error::BadMessage {
            what: "a sampling heap profile".into(),
            detail: e.to_string(),
        }
    })?;
    // The tree as (frame, parent) rows, then stacks built for the top rows only.
    let mut rows: Vec<(&CallFrame, usize, u64)> = Vec::new();
    let mut todo = vec![(&p.head, usize::MAX)];
    while let Some((node, parent)) = todo.pop() {
        rows.push((&node.call_frame, parent, node.self_size));
        let me = rows.len() - 1;
        todo.extend(node.children.iter().map(|c| (c, me)));
    }
    let total_bytes = rows.iter().map(|r| r.2).sum();
    let mut order: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].2 > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(rows[i].2));
    order.truncate(top);
    let stacks = order
        .into_iter()
        .map(|i| {
            let mut frames = Vec::new();
            let mut at = i;
            // Up to, not including, the synthetic `(root)`.
            while at != 0 {
                frames.push(rows[at].0.to_string());
                at = rows[at].1;
            }
            AllocationStack {
                bytes: rows[i].2,
                frames,
            }
        })
        .collect();
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
        // Deeper than serde_json's default recursion limit.
        let mut deep = String::new();
        for i in 0..500 {
            deep.push_str(&format!(r#"{{"callFrame":{{"functionName":"f{i}","url":"","lineNumber":0,"columnNumber":0}},"selfSize":1,"children":["#));
        }
        deep.push_str(&"]}".repeat(500));
        let deep = format!(r#"{{"head":{deep}}}"#);
        assert_eq!(summarize_profile(&deep, 1).unwrap().total_bytes, 500);
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
