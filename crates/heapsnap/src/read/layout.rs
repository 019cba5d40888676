//! The layout a snapshot declares in `snapshot.meta`: which field of a node or an edge record
//! is which, by name, and the counts the arrays must have.

use crate::model::{Header, Types};

/// The node fields the reader stores, by their name in `meta.node_fields`; the first five are
/// required.
pub(super) const NODE_FIELDS: &[(&str, NodeField)] = &[
    ("type", NodeField::Type),
    ("name", NodeField::Name),
    ("id", NodeField::Id),
    ("self_size", NodeField::SelfSize),
    ("edge_count", NodeField::EdgeCount),
    ("trace_node_id", NodeField::TraceNodeId),
    ("detachedness", NodeField::Detachedness),
];
pub(super) const REQUIRED_NODE_FIELDS: usize = 5;

/// The edge fields, all required.
pub(super) const EDGE_FIELDS: &[(&str, EdgeField)] = &[
    ("type", EdgeField::Type),
    ("name_or_index", EdgeField::NameOrIndex),
    ("to_node", EdgeField::ToNode),
];

/// Maps each field named in `meta` to its role (`ignored` for fields the reader does not use),
/// and checks that the required ones are there.
/// The first `required` entries of `known` must be present.
pub(super) fn field_roles<T: Copy>(
    fields: &[String],
    what: &str,
    known: &[(&str, T)],
    required: usize,
    ignored: T,
) -> Result<Vec<T>, String> {
    for (name, _) in &known[..required] {
        if !fields.iter().any(|f| f == name) {
            return Err(format!("meta.{what}_fields lacks \"{name}\": {fields:?}"));
        }
    }
    Ok(fields
        .iter()
        .map(|f| {
            known
                .iter()
                .find(|(name, _)| f == name)
                .map_or(ignored, |&(_, role)| role)
        })
        .collect())
}

/// Where each node field goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeField {
    Type,
    Name,
    Id,
    SelfSize,
    EdgeCount,
    TraceNodeId,
    Detachedness,
    Ignored,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum EdgeField {
    Type,
    NameOrIndex,
    ToNode,
    Ignored,
}

/// The layout read from `snapshot.meta`.
pub(super) struct Layout {
    pub(super) header: Header,
    pub(super) types: Types,
    pub(super) node_fields: Vec<NodeField>,
    pub(super) edge_fields: Vec<EdgeField>,
    pub(super) node_count: usize,
    pub(super) edge_count: usize,
}
