//! A cluster as people read it: its main part, what leaked (the app's own class when one is
//! inside), who holds it, the path from the app's scope, its native memory and the app's
//! functions in it.

use super::{
    AppFunction, AppScope, Census, Cluster, MAX_FUNCTIONS, MAX_PARTS, OwnerFinder, Part, Sources,
    allocation_stack, group, path_steps,
};
use crate::analysis::Analysis;
use crate::code::{self, Origin};
use crate::graph;
use crate::model::{EdgeIdx, NodeIdx, Snapshot};

/// What a cluster's description needs.
pub(super) struct Describe<'a> {
    pub s: &'a Snapshot,
    pub a: &'a Analysis,
    pub finder: &'a OwnerFinder,
    pub earlier: &'a [Census],
    pub sources: &'a dyn Sources,
}

impl Describe<'_> {
    pub fn cluster(
        &self,
        g: &group::Group,
        inside: group::Inside,
        leaks: &group::Leaks,
        owners: &[NodeIdx],
    ) -> Cluster {
        let (s, a, finder) = (self.s, self.a, self.finder);
        let parts = group::parts(s, a, (&finder.paths, &finder.code), g, leaks);
        let grown_owners = group::distinct_owners(g, owners);
        // The main part: what the owners hold (a cache's entries, not the pooled ArrayBuffers
        // their Buffers share), the largest of those.
        let entry = |p: &group::PartMembers| {
            finder
                .paths
                .parent_edges(s, a, p.members[0])
                .map(|e| graph::edge_source(s, e))
                .find(|&u| !graph::is_store(s, u))
                .is_some_and(|u| grown_owners.binary_search(&u).is_ok())
        };
        let main = parts.iter().find(|p| entry(p)).unwrap_or(&parts[0]);
        let rep = main.members[0];
        let (mut path_edges, scope) = finder.paths.path_and_scope(s, a, rep);
        let mut owner = finder
            .locate(s, a, &self.earlier[0], &path_edges)
            .map(|at| {
                let path = (path_edges.as_slice(), scope);
                finder.describe(s, a, self.earlier, path, at, self.sources)
            });
        // The path people read starts at the app's scope when it goes through one: how that
        // scope is reached from the root is Node's business (and changes from run to run).
        let after_scope = |index: usize| owner.as_ref().is_none_or(|o| o.path_index > index);
        let scope = scope.filter(|&index| after_scope(index)).map(|index| {
            let context = s.edges.to[path_edges[index]];
            path_edges.drain(..=index);
            if let Some(o) = &mut owner {
                o.path_index -= index + 1;
            }
            let functions = finder.code.functions_of(context);
            AppScope {
                script: functions
                    .first()
                    .and_then(|&f| s.location(f))
                    .and_then(|l| finder.code.script_name(l.script_id))
                    .map(str::to_owned),
                module: finder.code.enclosing(s, context).is_none(),
                functions: functions
                    .iter()
                    .map(|&f| code::function_name(s, f))
                    .collect(),
            }
        });
        let holder = match grown_owners.as_slice() {
            [] | [_] => owner.as_ref().map(|o| o.holder.clone()),
            several => self.common_holder(several),
        };
        let what = self.what(main, &inside);
        // How many times it leaked: instances of what leaked (a logger leaked with two bound
        // functions is one leak, not two), else the main part's objects.
        let count = what.as_ref().map_or(main.members.len() as u64, |&(_, n)| n);
        let n = crate::findings::human_count(count);
        let grew = owner.as_ref().is_some_and(|o| o.grew);
        let headline = match (&what, &holder) {
            (Some((label, _)), Some(h)) => format!("{n} × {label} in {h}"),
            (Some((label, _)), None) => format!("{n} × {label}"),
            (None, Some(h)) if grew => format!("{n} new entries in {h}"),
            (None, Some(h)) => format!("{n} × {} held by {h}", main.label),
            (None, None) => format!("{n} × {}", main.label),
        };
        let main_function = main.function.zip(s.location(rep));
        Cluster {
            headline,
            class: s.strings.get(a.class[rep]).into_owned(),
            name: s.strings.get(s.nodes.name[rep]).into_owned(),
            count,
            retained_size: g.retained,
            native_size: inside.native_size,
            native: inside.native,
            shallow_size: g
                .members
                .iter()
                .map(|&i| u64::from(s.nodes.self_size[leaks.leaked[i as usize]]))
                .sum(),
            suspect: false,
            path: path_steps(s, a, &path_edges),
            scope,
            holder,
            owner,
            location: finder.class_location(s, a, rep, self.sources),
            allocation_stack: allocation_stack(s, rep),
            sample_ids: main
                .members
                .iter()
                .take(10)
                .map(|&v| s.nodes.id[v])
                .collect(),
            parts: parts
                .iter()
                .take(MAX_PARTS)
                .map(|p| Part {
                    label: p.label.clone(),
                    class: s.strings.get(p.class).into_owned(),
                    count: p.members.len() as u64,
                    retained_size: p.retained,
                })
                .collect(),
            functions: inside
                .functions
                .into_iter()
                .filter(|f| Some((f.name, f.location)) != main_function)
                .take(MAX_FUNCTIONS)
                .map(|f| AppFunction {
                    name: code::function_name(s, f.first),
                    location: finder.code.source(f.location),
                    count: f.count,
                })
                .collect(),
            class_counts: Vec::new(),
        }
    }

    /// What leaked, as people know it, and how many: the main part when the app defines it;
    /// else the app's own class inside the cluster that retains most; else the main part if
    /// its class names code (`Deflate`); else a named class inside that most units hold.
    /// `None` when only generic objects leaked (`{v}`, `(string)`): then the holder names it.
    fn what(&self, main: &group::PartMembers, inside: &group::Inside) -> Option<(String, u64)> {
        let units = main.members.len() as u64;
        let main_class = self.s.strings.get(main.class);
        let main_generic = code::is_generic(&main_class) && main.function.is_none();
        let main_named = (main.label.clone(), units);
        if main.origin == Origin::App && !main_generic {
            return Some(main_named);
        }
        let best = |app: bool| {
            inside
                .classes
                .iter()
                .filter(|c| !app || c.origin == Origin::App)
                .max_by_key(|c| (c.retained, c.count))
        };
        if let Some(c) = best(true) {
            return Some((c.label.clone(), c.count));
        }
        if !main_generic {
            return Some(main_named);
        }
        best(false)
            .filter(|c| c.count * 2 >= units)
            .map(|c| (c.label.clone(), c.count))
    }

    /// What holds several owners: the deepest node their shown paths share, named as the code
    /// names it (`Sink._events` for listener arrays `error`, `close`…).
    fn common_holder(&self, owners: &[NodeIdx]) -> Option<String> {
        let (s, a, finder) = (self.s, self.a, self.finder);
        let paths: Vec<Vec<EdgeIdx>> = owners
            .iter()
            .take(16)
            .map(|&o| finder.path(s, a, o))
            .collect();
        let first = &paths[0];
        let shared = (0..first.len())
            .take_while(|&i| paths.iter().all(|p| p.get(i) == Some(&first[i])))
            .count();
        let node = s.edges.to[first[shared.checked_sub(1)?]];
        let class = s.strings.get(a.class[node]);
        // A class instance holds them all: it is what people know (`InterceptorManager`).
        if !code::is_generic(&class)
            && !finder.code.is_context(s, node)
            && !graph::is_store(s, node)
        {
            return Some(graph::display_class(&class).into_owned());
        }
        Some(finder.holder(s, a, first, shared - 1).name)
    }
}
