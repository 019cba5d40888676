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
//! 4. Leaked objects are clustered by the shape of their shortest retaining path (classes and
//!    edge names, with indexes, dictionary keys and repeated links abstracted).
//! 5. Each cluster gets an *owner*: the nearest collection on the path that already existed in
//!    the baseline and has more entries now.
//!
//! Nothing is sampled: every candidate is classified and counted.

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};
use serde::Serialize;
use std::hash::{Hash, Hasher};

use crate::analysis::Analysis;
use crate::bits::BitSet;
use crate::graph::{self, Collections, Kind};
use crate::model::{Snapshot, StrId};

/// What the leak analysis keeps of an earlier snapshot.
#[derive(Debug, Clone)]
pub struct Census {
    pub name: String,
    /// Every node id, sorted.
    ids: Vec<u32>,
    /// Instances per class name.
    classes: FxHashMap<Vec<u8>, u64>,
    /// (id, entry count) of every collection, sorted by id.
    collections: Vec<(u32, u32)>,
}

/// Instances per class name text (different string ids can carry the same name).
fn class_counts<'s>(s: &'s Snapshot, class: &[StrId]) -> FxHashMap<&'s [u8], u64> {
    let mut counts = vec![0u64; s.strings.len()];
    for &c in class {
        counts[c as usize] += 1;
    }
    let mut by_name: FxHashMap<&[u8], u64> = FxHashMap::default();
    for (c, &n) in counts.iter().enumerate() {
        if n > 0 {
            *by_name.entry(s.strings.bytes(c as StrId)).or_default() += n;
        }
    }
    by_name
}

impl Census {
    /// `class` is each node's class name (from a full or a names-only analysis).
    pub fn new(name: &str, s: &Snapshot, class: &[StrId]) -> Census {
        let mut ids = s.nodes.id.clone();
        ids.par_sort_unstable();
        let classes = class_counts(s, class)
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v))
            .collect();
        let known = Collections::new(s);
        let mut collections: Vec<(u32, u32)> = (0..s.node_count() as u32)
            .into_par_iter()
            .filter_map(|v| {
                let (_, n) = known.entries(s, v)?;
                (n > 0).then(|| (s.nodes.id[v as usize], n))
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

    pub fn contains(&self, id: u32) -> bool {
        self.ids.binary_search(&id).is_ok()
    }

    /// Entries of the collection with this id: `None` if no such node, 0 if it is empty or
    /// not a collection.
    pub fn entries(&self, id: u32) -> Option<u32> {
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            top: 10,
            min_count: 20,
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
    /// Collections whose entry count grew at every step (three or more snapshots).
    pub growing_collections: Vec<CollectionGrowth>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// The leaked objects' class.
    pub class: String,
    /// The largest object's own name: for a closure, the function's name.
    pub name: String,
    pub count: u64,
    /// Retained size of the cluster's objects, not counting objects inside other leaked objects.
    pub retained_size: u64,
    pub shallow_size: u64,
    /// Whether this cluster supports a leak verdict (see [`Report::leak_suspected`]).
    pub suspect: bool,
    /// The retaining path of the cluster's largest object, from the root's side.
    pub path: Vec<Step>,
    pub owner: Option<Owner>,
    /// Where the leaked objects' constructor (or function) is defined.
    pub location: Option<SourceLocation>,
    /// Allocation stack of the largest object, innermost first (allocation tracking only).
    pub allocation_stack: Vec<Frame>,
    /// Node ids of the cluster's largest objects (at most 10).
    pub sample_ids: Vec<u32>,
    /// Instance counts of `class` in each snapshot.
    pub class_counts: Vec<u64>,
}

/// One step of a retaining path: the edge taken, and the node reached.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub edge: String,
    pub edge_type: String,
    pub node: NodeRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeRef {
    pub id: u32,
    pub class: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub self_size: u64,
    pub retained_size: u64,
}

/// The collection (or named variable) that holds a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    /// The name it is reached by: a variable, property or key (`handleMap`).
    pub name: String,
    pub class: String,
    pub kind: Option<Kind>,
    pub id: u32,
    /// Entry counts in each snapshot (`null` where it did not exist).
    pub entries: Vec<Option<u32>>,
    /// Whether its entry count grew from the baseline to the final snapshot.
    pub grew: bool,
    /// What holds the owner: `system / Context` for a closure variable, `Window`/`global`…
    pub held_by: String,
    /// For a closure or module variable: up to three functions that have it in scope; the
    /// location is the first one's.
    pub functions: Vec<String>,
    pub location: Option<SourceLocation>,
    /// Position of the owner in `path`.
    pub path_index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    pub script_id: u32,
    /// The script's URL or file name when the snapshot records it.
    pub script: Option<String>,
    /// 1-based, as editors and DevTools show them.
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub function: String,
    pub script: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    pub class: String,
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectionGrowth {
    pub name: String,
    pub class: String,
    pub id: u32,
    pub entries: Vec<u32>,
}

/// Finds the leaks in `final_` (analysed in full) given the censuses of the earlier snapshots,
/// baseline first. `final_name` labels the last snapshot.
///
/// # Panics
///
/// If `earlier` is empty: there is no baseline to compare with.
pub fn find(
    earlier: &[Census],
    final_: (&Snapshot, &Analysis),
    final_name: &str,
    settings: &Settings,
) -> Report {
    let (s, a) = final_;
    let n = s.node_count();
    let baseline = earlier
        .first()
        .expect("leaks::find needs a baseline census");
    let later = &earlier[1..];
    let candidate: Vec<bool> = (0..n)
        .into_par_iter()
        .map(|v| {
            let id = s.nodes.id[v];
            v as u32 != s.root && !baseline.contains(id) && later.iter().all(|c| c.contains(id))
        })
        .collect();
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
    let leaked: Vec<u32> = (0..n as u32)
        .into_par_iter()
        .filter(|&v| {
            candidate[v as usize]
                && internal.reportable(s, v)
                && !candidate[anchor(s, a, &internal, v) as usize]
        })
        .collect();
    let is_leaked = {
        let mut b = BitSet::new(n);
        for &v in &leaked {
            b.set(v as usize);
        }
        b
    };
    let inside_other = inside_leaked(a, &is_leaked);

    // Cluster by path shape.
    let finder = OwnerFinder::new(s);
    let shapes = Shapes::new(s, &finder.collections);
    let keys: Vec<u64> = leaked.par_iter().map(|&v| shapes.key(s, a, v)).collect();
    let mut by_key: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    for (&v, &k) in leaked.iter().zip(&keys) {
        by_key.entry(k).or_default().push(v);
    }
    let mut groups: Vec<(u64, u64, Vec<u32>)> = by_key
        .into_values()
        .map(|members| {
            let retained = members
                .iter()
                .filter(|&&v| !inside_other.get(v as usize))
                .map(|&v| a.retained[v as usize])
                .sum();
            let shallow = members
                .iter()
                .map(|&v| u64::from(s.nodes.self_size[v as usize]))
                .sum();
            (retained, shallow, members)
        })
        .collect();
    groups.sort_by(|x, y| {
        y.0.cmp(&x.0)
            .then(y.2.len().cmp(&x.2.len()))
            .then(x.2[0].cmp(&y.2[0]))
    });
    let leaked_retained_size = groups.iter().map(|g| g.0).sum();
    let cluster_count = groups.len();

    let series_len = earlier.len() + 1;
    let final_classes = class_counts(s, &a.class);
    let clusters: Vec<Cluster> = groups
        .into_iter()
        .take(settings.top)
        .map(|(retained, shallow, mut members)| {
            members.sort_by_key(|&v| (std::cmp::Reverse(a.retained[v as usize]), v));
            let rep = members[0];
            let class_text = s.strings.bytes(a.class[rep as usize]).to_vec();
            let mut class_counts: Vec<u64> =
                earlier.iter().map(|c| c.class_count(&class_text)).collect();
            class_counts.push(
                final_classes
                    .get(class_text.as_slice())
                    .copied()
                    .unwrap_or(0),
            );
            let path_edges = graph::path_to(s, a, rep);
            let path = path_steps(s, a, &path_edges);
            let owner = finder.find(s, a, earlier, &path_edges);
            let count = members.len() as u64;
            let monotonic = |xs: &[u64]| xs.len() >= 3 && xs.windows(2).all(|w| w[0] < w[1]);
            let owner_grew = owner.as_ref().is_some_and(|o| {
                let e: Vec<u64> = o
                    .entries
                    .iter()
                    .map(|x| u64::from(x.unwrap_or(0)))
                    .collect();
                o.grew && (series_len < 3 || monotonic(&e))
            });
            let suspect = count >= settings.min_count
                && (owner_grew || (series_len >= 3 && monotonic(&class_counts)));
            Cluster {
                class: String::from_utf8_lossy(&class_text).into_owned(),
                name: s.strings.get(s.nodes.name[rep as usize]).into_owned(),
                count,
                retained_size: retained,
                shallow_size: shallow,
                suspect,
                path,
                owner,
                location: s.location(rep).map(|l| finder.names.source(s, l)),
                allocation_stack: allocation_stack(s, rep),
                sample_ids: members
                    .iter()
                    .take(10)
                    .map(|&v| s.nodes.id[v as usize])
                    .collect(),
                class_counts,
            }
        })
        .collect();

    let (growing_classes, growing_collections) = if series_len >= 3 {
        growth(earlier, s, a, &final_classes, &finder.collections, settings)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut snapshots: Vec<String> = earlier.iter().map(|c| c.name.clone()).collect();
    snapshots.push(final_name.to_owned());
    Report {
        snapshots,
        warnings,
        leak_suspected: clusters.iter().any(|c| c.suspect),
        candidate_count,
        leaked_count: leaked.len() as u64,
        leaked_retained_size,
        cluster_count,
        clusters,
        growing_classes,
        growing_collections,
    }
}

/// V8's internal stores and bookkeeping objects: looked through when deciding what a leaked
/// object belongs to, and never reported as leaked objects themselves.
pub(crate) struct Internal {
    system_prefix: Vec<bool>,
}

impl Internal {
    pub(crate) fn new(s: &Snapshot) -> Internal {
        let system_prefix = (0..s.strings.len() as StrId)
            .map(|id| s.strings.bytes(id).starts_with(b"system / "))
            .collect();
        Internal { system_prefix }
    }

    pub(crate) fn is_internal(&self, s: &Snapshot, v: u32) -> bool {
        let t = &s.types;
        let ty = s.nodes.ty[v as usize];
        ty == t.array || ty == t.hidden || self.system_prefix[s.nodes.name[v as usize] as usize]
    }

    /// Objects a user can act on: not internal, not code, not synthetic, not a number.
    fn reportable(&self, s: &Snapshot, v: u32) -> bool {
        let t = &s.types;
        let ty = s.nodes.ty[v as usize];
        !self.is_internal(s, v)
            && ty != t.code
            && ty != t.synthetic
            && t.node_names.get(ty as usize).is_none_or(|n| n != "number")
    }
}

/// The nearest dominator of `v` that is not an internal store (the root if none).
fn anchor(s: &Snapshot, a: &Analysis, internal: &Internal, v: u32) -> u32 {
    const MAX_STORES: usize = 64;
    let mut u = a.idom[v as usize];
    for _ in 0..MAX_STORES {
        if u == a.root || !internal.is_internal(s, u) {
            break;
        }
        u = a.idom[u as usize];
    }
    u
}

/// Marks the nodes that have a leaked object as a strict dominator-tree ancestor, so that
/// cluster sizes count each byte once.
fn inside_leaked(a: &Analysis, leaked: &BitSet) -> BitSet {
    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;
    let n = a.idom.len();
    let mut state = vec![UNKNOWN; n];
    state[a.root as usize] = NO;
    let mut chain = Vec::new();
    for v in 0..n {
        let mut u = v;
        while state[u] == UNKNOWN {
            chain.push(u);
            u = a.idom[u] as usize;
        }
        // `u`'s answer is known; each node on the chain is inside a leaked object if its
        // dominator is leaked or inside one.
        let mut parent = u;
        while let Some(w) = chain.pop() {
            state[w] = if leaked.get(parent) || state[parent] == YES {
                YES
            } else {
                NO
            };
            parent = w;
        }
    }
    let mut out = BitSet::new(n);
    for (v, &st) in state.iter().enumerate() {
        if st == YES {
            out.set(v);
        }
    }
    out
}

/// Path shapes: a hash of the classes and edge names along a shortest retaining path.
struct Shapes {
    /// Objects with at least this many properties are dictionaries: their keys are data.
    dictionary: FxHashMap<u32, bool>,
}

const DICTIONARY_MIN: usize = 32;

impl Shapes {
    fn new(s: &Snapshot, collections: &Collections) -> Shapes {
        // Dictionaries are rare; find them once rather than per path.
        let dictionary = (0..s.node_count() as u32)
            .into_par_iter()
            .filter(|&v| {
                collections.is_plain_object(s, v)
                    && s.nodes.edges(v).len() >= DICTIONARY_MIN
                    && s.nodes
                        .edges(v)
                        .filter(|&e| s.edges.ty[e] == s.types.e_property)
                        .count()
                        >= DICTIONARY_MIN
            })
            .map(|v| (v, true))
            .collect();
        Shapes { dictionary }
    }

    fn key(&self, s: &Snapshot, a: &Analysis, v: u32) -> u64 {
        let mut h = FxHasher::default();
        a.class[v as usize].hash(&mut h);
        let mut previous = None;
        let mut at = v;
        let mut steps = 0;
        while a.path_edge[at as usize] != crate::analysis::NO_EDGE && steps <= s.node_count() {
            let e = a.path_edge[at as usize] as usize;
            let from = graph::edge_source(s, e);
            let step = (
                s.edges.ty[e],
                self.edge_key(s, e, from),
                a.class[from as usize],
            );
            // A linked list (`next.next.next…`) has one shape whatever its length.
            if previous != Some(step) {
                step.hash(&mut h);
                previous = Some(step);
            }
            at = from;
            steps += 1;
        }
        h.finish()
    }

    /// The edge's name, or `u32::MAX` where the name is data: indexes, numeric names,
    /// dictionary keys.
    fn edge_key(&self, s: &Snapshot, e: usize, from: u32) -> u32 {
        const DATA: u32 = u32::MAX;
        let ty = s.edges.ty[e];
        if s.types.edge_name_is_index(ty) {
            return DATA;
        }
        let name = s.edges.name_or_index[e];
        let text = s.strings.bytes(name);
        if !text.is_empty() && text.iter().all(u8::is_ascii_digit) {
            return DATA;
        }
        if ty == s.types.e_property && self.dictionary.contains_key(&from) {
            return DATA;
        }
        name
    }
}

pub fn node_ref(s: &Snapshot, a: &Analysis, v: u32) -> NodeRef {
    NodeRef {
        id: s.nodes.id[v as usize],
        class: s.strings.get(a.class[v as usize]).into_owned(),
        ty: graph::node_type_name(s, v).to_owned(),
        self_size: u64::from(s.nodes.self_size[v as usize]),
        retained_size: a.retained[v as usize],
    }
}

pub fn path_steps(s: &Snapshot, a: &Analysis, edges: &[u32]) -> Vec<Step> {
    edges
        .iter()
        .map(|&e| Step {
            edge: graph::edge_label(s, e as usize),
            edge_type: graph::edge_type_name(s, e as usize).to_owned(),
            node: node_ref(s, a, s.edges.to[e as usize]),
        })
        .collect()
}

/// Resolves script ids to script names, and finds functions by their context.
pub struct Names {
    scripts: FxHashMap<u32, String>,
    /// Up to three closures of each context (`closure --context--> context`).
    functions: FxHashMap<u32, Vec<u32>>,
}

impl Names {
    /// Script names come from closures: `closure → shared → script → name`.
    pub fn new(s: &Snapshot) -> Names {
        let t = &s.types;
        let ids = |n: &[u8]| s.strings.ids_of(n);
        let (shared, script, name) = (
            ids(b"shared"),
            [ids(b"script"), ids(b"script_or_debug_info")].concat(),
            ids(b"name"),
        );
        let mut scripts = FxHashMap::default();
        for &(v, l) in &s.locations {
            if s.nodes.ty[v as usize] != t.closure || scripts.contains_key(&l.script_id) {
                continue;
            }
            let resolved = graph::find_edge(s, v, t.e_internal, &shared)
                .map(|e| s.edges.to[e])
                .and_then(|sfi| graph::find_edge(s, sfi, t.e_internal, &script))
                .map(|e| s.edges.to[e])
                .and_then(|scr| graph::find_edge(s, scr, t.e_internal, &name))
                .map(|e| s.edges.to[e])
                .filter(|&str_node| {
                    let ty = s.nodes.ty[str_node as usize];
                    ty == t.string || ty == t.cons_string || ty == t.sliced_string
                })
                .map(|str_node| s.strings.get(s.nodes.name[str_node as usize]).into_owned());
            if let Some(text) = resolved.filter(|t| !t.is_empty()) {
                scripts.insert(l.script_id, text);
            }
        }
        let context = ids(b"context");
        let mut functions = FxHashMap::default();
        for v in 0..s.node_count() as u32 {
            if s.nodes.ty[v as usize] == t.closure
                && let Some(e) = graph::find_edge(s, v, t.e_internal, &context)
            {
                let list: &mut Vec<u32> = functions.entry(s.edges.to[e]).or_default();
                if list.len() < 3 {
                    list.push(v);
                }
            }
        }
        Names { scripts, functions }
    }

    /// Up to three closures whose context is `context`.
    pub fn functions_of(&self, context: u32) -> &[u32] {
        self.functions.get(&context).map_or(&[], Vec::as_slice)
    }

    pub fn source(&self, _s: &Snapshot, l: crate::model::Location) -> SourceLocation {
        SourceLocation {
            script_id: l.script_id,
            script: self.scripts.get(&l.script_id).cloned(),
            line: l.line + 1,
            column: l.column + 1,
        }
    }
}

/// Finds who holds an object: the collection that grew to make room for it.
pub struct OwnerFinder {
    collections: Collections,
    names: Names,
}

/// Where on a path the owner is, before it is described.
#[derive(Debug, Clone, Copy)]
pub struct OwnerAt {
    /// Index into the path: `path[index]` is the edge into the owner.
    pub index: usize,
    /// The owner's node ordinal.
    pub node: u32,
    pub grew: bool,
}

impl OwnerFinder {
    pub fn new(s: &Snapshot) -> OwnerFinder {
        OwnerFinder {
            collections: Collections::new(s),
            names: Names::new(s),
        }
    }

    /// The owner of node `v` of `s` (see [`find`]), judged against the earlier snapshots.
    pub fn owner_of(
        &self,
        s: &Snapshot,
        a: &Analysis,
        earlier: &[Census],
        v: u32,
    ) -> Option<Owner> {
        let path = graph::path_to(s, a, v);
        self.find(s, a, earlier, &path)
    }

    /// The owner on `path` (a retaining path, root side first), described.
    fn find(&self, s: &Snapshot, a: &Analysis, earlier: &[Census], path: &[u32]) -> Option<Owner> {
        let at = self.locate(s, a, &earlier[0], path)?;
        Some(self.describe(s, a, earlier, path, at))
    }

    /// The nearest collection on the path that existed in the baseline and has more entries
    /// now; failing that, the nearest collection that existed in the baseline (neither a
    /// context, whose variable count never changes, nor a link of a list of leaked objects).
    /// Cheap: no text is built.
    pub fn locate(
        &self,
        s: &Snapshot,
        a: &Analysis,
        baseline: &Census,
        path: &[u32],
    ) -> Option<OwnerAt> {
        let leaked_class = a.class[s.edges.to[*path.last()? as usize] as usize];
        let mut fallback = None;
        // path[i] leads to node i; skip the leaked object itself (the last step).
        for index in (0..path.len() - 1).rev() {
            let node = s.edges.to[path[index] as usize];
            let Some((kind, now)) = self.collections.entries(s, node) else {
                continue;
            };
            let Some(before) = baseline.entries(s.nodes.id[node as usize]) else {
                continue; // New since the baseline: part of the leak, not its owner.
            };
            let at = OwnerAt {
                index,
                node,
                grew: now > before,
            };
            if at.grew {
                return Some(at);
            }
            if fallback.is_none() && kind != Kind::Context && a.class[node as usize] != leaked_class
            {
                fallback = Some(at);
            }
        }
        fallback
    }

    /// The owner found by [`OwnerFinder::locate`], with names, entry counts and functions.
    pub fn describe(
        &self,
        s: &Snapshot,
        a: &Analysis,
        earlier: &[Census],
        path: &[u32],
        at: OwnerAt,
    ) -> Owner {
        let v = at.node;
        let id = s.nodes.id[v as usize];
        let (kind, now) = self
            .collections
            .entries(s, v)
            .expect("located on a collection");
        let mut entries: Vec<Option<u32>> = earlier.iter().map(|c| c.entries(id)).collect();
        entries.push(Some(now));
        let holder = graph::edge_source(s, path[at.index] as usize);
        let (functions, location) = match self.names.functions.get(&holder) {
            Some(fs) => (
                fs.iter().map(|&f| function_name(s, f)).collect(),
                s.location(fs[0]).map(|l| self.names.source(s, l)),
            ),
            None => (Vec::new(), None),
        };
        Owner {
            name: owner_name(s, path, at.index),
            class: s.strings.get(a.class[v as usize]).into_owned(),
            kind: Some(kind),
            id,
            entries,
            grew: at.grew,
            held_by: s.strings.get(a.class[holder as usize]).into_owned(),
            functions,
            location,
            path_index: at.index,
        }
    }
}

/// A closure's name, `(anonymous)` when it has none.
pub(crate) fn function_name(s: &Snapshot, f: u32) -> String {
    match s.strings.get(s.nodes.name[f as usize]) {
        n if n.is_empty() => "(anonymous)".to_owned(),
        n => n.into_owned(),
    }
}

/// The name of the edge into path node `i`; an index or key is shown after the nearest named
/// edge before it (`timerListMap[60000]`).
fn owner_name(s: &Snapshot, path: &[u32], i: usize) -> String {
    let mut suffix = String::new();
    for j in (0..=i).rev() {
        let e = path[j] as usize;
        let name = s.edge_name(e);
        let is_index = s.types.edge_name_is_index(s.edges.ty[e])
            || name.is_empty()
            || name.bytes().all(|b| b.is_ascii_digit());
        if !is_index {
            return format!("{name}{suffix}");
        }
        if suffix.is_empty() {
            suffix = format!("[{name}]");
        }
    }
    graph::edge_label(s, path[i] as usize)
}

/// The allocation stack of `v` from the trace tree, innermost frame first.
fn allocation_stack(s: &Snapshot, v: u32) -> Vec<Frame> {
    let Some(trace) = &s.nodes.trace_node_id else {
        return Vec::new();
    };
    let id = trace[v as usize];
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
            });
        }
        if node.parent == u32::MAX {
            break;
        }
        at = node.parent as usize;
    }
    frames
}

/// Classes and collections that grew at every step of the series.
fn growth(
    earlier: &[Census],
    s: &Snapshot,
    a: &Analysis,
    final_classes: &FxHashMap<&[u8], u64>,
    collections: &Collections,
    settings: &Settings,
) -> (Vec<Growth>, Vec<CollectionGrowth>) {
    let top = settings.top;
    // Growth below `min_count` in all is noise (V8's own caches add a few entries).
    let rising = |xs: &[u64]| {
        xs.windows(2).all(|w| w[0] < w[1]) && xs[xs.len() - 1] - xs[0] >= settings.min_count
    };
    let mut classes: Vec<Growth> = final_classes
        .iter()
        .filter_map(|(&name, &n)| {
            let mut series: Vec<u64> = earlier.iter().map(|c| c.class_count(name)).collect();
            series.push(n);
            rising(&series).then(|| Growth {
                class: String::from_utf8_lossy(name).into_owned(),
                counts: series,
            })
        })
        .collect();
    let delta = |xs: &[u64]| xs.last().copied().unwrap_or(0) - xs.first().copied().unwrap_or(0);
    classes.sort_by(|x, y| {
        delta(&y.counts)
            .cmp(&delta(&x.counts))
            .then_with(|| x.class.cmp(&y.class))
    });
    classes.truncate(top);

    let mut grown: Vec<(u32, Vec<u32>)> = (0..s.node_count() as u32)
        .into_par_iter()
        .filter_map(|v| {
            let (kind, now) = collections.entries(s, v)?;
            if kind == Kind::Context {
                return None;
            }
            let id = s.nodes.id[v as usize];
            let mut series = Vec::with_capacity(earlier.len() + 1);
            for c in earlier {
                series.push(c.entries(id)?);
            }
            series.push(now);
            series
                .windows(2)
                .all(|w| w[0] < w[1])
                .then_some((v, series))
        })
        .collect();
    grown.sort_by_key(|(v, e)| (std::cmp::Reverse(e[e.len() - 1] - e[0]), *v));
    grown.truncate(top);
    let collections = grown
        .into_iter()
        .map(|(v, entries)| {
            let path = graph::path_to(s, a, v);
            let name = if path.is_empty() {
                String::new()
            } else {
                owner_name(s, &path, path.len() - 1)
            };
            CollectionGrowth {
                name,
                class: s.strings.get(a.class[v as usize]).into_owned(),
                id: s.nodes.id[v as usize],
                entries,
            }
        })
        .collect();
    (classes, collections)
}
