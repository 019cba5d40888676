//! Who holds a leak, named as the code names it: the collection that grew (the *owner*), the
//! class and field that hold it (`NodeCache.data`, the *holder*), and the app's own variable
//! that leads there (`quoteCache`, the *binding*) with where it is declared.

use serde::Serialize;

use super::Census;
use crate::analysis::Analysis;
use crate::bits::BitSet;
use crate::code::{self, AppPaths, Code, Original, Positions, SourceLocation};
use crate::graph::{self, Collections, Kind};
use crate::model::{EdgeIdx, NodeId, NodeIdx, Snapshot};
use rayon::prelude::*;

/// The collection (or named variable) that holds a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    /// The name it is reached by: a variable, property or key (`handleMap`, `data`).
    pub name: String,
    /// The owner as the code names it: `Class.field` for a field of a class instance
    /// (`NodeCache.data`, `EventEmitter._events.error`), the variable's name for a scope's
    /// variable (`handleMap`).
    pub holder: String,
    /// Whether the holder is a scope's variable (else a field of `held_by`).
    pub variable: bool,
    pub class: String,
    pub kind: Option<Kind>,
    pub id: NodeId,
    /// Entry counts in each snapshot (`null` where it did not exist).
    pub entries: Vec<Option<u32>>,
    /// Whether its entry count grew from the baseline to the final snapshot.
    pub grew: bool,
    /// What holds the owner: `system / Context` for a closure variable, `NodeCache`…
    pub held_by: String,
    /// For a closure or module variable: up to three functions that have it in scope.
    pub functions: Vec<String>,
    /// Where the holder is: the variable's declaration, or the holder class's constructor.
    pub location: Option<SourceLocation>,
    /// The app's own variable that the retaining path starts from, when it goes through the
    /// app's code.
    pub binding: Option<Binding>,
    /// When the owner is the head of a linked list of the leaked objects (a timer list, a
    /// queue): the list, whose length says more than the head's entry count.
    pub list: Option<LinkedList>,
    /// Position of the owner in `path`.
    pub path_index: usize,
}

/// A linked list hanging from an owner.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedList {
    /// The field that links one node to the next (`next`, `_idleNext`).
    pub link: String,
    /// How many nodes follow the owner through it.
    pub length: u64,
}

/// A variable of the app's own code on a leak's retaining path.
#[derive(Debug, Clone, Serialize)]
pub struct Binding {
    /// The variable (`quoteCache`).
    pub name: String,
    /// `module` for a module's top-level variable, `closure` for a function's.
    pub scope: &'static str,
    /// The script that declares it.
    pub script: Option<String>,
    /// Its declaration, when the script's text shows it.
    pub location: Option<SourceLocation>,
    /// From the variable to the owner: `quoteCache → NodeCache.data`.
    pub via: String,
}

impl Positions for Owner {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.location.map_positions(sources);
        self.binding.map_positions(sources);
    }
}

impl Positions for Binding {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.location.map_positions(sources);
    }
}

/// What the files of the scripts say beyond the snapshot: their text, to find declarations
/// (the snapshot keeps only the first 1,024 characters of each script), and their source
/// maps, for the original positions of compiled code (see [`crate::code::Positions`]).
pub trait Sources: Sync {
    /// The whole text of the script V8 named `script` (a path or URL), if it can be read.
    fn text(&self, script: &str) -> Option<String>;

    /// Where 1-based `line`:`column` of `script` came from, by the script's source map. `ran`
    /// is the start of the source that ran, as the snapshot keeps it, when known: a file that
    /// does not start so is not the code that ran, and its map must not be used.
    fn original(
        &self,
        _script: &str,
        _ran: Option<&[u8]>,
        _line: u32,
        _column: u32,
    ) -> Option<Original> {
        None
    }
}

/// Only what the snapshot itself keeps.
pub struct SnapshotOnly;

impl Sources for SnapshotOnly {
    fn text(&self, _script: &str) -> Option<String> {
        None
    }
}

/// Where on a path the owner is, before it is described.
#[derive(Debug, Clone, Copy)]
pub struct OwnerAt {
    /// Index into the path: `path[index]` is the edge into the owner.
    pub index: usize,
    /// The owner's node ordinal.
    pub node: NodeIdx,
    pub grew: bool,
}

/// Finds and names who holds an object.
pub struct OwnerFinder {
    pub(crate) collections: Collections,
    pub(crate) code: Code,
    pub(crate) paths: AppPaths,
}

impl OwnerFinder {
    /// Paths start at the app's module scopes and at its function scopes that existed in the
    /// baseline.
    pub fn new(s: &Snapshot, baseline: &Census) -> OwnerFinder {
        let code = Code::new(s);
        OwnerFinder {
            collections: Collections::new(s),
            paths: AppPaths::new(s, &code, |v| baseline.contains(s.nodes.id[v])),
            code,
        }
    }

    /// The retaining path of `v` shown to people: through the app's code when it can be.
    pub fn path(&self, s: &Snapshot, a: &Analysis, v: NodeIdx) -> Vec<EdgeIdx> {
        self.paths.path(s, a, v)
    }

    /// The owner of node `v` of `s` (see [`super::find`]), judged against the earlier
    /// snapshots, described.
    pub fn owner_of(
        &self,
        s: &Snapshot,
        a: &Analysis,
        earlier: &[Census],
        v: NodeIdx,
        sources: &dyn Sources,
    ) -> Option<Owner> {
        let (path, scope) = self.paths.path_and_scope(s, a, v);
        let at = self.locate(s, a, &earlier[0], &path)?;
        Some(self.describe(s, a, earlier, (&path, scope), at, sources))
    }

    /// The nearest collection on the path that existed in the baseline and has more entries
    /// now; failing that, the nearest collection that existed in the baseline (neither a
    /// context, whose variable count never changes, nor a link of a list of leaked objects).
    /// Cheap: no text is built.
    pub fn locate(
        &self,
        s: &Snapshot,
        a: &Analysis,
        baseline: &Census,
        path: &[EdgeIdx],
    ) -> Option<OwnerAt> {
        let leaked_class = a.class[s.edges.to[*path.last()?]];
        let mut fallback = None;
        // path[i] leads to node i; skip the leaked object itself (the last step).
        for index in (0..path.len() - 1).rev() {
            let node = s.edges.to[path[index]];
            let Some((kind, now)) = self.collections.entries(s, node) else {
                continue;
            };
            if self.collections.is_weak(s, node) {
                continue;
            }
            let Some(before) = baseline.entries(s.nodes.id[node]) else {
                continue; // New since the baseline: part of the leak, not its owner.
            };
            let at = OwnerAt {
                index,
                node,
                grew: now > before,
            };
            if at.grew {
                return Some(at);
            }
            if fallback.is_none() && kind != Kind::Context && a.class[node] != leaked_class {
                fallback = Some(at);
            }
        }
        fallback
    }

    /// Every collection's entry count, for those with entries: `(node, entries)`, by node.
    /// Scopes (their variables never change in number) and weak collections (they keep
    /// nothing alive) are left out.
    pub fn entries_now(&self, s: &Snapshot) -> Vec<(NodeIdx, u32)> {
        s.nodes
            .par_all()
            .filter_map(|v| match self.collections.entries(s, v)? {
                (Kind::Context, _) | (_, 0) => None,
                _ if self.collections.is_weak(s, v) => None,
                (_, n) => Some((v, n)),
            })
            .collect()
    }

    /// Of `now` (see [`OwnerFinder::entries_now`]), the collections that existed in the
    /// baseline and have more entries now.
    pub fn grown(&self, s: &Snapshot, baseline: &Census, now: &[(NodeIdx, u32)]) -> BitSet {
        let grown: Vec<NodeIdx> = now
            .par_iter()
            .filter(|&&(v, n)| {
                baseline
                    .entries(s.nodes.id[v])
                    .is_some_and(|before| n > before)
            })
            .map(|&(v, _)| v)
            .collect();
        let mut set = BitSet::new(s.node_count());
        for v in grown {
            set.set(v.index());
        }
        set
    }

    /// The nearest collection in `grown` above `v` on its shown path; `None` if none.
    pub fn grown_owner(
        &self,
        s: &Snapshot,
        a: &Analysis,
        grown: &BitSet,
        v: NodeIdx,
    ) -> Option<NodeIdx> {
        self.paths
            .parent_edges(s, a, v)
            .map(|e| graph::edge_source(s, e))
            .find(|&u| grown.get(u.index()))
    }

    /// The owner found by [`OwnerFinder::locate`] on `path` (with the index of its step into
    /// the app's scope, see [`AppPaths::path_and_scope`]): names, entry counts, functions.
    pub fn describe(
        &self,
        s: &Snapshot,
        a: &Analysis,
        earlier: &[Census],
        (path, scope): (&[EdgeIdx], Option<usize>),
        at: OwnerAt,
        sources: &dyn Sources,
    ) -> Owner {
        let v = at.node;
        let id = s.nodes.id[v];
        let (kind, now) = self
            .collections
            .entries(s, v)
            .expect("located on a collection");
        let mut entries: Vec<Option<u32>> = earlier.iter().map(|c| c.entries(id)).collect();
        entries.push(Some(now));
        let holder = self.holder(s, a, path, at.index);
        let in_scope = match holder.scope {
            Some(context) => self.code.functions_of(context),
            None => &[],
        };
        let location = match holder.scope {
            Some(context) => self.declared(s, context, &holder.name, sources),
            None => holder
                .object
                .and_then(|o| self.class_location(s, a, o, sources)),
        };
        let from = graph::edge_source(s, path[at.index]);
        Owner {
            name: owner_name(s, path, at.index),
            variable: holder.scope.is_some(),
            holder: holder.name,
            class: s.strings.get(a.class[v]).into_owned(),
            kind: Some(kind),
            id,
            entries,
            grew: at.grew,
            held_by: s.strings.get(a.class[from]).into_owned(),
            functions: in_scope
                .iter()
                .map(|&f| code::function_name(s, f))
                .collect(),
            location,
            binding: scope.and_then(|scope| self.binding(s, a, path, (scope, at.index), sources)),
            list: linked_list(s, path, at.index),
            path_index: at.index,
        }
    }

    /// How the code names path node `index`: walking up the path from it, the fields crossed
    /// until a class instance (`NodeCache.data`) or a scope's variable (`openExports`).
    /// V8's internal stores on the way (a Map's table, an object's property store) are looked
    /// through.
    pub(crate) fn holder(
        &self,
        s: &Snapshot,
        a: &Analysis,
        path: &[EdgeIdx],
        index: usize,
    ) -> Holder {
        let mut fields: Vec<String> = Vec::new();
        for j in (0..=index).rev() {
            let e = path[j];
            let from = graph::edge_source(s, e);
            if let Some(field) = field_name(s, e) {
                fields.push(field);
            }
            let class = s.strings.get(a.class[from]);
            let base = if self.code.is_context(s, from) {
                Some((None, Some(from)))
            } else if graph::is_global_object(s, from) {
                Some((Some("globalThis".to_owned()), None))
            } else if !code::is_generic(&class) && !graph::is_store(s, from) {
                Some((Some(graph::display_class(&class).into_owned()), None))
            } else {
                None
            };
            if let Some((base, scope)) = base {
                return Holder {
                    name: join_fields(base.as_deref(), &fields),
                    scope,
                    object: base.is_some().then_some(from),
                };
            }
        }
        Holder {
            name: join_fields(None, &fields),
            scope: None,
            object: None,
        }
    }

    /// The app's own variable that `path` starts from: the variable of the app's scope (the
    /// node of step `scope`) that the next step takes, and what leads from it to step `to`.
    fn binding(
        &self,
        s: &Snapshot,
        a: &Analysis,
        path: &[EdgeIdx],
        (scope, to): (usize, usize),
        sources: &dyn Sources,
    ) -> Option<Binding> {
        let first = scope + 1;
        let e = *path.get(first)?;
        if first > to || s.edges.ty[e] != s.types.e_context {
            return None;
        }
        let context = s.edges.to[path[scope]];
        let name = s.edge_name(e).into_owned();
        let script = self
            .code
            .functions_of(context)
            .first()
            .and_then(|&f| s.location(f))
            .and_then(|l| self.code.script_name(l.script_id).map(str::to_owned));
        Some(Binding {
            location: self.declared(s, context, &name, sources),
            via: self.via(s, a, path, first, to),
            scope: if self.code.enclosing(s, context).is_none() {
                "module"
            } else {
                "closure"
            },
            name,
            script,
        })
    }

    /// Steps `from..=to` of `path` as code would reach them, a segment per variable or class
    /// instance crossed: `get → stringToPath.cache → MapCache.__data__.string → Hash.__data__`.
    fn via(&self, s: &Snapshot, a: &Analysis, path: &[EdgeIdx], from: usize, to: usize) -> String {
        let mut segments: Vec<String> = Vec::new();
        let mut current: Vec<String> = Vec::new();
        let mut base: Option<String> = None;
        let flush =
            |base: &mut Option<String>, current: &mut Vec<String>, out: &mut Vec<String>| {
                current.reverse();
                out.push(join_fields(base.as_deref(), current));
                current.clear();
                *base = None;
            };
        for (j, &e) in path.iter().enumerate().take(to + 1).skip(from) {
            if s.edges.ty[e] == s.types.e_context && !(current.is_empty() && base.is_none()) {
                // Another scope's variable: a new segment.
                flush(&mut base, &mut current, &mut segments);
            }
            if let Some(field) = field_name(s, e) {
                current.push(field);
            }
            let node = s.edges.to[e];
            let class = s.strings.get(a.class[node]);
            let instance = !code::is_generic(&class)
                && !graph::is_store(s, node)
                && !self.code.is_context(s, node)
                && s.nodes.ty[node] != s.types.closure;
            if j < to && instance {
                flush(&mut base, &mut current, &mut segments);
                base = Some(graph::display_class(&class).into_owned());
            }
        }
        if !current.is_empty() || base.is_some() {
            flush(&mut base, &mut current, &mut segments);
        }
        segments.join(" → ")
    }

    /// Where the class of object `o` is declared. V8 gives an object its constructor's
    /// position: the class's for a class without a constructor of its own, else the
    /// constructor's parameter list; people look for `class Name`, so that is where a position
    /// inside a `constructor(` goes when the script's text shows the class above it.
    pub(crate) fn class_location(
        &self,
        s: &Snapshot,
        a: &Analysis,
        o: NodeIdx,
        sources: &dyn Sources,
    ) -> Option<SourceLocation> {
        let mut at = self.code.source(s.location(o)?);
        if s.nodes.ty[o] == s.types.closure {
            return Some(at);
        }
        let class = s.strings.get(a.class[o]);
        if let Some(text) = self.script_text(s, at.script_id, sources)
            && let Some((line, column)) = code::class_declaration(&text, &class, at.line, at.column)
        {
            (at.line, at.column) = (line, column);
        }
        Some(at)
    }

    /// The text of script `script_id`: from `sources` when its start matches the snapshot's
    /// copy (the same version of the file), else that copy.
    fn script_text(&self, s: &Snapshot, script_id: u32, sources: &dyn Sources) -> Option<String> {
        let script = self.code.script_name(script_id)?;
        let copy = self.code.script_source(s, script_id).unwrap_or_default();
        let copy = String::from_utf8_lossy(copy);
        Some(
            sources
                .text(script)
                .filter(|full| !copy.is_empty() && full.starts_with(copy.as_ref()))
                .unwrap_or_else(|| copy.into_owned()),
        )
    }

    /// Where variable `name` of scope `context` is declared (for `state.items`, `state`): in a
    /// module's scope, its top-level declaration; in a function's, the last one (a parameter
    /// too) before the scope's functions. The script's text comes from `sources` when its
    /// start matches the snapshot's copy (the same version of the file), else from that copy.
    fn declared(
        &self,
        s: &Snapshot,
        context: NodeIdx,
        name: &str,
        sources: &dyn Sources,
    ) -> Option<SourceLocation> {
        let name = name.split(['.', '[']).next().unwrap_or(name);
        let functions = self.code.functions_of(context);
        let l = s.location(*functions.first()?)?;
        let script = self.code.script_name(l.script_id)?;
        let text = self.script_text(s, l.script_id, sources)?;
        let (line, column) = if self.code.enclosing(s, context).is_none() {
            code::declaration(&text, name)?
        } else {
            // The scope's functions sit inside the function that declared the variable: before
            // the last of them.
            let last = functions
                .iter()
                .filter_map(|&f| s.location(f))
                .map(|l| l.line + 1)
                .max()?;
            code::declaration_before(&text, name, last)?
        };
        Some(SourceLocation {
            script_id: l.script_id,
            script: Some(script.to_owned()),
            line,
            column,
            original: None,
            ran: self.code.script_copy(l.script_id),
        })
    }
}

/// A holder's name and what it is.
pub(crate) struct Holder {
    pub name: String,
    /// The scope whose variable it is.
    pub scope: Option<NodeIdx>,
    /// The class instance whose field it is.
    pub object: Option<NodeIdx>,
}

/// The linked list that `path` follows after node `owner`: two steps in a row through the same
/// named field to nodes of one class (`next.next`), with the number of nodes that follow from
/// where it starts (each counted once: timer lists are circular).
fn linked_list(s: &Snapshot, path: &[EdgeIdx], owner: usize) -> Option<LinkedList> {
    const MAX_LENGTH: u64 = 100_000_000;
    let steps = path.get(owner + 1..)?;
    let same = |x: EdgeIdx, y: EdgeIdx| {
        s.edges.ty[x] == s.edges.ty[y]
            && !s.types.edge_name_is_index(s.edges.ty[x])
            && s.edges.name(x) == s.edges.name(y)
            && s.nodes.name[s.edges.to[x]] == s.nodes.name[s.edges.to[y]]
    };
    let first = steps.windows(2).find(|w| same(w[0], w[1]))?[0];
    let (ty, name) = (s.edges.ty[first], s.edges.name(first));
    let start = graph::edge_source(s, first);
    let mut seen = rustc_hash::FxHashSet::default();
    seen.insert(start);
    let mut at = start;
    let mut length = 0;
    while let Some(e) = s
        .nodes
        .edges(at)
        .find(|&e| s.edges.ty[e] == ty && s.edges.name(e) == name)
    {
        at = s.edges.to[e];
        if !seen.insert(at) || length >= MAX_LENGTH {
            break;
        }
        length += 1;
    }
    Some(LinkedList {
        link: s.strings.get(name).into_owned(),
        length,
    })
}

/// The field an edge stands for in code: a property or variable name, an index; `None` for
/// V8's internal links (`table`, `properties`, `elements`), which code does not name.
fn field_name(s: &Snapshot, e: EdgeIdx) -> Option<String> {
    let t = &s.types;
    let ty = s.edges.ty[e];
    if ty == t.e_element || ty == t.e_hidden {
        return Some(s.edge_name(e).into_owned()).filter(|_| ty == t.e_element);
    }
    if ty == t.e_internal || ty == t.e_weak {
        return None;
    }
    Some(s.edge_name(e).into_owned())
}

/// `NodeCache` + [`data`] → `NodeCache.data`; [`_events`, `error`] → `_events.error`; numbers
/// and names that are not identifiers in brackets (`timerListMap[60000]`,
/// `_events["config-change"]`).
fn join_fields(base: Option<&str>, reversed: &[String]) -> String {
    let mut out = base.unwrap_or_default().to_owned();
    for field in reversed.iter().rev() {
        let ident = !field.is_empty()
            && !field.starts_with(|c: char| c.is_ascii_digit())
            && field
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if out.is_empty() && ident {
            out.push_str(field);
        } else if ident {
            out.push('.');
            out.push_str(field);
        } else if field.chars().all(|c| c.is_ascii_digit()) && !field.is_empty() {
            out.push_str(&format!("[{field}]"));
        } else {
            out.push_str(&format!("[{field:?}]"));
        }
    }
    out
}

/// The name of the edge into path node `i`; an index or key is shown after the nearest named
/// edge before it (`timerListMap[60000]`).
pub(crate) fn owner_name(s: &Snapshot, path: &[EdgeIdx], i: usize) -> String {
    let mut suffix = String::new();
    for j in (0..=i).rev() {
        let e = path[j];
        let name = s.edge_name(e);
        let is_index = s.types.edge_name_is_index(s.edges.ty[e])
            || name.is_empty()
            || name.bytes().all(|b| b.is_ascii_digit());
        if !is_index {
            return format!("{name}{suffix}");
        }
        if suffix.is_empty() {
            suffix = format!("[{name}]");
        }
    }
    graph::edge_label(s, path[i])
}

#[cfg(test)]
mod tests {
    use super::join_fields;

    #[test]
    fn fields_join_as_code_writes_them() {
        let f = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            join_fields(Some("NodeCache"), &f(&["data"])),
            "NodeCache.data"
        );
        assert_eq!(
            join_fields(Some("EventEmitter"), &f(&["config-change", "_events"])),
            "EventEmitter._events[\"config-change\"]"
        );
        assert_eq!(
            join_fields(None, &f(&["60000", "timerListMap"])),
            "timerListMap[60000]"
        );
        assert_eq!(join_fields(None, &f(&["handleMap"])), "handleMap");
    }
}
