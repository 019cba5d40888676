//! Typed handles into a loaded snapshot, and the columns they index.
//!
//! Every handle is valid only for the snapshot that made it. The file writes node positions,
//! V8's node ids, edge positions and string ids all as plain numbers; as types, a position
//! used as an id (or a node's column indexed by an edge) is a compile error, not a wrong answer.

use typed_index_collections::TiVec;

macro_rules! position {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize,
        )]
        #[serde(transparent)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The position as a `usize`, for arrays that are not typed columns.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        /// Positions fit in `u32`: the reader refuses larger counts.
        impl From<usize> for $name {
            fn from(i: usize) -> $name {
                debug_assert!(u32::try_from(i).is_ok(), "{i} overflows a handle");
                $name(i as u32)
            }
        }

        impl From<$name> for usize {
            fn from(h: $name) -> usize {
                h.0 as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

position!(
    /// A node's position in the snapshot's node array (its ordinal), which indexes every
    /// [`NodeCol`].
    NodeIdx
);
position!(
    /// An edge's position in the snapshot's edge columns ([`EdgeCol`]), in CSR order.
    EdgeIdx
);
position!(
    /// A string id: an index into [`crate::model::Strings`]. Ids below the snapshot's string
    /// count are the file's own strings; analyses append derived names (class names) after them.
    StrId
);

/// V8's id of a node: not a position, but stable across the snapshots of one process, so it
/// is what comparisons match on and what users paste into `show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct NodeId(pub u32);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A column with one value per node.
pub type NodeCol<T> = TiVec<NodeIdx, T>;
/// A column with one value per edge.
pub type EdgeCol<T> = TiVec<EdgeIdx, T>;
