//! The census's class names: what DevTools' Summary would call the objects of a Map, and
//! where their constructor is in the source.
//!
//! For a JS object, the constructor is found from its Map: `constructor_or_back_pointer`
//! holds either the previous Map of the transition tree (followed, a bounded number of steps,
//! so a cycle in a damaged core ends) or the constructor. A JSFunction's name is its
//! SharedFunctionInfo's `name_or_scope_info`: a String until the function is compiled, then a
//! ScopeInfo, whose *function variable* slot holds the name (V8 puts the name there when it
//! installs the ScopeInfo: `SharedFunctionInfo::SetScopeInfo`). Where that slot is follows
//! from the ScopeInfo's flags and counts ([`scope_slots`]), exactly, in every layout from V8 11
//! to 14; class constructors are compiled functions like any other, so `class Order` is found
//! this way, not by guessing among the ScopeInfo's strings as llnode did.
//!
//! The constructor's source position is the SharedFunctionInfo's start (ScopeInfo's source
//! range, or `UncompiledData::start_position` before compilation) in its Script, turned into a
//! line and column with `Script::line_ends` when V8 computed them, else by counting the
//! newlines of the Script's source.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::census::Location;
use crate::heap::{Generation, Heap, MapFacts, ScriptFields, Types, scope_slots, smi, untag};
use crate::metadata::Metadata;

/// Back pointers followed before giving up: the transition tree is as deep as an object has
/// properties added one by one, and V8 turns objects with more than 1020 into dictionaries.
const MAX_BACK_POINTERS: usize = 8192;
/// The longest name read.
const MAX_NAME: usize = 1024;
/// The largest source scanned for line starts.
const MAX_SOURCE: usize = 256 << 20;
/// How deep cons strings are followed.
const MAX_STRING_DEPTH: usize = 32;

/// What a Map's objects are called.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Class {
    pub(crate) name: String,
    pub(crate) location: Option<Location>,
}

/// Names the objects of Maps; caches what several Maps share (constructors, scripts).
pub(crate) struct Namer<'h, 'c, 'a> {
    heap: &'h Heap<'c, 'a>,
    l: NameLayout,
    /// `(system) <Class>` by instance type, from the metadata's `type_<Class>__<TYPE>`.
    system: FxHashMap<u16, String>,
    constructors: FxHashMap<u64, Option<Class>>,
    /// The end of each Map's back-pointer chain ([`Namer::constructor_word`]).
    back: FxHashMap<u64, Option<u64>>,
    chain: Vec<u64>,
    on_chain: FxHashSet<u64>,
    line_starts: FxHashMap<u64, Option<Vec<u32>>>,
}

/// Offsets and types naming needs, read once.
struct NameLayout {
    generation: Generation,
    first_receiver: u16,
    functions: Vec<u16>,
    code: Vec<u16>,
    arrays: Vec<u16>,
    fixed_array: Option<u16>,
    named_js: FxHashMap<u16, &'static str>,
    heap_number: Option<u16>,
    symbol: Option<u16>,
    big_int: Option<u16>,
    sfi: Option<u16>,
    scope_info: Option<u16>,
    script: Option<u16>,
    uncompiled: Vec<u16>,
    map_bit_field3: u64,
    /// `Map::bit_field3`'s `is_prototype_map` bit: the bit before `is_dictionary_map`, after
    /// the own-descriptor count (V8 8 to 14).
    prototype_bit: Option<u32>,
    fields: ScriptFields,
    uncompiled_start: Option<u64>,
    uncompiled_inferred: Option<u64>,
    cons_first: Option<u64>,
    cons_second: Option<u64>,
    sliced_parent: Option<u64>,
    sliced_offset: Option<u64>,
    thin_actual: Option<u64>,
    external_resource: Option<u64>,
    uncached_external: u16,
}

impl NameLayout {
    fn new(meta: &Metadata, heap: &Heap<'_, '_>) -> NameLayout {
        let types = Types::new(meta);
        let ty = |n: &str| types.named(n);
        let field = |c: &str, f: &str| meta.field(c, f).and_then(|v| u64::try_from(v).ok());
        let constant = |n: &str| meta.constant(n).and_then(|v| u16::try_from(v).ok());
        // JSFunction and its subclasses (class constructors, builtins' constructors, …):
        // exported as a range from V8 12. V8 11 names only JS_FUNCTION_TYPE; its subclasses'
        // Maps name the `Function` constructor, which gives them the same name.
        let mut functions: Vec<u16> = match (
            constant("FirstJSFunctionType"),
            constant("LastJSFunctionType"),
        ) {
            (Some(a), Some(b)) => (a..=b).collect(),
            _ => ty("JS_FUNCTION_TYPE").into_iter().collect(),
        };
        functions.extend(ty("JS_BOUND_FUNCTION_TYPE"));
        functions.extend(ty("JS_WRAPPED_FUNCTION_TYPE"));
        let first_receiver = [
            "JS_PROXY_TYPE",
            "JS_GLOBAL_OBJECT_TYPE",
            "JS_GLOBAL_PROXY_TYPE",
        ]
        .iter()
        .filter_map(|n| ty(n))
        .min()
        .unwrap_or(1024);
        let code = [
            "CODE_TYPE",
            "INSTRUCTION_STREAM_TYPE",
            "BYTECODE_ARRAY_TYPE",
        ]
        .iter()
        .filter_map(|n| ty(n))
        .collect();
        let mut arrays: Vec<u16> = [
            "FIXED_ARRAY_TYPE",
            "FIXED_DOUBLE_ARRAY_TYPE",
            "BYTE_ARRAY_TYPE",
            "PROPERTY_ARRAY_TYPE",
        ]
        .iter()
        .filter_map(|n| ty(n))
        .collect();
        arrays.extend(types.subclasses("FIXED_ARRAY_TYPE"));
        let named_js = [
            ("JS_ARRAY_TYPE", "Array"),
            ("JS_REG_EXP_TYPE", "RegExp"),
            ("JS_ERROR_TYPE", "Error"),
            ("JS_MAP_TYPE", "Map"),
            ("JS_SET_TYPE", "Set"),
            ("JS_WEAK_MAP_TYPE", "WeakMap"),
            ("JS_WEAK_SET_TYPE", "WeakSet"),
            ("JS_PROMISE_TYPE", "Promise"),
            ("JS_DATE_TYPE", "Date"),
            ("JS_ARRAY_BUFFER_TYPE", "ArrayBuffer"),
            ("JS_DATA_VIEW_TYPE", "DataView"),
            ("JS_WEAK_REF_TYPE", "WeakRef"),
            ("JS_PROXY_TYPE", "Proxy"),
        ]
        .iter()
        .filter_map(|&(n, name)| Some((ty(n)?, name)))
        .collect();
        let uncached_external = match (
            ty("UNCACHED_EXTERNAL_ONE_BYTE_STRING_TYPE"),
            ty("EXTERNAL_ONE_BYTE_STRING_TYPE"),
        ) {
            (Some(a), Some(b)) if (a ^ b).is_power_of_two() => a ^ b,
            _ => 0x10,
        };
        NameLayout {
            generation: heap.layout.generation,
            first_receiver,
            functions,
            code,
            arrays,
            fixed_array: ty("FIXED_ARRAY_TYPE"),
            named_js,
            heap_number: ty("HEAP_NUMBER_TYPE"),
            symbol: ty("SYMBOL_TYPE"),
            big_int: types.big_int(),
            sfi: ty("SHARED_FUNCTION_INFO_TYPE"),
            scope_info: ty("SCOPE_INFO_TYPE"),
            script: ty("SCRIPT_TYPE"),
            uncompiled: meta
                .instance_types()
                .filter(|(n, _)| n.starts_with("UNCOMPILED_DATA_"))
                .map(|(_, t)| t)
                .collect(),
            map_bit_field3: field("Map", "bit_field3").unwrap_or(16),
            prototype_bit: {
                let dictionary = meta.constant("bit_field3_is_dictionary_map_shift");
                let own = meta.constant("bit_field3_number_of_own_descriptors_shift");
                let mask = meta.constant("bit_field3_number_of_own_descriptors_mask");
                match (dictionary, own, mask) {
                    (Some(d), Some(s), Some(m))
                        if d > 0 && (m >> s).count_ones() as i64 + s == d - 1 =>
                    {
                        u32::try_from(d - 1).ok()
                    }
                    _ => None,
                }
            },
            fields: ScriptFields::new(meta),
            uncompiled_start: field("UncompiledData", "start_position"),
            uncompiled_inferred: field("UncompiledData", "inferred_name"),
            cons_first: field("ConsString", "first"),
            cons_second: field("ConsString", "second"),
            sliced_parent: field("SlicedString", "parent"),
            sliced_offset: field("SlicedString", "offset"),
            thin_actual: field("ThinString", "actual"),
            external_resource: field("ExternalString", "resource"),
            uncached_external,
        }
    }
}

impl<'h, 'c, 'a> Namer<'h, 'c, 'a> {
    pub(crate) fn new(heap: &'h Heap<'c, 'a>, meta: &Metadata) -> Self {
        let l = NameLayout::new(meta, heap);
        let mut system = FxHashMap::default();
        for (symbol, value) in meta.symbols() {
            let Some(rest) = symbol.strip_prefix("v8dbg_type_") else {
                continue;
            };
            let (Some((class, _)), Ok(t)) = (rest.split_once("__"), u16::try_from(value)) else {
                continue;
            };
            system
                .entry(t)
                .or_insert_with(|| format!("(system) {class}"));
        }
        let types = Types::new(meta);
        let mut unnamed = |t: Option<u16>, class: &str| {
            if let Some(t) = t {
                system
                    .entry(t)
                    .or_insert_with(|| format!("(system) {class}"));
            }
        };
        unnamed(types.feedback_metadata(), "FeedbackMetadata");
        unnamed(types.hole(), "Hole");
        unnamed(types.native_context(), "NativeContext");
        for t in types.subclasses("WEAK_FIXED_ARRAY_TYPE") {
            unnamed(Some(t), "TransitionArray");
        }
        if let Some((first, last)) = types.contexts() {
            for t in first..=last {
                unnamed(Some(t), "Context");
            }
        }
        Namer {
            heap,
            l,
            system,
            constructors: FxHashMap::default(),
            back: FxHashMap::default(),
            chain: Vec::new(),
            on_chain: FxHashSet::default(),
            line_starts: FxHashMap::default(),
        }
    }

    /// What the objects of the Map at `map` (an address) are called.
    pub(crate) fn class(&mut self, map: u64, facts: &MapFacts) -> Class {
        let t = facts.instance_type;
        let plain = |name: &str| Class {
            name: name.to_owned(),
            location: None,
        };
        let heap = self.heap;
        let hl = &heap.layout;
        if hl.is_string(t) {
            let rep = t & hl.string_representation_mask;
            return plain(if rep == hl.cons_tag {
                "(concatenated string)"
            } else if rep == hl.sliced_tag {
                "(sliced string)"
            } else {
                "(string)"
            });
        }
        let l = &self.l;
        if t >= l.first_receiver {
            if l.functions.contains(&t) {
                return plain("Function");
            }
            let fallback = l.named_js.get(&t).copied().unwrap_or("Object");
            // A prototype's Map keeps the constructor whose prototype it is (`Order.prototype`
            // is not an `Order`): DevTools names it by its type, as done here.
            let prototype = l.prototype_bit.is_some_and(|bit| {
                heap.core
                    .read_u32(map + l.map_bit_field3)
                    .is_some_and(|b| b >> bit & 1 == 1)
            });
            return match self.constructor_of(map) {
                Some(c) if !prototype && !c.name.is_empty() && c.name != "Object" => c,
                Some(c) => Class {
                    name: fallback.to_owned(),
                    location: c.location,
                },
                None => plain(fallback),
            };
        }
        if Some(t) == l.heap_number {
            return plain("(number)");
        }
        if Some(t) == l.symbol {
            return plain("(symbol)");
        }
        if Some(t) == l.big_int {
            return plain("(bigint)");
        }
        if l.code.contains(&t) {
            return plain("(compiled code)");
        }
        if l.arrays.contains(&t) {
            return plain("(array)");
        }
        match self.system.get(&t) {
            Some(name) => plain(name),
            None => plain(&format!("(system) type {t}")),
        }
    }

    /// The class of objects whose Map (at `map`) names a constructor: its name and position.
    fn constructor_of(&mut self, map: u64) -> Option<Class> {
        let constructor = untag(self.constructor_word(map)?)?;
        if let Some(c) = self.constructors.get(&constructor) {
            return c.clone();
        }
        let class = self.function_class(constructor);
        self.constructors.insert(constructor, class.clone());
        class
    }

    /// The word at the end of the Map's chain of back pointers: its constructor, or what the
    /// root Map holds instead. Every Map on the way is cached, so chains that share a root
    /// are followed once, and a cycle (in a damaged core) ends where it closes.
    fn constructor_word(&mut self, map: u64) -> Option<u64> {
        let heap = self.heap;
        let offset = heap.layout.map_constructor;
        let mut chain = std::mem::take(&mut self.chain);
        chain.clear();
        let mut at = map;
        let end = loop {
            if let Some(&end) = self.back.get(&at) {
                break end;
            }
            // A cycle (a damaged core) ends the chain, as does an absurd length.
            if chain.len() >= MAX_BACK_POINTERS || !self.on_chain.insert(at) {
                break None;
            }
            chain.push(at);
            let Some(value) = heap.core.read_u64(at + offset) else {
                break None;
            };
            match untag(value) {
                // Another Map: a back pointer in the transition tree.
                Some(next)
                    if heap
                        .core
                        .read_u64(next)
                        .is_some_and(|m| heap.is_meta_map(m)) =>
                {
                    at = next;
                }
                _ => break Some(value),
            }
        };
        for &m in &chain {
            self.back.insert(m, end);
        }
        self.on_chain.clear();
        self.chain = chain;
        end
    }

    /// A constructor's name and position: a JSFunction's, or `None` for anything else (a
    /// FunctionTemplateInfo of an embedder object, which DevTools names by its class name).
    fn function_class(&mut self, function: u64) -> Option<Class> {
        // A JSFunction of any subtype (V8 11 does not name its subtypes, class constructors
        // among them): a JS object whose `shared` slot holds a SharedFunctionInfo.
        let t = self.instance_type(function)?;
        if t < self.l.first_receiver {
            return None;
        }
        let sfi = untag(self.word(function + self.l.fields.function_shared?)?)?;
        if self.instance_type(sfi)? != self.l.sfi? {
            return None;
        }
        let (name, start) = self.shared_info(sfi);
        let location = start.and_then(|pos| {
            let script = untag(self.word(sfi + self.l.fields.sfi_script?)?)?;
            if self.instance_type(script)? != self.l.script? {
                return None;
            }
            let name = self.script_name(script)?;
            let (line, column) = self.line_column(script, pos)?;
            Some(Location {
                script: name,
                line,
                column,
            })
        });
        Some(Class {
            name: name.unwrap_or_default(),
            location,
        })
    }

    /// A SharedFunctionInfo's name, as DevTools shows it (`SharedFunctionInfo::DebugName`:
    /// its name, or when it has none, the name V8 inferred from where it was defined, as for
    /// `const Invoice = class {…}`), and its start position.
    fn shared_info(&mut self, sfi: u64) -> (Option<String>, Option<u32>) {
        let Some(word) = self.l.fields.sfi_name.and_then(|o| self.word(sfi + o)) else {
            return (None, None);
        };
        let uncompiled = self.uncompiled(sfi);
        let (name, inferred, start) = match untag(word) {
            Some(obj)
                if self.instance_type(obj).is_some()
                    && self.instance_type(obj) == self.l.scope_info =>
            {
                match self.scope_info(obj) {
                    Some(s) => s,
                    None => return (None, None),
                }
            }
            // Smi zero: no name of its own; a String: the name, until compiled.
            _ => {
                let name = if untag(word).is_some() {
                    self.string(word)
                } else {
                    Some(String::new())
                };
                let inferred = uncompiled
                    .and_then(|data| self.string(self.word(data + self.l.uncompiled_inferred?)?));
                let start = uncompiled.and_then(|data| {
                    u32::try_from(self.heap.core.read_i32(data + self.l.uncompiled_start?)?).ok()
                });
                (name, inferred, start)
            }
        };
        let name = match name {
            Some(n) if n.is_empty() => inferred.or(Some(n)),
            other => other,
        };
        (name, start)
    }

    /// A compiled function's name, inferred name and start, from its ScopeInfo.
    fn scope_info(&self, scope: u64) -> Option<(Option<String>, Option<String>, Option<u32>)> {
        let g = self.l.generation;
        let flags = if g >= Generation::V13 {
            u64::from(self.heap.core.read_u32(scope + 8)?)
        } else {
            u64::try_from(smi(self.word(scope + 8)?)?).ok()?
        };
        let locals = u64::try_from(smi(self.word(scope + 8 + 16)?)?).ok()?;
        let slots = scope_slots(g, flags, locals)?;
        let slot = |i: u64| self.word(scope + 8 + 8 * i);
        let name = match slots.function_name {
            Some(i) => {
                let w = slot(i)?;
                if w == 0 {
                    Some(String::new())
                } else {
                    self.string(w)
                }
            }
            None => None,
        };
        // A String, or undefined.
        let inferred = slots.inferred_name.and_then(|i| self.string(slot(i)?));
        let start = slots
            .position
            .and_then(|i| smi(slot(i)?))
            .and_then(|v| u32::try_from(v).ok());
        Some((name, inferred, start))
    }

    /// The `UncompiledData` of a function that is not compiled (yet, or any more: V8 flushes
    /// old bytecode): in one of the slots between the map and the name (`function_data`;
    /// V8 13's trusted and untrusted function data), recognised by its instance type.
    fn uncompiled(&self, sfi: u64) -> Option<u64> {
        let name_at = self.l.fields.sfi_name?;
        (8..name_at).step_by(8).find_map(|off| {
            let data = untag(self.word(sfi + off)?)?;
            self.l
                .uncompiled
                .contains(&self.instance_type(data)?)
                .then_some(data)
        })
    }

    fn script_name(&self, script: u64) -> Option<String> {
        let name = self.string(self.word(script + self.l.fields.script_name?)?)?;
        (!name.is_empty()).then_some(name)
    }

    /// The 1-based line and column of a position in a script.
    fn line_column(&mut self, script: u64, pos: u32) -> Option<(u32, u32)> {
        if !self.line_starts.contains_key(&script) {
            let starts = self.compute_line_starts(script);
            self.line_starts.insert(script, starts);
        }
        let starts = self.line_starts.get(&script)?.as_ref()?;
        let line = starts.partition_point(|&s| s <= pos).checked_sub(1)?;
        Some((u32::try_from(line).ok()? + 1, pos - starts[line] + 1))
    }

    fn compute_line_starts(&self, script: u64) -> Option<Vec<u32>> {
        let l = &self.l;
        let ends = l
            .fields
            .script_line_ends
            .and_then(|o| self.word(script + o))
            .and_then(untag)
            .filter(|&a| l.fixed_array.is_some() && self.instance_type(a) == l.fixed_array);
        if let Some(ends) = ends {
            let n = u64::try_from(smi(self.word(ends + 8)?)?).ok()?;
            if n < 1 << 24 {
                let mut starts = vec![0];
                for i in 0..n {
                    let end = u32::try_from(smi(self.word(ends + 16 + 8 * i)?)?).ok()?;
                    starts.push(end.checked_add(1)?);
                }
                return Some(starts);
            }
        }
        let source = self.word(script + l.fields.script_source?)?;
        let mut starts = vec![0];
        let mut at = 0u32;
        self.pieces(source, 0, MAX_SOURCE, 0, &mut |piece, two_byte| {
            let unit = if two_byte { 2 } else { 1 };
            for (i, c) in piece.chunks_exact(unit).enumerate() {
                if c[0] == b'\n' && (unit == 1 || c[1] == 0) {
                    starts.push(at + i as u32 + 1);
                }
            }
            at += (piece.len() / unit) as u32;
        })?;
        Some(starts)
    }

    /// A string's text (the first [`MAX_NAME`] characters), `None` when `tagged` is not a
    /// string or its characters are absent.
    fn string(&self, tagged: u64) -> Option<String> {
        let mut units: Vec<u16> = Vec::new();
        self.pieces(tagged, 0, MAX_NAME, 0, &mut |piece, two_byte| {
            if two_byte {
                units.extend(
                    piece
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]])),
                );
            } else {
                units.extend(piece.iter().map(|&c| u16::from(c)));
            }
        })?;
        Some(String::from_utf16_lossy(&units))
    }

    /// Calls `f` with the characters `skip..skip + max` of a string, piece by piece (bytes,
    /// two-byte or not), following cons, sliced, thin and external strings; returns how many
    /// characters it passed.
    fn pieces(
        &self,
        tagged: u64,
        skip: usize,
        max: usize,
        depth: usize,
        f: &mut dyn FnMut(&[u8], bool),
    ) -> Option<usize> {
        if depth > MAX_STRING_DEPTH {
            return None;
        }
        let obj = untag(tagged)?;
        let t = self.instance_type(obj)?;
        let hl = &self.heap.layout;
        if !hl.is_string(t) {
            return None;
        }
        let len = usize::try_from(self.heap.core.read_i32(obj + hl.string_length)?).ok()?;
        if skip >= len || max == 0 {
            return Some(0);
        }
        let take = (len - skip).min(max);
        let two_byte = t & hl.string_encoding_mask != hl.one_byte_tag;
        let unit = if two_byte { 2 } else { 1 };
        let flat = |data: u64, f: &mut dyn FnMut(&[u8], bool)| -> Option<usize> {
            let bytes = self
                .heap
                .core
                .read(data.checked_add((skip * unit) as u64)?, take * unit)?;
            f(bytes, two_byte);
            Some(take)
        };
        let l = &self.l;
        let rep = t & hl.string_representation_mask;
        if rep == hl.seq_tag {
            flat(obj + 16, f)
        } else if rep == hl.external_tag {
            if t & l.uncached_external != 0 {
                return None;
            }
            // The resource's data, cached after the resource pointer.
            let data = self.word(obj + l.external_resource? + 8)?;
            (data != 0).then_some(())?;
            flat(data, f)
        } else if rep == hl.cons_tag {
            let first = self.word(obj + l.cons_first?)?;
            let second = self.word(obj + l.cons_second?)?;
            let first_len =
                usize::try_from(self.heap.core.read_i32(untag(first)? + hl.string_length)?).ok()?;
            let mut done = 0;
            if skip < first_len {
                done = self.pieces(first, skip, take, depth + 1, f)?;
            }
            if done < take {
                done += self.pieces(
                    second,
                    skip.saturating_sub(first_len),
                    take - done,
                    depth + 1,
                    f,
                )?;
            }
            Some(done)
        } else if rep == hl.sliced_tag {
            let parent = self.word(obj + l.sliced_parent?)?;
            let offset = usize::try_from(smi(self.word(obj + l.sliced_offset?)?)?).ok()?;
            self.pieces(parent, offset + skip, take, depth + 1, f)
        } else if rep == hl.thin_tag {
            self.pieces(self.word(obj + l.thin_actual?)?, skip, take, depth + 1, f)
        } else {
            None
        }
    }

    fn word(&self, addr: u64) -> Option<u64> {
        self.heap.core.read_u64(addr)
    }

    /// The instance type of the object at `addr`, if its map word points to a valid Map.
    fn instance_type(&self, addr: u64) -> Option<u16> {
        let map = self.word(addr)?;
        let map_addr = untag(map)?;
        if !self.heap.is_meta_map(self.word(map_addr)?) {
            return None;
        }
        self.heap
            .core
            .read_u16(map_addr + self.heap.layout.map_instance_type)
    }
}

#[cfg(test)]
mod tests {
    use crate::heap::{Generation, scope_slots};

    #[test]
    fn scope_slots_of_a_function_with_a_name() {
        // V8 11: a function scope (type 2) with two context locals, a function variable
        // (bits 12–13), an inferred name (bit 14) and an outer scope info (bit 22).
        let flags = 2 | 3 << 12 | 1 << 14 | 1 << 22;
        let s = scope_slots(Generation::V11, flags, 2).expect("slots");
        assert_eq!(s.function_name, Some(3 + 2 + 2));
        assert_eq!(s.inferred_name, Some(9));
        assert_eq!(s.position, Some(10));
        assert_eq!(s.count, 13);
        // V8 13: the source range is in the header; function scopes are type 4.
        let flags = 4 | 3 << 12 | 1 << 14;
        let s = scope_slots(Generation::V13, flags, 0).expect("slots");
        assert_eq!(s.position, Some(3));
        assert_eq!(s.function_name, Some(5));
        assert_eq!(s.count, 8);
        // V8 14 adds a slot to function scopes, at the end.
        let s = scope_slots(Generation::V14, flags, 0).expect("slots");
        assert_eq!(s.function_name, Some(5));
        assert_eq!(s.count, 9);
        // A block scope has no source range before V8 13.
        let s = scope_slots(Generation::V12, 6, 1).expect("slots");
        assert_eq!((s.position, s.count), (None, 5));
    }
}
