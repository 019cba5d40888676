//! `leakhound retainers` and `leakhound show`: looking around one object.

use std::io::Write;

use anyhow::Context;
use heapsnap::code::Positions;
use heapsnap::graph::{self, Retainers};
use heapsnap::leaks::SourceLocation;
use heapsnap::paths::{Ignore, shortest_paths};
use heapsnap::view::{self, NodeRef, Step, node_ref, path_steps};
use heapsnap::{EdgeIdx, NodeId, NodeIdx, Snapshot};
use serde::Serialize;

use crate::cli::{RetainersArgs, ShowArgs};
use crate::load::{Loaded, load};
use crate::output;

#[derive(Serialize)]
struct RetainersJson<'a> {
    file: &'a str,
    objects: Vec<ObjectPaths>,
}

#[derive(Serialize)]
pub struct ObjectPaths {
    pub object: NodeRef,
    /// Shortest first; each from the root's side to the object.
    pub paths: Vec<Vec<Step>>,
}

pub fn retainers(args: RetainersArgs) -> anyhow::Result<()> {
    let loaded = load(&args.file, args.output.timings)?;
    let index = Retainers::new(&loaded.snapshot);
    let objects = retainer_paths(&loaded, &index, &args)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(
            &mut out,
            &RetainersJson {
                file: &loaded.name,
                objects,
            },
        )?;
        writeln!(out)?;
    } else {
        for o in &objects {
            writeln!(out, "{}", describe(&o.object))?;
            if o.paths.is_empty() {
                writeln!(
                    out,
                    "  no retaining path from the root (only weak or ignored retainers)"
                )?;
            }
            for (i, p) in o.paths.iter().enumerate() {
                writeln!(
                    out,
                    "  {}. ({} steps) {}",
                    i + 1,
                    p.len(),
                    output::path(p, None, None)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// The retaining paths `args` asks for (`args.file` and `args.output` are not used: the
/// snapshot is `loaded`, with its retainer `index`).
pub fn retainer_paths(
    loaded: &Loaded,
    index: &Retainers,
    args: &RetainersArgs,
) -> anyhow::Result<Vec<ObjectPaths>> {
    let (s, a) = (&loaded.snapshot, &loaded.analysis);
    let targets: Vec<NodeIdx> = match (&args.object, &args.class) {
        (Some(object), _) => vec![node_of(s, object, &loaded.name)?],
        (None, Some(class)) => {
            let ids = s.strings.ids_of(class.as_bytes());
            let mut of_class: Vec<NodeIdx> = s
                .nodes
                .all()
                .filter(|&v| ids.contains(&a.class[v]))
                .collect();
            if of_class.is_empty() {
                anyhow::bail!(
                    "{}: no object of class {class:?} (class names are as `leakhound summary` prints them)",
                    loaded.name
                );
            }
            of_class.sort_by_key(|&v| (std::cmp::Reverse(a.retained[v]), v));
            of_class.truncate(args.instances);
            of_class
        }
        (None, None) => anyhow::bail!("name an object (@ID) or a class"),
    };
    let ignore = Ignore {
        edge_names: args.ignore_edge.clone(),
        nodes: args
            .ignore_node
            .iter()
            .map(|n| node_of(s, n, &loaded.name))
            .collect::<anyhow::Result<_>>()?,
    };
    Ok(targets
        .iter()
        .map(|&v| ObjectPaths {
            object: node_ref(s, a, v),
            paths: shortest_paths(s, a, index, v, args.paths, &ignore)
                .iter()
                .map(|p| path_steps(s, a, p))
                .collect(),
        })
        .collect())
}

#[derive(Serialize)]
pub struct ShowJson<'a> {
    #[serde(skip)]
    at: NodeIdx,
    file: &'a str,
    object: NodeRef,
    name: String,
    distance: Option<i32>,
    location: Option<SourceLocation>,
    /// Immediate dominator first, up to the root.
    dominators: Vec<NodeRef>,
    edge_count: usize,
    /// Outgoing edges, largest target (by retained size) first.
    edges: Vec<EdgeJson>,
    retainer_count: usize,
    /// Incoming edges, nearest to the root first.
    retainers: Vec<EdgeJson>,
    /// The shortest retaining path.
    path: Vec<Step>,
}

impl heapsnap::code::Positions for ShowJson<'_> {
    fn map_positions(&mut self, sources: &dyn heapsnap::leaks::Sources) {
        self.location.map_positions(sources);
    }
}

#[derive(Serialize)]
struct EdgeJson {
    edge: String,
    edge_type: String,
    node: NodeRef,
}

pub fn show(args: ShowArgs) -> anyhow::Result<()> {
    let loaded = load(&args.file, args.output.timings)?;
    let index = Retainers::new(&loaded.snapshot);
    let mut doc = show_doc(&loaded, &index, &args.object, args.top)?;
    doc.map_positions(&crate::sources::Disk::new(args.source_maps.enabled()));
    let a = &loaded.analysis;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.output.json {
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    writeln!(out, "{}", describe(&doc.object))?;
    writeln!(out, "  name: {}", output::shorten(&doc.name, 100))?;
    writeln!(out, "  distance: {}", output::distance(a.distance[doc.at]))?;
    if let Some(l) = &doc.location {
        writeln!(out, "  defined at {}", crate::output::location(l))?;
    }
    writeln!(out, "  path: {}", output::path(&doc.path, None, None))?;
    let chain: Vec<String> = doc
        .dominators
        .iter()
        .map(|d| format!("{} @{}", d.class, d.id))
        .collect();
    writeln!(out, "  dominators: {}", chain.join(" ← "))?;
    let list = |out: &mut dyn Write,
                title: &str,
                total: usize,
                edges: &[EdgeJson]|
     -> std::io::Result<()> {
        writeln!(out, "  {title} ({total}):")?;
        for e in edges {
            writeln!(
                out,
                "    {} ({}) → {}",
                e.edge,
                e.edge_type,
                describe(&e.node)
            )?;
        }
        if total > edges.len() {
            writeln!(out, "    … {} more (--top)", total - edges.len())?;
        }
        Ok(())
    };
    list(&mut out, "edges, largest first", doc.edge_count, &doc.edges)?;
    list(
        &mut out,
        "retainers, nearest to the root first",
        doc.retainer_count,
        &doc.retainers,
    )?;
    out.flush()?;
    Ok(())
}

/// What `show` prints about `object` (`@ID`): its edges and retainers, the first `top` of each.
pub fn show_doc<'a>(
    loaded: &'a Loaded,
    index: &Retainers,
    object: &str,
    top: usize,
) -> anyhow::Result<ShowJson<'a>> {
    let (s, a) = (&loaded.snapshot, &loaded.analysis);
    let v = node_of(s, object, &loaded.name)?;
    let edge = |e: EdgeIdx, node: NodeIdx| EdgeJson {
        edge: graph::edge_label(s, e),
        edge_type: graph::edge_type_name(s, e).to_owned(),
        node: node_ref(s, a, node),
    };
    let edge_count = s.nodes.edges(v).len();
    let outgoing = heapsnap::excerpt::largest_edges(s, a, v, top);
    let retainer_count = index.of(v).len();
    let incoming = heapsnap::excerpt::nearest_retainers(s, a, index.of(v).to_vec(), top);
    let dominators = view::dominators(s, a, v)
        .into_iter()
        .map(|u| node_ref(s, a, u))
        .collect();
    let names = heapsnap::code::Code::new(s);
    Ok(ShowJson {
        at: v,
        file: &loaded.name,
        object: node_ref(s, a, v),
        name: s.strings.get(s.nodes.name[v]).into_owned(),
        distance: Some(a.distance[v]).filter(|&d| d >= 0),
        location: s.location(v).map(|l| names.source(l)),
        dominators,
        edge_count,
        edges: outgoing.iter().map(|&e| edge(e, s.edges.to[e])).collect(),
        retainer_count,
        retainers: incoming
            .iter()
            .map(|&e| edge(e, graph::edge_source(s, e)))
            .collect(),
        path: path_steps(s, a, &graph::path_to(s, a, v)),
    })
}

fn describe(n: &NodeRef) -> String {
    format!(
        "{} @{} ({}, shallow {}, retained {})",
        output::shorten(&n.class, 60),
        n.id,
        n.ty,
        output::size(n.self_size),
        output::size(n.retained_size)
    )
}

/// The node with id `@ID` or `ID`.
fn node_of(s: &Snapshot, text: &str, file: &str) -> anyhow::Result<NodeIdx> {
    let id = NodeId(
        text.trim_start_matches('@')
            .parse()
            .with_context(|| format!("{text:?} is not a node id (expected @ID, e.g. @12345)"))?,
    );
    s.nodes
        .id
        .position(|&i| i == id)
        .with_context(|| format!("{file}: no node with id @{id}"))
}
