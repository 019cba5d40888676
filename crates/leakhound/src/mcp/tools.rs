//! What each MCP tool does, synchronously: a thin call into what the commands do, with answers
//! cut to a page (`top` rows from `cursor` on, and the `next` cursor).
//!
//! Snapshot tools run here, on snapshots kept in the [`Cache`]. Tools that act on a live
//! process (`capture`, `hunt`, `watch_sample`, `maps`) run the command itself as a child
//! process with `--json`: the same code, the same error text, and stdout, which is this
//! server's protocol channel, cannot be written to by accident.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};

use super::cache::{Cache, Hit, Key};
use super::params::*;
use crate::cli::{OutputArgs, RetainersArgs};
use crate::sources::Disk;
use heapsnap::code::Positions;

/// The most rows one answer holds, whatever `top` asks.
const MAX_TOP: usize = 200;

/// The page `[from, to)` of `len` rows that `cursor` and `top` ask for (`default` rows when
/// `top` is not given), and the cursor of the next page if there is one.
fn bounds(
    len: usize,
    cursor: Option<&str>,
    top: Option<usize>,
    default: usize,
) -> anyhow::Result<(usize, usize, Option<String>)> {
    let from = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|&c| c <= len)
            .with_context(|| {
                format!("cursor {c:?} is not one this server gave (pass `next` from an answer)")
            })?,
    };
    let top = top.unwrap_or(default).clamp(1, MAX_TOP);
    let to = (from + top).min(len);
    Ok((from, to, (to < len).then(|| to.to_string())))
}

/// [`bounds`], as the rows themselves.
fn page<T: Serialize>(
    rows: &[T],
    cursor: Option<&str>,
    top: Option<usize>,
    default: usize,
) -> anyhow::Result<(Value, Option<String>)> {
    let (from, to, next) = bounds(rows.len(), cursor, top, default)?;
    Ok((serde_json::to_value(&rows[from..to])?, next))
}

/// The fields every snapshot answer starts with.
fn about(snapshot: &super::cache::Snapshot, hit: Hit) -> Value {
    let loaded = &snapshot.loaded;
    json!({
        "file": loaded.name,
        "node_count": loaded.snapshot.node_count(),
        "edge_count": loaded.snapshot.edge_count(),
        "total_size": loaded.analysis.total_size,
        "cache": hit,
    })
}

fn with(mut base: Value, fields: Value) -> Value {
    if let (Some(base), Value::Object(fields)) = (base.as_object_mut(), fields) {
        base.extend(fields);
    }
    base
}

pub fn summary(cache: &Cache, p: &SummaryParams) -> anyhow::Result<Value> {
    let filter = p
        .class
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("class is not a valid regular expression")?;
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let (s, a) = (&snapshot.loaded.snapshot, &snapshot.loaded.analysis);
    let mut classes = heapsnap::summary(s, a);
    if let Some(re) = &filter {
        classes.retain(|c| re.is_match(&c.name));
    }
    match p.sort.unwrap_or_default() {
        SortBy::Retained => {}
        SortBy::Shallow => classes.sort_by_key(|c| std::cmp::Reverse(c.shallow_size)),
        SortBy::Count => classes.sort_by_key(|c| std::cmp::Reverse(c.count)),
    }
    let (from, to, next) = bounds(classes.len(), p.cursor.as_deref(), p.top, 20)?;
    crate::commands::summary::originals(s, &mut classes[from..to], &Disk::default());
    Ok(with(
        about(&snapshot, hit),
        json!({
            "statistics": heapsnap::statistics(s, a),
            "class_count": classes.len(),
            "classes": classes[from..to],
            "next": next,
        }),
    ))
}

pub fn stats(cache: &Cache, p: &SnapshotParams) -> anyhow::Result<Value> {
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let (s, a) = (&snapshot.loaded.snapshot, &snapshot.loaded.analysis);
    Ok(with(
        about(&snapshot, hit),
        json!({ "statistics": heapsnap::statistics(s, a) }),
    ))
}

pub fn findings(cache: &Cache, p: &PagedSnapshotParams) -> anyhow::Result<Value> {
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let (s, a) = (&snapshot.loaded.snapshot, &snapshot.loaded.analysis);
    let mut found = heapsnap::findings::findings(s, a, &heapsnap::findings::Thresholds::default());
    let (from, to, next) = bounds(found.len(), p.cursor.as_deref(), p.top, 10)?;
    found[from..to].map_positions(&Disk::default());
    let rows = &found[from..to];
    Ok(with(
        about(&snapshot, hit),
        json!({ "finding_count": found.len(), "findings": rows, "next": next }),
    ))
}

pub fn show(cache: &Cache, p: &ShowParams) -> anyhow::Result<Value> {
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let top = p.top.unwrap_or(10).clamp(1, MAX_TOP);
    let mut doc =
        crate::commands::inspect::show_doc(&snapshot.loaded, snapshot.retainers(), &p.object, top)?;
    doc.map_positions(&Disk::default());
    Ok(with(serde_json::to_value(doc)?, json!({ "cache": hit })))
}

pub fn retainers(cache: &Cache, p: &RetainersParams) -> anyhow::Result<Value> {
    if p.object.is_none() == p.class.is_none() {
        anyhow::bail!("give either object (@ID) or class");
    }
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let args = RetainersArgs {
        file: p.snapshot.clone(),
        object: p.object.clone(),
        class: p.class.clone(),
        instances: p.instances.unwrap_or(3).clamp(1, 20),
        paths: p.paths.unwrap_or(3).clamp(1, 20),
        ignore_edge: p.ignore_edges.clone(),
        ignore_node: p.ignore_nodes.clone(),
        output: OutputArgs {
            json: true,
            timings: false,
        },
    };
    let objects =
        crate::commands::inspect::retainer_paths(&snapshot.loaded, snapshot.retainers(), &args)?;
    Ok(with(about(&snapshot, hit), json!({ "objects": objects })))
}

pub fn diff(cache: &Cache, p: &DiffParams) -> anyhow::Result<Value> {
    let key = format!("diff {:?} {:?}", Key::of(&p.base)?, Key::of(&p.current)?);
    let (all, kept) = cache.result(key, || {
        let (current, _) = cache.get(&p.current)?;
        let current = &current.loaded;
        // The base is named with the current snapshot's interface definitions, as DevTools'
        // Comparison does: it is read for this comparison, not kept.
        let base = crate::load::load_with(&p.base, false, Some(&current.analysis.interfaces))?;
        let base_name = base.name.clone();
        let (classes, _) = crate::commands::diff::classes(base, current, None);
        Ok(json!({ "base": base_name, "current": current.name, "classes": classes }))
    })?;
    let classes = all["classes"].as_array().map_or(&[][..], Vec::as_slice);
    let (rows, next) = page(classes, p.cursor.as_deref(), p.top, 20)?;
    Ok(json!({
        "base": all["base"],
        "current": all["current"],
        "class_count": classes.len(),
        "classes": rows,
        "next": next,
        "cache": if kept { "cached" } else { "loaded" },
    }))
}

pub fn leaks(cache: &Cache, p: &LeaksParams) -> anyhow::Result<Value> {
    if p.snapshots.len() < 2 {
        anyhow::bail!("leaks needs two snapshots or more of one process, oldest first");
    }
    let keys = p
        .snapshots
        .iter()
        .map(|f| Key::of(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let top = p.top.unwrap_or(5).clamp(1, 50);
    let min_count = p.min_count.unwrap_or(20);
    let key = format!("leaks {keys:?} top {top} min {min_count}");
    let (found, kept) = cache.result(key, || {
        let (last, earlier) = p.snapshots.split_last().expect("two or more");
        let settings = heapsnap::leaks::Settings {
            top,
            min_count,
            requests: Vec::new(),
        };
        // Earlier snapshots that are kept give their census at once; the others are read for
        // class names only, as `leaks` does.
        let earlier = earlier
            .iter()
            .map(|f| census(cache, f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (snapshot, _) = cache.get(last)?;
        let found = crate::commands::leaks::report(&earlier, &snapshot.loaded, &settings, false);
        Ok(serde_json::to_value(found)?)
    })?;
    Ok(with(
        (*found).clone(),
        json!({ "cache": if kept { "cached" } else { "loaded" } }),
    ))
}

/// The census of `path`, from the cache when the snapshot is kept there.
fn census(cache: &Cache, path: &Path) -> anyhow::Result<heapsnap::leaks::Census> {
    if let Some(snapshot) = cache.peek(path)? {
        let l = &snapshot.loaded;
        return Ok(heapsnap::leaks::Census::new(
            &l.name,
            &l.snapshot,
            &l.analysis.class,
        ));
    }
    crate::commands::leaks::census(path, false)
}

// Live tools: the command itself, as a child process.

/// Runs `leakhound ARGS --json` for at most `limit`; its JSON output, or its error text.
/// `ok_codes` are the exit codes that mean success (hunt exits 1 when it finds a leak).
fn run_json(args: &[String], limit: Duration, ok_codes: &[i32]) -> anyhow::Result<Value> {
    let exe = std::env::current_exe().context("cannot find leakhound's own executable")?;
    // `--json` right after the subcommand: anything after `--` is the app's command line.
    let (command, rest) = args.split_first().context("no command")?;
    let mut child = Command::new(exe)
        .arg(command)
        .arg("--json")
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start leakhound")?;
    // Drain both pipes while waiting, so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            // SIGTERM first: hunt stops the app it started and cleans up on it.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&child),
                rustix::process::Signal::TERM,
            );
            let grace = Instant::now();
            while child.try_wait()?.is_none() && grace.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "leakhound {} did not finish within {}s and was stopped",
                args.first().map_or("", String::as_str),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().expect("reader thread")?;
    let stderr = err.join().expect("reader thread")?;
    let code = status.code().unwrap_or(-1);
    if !ok_codes.contains(&code) {
        let text = stderr.trim();
        anyhow::bail!(
            "{}",
            if text.is_empty() {
                format!("leakhound exited with {status}")
            } else {
                text.to_owned()
            }
        );
    }
    let mut value: Value = trimmed(
        serde_json::from_str(&stdout)
            .with_context(|| format!("leakhound printed no JSON; its messages:\n{stderr}"))?,
    );
    if let (Some(object), false) = (value.as_object_mut(), stderr.trim().is_empty()) {
        object.insert("messages".into(), Value::String(stderr.trim().to_owned()));
    }
    Ok(value)
}

/// The most items a live tool's answer lists in any one array; the full report stays in the
/// files the command wrote.
const MAX_ITEMS: usize = 20;

/// Cuts every array in `value` longer than [`MAX_ITEMS`], and lists what was cut (by JSON
/// path, with its length) under `truncated`. A hunt's timeline is dropped whole: it is in
/// report.json and report.html, and grows with the hunt's length.
fn trimmed(mut value: Value) -> Value {
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

pub fn capture(p: &CaptureParams) -> anyhow::Result<Value> {
    let mut args = vec!["capture".to_owned()];
    args.extend(target_args(p.pid, &p.inspect)?);
    if let Some(out) = &p.output {
        args.extend(["--output".into(), out.display().to_string()]);
    }
    if p.force {
        args.push("--force".into());
    }
    let mut limit = Duration::from_secs(600);
    if let Some(seconds) = p.sample_allocations_seconds {
        let seconds = seconds.clamp(1, 300);
        args.extend(["--sample-allocations".into(), format!("{seconds}s")]);
        limit += Duration::from_secs(seconds);
    }
    run_json(&args, limit, &[0])
}

pub fn hunt(p: &HuntParams) -> anyhow::Result<Value> {
    if p.command.is_empty() {
        anyhow::bail!(
            "command is empty: give the app's command line, e.g. [\"node\", \"server.js\"]"
        );
    }
    let requests = p.requests.unwrap_or(500).clamp(1, 20_000);
    let rounds = p.rounds.unwrap_or(2).clamp(2, 4);
    let limit = Duration::from_secs(p.time_limit_seconds.unwrap_or(300).clamp(30, 1800));
    let mut args = vec![
        "hunt".to_owned(),
        "--requests".into(),
        requests.to_string(),
        "--rounds".into(),
        rounds.to_string(),
        "--top".into(),
        p.top.unwrap_or(5).clamp(1, 50).to_string(),
    ];
    for url in &p.url {
        args.extend(["--url".into(), url.clone()]);
    }
    if let Some(dir) = &p.out {
        args.extend(["--out".into(), dir.display().to_string()]);
    }
    if p.no_native {
        args.push("--no-native".into());
    }
    // A round may take no longer than the whole hunt.
    args.extend(["--round-time-limit".into(), format!("{}s", limit.as_secs())]);
    args.push("--".into());
    args.extend(p.command.iter().cloned());
    run_json(&args, limit, &[0, 1])
}

pub fn watch_sample(p: &WatchParams) -> anyhow::Result<Value> {
    let seconds = p.seconds.unwrap_or(1).clamp(1, 60);
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
    run_json(&args, Duration::from_secs(seconds + 60), &[0])
}

pub fn maps(p: &MapsParams) -> anyhow::Result<Value> {
    let mut args = vec![
        "maps".to_owned(),
        "--pid".into(),
        p.pid.to_string(),
        "--top".into(),
        p.top.unwrap_or(30).clamp(1, MAX_TOP).to_string(),
    ];
    if let Some(diff) = &p.diff {
        args.extend(["--diff".into(), diff.display().to_string()]);
    }
    if let Some(save) = &p.save {
        args.extend(["--save".into(), save.display().to_string()]);
    }
    run_json(&args, Duration::from_secs(120), &[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_each_other_to_the_end() {
        let rows: Vec<u32> = (0..45).collect();
        let (first, next) = page(&rows, None, Some(20), 10).unwrap();
        assert_eq!(first.as_array().unwrap().len(), 20);
        assert_eq!(next.as_deref(), Some("20"));
        let (last, next) = page(&rows, Some("40"), Some(20), 10).unwrap();
        assert_eq!(last, json!([40, 41, 42, 43, 44]));
        assert_eq!(next, None);
        // `top` is capped; a cursor past the end or not a number is refused with a hint.
        let (all, _) = page(&(0..500).collect::<Vec<u32>>(), None, Some(10_000), 10).unwrap();
        assert_eq!(all.as_array().unwrap().len(), MAX_TOP);
        for bad in ["46", "x", "-1"] {
            let e = page(&rows, Some(bad), None, 10).unwrap_err().to_string();
            assert!(e.contains("pass `next`"), "{e}");
        }
    }

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
}
