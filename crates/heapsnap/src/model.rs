//! The in-memory snapshot: struct-of-arrays columns indexed by node ordinal, edges in CSR form,
//! and one string arena.
//!
//! Handles ([`NodeIdx`], [`EdgeIdx`], [`StrId`]) are valid only for the snapshot that made them.

use serde::Deserialize;

pub use crate::handle::{EdgeCol, EdgeIdx, NodeCol, NodeId, NodeIdx, StrId};

/// The strings of a snapshot, in one byte arena.
///
/// Text is stored as WTF-8: valid UTF-8 except that lone UTF-16 surrogates (which V8 can emit
/// as `\udXXX` escapes) keep their own three-byte encoding, so that nothing is lost.
#[derive(Debug, Default, Clone)]
pub struct Strings {
    bytes: Vec<u8>,
    ends: Vec<u64>,
}

impl Strings {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all strings together.
    pub fn bytes_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The raw (WTF-8) bytes of string `id`.
    pub fn bytes(&self, id: StrId) -> &[u8] {
        let id = id.index();
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.bytes[start..self.ends[id] as usize]
    }

    /// String `id` as text. Lone surrogates become U+FFFD.
    pub fn get(&self, id: StrId) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.bytes(id))
    }

    /// Every id whose text is `text` (V8 writes each text once, but nothing forces a file to).
    pub fn ids_of(&self, text: &[u8]) -> Vec<StrId> {
        (0..self.len())
            .map(StrId::from)
            .filter(|&id| self.bytes(id) == text)
            .collect()
    }

    /// Appends a string and returns its id.
    pub fn push(&mut self, s: &[u8]) -> StrId {
        self.bytes.extend_from_slice(s);
        self.ends.push(self.bytes.len() as u64);
        StrId::from(self.ends.len() - 1)
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    pub(crate) fn arena_mut(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the string that was written into the arena since the previous one.
    pub(crate) fn seal(&mut self) {
        self.ends.push(self.bytes.len() as u64);
    }
}

/// The type numbers the analyses care about, resolved by name from `snapshot.meta`, as DevTools
/// does. A type the file does not declare gets [`Types::ABSENT`], which matches no node or edge.
#[derive(Debug, Clone)]
pub struct Types {
    pub node_names: Vec<String>,
    pub edge_names: Vec<String>,
    pub hidden: u8,
    pub array: u8,
    pub string: u8,
    pub object: u8,
    pub code: u8,
    pub closure: u8,
    pub regexp: u8,
    pub native: u8,
    pub synthetic: u8,
    pub cons_string: u8,
    pub sliced_string: u8,
    /// A hidden class (`system / Map`); older snapshots call these `hidden`.
    pub object_shape: u8,
    pub e_context: u8,
    pub e_element: u8,
    pub e_property: u8,
    pub e_internal: u8,
    pub e_hidden: u8,
    pub e_shortcut: u8,
    pub e_weak: u8,
}

impl Types {
    pub const ABSENT: u8 = u8::MAX;

    pub(crate) fn new(node_names: Vec<String>, edge_names: Vec<String>) -> Types {
        let n = |name: &str| find(&node_names, name);
        let e = |name: &str| find(&edge_names, name);
        Types {
            hidden: n("hidden"),
            array: n("array"),
            string: n("string"),
            object: n("object"),
            code: n("code"),
            closure: n("closure"),
            regexp: n("regexp"),
            native: n("native"),
            synthetic: n("synthetic"),
            cons_string: n("concatenated string"),
            sliced_string: n("sliced string"),
            object_shape: n("object shape"),
            e_context: e("context"),
            e_element: e("element"),
            e_property: e("property"),
            e_internal: e("internal"),
            e_hidden: e("hidden"),
            e_shortcut: e("shortcut"),
            e_weak: e("weak"),
            node_names,
            edge_names,
        }
    }

    /// Whether an edge of this type names itself by a number rather than by a string id.
    pub fn edge_name_is_index(&self, ty: u8) -> bool {
        ty == self.e_element || ty == self.e_hidden
    }
}

fn find(names: &[String], name: &str) -> u8 {
    names
        .iter()
        .position(|n| n == name)
        .map_or(Types::ABSENT, |i| i as u8)
}

/// The node columns. `first_edge` has `count + 1` entries.
#[derive(Debug, Default, Clone)]
pub struct Nodes {
    pub ty: NodeCol<u8>,
    pub name: NodeCol<StrId>,
    pub id: NodeCol<NodeId>,
    pub self_size: NodeCol<u32>,
    pub first_edge: NodeCol<EdgeIdx>,
    /// Present when some node has a non-zero `trace_node_id` (allocation tracking was on).
    pub trace_node_id: Option<NodeCol<u32>>,
    /// Present when the file has the `detachedness` field (0 unknown, 1 attached, 2 detached).
    pub detachedness: Option<NodeCol<u8>>,
}

impl Nodes {
    pub fn len(&self) -> usize {
        self.ty.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ty.is_empty()
    }

    /// Every node, in order.
    pub fn all(
        &self,
    ) -> impl DoubleEndedIterator<Item = NodeIdx> + ExactSizeIterator + Clone + use<> {
        (0..self.len()).map(NodeIdx::from)
    }

    /// Every node, for rayon.
    pub fn par_all(&self) -> impl rayon::iter::IndexedParallelIterator<Item = NodeIdx> + use<> {
        use rayon::prelude::*;
        (0..self.len()).into_par_iter().map(NodeIdx::from)
    }

    /// The edges of node `n`.
    pub fn edges(
        &self,
        n: NodeIdx,
    ) -> impl DoubleEndedIterator<Item = EdgeIdx> + ExactSizeIterator + Clone + use<> {
        let range = self.edge_range(n);
        (range.start.index()..range.end.index()).map(EdgeIdx::from)
    }

    /// The edges of node `n`, to slice edge columns with.
    pub fn edge_range(&self, n: NodeIdx) -> std::ops::Range<EdgeIdx> {
        self.first_edge[n]..self.first_edge[NodeIdx(n.0 + 1)]
    }
}

/// The edge columns, in CSR order (node 0's edges first). `to` holds node ordinals, not the raw
/// `to_node` field (which is ordinal × node field count).
#[derive(Debug, Default, Clone)]
pub struct Edges {
    pub ty: EdgeCol<u8>,
    /// A string id, or a plain number for element and hidden edges (see
    /// [`Snapshot::edge_name_id`]).
    pub name_or_index: EdgeCol<u32>,
    pub to: EdgeCol<NodeIdx>,
}

impl Edges {
    pub fn len(&self) -> usize {
        self.ty.len()
    }

    /// The string id that names edge `e`, for the edge types named by strings (check the type
    /// first, or use [`Snapshot::edge_name_id`]).
    pub fn name(&self, e: EdgeIdx) -> StrId {
        StrId(self.name_or_index[e])
    }

    /// Every edge, in order.
    pub fn all(
        &self,
    ) -> impl DoubleEndedIterator<Item = EdgeIdx> + ExactSizeIterator + Clone + use<> {
        (0..self.len()).map(EdgeIdx::from)
    }

    pub fn is_empty(&self) -> bool {
        self.ty.is_empty()
    }
}

/// A source position of a node (a function, or an object through its constructor). `line` and
/// `column` are 0-based, as V8 writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    pub script_id: u32,
    pub line: u32,
    pub column: u32,
}

/// One allocation-timeline sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub timestamp_us: u64,
    pub last_assigned_id: u64,
}

/// An allocation-trace function (`trace_function_infos`). `line` and `column` are 1-based; 0 means
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFunction {
    pub function_id: u32,
    pub name: StrId,
    pub script_name: StrId,
    pub script_id: u32,
    pub line: u32,
    pub column: u32,
}

/// A node of the allocation trace tree, flattened in preorder; `parent` is `u32::MAX` for roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceNode {
    pub id: u32,
    pub function_info_index: u32,
    pub count: u32,
    pub size: u64,
    pub parent: u32,
}

/// A loaded heap snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub types: Types,
    pub nodes: Nodes,
    pub edges: Edges,
    pub strings: Strings,
    /// The root node (the first unless the header says otherwise).
    pub root: NodeIdx,
    /// Embedder memory not attached to any node (newest V8), 0 when absent.
    pub extra_native_bytes: u64,
    /// Location records sorted by node ordinal; a later record for the same node wins, as in
    /// DevTools.
    pub locations: Vec<(NodeIdx, Location)>,
    pub samples: Vec<Sample>,
    pub trace_functions: Vec<TraceFunction>,
    pub trace_tree: Vec<TraceNode>,
    /// The number of strings the file itself had; ids at or above it were added by analyses.
    pub file_string_count: u32,
    /// Edges whose `to_node` is outside the node array: left out of `edges`, kept here for the
    /// findings (they are evidence, e.g. of handles to objects the writer did not write).
    pub dangling: Vec<Dangling>,
}

/// An edge the reader left out because its `to_node` points at no node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dangling {
    /// The node that had the edge.
    pub from: NodeIdx,
    /// The edge's index in the file's `edges` array.
    pub edge: u64,
    pub ty: u8,
    pub name_or_index: u32,
    /// The raw `to_node` value.
    pub to_node: u64,
}

impl Snapshot {
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The name of edge `e` as DevTools shows it: the number for element and hidden edges,
    /// the string otherwise.
    pub fn edge_name(&self, e: EdgeIdx) -> std::borrow::Cow<'_, str> {
        match self.edge_name_id(e) {
            Some(id) => self.strings.get(id),
            None => self.edges.name_or_index[e].to_string().into(),
        }
    }

    /// The string that names edge `e`; `None` for element and hidden edges, which are named by
    /// a number.
    pub fn edge_name_id(&self, e: EdgeIdx) -> Option<StrId> {
        (!self.types.edge_name_is_index(self.edges.ty[e])).then(|| self.edges.name(e))
    }

    /// The location of node `n`, if the file recorded one.
    pub fn location(&self, n: NodeIdx) -> Option<Location> {
        let i = self.locations.partition_point(|&(node, _)| node <= n);
        (i > 0 && self.locations[i - 1].0 == n).then(|| self.locations[i - 1].1)
    }
}

/// The parts of the `snapshot` header the reader uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub meta: Meta,
    pub node_count: Option<u64>,
    pub edge_count: Option<u64>,
    #[serde(default)]
    pub root_index: Option<u64>,
    #[serde(default)]
    pub extra_native_bytes: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Meta {
    pub node_fields: Vec<String>,
    pub node_types: Vec<serde_json::Value>,
    pub edge_fields: Vec<String>,
    pub edge_types: Vec<serde_json::Value>,
    #[serde(default)]
    pub location_fields: Vec<String>,
    #[serde(default)]
    pub sample_fields: Vec<String>,
    #[serde(default)]
    pub trace_function_info_fields: Vec<String>,
}
