//! One object as the reports show it, apart from any analysis that found it: its reference
//! (id, class, type, sizes), the steps of a retaining path, and its chain of dominators. Shared
//! by the leak report, `show` and `retainers`.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::graph;
use crate::model::Snapshot;

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

pub fn node_ref(s: &Snapshot, a: &Analysis, v: u32) -> NodeRef {
    NodeRef {
        id: s.nodes.id[v as usize],
        class: s.strings.get(a.class[v as usize]).into_owned(),
        ty: graph::node_type_name(s, v).to_owned(),
        self_size: u64::from(s.nodes.self_size[v as usize]),
        retained_size: a.retained[v as usize],
    }
}

/// The steps of a path given as edges, from the root's side.
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

/// `v`'s dominators, its immediate dominator first, up to the root (empty for the root).
pub fn dominators(s: &Snapshot, a: &Analysis, v: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut u = v;
    // The bound guards against a cycle in a corrupt tree; a real one ends at the root.
    while u != a.root && chain.len() < s.node_count() {
        u = a.idom[u as usize];
        chain.push(u);
    }
    chain
}
