//! The source position table of a BytecodeArray: which script offset a bytecode offset is
//! at. Pairs of VLQ deltas (bytecode offset, source position) from a first entry at offset -1
//! (`kFunctionEntryBytecodeOffset`, the function entry's stack check); the source position
//! is `SourcePosition::raw()` (bit 0: external; then the script offset + 1 in 30 bits).

/// How a source position table encodes each entry's bytecode offset delta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PositionFormat {
    /// V8 5 to 13: a zigzag VLQ whose sign marks statements (`-delta - 1` for expressions).
    Signed,
    /// V8 14: an unsigned VLQ of `delta << 2 | flags`, the low bit marking statements
    /// (measured on 14.6; the second bit was set in every entry seen).
    Flagged,
}

/// The script offset of the last entry of a bytecode source position table at or before
/// `offset`; `None` when the table does not read as one for `length` bytes of bytecode.
pub(crate) fn position_at(
    table: &[u8],
    offset: i64,
    length: usize,
    format: PositionFormat,
) -> Option<u32> {
    let mut at = 0usize;
    // Deltas from a first entry at `kFunctionEntryBytecodeOffset` (-1): V8's table starts
    // with the function entry's stack check there.
    let (mut code, mut source) = (-1i64, 0i64);
    let mut found = None;
    while at < table.len() {
        let delta = match format {
            PositionFormat::Signed => {
                let v = vlq(table, &mut at)?;
                if v >= 0 { v } else { -(v + 1) }
            }
            PositionFormat::Flagged => (uvlq(table, &mut at)? >> 2) as i64,
        };
        let source_delta = vlq(table, &mut at)?;
        code = code.checked_add(delta)?;
        source = source.checked_add(source_delta)?;
        if code >= length as i64 || source < 0 {
            return None;
        }
        if code <= offset {
            found = Some(source);
        }
    }
    // `SourcePosition::raw()`: bit 0 says external; the script offset + 1 in the next 30.
    let raw = found?;
    let script_offset = ((raw >> 1) & ((1 << 30) - 1)) - 1;
    u32::try_from(script_offset).ok()
}

/// One unsigned VLQ (7 bits a byte, high bit: more follow).
fn uvlq(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift >= 64 {
            return None;
        }
    }
}

/// One zigzag VLQ.
fn vlq(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let value = uvlq(bytes, at)?;
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlq_is_zigzag() {
        let mut at = 0;
        assert_eq!(vlq(&[0x02], &mut at), Some(1));
        at = 0;
        assert_eq!(vlq(&[0x03], &mut at), Some(-2));
        at = 0;
        assert_eq!(vlq(&[0x80, 0x01], &mut at), Some(64));
        at = 0;
        assert_eq!(vlq(&[0x80], &mut at), None, "cut short");
    }

    /// Encodes entries (bytecode offset, script offset, statement) in a format.
    fn table(entries: &[(i64, i64, bool)], format: PositionFormat) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |z: u64| {
            let mut z = z;
            loop {
                let b = (z & 0x7f) as u8;
                z >>= 7;
                if z == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
        };
        let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
        let mut last = (-1, 0);
        for &(code, pos, statement) in entries {
            let raw = (pos + 1) << 1;
            let d = code - last.0;
            push(match format {
                PositionFormat::Signed => zigzag(if statement { d } else { -d - 1 }),
                PositionFormat::Flagged => (d as u64) << 2 | 2 | u64::from(statement),
            });
            push(zigzag(raw - last.1));
            last = (code, raw);
        }
        out
    }

    #[test]
    fn positions_by_bytecode_offset() {
        let entries = [(-1, 3, false), (0, 10, true), (5, 20, false), (9, 7, true)];
        for format in [PositionFormat::Signed, PositionFormat::Flagged] {
            let t = table(&entries, format);
            let at = |offset| position_at(&t, offset, 12, format);
            assert_eq!(at(0), Some(10), "{format:?}");
            assert_eq!(at(4), Some(10));
            assert_eq!(at(5), Some(20));
            assert_eq!(at(100), Some(7));
            // Offsets past the bytecode: not a table of this format.
            assert_eq!(position_at(&t, 0, 8, format), None);
        }
        assert_eq!(position_at(&[], 3, 10, PositionFormat::Signed), None);
        // V8 14's table for `function waitForever()` of the tests' fixture (measured): the
        // call at bytecode offset 41 is at script offset 245.
        let v14 = [
            0x02, 0xcc, 0x05, 0x07, 0x1c, 0x12, 0x20, 0x16, 0x1c, 0x22, 0x00, 0x17, 0x50, 0x1a,
            0x00, 0x16, 0x60, 0x22, 0x04, 0x1b, 0x5c,
        ];
        assert_eq!(
            position_at(&v14, 41, 48, PositionFormat::Flagged),
            Some(245)
        );
        assert_eq!(position_at(&v14, 41, 48, PositionFormat::Signed), None);
        let v11 = [
            0x01, 0xcc, 0x05, 0x02, 0x1c, 0x09, 0x20, 0x0b, 0x1c, 0x11, 0x00, 0x0a, 0x50, 0x0d,
            0x00, 0x0b, 0x60, 0x11, 0x04, 0x0c, 0x5c,
        ];
        assert_eq!(position_at(&v11, 41, 48, PositionFormat::Signed), Some(245));
    }
}
