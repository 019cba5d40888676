//! Whose code holds an object: scripts (the app's own, a library's, the runtime's), the
//! functions that share a scope, the app's module scopes, and the retaining paths that go
//! through the app's own variables rather than through the runtime's internals.
//!
//! DevTools' distance BFS starts at the global object, so its shortest paths often begin in
//! Node's internals (`global → setTimeout → … timerListMap → … _onTimeout → (bound_this)`), and
//! which internal function comes first changes from run to run. A person fixes a leak in their
//! own code: [`AppPaths`] runs a second BFS from the module scopes of the app's scripts that
//! never enters the runtime's module scopes, so the path shown starts at the app's variable
//! (`quoteCache → data → …`) whenever one leads there. Distances stay DevTools'.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::analysis::{Analysis, NO_EDGE};
use crate::bits::BitSet;
use crate::graph;
use crate::leaks::Sources;
use crate::model::{EdgeIdx, Location, NodeCol, NodeIdx, Snapshot, StrId};

/// Who wrote a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The app's own files.
    App,
    /// A package under `node_modules`.
    Library,
    /// Node's (or the embedder's) built-in modules: `node:…`, `internal/…`.
    Runtime,
    /// No script name: `eval`, V8's builtins, bound functions.
    Unknown,
}

impl Origin {
    /// Classifies a script name as V8 records it (a path, a `file://` URL, `node:fs`…).
    pub fn of_script(name: &str) -> Origin {
        if name.is_empty() {
            Origin::Unknown
        } else if name.starts_with("node:") || name.starts_with("internal/") {
            Origin::Runtime
        } else if name.contains("/node_modules/") || name.contains("\\node_modules\\") {
            Origin::Library
        } else if name.starts_with('/') || name.starts_with("file:") || is_windows_path(name) {
            Origin::App
        } else if !name.contains('/') && name.ends_with(".js") {
            // Node before 12 named its own modules `events.js`, `timers.js`.
            Origin::Runtime
        } else {
            Origin::Unknown
        }
    }
}

fn is_windows_path(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

/// A position in a script, as people read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceLocation {
    pub script_id: u32,
    /// The script's URL or file name when the snapshot records it.
    pub script: Option<String>,
    /// 1-based, as editors and DevTools show them.
    pub line: u32,
    pub column: u32,
    /// Where the script's source map says this position came from (`src/orders.ts`), when
    /// the script is compiled or bundled and its map could be read; see [`Positions`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<Original>,
    /// The start of the script's source as the snapshot keeps it: a file on disk under the
    /// script's name is the code that ran only if it starts so (a loader such as ts-node
    /// compiles in memory; a build can change the file after the snapshot). Not in the JSON.
    #[serde(skip)]
    pub ran: Option<std::sync::Arc<[u8]>>,
}

/// A position in the source a script was compiled from (TypeScript, a bundle's module), by the
/// script's source map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Original {
    /// The source file: an absolute path when the map names a file (resolved against the map's
    /// directory and `sourceRoot`), else the map's name for it (`webpack://app/src/a.ts`).
    pub source: String,
    /// 1-based, as [`SourceLocation`]'s.
    pub line: u32,
    pub column: u32,
}

/// Output that carries source positions. Every report gives its positions their originals
/// through this one walk, with the [`Sources`] the binary implements (heapsnap reads no files):
/// a position already mapped, or of a script without a name, is left as it is.
pub trait Positions {
    fn map_positions(&mut self, sources: &dyn Sources);
}

impl Positions for SourceLocation {
    fn map_positions(&mut self, sources: &dyn Sources) {
        if self.original.is_none()
            && let Some(script) = &self.script
        {
            self.original = sources.original(script, self.ran.as_deref(), self.line, self.column);
        }
    }
}

impl<T: Positions> Positions for Option<T> {
    fn map_positions(&mut self, sources: &dyn Sources) {
        if let Some(x) = self {
            x.map_positions(sources);
        }
    }
}

impl<T: Positions> Positions for [T] {
    fn map_positions(&mut self, sources: &dyn Sources) {
        for x in self {
            x.map_positions(sources);
        }
    }
}

impl<T: Positions> Positions for Vec<T> {
    fn map_positions(&mut self, sources: &dyn Sources) {
        self.as_mut_slice().map_positions(sources);
    }
}

/// Scripts and functions of one snapshot.
pub struct Code {
    scripts: Scripts,
    /// Each script's copy of its source start (see [`SourceLocation::ran`]).
    copies: FxHashMap<u32, std::sync::Arc<[u8]>>,
    /// Up to three closures of each context (`closure --context--> context`).
    functions: FxHashMap<NodeIdx, Closures>,
    context_names: Vec<StrId>,
    previous: Vec<StrId>,
}

/// At most this many closures are kept per context: enough to name a scope.
const FUNCTIONS_PER_CONTEXT: usize = 3;

/// The first closures of one context, inline: there can be millions of contexts.
#[derive(Default, Clone, Copy)]
struct Closures {
    ids: [NodeIdx; FUNCTIONS_PER_CONTEXT],
    len: u8,
}

impl Closures {
    fn push(&mut self, f: NodeIdx) {
        if usize::from(self.len) < FUNCTIONS_PER_CONTEXT {
            self.ids[usize::from(self.len)] = f;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[NodeIdx] {
        &self.ids[..usize::from(self.len)]
    }
}

impl Code {
    /// Script names come from closures: `closure → shared → script → name`.
    pub fn new(s: &Snapshot) -> Code {
        let scripts = scripts(s, |_| true);
        let t = &s.types;
        let ids = |n: &[u8]| s.strings.ids_of(n);
        let context = ids(b"context");
        let mut functions: FxHashMap<NodeIdx, Closures> = FxHashMap::default();
        for v in s.nodes.all() {
            if s.nodes.ty[v] == t.closure
                && let Some(e) = graph::find_edge(s, v, t.e_internal, &context)
            {
                functions.entry(s.edges.to[e]).or_default().push(v);
            }
        }
        Code {
            copies: copies(s, &scripts),
            scripts,
            functions,
            context_names: ids(b"system / Context"),
            previous: ids(b"previous"),
        }
    }

    /// Up to three closures whose context is `context`.
    pub fn functions_of(&self, context: NodeIdx) -> &[NodeIdx] {
        self.functions.get(&context).map_or(&[], Closures::as_slice)
    }

    /// A recorded position, with its script's name.
    pub fn source(&self, l: Location) -> SourceLocation {
        SourceLocation {
            script_id: l.script_id,
            script: self.scripts.get(&l.script_id).map(|(n, _, _)| n.clone()),
            line: l.line + 1,
            column: l.column + 1,
            original: None,
            ran: self.copies.get(&l.script_id).cloned(),
        }
    }

    /// The start of the script's source as the snapshot keeps it (see [`SourceLocation::ran`]).
    pub fn script_copy(&self, script_id: u32) -> Option<std::sync::Arc<[u8]>> {
        self.copies.get(&script_id).cloned()
    }

    pub fn script_name(&self, script_id: u32) -> Option<&str> {
        self.scripts.get(&script_id).map(|(n, _, _)| n.as_str())
    }

    /// The start of the script's source as the snapshot keeps it (V8 writes at most the first
    /// 1,024 characters of a string).
    pub fn script_source<'s>(&self, s: &'s Snapshot, script_id: u32) -> Option<&'s [u8]> {
        let (_, _, source) = self.scripts.get(&script_id)?;
        source.map(|id| s.strings.bytes(id))
    }

    pub fn origin_of_script(&self, script_id: u32) -> Origin {
        self.scripts
            .get(&script_id)
            .map_or(Origin::Unknown, |&(_, origin, _)| origin)
    }

    /// Who wrote closure `f` (`Unknown` for builtins and bound functions).
    pub fn origin_of_function(&self, s: &Snapshot, f: NodeIdx) -> Origin {
        s.location(f)
            .map_or(Origin::Unknown, |l| self.origin_of_script(l.script_id))
    }

    /// Who wrote the functions of a scope (a context), judged by its first closure.
    pub fn origin_of_context(&self, s: &Snapshot, context: NodeIdx) -> Origin {
        self.functions_of(context)
            .first()
            .map_or(Origin::Unknown, |&f| self.origin_of_function(s, f))
    }

    /// Whether `v` is a function's scope (`system / Context`).
    pub fn is_context(&self, s: &Snapshot, v: NodeIdx) -> bool {
        self.context_names.contains(&s.nodes.name[v])
    }

    /// The scope that encloses context `v` (`previous`), if it is a function's scope too.
    pub fn enclosing(&self, s: &Snapshot, v: NodeIdx) -> Option<NodeIdx> {
        let e = graph::find_edge(s, v, s.types.e_internal, &self.previous)?;
        let outer = s.edges.to[e];
        self.is_context(s, outer).then_some(outer)
    }

    /// The outermost function scope around context `v`: a module's top-level scope (the
    /// one whose `previous` is the native or script context).
    pub fn module_scope(&self, s: &Snapshot, v: NodeIdx) -> NodeIdx {
        const MAX_DEPTH: usize = 256;
        let mut at = v;
        for _ in 0..MAX_DEPTH {
            match self.enclosing(s, at) {
                Some(outer) => at = outer,
                None => break,
            }
        }
        at
    }
}

/// The positions `locations` (V8's, 0-based) as people read them, with their scripts'
/// names. Only those scripts are looked for, and no pass runs over the nodes as in
/// [`Code::new`]: cheap for the few rows a Summary prints of a big snapshot.
pub fn sources(s: &Snapshot, locations: &[Location]) -> Vec<SourceLocation> {
    let wanted: rustc_hash::FxHashSet<u32> = locations.iter().map(|l| l.script_id).collect();
    let scripts = scripts(s, |id| wanted.contains(&id));
    let copies = copies(s, &scripts);
    locations
        .iter()
        .map(|l| SourceLocation {
            script_id: l.script_id,
            script: scripts.get(&l.script_id).map(|(n, _, _)| n.clone()),
            line: l.line + 1,
            column: l.column + 1,
            original: None,
            ran: copies.get(&l.script_id).cloned(),
        })
        .collect()
}

/// Each script's copy of its source start, shared by the positions in it.
fn copies(s: &Snapshot, scripts: &Scripts) -> FxHashMap<u32, std::sync::Arc<[u8]>> {
    scripts
        .iter()
        .filter_map(|(&id, &(_, _, source))| Some((id, s.strings.bytes(source?).into())))
        .collect()
}

/// Script id → (name, who wrote it, the snapshot's copy of the source's start), for the
/// scripts `wanted` takes.
type Scripts = FxHashMap<u32, (String, Origin, Option<StrId>)>;

/// The scripts of `s` whose ids `wanted` takes, named through their closures
/// (`closure → shared → script → name`).
fn scripts(s: &Snapshot, wanted: impl Fn(u32) -> bool) -> Scripts {
    let t = &s.types;
    let ids = |n: &[u8]| s.strings.ids_of(n);
    let (shared, script, name, source, parent) = (
        ids(b"shared"),
        [ids(b"script"), ids(b"script_or_debug_info")].concat(),
        ids(b"name"),
        ids(b"source"),
        ids(b"parent"),
    );
    // Only flat strings carry their text as their name; V8 names a concatenated or sliced
    // string `(concatenated string)`, `(sliced string)`.
    let is_string = |v: NodeIdx| s.nodes.ty[v] == t.string;
    let mut scripts = FxHashMap::default();
    for &(v, l) in &s.locations {
        if s.nodes.ty[v] != t.closure || scripts.contains_key(&l.script_id) || !wanted(l.script_id)
        {
            continue;
        }
        let Some(scr) = graph::find_edge(s, v, t.e_internal, &shared)
            .map(|e| s.edges.to[e])
            .and_then(|sfi| graph::find_edge(s, sfi, t.e_internal, &script))
            .map(|e| s.edges.to[e])
        else {
            continue;
        };
        let string_of = |names: &[StrId]| {
            let mut n = s.edges.to[graph::find_edge(s, scr, t.e_internal, names)?];
            // Node slices a byte-order mark off a script's source: read the whole.
            if s.nodes.ty[n] == t.sliced_string {
                n = s.edges.to[graph::find_edge(s, n, t.e_internal, &parent)?];
            }
            is_string(n).then(|| s.nodes.name[n])
        };
        let Some(text) = string_of(&name)
            .map(|n| s.strings.get(n).into_owned())
            .filter(|t| !t.is_empty())
        else {
            continue;
        };
        let origin = Origin::of_script(&text);
        scripts.insert(l.script_id, (text, origin, string_of(&source)));
    }
    scripts
}

/// A closure's name, `(anonymous)` when it has none.
pub fn function_name(s: &Snapshot, f: NodeIdx) -> String {
    match s.strings.get(s.nodes.name[f]) {
        n if n.is_empty() => "(anonymous)".to_owned(),
        n => n.into_owned(),
    }
}

/// Retaining paths that start at the app's own variables.
pub struct AppPaths {
    /// The edge by which the BFS reached each node ([`NO_EDGE`] for its sources and what it
    /// did not reach).
    via: NodeCol<EdgeIdx>,
    /// The app's scopes the BFS started from, sorted.
    scopes: Vec<NodeIdx>,
    /// What the app's scopes reach (not counting what only the global object does).
    app: BitSet,
}

impl AppPaths {
    /// A BFS over non-weak edges in three rounds, each from what the earlier ones did not
    /// reach: from the app's modules' top-level scopes; then from the scopes of its functions
    /// for which `long_lived` holds (alive since a baseline: a cache factory's scope, not a
    /// request's); then from the global object (`globalThis.cache`). It does not enter V8's
    /// metadata (hidden classes, code), the runtime's module scopes (where Node keeps its timer
    /// lists and module cache), the native context or, after starting there, the global
    /// object; from the global object, not the runtime's functions either. What it reaches, it
    /// reaches through the app's variables, the objects they hold and the functions
    /// (listeners, callbacks) they hold.
    pub fn new(s: &Snapshot, code: &Code, long_lived: impl Fn(NodeIdx) -> bool) -> AppPaths {
        let t = &s.types;
        let n = s.node_count();
        let app_contexts: Vec<NodeIdx> = code
            .functions
            .par_iter()
            .filter(|&(_, fs)| code.origin_of_function(s, fs.as_slice()[0]) == Origin::App)
            .map(|(&context, _)| context)
            .collect();
        let mut modules: Vec<NodeIdx> = app_contexts
            .par_iter()
            .map(|&c| code.module_scope(s, c))
            .filter(|&m| code.origin_of_context(s, m) == Origin::App)
            .collect();
        modules.sort_unstable();
        modules.dedup();
        let mut functions: Vec<NodeIdx> = app_contexts
            .into_iter()
            .filter(|&c| modules.binary_search(&c).is_err() && long_lived(c))
            .collect();
        functions.sort_unstable();
        // The global objects' names, once: comparing ids is cheaper than text for every node.
        let global_names: Vec<StrId> = (0..s.strings.len())
            .into_par_iter()
            .map(StrId::from)
            .filter(|&id| graph::is_global_name(s.strings.bytes(id)))
            .collect();
        let is_global =
            |v: NodeIdx| s.nodes.ty[v] == t.object && global_names.contains(&s.nodes.name[v]);
        let globals: Vec<NodeIdx> = s.nodes.par_all().filter(|&v| is_global(v)).collect();
        let blocked_names: Vec<StrId> = [&b"system / NativeContext"[..], b"system / ScriptContext"]
            .iter()
            .flat_map(|n| s.strings.ids_of(n))
            .collect();
        // Never V8's metadata (hidden classes lead to constructors and back pointers), a
        // WeakMap or WeakSet (it keeps nothing alive: the key's holder does), Node's module
        // scopes, the native context or the global object (it only starts the last round);
        // from the global object, not Node's functions either (their scopes are Node's state,
        // not the app's). Marked once, as if reached: the BFS then tests one bit per edge.
        let weak_collections: Vec<StrId> = [&b"WeakMap"[..], b"WeakSet"]
            .iter()
            .flat_map(|n| s.strings.ids_of(n))
            .collect();
        let blocked = |v: NodeIdx| {
            let ty = s.nodes.ty[v];
            v == s.root
                || ty == t.synthetic
                || graph::is_metadata(s, v)
                || weak_collections.contains(&s.nodes.name[v])
                || blocked_names.contains(&s.nodes.name[v])
                || is_global(v)
                || (code.is_context(s, v)
                    && code.enclosing(s, v).is_none()
                    && code.origin_of_context(s, v) == Origin::Runtime)
        };
        let mut reached = BitSet::new(n);
        let marked: Vec<NodeIdx> = s.nodes.par_all().filter(|&v| blocked(v)).collect();
        for v in marked {
            reached.set(v.index());
        }
        let runtime_functions: Vec<NodeIdx> = s
            .nodes
            .par_all()
            .filter(|&f| {
                s.nodes.ty[f] == t.closure && code.origin_of_function(s, f) == Origin::Runtime
            })
            .collect();
        let mut via: NodeCol<EdgeIdx> = vec![NO_EDGE; n].into();
        let mut queue: Vec<NodeIdx> = Vec::new();
        let mut app_end = 0;
        for (round, sources) in [&modules, &functions, &globals].into_iter().enumerate() {
            if round == 2 {
                app_end = queue.len();
                for &f in &runtime_functions {
                    reached.set(f.index());
                }
            }
            let mut head = queue.len();
            for &v in sources {
                // A global object is marked as blocked, yet it starts the last round.
                if !reached.get(v.index()) || round == 2 {
                    reached.set(v.index());
                    queue.push(v);
                }
            }
            while head < queue.len() {
                let v = queue[head];
                head += 1;
                for e in s.nodes.edges(v) {
                    let to = s.edges.to[e];
                    if s.edges.ty[e] == t.e_weak || reached.get(to.index()) {
                        continue;
                    }
                    reached.set(to.index());
                    via[to] = e;
                    queue.push(to);
                }
            }
        }
        let mut app = BitSet::new(n);
        for &v in &queue[..app_end] {
            app.set(v.index());
        }
        let mut scopes = modules;
        scopes.extend(functions);
        scopes.sort_unstable();
        AppPaths { via, scopes, app }
    }

    /// Whether the app's scopes reach `v` (the scopes themselves included).
    pub fn reaches(&self, v: NodeIdx) -> bool {
        self.app.get(v.index())
    }

    /// The edges of `v`'s path (see [`AppPaths::path`]) from `v` up to the root.
    pub fn parent_edges<'a>(
        &'a self,
        s: &'a Snapshot,
        a: &'a Analysis,
        v: NodeIdx,
    ) -> impl Iterator<Item = EdgeIdx> + 'a {
        // The BFS's edges back to where it started, then DevTools' path from there: never
        // back into the first part.
        let mut at = v;
        let mut ours = true;
        let mut steps = 0;
        std::iter::from_fn(move || {
            if steps > s.node_count() {
                return None; // Cannot happen with BFS edges; guards a corrupt array.
            }
            steps += 1;
            let e = if ours && self.via[at] != NO_EDGE {
                self.via[at]
            } else {
                ours = false;
                a.path_edge[at]
            };
            if e == NO_EDGE {
                return None;
            }
            at = graph::edge_source(s, e);
            Some(e)
        })
    }

    /// A retaining path of `v`, root side first: DevTools' shortest path to where the BFS
    /// started (an app scope, or the global object), then the BFS's path from there to `v`;
    /// DevTools' shortest path when the BFS did not reach `v`.
    pub fn path(&self, s: &Snapshot, a: &Analysis, v: NodeIdx) -> Vec<EdgeIdx> {
        self.path_and_scope(s, a, v).0
    }

    /// [`AppPaths::path`], and the index of the step into the app's scope it starts from
    /// (`None` when it does not start at one, or DevTools' distance pass did not reach that
    /// scope).
    pub fn path_and_scope(
        &self,
        s: &Snapshot,
        a: &Analysis,
        v: NodeIdx,
    ) -> (Vec<EdgeIdx>, Option<usize>) {
        let mut tail = 0;
        let mut at = v;
        while self.via[at] != NO_EDGE && tail <= s.node_count() {
            tail += 1;
            at = graph::edge_source(s, self.via[at]);
        }
        let mut path: Vec<EdgeIdx> = self.parent_edges(s, a, v).collect();
        path.reverse();
        let from_scope = self.scopes.binary_search(&at).is_ok();
        let scope = (from_scope && path.len() > tail).then(|| path.len() - tail - 1);
        (path, scope)
    }
}

/// Classes that name no application code: JavaScript's and V8's own (`Object`, `Array`,
/// `Promise`, `(string)`, `system / Context`) and inferred shapes (`{a, b}`). A growing
/// `(string)` says nothing until we know who holds the strings.
pub fn is_generic(name: &str) -> bool {
    name.starts_with('(')
        || name.starts_with('{')
        || name.starts_with("system / ")
        || matches!(
            name,
            "Object"
                | "Array"
                | "Function"
                | "Map"
                | "Set"
                | "WeakMap"
                | "WeakSet"
                | "WeakRef"
                | "Promise"
                | "Date"
                | "RegExp"
                | "Error"
                | "String"
                | "Number"
                | "Boolean"
                | "Symbol"
                | "BigInt"
                | "Arguments"
                | "ArrayBuffer"
                | "SharedArrayBuffer"
                | "DataView"
                | "Uint8Array"
                | "Int8Array"
                | "Uint16Array"
                | "Int16Array"
                | "Uint32Array"
                | "Int32Array"
                | "Float32Array"
                | "Float64Array"
                | "BigInt64Array"
                | "BigUint64Array"
                | "Uint8ClampedArray"
        )
}

/// Where `name` is declared as a module's top-level variable in `source` (a `const`, `let`,
/// `var`, `function`, `class` or an import): the first such declaration on an unindented
/// line, else the first anywhere. 1-based line and column of the name.
pub fn declaration(source: &str, name: &str) -> Option<(u32, u32)> {
    let mut first = None;
    for d in declarations(source, name) {
        if d.indent == 0 {
            return Some((d.line, d.column));
        }
        first.get_or_insert((d.line, d.column));
    }
    first
}

/// Where `name` is declared for a function's scope: the last declaration (a parameter too) at
/// or before 1-based line `line`, where the scope's functions begin.
pub fn declaration_before(source: &str, name: &str, line: u32) -> Option<(u32, u32)> {
    declarations(source, name)
        .take_while(|d| d.line <= line)
        .last()
        .map(|d| (d.line, d.column))
}

/// When 1-based `line`:`column` of `source` is a constructor's parameter list (V8's position
/// of a class with a constructor of its own), the `class` keyword of the class declared last
/// above it, if that class is `name`: `(line, column)`. A class is declared by `class NAME`
/// or, as bundlers write it (esbuild, rollup, SWC), by a class expression given to a name:
/// `var|let|const NAME = class`, `NAME = class`, `exports.NAME = class`. Nothing for a
/// one-letter name or in minified code (lines longer than `MAX_LINE`), where a search by text could find
/// another class: V8's position then stays, which is right if less helpful.
pub fn class_declaration(source: &str, name: &str, line: u32, column: u32) -> Option<(u32, u32)> {
    if !searchable(name) {
        return None;
    }
    let lines: Vec<&str> = source.lines().take(line as usize).collect();
    if line == 0 || lines.len() != line as usize {
        return None;
    }
    let at = lines[lines.len() - 1];
    if at.len() > MAX_LINE {
        return None;
    }
    let cut = at
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(at.len(), |(i, _)| i);
    let before = &at[..cut];
    let head = before.trim_end();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    if !head.ends_with("constructor")
        || head[..head.len() - "constructor".len()]
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == '.')
    {
        return None;
    }
    // The nearest class above the constructor (on its own line, before it); a long line on
    // the way ends the search, since the class it declares could not be told.
    for (n, l) in lines.iter().enumerate().rev() {
        let l = if n + 1 == lines.len() { before } else { l };
        if l.len() > MAX_LINE {
            return None;
        }
        if let Some((column, declared)) = classes(code_of(l)).pop() {
            // `exports.Session = class`: V8 names the class `exports.Session` or `Session`.
            let last = declared.rsplit('.').next().unwrap_or(&declared);
            return (declared == name || last == name).then_some((n as u32 + 1, column));
        }
    }
    None
}

/// The classes declared on one line of code, in order: the 1-based column of each `class`
/// keyword and the name it is declared as (`Order` for `class Order`, and for a class
/// expression given to a name, `var Order = class {`, that name: `exports.Order` for
/// `exports.Order = class extends Base {`). Anonymous classes that are not given a name are
/// left out.
fn classes(code: &str) -> Vec<(u32, String)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let ident = |s: &str| -> String { s.chars().take_while(|&c| is_ident(c)).collect() };
    let mut found = Vec::new();
    for (i, _) in code.match_indices("class") {
        let (before, rest) = (&code[..i], &code[i + "class".len()..]);
        if before
            .chars()
            .next_back()
            .is_some_and(|c| is_ident(c) || c == '.')
            || rest.chars().next().is_some_and(is_ident)
        {
            continue;
        }
        let named = ident(rest.trim_start());
        let declared = if rest.starts_with(char::is_whitespace)
            && !named.is_empty()
            && named != "extends"
            && !named.starts_with(|c: char| c.is_ascii_digit())
        {
            named
        } else {
            // `NAME = class {`, `NAME = /* @__PURE__ */ class extends Base {`.
            let mut lhs = before.trim_end();
            while let Some(open) = lhs.strip_suffix("*/").and_then(|l| l.rfind("/*")) {
                lhs = lhs[..open].trim_end();
            }
            let Some(lhs) = lhs.strip_suffix('=') else {
                continue;
            };
            // Not `==`, `=>`, `<=`, `+=` …: an assignment or a declaration only.
            if lhs.ends_with(|c: char| "=!<>+-*/%&|^?:".contains(c)) {
                continue;
            }
            let lhs = lhs.trim_end();
            let start = lhs
                .char_indices()
                .rev()
                .take_while(|&(_, c)| is_ident(c) || c == '.')
                .last()
                .map_or(lhs.len(), |(j, _)| j);
            let path = &lhs[start..];
            if path.is_empty()
                || path.starts_with(|c: char| c == '.' || c.is_ascii_digit())
                || path.ends_with('.')
            {
                continue;
            }
            path.to_owned()
        };
        found.push((before.chars().count() as u32 + 1, declared));
    }
    found
}

/// A line of code without its `//` comment: the first `//` outside a string literal (`"http://…"`
/// is not a comment). Text only: a regular expression with a quote in it can hide a comment.
fn code_of(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut previous_slash = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == '/' && previous_slash {
                    return &line[..i - 1];
                }
                if matches!(c, '"' | '\'' | '`') {
                    quote = Some(c);
                }
            }
        }
        previous_slash = quote.is_none() && c == '/';
    }
    line
}

/// Whether declarations of `name` are looked for by text: not for one-letter names, which a
/// minifier gives to everything (`e`, `t`), so that the first `e` on a line is another
/// binding. Minified names could be turned into the original ones through the script's source
/// map (its `names`, at the declaration's token); that is left for later.
fn searchable(name: &str) -> bool {
    name.chars().nth(1).is_some()
}

/// A declaration-looking occurrence of a name.
struct Declaration {
    line: u32,
    column: u32,
    /// Leading whitespace of its line.
    indent: usize,
}

/// Lines longer than this are minified code: their declarations are not looked for (the
/// same short name is declared many times on such a line, and the first is seldom the one).
const MAX_LINE: usize = 500;

/// Every declaration-looking occurrence of `name`, in order, in one pass over `source`: a
/// keyword before it on its line (with only a destructuring pattern, other names or `export`
/// between), or a function's parameter list around it. Text only, no parser: one-letter
/// names and long lines are not searched (see [`searchable`], [`MAX_LINE`]).
fn declarations<'a>(source: &'a str, name: &'a str) -> impl Iterator<Item = Declaration> + 'a {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    const KEYWORDS: [&str; 7] = [
        "const",
        "let",
        "var",
        "function",
        "function*",
        "class",
        "import",
    ];
    source
        .lines()
        .enumerate()
        .filter(move |(_, line)| searchable(name) && line.len() <= MAX_LINE && line.contains(name))
        .flat_map(move |(n, line)| {
            let code = code_of(line);
            let indent = code.len() - code.trim_start().len();
            code.match_indices(name).filter_map(move |(i, _)| {
                let (before, after) = (&code[..i], &code[i + name.len()..]);
                if before.chars().next_back().is_some_and(is_ident)
                    || after.chars().next().is_some_and(is_ident)
                {
                    return None;
                }
                let keyword = KEYWORDS.iter().any(|k| {
                    before
                        .split(|c: char| !is_ident(c) && c != '*')
                        .any(|w| w == *k)
                }) && !before.contains('=')
                    && !before.contains('(');
                // `function f(a, name)`, `(a, name) => …`, `name => …`.
                let open = before.rfind('(').filter(|&o| !before[o..].contains(')'));
                let parameter = after.trim_start().starts_with("=>")
                    || open.is_some_and(|o| {
                        let close = after.find(')');
                        let tail = close.map(|c| after[c + 1..].trim_start());
                        before[..o].contains("function")
                            || tail.is_some_and(|t| t.starts_with("=>") || t.starts_with('{'))
                    });
                (keyword || parameter).then(|| Declaration {
                    line: n as u32 + 1,
                    column: before.chars().count() as u32 + 1,
                    indent,
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_classified_by_name() {
        assert_eq!(Origin::of_script("/srv/app/server.js"), Origin::App);
        assert_eq!(Origin::of_script("file:///srv/app/server.mjs"), Origin::App);
        assert_eq!(
            Origin::of_script("/srv/app/node_modules/node-cache/lib/node_cache.js"),
            Origin::Library
        );
        assert_eq!(Origin::of_script("node:internal/timers"), Origin::Runtime);
        assert_eq!(Origin::of_script("node:zlib"), Origin::Runtime);
        assert_eq!(Origin::of_script("events.js"), Origin::Runtime);
        assert_eq!(Origin::of_script(""), Origin::Unknown);
        assert_eq!(Origin::of_script("C:\\app\\server.js"), Origin::App);
    }

    #[test]
    fn declarations_are_found_by_name() {
        let src = "'use strict';\n// quoteCache holds quotes\nconst NodeCache = require('node-cache');\n\nconst quoteCache = new NodeCache();\nfunction handler() { quoteCache.set(1, 2); }\nconst { a, quoteMap } = x;\nlet y = quoteCache;\n";
        assert_eq!(declaration(src, "quoteCache"), Some((5, 7)));
        assert_eq!(declaration(src, "handler"), Some((6, 10)));
        assert_eq!(declaration(src, "quoteMap"), Some((7, 12)));
        // One-letter names are a minifier's: not searched (the first `y` is seldom the one).
        assert_eq!(declaration(src, "y"), None);
        assert_eq!(declaration(src, "NodeCache"), Some((3, 7)));
        assert_eq!(declaration(src, "quote"), None);
        assert_eq!(declaration(src, ""), None);
        let esm = "import get from 'lodash.get';\nimport { a as b, sessions } from './s.js';\n";
        assert_eq!(declaration(esm, "get"), Some((1, 8)));
        assert_eq!(declaration(esm, "sessions"), Some((2, 18)));
    }

    #[test]
    fn a_class_is_declared_where_its_keyword_is() {
        let src = "class Other {}\nclass Order extends Base {\n  x = 1;\n  constructor(id) {\n    super();\n  }\n}\nexports.Order = Order;\n";
        // V8 puts a class with a constructor at the constructor's `(`.
        assert_eq!(class_declaration(src, "Order", 4, 14), Some((2, 1)));
        // Elsewhere (a class without one is at its keyword already), nothing.
        assert_eq!(class_declaration(src, "Order", 2, 1), None);
        // Another class's constructor.
        assert_eq!(class_declaration(src, "Other", 4, 14), None);
        assert_eq!(class_declaration(src, "Order", 40, 1), None);
        let exported = "export default class Order {\n    constructor() {}\n}\n";
        assert_eq!(class_declaration(exported, "Order", 2, 16), Some((1, 16)));
        // The last class before the constructor on its own line, not the line's first.
        let two = "class Other {} class Order extends Base { constructor(id) {} }\n";
        assert_eq!(class_declaration(two, "Order", 1, 54), Some((1, 16)));
        assert_eq!(class_declaration(two, "Other", 1, 54), None);
        // A `//` in a string is not a comment (`split("//")` cut the class off).
        let url = "const base = \"http://localhost\"; class Order {\n  constructor() {}\n}\n";
        assert_eq!(class_declaration(url, "Order", 2, 14), Some((1, 34)));
        let commented = "// class Order {\nclass Other {\n  constructor() {}\n}\n";
        assert_eq!(class_declaration(commented, "Order", 3, 14), None);
    }

    /// esbuild 0.28's output for `export class Session { … constructor(user: string, n:
    /// number)` (lines 27–49 of leakhound's tests/sourcemaps/generated/esbuild/server.js).
    const ESBUILD: &str = r#"// src/session.ts
var Session = class {
  data;
  blob;
  constructor(user, n) {
    this.data = { user, created: Date.now(), tags: ["a", "b"] };
    this.blob = "x".repeat(200) + n;
  }
  describe() {
    return `${this.data.user}`;
  }
};
var SessionStore = class {
  sessions = /* @__PURE__ */ new Map();
  open(user, n) {
    const s = new Session(user, n);
    this.sessions.set(user + ":" + n, s);
    return s;
  }
  find(key) {
    return this.sessions.get(key);
  }
};
"#;

    /// rollup 4.68's CommonJS output (`rollup main.js --format cjs`) of a module with
    /// `export const Session = class { constructor(user, n) …` and `export class Store {
    /// constructor() … }`.
    const ROLLUP: &str = "'use strict';\n\nconst Session = class {\n  constructor(user, n) {\n    this.user = user;\n    this.n = n;\n  }\n};\nclass Store {\n  constructor() { this.sessions = new Map(); }\n}\n";

    #[test]
    fn a_class_expression_is_declared_where_its_keyword_is() {
        // esbuild: V8 puts `Session` at its constructor's `(` (5:14); the class is at 2:15.
        assert_eq!(class_declaration(ESBUILD, "Session", 5, 14), Some((2, 15)));
        // SessionStore has no constructor: V8's position is its `class` keyword already.
        assert_eq!(class_declaration(ESBUILD, "SessionStore", 13, 20), None);
        assert_eq!(class_declaration(ROLLUP, "Session", 4, 14), Some((3, 17)));
        assert_eq!(class_declaration(ROLLUP, "Store", 10, 14), Some((9, 1)));
        // Hand-written CommonJS: V8 names the class by what it is assigned to.
        let cjs = "exports.Session = class {\n  constructor(n) { this.n = n; }\n};\nmodule.exports.Other = class extends Object {\n  constructor(n) { super(); this.n = n; }\n};\n";
        assert_eq!(
            class_declaration(cjs, "exports.Session", 2, 14),
            Some((1, 19))
        );
        assert_eq!(class_declaration(cjs, "Session", 2, 14), Some((1, 19)));
        assert_eq!(
            class_declaration(cjs, "module.exports.Other", 5, 14),
            Some((4, 24))
        );
        // `let` and `const` too, a name given twice (tsc's decorated classes), a comment
        // between; not a comparison or an arrow.
        for (src, column) in [
            (
                "let Order = class extends Base {\n  constructor() {}\n}\n",
                13,
            ),
            ("let Order = class Order {\n  constructor() {}\n}\n", 13),
            (
                "Order = /* @__PURE__ */ class {\n  constructor() {}\n}\n",
                25,
            ),
        ] {
            assert_eq!(
                class_declaration(src, "Order", 2, 14),
                Some((1, column)),
                "{src}"
            );
        }
        for src in [
            "if (Order == class {\n  constructor() {}\n}) {}\n",
            "const f = () => class {\n  constructor() {}\n}\n",
        ] {
            assert_eq!(class_declaration(src, "Order", 2, 14), None, "{src}");
        }
    }

    #[test]
    fn minified_code_is_not_searched() {
        // One-letter names: a minifier's, the class found by text could be another.
        let min = "var o=class{constructor(e,n){this.a=e}};\n";
        assert_eq!(class_declaration(min, "o", 1, 24), None);
        // Long lines, the constructor's or one on the way up.
        let long = format!(
            "var Order = class {{{}constructor(e) {{}} }};\n",
            " ".repeat(600)
        );
        assert_eq!(class_declaration(&long, "Order", 1, 631), None);
        let between = format!(
            "var Order = class {{\n  x = \"{}\";\n  constructor() {{}}\n}};\n",
            "a".repeat(600)
        );
        assert_eq!(class_declaration(&between, "Order", 3, 14), None);
        let vars = format!("const cache = new Map();{}\n", " ".repeat(600));
        assert_eq!(declaration(&vars, "cache"), None);
        // webpack's production bundle (review 16): `e` is its module cache at column 257 and
        // the store later; a one-letter name is not searched at all.
        let wp = "(()=>{\"use strict\";var e={196:(e,s)=>{}},s={};function t(o){var r=s[o];return r}const e=new(t(196).SessionStore)})();\n";
        assert_eq!(declaration(wp, "e"), None);
        assert_eq!(declaration_before(wp, "e", 1), None);
    }

    #[test]
    fn a_module_variable_is_the_unindented_one() {
        let src = "function f() {\n  const cache = {};\n}\nconst cache = new Map();\n";
        assert_eq!(declaration(src, "cache"), Some((4, 7)));
    }

    #[test]
    fn a_scope_variable_is_the_last_before_its_functions() {
        let src = "const store = 1;\nfunction makeCache(load, store) {\n  const profiles = {};\n  return { get() { return profiles; } };\n}\nconst f = (items) => () => items;\nconst g = rows => () => rows;\n";
        assert_eq!(declaration_before(src, "profiles", 4), Some((3, 9)));
        assert_eq!(declaration_before(src, "store", 4), Some((2, 26)));
        assert_eq!(declaration_before(src, "items", 6), Some((6, 12)));
        assert_eq!(declaration_before(src, "rows", 7), Some((7, 11)));
        assert_eq!(declaration_before(src, "profiles", 2), None);
        // A `//` in a string is not a comment: the parameter after it is found.
        let url = "const stores = [];\napp.get(\"http://h/x\", (stores) => () => stores);\n";
        assert_eq!(declaration_before(url, "stores", 2), Some((2, 24)));
    }
}
