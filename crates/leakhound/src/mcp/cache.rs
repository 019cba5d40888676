//! Loaded snapshots kept between tool calls, so that follow-up questions about one snapshot
//! (its summary, then an object, then its retainers) do not read it again.
//!
//! A snapshot is keyed by its canonical path, size and modification time: a file rewritten in
//! place is read again. Entries are evicted least recently used first to stay within a memory
//! budget; one that does not fit alone is answered from and then dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::Context;
use heapsnap::graph::Retainers;

use crate::load::{Loaded, load};

/// What identifies one version of a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl Key {
    pub fn of(path: &Path) -> anyhow::Result<Key> {
        let canonical = std::fs::canonicalize(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let meta = std::fs::metadata(&canonical)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if !meta.is_file() {
            anyhow::bail!("{} is not a file", path.display());
        }
        Ok(Key {
            path: canonical,
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// A loaded snapshot and what tools derived from it, each computed on first use.
pub struct Snapshot {
    pub loaded: Loaded,
    retainers: OnceLock<Retainers>,
}

impl Snapshot {
    /// Incoming edges of every node (built on first use: 8 bytes per edge).
    pub fn retainers(&self) -> &Retainers {
        self.retainers
            .get_or_init(|| Retainers::new(&self.loaded.snapshot))
    }

    /// The memory the snapshot holds, from its column lengths (a lower bound: the allocator's
    /// slack is not counted), plus the retainer index it will build.
    fn bytes(&self) -> u64 {
        let s = &self.loaded.snapshot;
        let (n, m) = (s.node_count() as u64, s.edge_count() as u64);
        // Node columns (type, name, id, size, first edge), edge columns (type, name, target),
        // the analysis' per-node arrays (class, distance, path edge, dominator, retained), the
        // strings, and the retainer index.
        n * (1 + 4 + 4 + 4 + 4)
            + m * (1 + 4 + 4)
            + n * (4 + 4 + 4 + 4 + 8)
            + s.strings.len() as u64 * 8
            + s.strings.bytes_len()
            + n * 4
            + m * 4
    }
}

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hit {
    /// Kept from an earlier call.
    Cached,
    /// Read now, and kept.
    Loaded,
    /// Read now, and not kept: it alone exceeds the budget.
    TooBigToKeep,
}

struct Entry {
    key: Key,
    snapshot: Arc<Snapshot>,
    bytes: u64,
    last_used: u64,
}

/// The cache. One lock: a call that reads a snapshot holds it, so two calls never read the
/// same file twice at once (MCP clients send one call at a time anyway).
pub struct Cache {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: Vec<Entry>,
    budget: u64,
    clock: u64,
    /// Answers computed over several snapshots (comparisons, leak reports), by their inputs'
    /// keys and settings; the newest few are kept.
    results: Vec<(String, Arc<serde_json::Value>)>,
}

/// Results kept (each is a few hundred KB of JSON at most).
const RESULTS_KEPT: usize = 16;

impl Cache {
    pub fn new(budget: u64) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                budget,
                clock: 0,
                results: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The snapshot at `path`, read and analysed unless a current copy is kept.
    pub fn get(&self, path: &Path) -> anyhow::Result<(Arc<Snapshot>, Hit)> {
        let key = Key::of(path)?;
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some(e) = inner.entries.iter_mut().find(|e| e.key == key) {
            e.last_used = now;
            return Ok((e.snapshot.clone(), Hit::Cached));
        }
        // An older version of the same file is of no use any more.
        inner.entries.retain(|e| e.key.path != key.path);
        let snapshot = Arc::new(Snapshot {
            loaded: load(path, false)?,
            retainers: OnceLock::new(),
        });
        let bytes = snapshot.bytes();
        if bytes > inner.budget {
            return Ok((snapshot, Hit::TooBigToKeep));
        }
        while inner.entries.iter().map(|e| e.bytes).sum::<u64>() + bytes > inner.budget {
            let oldest = (0..inner.entries.len())
                .min_by_key(|&i| inner.entries[i].last_used)
                .expect("the budget is exceeded only by entries");
            inner.entries.swap_remove(oldest);
        }
        inner.entries.push(Entry {
            key,
            snapshot: snapshot.clone(),
            bytes,
            last_used: now,
        });
        Ok((snapshot, Hit::Loaded))
    }

    /// The snapshot at `path` if a current copy is kept; never reads it.
    pub fn peek(&self, path: &Path) -> anyhow::Result<Option<Arc<Snapshot>>> {
        let key = Key::of(path)?;
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        Ok(inner.entries.iter_mut().find(|e| e.key == key).map(|e| {
            e.last_used = now;
            e.snapshot.clone()
        }))
    }

    /// A result kept under `key`, or computed by `compute` and kept.
    pub fn result(
        &self,
        key: String,
        compute: impl FnOnce() -> anyhow::Result<serde_json::Value>,
    ) -> anyhow::Result<(Arc<serde_json::Value>, bool)> {
        if let Some((_, v)) = self.lock().results.iter().find(|(k, _)| *k == key) {
            return Ok((v.clone(), true));
        }
        let value = Arc::new(compute()?);
        let mut inner = self.lock();
        if inner.results.len() >= RESULTS_KEPT {
            inner.results.remove(0);
        }
        inner.results.push((key, value.clone()));
        Ok((value, false))
    }
}
