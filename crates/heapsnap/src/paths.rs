//! The K shortest retaining paths of an object: what DevTools' Retainers pane lets a user
//! expand by hand, found by a best-first search from the object back to the root.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::analysis::{Analysis, BASE_SYSTEM_DISTANCE, NO_DISTANCE};
use crate::graph::{Retainers, edge_source};
use crate::model::{EdgeIdx, NodeIdx, Snapshot, StrId};

/// What the search may not go through.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// Edge names (`--ignore-edge`): like DevTools' "ignore this retainer".
    pub edge_names: Vec<String>,
    /// Node ordinals.
    pub nodes: Vec<NodeIdx>,
}

/// Partial paths expanded before the search gives up (a guard against graphs where the K
/// shortest paths differ only deep down, e.g. huge cliques).
const MAX_EXPANSIONS: usize = 500_000;

/// No edge: the target's own arena entry leads nowhere.
const NO_EDGE: EdgeIdx = EdgeIdx(u32::MAX);
/// No parent entry in the arena.
const NO_ENTRY: u32 = u32::MAX;

/// Up to `k` shortest loop-free paths from the root to `target` over non-weak edges, shortest
/// first, each as its edges from the root's side.
pub fn shortest_paths(
    s: &Snapshot,
    a: &Analysis,
    retainers: &Retainers,
    target: NodeIdx,
    k: usize,
    ignore: &Ignore,
) -> Vec<Vec<EdgeIdx>> {
    let t = &s.types;
    let invisible = t
        .edge_names
        .iter()
        .position(|n| n == "invisible")
        .map(|i| i as u8);
    let ignored_names: Vec<StrId> = ignore
        .edge_names
        .iter()
        .flat_map(|n| s.strings.ids_of(n.as_bytes()))
        .collect();
    // The distance is an exact lower bound on the steps left to the root.
    let bound = |v: NodeIdx| -> Option<u32> {
        match a.distance[v] {
            NO_DISTANCE => None,
            d if d >= BASE_SYSTEM_DISTANCE => Some((d - BASE_SYSTEM_DISTANCE) as u32),
            d => Some(d.max(0) as u32),
        }
    };
    // Partial paths share their tails: (node, edge into the node it leads to, parent entry).
    let mut arena: Vec<(NodeIdx, EdgeIdx, u32)> = vec![(target, NO_EDGE, NO_ENTRY)];
    let mut depth: Vec<u32> = vec![0];
    let mut heap = BinaryHeap::new();
    if let Some(b) = bound(target) {
        heap.push(Reverse((b, 0u32)));
    }
    let mut found = Vec::new();
    let mut expansions = 0;
    while let Some(Reverse((_, at))) = heap.pop() {
        let (v, _, _) = arena[at as usize];
        if v == a.root {
            let mut edges = Vec::new();
            let mut i = at;
            while arena[i as usize].1 != NO_EDGE {
                edges.push(arena[i as usize].1);
                i = arena[i as usize].2;
            }
            found.push(edges);
            if found.len() == k {
                break;
            }
            continue;
        }
        expansions += 1;
        if expansions > MAX_EXPANSIONS {
            break;
        }
        for &e in retainers.of(v) {
            let ty = s.edges.ty[e];
            if ty == t.e_weak
                || Some(ty) == invisible
                || (!t.edge_name_is_index(ty) && ignored_names.contains(&s.edges.name(e)))
            {
                continue;
            }
            let u = edge_source(s, e);
            if ignore.nodes.contains(&u) || on_path(&arena, at, u) {
                continue;
            }
            let Some(b) = bound(u) else { continue };
            let d = depth[at as usize] + 1;
            arena.push((u, e, at));
            depth.push(d);
            heap.push(Reverse((d + b, arena.len() as u32 - 1)));
        }
    }
    found
}

fn on_path(arena: &[(NodeIdx, EdgeIdx, u32)], mut at: u32, u: NodeIdx) -> bool {
    while at != NO_ENTRY {
        if arena[at as usize].0 == u {
            return true;
        }
        at = arena[at as usize].2;
    }
    false
}
