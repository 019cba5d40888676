//! The Summary view (class aggregates, `buildAggregates` + `calculateClassesRetainedSize`) and
//! the Statistics view (`calculateStatistics`).

use rustc_hash::FxHashMap;
use serde::Serialize;

use super::Analysis;
use crate::bits::BitSet;
use typed_index_collections::{TiSlice, TiVec};

use crate::model::{Location, NodeCol, NodeIdx, Snapshot, StrId};

/// One row of the Summary view: the nodes of one class key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassRow {
    pub name: String,
    /// Objects are grouped by their constructor's source location when the file records one.
    pub location: Option<Location>,
    /// Where the script's source map says `location` came from (filled by whoever prints the
    /// row: see [`crate::code::sources`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<crate::code::Original>,
    /// Instances with a non-zero (adjusted) shallow size.
    pub count: u64,
    pub shallow_size: u64,
    /// The retained size of the instances not dominated by another instance of the class.
    pub retained_size: u64,
    /// The least distance of an instance, raw: -5 when unreached, ≥ 100000000 for system objects.
    pub distance: i32,
}

/// The Statistics view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statistics {
    pub total: u64,
    pub v8heap: V8Heap,
    pub native: Native,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V8Heap {
    pub total: u64,
    pub code: u64,
    pub strings: u64,
    pub js_arrays: u64,
    pub system: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Native {
    pub total: u64,
    pub typed_arrays: u64,
}

/// Each node's class key, densely numbered, and what each key is.
pub struct ClassKeys {
    /// The key of each node: an index into `keys`.
    pub of_node: NodeCol<u32>,
    pub keys: Vec<(StrId, Option<Location>)>,
}

/// Groups nodes by DevTools' class key: the class name, plus the location for `object` nodes
/// that have one.
pub fn class_keys(s: &Snapshot, a: &Analysis) -> ClassKeys {
    const NONE: u32 = u32::MAX;
    let mut by_name: TiVec<StrId, u32> = vec![NONE; s.strings.len()].into();
    let mut by_location: FxHashMap<(StrId, Location), u32> = FxHashMap::default();
    let mut keys = Vec::new();
    let mut of_node = NodeCol::with_capacity(s.node_count());
    let mut locations = s.locations.iter().peekable();
    for v in s.nodes.all() {
        let class = a.class[v];
        let mut location = None;
        while let Some(&&(n, l)) = locations.peek() {
            if n > v {
                break;
            }
            if n == v {
                location = Some(l);
            }
            locations.next();
        }
        let key = match location.filter(|_| s.nodes.ty[v] == s.types.object) {
            Some(l) => *by_location.entry((class, l)).or_insert_with(|| {
                keys.push((class, Some(l)));
                keys.len() as u32 - 1
            }),
            None => {
                let slot = &mut by_name[class];
                if *slot == NONE {
                    keys.push((class, None));
                    *slot = keys.len() as u32 - 1;
                }
                *slot
            }
        };
        of_node.push(key);
    }
    ClassKeys { of_node, keys }
}

/// The Summary view: every class, by retained size, largest first.
pub fn summary(s: &Snapshot, a: &Analysis) -> Vec<ClassRow> {
    let keys = class_keys(s, a);
    let mut rows: Vec<ClassRow> = keys
        .keys
        .iter()
        .map(|&(class, location)| ClassRow {
            name: s.strings.get(class).into_owned(),
            location,
            original: None,
            count: 0,
            shallow_size: 0,
            retained_size: 0,
            distance: i32::MAX,
        })
        .collect();
    for v in s.nodes.all() {
        let size = s.nodes.self_size[v];
        if size == 0 {
            continue;
        }
        let row = &mut rows[keys.of_node[v] as usize];
        row.count += 1;
        row.shallow_size += u64::from(size);
        row.distance = row.distance.min(a.distance[v]);
    }
    class_retained_sizes(a, &s.nodes.self_size, &keys.of_node, &mut rows);
    rows.retain(|r| r.count > 0);
    rows.sort_by(|x, y| {
        y.retained_size
            .cmp(&x.retained_size)
            .then_with(|| x.name.cmp(&y.name))
            .then_with(|| x.location.cmp(&y.location))
    });
    rows
}

/// A class's retained size counts an instance only when no dominator-tree ancestor is a counted
/// instance of the same class (so nothing is counted twice).
fn class_retained_sizes(
    a: &Analysis,
    shallow: &TiSlice<NodeIdx, u32>,
    key_of: &TiSlice<NodeIdx, u32>,
    rows: &mut [ClassRow],
) {
    let n = a.idom.len();
    let root = a.root;
    let after = |v: NodeIdx| NodeIdx(v.0 + 1);
    // The dominator tree's children, in CSR form: `first` has one entry more than there are
    // nodes, and holds positions in `children`.
    let mut first: NodeCol<u32> = vec![0u32; n + 1].into();
    for (v, &d) in a.idom.iter_enumerated() {
        if v != root {
            first[after(d)] += 1;
        }
    }
    for i in 0..n {
        first.raw[i + 1] += first.raw[i];
    }
    // Filled from the back of each slot, so that `first` ends up as the slots' starts.
    for i in 0..n {
        first.raw[i] = first.raw[i + 1];
    }
    let mut children = vec![NodeIdx(0); n.saturating_sub(1)];
    for (v, &d) in a.idom.iter_enumerated().rev() {
        if v != root {
            first[d] -= 1;
            children[first[d] as usize] = v;
        }
    }

    let mut on_path = BitSet::new(rows.len());
    // (node, next child, whether this node put its key on the path)
    let mut stack: Vec<(NodeIdx, u32, bool)> = Vec::new();
    let mut enter = |v: NodeIdx, on_path: &mut BitSet, stack: &mut Vec<(NodeIdx, u32, bool)>| {
        let key = key_of[v] as usize;
        let mut marks = false;
        if shallow[v] != 0 && !on_path.get(key) {
            rows[key].retained_size += a.retained[v];
            if first[v] != first[after(v)] {
                on_path.set(key);
                marks = true;
            }
        }
        stack.push((v, first[v], marks));
    };
    enter(root, &mut on_path, &mut stack);
    while let Some((v, next, marks)) = stack.last_mut() {
        if *next < first[after(*v)] {
            let child = children[*next as usize];
            *next += 1;
            enter(child, &mut on_path, &mut stack);
        } else {
            if *marks {
                on_path.clear(key_of[*v] as usize);
            }
            stack.pop();
        }
    }
}

/// The Statistics view, with DevTools' newest categories (system = `hidden` nodes; typed arrays =
/// `system / JSArrayBufferData`; `extra_native_bytes` counted as native).
pub fn statistics(s: &Snapshot, a: &Analysis) -> Statistics {
    let t = &s.types;
    let mut native = s.extra_native_bytes;
    let (mut typed_arrays, mut code, mut strings, mut system) = (0, 0, 0, 0);
    // Arrays count their `elements` store when they are its only retainer.
    let mut arrays: Vec<(NodeIdx, Option<NodeIdx>)> = Vec::new();
    let mut elements = BitSet::new(s.node_count());
    // Names compared by id: looking text up per node is a random access into the arena.
    let array_names = s.strings.ids_of(b"Array");
    let buffer_names = s.strings.ids_of(b"system / JSArrayBufferData");
    let elements_names = s.strings.ids_of(b"elements");
    for v in s.nodes.all() {
        let size = u64::from(s.nodes.self_size[v]);
        let ty = s.nodes.ty[v];
        let name = s.nodes.name[v];
        if ty == t.hidden {
            system += size;
        } else if ty == t.native {
            native = native.saturating_add(size);
            if buffer_names.contains(&name) {
                typed_arrays += size;
            }
        } else if ty == t.code {
            code += size;
        } else if ty == t.string || ty == t.cons_string || ty == t.sliced_string {
            strings += size;
        } else if array_names.contains(&name) {
            let store = s
                .nodes
                .edges(v)
                .find(|&e| {
                    s.edges.ty[e] == t.e_internal && elements_names.contains(&s.edges.name(e))
                })
                .map(|e| s.edges.to[e]);
            if let Some(store) = store {
                elements.set(store.index());
            }
            arrays.push((v, store));
        }
    }
    // Which stores have one retainer: two bits per node instead of a map of counts (millions
    // of arrays made the map the slow part).
    let (mut once, mut twice) = (BitSet::new(s.node_count()), BitSet::new(s.node_count()));
    for &to in &s.edges.to {
        let to = to.index();
        if elements.get(to) {
            if once.get(to) {
                twice.set(to);
            } else {
                once.set(to);
            }
        }
    }
    let js_arrays = arrays
        .iter()
        .map(|&(v, store)| {
            let own = u64::from(s.nodes.self_size[v]);
            match store {
                Some(e) if !twice.get(e.index()) => own + u64::from(s.nodes.self_size[e]),
                _ => own,
            }
        })
        .sum();
    Statistics {
        total: a.total_size,
        v8heap: V8Heap {
            total: a.total_size.saturating_sub(native),
            code,
            strings,
            js_arrays,
            system,
        },
        native: Native {
            total: native,
            typed_arrays,
        },
    }
}
