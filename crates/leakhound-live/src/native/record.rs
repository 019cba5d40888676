//! Reading a recording of the native allocation tracker (`leakhound-preload`'s `dump` module
//! writes it): one directory per process, each with `stacks.txt` and `dump-NNNNNN.txt` files.

use std::fs;
use std::path::{Path, PathBuf};

use crate::smaps::{Region, parse_header};

/// The first line of every dump (`leakhound_preload::dump::FORMAT`).
pub const FORMAT: &str = "leakhound-native 1";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}:{line}: {what}; the file is damaged or not a leakhound native recording (record again with `leakhound native -- CMD`)",
        path.display()
    )]
    Bad {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error(
        "{} holds no native recording (no PID directories with dumps); give the `native` directory of a hunt or of `leakhound native -- CMD`",
        .0.display()
    )]
    Empty(PathBuf),
}

/// One process's recording.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub dir: PathBuf,
    /// Return addresses by stack id, innermost first.
    pub stacks: Vec<Vec<u64>>,
    /// In the order they were written.
    pub dumps: Vec<Dump>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MallInfo {
    /// Bytes glibc took from the system with brk/sbrk.
    pub arena: u64,
    /// Bytes in blocks glibc mmap'd on their own.
    pub mmapped: u64,
    /// Bytes in use in the arenas.
    pub in_use: u64,
    /// Bytes free inside the arenas (fragmentation or reserve).
    pub free: u64,
    /// Free bytes at the top of the main arena, releasable.
    pub releasable: u64,
}

/// A stack's counters in one dump. Bytes and objects are estimates (sums of sample weights).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StackCounters {
    pub id: u32,
    pub live_bytes: u64,
    pub live_objects: f64,
    pub alloc_bytes: u64,
    pub alloc_objects: f64,
    pub live_samples: u64,
    pub samples: u64,
    /// Live bytes by age: < 1 min, 1–5 min, 5–30 min, > 30 min.
    pub ages: [u64; 4],
}

#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub seq: u64,
    pub token: Option<String>,
    /// Written at exit.
    pub last: bool,
    pub time_ms: u64,
    pub unix_ms: u64,
    /// The mean sampling interval in bytes when the dump was written.
    pub interval: u64,
    pub configured_interval: u64,
    pub halvings: u32,
    pub dropped: u64,
    /// `on`, `off`, or `failed: why`.
    pub state: String,
    pub rss: u64,
    /// The size of the `[heap]` mapping (brk).
    pub heap: u64,
    /// The tracker's own tables in RAM.
    pub tracker_rss: u64,
    pub mallinfo: MallInfo,
    /// Bytes of `/tmp/perf-PID.map` written when the dump was.
    pub perf_map: u64,
    pub cmdline: String,
    pub stacks: Vec<StackCounters>,
    /// Executable mappings.
    pub maps: Vec<Region>,
}

impl Dump {
    pub fn live_bytes(&self) -> u64 {
        self.stacks.iter().map(|s| s.live_bytes).sum()
    }

    pub fn stack(&self, id: u32) -> Option<&StackCounters> {
        self.stacks
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &self.stacks[i])
    }
}

/// Every process recorded under `dir` (a directory of PID directories, or one PID directory),
/// by PID.
pub fn read(dir: &Path) -> Result<Vec<Process>, RecordError> {
    let io = |source| RecordError::Io {
        path: dir.to_owned(),
        source,
    };
    if dir.join("stacks.txt").exists() || has_dumps(dir) {
        return Ok(vec![read_process(dir)?]);
    }
    let mut processes = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if path.is_dir()
            && entry.file_name().to_string_lossy().parse::<u32>().is_ok()
            && has_dumps(&path)
        {
            processes.push(read_process(&path)?);
        }
    }
    if processes.is_empty() {
        return Err(RecordError::Empty(dir.to_owned()));
    }
    processes.sort_by_key(|p| p.pid);
    Ok(processes)
}

fn has_dumps(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("dump-")))
    })
}

/// One PID directory.
pub fn read_process(dir: &Path) -> Result<Process, RecordError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RecordError::Io { path, source }
    };
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("dump-"))
        })
        .collect();
    names.sort();
    let mut dumps = Vec::with_capacity(names.len());
    for path in &names {
        let text = fs::read_to_string(path).map_err(io(path))?;
        dumps.push(parse_dump(&text, path)?);
    }
    let stacks_path = dir.join("stacks.txt");
    let stacks = match fs::read_to_string(&stacks_path) {
        Ok(text) => parse_stacks(&text, &stacks_path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(&stacks_path)(e)),
    };
    let known = stacks.len();
    for (dump, path) in dumps.iter().zip(&names) {
        if let Some(s) = dump
            .dump
            .stacks
            .iter()
            .find(|s| s.id as usize >= known.max(1))
        {
            return Err(RecordError::Bad {
                path: stacks_path.clone(),
                line: known + 1,
                what: format!(
                    "{} counts stack {}, which this file does not have ({known} stacks)",
                    path.display(),
                    s.id
                ),
            });
        }
    }
    let pid = dumps.first().map(|d| d.pid_hint).unwrap_or_default();
    Ok(Process {
        pid,
        dir: dir.to_owned(),
        stacks,
        dumps: dumps.into_iter().map(|d| d.dump).collect(),
    })
}

struct Parsed {
    pid_hint: u32,
    dump: Dump,
}

/// `stacks.txt`: `ID ADDR…` per line, ids dense from 0. A last line cut short by a process
/// killed mid-write is dropped; anything else malformed is an error.
pub fn parse_stacks(text: &str, path: &Path) -> Result<Vec<Vec<u64>>, RecordError> {
    let mut stacks = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if i + 1 == lines.len() && !complete {
            break;
        }
        let bad = |what: String| RecordError::Bad {
            path: path.to_owned(),
            line: i + 1,
            what,
        };
        let mut fields = line.split(' ');
        let id: usize = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad(format!("expected a stack id, found {line:?}")))?;
        if id != stacks.len() {
            return Err(bad(format!(
                "expected stack {}, found stack {id}",
                stacks.len()
            )));
        }
        let frames = fields
            .map(|f| {
                u64::from_str_radix(f, 16)
                    .map_err(|_| bad(format!("expected a hex address, found {f:?}")))
            })
            .collect::<Result<Vec<u64>, _>>()?;
        stacks.push(frames);
    }
    Ok(stacks)
}

fn parse_dump(text: &str, path: &Path) -> Result<Parsed, RecordError> {
    let mut lines = text.lines().enumerate().peekable();
    let bad = |line: usize, what: String| RecordError::Bad {
        path: path.to_owned(),
        line: line + 1,
        what,
    };
    match lines.next() {
        Some((_, FORMAT)) => {}
        Some((_, other)) => return Err(bad(0, format!("expected {FORMAT:?}, found {other:?}"))),
        None => return Err(bad(0, "the file is empty".into())),
    }
    let mut dump = Dump::default();
    let mut pid = 0;
    let mut ended = false;
    while let Some((n, line)) = lines.next() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| bad(n, format!("expected a number after {key:?}, found {v:?}")))
        };
        match key {
            "pid" => pid = number(value)? as u32,
            "seq" => dump.seq = number(value)?,
            "token" => dump.token = (value != "-").then(|| value.to_owned()),
            "final" => dump.last = value == "1",
            "time_ms" => dump.time_ms = number(value)?,
            "unix_ms" => dump.unix_ms = number(value)?,
            "interval" => dump.interval = number(value)?,
            "configured_interval" => dump.configured_interval = number(value)?,
            "halvings" => dump.halvings = number(value)? as u32,
            "dropped" => dump.dropped = number(value)?,
            "state" => dump.state = value.to_owned(),
            "rss" => dump.rss = number(value)?,
            "heap" => dump.heap = number(value)?,
            "tracker_rss" => dump.tracker_rss = number(value)?,
            "perf_map" => dump.perf_map = number(value)?,
            "cmdline" => dump.cmdline = value.to_owned(),
            "mallinfo" => {
                let v: Vec<u64> = value.split(' ').map(number).collect::<Result<_, _>>()?;
                let [arena, mmapped, in_use, free, releasable] = v[..] else {
                    return Err(bad(
                        n,
                        format!("expected 5 mallinfo figures, found {}", v.len()),
                    ));
                };
                dump.mallinfo = MallInfo {
                    arena,
                    mmapped,
                    in_use,
                    free,
                    releasable,
                };
            }
            "stacks" => {
                let count = number(value)?;
                for _ in 0..count {
                    let Some((n, line)) = lines.next() else {
                        return Err(bad(
                            n,
                            format!("the file ends inside its {count} stack lines"),
                        ));
                    };
                    let v: Vec<u64> = line.split(' ').map(number).collect::<Result<_, _>>()?;
                    let [id, lb, lo, ab, ao, ls, s, a0, a1, a2, a3] = v[..] else {
                        return Err(bad(
                            n,
                            format!("expected 11 figures on a stack line, found {}", v.len()),
                        ));
                    };
                    dump.stacks.push(StackCounters {
                        id: id as u32,
                        live_bytes: lb,
                        live_objects: lo as f64 / 1000.0,
                        alloc_bytes: ab,
                        alloc_objects: ao as f64 / 1000.0,
                        live_samples: ls,
                        samples: s,
                        ages: [a0, a1, a2, a3],
                    });
                }
                dump.stacks.sort_by_key(|s| s.id);
            }
            "maps" => {
                let count = number(value)?;
                for _ in 0..count {
                    let Some((n, line)) = lines.next() else {
                        return Err(bad(
                            n,
                            format!("the file ends inside its {count} mapping lines"),
                        ));
                    };
                    dump.maps.push(parse_header(line).ok_or_else(|| {
                        bad(n, format!("expected a /proc/PID/maps line, found {line:?}"))
                    })?);
                }
            }
            "end" => {
                ended = true;
                break;
            }
            _ => {} // newer fields are skipped
        }
    }
    if !ended {
        return Err(bad(
            text.lines().count().saturating_sub(1),
            "the dump has no `end` line: it was cut short".into(),
        ));
    }
    Ok(Parsed {
        pid_hint: pid,
        dump,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "leakhound-native 1\npid 7\nseq 2\ntoken 3\nfinal 0\ntime_ms 1000\nunix_ms 5\ninterval 524288\nconfigured_interval 524288\nhalvings 0\ndropped 0\nstate on\nrss 100\nheap 50\nmallinfo 1 2 3 4 5\nperf_map 9\ncmdline node a.js\nstacks 2\n2 10 1000 20 2000 1 2 10 0 0 0\n1 0 0 5 500 0 1 0 0 0 0\nmaps 1\n00400000-00500000 r-xp 00001000 fe:00 12   /usr/bin/node\nend\n";

    #[test]
    fn reads_a_dump() {
        let parsed = parse_dump(DUMP, Path::new("d")).unwrap();
        let d = parsed.dump;
        assert_eq!(parsed.pid_hint, 7);
        assert_eq!(
            (d.seq, d.token.as_deref(), d.rss, d.mallinfo.free),
            (2, Some("3"), 100, 4)
        );
        assert_eq!(d.stacks.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(d.stack(2).unwrap().live_objects, 1.0);
        assert_eq!(d.maps[0].path, "/usr/bin/node");
        assert_eq!((d.maps[0].start, d.maps[0].offset), (0x400000, 0x1000));
    }

    #[test]
    fn damaged_dumps_are_clear_errors() {
        for (cut, expected) in [
            (
                DUMP.replace("leakhound-native 1", "something else"),
                "d:1: expected \"leakhound-native 1\"",
            ),
            (
                DUMP[..DUMP.find("1 0 0 5").unwrap()].to_owned(),
                "d:18: the file ends inside its 2 stack lines",
            ),
            (DUMP.replace("\nend\n", "\n"), "the dump has no `end` line"),
            (
                DUMP.replace("rss 100", "rss x"),
                "d:13: expected a number after \"rss\", found \"x\"",
            ),
            (
                DUMP.replace("2 10 1000 20 2000 1 2 10 0 0 0", "2 10"),
                "d:19: expected 11 figures",
            ),
            (String::new(), "the file is empty"),
        ] {
            let error = parse_dump(&cut, Path::new("d"))
                .err()
                .expect("an error")
                .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn a_stack_line_cut_by_a_kill_is_dropped() {
        let stacks = parse_stacks("0\n1 400010 400020\n2 4000", Path::new("s")).unwrap();
        assert_eq!(stacks, vec![vec![], vec![0x400010, 0x400020]]);
        let error = parse_stacks("0\n2 400010\n", Path::new("s"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("s:2: expected stack 1, found stack 2"),
            "{error}"
        );
        let error = parse_stacks("0\n1 zz\n", Path::new("s"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("expected a hex address"), "{error}");
    }
}
