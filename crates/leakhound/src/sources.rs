//! What the script files say beyond the snapshot: their text, for the declarations that leak
//! reports point at (a snapshot keeps only the first 1,024 characters of each script, and
//! `heapsnap` reads no files), and their source maps, for original positions.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use std::collections::HashMap;

use heapsnap::code::Original;

use crate::sourcemaps::SourceMaps;

/// Scripts larger than this are not read (a bundle's declarations are found in its first
/// characters or not at all).
pub(crate) const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Reads scripts named by path or `file://` URL, once each. `heapsnap` uses the text only if
/// its start matches the snapshot's copy, so a file changed since the snapshot is not trusted.
/// One `Disk` serves a whole run, so each script and each source map is read once.
pub struct Disk {
    read: Mutex<HashMap<String, Option<String>>>,
    /// Whether each script's file is the code that ran (see [`Disk::ran_here`]).
    ran: Mutex<HashMap<String, bool>>,
    /// Where warnings go.
    warn: std::sync::Arc<dyn Fn(&str) + Send + Sync>,
    /// `None` with `--no-source-maps`.
    maps: Option<SourceMaps>,
}

impl Default for Disk {
    /// Source maps on.
    fn default() -> Disk {
        Disk::new(true)
    }
}

impl Disk {
    pub fn new(source_maps: bool) -> Disk {
        Disk::warning_to(source_maps, |w| eprintln!("warning: {w}"))
    }

    /// Source maps on; warnings (a map that cannot be read, a file that is not the code that
    /// ran) go to `warn` instead of stderr: the MCP server puts them in its answers.
    pub fn with_warnings(warn: impl Fn(&str) + Send + Sync + 'static) -> Disk {
        Disk::warning_to(true, warn)
    }

    fn warning_to(source_maps: bool, warn: impl Fn(&str) + Send + Sync + 'static) -> Disk {
        let warn: std::sync::Arc<dyn Fn(&str) + Send + Sync> = std::sync::Arc::new(warn);
        Disk {
            read: Mutex::default(),
            ran: Mutex::default(),
            maps: source_maps.then(|| {
                let warn = warn.clone();
                SourceMaps::with_warnings(move |w| warn(w))
            }),
            warn,
        }
    }
}

impl Disk {
    /// Whether the file named `script` starts with `ran`, the start of the source that ran (as
    /// the snapshot keeps it); said once per script when it does not: its positions then stay
    /// in the code that ran, since the file's source map describes another text.
    fn ran_here(&self, script: &str, ran: &[u8]) -> bool {
        let mut checked = self.ran.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&same) = checked.get(script) {
            return same;
        }
        // No file at all is not a mismatch: there is no map to misuse either.
        let same = match path_of(script).and_then(|path| std::fs::File::open(path).ok()) {
            None => true,
            Some(file) => {
                // Node strips a byte-order mark before it compiles a file.
                let mut start = Vec::with_capacity(ran.len() + 3);
                let read = std::io::Read::take(file, ran.len() as u64 + 3)
                    .read_to_end(&mut start)
                    .is_ok();
                let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&start);
                read && text.starts_with(ran)
            }
        };
        if !same {
            (self.warn)(&format!(
                "{script} on disk is not the code that ran (a loader such as ts-node or tsx compiled it in memory, or it changed since the snapshot): its positions are left in the code that ran"
            ));
        }
        checked.insert(script.to_owned(), same);
        same
    }
}

impl heapsnap::leaks::Sources for Disk {
    fn text(&self, script: &str) -> Option<String> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.entry(script.to_owned())
            .or_insert_with(|| {
                let path = path_of(script)?;
                let meta = std::fs::metadata(&path).ok()?;
                if !meta.is_file() || meta.len() > MAX_SCRIPT_BYTES {
                    return None;
                }
                std::fs::read_to_string(path).ok()
            })
            .clone()
    }

    fn original(
        &self,
        script: &str,
        ran: Option<&[u8]>,
        line: u32,
        column: u32,
    ) -> Option<Original> {
        let maps = self.maps.as_ref()?;
        if let Some(ran) = ran.filter(|r| !r.is_empty())
            && !self.ran_here(script, ran)
        {
            return None;
        }
        maps.original(script, line, column)
    }
}

/// The file a script name stands for: an absolute path, or a `file://` URL (percent-escapes
/// decoded).
pub(crate) fn path_of(script: &str) -> Option<PathBuf> {
    if let Some(rest) = script.strip_prefix("file://") {
        let mut bytes = Vec::with_capacity(rest.len());
        let mut it = rest.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex = [it.next()?, it.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            } else {
                bytes.push(b);
            }
        }
        return Some(PathBuf::from(String::from_utf8(bytes).ok()?));
    }
    script.starts_with('/').then(|| PathBuf::from(script))
}

#[cfg(test)]
mod tests {
    use super::path_of;
    use std::path::PathBuf;

    #[test]
    fn script_names_become_paths() {
        assert_eq!(path_of("/srv/a.js"), Some(PathBuf::from("/srv/a.js")));
        assert_eq!(
            path_of("file:///srv/my%20app/a.mjs"),
            Some(PathBuf::from("/srv/my app/a.mjs"))
        );
        assert_eq!(path_of("node:internal/timers"), None);
        assert_eq!(path_of("file:///bad%2"), None);
    }
}
