//! Leak detection over a series of snapshots of one process (baseline, target, … final).
//!
//! 1. Every earlier snapshot is reduced to a [`Census`]: its node ids, instance counts per
//!    class and entry counts per collection. The last snapshot is analysed in full.
//! 2. Candidates are the final snapshot's objects that are absent from the baseline and present
//!    in every later snapshot (V8 keeps an object's id for its lifetime).
//! 3. A candidate is a *leaked object* unless it is part of another candidate: walking up the
//!    dominator tree, skipping V8's internal stores (`(object elements)`, a Map's table,
//!    `system / …`), the first object reached is old (or the root). So one leaked request
//!    context counts once, not once per string inside it, and entries of an old Map count one by
//!    one even though the Map's table was reallocated.
//! 4. Leaked objects that leak together are one cluster: those held by one *owner* (the nearest
//!    collection on their retaining path that existed in the baseline and has more entries
//!    now), those that hold each other (a listener and the scope it closes over), and, when no
//!    collection grew, those whose retaining paths have one shape (classes and edge names,
//!    with indexes, dictionary keys and repeated links abstracted).
//! 5. Each cluster is described as people know it: what leaked (the app's own class when one is
//!    inside), its parts, how much of its size is native memory, and who holds it
//!    (`NodeCache.data`) from which of the app's variables (`quoteCache`, see [`Owner`]).
//!
//! Retaining paths are shown through the app's own code when one leads there
//! ([`crate::code::AppPaths`]). Nothing is sampled: every candidate is classified and counted.

mod describe;
mod group;
mod growth;
mod owner;

pub use owner::{Binding, LinkedList, Owner, OwnerAt, OwnerFinder, SnapshotOnly, Sources};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;
use std::hash::{Hash, Hasher};

use crate::analysis::Analysis;
use crate::code::AppPaths;
pub use crate::code::{Original, Positions, SourceLocation};
use crate::graph::{self, Collections};
use crate::model::{EdgeIdx, NodeCol, NodeId, NodeIdx, Snapshot, StrId};
use crate::view::Step;
use crate::view::path_steps;
use typed_index_collections::{TiSlice, TiVec};

/// What the leak analysis keeps of an earlier snapshot.
#[derive(Debug, Clone)]
pub struct Census {
    pub name: String,
    /// Every node id, sorted.
    ids: Vec<NodeId>,
    /// Instances per class name.
    classes: FxHashMap<Vec<u8>, u64>,
    /// (id, entry count) of every collection, sorted by id.
    collections: Vec<(NodeId, u32)>,
}

/// Instances per class name text (different string ids can carry the same name).
fn class_counts<'s>(s: &'s Snapshot, class: &TiSlice<NodeIdx, StrId>) -> FxHashMap<&'s [u8], u64> {
    let mut counts: TiVec<StrId, u64> = vec![0u64; s.strings.len()].into();
    for &c in class {
        counts[c] += 1;
    }
    let mut by_name: FxHashMap<&[u8], u64> = FxHashMap::default();
    for (c, &n) in counts.iter_enumerated() {
        if n > 0 {
            *by_name.entry(s.strings.bytes(c)).or_default() += n;
        }
    }
    by_name
}

impl Census {
    /// `class` is each node's class name (from a full or a names-only analysis).
    pub fn new(name: &str, s: &Snapshot, class: &TiSlice<NodeIdx, StrId>) -> Census {
        let mut ids = s.nodes.id.raw.clone();
        ids.par_sort_unstable();
        let classes = class_counts(s, class)
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v))
            .collect();
        let known = Collections::new(s);
        let mut collections: Vec<(NodeId, u32)> = s
            .nodes
            .par_all()
            .filter_map(|v| {
                let (_, n) = known.entries(s, v)?;
                (n > 0).then(|| (s.nodes.id[v], n))
            })
            .collect();
        collections.par_sort_unstable();
        Census {
            name: name.to_owned(),
            ids,
            classes,
            collections,
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Entries of the collection with this id: `None` if no such node, 0 if it is empty or
    /// not a collection.
    pub fn entries(&self, id: NodeId) -> Option<u32> {
        if !self.contains(id) {
            return None;
        }
        Some(
            self.collections
                .binary_search_by_key(&id, |&(i, _)| i)
                .map_or(0, |i| self.collections[i].1),
        )
    }

    pub fn class_count(&self, name: &[u8]) -> u64 {
        self.classes.get(name).copied().unwrap_or(0)
    }
}

/// Settings of the leak analysis.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Clusters shown in full (all clusters are counted).
    pub top: usize,
    /// A cluster must have at least this many objects to support a leak verdict.
    pub min_count: u64,
    /// Requests sent between each two snapshots, when known (`hunt`): collections that grow
    /// are shown only if their growth keeps pace with them.
    pub requests: Vec<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            top: 10,
            min_count: 20,
            requests: Vec::new(),
        }
    }
}

/// The leak report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The snapshots, baseline first.
    pub snapshots: Vec<String>,
    /// Doubts about the input, e.g. snapshots that do not look like one process's.
    pub warnings: Vec<String>,
    pub leak_suspected: bool,
    /// DevTools' total size of the last snapshot: no size in the report can exceed it.
    pub total_size: u64,
    /// Objects new since the baseline and alive in every later snapshot.
    pub candidate_count: u64,
    /// Leaked objects (candidates that are not part of another candidate).
    pub leaked_count: u64,
    /// Their retained size, each byte counted once.
    pub leaked_retained_size: u64,
    pub cluster_count: usize,
    /// The largest clusters (by retained size, then count).
    pub clusters: Vec<Cluster>,
    /// Classes whose instance count grew at every step (three or more snapshots).
    pub growing_classes: Vec<Growth>,
    /// Collections whose entry count grew at every step (three or more snapshots), beyond
    /// the noise floor and, when the load is known, keeping pace with it.
    pub growing_collections: Vec<CollectionGrowth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// One line, as people know the leak: `600 × RequestLogger in Sink._events`, `1,500 new
    /// entries in NodeCache.data`.
    pub headline: String,
    /// The class of the cluster's main part (the one retaining most).
    pub class: String,
    /// The main part's largest object's own name: for a closure, the function's name.
    pub name: String,
    /// How many times it leaked: the instances of what the headline names (else of the main
    /// part).
    pub count: u64,
    /// Retained size of the cluster's objects, each byte counted once (and not counting
    /// objects inside leaked objects of other clusters).
    pub retained_size: u64,
    /// How much of `retained_size` is native memory (outside the V8 heap): Node's C++
    /// objects (`zlib_memory`) and ArrayBuffer contents.
    pub native_size: u64,
    /// The largest kinds of native memory in it, by name.
    pub native: Vec<NativePart>,
    pub shallow_size: u64,
    /// Whether this cluster supports a leak verdict (see [`Report::leak_suspected`]).
    pub suspect: bool,
    /// The leaked objects by kind, largest first (at most [`MAX_PARTS`]).
    pub parts: Vec<Part>,
    /// Who holds the cluster, as the code names it: its owner's holder, or what holds all of
    /// its owners (`Sink._events` for listeners in several of its arrays).
    pub holder: Option<String>,
    /// The retaining path of the main part's largest object: from the app's scope that holds
    /// it (`scope`) when there is one, else from the root's side.
    pub path: Vec<Step>,
    /// The app's scope the path starts from.
    pub scope: Option<AppScope>,
    pub owner: Option<Owner>,
    /// Where the main part's constructor (or function) is defined.
    pub location: Option<SourceLocation>,
    /// Allocation stack of the largest object, innermost first (allocation tracking only).
    pub allocation_stack: Vec<Frame>,
    /// Node ids of the main part's largest objects (at most 10).
    pub sample_ids: Vec<NodeId>,
    /// The app's own functions among the leaked objects' closures (callbacks, listeners,
    /// timers' functions), most copies first (at most [`MAX_FUNCTIONS`]; the main part's own
    /// function is not repeated).
    pub functions: Vec<AppFunction>,
    /// Instance counts of `class` in each snapshot.
    pub class_counts: Vec<u64>,
}

/// At most this many of the app's functions are named per cluster.
pub const MAX_FUNCTIONS: usize = 3;

/// Closures of one of the app's functions inside a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct AppFunction {
    pub name: String,
    pub location: SourceLocation,
    /// How many closures of it the cluster holds.
    pub count: u64,
}

/// A scope of the app's code that a retaining path starts from: `path[0]` is the first step
/// out of it (a variable of the scope, usually).
#[derive(Debug, Clone, Serialize)]
pub struct AppScope {
    /// The script.
    pub script: Option<String>,
    /// A module's top-level scope (else a function's).
    pub module: bool,
    /// Up to three functions that share the scope.
    pub functions: Vec<String>,
}

/// At most this many parts are listed per cluster.
pub const MAX_PARTS: usize = 8;

/// Leaked objects of one kind in a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// As people name them: `RequestLogger`, `function onunpipe`, `closure scope`,
    /// `ZlibContext (native)`.
    pub label: String,
    pub class: String,
    pub count: u64,
    pub retained_size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NativePart {
    /// The native node's name without DevTools' prefix: `zlib_memory`, `JSArrayBufferData`.
    pub name: String,
    pub size: u64,
}

/// A frame of an allocation stack; `line` and `column` are 1-based, 0 when unknown.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub function: String,
    pub script: String,
    pub line: u32,
    pub column: u32,
    /// Where the script's source map says it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
}

impl Positions for Frame {
    fn map_positions(&mut self, sources: &dyn Sources) {
        if self.original.is_none() && !self.script.is_empty() && self.line > 0 {
            // Trace frames carry no copy of their script to check the file against.
            self.original = sources.original(&self.script, None, self.line, self.column.max(1));
        }
    }
}

impl Positions for Cluster {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.owner.map_positions(sources);
        self.location.map_positions(sources);
        self.allocation_stack.map_positions(sources);
        self.functions.map_positions(sources);
    }
}

impl Positions for AppFunction {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.location.map_positions(sources);
    }
}

impl Positions for Report {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.clusters.map_positions(sources);
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    pub class: String,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionGrowth {
    /// As the code names it (`NodeCache.data`, `handleMap`).
    pub name: String,
    pub class: String,
    pub id: NodeId,
    pub entries: Vec<u32>,
    /// Whether the app's own scopes reach it (else only Node's internals or the global object
    /// do).
    pub app: bool,
    /// How many collections of this name grew so (`id` and `entries` are the largest's),
    /// counted among the 10,000 that grew most.
    pub instances: u64,
}

/// Finds the leaks in `final_` (analysed in full) given the censuses of the earlier snapshots,
/// baseline first. `final_name` labels the last snapshot; `sources` gives the text of scripts,
/// to find where variables are declared, and their source maps.
///
/// # Panics
///
/// If `earlier` is empty: there is no baseline to compare with.
pub fn find(
    earlier: &[Census],
    final_: (&Snapshot, &Analysis),
    final_name: &str,
    settings: &Settings,
    sources: &dyn Sources,
) -> Report {
    let (s, a) = final_;
    let n = s.node_count();
    let baseline = earlier
        .first()
        .expect("leaks::find needs a baseline census");
    let later = &earlier[1..];
    let candidate: NodeCol<bool> = s
        .nodes
        .par_all()
        .map(|v| {
            let id = s.nodes.id[v];
            v != s.root && !baseline.contains(id) && later.iter().all(|c| c.contains(id))
        })
        .collect::<Vec<bool>>()
        .into();
    let candidate_count = candidate.iter().filter(|&&c| c).count() as u64;
    let mut warnings = Vec::new();
    // V8 keeps ids for an object's lifetime, so most objects of a process outlive a few
    // rounds of load; almost nothing in common means unrelated snapshots (or a restart).
    if n > 1000 && candidate_count * 10 > n as u64 * 9 {
        warnings.push(format!(
            "{} of the {} objects of {final_name} are not in {}: are these snapshots of one \
             process, oldest first, without a restart in between?",
            candidate_count, n, baseline.name
        ));
    }

    let internal = Internal::new(s);
    let leaked: Vec<NodeIdx> = s
        .nodes
        .par_all()
        .filter(|&v| {
            candidate[v] && internal.reportable(s, v) && !candidate[anchor(s, a, &internal, v)]
        })
        .collect();
    let leaks = group::Leaks::new(a, leaked);
    let finder = OwnerFinder::new(s, baseline);
    let bridges: Vec<NodeIdx> = s
        .nodes
        .par_all()
        .filter(|&v| {
            candidate[v] && leaks.root_of[v] == group::NONE && finder.code.is_context(s, v)
        })
        .collect();
    drop(candidate);

    let entries_now = finder.entries_now(s);
    let grown = finder.grown(s, baseline, &entries_now);
    let owners: Vec<NodeIdx> = leaks
        .leaked
        .par_iter()
        .map(|&v| {
            finder
                .grown_owner(s, a, &grown, v)
                .unwrap_or(group::NO_OWNER)
        })
        .collect();
    let shapes = Shapes::new(s, &finder.collections);
    let keys: Vec<u64> = leaks
        .leaked
        .par_iter()
        .zip(&owners)
        .map(|(&v, &o)| {
            if o == group::NO_OWNER {
                shapes.key(s, a, &finder.paths, v)
            } else {
                0
            }
        })
        .collect();
    let mut clusters = group::clusters(s, a, (&leaks, &bridges), &owners, &keys);
    let leaked_retained_size = clusters.iter().map(|c| c.retained).sum();
    let cluster_count = clusters.len();
    let series_len = earlier.len() + 1;
    let final_classes = class_counts(s, &a.class);
    let class_series = |class: &[u8]| -> Vec<u64> {
        let mut counts: Vec<u64> = earlier.iter().map(|e| e.class_count(class)).collect();
        counts.push(final_classes.get(class).copied().unwrap_or(0));
        counts
    };
    // The verdict is over every cluster, not only those shown: `--top` changes what is
    // printed, never the exit code.
    let suspect_beyond_top = clusters.iter().skip(settings.top).any(|g| {
        let members: Vec<NodeIdx> = g
            .members
            .iter()
            .map(|&i| leaks.leaked[i as usize])
            .collect();
        members.len() as u64 >= settings.min_count
            && (group::distinct_owners(g, &owners).iter().any(|&o| {
                let id = s.nodes.id[o];
                let mut entries: Vec<Option<u32>> = earlier.iter().map(|c| c.entries(id)).collect();
                entries.push(finder.collections.entries(s, o).map(|(_, n)| n));
                grew_every_step(&entries)
            }) || (series_len >= 3
                && rising(&class_series(
                    s.strings.bytes(group::most_common_class(a, &members)),
                ))))
    });
    if suspect_beyond_top {
        warnings.push(format!(
            "a cluster beyond the {} shown supports the verdict: raise --top to see it",
            settings.top
        ));
    }
    clusters.truncate(settings.top);
    let contents = group::contents(s, a, &finder.code, &leaks, &clusters);

    let clusters: Vec<Cluster> = clusters
        .iter()
        .zip(contents)
        .map(|(g, inside)| {
            let describe = describe::Describe {
                s,
                a,
                finder: &finder,
                earlier,
                sources,
            };
            let mut c = describe.cluster(g, inside, &leaks, &owners);
            let counts = class_series(c.class.as_bytes());
            let owner_grew = c
                .owner
                .as_ref()
                .is_some_and(|o| o.grew && (series_len < 3 || grew_every_step(&o.entries)));
            c.suspect = c.count >= settings.min_count
                && (owner_grew || (series_len >= 3 && rising(&counts)));
            c.class_counts = counts;
            c
        })
        .collect();

    let (growing_classes, growing_collections) = if series_len >= 3 {
        growth::growth(
            earlier,
            (s, a),
            &final_classes,
            &finder,
            &entries_now,
            settings,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut snapshots: Vec<String> = earlier.iter().map(|c| c.name.clone()).collect();
    snapshots.push(final_name.to_owned());
    let mut report = Report {
        snapshots,
        warnings,
        leak_suspected: suspect_beyond_top || clusters.iter().any(|c| c.suspect),
        total_size: a.total_size,
        candidate_count,
        leaked_count: leaks.leaked.len() as u64,
        leaked_retained_size,
        cluster_count,
        clusters,
        growing_classes,
        growing_collections,
    };
    // Every position of the report gets its original here, through the same `sources`.
    report.map_positions(sources);
    report
}

/// Whether counts rose at every step (three or more snapshots).
fn rising(counts: &[u64]) -> bool {
    counts.len() >= 3 && counts.windows(2).all(|w| w[0] < w[1])
}

/// Whether a collection's entries grew at every step, from a baseline where it existed.
fn grew_every_step(entries: &[Option<u32>]) -> bool {
    entries.iter().all(Option::is_some)
        && entries
            .windows(2)
            .all(|w| w[0].unwrap_or(0) < w[1].unwrap_or(0))
}

/// V8's internal stores and bookkeeping objects: looked through when deciding what a leaked
/// object belongs to, and never reported as leaked objects themselves.
pub(crate) struct Internal {
    system_prefix: TiVec<StrId, bool>,
}

impl Internal {
    pub(crate) fn new(s: &Snapshot) -> Internal {
        let system_prefix = (0..s.strings.len())
            .map(|id| s.strings.bytes(StrId::from(id)).starts_with(b"system / "))
            .collect();
        Internal { system_prefix }
    }

    pub(crate) fn is_internal(&self, s: &Snapshot, v: NodeIdx) -> bool {
        let t = &s.types;
        let ty = s.nodes.ty[v];
        ty == t.array || ty == t.hidden || self.system_prefix[s.nodes.name[v]]
    }

    /// Objects a user can act on: not internal, not code, not synthetic, not a number.
    fn reportable(&self, s: &Snapshot, v: NodeIdx) -> bool {
        let t = &s.types;
        let ty = s.nodes.ty[v];
        !self.is_internal(s, v)
            && ty != t.code
            && ty != t.synthetic
            && t.node_names.get(ty as usize).is_none_or(|n| n != "number")
    }
}

/// The nearest dominator of `v` that is not an internal store (the root if none).
fn anchor(s: &Snapshot, a: &Analysis, internal: &Internal, v: NodeIdx) -> NodeIdx {
    const MAX_STORES: usize = 64;
    let mut u = a.idom[v];
    for _ in 0..MAX_STORES {
        if u == a.root || !internal.is_internal(s, u) {
            break;
        }
        u = a.idom[u];
    }
    u
}

/// Path shapes: a hash of the classes and edge names along a shortest retaining path.
struct Shapes {
    /// Objects with at least this many properties are dictionaries: their keys are data.
    dictionary: rustc_hash::FxHashSet<NodeIdx>,
}

const DICTIONARY_MIN: usize = 32;

impl Shapes {
    fn new(s: &Snapshot, collections: &Collections) -> Shapes {
        // Dictionaries are rare; find them once rather than per path.
        let dictionary = s
            .nodes
            .par_all()
            .filter(|&v| {
                collections.is_plain_object(s, v)
                    && s.nodes.edges(v).len() >= DICTIONARY_MIN
                    && s.nodes
                        .edges(v)
                        .filter(|&e| s.edges.ty[e] == s.types.e_property)
                        .count()
                        >= DICTIONARY_MIN
            })
            .collect();
        Shapes { dictionary }
    }

    /// The shape of `v`'s shown path (see [`AppPaths::parent_edges`]).
    fn key(&self, s: &Snapshot, a: &Analysis, paths: &AppPaths, v: NodeIdx) -> u64 {
        let mut h = FxHasher::default();
        a.class[v].hash(&mut h);
        let mut previous = None;
        for e in paths.parent_edges(s, a, v) {
            let from = graph::edge_source(s, e);
            let step = (s.edges.ty[e], self.edge_key(s, e, from), a.class[from]);
            // A linked list (`next.next.next…`) has one shape whatever its length.
            if previous != Some(step) {
                step.hash(&mut h);
                previous = Some(step);
            }
        }
        h.finish()
    }

    /// The edge's name, or `u32::MAX` where the name is data: indexes, numeric names,
    /// dictionary keys.
    fn edge_key(&self, s: &Snapshot, e: EdgeIdx, from: NodeIdx) -> StrId {
        const DATA: StrId = StrId(u32::MAX);
        let ty = s.edges.ty[e];
        if s.types.edge_name_is_index(ty) {
            return DATA;
        }
        let name = s.edges.name(e);
        let text = s.strings.bytes(name);
        if !text.is_empty() && text.iter().all(u8::is_ascii_digit) {
            return DATA;
        }
        if ty == s.types.e_property && self.dictionary.contains(&from) {
            return DATA;
        }
        name
    }
}

/// The allocation stack of `v` from the trace tree, innermost frame first.
fn allocation_stack(s: &Snapshot, v: NodeIdx) -> Vec<Frame> {
    let Some(trace) = &s.nodes.trace_node_id else {
        return Vec::new();
    };
    let id = trace[v];
    if id == 0 {
        return Vec::new();
    }
    let Some(mut at) = s.trace_tree.iter().position(|t| t.id == id) else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    loop {
        let node = &s.trace_tree[at];
        if let Some(f) = s.trace_functions.get(node.function_info_index as usize) {
            frames.push(Frame {
                function: s.strings.get(f.name).into_owned(),
                script: s.strings.get(f.script_name).into_owned(),
                line: f.line,
                column: f.column,
                original: None,
            });
        }
        if node.parent == u32::MAX {
            break;
        }
        at = node.parent as usize;
    }
    frames
}
