//! Graph helpers over a loaded snapshot: edge sources, retainers, node labels and collection
//! entry counts. Shared by the leak analysis, the findings and the `show`/`retainers` views.

use crate::analysis::Analysis;
use crate::model::{EdgeIdx, NodeCol, NodeIdx, Snapshot, StrId};

/// The node that owns edge `e` (edges are stored in CSR order, so this is a binary search).
pub fn edge_source(s: &Snapshot, e: EdgeIdx) -> NodeIdx {
    NodeIdx(s.nodes.first_edge.partition_point(|&f| f <= e).0 - 1)
}

/// Incoming edges of every node, in CSR form (built on demand: it costs 8 bytes per edge).
pub struct Retainers {
    /// Where each node's retainers start in `edges`; one entry more than there are nodes.
    first: NodeCol<u32>,
    edges: Vec<EdgeIdx>,
}

impl Retainers {
    pub fn new(s: &Snapshot) -> Retainers {
        let n = s.node_count();
        let mut first: NodeCol<u32> = vec![0u32; n + 1].into();
        for &t in &s.edges.to {
            first[NodeIdx(t.0 + 1)] += 1;
        }
        for i in 0..n {
            first.raw[i + 1] += first.raw[i];
        }
        let mut fill = first.clone();
        let mut edges = vec![EdgeIdx(0); s.edge_count()];
        for (e, &t) in s.edges.to.iter_enumerated() {
            edges[fill[t] as usize] = e;
            fill[t] += 1;
        }
        Retainers { first, edges }
    }

    /// The edges pointing at `v`, in edge order.
    pub fn of(&self, v: NodeIdx) -> &[EdgeIdx] {
        &self.edges[self.first[v] as usize..self.first[NodeIdx(v.0 + 1)] as usize]
    }
}

/// The shortest retaining path of `v` that DevTools' distance pass found, as edges from the
/// root's side to `v`. Empty for the root and for nodes no path reaches.
pub fn path_to(s: &Snapshot, a: &Analysis, v: NodeIdx) -> Vec<EdgeIdx> {
    let mut path = Vec::new();
    let mut at = v;
    while a.path_edge[at] != crate::analysis::NO_EDGE {
        let e = a.path_edge[at];
        path.push(e);
        at = edge_source(s, e);
        if path.len() > s.node_count() {
            break; // Cannot happen with BFS edges; guards against a corrupt array.
        }
    }
    path.reverse();
    path
}

/// How an edge is shown in a path: `.name` for properties, `[3]` for elements,
/// `name` for context variables, `(internal name)` for internal and hidden edges.
pub fn edge_label(s: &Snapshot, e: EdgeIdx) -> String {
    let t = &s.types;
    let ty = s.edges.ty[e];
    let name = s.edge_name(e);
    if ty == t.e_element {
        format!("[{name}]")
    } else if ty == t.e_property || ty == t.e_context || ty == t.e_shortcut {
        name.into_owned()
    } else {
        format!(
            "({} {name})",
            t.edge_names.get(ty as usize).map_or("?", String::as_str)
        )
    }
}

/// A class name as Node users know it. DevTools names Node's C++ objects `Node / ZlibContext`
/// and, as it would a DOM node, `Detached Node / ZlibContext` when no JS object holds them:
/// for Node users these are native objects, not DOM nodes.
pub fn display_class(name: &str) -> std::borrow::Cow<'_, str> {
    let native = name.strip_prefix("Detached ").unwrap_or(name);
    match native.strip_prefix("Node / ") {
        Some(rest) => format!("{rest} (native)").into(),
        None => name.into(),
    }
}

/// Whether `v` is a global object: `global` in Node (`global (global*)` from newest V8),
/// `Window …` in browsers.
pub fn is_global_object(s: &Snapshot, v: NodeIdx) -> bool {
    s.nodes.ty[v] == s.types.object && is_global_name(s.strings.bytes(s.nodes.name[v]))
}

/// Whether a node name is a global object's (see [`is_global_object`]).
pub fn is_global_name(name: &[u8]) -> bool {
    name == b"global"
        || name.starts_with(b"global (")
        || name == b"Window"
        || name.starts_with(b"Window ")
}

/// Whether `v` is V8's metadata: code, or a hidden class (`object shape`; older snapshots
/// write it as a `hidden` node named `system / Map`). Shared by design between unrelated
/// objects; its edges lead to constructors and back pointers, not to data.
pub fn is_metadata(s: &Snapshot, v: NodeIdx) -> bool {
    let t = &s.types;
    let ty = s.nodes.ty[v];
    ty == t.code
        || ty == t.object_shape
        || (ty == t.hidden && s.strings.bytes(s.nodes.name[v]) == b"system / Map")
}

/// Whether `v` is a string (flat, concatenated or sliced).
pub fn is_string(s: &Snapshot, v: NodeIdx) -> bool {
    let t = &s.types;
    let ty = s.nodes.ty[v];
    ty == t.string || ty == t.cons_string || ty == t.sliced_string
}

/// Whether `v` is one of V8's stores (an object's property or element array, a Map's table).
pub fn is_store(s: &Snapshot, v: NodeIdx) -> bool {
    let ty = s.nodes.ty[v];
    ty == s.types.array || ty == s.types.hidden
}

/// The edge type's name (`property`, `element`, …).
pub fn edge_type_name(s: &Snapshot, e: EdgeIdx) -> &str {
    let ty = s.edges.ty[e] as usize;
    s.types.edge_names.get(ty).map_or("?", String::as_str)
}

/// The node type's name (`object`, `closure`, …).
pub fn node_type_name(s: &Snapshot, v: NodeIdx) -> &str {
    let ty = s.nodes.ty[v] as usize;
    s.types.node_names.get(ty).map_or("?", String::as_str)
}

/// The first edge of `v` of type `ty` whose name is one of `names`.
pub fn find_edge(s: &Snapshot, v: NodeIdx, ty: u8, names: &[StrId]) -> Option<EdgeIdx> {
    s.nodes
        .edges(v)
        .find(|&e| s.edges.ty[e] == ty && names.contains(&s.edges.name(e)))
}

/// The retained size of a set of nodes with each byte counted once: a node that another node
/// of the set dominates adds nothing (a shared scope counts once, not once per closure).
pub fn retained_union(a: &Analysis, nodes: &[NodeIdx]) -> u64 {
    let set: rustc_hash::FxHashSet<NodeIdx> = nodes.iter().copied().collect();
    // Whether a node has a strict dominator in the set; each node on a walk is answered once.
    let mut covered: rustc_hash::FxHashMap<NodeIdx, bool> = rustc_hash::FxHashMap::default();
    let mut chain = Vec::new();
    let mut total = 0;
    for &v in &set {
        let mut u = a.idom[v];
        let answer = loop {
            if set.contains(&u) {
                break true;
            }
            if let Some(&known) = covered.get(&u) {
                break known;
            }
            if u == a.root {
                break false;
            }
            chain.push(u);
            u = a.idom[u];
        };
        for w in chain.drain(..) {
            covered.insert(w, answer);
        }
        if !answer {
            total += a.retained[v];
        }
    }
    total
}

/// The entries of a Map's table. V8 keeps each entry in three slots (key, value, chain) and
/// names every edge of the table by its slot; it writes no edge to a small integer. So an entry
/// is one or two edges (a string key and its value are two), in slots `i` and `i + 1` of one
/// entry: the slot pairs show where entries start, and each entry counts once.
fn map_entries(s: &Snapshot, table: NodeIdx) -> u32 {
    let mut slots: Vec<u32> = s
        .nodes
        .edges(table)
        .filter(|&e| s.edges.ty[e] != s.types.e_weak)
        .filter_map(|e| {
            if s.types.edge_name_is_index(s.edges.ty[e]) {
                Some(s.edges.name_or_index[e])
            } else {
                std::str::from_utf8(s.strings.bytes(s.edges.name(e)))
                    .ok()?
                    .parse()
                    .ok()
            }
        })
        .collect();
    slots.sort_unstable();
    let Some(start) = slots
        .windows(2)
        .find(|w| u64::from(w[1]) == u64::from(w[0]) + 1)
        .map(|w| u64::from(w[0]) % 3)
    else {
        return slots.len() as u32; // One edge per entry.
    };
    let mut entries: Vec<u64> = slots
        .iter()
        .map(|&i| (u64::from(i) + 3 - start) / 3)
        .collect();
    entries.dedup();
    entries.len() as u32
}

/// What kind of collection a node is, for entry counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Map,
    Set,
    Array,
    /// An object's own properties (objects used as dictionaries).
    Object,
    /// A closure context's variables.
    Context,
}

/// Recognises collections and counts their entries. Built once per snapshot: it looks names up
/// by string id.
pub struct Collections {
    map: Vec<StrId>,
    plain_map: Vec<StrId>,
    weak: Vec<StrId>,
    set: Vec<StrId>,
    array: Vec<StrId>,
    table: Vec<StrId>,
    elements: Vec<StrId>,
    context: Vec<StrId>,
    object_like: Vec<StrId>,
    proto_like: Vec<StrId>,
}

impl Collections {
    pub fn new(s: &Snapshot) -> Collections {
        let ids = |names: &[&[u8]]| -> Vec<StrId> {
            names.iter().flat_map(|n| s.strings.ids_of(n)).collect()
        };
        Collections {
            map: ids(&[b"Map", b"WeakMap"]),
            plain_map: ids(&[b"Map"]),
            weak: ids(&[b"WeakMap", b"WeakSet"]),
            set: ids(&[b"Set", b"WeakSet"]),
            array: ids(&[b"Array"]),
            table: ids(&[b"table"]),
            elements: ids(&[b"elements"]),
            context: ids(&[b"system / Context"]),
            object_like: ids(&[b"Object"]),
            proto_like: ids(&[b"__proto__", b"map", b"properties", b"elements"]),
        }
    }

    pub fn kind(&self, s: &Snapshot, v: NodeIdx) -> Option<Kind> {
        let t = &s.types;
        let (ty, name) = (s.nodes.ty[v], s.nodes.name[v]);
        if self.context.contains(&name) && (ty == t.object || ty == t.hidden) {
            return Some(Kind::Context);
        }
        if ty != t.object {
            return None;
        }
        Some(if self.map.contains(&name) {
            Kind::Map
        } else if self.set.contains(&name) {
            Kind::Set
        } else if self.array.contains(&name) {
            Kind::Array
        } else {
            Kind::Object
        })
    }

    /// The number of entries of collection `v`: a Map's entries (see `map_entries`), a Set's
    /// table slots that hold objects (V8 records no edge to a small integer), an array's
    /// elements, an object's properties and elements, a context's variables. `None` if `v` is
    /// not a collection.
    pub fn entries(&self, s: &Snapshot, v: NodeIdx) -> Option<(Kind, u32)> {
        let t = &s.types;
        let kind = self.kind(s, v)?;
        let count_elements = |store: NodeIdx| -> u32 {
            s.nodes
                .edges(store)
                .filter(|&e| {
                    let ty = s.edges.ty[e];
                    ty == t.e_element || ty == t.e_internal || ty == t.e_property
                })
                .count() as u32
        };
        let n = match kind {
            Kind::Map if self.plain_map.contains(&s.nodes.name[v]) => {
                find_edge(s, v, t.e_internal, &self.table)
                    .map_or(0, |e| map_entries(s, s.edges.to[e]))
            }
            Kind::Map | Kind::Set => find_edge(s, v, t.e_internal, &self.table)
                .map_or(0, |e| count_elements(s.edges.to[e])),
            Kind::Array => {
                let own = s
                    .nodes
                    .edges(v)
                    .filter(|&e| s.edges.ty[e] == t.e_element)
                    .count() as u32;
                // V8 may list the elements on the array and on its store: count them once.
                own.max(
                    find_edge(s, v, t.e_internal, &self.elements)
                        .map_or(0, |e| count_elements(s.edges.to[e])),
                )
            }
            Kind::Object => s
                .nodes
                .edges(v)
                .filter(|&e| {
                    let ty = s.edges.ty[e];
                    ty == t.e_element
                        || (ty == t.e_property && !self.proto_like.contains(&s.edges.name(e)))
                })
                .count() as u32,
            Kind::Context => s
                .nodes
                .edges(v)
                .filter(|&e| s.edges.ty[e] == t.e_context)
                .count() as u32,
        };
        Some((kind, n))
    }

    /// Whether `v` is a WeakMap or WeakSet: it keeps nothing alive (its entries live as long
    /// as their keys), so it is never a leak's owner.
    pub fn is_weak(&self, s: &Snapshot, v: NodeIdx) -> bool {
        s.nodes.ty[v] == s.types.object && self.weak.contains(&s.nodes.name[v])
    }

    /// Whether `v` is a plain `Object` (for dictionary detection).
    pub fn is_plain_object(&self, s: &Snapshot, v: NodeIdx) -> bool {
        s.nodes.ty[v] == s.types.object && self.object_like.contains(&s.nodes.name[v])
    }
}
