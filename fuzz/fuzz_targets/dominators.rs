//! Random graphs: SEMI-NCA must agree with the naive dominator-set reference.
#![no_main]

use heapsnap::dominators::{Graph, dominators, dominators_naive};
use heapsnap::{EdgeCol, EdgeIdx, NodeCol, NodeIdx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = u32::from(n % 40) + 1;
    let Some((&root, rest)) = rest.split_first() else { return };
    let root = NodeIdx(u32::from(root) % n);
    // Each pair of bytes is an edge; the top bit of the first drops it from the kept set.
    let mut adj: NodeCol<Vec<(NodeIdx, bool)>> = vec![Vec::new(); n as usize].into();
    for pair in rest.chunks_exact(2) {
        adj[NodeIdx(u32::from(pair[0] & 0x7f) % n)]
            .push((NodeIdx(u32::from(pair[1]) % n), pair[0] & 0x80 == 0));
    }
    let mut first: NodeCol<EdgeIdx> = vec![EdgeIdx(0)].into();
    let mut to: EdgeCol<NodeIdx> = EdgeCol::new();
    let mut kept: EdgeCol<bool> = EdgeCol::new();
    for edges in &adj {
        for &(t, k) in edges {
            to.push(t);
            kept.push(k);
        }
        first.push(EdgeIdx::from(to.len()));
    }
    let graph = Graph { first: &first, to: &to };
    let keep = |e: EdgeIdx| kept[e];
    let fast = dominators(graph, root, &keep);
    assert_eq!(fast.idom, dominators_naive(graph, root, &keep));
});
