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
    summary: OnceLock<Vec<heapsnap::ClassRow>>,
    findings: OnceLock<Vec<heapsnap::findings::Finding>>,
}

impl Snapshot {
    fn new(loaded: Loaded) -> Snapshot {
        Snapshot {
            loaded,
            retainers: OnceLock::new(),
            summary: OnceLock::new(),
            findings: OnceLock::new(),
        }
    }

    /// Incoming edges of every node (built on first use: 8 bytes per edge).
    pub fn retainers(&self) -> &Retainers {
        self.retainers
            .get_or_init(|| Retainers::new(&self.loaded.snapshot))
    }

    /// The Summary rows, by retained size (computed on first use: every page reads them).
    pub fn summary(&self) -> &[heapsnap::ClassRow] {
        let l = &self.loaded;
        self.summary
            .get_or_init(|| heapsnap::summary(&l.snapshot, &l.analysis))
    }

    /// The findings (computed on first use).
    pub fn findings(&self) -> &[heapsnap::findings::Finding] {
        let l = &self.loaded;
        self.findings.get_or_init(|| {
            heapsnap::findings::findings(
                &l.snapshot,
                &l.analysis,
                &heapsnap::findings::Thresholds::default(),
            )
        })
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

/// The cache. Its lock is held only to look up, insert and evict: a snapshot is read under a
/// lock of its own (per file), so two calls never read one file twice at once, and a call on a
/// kept snapshot never waits behind another file being read.
pub struct Cache {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: Vec<Entry>,
    /// The files being read now, each with the lock its readers wait on.
    loading: Vec<(PathBuf, Arc<Mutex<()>>)>,
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
                loading: Vec::new(),
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
        if let Some(kept) = self.peek_key(&key) {
            return Ok((kept, Hit::Cached));
        }
        // One reader per file: later callers wait here, then find it kept.
        let file_lock = {
            let mut inner = self.lock();
            match inner.loading.iter().find(|(p, _)| *p == key.path) {
                Some((_, lock)) => lock.clone(),
                None => {
                    let lock = Arc::new(Mutex::new(()));
                    inner.loading.push((key.path.clone(), lock.clone()));
                    lock
                }
            }
        };
        let _reading = file_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = self.peek_key(&key) {
            return Ok((kept, Hit::Cached));
        }
        let loaded = load(path, false);
        let mut inner = self.lock();
        inner.loading.retain(|(p, _)| *p != key.path);
        let snapshot = Arc::new(Snapshot::new(loaded?));
        inner.clock += 1;
        let now = inner.clock;
        // An older version of the same file is of no use any more.
        inner.entries.retain(|e| e.key.path != key.path);
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
        Ok(self.peek_key(&Key::of(path)?))
    }

    fn peek_key(&self, key: &Key) -> Option<Arc<Snapshot>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.iter_mut().find(|e| e.key == *key).map(|e| {
            e.last_used = now;
            e.snapshot.clone()
        })
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
