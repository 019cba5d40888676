//! The tools that act on live processes or files the commands read once (`capture`, `hunt`,
//! `watch_sample`, `maps`, `core`): each runs the command itself as a child process with
//! `--json`. The same code and error text as the command line, and the child's stdout cannot
//! reach the protocol channel.
//!
//! A child never outlives what asked for it: it is sent SIGTERM when the client cancels the
//! call, when the session ends, and (by the kernel, `PR_SET_PDEATHSIG`) when the server dies;
//! `hunt` stops the app it started on SIGTERM. Its stderr lines are the call's progress.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::params::*;

/// What a running call can be told and can tell.
pub struct Control {
    /// Set when the client cancels the call.
    pub cancelled: AtomicBool,
    /// The child's stderr lines as they come, for progress notifications.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

/// The children running now, to stop when the session ends.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends SIGTERM to every child still running (the session is over).
pub fn stop_all() {
    let children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for &pid in children.iter() {
        terminate(pid);
    }
}

fn terminate(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// How a child ended early.
enum Stopped {
    Limit,
    Cancelled,
}

/// Runs `leakhound ARGS…` (`--json` added after the subcommand) in `dir`, for at most `limit`;
/// its JSON output, or its error text. `ok_codes` are the exit codes of success (hunt exits
/// 1 when it finds a leak). `on_stop` adds what a stopped child leaves behind to the error.
fn run_json(
    args: &[String],
    dir: Option<&PathBuf>,
    limit: Duration,
    ok_codes: &[i32],
    control: &Control,
    on_stop: &dyn Fn() -> String,
) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("cannot find leakhound's own executable")?;
    // `--json` right after the subcommand: anything after `--` is the app's command line.
    let (command, rest) = args.split_first().context("no command")?;
    let mut child = Command::new(exe);
    child
        .arg(command)
        .arg("--json")
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        child.current_dir(dir);
    }
    // SAFETY: only prctl, a system call, between fork and exec.
    unsafe {
        child.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            Ok(())
        });
    }
    let mut child = child
        .spawn()
        .with_context(|| format!("cannot start leakhound {command}"))?;
    let pid = child.id();
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner()).push(pid);
    // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let progress = control.progress.clone();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(p) = &progress {
                let _ = p.send(line.clone());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let started = Instant::now();
    let stopped = loop {
        if let Some(status) = child.try_wait()? {
            break Ok(status);
        }
        let why = if control.cancelled.load(Ordering::Relaxed) {
            Stopped::Cancelled
        } else if started.elapsed() > limit {
            Stopped::Limit
        } else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        // SIGTERM first: hunt stops the app it started and cleans up on it.
        terminate(pid);
        let grace = Instant::now();
        while child.try_wait()?.is_none() && grace.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        break Err(why);
    };
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
    let stdout = out.join().expect("reader thread")?;
    let stderr = err.join().expect("reader thread");
    let messages = stderr.trim();
    let status = match stopped {
        Ok(status) => status,
        Err(why) => {
            let what = match why {
                Stopped::Limit => format!("did not finish within {} s", limit.as_secs()),
                Stopped::Cancelled => "was cancelled".to_owned(),
            };
            anyhow::bail!(
                "leakhound {command} {what} and was stopped{}{}",
                on_stop(),
                tail(messages)
            );
        }
    };
    let code = status.code().unwrap_or(-1);
    if !ok_codes.contains(&code) {
        let text = messages.strip_prefix("error: ").unwrap_or(messages);
        anyhow::bail!(
            "{}",
            if text.is_empty() {
                format!("leakhound {command} exited with {status}")
            } else {
                flags_as_arguments(text)
            }
        );
    }
    let mut value = trimmed(
        serde_json::from_str(&stdout)
            .with_context(|| format!("leakhound printed no JSON; its messages:\n{messages}"))?,
    );
    if let (Some(object), false) = (value.as_object_mut(), messages.is_empty()) {
        object.insert("messages".into(), Value::String(messages.to_owned()));
    }
    Ok(value)
}

/// The last lines of a child's messages, for an error.
fn tail(messages: &str) -> String {
    let lines: Vec<&str> = messages.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "; its last messages:\n{}",
        lines[lines.len().saturating_sub(8)..].join("\n")
    )
}

/// The command line's hints name flags; the tools take arguments by other names, and some
/// flags have no argument here.
fn flags_as_arguments(text: &str) -> String {
    let mut text = text
        .replace("--url URL (repeatable)", "url (a list)")
        .replace("--url", "url")
        .replace("--out", "out")
        .replace("--requests", "requests")
        .replace("--rounds", "rounds");
    if text.contains("--load") || text.contains("--allow-remote") || text.contains("--pid") {
        text.push_str(
            "\n(through this tool: url, requests, rounds, method, headers, body, cwd, out; \
             --load, --allow-remote and --pid are only on the command line: `leakhound hunt`)",
        );
    }
    text
}

/// The most items a live tool's answer lists in any one array; the full report stays in the
/// files the command wrote.
pub const MAX_ITEMS: usize = 20;

/// Cuts every array in `value` longer than [`MAX_ITEMS`], and lists what was cut (by JSON
/// path, with its length) under `truncated`. A hunt's timeline is dropped whole: it is in
/// report.json and report.html, and grows with the hunt's length.
pub fn trimmed(mut value: Value) -> Value {
    fn cut(value: &mut Value, path: &str, truncated: &mut serde_json::Map<String, Value>) {
        match value {
            Value::Array(items) => {
                if items.len() > MAX_ITEMS {
                    truncated.insert(path.to_owned(), items.len().into());
                    items.truncate(MAX_ITEMS);
                }
                for (i, item) in items.iter_mut().enumerate() {
                    cut(item, &format!("{path}[{i}]"), truncated);
                }
            }
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    cut(field, &format!("{path}.{name}"), truncated);
                }
            }
            _ => {}
        }
    }
    let mut truncated = serde_json::Map::new();
    if let Some(timeline) = value.get_mut("timeline") {
        *timeline =
            Value::String("left out: see report.json or report.html in the run directory".into());
    }
    cut(&mut value, "$", &mut truncated);
    if let (Some(object), false) = (value.as_object_mut(), truncated.is_empty()) {
        object.insert("truncated".into(), Value::Object(truncated));
    }
    value
}

fn target_args(pid: Option<u32>, inspect: &Option<String>) -> anyhow::Result<Vec<String>> {
    match (pid, inspect) {
        (Some(pid), None) => Ok(vec!["--pid".into(), pid.to_string()]),
        (None, Some(addr)) => Ok(vec!["--inspect".into(), addr.clone()]),
        _ => anyhow::bail!("give either pid or inspect (HOST:PORT)"),
    }
}

fn nothing_left() -> String {
    String::new()
}

pub fn capture(p: &CaptureParams, control: &Control) -> anyhow::Result<Value> {
    let mut args = vec!["capture".to_owned()];
    args.extend(target_args(p.pid, &p.inspect)?);
    if let Some(out) = &p.output {
        args.extend(["--output".into(), out.display().to_string()]);
    }
    if p.force {
        args.push("--force".into());
    }
    if p.core {
        args.push("--core".into());
    }
    let mut limit = Duration::from_secs(if p.core { 1800 } else { 600 });
    if let Some(seconds) = p.sample_allocations_seconds {
        let seconds = seconds.clamp(1, 300);
        args.extend(["--sample-allocations".into(), format!("{seconds}s")]);
        limit += Duration::from_secs(seconds);
    }
    run_json(&args, None, limit, &[0], control, &nothing_left)
}

pub fn hunt(p: &HuntParams, control: &Control) -> anyhow::Result<Value> {
    if p.command.is_empty() {
        anyhow::bail!(
            "command is empty: give the app's command line, e.g. [\"node\", \"server.js\"]"
        );
    }
    let requests = p.requests.unwrap_or(500).clamp(1, 20_000);
    let rounds = p.rounds.unwrap_or(2).clamp(2, 4);
    let limit = Duration::from_secs(p.time_limit_seconds.unwrap_or(300).clamp(30, 1800));
    // The run directory is named here, so that a hunt stopped at its limit can say where its
    // snapshots are.
    let base = match &p.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("no current directory")?,
    };
    let out = match &p.out {
        Some(out) => base.join(out),
        None => base.join(format!("leakhound-hunt-{}", crate::live::unix_time())),
    };
    // Each load round gets its share of the time, the warm-up included, with a quarter of the
    // limit kept for snapshots and the analysis.
    let round = (limit * 3 / 4 / (rounds + 1)).max(Duration::from_secs(5));
    let mut args = vec![
        "hunt".to_owned(),
        "--requests".into(),
        requests.to_string(),
        "--rounds".into(),
        rounds.to_string(),
        "--top".into(),
        p.top.unwrap_or(5).clamp(1, 50).to_string(),
        "--round-time-limit".into(),
        format!("{}s", round.as_secs()),
        "--out".into(),
        out.display().to_string(),
    ];
    for url in &p.url {
        args.extend(["--url".into(), url.clone()]);
    }
    if let Some(method) = &p.method {
        args.extend(["--method".into(), method.clone()]);
    }
    for header in &p.headers {
        args.extend(["--header".into(), header.clone()]);
    }
    if let Some(body) = &p.body {
        args.extend(["--body".into(), body.clone()]);
    }
    if p.no_native {
        args.push("--no-native".into());
    }
    args.push("--".into());
    args.extend(p.command.iter().cloned());
    let left = || {
        let snapshots: Vec<String> = std::fs::read_dir(&out)
            .map(|entries| {
                let mut found: Vec<String> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "heapsnapshot"))
                    .map(|p| p.display().to_string())
                    .collect();
                found.sort();
                found
            })
            .unwrap_or_default();
        format!(
            "; the run directory is {}; snapshots taken: {}",
            out.display(),
            if snapshots.len() >= 2 {
                format!("{} (the `leaks` tool reads them)", snapshots.join(", "))
            } else if snapshots.is_empty() {
                "none".to_owned()
            } else {
                snapshots.join(", ")
            }
        )
    };
    run_json(&args, p.cwd.as_ref(), limit, &[0, 1], control, &left)
}

pub fn core(p: &CoreParams, control: &Control) -> anyhow::Result<Value> {
    let mut args = vec![
        "core".to_owned(),
        p.core.display().to_string(),
        "--top".into(),
        p.top.unwrap_or(30).clamp(1, MAX_ITEMS).to_string(),
    ];
    if let Some(node) = &p.node {
        args.extend(["--node".into(), node.display().to_string()]);
    }
    if let Some(diff) = &p.diff {
        args.extend(["--diff".into(), diff.display().to_string()]);
    }
    let mut value = run_json(
        &args,
        None,
        Duration::from_secs(600),
        &[0],
        control,
        &nothing_left,
    )?;
    // The census's own row list repeats `classes` in another order: one is enough.
    if let Some(census) = value.get_mut("census").and_then(Value::as_object_mut) {
        census.remove("rows");
    }
    Ok(value)
}

pub fn watch_sample(p: &WatchParams, control: &Control) -> anyhow::Result<Value> {
    // Three seconds is the shortest window that gives a verdict.
    let seconds = p.seconds.unwrap_or(3).clamp(1, 60);
    let interval = if seconds <= 5 { "500ms" } else { "1s" };
    let args = vec![
        "watch".to_owned(),
        "--pid".into(),
        p.pid.to_string(),
        "--interval".into(),
        interval.into(),
        "--duration".into(),
        format!("{seconds}s"),
    ];
    run_json(
        &args,
        None,
        Duration::from_secs(seconds + 60),
        &[0],
        control,
        &nothing_left,
    )
}

pub fn maps(p: &MapsParams, control: &Control) -> anyhow::Result<Value> {
    let mut args = vec![
        "maps".to_owned(),
        "--pid".into(),
        p.pid.to_string(),
        "--top".into(),
        p.top.unwrap_or(MAX_ITEMS).clamp(1, MAX_ITEMS).to_string(),
    ];
    if let Some(diff) = &p.diff {
        args.extend(["--diff".into(), diff.display().to_string()]);
    }
    if let Some(save) = &p.save {
        args.extend(["--save".into(), save.display().to_string()]);
    }
    run_json(
        &args,
        None,
        Duration::from_secs(120),
        &[0],
        control,
        &nothing_left,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_lists_are_cut_and_said_to_be() {
        let long: Vec<u32> = (0..30).collect();
        let value = trimmed(json!({
            "timeline": [1, 2, 3],
            "native": { "sites": long, "short": [1, 2] },
            "clusters": [{ "members": long }],
        }));
        assert_eq!(
            value["native"]["sites"].as_array().unwrap().len(),
            MAX_ITEMS
        );
        assert_eq!(value["native"]["short"], json!([1, 2]));
        assert_eq!(value["truncated"]["$.native.sites"], 30);
        assert_eq!(value["truncated"]["$.clusters[0].members"], 30);
        assert!(value["timeline"].as_str().unwrap().contains("report.json"));
    }

    #[test]
    fn hints_name_the_tools_arguments() {
        let text = flags_as_arguments(
            "give the load: --url URL (repeatable) for the built-in driver, or --load CMD",
        );
        assert!(
            text.starts_with("give the load: url (a list) for"),
            "{text}"
        );
        assert!(text.contains("only on the command line"), "{text}");
    }
}
