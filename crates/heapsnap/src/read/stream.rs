//! A forward-only byte stream over any `Read`, with just enough JSON tokenising for the snapshot's
//! top level. It keeps a window of the input, never the whole file.

use std::io::Read;

use crate::error::{ErrorKind, ReadError};

/// How much is read from the source at a time.
pub(crate) const CHUNK: usize = 8 << 20;

pub(crate) struct Stream<'a> {
    src: Box<dyn Read + Send + 'a>,
    /// The window's memory: `buf[..end]` holds input, the rest is room to read into. It only
    /// grows, so the memory is zeroed once, not at every read.
    buf: Vec<u8>,
    pub(crate) end: usize,
    /// `buf[pos..end]` is not yet consumed.
    pub(crate) pos: usize,
    /// Absolute offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// The section being read, for errors.
    pub(crate) section: &'static str,
    /// How much to read at a time (tests make it tiny to exercise every boundary).
    pub(crate) chunk: usize,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(src: Box<dyn Read + Send + 'a>, chunk: usize) -> Self {
        Stream {
            src,
            buf: Vec::new(),
            end: 0,
            pos: 0,
            base: 0,
            eof: false,
            section: "",
            chunk: chunk.max(1),
        }
    }

    /// The absolute offset of `buf[i]`.
    pub(crate) fn offset_of(&self, i: usize) -> u64 {
        self.base + i as u64
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset_of(self.pos)
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> ReadError {
        ReadError::new(self.section, Some(self.offset()), kind)
    }

    pub(crate) fn err_at(&self, i: usize, kind: ErrorKind) -> ReadError {
        ReadError::new(self.section, Some(self.offset_of(i)), kind)
    }

    /// Makes at least `want` unconsumed bytes available, unless the input ends first.
    /// Returns the number available.
    pub(crate) fn fill(&mut self, want: usize) -> Result<usize, ReadError> {
        while self.end - self.pos < want && !self.eof {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.base += self.pos as u64;
                self.pos = 0;
            }
            let limit = self.end + self.chunk.max(want - self.end);
            if self.buf.len() < limit {
                self.buf.resize(limit, 0);
            }
            // Read until the chunk is full or the source ends, so that callers see big windows.
            while self.end < limit {
                match self.src.read(&mut self.buf[self.end..limit]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(self.err(ErrorKind::Io(e))),
                }
            }
        }
        Ok(self.end - self.pos)
    }

    /// The unconsumed window.
    pub(crate) fn window(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Skips white space and returns the next byte without consuming it; `None` at the end.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, ReadError> {
        loop {
            while self.pos < self.end {
                let b = self.buf[self.pos];
                if !is_ws(b) {
                    return Ok(Some(b));
                }
                self.pos += 1;
            }
            if self.fill(1)? == 0 {
                return Ok(None);
            }
        }
    }

    /// Consumes the next non-space byte, which must be `want`.
    pub(crate) fn expect(&mut self, want: u8, what: &'static str) -> Result<(), ReadError> {
        match self.peek()? {
            Some(b) if b == want => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => Err(self.err(ErrorKind::NotJson {
                expected: what,
                found: describe(b),
            })),
            None => Err(self.err(ErrorKind::Truncated(what))),
        }
    }

    /// Reads a JSON string (the next token must be `"`), unescaping it onto `out` as WTF-8.
    pub(crate) fn string_into(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        self.expect(b'"', "a string")?;
        loop {
            let window = &self.buf[self.pos..self.end];
            match memchr::memchr2(b'"', b'\\', window) {
                Some(i) => {
                    out.extend_from_slice(&window[..i]);
                    self.pos += i + 1;
                    if window[i] == b'"' {
                        return Ok(());
                    }
                    self.escape(out)?;
                }
                None => {
                    out.extend_from_slice(window);
                    self.pos = self.end;
                    if self.fill(1)? == 0 {
                        return Err(self.err(ErrorKind::Truncated("inside a string")));
                    }
                }
            }
        }
    }

    /// Decodes one escape; the backslash is already consumed.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ReadError> {
        let c = self.byte("an escape")?;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = self.hex4()?;
                if (0xD800..0xDC00).contains(&cp)
                    && self.fill(6)? >= 6
                    && self.window().starts_with(b"\\u")
                {
                    // A high surrogate followed by an escaped low one is one astral character.
                    let save = self.pos;
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if (0xDC00..0xE000).contains(&lo) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    } else {
                        self.pos = save;
                    }
                }
                push_wtf8(out, cp);
                return Ok(());
            }
            other => {
                return Err(self.err(ErrorKind::NotJson {
                    expected: "a JSON escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                    found: describe(other),
                }));
            }
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ReadError> {
        let mut v = 0;
        for _ in 0..4 {
            let c = self.byte("a \\u escape")?;
            let d = (c as char).to_digit(16).ok_or_else(|| {
                self.err(ErrorKind::NotJson {
                    expected: "a hex digit",
                    found: describe(c),
                })
            })?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// Consumes one raw byte.
    fn byte(&mut self, what: &'static str) -> Result<u8, ReadError> {
        if self.pos == self.end && self.fill(1)? == 0 {
            return Err(self.err(ErrorKind::Truncated(what)));
        }
        self.pos += 1;
        Ok(self.buf[self.pos - 1])
    }

    /// Reads an unsigned integer token.
    pub(crate) fn number(&mut self) -> Result<u64, ReadError> {
        match self.peek()? {
            Some(b) if b.is_ascii_digit() => {}
            Some(b) => return Err(self.err(ErrorKind::NotANumber { found: describe(b) })),
            None => return Err(self.err(ErrorKind::Truncated("a number"))),
        }
        let mut v: u64 = 0;
        loop {
            if self.pos == self.end && self.fill(1)? == 0 {
                return Ok(v);
            }
            let b = self.buf[self.pos];
            if !b.is_ascii_digit() {
                return Ok(v);
            }
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| self.err(ErrorKind::NumberTooLong))?;
            self.pos += 1;
        }
    }

    /// Copies one whole JSON value (object, array, string or scalar) verbatim onto `out`.
    pub(crate) fn raw_value(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<(), ReadError> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        if self.peek()?.is_none() {
            return Err(self.err(ErrorKind::Truncated("a value")));
        }
        loop {
            if self.pos == self.end && self.fill(1)? == 0 {
                return Err(self.err(ErrorKind::Truncated("inside a value")));
            }
            let b = self.buf[self.pos];
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        if depth == 0 {
                            return Ok(()); // A scalar ended by its container.
                        }
                        depth -= 1;
                    }
                    b',' if depth == 0 => return Ok(()),
                    _ => {}
                }
            }
            if let Some(out) = out.as_deref_mut() {
                out.push(b);
            }
            self.pos += 1;
            if depth == 0 && !in_string && matches!(b, b'}' | b']' | b'"') {
                return Ok(());
            }
        }
    }
}

pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// A byte as a user would like to see it in an error.
pub(crate) fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Encodes a code point as UTF-8, or a lone surrogate as its generalised (WTF-8) form.
fn push_wtf8(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}
