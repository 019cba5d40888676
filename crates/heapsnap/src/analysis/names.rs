//! Class names: the "Constructor" column of DevTools' Summary view (`calculateObjectNames`), with
//! the `{a, b, …}` names DevTools infers for plain objects (`inferInterfaceDefinitions`,
//! `applyInterfaceDefinitions`).

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use crate::model::{NodeCol, NodeIdx, Snapshot, StrId};

/// No string: a placeholder that no real id equals.
const NO_STR: StrId = StrId(u32::MAX);

/// Names derived by the analysis, numbered after the snapshot's own strings; the caller appends
/// them to the snapshot's strings in order, as DevTools appends them to its string table.
#[derive(Default)]
pub(crate) struct Derived {
    base: StrId,
    pub(crate) texts: Vec<Vec<u8>>,
    ids: FxHashMap<Vec<u8>, StrId>,
}

impl Derived {
    /// The id of `text`, added once.
    fn intern(&mut self, text: &[u8]) -> StrId {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.push(text);
        self.ids.insert(text.to_vec(), id);
        id
    }

    /// A new id for `text`, even if it was added before.
    fn push(&mut self, text: &[u8]) -> StrId {
        self.texts.push(text.to_vec());
        StrId(self.base.0 + self.texts.len() as u32 - 1)
    }
}

/// The class name of every node, as a string id into the snapshot's strings followed by
/// `Derived::texts`.
pub(crate) fn class_names(
    s: &Snapshot,
    interfaces: Option<&Interfaces>,
) -> (NodeCol<StrId>, Derived, Interfaces) {
    let mut derived = Derived {
        base: StrId::from(s.strings.len()),
        ..Derived::default()
    };
    let t = &s.types;
    let mut intern = |_: &Snapshot, text: &[u8]| derived.intern(text);
    let system = intern(s, b"(system)");
    let code = intern(s, b"(compiled code)");
    let function = intern(s, b"Function");
    let regexp = intern(s, b"RegExp");
    let by_type: Vec<StrId> = t
        .node_names
        .iter()
        .map(|name| intern(s, format!("({name})").as_bytes()))
        .collect();

    let n = s.node_count();
    let mut class = NodeCol::with_capacity(n);
    for v in s.nodes.all() {
        let ty = s.nodes.ty[v];
        let id = if ty == t.hidden {
            system
        } else if ty == t.object || ty == t.native {
            let name_id = s.nodes.name[v];
            let name = s.strings.bytes(name_id);
            // `<div id="a">` is class `<div>`; likewise `Detached <div …>`.
            let cut = if name.starts_with(b"<") {
                Some(name.iter().position(|&b| b == b' '))
            } else if name.starts_with(b"Detached <") {
                Some(
                    name.iter()
                        .skip(10)
                        .position(|&b| b == b' ')
                        .map(|i| i + 10),
                )
            } else {
                None
            };
            match cut {
                None => name_id,
                Some(None) => intern(s, name),
                Some(Some(space)) => {
                    let mut short = name[..space].to_vec();
                    short.push(b'>');
                    intern(s, &short)
                }
            }
        } else if ty == t.code {
            code
        } else if ty == t.closure {
            function
        } else if ty == t.regexp {
            regexp
        } else {
            by_type[ty as usize]
        };
        class.push(id);
    }
    let inferred = infer(s);
    let own;
    let definitions = match interfaces {
        Some(given) => given,
        None => {
            own = Interfaces::of(s, &inferred);
            &own
        }
    };
    apply_interfaces(s, definitions, &mut class, &mut derived);
    (class, derived, Interfaces::of(s, &inferred))
}

const MAX_INTERFACE_NAME_LENGTH: usize = 120;
const MIN_OBJECT_COUNT_PER_INTERFACE: f64 = 2.0;
const MIN_OBJECT_PROPORTION_PER_INTERFACE: f64 = 1000.0;

/// Whether node `v` is a plain JS object (`object` type named `Object`); `object_names` holds the
/// ids whose text is `Object` (compared by id: the string arena is far away).
fn is_plain_object(s: &Snapshot, object_names: &[StrId], v: NodeIdx) -> bool {
    s.nodes.ty[v] == s.types.object && object_names.contains(&s.nodes.name[v])
}

struct Definition {
    name: Vec<u8>,
    properties: Vec<StrId>,
    count: usize,
}

/// The `{a, b, …}` interface definitions DevTools infers for a snapshot's plain objects, as text,
/// in DevTools' order. The Comparison view names the *base* snapshot's objects with the *current*
/// snapshot's definitions (`aggregatesForDiff`), so they travel between snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// (name, property names)
    definitions: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

impl Interfaces {
    fn of(s: &Snapshot, definitions: &[Definition]) -> Interfaces {
        let text = |id: &StrId| s.strings.bytes(*id).to_vec();
        Interfaces {
            definitions: definitions
                .iter()
                .map(|d| (d.name.clone(), d.properties.iter().map(text).collect()))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// The definitions as string ids of `s`. A definition naming a property that `s` has no
    /// string for cannot match any object there: it keeps its place (DevTools breaks ties by
    /// index) with no properties and a count of zero, which `Trie::new` skips.
    fn resolve(&self, s: &Snapshot) -> Vec<Definition> {
        let wanted: FxHashMap<&[u8], StrId> = self
            .definitions
            .iter()
            .flat_map(|(_, props)| props.iter().map(|p| (p.as_slice(), NO_STR)))
            .collect();
        let mut found = wanted;
        for id in (0..s.file_string_count).map(StrId) {
            if let Some(slot) = found.get_mut(s.strings.bytes(id))
                && *slot == NO_STR
            {
                *slot = id;
            }
        }
        self.definitions
            .iter()
            .map(|(name, props)| {
                let ids: Option<Vec<StrId>> = props
                    .iter()
                    .map(|p| Some(found[p.as_slice()]).filter(|&id| id != NO_STR))
                    .collect();
                Definition {
                    name: name.clone(),
                    count: usize::from(ids.is_some()),
                    properties: ids.unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// Names each plain object after the largest definition whose properties it has.
fn apply_interfaces(
    s: &Snapshot,
    interfaces: &Interfaces,
    class: &mut NodeCol<StrId>,
    derived: &mut Derived,
) {
    if interfaces.is_empty() {
        return;
    }
    let definitions = interfaces.resolve(s);
    let trie = Trie::new(s, &definitions);
    let names: Vec<StrId> = definitions.iter().map(|d| derived.push(&d.name)).collect();
    let mut properties = Vec::new();
    let mut states = Vec::new();
    let object_names = s.strings.ids_of(b"Object");
    for (v, class) in class.iter_mut_enumerated() {
        if !is_plain_object(s, &object_names, v) {
            continue;
        }
        properties.clear();
        properties.extend(
            s.nodes
                .edges(v)
                .filter(|&e| s.edges.ty[e] == s.types.e_property)
                .map(|e| s.edges.name(e)),
        );
        properties.sort_by(|&a, &b| cmp_utf16(s.strings.bytes(a), s.strings.bytes(b)));
        if let Some(found) = trie.best_match(s, &properties, &mut states) {
            *class = names[found];
        }
    }
}

fn infer(s: &Snapshot) -> Vec<Definition> {
    let mut candidates: Vec<Definition> = Vec::new();
    let mut index: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
    let mut total = 0usize;
    let mut name = Vec::new();
    let mut properties = Vec::new();
    let object_names = s.strings.ids_of(b"Object");
    for v in s.nodes.all() {
        if !is_plain_object(s, &object_names, v) {
            continue;
        }
        total += 1;
        name.clear();
        name.push(b'{');
        let mut name_len = 1; // In UTF-16 units, as JavaScript counts.
        properties.clear();
        for e in s.nodes.edges(v) {
            if s.edges.ty[e] != s.types.e_property {
                continue;
            }
            let id = s.edges.name(e);
            let prop = s.strings.bytes(id);
            if prop == b"__proto__" {
                continue;
            }
            let formatted = format_property_name(prop);
            let formatted_len = utf16_len(&formatted);
            if name_len > 1 && name_len + formatted_len > MAX_INTERFACE_NAME_LENGTH {
                break;
            }
            if name_len != 1 {
                name.extend_from_slice(b", ");
                name_len += 2;
            }
            name.extend_from_slice(&formatted);
            name_len += formatted_len;
            properties.push(id);
        }
        if properties.is_empty() {
            continue;
        }
        name.push(b'}');
        match index.get(&name) {
            Some(&i) => candidates[i].count += 1,
            None => {
                index.insert(name.clone(), candidates.len());
                candidates.push(Definition {
                    name: name.clone(),
                    properties: properties.clone(),
                    count: 1,
                });
            }
        }
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.count)); // Stable: ties stay in first-seen order.
    let min =
        MIN_OBJECT_COUNT_PER_INTERFACE.max(total as f64 / MIN_OBJECT_PROPORTION_PER_INTERFACE);
    let keep = candidates
        .iter()
        .take_while(|c| c.count as f64 >= min)
        .count();
    candidates.truncate(keep);
    candidates
}

/// DevTools' `formatPropertyName`: names with `,'"{}` are written as a JSON string.
fn format_property_name(name: &[u8]) -> Vec<u8> {
    if !name
        .iter()
        .any(|b| matches!(b, b',' | b'\'' | b'"' | b'{' | b'}'))
    {
        return name.to_vec();
    }
    let mut out = vec![b'"'];
    let text = String::from_utf8_lossy(name);
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// The length of WTF-8 text in UTF-16 code units.
fn utf16_len(text: &[u8]) -> usize {
    text.iter()
        .map(|&b| match b {
            0xF0..=0xFF => 2, // A four-byte sequence is a surrogate pair.
            0x80..=0xBF => 0, // Continuation bytes add nothing.
            _ => 1,
        })
        .sum()
}

/// Orders WTF-8 strings as JavaScript orders strings: by UTF-16 code units. This differs from
/// byte order only between astral characters and U+E000–U+FFFF.
pub(crate) fn cmp_utf16(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some(i) if a[i] < 0x80 && b[i] < 0x80 => a[i].cmp(&b[i]),
        Some(_) => utf16_units(a).cmp(utf16_units(b)),
    }
}

fn utf16_units(text: &[u8]) -> impl Iterator<Item = u16> + '_ {
    let mut i = 0;
    let mut pending: Option<u16> = None;
    std::iter::from_fn(move || {
        if let Some(lo) = pending.take() {
            return Some(lo);
        }
        let b = *text.get(i)?;
        let (cp, len) = match b {
            0..=0x7F => (u32::from(b), 1),
            0xC0..=0xDF => (u32::from(b & 0x1F), 2),
            0xE0..=0xEF => (u32::from(b & 0x0F), 3),
            0xF0..=0xF7 => (u32::from(b & 0x07), 4),
            _ => (0xFFFD, 1),
        };
        let cp = text.get(i + 1..i + len).map_or(0xFFFD, |rest| {
            rest.iter()
                .fold(cp, |cp, &c| (cp << 6) | u32::from(c & 0x3F))
        });
        i += len;
        if cp >= 0x10000 {
            let c = cp - 0x10000;
            pending = Some(0xDC00 + (c & 0x3FF) as u16);
            Some(0xD800 + (c >> 10) as u16)
        } else {
            Some(cp as u16)
        }
    })
}

/// A trie over the definitions' sorted property lists.
struct Trie {
    nodes: Vec<TrieNode>,
}

struct TrieNode {
    next: FxHashMap<StrId, usize>,
    /// (property count, definition index) of the first definition ending here.
    matched: Option<(usize, usize)>,
    greatest_next: Option<StrId>,
}

impl Trie {
    fn new(s: &Snapshot, definitions: &[Definition]) -> Trie {
        let empty = || TrieNode {
            next: FxHashMap::default(),
            matched: None,
            greatest_next: None,
        };
        let mut nodes = vec![empty()];
        for (i, d) in definitions.iter().enumerate() {
            if d.count == 0 {
                continue; // Unresolvable in this snapshot (see `Interfaces::resolve`).
            }
            let mut props = d.properties.clone();
            props.sort_by(|&a, &b| cmp_utf16(s.strings.bytes(a), s.strings.bytes(b)));
            let mut at = 0;
            for &p in &props {
                at = match nodes[at].next.get(&p) {
                    Some(&next) => next,
                    None => {
                        nodes.push(empty());
                        let next = nodes.len() - 1;
                        let node = &mut nodes[at];
                        node.next.insert(p, next);
                        let greater = match node.greatest_next {
                            None => true,
                            Some(g) => {
                                cmp_utf16(s.strings.bytes(g), s.strings.bytes(p)) == Ordering::Less
                            }
                        };
                        if greater {
                            node.greatest_next = Some(p);
                        }
                        next
                    }
                };
            }
            nodes[at].matched.get_or_insert((props.len(), i));
        }
        Trie { nodes }
    }

    /// The definition with the most properties (then the lowest index) whose properties are all
    /// among `properties` (sorted).
    fn best_match(
        &self,
        s: &Snapshot,
        properties: &[StrId],
        states: &mut Vec<usize>,
    ) -> Option<usize> {
        let better = |a: Option<(usize, usize)>, b: Option<(usize, usize)>| match (a, b) {
            (None, b) => b,
            (a, None) => a,
            (Some(a), Some(b)) => Some(if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
                b
            } else {
                a
            }),
        };
        states.clear();
        states.push(0);
        let mut best = self.nodes[0].matched;
        for &p in properties {
            let snapshot_len = states.len();
            let current: Vec<usize> = states[..snapshot_len].to_vec();
            for state in current {
                let node = &self.nodes[state];
                let past = match node.greatest_next {
                    None => true,
                    Some(g) => cmp_utf16(s.strings.bytes(p), s.strings.bytes(g)) != Ordering::Less,
                };
                if past {
                    states.retain(|&x| x != state);
                }
                if let Some(&next) = node.next.get(&p) {
                    if !states.contains(&next) {
                        states.push(next);
                    }
                    best = better(best, self.nodes[next].matched);
                }
            }
        }
        best.map(|(_, i)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_order_differs_from_byte_order_for_astral_characters() {
        let astral = "😀".as_bytes(); // U+1F600, UTF-16 D83D DE00
        let private = "\u{E000}".as_bytes();
        assert_eq!(astral.cmp(private), Ordering::Greater);
        assert_eq!(cmp_utf16(astral, private), Ordering::Less);
        assert_eq!(cmp_utf16(b"ab", b"abc"), Ordering::Less);
        assert_eq!(utf16_len("a😀é".as_bytes()), 4);
    }

    #[test]
    fn property_names_with_json_characters_are_quoted() {
        assert_eq!(format_property_name(b"plain"), b"plain");
        assert_eq!(format_property_name(b"a,b"), b"\"a,b\"");
        assert_eq!(format_property_name(b"say \"hi\""), b"\"say \\\"hi\\\"\"");
    }
}
