//! Shallow sizes as DevTools sees them, the dominator tree and retained sizes.

use rayon::prelude::*;

use super::weakmap::Ephemerons;
use crate::bits::BitSet;
use crate::dominators::{DomTree, Graph, dominators};
use crate::model::{EdgeIdx, NodeCol, NodeIdx, Snapshot};

/// DevTools' shallow-size reassignment (`calculateShallowSizes`, DevTools ≥ 128): internal arrays
/// and hidden nodes owned by exactly one object fold their size into it. It runs only when the
/// snapshot has user roots, so never for newest-V8 snapshots.
///
/// Returns the new sizes, or `None` when the rule does not apply; the caller stores them in
/// `nodes.self_size`, as DevTools rewrites its node array. Sums are kept in `u32` with
/// wrap-around, as DevTools keeps them in a `Uint32Array`.
pub(crate) fn shallow_sizes(s: &Snapshot, has_user_roots: bool) -> Option<NodeCol<u32>> {
    if !has_user_roots {
        return None;
    }
    const UNVISITED: NodeIdx = NodeIdx(u32::MAX);
    const MULTIPLE: NodeIdx = NodeIdx(u32::MAX - 1);
    let n = s.node_count();
    let t = &s.types;
    let mut owners: NodeCol<NodeIdx> = vec![NodeIdx(0); n].into();
    let mut work = Vec::new();
    for (i, owner) in owners.iter_mut_enumerated() {
        let ty = s.nodes.ty[i];
        let ownable = ty == t.hidden
            || ty == t.array
            || (ty == t.native
                && s.strings.bytes(s.nodes.name[i]) == b"system / ExternalStringData");
        if ownable {
            *owner = UNVISITED;
        } else {
            *owner = i;
            work.push(i);
        }
    }
    while let Some(id) = work.pop() {
        let owner = owners[id];
        for e in s.nodes.edges(id) {
            if s.edges.ty[e] == t.e_weak {
                continue;
            }
            let target = s.edges.to[e];
            let current = owners[target];
            if current == UNVISITED {
                owners[target] = owner;
                work.push(target);
            } else if current != target && current != owner && current != MULTIPLE {
                owners[target] = MULTIPLE;
                work.push(target);
            }
        }
    }
    let mut sizes = s.nodes.self_size.clone();
    for i in s.nodes.all() {
        let owner = owners[i];
        if owner == UNVISITED || owner == MULTIPLE || owner == i {
            continue;
        }
        if s.nodes.ty[owner] == t.synthetic || owner == s.root {
            continue;
        }
        let moved = sizes[i];
        sizes[i] = 0;
        sizes[owner] = sizes[owner].wrapping_add(moved);
    }
    Some(sizes)
}

/// The edges the dominator tree is built from (DevTools' "essential" edges): not weak, not a
/// self-loop, not the table → value half of a WeakMap pair, and, unless the source is the root,
/// not a shortcut and not from a non-page object into a page-owned one.
pub(crate) fn essential_edges(
    s: &Snapshot,
    ephemerons: &Ephemerons,
    page_owned: &BitSet,
) -> BitSet {
    let m = s.edge_count();
    let t = &s.types;
    // Built in parallel 64-edge words: each word is owned by one task.
    let mut words = vec![0u64; m.div_ceil(64)];
    let first = &s.nodes.first_edge;
    words.par_iter_mut().enumerate().for_each(|(w, word)| {
        let start = w * 64;
        // The source of the word's first edge, then walk forward.
        let mut from = NodeIdx(first.partition_point(|&f| f.index() <= start).0 - 1);
        for e in (start..(start + 64).min(m)).map(EdgeIdx::from) {
            while first[NodeIdx(from.0 + 1)] <= e {
                from.0 += 1;
            }
            let to = s.edges.to[e];
            let ty = s.edges.ty[e];
            if ty == t.e_internal
                && let Some(eph) = ephemerons.get(s.edges.name(e))
                && u64::from(s.nodes.id[from].0) == eph.table_id
            {
                continue;
            }
            if ty == t.e_weak || from == to {
                continue;
            }
            if from != s.root
                && (ty == t.e_shortcut
                    || (page_owned.get(to.index()) && !page_owned.get(from.index())))
            {
                continue;
            }
            *word |= 1 << (e.index() - start);
        }
    });
    BitSet::from_words(words)
}

/// The dominator tree over the essential edges.
pub(crate) fn dominator_tree(s: &Snapshot, essential: &BitSet) -> DomTree {
    let graph = Graph {
        first: &s.nodes.first_edge,
        to: &s.edges.to,
    };
    dominators(graph, s.root, &|e| essential.get(e.index()))
}

/// Retained sizes: each node's shallow size plus those of the nodes it dominates.
pub(crate) fn retained_sizes(tree: &DomTree, shallow: &NodeCol<u32>) -> NodeCol<u64> {
    let mut retained: NodeCol<u64> = shallow.iter().map(|&s| u64::from(s)).collect();
    for &v in tree.order[1..].iter().rev() {
        let d = tree.idom[v];
        retained[d] += retained[v];
    }
    retained
}
