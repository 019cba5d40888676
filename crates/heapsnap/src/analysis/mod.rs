//! Everything DevTools computes when it loads a snapshot, in its order: DOM state, flags,
//! essential edges, shallow sizes, dominators and retained sizes, distances, class names.
//!
//! Analyses never fail on a loaded snapshot: the reader has already checked every index.

mod distances;
mod flags;
mod names;
mod sizes;
mod summary;
mod weakmap;

use std::time::{Duration, Instant};

pub use distances::{BASE_SYSTEM_DISTANCE, NO_DISTANCE, NO_EDGE};
pub use names::Interfaces;
pub use summary::{
    ClassKeys, ClassRow, Native, Statistics, V8Heap, class_keys, statistics, summary,
};

use crate::model::{EdgeIdx, NodeCol, NodeIdx, Snapshot, StrId};

/// Per-node results, indexed by node ordinal.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub root: NodeIdx,
    /// Class name of each node (a string id of the analysed snapshot).
    pub class: NodeCol<StrId>,
    pub distance: NodeCol<i32>,
    /// The edge by which the distance BFS first reached each node ([`NO_EDGE`] for the root and
    /// unreached nodes): a shortest retaining path, read backwards.
    pub path_edge: NodeCol<EdgeIdx>,
    /// Immediate dominator; the root's is itself.
    pub idom: NodeCol<NodeIdx>,
    pub retained: NodeCol<u64>,
    /// DevTools' total: the root's retained size plus `extra_native_bytes`.
    pub total_size: u64,
    /// The `{a, b}` interface definitions inferred from this snapshot's plain objects.
    pub interfaces: Interfaces,
    /// Wall time of each phase, for `--timings`. Phases under `parallel:` overlap the others.
    pub timings: Vec<(&'static str, Duration)>,
}

/// Runs every load-time analysis. Like DevTools, it changes the snapshot: derived names (class
/// names, `Detached …`) are appended to its strings, detached nodes are renamed, and
/// `nodes.self_size` becomes the shallow size DevTools shows (see `shallow_sizes`).
pub fn analyze(s: &mut Snapshot) -> Analysis {
    analyze_with(s, None)
}

/// Only the class names (with DOM state and the snapshot's own interface definitions), for when
/// a snapshot is only counted, not explored: no sizes, dominators or distances.
pub fn class_names(s: &mut Snapshot) -> NodeCol<StrId> {
    flags::propagate_dom_state(s);
    let (class, derived, _) = names::class_names(s, None);
    for text in &derived.texts {
        s.strings.push(text);
    }
    class
}

/// [`analyze`], naming plain objects with the given interface definitions instead of the
/// snapshot's own (the Comparison view names the base snapshot with the current one's).
pub fn analyze_with(s: &mut Snapshot, interfaces: Option<&Interfaces>) -> Analysis {
    let mut timings = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name, timings: &mut Vec<(&'static str, Duration)>| {
        let now = Instant::now();
        timings.push((name, now - clock));
        clock = now;
    };
    flags::propagate_dom_state(s);
    let user_roots = flags::has_user_roots(s);
    // Independent passes: the shallow-size rule needs nothing the other two compute.
    let snapshot: &Snapshot = s;
    let (sizes, (ephemerons, page_owned)) = rayon::join(
        || sizes::shallow_sizes(snapshot, user_roots),
        || {
            rayon::join(
                || weakmap::Ephemerons::new(snapshot),
                || flags::page_owned(snapshot),
            )
        },
    );
    let essential = sizes::essential_edges(s, &ephemerons, &page_owned);
    drop(page_owned);
    if let Some(sizes) = sizes {
        s.nodes.self_size = sizes;
    }
    lap("flags and essential edges", &mut timings);

    // The dominator tree is sequential and memory-hungry, so it runs alone; distances and class
    // names then run side by side once its working arrays are freed.
    let tree = sizes::dominator_tree(s, &essential);
    drop(essential);
    let retained = sizes::retained_sizes(&tree, &s.nodes.self_size);
    let idom = tree.idom;
    lap("dominators and retained sizes", &mut timings);
    let snapshot: &Snapshot = s;
    let (((distance, path_edge), dist_time), (class, derived, interfaces, names_time)) =
        rayon::join(
            || {
                let start = Instant::now();
                (distances::distances(snapshot, &ephemerons), start.elapsed())
            },
            || {
                let start = Instant::now();
                let (class, derived, inferred) = names::class_names(snapshot, interfaces);
                (class, derived, inferred, start.elapsed())
            },
        );
    lap("distances ∥ class names", &mut timings);
    timings.push(("parallel: distances", dist_time));
    timings.push(("parallel: class names", names_time));
    for text in &derived.texts {
        s.strings.push(text);
    }
    let total_size = retained[s.root].saturating_add(s.extra_native_bytes);
    Analysis {
        root: s.root,
        class,
        distance,
        path_edge,
        idom,
        retained,
        total_size,
        interfaces,
        timings,
    }
}
