//! Leaked objects that leak together become one cluster, described by its parts and by what
//! its objects keep alive.
//!
//! Three links join two leaked objects: one owner holds both (the values and the keys of a
//! dictionary, the entries of one Map); one holds the other (a listener and the scope it
//! closes over, itself held by another listener); or, when no collection grew, their
//! retaining paths have one shape. A leaked logger with its stream state, bound functions and
//! six listeners is then one cluster with parts, not ten.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::NativePart;
use crate::analysis::Analysis;
use crate::code::{self, AppPaths, Code, Origin};
use crate::graph;
use crate::model::{Location, NodeCol, NodeIdx, Snapshot, StrId};

/// No leaked object (an index into [`Leaks::leaked`]), no group.
pub(super) const NONE: u32 = u32::MAX;
/// No owner (a node).
pub(super) const NO_OWNER: NodeIdx = NodeIdx(u32::MAX);

/// The leaked objects, and for every node the leaked object it is inside.
pub(super) struct Leaks {
    /// Node ordinals, sorted.
    pub leaked: Vec<NodeIdx>,
    /// For every node, the index in `leaked` of its nearest dominator-tree ancestor-or-self
    /// that is a leaked object ([`NONE`] if none).
    pub root_of: NodeCol<u32>,
}

impl Leaks {
    /// Each node's answer is found once (a memoised walk up the dominator tree), so the cost
    /// is linear whatever the tree's depth.
    pub fn new(a: &Analysis, leaked: Vec<NodeIdx>) -> Leaks {
        const UNKNOWN: u32 = u32::MAX - 1;
        let n = a.idom.len();
        let mut root_of: NodeCol<u32> = vec![UNKNOWN; n].into();
        for (i, &v) in leaked.iter().enumerate() {
            root_of[v] = i as u32;
        }
        if root_of[a.root] == UNKNOWN {
            root_of[a.root] = NONE;
        }
        let mut chain = Vec::new();
        for v in a.idom.keys() {
            let mut u = v;
            while root_of[u] == UNKNOWN {
                chain.push(u);
                u = a.idom[u];
            }
            let answer = root_of[u];
            for w in chain.drain(..) {
                root_of[w] = answer;
            }
        }
        Leaks { leaked, root_of }
    }

    /// Whether leaked object `i` is inside no other leaked object: its retained size is then
    /// counted for it (and for no other).
    pub fn top_level(&self, a: &Analysis, i: u32) -> bool {
        self.root_of[a.idom[self.leaked[i as usize]]] == NONE
    }

    /// The outermost leaked object around leaked object `i` (`i` itself if it is top-level):
    /// its bytes are counted there.
    fn outermost(&self, a: &Analysis, mut i: u32) -> u32 {
        loop {
            match self.root_of[a.idom[self.leaked[i as usize]]] {
                NONE => return i,
                outer => i = outer,
            }
        }
    }
}

/// A cluster before it is described: indexes into the leaked objects, and their retained size
/// with each byte counted once.
pub(super) struct Group {
    pub members: Vec<u32>,
    pub retained: u64,
}

/// Joins the leaked objects (`owners[i]` is the grown collection holding `leaked[i]` or
/// [`NONE`]; `keys[i]` the shape of its path, used when it has no owner) into clusters,
/// largest first. `bridges` are new scopes outside every leaked object (V8 never reports a
/// scope as leaked): listeners that close over one scope leak together through it.
pub(super) fn clusters(
    s: &Snapshot,
    a: &Analysis,
    (leaks, bridges): (&Leaks, &[NodeIdx]),
    owners: &[NodeIdx],
    keys: &[u64],
) -> Vec<Group> {
    let l = leaks.leaked.len();
    let mut sets = UnionFind::new(l + bridges.len());
    let mut first: FxHashMap<(bool, u64), u32> = FxHashMap::default();
    for i in 0..l {
        let key = if owners[i] == NO_OWNER {
            (false, keys[i])
        } else {
            (true, u64::from(owners[i].0))
        };
        let j = *first.entry(key).or_insert(i as u32);
        sets.union(i as u32, j);
    }
    // The set element a node belongs to: the leaked object it is inside, or itself if it is
    // a bridge.
    let element = |v: NodeIdx| -> Option<u32> {
        match leaks.root_of[v] {
            NONE => bridges.binary_search(&v).ok().map(|i| (l + i) as u32),
            root => Some(root),
        }
    };
    let t = &s.types;
    let previous = s.strings.ids_of(b"previous");
    let links: Vec<(u32, u32)> = s
        .nodes
        .par_all()
        .filter_map(|x| element(x).map(|from| (x, from)))
        .flat_map_iter(|(x, from)| {
            let previous = &previous;
            s.nodes.edges(x).filter_map(move |e| {
                let y = s.edges.to[e];
                // V8's metadata (maps, code) is shared by design, and a scope's enclosing
                // scope (`previous`) is shared by every call: neither links two leaks.
                let link = s.edges.ty[e] != t.e_weak
                    && !graph::is_metadata(s, y)
                    && !(s.edges.ty[e] == t.e_internal && previous.contains(&s.edges.name(e)));
                link.then(|| element(y))
                    .flatten()
                    .filter(|&to| to != from)
                    .map(|to| (from, to))
            })
        })
        .collect();
    for (x, y) in links {
        sets.union(x, y);
    }

    let mut by_set: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for i in 0..l as u32 {
        by_set.entry(sets.find(i)).or_default().push(i);
    }
    let mut groups: Vec<Group> = by_set
        .into_values()
        .map(|members| {
            let retained = members
                .iter()
                .filter(|&&i| leaks.top_level(a, i))
                .map(|&i| a.retained[leaks.leaked[i as usize]])
                .sum();
            Group { members, retained }
        })
        .collect();
    groups.sort_by_key(|g| largest_first(g.retained, &g.members));
    groups
}

/// The sort key of a set of objects: most retained first, then most objects, then the first
/// object (for a stable order).
fn largest_first<T: Copy>(
    retained: u64,
    members: &[T],
) -> (std::cmp::Reverse<u64>, std::cmp::Reverse<usize>, T) {
    (
        std::cmp::Reverse(retained),
        std::cmp::Reverse(members.len()),
        members[0],
    )
}

/// The class most of `members` have.
pub(super) fn most_common_class(a: &Analysis, members: &[NodeIdx]) -> StrId {
    let mut counts: FxHashMap<StrId, u32> = FxHashMap::default();
    for &v in members {
        *counts.entry(a.class[v]).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(class, n)| (n, std::cmp::Reverse(class)))
        .map_or(StrId(0), |(class, _)| class)
}

/// The distinct owners of a group's objects, sorted.
pub(super) fn distinct_owners(g: &Group, owners: &[NodeIdx]) -> Vec<NodeIdx> {
    let mut found: Vec<NodeIdx> = g
        .members
        .iter()
        .map(|&i| owners[i as usize])
        .filter(|&o| o != NO_OWNER)
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The leaked objects of one kind in a group.
pub(super) struct PartMembers {
    pub label: String,
    pub class: StrId,
    /// For closures: the function's name.
    pub function: Option<StrId>,
    pub origin: Origin,
    /// Node ordinals, largest retained first.
    pub members: Vec<NodeIdx>,
    pub retained: u64,
}

/// A group's leaked objects by kind (as people name it: two class names that read the same,
/// `Node / ZlibContext` and `Detached Node / ZlibContext`, are one kind), largest first. A
/// string that is a key in a store is a kind of its own.
pub(super) fn parts(
    s: &Snapshot,
    a: &Analysis,
    (paths, code): (&AppPaths, &Code),
    g: &Group,
    leaks: &Leaks,
) -> Vec<PartMembers> {
    let t = &s.types;
    let mut by_kind: FxHashMap<String, Vec<NodeIdx>> = FxHashMap::default();
    for &i in &g.members {
        let v = leaks.leaked[i as usize];
        // A dictionary's keys sit in its property store, reached by V8's internal edges; its
        // values by property edges. Both are strings in a string-to-string dictionary.
        let key = graph::is_string(s, v)
            && paths.parent_edges(s, a, v).next().is_some_and(|e| {
                s.edges.ty[e] == t.e_internal && graph::is_store(s, graph::edge_source(s, e))
            });
        let mut label = label(s, code, a.class[v], v);
        if key {
            label.push_str(" keys");
        }
        by_kind.entry(label).or_default().push(v);
    }
    let mut parts: Vec<PartMembers> = by_kind
        .into_iter()
        .map(|(label, mut members)| {
            members.sort_by_key(|&v| (std::cmp::Reverse(a.retained[v]), v));
            let rep = members[0];
            PartMembers {
                label,
                class: a.class[rep],
                function: (s.nodes.ty[rep] == t.closure).then(|| s.nodes.name[rep]),
                origin: origin(s, code, rep),
                retained: members
                    .iter()
                    .filter(|&&v| leaks.root_of[a.idom[v]] == NONE)
                    .map(|&v| a.retained[v])
                    .sum(),
                members,
            }
        })
        .collect();
    parts.sort_by_key(|p| largest_first(p.retained, &p.members));
    parts
}

/// What a group's objects keep alive: its native memory and the named classes inside it.
#[derive(Default)]
pub(super) struct Inside {
    pub native_size: u64,
    pub native: Vec<NativePart>,
    pub classes: Vec<InsideClass>,
    /// Closures of the app's own functions, most first.
    pub functions: Vec<InsideFunction>,
}

/// Closures of one of the app's functions inside a group.
pub(super) struct InsideFunction {
    pub name: StrId,
    pub location: Location,
    pub count: u64,
    /// One of the closures.
    pub first: NodeIdx,
}

/// Instances of one class that is not generic inside a group (its leaked objects included).
pub(super) struct InsideClass {
    pub label: String,
    pub count: u64,
    /// Their retained sizes summed (an instance inside another counts in both).
    pub retained: u64,
    pub origin: Origin,
}

/// At most this many kinds of native memory are named per cluster.
const NATIVE_KINDS: usize = 3;

/// [`Inside`] of each of `groups`, in one pass over the nodes inside leaked objects. A node
/// counts for the group of the outermost leaked object around it, as its bytes do.
pub(super) fn contents(
    s: &Snapshot,
    a: &Analysis,
    code: &Code,
    leaks: &Leaks,
    groups: &[Group],
) -> Vec<Inside> {
    let mut group_of = vec![NONE; leaks.leaked.len()];
    for (k, g) in groups.iter().enumerate() {
        for &i in &g.members {
            group_of[i as usize] = k as u32;
        }
    }
    let t = &s.types;
    // Kinds by the name people read (two DevTools names can read the same).
    let mut labels: FxHashMap<StrId, Option<String>> = FxHashMap::default();
    let mut native: Vec<FxHashMap<String, u64>> = vec![FxHashMap::default(); groups.len()];
    let mut classes: Vec<FxHashMap<String, (u64, u64, NodeIdx)>> =
        vec![FxHashMap::default(); groups.len()];
    let mut functions: Vec<FxHashMap<(StrId, Location), (u64, NodeIdx)>> =
        vec![FxHashMap::default(); groups.len()];
    for (x, &root) in leaks.root_of.iter_enumerated() {
        if root == NONE {
            continue;
        }
        let k = group_of[leaks.outermost(a, root) as usize];
        if k == NONE {
            continue;
        }
        let k = k as usize;
        let ty = s.nodes.ty[x];
        if ty == t.native {
            let name = native_name(&s.strings.get(s.nodes.name[x])).to_owned();
            *native[k].entry(name).or_default() += u64::from(s.nodes.self_size[x]);
            continue;
        }
        if ty == t.closure {
            if let Some(l) = s.location(x)
                && code.origin_of_script(l.script_id) == Origin::App
            {
                functions[k].entry((s.nodes.name[x], l)).or_insert((0, x)).0 += 1;
            }
            continue;
        }
        let class = a.class[x];
        let named = labels.entry(class).or_insert_with(|| {
            let text = s.strings.get(class);
            (!code::is_generic(&text)).then(|| graph::display_class(&text).into_owned())
        });
        if let Some(name) = named {
            let c = classes[k].entry(name.clone()).or_insert((0, 0, x));
            c.0 += 1;
            c.1 += a.retained[x];
        }
    }
    native
        .into_iter()
        .zip(classes)
        .zip(functions)
        .map(|((native, classes), functions)| {
            let mut kinds: Vec<NativePart> = native
                .into_iter()
                .map(|(name, size)| NativePart { name, size })
                .collect();
            kinds.sort_by(|x, y| y.size.cmp(&x.size).then_with(|| x.name.cmp(&y.name)));
            let native_size = kinds.iter().map(|k| k.size).sum();
            kinds.truncate(NATIVE_KINDS);
            let mut classes: Vec<InsideClass> = classes
                .into_iter()
                .map(|(label, (count, retained, first))| InsideClass {
                    label,
                    count,
                    retained,
                    origin: origin(s, code, first),
                })
                .collect();
            classes.sort_by(|x, y| {
                y.retained
                    .cmp(&x.retained)
                    .then_with(|| x.label.cmp(&y.label))
            });
            let mut functions: Vec<InsideFunction> = functions
                .into_iter()
                .map(|((name, location), (count, first))| InsideFunction {
                    name,
                    location,
                    count,
                    first,
                })
                .collect();
            functions.sort_by_key(|f| {
                (
                    std::cmp::Reverse(f.count),
                    f.location.script_id,
                    f.location.line,
                    f.location.column,
                )
            });
            Inside {
                native_size,
                native: kinds,
                classes,
                functions,
            }
        })
        .collect()
}

/// A native node's name without DevTools' prefixes: `Node / zlib_memory` → `zlib_memory`.
fn native_name(name: &str) -> &str {
    let name = name.strip_prefix("Detached ").unwrap_or(name);
    name.strip_prefix("Node / ")
        .or_else(|| name.strip_prefix("system / "))
        .unwrap_or(name)
}

/// How people name objects of `class` (like `v`): `function onunpipe`, `bound function`,
/// `closure scope`, `ZlibContext (native)`, `CallContext`.
fn label(s: &Snapshot, code: &Code, class: StrId, v: NodeIdx) -> String {
    let t = &s.types;
    let ty = s.nodes.ty[v];
    if ty == t.closure {
        let name = s.strings.get(s.nodes.name[v]);
        return if name == "native_bind" {
            "bound function".to_owned()
        } else {
            format!("function {}", code::function_name(s, v))
        };
    }
    if code.is_context(s, v) {
        return "closure scope".to_owned();
    }
    graph::display_class(&s.strings.get(class)).into_owned()
}

/// Who wrote the code that made `v`: its function's script, or its constructor's.
fn origin(s: &Snapshot, code: &Code, v: NodeIdx) -> Origin {
    if code.is_context(s, v) {
        return code.origin_of_context(s, v);
    }
    s.location(v)
        .map_or(Origin::Unknown, |l| code.origin_of_script(l.script_id))
}

/// Disjoint sets with path halving and union by size.
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    fn union(&mut self, x: u32, y: u32) {
        let (mut x, mut y) = (self.find(x), self.find(y));
        if x == y {
            return;
        }
        if self.size[x as usize] < self.size[y as usize] {
            std::mem::swap(&mut x, &mut y);
        }
        self.parent[y as usize] = x;
        self.size[x as usize] += self.size[y as usize];
    }
}
