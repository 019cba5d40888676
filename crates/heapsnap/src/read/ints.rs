//! The flat integer arrays (`nodes`, `edges`, `locations`, …): the bulk of every snapshot.
//!
//! Hand-written rather than through serde_json: a general JSON parser spends its time in per-value
//! dispatch and managed 0.17–0.22 GB/s on these arrays, where a byte loop reaches ~1 GB/s per core
//! (measured, see BENCHMARKS.md). The stream is cut into batches; each batch is split at
//! separators into blocks parsed in parallel, then handed in order to a sink that stores them.

use rayon::prelude::*;

use super::stream::{Stream, describe, is_ws};
use crate::error::{ErrorKind, ReadError};

/// How many read chunks one batch covers.
const CHUNKS_PER_BATCH: usize = 4;
/// The smallest block worth a task of its own.
const MIN_BLOCK: usize = 256 << 10;

/// Receives the numbers of an array in order. On a bad value it returns that value's index in
/// `values` with what is wrong, and the reader turns it into a byte offset.
pub(crate) trait Sink {
    fn take(&mut self, values: &[u64]) -> Result<(), (usize, ErrorKind)>;
}

/// Collects every number, for the small arrays.
impl Sink for Vec<u64> {
    fn take(&mut self, values: &[u64]) -> Result<(), (usize, ErrorKind)> {
        self.extend_from_slice(values);
        Ok(())
    }
}

/// Reads a `[n, n, …]` array of unsigned integers into `sink`.
pub(crate) fn read_array(stream: &mut Stream<'_>, sink: &mut impl Sink) -> Result<(), ReadError> {
    stream.expect(b'[', "'[' opening an array of numbers")?;
    let tasks = rayon::current_num_threads() * 4;
    let mut outputs: Vec<Vec<u64>> = Vec::new();
    let batch = stream.chunk * CHUNKS_PER_BATCH;
    let min_block = MIN_BLOCK.min(stream.chunk);
    loop {
        let avail = stream.fill(batch)?;
        let window = stream.window();
        let (end, done) = match memchr::memchr(b']', window) {
            Some(i) => (i, true),
            // `fill` returns less than asked only at the end of the input.
            None if avail < batch => {
                return Err(stream.err_at(
                    stream.buf.len(),
                    ErrorKind::Truncated("before the array's closing ']'"),
                ));
            }
            None => {
                let digits = window
                    .iter()
                    .rev()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits == window.len() {
                    return Err(stream.err(ErrorKind::NumberTooLarge(u64::MAX)));
                }
                (window.len() - digits, false)
            }
        };
        let region = &window[..end];
        let ranges = split(region, tasks, min_block);
        outputs.resize_with(ranges.len().max(outputs.len()), Vec::new);
        let parsed: Result<(), (usize, ErrorKind)> = outputs[..ranges.len()]
            .par_iter_mut()
            .zip(ranges.par_iter())
            .try_for_each(|(out, r)| {
                parse_block(&region[r.clone()], out).map_err(|(i, k)| (r.start + i, k))
            });
        if let Err((i, kind)) = parsed {
            return Err(stream.err_at(stream.pos + i, kind));
        }
        for (out, r) in outputs.iter().zip(&ranges) {
            if let Err((i, kind)) = sink.take(out) {
                let at = r.start + nth_number_offset(&region[r.clone()], i);
                return Err(stream.err_at(stream.pos + at, kind));
            }
        }
        stream.pos += end + usize::from(done);
        if done {
            return Ok(());
        }
    }
}

/// Splits `text` into about `tasks` ranges that start and end on separators.
fn split(text: &[u8], tasks: usize, min_block: usize) -> Vec<std::ops::Range<usize>> {
    let size = (text.len() / tasks).max(min_block);
    let mut ranges = Vec::with_capacity(tasks + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + size).min(text.len());
        while end < text.len() && text[end].is_ascii_digit() {
            end += 1;
        }
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// Parses the numbers of one block. Only digits, commas and white space are allowed.
fn parse_block(text: &[u8], out: &mut Vec<u64>) -> Result<(), (usize, ErrorKind)> {
    out.clear();
    out.reserve(text.len() / 2);
    let mut value: u64 = 0;
    let mut digits = 0u32;
    for (i, &b) in text.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            value = value * 10 + u64::from(d);
            digits += 1;
            if digits > 19 {
                return Err((i, ErrorKind::NumberTooLarge(value)));
            }
        } else if b == b',' || is_ws(b) {
            if digits > 0 {
                out.push(value);
                value = 0;
                digits = 0;
            }
        } else {
            return Err((i, ErrorKind::NotANumber { found: describe(b) }));
        }
    }
    if digits > 0 {
        out.push(value);
    }
    Ok(())
}

/// The byte offset of the `n`th number in `text` (cold path, for errors).
fn nth_number_offset(text: &[u8], n: usize) -> usize {
    let mut seen = 0;
    let mut prev_digit = false;
    for (i, b) in text.iter().enumerate() {
        let digit = b.is_ascii_digit();
        if digit && !prev_digit {
            if seen == n {
                return i;
            }
            seen += 1;
        }
        prev_digit = digit;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_on_separators() {
        let text = b"12,345,6789,0";
        for tasks in 1..6 {
            let mut all = Vec::new();
            for r in split(text, tasks, 1) {
                let mut out = Vec::new();
                parse_block(&text[r], &mut out).unwrap();
                all.extend(out);
            }
            assert_eq!(all, [12, 345, 6789, 0]);
        }
    }

    #[test]
    fn bad_bytes_are_located() {
        let mut out = Vec::new();
        let (i, kind) = parse_block(b"1,2,-3", &mut out).unwrap_err();
        assert_eq!(i, 4);
        assert!(matches!(kind, ErrorKind::NotANumber { .. }));
        assert_eq!(nth_number_offset(b"1, 22,\n333", 2), 7);
    }
}
