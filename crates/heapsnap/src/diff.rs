//! The Comparison view (`calculateSnapshotDiff`): per class key, the objects that are new in the
//! current snapshot and the ones that were deleted since the base, matched by node id.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::analysis::{Analysis, class_keys};
use crate::code::Positions;
use crate::leaks::{Census, Owner, OwnerFinder, Sources};
use crate::model::{Location, NodeIdx, Snapshot};

/// One row of the Comparison view. Objects whose id is in both snapshots under the same class
/// key are not counted, even if their size changed; an object whose class key changed (a plain
/// object whose inferred `{a, b}` name changed) is deleted from one row and new in another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffRow {
    pub name: String,
    pub location: Option<Location>,
    pub new_count: u64,
    pub deleted_count: u64,
    pub count_delta: i64,
    /// Shallow size of the new objects ("Alloc. Size").
    pub alloc_size: u64,
    /// Shallow size of the deleted objects ("Freed Size").
    pub freed_size: u64,
    pub size_delta: i64,
}

/// One object of a class key: (key << 32 | id, shallow size).
type Entry = (u64, u32);

/// The Comparison of `cur` against `base`, by size delta (largest growth first), then name.
///
/// `base` must have been analysed with `cur`'s interface definitions
/// ([`crate::analyze_with`]), as DevTools does, or plain objects get different names.
pub fn compare(base: (&Snapshot, &Analysis), cur: (&Snapshot, &Analysis)) -> Vec<DiffRow> {
    // Class keys of both snapshots in one numbering, matched by name text and location.
    let mut numbering: FxHashMap<(Vec<u8>, Option<Location>), u32> = FxHashMap::default();
    let mut names: Vec<(Vec<u8>, Option<Location>)> = Vec::new();
    let mut entries = |(s, a): (&Snapshot, &Analysis)| -> Vec<Entry> {
        let keys = class_keys(s, a);
        let unified: Vec<u32> = keys
            .keys
            .iter()
            .map(|&(name, location)| {
                let key = (s.strings.bytes(name).to_vec(), location);
                *numbering.entry(key.clone()).or_insert_with(|| {
                    names.push(key);
                    names.len() as u32 - 1
                })
            })
            .collect();
        // DevTools' `allObjects` aggregates leave out zero-size objects.
        let mut list: Vec<Entry> = s
            .nodes
            .all()
            .filter(|&v| s.nodes.self_size[v] != 0)
            .map(|v| {
                let key = unified[keys.of_node[v] as usize];
                (
                    u64::from(key) << 32 | u64::from(s.nodes.id[v].0),
                    s.nodes.self_size[v],
                )
            })
            .collect();
        list.par_sort_unstable();
        list
    };
    let old = entries(base);
    let new = entries(cur);

    let mut rows: Vec<DiffRow> = names
        .iter()
        .map(|(name, location)| DiffRow {
            name: String::from_utf8_lossy(name).into_owned(),
            location: *location,
            new_count: 0,
            deleted_count: 0,
            count_delta: 0,
            alloc_size: 0,
            freed_size: 0,
            size_delta: 0,
        })
        .collect();
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let a = old.get(i).map_or(u64::MAX, |e| e.0);
        let b = new.get(j).map_or(u64::MAX, |e| e.0);
        if a < b {
            let row = &mut rows[(a >> 32) as usize];
            row.deleted_count += 1;
            row.freed_size += u64::from(old[i].1);
            i += 1;
        } else if b < a {
            let row = &mut rows[(b >> 32) as usize];
            row.new_count += 1;
            row.alloc_size += u64::from(new[j].1);
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    rows.retain(|r| r.new_count > 0 || r.deleted_count > 0);
    for r in &mut rows {
        r.count_delta = r.new_count as i64 - r.deleted_count as i64;
        r.size_delta = r.alloc_size as i64 - r.freed_size as i64;
    }
    rows.sort_by(|x, y| {
        y.size_delta
            .cmp(&x.size_delta)
            .then_with(|| x.name.cmp(&y.name))
            .then_with(|| x.location.cmp(&y.location))
    });
    rows
}

pub use crate::code::is_generic;

/// For each generic class among `rows`: the owner holding most bytes of its new objects.
pub fn generic_owners(
    s: &Snapshot,
    a: &Analysis,
    earlier: &[Census],
    rows: &[DiffRow],
    sources: &dyn Sources,
) -> FxHashMap<String, Owner> {
    // The wanted classes by string id: text is compared once per string, not once per node.
    let mut wanted: Vec<Option<&str>> = vec![None; s.strings.len()];
    for r in rows
        .iter()
        .filter(|r| r.new_count > 0 && is_generic(&r.name))
    {
        for id in s.strings.ids_of(r.name.as_bytes()) {
            wanted[id.index()] = Some(r.name.as_str());
        }
    }
    let mut new_objects: FxHashMap<&str, Vec<(u32, NodeIdx)>> = FxHashMap::default();
    for v in s.nodes.all() {
        let size = s.nodes.self_size[v];
        let Some(name) = wanted[a.class[v].index()] else {
            continue;
        };
        if size != 0 && !earlier[0].contains(s.nodes.id[v]) {
            new_objects.entry(name).or_default().push((size, v));
        }
    }
    if new_objects.is_empty() {
        return FxHashMap::default();
    }
    let finder = OwnerFinder::new(s, &earlier[0]);
    // Which collections grew, once; then each new object's owner is the nearest of them on its
    // path (as `leaks` finds them).
    let grown = finder.grown(s, &earlier[0], &finder.entries_now(s));
    let mut owners = FxHashMap::default();
    for (name, objects) in new_objects {
        // Every new object of the class is attributed (no sampling); only the owner holding
        // the most bytes is described.
        let located: Vec<(NodeIdx, u32, NodeIdx)> = objects
            .par_iter()
            .filter_map(|&(size, v)| Some((finder.grown_owner(s, a, &grown, v)?, size, v)))
            .collect();
        let mut bytes: FxHashMap<NodeIdx, (u64, NodeIdx)> = FxHashMap::default();
        for (owner, size, v) in located {
            bytes.entry(owner).or_insert((0, v)).0 += u64::from(size);
        }
        let best = bytes
            .into_iter()
            .max_by_key(|&(owner, (b, _))| (b, std::cmp::Reverse(owner)));
        if let Some((_, (_, v))) = best
            && let Some(mut owner) = finder.owner_of(s, a, earlier, v, sources)
        {
            owner.map_positions(sources);
            owners.insert(name.to_owned(), owner);
        }
    }
    owners
}
