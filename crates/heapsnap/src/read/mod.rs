//! The snapshot reader: `.heapsnapshot` / `.heaptimeline` text (plain or gzip) to [`Snapshot`].
//!
//! The text streams through a bounded window ([`stream`]): the file is never held in memory
//! whole. The header is parsed with serde_json, its `meta` into a [`layout::Layout`]; the integer
//! arrays with the parallel scanner in [`ints`], straight into the columns by the [`sinks`]; the
//! strings into one arena. Every field offset and type number comes from `snapshot.meta`, by
//! name.

mod ints;
mod layout;
mod sinks;
mod stream;

use std::io::{Cursor, Read};

use crate::error::{ErrorKind, ReadError};
use crate::model::{
    Dangling, EdgeIdx, Edges, Header, Location, NodeIdx, Nodes, Sample, Snapshot, StrId, Strings,
    TraceFunction, TraceNode, Types,
};
use layout::{
    EDGE_FIELDS, EdgeField, Layout, NODE_FIELDS, NodeField, REQUIRED_NODE_FIELDS, field_roles,
};
use sinks::{EdgeStore, NodeStore};
use stream::Stream;

/// Reads a snapshot from `input`, gzip-compressed or not (told by its magic bytes).
/// `name` is how errors refer to the input, such as its path or `<stdin>`.
pub fn read(input: impl Read + Send, name: &str) -> Result<Snapshot, ReadError> {
    read_with_chunk_size(input, name, stream::CHUNK)
}

/// [`read`] with a chosen read size, so tests can push every token across a buffer boundary.
#[doc(hidden)]
pub fn read_with_chunk_size(
    input: impl Read + Send,
    name: &str,
    chunk: usize,
) -> Result<Snapshot, ReadError> {
    read_inner(input, chunk).map_err(|e| e.with_input(name))
}

/// Reads the snapshot at `path`; `-` means standard input.
pub fn read_path(path: &std::path::Path) -> Result<Snapshot, ReadError> {
    let name = path.display().to_string();
    if name == "-" {
        return read(std::io::stdin(), "<stdin>");
    }
    let file = std::fs::File::open(path)
        .map_err(|e| ReadError::new("", None, ErrorKind::Io(e)).with_input(&name))?;
    read(file, &name)
}

fn read_inner(mut input: impl Read + Send, chunk: usize) -> Result<Snapshot, ReadError> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match input.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::new("", Some(0), ErrorKind::Io(e))),
        }
    }
    let head = Cursor::new(magic[..got].to_vec()).chain(input);
    let src: Box<dyn Read + Send> = if magic[..got] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(1 << 20, head),
        ))
    } else {
        Box::new(head)
    };
    Parser::default().run(&mut Stream::new(src, chunk))
}

#[derive(Default)]
struct Parser {
    layout: Option<Layout>,
    nodes: Option<Nodes>,
    edges: Option<Edges>,
    strings: Option<Strings>,
    locations: Vec<u64>,
    samples: Vec<u64>,
    trace_function_infos: Vec<u64>,
    trace_tree: Vec<TraceNode>,
    dangling: Vec<(usize, u64)>,
}

impl Parser {
    fn run(mut self, s: &mut Stream<'_>) -> Result<Snapshot, ReadError> {
        match s.peek()? {
            Some(b'{') => s.pos += 1,
            Some(b) => {
                return Err(s.err(ErrorKind::NotJson {
                    expected: "'{' (a heap snapshot is one JSON object)",
                    found: stream::describe(b),
                }));
            }
            None => {
                return Err(s.err(ErrorKind::Truncated(
                    "before anything was read (the input is empty)",
                )));
            }
        }
        let mut key = Vec::new();
        loop {
            s.section = "";
            if s.peek()? == Some(b'}') {
                break;
            }
            key.clear();
            s.string_into(&mut key)?;
            s.expect(b':', "':' after a key")?;
            match key.as_slice() {
                b"snapshot" => {
                    s.section = "snapshot";
                    self.header(s)?;
                }
                b"nodes" => {
                    s.section = "nodes";
                    let layout = self.layout(s)?;
                    let mut store = NodeStore::new(layout).map_err(|k| s.err(k))?;
                    let stored = ints::read_array(s, &store.sink(layout))?;
                    self.nodes = Some(store.finish(s, layout, stored)?);
                }
                b"edges" => {
                    s.section = "edges";
                    let layout = self.layout(s)?;
                    let mut store = EdgeStore::new(layout).map_err(|k| s.err(k))?;
                    let sink = store.sink(layout);
                    let stored = ints::read_array(s, &sink)?;
                    let dangling = sink.into_dangling();
                    self.edges = Some(store.finish(s, layout, stored)?);
                    self.dangling = dangling;
                }
                b"strings" => {
                    s.section = "strings";
                    let mut strings = read_strings(s)?;
                    strings.shrink_to_fit();
                    self.strings = Some(strings);
                }
                b"locations" => {
                    s.section = "locations";
                    self.locations = ints::read_list(s)?;
                }
                b"samples" => {
                    s.section = "samples";
                    self.samples = ints::read_list(s)?;
                }
                b"trace_function_infos" => {
                    s.section = "trace_function_infos";
                    self.trace_function_infos = ints::read_list(s)?;
                }
                b"trace_tree" => {
                    s.section = "trace_tree";
                    self.trace_tree = read_trace_tree(s)?;
                }
                _ => s.raw_value(None)?,
            }
            s.section = "";
            match s.peek()? {
                Some(b',') => s.pos += 1,
                Some(b'}') => {}
                Some(b) => {
                    return Err(s.err(ErrorKind::NotJson {
                        expected: "',' or '}' after a top-level value",
                        found: stream::describe(b),
                    }));
                }
                None => return Err(s.err(ErrorKind::Truncated("before the closing '}'"))),
            }
        }
        self.finish(s)
    }

    fn layout(&self, s: &Stream<'_>) -> Result<&Layout, ReadError> {
        self.layout.as_ref().ok_or_else(|| {
            s.err(ErrorKind::NotSnapshot(format!(
                "\"{}\" comes before the \"snapshot\" header that describes it",
                s.section
            )))
        })
    }

    fn header(&mut self, s: &mut Stream<'_>) -> Result<(), ReadError> {
        let at = s.offset();
        let mut raw = Vec::new();
        s.raw_value(Some(&mut raw))?;
        let header: Header = serde_json::from_slice(&raw).map_err(|e| {
            ReadError::new(
                "snapshot",
                Some(at),
                ErrorKind::NotSnapshot(format!("bad header: {e}")),
            )
        })?;
        let layout_err = |m: String| ReadError::new("snapshot", Some(at), ErrorKind::Layout(m));
        let meta = &header.meta;
        let type_list = |types: &[serde_json::Value], fields: &[String], what: &str| {
            let i = fields
                .iter()
                .position(|f| f == "type")
                .ok_or_else(|| layout_err(format!("meta.{what}_fields has no \"type\" field")))?;
            types
                .get(i)
                .and_then(|v| v.as_array())
                .and_then(|a| {
                    a.iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .filter(|names| names.len() < usize::from(Types::ABSENT))
                .ok_or_else(|| {
                    layout_err(format!(
                        "meta.{what}_types[{i}] is not a list of type names"
                    ))
                })
        };
        let types = Types::new(
            type_list(&meta.node_types, &meta.node_fields, "node")?,
            type_list(&meta.edge_types, &meta.edge_fields, "edge")?,
        );
        let node_fields = field_roles(
            &meta.node_fields,
            "node",
            NODE_FIELDS,
            REQUIRED_NODE_FIELDS,
            NodeField::Ignored,
        )
        .map_err(layout_err)?;
        let edge_fields = field_roles(
            &meta.edge_fields,
            "edge",
            EDGE_FIELDS,
            EDGE_FIELDS.len(),
            EdgeField::Ignored,
        )
        .map_err(layout_err)?;
        let count = |v: Option<u64>, what: &str| -> Result<usize, ReadError> {
            let v = v.ok_or_else(|| layout_err(format!("the header has no {what}")))?;
            u32::try_from(v).map(|v| v as usize).map_err(|_| {
                layout_err(format!(
                    "{what} {v} is more than leakhound supports (2^32 - 1)"
                ))
            })
        };
        self.layout = Some(Layout {
            node_count: count(header.node_count, "node_count")?,
            edge_count: count(header.edge_count, "edge_count")?,
            types,
            node_fields,
            edge_fields,
            header,
        });
        Ok(())
    }

    fn finish(self, s: &mut Stream<'_>) -> Result<Snapshot, ReadError> {
        let end = s.offset();
        let err = |section: &str, kind: ErrorKind| ReadError::new(section, Some(end), kind);
        let layout = self.layout.ok_or_else(|| {
            err(
                "",
                ErrorKind::NotSnapshot("it has no \"snapshot\" header".into()),
            )
        })?;
        let missing = |what: &'static str| {
            err(
                what,
                ErrorKind::NotSnapshot(format!("it has no \"{what}\" section")),
            )
        };
        let mut nodes = match self.nodes {
            Some(n) => n,
            None if layout.node_count == 0 => Nodes {
                first_edge: vec![EdgeIdx(0)].into(),
                ..Nodes::default()
            },
            None => return Err(missing("nodes")),
        };
        let mut edges = match self.edges {
            Some(e) => e,
            None if layout.edge_count == 0 => Edges::default(),
            None => return Err(missing("edges")),
        };
        let strings = self.strings.ok_or_else(|| missing("strings"))?;
        let n = nodes.len();
        let node_fields = layout.node_fields.len() as u64;

        // The sum of the nodes' edge counts must cover the edges exactly.
        let edge_total = u64::from(nodes.first_edge.last().map_or(0, |e| e.0));
        if edge_total != edges.len() as u64 {
            return Err(err(
                "edges",
                ErrorKind::Invalid(format!(
                    "the nodes' edge_count fields add up to {edge_total} edges, but \"edges\" has {}",
                    edges.len()
                )),
            ));
        }
        check_string_ids(&nodes, &edges, &layout.types, strings.len())?;

        let root = match layout.header.root_index {
            None | Some(0) => NodeIdx(0),
            Some(i)
                if i % node_fields == 0
                    && (i / node_fields == 0 || i / node_fields + 1 == n as u64) =>
            {
                NodeIdx((i / node_fields) as u32)
            }
            Some(i) => {
                return Err(err(
                    "snapshot",
                    ErrorKind::Invalid(format!(
                        "root_index {i} must be the first or last node's index (0 or {})",
                        (n as u64).saturating_sub(1) * node_fields
                    )),
                ));
            }
        };
        if n == 0 {
            return Err(err(
                "nodes",
                ErrorKind::Invalid("the snapshot has no nodes (not even the root)".into()),
            ));
        }

        let meta = &layout.header.meta;
        // Fields found once, not per record: a closure's every instance has a location.
        let at = |name: &str| meta.location_fields.iter().position(|f| f == name);
        let (object, script, line, column) = (
            at("object_index"),
            at("script_id"),
            at("line"),
            at("column"),
        );
        let locations = records(&self.locations, &meta.location_fields, "locations")?
            .map(|r| {
                let index = r.at(object);
                if index % node_fields != 0 || index / node_fields >= n as u64 {
                    return Err(err(
                        "locations",
                        ErrorKind::Invalid(format!(
                            "object_index {index} is not the index of a node"
                        )),
                    ));
                }
                let location = Location {
                    script_id: r.at32(script)?,
                    line: r.at32(line)?,
                    column: r.at32(column)?,
                };
                Ok((NodeIdx((index / node_fields) as u32), location))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let samples = records(&self.samples, &meta.sample_fields, "samples")?
            .map(|r| Sample {
                timestamp_us: r.get("timestamp_us"),
                last_assigned_id: r.get("last_assigned_id"),
            })
            .collect();
        let trace_functions = records(
            &self.trace_function_infos,
            &meta.trace_function_info_fields,
            "trace_function_infos",
        )?
        .map(|r| {
            let string = |field: &str| -> Result<StrId, ReadError> {
                let id = StrId(r.get32(field)?);
                if id.index() >= strings.len() {
                    return Err(err(
                        "trace_function_infos",
                        ErrorKind::Invalid(format!(
                            "{field} index {id} is past the end of the {} strings",
                            strings.len()
                        )),
                    ));
                }
                Ok(id)
            };
            Ok(TraceFunction {
                function_id: r.get32("function_id")?,
                name: string("name")?,
                script_name: string("script_name")?,
                script_id: r.get32("script_id")?,
                line: r.get32("line")?,
                column: r.get32("column")?,
            })
        })
        .collect::<Result<Vec<_>, ReadError>>()?;

        let dangling = drop_dangling(&mut nodes, &mut edges, &self.dangling);

        Ok(Snapshot {
            dangling,
            file_string_count: strings.len() as u32,
            types: layout.types,
            nodes,
            edges,
            strings,
            root,
            extra_native_bytes: layout.header.extra_native_bytes.unwrap_or(0),
            locations: last_per_node(locations),
            samples,
            trace_functions,
            trace_tree: self.trace_tree,
        })
    }
}

/// Removes the edges that point outside the node array (sorted edge indexes in `bad`) and
/// describes them.
fn drop_dangling(nodes: &mut Nodes, edges: &mut Edges, bad: &[(usize, u64)]) -> Vec<Dangling> {
    if bad.is_empty() {
        return Vec::new();
    }
    let dangling: Vec<Dangling> = bad
        .iter()
        .map(|&(e, to_node)| Dangling {
            from: NodeIdx(nodes.first_edge.partition_point(|&f| f.index() <= e).0 - 1),
            edge: e as u64,
            ty: edges.ty.raw[e],
            name_or_index: edges.name_or_index.raw[e],
            to_node,
        })
        .collect();
    let mut next_bad = bad.iter().map(|&(e, _)| e).peekable();
    let mut kept = 0;
    for e in 0..edges.ty.len() {
        if next_bad.peek() == Some(&e) {
            next_bad.next();
            continue;
        }
        edges.ty.raw[kept] = edges.ty.raw[e];
        edges.name_or_index.raw[kept] = edges.name_or_index.raw[e];
        edges.to.raw[kept] = edges.to.raw[e];
        kept += 1;
    }
    edges.ty.truncate(kept);
    edges.name_or_index.truncate(kept);
    edges.to.truncate(kept);
    // Each node loses the dangling edges before its end.
    let mut removed = 0;
    let mut bad = dangling.iter().map(|d| d.edge as usize).peekable();
    for f in nodes.first_edge.iter_mut() {
        while bad.peek().is_some_and(|&e| e < f.index()) {
            bad.next();
            removed += 1;
        }
        f.0 -= removed;
    }
    dangling
}

/// Sorts location records by node, keeping the last record of a node, as DevTools' map does.
fn last_per_node(mut locations: Vec<(NodeIdx, Location)>) -> Vec<(NodeIdx, Location)> {
    // V8 writes them in node order, one per node: nothing to do then.
    if locations.is_sorted_by(|a, b| a.0 < b.0) {
        return locations;
    }
    locations.reverse();
    locations.sort_by_key(|&(n, _)| n); // Stable: the file's last record comes first.
    locations.dedup_by_key(|&mut (n, _)| n);
    locations
}

/// Splits a flat array into records of the fields named in `fields`.
fn records<'a>(
    values: &'a [u64],
    fields: &'a [String],
    section: &'static str,
) -> Result<impl Iterator<Item = Record<'a>>, ReadError> {
    let width = fields.len().max(1);
    if !values.is_empty() && (fields.is_empty() || !values.len().is_multiple_of(width)) {
        return Err(ReadError::new(
            section,
            None,
            ErrorKind::Invalid(format!(
                "{} numbers do not split into records of the {} fields named in meta ({fields:?})",
                values.len(),
                fields.len()
            )),
        ));
    }
    Ok(values.chunks(width).map(move |values| Record {
        values,
        fields,
        section,
    }))
}

struct Record<'a> {
    values: &'a [u64],
    fields: &'a [String],
    section: &'static str,
}

impl Record<'_> {
    /// A field by name, 0 when the layout lacks it.
    fn get(&self, name: &str) -> u64 {
        self.at(self.fields.iter().position(|f| f == name))
    }

    fn get32(&self, name: &str) -> Result<u32, ReadError> {
        self.at32(self.fields.iter().position(|f| f == name))
    }

    /// The field at index `i` of the layout, 0 when the layout lacks it (`None`).
    fn at(&self, i: Option<usize>) -> u64 {
        i.map_or(0, |i| self.values[i])
    }

    fn at32(&self, i: Option<usize>) -> Result<u32, ReadError> {
        let v = self.at(i);
        u32::try_from(v)
            .map_err(|_| ReadError::new(self.section, None, ErrorKind::NumberTooLarge(v)))
    }
}

/// Checks that every node name and every string-named edge points into the strings.
fn check_string_ids(
    nodes: &Nodes,
    edges: &Edges,
    types: &Types,
    count: usize,
) -> Result<(), ReadError> {
    use rayon::prelude::*;
    let bad = |section: &str, m: String| Err(ReadError::new(section, None, ErrorKind::Invalid(m)));
    if let Some(i) = nodes
        .name
        .raw
        .par_iter()
        .position_any(|s| s.index() >= count)
    {
        let i = NodeIdx::from(i);
        return bad(
            "nodes",
            format!(
                "node {i} (id {}) has name index {}, past the end of the {count} strings",
                nodes.id[i], nodes.name[i]
            ),
        );
    }
    let mut by_index = [false; 256];
    for (ty, slot) in by_index.iter_mut().enumerate() {
        *slot = types.edge_name_is_index(ty as u8);
    }
    if let Some(i) = (0..edges.len()).into_par_iter().position_any(|e| {
        !by_index[edges.ty.raw[e] as usize] && edges.name_or_index.raw[e] as usize >= count
    }) {
        let i = EdgeIdx::from(i);
        return bad(
            "edges",
            format!(
                "edge {i} ({}) has name index {}, past the end of the {count} strings",
                types.edge_names[edges.ty[i] as usize], edges.name_or_index[i]
            ),
        );
    }
    Ok(())
}

/// Reads the `strings` array into one arena.
fn read_strings(s: &mut Stream<'_>) -> Result<Strings, ReadError> {
    s.expect(b'[', "'[' opening the strings")?;
    let mut strings = Strings::default();
    if s.peek()? == Some(b']') {
        s.pos += 1;
        return Ok(strings);
    }
    loop {
        s.string_into(strings.arena_mut())?;
        strings.seal();
        match s.peek()? {
            Some(b',') => s.pos += 1,
            Some(b']') => {
                s.pos += 1;
                return Ok(strings);
            }
            Some(b) => {
                return Err(s.err(ErrorKind::NotJson {
                    expected: "',' or ']' after a string",
                    found: stream::describe(b),
                }));
            }
            None => return Err(s.err(ErrorKind::Truncated("before the strings' closing ']'"))),
        }
    }
}

/// Reads the nested `trace_tree`: `[id, function_info_index, count, size, [children…]], …`.
fn read_trace_tree(s: &mut Stream<'_>) -> Result<Vec<TraceNode>, ReadError> {
    const NONE: u32 = u32::MAX;
    let mut tree = Vec::new();
    let mut open = vec![NONE];
    s.expect(b'[', "'[' opening the trace tree")?;
    let mut first = true;
    loop {
        if s.peek()? == Some(b']') {
            s.pos += 1;
            open.pop();
            if open.is_empty() {
                return Ok(tree);
            }
            first = false;
            continue;
        }
        if !first {
            s.expect(b',', "',' between trace nodes")?;
        }
        let field = |s: &mut Stream<'_>| -> Result<u64, ReadError> {
            let v = s.number()?;
            s.expect(b',', "',' between trace node fields")?;
            Ok(v)
        };
        let id = field(s)?;
        let function_info_index = field(s)?;
        let count = field(s)?;
        let size = field(s)?;
        s.expect(b'[', "'[' opening a trace node's children")?;
        let fit = |v: u64| u32::try_from(v).map_err(|_| s.err(ErrorKind::NumberTooLarge(v)));
        tree.push(TraceNode {
            id: fit(id)?,
            function_info_index: fit(function_info_index)?,
            count: fit(count)?,
            size,
            parent: *open.last().unwrap_or(&NONE),
        });
        open.push((tree.len() - 1) as u32);
        first = true;
    }
}
