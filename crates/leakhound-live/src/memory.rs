//! The memory of a process over time: what one sample holds, split by who allocated it.
//!
//! `smaps` fills [`Breakdown`]s, `watch` and `hunt` collect [`Sample`]s, `timeline` finds trends.

use serde::{Deserialize, Serialize};

/// Resident memory (RSS, bytes) by component, from a classification of `/proc/PID/smaps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// V8's heap pages: anonymous mappings V8 marks `MADV_DONTFORK` (`dc` in VmFlags).
    pub v8_heap: u64,
    /// glibc malloc: the brk `[heap]` and the per-thread arenas.
    pub malloc_heap: u64,
    /// Other anonymous memory: large ArrayBuffers and malloc's mmapped chunks, addon arenas.
    pub other_anon: u64,
    /// File-backed mappings: the node binary, libraries, mapped files.
    pub file_backed: u64,
    /// The main stack and thread stacks.
    pub stacks: u64,
}

/// One component of a [`Breakdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    V8Heap,
    MallocHeap,
    OtherAnon,
    FileBacked,
    Stacks,
}

impl Component {
    pub const ALL: [Component; 5] = [
        Component::V8Heap,
        Component::MallocHeap,
        Component::OtherAnon,
        Component::FileBacked,
        Component::Stacks,
    ];

    /// `v8_heap`, as in JSON, CSV columns and metric labels.
    pub fn key(self) -> &'static str {
        match self {
            Component::V8Heap => "v8_heap",
            Component::MallocHeap => "malloc_heap",
            Component::OtherAnon => "other_anon",
            Component::FileBacked => "file_backed",
            Component::Stacks => "stacks",
        }
    }

    /// `V8 heap`, for people.
    pub fn label(self) -> &'static str {
        match self {
            Component::V8Heap => "V8 heap",
            Component::MallocHeap => "malloc heap",
            Component::OtherAnon => "other anonymous",
            Component::FileBacked => "file-backed/code",
            Component::Stacks => "stacks",
        }
    }
}

impl Breakdown {
    pub fn get(&self, c: Component) -> u64 {
        match c {
            Component::V8Heap => self.v8_heap,
            Component::MallocHeap => self.malloc_heap,
            Component::OtherAnon => self.other_anon,
            Component::FileBacked => self.file_backed,
            Component::Stacks => self.stacks,
        }
    }

    pub fn get_mut(&mut self, c: Component) -> &mut u64 {
        match c {
            Component::V8Heap => &mut self.v8_heap,
            Component::MallocHeap => &mut self.malloc_heap,
            Component::OtherAnon => &mut self.other_anon,
            Component::FileBacked => &mut self.file_backed,
            Component::Stacks => &mut self.stacks,
        }
    }

    pub fn total(&self) -> u64 {
        Component::ALL.iter().map(|&c| self.get(c)).sum()
    }
}

/// V8's own figures, read through the inspector (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V8Stats {
    pub heap_used: u64,
    pub heap_total: u64,
    /// Memory of C++ objects bound to JS objects, ArrayBuffers included.
    pub external: u64,
    pub array_buffers: u64,
}

/// One sample of one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the watch started.
    pub t: f64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    pub pid: u32,
    /// From `/proc/PID/status`, every sample.
    pub rss: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub swap: u64,
    /// From `/proc/PID/smaps`, on the samples where it was read (less often: it costs more).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub breakdown: Option<Breakdown>,
    /// From the inspector, when one is reachable.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub v8: Option<V8Stats>,
    /// Taken soon after a heap snapshot by leakhound: the snapshot leaves freed memory resident
    /// in malloc, so trends leave this sample out.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub after_snapshot: bool,
}

impl Sample {
    /// The names of [`Sample::figures`], in their order (CSV columns, metric labels).
    pub const FIGURES: [&'static str; 13] = [
        "rss",
        "rss_anon",
        "rss_file",
        "swap",
        "v8_heap",
        "malloc_heap",
        "other_anon",
        "file_backed",
        "stacks",
        "v8_heap_used",
        "v8_heap_total",
        "v8_external",
        "v8_array_buffers",
    ];

    /// Every figure of the sample by name, `None` where this sample has none (no smaps read,
    /// no inspector), in the order of [`Sample::FIGURES`].
    pub fn figures(&self) -> [(&'static str, Option<u64>); 13] {
        let b = |c: Component| self.breakdown.map(|b| b.get(c));
        let v = |f: fn(&V8Stats) -> u64| self.v8.as_ref().map(f);
        let values = [
            Some(self.rss),
            Some(self.rss_anon),
            Some(self.rss_file),
            Some(self.swap),
            b(Component::V8Heap),
            b(Component::MallocHeap),
            b(Component::OtherAnon),
            b(Component::FileBacked),
            b(Component::Stacks),
            v(|v| v.heap_used),
            v(|v| v.heap_total),
            v(|v| v.external),
            v(|v| v.array_buffers),
        ];
        std::array::from_fn(|i| (Sample::FIGURES[i], values[i]))
    }
}
