//! The sinks of the parallel integer scanner ([`super::ints`]): the `nodes` and `edges`
//! numbers stored straight into their columns, with the checks each field needs.

use crate::error::{ErrorKind, ReadError};
use crate::model::{EdgeIdx, Edges, NodeId, NodeIdx, Nodes, StrId};

use super::ints::{self, Column, zeroed};
use super::layout::{EdgeField, Layout, NodeField};
use super::stream::Stream;

fn to_u32(v: u64) -> Result<u32, ErrorKind> {
    u32::try_from(v).map_err(|_| ErrorKind::NumberTooLarge(v))
}

/// The `nodes` columns while they are filled; [`NodeStore::finish`] hands them over.
pub(super) struct NodeStore {
    nodes: Nodes,
    /// `edge_count` of node i at i + 1; prefix-summed into `first_edge` by `finish`.
    edge_counts: Vec<EdgeIdx>,
    trace: Vec<u32>,
    detachedness: Vec<u8>,
}

/// Stores the `nodes` numbers into the columns of a [`NodeStore`], which it borrows: the
/// compiler keeps the columns untouched while threads write into them.
pub(super) struct NodeSink<'a> {
    fields: Vec<NodeField>,
    type_count: u64,
    node_count: usize,
    cols: NodeColumns<'a>,
}

struct NodeColumns<'a> {
    ty: Column<'a, u8>,
    name: Column<'a, StrId>,
    id: Column<'a, NodeId>,
    self_size: Column<'a, u32>,
    edge_count: Column<'a, EdgeIdx>,
    trace: Column<'a, u32>,
    detachedness: Column<'a, u8>,
}

impl NodeStore {
    pub(super) fn new(layout: &Layout) -> Result<NodeStore, ErrorKind> {
        let n = layout.node_count;
        let has = |f| layout.node_fields.contains(&f);
        let column = |present: bool| zeroed::<u32>(if present { n } else { 0 }, "nodes");
        Ok(NodeStore {
            nodes: Nodes {
                ty: zeroed(n, "nodes")?.into(),
                name: zeroed(n, "nodes")?.into(),
                id: zeroed(n, "nodes")?.into(),
                self_size: column(true)?.into(),
                first_edge: Vec::new().into(),
                trace_node_id: None,
                detachedness: None,
            },
            edge_counts: zeroed(n + 1, "nodes")?,
            trace: column(has(NodeField::TraceNodeId))?,
            detachedness: zeroed(if has(NodeField::Detachedness) { n } else { 0 }, "nodes")?,
        })
    }

    /// The sink that fills these columns.
    pub(super) fn sink(&mut self, layout: &Layout) -> NodeSink<'_> {
        NodeSink {
            fields: layout.node_fields.clone(),
            type_count: layout.types.node_names.len() as u64,
            node_count: layout.node_count,
            cols: NodeColumns {
                ty: Column::new(&mut self.nodes.ty.raw),
                name: Column::new(&mut self.nodes.name.raw),
                id: Column::new(&mut self.nodes.id.raw),
                self_size: Column::new(&mut self.nodes.self_size.raw),
                edge_count: Column::new(&mut self.edge_counts[1..]),
                trace: Column::new(&mut self.trace),
                detachedness: Column::new(&mut self.detachedness),
            },
        }
    }

    pub(super) fn finish(
        self,
        s: &Stream<'_>,
        layout: &Layout,
        stored: usize,
    ) -> Result<Nodes, ReadError> {
        check_count(
            s,
            "node",
            stored,
            layout.node_count,
            layout.node_fields.len(),
        )?;
        let NodeStore {
            mut nodes,
            mut edge_counts,
            trace,
            detachedness,
        } = self;
        let mut total: u64 = 0;
        for c in edge_counts.iter_mut() {
            total += u64::from(c.0);
            c.0 = u32::try_from(total).map_err(|_| {
                s.err(ErrorKind::Invalid(format!(
                    "the nodes' edge counts add up to more than 2^32 ({total})"
                )))
            })?;
        }
        nodes.first_edge = edge_counts.into();
        // Without allocation tracking every trace_node_id is 0: keep nothing then.
        nodes.trace_node_id = trace.iter().any(|&t| t != 0).then(|| trace.into());
        nodes.detachedness = layout
            .node_fields
            .contains(&NodeField::Detachedness)
            .then(|| detachedness.into());
        Ok(nodes)
    }
}

impl ints::Sink for NodeSink<'_> {
    fn capacity(&self) -> usize {
        self.node_count * self.fields.len()
    }

    fn store(&self, first: usize, text: &[u8]) -> Result<(), (usize, ErrorKind)> {
        by_field(&self.fields, first, text, |field, node, values| {
            let c = &self.cols;
            // SAFETY (each `set` below): value j is field `field` of node `node + j`, and
            // `read_array` gives each thread a distinct range of numbers, so no two threads
            // write the same element.
            match field {
                NodeField::Type => each(values, |j, v| {
                    if v >= self.type_count {
                        return Err(bad_type(v, self.type_count, "node"));
                    }
                    unsafe { c.ty.set(node + j, v as u8) };
                    Ok(())
                }),
                NodeField::Name => unsafe { store_u32(values, &c.name, node, StrId) },
                NodeField::Id => unsafe { store_u32(values, &c.id, node, NodeId) },
                NodeField::SelfSize => unsafe { store_u32(values, &c.self_size, node, |v| v) },
                NodeField::EdgeCount => unsafe { store_u32(values, &c.edge_count, node, EdgeIdx) },
                NodeField::TraceNodeId => unsafe { store_u32(values, &c.trace, node, |v| v) },
                NodeField::Detachedness => each(values, |j, v| {
                    unsafe { c.detachedness.set(node + j, v.min(3) as u8) };
                    Ok(())
                }),
                NodeField::Ignored => Ok(()),
            }
        })
    }
}

/// Stores a block of an array of records `fields.len()` numbers wide, whose first number is
/// number `first` of the array, a field at a time: `store(field, record, values)` gets the
/// values of one field in a batch, from record `record` on, and fails with the index of the
/// value it refuses. Errors come back in the text's order.
fn by_field<F: Copy>(
    fields: &[F],
    first: usize,
    text: &[u8],
    store: impl Fn(
        F,
        usize,
        std::iter::StepBy<std::slice::Iter<'_, u64>>,
    ) -> Result<(), (usize, ErrorKind)>,
) -> Result<(), (usize, ErrorKind)> {
    let width = fields.len();
    let mut next = first;
    ints::batches(text, |batch| {
        let mut bad: Option<(usize, ErrorKind)> = None;
        for (f, &field) in fields.iter().enumerate() {
            // The batch's first value of field f, and its record.
            let k0 = (f + width - next % width) % width;
            let Some(values) = batch.get(k0..) else {
                continue;
            };
            if let Err((j, kind)) = store(field, (next + k0) / width, values.iter().step_by(width))
            {
                let k = k0 + j * width;
                if bad.as_ref().is_none_or(|&(b, _)| k < b) {
                    bad = Some((k, kind));
                }
            }
        }
        next += batch.len();
        bad.map_or(Ok(()), Err)
    })
}

/// Checks that an array held the `count × fields` numbers the header announces (`what`: `node`
/// or `edge`).
fn check_count(
    s: &Stream<'_>,
    what: &str,
    stored: usize,
    count: usize,
    fields: usize,
) -> Result<(), ReadError> {
    let expected = count * fields;
    if stored == expected {
        return Ok(());
    }
    Err(s.err(ErrorKind::Invalid(format!(
        "\"{what}s\" has {stored} numbers, but {what}_count × {what} fields is {count} × {fields} = {expected}"
    ))))
}

/// Calls `f` with each value and its index, failing with the index of the first it refuses.
#[inline(always)]
fn each<'a>(
    values: impl Iterator<Item = &'a u64>,
    mut f: impl FnMut(usize, u64) -> Result<(), ErrorKind>,
) -> Result<(), (usize, ErrorKind)> {
    for (j, &v) in values.enumerate() {
        f(j, v).map_err(|kind| (j, kind))?;
    }
    Ok(())
}

/// Stores `values`, which must fit in 32 bits, into `column` from index `at` on, each made a
/// `T` by `wrap` (the column's handle type).
///
/// # Safety
/// As [`Column::set`], for every index written: no other thread writes them at the same time.
unsafe fn store_u32<'a, T: Copy>(
    values: impl Iterator<Item = &'a u64>,
    column: &Column<'_, T>,
    at: usize,
    wrap: impl Fn(u32) -> T,
) -> Result<(), (usize, ErrorKind)> {
    each(values, |j, v| {
        // SAFETY: the caller's contract.
        unsafe { column.set(at + j, wrap(to_u32(v)?)) };
        Ok(())
    })
}

#[cold]
fn bad_type(v: u64, count: u64, what: &str) -> ErrorKind {
    ErrorKind::Invalid(format!(
        "{what} type {v} is not one of the {count} types in meta.{what}_types"
    ))
}

/// The `edges` columns while they are filled.
pub(super) struct EdgeStore {
    edges: Edges,
}

/// Stores the `edges` numbers into the columns of an [`EdgeStore`], turning `to_node` into an
/// ordinal.
pub(super) struct EdgeSink<'a> {
    fields: Vec<EdgeField>,
    node_fields: u64,
    node_count: u64,
    edge_count: usize,
    type_count: u64,
    cols: (Column<'a, u8>, Column<'a, u32>, Column<'a, NodeIdx>),
    /// (edge index, raw to_node) of edges pointing outside the node array. Rare, so a lock is
    /// cheap; they are dropped from the edges and reported (see `Snapshot::dangling`).
    dangling: std::sync::Mutex<Vec<(usize, u64)>>,
}

impl EdgeStore {
    pub(super) fn new(layout: &Layout) -> Result<EdgeStore, ErrorKind> {
        let m = layout.edge_count;
        Ok(EdgeStore {
            edges: Edges {
                ty: zeroed(m, "edges")?.into(),
                name_or_index: zeroed(m, "edges")?.into(),
                to: zeroed(m, "edges")?.into(),
            },
        })
    }

    /// The sink that fills these columns.
    pub(super) fn sink(&mut self, layout: &Layout) -> EdgeSink<'_> {
        EdgeSink {
            fields: layout.edge_fields.clone(),
            node_fields: layout.node_fields.len() as u64,
            node_count: layout.node_count as u64,
            edge_count: layout.edge_count,
            type_count: layout.types.edge_names.len() as u64,
            cols: (
                Column::new(&mut self.edges.ty.raw),
                Column::new(&mut self.edges.name_or_index.raw),
                Column::new(&mut self.edges.to.raw),
            ),
            dangling: std::sync::Mutex::default(),
        }
    }

    pub(super) fn finish(
        self,
        s: &Stream<'_>,
        layout: &Layout,
        stored: usize,
    ) -> Result<Edges, ReadError> {
        check_count(
            s,
            "edge",
            stored,
            layout.edge_count,
            layout.edge_fields.len(),
        )?;
        Ok(self.edges)
    }
}

impl EdgeSink<'_> {
    /// (edge index, raw to_node) of the edges that point outside the node array, in order.
    pub(super) fn into_dangling(self) -> Vec<(usize, u64)> {
        let mut dangling = self
            .dangling
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        dangling.sort_unstable();
        dangling
    }
}

impl ints::Sink for EdgeSink<'_> {
    fn capacity(&self) -> usize {
        self.edge_count * self.fields.len()
    }

    fn store(&self, first: usize, text: &[u8]) -> Result<(), (usize, ErrorKind)> {
        let (ty, name, to) = &self.cols;
        by_field(&self.fields, first, text, |field, edge, values| {
            // SAFETY (each `set` below): as for `NodeSink::store`: distinct indexes per thread,
            // bounded by capacity.
            match field {
                EdgeField::Type => each(values, |j, v| {
                    if v >= self.type_count {
                        return Err(bad_type(v, self.type_count, "edge"));
                    }
                    unsafe { ty.set(edge + j, v as u8) };
                    Ok(())
                }),
                EdgeField::NameOrIndex => unsafe { store_u32(values, name, edge, |v| v) },
                EdgeField::ToNode => each(values, |j, v| {
                    if v % self.node_fields != 0 || v / self.node_fields >= self.node_count {
                        // Not an error: a finding (a writer's handles to objects it did
                        // not write, as in a real node-odbc snapshot).
                        let mut list = self.dangling.lock().unwrap_or_else(|e| e.into_inner());
                        list.push((edge + j, v));
                        unsafe { to.set(edge + j, NodeIdx(0)) };
                    } else {
                        unsafe { to.set(edge + j, NodeIdx((v / self.node_fields) as u32)) };
                    }
                    Ok(())
                }),
                EdgeField::Ignored => Ok(()),
            }
        })
    }
}
