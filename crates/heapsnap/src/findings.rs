//! Findings: patterns in one snapshot that point at a leak's cause, each with what it means.
//!
//! - a node with an extreme out-degree (a native handle leak: story 1's `(Handle scope)` with
//!   3.79M edges to `undefined`);
//! - edges the reader dropped because they point outside the node array;
//! - very large collections;
//! - duplicate strings (DevTools' rule: same text, several copies);
//! - detached DOM nodes;
//! - many closures of one function, each with its own context;
//! - EventEmitters with many listeners for one event;
//! - large values kept alive by a context that a long-lived closure shares.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::analysis::Analysis;
use crate::code::{Code, Positions, SourceLocation, function_name};
use crate::graph::{self, Collections, Kind};
use crate::leaks::Sources;
use crate::model::{NodeId, NodeIdx, Snapshot, StrId};

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// One line: what was found, with numbers.
    pub title: String,
    /// What it usually means and what to do.
    pub meaning: String,
    /// Bytes involved (retained or wasted), for ranking.
    pub bytes: u64,
    /// Node ids to look at with `leakhound show`.
    pub ids: Vec<NodeId>,
    pub location: Option<SourceLocation>,
}

impl Positions for Finding {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.location.map_positions(sources);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    HandleFanOut,
    DanglingEdges,
    LargeCollection,
    DuplicateStrings,
    DetachedDom,
    ClosureBuildUp,
    ListenerBuildUp,
    SharedContext,
}

/// Thresholds. The defaults are meant to stay quiet on a healthy service.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// Out-degree of a node that is reported.
    pub fan_out: usize,
    pub collection_entries: u32,
    /// Bytes wasted by copies of one string.
    pub duplicate_bytes: u64,
    pub closures: usize,
    /// Bytes the closures' contexts must retain together.
    pub closure_bytes: u64,
    pub listeners: u32,
    /// Bytes a context variable retains.
    pub shared_context_bytes: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            fan_out: 100_000,
            collection_entries: 100_000,
            duplicate_bytes: 1_000_000,
            closures: 1_000,
            closure_bytes: 256_000,
            listeners: 100,
            shared_context_bytes: 1_000_000,
        }
    }
}

/// At most this many findings of one kind.
const PER_KIND: usize = 5;

/// Every finding of one analysed snapshot, largest first within each kind.
pub fn findings(s: &Snapshot, a: &Analysis, limits: &Thresholds) -> Vec<Finding> {
    let (names, known) = rayon::join(|| Code::new(s), || Collections::new(s));
    // Independent passes over the graph, each a fraction of a second on a big snapshot: run
    // side by side. The list's order is the report's.
    let kinds: [&(dyn Fn() -> Vec<Finding> + Sync); 8] = [
        &|| fan_out(s, a, limits),
        &|| dangling(s),
        &|| large_collections(s, a, &known, limits),
        &|| duplicate_strings(s, limits),
        &|| detached_dom(s, a),
        &|| closures(s, a, &names, limits),
        &|| listeners(s, a, &known, limits),
        &|| shared_contexts(s, a, &names, limits),
    ];
    let found: Vec<Vec<Finding>> = kinds.par_iter().map(|kind| kind()).collect();
    found.concat()
}

fn text(s: &Snapshot, id: StrId) -> String {
    s.strings.get(id).into_owned()
}

fn fan_out(s: &Snapshot, a: &Analysis, limits: &Thresholds) -> Vec<Finding> {
    let mut found: Vec<NodeIdx> = s
        .nodes
        .all()
        .filter(|&v| s.nodes.edges(v).len() >= limits.fan_out.max(1))
        .collect();
    found.sort_by_key(|&v| std::cmp::Reverse(s.nodes.edges(v).len()));
    found.truncate(PER_KIND);
    found
        .into_iter()
        .map(|v| {
            let edges = s.nodes.edge_range(v);
            let total = s.nodes.edges(v).len();
            let (top, count) = majority(&s.edges.to[edges].raw);
            let synthetic = s.nodes.ty[v] == s.types.synthetic;
            let name = if synthetic {
                text(s, s.nodes.name[v])
            } else {
                text(s, a.class[v])
            };
            let share = count as f64 * 100.0 / total as f64;
            // Say where the edges point only when one target dominates (story 1: 99% to
            // `undefined`); a collection's entries are all different.
            let target = if share >= 50.0 {
                format!(
                    "; {count} ({share:.1}%) point at {} @{}",
                    text(s, a.class[top]),
                    s.nodes.id[top]
                )
            } else {
                String::new()
            };
            let meaning = if synthetic {
                format!(
                    "{name} is a V8 root: every edge is a handle that native code (an addon or the \
                     embedder) created and never released. A count that grows with the traffic is a \
                     native handle leak: look for a HandleScope missing around callbacks, or \
                     Persistent/Global handles that are never Reset()."
                )
            } else {
                "One object references a huge number of others: an unbounded collection or a \
                 cache without eviction."
                    .to_owned()
            };
            Finding {
                kind: FindingKind::HandleFanOut,
                title: format!(
                    "{name} @{} has {total} edges{target}",
                    s.nodes.id[v],
                ),
                meaning,
                bytes: a.retained[v],
                // The target only when it is half or more: below that, `majority` names
                // some target, not the most frequent.
                ids: std::iter::once(v)
                    .chain((share >= 50.0).then_some(top))
                    .map(|n| s.nodes.id[n])
                    .collect(),
                location: None,
            }
        })
        .collect()
}

/// The most frequent of `targets` with its count, exact whenever it is half of them or more
/// (the smaller on a tie); below half, some target with its count. Misra–Gries with two
/// counters keeps every target above a third, in place of a map over millions of edges.
fn majority(targets: &[NodeIdx]) -> (NodeIdx, usize) {
    // Two distinct non-ordinals to start from.
    const NONE_1: NodeIdx = NodeIdx(u32::MAX);
    const NONE_2: NodeIdx = NodeIdx(u32::MAX - 1);
    let (mut c1, mut n1, mut c2, mut n2) = (NONE_1, 0usize, NONE_2, 0usize);
    for &t in targets {
        if t == c1 {
            n1 += 1;
        } else if t == c2 {
            n2 += 1;
        } else if n1 == 0 {
            (c1, n1) = (t, 1);
        } else if n2 == 0 {
            (c2, n2) = (t, 1);
        } else {
            n1 -= 1;
            n2 -= 1;
        }
    }
    let count = |t: NodeIdx| targets.iter().filter(|&&x| x == t).count();
    let (a, b) = ((c1, count(c1)), (c2, count(c2)));
    if (b.1, std::cmp::Reverse(b.0)) > (a.1, std::cmp::Reverse(a.0)) {
        b
    } else {
        a
    }
}

fn dangling(s: &Snapshot) -> Vec<Finding> {
    if s.dangling.is_empty() {
        return Vec::new();
    }
    let mut by_source: FxHashMap<NodeIdx, usize> = FxHashMap::default();
    for d in &s.dangling {
        *by_source.entry(d.from).or_default() += 1;
    }
    let (&from, &count) = by_source
        .iter()
        .max_by_key(|&(&f, &c)| (c, std::cmp::Reverse(f)))
        .expect("not empty");
    let first = &s.dangling[0];
    vec![Finding {
        kind: FindingKind::DanglingEdges,
        title: format!(
            "{} edge(s) point outside the node array and were left out; {count} of them come from \
             {} @{} (first: edge {} with to_node {})",
            s.dangling.len(),
            text(s, s.nodes.name[from]),
            s.nodes.id[from],
            first.edge,
            first.to_node,
        ),
        meaning: "The snapshot writer recorded references to objects it did not write: usually \
                  handles to V8's internal values (story 1: millions of handles to `undefined`) or \
                  a snapshot truncated and repaired. The rest of the analysis ignores these edges."
            .to_owned(),
        bytes: 0,
        ids: vec![s.nodes.id[from]],
        location: None,
    }]
}

fn large_collections(
    s: &Snapshot,
    a: &Analysis,
    known: &Collections,
    limits: &Thresholds,
) -> Vec<Finding> {
    let mut found: Vec<(NodeIdx, Kind, u32)> = s
        .nodes
        .par_all()
        .filter_map(|v| {
            let (kind, n) = known.entries(s, v)?;
            (kind != Kind::Context && n >= limits.collection_entries).then_some((v, kind, n))
        })
        .collect();
    found.sort_by_key(|&(v, _, n)| (std::cmp::Reverse(n), v));
    found.truncate(PER_KIND);
    found
        .into_iter()
        .map(|(v, _, n)| {
            let path = graph::path_to(s, a, v);
            let name = path
                .last()
                .map_or_else(String::new, |&e| graph::edge_label(s, e));
            Finding {
                kind: FindingKind::LargeCollection,
                title: format!(
                    "{name} ({}) @{} has {n} entries and retains {}",
                    text(s, a.class[v]),
                    s.nodes.id[v],
                    human_size(a.retained[v])
                ),
                meaning: "A collection this large is often a cache without a bound or a registry \
                          whose entries are never removed; `leakhound leaks` on several snapshots \
                          tells whether it keeps growing."
                    .to_owned(),
                bytes: a.retained[v],
                ids: vec![s.nodes.id[v]],
                location: None,
            }
        })
        .collect()
}

/// Duplicate strings, as DevTools finds them, for flat strings: `string` nodes of non-zero size
/// with the same text. (Concatenated strings are left out: V8 does not write their text, and
/// rebuilding it from the parts costs more than it tells.)
fn duplicate_strings(s: &Snapshot, limits: &Thresholds) -> Vec<Finding> {
    let t = &s.types;
    let is_flat = |v: NodeIdx| s.nodes.ty[v] == t.string && s.nodes.self_size[v] > 0;
    // How many flat strings have each text, in an array by string id: a hash map over millions
    // of distinct texts measured several times slower. Only texts seen twice are then summed.
    let mut copies = vec![0u8; s.strings.len()];
    for v in s.nodes.all().filter(|&v| is_flat(v)) {
        let c = &mut copies[s.nodes.name[v].index()];
        *c = c.saturating_add(1);
    }
    let mut groups: FxHashMap<StrId, (u64, u64, NodeIdx)> = FxHashMap::default();
    for v in s.nodes.all().filter(|&v| is_flat(v)) {
        let name = s.nodes.name[v];
        if copies[name.index()] >= 2 {
            let g = groups.entry(name).or_insert((0, 0, v));
            g.0 += 1;
            g.1 += u64::from(s.nodes.self_size[v]);
        }
    }
    drop(copies);
    let mut wasted: Vec<(StrId, u64, u64, NodeIdx)> = groups
        .into_iter()
        .map(|(name, (count, size, v))| (name, count, size - size / count, v))
        .filter(|&(_, _, waste, _)| waste >= limits.duplicate_bytes)
        .collect();
    wasted.sort_by_key(|&(name, _, waste, _)| (std::cmp::Reverse(waste), name));
    wasted.truncate(PER_KIND);
    wasted
        .into_iter()
        .map(|(name, count, waste, v)| {
            let preview: String = text(s, name).chars().take(60).collect();
            Finding {
                kind: FindingKind::DuplicateStrings,
                title: format!(
                    "{count} copies of the string {preview:?} waste {}",
                    human_size(waste)
                ),
                meaning: "The same text is built again and again (e.g. per request) and kept: \
                          intern it, keep one copy, or stop retaining the copies."
                    .to_owned(),
                bytes: waste,
                ids: vec![s.nodes.id[v]],
                location: None,
            }
        })
        .collect()
}

fn detached_dom(s: &Snapshot, a: &Analysis) -> Vec<Finding> {
    let t = &s.types;
    let detached: Vec<NodeIdx> = s
        .nodes
        .all()
        .filter(|&v| s.nodes.ty[v] == t.native && is_detached_dom(s.strings.bytes(s.nodes.name[v])))
        .collect();
    let Some(&first) = detached.first() else {
        return Vec::new();
    };
    let count = detached.len();
    // A detached subtree's nodes dominate each other: each byte once.
    let bytes = graph::retained_union(a, &detached);
    let first = Some(s.nodes.id[first]);
    vec![Finding {
        kind: FindingKind::DetachedDom,
        title: format!("{count} detached DOM nodes"),
        meaning: "DOM nodes removed from the document but still referenced from JavaScript (a \
                  listener, a cache, a closure): drop the reference when the element is removed."
            .to_owned(),
        bytes,
        ids: first.into_iter().collect(),
        location: None,
    }]
}

/// A DOM node that `propagate_dom_state` marked detached. Node marks some of its own native
/// objects (`BindingData`) detached too; those are not DOM nodes.
fn is_detached_dom(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"Detached ") else {
        return false;
    };
    [
        &b"<"[..],
        b"HTML",
        b"SVG",
        b"Text",
        b"Comment",
        b"Document",
        b"ShadowRoot",
        b"CDATA",
    ]
    .iter()
    .any(|p| rest.starts_with(p))
}

fn closures(s: &Snapshot, a: &Analysis, names: &Code, limits: &Thresholds) -> Vec<Finding> {
    let t = &s.types;
    let context = s.strings.ids_of(b"context");
    // Closures grouped by function (name and location): their count, contexts and first one.
    type Function = (StrId, Option<crate::model::Location>);
    let mut groups: FxHashMap<Function, (usize, Vec<NodeIdx>, NodeIdx)> = FxHashMap::default();
    for v in s.nodes.all() {
        if s.nodes.ty[v] != t.closure {
            continue;
        }
        let key = (s.nodes.name[v], s.location(v));
        let g = groups.entry(key).or_insert((0, Vec::new(), v));
        g.0 += 1;
        if let Some(e) = graph::find_edge(s, v, t.e_internal, &context) {
            g.1.push(s.edges.to[e]);
        }
    }
    // Functions whose closures live in the same scopes (three listeners made by one call)
    // are one finding: their scopes counted once.
    let mut by_scopes: FxHashMap<Vec<NodeIdx>, (usize, Vec<NodeIdx>)> = FxHashMap::default();
    for (_, (count, mut contexts, v)) in groups {
        if count < limits.closures {
            continue;
        }
        contexts.sort_unstable();
        contexts.dedup();
        let g = by_scopes.entry(contexts).or_default();
        g.0 += count;
        g.1.push(v);
    }
    let mut found: Vec<_> = by_scopes
        .into_iter()
        .map(|(contexts, (count, mut functions))| {
            functions.sort_unstable();
            // A context inside another counts once too.
            let bytes = graph::retained_union(a, &contexts);
            (count, contexts.len(), bytes, functions)
        })
        .filter(|&(_, _, bytes, _)| bytes >= limits.closure_bytes)
        .collect();
    found.sort_by_key(|(count, _, _, functions)| (std::cmp::Reverse(*count), functions[0]));
    found.truncate(PER_KIND);
    found
        .into_iter()
        .map(|(count, contexts, bytes, functions)| {
            let location = s.location(functions[0]);
            let functions_named: Vec<String> =
                functions.iter().map(|&f| function_name(s, f)).collect();
            let which = match functions_named.as_slice() {
                [one] => format!("function {one}"),
                several => format!("functions {}", several.join(", ")),
            };
            let scopes = if contexts == 1 {
                format!("all in one scope, which retains {}", human_size(bytes))
            } else {
                format!("in {contexts} scopes, which retain {}", human_size(bytes))
            };
            Finding {
                kind: FindingKind::ClosureBuildUp,
                title: format!("{count} closures of {which}, {scopes}"),
                meaning: if contexts == 1 {
                    "The same function was made into a closure again and again (a callback, a \
                     listener, a timer) and every copy is still referenced: the copies \
                     themselves pile up. Their one scope is that of the module or function \
                     that made them: what it retains, it would retain without them."
                        .to_owned()
                } else {
                    "Each call created a closure that is still referenced (a callback, a \
                     listener, a timer): each one keeps its scope's variables alive."
                        .to_owned()
                },
                bytes,
                ids: functions.iter().map(|&f| s.nodes.id[f]).collect(),
                location: location.map(|l| names.source(l)),
            }
        })
        .collect()
}

/// EventEmitters (`_events` objects) with many listeners for one event.
fn listeners(s: &Snapshot, a: &Analysis, known: &Collections, limits: &Thresholds) -> Vec<Finding> {
    let t = &s.types;
    let events = s.strings.ids_of(b"_events");
    let mut found = Vec::new();
    for v in s.nodes.all() {
        let Some(e) = graph::find_edge(s, v, t.e_property, &events) else {
            continue;
        };
        let table = s.edges.to[e];
        for e in s.nodes.edges(table) {
            if s.edges.ty[e] != t.e_property {
                continue;
            }
            let list = s.edges.to[e];
            let Some((Kind::Array, n)) = known.entries(s, list) else {
                continue;
            };
            if n >= limits.listeners {
                found.push((v, s.edge_name(e).into_owned(), n, list));
            }
        }
    }
    found.sort_by_key(|f| (std::cmp::Reverse(f.2), f.0));
    found.truncate(PER_KIND);
    found
        .into_iter()
        .map(|(v, event, n, list)| Finding {
            kind: FindingKind::ListenerBuildUp,
            title: format!(
                "{} @{} has {n} listeners for {event:?}",
                text(s, a.class[v]),
                s.nodes.id[v]
            ),
            meaning: "A listener is added again and again (per request, per connection) and never \
                      removed: use once(), remove it when done, or add it once at start-up."
                .to_owned(),
            bytes: a.retained[list],
            ids: vec![s.nodes.id[v]],
            location: None,
        })
        .collect()
}

/// A context variable retaining a lot while the context is reached only through closures: V8
/// gives all closures of a scope one context, so a long-lived closure keeps every variable that
/// any sibling closure uses.
fn shared_contexts(s: &Snapshot, a: &Analysis, names: &Code, limits: &Thresholds) -> Vec<Finding> {
    let t = &s.types;
    let contexts = s.strings.ids_of(b"system / Context");
    let previous = s.strings.ids_of(b"previous");
    // A module's top-level variables live in a context whose `previous` is the native context;
    // they are meant to live as long as the module. Only nested scopes can share by accident.
    let nested = |v: NodeIdx| {
        graph::find_edge(s, v, t.e_internal, &previous)
            .is_some_and(|e| contexts.contains(&s.nodes.name[s.edges.to[e]]))
    };
    let mut found = Vec::new();
    for v in s.nodes.all() {
        if !contexts.contains(&s.nodes.name[v]) || !nested(v) {
            continue;
        }
        for e in s.nodes.edges(v) {
            if s.edges.ty[e] != t.e_context {
                continue;
            }
            let value = s.edges.to[e];
            // Only what this context alone keeps alive.
            if a.idom[value] != v || a.retained[value] < limits.shared_context_bytes {
                continue;
            }
            found.push((v, e, value));
        }
    }
    found.sort_by_key(|&(_, _, value)| std::cmp::Reverse(a.retained[value]));
    found.truncate(PER_KIND);
    found
        .into_iter()
        .map(|(context, e, value)| {
            let functions = names.functions_of(context);
            let list: Vec<String> = functions.iter().map(|&f| function_name(s, f)).collect();
            let variable = s.edge_name(e);
            Finding {
                kind: FindingKind::SharedContext,
                title: format!(
                    "variable {variable} ({}) keeps {} alive in a context shared by {}",
                    text(s, a.class[value]),
                    human_size(a.retained[value]),
                    if list.is_empty() {
                        "no live function".to_owned()
                    } else {
                        list.join(", ")
                    },
                ),
                meaning: format!(
                    "V8 gives all closures of a scope one context: if {} do not use \
                     `{variable}`, a sibling closure that did use it made the context keep it. \
                     Set `{variable} = null` when done, or move it out of the shared scope.",
                    if list.is_empty() {
                        "the live functions".to_owned()
                    } else {
                        list.join(", ")
                    }
                ),
                bytes: a.retained[value],
                ids: vec![s.nodes.id[value], s.nodes.id[context]],
                location: functions
                    .first()
                    .and_then(|&f| s.location(f))
                    .map(|l| names.source(l)),
            }
        })
        .collect()
}

/// A count with thousands separators: `1,234,567`.
pub fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size in decimal units, as DevTools shows them: `512 B`, `1.5 kB`, `117.2 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use crate::model::NodeIdx;

    /// `super::majority` on plain numbers.
    fn majority(targets: &[u32]) -> (u32, usize) {
        let targets: Vec<NodeIdx> = targets.iter().map(|&t| NodeIdx(t)).collect();
        let (t, n) = super::majority(&targets);
        (t.0, n)
    }

    #[test]
    fn the_majority_target_is_exact_from_half_up() {
        assert_eq!(majority(&[5, 1, 2, 5]), (5, 2));
        assert_eq!(majority(&[1, 2, 3, 1]), (1, 2));
        assert_eq!(majority(&[9, 4, 9, 4]), (4, 2));
        assert_eq!(majority(&[7, 7, 7, 1, 2]), (7, 3));
        assert_eq!(majority(&[3]), (3, 1));
        // Below half, only the count has to be below half too.
        assert!(majority(&[1, 2, 3, 4, 1]).1 * 2 < 5);
        // Against counting every target, on arrays over small alphabets.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = 1 + (seed % 12) as usize;
            let alphabet = 1 + (seed >> 8) % 4;
            let targets: Vec<u32> = (0..len)
                .map(|i| ((seed >> (16 + 2 * i)) % alphabet) as u32)
                .collect();
            let count = |t: u32| targets.iter().filter(|&&x| x == t).count();
            let top = targets
                .iter()
                .map(|&t| (count(t), std::cmp::Reverse(t)))
                .max()
                .unwrap();
            let (t, n) = majority(&targets);
            assert_eq!(n, count(t), "{targets:?}");
            if top.0 * 2 >= len {
                assert_eq!((t, n), (top.1.0, top.0), "{targets:?}");
            } else {
                assert!(n * 2 < len, "{targets:?}");
            }
        }
    }
}
