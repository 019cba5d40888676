//! Builds `.heapsnapshot` text from a tiny graph language, for tests, fuzzing and examples.
//!
//! ```text
//! root: synthetic          # the first node is the root; `label: type [size] [name="…"] [id=N]`
//!                          # [at=script,line,column] [detachedness=N]
//! A: object 2
//! B: object 3 name="Foo"
//! root -shortcut-> A       # `from -type-> to` or `from -type:name-> to`
//! A -property:x-> B
//! ```
//!
//! Node names default to their label; ids default to `2 × ordinal + 1`. Edge names default to a
//! number for element and hidden edges and to the target's label otherwise.

use std::fmt::Write;

/// V8's node and edge types, in V8's order.
pub const NODE_TYPES: [&str; 15] = [
    "hidden",
    "array",
    "string",
    "object",
    "code",
    "closure",
    "regexp",
    "number",
    "native",
    "synthetic",
    "concatenated string",
    "sliced string",
    "symbol",
    "bigint",
    "object shape",
];
pub const EDGE_TYPES: [&str; 7] = [
    "context", "element", "property", "internal", "hidden", "shortcut", "weak",
];

/// Which header layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Node 20 era: 7 node fields, 4 location fields.
    Classic,
    /// Newest V8: 6 node fields, `extra_native_bytes` in the header.
    Newest { extra_native_bytes: u64 },
}

#[derive(Debug, Clone)]
struct Node {
    label: String,
    ty: usize,
    name: String,
    id: u32,
    size: u32,
    detachedness: u32,
}

#[derive(Debug, Clone)]
struct Edge {
    from: usize,
    ty: usize,
    name: String,
    to: usize,
}

/// A graph parsed from the language above.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    locations: Vec<(usize, [u32; 3])>,
}

impl Graph {
    /// Parses the graph language; panics with the line on a mistake (it is for tests).
    pub fn parse(text: &str) -> Graph {
        let mut g = Graph::default();
        for raw in text.split(['\n', ';']) {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some((from, rest)) = line.split_once(" -") {
                let (spec, to) = rest
                    .rsplit_once("-> ")
                    .unwrap_or_else(|| panic!("bad edge line: {line}"));
                let (ty, name) = match spec.split_once(':') {
                    Some((ty, name)) => (ty, Some(name.to_owned())),
                    None => (spec, None),
                };
                let ty = EDGE_TYPES
                    .iter()
                    .position(|t| *t == ty)
                    .unwrap_or_else(|| panic!("bad edge type: {line}"));
                let (from, to) = (g.node(from.trim(), line), g.node(to.trim(), line));
                let name = name.unwrap_or_else(|| {
                    if EDGE_TYPES[ty] == "element" || EDGE_TYPES[ty] == "hidden" {
                        g.edges
                            .iter()
                            .filter(|e| e.from == from)
                            .count()
                            .to_string()
                    } else {
                        g.nodes[to].label.clone()
                    }
                });
                g.edges.push(Edge { from, ty, name, to });
            } else {
                let (label, rest) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad node line: {line}"));
                let mut words = rest.trim().splitn(2, ' ');
                let mut ty_words = words.next().unwrap_or("").to_owned();
                let mut rest = words.next().unwrap_or("").trim().to_owned();
                // Two-word types.
                for two in ["concatenated string", "sliced string", "object shape"] {
                    let first = two.split(' ').next().unwrap();
                    let second = two.split(' ').nth(1).unwrap();
                    if ty_words == first && rest.starts_with(second) {
                        ty_words = two.to_owned();
                        rest = rest[second.len()..].trim().to_owned();
                    }
                }
                let ty = NODE_TYPES
                    .iter()
                    .position(|t| *t == ty_words)
                    .unwrap_or_else(|| panic!("bad node type: {line}"));
                let label = label.trim().to_owned();
                let ordinal = g.nodes.len() as u32;
                let mut node = Node {
                    name: label.clone(),
                    label,
                    ty,
                    id: 2 * ordinal + 1,
                    size: 0,
                    detachedness: 0,
                };
                let mut rest = rest.as_str();
                while !rest.is_empty() {
                    if let Some(r) = rest.strip_prefix("name=\"") {
                        // Up to the first quote not escaped with a backslash.
                        let mut name = String::new();
                        let mut chars = r.char_indices();
                        let end = loop {
                            match chars.next() {
                                Some((_, '\\')) => name.extend(chars.next().map(|(_, c)| c)),
                                Some((i, '"')) => break i,
                                Some((_, c)) => name.push(c),
                                None => panic!("unterminated name: {line}"),
                            }
                        };
                        node.name = name;
                        rest = r[end + 1..].trim_start();
                        continue;
                    }
                    let (word, r) = rest.split_once(' ').unwrap_or((rest, ""));
                    rest = r.trim_start();
                    if let Some(id) = word.strip_prefix("id=") {
                        node.id = id.parse().unwrap_or_else(|_| panic!("bad id: {line}"));
                    } else if let Some(d) = word.strip_prefix("detachedness=") {
                        node.detachedness = d
                            .parse()
                            .unwrap_or_else(|_| panic!("bad detachedness: {line}"));
                    } else if let Some(loc) = word.strip_prefix("at=") {
                        let parts: Vec<u32> = loc.split(',').map(|p| p.parse().unwrap()).collect();
                        g.locations
                            .push((ordinal as usize, [parts[0], parts[1], parts[2]]));
                    } else {
                        node.size = word
                            .parse()
                            .unwrap_or_else(|_| panic!("bad size {word:?}: {line}"));
                    }
                }
                g.nodes.push(node);
            }
        }
        g
    }

    fn node(&self, label: &str, line: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.label == label)
            .unwrap_or_else(|| panic!("unknown node {label:?} in: {line}"))
    }

    /// Writes the graph as a `.heapsnapshot`. Edges are grouped by source, keeping their order.
    pub fn to_json(&self, format: Format) -> String {
        let mut strings: Vec<String> = vec!["<dummy>".into()];
        let mut string_id = |s: &str| -> usize {
            match strings.iter().position(|x| x == s) {
                Some(i) => i,
                None => {
                    strings.push(s.to_owned());
                    strings.len() - 1
                }
            }
        };
        let classic = format == Format::Classic;
        let fields = if classic { 7 } else { 6 };
        let mut nodes = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let edge_count = self.edges.iter().filter(|e| e.from == i).count();
            let sep = if i == 0 { "" } else { ",\n" };
            let name = string_id(&n.name);
            let trace = if classic { ",0" } else { "" };
            let _ = write!(
                nodes,
                "{sep}{},{name},{},{},{edge_count}{trace},{}",
                n.ty, n.id, n.size, n.detachedness
            );
        }
        let mut edges = String::new();
        for from in 0..self.nodes.len() {
            for e in self.edges.iter().filter(|e| e.from == from) {
                let sep = if edges.is_empty() { "" } else { ",\n" };
                let name = if EDGE_TYPES[e.ty] == "element" || EDGE_TYPES[e.ty] == "hidden" {
                    e.name
                        .parse()
                        .unwrap_or_else(|_| panic!("element and hidden edges need numeric names"))
                } else {
                    string_id(&e.name)
                };
                let _ = write!(edges, "{sep}{},{name},{}", e.ty, e.to * fields);
            }
        }
        let locations: Vec<String> = self
            .locations
            .iter()
            .map(|(n, [s, l, c])| {
                if classic {
                    format!("{},{s},{l},{c}", n * fields)
                } else {
                    format!("{},{s},0,{l},{c}", n * fields)
                }
            })
            .collect();
        let node_fields = if classic {
            r#""type","name","id","self_size","edge_count","trace_node_id","detachedness""#
        } else {
            r#""type","name","id","self_size","edge_count","detachedness""#
        };
        let extra_types = if classic {
            r#","string","number","number","number","number","number""#
        } else {
            r#","string","number","number","number","number""#
        };
        let location_fields = if classic {
            r#""object_index","script_id","line","column""#
        } else {
            r#""object_index","script_id","script_object_index","line","column""#
        };
        let extra = match format {
            Format::Classic => String::new(),
            Format::Newest { extra_native_bytes } => {
                format!(r#","extra_native_bytes":{extra_native_bytes}"#)
            }
        };
        let quoted = |list: &[&str]| {
            list.iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(",")
        };
        let strings_json: Vec<String> = strings
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        format!(
            concat!(
                r#"{{"snapshot":{{"meta":{{"node_fields":[{nf}],"node_types":[[{nt}]{xt}],"#,
                r#""edge_fields":["type","name_or_index","to_node"],"edge_types":[[{et}],"string_or_number","node"],"#,
                r#""trace_function_info_fields":["function_id","name","script_name","script_id","line","column"],"#,
                r#""trace_node_fields":["id","function_info_index","count","size","children"],"#,
                r#""sample_fields":["timestamp_us","last_assigned_id"],"location_fields":[{lf}]}},"#,
                r#""node_count":{nc},"edge_count":{ec},"trace_function_count":0{extra}}},"#,
                "\n\"nodes\":[{nodes}],\n\"edges\":[{edges}],\n\"trace_function_infos\":[],\"trace_tree\":[],",
                "\"samples\":[],\n\"locations\":[{locations}],\n\"strings\":[{strings}]}}\n"
            ),
            nf = node_fields,
            nt = quoted(&NODE_TYPES),
            xt = extra_types,
            et = quoted(&EDGE_TYPES),
            lf = location_fields,
            nc = self.nodes.len(),
            ec = self.edges.len(),
            extra = extra,
            nodes = nodes,
            edges = edges,
            locations = locations.join(","),
            strings = strings_json.join(",\n"),
        )
    }
}
