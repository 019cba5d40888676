//! A bounded excerpt of the graph around some objects, for a report that is browsed without
//! the snapshot (the HTML report's retainer trees): each object expanded to its edges, largest
//! first, and its retainers, nearest to the root first; the objects those reach expanded in
//! turn, to a fixed depth and within a node budget. Objects left unexpanded are kept as leaves
//! (class and sizes), so every link names what it leads to.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::analysis::Analysis;
use crate::bits::BitSet;
use crate::graph;
use crate::model::{EdgeIdx, NodeId, NodeIdx, Snapshot};

/// How far an excerpt reaches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Levels of expansion from the starting objects: 1 expands only them.
    pub depth: u32,
    /// Edges and retainers kept per expanded object (each direction).
    pub links: usize,
    /// Objects one group may add, leaves included: none of its objects is expanded past it.
    pub nodes: usize,
    /// Objects in the whole excerpt.
    pub total: usize,
}

/// One object of the excerpt.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub class: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// Its own name when that says more than the class (a function's, a string's start).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub self_size: u64,
    pub retained_size: u64,
    /// DevTools' distance; absent for unreachable and system objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<i32>,
    /// Only for expanded objects: the kept links and how many there are in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Links {
    pub edge_count: usize,
    /// `[label, edge type, id of the target]`, largest target (retained size) first.
    pub edges: Vec<(String, String, NodeId)>,
    pub retainer_count: usize,
    /// `[label, edge type, id of the retainer]`, nearest to the root first.
    pub retainers: Vec<(String, String, NodeId)>,
}

/// Objects by node id (ordered, so the excerpt serializes the same every time).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Excerpt {
    pub nodes: BTreeMap<NodeId, Node>,
}

/// The `k` outgoing edges of `v` with the largest targets (retained size), largest first, ties
/// in edge order.
pub fn largest_edges(s: &Snapshot, a: &Analysis, v: NodeIdx, k: usize) -> Vec<EdgeIdx> {
    first_k(s.nodes.edges(v).collect(), k, |&e| {
        (std::cmp::Reverse(a.retained[s.edges.to[e]]), e)
    })
}

/// The `k` of `incoming` (edges into one node) whose retainers are nearest to the root,
/// nearest first (unreachable ones last), ties in edge order.
pub fn nearest_retainers(
    s: &Snapshot,
    a: &Analysis,
    incoming: Vec<EdgeIdx>,
    k: usize,
) -> Vec<EdgeIdx> {
    first_k(incoming, k, |&e| {
        let d = a.distance[graph::edge_source(s, e)];
        (if d < 0 { i32::MAX } else { d }, e)
    })
}

/// The `k` smallest of `items` by `key`, sorted: a partial selection, as a shape or a big array
/// has millions of retainers or edges and a page shows a few. Each key is computed once (a
/// retainer's costs a binary search for its source).
fn first_k<T, K: Ord>(items: Vec<T>, k: usize, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut keyed: Vec<(K, T)> = items.into_iter().map(|t| (key(&t), t)).collect();
    if keyed.len() > k {
        if k == 0 {
            return Vec::new();
        }
        keyed.select_nth_unstable_by(k - 1, |x, y| x.0.cmp(&y.0));
        keyed.truncate(k);
    }
    keyed.sort_unstable_by(|x, y| x.0.cmp(&y.0));
    keyed.into_iter().map(|(_, t)| t).collect()
}

/// The edges into each of `nodes`, in edge order: one pass over the edges, which costs less
/// than the whole retainer index ([`graph::Retainers`], 8 bytes an edge) for a few nodes.
fn incoming(s: &Snapshot, nodes: &[NodeIdx]) -> HashMap<NodeIdx, Vec<EdgeIdx>> {
    let mut wanted = BitSet::new(s.node_count());
    for &v in nodes {
        wanted.set(v.index());
    }
    let mut found: HashMap<NodeIdx, Vec<EdgeIdx>> =
        nodes.iter().map(|&v| (v, Vec::new())).collect();
    for (e, &to) in s.edges.to.iter_enumerated() {
        if wanted.get(to.index()) {
            found.get_mut(&to).expect("wanted").push(e);
        }
    }
    found
}

impl Excerpt {
    /// Adds the objects around each group of starting objects (node ordinals: a report's
    /// clusters, the most important first), breadth first; each group adds at most
    /// `limits.nodes` objects and the excerpt holds at most `limits.total`. One pass over the
    /// edges per level, for all groups at once.
    pub fn add(&mut self, s: &Snapshot, a: &Analysis, groups: &[Vec<NodeIdx>], limits: Limits) {
        let mut added: Vec<usize> = groups
            .iter()
            .map(|starts| starts.iter().filter(|&&v| self.leaf(s, a, v)).count())
            .collect();
        let mut levels: Vec<Vec<NodeIdx>> = groups.to_vec();
        for _ in 0..limits.depth {
            let all: Vec<NodeIdx> = levels.iter().flatten().copied().collect();
            let mut into = incoming(s, &all);
            for (g, level) in levels.iter_mut().enumerate() {
                let mut next = Vec::new();
                for &v in level.iter() {
                    let id = s.nodes.id[v];
                    if self.nodes[&id].links.is_some() {
                        continue;
                    }
                    // Expanding adds up to 2 × links objects: only if they fit.
                    let room = 2 * limits.links;
                    if added[g] + room > limits.nodes || self.nodes.len() + room > limits.total {
                        break;
                    }
                    let edge_count = s.nodes.edges(v).len();
                    let edges = largest_edges(s, a, v, limits.links);
                    let incoming = into.remove(&v).unwrap_or_default();
                    let retainer_count = incoming.len();
                    let retainers = nearest_retainers(s, a, incoming, limits.links);
                    let mut link = |e: EdgeIdx, other: NodeIdx| {
                        added[g] += usize::from(self.leaf(s, a, other));
                        next.push(other);
                        (
                            graph::edge_label(s, e),
                            graph::edge_type_name(s, e).to_owned(),
                            s.nodes.id[other],
                        )
                    };
                    let edges = edges.iter().map(|&e| link(e, s.edges.to[e])).collect();
                    let retainers = retainers
                        .iter()
                        .map(|&e| link(e, graph::edge_source(s, e)))
                        .collect();
                    self.nodes.get_mut(&id).expect("added as a leaf").links = Some(Links {
                        edge_count,
                        edges,
                        retainer_count,
                        retainers,
                    });
                }
                *level = next;
            }
        }
    }

    /// Adds `v` unexpanded; whether it was new.
    fn leaf(&mut self, s: &Snapshot, a: &Analysis, v: NodeIdx) -> bool {
        let id = s.nodes.id[v];
        if self.nodes.contains_key(&id) {
            return false;
        }
        self.nodes.insert(id, {
            let name = s.strings.get(s.nodes.name[v]);
            let class = s.strings.get(a.class[v]);
            Node {
                // A name is kept only where the class does not already say it.
                name: if name == class {
                    String::new()
                } else {
                    shorten(&name, 120)
                },
                class: shorten(&class, 200),
                ty: graph::node_type_name(s, v).to_owned(),
                self_size: u64::from(s.nodes.self_size[v]),
                retained_size: a.retained[v],
                distance: Some(a.distance[v])
                    .filter(|d| (0..crate::analysis::BASE_SYSTEM_DISTANCE).contains(d)),
                links: None,
            }
        });
        true
    }
}

/// At most `max` characters of `text`, with `…` where it was cut (strings can be megabytes).
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Format, Graph};

    fn excerpt(graph: &str, starts: &[&str], limits: Limits) -> String {
        let json = Graph::parse(graph).to_json(Format::Classic);
        let mut s = crate::read(json.as_bytes(), "test").unwrap();
        let a = crate::analyze(&mut s);
        let ordinal = |name: &str| {
            s.nodes
                .all()
                .find(|&v| s.strings.get(s.nodes.name[v]) == name)
                .unwrap()
        };
        let starts: Vec<NodeIdx> = starts.iter().map(|n| ordinal(n)).collect();
        let mut x = Excerpt::default();
        x.add(&s, &a, &[starts], limits);
        let mut text = String::new();
        for (id, n) in &x.nodes {
            text.push_str(&format!("@{id} {} r={}", n.class, n.retained_size));
            if let Some(l) = &n.links {
                let show = |v: &[(String, String, NodeId)]| {
                    v.iter()
                        .map(|(e, _, to)| format!("{e}:@{to}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                text.push_str(&format!(
                    " edges {}/{} [{}] retainers {}/{} [{}]",
                    l.edges.len(),
                    l.edge_count,
                    show(&l.edges),
                    l.retainers.len(),
                    l.retainer_count,
                    show(&l.retainers)
                ));
            }
            text.push('\n');
        }
        text
    }

    const GRAPH: &str = "root: synthetic; G: synthetic name=\"(GC roots)\"
        M: object 10; A: object 100; B: object 5; C: object 50; H: object 7
        root -shortcut-> M; root -element-> G; G -element-> H
        M -property:a-> A; M -property:b-> B; M -property:c-> C; H -property:m-> M";

    #[test]
    fn expands_largest_edges_and_nearest_retainers() {
        let full = Limits {
            depth: 1,
            links: 10,
            nodes: 100,
            total: 100,
        };
        let text = excerpt(GRAPH, &["M"], full);
        // M's edges largest first, its retainers nearest to the root first; the rest leaves.
        assert!(
            text.contains("@5 M r=165 edges 3/3 [a:@7,c:@11,b:@9] retainers 2/2 [M:@1,m:@13]"),
            "{text}"
        );
        assert!(text.contains("@7 A r=100\n"), "{text}");
        // Two links per direction; depth 2 expands A too.
        let text = excerpt(
            GRAPH,
            &["M"],
            Limits {
                depth: 2,
                links: 2,
                nodes: 100,
                total: 100,
            },
        );
        assert!(text.contains("edges 2/3 [a:@7,c:@11]"), "{text}");
        assert!(
            text.contains("@7 A r=100 edges 0/0 [] retainers 1/1 [a:@5]"),
            "{text}"
        );
    }

    #[test]
    fn stops_at_the_node_budget() {
        let text = excerpt(
            GRAPH,
            &["M"],
            Limits {
                depth: 3,
                links: 10,
                nodes: 21,
                total: 100,
            },
        );
        // M fits (1 + 20 ≤ 21); nothing after it does.
        assert_eq!(text.matches(" edges ").count(), 1, "{text}");
    }
}
