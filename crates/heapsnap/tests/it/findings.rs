//! Findings on built graphs and on files with dangling edges.

use heapsnap::findings::{FindingKind, Thresholds, findings};
use heapsnap::testing::{Format, Graph};
use heapsnap::{EdgeIdx, NodeIdx};

/// Story 1: a `(Handle scope)` root holding a huge number of handles to one value.
#[test]
fn a_synthetic_root_with_a_huge_fan_out_is_a_finding() {
    let handles = 3_000;
    let mut text = String::from(
        "root: synthetic\nS: synthetic name=\"(Handle scope)\"\nU: hidden 16 name=\"system / Oddball\"\nG: object 8 name=\"Window\"\nroot -element-> S\nroot -shortcut-> G\nG -property:x-> U\n",
    );
    for _ in 0..handles {
        text.push_str("S -element-> U\n");
    }
    let json = Graph::parse(&text).to_json(Format::Classic);
    let mut s = heapsnap::read(json.as_bytes(), "handles").unwrap();
    let a = heapsnap::analyze(&mut s);
    let limits = Thresholds {
        fan_out: 2_000,
        ..Thresholds::default()
    };
    let found = findings(&s, &a, &limits);
    let f = found
        .iter()
        .find(|f| f.kind == FindingKind::HandleFanOut)
        .expect("the fan-out is reported");
    assert!(
        f.title
            .starts_with("(Handle scope) @3 has 3000 edges; 3000 (100.0%) point at (system) @5"),
        "{}",
        f.title
    );
    assert!(f.meaning.contains("native handle leak"), "{}", f.meaning);
}

/// Edges pointing outside the node array are left out and reported, not fatal.
#[test]
fn dangling_edges_load_and_are_reported() {
    for (name, to_node) in [("to-node-past-end", 21), ("to-node-not-multiple", 15)] {
        let path = format!("tests/dangling/{name}.heapsnapshot");
        let mut s = heapsnap::read_path(path.as_ref()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.dangling.len(), 1, "{name}");
        assert_eq!(s.dangling[0].to_node, to_node, "{name}");
        assert_eq!(s.edge_count(), 1, "{name}: the dangling edge is left out");
        assert_eq!(*s.nodes.first_edge.last().unwrap(), EdgeIdx(1), "{name}");
        let a = heapsnap::analyze(&mut s);
        let found = findings(&s, &a, &Thresholds::default());
        let f = found
            .iter()
            .find(|f| f.kind == FindingKind::DanglingEdges)
            .expect("reported");
        assert!(
            f.title
                .starts_with("1 edge(s) point outside the node array"),
            "{}",
            f.title
        );
    }
}

/// Many dangling edges between good ones: every node keeps exactly its good edges.
#[test]
fn dangling_edges_are_removed_from_the_right_nodes() {
    let json = Graph::parse(
        "root: synthetic\nA: object 8\nB: object 8\nroot -shortcut-> A\nroot -element-> B\nA -property:x-> B\nA -property:y-> A\nB -property:z-> A\n",
    )
    .to_json(Format::Classic);
    // Point A's first edge and B's edge outside the node array (3 nodes × 7 fields).
    let edges_at = json.find("\"edges\":[").unwrap();
    let mut numbers: Vec<String> = json
        [edges_at + 9..json[edges_at..].find(']').unwrap() + edges_at]
        .split(',')
        .map(|n| n.trim().to_owned())
        .collect();
    numbers[2 * 3 + 2] = "700".into();
    numbers[4 * 3 + 2] = "707".into();
    let patched = format!(
        "{}{}{}",
        &json[..edges_at + 9],
        numbers.join(","),
        &json[json[edges_at..].find(']').unwrap() + edges_at..]
    );
    let s = heapsnap::read(patched.as_bytes(), "patched").unwrap();
    assert_eq!(s.dangling.len(), 2);
    assert_eq!(
        (s.dangling[0].from, s.dangling[1].from),
        (NodeIdx(1), NodeIdx(2))
    );
    assert_eq!(s.nodes.first_edge.raw, [0, 2, 3, 3].map(EdgeIdx));
    assert_eq!(s.edge_name(EdgeIdx(2)), "y");
}

/// Many closures of one function that share one scope: the scope's retained size counts once
/// (it was once counted per closure, giving sizes a thousand times the heap).
#[test]
fn closures_sharing_a_scope_count_it_once() {
    let closures = 1_500;
    let mut text = String::from(
        "root: synthetic\nG: object 8 name=\"Window\"\nL: object 16 name=\"Array\"\nC: object 48 name=\"system / Context\"\nB: object 1000000 name=\"Buffer\"\nroot -shortcut-> G\nG -property:listeners-> L\nG -property:scope-> C\nC -context:payload-> B\n",
    );
    for i in 0..closures {
        text.push_str(&format!(
            "F{i}: closure 32 name=\"onError\"\nL -element-> F{i}\nF{i} -internal:context-> C\n"
        ));
    }
    let json = Graph::parse(&text).to_json(Format::Classic);
    let mut s = heapsnap::read(json.as_bytes(), "closures").unwrap();
    let a = heapsnap::analyze(&mut s);
    let found = findings(&s, &a, &Thresholds::default());
    let f = found
        .iter()
        .find(|f| f.kind == FindingKind::ClosureBuildUp)
        .expect("the closures are reported");
    assert_eq!(f.bytes, 1_000_048, "{f:#?}");
    assert!(f.bytes <= a.total_size);
    assert!(
        f.title.starts_with(
            "1500 closures of function onError, all in one scope, which retains 1.0 MB"
        ),
        "{}",
        f.title
    );
}
