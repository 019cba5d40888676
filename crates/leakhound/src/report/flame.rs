//! The flame graph's data for the page (`flame.js` draws it): stacks merged into a tree of
//! frames, with the smallest frames merged into one "(N smaller frames)" each, so the page stays
//! small whatever was recorded.

use std::collections::HashMap;

use serde::Serialize;

/// Frames in the tree at most.
pub const MAX_NODES: usize = 3000;

/// One frame: its label, bytes (its own and its callees'), kind (`js`, `native`, `builtin`,
/// `libc`, `other`) and callees, largest first.
#[derive(Debug, Serialize)]
pub struct Node {
    pub n: String,
    pub v: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub k: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub c: Vec<Node>,
}

/// A frame of a stack: label and kind.
pub type Frame = (String, &'static str);

#[derive(Default)]
struct Trie {
    label: Vec<Frame>,
    value: Vec<u64>,
    children: Vec<Vec<usize>>,
    index: HashMap<(usize, Frame), usize>,
}

impl Trie {
    fn node(&mut self, frame: Frame) -> usize {
        self.label.push(frame);
        self.value.push(0);
        self.children.push(Vec::new());
        self.label.len() - 1
    }
}

/// The tree of `stacks` (frames outermost first, and bytes), under a root named `root`; and
/// whether small frames were merged to stay within [`MAX_NODES`].
pub fn tree(stacks: &[(Vec<Frame>, u64)], root: &str) -> (Node, bool) {
    let mut t = Trie::default();
    t.node((root.to_owned(), ""));
    for (frames, bytes) in stacks {
        let mut at = 0;
        t.value[0] = t.value[0].saturating_add(*bytes);
        for f in frames {
            let key = (at, f.clone());
            at = match t.index.get(&key) {
                Some(&child) => child,
                None => {
                    let child = t.node(f.clone());
                    t.children[at].push(child);
                    t.index.insert(key, child);
                    child
                }
            };
            t.value[at] = t.value[at].saturating_add(*bytes);
        }
    }
    // The smallest share a frame may have to stand alone, doubled until the tree fits.
    let mut min = 0;
    loop {
        let (node, count) = emit(&t, 0, min);
        if count <= MAX_NODES {
            return (node, min > 0);
        }
        min = min.saturating_mul(2).max(t.value[0] / 10_000).max(1);
    }
}

/// The subtree at `at` with callees under `min` bytes merged; and its node count.
fn emit(t: &Trie, at: usize, min: u64) -> (Node, usize) {
    let mut children: Vec<usize> = t.children[at].clone();
    children.sort_by(|&a, &b| {
        t.value[b]
            .cmp(&t.value[a])
            .then(t.label[a].cmp(&t.label[b]))
    });
    let mut count = 1;
    let mut c = Vec::new();
    let (mut small, mut small_bytes) = (0, 0u64);
    for child in children {
        if t.value[child] >= min.max(1) {
            let (node, n) = emit(t, child, min);
            count += n;
            c.push(node);
        } else {
            small += 1;
            small_bytes = small_bytes.saturating_add(t.value[child]);
        }
    }
    if small > 0 && small_bytes > 0 {
        count += 1;
        c.push(Node {
            n: format!("({small} smaller frames)"),
            v: small_bytes,
            k: "other",
            c: Vec::new(),
        });
    }
    let (label, kind) = &t.label[at];
    (
        Node {
            n: label.clone(),
            v: t.value[at],
            k: kind,
            c,
        },
        count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> Frame {
        (name.to_owned(), "native")
    }

    #[test]
    fn merges_stacks_into_a_tree_largest_first() {
        let stacks = vec![
            (vec![f("main"), f("a"), f("malloc")], 10),
            (vec![f("main"), f("b")], 30),
            (vec![f("main"), f("a"), f("new")], 5),
        ];
        let (root, merged) = tree(&stacks, "all");
        assert!(!merged);
        assert_eq!(root.v, 45);
        let main = &root.c[0];
        assert_eq!((main.n.as_str(), main.v), ("main", 45));
        let names: Vec<(&str, u64)> = main.c.iter().map(|c| (c.n.as_str(), c.v)).collect();
        assert_eq!(names, [("b", 30), ("a", 15)]);
        assert_eq!(main.c[1].c.len(), 2);
    }

    #[test]
    fn stays_within_the_node_bound() {
        // 10,000 distinct leaves of 1 byte and one big stack.
        let mut stacks: Vec<(Vec<Frame>, u64)> = (0..10_000)
            .map(|i| (vec![f("main"), f(&format!("leaf{i}"))], 1))
            .collect();
        stacks.push((vec![f("main"), f("big")], 1_000_000));
        let (root, merged) = tree(&stacks, "all");
        assert!(merged);
        fn count(n: &Node) -> usize {
            1 + n.c.iter().map(count).sum::<usize>()
        }
        assert!(count(&root) <= MAX_NODES);
        assert_eq!(root.v, 1_010_000);
        let main = &root.c[0];
        assert_eq!(main.c[0].n, "big");
        let rest = main.c.last().unwrap();
        assert_eq!(
            (rest.n.as_str(), rest.v),
            ("(10000 smaller frames)", 10_000)
        );
    }
}
