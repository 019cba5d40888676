//! Source maps: where a position in compiled or bundled code (`dist/server.js:40:5`) came from
//! (`src/orders.ts:42:7`), for the reports of TypeScript and bundled services.
//!
//! A script's map is the one its last `//# sourceMappingURL=` comment names (a file relative
//! to the script, or the map itself inline as a `data:application/json` URL, base64 or
//! percent-encoded), else `FILE.map` beside the script; `FILE.map` also when the comment names
//! an http(s) URL (leakhound fetches nothing) or a file that is not there (`tsc --mapRoot`,
//! maps uploaded elsewhere and downloaded beside the script). Each script's map is looked for
//! once per run, and each map file read once. A map that exists but cannot be read or decoded
//! costs one warning on stderr and leaves the generated positions alone, as does a URL with no
//! `FILE.map` to fall back on; a map file that is named but absent (packages often ship the
//! comment without the file) is passed over in silence, as is no map at all.
//!
//! A position's original is the mapping at or before it on its generated line (as Sentry's
//! and the `source-map` package's `originalPositionFor`); sources are shown as paths when
//! they are files, `webpack://` ones included (see [`resolve`]). Names stay as the code that
//! ran has them: a minified bundle's could be turned back through the map's `names`, which
//! is left for later.
//!
//! The mapping format (VLQ mappings, `sourceRoot`, index maps) is read with getsentry's
//! `sourcemap` crate: the code Sentry resolves JavaScript stack traces with, so it meets every
//! bundler's output at scale and is kept up; it needs only serde besides.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use heapsnap::code::Original;
use sourcemap::{DecodedMap, SourceMap, SourceMapRef, Token};

use crate::sources::{MAX_SCRIPT_BYTES, path_of};

/// Maps larger than this are not read (with a warning).
const MAX_MAP_BYTES: u64 = 256 << 20;

/// How much of the end of a script too large to read whole is searched for its comment.
const TAIL_BYTES: u64 = 64 << 10;

/// How many columns before its line's first mapping a position still takes that mapping:
/// V8 puts a function at the `(` of its parameters, which a compiler may leave unmapped
/// while it maps the next token.
const AFTER_COLUMNS: u32 = 4;

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
    /// Each source as shown (see [`resolve`]), worked out when first asked for: `webpack://`
    /// sources cost a few file look-ups.
    sources: Vec<OnceLock<Option<String>>>,
}

impl Map {
    fn new(map: SourceMap, base: PathBuf) -> Map {
        let sources = (0..map.get_source_count())
            .map(|_| OnceLock::new())
            .collect();
        Map { map, base, sources }
    }

    /// Source `id` as a path when it is a file, else as the map names it; `None` for a source
    /// without a name.
    fn source(&self, id: u32) -> Option<String> {
        self.sources
            .get(id as usize)?
            .get_or_init(|| {
                let cwd = std::env::current_dir().ok();
                resolve(&self.base, self.map.get_source(id)?, cwd.as_deref())
            })
            .clone()
    }
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
            source: map.source(token.get_src_id())?,
            line: token.get_src_line().checked_add(1)?,
            column: token.get_src_col().checked_add(1)?,
        })
    }

    /// The map of `script`: its comment's, else `FILE.map` beside it; `FILE.map` also when the
    /// comment names a URL leakhound does not fetch or a file that is not there.
    fn find(&self, cache: &mut Cache, script: &str) -> Option<Arc<Map>> {
        let path = path_of(script)?;
        let dir = path.parent()?.to_owned();
        let mut beside = path.clone().into_os_string();
        beside.push(".map");
        let beside = PathBuf::from(beside);
        let Some(url) = comment(&path) else {
            return self.file(cache, beside, script);
        };
        if url
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("data:"))
        {
            let decoded = data_url(&url).and_then(|json| decode(&json));
            return match decoded {
                Ok(map) => Some(Arc::new(Map::new(map, dir))),
                Err(e) => {
                    (self.warn)(&format!(
                        "the inline source map of {script} is ignored ({e}): its positions stay in the generated code"
                    ));
                    None
                }
            };
        }
        // A relative path, an absolute one or a `file://` URL: a file when it is one here.
        let named = SourceMapRef::Ref(url.clone()).resolve_path(&path);
        if let Some(file) = named.as_ref().filter(|f| f.is_file()) {
            return self.file(cache, file.clone(), script);
        }
        if beside.is_file() {
            return self.file(cache, beside, script);
        }
        if named.is_none() && has_scheme(&url) {
            (self.warn)(&format!(
                "{} names its source map at {url}, which leakhound does not fetch: put it at {}",
                path.display(),
                beside.display()
            ));
        }
        None
    }

    /// Map file `path`, named for `script`; read once.
    fn file(&self, cache: &mut Cache, path: PathBuf, script: &str) -> Option<Arc<Map>> {
        if let Some(map) = cache.files.get(&path) {
            return map.clone();
        }
        let map = match read_map(&path) {
            Ok(Some(map)) => Some(Arc::new(Map::new(
                map,
                path.parent().map_or_else(PathBuf::new, Path::to_owned),
            ))),
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
    decode(&bytes).map(Some)
}

/// A map's JSON decoded into one flat map; a UTF-8 byte-order mark before it is skipped.
fn decode(json: &[u8]) -> Result<SourceMap, String> {
    let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
    guarded(|| sourcemap::decode_slice(json)).and_then(regular)
}

/// The bytes of a `data:` URL: `data:application/json;base64,…` or, percent-encoded,
/// `data:application/json;charset=utf-8,…` (the media type's parameters are not checked: the
/// JSON decoder has the last word).
fn data_url(url: &str) -> Result<Vec<u8>, String> {
    let (meta, data) = url[5..]
        .split_once(',')
        .ok_or("a data URL without a comma")?;
    let data = percent_decoded(data.trim().as_bytes());
    if meta
        .split(';')
        .any(|p| p.trim().eq_ignore_ascii_case("base64"))
    {
        base64(&data)
    } else {
        Ok(data)
    }
}

/// `%7B` → `{`; a `%` without two hex digits stays as it is.
fn percent_decoded(data: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match (
            data[i],
            data.get(i + 1).and_then(|&b| hex(b)),
            data.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padded or not, whitespace skipped.
fn base64(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => {
                return Err(format!("the data URL is not base64: {:?}", char::from(b)));
            }
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Whether `url` starts with a URL scheme (`https:`, `webpack:`), not a path.
fn has_scheme(url: &str) -> bool {
    url.split_once(':').is_some_and(|(s, _)| {
        s.len() > 1
            && s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
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
/// starts at or before it on its line, and none when that one has no source (generated code
/// the map leaves unmapped, such as a bundler's helpers after a module: it is not the module's
/// last statement). Before the line's first mapping, that mapping if it starts within
/// [`AFTER_COLUMNS`]. Mappings of other lines are not used: they would name the wrong
/// statement.
fn token_at(map: &SourceMap, line: u32, column: u32) -> Option<Token<'_>> {
    // The first token after the position, by binary search (tokens are sorted by position).
    let (mut lo, mut hi) = (0, map.get_token_count() as usize);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if map.get_token(mid)?.get_dst() <= (line, column) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if let Some(before) = lo.checked_sub(1).and_then(|i| map.get_token(i))
        && before.get_dst_line() == line
    {
        return before.has_source().then_some(before);
    }
    map.get_token(lo).filter(|after| {
        after.get_dst_line() == line
            && after.get_dst_col() - column <= AFTER_COLUMNS
            && after.has_source()
    })
}

/// A map's name for a source, shown as a path when it is one; `None` for no name (`null` or
/// `""`, which a map with `sourcesContent` may give a virtual module: joined to the map's
/// directory, it would name the directory). Relative names are taken from the map's
/// directory `base` (`sourceRoot` is already in front of them), `file://` URLs decoded;
/// `webpack://` ones become the file they name when it is there (see [`webpack`]); other
/// URLs are kept as the map gives them.
fn resolve(base: &Path, source: &str, cwd: Option<&Path>) -> Option<String> {
    // `sourceRoot` + a null source is the root with a slash: a directory too.
    if source.is_empty() || source.ends_with('/') {
        return None;
    }
    if source.starts_with("file://") {
        if let Some(path) = path_of(source) {
            return Some(normalize(&path).to_string_lossy().into_owned());
        }
        return Some(source.to_owned());
    }
    if let Some(rest) = source.strip_prefix("webpack://") {
        return Some(webpack(base, rest, cwd).unwrap_or_else(|| source.to_owned()));
    }
    if has_scheme(source) {
        return Some(source.to_owned());
    }
    Some(normalize(&base.join(source)).to_string_lossy().into_owned())
}

/// The file a `webpack://NAMESPACE/PATH` source names (`webpack:///./src/a.ts`,
/// `webpack://app/../src/a.ts`), `rest` being what follows `webpack://`. PATH is relative to
/// webpack's context, usually the project's root: the map's directory or one of its
/// ancestors, nearest first, else the current directory; the first that has the file gives
/// it. `None` when none has it (`webpack:///webpack/bootstrap`, `external "http"`).
fn webpack(base: &Path, rest: &str, cwd: Option<&Path>) -> Option<String> {
    let (_namespace, path) = rest.split_once('/')?;
    // webpack 4 adds `?hash` to some modules' names.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if path.is_empty() {
        return None;
    }
    let found = base
        .ancestors()
        .filter(|dir| !dir.as_os_str().is_empty())
        .chain(cwd)
        .map(|dir| normalize(&dir.join(path)))
        .find(|file| file.is_absolute() && file.is_file())?;
    Some(found.to_string_lossy().into_owned())
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

    /// A resolver keeping its warnings.
    fn resolver() -> (SourceMaps, Warnings) {
        let warnings = Warnings::default();
        let seen = warnings.clone();
        let maps = SourceMaps::with_warnings(move |w| seen.0.lock().unwrap().push(w.to_owned()));
        (maps, warnings)
    }

    #[derive(Clone, Default)]
    struct Warnings(Arc<Mutex<Vec<String>>>);

    impl Warnings {
        fn count(&self) -> usize {
            self.0.lock().unwrap().len()
        }

        fn all(&self) -> Vec<String> {
            self.0.lock().unwrap().clone()
        }
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
        let (maps, warnings) = resolver();
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
        assert_eq!(warnings.count(), 0);
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
        let (maps, warnings) = resolver();
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
        assert_eq!(warnings.count(), 0);
    }

    #[test]
    fn missing_and_broken_maps() {
        let dir = temp_dir("broken");
        let (maps, warnings) = resolver();
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
        assert_eq!(warnings.count(), 0);
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
        assert_eq!(warnings.count(), 1);
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
        assert_eq!(warnings.count(), 3);
    }

    #[test]
    fn each_map_is_read_once() {
        let dir = temp_dir("cache");
        let script = dir.join("dist/generated.js");
        std::fs::write(&script, "class A { x = 1 }\n").unwrap();
        std::fs::write(dir.join("dist/generated.js.map"), MAP).unwrap();
        let (maps, _) = resolver();
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
        let resolve = |source| resolve(base, source, None);
        assert_eq!(resolve("../src/a.ts").unwrap(), "/srv/app/src/a.ts");
        assert_eq!(resolve("./b.ts").unwrap(), "/srv/app/dist/b.ts");
        assert_eq!(resolve("/abs/c.ts").unwrap(), "/abs/c.ts");
        assert_eq!(resolve("file:///x/my%20d.ts").unwrap(), "/x/my d.ts");
        // Not files here: kept as the map names them.
        assert_eq!(
            resolve("webpack://app/./src/e.ts").unwrap(),
            "webpack://app/./src/e.ts"
        );
        assert_eq!(resolve("https://cdn/x.ts").unwrap(), "https://cdn/x.ts");
        // No name (`null` in the map, `""`, or only a `sourceRoot`): no source, not the
        // map's directory.
        for none in ["", "src/", "webpack://app/"] {
            assert_eq!(resolve(none), None, "{none:?}");
        }
    }

    /// Real bundler output (tests/sourcemaps/generated, see its README) copied into `dir`:
    /// the TypeScript sources under `dir/src`, `bundle` (`esbuild`, `webpack`, `webpack-prod`)
    /// under `dir/dist`. The generated script's path.
    fn generated(dir: &Path, bundle: &str) -> PathBuf {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sourcemaps/generated");
        std::fs::create_dir_all(dir.join("src")).unwrap();
        for ts in ["session.ts", "server.ts"] {
            std::fs::copy(from.join("src").join(ts), dir.join("src").join(ts)).unwrap();
        }
        let mut script = None;
        for entry in std::fs::read_dir(from.join(bundle)).unwrap() {
            let path = entry.unwrap().path();
            let to = dir.join("dist").join(path.file_name().unwrap());
            std::fs::copy(&path, &to).unwrap();
            if path.extension().is_some_and(|e| e == "js") {
                script = Some(to);
            }
        }
        script.unwrap()
    }

    /// esbuild's map with `edit` made to its JSON.
    fn esbuild_map(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sourcemaps/generated/esbuild/server.js.map");
        let mut map: serde_json::Value =
            serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
        edit(&mut map);
        map.to_string()
    }

    /// esbuild's `var SessionStore = class {` (39:20), `export class SessionStore` (26:8).
    const STORE: (u32, u32) = (39, 20);

    fn store_at(maps: &SourceMaps, script: &Path) -> Option<(String, u32, u32)> {
        at(maps.original(script.to_str().unwrap(), STORE.0, STORE.1))
    }

    #[test]
    fn null_or_empty_sources_give_no_original() {
        let dir = temp_dir("null-sources");
        let script = generated(&dir, "esbuild");
        let session_ts = dir.join("src/session.ts").to_string_lossy().into_owned();
        let (maps, warnings) = resolver();
        assert_eq!(store_at(&maps, &script), Some((session_ts, 26, 8)));
        // A map with `sourcesContent` but no names for its sources (virtual modules).
        for (n, sources) in [serde_json::json!([null, null]), serde_json::json!(["", ""])]
            .into_iter()
            .enumerate()
        {
            for root in [None, Some("src/")] {
                let map = esbuild_map(|m| {
                    m["sources"] = sources.clone();
                    if let Some(root) = root {
                        m["sourceRoot"] = root.into();
                    }
                });
                std::fs::write(dir.join("dist/server.js.map"), map).unwrap();
                let (maps, _) = resolver();
                assert_eq!(store_at(&maps, &script), None, "{n} {root:?}");
            }
        }
        assert_eq!(warnings.count(), 0);
    }

    #[test]
    fn webpack_sources_are_files_when_they_are_there() {
        let dir = temp_dir("webpack");
        let script = generated(&dir, "webpack");
        let name = script.to_str().unwrap();
        let src = |ts: &str| dir.join("src").join(ts).to_string_lossy().into_owned();
        let (maps, warnings) = resolver();
        // `webpack:///./src/session.ts`: webpack's context is the map's parent directory.
        assert_eq!(
            at(maps.original(name, 27, 1)),
            Some((src("session.ts"), 26, 1))
        );
        assert_eq!(
            at(maps.original(name, 98, 7)),
            Some((src("server.ts"), 5, 7))
        );
        // webpack's own code is no file: its URL stays.
        assert_eq!(
            at(maps.original(name, 61, 11)),
            Some(("webpack:///webpack/bootstrap".to_owned(), 7, 1))
        );
        // The sources are not there: the URLs as webpack wrote them.
        std::fs::remove_dir_all(dir.join("src")).unwrap();
        let (maps, _) = resolver();
        assert_eq!(
            at(maps.original(name, 27, 1)),
            Some(("webpack:///./src/session.ts".to_owned(), 26, 1))
        );
        assert_eq!(warnings.count(), 0);

        // `sourceRoot: "webpack://app/"` before esbuild's `../src/session.ts`.
        let dir = temp_dir("webpack-root");
        let script = generated(&dir, "esbuild");
        let map = esbuild_map(|m| m["sourceRoot"] = "webpack://app/".into());
        std::fs::write(dir.join("dist/server.js.map"), map).unwrap();
        let (maps, _) = resolver();
        let session_ts = dir.join("src/session.ts").to_string_lossy().into_owned();
        assert_eq!(store_at(&maps, &script), Some((session_ts, 26, 8)));

        // Relative to the current directory when no ancestor of the map's has the file.
        let cwd = temp_dir("webpack-cwd");
        std::fs::create_dir_all(cwd.join("src")).unwrap();
        std::fs::write(cwd.join("src/only-here.ts"), "").unwrap();
        let base = Path::new("/nonexistent/dist");
        assert_eq!(
            resolve(base, "webpack://app/./src/only-here.ts", Some(&cwd)),
            Some(cwd.join("src/only-here.ts").to_string_lossy().into_owned())
        );
        assert_eq!(
            resolve(base, "webpack:///./src/only-here.ts?a3f2", Some(&cwd)),
            Some(cwd.join("src/only-here.ts").to_string_lossy().into_owned())
        );
    }

    /// esbuild's script with its `sourceMappingURL` comment made `comment`.
    fn with_comment(script: &Path, comment: &str) {
        let text = std::fs::read_to_string(script).unwrap();
        let (code, last) = text.trim_end().rsplit_once('\n').unwrap();
        assert!(last.starts_with("//# sourceMappingURL="), "{last}");
        std::fs::write(script, format!("{code}\n{comment}\n")).unwrap();
    }

    #[test]
    fn a_url_or_an_absent_file_falls_back_to_the_map_beside() {
        let dir = temp_dir("fallback");
        let script = generated(&dir, "esbuild");
        let session_ts = dir.join("src/session.ts").to_string_lossy().into_owned();
        let url = "https://maps.example.com/server.js.map";
        for comment in [
            format!("//# sourceMappingURL={url}"),
            // `tsc --mapRoot ../maps/` with the maps kept beside the scripts.
            "//# sourceMappingURL=../maps/server.js.map".to_owned(),
        ] {
            with_comment(&script, &comment);
            let (maps, warnings) = resolver();
            assert_eq!(
                store_at(&maps, &script),
                Some((session_ts.clone(), 26, 8)),
                "{comment}"
            );
            assert_eq!(warnings.count(), 0, "{comment}");
        }
        // No map beside either: a URL is said once; an absent file is passed over quietly.
        std::fs::remove_file(dir.join("dist/server.js.map")).unwrap();
        let (maps, warnings) = resolver();
        for _ in 0..3 {
            assert_eq!(store_at(&maps, &script), None);
        }
        let name = script.display();
        assert_eq!(warnings.all(), Vec::<String>::new());
        with_comment(&script, &format!("//# sourceMappingURL={url}"));
        let (maps, warnings) = resolver();
        for _ in 0..3 {
            assert_eq!(store_at(&maps, &script), None);
        }
        assert_eq!(
            warnings.all(),
            [format!(
                "{name} names its source map at {url}, which leakhound does not fetch: put it at {name}.map"
            )]
        );
    }

    /// `%XX` for every byte but letters, digits and `-_.~` (Python's `urllib.parse.quote`).
    fn percent_encoded(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    #[test]
    fn a_byte_order_mark_and_data_urls_that_are_not_base64() {
        let dir = temp_dir("bom");
        let script = generated(&dir, "esbuild");
        let session_ts = dir.join("src/session.ts").to_string_lossy().into_owned();
        let json = esbuild_map(|_| {});
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(json.as_bytes());
        std::fs::write(dir.join("dist/server.js.map"), bom).unwrap();
        let (maps, warnings) = resolver();
        assert_eq!(store_at(&maps, &script), Some((session_ts.clone(), 26, 8)));
        std::fs::remove_file(dir.join("dist/server.js.map")).unwrap();
        let b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, json.as_bytes());
        for url in [
            format!(
                "data:application/json;charset=utf-8,{}",
                percent_encoded(&json)
            ),
            format!("data:application/json,{}", percent_encoded(&json)),
            format!("data:application/json;charset=utf-8;base64,{b64}"),
            format!("data:application/json;base64,{}", b64.trim_end_matches('=')),
        ] {
            with_comment(&script, &format!("//# sourceMappingURL={url}"));
            let (maps, _) = resolver();
            assert_eq!(
                store_at(&maps, &script),
                Some((session_ts.clone(), 26, 8)),
                "{}",
                &url[..40]
            );
        }
        assert_eq!(warnings.count(), 0);
        assert_eq!(percent_decoded(b"%7b%"), b"{%");
        assert_eq!(base64(b"e30=").unwrap(), b"{}");
        assert!(base64(b"!!").is_err());
    }

    #[test]
    fn unmapped_code_has_no_original() {
        // webpack's production bundle: one line, its own wrapper code between the modules
        // left unmapped.
        let dir = temp_dir("unmapped");
        let script = generated(&dir, "webpack-prod");
        let name = script.to_str().unwrap();
        let src = |ts: &str| dir.join("src").join(ts).to_string_lossy().into_owned();
        let (maps, _) = resolver();
        // `class t{` and its constructor's `(`, and `e=new(t(196).SessionStore)`.
        assert_eq!(
            at(maps.original(name, 1, 58)),
            Some((src("session.ts"), 12, 1))
        );
        assert_eq!(
            at(maps.original(name, 1, 87)),
            Some((src("session.ts"), 16, 3))
        );
        assert_eq!(
            at(maps.original(name, 1, 545)),
            Some((src("server.ts"), 5, 7))
        );
        // The `(` of webpack's `611(s){…}` module function and of the `(()=>{…})()` around
        // the entry module: unmapped, not the module before's last statement.
        assert_eq!(at(maps.original(name, 1, 359)), None);
        assert_eq!(at(maps.original(name, 1, 524)), None);
        // The bundle's first characters, 57 columns before the first mapping: not the class.
        assert_eq!(at(maps.original(name, 1, 1)), None);
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
