//! What V8 does not export but the walk needs: how each instance type's objects are sized,
//! the numbers of the types the metadata leaves unnamed, and ScopeInfo's layout, per V8
//! generation. Each rule was checked by walking every page of real cores of Node 20, 22, 24
//! and 26 to its end.

use crate::error::Result;
use crate::metadata::Metadata;

/// ScopeInfo keeps up to this many context-local names inline; more go to a hash table that
/// takes one slot (`kScopeInfoMaxInlinedLocalNamesSize`, V8 10 to 14).
const MAX_INLINED_LOCAL_NAMES: u64 = 75;

/// The V8 generation, as far as the layouts this module hard-codes differ, told apart by the
/// metadata: V8 12 added `BytecodeArray::wrapper`; V8 13 moved ScopeInfo's source range
/// into its header (`scopeinfo_idx_first_vars` 3 → 5); V8 14 grew `DescriptorArray`'s header
/// from 24 to 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Generation {
    /// V8 11 (Node 20).
    V11,
    /// V8 12 (Node 22).
    V12,
    /// V8 13 (Node 24).
    V13,
    /// V8 14 (Node 26), and later until they differ.
    V14,
}

impl Generation {
    pub(crate) fn of(meta: &Metadata) -> Generation {
        let first_vars = meta.constant("scopeinfo_idx_first_vars").unwrap_or(3);
        let descriptors = meta.field("DescriptorArray", "header_size").unwrap_or(24);
        if meta.field("BytecodeArray", "wrapper").is_none() {
            Generation::V11
        } else if first_vars < 5 {
            Generation::V12
        } else if descriptors < 32 {
            Generation::V13
        } else {
            Generation::V14
        }
    }
}

/// How an object's size follows from its Map and its own fields (little-endian, at byte
/// offsets from the object's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The Map's instance size.
    Fixed,
    /// Always this many bytes, whatever the Map says (V8's `WasmNull` without static roots).
    Const(u16),
    /// `header + 8 × n`, `n` the Smi at +8: FixedArray and its kin.
    Tagged { header: u8 },
    /// `header + 8 × n`, `n` the Smi at `length_at` (WebAssembly's type infos).
    TaggedAt { header: u8, length_at: u8 },
    /// `header + n` rounded up to 8, `n` the Smi at +8: ByteArray, BytecodeArray.
    Bytes { header: u8 },
    /// 16 + n (× 2 for two-byte) rounded up to 8, `n` the `int32` at `String::length`.
    SeqString { two_byte: bool },
    /// A free-space filler: its size is the Smi at +8, in bytes (V8 ≤ 12) or words (V8 ≥ 13).
    FreeSpace { words: bool },
    /// `header + 24 × n`, `n` the `uint16` count of all descriptors at +8.
    Descriptors { header: u8 },
    /// 16 + 8 × n, `n` the low 10 bits of the Smi at +8 (the rest is the hash).
    PropertyArray,
    /// `header + 8 × n`, `n` the `int32` at +8.
    FeedbackVector { header: u8 },
    /// 16 + 4 × ⌈slots / 6⌉ (+ 2 × closures from V8 13), rounded up to 8: `slots` and
    /// `closures` the `int32`s at +8 and +12.
    FeedbackMetadata { closures: bool },
    /// 16 + data rounded up to 8, + 8 × children: the `int32`s at +8 and +12.
    PreparseData,
    /// 16 + 8 × digits, the digits in bits 1–30 of the `uint32` at +8.
    BigInt,
    /// 40 + 18 × capacity rounded up to 8, the capacity the `int32` at +12.
    SwissNameDictionary,
    /// 16 + 16 × n, `n` the `uint32` at +8 (V8 14's number-to-string cache).
    Pairs,
    /// As its flags and counts say ([`ScopeSlots`]).
    ScopeInfo,
    /// Code: `header + body` rounded up to 64; the body size is the `int32` at +24 (V8 ≥ 12)
    /// or, in V8 11, the instruction and metadata sizes of the `Code` object it points to.
    InstructionStream { header: u8 },
    /// A hole (`the_hole`, …): its Map's size, or, when the Map gives none (V8 14's
    /// read-only space), the map word and a 64 KiB inaccessible payload that traps reads.
    Hole,
    /// Not known for this instance type.
    Unknown,
}

/// Offsets and instance types, asked of the metadata once per core.
pub(crate) struct Layout {
    pub(crate) generation: Generation,
    pub(crate) map_type: u16,
    pub(crate) map_instance_size: u64,
    pub(crate) map_instance_type: u64,
    pub(crate) map_constructor: u64,
    pub(crate) string_length: u64,
    /// Instance types below this are strings.
    pub(crate) first_nonstring: u16,
    pub(crate) string_representation_mask: u16,
    pub(crate) string_encoding_mask: u16,
    pub(crate) one_byte_tag: u16,
    pub(crate) seq_tag: u16,
    pub(crate) cons_tag: u16,
    pub(crate) sliced_tag: u16,
    pub(crate) external_tag: u16,
    pub(crate) thin_tag: u16,
    /// The filler types (free space, one- and two-word fillers): not objects.
    pub(crate) fillers: Vec<u16>,
    /// The size rule of each instance type whose Map gives no fixed size, by number.
    rules: Vec<Rule>,
}

impl Layout {
    pub(crate) fn new(meta: &Metadata) -> Result<Layout> {
        let field = |class: &str, f: &str| -> Result<u64> {
            meta.require(
                &format!("{class}::{f}"),
                meta.field(class, f).and_then(|v| u64::try_from(v).ok()),
            )
        };
        let constant = |name: &str| -> Result<u16> {
            // Masks are `int`s: their low 16 bits apply to an instance type.
            meta.require(name, meta.constant(name).map(|v| v as u16))
        };
        let mut layout = Layout {
            generation: Generation::of(meta),
            map_type: meta.require("MAP_TYPE", meta.instance_type("MAP_TYPE"))?,
            map_instance_size: field("Map", "instance_size_in_words")?,
            map_instance_type: field("Map", "instance_type")?,
            map_constructor: field("Map", "constructor_or_back_pointer")?,
            string_length: field("String", "length")?,
            first_nonstring: constant("FirstNonstringType")?,
            string_representation_mask: constant("StringRepresentationMask")?,
            string_encoding_mask: constant("StringEncodingMask")?,
            one_byte_tag: constant("OneByteStringTag")?,
            seq_tag: constant("SeqStringTag")?,
            cons_tag: constant("ConsStringTag")?,
            sliced_tag: constant("SlicedStringTag")?,
            external_tag: constant("ExternalStringTag")?,
            thin_tag: constant("ThinStringTag")?,
            fillers: Vec::new(),
            rules: Vec::new(),
        };
        let types = Types::new(meta);
        layout.fillers = types.fillers();
        layout.rules = rules(meta, &layout, &types);
        Ok(layout)
    }

    /// The rule for objects of an instance type whose Map gives no fixed size.
    pub(crate) fn variable_rule(&self, instance_type: u16) -> Rule {
        self.rules
            .get(usize::from(instance_type))
            .copied()
            .unwrap_or(Rule::Unknown)
    }

    /// Whether the instance type is a string's.
    pub(crate) fn is_string(&self, instance_type: u16) -> bool {
        instance_type < self.first_nonstring
    }

    /// Whether objects of this type are free memory, not objects.
    pub(crate) fn is_filler(&self, instance_type: u16) -> bool {
        self.fillers.contains(&instance_type)
    }
}

/// Instance types by name, and the unnamed ones found by their neighbours.
pub(crate) struct Types<'m> {
    meta: &'m Metadata,
}

impl<'m> Types<'m> {
    pub(crate) fn new(meta: &'m Metadata) -> Self {
        Types { meta }
    }

    pub(crate) fn named(&self, name: &str) -> Option<u16> {
        self.meta.instance_type(name)
    }

    /// The type `offset` after the named one, if the metadata names no type there (V8 numbers
    /// a class's siblings by name, so an unnamed neighbour is a known class).
    fn unnamed_after(&self, name: &str, offset: u16) -> Option<u16> {
        let t = self.named(name)?.checked_add(offset)?;
        self.meta.instance_type_name(t).is_none().then_some(t)
    }

    /// The type before the named one, if unnamed.
    fn unnamed_before(&self, name: &str) -> Option<u16> {
        let t = self.named(name)?.checked_sub(1)?;
        self.meta.instance_type_name(t).is_none().then_some(t)
    }

    /// `FREE_SPACE_TYPE`: named until V8 12, then the type two after `FEEDBACK_VECTOR_TYPE`
    /// (`FEEDBACK_VECTOR`, `FILLER`, `FREE_SPACE` in name order, V8 11 to 14).
    pub(crate) fn free_space(&self) -> Option<u16> {
        self.named("FREE_SPACE_TYPE")
            .or_else(|| self.unnamed_after("FEEDBACK_VECTOR_TYPE", 2))
    }

    /// `FILLER_TYPE` (one- and two-word fillers): right after `FEEDBACK_VECTOR_TYPE`.
    pub(crate) fn filler(&self) -> Option<u16> {
        self.named("FILLER_TYPE")
            .or_else(|| self.unnamed_after("FEEDBACK_VECTOR_TYPE", 1))
    }

    /// `FEEDBACK_METADATA_TYPE`: right before `FEEDBACK_VECTOR_TYPE`.
    pub(crate) fn feedback_metadata(&self) -> Option<u16> {
        self.named("FEEDBACK_METADATA_TYPE")
            .or_else(|| self.unnamed_before("FEEDBACK_VECTOR_TYPE"))
    }

    /// `BIG_INT_BASE_TYPE`: between `SYMBOL_TYPE` and `HEAP_NUMBER_TYPE`.
    pub(crate) fn big_int(&self) -> Option<u16> {
        self.named("BIG_INT_BASE_TYPE").or_else(|| {
            let t = self.unnamed_after("SYMBOL_TYPE", 1)?;
            (self.named("HEAP_NUMBER_TYPE")? == t + 1).then_some(t)
        })
    }

    /// The unnamed types right after a named one: its subclasses, which V8 numbers after it
    /// (FixedArray's hash tables and dictionaries, WeakFixedArray's TransitionArray).
    pub(crate) fn subclasses(&self, name: &str) -> Vec<u16> {
        let Some(first) = self.named(name) else {
            return Vec::new();
        };
        (first.saturating_add(1)..u16::MAX)
            .take_while(|&t| self.meta.instance_type_name(t).is_none() && t < 4096)
            .collect()
    }

    /// The context types (`FirstContextType`..=`LastContextType`).
    pub(crate) fn contexts(&self) -> Option<(u16, u16)> {
        let first = u16::try_from(self.meta.constant("FirstContextType")?).ok()?;
        let last = u16::try_from(self.meta.constant("LastContextType")?).ok()?;
        Some((first, last))
    }

    /// `NATIVE_CONTEXT_TYPE`: the eighth of the ten context types (`AWAIT`, `BLOCK`,
    /// `CATCH`, `DEBUG_EVALUATE`, `EVAL`, `FUNCTION`, `MODULE`, `NATIVE`, `SCRIPT`, `WITH`
    /// in V8 11 to 14); `None` when there are not ten.
    pub(crate) fn native_context(&self) -> Option<u16> {
        self.named("NATIVE_CONTEXT_TYPE").or_else(|| {
            let (first, last) = self.contexts()?;
            (last.checked_sub(first)? == 9).then_some(last - 2)
        })
    }

    /// `HOLE_TYPE` (V8 ≥ 12): three after `FEEDBACK_VECTOR_TYPE`, after the fillers.
    pub(crate) fn hole(&self) -> Option<u16> {
        self.named("HOLE_TYPE")
            .or_else(|| self.unnamed_after("FEEDBACK_VECTOR_TYPE", 3))
    }

    fn fillers(&self) -> Vec<u16> {
        [self.free_space(), self.filler()]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The size rule of every instance type this module knows, by number.
fn rules(meta: &Metadata, l: &Layout, types: &Types<'_>) -> Vec<Rule> {
    let max = meta
        .instance_types()
        .map(|(_, t)| t)
        .max()
        .unwrap_or(0)
        .max(l.first_nonstring);
    let mut rules = vec![Rule::Unknown; usize::from(max) + 2];
    for t in 0..l.first_nonstring {
        if t & l.string_representation_mask == l.seq_tag {
            rules[usize::from(t)] = Rule::SeqString {
                two_byte: t & l.string_encoding_mask != l.one_byte_tag,
            };
        }
    }
    let g = l.generation;
    let tagged = Rule::Tagged { header: 16 };
    let header = |class: &str, field: &str, default: u8| {
        meta.field(class, field)
            .and_then(|v| u8::try_from(v).ok())
            .unwrap_or(default)
    };
    let mut set = |t: Option<u16>, rule: Rule| {
        if let Some(t) = t.map(usize::from).filter(|&t| t < rules.len()) {
            rules[t] = rule;
        }
    };
    let named = |n: &str| types.named(n);
    for name in [
        "FIXED_ARRAY_TYPE",
        "FIXED_DOUBLE_ARRAY_TYPE",
        "WEAK_FIXED_ARRAY_TYPE",
        "CLOSURE_FEEDBACK_CELL_ARRAY_TYPE",
        "EMBEDDER_DATA_ARRAY_TYPE",
        "EXTERNAL_POINTER_ARRAY_TYPE",
        "TRUSTED_FIXED_ARRAY_TYPE",
        "PROTECTED_FIXED_ARRAY_TYPE",
        "TRUSTED_WEAK_FIXED_ARRAY_TYPE",
        "PROTECTED_WEAK_FIXED_ARRAY_TYPE",
    ] {
        set(named(name), tagged);
    }
    for sub in types
        .subclasses("FIXED_ARRAY_TYPE")
        .into_iter()
        .chain(types.subclasses("WEAK_FIXED_ARRAY_TYPE"))
    {
        set(Some(sub), tagged);
    }
    if let Some((first, last)) = types.contexts() {
        for t in first..=last {
            set(Some(t), tagged);
        }
        // The native context keeps a raw pointer (its microtask queue) after its slots.
        set(types.native_context(), Rule::Tagged { header: 24 });
    }
    set(types.hole(), Rule::Hole);
    set(named("WEAK_ARRAY_LIST_TYPE"), Rule::Tagged { header: 24 });
    if g >= Generation::V12 {
        // V8 12 gave these headers of their own; in V8 11 they are FixedArray subclasses.
        set(named("ARRAY_LIST_TYPE"), Rule::Tagged { header: 24 });
        set(
            named("OBJECT_BOILERPLATE_DESCRIPTION_TYPE"),
            Rule::Tagged { header: 32 },
        );
        set(
            named("SCRIPT_CONTEXT_TABLE_TYPE"),
            Rule::Tagged { header: 32 },
        );
        set(
            named("REG_EXP_MATCH_INFO_TYPE"),
            Rule::Tagged { header: 40 },
        );
    }
    set(
        named("SLOPPY_ARGUMENTS_ELEMENTS_TYPE"),
        Rule::Tagged { header: 32 },
    );
    for name in ["BYTE_ARRAY_TYPE", "TRUSTED_BYTE_ARRAY_TYPE"] {
        set(named(name), Rule::Bytes { header: 16 });
    }
    set(
        named("BYTECODE_ARRAY_TYPE"),
        Rule::Bytes {
            header: header("BytecodeArray", "data", 54),
        },
    );
    set(
        types.free_space(),
        Rule::FreeSpace {
            words: g >= Generation::V13,
        },
    );
    let descriptors = Rule::Descriptors {
        header: header("DescriptorArray", "header_size", 24),
    };
    set(named("DESCRIPTOR_ARRAY_TYPE"), descriptors);
    set(named("STRONG_DESCRIPTOR_ARRAY_TYPE"), descriptors);
    set(named("PROPERTY_ARRAY_TYPE"), Rule::PropertyArray);
    set(
        named("FEEDBACK_VECTOR_TYPE"),
        Rule::FeedbackVector {
            header: if g >= Generation::V13 { 48 } else { 56 },
        },
    );
    set(
        types.feedback_metadata(),
        Rule::FeedbackMetadata {
            closures: g >= Generation::V13,
        },
    );
    set(named("PREPARSE_DATA_TYPE"), Rule::PreparseData);
    set(types.big_int(), Rule::BigInt);
    set(
        named("SWISS_NAME_DICTIONARY_TYPE"),
        Rule::SwissNameDictionary,
    );
    set(named("DOUBLE_STRING_CACHE_TYPE"), Rule::Pairs);
    // The supertypes after a header: its native type and instance in V8 12, its type
    // indices from V8 13 (unseen in V8 11 cores so far).
    let type_info = match g {
        Generation::V11 => Rule::Unknown,
        Generation::V12 => Rule::TaggedAt {
            header: 40,
            length_at: 32,
        },
        _ => Rule::TaggedAt {
            header: 24,
            length_at: 16,
        },
    };
    set(named("WASM_TYPE_INFO_TYPE"), type_info);
    set(named("SCOPE_INFO_TYPE"), Rule::ScopeInfo);
    set(named("WASM_NULL_TYPE"), Rule::Const(8));
    set(
        named("INSTRUCTION_STREAM_TYPE"),
        Rule::InstructionStream {
            header: header("InstructionStream", "instruction_start", 16),
        },
    );
    rules
}

/// Where the optional parts of a ScopeInfo are, as slot indices (slot 0 follows the map).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScopeSlots {
    /// The function's name (a String, or Smi 0 when anonymous), then its slot index.
    pub(crate) function_name: Option<u64>,
    /// The inferred name (a String, or undefined).
    pub(crate) inferred_name: Option<u64>,
    /// The source range: start, end (Smis).
    pub(crate) position: Option<u64>,
    /// A module scope's variable count (a Smi); its variables (three slots each) are not in
    /// `count`.
    pub(crate) module_variables: Option<u64>,
    /// How many slots there are.
    pub(crate) count: u64,
}

/// ScopeInfo's flags (a Smi in V8 11 and 12, a `uint32` from V8 13), the same bits in V8 11
/// to 14 as far as they matter here: scope type (bits 0–3), saved class variable (10),
/// function variable (12–13), inferred name (14), outer scope info (22), locals block list
/// (28), empty (29).
pub(crate) fn scope_slots(g: Generation, flags: u64, locals: u64) -> Option<ScopeSlots> {
    if locals > 1 << 20 {
        return None;
    }
    let bit = |n: u32| flags >> n & 1 == 1;
    let scope_type = flags & 0xf;
    // ScopeType: CLASS, EVAL, FUNCTION, MODULE, SCRIPT, CATCH, BLOCK, WITH, SHADOW_REALM in
    // V8 11 and 12; SCRIPT, REPL_MODE, CLASS, EVAL, FUNCTION, MODULE, CATCH, BLOCK, WITH,
    // SHADOW_REALM from V8 13.
    let (function, module, catch_block_with) = if g >= Generation::V13 {
        (4, 5, 6..=8)
    } else {
        (2, 3, 5..=7)
    };
    let mut s = ScopeSlots::default();
    let mut i: u64;
    if g >= Generation::V13 {
        // flags (+ padding), parameter count, context local count, start, end.
        s.position = Some(3);
        i = 5;
    } else {
        // flags, parameter count, context local count.
        i = 3;
    }
    if scope_type == module && g >= Generation::V12 {
        s.module_variables = Some(i);
        i += 1; // the module variable count, here from V8 12 (last in V8 11)
    }
    i += if locals < MAX_INLINED_LOCAL_NAMES {
        locals
    } else {
        1
    };
    i += locals; // their infos
    if bit(10) {
        i += 1;
    }
    if flags >> 12 & 3 != 0 {
        s.function_name = Some(i);
        i += 2;
    }
    if bit(14) {
        s.inferred_name = Some(i);
        i += 1;
    }
    if g < Generation::V13 && !bit(29) && !catch_block_with.contains(&scope_type) {
        s.position = Some(i);
        i += 2;
    }
    if bit(22) {
        i += 1;
    }
    if bit(28) {
        i += 1;
    }
    if g >= Generation::V14 && scope_type == function {
        i += 1;
    }
    if scope_type == module {
        // The module info, then (V8 11) the module variable count; module variables take
        // three slots each and are counted by the caller.
        i += if g == Generation::V11 { 2 } else { 1 };
    }
    if scope_type == module && g == Generation::V11 {
        s.module_variables = Some(i - 1);
    }
    s.count = i;
    Some(s)
}

/// The offsets of the JSFunction, SharedFunctionInfo and Script fields that both the stack
/// reader and the heap namer follow from a function to its name and script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ScriptFields {
    /// `JSFunction::shared`.
    pub(crate) function_shared: Option<u64>,
    /// `SharedFunctionInfo::name_or_scope_info`.
    pub(crate) sfi_name: Option<u64>,
    /// `SharedFunctionInfo::script`, or `script_or_debug_info` where V8 names it so.
    pub(crate) sfi_script: Option<u64>,
    /// `Script::name`.
    pub(crate) script_name: Option<u64>,
    /// `Script::source`.
    pub(crate) script_source: Option<u64>,
    /// `Script::line_ends`.
    pub(crate) script_line_ends: Option<u64>,
}

impl ScriptFields {
    pub(crate) fn new(meta: &Metadata) -> ScriptFields {
        let field = |c: &str, f: &str| meta.field(c, f).and_then(|v| u64::try_from(v).ok());
        ScriptFields {
            function_shared: field("JSFunction", "shared"),
            sfi_name: field("SharedFunctionInfo", "name_or_scope_info"),
            sfi_script: field("SharedFunctionInfo", "script")
                .or_else(|| field("SharedFunctionInfo", "script_or_debug_info")),
            script_name: field("Script", "name"),
            script_source: field("Script", "source"),
            script_line_ends: field("Script", "line_ends"),
        }
    }
}
