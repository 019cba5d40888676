//! Distances from the root, exactly as DevTools' `calculateDistances` computes them: a BFS from
//! the user roots, then one from the root for what is left (the "system" objects, at 100000000
//! and beyond). Weak edges are never followed; a few edges are filtered (see `filter`).

use rustc_hash::FxHashSet;

use super::flags::is_user_root;
use super::weakmap::Ephemerons;
use crate::model::{EdgeIdx, NodeCol, NodeIdx, Snapshot, StrId};

/// An unreached node's distance.
pub const NO_DISTANCE: i32 = -5;
/// The distance given to the root when the snapshot has user roots.
pub const BASE_SYSTEM_DISTANCE: i32 = 100_000_000;

/// No path edge: the root, and nodes the BFS never reached.
pub const NO_EDGE: EdgeIdx = EdgeIdx(u32::MAX);

/// Distances, and for each node the edge by which the BFS first reached it: following these
/// edges back gives a shortest retaining path of exactly the node's distance, through the same
/// edges DevTools' distance pass follows.
pub(crate) fn distances(s: &Snapshot, ephemerons: &Ephemerons) -> (NodeCol<i32>, NodeCol<EdgeIdx>) {
    let n = s.node_count();
    let mut dist: NodeCol<i32> = vec![NO_DISTANCE; n].into();
    let mut via: NodeCol<EdgeIdx> = vec![NO_EDGE; n].into();
    let mut queue: Vec<NodeIdx> = Vec::with_capacity(n);
    for e in s.nodes.edges(s.root) {
        let t = s.edges.to[e];
        if is_user_root(s, t) && dist[t] == NO_DISTANCE {
            dist[t] = 1;
            via[t] = e;
            queue.push(t);
        }
    }
    let mut filter = Filter {
        s,
        ephemerons,
        pending: FxHashSet::default(),
        native_context: s.strings.ids_of(b"system / NativeContext"),
        sloppy_function_map: s.strings.ids_of(b"sloppy_function_map"),
        map_descriptors: s.strings.ids_of(b"(map descriptors)"),
    };
    let user_roots = !queue.is_empty();
    bfs(s, &mut queue, &mut dist, &mut via, &mut filter);
    dist[s.root] = if user_roots { BASE_SYSTEM_DISTANCE } else { 0 };
    queue.clear();
    queue.push(s.root);
    bfs(s, &mut queue, &mut dist, &mut via, &mut filter);
    (dist, via)
}

fn bfs(
    s: &Snapshot,
    queue: &mut Vec<NodeIdx>,
    dist: &mut NodeCol<i32>,
    via: &mut NodeCol<EdgeIdx>,
    filter: &mut Filter<'_>,
) {
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        let d = dist[v] + 1;
        for e in s.nodes.edges(v) {
            if s.edges.ty[e] == s.types.e_weak {
                continue;
            }
            let t = s.edges.to[e];
            // The "already reached" check comes before the filter, which has state.
            if dist[t] != NO_DISTANCE || !filter.accepts(v, e) {
                continue;
            }
            dist[t] = d;
            via[t] = e;
            queue.push(t);
        }
    }
}

struct Filter<'a> {
    s: &'a Snapshot,
    ephemerons: &'a Ephemerons,
    /// WeakMap pairs of which one edge has been seen (and refused).
    pending: FxHashSet<u32>,
    // The names the filter looks for, as ids: the BFS is hot, the string arena far away.
    native_context: Vec<StrId>,
    sloppy_function_map: Vec<StrId>,
    map_descriptors: Vec<StrId>,
}

impl Filter<'_> {
    fn accepts(&mut self, v: NodeIdx, e: EdgeIdx) -> bool {
        let s = self.s;
        let t = &s.types;
        let ty = s.nodes.ty[v];
        let edge_ty = s.edges.ty[e];
        let named = !t.edge_name_is_index(edge_ty);
        let name_id = s.edges.name(e);
        let node_name = s.nodes.name[v];
        if ty == t.hidden
            && named
            && self.sloppy_function_map.contains(&name_id)
            && self.native_context.contains(&node_name)
        {
            return false;
        }
        if ty == t.array && self.map_descriptors.contains(&node_name) {
            // crbug.com/413608: skip the descriptors' value slots.
            let index = if named {
                js_parse_int(s.strings.bytes(name_id))
            } else {
                Some(i64::from(s.edges.name_or_index[e]))
            };
            return match index {
                Some(i) => i < 2 || i % 3 != 1,
                None => true,
            };
        }
        if edge_ty == t.e_internal
            && named
            && let Some(eph) = self.ephemerons.get(name_id)
        {
            // Reach a WeakMap value only through the second of its two edges, so its distance
            // is the larger of key + 1 and table + 1 (crbug.com/1290800).
            if !self.pending.remove(&eph.pair) {
                self.pending.insert(eph.pair);
                return false;
            }
        }
        true
    }
}

/// JavaScript's `parseInt(text, 10)`, `None` for NaN (out-of-range values saturate, which only
/// matters for the `% 3` test above on absurd names).
fn js_parse_int(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits: &str = &digits[..digits.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    let v = digits.bytes().fold(0i64, |v, d| {
        v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -v } else { v })
}
