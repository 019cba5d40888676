//! Node states DevTools derives before anything else: detached DOM propagation, user roots and
//! page-owned nodes.

use rustc_hash::FxHashMap;

use crate::bits::BitSet;
use crate::model::Snapshot;

/// Whether `n` is a user root when it is a child of the root: any non-synthetic node, or the
/// synthetic `(Document DOM trees)` node.
pub(crate) fn is_user_root(s: &Snapshot, n: u32) -> bool {
    let ty = s.nodes.ty[n as usize];
    ty != s.types.synthetic || is_document_dom_trees(s, n)
}

fn is_document_dom_trees(s: &Snapshot, n: u32) -> bool {
    s.nodes.ty[n as usize] == s.types.synthetic
        && s.strings.bytes(s.nodes.name[n as usize]) == b"(Document DOM trees)"
}

/// Whether the root has a user root among its children. Snapshots from newest V8 have none.
pub(crate) fn has_user_roots(s: &Snapshot) -> bool {
    s.nodes
        .edges(s.root)
        .any(|e| is_user_root(s, s.edges.to[e]))
}

/// Spreads "attached" and then "detached" from native nodes of known state to their native
/// children, and renames the detached ones `Detached <name>` (DevTools' `propagateDOMState`).
pub(crate) fn propagate_dom_state(s: &mut Snapshot) {
    let Some(state) = s.nodes.detachedness.take() else {
        return;
    };
    let n = s.node_count();
    let mut dom = DomState {
        visited: BitSet::new(n),
        state,
        attached: Vec::new(),
        detached: Vec::new(),
        renamed: FxHashMap::default(),
    };
    for v in 0..n {
        let known = dom.state[v];
        if known != 0 {
            dom.process(s, v, known);
        }
    }
    let spreads = |s: &Snapshot, e: usize| {
        let t = s.edges.ty[e];
        t != s.types.e_hidden && t != s.types.e_weak
    };
    while let Some(v) = dom.attached.pop() {
        for e in s.nodes.edges(v) {
            if spreads(s, e) {
                dom.process(s, s.edges.to[e] as usize, 1);
            }
        }
    }
    while let Some(v) = dom.detached.pop() {
        if dom.state[v as usize] == 1 {
            continue;
        }
        for e in s.nodes.edges(v) {
            if spreads(s, e) {
                dom.process(s, s.edges.to[e] as usize, 2);
            }
        }
    }
    s.nodes.detachedness = Some(dom.state);
}

struct DomState {
    visited: BitSet,
    state: Vec<u8>,
    attached: Vec<u32>,
    detached: Vec<u32>,
    /// Old name → `Detached <name>`.
    renamed: FxHashMap<u32, u32>,
}

impl DomState {
    fn process(&mut self, s: &mut Snapshot, v: usize, new: u8) {
        if self.visited.get(v) {
            return;
        }
        self.visited.set(v);
        if s.nodes.ty[v] != s.types.native {
            return;
        }
        self.state[v] = new;
        if new == 1 {
            self.attached.push(v as u32);
        } else if new == 2 {
            let old = s.nodes.name[v];
            let name = *self.renamed.entry(old).or_insert_with(|| {
                let mut text = b"Detached ".to_vec();
                text.extend_from_slice(s.strings.bytes(old));
                s.strings.push(&text)
            });
            s.nodes.name[v] = name;
            self.detached.push(v as u32);
        }
    }
}

/// Nodes owned by the page: everything reachable without weak edges from the root's shortcut
/// targets and from `(Document DOM trees)` (DevTools' `markPageOwnedNodes`).
pub(crate) fn page_owned(s: &Snapshot) -> BitSet {
    let mut owned = BitSet::new(s.node_count());
    let mut todo = Vec::new();
    for e in s.nodes.edges(s.root) {
        let t = s.edges.to[e];
        let ty = s.edges.ty[e];
        let seed = if ty == s.types.e_element {
            is_document_dom_trees(s, t)
        } else {
            ty == s.types.e_shortcut
        };
        if seed {
            todo.push(t);
            owned.set(t as usize);
        }
    }
    while let Some(v) = todo.pop() {
        for e in s.nodes.edges(v) {
            let t = s.edges.to[e];
            if owned.get(t as usize) || s.edges.ty[e] == s.types.e_weak {
                continue;
            }
            owned.set(t as usize);
            todo.push(t);
        }
    }
    owned
}
