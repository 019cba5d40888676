//! What the script files say beyond the snapshot: their text, for the declarations that leak
//! reports point at (a snapshot keeps only the first 1,024 characters of each script, and
//! `heapsnap` reads no files), and their source maps, for original positions.

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
        Disk {
            read: Mutex::default(),
            maps: source_maps.then(SourceMaps::default),
        }
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

    fn original(&self, script: &str, line: u32, column: u32) -> Option<Original> {
        self.maps.as_ref()?.original(script, line, column)
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
