//! Source maps: where a position in compiled or bundled code (`dist/server.js:40:5`) came from
//! (`src/orders.ts:42:7`), for the reports of TypeScript and bundled services.
//!
//! A script's map is the one its last `//# sourceMappingURL=` comment names (a file relative
//! to the script, or the map itself inline as a `data:application/json;base64,` URL), else
//! `FILE.map` beside the script. Each script's map is looked for once per run, and each map
//! file read once. A map that exists but cannot be read or decoded costs one warning on
//! stderr and leaves the generated positions alone; a map that is named but absent (packages
//! often ship the comment without the file) is passed over in silence, as is no map at all.
//!
//! The mapping format (VLQ mappings, `sourceRoot`, index maps, data URLs) is read with
//! getsentry's `sourcemap` crate: the code Sentry resolves JavaScript stack traces with, so it
//! meets every bundler's output at scale and is kept up; it needs only serde besides.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use heapsnap::code::Original;
use sourcemap::{DecodedMap, SourceMap, SourceMapRef, Token};

use crate::sources::{MAX_SCRIPT_BYTES, path_of};

/// Maps larger than this are not read (with a warning).
const MAX_MAP_BYTES: u64 = 256 << 20;

/// How much of the end of a script too large to read whole is searched for its comment.
const TAIL_BYTES: u64 = 64 << 10;

/// The source maps of a run's scripts, read on demand and kept.
pub struct SourceMaps {
    cache: Mutex<Cache>,
    warn: Box<dyn Fn(&str) + Send + Sync>,
}

#[derive(Default)]
struct Cache {
    /// By script name as V8 gives it: its map, once looked for (`None`: none that can be used).
    scripts: HashMap<String, Option<Arc<Map>>>,
    /// By map file: several scripts can name one map, which is read (and warned about) once.
    files: HashMap<PathBuf, Option<Arc<Map>>>,
}

/// A decoded map and the directory its relative sources are resolved against.
struct Map {
    map: SourceMap,
    base: PathBuf,
}

impl Default for SourceMaps {
    fn default() -> SourceMaps {
        SourceMaps::with_warnings(|w| eprintln!("warning: {w}"))
    }
}

impl SourceMaps {
    /// Warnings go to `warn` (stderr in the binary; tests collect them).
    pub fn with_warnings(warn: impl Fn(&str) + Send + Sync + 'static) -> SourceMaps {
        SourceMaps {
            cache: Mutex::default(),
            warn: Box::new(warn),
        }
    }

    /// Where 1-based `line`:`column` of `script` (a path or `file://` URL) came from.
    pub fn original(&self, script: &str, line: u32, column: u32) -> Option<Original> {
        // The lock is held while a map is read: scripts are few, and a map is read once.
        let map = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.scripts.get(script) {
                Some(map) => map.clone(),
                None => {
                    let map = self.find(&mut cache, script);
                    cache.scripts.insert(script.to_owned(), map.clone());
                    map
                }
            }
        }?;
        // V8's positions are 1-based here; a map's lines and columns are 0-based.
        let token = token_at(&map.map, line.checked_sub(1)?, column.saturating_sub(1))?;
        Some(Original {
            source: resolve(&map.base, token.get_source()?),
            line: token.get_src_line().checked_add(1)?,
            column: token.get_src_col().checked_add(1)?,
        })
    }

    /// The map of `script`: its comment's, else `FILE.map` beside it.
    fn find(&self, cache: &mut Cache, script: &str) -> Option<Arc<Map>> {
        let path = path_of(script)?;
        let dir = path.parent()?.to_owned();
        match comment(&path) {
            Some(url) if url.starts_with("data:") => {
                let decoded = guarded(|| sourcemap::decode_data_url(&url));
                match decoded.and_then(regular) {
                    Ok(map) => Some(Arc::new(Map { map, base: dir })),
                    Err(e) => {
                        (self.warn)(&format!(
                            "the inline source map of {script} is ignored ({e}): its positions stay in the generated code"
                        ));
                        None
                    }
                }
            }
            Some(url) => {
                let file = SourceMapRef::Ref(url).resolve_path(&path)?;
                self.file(cache, file, script)
            }
            None => {
                let mut beside = path.into_os_string();
                beside.push(".map");
                self.file(cache, PathBuf::from(beside), script)
            }
        }
    }

    /// Map file `path`, named for `script`; read once.
    fn file(&self, cache: &mut Cache, path: PathBuf, script: &str) -> Option<Arc<Map>> {
        if let Some(map) = cache.files.get(&path) {
            return map.clone();
        }
        let map = match read_map(&path) {
            Ok(Some(map)) => Some(Arc::new(Map {
                map,
                base: path.parent().map_or_else(PathBuf::new, Path::to_owned),
            })),
            Ok(None) => None,
            Err(e) => {
                (self.warn)(&format!(
                    "the source map {} of {script} is ignored ({e}): its positions stay in the generated code",
                    path.display()
                ));
                None
            }
        };
        cache.files.insert(path, map.clone());
        map
    }
}

/// The map file at `path`: `None` when there is none, an error when it is there but cannot be
/// used.
fn read_map(path: &Path) -> Result<Option<SourceMap>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.len() > MAX_MAP_BYTES {
        return Err(format!(
            "{} MiB, more than the {} MiB read",
            meta.len() >> 20,
            MAX_MAP_BYTES >> 20
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    guarded(|| sourcemap::decode_slice(&bytes))
        .and_then(regular)
        .map(Some)
}

/// Runs a decoder of untrusted input so that a panic in it is an error like any other.
fn guarded(decode: impl FnOnce() -> sourcemap::Result<DecodedMap>) -> Result<DecodedMap, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(decoded) => decoded.map_err(|e| e.to_string()),
        Err(_) => Err("the decoder failed on it".into()),
    }
}

/// One flat map: an index map's sections are joined (they must be inline), React Native's
/// Hermes maps are plain maps with more fields.
fn regular(decoded: DecodedMap) -> Result<SourceMap, String> {
    match decoded {
        DecodedMap::Regular(map) => Ok(map),
        DecodedMap::Index(index) => {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| index.flatten()))
                .map_err(|_| "its sections could not be joined".to_owned())?
                .map_err(|e| e.to_string())
        }
        DecodedMap::Hermes(hermes) => Ok(SourceMap::clone(&hermes)),
    }
}

/// The URL of the script's last `//# sourceMappingURL=` comment (the spec's: a bundle can
/// contain other modules' comments before it). Scripts too large to read whole are searched
/// at their end.
fn comment(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut bytes = Vec::new();
    let cut = len > MAX_SCRIPT_BYTES;
    if cut {
        file.seek(SeekFrom::Start(len - TAIL_BYTES)).ok()?;
    }
    file.take(MAX_SCRIPT_BYTES).read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.lines();
    if cut {
        // The first line of the tail can be the end of a longer one.
        lines.next();
    }
    lines
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("//# sourceMappingURL=")
                .or_else(|| l.strip_prefix("//@ sourceMappingURL="))
        })
        .map(|url| url.trim().to_owned())
        .next_back()
        .filter(|url| !url.is_empty())
}

/// The mapping that covers 0-based `line`:`column` of the generated code: the last one that
/// starts at or before it on its line, else the first one after it on the line (V8 puts a
/// function at its parameters' parenthesis, which a compiler may not map). Mappings of other
/// lines are not used: they would name the wrong statement.
fn token_at(map: &SourceMap, line: u32, column: u32) -> Option<Token<'_>> {
    let count = map.get_token_count() as usize;
    // The first token after the position, by binary search (tokens are sorted by position).
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if map.get_token(mid)?.get_dst() <= (line, column) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let on_line = |t: &Token| t.get_dst_line() == line;
    let before = (0..lo)
        .rev()
        .map_while(|i| map.get_token(i).filter(on_line))
        .find(Token::has_source);
    before.or_else(|| {
        (lo..count)
            .map_while(|i| map.get_token(i).filter(on_line))
            .find(Token::has_source)
    })
}

/// A map's name for a source made a path when it is one: relative names are taken from the
/// map's directory (`sourceRoot` is already in front of them), `file://` URLs decoded; other
/// URLs (`webpack://app/src/a.ts`) are kept as the map gives them.
fn resolve(base: &Path, source: &str) -> String {
    if source.starts_with("file://") {
        if let Some(path) = path_of(source) {
            return normalize(&path).to_string_lossy().into_owned();
        }
        return source.to_owned();
    }
    let scheme = source.split_once(':').is_some_and(|(s, _)| {
        s.len() > 1
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if scheme {
        return source.to_owned();
    }
    normalize(&base.join(source)).to_string_lossy().into_owned()
}

/// `a/b/../c` → `a/c`, without touching the file system (the source need not exist here).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A map of `generated.js` (two lines) onto `../src/a.ts`: generated 0:0 → 2:0, 0:6 →
    /// 2:13 (name), 1:4 → 7:2.
    const MAP: &str = r#"{"version":3,"file":"generated.js","sources":["../src/a.ts"],"names":[],"mappings":"AAEA,MAAa;IAKX"}"#;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "leakhound-sourcemaps-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("dist")).unwrap();
        dir
    }

    /// A resolver counting its warnings.
    fn maps() -> (SourceMaps, Arc<AtomicUsize>) {
        let warnings = Arc::new(AtomicUsize::new(0));
        let seen = warnings.clone();
        let maps = SourceMaps::with_warnings(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        (maps, warnings)
    }

    fn at(o: Option<Original>) -> Option<(String, u32, u32)> {
        o.map(|o| (o.source, o.line, o.column))
    }

    #[test]
    fn a_map_named_by_the_comment_relative_to_the_script() {
        let dir = temp_dir("comment");
        std::fs::create_dir_all(dir.join("maps")).unwrap();
        std::fs::write(dir.join("maps/out.map"), MAP).unwrap();
        let script = dir.join("dist/generated.js");
        std::fs::write(
            &script,
            "class A { x = 1 }\n    y();\n//# sourceMappingURL=../maps/out.map\n",
        )
        .unwrap();
        let (maps, warnings) = maps();
        let name = script.to_str().unwrap();
        let ts = dir.join("src/a.ts").to_string_lossy().into_owned();
        // 1-based in, 1-based out: generated 1:1 is the map's 0:0 → 2:0, i.e. 3:1.
        assert_eq!(at(maps.original(name, 1, 1)), Some((ts.clone(), 3, 1)));
        // Between two mappings of a line: the one before.
        assert_eq!(at(maps.original(name, 1, 9)), Some((ts.clone(), 3, 14)));
        // Before the line's first mapping: the first after it, never the line above's.
        assert_eq!(at(maps.original(name, 2, 1)), Some((ts.clone(), 8, 3)));
        // A line without mappings has no original.
        assert_eq!(at(maps.original(name, 3, 1)), None);
        assert_eq!(at(maps.original(name, 0, 1)), None);
        // `../src/a.ts` is taken from the map's directory, `maps/`, not from the script's.
        let url = format!("file://{}", name.replace(' ', "%20"));
        assert_eq!(at(maps.original(&url, 1, 1)), Some((ts, 3, 1)));
        assert_eq!(warnings.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_inline_map_and_a_map_beside_the_script() {
        let dir = temp_dir("inline");
        let inline = dir.join("dist/inline.js");
        let data =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, MAP.as_bytes());
        std::fs::write(
            &inline,
            format!(
                "class A {{ x = 1 }}\n//# sourceMappingURL=data:application/json;base64,{data}\n"
            ),
        )
        .unwrap();
        let beside = dir.join("dist/beside.js");
        std::fs::write(&beside, "class A { x = 1 }\n").unwrap();
        std::fs::write(dir.join("dist/beside.js.map"), MAP).unwrap();
        let (maps, warnings) = maps();
        // An inline map's sources are relative to the script.
        let ts = dir.join("src/a.ts").to_string_lossy().into_owned();
        for script in [&inline, &beside] {
            assert_eq!(
                at(maps.original(script.to_str().unwrap(), 1, 7)),
                Some((ts.clone(), 3, 14)),
                "{}",
                script.display()
            );
        }
        assert_eq!(warnings.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn missing_and_broken_maps() {
        let dir = temp_dir("broken");
        let (maps, warnings) = maps();
        // No file, no map, a map named but absent: nothing, quietly.
        let plain = dir.join("dist/plain.js");
        std::fs::write(&plain, "let x = 1;\n").unwrap();
        let absent = dir.join("dist/absent.js");
        std::fs::write(&absent, "let x = 1;\n//# sourceMappingURL=absent.js.map\n").unwrap();
        for script in [
            dir.join("dist/nowhere.js").to_str().unwrap(),
            plain.to_str().unwrap(),
            absent.to_str().unwrap(),
            "node:internal/timers",
            "",
        ] {
            assert_eq!(at(maps.original(script, 1, 1)), None, "{script}");
        }
        assert_eq!(warnings.load(Ordering::SeqCst), 0);
        // A broken map, named by two scripts and asked about many times: one warning.
        std::fs::write(dir.join("dist/shared.map"), "{ not json").unwrap();
        for name in ["one.js", "two.js"] {
            std::fs::write(
                dir.join("dist").join(name),
                "let x = 1;\n//# sourceMappingURL=shared.map\n",
            )
            .unwrap();
            for line in 1..4 {
                let script = dir.join("dist").join(name);
                assert_eq!(at(maps.original(script.to_str().unwrap(), line, 1)), None);
            }
        }
        assert_eq!(warnings.load(Ordering::SeqCst), 1);
        // A broken inline map, and mappings that are not VLQ: one warning each.
        let inline = dir.join("dist/inline.js");
        std::fs::write(
            &inline,
            "let x = 1;\n//# sourceMappingURL=data:application/json;base64,!!!\n",
        )
        .unwrap();
        let bad = dir.join("dist/bad.js");
        std::fs::write(&bad, "let x = 1;\n").unwrap();
        std::fs::write(
            dir.join("dist/bad.js.map"),
            r#"{"version":3,"sources":["a.ts"],"names":[],"mappings":"AA"}"#,
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(at(maps.original(inline.to_str().unwrap(), 1, 1)), None);
            assert_eq!(at(maps.original(bad.to_str().unwrap(), 1, 1)), None);
        }
        assert_eq!(warnings.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn each_map_is_read_once() {
        let dir = temp_dir("cache");
        let script = dir.join("dist/generated.js");
        std::fs::write(&script, "class A { x = 1 }\n").unwrap();
        std::fs::write(dir.join("dist/generated.js.map"), MAP).unwrap();
        let (maps, _) = maps();
        let name = script.to_str().unwrap();
        assert!(maps.original(name, 1, 1).is_some());
        // Gone from disk: the map read first still answers.
        std::fs::remove_file(dir.join("dist/generated.js.map")).unwrap();
        std::fs::remove_file(&script).unwrap();
        assert!(maps.original(name, 1, 7).is_some());
    }

    #[test]
    fn sources_are_resolved_as_paths_when_they_are_paths() {
        let base = Path::new("/srv/app/dist");
        assert_eq!(resolve(base, "../src/a.ts"), "/srv/app/src/a.ts");
        assert_eq!(resolve(base, "./b.ts"), "/srv/app/dist/b.ts");
        assert_eq!(resolve(base, "/abs/c.ts"), "/abs/c.ts");
        assert_eq!(resolve(base, "file:///x/my%20d.ts"), "/x/my d.ts");
        assert_eq!(
            resolve(base, "webpack://app/./src/e.ts"),
            "webpack://app/./src/e.ts"
        );
    }

    #[test]
    fn the_last_comment_counts_and_the_end_of_a_huge_script_is_searched() {
        let dir = temp_dir("last");
        let script = dir.join("dist/bundle.js");
        std::fs::write(
            &script,
            "//# sourceMappingURL=first.map\nx();\n//# sourceMappingURL=last.map\n//# sourceURL=bundle.js\n",
        )
        .unwrap();
        assert_eq!(comment(&script).as_deref(), Some("last.map"));
        let huge = dir.join("dist/huge.js");
        let mut text = "x();\n".repeat((MAX_SCRIPT_BYTES / 5 + 1) as usize);
        text.push_str("//# sourceMappingURL=huge.js.map\n");
        std::fs::write(&huge, text).unwrap();
        assert_eq!(comment(&huge).as_deref(), Some("huge.js.map"));
    }
}
