//! Node states DevTools derives before anything else: detached DOM propagation, user roots and
//! page-owned nodes.

use rustc_hash::FxHashMap;

use crate::bits::BitSet;
use crate::model::{EdgeIdx, NodeCol, NodeIdx, Snapshot, StrId};

/// Whether `n` is a user root when it is a child of the root: any non-synthetic node, or the
/// synthetic `(Document DOM trees)` node.
pub(crate) fn is_user_root(s: &Snapshot, n: NodeIdx) -> bool {
    let ty = s.nodes.ty[n];
    ty != s.types.synthetic || is_document_dom_trees(s, n)
}

fn is_document_dom_trees(s: &Snapshot, n: NodeIdx) -> bool {
    s.nodes.ty[n] == s.types.synthetic
        && s.strings.bytes(s.nodes.name[n]) == b"(Document DOM trees)"
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
    for v in (0..n).map(NodeIdx::from) {
        let known = dom.state[v];
        if known != 0 {
            dom.process(s, v, known);
        }
    }
    let spreads = |s: &Snapshot, e: EdgeIdx| {
        let t = s.edges.ty[e];
        t != s.types.e_hidden && t != s.types.e_weak
    };
    while let Some(v) = dom.attached.pop() {
        for e in s.nodes.edges(v) {
            if spreads(s, e) {
                dom.process(s, s.edges.to[e], 1);
            }
        }
    }
    while let Some(v) = dom.detached.pop() {
        if dom.state[v] == 1 {
            continue;
        }
        for e in s.nodes.edges(v) {
            if spreads(s, e) {
                dom.process(s, s.edges.to[e], 2);
            }
        }
    }
    s.nodes.detachedness = Some(dom.state);
}

struct DomState {
    visited: BitSet,
    state: NodeCol<u8>,
    attached: Vec<NodeIdx>,
    detached: Vec<NodeIdx>,
    /// Old name → `Detached <name>`.
    renamed: FxHashMap<StrId, StrId>,
}

impl DomState {
    fn process(&mut self, s: &mut Snapshot, v: NodeIdx, new: u8) {
        if self.visited.get(v.index()) {
            return;
        }
        self.visited.set(v.index());
        if s.nodes.ty[v] != s.types.native {
            return;
        }
        self.state[v] = new;
        if new == 1 {
            self.attached.push(v);
        } else if new == 2 {
            let old = s.nodes.name[v];
            let name = *self.renamed.entry(old).or_insert_with(|| {
                let mut text = b"Detached ".to_vec();
                text.extend_from_slice(s.strings.bytes(old));
                s.strings.push(&text)
            });
            s.nodes.name[v] = name;
            self.detached.push(v);
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
            owned.set(t.index());
        }
    }
    while let Some(v) = todo.pop() {
        for e in s.nodes.edges(v) {
            let t = s.edges.to[e];
            if owned.get(t.index()) || s.edges.ty[e] == s.types.e_weak {
                continue;
            }
            owned.set(t.index());
            todo.push(t);
        }
    }
    owned
}
