//! WeakMap ephemeron edges. For each key → value pair V8 adds two internal edges to the value,
//! from the key and from the table, both named
//! `<n> / part of key (<k> @<id>) -> value (<v> @<id>) pair in WeakMap (table @<id>)`.
//! DevTools recognises them with a regular expression; so do we, with the same one.

use rustc_hash::FxHashMap;

use crate::bits::BitSet;
use crate::model::{Snapshot, StrId};

/// What an ephemeron edge name says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ephemeron {
    /// Identifies the text after the leading number, shared by the two edges of one pair.
    pub pair: u32,
    /// The id of the table node.
    pub table_id: u64,
}

/// The ephemeron names among a snapshot's strings.
pub(crate) struct Ephemerons {
    candidates: BitSet,
    len: usize,
    parsed: FxHashMap<StrId, Ephemeron>,
}

impl Ephemerons {
    pub(crate) fn new(snapshot: &Snapshot) -> Ephemerons {
        // DevTools' pattern, with `\d` spelled [0-9] because Rust's `\d` is Unicode-wide.
        let re = regex::bytes::Regex::new(
            r"^[0-9]+(?<dup> / part of key \(.*? @[0-9]+\) -> value \(.*? @[0-9]+\) pair in WeakMap \(table @(?<table>[0-9]+)\))$",
        )
        .expect("the ephemeron pattern is valid");
        let finder = memchr::memmem::Finder::new(b"pair in WeakMap");
        let strings = &snapshot.strings;
        let mut candidates = BitSet::new(strings.len());
        let mut parsed = FxHashMap::default();
        let mut pairs: FxHashMap<Vec<u8>, u32> = FxHashMap::default();
        for id in (0..strings.len()).map(StrId::from) {
            let text = strings.bytes(id);
            if finder.find(text).is_none() {
                continue;
            }
            let Some(caps) = re.captures(text) else {
                continue;
            };
            let next = pairs.len() as u32;
            let pair = *pairs.entry(caps["dup"].to_vec()).or_insert(next);
            let table_id = caps["table"].iter().fold(0u64, |v, &d| {
                v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            candidates.set(id.index());
            parsed.insert(id, Ephemeron { pair, table_id });
        }
        Ephemerons {
            candidates,
            len: strings.len(),
            parsed,
        }
    }

    #[inline]
    pub(crate) fn get(&self, name: StrId) -> Option<Ephemeron> {
        if name.index() < self.len && self.candidates.get(name.index()) {
            self.parsed.get(&name).copied()
        } else {
            None
        }
    }
}
