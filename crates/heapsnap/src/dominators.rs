//! Immediate dominators over a CSR graph, with DevTools' treatment of nodes the root does not
//! reach.
//!
//! DevTools (Lengauer–Tarjan) adds a virtual edge root → v for every node v that has no kept
//! in-edge at all, and gives every node still unreached the root as its dominator. The dominator
//! tree of a graph is unique, so any correct algorithm gives DevTools' answer; this one is
//! SEMI-NCA (Georgiadis, Tarjan, Werneck 2006) on flat `u32` arrays, iterative everywhere because
//! heap chains run hundreds of thousands of nodes deep.
//!
//! The algorithm numbers the reached nodes in DFS preorder and works in that space: its `u32`s
//! (`parent`, `semi`, `link`, …) are preorder numbers, not node positions. Only the input graph,
//! `pre`, `order` and the answer are in node space, and typed as such.

use typed_index_collections::TiSlice;

use crate::model::{EdgeIdx, NodeCol, NodeIdx};

/// A graph in CSR form: node `v`'s edges are `first[v]..first[v + 1]`, edge `e` goes to `to[e]`.
#[derive(Clone, Copy)]
pub struct Graph<'a> {
    pub first: &'a TiSlice<NodeIdx, EdgeIdx>,
    pub to: &'a TiSlice<EdgeIdx, NodeIdx>,
}

impl Graph<'_> {
    pub fn node_count(&self) -> usize {
        self.first.len() - 1
    }

    fn edges(&self, v: NodeIdx) -> impl DoubleEndedIterator<Item = EdgeIdx> + use<> {
        (self.first[v].index()..self.first[NodeIdx(v.0 + 1)].index()).map(EdgeIdx::from)
    }
}

/// The dominator tree.
pub struct DomTree {
    /// The immediate dominator of each node; the root's is itself.
    pub idom: NodeCol<NodeIdx>,
    /// Every node, each after its dominator: the reached ones in DFS preorder, then the rest.
    pub order: Vec<NodeIdx>,
}

/// No preorder number (a node the DFS has not reached).
const NONE: u32 = u32::MAX;

/// Computes dominators from `root` over the edges for which `keep(edge)` holds.
pub fn dominators(
    graph: Graph<'_>,
    root: NodeIdx,
    keep: &(impl Fn(EdgeIdx) -> bool + Sync),
) -> DomTree {
    let n = graph.node_count();
    // Nodes with a kept in-edge; the others hang from the root like DevTools' orphans.
    let mut has_in = crate::bits::BitSet::new(n);
    for (e, &to) in graph.to.iter_enumerated() {
        if keep(e) {
            has_in.set(to.index());
        }
    }

    // Preorder numbering; `parent` is in preorder space.
    let mut pre: NodeCol<u32> = vec![NONE; n].into();
    let mut order: Vec<NodeIdx> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    let mut stack: Vec<(NodeIdx, EdgeIdx)> = Vec::new();
    let mut dfs = |start: NodeIdx, from: u32, pre: &mut NodeCol<u32>| {
        pre[start] = order.len() as u32;
        order.push(start);
        parent.push(from);
        stack.push((start, graph.first[start]));
        while let Some((v, cursor)) = stack.last_mut() {
            let end = graph.first[NodeIdx(v.0 + 1)];
            let mut next = None;
            while *cursor < end {
                let e = *cursor;
                cursor.0 += 1;
                let w = graph.to[e];
                if pre[w] == NONE && keep(e) {
                    next = Some(w);
                    break;
                }
            }
            match next {
                Some(w) => {
                    let p = pre[*v];
                    pre[w] = order.len() as u32;
                    order.push(w);
                    parent.push(p);
                    stack.push((w, graph.first[w]));
                }
                None => {
                    stack.pop();
                }
            }
        }
    };
    dfs(root, 0, &mut pre);
    for v in (0..n).map(NodeIdx::from) {
        if pre[v] == NONE && !has_in.get(v.index()) {
            dfs(v, 0, &mut pre);
        }
    }
    drop(has_in);
    let reached = order.len();
    let unreached: Vec<NodeIdx> = pre
        .iter_enumerated()
        .filter(|&(_, &p)| p == NONE)
        .map(|(v, _)| v)
        .collect();

    // Predecessors in preorder space, for the reached nodes only. An edge from the DFS parent
    // is left out: the parent is every vertex's starting semidominator anyway, and leaving it out
    // saves a word per node.
    let is_pred = |i: u32, e: EdgeIdx| {
        let w = pre[graph.to[e]];
        (w != NONE && parent[w as usize] != i && keep(e)).then_some(w)
    };
    // `link[i]` first holds the end of vertex i's predecessor slice (its start is the previous
    // vertex's end); once i is processed it holds i's ancestor in the linked forest instead.
    // Vertices are processed in decreasing order and only ever look at lower slices, so one
    // array serves both (LLVM's "last linked" trick) and saves a word per node.
    let mut link = vec![0u32; reached];
    for (i, &v) in order.iter().enumerate() {
        for e in graph.edges(v) {
            if let Some(w) = is_pred(i as u32, e) {
                link[w as usize] += 1;
            }
        }
    }
    let mut total = 0;
    for end in link.iter_mut() {
        total += *end;
        *end = total;
    }
    // Filled from the back of each slot, so that `link[w]` ends as the start of w's slot; the
    // ends are then the next slot's start.
    let mut preds = vec![0u32; total as usize];
    for (i, &v) in order.iter().enumerate().rev() {
        for e in graph.edges(v).rev() {
            if let Some(w) = is_pred(i as u32, e) {
                link[w as usize] -= 1;
                preds[link[w as usize] as usize] = i as u32;
            }
        }
    }
    link.rotate_left(1);
    if let Some(last) = link.last_mut() {
        *last = total;
    }
    drop(pre);

    // SEMI-NCA. Semidominators by path-compressed eval over the processed suffix…
    let mut semi: Vec<u32> = (0..reached as u32).collect();
    let mut label: Vec<u32> = (0..reached as u32).collect();
    let mut path = Vec::new();
    for w in (1..reached).rev() {
        let start = link[w - 1] as usize;
        let end = link[w] as usize;
        let mut s = parent[w];
        for &v in &preds[start..end] {
            let u = eval(v, w as u32, &mut link, &mut label, &semi, &mut path);
            s = s.min(semi[u as usize]);
        }
        semi[w] = s;
        link[w] = parent[w];
    }
    drop((link, label, preds));
    // …then each immediate dominator is the nearest ancestor at or above the semidominator.
    let mut idom_pre = parent;
    for w in 1..reached {
        let mut d = idom_pre[w];
        while d > semi[w] {
            d = idom_pre[d as usize];
        }
        idom_pre[w] = d;
    }
    drop(semi);

    let mut idom: NodeCol<NodeIdx> = vec![root; n].into();
    for (i, &v) in order.iter().enumerate() {
        idom[v] = order[idom_pre[i] as usize];
    }
    idom[root] = root;
    order.extend(unreached);
    DomTree { idom, order }
}

/// Returns the vertex of least semidominator on the linked path above `v`, compressing the path.
/// Vertices above `last` are processed; `link` holds their forest ancestors.
fn eval(
    v: u32,
    last: u32,
    link: &mut [u32],
    label: &mut [u32],
    semi: &[u32],
    path: &mut Vec<u32>,
) -> u32 {
    if v <= last {
        return v; // Not processed yet, so not linked: its own label.
    }
    let mut x = v;
    while link[x as usize] > last {
        path.push(x);
        x = link[x as usize];
    }
    // `x` is the last linked vertex on the path; its ancestor is the forest root. Compress from
    // the top down.
    while let Some(y) = path.pop() {
        // `y` was pushed because its ancestor is linked.
        let a = link[y as usize] as usize;
        if semi[label[a] as usize] < semi[label[y as usize] as usize] {
            label[y as usize] = label[a];
        }
        link[y as usize] = link[a];
    }
    label[v as usize]
}

/// A slow, obviously correct reference: iterative dominator sets over the same augmented graph.
/// For tests and fuzzing on small graphs only (quadratic memory).
pub fn dominators_naive(
    graph: Graph<'_>,
    root: NodeIdx,
    keep: &impl Fn(EdgeIdx) -> bool,
) -> NodeCol<NodeIdx> {
    // Plain `usize` positions throughout: this is the reference, kept as simple as it can be.
    let n = graph.node_count();
    let root = root.index();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for v in 0..n {
        for e in graph.edges(NodeIdx::from(v)) {
            if keep(e) {
                preds[graph.to[e].index()].push(v);
            }
        }
    }
    for (v, p) in preds.iter_mut().enumerate() {
        if p.is_empty() && v != root {
            p.push(root);
        }
    }
    // Reachability in the augmented graph.
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (v, p) in preds.iter().enumerate() {
        for &u in p {
            succ[u].push(v);
        }
    }
    let mut reached = vec![false; n];
    let mut todo = vec![root];
    reached[root] = true;
    while let Some(v) = todo.pop() {
        for &w in &succ[v] {
            if !reached[w] {
                reached[w] = true;
                todo.push(w);
            }
        }
    }
    let all: Vec<bool> = reached.clone();
    let mut dom: Vec<Vec<bool>> = (0..n)
        .map(|v| if v == root { one(n, v) } else { all.clone() })
        .collect();
    let mut changed = true;
    while changed {
        changed = false;
        for v in 0..n {
            if v == root || !reached[v] {
                continue;
            }
            let mut next = all.clone();
            for &p in preds[v].iter().filter(|&&p| reached[p]) {
                for (x, d) in next.iter_mut().zip(&dom[p]) {
                    *x &= *d;
                }
            }
            next[v] = true;
            if next != dom[v] {
                dom[v] = next;
                changed = true;
            }
        }
    }
    (0..n)
        .map(|v| {
            if v == root || !reached[v] {
                return NodeIdx::from(root);
            }
            // The immediate dominator is the strict dominator with the most dominators itself.
            let d = (0..n)
                .filter(|&d| d != v && dom[v][d])
                .max_by_key(|&d| dom[d].iter().filter(|&&b| b).count());
            NodeIdx::from(d.unwrap_or(root))
        })
        .collect()
}

fn one(n: usize, v: usize) -> Vec<bool> {
    let mut b = vec![false; n];
    b[v] = true;
    b
}

#[cfg(test)]
mod tests {
    use typed_index_collections::TiVec;

    use super::*;

    /// A small deterministic generator, so the test needs no crate and reproduces exactly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, bound: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % u64::from(bound)) as u32
        }
    }

    #[test]
    fn agrees_with_naive_on_random_graphs() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for case in 0..2000 {
            let n = 1 + rng.next(24);
            let m = rng.next(n * 3 + 1);
            let mut adj: Vec<Vec<u32>> = vec![Vec::new(); n as usize];
            for _ in 0..m {
                adj[rng.next(n) as usize].push(rng.next(n));
            }
            let mut first: NodeCol<EdgeIdx> = vec![EdgeIdx(0)].into();
            let mut to: TiVec<EdgeIdx, NodeIdx> = TiVec::new();
            for a in &adj {
                to.extend(a.iter().map(|&t| NodeIdx(t)));
                first.push(EdgeIdx::from(to.len()));
            }
            let dropped: Vec<bool> = (0..to.len()).map(|_| rng.next(5) == 0).collect();
            let keep = |e: EdgeIdx| !dropped[e.index()];
            let graph = Graph {
                first: &first,
                to: &to,
            };
            let root = NodeIdx(rng.next(n));
            let fast = dominators(graph, root, &keep);
            let slow = dominators_naive(graph, root, &keep);
            assert_eq!(
                fast.idom, slow,
                "case {case}: n={n} root={root} adj={adj:?} dropped={dropped:?}"
            );
            assert_eq!(fast.order.len(), n as usize);
        }
    }

    #[test]
    fn deep_chain_does_not_overflow_the_stack() {
        let n = 300_000u32;
        let first: NodeCol<EdgeIdx> = (0..=n).map(|v| EdgeIdx(v.min(n - 1))).collect();
        let to: TiVec<EdgeIdx, NodeIdx> = (1..n).map(NodeIdx).collect();
        let tree = dominators(
            Graph {
                first: &first,
                to: &to,
            },
            NodeIdx(0),
            &|_| true,
        );
        assert_eq!(tree.idom[NodeIdx(n - 1)], NodeIdx(n - 2));
    }
}
