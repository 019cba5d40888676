//! What V8's frames hold, read from the heap in the core: frame markers, the JSFunction of a
//! JS frame, its name, script and position.
//!
//! Offsets and type numbers come from the metadata; what V8 does not export is hard-coded
//! here, per layout generation, and checked on what it reads (a slot that should hold a string
//! and does not makes the value unknown, never garbage). Each was measured on the official
//! Node 20 (V8 11.3), 22 (12.4), 24 (13.6) and 26 (14.6) builds:
//!
//! - ScopeInfo (where a compiled function keeps its name, inferred name and source range): V8
//!   exports only the indices of its first slots; where the rest are follows from its flags
//!   and counts, per [`Generation`], as [`scope_slots`] computes them for the heap walk and
//!   the census too. In V8 13 (`scopeinfo_idx_first_vars` 3 → 5) the flags became a raw
//!   `uint32` and the source range moved into the header.
//! - BytecodeArray's source position table: at +32 in V8 11 (after length, constant pool and
//!   handler table), at +24 from V8 12 (after length and the wrapper V8 12 added, which the
//!   metadata shows).
//! - The table's encoding: pairs of VLQ deltas (bytecode offset, source position) from a
//!   first entry at offset -1; V8 14 changed how the offset delta and the statement bit are
//!   packed ([`PositionFormat`]), and V8's version is read from the binary's
//!   `v8::internal::Version::major_`.
//! - The bytecode offset an interpreted frame holds counts from the tagged BytecodeArray
//!   pointer (`class_BytecodeArray__data` − 1 before the first bytecode).
//!
//! Node's built-in functions come from its startup snapshot, which from Node 22 on keeps no
//! inferred names (`Module._compile` is then `(anonymous)`; V8's own stack traces name such
//! methods from the receiver, which this reader does not look at).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::heap::{Generation, ScriptFields, scope_slots};
use crate::metadata::Metadata;
use crate::unwind::Memory;

mod positions;

use positions::{PositionFormat, position_at};

/// The longest function or script name read.
const MAX_NAME_LEN: usize = 4096;
/// The largest script source scanned for line ends (a bundle can be tens of MB).
const MAX_SOURCE_LEN: usize = 256 << 20;
/// How deep a cons string's tree is followed, and how many of its parts are read at most.
const MAX_STRING_DEPTH: usize = 64;
const MAX_STRING_PARTS: u32 = 100_000;
/// `SharedFunctionInfo::kFunctionTokenOutOfRange`.
const FUNCTION_TOKEN_OUT_OF_RANGE: u16 = u16::MAX;

/// A JS frame's function, as far as the heap tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsFunction {
    /// The name, the inferred name (`Module._compile`) when it has none, `(anonymous)`, or
    /// `(unknown)` when the name could not be read.
    pub(crate) name: String,
    pub(crate) script: Option<String>,
    pub(crate) position: Option<Position>,
}

/// A source position, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: u32,
    pub(crate) column: u32,
    /// The position being executed (from the bytecode offset), or else where the function
    /// starts.
    pub(crate) current: bool,
}

/// What the context-or-frame-type slot of a frame holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A frame-type marker, with its name when the metadata knows the number.
    Marker(i64, Option<String>),
    /// Something else: a context (a JS frame) or garbage.
    Other,
}

/// Offsets and numbers from the metadata, read once.
struct Layout {
    map_instance_type: u64,
    fp_marker: i64,
    fp_function: i64,
    fp_bytecode_array: Option<i64>,
    fp_bytecode_offset: Option<i64>,
    js_function_types: Option<(u16, u16)>,
    sfi_type: Option<u16>,
    scope_info_type: Option<u16>,
    script_type: Option<u16>,
    bytecode_array_type: Option<u16>,
    fixed_array_type: Option<u16>,
    /// `BYTE_ARRAY_TYPE` and, from V8 12, `TRUSTED_BYTE_ARRAY_TYPE`.
    byte_array_types: Vec<u16>,
    fields: ScriptFields,
    sfi_token_offset: Option<u64>,
    bytecode_data: Option<u64>,
    bytecode_positions: Option<u64>,
    positions: PositionFormat,
    fixed_array_length: u64,
    fixed_array_data: u64,
    strings: StringLayout,
    scope: ScopeLayout,
}

struct StringLayout {
    not_string_mask: u16,
    representation_mask: u16,
    encoding_mask: u16,
    one_byte_tag: u16,
    seq_tag: u16,
    cons_tag: u16,
    external_tag: u16,
    sliced_tag: u16,
    thin_tag: u16,
    length: u64,
    seq_chars: u64,
    cons_first: u64,
    cons_second: u64,
    sliced_parent: u64,
    sliced_offset: u64,
    thin_actual: u64,
    external_resource: u64,
    /// The instance-type bit of external strings without the cached data pointer.
    uncached_mask: u16,
}

struct ScopeLayout {
    n_context_locals: u64,
    /// Which ScopeInfo layout ([`scope_slots`]), shared with the heap walk and the census.
    generation: Generation,
}

/// Reads V8 objects for the stack walk; caches each script's line starts.
pub(crate) struct FrameReader<'m> {
    mem: &'m dyn Memory,
    l: Option<Layout>,
    lines: RefCell<HashMap<u64, Option<Rc<Vec<u32>>>>>,
}

impl<'m> FrameReader<'m> {
    /// `v8_major` is V8's major version when the binary's symbols tell it.
    pub(crate) fn new(
        meta: &Metadata,
        v8_major: Option<u32>,
        mem: &'m dyn Memory,
    ) -> FrameReader<'m> {
        FrameReader {
            mem,
            l: Layout::new(meta, v8_major),
            lines: RefCell::new(HashMap::new()),
        }
    }

    /// Whether the metadata had what naming JS frames needs.
    pub(crate) fn usable(&self) -> bool {
        self.l.is_some()
    }

    /// The context-or-frame-type slot of the frame at `fp`. V8 stores markers as
    /// `type << 1` (a Smi-looking word; the 32-bit Smi form was llnode's era) and a context as
    /// a tagged pointer.
    pub(crate) fn slot(&self, fp: u64, meta: &Metadata) -> Option<Slot> {
        let l = self.l.as_ref()?;
        let word = self.mem.read_u64(fp.checked_add_signed(l.fp_marker)?)?;
        if word & 1 != 0 {
            return Some(Slot::Other);
        }
        let marker = if word < 1 << 16 {
            (word >> 1) as i64
        } else if word as u32 == 0 {
            (word >> 32) as i64
        } else {
            return Some(Slot::Other);
        };
        Some(Slot::Marker(
            marker,
            meta.frame_type_name(marker).map(str::to_owned),
        ))
    }

    /// The function of the JS frame at `fp`, `None` when the function slot does not hold a
    /// JSFunction whose shared info is readable: then it is not a JS frame.
    pub(crate) fn js_function(&self, fp: u64) -> Option<JsFunction> {
        let l = self.l.as_ref()?;
        let function = self.heap_object(self.word(fp.checked_add_signed(l.fp_function)?)?)?;
        let ty = self.instance_type(function)?;
        if let Some((first, last)) = l.js_function_types
            && !(first..=last).contains(&ty)
        {
            return None;
        }
        let sfi = self.heap_object(self.word(function.wrapping_add(l.fields.function_shared?))?)?;
        if Some(self.instance_type(sfi)?) != l.sfi_type {
            return None;
        }
        let info = self.shared_info(sfi);
        let script = info.script.and_then(|s| self.script_name(s));
        let current = self
            .bytecode_position(fp)
            .and_then(|pos| Some((pos, info.script?)))
            .and_then(|(pos, s)| self.position(s, pos, true));
        let start = || {
            let pos = info.token.or(info.start)?;
            self.position(info.script?, pos, false)
        };
        let name = match (info.name, info.inferred) {
            (Some(n), _) if !n.is_empty() => n,
            (_, Some(n)) if !n.is_empty() => n,
            (Some(_), _) => "(anonymous)".to_owned(),
            // The name slot held neither a string nor a ScopeInfo that reads: say so rather
            // than call the function anonymous.
            (None, _) => "(unknown)".to_owned(),
        };
        Some(JsFunction {
            name,
            script,
            position: current.or_else(start),
        })
    }

    /// Name, inferred name, script and start of a SharedFunctionInfo.
    fn shared_info(&self, sfi: u64) -> SharedInfo {
        let mut info = SharedInfo::default();
        let Some(l) = &self.l else { return info };
        if let Some(script) = l
            .fields
            .sfi_script
            .and_then(|o| self.word(sfi.wrapping_add(o)))
            .and_then(|w| self.heap_object(w))
            .filter(|&s| self.instance_type(s).is_some() && self.instance_type(s) == l.script_type)
        {
            info.script = Some(script);
        }
        let Some(word) = l
            .fields
            .sfi_name
            .and_then(|o| self.word(sfi.wrapping_add(o)))
        else {
            return info;
        };
        if let Some(obj) = self.heap_object(word) {
            let ty = self.instance_type(obj);
            if ty.is_some() && ty == l.scope_info_type {
                if let Some(scope) = self.scope_info(obj) {
                    // Without a function-name slot, the function has no name.
                    info.name = Some(scope.name.unwrap_or_default());
                    info.inferred = scope.inferred;
                    info.start = scope.start;
                }
            } else {
                info.name = self.string(word, MAX_NAME_LEN);
            }
        } else if word == 0 {
            // Smi zero: `kNoSharedNameSentinel`, an anonymous function.
            info.name = Some(String::new());
        }
        if let (Some(start), Some(o)) = (info.start, l.sfi_token_offset)
            && let Some(off) = self.mem.read(sfi.wrapping_add(o), 2)
        {
            let off = u16::from_le_bytes([off[0], off[1]]);
            if off != FUNCTION_TOKEN_OUT_OF_RANGE {
                info.token = start.checked_sub(u32::from(off));
            }
        }
        info
    }

    /// Decodes a ScopeInfo's function name, inferred name and start position, at the slots
    /// [`scope_slots`] finds from its flags and counts.
    fn scope_info(&self, addr: u64) -> Option<ScopeData> {
        let l = self.l.as_ref()?;
        let s = &l.scope;
        let slot = |i: u64| self.word(addr.wrapping_add(8 + 8 * i));
        let flags = if s.generation >= Generation::V13 {
            u64::from(self.read_u32(addr.wrapping_add(8))?)
        } else {
            smi(slot(0)?)? as u64
        };
        let locals = smi(slot(s.n_context_locals)?)?;
        let locals = u64::try_from(locals).ok().filter(|&n| n < 1 << 20)?;
        let slots = scope_slots(s.generation, flags, locals)?;
        let mut data = ScopeData::default();
        if let Some(i) = slots.function_name {
            let name = slot(i)?;
            data.name = if name == 0 {
                Some(String::new())
            } else {
                Some(self.string(name, MAX_NAME_LEN)?)
            };
            smi(slot(i + 1)?)?;
        }
        if let Some(i) = slots.inferred_name {
            // A string, or undefined.
            data.inferred = self.string(slot(i)?, MAX_NAME_LEN);
        }
        if let Some(i) = slots.position {
            if s.generation >= Generation::V13 {
                data.start = smi(slot(i)?).and_then(|v| u32::try_from(v).ok());
            } else {
                let (start, end) = (smi(slot(i)?)?, smi(slot(i + 1)?)?);
                if 0 <= start && start <= end {
                    data.start = u32::try_from(start).ok();
                }
            }
        }
        Some(data)
    }

    /// The source position being executed in an interpreted frame: its bytecode offset
    /// through the bytecode array's source position table. `None` for other frames (baseline
    /// frames hold the feedback vector where interpreted ones hold the offset), and when the
    /// table is not there (V8 may build it lazily).
    fn bytecode_position(&self, fp: u64) -> Option<u32> {
        let l = self.l.as_ref()?;
        let array = self.heap_object(self.word(fp.checked_add_signed(l.fp_bytecode_array?)?)?)?;
        if Some(self.instance_type(array)?) != l.bytecode_array_type {
            return None;
        }
        let raw = smi(self.word(fp.checked_add_signed(l.fp_bytecode_offset?)?)?)?;
        // The frame holds the offset from the tagged array pointer.
        let offset = raw.checked_sub(l.bytecode_data? as i64 - 1)?;
        let length = smi(self.word(array.wrapping_add(l.fixed_array_length))?)?;
        if !(0..length).contains(&offset) {
            return None;
        }
        let table = self.heap_object(self.word(array.wrapping_add(l.bytecode_positions?))?)?;
        // Undefined until V8 collects it, or a (trusted) byte array.
        if !l.byte_array_types.contains(&self.instance_type(table)?) {
            return None;
        }
        let len =
            usize::try_from(smi(self.word(table.wrapping_add(l.fixed_array_length))?)?).ok()?;
        if len > 16 << 20 {
            return None;
        }
        let bytes = self.mem.read(table.wrapping_add(l.fixed_array_data), len)?;
        let length = usize::try_from(length).ok()?;
        let (first, second) = match l.positions {
            PositionFormat::Signed => (PositionFormat::Signed, PositionFormat::Flagged),
            PositionFormat::Flagged => (PositionFormat::Flagged, PositionFormat::Signed),
        };
        // The version says the format; a table that does not read in it (offsets past the
        // bytecode) is tried in the other, for builds between the ones measured.
        position_at(bytes, offset, length, first)
            .or_else(|| position_at(bytes, offset, length, second))
    }

    /// Line and column (1-based) of a script position.
    fn position(&self, script: u64, pos: u32, current: bool) -> Option<Position> {
        let starts = self.line_starts(script)?;
        let line = starts.partition_point(|&s| s <= pos).checked_sub(1)?;
        Some(Position {
            line: u32::try_from(line).ok()? + 1,
            column: pos.checked_sub(starts[line])? + 1,
            current,
        })
    }

    /// Where each line of a script starts: from `Script.line_ends` when V8 computed them,
    /// else from the source.
    fn line_starts(&self, script: u64) -> Option<Rc<Vec<u32>>> {
        if let Some(cached) = self.lines.borrow().get(&script) {
            return cached.clone();
        }
        let starts = self.compute_line_starts(script).map(Rc::new);
        self.lines.borrow_mut().insert(script, starts.clone());
        starts
    }

    fn compute_line_starts(&self, script: u64) -> Option<Vec<u32>> {
        let l = self.l.as_ref()?;
        if let Some(ends) = l
            .fields
            .script_line_ends
            .and_then(|o| self.word(script.wrapping_add(o)))
            .and_then(|w| self.heap_object(w))
            .filter(|&a| {
                self.instance_type(a).is_some() && self.instance_type(a) == l.fixed_array_type
            })
        {
            let n = smi(self.word(ends.wrapping_add(l.fixed_array_length))?)?;
            if (0..1 << 24).contains(&n) {
                let mut starts = vec![0];
                for i in 0..n as u64 {
                    let end = smi(self.word(ends.wrapping_add(l.fixed_array_data + 8 * i))?)?;
                    starts.push(u32::try_from(end).ok()?.checked_add(1)?);
                }
                if starts.is_sorted() {
                    return Some(starts);
                }
            }
        }
        let source = self.word(script.wrapping_add(l.fields.script_source?))?;
        let mut starts = vec![0];
        let mut at = 0u32;
        self.for_each_piece(source, MAX_SOURCE_LEN, 0, &mut |piece| match piece {
            Piece::OneByte(b) => {
                for (i, &c) in b.iter().enumerate() {
                    if c == b'\n' {
                        starts.push(at + i as u32 + 1);
                    }
                }
                at += b.len() as u32;
            }
            Piece::TwoByte(b) => {
                for (i, c) in b.chunks_exact(2).enumerate() {
                    if c == [b'\n', 0] {
                        starts.push(at + i as u32 + 1);
                    }
                }
                at += (b.len() / 2) as u32;
            }
        })?;
        Some(starts)
    }

    fn script_name(&self, script: u64) -> Option<String> {
        let l = self.l.as_ref()?;
        self.string(
            self.word(script.wrapping_add(l.fields.script_name?))?,
            MAX_NAME_LEN,
        )
        .filter(|n| !n.is_empty())
    }

    /// A string's text, `None` when `tagged` is not a string or its characters are absent.
    /// Longer strings are cut at `max` characters.
    fn string(&self, tagged: u64, max: usize) -> Option<String> {
        let mut units: Vec<u16> = Vec::new();
        self.for_each_piece(tagged, max, 0, &mut |piece| match piece {
            Piece::OneByte(b) => units.extend(b.iter().map(|&c| u16::from(c))),
            Piece::TwoByte(b) => {
                units.extend(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])));
            }
        })?;
        units.truncate(max);
        Some(String::from_utf16_lossy(&units))
    }

    /// Calls `f` with the character data of a string, in order, up to `max` characters;
    /// follows cons, sliced, thin and external strings. `None` when it is not a string, or
    /// a part is absent.
    fn for_each_piece(
        &self,
        tagged: u64,
        max: usize,
        depth: usize,
        f: &mut dyn FnMut(Piece<'_>),
    ) -> Option<usize> {
        let mut budget = MAX_STRING_PARTS;
        self.pieces(tagged, 0, max, depth, &mut budget, f)
    }

    /// The characters `skip..skip + max` of a string.
    fn pieces(
        &self,
        tagged: u64,
        skip: usize,
        max: usize,
        depth: usize,
        budget: &mut u32,
        f: &mut dyn FnMut(Piece<'_>),
    ) -> Option<usize> {
        // A damaged heap can make a cons string a deep or shared tree: both are bounded.
        if depth > MAX_STRING_DEPTH || *budget == 0 {
            return None;
        }
        *budget -= 1;
        let l = self.l.as_ref()?;
        let s = &l.strings;
        let obj = self.heap_object(tagged)?;
        let ty = self.instance_type(obj)?;
        if ty & s.not_string_mask != 0 {
            return None;
        }
        let len = usize::try_from(self.read_i32(obj.wrapping_add(s.length))?).ok()?;
        if skip >= len || max == 0 {
            return Some(0);
        }
        let take = (len - skip).min(max);
        let one_byte = ty & s.encoding_mask == s.one_byte_tag;
        let unit = if one_byte { 1 } else { 2 };
        let mut flat = |data: u64| -> Option<usize> {
            let bytes = self
                .mem
                .read(data.checked_add((skip * unit) as u64)?, take * unit)?;
            f(if one_byte {
                Piece::OneByte(bytes)
            } else {
                Piece::TwoByte(bytes)
            });
            Some(take)
        };
        let rep = ty & s.representation_mask;
        if rep == s.seq_tag {
            flat(obj.wrapping_add(s.seq_chars))
        } else if rep == s.external_tag {
            if ty & s.uncached_mask != 0 {
                return None;
            }
            // The resource's data pointer, cached after the resource (not in "uncached"
            // external strings, which only V8's callbacks can read).
            let data = self.word(obj.wrapping_add(s.external_resource + 8))?;
            if data == 0 {
                return None;
            }
            flat(data)
        } else if rep == s.cons_tag {
            let first = self.word(obj.wrapping_add(s.cons_first))?;
            let second = self.word(obj.wrapping_add(s.cons_second))?;
            let first_len = self.string_length(first)?;
            let mut done = 0;
            if skip < first_len {
                done = self.pieces(first, skip, take, depth + 1, budget, f)?;
            }
            if done < take {
                let skip2 = skip.saturating_sub(first_len);
                done += self.pieces(second, skip2, take - done, depth + 1, budget, f)?;
            }
            Some(done)
        } else if rep == s.sliced_tag {
            let parent = self.word(obj.wrapping_add(s.sliced_parent))?;
            let offset =
                usize::try_from(smi(self.word(obj.wrapping_add(s.sliced_offset))?)?).ok()?;
            self.pieces(
                parent,
                offset.saturating_add(skip),
                take,
                depth + 1,
                budget,
                f,
            )
        } else if rep == s.thin_tag {
            self.pieces(
                self.word(obj.wrapping_add(s.thin_actual))?,
                skip,
                take,
                depth + 1,
                budget,
                f,
            )
        } else {
            None
        }
    }

    fn string_length(&self, tagged: u64) -> Option<usize> {
        let l = self.l.as_ref()?;
        let obj = self.heap_object(tagged)?;
        usize::try_from(self.read_i32(obj.wrapping_add(l.strings.length))?).ok()
    }

    fn word(&self, addr: u64) -> Option<u64> {
        self.mem.read_u64(addr)
    }

    fn read_u32(&self, addr: u64) -> Option<u32> {
        Some(u32::from_le_bytes(self.mem.read(addr, 4)?.try_into().ok()?))
    }

    fn read_i32(&self, addr: u64) -> Option<i32> {
        Some(i32::from_le_bytes(self.mem.read(addr, 4)?.try_into().ok()?))
    }

    /// The address of a tagged heap object pointer (`…01`; weak references end `…11`).
    fn heap_object(&self, tagged: u64) -> Option<u64> {
        (tagged & 3 == 1 && tagged > 1).then(|| tagged - 1)
    }

    fn instance_type(&self, obj: u64) -> Option<u16> {
        let l = self.l.as_ref()?;
        let map = self.heap_object(self.word(obj)?)?;
        let b = self.mem.read(map.wrapping_add(l.map_instance_type), 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
}

#[derive(Default)]
struct SharedInfo {
    /// `None` when unreadable; empty for an anonymous function.
    name: Option<String>,
    inferred: Option<String>,
    script: Option<u64>,
    /// The start of the function's source range (its parameters' `(`).
    start: Option<u32>,
    /// Where its `function` keyword (or method name) is.
    token: Option<u32>,
}

#[derive(Default)]
struct ScopeData {
    /// The function-name slot's string (empty: the sentinel), `None` without the slot.
    name: Option<String>,
    inferred: Option<String>,
    start: Option<u32>,
}

enum Piece<'a> {
    OneByte(&'a [u8]),
    TwoByte(&'a [u8]),
}

/// A Smi's value (x64 without pointer compression: the upper 32 bits).
fn smi(word: u64) -> Option<i64> {
    (word & 1 == 0 && word as u32 == 0).then_some((word as i64) >> 32)
}

impl Layout {
    fn new(meta: &Metadata, v8_major: Option<u32>) -> Option<Layout> {
        let field = |c: &str, f: &str| meta.field(c, f).and_then(|v| u64::try_from(v).ok());
        let c = |n: &str| meta.constant(n);
        // Masks are `int`s (IsNotStringMask is -128): their low 16 bits apply to a u16 type.
        let u16c = |n: &str| c(n).map(|v| v as u16);
        let strings = StringLayout {
            not_string_mask: u16c("IsNotStringMask")?,
            representation_mask: u16c("StringRepresentationMask")?,
            encoding_mask: u16c("StringEncodingMask")?,
            one_byte_tag: u16c("OneByteStringTag")?,
            seq_tag: u16c("SeqStringTag")?,
            cons_tag: u16c("ConsStringTag")?,
            external_tag: u16c("ExternalStringTag")?,
            sliced_tag: u16c("SlicedStringTag")?,
            thin_tag: u16c("ThinStringTag")?,
            length: field("String", "length")?,
            seq_chars: field("SeqOneByteString", "chars")?,
            cons_first: field("ConsString", "first")?,
            cons_second: field("ConsString", "second")?,
            sliced_parent: field("SlicedString", "parent")?,
            sliced_offset: field("SlicedString", "offset")?,
            thin_actual: field("ThinString", "actual")?,
            external_resource: field("ExternalString", "resource")?,
            // Exported as types from V8 12; the bit has been `kUncachedExternalStringMask`
            // since V8 7.
            uncached_mask: match (
                meta.instance_type("UNCACHED_EXTERNAL_ONE_BYTE_STRING_TYPE"),
                meta.instance_type("EXTERNAL_ONE_BYTE_STRING_TYPE"),
            ) {
                (Some(a), Some(b)) if (a ^ b).is_power_of_two() => a ^ b,
                _ => 0x10,
            },
        };
        // Without the ScopeInfo indices the metadata is not one this reader knows.
        meta.constant("scopeinfo_idx_first_vars")?;
        let scope = ScopeLayout {
            n_context_locals: u64::try_from(meta.constant("scopeinfo_idx_ncontextlocals")?).ok()?,
            generation: Generation::of(meta),
        };
        let ty = |n: &str| meta.instance_type(n);
        let js_function_types = match (u16c("FirstJSFunctionType"), u16c("LastJSFunctionType")) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        let bytecode_positions = if meta.field("BytecodeArray", "wrapper").is_some() {
            Some(24)
        } else if meta.field("BytecodeArray", "data").is_some() {
            Some(32)
        } else {
            None
        };
        Some(Layout {
            map_instance_type: field("Map", "instance_type")?,
            fp_marker: meta
                .fp_offset("context_or_frame_type")
                .or_else(|| meta.fp_offset("context"))?,
            fp_function: meta.fp_offset("function")?,
            fp_bytecode_array: meta.fp_offset("bytecode_array"),
            fp_bytecode_offset: meta.fp_offset("bytecode_offset"),
            js_function_types,
            sfi_type: ty("SHARED_FUNCTION_INFO_TYPE"),
            scope_info_type: ty("SCOPE_INFO_TYPE"),
            script_type: ty("SCRIPT_TYPE"),
            bytecode_array_type: ty("BYTECODE_ARRAY_TYPE"),
            fixed_array_type: ty("FIXED_ARRAY_TYPE"),
            byte_array_types: ["BYTE_ARRAY_TYPE", "TRUSTED_BYTE_ARRAY_TYPE"]
                .iter()
                .filter_map(|n| ty(n))
                .collect(),
            fields: ScriptFields::new(meta),
            sfi_token_offset: field("SharedFunctionInfo", "raw_function_token_offset"),
            bytecode_data: field("BytecodeArray", "data"),
            bytecode_positions,
            positions: if v8_major.is_some_and(|m| m >= 14) {
                PositionFormat::Flagged
            } else {
                PositionFormat::Signed
            },
            fixed_array_length: field("FixedArrayBase", "length").unwrap_or(8),
            fixed_array_data: field("FixedArray", "data").unwrap_or(16),
            strings,
            scope,
        })
    }
}
