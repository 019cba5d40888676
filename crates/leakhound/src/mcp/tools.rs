//! What each MCP tool does, synchronously: a thin call into what the commands do, with answers
//! cut to a page (`top` rows from `cursor` on, and the `next` cursor).
//!
//! These are the snapshot tools: they run here, on snapshots kept in the [`Cache`]. The tools
//! that act on a live process are in [`super::live`].

use std::path::Path;

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

/// Warnings said while answering (source maps that cannot be used, files that are not the
/// code that ran), collected for the answer: the model reads answers, not the server's stderr.
type Warnings = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Script files and their source maps, read for one call, with its warnings.
fn disk() -> (Disk, Warnings) {
    let warnings = Warnings::default();
    let sink = warnings.clone();
    let disk = Disk::with_warnings(move |w| {
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w.to_owned());
    });
    (disk, warnings)
}

/// `value` with the `warnings` said while it was made, if any (leak reports have a list of
/// their own, which they are added to).
fn warned(mut value: Value, warnings: &Warnings) -> Value {
    let said = std::mem::take(&mut *warnings.lock().unwrap_or_else(|e| e.into_inner()));
    if said.is_empty() {
        return value;
    }
    match value.get_mut("warnings").and_then(Value::as_array_mut) {
        Some(list) => list.extend(said.into_iter().map(Value::String)),
        None => value["warnings"] = json!(said),
    }
    value
}

/// Dominators listed by `show`, nearest first.
const DOMINATORS: usize = 20;
/// Steps kept at each end of a long path.
const PATH_END: usize = 10;

/// A path with its middle left out when it is long: its first and last [`PATH_END`] steps,
/// and between them a step that says how many were left out.
fn elide(path: &mut Value) {
    if let Some(steps) = path.as_array_mut()
        && steps.len() > 2 * PATH_END + 1
    {
        let left_out = steps.len() - 2 * PATH_END;
        let tail = steps.split_off(steps.len() - PATH_END);
        steps.truncate(PATH_END);
        steps.push(json!({ "left_out_steps": left_out }));
        steps.extend(tail);
    }
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
    let mut classes = snapshot.summary().to_vec();
    if let Some(re) = &filter {
        classes.retain(|c| re.is_match(&c.name));
    }
    match p.sort.unwrap_or_default() {
        SortBy::Retained => {}
        SortBy::Shallow => classes.sort_by_key(|c| std::cmp::Reverse(c.shallow_size)),
        SortBy::Count => classes.sort_by_key(|c| std::cmp::Reverse(c.count)),
    }
    let (from, to, next) = bounds(classes.len(), p.cursor.as_deref(), p.top, 20)?;
    let (disk, warnings) = disk();
    crate::commands::summary::originals(s, &mut classes[from..to], &disk);
    Ok(warned(
        with(
            about(&snapshot, hit),
            json!({
                "statistics": heapsnap::statistics(s, a),
                "class_count": classes.len(),
                "classes": classes[from..to],
                "next": next,
            }),
        ),
        &warnings,
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
    let mut found = snapshot.findings().to_vec();
    let (from, to, next) = bounds(found.len(), p.cursor.as_deref(), p.top, 10)?;
    let (disk, warnings) = disk();
    found[from..to].map_positions(&disk);
    let rows = &found[from..to];
    Ok(warned(
        with(
            about(&snapshot, hit),
            json!({ "finding_count": found.len(), "findings": rows, "next": next }),
        ),
        &warnings,
    ))
}

pub fn show(cache: &Cache, p: &ShowParams) -> anyhow::Result<Value> {
    let (snapshot, hit) = cache.get(&p.snapshot)?;
    let top = p.top.unwrap_or(10).clamp(1, MAX_TOP);
    let mut doc =
        crate::commands::inspect::show_doc(&snapshot.loaded, snapshot.retainers(), &p.object, top)?;
    let (disk, warnings) = disk();
    doc.map_positions(&disk);
    let mut value = warned(serde_json::to_value(doc)?, &warnings);
    // A chain of dominators and a path are as long as the graph makes them (a linked list of
    // a million nodes): the nearest dominators, and a path's two ends.
    if let Some(chain) = value["dominators"].as_array_mut()
        && chain.len() > DOMINATORS
    {
        let count = chain.len();
        chain.truncate(DOMINATORS);
        value["dominator_count"] = count.into();
    }
    elide(&mut value["path"]);
    Ok(with(value, json!({ "cache": hit })))
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
        instances: p.instances.unwrap_or(3).clamp(1, 10),
        paths: p.paths.unwrap_or(3).clamp(1, 5),
        ignore_edge: p.ignore_edges.clone(),
        ignore_node: p.ignore_nodes.clone(),
        output: OutputArgs {
            json: true,
            timings: false,
        },
    };
    let objects =
        crate::commands::inspect::retainer_paths(&snapshot.loaded, snapshot.retainers(), &args)?;
    let mut objects = serde_json::to_value(objects)?;
    for object in objects.as_array_mut().into_iter().flatten() {
        for path in object["paths"].as_array_mut().into_iter().flatten() {
            elide(path);
        }
    }
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
        let (disk, warnings) = disk();
        let (classes, _) = crate::commands::diff::classes(base, current, None, &disk);
        Ok(warned(
            json!({ "base": base_name, "current": current.name, "classes": classes }),
            &warnings,
        ))
    })?;
    let classes = all["classes"].as_array().map_or(&[][..], Vec::as_slice);
    let (rows, next) = page(classes, p.cursor.as_deref(), p.top, 20)?;
    let mut answer = json!({
        "base": all["base"],
        "current": all["current"],
        "class_count": classes.len(),
        "classes": rows,
        "next": next,
        "cache": if kept { "cached" } else { "loaded" },
    });
    if let Some(warnings) = all.get("warnings") {
        answer["warnings"] = warnings.clone();
    }
    Ok(answer)
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
        let (disk, warnings) = disk();
        let found =
            crate::commands::leaks::report(&earlier, &snapshot.loaded, &settings, false, &disk);
        Ok(warned(serde_json::to_value(found)?, &warnings))
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
    fn long_paths_keep_their_ends() {
        let mut path = json!((0..100).collect::<Vec<u32>>());
        elide(&mut path);
        let steps = path.as_array().unwrap();
        assert_eq!(steps.len(), 2 * PATH_END + 1);
        assert_eq!(steps[0], 0);
        assert_eq!(steps[PATH_END], json!({ "left_out_steps": 80 }));
        assert_eq!(steps[2 * PATH_END], 99);
        let mut short = json!([1, 2, 3]);
        elide(&mut short);
        assert_eq!(short, json!([1, 2, 3]));
    }
}
