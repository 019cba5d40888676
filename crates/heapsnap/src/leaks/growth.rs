//! What grew at every step of a series: classes, and collections whose growth keeps pace
//! with the load.

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::{Census, CollectionGrowth, Growth, OwnerFinder, Settings};
use crate::analysis::Analysis;
use crate::model::{NodeIdx, Snapshot};

/// Classes and collections that grew at every step of the series.
pub(super) fn growth(
    earlier: &[Census],
    (s, a): (&Snapshot, &Analysis),
    final_classes: &FxHashMap<&[u8], u64>,
    finder: &OwnerFinder,
    entries_now: &[(NodeIdx, u32)],
    settings: &Settings,
) -> (Vec<Growth>, Vec<CollectionGrowth>) {
    let top = settings.top;
    // Growth below `min_count` in all is noise (V8's own caches add a few entries).
    let rising = |xs: &[u64]| super::rising(xs) && xs[xs.len() - 1] - xs[0] >= settings.min_count;
    // V8's own bookkeeping (compiled code, hidden classes) grows while a process warms up: it
    // is no class a person can act on.
    let v8_own = |name: &[u8]| {
        matches!(name, b"(compiled code)" | b"(system)" | b"(object shape)")
            || name.starts_with(b"system / ")
    };
    let mut classes: Vec<Growth> = final_classes
        .iter()
        .filter(|&(&name, _)| !v8_own(name))
        .filter_map(|(&name, &n)| {
            let mut series: Vec<u64> = earlier.iter().map(|c| c.class_count(name)).collect();
            series.push(n);
            rising(&series).then(|| Growth {
                class: String::from_utf8_lossy(name).into_owned(),
                counts: series,
            })
        })
        .collect();
    let delta = |xs: &[u64]| xs.last().copied().unwrap_or(0) - xs.first().copied().unwrap_or(0);
    classes.sort_by(|x, y| {
        delta(&y.counts)
            .cmp(&delta(&x.counts))
            .then_with(|| x.class.cmp(&y.class))
    });
    classes.truncate(top);

    let mut grown: Vec<(NodeIdx, Vec<u32>, bool)> = entries_now
        .par_iter()
        .filter_map(|&(v, now)| {
            let id = s.nodes.id[v];
            // Most collections did not grow by the noise floor: no series for them.
            let first = earlier[0].entries(id)?;
            if u64::from(now.saturating_sub(first)) < settings.min_count {
                return None;
            }
            let mut series = Vec::with_capacity(earlier.len() + 1);
            for c in earlier {
                series.push(c.entries(id)?);
            }
            series.push(now);
            let app = finder.paths.reaches(v);
            keeps_pace(&series, app, settings).then_some((v, series, app))
        })
        .collect();
    grown.sort_by_key(|(v, e, _)| (std::cmp::Reverse(e[e.len() - 1] - e[0]), *v));
    // One row per field, not per instance: three hundred leaked sinks each growing their own
    // `auditLines` are `AuditSink.auditLines` × 300. Named in order of growth, up to a bound.
    const MAX_NAMED: usize = 10_000;
    let mut collections: Vec<CollectionGrowth> = Vec::new();
    for (v, entries, app) in grown.into_iter().take(MAX_NAMED) {
        let path = finder.path(s, a, v);
        let name = if path.is_empty() {
            String::new()
        } else {
            finder.holder(s, a, &path, path.len() - 1).name
        };
        let class = s.strings.get(a.class[v]).into_owned();
        let full = collections.len() >= top;
        match collections
            .iter_mut()
            .find(|c| c.name == name && c.class == class)
        {
            Some(row) => row.instances += 1,
            None if !full => collections.push(CollectionGrowth {
                name,
                class,
                id: s.nodes.id[v],
                entries,
                app,
                instances: 1,
            }),
            None => {}
        }
    }
    (classes, collections)
}

/// Whether a collection's entry counts grew with the load rather than by chance: in every
/// step, by `min_count` in all; when the requests of each step are known, by at least one
/// entry per hundred requests in each step, at a steady rate per request for Node's own
/// collections; when they are not, Node's own collections must grow steadily (no step more
/// than four times another: `8 → 9 → 16` is a list that grew by chance).
fn keeps_pace(series: &[u32], app: bool, settings: &Settings) -> bool {
    let steps: Vec<u64> = series
        .windows(2)
        .map(|w| u64::from(w[1]).saturating_sub(u64::from(w[0])))
        .collect();
    let total = u64::from(series[series.len() - 1]).saturating_sub(u64::from(series[0]));
    if steps.contains(&0) || total < settings.min_count {
        return false;
    }
    let (low, high) = (
        steps.iter().copied().min().unwrap_or(0),
        steps.iter().copied().max().unwrap_or(0),
    );
    if settings.requests.len() == steps.len() {
        let per_request = |i: usize| steps[i] as f64 / settings.requests[i].max(1) as f64;
        let rates: Vec<f64> = (0..steps.len()).map(per_request).collect();
        let (min, max) = rates
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        min >= 0.01 && (app || max <= 4.0 * min)
    } else {
        app || high <= 4 * low
    }
}

#[cfg(test)]
mod tests {
    use super::keeps_pace;
    use crate::leaks::Settings;

    #[test]
    fn collections_grow_with_the_load_or_are_noise() {
        let unknown = Settings::default();
        // Node's own list that grew by chance, and one that grew too little in all.
        assert!(!keeps_pace(&[8, 9, 16], false, &unknown));
        assert!(!keeps_pace(&[100, 105, 110], true, &unknown));
        // The app's collection, and Node's growing steadily.
        assert!(keeps_pace(&[300, 1_800, 3_300], true, &unknown));
        assert!(keeps_pace(&[300, 1_800, 3_300], false, &unknown));
        assert!(!keeps_pace(&[300, 310, 3_300], false, &unknown));
        // With the requests known: a share of them in each step.
        let load = Settings {
            requests: vec![1_500, 1_500],
            ..Settings::default()
        };
        assert!(keeps_pace(&[100, 1_600, 3_100], false, &load));
        assert!(!keeps_pace(&[8, 9, 40], false, &load));
        assert!(!keeps_pace(&[8, 9, 40], true, &load));
        assert!(keeps_pace(&[0, 40, 80], true, &load));
    }
}
