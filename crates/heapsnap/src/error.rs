//! Errors of the reader: every one names the input, the byte offset, the section and what was
//! expected, so that a user can look at the file and act.

use std::fmt;

/// Why a snapshot could not be read.
///
/// The `Display` form is one line a user can act on, for example:
/// `app.heapsnapshot: byte 1832: in "edges": to_node 14 is not a multiple of the node field count 7`.
#[derive(Debug)]
pub struct ReadError {
    /// The input's name as the user gave it (a path, or `<stdin>`).
    pub input: String,
    /// Byte offset in the (decompressed) text, where known.
    pub offset: Option<u64>,
    /// The top-level section being read, such as `snapshot`, `nodes` or `strings`.
    pub section: String,
    pub kind: ErrorKind,
}

/// What went wrong, without the where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not JSON: expected {expected}, found {found}")]
    NotJson {
        expected: &'static str,
        found: String,
    },
    #[error(
        "not a V8 heap snapshot: {0} (a .heapsnapshot file starts with {{\"snapshot\":{{\"meta\":…)"
    )]
    NotSnapshot(String),
    #[error("the file ends early, {0}: it was probably cut off while being written or copied")]
    Truncated(&'static str),
    #[error("unsupported field layout: {0}")]
    Layout(String),
    #[error("expected a number, found {found}")]
    NotANumber { found: String },
    #[error("number {0} does not fit in 32 bits")]
    NumberTooLarge(u64),
    #[error("a number runs past 19 digits: no field of a heap snapshot is that large")]
    NumberTooLong,
    #[error("{0}")]
    Invalid(String),
}

impl ReadError {
    pub(crate) fn new(section: &str, offset: Option<u64>, kind: ErrorKind) -> Self {
        ReadError {
            input: String::new(),
            offset,
            section: section.to_owned(),
            kind,
        }
    }

    pub(crate) fn with_input(mut self, input: &str) -> Self {
        self.input = input.to_owned();
        self
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.input.is_empty() {
            write!(f, "{}: ", self.input)?;
        }
        if let Some(offset) = self.offset {
            write!(f, "byte {offset}: ")?;
        }
        if !self.section.is_empty() {
            write!(f, "in \"{}\": ", self.section)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
