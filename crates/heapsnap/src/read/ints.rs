//! The flat integer arrays (`nodes`, `edges`, `locations`, …): the bulk of every snapshot.
//!
//! Hand-written rather than through serde_json: a general JSON parser spends its time in per-value
//! dispatch and manages 0.17–0.22 GB/s on these arrays, where a byte loop reaches ~1 GB/s per
//! core. The stream is cut into batches; each batch is split at separators into blocks. The big
//! arrays (nodes, edges) are parsed in two parallel passes per batch: count the numbers of each
//! block, then parse every block straight into its place in the pre-sized columns.

use rayon::prelude::*;

use super::stream::{Stream, describe, is_ws};
use crate::error::{ErrorKind, ReadError};

/// How many read chunks one batch covers.
const CHUNKS_PER_BATCH: usize = 4;
/// The smallest block worth a task of its own.
const MIN_BLOCK: usize = 256 << 10;

/// Stores the numbers of an array of known size into columns, from several threads at once.
pub(crate) trait Sink: Sync {
    /// How many numbers the array holds at most.
    fn capacity(&self) -> usize;
    /// Stores the numbers of `text` (whole numbers and separators only), the first of which is
    /// number `first` of the array. An error gives the byte in `text` where the bad number starts.
    fn store(&self, first: usize, text: &[u8]) -> Result<(), (usize, ErrorKind)>;
}

/// Reads a `[n, n, …]` array into `sink`, in parallel.
/// Returns how many numbers were stored.
pub(crate) fn read_array(stream: &mut Stream<'_>, sink: &impl Sink) -> Result<usize, ReadError> {
    let mut stored = 0usize;
    for_each_region(stream, |stream, region| {
        let (ranges, counts) = blocks(stream, region);
        let mut firsts = Vec::with_capacity(ranges.len());
        for &c in &counts {
            firsts.push(stored);
            stored += c;
        }
        if stored > sink.capacity() {
            // Parse what fits so the error points at the first number too many.
            let over = stored - sink.capacity();
            let (block, in_block) = locate_from_end(&counts, over);
            let at =
                ranges[block].start + nth_number_offset(&region[ranges[block].clone()], in_block);
            return Err(stream.err_at(
                stream.pos + at,
                ErrorKind::Invalid(format!(
                    "more numbers than the header announces ({})",
                    sink.capacity()
                )),
            ));
        }
        let results = ranges
            .par_iter()
            .zip(firsts.par_iter())
            .map(|(r, &first)| {
                sink.store(first, &region[r.clone()])
                    .map_err(|(i, k)| (r.start + i, k))
            })
            .collect();
        first_error(stream, results)
    })?;
    Ok(stored)
}

/// Splits `region` into blocks for the threads, and counts the numbers of each in parallel.
fn blocks(stream: &Stream<'_>, region: &[u8]) -> (Vec<std::ops::Range<usize>>, Vec<usize>) {
    let tasks = rayon::current_num_threads() * 4;
    let ranges = split(region, tasks, MIN_BLOCK.min(stream.chunk));
    let counts = ranges
        .par_iter()
        .map(|r| count_numbers(&region[r.clone()]))
        .collect();
    (ranges, counts)
}

/// The first error in the file of the blocks of a region (not the first to happen), located.
fn first_error(
    stream: &Stream<'_>,
    results: Vec<Result<(), (usize, ErrorKind)>>,
) -> Result<(), ReadError> {
    match results.into_iter().find_map(Result::err) {
        Some((i, kind)) => Err(stream.err_at(stream.pos + i, kind)),
        None => Ok(()),
    }
}

/// Reads a `[n, n, …]` array of unknown size (`locations`, whose records can number millions,
/// and the small ones), in parallel like [`read_array`]: the list grows by each region's count,
/// and each block is parsed into its own slice of the new part.
pub(crate) fn read_list(stream: &mut Stream<'_>) -> Result<Vec<u64>, ReadError> {
    let mut values = Vec::new();
    for_each_region(stream, |stream, region| {
        let (ranges, counts) = blocks(stream, region);
        let old = values.len();
        values.resize(old + counts.iter().sum::<usize>(), 0);
        let mut slices = Vec::with_capacity(ranges.len());
        let mut rest = &mut values[old..];
        for &c in &counts {
            let (slice, tail) = rest.split_at_mut(c);
            slices.push(slice);
            rest = tail;
        }
        let results = ranges
            .par_iter()
            .zip(slices.into_par_iter())
            .map(|(r, slice)| {
                let mut at = 0;
                batches(&region[r.clone()], |batch| {
                    // The count is exact on text `batches` accepts, and counts at least the
                    // numbers before a bad byte: this cannot fail, but must not panic.
                    let Some(place) = slice.get_mut(at..at + batch.len()) else {
                        let counted = "more numbers than counted".to_owned();
                        return Err((0, ErrorKind::Invalid(counted)));
                    };
                    place.copy_from_slice(batch);
                    at += batch.len();
                    Ok(())
                })
                .map_err(|(i, k)| (r.start + i, k))
            })
            .collect();
        first_error(stream, results)
    })?;
    Ok(values)
}

/// Calls `f` on successive regions of the array's text that start and end between numbers,
/// consuming the array and its closing `]`.
fn for_each_region(
    stream: &mut Stream<'_>,
    mut f: impl FnMut(&Stream<'_>, &[u8]) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    stream.expect(b'[', "'[' opening an array of numbers")?;
    let batch = stream.chunk * CHUNKS_PER_BATCH;
    loop {
        let avail = stream.fill(batch)?;
        let window = stream.window();
        let (end, done) = match memchr::memchr(b']', window) {
            Some(i) => (i, true),
            // `fill` returns less than asked only at the end of the input.
            None if avail < batch => {
                return Err(stream.err_at(
                    stream.end,
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
                    return Err(stream.err(ErrorKind::NumberTooLong));
                }
                (window.len() - digits, false)
            }
        };
        f(stream, &window[..end])?;
        stream.pos += end + usize::from(done);
        if done {
            return Ok(());
        }
    }
}

/// Splits `text` into about `tasks` ranges that start and end on separators.
fn split(text: &[u8], tasks: usize, min_block: usize) -> Vec<std::ops::Range<usize>> {
    let size = (text.len() / tasks).max(min_block).max(1);
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

/// Counts the numbers in `text`: the digits that follow a non-digit (or start the text).
///
/// The invariant the parallel pass rests on: on text [`batches`] accepts (digits, commas and
/// white space), this counts exactly the numbers it calls back with, block by block, so each
/// block's first number lands at the index the counts gave it. On any other text `numbers`
/// fails, and the count no longer matters.
///
/// Eight bytes at a time: a number starts at each digit byte whose previous byte is not a
/// digit, found for a whole word with shifts and masks instead of a branch per byte.
fn count_numbers(text: &[u8]) -> usize {
    let mut count = 0;
    // 0x80 in the lowest byte when the byte before the current word is a digit.
    let mut prev: u64 = 0;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let digits = !non_digits(word_at(word, 0)) & HIGH;
        count += (digits & !((digits << 8) | prev)).count_ones() as usize;
        prev = digits >> 56;
    }
    let mut prev_digit = prev != 0;
    for &b in words.remainder() {
        let digit = b.is_ascii_digit();
        count += usize::from(digit & !prev_digit);
        prev_digit = digit;
    }
    count
}

/// `0x0101…01`: one in every byte of a word.
const ONES: u64 = u64::from_le_bytes([1; 8]);
/// The high bit of every byte.
const HIGH: u64 = 0x80 * ONES;
/// Powers of ten up to the eight digits one word holds.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The eight bytes of `text` from `at`, the first in the lowest byte.
#[inline(always)]
fn word_at(text: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&text[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// 0x80 in each byte of `x` that is not an ASCII digit, 0 in the others. Exact byte by byte:
/// no carry crosses from one byte to the next.
#[inline(always)]
fn non_digits(x: u64) -> u64 {
    // A digit's high nibble is 3 and its low nibble plus 6 stays below 16.
    let t =
        ((x & (0xF0 * ONES)) ^ (0x30 * ONES)) | (((x & (0x0F * ONES)) + 6 * ONES) & (0x10 * ONES));
    // Any bit set in a byte → its high bit.
    (((t & (0x7F * ONES)) + 0x7F * ONES) | t) & HIGH
}

/// How many of `x`'s bytes, from the lowest, are digits (0 to 8).
#[inline(always)]
fn digit_run(x: u64) -> usize {
    (non_digits(x).trailing_zeros() / 8) as usize
}

/// The value of the `len` (0 to 8) digits in the lowest bytes of `x`.
#[inline(always)]
fn word_value(x: u64, len: usize) -> u64 {
    // The digits' bytes become 0–9; a borrow from a byte past them only moves to higher bytes,
    // which the shift drops, leaving leading zeros (no digits: all dropped).
    let v = x
        .wrapping_sub(0x30 * ONES)
        .checked_shl(8 * (8 - len as u32))
        .unwrap_or(0);
    // Pairs, then fours, then the eight (Lemire's eight-digit conversion).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let low = 0x0000_00FF_0000_00FF;
    let v = ((v & low).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((v >> 16) & low).wrapping_mul(1 + (10_000 << 32)));
    v >> 32
}

/// The number whose first digit is `text[at]`, with its length, reading whole words: `text`
/// must hold 24 bytes from `at`. `None` past 19 digits, where [`numbers`] fails.
#[inline(always)]
fn number_at(text: &[u8], at: usize) -> Option<(u64, usize)> {
    let x = word_at(text, at);
    let len = digit_run(x);
    if len < 8 {
        return Some((word_value(x, len), len));
    }
    let mut value = word_value(x, 8);
    let y = word_at(text, at + 8);
    let more = digit_run(y);
    if more < 8 {
        return Some((value * POW10[more] + word_value(y, more), 8 + more));
    }
    value = value * POW10[8] + word_value(y, 8);
    let z = word_at(text, at + 16);
    let last = digit_run(z);
    (16 + last <= 19).then(|| (value * POW10[last] + word_value(z, last), 16 + last))
}

/// How many numbers [`batches`] hands over at once (a few KiB: they stay in the L1 cache).
const BATCH: usize = 1024;

/// Calls `f` with the numbers of `text`, a batch at a time, so that a sink can store each field
/// in a loop of its own instead of dispatching on every number. Only digits, commas and white
/// space are allowed. `f` fails with the index in its batch of the number it refuses; every error
/// gives the byte where the offending number (or character) starts, the first in the text.
///
/// A number is read a word at a time: its digits are found and converted with a few shifts
/// and multiplications instead of a branch per byte. The last 24 bytes, where a word might
/// run past the text, go byte by byte.
pub(crate) fn batches(
    text: &[u8],
    mut f: impl FnMut(&[u64]) -> Result<(), (usize, ErrorKind)>,
) -> Result<(), (usize, ErrorKind)> {
    let mut buf = [0u64; BATCH];
    let mut len = 0;
    // How many numbers of `text` earlier batches held.
    let mut done = 0;
    let mut flush = |buf: &[u64], done: usize| {
        f(buf).map_err(|(k, kind)| (nth_number_offset(text, done + k), kind))
    };
    let mut push = |v: u64| {
        buf[len] = v;
        len += 1;
        if len == BATCH {
            flush(&buf, done)?;
            done += BATCH;
            len = 0;
        }
        Ok(())
    };
    let mut i = 0;
    // At each turn `i` is between numbers: the fast loop consumes a number and its separator.
    let scanned = loop {
        if i + 24 > text.len() {
            break Ok(());
        }
        let b = text[i];
        if b.is_ascii_digit() {
            let Some((value, n)) = number_at(text, i) else {
                break Err((i, ErrorKind::NumberTooLong));
            };
            // 19 digits or fewer, so the byte after them is within the 24.
            let next = text[i + n];
            if next != b',' && !is_ws(next) {
                break Err((
                    i + n,
                    ErrorKind::NotANumber {
                        found: describe(next),
                    },
                ));
            }
            push(value)?;
            i += n + 1;
        } else if b == b',' || is_ws(b) {
            i += 1;
        } else {
            break Err((i, ErrorKind::NotANumber { found: describe(b) }));
        }
    };
    // The tail holds 12 numbers at most.
    let mut tail = [0u64; 12];
    let mut t = 0;
    let scanned = scanned.and_then(|()| {
        numbers_bytewise(&text[i..], |v| {
            tail[t] = v;
            t += 1;
            Ok(())
        })
        .map_err(|(at, kind)| (i + at, kind))
    });
    for &v in &tail[..t] {
        push(v)?;
    }
    // The numbers before a bad byte come first in the text: their errors win.
    flush(&buf[..len], done)?;
    scanned
}

/// Calls `f` with each number of `text`, a byte at a time: [`batches`]' tail, and its reference
/// in the tests. An error gives the byte where the offending number (or character) starts.
fn numbers_bytewise(
    text: &[u8],
    mut f: impl FnMut(u64) -> Result<(), ErrorKind>,
) -> Result<(), (usize, ErrorKind)> {
    let mut value: u64 = 0;
    let mut digits = 0u32;
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            if digits == 0 {
                start = i;
            }
            // 19 digits always fit in a u64; a 20th might not, and no field needs one.
            if digits == 19 {
                return Err((start, ErrorKind::NumberTooLong));
            }
            value = value * 10 + u64::from(d);
            digits += 1;
        } else if b == b',' || is_ws(b) {
            if digits > 0 {
                f(value).map_err(|k| (start, k))?;
                value = 0;
                digits = 0;
            }
        } else {
            return Err((i, ErrorKind::NotANumber { found: describe(b) }));
        }
    }
    if digits > 0 {
        f(value).map_err(|k| (start, k))?;
    }
    Ok(())
}

/// Which block, and which number in it, is the `over`th number counting back from the end.
fn locate_from_end(counts: &[usize], mut over: usize) -> (usize, usize) {
    for (b, &c) in counts.iter().enumerate().rev() {
        if over <= c {
            return (b, c - over);
        }
        over -= c;
    }
    (0, 0)
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

/// Types whose all-zero bit pattern is a valid value.
///
/// # Safety
/// Implement only for integers and `#[repr(transparent)]` wrappers of them.
pub(crate) unsafe trait Zero: Copy {}
// SAFETY (each): integers, or the handles, which are `#[repr(transparent)]` over `u32`.
unsafe impl Zero for u8 {}
unsafe impl Zero for u32 {}
unsafe impl Zero for crate::model::StrId {}
unsafe impl Zero for crate::model::NodeId {}
unsafe impl Zero for crate::model::NodeIdx {}
unsafe impl Zero for crate::model::EdgeIdx {}

/// `vec![0; n]`, but failing with an error instead of aborting when the memory cannot be had:
/// the counts come from the file's header, and a damaged one can announce anything. The pages
/// stay untouched (and so cost nothing) until they are written.
pub(crate) fn zeroed<T: Zero>(n: usize, what: &str) -> Result<Vec<T>, ErrorKind> {
    let too_big = || {
        ErrorKind::Invalid(format!(
            "the header announces {n} {what}, more than this machine has memory for; \
             if the snapshot is not really that big, its header is damaged"
        ))
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).map_err(|_| too_big())?;
    // SAFETY: the layout has a non-zero size (n > 0 and T is an integer type).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(too_big());
    }
    // SAFETY: allocated by the global allocator for exactly n elements of T, all zero bytes,
    // which is a valid T (`Zero`).
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// A column that several threads fill at once, each at its own indexes.
///
/// The reader is the hot path, and the alternative (parse into per-block buffers, then copy on
/// one thread) measured about twice as slow; this keeps the parallel writes in one small place.
///
/// It borrows the buffer mutably for `'a`, so nothing else can touch, move or resize it while
/// the column is in use: the compiler checks that part.
pub(crate) struct Column<'a, T> {
    ptr: *mut T,
    len: usize,
    _buffer: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: `Column` hands out only writes to distinct indexes (see `set`), of `Copy` data.
unsafe impl<T: Send> Sync for Column<'_, T> {}

impl<'a, T: Copy> Column<'a, T> {
    /// Wraps `v`'s buffer for as long as `v` is borrowed.
    pub(crate) fn new(v: &'a mut [T]) -> Column<'a, T> {
        Column {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            _buffer: std::marker::PhantomData,
        }
    }

    /// Writes element `i`.
    ///
    /// # Safety
    /// No other thread may write or read element `i` at the same time.
    #[inline]
    pub(crate) unsafe fn set(&self, i: usize, value: T) {
        assert!(
            i < self.len,
            "column index {i} out of bounds ({})",
            self.len
        );
        // SAFETY: in bounds (checked above); exclusive per the caller's contract.
        unsafe { self.ptr.add(i).write(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<u64> {
        let mut out = Vec::new();
        batches(text, |batch| {
            out.extend_from_slice(batch);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn blocks_split_on_separators() {
        let text = b"12,345,6789,0";
        for tasks in 1..6 {
            let ranges = split(text, tasks, 1);
            let values: Vec<u64> = ranges.iter().flat_map(|r| all(&text[r.clone()])).collect();
            assert_eq!(values, [12, 345, 6789, 0]);
            assert_eq!(
                ranges
                    .iter()
                    .map(|r| count_numbers(&text[r.clone()]))
                    .sum::<usize>(),
                4
            );
        }
    }

    /// The invariant of `count_numbers`, on every split of many texts of digits, commas and
    /// white space (a small deterministic generator: the crate has no random source).
    #[test]
    fn counting_and_parsing_split_numbers_alike() {
        let alphabet = b"0123456789, \n\t\r";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            // Numbers of 19 digits at most, as `numbers` requires.
            if text
                .split(|b| !b.is_ascii_digit())
                .any(|run| run.len() > 19)
            {
                continue;
            }
            let parsed = all(&text).len();
            assert_eq!(
                count_numbers(&text),
                parsed,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            for tasks in 1..5 {
                let blocks = split(&text, tasks, 1);
                let counted: usize = blocks.iter().map(|r| count_numbers(&text[r.clone()])).sum();
                let parsed: usize = blocks.iter().map(|r| all(&text[r.clone()]).len()).sum();
                assert_eq!(counted, parsed);
            }
        }
    }

    /// A value the sinks refuse, to compare where such errors land.
    const REFUSED: u64 = 4_242;

    /// Every number before the first error, and the error: by batches, or byte by byte.
    fn outcome(text: &[u8], by_batch: bool) -> (Vec<u64>, Option<(usize, String)>) {
        let mut out = Vec::new();
        let result = if by_batch {
            batches(text, |batch| {
                for (k, &v) in batch.iter().enumerate() {
                    if v == REFUSED {
                        return Err((k, ErrorKind::NumberTooLarge(v)));
                    }
                    out.push(v);
                }
                Ok(())
            })
        } else {
            numbers_bytewise(text, |v| {
                if v == REFUSED {
                    return Err(ErrorKind::NumberTooLarge(v));
                }
                out.push(v);
                Ok(())
            })
        };
        (out, result.err().map(|(i, k)| (i, format!("{k:?}"))))
    }

    /// The word-at-a-time scanner against the byte-at-a-time one, on texts long enough for
    /// its fast loop: numbers of every length up to 25 digits, every separator, bad bytes.
    #[test]
    fn words_and_bytes_read_alike() {
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let mut text = Vec::new();
            // Now and then more numbers than a batch holds.
            let len = if round % 50 == 0 {
                24 + (next() % 8000) as usize
            } else {
                24 + (next() % 160) as usize
            };
            while text.len() < len {
                match next() % 16 {
                    0..=10 => {
                        // Mostly short numbers, sometimes up to 25 digits.
                        let digits = if next() % 8 == 0 {
                            1 + next() % 25
                        } else {
                            1 + next() % 9
                        };
                        for _ in 0..digits {
                            text.push(b'0' + (next() % 10) as u8);
                        }
                    }
                    11 | 12 => text.push(b','),
                    13 => text.extend_from_slice(b"\n,"),
                    14 => text.push([b' ', b'\t', b'\r'][(next() % 3) as usize]),
                    _ if round % 4 == 0 => {
                        text.push([b'-', b'a', b'/', b':', 0xFF, 0x80, 0xFA][(next() % 7) as usize])
                    }
                    _ => text.extend_from_slice(b"4242,"),
                }
            }
            let expected = outcome(&text, false);
            assert_eq!(
                outcome(&text, true),
                expected,
                "{:?}",
                String::from_utf8_lossy(&text)
            );
            // The counting pass's invariant, on the texts `batches` accepts.
            if expected.1.is_none() {
                assert_eq!(
                    count_numbers(&text),
                    expected.0.len(),
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }

    #[test]
    fn word_values() {
        for len in 1..=8 {
            let text = b"98765432,";
            let word = word_at(b"12345678,,,,,,,,", 0);
            assert_eq!(
                word_value(word, len),
                "12345678"[..len].parse::<u64>().unwrap()
            );
            assert_eq!(digit_run(word_at(text, 0)), 8);
        }
        assert_eq!(digit_run(word_at(b"12,45678", 0)), 2);
        assert_eq!(digit_run(word_at(b",1234567", 0)), 0);
        let long = b"9999999999999999999,,,,,,,,";
        assert_eq!(number_at(long, 0), Some((9_999_999_999_999_999_999, 19)));
    }

    #[test]
    fn bad_bytes_are_located() {
        let (i, kind) = batches(b"1,2,-3", |_| Ok(())).unwrap_err();
        assert_eq!(i, 4);
        assert!(matches!(kind, ErrorKind::NotANumber { .. }));
        assert_eq!(nth_number_offset(b"1, 22,\n333", 2), 7);
        // Found by fuzzing: a number longer than any u64 is an error, not an overflow.
        let (i, kind) = batches(b"1,66666666666666666666666666666666", |_| Ok(())).unwrap_err();
        assert_eq!(i, 2);
        assert!(matches!(kind, ErrorKind::NumberTooLong));
        assert_eq!(locate_from_end(&[3, 2], 1), (1, 1));
        assert_eq!(locate_from_end(&[3, 2], 3), (0, 2));
    }
}
