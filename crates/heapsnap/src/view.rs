//! One object as the reports show it, apart from any analysis that found it: its reference
//! (id, class, type, sizes), the steps of a retaining path, and its chain of dominators. Shared
//! by the leak report, `show` and `retainers`.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::graph;
use crate::model::{EdgeIdx, NodeId, NodeIdx, Snapshot};

/// One step of a retaining path: the edge taken, and the node reached.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub edge: String,
    pub edge_type: String,
    pub node: NodeRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeRef {
    pub id: NodeId,
    pub class: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub self_size: u64,
    pub retained_size: u64,
}

pub fn node_ref(s: &Snapshot, a: &Analysis, v: NodeIdx) -> NodeRef {
    NodeRef {
        id: s.nodes.id[v],
        class: s.strings.get(a.class[v]).into_owned(),
        ty: graph::node_type_name(s, v).to_owned(),
        self_size: u64::from(s.nodes.self_size[v]),
        retained_size: a.retained[v],
    }
}

/// The steps of a path given as edges, from the root's side.
pub fn path_steps(s: &Snapshot, a: &Analysis, edges: &[EdgeIdx]) -> Vec<Step> {
    edges
        .iter()
        .map(|&e| Step {
            edge: graph::edge_label(s, e),
            edge_type: graph::edge_type_name(s, e).to_owned(),
            node: node_ref(s, a, s.edges.to[e]),
        })
        .collect()
}

/// `v`'s dominators, its immediate dominator first, up to the root (empty for the root).
pub fn dominators(s: &Snapshot, a: &Analysis, v: NodeIdx) -> Vec<NodeIdx> {
    let mut chain = Vec::new();
    let mut u = v;
    // The bound guards against a cycle in a corrupt tree; a real one ends at the root.
    while u != a.root && chain.len() < s.node_count() {
        u = a.idom[u];
        chain.push(u);
    }
    chain
}
